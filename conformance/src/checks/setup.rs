//! Connection setup (spec §3.6, CATALOG §F 23-29), and the framing rules (§3.1-3.2, F 4) exercised
//! through SetupConnection.

use sv2_codec::Message;

use crate::active;
use crate::check::Check;
use crate::session::{describe, frame_of, printable, setup_connection, Ctx, Incoming, Session};
use crate::verdict::Outcome;

pub const CHECKS: &[Check] = &[
    active!("setup.reply", "3.6.1", Must, Some(24), "a valid SetupConnection gets SetupConnection.Success or .Error", reply),
    active!("setup.first-message", "3.6.1", Should, Some(23), "a channel opened before SetupConnection is not served", first_message),
    active!("setup.version-unsupported", "3.6.3", Must, Some(25), "SetupConnection with min_version = max_version = 3 gets SetupConnection.Error", version_unsupported),
    active!("setup.version-range", "3.6.2", Should, Some(25), "SetupConnection with versions [1, 2] gets .Success with used_version 2", version_range),
    active!("setup.unsupported-flags", "3.6.3", Must, Some(28), "with every flag set, .Error lists the unsupported flags: the same on each connection, and without them setup succeeds", unsupported_flags),
    active!("setup.unknown-protocol", "3.6.1", Should, Some(29), "SetupConnection for an undefined protocol (3, 0xFF) is refused", unknown_protocol),
    active!("setup.truncated-message", "3.2", Should, Some(4), "a SetupConnection one byte shorter than its fields need is rejected, not answered with .Success", truncated_message),
    active!("setup.trailing-byte", "3.2", May, Some(4), "a SetupConnection with a stray byte after its last field (msg_length too long for the message) is rejected", trailing_byte),
];

/// Sends SetupConnection (as given) on a fresh connection and returns the answer.
async fn answer_to(ctx: &Ctx, label: &str, frame: &[u8]) -> Result<(Session, Incoming), Outcome> {
    let mut s = ctx.connect(label).await?;
    s.send_frame(frame, "SetupConnection").await?;
    let incoming = s.recv().await;
    Ok((s, incoming))
}

async fn reply(ctx: Ctx) -> Outcome {
    let frame = match frame_of(&setup_connection(0, 2, 2, 0)) {
        Ok(f) => f,
        Err(o) => return o,
    };
    let (_s, incoming) = match answer_to(&ctx, "setup", &frame).await {
        Ok(x) => x,
        Err(o) => return o,
    };
    let expected = format!(
        "SetupConnection.Success or .Error within {:?}",
        ctx.target().timeout
    );
    match incoming {
        Incoming::Message(d) => match d.message {
            Message::SetupConnectionSuccess(_) | Message::SetupConnectionError(_) => {
                Outcome::pass(expected, describe(&d.message))
            }
            other => Outcome::fail(expected, describe(&other)),
        },
        other => Outcome::fail(expected, other.describe()),
    }
}

async fn first_message(ctx: Ctx) -> Outcome {
    let mut s = match ctx.connect("channel before setup").await {
        Ok(s) => s,
        Err(o) => return o,
    };
    let open = s.open_standard_message(1);
    if let Err(o) = s.send(&open).await {
        return o;
    }
    let expected = "no OpenStandardMiningChannel.Success (a close, an error or silence)";
    let (messages, end) = s.collect(ctx.target().timeout).await;
    if let Some(m) = messages.iter().find(|m| {
        matches!(
            m,
            Message::OpenStandardMiningChannelSuccess(_)
                | Message::NewMiningJob(_)
                | Message::SetNewPrevHash(_)
        )
    }) {
        return Outcome::fail(expected, format!("served without setup: {}", describe(m)));
    }
    if let Some(unreadable @ Incoming::Unreadable(_)) = &end {
        return Outcome::fail(expected, unreadable.describe());
    }
    let seen: Vec<&str> = messages.iter().map(|m| m.name()).collect();
    Outcome::pass(
        expected,
        format!(
            "{}{}",
            if seen.is_empty() {
                "nothing".to_string()
            } else {
                seen.join(", ")
            },
            end.map(|e| format!(", then {}", e.describe()))
                .unwrap_or_default()
        ),
    )
}

async fn version_unsupported(ctx: Ctx) -> Outcome {
    let frame = match frame_of(&setup_connection(0, 3, 3, 0)) {
        Ok(f) => f,
        Err(o) => return o,
    };
    let (_s, incoming) = match answer_to(&ctx, "version 3", &frame).await {
        Ok(x) => x,
        Err(o) => return o,
    };
    let expected = "SetupConnection.Error (version 3 is not defined)";
    match incoming {
        Incoming::Message(d) => match &d.message {
            Message::SetupConnectionError(e) => Outcome::pass(
                expected,
                format!(
                    "SetupConnection.Error {:?}",
                    printable(e.error_code.as_bytes())
                ),
            ),
            other => Outcome::fail(expected, describe(other)),
        },
        other => Outcome::fail(expected, other.describe()),
    }
}

async fn version_range(ctx: Ctx) -> Outcome {
    let frame = match frame_of(&setup_connection(0, 1, 2, 0)) {
        Ok(f) => f,
        Err(o) => return o,
    };
    let (_s, incoming) = match answer_to(&ctx, "versions 1..2", &frame).await {
        Ok(x) => x,
        Err(o) => return o,
    };
    let expected = "SetupConnection.Success with used_version 2";
    match incoming {
        Incoming::Message(d) => match &d.message {
            Message::SetupConnectionSuccess(s) => Outcome::judge(
                s.used_version == 2,
                expected,
                format!("SetupConnection.Success used_version {}", s.used_version),
            ),
            other => Outcome::fail(expected, describe(other)),
        },
        other => Outcome::fail(expected, other.describe()),
    }
}

/// What a SetupConnection with some flags got: .Success, .Error (its flags), or something
/// else (in words).
enum FlagsAnswer {
    Success,
    Error(u32),
    Other(String),
}

/// SetupConnection with `flags` on a fresh connection; an Err outcome when it cannot be sent.
async fn setup_with_flags(ctx: &Ctx, flags: u32) -> Result<FlagsAnswer, Outcome> {
    let frame = frame_of(&setup_connection(0, 2, 2, flags))?;
    let (_s, incoming) = answer_to(ctx, &format!("flags {flags:#x}"), &frame).await?;
    Ok(match incoming {
        Incoming::Message(d) => match &d.message {
            Message::SetupConnectionSuccess(_) => FlagsAnswer::Success,
            Message::SetupConnectionError(e) => FlagsAnswer::Error(e.flags),
            other => FlagsAnswer::Other(describe(other)),
        },
        other => FlagsAnswer::Other(other.describe()),
    })
}

async fn unsupported_flags(ctx: Ctx) -> Outcome {
    let expected = "SetupConnection.Error listing the unsupported flags, the same twice, and .Success once they are cleared";
    let unsupported = match setup_with_flags(&ctx, u32::MAX).await {
        Err(o) => return o,
        // §3.6.3 calls the .Error "potentially" resulting: nothing obliges a server to refuse
        // flags it does not know, and with no .Error there is no list to judge.
        Ok(FlagsAnswer::Success) => {
            return Outcome::skip(
                "SetupConnection.Success with all 32 flags set (29 of them undefined): no .Error, so no list of unsupported flags to judge",
            )
        }
        // §3.6.3 (03:271): "If flags is 0, the error is a result of some condition aside from
        // unsupported flags": a refusal for another reason, no list to judge.
        Ok(FlagsAnswer::Error(0)) => {
            return Outcome::skip(
                "SetupConnection.Error with flags 0 to all 32 flags set: refused for a reason aside from flags (03:271), so no list of unsupported flags to judge",
            )
        }
        Ok(FlagsAnswer::Error(f)) => f,
        Ok(FlagsAnswer::Other(e)) => {
            return Outcome::fail(expected, format!("with all flags set: {e}"))
        }
    };
    match setup_with_flags(&ctx, u32::MAX).await {
        Err(o) => return o,
        Ok(FlagsAnswer::Error(again)) if again == unsupported => {}
        Ok(FlagsAnswer::Error(again)) => {
            return Outcome::fail(
                expected,
                format!(
                "first .Error flags {unsupported:#010x}, then {again:#010x} on a second connection"
            ),
            )
        }
        Ok(FlagsAnswer::Success) => {
            return Outcome::fail(
                expected,
                format!(
                    "first .Error flags {unsupported:#010x}, then .Success on a second connection"
                ),
            )
        }
        Ok(FlagsAnswer::Other(e)) => {
            return Outcome::fail(expected, format!("second connection: {e}"))
        }
    }
    let remaining = !unsupported;
    match setup_with_flags(&ctx, remaining).await {
        Err(o) => o,
        Ok(FlagsAnswer::Success) => Outcome::pass(
            expected,
            format!(".Error flags {unsupported:#010x} twice; flags {remaining:#010x} then set up"),
        ),
        Ok(FlagsAnswer::Error(0)) => Outcome::error(format!(
            ".Error flags {unsupported:#010x}, then flags {remaining:#010x} refused for a reason aside from flags (.Error flags 0): cannot tell whether the list was complete"
        )),
        Ok(FlagsAnswer::Error(f)) => Outcome::fail(
            expected,
            format!(".Error flags {unsupported:#010x}, yet flags {remaining:#010x} are refused too (.Error flags {f:#010x}): the first list was not complete"),
        ),
        Ok(FlagsAnswer::Other(e)) => {
            Outcome::fail(expected, format!("with flags {remaining:#010x}: {e}"))
        }
    }
}

async fn unknown_protocol(ctx: Ctx) -> Outcome {
    let expected = "SetupConnection.Error or a close for protocols 3 and 0xFF";
    let mut seen = Vec::new();
    for protocol in [3u8, 0xff] {
        let frame = match frame_of(&setup_connection(protocol, 2, 2, 0)) {
            Ok(f) => f,
            Err(o) => return o,
        };
        let (_s, incoming) = match answer_to(&ctx, &format!("protocol {protocol}"), &frame).await {
            Ok(x) => x,
            Err(o) => return o,
        };
        match incoming {
            Incoming::Message(d) if matches!(d.message, Message::SetupConnectionSuccess(_)) => {
                return Outcome::fail(
                    expected,
                    format!("protocol {protocol}: {}", describe(&d.message)),
                )
            }
            // An answer that cannot be read may be a malformed .Success.
            unreadable @ Incoming::Unreadable(_) => {
                return Outcome::fail(
                    expected,
                    format!("protocol {protocol}: {}", unreadable.describe()),
                )
            }
            other => seen.push(format!("protocol {protocol}: {}", other.describe())),
        }
    }
    Outcome::pass(expected, seen.join("; "))
}

/// Sends a hand-made SetupConnection frame and judges: anything but .Success passes.
async fn malformed_setup(ctx: &Ctx, label: &str, frame: Vec<u8>, expected: &str) -> Outcome {
    let (_s, incoming) = match answer_to(ctx, label, &frame).await {
        Ok(x) => x,
        Err(o) => return o,
    };
    match incoming {
        Incoming::Message(d) if matches!(d.message, Message::SetupConnectionSuccess(_)) => {
            Outcome::fail(expected, format!("accepted: {}", describe(&d.message)))
        }
        // An answer that cannot be read may be a malformed .Success: not a refusal.
        unreadable @ Incoming::Unreadable(_) => Outcome::fail(expected, unreadable.describe()),
        other => Outcome::pass(expected, other.describe()),
    }
}

async fn truncated_message(ctx: Ctx) -> Outcome {
    let mut frame = match frame_of(&setup_connection(0, 2, 2, 0)) {
        Ok(f) => f,
        Err(o) => return o,
    };
    // Drop the last byte of device_id and say so in msg_length: the fields need one byte more.
    frame.pop();
    let len = (frame.len() - 6) as u32;
    frame[3..6].copy_from_slice(&len.to_le_bytes()[..3]);
    malformed_setup(
        &ctx,
        "truncated SetupConnection",
        frame,
        "SetupConnection.Error, a close or silence; never .Success",
    )
    .await
}

async fn trailing_byte(ctx: Ctx) -> Outcome {
    let mut frame = match frame_of(&setup_connection(0, 2, 2, 0)) {
        Ok(f) => f,
        Err(o) => return o,
    };
    // One byte more than the fields: not a TLV (those have a 4-byte header), so malformed.
    frame.push(0x00);
    let len = (frame.len() - 6) as u32;
    frame[3..6].copy_from_slice(&len.to_le_bytes()[..3]);
    malformed_setup(
        &ctx,
        "SetupConnection with a trailing byte",
        frame,
        "SetupConnection.Error, a close or silence; never .Success",
    )
    .await
}
