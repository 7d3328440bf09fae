//! How a frame vector is decoded: the one definition the generator records and the verifier checks.
//!
//! A frame vector's bytes are exactly one frame as received. Fewer than 6 bytes is
//! `INCOMPLETE_HEADER`; bytes after the header that are not exactly `msg_length` bytes is
//! `LENGTH_MISMATCH`; otherwise the payload is decoded strictly (sv2-codec's `decode_payload`).

use serde_json::Value;
use sv2_codec::frame::{Header, HEADER_LEN};
use sv2_codec::messages::MESSAGE_TYPES;
use sv2_codec::{decode_payload, to_frame_bytes, Message, Tlv};

use crate::classes::decode_class;

/// What our codec makes of a frame vector.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameVerdict {
    /// The spec name of the message the header identifies, if any.
    pub message: Option<String>,
    pub outcome: Result<Accepted, Refused>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    pub decoded: Value,
    pub tlvs: Option<Vec<Value>>,
    pub warnings: Option<Vec<Value>>,
    /// The canonical encoding of the decoded message and TLVs (may differ from the input only for a
    /// non-canonical BOOL).
    pub canonical: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub class: String,
    pub field: Option<String>,
    pub offset: Option<usize>,
}

/// The spec name of `(extension_type without the channel bit, msg_type)`.
pub fn message_name(extension_type: u16, msg_type: u8) -> Option<&'static str> {
    MESSAGE_TYPES
        .iter()
        .find(|i| i.extension_type == extension_type && i.msg_type == msg_type)
        .map(|i| i.name)
}

/// Decodes one frame vector with sv2-codec.
pub fn decode_vector(bytes: &[u8]) -> FrameVerdict {
    let Some((head, payload)) = bytes.split_first_chunk::<HEADER_LEN>() else {
        return FrameVerdict {
            message: None,
            outcome: Err(Refused {
                class: "INCOMPLETE_HEADER".into(),
                field: None,
                offset: None,
            }),
        };
    };
    let header = Header::from_bytes(*head);
    let message = message_name(header.extension_type, header.msg_type).map(str::to_string);
    let outcome = match decode_payload(&header, payload) {
        Err(e) => Err(Refused {
            class: decode_class(&e).to_string(),
            field: Some(e.field.to_string()),
            offset: Some(e.offset),
        }),
        Ok(decoded) => accepted(&decoded.message, &decoded.tlvs, &decoded.warnings),
    };
    FrameVerdict { message, outcome }
}

fn accepted(
    message: &Message<'_>,
    tlvs: &[Tlv<'_>],
    warnings: &[sv2_codec::types::Warning],
) -> Result<Accepted, Refused> {
    let internal = |what: String| Refused {
        class: format!("INTERNAL: {what}"),
        field: None,
        offset: None,
    };
    let decoded = serde_json::to_value(message).map_err(|e| internal(e.to_string()))?;
    /// The JSON list of `items`; `None` when there are none.
    fn json_list<T: serde::Serialize>(items: &[T]) -> serde_json::Result<Option<Vec<Value>>> {
        if items.is_empty() {
            return Ok(None);
        }
        items
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<_, _>>()
            .map(Some)
    }
    let tlvs_json = json_list(tlvs).map_err(|e| internal(e.to_string()))?;
    let warnings_json = json_list(warnings).map_err(|e| internal(e.to_string()))?;
    let canonical = to_frame_bytes(message, tlvs).map_err(|e| internal(e.to_string()))?;
    Ok(Accepted {
        decoded,
        tlvs: tlvs_json,
        warnings: warnings_json,
        canonical,
    })
}

/// Encodes a frame from its JSON form (`decoded` and `tlvs` of a vector): the re-encoding check.
pub fn encode_from_json(decoded: &Value, tlvs: Option<&[Value]>) -> Result<Vec<u8>, String> {
    let message: Message<'static> =
        serde_json::from_value(decoded.clone()).map_err(|e| format!("decoded: {e}"))?;
    let tlvs: Vec<Tlv<'static>> = match tlvs {
        None => Vec::new(),
        Some(list) => list
            .iter()
            .map(|t| serde_json::from_value(t.clone()).map_err(|e| format!("tlv: {e}")))
            .collect::<Result<_, _>>()?,
    };
    to_frame_bytes(&message, &tlvs).map_err(|e| e.to_string())
}
