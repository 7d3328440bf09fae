//! Capture decoding speed: a generated capture of SV2 connections (plain, and Noise with their key
//! log) read as `sv2-probe pcap` reads it (pcap blocks, TCP reassembly, stream decoders, decryption,
//! strict decoding into transcripts) on one core, in messages/s and MB/s; and the same files through
//! `tshark` with the toolkit's Lua dissector when both are here, in the same run.
//!
//!   cargo bench -p sv2-benches --bench capture                  # 1,000 connections x 1,000 messages
//!   CONNECTIONS=100 MESSAGES=100 cargo bench -p sv2-benches --bench capture
//!
//!   KEEP=1 cargo bench -p sv2-benches --bench capture           # keep the captures and key logs
//!
//! Under `cargo test` (no `--bench` argument) it runs a tiny capture once, as a smoke test.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Instant;

use etherparse::PacketBuilder;
use sv2_codec::messages::common::{SetupConnection, SetupConnectionSuccess};
use sv2_codec::messages::mining::{SubmitSharesStandard, SubmitSharesSuccess};
use sv2_codec::noise::keylog::KeyLogEntry;
use sv2_codec::noise::keys::{Keypair, SecretKey};
use sv2_codec::noise::{Initiator, InitiatorConfig, Responder, ResponderConfig};
use sv2_codec::types::Str0_255;
use sv2_codec::{to_frame_bytes, Message};
use sv2_wire::capture::{CaptureReader, Conversation, Follower, Seen};
use sv2_wire::Event;

/// Messages packed into one TCP segment.
const PER_SEGMENT: usize = 4;

struct Writer<W: Write> {
    out: W,
    time_us: u64,
    server_syn_next: bool,
    bytes: u64,
}

impl<W: Write> Writer<W> {
    fn new(mut out: W) -> Self {
        let mut header = Vec::new();
        header.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        header.extend_from_slice(&2u16.to_le_bytes());
        header.extend_from_slice(&4u16.to_le_bytes());
        header.extend_from_slice(&[0; 8]);
        header.extend_from_slice(&262_144u32.to_le_bytes());
        header.extend_from_slice(&1u32.to_le_bytes());
        out.write_all(&header).unwrap();
        Writer {
            out,
            time_us: 1_700_000_000_000_000,
            server_syn_next: false,
            bytes: 0,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn segment(
        &mut self,
        src: (Ipv4Addr, u16),
        dst: (Ipv4Addr, u16),
        seq: u32,
        syn: bool,
        fin: bool,
        payload: &[u8],
    ) {
        let mut b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4(src.0.octets(), dst.0.octets(), 64)
            .tcp(src.1, dst.1, seq, 65_535);
        if syn {
            b = b.syn();
        }
        if fin {
            b = b.fin();
        }
        // Every segment acknowledges something but a client's SYN (each connection's SYNs come
        // client first, then the server's SYN/ACK).
        if !syn || self.server_syn_next {
            b = b.ack(0);
        }
        if syn {
            self.server_syn_next = !self.server_syn_next;
        }
        let mut packet = Vec::with_capacity(payload.len() + 64);
        b.write(&mut packet, payload).unwrap();
        self.time_us += 7;
        let mut record = Vec::with_capacity(16);
        record.extend_from_slice(&((self.time_us / 1_000_000) as u32).to_le_bytes());
        record.extend_from_slice(&((self.time_us % 1_000_000) as u32).to_le_bytes());
        record.extend_from_slice(&(packet.len() as u32).to_le_bytes());
        record.extend_from_slice(&(packet.len() as u32).to_le_bytes());
        self.out.write_all(&record).unwrap();
        self.out.write_all(&packet).unwrap();
        self.bytes += (record.len() + packet.len()) as u64;
    }
}

fn setup() -> Vec<u8> {
    let m: Message = SetupConnection {
        protocol: 0,
        min_version: 2,
        max_version: 2,
        flags: 0,
        endpoint_host: Str0_255::default(),
        endpoint_port: 0,
        vendor: Str0_255::default(),
        hardware_version: Str0_255::default(),
        firmware: Str0_255::default(),
        device_id: Str0_255::default(),
    }
    .into();
    to_frame_bytes(&m, &[]).unwrap()
}

fn success() -> Vec<u8> {
    let m: Message = SetupConnectionSuccess {
        used_version: 2,
        flags: 0,
    }
    .into();
    to_frame_bytes(&m, &[]).unwrap()
}

fn share(seq: u32) -> Vec<u8> {
    let m: Message = SubmitSharesStandard {
        channel_id: 1,
        sequence_number: seq,
        job_id: 1,
        nonce: seq.wrapping_mul(2_654_435_761),
        ntime: 1_700_000_000,
        version: 0x2000_0000,
    }
    .into();
    to_frame_bytes(&m, &[]).unwrap()
}

fn ack(seq: u32) -> Vec<u8> {
    let m: Message = SubmitSharesSuccess {
        channel_id: 1,
        last_sequence_number: seq,
        new_submits_accepted_count: 1,
        new_shares_sum: 1,
    }
    .into();
    to_frame_bytes(&m, &[]).unwrap()
}

/// Writes `connections` connections of `messages` SV2 messages each (setup, then shares and their
/// acknowledgements), encrypted when `noise`; returns the key-log lines.
fn generate(path: &Path, connections: usize, messages: usize, noise: bool) -> Vec<KeyLogEntry> {
    let file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut w = Writer::new(file);
    let mut keys = Vec::new();
    let authority = Keypair::generate().unwrap();
    let static_key = SecretKey::generate().unwrap();
    let now = sv2_wire::unix_now();
    for c in 0..connections {
        let client = (
            Ipv4Addr::new(127, 0, (c / 250) as u8, (c % 250) as u8 + 1),
            40_000 + (c % 20_000) as u16,
        );
        let server = (Ipv4Addr::new(127, 1, 0, 1), 34_254);
        let mut seq = [1_000u32, 9_000u32];
        w.segment(client, server, seq[0] - 1, true, false, &[]);
        w.segment(server, client, seq[1] - 1, true, false, &[]);
        let send = |w: &mut Writer<_>, from_client: bool, bytes: &[u8], seq: &mut [u32; 2]| {
            let side = usize::from(!from_client);
            let (src, dst) = if from_client {
                (client, server)
            } else {
                (server, client)
            };
            w.segment(src, dst, seq[side], false, false, bytes);
            seq[side] = seq[side].wrapping_add(bytes.len() as u32);
        };
        let mut encrypt: Option<(sv2_codec::noise::Encryptor, sv2_codec::noise::Encryptor)> = None;
        if noise {
            let mut responder = Responder::generate(ResponderConfig::issue(
                &static_key,
                &authority,
                now - 60,
                now + 3600,
            ))
            .unwrap();
            let mut initiator = Initiator::generate(InitiatorConfig::unauthenticated()).unwrap();
            let act1 = initiator.write_act1().unwrap();
            let (act2, server_side) = responder.read_act1(&act1).unwrap();
            let client_side = initiator.read_act2(&act2, now).unwrap();
            keys.push(client_side.key_log_entry());
            send(&mut w, true, &act1, &mut seq);
            send(&mut w, false, &act2, &mut seq);
            encrypt = Some((
                client_side.transport.split().0,
                server_side.transport.split().0,
            ));
        }
        let wire =
            |from_client: bool,
             frame: Vec<u8>,
             encrypt: &mut Option<(sv2_codec::noise::Encryptor, sv2_codec::noise::Encryptor)>|
             -> Vec<u8> {
                match encrypt {
                    Some((c, s)) => {
                        let mut out = Vec::new();
                        let e = if from_client { c } else { s };
                        e.encrypt_frame(&frame, &mut out).unwrap();
                        out
                    }
                    None => frame,
                }
            };
        let setup_bytes = wire(true, setup(), &mut encrypt);
        send(&mut w, true, &setup_bytes, &mut seq);
        let success_bytes = wire(false, success(), &mut encrypt);
        send(&mut w, false, &success_bytes, &mut seq);
        // The rest: batches of shares, then batches of their acknowledgements.
        let mut i = 2;
        while i < messages {
            let n = PER_SEGMENT.min(messages - i).div_ceil(2);
            let mut shares = Vec::new();
            let mut acks = Vec::new();
            for k in 0..n {
                let s = (i + k) as u32;
                shares.extend(wire(true, share(s), &mut encrypt));
                acks.extend(wire(false, ack(s), &mut encrypt));
            }
            send(&mut w, true, &shares, &mut seq);
            send(&mut w, false, &acks, &mut seq);
            i += 2 * n;
        }
        let (c0, s0) = (seq[0], seq[1]);
        w.segment(client, server, c0, false, true, &[]);
        w.segment(server, client, s0, false, true, &[]);
    }
    w.out.flush().unwrap();
    keys
}

/// Reads the capture as `sv2-probe pcap` does: returns (messages decoded, frames that failed).
fn decode(path: &Path, keys: Vec<KeyLogEntry>) -> (u64, u64) {
    let file = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(path).unwrap());
    let reader = CaptureReader::new(file).unwrap();
    let mut follower = Follower::new(keys);
    let (mut ok, mut bad) = (0u64, 0u64);
    let mut count = |conv: &Conversation| {
        for e in conv.transcript.entries() {
            match &e.event {
                Event::Frame { decoded: Ok(_), .. } => ok += 1,
                Event::Frame {
                    decoded: Err(_), ..
                } => bad += 1,
                _ => {}
            }
        }
    };
    let end = follower
        .read_capture(reader, |seen| {
            if let Seen::Ended(conv) = seen {
                count(&conv);
            }
            Ok::<_, ()>(())
        })
        .unwrap();
    assert!(end.error.is_none(), "{:?}", end.error);
    for conv in follower.finish() {
        count(&conv);
    }
    (ok, bad)
}

/// tshark with the dissector over `path`: (SV2 messages it named, seconds), when both are here.
fn tshark(path: &Path, keys: Option<&Path>) -> Option<(u64, f64)> {
    let lua = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dissector/sv2.lua");
    if !lua.exists() {
        return None;
    }
    let mut cmd = std::process::Command::new("tshark");
    cmd.arg("-r")
        .arg(path)
        .arg("-X")
        .arg(format!("lua_script:{}", lua.display()));
    cmd.args(["-T", "fields", "-e", "frame.number"]);
    let _ = keys;
    let t = Instant::now();
    let output = cmd.output().ok()?;
    let secs = t.elapsed().as_secs_f64();
    output.status.success().then(|| {
        (
            output
                .stdout
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .count() as u64,
            secs,
        )
    })
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let var = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (connections, messages) = if bench {
        (var("CONNECTIONS", 1000), var("MESSAGES", 1000))
    } else {
        (3, 20)
    };
    let dir = std::env::temp_dir().join(format!("sv2-capture-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    println!("capture decoding, {connections} connections x {messages} SV2 messages, one core");
    println!(
        "{:<10} {:>12} {:>10} {:>14} {:>10} {:>14}",
        "capture", "messages", "MB", "messages/s", "MB/s", "tshark msg/s"
    );
    for noise in [false, true] {
        let path = dir.join(if noise { "noise.pcap" } else { "plain.pcap" });
        let keys = generate(&path, connections, messages, noise);
        if std::env::var_os("KEEP").is_some() {
            let lines: String = keys.iter().map(|k| k.to_line() + "\n").collect();
            std::fs::write(path.with_extension("keylog"), lines).unwrap();
        }
        let size = std::fs::metadata(&path).unwrap().len() as f64 / 1e6;
        let t = Instant::now();
        let (ok, bad) = decode(&path, keys.clone());
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(bad, 0, "every generated frame decodes");
        assert_eq!(ok, (connections * messages) as u64, "every message is read");
        let theirs = if bench {
            tshark(&path, None).map(|(_, s)| format!("{:.0}", ok as f64 / s))
        } else {
            None
        };
        println!(
            "{:<10} {:>12} {:>10.1} {:>14.0} {:>10.1} {:>14}",
            if noise { "noise" } else { "plain" },
            ok,
            size,
            ok as f64 / secs,
            size / secs,
            theirs.unwrap_or_else(|| "-".into())
        );
    }
    if std::env::var_os("KEEP").is_some() {
        println!("captures kept in {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
