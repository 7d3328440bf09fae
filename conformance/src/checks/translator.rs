//! Checks of a translator (`--role translator`): SV1 miners below it (the suite's own SV1 client,
//! started per check), the suite as its SV2 pool above. Its upstream side is a mining client, so a
//! translator run also has every device check (each with an SV1 miner below it); these are the
//! checks of what it does between the two sides: the hash rate it announces, the channel updates as
//! miners come and go, the work and extranonces it gives its miners, and the shares it carries up.

use std::time::Duration;

use sv2_chain::target::meets_target;
use sv2_codec::Message;
use sv2_mock::sv1::Sv1Event;

use crate::check::Check;
use crate::serve;
use crate::serve::served::{Opened, Until};
use crate::serve::{ServeCtx, Served, Sv1Events};
use crate::session::{describe, Incoming};
use crate::verdict::Outcome;

#[rustfmt::skip]
pub const CHECKS: &[Check] = &[
    serve!(Translator: "translator.mining.idle-hashrate", "5.3.2", Must, Some(69), "with no miner connected yet, an open request carries nominal_hash_rate 0.0", idle_hashrate),
    serve!(Translator: "translator.mining.miner-joins", "5.3.7", Must, Some(72), "an aggregating translator sends UpdateChannel when a second miner comes", miner_joins),
    serve!(Translator: "translator.mining.miner-leaves", "5.3.9", Must, Some(71), "when a miner's connection closes, CloseChannel (its own channel) or UpdateChannel (an aggregated one) goes upstream", miner_leaves),
    serve!(Translator: "translator.sv1.extranonce", "5.3.12", Should, None, "extranonce1 begins with the channel's extranonce_prefix, and extranonce1 and extranonce2 fill the channel's whole extranonce", sv1_extranonce),
    serve!(Translator: "translator.sv1.clean-jobs", "5.3.17", Must, Some(66), "after SetNewPrevHash, the miners get a mining.notify with clean_jobs true", sv1_clean_jobs),
    serve!(Translator: "translator.shares.forwarded", "5.3.11", Should, None, "every SV1 share that meets the channel's target goes upstream as a share", shares_forwarded),
];

/// Time the translator has to react to a miner coming or going (the spec lets an aggregating proxy
/// debounce UpdateChannel to one a second).
const REACTION: Duration = Duration::from_secs(3);

/// How long a share may be on its way up after the SV1 miner reported it.
const IN_FLIGHT: Duration = Duration::from_secs(1);

/// The translator (or proxy) set up, a miner below it, and the channel it opened for it.
async fn translating(ctx: &ServeCtx, label: &str) -> Result<(Served, Opened, Sv1Events), Outcome> {
    let mut s = ctx.accept(label).await?;
    s.setup().await?;
    let miner = ctx.miner_below("sv2-conformance.sv1-1").await?;
    let opened = s.open_channel().await?;
    Ok((s, opened, miner))
}

/// The events the miner reported so far.
fn drain(miner: &mut Sv1Events) -> Vec<Sv1Event> {
    let mut events = Vec::new();
    while let Ok(event) = miner.events.try_recv() {
        events.push(event);
    }
    events
}

/// Serves until a share was accepted upstream (the chain works), keeping the miner's events.
async fn working(
    ctx: &ServeCtx,
    s: &mut Served,
    miner: &mut Sv1Events,
    events: &mut Vec<Sv1Event>,
) -> Result<(), Outcome> {
    let window = ctx.config().work_window;
    let (until, verdicts) = s.serve_shares(1, window).await?;
    events.extend(drain(miner));
    if verdicts.iter().any(|v| v.error.is_none()) {
        return Ok(());
    }
    Err(Outcome::error(match until {
        Until::Ended(how) => format!("the connection ended before a share came: {how}"),
        _ => format!("no share came up from the miner below within {window:?}"),
    }))
}

/// The client's messages after `since`, other than shares.
fn received_since(s: &Served, since: Duration) -> Vec<&Message<'static>> {
    s.received
        .iter()
        .filter(|(at, _)| *at >= since)
        .map(|(_, m)| m)
        .collect()
}

pub(crate) async fn idle_hashrate(ctx: ServeCtx) -> Outcome {
    if !ctx.config().launcher.starts_clients() {
        // A client that reconnects by itself may still have the previous check's miners.
        return Outcome::skip(
            "the suite did not start the client: miners from the previous check may still be \
             connected below it, so an idle client cannot be ensured",
        );
    }
    let mut s = match ctx.accept("no miner yet").await {
        Ok(s) => s,
        Err(o) => return o,
    };
    if let Err(o) = s.setup().await {
        return o;
    }
    let expected = "nominal_hash_rate 0.0 in an open request sent with no miner connected";
    match s.recv_within(ctx.config().timeout).await {
        Incoming::Message(d) => {
            let rate = match &d.message {
                Message::OpenStandardMiningChannel(m) => m.nominal_hash_rate,
                Message::OpenExtendedMiningChannel(m) => m.nominal_hash_rate,
                other => {
                    return Outcome::error(format!(
                        "with no miner connected, the {} sent {}",
                        ctx.role().as_str(),
                        describe(other)
                    ))
                }
            };
            Outcome::judge(
                rate == 0.0,
                expected,
                format!(
                    "with no miner connected, it asked for a channel with nominal_hash_rate {rate}"
                ),
            )
        }
        Incoming::Timeout => Outcome::skip(format!(
            "the {} opened no channel in the {:?} with no miner connected: the rule does not arise",
            ctx.role().as_str(),
            ctx.config().timeout
        )),
        other => Outcome::error(format!("after setup: {}", other.describe())),
    }
}

/// The nominal hash rate the translator last announced for `channel`: its open request, then
/// each UpdateChannel.
fn announced(s: &Served, channel_id: u32) -> Option<f32> {
    let mut rate = None;
    for (_, m) in &s.received {
        match m {
            Message::OpenStandardMiningChannel(o) if rate.is_none() => {
                rate = Some(o.nominal_hash_rate)
            }
            Message::OpenExtendedMiningChannel(o) if rate.is_none() => {
                rate = Some(o.nominal_hash_rate)
            }
            Message::UpdateChannel(u) if u.channel_id == channel_id => {
                rate = Some(u.nominal_hash_rate)
            }
            _ => {}
        }
    }
    rate
}

pub(crate) async fn miner_joins(ctx: ServeCtx) -> Outcome {
    let (mut s, opened, mut first) = match translating(&ctx, "a second miner joins").await {
        Ok(t) => t,
        Err(o) => return o,
    };
    let mut events = Vec::new();
    if let Err(o) = working(&ctx, &mut s, &mut first, &mut events).await {
        return o;
    }
    // Let its view of the first miner settle (a debounced update), then a second miner.
    if let Err(o) = s.serve_until(REACTION, |_| false).await {
        return o;
    }
    let before = announced(&s, opened.channel_id).unwrap_or(0.0);
    let since = s.elapsed();
    if let Err(o) = ctx.miner_below("sv2-conformance.sv1-2").await {
        return o;
    }
    let channels = s.opened.len();
    let wait = REACTION + ctx.config().timeout;
    // §5.3.7 asks for the message, not a particular rate: any UpdateChannel on the channel.
    let grew = |s: &Served| {
        s.opened.len() > channels
            || received_since(s, since).iter().any(
                |m| matches!(m, Message::UpdateChannel(u) if u.channel_id == opened.channel_id),
            )
    };
    if let Err(o) = s.serve_until(wait, grew).await {
        return o;
    }
    if s.opened.len() > channels {
        return Outcome::skip(
            "it opened a channel for the second miner: it does not aggregate, so no UpdateChannel \
             is due",
        );
    }
    let updates: Vec<String> = received_since(&s, since)
        .iter()
        .filter_map(|m| match m {
            Message::UpdateChannel(u) => Some(format!(
                "UpdateChannel(channel {}, nominal_hash_rate {})",
                u.channel_id, u.nominal_hash_rate
            )),
            _ => None,
        })
        .collect();
    let ok = grew(&s);
    Outcome::judge(
        ok,
        format!(
            "within {wait:?} of the second miner, UpdateChannel on channel {} (it announced {before} h/s before)",
            opened.channel_id
        ),
        if updates.is_empty() {
            "no UpdateChannel came".to_string()
        } else {
            updates.join("; ")
        },
    )
}

pub(crate) async fn miner_leaves(ctx: ServeCtx) -> Outcome {
    let (mut s, opened, mut first) = match translating(&ctx, "a miner leaves").await {
        Ok(t) => t,
        Err(o) => return o,
    };
    let mut events = Vec::new();
    if let Err(o) = working(&ctx, &mut s, &mut first, &mut events).await {
        return o;
    }
    let channels_before = s.opened.len();
    let second = match ctx.miner_below("sv2-conformance.sv1-2").await {
        Ok(m) => m,
        Err(o) => return o,
    };
    // Both miners counted (a debounced update included), then the second one leaves.
    if let Err(o) = s.serve_until(REACTION * 2, |_| false).await {
        return o;
    }
    // Its own channel, when the translator opened one for it; else the aggregated one.
    let own: Vec<u32> = s.opened[channels_before..]
        .iter()
        .map(|c| c.channel_id)
        .collect();
    let announced_before = announced(&s, opened.channel_id).unwrap_or(0.0);
    let since = s.elapsed();
    ctx.stop_miner(&second);
    s.note("the suite's second miner below disconnects");
    let wait = REACTION + ctx.config().timeout;
    let told = |s: &Served| {
        received_since(s, since).iter().any(|m| match m {
            Message::CloseChannel(c) => own.contains(&c.channel_id),
            Message::UpdateChannel(u) => {
                u.channel_id == opened.channel_id && u.nominal_hash_rate < announced_before
            }
            _ => false,
        })
    };
    let until = match s.serve_until(wait, told).await {
        Ok(u) => u,
        Err(o) => return o,
    };
    let what: Vec<String> = received_since(&s, since)
        .iter()
        .filter(|m| matches!(m, Message::UpdateChannel(_) | Message::CloseChannel(_)))
        .map(|m| describe(m))
        .collect();
    let expected = if own.is_empty() {
        format!(
            "within {wait:?} of a miner's disconnection, UpdateChannel on channel {} below the \
             {announced_before} h/s announced with both",
            opened.channel_id
        )
    } else {
        format!("within {wait:?} of a miner's disconnection, CloseChannel for its channel {own:?}")
    };
    Outcome::judge(
        told(&s),
        expected,
        if what.is_empty() {
            match until {
                Until::Ended(how) => format!("nothing before the connection ended: {how}"),
                _ => "neither came".to_string(),
            }
        } else {
            what.join("; ")
        },
    )
}

async fn sv1_extranonce(ctx: ServeCtx) -> Outcome {
    let (mut s, opened, mut miner) = match translating(&ctx, "the miners' extranonces").await {
        Ok(t) => t,
        Err(o) => return o,
    };
    if !opened.extended {
        return Outcome::skip("the translator opened a standard channel: no extranonce to share");
    }
    // Until the miner has a job on the channel (its extranonce is then final for that job).
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + ctx.config().work_window;
    while !events
        .iter()
        .any(|e| matches!(e, Sv1Event::JobReceived { .. }))
    {
        if tokio::time::Instant::now() >= deadline {
            return Outcome::error("the SV1 miner got no job from the translator");
        }
        if let Err(o) = s.serve_until(Duration::from_millis(200), |_| false).await {
            return o;
        }
        events.extend(drain(&mut miner));
    }
    // The extranonce the miner mines with: the last one it was given.
    let Some((extranonce1, extranonce2_size)) = events.iter().rev().find_map(|e| match e {
        Sv1Event::Subscribed {
            extranonce1,
            extranonce2_size,
        }
        | Sv1Event::ExtranonceChanged {
            extranonce1,
            extranonce2_size,
        } => Some((extranonce1.clone(), *extranonce2_size)),
        _ => None,
    }) else {
        return Outcome::error("the SV1 miner reported no extranonce");
    };
    let whole = opened.extranonce_prefix.len() + opened.extranonce_size;
    let given = extranonce1.len() + extranonce2_size;
    let starts = extranonce1.starts_with(&opened.extranonce_prefix);
    Outcome::judge(
        starts && given == whole,
        format!(
            "extranonce1 begins with the prefix {} and with extranonce2 makes {whole} bytes",
            hex::encode(&opened.extranonce_prefix)
        ),
        format!(
            "extranonce1 {} ({} bytes), extranonce2_size {extranonce2_size}: {given} bytes{}",
            hex::encode(&extranonce1),
            extranonce1.len(),
            if starts {
                ""
            } else {
                ", not beginning with the prefix"
            }
        ),
    )
}

async fn sv1_clean_jobs(ctx: ServeCtx) -> Outcome {
    let (mut s, _, mut miner) = match translating(&ctx, "a new block for the miners").await {
        Ok(t) => t,
        Err(o) => return o,
    };
    let mut events = Vec::new();
    if let Err(o) = working(&ctx, &mut s, &mut miner, &mut events).await {
        return o;
    }
    drain(&mut miner);
    s.note("the suite sends a new block's future job and SetNewPrevHash");
    if let Err(o) = s.pool_event(|pool, now| pool.new_block(now)).await {
        return o;
    }
    let wait = ctx.config().timeout;
    if let Err(o) = s.serve_until(wait, |_| false).await {
        return o;
    }
    let jobs: Vec<(String, bool)> = drain(&mut miner)
        .into_iter()
        .filter_map(|e| match e {
            Sv1Event::JobReceived {
                job_id, clean_jobs, ..
            } => Some((job_id, clean_jobs)),
            _ => None,
        })
        .collect();
    let clean = jobs.iter().any(|(_, clean)| *clean);
    Outcome::judge(
        clean,
        format!("within {wait:?} of SetNewPrevHash, a mining.notify with clean_jobs true"),
        if jobs.is_empty() {
            "no mining.notify came".to_string()
        } else {
            jobs.iter()
                .map(|(id, clean)| format!("mining.notify job {id} clean_jobs {clean}"))
                .collect::<Vec<_>>()
                .join("; ")
        },
    )
}

async fn shares_forwarded(ctx: ServeCtx) -> Outcome {
    let (mut s, opened, mut miner) = match translating(&ctx, "shares carried up").await {
        Ok(t) => t,
        Err(o) => return o,
    };
    let mut events = Vec::new();
    if let Err(o) = working(&ctx, &mut s, &mut miner, &mut events).await {
        return o;
    }
    events.clear();
    drain(&mut miner);
    let window = ctx.config().work_window;
    let started = s.elapsed();
    // The miner's reports, stamped as they are read (every 200 ms).
    let mut stamped: Vec<(Duration, Sv1Event)> = Vec::new();
    while s.elapsed() < started + window {
        if let Err(o) = s.serve_until(Duration::from_millis(200), |_| false).await {
            return o;
        }
        let at = s.elapsed();
        stamped.extend(drain(&mut miner).into_iter().map(|e| (at, e)));
    }
    // The hardest target the channel had (a translator may drop what an easier one let through);
    // shares reported in the last second may still be on their way up.
    let mut target = opened.target;
    for (channel, t) in &s.targets {
        // meets_target(a, b): a <= b, so `t` is the harder one.
        if *channel == opened.channel_id && meets_target(t, &target) {
            target = *t;
        }
    }
    let cutoff = s.elapsed().saturating_sub(IN_FLIGHT);
    let submitted: Vec<(u32, u32, u32)> = stamped
        .into_iter()
        .filter(|(at, _)| *at <= cutoff)
        .filter_map(|(_, e)| match e {
            Sv1Event::ShareSubmitted {
                nonce,
                ntime,
                version,
                hash,
                problem: None,
                ..
            } if meets_target(&hash, &target) => Some((nonce, ntime, version)),
            _ => None,
        })
        .collect();
    let upstream: Vec<(u32, u32, u32)> = s
        .shares
        .iter()
        .filter(|v| v.at >= started)
        .map(|v| (v.nonce, v.ntime, v.version))
        .collect();
    let judged = submitted.len();
    if judged == 0 {
        return Outcome::error(format!(
            "the SV1 miner found {} shares at the channel's target in {window:?}: too few to judge",
            submitted.len()
        ));
    }
    let missing: Vec<String> = submitted[..judged]
        .iter()
        .filter(|share| !upstream.contains(share))
        .take(5)
        .map(|(nonce, ntime, version)| {
            format!("nonce {nonce:#010x} ntime {ntime} version {version:#010x}")
        })
        .collect();
    Outcome::judge(
        missing.is_empty(),
        "every SV1 share at the channel's target submitted upstream",
        if missing.is_empty() {
            format!("{judged} SV1 shares at the target, all came up")
        } else {
            format!(
                "of {judged} SV1 shares at the channel's target, these never came up: {}",
                missing.join("; ")
            )
        },
    )
}
