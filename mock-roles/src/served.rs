//! One served connection of a mock role, after its handshake: decoded messages go to the role's core,
//! what the core sends comes back through a queue, and the loop ends on a close command, a closed queue,
//! a read error or shutdown. Shared by the TP and pool drivers, with [`handshake`], which makes an
//! accepted stream a connection.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use sv2_codec::noise::keys::{Keypair, SecretKey};
use sv2_codec::noise::ResponderConfig;
use sv2_codec::Message;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

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

/// How a served role makes an accepted stream a connection: the Noise responder handshake within
/// `timeout` with `responder` (its keys written to `key_log`), or plaintext when there is none.
#[derive(Debug, Clone)]
pub struct Handshake {
    pub responder: Option<ResponderConfig>,
    pub timeout: Duration,
    pub key_log: KeyLog,
}

impl Handshake {
    /// Runs the handshake on `stream`. The drivers do not read their connections' transcripts back,
    /// so only the recent part is kept ([`Retention::RECENT`]).
    pub async fn accept(&self, stream: TcpStream) -> Result<Connection<TcpStream>, NetError> {
        let _ = stream.set_nodelay(true);
        let mut conn = match &self.responder {
            Some(config) => {
                Connection::respond(stream, config.clone(), self.timeout, &self.key_log).await?
            }
            None => Connection::plaintext(stream, Side::Server),
        };
        conn.transcript.set_retention(Retention::RECENT);
        conn.record_endpoints();
        Ok(conn)
    }
}

/// Runs `conn` until it ends. Each decoded message goes to `on_message`; a frame that does not decode
/// is reported through `note` and skipped (the session goes on); `label` prefixes the notes.
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<S>,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    shutdown: &mut watch::Receiver<bool>,
    label: &str,
    mut on_message: impl FnMut(&Message<'_>),
    note: impl Fn(String),
) -> Result<(), NetError> {
    loop {
        tokio::select! {
            received = conn.recv("read", READ_TIMEOUT) => match received {
                Ok(decoded) => on_message(&decoded.message),
                Err(NetError::Decode { frame, source, .. }) => note(format!(
                    "{label}: undecodable frame {} ({source})",
                    hex::encode(&frame[..frame.len().min(64)])
                )),
                Err(e) => return Err(e),
            },
            command = commands.recv() => match command {
                Some(Command::Send(message)) => conn.send(&message).await?,
                Some(Command::Close(reason)) => {
                    note(format!("{label}: closed: {reason}"));
                    return Ok(());
                }
                None => return Ok(()),
            },
            _ = shutdown.changed() => return Ok(()),
        }
    }
}
