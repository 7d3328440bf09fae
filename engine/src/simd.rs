//! The SHA-256d lane code shared by the AVX2 and AVX-512 backends: every lane of a vector hashes its
//! own nonce, with the same instruction stream.
//!
//! [`sha256d_lanes!`] expands, inside a backend module, into the backend's `scan`. The module provides,
//! as `#[target_feature]` functions with the feature string given to the macro: a vector type `V`, the
//! lane count `LANES`, and `splat`, `add`, `bsig0`, `bsig1` (the round sigmas), `ssig0`, `ssig1` (the
//! schedule sigmas), `ch`, `maj`, `nonce_words(base)` (the byte-swapped nonces `base + lane`) and
//! `hits(h7, top)` (bit `j` set when lane `j`'s `H7`, byte-swapped, is at most `top`).
//!
//! Per call: per header of the group, the first three rounds of the second block and the nonce-free
//! part of round 3 in scalar; `W + K` of the constant words; schedule words 16 and 17 (they do not
//! involve the nonce). Per batch of lanes: the first hash's message schedule once for the group
//! (it only depends on the second block, which the headers share), then per header rounds 3..63 of
//! the first hash and rounds 0..60 of the second (after round 63, `h` holds the `e` of round 60,
//! so that is all `H7` needs). The rounds are unrolled (macros with literal indices) so that
//! constant message words fold away.

/// Schedule word `i` then round `i`, for each literal `i`: unrolled so that constant message words
/// fold away and only the last sixteen words stay live.
macro_rules! schedule_and_round {
    ($s:ident, $w:ident; $($i:literal)*) => {
        $(
            $w[$i] = add(
                add(ssig1($w[$i - 2]), $w[$i - 7]),
                add(ssig0($w[$i - 15]), $w[$i - 16]),
            );
            round(&mut $s, add(splat(K[$i]), $w[$i]));
        )*
    };
}

/// Schedule word `i` and its `K + W` into `kw[i]`, for each literal `i` (the first hash's schedule,
/// shared by every header of a group).
macro_rules! schedule {
    ($w:ident, $kw:ident; $($i:literal)*) => {
        $(
            $w[$i] = add(
                add(ssig1($w[$i - 2]), $w[$i - 7]),
                add(ssig0($w[$i - 15]), $w[$i - 16]),
            );
            $kw[$i] = add(splat(K[$i]), $w[$i]);
        )*
    };
}

/// Round `i` on a precomputed vector `kw[i] = K[i] + W[i]`, for each literal `i`.
macro_rules! rounds_kw {
    ($s:ident, $kw:ident; $($i:literal)*) => {
        $( round(&mut $s, $kw[$i]); )*
    };
}

/// Round `i` on message word `w[i]`, for each literal `i`.
macro_rules! rounds {
    ($s:ident, $w:ident; $($i:literal)*) => {
        $( round(&mut $s, add(splat(K[$i]), $w[$i])); )*
    };
}

/// Round `i` on the precomputed scalar `kw[i] = K[i] + W[i]` (constant message words).
macro_rules! rounds_fixed {
    ($s:ident, $kw:ident; $($i:literal)*) => {
        $( round(&mut $s, splat($kw[$i])); )*
    };
}

macro_rules! sha256d_lanes {
    ($feature:literal) => {
        /// One round on every lane (`kw = K[i] + W[i]`).
        #[inline]
        #[target_feature(enable = $feature)]
        fn round(s: &mut [V; 8], kw: V) {
            let [a, b, c, d, e, f, g, h] = *s;
            let t1 = add(add(h, bsig1(e)), add(ch(e, f, g), kw));
            let t2 = add(bsig0(a), maj(a, b, c));
            *s = [add(t1, t2), a, b, c, add(d, t1), e, f, g];
        }

        /// Scans nonces `start..start + count` for every header of `group` (see
        /// `Hasher::scan_group`), `LANES` nonces at a time; the first hash's message schedule of
        /// those nonces is computed once for the whole group.
        #[target_feature(enable = $feature)]
        pub(crate) fn scan(
            group: &[$crate::PreparedHeader],
            start: u32,
            count: u32,
            out: &mut $crate::Candidates,
        ) -> u32 {
            use $crate::sha256::{
                self as sha, big_sigma0, big_sigma1, small_sigma0, small_sigma1, DIGEST_PAD,
                HEADER_PAD, IV, K,
            };
            // Per header: the state after rounds 0..2 of the second block (they see only the fixed
            // words 0..2) and, for round 3, t1 = (h + S1(e) + ch(e, f, g) + K3) + W3 where only W3
            // varies, and t2.
            let mut fixed = [([0u32; 8], 0u32, 0u32); $crate::MAX_GROUP];
            for (fixed, p) in fixed.iter_mut().zip(group) {
                let mut state = p.midstate;
                for i in 0..3 {
                    sha::round(&mut state, K[i].wrapping_add(p.tail[i]));
                }
                let [a, b, c, _, e, f, g, h] = state;
                let t1 = h
                    .wrapping_add(big_sigma1(e))
                    .wrapping_add(sha::ch(e, f, g))
                    .wrapping_add(K[3]);
                *fixed = (state, t1, big_sigma0(a).wrapping_add(sha::maj(a, b, c)));
            }
            let tail = group[0].tail;
            let target_top = group[0].target_top;
            // The first hash's message words: 0..2 and 4..15 fixed, 16 and 17 too.
            let mut block = [0u32; 18];
            block[..3].copy_from_slice(&tail);
            block[4..16].copy_from_slice(&HEADER_PAD);
            block[16] = small_sigma1(block[14])
                .wrapping_add(block[9])
                .wrapping_add(small_sigma0(block[1]))
                .wrapping_add(block[0]);
            block[17] = small_sigma1(block[15])
                .wrapping_add(block[10])
                .wrapping_add(small_sigma0(block[2]))
                .wrapping_add(block[1]);
            let mut kw_first = [0u32; 16];
            for i in 4..16 {
                kw_first[i] = K[i].wrapping_add(block[i]);
            }
            let mut kw_second = [0u32; 16];
            for i in 8..16 {
                kw_second[i] = K[i].wrapping_add(DIGEST_PAD[i - 8]);
            }
            let mut w1 = [splat(0); 64];
            for (w, x) in w1.iter_mut().zip(block) {
                *w = splat(x);
            }
            let mut w2 = [splat(0); 64];
            for i in 8..16 {
                w2[i] = splat(DIGEST_PAD[i - 8]);
            }
            // K + W of rounds 16..63 of the first hash, shared by the group.
            let mut kw1 = [splat(0); 64];
            kw1[16] = splat(K[16].wrapping_add(block[16]));
            kw1[17] = splat(K[17].wrapping_add(block[17]));
            let lane_mask = |lanes: u32| -> u32 {
                if lanes >= 32 {
                    u32::MAX
                } else {
                    (1u32 << lanes) - 1
                }
            };

            let mut done = 0u32;
            while done < count {
                if out.remaining() < LANES * group.len() {
                    return done;
                }
                let base = start.wrapping_add(done);
                let lanes = (count - done).min(LANES as u32);
                // The first hash's schedule from word 18 (3 is the nonce), shared by the group.
                let w3 = nonce_words(base);
                w1[3] = w3;
                $crate::simd::schedule!(w1, kw1;
                    18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 36 37 38 39 40
                    41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59 60 61 62 63);
                for (index, (p, &(state, t1_fixed, t2_fixed))) in group.iter().zip(&fixed).enumerate() {
                    // First hash, second block, from round 3 (the nonce-free part plus W3).
                    let [a, b, c, d, e, f, g, _] = state;
                    let t1 = add(splat(t1_fixed), w3);
                    let mut s = [
                        add(t1, splat(t2_fixed)),
                        splat(a),
                        splat(b),
                        splat(c),
                        add(splat(d), t1),
                        splat(e),
                        splat(f),
                        splat(g),
                    ];
                    $crate::simd::rounds_fixed!(s, kw_first; 4 5 6 7 8 9 10 11 12 13 14 15);
                    $crate::simd::rounds_kw!(s, kw1;
                        16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 36 37 38 39
                        40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59 60 61 62 63);
                    // Second hash over the first digest, rounds 0..60.
                    for i in 0..8 {
                        w2[i] = add(s[i], splat(p.midstate[i]));
                    }
                    let mut s = [splat(0); 8];
                    for (v, x) in s.iter_mut().zip(IV) {
                        *v = splat(x);
                    }
                    $crate::simd::rounds!(s, w2; 0 1 2 3 4 5 6 7);
                    $crate::simd::rounds_fixed!(s, kw_second; 8 9 10 11 12 13 14 15);
                    $crate::simd::schedule_and_round!(s, w2;
                        16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 36 37 38
                        39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59 60);
                    let h7 = add(s[4], splat(IV[7]));
                    let mut hit = hits(h7, target_top) & lane_mask(lanes);
                    while hit != 0 {
                        out.push(index, base.wrapping_add(hit.trailing_zeros()));
                        hit &= hit - 1;
                    }
                }
                done += lanes;
            }
            count
        }
    };
}

pub(crate) use {rounds, rounds_fixed, rounds_kw, schedule, schedule_and_round, sha256d_lanes};
