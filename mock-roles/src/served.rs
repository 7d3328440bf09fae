//! One served connection of a mock role, after its handshake: decoded messages go to the role's core,
//! what the core sends comes back through a queue, and the loop ends on a close command, a closed queue,
//! a read error or shutdown. Shared by the TP and pool drivers, with [`Handshake`], which makes an
//! accepted stream a connection, and [`Log`], the role's log.
//!
//! Log lines about a connection begin `session N:` from its accept to its end ([`label`]): the core
//! reserves the number before the handshake.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use sv2_codec::noise::keys::{Keypair, SecretKey};
use sv2_codec::noise::ResponderConfig;
use sv2_codec::{DecodeError, Decoded, Message};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use sv2_wire::capture::write::SharedPcapng;
use sv2_wire::{unix_now, Connection, KeyLog, NetError, Retention, Side};

/// Accepts connections on `listener` until `shutdown` changes, each served by `serve_one` on its own
/// task. A failed accept (out of descriptors, say) waits 10 ms rather than spinning.
pub fn accept_loop<F, Fut>(listener: TcpListener, mut shutdown: watch::Receiver<bool>, serve_one: F)
where
    F: Fn(TcpStream, SocketAddr) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        tokio::spawn(serve_one(stream, peer));
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                },
                _ = shutdown.changed() => break,
            }
        }
    });
}

/// What a role's core asks of one of its connections.
#[derive(Debug)]
pub enum Command {
    /// Send this message.
    Send(Message<'static>),
    /// Close the connection, for this reason.
    Close(String),
}

/// The step of a served connection's reads.
const READ: &str = "read";

/// How long a served connection may stay silent (cores close idle sessions; this only bounds a read).
pub(crate) const READ_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// The responder of an encrypted mock role: a certificate for `static_key` signed by `authority`,
/// valid from a minute ago (a client's clock may be a little behind) until `validity` from now.
pub fn responder(
    static_key: &SecretKey,
    authority: &Keypair,
    validity: Duration,
) -> ResponderConfig {
    let now = unix_now();
    let until = now.saturating_add(u32::try_from(validity.as_secs()).unwrap_or(u32::MAX));
    ResponderConfig::issue(static_key, authority, now.saturating_sub(60), until)
}

/// How much of a served or upstream connection's transcript a role keeps: all of a conversation
/// that is recorded to a pcapng, else only the recent part (nobody reads it back in full).
pub fn retention(recorded: bool) -> Retention {
    if recorded {
        Retention::DEFAULT
    } else {
        Retention::RECENT
    }
}

/// How log lines name a connection, from its accept to its end.
pub fn label(session: u64) -> String {
    format!("session {session}")
}

/// A role's log: every line is a `tracing` event (target `sv2_mock::served`; a subscriber, when the
/// program installed one, shows it), and the info and warn lines are also kept, the latest `keep`
/// or so (a peer sending endless bad frames cannot grow it without bound), for the role's handle.
#[derive(Debug)]
pub struct Log {
    lines: Mutex<Vec<String>>,
    keep: usize,
}

impl Log {
    pub fn new(keep: usize) -> Self {
        Log {
            lines: Mutex::new(Vec::new()),
            keep: keep.max(10),
        }
    }

    /// What happened: a connection, a channel, a share, a block.
    pub fn info(&self, line: String) {
        tracing::info!("{line}");
        self.keep(line);
    }

    /// What went wrong with a peer or the upstream: a failed handshake, bytes that are not frames.
    pub fn warn(&self, line: String) {
        tracing::warn!("{line}");
        self.keep(line);
    }

    /// Detail not kept for the handle: only a subscriber at debug level shows it.
    pub fn debug(&self, line: String) {
        tracing::debug!("{line}");
    }

    /// The lines kept, oldest first.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn keep(&self, line: String) {
        let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        if lines.len() >= self.keep {
            lines.drain(..self.keep / 10);
        }
        lines.push(line);
    }
}

/// Whether a frame header names a message this codec knows: the first frame of a plaintext
/// connection must (SV1 JSON, HTTP or random bytes read as a header almost never do), else the reason.
pub fn known_header(header: &sv2_codec::Header) -> Result<(), String> {
    let known = sv2_codec::messages::MESSAGE_TYPES
        .iter()
        .any(|i| i.extension_type == header.extension_type && i.msg_type == header.msg_type);
    if known {
        Ok(())
    } else {
        Err(format!(
            "its header names extension 0x{:04x} message 0x{:02x} ({} bytes), no message this role knows",
            header.extension_type, header.msg_type, header.msg_length
        ))
    }
}

/// The step of a plaintext connection's first frame.
pub const FIRST_FRAME: &str = "first frame";

/// How a served role makes an accepted stream a connection: the Noise responder handshake within
/// `timeout` with `responder` (its keys written to `key_log`), or plaintext when there is none: then
/// the first frame must come within `timeout`, and a header that names no known message closes the
/// connection at once ([`known_header`]). Either way, what came instead is in the error.
#[derive(Debug, Clone)]
pub struct Handshake {
    pub responder: Option<ResponderConfig>,
    pub timeout: Duration,
    pub key_log: KeyLog,
    /// Where each finished connection is written as a pcapng (`--pcap`); none by default.
    pub recorder: Option<SharedPcapng>,
}

impl Handshake {
    /// What the connection is, for the log line that says it is up.
    pub fn kind(&self) -> &'static str {
        if self.responder.is_some() {
            "Noise NX"
        } else {
            "plaintext"
        }
    }

    /// Runs the handshake on `stream`. The drivers do not read their connections' transcripts back,
    /// so only the recent part is kept ([`Retention::RECENT`]), unless the connections are recorded
    /// ([`Retention::DEFAULT`]).
    pub async fn accept(&self, stream: TcpStream) -> Result<Connection<TcpStream>, NetError> {
        let _ = stream.set_nodelay(true);
        let mut conn = match &self.responder {
            Some(config) => {
                Connection::respond(stream, config.clone(), self.timeout, &self.key_log).await?
            }
            None => {
                let mut conn = Connection::plaintext(stream, Side::Server);
                conn.first_frame(FIRST_FRAME, self.timeout, known_header)
                    .await?;
                conn
            }
        };
        conn.transcript
            .set_retention(retention(self.recorder.is_some()));
        conn.record_endpoints();
        Ok(conn)
    }

    /// Writes a finished connection's transcript to the recorder, if any (a failure is logged).
    pub fn record(&self, transcript: &sv2_wire::Transcript, log: &Log, label: &str) {
        record(self.recorder.as_ref(), transcript, log, label);
    }
}

/// Writes `transcript` to `recorder` when there is one; a failure is logged, not fatal.
pub fn record(
    recorder: Option<&SharedPcapng>,
    transcript: &sv2_wire::Transcript,
    log: &Log,
    label: &str,
) {
    if let Some(recorder) = recorder {
        if let Err(e) = recorder.add(transcript) {
            log.warn(format!(
                "{label}: not recorded in {}: {e}",
                recorder.path().display()
            ));
        }
    }
}

/// What [`serve`] hands the role for each frame received.
#[derive(Debug, Clone, Copy)]
pub enum Received<'a> {
    /// A frame that decoded strictly: the message and its TLVs.
    Frame(&'a Decoded<'a>),
    /// A frame that did not (its header and payload, and why); already logged.
    Undecodable {
        frame: &'a [u8],
        error: &'a DecodeError,
    },
}

impl<'a> Received<'a> {
    /// The message, when the frame decoded.
    pub fn message(self) -> Option<&'a Message<'a>> {
        match self {
            Received::Frame(decoded) => Some(&decoded.message),
            Received::Undecodable { .. } => None,
        }
    }
}

/// Runs `conn` until it ends. Each decoded message goes to `on_message`; a frame that does not decode
/// is logged and skipped (the session goes on); `label` prefixes the log lines.
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<S>,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    shutdown: &mut watch::Receiver<bool>,
    label: &str,
    mut on_frame: impl FnMut(Received<'_>),
    log: &Log,
) -> Result<(), NetError> {
    let mut frames = 0u64;
    loop {
        tokio::select! {
            received = conn.recv(READ, READ_TIMEOUT) => match received {
                Ok(decoded) => {
                    frames += 1;
                    on_frame(Received::Frame(&decoded))
                }
                Err(NetError::Decode { frame, source, .. }) => {
                    frames += 1;
                    log.warn(format!(
                        "{label}: undecodable frame {} ({source})",
                        hex::encode(&frame[..frame.len().min(64)])
                    ));
                    on_frame(Received::Undecodable {
                        frame: &frame,
                        error: &source,
                    })
                }
                Err(e) => {
                    if frames == 0 && conn.act_looks_prefixed() {
                        log.warn(format!(
                            "{label}: act 1 began with 40 00, its own length, and no frame could be \
                             read after it: this looks like pre-standard framing (a length-prefixed \
                             act 1; the spec's acts have no prefix)"
                        ));
                    }
                    return Err(e);
                }
            },
            command = commands.recv() => match command {
                Some(Command::Send(message)) => conn.send(&message).await?,
                Some(Command::Close(reason)) => {
                    log.info(format!("{label}: closed: {reason}"));
                    return Ok(());
                }
                None => return Ok(()),
            },
            _ = shutdown.changed() => {
                log.debug(format!("{label}: closed: shutting down"));
                return Ok(());
            }
        }
    }
}

/// The log line of a session's end: `result` of [`serve`] (or of the handshake).
pub fn ended(log: &Log, label: &str, result: &Result<(), NetError>) {
    match result {
        Ok(()) => {}
        Err(NetError::Closed { step: READ, .. }) => {
            log.info(format!("{label}: the peer closed the connection"));
        }
        Err(e) => log.warn(format!("{label}: {e}; closed")),
    }
}
