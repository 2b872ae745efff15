#![no_main]
//! Fuzz target `cert_der`: see `harness::cert_der` for what it drives.

use libfuzzer_sys::fuzz_target;

#[path = "../harness.rs"]
mod harness;

fuzz_target!(|data: &[u8]| {
    harness::cert_der(data);
});
