//! `sv2-probe pcap` on captures built here packet by packet (etherparse's PacketBuilder, classic pcap
//! and pcapng containers): plain SV2, Noise decrypted with a key log (and not without), SV1 lines,
//! TCP out of order with a retransmission and a gap, and hostile files.

use std::net::SocketAddr;
use std::process::Command;

use etherparse::PacketBuilder;
use sv2_codec::messages::common::{SetupConnection, SetupConnectionSuccess};
use sv2_codec::messages::mining::OpenStandardMiningChannel;
use sv2_codec::noise::keys::{Keypair, SecretKey};
use sv2_codec::noise::{Initiator, InitiatorConfig, Responder, ResponderConfig};
use sv2_codec::types::{Str0_255, U256};
use sv2_codec::{to_frame_bytes, Message};

const CLIENT: ([u8; 4], u16) = ([127, 0, 0, 1], 50_000);
const SERVER: ([u8; 4], u16) = ([127, 0, 0, 2], 34_254);

/// One TCP segment of the capture.
struct Seg {
    time_us: u64,
    from_client: bool,
    seq: u32,
    syn: bool,
    fin: bool,
    payload: Vec<u8>,
}

fn ethernet(seg: &Seg) -> Vec<u8> {
    let (src, dst) = if seg.from_client {
        (CLIENT, SERVER)
    } else {
        (SERVER, CLIENT)
    };
    let mut tcp = PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4(src.0, dst.0, 64)
        .tcp(src.1, dst.1, seg.seq, 65_535);
    if seg.syn {
        tcp = tcp.syn();
    }
    if seg.fin {
        tcp = tcp.fin();
    }
    // Every segment but the client's SYN acknowledges something (a SYN/ACK names the server).
    if !(seg.syn && seg.from_client) {
        tcp = tcp.ack(0);
    }
    let mut out = Vec::with_capacity(tcp.size(seg.payload.len()));
    tcp.write(&mut out, &seg.payload).unwrap();
    out
}

/// A classic pcap (microsecond timestamps, little endian, Ethernet).
fn pcap(segs: &[Seg]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&65_535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for s in segs {
        let packet = ethernet(s);
        out.extend_from_slice(&((s.time_us / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((s.time_us % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(packet.len() as u32).to_le_bytes());
        out.extend_from_slice(&(packet.len() as u32).to_le_bytes());
        out.extend_from_slice(&packet);
    }
    out
}

/// The segments of a conversation given as (from_client, bytes) chunks, one segment each, after a
/// SYN from each side; sequence numbers start at 1000 (client) and 5000 (server).
fn conversation(chunks: &[(bool, Vec<u8>)]) -> Vec<Seg> {
    let mut seq = [1000u32, 5000u32];
    let mut segs = vec![
        Seg {
            time_us: 1_700_000_000_000_000,
            from_client: true,
            seq: seq[0] - 1,
            syn: true,
            fin: false,
            payload: vec![],
        },
        Seg {
            time_us: 1_700_000_000_000_100,
            from_client: false,
            seq: seq[1] - 1,
            syn: true,
            fin: false,
            payload: vec![],
        },
    ];
    for (i, (from_client, bytes)) in chunks.iter().enumerate() {
        let side = usize::from(!from_client);
        segs.push(Seg {
            time_us: 1_700_000_000_001_000 + i as u64 * 1000,
            from_client: *from_client,
            seq: seq[side],
            syn: false,
            fin: false,
            payload: bytes.clone(),
        });
        seq[side] = seq[side].wrapping_add(bytes.len() as u32);
    }
    segs
}

fn frame(m: Message<'_>) -> Vec<u8> {
    to_frame_bytes(&m, &[]).unwrap()
}

fn setup() -> Message<'static> {
    SetupConnection {
        protocol: 0,
        min_version: 2,
        max_version: 2,
        flags: 0,
        endpoint_host: Str0_255::default(),
        endpoint_port: 0,
        vendor: Str0_255::new(b"test".to_vec()).unwrap(),
        hardware_version: Str0_255::default(),
        firmware: Str0_255::default(),
        device_id: Str0_255::default(),
    }
    .into()
}

fn success() -> Message<'static> {
    SetupConnectionSuccess {
        used_version: 2,
        flags: 0,
    }
    .into()
}

fn open() -> Message<'static> {
    OpenStandardMiningChannel {
        request_id: 7,
        user_identity: Str0_255::new(b"me".to_vec()).unwrap(),
        nominal_hash_rate: 1.0,
        max_target: U256([0xff; 32]),
    }
    .into()
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run(name: &str, capture: &[u8], keylog: Option<&str>, extra: &[&str]) -> Run {
    let dir = std::env::temp_dir().join(format!("sv2-probe-pcap-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("capture.pcap");
    std::fs::write(&file, capture).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sv2-probe"));
    cmd.arg("pcap").arg(&file).args(extra);
    if let Some(keys) = keylog {
        let path = dir.join("keys.log");
        std::fs::write(&path, keys).unwrap();
        cmd.arg("--keylog").arg(&path);
    }
    let output = cmd.output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn json_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn messages(lines: &[serde_json::Value]) -> Vec<(String, String, String)> {
    lines
        .iter()
        .filter(|l| l.get("message").is_some())
        .map(|l| {
            (
                l["protocol"].as_str().unwrap_or("").to_string(),
                l["message"].as_str().unwrap_or("null").to_string(),
                l["src"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn addr(a: ([u8; 4], u16)) -> String {
    SocketAddr::from(a).to_string()
}

#[test]
fn plain_sv2_out_of_order_and_retransmitted_reads_every_message() {
    let setup = frame(setup());
    let (first, rest) = setup.split_at(10);
    let mut segs = conversation(&[
        (true, first.to_vec()),
        (true, rest.to_vec()),
        (false, frame(success())),
        (true, frame(open())),
    ]);
    // The setup's second half before its first, and the first retransmitted.
    segs.swap(2, 3);
    let again = Seg {
        time_us: segs[3].time_us + 10,
        from_client: true,
        seq: segs[3].seq,
        syn: false,
        fin: false,
        payload: segs[3].payload.clone(),
    };
    segs.insert(4, again);
    let out = run("plain", &pcap(&segs), None, &["--json"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let lines = json_lines(&out.stdout);
    assert_eq!(
        messages(&lines),
        vec![
            ("sv2".into(), "SetupConnection".into(), addr(CLIENT)),
            ("sv2".into(), "SetupConnection.Success".into(), addr(SERVER)),
            (
                "sv2".into(),
                "OpenStandardMiningChannel".into(),
                addr(CLIENT)
            ),
        ]
    );
    let first = &lines[0];
    assert_eq!(first["frame"], hex::encode(&setup));
    assert_eq!(first["fields"]["vendor"], "test");
    assert!((first["time"].as_f64().unwrap() - 1_700_000_000.001).abs() < 0.01);
    let summary = lines.last().unwrap();
    assert_eq!(summary["kind"], "connection");
    assert_eq!(summary["transport"], "sv2");
    assert_eq!(summary["messages"], 3);
    assert_eq!(summary["gaps"], serde_json::json!([0, 0]));
    // Text: one line per message.
    let text = run("plain-text", &pcap(&segs), None, &[]);
    assert!(
        text.stdout
            .contains("sv2 SetupConnection.Success used_version=2 flags=0"),
        "{}",
        text.stdout
    );
}

#[test]
fn noise_is_decrypted_with_the_key_log_and_listed_without_it() {
    let authority = Keypair::generate().unwrap();
    let static_key = SecretKey::generate().unwrap();
    let now = 1_700_000_000;
    let mut responder = Responder::generate(ResponderConfig::issue(
        &static_key,
        &authority,
        now - 60,
        now + 3600,
    ))
    .unwrap();
    let mut initiator = Initiator::generate(InitiatorConfig::unauthenticated()).unwrap();
    let act1 = initiator.write_act1().unwrap();
    let (act2, server) = responder.read_act1(&act1).unwrap();
    let client = initiator.read_act2(&act2, sv2_wire::unix_now()).unwrap();
    let (mut c_enc, _) = client.transport.clone().split();
    let (mut s_enc, _) = server.transport.clone().split();
    let mut c1 = Vec::new();
    c_enc.encrypt_frame(&frame(setup()), &mut c1).unwrap();
    let mut s1 = Vec::new();
    s_enc.encrypt_frame(&frame(success()), &mut s1).unwrap();
    let mut c2 = Vec::new();
    c_enc.encrypt_frame(&frame(open()), &mut c2).unwrap();
    let segs = conversation(&[
        (true, act1),
        (false, act2),
        (true, c1.clone()),
        (false, s1.clone()),
        (true, c2.clone()),
    ]);
    let capture = pcap(&segs);
    let keys = format!("# test\n{}\n", client.key_log_entry().to_line());

    let out = run("noise", &capture, Some(&keys), &["--json"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let lines = json_lines(&out.stdout);
    assert_eq!(
        messages(&lines),
        vec![
            ("sv2-noise-handshake".into(), "act 1".into(), addr(CLIENT)),
            ("sv2-noise-handshake".into(), "act 2".into(), addr(SERVER)),
            ("sv2".into(), "SetupConnection".into(), addr(CLIENT)),
            ("sv2".into(), "SetupConnection.Success".into(), addr(SERVER)),
            (
                "sv2".into(),
                "OpenStandardMiningChannel".into(),
                addr(CLIENT)
            ),
        ]
    );
    let summary = lines.last().unwrap();
    assert_eq!(summary["transport"], "sv2-noise");
    assert_eq!(summary["decryption"], "decrypted");

    // Without the key: the acts, then each encrypted segment with its size on the wire (frame
    // boundaries are encrypted too), and the transport reported unread.
    let out = run("noise-nokey", &capture, None, &["--json"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let lines = json_lines(&out.stdout);
    let encrypted: Vec<(String, u64)> = lines
        .iter()
        .filter(|l| l["protocol"] == "sv2-encrypted")
        .map(|l| {
            assert!(l["message"].is_null(), "{l}");
            (
                l["src"].as_str().unwrap().to_string(),
                l["len"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        encrypted,
        [
            (addr(CLIENT), c1.len() as u64),
            (addr(SERVER), s1.len() as u64),
            (addr(CLIENT), c2.len() as u64),
        ]
    );
    // Caught after the handshake (no SYN, no acts): encrypted, nothing readable, each segment
    // listed with its size, and said so.
    let out = run("noise-midway", &pcap(&segs[4..]), Some(&keys), &["--json"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let lines = json_lines(&out.stdout);
    assert_eq!(
        lines
            .iter()
            .filter(|l| l["protocol"] == "sv2-encrypted")
            .count(),
        3,
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("began after the Noise handshake"),
        "{}",
        out.stdout
    );
    let summary = lines.last().unwrap();
    assert_eq!(summary["transport"], "sv2-noise", "{summary}");
    assert_eq!(summary["decryption"], "no key", "{summary}");
    let text = run("noise-nokey-text", &capture, None, &[]);
    assert!(
        text.stdout
            .contains(&format!("sv2-encrypted (not decrypted) {} bytes", c1.len())),
        "{}",
        text.stdout
    );
    let summary = lines.last().unwrap();
    assert_eq!(summary["decryption"], "no key");
    let unread = summary["unread"].as_array().unwrap();
    assert!(
        unread[0].as_u64().unwrap() > 0 && unread[1].as_u64().unwrap() > 0,
        "{summary}"
    );
}

#[test]
fn sv1_lines_a_gap_and_the_monitor() {
    let segs = conversation(&[
        (
            true,
            b"{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[]}\n".to_vec(),
        ),
        (
            false,
            b"{\"id\":1,\"result\":[[],\"00\",4],\"error\":null}\n".to_vec(),
        ),
    ]);
    let out = run("sv1", &pcap(&segs), None, &["--json"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let lines = json_lines(&out.stdout);
    assert_eq!(
        messages(&lines),
        vec![
            ("sv1".into(), "mining.subscribe".into(), addr(CLIENT)),
            ("sv1".into(), "response".into(), addr(SERVER)),
        ]
    );
    assert_eq!(lines[1]["id"], 1);

    // A segment the capture missed: the gap is reported with its size, and the rest still read.
    let mut segs = conversation(&[
        (true, frame(setup())),
        (false, frame(success())),
        (true, vec![0xaa; 37]),
        (true, frame(open())),
    ]);
    segs.remove(4);
    let out = run("gap", &pcap(&segs), None, &["--json"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let lines = json_lines(&out.stdout);
    assert!(
        lines.iter().any(|l| l["note"]
            .as_str()
            .is_some_and(|n| n.contains("37 bytes missing"))),
        "{}",
        out.stdout
    );
    assert_eq!(lines.last().unwrap()["gaps"], serde_json::json!([37, 0]));
    assert!(messages(&lines)
        .iter()
        .any(|(_, m, _)| m == "OpenStandardMiningChannel"));

    // A gap inside a frame: the reader resynchronises at the next frame that is plausible (a
    // known header, its frame complete and followed by another or by the end).
    let open_frame = frame(open());
    let (head, tail) = open_frame.split_at(9);
    let mut chunk = tail.to_vec();
    chunk.extend_from_slice(&frame(open()));
    let mut segs = conversation(&[
        (true, frame(setup())),
        (false, frame(success())),
        (true, head.to_vec()),
        (true, chunk),
    ]);
    segs.remove(4);
    let out = run("resync", &pcap(&segs), None, &["--json"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let lines = json_lines(&out.stdout);
    let skipped = format!("{} bytes skipped", tail.len());
    assert!(
        lines
            .iter()
            .any(|l| l["note"].as_str().is_some_and(|n| n.contains(&skipped))),
        "{}",
        out.stdout
    );
    let names = messages(&lines);
    assert_eq!(
        names
            .iter()
            .filter(|(_, m, _)| m == "OpenStandardMiningChannel")
            .count(),
        1,
        "{names:?}"
    );
    assert!(
        !lines.iter().any(|l| l.get("error").is_some()),
        "no frame that does not decode after resynchronising: {}",
        out.stdout
    );

    // --monitor: a server that answers with a wrong channel_msg bit fails that rule.
    let mut bad = frame(success());
    bad[1] |= 0x80;
    let segs = conversation(&[(true, frame(setup())), (false, bad)]);
    let out = run("monitor", &pcap(&segs), None, &["--monitor"]);
    assert_eq!(out.code, Some(1), "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("monitor.channel-msg-bit"),
        "{}",
        out.stdout
    );
    // The verdicts as JUnit and JSON files too.
    let dir = std::env::temp_dir().join(format!("sv2-probe-pcap-reports-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (junit, json) = (dir.join("monitor.xml"), dir.join("monitor.json"));
    let out = run(
        "monitor-files",
        &pcap(&segs),
        None,
        &[
            "--monitor",
            "--junit",
            junit.to_str().unwrap(),
            "--json-file",
            json.to_str().unwrap(),
        ],
    );
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("monitor.channel-msg-bit") && xml.contains("<failure"),
        "{xml}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(report["summary"]["fail"].as_u64().unwrap() >= 1, "{report}");
    let _ = std::fs::remove_dir_all(&dir);
    // Without its SYN but from SetupConnection on, the conversation's start is in the capture:
    // the sender of SetupConnection is the client, and it is judged.
    let out = run("monitor-no-syn", &pcap(&segs[2..]), None, &["--monitor"]);
    assert_eq!(out.code, Some(1), "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("monitor.channel-msg-bit"),
        "{}",
        out.stdout
    );
    let out = run("no-syn-json", &pcap(&segs[2..]), None, &["--json"]);
    let summary = json_lines(&out.stdout).pop().unwrap();
    assert_eq!(summary["roles"], "start", "{summary}");
    assert_eq!(summary["client"], addr(CLIENT), "{summary}");

    // Caught mid-way, the server speaking first: the roles come from what each side sends (an
    // answer from the server, a channel request from the client), not from who spoke first; the
    // rules follow a conversation from its start: not judged, and said so.
    let midway = conversation(&[(false, frame(success())), (true, frame(open()))]);
    let out = run("midway-json", &pcap(&midway[2..]), None, &["--json"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let lines = json_lines(&out.stdout);
    assert_eq!(
        messages(&lines),
        vec![
            ("sv2".into(), "SetupConnection.Success".into(), addr(SERVER)),
            (
                "sv2".into(),
                "OpenStandardMiningChannel".into(),
                addr(CLIENT)
            ),
        ]
    );
    let summary = lines.last().unwrap();
    assert_eq!(summary["roles"], "messages", "{summary}");
    assert_eq!(summary["client"], addr(CLIENT), "{summary}");
    assert_eq!(summary["server"], addr(SERVER), "{summary}");
    let out = run("monitor-midway", &pcap(&midway[2..]), None, &["--monitor"]);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("not judged: connection(s) 1"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("FAIL"), "{}", out.stdout);
}

#[test]
fn hostile_files_are_typed_errors_and_what_came_before_is_decoded() {
    // Not a capture.
    let out = run("garbage", b"this is not a capture at all", None, &[]);
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("not a pcap"), "{}", out.stderr);
    // Truncated inside a packet: the messages before it, then an error.
    let segs = conversation(&[(true, frame(setup())), (false, frame(success()))]);
    let mut capture = pcap(&segs);
    capture.truncate(capture.len() - 5);
    let out = run("truncated", &capture, None, &["--json"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("truncated"), "{}", out.stderr);
    assert!(out.stdout.contains("SetupConnection"), "{}", out.stdout);
    // A record claiming 2 GiB.
    let mut capture = pcap(&segs[..1]);
    capture.extend_from_slice(&[0; 8]);
    capture.extend_from_slice(&0x8000_0000u32.to_le_bytes());
    capture.extend_from_slice(&0x8000_0000u32.to_le_bytes());
    capture.extend_from_slice(&[0; 64]);
    let out = run("huge", &capture, None, &[]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    // Random bytes after a valid header: never a panic.
    let mut capture = pcap(&segs);
    for (i, b) in capture.iter_mut().enumerate().skip(24) {
        *b ^= (i * 31 % 251) as u8;
    }
    let out = run("scrambled", &capture, None, &[]);
    assert!(
        matches!(out.code, Some(0) | Some(2)),
        "{:?} {}",
        out.code,
        out.stderr
    );
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
}
