//! `sv2-probe mine URL`: mine on an SV2 pool with the built-in engine, with live statistics.
//!
//! The mock SV2 mining device (mock-roles' `miner`): Noise with the URL's authority key, SetupConnection,
//! one standard or extended channel, jobs mined by the SIMD engine, shares checked again before they are
//! submitted, and every protocol violation the pool commits reported with its spec section.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use serde_json::json;
use sv2_codec::noise::keys::Sv2Url;
use sv2_mock::engine::{Backend, MinerConfig};
use sv2_mock::miner::driver::{spawn, DeviceDriverConfig};
use sv2_mock::miner::{ChannelKind, Event};

use crate::Outcome;

pub const LONG_ABOUT: &str = "\
Mine on an SV2 pool with the built-in SIMD engine and print live statistics (hash rate, jobs, shares \
found, submitted, accepted, rejected) every second, and every event (channel opened, jobs, shares, \
rejections with their error code, protocol violations with their spec section).

URL: stratum2+tcp://host:port/<authority key>. Runs until --seconds have passed or Ctrl-C. Exit code 1 when \
the connection failed, a share was rejected or the pool broke a rule.";

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
    let mut config = DeviceDriverConfig::new(url.host_port(), url.authority_key);
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
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        let mut violations = 0u64;
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    let s = handle.stats.borrow().clone();
                    if args.json {
                        writeln!(out, "{}", json!({"kind": "stats", "elapsed_s": s.elapsed.as_secs_f64(), "mhs": s.mhs, "jobs": s.jobs, "found": s.found, "submitted": s.submitted, "accepted": s.accepted, "rejected": s.rejected}))?;
                    } else if s.connected {
                        writeln!(out, "{:>7.1} s  {:>8.2} MH/s  jobs {}  found {}  submitted {}  accepted {}  rejected {}",
                            s.elapsed.as_secs_f64(), s.mhs, s.jobs, s.found, s.submitted, s.accepted, s.rejected)?;
                    }
                    out.flush()?;
                    if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                        break;
                    }
                }
                event = handle.events.recv() => {
                    let Some(event) = event else { break };
                    if matches!(event, Event::Violation { .. }) {
                        violations += 1;
                    }
                    if args.json {
                        writeln!(out, "{}", json!({"kind": "event", "event": format!("{event:?}")}))?;
                    } else {
                        writeln!(out, "  event: {event:?}")?;
                    }
                }
                _ = tokio::signal::ctrl_c() => break,
            }
        }
        let report = handle.stop().await;
        let s = &report.stats;
        let failed = report.outcome.is_err() || s.rejected > 0 || violations > 0;
        if args.json {
            writeln!(out, "{}", json!({"kind": "summary", "outcome": format!("{:?}", report.outcome), "accepted": s.accepted, "rejected": s.rejected, "violations": violations, "mhs_average": s.mhs_average}))?;
        } else {
            match &report.outcome {
                Ok(end) => writeln!(out, "stopped: {end:?}")?,
                Err(e) => writeln!(out, "failed: {e}")?,
            }
            writeln!(out, "{} accepted, {} rejected, {violations} violation(s), {:.2} MH/s average", s.accepted, s.rejected, s.mhs_average)?;
        }
        Ok::<_, anyhow::Error>(if failed { Outcome::Fail } else { Outcome::Pass })
    })
}
