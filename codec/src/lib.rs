//! `sv2-codec`: the Stratum V2 reference codec of the SV2 test and fuzzing toolkit.
//!
//! - [`types`]: every SV2 data type (spec §3.1), borrowed decode and owned forms.
//! - [`frame`]: plain framing (§3.2) and an incremental frame decoder.
//! - [`messages`]: every message of the spec and of extension 0x0001, strict decode, encode, JSON.
//! - [`tlv`]: TLV fields (§3.4.3) and extension 0x0002's `user_identity`.
//! - [`noise`]: the Noise NX secure channel, certificates, authority keys and encrypted framing (§4).
//! - [`sv1`]: Stratum V1 JSON-RPC lines and field encodings, for translators and SV1 captures.
//!
//! Decoding never panics and never allocates from a length that was not checked against the bytes
//! present. See `JSON.md` beside this crate for the JSON representation.
#![forbid(unsafe_code)]

pub mod error;
pub mod frame;
pub mod messages;
pub mod noise;
pub mod sv1;
pub mod tlv;
pub mod types;

pub use error::{BoundsError, DecodeError, EncodeError, ErrorKind, FrameError};
pub use frame::{Frame, FrameDecoder, Header, OwnedFrame};
pub use messages::{
    decode_base, decode_frame, decode_payload, encode_frame, to_frame_bytes, Decoded, Message,
    MessageType,
};
pub use tlv::Tlv;
