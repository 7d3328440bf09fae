//! `sv2-probe demo`: the whole toolkit on loopback, in one process, with a short report.
//!
//! A mock Template Provider (Noise, its own authority key) feeds a mock pool (Noise, another authority
//! key, the TP as its upstream over Noise); the probe then runs every step against the pool, mining a
//! share with the built-in engine; at regtest difficulty that share is also a block, which the pool
//! sends to the TP, which checks it as a full block. The report shows the probe's steps, the pool's
//! statistics and the TP's verdicts.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use serde_json::json;
use sv2_codec::noise::keys::{Keypair, Sv2Url};
use sv2_mock::pool::driver::{serve as serve_pool, PoolServerConfig, UpstreamTp};
use sv2_mock::tp::driver::{serve as serve_tp, TpServerConfig};
use tokio::net::TcpListener;

use crate::outcome::Outcome;
use crate::probe;
use sv2_conformance::probe::ProbeConfig;

pub const LONG_ABOUT: &str = "\
Run the toolkit end to end on loopback, in one process: a mock Template Provider feeds a mock pool \
over Noise, and the probe checks the pool step by step and mines a share, which at regtest difficulty \
is a block that the TP validates. Ends with a report (or one JSON document with --json).

Exit code: 0 when every step passed and the block validated, 1 otherwise.";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
    /// Seconds to mine for the share.
    #[arg(long, default_value_t = 60.0)]
    pub share_timeout: f64,
}

pub fn run(args: &Args, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<Outcome> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("tokio runtime")?;
    runtime.block_on(demo(args, out, err))
}

async fn demo(args: &Args, out: &mut dyn Write, _err: &mut dyn Write) -> anyhow::Result<Outcome> {
    let tp_authority = Keypair::generate()?;
    let pool_authority = Keypair::generate()?;
    // SV2KEYLOGFILE: every Noise session of the demo (TP, pool, probe) appends its keys.
    let key_log = sv2_wire::KeyLog::from_env();
    let mut tp_config = TpServerConfig::new(tp_authority.clone())?;
    tp_config.key_log = key_log.clone();
    let tp = serve_tp(TcpListener::bind("127.0.0.1:0").await?, tp_config)?;
    let mut pool_config = PoolServerConfig::new(pool_authority.clone())?;
    pool_config.key_log = key_log;
    pool_config.upstream = Some(UpstreamTp {
        address: tp.addr,
        noise: Some(Some(tp_authority.public)),
    });
    let pool = serve_pool(TcpListener::bind("127.0.0.1:0").await?, pool_config)
        .await
        .context("mock pool")?;
    let url = Sv2Url {
        host: "127.0.0.1".into(),
        port: pool.addr.port(),
        authority_key: Some(pool_authority.public),
    };
    if !args.json {
        writeln!(
            out,
            "mock TP:   stratum2+tcp://{}/{}",
            tp.addr, tp_authority.public
        )?;
        writeln!(out, "mock pool: {url}")?;
        writeln!(out)?;
        out.flush()?;
    }

    // The probe, as `sv2-probe probe URL` runs it. A modest nominal hash rate keeps the share quick
    // even in a debug build.
    let probe_config = ProbeConfig {
        user: "demo".into(),
        hashrate: 1e4,
        share_timeout: args.share_timeout,
        ..ProbeConfig::default()
    };
    let report = sv2_conformance::probe::probe(&url, &probe_config).await;
    let verdicts = tp.wait_for_verdicts(1, Duration::from_secs(10)).await;
    let stats = pool.stats();
    let block_ok = verdicts.iter().any(|v| v.valid);
    let ok = !report.failed() && block_ok;

    if args.json {
        let value = json!({
            "ok": ok,
            "tp": {"address": tp.addr.to_string(), "authority_public_key": tp_authority.public.to_base58(), "verdicts": verdicts, "height": tp.height()},
            "pool": {"url": url.to_string(), "stats": stats},
            "probe": probe::report_json(&report, &url),
        });
        writeln!(out, "{value}")?;
    } else {
        probe::print_report(&report, &url, false, out)?;
        writeln!(out)?;
        // Shares the probe sent just before its own block moved the pool on come back stale: say so,
        // a bare "1 rejected" reads like a fault.
        let reasons: Vec<String> = stats
            .rejected_by_reason
            .iter()
            .map(|(reason, n)| format!("{n} {reason}"))
            .collect();
        writeln!(
            out,
            "mock pool: {} channel(s), {} share(s) accepted, {} rejected{}, {} block(s) found",
            stats.channels_opened,
            stats.shares_accepted,
            stats.shares_rejected,
            if reasons.is_empty() {
                String::new()
            } else {
                format!(" ({})", reasons.join(", "))
            },
            stats.blocks_found
        )?;
        for v in &verdicts {
            writeln!(
                out,
                "mock TP:   SubmitSolution for template {} at height {}: {} {}",
                v.template_id,
                v.height.map_or("?".into(), |h| h.to_string()),
                if v.valid { "VALID block" } else { "INVALID" },
                v.block_hash.as_deref().unwrap_or("")
            )?;
            for problem in &v.problems {
                writeln!(out, "           {problem}")?;
            }
        }
        if verdicts.is_empty() {
            writeln!(out, "mock TP:   no SubmitSolution arrived")?;
        }
        writeln!(out)?;
        writeln!(out, "{}", if ok { "demo: ok" } else { "demo: FAILED" })?;
    }
    pool.shutdown();
    tp.shutdown();
    Ok(if ok { Outcome::Pass } else { Outcome::Fail })
}
