//! Scenario files: TOML, one `[[rule]]` table per rule, messages and field values in the codec's
//! JSON representation (the form `sv2-probe decode --json` prints). The format, with examples, is in
//! `scenarios/README.md`. A file is checked whole when it is read: an unknown key, an unknown message
//! name, an action without what it needs, or a message to inject that does not encode is an error
//! naming the rule.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use sv2_codec::messages::MESSAGE_TYPES;
use sv2_codec::{to_frame_bytes, Message};

/// Why a scenario file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{0}")]
    Toml(#[from] toml::de::Error),
    #[error("rule {rule:?}: {problem}")]
    Rule { rule: String, problem: String },
}

/// Which side sent the frame a rule looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum From {
    /// The client (downstream of a proxy).
    Client,
    /// The server (upstream of a proxy).
    Server,
}

/// How a frame is broken on purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Corruption {
    /// Flip one bit of the plain frame (bit 0 is the low bit of its first byte; past the end it
    /// wraps).
    FlipBit(usize),
    /// Keep `keep` bytes of the payload and make msg_length say so (a complete but short frame).
    Truncate(usize),
    /// msg_length says `by` more bytes than the payload has.
    LieLength(u32),
    /// The channel_msg bit the other way round.
    ChannelBit,
    /// Flip a bit of the bytes on the wire after encryption: the MAC fails (under plaintext, a bit
    /// of the frame).
    BreakMac,
}

/// What a rule does to the frame it matched.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Forward it unchanged (the rule's firing is still logged).
    Pass,
    /// Do not forward it.
    Drop,
    /// Forward it after this long; frames behind it are not held.
    Delay(Duration),
    /// Forward it this many times in all.
    Duplicate(u32),
    /// Hold it until the next frame in the same direction has been forwarded, then forward it.
    Reorder,
    /// Forward it with fields replaced (`set`, codec JSON) and numeric fields moved by an amount
    /// (`add`, e.g. request_id + 1; the sum must fit the field's type).
    Replace {
        set: serde_json::Map<String, Value>,
        add: serde_json::Map<String, Value>,
    },
    /// Send this frame first, then the matched one.
    InjectBefore(Vec<u8>),
    /// Send the matched frame, then this one.
    InjectAfter(Vec<u8>),
    /// Forward it broken.
    Corrupt(Corruption),
    /// Write it `chunk` bytes at a time, `pause` apart (split writes, or a slow trickle).
    Split { chunk: usize, pause: Duration },
    /// Close the connection it was going to (FIN), and the other one.
    Close,
    /// Reset the connection it was going to (RST), and close the other one.
    Reset,
}

/// One rule: what it matches, and what it does.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub from: Option<From>,
    /// The spec's message name; None: any frame.
    pub message: Option<String>,
    /// Only frames whose header names this extension_type (the channel_msg bit aside): frames of
    /// an extension the codec does not know, which no `message` names, too.
    pub extension: Option<u16>,
    /// Only frames whose header names this msg_type (with `extension`, a message no name covers:
    /// one the spec does not define).
    pub msg_type: Option<u8>,
    /// Fields that must equal these values (codec JSON).
    pub fields: serde_json::Map<String, Value>,
    /// Only the nth frame the rule matches (1-based).
    pub nth: Option<u64>,
    /// At most this many firings.
    pub times: Option<u64>,
    /// Only once this long has passed since the connection began.
    pub after: Option<Duration>,
    /// Only once this other rule has fired on the connection.
    pub after_rule: Option<String>,
    pub action: Action,
}

/// A scenario: rules, tried in order; the first that matches a frame acts on it.
#[derive(Debug, Clone, Default)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    name: Option<String>,
    description: Option<String>,
    #[serde(default, rename = "rule")]
    rules: Vec<RuleFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    name: Option<String>,
    from: Option<From>,
    message: Option<String>,
    extension: Option<u16>,
    msg_type: Option<u8>,
    #[serde(default, rename = "where")]
    fields: serde_json::Map<String, Value>,
    nth: Option<u64>,
    times: Option<u64>,
    after_ms: Option<u64>,
    after_rule: Option<String>,
    action: String,
    ms: Option<u64>,
    copies: Option<u32>,
    #[serde(default)]
    set: serde_json::Map<String, Value>,
    #[serde(default)]
    add: serde_json::Map<String, Value>,
    inject: Option<serde_json::Map<String, Value>>,
    corrupt: Option<String>,
    bit: Option<usize>,
    keep: Option<usize>,
    by: Option<u32>,
    chunk: Option<usize>,
    pause_ms: Option<u64>,
}

/// Every key names a field of `message` (one of the messages of that name: SetNewPrevHash is two):
/// a misspelt field would make a rule silently never match.
pub(crate) fn check_fields<'a>(
    message: &str,
    keys: impl Iterator<Item = &'a String>,
) -> Result<(), String> {
    let known: Vec<&str> = MESSAGE_TYPES
        .iter()
        .filter(|m| m.name == message)
        .flat_map(|m| m.fields.iter().map(|f| f.name))
        .collect();
    for key in keys {
        if !known.contains(&key.as_str()) {
            return Err(format!(
                "{message} has no field {key:?} (its fields: {})",
                known.join(", ")
            ));
        }
    }
    Ok(())
}

impl Scenario {
    /// Reads a scenario from TOML text.
    pub fn from_toml(text: &str) -> Result<Scenario, ScenarioError> {
        let file: File = toml::from_str(text)?;
        let mut rules = Vec::new();
        for (i, r) in file.rules.into_iter().enumerate() {
            let name = r.name.clone().unwrap_or_else(|| format!("rule {}", i + 1));
            let problem = |problem: String| ScenarioError::Rule {
                rule: name.clone(),
                problem,
            };
            if let Some(message) = &r.message {
                if !MESSAGE_TYPES.iter().any(|m| m.name == message) {
                    return Err(problem(format!("no message is named {message:?}")));
                }
                for (what, keys) in [("where", &r.fields), ("set", &r.set), ("add", &r.add)] {
                    check_fields(message, keys.keys())
                        .map_err(|e| problem(format!("{what}: {e}")))?;
                }
            } else if !r.fields.is_empty() {
                return Err(problem("`where` needs `message`".into()));
            }
            if r.nth == Some(0) {
                return Err(problem("nth counts from 1".into()));
            }
            let action = action(&r).map_err(problem)?;
            rules.push(Rule {
                name,
                from: r.from,
                message: r.message,
                extension: r.extension,
                msg_type: r.msg_type,
                fields: r.fields,
                nth: r.nth,
                times: r.times,
                after: r.after_ms.map(Duration::from_millis),
                after_rule: r.after_rule,
                action,
            });
        }
        for rule in &rules {
            if let Some(other) = &rule.after_rule {
                if !rules.iter().any(|r| &r.name == other) {
                    return Err(ScenarioError::Rule {
                        rule: rule.name.clone(),
                        problem: format!("after_rule names no rule: {other:?}"),
                    });
                }
            }
        }
        Ok(Scenario {
            name: file.name.unwrap_or_default(),
            description: file.description.unwrap_or_default(),
            rules,
        })
    }

    /// Several scenarios as one: their rules in order.
    pub fn merge(scenarios: Vec<Scenario>) -> Scenario {
        let name = scenarios
            .iter()
            .map(|s| s.name.as_str())
            .filter(|n| !n.is_empty())
            .collect::<Vec<_>>()
            .join(" + ");
        let several = scenarios.len() > 1;
        let rules = scenarios
            .into_iter()
            .enumerate()
            .flat_map(|(i, s)| {
                // Rules keep their names; with several files, each name says whose it is
                // (two files' "rule 1" must not be one rule for after_rule or the counts).
                let file = if s.name.is_empty() {
                    format!("scenario {}", i + 1)
                } else {
                    s.name.clone()
                };
                s.rules.into_iter().map(move |mut r| {
                    if several {
                        let prefixed = format!("{file}: {}", r.name);
                        r.after_rule = r.after_rule.map(|a| format!("{file}: {a}"));
                        r.name = prefixed;
                    }
                    r
                })
            })
            .collect();
        Scenario {
            name,
            description: String::new(),
            rules,
        }
    }
}

fn action(r: &RuleFile) -> Result<Action, String> {
    let needs = |what: &str| format!("action {:?} needs `{what}`", r.action);
    Ok(match r.action.as_str() {
        "pass" => Action::Pass,
        "drop" => Action::Drop,
        "delay" => Action::Delay(Duration::from_millis(r.ms.ok_or_else(|| needs("ms"))?)),
        "duplicate" => Action::Duplicate(r.copies.unwrap_or(2).clamp(1, 1000)),
        "reorder" => Action::Reorder,
        "replace" => {
            if r.set.is_empty() && r.add.is_empty() {
                return Err(needs("set` or `add"));
            }
            if r.message.is_none() {
                return Err("action \"replace\" needs `message` (fields belong to a message)".into());
            }
            if let Some((k, _)) = r.add.iter().find(|(_, v)| !v.is_i64()) {
                return Err(format!("add: {k} must be a whole number"));
            }
            Action::Replace {
                set: r.set.clone(),
                add: r.add.clone(),
            }
        }
        "inject-before" | "inject-after" => {
            let inject = r.inject.clone().ok_or_else(|| needs("inject"))?;
            let message: Message<'static> = serde_json::from_value(Value::Object(inject))
                .map_err(|e| format!("inject: {e}"))?;
            let frame = to_frame_bytes(&message, &[]).map_err(|e| format!("inject: {e}"))?;
            if r.action == "inject-before" {
                Action::InjectBefore(frame)
            } else {
                Action::InjectAfter(frame)
            }
        }
        "corrupt" => Action::Corrupt(match r.corrupt.as_deref().ok_or_else(|| needs("corrupt"))? {
            "flip-bit" => Corruption::FlipBit(r.bit.unwrap_or(0)),
            "truncate" => Corruption::Truncate(r.keep.unwrap_or(0)),
            "lie-length" => Corruption::LieLength(r.by.unwrap_or(1).max(1)),
            "channel-bit" => Corruption::ChannelBit,
            "break-mac" => Corruption::BreakMac,
            other => {
                return Err(format!(
                    "corrupt {other:?}: one of flip-bit, truncate, lie-length, channel-bit, break-mac"
                ))
            }
        }),
        "split" => Action::Split {
            chunk: r.chunk.unwrap_or(1).max(1),
            pause: Duration::from_millis(r.pause_ms.unwrap_or(0)),
        },
        "trickle" => Action::Split {
            chunk: r.chunk.unwrap_or(1).max(1),
            pause: Duration::from_millis(r.pause_ms.unwrap_or(100)),
        },
        "close" => Action::Close,
        "reset" => Action::Reset,
        other => {
            return Err(format!(
                "unknown action {other:?}: one of pass, drop, delay, duplicate, reorder, replace, inject-before, inject-after, corrupt, split, trickle, close, reset"
            ))
        }
    })
}
