//! Scripted conversations: a scenario file whose `[[step]]`s are a whole conversation (send this,
//! expect that within a time, with field predicates, then ...), so that a bug report becomes a
//! file. `sv2-probe scenario run FILE --target URL` plays the client, `--listen ADDR` the server.
//!
//! ```toml
//! name = "setup is answered"
//! [[step]]
//! send = { message = "SetupConnection", protocol = 0, min_version = 2, max_version = 2, flags = 0,
//!          endpoint_host = "127.0.0.1", endpoint_port = 34254, vendor = "me",
//!          hardware_version = "", firmware = "", device_id = "" }
//! [[step]]
//! expect = "SetupConnection.Success"
//! where = { used_version = 2 }
//! within_ms = 2000
//! ```
//!
//! Steps: `send` (a message in the codec's JSON), `send_hex` (a plain frame as given, for frames
//! that do not encode; `${name:u32}` in it stands for a saved number, little-endian; `chunk`,
//! `pause_ms`, `flip_last_byte`, `flip_bit` shape its bytes on the wire), `send_raw_hex` (bytes
//! written to the socket as they are, not a frame), `expect` (a message name, or "close": the peer
//! closes), `expect_any` (any of these messages, or a close), `expect_not` (no such message within
//! the time), `expect_alive` (a fresh connection to the same server completes the handshake and
//! SetupConnection), `close` (this connection), `sleep_ms`. An `expect` skips other frames unless `next = true`;
//! `save = { name = "field" }` keeps a field of the frame it matched, and `"${name}"` anywhere in a
//! later `send` or `where` stands for it. A `[finding]` table of strings (what `sv2-probe fuzz`
//! found, and how) is kept with the script and not played.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use sv2_codec::messages::MESSAGE_TYPES;
use sv2_codec::noise::keys::AuthorityPublicKey;
use sv2_codec::{to_frame_bytes, Message};
use sv2_wire::{Connection, KeyLog, NetError, Timestamp, WireShape};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::engine::describe;
use crate::model::ScenarioError;

/// The most connections a `crowd` step opens.
pub const MAX_CROWD: usize = 256;

/// How the observation of an `expect_any` that met its forbidden message begins.
pub const FORBIDDEN: &str = "forbidden ";

/// The default time an expectation waits.
pub const DEFAULT_WITHIN: Duration = Duration::from_secs(5);

/// One step of a conversation.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Send this message (codec JSON; `${name}` values substituted when sent).
    Send(serde_json::Map<String, Value>),
    /// Send this plain frame (saved numbers filled in), shaped on the wire as `shape` says.
    SendHex {
        hex: Vec<HexPart>,
        shape: WireShape,
    },
    /// Write these bytes to the socket as they are.
    SendRaw(Vec<u8>),
    /// Wait for any of these messages (with the `answer` fields, those they have), or a close;
    /// fail if `forbid` (a message with these fields) comes first.
    ExpectAny {
        messages: Vec<String>,
        within: Duration,
        answer: serde_json::Map<String, Value>,
        forbid: Option<(String, serde_json::Map<String, Value>)>,
    },
    /// A fresh connection to the same server completes the handshake and SetupConnection.
    ExpectAlive {
        within: Duration,
    },
    /// Close this connection (what the peer still sends is read and dropped for a moment); later
    /// steps that need the peer use fresh connections (`expect_alive`).
    Close,
    /// Open this many more connections to the same server (each with its handshake done) and
    /// keep them, silent, until the script ends.
    Crowd(usize),
    /// Wait for a message named so whose fields equal `fields` (after substitution).
    Expect {
        message: String,
        fields: serde_json::Map<String, Value>,
        within: Duration,
        /// The next frame must be it (else other frames are skipped).
        next: bool,
        /// Saved values: name -> field of the matched message.
        save: BTreeMap<String, String>,
    },
    /// Wait for the peer to close.
    ExpectClose {
        within: Duration,
    },
    /// No message named so (with these fields) within the time.
    ExpectNot {
        message: String,
        fields: serde_json::Map<String, Value>,
        within: Duration,
    },
    Sleep(Duration),
}

/// A piece of a `send_hex` frame: bytes, or a saved number written little-endian in `width`
/// bytes (`${name:u32}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HexPart {
    Bytes(Vec<u8>),
    Saved { name: String, width: usize },
}

const WIDTHS: [(&str, usize); 4] = [("u8", 1), ("u16", 2), ("u32", 4), ("u64", 8)];

/// Reads `send_hex` text: hex digits, and `${name:u8|u16|u32|u64}`.
pub fn parse_hex(text: &str) -> Result<Vec<HexPart>, String> {
    let mut parts = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let (hex, tail) = match rest.find("${") {
            Some(at) => rest.split_at(at),
            None => (rest, ""),
        };
        if !hex.is_empty() {
            parts.push(HexPart::Bytes(
                hex::decode(hex.trim()).map_err(|e| format!("{e} in {hex:?}"))?,
            ));
        }
        if tail.is_empty() {
            break;
        }
        let end = tail
            .find('}')
            .ok_or_else(|| format!("unclosed ${{ in {tail:?}"))?;
        let inner = &tail[2..end];
        let (name, ty) = inner
            .split_once(':')
            .ok_or_else(|| format!("${{{inner}}}: give a width, e.g. ${{{inner}:u32}}"))?;
        let width = WIDTHS
            .iter()
            .find(|(t, _)| *t == ty)
            .map(|(_, w)| *w)
            .ok_or_else(|| format!("${{{inner}}}: the width is u8, u16, u32 or u64"))?;
        parts.push(HexPart::Saved {
            name: name.to_string(),
            width,
        });
        rest = &tail[end + 1..];
    }
    Ok(parts)
}

/// `send_hex` text for `parts`.
pub fn hex_text(parts: &[HexPart]) -> String {
    parts
        .iter()
        .map(|p| match p {
            HexPart::Bytes(b) => hex::encode(b),
            HexPart::Saved { name, width } => {
                let ty = WIDTHS
                    .iter()
                    .find(|(_, w)| w == width)
                    .map_or("u32", |(t, _)| t);
                format!("${{{name}:{ty}}}")
            }
        })
        .collect()
}

/// How many bytes the frame `parts` make is.
pub fn fill_len(parts: &[HexPart]) -> usize {
    parts
        .iter()
        .map(|p| match p {
            HexPart::Bytes(b) => b.len(),
            HexPart::Saved { width, .. } => *width,
        })
        .sum()
}

/// The frame `parts` make with the saved numbers filled in.
pub fn fill(parts: &[HexPart], saved: &BTreeMap<String, Value>) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for p in parts {
        match p {
            HexPart::Bytes(b) => out.extend_from_slice(b),
            HexPart::Saved { name, width } => {
                let n = saved
                    .get(name)
                    .and_then(Value::as_u64)
                    .ok_or_else(|| format!("${{{name}}} is not a saved number"))?;
                out.extend_from_slice(&n.to_le_bytes()[..*width]);
            }
        }
    }
    Ok(out)
}

/// A scripted conversation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Script {
    pub name: String,
    pub description: String,
    pub steps: Vec<Step>,
    /// What `sv2-probe fuzz` found and how (the `[finding]` table); not played.
    pub finding: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    name: Option<String>,
    description: Option<String>,
    #[serde(default, rename = "step")]
    steps: Vec<StepFile>,
    #[serde(default)]
    finding: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepFile {
    send: Option<serde_json::Map<String, Value>>,
    send_hex: Option<String>,
    chunk: Option<usize>,
    pause_ms: Option<u64>,
    #[serde(default)]
    flip_last_byte: bool,
    flip_bit: Option<usize>,
    send_raw_hex: Option<String>,
    expect: Option<String>,
    expect_any: Option<Vec<String>>,
    forbid: Option<String>,
    #[serde(default)]
    answer_where: serde_json::Map<String, Value>,
    expect_not: Option<String>,
    #[serde(default)]
    expect_alive: bool,
    #[serde(default)]
    close: bool,
    #[serde(default, rename = "where")]
    fields: serde_json::Map<String, Value>,
    within_ms: Option<u64>,
    #[serde(default)]
    next: bool,
    #[serde(default)]
    save: BTreeMap<String, String>,
    sleep_ms: Option<u64>,
    crowd: Option<usize>,
}

impl Script {
    /// Reads a conversation from TOML text; each step is checked (one kind per step, known message
    /// names, messages that parse once their `${...}` are filled).
    pub fn from_toml(text: &str) -> Result<Script, ScenarioError> {
        let file: File = toml::from_str(text)?;
        let mut steps = Vec::new();
        for (i, s) in file.steps.into_iter().enumerate() {
            let problem = |problem: String| ScenarioError::Rule {
                rule: format!("step {}", i + 1),
                problem,
            };
            let kinds = [
                s.send.is_some(),
                s.send_hex.is_some(),
                s.send_raw_hex.is_some(),
                s.expect.is_some(),
                s.expect_any.is_some(),
                s.expect_not.is_some(),
                s.expect_alive,
                s.close,
                s.sleep_ms.is_some(),
                s.crowd.is_some(),
            ]
            .iter()
            .filter(|k| **k)
            .count();
            if kinds != 1 {
                return Err(problem(
                    "a step is exactly one of send, send_hex, send_raw_hex, expect, expect_any, \
                     expect_not, expect_alive, close, sleep_ms, crowd"
                        .into(),
                ));
            }
            let shaped = s.chunk.is_some()
                || s.pause_ms.is_some()
                || s.flip_last_byte
                || s.flip_bit.is_some();
            if (s.forbid.is_some() || !s.answer_where.is_empty()) && s.expect_any.is_none() {
                return Err(problem("forbid and answer_where go with expect_any".into()));
            }
            if shaped && s.send_hex.is_none() {
                return Err(problem(
                    "chunk, pause_ms, flip_last_byte and flip_bit shape a send_hex".into(),
                ));
            }
            if s.chunk == Some(0) {
                return Err(problem("chunk must be at least 1".into()));
            }
            let within = s.within_ms.map_or(DEFAULT_WITHIN, Duration::from_millis);
            let known = |name: &str| {
                if MESSAGE_TYPES.iter().any(|m| m.name == name) {
                    Ok(())
                } else {
                    Err(problem(format!("no message is named {name:?}")))
                }
            };
            steps.push(if let Some(send) = s.send {
                let name = send
                    .get("message")
                    .and_then(Value::as_str)
                    .ok_or_else(|| problem("send needs \"message\"".into()))?;
                known(name)?;
                Step::Send(send)
            } else if let Some(hex) = s.send_hex {
                Step::SendHex {
                    hex: parse_hex(&hex).map_err(|e| problem(format!("send_hex: {e}")))?,
                    shape: WireShape {
                        flip_wire_bit: s.flip_bit,
                        flip_last_byte: s.flip_last_byte,
                        chunk: s.chunk,
                        pause: Duration::from_millis(s.pause_ms.unwrap_or(0)),
                    },
                }
            } else if let Some(hex) = s.send_raw_hex {
                Step::SendRaw(
                    hex::decode(hex.trim()).map_err(|e| problem(format!("send_raw_hex: {e}")))?,
                )
            } else if let Some(messages) = s.expect_any {
                if messages.is_empty() {
                    return Err(problem("expect_any names no message".into()));
                }
                for m in &messages {
                    known(m)?;
                }
                let forbid = match s.forbid {
                    Some(name) => {
                        known(&name)?;
                        crate::model::check_fields(&name, s.fields.keys()).map_err(problem)?;
                        Some((name, s.fields))
                    }
                    None => None,
                };
                Step::ExpectAny {
                    messages,
                    within,
                    answer: s.answer_where,
                    forbid,
                }
            } else if s.expect_alive {
                Step::ExpectAlive { within }
            } else if s.close {
                Step::Close
            } else if let Some(n) = s.crowd {
                if n == 0 || n > MAX_CROWD {
                    return Err(problem(format!("crowd is 1 to {MAX_CROWD} connections")));
                }
                Step::Crowd(n)
            } else if let Some(message) = s.expect {
                if message == "close" {
                    Step::ExpectClose { within }
                } else {
                    known(&message)?;
                    crate::model::check_fields(&message, s.fields.keys().chain(s.save.values()))
                        .map_err(problem)?;
                    Step::Expect {
                        message,
                        fields: s.fields,
                        within,
                        next: s.next,
                        save: s.save,
                    }
                }
            } else if let Some(message) = s.expect_not {
                known(&message)?;
                crate::model::check_fields(&message, s.fields.keys()).map_err(problem)?;
                Step::ExpectNot {
                    message,
                    fields: s.fields,
                    within,
                }
            } else {
                Step::Sleep(Duration::from_millis(s.sleep_ms.unwrap_or(0)))
            });
        }
        // Every `${name}` is saved by an earlier step (else it would be sent, or matched, as text).
        let mut saved: std::collections::BTreeSet<String> = Default::default();
        for (i, step) in steps.iter().enumerate() {
            let used = match step {
                Step::Send(fields) => names_used(&Value::Object(fields.clone())),
                Step::SendHex { hex, .. } => hex
                    .iter()
                    .filter_map(|p| match p {
                        HexPart::Saved { name, .. } => Some(name.clone()),
                        HexPart::Bytes(_) => None,
                    })
                    .collect(),
                Step::Expect { fields, .. } | Step::ExpectNot { fields, .. } => {
                    names_used(&Value::Object(fields.clone()))
                }
                Step::ExpectAny { answer, forbid, .. } => {
                    let mut used = names_used(&Value::Object(answer.clone()));
                    if let Some((_, fields)) = forbid {
                        used.extend(names_used(&Value::Object(fields.clone())));
                    }
                    used
                }
                _ => Vec::new(),
            };
            if let Some(name) = used.iter().find(|n| !saved.contains(*n)) {
                return Err(ScenarioError::Rule {
                    rule: format!("step {}", i + 1),
                    problem: format!("${{{name}}} is not saved by an earlier step"),
                });
            }
            if let Step::Expect { save, .. } = step {
                saved.extend(save.keys().cloned());
            }
        }
        if steps.is_empty() {
            return Err(ScenarioError::Rule {
                rule: "file".into(),
                problem: "no [[step]]".into(),
            });
        }
        Ok(Script {
            name: file.name.unwrap_or_default(),
            description: file.description.unwrap_or_default(),
            steps,
            finding: file.finding,
        })
    }

    /// The script as a file that [`Script::from_toml`] reads back as it is.
    pub fn to_toml(&self) -> String {
        let mut table = toml::Table::new();
        if !self.name.is_empty() {
            table.insert("name".into(), self.name.clone().into());
        }
        if !self.description.is_empty() {
            table.insert("description".into(), self.description.clone().into());
        }
        if !self.finding.is_empty() {
            let finding: toml::Table = self
                .finding
                .iter()
                .map(|(k, v)| (k.clone(), toml::Value::from(v.clone())))
                .collect();
            table.insert("finding".into(), finding.into());
        }
        let steps: Vec<toml::Value> = self.steps.iter().map(|s| step_table(s).into()).collect();
        table.insert("step".into(), steps.into());
        toml::to_string(&table).unwrap_or_default()
    }
}

fn millis(d: &Duration) -> toml::Value {
    toml::Value::Integer(d.as_millis().min(i64::MAX as u128) as i64)
}

/// A JSON value as TOML (nulls, which TOML lacks, left out).
fn to_toml_value(v: &Value) -> Option<toml::Value> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(b) => (*b).into(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.into(),
            None => match n.as_u64() {
                Some(u) => toml::Value::Float(u as f64),
                None => n.as_f64().unwrap_or(0.0).into(),
            },
        },
        Value::String(s) => s.clone().into(),
        Value::Array(items) => items
            .iter()
            .filter_map(to_toml_value)
            .collect::<Vec<_>>()
            .into(),
        Value::Object(map) => toml_table(map).into(),
    })
}

fn toml_table(map: &serde_json::Map<String, Value>) -> toml::Table {
    map.iter()
        .filter_map(|(k, v)| to_toml_value(v).map(|v| (k.clone(), v)))
        .collect()
}

fn step_table(step: &Step) -> toml::Table {
    let mut t = toml::Table::new();
    let within = |t: &mut toml::Table, d: &Duration| {
        if *d != DEFAULT_WITHIN {
            t.insert("within_ms".into(), millis(d));
        }
    };
    match step {
        Step::Send(fields) => {
            t.insert("send".into(), toml_table(fields).into());
        }
        Step::SendHex { hex, shape } => {
            t.insert("send_hex".into(), hex_text(hex).into());
            if let Some(c) = shape.chunk {
                t.insert("chunk".into(), (c as i64).into());
            }
            if !shape.pause.is_zero() {
                t.insert("pause_ms".into(), millis(&shape.pause));
            }
            if shape.flip_last_byte {
                t.insert("flip_last_byte".into(), true.into());
            }
            if let Some(b) = shape.flip_wire_bit {
                t.insert("flip_bit".into(), (b as i64).into());
            }
        }
        Step::SendRaw(bytes) => {
            t.insert("send_raw_hex".into(), hex::encode(bytes).into());
        }
        Step::Expect {
            message,
            fields,
            within: w,
            next,
            save,
        } => {
            t.insert("expect".into(), message.clone().into());
            if !fields.is_empty() {
                t.insert("where".into(), toml_table(fields).into());
            }
            within(&mut t, w);
            if *next {
                t.insert("next".into(), true.into());
            }
            if !save.is_empty() {
                let save: toml::Table = save
                    .iter()
                    .map(|(k, v)| (k.clone(), toml::Value::from(v.clone())))
                    .collect();
                t.insert("save".into(), save.into());
            }
        }
        Step::ExpectAny {
            messages,
            within: w,
            answer,
            forbid,
        } => {
            if !answer.is_empty() {
                t.insert("answer_where".into(), toml_table(answer).into());
            }
            t.insert(
                "expect_any".into(),
                messages
                    .iter()
                    .map(|m| toml::Value::from(m.clone()))
                    .collect::<Vec<_>>()
                    .into(),
            );
            if let Some((name, fields)) = forbid {
                t.insert("forbid".into(), name.clone().into());
                if !fields.is_empty() {
                    t.insert("where".into(), toml_table(fields).into());
                }
            }
            within(&mut t, w);
        }
        Step::ExpectNot {
            message,
            fields,
            within: w,
        } => {
            t.insert("expect_not".into(), message.clone().into());
            if !fields.is_empty() {
                t.insert("where".into(), toml_table(fields).into());
            }
            within(&mut t, w);
        }
        Step::ExpectClose { within: w } => {
            t.insert("expect".into(), "close".into());
            within(&mut t, w);
        }
        Step::ExpectAlive { within: w } => {
            t.insert("expect_alive".into(), true.into());
            within(&mut t, w);
        }
        Step::Close => {
            t.insert("close".into(), true.into());
        }
        Step::Sleep(d) => {
            t.insert("sleep_ms".into(), millis(d));
        }
        Step::Crowd(n) => {
            t.insert("crowd".into(), (*n as i64).into());
        }
    }
    t
}

/// Connections a `crowd` step holds open until the script ends.
pub type Held = Vec<Box<dyn std::any::Any + Send>>;

/// Whether the server still serves: what `expect_alive` asks (and `crowd` uses).
pub trait Alive: Send + Sync {
    /// Ok when a fresh connection completes the handshake and SetupConnection within `within`.
    fn check(
        &self,
        within: Duration,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>>;

    /// Opens `count` connections with their handshakes done, to be held open.
    fn crowd(
        &self,
        count: usize,
        within: Duration,
    ) -> Pin<Box<dyn Future<Output = Result<Held, String>> + Send + '_>> {
        let _ = (count, within);
        Box::pin(async { Err("crowd needs a server to connect to (--target)".to_string()) })
    }
}

/// No server to connect to again: `expect_alive` fails, saying so.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoAlive;

impl Alive for NoAlive {
    fn check(&self, _: Duration) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>> {
        Box::pin(async {
            Err("expect_alive needs a server to connect to (--target), or a client's process (--listen with --spawn or --pid)".to_string())
        })
    }
}

/// A server at `addr`: a fresh connection, the handshake (`noise` as for
/// [`Connection::initiate_or_plain`]) and a SetupConnection (Mining protocol: any SV2 server must
/// answer it, .Error when it serves another) answered by .Success or .Error.
#[derive(Debug, Clone, Copy)]
pub struct TargetAlive {
    pub addr: SocketAddr,
    pub noise: Option<Option<AuthorityPublicKey>>,
}

impl TargetAlive {
    async fn open(&self, within: Duration) -> Result<Connection<tokio::net::TcpStream>, String> {
        let stream = tokio::time::timeout(within, tokio::net::TcpStream::connect(self.addr))
            .await
            .map_err(|_| {
                format!(
                    "a fresh connection to {}: no answer within {within:?}",
                    self.addr
                )
            })?
            .map_err(|e| format!("a fresh connection to {}: {e}", self.addr))?;
        Connection::initiate_or_plain(stream, self.noise, within, &KeyLog::none())
            .await
            .map_err(|e| format!("a fresh connection's handshake: {}", e.brief()))
    }
}

impl Alive for TargetAlive {
    fn crowd(
        &self,
        count: usize,
        within: Duration,
    ) -> Pin<Box<dyn Future<Output = Result<Held, String>> + Send + '_>> {
        Box::pin(async move {
            let mut held: Held = Vec::with_capacity(count);
            for _ in 0..count.min(MAX_CROWD) {
                held.push(Box::new(self.open(within).await?));
            }
            Ok(held)
        })
    }

    fn check(
        &self,
        within: Duration,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>> {
        Box::pin(async move {
            let work = async {
                let mut conn = self.open(within).await?;
                let setup = alive_setup(self.addr);
                conn.send(&setup)
                    .await
                    .map_err(|e| format!("a fresh connection's SetupConnection: {}", e.brief()))?;
                loop {
                    let decoded = conn
                        .recv("alive: SetupConnection answer", within)
                        .await
                        .map_err(|e| {
                            format!("a fresh connection's SetupConnection: {}", e.brief())
                        })?;
                    if matches!(
                        decoded.message,
                        Message::SetupConnectionSuccess(_) | Message::SetupConnectionError(_)
                    ) {
                        conn.shutdown().await;
                        return Ok(());
                    }
                }
            };
            match tokio::time::timeout(within + within, work).await {
                Ok(r) => r,
                Err(_) => Err(format!("a fresh connection: no answer within {within:?}")),
            }
        })
    }
}

fn alive_setup(addr: SocketAddr) -> Message<'static> {
    use sv2_codec::messages::common::SetupConnection;
    use sv2_codec::types::Str0_255;
    let text = |s: &str| Str0_255::new(s.as_bytes().to_vec()).unwrap_or_default();
    SetupConnection {
        protocol: 0,
        min_version: 2,
        max_version: 2,
        flags: 0,
        endpoint_host: text(&addr.ip().to_string()),
        endpoint_port: addr.port(),
        vendor: text("sv2-toolkit"),
        hardware_version: text("alive"),
        firmware: text(""),
        device_id: text(""),
    }
    .into()
}

/// How a conversation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// Every step done.
    Done,
    /// Step `step` (from 1) failed: what was expected, what happened.
    Failed {
        step: usize,
        expected: String,
        observed: String,
    },
}

/// Plays `script` on `conn` (after its handshake). The transcript of `conn` holds the whole
/// conversation, with a note per step. `expect_alive` fails: there is no server to reconnect to
/// ([`play_checked`] gives one).
pub async fn play<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<S>,
    script: &Script,
) -> Ended {
    play_checked(conn, script, &NoAlive).await
}

/// As [`play`], with `alive` answering `expect_alive`.
pub async fn play_checked<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<S>,
    script: &Script,
    alive: &dyn Alive,
) -> Ended {
    Player::default().play(conn, &script.steps, alive).await
}

/// Plays steps, keeping what they saved between calls (a script played in parts: the steps that
/// reach a state, then steps built from what they saved). Step numbers count from the first call.
#[derive(Debug, Clone, Default)]
pub struct Player {
    pub saved: BTreeMap<String, Value>,
    pub done: usize,
    /// An `expect_any` or `expect` close was met by the peer closing the connection.
    pub closed: bool,
}

impl Player {
    /// Plays `steps`; a failure names its step counted from this call's first.
    pub async fn play<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        conn: &mut Connection<S>,
        steps: &[Step],
        alive: &dyn Alive,
    ) -> Ended {
        let ended = play_steps(conn, steps, &mut self.saved, &mut self.closed, alive).await;
        self.done += match &ended {
            Ended::Done => steps.len(),
            Ended::Failed { step, .. } => step - 1,
        };
        ended
    }
}

async fn play_steps<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<S>,
    steps: &[Step],
    saved: &mut BTreeMap<String, Value>,
    closed: &mut bool,
    alive: &dyn Alive,
) -> Ended {
    // The connections of `crowd` steps, closed when the steps end.
    let mut held: Held = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let n = i + 1;
        let fail = |expected: String, observed: String| Ended::Failed {
            step: n,
            expected,
            observed,
        };
        match step {
            Step::Send(fields) => {
                let value = substitute(&Value::Object(fields.clone()), saved);
                let message: Message<'static> = match serde_json::from_value(value) {
                    Ok(m) => m,
                    Err(e) => {
                        return fail(
                            "a message to send".into(),
                            format!("it does not parse: {e}"),
                        )
                    }
                };
                let frame = match to_frame_bytes(&message, &[]) {
                    Ok(f) => f,
                    Err(e) => {
                        return fail(
                            "a message to send".into(),
                            format!("it does not encode: {e}"),
                        )
                    }
                };
                if let Err(e) = conn.send_frame(&frame, "scripted send").await {
                    return fail(format!("to send {}", message.name()), e.brief());
                }
            }
            Step::SendHex { hex, shape } => {
                let frame = match fill(hex, saved) {
                    Ok(f) => f,
                    Err(e) => return fail("a frame to send".into(), e),
                };
                if let Err(e) = conn.send_frame_shaped(&frame, "scripted send", shape).await {
                    return fail("to send the frame".into(), e.brief());
                }
            }
            Step::SendRaw(bytes) => {
                if let Err(e) = conn.send_raw(bytes, "scripted raw send").await {
                    return fail("to send the bytes".into(), e.brief());
                }
            }
            Step::ExpectAlive { within } => {
                if let Err(e) = alive.check(*within).await {
                    return fail(format!("a fresh connection served within {within:?}"), e);
                }
            }
            Step::ExpectAny {
                messages,
                within,
                answer,
                forbid,
            } => {
                let forbid = forbid.as_ref().map(|(name, fields)| {
                    (name, substitute(&Value::Object(fields.clone()), saved))
                });
                let answer = substitute(&Value::Object(answer.clone()), saved);
                // The answer's fields, where the message has them.
                let answers = |value: &Value| {
                    let wanted: serde_json::Map<String, Value> = answer
                        .as_object()
                        .map(|a| {
                            a.iter()
                                .filter(|(k, _)| value.get(k.as_str()).is_some())
                                .map(|(k, v)| (k.clone(), v.clone()))
                                .collect()
                        })
                        .unwrap_or_default();
                    crate::engine::fields_match(value, &wanted)
                };
                let expected = format!(
                    "one of {} (or a close) within {within:?}{}",
                    messages.join(", "),
                    forbid
                        .as_ref()
                        .map_or(String::new(), |(name, fields)| format!(
                            ", and no {name} {} before it",
                            show(fields)
                        ))
                );
                let deadline = tokio::time::Instant::now() + *within;
                loop {
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    if left.is_zero() {
                        return fail(expected, format!("nothing within {within:?}"));
                    }
                    match conn.recv_frame("scripted expect_any", left).await {
                        Ok(frame) => {
                            let got = describe(&frame);
                            if let (Some((name, value)), Some((banned, fields))) = (&got, &forbid) {
                                if name == *banned && matches_fields(value, fields) {
                                    return fail(expected, format!("{FORBIDDEN}{name}: {value}"));
                                }
                            }
                            if got.is_some_and(|(name, value)| {
                                messages.contains(&name) && answers(&value)
                            }) {
                                break;
                            }
                        }
                        Err(NetError::Closed { .. }) | Err(NetError::Io { .. }) => {
                            *closed = true;
                            break;
                        }
                        Err(NetError::Timeout { .. }) => {
                            return fail(expected, format!("nothing within {within:?}"))
                        }
                        // A frame that cannot be read, or a broken MAC: not an answer.
                        Err(e) => return fail(expected, e.brief()),
                    }
                }
            }
            Step::Sleep(d) => tokio::time::sleep(*d).await,
            Step::Close => conn.close(Duration::from_millis(200)).await,
            Step::Crowd(n) => match alive.crowd(*n, DEFAULT_WITHIN).await {
                Ok(more) => held.extend(more),
                Err(e) => return fail(format!("{n} more connections"), e),
            },
            Step::Expect {
                message,
                fields,
                within,
                next,
                save,
            } => {
                let fields = substitute(&Value::Object(fields.clone()), saved);
                let expected = format!("{message} {} within {within:?}", show(&fields));
                let deadline = tokio::time::Instant::now() + *within;
                loop {
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    if left.is_zero() {
                        return fail(expected, format!("nothing matching within {within:?}"));
                    }
                    let frame = match conn.recv_frame("scripted expect", left).await {
                        Ok(frame) => frame,
                        Err(e) => return fail(expected, e.brief()),
                    };
                    let got = describe(&frame);
                    let matched = got.as_ref().is_some_and(|(name, value)| {
                        name == message && matches_fields(value, &fields)
                    });
                    if matched {
                        if let Some((_, value)) = &got {
                            for (name, field) in save {
                                match value.get(field) {
                                    Some(v) => {
                                        saved.insert(name.clone(), v.clone());
                                    }
                                    None => {
                                        return fail(
                                            format!("{message} with a field {field:?} to save"),
                                            format!("{value}"),
                                        )
                                    }
                                }
                            }
                        }
                        break;
                    }
                    if *next {
                        let observed = got.map_or_else(
                            || format!("a frame that does not decode: {}", hex::encode(&frame)),
                            |(_, v)| v.to_string(),
                        );
                        return fail(expected, observed);
                    }
                }
            }
            Step::ExpectNot {
                message,
                fields,
                within,
            } => {
                let fields = substitute(&Value::Object(fields.clone()), saved);
                let deadline = tokio::time::Instant::now() + *within;
                loop {
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    match conn.recv_frame("scripted expect_not", left).await {
                        Ok(frame) => {
                            if let Some((name, value)) = describe(&frame) {
                                if &name == message && matches_fields(&value, &fields) {
                                    return fail(
                                        format!("no {message} within {within:?}"),
                                        value.to_string(),
                                    );
                                }
                            }
                        }
                        Err(NetError::Timeout { .. }) => break,
                        // A close is no such message; a broken frame or MAC is not a pass.
                        Err(NetError::Closed { .. }) | Err(NetError::Io { .. }) => break,
                        Err(e) => {
                            return fail(format!("no {message} within {within:?}"), e.brief())
                        }
                    }
                }
            }
            Step::ExpectClose { within } => {
                let deadline = tokio::time::Instant::now() + *within;
                loop {
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    if left.is_zero() {
                        return fail(
                            format!("a close within {within:?}"),
                            "the peer kept the connection open".into(),
                        );
                    }
                    match conn.recv_frame("scripted expect close", left).await {
                        Ok(_) => continue,
                        Err(NetError::Closed { .. }) | Err(NetError::Io { .. }) => {
                            *closed = true;
                            break;
                        }
                        Err(e) => return fail(format!("a close within {within:?}"), e.brief()),
                    }
                }
            }
        }
        conn.transcript
            .note(Timestamp::now(), format!("step {n} done"));
    }
    Ended::Done
}

fn matches_fields(value: &Value, fields: &Value) -> bool {
    fields
        .as_object()
        .is_none_or(|f| crate::engine::fields_match(value, f))
}

fn show(fields: &Value) -> String {
    match fields.as_object() {
        Some(m) if !m.is_empty() => format!("with {fields}"),
        _ => String::new(),
    }
}

/// The name in a `"${name}"` string.
fn placeholder(s: &str) -> Option<&str> {
    s.strip_prefix("${")?.strip_suffix('}')
}

/// `"${name}"` (a whole string) replaced by the saved value, anywhere in `value`.
fn substitute(value: &Value, saved: &BTreeMap<String, Value>) -> Value {
    match value {
        Value::String(s) => placeholder(s)
            .and_then(|name| saved.get(name))
            .cloned()
            .unwrap_or_else(|| value.clone()),
        Value::Array(items) => Value::Array(items.iter().map(|v| substitute(v, saved)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), substitute(v, saved)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The `${name}`s a value uses.
fn names_used(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => placeholder(s)
            .map(|n| vec![n.to_string()])
            .unwrap_or_default(),
        Value::Array(items) => items.iter().flat_map(names_used).collect(),
        Value::Object(map) => map.values().flat_map(names_used).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVERY_STEP: &str = r#"
name = "every step"
description = "one of each"

[finding]
class = "hang"
case = "7"

[[step]]
send = { message = "SetupConnection", protocol = 0, min_version = 2, max_version = 2, flags = 0, endpoint_host = "", endpoint_port = 0, vendor = "v", hardware_version = "", firmware = "", device_id = "" }

[[step]]
expect = "OpenStandardMiningChannel.Success"
save = { channel = "channel_id" }
within_ms = 1500
next = true

[[step]]
send_hex = "00001a${channel:u32}aabb"
chunk = 3
pause_ms = 2
flip_last_byte = true
flip_bit = 9

[[step]]
send_raw_hex = "deadbeef"

[[step]]
expect_any = ["OpenStandardMiningChannel.Success", "OpenMiningChannel.Error"]
answer_where = { request_id = 8 }
forbid = "SetCustomMiningJob.Success"
where = { request_id = 7 }

[[step]]
expect_not = "SetTarget"
within_ms = 200

[[step]]
expect = "close"

[[step]]
expect_alive = true
within_ms = 900

[[step]]
sleep_ms = 5

[[step]]
crowd = 3
"#;

    #[test]
    fn a_script_written_back_reads_the_same() {
        let script = Script::from_toml(EVERY_STEP).unwrap();
        assert_eq!(script.steps.len(), 10);
        assert_eq!(script.finding["class"], "hang");
        let again = Script::from_toml(&script.to_toml()).unwrap();
        assert_eq!(again, script);
    }

    #[test]
    fn hex_templates_fill_saved_numbers_little_endian() {
        let parts = parse_hex("0102${a:u16}ff${b:u32}").unwrap();
        assert_eq!(hex_text(&parts), "0102${a:u16}ff${b:u32}");
        let mut saved = BTreeMap::new();
        saved.insert("a".to_string(), Value::from(0x0304));
        saved.insert("b".to_string(), Value::from(5));
        assert_eq!(
            fill(&parts, &saved).unwrap(),
            [1, 2, 4, 3, 0xff, 5, 0, 0, 0]
        );
        assert!(fill(&parts, &BTreeMap::new()).is_err());
        for bad in ["0g", "${a}", "${a:u24}", "${a:u32"] {
            assert!(parse_hex(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn misplaced_keys_are_refused() {
        for (text, why) in [
            (
                "[[step]]\nsend_raw_hex = \"00\"\nchunk = 1\n",
                "shape a send_hex",
            ),
            (
                "[[step]]\nexpect = \"SetTarget\"\nforbid = \"SetTarget\"\n",
                "go with expect_any",
            ),
            ("[[step]]\nsend_hex = \"${x:u32}\"\n", "not saved"),
            ("[[step]]\nexpect_any = []\n", "names no message"),
            ("[[step]]\ncrowd = 1000\n", "crowd is 1 to 256"),
        ] {
            let e = Script::from_toml(text).unwrap_err().to_string();
            assert!(e.contains(why), "{text}: {e}");
        }
    }
}
