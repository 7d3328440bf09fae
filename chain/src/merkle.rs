//! Merkle trees: Bitcoin's root (odd levels duplicate their last hash), the coinbase's merkle path as SV2
//! carries it, and the BIP141 witness commitment.

use sha2::{Digest, Sha256};

use super::sha256d;

fn parent(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut both = [0u8; 64];
    both[..32].copy_from_slice(left);
    both[32..].copy_from_slice(right);
    sha256d(&both)
}

/// The merkle root of `leaves` (txids in internal order). An empty list gives all zeros.
pub fn root(leaves: &[[u8; 32]]) -> [u8; 32] {
    if leaves.is_empty() {
        return [0; 32];
    }
    let mut level = leaves.to_vec();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| parent(&pair[0], pair.get(1).unwrap_or(&pair[0])))
            .collect();
    }
    level[0]
}

/// The merkle path of the first leaf (the coinbase) over `leaves[0] = coinbase, leaves[1..] = others`:
/// the sibling at each level, bottom up. Only `others` are needed: the coinbase's own hash never
/// enters its path.
pub fn coinbase_path(others: &[[u8; 32]]) -> Vec<[u8; 32]> {
    let mut path = Vec::new();
    // The level holds the hashes to the right of the coinbase's ancestor; the ancestor is implicit.
    let mut level: Vec<[u8; 32]> = others.to_vec();
    while !level.is_empty() {
        path.push(level[0]);
        // The rest of this level (after the ancestor and its sibling) pairs up: hashes 1,2 -> one
        // parent, 3,4 -> the next, and a lone last hash pairs with itself.
        level = level[1..]
            .chunks(2)
            .map(|pair| parent(&pair[0], pair.get(1).unwrap_or(&pair[0])))
            .collect();
    }
    path
}

/// The root from a leaf and its path (SV2's merkle_path: the leaf is always the left child).
pub fn root_from_path(leaf: &[u8; 32], path: &[[u8; 32]]) -> [u8; 32] {
    path.iter()
        .fold(*leaf, |acc, sibling| parent(&acc, sibling))
}

/// The txid (internal byte order) of the coinbase `prefix || extranonce_prefix || extranonce ||
/// suffix`, as SV2 extended jobs build it (the parts carry no witness data). Hashes the parts in
/// place: no buffer, no allocation (the engine calls it once per extranonce).
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

/// The merkle root of a block whose coinbase is `prefix || extranonce_prefix || extranonce ||
/// suffix`, with the job's merkle path: the one place a client's coinbase and merkle root are
/// assembled (the engine, the device's share check, the SV1 client, the conformance suite, the probe).
pub fn coinbase_merkle_root(
    prefix: &[u8],
    extranonce_prefix: &[u8],
    extranonce: &[u8],
    suffix: &[u8],
    path: &[[u8; 32]],
) -> [u8; 32] {
    root_from_path(
        &coinbase_txid(prefix, extranonce_prefix, extranonce, suffix),
        path,
    )
}

/// The BIP141 witness commitment: sha256d(witness root || reserved value), where the witness root is
/// the merkle root of the wtxids with the coinbase's counted as all zeros.
pub fn witness_commitment(other_wtxids: &[[u8; 32]], reserved_value: &[u8; 32]) -> [u8; 32] {
    let mut leaves = Vec::with_capacity(other_wtxids.len() + 1);
    leaves.push([0u8; 32]);
    leaves.extend_from_slice(other_wtxids);
    let witness_root = root(&leaves);
    let mut both = [0u8; 64];
    both[..32].copy_from_slice(&witness_root);
    both[32..].copy_from_slice(reserved_value);
    sha256d(&both)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(i: u8) -> [u8; 32] {
        sha256d(&[i])
    }

    #[test]
    fn paths_give_the_same_root_as_the_tree_for_every_size() {
        for n in 1..=33u8 {
            let leaves: Vec<_> = (0..n).map(leaf).collect();
            let path = coinbase_path(&leaves[1..]);
            assert_eq!(
                root_from_path(&leaves[0], &path),
                root(&leaves),
                "{n} leaves"
            );
            // The path is as long as the tree is deep.
            let depth = (usize::from(n)).next_power_of_two().trailing_zeros() as usize;
            assert_eq!(path.len(), depth, "{n} leaves");
        }
    }

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
        let path = coinbase_path(&txids[1..]);
        let root_100000 =
            internal("f3e94742aca4b5ef85488dc37c06c3282295ffec960994b2c0d5ac2a25a95766");
        assert_eq!(root_from_path(&txids[0], &path), root_100000);
        assert_eq!(root(&txids), root_100000);
    }

    #[test]
    fn the_coinbase_is_hashed_as_the_concatenation_of_its_parts() {
        let whole = b"prefix-ENPREFIX-en-suffix";
        assert_eq!(
            coinbase_txid(b"prefix-", b"ENPREFIX", b"-en", b"-suffix"),
            sha256d(whole)
        );
        let path = [leaf(1), leaf(2)];
        assert_eq!(
            coinbase_merkle_root(b"prefix-", b"ENPREFIX", b"-en", b"-suffix", &path),
            root_from_path(&sha256d(whole), &path)
        );
        assert_eq!(coinbase_merkle_root(b"", b"", b"", b"", &[]), sha256d(b""));
    }

    #[test]
    fn a_single_leaf_is_its_own_root() {
        assert_eq!(root(&[leaf(7)]), leaf(7));
        assert!(coinbase_path(&[]).is_empty());
        assert_eq!(root(&[]), [0; 32]);
    }
}
