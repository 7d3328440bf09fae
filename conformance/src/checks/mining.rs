//! Mining-protocol server checks: channels, jobs, targets (spec §5, CATALOG §F 39-64). Share checks
//! are in [`super::shares`]; per-message rules every connection is judged by are the monitor's.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use sv2_chain::target::meets_target;
use sv2_codec::messages::flags;
use sv2_codec::messages::mining::{
    CloseChannel, OpenExtendedMiningChannel, SetCustomMiningJob, UpdateChannel,
};
use sv2_codec::types::{Seq0_255, B0_255, B0_64K, U256};
use sv2_codec::Message;

use super::shares::{
    answer, answer_window, channel_with_work, lower_target, mine_share, settle, Answer, SHORT,
};
use crate::active;
use crate::check::Check;
use crate::session::{describe, printable, str255, Ctx, Incoming, Session};
use crate::verdict::Outcome;
use crate::verdict::Verdict;
use sv2_mock::work::{JobBody, Work};

pub const CHECKS: &[Check] = &[
    active!("mining.both-channel-kinds", "5.2.2", Must, Some(39), "a standard and an extended channel both open (unless .Success set REQUIRES_EXTENDED_CHANNELS: then the standard one is refused)", both_channel_kinds),
    active!("mining.max-target", "5.3.2", Must, Some(40), "OpenStandardMiningChannel with max_target = 1 gets OpenMiningChannel.Error, or .Success with target <= 1", max_target),
    active!("mining.unique-ids", "5.2", Must, Some(41), "60 channels (both kinds) on one connection: distinct channel ids, and no group id equal to a channel id", unique_ids),
    active!("mining.request-id-echo", "5.3.3", Must, Some(42), "pipelined Open*Channel requests with non-sequential request_ids each get one answer echoing their id, of their kind", request_id_echo),
    active!("mining.extranonce-size", "5.3.5", Should, Some(43), "min_extranonce_size 8 gets extranonce_size >= 8 with prefix + size <= 32; min_extranonce_size 33 gets OpenMiningChannel.Error", extranonce_size),
    active!("mining.standard-first-job", "5.3.15", Must, Some(44), "a new standard channel's first job is a future NewMiningJob, then a SetNewPrevHash naming it", standard_first_job),
    active!("mining.standard-jobs-flag", "5.3.1", Must, Some(48), "with REQUIRES_STANDARD_JOBS, no NewExtendedMiningJob and no SetGroupChannel, also across a new block", standard_jobs_flag),
    active!("mining.version-rolling-flag", "5.3.1", Must, Some(49), "with REQUIRES_VERSION_ROLLING, no REQUIRES_FIXED_VERSION in .Success and every job allows version rolling", version_rolling_flag),
    active!("mining.update-channel-target", "5.3.7", Must, Some(53), "UpdateChannel with maximum_target = target / 2 gets SetTarget <= that (and no UpdateChannel.Error)", update_channel_target),
    active!("mining.update-channel-unknown", "5.3.8", Should, Some(53), "UpdateChannel for a channel id never opened gets UpdateChannel.Error", update_channel_unknown),
    active!("mining.close-channel", "5.3.9", Must, Some(54), "after CloseChannel for one of two channels, new work comes for the other and no frame for the closed one", close_channel),
    active!("mining.close-group", "5.3.9", Must, Some(55), "after CloseChannel for a group id, a valid share on a member channel is not accepted (silence, an error or a close)", close_group),
    active!("mining.custom-job-unrequested", "5.3.18", Should, Some(61), "SetCustomMiningJob on a connection without REQUIRES_WORK_SELECTION is not committed to: .Error, silence or a close (the spec binds the client, not the server)", custom_job_unrequested),
    active!("mining.custom-job-standard", "5.3.18", Should, Some(62), "with REQUIRES_WORK_SELECTION, SetCustomMiningJob on a standard channel is not committed to: .Error, silence or a close (the spec binds the client)", custom_job_standard),
];

/// The answer to one Open*Channel request.
#[derive(Debug, Clone)]
enum Opened {
    Standard {
        channel_id: u32,
        group: u32,
        target: [u8; 32],
    },
    Extended {
        channel_id: u32,
        group: u32,
        target: [u8; 32],
        extranonce_size: u16,
        prefix_len: usize,
    },
    Refused(String),
}

impl std::fmt::Display for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Opened::Standard {
                channel_id,
                group,
                target,
            } => write!(
                f,
                "standard channel {channel_id} (group {group}, target {})",
                target_hex(target)
            ),
            Opened::Extended {
                channel_id,
                group,
                target,
                extranonce_size,
                prefix_len,
            } => write!(
                f,
                "extended channel {channel_id} (group {group}, target {}, extranonce_size {extranonce_size}, prefix {prefix_len} bytes)",
                target_hex(target)
            ),
            Opened::Refused(code) => write!(f, "OpenMiningChannel.Error {code:?}"),
        }
    }
}

impl Opened {
    fn of(message: &Message<'_>) -> Option<(u32, Opened)> {
        match message {
            Message::OpenStandardMiningChannelSuccess(m) => Some((
                m.request_id,
                Opened::Standard {
                    channel_id: m.channel_id,
                    group: m.group_channel_id,
                    target: m.target.0,
                },
            )),
            Message::OpenExtendedMiningChannelSuccess(m) => Some((
                m.request_id,
                Opened::Extended {
                    channel_id: m.channel_id,
                    group: m.group_channel_id,
                    target: m.target.0,
                    extranonce_size: m.extranonce_size,
                    prefix_len: m.extranonce_prefix.as_bytes().len(),
                },
            )),
            Message::OpenMiningChannelError(m) => Some((
                m.request_id,
                Opened::Refused(printable(m.error_code.as_bytes())),
            )),
            _ => None,
        }
    }
}

/// Reads until every request in `pending` is answered (or `within` passes, or the connection ends);
/// answers by request_id in arrival order (a request answered twice appears twice). Other messages go
/// to `seen`.
async fn answers(
    s: &mut Session,
    mut pending: BTreeSet<u32>,
    within: Duration,
    seen: &mut Vec<Message<'static>>,
) -> (Vec<(u32, Opened)>, Option<String>) {
    let deadline = tokio::time::Instant::now() + within;
    let mut got = Vec::new();
    while !pending.is_empty() {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return (got, None);
        }
        match s.recv_within(left).await {
            Incoming::Message(d) => match Opened::of(&d.message) {
                Some((id, o)) => {
                    pending.remove(&id);
                    got.push((id, o));
                }
                None => seen.push(d.message),
            },
            Incoming::Timeout => return (got, None),
            // A frame that cannot be read but is no answer to an open (its header says so): the
            // monitor's strict-decoding rule judges it; the answers may still come.
            Incoming::Unreadable(_)
                if s.unreadable_is_none_of(&[
                    "OpenStandardMiningChannel.Success",
                    "OpenExtendedMiningChannel.Success",
                    "OpenMiningChannel.Error",
                ]) => {}
            other => return (got, Some(other.describe())),
        }
    }
    (got, None)
}

/// Sends one open request and waits for its answer.
async fn open_one(
    ctx: &Ctx,
    s: &mut Session,
    request_id: u32,
    message: Message<'static>,
) -> Result<Opened, Outcome> {
    s.send(&message).await?;
    let mut seen = Vec::new();
    let (got, end) = answers(
        s,
        BTreeSet::from([request_id]),
        ctx.target().timeout,
        &mut seen,
    )
    .await;
    match got.into_iter().find(|(id, _)| *id == request_id) {
        Some((_, o)) => Ok(o),
        None => Err(Outcome::fail(
            format!(
                "an answer to {} with request_id {request_id}",
                message.name()
            ),
            end.unwrap_or_else(|| format!("nothing within {:?}", ctx.target().timeout)),
        )),
    }
}

/// A step another check is about (opening a channel) failed on the way to this check's subject: the
/// subject was not reached, so this check is an error naming what went wrong, never a failure of
/// its own requirement. Other outcomes pass through.
fn precondition(outcome: Outcome, what: &str) -> Outcome {
    if outcome.verdict == Verdict::Fail {
        Outcome::error(format!(
            "precondition not met ({what}): expected {}, observed {}",
            outcome.expected, outcome.observed
        ))
    } else {
        outcome
    }
}

fn requires_extended(s: &Session) -> bool {
    s.setup
        .as_ref()
        .is_some_and(|x| x.flags & flags::REQUIRES_EXTENDED_CHANNELS != 0)
}

fn target_hex(t: &[u8; 32]) -> String {
    hex::encode(t.iter().rev().copied().collect::<Vec<u8>>())
}

async fn both_channel_kinds(ctx: Ctx) -> Outcome {
    let mut s = match ctx.setup("both channel kinds", 0).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    let extended_only = requires_extended(&s);
    let id = s.request_id();
    let msg = s.open_standard_message(id);
    let standard = match open_one(&ctx, &mut s, id, msg).await {
        Ok(o) => o,
        Err(o) => return o,
    };
    let id = s.request_id();
    let msg = s.open_extended_message(id, 0);
    let extended = match open_one(&ctx, &mut s, id, msg).await {
        Ok(o) => o,
        Err(o) => return o,
    };
    let observed = format!("standard: {standard}; extended: {extended}");
    if extended_only {
        let expected = "with REQUIRES_EXTENDED_CHANNELS: the standard channel refused, the extended one opened";
        Outcome::judge(
            matches!(standard, Opened::Refused(_)) && matches!(extended, Opened::Extended { .. }),
            expected,
            observed,
        )
    } else {
        let expected =
            "both channels opened (SetupConnection.Success did not set REQUIRES_EXTENDED_CHANNELS)";
        Outcome::judge(
            matches!(standard, Opened::Standard { .. })
                && matches!(extended, Opened::Extended { .. }),
            expected,
            observed,
        )
    }
}

async fn max_target(ctx: Ctx) -> Outcome {
    let expected = "OpenMiningChannel.Error, or .Success with target <= max_target (1)";
    let mut s = match ctx.setup("max_target 1", 0).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    let mut one = [0u8; 32];
    one[0] = 1;
    let id = s.request_id();
    let msg = if requires_extended(&s) {
        OpenExtendedMiningChannel {
            request_id: id,
            user_identity: str255(&s.user_identity),
            nominal_hash_rate: s.nominal_hash_rate,
            max_target: U256(one),
            min_extranonce_size: 0,
        }
        .into()
    } else {
        s.open_standard_with_max(id, one)
    };
    match open_one(&ctx, &mut s, id, msg).await {
        Ok(Opened::Refused(code)) => {
            Outcome::pass(expected, format!("OpenMiningChannel.Error {code:?}"))
        }
        Ok(Opened::Standard { target, .. }) | Ok(Opened::Extended { target, .. }) => {
            Outcome::judge(
                meets_target(&target, &one),
                expected,
                format!(".Success with target {}", target_hex(&target)),
            )
        }
        Err(o) => o,
    }
}

async fn unique_ids(ctx: Ctx) -> Outcome {
    const N: u32 = 60;
    let expected =
        format!("{N} channels: distinct channel ids; group ids distinct from every channel id");
    let mut s = match ctx.setup("60 channels", 0).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    let extended_only = requires_extended(&s);
    let mut pending = BTreeSet::new();
    for i in 0..N {
        let id = s.request_id();
        let msg = if extended_only || i % 2 == 1 {
            s.open_extended_message(id, 0)
        } else {
            s.open_standard_message(id)
        };
        if let Err(o) = s.send(&msg).await {
            return o;
        }
        pending.insert(id);
    }
    let mut seen = Vec::new();
    let within = ctx.target().timeout * 3;
    let (got, end) = answers(&mut s, pending, within, &mut seen).await;
    // SetGroupChannel may come after the last answer.
    let (more, _) = s.collect(SHORT * 3).await;
    seen.extend(more);
    let mut channels: BTreeMap<u32, u32> = BTreeMap::new(); // channel id -> times given
    let mut groups = BTreeSet::new();
    let mut refused = 0;
    for (_, o) in &got {
        match o {
            Opened::Standard {
                channel_id, group, ..
            }
            | Opened::Extended {
                channel_id, group, ..
            } => {
                *channels.entry(*channel_id).or_default() += 1;
                if *group != 0 {
                    groups.insert(*group);
                }
            }
            Opened::Refused(_) => refused += 1,
        }
    }
    for m in &seen {
        if let Message::SetGroupChannel(g) = m {
            groups.insert(g.group_channel_id);
        }
    }
    let opened: u32 = channels.values().sum();
    if opened < 2 {
        return Outcome::skip(format!(
            "only {opened} channels opened ({refused} refused{})",
            end.map(|e| format!(", then {e}")).unwrap_or_default()
        ));
    }
    let reused: Vec<String> = channels
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, n)| format!("channel id {id} given {n} times"))
        .collect();
    let clashes: Vec<String> = groups
        .iter()
        .filter(|g| channels.contains_key(g))
        .map(|g| format!("group id {g} is also a channel id"))
        .collect();
    let observed = format!(
        "{opened} opened, {refused} refused, {} distinct channel ids, groups {:?}",
        channels.len(),
        groups
    );
    if reused.is_empty() && clashes.is_empty() {
        Outcome::pass(expected, observed)
    } else {
        Outcome::fail(
            expected,
            format!("{observed}: {}", [reused, clashes].concat().join("; ")),
        )
    }
}

async fn request_id_echo(ctx: Ctx) -> Outcome {
    let expected = "each request_id (0x7fff0001, 17, 0xdeadbeef, 3) answered exactly once, by a message of its channel kind";
    let mut s = match ctx.setup("request_id echo", 0).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    let extended_only = requires_extended(&s);
    let requests = [
        (0x7fff_0001u32, true),
        (17, extended_only),
        (0xdead_beef, true),
        (3, extended_only),
    ];
    for (id, extended) in requests {
        let msg = if extended {
            s.open_extended_message(id, 0)
        } else {
            s.open_standard_message(id)
        };
        if let Err(o) = s.send(&msg).await {
            return o;
        }
    }
    let pending: BTreeSet<u32> = requests.iter().map(|(id, _)| *id).collect();
    let mut seen = Vec::new();
    let (got, end) = answers(&mut s, pending, ctx.target().timeout * 2, &mut seen).await;
    let (more, _) = s.collect(SHORT * 3).await;
    let mut got = got;
    got.extend(more.iter().filter_map(Opened::of));
    let mut problems = Vec::new();
    for (id, extended) in requests {
        let answers: Vec<&Opened> = got
            .iter()
            .filter(|(r, _)| *r == id)
            .map(|(_, o)| o)
            .collect();
        match answers.as_slice() {
            [] => problems.push(format!("request_id {id:#x}: no answer")),
            [one] => match (one, extended) {
                (Opened::Standard { .. }, true) => problems.push(format!(
                    "request_id {id:#x} (extended) answered by OpenStandardMiningChannel.Success"
                )),
                (Opened::Extended { .. }, false) => problems.push(format!(
                    "request_id {id:#x} (standard) answered by OpenExtendedMiningChannel.Success"
                )),
                _ => {}
            },
            many => problems.push(format!("request_id {id:#x}: {} answers", many.len())),
        }
    }
    for (id, o) in &got {
        if !requests.iter().any(|(r, _)| r == id) {
            problems.push(format!(
                "an answer with request_id {id:#x}, never sent: {o}"
            ));
        }
    }
    let observed = format!(
        "answers: {}{}",
        got.iter()
            .map(|(id, o)| format!("{id:#x} -> {o}"))
            .collect::<Vec<_>>()
            .join("; "),
        end.map(|e| format!("; then {e}")).unwrap_or_default()
    );
    if problems.is_empty() {
        Outcome::pass(expected, observed)
    } else {
        Outcome::fail(expected, format!("{}; {observed}", problems.join("; ")))
    }
}

async fn extranonce_size(ctx: Ctx) -> Outcome {
    let expected = "min 8: extranonce_size >= 8 and prefix + size <= 32 (or a refusal); min 33: OpenMiningChannel.Error";
    let mut s = match ctx.setup("min_extranonce_size", 0).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    let id = s.request_id();
    let msg = s.open_extended_message(id, 8);
    let eight = match open_one(&ctx, &mut s, id, msg).await {
        Ok(o) => o,
        Err(o) => return o,
    };
    let id = s.request_id();
    let msg = s.open_extended_message(id, 33);
    let big = match open_one(&ctx, &mut s, id, msg).await {
        Ok(o) => o,
        Err(o) => return o,
    };
    let mut problems = Vec::new();
    if let Opened::Extended {
        extranonce_size,
        prefix_len,
        ..
    } = &eight
    {
        if *extranonce_size < 8 {
            problems.push(format!("min 8 got extranonce_size {extranonce_size}"));
        }
        if prefix_len + usize::from(*extranonce_size) > 32 {
            problems.push(format!(
                "min 8 got prefix {prefix_len} + size {extranonce_size} > 32 bytes"
            ));
        }
    }
    if !matches!(big, Opened::Refused(_)) {
        problems.push(format!("min 33 was not refused: {big}"));
    }
    let observed = format!("min 8: {eight}; min 33: {big}");
    if problems.is_empty() {
        Outcome::pass(expected, observed)
    } else {
        Outcome::fail(expected, format!("{}; {observed}", problems.join("; ")))
    }
}

/// The channel id a channel message is addressed to (its first field), if any.
fn addressed(message: &Message<'_>) -> Option<u32> {
    if !message.channel_msg() {
        return None;
    }
    let mut payload = Vec::new();
    message.encode_fields(&mut payload);
    payload.first_chunk::<4>().map(|b| u32::from_le_bytes(*b))
}

fn is_work(message: &Message<'_>) -> bool {
    matches!(
        message,
        Message::NewMiningJob(_) | Message::NewExtendedMiningJob(_) | Message::SetNewPrevHash(_)
    )
}

async fn standard_first_job(ctx: Ctx) -> Outcome {
    // With REQUIRES_STANDARD_JOBS the channel's jobs can only be NewMiningJob. A server that
    // refuses the flag is asked again without it: then a group channel's NewExtendedMiningJob is
    // the standard channel's work too (05:558), and counts as its first job.
    let (mut s, standard_only) = match ctx
        .setup(
            "standard channel's first job",
            flags::REQUIRES_STANDARD_JOBS,
        )
        .await
    {
        Ok(s) => (s, true),
        Err(_) => match ctx.setup("standard channel's first job", 0).await {
            Ok(s) => (s, false),
            Err(o) => return o,
        },
    };
    let expected = if standard_only {
        "NewMiningJob for the channel with min_ntime empty, then SetNewPrevHash naming its job_id"
    } else {
        "NewMiningJob for the channel (or NewExtendedMiningJob for its group) with min_ntime empty, then SetNewPrevHash naming its job_id"
    };
    if requires_extended(&s) {
        return Outcome::skip("the server requires extended channels");
    }
    let id = s.request_id();
    let msg = s.open_standard_message(id);
    let (channel, group) = match open_one(&ctx, &mut s, id, msg).await {
        Ok(Opened::Standard {
            channel_id, group, ..
        }) => (channel_id, group),
        Ok(other) => return Outcome::skip(format!("no standard channel: {other}")),
        Err(o) => return precondition(o, "a standard channel"),
    };
    let ours = |m: &Message<'_>| {
        addressed(m).is_some_and(|a| a == channel || (group != 0 && a == group)) && is_work(m)
    };
    let mut first: Option<Message<'static>> = None;
    let deadline = tokio::time::Instant::now() + ctx.target().work_window;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Outcome::fail(
                expected,
                match &first {
                    None => format!(
                        "no job for the channel within {:?}",
                        ctx.target().work_window
                    ),
                    Some(m) => format!("{}, then no SetNewPrevHash naming it", describe(m)),
                },
            );
        }
        let m = match s.recv_within(left).await {
            Incoming::Message(d) => d.message,
            Incoming::Timeout => continue,
            other => return Outcome::fail(expected, other.describe()),
        };
        if !ours(&m) {
            continue;
        }
        match (&first, &m) {
            (None, Message::NewMiningJob(j))
                if j.channel_id == channel && j.min_ntime.is_none() =>
            {
                first = Some(m);
            }
            (None, Message::NewExtendedMiningJob(j))
                if !standard_only
                    && group != 0
                    && j.channel_id == group
                    && j.min_ntime.is_none() =>
            {
                first = Some(m);
            }
            (None, _) => {
                return Outcome::fail(
                    expected,
                    format!("the first job message for the channel: {}", describe(&m)),
                )
            }
            (Some(f), Message::SetNewPrevHash(p)) => {
                let job_id = match f {
                    Message::NewMiningJob(j) => j.job_id,
                    Message::NewExtendedMiningJob(j) => j.job_id,
                    _ => return Outcome::error("unreachable: the first job is a job"),
                };
                let observed = format!("{}, then {}", describe(f), describe(&m));
                return Outcome::judge(p.job_id == job_id, expected, observed);
            }
            // Further future jobs may come before the prev hash.
            (Some(_), Message::NewMiningJob(j)) if j.min_ntime.is_none() => {}
            (Some(_), Message::NewExtendedMiningJob(j)) if j.min_ntime.is_none() => {}
            (Some(f), _) => {
                return Outcome::fail(expected, format!("{}, then {}", describe(f), describe(&m)))
            }
        }
    }
}

/// A share on `channel`'s current work, sent without waiting for its answer (to make a regtest
/// server find a block and move on). Returns whether one was sent.
async fn nudge(ctx: &Ctx, s: &mut Session, channel: u32) -> bool {
    let Some(work) = s.tracker.work(channel) else {
        return false;
    };
    let Ok(found) = mine_share(ctx, &work, work.params(), None).await else {
        return false;
    };
    let seq = s.sequence_number();
    s.send(&work.submit(seq, &found)).await.is_ok()
}

async fn standard_jobs_flag(ctx: Ctx) -> Outcome {
    let expected = "no NewExtendedMiningJob and no SetGroupChannel on the connection";
    let mut s = match ctx
        .setup("REQUIRES_STANDARD_JOBS", flags::REQUIRES_STANDARD_JOBS)
        .await
    {
        Ok(s) => s,
        Err(o) => {
            return Outcome::skip(format!(
                "the server does not take REQUIRES_STANDARD_JOBS: {}",
                o.observed
            ))
        }
    };
    let mut seen: Vec<Message<'static>> = Vec::new();
    let mut channels = Vec::new();
    for _ in 0..2 {
        let id = s.request_id();
        let msg = s.open_standard_message(id);
        if let Err(o) = s.send(&msg).await {
            return o;
        }
        let (got, end) = answers(
            &mut s,
            BTreeSet::from([id]),
            ctx.target().timeout,
            &mut seen,
        )
        .await;
        match got.first() {
            Some((_, Opened::Standard { channel_id, .. })) => channels.push(*channel_id),
            Some((_, other)) => return Outcome::skip(format!("no standard channel: {other}")),
            None => {
                return Outcome::fail(
                    "an answer to OpenStandardMiningChannel",
                    end.unwrap_or_else(|| "nothing".into()),
                )
            }
        }
    }
    // Let the work come, then make it move (a share is a block on regtest).
    let (more, _) = s.collect(ctx.target().timeout).await;
    seen.extend(more);
    let nudged = nudge(&ctx, &mut s, channels[0]).await;
    let (more, _) = s.collect(ctx.target().timeout).await;
    seen.extend(more);
    let bad: Vec<String> = seen
        .iter()
        .filter(|m| {
            matches!(
                m,
                Message::NewExtendedMiningJob(_) | Message::SetGroupChannel(_)
            )
        })
        .take(3)
        .map(|m| describe(m))
        .collect();
    let standard_jobs = seen
        .iter()
        .filter(|m| matches!(m, Message::NewMiningJob(_)))
        .count();
    if !bad.is_empty() {
        return Outcome::fail(expected, bad.join("; "));
    }
    if standard_jobs == 0 {
        return Outcome::skip("no job at all came on the connection: cannot tell");
    }
    Outcome::pass(
        expected,
        format!(
            "{standard_jobs} NewMiningJob, no extended job or group{}",
            if nudged {
                " (a share was sent to move the work)"
            } else {
                ""
            }
        ),
    )
}

async fn version_rolling_flag(ctx: Ctx) -> Outcome {
    let expected = "no REQUIRES_FIXED_VERSION in .Success; every NewExtendedMiningJob has version_rolling_allowed = true";
    let (mut s, channel) = match channel_with_work(
        &ctx,
        "REQUIRES_VERSION_ROLLING",
        flags::REQUIRES_VERSION_ROLLING,
        true,
    )
    .await
    {
        Ok(x) => x,
        Err(o) if o.verdict == crate::verdict::Verdict::Error && o.observed.contains("refused") => {
            return Outcome::skip(format!(
                "the server does not take REQUIRES_VERSION_ROLLING: {}",
                o.observed
            ))
        }
        Err(o) => return o,
    };
    let success_flags = s.setup.as_ref().map_or(0, |x| x.flags);
    if success_flags & flags::REQUIRES_FIXED_VERSION != 0 {
        return Outcome::fail(
            expected,
            format!("SetupConnection.Success flags {success_flags:#x} (REQUIRES_FIXED_VERSION)"),
        );
    }
    let nudged = nudge(&ctx, &mut s, channel).await;
    if let Err(o) = settle(&mut s, SHORT * 5).await {
        return o;
    }
    let mut jobs = 0;
    let mut fixed = Vec::new();
    for list in s.tracker.jobs.values() {
        for j in list {
            if let JobBody::Extended {
                version_rolling_allowed,
                ..
            } = j.body
            {
                jobs += 1;
                if !version_rolling_allowed {
                    fixed.push(j.id);
                }
            }
        }
    }
    if !fixed.is_empty() {
        return Outcome::fail(
            expected,
            format!("jobs {fixed:?} have version_rolling_allowed = false"),
        );
    }
    Outcome::pass(
        expected,
        format!(
            "flags {success_flags:#x}; {jobs} extended jobs, all allowing rolling{}",
            if nudged {
                " (across a share sent to move the work)"
            } else {
                ""
            }
        ),
    )
}

async fn update_channel_target(ctx: Ctx) -> Outcome {
    let expected =
        "SetTarget with maximum_target <= the requested maximum_target, no UpdateChannel.Error";
    let (mut s, channel) = match channel_with_work(&ctx, "UpdateChannel", 0, true).await {
        Ok(x) => x,
        Err(o) => return o,
    };
    match lower_target(&ctx, &mut s, channel, expected).await {
        Ok((old, new)) => Outcome::pass(
            expected,
            format!(
                "target {} -> SetTarget {}",
                target_hex(&old),
                target_hex(&new)
            ),
        ),
        Err(o) => o,
    }
}

async fn update_channel_unknown(ctx: Ctx) -> Outcome {
    let expected = "UpdateChannel.Error for the unknown channel id";
    let (mut s, channel) = match channel_with_work(&ctx, "UpdateChannel unknown id", 0, true).await
    {
        Ok(x) => x,
        Err(o) => return o,
    };
    let mut bogus = channel.wrapping_add(0x0100_0000);
    while bogus == 0
        || s.tracker.channels.contains_key(&bogus)
        || s.tracker.channels.values().any(|c| c.group == bogus)
    {
        bogus = bogus.wrapping_add(1);
    }
    let rate = s.nominal_hash_rate;
    if let Err(o) = s
        .send(
            &UpdateChannel {
                channel_id: bogus,
                nominal_hash_rate: rate,
                maximum_target: U256([0xff; 32]),
            }
            .into(),
        )
        .await
    {
        return o;
    }
    match s
        .expect(expected, |m| match m {
            Message::UpdateChannelError(e) => {
                Some(describe(&Message::UpdateChannelError(e.clone())))
            }
            _ => None,
        })
        .await
    {
        Ok(text) => Outcome::pass(expected, text),
        Err(o) => o,
    }
}

/// Opens two channels for the close checks: standard ones (with REQUIRES_STANDARD_JOBS when
/// `per_channel`, so that jobs name each channel), or extended ones if standard channels are not
/// served. Returns the session and both channel ids, with work.
async fn two_channels(
    ctx: &Ctx,
    label: &str,
    per_channel: bool,
) -> Result<(Session, u32, u32), Outcome> {
    let mut s = if per_channel {
        match ctx.setup(label, flags::REQUIRES_STANDARD_JOBS).await {
            Ok(s) => s,
            Err(_) => ctx.setup(label, 0).await?,
        }
    } else {
        ctx.setup(label, 0).await?
    };
    let mut ids = Vec::new();
    for _ in 0..2 {
        let id = s.request_id();
        let msg = if requires_extended(&s) {
            s.open_extended_message(id, 0)
        } else {
            s.open_standard_message(id)
        };
        let opened = open_one(ctx, &mut s, id, msg)
            .await
            .map_err(|o| precondition(o, "two open channels"))?;
        match opened {
            Opened::Standard { channel_id, .. } | Opened::Extended { channel_id, .. } => {
                ids.push(channel_id)
            }
            Opened::Refused(code) => {
                return Err(Outcome::skip(format!("a channel was refused: {code:?}")))
            }
        }
    }
    for &id in &ids {
        s.wait_for_work(id, ctx.target().work_window)
            .await
            .map_err(|o| precondition(o, "work on both channels"))?;
    }
    Ok((s, ids[0], ids[1]))
}

async fn close_channel(ctx: Ctx) -> Outcome {
    let expected = "after CloseChannel: new work for the open channel, nothing for the closed one (share answers aside)";
    let (mut s, closed, open) = match two_channels(&ctx, "CloseChannel", true).await {
        Ok(x) => x,
        Err(o) => return o,
    };
    if let Err(o) = settle(&mut s, SHORT).await {
        return o;
    }
    let open_group = s.tracker.channels.get(&open).map_or(0, |c| c.group);
    if let Err(o) = s
        .send(
            &CloseChannel {
                channel_id: closed,
                reason_code: str255("conformance-close"),
            }
            .into(),
        )
        .await
    {
        return o;
    }
    // What comes within the in-flight window may have crossed the close (monitor::IN_FLIGHT): read
    // it, judge it not. Then make the work move (a share is a block on regtest) and watch.
    let (_, end) = s.collect(crate::monitor::IN_FLIGHT).await;
    if let Some(end) = end {
        return Outcome::error(format!(
            "cannot judge past {} right after CloseChannel",
            end.describe()
        ));
    }
    let nudged = nudge(&ctx, &mut s, open).await;
    let deadline = tokio::time::Instant::now() + ctx.target().work_window;
    let mut new_work: Option<tokio::time::Instant> = None;
    let mut violations = Vec::new();
    loop {
        let now = tokio::time::Instant::now();
        let stop = match new_work {
            Some(at) => (at + ctx.target().timeout / 2).min(deadline),
            None => deadline,
        };
        let left = stop.saturating_duration_since(now);
        if left.is_zero() {
            break;
        }
        let m = match s.recv_within(left).await {
            Incoming::Message(d) => d.message,
            Incoming::Timeout => break,
            // Which channel an unreadable frame was for cannot be told: the monitor's strict
            // decoding rule judges it; this check cannot.
            other => return Outcome::error(format!("cannot judge past {}", other.describe())),
        };
        let to = addressed(&m);
        if to == Some(closed)
            && !matches!(
                m,
                Message::SubmitSharesSuccess(_) | Message::SubmitSharesError(_)
            )
        {
            violations.push(describe(&m));
        }
        if let Message::SetGroupChannel(g) = &m {
            if g.channel_ids.iter().any(|c| *c == closed) {
                violations.push(describe(&m));
            }
        }
        if is_work(&m)
            && to.is_some_and(|a| a == open || (open_group != 0 && a == open_group))
            && new_work.is_none()
        {
            new_work = Some(tokio::time::Instant::now());
        }
    }
    if !violations.is_empty() {
        return Outcome::fail(
            expected,
            format!(
                "for closed channel {closed}: {}",
                violations
                    .into_iter()
                    .take(3)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        );
    }
    if new_work.is_none() {
        return Outcome::skip(format!(
            "no new work for the open channel within {:?}{}: cannot tell",
            ctx.target().work_window,
            if nudged {
                " (a share was sent to move it)"
            } else {
                ""
            }
        ));
    }
    Outcome::pass(
        expected,
        format!("channel {closed} closed; new work came for channel {open}, nothing for {closed}"),
    )
}

async fn close_group(ctx: Ctx) -> Outcome {
    // §5.3.9: the channels are closed and "the server MUST stop sending messages for the
    // channel": silence is the most literal answer, an .Error or a close are fine too.
    let expected =
        "no acceptance (silence, SubmitShares.Error or a close) of a valid share on a member of the closed group";
    let (mut s, member, _other) = match two_channels(&ctx, "CloseChannel on a group", false).await {
        Ok(x) => x,
        Err(o) => return o,
    };
    if let Err(o) = settle(&mut s, SHORT).await {
        return o;
    }
    let group = s.tracker.channels.get(&member).map_or(0, |c| c.group);
    if group == 0 || group == member {
        return Outcome::skip("the channels are in no group");
    }
    let Some(work) = s.tracker.work(member) else {
        return Outcome::error("no work on the member channel");
    };
    let found = match mine_share(&ctx, &work, work.params(), None).await {
        Ok(f) => f,
        Err(o) => return o,
    };
    if let Err(o) = s
        .send(
            &CloseChannel {
                channel_id: group,
                reason_code: str255("conformance-close-group"),
            }
            .into(),
        )
        .await
    {
        return o;
    }
    if let Err(o) = settle(&mut s, SHORT).await {
        return o;
    }
    let seq = s.sequence_number();
    if let Err(o) = s.send(&work.submit(seq, &found)).await {
        return o;
    }
    let within = answer_window(&ctx);
    let text = format!(
        "group {group} closed; share seq {seq} on member {member}, job {}",
        work.job.id
    );
    match answer(&mut s, member, seq, within).await {
        Answer::Rejected(code) => {
            Outcome::pass(expected, format!("{text}: SubmitShares.Error {code:?}"))
        }
        Answer::Accepted => Outcome::fail(expected, format!("{text}: accepted")),
        Answer::Silent => Outcome::pass(expected, format!("{text}: no answer within {within:?}")),
        Answer::Ended(how) => Outcome::pass(expected, format!("{text}: {how}")),
        Answer::Unreadable(how) => Outcome::fail(expected, format!("{text}: {how}")),
    }
}

/// A SetCustomMiningJob built from the channel's current work (plausible fields; the token is
/// made up, since no Job Declarator issued one).
fn custom_job(work: &Work, request_id: u32) -> Message<'static> {
    let path = match &work.job.body {
        JobBody::Extended { path, .. } => path.iter().map(|h| U256(*h)).collect(),
        JobBody::Standard { .. } => Vec::new(),
    };
    // One output: 0 sat to OP_RETURN, CompactSize-prefixed.
    let outputs = vec![0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x6a];
    SetCustomMiningJob {
        channel_id: work.channel.id,
        request_id,
        mining_job_token: B0_255::new(b"conformance-token".to_vec()).unwrap_or_default(),
        version: work.job.version,
        prev_hash: U256(work.prev.prev_hash),
        min_ntime: work.prev.min_ntime,
        nbits: work.prev.nbits,
        coinbase_tx_version: 2,
        coinbase_prefix: B0_255::new(vec![0x03, 0x01, 0x02, 0x03]).unwrap_or_default(),
        coinbase_tx_input_n_sequence: 0xffff_ffff,
        coinbase_tx_outputs: B0_64K::new(outputs).unwrap_or_default(),
        coinbase_tx_locktime: 0,
        merkle_path: Seq0_255::new(path).unwrap_or_default(),
    }
    .into()
}

/// Sends a SetCustomMiningJob on `channel` and expects it refused (.Error echoing request_id, or a
/// close).
async fn custom_job_refused(ctx: &Ctx, s: &mut Session, channel: u32, expected: &str) -> Outcome {
    let Some(work) = s.tracker.work(channel) else {
        return Outcome::error("no work on the channel");
    };
    let request_id = 0x0c05_7011;
    if let Err(o) = s.send(&custom_job(&work, request_id)).await {
        return o;
    }
    let deadline = tokio::time::Instant::now() + ctx.target().timeout;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            // §5.3.18: a pool may not commit "by timeout".
            return Outcome::pass(
                expected,
                format!("no answer within {:?}", ctx.target().timeout),
            );
        }
        match s.recv_within(left).await {
            Incoming::Message(d) => match &d.message {
                Message::SetCustomMiningJobError(e) if e.request_id == request_id => {
                    return Outcome::pass(expected, describe(&d.message))
                }
                Message::SetCustomMiningJobSuccess(m) if m.request_id == request_id => {
                    return Outcome::fail(expected, describe(&d.message))
                }
                // An .Error naming another request still commits to nothing (the request_id
                // echo is not what this check judges).
                Message::SetCustomMiningJobError(_) => {
                    return Outcome::pass(
                        expected,
                        format!(
                            "{} (its request_id is not the request's {request_id:#x})",
                            describe(&d.message)
                        ),
                    )
                }
                Message::SetCustomMiningJobSuccess(_) => {
                    return Outcome::fail(
                        format!("{expected}, echoing request_id {request_id:#x}"),
                        describe(&d.message),
                    )
                }
                _ => {}
            },
            Incoming::Timeout => {}
            // A frame that cannot be read may be a malformed .Success: not a refusal.
            unreadable @ Incoming::Unreadable(_) => {
                return Outcome::fail(expected, unreadable.describe())
            }
            end => return Outcome::pass(expected, end.describe()),
        }
    }
}

async fn custom_job_unrequested(ctx: Ctx) -> Outcome {
    let expected = "no commitment without REQUIRES_WORK_SELECTION: SetCustomMiningJob.Error, silence or a close";
    let (mut s, channel) =
        match channel_with_work(&ctx, "SetCustomMiningJob unrequested", 0, true).await {
            Ok(x) => x,
            Err(o) => return o,
        };
    custom_job_refused(&ctx, &mut s, channel, expected).await
}

async fn custom_job_standard(ctx: Ctx) -> Outcome {
    let expected =
        "no commitment on a standard channel: SetCustomMiningJob.Error, silence or a close";
    let mut s = match ctx
        .setup(
            "SetCustomMiningJob on a standard channel",
            flags::REQUIRES_WORK_SELECTION,
        )
        .await
    {
        Ok(s) => s,
        Err(o) => {
            return Outcome::skip(format!(
                "the server does not take REQUIRES_WORK_SELECTION: {}",
                o.observed
            ))
        }
    };
    let id = s.request_id();
    let msg = s.open_standard_message(id);
    let channel = match open_one(&ctx, &mut s, id, msg).await {
        Ok(Opened::Standard { channel_id, .. }) => channel_id,
        Ok(other) => {
            return Outcome::skip(format!(
                "no standard channel with REQUIRES_WORK_SELECTION: {other}"
            ))
        }
        Err(o) => return precondition(o, "a standard channel"),
    };
    if let Err(o) = s.wait_for_work(channel, ctx.target().work_window).await {
        return o;
    }
    custom_job_refused(&ctx, &mut s, channel, expected).await
}
