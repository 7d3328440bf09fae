//! SHA-256, HMAC, the Noise HKDF and ChaCha20-Poly1305 as the spec uses them, from RustCrypto
//! (`sha2`, `hmac`, `chacha20poly1305`'s own AEAD). sv2-codec assembles its AEAD from raw `chacha20`
//! and `poly1305`; nothing here goes through it.

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

fn hmac(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// The spec's HKDF with two outputs: temp = HMAC(ck, ikm), o1 = HMAC(temp, 0x01),
/// o2 = HMAC(temp, o1 || 0x02).
pub fn hkdf2(ck: &[u8; 32], ikm: &[u8]) -> ([u8; 32], [u8; 32]) {
    let temp = hmac(ck, &[ikm]);
    let o1 = hmac(&temp, &[&[0x01]]);
    let o2 = hmac(&temp, &[&o1, &[0x02]]);
    (o1, o2)
}

/// The 12-byte nonce: 4 zero bytes, then the counter as U64 little-endian.
fn nonce(n: u64) -> chacha20poly1305::Nonce {
    let mut bytes = [0u8; 12];
    bytes[4..].copy_from_slice(&n.to_le_bytes());
    bytes.into()
}

pub fn encrypt(key: &[u8; 32], n: u64, ad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    ChaCha20Poly1305::new(key.into())
        .encrypt(
            &nonce(n),
            Payload {
                msg: plaintext,
                aad: ad,
            },
        )
        .expect("ChaCha20-Poly1305 encrypts any length used here")
}

/// The plaintext, or `None` when the tag does not authenticate.
pub fn decrypt(key: &[u8; 32], n: u64, ad: &[u8], ciphertext: &[u8]) -> Option<Vec<u8>> {
    ChaCha20Poly1305::new(key.into())
        .decrypt(
            &nonce(n),
            Payload {
                msg: ciphertext,
                aad: ad,
            },
        )
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The nonce is 4 zero bytes then the counter LE, and a tag binds key, nonce and AD.
    #[test]
    fn noise_nonce_layout() {
        assert_eq!(
            nonce(0x0102030405060708).as_slice(),
            [0, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1]
        );
        let key = [7u8; 32];
        let ct = encrypt(&key, 5, b"ad", b"hello");
        assert_eq!(ct.len(), 5 + 16);
        assert_eq!(decrypt(&key, 5, b"ad", &ct).as_deref(), Some(&b"hello"[..]));
        assert_eq!(decrypt(&key, 6, b"ad", &ct), None);
        assert_eq!(decrypt(&key, 5, b"da", &ct), None);
    }

    /// The two outputs are chained as the spec writes them.
    #[test]
    fn hkdf_is_the_spec_formula() {
        let ck = [1u8; 32];
        let (o1, o2) = hkdf2(&ck, b"ikm");
        let temp = hmac(&ck, &[b"ikm"]);
        assert_eq!(o1, hmac(&temp, &[&[1]]));
        assert_eq!(o2, hmac(&temp, &[&o1, &[2]]));
        assert_ne!(o1, o2);
    }
}
