//! One connection of the client under test, served by a mock pool core ([`sv2_mock::pool::Pool`]:
//! real templates, jobs, prev hashes and share judging by the spec's rules). A check lets the core
//! answer ([`Served::serve_until`]), or takes a message's answers ([`Served::to_pool`]) and sends
//! them when and as it likes ([`Served::deliver`]), or sends what it wants ([`Served::send`]).

use std::time::{Duration, Instant};

use sv2_codec::messages::common::SetupConnection;
use sv2_codec::types::IntoStatic;
use sv2_codec::Message;
use sv2_mock::pool::{Output, Pool, PoolConfig, SessionId, ShareError, TemplateSource};
use sv2_wire::{unix_now, Connection, Timestamp, WireShape};
use tokio::net::TcpStream;

use super::{lock, Evidence};
use crate::session::{describe, Incoming, Recorded};
use crate::verdict::Outcome;

/// What the core decided about one share, and when.
#[derive(Debug, Clone)]
pub struct ShareVerdict {
    /// Since the connection was accepted.
    pub at: Duration,
    pub channel_id: u32,
    pub sequence_number: u32,
    /// The job the share named.
    pub job_id: u32,
    /// The version it carried.
    pub version: u32,
    pub nonce: u32,
    pub ntime: u32,
    /// The header hash (internal byte order), for accepted shares.
    pub hash: Option<[u8; 32]>,
    /// `None`: accepted.
    pub error: Option<ShareError>,
}

/// A channel the core opened for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub channel_id: u32,
    pub extended: bool,
    /// Its first target (little-endian).
    pub target: [u8; 32],
    pub extranonce_prefix: Vec<u8>,
    /// What the client's part of the extranonce must be (extended channels).
    pub extranonce_size: usize,
}

/// How [`Served::serve_until`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Until {
    /// The condition held.
    Done,
    /// The time was up.
    TimeUp,
    /// The client closed the connection (or it broke: the text says how).
    Ended(String),
}

/// The client's messages other than shares kept (a client sending endless ones cannot grow it).
const KEPT: usize = 10_000;

/// How often the core's time passes while serving (batched acknowledgements come due).
const TICK: Duration = Duration::from_secs(1);

/// The core's configuration for a served client: the spec's share rules, every share acknowledged
/// at once, no retargeting (a check sets targets itself), no idle timeout. Shares are easy (the
/// regtest target) and blocks hard (difficulty 1): the chain moves only when a check says so.
pub fn pool_config() -> PoolConfig {
    let mut config = PoolConfig::default();
    config.vardiff.enabled = false;
    // The first target is set for this rate from the client's nominal hash rate: ten a second.
    config.vardiff.shares_per_minute = 600.0;
    config.ack_every = 1;
    config.idle_timeout_secs = None;
    if let TemplateSource::InProcess(tp) = &mut config.template_source {
        tp.nbits = 0x1d00_ffff;
        tp.advance_on_block = false;
    }
    // A hostile client cannot make the core remember much: a few channels, a few thousand shares.
    config.max_channels_per_session = 64;
    config.max_shares_per_job = 4096;
    config
}

/// Share verdicts kept per connection (later ones are counted, not kept).
const SHARES_KEPT: usize = 100_000;

/// One accepted connection. Its transcript joins the check's evidence when it is dropped.
pub struct Served {
    conn: Connection<TcpStream>,
    label: String,
    evidence: Evidence,
    pub pool: Pool,
    pub session: SessionId,
    /// How long [`Served::recv`] waits by default.
    pub timeout: Duration,
    started: Instant,
    last_tick: Instant,
    /// The client's SetupConnection, once read.
    pub setup: Option<SetupConnection<'static>>,
    /// The channels the core opened, in order.
    pub opened: Vec<Opened>,
    /// Every share the core judged, in order (the first [`SHARES_KEPT`]).
    pub shares: Vec<ShareVerdict>,
    /// When the client sent frames that could not be read (the first [`KEPT`]): evidence a check
    /// that judges an absence must not overlook.
    pub unreadable: Vec<Duration>,
    /// The targets the core set on each channel after opening it (SetTarget), in order.
    pub targets: Vec<(u32, [u8; 32])>,
    /// The version of every job sent (by job id; the first [`KEPT`]).
    pub job_versions: std::collections::BTreeMap<u32, u32>,
    /// The core closed the session (its reason).
    pub closed_by_pool: Option<String>,
    /// The client's messages other than shares, with their time (at most [`KEPT`]).
    pub received: Vec<(Duration, Message<'static>)>,
    /// The connection ended (the client closed it, or it broke).
    pub ended: Option<String>,
}

impl std::fmt::Debug for Served {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Served")
            .field("label", &self.label)
            .field("opened", &self.opened)
            .field("shares", &self.shares.len())
            .finish_non_exhaustive()
    }
}

impl Served {
    /// A connection served by a core with `config`.
    pub(crate) fn new(
        conn: Connection<TcpStream>,
        label: &str,
        evidence: Evidence,
        timeout: Duration,
        config: PoolConfig,
    ) -> Result<Served, Outcome> {
        let now = unix_now();
        let mut pool = match Pool::new(config, now) {
            Ok(pool) => pool,
            Err(e) => {
                lock(&evidence).push(Recorded {
                    label: label.to_string(),
                    transcript: conn.transcript,
                    raw: false,
                });
                return Err(Outcome::error(format!(
                    "the suite's pool configuration: {e}"
                )));
            }
        };
        let session = pool.open_session(now);
        Ok(Served {
            conn,
            label: label.to_string(),
            evidence,
            pool,
            session,
            timeout,
            started: Instant::now(),
            last_tick: Instant::now(),
            setup: None,
            opened: Vec::new(),
            shares: Vec::new(),
            closed_by_pool: None,
            received: Vec::new(),
            unreadable: Vec::new(),
            targets: Vec::new(),
            job_versions: Default::default(),
            ended: None,
        })
    }

    /// Every message the suite sent the client on this connection so far (those its transcript
    /// keeps).
    pub fn sent(&self) -> Vec<Message<'static>> {
        self.conn
            .transcript
            .messages(sv2_wire::Direction::ServerToClient)
            .map(|d| d.message.clone())
            .collect()
    }

    /// Time since the connection was accepted.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Notes a line in the transcript (what the check did, for whoever reads the evidence).
    pub fn note(&mut self, text: impl Into<String>) {
        self.conn.transcript.note(Timestamp::now(), text);
    }

    /// The next frame from the client within `timeout`.
    pub async fn recv_within(&mut self, timeout: Duration) -> Incoming {
        let incoming = Incoming::from_recv(self.conn.recv("receive", timeout).await);
        self.noted(&incoming);
        incoming
    }

    /// Notes an end or a frame that could not be read.
    fn noted(&mut self, incoming: &Incoming) {
        if incoming.ended() && self.ended.is_none() {
            self.ended = Some(incoming.describe());
        }
        if matches!(incoming, Incoming::Unreadable(_)) && self.unreadable.len() < KEPT {
            self.unreadable.push(self.elapsed());
        }
    }

    /// Whether the client sent a frame that could not be read at or after `since`.
    pub fn unreadable_since(&self, since: Duration) -> bool {
        self.unreadable.iter().any(|at| *at >= since)
    }

    /// The next frame within the default timeout.
    pub async fn recv(&mut self) -> Incoming {
        self.recv_within(self.timeout).await
    }

    /// Sends a message; a failure is an error outcome.
    pub async fn send(&mut self, message: &Message<'_>) -> Result<(), Outcome> {
        self.conn
            .send(message)
            .await
            .map_err(|e| Outcome::error(format!("sending {}: {e}", message.name())))
    }

    /// Sends a plain frame as given (encrypted if the connection is), shaped on the wire.
    pub async fn send_frame(
        &mut self,
        frame: &[u8],
        what: &'static str,
        shape: &WireShape,
    ) -> Result<(), Outcome> {
        self.conn
            .send_frame_shaped(frame, what, shape)
            .await
            .map_err(|e| Outcome::error(format!("sending {what}: {e}")))
    }

    /// Sends a plain frame as given (encrypted if the connection is), in one write.
    pub async fn send_raw_frame(
        &mut self,
        frame: &[u8],
        what: &'static str,
    ) -> Result<(), Outcome> {
        self.send_frame(frame, what, &WireShape::default()).await
    }

    /// The core's answers to a client message (sent nowhere yet); share verdicts and opened
    /// channels are noted.
    pub fn to_pool(&mut self, message: &Message<'_>) -> Vec<Output> {
        if let Message::SetupConnection(setup) = message {
            self.setup = Some(setup.clone().into_static());
        }
        let share = matches!(
            message,
            Message::SubmitSharesStandard(_) | Message::SubmitSharesExtended(_)
        );
        if !share && self.received.len() < KEPT {
            self.received
                .push((self.elapsed(), message.clone().into_static()));
        }
        let outputs = self.pool.handle(self.session, message, unix_now());
        let share = match message {
            Message::SubmitSharesStandard(s) => (s.job_id, s.version, s.nonce, s.ntime),
            Message::SubmitSharesExtended(s) => (s.job_id, s.version, s.nonce, s.ntime),
            _ => (0, 0, 0, 0),
        };
        self.note_outputs(share, &outputs);
        outputs
    }

    /// Notes the core's events; `(job_id, version, nonce, ntime)` of the share the outputs answer,
    /// if any.
    fn note_outputs(
        &mut self,
        (job_id, version, nonce, ntime): (u32, u32, u32, u32),
        outputs: &[Output],
    ) {
        let at = self.elapsed();
        let verdict = |channel_id, sequence_number, hash, error| ShareVerdict {
            at,
            channel_id,
            sequence_number,
            job_id,
            version,
            nonce,
            ntime,
            hash,
            error,
        };
        for output in outputs {
            match output {
                Output::ChannelOpened {
                    channel_id,
                    kind,
                    target,
                    extranonce_prefix,
                    ..
                } => self.opened.push(Opened {
                    channel_id: *channel_id,
                    extended: *kind != sv2_mock::pool::channel::ChannelKind::Standard,
                    target: *target,
                    extranonce_prefix: extranonce_prefix.clone(),
                    extranonce_size: self.pool.config().miner_extranonce_size(),
                }),
                Output::ShareAccepted { .. } | Output::ShareRejected { .. }
                    if self.shares.len() >= SHARES_KEPT => {}
                Output::ShareAccepted {
                    channel_id,
                    sequence_number,
                    hash,
                    ..
                } => self
                    .shares
                    .push(verdict(*channel_id, *sequence_number, Some(*hash), None)),
                Output::ShareRejected {
                    channel_id,
                    sequence_number,
                    error,
                    ..
                } => self.shares.push(verdict(
                    *channel_id,
                    *sequence_number,
                    None,
                    Some(error.clone()),
                )),
                Output::Close { reason, .. } => self.closed_by_pool = Some(reason.clone()),
                _ => {}
            }
        }
    }

    /// Sends the core's messages for this connection, in order. A close asked by the core ends
    /// the sending (the client is left to notice).
    pub async fn deliver(&mut self, outputs: Vec<Output>) -> Result<(), Outcome> {
        for output in outputs {
            match output {
                Output::Send { session, message } if session == self.session => {
                    match &message {
                        Message::SetTarget(t) if self.targets.len() < KEPT => {
                            self.targets.push((t.channel_id, t.maximum_target.0))
                        }
                        Message::NewMiningJob(j) if self.job_versions.len() < KEPT => {
                            self.job_versions.insert(j.job_id, j.version);
                        }
                        Message::NewExtendedMiningJob(j) if self.job_versions.len() < KEPT => {
                            self.job_versions.insert(j.job_id, j.version);
                        }
                        _ => {}
                    }
                    self.send(&message).await?
                }
                Output::Close { session, .. } if session == self.session => break,
                _ => {}
            }
        }
        Ok(())
    }

    /// Time passes for the core (batched acknowledgements); its messages are sent.
    pub async fn tick(&mut self) -> Result<(), Outcome> {
        self.last_tick = Instant::now();
        let outputs = self.pool.tick(unix_now());
        self.note_outputs((0, 0, 0, 0), &outputs);
        self.deliver(outputs).await
    }

    /// Applies a core event (a new block, a new template) and sends what it produces.
    pub async fn pool_event(
        &mut self,
        event: impl FnOnce(&mut Pool, u32) -> Vec<Output>,
    ) -> Result<(), Outcome> {
        let outputs = event(&mut self.pool, unix_now());
        self.deliver(outputs).await
    }

    /// Serves the client with the core's answers until `done` holds (checked after each message),
    /// `within` has passed, or the connection ends. Each message the client sends goes to
    /// `observe` first.
    pub async fn serve_until(
        &mut self,
        within: Duration,
        mut done: impl FnMut(&Served) -> bool,
    ) -> Result<Until, Outcome> {
        let deadline = Instant::now() + within;
        loop {
            if done(self) {
                return Ok(Until::Done);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(Until::TimeUp);
            }
            let since_tick = now.duration_since(self.last_tick);
            if since_tick >= TICK {
                // A write that fails: the client went away.
                if let Err(o) = self.tick().await {
                    return Ok(Until::Ended(o.observed));
                }
                continue;
            }
            // Wait for the client until the next tick (a read cut short loses nothing: the bytes
            // read so far are in the decoder).
            let wait = (deadline - now).min(TICK - since_tick);
            let received = tokio::time::timeout(wait, self.conn.recv("receive", within)).await;
            let Ok(received) = received else {
                continue;
            };
            let incoming = Incoming::from_recv(received);
            self.noted(&incoming);
            match incoming {
                Incoming::Message(decoded) => {
                    let outputs = self.to_pool(&decoded.message);
                    if let Err(o) = self.deliver(outputs).await {
                        return Ok(Until::Ended(o.observed));
                    }
                }
                Incoming::Timeout => {}
                // The monitor judges a frame that does not decode; serving goes on.
                Incoming::Unreadable(_) => {}
                ended @ (Incoming::Closed | Incoming::Broken(_)) => {
                    return Ok(Until::Ended(ended.describe()))
                }
            }
        }
    }

    /// Reads the client's first frame, which must be SetupConnection (the monitor's
    /// `monitor.client-setup-first` judges it); anything else, a close or silence is an error
    /// outcome of the check that needed it. Not answered yet: [`Served::answer_setup`].
    pub async fn read_setup(&mut self) -> Result<SetupConnection<'static>, Outcome> {
        match self.recv().await {
            Incoming::Message(decoded) => match decoded.message {
                Message::SetupConnection(setup) => Ok(setup.into_static()),
                other => Err(Outcome::error(format!(
                    "the client's first message was {}, not SetupConnection (see \
                     monitor.client-setup-first)",
                    describe(&other)
                ))),
            },
            other => Err(Outcome::error(format!(
                "the client sent no SetupConnection after the handshake: {}",
                other.describe()
            ))),
        }
    }

    /// The core answers `setup`; its refusal is an error outcome.
    pub async fn answer_setup(
        &mut self,
        setup: SetupConnection<'static>,
    ) -> Result<SetupConnection<'static>, Outcome> {
        let outputs = self.to_pool(&Message::SetupConnection(setup.clone()));
        let refusal = outputs.iter().find_map(|o| match o {
            Output::Send {
                message: Message::SetupConnectionError(e),
                ..
            } => Some(format!(
                "{} (flags {:#x})",
                String::from_utf8_lossy(e.error_code.as_bytes()),
                e.flags
            )),
            _ => None,
        });
        self.deliver(outputs).await?;
        match refusal {
            Some(why) => Err(Outcome::error(format!(
                "the suite's pool refused the client's SetupConnection: {why}"
            ))),
            None => Ok(setup),
        }
    }

    /// [`Served::read_setup`], then [`Served::answer_setup`].
    pub async fn setup(&mut self) -> Result<SetupConnection<'static>, Outcome> {
        let setup = self.read_setup().await?;
        self.answer_setup(setup).await
    }

    /// Serves until the client has a channel (set up first when not yet): the channel, or an
    /// error outcome.
    pub async fn open_channel(&mut self) -> Result<Opened, Outcome> {
        if self.setup.is_none() {
            self.setup().await?;
        }
        let timeout = self.timeout;
        match self.serve_until(timeout, |s| !s.opened.is_empty()).await? {
            Until::Done => Ok(self.opened[0].clone()),
            Until::TimeUp => Err(Outcome::error(format!(
                "the client opened no channel within {timeout:?} of its setup"
            ))),
            Until::Ended(how) => Err(Outcome::error(format!(
                "the connection ended before a channel was open: {how}"
            ))),
        }
    }

    /// Serves until `count` more shares were judged, or `within` passed: the verdicts that came.
    pub async fn serve_shares(
        &mut self,
        count: usize,
        within: Duration,
    ) -> Result<(Until, Vec<ShareVerdict>), Outcome> {
        let before = self.shares.len();
        let until = self
            .serve_until(within, |s| s.shares.len() >= before.saturating_add(count))
            .await?;
        Ok((until, self.shares[before..].to_vec()))
    }

    /// Closes the connection (the transcript is kept as evidence when dropped).
    pub async fn close(&mut self) {
        self.conn.shutdown().await;
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let transcript = std::mem::take(&mut self.conn.transcript);
        lock(&self.evidence).push(Recorded {
            label: std::mem::take(&mut self.label),
            transcript,
            raw: false,
        });
    }
}

/// The refusals of a list of verdicts, in words (at most five).
pub fn refusals(shares: &[ShareVerdict]) -> String {
    let refused: Vec<String> = shares
        .iter()
        .filter_map(|s| {
            s.error.as_ref().map(|e| {
                format!(
                    "share {} on job {} at {:.1} s: {} ({e})",
                    s.sequence_number,
                    s.job_id,
                    s.at.as_secs_f64(),
                    e.code()
                )
            })
        })
        .collect();
    let more = refused.len().saturating_sub(5);
    let mut text = refused.into_iter().take(5).collect::<Vec<_>>().join("; ");
    if more > 0 {
        text.push_str(&format!("; and {more} more"));
    }
    text
}
