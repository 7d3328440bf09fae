//! Certificates (spec §4.5.2, §4.5.3; CATALOG §C).
//!
//! The responder proves it speaks for the authority by sending, encrypted in act 2, a 74-byte
//! SIGNATURE_NOISE_MESSAGE:
//!
//! ```text
//! version         U16 LE   certificate format version (the spec defines none; SRI uses 0)
//! valid_from      U32 LE   unix time
//! not_valid_after U32 LE   unix time
//! signature       64 B     BIP340 Schnorr signature by the authority key
//! ```
//!
//! The signature covers `SHA256(version || valid_from || not_valid_after || server_xonly)`, where
//! `server_xonly` is the x coordinate of the responder's static key (the 64-byte EllSwift key it sent,
//! decoded). That 32-byte digest is the BIP340 message.
//!
//! The spec gives no clock-skew rule; [`ValidityPolicy`] allows a configurable skew on both ends of the
//! window (10 s by default, as the reference implementation). Time is passed in, never read here.

use sha2::{Digest, Sha256};

use super::keys::{secp, AuthorityPublicKey, KeyError, Keypair};

/// Length of a SIGNATURE_NOISE_MESSAGE.
pub const SIGNATURE_NOISE_MESSAGE_LEN: usize = 74;

/// The certificate version this toolkit issues by default (the spec defines none; SRI uses 0).
pub const CERTIFICATE_VERSION: u16 = 0;

/// Why a certificate was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    /// Not exactly 74 bytes.
    #[error("signature noise message is {got} bytes, expected {SIGNATURE_NOISE_MESSAGE_LEN}")]
    Length { got: usize },
    /// The BIP340 signature does not verify against the authority key.
    #[error("certificate signature does not verify against the authority key")]
    BadSignature,
    /// `now + skew < valid_from`.
    #[error("certificate not yet valid: valid_from {valid_from}, now {now}")]
    NotYetValid { valid_from: u32, now: u32 },
    /// `now > not_valid_after + skew`.
    #[error("certificate expired: not_valid_after {not_valid_after}, now {now}")]
    Expired { not_valid_after: u32, now: u32 },
    /// The server key is not a valid x-only key.
    #[error("server static key is not a valid x-only public key")]
    InvalidKey,
}

/// How strictly the validity window is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidityPolicy {
    /// Seconds of clock difference tolerated on both ends of the window.
    pub skew_secs: u32,
}

impl Default for ValidityPolicy {
    /// 10 seconds, as the reference implementation.
    fn default() -> Self {
        Self { skew_secs: 10 }
    }
}

/// The 74-byte SIGNATURE_NOISE_MESSAGE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignatureNoiseMessage {
    /// Certificate format version.
    pub version: u16,
    /// Start of validity, unix seconds.
    pub valid_from: u32,
    /// End of validity (inclusive), unix seconds.
    pub not_valid_after: u32,
    /// BIP340 signature.
    pub signature: [u8; 64],
}

impl SignatureNoiseMessage {
    /// The wire form.
    pub fn to_bytes(&self) -> [u8; SIGNATURE_NOISE_MESSAGE_LEN] {
        let mut out = [0u8; SIGNATURE_NOISE_MESSAGE_LEN];
        out[0..2].copy_from_slice(&self.version.to_le_bytes());
        out[2..6].copy_from_slice(&self.valid_from.to_le_bytes());
        out[6..10].copy_from_slice(&self.not_valid_after.to_le_bytes());
        out[10..].copy_from_slice(&self.signature);
        out
    }

    /// Parses exactly 74 bytes (no other check: see [`verify`](Self::verify)).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CertError> {
        let bytes: &[u8; SIGNATURE_NOISE_MESSAGE_LEN] = bytes
            .try_into()
            .map_err(|_| CertError::Length { got: bytes.len() })?;
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&bytes[10..]);
        Ok(Self {
            version: u16::from_le_bytes([bytes[0], bytes[1]]),
            valid_from: u32::from_le_bytes([bytes[2], bytes[3], bytes[4], bytes[5]]),
            not_valid_after: u32::from_le_bytes([bytes[6], bytes[7], bytes[8], bytes[9]]),
            signature,
        })
    }

    /// The 32-byte BIP340 message: `SHA256(version || valid_from || not_valid_after || server_xonly)`.
    pub fn signed_digest(
        version: u16,
        valid_from: u32,
        not_valid_after: u32,
        server_xonly: &[u8; 32],
    ) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(version.to_le_bytes());
        hasher.update(valid_from.to_le_bytes());
        hasher.update(not_valid_after.to_le_bytes());
        hasher.update(server_xonly);
        hasher.finalize().into()
    }

    /// Issues a certificate for `server_xonly`, signed by `authority`. `aux_rand` is BIP340's auxiliary
    /// randomness; `None` signs without it (deterministic, for test vectors).
    pub fn issue(
        version: u16,
        valid_from: u32,
        not_valid_after: u32,
        server_xonly: &[u8; 32],
        authority: &Keypair,
        aux_rand: Option<[u8; 32]>,
    ) -> Self {
        let digest = Self::signed_digest(version, valid_from, not_valid_after, server_xonly);
        let keypair = authority.to_secp();
        let signature = match aux_rand {
            Some(aux) => secp().sign_schnorr_with_aux_rand(&digest, &keypair, &aux),
            None => secp().sign_schnorr_no_aux_rand(&digest, &keypair),
        };
        Self {
            version,
            valid_from,
            not_valid_after,
            signature: signature.to_byte_array(),
        }
    }

    /// Issues a certificate valid from `now` for `validity_secs` seconds, with fresh auxiliary
    /// randomness (falls back to none if the random source fails: the signature stays valid).
    pub fn issue_now(
        server_xonly: &[u8; 32],
        authority: &Keypair,
        now: u32,
        validity_secs: u32,
    ) -> Self {
        let mut aux = [0u8; 32];
        let aux = getrandom::fill(&mut aux).ok().map(|()| aux);
        Self::issue(
            CERTIFICATE_VERSION,
            now,
            now.saturating_add(validity_secs),
            server_xonly,
            authority,
            aux,
        )
    }

    /// Checks the signature against `authority`, then the validity window at `now` with the policy's
    /// skew: `valid_from - skew <= now <= not_valid_after + skew`.
    pub fn verify(
        &self,
        server_xonly: &[u8; 32],
        authority: &AuthorityPublicKey,
        now: u32,
        policy: &ValidityPolicy,
    ) -> Result<(), CertError> {
        self.verify_signature(server_xonly, authority)?;
        self.check_validity(now, policy)
    }

    /// Checks only the BIP340 signature.
    pub fn verify_signature(
        &self,
        server_xonly: &[u8; 32],
        authority: &AuthorityPublicKey,
    ) -> Result<(), CertError> {
        secp256k1::XOnlyPublicKey::from_byte_array(*server_xonly)
            .map_err(|_| CertError::InvalidKey)?;
        let digest = Self::signed_digest(
            self.version,
            self.valid_from,
            self.not_valid_after,
            server_xonly,
        );
        let signature = secp256k1::schnorr::Signature::from_byte_array(self.signature);
        secp()
            .verify_schnorr(&signature, &digest, &authority.to_secp())
            .map_err(|_| CertError::BadSignature)
    }

    /// Checks only the validity window.
    pub fn check_validity(&self, now: u32, policy: &ValidityPolicy) -> Result<(), CertError> {
        if u64::from(now) + u64::from(policy.skew_secs) < u64::from(self.valid_from) {
            return Err(CertError::NotYetValid {
                valid_from: self.valid_from,
                now,
            });
        }
        if u64::from(now) > u64::from(self.not_valid_after) + u64::from(policy.skew_secs) {
            return Err(CertError::Expired {
                not_valid_after: self.not_valid_after,
                now,
            });
        }
        Ok(())
    }
}

impl SignatureNoiseMessage {
    /// What was signed, in words, for reports: the version, the validity window against `now`, and
    /// the server key the certificate vouches for (x-only, hex). A version other than 0 is noted:
    /// the spec defines only 0, and the reference implementation refuses any other.
    pub fn describe(&self, certified_key: &[u8; 32], now: u32) -> String {
        let left = i64::from(self.not_valid_after) - i64::from(now);
        let mut text = format!(
            "version {}, valid {} .. {} (now {now}, {}), certifies server key {}",
            self.version,
            self.valid_from,
            self.not_valid_after,
            if left >= 0 {
                format!("{left} s left")
            } else {
                format!("expired {} s ago", -left)
            },
            hex::encode(certified_key)
        );
        if self.version != 0 {
            text.push_str(&format!(
                "; note: version {} is not the spec's 0, and the reference implementation refuses it",
                self.version
            ));
        }
        text
    }
}

impl From<KeyError> for CertError {
    fn from(_: KeyError) -> Self {
        CertError::InvalidKey
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::keys::SecretKey;

    fn authority() -> Keypair {
        Keypair::from_secret(
            SecretKey::from_base58("mkDLTBBRxdBv998612qipDYoTK3YUrqLe8uWw7gu3iXbSrn2n").unwrap(),
        )
    }

    #[test]
    fn describe_names_version_window_and_key_and_notes_a_nonzero_version() {
        let cert = SignatureNoiseMessage {
            version: 0,
            valid_from: 100,
            not_valid_after: 200,
            signature: [0; 64],
        };
        assert_eq!(
            cert.describe(&[0xab; 32], 150),
            format!(
                "version 0, valid 100 .. 200 (now 150, 50 s left), certifies server key {}",
                "ab".repeat(32)
            )
        );
        let old = SignatureNoiseMessage { version: 1, ..cert };
        let text = old.describe(&[0xab; 32], 260);
        assert!(text.contains("expired 60 s ago"), "{text}");
        assert!(text.contains("note: version 1"), "{text}");
    }

    fn server() -> [u8; 32] {
        SecretKey::from_bytes([7; 32]).unwrap().xonly_public()
    }

    #[test]
    fn issued_certificates_verify_and_round_trip() {
        let cert = SignatureNoiseMessage::issue(0, 1000, 2000, &server(), &authority(), None);
        let bytes = cert.to_bytes();
        assert_eq!(&bytes[..10], &[0, 0, 0xe8, 3, 0, 0, 0xd0, 7, 0, 0]);
        let back = SignatureNoiseMessage::from_bytes(&bytes).unwrap();
        assert_eq!(back, cert);
        let policy = ValidityPolicy::default();
        back.verify(&server(), &authority().public, 1500, &policy)
            .unwrap();
        // Deterministic without aux randomness; different with it, and both verify.
        assert_eq!(
            SignatureNoiseMessage::issue(0, 1000, 2000, &server(), &authority(), None),
            cert
        );
        let with_aux =
            SignatureNoiseMessage::issue(0, 1000, 2000, &server(), &authority(), Some([9; 32]));
        assert_ne!(with_aux.signature, cert.signature);
        with_aux
            .verify(&server(), &authority().public, 1500, &policy)
            .unwrap();
    }

    #[test]
    fn the_signature_is_bip340_over_the_sha256_of_the_42_bytes() {
        let cert = SignatureNoiseMessage::issue(3, 10, 20, &server(), &authority(), None);
        let mut m42 = Vec::new();
        m42.extend_from_slice(&3u16.to_le_bytes());
        m42.extend_from_slice(&10u32.to_le_bytes());
        m42.extend_from_slice(&20u32.to_le_bytes());
        m42.extend_from_slice(&server());
        let digest: [u8; 32] = Sha256::digest(&m42).into();
        let sig = secp256k1::schnorr::Signature::from_byte_array(cert.signature);
        secp()
            .verify_schnorr(&sig, &digest, &authority().public.to_secp())
            .unwrap();
    }

    #[test]
    fn every_changed_field_breaks_the_signature() {
        let cert = SignatureNoiseMessage::issue(0, 1000, 2000, &server(), &authority(), None);
        let policy = ValidityPolicy::default();
        let other_authority = Keypair::from_secret(SecretKey::from_bytes([1; 32]).unwrap());
        assert_eq!(
            cert.verify(&server(), &other_authority.public, 1500, &policy),
            Err(CertError::BadSignature)
        );
        let other_server = SecretKey::from_bytes([8; 32]).unwrap().xonly_public();
        assert_eq!(
            cert.verify(&other_server, &authority().public, 1500, &policy),
            Err(CertError::BadSignature)
        );
        let bytes = cert.to_bytes();
        for i in 0..SIGNATURE_NOISE_MESSAGE_LEN {
            for bit in [0x01u8, 0x80] {
                let mut flipped = bytes;
                flipped[i] ^= bit;
                let flipped = SignatureNoiseMessage::from_bytes(&flipped).unwrap();
                assert_eq!(
                    flipped.verify_signature(&server(), &authority().public),
                    Err(CertError::BadSignature),
                    "byte {i} bit {bit:#x}"
                );
            }
        }
    }

    #[test]
    fn the_window_applies_the_skew_at_both_ends() {
        let cert = SignatureNoiseMessage::issue(0, 1000, 2000, &server(), &authority(), None);
        let key = authority().public;
        let policy = ValidityPolicy { skew_secs: 10 };
        assert!(cert.verify(&server(), &key, 990, &policy).is_ok());
        assert_eq!(
            cert.verify(&server(), &key, 989, &policy),
            Err(CertError::NotYetValid {
                valid_from: 1000,
                now: 989
            })
        );
        assert!(cert.verify(&server(), &key, 2010, &policy).is_ok());
        assert_eq!(
            cert.verify(&server(), &key, 2011, &policy),
            Err(CertError::Expired {
                not_valid_after: 2000,
                now: 2011
            })
        );
        let strict = ValidityPolicy { skew_secs: 0 };
        assert!(cert.check_validity(999, &strict).is_err());
        assert!(cert.check_validity(1000, &strict).is_ok());
        assert!(cert.check_validity(2000, &strict).is_ok());
        assert!(cert.check_validity(2001, &strict).is_err());
        // No overflow at the ends of u32.
        let forever = SignatureNoiseMessage::issue(0, 0, u32::MAX, &server(), &authority(), None);
        let wide = ValidityPolicy {
            skew_secs: u32::MAX,
        };
        assert!(forever.check_validity(u32::MAX, &wide).is_ok());
        assert!(forever.check_validity(0, &wide).is_ok());
    }

    #[test]
    fn wrong_lengths_and_keys_are_typed_errors() {
        assert_eq!(
            SignatureNoiseMessage::from_bytes(&[0; 73]),
            Err(CertError::Length { got: 73 })
        );
        assert_eq!(
            SignatureNoiseMessage::from_bytes(&[0; 75]),
            Err(CertError::Length { got: 75 })
        );
        let cert = SignatureNoiseMessage::from_bytes(&[0; 74]).unwrap();
        let mut not_on_curve = [0u8; 32];
        not_on_curve[31] = 5;
        assert_eq!(
            cert.verify_signature(&not_on_curve, &authority().public),
            Err(CertError::InvalidKey)
        );
        assert_eq!(
            cert.verify_signature(&server(), &authority().public),
            Err(CertError::BadSignature)
        );
    }
}
