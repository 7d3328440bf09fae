//! sha256d throughput of each mining-engine backend this CPU supports, and of the naive baseline.
//!
//! Benchmark ids (throughput in hashes):
//! * `sha256d/naive-sha2`: `sha2`'s SHA-256 twice over the 80 serialized bytes per nonce, with the
//!   full target compare.
//! * `sha256d/<backend>`: `Hasher::scan` over a range of nonces of one prepared header.
//! * `sha256d/<backend>/rolled-x8`: `Hasher::scan_group` over the same range for 8 rolled versions
//!   of the header (what the miner does when the job allows version rolling): the first hash's
//!   message schedule is shared by the 8 headers.
//!
//! The target is difficulty 1, so candidates are as rare as in real mining.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sv2_engine::{
    naive_sha256d, Backend, BlockHeader, Candidates, Hasher, PreparedHeader, Target, MAX_GROUP,
};

/// Nonces per iteration.
const NONCES: u32 = 1 << 13;

fn header() -> BlockHeader {
    BlockHeader {
        version: 0x2000_0000,
        prev_hash: [0x11; 32],
        merkle_root: [0x22; 32],
        ntime: 1_700_000_000,
        nbits: 0x1d00ffff,
        nonce: 0,
    }
}

/// Scans `NONCES` nonces from `*base` for every header of `group`.
fn scan(hasher: &Hasher, group: &[PreparedHeader], base: &mut u32, out: &mut Candidates) -> u32 {
    let mut done = 0;
    while done < NONCES {
        done += hasher.scan_group(group, *base + done, NONCES - done, out);
        out.clear();
    }
    *base = base.wrapping_add(NONCES) & 0x7fff_ffff;
    done
}

fn sha256d(c: &mut Criterion) {
    let target = Target::from_nbits(0x1d00ffff).expect("difficulty 1");
    let single = [PreparedHeader::new(&header(), &target)];
    let rolled: Vec<PreparedHeader> = (0..MAX_GROUP as u32)
        .map(|i| {
            let version = header().version ^ (i << 13);
            PreparedHeader::new(
                &BlockHeader {
                    version,
                    ..header()
                },
                &target,
            )
        })
        .collect();
    let mut group = c.benchmark_group("sha256d");

    group.throughput(Throughput::Elements(u64::from(NONCES)));
    group.bench_function("naive-sha2", |b| {
        let mut bytes = header().to_bytes();
        let mut base = 0u32;
        b.iter(|| {
            let mut shares = 0u32;
            for nonce in base..base + NONCES {
                bytes[76..].copy_from_slice(&nonce.to_le_bytes());
                shares += u32::from(target.is_met_by(&naive_sha256d(&bytes)));
            }
            base = base.wrapping_add(NONCES) & 0x7fff_ffff;
            black_box(shares)
        })
    });
    for backend in Backend::supported() {
        let hasher = backend.hasher().expect("supported");
        let mut out = Candidates::new();
        let mut base = 0u32;
        group.bench_function(backend.name(), |b| {
            b.iter(|| black_box(scan(&hasher, &single, &mut base, &mut out)))
        });
    }

    group.throughput(Throughput::Elements(
        u64::from(NONCES) * rolled.len() as u64,
    ));
    for backend in Backend::supported() {
        let hasher = backend.hasher().expect("supported");
        let mut out = Candidates::new();
        let mut base = 0u32;
        group.bench_function(
            format!("{}/rolled-x{}", backend.name(), rolled.len()),
            |b| b.iter(|| black_box(scan(&hasher, &rolled, &mut base, &mut out))),
        );
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = sha256d
}
criterion_main!(benches);
