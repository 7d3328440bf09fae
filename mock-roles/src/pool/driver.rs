//! The mock pool on the network: a tokio accept loop around the [`Pool`] core.
//!
//! Each downstream connection runs the Noise responder handshake with a certificate the pool's
//! authority issues for its static key (or none, in plaintext mode), then one task reads frames and
//! feeds them to the core while a per-session queue carries what the core sends. The template source
//! is either the core's in-process TP or an upstream TP reached as a Noise initiator (or in plaintext);
//! a task relays its frames both ways. A tick task drives acknowledgements, vardiff and idle closes; an
//! optional timer makes in-process blocks. The core sits behind one mutex, and outputs are dispatched
//! while it is held, so every session sees messages in the order the core produced them.
//!
//! [`PoolHandle`] reads the statistics and events, waits for events, and shuts everything down (also
//! on drop).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use sv2_codec::noise::keys::{AuthorityPublicKey, KeyError, Keypair, SecretKey};
use sv2_codec::Message;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Notify};

use super::{ConfigError, Output, Pool, PoolConfig, PoolStats, SessionId, TemplateSource};
use crate::served::{self, Command, Log, READ_TIMEOUT};
use sv2_wire::{unix_now, Connection, KeyLog, NetError};

/// The pool's Noise identity: the authority that signs its certificate, and its static key.
#[derive(Debug, Clone)]
pub struct NoiseIdentity {
    pub authority: Keypair,
    pub static_key: SecretKey,
    /// Certificate lifetime (it starts a minute in the past, for clock skew).
    pub cert_validity: Duration,
}

impl NoiseIdentity {
    /// A fresh static key certified by `authority` for a day.
    pub fn new(authority: Keypair) -> Result<Self, KeyError> {
        Ok(Self {
            authority,
            static_key: SecretKey::generate()?,
            cert_validity: Duration::from_secs(24 * 3600),
        })
    }
}

/// An upstream Template Provider.
#[derive(Debug, Clone)]
pub struct UpstreamTp {
    pub address: SocketAddr,
    /// Noise with this authority's certificate checked (`Some(None)`: encrypted, certificate not
    /// checked); `None`: plaintext.
    pub noise: Option<Option<AuthorityPublicKey>>,
}

/// How the mock pool listens and where its templates come from.
#[derive(Debug, Clone)]
pub struct PoolServerConfig {
    /// The core's configuration. With `upstream` set, its template source becomes that TP.
    pub pool: PoolConfig,
    /// Noise for downstream connections; `None`: plaintext.
    pub noise: Option<NoiseIdentity>,
    /// An upstream TP; `None`: the core's in-process TP.
    pub upstream: Option<UpstreamTp>,
    /// How often [`Pool::tick`] runs.
    pub tick_interval: Duration,
    /// In-process TP: a new block every this often (None: only when one is found).
    pub block_interval: Option<Duration>,
    /// In-process TP: a new template on the same prev hash every this often (jobs sent with
    /// min_ntime set, active at once; None: templates change only with blocks and new prefixes).
    pub template_interval: Option<Duration>,
    /// How long handshakes (down and up) may take.
    pub handshake_timeout: Duration,
    /// Events kept for [`PoolHandle::events`] (the oldest go first).
    pub max_events: usize,
    /// Where each finished connection is written as a pcapng (none by default).
    pub recorder: Option<sv2_wire::capture::write::SharedPcapng>,
    /// Where each Noise session's key log line goes, downstream and upstream (none by default).
    pub key_log: KeyLog,
}

impl PoolServerConfig {
    /// An encrypted pool signed by `authority`, with a fresh static key and the in-process TP.
    pub fn new(authority: Keypair) -> Result<Self, KeyError> {
        Ok(Self {
            pool: PoolConfig::default(),
            noise: Some(NoiseIdentity::new(authority)?),
            upstream: None,
            tick_interval: Duration::from_secs(1),
            block_interval: None,
            template_interval: None,
            handshake_timeout: Duration::from_secs(10),
            max_events: 10_000,
            key_log: KeyLog::none(),
            recorder: None,
        })
    }
}

/// Why the pool could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("pool configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("the template source is Upstream but no upstream TP address is configured")]
    NoUpstream,
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
    #[error("upstream TP {address}: connect: {source}")]
    Connect {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("upstream TP {address}: {source}")]
    Upstream {
        address: SocketAddr,
        #[source]
        source: NetError,
    },
}

struct Shared {
    core: Mutex<Pool>,
    sessions: Mutex<HashMap<SessionId, mpsc::UnboundedSender<Command>>>,
    upstream: Mutex<Option<mpsc::UnboundedSender<Message<'static>>>>,
    events: Mutex<VecDeque<Output>>,
    event_arrived: Notify,
    log: Log,
    max_events: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// Runs `f` on the core and carries out its outputs before anyone else touches the core.
    fn with_core(&self, f: impl FnOnce(&mut Pool) -> Vec<Output>) {
        let mut core = lock(&self.core);
        let outputs = f(&mut core);
        self.dispatch(outputs);
    }

    fn dispatch(&self, outputs: Vec<Output>) {
        let mut new_events = false;
        for output in outputs {
            match output {
                Output::Send { session, message } => {
                    if let Some(tx) = lock(&self.sessions).get(&session) {
                        let _ = tx.send(Command::Send(message));
                    }
                }
                Output::Close { session, reason } => {
                    if let Some(tx) = lock(&self.sessions).get(&session) {
                        let _ = tx.send(Command::Close(reason));
                    }
                }
                Output::SendUpstream { message } => {
                    let sent = lock(&self.upstream)
                        .as_ref()
                        .is_some_and(|tx| tx.send(message.clone()).is_ok());
                    if !sent {
                        self.log
                            .warn(format!("upstream gone: {} dropped", message.name()));
                    }
                }
                event => {
                    match &event {
                        Output::Upstream { .. } | Output::TemplateRefused { .. } => {
                            self.log.warn(describe(&event))
                        }
                        _ => self.log.info(describe(&event)),
                    }
                    let mut events = lock(&self.events);
                    events.push_back(event);
                    while events.len() > self.max_events.max(1) {
                        events.pop_front();
                    }
                    new_events = true;
                }
            }
        }
        if new_events {
            self.event_arrived.notify_waiters();
        }
    }
}

/// One line for the log.
fn describe(event: &Output) -> String {
    match event {
        Output::ChannelOpened {
            session,
            channel_id,
            kind,
            ..
        } => format!("session {session}: {} channel {channel_id} opened", kind.name()),
        Output::ChannelClosed {
            session,
            channel_id,
            reason,
        } => format!("session {session}: channel {channel_id} closed ({reason})"),
        Output::ShareAccepted {
            session,
            channel_id,
            sequence_number,
            ..
        } => format!("session {session}: share {sequence_number} on channel {channel_id} accepted"),
        Output::ShareRejected {
            session,
            channel_id,
            sequence_number,
            error,
        } => format!(
            "session {session}: share {sequence_number} on channel {channel_id} rejected: {} ({error})",
            error.code()
        ),
        Output::BlockFound {
            session,
            channel_id,
            block_hash,
            template_id,
            ..
        } => format!(
            "session {session}: BLOCK {block_hash} on channel {channel_id} (template {template_id})"
        ),
        Output::SolutionChecked { verdict } => format!(
            "in-process TP: solution for template {} {}{}",
            verdict.template_id,
            if verdict.valid { "VALID" } else { "INVALID" },
            if verdict.problems.is_empty() {
                String::new()
            } else {
                format!(": {}", verdict.problems.join("; "))
            }
        ),
        Output::TemplateRefused { template_id, error } => {
            format!("template {template_id} refused: {error}")
        }
        Output::Upstream { note } => format!("upstream: {note}"),
        Output::Unexpected { session, message } => {
            format!("session {session}: unexpected {message}, ignored")
        }
        Output::Send { .. } | Output::Close { .. } | Output::SendUpstream { .. } => String::new(),
    }
}

/// `Shared` behind a Debug-able wrapper.
struct SharedHandle(Shared);

impl std::fmt::Debug for SharedHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PoolShared")
    }
}

/// A running mock pool.
#[derive(Debug)]
pub struct PoolHandle {
    /// Where it listens.
    pub addr: SocketAddr,
    shared: Arc<SharedHandle>,
    shutdown: watch::Sender<bool>,
}

impl PoolHandle {
    /// Counters so far.
    pub fn stats(&self) -> PoolStats {
        lock(&self.shared.0.core).stats().clone()
    }

    /// The events kept so far (everything but sends and closes), oldest first.
    pub fn events(&self) -> Vec<Output> {
        lock(&self.shared.0.events).iter().cloned().collect()
    }

    /// Waits until an event satisfies `want` (looking at those already kept too), or `timeout`.
    pub async fn wait_for(
        &self,
        want: impl Fn(&Output) -> bool,
        timeout: Duration,
    ) -> Option<Output> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.0.event_arrived.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(found) = lock(&self.shared.0.events).iter().find(|e| want(e)) {
                return Some(found.clone());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return lock(&self.shared.0.events)
                    .iter()
                    .find(|e| want(e))
                    .cloned();
            }
        }
    }

    /// In-process template source: a new block now.
    pub fn new_block(&self) {
        self.shared.0.with_core(|core| core.new_block(unix_now()));
    }

    /// Reads the core (channels, templates, configuration).
    pub fn with_pool<T>(&self, f: impl FnOnce(&Pool) -> T) -> T {
        f(&lock(&self.shared.0.core))
    }

    /// What happened, one line per event (the latest 10,000 or so; each was also a `tracing` event).
    pub fn log(&self) -> Vec<String> {
        self.shared.0.log.lines()
    }

    /// Stops accepting, closes every session and the upstream connection.
    pub fn shutdown(&self) {
        let _ = self.shutdown.send(true);
    }
}

impl Drop for PoolHandle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// Starts the mock pool on `listener`: connects to the upstream TP first (when configured), then
/// accepts miners until shut down.
pub async fn serve(
    listener: TcpListener,
    config: PoolServerConfig,
) -> Result<PoolHandle, ServeError> {
    let addr = listener.local_addr()?;
    let mut pool_config = config.pool.clone();
    if let Some(upstream) = &config.upstream {
        pool_config.template_source = TemplateSource::Upstream {
            endpoint_host: upstream.address.ip().to_string(),
            endpoint_port: upstream.address.port(),
        };
    } else if matches!(pool_config.template_source, TemplateSource::Upstream { .. }) {
        return Err(ServeError::NoUpstream);
    }
    let core = Pool::new(pool_config, unix_now())?;

    // The upstream connection first: a pool without templates is no use.
    let upstream_conn = match &config.upstream {
        Some(upstream) => {
            let stream = TcpStream::connect(upstream.address)
                .await
                .map_err(|source| ServeError::Connect {
                    address: upstream.address,
                    source,
                })?;
            let _ = stream.set_nodelay(true);
            let mut conn = Connection::initiate_or_plain(
                stream,
                upstream.noise,
                config.handshake_timeout,
                &config.key_log,
            )
            .await
            .map_err(|source| ServeError::Upstream {
                address: upstream.address,
                source,
            })?;
            conn.transcript
                .set_retention(served::retention(config.recorder.is_some()));
            Some(conn)
        }
        None => None,
    };

    let shared = Arc::new(SharedHandle(Shared {
        core: Mutex::new(core),
        sessions: Mutex::new(HashMap::new()),
        upstream: Mutex::new(None),
        events: Mutex::new(VecDeque::new()),
        event_arrived: Notify::new(),
        log: Log::new(10_000),
        max_events: config.max_events,
    }));
    let (shutdown, shutdown_rx) = watch::channel(false);

    if let Some(conn) = upstream_conn {
        let (tx, rx) = mpsc::unbounded_channel();
        *lock(&shared.0.upstream) = Some(tx);
        let upstream_shared = shared.clone();
        let upstream_shutdown = shutdown_rx.clone();
        let recorder = config.recorder.clone();
        tokio::spawn(async move {
            let result = upstream(
                conn,
                rx,
                &upstream_shared.0,
                upstream_shutdown,
                recorder.as_ref(),
            )
            .await;
            *lock(&upstream_shared.0.upstream) = None;
            let note = match result {
                Ok(()) => "upstream connection closed".to_owned(),
                Err(e) => format!("upstream connection failed: {e}"),
            };
            upstream_shared.0.dispatch(vec![Output::Upstream { note }]);
        });
        shared.0.with_core(|core| core.upstream_setup());
    }

    let responder = config.noise.as_ref().map(|identity| {
        served::responder(
            &identity.static_key,
            &identity.authority,
            identity.cert_validity,
        )
    });

    let accept_shared = shared.clone();
    let session_shutdown = shutdown_rx.clone();
    let handshake = served::Handshake {
        responder,
        timeout: config.handshake_timeout,
        key_log: config.key_log.clone(),
        recorder: config.recorder.clone(),
    };
    served::accept_loop(listener, shutdown_rx.clone(), move |stream, peer| {
        let shared = accept_shared.clone();
        let handshake = handshake.clone();
        let shutdown = session_shutdown.clone();
        async move { session(stream, peer, &handshake, &shared.0, shutdown).await }
    });

    let tick_shared = shared.clone();
    let mut tick_shutdown = shutdown_rx.clone();
    let tick_interval = config.tick_interval.max(Duration::from_millis(10));
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(tick_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => tick_shared.0.with_core(|core| core.tick(unix_now())),
                _ = tick_shutdown.changed() => break,
            }
        }
    });

    if config.upstream.is_none() {
        let every = |interval: Option<Duration>, step: fn(&mut Pool, u32) -> Vec<Output>| {
            let Some(interval) = interval else { return };
            let shared = shared.clone();
            let mut shutdown = shutdown_rx.clone();
            tokio::spawn(async move {
                let mut ticker = tokio::time::interval(interval);
                ticker.tick().await;
                loop {
                    tokio::select! {
                        _ = ticker.tick() => shared.0.with_core(|core| step(core, unix_now())),
                        _ = shutdown.changed() => break,
                    }
                }
            });
        };
        every(config.block_interval, Pool::new_block);
        every(config.template_interval, Pool::update_template);
    }

    Ok(PoolHandle {
        addr,
        shared,
        shutdown,
    })
}

/// One downstream connection, from its accept to its end; every log line names it `session N:`.
async fn session(
    stream: TcpStream,
    peer: SocketAddr,
    handshake: &served::Handshake,
    shared: &Shared,
    mut shutdown: watch::Receiver<bool>,
) {
    let id = lock(&shared.core).reserve_session();
    let label = served::label(id);
    shared.log.info(format!("{label}: connection from {peer}"));
    let mut conn = match handshake.accept(stream).await {
        Ok(conn) => conn,
        Err(e) => return served::ended(&shared.log, &label, &Err(e)),
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    {
        let mut core = lock(&shared.core);
        core.open_session_as(id, unix_now());
        lock(&shared.sessions).insert(id, tx);
    }
    shared
        .log
        .info(format!("{label}: connected ({})", handshake.kind()));
    let result = served::serve(
        &mut conn,
        &mut rx,
        &mut shutdown,
        &label,
        |received| match received {
            served::Received::Frame(decoded) => {
                shared.with_core(|core| core.handle_frame(id, decoded, unix_now()))
            }
            served::Received::Undecodable { frame, error } => {
                shared.with_core(|core| core.handle_undecodable(id, frame, error, unix_now()))
            }
        },
        &shared.log,
    )
    .await;
    {
        let mut core = lock(&shared.core);
        core.close_session(id);
        lock(&shared.sessions).remove(&id);
    }
    conn.shutdown().await;
    handshake.record(&conn.transcript, &shared.log, &label);
    served::ended(&shared.log, &label, &result);
}

async fn upstream(
    mut conn: Connection<TcpStream>,
    mut rx: mpsc::UnboundedReceiver<Message<'static>>,
    shared: &Shared,
    mut shutdown: watch::Receiver<bool>,
    recorder: Option<&sv2_wire::capture::write::SharedPcapng>,
) -> Result<(), NetError> {
    let result = async {
        loop {
            tokio::select! {
                received = conn.recv("read template source", READ_TIMEOUT) => match received {
                    Ok(decoded) => {
                        shared.with_core(|core| core.handle_template(&decoded.message, unix_now()));
                    }
                    Err(NetError::Decode { frame, source, .. }) => shared.log.warn(format!(
                        "upstream: undecodable frame {} ({source})",
                        hex::encode(&frame[..frame.len().min(64)])
                    )),
                    Err(e) => return Err(e),
                },
                message = rx.recv() => match message {
                    Some(message) => conn.send(&message).await?,
                    None => return Ok(()),
                },
                _ = shutdown.changed() => return Ok(()),
            }
        }
    }
    .await;
    conn.shutdown().await;
    served::record(recorder, &conn.transcript, &shared.log, "upstream");
    result
}
