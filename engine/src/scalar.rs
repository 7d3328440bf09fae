//! The portable backend: one nonce at a time with plain `u32` arithmetic. It compiles everywhere and
//! is the fallback when the CPU has neither SHA extensions nor AVX2.
//!
//! Per call it computes what does not depend on the nonce once: per header, the first three rounds
//! of the second block (words 0..2 are fixed) and the nonce-free part of round 3. Per nonce, the
//! message schedule of the second block once for the whole group, then per header the rounds. The
//! second hash stops at round 60, which is enough to know `H7`.

use super::header::{top_word_of_h7, PreparedHeader};
use super::sha256::{self, big_sigma0, big_sigma1, ch, maj, round, DIGEST_PAD, IV, K};
use super::{Candidates, MAX_GROUP};

/// What one header of a group needs besides the shared schedule: the state after round 2 and the
/// nonce-free parts of round 3.
#[derive(Clone, Copy, Default)]
struct Fixed {
    state: [u32; 8],
    t1: u32,
    t2: u32,
}

fn fixed(p: &PreparedHeader) -> Fixed {
    let mut state = p.midstate;
    for (i, w) in p.tail.iter().enumerate() {
        round(&mut state, K[i].wrapping_add(*w));
    }
    let [a, b, c, _, e, f, g, h] = state;
    Fixed {
        state,
        // Round 3 is t1 = (h + S1(e) + ch + K3) + W3: everything but W3 is fixed.
        t1: h
            .wrapping_add(big_sigma1(e))
            .wrapping_add(ch(e, f, g))
            .wrapping_add(K[3]),
        t2: big_sigma0(a).wrapping_add(maj(a, b, c)),
    }
}

pub(crate) fn scan(group: &[PreparedHeader], start: u32, count: u32, out: &mut Candidates) -> u32 {
    let mut fixeds = [Fixed::default(); MAX_GROUP];
    for (f, p) in fixeds.iter_mut().zip(group) {
        *f = fixed(p);
    }
    let fixeds = &fixeds[..group.len()];
    let mut block = group[0].block2(0);

    for i in 0..count {
        if out.remaining() < group.len() {
            return i;
        }
        let nonce = start.wrapping_add(i);
        let w3 = nonce.swap_bytes();
        block[3] = w3;
        let w = sha256::schedule(&block);
        for (index, (p, f)) in group.iter().zip(fixeds).enumerate() {
            let [a, b, c, d, e, f_, g, _] = f.state;
            let t1 = f.t1.wrapping_add(w3);
            let mut s = [t1.wrapping_add(f.t2), a, b, c, d.wrapping_add(t1), e, f_, g];
            for r in 4..64 {
                round(&mut s, K[r].wrapping_add(w[r]));
            }
            let mut first = p.midstate;
            for (x, v) in first.iter_mut().zip(s) {
                *x = x.wrapping_add(v);
            }
            if top_word_of_h7(second_hash_h7(&first)) <= p.target_top {
                out.push(index, nonce);
            }
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
