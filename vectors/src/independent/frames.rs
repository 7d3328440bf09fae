//! The plain frame header (spec §3.2: extension_type U16 LE with channel_msg in bit 15, msg_type
//! U8, msg_length U24 LE) and the message table of spec §8 (CATALOG D: which (extension_type,
//! msg_type) names which message, and its channel_msg bit). Only the header is judged here; the
//! payload's fields are not (they are confirmed by SRI's codec in interop/tests/vectors.rs).

use serde_json::json;

use super::{eq, unhex, Check};
use crate::model::{FrameTest, Outcome, TypeTest};

/// (extension_type, msg_type, channel_msg, name), from the spec's tables.
const MESSAGES: &[(u16, u8, bool, &str)] = &[
    // Common (§3.6)
    (0, 0x00, false, "SetupConnection"),
    (0, 0x01, false, "SetupConnection.Success"),
    (0, 0x02, false, "SetupConnection.Error"),
    (0, 0x03, true, "ChannelEndpointChanged"),
    (0, 0x04, false, "Reconnect"),
    // Mining (§5.3); 0x1e is reserved
    (0, 0x10, false, "OpenStandardMiningChannel"),
    (0, 0x11, false, "OpenStandardMiningChannel.Success"),
    (0, 0x12, false, "OpenMiningChannel.Error"),
    (0, 0x13, false, "OpenExtendedMiningChannel"),
    (0, 0x14, false, "OpenExtendedMiningChannel.Success"),
    (0, 0x15, true, "NewMiningJob"),
    (0, 0x16, true, "UpdateChannel"),
    (0, 0x17, true, "UpdateChannel.Error"),
    (0, 0x18, true, "CloseChannel"),
    (0, 0x19, true, "SetExtranoncePrefix"),
    (0, 0x1a, true, "SubmitSharesStandard"),
    (0, 0x1b, true, "SubmitSharesExtended"),
    (0, 0x1c, true, "SubmitShares.Success"),
    (0, 0x1d, true, "SubmitShares.Error"),
    (0, 0x1f, true, "NewExtendedMiningJob"),
    (0, 0x20, true, "SetNewPrevHash"),
    (0, 0x21, true, "SetTarget"),
    (0, 0x22, true, "SetCustomMiningJob"),
    (0, 0x23, true, "SetCustomMiningJob.Success"),
    (0, 0x24, true, "SetCustomMiningJob.Error"),
    (0, 0x25, false, "SetGroupChannel"),
    // Job Declaration (§6.4)
    (0, 0x50, false, "AllocateMiningJobToken"),
    (0, 0x51, false, "AllocateMiningJobToken.Success"),
    (0, 0x55, false, "ProvideMissingTransactions"),
    (0, 0x56, false, "ProvideMissingTransactions.Success"),
    (0, 0x57, false, "DeclareMiningJob"),
    (0, 0x58, false, "DeclareMiningJob.Success"),
    (0, 0x59, false, "DeclareMiningJob.Error"),
    (0, 0x60, false, "PushSolution"),
    // Template Distribution (§7)
    (0, 0x70, false, "CoinbaseOutputConstraints"),
    (0, 0x71, false, "NewTemplate"),
    (0, 0x72, false, "SetNewPrevHash"),
    (0, 0x73, false, "RequestTransactionData"),
    (0, 0x74, false, "RequestTransactionData.Success"),
    (0, 0x75, false, "RequestTransactionData.Error"),
    (0, 0x76, false, "SubmitSolution"),
    // Extension 0x0001, Extensions Negotiation
    (1, 0x00, false, "RequestExtensions"),
    (1, 0x01, false, "RequestExtensions.Success"),
    (1, 0x02, false, "RequestExtensions.Error"),
];

/// Extensions whose every message is in the table: an unknown msg_type there is an error. A frame
/// of any other extension is not judged by its header.
const KNOWN_EXTENSIONS: &[u16] = &[0, 1];

/// The classes a header alone decides.
const HEADER_CLASSES: &[&str] = &[
    "INCOMPLETE_HEADER",
    "LENGTH_MISMATCH",
    "UNKNOWN_MESSAGE_TYPE",
    "CHANNEL_MSG_BIT",
];

struct Header {
    extension_type: u16,
    channel_msg: bool,
    msg_type: u8,
    msg_length: usize,
}

fn header(bytes: &[u8]) -> Option<Header> {
    let b = bytes.get(..6)?;
    let ext = u16::from_le_bytes([b[0], b[1]]);
    Some(Header {
        extension_type: ext & 0x7fff,
        channel_msg: ext & 0x8000 != 0,
        msg_type: b[2],
        msg_length: usize::from(b[3]) | usize::from(b[4]) << 8 | usize::from(b[5]) << 16,
    })
}

/// The message the header names, and the header's verdict (the first failing rule, in the order
/// header length, msg_length, msg_type, channel_msg), or `Ok` when the payload must decide.
fn judge(bytes: &[u8]) -> (Option<&'static str>, Result<(), &'static str>) {
    let Some(h) = header(bytes) else {
        return (None, Err("INCOMPLETE_HEADER"));
    };
    let entry = MESSAGES
        .iter()
        .find(|(e, t, _, _)| *e == h.extension_type && *t == h.msg_type);
    let name = entry.map(|(_, _, _, n)| *n);
    let verdict = if h.msg_length != bytes.len() - 6 {
        Err("LENGTH_MISMATCH")
    } else {
        match entry {
            None if KNOWN_EXTENSIONS.contains(&h.extension_type) => Err("UNKNOWN_MESSAGE_TYPE"),
            Some((_, _, ch, _)) if *ch != h.channel_msg => Err("CHANNEL_MSG_BIT"),
            _ => Ok(()),
        }
    };
    (name, verdict)
}

pub fn check_frame(t: &FrameTest) -> Check {
    let bytes = unhex("frame", &t.frame)?;
    let (name, verdict) = judge(&bytes);
    eq("message", name, t.message.as_deref())?;
    match verdict {
        Err(class) => {
            if t.result == Outcome::Valid {
                return Err(format!("valid, but its header says {class}"));
            }
            eq("error class", Some(class), t.error.as_deref())
        }
        Ok(()) => match t.error.as_deref() {
            Some(e) if HEADER_CLASSES.contains(&e) => {
                Err(format!("the vector says {e}, but the header is sound"))
            }
            _ => Ok(()),
        },
    }
}

/// A `FRAME_HEADER` type test: exactly 6 bytes decode to the four fields.
pub fn check_header_type(t: &TypeTest) -> Check {
    let bytes = unhex("encoded", &t.encoded)?;
    match header(&bytes) {
        Some(h) if bytes.len() == 6 => {
            if t.result == Outcome::Invalid {
                return Err("invalid, but 6 bytes are a header".into());
            }
            let value = json!({
                "extension_type": h.extension_type,
                "channel_msg": h.channel_msg,
                "msg_type": h.msg_type,
                "msg_length": h.msg_length,
            });
            eq("value", Some(&value), t.value.as_ref())
        }
        _ => {
            let class = if bytes.len() < 6 {
                "TRUNCATED"
            } else {
                "TRAILING_BYTES"
            };
            if t.result == Outcome::Valid {
                return Err(format!("valid, but {} bytes are not a header", bytes.len()));
            }
            eq("error class", Some(class), t.error.as_deref())
        }
    }
}
