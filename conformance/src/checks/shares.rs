//! Share checks (spec §5.3.11-5.3.14, §5.3.16, §5.3.21; CATALOG §F 56-60): what a server accepts and
//! what it must refuse.
//!
//! Every negative share is otherwise valid: mined with the engine to meet the channel's target with
//! exactly the bad parameter, so that a server that skips the one rule accepts it and the check
//! fails. On regtest every share may also be a block, after which the server moves to a new prev
//! hash and may refuse racing shares as stale: a refusal that comes after the work moved is retried,
//! and shares that must not be blocks are searched for when the targets allow it.

use std::time::Duration;

use sv2_chain::target::{compact_to_target, meets_target};
use sv2_codec::messages::flags;
use sv2_codec::messages::mining::{SubmitSharesExtended, UpdateChannel};
use sv2_codec::types::U256;
use sv2_codec::Message;
use sv2_wire::unix_now;

use crate::active;
use crate::check::Check;
use crate::session::{Ctx, Incoming, Session};
use crate::verdict::Outcome;
use sv2_mock::work::{mine, Found, ShareParams, ShareStatus, Work};

pub const CHECKS: &[Check] = &[
    active!("shares.valid-accepted", "5.3.13", Must, None, "a valid share (meeting the channel target on the current job) gets SubmitShares.Success", valid_accepted),
    active!("shares.accepted-count", "5.3.13", Must, Some(58), "after 5 valid shares, new_submits_accepted_count summed over the Successes is 5 (counters reset per batch)", accepted_count),
    active!("shares.ntime-too-early", "5.3.11", Must, Some(56), "a share with ntime below min_ntime (mined valid with it) gets SubmitShares.Error", ntime_too_early),
    active!("shares.ntime-too-late", "5.3.11", Must, Some(56), "a share with ntime more than 2 hours past min_ntime and now (mined valid with it) gets SubmitShares.Error", ntime_too_late),
    active!("shares.extranonce-short", "5.3.12", Must, Some(57), "SubmitSharesExtended with an extranonce one byte shorter than extranonce_size (mined valid with it) gets SubmitShares.Error", extranonce_short),
    active!("shares.extranonce-33", "3.1", Must, Some(2), "SubmitSharesExtended whose extranonce B0_32 has 33 bytes is refused (Error or close), never accepted", extranonce_33),
    active!("shares.unknown-job", "5.3.14", Must, Some(59), "a share naming a job_id never sent gets SubmitShares.Error echoing its sequence_number", unknown_job),
    active!("shares.unknown-channel", "5.3.14", Must, None, "a share on a channel id never opened gets SubmitShares.Error (or a close), never .Success", unknown_channel),
    active!("shares.above-target", "5.3.21", Must, None, "a share whose hash is above the channel target gets SubmitShares.Error", above_target),
    active!("shares.old-target", "5.3.21", Must, Some(60), "after UpdateChannel halves the target and SetTarget comes, a share meeting the old target but not the new one gets SubmitShares.Error", old_target),
    active!("shares.duplicate", "5.3.14", Should, None, "the same valid share sent twice: the second gets SubmitShares.Error", duplicate),
    active!("shares.version-mask", "5.3.16", Should, None, "a share changing version bits outside BIP323's 0x1fffffe0 (valid PoW) gets SubmitShares.Error", version_mask),
    active!("shares.version-fixed", "5.3.16", Must, None, "on a job with version_rolling_allowed = false, a share with a rolled version gets SubmitShares.Error", version_fixed),
];

/// How long reads wait when only absorbing what is already on its way.
pub(crate) const SHORT: Duration = Duration::from_millis(100);

/// The most messages [`settle`] reads before giving up on quiet.
const SETTLE_MAX: usize = 2_000;

/// How long a share's answer may take: the answer timeout, plus room for servers that acknowledge
/// accepted shares in timed batches.
pub(crate) fn answer_window(ctx: &Ctx) -> Duration {
    ctx.target().timeout + Duration::from_secs(3)
}

/// Reads what is already on its way (until `quiet` passes with nothing), so that the tracker is
/// current. A close is an error outcome.
pub(crate) async fn settle(s: &mut Session, quiet: Duration) -> Result<(), Outcome> {
    for _ in 0..SETTLE_MAX {
        match s.recv_within(quiet).await {
            Incoming::Message(_) => continue,
            Incoming::Timeout => return Ok(()),
            other => {
                return Err(Outcome::error(format!(
                    "the connection ended: {}",
                    other.describe()
                )))
            }
        }
    }
    Ok(())
}

/// A set-up session (`flags`) with one channel (extended or standard) that has work.
pub(crate) async fn channel_with_work(
    ctx: &Ctx,
    label: &str,
    flags: u32,
    extended: bool,
) -> Result<(Session, u32), Outcome> {
    let mut s = ctx.setup(label, flags).await?;
    let id = if extended {
        s.open_extended(0).await?.channel_id
    } else {
        s.open_standard().await?.channel_id
    };
    s.wait_for_work(id, ctx.target().work_window).await?;
    Ok((s, id))
}

/// The channel's current work (reading until it has some).
pub(crate) async fn current_work(
    ctx: &Ctx,
    s: &mut Session,
    channel: u32,
) -> Result<Work, Outcome> {
    settle(s, SHORT).await?;
    s.wait_for_work(channel, ctx.target().work_window).await
}

/// Mines a share with `params` meeting `target` (the channel's when None); running out of hash
/// budget is a skip.
pub(crate) async fn mine_share(
    ctx: &Ctx,
    work: &Work,
    params: ShareParams,
    target: Option<[u8; 32]>,
) -> Result<Found, Outcome> {
    let budget = ctx.target().hash_budget;
    mine(work, params, target, budget).await.ok_or_else(|| {
        Outcome::skip(format!(
            "no share found within {budget} hashes (about {:.3e} per share at the channel's target)",
            work.expected_hashes()
        ))
    })
}

/// Whether every hash meeting `target` is also a block on this work.
fn every_share_is_a_block(work: &Work, target: &[u8; 32]) -> bool {
    compact_to_target(work.prev.nbits).is_ok_and(|block| meets_target(target, &block))
}

/// A share meeting `target` that satisfies `want` and is not a block, when the targets allow one
/// (None when every share meeting `target` is a block or none was found in a few tries).
async fn mine_non_block(
    ctx: &Ctx,
    work: &Work,
    mut params: ShareParams,
    target: Option<[u8; 32]>,
    want: impl Fn(&Found) -> bool,
) -> Result<Option<Found>, Outcome> {
    let t = target.unwrap_or(work.channel.target);
    if every_share_is_a_block(work, &t) {
        return Ok(None);
    }
    for _ in 0..256 {
        let found = mine_share(ctx, work, params.clone(), target).await?;
        if want(&found) && !work.is_block(&found.hash) {
            return Ok(Some(found));
        }
        match found.nonce.checked_add(1) {
            Some(n) => params.start_nonce = n,
            None => return Ok(None),
        }
    }
    Ok(None)
}

/// What became of a share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    Accepted,
    Rejected(String),
    /// No answer within the window.
    Silent,
    /// The connection ended (the text says how).
    Ended(String),
    /// A frame came that cannot be read (it may have been the answer): evidence against the
    /// server, never a close or a refusal.
    Unreadable(String),
}

/// Waits up to `within` for the answer to share `seq` on `channel` (Success counts covering it, or
/// an Error echoing it).
pub(crate) async fn answer(s: &mut Session, channel: u32, seq: u32, within: Duration) -> Answer {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match s.tracker.share_status(channel, seq) {
            ShareStatus::Accepted => return Answer::Accepted,
            ShareStatus::Rejected(code) => return Answer::Rejected(code),
            ShareStatus::Pending => {}
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Answer::Silent;
        }
        match s.recv_within(left).await {
            Incoming::Message(_) | Incoming::Timeout => {}
            // A frame that cannot be read but is no share answer (its header says so): the
            // monitor's strict-decoding rule judges it; the answer may still come.
            Incoming::Unreadable(_)
                if s.unreadable_is_none_of(&["SubmitShares.Success", "SubmitShares.Error"]) => {}
            unreadable @ Incoming::Unreadable(_) => {
                return Answer::Unreadable(unreadable.describe())
            }
            other => return Answer::Ended(other.describe()),
        }
    }
}

/// Errors on `channel` for other sequence numbers than those in `ours`, in words (for evidence).
fn other_errors(s: &Session, channel: u32, ours: &[u32]) -> String {
    let Some(ledger) = s.tracker.shares.get(&channel) else {
        return String::new();
    };
    let others: Vec<String> = ledger
        .rejected
        .iter()
        .filter(|(seq, _)| !ours.contains(seq))
        .map(|(seq, code)| format!("sequence_number {seq} ({code})"))
        .collect();
    if others.is_empty() {
        String::new()
    } else {
        format!(
            "; SubmitShares.Error came for other sequence numbers: {}",
            others.join(", ")
        )
    }
}

/// Whether the channel's work moved to another prev hash since `work`.
fn moved(s: &Session, work: &Work) -> bool {
    s.tracker
        .work(work.channel.id)
        .is_none_or(|w| w.prev.prev_hash != work.prev.prev_hash)
}

/// Whether a refusal looks like staleness (by protocol state, or by the code's wording).
fn stale(s: &Session, work: &Work, code: &str) -> bool {
    moved(s, work) || code.to_ascii_lowercase().contains("stale")
}

/// A share in words, for evidence.
fn share_text(work: &Work, found: &Found, seq: u32) -> String {
    let p = &found.params;
    format!(
        "share seq {seq} on channel {} job {}: nonce {:#010x}, ntime {}, version {:#010x}, extranonce {} bytes (channel: {}), hash {}{}",
        work.channel.id,
        work.job.id,
        found.nonce,
        p.ntime,
        p.version,
        p.extranonce.len(),
        work.channel.extranonce_size,
        hex::encode(found.hash.iter().rev().copied().collect::<Vec<u8>>()),
        if work.is_block(&found.hash) { " (also a block)" } else { "" }
    )
}

/// How a share goes on the wire.
pub(crate) enum Wire {
    Message(Message<'static>),
    /// A hand-built frame (plain), and the channel id it carries.
    Frame(Vec<u8>, u32),
}

/// What a negative share check accepts besides SubmitShares.Error.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Tolerate {
    /// The connection closing.
    pub close: bool,
    /// No answer at all (a frame dropped as undecodable).
    pub silence: bool,
}

/// The core of every negative share check: mine a share with `make`'s parameters (valid but for the
/// one rule), send it as `wire` builds it, and expect SubmitShares.Error for it (or what
/// `tolerate` allows). Refusals that come after the work moved are retried (up to 3 times).
#[allow(clippy::too_many_arguments)]
/// [`expect_rejected`] on a channel with work opened for this check (`label` names its connection).
async fn rejected_on_new_channel(
    ctx: &Ctx,
    label: &str,
    expected: &str,
    tolerate: Tolerate,
    make: impl Fn(&Work) -> Result<(ShareParams, Option<[u8; 32]>), Outcome>,
    wire: impl Fn(&Work, u32, &Found) -> Wire,
) -> Outcome {
    let (mut s, channel) = match channel_with_work(ctx, label, 0, true).await {
        Ok(x) => x,
        Err(o) => return o,
    };
    expect_rejected(ctx, &mut s, channel, expected, tolerate, make, wire).await
}

pub(crate) async fn expect_rejected(
    ctx: &Ctx,
    s: &mut Session,
    channel: u32,
    expected: &str,
    tolerate: Tolerate,
    make: impl Fn(&Work) -> Result<(ShareParams, Option<[u8; 32]>), Outcome>,
    wire: impl Fn(&Work, u32, &Found) -> Wire,
) -> Outcome {
    let within = answer_window(ctx);
    for attempt in 0..3 {
        let work = match current_work(ctx, s, channel).await {
            Ok(w) => w,
            Err(o) => return o,
        };
        let (params, target) = match make(&work) {
            Ok(x) => x,
            Err(o) => return o,
        };
        let found = match mine_share(ctx, &work, params, target).await {
            Ok(f) => f,
            Err(o) => return o,
        };
        if let Err(o) = settle(s, Duration::from_millis(10)).await {
            return o;
        }
        if moved(s, &work) && attempt < 2 {
            continue;
        }
        let seq = s.sequence_number();
        let on_wire = wire(&work, seq, &found);
        let target_channel = match &on_wire {
            Wire::Frame(_, id) => *id,
            Wire::Message(Message::SubmitSharesStandard(m)) => m.channel_id,
            Wire::Message(Message::SubmitSharesExtended(m)) => m.channel_id,
            Wire::Message(_) => channel,
        };
        let sent = match on_wire {
            Wire::Message(m) => s.send(&m).await,
            Wire::Frame(frame, id) => {
                s.tracker.sent_share(id, seq);
                s.send_frame(&frame, "hand-built share").await
            }
        };
        if let Err(o) = sent {
            return o;
        }
        let text = share_text(&work, &found, seq);
        match answer(s, target_channel, seq, within).await {
            Answer::Rejected(code) => {
                if moved(s, &work) && attempt < 2 {
                    continue;
                }
                return Outcome::pass(expected, format!("{text}: SubmitShares.Error {code:?}"));
            }
            Answer::Accepted => {
                return Outcome::fail(
                    expected,
                    format!("{text}: accepted (SubmitShares.Success counts cover it)"),
                )
            }
            Answer::Silent if tolerate.silence => {
                return Outcome::pass(
                    expected,
                    format!("{text}: no answer within {within:?} (dropped)"),
                )
            }
            Answer::Silent => {
                return Outcome::fail(
                    expected,
                    format!(
                        "{text}: no SubmitShares.Error echoing sequence_number {seq} within {within:?}{}",
                        other_errors(s, target_channel, &[seq])
                    ),
                )
            }
            Answer::Ended(how) => {
                return Outcome::judge(tolerate.close, expected, format!("{text}: {how}"));
            }
            Answer::Unreadable(how) => return Outcome::fail(expected, format!("{text}: {how}")),
        }
    }
    Outcome::skip("the work moved on (new prev hash) during every attempt; cannot tell")
}

/// Mines a valid share on the channel's current work, searching from `start_nonce`, and sends it:
/// the work, the share and its sequence number.
async fn submit_valid(
    ctx: &Ctx,
    s: &mut Session,
    channel: u32,
    start_nonce: u32,
) -> Result<(Work, Found, u32), Outcome> {
    let work = current_work(ctx, s, channel).await?;
    let params = ShareParams {
        start_nonce,
        ..work.params()
    };
    let found = mine_share(ctx, &work, params, None).await?;
    let seq = s.sequence_number();
    s.send(&work.submit(seq, &found)).await?;
    Ok((work, found, seq))
}

/// Sends valid shares until one is accepted (up to 4 tries; stale refusals are retried). Returns
/// the work, the share and its sequence number.
pub(crate) async fn accepted_share(
    ctx: &Ctx,
    s: &mut Session,
    channel: u32,
    expected: &str,
) -> Result<(Work, Found, u32), Outcome> {
    let within = answer_window(ctx);
    let mut refusals = Vec::new();
    for attempt in 0..4u32 {
        let (work, found, seq) =
            submit_valid(ctx, s, channel, attempt.wrapping_mul(0x1000_0000)).await?;
        let text = share_text(&work, &found, seq);
        match answer(s, channel, seq, within).await {
            Answer::Accepted => return Ok((work, found, seq)),
            Answer::Rejected(code) if stale(s, &work, &code) => {
                refusals.push(format!("{text}: {code:?} (the work moved: retried)"));
            }
            Answer::Rejected(code) => {
                return Err(Outcome::fail(
                    expected,
                    format!("{text}: SubmitShares.Error {code:?}"),
                ))
            }
            Answer::Silent => {
                // §5.3.13: one Success may acknowledge several shares, so a server may wait for a
                // batch. Fill it with more valid shares before calling the first unanswered.
                let more = match fill_batch(ctx, s, channel, &found, seq).await? {
                    (Answer::Accepted, _) => return Ok((work, found, seq)),
                    (Answer::Rejected(code), _) => {
                        return Err(Outcome::fail(
                            expected,
                            format!("{text}: SubmitShares.Error {code:?} (after a batch)"),
                        ))
                    }
                    (Answer::Ended(how) | Answer::Unreadable(how), _) => {
                        return Err(Outcome::fail(expected, format!("{text}: {how}")))
                    }
                    (Answer::Silent, more) => more,
                };
                return Err(Outcome::fail(
                    expected,
                    format!(
                        "{text}: no SubmitShares.Success covering it within {within:?}, nor after {more} more valid share(s) for a batching server{}",
                        other_errors(s, channel, &[seq])
                    ),
                ));
            }
            Answer::Ended(how) | Answer::Unreadable(how) => {
                return Err(Outcome::fail(expected, format!("{text}: {how}")))
            }
        }
    }
    Err(Outcome::skip(format!(
        "every valid share was refused as stale while the work moved: {}",
        refusals.join("; ")
    )))
}

/// Valid shares sent at most after an unanswered one, for a server that acknowledges in batches (the
/// spec's own example batches 10).
pub(crate) const BATCH_FILL: u32 = 31;

/// After the share `seq` got no answer: up to [`BATCH_FILL`] more valid shares on the channel's
/// current work (each after the previous one's nonce), until an answer about `seq` comes; then a
/// last wait of the answer window. Returns that answer and how many shares were added.
pub(crate) async fn fill_batch(
    ctx: &Ctx,
    s: &mut Session,
    channel: u32,
    first: &Found,
    seq: u32,
) -> Result<(Answer, u32), Outcome> {
    let mut last_nonce = first.nonce;
    for more in 1..=BATCH_FILL {
        let (_, found, _) = submit_valid(ctx, s, channel, last_nonce.wrapping_add(1)).await?;
        last_nonce = found.nonce;
        match answer(s, channel, seq, Duration::from_millis(100)).await {
            Answer::Silent => {}
            done => return Ok((done, more)),
        }
    }
    Ok((
        answer(s, channel, seq, answer_window(ctx)).await,
        BATCH_FILL,
    ))
}

fn standard_message(work: &Work, seq: u32, found: &Found) -> Wire {
    Wire::Message(work.submit(seq, found))
}

async fn valid_accepted(ctx: Ctx) -> Outcome {
    let expected = "SubmitShares.Success whose counts cover the share";
    let (mut s, channel) = match channel_with_work(&ctx, "valid share", 0, true).await {
        Ok(x) => x,
        Err(o) => return o,
    };
    match accepted_share(&ctx, &mut s, channel, expected).await {
        Ok((work, found, seq)) => Outcome::pass(
            expected,
            format!("{}: accepted", share_text(&work, &found, seq)),
        ),
        Err(o) => o,
    }
}

async fn accepted_count(ctx: Ctx) -> Outcome {
    const N: u64 = 5;
    let expected = format!(
        "the Successes' new_submits_accepted_count sum to the {N} valid shares sent (less any refused)"
    );
    let (mut s, channel) = match channel_with_work(&ctx, "5 valid shares", 0, true).await {
        Ok(x) => x,
        Err(o) => return o,
    };
    let mut counted = 0u64;
    let mut notes = Vec::new();
    for attempt in 0..(N as u32 * 4) {
        if counted >= N {
            break;
        }
        let (work, found, seq) =
            match submit_valid(&ctx, &mut s, channel, attempt.wrapping_mul(0x0800_0000)).await {
                Ok(x) => x,
                Err(o) => return o,
            };
        // A short wait: refusals come at once; acknowledgements may be batched.
        match answer(&mut s, channel, seq, Duration::from_millis(500)).await {
            Answer::Rejected(code) if stale(&s, &work, &code) => {
                notes.push(format!("seq {seq} refused as stale ({code:?}), replaced"));
            }
            Answer::Rejected(code) => {
                return Outcome::fail(
                    expected,
                    format!(
                        "{}: SubmitShares.Error {code:?}",
                        share_text(&work, &found, seq)
                    ),
                )
            }
            Answer::Ended(how) | Answer::Unreadable(how) => return Outcome::fail(expected, how),
            Answer::Accepted | Answer::Silent => counted += 1,
        }
    }
    // Wait for the acknowledgements to catch up. A server that acknowledges in batches (§5.3.13)
    // may wait for more: while nothing comes for a second, another valid share, up to BATCH_FILL.
    let mut deadline = tokio::time::Instant::now() + answer_window(&ctx);
    let mut added = 0u32;
    let mut first_added = None;
    let mut quiet_since = tokio::time::Instant::now();
    loop {
        let done = s
            .tracker
            .shares
            .get(&channel)
            .is_some_and(|l| l.accepted_count >= l.not_rejected());
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if done || left.is_zero() {
            break;
        }
        if quiet_since.elapsed() >= Duration::from_millis(300) && added < BATCH_FILL {
            let start = 0xc000_0000u32.wrapping_add(added.wrapping_mul(0x0100_0000));
            let seq = match submit_valid(&ctx, &mut s, channel, start).await {
                Ok((_, _, seq)) => seq,
                Err(o) => return o,
            };
            added += 1;
            first_added.get_or_insert(seq);
            quiet_since = tokio::time::Instant::now();
            deadline = quiet_since + answer_window(&ctx);
            continue;
        }
        match s.recv_within(left.min(Duration::from_millis(200))).await {
            Incoming::Message(_) => quiet_since = tokio::time::Instant::now(),
            Incoming::Timeout => {}
            other => return Outcome::fail(expected, other.describe()),
        }
    }
    if let Some(first) = first_added {
        notes.push(format!(
            "{added} valid share(s) added from seq {first} on, to fill a batch"
        ));
    }
    // Anything more (a late over-count) within a short while.
    if let Err(o) = settle(&mut s, Duration::from_millis(300)).await {
        return o;
    }
    let Some(ledger) = s.tracker.shares.get(&channel) else {
        return Outcome::error("no share was recorded");
    };
    let kept = ledger.not_rejected();
    let observed = format!(
        "{} shares sent, {} refused, {kept} to acknowledge; {} SubmitShares.Success summing new_submits_accepted_count to {}{}",
        ledger.sent.len(),
        ledger.rejected.len(),
        ledger.successes,
        ledger.accepted_count,
        if notes.is_empty() { String::new() } else { format!(" ({})", notes.join("; ")) }
    );
    if kept == 0 {
        return Outcome::skip(format!("no share stayed valid: {observed}"));
    }
    Outcome::judge(ledger.accepted_count == kept, expected, observed)
}

async fn ntime_too_early(ctx: Ctx) -> Outcome {
    rejected_on_new_channel(
        &ctx,
        "ntime below min_ntime",
        "SubmitShares.Error for a share with ntime = min_ntime - 1",
        Tolerate::default(),
        |work| {
            let mut p = work.params();
            if p.ntime == 0 {
                return Err(Outcome::skip("min_ntime is 0: no earlier ntime exists"));
            }
            p.ntime -= 1;
            Ok((p, None))
        },
        standard_message,
    )
    .await
}

async fn ntime_too_late(ctx: Ctx) -> Outcome {
    rejected_on_new_channel(
        &ctx,
        "ntime 2 h ahead",
        "SubmitShares.Error for a share with ntime beyond min_ntime + elapsed (here: 2 h 10 min past min_ntime and now)",
        Tolerate::default(),
        |work| {
            let mut p = work.params();
            p.ntime = p.ntime.max(unix_now()).saturating_add(7_800);
            Ok((p, None))
        },
        standard_message,
    )
    .await
}

async fn extranonce_short(ctx: Ctx) -> Outcome {
    rejected_on_new_channel(
        &ctx,
        "extranonce one byte short",
        "SubmitShares.Error for an extranonce of extranonce_size - 1 bytes",
        Tolerate::default(),
        |work| {
            let mut p = work.params();
            if p.extranonce.is_empty() {
                return Err(Outcome::skip("the channel's extranonce_size is 0"));
            }
            p.extranonce.pop();
            Ok((p, None))
        },
        standard_message,
    )
    .await
}

async fn extranonce_33(ctx: Ctx) -> Outcome {
    let expected = "SubmitShares.Error, a close, or the frame dropped; never SubmitShares.Success";
    rejected_on_new_channel(
        &ctx,
        "extranonce of 33 bytes",
        expected,
        Tolerate {
            close: true,
            silence: true,
        },
        |work| {
            let mut p = work.params();
            p.extranonce = vec![0; 33];
            Ok((p, None))
        },
        |work, seq, found| {
            let p = &found.params;
            let mut payload = Vec::with_capacity(24 + 34);
            for v in [
                work.channel.id,
                seq,
                work.job.id,
                found.nonce,
                p.ntime,
                p.version,
            ] {
                payload.extend_from_slice(&v.to_le_bytes());
            }
            payload.push(33);
            payload.extend_from_slice(&p.extranonce);
            let mut frame = vec![0x00, 0x80, 0x1b];
            frame.extend_from_slice(&(payload.len() as u32).to_le_bytes()[..3]);
            frame.extend_from_slice(&payload);
            Wire::Frame(frame, work.channel.id)
        },
    )
    .await
}

/// A job id that is not among the jobs seen on the connection.
fn unused_job_id(s: &Session, near: u32) -> u32 {
    let mut id = near.wrapping_add(0x4000_0000);
    while s
        .tracker
        .jobs
        .values()
        .any(|jobs| jobs.iter().any(|j| j.id == id))
    {
        id = id.wrapping_add(1);
    }
    id
}

async fn unknown_job(ctx: Ctx) -> Outcome {
    let (mut s, channel) = match channel_with_work(&ctx, "unknown job_id", 0, true).await {
        Ok(x) => x,
        Err(o) => return o,
    };
    let bogus = match s.tracker.work(channel) {
        Some(w) => unused_job_id(&s, w.job.id),
        None => return Outcome::error("no work"),
    };
    expect_rejected(
        &ctx,
        &mut s,
        channel,
        &format!("SubmitShares.Error echoing the share's sequence_number for job_id {bogus}"),
        Tolerate::default(),
        |work| Ok((work.params(), None)),
        |work, seq, found| {
            Wire::Message(match work.submit(seq, found) {
                Message::SubmitSharesExtended(mut m) => {
                    m.job_id = bogus;
                    m.into()
                }
                Message::SubmitSharesStandard(mut m) => {
                    m.job_id = bogus;
                    m.into()
                }
                other => other,
            })
        },
    )
    .await
}

async fn unknown_channel(ctx: Ctx) -> Outcome {
    let (mut s, channel) = match channel_with_work(&ctx, "unknown channel id", 0, true).await {
        Ok(x) => x,
        Err(o) => return o,
    };
    let mut bogus = channel.wrapping_add(0x0100_0000);
    while s.tracker.channels.contains_key(&bogus)
        || s.tracker.channels.values().any(|c| c.group == bogus)
        || bogus == 0
    {
        bogus = bogus.wrapping_add(1);
    }
    expect_rejected(
        &ctx,
        &mut s,
        channel,
        &format!("SubmitShares.Error (or a close) for a share on channel {bogus}, never opened"),
        Tolerate {
            close: true,
            silence: false,
        },
        |work| Ok((work.params(), None)),
        |work, seq, found| {
            let p = &found.params;
            Wire::Message(
                SubmitSharesExtended {
                    channel_id: bogus,
                    sequence_number: seq,
                    job_id: work.job.id,
                    nonce: found.nonce,
                    ntime: p.ntime,
                    version: p.version,
                    extranonce: sv2_codec::types::B0_32::new(p.extranonce.clone())
                        .unwrap_or_default(),
                }
                .into(),
            )
        },
    )
    .await
}

async fn above_target(ctx: Ctx) -> Outcome {
    let expected =
        "SubmitShares.Error for a share whose hash is above the channel target (and not a block)";
    let (mut s, channel) = match channel_with_work(&ctx, "hash above target", 0, true).await {
        Ok(x) => x,
        Err(o) => return o,
    };
    let within = answer_window(&ctx);
    for attempt in 0..3 {
        let work = match current_work(&ctx, &mut s, channel).await {
            Ok(w) => w,
            Err(o) => return o,
        };
        let mut params = work.params();
        let mut miss = None;
        for i in 0..64u32 {
            params.start_nonce = i.wrapping_mul(0x0400_0000);
            if let Some(m) = work.miss(&params) {
                if !work.is_block(&m.hash) {
                    miss = Some(m);
                    break;
                }
            }
        }
        let Some(found) = miss else {
            return Outcome::skip("the channel target is so easy that no nonce misses it");
        };
        let seq = s.sequence_number();
        if let Err(o) = s.send(&work.submit(seq, &found)).await {
            return o;
        }
        let text = share_text(&work, &found, seq);
        match answer(&mut s, channel, seq, within).await {
            Answer::Rejected(code) => {
                if moved(&s, &work) && attempt < 2 {
                    continue;
                }
                return Outcome::pass(expected, format!("{text}: SubmitShares.Error {code:?}"));
            }
            Answer::Accepted => return Outcome::fail(expected, format!("{text}: accepted")),
            Answer::Silent => {
                return Outcome::fail(
                    expected,
                    format!(
                        "{text}: no SubmitShares.Error within {within:?}{}",
                        other_errors(&s, channel, &[seq])
                    ),
                )
            }
            Answer::Ended(how) | Answer::Unreadable(how) => {
                return Outcome::fail(expected, format!("{text}: {how}"))
            }
        }
    }
    Outcome::skip("the work moved on during every attempt; cannot tell")
}

/// `target / 2` (little-endian U256).
pub(crate) fn halve(target: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut carry = 0u8;
    for i in (0..32).rev() {
        out[i] = (target[i] >> 1) | (carry << 7);
        carry = target[i] & 1;
    }
    out
}

/// Sends UpdateChannel with maximum_target = half the channel's target and waits (up to the work
/// window) for a SetTarget at or below it. Ok(new target) or the outcome.
pub(crate) async fn lower_target(
    ctx: &Ctx,
    s: &mut Session,
    channel: u32,
    expected: &str,
) -> Result<([u8; 32], [u8; 32]), Outcome> {
    let Some(state) = s.tracker.channels.get(&channel) else {
        return Err(Outcome::error(format!("channel {channel} is not known")));
    };
    let old = state.target;
    let group = state.group;
    let half = halve(&old);
    if half == [0; 32] {
        return Err(Outcome::skip(
            "the channel target is already the hardest possible",
        ));
    }
    let rate = s.nominal_hash_rate;
    s.send(
        &UpdateChannel {
            channel_id: channel,
            nominal_hash_rate: rate,
            maximum_target: U256(half),
        }
        .into(),
    )
    .await?;
    let window = ctx.target().timeout + ctx.target().work_window;
    let mut last = None;
    let got = s
        .expect_within(
            &format!(
                "SetTarget with maximum_target <= {} (half the target) within {window:?}",
                hex::encode(half.iter().rev().copied().collect::<Vec<u8>>())
            ),
            window,
            |m| match m {
                Message::SetTarget(t)
                    if t.channel_id == channel || (group != 0 && t.channel_id == group) =>
                {
                    if meets_target(&t.maximum_target.0, &half) {
                        Some(Ok(t.maximum_target.0))
                    } else {
                        last = Some(t.maximum_target.0);
                        None
                    }
                }
                Message::UpdateChannelError(e) if e.channel_id == channel => Some(Err(format!(
                    "UpdateChannel.Error {:?}",
                    crate::session::printable(e.error_code.as_bytes())
                ))),
                _ => None,
            },
        )
        .await;
    match got {
        Ok(Ok(new)) => Ok((old, new)),
        Ok(Err(e)) => Err(Outcome::fail(expected, e)),
        Err(mut o) => {
            if let Some(t) = last {
                o.observed = format!(
                    "{}; the last SetTarget was {} (above the requested maximum)",
                    o.observed,
                    hex::encode(t.iter().rev().copied().collect::<Vec<u8>>())
                );
            }
            o.expected = expected.to_string();
            Err(o)
        }
    }
}

async fn old_target(ctx: Ctx) -> Outcome {
    let expected =
        "SubmitShares.Error for a share meeting the old target but not the one SetTarget set";
    let (mut s, channel) = match channel_with_work(&ctx, "share at the old target", 0, true).await {
        Ok(x) => x,
        Err(o) => return o,
    };
    // Jobs received with min_ntime set before SetTarget keep their target (§5.3.21).
    let pinned: Vec<u32> = s
        .tracker
        .jobs
        .values()
        .flatten()
        .filter(|j| j.min_ntime.is_some())
        .map(|j| j.id)
        .collect();
    let (old, new) = match lower_target(&ctx, &mut s, channel, expected).await {
        Ok(x) => x,
        Err(o) if o.verdict == crate::verdict::Verdict::Fail => {
            return Outcome::skip(format!(
                "the target was not lowered ({}); see mining.update-channel-target",
                o.observed
            ))
        }
        Err(o) => return o,
    };
    let within = answer_window(&ctx);
    let deadline = tokio::time::Instant::now() + ctx.target().work_window;
    for attempt in 0..3 {
        let work = match current_work(&ctx, &mut s, channel).await {
            Ok(w) => w,
            Err(o) => return o,
        };
        if work.job.min_ntime.is_some() && pinned.contains(&work.job.id) {
            // The SetTarget does not apply to this job: wait for the next.
            if tokio::time::Instant::now() >= deadline {
                return Outcome::skip(
                    "no job the new target applies to (a future job, or one sent after SetTarget) within the work window",
                );
            }
            let _ = s.recv_within(SHORT * 5).await;
            continue;
        }
        let want = |f: &Found| !meets_target(&f.hash, &new);
        let found = match mine_non_block(&ctx, &work, work.params(), Some(old), want).await {
            Ok(Some(f)) => f,
            Ok(None) => {
                // Every share meeting the old target is a block: mine one anyway, judge carefully.
                let mut params = work.params();
                let mut pick = None;
                for _ in 0..256 {
                    let f = match mine_share(&ctx, &work, params.clone(), Some(old)).await {
                        Ok(f) => f,
                        Err(o) => return o,
                    };
                    if want(&f) {
                        pick = Some(f);
                        break;
                    }
                    match f.nonce.checked_add(1) {
                        Some(n) => params.start_nonce = n,
                        None => break,
                    }
                }
                match pick {
                    Some(f) => f,
                    None => return Outcome::skip("no share between the two targets was found"),
                }
            }
            Err(o) => return o,
        };
        let seq = s.sequence_number();
        if let Err(o) = s.send(&work.submit(seq, &found)).await {
            return o;
        }
        let text = share_text(&work, &found, seq);
        match answer(&mut s, channel, seq, within).await {
            Answer::Rejected(code) => {
                if moved(&s, &work) && attempt < 2 {
                    continue;
                }
                return Outcome::pass(expected, format!("{text}: SubmitShares.Error {code:?}"));
            }
            Answer::Accepted if work.is_block(&found.hash) => {
                return Outcome::skip(format!(
                    "{text}: accepted, but it is a block (every share meeting the old target is one here); a server may take blocks whatever the share target: cannot tell"
                ))
            }
            Answer::Accepted => return Outcome::fail(expected, format!("{text}: accepted")),
            Answer::Silent => {
                return Outcome::fail(
                    expected,
                    format!("{text}: no SubmitShares.Error within {within:?}"),
                )
            }
            Answer::Ended(how) | Answer::Unreadable(how) => return Outcome::fail(expected, format!("{text}: {how}")),
        }
    }
    Outcome::skip("the work moved on during every attempt; cannot tell")
}

async fn duplicate(ctx: Ctx) -> Outcome {
    let expected = "SubmitShares.Error for the second of two identical valid shares";
    let (mut s, channel) = match channel_with_work(&ctx, "duplicate share", 0, true).await {
        Ok(x) => x,
        Err(o) => return o,
    };
    let within = answer_window(&ctx);
    for attempt in 0..3u32 {
        let work = match current_work(&ctx, &mut s, channel).await {
            Ok(w) => w,
            Err(o) => return o,
        };
        let params = ShareParams {
            start_nonce: attempt.wrapping_mul(0x1000_0000),
            ..work.params()
        };
        let found = match mine_non_block(&ctx, &work, params.clone(), None, |_| true).await {
            Ok(Some(f)) => f,
            Ok(None) => match mine_share(&ctx, &work, params, None).await {
                Ok(f) => f,
                Err(o) => return o,
            },
            Err(o) => return o,
        };
        let first = s.sequence_number();
        let second = s.sequence_number();
        for seq in [first, second] {
            if let Err(o) = s.send(&work.submit(seq, &found)).await {
                return o;
            }
        }
        let text = share_text(&work, &found, first);
        // "An error is immediately submitted for every incorrect submit attempt" (§5.3.14), while a
        // Success may wait for a batch (§5.3.13): when neither share is answered, more valid shares
        // fill the batch.
        let mut first_answer = answer(&mut s, channel, first, within).await;
        if first_answer == Answer::Silent {
            first_answer = match fill_batch(&ctx, &mut s, channel, &found, first).await {
                Ok((got, _)) => got,
                Err(o) => return o,
            };
        }
        match first_answer {
            Answer::Accepted => {}
            Answer::Rejected(code) if stale(&s, &work, &code) => continue,
            Answer::Rejected(code) => {
                return Outcome::error(format!(
                    "{text}: the first (valid) share was refused: {code:?}"
                ))
            }
            Answer::Silent => {
                return Outcome::error(format!("{text}: the first (valid) share got no answer"))
            }
            Answer::Ended(how) | Answer::Unreadable(how) => {
                return Outcome::error(format!("{text}: {how}"))
            }
        }
        let block = work.is_block(&found.hash);
        return match answer(&mut s, channel, second, within).await {
            Answer::Rejected(code) => Outcome::pass(
                expected,
                format!(
                    "{text}; resent as seq {second}: SubmitShares.Error {code:?}{}",
                    if block {
                        " (the share is a block and every share is one here: the refusal may be for staleness)"
                    } else {
                        ""
                    }
                ),
            ),
            Answer::Accepted => Outcome::fail(
                expected,
                format!("{text}; resent as seq {second}: accepted again"),
            ),
            Answer::Silent => Outcome::fail(
                expected,
                format!("{text}; resent as seq {second}: no answer within {within:?}"),
            ),
            Answer::Ended(how) | Answer::Unreadable(how) => {
                Outcome::fail(expected, format!("{text}; resent as seq {second}: {how}"))
            }
        };
    }
    Outcome::skip("the work moved on during every attempt; cannot tell")
}

async fn version_mask(ctx: Ctx) -> Outcome {
    rejected_on_new_channel(
        &ctx,
        "version outside the mask",
        "SubmitShares.Error for a version differing from the job's in bit 1 (outside 0x1fffffe0)",
        Tolerate::default(),
        |work| {
            let mut p = work.params();
            p.version ^= 0x0000_0002;
            Ok((p, None))
        },
        standard_message,
    )
    .await
}

async fn version_fixed(ctx: Ctx) -> Outcome {
    let (mut s, channel) =
        match channel_with_work(&ctx, "rolled version on a fixed job", 0, true).await {
            Ok(x) => x,
            Err(o) => return o,
        };
    let fixed_flag = s
        .setup
        .as_ref()
        .is_some_and(|x| x.flags & flags::REQUIRES_FIXED_VERSION != 0);
    let allowed = s
        .tracker
        .work(channel)
        .is_some_and(|w| w.version_rolling_allowed());
    if allowed && !fixed_flag {
        return Outcome::skip(
            "the server's jobs allow version rolling (no job with version_rolling_allowed = false)",
        );
    }
    expect_rejected(
        &ctx,
        &mut s,
        channel,
        "SubmitShares.Error for a version with BIP323 bit 13 flipped on a job that forbids rolling",
        Tolerate::default(),
        |work| {
            if work.version_rolling_allowed() && !fixed_flag {
                return Err(Outcome::skip("the current job allows version rolling"));
            }
            let mut p = work.params();
            p.version ^= 1 << 13;
            Ok((p, None))
        },
        standard_message,
    )
    .await
}
