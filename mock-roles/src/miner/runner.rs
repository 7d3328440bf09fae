//! What the two miner drivers (the SV2 device in [`super::driver`] and the SV1 client in
//! [`crate::sv1::driver`]) share: the [`EngineRunner`] (engine threads, the rate-capped share bridge
//! into the tokio task, job replacement, the hashrate meter), the [`MinerHandle`] a spawned driver
//! returns, the TCP connect, the stats ticker and publisher, and the bounded [`EventLog`].

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinError, JoinHandle};

use super::stats::{HashrateMeter, MinerStats};
use super::Counters;
use sv2_engine::{Job, JobError, Miner, MinerConfig, Share, Unsupported};

/// A report a driver task leaves; [`MinerHandle::join`] makes one when the task itself failed.
pub trait TaskReport {
    /// The report of a task that panicked or was cancelled.
    fn task_failed(error: JoinError) -> Self;
}

/// A running miner driver (SV2 device or SV1 client).
#[derive(Debug)]
pub struct MinerHandle<E, R> {
    /// Live stats.
    pub stats: watch::Receiver<MinerStats>,
    /// Every event, as it happens, while the reader keeps up: the channel holds at most
    /// [`EVENT_CHANNEL_CAPACITY`] unread events and drops later ones until there is room again (a
    /// handle nobody reads, or a peer flooding notifications, cannot grow the process without bound;
    /// the report keeps the latest events either way).
    pub events: mpsc::Receiver<E>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<R>,
}

impl<E, R: TaskReport> MinerHandle<E, R> {
    /// Asks the miner to stop (the SV2 device closes its channel first).
    pub fn shutdown(&self) {
        let _ = self.shutdown.send(true);
    }

    /// Whether the run has ended (by itself, or after a shutdown).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Waits for the run to end.
    pub async fn join(self) -> R {
        let MinerHandle { task, shutdown, .. } = self;
        // Keep the sender alive until the task ends: dropping it means "shut down".
        let report = task.await;
        drop(shutdown);
        report.unwrap_or_else(R::task_failed)
    }

    /// [`MinerHandle::shutdown`], then [`MinerHandle::join`].
    pub async fn stop(self) -> R {
        self.shutdown();
        self.join().await
    }
}

/// Unread events a [`MinerHandle`] holds at most.
pub const EVENT_CHANNEL_CAPACITY: usize = 4096;

/// Spawns `run(stats, events, shutdown)` on the current tokio runtime, with the channels its handle
/// reads.
pub(crate) fn spawn_driver<E, R, F>(
    run: impl FnOnce(watch::Sender<MinerStats>, Option<mpsc::Sender<E>>, watch::Receiver<bool>) -> F,
) -> MinerHandle<E, R>
where
    F: Future<Output = R> + Send + 'static,
    R: Send + 'static,
{
    let (stats_tx, stats) = watch::channel(MinerStats::default());
    let (events_tx, events) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
    let (shutdown, shutdown_rx) = watch::channel(false);
    let task = tokio::spawn(run(stats_tx, Some(events_tx), shutdown_rx));
    MinerHandle {
        stats,
        events,
        shutdown,
        task,
    }
}

/// Why a TCP connect failed.
pub(crate) enum TcpConnectError {
    Timeout,
    Io(std::io::Error),
}

/// Connects to `address` within `after`, Nagle off.
pub(crate) async fn tcp_connect(
    address: &str,
    after: Duration,
) -> Result<TcpStream, TcpConnectError> {
    match tokio::time::timeout(after, TcpStream::connect(address)).await {
        Err(_) => Err(TcpConnectError::Timeout),
        Ok(Err(source)) => Err(TcpConnectError::Io(source)),
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
    }
}

/// The ticker that publishes stats and ticks the core (every `interval`, 10 ms at the least).
pub(crate) fn stats_ticker(interval: Duration) -> tokio::time::Interval {
    let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(10)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker
}

/// Why the engine could not take a job.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Unsupported(#[from] Unsupported),
    #[error(transparent)]
    Job(#[from] JobError),
    #[error("cannot start the share bridge thread: {0}")]
    Spawn(#[source] std::io::Error),
}

/// The engine, its share bridge and hashrate meter, started on the first work.
#[derive(Debug)]
pub struct EngineRunner {
    config: MinerConfig,
    max_per_second: u32,
    miner: Option<Miner>,
    shares_tx: mpsc::UnboundedSender<Share>,
    rate_dropped: Arc<AtomicU64>,
    meter: HashrateMeter,
    started: bool,
}

impl EngineRunner {
    /// An engine not started yet; found shares will arrive on the returned receiver.
    pub fn new(
        config: MinerConfig,
        max_per_second: u32,
    ) -> (EngineRunner, mpsc::UnboundedReceiver<Share>) {
        let (shares_tx, shares_rx) = mpsc::unbounded_channel();
        (
            EngineRunner {
                config,
                max_per_second,
                miner: None,
                shares_tx,
                rate_dropped: Arc::new(AtomicU64::new(0)),
                meter: HashrateMeter::new(Instant::now()),
                started: false,
            },
            shares_rx,
        )
    }

    /// Checks that the backend runs here (before connecting).
    pub fn check(&self) -> Result<(), Unsupported> {
        self.config.backend.hasher().map(|_| ())
    }

    /// Mines `job` (starting the threads on first use).
    pub fn replace_job(&mut self, job: Job) -> Result<(), EngineError> {
        if self.miner.is_none() {
            let (miner, rx) = Miner::start(self.config)?;
            let tx = self.shares_tx.clone();
            let max = self.max_per_second.max(1);
            let dropped = Arc::clone(&self.rate_dropped);
            std::thread::Builder::new()
                .name("sv2-miner-shares".into())
                .spawn(move || bridge(rx, tx, max, dropped))
                .map_err(EngineError::Spawn)?;
            self.miner = Some(miner);
            if !self.started {
                self.meter = HashrateMeter::new(Instant::now());
                self.started = true;
            }
        }
        match &self.miner {
            Some(miner) => Ok(miner.replace_job(job)?),
            None => Ok(()),
        }
    }

    /// Stops hashing until the next job.
    pub fn clear_job(&self) {
        if let Some(miner) = &self.miner {
            miner.clear_job();
        }
    }

    /// Hashes so far.
    pub fn hashes(&self) -> u64 {
        self.miner.as_ref().map_or(0, Miner::hashes)
    }

    /// Shares the bridge dropped over the rate cap.
    pub fn rate_dropped(&self) -> u64 {
        self.rate_dropped.load(Ordering::Relaxed)
    }

    /// `(hashes, MH/s recent, MH/s average)` now.
    pub fn sample(&mut self, now: Instant) -> (u64, f64, f64) {
        let hashes = self.hashes();
        let (recent, average) = self.meter.sample(hashes, now);
        (hashes, recent, average)
    }

    /// Stops and joins the engine's threads (on a blocking thread).
    pub async fn stop(mut self) {
        if let Some(miner) = self.miner.take() {
            let _ = tokio::task::spawn_blocking(move || miner.stop()).await;
        }
    }
}

/// Forwards shares from the engine's threads to the async side, at most `max` per second.
fn bridge(
    rx: std::sync::mpsc::Receiver<Share>,
    tx: mpsc::UnboundedSender<Share>,
    max: u32,
    dropped: Arc<AtomicU64>,
) {
    let mut window = Instant::now();
    let mut sent = 0u32;
    // Ends when the engine stops (its threads drop their senders).
    while let Ok(share) = rx.recv() {
        let now = Instant::now();
        if now.duration_since(window) >= Duration::from_secs(1) {
            window = now;
            sent = 0;
        }
        if sent < max {
            sent += 1;
            if tx.send(share).is_err() {
                break;
            }
        } else {
            dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Recent events, bounded.
#[derive(Debug)]
pub(crate) struct EventLog<E> {
    started: Instant,
    limit: usize,
    pub(crate) entries: VecDeque<(Duration, E)>,
}

impl<E> EventLog<E> {
    pub(crate) fn new(started: Instant, limit: usize) -> Self {
        EventLog {
            started,
            limit: limit.max(1),
            entries: VecDeque::new(),
        }
    }

    pub(crate) fn push(&mut self, event: E) {
        if self.entries.len() >= self.limit {
            self.entries.pop_front();
        }
        self.entries.push_back((self.started.elapsed(), event));
    }
}

impl<E: Clone> EventLog<E> {
    /// Sends `event` to the live channel (when there is one and it has room) and keeps it.
    pub(crate) fn report(&mut self, events: Option<&mpsc::Sender<E>>, event: E) {
        if let Some(tx) = events {
            let _ = tx.try_send(event.clone());
        }
        self.push(event);
    }
}

/// Folds a core's counters and the engine's hash rate (when `sample`) into `last` and publishes it.
/// Shared by the SV2 device and SV1 drivers.
pub(crate) fn publish_stats(
    c: Counters,
    connected: bool,
    engine: &mut EngineRunner,
    stats: &watch::Sender<MinerStats>,
    last: &mut MinerStats,
    started: Instant,
    sample: bool,
) {
    if sample {
        let (hashes, recent, average) = engine.sample(Instant::now());
        last.hashes = hashes;
        last.mhs = recent;
        last.mhs_average = average;
    }
    *last = MinerStats {
        connected,
        elapsed: started.elapsed(),
        jobs: c.jobs,
        found: c.found + engine.rate_dropped(),
        submitted: c.submitted,
        accepted: c.accepted,
        rejected: c.rejected,
        dropped: c.dropped + engine.rate_dropped(),
        blocks: c.blocks,
        ..last.clone()
    };
    let _ = stats.send(last.clone());
}

/// Publishes `last` one final time, as disconnected.
pub(crate) fn publish_final(
    stats: &watch::Sender<MinerStats>,
    last: &mut MinerStats,
    started: Instant,
) {
    last.connected = false;
    last.elapsed = started.elapsed();
    let _ = stats.send(last.clone());
}
/// How a request to reconnect elsewhere (SV1 `client.reconnect`, SV2 `Reconnect`, §3.6.5) is followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconnectPolicy {
    /// Reconnections followed per run (0: the run ends at the first, reporting where it was sent).
    pub max: u32,
    /// Follow a reconnect to another host (by default only the host first connected to, on any
    /// port: a hostile server cannot send the miner elsewhere).
    pub other_hosts: bool,
    /// The longest wait honoured (a server asking for more gets this).
    pub max_wait: Duration,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            max: 3,
            other_hosts: false,
            max_wait: Duration::from_secs(30),
        }
    }
}

/// Where a reconnect request (host, port) from a session on `current` ("host:port") points, when the
/// policy allows going there: an absent or empty host, or the same one, is the current host; an
/// absent port (or 0) is the current port. Another host only with `other_hosts`.
pub fn reconnect_address(
    current: &str,
    host: Option<&str>,
    port: Option<u16>,
    policy: ReconnectPolicy,
) -> Option<String> {
    let (current_host, current_port) = current.rsplit_once(':')?;
    let host = host.map(str::trim).filter(|h| !h.is_empty());
    let same = host.is_none_or(|h| h.eq_ignore_ascii_case(current_host));
    if !same && !policy.other_hosts {
        return None;
    }
    let host = host.unwrap_or(current_host);
    if host.contains(char::is_whitespace) || host.contains('/') {
        return None;
    }
    let port = match port.filter(|p| *p != 0) {
        Some(p) => p.to_string(),
        None => current_port.to_owned(),
    };
    Some(format!("{host}:{port}"))
}
