//! Checks of clients: the suite listens on loopback, plays the pool, and the implementation under
//! test connects to it (h2spec's model for HTTP/2 clients).
//!
//! - [`Listener`]: where the suite listens, the authority that signs its certificates, and how the
//!   client under test is started ([`launch::Launcher`]: a command per check, an in-process client,
//!   or a long-running client that reconnects by itself).
//! - [`ServeCtx`]: what a client check gets: the client's next connection, with a certificate of the
//!   check's choosing, and the means to start the client afresh.
//! - [`served::Served`]: one accepted connection, served by the mock pool's core (real jobs, prev
//!   hashes and share judging), which a check can bypass message by message.
//! - [`runner::run`]: every selected client check, the client rules of the monitor over every
//!   connection, into the same [`crate::Report`] as a pool run.

pub use sv2_scenario::launch;
pub use sv2_scenario::launch::Endpoint;
pub mod runner;
pub mod served;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sv2_codec::noise::keys::{AuthorityPublicKey, KeyError, Keypair, SecretKey};
use sv2_codec::noise::{Responder, ResponderConfig};
use sv2_mock::pool::PoolConfig;
use sv2_mock::sv1::driver::{spawn as sv1_spawn, Sv1DriverConfig, Sv1Handle};
use sv2_mock::sv1::{Sv1Config, Sv1Event};
use sv2_wire::{unix_now, Connection, Direction, KeyLog, Side, Timestamp, Transcript};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::check::Role;
use crate::session::{Ctx, Recorded, Security, Target};
use crate::verdict::Outcome;
use launch::{Launched, Launcher};
pub use served::Served;
use sv2_codec::messages::flags::REQUIRES_STANDARD_JOBS;
use sv2_mock::miner::driver::{
    spawn as device_spawn, DeviceDriverConfig, DeviceHandle, Security as DeviceSecurity,
};
use sv2_mock::miner::ChannelKind;

/// Where the suite listens for the client under test, and how it is started.
#[derive(Debug, Clone)]
pub struct Listener {
    /// The address the suite listens on (port 0: any free port). Loopback by default.
    pub listen: SocketAddr,
    /// The authority whose public key the client is told (`{authority_key}`, `{url}`): the
    /// suite's certificates are signed with it, but for the checks that sign with another.
    pub authority: Keypair,
    /// The suite's static key, certified by `authority`.
    pub server_key: SecretKey,
    /// No Noise: the client connects in plaintext (a local-network device).
    pub plaintext: bool,
    /// How long the suite waits for each thing the client should do (a message, a close).
    pub timeout: Duration,
    /// How long the client has to connect (a started process needs time to come up).
    pub connect_timeout: Duration,
    /// How long a check watches the client mine.
    pub work_window: Duration,
    pub launcher: Launcher,
    /// Where the suite's side of each Noise session writes its keys.
    pub key_log: KeyLog,
    /// `--role translator` and `--role proxy`: the loopback port where the implementation listens
    /// for the miners below it, SV1 or SV2 (`None`: a free one, given to the launch command as
    /// `{downstream_port}`).
    pub downstream_port: Option<u16>,
    /// `--role proxy`: the authority the proxy's own certificate must be signed by (`None`: its
    /// certificate is not checked; the pool rules' verdicts on its downstream side stand anyway).
    pub downstream_authority: Option<AuthorityPublicKey>,
    /// `--role proxy`: the proxy speaks plain frames to its devices.
    pub downstream_plaintext: bool,
}

impl Listener {
    /// A loopback listener on any free port, with a fresh authority and server key, for a client
    /// started by `launcher`.
    pub fn new(launcher: Launcher) -> Result<Self, KeyError> {
        Ok(Listener {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            authority: Keypair::generate()?,
            server_key: Keypair::generate()?.secret,
            plaintext: false,
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(20),
            work_window: Duration::from_secs(8),
            launcher,
            key_log: KeyLog::none(),
            downstream_port: None,
            downstream_authority: None,
            downstream_plaintext: false,
        })
    }

    /// The authority public key the client must trust.
    pub fn authority_key(&self) -> AuthorityPublicKey {
        self.authority.public
    }
}

type Evidence = Arc<Mutex<Vec<Recorded>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A run's listening side, shared by its checks: the listener's accepted streams, in order.
pub(crate) struct Harness {
    pub(crate) role: Role,
    pub(crate) config: Listener,
    pub(crate) endpoint: Endpoint,
    pub(crate) incoming: tokio::sync::Mutex<mpsc::Receiver<TcpStream>>,
}

impl Harness {
    /// Drops the connections that came between checks (a long-running client's reconnects).
    pub(crate) async fn drain(&self) {
        let mut incoming = self.incoming.lock().await;
        while incoming.try_recv().is_ok() {}
    }
}

/// What a client check gets: the client's connections, certificates to present, and the client's
/// process (when the suite starts it). Every connection is recorded; the runner collects the
/// transcripts when the check ends.
#[derive(Clone)]
pub struct ServeCtx {
    harness: Arc<Harness>,
    evidence: Evidence,
    launched: Arc<tokio::sync::Mutex<Option<Box<dyn Launched>>>>,
    /// The miners started below a translator (SV1) or a proxy (SV2 devices), stopped when the
    /// check ends.
    miners: Arc<Mutex<Vec<Below>>>,
    /// The proxy's downstream side, as the suite's scripted devices reach it (`--role proxy`).
    downstream: Option<Ctx>,
    /// Tasks started for the check (an SV1 miner waiting for the translator), aborted with it.
    tasks: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    /// The check has ended: no more miners.
    stopped: Arc<std::sync::atomic::AtomicBool>,
}

/// How a certificate presented to the client is wrong (or not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Certificate {
    /// Signed by the run's authority, valid from a minute ago for an hour.
    Valid,
    /// Signed by another authority.
    OtherAuthority,
    /// Its validity ended an hour ago.
    Expired,
    /// Its validity begins in an hour.
    NotYetValid,
}

impl std::fmt::Debug for ServeCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeCtx")
            .field("endpoint", &self.harness.endpoint)
            .finish_non_exhaustive()
    }
}

impl ServeCtx {
    pub(crate) fn new(harness: Arc<Harness>) -> Self {
        let downstream = (harness.role == Role::Proxy)
            .then(|| harness.endpoint.downstream_port)
            .flatten()
            .map(|port| {
                let config = &harness.config;
                let security = if config.downstream_plaintext {
                    Security::Plaintext
                } else {
                    Security::Noise {
                        authority: config.downstream_authority,
                    }
                };
                let mut target = Target::new(SocketAddr::from(([127, 0, 0, 1], port)), security);
                target.timeout = config.timeout;
                target.work_window = config.work_window;
                target.user_identity = "sv2-conformance.device".into();
                target.key_log = config.key_log.clone();
                Ctx::new(Arc::new(target))
            });
        ServeCtx {
            harness,
            evidence: Arc::default(),
            launched: Arc::default(),
            miners: Arc::default(),
            downstream,
            tasks: Arc::default(),
            stopped: Arc::default(),
        }
    }

    pub fn config(&self) -> &Listener {
        &self.harness.config
    }

    /// The role under test.
    pub fn role(&self) -> Role {
        self.harness.role
    }

    /// The address and key the client was given.
    pub fn endpoint(&self) -> &Endpoint {
        &self.harness.endpoint
    }

    /// The responder settings for a certificate of this kind.
    pub fn responder(&self, certificate: Certificate) -> Result<ResponderConfig, Outcome> {
        let config = self.config();
        let now = unix_now();
        let (authority, from, until) = match certificate {
            Certificate::Valid => (config.authority.clone(), now - 60, now + 3600),
            Certificate::OtherAuthority => (
                Keypair::generate().map_err(|e| Outcome::error(format!("a key: {e}")))?,
                now - 60,
                now + 3600,
            ),
            Certificate::Expired => (config.authority.clone(), now - 7200, now - 3600),
            Certificate::NotYetValid => (config.authority.clone(), now + 3600, now + 7200),
        };
        Ok(ResponderConfig::issue(
            &config.server_key,
            &authority,
            from,
            until,
        ))
    }

    /// Starts the client (a command or an in-process client), unless it runs by itself.
    pub(crate) async fn launch(&self) -> Result<(), Outcome> {
        let started = self
            .config()
            .launcher
            .start(self.endpoint())
            .await
            .map_err(|e| Outcome::error(format!("starting the client: {e}")))?;
        *self.launched.lock().await = started;
        Ok(())
    }

    /// Waits until the implementation under test listens on its downstream port (within the
    /// connect timeout): its address. Listening is read from the kernel's socket table: a probe
    /// connection would be a miner that comes and goes, which a translator or proxy may report
    /// upstream.
    pub async fn downstream_listening(&self) -> Result<SocketAddr, Outcome> {
        let port = self.endpoint().downstream_port.ok_or_else(|| {
            Outcome::error("no downstream port: miners below are for --role translator and proxy")
        })?;
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = tokio::time::Instant::now() + self.config().connect_timeout;
        while !listening(port) {
            if tokio::time::Instant::now() >= deadline {
                let mut why = format!(
                    "the {} did not listen for its miners on {address} within {:?}",
                    self.harness.role.as_str(),
                    self.config().connect_timeout
                );
                if let Some((_, how)) = self.exited().await {
                    why.push_str(&format!("; it exited: {how}"));
                }
                return Err(Outcome::error(why));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if self.stopped.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Outcome::error("the check has ended"));
        }
        Ok(address)
    }

    /// A miner of the suite's below the implementation under test, once it listens on its
    /// downstream port: an SV1 miner below a translator, our SV2 device (a standard channel) below
    /// a proxy. Stopped when the check ends; only an SV1 miner reports events.
    pub async fn miner_below(&self, user: &str) -> Result<Sv1Events, Outcome> {
        let address = self.downstream_listening().await?;
        let (below, events) = if self.harness.role == Role::Proxy {
            let config = &self.harness.config;
            let security = if config.downstream_plaintext {
                DeviceSecurity::Plaintext
            } else {
                DeviceSecurity::Noise {
                    authority: config.downstream_authority,
                }
            };
            let mut driver = DeviceDriverConfig::new(address.to_string(), None);
            driver.security = security;
            driver.device.user_identity = user.to_string();
            driver.device.nominal_hash_rate = 10_000.0;
            driver.device.channel = ChannelKind::Standard;
            // Rolls the version where allowed, without requiring it: a proxy above a
            // fixed-version pool may refuse REQUIRES_VERSION_ROLLING.
            driver.device.setup_flags = Some(REQUIRES_STANDARD_JOBS);
            driver.max_shares_per_second = 50;
            (Below::Device(device_spawn(driver)), mpsc::channel(1).1)
        } else {
            let client = Sv1Config {
                user: user.to_string(),
                ..Sv1Config::default()
            };
            let mut config = Sv1DriverConfig::new(address.to_string(), client);
            config.max_shares_per_second = 50;
            let mut handle = sv1_spawn(config);
            let events = std::mem::replace(&mut handle.events, mpsc::channel(1).1);
            (Below::Sv1(handle), events)
        };
        let index = {
            let mut miners = lock(&self.miners);
            miners.push(below);
            miners.len() - 1
        };
        Ok(Sv1Events { events, index })
    }

    /// The proxy's downstream side as a pool to the suite's scripted devices (`--role proxy`), once
    /// the proxy listens there. Its connections are judged by the pool rules of the monitor.
    pub async fn downstream(&self) -> Result<&Ctx, Outcome> {
        let Some(ctx) = &self.downstream else {
            return Err(Outcome::error(
                "no downstream side: scripted devices are for --role proxy",
            ));
        };
        self.downstream_listening().await?;
        Ok(ctx)
    }

    /// The connections the suite's devices made to the proxy's downstream side, and the devices
    /// below it (their whole runs).
    pub(crate) fn take_downstream_evidence(&self) -> Vec<Recorded> {
        self.downstream
            .as_ref()
            .map(|d| d.take_evidence())
            .unwrap_or_default()
    }

    /// Stops the miner `miner` (its connection to the translator or proxy closes).
    pub fn stop_miner(&self, miner: &Sv1Events) {
        if let Some(below) = lock(&self.miners).get(miner.index) {
            below.shutdown();
        }
    }

    /// Runs `task` for the check; it is aborted when the check ends.
    pub fn background(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(task);
        lock(&self.tasks).push(handle.abort_handle());
    }

    /// Stops the client the suite started, if any: what it printed and how it ended.
    pub(crate) async fn stop(&self) -> Option<String> {
        self.stopped
            .store(true, std::sync::atomic::Ordering::SeqCst);
        for task in std::mem::take(&mut *lock(&self.tasks)) {
            task.abort();
        }
        let miners = std::mem::take(&mut *lock(&self.miners));
        for miner in miners {
            if let Some((label, transcript)) = miner.stop().await {
                if let Some(downstream) = &self.downstream {
                    downstream.push(label, transcript);
                }
            }
        }
        let launched = self.launched.lock().await.take()?;
        Some(launched.stop().await)
    }

    /// Stops the client and starts it again (a client that gave up after a refused handshake gets
    /// another chance); a long-running client is only given time to reconnect.
    pub async fn restart(&self) -> Result<(), Outcome> {
        if self.config().launcher.starts_clients() {
            if let Some(launched) = self.launched.lock().await.take() {
                launched.stop().await;
            }
            self.harness.drain().await;
            self.launch().await?;
        }
        Ok(())
    }

    /// How the client the suite started ended, if it did: `Some((crashed, description))`.
    pub async fn exited(&self) -> Option<(bool, String)> {
        self.launched.lock().await.as_mut()?.exited()
    }

    /// The client's next TCP connection, within the connect timeout (a started client that exits
    /// before it connects ends the wait).
    pub async fn next_stream(&self, what: &str) -> Result<TcpStream, Outcome> {
        let wait = self.config().connect_timeout;
        let deadline = tokio::time::Instant::now() + wait;
        let mut incoming = self.harness.incoming.lock().await;
        let mut exited = None;
        loop {
            let poll = deadline
                .saturating_duration_since(tokio::time::Instant::now())
                .min(Duration::from_millis(100));
            match tokio::time::timeout(poll, incoming.recv()).await {
                Ok(Some(stream)) => {
                    let _ = stream.set_nodelay(true);
                    return Ok(stream);
                }
                Ok(None) => break,
                Err(_) => {}
            }
            if tokio::time::Instant::now() >= deadline {
                break;
            }
            // Gone: what it connected before it went is still taken (above), then no more waiting.
            if exited.is_none() {
                exited = self.exited().await;
            } else {
                break;
            }
        }
        let mut why = format!(
            "the client did not connect to {} ({what})",
            self.endpoint().url
        );
        match exited {
            Some((_, how)) => why.push_str(&format!(": it exited, {how}")),
            None => why.push_str(&format!(" within {wait:?}")),
        }
        Err(Outcome::error(why))
    }

    /// The client's next connection with the handshake done (Noise with `certificate`, or
    /// plaintext), served by a fresh mock pool core.
    pub async fn accept_with(
        &self,
        label: &str,
        certificate: Certificate,
    ) -> Result<Served, Outcome> {
        let stream = self.next_stream(label).await?;
        self.serve_stream(label, stream, certificate, served::pool_config())
            .await
    }

    /// [`ServeCtx::accept`], the pool core configured as `config`.
    pub async fn accept_configured(
        &self,
        label: &str,
        config: PoolConfig,
    ) -> Result<Served, Outcome> {
        let stream = self.next_stream(label).await?;
        self.serve_stream(label, stream, Certificate::Valid, config)
            .await
    }

    /// [`ServeCtx::accept_with`] a valid certificate.
    pub async fn accept(&self, label: &str) -> Result<Served, Outcome> {
        self.accept_with(label, Certificate::Valid).await
    }

    /// The handshake on a stream the check accepted itself (a second listener, say).
    pub async fn serve_stream(
        &self,
        label: &str,
        stream: TcpStream,
        certificate: Certificate,
        pool: PoolConfig,
    ) -> Result<Served, Outcome> {
        let config = self.config();
        let conn = if config.plaintext {
            Connection::plaintext(stream, Side::Server)
        } else {
            Connection::respond(
                stream,
                self.responder(certificate)?,
                config.timeout,
                &config.key_log,
            )
            .await
            .map_err(|e| Outcome::error(format!("{label}: the client's handshake: {e}")))?
        };
        Served::new(conn, label, self.evidence.clone(), config.timeout, pool)
    }

    /// Answers the next connection's act 1 with an act 2 broken as `broken` says, then waits for
    /// what the client does: its bytes (it went on), a close, or silence.
    pub async fn broken_act2(&self, label: &str, broken: BrokenAct2) -> Result<AfterAct2, Outcome> {
        let mut stream = self.next_stream(label).await?;
        let timeout = self.config().timeout;
        let mut transcript = Transcript::default();
        let mut act1 = [0u8; 64];
        match tokio::time::timeout(timeout, stream.read_exact(&mut act1)).await {
            Ok(Ok(_)) => {}
            _ => {
                return Err(Outcome::error(format!(
                    "{label}: no act 1 (64 bytes) within {timeout:?}"
                )))
            }
        }
        transcript.handshake(Timestamp::now(), Direction::ClientToServer, 1, &act1);
        let mut responder = Responder::generate(self.responder(Certificate::Valid)?)
            .map_err(|e| Outcome::error(format!("responder: {e}")))?;
        let (act2, _) = match responder.read_act1(&act1) {
            Ok(done) => done,
            Err(e) => {
                transcript.note(Timestamp::now(), format!("act 1 refused: {e}"));
                self.record(label, transcript);
                return Err(Outcome::error(format!(
                    "{label}: the client's act 1 is not a valid key: {e}"
                )));
            }
        };
        let mut act2 = act2.to_vec();
        let note = match broken {
            BrokenAct2::FlipBit(bit) => {
                let bit = bit % (act2.len() * 8);
                act2[bit / 8] ^= 1 << (bit % 8);
                format!("act 2 sent with bit {bit} flipped (byte {})", bit / 8)
            }
            BrokenAct2::Truncated(len) => {
                act2.truncate(len);
                format!("only the first {len} bytes of act 2 sent")
            }
        };
        transcript.handshake(Timestamp::now(), Direction::ServerToClient, 2, &act2);
        transcript.note(Timestamp::now(), note);
        let _ = stream.write_all(&act2).await;
        let after = read_after(&mut stream, timeout).await;
        transcript.note(Timestamp::now(), after.describe());
        self.record(label, transcript);
        Ok(after)
    }

    /// Records a transcript made outside a [`Served`] connection (raw byte-level checks).
    pub fn record(&self, label: impl Into<String>, transcript: Transcript) {
        lock(&self.evidence).push(Recorded {
            label: label.into(),
            transcript,
            raw: true,
        });
    }

    pub(crate) fn take_evidence(&self) -> Vec<Recorded> {
        std::mem::take(&mut *lock(&self.evidence))
    }
}

/// Whether something listens on 127.0.0.1:`port` (or any address), from /proc/net/tcp and tcp6.
fn listening(port: u16) -> bool {
    let hex_port = format!("{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|table| {
        std::fs::read_to_string(table).is_ok_and(|text| {
            text.lines().skip(1).any(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                // local_address is ADDR:PORT in hex; state 0A is LISTEN.
                fields.len() > 3
                    && fields[1].rsplit(':').next() == Some(hex_port.as_str())
                    && fields[3] == "0A"
            })
        })
    })
}

/// A miner of the suite's below a translator or a proxy.
enum Below {
    Sv1(Sv1Handle),
    Device(DeviceHandle),
}

impl Below {
    fn shutdown(&self) {
        match self {
            Below::Sv1(handle) => handle.shutdown(),
            Below::Device(handle) => handle.shutdown(),
        }
    }

    /// Stops it; a device's connection, to be judged with the proxy's downstream side.
    async fn stop(self) -> Option<(String, Transcript)> {
        match self {
            Below::Sv1(handle) => {
                handle.shutdown();
                None
            }
            Below::Device(handle) => {
                let report = handle.stop().await;
                Some(("a device below the proxy".to_string(), report.transcript))
            }
        }
    }
}

/// What a miner of the suite's reports, as it happens (an SV1 miner; a device below a proxy reports
/// nothing here).
#[derive(Debug)]
pub struct Sv1Events {
    pub events: mpsc::Receiver<Sv1Event>,
    index: usize,
}

/// How [`ServeCtx::broken_act2`] breaks act 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokenAct2 {
    /// This bit flipped (bit 0 is the low bit of the first byte): a MAC fails.
    FlipBit(usize),
    /// Only the first this many bytes sent, then nothing.
    Truncated(usize),
}

/// What a client did after a handshake act it should have refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterAct2 {
    /// It sent bytes: it went on with the session.
    Sent(usize),
    /// It closed the connection.
    Closed,
    /// It sent nothing and kept the connection open.
    Silent,
}

impl AfterAct2 {
    pub fn describe(&self) -> String {
        match self {
            AfterAct2::Sent(n) => format!("the client sent {n} bytes after act 2: it went on"),
            AfterAct2::Closed => "the client closed the connection".into(),
            AfterAct2::Silent => "the client sent nothing and kept the connection open".into(),
        }
    }
}

async fn read_after(stream: &mut TcpStream, timeout: Duration) -> AfterAct2 {
    let mut buf = [0u8; 4096];
    match tokio::time::timeout(timeout, stream.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => AfterAct2::Closed,
        Ok(Ok(n)) => AfterAct2::Sent(n),
        Err(_) => AfterAct2::Silent,
    }
}
