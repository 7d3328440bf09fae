//! `sv2-probe hashrate`: how fast each sha256d backend of the mining engine hashes on this CPU,
//! next to a naive baseline, measured in the same run.
//!
//! Every backend runs through the engine's real `Miner` (threads, batches, job epoch checks) on a job
//! with a target no hash meets, so nothing but hashing is timed; the job allows version rolling
//! unless `--no-version-rolling`. The baseline hashes the same header the naive way: `sha2`'s SHA-256
//! twice over the 80 serialized bytes per nonce, with a full target compare, on the same number of
//! threads.

use std::io::Write;
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::{json, Value};
use sv2_engine::bench::{measure_backend, measure_baseline, Timing};
use sv2_engine::Backend;

use crate::outcome::Outcome;

pub const LONG_ABOUT: &str = "\
Measure the sha256d hash rate of each mining-engine backend this CPU supports (or only --backend), \
and of a naive baseline (sha2's SHA-256 twice over the 80-byte header), in the same run.

Each backend mines a job through the engine's miner for --seconds on --threads threads (default 1: \
the figures are per core) after a short warm-up; the baseline runs as long on as many threads. The \
job allows BIP320 version rolling, as SV2 jobs do, so the engine hashes 8 rolled versions of each \
nonce together and shares the first hash's message schedule between them; --no-version-rolling \
measures one header at a time. Text: a table of MH/s and ratio to the baseline, then the best \
backend. --json: one document {\"threads\", \"seconds\", \"default_backend\", \"version_rolling\", \
\"baseline\": {\"name\", \"mhs\"}, \"backends\": [{\"name\", \"lanes\", \"mhs\", \"ratio\"}], \
\"best\": {\"name\", \"mhs\"}, \"ratio\"}, where ratio is MH/s over the baseline's. \
default_backend is the one `mine`, `probe` and the mock miners use when none is forced: the fastest \
in a short calibration (a few milliseconds per backend) when the process starts. Other work on the \
machine lowers the figures.";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Measure only this backend (scalar, avx2, avx512, sha-ni-x1 ... sha-ni-x4); default: every
    /// backend the CPU supports.
    #[arg(long, value_name = "NAME")]
    pub backend: Option<Backend>,
    /// Hashing threads per measurement.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub threads: usize,
    /// Seconds per measurement (after a warm-up of a tenth of it, at most 0.2 s).
    #[arg(long, default_value_t = 2.0, value_name = "S")]
    pub seconds: f64,
    /// Mine a job that forbids version rolling: every header is hashed on its own. By default the
    /// job allows BIP320 version rolling, as SV2 jobs do, and the engine hashes 8 rolled versions of
    /// each nonce together, sharing the first hash's message schedule (the naive baseline never
    /// shares anything).
    #[arg(long)]
    pub no_version_rolling: bool,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// The name of the naive baseline in reports.
const BASELINE: &str = "naive-sha2";

/// Million hashes per second.
fn mhs(rate: f64) -> f64 {
    rate / 1e6
}

pub fn run(args: &Args, out: &mut dyn Write, _err: &mut dyn Write) -> anyhow::Result<Outcome> {
    if !(args.seconds.is_finite() && args.seconds > 0.0 && args.seconds <= 3600.0) {
        bail!(
            "--seconds must be more than 0 and at most 3600, not {}",
            args.seconds
        );
    }
    if args.threads == 0 || args.threads > 1024 {
        bail!("--threads must be between 1 and 1024, not {}", args.threads);
    }
    let backends = match args.backend {
        Some(b) if !b.is_supported() => bail!("backend {b} is not supported by this CPU"),
        Some(b) => vec![b],
        None => Backend::supported(),
    };
    let measure = Duration::from_secs_f64(args.seconds);
    let timing = Timing {
        warmup: (measure / 10).min(Duration::from_millis(200)),
        measure,
    };
    let baseline = measure_baseline(args.threads, &timing);
    let mut results = Vec::new();
    for backend in backends {
        let rate = measure_backend(backend, args.threads, !args.no_version_rolling, &timing)
            .with_context(|| format!("measuring {backend}"))?;
        results.push((backend, rate));
    }
    let &(best, best_rate) = results
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .context("no backend measured")?;
    let ratio = |rate: f64| rate / baseline;

    if args.json {
        let doc = json!({
            "threads": args.threads,
            "seconds": args.seconds,
            "default_backend": Backend::detect().name(),
            "version_rolling": !args.no_version_rolling,
            "baseline": {"name": BASELINE, "mhs": mhs(baseline)},
            "backends": results.iter().map(|&(b, rate)| json!({
                "name": b.name(),
                "lanes": b.lanes(),
                "mhs": mhs(rate),
                "ratio": ratio(rate),
            })).collect::<Vec<Value>>(),
            "best": {"name": best.name(), "mhs": mhs(best_rate)},
            "ratio": ratio(best_rate),
        });
        writeln!(out, "{doc}")?;
    } else {
        writeln!(
            out,
            "sha256d hash rate, {} thread(s), {} s per measurement, version rolling {}",
            args.threads,
            args.seconds,
            if args.no_version_rolling { "off" } else { "on" }
        )?;
        writeln!(
            out,
            "{:<12} {:>5} {:>10} {:>10}",
            "backend", "lanes", "MH/s", "x naive"
        )?;
        writeln!(
            out,
            "{:<12} {:>5} {:>10.2} {:>10.2}",
            BASELINE,
            1,
            mhs(baseline),
            1.0
        )?;
        for &(b, rate) in &results {
            writeln!(
                out,
                "{:<12} {:>5} {:>10.2} {:>10.2}",
                b.name(),
                b.lanes(),
                mhs(rate),
                ratio(rate)
            )?;
        }
        writeln!(
            out,
            "best: {} at {:.2} MH/s, {:.2}x the naive baseline (default backend here: {})",
            best,
            mhs(best_rate),
            ratio(best_rate),
            Backend::detect()
        )?;
    }
    Ok(Outcome::Pass)
}
