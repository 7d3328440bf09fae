//! Block headers, targets, and a header prepared for scanning nonces (midstate + second block).

use super::sha256::{self, HEADER_PAD};
use sv2_chain::target::{compact_to_target, meets_target, CompactError};

/// An 80-byte Bitcoin block header. `prev_hash` and `merkle_root` are in header byte order (the
/// internal order, as SV2 carries them in U256 fields; block explorers show them reversed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlockHeader {
    pub version: u32,
    pub prev_hash: [u8; 32],
    pub merkle_root: [u8; 32],
    pub ntime: u32,
    pub nbits: u32,
    pub nonce: u32,
}

impl BlockHeader {
    /// The 80 serialized bytes (integers little-endian).
    pub fn to_bytes(&self) -> [u8; 80] {
        let mut b = [0u8; 80];
        b[0..4].copy_from_slice(&self.version.to_le_bytes());
        b[4..36].copy_from_slice(&self.prev_hash);
        b[36..68].copy_from_slice(&self.merkle_root);
        b[68..72].copy_from_slice(&self.ntime.to_le_bytes());
        b[72..76].copy_from_slice(&self.nbits.to_le_bytes());
        b[76..80].copy_from_slice(&self.nonce.to_le_bytes());
        b
    }

    /// Parses 80 serialized bytes.
    pub fn from_bytes(b: &[u8; 80]) -> Self {
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let mut prev_hash = [0u8; 32];
        prev_hash.copy_from_slice(&b[4..36]);
        let mut merkle_root = [0u8; 32];
        merkle_root.copy_from_slice(&b[36..68]);
        BlockHeader {
            version: u32_at(0),
            prev_hash,
            merkle_root,
            ntime: u32_at(68),
            nbits: u32_at(72),
            nonce: u32_at(76),
        }
    }

    /// sha256d of the header, in internal byte order (reverse it for the usual display).
    pub fn hash(&self) -> [u8; 32] {
        sha256::sha256d_header(&self.to_bytes())
    }
}

/// A 256-bit target as SV2 carries it: a little-endian U256 (byte 31 is the most significant). A
/// hash meets it when the hash, read as a little-endian 256-bit number, is at most the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Target(pub [u8; 32]);

impl Target {
    /// The largest target: every hash meets it.
    pub const MAX: Target = Target([0xff; 32]);
    /// The zero target: only the all-zero hash meets it (never, in practice).
    pub const ZERO: Target = Target([0; 32]);

    /// The target a header's compact `nbits` encodes (`mantissa * 256^(exponent - 3)`). Negative
    /// or overflowing encodings give `None`.
    pub fn from_nbits(nbits: u32) -> Option<Target> {
        match compact_to_target(nbits) {
            Ok(t) => Some(Target(t)),
            Err(CompactError::Zero(_)) => Some(Target::ZERO),
            Err(_) => None,
        }
    }

    /// A target whose most significant 32-bit word is `top` and whose other bits are all ones:
    /// about `top + 1` in `2^32` hashes meet it. Handy for easy test and benchmark targets.
    pub fn with_top_word(top: u32) -> Target {
        let mut t = [0xff; 32];
        t[28..].copy_from_slice(&top.to_le_bytes());
        Target(t)
    }

    /// The most significant 32-bit word (bytes 28..32, little-endian): the early-rejection bound.
    pub fn top_word(&self) -> u32 {
        u32::from_le_bytes([self.0[28], self.0[29], self.0[30], self.0[31]])
    }

    /// Whether `hash` (sha256d output bytes as they come, read little-endian) is at most this target.
    pub fn is_met_by(&self, hash: &[u8; 32]) -> bool {
        meets_target(hash, &self.0)
    }
}

/// The top word of a hash given as the second digest's last state word (`H7`): the digest writes
/// `H7` big-endian at bytes 28..32, and the hash is read little-endian, hence the byte swap.
#[inline(always)]
pub(crate) fn top_word_of_h7(h7: u32) -> u32 {
    h7.swap_bytes()
}

/// A header ready for nonce scanning: the midstate over its first 64 bytes and the first three words
/// of the second block (the merkle root's last 4 bytes, ntime, nbits), computed once; only the nonce
/// (word 3) changes from hash to hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PreparedHeader {
    header: BlockHeader,
    target: Target,
    pub(crate) midstate: [u32; 8],
    pub(crate) tail: [u32; 3],
    pub(crate) target_top: u32,
}

impl PreparedHeader {
    /// Prepares `header` (its nonce is ignored) for scanning against `target`.
    pub fn new(header: &BlockHeader, target: &Target) -> Self {
        let bytes = header.to_bytes();
        let mut first64 = [0u8; 64];
        first64.copy_from_slice(&bytes[..64]);
        let word =
            |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        PreparedHeader {
            header: *header,
            target: *target,
            midstate: sha256::midstate(&first64),
            tail: [word(64), word(68), word(72)],
            target_top: target.top_word(),
        }
    }

    /// Whether `other` shares this header's second block and target (so that both can be scanned
    /// as one group: they differ at most in their first 64 bytes, e.g. in the version).
    pub fn shares_second_block_with(&self, other: &PreparedHeader) -> bool {
        self.tail == other.tail && self.target == other.target
    }

    /// The header with `nonce` in place.
    pub fn header(&self, nonce: u32) -> BlockHeader {
        BlockHeader {
            nonce,
            ..self.header
        }
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The second block of the first hash for `nonce`, as 16 words.
    pub(crate) fn block2(&self, nonce: u32) -> [u32; 16] {
        let mut block = [0u32; 16];
        block[..3].copy_from_slice(&self.tail);
        block[3] = nonce.swap_bytes();
        block[4..].copy_from_slice(&HEADER_PAD);
        block
    }

    /// The full sha256d of the header with `nonce`, from the midstate.
    pub fn hash(&self, nonce: u32) -> [u8; 32] {
        let mut state = self.midstate;
        sha256::compress(&mut state, &self.block2(nonce));
        sha256::digest_bytes(&sha256::hash_of_digest(&state))
    }

    /// Confirms a candidate: the full hash when it meets the whole 256-bit target.
    pub fn check(&self, nonce: u32) -> Option<[u8; 32]> {
        let hash = self.hash(nonce);
        self.target.is_met_by(&hash).then_some(hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nbits_of_difficulty_one() {
        let t = Target::from_nbits(0x1d00ffff).unwrap();
        let mut expected = [0u8; 32];
        expected[26] = 0xff;
        expected[27] = 0xff;
        assert_eq!(t.0, expected);
        assert_eq!(t.top_word(), 0);
        assert_eq!(Target::from_nbits(0x1d80ffff), None);
        assert_eq!(Target::from_nbits(0x2300ffff), None);
    }

    #[test]
    fn target_compare_is_little_endian_and_inclusive() {
        let mut t = [0u8; 32];
        t[31] = 0x10;
        t[0] = 0x05;
        let target = Target(t);
        assert!(target.is_met_by(&t), "equal meets");
        let mut above = t;
        above[0] = 0x06;
        assert!(
            !target.is_met_by(&above),
            "one more in the least significant byte"
        );
        let mut below = t;
        below[30] = 0xff;
        below[31] = 0x0f;
        assert!(target.is_met_by(&below));
        let mut high = [0u8; 32];
        high[31] = 0x11;
        assert!(!target.is_met_by(&high));
    }

    #[test]
    fn header_bytes_round_trip() {
        let h = BlockHeader {
            version: 0x2000_0004,
            prev_hash: [7; 32],
            merkle_root: [9; 32],
            ntime: 1_700_000_000,
            nbits: 0x1703_a30c,
            nonce: 0xdead_beef,
        };
        assert_eq!(BlockHeader::from_bytes(&h.to_bytes()), h);
        let p = PreparedHeader::new(&h, &Target::MAX);
        assert_eq!(p.hash(h.nonce), h.hash());
        assert_eq!(p.header(h.nonce), h);
    }
}
