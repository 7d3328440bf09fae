//! Portable SHA-256 pieces shared by every backend: constants, one compression, the midstate of the
//! first header block, and a complete sha256d used to confirm candidates.
//!
//! Words are the big-endian words SHA-256 reads; the digest is the eight state words written
//! big-endian, so digest bytes 28..32 are the last state word (`H7`) in big-endian order.

/// Round constants.
pub(crate) const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// Initial hash value.
pub(crate) const IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// Second block of the first hash of an 80-byte header, after its four data words: the padding bit,
/// zeros, and the length (640 bits). Index 0 is word 4 of the block.
pub(crate) const HEADER_PAD: [u32; 12] = [0x8000_0000, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 640];

/// The second hash's block after its eight data words (the first digest): padding and 256 bits.
pub(crate) const DIGEST_PAD: [u32; 8] = [0x8000_0000, 0, 0, 0, 0, 0, 0, 256];

#[inline(always)]
pub(crate) fn big_sigma0(x: u32) -> u32 {
    x.rotate_right(2) ^ x.rotate_right(13) ^ x.rotate_right(22)
}

#[inline(always)]
pub(crate) fn big_sigma1(x: u32) -> u32 {
    x.rotate_right(6) ^ x.rotate_right(11) ^ x.rotate_right(25)
}

#[inline(always)]
pub(crate) fn small_sigma0(x: u32) -> u32 {
    x.rotate_right(7) ^ x.rotate_right(18) ^ (x >> 3)
}

#[inline(always)]
pub(crate) fn small_sigma1(x: u32) -> u32 {
    x.rotate_right(17) ^ x.rotate_right(19) ^ (x >> 10)
}

#[inline(always)]
pub(crate) fn ch(e: u32, f: u32, g: u32) -> u32 {
    g ^ (e & (f ^ g))
}

#[inline(always)]
pub(crate) fn maj(a: u32, b: u32, c: u32) -> u32 {
    (a & b) | (c & (a | b))
}

/// One round on the working state `s = [a, b, c, d, e, f, g, h]`, with `kw = K[i] + W[i]`.
#[inline(always)]
pub(crate) fn round(s: &mut [u32; 8], kw: u32) {
    let [a, b, c, d, e, f, g, h] = *s;
    let t1 = h
        .wrapping_add(big_sigma1(e))
        .wrapping_add(ch(e, f, g))
        .wrapping_add(kw);
    let t2 = big_sigma0(a).wrapping_add(maj(a, b, c));
    *s = [t1.wrapping_add(t2), a, b, c, d.wrapping_add(t1), e, f, g];
}

/// The 64-word message schedule of a block given as 16 words.
#[inline(always)]
pub(crate) fn schedule(block: &[u32; 16]) -> [u32; 64] {
    let mut w = [0u32; 64];
    w[..16].copy_from_slice(block);
    for i in 16..64 {
        w[i] = small_sigma1(w[i - 2])
            .wrapping_add(w[i - 7])
            .wrapping_add(small_sigma0(w[i - 15]))
            .wrapping_add(w[i - 16]);
    }
    w
}

/// The SHA-256 compression function: `state` absorbs one block given as 16 big-endian words.
pub(crate) fn compress(state: &mut [u32; 8], block: &[u32; 16]) {
    let w = schedule(block);
    let mut s = *state;
    for i in 0..64 {
        round(&mut s, K[i].wrapping_add(w[i]));
    }
    for (h, v) in state.iter_mut().zip(s) {
        *h = h.wrapping_add(v);
    }
}

/// 64 bytes as 16 big-endian words.
pub(crate) fn words(bytes: &[u8; 64]) -> [u32; 16] {
    let mut w = [0u32; 16];
    for (w, chunk) in w.iter_mut().zip(bytes.chunks_exact(4)) {
        *w = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    w
}

/// The state after the first 64 bytes of a header: the part of the first hash that does not depend
/// on the merkle root's last four bytes, ntime, nbits or nonce.
pub fn midstate(first64: &[u8; 64]) -> [u32; 8] {
    let mut state = IV;
    compress(&mut state, &words(first64));
    state
}

/// The state words written out big-endian: the digest.
pub(crate) fn digest_bytes(state: &[u32; 8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (chunk, w) in out.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&w.to_be_bytes());
    }
    out
}

/// The second hash of sha256d: SHA-256 of a 32-byte digest given as its eight state words.
pub(crate) fn hash_of_digest(first: &[u32; 8]) -> [u32; 8] {
    let mut block = [0u32; 16];
    block[..8].copy_from_slice(first);
    block[8..].copy_from_slice(&DIGEST_PAD);
    let mut state = IV;
    compress(&mut state, &block);
    state
}

/// sha256d of an 80-byte block header, computed with this module's own compression (not `sha2`):
/// this is what confirms every candidate a SIMD backend reports.
pub fn sha256d_header(header: &[u8; 80]) -> [u8; 32] {
    let mut first64 = [0u8; 64];
    first64.copy_from_slice(&header[..64]);
    let mut state = midstate(&first64);
    let mut block = [0u32; 16];
    for (w, chunk) in block.iter_mut().zip(header[64..].chunks_exact(4)) {
        *w = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    block[4..].copy_from_slice(&HEADER_PAD);
    compress(&mut state, &block);
    digest_bytes(&hash_of_digest(&state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn compression_matches_sha2_on_one_block_messages() {
        // "abc" padded to one block.
        let mut block = [0u8; 64];
        block[..3].copy_from_slice(b"abc");
        block[3] = 0x80;
        block[63] = 24;
        let mut state = IV;
        compress(&mut state, &words(&block));
        assert_eq!(
            digest_bytes(&state).as_slice(),
            Sha256::digest(b"abc").as_slice()
        );
    }

    #[test]
    fn header_sha256d_matches_sha2() {
        let mut header = [0u8; 80];
        for (i, b) in header.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37).wrapping_add(11);
        }
        let expected = Sha256::digest(Sha256::digest(header));
        assert_eq!(sha256d_header(&header).as_slice(), expected.as_slice());
    }
}
