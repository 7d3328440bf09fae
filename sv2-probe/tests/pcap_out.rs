//! `--pcap FILE` of the network commands, run as the real binary against the mock pool: FILE is a
//! pcapng holding the session as TCP packets (the Noise handshake's 64-byte act 1, then the 234-byte
//! act 2), and FILE.keylog holds the session's key-log line.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use pcap_parser::{parse_pcapng, Block};

/// A TCP segment read back: (source, destination, SYN, FIN, payload).
type Segment = (SocketAddr, SocketAddr, bool, bool, Vec<u8>);

fn segments(path: &Path) -> Vec<Segment> {
    let bytes = std::fs::read(path).unwrap();
    let (rest, capture) = parse_pcapng(&bytes).expect("a pcapng capture");
    assert!(rest.is_empty());
    let mut out = Vec::new();
    for block in capture.sections.iter().flat_map(|s| s.blocks.iter()) {
        if let Block::EnhancedPacket(epb) = block {
            let packet = SlicedPacket::from_ethernet(&epb.data[..epb.caplen as usize]).unwrap();
            let (src, dst) = match packet.net.unwrap() {
                NetSlice::Ipv4(ip) => (
                    ip.header().source_addr().into(),
                    ip.header().destination_addr().into(),
                ),
                NetSlice::Ipv6(ip) => (
                    ip.header().source_addr().into(),
                    ip.header().destination_addr().into(),
                ),
                NetSlice::Arp(_) => panic!("ARP"),
            };
            let Some(TransportSlice::Tcp(tcp)) = packet.transport else {
                panic!("not TCP")
            };
            out.push((
                SocketAddr::new(src, tcp.source_port()),
                SocketAddr::new(dst, tcp.destination_port()),
                tcp.syn(),
                tcp.fin(),
                tcp.payload().to_vec(),
            ));
        }
    }
    out
}

/// The payloads of one connection's direction, in order.
fn payloads(segments: &[Segment], src: SocketAddr, dst: SocketAddr) -> Vec<&[u8]> {
    segments
        .iter()
        .filter(|s| s.0 == src && s.1 == dst && !s.4.is_empty())
        .map(|s| s.4.as_slice())
        .collect()
}

/// If tshark is installed, it reads the capture (otherwise nothing is checked here).
fn tshark_reads(path: &Path) {
    let Ok(output) = Command::new("tshark").arg("-r").arg(path).output() else {
        return;
    };
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!output.stdout.is_empty());
}

#[test]
fn probe_writes_a_capture_and_its_key_log() {
    let dir = std::env::temp_dir().join(format!("sv2-probe-pcap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("probe.pcapng");
    let (mut pool, url) = common::mock_pool(60);
    let output = Command::new(env!("CARGO_BIN_EXE_sv2-probe"))
        .arg("probe")
        .arg(&url)
        .args(["--no-share", "--timeout", "5", "--pcap"])
        .arg(&pcap)
        .output()
        .expect("run the probe");
    let _ = pool.kill();
    let _ = pool.wait();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let segments = segments(&pcap);
    let syn = segments.iter().find(|s| s.2).expect("a SYN");
    let (client, server) = (syn.0, syn.1);
    assert_eq!(server.port(), url_port(&url));
    assert!(segments.iter().any(|s| s.3), "a FIN");
    let sent = payloads(&segments, client, server);
    let received = payloads(&segments, server, client);
    assert_eq!(sent[0].len(), 64, "act 1");
    assert_eq!(received[0].len(), 234, "act 2");
    // Then encrypted frames: SetupConnection and its answer, at least.
    assert!(sent.len() >= 2 && received.len() >= 2);

    let keylog = std::fs::read_to_string(dir.join("probe.pcapng.keylog")).unwrap();
    let lines: Vec<&str> = keylog.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{keylog}");
    let entry = sv2_codec::noise::KeyLogEntry::parse_line(lines[0])
        .unwrap()
        .unwrap();
    assert!(
        entry.matches_act1(sent[0]),
        "the key-log line names this session's act 1"
    );
    tshark_reads(&pcap);

    // The toolkit reads its own capture back: pcapng, Noise decrypted with the key log beside it,
    // every message of the probe's session by name.
    let read = Command::new(env!("CARGO_BIN_EXE_sv2-probe"))
        .arg("pcap")
        .arg(&pcap)
        .arg("--keylog")
        .arg(dir.join("probe.pcapng.keylog"))
        .arg("--json")
        .output()
        .expect("run sv2-probe pcap");
    let text = String::from_utf8_lossy(&read.stdout);
    assert_eq!(
        read.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&read.stderr)
    );
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.get("message").and_then(|m| m.as_str()))
        .collect();
    for wanted in [
        "act 1",
        "act 2",
        "SetupConnection",
        "SetupConnection.Success",
        "OpenExtendedMiningChannel",
        "OpenExtendedMiningChannel.Success",
    ] {
        assert!(names.contains(&wanted), "{wanted} not in {names:?}");
    }
    let summary = lines.last().unwrap();
    assert_eq!(summary["decryption"], "decrypted", "{summary}");
    assert_eq!(summary["gaps"], serde_json::json!([0, 0]), "{summary}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn conformance_writes_every_connection() {
    let dir = std::env::temp_dir().join(format!("sv2-conformance-pcap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("run.pcapng");
    let (mut pool, url) = common::mock_pool(60);
    let output = Command::new(env!("CARGO_BIN_EXE_sv2-probe"))
        .args([
            "conformance",
            "--target",
            &url,
            "--only",
            "setup",
            "--timeout",
            "2",
            "--pcap",
        ])
        .arg(&pcap)
        .output()
        .expect("run the conformance suite");
    let _ = pool.kill();
    let _ = pool.wait();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.code().is_some_and(|c| c <= 1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let segments = segments(&pcap);
    // One connection per transcript, each from its own client port: a SYN to the pool each.
    let port = url_port(&url);
    let mut opened: Vec<SocketAddr> = segments
        .iter()
        .filter(|s| s.2 && s.1.port() == port)
        .map(|s| s.0)
        .collect();
    let total = opened.len();
    assert!(total >= 2, "several connections");
    opened.sort();
    opened.dedup();
    assert_eq!(opened.len(), total, "distinct client ports");

    // Every completed Noise handshake has its key-log line, and each line names an act 1 in the capture.
    let keylog = std::fs::read_to_string(dir.join("run.pcapng.keylog")).unwrap();
    let entries = sv2_codec::noise::keylog::parse(&keylog).unwrap();
    assert!(!entries.is_empty());
    for entry in &entries {
        assert!(
            opened
                .iter()
                .any(|c| payloads(&segments, *c, server_of(&segments, *c))
                    .first()
                    .is_some_and(|a| entry.matches_act1(a))),
            "a key-log line without its session"
        );
    }
    tshark_reads(&pcap);
    let _ = std::fs::remove_dir_all(&dir);
}

fn url_port(url: &str) -> u16 {
    url.split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn server_of(segments: &[Segment], client: SocketAddr) -> SocketAddr {
    segments.iter().find(|s| s.0 == client).unwrap().1
}

#[test]
fn mine_writes_its_conversation() {
    let dir = std::env::temp_dir().join(format!("sv2-mine-pcap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("mine.pcapng");
    let (mut pool, url) = common::mock_pool(60);
    let output = Command::new(env!("CARGO_BIN_EXE_sv2-probe"))
        .args([
            "mine",
            &url,
            "--seconds",
            "3",
            "--hashrate",
            "10000",
            "--json",
            "--pcap",
        ])
        .arg(&pcap)
        .output()
        .expect("run the miner");
    let _ = pool.kill();
    let _ = pool.wait();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");

    let segments = segments(&pcap);
    let port = url_port(&url);
    let syn = segments
        .iter()
        .find(|s| s.2 && s.1.port() == port)
        .expect("a SYN to the pool");
    let sent = payloads(&segments, syn.0, syn.1);
    let received = payloads(&segments, syn.1, syn.0);
    assert_eq!(sent[0].len(), 64, "act 1");
    assert_eq!(received[0].len(), 234, "act 2");
    // Setup, channel, shares and their answers.
    assert!(sent.len() >= 3 && received.len() >= 3);
    let keylog = std::fs::read_to_string(dir.join("mine.pcapng.keylog")).unwrap();
    let entries = sv2_codec::noise::keylog::parse(&keylog).unwrap();
    assert_eq!(entries.len(), 1, "{keylog}");
    assert!(entries[0].matches_act1(sent[0]));
    tshark_reads(&pcap);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_failed_handshake_is_captured_too() {
    // A peer that reads act 1 and closes.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let mut act1 = [0u8; 64];
            let _ = std::io::Read::read_exact(&mut stream, &mut act1);
        }
    });
    let dir = std::env::temp_dir().join(format!("sv2-probe-pcap-failed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("failed.pcapng");
    let output = Command::new(env!("CARGO_BIN_EXE_sv2-probe"))
        .arg("probe")
        .arg(format!("stratum2+tcp://{addr}"))
        .args(["--no-share", "--timeout", "2", "--pcap"])
        .arg(&pcap)
        .output()
        .expect("run the probe");
    assert_eq!(output.status.code(), Some(1));
    let segments = segments(&pcap);
    let syn = segments.iter().find(|s| s.2).expect("a SYN");
    assert_eq!(syn.1, addr);
    let sent = payloads(&segments, syn.0, syn.1);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].len(), 64, "act 1");
    assert!(payloads(&segments, syn.1, syn.0).is_empty());
    // No session, no key.
    assert_eq!(
        std::fs::read_to_string(dir.join("failed.pcapng.keylog")).unwrap(),
        ""
    );
    let _ = std::fs::remove_dir_all(&dir);
}
