//! One SV2 connection over any async byte stream: the Noise NX handshake as initiator or responder (or
//! plaintext), then whole frames in and out, every act and frame recorded in a [`Transcript`]. Every read
//! has a deadline, and a failure names the step it happened in.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sv2_codec::noise::{
    Decryptor, Encryptor, Established, Initiator, InitiatorConfig, NoiseError, Responder,
    ResponderConfig, ACT1_LEN, ACT2_LEN,
};
use sv2_codec::{
    decode_frame, frame::MAX_PAYLOAD_LEN, to_frame_bytes, Decoded, EncodeError, Frame,
    FrameDecoder, Message,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::transcript::{Direction, Transcript};

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
    #[error("{}{}", self.brief(), shown(received))]
    Closed {
        step: &'static str,
        received: Vec<u8>,
    },
    /// Nothing (or not enough) came in time. `received` as for [`NetError::Closed`].
    #[error("{}{}", self.brief(), shown(received))]
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
    /// A plaintext frame was refused (too large).
    #[error("{step}: {source}")]
    Frame {
        step: &'static str,
        #[source]
        source: sv2_codec::FrameError,
    },
    /// A frame arrived that does not decode strictly; its bytes are kept.
    #[error("{step}: frame {} does not decode: {source}", hex::encode(frame))]
    Decode {
        step: &'static str,
        frame: Vec<u8>,
        #[source]
        source: sv2_codec::DecodeError,
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

/// The bytes of an incomplete act for an error message: their count and up to 64 of them in hex,
/// and as text when they read as text (an HTTP or Stratum V1 server answering the handshake).
fn shown(received: &[u8]) -> String {
    if received.is_empty() {
        return String::new();
    }
    let head = &received[..received.len().min(64)];
    let more = if received.len() > head.len() {
        "..."
    } else {
        ""
    };
    let mut text = format!(
        "; received {} B: {}{more}",
        received.len(),
        hex::encode(head)
    );
    if head
        .iter()
        .all(|b| b.is_ascii_graphic() || matches!(b, b' ' | b'\r' | b'\n' | b'\t'))
    {
        text.push_str(&format!(" ({:?})", String::from_utf8_lossy(head)));
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

/// How the frames travel.
enum Channel {
    Plain(FrameDecoder),
    Noise(Box<(Encryptor, Decryptor)>),
}

/// An SV2 connection.
pub struct Connection<S> {
    stream: S,
    channel: Channel,
    /// Bytes read from the stream but not yet fed to the decoder.
    pending: Vec<u8>,
    started: Instant,
    /// Every act and frame so far.
    pub transcript: Transcript,
    /// The handshake, when the connection is encrypted.
    pub handshake: Option<HandshakeInfo>,
    out: Vec<u8>,
}

impl<S> std::fmt::Debug for Connection<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("encrypted", &self.handshake.is_some())
            .field("events", &self.transcript.entries.len())
            .finish_non_exhaustive()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    fn new(stream: S, channel: Channel, started: Instant, transcript: Transcript) -> Self {
        Self {
            stream,
            channel,
            pending: Vec::new(),
            started,
            transcript,
            handshake: None,
            out: Vec::new(),
        }
    }

    /// A connection after a finished handshake; its duration is counted from `since`.
    fn encrypted(
        stream: S,
        established: Established,
        started: Instant,
        transcript: Transcript,
        since: Instant,
    ) -> Self {
        let (encryptor, decryptor) = established.transport.clone().split();
        let mut transcript = transcript;
        if let Some(problem) = super::keylog::record(&established.key_log_entry()) {
            transcript.note(started.elapsed(), problem);
        }
        let mut connection = Self::new(
            stream,
            Channel::Noise(Box::new((encryptor, decryptor))),
            started,
            transcript,
        );
        connection.handshake = Some(HandshakeInfo {
            established,
            duration: since.elapsed(),
        });
        connection
    }

    /// A plaintext connection (spec §4: only on a local network).
    pub fn plaintext(stream: S) -> Self {
        Self::new(
            stream,
            Channel::Plain(FrameDecoder::new(MAX_PAYLOAD_LEN)),
            Instant::now(),
            Transcript::default(),
        )
    }

    /// Runs the handshake as initiator: sends act 1, reads act 2 within `timeout`, checks the
    /// certificate at `now` (unix seconds; for tests of validity windows).
    pub async fn initiate(
        stream: S,
        config: InitiatorConfig,
        now: u32,
        timeout: Duration,
    ) -> Result<Self, NetError> {
        Self::initiate_with_clock(stream, config, &|| now, timeout).await
    }

    /// As [`Connection::initiate`], checking the certificate at the system time read when act 2 has
    /// arrived (not before act 1: a responder dates a fresh certificate from its own clock when it
    /// writes act 2, and wall clocks do step).
    pub async fn initiate_now(
        stream: S,
        config: InitiatorConfig,
        timeout: Duration,
    ) -> Result<Self, NetError> {
        Self::initiate_with_clock(stream, config, &unix_now, timeout).await
    }

    async fn initiate_with_clock(
        mut stream: S,
        config: InitiatorConfig,
        clock: &(dyn Fn() -> u32 + Sync),
        timeout: Duration,
    ) -> Result<Self, NetError> {
        let started = Instant::now();
        let mut transcript = Transcript::default();
        let noise = |step, source| NetError::Noise { step, source };
        let mut initiator: Initiator =
            Initiator::generate(config).map_err(|e| noise("handshake act 1", e))?;
        let act1 = initiator
            .write_act1()
            .map_err(|e| noise("handshake act 1", e))?;
        write_all(&mut stream, &act1, "handshake act 1").await?;
        transcript.handshake(started.elapsed(), Direction::Sent, 1, &act1);
        let mut act2 = [0u8; ACT2_LEN];
        read_exact(&mut stream, &mut act2, "handshake act 2", timeout).await?;
        transcript.handshake(started.elapsed(), Direction::Received, 2, &act2);
        let established = match initiator.read_act2(&act2, clock()) {
            Ok(established) => established,
            Err(e) => {
                transcript.note(started.elapsed(), format!("handshake failed: {e}"));
                return Err(noise("handshake act 2", e));
            }
        };
        Ok(Self::encrypted(
            stream,
            established,
            started,
            transcript,
            started,
        ))
    }

    /// Runs the handshake as responder: reads act 1 within `timeout`, answers act 2.
    pub async fn respond(
        mut stream: S,
        config: ResponderConfig,
        timeout: Duration,
    ) -> Result<Self, NetError> {
        let mut transcript = Transcript::default();
        let started = Instant::now();
        let noise = |step, source| NetError::Noise { step, source };
        let mut responder: Responder =
            Responder::generate(config).map_err(|e| noise("handshake act 1", e))?;
        let mut act1 = [0u8; ACT1_LEN];
        read_exact(&mut stream, &mut act1, "handshake act 1", timeout).await?;
        let accepted = Instant::now();
        transcript.handshake(started.elapsed(), Direction::Received, 1, &act1);
        let (act2, established) = match responder.read_act1(&act1) {
            Ok(done) => done,
            Err(e) => {
                transcript.note(started.elapsed(), format!("handshake failed: {e}"));
                return Err(noise("handshake act 1", e));
            }
        };
        write_all(&mut stream, &act2, "handshake act 2").await?;
        transcript.handshake(started.elapsed(), Direction::Sent, 2, &act2);
        Ok(Self::encrypted(
            stream,
            established,
            started,
            transcript,
            accepted,
        ))
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
        self.transcript
            .frame(self.started.elapsed(), Direction::Sent, frame);
        self.out.clear();
        match &mut self.channel {
            Channel::Plain(_) => self.out.extend_from_slice(frame),
            Channel::Noise(noise) => noise
                .0
                .encrypt_frame(frame, &mut self.out)
                .map_err(|source| NetError::Noise { step, source })?,
        }
        let out = std::mem::take(&mut self.out);
        let result = write_all(&mut self.stream, &out, step).await;
        self.out = out;
        result
    }

    /// Sends raw bytes on the wire as they are, bypassing framing and encryption (hostile tests).
    pub async fn send_raw(&mut self, bytes: &[u8], step: &'static str) -> Result<(), NetError> {
        self.transcript.note(
            self.started.elapsed(),
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
        match Frame::parse(&frame) {
            Ok((parsed, _)) => decode_frame(&parsed)
                .map(Decoded::into_static)
                .map_err(|source| NetError::Decode {
                    step,
                    frame: frame.clone(),
                    source,
                }),
            Err(source) => Err(NetError::Frame { step, source }),
        }
    }

    /// Receives the next plain frame (header and payload) within `timeout`.
    pub async fn recv_frame(
        &mut self,
        step: &'static str,
        timeout: Duration,
    ) -> Result<Vec<u8>, NetError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            if let Some(frame) = self.take_frame(step)? {
                self.transcript
                    .frame(self.started.elapsed(), Direction::Received, &frame);
                return Ok(frame);
            }
            let read = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await;
            match read {
                Err(_) => {
                    self.transcript.note(
                        self.started.elapsed(),
                        format!("{step}: timeout after {timeout:?}"),
                    );
                    return Err(NetError::Timeout {
                        step,
                        after: timeout,
                        received: Vec::new(),
                    });
                }
                Ok(Err(source)) => return Err(NetError::Io { step, source }),
                Ok(Ok(0)) => {
                    self.transcript
                        .note(self.started.elapsed(), format!("{step}: peer closed"));
                    return Err(NetError::Closed {
                        step,
                        received: Vec::new(),
                    });
                }
                Ok(Ok(n)) => self.pending.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Feeds pending bytes to the decoder until a frame completes or the bytes run out.
    fn take_frame(&mut self, step: &'static str) -> Result<Option<Vec<u8>>, NetError> {
        let mut used_total = 0;
        let mut result = None;
        match &mut self.channel {
            Channel::Plain(decoder) => {
                while used_total < self.pending.len() {
                    let (used, frame) = decoder
                        .push(&self.pending[used_total..])
                        .map_err(|source| NetError::Frame { step, source })?;
                    used_total += used;
                    if let Some(frame) = frame {
                        let mut bytes = frame.header.to_bytes().to_vec();
                        bytes.extend_from_slice(&frame.payload);
                        result = Some(bytes);
                        break;
                    }
                }
            }
            Channel::Noise(noise) => {
                let decryptor = &mut noise.1;
                while used_total < self.pending.len() {
                    let (used, frame) = decryptor
                        .push(&self.pending[used_total..])
                        .map_err(|source| NetError::Noise { step, source })?;
                    used_total += used;
                    if let Some(frame) = frame {
                        result = Some(frame.to_vec());
                        break;
                    }
                }
            }
        }
        self.pending.drain(..used_total);
        Ok(result)
    }

    /// Closes the write side.
    pub async fn shutdown(&mut self) {
        let _ = self.stream.shutdown().await;
    }
}

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

async fn read_exact<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut [u8],
    step: &'static str,
    timeout: Duration,
) -> Result<(), NetError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut filled = 0;
    while filled < buf.len() {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf[filled..])).await {
            Err(_) => {
                return Err(NetError::Timeout {
                    step,
                    after: timeout,
                    received: buf[..filled].to_vec(),
                })
            }
            Ok(Ok(0)) => {
                return Err(NetError::Closed {
                    step,
                    received: buf[..filled].to_vec(),
                })
            }
            Ok(Ok(n)) => filled += n,
            Ok(Err(source)) => return Err(NetError::Io { step, source }),
        }
    }
    Ok(())
}
