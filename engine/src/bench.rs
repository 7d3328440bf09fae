//! Measuring the engine: hashes per second of a backend through the real [`Miner`] (threads,
//! batches, job epoch checks) on a job whose target no hash meets, and of the naive baseline
//! ([`naive_sha256d`]: sha2's SHA-256 twice over the 80 serialized bytes, with a full target
//! compare), on as many threads. `sv2-probe hashrate` reports them side by side.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::{
    naive_sha256d, Backend, BlockHeader, Job, JobError, MerkleSource, Miner, MinerConfig, Target,
    Unsupported,
};

/// Why a backend could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Unsupported(#[from] Unsupported),
    #[error(transparent)]
    Job(#[from] JobError),
}

/// A fixed header to hash (the genesis block's fields; only the nonce changes).
pub fn header() -> BlockHeader {
    // The genesis block's merkle root, in header byte order.
    let merkle_root = [
        0x3b, 0xa3, 0xed, 0xfd, 0x7a, 0x7b, 0x12, 0xb2, 0x7a, 0xc7, 0x2c, 0x3e, 0x67, 0x76, 0x8f,
        0x61, 0x7f, 0xc8, 0x1b, 0xc3, 0x88, 0x8a, 0x51, 0x32, 0x3a, 0x9f, 0xb8, 0xaa, 0x4b, 0x1e,
        0x5e, 0x4a,
    ];
    BlockHeader {
        version: 1,
        prev_hash: [0; 32],
        merkle_root,
        ntime: 1_231_006_505,
        nbits: 0x1d00ffff,
        nonce: 0,
    }
}

/// How long to warm up, then measure.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub warmup: Duration,
    pub measure: Duration,
}

/// Hashes per second of `backend` on `threads` threads through the engine's miner.
pub fn measure_backend(
    backend: Backend,
    threads: usize,
    version_rolling: bool,
    timing: &Timing,
) -> Result<f64, BenchError> {
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
pub fn measure_baseline(threads: usize, timing: &Timing) -> f64 {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_benchmark_header_is_the_genesis_block() {
        let genesis = BlockHeader {
            nonce: 2_083_236_893,
            ..header()
        };
        let mut hash = genesis.hash();
        hash.reverse();
        assert_eq!(
            hash[..],
            [
                0x00, 0x00, 0x00, 0x00, 0x00, 0x19, 0xd6, 0x68, 0x9c, 0x08, 0x5a, 0xe1, 0x65, 0x83,
                0x1e, 0x93, 0x4f, 0xf7, 0x63, 0xae, 0x46, 0xa2, 0xa6, 0xc1, 0x72, 0xb3, 0xf1, 0xb6,
                0x0a, 0x8c, 0xe2, 0x6f
            ]
        );
        assert!(naive_sha256d(&genesis.to_bytes()) == genesis.hash());
    }
}
