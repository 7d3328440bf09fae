//! The SV2 mining device on the network: a tokio task around the [`Device`] core and the engine.
//!
//! [`spawn`] connects (TCP, then the Noise NX handshake as initiator with the pool's authority key, or
//! plaintext), runs the core, and runs the engine's threads (std threads, off the async runtime) on the
//! work the core hands out. Found shares travel from the engine's threads through a bridge thread
//! (which also caps their rate) into the task, which feeds them to the core. Live [`MinerStats`] are
//! published on a watch channel, events on a bounded channel (what a slow reader misses stays in the
//! report). A shutdown signal closes the channel (CloseChannel) and stops the engine. Every step has
//! a deadline, and failures name their step.
//!
//! [`EngineRunner`] (the engine, the bridge and the hashrate meter), the handle and the rest of the
//! plumbing are shared with the SV1 driver ([`super::runner`]).
//!
//! The device does not judge the pool: [`DeviceDriverConfig::observer`] receives every transcript
//! entry as it is recorded, for a judge (the conformance monitor) to follow live.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sv2_codec::noise::keys::AuthorityPublicKey;
use sv2_codec::noise::InitiatorConfig;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinError;

use super::runner::{
    publish_final, publish_stats, spawn_driver, stats_ticker, tcp_connect, EventLog, MinerHandle,
    TaskReport, TcpConnectError,
};
use super::stats::MinerStats;
use super::{ConfigError, Counters, Device, DeviceConfig, Event, Output, Phase};
use sv2_engine::{MinerConfig, Share, Unsupported};
use sv2_wire::{
    unix_now, Connection, Entry, KeyLog, NetError, Retention, Side, Timestamp, Transcript,
};

pub use super::runner::{reconnect_address, EngineError, EngineRunner, ReconnectPolicy};

/// How the connection is protected.
#[derive(Debug, Clone)]
pub enum Security {
    /// Noise NX; the pool's certificate must be signed by `authority` (`None`: accept any,
    /// unauthenticated).
    Noise {
        authority: Option<AuthorityPublicKey>,
    },
    /// No encryption (spec §4: local networks only).
    Plaintext,
}

/// One transcript entry as the driver recorded it.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    /// Which connection of the run (0, then one more for each followed `Reconnect`): a new number
    /// starts a new conversation.
    pub connection: u32,
    /// The entry's index in that connection's transcript.
    pub index: usize,
    pub entry: &'a Entry,
}

/// Receives every transcript entry of the device's connections as it is recorded (in order, on the
/// driver's task: keep it quick). Entries dropped by the retention limits before it saw them are
/// skipped (their indices too).
#[derive(Clone)]
pub struct Observer(Arc<dyn Fn(Observed<'_>) + Send + Sync>);

impl Observer {
    pub fn new(f: impl Fn(Observed<'_>) + Send + Sync + 'static) -> Self {
        Observer(Arc::new(f))
    }
}

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Observer")
    }
}

/// Hands a connection's new transcript entries to the observer.
struct Forward<'a> {
    observer: Option<&'a Observer>,
    connection: u32,
    /// Entries of the connection handed on (or skipped) so far.
    done: u64,
}

impl Forward<'_> {
    fn run(&mut self, transcript: &Transcript) {
        let Some(observer) = self.observer else {
            return;
        };
        let base = transcript.dropped();
        self.done = self.done.max(base);
        let entries = transcript.entries();
        let from = usize::try_from(self.done - base).unwrap_or(usize::MAX);
        for (offset, entry) in entries.iter().enumerate().skip(from) {
            let index = usize::try_from(base).unwrap_or(usize::MAX) + offset;
            (observer.0)(Observed {
                connection: self.connection,
                index,
                entry,
            });
        }
        self.done = base + entries.len() as u64;
    }
}

/// Per-step deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP connect.
    pub connect: Duration,
    /// Noise handshake (act 2).
    pub handshake: Duration,
    /// SetupConnection answered.
    pub setup: Duration,
    /// Open*MiningChannel answered.
    pub open_channel: Duration,
    /// From the channel opening (or losing its job) to a job that can be mined.
    pub first_job: Duration,
    /// Silence from the pool while mining.
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            handshake: Duration::from_secs(10),
            setup: Duration::from_secs(10),
            open_channel: Duration::from_secs(10),
            first_job: Duration::from_secs(30),
            idle: Duration::from_secs(600),
        }
    }
}

/// Everything the SV2 device driver needs.
#[derive(Debug, Clone)]
pub struct DeviceDriverConfig {
    /// `host:port` of the pool.
    pub address: String,
    pub security: Security,
    pub device: DeviceConfig,
    pub engine: MinerConfig,
    pub timeouts: Timeouts,
    /// Found shares handed to the core per second at most (the rest are counted as dropped): at
    /// an easy target the engine finds millions per second.
    pub max_shares_per_second: u32,
    /// How often stats are published (and the core ticks).
    pub stats_interval: Duration,
    /// How much of the transcript is kept.
    pub retention: Retention,
    /// Where the Noise session's key log line goes (none by default).
    pub key_log: KeyLog,
    /// Events kept in the report (oldest dropped first).
    pub event_limit: usize,
    /// Following `Reconnect` (§3.6.5): a new connection and handshake, checked against the same
    /// authority key, then a fresh setup and channel; the share counts carry over.
    pub reconnect: ReconnectPolicy,
    /// Receives every transcript entry as it is recorded (none by default).
    pub observer: Option<Observer>,
}

impl DeviceDriverConfig {
    /// A Noise connection to `address` checked against `authority`, default device and engine.
    pub fn new(address: impl Into<String>, authority: Option<AuthorityPublicKey>) -> Self {
        DeviceDriverConfig {
            address: address.into(),
            security: Security::Noise { authority },
            device: DeviceConfig::default(),
            engine: MinerConfig::default(),
            timeouts: Timeouts::default(),
            max_shares_per_second: 200,
            stats_interval: Duration::from_secs(1),
            retention: Retention::DEFAULT,
            key_log: KeyLog::none(),
            event_limit: 10_000,
            reconnect: ReconnectPolicy::default(),
            observer: None,
        }
    }
}

/// Why the driver stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("connect to {address}: {source}")]
    Connect {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("connect to {address}: no connection within {after:?}")]
    ConnectTimeout { address: String, after: Duration },
    /// A connection step failed (handshake, a read with its deadline, a write); names the step.
    #[error(transparent)]
    Net(#[from] NetError),
    #[error("SetupConnection refused: {error_code} (flags {flags:#x})")]
    SetupRefused { flags: u32, error_code: String },
    #[error("OpenMiningChannel refused: {0}")]
    ChannelRefused(String),
    #[error("engine: {0}")]
    Engine(#[from] Unsupported),
    #[error("device configuration: {0}")]
    Config(#[from] ConfigError),
}

/// How a run ended without error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The shutdown signal (or the handle was dropped).
    Shutdown,
    /// The pool closed the channel.
    ChannelClosed { reason_code: String },
    /// The pool asked to reconnect where [`DeviceDriverConfig::reconnect`] does not allow (another
    /// host), or once too often: not followed, reported.
    Reconnect { new_host: String, new_port: u16 },
}

/// What a run leaves behind, error or not.
#[derive(Debug)]
pub struct DeviceReport {
    pub outcome: Result<End, DriverError>,
    /// The last stats.
    pub stats: MinerStats,
    /// The last events (at most `event_limit`), with their time since the start.
    pub events: Vec<(Duration, Event)>,
    /// The conversation (empty when the connection never came up).
    pub transcript: Transcript,
}

impl TaskReport for DeviceReport {
    fn task_failed(e: JoinError) -> Self {
        DeviceReport {
            outcome: Err(DriverError::Net(NetError::Io {
                step: "driver task",
                source: std::io::Error::other(e.to_string()),
            })),
            stats: MinerStats::default(),
            events: Vec::new(),
            transcript: Transcript::default(),
        }
    }
}

/// A running device: live stats, every event as it happens, and shutdown ([`MinerHandle::shutdown`]
/// closes the channel first).
pub type DeviceHandle = MinerHandle<Event, DeviceReport>;

/// Starts the device on the current tokio runtime.
pub fn spawn(config: DeviceDriverConfig) -> DeviceHandle {
    spawn_driver(|stats, events, shutdown| run(config, stats, events, shutdown))
}

/// Connects to `address` within `timeout` and runs the handshake (or none), writing the session's keys
/// to `key_log`.
pub async fn connect(
    address: &str,
    security: &Security,
    timeouts: &Timeouts,
    key_log: &KeyLog,
) -> Result<Connection<TcpStream>, DriverError> {
    let stream = tcp_connect(address, timeouts.connect)
        .await
        .map_err(|e| match e {
            TcpConnectError::Timeout => DriverError::ConnectTimeout {
                address: address.to_owned(),
                after: timeouts.connect,
            },
            TcpConnectError::Io(source) => DriverError::Connect {
                address: address.to_owned(),
                source,
            },
        })?;
    Ok(match security {
        Security::Plaintext => Connection::plaintext(stream, Side::Client),
        Security::Noise { authority } => {
            let config = match authority {
                Some(key) => InitiatorConfig::new(*key),
                None => InitiatorConfig::unauthenticated(),
            };
            Connection::initiate(stream, config, unix_now(), timeouts.handshake, key_log).await?
        }
    })
}

fn step_of(phase: Phase, t: &Timeouts) -> (&'static str, Duration) {
    match phase {
        Phase::NotStarted | Phase::AwaitingSetup => ("SetupConnection", t.setup),
        Phase::AwaitingChannel => ("OpenMiningChannel", t.open_channel),
        Phase::AwaitingJob => ("first job", t.first_job),
        Phase::Mining | Phase::Closed | Phase::Failed => ("mining", t.idle),
    }
}

/// How long a closing connection waits for the pool to close its side after ours.
const CLOSE_LINGER: Duration = Duration::from_millis(500);

/// Runs the device until shutdown, a close, or an error. `shutdown` turning true (or its sender
/// going away) ends the run.
pub async fn run(
    config: DeviceDriverConfig,
    stats: watch::Sender<MinerStats>,
    events: Option<mpsc::Sender<Event>>,
    shutdown: watch::Receiver<bool>,
) -> DeviceReport {
    let started = Instant::now();
    let mut log = EventLog::new(started, config.event_limit);
    let mut transcript = Transcript::default();
    let mut last = MinerStats::default();
    let mut address = config.address.clone();
    let mut counters = Counters::default();
    let mut followed = 0u32;
    let outcome = loop {
        let mut this = Transcript::default();
        let outcome = session(
            &config,
            followed,
            &address,
            &mut counters,
            &stats,
            events.as_ref(),
            shutdown.clone(),
            &mut log,
            &mut this,
            &mut last,
            started,
        )
        .await;
        transcript.append(&mut this);
        let Ok(End::Reconnect { new_host, new_port }) = &outcome else {
            break outcome;
        };
        let next = reconnect_address(&address, Some(new_host), Some(*new_port), config.reconnect)
            .filter(|_| followed < config.reconnect.max);
        let Some(next) = next else {
            break outcome;
        };
        if *shutdown.borrow() {
            break Ok(End::Shutdown);
        }
        followed += 1;
        transcript.note(
            Timestamp::now(),
            format!("Reconnect followed: {address} -> {next}"),
        );
        address = next;
    };
    publish_final(&stats, &mut last, started);
    DeviceReport {
        outcome,
        stats: last,
        events: log.entries.into_iter().collect(),
        transcript,
    }
}

#[allow(clippy::too_many_arguments)]
async fn session(
    config: &DeviceDriverConfig,
    connection: u32,
    address: &str,
    counters: &mut Counters,
    stats: &watch::Sender<MinerStats>,
    events: Option<&mpsc::Sender<Event>>,
    mut shutdown: watch::Receiver<bool>,
    log: &mut EventLog<Event>,
    transcript: &mut Transcript,
    last: &mut MinerStats,
    started: Instant,
) -> Result<End, DriverError> {
    let mut device = Device::new(config.device.clone())?;
    device.carry_counters(*counters);
    let (mut engine, mut shares) = EngineRunner::new(config.engine, config.max_shares_per_second);
    engine.check()?;
    let mut conn = connect(address, &config.security, &config.timeouts, &config.key_log).await?;
    conn.transcript.set_retention(config.retention);
    conn.record_endpoints();
    let mut forward = Forward {
        observer: config.observer.as_ref(),
        connection,
        done: 0,
    };
    forward.run(&conn.transcript);
    let result = drive(
        config,
        &mut forward,
        &mut device,
        &mut engine,
        &mut shares,
        &mut conn,
        stats,
        events,
        &mut shutdown,
        log,
        last,
        started,
    )
    .await;
    // A graceful end: the pool reads our CloseChannel before it sees the connection go.
    conn.close(CLOSE_LINGER).await;
    forward.run(&conn.transcript);
    *transcript = std::mem::take(&mut conn.transcript);
    publish(&device, &mut engine, stats, last, started, true);
    *counters = device.counters();
    engine.stop().await;
    result
}

#[allow(clippy::too_many_arguments)]
async fn drive(
    config: &DeviceDriverConfig,
    forward: &mut Forward<'_>,
    device: &mut Device,
    engine: &mut EngineRunner,
    shares: &mut mpsc::UnboundedReceiver<Share>,
    conn: &mut Connection<TcpStream>,
    stats: &watch::Sender<MinerStats>,
    events: Option<&mpsc::Sender<Event>>,
    shutdown: &mut watch::Receiver<bool>,
    log: &mut EventLog<Event>,
    last: &mut MinerStats,
    started: Instant,
) -> Result<End, DriverError> {
    let t = config.timeouts;
    let outputs = device.start();
    let applied = apply(outputs, device, engine, conn, events, log).await;
    forward.run(&conn.transcript);
    if let Some(end) = applied? {
        return Ok(end);
    }
    let mut phase = device.phase();
    let (mut step, wait) = step_of(phase, &t);
    let mut deadline = tokio::time::Instant::now() + wait;
    let mut ticker = stats_ticker(config.stats_interval);
    loop {
        if *shutdown.borrow() {
            let outputs = device.close("shutdown");
            apply(outputs, device, engine, conn, events, log).await?;
            return Ok(End::Shutdown);
        }
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        let outputs = tokio::select! {
            received = conn.recv(step, remaining) => match received {
                Ok(mut decoded) => {
                    if device.config().bool_whole_byte {
                        read_bools_by_byte(&mut decoded);
                    }
                    let outputs = device.handle(&decoded.message, Instant::now());
                    if device.phase() == Phase::Mining {
                        // Any message from the pool re-arms the idle deadline.
                        deadline = tokio::time::Instant::now() + t.idle;
                    }
                    outputs
                }
                Err(NetError::Decode { source, frame, .. }) => {
                    match lenient_job(device.config(), &frame) {
                        Some(message) => device.handle(&message, Instant::now()),
                        None => {
                            let event = Event::Unexpected { message: format!("undecodable frame: {source}") };
                            log.report(events, event);
                            Vec::new()
                        }
                    }
                }
                Err(e) => return Err(e.into()),
            },
            Some(share) = shares.recv() => device.share_found(&share, Instant::now()),
            _ = ticker.tick() => {
                publish(device, engine, stats, last, started, true);
                device.tick(Instant::now())
            },
            changed = shutdown.changed() => {
                if changed.is_err() {
                    let outputs = device.close("shutdown");
                    apply(outputs, device, engine, conn, events, log).await?;
                    return Ok(End::Shutdown);
                }
                Vec::new()
            }
        };
        let applied = apply(outputs, device, engine, conn, events, log).await;
        forward.run(&conn.transcript);
        if let Some(end) = applied? {
            publish(device, engine, stats, last, started, false);
            return Ok(end);
        }
        if device.phase() != phase {
            phase = device.phase();
            let (s, wait) = step_of(phase, &t);
            step = s;
            deadline = tokio::time::Instant::now() + wait;
            publish(device, engine, stats, last, started, false);
        }
    }
}

/// Carries out the core's outputs; `Some` when the run ends.
async fn apply(
    outputs: Vec<Output>,
    device: &mut Device,
    engine: &mut EngineRunner,
    conn: &mut Connection<TcpStream>,
    events: Option<&mpsc::Sender<Event>>,
    log: &mut EventLog<Event>,
) -> Result<Option<End>, DriverError> {
    let mut end = None;
    for output in outputs {
        match output {
            Output::Send(message) => conn.send(&message).await?,
            Output::Work(work) => {
                if let Err(e) = engine.replace_job(work.job) {
                    log.report(
                        events,
                        Event::CannotMine {
                            job_id: work.job_id,
                            reason: e.to_string(),
                        },
                    );
                }
            }
            Output::StopWork => engine.clear_job(),
            Output::Event(event) => {
                match &event {
                    Event::SetupRefused { flags, error_code } => {
                        let error = DriverError::SetupRefused {
                            flags: *flags,
                            error_code: error_code.clone(),
                        };
                        log.report(events, event);
                        return Err(error);
                    }
                    Event::ChannelRefused { error_code, .. } => {
                        let error = DriverError::ChannelRefused(error_code.clone());
                        log.report(events, event);
                        return Err(error);
                    }
                    Event::ChannelClosed { reason_code } => {
                        end = Some(End::ChannelClosed {
                            reason_code: reason_code.clone(),
                        });
                    }
                    Event::Reconnect { new_host, new_port } => {
                        end = Some(End::Reconnect {
                            new_host: new_host.clone(),
                            new_port: *new_port,
                        });
                    }
                    _ => {}
                }
                log.report(events, event);
            }
        }
    }
    if matches!(end, Some(End::Reconnect { .. })) {
        // Leaving: say so upstream.
        let outputs = device.close("reconnect");
        for output in outputs {
            if let Output::Send(message) = output {
                conn.send(&message).await?;
            }
        }
        engine.clear_job();
    }
    Ok(end)
}

fn publish(
    device: &Device,
    engine: &mut EngineRunner,
    stats: &watch::Sender<MinerStats>,
    last: &mut MinerStats,
    started: Instant,
    sample: bool,
) {
    let connected = matches!(
        device.phase(),
        Phase::AwaitingChannel | Phase::AwaitingJob | Phase::Mining
    );
    publish_stats(
        device.counters(),
        connected,
        engine,
        stats,
        last,
        started,
        sample,
    );
}

/// The `bool_whole_byte` fault: a BOOL whose high bits are set (the codec read its low bit, with a
/// warning) taken as True, as a reader of the whole byte would.
fn read_bools_by_byte(decoded: &mut sv2_codec::Decoded<'static>) {
    let high_bits = decoded.warnings.iter().any(|w| {
        matches!(
            w.kind,
            sv2_codec::types::WarningKind::NonCanonicalBool { .. }
        )
    });
    if let (true, sv2_codec::Message::NewExtendedMiningJob(job)) = (high_bits, &mut decoded.message)
    {
        job.version_rolling_allowed = true;
    }
}

/// The `option_any_prefix` fault: a job whose min_ntime OPTION prefix is neither 0 nor 1 (which the
/// codec refuses) read as present, as a decoder that tests the prefix for non-zero would.
fn lenient_job(config: &super::DeviceConfig, frame: &[u8]) -> Option<sv2_codec::Message<'static>> {
    // Header 6, channel_id 4, job_id 4: the OPTION prefix of min_ntime, in both job messages.
    const PREFIX: usize = 6 + 4 + 4;
    let job = matches!(frame.get(2), Some(0x15 | 0x1f));
    if !config.option_any_prefix || !job || frame.get(PREFIX).is_none_or(|p| *p <= 1) {
        return None;
    }
    let mut patched = frame.to_vec();
    patched[PREFIX] = 1;
    let (parsed, _) = sv2_codec::Frame::parse(&patched).ok()?;
    sv2_codec::decode_frame(&parsed)
        .ok()
        .map(|d| d.message.into_static())
}
