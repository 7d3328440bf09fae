//! Typed decode and encode errors. Every decode error names the message, the field and the payload
//! offset at which the offending field starts.

use std::fmt;

/// Why a message failed to decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    /// The field needs more bytes than the payload has left.
    #[error("truncated: needs {needed} bytes, {available} left")]
    Truncated { needed: usize, available: usize },
    /// A length or count prefix is larger than the type allows (e.g. a B0_32 of 33 bytes).
    #[error("length {length} exceeds the maximum {max}")]
    LengthOutOfBounds { length: usize, max: usize },
    /// An OPTION[T] prefix other than 0x00 or 0x01.
    #[error("OPTION prefix {0:#04x} is neither 0x00 nor 0x01")]
    InvalidOptionPrefix(u8),
    /// Bytes after the last field that do not form well-formed TLVs.
    #[error("{count} trailing bytes after the last field do not form TLVs: {reason}")]
    TrailingBytes { count: usize, reason: &'static str },
    /// A known TLV whose value is longer than its extension allows.
    #[error(
        "TLV {extension_type:#06x}/{field_type:#04x} has length {length}, the maximum is {max}"
    )]
    TlvTooLong {
        extension_type: u16,
        field_type: u8,
        length: usize,
        max: usize,
    },
    /// The frame's channel_msg bit differs from the one the spec assigns to this message.
    #[error("channel_msg bit is {found}, the spec requires {expected} for this message")]
    ChannelMsgBit { expected: bool, found: bool },
    /// The header's msg_length disagrees with the payload handed to the decoder.
    #[error("header msg_length is {header} but the payload has {payload} bytes")]
    LengthMismatch { header: u32, payload: usize },
    /// A known extension (core = 0x0000, or 0x0001) with a msg_type it does not define.
    #[error("extension {extension_type:#06x} defines no msg_type {msg_type:#04x}")]
    UnknownMessageType { extension_type: u16, msg_type: u8 },
}

/// A decode failure with its location: message name, field name, offset of the field in the payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct DecodeError {
    /// Spec name of the message being decoded ("frame" for header-level errors).
    pub message: &'static str,
    /// Field being decoded ("-" when the error is not about one field).
    pub field: &'static str,
    /// Byte offset in the payload where that field starts.
    pub offset: usize,
    pub kind: ErrorKind,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{} at payload offset {}: {}",
            self.message, self.field, self.offset, self.kind
        )
    }
}

/// Why a frame could not be cut out of a byte stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Not enough bytes yet: `needed` more are required to finish the header or the frame.
    #[error("incomplete frame: {needed} more bytes needed")]
    Incomplete { needed: usize },
    /// The header claims a payload larger than the configured maximum.
    #[error("frame payload of {length} bytes exceeds the maximum {max}")]
    TooLarge { length: usize, max: usize },
}

/// Why a message could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The payload is longer than a U24 msg_length can say (2^24 - 1 bytes).
    #[error("payload of {0} bytes does not fit the U24 msg_length")]
    PayloadTooLarge(usize),
}

/// A value was outside the range its SV2 type allows (e.g. 33 bytes for a B0_32).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{type_name} holds at most {max} {unit}, got {length}")]
pub struct BoundsError {
    pub type_name: &'static str,
    /// What is counted: "bytes", "elements".
    pub unit: &'static str,
    pub length: usize,
    pub max: usize,
}
