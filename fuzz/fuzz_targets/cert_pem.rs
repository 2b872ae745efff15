#![no_main]
//! Fuzz target `cert_pem`: see `harness::cert_pem` for what it drives.

use libfuzzer_sys::fuzz_target;

#[path = "../harness.rs"]
mod harness;

fuzz_target!(|data: &[u8]| {
    harness::cert_pem(data);
});
