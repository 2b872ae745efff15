#![no_main]
//! Fuzz target `facts`: see `harness::facts` for what it drives (every check, the diagnosis and
//! every report format, on arbitrary AWS facts).

use libfuzzer_sys::fuzz_target;

#[path = "../harness.rs"]
mod harness;

fuzz_target!(|data: &[u8]| {
    harness::facts(data);
});
