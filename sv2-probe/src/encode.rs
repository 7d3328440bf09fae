//! `sv2-probe encode`: messages from JSON to SV2 frames in hex.
//!
//! Every argument (or stdin, when there is none) holds one or more JSON values: one value, values one
//! per line (JSON lines), or any whitespace-separated sequence of them. A value is an item or an array
//! of items, and an item is either
//!
//! - a message: `{"message": "<spec name>", <fields>...}` (the codec's JSON of `Message`), or
//! - a frame: `{"message": {<a message>}, "tlvs": [{"extension_type", "field_type", "value"}...]}`
//!   with `tlvs` optional. The other keys of `decode --json` output are accepted too, so that its lines
//!   can be fed back: `extension_type`, `channel_msg`, `msg_type` and `msg_length` are checked against
//!   the encoded frame, and `warnings` is ignored.
//!
//! Each frame is printed as hex on its own line (`--json`: `{"frame": "<hex>"}`). A bad item is
//! reported on stderr (and with `--json` as `{"error": {...}}` on stdout) and skipped; a JSON syntax
//! error ends its input. Any problem makes the exit code 1.

use std::io::Write;

use serde_json::{json, Map, Value};
use sv2_codec::messages::MESSAGE_TYPES;
use sv2_codec::{to_frame_bytes, Header, Message, Tlv};

use crate::input::read_stdin;
use crate::outcome::Outcome;

pub const LONG_ABOUT: &str = "\
Encode SV2 messages given as JSON into frames in hex.

Each argument (or stdin, when there is none) holds JSON values: one, several one per line (JSON \
lines), or arrays of them. Each is a message {\"message\": \"<spec name>\", <fields>} (see \
codec/JSON.md) or a frame {\"message\": {...}, \"tlvs\": [{\"extension_type\", \"field_type\", \
\"value\": \"<hex>\"}]}. Lines of `sv2-probe decode --json` are frames too: their header keys \
are checked against the encoded frame and their warnings are ignored.

Prints one frame per line as hex (--json: {\"frame\": \"<hex>\"}). A bad item is reported on \
stderr (and with --json as {\"error\": {...}} on stdout) and skipped. \
Exit code: 0 when every item encoded, 1 when any was malformed, 2 on a usage error.";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Messages or frames as JSON, one or several per argument. Read from stdin when absent.
    #[arg(value_name = "JSON")]
    pub inputs: Vec<String>,
    /// Print `{"frame": "<hex>"}` per line instead of bare hex.
    #[arg(long)]
    pub json: bool,
}

/// Keys of `decode --json` output checked against the encoded frame's header.
const HEADER_KEYS: [&str; 4] = ["extension_type", "channel_msg", "msg_type", "msg_length"];

pub fn run(args: &Args, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<Outcome> {
    let inputs = if args.inputs.is_empty() {
        vec![read_stdin("JSON messages")?]
    } else {
        args.inputs.clone()
    };
    let mut failed = false;
    let mut item = 0usize;
    for (input, text) in inputs.iter().enumerate() {
        for value in serde_json::Deserializer::from_str(text).into_iter::<Value>() {
            let value = match value {
                Ok(value) => value,
                Err(e) => {
                    failed = true;
                    writeln!(err, "error: input {input}: invalid JSON: {e}")?;
                    if args.json {
                        let error = json!({
                            "kind": "json",
                            "input": input,
                            "line": e.line(),
                            "column": e.column(),
                            "text": e.to_string(),
                        });
                        writeln!(out, "{}", json!({ "error": error }))?;
                    }
                    break;
                }
            };
            let items = match value {
                Value::Array(items) => items,
                other => vec![other],
            };
            for value in items {
                match encode_item(value) {
                    Ok(bytes) if args.json => {
                        writeln!(out, "{}", json!({ "frame": hex::encode(bytes) }))?
                    }
                    Ok(bytes) => writeln!(out, "{}", hex::encode(bytes))?,
                    Err(e) => {
                        failed = true;
                        writeln!(err, "error: item {item} (input {input}): {e}")?;
                        if args.json {
                            let error = json!({ "kind": "message", "input": input, "item": item, "text": e });
                            writeln!(out, "{}", json!({ "error": error }))?;
                        }
                    }
                }
                item += 1;
            }
        }
    }
    Ok(if failed { Outcome::Fail } else { Outcome::Pass })
}

/// One item (a message or a frame object) to frame bytes, or why not.
fn encode_item(value: Value) -> Result<Vec<u8>, String> {
    const EXPECTED: &str = "expected a message {\"message\": \"<spec name>\", ...} \
                            or a frame {\"message\": {...}, \"tlvs\": [...]}";
    let Value::Object(mut object) = value else {
        return Err(EXPECTED.to_owned());
    };
    match object.get("message") {
        Some(Value::String(_)) => {
            let message = parse_message(Value::Object(object))?;
            to_frame_bytes(&message, &[]).map_err(|e| e.to_string())
        }
        Some(Value::Object(_)) => {
            let message = parse_message(object.remove("message").unwrap_or_default())?;
            let tlvs = match object.remove("tlvs") {
                None | Some(Value::Null) => Vec::new(),
                Some(tlvs) => serde_json::from_value::<Vec<Tlv<'static>>>(tlvs)
                    .map_err(|e| format!("tlvs: {e}"))?,
            };
            object.remove("warnings");
            if let Some(key) = object.keys().find(|k| !HEADER_KEYS.contains(&k.as_str())) {
                return Err(format!("unknown key {key:?} in a frame object; {EXPECTED}"));
            }
            let bytes = to_frame_bytes(&message, &tlvs).map_err(|e| e.to_string())?;
            check_header(&object, &bytes)?;
            Ok(bytes)
        }
        _ => Err(EXPECTED.to_owned()),
    }
}

fn parse_message(value: Value) -> Result<Message<'static>, String> {
    let hint = match value.get("message") {
        Some(Value::String(name)) => name_hint(name),
        _ => None,
    };
    serde_json::from_value::<Message<'static>>(value).map_err(|e| match hint {
        Some(known) => format!("{e} (did you mean {known:?}?)"),
        None => e.to_string(),
    })
}

/// For a name that is not a spec name, the spec name it probably means ("SubmitSharesSuccess" for
/// "SubmitShares.Success": the spec's names of replies contain a dot).
fn name_hint(name: &str) -> Option<&'static str> {
    let squash = |s: &str| s.replace(['.', '_', '-', ' '], "").to_ascii_lowercase();
    if name == "raw" || MESSAGE_TYPES.iter().any(|i| i.name == name) {
        return None;
    }
    let wanted = squash(name);
    MESSAGE_TYPES
        .iter()
        .find(|i| squash(i.name) == wanted)
        .map(|i| i.name)
}

/// The header keys a frame object gave must agree with the frame built from its message and TLVs.
fn check_header(given: &Map<String, Value>, bytes: &[u8]) -> Result<(), String> {
    let Some(head) = bytes.first_chunk() else {
        return Err("encoded frame has no header".to_owned());
    };
    let header = Header::from_bytes(*head);
    let actual = [
        json!(header.extension_type),
        json!(header.channel_msg),
        json!(header.msg_type),
        json!(header.msg_length),
    ];
    for (key, actual) in HEADER_KEYS.iter().zip(actual) {
        if let Some(value) = given.get(*key) {
            if *value != actual {
                return Err(format!(
                    "{key:?} is {value} but the encoded frame's is {actual} \
                     (leave the header keys out to have them computed)"
                ));
            }
        }
    }
    Ok(())
}
