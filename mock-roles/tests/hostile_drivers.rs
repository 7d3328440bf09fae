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
