//! One SV2 connection over any async byte stream, the thin tokio driver of the conversation layer: the
//! Noise NX handshake as initiator or responder (or plaintext), then whole frames in and out. What comes
//! in is read by a [`StreamDecoder`]; every act and frame, both ways, is recorded in a [`Transcript`]
//! with the connection's [`Side`]. Every read has a deadline, and a failure names the step it happened
//! in. A finished handshake writes its key log line to the [`KeyLog`] the connection is given.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sv2_codec::noise::{
    Encryptor, Established, Initiator, InitiatorConfig, NoiseError, Responder, ResponderConfig,
    ACT1_LEN,
};
use sv2_codec::{to_frame_bytes, Decoded, EncodeError, Message};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::decoder::{Mode, StreamDecoder, StreamError, StreamEvent};
use crate::keylog::KeyLog;
use crate::transcript::{Endpoints, Event, FrameProblem, Side, Timestamp, Transcript};

/// Unix time in seconds, for certificate checks.
pub fn unix_now() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
        .unwrap_or(0)
}

/// Why a connection step failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The socket failed.
    #[error("{step}: {source}")]
    Io {
        step: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The peer closed the connection. `received`: the bytes of an incomplete handshake act that
    /// came before (empty otherwise: a frame's partial bytes are inside the decoder).
    #[error("{}{}", self.brief(), shown(step, received))]
    Closed {
        step: &'static str,
        received: Vec<u8>,
    },
    /// Nothing (or not enough) came in time. `received` as for [`NetError::Closed`].
    #[error("{}{}", self.brief(), shown(step, received))]
    Timeout {
        step: &'static str,
        after: Duration,
        received: Vec<u8>,
    },
    /// The handshake or the encrypted transport failed.
    #[error("{step}: {source}")]
    Noise {
        step: &'static str,
        #[source]
        source: NoiseError,
    },
    /// A plaintext frame was refused (too large), or the bytes of an encrypted session came with no
    /// keys to read them.
    #[error("{step}: {source}")]
    Stream {
        step: &'static str,
        #[source]
        source: StreamError,
    },
    /// A frame arrived that does not decode strictly; its bytes are kept.
    #[error("{step}: frame {} does not decode: {source}", hex::encode(frame))]
    Decode {
        step: &'static str,
        frame: Vec<u8>,
        #[source]
        source: sv2_codec::DecodeError,
    },
    /// The first bytes of a plaintext connection cannot begin a frame this side reads (the header
    /// names no message it knows: SV1 JSON, HTTP or random bytes, read as a header); they are kept.
    #[error("{step}: not an SV2 frame: {reason}{}", shown(step, received))]
    NotAFrame {
        step: &'static str,
        reason: String,
        received: Vec<u8>,
    },
    /// A message could not be encoded.
    #[error("{step}: {source}")]
    Encode {
        step: &'static str,
        #[source]
        source: EncodeError,
    },
}

impl NetError {
    /// The error without the received bytes, for callers that show the bytes their own way (the
    /// message of [`NetError::Closed`] and [`NetError::Timeout`] is this, then the bytes).
    pub fn brief(&self) -> String {
        match self {
            NetError::Closed { step, .. } => format!("{step}: the peer closed the connection"),
            NetError::Timeout { step, after, .. } => format!("{step}: no answer within {after:?}"),
            other => other.to_string(),
        }
    }
}

/// How [`Connection::send_frame_shaped`] puts a frame on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WireShape {
    /// Flip this bit (counted from the first byte on the wire, modulo their number).
    pub flip_wire_bit: Option<usize>,
    /// Flip the low bit of the last byte on the wire (under Noise, a MAC: the frame fails to
    /// authenticate).
    pub flip_last_byte: bool,
    /// Write at most this many bytes at a time.
    pub chunk: Option<usize>,
    /// Wait this long between pieces.
    pub pause: Duration,
}

/// A handshake that failed, with what was recorded of it.
#[derive(Debug)]
pub struct HandshakeFailure {
    pub error: NetError,
    /// Act 1 as sent, whatever came back, and the error as a note.
    pub transcript: Transcript,
}

/// The step that reads the client's act 1 (the responder's).
pub const ACT1_STEP: &str = "handshake act 1";
/// The step that reads the server's act 2 (the initiator's).
pub const ACT2_STEP: &str = "handshake act 2";

/// The act a step reads and its length, for the handshake steps.
fn act_of(step: &str) -> Option<(u8, usize)> {
    match step {
        ACT1_STEP => Some((1, sv2_codec::noise::ACT1_LEN)),
        ACT2_STEP => Some((2, sv2_codec::noise::ACT2_LEN)),
        _ => None,
    }
}

/// The bytes of an incomplete act (or of what was not a frame) for an error message: for a handshake
/// step what the act should have been, then their count and up to 64 of them in hex, as text when
/// they read as text (an HTTP or Stratum V1 peer), and what they look like
/// ([`crate::decoder::looks_like`]: pre-standard length-prefixed acts, SV1, HTTP).
fn shown(step: &str, received: &[u8]) -> String {
    let expected = act_of(step);
    if received.is_empty() {
        return match expected {
            Some((act, len)) => format!("; nothing came (act {act} is {len} bytes)"),
            None => String::new(),
        };
    }
    let head = &received[..received.len().min(64)];
    let more = if received.len() > head.len() {
        "..."
    } else {
        ""
    };
    let mut text = match expected {
        Some((act, len)) => format!("; act {act} is {len} bytes, {} came", received.len()),
        None => String::new(),
    };
    text.push_str(&format!(
        "; received {} B: {}{more}",
        received.len(),
        hex::encode(head)
    ));
    if head
        .iter()
        .all(|b| b.is_ascii_graphic() || matches!(b, b' ' | b'\r' | b'\n' | b'\t'))
    {
        text.push_str(&format!(" ({:?})", String::from_utf8_lossy(head)));
    }
    if let Some(like) = crate::decoder::looks_like(received) {
        text.push_str(&format!("; this looks like {like}"));
    }
    text
}

/// What the Noise handshake established, with its timings.
#[derive(Debug, Clone)]
pub struct HandshakeInfo {
    /// The session's keys, certificate and hash.
    pub established: Established,
    /// From sending act 1 (initiator) or receiving it (responder) to the end of the handshake.
    pub duration: Duration,
}

/// An SV2 connection.
pub struct Connection<S> {
    stream: S,
    side: Side,
    /// Reads what comes in.
    incoming: StreamDecoder,
    /// Encrypts what goes out (encrypted connections).
    encryptor: Option<Box<Encryptor>>,
    started: Instant,
    /// Every act and frame so far.
    pub transcript: Transcript,
    /// The handshake, when the connection is encrypted.
    pub handshake: Option<HandshakeInfo>,
    out: Vec<u8>,
    chunk: Vec<u8>,
    /// The peer's act began with a 2-byte little-endian prefix equal to the act's length.
    act_prefixed: bool,
}

impl<S> std::fmt::Debug for Connection<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("side", &self.side)
            .field("encrypted", &self.handshake.is_some())
            .field("entries", &self.transcript.len())
            .finish_non_exhaustive()
    }
}

impl Connection<TcpStream> {
    /// Ends the connection with a reset (RST) instead of a close: the peer's next read fails with
    /// "connection reset". Returns the transcript.
    pub fn reset(mut self) -> Transcript {
        let _ = self.stream.set_zero_linger();
        self.transcript
            .note(Timestamp::now(), "connection reset (RST) sent");
        std::mem::take(&mut self.transcript)
    }

    /// Names both ends of the TCP connection in the transcript.
    pub fn record_endpoints(&mut self) {
        self.transcript.endpoints = Endpoints::seen_from(
            self.side,
            self.stream.local_addr().ok(),
            self.stream.peer_addr().ok(),
        );
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    fn new(stream: S, side: Side, incoming: StreamDecoder) -> Self {
        Self {
            stream,
            side,
            incoming,
            encryptor: None,
            started: Instant::now(),
            transcript: Transcript::default(),
            handshake: None,
            out: Vec::new(),
            chunk: Vec::new(),
            act_prefixed: false,
        }
    }

    /// A plaintext connection (spec §4: only on a local network), at `side`.
    pub fn plaintext(stream: S, side: Side) -> Self {
        Self::new(
            stream,
            side,
            StreamDecoder::new(side.receiving(), Mode::Sv2),
        )
    }

    /// Runs the handshake as initiator: sends act 1, reads act 2 within `timeout`, checks the
    /// certificate at `now` (unix seconds; for tests of validity windows).
    pub async fn initiate(
        stream: S,
        config: InitiatorConfig,
        now: u32,
        timeout: Duration,
        key_log: &KeyLog,
    ) -> Result<Self, NetError> {
        Self::initiate_with_clock(stream, config, &|| now, timeout, key_log).await
    }

    /// As [`Connection::initiate`], checking the certificate at the system time read when act 2 has
    /// arrived (not before act 1: a responder dates a fresh certificate from its own clock when it
    /// writes act 2, and wall clocks do step).
    pub async fn initiate_now(
        stream: S,
        config: InitiatorConfig,
        timeout: Duration,
        key_log: &KeyLog,
    ) -> Result<Self, NetError> {
        Self::initiate_with_clock(stream, config, &unix_now, timeout, key_log).await
    }

    /// A client's connection to an upstream: Noise NX as initiator when `noise` is `Some` (the
    /// certificate checked against the authority key it holds, or not checked when that is
    /// `None`), plain frames when it is `None` ([`Connection::initiate_now`] or
    /// [`Connection::plaintext`]).
    pub async fn initiate_or_plain(
        stream: S,
        noise: Option<Option<sv2_codec::noise::keys::AuthorityPublicKey>>,
        timeout: Duration,
        key_log: &KeyLog,
    ) -> Result<Self, NetError> {
        match noise {
            Some(authority) => {
                let config = match authority {
                    Some(key) => InitiatorConfig::new(key),
                    None => InitiatorConfig::unauthenticated(),
                };
                Self::initiate_now(stream, config, timeout, key_log).await
            }
            None => Ok(Self::plaintext(stream, Side::Client)),
        }
    }

    /// As [`Connection::initiate_now`], giving back on failure what was recorded of the attempt (act
    /// 1 as sent, what came back, the error as a note): evidence for a caller that retries.
    pub async fn initiate_now_recorded(
        stream: S,
        config: InitiatorConfig,
        timeout: Duration,
        key_log: &KeyLog,
    ) -> Result<Self, HandshakeFailure> {
        let mut conn = Self::noise(stream, Side::Client);
        match conn
            .run_initiator(config, &unix_now, timeout, key_log)
            .await
        {
            Ok(()) => Ok(conn),
            Err(error) => {
                if !matches!(error, NetError::Noise { .. }) {
                    // A refused act is noted where it is refused; the rest here.
                    conn.transcript
                        .note(Timestamp::now(), format!("handshake failed: {error}"));
                }
                Err(HandshakeFailure {
                    error,
                    transcript: std::mem::take(&mut conn.transcript),
                })
            }
        }
    }

    async fn initiate_with_clock(
        stream: S,
        config: InitiatorConfig,
        clock: &(dyn Fn() -> u32 + Sync),
        timeout: Duration,
        key_log: &KeyLog,
    ) -> Result<Self, NetError> {
        let mut conn = Self::noise(stream, Side::Client);
        conn.run_initiator(config, clock, timeout, key_log).await?;
        Ok(conn)
    }

    async fn run_initiator(
        &mut self,
        config: InitiatorConfig,
        clock: &(dyn Fn() -> u32 + Sync),
        timeout: Duration,
        key_log: &KeyLog,
    ) -> Result<(), NetError> {
        let noise = |step, source| NetError::Noise { step, source };
        let mut initiator: Initiator =
            Initiator::generate(config).map_err(|e| noise(ACT1_STEP, e))?;
        let act1 = initiator.write_act1().map_err(|e| noise(ACT1_STEP, e))?;
        self.send_act(1, &act1, ACT1_STEP).await?;
        let act2 = self.read_act(ACT2_STEP, timeout).await?;
        let established = initiator
            .read_act2(&act2, clock())
            .map_err(|e| self.handshake_failed(ACT2_STEP, e))?;
        let started = self.started;
        self.established(established, started, key_log);
        Ok(())
    }

    /// Runs the handshake as responder: reads act 1 within `timeout`, answers act 2.
    pub async fn respond(
        stream: S,
        config: ResponderConfig,
        timeout: Duration,
        key_log: &KeyLog,
    ) -> Result<Self, NetError> {
        let mut conn = Self::noise(stream, Side::Server);
        let mut responder: Responder =
            Responder::generate(config).map_err(|source| NetError::Noise {
                step: ACT1_STEP,
                source,
            })?;
        let act1 = conn.read_act(ACT1_STEP, timeout).await?;
        conn.act_prefixed = act1[..2] == (ACT1_LEN as u16).to_le_bytes();
        let accepted = Instant::now();
        let (act2, established) = responder
            .read_act1(&act1)
            .map_err(|e| conn.handshake_failed(ACT1_STEP, e))?;
        conn.send_act(2, &act2, ACT2_STEP).await?;
        conn.established(established, accepted, key_log);
        Ok(conn)
    }

    /// A connection about to run the handshake at `side`: the decoder expects the peer's act.
    fn noise(stream: S, side: Side) -> Self {
        Self::new(
            stream,
            side,
            StreamDecoder::new(side.receiving(), Mode::Noise),
        )
    }

    /// Records and sends this side's handshake act.
    async fn send_act(
        &mut self,
        act: u8,
        bytes: &[u8],
        step: &'static str,
    ) -> Result<(), NetError> {
        self.transcript
            .handshake(Timestamp::now(), self.side.sending(), act, bytes);
        write_all(&mut self.stream, bytes, step).await
    }

    /// Notes a refused act in the transcript; the error for `step`.
    fn handshake_failed(&mut self, step: &'static str, source: NoiseError) -> NetError {
        self.transcript
            .note(Timestamp::now(), format!("handshake failed: {source}"));
        NetError::Noise { step, source }
    }

    /// Reads the peer's handshake act within `timeout`; only its own bytes are read.
    async fn read_act(
        &mut self,
        step: &'static str,
        timeout: Duration,
    ) -> Result<Vec<u8>, NetError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some((at, event)) = self.incoming.next_event() {
                let act = match &event {
                    StreamEvent::Act { bytes, .. } => Some(bytes.clone()),
                    _ => None,
                };
                event.record(self.side.receiving(), at, &mut self.transcript);
                if let Some(act) = act {
                    return Ok(act);
                }
                continue;
            }
            // Only the act's own bytes: what follows it stays in the socket for the step that reads it.
            let left = self.incoming.act_len() - self.incoming.partial().len();
            self.read_more(step, timeout, deadline, left).await?;
        }
    }

    /// The handshake is done: keys to the decoder and the encryptor, the key log line written.
    fn established(&mut self, established: Established, since: Instant, key_log: &KeyLog) {
        let (encryptor, decryptor) = established.transport.clone().split();
        self.incoming.set_decryptor(decryptor, Timestamp::now());
        self.encryptor = Some(Box::new(encryptor));
        if let Some(problem) = key_log.record(&established.key_log_entry()) {
            self.transcript.note(Timestamp::now(), problem);
        }
        self.handshake = Some(HandshakeInfo {
            established,
            duration: since.elapsed(),
        });
    }

    /// Whether the peer's handshake act began with a 2-byte little-endian length equal to the act's
    /// (`40 00` for act 1): any 64 bytes are an act, so the handshake went on, but when the session
    /// then fails at once this was likely a pre-standard, length-prefixed act (1 in 65,536 random
    /// keys begin so).
    pub fn act_looks_prefixed(&self) -> bool {
        self.act_prefixed
    }

    /// Time since the connection began.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Sends a message (encoded strictly, encrypted if the connection is).
    pub async fn send(&mut self, message: &Message<'_>) -> Result<(), NetError> {
        let frame = to_frame_bytes(message, &[]).map_err(|source| NetError::Encode {
            step: "encode",
            source,
        })?;
        self.send_frame(&frame, message.name()).await
    }

    /// Sends a plain frame as given (header and payload), encrypted if the connection is. For scripted
    /// and hostile peers: the bytes need not be a valid message, but the header's msg_length must match
    /// the payload for encryption.
    pub async fn send_frame(&mut self, frame: &[u8], step: &'static str) -> Result<(), NetError> {
        self.out.clear();
        let wire = match &mut self.encryptor {
            None => {
                self.out.extend_from_slice(frame);
                None
            }
            Some(encryptor) => {
                encryptor
                    .encrypt_frame(frame, &mut self.out)
                    .map_err(|source| NetError::Noise { step, source })?;
                Some(&self.out[..])
            }
        };
        self.transcript
            .frame(Timestamp::now(), self.side.sending(), frame, wire);
        let out = std::mem::take(&mut self.out);
        let result = write_all(&mut self.stream, &out, step).await;
        self.out = out;
        result
    }

    /// Sends a plain frame as [`Connection::send_frame`] does, but shaped on the wire by `shape`: a
    /// bit of the bytes on the wire flipped after encryption (a broken MAC under Noise), and the bytes
    /// written in pieces of `chunk` bytes with `pause` between them (split or trickled writes). The
    /// transcript records the frame and the bytes as they went out.
    pub async fn send_frame_shaped(
        &mut self,
        frame: &[u8],
        step: &'static str,
        shape: &WireShape,
    ) -> Result<(), NetError> {
        self.out.clear();
        match &mut self.encryptor {
            None => self.out.extend_from_slice(frame),
            Some(encryptor) => {
                // The header as given, even when its msg_length lies (a hostile peer's frame).
                let (header, payload) = frame.split_first_chunk::<6>().ok_or(NetError::Noise {
                    step,
                    source: sv2_codec::noise::NoiseError::WrongLength {
                        what: "plain frame",
                        expected: 6,
                        got: frame.len(),
                    },
                })?;
                encryptor
                    .encrypt_parts_unchecked(header, payload, &mut self.out)
                    .map_err(|source| NetError::Noise { step, source })?
            }
        }
        if let Some(bit) = shape.flip_wire_bit {
            if !self.out.is_empty() {
                let bit = bit % (self.out.len() * 8);
                self.out[bit / 8] ^= 1 << (bit % 8);
            }
        }
        if shape.flip_last_byte {
            if let Some(last) = self.out.last_mut() {
                *last ^= 1;
            }
        }
        let wire = self.encryptor.is_some().then_some(&self.out[..]);
        self.transcript
            .frame(Timestamp::now(), self.side.sending(), frame, wire);
        let out = std::mem::take(&mut self.out);
        let chunk = shape.chunk.unwrap_or(out.len()).max(1);
        let mut result = Ok(());
        for (i, piece) in out.chunks(chunk).enumerate() {
            if i > 0 && !shape.pause.is_zero() {
                tokio::time::sleep(shape.pause).await;
            }
            result = write_all(&mut self.stream, piece, step).await;
            if result.is_err() {
                break;
            }
        }
        self.out = out;
        result
    }

    /// Sends raw bytes on the wire as they are, bypassing framing and encryption (hostile tests).
    pub async fn send_raw(&mut self, bytes: &[u8], step: &'static str) -> Result<(), NetError> {
        self.transcript.note(
            Timestamp::now(),
            format!("raw bytes sent: {}", hex::encode(bytes)),
        );
        write_all(&mut self.stream, bytes, step).await
    }

    /// Receives the next frame within `timeout` and decodes it strictly. A frame that does not decode
    /// is an error that carries its bytes (and stays in the transcript); the connection remains usable.
    pub async fn recv(
        &mut self,
        step: &'static str,
        timeout: Duration,
    ) -> Result<Decoded<'static>, NetError> {
        let frame = self.recv_frame(step, timeout).await?;
        // The frame was decoded once, when the transcript recorded it (its newest entry).
        match self.transcript.entries().back().map(|e| &e.event) {
            Some(Event::Frame {
                decoded: Ok(decoded),
                ..
            }) => Ok((**decoded).clone()),
            Some(Event::Frame {
                decoded: Err(FrameProblem::Decode(source)),
                ..
            }) => Err(NetError::Decode {
                step,
                frame,
                source: source.clone(),
            }),
            Some(Event::Frame {
                decoded: Err(FrameProblem::Frame(source)),
                ..
            }) => Err(NetError::Stream {
                step,
                source: StreamError::Frame(source.clone()),
            }),
            _ => unreachable!("recv_frame records the frame last"),
        }
    }

    /// Receives the next plain frame (header and payload) within `timeout`, recorded in the
    /// transcript with its strict decoding.
    pub async fn recv_frame(
        &mut self,
        step: &'static str,
        timeout: Duration,
    ) -> Result<Vec<u8>, NetError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.incoming.next_event() {
                Some((at, StreamEvent::Frame { plain, wire })) => {
                    let direction = self.side.receiving();
                    self.transcript
                        .frame_owned(at, direction, plain.clone(), wire);
                    return Ok(plain);
                }
                Some((at, event)) => {
                    let error = match &event {
                        StreamEvent::Error(e) => Some(e.clone()),
                        // Not expected after the handshake (acts come first; SV1 is not read here).
                        _ => None,
                    };
                    event.record(self.side.receiving(), at, &mut self.transcript);
                    match error {
                        Some(StreamError::Noise(source)) => {
                            return Err(NetError::Noise { step, source })
                        }
                        Some(source) => return Err(NetError::Stream { step, source }),
                        None => {}
                    }
                }
                None => {
                    self.read_more(step, timeout, deadline, READ_CHUNK).await?;
                }
            }
        }
    }

    /// Reads once from the stream (at most `max` bytes) into the decoder; a timeout or a close is an
    /// error naming `step`, with the bytes of an incomplete handshake act.
    async fn read_more(
        &mut self,
        step: &'static str,
        timeout: Duration,
        deadline: tokio::time::Instant,
        max: usize,
    ) -> Result<usize, NetError> {
        if self.chunk.len() != READ_CHUNK {
            self.chunk = vec![0u8; READ_CHUNK];
        }
        let max = max.clamp(1, READ_CHUNK);
        let read =
            tokio::time::timeout_at(deadline, self.stream.read(&mut self.chunk[..max])).await;
        match read {
            Err(_) => {
                self.transcript.note(
                    Timestamp::now(),
                    format!("{step}: timeout after {timeout:?}"),
                );
                Err(NetError::Timeout {
                    step,
                    after: timeout,
                    received: self.incoming.partial().to_vec(),
                })
            }
            Ok(Err(source)) => Err(NetError::Io { step, source }),
            Ok(Ok(0)) => {
                self.transcript
                    .note(Timestamp::now(), format!("{step}: peer closed"));
                Err(NetError::Closed {
                    step,
                    received: self.incoming.partial().to_vec(),
                })
            }
            Ok(Ok(n)) => {
                self.incoming.push(&self.chunk[..n], Timestamp::now());
                Ok(n)
            }
        }
    }

    /// A plaintext server's wait for the first frame: reads until a whole frame (or what the decoder
    /// makes of the bytes) waits for [`Connection::recv`], within `timeout`. As soon as the 6 bytes
    /// of a header are in, `header_ok` judges whether they can begin a frame this side reads (`Err`
    /// with the reason: [`NetError::NotAFrame`]). A timeout or a close keeps the bytes that came
    /// (up to [`FIRST_BYTES_KEPT`]), so that the caller can say what the peer sent instead.
    pub async fn first_frame(
        &mut self,
        step: &'static str,
        timeout: Duration,
        header_ok: impl Fn(&sv2_codec::Header) -> Result<(), String>,
    ) -> Result<(), NetError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut seen: Vec<u8> = Vec::new();
        let mut judged = false;
        loop {
            if self.incoming.has_event() {
                return Ok(());
            }
            if !judged && seen.len() >= sv2_codec::frame::HEADER_LEN {
                judged = true;
                let mut head = [0u8; sv2_codec::frame::HEADER_LEN];
                head.copy_from_slice(&seen[..sv2_codec::frame::HEADER_LEN]);
                if let Err(reason) = header_ok(&sv2_codec::Header::from_bytes(head)) {
                    self.transcript.note(
                        Timestamp::now(),
                        format!("{step}: not an SV2 frame: {reason}"),
                    );
                    return Err(NetError::NotAFrame {
                        step,
                        reason,
                        received: seen,
                    });
                }
            }
            match self.read_more(step, timeout, deadline, READ_CHUNK).await {
                Ok(n) => {
                    let room = FIRST_BYTES_KEPT.saturating_sub(seen.len());
                    seen.extend_from_slice(&self.chunk[..n.min(room)]);
                }
                Err(NetError::Timeout { step, after, .. }) => {
                    return Err(NetError::Timeout {
                        step,
                        after,
                        received: seen,
                    })
                }
                Err(NetError::Closed { step, .. }) => {
                    return Err(NetError::Closed {
                        step,
                        received: seen,
                    })
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Closes the write side.
    pub async fn shutdown(&mut self) {
        let _ = self.stream.shutdown().await;
    }

    /// Ends the connection politely: the write side closes (the peer reads everything sent, then
    /// the end), and what the peer still sends is read and recorded until it closes too or
    /// `linger` passes. Dropping a socket with unread bytes makes the kernel reset the connection,
    /// and a reset can make the peer lose what it had not read yet (a CloseChannel, say).
    pub async fn close(&mut self, linger: Duration) {
        let _ = self.stream.shutdown().await;
        let deadline = tokio::time::Instant::now() + linger;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                break;
            }
            match self.recv_frame("closing", left).await {
                Ok(_) | Err(NetError::Decode { .. }) => {}
                Err(_) => break,
            }
        }
    }
}

/// The first bytes of a connection kept by [`Connection::first_frame`] to show them.
pub const FIRST_BYTES_KEPT: usize = 1024;

/// Bytes read from the stream at a time.
const READ_CHUNK: usize = 64 * 1024;

async fn write_all<S: AsyncWrite + Unpin>(
    stream: &mut S,
    bytes: &[u8],
    step: &'static str,
) -> Result<(), NetError> {
    stream
        .write_all(bytes)
        .await
        .map_err(|source| NetError::Io { step, source })?;
    stream
        .flush()
        .await
        .map_err(|source| NetError::Io { step, source })
}
