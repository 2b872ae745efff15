#![no_main]
//! Fuzz target `xks_health`: see `harness::xks_health` for what it drives.

use libfuzzer_sys::fuzz_target;

#[path = "../harness.rs"]
mod harness;

fuzz_target!(|data: &[u8]| {
    harness::xks_health(data);
});
