//! The proxy between two reference binaries: our mock TP feeds pool_sv2 0.7.0; translator_sv2
//! 0.6.0 connects to pool_sv2 through our relay (Noise on both legs: the translator checks the
//! relay's certificate, the relay checks pool_sv2's); our SV1 miner mines through the translator.
//! The conformance monitor judges both reference binaries at once: the server rules over what
//! pool_sv2 sent, the client rules over what translator_sv2 sent. Then the same chain with a
//! scenario: pool_sv2's SetNewPrevHash held 2 s on its way to the translator, and what the
//! translator and the pool did about it is printed (the note records it).

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sv2_codec::noise::keys::{AuthorityPublicKey, Keypair, SecretKey};
use sv2_codec::noise::ResponderConfig;
use sv2_conformance::runner::monitor_relay;
use sv2_conformance::verdict::Verdict;
use sv2_interop::noise::TEST_AUTHORITY_PUBLIC;
use sv2_interop::peers::{
    binary_or_skip, free_ports, scratch_dir, start_reference_pool, wait_listening, PeerProcess,
    TranslatorConfig,
};
use sv2_mock::sv1::driver::{spawn, Sv1DriverConfig};
use sv2_mock::sv1::Sv1Config;
use sv2_mock::tp::driver::{serve as serve_tp, TpServerConfig};
use sv2_scenario::relay::{serve, PairRecord, RelayConfig};
use sv2_scenario::Scenario;
use sv2_wire::{unix_now, Direction};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// What one run of the chain gave.
struct Run {
    records: Vec<PairRecord>,
    sv1_accepted: u64,
    sv1_rejected: u64,
    blocks: usize,
    valid_blocks: usize,
}

async fn chain(name: &str, scenario: &str, seconds: u64) -> Option<Run> {
    let pool_bin = binary_or_skip("pool_sv2", name)?;
    let tproxy_bin = binary_or_skip("translator_sv2", name)?;
    let tp_authority = Keypair::generate().unwrap();
    let tp = serve_tp(
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        TpServerConfig::new(tp_authority.clone()).unwrap(),
    )
    .unwrap();
    let (pool, pool_addr) = start_reference_pool(
        &pool_bin,
        &format!("{name}-pool"),
        tp.addr,
        Some(tp_authority.public.to_base58()),
    )
    .await
    .unwrap();

    // The relay: its own authority towards the translator, pool_sv2's checked upstream.
    let authority = Keypair::generate().unwrap();
    let now = unix_now();
    let mut config = RelayConfig::new(pool_addr);
    config.upstream_noise = Some(Some(
        AuthorityPublicKey::from_base58(TEST_AUTHORITY_PUBLIC).unwrap(),
    ));
    config.downstream_noise = Some(ResponderConfig::issue(
        &SecretKey::generate().unwrap(),
        &authority,
        now - 60,
        now + 3600,
    ));
    config.scenario = Arc::new(Scenario::from_toml(scenario).unwrap());
    let (tx, mut ended) = mpsc::unbounded_channel();
    config.ended = Some(tx);
    let relay = serve(TcpListener::bind("127.0.0.1:0").await.unwrap(), config).unwrap();

    let [downstream_port, monitoring_port] = free_ports().unwrap();
    let key = authority.public.to_base58();
    let translator = TranslatorConfig {
        downstream_port,
        upstream_port: relay.addr.port(),
        upstream_authority: &key,
        monitoring_port,
        min_individual_miner_hashrate: 100_000.0,
        shares_per_minute: 60.0,
    };
    let mut tproxy = PeerProcess::start(
        &tproxy_bin,
        &scratch_dir(&format!("{name}-tproxy")).unwrap(),
        &translator.to_toml(),
    )
    .unwrap();
    let sv1_addr: SocketAddr = format!("127.0.0.1:{downstream_port}").parse().unwrap();
    let up = tokio::task::spawn_blocking(move || wait_listening(sv1_addr, Duration::from_secs(60)))
        .await
        .unwrap();
    assert!(
        up,
        "translator_sv2 did not listen: {:?}\n{}\npool_sv2:\n{}",
        tproxy.exited(),
        tproxy.log_tail(40),
        pool.log_tail(40)
    );
    let miner = spawn(Sv1DriverConfig::new(
        sv1_addr.to_string(),
        Sv1Config::default(),
    ));
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let report = miner.stop().await;
    assert!(tproxy.exited().is_none(), "{}", tproxy.log_tail(30));
    drop(tproxy);
    relay.shutdown();
    let mut records = Vec::new();
    while let Ok(Some(record)) = tokio::time::timeout(Duration::from_secs(5), ended.recv()).await {
        records.push(record);
    }
    let verdicts = tp.verdicts();
    Some(Run {
        records,
        sv1_accepted: report.stats.accepted,
        sv1_rejected: report.stats.rejected,
        blocks: verdicts.len(),
        valid_blocks: verdicts.iter().filter(|v| v.valid).count(),
    })
}

fn judged(records: &[PairRecord]) -> Vec<sv2_conformance::runner::CheckResult> {
    let pairs: Vec<_> = records
        .iter()
        .map(|r| (format!("connection {}", r.id), &r.downstream, &r.upstream))
        .collect();
    monitor_relay(&pairs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_between_translator_sv2_and_pool_sv2_judges_both() {
    let Some(run) = chain("e2e-proxy", "", 6).await else {
        return;
    };
    assert!(run.sv1_accepted >= 1, "the SV1 miner saw no accepted share");
    assert!(run.valid_blocks >= 1, "{} blocks, none valid", run.blocks);
    let record = run
        .records
        .iter()
        .max_by_key(|r| r.upstream.len())
        .expect("the translator connected through the relay");
    // Relayed both ways: what the translator sent reached the pool, and the other way round.
    let to_pool: Vec<_> = record
        .upstream
        .messages(Direction::ClientToServer)
        .map(|d| d.message.name())
        .collect();
    assert!(
        to_pool.contains(&"OpenExtendedMiningChannel"),
        "{to_pool:?}"
    );
    assert!(to_pool.contains(&"SubmitSharesExtended"), "{to_pool:?}");
    let results = judged(&run.records);
    let mut lines = Vec::new();
    for r in &results {
        lines.push(format!(
            "{:<5} {:<6} {:<36} {}",
            format!("{:?}", r.outcome.verdict).to_uppercase(),
            format!("{:?}", r.check.level).to_uppercase(),
            r.check.id,
            r.outcome.observed
        ));
    }
    println!(
        "e2e proxy: {} SV1 share(s) accepted, {} block(s) at our TP ({} valid); the monitor over pool_sv2 (server rules) and translator_sv2 (client rules):\n{}",
        run.sv1_accepted,
        run.blocks,
        run.valid_blocks,
        lines.join("\n")
    );
    // Both sides were judged: a server rule and a client rule had something to judge.
    let exercised = |id: &str| {
        results
            .iter()
            .find(|r| r.check.id == id)
            .is_some_and(|r| r.outcome.verdict != Verdict::Skip)
    };
    assert!(exercised("monitor.share-acks"));
    assert!(exercised("monitor.client-setup-first"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_prev_hash_between_translator_sv2_and_pool_sv2() {
    let scenario = r#"
        name = "delay-new-prevhash"
        [[rule]]
        name = "late prev hash"
        from = "server"
        message = "SetNewPrevHash"
        action = "delay"
        ms = 2000
    "#;
    let Some(run) = chain("e2e-proxy-delay", scenario, 8).await else {
        return;
    };
    let record = run
        .records
        .iter()
        .max_by_key(|r| r.upstream.len())
        .expect("the translator connected through the relay");
    let fired = record
        .fired
        .iter()
        .find(|(n, _)| n == "late prev hash")
        .map_or(0, |(_, n)| *n);
    assert!(fired >= 1, "{:?}", record.fired);
    let errors: Vec<String> = record
        .upstream
        .messages(Direction::ServerToClient)
        .filter_map(|d| match &d.message {
            sv2_codec::Message::SubmitSharesError(e) => {
                Some(String::from_utf8_lossy(e.error_code.as_bytes()).into_owned())
            }
            _ => None,
        })
        .collect();
    let acks = record
        .upstream
        .messages(Direction::ServerToClient)
        .filter(|d| d.message.name() == "SubmitShares.Success")
        .count();
    let results = judged(&run.records);
    let failed: Vec<String> = results
        .iter()
        .filter(|r| r.outcome.verdict == Verdict::Fail)
        .map(|r| format!("{}: {}", r.check.id, r.outcome.observed))
        .collect();
    println!(
        "e2e proxy, prev hash held 2 s ({fired} time(s)): the SV1 miner saw {} accepted, {} rejected; pool_sv2 sent {acks} SubmitShares.Success and {} SubmitShares.Error {:?}; {} block(s) at our TP ({} valid); failed rules: {failed:?}",
        run.sv1_accepted,
        run.sv1_rejected,
        errors.len(),
        errors.iter().take(5).collect::<Vec<_>>(),
        run.blocks,
        run.valid_blocks,
    );
}

/// Our device mines on jd_client_sv2 (solo mining, fed by our TP) through the relay, with the JDC's
/// share acknowledgements dropped on their way to the device: the monitor judges the JDC (server
/// rules) and our device (client rules); the JDC's blocks still reach our TP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_between_our_device_and_jd_client_sv2_with_acks_dropped() {
    use sv2_interop::peers::start_reference_jdc;
    use sv2_mock::miner::driver::{spawn as spawn_device, DeviceDriverConfig};

    let Some(jdc_bin) = binary_or_skip("jd_client_sv2", "e2e_proxy_jdc") else {
        return;
    };
    let tp = serve_tp(
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        TpServerConfig::new(Keypair::generate().unwrap()).unwrap(),
    )
    .unwrap();
    let (mut jdc, jdc_addr) = start_reference_jdc(&jdc_bin, "proxy-jdc", tp.addr)
        .await
        .unwrap_or_else(|e| panic!("{e}\nTP log:\n{}", tp.log().join("\n")));
    let authority = Keypair::generate().unwrap();
    let now = unix_now();
    let mut config = RelayConfig::new(jdc_addr);
    config.upstream_noise = Some(Some(
        AuthorityPublicKey::from_base58(TEST_AUTHORITY_PUBLIC).unwrap(),
    ));
    config.downstream_noise = Some(ResponderConfig::issue(
        &SecretKey::generate().unwrap(),
        &authority,
        now - 60,
        now + 3600,
    ));
    config.scenario = Arc::new(
        Scenario::from_toml(
            "[[rule]]\nname = \"no acks\"\nfrom = \"server\"\nmessage = \"SubmitShares.Success\"\naction = \"drop\"\n",
        )
        .unwrap(),
    );
    let (tx, mut ended) = mpsc::unbounded_channel();
    config.ended = Some(tx);
    let relay = serve(TcpListener::bind("127.0.0.1:0").await.unwrap(), config).unwrap();

    let mut device = DeviceDriverConfig::new(relay.addr.to_string(), Some(authority.public));
    device.device.nominal_hash_rate = 10_000.0;
    let device = spawn_device(device);
    let verdicts = tp.wait_for_verdicts(1, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let report = device.stop().await;
    relay.shutdown();
    let record = tokio::time::timeout(Duration::from_secs(5), ended.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(jdc.exited().is_none(), "{}", jdc.log_tail(30));
    // The acks that came while the relay relayed (what comes while it closes the legs, after its
    // "pair ended" note, is read and recorded, not relayed).
    let acks_from_jdc = record
        .upstream
        .entries()
        .iter()
        .take_while(|e| !matches!(&e.event, sv2_wire::Event::Note { text } if text.starts_with("pair ended")))
        .filter(|e| matches!(&e.event, sv2_wire::Event::Frame { direction: Direction::ServerToClient, decoded: Ok(d), .. } if d.message.name() == "SubmitShares.Success"))
        .count();
    let fired = record.fired[0].1;
    assert!(
        acks_from_jdc >= 1 && fired as usize == acks_from_jdc,
        "{acks_from_jdc} acks, {fired} dropped"
    );
    assert_eq!(report.stats.accepted, 0, "{:?}", report.stats);
    assert!(
        verdicts.iter().any(|v| v.valid),
        "{verdicts:?}\n{}",
        jdc.log_tail(30)
    );
    let results = judged(std::slice::from_ref(&record));
    let failed: Vec<String> = results
        .iter()
        .filter(|r| r.outcome.verdict == Verdict::Fail)
        .map(|r| format!("{}: {}", r.check.id, r.outcome.observed))
        .collect();
    let judged_rules = results
        .iter()
        .filter(|r| r.outcome.verdict != Verdict::Skip)
        .count();
    println!(
        "e2e proxy (device -> relay -> jd_client_sv2, acks dropped): jd_client_sv2 sent {acks_from_jdc} SubmitShares.Success, all dropped; the device: {:?}; {} block(s) at our TP ({} valid); {judged_rules} rules judged, failed: {failed:?}",
        report.stats,
        verdicts.len(),
        verdicts.iter().filter(|v| v.valid).count()
    );
}
