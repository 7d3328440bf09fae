//! Unknown extensions (spec §3.4), Extensions Negotiation (extension 0x0001) and TLV fields (§3.4.3,
//! extension 0x0002); CATALOG §F 7, 11, 12, 32, 33, 38.

use sv2_codec::messages::extensions::RequestExtensions;
use sv2_codec::types::{Seq0_64K, B0_64K};
use sv2_codec::{to_frame_bytes, Message, Tlv};

use super::shares::{answer, answer_window, fill_batch, Answer};
use crate::active;
use crate::check::Check;
use crate::session::{describe, Ctx, Incoming, Session};
use crate::verdict::Outcome;

pub const CHECKS: &[Check] = &[
    active!("ext.unknown-extension-ignored", "3.4.1", Must, Some(7), "a non-channel message of an unknown extension is discarded: no close, and the next request is answered", unknown_extension_ignored),
    active!("ext.request-extensions-answered", "ext1 1.1", Must, Some(32), "a server supporting extension 0x0001 answers RequestExtensions with .Success or .Error echoing request_id", request_extensions_answered),
    active!("ext.unsupported-only-error", "ext1 4.1", Must, Some(33), "RequestExtensions for only unsupported extensions gets .Error listing them", unsupported_only_error),
    active!("ext.ignored-without-support", "3.4.1", Must, Some(38), "a server without extension 0x0001 ignores RequestExtensions and stays connected", ignored_without_support),
    active!("ext.required-enforced", "ext1 4", Must, Some(35), "a server that lists required_extensions in RequestExtensions.Error disconnects a client that goes on without them", required_enforced),
    active!("ext.unnegotiated-tlv-ignored", "ext2 1.3", Should, Some(12), "a TLV of an extension never negotiated, after a valid share, is ignored: the share is judged on its own (the MUST binds servers implementing extension 0x0002; without it the spec only says trailing data can be ignored: SHOULD)", unnegotiated_tlv_ignored),
    active!("ext.tlv-too-long-rejected", "3.4.3", Must, Some(11), "with extension 0x0002 negotiated, a user_identity TLV of 33 bytes makes the share rejected", tlv_too_long_rejected),
];

/// A TLV with any value up to 65535 bytes (beyond what the extension allows, for negative checks).
fn tlv(extension_type: u16, field_type: u8, value: Vec<u8>) -> Tlv<'static> {
    Tlv {
        extension_type,
        field_type,
        value: B0_64K::new(value).unwrap_or_default(),
    }
}

/// RequestExtensions on a set-up connection; the answer (Some) or None after the timeout; Err on a
/// close.
async fn request_extensions(
    s: &mut Session,
    request_id: u16,
    extensions: &[u16],
) -> Result<Option<Message<'static>>, Outcome> {
    let request = RequestExtensions {
        request_id,
        requested_extensions: Seq0_64K::new(extensions.to_vec()).unwrap_or_default(),
    };
    s.send(&request.into()).await?;
    loop {
        match s.recv().await {
            Incoming::Message(d) => match d.message {
                m @ (Message::RequestExtensionsSuccess(_) | Message::RequestExtensionsError(_)) => {
                    return Ok(Some(m))
                }
                _ => continue,
            },
            Incoming::Timeout => return Ok(None),
            other => {
                return Err(Outcome::fail(
                    "an answer, or silence and the connection kept",
                    format!("after RequestExtensions: {}", other.describe()),
                ))
            }
        }
    }
}

async fn unknown_extension_ignored(ctx: Ctx) -> Outcome {
    let mut s = match ctx.setup("unknown extension", 0).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    // Extension 0x4abc (experimental range), message 0x01, channel_msg = 0, a 4-byte payload.
    let frame = [0xbc, 0x4a, 0x01, 0x04, 0x00, 0x00, 0xde, 0xad, 0xbe, 0xef];
    if let Err(o) = s.send_frame(&frame, "unknown extension frame").await {
        return o;
    }
    let expected = "no close; the next OpenStandardMiningChannel is answered";
    match s.still_serves().await {
        Ok(()) => Outcome::pass(expected, "ignored; the next request was answered"),
        Err(e) => Outcome::fail(expected, e),
    }
}

async fn request_extensions_answered(ctx: Ctx) -> Outcome {
    let mut s = match ctx.setup("RequestExtensions", 0).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    let expected = "RequestExtensions.Success or .Error with request_id 0x1234";
    match request_extensions(&mut s, 0x1234, &[0x0002]).await {
        Err(o) => o,
        Ok(None) => Outcome::skip("no answer: the server does not support extension 0x0001 (see ext.ignored-without-support)"),
        Ok(Some(m)) => {
            let id = match &m {
                Message::RequestExtensionsSuccess(x) => x.request_id,
                Message::RequestExtensionsError(x) => x.request_id,
                _ => unreachable!("only answers are returned"),
            };
            Outcome::judge(id == 0x1234, expected, describe(&m))
        }
    }
}

async fn unsupported_only_error(ctx: Ctx) -> Outcome {
    let mut s = match ctx.setup("RequestExtensions 0x4fff", 0).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    let expected = "RequestExtensions.Error with unsupported_extensions [0x4fff]";
    match request_extensions(&mut s, 7, &[0x4fff]).await {
        Err(o) => o,
        Ok(None) => Outcome::skip("no answer: the server does not support extension 0x0001"),
        Ok(Some(Message::RequestExtensionsError(e))) => Outcome::judge(
            e.unsupported_extensions.iter().any(|x| *x == 0x4fff),
            expected,
            describe(&Message::RequestExtensionsError(e.clone())),
        ),
        Ok(Some(m)) => Outcome::fail(expected, describe(&m)),
    }
}

async fn ignored_without_support(ctx: Ctx) -> Outcome {
    let mut s = match ctx.setup("RequestExtensions unanswered", 0).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    let expected = "no answer and no close; the next request is answered";
    match request_extensions(&mut s, 9, &[0x0002]).await {
        Err(o) => o,
        Ok(Some(m)) => Outcome::skip(format!(
            "the server supports extension 0x0001 ({})",
            m.name()
        )),
        Ok(None) => match s.still_serves().await {
            Ok(()) => Outcome::pass(expected, "ignored; the next request was answered"),
            Err(e) => Outcome::fail(expected, e),
        },
    }
}

async fn required_enforced(ctx: Ctx) -> Outcome {
    let mut s = match ctx.setup("required extensions", 0).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    let required: Vec<u16> = match request_extensions(&mut s, 21, &[0x4fff]).await {
        Err(o) => return o,
        Ok(None) => {
            return Outcome::skip("no answer: the server does not support extension 0x0001")
        }
        Ok(Some(Message::RequestExtensionsError(e))) => {
            e.required_extensions.iter().copied().collect()
        }
        Ok(Some(m)) => {
            return Outcome::skip(format!("no required extensions announced ({})", m.name()))
        }
    };
    if required.is_empty() {
        return Outcome::skip(
            "RequestExtensions.Error lists no required extension: the server requires none",
        );
    }
    // Go on without them, as a client that does not retry.
    let expected =
        format!("a close: the client did not request the required extension(s) {required:04x?}");
    let open = s.open_standard_message(1);
    if let Err(o) = s.send(&open).await {
        return o;
    }
    let (messages, end) = s.collect(ctx.target().timeout).await;
    match end {
        Some(end) if end.ended() => Outcome::pass(expected, end.describe()),
        Some(unreadable @ Incoming::Unreadable(_)) => {
            Outcome::fail(expected, unreadable.describe())
        }
        _ => Outcome::fail(
            expected,
            format!(
                "still connected after {:?}; it sent: {}",
                ctx.target().timeout,
                if messages.is_empty() {
                    "nothing".to_string()
                } else {
                    messages
                        .iter()
                        .map(|m| m.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ),
        ),
    }
}

/// Opens an extended channel, mines a valid share and sends it with `tlvs` appended; returns the
/// answer.
/// Mines a valid share on a fresh extended channel, sends it with `tlvs` after its last field, and
/// returns what became of it, in words too. A server that acknowledges in batches (§5.3.13) gets
/// more valid shares (without TLVs) until it answers about this one.
async fn share_with_tlvs(
    ctx: &Ctx,
    s: &mut Session,
    tlvs: &[Tlv<'_>],
) -> Result<(Answer, String), Outcome> {
    let channel = s.open_extended(0).await?;
    let (work, share) = s
        .mine_share(
            channel.channel_id,
            ctx.target().work_window,
            ctx.target().hash_budget,
            |w| w.params(),
            None,
        )
        .await?;
    let seq = s.sequence_number();
    let frame = to_frame_bytes(&work.submit(seq, &share), tlvs)
        .map_err(|e| Outcome::error(format!("encoding: {e}")))?;
    s.tracker.sent(&work.submit(seq, &share));
    s.send_frame(&frame, "SubmitSharesExtended with TLVs")
        .await?;
    let id = channel.channel_id;
    let text = format!("share seq {seq} on channel {id} with {} TLV(s)", tlvs.len());
    Ok(match answer(s, id, seq, answer_window(ctx)).await {
        Answer::Silent => {
            let (got, more) = fill_batch(ctx, s, id, &share, seq).await?;
            let words = format!("{text}, then {more} more valid share(s) to fill a batch: {got:?}");
            (got, words)
        }
        got => {
            let words = format!("{text}: {got:?}");
            (got, words)
        }
    })
}

async fn unnegotiated_tlv_ignored(ctx: Ctx) -> Outcome {
    let mut s = match ctx.setup("share with an unnegotiated TLV", 0).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    let tlv = tlv(0x4001, 0x01, vec![1, 2, 3, 4]);
    let expected = "SubmitShares.Success for a valid share whose TLV is ignored";
    match share_with_tlvs(&ctx, &mut s, &[tlv]).await {
        Err(o) => o,
        Ok((got, words)) => Outcome::judge(got == Answer::Accepted, expected, words),
    }
}

async fn tlv_too_long_rejected(ctx: Ctx) -> Outcome {
    let mut s = match ctx.setup("share with a 33-byte user_identity TLV", 0).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    match request_extensions(&mut s, 11, &[0x0002]).await {
        Err(o) => return o,
        Ok(Some(Message::RequestExtensionsSuccess(ok)))
            if ok.supported_extensions.iter().any(|x| *x == 0x0002) => {}
        Ok(other) => {
            return Outcome::skip(format!(
                "extension 0x0002 not negotiated ({})",
                other.map_or("no answer to RequestExtensions".to_string(), |m| describe(
                    &m
                ))
            ))
        }
    }
    let tlv = tlv(0x0002, 0x01, vec![b'x'; 33]);
    let expected = "SubmitShares.Error or a close; never .Success";
    match share_with_tlvs(&ctx, &mut s, &[tlv]).await {
        Err(o) => o,
        // A frame that cannot be read may have been a malformed .Success: not a refusal.
        Ok((got, words)) => Outcome::judge(
            !matches!(got, Answer::Accepted | Answer::Unreadable(_)),
            expected,
            words,
        ),
    }
}
