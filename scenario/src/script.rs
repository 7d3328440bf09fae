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
//! that do not encode), `expect` (a message name, or "close": the peer closes), `expect_not` (no
//! such message within the time), `sleep_ms`. An `expect` skips other frames unless `next = true`;
//! `save = { name = "field" }` keeps a field of the frame it matched, and `"${name}"` anywhere in a
//! later `send` or `where` stands for it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use sv2_codec::messages::MESSAGE_TYPES;
use sv2_codec::{to_frame_bytes, Message};
use sv2_wire::{Connection, NetError, Timestamp};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::engine::describe;
use crate::model::ScenarioError;

/// The default time an expectation waits.
pub const DEFAULT_WITHIN: Duration = Duration::from_secs(5);

/// One step of a conversation.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Send this message (codec JSON; `${name}` values substituted when sent).
    Send(serde_json::Map<String, Value>),
    /// Send this plain frame as given.
    SendHex(Vec<u8>),
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

/// A scripted conversation.
#[derive(Debug, Clone, Default)]
pub struct Script {
    pub name: String,
    pub description: String,
    pub steps: Vec<Step>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    name: Option<String>,
    description: Option<String>,
    #[serde(default, rename = "step")]
    steps: Vec<StepFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepFile {
    send: Option<serde_json::Map<String, Value>>,
    send_hex: Option<String>,
    expect: Option<String>,
    expect_not: Option<String>,
    #[serde(default, rename = "where")]
    fields: serde_json::Map<String, Value>,
    within_ms: Option<u64>,
    #[serde(default)]
    next: bool,
    #[serde(default)]
    save: BTreeMap<String, String>,
    sleep_ms: Option<u64>,
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
                s.expect.is_some(),
                s.expect_not.is_some(),
                s.sleep_ms.is_some(),
            ]
            .iter()
            .filter(|k| **k)
            .count();
            if kinds != 1 {
                return Err(problem(
                    "a step is exactly one of send, send_hex, expect, expect_not, sleep_ms".into(),
                ));
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
                Step::SendHex(
                    hex::decode(hex.trim()).map_err(|e| problem(format!("send_hex: {e}")))?,
                )
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
                Step::Expect { fields, .. } | Step::ExpectNot { fields, .. } => {
                    names_used(&Value::Object(fields.clone()))
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
        })
    }
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
/// conversation, with a note per step.
pub async fn play<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<S>,
    script: &Script,
) -> Ended {
    let mut saved: BTreeMap<String, Value> = BTreeMap::new();
    for (i, step) in script.steps.iter().enumerate() {
        let n = i + 1;
        let fail = |expected: String, observed: String| Ended::Failed {
            step: n,
            expected,
            observed,
        };
        match step {
            Step::Send(fields) => {
                let value = substitute(&Value::Object(fields.clone()), &saved);
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
            Step::SendHex(frame) => {
                if let Err(e) = conn
                    .send_frame_shaped(frame, "scripted send", &Default::default())
                    .await
                {
                    return fail("to send the frame".into(), e.brief());
                }
            }
            Step::Sleep(d) => tokio::time::sleep(*d).await,
            Step::Expect {
                message,
                fields,
                within,
                next,
                save,
            } => {
                let fields = substitute(&Value::Object(fields.clone()), &saved);
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
                let fields = substitute(&Value::Object(fields.clone()), &saved);
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
                        Err(NetError::Closed { .. }) | Err(NetError::Io { .. }) => break,
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
