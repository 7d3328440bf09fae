//! The SV1 miner on the network: a tokio task around the [`Sv1Client`] core and the engine.
//!
//! Plain TCP, newline-delimited JSON read by the conversation layer's stream decoder (lines longer
//! than [`MAX_LINE`] end the session). The engine
//! runs on its own threads ([`EngineRunner`], shared with the SV2 device driver, as are the handle
//! and the rest of the plumbing in [`crate::miner::runner`]); found shares come back through a
//! rate-capped bridge. Stats are published on a watch channel, events on a bounded
//! channel; every line in both directions is kept in a bounded transcript. Each step has a deadline
//! and failures name their step. `client.reconnect` is followed ([`ReconnectPolicy`]): to the same host
//! (a new port allowed), after the wait it asks for (capped), as a fresh session (configure, subscribe,
//! authorize) whose counters go on from the last; other hosts only when allowed.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinError;

use super::{Output, Phase, Sv1Client, Sv1Config, Sv1Event};
use crate::miner::runner::{
    publish_final, publish_stats, spawn_driver, stats_ticker, tcp_connect, EngineRunner, EventLog,
    MinerHandle, TaskReport, TcpConnectError,
};
pub use crate::miner::runner::{reconnect_address, ReconnectPolicy};
use crate::miner::stats::MinerStats;
use sv2_codec::sv1::json::MAX_LINE;
use sv2_engine::{MinerConfig, Share, Unsupported};
use sv2_wire::{
    Direction, Endpoints, Mode, Retention, Side, StreamDecoder, StreamEvent, Timestamp, Transcript,
};

/// Per-step deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sv1Timeouts {
    pub connect: Duration,
    /// The subscribe result.
    pub subscribe: Duration,
    /// The authorize result.
    pub authorize: Duration,
    /// From authorization (or losing the job) to a job.
    pub first_job: Duration,
    /// Silence from the server while mining.
    pub idle: Duration,
}

impl Default for Sv1Timeouts {
    fn default() -> Self {
        Sv1Timeouts {
            connect: Duration::from_secs(10),
            subscribe: Duration::from_secs(10),
            authorize: Duration::from_secs(10),
            first_job: Duration::from_secs(30),
            idle: Duration::from_secs(600),
        }
    }
}

/// Everything the SV1 driver needs.
#[derive(Debug, Clone)]
pub struct Sv1DriverConfig {
    /// `host:port` of the pool or translator.
    pub address: String,
    pub client: Sv1Config,
    pub engine: MinerConfig,
    pub timeouts: Sv1Timeouts,
    /// Found shares handed to the core per second at most.
    pub max_shares_per_second: u32,
    pub stats_interval: Duration,
    /// How much of the transcript is kept.
    pub retention: Retention,
    /// Events kept in the report (oldest dropped first).
    pub event_limit: usize,
    /// Following `client.reconnect`.
    pub reconnect: ReconnectPolicy,
}

impl Sv1DriverConfig {
    pub fn new(address: impl Into<String>, client: Sv1Config) -> Self {
        Sv1DriverConfig {
            address: address.into(),
            client,
            engine: MinerConfig::default(),
            timeouts: Sv1Timeouts::default(),
            max_shares_per_second: 200,
            stats_interval: Duration::from_secs(1),
            retention: Retention::DEFAULT,
            event_limit: 10_000,
            reconnect: ReconnectPolicy::default(),
        }
    }
}

/// Why the SV1 driver stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Sv1DriverError {
    #[error("connect to {address}: {source}")]
    Connect {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("connect to {address}: no connection within {after:?}")]
    ConnectTimeout { address: String, after: Duration },
    #[error("{step}: {source}")]
    Io {
        step: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{step}: the server closed the connection")]
    Closed { step: &'static str },
    #[error("{step}: no answer within {after:?}")]
    Timeout { step: &'static str, after: Duration },
    #[error("{step}: a line longer than {MAX_LINE} bytes")]
    LineTooLong { step: &'static str },
    #[error("mining.subscribe failed: {0}")]
    SubscribeFailed(String),
    #[error("mining.authorize failed: {0}")]
    AuthorizeFailed(String),
    #[error("engine: {0}")]
    Engine(#[from] Unsupported),
}

/// How a run ended without error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sv1End {
    Shutdown,
    /// `client.reconnect` not followed (none allowed, too many, or to another host).
    Reconnect {
        host: Option<String>,
        port: Option<u16>,
        wait: Option<u64>,
    },
}

/// What a run leaves behind.
#[derive(Debug)]
pub struct Sv1Report {
    pub outcome: Result<Sv1End, Sv1DriverError>,
    pub stats: MinerStats,
    pub events: Vec<(Duration, Sv1Event)>,
    /// Every line both ways (SV1 entries), and notes.
    pub transcript: Transcript,
}

impl TaskReport for Sv1Report {
    fn task_failed(e: JoinError) -> Self {
        Sv1Report {
            outcome: Err(Sv1DriverError::Io {
                step: "driver task",
                source: std::io::Error::other(e.to_string()),
            }),
            stats: MinerStats::default(),
            events: Vec::new(),
            transcript: Transcript::default(),
        }
    }
}

/// A running SV1 miner.
pub type Sv1Handle = MinerHandle<Sv1Event, Sv1Report>;

/// Starts the SV1 miner on the current tokio runtime.
pub fn spawn(config: Sv1DriverConfig) -> Sv1Handle {
    spawn_driver(|stats, events, shutdown| run(config, stats, events, shutdown))
}

/// A TCP stream read as SV1 lines by the stream decoder, every line both ways in the transcript.
struct Lines {
    stream: TcpStream,
    incoming: StreamDecoder,
    chunk: Vec<u8>,
    transcript: Transcript,
}

impl Lines {
    fn new(stream: TcpStream, transcript: Transcript) -> Self {
        Lines {
            stream,
            incoming: StreamDecoder::new(Direction::ServerToClient, Mode::Sv1),
            chunk: vec![0; 16 * 1024],
            transcript,
        }
    }

    /// The next line within `timeout` (cancel safe: bytes read stay in the decoder).
    async fn next(
        &mut self,
        step: &'static str,
        timeout: Duration,
    ) -> Result<String, Sv1DriverError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some((at, event)) = self.incoming.next_event() {
                let line = match &event {
                    StreamEvent::Sv1Line(line) => Ok(String::from_utf8_lossy(line).into_owned()),
                    // The only error of an SV1 decoder.
                    _ => Err(Sv1DriverError::LineTooLong { step }),
                };
                event.record(Direction::ServerToClient, at, &mut self.transcript);
                return line;
            }
            match tokio::time::timeout_at(deadline, self.stream.read(&mut self.chunk)).await {
                Err(_) => {
                    return Err(Sv1DriverError::Timeout {
                        step,
                        after: timeout,
                    })
                }
                Ok(Err(source)) => return Err(Sv1DriverError::Io { step, source }),
                Ok(Ok(0)) => return Err(Sv1DriverError::Closed { step }),
                Ok(Ok(n)) => self.incoming.push(&self.chunk[..n], Timestamp::now()),
            }
        }
    }

    async fn send(&mut self, line: String) -> Result<(), Sv1DriverError> {
        let mut bytes = line.into_bytes();
        self.transcript
            .sv1(Timestamp::now(), Direction::ClientToServer, &bytes);
        bytes.push(b'\n');
        let step = "send";
        self.stream
            .write_all(&bytes)
            .await
            .map_err(|source| Sv1DriverError::Io { step, source })?;
        self.stream
            .flush()
            .await
            .map_err(|source| Sv1DriverError::Io { step, source })
    }
}

fn step_of(phase: Phase, t: &Sv1Timeouts) -> (&'static str, Duration) {
    match phase {
        Phase::NotStarted | Phase::Subscribing => ("mining.subscribe", t.subscribe),
        Phase::Authorizing => ("mining.authorize", t.authorize),
        Phase::AwaitingJob => ("first job", t.first_job),
        Phase::Mining | Phase::Failed => ("mining", t.idle),
    }
}

/// Runs the SV1 miner until shutdown, a reconnect request, or an error.
pub async fn run(
    config: Sv1DriverConfig,
    stats: watch::Sender<MinerStats>,
    events: Option<mpsc::Sender<Sv1Event>>,
    mut shutdown: watch::Receiver<bool>,
) -> Sv1Report {
    let started = Instant::now();
    let mut log = EventLog::new(started, config.event_limit);
    let mut last = MinerStats::default();
    let mut client = Sv1Client::new(config.client.clone());
    let (mut engine, mut shares) = EngineRunner::new(config.engine, config.max_shares_per_second);
    let mut transcript = Transcript::new(config.retention);
    let mut address = config.address.clone();
    let mut followed = 0u32;
    let outcome = loop {
        if let Err(e) = engine.check() {
            break Err(e.into());
        }
        let stream = match connect(&address, config.timeouts.connect).await {
            Ok(stream) => stream,
            Err(e) => break Err(e),
        };
        let mut lines = Lines::new(stream, std::mem::take(&mut transcript));
        // The latest connection's (a followed client.reconnect moves them).
        lines.transcript.endpoints = Endpoints::seen_from(
            Side::Client,
            lines.stream.local_addr().ok(),
            lines.stream.peer_addr().ok(),
        );
        let outcome = drive(
            &config,
            &mut client,
            &mut engine,
            &mut shares,
            &mut lines,
            &stats,
            events.as_ref(),
            &mut shutdown,
            &mut log,
            &mut last,
            started,
        )
        .await;
        let _ = lines.stream.shutdown().await;
        transcript = lines.transcript;
        publish(&client, &mut engine, &stats, &mut last, started, true);
        let Ok(Sv1End::Reconnect { host, port, wait }) = &outcome else {
            break outcome;
        };
        let next = reconnect_address(&address, host.as_deref(), *port, config.reconnect);
        let Some(next) = next.filter(|_| followed < config.reconnect.max) else {
            break outcome;
        };
        let wait = Duration::from_secs(wait.unwrap_or(0)).min(config.reconnect.max_wait);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => break Ok(Sv1End::Shutdown),
        }
        if *shutdown.borrow() {
            break Ok(Sv1End::Shutdown);
        }
        followed += 1;
        address = next;
        let counters = client.counters();
        client = Sv1Client::new(config.client.clone());
        client.carry_counters(counters);
    };
    engine.stop().await;
    publish_final(&stats, &mut last, started);
    Sv1Report {
        outcome,
        stats: last,
        events: log.entries.into_iter().collect(),
        transcript,
    }
}

async fn connect(address: &str, after: Duration) -> Result<TcpStream, Sv1DriverError> {
    tcp_connect(address, after).await.map_err(|e| match e {
        TcpConnectError::Timeout => Sv1DriverError::ConnectTimeout {
            address: address.to_owned(),
            after,
        },
        TcpConnectError::Io(source) => Sv1DriverError::Connect {
            address: address.to_owned(),
            source,
        },
    })
}

#[allow(clippy::too_many_arguments)]
async fn drive(
    config: &Sv1DriverConfig,
    client: &mut Sv1Client,
    engine: &mut EngineRunner,
    shares: &mut mpsc::UnboundedReceiver<Share>,
    lines: &mut Lines,
    stats: &watch::Sender<MinerStats>,
    events: Option<&mpsc::Sender<Sv1Event>>,
    shutdown: &mut watch::Receiver<bool>,
    log: &mut EventLog<Sv1Event>,
    last: &mut MinerStats,
    started: Instant,
) -> Result<Sv1End, Sv1DriverError> {
    let t = config.timeouts;
    let outputs = client.start();
    if let Some(end) = apply(outputs, engine, lines, events, log).await? {
        return Ok(end);
    }
    let mut phase = client.phase();
    let (mut step, wait) = step_of(phase, &t);
    let mut deadline = tokio::time::Instant::now() + wait;
    let mut ticker = stats_ticker(config.stats_interval);
    loop {
        if *shutdown.borrow() {
            engine.clear_job();
            return Ok(Sv1End::Shutdown);
        }
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        let outputs = tokio::select! {
            line = lines.next(step, remaining) => {
                let line = line?;
                let outputs = client.handle_line(&line, Instant::now());
                if client.phase() == Phase::Mining {
                    deadline = tokio::time::Instant::now() + t.idle;
                }
                outputs
            }
            Some(share) = shares.recv() => client.share_found(&share, Instant::now()),
            _ = ticker.tick() => {
                publish(client, engine, stats, last, started, true);
                client.tick(Instant::now())
            }
            changed = shutdown.changed() => {
                if changed.is_err() {
                    engine.clear_job();
                    return Ok(Sv1End::Shutdown);
                }
                Vec::new()
            }
        };
        if let Some(end) = apply(outputs, engine, lines, events, log).await? {
            publish(client, engine, stats, last, started, false);
            return Ok(end);
        }
        if client.phase() != phase {
            phase = client.phase();
            let (s, wait) = step_of(phase, &t);
            step = s;
            deadline = tokio::time::Instant::now() + wait;
            publish(client, engine, stats, last, started, false);
        }
    }
}

async fn apply(
    outputs: Vec<Output>,
    engine: &mut EngineRunner,
    lines: &mut Lines,
    events: Option<&mpsc::Sender<Sv1Event>>,
    log: &mut EventLog<Sv1Event>,
) -> Result<Option<Sv1End>, Sv1DriverError> {
    let mut end = None;
    for output in outputs {
        match output {
            Output::Send(message) => lines.send(message.to_line()).await?,
            Output::Work(work) => {
                if let Err(e) = engine.replace_job(work.job) {
                    log.report(
                        events,
                        Sv1Event::CannotMine {
                            job_id: work.job_id,
                            reason: e.to_string(),
                        },
                    );
                }
            }
            Output::StopWork => engine.clear_job(),
            Output::Event(event) => {
                let failure = match &event {
                    Sv1Event::SubscribeFailed { error, result } => Some(
                        Sv1DriverError::SubscribeFailed(describe(error.as_ref(), result)),
                    ),
                    Sv1Event::AuthorizeFailed { error, result } => Some(
                        Sv1DriverError::AuthorizeFailed(describe(error.as_ref(), result)),
                    ),
                    Sv1Event::Reconnect { host, port, wait } => {
                        end = Some(Sv1End::Reconnect {
                            host: host.clone(),
                            port: *port,
                            wait: *wait,
                        });
                        None
                    }
                    _ => None,
                };
                log.report(events, event);
                if let Some(error) = failure {
                    return Err(error);
                }
            }
        }
    }
    if end.is_some() {
        engine.clear_job();
    }
    Ok(end)
}

fn describe(error: Option<&sv2_codec::sv1::json::RpcError>, result: &serde_json::Value) -> String {
    match error {
        Some(e) => e.to_string(),
        None => format!("result {result}"),
    }
}

fn publish(
    client: &Sv1Client,
    engine: &mut EngineRunner,
    stats: &watch::Sender<MinerStats>,
    last: &mut MinerStats,
    started: Instant,
    sample: bool,
) {
    let connected = matches!(
        client.phase(),
        Phase::Authorizing | Phase::AwaitingJob | Phase::Mining
    );
    publish_stats(
        client.counters(),
        connected,
        engine,
        stats,
        last,
        started,
        sample,
    );
}
