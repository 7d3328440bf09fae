//! `sv2-probe pcap`: every SV1 and SV2 message of a capture, Noise decrypted with key logs, one line
//! (or one JSON object) per message; `--monitor` judges each connection with the conformance rules.

use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::path::PathBuf;

use anyhow::{bail, Context};
use serde_json::{json, Value};
use sv2_codec::noise::keylog;
use sv2_conformance::report;
use sv2_conformance::runner::{monitor_transcript, Report};
use sv2_wire::capture::{CaptureReader, Conversation, Decryption, Follower, Protocol, Seen};
use sv2_wire::{Direction, Entry, Event, Transcript};

use crate::outcome::Outcome;

pub const LONG_ABOUT: &str = "\
Decode the SV1 and SV2 connections of packet captures (pcap or pcapng: Ethernet, VLAN, Linux cooked \
v1/v2, raw IP, BSD loopback; IPv4 and IPv6). TCP is reassembled per direction (out of order, \
retransmitted and overlapping segments; a missing segment is reported as a gap with its size). Each \
connection is classified by its content, not its port: SV1 JSON lines, plain SV2 frames, or Noise (a \
64-byte act 1 answered by a 234-byte act 2); --port P=sv1|sv2|noise forces one.

Noise sessions are decrypted when a key-log line (--keylog, repeatable; the format of SV2KEYLOGFILE, \
which every command of this toolkit writes) names the session's act 1: every frame of both directions \
is decrypted, its MACs checked, and decoded strictly. Without a key the transport's size is reported.

Text output: one line per message: time (unix seconds), connection number, source > destination, \
protocol, message name and its fields. --json: one JSON object per line: per message {\"time\", \
\"connection\", \"src\", \"dst\", \"protocol\" (sv1, sv2, sv2-noise-handshake, sv2-encrypted), \
\"message\" (the spec's name, e.g. SetupConnection.Success; for SV1 the method, or \"response\"; null \
when a frame does not decode, with \"error\"), \"frame\" (the plain frame in hex, decrypted when a key \
matched) or \"len\" (bytes on the wire, for handshake acts), \"fields\" (the codec's JSON form), \
\"id\" (SV1)}; notes (gaps, resets, undecryptable transport) as {\"time\", \"connection\", \"note\"}; \
and per connection a summary {\"connection\", \"client\", \"server\", \"kind\": \"connection\", \
\"transport\", \"messages\", \"gaps\", \"decryption\", \"unread\", \"closed\", \"saw_syn\", \"roles\"}.

Roles: the client is who sent the SYN; without it, who sent act 1, SetupConnection or (SV1) the first \
mining.configure/subscribe; in a capture that began mid-conversation, the side whose messages are a \
client's (shares, channel requests; SV1 submits) rather than a server's (jobs, targets, answers). The \
summary's \"roles\" says which: syn, start, messages or first-sender (nothing told).

--monitor: the conformance suite's per-message rules over every SV2 connection, both directions, \
reported by spec section as `conformance` reports (--junit FILE and --json-file FILE: all of them in \
one report). A connection the capture began in the middle of (neither its SYN nor its start) is not \
judged, and the report says so. Exit code 1 when a \
rule of level MUST fails there, 2 when a file cannot be read.";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Capture files (pcap or pcapng), read in order.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// A key log (SV2KEYLOGFILE format); repeatable. Lines for sessions not in the capture are ignored.
    #[arg(long, value_name = "FILE")]
    pub keylog: Vec<PathBuf>,
    /// One JSON object per line instead of text.
    #[arg(long)]
    pub json: bool,
    /// Judge each SV2 connection with the conformance rules.
    #[arg(long)]
    pub monitor: bool,
    /// Only the per-connection summaries.
    #[arg(long)]
    pub summary: bool,
    /// With --monitor: also write every connection's verdicts as one JUnit XML report here.
    #[arg(long, value_name = "FILE", requires = "monitor")]
    pub junit: Option<PathBuf>,
    /// With --monitor: also write every connection's verdicts as one JSON report here.
    #[arg(long, value_name = "FILE", requires = "monitor")]
    pub json_file: Option<PathBuf>,
    /// Read connections on port P as sv1, sv2 or noise whatever their content (repeatable).
    #[arg(long, value_name = "P=PROTOCOL")]
    pub port: Vec<String>,
}

pub fn run(args: &Args, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<Outcome> {
    let mut keys = Vec::new();
    for path in &args.keylog {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--keylog {}", path.display()))?;
        let (entries, problems) = keylog::parse_lenient(&text);
        for p in problems {
            writeln!(err, "warning: {}: {p}", path.display())?;
        }
        keys.extend(entries);
    }
    let mut follower = Follower::new(keys);
    for spec in &args.port {
        let (port, protocol) = spec
            .split_once('=')
            .with_context(|| format!("--port {spec}: expected P=sv1|sv2|noise"))?;
        let port: u16 = port
            .parse()
            .with_context(|| format!("--port {spec}: not a port"))?;
        let protocol = match protocol {
            "sv1" => Protocol::Sv1,
            "sv2" => Protocol::Sv2,
            "noise" => Protocol::Noise,
            other => bail!("--port {spec}: {other} is not sv1, sv2 or noise"),
        };
        follower.force_port(port, protocol);
    }
    let mut printer = Printer {
        json: args.json,
        summary_only: args.summary,
        monitor: args.monitor,
        must_failures: 0,
        monitored: Vec::new(),
        unjudged: Vec::new(),
    };
    let mut unreadable: HashMap<String, u64> = HashMap::new();
    let mut failed_files = 0;
    for path in &args.files {
        let file = std::fs::File::open(path).with_context(|| format!("{}", path.display()))?;
        let reader = CaptureReader::new(BufReader::new(file))
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let end = follower.read_capture(reader, |seen| -> anyhow::Result<()> {
            match seen {
                Seen::Ended(conv) => printer.conversation(&conv, out)?,
                Seen::Skipped { number, reason } => {
                    let n = unreadable.entry(reason.clone()).or_default();
                    *n += 1;
                    if *n == 1 {
                        writeln!(
                            err,
                            "warning: {}: packet {number}: {reason} (skipped; later ones with the same reason are counted)",
                            path.display()
                        )?;
                    }
                }
            }
            Ok(())
        })?;
        if let Some(e) = end.error {
            failed_files += 1;
            writeln!(
                err,
                "error: {}: {e} (after {} packets; what came before is decoded)",
                path.display(),
                end.packets
            )?;
        }
    }
    for conv in follower.finish() {
        printer.conversation(&conv, out)?;
    }
    for (reason, n) in &unreadable {
        if *n > 1 {
            writeln!(err, "warning: {n} packets skipped: {reason}")?;
        }
    }
    if args.monitor {
        let all = printer.monitor_reports(out)?;
        if let Some(path) = &args.json_file {
            std::fs::write(path, report::json(&all).to_string())
                .with_context(|| format!("--json-file {}", path.display()))?;
        }
        if let Some(path) = &args.junit {
            std::fs::write(path, report::junit(&all))
                .with_context(|| format!("--junit {}", path.display()))?;
        }
    }
    if failed_files > 0 {
        bail!("{failed_files} capture file(s) could not be read to the end");
    }
    Ok(if printer.must_failures > 0 {
        Outcome::Fail
    } else {
        Outcome::Pass
    })
}

struct Printer {
    json: bool,
    summary_only: bool,
    monitor: bool,
    must_failures: usize,
    /// (connection label, transcript) of the SV2 connections, for --monitor.
    monitored: Vec<(String, Transcript)>,
    /// Connections the capture began in the middle of: not judged.
    unjudged: Vec<u64>,
}

fn secs(at: sv2_wire::Timestamp) -> f64 {
    at.0 as f64 / 1e9
}

impl Printer {
    fn conversation(&mut self, conv: &Conversation, out: &mut dyn Write) -> anyhow::Result<()> {
        let t = &conv.transcript;
        let (client, server) = endpoint_strings(t);
        let mut messages = 0u64;
        for entry in t.entries() {
            if !matches!(entry.event, Event::Note { .. }) {
                messages += 1;
            }
            if !self.summary_only {
                self.entry(conv, entry, &client, &server, out)?;
            }
        }
        let decryption = match conv.decryption {
            Decryption::NotNoise => "none",
            Decryption::Keys => "decrypted",
            Decryption::NoKey => "no key",
        };
        if self.json {
            writeln!(
                out,
                "{}",
                json!({"kind": "connection", "connection": conv.id.0, "client": client, "server": server, "transport": conv.protocol.as_str(), "messages": messages, "gaps": conv.gaps, "decryption": decryption, "unread": conv.unread, "closed": conv.closed, "saw_syn": conv.saw_syn, "roles": conv.roles.as_str()})
            )?;
        } else {
            writeln!(
                out,
                "# connection {}: {client} > {server}, {}, {messages} message(s){}{}{}{}",
                conv.id.0,
                conv.protocol.as_str(),
                if conv.protocol == Protocol::Noise {
                    format!(", {decryption}")
                } else {
                    String::new()
                },
                if conv.gaps != [0, 0] {
                    format!(
                        ", gaps {} B client>server, {} B server>client",
                        conv.gaps[0], conv.gaps[1]
                    )
                } else {
                    String::new()
                },
                if conv.unread != [0, 0] {
                    format!(", {} + {} B not read", conv.unread[0], conv.unread[1])
                } else {
                    String::new()
                },
                if conv.closed { ", closed" } else { "" }
            )?;
        }
        if self.monitor && matches!(conv.protocol, Protocol::Sv2 | Protocol::Noise) {
            if conv.roles.from_start() {
                self.monitored.push((
                    format!("connection {} {client} > {server}", conv.id.0),
                    t.clone(),
                ));
            } else {
                // The rules follow a conversation from its start (setup, channels opened): one
                // the capture began in the middle of is not judged.
                self.unjudged.push(conv.id.0);
            }
        }
        Ok(())
    }

    fn entry(
        &self,
        conv: &Conversation,
        entry: &Entry,
        client: &str,
        server: &str,
        out: &mut dyn Write,
    ) -> anyhow::Result<()> {
        let line = entry_value(conv.id.0, entry, client, server);
        if self.json {
            writeln!(out, "{line}")?;
        } else {
            writeln!(out, "{}", entry_text(&line))?;
        }
        Ok(())
    }

    /// The monitor's verdicts over every SV2 connection, as the suite reports them; returns them all
    /// as one report (each verdict's observation names its connection), for --junit/--json-file.
    fn monitor_reports(&mut self, out: &mut dyn Write) -> anyhow::Result<Report> {
        let mut all = Report {
            target: "capture".into(),
            encrypted: false,
            certificate: None,
            results: Vec::new(),
            duration: std::time::Duration::ZERO,
        };
        if !self.unjudged.is_empty() {
            let ids: Vec<String> = self.unjudged.iter().map(u64::to_string).collect();
            let note = format!(
                "not judged: connection(s) {} began before the capture (neither its SYN nor its act 1 or SetupConnection is in it): the rules follow a conversation from its start",
                ids.join(", ")
            );
            if self.json {
                writeln!(out, "{}", json!({"kind": "monitor", "note": note}))?;
            } else {
                writeln!(out, "# {note}")?;
            }
        }
        for (label, transcript) in std::mem::take(&mut self.monitored) {
            let results = monitor_transcript(&transcript);
            all.results.extend(results.iter().cloned().map(|mut r| {
                r.outcome.observed = format!("{label}: {}", r.outcome.observed);
                r
            }));
            let report = Report {
                target: label,
                encrypted: true,
                certificate: None,
                results,
                duration: std::time::Duration::ZERO,
            };
            self.must_failures += report.must_failures();
            if self.json {
                writeln!(out, "{}", report::json(&report))?;
            } else {
                write!(out, "{}", report::text(&report, false))?;
            }
        }
        Ok(all)
    }
}

/// A transcript's client and server addresses as `ip:port` (empty when unknown), for
/// [`entry_value`].
pub fn endpoint_strings(t: &Transcript) -> (String, String) {
    let show = |a: Option<std::net::SocketAddr>| a.map(|a| a.to_string()).unwrap_or_default();
    (show(t.endpoints.client), show(t.endpoints.server))
}

/// One transcript entry as a JSON object of `pcap --json` (and `proxy --json`): time, connection,
/// src, dst, protocol, message, frame or len, fields (and `wire_len` for a frame that was
/// encrypted on the wire); notes as {time, connection, note}.
pub fn entry_value(connection: u64, entry: &Entry, client: &str, server: &str) -> Value {
    let (src, dst) = match entry.event.direction() {
        Some(Direction::ClientToServer) => (client, server),
        Some(Direction::ServerToClient) => (server, client),
        None => ("", ""),
    };
    let time = secs(entry.at);
    let id = connection;
    match &entry.event {
        Event::Handshake { act, bytes, .. } => json!({
            "time": time, "connection": id, "src": src, "dst": dst,
            "protocol": "sv2-noise-handshake", "message": format!("act {act}"), "len": bytes.len(),
        }),
        Event::Frame {
            plain,
            wire,
            decoded,
            ..
        } => {
            let mut v = json!({
                "time": time, "connection": id, "src": src, "dst": dst,
                "protocol": "sv2", "frame": hex::encode(plain),
            });
            if let Some(wire) = wire {
                v["wire_len"] = json!(wire.len());
            }
            match decoded {
                Ok(d) => {
                    v["message"] = json!(d.message.name());
                    v["fields"] = serde_json::to_value(&d.message).unwrap_or(Value::Null);
                }
                Err(e) => {
                    v["message"] = Value::Null;
                    v["error"] = json!(e.to_string());
                }
            }
            v
        }
        Event::Sv1 { line, parsed, .. } => {
            let mut v = json!({
                "time": time, "connection": id, "src": src, "dst": dst, "protocol": "sv1",
            });
            match parsed {
                Ok(m) => {
                    let value = m.to_value();
                    v["message"] = json!(m.method().unwrap_or("response"));
                    v["id"] = value.get("id").cloned().unwrap_or(Value::Null);
                    v["fields"] = value;
                }
                Err(e) => {
                    v["message"] = Value::Null;
                    v["error"] = json!(e.to_string());
                    v["line"] = json!(String::from_utf8_lossy(line));
                }
            }
            v
        }
        Event::Note { text } => json!({"time": time, "connection": id, "note": text}),
        Event::Encrypted { len, .. } => json!({
            "time": time, "connection": id, "src": src, "dst": dst,
            "protocol": "sv2-encrypted", "message": Value::Null, "len": len,
        }),
    }
}

/// The text line for an [`entry_value`]: time, connection, src > dst, protocol, message, fields.
pub fn entry_text(line: &Value) -> String {
    let time = line["time"].as_f64().unwrap_or(0.0);
    let id = line["connection"].as_u64().unwrap_or(0);
    if let Some(note) = line.get("note") {
        return format!("{time:.6} #{id} note: {}", note.as_str().unwrap_or(""));
    }
    let (src, dst) = (
        line["src"].as_str().unwrap_or(""),
        line["dst"].as_str().unwrap_or(""),
    );
    let protocol = line["protocol"].as_str().unwrap_or("");
    let message = match &line["message"] {
        Value::String(s) => s.clone(),
        Value::Null if protocol == "sv2-encrypted" => "(not decrypted)".to_string(),
        _ => format!(
            "(does not decode: {})",
            line["error"].as_str().unwrap_or("")
        ),
    };
    let fields = match line.get("fields") {
        Some(Value::Object(map)) => {
            let parts: Vec<String> = map
                .iter()
                .filter(|(k, _)| k.as_str() != "message")
                .map(|(k, v)| {
                    let text = v.to_string();
                    if text.len() > 80 {
                        format!("{k}=<{} chars>", text.len())
                    } else {
                        format!("{k}={text}")
                    }
                })
                .collect();
            parts.join(" ")
        }
        _ => line
            .get("len")
            .map(|l| format!("{l} bytes"))
            .unwrap_or_default(),
    };
    format!("{time:.6} #{id} {src} > {dst} {protocol} {message} {fields}")
}
