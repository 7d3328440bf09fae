//! How a decoded frame is shown: readable text for people, one JSON object for machines. Shared by
//! every command that prints frames (decode now; pcap and probe transcripts later).
//!
//! Text, one block per frame:
//!
//! ```text
//! SubmitSharesStandard (extension_type 0x0000, channel_msg true, msg_type 0x1a, msg_length 24)
//!   channel_id: 1
//!   ...
//!   version: 536870912 (0x20000000)
//! ```
//!
//! then `tlvs:` and `warnings:` sections when there are any. Text fields (STR0_255) are quoted, byte
//! fields and U256 are bare lowercase hex in wire order, non-UTF-8 text shows as `(non-UTF-8) <hex>`.
//!
//! JSON, one object per frame: `{"extension_type", "channel_msg", "msg_type", "msg_length", "message",
//! "tlvs", "warnings"}` where `message` is the codec's JSON for the message and `tlvs`/`warnings` are
//! always present (empty arrays when there are none), so that consumers need no special case.

use std::fmt::Write as _;

use serde_json::{json, Map, Value};
use sv2_codec::messages::MESSAGE_TYPES;
use sv2_codec::tlv::KnownTlv;
use sv2_codec::{Decoded, Header, Message};

/// The JSON object of one decoded frame.
pub fn frame_json(header: &Header, decoded: &Decoded<'_>) -> serde_json::Result<Value> {
    Ok(json!({
        "extension_type": header.extension_type,
        "channel_msg": header.channel_msg,
        "msg_type": header.msg_type,
        "msg_length": header.msg_length,
        "message": serde_json::to_value(&decoded.message)?,
        "tlvs": serde_json::to_value(&decoded.tlvs)?,
        "warnings": serde_json::to_value(&decoded.warnings)?,
    }))
}

/// The readable block of one decoded frame, ending with a newline.
pub fn frame_text(header: &Header, decoded: &Decoded<'_>) -> serde_json::Result<String> {
    // The codec's JSON of a message is always an object; anything else is shown as one field.
    let fields = match serde_json::to_value(&decoded.message)? {
        Value::Object(fields) => fields,
        other => Map::from_iter([("value".to_owned(), other)]),
    };
    let raw = matches!(decoded.message, Message::Raw(_));
    let shared_name = MESSAGE_TYPES
        .iter()
        .filter(|i| i.name == decoded.message.name())
        .count()
        > 1;

    let text_fields: Vec<&str> = decoded
        .message
        .info()
        .map(|info| {
            info.fields
                .iter()
                .filter(|f| f.is_text())
                .map(|f| f.name)
                .collect()
        })
        .unwrap_or_default();

    let mut out = String::new();
    out.push_str(decoded.message.name());
    if shared_name {
        if let Some(info) = decoded.message.info() {
            let _ = write!(out, " [{:?}]", info.protocol);
        }
    }
    let _ = writeln!(
        out,
        " (extension_type {:#06x}, channel_msg {}, msg_type {:#04x}, msg_length {})",
        header.extension_type, header.channel_msg, header.msg_type, header.msg_length
    );
    for (key, value) in &fields {
        let skip = key == "message"
            || (shared_name && key == "protocol")
            || (raw && matches!(key.as_str(), "extension_type" | "channel_msg" | "msg_type"));
        if skip {
            continue;
        }
        let text = value.is_string() && text_fields.contains(&key.as_str());
        field_line(&mut out, key, value, text);
    }
    if !decoded.tlvs.is_empty() {
        out.push_str("  tlvs:\n");
        let id = decoded.message.id();
        for tlv in &decoded.tlvs {
            let _ = write!(
                out,
                "    {:#06x}/{:#04x} ",
                tlv.extension_type, tlv.field_type
            );
            match tlv.known(id) {
                Some(KnownTlv::UserIdentity(bytes)) => {
                    let _ = writeln!(out, "user_identity: {}", text_bytes(bytes));
                }
                None => {
                    let _ = writeln!(out, "(unknown): {}", hex_text(tlv.value.as_bytes()));
                }
            }
        }
    }
    if !decoded.warnings.is_empty() {
        out.push_str("  warnings:\n");
        for warning in &decoded.warnings {
            let _ = writeln!(out, "    {warning}");
        }
    }
    Ok(out)
}

/// Fields whose integers read better in hex too (block header versions, flag words, compact targets).
fn shows_hex(key: &str) -> bool {
    matches!(key, "version" | "flags" | "nbits" | "nBits")
}

fn field_line(out: &mut String, key: &str, value: &Value, text: bool) {
    match value {
        Value::Array(items) if items.iter().any(|v| !v.is_number() && !v.is_boolean()) => {
            let _ = writeln!(out, "  {key}: {} items", items.len());
            for (i, item) in items.iter().enumerate() {
                let _ = writeln!(out, "    [{i}] {}", scalar_text(item, false));
            }
        }
        Value::Number(n) if shows_hex(key) => match n.as_u64() {
            Some(v) => {
                let _ = writeln!(out, "  {key}: {v} ({v:#x})");
            }
            None => {
                let _ = writeln!(out, "  {key}: {n}");
            }
        },
        _ => {
            let _ = writeln!(out, "  {key}: {}", scalar_text(value, text));
        }
    }
}

fn scalar_text(value: &Value, text: bool) -> String {
    match value {
        Value::Null => "none".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match (n.as_u64(), n.as_f64()) {
            (Some(v), _) => v.to_string(),
            // Floats only come from F32 fields: show the F32's own shortest form.
            (None, Some(f)) if f64::from(f as f32) == f => format!("{}", f as f32),
            _ => n.to_string(),
        },
        Value::String(s) if text => Value::String(s.clone()).to_string(),
        Value::String(s) if s.is_empty() => "(empty)".to_owned(),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(|v| scalar_text(v, false)).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Object(map) => {
            // STR0_255 that is not UTF-8: {"hex": ...}; F32 that is not finite: {"bits": ...}.
            if let (1, Some(Value::String(hex))) = (map.len(), map.get("hex")) {
                format!("(non-UTF-8) {hex}")
            } else if let (1, Some(Value::String(bits))) = (map.len(), map.get("bits")) {
                match u32::from_str_radix(bits, 16) {
                    Ok(b) => format!("{} (F32 bits {bits})", f32::from_bits(b)),
                    Err(_) => format!("(F32 bits {bits})"),
                }
            } else {
                Value::Object(map.clone()).to_string()
            }
        }
    }
}

fn hex_text(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        "(empty)".to_owned()
    } else {
        hex::encode(bytes)
    }
}

/// Bytes meant as text: quoted when UTF-8, hex otherwise.
fn text_bytes(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => Value::String(s.to_owned()).to_string(),
        Err(_) => format!("(non-UTF-8) {}", hex::encode(bytes)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sv2_codec::{decode_frame, Frame};

    fn text_of(hex: &str) -> String {
        let bytes = hex::decode(hex).unwrap();
        let (frame, _) = Frame::parse(&bytes).unwrap();
        let decoded = decode_frame(&frame).unwrap();
        frame_text(&frame.header, &decoded).unwrap()
    }

    #[test]
    fn text_fields_are_quoted_and_byte_fields_are_not() {
        // SetupConnection.Error flags 0, error_code "abcd" (which is also valid hex).
        let text = text_of("000002090000000000000461626364");
        assert!(text.contains("  error_code: \"abcd\"\n"), "{text}");
        // SetExtranoncePrefix channel 1, extranonce_prefix abcdef01.
        let text = text_of("0080190900000100000004abcdef01");
        assert!(text.contains("  extranonce_prefix: abcdef01\n"), "{text}");
    }

    #[test]
    fn non_utf8_text_and_floats_read_well() {
        // SetupConnection.Error flags 0, error_code ff fe.
        let text = text_of("0000020700000000000002fffe");
        assert!(text.contains("  error_code: (non-UTF-8) fffe\n"), "{text}");
        // UpdateChannel channel 1, nominal_hash_rate 0.1 (an F32, shown as such), target 0.
        let text = text_of(&format!("00801628000001000000cdcccc3d{}", "00".repeat(32)));
        assert!(text.contains("  nominal_hash_rate: 0.1\n"), "{text}");
    }
}
