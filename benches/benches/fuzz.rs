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
//!   CASES=5000 JOBS=64,128 cargo bench -p sv2-benches --bench fuzz   # those rows only
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
use sv2_scenario::launch::Launcher;
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

/// A campaign of `cases` cases with `jobs` at once, the fuzzer on this thread alone; the server
/// started (and started again after each crash) by `launcher`.
fn campaign(target: Target, cases: u64, jobs: usize, launcher: &Launcher) -> Report {
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
    config.launcher = launcher.clone();
    config.stop_on_crash = !launcher.starts_clients();
    config.start_wait = Duration::from_secs(60);
    runtime.block_on(fuzz::run(&config, Arc::new(|_: &Report| {})))
}

fn row(name: &str, target: Target, cases: u64, jobs: usize, launcher: &Launcher) {
    let started = Instant::now();
    let report = campaign(target, cases, jobs, launcher);
    let secs = started.elapsed().as_secs_f64();
    let restarts = report
        .notes
        .iter()
        .find(|n| n.contains("started by the campaign"))
        .map(|n| format!("; {n}"))
        .unwrap_or_default();
    println!(
        "{name:<10} jobs {jobs:>3}: {:>6} cases in {secs:>6.1} s = {:>7.0} cases/s ({} findings{restarts})",
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
    // JOBS=64,128 for those rows only.
    let chosen: Vec<usize> = std::env::var("JOBS")
        .map(|v| v.split(',').filter_map(|j| j.trim().parse().ok()).collect())
        .unwrap_or_default();
    let jobs: &[usize] = match (bench, chosen.is_empty()) {
        (true, false) => &chosen,
        (true, true) => &[1, 8, 32, 64, 128],
        (false, _) => &[4],
    };
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
            &Launcher::External,
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
        // Started by the campaign, and again after each crash: it stops completing handshakes
        // after a refused SetupConnection followed by another frame (interop/FUZZING.md). The
        // rows count the restarts' time too.
        let tp = runtime.block_on(async {
            let mut tp_config =
                sv2_mock::tp::driver::TpServerConfig::new(Keypair::generate().unwrap()).unwrap();
            tp_config.tp.nbits = 0x1d00_ffff;
            sv2_mock::tp::driver::serve(TcpListener::bind("127.0.0.1:0").await.unwrap(), tp_config)
                .unwrap()
        });
        let [listen_port, monitoring_port] = sv2_interop::peers::free_ports().unwrap();
        let config = sv2_interop::peers::PoolConfig {
            authority_public: sv2_interop::noise::TEST_AUTHORITY_PUBLIC,
            authority_secret: sv2_interop::noise::TEST_AUTHORITY_SECRET,
            listen_port,
            monitoring_port,
            tp_addr: tp.addr,
            tp_authority: None,
            shares_per_minute: 6.0,
            share_batch_size: 1,
        };
        let dir = sv2_interop::peers::scratch_dir("bench-fuzz").unwrap();
        let file = dir.join("pool.toml");
        std::fs::write(&file, config.to_toml()).unwrap();
        let launcher = Launcher::Command(format!(
            "cd {} && exec {} -c {}",
            dir.display(),
            binary.display(),
            file.display()
        ));
        let key =
            AuthorityPublicKey::from_base58(sv2_interop::noise::TEST_AUTHORITY_PUBLIC).unwrap();
        row(
            "pool_sv2",
            Target {
                addr: std::net::SocketAddr::from(([127, 0, 0, 1], listen_port)),
                noise: Some(Some(key)),
            },
            cases.min(1000),
            j,
            &launcher,
        );
        drop(tp);
    }
}
