//! The mutations: a valid message in, what to put on the wire out, chosen by a seeded generator so
//! that a case is the same every time. Sans-IO: bytes and durations only.
//!
//! Four families, as the issue lists them:
//! - field-aware, from the codec's field table ([`super::spans`]): boundary values of every integer,
//!   NaN, infinite and negative floats, BOOL bytes other than 0/1, lengths and counts that lie
//!   (past the payload, past the type's bound), OPTION prefixes other than 0/1, empty and maximal
//!   byte fields, invalid UTF-8 in text, fields cut short, TLVs appended (unknown, and an
//!   over-long user_identity);
//! - frame-level: msg_length that lies (short, long, huge), the channel_msg bit the wrong way, an
//!   unknown msg_type, another extension's type, a frame of another subprotocol, the frame twice
//!   in one write;
//! - Noise-level: a frame whose MAC fails, garbage bytes between frames, a frame cut short and
//!   never finished;
//! - time-level: a frame dripped a byte at a time, a stall in the middle of a frame, a frame sent
//!   while many other connections are open.

use std::time::Duration;

use sv2_codec::frame::HEADER_LEN;
use sv2_codec::{to_frame_bytes, Message};
use sv2_wire::WireShape;

use super::spans::{info_of_frame, le, spans, Element, Shape, Span};

/// A small deterministic generator (SplitMix64): a case depends on its seed alone.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when n is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// One thing to do on the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Act {
    /// A plain frame (header and payload): encrypted under Noise, written as `shape` says.
    Frame { bytes: Vec<u8>, shape: WireShape },
    /// Bytes written to the socket as they are (under Noise: not a frame the peer can decrypt).
    Raw(Vec<u8>),
    /// Nothing sent for this long.
    Pause(Duration),
    /// This many more connections to the server, handshakes done, held open until the case ends.
    Crowd(usize),
}

/// The families of mutations, for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    Field,
    Frame,
    Noise,
    Time,
}

impl Family {
    pub const ALL: [Family; 4] = [Family::Field, Family::Frame, Family::Noise, Family::Time];

    pub fn name(self) -> &'static str {
        match self {
            Family::Field => "field",
            Family::Frame => "frame",
            Family::Noise => "noise",
            Family::Time => "time",
        }
    }
}

/// A mutated message: what was done, what to send, and the rule its bytes break when no reading
/// of the spec could accept them (the expected-error oracle judges only those).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mutated {
    pub family: Family,
    /// In words, e.g. `request_id = 0xffffffff` or `msg_length + 1`.
    pub what: String,
    pub acts: Vec<Act>,
    pub invalid: Option<&'static str>,
}

/// Why a frame cannot be read at all: acting on it means guessing.
pub const TRUNCATED: &str = "a field runs past the end of the payload (§3.1: lengths are exact)";
pub const OVER_BOUND: &str = "a length above its type's bound (§3.1)";
pub const OPTION_PREFIX: &str = "an OPTION prefix other than 0x00 or 0x01 (§3.1)";

fn put_le(buf: &mut [u8], value: u64) {
    for (b, byte) in buf.iter_mut().zip(value.to_le_bytes()) {
        *b = byte;
    }
}

fn set_msg_length(frame: &mut [u8], length: usize) {
    put_le(&mut frame[3..6], length as u64);
}

fn frame_act(bytes: Vec<u8>) -> Act {
    Act::Frame {
        bytes,
        shape: WireShape::default(),
    }
}

/// Replaces `frame`'s payload bytes `range` by `with`, msg_length following the new size.
fn splice(frame: &[u8], start: usize, end: usize, with: &[u8]) -> Vec<u8> {
    let mut out = frame[..HEADER_LEN + start].to_vec();
    out.extend_from_slice(with);
    out.extend_from_slice(&frame[HEADER_LEN + end..]);
    let payload = out.len() - HEADER_LEN;
    set_msg_length(&mut out, payload);
    out
}

/// Boundary values of an unsigned integer of `width` bytes.
fn boundaries(width: usize) -> Vec<u64> {
    let max = if width >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * width)) - 1
    };
    vec![0, 1, max, max - 1, max / 2 + 1, max / 2]
}

/// A field-aware mutation of `frame` (a valid encoding of `message`).
fn field(frame: &[u8], spans: &[Span], rng: &mut Rng) -> Option<Mutated> {
    let span = rng.pick(spans).clone();
    let payload = &frame[HEADER_LEN..];
    let field = span.field;
    let mutated = |what: String, bytes: Vec<u8>, invalid: Option<&'static str>| Mutated {
        family: Family::Field,
        what: format!("{field} ({}): {what}", span.ty),
        acts: vec![frame_act(bytes)],
        invalid,
    };
    // Cutting the payload inside this field (or just after its prefix) is always possible.
    if rng.below(6) == 0 && span.end > span.start {
        let cut = span.start + rng.below(span.end - span.start);
        return Some(mutated(
            format!("payload cut at byte {cut} of {}", payload.len()),
            splice(frame, cut, payload.len(), &[]),
            Some(TRUNCATED),
        ));
    }
    Some(match span.shape {
        Shape::Fixed(_) if span.ty == "F32" => {
            let specials: [(f32, &str); 7] = [
                (f32::NAN, "NaN"),
                (f32::INFINITY, "+inf"),
                (f32::NEG_INFINITY, "-inf"),
                (-1.0, "-1.0"),
                (-0.0, "-0.0"),
                (f32::MAX, "f32::MAX"),
                (f32::from_bits(1), "the smallest subnormal"),
            ];
            let (value, name) = *rng.pick(&specials);
            mutated(
                format!("= {name}"),
                splice(frame, span.start, span.end, &value.to_le_bytes()),
                None,
            )
        }
        Shape::Fixed(1) if span.ty == "BOOL" => {
            let byte = *rng.pick(&[0x02u8, 0x03, 0x80, 0xfe, 0xff]);
            mutated(
                format!("= {byte:#04x}"),
                splice(frame, span.start, span.end, &[byte]),
                None,
            )
        }
        Shape::Fixed(32) => {
            let value = match rng.below(3) {
                0 => vec![0u8; 32],
                1 => vec![0xffu8; 32],
                _ => rng.bytes(32),
            };
            mutated(
                format!("= {}", hex::encode(&value)),
                splice(frame, span.start, span.end, &value),
                None,
            )
        }
        Shape::Fixed(n) => {
            let value = *rng.pick(&boundaries(n.min(8)));
            let mut bytes = vec![0u8; n];
            put_le(&mut bytes, value);
            mutated(
                format!("= {value:#x}"),
                splice(frame, span.start, span.end, &bytes),
                None,
            )
        }
        Shape::Bytes { prefix, max } => {
            let len = span.end - span.start - prefix;
            let content = &payload[span.start + prefix..span.end];
            let sayable = (1usize << (8 * prefix)) - 1;
            // What a length claiming `claimed` bytes breaks, with the bytes that follow it.
            let judged = |claimed: usize| {
                if claimed > max {
                    Some(OVER_BOUND)
                } else if span.start + prefix + claimed > payload.len() {
                    Some(TRUNCATED)
                } else {
                    None
                }
            };
            let lying = |claimed: usize| {
                let mut with = vec![0u8; prefix];
                put_le(&mut with, claimed as u64);
                with.extend_from_slice(content);
                with
            };
            match rng.below(6) {
                // The length says one more byte than there is.
                0 if len < sayable => mutated(
                    format!("length says {} for {len} bytes", len + 1),
                    splice(frame, span.start, span.end, &lying(len + 1)),
                    judged(len + 1),
                ),
                // The type's bound plus one, with that many bytes.
                1 if max < sayable => {
                    let n = max + 1;
                    let mut with = vec![0u8; prefix];
                    put_le(&mut with, n as u64);
                    with.extend(std::iter::repeat_n(b'x', n));
                    mutated(
                        format!("{n} bytes, the bound is {max}"),
                        splice(frame, span.start, span.end, &with),
                        Some(OVER_BOUND),
                    )
                }
                // The largest length the prefix can say, and the bytes there are.
                2 => mutated(
                    format!("length prefix says {sayable} for {len} bytes"),
                    splice(frame, span.start, span.end, &lying(sayable)),
                    judged(sayable),
                ),
                // Maximal (bounded to keep frames small).
                3 => {
                    let n = max.min(255);
                    let mut with = vec![0u8; prefix];
                    put_le(&mut with, n as u64);
                    with.extend(std::iter::repeat_n(b'z', n));
                    mutated(
                        format!("{n} bytes"),
                        splice(frame, span.start, span.end, &with),
                        None,
                    )
                }
                // Bytes that are not UTF-8, or control characters.
                4 => {
                    let bad =
                        *rng.pick(&[&b"\xff\xfe\xc0"[..], b"\x00\x01\x1b[2J", b"\xed\xa0\x80"]);
                    let mut with = vec![0u8; prefix];
                    put_le(&mut with, bad.len() as u64);
                    with.extend_from_slice(bad);
                    mutated(
                        format!("= {}", hex::encode(bad)),
                        splice(frame, span.start, span.end, &with),
                        None,
                    )
                }
                // Empty.
                _ => mutated(
                    "empty".into(),
                    splice(frame, span.start, span.end, &vec![0u8; prefix]),
                    None,
                ),
            }
        }
        Shape::Seq {
            prefix, element, ..
        } => {
            let count = le(&payload[span.start..span.start + prefix]);
            let content = &payload[span.start + prefix..span.end];
            let sayable = (1usize << (8 * prefix)) - 1;
            let said = match rng.below(3) {
                0 => (count + 1).min(sayable),
                1 => sayable,
                _ => 0,
            };
            let mut with = vec![0u8; prefix];
            put_le(&mut with, said as u64);
            with.extend_from_slice(if said == 0 { &[][..] } else { content });
            // Fixed-size elements that cannot all be there: the count runs past the payload.
            let available = payload.len() - span.start - prefix;
            let invalid = match element {
                Element::Fixed(n) if said > count && said * n > available => Some(TRUNCATED),
                _ => None,
            };
            mutated(
                format!("count says {said} for {count} elements"),
                splice(frame, span.start, span.end, &with),
                invalid,
            )
        }
        Shape::Option(element) => {
            let byte = *rng.pick(&[0x02u8, 0xff]);
            let mut with = vec![byte];
            with.extend_from_slice(&payload[span.start + 1..span.end]);
            if payload[span.start] == 0 {
                // Give it a value so that only the prefix is wrong.
                with.extend(std::iter::repeat_n(
                    0u8,
                    match element {
                        Element::Fixed(n) => n,
                        Element::Bytes16M => 3,
                    },
                ));
            }
            mutated(
                format!("OPTION prefix {byte:#04x}"),
                splice(frame, span.start, span.end, &with),
                Some(OPTION_PREFIX),
            )
        }
    })
}

/// TLVs after the last field: unknown ones (to be ignored), or a 33-byte user_identity.
fn tlv(frame: &[u8], rng: &mut Rng) -> Mutated {
    let mut bytes = frame.to_vec();
    let (what, tlv): (&str, Vec<u8>) = match rng.below(3) {
        0 => ("an unknown extension's TLV", {
            let mut t = vec![0x01, 0x40, 0x07, 0x04, 0x00];
            t.extend_from_slice(b"fuzz");
            t
        }),
        1 => ("a user_identity TLV of 33 bytes", {
            let mut t = vec![0x02, 0x00, 0x01, 33, 0x00];
            t.extend(std::iter::repeat_n(b'w', 33));
            t
        }),
        _ => ("a TLV whose length runs past the payload", {
            vec![0x01, 0x40, 0x07, 0xff, 0xff, 0x00]
        }),
    };
    bytes.extend_from_slice(&tlv);
    let payload = bytes.len() - HEADER_LEN;
    set_msg_length(&mut bytes, payload);
    Mutated {
        family: Family::Field,
        what: format!("after the last field: {what}"),
        acts: vec![frame_act(bytes)],
        invalid: None,
    }
}

/// A frame-level mutation.
fn frame_level(frame: &[u8], rng: &mut Rng) -> Mutated {
    let payload = frame.len() - HEADER_LEN;
    let mut bytes = frame.to_vec();
    let mutated = |what: String, acts: Vec<Act>, invalid: Option<&'static str>| Mutated {
        family: Family::Frame,
        what,
        acts,
        invalid,
    };
    match rng.below(8) {
        0 => {
            set_msg_length(&mut bytes, payload + 1);
            mutated("msg_length + 1".into(), vec![frame_act(bytes)], None)
        }
        1 if payload > 0 => {
            set_msg_length(&mut bytes, payload - 1);
            mutated("msg_length - 1".into(), vec![frame_act(bytes)], None)
        }
        2 => {
            set_msg_length(&mut bytes, 0xff_ffff);
            mutated(
                "msg_length 0xffffff (16 MiB claimed)".into(),
                vec![frame_act(bytes)],
                None,
            )
        }
        3 => {
            bytes[1] ^= 0x80;
            mutated(
                "channel_msg bit flipped".into(),
                vec![frame_act(bytes)],
                None,
            )
        }
        4 => {
            bytes[2] = *rng.pick(&[0x05u8, 0x7f, 0xfe, 0xff]);
            mutated(
                format!("msg_type {:#04x}", bytes[2]),
                vec![frame_act(bytes)],
                None,
            )
        }
        5 => {
            let ext: u16 = *rng.pick(&[0x0002u16, 0x4abc, 0x7fff]);
            let channel_bit = u16::from_le_bytes([bytes[0], bytes[1]]) & 0x8000;
            bytes[..2].copy_from_slice(&(ext | channel_bit).to_le_bytes());
            mutated(
                format!("extension_type {ext:#06x}"),
                vec![frame_act(bytes)],
                None,
            )
        }
        6 => {
            // A message of another subprotocol: Template Distribution's and Job Declaration's.
            let other = *rng.pick(&[0x70u8, 0x71, 0x72, 0x57, 0x58, 0x60]);
            bytes[2] = other;
            bytes[1] &= 0x7f;
            mutated(
                format!("msg_type {other:#04x} of another subprotocol"),
                vec![frame_act(bytes)],
                None,
            )
        }
        _ => mutated(
            "the frame twice, back to back".into(),
            vec![frame_act(bytes.clone()), frame_act(bytes)],
            None,
        ),
    }
}

/// A Noise-level mutation (in plaintext: the same bytes on the bare stream).
fn noise_level(frame: &[u8], rng: &mut Rng) -> Mutated {
    let mutated = |what: &str, acts: Vec<Act>| Mutated {
        family: Family::Noise,
        what: what.into(),
        acts,
        invalid: None,
    };
    match rng.below(3) {
        0 => mutated(
            "the frame's last byte on the wire flipped (its MAC fails)",
            vec![Act::Frame {
                bytes: frame.to_vec(),
                shape: WireShape {
                    flip_last_byte: true,
                    ..WireShape::default()
                },
            }],
        ),
        1 => {
            let n = *rng.pick(&[1usize, 7, 16, 64]);
            mutated(
                &format!("{n} garbage bytes between frames"),
                vec![Act::Raw(rng.bytes(n)), frame_act(frame.to_vec())],
            )
        }
        _ => {
            let bit = rng.below(frame.len() * 8);
            mutated(
                &format!("bit {bit} of the frame flipped on the wire"),
                vec![Act::Frame {
                    bytes: frame.to_vec(),
                    shape: WireShape {
                        flip_wire_bit: Some(bit),
                        ..WireShape::default()
                    },
                }],
            )
        }
    }
}

/// Connections a crowd case opens besides its own.
pub const CROWD: usize = 32;

/// A time-level mutation.
fn time_level(frame: &[u8], rng: &mut Rng) -> Mutated {
    let pick = rng.below(3);
    if pick == 2 {
        return Mutated {
            family: Family::Time,
            what: format!("sent while {CROWD} more connections are open and silent"),
            acts: vec![Act::Crowd(CROWD), frame_act(frame.to_vec())],
            invalid: None,
        };
    }
    if pick == 0 {
        Mutated {
            family: Family::Time,
            what: "written a byte at a time, 1 ms apart".into(),
            acts: vec![Act::Frame {
                bytes: frame.to_vec(),
                shape: WireShape {
                    chunk: Some(1),
                    pause: Duration::from_millis(1),
                    ..WireShape::default()
                },
            }],
            invalid: None,
        }
    } else {
        // Two pieces on the wire, also under Noise (32 bytes of MACs more than the plain frame).
        let half = (frame.len() + 32).div_ceil(2);
        Mutated {
            family: Family::Time,
            what: "a stall of 0.6 s in the middle of the frame".into(),
            acts: vec![Act::Frame {
                bytes: frame.to_vec(),
                shape: WireShape {
                    chunk: Some(half),
                    pause: Duration::from_millis(600),
                    ..WireShape::default()
                },
            }],
            invalid: None,
        }
    }
}

/// One mutation of `message` from `family`; None when the message does not encode.
pub fn mutate(message: &Message<'_>, family: Family, rng: &mut Rng) -> Option<Mutated> {
    let frame = to_frame_bytes(message, &[]).ok()?;
    Some(match family {
        Family::Field => {
            let spans = info_of_frame(&frame).and_then(|i| spans(i, &frame[HEADER_LEN..]));
            match spans {
                Some(spans) if !spans.is_empty() && rng.below(8) != 0 => {
                    field(&frame, &spans, rng)?
                }
                _ => tlv(&frame, rng),
            }
        }
        Family::Frame => frame_level(&frame, rng),
        Family::Noise => noise_level(&frame, rng),
        Family::Time => time_level(&frame, rng),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sv2_codec::frame::Frame;
    use sv2_codec::messages::mining::OpenStandardMiningChannel;
    use sv2_codec::types::{Str0_255, U256};

    fn open() -> Message<'static> {
        OpenStandardMiningChannel {
            request_id: 7,
            user_identity: Str0_255::new(b"fuzz".to_vec()).unwrap(),
            nominal_hash_rate: 1e6,
            max_target: U256([0xff; 32]),
        }
        .into()
    }

    #[test]
    fn the_same_seed_gives_the_same_mutations() {
        for family in Family::ALL {
            for seed in 0..50 {
                let a = mutate(&open(), family, &mut Rng::new(seed));
                let b = mutate(&open(), family, &mut Rng::new(seed));
                assert_eq!(a, b);
            }
        }
    }

    #[test]
    fn frames_marked_invalid_do_not_decode_and_every_frame_keeps_its_header() {
        let mut invalid = 0;
        for seed in 0..2000 {
            let m = mutate(&open(), Family::Field, &mut Rng::new(seed)).unwrap();
            for act in &m.acts {
                let Act::Frame { bytes, .. } = act else {
                    continue;
                };
                assert!(bytes.len() >= HEADER_LEN, "{}", m.what);
                if m.invalid.is_some() {
                    invalid += 1;
                    let decoded = Frame::parse(bytes)
                        .ok()
                        .map(|(f, _)| sv2_codec::decode_frame(&f));
                    assert!(
                        !matches!(decoded, Some(Ok(_))),
                        "{} decodes although marked invalid",
                        m.what
                    );
                }
            }
        }
        assert!(invalid > 100, "{invalid}");
    }

    #[test]
    fn every_family_mutates() {
        for family in Family::ALL {
            let m = mutate(&open(), family, &mut Rng::new(3)).unwrap();
            assert_eq!(m.family, family);
            assert!(!m.acts.is_empty());
        }
    }
}
