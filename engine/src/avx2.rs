//! The AVX2 backend: 8 nonces per 256-bit vector (see [`super::simd`]). AVX2 has no vector rotate, so
//! each rotation is two shifts and an OR.

use core::arch::x86_64::{
    __m256i, _mm256_add_epi32, _mm256_and_si256, _mm256_andnot_si256, _mm256_castsi256_ps,
    _mm256_cmpeq_epi32, _mm256_min_epu32, _mm256_movemask_ps, _mm256_or_si256, _mm256_set1_epi32,
    _mm256_setr_epi32, _mm256_setr_epi8, _mm256_shuffle_epi8, _mm256_slli_epi32, _mm256_srli_epi32,
    _mm256_xor_si256,
};

use super::simd::sha256d_lanes;

type V = __m256i;
const LANES: usize = 8;

macro_rules! ror {
    ($x:expr, $n:literal) => {
        _mm256_or_si256(
            _mm256_srli_epi32::<$n>($x),
            _mm256_slli_epi32::<{ 32 - $n }>($x),
        )
    };
}

#[inline]
#[target_feature(enable = "avx2")]
fn splat(x: u32) -> V {
    _mm256_set1_epi32(x as i32)
}

#[inline]
#[target_feature(enable = "avx2")]
fn add(a: V, b: V) -> V {
    _mm256_add_epi32(a, b)
}

#[inline]
#[target_feature(enable = "avx2")]
fn xor3(a: V, b: V, c: V) -> V {
    _mm256_xor_si256(_mm256_xor_si256(a, b), c)
}

#[inline]
#[target_feature(enable = "avx2")]
fn bsig0(x: V) -> V {
    xor3(ror!(x, 2), ror!(x, 13), ror!(x, 22))
}

#[inline]
#[target_feature(enable = "avx2")]
fn bsig1(x: V) -> V {
    xor3(ror!(x, 6), ror!(x, 11), ror!(x, 25))
}

#[inline]
#[target_feature(enable = "avx2")]
fn ssig0(x: V) -> V {
    xor3(ror!(x, 7), ror!(x, 18), _mm256_srli_epi32::<3>(x))
}

#[inline]
#[target_feature(enable = "avx2")]
fn ssig1(x: V) -> V {
    xor3(ror!(x, 17), ror!(x, 19), _mm256_srli_epi32::<10>(x))
}

#[inline]
#[target_feature(enable = "avx2")]
fn ch(e: V, f: V, g: V) -> V {
    _mm256_xor_si256(_mm256_and_si256(e, f), _mm256_andnot_si256(e, g))
}

#[inline]
#[target_feature(enable = "avx2")]
fn maj(a: V, b: V, c: V) -> V {
    _mm256_or_si256(
        _mm256_and_si256(a, b),
        _mm256_and_si256(c, _mm256_or_si256(a, b)),
    )
}

/// Reverses the bytes of every 32-bit lane.
#[inline]
#[target_feature(enable = "avx2")]
fn bswap(x: V) -> V {
    let order = _mm256_setr_epi8(
        3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12, //
        3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12,
    );
    _mm256_shuffle_epi8(x, order)
}

#[inline]
#[target_feature(enable = "avx2")]
fn nonce_words(base: u32) -> V {
    let nonces = _mm256_add_epi32(splat(base), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    bswap(nonces)
}

#[inline]
#[target_feature(enable = "avx2")]
fn hits(h7: V, top: u32) -> u32 {
    let word = bswap(h7);
    // Unsigned word <= top  <=>  min(word, top) == word.
    let le = _mm256_cmpeq_epi32(_mm256_min_epu32(word, splat(top)), word);
    _mm256_movemask_ps(_mm256_castsi256_ps(le)) as u32
}

sha256d_lanes!("avx2");
