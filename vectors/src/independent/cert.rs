//! Certificates (SIGNATURE_NOISE_MESSAGE, spec §4.5.2 and §4.7) read from the spec's layout and
//! checked with k256's BIP340.

use super::aead::sha256;
use super::curve::{bip340_verify, lift_x};
use super::{eq, hex32, unhex, Check};
use crate::model::{CertificateTest, Outcome};

/// The 74-byte SIGNATURE_NOISE_MESSAGE: version U16 LE, valid_from U32 LE, not_valid_after U32 LE,
/// signature 64.
#[derive(Debug, Clone, Copy)]
pub struct Certificate {
    pub version: u16,
    pub valid_from: u32,
    pub not_valid_after: u32,
    pub signature: [u8; 64],
}

impl Certificate {
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() != 74 {
            return Err(format!(
                "SIGNATURE_NOISE_MESSAGE is {} bytes, not 74",
                bytes.len()
            ));
        }
        let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
        Ok(Certificate {
            version: u16::from_le_bytes([bytes[0], bytes[1]]),
            valid_from: u32_at(2),
            not_valid_after: u32_at(6),
            signature: bytes[10..].try_into().expect("64 bytes"),
        })
    }

    /// SHA256(version || valid_from || not_valid_after || server x-only key), the BIP340 message.
    pub fn digest(&self, server: &[u8; 32]) -> [u8; 32] {
        sha256(&[
            &self.version.to_le_bytes(),
            &self.valid_from.to_le_bytes(),
            &self.not_valid_after.to_le_bytes(),
            server,
        ])
    }

    /// The initiator's verdict: the error class of the first rule that fails, in the order server
    /// key, signature, not yet valid, expired (the window widened by `skew` at both ends). The
    /// version is not judged: the spec defines no value.
    pub fn verdict(
        &self,
        server: &[u8; 32],
        authority: &[u8; 32],
        now: u32,
        skew: u32,
    ) -> Result<(), &'static str> {
        if lift_x(server).is_none() {
            return Err("CERT_INVALID_KEY");
        }
        if !bip340_verify(authority, &self.digest(server), &self.signature) {
            return Err("CERT_BAD_SIGNATURE");
        }
        let (now, skew) = (u64::from(now), u64::from(skew));
        if now + skew < u64::from(self.valid_from) {
            return Err("CERT_NOT_YET_VALID");
        }
        if now > u64::from(self.not_valid_after) + skew {
            return Err("CERT_EXPIRED");
        }
        Ok(())
    }
}

/// The vector's stated outcome against an independent verdict.
pub fn outcome(
    result: Outcome,
    verdict: Result<(), &str>,
    error: Option<&str>,
    has_output: bool,
) -> Check {
    match verdict {
        Ok(()) if result == Outcome::Invalid => Err("invalid, but the checks accept it".into()),
        Ok(()) => match error {
            Some(e) => Err(format!("the checks accept it, but the vector records {e}")),
            None if has_output => Ok(()),
            None => Err("accepted, but the vector gives no output".into()),
        },
        Err(class) if result == Outcome::Valid => Err(format!("valid, but the checks say {class}")),
        Err(class) => eq("error class", Some(class), error),
    }
}

pub fn check(authority: &str, t: &CertificateTest) -> Check {
    let authority = hex32("authorityPublicKey", authority)?;
    let server = hex32("serverPublicKey", &t.server_public_key)?;
    let cert = Certificate::parse(&unhex("signatureNoiseMessage", &t.signature_noise_message)?)?;
    eq("version", cert.version, t.version)?;
    eq("validFrom", cert.valid_from, t.valid_from)?;
    eq("notValidAfter", cert.not_valid_after, t.not_valid_after)?;
    eq(
        "signedDigest",
        hex::encode(cert.digest(&server)),
        t.signed_digest.clone(),
    )?;
    let verdict = cert.verdict(&server, &authority, t.now, t.skew_secs);
    outcome(t.result, verdict, t.error.as_deref(), true)
}
