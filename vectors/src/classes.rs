//! The stable error class names of the vectors, and their mapping from sv2-codec's errors.
//! The names are part of the format (vectors/README.md lists them); renaming one is a breaking change.

use sv2_codec::noise::cert::CertError;
use sv2_codec::noise::keys::KeyError;
use sv2_codec::noise::{DecryptStep, NoiseError};
use sv2_codec::{DecodeError, ErrorKind, FrameError};

/// Every class with its meaning, for the README and the file headers.
pub const CLASSES: &[(&str, &str)] = &[
    // Frames and data types
    (
        "INCOMPLETE_HEADER",
        "fewer than the 6 bytes of a frame header",
    ),
    (
        "LENGTH_MISMATCH",
        "the bytes after the header are not exactly msg_length bytes",
    ),
    (
        "UNKNOWN_MESSAGE_TYPE",
        "extension 0x0000 or 0x0001 defines no message with this msg_type",
    ),
    (
        "CHANNEL_MSG_BIT",
        "the channel_msg bit differs from the one spec §8 assigns to the message",
    ),
    (
        "TRUNCATED",
        "a field needs more bytes than are left (includes a count or length past the end)",
    ),
    ("B0_32_TOO_LONG", "a B0_32 length prefix above 32"),
    (
        "OPTION_PREFIX",
        "an OPTION[T] prefix other than 0x00 or 0x01",
    ),
    (
        "TRAILING_BYTES",
        "bytes after the last field that do not form well-formed TLVs",
    ),
    (
        "TLV_TOO_LONG",
        "a known TLV longer than its extension allows (user_identity > 32 bytes)",
    ),
    // Noise
    ("WRONG_LENGTH", "a handshake message of the wrong size"),
    ("DECRYPT_FAILED", "an AEAD tag does not verify"),
    (
        "CERT_BAD_SIGNATURE",
        "the certificate's BIP340 signature does not verify against the authority key",
    ),
    ("CERT_EXPIRED", "now > not_valid_after + skew"),
    ("CERT_NOT_YET_VALID", "now + skew < valid_from"),
    (
        "CERT_INVALID_KEY",
        "the server key is not a valid x-only key",
    ),
    (
        "NONCE_EXHAUSTED",
        "the frame would use nonce 2^64 - 1, which Noise reserves",
    ),
    // Keys and URLs
    (
        "BASE58_CHARACTER",
        "a character outside Bitcoin's base58 alphabet",
    ),
    ("BASE58_TOO_LONG", "a base58 string longer than any key"),
    ("BASE58_CHECKSUM", "the base58check checksum does not match"),
    ("KEY_LENGTH", "the decoded payload has the wrong length"),
    (
        "KEY_VERSION",
        "an authority key whose version prefix is not 01 00",
    ),
    (
        "INVALID_PUBLIC_KEY",
        "32 bytes that are not the x coordinate of a secp256k1 point",
    ),
    (
        "INVALID_SECRET_KEY",
        "a secret that is zero or not below the curve order",
    ),
    ("URL", "a malformed stratum2+tcp:// URL"),
];

/// The class of a decode error.
pub fn decode_class(e: &DecodeError) -> &'static str {
    kind_class(&e.kind)
}

pub fn kind_class(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Truncated { .. } => "TRUNCATED",
        ErrorKind::LengthOutOfBounds { max: 32, .. } => "B0_32_TOO_LONG",
        // No other bound can be exceeded from the wire (1-byte prefixes hold at most 255, 2-byte
        // ones 65535, ...): the generic name is kept for completeness.
        ErrorKind::LengthOutOfBounds { .. } => "LENGTH_OUT_OF_BOUNDS",
        ErrorKind::InvalidOptionPrefix(_) => "OPTION_PREFIX",
        ErrorKind::TrailingBytes { .. } => "TRAILING_BYTES",
        ErrorKind::TlvTooLong { .. } => "TLV_TOO_LONG",
        ErrorKind::ChannelMsgBit { .. } => "CHANNEL_MSG_BIT",
        ErrorKind::LengthMismatch { .. } => "LENGTH_MISMATCH",
        ErrorKind::UnknownMessageType { .. } => "UNKNOWN_MESSAGE_TYPE",
    }
}

pub fn frame_class(e: &FrameError) -> &'static str {
    match e {
        FrameError::Incomplete { .. } => "INCOMPLETE_HEADER",
        FrameError::TooLarge { .. } => "FRAME_TOO_LARGE",
    }
}

pub fn cert_class(e: &CertError) -> &'static str {
    match e {
        CertError::Length { .. } => "WRONG_LENGTH",
        CertError::BadSignature => "CERT_BAD_SIGNATURE",
        CertError::NotYetValid { .. } => "CERT_NOT_YET_VALID",
        CertError::Expired { .. } => "CERT_EXPIRED",
        CertError::InvalidKey => "CERT_INVALID_KEY",
    }
}

pub fn noise_class(e: &NoiseError) -> &'static str {
    match e {
        NoiseError::WrongLength { .. } => "WRONG_LENGTH",
        NoiseError::InvalidKey(_) => "INVALID_KEY",
        NoiseError::Decrypt { .. } => "DECRYPT_FAILED",
        NoiseError::Certificate(c) => cert_class(c),
        NoiseError::WrongState { .. } => "WRONG_STATE",
        NoiseError::Randomness => "RANDOMNESS",
        NoiseError::Terminated => "TERMINATED",
        NoiseError::NonceExhausted => "NONCE_EXHAUSTED",
        NoiseError::FrameTooLarge { .. } => "FRAME_TOO_LARGE",
        NoiseError::FrameLength { .. } => "FRAME_LENGTH",
    }
}

/// `header` or `block N` for a decryption failure.
pub fn decrypt_step(e: &NoiseError) -> Option<String> {
    match e {
        NoiseError::Decrypt { step } => Some(match step {
            DecryptStep::FrameHeader => "header".to_string(),
            DecryptStep::FrameBlock { index } => format!("block {index}"),
            DecryptStep::Act2Static => "act2 static".to_string(),
            DecryptStep::Act2Payload => "act2 payload".to_string(),
        }),
        _ => None,
    }
}

pub fn key_class(e: &KeyError) -> &'static str {
    match e {
        KeyError::Base58Character { .. } => "BASE58_CHARACTER",
        KeyError::Base58TooLong { .. } => "BASE58_TOO_LONG",
        KeyError::Checksum { .. } => "BASE58_CHECKSUM",
        KeyError::Length { .. } => "KEY_LENGTH",
        KeyError::Version { .. } => "KEY_VERSION",
        KeyError::InvalidPublicKey => "INVALID_PUBLIC_KEY",
        KeyError::InvalidSecretKey => "INVALID_SECRET_KEY",
        KeyError::Hex(_) => "HEX",
        KeyError::Random(_) => "RANDOMNESS",
        KeyError::Url(_) => "URL",
    }
}
