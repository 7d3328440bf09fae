//! The Bitcoin a mock role needs to build templates, jobs and blocks and to check them: double SHA-256,
//! transactions (strict, bounded parsing), merkle trees and paths, the witness commitment, compact
//! targets (`nBits`) and the BIP34 height in the coinbase.
//!
//! Byte order: hashes are kept as SHA-256 produces them ("internal" order, as in headers, merkle paths
//! and SV2's U256 fields); [`display_hex`] reverses them for the usual big-endian display of txids and
//! block hashes. Targets are 256-bit little-endian numbers, as SV2 carries them.

#![forbid(unsafe_code)]

pub mod merkle;
pub mod script;
pub mod target;
pub mod tx;

use sha2::{Digest, Sha256};

/// SHA256(SHA256(data)).
pub fn sha256d(data: &[u8]) -> [u8; 32] {
    Sha256::digest(Sha256::digest(data)).into()
}

/// A hash in the usual display order (reversed bytes, as block explorers show txids and block hashes).
pub fn display_hex(hash: &[u8; 32]) -> String {
    let mut reversed = *hash;
    reversed.reverse();
    hex::encode(reversed)
}
