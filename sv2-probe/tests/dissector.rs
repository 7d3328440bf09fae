//! The Wireshark dissector (dissector/sv2.lua): regenerating it gives exactly the committed file, and,
//! with `tshark` on PATH, it reads a synthesised capture holding a frame of every message type exactly as
//! sv2-codec decodes it (message names and every field value), labels Noise acts and encrypted
//! transport, and shows SV1 lines. Without tshark the second test passes with a note, unless
//! SV2_REQUIRE_TSHARK=1 (CI), where it fails.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use etherparse::PacketBuilder;
use pcap_parser::{LegacyPcapBlock, PcapHeader, ToVec};
use serde_json::Value;
use sv2_codec::messages::{MessageInfo, Protocol, MESSAGE_TYPES};
use sv2_codec::{decode_frame, Frame};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn lua_path() -> PathBuf {
    repo_root().join("dissector/sv2.lua")
}

#[test]
fn committed_dissector_is_regenerated_exactly() {
    let out = Command::new(env!("CARGO_BIN_EXE_sv2-probe"))
        .arg("dissector")
        .output()
        .unwrap();
    assert!(out.status.success());
    let generated = String::from_utf8(out.stdout).unwrap();
    let committed = std::fs::read_to_string(lua_path()).unwrap();
    assert!(
        generated == committed,
        "dissector/sv2.lua is stale: run `sv2-probe dissector --out dissector/sv2.lua` and commit it"
    );
    for m in MESSAGE_TYPES {
        assert!(
            committed.contains(&format!("name = {:?}", m.name)),
            "{}",
            m.name
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The capture.

struct Pcap {
    bytes: Vec<u8>,
    time: u32,
}

impl Pcap {
    fn new() -> Self {
        let mut header = PcapHeader::new();
        header.snaplen = 65535;
        Pcap {
            bytes: header.to_vec().unwrap(),
            time: 0,
        }
    }

    fn packet(&mut self, data: &[u8]) {
        self.time += 1;
        let mut block = LegacyPcapBlock {
            ts_sec: 1_700_000_000 + self.time,
            ts_usec: 0,
            caplen: data.len() as u32,
            origlen: data.len() as u32,
            data,
        };
        self.bytes.extend(block.to_vec().unwrap());
    }
}

/// One TCP connection: both directions' sequence numbers, a SYN handshake at the start.
struct Tcp {
    client: ([u8; 4], u16),
    server: ([u8; 4], u16),
    seq: [u32; 2],
}

impl Tcp {
    fn open(pcap: &mut Pcap, client_port: u16, server_port: u16) -> Self {
        let mut tcp = Tcp {
            client: ([127, 0, 0, 1], client_port),
            server: ([127, 0, 0, 2], server_port),
            seq: [1000, 5000],
        };
        tcp.segment(pcap, true, &[], "syn");
        tcp.segment(pcap, false, &[], "synack");
        tcp.segment(pcap, true, &[], "ack");
        tcp
    }

    fn segment(&mut self, pcap: &mut Pcap, from_client: bool, payload: &[u8], kind: &str) {
        let (src, dst, i) = if from_client {
            (self.client, self.server, 0)
        } else {
            (self.server, self.client, 1)
        };
        let ack = self.seq[1 - i];
        let builder = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(src.0, dst.0, 64)
            .tcp(src.1, dst.1, self.seq[i], 65535);
        let builder = match kind {
            "syn" => builder.syn(),
            "synack" => builder.syn().ack(ack),
            _ => builder.ack(ack).psh(),
        };
        let mut packet = Vec::new();
        builder.write(&mut packet, payload).unwrap();
        pcap.packet(&packet);
        self.seq[i] =
            self.seq[i].wrapping_add(payload.len() as u32 + u32::from(kind.starts_with("syn")));
    }
}

/// Every valid frame of a known message in the vectors, with its type.
fn all_valid_frames() -> Vec<(&'static MessageInfo, Vec<u8>)> {
    let mut all = Vec::new();
    let dir = repo_root().join("vectors/data");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    for path in paths {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.starts_with("frames_") {
            continue;
        }
        let file: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        for group in file["testGroups"].as_array().unwrap() {
            for test in group["tests"].as_array().unwrap() {
                if test["result"] != "valid" {
                    continue;
                }
                let frame = hex::decode(test["frame"].as_str().unwrap()).unwrap();
                let (parsed, _) = Frame::parse(&frame).unwrap();
                if let Some(info) = decode_frame(&parsed).ok().and_then(|d| d.message.info()) {
                    all.push((info, frame));
                }
            }
        }
    }
    all
}

/// Every valid frame of the vectors (edge values, maximal lengths, TLVs), one per segment, field by
/// field, except values tshark cannot show as the codec's JSON does (non-UTF-8 strings, non-finite
/// floats).
#[test]
fn tshark_reads_every_valid_vector_as_the_codec_does() {
    if !tshark_available() {
        return;
    }
    let frames = all_valid_frames();
    let mut pcap = Pcap::new();
    let mut tcp = Tcp::open(&mut pcap, 50006, 34254);
    // Large frames span several segments; the frame is shown on its last one.
    let mut last_segment = Vec::new();
    for (i, (_, frame)) in frames.iter().enumerate() {
        for chunk in frame.chunks(1400) {
            tcp.segment(&mut pcap, i % 2 == 0, chunk, "data");
        }
        last_segment.push(pcap.time as usize - 1);
    }
    let (packets, _) = tshark_json(&pcap.bytes, "every-vector.pcap");
    let data: Vec<&Value> = last_segment.iter().map(|&i| &packets[i]).collect();
    let mut compared = 0;
    let mut failures = Vec::new();
    for ((info, frame), layers) in frames.iter().zip(&data) {
        let (parsed, _) = Frame::parse(frame).unwrap();
        let json = serde_json::to_string(&decode_frame(&parsed).unwrap().message).unwrap();
        if json.contains("\"hex\":") || json.contains("\"bits\":") {
            continue;
        }
        compared += 1;
        let problems = compare(info, frame, &fields_of(layers));
        if !problems.is_empty() {
            failures.push(format!(
                "{} {}:\n    {}",
                info.name,
                hex::encode(frame),
                problems.join("\n    ")
            ));
        }
    }
    eprintln!(
        "tshark matched the codec on {} of {compared} valid vectors",
        compared - failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// One valid frame of every message type from the vectors (a "Typical" one where there is one).
fn frames_of_every_type() -> Vec<(&'static MessageInfo, Vec<u8>)> {
    let mut chosen: BTreeMap<(u16, u8), (bool, Vec<u8>)> = BTreeMap::new();
    let dir = repo_root().join("vectors/data");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.starts_with("frames_") {
            continue;
        }
        let file: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        for group in file["testGroups"].as_array().unwrap() {
            for test in group["tests"].as_array().unwrap() {
                if test["result"] != "valid" {
                    continue;
                }
                let frame = hex::decode(test["frame"].as_str().unwrap()).unwrap();
                let (parsed, _) = Frame::parse(&frame).unwrap();
                let Ok(decoded) = decode_frame(&parsed) else {
                    continue;
                };
                let Some(info) = decoded.message.info() else {
                    continue;
                };
                let typical = test["flags"]
                    .as_array()
                    .is_some_and(|f| f.iter().any(|f| f == "Typical"));
                let key = (info.extension_type, info.msg_type);
                let better = match chosen.get(&key) {
                    None => true,
                    Some((was_typical, _)) => typical && !was_typical,
                };
                if better {
                    chosen.insert(key, (typical, frame));
                }
            }
        }
    }
    MESSAGE_TYPES
        .iter()
        .map(|m| {
            let (_, frame) = chosen
                .remove(&(m.extension_type, m.msg_type))
                .unwrap_or_else(|| panic!("no valid vector of {}", m.name));
            (m, frame)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// tshark.

fn tshark_available() -> bool {
    let found = Command::new("tshark")
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        if std::env::var("SV2_REQUIRE_TSHARK").as_deref() == Ok("1") {
            panic!("tshark is not on PATH and SV2_REQUIRE_TSHARK=1 (install the Debian package tshark)");
        }
        eprintln!("note: tshark is not on PATH; the dissector's tshark test is skipped (SV2_REQUIRE_TSHARK=1 makes this a failure)");
    }
    found
}

/// Runs tshark with the dissector over `pcap`; one JSON object (`_source.layers`) per packet.
fn tshark_json(pcap: &[u8], name: &str) -> (Vec<Value>, String) {
    let dir = std::env::temp_dir().join(format!("sv2-dissector-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(name);
    std::fs::write(&file, pcap).unwrap();
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&file)
        .arg("-X")
        .arg(format!("lua_script:{}", lua_path().display()))
        .args(["-T", "json", "--no-duplicate-keys"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "tshark failed: {stderr}");
    assert!(
        !stderr.contains("Lua") && !stdout.contains("Lua Error"),
        "Lua errors:\n{stderr}\n{}",
        stdout
            .lines()
            .filter(|l| l.contains("Lua"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let packets: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    let layers = packets
        .into_iter()
        .map(|p| p["_source"]["layers"].clone())
        .collect();
    (layers, stdout)
}

/// Every `sv2.*`/`sv1.*` field value in a packet's tree, in order, by abbreviation.
fn collect(value: &Value, out: &mut HashMap<String, Vec<String>>) {
    if let Value::Array(items) = value {
        for item in items {
            collect(item, out);
        }
    }
    if let Value::Object(map) = value {
        for (key, v) in map {
            let ours = key.starts_with("sv2.") || key.starts_with("sv1.");
            match v {
                Value::String(s) if ours => out.entry(key.clone()).or_default().push(s.clone()),
                Value::Array(items) => {
                    for item in items {
                        match item {
                            Value::String(s) if ours => {
                                out.entry(key.clone()).or_default().push(s.clone())
                            }
                            other => collect(other, out),
                        }
                    }
                }
                other => collect(other, out),
            }
        }
    }
}

fn fields_of(layers: &Value) -> HashMap<String, Vec<String>> {
    let mut out = HashMap::new();
    for proto in ["sv2", "sv1"] {
        if let Some(v) = layers.get(proto) {
            collect(v, &mut out);
        }
    }
    out
}

fn protocol_abbrev(p: Protocol) -> &'static str {
    match p {
        Protocol::Common => "common",
        Protocol::Mining => "mining",
        Protocol::JobDeclaration => "job_declaration",
        Protocol::TemplateDistribution => "template_distribution",
        Protocol::ExtensionsNegotiation => "extensions",
    }
}

fn snake(name: &str) -> String {
    let mut s = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if c == '.' {
            s.push('_');
            prev_lower = false;
        } else if c.is_ascii_uppercase() {
            if prev_lower {
                s.push('_');
            }
            s.push(c.to_ascii_lowercase());
            prev_lower = false;
        } else {
            s.push(c);
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        }
    }
    s
}

/// A JSON value of the codec as tshark shows it (None: shown as "(empty)" text, not a field value).
fn expected_scalar(ty: &str, v: &Value) -> Option<String> {
    match ty {
        "BOOL" => Some(if v.as_bool().unwrap() { "1" } else { "0" }.into()),
        "STR0_255" => v.as_str().filter(|s| !s.is_empty()).map(String::from),
        "U8" | "U16" | "U24" | "U32" | "U64" | "F32" => Some(v.to_string()),
        _ => v.as_str().filter(|s| !s.is_empty()).map(String::from),
    }
}

fn same(ty: &str, expected: &str, shown: &str) -> bool {
    match ty {
        "F32" => {
            let (a, b): (f64, f64) = (expected.parse().unwrap(), shown.parse().unwrap_or(f64::NAN));
            // tshark prints a float with 6 significant digits.
            (a - b).abs() <= a.abs() * 1e-5
        }
        "BOOL" => shown == expected || (shown == "True") == (expected == "1"),
        "STR0_255" | "U8" | "U16" | "U24" | "U32" | "U64" => shown == expected,
        _ => shown.replace(':', "").to_lowercase() == expected,
    }
}

/// Compares one packet's tshark fields with the codec's decoding of `frame`; returns the mismatches.
fn compare(info: &MessageInfo, frame: &[u8], shown: &HashMap<String, Vec<String>>) -> Vec<String> {
    let mut problems = Vec::new();
    let (parsed, _) = Frame::parse(frame).unwrap();
    let decoded = decode_frame(&parsed).unwrap();
    let json = serde_json::to_value(&decoded.message).unwrap();
    let object = json.as_object().unwrap();
    if shown.get("sv2.message") != Some(&vec![info.name.to_string()]) {
        problems.push(format!("message name: {:?}", shown.get("sv2.message")));
    }
    // The codec's JSON keys are the spec's field names, in wire order, after "message" (and the
    // "protocol" that tells the two SetNewPrevHash apart).
    let keys: Vec<&String> = object.keys().filter(|k| *k != "message").collect();
    let keys = &keys[keys.len() - info.fields.len()..];
    for (field, key) in info.fields.iter().zip(keys) {
        let ty = field.sv2_type();
        let abbrev = format!(
            "sv2.{}.{}.{}",
            protocol_abbrev(info.protocol),
            snake(info.name),
            key
        );
        let value = &object[key.as_str()];
        let (elem, expected): (String, Vec<String>) =
            if let Some(inner) = ty.strip_prefix("OPTION[").and_then(|t| t.strip_suffix(']')) {
                let v = if value.is_null() {
                    vec![]
                } else {
                    expected_scalar(inner, value).into_iter().collect()
                };
                (inner.to_string(), v)
            } else if let Some(i) = ty.find('[') {
                let inner = &ty[i + 1..ty.len() - 1];
                let v = value
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|e| expected_scalar(inner, e))
                    .collect();
                (inner.to_string(), v)
            } else {
                (
                    ty.clone(),
                    expected_scalar(&ty, value).into_iter().collect(),
                )
            };
        let got = shown.get(&abbrev).cloned().unwrap_or_default();
        let ok = got.len() == expected.len()
            && got.iter().zip(&expected).all(|(g, e)| same(&elem, e, g));
        if !ok {
            problems.push(format!(
                "{key} ({ty}, {abbrev}): codec {expected:?}, tshark {got:?}"
            ));
        }
    }
    problems
}

#[test]
fn tshark_reads_every_message_as_the_codec_does() {
    if !tshark_available() {
        return;
    }
    let frames = frames_of_every_type();
    let mut pcap = Pcap::new();
    let mut tcp = Tcp::open(&mut pcap, 50000, 34254);
    // One frame per segment, alternating directions so that both are reassembled.
    for (i, (_, frame)) in frames.iter().enumerate() {
        tcp.segment(&mut pcap, i % 2 == 0, frame, "data");
    }
    // Two frames in one segment, then one frame split over three segments.
    let mut two = frames[0].1.clone();
    two.extend(&frames[1].1);
    tcp.segment(&mut pcap, true, &two, "data");
    let split = &frames[2].1;
    tcp.segment(&mut pcap, true, &split[..3], "data");
    tcp.segment(&mut pcap, true, &split[3..split.len() / 2], "data");
    tcp.segment(&mut pcap, true, &split[split.len() / 2..], "data");

    let (packets, _) = tshark_json(&pcap.bytes, "every-message.pcap");
    let data: Vec<&Value> = packets.iter().skip(3).collect();
    assert_eq!(data.len(), frames.len() + 4);
    let mut matched = 0;
    let mut failures = Vec::new();
    for ((info, frame), layers) in frames.iter().zip(&data) {
        let problems = compare(info, frame, &fields_of(layers));
        if problems.is_empty() {
            matched += 1;
        } else {
            failures.push(format!("{}:\n    {}", info.name, problems.join("\n    ")));
        }
    }
    eprintln!(
        "tshark matched the codec on {matched} of {} message types",
        frames.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    let tail = &data[frames.len()..];
    assert_eq!(
        fields_of(tail[0]).get("sv2.message"),
        Some(&vec![
            frames[0].0.name.to_string(),
            frames[1].0.name.to_string()
        ])
    );
    assert_eq!(fields_of(tail[1]).get("sv2.message"), None);
    assert_eq!(fields_of(tail[2]).get("sv2.message"), None);
    assert_eq!(
        fields_of(tail[3]).get("sv2.message"),
        Some(&vec![frames[2].0.name.to_string()])
    );
}

/// A deterministic byte stream (xorshift) for keys and ciphertext.
fn noise_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Every message cut short (its msg_length made to match the cut), one per segment: tshark reports a
/// malformed frame exactly where sv2-codec refuses the frame, and never raises a Lua error.
#[test]
fn tshark_flags_truncated_frames_where_the_codec_does() {
    if !tshark_available() {
        return;
    }
    let mut pcap = Pcap::new();
    let mut tcp = Tcp::open(&mut pcap, 50005, 34254);
    let mut cut_frames = Vec::new();
    for (info, frame) in frames_of_every_type() {
        let payload = &frame[6..];
        for cut in [payload.len() / 2, payload.len().saturating_sub(1), 1] {
            if cut >= payload.len() {
                continue;
            }
            let mut cut_frame = frame[..6].to_vec();
            cut_frame[3..6].copy_from_slice(&(cut as u32).to_le_bytes()[..3]);
            cut_frame.extend(&payload[..cut]);
            tcp.segment(&mut pcap, true, &cut_frame, "data");
            cut_frames.push((info, cut_frame));
        }
    }
    let (packets, _) = tshark_json(&pcap.bytes, "truncated.pcap");
    let data: Vec<&Value> = packets.iter().skip(3).collect();
    assert_eq!(data.len(), cut_frames.len());
    let mut disagreements = Vec::new();
    for ((info, frame), layers) in cut_frames.iter().zip(data) {
        let (parsed, _) = Frame::parse(frame).unwrap();
        let codec_refuses = decode_frame(&parsed).is_err();
        let text = layers.to_string();
        let tshark_refuses = text.contains("sv2.malformed");
        assert!(text.contains(info.name), "{}: {text}", info.name);
        if codec_refuses != tshark_refuses {
            disagreements.push(format!(
                "{} {}: codec refuses {codec_refuses}, tshark {tshark_refuses}",
                info.name,
                hex::encode(frame)
            ));
        }
    }
    eprintln!(
        "{} truncated frames, {} disagreements",
        cut_frames.len(),
        disagreements.len()
    );
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

#[test]
fn tshark_labels_noise_sv1_and_survives_garbage() {
    if !tshark_available() {
        return;
    }
    let mut pcap = Pcap::new();
    // Noise on a port the dissector is not registered on: found by the heuristic (a 64-byte act 1 at
    // stream start), then act 2 and encrypted frames.
    let mut noise = Tcp::open(&mut pcap, 50001, 40000);
    noise.segment(&mut pcap, true, &noise_bytes(64, 1), "data");
    noise.segment(&mut pcap, false, &noise_bytes(234, 2), "data");
    noise.segment(&mut pcap, true, &noise_bytes(22 + 100, 3), "data");
    noise.segment(&mut pcap, false, &noise_bytes(22 + 40, 4), "data");
    // Plain SV2 on another unregistered port: the heuristic finds a known frame header.
    let frames = frames_of_every_type();
    let mut plain = Tcp::open(&mut pcap, 50002, 40001);
    plain.segment(&mut pcap, true, &frames[0].1, "data");
    // SV1 on its default port.
    let mut sv1 = Tcp::open(&mut pcap, 50003, 3333);
    sv1.segment(
        &mut pcap,
        true,
        b"{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[\"x\"]}\n",
        "data",
    );
    sv1.segment(
        &mut pcap,
        false,
        b"{\"id\":1,\"result\":[[],\"00\",4],\"error\":null}\n",
        "data",
    );
    // Garbage and truncated frames on the SV2 port: shown as malformed, never a Lua error.
    let mut garbage = Tcp::open(&mut pcap, 50004, 34254);
    let mut lying = frames[0].1.clone();
    lying[3] = lying[3].wrapping_sub(3); // msg_length 3 short: the fields overrun the frame
    garbage.segment(&mut pcap, true, &lying[..lying.len() - 3], "data");
    garbage.segment(&mut pcap, true, &[0, 0, 0x10, 2, 0, 0, 0xff, 0xff], "data");
    garbage.segment(&mut pcap, true, &noise_bytes(300, 5), "data");
    // Random bytes of many lengths, on every port and at the start of streams (the heuristics).
    for (i, port) in [34254u16, 3333, 40002, 40003].into_iter().enumerate() {
        let mut conn = Tcp::open(&mut pcap, 51000 + i as u16, port);
        for n in 0..60u64 {
            let mut bytes = noise_bytes((n as usize * 7) % 90 + 1, 100 + n + 1000 * i as u64);
            if n % 3 == 0 {
                bytes[0] = b'{';
            }
            conn.segment(&mut pcap, n % 2 == 0, &bytes, "data");
        }
    }

    let (packets, raw) = tshark_json(&pcap.bytes, "noise-sv1-garbage.pcap");
    let all: Vec<HashMap<String, Vec<String>>> = packets.iter().map(fields_of).collect();
    let count = |abbrev: &str| all.iter().filter(|f| f.contains_key(abbrev)).count();
    assert_eq!(count("sv2.noise.act1"), 1, "act 1");
    assert_eq!(count("sv2.noise.act2"), 1, "act 2");
    assert_eq!(count("sv2.encrypted.header"), 2, "encrypted headers");
    assert_eq!(count("sv2.encrypted.data"), 2, "encrypted data");
    let act1 = all
        .iter()
        .find(|f| f.contains_key("sv2.noise.act1"))
        .unwrap();
    assert_eq!(
        act1["sv2.noise.act1"][0].replace(':', ""),
        hex::encode(noise_bytes(64, 1))
    );
    assert!(all
        .iter()
        .any(|f| f.get("sv2.message") == Some(&vec![frames[0].0.name.to_string()])));
    assert!(all
        .iter()
        .any(|f| f.get("sv1.method") == Some(&vec!["mining.subscribe".to_string()])));
    assert!(all
        .iter()
        .any(|f| f.get("sv1.id") == Some(&vec!["1".to_string()]) && !f.contains_key("sv1.method")));
    assert!(
        raw.contains("sv2.malformed"),
        "the short frame is reported as malformed"
    );
}
