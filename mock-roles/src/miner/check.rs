//! Share checks shared by the SV2 device and the SV1 client: the header rebuilt from job data with the
//! chain module's hashing (independent of the engine's SIMD code), and target arithmetic.

use sv2_chain::target::meets_target;

/// The 80 serialized header bytes (integers little-endian, hashes in internal order).
pub fn header_bytes(
    version: u32,
    prev_hash: &[u8; 32],
    merkle_root: &[u8; 32],
    ntime: u32,
    nbits: u32,
    nonce: u32,
) -> [u8; 80] {
    let mut h = [0u8; 80];
    h[0..4].copy_from_slice(&version.to_le_bytes());
    h[4..36].copy_from_slice(prev_hash);
    h[36..68].copy_from_slice(merkle_root);
    h[68..72].copy_from_slice(&ntime.to_le_bytes());
    h[72..76].copy_from_slice(&nbits.to_le_bytes());
    h[76..80].copy_from_slice(&nonce.to_le_bytes());
    h
}

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
