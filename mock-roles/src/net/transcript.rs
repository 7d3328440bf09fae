//! The transcript of a conversation: every handshake act and every frame, sent or received, with its
//! time and its strict decoding (or the decode error). One type for every source: the probe's and the
//! mock roles' connections now, the man-in-the-middle proxy and pcap files later. The passive conformance
//! rules read it, and verdicts carry it as evidence.

use std::time::Duration;

use serde_json::{json, Value};
use sv2_codec::{decode_frame, DecodeError, Decoded, Frame, FrameError};

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

/// Which way a frame went, seen from the side that records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// This side sent it.
    Sent,
    /// This side received it.
    Received,
}

impl Direction {
    /// "sent" or "received".
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Sent => "sent",
            Direction::Received => "received",
        }
    }
}

/// One event of a conversation.
#[derive(Debug, Clone)]
pub enum Event {
    /// A Noise handshake act (64 or 234 bytes), as on the wire.
    Handshake {
        direction: Direction,
        act: u8,
        bytes: Vec<u8>,
    },
    /// A plain SV2 frame (after decryption, if encrypted) and what it decoded to.
    Frame {
        direction: Direction,
        /// The plain frame: header and payload.
        bytes: Vec<u8>,
        /// The strict decoding of the frame.
        decoded: Result<Box<Decoded<'static>>, FrameProblem>,
    },
    /// Something that is not a frame: a timeout, a close, a handshake failure.
    Note { text: String },
}

/// An event and when it happened (since the transcript began).
#[derive(Debug, Clone)]
pub struct Entry {
    /// Time since the transcript began.
    pub at: Duration,
    /// What happened.
    pub event: Event,
}

/// A whole conversation.
#[derive(Debug, Clone, Default)]
pub struct Transcript {
    /// Events in order.
    pub entries: Vec<Entry>,
}

impl Transcript {
    /// Records a plain frame, decoding it strictly.
    pub fn frame(&mut self, at: Duration, direction: Direction, bytes: &[u8]) {
        let decoded = match Frame::parse(bytes) {
            Ok((frame, _)) => decode_frame(&frame)
                .map(|d| Box::new(d.into_static()))
                .map_err(FrameProblem::Decode),
            Err(e) => Err(FrameProblem::Frame(e)),
        };
        self.entries.push(Entry {
            at,
            event: Event::Frame {
                direction,
                bytes: bytes.to_vec(),
                decoded,
            },
        });
    }

    /// Records a handshake act.
    pub fn handshake(&mut self, at: Duration, direction: Direction, act: u8, bytes: &[u8]) {
        self.entries.push(Entry {
            at,
            event: Event::Handshake {
                direction,
                act,
                bytes: bytes.to_vec(),
            },
        });
    }

    /// Records a note.
    pub fn note(&mut self, at: Duration, text: impl Into<String>) {
        self.entries.push(Entry {
            at,
            event: Event::Note { text: text.into() },
        });
    }

    /// The decoded messages of one direction, in order (frames that failed to decode are skipped).
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

    /// Reads back what [`Transcript::to_json`] wrote (or the same shape from another tool: an array of
    /// `{"at_ms", "kind": "handshake"|"frame"|"note", "direction": "sent"|"received", "bytes"|"frame"
    /// (hex), "act", "text"}`). Frames are decoded again here; a `message` field is ignored.
    pub fn from_json(value: &Value) -> Result<Transcript, String> {
        let events = value
            .as_array()
            .ok_or("a transcript is a JSON array of events")?;
        let mut transcript = Transcript::default();
        for (i, e) in events.iter().enumerate() {
            let at_ms = e.get("at_ms").and_then(Value::as_f64).unwrap_or(0.0);
            let at = Duration::from_secs_f64((at_ms / 1000.0).clamp(0.0, 1e9));
            let direction = || match e.get("direction").and_then(Value::as_str) {
                Some("sent") => Ok(Direction::Sent),
                Some("received") => Ok(Direction::Received),
                other => Err(format!(
                    "event {i}: direction {other:?} is not \"sent\" or \"received\""
                )),
            };
            let hex_field = |name: &str| {
                let text = e
                    .get(name)
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("event {i}: no {name} hex"))?;
                hex::decode(text).map_err(|err| format!("event {i}: {name}: {err}"))
            };
            match e.get("kind").and_then(Value::as_str) {
                Some("frame") => transcript.frame(at, direction()?, &hex_field("frame")?),
                Some("handshake") => {
                    let act = e.get("act").and_then(Value::as_u64).unwrap_or(0).min(2) as u8;
                    transcript.handshake(at, direction()?, act, &hex_field("bytes")?)
                }
                Some("note") => transcript.note(
                    at,
                    e.get("text").and_then(Value::as_str).unwrap_or_default(),
                ),
                other => return Err(format!("event {i}: unknown kind {other:?}")),
            }
        }
        Ok(transcript)
    }

    /// The transcript as JSON: one object per event with `at_ms`, `kind` and its details (frames as hex
    /// and as the codec's JSON).
    pub fn to_json(&self) -> Value {
        let events: Vec<Value> = self
            .entries
            .iter()
            .map(|e| {
                let at_ms = e.at.as_secs_f64() * 1000.0;
                match &e.event {
                    Event::Handshake {
                        direction,
                        act,
                        bytes,
                    } => json!({"at_ms": at_ms, "kind": "handshake", "direction": direction.as_str(), "act": act, "bytes": hex::encode(bytes)}),
                    Event::Frame {
                        direction,
                        bytes,
                        decoded,
                    } => {
                        let decoded = match decoded {
                            Ok(d) => serde_json::to_value(&d.message).unwrap_or(Value::Null),
                            Err(err) => json!({"error": err.to_string()}),
                        };
                        json!({"at_ms": at_ms, "kind": "frame", "direction": direction.as_str(), "frame": hex::encode(bytes), "message": decoded})
                    }
                    Event::Note { text } => json!({"at_ms": at_ms, "kind": "note", "text": text}),
                }
            })
            .collect();
        Value::Array(events)
    }
}
