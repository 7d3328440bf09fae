//! Short network fuzzing campaigns against the reference implementation's clients, the toolkit as
//! their server (`sv2-probe fuzz --listen`): translator_sv2 0.6.0's upstream side (a Mining
//! client), and pool_sv2 0.7.0 and jd_client_sv2 0.6.0 (solo mode) as Template Distribution
//! clients. Each binary is started by the campaign (again whenever it ends), pointed at the
//! fuzzer and trusting its authority key. What each finds is compared with the reviewed lists in
//! `interop/FUZZING.md` (`- expected NAME (client): ...`, `- tolerated NAME (client): ...`), as
//! tests/fuzz_pool.rs does for servers. Reports and finding files are kept in
//! `target/fuzz-reports/NAME-client/`. `SV2_FUZZ_SECONDS=N` (with `SV2_FUZZ_SEED`) runs campaigns of
//! that length instead, outside CI.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::launched::launcher;
use common::repo;
use sv2_codec::noise::keys::Keypair;
use sv2_interop::peers::{binary_or_skip, free_ports, JdcConfig, PoolConfig, TranslatorConfig};
use sv2_scenario::fuzz::client::{ClientRole, ClientState};
use sv2_scenario::fuzz::listen::{run, ListenConfig};
use sv2_scenario::fuzz::Report;
use sv2_scenario::launch::{Endpoint, Launcher};
use tokio::net::TcpListener;

fn fuzzer_addr(endpoint: &Endpoint) -> std::net::SocketAddr {
    format!("{}:{}", endpoint.host, endpoint.port)
        .parse()
        .expect("the fuzzer's address")
}

/// A campaign against the client `name` started by `launcher`, judged against the reviewed list.
async fn campaign(name: &str, role: ClientRole, launcher: Launcher, cases: u64) -> Report {
    let label = format!("{name}-client");
    let out = repo().join(format!("target/fuzz-reports/{label}"));
    let _ = std::fs::remove_dir_all(&out);
    let mut config = ListenConfig::new(role, launcher);
    config.seed = 2026;
    config.cases = Some(cases);
    if let Some(secs) = std::env::var("SV2_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        config.cases = None;
        config.duration = Some(Duration::from_secs(secs));
        config.seed = std::env::var("SV2_FUZZ_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(config.seed);
    }
    config.wait = Duration::from_secs(2);
    config.connect_wait = Duration::from_secs(20);
    config.authority = Some(Keypair::generate().unwrap());
    config.out = Some(out);
    config.stop_on_crash = false;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let report = run(listener, &config, Arc::new(|_: &Report| {})).await;
    println!("{label}:\n{}", report.text());
    let reviewed = std::fs::read_to_string(repo().join("interop/FUZZING.md")).unwrap();
    let list = |kind: &str| -> Vec<String> {
        reviewed
            .lines()
            .find_map(|l| l.strip_prefix(&format!("- {kind} {name} (client): ")))
            .unwrap_or_else(|| {
                panic!("interop/FUZZING.md lists no `- {kind} {name} (client):` line")
            })
            .split(',')
            .map(|c| c.trim().to_string())
            .filter(|c| c != "none" && !c.is_empty())
            .collect()
    };
    let (expected, tolerated) = (list("expected"), list("tolerated"));
    assert!(
        !report.stopped.starts_with("the control case failed"),
        "{label}: {}",
        report.text()
    );
    for finding in &report.findings {
        let class = finding.class.name();
        assert!(
            expected.iter().chain(&tolerated).any(|c| c == class),
            "{label}: an unreviewed {class} finding: {}",
            report.text()
        );
    }
    for class in &expected {
        assert!(
            report.findings.iter().any(|f| f.class.name() == class),
            "{label}: the reviewed {class} finding no longer shows: {}",
            report.text()
        );
    }
    assert!(report.cases > 0, "{}", report.text());
    report
}

fn reached(report: &Report, state: ClientState) -> u64 {
    report.states.get(state.name()).map_or(0, |r| r.reached)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn translator_sv2_as_the_client_of_the_fuzzer() {
    let Some(bin) = binary_or_skip("translator_sv2", "fuzz_clients") else {
        return;
    };
    let launcher = launcher(bin, "fuzz-tproxy", |endpoint| {
        let [downstream_port, monitoring_port] = free_ports().unwrap();
        let text = TranslatorConfig {
            downstream_port,
            upstream_port: fuzzer_addr(endpoint).port(),
            upstream_authority: &endpoint.authority_key,
            monitoring_port,
            min_individual_miner_hashrate: 100_000.0,
            shares_per_minute: 60.0,
        }
        .to_toml();
        (text, Some(downstream_port))
    });
    let report = campaign("translator_sv2", ClientRole::Mining, launcher, 30).await;
    for state in [ClientState::Setup, ClientState::Open, ClientState::Jobs] {
        assert!(reached(&report, state) > 0, "{}", report.text());
    }
}

fn pool_config(endpoint: &Endpoint) -> String {
    let [listen_port, monitoring_port] = free_ports().unwrap();
    PoolConfig {
        authority_public: sv2_interop::noise::TEST_AUTHORITY_PUBLIC,
        authority_secret: sv2_interop::noise::TEST_AUTHORITY_SECRET,
        listen_port,
        monitoring_port,
        tp_addr: fuzzer_addr(endpoint),
        tp_authority: Some(endpoint.authority_key.clone()),
        shares_per_minute: 6.0,
        share_batch_size: 1,
    }
    .to_toml()
}

fn jdc_config(endpoint: &Endpoint) -> String {
    let [listen_port, monitoring_port] = free_ports().unwrap();
    JdcConfig {
        listen_port,
        monitoring_port,
        tp_addr: fuzzer_addr(endpoint),
        shares_per_minute: 6.0,
        share_batch_size: 1,
    }
    .to_toml()
}

/// `name` (installed as `name`) as a Template Distribution client of the fuzzer, with the
/// configuration `config` writes: a campaign that reaches the templates state.
async fn template_client(name: &'static str, config: fn(&Endpoint) -> String) {
    let Some(bin) = binary_or_skip(name, "fuzz_clients") else {
        return;
    };
    let report = campaign(
        name,
        ClientRole::TemplateClient,
        launcher(bin, name, move |e| (config(e), None)),
        30,
    )
    .await;
    assert!(
        reached(&report, ClientState::Templates) > 0,
        "{}",
        report.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_sv2_as_a_template_distribution_client_of_the_fuzzer() {
    template_client("pool_sv2", pool_config).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jd_client_sv2_as_a_template_distribution_client_of_the_fuzzer() {
    template_client("jd_client_sv2", jdc_config).await;
}
