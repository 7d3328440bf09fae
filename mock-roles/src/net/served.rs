//! One served connection of a mock role, after its handshake: decoded messages go to the role's core,
//! what the core sends comes back through a queue, and the loop ends on a close command, a closed queue,
//! a read error or shutdown. Shared by the TP and pool drivers.

use std::time::Duration;

use sv2_codec::Message;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};

use super::{Connection, NetError};

/// What a role's core asks of one of its connections.
#[derive(Debug)]
pub enum Command {
    /// Send this message.
    Send(Message<'static>),
    /// Close the connection, for this reason.
    Close(String),
}

/// How long a served connection may stay silent (cores close idle sessions; this only bounds a read).
const READ_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Transcript entries kept per served connection: the drivers do not read them, so they are cut back
/// rather than left to grow for the life of the connection.
const TRANSCRIPT_KEEP: usize = 256;

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
        if conn.transcript.entries.len() > TRANSCRIPT_KEEP {
            conn.transcript.entries.clear();
        }
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
