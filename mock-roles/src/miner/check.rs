//! Target arithmetic shared by the SV2 device and the SV1 client. (Both rebuild a found share's
//! header with `sv2_engine::BlockHeader::to_bytes` and hash it with `sv2_chain::sha256d`,
//! independently of the engine's SIMD code.)

use sv2_chain::target::meets_target;

/// The smaller (harder) of two little-endian targets.
pub fn min_target(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    if meets_target(a, b) {
        *a
    } else {
        *b
    }
}

/// Whether `a` is above `b` (both little-endian 256-bit numbers).
pub fn target_above(a: &[u8; 32], b: &[u8; 32]) -> bool {
    !meets_target(a, b)
}
