//! The stream decoder: a sans-IO reader for ONE direction of a TCP connection. Bytes and their time go
//! in ([`StreamDecoder::push`]), events come out ([`StreamDecoder::next_event`]): handshake acts, whole
//! SV2 frames (plain, and on an encrypted connection their bytes on the wire), SV1 lines, and errors.
//! Any split of the bytes gives the same events.
//!
//! Three ways to read a direction ([`Mode`]):
//! - **Plain SV2**: frames as they are (spec §3.2).
//! - **Noise**: first this direction's handshake act (64 bytes of act 1 from the client, 234 of act 2
//!   from the server), then encrypted frames. The decoder does not run the handshake: whoever knows the
//!   keys (the connection that ran it, or a capture reader with a key log) hands this direction's
//!   [`Decryptor`] in with [`StreamDecoder::set_decryptor`]. Transport bytes that come before the keys
//!   wait (up to [`MAX_WAITING`]); [`StreamDecoder::no_keys`] gives up on them.
//! - **SV1**: JSON-RPC lines, `\n`-terminated (a `\r` before it is dropped), at most
//!   [`MAX_LINE`] bytes; a longer line is an error and the decoder picks up at the next newline.
//!
//! Errors: a plain frame claiming more than the maximum payload, or a failed decryption, is fatal for
//! the direction (nothing after it can be delimited); later bytes are counted ([`StreamDecoder::lost`])
//! and not read. Memory follows the bytes received, never a length claimed by the peer.

use std::collections::VecDeque;

use sv2_codec::frame::MAX_PAYLOAD_LEN;
use sv2_codec::noise::{Decryptor, NoiseError, ACT1_LEN, ACT2_LEN};
use sv2_codec::{FrameDecoder, FrameError};

pub use sv2_codec::sv1::json::MAX_LINE;

use crate::transcript::{Direction, Timestamp, Transcript};

/// How many first bytes [`classify_client_start`] looks at: random bytes (an act 1) pass for text that
/// long with a probability of about (95/256)^16, 1 in 8 million.
pub const CLASSIFY_LEN: usize = 16;

/// Most transport bytes kept while waiting for the keys of a Noise session.
pub const MAX_WAITING: usize = 1 << 20;

/// How a direction is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Plain SV2 frames.
    Sv2,
    /// A Noise handshake act, then encrypted SV2 frames.
    Noise,
    /// Stratum V1 JSON-RPC lines.
    Sv1,
}

/// What the decoder found.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// This direction's handshake act, whole.
    Act { act: u8, bytes: Vec<u8> },
    /// A whole SV2 frame: the plain frame (header and payload) and, on an encrypted connection when
    /// kept, its bytes on the wire.
    Frame {
        plain: Vec<u8>,
        wire: Option<Vec<u8>>,
    },
    /// An SV1 line without its line ending.
    Sv1Line(Vec<u8>),
    /// What could not be read.
    Error(StreamError),
}

impl StreamEvent {
    /// Records the event in `transcript` as coming from `direction` at `at` (an error as a note).
    pub fn record(self, direction: Direction, at: Timestamp, transcript: &mut Transcript) {
        match self {
            StreamEvent::Act { act, bytes } => transcript.handshake(at, direction, act, &bytes),
            StreamEvent::Frame { plain, wire } => {
                transcript.frame_owned(at, direction, plain, wire);
            }
            StreamEvent::Sv1Line(line) => transcript.sv1(at, direction, &line),
            StreamEvent::Error(e) => transcript.note(at, format!("{}: {e}", direction.as_str())),
        }
    }
}

/// Why bytes of a direction could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StreamError {
    /// A plain frame's header claims more than the maximum payload: the stream cannot be delimited.
    #[error("{0}")]
    Frame(FrameError),
    /// Decryption failed (a wrong key, bytes lost or altered): the session cannot be read further.
    #[error("{0}")]
    Noise(NoiseError),
    /// An SV1 line longer than [`MAX_LINE`]; reading resumes after its newline.
    #[error("SV1 line longer than {MAX_LINE} bytes (skipped up to its newline)")]
    LineTooLong,
    /// Encrypted bytes whose keys were not given (more than [`MAX_WAITING`] came first, or
    /// [`StreamDecoder::no_keys`] was called): the session cannot be read.
    #[error("{0} bytes of encrypted transport and no keys to read them")]
    NoKeys(usize),
}

#[derive(Debug)]
enum State {
    Plain(FrameDecoder),
    /// Reading this direction's handshake act.
    Act(Vec<u8>),
    /// After the act, transport bytes wait for the keys.
    Waiting(Vec<u8>),
    Transport(Box<Decryptor>),
    Sv1 {
        line: Vec<u8>,
        /// Inside a line too long to keep, until its newline.
        skipping: bool,
    },
    /// Nothing more can be read: bytes are only counted.
    Lost,
}

/// A push-based decoder for one direction of one connection.
#[derive(Debug)]
pub struct StreamDecoder {
    direction: Direction,
    state: State,
    events: VecDeque<(Timestamp, StreamEvent)>,
    /// The wire bytes of the encrypted frame in progress.
    wire: Vec<u8>,
    keep_wire: bool,
    lost: u64,
}

impl StreamDecoder {
    /// A decoder for `direction`, read as `mode`. Encrypted frames keep their wire bytes.
    pub fn new(direction: Direction, mode: Mode) -> Self {
        let state = match mode {
            Mode::Sv2 => State::Plain(FrameDecoder::new(MAX_PAYLOAD_LEN)),
            Mode::Noise => State::Act(Vec::new()),
            Mode::Sv1 => State::Sv1 {
                line: Vec::new(),
                skipping: false,
            },
        };
        StreamDecoder {
            direction,
            state,
            events: VecDeque::new(),
            wire: Vec::new(),
            keep_wire: true,
            lost: 0,
        }
    }

    /// A Noise decoder already past the handshake, with this direction's keys.
    pub fn transport(direction: Direction, decryptor: Decryptor) -> Self {
        let mut decoder = StreamDecoder::new(direction, Mode::Noise);
        decoder.state = State::Transport(Box::new(decryptor));
        decoder
    }

    /// Whether encrypted frames keep their wire bytes (default: yes). A load generator turns it off.
    pub fn keep_wire(mut self, keep: bool) -> Self {
        self.keep_wire = keep;
        self
    }

    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// The length of this direction's handshake act.
    pub fn act_len(&self) -> usize {
        match self.direction {
            Direction::ClientToServer => ACT1_LEN,
            Direction::ServerToClient => ACT2_LEN,
        }
    }

    /// True while the act is still being read.
    pub fn in_handshake(&self) -> bool {
        matches!(self.state, State::Act(_))
    }

    /// True when the act was read and the keys are awaited.
    pub fn awaits_keys(&self) -> bool {
        matches!(self.state, State::Waiting(_))
    }

    /// True when nothing more can be read (a fatal error, or no keys).
    pub fn is_lost(&self) -> bool {
        matches!(self.state, State::Lost)
    }

    /// Bytes received after the decoder could read no more.
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// The bytes of an incomplete handshake act, or of an SV1 line without its newline yet (for
    /// error messages: what a peer sent before it stopped).
    pub fn partial(&self) -> &[u8] {
        match &self.state {
            State::Act(buf) => buf,
            State::Sv1 { line, .. } => line,
            _ => &[],
        }
    }

    /// How many bytes of a unit (act, frame, line) are held, incomplete: what a peer sent before it
    /// stopped short. Under Noise transport only whether a frame is partly read is known (1 if so).
    pub fn pending(&self) -> usize {
        match &self.state {
            State::Plain(d) => d.buffered(),
            State::Act(buf) | State::Waiting(buf) => buf.len(),
            State::Transport(d) => usize::from(!d.is_idle()),
            State::Sv1 { line, .. } => line.len(),
            State::Lost => 0,
        }
    }

    /// True when no unit (act, frame, line) is partly read.
    pub fn is_idle(&self) -> bool {
        match &self.state {
            State::Plain(d) => d.is_idle(),
            State::Act(buf) => buf.is_empty(),
            State::Waiting(buf) => buf.is_empty(),
            State::Transport(d) => d.is_idle(),
            State::Sv1 { line, skipping } => line.is_empty() && !skipping,
            State::Lost => true,
        }
    }

    /// Hands in this direction's transport keys after the act: bytes that waited are read now, at
    /// `at`. Ignored in any other state.
    pub fn set_decryptor(&mut self, decryptor: Decryptor, at: Timestamp) {
        let waiting = match &mut self.state {
            State::Waiting(buf) => std::mem::take(buf),
            _ => return,
        };
        self.state = State::Transport(Box::new(decryptor));
        self.push(&waiting, at);
    }

    /// There will be no keys for this session: the bytes that waited, and all later ones, are lost.
    pub fn no_keys(&mut self, at: Timestamp) {
        if let State::Waiting(buf) = &self.state {
            let n = buf.len();
            self.lost += n as u64;
            self.state = State::Lost;
            if n > 0 {
                self.events
                    .push_back((at, StreamEvent::Error(StreamError::NoKeys(n))));
            }
        }
    }

    /// True when an event waits to be taken by [`StreamDecoder::next_event`].
    pub fn has_event(&self) -> bool {
        !self.events.is_empty()
    }

    /// The next event, oldest first.
    pub fn next_event(&mut self) -> Option<(Timestamp, StreamEvent)> {
        self.events.pop_front()
    }

    /// Reads `bytes`, received at `at`.
    pub fn push(&mut self, mut bytes: &[u8], at: Timestamp) {
        let act_len = self.act_len();
        while !bytes.is_empty() {
            let used = match &mut self.state {
                State::Lost => {
                    self.lost += bytes.len() as u64;
                    bytes.len()
                }
                State::Plain(decoder) => match decoder.push(bytes) {
                    Ok((used, frame)) => {
                        if let Some(frame) = frame {
                            let mut plain = Vec::with_capacity(6 + frame.payload.len());
                            plain.extend_from_slice(&frame.header.to_bytes());
                            plain.extend_from_slice(&frame.payload);
                            self.events
                                .push_back((at, StreamEvent::Frame { plain, wire: None }));
                        }
                        used
                    }
                    Err(e) => {
                        self.fail(at, StreamError::Frame(e));
                        0
                    }
                },
                State::Act(buf) => {
                    let take = (act_len - buf.len()).min(bytes.len());
                    buf.extend_from_slice(&bytes[..take]);
                    if buf.len() == act_len {
                        let act = if act_len == ACT1_LEN { 1 } else { 2 };
                        let bytes = std::mem::take(buf);
                        self.events.push_back((at, StreamEvent::Act { act, bytes }));
                        self.state = State::Waiting(Vec::new());
                    }
                    take
                }
                State::Waiting(buf) => {
                    let room = MAX_WAITING - buf.len();
                    if bytes.len() > room {
                        let n = buf.len() + bytes.len();
                        self.lost += n as u64;
                        self.state = State::Lost;
                        self.events
                            .push_back((at, StreamEvent::Error(StreamError::NoKeys(n))));
                    } else {
                        buf.extend_from_slice(bytes);
                    }
                    bytes.len()
                }
                State::Transport(decryptor) => match decryptor.push(bytes) {
                    Ok((used, frame)) => {
                        if self.keep_wire {
                            self.wire.extend_from_slice(&bytes[..used]);
                        }
                        if let Some(plain) = frame {
                            let plain = plain.to_vec();
                            let wire = self.keep_wire.then(|| std::mem::take(&mut self.wire));
                            self.events
                                .push_back((at, StreamEvent::Frame { plain, wire }));
                        }
                        used
                    }
                    Err(e) => {
                        self.fail(at, StreamError::Noise(e));
                        0
                    }
                },
                State::Sv1 { line, skipping } => match bytes.iter().position(|&b| b == b'\n') {
                    Some(end) => {
                        if *skipping {
                            *skipping = false;
                        } else if line.len() + end > MAX_LINE {
                            line.clear();
                            self.events
                                .push_back((at, StreamEvent::Error(StreamError::LineTooLong)));
                        } else {
                            line.extend_from_slice(&bytes[..end]);
                            let mut whole = std::mem::take(line);
                            if whole.last() == Some(&b'\r') {
                                whole.pop();
                            }
                            self.events.push_back((at, StreamEvent::Sv1Line(whole)));
                        }
                        end + 1
                    }
                    None => {
                        if !*skipping {
                            if line.len() + bytes.len() > MAX_LINE {
                                line.clear();
                                *skipping = true;
                                self.events
                                    .push_back((at, StreamEvent::Error(StreamError::LineTooLong)));
                            } else {
                                line.extend_from_slice(bytes);
                            }
                        }
                        bytes.len()
                    }
                },
            };
            bytes = &bytes[used..];
        }
    }

    fn fail(&mut self, at: Timestamp, error: StreamError) {
        self.state = State::Lost;
        self.wire.clear();
        self.events.push_back((at, StreamEvent::Error(error)));
    }
}

/// What the first bytes of a client's direction look like, for a capture that must guess how to read
/// a connection: SV1 when they are text that starts a JSON object, plain SV2 when they are a
/// SetupConnection header, Noise otherwise (an ElligatorSwift key is indistinguishable from random
/// bytes, so one in 256 act 1s starts with `{`: the text test is what tells them apart). `None`
/// until [`CLASSIFY_LEN`] bytes have come (or fewer ending in a newline).
pub fn classify_client_start(first: &[u8]) -> Option<Mode> {
    let head = &first[..first.len().min(CLASSIFY_LEN)];
    if head.len() < CLASSIFY_LEN && !head.contains(&b'\n') {
        return None;
    }
    let text = head
        .iter()
        .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace());
    if text && head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        return Some(Mode::Sv1);
    }
    // SetupConnection: extension_type 0, msg_type 0x00, and a length a SetupConnection can have
    // (at least 1+2+2+4+1+2+1+1+1+1 bytes, at most that plus 5 x 255).
    // (A line shorter than a header, e.g. a bare newline, is no SetupConnection.)
    if let Some(h) = first.first_chunk::<6>() {
        let length = usize::from(h[3]) | usize::from(h[4]) << 8 | usize::from(h[5]) << 16;
        if h[..3] == [0, 0, 0] && (16..=16 + 5 * 255).contains(&length) {
            return Some(Mode::Sv2);
        }
    }
    Some(Mode::Noise)
}

/// What bytes that were not what a peer should have sent look like, for a log line or an error: a
/// length-prefixed handshake act (the framing of Noise acts before the spec fixed them: a 2-byte
/// little-endian length, then the act), a plaintext SetupConnection, Stratum V1 JSON or HTTP. `None` when they look like nothing in particular (random bytes).
pub fn looks_like(bytes: &[u8]) -> Option<&'static str> {
    if bytes.len() >= 3 {
        let prefix = usize::from(u16::from_le_bytes([bytes[0], bytes[1]]));
        let rest = bytes.len() - 2;
        // The prefix of what came, or of a whole act of which only part came.
        if prefix == rest || (rest < prefix && [32, ACT1_LEN, ACT2_LEN].contains(&prefix)) {
            return Some(
                "pre-standard framing: a 2-byte little-endian length prefix, then the act (the \
                 spec's acts have no prefix)",
            );
        }
    }
    let text = !bytes.is_empty()
        && bytes
            .iter()
            .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace());
    if text {
        let trimmed = bytes.trim_ascii_start();
        if trimmed.starts_with(b"{") {
            return Some("Stratum V1 (JSON-RPC text), not SV2");
        }
        const HTTP: [&[u8]; 9] = [
            b"HTTP/",
            b"GET ",
            b"POST ",
            b"PUT ",
            b"HEAD ",
            b"OPTIONS ",
            b"DELETE ",
            b"PATCH ",
            b"CONNECT ",
        ];
        if HTTP.iter().any(|m| trimmed.starts_with(m)) {
            return Some("HTTP, not SV2");
        }
        // Other text is shown as text by whoever shows the bytes.
        return None;
    }
    if bytes.len() >= CLASSIFY_LEN && classify_client_start(bytes) == Some(Mode::Sv2) {
        return Some("a plaintext SetupConnection: the peer does not use Noise");
    }
    None
}
