//! Short network fuzzing campaigns against the reference implementation's Mining servers: pool_sv2
//! 0.7.0 and jd_client_sv2 0.6.0 (solo mode; it serves devices as a pool does), each fed by our
//! mock TP; each binary is started by the campaign (as `--spawn` does). What each finds is compared with the reviewed lists in `interop/FUZZING.md`:
//! `- expected NAME: CLASS, ...` (or `none`) must all show, and `- tolerated NAME: CLASS, ...` may
//! (a reviewed finding that a short run shows or not, depending on the machine's load); any other
//! class fails the test, so that a fix or a regression is seen. A campaign that no tolerated crash
//! cut short must reach every state. Reports and finding files are kept in
//! `target/fuzz-reports/NAME/`.
//! `SV2_FUZZ_SECONDS=N` (with `SV2_FUZZ_JOBS`, `SV2_FUZZ_SEED`) runs campaigns of that length
//! instead, outside CI.

mod common;

use common::repo;

use std::sync::Arc;
use std::time::Duration;

use common::launched::launcher;
use sv2_codec::noise::keys::{AuthorityPublicKey, Keypair};
use sv2_interop::noise::{TEST_AUTHORITY_PUBLIC, TEST_AUTHORITY_SECRET};
use sv2_interop::peers::{
    binary_or_skip, free_ports, start_reference_jdc, start_reference_pool, JdcConfig, PoolConfig,
};
use sv2_mock::tp::driver::{serve, TpHandle, TpServerConfig};
use sv2_scenario::fuzz::mutate::Family;
use sv2_scenario::fuzz::{self, Config, Report, Target};
use sv2_scenario::launch::Launcher;
use sv2_scenario::script::{play_checked, Alive, Ended, Script, TargetAlive};
use tokio::net::TcpListener;

/// A TP whose blocks are hard and never found: the chain stays put (pool_sv2 0.7.0 stops when a
/// client connects between a future template and its prev hash: tests/future_template_race.rs).
fn tp() -> TpHandle {
    let mut tp_config = TpServerConfig::new(Keypair::generate().unwrap()).unwrap();
    tp_config.tp.nbits = 0x1d00_ffff;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    serve(TcpListener::from_std(listener).unwrap(), tp_config).unwrap()
}

/// A campaign against `name`, started by the campaign on `addr` (and again after a crash),
/// judged against the reviewed list.
async fn campaign(name: &str, addr: std::net::SocketAddr, launcher: Launcher, cases: u64) {
    let out = repo().join(format!("target/fuzz-reports/{name}"));
    let _ = std::fs::remove_dir_all(&out);
    let mut config = Config::new(Target {
        addr,
        noise: Some(Some(
            AuthorityPublicKey::from_base58(TEST_AUTHORITY_PUBLIC).unwrap(),
        )),
    });
    config.seed = 2026;
    config.cases = Some(cases);
    config.jobs = 2;
    // Not the time-level family in CI: its stalls and crowds of idle connections bring the
    // handshake stall of FUZZING.md closer.
    config.families = vec![Family::Field, Family::Frame, Family::Noise];
    if let Some(secs) = std::env::var("SV2_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        config.cases = None;
        config.duration = Some(Duration::from_secs(secs));
        config.jobs = std::env::var("SV2_FUZZ_JOBS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(8);
        config.seed = std::env::var("SV2_FUZZ_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(config.seed);
        // Every family, or with SV2_FUZZ_FAMILY=field|frame|noise|time one only.
        config.families = Family::ALL
            .into_iter()
            .filter(|f| std::env::var("SV2_FUZZ_FAMILY").map_or(true, |n| n == f.name()))
            .collect();
    }
    config.wait = Duration::from_secs(2);
    config.out = Some(out);
    config.launcher = launcher;
    config.start_wait = Duration::from_secs(60);
    // In CI the first crash ends the campaign; a long run starts the binary again and goes on.
    config.stop_on_crash = config.duration.is_none();
    let report: Report = fuzz::run(&config, Arc::new(|_: &Report| {})).await;
    println!("{name}:\n{}", report.text());
    let reviewed = std::fs::read_to_string(repo().join("interop/FUZZING.md")).unwrap();
    let list = |kind: &str| -> Vec<String> {
        reviewed
            .lines()
            .find_map(|l| l.strip_prefix(&format!("- {kind} {name}: ")))
            .unwrap_or_else(|| panic!("interop/FUZZING.md lists no `- {kind} {name}:` line"))
            .split(',')
            .map(|c| c.trim().to_string())
            .filter(|c| c != "none" && !c.is_empty())
            .collect()
    };
    let (expected, tolerated) = (list("expected"), list("tolerated"));
    let found: std::collections::BTreeSet<&str> =
        report.findings.iter().map(|f| f.class.name()).collect();
    let cut_short = report
        .findings
        .iter()
        .any(|f| f.class == fuzz::Class::Crash);
    if cut_short {
        println!("{name}: a tolerated crash ended the campaign (interop/FUZZING.md)");
    } else {
        for state in fuzz::Role::Mining.states() {
            let r = report.states.get(state.name()).copied().unwrap_or_default();
            assert!(
                r.reached > 0,
                "{name}: {} never reached: {}",
                state.name(),
                report.text()
            );
        }
    }
    for class in &found {
        assert!(
            expected.iter().chain(&tolerated).any(|c| c == class),
            "{name}: an unreviewed {class} finding: {}",
            report.text()
        );
    }
    for class in &expected {
        assert!(
            found.contains(class.as_str()),
            "{name}: the reviewed {class} finding no longer shows: {}",
            report.text()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_campaign_against_pool_sv2() {
    let Some(bin) = binary_or_skip("pool_sv2", "fuzz_pool") else {
        return;
    };
    let tp = tp();
    let tp_addr = tp.addr;
    let [port] = free_ports().unwrap();
    let launcher = launcher(bin, "fuzz-pool", move |_| {
        let [monitoring_port] = free_ports().unwrap();
        let config = PoolConfig {
            authority_public: TEST_AUTHORITY_PUBLIC,
            authority_secret: TEST_AUTHORITY_SECRET,
            listen_port: port,
            monitoring_port,
            tp_addr,
            tp_authority: None,
            shares_per_minute: 6.0,
            share_batch_size: 1,
        };
        (config.to_toml(), None)
    });
    // Well under the ~470 connections after which pool_sv2 0.7.0 stopped completing handshakes in
    // longer campaigns (interop/FUZZING.md): that finding is for a long run, not for CI.
    campaign("pool_sv2", loopback(port), launcher, 80).await;
    drop(tp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_campaign_against_jd_client_sv2() {
    let Some(bin) = binary_or_skip("jd_client_sv2", "fuzz_pool") else {
        return;
    };
    let tp = tp();
    let tp_addr = tp.addr;
    let [port] = free_ports().unwrap();
    let launcher = launcher(bin, "fuzz-jdc", move |_| {
        let [monitoring_port] = free_ports().unwrap();
        let config = JdcConfig {
            listen_port: port,
            monitoring_port,
            tp_addr,
            shares_per_minute: 6.0,
            share_batch_size: 1,
        };
        (config.to_toml(), None)
    });
    campaign("jd_client_sv2", loopback(port), launcher, 80).await;
    drop(tp);
}

fn loopback(port: u16) -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], port))
}

/// The reviewed stall of interop/FUZZING.md, from its committed file: one connection that sends a
/// SetupConnection the binary refuses and another frame at once leaves it serving no new
/// connection. When this fails, the reference implementation changed: review FUZZING.md.
async fn stall_shows(name: &str, addr: std::net::SocketAddr) {
    let key = AuthorityPublicKey::from_base58(TEST_AUTHORITY_PUBLIC).unwrap();
    let alive = TargetAlive {
        addr,
        noise: Some(Some(key)),
    };
    // Served before.
    alive.check(Duration::from_secs(3)).await.unwrap();
    let file = repo().join("interop/fuzzing/refused-setup-then-frame.toml");
    let script = Script::from_toml(&std::fs::read_to_string(&file).unwrap()).unwrap();
    // A race in the binary: most replays show it at once (5 tries).
    let mut seen = None;
    for _ in 0..5 {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut conn = sv2_wire::Connection::initiate_or_plain(
            stream,
            Some(Some(key)),
            Duration::from_secs(3),
            &sv2_wire::KeyLog::none(),
        )
        .await
        .unwrap();
        if let Ended::Failed { step, observed, .. } = play_checked(&mut conn, &script, &alive).await
        {
            seen = Some((step, observed));
            break;
        }
    }
    let Some((step, observed)) = seen else {
        panic!(
            "{name} served fresh connections after 5 replays of {}: FUZZING.md's stall is gone",
            file.display()
        );
    };
    assert_eq!(step, script.steps.len(), "{observed}");
    assert!(observed.contains("handshake"), "{observed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reviewed_pool_sv2_stall_still_shows_from_its_file() {
    let Some(bin) = binary_or_skip("pool_sv2", "fuzz_pool") else {
        return;
    };
    let tp = tp();
    let (_pool, addr) = start_reference_pool(&bin, "fuzz-pool-stall", tp.addr, None)
        .await
        .unwrap();
    stall_shows("pool_sv2", addr).await;
    drop(tp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reviewed_jd_client_sv2_stall_still_shows_from_its_file() {
    let Some(bin) = binary_or_skip("jd_client_sv2", "fuzz_pool") else {
        return;
    };
    let tp = tp();
    let (_jdc, addr) = start_reference_jdc(&bin, "fuzz-jdc-stall", tp.addr)
        .await
        .unwrap();
    stall_shows("jd_client_sv2", addr).await;
    drop(tp);
}
