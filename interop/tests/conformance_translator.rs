//! The device suite against the reference implementation's translator (translator_sv2 0.6.0) as the
//! client under test: its upstream side is an SV2 mining client. For each check the suite starts a
//! fresh translator pointed at the suite's listener (and trusting the suite's authority key), with
//! our SV1 miner below it, so that its shares reach the suite. Its failures are findings about the
//! translator, not failures of this test: every verdict is compared with the reviewed file
//! `conformance/expected/translator_sv2-device.txt`.
//!
//! The reports (text, JSON with every transcript, JUnit, and the verdicts in the expected-file
//! format) are kept in `target/conformance-reports/translator_sv2-device/` of the repository.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sv2_conformance::runner::Progress;
use sv2_conformance::serve::launch::{BoxFuture, Launched, Launcher};
use sv2_conformance::serve::{runner, Endpoint, Listener};
use sv2_conformance::{expected, report, Role, Selection};
use sv2_interop::peers::{
    binary_or_skip, free_ports, scratch_dir, wait_listening, PeerProcess, TranslatorConfig,
};
use sv2_mock::sv1::driver::{spawn, Sv1DriverConfig, Sv1Handle};
use sv2_mock::sv1::Sv1Config;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A translator started for one check, and the SV1 miner below it once it listens.
struct Translator {
    process: PeerProcess,
    miner: Arc<Mutex<Option<Sv1Handle>>>,
    waiter: tokio::task::JoinHandle<()>,
}

impl Launched for Translator {
    fn exited(&mut self) -> Option<(bool, String)> {
        let status = self.process.exited()?;
        use std::os::unix::process::ExitStatusExt;
        let crashed = status.signal().is_some() || status.code() == Some(101);
        Some((
            crashed,
            format!("{status}; its last output:\n{}", self.process.log_tail(40)),
        ))
    }

    fn stop(self: Box<Self>) -> BoxFuture<String> {
        Box::pin(async move {
            self.waiter.abort();
            let miner = self.miner.lock().unwrap().take();
            if let Some(miner) = miner {
                miner.shutdown();
            }
            let tail = self.process.log_tail(40);
            drop(self.process);
            format!("translator_sv2 stopped; its last output:\n{tail}")
        })
    }
}

fn launcher(binary: &Path) -> Launcher {
    let binary = binary.to_path_buf();
    Launcher::InProcess(Arc::new(move |endpoint: &Endpoint| {
        let [downstream_port, monitoring_port] = free_ports().unwrap();
        let config = TranslatorConfig {
            downstream_port,
            upstream_port: endpoint.port,
            upstream_authority: &endpoint.authority_key,
            monitoring_port,
            min_individual_miner_hashrate: 100_000.0,
            shares_per_minute: 60.0,
        };
        let process = PeerProcess::start(
            &binary,
            &scratch_dir("tproxy-device-suite").unwrap(),
            &config.to_toml(),
        )
        .unwrap();
        let miner: Arc<Mutex<Option<Sv1Handle>>> = Arc::default();
        let slot = miner.clone();
        let waiter = tokio::spawn(async move {
            let addr: SocketAddr = format!("127.0.0.1:{downstream_port}").parse().unwrap();
            let up =
                tokio::task::spawn_blocking(move || wait_listening(addr, Duration::from_secs(30)))
                    .await
                    .unwrap_or(false);
            if up {
                let handle = spawn(Sv1DriverConfig::new(addr.to_string(), Sv1Config::default()));
                *slot.lock().unwrap() = Some(handle);
            }
        });
        Box::new(Translator {
            process,
            miner,
            waiter,
        }) as Box<dyn Launched>
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_translator_device_verdicts_match_the_reviewed_file() {
    let Some(binary) = binary_or_skip("translator_sv2", "conformance_translator") else {
        return;
    };
    let mut listener = Listener::new(launcher(&binary)).unwrap();
    listener.timeout = Duration::from_secs(3);
    listener.connect_timeout = Duration::from_secs(30);
    listener.work_window = Duration::from_secs(10);
    let selection = Selection {
        only: std::env::var("SV2_ONLY")
            .map(|v| v.split(',').map(str::to_string).collect())
            .unwrap_or_default(),
    };
    let report = runner::run(listener, Role::Device, &selection, |p| {
        if let Progress::Finished(r) = p {
            eprintln!("{:<5} {}", r.outcome.verdict.as_str(), r.check.id)
        }
    })
    .await
    .unwrap();

    let dir = repo().join("target/conformance-reports/translator_sv2-device");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("report.txt"), report::text(&report, true)).unwrap();
    std::fs::write(
        dir.join("report.json"),
        serde_json::to_string_pretty(&report::json(&report)).unwrap(),
    )
    .unwrap();
    std::fs::write(dir.join("junit.xml"), report::junit(&report)).unwrap();
    std::fs::write(dir.join("verdicts.txt"), expected::render(&report)).unwrap();
    println!("{}", report::text(&report, true));

    let file = repo().join("conformance/expected/translator_sv2-device.txt");
    let reviewed = std::fs::read_to_string(&file).unwrap_or_default();
    let reviewed = expected::parse(&reviewed).unwrap();
    let differences: Vec<String> = expected::compare(&report, &reviewed, true)
        .iter()
        .map(|d| d.to_string())
        .collect();
    assert!(
        differences.is_empty(),
        "translator_sv2 as a device differs from {}:\n{}\n(the verdicts of this run are in {})",
        file.display(),
        differences.join("\n"),
        dir.join("verdicts.txt").display()
    );
}
