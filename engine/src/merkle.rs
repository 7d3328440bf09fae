//! Coinbase transaction id and merkle root from an extended job's parts (not on the hot path: once
//! per extranonce, i.e. once per 2^32 nonces of a slice at most).

use sha2::{Digest, Sha256};

pub use sv2_chain::sha256d;

/// The txid (internal byte order) of the coinbase `prefix || extranonce_prefix || extranonce ||
/// suffix`, as SV2 extended jobs build it (the parts carry no witness data). Hashes the parts in
/// place: no buffer, no allocation.
pub fn coinbase_txid(
    prefix: &[u8],
    extranonce_prefix: &[u8],
    extranonce: &[u8],
    suffix: &[u8],
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prefix);
    h.update(extranonce_prefix);
    h.update(extranonce);
    h.update(suffix);
    Sha256::digest(h.finalize()).into()
}

/// The merkle root of a block whose first transaction has id `leaf`, given the merkle path (the
/// sibling hashes from the bottom up, internal byte order): `h = sha256d(h || sibling)` per level.
pub fn merkle_root(leaf: [u8; 32], path: &[[u8; 32]]) -> [u8; 32] {
    sv2_chain::merkle::root_from_path(&leaf, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hex in display order (as explorers show txids) to internal order.
    fn internal(display: &str) -> [u8; 32] {
        let mut b = [0u8; 32];
        for (i, byte) in b.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&display[2 * i..2 * i + 2], 16).unwrap();
        }
        b.reverse();
        b
    }

    #[test]
    fn block_100000_merkle_root_from_its_four_txids() {
        let txids = [
            internal("8c14f0db3df150123e6f3dbbf30f8b955a8249b62ac1d1ff16284aefa3d06d87"),
            internal("fff2525b8931402dd09222c50775608f75787bd2b87e56995a7bdd30f79702c4"),
            internal("6359f0868171b1d194cbee1af2f16ea598ae8fad666d9b012c8ed2b79a236ec4"),
            internal("e9a66845e05d5abc0ad04ec80f774a7e585c6e8db975962d069a522137b80c1d"),
        ];
        let mut right = [0u8; 64];
        right[..32].copy_from_slice(&txids[2]);
        right[32..].copy_from_slice(&txids[3]);
        let path = [txids[1], sha256d(&right)];
        assert_eq!(
            merkle_root(txids[0], &path),
            internal("f3e94742aca4b5ef85488dc37c06c3282295ffec960994b2c0d5ac2a25a95766")
        );
    }

    #[test]
    fn coinbase_txid_hashes_the_concatenation() {
        let whole = b"prefix-ENPREFIX-en-suffix";
        assert_eq!(
            coinbase_txid(b"prefix-", b"ENPREFIX", b"-en", b"-suffix"),
            sha256d(whole)
        );
        assert_eq!(merkle_root([5; 32], &[]), [5; 32]);
    }
}
