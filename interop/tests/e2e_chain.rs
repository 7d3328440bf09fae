//! The whole chain on loopback, captured with tcpdump: our mock Template Provider feeds the reference
//! pool (pool_sv2 0.7.0), the reference translator (translator_sv2 0.6.0) connects to that pool, and
//! our SV1 miner mines through the translator. The capture is read as `sv2-probe pcap` reads it:
//!
//! - the Template Distribution link (pool_sv2 to our TP) decrypted with the key log our TP wrote;
//! - the Mining link (translator_sv2 to pool_sv2), neither end ours, so no key: listed as encrypted
//!   segments with their sizes, after a handshake seen whole;
//! - the SV1 link (our miner to translator_sv2), plain JSON lines.
//!
//! At regtest difficulty the miner's shares are blocks: pool_sv2 sends them to our TP, which checks
//! each block whole.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use sv2_codec::noise::keys::Keypair;
use sv2_interop::noise::TEST_AUTHORITY_PUBLIC;
use sv2_interop::peers::{
    binary_or_skip, free_ports, scratch_dir, start_reference_pool, wait_listening, PeerProcess,
    Tcpdump, TranslatorConfig,
};
use sv2_mock::sv1::driver::{spawn, Sv1DriverConfig};
use sv2_mock::sv1::Sv1Config;
use sv2_mock::tp::driver::{serve, TpServerConfig};
use sv2_wire::capture::{Decryption, Protocol};
use sv2_wire::{Event, KeyLog};
use tokio::net::TcpListener;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tp_pool_translator_and_sv1_miner_captured_and_read() {
    let Some(pool_bin) = binary_or_skip("pool_sv2", "e2e_chain") else {
        return;
    };
    let Some(tproxy_bin) = binary_or_skip("translator_sv2", "e2e_chain") else {
        return;
    };
    let dir = scratch_dir("chain-capture").unwrap();
    let tp_keys = dir.join("tp.keylog");
    let tp_authority = Keypair::generate().unwrap();
    let mut tp_config = TpServerConfig::new(tp_authority.clone()).unwrap();
    tp_config.key_log = KeyLog::file(&tp_keys);
    let tp = serve(TcpListener::bind("127.0.0.1:0").await.unwrap(), tp_config).unwrap();
    let tp_addr = tp.addr;

    // Every TCP packet on lo from before pool_sv2 connects to our TP (its port is not known yet).
    let capture = Tcpdump::start(&[], &dir.join("chain.pcap"));
    let (pool, pool_addr) = start_reference_pool(
        &pool_bin,
        "chain-pool",
        tp_addr,
        Some(tp_authority.public.to_base58()),
    )
    .await
    .unwrap();

    let [downstream_port, monitoring_port] = free_ports().unwrap();
    let config = TranslatorConfig {
        downstream_port,
        upstream_port: pool_addr.port(),
        upstream_authority: TEST_AUTHORITY_PUBLIC,
        monitoring_port,
        min_individual_miner_hashrate: 100_000.0,
        shares_per_minute: 60.0,
    };
    let mut tproxy = PeerProcess::start(
        &tproxy_bin,
        &scratch_dir("chain-tproxy").unwrap(),
        &config.to_toml(),
    )
    .unwrap();
    let sv1_addr: SocketAddr = format!("127.0.0.1:{downstream_port}").parse().unwrap();
    let up = tokio::task::spawn_blocking(move || wait_listening(sv1_addr, Duration::from_secs(60)))
        .await
        .unwrap();
    assert!(
        up,
        "translator_sv2 did not listen: {:?}\n{}\npool_sv2 log:\n{}",
        tproxy.exited(),
        tproxy.log_tail(40),
        pool.log_tail(40)
    );

    let miner = spawn(Sv1DriverConfig::new(
        sv1_addr.to_string(),
        Sv1Config::default(),
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while miner.stats.borrow().accepted < 1 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A share is a block at regtest difficulty: pool_sv2 sends it to our TP.
    let verdicts = tp.wait_for_verdicts(1, Duration::from_secs(30)).await;
    let report = miner.stop().await;
    assert!(
        report.stats.accepted >= 1,
        "no share of the SV1 miner accepted: {:?}, outcome {:?}\ntranslator log:\n{}\npool_sv2 log:\n{}",
        report.stats,
        report.outcome,
        tproxy.log_tail(40),
        pool.log_tail(40)
    );
    assert!(
        verdicts.iter().any(|v| v.valid) && verdicts.iter().all(|v| v.valid || v.is_stale_only()),
        "{verdicts:?}\nTP log:\n{}\npool_sv2 log:\n{}",
        tp.log().join("\n"),
        pool.log_tail(40)
    );
    assert!(tproxy.exited().is_none(), "{}", tproxy.log_tail(30));

    let Some(capture) = capture else {
        return;
    };
    let captured = tokio::task::spawn_blocking(move || capture.stop())
        .await
        .unwrap();
    let conversations = common::decode_capture(&captured.file, &[&tp_keys]);

    // pool_sv2 to our TP: decrypted with our TP's key log.
    let tdp_link = common::conversation_to(&conversations, tp_addr.port());
    let tdp = common::sv2_messages(tdp_link);
    common::require_seen(
        &captured,
        &conversations,
        tdp_link,
        "pool_sv2's link to our TP",
        &[
            "SetupConnection",
            "SetupConnection.Success",
            "CoinbaseOutputConstraints",
            "NewTemplate",
            "SetNewPrevHash",
            "SubmitSolution",
        ],
        |wanted| tdp.contains(&wanted),
    );

    // translator_sv2 to pool_sv2: a whole handshake, then encrypted segments no key opens.
    let mining = common::conversation_to(&conversations, pool_addr.port());
    assert_eq!(mining.protocol, Protocol::Noise);
    assert_eq!(mining.decryption, Decryption::NoKey);
    let acts: Vec<(sv2_wire::Direction, usize)> = mining
        .transcript
        .entries()
        .iter()
        .filter_map(|e| match &e.event {
            Event::Handshake {
                direction, bytes, ..
            } => Some((*direction, bytes.len())),
            _ => None,
        })
        .collect();
    assert_eq!(
        acts,
        [
            (sv2_wire::Direction::ClientToServer, 64),
            (sv2_wire::Direction::ServerToClient, 234)
        ],
        "{}",
        common::describe_conversations(&conversations)
    );
    let encrypted: Vec<(sv2_wire::Direction, u64)> = mining
        .transcript
        .entries()
        .iter()
        .filter_map(|e| match &e.event {
            Event::Encrypted { direction, len } => Some((*direction, *len)),
            _ => None,
        })
        .collect();
    for direction in [
        sv2_wire::Direction::ClientToServer,
        sv2_wire::Direction::ServerToClient,
    ] {
        let sizes: Vec<u64> = encrypted
            .iter()
            .filter(|(d, _)| *d == direction)
            .map(|(_, len)| *len)
            .collect();
        // Each encrypted frame is at least a 22-byte header and an empty payload's 16-byte MAC.
        assert!(
            !sizes.is_empty() && sizes.iter().all(|len| *len >= 22),
            "{direction:?}: {sizes:?}"
        );
        let side = usize::from(direction == sv2_wire::Direction::ServerToClient);
        assert_eq!(
            mining.unread[side],
            sizes.iter().sum::<u64>(),
            "every unread byte is listed"
        );
    }

    // Our SV1 miner to translator_sv2.
    let sv1 = common::conversation_to(&conversations, downstream_port);
    assert_eq!(sv1.protocol, Protocol::Sv1);
    let lines: Vec<String> = sv1.transcript.sv1_lines().map(|(_, line)| line).collect();
    common::require_seen(
        &captured,
        &conversations,
        sv1,
        "the SV1 miner's link to translator_sv2",
        &[
            "mining.subscribe",
            "mining.authorize",
            "mining.notify",
            "mining.submit",
        ],
        |wanted| lines.iter().any(|l| l.contains(wanted)),
    );
    println!(
        "e2e chain capture: {} Template Distribution frames decrypted, {} encrypted segments on the Mining link listed, {} SV1 lines; {} block(s) at our TP, {} valid",
        tdp.len(),
        encrypted.len(),
        lines.len(),
        verdicts.len(),
        verdicts.iter().filter(|v| v.valid).count()
    );
}
