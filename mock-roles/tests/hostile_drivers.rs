//! The mock TP and mock pool on loopback under hostile connections: garbage instead of act 1, a
//! handshake followed by bytes that fail the MAC, an undecodable frame, a silent connection kept open.
//! None of them may take the server down: a well-behaved client afterwards is served normally.

use std::time::Duration;

use sv2_codec::messages::common::SetupConnection;
use sv2_codec::messages::template_distribution::CoinbaseOutputConstraints;
use sv2_codec::noise::keys::Keypair;
use sv2_codec::noise::InitiatorConfig;
use sv2_codec::types::Str0_255;
use sv2_codec::Message;
use sv2_mock::pool::driver::{serve as serve_pool, PoolServerConfig};
use sv2_mock::tp::driver::{serve as serve_tp, TpServerConfig};
use sv2_wire::{Connection, KeyLog, NetError};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

const STEP: Duration = Duration::from_secs(10);

fn setup(protocol: u8) -> Message<'static> {
    SetupConnection {
        protocol,
        min_version: 2,
        max_version: 2,
        flags: 0,
        endpoint_host: Str0_255::new(b"127.0.0.1".to_vec()).unwrap(),
        endpoint_port: 1,
        vendor: Str0_255::new(b"hostile-test".to_vec()).unwrap(),
        hardware_version: Str0_255::default(),
        firmware: Str0_255::default(),
        device_id: Str0_255::default(),
    }
    .into()
}

/// A Noise connection to `addr`, the certificate checked against `authority`.
async fn noise_client(addr: std::net::SocketAddr, authority: &Keypair) -> Connection<TcpStream> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let config = InitiatorConfig::new(authority.public);
    Connection::initiate_now(stream, config, STEP, &KeyLog::none())
        .await
        .unwrap()
}

/// Every kind of bad connection against `addr`; returns the silent one (kept open by the caller).
async fn attack(addr: std::net::SocketAddr, authority: &Keypair) -> TcpStream {
    // Garbage instead of act 1, then close.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&[0xee; 300]).await.unwrap();
    drop(s);

    // A handshake, then 22 bytes that fail the header's MAC.
    let mut conn = noise_client(addr, authority).await;
    conn.send_raw(&[0u8; 22], "bad MAC").await.unwrap();
    let answer = conn.recv("after a bad MAC", STEP).await;
    assert!(
        matches!(
            answer,
            Err(NetError::Closed { .. }) | Err(NetError::Io { .. })
        ),
        "a MAC failure must end the session: {answer:?}"
    );

    // A handshake, then a frame of an unknown message type (0x7f under extension 0), then silence.
    let mut conn = noise_client(addr, authority).await;
    conn.send_frame(&[0, 0, 0x7f, 3, 0, 0, 1, 2, 3], "unknown frame")
        .await
        .unwrap();
    drop(conn);

    // A connection that never says anything, kept open.
    TcpStream::connect(addr).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tp_survives_hostile_connections() {
    let authority = Keypair::generate().unwrap();
    let tp = serve_tp(
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        TpServerConfig::new(authority.clone()).unwrap(),
    )
    .unwrap();
    let _silent = attack(tp.addr, &authority).await;

    let mut conn = noise_client(tp.addr, &authority).await;
    conn.send(&setup(2)).await.unwrap();
    let reply = conn.recv("setup", STEP).await.unwrap();
    assert!(matches!(reply.message, Message::SetupConnectionSuccess(_)));
    conn.send(
        &CoinbaseOutputConstraints {
            coinbase_output_max_additional_size: 100,
            coinbase_output_max_additional_sigops: 0,
        }
        .into(),
    )
    .await
    .unwrap();
    let template = conn.recv("template", STEP).await.unwrap();
    assert!(
        matches!(template.message, Message::NewTemplate(_)),
        "{:?}",
        template.message
    );
    assert!(
        tp.log().iter().any(|l| l.contains("undecodable frame")),
        "{:?}",
        tp.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_survives_hostile_connections() {
    let authority = Keypair::generate().unwrap();
    let pool = serve_pool(
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        PoolServerConfig::new(authority.clone()).unwrap(),
    )
    .await
    .unwrap();
    let _silent = attack(pool.addr, &authority).await;

    let mut conn = noise_client(pool.addr, &authority).await;
    conn.send(&setup(0)).await.unwrap();
    let reply = conn.recv("setup", STEP).await.unwrap();
    assert!(
        matches!(reply.message, Message::SetupConnectionSuccess(_)),
        "{:?}",
        reply.message
    );
}

/// Waits until `log()` has a line containing `want` (10 s at most); the log.
async fn log_line(log: impl Fn() -> Vec<String>, want: &str) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let lines = log();
        if lines.iter().any(|l| l.contains(want)) || tokio::time::Instant::now() >= deadline {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads until the server closes; how long that took (panics after 10 s).
async fn closed_within(stream: &mut TcpStream) -> Duration {
    use tokio::io::AsyncReadExt;
    let started = tokio::time::Instant::now();
    let mut sink = [0u8; 1024];
    loop {
        match tokio::time::timeout(STEP, stream.read(&mut sink)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => {}
            Err(_) => panic!("the server did not close within {STEP:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_act_1_is_logged_with_what_was_expected_and_what_it_looks_like() {
    let authority = Keypair::generate().unwrap();
    let mut config = PoolServerConfig::new(authority.clone()).unwrap();
    config.handshake_timeout = Duration::from_millis(500);
    let pool = serve_pool(TcpListener::bind("127.0.0.1:0").await.unwrap(), config)
        .await
        .unwrap();
    // A pre-standard client: its act 1 is a 2-byte length (32) and a 32-byte key.
    let mut s = TcpStream::connect(pool.addr).await.unwrap();
    let mut act = vec![0x20, 0x00];
    act.extend_from_slice(&[0x42; 32]);
    s.write_all(&act).await.unwrap();
    closed_within(&mut s).await;
    let log = log_line(|| pool.log(), "handshake act 1").await;
    let line = log
        .iter()
        .find(|l| l.contains("handshake act 1"))
        .unwrap_or_else(|| panic!("{log:?}"));
    assert!(
        line.starts_with(
            "session 1: handshake act 1: no answer within 500ms; act 1 is 64 bytes, 34 came; received 34 B: 2000"
        ),
        "{line}"
    );
    assert!(
        line.contains("this looks like pre-standard framing"),
        "{line}"
    );
    assert_eq!(
        log[0],
        format!("session 1: connection from {}", s.local_addr().unwrap())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plaintext_pool_says_what_came_instead_of_a_frame_and_closes() {
    let authority = Keypair::generate().unwrap();
    let mut config = PoolServerConfig::new(authority).unwrap();
    config.noise = None;
    config.handshake_timeout = Duration::from_millis(500);
    let pool = serve_pool(TcpListener::bind("127.0.0.1:0").await.unwrap(), config)
        .await
        .unwrap();

    // An SV1 miner: its header cannot be a frame; closed at once, the line shown as text.
    let mut s = TcpStream::connect(pool.addr).await.unwrap();
    s.write_all(b"{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[\"cpuminer\"]}\n")
        .await
        .unwrap();
    assert!(closed_within(&mut s).await < Duration::from_millis(400));
    let log = log_line(|| pool.log(), "session 1: first frame").await;
    let line = log
        .iter()
        .find(|l| l.starts_with("session 1: first frame"))
        .unwrap_or_else(|| panic!("{log:?}"));
    assert!(
        line.starts_with("session 1: first frame: not an SV2 frame: its header names extension 0x227b message 0x69"),
        "{line}"
    );
    assert!(line.contains("mining.subscribe"), "{line}");
    assert!(
        line.contains("this looks like Stratum V1 (JSON-RPC text), not SV2"),
        "{line}"
    );

    // HTTP.
    let mut s = TcpStream::connect(pool.addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: pool\r\n\r\n")
        .await
        .unwrap();
    closed_within(&mut s).await;
    let log = log_line(|| pool.log(), "session 2: first frame").await;
    assert!(
        log.iter().any(
            |l| l.starts_with("session 2: first frame: not an SV2 frame")
                && l.ends_with("this looks like HTTP, not SV2; closed")
        ),
        "{log:?}"
    );

    // A plausible header (SetupConnection, 200 bytes) and 4 of them: closed after the deadline.
    let mut s = TcpStream::connect(pool.addr).await.unwrap();
    s.write_all(&[0, 0, 0, 200, 0, 0, 2, 0, 2, 0])
        .await
        .unwrap();
    let waited = closed_within(&mut s).await;
    assert!(waited >= Duration::from_millis(400), "{waited:?}");
    let log = log_line(|| pool.log(), "session 3: first frame").await;
    assert!(
        log.iter().any(|l| l
            == "session 3: first frame: no answer within 500ms; received 10 B: 000000c8000002000200; closed"),
        "{log:?}"
    );

    // Silence: closed after the deadline too.
    let mut s = TcpStream::connect(pool.addr).await.unwrap();
    closed_within(&mut s).await;
    let log = log_line(|| pool.log(), "session 4: first frame").await;
    assert!(
        log.iter()
            .any(|l| l == "session 4: first frame: no answer within 500ms; closed"),
        "{log:?}"
    );

    // A well-behaved plaintext client is still served, and its session is named the same way.
    let stream = TcpStream::connect(pool.addr).await.unwrap();
    let mut conn = Connection::plaintext(stream, sv2_wire::Side::Client);
    conn.send(&setup(0)).await.unwrap();
    let reply = conn.recv("setup", STEP).await.unwrap();
    assert!(matches!(reply.message, Message::SetupConnectionSuccess(_)));
    drop(conn);
    let log = log_line(|| pool.log(), "session 5: the peer closed the connection").await;
    let session5: Vec<&String> = log
        .iter()
        .filter(|l| l.starts_with("session 5: "))
        .collect();
    assert_eq!(session5.len(), 3, "{log:?}");
    assert!(session5[0].starts_with("session 5: connection from 127.0.0.1:"));
    assert_eq!(session5[1], "session 5: connected (plaintext)");
    assert_eq!(session5[2], "session 5: the peer closed the connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_log_line_about_a_connection_names_its_session() {
    let authority = Keypair::generate().unwrap();
    let tp = serve_tp(
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        TpServerConfig::new(authority.clone()).unwrap(),
    )
    .unwrap();
    let _silent = attack(tp.addr, &authority).await;
    let log = log_line(|| tp.log(), "undecodable frame").await;
    assert!(log.len() >= 6, "{log:?}");
    for line in &log {
        let rest = line
            .strip_prefix("session ")
            .unwrap_or_else(|| panic!("{line}"));
        let (n, _) = rest.split_once(": ").unwrap_or_else(|| panic!("{line}"));
        assert!(n.parse::<u64>().is_ok(), "{line}");
    }
    // The garbage "act 1" (any 64 bytes are one), then bytes that fail the MAC: session 1.
    assert!(
        log.iter()
            .any(|l| l == "session 1: read: decryption failed: frame header; closed"),
        "{log:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_length_prefixed_act_1_of_64_bytes_is_named_when_the_session_fails() {
    let authority = Keypair::generate().unwrap();
    let pool = serve_pool(
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        PoolServerConfig::new(authority).unwrap(),
    )
    .await
    .unwrap();
    // 40 00, then a 64-byte act: the pool reads the first 64 bytes as act 1 and answers act 2; the
    // client, expecting a prefixed act 2, gives up and closes.
    let mut s = TcpStream::connect(pool.addr).await.unwrap();
    let mut act = vec![0x40, 0x00];
    act.extend_from_slice(&[0x42; 64]);
    s.write_all(&act).await.unwrap();
    let mut act2 = [0u8; 234];
    tokio::io::AsyncReadExt::read_exact(&mut s, &mut act2)
        .await
        .unwrap();
    drop(s);
    let log = log_line(|| pool.log(), "pre-standard").await;
    assert!(
        log.iter().any(
            |l| l.starts_with("session 1: act 1 began with 40 00, its own length")
                && l.contains("this looks like pre-standard framing")
        ),
        "{log:?}"
    );
}
