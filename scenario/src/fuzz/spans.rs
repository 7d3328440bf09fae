//! Where each field of a message lies in its payload, read from the codec's field table
//! (`MessageInfo::fields`, their SV2 types) over the bytes of a valid encoding: what the
//! field-aware mutations aim at.

use sv2_codec::messages::{MessageInfo, MESSAGE_TYPES};

/// The SV2 types the walker reads, with how their bytes are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A fixed number of bytes: an integer (U8, U16, U24, U32, U64), F32, BOOL or U256.
    Fixed(usize),
    /// Bytes after a little-endian length of `prefix` bytes, at most `max` of them (STR0_255,
    /// B0_32, B0_255, B0_64K, B0_16M).
    Bytes { prefix: usize, max: usize },
    /// Elements after a little-endian count of `prefix` bytes, at most `max` of them.
    Seq {
        prefix: usize,
        max: usize,
        element: Element,
    },
    /// A 0x00/0x01 prefix, then the value when 0x01.
    Option(Element),
}

/// What a sequence or an option holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Element {
    Fixed(usize),
    /// B0_16M: a 3-byte length, then the bytes.
    Bytes16M,
}

/// One field's bytes in a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub field: &'static str,
    /// The SV2 type, e.g. `U32`, `STR0_255`, `SEQ0_255[U256]`.
    pub ty: String,
    pub shape: Shape,
    /// Offset of the field's first byte (its length or count prefix, if any).
    pub start: usize,
    /// Offset just past it.
    pub end: usize,
}

impl Span {
    /// The width of the length, count or option prefix (0 for fixed fields).
    pub fn prefix(&self) -> usize {
        match self.shape {
            Shape::Fixed(_) => 0,
            Shape::Bytes { prefix, .. } | Shape::Seq { prefix, .. } => prefix,
            Shape::Option(_) => 1,
        }
    }
}

fn fixed(ty: &str) -> Option<usize> {
    Some(match ty {
        "U8" | "BOOL" => 1,
        "U16" => 2,
        "U24" => 3,
        "U32" | "F32" => 4,
        "U64" => 8,
        "U256" => 32,
        "PUBKEY" => 32,
        "SIGNATURE" => 64,
        _ => return None,
    })
}

fn element(ty: &str) -> Option<Element> {
    if ty == "B0_16M" {
        return Some(Element::Bytes16M);
    }
    fixed(ty).map(Element::Fixed)
}

/// The layout of an SV2 type name, or None for one the walker does not know.
pub fn shape(ty: &str) -> Option<Shape> {
    if let Some(n) = fixed(ty) {
        return Some(Shape::Fixed(n));
    }
    let bytes = |prefix, max| Some(Shape::Bytes { prefix, max });
    match ty {
        "STR0_255" | "B0_255" => return bytes(1, 255),
        "B0_32" => return bytes(1, 32),
        "B0_64K" => return bytes(2, 65_535),
        "B0_16M" => return bytes(3, 16_777_215),
        _ => {}
    }
    let inner = |prefix: &str| {
        ty.strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('['))
            .and_then(|r| r.strip_suffix(']'))
    };
    if let Some(e) = inner("SEQ0_255").and_then(element) {
        return Some(Shape::Seq {
            prefix: 1,
            max: 255,
            element: e,
        });
    }
    if let Some(e) = inner("SEQ0_64K").and_then(element) {
        return Some(Shape::Seq {
            prefix: 2,
            max: 65_535,
            element: e,
        });
    }
    if let Some(e) = inner("OPTION").and_then(element) {
        return Some(Shape::Option(e));
    }
    None
}

/// The table entry of the message a frame carries, by its header's extension (channel_msg bit
/// aside) and msg_type (names are not unique: SetNewPrevHash is in two subprotocols).
pub fn info_of_frame(frame: &[u8]) -> Option<&'static MessageInfo> {
    let extension = u16::from_le_bytes([*frame.first()?, *frame.get(1)?]) & 0x7fff;
    let msg_type = *frame.get(2)?;
    MESSAGE_TYPES
        .iter()
        .find(|i| i.extension_type == extension && i.msg_type == msg_type)
}

/// A little-endian unsigned number of up to 8 bytes.
pub fn le(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .rev()
        .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
}

fn element_end(payload: &[u8], at: usize, element: Element) -> Option<usize> {
    match element {
        Element::Fixed(n) => at.checked_add(n).filter(|e| *e <= payload.len()),
        Element::Bytes16M => {
            let len = le(payload.get(at..at + 3)?);
            (at + 3).checked_add(len).filter(|e| *e <= payload.len())
        }
    }
}

/// The spans of `info`'s fields over `payload`, a valid encoding of that message; None when the
/// payload does not follow the table (a type the walker does not know, or bytes that run out).
pub fn spans(info: &MessageInfo, payload: &[u8]) -> Option<Vec<Span>> {
    let mut at = 0;
    let mut out = Vec::with_capacity(info.fields.len());
    for field in info.fields {
        let ty = field.sv2_type();
        let shape = shape(&ty)?;
        let end = match shape {
            Shape::Fixed(n) => at + n,
            Shape::Bytes { prefix, .. } => at + prefix + le(payload.get(at..at + prefix)?),
            Shape::Seq {
                prefix, element, ..
            } => {
                let count = le(payload.get(at..at + prefix)?);
                let mut end = at + prefix;
                for _ in 0..count {
                    end = element_end(payload, end, element)?;
                }
                end
            }
            Shape::Option(element) => match payload.get(at)? {
                0 => at + 1,
                _ => element_end(payload, at + 1, element)?,
            },
        };
        if end > payload.len() {
            return None;
        }
        out.push(Span {
            field: field.name,
            ty,
            shape,
            start: at,
            end,
        });
        at = end;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sv2_codec::{to_frame_bytes, Message};

    #[test]
    fn every_message_type_has_a_known_layout() {
        for info in MESSAGE_TYPES {
            for field in info.fields {
                assert!(
                    shape(&field.sv2_type()).is_some(),
                    "{}.{}: {}",
                    info.name,
                    field.name,
                    field.sv2_type()
                );
            }
        }
    }

    #[test]
    fn spans_cover_arbitrary_messages_exactly() {
        use arbitrary::{Arbitrary, Unstructured};
        let pool: Vec<u8> = (0..8192u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
            .collect();
        let mut checked = 0;
        for start in (0..pool.len() - 512).step_by(7) {
            let mut u = Unstructured::new(&pool[start..start + 512]);
            let Ok(message) = Message::arbitrary(&mut u) else {
                continue;
            };
            let frame = to_frame_bytes(&message, &[]).expect("encodes");
            let Some(info) = info_of_frame(&frame) else {
                continue;
            };
            let payload = &frame[6..];
            let spans = spans(info, payload).expect("the table describes the encoding");
            assert_eq!(spans.len(), info.fields.len());
            assert_eq!(
                spans.last().map_or(0, |s| s.end),
                payload.len(),
                "{}",
                info.name
            );
            checked += 1;
        }
        assert!(checked > 100, "{checked}");
    }
}
