//! See `sv2_fuzz::checks::capture` for the input format and the properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sv2_fuzz::checks::capture(data));
