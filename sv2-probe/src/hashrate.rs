//! `sv2-probe hashrate`: how fast each sha256d backend of the mining engine hashes on this CPU,
//! next to a naive baseline, measured in the same run.
//!
//! Every backend runs through the engine's real `Miner` (threads, batches, job epoch checks) on a job
//! with a target no hash meets, so nothing but hashing is timed; the job allows version rolling
//! unless `--no-version-rolling`. The baseline hashes the same header the naive way: `sha2`'s SHA-256
//! twice over the 80 serialized bytes per nonce, with a full target compare, on the same number of
//! threads.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};
use sv2_engine::{
    naive_sha256d, Backend, BlockHeader, Job, MerkleSource, Miner, MinerConfig, Target,
};

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

/// A fixed header to hash (the genesis block's fields; only the nonce changes).
fn header() -> BlockHeader {
    let mut merkle_root = [0u8; 32];
    hex::decode_to_slice(
        "3ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a",
        &mut merkle_root,
    )
    .expect("valid hex");
    BlockHeader {
        version: 1,
        prev_hash: [0; 32],
        merkle_root,
        ntime: 1_231_006_505,
        nbits: 0x1d00ffff,
        nonce: 0,
    }
}

struct Timing {
    warmup: Duration,
    measure: Duration,
}

/// Hashes per second of `backend` on `threads` threads through the engine's miner.
fn measure_backend(
    backend: Backend,
    threads: usize,
    version_rolling: bool,
    timing: &Timing,
) -> anyhow::Result<f64> {
    let (miner, _shares) = Miner::start(MinerConfig {
        threads,
        backend,
        ..MinerConfig::default()
    })?;
    let h = header();
    let mut job = Job::new(
        0,
        h.version,
        h.prev_hash,
        MerkleSource::Root(h.merkle_root),
        h.ntime,
        h.nbits,
        Target::ZERO,
    );
    if !version_rolling {
        job.version_mask = 0;
    }
    miner.replace_job(job)?;
    std::thread::sleep(timing.warmup);
    let (h0, t0) = (miner.hashes(), Instant::now());
    std::thread::sleep(timing.measure);
    // Threads publish their counts once per batch: on a very slow build or machine, wait for at
    // least one batch to land in the window rather than report zero.
    let give_up = Instant::now() + Duration::from_secs(60);
    while miner.hashes() == h0 && Instant::now() < give_up {
        std::thread::sleep(Duration::from_millis(10));
    }
    let (h1, t1) = (miner.hashes(), Instant::now());
    miner.stop();
    Ok((h1 - h0) as f64 / (t1 - t0).as_secs_f64())
}

/// Hashes per second of the naive way on `threads` threads.
fn measure_baseline(threads: usize, timing: &Timing) -> f64 {
    let stop = AtomicBool::new(false);
    let hashes = AtomicU64::new(0);
    let start_counting = AtomicBool::new(false);
    let mut window = (0, Instant::now(), 0, Instant::now());
    std::thread::scope(|s| {
        for t in 0..threads {
            let (stop, hashes, counting) = (&stop, &hashes, &start_counting);
            s.spawn(move || {
                let target = Target::ZERO;
                let mut bytes = header().to_bytes();
                let mut nonce = (t as u32) << 28;
                let mut shares = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..1024 {
                        bytes[76..].copy_from_slice(&nonce.to_le_bytes());
                        let hash = naive_sha256d(&bytes);
                        shares += u64::from(target.is_met_by(&hash));
                        nonce = nonce.wrapping_add(1);
                    }
                    if counting.load(Ordering::Relaxed) {
                        hashes.fetch_add(1024, Ordering::Relaxed);
                    }
                }
                std::hint::black_box(shares);
            });
        }
        std::thread::sleep(timing.warmup);
        start_counting.store(true, Ordering::Relaxed);
        window.0 = hashes.load(Ordering::Relaxed);
        window.1 = Instant::now();
        std::thread::sleep(timing.measure);
        window.2 = hashes.load(Ordering::Relaxed);
        window.3 = Instant::now();
        stop.store(true, Ordering::Relaxed);
    });
    (window.2 - window.0) as f64 / (window.3 - window.1).as_secs_f64()
}

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
