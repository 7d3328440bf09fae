//! The AVX-512 backend: 16 nonces per 512-bit vector (see [`super::simd`]), with native rotates and
//! three-input logic (`vpternlogd`) for the sigmas, `ch` and `maj`.

use core::arch::x86_64::{
    __m512i, _mm512_add_epi32, _mm512_cmple_epu32_mask, _mm512_ror_epi32, _mm512_set1_epi32,
    _mm512_set_epi32, _mm512_shuffle_epi8, _mm512_srli_epi32, _mm512_ternarylogic_epi32,
};

use super::simd::sha256d_lanes;

type V = __m512i;
const LANES: usize = 16;

/// `vpternlogd` truth tables (bit `4a + 2b + c` of the immediate is the result for inputs a, b, c).
const XOR3: i32 = 0x96;
/// `a ? b : c`.
const CHOOSE: i32 = 0xca;
const MAJORITY: i32 = 0xe8;

#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn splat(x: u32) -> V {
    _mm512_set1_epi32(x as i32)
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn add(a: V, b: V) -> V {
    _mm512_add_epi32(a, b)
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn bsig0(x: V) -> V {
    _mm512_ternarylogic_epi32::<XOR3>(
        _mm512_ror_epi32::<2>(x),
        _mm512_ror_epi32::<13>(x),
        _mm512_ror_epi32::<22>(x),
    )
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn bsig1(x: V) -> V {
    _mm512_ternarylogic_epi32::<XOR3>(
        _mm512_ror_epi32::<6>(x),
        _mm512_ror_epi32::<11>(x),
        _mm512_ror_epi32::<25>(x),
    )
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn ssig0(x: V) -> V {
    _mm512_ternarylogic_epi32::<XOR3>(
        _mm512_ror_epi32::<7>(x),
        _mm512_ror_epi32::<18>(x),
        _mm512_srli_epi32::<3>(x),
    )
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn ssig1(x: V) -> V {
    _mm512_ternarylogic_epi32::<XOR3>(
        _mm512_ror_epi32::<17>(x),
        _mm512_ror_epi32::<19>(x),
        _mm512_srli_epi32::<10>(x),
    )
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn ch(e: V, f: V, g: V) -> V {
    _mm512_ternarylogic_epi32::<CHOOSE>(e, f, g)
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn maj(a: V, b: V, c: V) -> V {
    _mm512_ternarylogic_epi32::<MAJORITY>(a, b, c)
}

/// Reverses the bytes of every 32-bit lane.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn bswap(x: V) -> V {
    // Per 128-bit block: source byte indices 3,2,1,0, 7,6,5,4, ... (element 0 is the lowest).
    let order = _mm512_set_epi32(
        0x0c0d0e0f, 0x08090a0b, 0x04050607, 0x00010203, 0x0c0d0e0f, 0x08090a0b, 0x04050607,
        0x00010203, 0x0c0d0e0f, 0x08090a0b, 0x04050607, 0x00010203, 0x0c0d0e0f, 0x08090a0b,
        0x04050607, 0x00010203,
    );
    _mm512_shuffle_epi8(x, order)
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn nonce_words(base: u32) -> V {
    let lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    bswap(_mm512_add_epi32(splat(base), lane))
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn hits(h7: V, top: u32) -> u32 {
    u32::from(_mm512_cmple_epu32_mask(bswap(h7), splat(top)))
}

sha256d_lanes!("avx512f,avx512bw");
