//! ChaCha20-Poly1305 (RFC 8439 §2.8) tuned for SV2's many short messages.
//!
//! SV2 encrypts every frame as at least two AEAD messages (a 6-byte header, then the payload), so the
//! per-message setup cost dominates small frames. The `chacha20poly1305` crate builds a fresh
//! `poly1305::Poly1305` per message, and that crate's AVX2 backend precomputes key powers at every
//! construction: about 2 µs per message on our machines, ten times the cost of the ChaCha20 work for a
//! 64-byte payload. Here the keystream comes from the `chacha20` crate (SIMD, runtime-detected) and,
//! for messages up to [`SMALL_MESSAGE_LEN`] bytes, Poly1305 is a small 64-bit ("donna") implementation
//! with no per-key precomputation. Longer messages use the `poly1305` crate, whose SIMD backend wins
//! once its setup is paid off.
//!
//! The construction is RFC 8439's: one-time key = the first 32 bytes of ChaCha20 block 0, the message is
//! encrypted from block 1, and the tag is Poly1305 over `ad || pad16 || ct || pad16 || le64(|ad|) ||
//! le64(|ct|)`. Decryption checks the tag (in constant time) before touching the ciphertext, so a
//! failed decryption leaves the buffer as it was. Checked against RFC 8439's vectors and, in the tests,
//! differentially against the `chacha20poly1305` crate.

use chacha20::cipher::{KeyIvInit, StreamCipher};
use chacha20::ChaCha20;

/// Length of the tag.
pub const TAG_LEN: usize = 16;

/// Messages (AD plus text) up to this size are authenticated with the scalar Poly1305 below; longer
/// ones with the `poly1305` crate (SIMD). Measured break-even on our machines is a few KiB.
pub const SMALL_MESSAGE_LEN: usize = 4096;

/// The AEAD failed to authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagMismatch;

/// ChaCha20-Poly1305 with a fixed key.
#[derive(Clone)]
pub struct ChaChaPoly {
    key: [u8; 32],
}

impl std::fmt::Debug for ChaChaPoly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChaChaPoly(<key redacted>)")
    }
}

impl ChaChaPoly {
    pub fn new(key: [u8; 32]) -> Self {
        ChaChaPoly { key }
    }

    /// Keystream blocks 0 to 3 in one pass, and the cipher left at block 4. The SIMD backends
    /// compute four blocks at a time, so block 0 alone (the one-time Poly1305 key) would cost as
    /// much as four, and the message's first block as much again: SV2's 6-byte headers and short
    /// payloads need one pass instead of two.
    #[inline]
    fn start(&self, nonce: &[u8; 12]) -> (ChaCha20, [u8; AHEAD]) {
        let mut cipher = ChaCha20::new(&self.key.into(), nonce.into());
        let mut keystream = [0u8; AHEAD];
        cipher.apply_keystream(&mut keystream);
        (cipher, keystream)
    }

    /// Encrypts `data` in place and returns the tag.
    #[inline]
    pub fn encrypt_in_place(&self, nonce: &[u8; 12], ad: &[u8], data: &mut [u8]) -> [u8; TAG_LEN] {
        let (mut cipher, keystream) = self.start(nonce);
        apply(&mut cipher, &keystream, data);
        mac(otk(&keystream), ad, data)
    }

    /// Checks the tag over `data` (the ciphertext), then decrypts it in place. On failure `data` is not
    /// modified.
    #[inline]
    pub fn decrypt_in_place(
        &self,
        nonce: &[u8; 12],
        ad: &[u8],
        data: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), TagMismatch> {
        let (mut cipher, keystream) = self.start(nonce);
        let expected = mac(otk(&keystream), ad, data);
        let diff = expected
            .iter()
            .zip(tag)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if std::hint::black_box(diff) != 0 {
            return Err(TagMismatch);
        }
        apply(&mut cipher, &keystream, data);
        Ok(())
    }
}

/// Keystream bytes computed ahead: blocks 0 to 3.
const AHEAD: usize = 256;

/// The one-time Poly1305 key: the first 32 bytes of block 0.
#[inline]
fn otk(keystream: &[u8; AHEAD]) -> &[u8; 32] {
    keystream[..32].try_into().expect("32 bytes")
}

/// XORs the message keystream (from block 1) into `data`: blocks 1 to 3 from what was computed
/// ahead, the rest from the cipher (at block 4).
#[inline]
fn apply(cipher: &mut ChaCha20, keystream: &[u8; AHEAD], data: &mut [u8]) {
    let ahead = data.len().min(AHEAD - 64);
    for (d, k) in data[..ahead].iter_mut().zip(&keystream[64..64 + ahead]) {
        *d ^= k;
    }
    if data.len() > ahead {
        cipher.apply_keystream(&mut data[ahead..]);
    }
}

/// The AEAD tag: Poly1305 over `ad || pad16 || ct || pad16 || le64(|ad|) || le64(|ct|)`.
#[inline]
fn mac(otk: &[u8; 32], ad: &[u8], ct: &[u8]) -> [u8; TAG_LEN] {
    let mut lengths = [0u8; 16];
    lengths[..8].copy_from_slice(&(ad.len() as u64).to_le_bytes());
    lengths[8..].copy_from_slice(&(ct.len() as u64).to_le_bytes());
    if ad.len() + ct.len() <= SMALL_MESSAGE_LEN {
        let mut mac = Poly1305::new(otk);
        mac.update_padded(ad);
        mac.update_padded(ct);
        mac.update_padded(&lengths);
        mac.finish()
    } else {
        use poly1305::universal_hash::{KeyInit, UniversalHash};
        let mut mac = poly1305::Poly1305::new(otk.into());
        mac.update_padded(ad);
        mac.update_padded(ct);
        mac.update_padded(&lengths);
        mac.finalize().into()
    }
}

const MASK44: u64 = 0xfff_ffff_ffff;
const MASK42: u64 = 0x3ff_ffff_ffff;

/// Poly1305 (RFC 8439 §2.5) with 44/44/42-bit limbs and 128-bit products.
#[derive(Clone)]
pub struct Poly1305 {
    r: [u64; 3],
    s: [u64; 2],
    h: [u64; 3],
    pad: [u64; 2],
}

impl std::fmt::Debug for Poly1305 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Poly1305(<state redacted>)")
    }
}

#[inline(always)]
fn le64(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[..8]);
    u64::from_le_bytes(w)
}

impl Poly1305 {
    /// A MAC keyed with `key = r || s` (r is clamped here).
    pub fn new(key: &[u8; 32]) -> Self {
        let t0 = le64(&key[0..8]);
        let t1 = le64(&key[8..16]);
        let r0 = t0 & 0xffc_0fff_ffff;
        let r1 = ((t0 >> 44) | (t1 << 20)) & 0xfff_ffc0_ffff;
        let r2 = (t1 >> 24) & 0x00f_ffff_fc0f;
        Poly1305 {
            r: [r0, r1, r2],
            s: [r1 * (5 << 2), r2 * (5 << 2)],
            h: [0; 3],
            pad: [le64(&key[16..24]), le64(&key[24..32])],
        }
    }

    /// Absorbs one 16-byte block; `hibit` is 1 << 40 for a full block, 0 for a final padded one.
    #[inline(always)]
    fn block(&mut self, m: &[u8], hibit: u64) {
        let [r0, r1, r2] = self.r;
        let [s1, s2] = self.s;
        let [mut h0, mut h1, mut h2] = self.h;
        let t0 = le64(&m[0..8]);
        let t1 = le64(&m[8..16]);
        h0 += t0 & MASK44;
        h1 += ((t0 >> 44) | (t1 << 20)) & MASK44;
        h2 += ((t1 >> 24) & MASK42) | hibit;

        let m = |a: u64, b: u64| u128::from(a) * u128::from(b);
        let d0 = m(h0, r0) + m(h1, s2) + m(h2, s1);
        let mut d1 = m(h0, r1) + m(h1, r0) + m(h2, s2);
        let mut d2 = m(h0, r2) + m(h1, r1) + m(h2, r0);

        let mut c = (d0 >> 44) as u64;
        h0 = (d0 as u64) & MASK44;
        d1 += u128::from(c);
        c = (d1 >> 44) as u64;
        h1 = (d1 as u64) & MASK44;
        d2 += u128::from(c);
        c = (d2 >> 42) as u64;
        h2 = (d2 as u64) & MASK42;
        h0 += c * 5;
        c = h0 >> 44;
        h0 &= MASK44;
        h1 += c;
        self.h = [h0, h1, h2];
    }

    /// Absorbs `data` zero-padded to a multiple of 16 bytes (RFC 8439's `pad16`): every block is a full
    /// block, as the AEAD construction wants.
    #[inline]
    pub fn update_padded(&mut self, data: &[u8]) {
        let mut blocks = data.chunks_exact(16);
        for b in blocks.by_ref() {
            self.block(b, 1 << 40);
        }
        let rest = blocks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 16];
            last[..rest.len()].copy_from_slice(rest);
            self.block(&last, 1 << 40);
        }
    }

    /// Absorbs a message that is not padded (plain Poly1305): the final partial block gets a 0x01
    /// byte and no high bit. Use once, last.
    pub fn update_final(&mut self, data: &[u8]) {
        let mut blocks = data.chunks_exact(16);
        for b in blocks.by_ref() {
            self.block(b, 1 << 40);
        }
        let rest = blocks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 16];
            last[..rest.len()].copy_from_slice(rest);
            last[rest.len()] = 1;
            self.block(&last, 0);
        }
    }

    /// The tag: `(h mod p) + s mod 2^128`, computed without secret-dependent branches.
    pub fn finish(&self) -> [u8; TAG_LEN] {
        let [mut h0, mut h1, mut h2] = self.h;
        let mut c = h1 >> 44;
        h1 &= MASK44;
        h2 += c;
        c = h2 >> 42;
        h2 &= MASK42;
        h0 += c * 5;
        c = h0 >> 44;
        h0 &= MASK44;
        h1 += c;
        c = h1 >> 44;
        h1 &= MASK44;
        h2 += c;
        c = h2 >> 42;
        h2 &= MASK42;
        h0 += c * 5;
        c = h0 >> 44;
        h0 &= MASK44;
        h1 += c;

        // g = h + 5 - 2^130; keep g when it did not underflow (h >= p).
        let mut g0 = h0 + 5;
        c = g0 >> 44;
        g0 &= MASK44;
        let mut g1 = h1 + c;
        c = g1 >> 44;
        g1 &= MASK44;
        let mut g2 = (h2 + c).wrapping_sub(1 << 42);
        let keep_g = (g2 >> 63).wrapping_sub(1);
        g0 &= keep_g;
        g1 &= keep_g;
        g2 &= keep_g;
        let keep_h = !keep_g;
        h0 = (h0 & keep_h) | g0;
        h1 = (h1 & keep_h) | g1;
        h2 = (h2 & keep_h) | g2;

        let [t0, t1] = self.pad;
        h0 += t0 & MASK44;
        c = h0 >> 44;
        h0 &= MASK44;
        h1 += (((t0 >> 44) | (t1 << 20)) & MASK44) + c;
        c = h1 >> 44;
        h1 &= MASK44;
        h2 += ((t1 >> 24) & MASK42) + c;
        h2 &= MASK42;

        let lo = h0 | (h1 << 44);
        let hi = (h1 >> 20) | (h2 << 24);
        let mut tag = [0u8; TAG_LEN];
        tag[..8].copy_from_slice(&lo.to_le_bytes());
        tag[8..].copy_from_slice(&hi.to_le_bytes());
        tag
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chacha20poly1305::aead::generic_array::GenericArray;
    use chacha20poly1305::{AeadInPlace, ChaCha20Poly1305, KeyInit};
    use proptest::prelude::*;

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s.replace([' ', '\n', ':'], "")).unwrap()
    }

    // RFC 8439 §2.5.2.
    #[test]
    fn poly1305_rfc8439_vector() {
        let key: [u8; 32] = unhex(
            "85:d6:be:78:57:55:6d:33:7f:44:52:fe:42:d5:06:a8:01:03:80:8a:fb:0d:b2:fd:4a:bf:f6:af:41:49:f5:1b",
        )
        .try_into()
        .unwrap();
        let mut mac = Poly1305::new(&key);
        mac.update_final(b"Cryptographic Forum Research Group");
        assert_eq!(
            hex::encode(mac.finish()),
            "a8061dc1305136c6c22b8baf0c0127a9"
        );
    }

    // Edge cases for the final reduction: h close to and above p = 2^130 - 5.
    #[test]
    fn poly1305_reduction_edges() {
        // r = 0 gives h = 0 whatever the message; the tag is then s.
        let mut key = [0u8; 32];
        key[16..].copy_from_slice(&[0xab; 16]);
        let mut mac = Poly1305::new(&key);
        mac.update_final(&[0xff; 48]);
        assert_eq!(mac.finish(), [0xab; 16]);
        // r = 1 (clamping keeps it), message of all 0xff full blocks: h sums the blocks mod p.
        let mut key = [0u8; 32];
        key[0] = 1;
        let mut mac = Poly1305::new(&key);
        mac.update_padded(&[0xff; 16]);
        // h = 2^129 - 1 (block with high bit) < p: tag = low 128 bits = all ones.
        assert_eq!(mac.finish(), [0xff; 16]);
    }

    // RFC 8439 §2.8.2: the nonce there has a non-zero first word, which our API allows.
    #[test]
    fn aead_rfc8439_vector() {
        let key: [u8; 32] =
            unhex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
                .try_into()
                .unwrap();
        let nonce: [u8; 12] = unhex("070000004041424344454647").try_into().unwrap();
        let ad = unhex("50515253c0c1c2c3c4c5c6c7");
        let mut data = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.".to_vec();
        let aead = ChaChaPoly::new(key);
        let tag = aead.encrypt_in_place(&nonce, &ad, &mut data);
        assert_eq!(hex::encode(tag), "1ae10b594f09e26a7e902ecbd0600691");
        assert_eq!(hex::encode(&data[..16]), "d31a8d34648e60db7b86afbc53ef7ec2");
        let mut bad = data.clone();
        bad[5] ^= 1;
        let snapshot = bad.clone();
        assert_eq!(
            aead.decrypt_in_place(&nonce, &ad, &mut bad, &tag),
            Err(TagMismatch)
        );
        assert_eq!(bad, snapshot, "a failed decryption leaves the buffer alone");
        aead.decrypt_in_place(&nonce, &ad, &mut data, &tag).unwrap();
        assert!(data.starts_with(b"Ladies and Gentlemen"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn agrees_with_the_chacha20poly1305_crate(
            key in any::<[u8; 32]>(),
            nonce in any::<[u8; 12]>(),
            ad in proptest::collection::vec(any::<u8>(), 0..80),
            msg in proptest::collection::vec(any::<u8>(), 0..600),
            long in any::<bool>(),
        ) {
            // Some messages past SMALL_MESSAGE_LEN, to cover the other Poly1305 path.
            let msg: Vec<u8> = if long { msg.iter().cycle().take(SMALL_MESSAGE_LEN - 20 + msg.len() * 8).copied().collect() } else { msg };
            let reference = ChaCha20Poly1305::new(&GenericArray::from(key));
            let mut theirs = msg.clone();
            let their_tag = reference
                .encrypt_in_place_detached(GenericArray::from_slice(&nonce), &ad, &mut theirs)
                .unwrap();
            let mut ours = msg.clone();
            let tag = ChaChaPoly::new(key).encrypt_in_place(&nonce, &ad, &mut ours);
            prop_assert_eq!(&ours, &theirs);
            prop_assert_eq!(&tag[..], &their_tag[..]);
            ChaChaPoly::new(key).decrypt_in_place(&nonce, &ad, &mut ours, &tag).unwrap();
            prop_assert_eq!(ours, msg);
        }

        #[test]
        fn poly1305_agrees_with_the_poly1305_crate_through_the_aead(
            key in any::<[u8; 32]>(),
            blocks in proptest::collection::vec(any::<u8>(), 0..4000),
        ) {
            // Large messages exercise long runs of carries.
            let reference = ChaCha20Poly1305::new(&GenericArray::from(key));
            let mut theirs = blocks.clone();
            let their_tag = reference
                .encrypt_in_place_detached(GenericArray::from_slice(&[0; 12]), &[], &mut theirs)
                .unwrap();
            let mut ours = blocks;
            let tag = ChaChaPoly::new(key).encrypt_in_place(&[0; 12], &[], &mut ours);
            prop_assert_eq!(&tag[..], &their_tag[..]);
        }
    }
}
