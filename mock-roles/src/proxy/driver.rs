//! The tokio driver of the mock proxy: one connection to the pool (redone after a loss, or where a
//! Reconnect points), and the devices' connections, accepted once the upstream channel is open.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use sv2_codec::noise::keys::AuthorityPublicKey;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use super::{DownstreamId, Output, Proxy, ProxyConfig};
use crate::pool::driver::NoiseIdentity;
use crate::served::{self, Command, Log};
use sv2_wire::capture::write::SharedPcapng;
use sv2_wire::{Connection, KeyLog, NetError};

/// How the mock proxy connects and listens.
#[derive(Debug, Clone)]
pub struct ProxyServerConfig {
    pub proxy: ProxyConfig,
    /// The pool.
    pub upstream: SocketAddr,
    /// Noise to the pool with its certificate checked against this authority (`Some(None)`:
    /// encrypted, not checked); `None`: plaintext.
    pub upstream_noise: Option<Option<AuthorityPublicKey>>,
    /// Noise for the devices; `None`: plaintext.
    pub noise: Option<NoiseIdentity>,
    /// How long handshakes (down and up) may take.
    pub handshake_timeout: Duration,
    /// Connection attempts to the pool after the connection was lost (or a Reconnect failed)
    /// before the proxy gives up.
    pub reconnect_attempts: u32,
    /// The pause between two attempts.
    pub retry_delay: Duration,
    /// Where each finished connection is written as a pcapng (none by default).
    pub recorder: Option<SharedPcapng>,
    /// Where each Noise session's key log line goes, both sides (none by default).
    pub key_log: KeyLog,
}

impl ProxyServerConfig {
    /// A plaintext proxy to the pool at `upstream`, checking its certificate against `authority`.
    pub fn new(upstream: SocketAddr, authority: Option<AuthorityPublicKey>) -> Self {
        ProxyServerConfig {
            proxy: ProxyConfig::default(),
            upstream,
            upstream_noise: Some(authority),
            noise: None,
            handshake_timeout: Duration::from_secs(10),
            reconnect_attempts: 5,
            retry_delay: Duration::from_secs(1),
            recorder: None,
            key_log: KeyLog::none(),
        }
    }
}

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("proxy configuration: {0}")]
    Config(String),
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
}

/// What goes up the pool connection.
#[derive(Debug)]
enum Up {
    Send(sv2_codec::Message<'static>),
    /// End this connection and connect there instead.
    Move(SocketAddr),
}

struct Shared {
    core: Mutex<Proxy>,
    sessions: Mutex<HashMap<DownstreamId, mpsc::UnboundedSender<Command>>>,
    upstream: Mutex<Option<mpsc::UnboundedSender<Up>>>,
    /// Where the pool connection is (or goes next).
    target: Mutex<SocketAddr>,
    ready: watch::Sender<bool>,
    /// Why the proxy stopped, once it has.
    ended: watch::Sender<Option<String>>,
    log: Log,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn with_core(&self, f: impl FnOnce(&mut Proxy) -> Vec<Output>) {
        let mut core = lock(&self.core);
        let outputs = f(&mut core);
        self.dispatch(outputs);
    }

    fn to_session(&self, session: DownstreamId, command: Command) {
        if let Some(tx) = lock(&self.sessions).get(&session) {
            let _ = tx.send(command);
        }
    }

    fn up(&self, command: Up) {
        let sent = lock(&self.upstream)
            .as_ref()
            .is_some_and(|tx| tx.send(command).is_ok());
        if !sent {
            self.log
                .warn("upstream: not connected; a message dropped".into());
        }
    }

    fn dispatch(&self, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Upstream(message) => self.up(Up::Send(message)),
                Output::Downstream { session, message } => {
                    self.to_session(session, Command::Send(message))
                }
                Output::Close { session, reason } => {
                    self.to_session(session, Command::Close(reason))
                }
                Output::Ready => {
                    self.log.info("upstream channel open".into());
                    let _ = self.ready.send(true);
                }
                Output::Reconnect { host, port } => self.reconnect(&host, port),
                Output::Refused(why) => {
                    self.log.warn(format!("upstream: {why}"));
                    self.end(why);
                }
                Output::Log(line) => self.log.info(line),
            }
        }
    }

    /// Follows a Reconnect: to a loopback address or the pool's own host only (a proxy told to go
    /// elsewhere says so and stays).
    fn reconnect(&self, host: &str, port: u16) {
        let current = *lock(&self.target);
        let ip = if host.is_empty() {
            Some(current.ip())
        } else {
            host.parse::<IpAddr>().ok()
        };
        let port = if port == 0 { current.port() } else { port };
        match ip {
            Some(ip) if ip.is_loopback() || ip == current.ip() => {
                let to = SocketAddr::new(ip, port);
                self.log.info(format!("upstream: Reconnect to {to}"));
                self.up(Up::Move(to));
            }
            _ => self.log.warn(format!(
                "upstream: Reconnect to {host}:{port} not followed (only the pool's host or loopback)"
            )),
        }
    }

    fn end(&self, why: String) {
        self.ended.send_if_modified(|ended| {
            if ended.is_none() {
                *ended = Some(why);
                true
            } else {
                false
            }
        });
        for tx in lock(&self.sessions).values() {
            let _ = tx.send(Command::Close("the proxy stopped".into()));
        }
    }
}

/// A running mock proxy.
pub struct ProxyHandle {
    /// Where devices connect.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    ended: watch::Receiver<Option<String>>,
}

impl std::fmt::Debug for ProxyHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl ProxyHandle {
    /// Reads the core.
    pub fn with_proxy<T>(&self, f: impl FnOnce(&Proxy) -> T) -> T {
        f(&lock(&self.shared.core))
    }

    /// What happened, one line per event.
    pub fn log(&self) -> Vec<String> {
        self.shared.log.lines()
    }

    /// Waits until the proxy stops by itself (the pool refused it, or could not be reached again);
    /// why.
    pub async fn ended(&self) -> String {
        let mut ended = self.ended.clone();
        loop {
            if let Some(why) = ended.borrow().clone() {
                return why;
            }
            if ended.changed().await.is_err() {
                return "the proxy was dropped".into();
            }
        }
    }

    /// Stops the proxy: every connection closes.
    pub fn shutdown(&self) {
        self.shared.end("shut down".into());
    }
}

impl Drop for ProxyHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Starts the proxy: connects to the pool, then accepts devices on `listener` once its upstream
/// channel is open. A pool that cannot be reached is retried `reconnect_attempts` times before the
/// proxy ends ([`ProxyHandle::ended`]).
pub async fn serve(
    listener: TcpListener,
    config: ProxyServerConfig,
) -> Result<ProxyHandle, ProxyError> {
    let addr = listener.local_addr()?;
    let core = Proxy::new(config.proxy.clone()).map_err(ProxyError::Config)?;
    let (ready, ready_rx) = watch::channel(false);
    let (ended, ended_rx) = watch::channel(None);
    let shared = Arc::new(Shared {
        core: Mutex::new(core),
        sessions: Mutex::new(HashMap::new()),
        upstream: Mutex::new(None),
        target: Mutex::new(config.upstream),
        ready,
        ended,
        log: Log::new(10_000),
    });

    let up_shared = shared.clone();
    let up_config = config.clone();
    tokio::spawn(async move { upstream_loop(&up_shared, &up_config).await });

    // Devices only once the upstream channel is open: before, the proxy has no work to give.
    let handshake = served::Handshake {
        responder: config.noise.as_ref().map(|identity| {
            served::responder(
                &identity.static_key,
                &identity.authority,
                identity.cert_validity,
            )
        }),
        timeout: config.handshake_timeout,
        key_log: config.key_log.clone(),
        recorder: config.recorder.clone(),
    };
    let accept_shared = shared.clone();
    let mut ready_rx = ready_rx;
    let (stop, stop_rx) = watch::channel(false);
    let mut ended_watch = ended_rx.clone();
    tokio::spawn(async move {
        let started = tokio::select! {
            r = ready_rx.wait_for(|r| *r) => r.is_ok(),
            _ = ended_watch.wait_for(|e| e.is_some()) => false,
        };
        if started {
            let shutdown = stop_rx.clone();
            served::accept_loop(listener, stop_rx, move |stream, peer| {
                let shared = accept_shared.clone();
                let handshake = handshake.clone();
                let shutdown = shutdown.clone();
                async move { session(stream, peer, &handshake, &shared, shutdown).await }
            });
        }
        let _ = ended_watch.wait_for(|e| e.is_some()).await;
        let _ = stop.send(true);
    });

    Ok(ProxyHandle {
        addr,
        shared,
        ended: ended_rx,
    })
}

/// The pool connection, again and again: after a loss (up to `reconnect_attempts` failed attempts in
/// a row) or where a Reconnect points.
async fn upstream_loop(shared: &Shared, config: &ProxyServerConfig) {
    let mut failures = 0u32;
    let mut ended = shared.ended.subscribe();
    loop {
        if ended.borrow().is_some() {
            return;
        }
        let target = *lock(&shared.target);
        let result = tokio::select! {
            r = upstream_once(shared, config, target) => r,
            _ = ended.wait_for(|e| e.is_some()) => return,
        };
        *lock(&shared.upstream) = None;
        lock(&shared.core).upstream_lost();
        match result {
            Ok(Some(moved)) => {
                *lock(&shared.target) = moved;
                failures = 0;
                continue;
            }
            Ok(None) => {
                shared
                    .log
                    .warn(format!("upstream {target}: the pool closed the connection"));
                failures = 0;
            }
            Err((connected, e)) => {
                shared.log.warn(format!("upstream {target}: {e}"));
                if connected {
                    failures = 0;
                } else {
                    failures += 1;
                }
            }
        }
        if failures > config.reconnect_attempts {
            shared.end(format!(
                "the pool at {target} could not be reached {failures} times in a row"
            ));
            return;
        }
        tokio::time::sleep(config.retry_delay).await;
    }
}

/// One pool connection: `Ok(Some(addr))` when a Reconnect moved it, `Ok(None)` when the pool closed
/// it, or the error and whether the connection had been set up before it.
async fn upstream_once(
    shared: &Shared,
    config: &ProxyServerConfig,
    target: SocketAddr,
) -> Result<Option<SocketAddr>, (bool, String)> {
    let stream = TcpStream::connect(target)
        .await
        .map_err(|e| (false, format!("connect: {e}")))?;
    let _ = stream.set_nodelay(true);
    let mut conn = Connection::initiate_or_plain(
        stream,
        config.upstream_noise,
        config.handshake_timeout,
        &config.key_log,
    )
    .await
    .map_err(|e| (false, e.to_string()))?;
    conn.transcript
        .set_retention(served::retention(config.recorder.is_some()));
    conn.record_endpoints();
    shared.log.info(format!("upstream {target}: connected"));
    let (tx, mut rx) = mpsc::unbounded_channel();
    *lock(&shared.upstream) = Some(tx);
    shared.with_core(|core| core.upstream_connected(&target.ip().to_string(), target.port()));
    let mut set_up = false;
    // The pool has this long to set the proxy up (SetupConnection and its channel answered).
    let setup_deadline = tokio::time::Instant::now() + config.handshake_timeout * 2;
    let mut ready = false;
    let result = loop {
        tokio::select! {
            _ = tokio::time::sleep_until(setup_deadline), if !ready => {
                break Err((
                    false,
                    format!(
                        "the pool did not answer SetupConnection and the channel request within {:?}",
                        config.handshake_timeout * 2
                    ),
                ));
            }
            received = conn.recv("read the pool", served::READ_TIMEOUT) => match received {
                Ok(decoded) => {
                    set_up = true;
                    shared.with_core(|core| core.handle_upstream(&decoded.message));
                    ready = ready || lock(&shared.core).is_ready();
                }
                Err(NetError::Decode { frame, source, .. }) => shared.log.info(format!(
                    "upstream: a frame that does not decode ignored ({source}; {} bytes)",
                    frame.len()
                )),
                Err(NetError::Closed { .. }) if set_up => break Ok(None),
                Err(NetError::Closed { .. }) => {
                    break Err((false, "the pool closed the connection before answering".into()))
                }
                Err(e) => break Err((set_up, e.to_string())),
            },
            command = rx.recv() => match command {
                Some(Up::Send(message)) => {
                    if let Err(e) = conn.send(&message).await {
                        break Err((set_up, e.to_string()));
                    }
                }
                Some(Up::Move(to)) => break Ok(Some(to)),
                None => break Ok(None),
            },
        }
    };
    conn.shutdown().await;
    served::record(
        config.recorder.as_ref(),
        &conn.transcript,
        &shared.log,
        "upstream",
    );
    result
}

/// One device's connection, from its accept to its end.
async fn session(
    stream: TcpStream,
    peer: SocketAddr,
    handshake: &served::Handshake,
    shared: &Shared,
    mut shutdown: watch::Receiver<bool>,
) {
    let id = lock(&shared.core).open_session();
    let label = served::label(id);
    shared.log.info(format!("{label}: connection from {peer}"));
    let mut conn = match handshake.accept(stream).await {
        Ok(conn) => conn,
        Err(e) => {
            let _ = lock(&shared.core).close_session(id);
            return served::ended(&shared.log, &label, &Err(e));
        }
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    lock(&shared.sessions).insert(id, tx);
    let result = served::serve(
        &mut conn,
        &mut rx,
        &mut shutdown,
        &label,
        |received| {
            if let Some(message) = received.message() {
                shared.with_core(|core| core.handle_downstream(id, message))
            }
        },
        &shared.log,
    )
    .await;
    lock(&shared.sessions).remove(&id);
    shared.with_core(|core| core.close_session(id));
    conn.shutdown().await;
    handshake.record(&conn.transcript, &shared.log, &label);
    served::ended(&shared.log, &label, &result);
}
