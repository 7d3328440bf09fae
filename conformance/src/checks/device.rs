//! Checks of a mining client (`--role device`): the suite listens, plays the pool, and the client
//! under test connects: firmware, a CPU miner, or the upstream side of a proxy or translator.
//!
//! Each check serves the client with the mock pool's core ([`crate::serve::Served`]: real jobs,
//! prev hashes, share judging by the spec's rules) and departs from it in the one way the check is
//! about: a certificate to refuse, a frame to survive, a job to switch to. A client that never gets
//! as far as the check needs (no connection, no channel, no share) gives an error naming what was
//! missing, never a pass: its silence proves nothing.

use std::time::Duration;

use sv2_codec::messages::common::{Reconnect, SetupConnectionError};
use sv2_codec::messages::mining::{CloseChannel, OpenMiningChannelError, SubmitSharesError};
use sv2_codec::Message;
use sv2_mock::pool::{Output, ShareError};
use sv2_wire::WireShape;
use tokio::net::TcpListener;

use crate::check::Check;
use crate::serve;
use crate::serve::served::{pool_config, refusals, Opened, ShareVerdict, Until};
use crate::serve::{AfterAct2, BrokenAct2, Certificate, ServeCtx, Served};
use crate::session::{describe, frame_of, str255, Incoming};
use crate::verdict::Outcome;

#[rustfmt::skip]
pub const CHECKS: &[Check] = &[
    serve!("device.noise.wrong-authority", "4.5.3", Must, Some(16), "a certificate signed by another authority is refused: no encrypted frame follows it", wrong_authority),
    serve!("device.noise.expired", "4.5.3", Must, Some(16), "an expired certificate is refused: no encrypted frame follows it", expired),
    serve!("device.noise.not-yet-valid", "4.5.3", Must, None, "a certificate whose validity has not begun is refused: no encrypted frame follows it", not_yet_valid),
    serve!("device.noise.act2-mac", "4.5", Must, Some(17), "an act 2 whose encrypted static key fails its MAC ends the handshake: no encrypted frame follows it", act2_mac),
    serve!("device.noise.frame-mac", "4.5", Must, Some(17), "a transport frame that fails its MAC terminates the session", frame_mac),
    serve!("device.noise.act2-length", "4.5.2", Should, None, "the first 170 bytes of an act 2 (the length the spec text still gives) are not taken for a whole one: nothing follows them", act2_length),
    serve!("device.setup.versions", "3.6.1", Must, None, "SetupConnection asks for protocol version 2: min_version and max_version are 2", setup_versions),
    serve!("device.setup.error", "3.6.3", Should, None, "after SetupConnection.Error the client opens no channel on that connection", setup_error),
    serve!("device.mining.waits-for-work", "5.3.17", Should, None, "no share before a job and the SetNewPrevHash that activates it", waits_for_work),
    serve!("device.shares.accepted", "5.3.21", Should, None, "every share meets its channel's target and names a live job, with a valid ntime and version: a pool judging by the spec accepts them all", shares_accepted),
    serve!("device.shares.extranonce-size", "5.3.12", Must, None, "SubmitSharesExtended.extranonce is as long as the channel's negotiated extranonce_size", extranonce_size),
    serve!("device.shares.version-not-rolled", "5.3.16", Must, Some(68), "with version rolling not allowed (REQUIRES_FIXED_VERSION), shares carry the job's version unchanged", version_not_rolled),
    serve!("device.shares.set-target", "5.3.21", Should, None, "after SetTarget, shares on jobs that came after it meet the new target", set_target),
    serve!("device.shares.new-prev-hash", "5.3.17", Must, Some(66), "after SetNewPrevHash, no share on an older job (1 s allowed for shares in flight)", new_prev_hash),
    serve!("device.shares.new-job", "5.3.15", Must, Some(65), "a job with min_ntime set is mined at once: shares on it from 1 s after it came", new_job),
    serve!("device.shares.extranonce-prefix", "5.3.10", Should, None, "after SetExtranoncePrefix, shares on the job sent after it use the new prefix: the pool accepts them", extranonce_prefix),
    serve!("device.robust.unknown-extension", "3.4", Must, Some(7), "a message of an unknown extension (channel_msg 0) is ignored: the session and the shares go on", unknown_extension),
    serve!("device.robust.unknown-message", "3.4", Should, None, "a Mining message type no spec section defines (0x7e) is ignored: the session and the shares go on", unknown_message),
    serve!("device.robust.chunked-frame", "4.6", Must, Some(20), "a 70,000-byte frame (two AEAD blocks) of an unknown extension is read whole and ignored", chunked_frame),
    serve!("device.robust.option-prefix", "3.1", Should, Some(3), "a job whose min_ntime OPTION prefix is 2 (an OPTION holds at most one value) is not acted on", option_prefix),
    serve!("device.robust.bool-high-bits", "3.1", Must, Some(1), "a BOOL is read by its low bit: version_rolling_allowed sent as 0xFE is False", bool_high_bits),
    serve!("device.robust.share-error-code", "3.5", Must, Some(31), "a SubmitShares.Error with an unknown error_code is a logging no-op: mining goes on", share_error_code),
    serve!("device.robust.open-error-code", "3.5", Must, Some(31), "an OpenMiningChannel.Error with an unknown error_code does not crash the client", open_error_code),
    serve!("device.mining.close-channel", "5.3.9", Should, None, "after the pool's CloseChannel, no share on that channel (1 s allowed for shares in flight)", close_channel),
    serve!("device.reconnect.follows", "3.6.5", Must, Some(21), "Reconnect to another port: the client connects there, runs the handshake and sets up again", reconnect_follows),
    serve!("device.reconnect.wrong-authority", "3.6.5", Must, Some(21), "Reconnect to an endpoint whose certificate another authority signed: the client refuses it", reconnect_wrong_authority),
];

/// How long a share may be in flight after the message that makes it wrong.
const IN_FLIGHT: Duration = Duration::from_secs(1);

/// An unknown extension's type (no extension has it) for the robustness frames.
const UNKNOWN_EXTENSION: u16 = 0x4abc;

/// A msg_type no message of the core protocols has.
const UNDEFINED_MSG_TYPE: u8 = 0x7e;

// ---------------------------------------------------------------------------------------------
// Noise

async fn wrong_authority(ctx: ServeCtx) -> Outcome {
    refuses_certificate(
        ctx,
        Certificate::OtherAuthority,
        "signed by another authority",
    )
    .await
}

async fn expired(ctx: ServeCtx) -> Outcome {
    refuses_certificate(ctx, Certificate::Expired, "that expired an hour ago").await
}

async fn not_yet_valid(ctx: ServeCtx) -> Outcome {
    refuses_certificate(
        ctx,
        Certificate::NotYetValid,
        "valid only from an hour from now",
    )
    .await
}

fn noise_only(ctx: &ServeCtx) -> Option<Outcome> {
    ctx.config()
        .plaintext
        .then(|| Outcome::skip("the client connects in plaintext: there is no handshake"))
}

async fn refuses_certificate(ctx: ServeCtx, certificate: Certificate, what: &str) -> Outcome {
    if let Some(skip) = noise_only(&ctx) {
        return skip;
    }
    let expected = format!(
        "after a certificate {what}, the client closes the connection, sending no encrypted frame"
    );
    let mut s = match ctx.accept_with("a bad certificate", certificate).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    let first = s.recv().await;
    match &first {
        Incoming::Message(d) => {
            return Outcome::fail(
                expected,
                format!("it sent {} under that certificate", describe(&d.message)),
            )
        }
        Incoming::Unreadable(e) => {
            return Outcome::fail(
                expected,
                format!("it sent an encrypted frame under that certificate ({e})"),
            )
        }
        Incoming::Timeout => {
            // Silence is not a refusal: a client that took the certificate may be slow to speak.
            return Outcome::error(format!(
                "after a certificate {what}, the client neither closed the connection nor sent \
                 anything within {:?}: a refusal cannot be told from a wait",
                s.timeout
            ));
        }
        Incoming::Closed | Incoming::Broken(_) => {}
    }
    drop(s);
    if let Err(o) = control(&ctx).await {
        return o;
    }
    Outcome::pass(
        expected,
        format!(
            "{}; with a valid certificate it then sent SetupConnection",
            first.describe()
        ),
    )
}

/// With a valid certificate, the client goes on to SetupConnection (else its refusal of a bad one
/// says nothing).
async fn control(ctx: &ServeCtx) -> Result<(), Outcome> {
    ctx.restart().await?;
    let mut s = ctx
        .accept("control: a valid certificate")
        .await
        .map_err(|o| Outcome::error(format!("control with a valid certificate: {}", o.observed)))?;
    match s.recv().await {
        Incoming::Message(d) if matches!(d.message, Message::SetupConnection(_)) => Ok(()),
        other => Err(Outcome::error(format!(
            "with a valid certificate the client did not send SetupConnection either ({}), so \
             its refusal says nothing about the certificate",
            other.describe()
        ))),
    }
}

async fn act2_mac(ctx: ServeCtx) -> Outcome {
    // A bit of the encrypted static key (bytes 64..144 of act 2); bytes after it, or a session
    // kept open, fail: "the session must be terminated".
    refuses_act2(
        &ctx,
        "act 2 with a broken MAC",
        BrokenAct2::FlipBit((64 + 10) * 8 + 3),
        "after an act 2 whose encrypted static key fails its MAC, the client closes the connection",
        |after| *after == AfterAct2::Closed,
    )
    .await
}

async fn act2_length(ctx: ServeCtx) -> Outcome {
    // Waiting for the rest is right: only bytes sent after 170 fail.
    refuses_act2(
        &ctx,
        "the first 170 bytes of act 2",
        BrokenAct2::Truncated(170),
        "after 170 bytes of act 2 and nothing more, the client sends nothing: it waits for the \
         234 (or gives up and closes)",
        |after| !matches!(after, AfterAct2::Sent(_)),
    )
    .await
}

/// Presents an act 2 broken as `broken`; the client's reaction must satisfy `refused`, and then,
/// given a whole and valid act 2, it must send SetupConnection (else its refusal says nothing).
async fn refuses_act2(
    ctx: &ServeCtx,
    label: &str,
    broken: BrokenAct2,
    expected: &str,
    refused: impl Fn(&AfterAct2) -> bool,
) -> Outcome {
    if let Some(skip) = noise_only(ctx) {
        return skip;
    }
    let after = match ctx.broken_act2(label, broken).await {
        Ok(after) => after,
        Err(o) => return o,
    };
    if !refused(&after) {
        return Outcome::fail(expected, after.describe());
    }
    if let Err(o) = control(ctx).await {
        return o;
    }
    Outcome::pass(
        expected,
        format!(
            "{}; with a valid act 2 it then sent SetupConnection",
            after.describe()
        ),
    )
}

async fn frame_mac(ctx: ServeCtx) -> Outcome {
    if let Some(skip) = noise_only(&ctx) {
        return skip;
    }
    let mut s = match ctx.accept("a frame with a broken MAC").await {
        Ok(s) => s,
        Err(o) => return o,
    };
    if let Err(o) = s.setup().await {
        return o;
    }
    let frame = unknown_frame(UNKNOWN_EXTENSION, 0x01, 16);
    let shape = WireShape {
        flip_last_byte: true,
        ..Default::default()
    };
    if let Err(o) = s
        .send_frame(&frame, "a frame failing its MAC", &shape)
        .await
    {
        return o;
    }
    let expected = "the client terminates the session after a frame that fails its MAC";
    let timeout = s.timeout;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut after = 0;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match s.recv_within(left).await {
            Incoming::Closed | Incoming::Broken(_) => {
                return Outcome::pass(
                    expected,
                    format!("it closed the connection ({after} frames came before the close)"),
                )
            }
            Incoming::Timeout => {
                return Outcome::fail(
                    expected,
                    format!(
                        "the connection was still open {timeout:?} later ({after} frames came \
                         after the broken one)"
                    ),
                )
            }
            _ => after += 1,
        }
    }
}

/// A frame of extension `extension` (its channel_msg bit as given), `len` bytes of payload.
fn unknown_frame(extension: u16, msg_type: u8, len: usize) -> Vec<u8> {
    let mut frame = Vec::with_capacity(6 + len);
    frame.extend_from_slice(&extension.to_le_bytes());
    frame.push(msg_type);
    frame.extend_from_slice(&(len as u32).to_le_bytes()[..3]);
    frame.extend((0..len).map(|i| (i % 251) as u8));
    frame
}

// ---------------------------------------------------------------------------------------------
// Setup

async fn setup_versions(ctx: ServeCtx) -> Outcome {
    let mut s = match ctx.accept("setup").await {
        Ok(s) => s,
        Err(o) => return o,
    };
    let setup = match s.setup().await {
        Ok(setup) => setup,
        Err(o) => return o,
    };
    Outcome::judge(
        setup.min_version == 2 && setup.max_version == 2,
        "min_version = max_version = 2",
        format!(
            "min_version {}, max_version {}",
            setup.min_version, setup.max_version
        ),
    )
}

async fn setup_error(ctx: ServeCtx) -> Outcome {
    let mut s = match ctx.accept("SetupConnection refused").await {
        Ok(s) => s,
        Err(o) => return o,
    };
    if let Err(o) = s.read_setup().await {
        return o;
    }
    // What the client sent right behind SetupConnection, before it could read an answer (a
    // pipelining client's channel request), is not judged.
    let mut early = 0;
    while let Incoming::Message(_) | Incoming::Unreadable(_) =
        s.recv_within(Duration::from_millis(200)).await
    {
        early += 1;
    }
    // Flags 0: refused "for another reason" (§3.6.3); kept open, to see what the client does.
    let refusal = SetupConnectionError {
        flags: 0,
        error_code: str255("sv2-conformance-setup-refused"),
    };
    if let Err(o) = s.send(&Message::SetupConnectionError(refusal)).await {
        return o;
    }
    s.note("SetupConnection.Error sent; the connection kept open");
    let since = s.elapsed();
    let wait = ctx.config().timeout;
    let deadline = tokio::time::Instant::now() + wait;
    let mut opened = Vec::new();
    let ended = loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            break None;
        }
        match s.recv_within(left).await {
            Incoming::Message(d) => {
                if matches!(
                    d.message,
                    Message::OpenStandardMiningChannel(_) | Message::OpenExtendedMiningChannel(_)
                ) {
                    opened.push(describe(&d.message));
                }
            }
            Incoming::Unreadable(_) | Incoming::Timeout => {}
            other => break Some(other.describe()),
        }
    };
    let expected =
        format!("no Open*MiningChannel on the connection within {wait:?} of the refusal");
    if !opened.is_empty() {
        return Outcome::fail(expected, format!("it sent {}", opened.join("; ")));
    }
    if s.unreadable_since(since) {
        return Outcome::error(
            "after the refusal the client sent frames that could not be read: a channel request \
             among them cannot be ruled out",
        );
    }
    let before = if early > 0 {
        format!(" ({early} frame(s) it sent before it could read the answer not judged)")
    } else {
        String::new()
    };
    Outcome::pass(
        expected,
        ended.map_or_else(
            || format!("no channel request; the connection stayed open{before}"),
            |how| format!("no channel request; then {how}{before}"),
        ),
    )
}

// ---------------------------------------------------------------------------------------------
// Mining

/// A connection set up with a channel open.
async fn mining(ctx: &ServeCtx, label: &str) -> Result<(Served, Opened), Outcome> {
    let mut s = ctx.accept(label).await?;
    let opened = s.open_channel().await?;
    Ok((s, opened))
}

/// [`mining`], then served until a share was accepted: the client mines here.
async fn mined(ctx: &ServeCtx, label: &str) -> Result<(Served, Opened), Outcome> {
    let (mut s, opened) = mining(ctx, label).await?;
    first_share(ctx, &mut s).await?;
    Ok((s, opened))
}

/// Serves until a share was accepted: the client mines here.
async fn first_share(ctx: &ServeCtx, s: &mut Served) -> Result<(), Outcome> {
    let window = ctx.config().work_window;
    let (until, verdicts) = s.serve_shares(1, window).await?;
    if verdicts.iter().any(|v| v.error.is_none()) {
        return Ok(());
    }
    Err(Outcome::error(match until {
        Until::Ended(how) => format!("the connection ended before a share was accepted: {how}"),
        _ if verdicts.is_empty() => {
            format!("the client submitted no share within {window:?} of opening its channel")
        }
        _ => format!("its first shares were refused: {}", refusals(&verdicts)),
    }))
}

/// Serves for `within`, the verdicts that came.
async fn watch(s: &mut Served, within: Duration) -> Result<(Until, Vec<ShareVerdict>), Outcome> {
    s.serve_shares(usize::MAX, within).await
}

async fn waits_for_work(ctx: ServeCtx) -> Outcome {
    let mut s = match ctx.accept("work held back").await {
        Ok(s) => s,
        Err(o) => return o,
    };
    if let Err(o) = s.setup().await {
        return o;
    }
    let hold = ctx.config().timeout.min(Duration::from_secs(3));
    let expected = "no SubmitShares before a job and its SetNewPrevHash";
    // Until the channel opens, serve; then answer only .Success and hold the work back.
    let mut held: Vec<Output> = Vec::new();
    let deadline = tokio::time::Instant::now() + ctx.config().timeout;
    while s.opened.is_empty() {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match s.recv_within(left).await {
            Incoming::Message(d) => {
                let outputs = s.to_pool(&d.message);
                let (now, later): (Vec<Output>, Vec<Output>) =
                    outputs.into_iter().partition(|o| !is_work(o));
                held.extend(later);
                if let Err(o) = s.deliver(now).await {
                    return o;
                }
            }
            Incoming::Unreadable(_) => {}
            other => return Outcome::error(format!("no channel was opened: {}", other.describe())),
        }
    }
    s.note(format!(
        "the suite holds the channel's work back for {hold:?}"
    ));
    let until = tokio::time::Instant::now() + hold;
    loop {
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            break;
        }
        match s.recv_within(left).await {
            Incoming::Message(d) => {
                if matches!(
                    d.message,
                    Message::SubmitSharesStandard(_) | Message::SubmitSharesExtended(_)
                ) {
                    return Outcome::fail(
                        expected,
                        format!(
                            "{} came before any job or prev hash was sent",
                            describe(&d.message)
                        ),
                    );
                }
                let outputs = s.to_pool(&d.message);
                held.extend(outputs);
            }
            Incoming::Unreadable(e) => {
                return Outcome::error(format!(
                    "while the work was held back the client sent a frame that could not be read \
                     ({e}): a share among them cannot be ruled out"
                ))
            }
            Incoming::Timeout => {}
            other => {
                return Outcome::error(format!(
                    "the connection ended while the work was held back: {}",
                    other.describe()
                ))
            }
        }
    }
    if let Err(o) = s.deliver(held).await {
        return o;
    }
    match first_share(&ctx, &mut s).await {
        Ok(()) => Outcome::pass(
            expected,
            format!("nothing in the {hold:?} without work; shares once the work came"),
        ),
        Err(o) => Outcome::error(format!(
            "no share came without work, but none with it either: {}",
            o.observed
        )),
    }
}

/// A job or prev hash (what a client mines on).
fn is_work(output: &Output) -> bool {
    matches!(
        output,
        Output::Send { message, .. } if matches!(
            message,
            Message::NewMiningJob(_) | Message::NewExtendedMiningJob(_) | Message::SetNewPrevHash(_)
                | Message::SetTarget(_) | Message::SetGroupChannel(_)
        )
    )
}

async fn shares_accepted(ctx: ServeCtx) -> Outcome {
    let (mut s, _) = match mining(&ctx, "mining").await {
        Ok(m) => m,
        Err(o) => return o,
    };
    let window = ctx.config().work_window;
    let (until, verdicts) = match s.serve_shares(20, window).await {
        Ok(v) => v,
        Err(o) => return o,
    };
    let expected = "every share accepted by a pool judging by the spec's rules";
    if verdicts.is_empty() {
        return Outcome::error(format!(
            "the client submitted no share within {window:?} ({until:?})"
        ));
    }
    let refused = verdicts.iter().filter(|v| v.error.is_some()).count();
    Outcome::judge(
        refused == 0,
        expected,
        if refused == 0 {
            format!("{} shares, all accepted", verdicts.len())
        } else {
            format!(
                "{refused} of {} shares refused: {}",
                verdicts.len(),
                refusals(&verdicts)
            )
        },
    )
}

async fn extranonce_size(ctx: ServeCtx) -> Outcome {
    let (mut s, opened) = match mining(&ctx, "mining").await {
        Ok(m) => m,
        Err(o) => return o,
    };
    if !opened.extended {
        return Outcome::skip(
            "the client opened a standard channel: its shares carry no extranonce",
        );
    }
    let (_, verdicts) = match s.serve_shares(10, ctx.config().work_window).await {
        Ok(v) => v,
        Err(o) => return o,
    };
    if verdicts.is_empty() {
        return Outcome::error("the client submitted no share on its extended channel");
    }
    let wrong: Vec<ShareVerdict> = verdicts
        .iter()
        .filter(|v| matches!(v.error, Some(ShareError::BadExtranonceSize { .. })))
        .cloned()
        .collect();
    Outcome::judge(
        wrong.is_empty(),
        "every extranonce as long as the channel's extranonce_size",
        if wrong.is_empty() {
            format!("{} shares, each with the negotiated size", verdicts.len())
        } else {
            refusals(&wrong)
        },
    )
}

async fn version_not_rolled(ctx: ServeCtx) -> Outcome {
    let mut config = pool_config();
    config.fixed_version = true;
    let mut s = match ctx.accept_configured("a fixed-version pool", config).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    let setup = match s.read_setup().await {
        Ok(setup) => setup,
        Err(o) => return o,
    };
    if setup.flags & sv2_codec::messages::flags::REQUIRES_VERSION_ROLLING != 0 {
        return Outcome::skip(
            "the client requires version rolling (REQUIRES_VERSION_ROLLING): a pool that fixes \
             the version refuses it, so the rule cannot be exercised",
        );
    }
    if let Err(o) = s.answer_setup(setup).await {
        return o;
    }
    if let Err(o) = s.open_channel().await {
        return o;
    }
    let (_, verdicts) = match s.serve_shares(10, ctx.config().work_window).await {
        Ok(v) => v,
        Err(o) => return o,
    };
    if verdicts.is_empty() {
        return Outcome::error("the client submitted no share");
    }
    let rolled: Vec<ShareVerdict> = verdicts
        .iter()
        .filter(|v| {
            matches!(
                v.error,
                Some(ShareError::VersionRollingNotAllowed { .. })
                    | Some(ShareError::InvalidNonRollableVersionBit { .. })
            )
        })
        .cloned()
        .collect();
    Outcome::judge(
        rolled.is_empty(),
        "every share with the job's version (SetupConnection.Success REQUIRES_FIXED_VERSION, jobs \
         with version_rolling_allowed False)",
        if rolled.is_empty() {
            format!("{} shares, none rolled the version", verdicts.len())
        } else {
            refusals(&rolled)
        },
    )
}

async fn set_target(ctx: ServeCtx) -> Outcome {
    let (mut s, opened) = match mined(&ctx, "a harder target").await {
        Ok(m) => m,
        Err(o) => return o,
    };
    // A target 16 times harder, then a new block: its job comes after the SetTarget, so the new
    // target applies to it (§5.3.21: not to jobs already received with min_ntime set).
    let harder = harder_by_16(opened.target);
    let set = Message::SetTarget(sv2_codec::messages::mining::SetTarget {
        channel_id: opened.channel_id,
        maximum_target: sv2_codec::types::U256(harder),
    });
    if let Err(o) = s.send(&set).await {
        return o;
    }
    s.note(format!(
        "the suite sets the target 16 times harder: {}",
        hex::encode(harder)
    ));
    let outputs = s.pool.new_block(sv2_wire::unix_now());
    let fresh = activated_jobs(&outputs);
    let sent_at = s.elapsed();
    if let Err(o) = s.deliver(outputs).await {
        return o;
    }
    let (_, verdicts) = match watch(&mut s, IN_FLIGHT + ctx.config().work_window).await {
        Ok(v) => v,
        Err(o) => return o,
    };
    let on_new: Vec<&ShareVerdict> = verdicts
        .iter()
        .filter(|v| fresh.contains(&v.job_id) && v.at >= sent_at)
        .collect();
    if on_new.is_empty() {
        return Outcome::error(format!(
            "no share on the job after SetTarget (job {fresh:?}) within {:?}",
            IN_FLIGHT + ctx.config().work_window
        ));
    }
    let above: Vec<String> = on_new
        .iter()
        .filter(|v| {
            v.hash
                .is_some_and(|h| !sv2_chain::target::meets_target(&h, &harder))
        })
        .take(5)
        .map(|v| {
            format!(
                "share {} (hash {})",
                v.sequence_number,
                v.hash.map(hex::encode).unwrap_or_default()
            )
        })
        .collect();
    Outcome::judge(
        above.is_empty(),
        "every share on the job after SetTarget meets the new target",
        if above.is_empty() {
            format!(
                "{} shares on job {fresh:?}, all within the new target",
                on_new.len()
            )
        } else {
            format!("above the new target: {}", above.join("; "))
        },
    )
}

/// `target` (little-endian) divided by 16: 16 times harder.
fn harder_by_16(target: [u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for i in 0..32 {
        let high = target.get(i + 1).copied().unwrap_or(0);
        out[i] = (target[i] >> 4) | (high << 4);
    }
    out
}

/// Takes the first job with min_ntime set (an extended one when `extended`) out of `outputs`: the
/// job, its id and its version.
fn take_active_job(
    outputs: &mut Vec<Output>,
    extended: bool,
) -> Option<(Message<'static>, u32, u32)> {
    let index = outputs.iter().position(|o| match o {
        Output::Send {
            message: Message::NewMiningJob(j),
            ..
        } => !extended && j.min_ntime.is_some(),
        Output::Send {
            message: Message::NewExtendedMiningJob(j),
            ..
        } => j.min_ntime.is_some(),
        _ => false,
    })?;
    let Output::Send { message, .. } = outputs.remove(index) else {
        return None;
    };
    let (job_id, version) = match &message {
        Message::NewMiningJob(j) => (j.job_id, j.version),
        Message::NewExtendedMiningJob(j) => (j.job_id, j.version),
        _ => return None,
    };
    Some((message, job_id, version))
}

/// The ids of the jobs with min_ntime set among `outputs` (immediately active jobs).
fn active_jobs(outputs: &[Output]) -> Vec<u32> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send {
                message: Message::NewMiningJob(j),
                ..
            } if j.min_ntime.is_some() => Some(j.job_id),
            Output::Send {
                message: Message::NewExtendedMiningJob(j),
                ..
            } if j.min_ntime.is_some() => Some(j.job_id),
            _ => None,
        })
        .collect()
}

/// The ids of the jobs a SetNewPrevHash among `outputs` activates.
fn activated_jobs(outputs: &[Output]) -> Vec<u32> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send {
                message: Message::SetNewPrevHash(p),
                ..
            } => Some(p.job_id),
            _ => None,
        })
        .collect()
}

async fn new_prev_hash(ctx: ServeCtx) -> Outcome {
    let (mut s, _) = match mined(&ctx, "mining across a new block").await {
        Ok(m) => m,
        Err(o) => return o,
    };
    let outputs = s.pool.new_block(sv2_wire::unix_now());
    let fresh = activated_jobs(&outputs);
    let sent_at = s.elapsed();
    s.note("the suite sends a new block's future job and SetNewPrevHash");
    if let Err(o) = s.deliver(outputs).await {
        return o;
    }
    judge_switch(
        &ctx,
        &mut s,
        sent_at,
        &fresh,
        "the new prev hash's job",
        Switch::Only,
    )
    .await
}

async fn new_job(ctx: ServeCtx) -> Outcome {
    let (mut s, _) = match mined(&ctx, "mining across a new job").await {
        Ok(m) => m,
        Err(o) => return o,
    };
    let outputs = s.pool.update_template(sv2_wire::unix_now());
    let fresh = active_jobs(&outputs);
    if fresh.is_empty() {
        return Outcome::error("the suite's pool made no job with min_ntime set");
    }
    let sent_at = s.elapsed();
    s.note("the suite sends a job with min_ntime set");
    if let Err(o) = s.deliver(outputs).await {
        return o;
    }
    judge_switch(
        &ctx,
        &mut s,
        sent_at,
        &fresh,
        "the job with min_ntime",
        Switch::Mined,
    )
    .await
}

async fn extranonce_prefix(ctx: ServeCtx) -> Outcome {
    let (mut s, opened) = match mined(&ctx, "a new extranonce prefix").await {
        Ok(m) => m,
        Err(o) => return o,
    };
    if !opened.extended {
        return Outcome::skip(
            "the client opened a standard channel: the pool's jobs carry the prefix in their \
             merkle root, so the client has nothing to follow",
        );
    }
    let outputs = s
        .pool
        .set_extranonce_prefix(s.session, opened.channel_id, sv2_wire::unix_now());
    let fresh = active_jobs(&outputs);
    if fresh.is_empty() {
        return Outcome::error("the suite's pool could not give the channel a new prefix and job");
    }
    let sent_at = s.elapsed();
    s.note("the suite sends SetExtranoncePrefix, then a job with min_ntime set");
    if let Err(o) = s.deliver(outputs).await {
        return o;
    }
    let (_, verdicts) = match watch(&mut s, IN_FLIGHT + ctx.config().work_window / 2).await {
        Ok(v) => v,
        Err(o) => return o,
    };
    let late: Vec<ShareVerdict> = verdicts
        .into_iter()
        .filter(|v| v.at >= sent_at + IN_FLIGHT && fresh.contains(&v.job_id))
        .collect();
    if late.is_empty() {
        return Outcome::error(format!(
            "no share on the job sent after SetExtranoncePrefix (job {fresh:?}) from {IN_FLIGHT:?} \
             on (see device.shares.new-job)"
        ));
    }
    let refused: Vec<ShareVerdict> = late.iter().filter(|v| v.error.is_some()).cloned().collect();
    Outcome::judge(
        refused.is_empty(),
        format!(
            "shares on job {fresh:?}, sent after SetExtranoncePrefix, built on the new prefix: all \
             accepted"
        ),
        if refused.is_empty() {
            format!("{} shares on it, all accepted", late.len())
        } else {
            format!(
                "{} of {} shares on it refused (an old prefix gives another merkle root): {}",
                refused.len(),
                late.len(),
                refusals(&refused)
            )
        },
    )
}

/// How a switch to new work is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Switch {
    /// After a new prev hash the older jobs are invalid: no share names one from [`IN_FLIGHT`] on.
    Only,
    /// After a job with min_ntime the older jobs on the same prev hash stay valid (work already
    /// handed to hashing units may still come back): the new job must be mined, from
    /// [`IN_FLIGHT`] on, but shares on older ones are no fault.
    Mined,
}

/// Shares from [`IN_FLIGHT`] after `sent_at` must name one of `fresh` (all of them, or some).
async fn judge_switch(
    ctx: &ServeCtx,
    s: &mut Served,
    sent_at: Duration,
    fresh: &[u32],
    what: &str,
    switch: Switch,
) -> Outcome {
    let (_, verdicts) = match watch(s, IN_FLIGHT + ctx.config().work_window / 2).await {
        Ok(v) => v,
        Err(o) => return o,
    };
    let expected = match switch {
        Switch::Only => {
            format!("from {IN_FLIGHT:?} after {what} (job {fresh:?}) came, shares name it")
        }
        Switch::Mined => {
            format!("from {IN_FLIGHT:?} after {what} (job {fresh:?}) came, shares on it")
        }
    };
    let late: Vec<&ShareVerdict> = verdicts
        .iter()
        .filter(|v| v.at >= sent_at + IN_FLIGHT)
        .collect();
    if late.is_empty() {
        return Outcome::error(format!(
            "no share came from {IN_FLIGHT:?} after {what} on ({} before)",
            verdicts.len()
        ));
    }
    let on_fresh = late.iter().filter(|v| fresh.contains(&v.job_id)).count();
    let old: Vec<String> = late
        .iter()
        .filter(|v| !fresh.contains(&v.job_id))
        .take(5)
        .map(|v| {
            format!(
                "share {} on job {} at {:.1} s after it",
                v.sequence_number,
                v.job_id,
                (v.at - sent_at).as_secs_f64()
            )
        })
        .collect();
    let ok = match switch {
        Switch::Only => old.is_empty(),
        Switch::Mined => on_fresh > 0,
    };
    if ok && switch == Switch::Only && s.unreadable_since(sent_at) {
        return Outcome::error(format!(
            "after {what}, the client sent frames that could not be read: shares on older jobs \
             among them cannot be ruled out"
        ));
    }
    Outcome::judge(
        ok,
        expected,
        if ok {
            format!("{} shares after it, {on_fresh} on the new job", late.len())
        } else {
            format!(
                "{} shares after it, none on the new job: {}",
                late.len(),
                old.join("; ")
            )
        },
    )
}

// ---------------------------------------------------------------------------------------------
// Robustness

/// Whether the client went on after the message the check sent: the connection stays open for
/// [`IN_FLIGHT`] (a share already on its way proves nothing), then a share comes. `Err` says what
/// happened instead.
async fn went_on(ctx: &ServeCtx, s: &mut Served, after_what: &str) -> Result<String, String> {
    let window = ctx.config().work_window;
    let crashed = |how: String| format!("the client crashed after {after_what}: {how}");
    let (until, _) = watch(s, IN_FLIGHT).await.map_err(|o| o.observed)?;
    if let Until::Ended(how) = until {
        if let Some((true, died)) = ctx.exited().await {
            return Err(crashed(died));
        }
        return Err(format!("after {after_what}, the connection ended: {how}"));
    }
    let (until, verdicts) = s.serve_shares(1, window).await.map_err(|o| o.observed)?;
    if let Some((true, died)) = ctx.exited().await {
        return Err(crashed(died));
    }
    match until {
        Until::Ended(how) => Err(format!("after {after_what}, the connection ended: {how}")),
        _ if verdicts.is_empty() => Err(format!(
            "after {after_what}, the client submitted no share within {window:?} (it had \
             submitted before)"
        )),
        _ => Ok(format!(
            "after {after_what}, the connection stayed open and shares went on"
        )),
    }
}

/// [`went_on`] as the check's verdict.
async fn goes_on(ctx: &ServeCtx, s: &mut Served, after_what: &str, expected: &str) -> Outcome {
    match went_on(ctx, s, after_what).await {
        Ok(seen) => Outcome::pass(expected, seen),
        Err(what) => Outcome::fail(expected, what),
    }
}

async fn unknown_extension(ctx: ServeCtx) -> Outcome {
    let (mut s, _) = match mined(&ctx, "an unknown extension's message").await {
        Ok(m) => m,
        Err(o) => return o,
    };
    // Without channel_msg: processed locally, so discarded (§3.4). A channel message of an unknown
    // extension is not sent: a proxy or translator must forward it to the channel's owner, which
    // a translator (SV1 below it) cannot.
    let frame = unknown_frame(UNKNOWN_EXTENSION, 0x01, 12);
    if let Err(o) = s
        .send_raw_frame(&frame, "an unknown extension's message")
        .await
    {
        return o;
    }
    goes_on(
        &ctx,
        &mut s,
        "a message of extension 0x4abc",
        "the message is ignored and mining goes on",
    )
    .await
}

async fn unknown_message(ctx: ServeCtx) -> Outcome {
    let (mut s, _) = match mined(&ctx, "an undefined Mining message").await {
        Ok(m) => m,
        Err(o) => return o,
    };
    // Extension 0 (the core protocols), channel_msg 0, a msg_type the spec leaves undefined.
    let frame = unknown_frame(0x0000, UNDEFINED_MSG_TYPE, 8);
    if let Err(o) = s.send_raw_frame(&frame, "an undefined message").await {
        return o;
    }
    goes_on(
        &ctx,
        &mut s,
        "a message of type 0x7e, which the spec does not define",
        "the message is ignored and mining goes on",
    )
    .await
}

async fn chunked_frame(ctx: ServeCtx) -> Outcome {
    // AEAD blocks exist only under Noise.
    if let Some(skip) = noise_only(&ctx) {
        return skip;
    }
    let (mut s, _) = match mined(&ctx, "a 70,000-byte frame").await {
        Ok(m) => m,
        Err(o) => return o,
    };
    // A control first: a small message of the same extension. A client that does not survive that
    // one says nothing about how it reads a frame of several AEAD blocks.
    let small = unknown_frame(UNKNOWN_EXTENSION, 0x01, 12);
    if let Err(o) = s
        .send_raw_frame(&small, "a small frame of an unknown extension")
        .await
    {
        return o;
    }
    if let Err(what) = went_on(&ctx, &mut s, "a 12-byte message of extension 0x4abc").await {
        return Outcome::error(format!(
            "{what} (see device.robust.unknown-extension), so a large frame of it cannot be \
             judged apart from that"
        ));
    }
    let frame = unknown_frame(UNKNOWN_EXTENSION, 0x01, 70_000);
    if let Err(o) = s.send_raw_frame(&frame, "a 70000-byte frame").await {
        return o;
    }
    goes_on(
        &ctx,
        &mut s,
        "a 70,000-byte frame of extension 0x4abc (a 12-byte one went by)",
        "the frame is read whole and ignored, and mining goes on",
    )
    .await
}

async fn bool_high_bits(ctx: ServeCtx) -> Outcome {
    let mut s = match ctx.accept("a BOOL with high bits").await {
        Ok(s) => s,
        Err(o) => return o,
    };
    let setup = match s.setup().await {
        Ok(setup) => setup,
        Err(o) => return o,
    };
    if setup.flags & sv2_codec::messages::flags::REQUIRES_VERSION_ROLLING != 0 {
        return Outcome::skip(
            "the client requires version rolling (REQUIRES_VERSION_ROLLING): the pool MUST NOT \
             send it a job that forbids rolling, the only BOOL a client reads",
        );
    }
    let opened = match s.open_channel().await {
        Ok(opened) => opened,
        Err(o) => return o,
    };
    if !opened.extended {
        return Outcome::skip(
            "the client opened a standard channel: no message to it carries a BOOL",
        );
    }
    // A client that never rolls where it may cannot show how it reads 0xFE.
    let (_, verdicts) = match s.serve_shares(20, ctx.config().work_window).await {
        Ok(v) => v,
        Err(o) => return o,
    };
    let rolls = verdicts.iter().any(|v| {
        s.job_versions
            .get(&v.job_id)
            .is_some_and(|j| *j != v.version)
    });
    if !rolls {
        return Outcome::skip(format!(
            "the client rolled no version in {} shares on jobs that allow it: a job sent with \
             0xFE cannot be told from one sent with 0x00",
            verdicts.len()
        ));
    }
    let expected = "shares on the job carry its version unchanged (0xFE is False)";
    // A control first: a job forbidding rolling with 0x00.
    match send_rolling_flag(&ctx, &mut s, 0x00).await {
        Ok(Judged::Kept(_)) => {}
        Ok(Judged::Rolled(rolled)) => {
            return Outcome::error(format!(
                "the client rolls the version on a job whose version_rolling_allowed is 0x00 \
                 (False) too ({rolled}), so 0xFE cannot show how it reads a BOOL's high bits"
            ))
        }
        Ok(Judged::NotMined(what)) => {
            return Outcome::error(format!(
                "{what}: the client does not mine a valid job forbidding rolling, so the one \
                 sent with 0xFE cannot be judged"
            ))
        }
        Err(o) => return Outcome::error(o.observed),
    }
    match send_rolling_flag(&ctx, &mut s, 0xfe).await {
        Ok(Judged::Kept(seen)) => Outcome::pass(expected, seen),
        Ok(Judged::Rolled(rolled)) => Outcome::fail(
            expected,
            format!("{rolled}: it read 0xFE as True (with 0x00 it kept the version)"),
        ),
        Ok(Judged::NotMined(what)) => Outcome::fail(
            expected,
            format!("{what}, while it mined the same job sent with 0x00: it refused the BOOL's high bits"),
        ),
        Err(o) if o.verdict == crate::verdict::Verdict::Fail => Outcome::fail(expected, o.observed),
        Err(o) => o,
    }
}

/// What the shares on a job with a raw version_rolling_allowed byte showed.
enum Judged {
    /// Every one kept the job's version.
    Kept(String),
    /// Some rolled it.
    Rolled(String),
    /// None came on that job.
    NotMined(String),
}

/// Sends a job with min_ntime (a new template) whose version_rolling_allowed byte is `byte`, and
/// watches the shares on it; an outcome when nothing could be judged (a fail when the connection
/// ended).
async fn send_rolling_flag(ctx: &ServeCtx, s: &mut Served, byte: u8) -> Result<Judged, Outcome> {
    let mut outputs = s.pool.update_template(sv2_wire::unix_now());
    let Some((job, job_id, version)) = take_active_job(&mut outputs, true) else {
        return Err(Outcome::error(
            "the suite's pool made no extended job with min_ntime set",
        ));
    };
    let mut frame = frame_of(&job)?;
    // Header 6, channel_id 4, job_id 4, min_ntime 1 + 4, version 4: the BOOL.
    frame[6 + 4 + 4 + 5 + 4] = byte;
    let sent_at = s.elapsed();
    s.deliver(outputs).await?;
    s.note(format!(
        "job {job_id} is sent with version_rolling_allowed {byte:#04x}"
    ));
    s.send_raw_frame(&frame, "a job with a raw version_rolling_allowed")
        .await?;
    let (until, verdicts) = watch(s, IN_FLIGHT + ctx.config().work_window / 2).await?;
    if let Until::Ended(how) = until {
        return Err(Outcome::fail(
            "",
            format!("the connection ended after the job with version_rolling_allowed {byte:#04x}: {how}"),
        ));
    }
    let on_job: Vec<&ShareVerdict> = verdicts
        .iter()
        .filter(|v| v.job_id == job_id && v.at >= sent_at)
        .collect();
    if on_job.is_empty() {
        return Ok(Judged::NotMined(format!(
            "no share came on job {job_id}, whose version_rolling_allowed was {byte:#04x}"
        )));
    }
    let rolled: Vec<String> = on_job
        .iter()
        .filter(|v| v.version != version)
        .take(5)
        .map(|v| {
            format!(
                "share {} with version {:#010x}",
                v.sequence_number, v.version
            )
        })
        .collect();
    Ok(if rolled.is_empty() {
        Judged::Kept(format!(
            "{} shares on job {job_id} ({byte:#04x}), all with its version {version:#010x}",
            on_job.len()
        ))
    } else {
        Judged::Rolled(format!(
            "job {job_id}'s version is {version:#010x}, yet: {}",
            rolled.join("; ")
        ))
    })
}

async fn option_prefix(ctx: ServeCtx) -> Outcome {
    let (mut s, _) = match mined(&ctx, "an OPTION prefix of 2").await {
        Ok(m) => m,
        Err(o) => return o,
    };
    let expected = "no share on the job whose min_ntime OPTION prefix is 2";
    // A job with min_ntime (to be mined at once, were it valid), its OPTION prefix 2.
    let mut outputs = s.pool.update_template(sv2_wire::unix_now());
    let Some((message, job_id, _)) = take_active_job(&mut outputs, false) else {
        return Outcome::error("the suite's pool made no job with min_ntime set");
    };
    let mut frame = match frame_of(&message) {
        Ok(f) => f,
        Err(o) => return o,
    };
    // Header 6, channel_id 4, job_id 4: min_ntime's OPTION prefix.
    frame[6 + 4 + 4] = 0x02;
    let sent_at = s.elapsed();
    if let Err(o) = s.deliver(outputs).await {
        return o;
    }
    if let Err(o) = s
        .send_raw_frame(&frame, "a job whose OPTION prefix is 2")
        .await
    {
        return o;
    }
    let (until, verdicts) = match watch(&mut s, IN_FLIGHT + ctx.config().work_window / 2).await {
        Ok(v) => v,
        Err(o) => return o,
    };
    let on_it: Vec<&ShareVerdict> = verdicts
        .iter()
        .filter(|v| v.job_id == job_id && v.at >= sent_at)
        .collect();
    if !on_it.is_empty() {
        return Outcome::fail(
            expected,
            format!(
                "{} shares on job {job_id}, sent with min_ntime's OPTION prefix 2: it took the job",
                on_it.len()
            ),
        );
    }
    if s.unreadable_since(sent_at) {
        return Outcome::error(
            "after the job, the client sent frames that could not be read: shares on it among \
             them cannot be ruled out",
        );
    }
    if let Until::Ended(how) = until {
        // Refusing the message by closing is refusing it.
        return Outcome::pass(expected, format!("it closed the connection: {how}"));
    }
    // A control: a valid job with min_ntime is taken (else ignoring the broken one proves nothing).
    let outputs = s.pool.update_template(sv2_wire::unix_now());
    let fresh = active_jobs(&outputs);
    let control_at = s.elapsed();
    if let Err(o) = s.deliver(outputs).await {
        return o;
    }
    let (_, verdicts) = match watch(&mut s, IN_FLIGHT + ctx.config().work_window / 2).await {
        Ok(v) => v,
        Err(o) => return o,
    };
    if !verdicts
        .iter()
        .any(|v| fresh.contains(&v.job_id) && v.at >= control_at)
    {
        return Outcome::error(format!(
            "no share on job {fresh:?}, a valid job with min_ntime sent after it, either (see \
             device.shares.new-job): ignoring job {job_id} says nothing about its OPTION"
        ));
    }
    Outcome::pass(
        expected,
        format!("no share on job {job_id}; the valid job after it was mined"),
    )
}

async fn share_error_code(ctx: ServeCtx) -> Outcome {
    let (mut s, _) = match mining(&ctx, "an unknown share error code").await {
        Ok(m) => m,
        Err(o) => return o,
    };
    // Serve until the pool accepts a share, and answer that one with an unknown error code.
    let deadline = tokio::time::Instant::now() + ctx.config().work_window;
    let mut replaced = false;
    while !replaced {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Outcome::error("the client submitted no share that the pool accepted");
        }
        match s.recv_within(left).await {
            Incoming::Message(d) => {
                let mut outputs = s.to_pool(&d.message);
                for o in outputs.iter_mut() {
                    if let Output::Send {
                        message: Message::SubmitSharesSuccess(ok),
                        ..
                    } = o
                    {
                        if !replaced {
                            let error = SubmitSharesError {
                                channel_id: ok.channel_id,
                                sequence_number: ok.last_sequence_number,
                                error_code: str255("zz-unknown-code-\u{e9}"),
                            };
                            *o = Output::Send {
                                session: s.session,
                                message: Message::SubmitSharesError(error),
                            };
                            replaced = true;
                        }
                    }
                }
                if let Err(o) = s.deliver(outputs).await {
                    return o;
                }
            }
            Incoming::Timeout | Incoming::Unreadable(_) => {}
            other => {
                return Outcome::error(format!(
                    "the connection ended before a share: {}",
                    other.describe()
                ))
            }
        }
    }
    goes_on(
        &ctx,
        &mut s,
        "a SubmitShares.Error with error_code \"zz-unknown-code-\u{e9}\"",
        "the unknown code is a logging no-op: the channel mines on",
    )
    .await
}

async fn open_error_code(ctx: ServeCtx) -> Outcome {
    if !ctx.config().launcher.starts_clients() {
        return Outcome::skip(
            "only a crash fails this check, and a client the suite did not start cannot be \
             seen crashing (use --spawn)",
        );
    }
    let mut s = match ctx.accept("an unknown open error code").await {
        Ok(s) => s,
        Err(o) => return o,
    };
    if let Err(o) = s.setup().await {
        return o;
    }
    let request_id = match s.recv().await {
        Incoming::Message(d) => match &d.message {
            Message::OpenStandardMiningChannel(m) => m.request_id,
            Message::OpenExtendedMiningChannel(m) => m.request_id,
            other => {
                return Outcome::error(format!(
                    "the client's first message after setup was {}, not an open request",
                    describe(other)
                ))
            }
        },
        other => return Outcome::error(format!("no open request: {}", other.describe())),
    };
    let refusal = OpenMiningChannelError {
        request_id,
        error_code: str255("zz-unknown-code-\u{e9}"),
    };
    if let Err(o) = s.send(&Message::OpenMiningChannelError(refusal)).await {
        return o;
    }
    let expected = "an unknown error code does not crash the client";
    // What the client does next is its own (stay, retry, leave): only a crash fails.
    let timeout = ctx.config().timeout;
    let watched = s.recv_within(timeout).await;
    // A process that goes down takes a moment after its connection does.
    let deadline = tokio::time::Instant::now() + timeout;
    let mut exited = ctx.exited().await;
    while exited.is_none() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        exited = ctx.exited().await;
    }
    match exited {
        Some((true, how)) => Outcome::fail(expected, format!("the client crashed: {how}")),
        Some((false, how)) => Outcome::pass(
            expected,
            format!("{}; the client exited: {how}", watched.describe()),
        ),
        None => Outcome::pass(
            expected,
            format!("then: {}; the client is still running", watched.describe()),
        ),
    }
}

async fn close_channel(ctx: ServeCtx) -> Outcome {
    let (mut s, opened) = match mined(&ctx, "the pool closes the channel").await {
        Ok(m) => m,
        Err(o) => return o,
    };
    let close = Message::CloseChannel(CloseChannel {
        channel_id: opened.channel_id,
        reason_code: str255("sv2-conformance"),
    });
    // The core forgets the channel as if the client had closed it; the client is told.
    let _ = s.to_pool(&close);
    let sent_at = s.elapsed();
    if let Err(o) = s.send(&close).await {
        return o;
    }
    let (until, verdicts) = match watch(&mut s, IN_FLIGHT + ctx.config().work_window / 2).await {
        Ok(v) => v,
        Err(o) => return o,
    };
    if s.unreadable_since(sent_at) {
        return Outcome::error(
            "after CloseChannel, the client sent frames that could not be read: shares on the \
             closed channel among them cannot be ruled out",
        );
    }
    let late: Vec<String> = verdicts
        .iter()
        .filter(|v| v.channel_id == opened.channel_id && v.at >= sent_at + IN_FLIGHT)
        .take(5)
        .map(|v| {
            format!(
                "share {} at {:.1} s after the close",
                v.sequence_number,
                (v.at - sent_at).as_secs_f64()
            )
        })
        .collect();
    Outcome::judge(
        late.is_empty(),
        format!(
            "no share on channel {} from {IN_FLIGHT:?} after CloseChannel",
            opened.channel_id
        ),
        if late.is_empty() {
            match until {
                Until::Ended(how) => format!("none came ({how})"),
                _ => "none came".to_string(),
            }
        } else {
            late.join("; ")
        },
    )
}

// ---------------------------------------------------------------------------------------------
// Reconnect

/// Sends Reconnect to a new loopback listener; the client's connection there, if it came.
async fn reconnect_to_new_port(
    ctx: &ServeCtx,
) -> Result<(Served, Option<tokio::net::TcpStream>, u16), Outcome> {
    let (mut s, _) = mining(ctx, "before Reconnect").await?;
    // On the address the client already reaches (loopback by default).
    let host = ctx.endpoint().host.clone();
    let second = TcpListener::bind((host.as_str(), 0))
        .await
        .map_err(|e| Outcome::error(format!("a second listener: {e}")))?;
    let port = second
        .local_addr()
        .map_err(|e| Outcome::error(format!("a second listener: {e}")))?
        .port();
    let reconnect = Reconnect {
        new_host: str255(&host),
        new_port: port,
    };
    s.send(&Message::Reconnect(reconnect)).await?;
    let wait = ctx.config().connect_timeout;
    let stream = match tokio::time::timeout(wait, second.accept()).await {
        Ok(Ok((stream, _))) => Some(stream),
        _ => None,
    };
    Ok((s, stream, port))
}

async fn reconnect_follows(ctx: ServeCtx) -> Outcome {
    // §3.3 binds a client whose previous connection ran through a secure session.
    if let Some(skip) = noise_only(&ctx) {
        return skip;
    }
    let (_old, stream, port) = match reconnect_to_new_port(&ctx).await {
        Ok(r) => r,
        Err(o) => return o,
    };
    let host = ctx.endpoint().host.clone();
    let expected =
        format!("after Reconnect to {host}:{port}, a handshake and SetupConnection there");
    let Some(stream) = stream else {
        let mut observed = format!(
            "no connection to {host}:{port} within {:?}",
            ctx.config().connect_timeout
        );
        if let Some((crashed, how)) = ctx.exited().await {
            let what = if crashed { "it crashed" } else { "it exited" };
            observed.push_str(&format!("; {what}: {how}"));
        }
        return Outcome::fail(expected, observed);
    };
    let mut s = match ctx
        .serve_stream(
            "the new endpoint",
            stream,
            Certificate::Valid,
            pool_config(),
        )
        .await
    {
        Ok(s) => s,
        Err(o) => {
            return Outcome::fail(
                expected,
                format!("it connected, but the handshake failed: {}", o.observed),
            )
        }
    };
    match s.recv().await {
        Incoming::Message(d) if matches!(d.message, Message::SetupConnection(_)) => Outcome::pass(
            expected,
            "it connected, ran the handshake and sent SetupConnection",
        ),
        other => Outcome::fail(
            expected,
            format!(
                "it connected and ran the handshake, then: {}",
                other.describe()
            ),
        ),
    }
}

async fn reconnect_wrong_authority(ctx: ServeCtx) -> Outcome {
    if let Some(skip) = noise_only(&ctx) {
        return skip;
    }
    let (_old, stream, port) = match reconnect_to_new_port(&ctx).await {
        Ok(r) => r,
        Err(o) => return o,
    };
    let expected =
        "the client refuses the new endpoint's certificate: no encrypted frame there".to_string();
    let Some(stream) = stream else {
        return Outcome::error(format!(
            "the client did not follow Reconnect to port {port} (see \
             device.reconnect.follows), so the certificate there was never presented"
        ));
    };
    let mut s = match ctx
        .serve_stream(
            "the new endpoint, another authority",
            stream,
            Certificate::OtherAuthority,
            pool_config(),
        )
        .await
    {
        Ok(s) => s,
        Err(o) => return Outcome::error(o.observed),
    };
    match s.recv().await {
        Incoming::Message(d) => Outcome::fail(
            expected,
            format!(
                "it sent {} under a certificate another authority signed",
                describe(&d.message)
            ),
        ),
        Incoming::Unreadable(e) => Outcome::fail(
            expected,
            format!("it sent an encrypted frame under that certificate ({e})"),
        ),
        Incoming::Timeout => Outcome::error(format!(
            "at the new endpoint, the client neither closed the connection nor sent anything \
             within {:?}: a refusal cannot be told from a wait",
            s.timeout
        )),
        other => Outcome::pass(expected, other.describe()),
    }
}
