//! The mock TP on the network: a tokio accept loop around the [`TemplateProvider`] core.
//!
//! Each connection runs the Noise responder handshake (or none, in plaintext mode), then one task reads
//! frames and feeds them to the core while a per-session queue carries what the core sends, including
//! templates broadcast when a block is found or the block timer fires. Verdicts on SubmitSolution are
//! kept by the core; [`TpHandle`] reads them and can wait for the next one.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sv2_codec::noise::keys::{Keypair, SecretKey};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Notify};

use super::{Output, SessionId, SolutionVerdict, TemplateProvider, TpConfig};
use crate::served::{self, Command, Log};
use sv2_wire::{unix_now, KeyLog};

/// How the mock TP listens.
#[derive(Debug, Clone)]
pub struct TpServerConfig {
    /// The core's configuration.
    pub tp: TpConfig,
    /// The authority that signs the TP's certificate; `None` for a plaintext TP.
    pub authority: Option<Keypair>,
    /// The TP's static key (the certificate signs it).
    pub static_key: SecretKey,
    /// Certificate lifetime.
    pub cert_validity: Duration,
    /// A new block every this often (None: only on demand and when a solution is found).
    pub block_interval: Option<Duration>,
    /// How long the handshake may take.
    pub handshake_timeout: Duration,
    /// Where each finished connection is written as a pcapng (none by default).
    pub recorder: Option<sv2_wire::capture::write::SharedPcapng>,
    /// Where each Noise session's key log line goes (none by default).
    pub key_log: KeyLog,
}

impl TpServerConfig {
    /// An encrypted TP signed by `authority`, with a fresh static key and regtest templates.
    pub fn new(authority: Keypair) -> Result<Self, sv2_codec::noise::keys::KeyError> {
        Ok(Self {
            tp: TpConfig::default(),
            authority: Some(authority),
            static_key: SecretKey::generate()?,
            cert_validity: Duration::from_secs(24 * 3600),
            block_interval: None,
            handshake_timeout: Duration::from_secs(10),
            key_log: KeyLog::none(),
            recorder: None,
        })
    }
}

/// Log lines kept by a running TP.
pub const LOG_KEEP: usize = 10_000;

struct Shared {
    core: Mutex<TemplateProvider>,
    sessions: Mutex<HashMap<SessionId, mpsc::UnboundedSender<Command>>>,
    verdict_arrived: Notify,
    log: Log,
}

impl Shared {
    /// Carries out the core's outputs.
    fn dispatch(&self, outputs: Vec<Output>) {
        let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        for output in outputs {
            match output {
                Output::Send { session, message } => {
                    if let Some(tx) = sessions.get(&session) {
                        let _ = tx.send(Command::Send(message));
                    }
                }
                Output::Close { session, reason } => {
                    if let Some(tx) = sessions.get(&session) {
                        let _ = tx.send(Command::Close(reason));
                    }
                }
                Output::Solution { session, verdict } => {
                    self.log.info(format!(
                        "session {session}: SubmitSolution for template {} {} ({})",
                        verdict.template_id,
                        if verdict.valid { "VALID" } else { "INVALID" },
                        if verdict.problems.is_empty() {
                            "block ok".to_owned()
                        } else {
                            verdict.problems.join("; ")
                        }
                    ));
                    self.verdict_arrived.notify_waiters();
                }
                Output::Unexpected { session, message } => {
                    self.log
                        .info(format!("session {session}: unexpected {message}, ignored"));
                }
            }
        }
    }

    fn core(&self) -> std::sync::MutexGuard<'_, TemplateProvider> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running mock TP.
#[derive(Debug)]
pub struct TpHandle {
    /// Where it listens.
    pub addr: SocketAddr,
    shared: Arc<SharedHandle>,
    shutdown: watch::Sender<bool>,
}

/// `Shared` behind a Debug-able wrapper.
struct SharedHandle(Shared);

impl std::fmt::Debug for SharedHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TpShared")
    }
}

impl TpHandle {
    /// The SubmitSolution verdicts kept (every one, up to [`super::MAX_VERDICTS_KEPT`] at least).
    pub fn verdicts(&self) -> Vec<SolutionVerdict> {
        self.shared.0.core().verdicts().to_vec()
    }

    /// SubmitSolution messages checked so far (kept or not).
    pub fn solutions_checked(&self) -> u64 {
        self.shared.0.core().solutions_checked()
    }

    /// Waits until at least `n` solutions were checked or `timeout` passes; returns the verdicts kept.
    pub async fn wait_for_verdicts(&self, n: usize, timeout: Duration) -> Vec<SolutionVerdict> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.0.verdict_arrived.notified();
            if self.solutions_checked() >= n as u64 {
                return self.verdicts();
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.verdicts();
            }
        }
    }

    /// A new block now: every session gets a new template and prev hash.
    pub fn new_block(&self) {
        let outputs = self.shared.0.core().new_block(unix_now());
        self.shared.0.dispatch(outputs);
    }

    /// A new block announced ahead, as a TP may do (§7: a future template lets the pool prepare
    /// jobs before the block is known): NewTemplate(future) to every session now, the matching
    /// SetNewPrevHash only after `gap`. Sessions that connect during the gap get both at once.
    pub async fn new_block_announced(&self, gap: Duration) {
        let outputs = self.shared.0.core().new_block(unix_now());
        let (templates, rest): (Vec<Output>, Vec<Output>) = outputs.into_iter().partition(|o| {
            matches!(
                o,
                Output::Send {
                    message: sv2_codec::Message::NewTemplate(_),
                    ..
                }
            )
        });
        self.shared.0.dispatch(templates);
        tokio::time::sleep(gap).await;
        self.shared.0.dispatch(rest);
    }

    /// The current chain height being built.
    pub fn height(&self) -> u32 {
        self.shared.0.core().tip().height
    }

    /// What happened, one line per event (connections, verdicts, unexpected messages): the latest
    /// [`LOG_KEEP`] or so (a peer sending endless undecodable frames cannot grow it without bound).
    /// Each line was also a `tracing` event.
    pub fn log(&self) -> Vec<String> {
        self.shared.0.log.lines()
    }

    /// Stops accepting and closes every session.
    pub fn shutdown(&self) {
        let _ = self.shutdown.send(true);
    }
}

impl Drop for TpHandle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// Starts the mock TP on `listener`.
pub fn serve(listener: TcpListener, config: TpServerConfig) -> std::io::Result<TpHandle> {
    let addr = listener.local_addr()?;
    let shared = Arc::new(SharedHandle(Shared {
        core: Mutex::new(TemplateProvider::new(config.tp.clone(), unix_now())),
        sessions: Mutex::new(HashMap::new()),
        verdict_arrived: Notify::new(),
        log: Log::new(LOG_KEEP),
    }));
    let (shutdown, shutdown_rx) = watch::channel(false);
    let responder = config
        .authority
        .as_ref()
        .map(|authority| served::responder(&config.static_key, authority, config.cert_validity));

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

    if let Some(interval) = config.block_interval {
        let timer_shared = shared.clone();
        let mut timer_shutdown = shutdown_rx;
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.tick().await;
            loop {
                tokio::select! {
                    _ = ticker.tick() => {
                        let outputs = timer_shared.0.core().new_block(unix_now());
                        timer_shared.0.dispatch(outputs);
                    }
                    _ = timer_shutdown.changed() => break,
                }
            }
        });
    }

    Ok(TpHandle {
        addr,
        shared,
        shutdown,
    })
}

/// One connection, from its accept to its end; every log line names it `session N:`.
async fn session(
    stream: TcpStream,
    peer: SocketAddr,
    handshake: &served::Handshake,
    shared: &Shared,
    mut shutdown: watch::Receiver<bool>,
) {
    let id = shared.core().reserve_session();
    let label = served::label(id);
    shared.log.info(format!("{label}: connection from {peer}"));
    let mut conn = match handshake.accept(stream).await {
        Ok(conn) => conn,
        Err(e) => return served::ended(&shared.log, &label, &Err(e)),
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    shared.core().open_session_as(id);
    shared
        .sessions
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id, tx);
    shared
        .log
        .info(format!("{label}: connected ({})", handshake.kind()));
    let result = served::serve(
        &mut conn,
        &mut rx,
        &mut shutdown,
        &label,
        |received| {
            if let Some(message) = received.message() {
                let outputs = shared.core().handle(id, message, unix_now());
                shared.dispatch(outputs);
            }
        },
        &shared.log,
    )
    .await;
    shared.core().close_session(id);
    shared
        .sessions
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&id);
    conn.shutdown().await;
    handshake.record(&conn.transcript, &shared.log, &label);
    served::ended(&shared.log, &label, &result);
}
