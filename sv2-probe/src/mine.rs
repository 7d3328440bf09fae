//! `sv2-probe mine URL`: mine on an SV2 pool with the built-in engine, with live statistics.
//!
//! The mock SV2 mining device (mock-roles' `miner`): Noise with the URL's authority key, SetupConnection,
//! one standard or extended channel, jobs mined by the SIMD engine, shares checked again before they are
//! submitted, and every rule of the spec the pool breaks reported with its section and level: the
//! conformance monitor follows the device's transcript live (the device itself does not judge).

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use sv2_chain::display_hex;
use sv2_chain::target::difficulty;
use sv2_codec::noise::keys::Sv2Url;
use sv2_engine::{Backend, MinerConfig};

use sv2_conformance::monitor::{self, Finding, Monitor};
use sv2_mock::miner::driver::{spawn, DeviceDriverConfig, Observer, Security, Timeouts};
use sv2_mock::miner::{ChannelKind, Event};
use sv2_wire::Side;

use crate::outcome::Outcome;
use crate::progress::Status;

pub const LONG_ABOUT: &str = "\
Mine on an SV2 pool with the built-in SIMD engine and print live statistics (hash rate, jobs, shares \
found, submitted, accepted, rejected) every second, and every event (channel opened, jobs, shares, \
rejections with their error code, protocol violations with their spec section).

URL: stratum2+tcp://host:port/<authority key> (no key with --plaintext). Runs until --seconds have \
passed, the pool closes the connection, or Ctrl-C. Each step of the connection (TCP, handshake, \
setup, channel, first job) must finish within --timeout, and the pool may stay silent while mining \
for at most --idle-timeout. Exit code 1 when the connection failed or ended early, a share was \
rejected (a share whose job a new block replaced while it was in flight is stale through nobody's \
fault, whatever code the pool answers with, \"stale-share\" or \"invalid-job-id\": such shares are \
counted apart, not as failures, unless nothing was accepted) or the pool broke a rule; 2 on a usage \
error.";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// stratum2+tcp://host:port/<authority key>
    #[arg(value_name = "URL")]
    pub url: String,
    /// Open a standard channel instead of an extended one.
    #[arg(long)]
    pub standard: bool,
    /// user_identity for the channel.
    #[arg(long, default_value = "sv2-probe.miner")]
    pub user: String,
    /// Nominal hash rate announced for the channel, in H/s.
    #[arg(long, default_value_t = 1e6)]
    pub hashrate: f32,
    /// Mining threads.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Engine backend (default: the fastest this CPU has; see `sv2-probe hashrate`).
    #[arg(long)]
    pub backend: Option<String>,
    /// Stop after this many seconds (default: until Ctrl-C).
    #[arg(long)]
    pub seconds: Option<f64>,
    /// Seconds each connection step (TCP, handshake, setup, channel, first job) may take.
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
    /// Seconds the pool may stay silent while mining before the miner gives up.
    #[arg(long, default_value_t = 300.0)]
    pub idle_timeout: f64,
    /// Speak plain frames, without Noise (the URL must carry no authority key).
    #[arg(long)]
    pub plaintext: bool,
    /// Save the device's conversation as a pcapng capture at FILE when it stops (its last stretch,
    /// as the transcript retains it), with the key log beside it as FILE.keylog.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<std::path::PathBuf>,
    /// Print JSON lines (stats and events) instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &Args, out: &mut dyn Write, _err: &mut dyn Write) -> anyhow::Result<Outcome> {
    let url: Sv2Url = args.url.parse().context("URL")?;
    let backend = match &args.backend {
        Some(name) => name
            .parse::<Backend>()
            .map_err(|e| anyhow::anyhow!("--backend: {e}"))?,
        None => Backend::detect(),
    };
    if args.plaintext && url.authority_key.is_some() {
        anyhow::bail!("--plaintext and an authority key in the URL exclude each other");
    }
    let step = Duration::from_secs_f64(args.timeout.max(0.1));
    let mut config = DeviceDriverConfig::new(url.host_port(), url.authority_key);
    config.key_log = sv2_wire::KeyLog::from_env();
    // The session's key-log line, for the key log beside --pcap.
    let keys = sv2_wire::keylog::MemorySink::default();
    if args.pcap.is_some() {
        config.key_log = config.key_log.and(keys.clone());
    }
    if args.plaintext {
        config.security = Security::Plaintext;
    }
    config.timeouts = Timeouts {
        connect: step,
        handshake: step,
        setup: step,
        open_channel: step,
        first_job: step,
        idle: Duration::from_secs_f64(args.idle_timeout.max(0.1)),
    };
    config.device.user_identity = args.user.clone();
    config.device.nominal_hash_rate = args.hashrate;
    config.device.channel = if args.standard {
        ChannelKind::Standard
    } else {
        ChannelKind::Extended
    };
    config.device.endpoint_host = url.host.clone();
    config.device.endpoint_port = url.port;
    config.engine = MinerConfig {
        threads: args.threads.max(1),
        backend,
        ..MinerConfig::default()
    };
    // The monitor follows every connection's transcript as the driver records it; the pool's
    // findings come back to the loop below, printed where the events are.
    let (findings_tx, mut findings) = tokio::sync::mpsc::unbounded_channel::<Finding>();
    let judge: Arc<Mutex<(u32, Monitor)>> = Arc::new(Mutex::new((0, Monitor::new())));
    config.observer = Some(Observer::new(move |seen| {
        let Ok(mut judge) = judge.lock() else { return };
        if seen.connection != judge.0 {
            *judge = (seen.connection, Monitor::new());
        }
        for f in judge.1.observe(seen.index, seen.entry) {
            if f.by == Side::Server {
                let _ = findings_tx.send(f);
            }
        }
    }));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("tokio runtime")?;
    runtime.block_on(async {
        let mut handle = spawn(config);
        if !args.json {
            writeln!(out, "mining on {url} with {} thread(s), backend {backend}", args.threads.max(1))?;
        }
        let deadline = args
            .seconds
            .map(|s| tokio::time::Instant::now() + Duration::from_secs_f64(s.max(0.0)));
        // The first line after a second of mining: a line at 0 s would say nothing.
        let mut ticker = tokio::time::interval_at(
            tokio::time::Instant::now() + Duration::from_secs(1),
            Duration::from_secs(1),
        );
        let mut violations = 0u64;
        // Shares sent just before the pool moved to a new block come back stale through nobody's
        // fault (at regtest difficulty every share is a block): counted apart, not a failure.
        let mut stale = 0u64;
        // On a terminal, a status line on stderr: elapsed (and what is left), hash rate, shares.
        let status = Status::spinner();
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    let s = handle.stats.borrow().clone();
                    let left = deadline
                        .map(|d| format!(" ({:.0} s left)", d.saturating_duration_since(tokio::time::Instant::now()).as_secs_f64()))
                        .unwrap_or_default();
                    status.set_message(format!(
                        "{:.0} s{left}  {:.2} MH/s  shares: {} submitted, {} accepted, {} rejected",
                        s.elapsed.as_secs_f64(), s.mhs, s.submitted, s.accepted, s.rejected
                    ));
                    status.write(out, |out| {
                        if args.json {
                            writeln!(out, "{}", json!({"kind": "stats", "elapsed_s": s.elapsed.as_secs_f64(), "mhs": s.mhs, "jobs": s.jobs, "found": s.found, "submitted": s.submitted, "accepted": s.accepted, "rejected": s.rejected, "dropped": s.dropped, "blocks": s.blocks}))?;
                        } else if s.connected && !s.elapsed.is_zero() {
                            writeln!(out, "{:>7.1} s  {:>8.2} MH/s  jobs {}  found {}  submitted {}  accepted {}  rejected {}  blocks {}",
                                s.elapsed.as_secs_f64(), s.mhs, s.jobs, s.found, s.submitted, s.accepted, s.rejected, s.blocks)?;
                        }
                        out.flush()
                    })?;
                    if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                        break;
                    }
                }
                event = handle.events.recv() => {
                    let Some(event) = event else { break };
                    if let Event::ShareRejected { stale: true, .. } = &event {
                        stale += 1;
                    }
                    let (name, text, mut fields) = describe(&event);
                    status.write(out, |out| {
                        if args.json {
                            fields["kind"] = json!("event");
                            fields["event"] = json!(name);
                            fields["text"] = json!(text);
                            writeln!(out, "{fields}")
                        } else {
                            writeln!(out, "  {name}: {text}")
                        }
                    })?;
                }
                Some(finding) = findings.recv() => {
                    violations += 1;
                    status.write(out, |out| print_finding(&finding, args.json, out))?;
                }
                _ = tokio::signal::ctrl_c() => break,
            }
        }
        status.finish();
        let report = handle.stop().await;
        if let Some(path) = &args.pcap {
            crate::capture::save(path, [&report.transcript], &keys.entries())?;
        }
        // What the monitor found last (the driver hands on the final entries as it stops).
        while let Ok(finding) = findings.try_recv() {
            violations += 1;
            print_finding(&finding, args.json, out)?;
        }
        let s = &report.stats;
        let failed =
            report.outcome.is_err() || s.rejected > stale || violations > 0 || s.accepted == 0 && s.rejected > 0;
        if args.json {
            let (outcome, error) = match &report.outcome {
                Ok(end) => (format!("{end:?}"), None),
                Err(e) => ("failed".to_owned(), Some(e.to_string())),
            };
            writeln!(out, "{}", json!({"kind": "summary", "ok": !failed, "outcome": outcome, "error": error, "submitted": s.submitted, "accepted": s.accepted, "rejected": s.rejected, "stale": stale, "blocks": s.blocks, "violations": violations, "mhs_average": s.mhs_average}))?;
        } else {
            match &report.outcome {
                Ok(end) => writeln!(out, "stopped: {}", end_text(end))?,
                Err(e) => writeln!(out, "failed: {e}")?,
            }
            writeln!(out, "{} accepted, {} rejected ({stale} stale), {violations} violation(s), {:.2} MH/s average", s.accepted, s.rejected, s.mhs_average)?;
        }
        Ok::<_, anyhow::Error>(if failed { Outcome::Fail } else { Outcome::Pass })
    })
}

/// A rule the pool broke, as a `VIOLATION` event line: level, section, what was seen.
fn print_finding(finding: &Finding, json: bool, out: &mut dyn Write) -> std::io::Result<()> {
    let (name, text, mut fields) = describe_finding(finding);
    if json {
        fields["kind"] = json!("event");
        fields["event"] = json!(name);
        fields["text"] = json!(text);
        writeln!(out, "{fields}")
    } else {
        writeln!(out, "  {name}: {text}")
    }
}

/// A finding's name, readable line and JSON fields (the shape the device's violations had).
pub fn describe_finding(finding: &Finding) -> (&'static str, String, Value) {
    let (section, level) =
        monitor::rule(finding.rule).map_or(("?", "MUST"), |r| (r.section, r.level.as_str()));
    (
        "VIOLATION",
        format!(
            "{level} (§{section}): {} [{}]",
            finding.detail, finding.rule
        ),
        json!({"section": section, "level": level, "violation": finding.detail, "rule": finding.rule, "entry": finding.entry}),
    )
}

fn end_text(end: &sv2_mock::miner::driver::End) -> String {
    use sv2_mock::miner::driver::End;
    match end {
        End::Shutdown => "time is up (or interrupted)".into(),
        End::ChannelClosed { reason_code } => {
            format!("the pool closed the channel: {reason_code:?}")
        }
        End::Reconnect { new_host, new_port } => {
            format!("the pool asked to reconnect to {new_host}:{new_port} (not followed)")
        }
    }
}

/// An event's name, a readable line, and its fields as JSON.
pub fn describe(event: &Event) -> (&'static str, String, Value) {
    match event {
        Event::SetupDone { used_version, flags } => (
            "setup",
            format!("SetupConnection.Success used_version {used_version}, flags {flags:#x}"),
            json!({"used_version": used_version, "flags": flags}),
        ),
        Event::SetupRefused { flags, error_code } => (
            "setup refused",
            format!("SetupConnection.Error {error_code:?}, flags {flags:#x}"),
            json!({"flags": flags, "error_code": error_code}),
        ),
        Event::ChannelOpened {
            channel_id,
            kind,
            target,
            effective_target,
            extranonce_prefix,
            extranonce_size,
            group_channel_id,
        } => (
            "channel",
            format!(
                "{} channel {channel_id} (group {group_channel_id}): target {} (difficulty {:.6}), mining at {}, extranonce_prefix {} ({} B), extranonce_size {extranonce_size}",
                match kind {
                    ChannelKind::Standard => "standard",
                    ChannelKind::Extended => "extended",
                },
                display_hex(target),
                difficulty(target),
                display_hex(effective_target),
                hex::encode(extranonce_prefix),
                extranonce_prefix.len()
            ),
            json!({"channel_id": channel_id, "extended": matches!(kind, ChannelKind::Extended), "target": display_hex(target), "difficulty": difficulty(target), "effective_target": display_hex(effective_target), "extranonce_prefix": hex::encode(extranonce_prefix), "extranonce_size": extranonce_size, "group_channel_id": group_channel_id}),
        ),
        Event::ChannelRefused {
            request_id,
            error_code,
        } => (
            "channel refused",
            format!("OpenMiningChannel.Error {error_code:?} (request {request_id})"),
            json!({"request_id": request_id, "error_code": error_code}),
        ),
        Event::JobReceived {
            channel_id,
            job_id,
            extended,
            future,
            since_setup,
        } => (
            "job",
            format!(
                "{} job {job_id} on channel {channel_id}{} ({:.1} ms after setup)",
                if *extended { "extended" } else { "standard" },
                if *future { ", future" } else { "" },
                since_setup.as_secs_f64() * 1000.0
            ),
            json!({"channel_id": channel_id, "job_id": job_id, "extended": extended, "future": future, "since_setup_ms": since_setup.as_secs_f64() * 1000.0}),
        ),
        Event::JobActivated {
            job_id,
            prev_hash,
            ntime,
            nbits,
        } => (
            "mining",
            format!(
                "job {job_id} on prev hash {}, ntime {ntime}, nbits {nbits:#010x}",
                display_hex(prev_hash)
            ),
            json!({"job_id": job_id, "prev_hash": display_hex(prev_hash), "ntime": ntime, "nbits": nbits}),
        ),
        Event::NewPrevHash {
            job_id,
            prev_hash,
            min_ntime,
            nbits,
        } => (
            "prev hash",
            format!(
                "SetNewPrevHash {} for job {job_id}, min_ntime {min_ntime}, nbits {nbits:#010x}",
                display_hex(prev_hash)
            ),
            json!({"job_id": job_id, "prev_hash": display_hex(prev_hash), "min_ntime": min_ntime, "nbits": nbits}),
        ),
        Event::TargetChanged {
            target,
            effective_target,
        } => (
            "target",
            format!(
                "SetTarget {} (difficulty {:.6}), mining at {}",
                display_hex(target),
                difficulty(target),
                display_hex(effective_target)
            ),
            json!({"target": display_hex(target), "difficulty": difficulty(target), "effective_target": display_hex(effective_target)}),
        ),
        Event::ExtranoncePrefixChanged { extranonce_prefix } => (
            "extranonce",
            format!("SetExtranoncePrefix {}", hex::encode(extranonce_prefix)),
            json!({"extranonce_prefix": hex::encode(extranonce_prefix)}),
        ),
        Event::GroupChannel {
            group_channel_id,
            channel_ids,
        } => (
            "group",
            format!("SetGroupChannel {group_channel_id}: channels {channel_ids:?}"),
            json!({"group_channel_id": group_channel_id, "channel_ids": channel_ids}),
        ),
        Event::ShareSubmitted {
            sequence_number,
            job_id,
            nonce,
            ntime,
            version,
            extranonce,
            hash,
            problem,
        } => (
            "share",
            format!(
                "submitted #{sequence_number} job {job_id} nonce {nonce:#010x} ntime {ntime} version {version:#010x}{} hash {}{}",
                if extranonce.is_empty() {
                    String::new()
                } else {
                    format!(" extranonce {}", hex::encode(extranonce))
                },
                display_hex(hash),
                problem
                    .as_ref()
                    .map_or(String::new(), |p| format!(" (sent although: {p})"))
            ),
            json!({"sequence_number": sequence_number, "job_id": job_id, "nonce": nonce, "ntime": ntime, "version": version, "extranonce": hex::encode(extranonce), "hash": display_hex(hash), "problem": problem.as_ref().map(ToString::to_string)}),
        ),
        Event::ShareDropped { job_id, problem } => (
            "share dropped",
            format!("a share of job {job_id} not sent: {problem}"),
            json!({"job_id": job_id, "problem": problem.to_string()}),
        ),
        Event::BlockFound { job_id, hash } => (
            "block",
            format!("job {job_id}: hash {} meets the network target", display_hex(hash)),
            json!({"job_id": job_id, "hash": display_hex(hash)}),
        ),
        Event::SharesAccepted {
            last_sequence_number,
            new_submits_accepted_count,
            new_shares_sum,
        } => (
            "accepted",
            format!("SubmitShares.Success up to #{last_sequence_number}: {new_submits_accepted_count} share(s), sum {new_shares_sum}"),
            json!({"last_sequence_number": last_sequence_number, "new_submits_accepted_count": new_submits_accepted_count, "new_shares_sum": new_shares_sum}),
        ),
        Event::ShareRejected {
            sequence_number,
            error_code,
            stale,
        } => (
            "REJECTED",
            format!(
                "SubmitShares.Error {error_code:?} for #{sequence_number}{}",
                if *stale {
                    " (stale: its job was replaced while it was in flight)"
                } else {
                    ""
                }
            ),
            json!({"sequence_number": sequence_number, "error_code": error_code, "stale": stale}),
        ),
        Event::UpdateRefused { error_code } => (
            "update refused",
            format!("UpdateChannel.Error {error_code:?}"),
            json!({"error_code": error_code}),
        ),
        Event::ChannelClosed { reason_code } => (
            "closed",
            format!("CloseChannel {reason_code:?}"),
            json!({"reason_code": reason_code}),
        ),
        Event::Reconnect { new_host, new_port } => (
            "reconnect",
            format!("Reconnect to {new_host:?} port {new_port} (followed when it is the same host, at most 3 times)"),
            json!({"new_host": new_host, "new_port": new_port}),
        ),
        Event::ChannelEndpointChanged { channel_id } => (
            "endpoint changed",
            format!("ChannelEndpointChanged for channel {channel_id}"),
            json!({"channel_id": channel_id}),
        ),
        Event::CannotMine { job_id, reason } => (
            "cannot mine",
            format!("job {job_id}: {reason}"),
            json!({"job_id": job_id, "reason": reason}),
        ),
        Event::Unexpected { message } => (
            "ignored",
            format!("{message} (no use to a mining device)"),
            json!({"message": message}),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sv2_mock::miner::ShareProblem;

    #[test]
    fn events_read_as_text_and_hashes_as_hex() {
        let mut hash = [0u8; 32];
        hash[31] = 0x00;
        hash[0] = 0xab;
        let (name, text, fields) = describe(&Event::ShareSubmitted {
            sequence_number: 3,
            job_id: 7,
            nonce: 0x1234,
            ntime: 5,
            version: 0x2000_0000,
            extranonce: vec![1, 2],
            hash,
            problem: Some(ShareProblem::Stale),
        });
        assert_eq!(name, "share");
        assert_eq!(
            text,
            format!(
                "submitted #3 job 7 nonce 0x00001234 ntime 5 version 0x20000000 extranonce 0102 hash {}ab (sent although: stale (job no longer valid))",
                "00".repeat(31)
            )
        );
        assert_eq!(fields["hash"], format!("{}ab", "00".repeat(31)));
        assert_eq!(fields["extranonce"], "0102");

        let finding = Finding {
            rule: monitor::JOB_MIN_NTIME,
            by: Side::Server,
            entry: 9,
            detail: "job 3 min_ntime 5 below SetNewPrevHash min_ntime 6".into(),
        };
        let (name, text, fields) = describe_finding(&finding);
        assert_eq!(
            (name, text.as_str()),
            (
                "VIOLATION",
                "SHOULD (§5.3.15): job 3 min_ntime 5 below SetNewPrevHash min_ntime 6 [monitor.job-min-ntime]"
            )
        );
        assert_eq!(fields["section"], "5.3.15");
        assert_eq!(fields["level"], "SHOULD");
        assert_eq!(fields["rule"], "monitor.job-min-ntime");
        assert_eq!(
            fields["violation"],
            "job 3 min_ntime 5 below SetNewPrevHash min_ntime 6"
        );

        let (name, text, _) = describe(&Event::ShareRejected {
            sequence_number: 4,
            error_code: "invalid-job-id".into(),
            stale: true,
        });
        assert_eq!(
            (name, text.as_str()),
            (
                "REJECTED",
                "SubmitShares.Error \"invalid-job-id\" for #4 (stale: its job was replaced while it was in flight)"
            )
        );
        let (_, text, _) = describe(&Event::ShareRejected {
            sequence_number: 5,
            error_code: "stale-share".into(),
            stale: false,
        });
        assert_eq!(text, "SubmitShares.Error \"stale-share\" for #5");
    }
}
