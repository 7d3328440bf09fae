//! See `sv2_fuzz::differential` for the input format, the classes of disagreement and how they are
//! counted (`SV2_DIFF_STATS`, `SV2_DIFF_FINDINGS`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sv2_fuzz::differential::differential(data);
});
