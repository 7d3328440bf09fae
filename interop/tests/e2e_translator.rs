//! End to end with the reference implementation's translator (translator_sv2 0.6.0): it connects
//! upstream to our mock pool over Noise (checking our pool's certificate) and opens an extended channel;
//! our SV1 miner connects downstream and mines; its shares cross the translator and our pool validates
//! them for real (sha256d against the channel target); at regtest difficulty they are blocks too, which
//! the pool's template provider checks whole.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use sv2_codec::noise::keys::Keypair;
use sv2_interop::peers::{
    binary_or_skip, free_ports, scratch_dir, wait_listening, Captured, PeerProcess, Tcpdump,
    TranslatorConfig,
};
use sv2_mock::pool::driver::{serve, PoolServerConfig};
use sv2_mock::sv1::driver::{spawn, Sv1DriverConfig};
use sv2_mock::sv1::Sv1Config;
use sv2_wire::capture::Protocol;
use sv2_wire::KeyLog;
use tokio::net::TcpListener;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_translator_carries_our_sv1_miners_shares_to_our_pool() {
    let Some(tproxy_bin) = binary_or_skip("translator_sv2", "e2e_translator") else {
        return;
    };
    let authority = Keypair::generate().unwrap();
    let dir = scratch_dir("e2e-translator-capture").unwrap();
    let keys = dir.join("keys.log");
    let mut pool_config = PoolServerConfig::new(authority.clone()).unwrap();
    // The pool's key log: the capture of the translator's link to it is decrypted with it.
    pool_config.key_log = KeyLog::file(&keys);
    let pool = serve(TcpListener::bind("127.0.0.1:0").await.unwrap(), pool_config)
        .await
        .unwrap();

    let [downstream_port, monitoring_port] = free_ports().unwrap();
    let key = authority.public.to_base58();
    let config = TranslatorConfig {
        downstream_port,
        upstream_port: pool.addr.port(),
        upstream_authority: &key,
        monitoring_port,
        // A small assumed hash rate gives an SV1 difficulty a debug build reaches in seconds.
        min_individual_miner_hashrate: 100_000.0,
        shares_per_minute: 60.0,
    };
    // Real traffic on the loopback interface, from before the translator connects: its SV2 link
    // to our pool and the SV1 miner's link to it.
    let capture = Tcpdump::start(
        &[pool.addr.port(), downstream_port],
        &dir.join("chain.pcap"),
    );
    let mut tproxy = PeerProcess::start(
        &tproxy_bin,
        &scratch_dir("tproxy").unwrap(),
        &config.to_toml(),
    )
    .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{downstream_port}").parse().unwrap();
    let up = tokio::task::spawn_blocking(move || wait_listening(addr, Duration::from_secs(60)))
        .await
        .unwrap();
    assert!(
        up,
        "translator_sv2 did not listen: {:?}\n{}\npool log:\n{}",
        tproxy.exited(),
        tproxy.log_tail(40),
        pool.log().join("\n")
    );

    let miner = spawn(Sv1DriverConfig::new(addr.to_string(), Sv1Config::default()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while pool.stats().shares_accepted < 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let accepted = pool.stats().shares_accepted >= 2;
    let stats = pool.stats();
    let report = miner.stop().await;
    if let Some(capture) = capture {
        let captured = tokio::task::spawn_blocking(move || capture.stop())
            .await
            .unwrap();
        decoded_capture_shows_both_links(&captured, &keys, pool.addr.port(), downstream_port);
    }
    assert!(
        accepted,
        "our pool accepted {} share(s), rejected {:?}; the SV1 miner: {:?}, outcome {:?}\ntranslator log:\n{}\npool log:\n{}",
        stats.shares_accepted,
        stats.rejected_by_reason,
        report.stats,
        report.outcome,
        tproxy.log_tail(40),
        pool.log().join("\n")
    );
    assert!(
        report.stats.accepted >= 1,
        "the SV1 miner saw no accepted share: {:?}",
        report.stats
    );
    // At regtest difficulty every share is a block and the pool moves to the next one at once, so a
    // share already on its way for the previous job is stale: that is the only rejection allowed.
    let lines: Vec<String> = report
        .transcript
        .sv1_lines()
        .take(12)
        .map(|(direction, line)| format!("{direction:?} {line}"))
        .collect();
    assert!(
        stats
            .rejected_by_reason
            .keys()
            .all(|reason| reason == "stale-share"),
        "{:?}\nSV1 transcript:\n{}",
        stats.rejected_by_reason,
        lines.join("\n")
    );
    // The blocks were checked whole by the pool's TP: at least one valid, none invalid.
    assert!(
        stats.blocks_found >= 1 && stats.solutions_valid >= 1 && stats.solutions_invalid == 0,
        "{stats:?}"
    );
    assert!(
        tproxy.exited().is_none(),
        "translator_sv2 exited:\n{}",
        tproxy.log_tail(30)
    );
    println!(
        "e2e translator: our pool accepted {} share(s) (rejected {:?}), {} block(s) found, {} validated by its TP; the SV1 miner saw {} accepted",
        stats.shares_accepted,
        stats.rejected_by_reason,
        stats.blocks_found,
        stats.solutions_valid,
        report.stats.accepted
    );
}

/// The capture of the chain, read as `sv2-probe pcap` reads it: the translator's Noise link to our
/// pool decrypted with the pool's key log (setup, an extended channel, jobs, shares), and the SV1
/// miner's link (subscribe, authorize, notify, submit).
fn decoded_capture_shows_both_links(
    captured: &Captured,
    keys: &std::path::Path,
    pool_port: u16,
    sv1_port: u16,
) {
    let conversations = common::decode_capture(&captured.file, &[keys]);
    let sv2 = common::conversation_to(&conversations, pool_port);
    assert_eq!(sv2.protocol, Protocol::Noise);
    let names = common::sv2_messages(sv2);
    common::require_seen(
        captured,
        &conversations,
        sv2,
        "the translator's link to our pool",
        &[
            "SetupConnection",
            "SetupConnection.Success",
            "OpenExtendedMiningChannel",
            "OpenExtendedMiningChannel.Success",
            "NewExtendedMiningJob",
            "SetNewPrevHash",
            "SubmitSharesExtended",
        ],
        |wanted| names.contains(&wanted),
    );
    let sv1 = common::conversation_to(&conversations, sv1_port);
    assert_eq!(sv1.protocol, Protocol::Sv1);
    let methods: Vec<String> = sv1.transcript.sv1_lines().map(|(_, line)| line).collect();
    common::require_seen(
        captured,
        &conversations,
        sv1,
        "the SV1 miner's link to the translator",
        &[
            "mining.subscribe",
            "mining.authorize",
            "mining.notify",
            "mining.submit",
        ],
        |wanted| methods.iter().any(|l| l.contains(wanted)),
    );
    println!(
        "e2e translator capture: {} SV2 frames decrypted on the pool link, {} SV1 lines",
        names.len(),
        methods.len()
    );
}
