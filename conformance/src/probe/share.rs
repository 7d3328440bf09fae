//! The probe's share step: mine on the pool's current work with the engine's threads, submit what
//! they find, and wait for the first SubmitShares.Success or .Error, following new jobs, prev hashes
//! and targets meanwhile.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sv2_chain::display_hex;
use sv2_chain::target::hashes_per_share;
use sv2_codec::Message;
use sv2_engine::{Backend, MinerConfig};
use sv2_mock::miner::runner::{EngineError, EngineRunner};
use sv2_mock::work::{Tracker, Work};
use sv2_wire::{Connection, NetError, Tap, Tapped};
use tokio::net::TcpStream;

use super::{failure, lossy, reconnect_target, since_last, ProbeConfig, Report};
use crate::verdict::Verdict;

/// Engine work ids are the SV2 job ids: a share found on an older job is recognised and skipped.
fn engine_job(work: &Work) -> sv2_engine::Job {
    work.engine_job(u64::from(work.job.id), 0)
}

/// What stops the step early, besides an answer.
fn engine_failure(e: &EngineError) -> String {
    match e {
        EngineError::Job(e) => format!("job cannot be mined: {e}"),
        e => format!("engine: {e}"),
    }
}

pub(super) async fn share_step(
    conn: &mut Connection<Tapped<TcpStream>>,
    tap: &Tap,
    report: &mut Report,
    mut tracker: Tracker,
    mut work: Work,
    config: &ProbeConfig,
) {
    let t = Instant::now();
    let mark = tap.mark();
    let deadline = t + Duration::from_secs_f64(config.share_timeout.max(0.1));
    let engine_config = MinerConfig {
        threads: config.threads.max(1),
        backend: Backend::detect(),
        ..MinerConfig::default()
    };
    // Every share found is submitted: no rate cap.
    let (mut engine, mut shares) = EngineRunner::new(engine_config, u32::MAX);
    if let Err(e) = engine.replace_job(engine_job(&work)) {
        report.add("share", Verdict::Fail, t, engine_failure(&e), Value::Null);
        engine.stop().await;
        return;
    }
    let expected = hashes_per_share(&work.channel.target);
    let channel_id = work.channel.id;
    let mut sequence = 0u32;
    let (mut stale, mut switched_jobs) = (0u32, false);
    let mut submitted: Vec<Value> = Vec::new();
    let mut last_sent: Option<Instant> = None;
    let outcome: Result<(Verdict, String), NetError> = loop {
        let now = Instant::now();
        if now >= deadline {
            break Ok((
                if sequence == 0 {
                    Verdict::Skip
                } else {
                    Verdict::Fail
                },
                if sequence == 0 {
                    format!("no share found in {:.0} s (about {expected:.3e} hashes per share at this target)", config.share_timeout)
                } else {
                    format!("{sequence} share(s) submitted, no SubmitShares.Success or .Error within {:.0} s", config.share_timeout)
                },
            ));
        }
        tokio::select! {
            share = shares.recv() => {
                let Some(share) = share else {
                    break Ok((Verdict::Fail, "the mining engine stopped".into()));
                };
                if share.job_id != u64::from(work.job.id) {
                    continue;
                }
                sequence += 1;
                let message = work.submit_share(sequence, share.nonce, share.ntime, share.version, share.extranonce.as_slice());
                submitted.push(json!({"sequence_number": sequence, "job_id": work.job.id, "nonce": share.nonce, "ntime": share.ntime, "version": share.version, "extranonce": hex::encode(share.extranonce.as_slice()), "hash": display_hex(&share.hash)}));
                if let Err(e) = conn.send(&message).await {
                    break Err(e);
                }
                tracker.sent(&message);
                last_sent = Some(Instant::now());
            }
            received = conn.recv("share answer", deadline.saturating_duration_since(now)) => match received {
                Ok(d) => {
                    tracker.received(&d.message);
                    // A new job (activated by a prev hash, or sent active), a new target (§5.3.18:
                    // for shares from now on) or a new extranonce prefix: mine on it.
                    if let Some(next) = tracker.work(channel_id).filter(|w| *w != work) {
                        switched_jobs |= next.job.id != work.job.id;
                        work = next;
                        let _ = engine.replace_job(engine_job(&work));
                    }
                    match d.message {
                        Message::SubmitSharesSuccess(s) => break Ok((Verdict::Pass, format!(
                            "accepted: SubmitShares.Success last_sequence_number {}, new_submits_accepted_count {}, new_shares_sum {} ({} submitted in {:.1} s; answered {} after the last)",
                            s.last_sequence_number, s.new_submits_accepted_count, s.new_shares_sum, sequence, t.elapsed().as_secs_f64(), since_last(last_sent)))),
                        // A share sent just before the pool moved to a new block is stale through no
                        // fault of either side (at regtest difficulty every share is a block): noted,
                        // and the probe waits for an answer to a current share.
                        Message::SubmitSharesError(e) if e.error_code.as_bytes() == b"stale-share" && switched_jobs => {
                            stale += 1;
                        }
                        Message::SubmitSharesError(e) => break Ok((Verdict::Fail, format!(
                            "rejected: SubmitShares.Error {:?} for sequence_number {} ({} submitted; answered {} after the last)",
                            e.error_code.as_str().unwrap_or("<not UTF-8>"), e.sequence_number, sequence, since_last(last_sent)))),
                        Message::CloseChannel(c) if c.channel_id == channel_id => break Ok((Verdict::Fail, format!(
                            "the pool closed the channel: CloseChannel reason_code {:?} ({sequence} share(s) submitted before that)",
                            lossy(c.reason_code.as_bytes())))),
                        Message::Reconnect(r) => break Ok((Verdict::Fail, format!(
                            "the pool asked to reconnect: Reconnect to {} (not followed; {sequence} share(s) submitted before that)",
                            reconnect_target(r.new_host.as_bytes(), r.new_port)))),
                        _ => {}
                    }
                }
                Err(NetError::Timeout { .. }) => continue,
                Err(e) => break Err(e),
            },
        }
    };
    engine.clear_job();
    engine.stop().await;
    let mut data = json!({
        "submitted": submitted,
        "stale": stale,
        "expected_hashes_per_share": expected,
        "round_trip_ms": last_sent.map(|s| s.elapsed().as_secs_f64() * 1000.0),
    });
    match outcome {
        Ok((status, detail)) => report.add("share", status, t, detail, data),
        Err(e) => {
            let (mut detail, failed) = failure(&e, tap, mark);
            detail.push_str(&format!("; {sequence} share(s) submitted before that"));
            if let (Value::Object(data), Value::Object(failed)) = (&mut data, failed) {
                data.extend(failed);
            }
            report.add("share", Verdict::Fail, t, detail, data);
        }
    }
}
