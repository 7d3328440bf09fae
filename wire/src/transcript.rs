//! The transcript of a conversation: ONE type for every source (a live connection of a mock role, the
//! probe or the conformance suite; later a capture and both legs of a proxy). Each entry is a handshake
//! act, an SV2 frame (its bytes on the wire, the plain frame, and its strict decoding or the error), an
//! SV1 line (parsed, or the error) or a note; each has an absolute time and, but for notes, a direction
//! named by role (client to server, server to client). The transcript names both endpoints.
//!
//! Size: a transcript keeps at most [`Retention::max_entries`] entries and [`Retention::max_bytes`]
//! bytes of them; past either limit the oldest entries go first and are counted in
//! [`Transcript::dropped`]. This is the one retention policy of the toolkit; recorders choose only the
//! two numbers ([`Retention::DEFAULT`] unless they say otherwise).
//!
//! JSON ([`Transcript::to_json`], [`Transcript::from_json`]):
//!
//! ```json
//! {"endpoints": {"client": "127.0.0.1:50000", "server": "127.0.0.1:34254"}, "dropped": 0,
//!  "entries": [
//!   {"at_ns": 1765091234000000000, "kind": "handshake", "direction": "client-to-server", "act": 1, "bytes": "<hex>"},
//!   {"at_ns": ..., "kind": "frame", "direction": "server-to-client", "frame": "<plain hex>",
//!    "wire": "<ciphertext hex, encrypted connections only>", "message": {..codec JSON..}},
//!   {"at_ns": ..., "kind": "sv1", "direction": "client-to-server", "line": "{\"id\":1,...}"},
//!   {"at_ns": ..., "kind": "note", "text": "..."}]}
//! ```
//!
//! Reading back decodes the bytes again (`message` and `error` are for people and other tools, and
//! ignored on input), so a transcript and its JSON round-trip exactly. The earlier form, a bare array of
//! events with `at_ms` and `direction` `sent`/`received`, is still read ([`Transcript::from_legacy_json`]).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};
use sv2_codec::sv1::json::{Sv1Error, Sv1Message};
use sv2_codec::{decode_frame, DecodeError, Decoded, Frame, FrameError};

/// Which way bytes went, named by role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the client (the side that connected: miner, proxy upstream leg, TP client) to the server.
    ClientToServer,
    /// From the server to the client.
    ServerToClient,
}

impl Direction {
    /// `client-to-server` or `server-to-client`, as in the JSON form.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::ClientToServer => "client-to-server",
            Direction::ServerToClient => "server-to-client",
        }
    }

    /// The other direction.
    pub fn reverse(self) -> Direction {
        match self {
            Direction::ClientToServer => Direction::ServerToClient,
            Direction::ServerToClient => Direction::ClientToServer,
        }
    }

    fn parse(text: &str) -> Option<Direction> {
        match text {
            "client-to-server" => Some(Direction::ClientToServer),
            "server-to-client" => Some(Direction::ServerToClient),
            _ => None,
        }
    }
}

/// The end of a connection a recorder sits at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Client,
    Server,
}

impl Side {
    /// The direction of what this side sends.
    pub fn sending(self) -> Direction {
        match self {
            Side::Client => Direction::ClientToServer,
            Side::Server => Direction::ServerToClient,
        }
    }

    /// The direction of what this side receives.
    pub fn receiving(self) -> Direction {
        self.sending().reverse()
    }
}

/// Both ends of the conversation, when known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Endpoints {
    pub client: Option<SocketAddr>,
    pub server: Option<SocketAddr>,
}

impl Endpoints {
    /// The endpoints of a connection seen from `side`, given its local and peer addresses.
    pub fn seen_from(side: Side, local: Option<SocketAddr>, peer: Option<SocketAddr>) -> Self {
        match side {
            Side::Client => Endpoints {
                client: local,
                server: peer,
            },
            Side::Server => Endpoints {
                client: peer,
                server: local,
            },
        }
    }
}

/// An absolute time: nanoseconds since the Unix epoch (from a clock, or from a capture).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The system clock now.
    pub fn now() -> Self {
        Self::from_system(SystemTime::now())
    }

    /// A system time (before the epoch counts as 0; after year 2554, as the last representable time).
    pub fn from_system(time: SystemTime) -> Self {
        let nanos = time
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        Timestamp(nanos)
    }

    /// Seconds and nanoseconds, as a capture's packet header gives them.
    pub fn from_parts(secs: u64, nanos: u32) -> Self {
        Timestamp(
            secs.saturating_mul(1_000_000_000)
                .saturating_add(u64::from(nanos)),
        )
    }

    /// The time elapsed from `earlier` to this (zero if `earlier` is later).
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

/// Why a recorded frame has no decoding.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FrameProblem {
    /// The bytes are not one whole frame.
    #[error("{0}")]
    Frame(FrameError),
    /// The frame's payload does not decode strictly.
    #[error("{0}")]
    Decode(DecodeError),
}

/// The strict decoding of a plain frame (header and payload), or why there is none.
pub fn decode_plain(plain: &[u8]) -> Result<Box<Decoded<'static>>, FrameProblem> {
    // Bytes past the frame the header describes are not part of it (a scripted peer may send a
    // header whose msg_length lies; the peer reads the rest as the next frame).
    match Frame::parse(plain) {
        Ok((frame, _)) => decode_frame(&frame)
            .map(|d| Box::new(d.into_static()))
            .map_err(FrameProblem::Decode),
        Err(e) => Err(FrameProblem::Frame(e)),
    }
}

/// The parse of an SV1 line (without its newline).
pub fn parse_sv1(line: &[u8]) -> Result<Sv1Message, Sv1Error> {
    let text = std::str::from_utf8(line).map_err(|e| Sv1Error::Json(format!("not UTF-8: {e}")))?;
    Sv1Message::parse(text)
}

/// One event of a conversation.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A Noise handshake act as on the wire: act 1 (64 bytes, client to server) or act 2 (234 bytes,
    /// server to client); a short act is recorded with the bytes that came.
    Handshake {
        direction: Direction,
        act: u8,
        bytes: Vec<u8>,
    },
    /// An SV2 frame.
    Frame {
        direction: Direction,
        /// The plain frame: header and payload (decrypted, on an encrypted connection).
        plain: Vec<u8>,
        /// On an encrypted connection, the frame's bytes on the wire (encrypted header, payload
        /// blocks and their MACs), when the recorder kept them; `None` on a plain connection, where
        /// the wire bytes are `plain`.
        wire: Option<Vec<u8>>,
        /// The strict decoding of `plain`.
        decoded: Result<Box<Decoded<'static>>, FrameProblem>,
    },
    /// A Stratum V1 line (without its line ending) and its parse.
    Sv1 {
        direction: Direction,
        line: Vec<u8>,
        parsed: Result<Sv1Message, Sv1Error>,
    },
    /// Something that is not traffic: a timeout, a close, a handshake failure, bytes that could not
    /// be read as the protocol.
    Note { text: String },
    /// Encrypted bytes that could not be decrypted (no key, or the stream was lost): only their size
    /// is known. A capture records one per TCP segment, since frame boundaries are encrypted too.
    Encrypted { direction: Direction, len: u64 },
}

impl Event {
    /// The event's direction (`None` for a note).
    pub fn direction(&self) -> Option<Direction> {
        match self {
            Event::Handshake { direction, .. }
            | Event::Frame { direction, .. }
            | Event::Sv1 { direction, .. }
            | Event::Encrypted { direction, .. } => Some(*direction),
            Event::Note { .. } => None,
        }
    }

    /// The bytes this event holds (what retention counts).
    fn size(&self) -> usize {
        match self {
            Event::Handshake { bytes, .. } => bytes.len(),
            Event::Frame { plain, wire, .. } => plain.len() + wire.as_ref().map_or(0, Vec::len),
            Event::Sv1 { line, .. } => line.len(),
            Event::Note { text } => text.len(),
            Event::Encrypted { .. } => 8,
        }
    }
}

/// An event and when it happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub at: Timestamp,
    pub event: Event,
}

/// How much of a conversation a transcript keeps (the oldest entries go first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub max_entries: usize,
    pub max_bytes: usize,
}

impl Retention {
    /// 100,000 entries and 64 MiB: a conformance check's or a probe's whole conversation, and the
    /// last stretch of a long mining session.
    pub const DEFAULT: Retention = Retention {
        max_entries: 100_000,
        max_bytes: 64 << 20,
    };

    /// For recorders nobody reads back in full (a mock role's served connections): the last 256
    /// entries, 1 MiB.
    pub const RECENT: Retention = Retention {
        max_entries: 256,
        max_bytes: 1 << 20,
    };
}

impl Default for Retention {
    fn default() -> Self {
        Retention::DEFAULT
    }
}

/// A whole conversation (or its latest part, see [`Retention`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    pub endpoints: Endpoints,
    entries: VecDeque<Entry>,
    retention: Retention,
    bytes: usize,
    dropped: u64,
}

impl Default for Transcript {
    fn default() -> Self {
        Transcript::new(Retention::DEFAULT)
    }
}

impl Transcript {
    /// An empty transcript keeping what `retention` allows.
    pub fn new(retention: Retention) -> Self {
        Transcript {
            endpoints: Endpoints::default(),
            entries: VecDeque::new(),
            retention,
            bytes: 0,
            dropped: 0,
        }
    }

    /// The entries kept, oldest first.
    pub fn entries(&self) -> &VecDeque<Entry> {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many entries were dropped to stay within the retention limits.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    pub fn retention(&self) -> Retention {
        self.retention
    }

    /// Changes the retention limits (applied at once).
    pub fn set_retention(&mut self, retention: Retention) {
        self.retention = retention;
        self.enforce();
    }

    /// Adds an entry, dropping the oldest ones beyond the retention limits.
    pub fn push(&mut self, at: Timestamp, event: Event) {
        self.bytes += event.size();
        self.entries.push_back(Entry { at, event });
        self.enforce();
    }

    fn enforce(&mut self) {
        while self.entries.len() > self.retention.max_entries.max(1)
            || (self.bytes > self.retention.max_bytes && self.entries.len() > 1)
        {
            if let Some(old) = self.entries.pop_front() {
                self.bytes -= old.event.size();
                self.dropped += 1;
            }
        }
    }

    /// Moves every entry of `other` to the end of this one (its drops are counted here). `other`'s
    /// endpoints, when known, become this one's: a later connection (a followed Reconnect) names them.
    pub fn append(&mut self, other: &mut Transcript) {
        if other.endpoints != Endpoints::default() {
            self.endpoints = other.endpoints;
        }
        self.dropped += other.dropped;
        other.dropped = 0;
        other.bytes = 0;
        for entry in other.entries.drain(..) {
            self.push(entry.at, entry.event);
        }
    }

    /// Forgets every entry (they count as dropped).
    pub fn clear(&mut self) {
        self.dropped += self.entries.len() as u64;
        self.entries.clear();
        self.bytes = 0;
    }

    /// Records a plain frame and its strict decoding.
    pub fn frame(
        &mut self,
        at: Timestamp,
        direction: Direction,
        plain: &[u8],
        wire: Option<&[u8]>,
    ) {
        self.frame_owned(at, direction, plain.to_vec(), wire.map(<[u8]>::to_vec));
    }

    /// As [`Transcript::frame`], taking the bytes. The entry is the newest, and the newest entry is
    /// always kept, so a caller can read the decoding back from [`Transcript::entries`].
    pub fn frame_owned(
        &mut self,
        at: Timestamp,
        direction: Direction,
        plain: Vec<u8>,
        wire: Option<Vec<u8>>,
    ) {
        let decoded = decode_plain(&plain);
        self.push(
            at,
            Event::Frame {
                direction,
                plain,
                wire,
                decoded,
            },
        );
    }

    /// Records a handshake act.
    pub fn handshake(&mut self, at: Timestamp, direction: Direction, act: u8, bytes: &[u8]) {
        self.push(
            at,
            Event::Handshake {
                direction,
                act,
                bytes: bytes.to_vec(),
            },
        );
    }

    /// Records an SV1 line (without its line ending) and its parse.
    pub fn sv1(&mut self, at: Timestamp, direction: Direction, line: &[u8]) {
        self.push(
            at,
            Event::Sv1 {
                direction,
                line: line.to_vec(),
                parsed: parse_sv1(line),
            },
        );
    }

    /// The roles were named the wrong way round (a capture that began mid-connection named the
    /// first sender the client): the endpoints and every entry's direction are swapped.
    pub fn swap_roles(&mut self) {
        let Endpoints { client, server } = self.endpoints;
        self.endpoints = Endpoints {
            client: server,
            server: client,
        };
        for entry in &mut self.entries {
            match &mut entry.event {
                Event::Handshake { direction, .. }
                | Event::Frame { direction, .. }
                | Event::Sv1 { direction, .. }
                | Event::Encrypted { direction, .. } => *direction = direction.reverse(),
                Event::Note { .. } => {}
            }
        }
    }

    /// Records a note.
    pub fn note(&mut self, at: Timestamp, text: impl Into<String>) {
        self.push(at, Event::Note { text: text.into() });
    }

    /// The decoded SV2 messages of one direction, in order (frames that failed to decode are skipped).
    pub fn messages(&self, direction: Direction) -> impl Iterator<Item = &Decoded<'static>> {
        self.entries.iter().filter_map(move |e| match &e.event {
            Event::Frame {
                direction: d,
                decoded: Ok(decoded),
                ..
            } if *d == direction => Some(&**decoded),
            _ => None,
        })
    }

    /// The SV1 lines, in order, with their direction (invalid UTF-8 replaced).
    pub fn sv1_lines(&self) -> impl Iterator<Item = (Direction, String)> + '_ {
        self.entries.iter().filter_map(|e| match &e.event {
            Event::Sv1 {
                direction, line, ..
            } => Some((*direction, String::from_utf8_lossy(line).into_owned())),
            _ => None,
        })
    }

    /// The time of the first entry kept.
    pub fn start(&self) -> Option<Timestamp> {
        self.entries.front().map(|e| e.at)
    }

    /// The transcript as JSON (the form in the module's documentation).
    pub fn to_json(&self) -> Value {
        let address = |a: Option<SocketAddr>| a.map_or(Value::Null, |a| json!(a.to_string()));
        let entries: Vec<Value> = self.entries.iter().map(entry_json).collect();
        json!({
            "endpoints": {"client": address(self.endpoints.client), "server": address(self.endpoints.server)},
            "dropped": self.dropped,
            "entries": entries,
        })
    }

    /// Reads back what [`Transcript::to_json`] wrote (the legacy bare-array form is
    /// [`Transcript::from_legacy_json`]'s).
    pub fn from_json(value: &Value) -> Result<Transcript, String> {
        let object = value
            .as_object()
            .ok_or("a transcript is a JSON object with entries")?;
        let entries = object
            .get("entries")
            .and_then(Value::as_array)
            .ok_or("a transcript has an entries array")?;
        let mut transcript = read_entries(entries, |i, e| {
            let at = Timestamp(e.get("at_ns").and_then(Value::as_u64).unwrap_or(0));
            let direction = || {
                let text = e.get("direction").and_then(Value::as_str).unwrap_or("");
                Direction::parse(text).ok_or_else(|| {
                    format!(
                        "entry {i}: direction {text:?} is not client-to-server or server-to-client"
                    )
                })
            };
            Ok((at, read_event(e, i, direction)?))
        })?;
        if let Some(endpoints) = object.get("endpoints") {
            let address = |name: &str| -> Result<Option<SocketAddr>, String> {
                match endpoints.get(name) {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::String(s)) => s
                        .parse()
                        .map(Some)
                        .map_err(|e| format!("endpoints.{name} {s:?}: {e}")),
                    Some(other) => Err(format!("endpoints.{name}: {other} is not an address")),
                }
            };
            transcript.endpoints = Endpoints {
                client: address("client")?,
                server: address("server")?,
            };
        }
        transcript.dropped = object.get("dropped").and_then(Value::as_u64).unwrap_or(0);
        Ok(transcript)
    }

    /// Reads the earlier JSON form: an array of `{"at_ms", "kind": "handshake"|"frame"|"note",
    /// "direction": "sent"|"received", "bytes"|"frame" (hex), "act", "text"}`, recorded at `recorder`
    /// (its times, relative to the recording's start, are read as times since the epoch).
    pub fn from_legacy_json(value: &Value, recorder: Side) -> Result<Transcript, String> {
        let events = value
            .as_array()
            .ok_or("a legacy transcript is a JSON array of events")?;
        read_entries(events, |i, e| {
            let at_ms = e.get("at_ms").and_then(Value::as_f64).unwrap_or(0.0);
            let at = Timestamp((at_ms * 1e6).clamp(0.0, 1e18) as u64);
            let direction = || match e.get("direction").and_then(Value::as_str) {
                Some("sent") => Ok(recorder.sending()),
                Some("received") => Ok(recorder.receiving()),
                other => Err(format!(
                    "event {i}: direction {other:?} is not \"sent\" or \"received\""
                )),
            };
            Ok((at, read_event(e, i, direction)?))
        })
    }
}

/// A transcript of every entry `read` makes of `events`: all of them are kept (what was recorded is
/// not cut again); entries added later follow [`Retention::DEFAULT`].
fn read_entries(
    events: &[Value],
    read: impl Fn(usize, &Value) -> Result<(Timestamp, Event), String>,
) -> Result<Transcript, String> {
    let mut transcript = Transcript::new(Retention {
        max_entries: usize::MAX,
        max_bytes: usize::MAX,
    });
    for (i, e) in events.iter().enumerate() {
        let (at, event) = read(i, e)?;
        transcript.push(at, event);
    }
    transcript.retention = Retention::DEFAULT;
    Ok(transcript)
}

fn entry_json(e: &Entry) -> Value {
    let mut object = Map::new();
    object.insert("at_ns".into(), json!(e.at.0));
    let kind = match &e.event {
        Event::Handshake { .. } => "handshake",
        Event::Frame { .. } => "frame",
        Event::Sv1 { .. } => "sv1",
        Event::Note { .. } => "note",
        Event::Encrypted { .. } => "encrypted",
    };
    object.insert("kind".into(), json!(kind));
    if let Some(direction) = e.event.direction() {
        object.insert("direction".into(), json!(direction.as_str()));
    }
    match &e.event {
        Event::Handshake { act, bytes, .. } => {
            object.insert("act".into(), json!(act));
            object.insert("bytes".into(), json!(hex::encode(bytes)));
        }
        Event::Frame {
            plain,
            wire,
            decoded,
            ..
        } => {
            object.insert("frame".into(), json!(hex::encode(plain)));
            if let Some(wire) = wire {
                object.insert("wire".into(), json!(hex::encode(wire)));
            }
            match decoded {
                Ok(d) => {
                    let message = serde_json::to_value(&d.message).unwrap_or(Value::Null);
                    object.insert("message".into(), message);
                }
                Err(err) => {
                    object.insert("error".into(), json!(err.to_string()));
                }
            }
        }
        Event::Sv1 { line, parsed, .. } => {
            match std::str::from_utf8(line) {
                Ok(text) => object.insert("line".into(), json!(text)),
                Err(_) => object.insert("line_hex".into(), json!(hex::encode(line))),
            };
            if let Err(err) = parsed {
                object.insert("error".into(), json!(err.to_string()));
            }
        }
        Event::Note { text } => {
            object.insert("text".into(), json!(text));
        }
        Event::Encrypted { len, .. } => {
            object.insert("len".into(), json!(len));
        }
    }
    Value::Object(object)
}

fn read_event(
    e: &Value,
    i: usize,
    direction: impl Fn() -> Result<Direction, String>,
) -> Result<Event, String> {
    let hex_field = |name: &str| {
        let text = e
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("entry {i}: no {name} hex"))?;
        hex::decode(text).map_err(|err| format!("entry {i}: {name}: {err}"))
    };
    Ok(match e.get("kind").and_then(Value::as_str) {
        Some("frame") => {
            let plain = hex_field("frame")?;
            let wire = match e.get("wire") {
                None | Some(Value::Null) => None,
                Some(_) => Some(hex_field("wire")?),
            };
            Event::Frame {
                direction: direction()?,
                decoded: decode_plain(&plain),
                plain,
                wire,
            }
        }
        Some("handshake") => {
            let act = e.get("act").and_then(Value::as_u64).unwrap_or(0);
            Event::Handshake {
                direction: direction()?,
                act: u8::try_from(act).map_err(|_| format!("entry {i}: act {act}"))?,
                bytes: hex_field("bytes")?,
            }
        }
        Some("sv1") => {
            let line = match e.get("line").and_then(Value::as_str) {
                Some(text) => text.as_bytes().to_vec(),
                None => hex_field("line_hex")?,
            };
            Event::Sv1 {
                direction: direction()?,
                parsed: parse_sv1(&line),
                line,
            }
        }
        Some("encrypted") => Event::Encrypted {
            direction: direction()?,
            len: e
                .get("len")
                .and_then(Value::as_u64)
                .ok_or_else(|| format!("entry {i}: encrypted without len"))?,
        },
        Some("note") => Event::Note {
            text: e
                .get("text")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        },
        other => return Err(format!("entry {i}: unknown kind {other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_drops_the_oldest_and_counts_them() {
        let mut t = Transcript::new(Retention {
            max_entries: 3,
            max_bytes: 1000,
        });
        for i in 0..5u64 {
            t.note(Timestamp(i), format!("note {i}"));
        }
        assert_eq!(t.len(), 3);
        assert_eq!(t.dropped(), 2);
        assert_eq!(t.start(), Some(Timestamp(2)));
        // Bytes: one big entry pushes the others out, but the newest entry always stays.
        t.handshake(Timestamp(9), Direction::ClientToServer, 1, &[0; 2000]);
        assert_eq!(t.len(), 1);
        assert_eq!(t.dropped(), 5);
        let mut other = Transcript::default();
        other.note(Timestamp(10), "x");
        t.append(&mut other);
        assert!(other.is_empty());
        assert_eq!(t.len(), 1, "2000 + 1 bytes are over the limit");
        t.clear();
        assert!(t.is_empty());
        assert_eq!(t.dropped(), 7);
    }

    #[test]
    fn append_takes_the_newer_endpoints_when_known() {
        let first: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let second: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let mut run = Transcript::default();
        let mut session = Transcript::default();
        session.endpoints.server = Some(first);
        run.append(&mut session);
        assert_eq!(run.endpoints.server, Some(first));
        let mut unnamed = Transcript::default();
        run.append(&mut unnamed);
        assert_eq!(run.endpoints.server, Some(first));
        let mut reconnected = Transcript::default();
        reconnected.endpoints.server = Some(second);
        run.append(&mut reconnected);
        assert_eq!(run.endpoints.server, Some(second));
    }

    #[test]
    fn legacy_json_maps_sent_and_received_by_the_recorder() {
        let v: Value = serde_json::from_str(
            r#"[{"at_ms": 1.5, "kind": "frame", "direction": "sent", "frame": "000001030000"}]"#,
        )
        .unwrap();
        let server = Transcript::from_legacy_json(&v, Side::Server).unwrap();
        assert_eq!(
            server.entries()[0].event.direction(),
            Some(Direction::ServerToClient)
        );
        assert_eq!(server.entries()[0].at, Timestamp(1_500_000));
        assert!(
            Transcript::from_json(&v).is_err(),
            "an array is the legacy form"
        );
        let client = Transcript::from_legacy_json(&v, Side::Client).unwrap();
        assert_eq!(
            client.entries()[0].event.direction(),
            Some(Direction::ClientToServer)
        );
    }

    #[test]
    fn timestamps() {
        let t = Timestamp::from_parts(2, 5);
        assert_eq!(t, Timestamp(2_000_000_005));
        assert_eq!(t.since(Timestamp(5)), Duration::from_secs(2));
        assert_eq!(Timestamp(1).since(t), Duration::ZERO);
        assert!(Timestamp::now() > t);
    }
}
