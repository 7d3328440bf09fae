//! The sans-IO heart of a scenario: given each frame that crosses (who sent it, its plain bytes, the
//! time since the connection began), what to send on, when, and how. One engine per connection (its
//! counters and held frames are the connection's). The relay, the mock roles and tests drive it.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sv2_codec::frame::HEADER_LEN;
use sv2_codec::{decode_frame, to_frame_bytes, Frame, Message};
use sv2_wire::WireShape;

use crate::model::{Action, Corruption, From, Rule, Scenario};

/// The most bytes `duplicate` makes of one frame (a huge frame gets fewer copies).
pub const MAX_DUPLICATED: usize = 64 << 20;

/// What to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send `frame` (plain, header and payload) on to the other side after `delay`, shaped on the wire.
    Send {
        frame: Vec<u8>,
        delay: Duration,
        shape: WireShape,
    },
    /// Close both connections (the one the frame was going to first).
    Close,
    /// Reset the connection the frame was going to, close the other.
    Reset,
}

/// What the engine made of one frame.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    pub steps: Vec<Step>,
    /// The rule that acted, and what it did, for the log.
    pub fired: Option<(String, String)>,
}

/// A scenario applied to one connection.
#[derive(Debug, Clone)]
pub struct Engine {
    scenario: Arc<Scenario>,
    /// Per rule: frames it matched, and times it fired.
    matched: Vec<u64>,
    fired: Vec<u64>,
    /// Per direction [from client, from server]: a frame held by `reorder`.
    held: [Option<Vec<u8>>; 2],
}

impl Engine {
    pub fn new(scenario: Arc<Scenario>) -> Self {
        let n = scenario.rules.len();
        Engine {
            scenario,
            matched: vec![0; n],
            fired: vec![0; n],
            held: [None, None],
        }
    }

    /// A frame from `from`, `elapsed` after the connection began.
    pub fn on_frame(&mut self, from: From, frame: &[u8], elapsed: Duration) -> Applied {
        let side = usize::from(from == From::Server);
        let mut decoded: Option<Option<(String, Value)>> = None;
        let mut applied = Applied::default();
        let mut acted = false;
        let mut held_now = false;
        for i in 0..self.scenario.rules.len() {
            let rule = &self.scenario.rules[i];
            if !self.eligible(i, from, elapsed) {
                continue;
            }
            if let Some(extension) = rule.extension {
                let header = frame
                    .first_chunk::<2>()
                    .map(|h| u16::from_le_bytes(*h) & 0x7fff);
                if header != Some(extension) {
                    continue;
                }
            }
            if let Some(msg_type) = rule.msg_type {
                if frame.get(2) != Some(&msg_type) {
                    continue;
                }
            }
            if rule.message.is_some() {
                let found = decoded.get_or_insert_with(|| describe(frame));
                if !matches(rule, found.as_ref()) {
                    continue;
                }
            }
            self.matched[i] += 1;
            if rule.nth.is_some_and(|n| n != self.matched[i]) {
                continue;
            }
            self.fired[i] += 1;
            let (steps, what) = act(rule, frame, decoded.as_ref().and_then(|d| d.as_ref()));
            applied.fired = Some((rule.name.clone(), what));
            if rule.action == Action::Reorder {
                // Held until the next frame this way; one held at a time (an older one goes now).
                if let Some(old) = self.held[side].replace(frame.to_vec()) {
                    applied.steps.push(send(old));
                }
                held_now = true;
            } else {
                applied.steps.extend(steps);
            }
            acted = true;
            break;
        }
        if !acted {
            applied.steps.push(send(frame.to_vec()));
        }
        if !held_now {
            if let Some(held) = self.held[side].take() {
                applied.steps.push(send(held));
            }
        }
        applied
    }

    /// Whether rule `i` may look at a frame now (direction, time, order, count).
    fn eligible(&self, i: usize, from: From, elapsed: Duration) -> bool {
        let rule = &self.scenario.rules[i];
        if rule.from.is_some_and(|f| f != from) {
            return false;
        }
        if rule.after.is_some_and(|after| elapsed < after) {
            return false;
        }
        let limit = rule.times.or(rule.nth.map(|_| 1));
        if limit.is_some_and(|t| self.fired[i] >= t) {
            return false;
        }
        if let Some(other) = &rule.after_rule {
            let fired = self
                .scenario
                .rules
                .iter()
                .position(|r| &r.name == other)
                .is_some_and(|j| self.fired[j] > 0);
            if !fired {
                return false;
            }
        }
        true
    }

    /// How many times each rule fired, by name.
    pub fn fired(&self) -> Vec<(String, u64)> {
        self.scenario
            .rules
            .iter()
            .zip(&self.fired)
            .map(|(r, n)| (r.name.clone(), *n))
            .collect()
    }
}

fn send(frame: Vec<u8>) -> Step {
    Step::Send {
        frame,
        delay: Duration::ZERO,
        shape: WireShape::default(),
    }
}

/// The frame's message name and its codec JSON, when it decodes strictly.
pub(crate) fn describe(frame: &[u8]) -> Option<(String, Value)> {
    let (parsed, _) = Frame::parse(frame).ok()?;
    let decoded = decode_frame(&parsed).ok()?;
    let value = serde_json::to_value(&decoded.message).ok()?;
    Some((decoded.message.name().to_owned(), value))
}

fn matches(rule: &Rule, decoded: Option<&(String, Value)>) -> bool {
    let Some((name, value)) = decoded else {
        return false;
    };
    rule.message.as_deref() == Some(name.as_str()) && fields_match(value, &rule.fields)
}

/// Whether every field of `fields` has that value in `value` (a message's codec JSON).
pub(crate) fn fields_match(value: &Value, fields: &serde_json::Map<String, Value>) -> bool {
    fields
        .iter()
        .all(|(key, wanted)| value.get(key).is_some_and(|v| same(v, wanted)))
}

/// Field equality as a user writes it: whole numbers exactly, other numbers by value, hex strings
/// in either case (other strings exactly).
fn same(value: &Value, wanted: &Value) -> bool {
    match (value, wanted) {
        (Value::String(a), Value::String(b)) => {
            let hex = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_hexdigit());
            if hex(a) && hex(b) {
                a.eq_ignore_ascii_case(b)
            } else {
                a == b
            }
        }
        (Value::Number(a), Value::Number(b)) => match (a.as_i128(), b.as_i128()) {
            (Some(x), Some(y)) => x == y,
            _ => a.as_f64() == b.as_f64(),
        },
        _ => value == wanted,
    }
}

/// The steps of `rule` on `frame`, and a few words on what was done.
fn act(rule: &Rule, frame: &[u8], decoded: Option<&(String, Value)>) -> (Vec<Step>, String) {
    let name = decoded.map_or("frame", |(n, _)| n.as_str());
    match &rule.action {
        Action::Pass => (vec![send(frame.to_vec())], format!("passed {name}")),
        Action::Drop => (Vec::new(), format!("dropped {name}")),
        Action::Delay(d) => (
            vec![Step::Send {
                frame: frame.to_vec(),
                delay: *d,
                shape: WireShape::default(),
            }],
            format!("delayed {name} by {d:?}"),
        ),
        Action::Duplicate(n) => {
            // At most MAX_DUPLICATED bytes of copies, whatever the frame's size.
            let n = (*n).min((MAX_DUPLICATED / frame.len().max(1)).max(1) as u32);
            (
                (0..n).map(|_| send(frame.to_vec())).collect(),
                format!("sent {name} {n} times"),
            )
        }
        Action::Reorder => (Vec::new(), format!("held {name} behind the next frame")),
        Action::Replace { set, add } => match replace(frame, decoded, set, add) {
            Ok(new) => (
                vec![send(new)],
                format!("replaced fields of {name}: {}", describe_change(set, add)),
            ),
            Err(e) => (
                vec![send(frame.to_vec())],
                format!("could not replace fields of {name} ({e}): sent unchanged"),
            ),
        },
        Action::InjectBefore(extra) => (
            vec![send(extra.clone()), send(frame.to_vec())],
            format!("injected a frame before {name}"),
        ),
        Action::InjectAfter(extra) => (
            vec![send(frame.to_vec()), send(extra.clone())],
            format!("injected a frame after {name}"),
        ),
        Action::Corrupt(c) => {
            let (frame, shape, what) = corrupt(frame, c);
            (
                vec![Step::Send {
                    frame,
                    delay: Duration::ZERO,
                    shape,
                }],
                format!("{what} ({name})"),
            )
        }
        Action::Split { chunk, pause } => (
            vec![Step::Send {
                frame: frame.to_vec(),
                delay: Duration::ZERO,
                shape: WireShape {
                    chunk: Some(*chunk),
                    pause: *pause,
                    ..WireShape::default()
                },
            }],
            format!("wrote {name} {chunk} byte(s) at a time, {pause:?} apart"),
        ),
        Action::Close => (vec![Step::Close], format!("closed on {name}")),
        Action::Reset => (vec![Step::Reset], format!("reset on {name}")),
    }
}

/// `set` and `add` in a few words, for the log.
fn describe_change(
    set: &serde_json::Map<String, Value>,
    add: &serde_json::Map<String, Value>,
) -> String {
    let mut parts: Vec<String> = set.iter().map(|(k, v)| format!("{k} = {v}")).collect();
    parts.extend(add.iter().map(|(k, v)| format!("{k} += {v}")));
    parts.join(", ")
}

/// The frame with `set`'s fields replaced and `add`'s moved, encoded again (TLVs after the fields
/// are kept).
fn replace(
    frame: &[u8],
    decoded: Option<&(String, Value)>,
    set: &serde_json::Map<String, Value>,
    add: &serde_json::Map<String, Value>,
) -> Result<Vec<u8>, String> {
    let (_, value) = decoded.ok_or("the frame does not decode")?;
    let mut value = value.clone();
    let object = value.as_object_mut().ok_or("not an object")?;
    for (k, v) in set {
        if !object.contains_key(k) {
            return Err(format!("no field {k:?}"));
        }
        object.insert(k.clone(), v.clone());
    }
    for (k, by) in add {
        let old = object
            .get(k)
            .and_then(Value::as_i64)
            .ok_or_else(|| format!("no whole-number field {k:?}"))?;
        let by = by.as_i64().unwrap_or(0);
        let new = old
            .checked_add(by)
            .ok_or_else(|| format!("{k} + {by} overflows"))?;
        object.insert(k.clone(), Value::from(new));
    }
    let message: Message<'static> = serde_json::from_value(value).map_err(|e| e.to_string())?;
    let (parsed, _) = Frame::parse(frame).map_err(|e| e.to_string())?;
    let tlvs = decode_frame(&parsed).map(|d| d.tlvs).unwrap_or_default();
    to_frame_bytes(&message, &tlvs).map_err(|e| e.to_string())
}

/// A frame broken as `corruption` says.
fn corrupt(frame: &[u8], corruption: &Corruption) -> (Vec<u8>, WireShape, String) {
    let mut out = frame.to_vec();
    let mut shape = WireShape::default();
    let what = match corruption {
        Corruption::FlipBit(bit) => {
            if out.is_empty() {
                "nothing to flip".to_string()
            } else {
                let bit = bit % (out.len() * 8);
                out[bit / 8] ^= 1 << (bit % 8);
                format!("flipped bit {bit}")
            }
        }
        Corruption::Truncate(keep) => {
            if out.len() < HEADER_LEN {
                "too short to truncate".to_string()
            } else {
                let keep = (*keep).min(out.len() - HEADER_LEN);
                out.truncate(HEADER_LEN + keep);
                set_length(&mut out, keep as u32);
                format!("truncated the payload to {keep} byte(s)")
            }
        }
        Corruption::LieLength(by) => {
            if out.len() < HEADER_LEN {
                "too short to lie about".to_string()
            } else {
                let real = (out.len() - HEADER_LEN) as u32;
                let lie = real.saturating_add(*by).min(0xff_ffff);
                set_length(&mut out, lie);
                format!("msg_length says {lie}, the payload has {real}")
            }
        }
        Corruption::ChannelBit => {
            if out.len() < 2 {
                "too short for a header".to_string()
            } else {
                out[1] ^= 0x80;
                "channel_msg bit flipped".to_string()
            }
        }
        Corruption::BreakMac => {
            // The last byte on the wire: a MAC under Noise, the payload's last byte in plaintext.
            shape.flip_last_byte = true;
            "broke the MAC".to_string()
        }
    };
    (out, shape, what)
}

fn set_length(frame: &mut [u8], length: u32) {
    frame[3..6].copy_from_slice(&length.to_le_bytes()[..3]);
}
