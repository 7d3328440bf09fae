//! How fast `sv2-probe fuzz` runs cases: cases per second against our mock pool (the fuzzer on one
//! core, its own single-threaded runtime; the pool on its own thread) and against pool_sv2 when the
//! reference binary is installed (fed by our mock TP), at several `--jobs`. Each case opens its own
//! connection with its Noise handshake, reaches its state, sends its mutation and, where the
//! framing is intact, a valid request whose answer shows the server alive; where it is not (a
//! lying length, garbage, a broken MAC), or the server closed, a fresh connection (a second
//! handshake and SetupConnection) checks it.
//!
//!   cargo bench -p sv2-benches --bench fuzz                 # 600 cases per row
//!   CASES=3000 cargo bench -p sv2-benches --bench fuzz
//!
//! Under `cargo test` (no `--bench` argument) it runs 20 cases once, as a smoke test.
//!
//! The time-level cases wait on purpose (a stall of 0.6 s mid-frame, a byte every millisecond):
//! with one job they bound the rate; with many, the jobs overlap them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sv2_codec::noise::keys::{AuthorityPublicKey, Keypair};
use sv2_mock::pool::driver::{serve, PoolServerConfig};
use sv2_scenario::fuzz::{self, Config, Report, Target};
use tokio::net::TcpListener;

/// A mock pool on its own thread and runtime; its address and authority key.
fn mock_pool() -> (std::net::SocketAddr, AuthorityPublicKey) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let authority = Keypair::generate().unwrap();
            let public = authority.public;
            let pool = serve(
                TcpListener::bind("127.0.0.1:0").await.unwrap(),
                PoolServerConfig::new(authority).unwrap(),
            )
            .await
            .unwrap();
            tx.send((pool.addr, public)).unwrap();
            std::future::pending::<()>().await;
        });
    });
    rx.recv().unwrap()
}

/// A campaign of `cases` cases with `jobs` at once, the fuzzer on this thread alone.
fn campaign(target: Target, cases: u64, jobs: usize) -> Report {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut config = Config::new(target);
    config.seed = 42;
    config.cases = Some(cases);
    config.jobs = jobs;
    config.wait = Duration::from_secs(2);
    config.minimize = false;
    runtime.block_on(fuzz::run(&config, Arc::new(|_: &Report| {})))
}

fn row(name: &str, target: Target, cases: u64, jobs: usize) {
    let started = Instant::now();
    let report = campaign(target, cases, jobs);
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{name:<10} jobs {jobs:>3}: {:>6} cases in {secs:>6.1} s = {:>7.0} cases/s ({} findings)",
        report.cases,
        report.cases as f64 / secs,
        report.findings.len()
    );
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let cases: u64 = if bench {
        std::env::var("CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(600)
    } else {
        20
    };
    let jobs: &[usize] = if bench { &[1, 8, 32, 64] } else { &[4] };
    println!("sv2-probe fuzz: cases per second, the fuzzer on one core");
    let (addr, key) = mock_pool();
    for &j in jobs {
        row(
            "mock pool",
            Target {
                addr,
                noise: Some(Some(key)),
            },
            cases,
            j,
        );
    }
    if !bench {
        return;
    }
    let Some(binary) = sv2_interop::peers::find_binary("pool_sv2") else {
        println!("pool_sv2 not installed: its rows are left out");
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    for &j in jobs {
        // A fresh pool_sv2 per row: it stops completing handshakes after a refused SetupConnection
        // followed by another frame (interop/FUZZING.md), which would end a long row early.
        let (tp, pool, pool_addr) = runtime.block_on(async {
            let mut tp_config =
                sv2_mock::tp::driver::TpServerConfig::new(Keypair::generate().unwrap()).unwrap();
            tp_config.tp.nbits = 0x1d00_ffff;
            let tp = sv2_mock::tp::driver::serve(
                TcpListener::bind("127.0.0.1:0").await.unwrap(),
                tp_config,
            )
            .unwrap();
            let (pool, addr) =
                sv2_interop::peers::start_reference_pool(&binary, "bench-fuzz", tp.addr, None)
                    .await
                    .unwrap();
            (tp, pool, addr)
        });
        let key =
            AuthorityPublicKey::from_base58(sv2_interop::noise::TEST_AUTHORITY_PUBLIC).unwrap();
        row(
            "pool_sv2",
            Target {
                addr: pool_addr,
                noise: Some(Some(key)),
            },
            cases.min(200),
            j,
        );
        drop(pool);
        drop(tp);
    }
}
