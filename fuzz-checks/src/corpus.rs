//! The committed regression corpus (`fuzz/regressions/<target>/`): the frames it is built from
//! (those of the test vectors) and the class of a `messages` input, which names its file.
//! `cargo run -p sv2-codec --example regression_corpus` writes it; `codec/tests/fuzz_regressions.rs`
//! replays every file and checks each class is there.

use std::path::{Path, PathBuf};

use sv2_codec::frame::Frame;
use sv2_codec::messages::decode_frame;
use sv2_codec::ErrorKind;

use crate::normalized_frame;

/// Every `"frame": "<hex>"` in the JSON text (any nesting; the vectors' schema may move it).
pub fn frames_in_json(text: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("\"frame\"") {
        rest = &rest[at + 7..];
        let after = rest.trim_start();
        let Some(after) = after.strip_prefix(':') else {
            continue;
        };
        let Some(value) = after.trim_start().strip_prefix('"') else {
            continue;
        };
        let Some(end) = value.find('"') else {
            break;
        };
        if let Ok(bytes) = decode_hex(&value[..end]) {
            if bytes.len() >= 6 {
                out.push(bytes);
            }
        }
    }
    out
}

fn decode_hex(text: &str) -> Result<Vec<u8>, ()> {
    if !text.len().is_multiple_of(2) {
        return Err(());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2).ok_or(())?, 16).map_err(|_| ()))
        .collect()
}

/// The frames of every `*.json` file in `dir`, files in name order.
pub fn vector_frames(dir: &Path) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    paths
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|text| frames_in_json(&text))
        .collect()
}

/// FNV-1a of `data`: the content part of corpus file names.
pub fn fnv64(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Writes `data` to `dir/<prefix>-<hash>` (the folder made when missing); false when that file was
/// already there (names are by content: a rerun adds nothing twice).
pub fn write(dir: &Path, prefix: &str, data: &[u8]) -> std::io::Result<bool> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("{prefix}-{:016x}", fnv64(data)));
    if path.exists() {
        return Ok(false);
    }
    std::fs::write(path, data)?;
    Ok(true)
}

/// The input files of a corpus folder (README files aside), sorted; none when it is missing.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_none_or(|x| x != "md"))
        .collect();
    paths.sort();
    paths
}

/// The classes the corpus of the `messages` target must hold at least one input of: a frame that
/// decodes, and each way a whole frame can fail to (a length mismatch cannot happen there: the
/// target cuts the payload at msg_length).
pub const MESSAGE_CLASSES: &[&str] = &[
    "ok",
    "truncated",
    "length-out-of-bounds",
    "invalid-option-prefix",
    "trailing-bytes",
    "tlv-too-long",
    "channel-msg-bit",
    "unknown-message-type",
];

/// The name of a decode error's kind (every kind has one: a new kind must be named here).
pub fn kind_name(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Truncated { .. } => "truncated",
        ErrorKind::LengthOutOfBounds { .. } => "length-out-of-bounds",
        ErrorKind::InvalidOptionPrefix(_) => "invalid-option-prefix",
        ErrorKind::TrailingBytes { .. } => "trailing-bytes",
        ErrorKind::TlvTooLong { .. } => "tlv-too-long",
        ErrorKind::ChannelMsgBit { .. } => "channel-msg-bit",
        ErrorKind::LengthMismatch { .. } => "length-mismatch",
        ErrorKind::UnknownMessageType { .. } => "unknown-message-type",
    }
}

/// What the `messages` target makes of `data`: "ok" or the kind of its decode error; None when the
/// input is not a frame the target looks at.
pub fn message_class(data: &[u8]) -> Option<&'static str> {
    let frame = normalized_frame(data)?;
    let (parsed, _) = Frame::parse(&frame).ok()?;
    Some(match decode_frame(&parsed) {
        Ok(_) => "ok",
        Err(e) => kind_name(&e.kind),
    })
}
