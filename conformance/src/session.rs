//! What checks drive the target with: the [`Target`] description, the [`Ctx`] every active check gets,
//! and [`Session`], one connection with the frames it saw recorded for the evidence.
//!
//! Sessions handshake without checking the certificate (the `noise.certificate` check does that
//! explicitly), so that a target with a bad certificate still gets every other check run.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sv2_codec::messages::common::{SetupConnection, SetupConnectionSuccess};
use sv2_codec::messages::mining::{
    OpenExtendedMiningChannel, OpenExtendedMiningChannelSuccess, OpenStandardMiningChannel,
    OpenStandardMiningChannelSuccess,
};
use sv2_codec::noise::keys::AuthorityPublicKey;
use sv2_codec::noise::InitiatorConfig;
use sv2_codec::types::{Str0_255, U256};
use sv2_codec::{Decoded, Message};
use sv2_wire::{
    Connection, Direction, Endpoints, HandshakeFailure, KeyLog, Mode, NetError, Side,
    StreamDecoder, Timestamp, Transcript,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::verdict::Outcome;
use sv2_mock::work::Tracker;

/// How the target is reached.
#[derive(Debug, Clone)]
pub enum Security {
    /// Noise NX; the certificate is checked against the authority key by `noise.certificate` (and
    /// that check is skipped without one).
    Noise {
        authority: Option<AuthorityPublicKey>,
    },
    /// Plain frames (spec §4: local networks only).
    Plaintext,
}

/// The implementation under test and how patient to be with it.
#[derive(Debug, Clone)]
pub struct Target {
    pub address: SocketAddr,
    pub security: Security,
    /// How long any single answer may take.
    pub timeout: Duration,
    /// How long checks that need the target to move on (a new job, a new block) wait for it.
    pub work_window: Duration,
    /// user_identity in Open*Channel requests.
    pub user_identity: String,
    /// nominal_hash_rate in Open*Channel requests: low, so that the target is easy and shares are
    /// found in milliseconds.
    pub nominal_hash_rate: f32,
    /// The most hashes a check spends looking for one share before it gives up (skip).
    pub hash_budget: u64,
    /// Where each Noise session's key log line goes (none by default).
    pub key_log: KeyLog,
}

impl Target {
    pub fn new(address: SocketAddr, security: Security) -> Self {
        Self {
            address,
            security,
            timeout: Duration::from_secs(5),
            work_window: Duration::from_secs(10),
            user_identity: "sv2-conformance".into(),
            nominal_hash_rate: 1_000.0,
            hash_budget: 200_000_000,
            key_log: KeyLog::none(),
        }
    }

    pub fn is_encrypted(&self) -> bool {
        matches!(self.security, Security::Noise { .. })
    }
}

/// One connection's transcript, kept as evidence.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// What the connection was for.
    pub label: String,
    pub transcript: Transcript,
    /// A byte-level exchange ([`RawExchange`]): the server's bytes were read in a mode it may not
    /// speak (plain frames sent to a Noise server, say), so the check judges them itself and the
    /// monitor's rules and the evidence review do not.
    pub raw: bool,
}

type Evidence = Arc<Mutex<Vec<Recorded>>>;

/// What an active check gets: the target and the means to connect. Every connection made through
/// it is recorded, and the runner collects the transcripts when the check ends.
#[derive(Debug, Clone)]
pub struct Ctx {
    target: Arc<Target>,
    evidence: Evidence,
    certificate: CertificateSlot,
}

/// The server's certificate in words, as the first handshake of a run saw it (shared by the run's
/// checks; the report shows it).
pub type CertificateSlot = Arc<Mutex<Option<String>>>;

impl Ctx {
    pub fn new(target: Arc<Target>) -> Self {
        Self {
            target,
            evidence: Arc::default(),
            certificate: Arc::default(),
        }
    }

    /// This context notes the certificate its first handshake sees in `slot` (when still empty).
    pub fn sharing_certificate(mut self, slot: CertificateSlot) -> Self {
        self.certificate = slot;
        self
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The transcripts of every connection the check made (those still open included only once they
    /// are dropped).
    pub fn take_evidence(&self) -> Vec<Recorded> {
        std::mem::take(&mut *lock(&self.evidence))
    }

    /// Records a transcript made outside a [`Session`] (raw byte-level checks).
    pub fn record(&self, label: impl Into<String>, transcript: Transcript) {
        lock(&self.evidence).push(Recorded {
            label: label.into(),
            transcript,
            raw: true,
        });
    }

    /// A Noise handshake as initiator, the certificate not checked.
    async fn initiate(&self, stream: TcpStream) -> Result<Connection<TcpStream>, HandshakeFailure> {
        Connection::initiate_now_recorded(
            stream,
            InitiatorConfig::unauthenticated(),
            self.target.timeout,
            &self.target.key_log,
        )
        .await
    }

    /// Keeps a framed connection's transcript as evidence (the monitor judges it).
    pub(crate) fn push(&self, label: String, transcript: Transcript) {
        lock(&self.evidence).push(Recorded {
            label,
            transcript,
            raw: false,
        });
    }

    /// A bare TCP connection to the target.
    pub async fn tcp(&self) -> Result<TcpStream, Outcome> {
        let address = self.target.address;
        match tokio::time::timeout(self.target.timeout, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                Ok(stream)
            }
            Ok(Err(e)) => Err(Outcome::error(format!("TCP connect to {address}: {e}"))),
            Err(_) => Err(Outcome::error(format!(
                "TCP connect to {address}: no answer within {:?}",
                self.target.timeout
            ))),
        }
    }

    /// A connection with the handshake done (when the target is encrypted). The certificate is not
    /// checked here.
    ///
    /// A handshake that fails is tried once more with a new ephemeral key (some servers fail on
    /// particular first bytes; `noise.handshake-reliability` measures that): both attempts are
    /// evidence, and two failures are an error outcome naming both.
    pub async fn connect(&self, label: &str) -> Result<Session, Outcome> {
        let stream = self.tcp().await?;
        let mut conn = match &self.target.security {
            Security::Plaintext => Connection::plaintext(stream, Side::Client),
            Security::Noise { .. } => match self.initiate(stream).await {
                Ok(conn) => conn,
                Err(first) => {
                    self.push(
                        format!("{label}: handshake attempt 1 (failed)"),
                        first.transcript,
                    );
                    let stream = self.tcp().await?;
                    match self.initiate(stream).await {
                        Ok(mut conn) => {
                            conn.transcript.note(
                                Timestamp::now(),
                                format!(
                                    "handshake attempt 2, with a new key: attempt 1 failed: {}",
                                    first.error
                                ),
                            );
                            conn
                        }
                        Err(second) => {
                            self.push(
                                format!("{label}: handshake attempt 2 (failed)"),
                                second.transcript,
                            );
                            return Err(Outcome::error(format!(
                                "handshake failed twice, with two random keys: {}; then {}",
                                first.error, second.error
                            )));
                        }
                    }
                }
            },
        };
        conn.record_endpoints();
        if let Some(info) = &conn.handshake {
            let mut seen = lock(&self.certificate);
            if seen.is_none() {
                let established = &info.established;
                *seen = Some(
                    established
                        .certificate
                        .describe(&established.certified_key, sv2_wire::unix_now()),
                );
            }
        }
        Ok(Session {
            conn: Some(conn),
            label: label.to_string(),
            evidence: self.evidence.clone(),
            timeout: self.target.timeout,
            tracker: Tracker::default(),
            next_request_id: 1,
            next_sequence: 1,
            setup: None,
            unreadable_type: None,
            user_identity: self.target.user_identity.clone(),
            nominal_hash_rate: self.target.nominal_hash_rate,
        })
    }

    /// A connection with SetupConnection (Mining, version 2, `flags`) answered by .Success. Anything
    /// else is an error outcome (the check cannot run), not a failure of the check.
    pub async fn setup(&self, label: &str, flags: u32) -> Result<Session, Outcome> {
        let mut session = self.connect(label).await?;
        session.send(&setup_connection(0, 2, 2, flags)).await?;
        let reply = session
            .expect("SetupConnection.Success or .Error", |m| match m {
                Message::SetupConnectionSuccess(s) => Some(Ok(s.clone())),
                Message::SetupConnectionError(e) => Some(Err(format!(
                    "SetupConnection.Error flags {:#x} {:?}",
                    e.flags,
                    printable(e.error_code.as_bytes())
                ))),
                _ => None,
            })
            .await
            .map_err(|o| Outcome::error(o.observed))?;
        match reply {
            Ok(success) => {
                session.setup = Some(success);
                Ok(session)
            }
            Err(refused) => Err(Outcome::error(format!(
                "SetupConnection with flags {flags:#x} refused: {refused}"
            ))),
        }
    }
}

/// What the next frame turned out to be.
#[derive(Debug)]
pub enum Incoming {
    Message(Box<Decoded<'static>>),
    /// Nothing within the timeout.
    Timeout,
    /// The target closed the connection.
    Closed,
    /// Bytes came that cannot be read as a frame: a frame that does not decode strictly, a Noise
    /// frame that fails its MAC, a header claiming more than the maximum. Evidence against the
    /// server (it sent them), never a close or a refusal: a malformed .Success is not an .Error.
    Unreadable(String),
    /// The socket failed (the text says how).
    Broken(String),
}

impl Incoming {
    /// What a [`Connection::recv`] gave, as a check reads it: a reset is a close.
    pub fn from_recv(result: Result<Decoded<'static>, NetError>) -> Incoming {
        match result {
            Ok(decoded) => Incoming::Message(Box::new(decoded)),
            Err(NetError::Timeout { .. }) => Incoming::Timeout,
            Err(NetError::Closed { .. }) => Incoming::Closed,
            Err(
                e @ (NetError::Decode { .. } | NetError::Noise { .. } | NetError::Stream { .. }),
            ) => Incoming::Unreadable(e.to_string()),
            Err(NetError::Io { source, .. })
                if matches!(
                    source.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
                ) =>
            {
                Incoming::Closed
            }
            Err(e) => Incoming::Broken(e.to_string()),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Incoming::Message(d) => describe(&d.message),
            Incoming::Timeout => "nothing (timeout)".into(),
            Incoming::Closed => "the connection closed".into(),
            Incoming::Unreadable(e) => format!("a frame that cannot be read ({e})"),
            Incoming::Broken(e) => format!("a broken connection ({e})"),
        }
    }

    /// Whether the connection ended (closed or broken): not a timeout, a message, or bytes that
    /// came and could not be read.
    pub fn ended(&self) -> bool {
        matches!(self, Incoming::Closed | Incoming::Broken(_))
    }
}

/// One connection to the target. Its transcript joins the check's evidence when it is dropped.
#[derive(Debug)]
pub struct Session {
    conn: Option<Connection<TcpStream>>,
    label: String,
    evidence: Evidence,
    /// How long [`Session::recv`] and [`Session::expect`] wait by default.
    pub timeout: Duration,
    /// Channels, jobs and targets seen so far.
    pub tracker: Tracker,
    next_request_id: u32,
    next_sequence: u32,
    /// The SetupConnection.Success, once set up.
    pub setup: Option<SetupConnectionSuccess>,
    /// The (extension_type, msg_type) of the last frame that did not decode strictly, when its
    /// header could be read and the stream went on (None after a MAC failure or an oversize
    /// frame: nothing more can be read). A check waiting for one kind of answer may read past a
    /// frame of another kind: the monitor's strict-decoding rule judges that one.
    pub unreadable_type: Option<(u16, u8)>,
    /// user_identity and nominal_hash_rate of the Open*Channel requests.
    pub user_identity: String,
    pub nominal_hash_rate: f32,
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.as_mut() {
            let transcript = std::mem::take(&mut conn.transcript);
            lock(&self.evidence).push(Recorded {
                label: std::mem::take(&mut self.label),
                transcript,
                raw: false,
            });
        }
    }
}

impl Session {
    fn conn(&mut self) -> &mut Connection<TcpStream> {
        self.conn
            .as_mut()
            .expect("a session holds its connection until dropped")
    }

    /// The Noise handshake's result (None on plaintext).
    pub fn handshake(&self) -> Option<&sv2_wire::HandshakeInfo> {
        self.conn.as_ref().and_then(|c| c.handshake.as_ref())
    }

    /// Whether the last frame that could not be read is, by its header, none of `answers` (spec
    /// names): a check waiting for one of them may read past it. False when its header could not
    /// be read (the stream cannot go on).
    pub fn unreadable_is_none_of(&self, answers: &[&str]) -> bool {
        self.unreadable_type.is_some_and(|(ext, ty)| {
            !sv2_codec::messages::MESSAGE_TYPES
                .iter()
                .any(|m| m.extension_type == ext && m.msg_type == ty && answers.contains(&m.name))
        })
    }

    /// Every message the server sent on this connection so far (those its transcript keeps).
    pub fn received(&self) -> Vec<Message<'static>> {
        self.conn.as_ref().map_or_else(Vec::new, |c| {
            c.transcript
                .messages(sv2_wire::Direction::ServerToClient)
                .map(|d| d.message.clone())
                .collect()
        })
    }

    /// A fresh request_id.
    pub fn request_id(&mut self) -> u32 {
        let id = self.next_request_id;
        self.next_request_id += 1;
        id
    }

    /// A fresh share sequence_number.
    pub fn sequence_number(&mut self) -> u32 {
        let n = self.next_sequence;
        self.next_sequence += 1;
        n
    }

    /// Sends a message; a failure to send is an error outcome.
    pub async fn send(&mut self, message: &Message<'_>) -> Result<(), Outcome> {
        self.tracker.sent(message);
        self.conn()
            .send(message)
            .await
            .map_err(|e| Outcome::error(format!("sending {}: {e}", message.name())))
    }

    /// Sends a plain frame as given (encrypted if the session is): for malformed frames.
    pub async fn send_frame(&mut self, frame: &[u8], what: &'static str) -> Result<(), Outcome> {
        self.conn()
            .send_frame(frame, what)
            .await
            .map_err(|e| Outcome::error(format!("sending {what}: {e}")))
    }

    /// Sends bytes on the wire as they are (no framing, no encryption).
    pub async fn send_raw(&mut self, bytes: &[u8], what: &'static str) -> Result<(), Outcome> {
        self.conn()
            .send_raw(bytes, what)
            .await
            .map_err(|e| Outcome::error(format!("sending {what}: {e}")))
    }

    /// The next frame within `timeout`.
    pub async fn recv_within(&mut self, timeout: Duration) -> Incoming {
        let result = self.conn().recv("receive", timeout).await;
        match &result {
            Ok(decoded) => self.tracker.received(&decoded.message),
            // The frame was delimited (the stream goes on): its type is known from its header.
            Err(NetError::Decode { frame, .. }) => {
                self.unreadable_type = frame
                    .first_chunk::<3>()
                    .map(|h| (u16::from_le_bytes([h[0], h[1]]) & 0x7fff, h[2]))
            }
            Err(NetError::Noise { .. } | NetError::Stream { .. }) => self.unreadable_type = None,
            Err(_) => {}
        }
        Incoming::from_recv(result)
    }

    /// The next frame within the session's timeout.
    pub async fn recv(&mut self) -> Incoming {
        self.recv_within(self.timeout).await
    }

    /// Waits (up to the session's timeout) for a message `pick` accepts, passing over others. A
    /// timeout or a close is a failure outcome naming `what` and what came instead.
    pub async fn expect<T>(
        &mut self,
        what: &str,
        pick: impl FnMut(&Message<'static>) -> Option<T>,
    ) -> Result<T, Outcome> {
        let timeout = self.timeout;
        self.expect_within(what, timeout, pick).await
    }

    /// [`Session::expect`] with its own timeout.
    pub async fn expect_within<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        mut pick: impl FnMut(&Message<'static>) -> Option<T>,
    ) -> Result<T, Outcome> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut passed = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let incoming = self.recv_within(left).await;
            match incoming {
                Incoming::Message(d) => {
                    if let Some(t) = pick(&d.message) {
                        return Ok(t);
                    }
                    passed.push(d.message.name());
                }
                other => {
                    let mut observed = other.describe();
                    if !passed.is_empty() {
                        observed = format!("{observed}, after {}", passed.join(", "));
                    }
                    return Err(Outcome::fail(what.to_string(), observed));
                }
            }
        }
    }

    /// Every message for `window`, stopping early if the connection ends (the end, if any, is
    /// returned too).
    pub async fn collect(&mut self, window: Duration) -> (Vec<Message<'static>>, Option<Incoming>) {
        let deadline = tokio::time::Instant::now() + window;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return (out, None);
            }
            match self.recv_within(left).await {
                Incoming::Message(d) => out.push(d.message),
                Incoming::Timeout => return (out, None),
                end => return (out, Some(end)),
            }
        }
    }

    /// Whether the target still serves this connection: an OpenStandardMiningChannel gets an answer
    /// (.Success or .Error) within the timeout. Returns what happened, in words, on failure.
    pub async fn still_serves(&mut self) -> Result<(), String> {
        let request_id = self.request_id();
        let open = self.open_standard_message(request_id);
        self.send(&open).await.map_err(|o| o.observed)?;
        self.expect("an answer to OpenStandardMiningChannel", |m| match m {
            Message::OpenStandardMiningChannelSuccess(s) if s.request_id == request_id => Some(()),
            Message::OpenMiningChannelError(e) if e.request_id == request_id => Some(()),
            _ => None,
        })
        .await
        .map_err(|o| format!("no answer to OpenStandardMiningChannel: {}", o.observed))
    }

    /// An OpenStandardMiningChannel with the target's identity and hash rate, max_target unbounded.
    pub fn open_standard_message(&self, request_id: u32) -> Message<'static> {
        self.open_standard_with_max(request_id, [0xff; 32])
    }

    /// An OpenStandardMiningChannel with the target's identity and hash rate, and `max_target`.
    pub fn open_standard_with_max(
        &self,
        request_id: u32,
        max_target: [u8; 32],
    ) -> Message<'static> {
        OpenStandardMiningChannel {
            request_id,
            user_identity: str255(&self.user_identity),
            nominal_hash_rate: self.nominal_hash_rate,
            max_target: U256(max_target),
        }
        .into()
    }

    /// An OpenExtendedMiningChannel with the target's identity and hash rate.
    pub fn open_extended_message(
        &self,
        request_id: u32,
        min_extranonce_size: u16,
    ) -> Message<'static> {
        OpenExtendedMiningChannel {
            request_id,
            user_identity: str255(&self.user_identity),
            nominal_hash_rate: self.nominal_hash_rate,
            max_target: U256([0xff; 32]),
            min_extranonce_size,
        }
        .into()
    }

    /// Opens a standard channel; .Error or no answer is an error outcome (the check cannot run).
    pub async fn open_standard(
        &mut self,
    ) -> Result<OpenStandardMiningChannelSuccess<'static>, Outcome> {
        let request_id = self.request_id();
        let open = self.open_standard_message(request_id);
        self.send(&open).await?;
        let answer = self
            .expect("OpenStandardMiningChannel.Success", |m| match m {
                Message::OpenStandardMiningChannelSuccess(s) if s.request_id == request_id => {
                    Some(Ok(s.clone()))
                }
                Message::OpenMiningChannelError(e) if e.request_id == request_id => {
                    Some(Err(printable(e.error_code.as_bytes())))
                }
                _ => None,
            })
            .await
            .map_err(|o| Outcome::error(format!("opening a standard channel: {}", o.observed)))?;
        answer.map_err(|code| {
            Outcome::skip(format!(
                "the target refused a standard channel (OpenMiningChannel.Error {code:?})"
            ))
        })
    }

    /// Opens an extended channel; .Error or no answer is an error outcome.
    pub async fn open_extended(
        &mut self,
        min_extranonce_size: u16,
    ) -> Result<OpenExtendedMiningChannelSuccess<'static>, Outcome> {
        let request_id = self.request_id();
        let open = self.open_extended_message(request_id, min_extranonce_size);
        self.send(&open).await?;
        let answer = self
            .expect("OpenExtendedMiningChannel.Success", |m| match m {
                Message::OpenExtendedMiningChannelSuccess(s) if s.request_id == request_id => {
                    Some(Ok(s.clone()))
                }
                Message::OpenMiningChannelError(e) if e.request_id == request_id => {
                    Some(Err(printable(e.error_code.as_bytes())))
                }
                _ => None,
            })
            .await
            .map_err(|o| Outcome::error(format!("opening an extended channel: {}", o.observed)))?;
        answer.map_err(|code| {
            Outcome::error(format!(
                "the target refused an extended channel (OpenMiningChannel.Error {code:?})"
            ))
        })
    }

    /// Reads until the channel has a job it can mine (an active job and its prev hash), up to the
    /// work window.
    pub async fn wait_for_work(
        &mut self,
        channel_id: u32,
        window: Duration,
    ) -> Result<sv2_mock::work::Work, Outcome> {
        let deadline = tokio::time::Instant::now() + window;
        loop {
            if let Some(work) = self.tracker.work(channel_id) {
                return Ok(work);
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Err(Outcome::error(format!(
                    "no job with a prev hash for channel {channel_id} within {window:?}"
                )));
            }
            match self.recv_within(left).await {
                Incoming::Message(_) => {}
                Incoming::Timeout => {}
                other => {
                    return Err(Outcome::error(format!(
                        "waiting for a job on channel {channel_id}: {}",
                        other.describe()
                    )))
                }
            }
        }
    }

    /// Mines a share on the channel's current work with parameters from `params` (given the work;
    /// `Work::params` for a valid share) at `target` (the channel's when None). If the server moved
    /// on while the engine ran (a new job or prev hash arrived), mines again on the new work, up to
    /// three times, so the share is not stale on arrival. A share not found within the hash budget
    /// is a skip outcome.
    pub async fn mine_share(
        &mut self,
        channel_id: u32,
        window: Duration,
        budget: u64,
        params: impl Fn(&sv2_mock::work::Work) -> sv2_mock::work::ShareParams,
        target: Option<[u8; 32]>,
    ) -> Result<(sv2_mock::work::Work, sv2_mock::work::Found), Outcome> {
        for _ in 0..3 {
            let work = self.wait_for_work(channel_id, window).await?;
            let Some(found) = sv2_mock::work::mine(&work, params(&work), target, budget).await
            else {
                return Err(Outcome::skip(format!(
                    "no share found within {budget} hashes (about {:.3e} per share at the channel's target)",
                    work.expected_hashes()
                )));
            };
            // Take in whatever arrived meanwhile.
            loop {
                match self.recv_within(Duration::from_millis(20)).await {
                    Incoming::Message(_) => continue,
                    Incoming::Timeout => break,
                    other => {
                        return Err(Outcome::error(format!(
                            "while mining: {}",
                            other.describe()
                        )))
                    }
                }
            }
            let now = self.tracker.work(channel_id);
            if now
                .as_ref()
                .is_some_and(|w| w.job.id == work.job.id && w.prev == work.prev)
            {
                return Ok((work, found));
            }
        }
        Err(Outcome::error(
            "the server changed the work three times while a share was mined",
        ))
    }
}

/// A SetupConnection for the Mining protocol (or `protocol`), with this tool's identity.
pub fn setup_connection(
    protocol: u8,
    min_version: u16,
    max_version: u16,
    flags: u32,
) -> Message<'static> {
    SetupConnection {
        protocol,
        min_version,
        max_version,
        flags,
        endpoint_host: str255("127.0.0.1"),
        endpoint_port: 0,
        vendor: str255("sv2-conformance"),
        hardware_version: str255(""),
        firmware: str255(env!("CARGO_PKG_VERSION")),
        device_id: str255("conformance"),
    }
    .into()
}

/// A message as a whole plain frame; failing to encode is an error outcome.
pub fn frame_of(message: &Message<'_>) -> Result<Vec<u8>, Outcome> {
    sv2_codec::to_frame_bytes(message, &[])
        .map_err(|e| Outcome::error(format!("encoding {}: {e}", message.name())))
}

/// A STR0_255 from text, cut at 255 bytes.
pub fn str255(text: &str) -> Str0_255<'static> {
    let bytes = text.as_bytes();
    let bytes = &bytes[..bytes.len().min(255)];
    Str0_255::new(bytes.to_vec()).unwrap_or_default()
}

/// Error and reason codes for reports: text when printable, escaped otherwise.
pub fn printable(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).escape_debug().to_string()
}

/// A message in a few words: its name and the fields that identify it.
pub fn describe(message: &Message<'_>) -> String {
    match serde_json::to_value(message) {
        Ok(serde_json::Value::Object(map)) => {
            let mut parts = Vec::new();
            for (k, v) in map.iter().filter(|(k, _)| k.as_str() != "message") {
                let text = v.to_string();
                if text.len() <= 80 {
                    parts.push(format!("{k}={text}"));
                } else {
                    parts.push(format!("{k}=<{} chars>", text.len()));
                }
            }
            format!("{} {{{}}}", message.name(), parts.join(", "))
        }
        _ => message.name().to_string(),
    }
}

/// A raw TCP connection for byte-level checks (before or instead of the handshake): bytes are written
/// and read as they are, and both directions go through the conversation layer's stream decoders,
/// so the transcript shows handshake acts, frames and undecodable bytes as such (plus a note of
/// every raw write and read).
#[derive(Debug)]
pub struct RawExchange {
    stream: TcpStream,
    to_server: StreamDecoder,
    to_client: StreamDecoder,
    transcript: Transcript,
}

impl RawExchange {
    /// `mode` is what both directions are read as: `Mode::Noise` (acts, then encrypted frames
    /// whose keys this exchange never has) or `Mode::Sv2` (plain frames).
    pub fn new(stream: TcpStream, mode: Mode) -> Self {
        let mut transcript = Transcript::default();
        transcript.endpoints = Endpoints::seen_from(
            Side::Client,
            stream.local_addr().ok(),
            stream.peer_addr().ok(),
        );
        RawExchange {
            stream,
            to_server: StreamDecoder::new(Direction::ClientToServer, mode),
            to_client: StreamDecoder::new(Direction::ServerToClient, mode),
            transcript,
        }
    }

    fn drain(&mut self) {
        while let Some((at, event)) = self.to_server.next_event() {
            event.record(Direction::ClientToServer, at, &mut self.transcript);
        }
        while let Some((at, event)) = self.to_client.next_event() {
            event.record(Direction::ServerToClient, at, &mut self.transcript);
        }
    }

    /// Writes `send` (if any), then reads what comes within `read_for`, until `max` bytes came or
    /// the peer closed. Returns the bytes read.
    pub async fn exchange(
        &mut self,
        send: &[u8],
        read_for: Duration,
        max: usize,
    ) -> (Vec<u8>, RawEnd) {
        if !send.is_empty() {
            let now = Timestamp::now();
            self.transcript
                .note(now, format!("raw bytes sent: {}", hex::encode(send)));
            self.to_server.push(send, now);
            self.drain();
            if let Err(e) = self.stream.write_all(send).await {
                return (Vec::new(), RawEnd::Error(e.to_string()));
            }
        }
        let mut got = Vec::new();
        let deadline = tokio::time::Instant::now() + read_for;
        let mut buf = vec![0u8; 4096];
        let end = loop {
            if got.len() >= max {
                break RawEnd::Enough;
            }
            match tokio::time::timeout_at(deadline, self.stream.read(&mut buf)).await {
                Err(_) => break RawEnd::Timeout,
                Ok(Ok(0)) => break RawEnd::Closed,
                Ok(Ok(n)) => {
                    self.to_client.push(&buf[..n], Timestamp::now());
                    got.extend_from_slice(&buf[..n]);
                }
                Ok(Err(e)) => {
                    break match e.kind() {
                        std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::ConnectionAborted => RawEnd::Closed,
                        _ => RawEnd::Error(e.to_string()),
                    }
                }
            }
        };
        self.drain();
        self.transcript.note(
            Timestamp::now(),
            format!(
                "raw bytes received ({} bytes, then {end:?}): {}",
                got.len(),
                hex::encode(&got[..got.len().min(512)])
            ),
        );
        (got, end)
    }

    /// The frames the server sent that decoded, in order (plain SV2 only: under Noise the keys are
    /// never known here).
    pub fn server_messages(&self) -> impl Iterator<Item = &Message<'static>> {
        self.transcript
            .messages(Direction::ServerToClient)
            .map(|d| &d.message)
    }

    /// The transcript, with what each direction left undelimited noted.
    pub fn finish(mut self) -> Transcript {
        let now = Timestamp::now();
        for (decoder, direction) in [
            (&self.to_server, Direction::ClientToServer),
            (&self.to_client, Direction::ServerToClient),
        ] {
            let pending = decoder.pending();
            if pending > 0 {
                let partial = decoder.partial();
                let shown = if partial.is_empty() {
                    String::new()
                } else {
                    format!(": {}", hex::encode(&partial[..partial.len().min(512)]))
                };
                self.transcript.note(
                    now,
                    format!(
                        "{}: {pending} bytes left incomplete{shown}",
                        direction.as_str()
                    ),
                );
            }
        }
        self.transcript
    }
}

/// How a raw read ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawEnd {
    Timeout,
    Closed,
    /// `max` bytes arrived.
    Enough,
    Error(String),
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sv2_codec::messages::common::SetupConnectionSuccess;
    use sv2_codec::noise::ACT1_LEN;
    use sv2_wire::Event;
    use tokio::net::TcpListener;

    /// A peer on loopback that reads `expect` bytes, then writes `reply` and closes.
    async fn peer(expect: usize, reply: Vec<u8>) -> TcpStream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut got = vec![0u8; expect];
            let _ = s.read_exact(&mut got).await;
            let _ = s.write_all(&reply).await;
        });
        TcpStream::connect(addr).await.unwrap()
    }

    #[tokio::test]
    async fn a_raw_exchange_records_frames_acts_and_leftovers_as_such() {
        // Plain frames both ways: the server's .Success is a decoded frame, the trailing garbage
        // a leftover note.
        let setup = frame_of(&setup_connection(0, 2, 2, 0)).unwrap();
        let success: Message<'static> = SetupConnectionSuccess {
            used_version: 2,
            flags: 0,
        }
        .into();
        let mut reply = frame_of(&success).unwrap();
        reply.extend_from_slice(&[0xee; 3]);
        let mut raw = RawExchange::new(peer(setup.len(), reply).await, Mode::Sv2);
        let (got, end) = raw.exchange(&setup, Duration::from_secs(5), 4096).await;
        assert_eq!(end, RawEnd::Closed);
        assert_eq!(got.len(), 6 + 6 + 3);
        assert!(matches!(
            raw.server_messages().collect::<Vec<_>>()[..],
            [Message::SetupConnectionSuccess(_)]
        ));
        let transcript = raw.finish();
        assert_eq!(transcript.messages(Direction::ClientToServer).count(), 1);
        assert!(transcript.endpoints.server.is_some());
        let notes: Vec<String> = transcript
            .entries()
            .iter()
            .filter_map(|e| match &e.event {
                Event::Note { text } => Some(text.clone()),
                _ => None,
            })
            .collect();
        assert!(notes.iter().any(|n| n.contains("3 bytes left incomplete")));

        // Noise: act 1 out, a short "act 2" back: one act recorded, the rest left incomplete.
        let mut raw = RawExchange::new(peer(ACT1_LEN, vec![0x11; 170]).await, Mode::Noise);
        let (got, _) = raw
            .exchange(&[0x22; ACT1_LEN], Duration::from_secs(5), 235)
            .await;
        assert_eq!(got.len(), 170);
        let transcript = raw.finish();
        let acts = transcript
            .entries()
            .iter()
            .filter(|e| matches!(e.event, Event::Handshake { .. }))
            .count();
        assert_eq!(acts, 1, "act 1 only: 170 bytes are no act 2");
        assert!(transcript.entries().iter().any(
            |e| matches!(&e.event, Event::Note { text } if text.contains("170 bytes left incomplete"))
        ));
    }
}
