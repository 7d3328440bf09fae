//! Key log: the traffic keys of SV2 Noise sessions, one line per session, so that a capture can be
//! decrypted later (in the spirit of NSS key log files, `SSLKEYLOGFILE`).
//!
//! # Format
//!
//! A UTF-8 text file. Lines end with `\n` (a trailing `\r` is ignored). Empty lines and lines whose
//! first non-blank character is `#` are comments. Every other line is
//!
//! ```text
//! <LABEL> <field> <field> ...
//! ```
//!
//! with fields separated by single spaces or tabs (runs of blanks are accepted). A reader skips lines
//! whose label it does not know, so new labels can be added without breaking old readers. This version
//! defines one label:
//!
//! ```text
//! SV2_NOISE_NX <initiator_ephemeral> <handshake_hash> <c1_key> <c2_key>
//! ```
//!
//! - `initiator_ephemeral`: hex of the initiator's ephemeral public key exactly as sent in act 1, the
//!   first bytes the initiator sends on the connection: 64 bytes (128 hex digits) for SV2's
//!   ElligatorSwift keys. This is the **lookup key**: a capture reader takes the first 64 bytes the
//!   client sent on a TCP stream and finds the line with the same value. It is random per session and
//!   visible on the wire, so it identifies the session without any secret.
//! - `handshake_hash`: hex of the final handshake hash `h` (32 bytes). Not computable from the capture
//!   alone; kept to cross-check a session against other tools' logs or test vectors.
//! - `c1_key`: hex of the 32-byte key of c1, the initiator -> responder direction.
//! - `c2_key`: hex of the 32-byte key of c2, the responder -> initiator direction.
//!
//! Hex is lowercase when written; readers accept either case. Extra fields after the four are ignored
//! (room for additions). With the keys, a reader decrypts the transport exactly like a peer: after
//! act 1 (64 bytes, client -> server) and act 2 (234 bytes, server -> client), each direction's nonce
//! starts at 0 and every 22-byte header and every payload block consumes one nonce (CATALOG §B.2).
//!
//! Example:
//!
//! ```text
//! # sv2-toolkit key log
//! SV2_NOISE_NX 4f1c...(128 hex)... 9a3e...(64 hex) 01ab...(64 hex) 77c0...(64 hex)
//! ```

use std::fmt;

/// The label of an SV2 Noise NX session line.
pub const LABEL: &str = "SV2_NOISE_NX";

/// One session's keys.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyLogEntry {
    /// The initiator's ephemeral public key as sent in act 1 (64 bytes for SV2).
    pub initiator_ephemeral: Vec<u8>,
    /// The final handshake hash.
    pub handshake_hash: [u8; 32],
    /// Key of c1 (initiator -> responder).
    pub c1: [u8; 32],
    /// Key of c2 (responder -> initiator).
    pub c2: [u8; 32],
}

impl fmt::Debug for KeyLogEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyLogEntry")
            .field(
                "initiator_ephemeral",
                &hex::encode(&self.initiator_ephemeral),
            )
            .field("handshake_hash", &hex::encode(self.handshake_hash))
            .finish_non_exhaustive()
    }
}

/// The line without its newline.
impl fmt::Display for KeyLogEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{LABEL} {} {} {} {}",
            hex::encode(&self.initiator_ephemeral),
            hex::encode(self.handshake_hash),
            hex::encode(self.c1),
            hex::encode(self.c2)
        )
    }
}

/// Largest accepted initiator ephemeral key (bytes).
pub const MAX_EPHEMERAL_LEN: usize = 64;

/// A malformed `SV2_NOISE_NX` line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key log line {line}: {reason}")]
pub struct KeyLogError {
    /// 1-based line number (1 for [`KeyLogEntry::parse_line`]).
    pub line: usize,
    pub reason: String,
}

impl KeyLogEntry {
    /// The line with its trailing newline, ready to append to a key log file.
    pub fn to_line(&self) -> String {
        format!("{self}\n")
    }

    /// Parses one line. `Ok(None)` for comments, empty lines and unknown labels.
    pub fn parse_line(line: &str) -> Result<Option<KeyLogEntry>, KeyLogError> {
        parse_line_at(line, 1)
    }

    /// Does this entry belong to the session whose act 1 starts with `act1`?
    pub fn matches_act1(&self, act1: &[u8]) -> bool {
        !self.initiator_ephemeral.is_empty() && act1.starts_with(&self.initiator_ephemeral)
    }
}

fn parse_line_at(line: &str, number: usize) -> Result<Option<KeyLogEntry>, KeyLogError> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let trimmed = line.trim_start();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Ok(None);
    }
    let mut fields = trimmed.split([' ', '\t']).filter(|f| !f.is_empty());
    if fields.next() != Some(LABEL) {
        return Ok(None);
    }
    let err = |reason: String| KeyLogError {
        line: number,
        reason,
    };
    let mut next = |name: &str| {
        fields
            .next()
            .ok_or_else(|| err(format!("missing field {name}")))
            .and_then(|f| hex::decode(f).map_err(|e| err(format!("{name}: {e}"))))
    };
    let initiator_ephemeral = next("initiator_ephemeral")?;
    if initiator_ephemeral.is_empty() || initiator_ephemeral.len() > MAX_EPHEMERAL_LEN {
        return Err(err(format!(
            "initiator_ephemeral: {} bytes, expected 1..={MAX_EPHEMERAL_LEN}",
            initiator_ephemeral.len()
        )));
    }
    let mut fixed = |name: &str| -> Result<[u8; 32], KeyLogError> {
        let bytes = next(name)?;
        <[u8; 32]>::try_from(bytes.as_slice())
            .map_err(|_| err(format!("{name}: {} bytes, expected 32", bytes.len())))
    };
    let handshake_hash = fixed("handshake_hash")?;
    let c1 = fixed("c1_key")?;
    let c2 = fixed("c2_key")?;
    Ok(Some(KeyLogEntry {
        initiator_ephemeral,
        handshake_hash,
        c1,
        c2,
    }))
}

/// Parses a whole key log. Comments and unknown labels are skipped; a malformed `SV2_NOISE_NX` line is
/// an error naming its line number.
pub fn parse(text: &str) -> Result<Vec<KeyLogEntry>, KeyLogError> {
    let mut entries = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        if let Some(entry) = parse_line_at(line, i + 1)? {
            entries.push(entry);
        }
    }
    Ok(entries)
}

/// As [`parse`], skipping malformed lines too (returned separately) instead of stopping.
pub fn parse_lenient(text: &str) -> (Vec<KeyLogEntry>, Vec<KeyLogError>) {
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        match parse_line_at(line, i + 1) {
            Ok(Some(entry)) => entries.push(entry),
            Ok(None) => {}
            Err(e) => errors.push(e),
        }
    }
    (entries, errors)
}

/// Finds the entry of the session whose first client bytes are `act1`.
pub fn find<'a>(entries: &'a [KeyLogEntry], act1: &[u8]) -> Option<&'a KeyLogEntry> {
    entries.iter().find(|e| e.matches_act1(act1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seed: u8) -> KeyLogEntry {
        KeyLogEntry {
            initiator_ephemeral: (0..64).map(|i| i ^ seed).collect(),
            handshake_hash: [seed; 32],
            c1: [seed.wrapping_add(1); 32],
            c2: [seed.wrapping_add(2); 32],
        }
    }

    #[test]
    fn format_and_parse_round_trip() {
        let a = entry(1);
        let b = entry(0xa0);
        let text = format!(
            "# comment\n\n{}CLIENT_RANDOM 00 11 22\n   # indented comment\r\n{}",
            a.to_line(),
            b.to_line()
        );
        assert_eq!(parse(&text).unwrap(), vec![a.clone(), b.clone()]);
        let line = a.to_string();
        assert!(line.starts_with("SV2_NOISE_NX 010003"), "{line}");
        assert_eq!(line.split(' ').count(), 5);
        assert_eq!(line.len(), 12 + 1 + 128 + 3 * (1 + 64));
        assert_eq!(
            find(&[a.clone(), b.clone()], &b.initiator_ephemeral),
            Some(&b)
        );
        let mut act1 = a.initiator_ephemeral.clone();
        act1.extend_from_slice(&[0; 10]);
        assert_eq!(find(&[b.clone(), a.clone()], &act1), Some(&a));
        assert_eq!(find(&[b], &act1[1..]), None);
    }

    #[test]
    fn uppercase_tabs_crlf_and_extra_fields_are_accepted() {
        let a = entry(7);
        let line = a.to_string().to_uppercase();
        let line = line.replace(' ', "\t") + " extra-field\r";
        assert_eq!(KeyLogEntry::parse_line(&line).unwrap(), Some(a));
    }

    #[test]
    fn malformed_lines_name_their_line() {
        let good = entry(3).to_line();
        let bad = format!("{good}SV2_NOISE_NX 00 11\n");
        let e = parse(&bad).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.reason.contains("handshake_hash"), "{e}");
        for line in [
            "SV2_NOISE_NX",
            "SV2_NOISE_NX zz 00 00 00",
            &format!(
                "SV2_NOISE_NX {} {} {} {}",
                "00".repeat(65),
                "00".repeat(32),
                "00".repeat(32),
                "00".repeat(32)
            ),
            &format!(
                "SV2_NOISE_NX 00 {} {} {}",
                "00".repeat(31),
                "00".repeat(32),
                "00".repeat(32)
            ),
            &format!("SV2_NOISE_NX 00 {} {}", "00".repeat(32), "00".repeat(32)),
        ] {
            assert!(KeyLogEntry::parse_line(line).is_err(), "{line}");
        }
        let (entries, errors) = parse_lenient(&format!("{bad}{good}"));
        assert_eq!(entries.len(), 2);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 2);
    }

    #[test]
    fn unknown_labels_and_comments_are_skipped() {
        for line in [
            "",
            "   ",
            "# SV2_NOISE_NX zz",
            "CLIENT_RANDOM aa bb",
            "SV2_NOISE_NXX 00",
        ] {
            assert_eq!(KeyLogEntry::parse_line(line), Ok(None), "{line}");
        }
    }
}
