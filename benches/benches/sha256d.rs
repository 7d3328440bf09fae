//! sha256d throughput of each mining-engine backend this CPU supports, and of the naive baseline.
//!
//! Benchmark ids: `sha256d/<backend>` (`Hasher::scan` over a range of nonces of a prepared header,
//! difficulty-1 target so that candidates are rare, as in real mining) and `sha256d/naive-sha2`
//! (`sha2`'s SHA-256 twice over the 80 serialized bytes per nonce, with the full target compare).
//! Throughput is in hashes (one per nonce).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sv2_mock::engine::{naive_sha256d, Backend, BlockHeader, Candidates, PreparedHeader, Target};

/// Nonces per iteration.
const NONCES: u32 = 1 << 14;

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

fn sha256d(c: &mut Criterion) {
    let target = Target::from_nbits(0x1d00ffff).expect("difficulty 1");
    let prepared = PreparedHeader::new(&header(), &target);
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
        group.bench_function(backend.name(), |b| {
            let mut out = Candidates::new();
            let mut base = 0u32;
            b.iter(|| {
                let mut done = 0;
                while done < NONCES {
                    done += hasher.scan(&prepared, base + done, NONCES - done, &mut out);
                    out.clear();
                }
                base = base.wrapping_add(NONCES) & 0x7fff_ffff;
                black_box(done)
            })
        });
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
