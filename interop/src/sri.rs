//! SRI's encoder and decoders behind a small API, with every call into SRI that parses bytes wrapped
//! in `catch_unwind` so that a panic becomes [`SriError::Panic`].

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};

use codec_sv2::{Decoded as SriDecoded, Decoder, Encoder, MessageFrame};
use framing_sv2::header::Header as SriHeader;
use parsers_sv2::{AnyMessage, AnyMessageOwned, IsSv2Message, ParserError, Tlv as SriTlv};
use sv2_codec::Message;

use crate::convert::{to_sri, ConvertError};

/// The size of a plain frame header.
pub const HEADER_LEN: usize = 6;

/// What went wrong on SRI's side (or before reaching it).
#[derive(Debug)]
pub enum SriError {
    /// Our message has no SRI counterpart.
    Convert(ConvertError),
    /// The bytes are not exactly one whole frame (header missing, payload short or extra bytes), or
    /// SRI's `Header::from_bytes` / `Decoder` refused them.
    Framing(String),
    /// SRI's parser refused the payload.
    Parse(ParserError),
    /// SRI's encoder failed.
    Encode(String),
    /// SRI panicked; the payload of the panic.
    Panic(String),
}

impl fmt::Display for SriError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SriError::Convert(e) => write!(f, "no SRI counterpart: {e}"),
            SriError::Framing(e) => write!(f, "framing: {e}"),
            SriError::Parse(e) => write!(f, "SRI parse error: {e:?}"),
            SriError::Encode(e) => write!(f, "SRI encode error: {e}"),
            SriError::Panic(e) => write!(f, "SRI panicked: {e}"),
        }
    }
}

impl std::error::Error for SriError {}

impl From<ConvertError> for SriError {
    fn from(e: ConvertError) -> Self {
        SriError::Convert(e)
    }
}

impl SriError {
    /// The parser error, if SRI's parser refused the payload.
    pub fn parse_error(&self) -> Option<&ParserError> {
        match self {
            SriError::Parse(e) => Some(e),
            _ => None,
        }
    }

    /// The binary_sv2 error inside a parse error, if any.
    pub fn binary_error(&self) -> Option<&binary_sv2::Error> {
        match self {
            SriError::Parse(ParserError::BinaryError(e)) => Some(e),
            _ => None,
        }
    }
}

/// Runs `f`, turning a panic into [`SriError::Panic`].
pub fn catch_sri<T>(f: impl FnOnce() -> Result<T, SriError>) -> Result<T, SriError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let text = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".to_string());
            Err(SriError::Panic(text))
        }
    }
}

/// SRI's full frame (header and payload) for an SRI message, with the header SRI derives from the
/// message itself (`IsSv2Message`).
pub fn sri_encode_any(message: AnyMessage<'_>) -> Result<Vec<u8>, SriError> {
    catch_sri(|| {
        let (msg_type, extension_type, channel_msg) = (
            message.message_type(),
            message.extension_type(),
            message.channel_bit(),
        );
        let frame = MessageFrame::from_message(message, msg_type, extension_type, channel_msg)
            .map_err(|e| SriError::Encode(format!("{e:?}")))?;
        let bytes = Encoder::new()
            .encode(frame)
            .map_err(|e| SriError::Encode(format!("{e:?}")))?;
        Ok(AsRef::<[u8]>::as_ref(&bytes).to_vec())
    })
}

/// SRI's full frame bytes for our message (converted with [`to_sri`]).
pub fn sri_encode(message: &Message<'_>) -> Result<Vec<u8>, SriError> {
    sri_encode_any(to_sri(message)?)
}

/// SRI's header parser on the first six bytes.
pub fn sri_header(bytes: &[u8]) -> Result<SriHeader, SriError> {
    catch_sri(|| SriHeader::from_bytes(bytes).map_err(|e| SriError::Framing(format!("{e:?}"))))
}

/// `AnyMessage::try_from((header, payload))`: SRI's message dispatch and parser on a header and a
/// payload handed separately (SRI does not compare the header's msg_length with the payload).
pub fn sri_parse(header: SriHeader, payload: &mut [u8]) -> Result<AnyMessage<'_>, SriError> {
    catch_sri(move || AnyMessage::try_from((header, payload)).map_err(SriError::Parse))
}

/// SRI's parse of exactly one whole frame: `Header::from_bytes`, then `AnyMessage::try_from` on the
/// `msg_length` payload bytes, which are copied into `buf` (SRI parses from `&mut [u8]`).
/// Bytes before the frame's end that SRI does not read are ignored, as SRI does.
pub fn sri_decode<'b>(frame: &[u8], buf: &'b mut Vec<u8>) -> Result<AnyMessage<'b>, SriError> {
    let header = sri_header(frame)?;
    let expected = HEADER_LEN + header.payload_length();
    if frame.len() != expected {
        return Err(SriError::Framing(format!(
            "header says a {expected}-byte frame, {} bytes given",
            frame.len()
        )));
    }
    buf.clear();
    buf.extend_from_slice(&frame[HEADER_LEN..]);
    sri_parse(header, buf)
}

/// As [`sri_decode`], returning SRI's owned form (`AnyMessage::into_owned`), so no buffer is needed.
pub fn sri_decode_owned(frame: &[u8]) -> Result<AnyMessageOwned, SriError> {
    let mut buf = Vec::new();
    let message = sri_decode(frame, &mut buf)?;
    catch_sri(move || Ok(message.into_owned()))
}

/// SRI's full frame for an owned SRI message (`MessageFrame::try_from(AnyMessageOwned)`).
pub fn sri_encode_owned(message: AnyMessageOwned) -> Result<Vec<u8>, SriError> {
    catch_sri(|| {
        let frame = MessageFrame::<AnyMessageOwned>::try_from(message)
            .map_err(|e| SriError::Encode(format!("{e:?}")))?;
        let bytes = Encoder::new()
            .encode(frame)
            .map_err(|e| SriError::Encode(format!("{e:?}")))?;
        Ok(AsRef::<[u8]>::as_ref(&bytes).to_vec())
    })
}

/// The variant through `codec_sv2::Decoder`: feeds `bytes` in the chunks the decoder asks for until it
/// yields a frame, then parses it. Returns the message and how many bytes of `bytes` the frame used.
pub fn sri_decode_stream<'b>(
    bytes: &[u8],
    buf: &'b mut Vec<u8>,
) -> Result<(AnyMessage<'b>, usize), SriError> {
    let (header, used) = catch_sri(|| {
        let mut decoder = Decoder::new();
        let mut offset = 0;
        loop {
            let window = decoder.writable();
            let n = window.len();
            let Some(chunk) = bytes.get(offset..offset + n) else {
                return Err(SriError::Framing(format!(
                    "incomplete: the decoder wants {} more bytes",
                    offset + n - bytes.len()
                )));
            };
            window.copy_from_slice(chunk);
            offset += n;
            match decoder.next_frame() {
                Ok(SriDecoded::Frame(mut frame)) => {
                    let header = frame.header();
                    buf.clear();
                    buf.extend_from_slice(frame.payload());
                    return Ok((header, offset));
                }
                Ok(SriDecoded::Incomplete(_)) => {}
                Err(e) => return Err(SriError::Framing(format!("{e:?}"))),
            }
        }
    })?;
    Ok((sri_parse(header, buf)?, used))
}

/// `parsers_sv2::parse_message_frame_with_tlvs` on one whole frame, with the given negotiated
/// extensions.
pub fn sri_decode_with_tlvs<'b>(
    frame: &[u8],
    buf: &'b mut Vec<u8>,
    negotiated: &[u16],
) -> Result<(AnyMessage<'b>, Option<Vec<SriTlv>>), SriError> {
    let header = sri_header(frame)?;
    buf.clear();
    buf.extend_from_slice(frame.get(HEADER_LEN..).unwrap_or_default());
    catch_sri(move || {
        parsers_sv2::parse_message_frame_with_tlvs(header, buf, negotiated).map_err(SriError::Parse)
    })
}

/// How many payload bytes SRI's parse of `message` consumed (`GetSize`).
pub fn sri_size(message: &AnyMessage<'_>) -> usize {
    binary_sv2::GetSize::get_size(message)
}

/// A coarse class of decode failure, to compare the two codecs' errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// A field needs more bytes than are present.
    Truncated,
    /// A length or count prefix above the type's maximum.
    TooLong,
    /// An OPTION prefix other than 0 or 1.
    BadOption,
    /// A value outside the set the type allows (SRI: SetupConnection.protocol).
    BadValue,
    /// No message is defined for this (extension_type, msg_type).
    UnknownMessage,
    /// Bytes after the last field.
    Trailing,
    /// Wrong channel_msg bit.
    ChannelBit,
    /// Header msg_length disagrees with the payload.
    LengthMismatch,
    /// A known TLV over its maximum.
    TlvTooLong,
    /// A panic.
    Panic,
    /// Anything else.
    Other,
}

/// The class of one of our decode errors.
pub fn class_ours(kind: &sv2_codec::ErrorKind) -> ErrorClass {
    use sv2_codec::ErrorKind as K;
    match kind {
        K::Truncated { .. } => ErrorClass::Truncated,
        K::LengthOutOfBounds { .. } => ErrorClass::TooLong,
        K::InvalidOptionPrefix(_) => ErrorClass::BadOption,
        K::TrailingBytes { .. } => ErrorClass::Trailing,
        K::TlvTooLong { .. } => ErrorClass::TlvTooLong,
        K::ChannelMsgBit { .. } => ErrorClass::ChannelBit,
        K::LengthMismatch { .. } => ErrorClass::LengthMismatch,
        K::UnknownMessageType { .. } => ErrorClass::UnknownMessage,
    }
}

/// The class of an SRI error.
pub fn class_sri(error: &SriError) -> ErrorClass {
    use binary_sv2::Error as B;
    match error {
        SriError::Parse(ParserError::UnexpectedMessage(_)) => ErrorClass::UnknownMessage,
        SriError::Parse(ParserError::BinaryError(b)) => match b {
            B::ReadError(..) | B::OutOfBound => ErrorClass::Truncated,
            B::ValueExceedsMaxSize(..) | B::SeqExceedsMaxSize => ErrorClass::TooLong,
            B::Sv2OptionHaveMoreThenOneElement(_) => ErrorClass::BadOption,
            B::ValueIsNotAValidProtocol(_) => ErrorClass::BadValue,
            _ => ErrorClass::Other,
        },
        SriError::Panic(_) => ErrorClass::Panic,
        _ => ErrorClass::Other,
    }
}
