#![no_main]
//! Fuzz target `cli_input`: see `harness::cli_input` for what it drives.

use libfuzzer_sys::fuzz_target;

#[path = "../harness.rs"]
mod harness;

fuzz_target!(|data: &[u8]| {
    harness::cli_input(data);
});
