//! Hostile peers on either side of the relay: every answer is a typed end of that pair (with a note
//! saying why), never a panic or a hang, and the relay goes on serving the next client.

use std::time::Duration;

use sv2_codec::noise::keys::{Keypair, SecretKey};
use sv2_codec::noise::ResponderConfig;
use sv2_scenario::relay::{serve, PairRecord, RelayConfig, RelayHandle};
use sv2_wire::{unix_now, Event};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

async fn relay(config: RelayConfig) -> (RelayHandle, mpsc::UnboundedReceiver<PairRecord>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut config = config;
    config.ended = Some(tx);
    (
        serve(TcpListener::bind("127.0.0.1:0").await.unwrap(), config).unwrap(),
        rx,
    )
}

async fn next(ended: &mut mpsc::UnboundedReceiver<PairRecord>) -> PairRecord {
    tokio::time::timeout(Duration::from_secs(20), ended.recv())
        .await
        .expect("the pair ends")
        .unwrap()
}

fn notes(record: &PairRecord) -> String {
    record
        .downstream
        .entries()
        .iter()
        .chain(record.upstream.entries())
        .filter_map(|e| match &e.event {
            Event::Note { text } => Some(text.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Plaintext both ways: a frame that does not decode is relayed byte for byte, both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_that_do_not_decode_are_relayed_as_they_came() {
    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (relay, mut ended) = relay(RelayConfig::new(upstream.local_addr().unwrap())).await;
    // SetupConnection (0x00) with a 3-byte payload: not a SetupConnection, still a frame.
    let bad = [0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0xaa, 0xbb, 0xcc];
    let mut client = TcpStream::connect(relay.addr).await.unwrap();
    client.write_all(&bad).await.unwrap();
    let (mut server, _) = upstream.accept().await.unwrap();
    let mut got = [0u8; 9];
    server.read_exact(&mut got).await.unwrap();
    assert_eq!(got, bad);
    // And back: an unknown message type of the core protocol.
    let back = [0x00, 0x00, 0x7f, 0x01, 0x00, 0x00, 0x42];
    server.write_all(&back).await.unwrap();
    let mut got = [0u8; 7];
    client.read_exact(&mut got).await.unwrap();
    assert_eq!(got, back);
    drop(client);
    let record = next(&mut ended).await;
    assert!(record.end.contains("downstream"), "{}", record.end);
    relay.shutdown();
}

/// A client whose bytes are not a Noise act 1, a client that says nothing, a server that never
/// answers act 1, a server that is not there: each pair ends, says why, and the relay serves on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_handshakes_and_dead_legs_end_only_their_pair() {
    let authority = Keypair::generate().unwrap();
    let now = unix_now();
    // An upstream that accepts and never speaks.
    let mute = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mute_addr = mute.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = mute.accept().await {
            held.push(s);
        }
    });
    let mut config = RelayConfig::new(mute_addr);
    config.downstream_noise = Some(ResponderConfig::issue(
        &SecretKey::generate().unwrap(),
        &authority,
        now - 60,
        now + 3600,
    ));
    config.upstream_noise = Some(None);
    config.handshake_timeout = Duration::from_millis(500);
    let (relay, mut ended) = relay(config).await;

    // 1. An SV1 line instead of act 1 (shorter than an act: 64 bytes of anything would be a valid
    //    ElligatorSwift key): the downstream handshake fails, and the note says what came.
    let mut c = TcpStream::connect(relay.addr).await.unwrap();
    c.write_all(b"{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[]}\n")
        .await
        .unwrap();
    let record = next(&mut ended).await;
    assert!(
        record.end.contains("downstream handshake"),
        "{}",
        record.end
    );
    assert!(notes(&record).contains("Stratum V1"), "{}", notes(&record));

    // 2. Silence: the handshake times out.
    let _silent = TcpStream::connect(relay.addr).await.unwrap();
    let record = next(&mut ended).await;
    assert!(
        record.end.contains("downstream handshake"),
        "{}",
        record.end
    );

    // 3. A real client; the server never answers act 1: the upstream handshake times out and the
    //    client's connection is closed.
    let client = tokio::spawn({
        let addr = relay.addr;
        let key = authority.public;
        async move {
            let stream = TcpStream::connect(addr).await.unwrap();
            sv2_wire::Connection::initiate_now(
                stream,
                sv2_codec::noise::InitiatorConfig::new(key),
                Duration::from_secs(5),
                &sv2_wire::KeyLog::none(),
            )
            .await
            .map(|mut c| async move { c.recv_frame("wait", Duration::from_secs(5)).await })
        }
    });
    let record = next(&mut ended).await;
    assert!(record.end.contains("upstream"), "{}", record.end);
    if let Ok(Ok(waiting)) = client.await {
        assert!(waiting.await.is_err(), "the client's connection is closed");
    }
    relay.shutdown();

    // 4. No server at all.
    let gone = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gone_addr = gone.local_addr().unwrap();
    drop(gone);
    let (relay, mut ended) = relay_plain(gone_addr).await;
    let _c = TcpStream::connect(relay.addr).await.unwrap();
    let record = next(&mut ended).await;
    assert!(record.end.contains("upstream"), "{}", record.end);
    relay.shutdown();
}

async fn relay_plain(
    upstream: std::net::SocketAddr,
) -> (RelayHandle, mpsc::UnboundedReceiver<PairRecord>) {
    let mut config = RelayConfig::new(upstream);
    config.idle_timeout = Duration::from_millis(300);
    relay(config).await
}

/// Both legs silent past the idle timeout: the pair ends; a huge claimed frame from the client does
/// not make the relay wait forever or allocate it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_pairs_and_huge_claimed_frames_end() {
    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (relay, mut ended) = relay_plain(upstream.local_addr().unwrap()).await;
    let _client = TcpStream::connect(relay.addr).await.unwrap();
    let (_server, _) = upstream.accept().await.unwrap();
    let record = next(&mut ended).await;
    assert!(record.end.contains("no answer within"), "{}", record.end);

    // msg_length 0xffffff, then a few bytes, then nothing.
    let mut client = TcpStream::connect(relay.addr).await.unwrap();
    let (_server, _) = upstream.accept().await.unwrap();
    client
        .write_all(&[0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 1, 2, 3])
        .await
        .unwrap();
    let record = next(&mut ended).await;
    assert!(!record.end.is_empty());
    relay.shutdown();
}
