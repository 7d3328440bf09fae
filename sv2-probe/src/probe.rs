//! `sv2-probe probe`: the probe's options, and its report as text or JSON. The probe itself (a
//! scripted client, step by step) is `sv2_conformance::probe`.

use std::io::Write;

use anyhow::Context;
use serde_json::{json, Value};
use sv2_codec::noise::keys::Sv2Url;
use sv2_conformance::probe::{ProbeConfig, Report};
use sv2_conformance::Verdict;

use crate::outcome::Outcome;

pub const LONG_ABOUT: &str = "\
Probe a live SV2 pool and report, step by step: TCP connect, Noise handshake, certificate, \
SetupConnection, channel, first job, coinbase, and a share mined here and submitted.

URL: stratum2+tcp://host:port/<authority key>. Without a key the certificate cannot be checked: the \
handshake still runs and the report says so (a fail for the certificate step). A pool without Noise \
(plain frames, spec §4: local networks only) is probed with --plaintext and a URL without a key.

Every step has a deadline (--timeout; the share step --share-timeout). A failing step says what went \
wrong and shows the bytes the pool sent during that step (hex, and as text when they read as text).

Exit code: 0 when every step passed or was skipped, 1 when any step failed, 2 on a usage error.";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// stratum2+tcp://host:port/<authority key>
    #[arg(value_name = "URL")]
    pub url: String,
    /// Open a standard channel instead of an extended one.
    #[arg(long)]
    pub standard: bool,
    /// user_identity for the channel.
    #[arg(long, default_value = "sv2-probe")]
    pub user: String,
    /// Nominal hash rate announced for the channel, in H/s (the pool derives the target from it).
    #[arg(long, default_value_t = 1e6)]
    pub hashrate: f32,
    /// Seconds each protocol step may take.
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
    /// Seconds to mine and wait for the share round trip.
    #[arg(long, default_value_t = 60.0)]
    pub share_timeout: f64,
    /// Mining threads.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Do not mine or submit a share.
    #[arg(long)]
    pub no_share: bool,
    /// Speak plain frames, without Noise (the URL must carry no authority key).
    #[arg(long)]
    pub plaintext: bool,
    /// Append this session's traffic keys to FILE (key log format: codec/src/noise/keylog.rs), so that
    /// a capture of the session can be decrypted later.
    #[arg(long, value_name = "FILE")]
    pub keylog: Option<std::path::PathBuf>,
    /// Save the session as a pcapng capture at FILE (synthesised TCP packets with the real times),
    /// with its key log beside it as FILE.keylog: opens in Wireshark, decrypted.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<std::path::PathBuf>,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
}

impl Args {
    /// The probe's configuration from the options.
    pub fn config(&self) -> ProbeConfig {
        ProbeConfig {
            standard: self.standard,
            user: self.user.clone(),
            hashrate: self.hashrate,
            timeout: self.timeout,
            share_timeout: self.share_timeout,
            threads: self.threads,
            no_share: self.no_share,
            plaintext: self.plaintext,
            keylog: self.keylog.clone(),
        }
    }
}

pub fn run(args: &Args, out: &mut dyn Write, _err: &mut dyn Write) -> anyhow::Result<Outcome> {
    let url: Sv2Url = args.url.parse().context("URL")?;
    if args.plaintext && url.authority_key.is_some() {
        anyhow::bail!("--plaintext and an authority key in the URL exclude each other");
    }
    if args.plaintext && args.keylog.is_some() {
        anyhow::bail!("--keylog needs Noise: a plaintext session has no keys");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let report = runtime.block_on(sv2_conformance::probe::probe(&url, &args.config()));
    print_report(&report, &url, args.json, out)?;
    if let Some(path) = &args.pcap {
        crate::capture::save(path, report.transcript.iter(), report.key_log.as_slice())?;
    }
    Ok(if report.failed() {
        Outcome::Fail
    } else {
        Outcome::Pass
    })
}

/// The report as one JSON document.
pub fn report_json(report: &Report, url: &Sv2Url) -> Value {
    let (passed, failed, skipped) = (
        report.count(Verdict::Pass),
        report.count(Verdict::Fail),
        report.count(Verdict::Skip),
    );
    let steps: Vec<Value> = report
        .steps
        .iter()
        .map(|s| json!({"step": s.name, "status": s.status.as_str(), "ms": s.ms, "detail": s.detail, "data": s.data}))
        .collect();
    json!({"url": url.to_string(), "steps": steps, "passed": passed, "failed": failed, "skipped": skipped, "ok": failed == 0})
}

pub fn print_report(
    report: &Report,
    url: &Sv2Url,
    json_out: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    if json_out {
        writeln!(out, "{}", report_json(report, url))?;
        return Ok(());
    }
    writeln!(out, "probe {url}")?;
    for s in &report.steps {
        let mut lines = s.detail.lines();
        writeln!(
            out,
            "  {:<5} {:<12} {:>9.1} ms  {}",
            s.status.as_str().to_uppercase(),
            s.name,
            s.ms,
            lines.next().unwrap_or("")
        )?;
        for line in lines {
            writeln!(
                out,
                "  {:<5} {:<12} {:>12}  {}",
                "",
                "",
                "",
                line.trim_start()
            )?;
        }
    }
    writeln!(
        out,
        "{} passed, {} failed, {} skipped",
        report.count(Verdict::Pass),
        report.count(Verdict::Fail),
        report.count(Verdict::Skip)
    )?;
    Ok(())
}
