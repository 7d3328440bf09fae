//! Merkle trees: Bitcoin's root (odd levels duplicate their last hash), the coinbase's merkle path as SV2
//! carries it, and the BIP141 witness commitment.

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

    #[test]
    fn a_single_leaf_is_its_own_root() {
        assert_eq!(root(&[leaf(7)]), leaf(7));
        assert!(coinbase_path(&[]).is_empty());
        assert_eq!(root(&[]), [0; 32]);
    }
}
