#![no_main]
//! Fuzz target `snapshot`: see `harness::snapshot` for what it drives.

use libfuzzer_sys::fuzz_target;

#[path = "../harness.rs"]
mod harness;

fuzz_target!(|data: &[u8]| {
    harness::snapshot(data);
});
