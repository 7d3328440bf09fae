//! Checks of an SV2 proxy (`--role proxy`): the suite is the pool above it and its devices below it
//! (scripted sessions, and our SV2 device where shares must come). Its upstream side is a mining
//! client, so a proxy run also has every device check (each with one of our devices below it); the
//! pool rules of the monitor judge what its downstream side sends. These are the checks of what it
//! does between the two: the hash rate it announces, the channel updates as devices come and go
//! (shared with the translator), the extranonce space it gives each device, the standard jobs it
//! makes of extended ones, and the Reconnect it keeps to itself.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sv2_codec::messages::common::Reconnect;
use sv2_codec::messages::flags::REQUIRES_STANDARD_JOBS;
use sv2_codec::messages::mining::{NewExtendedMiningJob, OpenStandardMiningChannelSuccess};
use sv2_codec::Message;

use super::translator;
use crate::check::Check;
use crate::serve;
use crate::serve::served::Opened;
use crate::serve::{ServeCtx, Served};
use crate::session::{describe, str255, Incoming, Session};
use crate::verdict::Outcome;

#[rustfmt::skip]
pub const CHECKS: &[Check] = &[
    serve!(Proxy: "proxy.mining.idle-hashrate", "5.3.2", Must, Some(69), "with no device connected yet, an open request carries nominal_hash_rate 0.0", translator::idle_hashrate),
    serve!(Proxy: "proxy.mining.device-joins", "5.3.7", Must, Some(72), "an aggregating proxy sends UpdateChannel when a second device comes", translator::miner_joins),
    serve!(Proxy: "proxy.mining.device-leaves", "5.3.9", Must, Some(71), "when a device's connection closes, CloseChannel (its own channel upstream) or UpdateChannel (an aggregated one) goes upstream", translator::miner_leaves),
    serve!(Proxy: "proxy.extranonce.unique", "5.1", Must, Some(74), "each downstream channel gets its own part of the extranonce space, inside the proxy's own upstream extranonce_prefix", unique_extranonce),
    serve!(Proxy: "proxy.jobs.standard", "5.1.2.1", Should, Some(73), "a standard channel below gets NewMiningJob whose merkle root is that of coinbase_tx_prefix + its extranonce_prefix + coinbase_tx_suffix with the extended job's merkle path", standard_jobs),
    serve!(Proxy: "proxy.reconnect.not-propagated", "3.6.5", Should, Some(22), "a Reconnect from the pool is not passed down to the devices", reconnect_kept),
];

/// How long the devices below watch for what the proxy passes down.
const WATCH: Duration = Duration::from_secs(3);

/// The proxy connected to the suite's pool and set up. Its channels upstream open while the
/// devices below connect ([`alongside`]): a proxy may wait for a device before it asks for one.
async fn upstream(ctx: &ServeCtx, label: &str) -> Result<Served, Outcome> {
    let mut s = ctx.accept(label).await?;
    s.setup().await?;
    Ok(s)
}

/// Serves the proxy's upstream connection while `script` runs against its downstream side; the
/// connection back, with what the script gave.
async fn alongside<T: Send + 'static>(
    s: Served,
    script: impl Future<Output = T> + Send + 'static,
) -> Result<(Served, T), Outcome> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let server = tokio::spawn(async move {
        let mut s = s;
        let until = s
            .serve_until(Duration::from_secs(3600), |_| flag.load(Ordering::SeqCst))
            .await;
        (s, until)
    });
    let out = script.await;
    stop.store(true, Ordering::SeqCst);
    let (s, until) = server
        .await
        .map_err(|e| Outcome::error(format!("serving the proxy's upstream side: {e}")))?;
    until?;
    Ok((s, out))
}

/// A scripted device below the proxy, set up with `flags`.
async fn device(ctx: &crate::session::Ctx, label: &str, flags: u32) -> Result<Session, Outcome> {
    ctx.setup(label, flags).await
}

/// The proxy set up with the suite's pool and, below it, a device of the suite's with a standard
/// channel that has work (the upstream served meanwhile). A refused standard channel is a skip: a
/// proxy may serve extended channels only.
async fn standard_device(
    ctx: &ServeCtx,
    label: &str,
) -> Result<(Served, Session, OpenStandardMiningChannelSuccess<'static>), Outcome> {
    let s = upstream(ctx, "the proxy upstream").await?;
    let down = ctx.downstream().await?.clone();
    let window = ctx.config().work_window;
    let label = label.to_string();
    let script = async move {
        let mut d = device(&down, &label, REQUIRES_STANDARD_JOBS).await?;
        let channel = d.open_standard().await?;
        d.wait_for_work(channel.channel_id, window).await?;
        Ok::<_, Outcome>((d, channel))
    };
    let (s, result) = alongside(s, script).await?;
    let (d, channel) = result?;
    Ok((s, d, channel))
}

/// One downstream channel's part of the extranonce space: its label, prefix and the bytes left
/// to its device.
type Space = (String, Vec<u8>, usize);

async fn unique_extranonce(ctx: ServeCtx) -> Outcome {
    let s = match upstream(&ctx, "the proxy upstream").await {
        Ok(u) => u,
        Err(o) => return o,
    };
    let down = match ctx.downstream().await {
        Ok(d) => d.clone(),
        Err(o) => return o,
    };
    let script = async move {
        let mut spaces: Vec<Space> = Vec::new();
        let mut notes = Vec::new();
        let mut sessions = Vec::new();
        for (label, standard) in [
            ("device A (extended)", false),
            ("device B (extended)", false),
            ("device C (standard)", true),
            ("device D (standard)", true),
        ] {
            let flags = if standard { REQUIRES_STANDARD_JOBS } else { 0 };
            let mut d = device(&down, label, flags).await?;
            if standard {
                match d.open_standard().await {
                    Ok(c) => {
                        spaces.push((label.into(), c.extranonce_prefix.as_bytes().to_vec(), 0))
                    }
                    // A proxy may serve extended channels only: the others are compared.
                    Err(o) => notes.push(format!("{label}: {}", o.observed)),
                }
            } else {
                match d.open_extended(1).await {
                    Ok(c) => spaces.push((
                        label.into(),
                        c.extranonce_prefix.as_bytes().to_vec(),
                        usize::from(c.extranonce_size),
                    )),
                    // A proxy may serve standard channels only.
                    Err(o) => notes.push(format!("{label}: {}", o.observed)),
                }
            }
            sessions.push(d);
        }
        Ok::<_, Outcome>((spaces, notes))
    };
    let (s, result) = match alongside(s, script).await {
        Ok(r) => r,
        Err(o) => return o,
    };
    let (spaces, notes) = match result {
        Ok(r) => r,
        Err(o) => return o,
    };
    if s.opened.is_empty() {
        return Outcome::error("the proxy opened no channel upstream for its devices");
    }
    if spaces.len() < 2 {
        return Outcome::error(format!(
            "fewer than two downstream channels opened, nothing to compare ({})",
            notes.join("; ")
        ));
    }
    judge_spaces(&s.opened, &spaces, &notes)
}

/// Whether the spaces are disjoint (no prefix begins another) and each lies in the space of one
/// of the proxy's upstream channels: under its prefix, with the same total extranonce length (a
/// standard channel's prefix is its whole extranonce).
fn judge_spaces(upstream: &[Opened], spaces: &[Space], notes: &[String]) -> Outcome {
    let shown: Vec<String> = spaces
        .iter()
        .map(|(label, prefix, size)| format!("{label}: {} + {size} byte(s)", hex::encode(prefix)))
        .collect();
    let mut problems = Vec::new();
    for (i, (a, pa, size)) in spaces.iter().enumerate() {
        let inside = upstream.iter().any(|u| {
            pa.starts_with(&u.extranonce_prefix)
                && pa.len() + size == u.extranonce_prefix.len() + u.extranonce_size
        });
        if !inside {
            problems.push(format!(
                "{a}'s {} + {size} byte(s) is not the space of any upstream channel (under its \
                 prefix, as long in all)",
                hex::encode(pa)
            ));
        }
        for (b, pb, _) in &spaces[i + 1..] {
            if pa.starts_with(pb) || pb.starts_with(pa) {
                problems.push(format!("{a} and {b} overlap"));
            }
        }
    }
    let upstreams: Vec<String> = upstream
        .iter()
        .map(|u| {
            format!(
                "{} + {}",
                hex::encode(&u.extranonce_prefix),
                u.extranonce_size
            )
        })
        .collect();
    let mut observed = shown.join("; ");
    if !notes.is_empty() {
        observed.push_str(&format!(" ({})", notes.join("; ")));
    }
    if !problems.is_empty() {
        observed = format!("{}: {observed}", problems.join(", "));
    }
    Outcome::judge(
        problems.is_empty(),
        format!(
            "{} downstream channels in disjoint parts of the extranonce space of the proxy's \
             upstream channel(s) {}",
            spaces.len(),
            upstreams.join(", ")
        ),
        observed,
    )
}

async fn standard_jobs(ctx: ServeCtx) -> Outcome {
    let (s, mut d, channel) = match standard_device(&ctx, "a standard device").await {
        Ok(r) => r,
        Err(o) => return o,
    };
    // What else comes within a moment (a job sent after the first).
    d.collect(Duration::from_millis(500)).await;
    let jobs = d.received();
    let prefix = channel.extranonce_prefix.as_bytes().to_vec();
    let sent = s.sent();
    let extended: Vec<&NewExtendedMiningJob<'static>> = sent
        .iter()
        .filter_map(|m| match m {
            Message::NewExtendedMiningJob(j) => Some(j),
            _ => None,
        })
        .collect();
    // A proxy that opened a standard channel upstream for the device may pass its jobs on.
    let standard: Vec<(u32, [u8; 32])> = sent
        .iter()
        .filter_map(|m| match m {
            Message::NewMiningJob(j) => Some((j.version, j.merkle_root.0)),
            _ => None,
        })
        .collect();
    let mut problems = Vec::new();
    let mut matched = 0;
    for job in &jobs {
        match job {
            Message::NewMiningJob(j) if j.channel_id == channel.channel_id => {
                let found = standard.contains(&(j.version, j.merkle_root.0))
                    || extended.iter().any(|e| {
                        e.version == j.version
                            && sv2_chain::merkle::coinbase_merkle_root(
                                e.coinbase_tx_prefix.as_bytes(),
                                &prefix,
                                &[],
                                e.coinbase_tx_suffix.as_bytes(),
                                &e.merkle_path.iter().map(|h| h.0).collect::<Vec<_>>(),
                            ) == j.merkle_root.0
                    });
                if found {
                    matched += 1;
                } else {
                    problems.push(format!(
                        "job {}: merkle root {} is none of the {} extended job(s) with the \
                         channel's extranonce_prefix {} (nor of the {} standard one(s)) the \
                         suite sent",
                        j.job_id,
                        hex::encode(j.merkle_root.0),
                        extended.len(),
                        hex::encode(&prefix),
                        standard.len()
                    ));
                }
            }
            Message::NewExtendedMiningJob(j) if j.channel_id == channel.channel_id => problems
                .push(format!(
                    "job {}: NewExtendedMiningJob on a standard channel opened with \
                     REQUIRES_STANDARD_JOBS",
                    j.job_id
                )),
            _ => {}
        }
    }
    if matched == 0 && problems.is_empty() {
        return Outcome::error("the standard channel got work but no job for itself");
    }
    Outcome::judge(
        problems.is_empty(),
        format!(
            "every job on standard channel {} a NewMiningJob with the merkle root of an extended \
             job sent to the proxy, for extranonce_prefix {}",
            channel.channel_id,
            hex::encode(&prefix)
        ),
        if problems.is_empty() {
            format!("{matched} job(s), each matching")
        } else {
            problems.join("; ")
        },
    )
}

async fn reconnect_kept(ctx: ServeCtx) -> Outcome {
    let (mut s, mut d, _) = match standard_device(&ctx, "a device").await {
        Ok(r) => r,
        Err(o) => return o,
    };
    // To the suite's own listener, named in full: a propagated Reconnect carries these values
    // (one the proxy makes of its own, to itself say, does not), and the proxy, moving, finds the
    // suite there, which serves it.
    let host = ctx.endpoint().host.clone();
    let port = ctx.endpoint().port;
    let reconnect = Reconnect {
        new_host: str255(&host),
        new_port: port,
    };
    if let Err(o) = s.send(&Message::Reconnect(reconnect)).await {
        return o;
    }
    s.note(format!("Reconnect to {host}:{port} sent to the proxy"));
    let moved = ctx.clone();
    ctx.background(async move {
        if let Ok(mut again) = moved.accept("the proxy, moved").await {
            if again.setup().await.is_ok() {
                let _ = again.serve_until(Duration::from_secs(600), |_| false).await;
            }
        }
    });
    let wait = WATCH + ctx.config().timeout;
    let deadline = tokio::time::Instant::now() + wait;
    let mut propagated = Vec::new();
    let mut own = Vec::new();
    let ended = loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            break None;
        }
        match d.recv_within(left).await {
            Incoming::Message(m) => {
                if let Message::Reconnect(r) = &m.message {
                    if r.new_port == port && r.new_host.as_bytes() == host.as_bytes() {
                        propagated.push(describe(&m.message));
                    } else {
                        own.push(describe(&m.message));
                    }
                }
            }
            Incoming::Timeout | Incoming::Unreadable(_) => {}
            other => break Some(other.describe()),
        }
    };
    let expected = format!(
        "no Reconnect to {host}:{port} (the pool's) on the device's connection within {wait:?}"
    );
    if !propagated.is_empty() {
        return Outcome::fail(
            expected,
            format!("the device got {}", propagated.join("; ")),
        );
    }
    if d.unreadable_type.is_some() && !d.unreadable_is_none_of(&["Reconnect"]) {
        return Outcome::error(
            "the device got a frame that could not be read: it may have been the Reconnect",
        );
    }
    let mut seen = "not passed down".to_string();
    if !own.is_empty() {
        seen.push_str(&format!(
            "; a Reconnect of the proxy's own came ({}), not the pool's",
            own.join("; ")
        ));
    }
    if let Some(how) = ended {
        seen.push_str(&format!("; the device's connection then ended: {how}"));
    }
    Outcome::pass(expected, seen)
}
