//! Errors of the Noise handshake and of the encrypted transport.
//!
//! Every error is terminal for the object that returned it: a handshake or a decryptor that failed
//! refuses any further use with [`NoiseError::Terminated`] (spec §4.5: "should the decryption fail at
//! any point, the session must be terminated").

use super::cert::CertError;

/// Which AEAD operation failed to authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecryptStep {
    /// Act 2, bytes 64..144: the responder's encrypted static key.
    Act2Static,
    /// Act 2, bytes 144..234: the encrypted SIGNATURE_NOISE_MESSAGE (or, for a generic NX run, the
    /// encrypted payload of message 2).
    Act2Payload,
    /// The 22-byte encrypted header of a transport frame.
    FrameHeader,
    /// Payload block `index` (0-based) of a transport frame.
    FrameBlock { index: usize },
}

impl std::fmt::Display for DecryptStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecryptStep::Act2Static => f.write_str("act 2 static key"),
            DecryptStep::Act2Payload => f.write_str("act 2 certificate"),
            DecryptStep::FrameHeader => f.write_str("frame header"),
            DecryptStep::FrameBlock { index } => write!(f, "frame payload block {index}"),
        }
    }
}

/// What went wrong in the handshake or the transport.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoiseError {
    /// A handshake message (or a frame handed to the encryptor) has the wrong size.
    #[error("{what}: expected {expected} bytes, got {got}")]
    WrongLength {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    /// A secret key is not a valid scalar, or a public key cannot be used (for a Curve25519 DH: a
    /// low-order point giving an all-zero shared secret).
    #[error("invalid key: {0}")]
    InvalidKey(&'static str),
    /// An AEAD tag did not verify.
    #[error("decryption failed: {step}")]
    Decrypt { step: DecryptStep },
    /// The responder's certificate was refused (signature, validity window, format).
    #[error("certificate refused: {0}")]
    Certificate(CertError),
    /// The operation does not fit the state machine's state (e.g. reading act 2 before writing act 1).
    #[error("{op} called in state {state}")]
    WrongState {
        op: &'static str,
        state: &'static str,
    },
    /// The operating system's random source failed.
    #[error("random source failed")]
    Randomness,
    /// The object failed before and is unusable (see the error it returned then).
    #[error("the session was terminated by an earlier error")]
    Terminated,
    /// The 64-bit nonce would reach 2^64 - 1, which Noise reserves; the session must end.
    #[error("nonce exhausted")]
    NonceExhausted,
    /// A decrypted header claims more payload than the decryptor accepts.
    #[error("frame payload of {length} bytes exceeds the maximum of {max}")]
    FrameTooLarge { length: usize, max: usize },
    /// A plain frame handed to the encryptor disagrees with its own header.
    #[error("plain frame: header says {declared} payload bytes, {actual} given")]
    FrameLength { declared: usize, actual: usize },
}

impl From<CertError> for NoiseError {
    fn from(e: CertError) -> Self {
        NoiseError::Certificate(e)
    }
}
