//! Every SV2 message (CATALOG §D): the 41 core messages, the 3 of extension 0x0001, and frames of
//! unknown extensions kept raw. Dispatch is on `(extension_type & 0x7fff, msg_type)`.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::error::{DecodeError, EncodeError, ErrorKind};
use crate::frame::{Frame, Header, HEADER_LEN, MAX_PAYLOAD_LEN};
use crate::tlv::{self, Tlv};
use crate::types::{Codec, IntoStatic, Reader, Warning};

/// Defines one message struct: its fields in wire order, and its identity on the wire.
macro_rules! message {
    (
        $(#[$meta:meta])*
        $name:ident [$($lt:lifetime)?] = {
            spec: $spec:literal, protocol: $proto:ident,
            extension_type: $ext:literal, msg_type: $ty:literal, channel_msg: $ch:literal $(,)?
        }
        { $( $(#[$fmeta:meta])* $field:ident : $fty:ty ),* $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        #[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
        #[serde(deny_unknown_fields)]
        pub struct $name<$($lt)?> {
            $( $(#[$fmeta])* pub $field: $fty, )*
        }

        impl<$($lt)?> $crate::messages::MessageType for $name<$($lt)?> {
            const NAME: &'static str = $spec;
            const PROTOCOL: $crate::messages::Protocol = $crate::messages::Protocol::$proto;
            const EXTENSION_TYPE: u16 = $ext;
            const MSG_TYPE: u8 = $ty;
            const CHANNEL_MSG: bool = $ch;
            const FIELDS: &'static [$crate::messages::FieldInfo] = &[
                $( $crate::messages::FieldInfo { name: stringify!($field), rust_type: stringify!($fty) }, )*
            ];
        }

        impl<'a> $crate::types::Codec<'a> for $name<$($lt)?> {
            const MIN_LEN: usize = 0 $( + <$fty as $crate::types::Codec>::MIN_LEN )*;
            #[inline]
            fn decode(r: &mut $crate::types::Reader<'a>) -> Result<Self, $crate::error::DecodeError> {
                Ok($name {
                    $( $field: { r.field(stringify!($field)); $crate::types::Codec::decode(r)? }, )*
                })
            }
            #[inline]
            fn encode(&self, out: &mut Vec<u8>) {
                $( $crate::types::Codec::encode(&self.$field, out); )*
            }
            #[inline]
            fn encoded_len(&self) -> usize {
                0 $( + $crate::types::Codec::encoded_len(&self.$field) )*
            }
        }

        impl<$($lt)?> $crate::types::IntoStatic for $name<$($lt)?> {
            type Static = $crate::messages::static_of!($name $($lt)?);
            fn into_static(self) -> Self::Static {
                $name { $( $field: $crate::types::IntoStatic::into_static(self.$field), )* }
            }
        }
    };
}

macro_rules! static_of {
    ($name:ident) => { $name };
    ($name:ident $lt:lifetime) => { $name<'static> };
}

pub(crate) use static_of;

pub mod common;
pub mod extensions;
pub mod job_declaration;
pub mod mining;
pub mod sender;
pub mod template_distribution;

pub use common::*;
pub use extensions::*;
pub use job_declaration::*;
pub use mining::*;
pub use sender::Sender;
pub use template_distribution::*;

/// The (sub-)protocol a message belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Protocol {
    Common,
    Mining,
    JobDeclaration,
    TemplateDistribution,
    ExtensionsNegotiation,
}

/// A message's identity on the wire.
pub trait MessageType {
    /// The spec's name, e.g. "SetupConnection.Success".
    const NAME: &'static str;
    const PROTOCOL: Protocol;
    const EXTENSION_TYPE: u16;
    const MSG_TYPE: u8;
    /// The channel_msg bit the spec assigns to this message (§8).
    const CHANNEL_MSG: bool;
    /// The fields in wire order.
    const FIELDS: &'static [FieldInfo];
}

/// One field of a message: its name (as in the spec) and type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct FieldInfo {
    pub name: &'static str,
    /// The Rust type as written in the definition, e.g. `Str0_255<'a>` or `Seq0_255<U256>`.
    pub rust_type: &'static str,
}

impl FieldInfo {
    /// The SV2 type name of the field, e.g. `STR0_255`, `SEQ0_255[U256]`, `OPTION[U32]`.
    pub fn sv2_type(&self) -> String {
        fn name(rust: &str) -> String {
            let rust = rust.replace(' ', "").replace("<'a>", "");
            if let Some(inner) = rust
                .strip_prefix("Option<")
                .and_then(|r| r.strip_suffix('>'))
            {
                return format!("OPTION[{}]", name(inner));
            }
            for (prefix, sv2) in [("Seq0_255<", "SEQ0_255"), ("Seq0_64K<", "SEQ0_64K")] {
                if let Some(inner) = rust.strip_prefix(prefix).and_then(|r| r.strip_suffix('>')) {
                    return format!("{sv2}[{}]", name(inner));
                }
            }
            match rust.as_str() {
                "bool" => "BOOL".into(),
                "f32" => "F32".into(),
                "u8" | "u16" | "u32" | "u64" => rust.to_uppercase(),
                "Pubkey" => "PUBKEY".into(),
                "Signature" => "SIGNATURE".into(),
                other => other.to_uppercase(),
            }
        }
        name(self.rust_type)
    }

    /// Whether the field is text (STR0_255) rather than numbers or bytes.
    pub fn is_text(&self) -> bool {
        self.rust_type.starts_with("Str0_255")
    }
}

/// The identity of one message type, for tables and lookups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct MessageInfo {
    pub name: &'static str,
    pub protocol: Protocol,
    pub extension_type: u16,
    pub msg_type: u8,
    pub channel_msg: bool,
    pub fields: &'static [FieldInfo],
}

/// A frame of an extension this codec does not know: kept whole. `extension_type` excludes the
/// channel_msg bit and is never 0x0000 or 0x0001 (those frames decode as messages or fail).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMessage<'a> {
    pub extension_type: u16,
    pub channel_msg: bool,
    pub msg_type: u8,
    /// JSON: hex.
    #[serde(with = "hex_cow")]
    pub payload: Cow<'a, [u8]>,
}

/// Raw frames only for extensions with no messages in this codec, so that they round-trip as raw.
#[cfg(feature = "arbitrary")]
impl<'u: 'a, 'a> arbitrary::Arbitrary<'u> for RawMessage<'a> {
    fn arbitrary(u: &mut arbitrary::Unstructured<'u>) -> arbitrary::Result<Self> {
        let len = u.int_in_range(0..=64usize)?;
        Ok(RawMessage {
            extension_type: u.int_in_range(0x0002..=0x7fff)?,
            channel_msg: u.arbitrary()?,
            msg_type: u.arbitrary()?,
            payload: Cow::Borrowed(u.bytes(len)?),
        })
    }
}

mod hex_cow {
    use std::borrow::Cow;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, 'a, D: Deserializer<'de>>(d: D) -> Result<Cow<'a, [u8]>, D::Error> {
        let text = Cow::<str>::deserialize(d)?;
        hex::decode(text.as_bytes())
            .map(Cow::Owned)
            .map_err(serde::de::Error::custom)
    }
}

/// Generates the `Message` enum and everything that needs the full list of message types.
macro_rules! all_messages {
    ($( $variant:ident $(<$lt:lifetime>)? ),* $(,)?) => {
        /// Any SV2 message. `Raw` holds frames of unknown extensions.
        #[derive(Debug, Clone, PartialEq)]
        #[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
        pub enum Message<'a> {
            $( $variant($variant $(<$lt>)?), )*
            Raw(RawMessage<'a>),
        }

        /// Every message type this codec knows, in catalogue order.
        pub const MESSAGE_TYPES: &[MessageInfo] = &[
            $( MessageInfo {
                name: <$variant as MessageType>::NAME,
                protocol: <$variant as MessageType>::PROTOCOL,
                extension_type: <$variant as MessageType>::EXTENSION_TYPE,
                msg_type: <$variant as MessageType>::MSG_TYPE,
                channel_msg: <$variant as MessageType>::CHANNEL_MSG,
                fields: <$variant as MessageType>::FIELDS,
            }, )*
        ];

        impl<'a> Message<'a> {
            /// Decodes the message fields (without TLVs) for a known identity from `r`, which starts
            /// at the beginning of the payload, or keeps the payload raw for an unknown extension.
            #[inline]
            fn decode_fields(
                extension_type: u16,
                channel_msg: bool,
                msg_type: u8,
                r: &mut Reader<'a>,
            ) -> Result<Message<'a>, DecodeError> {
                match (extension_type, msg_type) {
                    $( (<$variant as MessageType>::EXTENSION_TYPE, <$variant as MessageType>::MSG_TYPE) => {
                        r.set_message(<$variant as MessageType>::NAME);
                        if channel_msg != <$variant as MessageType>::CHANNEL_MSG {
                            return Err(r.error(ErrorKind::ChannelMsgBit {
                                expected: <$variant as MessageType>::CHANNEL_MSG,
                                found: channel_msg,
                            }));
                        }
                        Ok(Message::$variant(<$variant>::decode(r)?))
                    } )*
                    (crate::messages::CORE_EXTENSION | crate::messages::EXTENSIONS_NEGOTIATION, _) => {
                        Err(r.error(ErrorKind::UnknownMessageType { extension_type, msg_type }))
                    }
                    _ => Ok(Message::Raw(RawMessage {
                        extension_type,
                        channel_msg,
                        msg_type,
                        payload: Cow::Borrowed(r.rest()),
                    })),
                }
            }

            /// Static facts about this message's type (`None` for a raw frame).
            pub fn info(&self) -> Option<&'static MessageInfo> {
                let (ext, ty) = self.id();
                MESSAGE_TYPES.iter().find(|i| i.extension_type == ext && i.msg_type == ty)
            }

            /// The spec name ("raw" for a frame of an unknown extension).
            pub fn name(&self) -> &'static str {
                match self {
                    $( Message::$variant(_) => <$variant as MessageType>::NAME, )*
                    Message::Raw(_) => "raw",
                }
            }

            /// `(extension_type, msg_type)`, the message's identity.
            pub fn id(&self) -> (u16, u8) {
                match self {
                    $( Message::$variant(_) => (<$variant as MessageType>::EXTENSION_TYPE, <$variant as MessageType>::MSG_TYPE), )*
                    Message::Raw(raw) => (raw.extension_type, raw.msg_type),
                }
            }

            /// The channel_msg bit this message is sent with.
            pub fn channel_msg(&self) -> bool {
                match self {
                    $( Message::$variant(_) => <$variant as MessageType>::CHANNEL_MSG, )*
                    Message::Raw(raw) => raw.channel_msg,
                }
            }

            /// Payload length of the message fields (TLVs excluded).
            pub fn encoded_len(&self) -> usize {
                match self {
                    $( Message::$variant(m) => m.encoded_len(), )*
                    Message::Raw(raw) => raw.payload.len(),
                }
            }

            /// Writes the message fields (no header, no TLVs).
            pub fn encode_fields(&self, out: &mut Vec<u8>) {
                match self {
                    $( Message::$variant(m) => m.encode(out), )*
                    Message::Raw(raw) => out.extend_from_slice(&raw.payload),
                }
            }

            /// A copy that owns all its bytes.
            pub fn into_static(self) -> Message<'static> {
                match self {
                    $( Message::$variant(m) => Message::$variant(m.into_static()), )*
                    Message::Raw(raw) => Message::Raw(RawMessage {
                        payload: Cow::Owned(raw.payload.into_owned()),
                        ..raw
                    }),
                }
            }

            /// Serializes `{"message": name, ["protocol": p,] fields...}` straight to `s`, so that
            /// number formats (F32) are the serializer's own.
            fn serialize_tagged<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let protocol = match self {
                    Message::SetNewPrevHash(_) | Message::SetNewPrevHashTdp(_) => self.info().map(|i| i.protocol),
                    _ => None,
                };
                match self {
                    $( Message::$variant(m) => Tagged { message: self.name(), protocol, fields: m }.serialize(s), )*
                    Message::Raw(raw) => Tagged { message: self.name(), protocol, fields: raw }.serialize(s),
                }
            }

            fn from_fields_json(info: &MessageInfo, fields: serde_json::Value) -> serde_json::Result<Message<'static>> {
                $( if info.extension_type == <$variant as MessageType>::EXTENSION_TYPE
                    && info.msg_type == <$variant as MessageType>::MSG_TYPE {
                    return serde_json::from_value::<$variant>(fields).map(Message::$variant);
                } )*
                Err(serde::de::Error::custom("unreachable: message info without a type"))
            }
        }

        $( impl<'a> From<$variant $(<$lt>)?> for Message<'a> {
            fn from(m: $variant $(<$lt>)?) -> Self {
                Message::$variant(m)
            }
        } )*
    };
}

/// extension_type of the core protocols.
pub const CORE_EXTENSION: u16 = 0x0000;
/// extension_type of Extensions Negotiation (extension 0x0001).
pub const EXTENSIONS_NEGOTIATION: u16 = 0x0001;

all_messages! {
    // Common
    SetupConnection<'a>, SetupConnectionSuccess, SetupConnectionError<'a>, ChannelEndpointChanged, Reconnect<'a>,
    // Mining
    OpenStandardMiningChannel<'a>, OpenStandardMiningChannelSuccess<'a>, OpenMiningChannelError<'a>,
    OpenExtendedMiningChannel<'a>, OpenExtendedMiningChannelSuccess<'a>, NewMiningJob, UpdateChannel,
    UpdateChannelError<'a>, CloseChannel<'a>, SetExtranoncePrefix<'a>, SubmitSharesStandard,
    SubmitSharesExtended<'a>, SubmitSharesSuccess, SubmitSharesError<'a>, NewExtendedMiningJob<'a>,
    SetNewPrevHash, SetTarget, SetCustomMiningJob<'a>, SetCustomMiningJobSuccess,
    SetCustomMiningJobError<'a>, SetGroupChannel,
    // Job Declaration
    AllocateMiningJobToken<'a>, AllocateMiningJobTokenSuccess<'a>, ProvideMissingTransactions,
    ProvideMissingTransactionsSuccess<'a>, DeclareMiningJob<'a>, DeclareMiningJobSuccess<'a>,
    DeclareMiningJobError<'a>, PushSolution<'a>,
    // Template Distribution
    CoinbaseOutputConstraints, NewTemplate<'a>, SetNewPrevHashTdp, RequestTransactionData,
    RequestTransactionDataSuccess<'a>, RequestTransactionDataError<'a>, SubmitSolution<'a>,
    // Extension 0x0001
    RequestExtensions, RequestExtensionsSuccess, RequestExtensionsError,
}

/// A decoded frame payload: the message, any TLVs after its last field, and what was accepted but is
/// worth reporting (non-canonical BOOLs, unknown TLVs).
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded<'a> {
    pub message: Message<'a>,
    pub tlvs: Vec<Tlv<'a>>,
    pub warnings: Vec<Warning>,
}

impl Decoded<'_> {
    pub fn into_static(self) -> Decoded<'static> {
        Decoded {
            message: self.message.into_static(),
            tlvs: self.tlvs.into_iter().map(IntoStatic::into_static).collect(),
            warnings: self.warnings,
        }
    }
}

/// The header's msg_length is the payload's length.
fn check_length(header: &Header, payload: &[u8]) -> Result<(), DecodeError> {
    if header.msg_length as usize == payload.len() {
        return Ok(());
    }
    Err(
        Reader::new(payload, "frame").error(ErrorKind::LengthMismatch {
            header: header.msg_length,
            payload: payload.len(),
        }),
    )
}

/// Decodes a frame's payload strictly: the channel_msg bit must match the spec, every field must be
/// within its bounds, and bytes after the last field must be well-formed TLVs.
pub fn decode_frame<'a>(frame: &Frame<'a>) -> Result<Decoded<'a>, DecodeError> {
    decode_payload(&frame.header, frame.payload)
}

/// As [`decode_frame`], for a header and payload held separately.
pub fn decode_payload<'a>(header: &Header, payload: &'a [u8]) -> Result<Decoded<'a>, DecodeError> {
    check_length(header, payload)?;
    let mut r = Reader::new(payload, "frame");
    let message = Message::decode_fields(
        header.extension_type,
        header.channel_msg,
        header.msg_type,
        &mut r,
    )?;
    let tlvs = if r.remaining() > 0 {
        tlv::decode_trailing(&mut r, (header.extension_type, header.msg_type))?
    } else {
        Vec::new()
    };
    Ok(Decoded {
        message,
        tlvs,
        warnings: r.take_warnings(),
    })
}

/// The message's own fields, strictly, and nothing after them: whatever follows the last field is
/// not read. For a receiver that must ignore the TLVs of extensions it did not negotiate (extension
/// 0x0002 §1.3) when [`decode_payload`] refused them (a known TLV over its length limit is an error
/// there, whatever was negotiated).
pub fn decode_base<'a>(header: &Header, payload: &'a [u8]) -> Result<Message<'a>, DecodeError> {
    check_length(header, payload)?;
    let mut r = Reader::new(payload, "frame");
    Message::decode_fields(
        header.extension_type,
        header.channel_msg,
        header.msg_type,
        &mut r,
    )
}

/// Appends the whole frame (header, fields, then `tlvs`) to `out`. TLVs are written in the order
/// given; [`sort_tlvs`] orders them as §3.4.3 asks.
pub fn encode_frame(
    message: &Message<'_>,
    tlvs: &[Tlv<'_>],
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let start = out.len();
    let (extension_type, msg_type) = message.id();
    let len = message.encoded_len() + tlvs.iter().map(Tlv::encoded_len).sum::<usize>();
    if len > MAX_PAYLOAD_LEN {
        return Err(EncodeError::PayloadTooLarge(len));
    }
    let header = Header {
        extension_type,
        channel_msg: message.channel_msg(),
        msg_type,
        msg_length: len as u32,
    };
    out.reserve(HEADER_LEN + len);
    out.extend_from_slice(&header.to_bytes());
    message.encode_fields(out);
    for tlv in tlvs {
        tlv.encode(out);
    }
    debug_assert_eq!(out.len() - start, HEADER_LEN + len);
    Ok(())
}

/// Encodes a frame into a new buffer.
pub fn to_frame_bytes(message: &Message<'_>, tlvs: &[Tlv<'_>]) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    encode_frame(message, tlvs, &mut out)?;
    Ok(out)
}

/// Orders TLVs by extension_type, keeping the relative order within an extension (§3.4.3).
pub fn sort_tlvs(tlvs: &mut [Tlv<'_>]) {
    tlvs.sort_by_key(|t| t.extension_type);
}

/// Looks up a message type by its spec name (and, for the name used by two protocols,
/// "SetNewPrevHash", its protocol).
pub fn lookup(name: &str, protocol: Option<Protocol>) -> Result<&'static MessageInfo, String> {
    let mut found = MESSAGE_TYPES
        .iter()
        .filter(|i| i.name == name && protocol.is_none_or(|p| p == i.protocol));
    match (found.next(), found.next()) {
        (Some(info), None) => Ok(info),
        (Some(_), Some(_)) => Err(format!(
            "{name:?} names messages of several protocols; add \"protocol\" (Mining or TemplateDistribution)"
        )),
        (None, _) => Err(format!("no message named {name:?}")),
    }
}

/// JSON: `{"message": "<spec name>", <fields...>}`. The two messages named "SetNewPrevHash" also carry
/// `"protocol"`. A raw frame is `{"message": "raw", "extension_type", "channel_msg", "msg_type",
/// "payload"}`.
impl Serialize for Message<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.serialize_tagged(s)
    }
}

#[derive(Serialize)]
struct Tagged<'x, T> {
    message: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    protocol: Option<Protocol>,
    #[serde(flatten)]
    fields: &'x T,
}

impl<'de> Deserialize<'de> for Message<'static> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut object = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        let name = match object.remove("message") {
            Some(serde_json::Value::String(name)) => name,
            _ => {
                return Err(D::Error::custom(
                    "missing \"message\": the spec name of the message",
                ))
            }
        };
        if name == "raw" {
            let raw =
                serde_json::from_value::<RawMessage>(object.into()).map_err(D::Error::custom)?;
            if raw.extension_type & crate::frame::CHANNEL_MSG_BIT != 0
                || matches!(raw.extension_type, CORE_EXTENSION | EXTENSIONS_NEGOTIATION)
            {
                return Err(D::Error::custom(format!(
                    "raw: extension_type {:#06x} must be 0x0002..=0x7fff (without the channel_msg bit; \
                     0x0000 and 0x0001 have defined messages)",
                    raw.extension_type
                )));
            }
            return Ok(Message::Raw(raw));
        }
        // "protocol" picks between messages sharing a name; elsewhere it may be a field
        // (SetupConnection.protocol).
        let shared = MESSAGE_TYPES.iter().filter(|i| i.name == name).count() > 1;
        let protocol = match object.get("protocol") {
            Some(p) if shared => {
                let p = serde_json::from_value::<Protocol>(p.clone()).map_err(D::Error::custom)?;
                object.remove("protocol");
                Some(p)
            }
            _ => None,
        };
        let info = lookup(&name, protocol).map_err(D::Error::custom)?;
        Message::from_fields_json(info, object.into())
            .map_err(|e| D::Error::custom(format!("{name}: {e}")))
    }
}
