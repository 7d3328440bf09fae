//! The portable backend: one nonce at a time with plain `u32` arithmetic. It compiles everywhere and
//! is the fallback when the CPU has neither SHA extensions nor AVX2.
//!
//! Per call it computes what does not depend on the nonce once: the first three rounds of the second
//! block (words 0..2 are fixed per header) and the parts of round 3 and of the message schedule that
//! do not involve the nonce. The second hash stops at round 60, which is enough to know `H7`.

use super::header::{top_word_of_h7, PreparedHeader};
use super::sha256::{self, big_sigma0, big_sigma1, ch, maj, round, DIGEST_PAD, IV, K};
use super::Candidates;

pub(crate) fn scan(p: &PreparedHeader, start: u32, count: u32, out: &mut Candidates) -> u32 {
    // Rounds 0..2 of the first hash's second block use the fixed words 0..2.
    let mut fixed = p.midstate;
    for (i, w) in p.tail.iter().enumerate() {
        round(&mut fixed, K[i].wrapping_add(*w));
    }
    let [a, b, c, d, e, f, g, h] = fixed;
    // Round 3 is t1 = (h + S1(e) + ch + K3) + W3: everything but W3 is fixed.
    let t1_fixed = h
        .wrapping_add(big_sigma1(e))
        .wrapping_add(ch(e, f, g))
        .wrapping_add(K[3]);
    let t2 = big_sigma0(a).wrapping_add(maj(a, b, c));
    let mut block = p.block2(0);

    for i in 0..count {
        if out.remaining() == 0 {
            return i;
        }
        let nonce = start.wrapping_add(i);
        let w3 = nonce.swap_bytes();
        let t1 = t1_fixed.wrapping_add(w3);
        let mut s = [t1.wrapping_add(t2), a, b, c, d.wrapping_add(t1), e, f, g];
        block[3] = w3;
        let w = sha256::schedule(&block);
        for r in 4..64 {
            round(&mut s, K[r].wrapping_add(w[r]));
        }
        let mut first = p.midstate;
        for (x, v) in first.iter_mut().zip(s) {
            *x = x.wrapping_add(v);
        }
        if top_word_of_h7(second_hash_h7(&first)) <= p.target_top {
            out.push(nonce);
        }
    }
    count
}

/// The last state word of SHA-256 over a 32-byte digest, from 61 rounds: after round 63 the `h`
/// register holds the `e` computed in round 60.
#[inline(always)]
fn second_hash_h7(first: &[u32; 8]) -> u32 {
    let mut block = [0u32; 16];
    block[..8].copy_from_slice(first);
    block[8..].copy_from_slice(&DIGEST_PAD);
    let w = sha256::schedule(&block);
    let mut s = IV;
    for r in 0..61 {
        round(&mut s, K[r].wrapping_add(w[r]));
    }
    IV[7].wrapping_add(s[4])
}
