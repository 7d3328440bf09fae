//! Noise's CipherState and SymmetricState (Noise spec §5.1 and §5.2) with SHA-256 and
//! ChaCha20-Poly1305, as SV2 uses them (CATALOG §C).
//!
//! - HASH = SHA-256, HMAC = RFC 2104 (64-byte block), HKDF = Noise's two-output HKDF with an empty info.
//! - Nonce = 4 zero bytes || u64 little-endian counter. Nonce 2^64 - 1 is reserved: reaching it is
//!   [`NoiseError::NonceExhausted`], never a wrap. A failed decryption does not advance the counter.
//!
//! Nothing here depends on the DH function: the same code runs the SV2 handshake over secp256k1
//! ElligatorSwift and, in tests, a Curve25519 handshake against an independent Noise library.

use hmac::digest::generic_array::GenericArray;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::aead::ChaChaPoly;
use super::error::NoiseError;

/// Length of a SHA-256 output, of `h`, `ck` and of every key.
pub const HASH_LEN: usize = 32;
/// Length of a Poly1305 tag.
pub const MAC_LEN: usize = 16;
/// Largest message one AEAD call accepts (ChaCha20's 32-bit block counter allows 256 GiB; SV2 never
/// needs more than 65535 bytes, the handshake less than 100).
pub const MAX_AEAD_LEN: usize = 1 << 32;

type HmacSha256 = Hmac<Sha256>;

/// SHA-256 of the concatenation of `parts`.
pub fn sha256(parts: &[&[u8]]) -> [u8; HASH_LEN] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// HMAC-SHA256 with a 32-byte key over the concatenation of `parts`.
pub fn hmac_sha256(key: &[u8; HASH_LEN], parts: &[&[u8]]) -> [u8; HASH_LEN] {
    // A key shorter than the 64-byte block is zero-padded by HMAC: padding it here lets us use the
    // infallible fixed-size constructor.
    let mut block = [0u8; 64];
    block[..HASH_LEN].copy_from_slice(key);
    let mut mac = <HmacSha256 as KeyInit>::new(&GenericArray::from(block));
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Noise's HKDF with two outputs and an empty info (CATALOG §C):
/// `temp = HMAC(ck, ikm); o1 = HMAC(temp, 0x01); o2 = HMAC(temp, o1 || 0x02)`.
pub fn hkdf2(chaining_key: &[u8; HASH_LEN], ikm: &[u8]) -> ([u8; HASH_LEN], [u8; HASH_LEN]) {
    let temp = hmac_sha256(chaining_key, &[ikm]);
    let o1 = hmac_sha256(&temp, &[&[0x01]]);
    let o2 = hmac_sha256(&temp, &[&o1, &[0x02]]);
    (o1, o2)
}

/// The 12-byte ChaCha20-Poly1305 nonce for counter `n`: 4 zero bytes || n as u64 LE.
pub fn nonce_bytes(n: u64) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&n.to_le_bytes());
    nonce
}

/// A key, its ChaCha20-Poly1305 instance and a nonce counter (Noise CipherState with a key set).
#[derive(Clone)]
pub struct CipherState {
    key: [u8; 32],
    aead: ChaChaPoly,
    n: u64,
}

impl std::fmt::Debug for CipherState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CipherState")
            .field("key", &"<redacted>")
            .field("n", &self.n)
            .finish()
    }
}

impl CipherState {
    /// InitializeKey(key): n = 0.
    pub fn new(key: [u8; 32]) -> Self {
        CipherState {
            aead: ChaChaPoly::new(key),
            key,
            n: 0,
        }
    }

    /// The key (for key logs and test vectors).
    pub fn key(&self) -> [u8; 32] {
        self.key
    }

    /// The next nonce counter value.
    pub fn nonce(&self) -> u64 {
        self.n
    }

    /// Noise's SetNonce. Meant for tests and for resuming a logged session.
    pub fn set_nonce(&mut self, n: u64) {
        self.n = n;
    }

    /// How many more AEAD operations this state can do before the reserved nonce 2^64 - 1.
    pub fn remaining(&self) -> u64 {
        u64::MAX - self.n
    }

    /// EncryptWithAd in place with a detached tag; advances the nonce.
    #[inline]
    pub fn encrypt_in_place(
        &mut self,
        ad: &[u8],
        data: &mut [u8],
    ) -> Result<[u8; MAC_LEN], NoiseError> {
        if self.n == u64::MAX {
            return Err(NoiseError::NonceExhausted);
        }
        if data.len() > MAX_AEAD_LEN {
            return Err(NoiseError::WrongLength {
                what: "AEAD plaintext",
                expected: MAX_AEAD_LEN,
                got: data.len(),
            });
        }
        let tag = self.aead.encrypt_in_place(&nonce_bytes(self.n), ad, data);
        self.n += 1;
        Ok(tag)
    }

    /// DecryptWithAd in place with a detached tag. Advances the nonce only on success; on failure
    /// `data` is left as it was (the tag is checked before decrypting).
    #[inline]
    pub fn decrypt_in_place(
        &mut self,
        ad: &[u8],
        data: &mut [u8],
        tag: &[u8; MAC_LEN],
    ) -> Result<(), AuthFailed> {
        if self.n == u64::MAX {
            return Err(AuthFailed::NonceExhausted);
        }
        if data.len() > MAX_AEAD_LEN {
            return Err(AuthFailed::Tag);
        }
        self.aead
            .decrypt_in_place(&nonce_bytes(self.n), ad, data, tag)
            .map_err(|_| AuthFailed::Tag)?;
        self.n += 1;
        Ok(())
    }

    /// EncryptWithAd appending `plaintext || tag` to `out`.
    pub fn encrypt_append(
        &mut self,
        ad: &[u8],
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), NoiseError> {
        let start = out.len();
        out.extend_from_slice(plaintext);
        match self.encrypt_in_place(ad, &mut out[start..]) {
            Ok(tag) => {
                out.extend_from_slice(&tag);
                Ok(())
            }
            Err(e) => {
                out.truncate(start);
                Err(e)
            }
        }
    }

    /// DecryptWithAd of `ciphertext || tag`, appending the plaintext to `out`. On failure `out` is
    /// left as it was.
    pub fn decrypt_append(
        &mut self,
        ad: &[u8],
        ciphertext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), AuthFailed> {
        let Some(body_len) = ciphertext.len().checked_sub(MAC_LEN) else {
            return Err(AuthFailed::Tag);
        };
        let (body, tag) = ciphertext.split_at(body_len);
        let Ok(tag) = <&[u8; MAC_LEN]>::try_from(tag) else {
            return Err(AuthFailed::Tag);
        };
        let start = out.len();
        out.extend_from_slice(body);
        if let Err(e) = self.decrypt_in_place(ad, &mut out[start..], tag) {
            out.truncate(start);
            return Err(e);
        }
        Ok(())
    }
}

/// Why an AEAD decryption did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailed {
    /// The tag did not verify (or the ciphertext was shorter than a tag).
    Tag,
    /// The nonce counter reached 2^64 - 1.
    NonceExhausted,
}

/// One recorded step of a handshake: the state after it, and the bytes it consumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceStep {
    /// What happened, e.g. `"init"`, `"mix_hash(e)"`, `"mix_key(ee)"`, `"encrypt_and_hash(s)"`,
    /// `"act1"`, `"split"`.
    pub label: &'static str,
    /// The handshake hash after the step.
    pub h: [u8; 32],
    /// The chaining key after the step.
    pub ck: [u8; 32],
    /// The handshake cipher key after the step (none before the first MixKey).
    pub k: Option<[u8; 32]>,
    /// The step's input: bytes mixed into `h`, the DH output mixed into `ck`, a plaintext, the whole
    /// act for `"act1"`/`"act2"`, or `k1 || k2` for `"split"`. Secret material: keep traces out of
    /// production logs.
    pub data: Vec<u8>,
}

/// Noise SymmetricState: `ck`, `h` and the handshake CipherState, with an optional trace.
#[derive(Clone)]
pub struct SymmetricState {
    h: [u8; 32],
    ck: [u8; 32],
    cipher: Option<CipherState>,
    trace: Option<Vec<TraceStep>>,
}

impl std::fmt::Debug for SymmetricState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SymmetricState")
            .field("h", &hex::encode(self.h))
            .field("has_key", &self.cipher.is_some())
            .finish_non_exhaustive()
    }
}

impl SymmetricState {
    /// InitializeSymmetric(protocol_name) followed by MixHash(prologue).
    ///
    /// `h = protocol_name` zero-padded to 32 bytes if it is at most 32 bytes long, else
    /// `SHA256(protocol_name)`; `ck = h`; then `h = SHA256(h || prologue)`.
    pub fn new(protocol_name: &[u8], prologue: &[u8], trace: bool) -> Self {
        let h = if protocol_name.len() <= HASH_LEN {
            let mut h = [0u8; HASH_LEN];
            h[..protocol_name.len()].copy_from_slice(protocol_name);
            h
        } else {
            sha256(&[protocol_name])
        };
        let mut state = SymmetricState {
            h,
            ck: h,
            cipher: None,
            trace: trace.then(Vec::new),
        };
        state.record("init", protocol_name);
        state.mix_hash("mix_hash(prologue)", prologue);
        state
    }

    /// The handshake hash `h`.
    pub fn handshake_hash(&self) -> [u8; 32] {
        self.h
    }

    /// The chaining key `ck`.
    pub fn chaining_key(&self) -> [u8; 32] {
        self.ck
    }

    /// The trace recorded so far (empty when tracing is off).
    pub fn trace(&self) -> &[TraceStep] {
        self.trace.as_deref().unwrap_or(&[])
    }

    /// Takes the recorded trace out.
    pub fn take_trace(&mut self) -> Vec<TraceStep> {
        self.trace.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Records a step in the trace (no-op when tracing is off).
    pub fn record(&mut self, label: &'static str, data: &[u8]) {
        if let Some(trace) = self.trace.as_mut() {
            trace.push(TraceStep {
                label,
                h: self.h,
                ck: self.ck,
                k: self.cipher.as_ref().map(CipherState::key),
                data: data.to_vec(),
            });
        }
    }

    /// MixHash(data): `h = SHA256(h || data)`.
    pub fn mix_hash(&mut self, label: &'static str, data: &[u8]) {
        self.h = sha256(&[&self.h, data]);
        self.record(label, data);
    }

    /// MixKey(ikm): `(ck, temp_k) = HKDF(ck, ikm)`, InitializeKey(temp_k).
    pub fn mix_key(&mut self, label: &'static str, ikm: &[u8]) {
        let (ck, temp_k) = hkdf2(&self.ck, ikm);
        self.ck = ck;
        self.cipher = Some(CipherState::new(temp_k));
        self.record(label, ikm);
    }

    /// EncryptAndHash(plaintext), appending the ciphertext (with its tag when a key is set) to `out`.
    pub fn encrypt_and_hash(
        &mut self,
        label: &'static str,
        plaintext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), NoiseError> {
        let start = out.len();
        match self.cipher.as_mut() {
            Some(cipher) => cipher.encrypt_append(&self.h, plaintext, out)?,
            None => out.extend_from_slice(plaintext),
        }
        self.h = sha256(&[&self.h, &out[start..]]);
        self.record(label, plaintext);
        Ok(())
    }

    /// DecryptAndHash(ciphertext), appending the plaintext to `out`; `h` absorbs the ciphertext.
    /// On failure `h` and `out` are unchanged.
    pub fn decrypt_and_hash(
        &mut self,
        label: &'static str,
        ciphertext: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), AuthFailed> {
        let start = out.len();
        match self.cipher.as_mut() {
            Some(cipher) => cipher.decrypt_append(&self.h, ciphertext, out)?,
            None => out.extend_from_slice(ciphertext),
        }
        self.h = sha256(&[&self.h, ciphertext]);
        let plain = out[start..].to_vec();
        self.record(label, &plain);
        Ok(())
    }

    /// Split(): `(k1, k2) = HKDF(ck, "")`; c1 encrypts initiator -> responder, c2 the other way.
    pub fn split(&mut self) -> (CipherState, CipherState) {
        let (k1, k2) = hkdf2(&self.ck, &[]);
        if self.trace.is_some() {
            let mut both = k1.to_vec();
            both.extend_from_slice(&k2);
            self.record("split", &both);
        }
        (CipherState::new(k1), CipherState::new(k2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SV2_NAME: &[u8] = b"Noise_NX_Secp256k1+EllSwift_ChaChaPoly_SHA256";

    #[test]
    fn sv2_initial_state_matches_catalog_g2() {
        let state = SymmetricState::new(SV2_NAME, &[], true);
        assert_eq!(
            hex::encode(state.chaining_key()),
            "2eb47881208e9eee1f669f67c66ee70ea9ea88090d503fe830dc4bc83e29bf10"
        );
        assert_eq!(
            hex::encode(state.handshake_hash()),
            "922fa32e4f487c0d59caa3bed7899ce3d98db7e13dbd3b7cf2d23dd433dc6104"
        );
        assert_eq!(state.trace().len(), 2);
        assert_eq!(
            hex::encode(state.trace()[0].h),
            hex::encode(state.chaining_key())
        );
    }

    #[test]
    fn short_protocol_names_are_padded_not_hashed() {
        let name = b"Noise_NX_25519_ChaChaPoly_SHA256";
        assert_eq!(name.len(), 32);
        let state = SymmetricState::new(name, &[], false);
        assert_eq!(&state.chaining_key(), name);
        let state = SymmetricState::new(b"abc", &[], false);
        assert_eq!(&state.chaining_key()[..4], b"abc\0");
    }

    // RFC 4231 test case 2 has a 4-byte key; case 1 a 20-byte key. Both are zero-padded to 32 bytes
    // here, which HMAC treats exactly like the short key (it pads to the block size anyway).
    #[test]
    fn hmac_matches_rfc4231() {
        let mut key = [0u8; 32];
        key[..20].copy_from_slice(&[0x0b; 20]);
        assert_eq!(
            hex::encode(hmac_sha256(&key, &[b"Hi There"])),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        assert_eq!(
            hex::encode(hmac_sha256(&key, &[b"what do ya want ", b"for nothing?"])),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn hkdf_follows_the_noise_definition() {
        let ck = [7u8; 32];
        let (o1, o2) = hkdf2(&ck, b"ikm");
        let temp = hmac_sha256(&ck, &[b"ikm"]);
        assert_eq!(o1, hmac_sha256(&temp, &[&[1]]));
        let mut in2 = o1.to_vec();
        in2.push(2);
        assert_eq!(o2, hmac_sha256(&temp, &[&in2]));
    }

    #[test]
    fn nonce_layout_is_four_zero_bytes_then_le_counter() {
        assert_eq!(
            nonce_bytes(0x0102030405060708),
            [0, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1]
        );
    }

    #[test]
    fn failed_decrypt_does_not_advance_and_exhaustion_is_an_error() {
        let mut enc = CipherState::new([3; 32]);
        let mut dec = CipherState::new([3; 32]);
        let mut msg = b"hello".to_vec();
        let tag = enc.encrypt_in_place(b"ad", &mut msg).unwrap();
        let ct = msg.clone();
        let mut bad = ct.clone();
        bad[0] ^= 1;
        assert_eq!(
            dec.decrypt_in_place(b"ad", &mut bad, &tag),
            Err(AuthFailed::Tag)
        );
        assert_eq!(dec.nonce(), 0);
        let mut good = ct.clone();
        dec.decrypt_in_place(b"ad", &mut good, &tag).unwrap();
        assert_eq!(good, b"hello");
        assert_eq!(dec.nonce(), 1);

        enc.set_nonce(u64::MAX - 1);
        assert!(enc.encrypt_in_place(&[], &mut [0u8; 3]).is_ok());
        assert_eq!(enc.nonce(), u64::MAX);
        assert_eq!(
            enc.encrypt_in_place(&[], &mut [0u8; 3]),
            Err(NoiseError::NonceExhausted)
        );
        assert_eq!(enc.nonce(), u64::MAX);
        dec.set_nonce(u64::MAX);
        assert_eq!(
            dec.decrypt_in_place(&[], &mut [0u8; 3], &[0; 16]),
            Err(AuthFailed::NonceExhausted)
        );
    }

    #[test]
    fn encrypt_and_hash_without_key_is_identity_and_hashes() {
        let mut a = SymmetricState::new(SV2_NAME, &[], false);
        let h0 = a.handshake_hash();
        let mut out = Vec::new();
        a.encrypt_and_hash("x", b"plain", &mut out).unwrap();
        assert_eq!(out, b"plain");
        assert_eq!(a.handshake_hash(), sha256(&[&h0, b"plain"]));
    }

    #[test]
    fn encrypt_and_decrypt_and_hash_agree() {
        let mut a = SymmetricState::new(SV2_NAME, &[], false);
        let mut b = a.clone();
        a.mix_key("k", b"shared");
        b.mix_key("k", b"shared");
        let mut ct = Vec::new();
        a.encrypt_and_hash("x", b"secret payload", &mut ct).unwrap();
        assert_eq!(ct.len(), 14 + 16);
        let mut bad = ct.clone();
        bad[3] ^= 0x40;
        let h_before = b.handshake_hash();
        let mut pt = Vec::new();
        assert_eq!(b.decrypt_and_hash("x", &bad, &mut pt), Err(AuthFailed::Tag));
        assert!(pt.is_empty());
        assert_eq!(b.handshake_hash(), h_before);
        b.decrypt_and_hash("x", &ct, &mut pt).unwrap();
        assert_eq!(pt, b"secret payload");
        assert_eq!(a.handshake_hash(), b.handshake_hash());
        let (a1, a2) = a.split();
        let (b1, b2) = b.split();
        assert_eq!(a1.key(), b1.key());
        assert_eq!(a2.key(), b2.key());
        assert_ne!(a1.key(), a2.key());
    }
}
