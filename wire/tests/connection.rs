//! The connection driver on loopback: Noise both ways, frames both ways, transcripts, and named
//! failures for wrong keys, silence, garbage and closes.

use std::time::Duration;

use sv2_codec::messages::common::SetupConnectionSuccess;
use sv2_codec::messages::mining::SetTarget;
use sv2_codec::noise::keys::{Keypair, SecretKey};
use sv2_codec::noise::{InitiatorConfig, ResponderConfig};
use sv2_codec::types::U256;
use sv2_codec::Message;
use sv2_wire::{unix_now, Connection, Direction, Event, KeyLog, NetError, Transcript};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const SHORT: Duration = Duration::from_millis(300);
const LONG: Duration = Duration::from_secs(10);

fn authority() -> Keypair {
    Keypair::from_secret(SecretKey::from_bytes([0x11; 32]).unwrap())
}

fn responder_config() -> ResponderConfig {
    let now = unix_now();
    ResponderConfig::issue(
        &SecretKey::from_bytes([0x22; 32]).unwrap(),
        &authority(),
        now - 60,
        now + 3600,
    )
}

async fn bind() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    (listener, addr)
}

/// Connects to `addr` and runs the initiator handshake with `config` within `timeout`, which must fail.
async fn initiate_err(addr: &str, config: InitiatorConfig, timeout: Duration) -> NetError {
    let stream = TcpStream::connect(addr).await.unwrap();
    Connection::initiate(stream, config, unix_now(), timeout, &KeyLog::none())
        .await
        .unwrap_err()
}

#[tokio::test]
async fn noise_both_ways_with_transcripts() {
    let (listener, addr) = bind().await;
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut conn = Connection::respond(stream, responder_config(), LONG, &KeyLog::none())
            .await
            .unwrap();
        let got = conn.recv("read SetTarget", LONG).await.unwrap();
        assert!(matches!(got.message, Message::SetTarget(_)));
        // A 200,000-byte frame crosses several AEAD blocks.
        let big = vec![0x5a; 200_000];
        let mut frame = vec![0x00, 0x00, 0x77];
        frame.extend_from_slice(&(big.len() as u32).to_le_bytes()[..3]);
        frame.extend_from_slice(&big);
        conn.send_frame(&frame, "send big").await.unwrap();
        conn.send(
            &SetupConnectionSuccess {
                used_version: 2,
                flags: 0,
            }
            .into(),
        )
        .await
        .unwrap();
        conn.transcript
    });
    let stream = TcpStream::connect(&addr).await.unwrap();
    let mut conn = Connection::initiate(
        stream,
        InitiatorConfig::new(authority().public),
        unix_now(),
        LONG,
        &KeyLog::none(),
    )
    .await
    .unwrap();
    let info = conn.handshake.clone().unwrap();
    assert!(info.established.authenticated);
    conn.send(
        &SetTarget {
            channel_id: 1,
            maximum_target: U256([0xff; 32]),
        }
        .into(),
    )
    .await
    .unwrap();
    // The unknown message type 0x77 under extension 0 is a decode error that keeps the bytes...
    match conn.recv("read big", LONG).await {
        Err(NetError::Decode { frame, .. }) => assert_eq!(frame.len(), 200_006),
        other => panic!("{other:?}"),
    }
    // ...and the connection goes on.
    let next = conn.recv("read success", LONG).await.unwrap();
    assert!(matches!(next.message, Message::SetupConnectionSuccess(_)));

    let server_transcript = server.await.unwrap();
    let kinds: Vec<String> = conn
        .transcript
        .entries()
        .iter()
        .map(|e| match &e.event {
            Event::Handshake { direction, act, .. } => format!("{} act{act}", direction.as_str()),
            Event::Frame {
                direction, wire, ..
            } => {
                // Encrypted: the bytes on the wire are kept beside the plain frame.
                assert!(wire.is_some());
                format!("{} frame", direction.as_str())
            }
            Event::Sv1 { .. } => "sv1".into(),
            Event::Note { text } => format!("note {text}"),
            Event::Encrypted { .. } => "encrypted".into(),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "client-to-server act1",
            "server-to-client act2",
            "client-to-server frame",
            "server-to-client frame",
            "server-to-client frame"
        ]
    );
    assert_eq!(
        conn.transcript.messages(Direction::ServerToClient).count(),
        1
    );
    assert_eq!(
        server_transcript
            .messages(Direction::ClientToServer)
            .count(),
        1
    );
    let json = conn.transcript.to_json();
    assert_eq!(json["entries"].as_array().unwrap().len(), 5);
    assert_eq!(Transcript::from_json(&json).unwrap(), conn.transcript);
}

#[tokio::test]
async fn a_certificate_from_another_authority_fails_act_2() {
    let (listener, addr) = bind().await;
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let _ = Connection::respond(stream, responder_config(), LONG, &KeyLog::none()).await;
    });
    let other = Keypair::from_secret(SecretKey::from_bytes([0x33; 32]).unwrap());
    let err = initiate_err(&addr, InitiatorConfig::new(other.public), LONG).await;
    assert!(
        matches!(
            err,
            NetError::Noise {
                step: "handshake act 2",
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn silence_and_short_answers_are_timeouts_or_closes_named_by_step() {
    // A server that accepts and says nothing.
    let (listener, addr) = bind().await;
    let silent = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut sink = [0u8; 64];
        let _ = stream.read_exact(&mut sink).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
    });
    let err = initiate_err(&addr, InitiatorConfig::unauthenticated(), SHORT).await;
    assert!(
        matches!(
            err,
            NetError::Timeout {
                step: "handshake act 2",
                ..
            }
        ),
        "{err}"
    );
    silent.abort();

    // A server that sends 100 bytes of act 2 and closes: the error keeps them.
    let (listener, addr) = bind().await;
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut act1 = [0u8; 64];
        stream.read_exact(&mut act1).await.unwrap();
        stream.write_all(&[0x5a; 100]).await.unwrap();
    });
    let err = initiate_err(&addr, InitiatorConfig::unauthenticated(), LONG).await;
    assert!(
        matches!(
            &err,
            NetError::Closed {
                step: "handshake act 2",
                received,
            } if received == &[0x5a; 100]
        ),
        "{err}"
    );
    assert!(
        err.to_string().ends_with(&format!(
            "received 100 B: {}... (\"{}\")",
            "5a".repeat(64),
            "Z".repeat(64)
        )),
        "{err}"
    );

    // An HTTP server answering the handshake, then silent: a timeout that shows what came.
    let (listener, addr) = bind().await;
    let http = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut act1 = [0u8; 64];
        stream.read_exact(&mut act1).await.unwrap();
        stream
            .write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
    });
    let err = initiate_err(&addr, InitiatorConfig::unauthenticated(), SHORT).await;
    assert!(
        matches!(&err, NetError::Timeout { received, .. } if received.starts_with(b"HTTP/1.1 400")),
        "{err}"
    );
    assert!(
        err.to_string().contains("HTTP/1.1 400 Bad Request"),
        "{err}"
    );
    http.abort();

    // A server that answers 234 bytes of garbage.
    let (listener, addr) = bind().await;
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut act1 = [0u8; 64];
        stream.read_exact(&mut act1).await.unwrap();
        stream.write_all(&[0xa5; 234]).await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
    });
    let err = initiate_err(&addr, InitiatorConfig::unauthenticated(), LONG).await;
    assert!(
        matches!(
            err,
            NetError::Noise {
                step: "handshake act 2",
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_responder_gets_garbage_or_a_plaintext_setup_instead_of_act_1() {
    let (listener, addr) = bind().await;
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        Connection::respond(stream, responder_config(), LONG, &KeyLog::none()).await
    });
    let mut client = TcpStream::connect(&addr).await.unwrap();
    // 64 bytes that happen to be a plaintext frame header and more: any 64 bytes are a valid
    // ElligatorSwift encoding, so the responder answers act 2, and the failure shows up later, at the
    // first transport frame. Here the client just closes.
    client.write_all(&[0u8; 64]).await.unwrap();
    let mut act2 = [0u8; 234];
    client.read_exact(&mut act2).await.unwrap();
    drop(client);
    let mut conn = server.await.unwrap().unwrap();
    let err = conn.recv("first frame", LONG).await.unwrap_err();
    assert!(
        matches!(
            err,
            NetError::Closed {
                step: "first frame",
                ..
            }
        ),
        "{err}"
    );

    // Garbage after the handshake fails the first frame's MAC.
    let (listener, addr) = bind().await;
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut conn = Connection::respond(stream, responder_config(), LONG, &KeyLog::none())
            .await
            .unwrap();
        conn.recv("first frame", LONG).await
    });
    let mut client = TcpStream::connect(&addr).await.unwrap();
    client.write_all(&[7u8; 64]).await.unwrap();
    let mut act2 = [0u8; 234];
    client.read_exact(&mut act2).await.unwrap();
    client.write_all(&[0u8; 22]).await.unwrap();
    let err = server.await.unwrap().unwrap_err();
    assert!(
        matches!(
            err,
            NetError::Noise {
                step: "first frame",
                ..
            }
        ),
        "{err}"
    );
}

/// A responder that reads act 1 within `timeout` from a client that writes `bytes` and then waits
/// (`close`: closes instead): the error.
async fn respond_to(bytes: Vec<u8>, close: bool, timeout: Duration) -> NetError {
    let (listener, addr) = bind().await;
    let client = tokio::spawn(async move {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        stream.write_all(&bytes).await.unwrap();
        if !close {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    });
    let (stream, _) = listener.accept().await.unwrap();
    let err = Connection::respond(stream, responder_config(), timeout, &KeyLog::none())
        .await
        .unwrap_err();
    client.abort();
    err
}

#[tokio::test]
async fn a_short_act_1_says_what_was_expected_and_what_it_looks_like() {
    // A pre-standard client: a 2-byte length prefix (32), then a 32-byte key. 34 bytes, then silence.
    let mut prefixed = vec![0x20, 0x00];
    prefixed.extend_from_slice(&[0x77; 32]);
    let err = respond_to(prefixed, false, SHORT).await;
    let text = err.to_string();
    assert!(
        matches!(&err, NetError::Timeout { step: "handshake act 1", received, .. } if received.len() == 34),
        "{text}"
    );
    assert!(
        text.starts_with("handshake act 1: no answer within 300ms; act 1 is 64 bytes, 34 came; received 34 B: 2000"),
        "{text}"
    );
    assert!(
        text.ends_with("this looks like pre-standard framing: a 2-byte little-endian length prefix, then the act (the spec's acts have no prefix)"),
        "{text}"
    );

    // The first part of a prefixed 64-byte act (0x40 0x00), then a close.
    let mut partial = vec![0x40, 0x00];
    partial.extend_from_slice(&[0x99; 30]);
    let text = respond_to(partial, true, LONG).await.to_string();
    assert!(
        text.contains("the peer closed the connection; act 1 is 64 bytes, 32 came"),
        "{text}"
    );
    assert!(text.contains("pre-standard framing"), "{text}");

    // Stratum V1 and HTTP clients.
    let sv1 = b"{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[]}\n".to_vec();
    let text = respond_to(sv1, false, SHORT).await.to_string();
    assert!(text.contains("act 1 is 64 bytes, 49 came"), "{text}");
    assert!(
        text.ends_with("this looks like Stratum V1 (JSON-RPC text), not SV2"),
        "{text}"
    );
    let http = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    let text = respond_to(http, true, LONG).await.to_string();
    assert!(text.ends_with("this looks like HTTP, not SV2"), "{text}");

    // Nothing at all.
    let text = respond_to(Vec::new(), false, SHORT).await.to_string();
    assert_eq!(
        text,
        "handshake act 1: no answer within 300ms; nothing came (act 1 is 64 bytes)"
    );
}

/// A plaintext server waiting for the first frame from a client that writes `bytes` (then waits).
async fn first_frame_of(bytes: Vec<u8>) -> Result<Connection<TcpStream>, NetError> {
    let (listener, addr) = bind().await;
    let client = tokio::spawn(async move {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        stream.write_all(&bytes).await.unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
    });
    let (stream, _) = listener.accept().await.unwrap();
    let mut conn = Connection::plaintext(stream, sv2_wire::Side::Server);
    let known = |h: &sv2_codec::Header| {
        if h.extension_type == 0 {
            Ok(())
        } else {
            Err(format!("extension 0x{:04x}", h.extension_type))
        }
    };
    let result = conn.first_frame("first frame", SHORT, known).await;
    client.abort();
    result.map(|()| conn)
}

#[tokio::test]
async fn a_plaintext_first_frame_is_awaited_within_a_deadline_and_its_header_judged() {
    // A whole frame: it waits for recv.
    let frame = sv2_codec::to_frame_bytes(
        &SetTarget {
            channel_id: 1,
            maximum_target: U256([0xff; 32]),
        }
        .into(),
        &[],
    )
    .unwrap();
    let mut conn = first_frame_of(frame).await.unwrap();
    let got = conn.recv("read", SHORT).await.unwrap();
    assert!(matches!(got.message, Message::SetTarget(_)));

    // An SV1 line: its "header" names extension 0x227b; refused at once, with the bytes.
    let sv1 = b"{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[]}\n".to_vec();
    let err = first_frame_of(sv1).await.err().unwrap();
    let text = err.to_string();
    assert!(
        matches!(&err, NetError::NotAFrame { received, .. } if received.len() == 49),
        "{text}"
    );
    assert!(
        text.starts_with("first frame: not an SV2 frame: extension 0x227b; received 49 B: 7b22"),
        "{text}"
    );
    assert!(
        text.ends_with("Stratum V1 (JSON-RPC text), not SV2"),
        "{text}"
    );

    // A plausible header, then too few bytes: a timeout that keeps them.
    let err = first_frame_of(vec![0, 0, 0, 100, 0, 0, 1, 2])
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&err, NetError::Timeout { received, .. } if received == &[0, 0, 0, 100, 0, 0, 1, 2]),
        "{err}"
    );
    assert!(
        err.to_string().contains("received 8 B: 0000006400000102"),
        "{err}"
    );
}
