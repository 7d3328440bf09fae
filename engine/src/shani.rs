//! The SHA extensions backend (SHA-NI): `sha256rnds2` does two rounds per instruction, but each
//! depends on the previous one, so a single hash waits on the instruction's latency. `N` independent
//! nonces are interleaved step by step so that the unit always has work.
//!
//! Per call, once: the midstate and the state after rounds 0-1 of the second block (its words 0-1
//! are fixed) in the ABEF/CDGH register layout the instructions use. Per nonce: rounds 2..63 of the
//! first hash (with precomputed `W + K` for the constant padding words 4..15), then rounds 0..61 of
//! the second hash: after round 61 the `F` slot holds the `e` of round 60, which is what ends up in
//! `H7`, so the last two rounds are skipped.

use core::arch::x86_64::{
    __m128i, _mm_add_epi32, _mm_alignr_epi8, _mm_blend_epi16, _mm_cvtsi128_si32, _mm_insert_epi32,
    _mm_set_epi32, _mm_sha256msg1_epu32, _mm_sha256msg2_epu32, _mm_sha256rnds2_epu32,
    _mm_shuffle_epi32, _mm_srli_si128,
};

use super::header::{top_word_of_h7, PreparedHeader};
use super::sha256::{round, DIGEST_PAD, HEADER_PAD, IV, K};
use super::{Candidates, MAX_GROUP};

/// `[a, b, c, d, e, f, g, h]` as the (ABEF, CDGH) register pair: element 3 is A (resp. C).
#[inline]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn to_abef_cdgh(s: &[u32; 8]) -> (__m128i, __m128i) {
    let [a, b, c, d, e, f, g, h] = s.map(|x| x as i32);
    (_mm_set_epi32(a, b, e, f), _mm_set_epi32(c, d, g, h))
}

/// Four consecutive words as a vector, element 0 first.
#[inline]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn vec4(w: [u32; 4]) -> __m128i {
    _mm_set_epi32(w[3] as i32, w[2] as i32, w[1] as i32, w[0] as i32)
}

/// `K[i..i+4]` as a vector.
#[inline]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn k4(i: usize) -> __m128i {
    vec4([K[i], K[i + 1], K[i + 2], K[i + 3]])
}

/// `K[i] + w0, K[i + 1] + w1` in the low half, for one `sha256rnds2`.
#[inline]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn kw2(i: usize, w0: u32, w1: u32) -> __m128i {
    vec4([K[i].wrapping_add(w0), K[i + 1].wrapping_add(w1), 0, 0])
}

/// Two rounds on every lane.
#[inline]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn rounds2<const N: usize>(abef: &mut [__m128i; N], cdgh: &mut [__m128i; N], kw: &[__m128i; N]) {
    for j in 0..N {
        let next = _mm_sha256rnds2_epu32(cdgh[j], abef[j], kw[j]);
        cdgh[j] = abef[j];
        abef[j] = next;
    }
}

/// Two rounds on every lane with the same `K + W` (constant message words).
#[inline]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn rounds2_same<const N: usize>(abef: &mut [__m128i; N], cdgh: &mut [__m128i; N], kw: __m128i) {
    rounds2(abef, cdgh, &[kw; N]);
}

/// Four rounds on every lane from four message words per lane (`m + K[i..i+4]`).
#[inline]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn rounds4<const N: usize>(
    abef: &mut [__m128i; N],
    cdgh: &mut [__m128i; N],
    m: &[__m128i; N],
    i: usize,
) {
    let k = k4(i);
    let mut kw = [k; N];
    for j in 0..N {
        kw[j] = _mm_add_epi32(m[j], k);
    }
    rounds2(abef, cdgh, &kw);
    for x in kw.iter_mut() {
        *x = _mm_shuffle_epi32::<0x0e>(*x);
    }
    rounds2(abef, cdgh, &kw);
}

/// The next four schedule words from the previous sixteen (`m0` oldest).
#[inline]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn next4<const N: usize>(
    m0: &[__m128i; N],
    m1: &[__m128i; N],
    m2: &[__m128i; N],
    m3: &[__m128i; N],
) -> [__m128i; N] {
    let mut out = *m3;
    for j in 0..N {
        let t = _mm_add_epi32(
            _mm_sha256msg1_epu32(m0[j], m1[j]),
            _mm_alignr_epi8::<4>(m3[j], m2[j]),
        );
        out[j] = _mm_sha256msg2_epu32(t, m3[j]);
    }
    out
}

/// Rounds `i..i + 4` on every lane from the next four schedule words `m`, keeping their `K + W`
/// (two rounds per slot, the second pair moved down) in `kw[slot]` and `kw[slot + 1]` for the other
/// headers of the group.
#[inline]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn rounds4_keep<const N: usize>(
    abef: &mut [__m128i; N],
    cdgh: &mut [__m128i; N],
    m: &[__m128i; N],
    i: usize,
    kw: &mut [[__m128i; N]; 24],
    slot: usize,
) {
    let k = k4(i);
    let mut lo = *m;
    let mut hi = *m;
    for j in 0..N {
        lo[j] = _mm_add_epi32(m[j], k);
        hi[j] = _mm_shuffle_epi32::<0x0e>(lo[j]);
    }
    kw[slot] = lo;
    kw[slot + 1] = hi;
    rounds2(abef, cdgh, &lo);
    rounds2(abef, cdgh, &hi);
}

/// Constants of a scan: `K + W` of the constant words and the fixed message vectors.
#[derive(Clone, Copy)]
struct Fixed {
    kw_first: [__m128i; 6],
    head: [__m128i; 3],
    kw_second: [__m128i; 4],
    tail: [__m128i; 2],
    iv: (__m128i, __m128i),
}

#[inline]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn fixed() -> Fixed {
    let pad = |i: usize| HEADER_PAD[i - 4];
    let dpad = |i: usize| DIGEST_PAD[i - 8];
    Fixed {
        kw_first: [
            kw2(4, pad(4), pad(5)),
            kw2(6, pad(6), pad(7)),
            kw2(8, pad(8), pad(9)),
            kw2(10, pad(10), pad(11)),
            kw2(12, pad(12), pad(13)),
            kw2(14, pad(14), pad(15)),
        ],
        head: [
            vec4([pad(4), pad(5), pad(6), pad(7)]),
            vec4([pad(8), pad(9), pad(10), pad(11)]),
            vec4([pad(12), pad(13), pad(14), pad(15)]),
        ],
        kw_second: [
            kw2(8, dpad(8), dpad(9)),
            kw2(10, dpad(10), dpad(11)),
            kw2(12, dpad(12), dpad(13)),
            kw2(14, dpad(14), dpad(15)),
        ],
        tail: [
            vec4([dpad(8), dpad(9), dpad(10), dpad(11)]),
            vec4([dpad(12), dpad(13), dpad(14), dpad(15)]),
        ],
        iv: to_abef_cdgh(&IV),
    }
}

/// From the state after the first hash's 64 rounds, the second hash's state after round 61 (its
/// ABEF register: `F` is the `e` of round 60).
#[inline]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn second_hash<const N: usize>(
    abef: &[__m128i; N],
    cdgh: &[__m128i; N],
    ms: (__m128i, __m128i),
    c: &Fixed,
) -> [__m128i; N] {
    // The first digest, in message order: (H0..H3) and (H4..H7).
    let mut d0 = *abef;
    let mut d1 = *cdgh;
    for j in 0..N {
        let abef = _mm_add_epi32(abef[j], ms.0);
        let cdgh = _mm_add_epi32(cdgh[j], ms.1);
        let abef = _mm_shuffle_epi32::<0x1b>(abef); // (F,E,B,A) -> (A,B,E,F)
        let cdgh = _mm_shuffle_epi32::<0xb1>(cdgh); // (H,G,D,C) -> (G,H,C,D)
        d0[j] = _mm_blend_epi16::<0xf0>(abef, cdgh); // (A,B,C,D)
        d1[j] = _mm_alignr_epi8::<8>(cdgh, abef); // (E,F,G,H)
    }
    let mut abef = [c.iv.0; N];
    let mut cdgh = [c.iv.1; N];
    rounds4(&mut abef, &mut cdgh, &d0, 0);
    rounds4(&mut abef, &mut cdgh, &d1, 4);
    for kw in c.kw_second {
        rounds2_same(&mut abef, &mut cdgh, kw);
    }
    let m2 = [c.tail[0]; N];
    let m3 = [c.tail[1]; N];
    let m4 = next4(&d0, &d1, &m2, &m3);
    rounds4(&mut abef, &mut cdgh, &m4, 16);
    let m5 = next4(&d1, &m2, &m3, &m4);
    rounds4(&mut abef, &mut cdgh, &m5, 20);
    let m6 = next4(&m2, &m3, &m4, &m5);
    rounds4(&mut abef, &mut cdgh, &m6, 24);
    let m7 = next4(&m3, &m4, &m5, &m6);
    rounds4(&mut abef, &mut cdgh, &m7, 28);
    let m8 = next4(&m4, &m5, &m6, &m7);
    rounds4(&mut abef, &mut cdgh, &m8, 32);
    let m9 = next4(&m5, &m6, &m7, &m8);
    rounds4(&mut abef, &mut cdgh, &m9, 36);
    let m10 = next4(&m6, &m7, &m8, &m9);
    rounds4(&mut abef, &mut cdgh, &m10, 40);
    let m11 = next4(&m7, &m8, &m9, &m10);
    rounds4(&mut abef, &mut cdgh, &m11, 44);
    let m12 = next4(&m8, &m9, &m10, &m11);
    rounds4(&mut abef, &mut cdgh, &m12, 48);
    let m13 = next4(&m9, &m10, &m11, &m12);
    rounds4(&mut abef, &mut cdgh, &m13, 52);
    let m14 = next4(&m10, &m11, &m12, &m13);
    rounds4(&mut abef, &mut cdgh, &m14, 56);
    let m15 = next4(&m11, &m12, &m13, &m14);
    let k = k4(60);
    let mut kw = m15;
    for j in 0..N {
        kw[j] = _mm_add_epi32(m15[j], k);
    }
    rounds2(&mut abef, &mut cdgh, &kw);
    abef
}

/// Scans nonces `start..start + count` for every header of `group` (see
/// [`super::Hasher::scan_group`]), `N` nonces at a time. The first header computes the first
/// hash's message schedule of those nonces as it goes and keeps `K + W`; the others reuse it.
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
pub(crate) fn scan<const N: usize>(
    group: &[PreparedHeader],
    start: u32,
    count: u32,
    out: &mut Candidates,
) -> u32 {
    let zero = _mm_set_epi32(0, 0, 0, 0);
    // Per header: the midstate and the state after rounds 0 and 1 of the second block (they only
    // see the fixed words 0 and 1).
    let mut ms = [(zero, zero); MAX_GROUP];
    let mut after2 = [(zero, zero); MAX_GROUP];
    for (i, p) in group.iter().enumerate() {
        ms[i] = to_abef_cdgh(&p.midstate);
        let mut state = p.midstate;
        round(&mut state, K[0].wrapping_add(p.tail[0]));
        round(&mut state, K[1].wrapping_add(p.tail[1]));
        after2[i] = to_abef_cdgh(&state);
    }
    let tail = group[0].tail;
    let target_top = group[0].target_top;
    let msg0 = vec4([tail[0], tail[1], tail[2], 0]);
    let c = fixed();
    let k0 = k4(0);
    let mut kw = [[zero; N]; 24];

    let mut done = 0u32;
    while done < count {
        if out.remaining() < N * group.len() {
            return done;
        }
        let base = start.wrapping_add(done);
        let lanes = (count - done).min(N as u32);
        // Shared by the group: the first message words and K + W of rounds 2 and 3.
        let mut m0 = [msg0; N];
        let mut kw23 = [msg0; N];
        for j in 0..N {
            let w3 = base.wrapping_add(j as u32).swap_bytes();
            m0[j] = _mm_insert_epi32::<3>(msg0, w3 as i32);
            kw23[j] = _mm_srli_si128::<8>(_mm_add_epi32(m0[j], k0));
        }
        for (index, (&ms, &(fixed_abef, fixed_cdgh))) in
            ms.iter().zip(&after2).take(group.len()).enumerate()
        {
            // First hash, second block, from round 2.
            let mut abef = [fixed_abef; N];
            let mut cdgh = [fixed_cdgh; N];
            rounds2(&mut abef, &mut cdgh, &kw23);
            for kw in c.kw_first {
                rounds2_same(&mut abef, &mut cdgh, kw);
            }
            if index == 0 {
                let m1 = [c.head[0]; N];
                let m2 = [c.head[1]; N];
                let m3 = [c.head[2]; N];
                let m4 = next4(&m0, &m1, &m2, &m3);
                rounds4_keep(&mut abef, &mut cdgh, &m4, 16, &mut kw, 0);
                let m5 = next4(&m1, &m2, &m3, &m4);
                rounds4_keep(&mut abef, &mut cdgh, &m5, 20, &mut kw, 2);
                let m6 = next4(&m2, &m3, &m4, &m5);
                rounds4_keep(&mut abef, &mut cdgh, &m6, 24, &mut kw, 4);
                let m7 = next4(&m3, &m4, &m5, &m6);
                rounds4_keep(&mut abef, &mut cdgh, &m7, 28, &mut kw, 6);
                let m8 = next4(&m4, &m5, &m6, &m7);
                rounds4_keep(&mut abef, &mut cdgh, &m8, 32, &mut kw, 8);
                let m9 = next4(&m5, &m6, &m7, &m8);
                rounds4_keep(&mut abef, &mut cdgh, &m9, 36, &mut kw, 10);
                let m10 = next4(&m6, &m7, &m8, &m9);
                rounds4_keep(&mut abef, &mut cdgh, &m10, 40, &mut kw, 12);
                let m11 = next4(&m7, &m8, &m9, &m10);
                rounds4_keep(&mut abef, &mut cdgh, &m11, 44, &mut kw, 14);
                let m12 = next4(&m8, &m9, &m10, &m11);
                rounds4_keep(&mut abef, &mut cdgh, &m12, 48, &mut kw, 16);
                let m13 = next4(&m9, &m10, &m11, &m12);
                rounds4_keep(&mut abef, &mut cdgh, &m13, 52, &mut kw, 18);
                let m14 = next4(&m10, &m11, &m12, &m13);
                rounds4_keep(&mut abef, &mut cdgh, &m14, 56, &mut kw, 20);
                let m15 = next4(&m11, &m12, &m13, &m14);
                rounds4_keep(&mut abef, &mut cdgh, &m15, 60, &mut kw, 22);
            } else {
                for kw in &kw {
                    rounds2(&mut abef, &mut cdgh, kw);
                }
            }
            // H7 = IV7 + F (the e of round 60); lanes past the end of the range are not reported.
            let abef = second_hash(&abef, &cdgh, ms, &c);
            for (j, v) in abef.iter().enumerate().take(lanes as usize) {
                let h7 = IV[7].wrapping_add(_mm_cvtsi128_si32(*v) as u32);
                if top_word_of_h7(h7) <= target_top {
                    out.push(index, base.wrapping_add(j as u32));
                }
            }
        }
        done += lanes;
    }
    count
}
