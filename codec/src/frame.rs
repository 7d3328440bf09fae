//! Plain SV2 framing (spec §3.2, CATALOG §B.1):
//! `extension_type U16 (bit 15 = channel_msg) | msg_type U8 | msg_length U24 | payload`.

use serde::{Deserialize, Serialize};

use crate::error::FrameError;

/// Size of the plain frame header.
pub const HEADER_LEN: usize = 6;
/// The channel_msg bit: the most significant bit of the U16 extension_type (CATALOG errata H.2).
pub const CHANNEL_MSG_BIT: u16 = 0x8000;
/// The largest payload a U24 msg_length can describe.
pub const MAX_PAYLOAD_LEN: usize = (1 << 24) - 1;

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Header {
    /// The extension that defines the message, without the channel_msg bit (0 for core messages).
    pub extension_type: u16,
    /// Whether the payload starts with a U32 channel_id (bit 15 of the wire extension_type).
    pub channel_msg: bool,
    pub msg_type: u8,
    /// Payload length in bytes (U24).
    pub msg_length: u32,
}

impl Header {
    /// Reads a header from exactly six bytes.
    pub fn from_bytes(bytes: [u8; HEADER_LEN]) -> Self {
        let raw_ext = u16::from_le_bytes([bytes[0], bytes[1]]);
        Header {
            extension_type: raw_ext & !CHANNEL_MSG_BIT,
            channel_msg: raw_ext & CHANNEL_MSG_BIT != 0,
            msg_type: bytes[2],
            msg_length: u32::from_le_bytes([bytes[3], bytes[4], bytes[5], 0]),
        }
    }

    /// The extension_type as on the wire, channel_msg bit included.
    pub fn wire_extension_type(&self) -> u16 {
        (self.extension_type & !CHANNEL_MSG_BIT)
            | if self.channel_msg { CHANNEL_MSG_BIT } else { 0 }
    }

    /// The six header bytes. `msg_length` above 2^24 - 1 is truncated to 24 bits; the encoders in this
    /// crate never build such a header.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let ext = self.wire_extension_type().to_le_bytes();
        let len = self.msg_length.to_le_bytes();
        [ext[0], ext[1], self.msg_type, len[0], len[1], len[2]]
    }
}

/// A frame borrowed from a buffer: header and exactly `msg_length` payload bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub header: Header,
    pub payload: &'a [u8],
}

impl<'a> Frame<'a> {
    /// Cuts the first frame out of `buf` without copying. Returns the frame and the number of bytes it
    /// spans; fails with `Incomplete` when `buf` holds less than a whole frame.
    pub fn parse(buf: &'a [u8]) -> Result<(Frame<'a>, usize), FrameError> {
        Self::parse_with_max(buf, MAX_PAYLOAD_LEN)
    }

    /// As [`Frame::parse`], refusing payloads longer than `max_payload`.
    pub fn parse_with_max(
        buf: &'a [u8],
        max_payload: usize,
    ) -> Result<(Frame<'a>, usize), FrameError> {
        let Some(head) = buf.first_chunk::<HEADER_LEN>() else {
            return Err(FrameError::Incomplete {
                needed: HEADER_LEN - buf.len(),
            });
        };
        let header = Header::from_bytes(*head);
        let length = header.msg_length as usize;
        if length > max_payload {
            return Err(FrameError::TooLarge {
                length,
                max: max_payload,
            });
        }
        let total = HEADER_LEN + length;
        match buf.get(HEADER_LEN..total) {
            Some(payload) => Ok((Frame { header, payload }, total)),
            None => Err(FrameError::Incomplete {
                needed: total - buf.len(),
            }),
        }
    }

    /// Copies the frame into an owned one.
    pub fn to_owned_frame(&self) -> OwnedFrame {
        OwnedFrame {
            header: self.header,
            payload: self.payload.to_vec(),
        }
    }

    /// Writes header and payload to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.header.to_bytes());
        out.extend_from_slice(self.payload);
    }
}

/// A frame that owns its payload (as returned by the incremental decoder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedFrame {
    pub header: Header,
    pub payload: Vec<u8>,
}

impl OwnedFrame {
    pub fn as_frame(&self) -> Frame<'_> {
        Frame {
            header: self.header,
            payload: &self.payload,
        }
    }
}

/// Incremental frame decoder for a byte stream split anywhere (one byte at a time works).
///
/// Memory stays bounded by one header plus the bytes of the current frame actually received: the
/// claimed msg_length is checked against `max_payload` as soon as the header is complete, and the
/// buffer grows only with data pushed, never from the claimed length.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max_payload: usize,
    header: Option<Header>,
    buf: Vec<u8>,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(MAX_PAYLOAD_LEN)
    }
}

impl FrameDecoder {
    /// A decoder refusing payloads longer than `max_payload` (at most 2^24 - 1 is meaningful).
    pub fn new(max_payload: usize) -> Self {
        FrameDecoder {
            max_payload,
            header: None,
            buf: Vec::new(),
        }
    }

    /// How many more bytes finish the header being read or the frame being read. Never 0: after a frame
    /// is returned the decoder waits for the next header.
    pub fn needed(&self) -> usize {
        match self.header {
            None => HEADER_LEN - self.buf.len(),
            Some(h) => h.msg_length as usize - self.buf.len(),
        }
    }

    /// Consumes bytes from `input` up to the end of the current frame. Returns how many bytes were
    /// consumed and, when a frame was completed, the frame. Call again with the unconsumed rest.
    /// After an error the decoder is reset and the stream should be considered broken.
    pub fn push(&mut self, input: &[u8]) -> Result<(usize, Option<OwnedFrame>), FrameError> {
        let mut used = 0;
        if self.header.is_none() {
            let take = (HEADER_LEN - self.buf.len()).min(input.len());
            self.buf.extend_from_slice(&input[..take]);
            used += take;
            let Some(head) = self.buf.first_chunk::<HEADER_LEN>() else {
                return Ok((used, None));
            };
            let header = Header::from_bytes(*head);
            self.buf.clear();
            if header.msg_length as usize > self.max_payload {
                return Err(FrameError::TooLarge {
                    length: header.msg_length as usize,
                    max: self.max_payload,
                });
            }
            self.header = Some(header);
        }
        let Some(header) = self.header else {
            return Ok((used, None));
        };
        let want = header.msg_length as usize - self.buf.len();
        let take = want.min(input.len() - used);
        self.buf.extend_from_slice(&input[used..used + take]);
        used += take;
        if self.buf.len() < header.msg_length as usize {
            return Ok((used, None));
        }
        self.header = None;
        let payload = std::mem::take(&mut self.buf);
        Ok((used, Some(OwnedFrame { header, payload })))
    }

    /// Feeds all of `input` and collects every completed frame.
    pub fn push_all(&mut self, mut input: &[u8]) -> Result<Vec<OwnedFrame>, FrameError> {
        let mut frames = Vec::new();
        while !input.is_empty() {
            let (used, frame) = self.push(input)?;
            input = &input[used..];
            frames.extend(frame);
        }
        Ok(frames)
    }

    /// True when no partial header or frame is buffered.
    pub fn is_idle(&self) -> bool {
        self.header.is_none() && self.buf.is_empty()
    }

    /// How many bytes of an incomplete header or frame are held (a complete header counts its 6).
    pub fn buffered(&self) -> usize {
        self.buf.len() + if self.header.is_some() { HEADER_LEN } else { 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHARE: &str = "00801a180000010000000200000003000000040000000500000000000020";

    #[test]
    fn buffered_counts_the_partial_header_and_payload() {
        let bytes = hex::decode(SHARE).unwrap();
        let mut d = FrameDecoder::default();
        assert_eq!(d.buffered(), 0);
        d.push(&bytes[..4]).unwrap();
        assert_eq!(d.buffered(), 4);
        d.push(&bytes[4..10]).unwrap();
        assert_eq!(d.buffered(), 10);
        let (_, frame) = d.push(&bytes[10..]).unwrap();
        assert!(frame.is_some());
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn header_layout_matches_the_catalog_example() {
        let bytes = hex::decode(SHARE).unwrap();
        let (frame, used) = Frame::parse(&bytes).unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(
            frame.header,
            Header {
                extension_type: 0,
                channel_msg: true,
                msg_type: 0x1a,
                msg_length: 24
            }
        );
        assert_eq!(frame.header.to_bytes(), bytes[..6]);
    }

    #[test]
    fn parse_reports_what_is_missing_and_refuses_large_claims() {
        let bytes = hex::decode(SHARE).unwrap();
        assert_eq!(
            Frame::parse(&bytes[..4]),
            Err(FrameError::Incomplete { needed: 2 })
        );
        assert_eq!(
            Frame::parse(&bytes[..10]),
            Err(FrameError::Incomplete { needed: 20 })
        );
        assert_eq!(
            Frame::parse_with_max(&bytes, 23),
            Err(FrameError::TooLarge {
                length: 24,
                max: 23
            })
        );
    }

    #[test]
    fn incremental_decoder_accepts_any_split() {
        let one = hex::decode(SHARE).unwrap();
        let stream: Vec<u8> = one.iter().chain(one.iter()).copied().collect();
        for split in 1..stream.len() {
            let mut dec = FrameDecoder::default();
            let mut frames = Vec::new();
            for chunk in stream.chunks(split) {
                frames.extend(dec.push_all(chunk).unwrap());
            }
            assert_eq!(frames.len(), 2, "split {split}");
            assert!(frames.iter().all(|f| f.payload == one[6..]));
            assert!(dec.is_idle());
        }
    }

    #[test]
    fn incremental_decoder_says_how_much_it_needs() {
        let one = hex::decode(SHARE).unwrap();
        let mut dec = FrameDecoder::default();
        assert_eq!(dec.needed(), 6);
        dec.push(&one[..3]).unwrap();
        assert_eq!(dec.needed(), 3);
        dec.push(&one[3..10]).unwrap();
        assert_eq!(dec.needed(), 20);
        let (used, frame) = dec.push(&one[10..]).unwrap();
        assert_eq!(used, 20);
        assert!(frame.is_some());
        assert_eq!(dec.needed(), 6);
    }

    #[test]
    fn incremental_decoder_bounds_memory_by_configured_maximum() {
        let mut dec = FrameDecoder::new(1024);
        let header = [0, 0, 0x71, 0xff, 0xff, 0xff];
        for (i, byte) in header.iter().enumerate() {
            let r = dec.push(&[*byte]);
            if i < 5 {
                assert_eq!(r, Ok((1, None)));
            } else {
                assert_eq!(
                    r,
                    Err(FrameError::TooLarge {
                        length: 0xff_ffff,
                        max: 1024
                    })
                );
            }
        }
    }

    #[test]
    fn empty_payload_frame_completes_with_the_header() {
        let mut dec = FrameDecoder::default();
        let (used, frame) = dec.push(&[1, 0, 0, 0, 0, 0, 9]).unwrap();
        assert_eq!(used, 6);
        let frame = frame.unwrap();
        assert_eq!(frame.header.extension_type, 1);
        assert!(frame.payload.is_empty());
    }
}
