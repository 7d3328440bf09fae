//! The man in the middle: for each client that connects, a connection to the server; Noise
//! terminated on both legs (the relay's own certificate towards the client, the server's checked
//! against the authority key it was given); every frame relayed through a scenario [`Engine`]; both
//! legs recorded as transcripts (the downstream leg with the relay as server, the upstream leg with
//! the relay as client), each entry handed to an observer as it is recorded, and both legs handed
//! over when the pair ends.
//!
//! Each pair is independent. A frame that does not decode is relayed as it came (the scenario
//! decides otherwise). A leg that closes, fails (a MAC that does not verify, a frame too large) or
//! stays silent past the idle timeout ends the pair: the other leg is closed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sv2_codec::noise::keys::AuthorityPublicKey;
use sv2_codec::noise::ResponderConfig;
use sv2_wire::{
    Connection, Entry, KeyLog, NetError, Retention, Side, Timestamp, Transcript, WireShape,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use crate::engine::{Engine, Step};
use crate::model::{From, Scenario};

/// Frames held by `delay` at once on a pair; past this (or past [`MAX_DELAYED_BYTES`]), a delayed
/// frame goes at once (said).
pub const MAX_DELAYED: usize = 10_000;
/// Bytes held by `delay` at once on a pair.
pub const MAX_DELAYED_BYTES: usize = 64 << 20;
/// Pairs relayed at once; a client past this is closed at once.
pub const MAX_PAIRS: usize = 1024;

/// One of the two legs of a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Leg {
    /// Between the client and the relay (the relay is the server).
    Downstream,
    /// Between the relay and the server (the relay is the client).
    Upstream,
}

impl Leg {
    pub fn as_str(self) -> &'static str {
        match self {
            Leg::Downstream => "downstream",
            Leg::Upstream => "upstream",
        }
    }
}

/// Sees each entry of either leg as it is recorded: the pair's number, the leg, the leg's
/// endpoints (client, server) and the entry.
pub type Observer = Arc<dyn Fn(u64, Leg, &Transcript, &Entry) + Send + Sync>;

/// How the relay runs.
#[derive(Clone)]
pub struct RelayConfig {
    /// The server.
    pub upstream: SocketAddr,
    /// Noise towards the server, checking its certificate against this key (`Some(None)`: the
    /// certificate is not checked); `None`: plaintext.
    pub upstream_noise: Option<Option<AuthorityPublicKey>>,
    /// The relay's identity towards clients (its certificate); `None`: plaintext.
    pub downstream_noise: Option<ResponderConfig>,
    pub scenario: Arc<Scenario>,
    /// Where both legs' session keys go.
    pub key_log: KeyLog,
    pub handshake_timeout: Duration,
    /// A pair whose legs are both silent this long ends.
    pub idle_timeout: Duration,
    /// What each leg's transcript keeps.
    pub retention: Retention,
    pub observer: Option<Observer>,
    /// Where each pair goes when it ends.
    pub ended: Option<mpsc::UnboundedSender<PairRecord>>,
    /// Relay Stratum V1 JSON lines instead of SV2 frames (plain TCP on both legs; the scenario is
    /// not applied: its rules name SV2 messages).
    pub sv1: bool,
}

impl std::fmt::Debug for RelayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayConfig")
            .field("upstream", &self.upstream)
            .field("upstream_noise", &self.upstream_noise.is_some())
            .field("downstream_noise", &self.downstream_noise.is_some())
            .field("scenario", &self.scenario.name)
            .finish_non_exhaustive()
    }
}

impl RelayConfig {
    /// Plaintext on both legs, no scenario, default timeouts.
    pub fn new(upstream: SocketAddr) -> Self {
        RelayConfig {
            upstream,
            upstream_noise: None,
            downstream_noise: None,
            scenario: Arc::new(Scenario::default()),
            key_log: KeyLog::none(),
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            retention: Retention::DEFAULT,
            observer: None,
            ended: None,
            sv1: false,
        }
    }
}

/// A pair that ended: both legs, what the scenario did, and why it ended.
#[derive(Debug)]
pub struct PairRecord {
    pub id: u64,
    pub downstream: Transcript,
    /// Empty when the pair ended before the relay reached the server.
    pub upstream: Transcript,
    /// How many times each rule fired.
    pub fired: Vec<(String, u64)>,
    pub end: String,
}

/// A running relay.
#[derive(Debug)]
pub struct RelayHandle {
    pub addr: SocketAddr,
    shutdown: watch::Sender<bool>,
}

impl RelayHandle {
    /// Stops accepting and ends every pair (each still hands its record over).
    pub fn shutdown(&self) {
        let _ = self.shutdown.send(true);
    }
}

/// Starts relaying the clients that connect to `listener`.
pub fn serve(listener: TcpListener, config: RelayConfig) -> std::io::Result<RelayHandle> {
    let addr = listener.local_addr()?;
    let (shutdown, rx) = watch::channel(false);
    let config = Arc::new(config);
    let mut accept_shutdown = rx.clone();
    tokio::spawn(async move {
        let mut next = 0u64;
        let pairs = Arc::new(tokio::sync::Semaphore::new(MAX_PAIRS));
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = accept_shutdown.changed() => break,
            };
            let Ok((stream, _)) = accepted else {
                // Out of descriptors, say: wait instead of spinning.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let Ok(permit) = pairs.clone().try_acquire_owned() else {
                // Too many pairs at once: this client is closed at once.
                drop(stream);
                continue;
            };
            next += 1;
            let (config, shutdown) = (config.clone(), rx.clone());
            let id = next;
            tokio::spawn(async move {
                let _permit = permit;
                let record = if config.sv1 {
                    pair_sv1(id, stream, &config, shutdown).await
                } else {
                    pair(id, stream, &config, shutdown).await
                };
                if let Some(ended) = &config.ended {
                    let _ = ended.send(record);
                }
            });
        }
    });
    Ok(RelayHandle { addr, shutdown })
}

/// Hands each leg's new entries to the observer.
struct Watch {
    seen: [u64; 2],
}

impl Watch {
    fn emit(&mut self, config: &RelayConfig, id: u64, leg: Leg, transcript: &Transcript) {
        let slot = usize::from(leg == Leg::Upstream);
        let total = transcript.len() as u64 + transcript.dropped();
        let new = total.saturating_sub(self.seen[slot]);
        self.seen[slot] = total;
        if let Some(observer) = &config.observer {
            let entries = transcript.entries();
            let skip = entries.len().saturating_sub(new as usize);
            for entry in entries.iter().skip(skip) {
                observer(id, leg, transcript, entry);
            }
        }
    }
}

/// A frame waiting for its time.
struct Delayed {
    due: tokio::time::Instant,
    to: Leg,
    frame: Vec<u8>,
    shape: WireShape,
}

/// What ends a pair, and what happens to the legs.
enum End {
    Close(String),
    Reset(Leg, String),
}

async fn pair(
    id: u64,
    stream: TcpStream,
    config: &RelayConfig,
    mut shutdown: watch::Receiver<bool>,
) -> PairRecord {
    let _ = stream.set_nodelay(true);
    let mut watch = Watch { seen: [0, 0] };
    let mut record = PairRecord {
        id,
        downstream: Transcript::new(config.retention),
        upstream: Transcript::new(config.retention),
        fired: Vec::new(),
        end: String::new(),
    };
    let peer = stream.peer_addr().ok();
    let down = match &config.downstream_noise {
        Some(responder) => {
            Connection::respond(
                stream,
                responder.clone(),
                config.handshake_timeout,
                &config.key_log,
            )
            .await
        }
        None => Ok(Connection::plaintext(stream, Side::Server)),
    };
    let mut down = match down {
        Ok(conn) => conn,
        Err(e) => {
            record.downstream.endpoints.client = peer;
            record
                .downstream
                .note(Timestamp::now(), format!("downstream handshake: {e}"));
            record.end = format!("downstream handshake: {}", e.brief());
            return record;
        }
    };
    down.record_endpoints();
    down.transcript.set_retention(config.retention);
    watch.emit(config, id, Leg::Downstream, &down.transcript);

    let up = connect_upstream(config).await;
    let mut up = match up {
        Ok(conn) => conn,
        Err(e) => {
            down.transcript.note(
                Timestamp::now(),
                format!("upstream {}: {e}", config.upstream),
            );
            watch.emit(config, id, Leg::Downstream, &down.transcript);
            down.close(Duration::from_millis(200)).await;
            record.downstream = std::mem::take(&mut down.transcript);
            record.end = format!("upstream {}: {}", config.upstream, e.brief());
            return record;
        }
    };
    up.record_endpoints();
    up.transcript.set_retention(config.retention);
    watch.emit(config, id, Leg::Upstream, &up.transcript);

    let started = Instant::now();
    let mut engine = Engine::new(config.scenario.clone());
    let mut delayed: Vec<Delayed> = Vec::new();
    let mut delayed_bytes = 0usize;
    let end = 'relay: loop {
        let next_due = delayed.iter().map(|d| d.due).min();
        enum Got {
            Frame(Leg, Result<Vec<u8>, NetError>),
            Due,
            Stop,
        }
        let got = tokio::select! {
            r = down.recv_frame("from downstream", config.idle_timeout) => Got::Frame(Leg::Downstream, r),
            r = up.recv_frame("from upstream", config.idle_timeout) => Got::Frame(Leg::Upstream, r),
            _ = tokio::time::sleep_until(next_due.unwrap_or_else(tokio::time::Instant::now)), if next_due.is_some() => Got::Due,
            _ = shutdown.changed() => Got::Stop,
        };
        let result = match got {
            Got::Stop => break End::Close("the relay stopped".into()),
            Got::Due => {
                let now = tokio::time::Instant::now();
                let (due, later): (Vec<Delayed>, Vec<Delayed>) = std::mem::take(&mut delayed)
                    .into_iter()
                    .partition(|d| d.due <= now);
                delayed = later;
                let mut result = Ok(());
                let mut failed_leg = Leg::Downstream;
                for d in due {
                    delayed_bytes = delayed_bytes.saturating_sub(d.frame.len());
                    let target = if d.to == Leg::Upstream {
                        &mut up
                    } else {
                        &mut down
                    };
                    result = send(target, &d.frame, &d.shape, config.idle_timeout).await;
                    if result.is_err() {
                        failed_leg = d.to;
                        break;
                    }
                }
                result.map_err(|e| (failed_leg, e))
            }
            Got::Frame(leg, Err(e)) => Err((leg, e)),
            Got::Frame(from_leg, Ok(frame)) => {
                let from = if from_leg == Leg::Downstream {
                    From::Client
                } else {
                    From::Server
                };
                let to = if from_leg == Leg::Downstream {
                    Leg::Upstream
                } else {
                    Leg::Downstream
                };
                let applied = engine.on_frame(from, &frame, started.elapsed());
                let mut result = Ok(());
                {
                    let target = if to == Leg::Upstream {
                        &mut up
                    } else {
                        &mut down
                    };
                    if let Some((rule, what)) = &applied.fired {
                        target
                            .transcript
                            .note(Timestamp::now(), format!("scenario rule {rule:?}: {what}"));
                    }
                }
                for step in applied.steps {
                    let target = if to == Leg::Upstream {
                        &mut up
                    } else {
                        &mut down
                    };
                    match step {
                        Step::Send {
                            frame,
                            delay,
                            shape,
                        } if delay.is_zero() => {
                            result = send(target, &frame, &shape, config.idle_timeout).await;
                        }
                        Step::Send {
                            frame,
                            delay,
                            shape,
                        } => {
                            if delayed.len() >= MAX_DELAYED
                                || delayed_bytes + frame.len() > MAX_DELAYED_BYTES
                            {
                                target.transcript.note(
                                    Timestamp::now(),
                                    format!(
                                        "{} frames ({delayed_bytes} bytes) already delayed: this one goes now",
                                        delayed.len()
                                    ),
                                );
                                result = send(target, &frame, &shape, config.idle_timeout).await;
                            } else {
                                delayed_bytes += frame.len();
                                delayed.push(Delayed {
                                    due: tokio::time::Instant::now() + delay,
                                    to,
                                    frame,
                                    shape,
                                });
                            }
                        }
                        Step::Close => {
                            watch.emit(config, id, Leg::Downstream, &down.transcript);
                            watch.emit(config, id, Leg::Upstream, &up.transcript);
                            break 'relay End::Close("the scenario closed the connections".into());
                        }
                        Step::Reset => {
                            watch.emit(config, id, Leg::Downstream, &down.transcript);
                            watch.emit(config, id, Leg::Upstream, &up.transcript);
                            break 'relay End::Reset(
                                to,
                                "the scenario reset the connection".into(),
                            );
                        }
                    }
                    if result.is_err() {
                        break;
                    }
                }
                result.map_err(|e| (to, e))
            }
        };
        watch.emit(config, id, Leg::Downstream, &down.transcript);
        watch.emit(config, id, Leg::Upstream, &up.transcript);
        if let Err((leg, e)) = result {
            break End::Close(format!("{}: {}", leg.as_str(), e.brief()));
        }
    };
    record.fired = engine.fired();
    let (reason, reset) = match end {
        End::Close(reason) => (reason, None),
        End::Reset(leg, reason) => (reason, Some(leg)),
    };
    for leg in [Leg::Downstream, Leg::Upstream] {
        let conn = if leg == Leg::Upstream {
            &mut up
        } else {
            &mut down
        };
        conn.transcript
            .note(Timestamp::now(), format!("pair ended: {reason}"));
    }
    match reset {
        Some(Leg::Upstream) => {
            down.close(Duration::from_millis(200)).await;
            record.upstream = up.reset();
            record.downstream = std::mem::take(&mut down.transcript);
        }
        Some(Leg::Downstream) => {
            up.close(Duration::from_millis(200)).await;
            record.downstream = down.reset();
            record.upstream = std::mem::take(&mut up.transcript);
        }
        None => {
            let linger = Duration::from_millis(200);
            tokio::join!(down.close(linger), up.close(linger));
            record.downstream = std::mem::take(&mut down.transcript);
            record.upstream = std::mem::take(&mut up.transcript);
        }
    }
    // The last entries (the end, what the closes read).
    watch.emit(config, id, Leg::Downstream, &record.downstream);
    watch.emit(config, id, Leg::Upstream, &record.upstream);
    record.end = reason;
    record
}

/// Sends one frame within `deadline`: a peer that stops reading cannot hold the pair forever.
async fn send(
    conn: &mut Connection<TcpStream>,
    frame: &[u8],
    shape: &WireShape,
    deadline: Duration,
) -> Result<(), NetError> {
    match tokio::time::timeout(deadline, conn.send_frame_shaped(frame, "relay", shape)).await {
        Ok(result) => result,
        Err(_) => Err(NetError::Timeout {
            step: "relay: the peer does not read",
            after: deadline,
            received: Vec::new(),
        }),
    }
}

async fn connect_upstream(config: &RelayConfig) -> Result<Connection<TcpStream>, NetError> {
    let stream = tokio::time::timeout(
        config.handshake_timeout,
        TcpStream::connect(config.upstream),
    )
    .await
    .map_err(|_| NetError::Timeout {
        step: "connect upstream",
        after: config.handshake_timeout,
        received: Vec::new(),
    })?
    .map_err(|source| NetError::Io {
        step: "connect upstream",
        source,
    })?;
    let _ = stream.set_nodelay(true);
    Connection::initiate_or_plain(
        stream,
        config.upstream_noise,
        config.handshake_timeout,
        &config.key_log,
    )
    .await
}

/// One SV1 client: lines relayed both ways as they are, each recorded on its leg (parsed as SV1
/// JSON-RPC), a line longer than the decoder's limit skipped and noted, until either side closes,
/// the legs idle past the timeout, or the relay stops.
async fn pair_sv1(
    id: u64,
    stream: TcpStream,
    config: &RelayConfig,
    mut shutdown: watch::Receiver<bool>,
) -> PairRecord {
    use sv2_wire::{Direction, Mode, StreamDecoder, StreamEvent};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let _ = stream.set_nodelay(true);
    let mut watch = Watch { seen: [0, 0] };
    let mut down_t = Transcript::new(config.retention);
    let mut up_t = Transcript::new(config.retention);
    down_t.endpoints = sv2_wire::Endpoints {
        client: stream.peer_addr().ok(),
        server: stream.local_addr().ok(),
    };
    let connected = tokio::time::timeout(
        config.handshake_timeout,
        TcpStream::connect(config.upstream),
    )
    .await;
    let upstream = match connected {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            down_t.note(
                Timestamp::now(),
                format!("upstream {}: {e}", config.upstream),
            );
            return PairRecord {
                id,
                downstream: down_t,
                upstream: up_t,
                fired: Vec::new(),
                end: format!("upstream {}: {e}", config.upstream),
            };
        }
        Err(_) => {
            let end = format!(
                "upstream {}: no connection within {:?}",
                config.upstream, config.handshake_timeout
            );
            down_t.note(Timestamp::now(), end.clone());
            return PairRecord {
                id,
                downstream: down_t,
                upstream: up_t,
                fired: Vec::new(),
                end,
            };
        }
    };
    let _ = upstream.set_nodelay(true);
    up_t.endpoints = sv2_wire::Endpoints {
        client: upstream.local_addr().ok(),
        server: upstream.peer_addr().ok(),
    };
    let (mut down_r, mut down_w) = stream.into_split();
    let (mut up_r, mut up_w) = upstream.into_split();
    // What the client sends is read on the downstream leg and written on the upstream one.
    let mut from_client = StreamDecoder::new(Direction::ClientToServer, Mode::Sv1);
    let mut from_server = StreamDecoder::new(Direction::ServerToClient, Mode::Sv1);
    let (mut a, mut b) = (vec![0u8; 16 * 1024], vec![0u8; 16 * 1024]);
    let end = loop {
        let got = tokio::select! {
            r = tokio::time::timeout(config.idle_timeout, down_r.read(&mut a)) => (Leg::Downstream, r),
            r = tokio::time::timeout(config.idle_timeout, up_r.read(&mut b)) => (Leg::Upstream, r),
            _ = shutdown.changed() => break "the relay stopped".to_string(),
        };
        let (leg, n) = match got {
            (leg, Err(_)) => {
                break format!("{}: no line within {:?}", leg.as_str(), config.idle_timeout)
            }
            (leg, Ok(Err(e))) => break format!("{}: {e}", leg.as_str()),
            (leg, Ok(Ok(0))) => break format!("{}: the peer closed", leg.as_str()),
            (leg, Ok(Ok(n))) => (leg, n),
        };
        let now = Timestamp::now();
        let (decoder, bytes) = if leg == Leg::Downstream {
            (&mut from_client, &a[..n])
        } else {
            (&mut from_server, &b[..n])
        };
        decoder.push(bytes, now);
        let mut out = Vec::new();
        while let Some((at, event)) = decoder.next_event() {
            match event {
                StreamEvent::Sv1Line(line) => {
                    let direction = if leg == Leg::Downstream {
                        Direction::ClientToServer
                    } else {
                        Direction::ServerToClient
                    };
                    down_t.sv1(at, direction, &line);
                    up_t.sv1(at, direction, &line);
                    out.extend_from_slice(&line);
                    out.push(b'\n');
                }
                other => {
                    let t = if leg == Leg::Downstream {
                        &mut down_t
                    } else {
                        &mut up_t
                    };
                    other.record(
                        if leg == Leg::Downstream {
                            Direction::ClientToServer
                        } else {
                            Direction::ServerToClient
                        },
                        at,
                        t,
                    );
                }
            }
        }
        let writer = if leg == Leg::Downstream {
            &mut up_w
        } else {
            &mut down_w
        };
        let written = match tokio::time::timeout(config.idle_timeout, writer.write_all(&out)).await
        {
            Ok(result) => result,
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the peer does not read",
            )),
        };
        watch.emit(config, id, Leg::Downstream, &down_t);
        watch.emit(config, id, Leg::Upstream, &up_t);
        if let Err(e) = written {
            break format!(
                "writing {}: {e}",
                if leg == Leg::Downstream {
                    "upstream"
                } else {
                    "downstream"
                }
            );
        }
    };
    for t in [&mut down_t, &mut up_t] {
        t.note(Timestamp::now(), format!("pair ended: {end}"));
    }
    watch.emit(config, id, Leg::Downstream, &down_t);
    watch.emit(config, id, Leg::Upstream, &up_t);
    let _ = down_w.shutdown().await;
    let _ = up_w.shutdown().await;
    PairRecord {
        id,
        downstream: down_t,
        upstream: up_t,
        fired: Vec::new(),
        end,
    }
}
