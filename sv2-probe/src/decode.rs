//! `sv2-probe decode`: SV2 frames from hex to readable text or JSON.
//!
//! Every argument (or stdin, when there is none) is hex text holding one frame or several frames back
//! to back. Frames are cut with `Frame::parse` and decoded strictly with `decode_frame`. A frame that
//! fails to decode is reported and skipped (its length is known); a frame that cannot be cut (too few
//! bytes: a truncated frame or stray bytes after the last frame) ends that input; hex that does not
//! parse skips that input. Each problem goes to stderr as `error: ...` and, with `--json`, to stdout
//! as `{"error": {...}}` in frame order. Any problem makes the exit code 1.

use std::io::Write;

use serde_json::{json, Value};
use sv2_codec::{decode_frame, DecodeError, Frame, FrameError};

use crate::input::{parse_hex, read_stdin, HexError};
use crate::outcome::Outcome;
use crate::render;

pub const LONG_ABOUT: &str = "\
Decode SV2 frames given as hex into readable text or JSON.

Each argument (or stdin, when there is none) holds one frame or several frames back to back, as hex; \
whitespace and 0x prefixes are ignored.

Text: one block per frame, a header line (message name, extension_type, channel_msg, msg_type, \
msg_length), then `name: value` per field, then TLVs and warnings if any.

--json: one object per frame per line, {\"extension_type\", \"channel_msg\", \"msg_type\", \
\"msg_length\", \"message\": {\"message\": \"<spec name>\", <fields>}, \"tlvs\": [...], \
\"warnings\": [...]}; tlvs and warnings are always present (empty arrays when there are none). \
Its lines can be fed to `sv2-probe encode` as they are.

A malformed frame (invalid hex, a truncated frame, stray bytes after the last frame, a payload that \
does not decode) is reported on stderr, and with --json also as {\"error\": {\"kind\", \"input\", \
\"frame\", \"offset\", ...}} on stdout in its place; the rest is still decoded. \
Exit code: 0 when every frame decoded, 1 when any input was malformed, 2 on a usage error.";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Frames as hex, one or several back to back per argument; whitespace and `0x` prefixes are
    /// ignored. Read from stdin when absent.
    #[arg(value_name = "HEX")]
    pub hex: Vec<String>,
    /// Print one JSON object per frame per line (and `{"error": {...}}` for a malformed frame).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &Args, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<Outcome> {
    let inputs = if args.hex.is_empty() {
        vec![read_stdin("hex frames")?]
    } else {
        args.hex.clone()
    };
    let mut printer = Printer {
        json: args.json,
        out,
        err,
        blocks: 0,
        failed: false,
    };
    let mut frame_index = 0usize;
    for (input, text) in inputs.iter().enumerate() {
        let bytes = match parse_hex(text) {
            Ok(bytes) => bytes,
            Err(e) => {
                printer.hex_error(input, text, &e)?;
                continue;
            }
        };
        let mut offset = 0usize;
        while offset < bytes.len() {
            let rest = &bytes[offset..];
            let frame_at = Location {
                input,
                frame: frame_index,
                offset,
            };
            frame_index += 1;
            let (frame, used) = match Frame::parse(rest) {
                Ok(cut) => cut,
                Err(e) => {
                    printer.frame_error(&frame_at, rest.len(), &e)?;
                    break;
                }
            };
            match decode_frame(&frame) {
                Ok(decoded) => printer.frame(&frame, &decoded)?,
                Err(e) => printer.decode_error(&frame_at, &frame, &e)?,
            }
            offset += used;
        }
    }
    Ok(if printer.failed {
        Outcome::Fail
    } else {
        Outcome::Pass
    })
}

/// Where a frame starts: which input, its index over all inputs, its byte offset in its input.
struct Location {
    input: usize,
    frame: usize,
    offset: usize,
}

impl Location {
    fn text(&self) -> String {
        format!(
            "frame {} (input {}, byte {})",
            self.frame, self.input, self.offset
        )
    }
}

struct Printer<'o> {
    json: bool,
    out: &'o mut dyn Write,
    err: &'o mut dyn Write,
    /// Text blocks printed so far (they are separated by blank lines).
    blocks: usize,
    failed: bool,
}

impl Printer<'_> {
    fn frame(&mut self, frame: &Frame<'_>, decoded: &sv2_codec::Decoded<'_>) -> anyhow::Result<()> {
        if self.json {
            let value = render::frame_json(&frame.header, decoded)?;
            writeln!(self.out, "{value}")?;
        } else {
            let text = render::frame_text(&frame.header, decoded)?;
            if self.blocks > 0 {
                writeln!(self.out)?;
            }
            self.blocks += 1;
            write!(self.out, "{text}")?;
        }
        Ok(())
    }

    fn problem(&mut self, text: String, object: Value) -> anyhow::Result<()> {
        self.failed = true;
        writeln!(self.err, "error: {text}")?;
        if self.json {
            writeln!(self.out, "{}", json!({ "error": object }))?;
        }
        Ok(())
    }

    fn hex_error(&mut self, input: usize, text: &str, e: &HexError) -> anyhow::Result<()> {
        self.problem(
            format!("input {input}: {e}"),
            json!({
                "kind": "hex",
                "input": input,
                "offset": e.offset(text.len()),
                "text": e.to_string(),
            }),
        )
    }

    fn frame_error(&mut self, at: &Location, left: usize, e: &FrameError) -> anyhow::Result<()> {
        self.problem(
            format!("{}: {e} ({left} bytes left in the input)", at.text()),
            json!({
                "kind": "frame",
                "input": at.input,
                "frame": at.frame,
                "offset": at.offset,
                "remaining": left,
                "text": e.to_string(),
            }),
        )
    }

    fn decode_error(
        &mut self,
        at: &Location,
        frame: &Frame<'_>,
        e: &DecodeError,
    ) -> anyhow::Result<()> {
        let h = &frame.header;
        self.problem(
            format!("{}: {e}", at.text()),
            json!({
                "kind": "decode",
                "input": at.input,
                "frame": at.frame,
                "offset": at.offset,
                "extension_type": h.extension_type,
                "channel_msg": h.channel_msg,
                "msg_type": h.msg_type,
                "msg_length": h.msg_length,
                "message": e.message,
                "field": e.field,
                "payload_offset": e.offset,
                "reason": e.kind.to_string(),
                "text": e.to_string(),
            }),
        )
    }
}
