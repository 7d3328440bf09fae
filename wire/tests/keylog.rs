//! SV2KEYLOGFILE: with the variable set, both ends of a Noise session append the session's key log line,
//! and the line alone decrypts a capture of that session in both directions.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sv2_codec::frame::OwnedFrame;
use sv2_codec::messages::common::SetupConnectionSuccess;
use sv2_codec::messages::mining::SetTarget;
use sv2_codec::noise::keys::{Keypair, SecretKey};
use sv2_codec::noise::{
    Decryptor, InitiatorConfig, KeyLogEntry, ResponderConfig, ACT1_LEN, ACT2_LEN,
};
use sv2_codec::types::U256;
use sv2_codec::{decode_frame, Message};
use sv2_wire::{keylog, unix_now, Connection, KeyLog};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const LONG: Duration = Duration::from_secs(10);

/// Copies `from` into `to` and keeps a copy of every byte (a capture of one direction).
async fn relay(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    capture: Arc<Mutex<Vec<u8>>>,
) {
    let mut buf = [0u8; 4096];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                capture.lock().unwrap().extend_from_slice(&buf[..n]);
                if to.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown().await;
}

/// Every frame of one direction of a capture, decrypted with `key` after the handshake's `skip` bytes.
fn decrypt(capture: &[u8], skip: usize, key: [u8; 32]) -> Vec<OwnedFrame> {
    let mut decryptor = Decryptor::from_key(key);
    let mut rest = &capture[skip..];
    let mut frames = Vec::new();
    while !rest.is_empty() {
        let (used, frame) = decryptor
            .push_frame(rest)
            .expect("the key log's key decrypts");
        rest = &rest[used..];
        if let Some(frame) = frame {
            frames.push(frame);
        }
    }
    frames
}

#[tokio::test]
async fn both_ends_log_the_session_and_the_line_decrypts_its_capture() {
    let dir = std::env::temp_dir().join(format!("sv2-keylog-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("keys.log");
    let _ = std::fs::remove_file(&path);
    // The command-line tool builds its key log from the variable and gives it to both ends.
    std::env::set_var(keylog::ENV, &path);
    let key_log = KeyLog::from_env();
    assert!(key_log.writes_to(&path));
    let server_log = key_log.clone();

    let authority = Keypair::from_secret(SecretKey::from_bytes([0x11; 32]).unwrap());
    let now = unix_now();
    let responder = ResponderConfig::issue(
        &SecretKey::from_bytes([0x22; 32]).unwrap(),
        &authority,
        now - 60,
        now + 3600,
    );
    let server_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server_addr = server_listener.local_addr().unwrap();
    let relay_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let relay_addr = relay_listener.local_addr().unwrap();

    let server = tokio::spawn(async move {
        let (stream, _) = server_listener.accept().await.unwrap();
        let mut conn = Connection::respond(stream, responder, LONG, &server_log)
            .await
            .unwrap();
        conn.recv("read SetTarget", LONG).await.unwrap();
        let success = SetupConnectionSuccess {
            used_version: 2,
            flags: 7,
        };
        conn.send(&success.into()).await.unwrap();
        conn.shutdown().await;
    });
    let upstream = Arc::new(Mutex::new(Vec::new()));
    let downstream = Arc::new(Mutex::new(Vec::new()));
    let (up, down) = (upstream.clone(), downstream.clone());
    let relayed = tokio::spawn(async move {
        let (client_side, _) = relay_listener.accept().await.unwrap();
        let server_side = TcpStream::connect(server_addr).await.unwrap();
        let (cr, cw) = client_side.into_split();
        let (sr, sw) = server_side.into_split();
        tokio::join!(relay(cr, sw, up), relay(sr, cw, down));
    });

    let stream = TcpStream::connect(relay_addr).await.unwrap();
    let config = InitiatorConfig::new(authority.public);
    let mut conn = Connection::initiate(stream, config, now, LONG, &key_log)
        .await
        .unwrap();
    let target = SetTarget {
        channel_id: 9,
        maximum_target: U256([0x7f; 32]),
    };
    conn.send(&target.into()).await.unwrap();
    conn.recv("read success", LONG).await.unwrap();
    conn.shutdown().await;
    server.await.unwrap();
    relayed.await.unwrap();

    let text = std::fs::read_to_string(&path).unwrap();
    let entries: Vec<KeyLogEntry> = text
        .lines()
        .filter_map(|l| KeyLogEntry::parse_line(l).unwrap())
        .collect();
    assert_eq!(entries.len(), 2, "one line per end of the session:\n{text}");
    assert_eq!(entries[0], entries[1], "both ends derive the same keys");
    let upstream = upstream.lock().unwrap().clone();
    let downstream = downstream.lock().unwrap().clone();
    assert!(entries[0].matches_act1(&upstream[..ACT1_LEN]));

    let sent = decrypt(&upstream, ACT1_LEN, entries[0].c1);
    assert_eq!(sent.len(), 1);
    assert!(
        matches!(decode_frame(&sent[0].as_frame()).unwrap().message, Message::SetTarget(t) if t.channel_id == 9)
    );
    let received = decrypt(&downstream, ACT2_LEN, entries[0].c2);
    assert_eq!(received.len(), 1);
    assert!(matches!(
        decode_frame(&received[0].as_frame()).unwrap().message,
        Message::SetupConnectionSuccess(s) if s.flags == 7
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}
