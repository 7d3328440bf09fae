//! How a client under test comes to a harness that serves it (the conformance suite's client
//! roles, the fuzzer's `--listen` side): started for each check or case (a shell command with
//! placeholders, `--spawn`, or an in-process client for tests), or running by itself and
//! reconnecting after each connection is closed.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};

use sv2_codec::noise::keys::{AuthorityPublicKey, Sv2Url};

/// A future the launcher's trait objects return.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A client the suite started, until it is stopped.
pub trait Launched: Send {
    /// Whether it ended by itself: `Some((crashed, how))`; `crashed` when it died of a signal or a
    /// panic (exit status 101, or 134 for an abort), not by exiting.
    fn exited(&mut self) -> Option<(bool, String)>;
    /// Stops it; what it printed last and how it ended.
    fn stop(self: Box<Self>) -> BoxFuture<String>;
    /// Its process id, when it is a process (its memory can be watched).
    fn pid(&self) -> Option<u32> {
        None
    }
}

/// Starts an in-process client for an endpoint.
pub type StartFn = Arc<dyn Fn(&Endpoint) -> Box<dyn Launched> + Send + Sync>;

/// How the client comes.
#[derive(Clone)]
pub enum Launcher {
    /// It runs by itself and reconnects: the suite only listens.
    External,
    /// `sh -c` this command, its placeholders (`{host}`, `{port}`, `{url}`, `{authority_key}`)
    /// expanded, started for each check and stopped after it (its whole process group).
    Command(String),
    /// A client in this process (tests).
    InProcess(StartFn),
}

impl std::fmt::Debug for Launcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Launcher::External => f.write_str("External"),
            Launcher::Command(c) => f.debug_tuple("Command").field(c).finish(),
            Launcher::InProcess(_) => f.write_str("InProcess"),
        }
    }
}

impl Launcher {
    /// Whether the suite starts the client (else it reconnects by itself).
    pub fn starts_clients(&self) -> bool {
        !matches!(self, Launcher::External)
    }

    /// Starts a client for `endpoint` (none for an external one).
    pub async fn start(&self, endpoint: &Endpoint) -> Result<Option<Box<dyn Launched>>, String> {
        match self {
            Launcher::External => Ok(None),
            Launcher::InProcess(start) => Ok(Some(start(endpoint))),
            Launcher::Command(template) => {
                let command = endpoint.expand(template);
                Ok(Some(Box::new(Spawned::start(&command)?)))
            }
        }
    }
}

/// How much of a started command's output is kept (the end of it).
const OUTPUT_KEPT: usize = 4096;

/// A command started with `sh -c`, in its own process group.
struct Spawned {
    command: String,
    child: Child,
    /// The process group (the shell's pid), kept: `Child::id` forgets it once the shell is reaped.
    group: Option<u32>,
    output: Arc<Mutex<Vec<u8>>>,
    /// `stop` signalled the group already.
    stopped: bool,
}

/// Dropped without `stop` (an error on the way, a test that panicked): the whole group goes, not
/// only the shell that `kill_on_drop` would end.
impl Drop for Spawned {
    fn drop(&mut self) {
        if let (false, Some(group)) = (self.stopped, self.group) {
            let _ = std::process::Command::new("kill")
                .arg("-KILL")
                .arg("--")
                .arg(format!("-{group}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Spawned {
    fn start(command: &str) -> Result<Spawned, String> {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(command)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("sh -c {command:?}: {e}"))?;
        let output: Arc<Mutex<Vec<u8>>> = Arc::default();
        if let Some(out) = child.stdout.take() {
            tokio::spawn(keep_tail(out, output.clone()));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(keep_tail(err, output.clone()));
        }
        Ok(Spawned {
            command: command.to_string(),
            group: child.id(),
            child,
            output,
            stopped: false,
        })
    }

    fn tail(&self) -> String {
        let output = self.output.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&output).trim_end().to_string()
    }
}

/// Keeps the last [`OUTPUT_KEPT`] bytes read from `from`.
async fn keep_tail(mut from: impl AsyncRead + Unpin, into: Arc<Mutex<Vec<u8>>>) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let mut kept = into.lock().unwrap_or_else(|e| e.into_inner());
        kept.extend_from_slice(&buf[..n]);
        if kept.len() > OUTPUT_KEPT {
            let cut = kept.len() - OUTPUT_KEPT;
            kept.drain(..cut);
        }
    }
}

/// In words, and whether it is a crash.
fn status_words(status: std::process::ExitStatus) -> (bool, String) {
    use std::os::unix::process::ExitStatusExt;
    if let Some(signal) = status.signal() {
        return (true, format!("killed by signal {signal}"));
    }
    match status.code() {
        Some(101) => (true, "exit status 101 (a Rust panic)".into()),
        // A shell reports its child killed by signal N as 128 + N.
        Some(code @ 129..=192) => (
            true,
            format!("exit status {code} (killed by signal {})", code - 128),
        ),
        Some(code) => (false, format!("exit status {code}")),
        None => (false, "ended".into()),
    }
}

impl Launched for Spawned {
    /// The command's process: the shell's only child (and its only child, ...) when the shell did
    /// not replace itself with it.
    fn pid(&self) -> Option<u32> {
        let mut pid = self.group?;
        for _ in 0..8 {
            let Ok(children) = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            else {
                break;
            };
            let children: Vec<u32> = children
                .split_whitespace()
                .filter_map(|c| c.parse().ok())
                .collect();
            match children[..] {
                [only] => pid = only,
                _ => break,
            }
        }
        Some(pid)
    }

    fn exited(&mut self) -> Option<(bool, String)> {
        match self.child.try_wait() {
            Ok(Some(status)) => {
                let (crashed, words) = status_words(status);
                let tail = self.tail();
                Some((crashed, with_output(words, &tail)))
            }
            _ => None,
        }
    }

    fn stop(mut self: Box<Self>) -> BoxFuture<String> {
        Box::pin(async move {
            let ended = match self.child.try_wait() {
                Ok(Some(status)) => Some(status),
                _ => None,
            };
            // The whole group, even when its leader is gone (what it left running goes too).
            signal_group(self.group, "TERM").await;
            let how = match ended {
                Some(status) => format!("it had ended: {}", status_words(status).1),
                None => {
                    let status =
                        match tokio::time::timeout(Duration::from_secs(3), self.child.wait()).await
                        {
                            Ok(Ok(status)) => Some(status),
                            _ => {
                                signal_group(self.group, "KILL").await;
                                self.child.wait().await.ok()
                            }
                        };
                    match status {
                        Some(s) => format!("stopped: {}", status_words(s).1),
                        None => "stopped".into(),
                    }
                }
            };
            // What it left running in its group.
            signal_group(self.group, "KILL").await;
            self.stopped = true;
            // Its output readers end with its pipes.
            tokio::time::sleep(Duration::from_millis(20)).await;
            with_output(format!("{}: {how}", self.command), &self.tail())
        })
    }
}

fn with_output(words: String, tail: &str) -> String {
    if tail.is_empty() {
        words
    } else {
        format!("{words}; its last output:\n{tail}")
    }
}

/// Sends `signal` to a whole process group (a shell's children too).
async fn signal_group(group: Option<u32>, signal: &str) {
    if let Some(pid) = group {
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg("--")
            .arg(format!("-{pid}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
    }
}

/// What the placeholders of a launch command stand for: the address the suite listens on, and the
/// authority key a client must check its certificate against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    /// Base58check, as pools publish it.
    pub authority_key: String,
    /// `stratum2+tcp://host:port/authority_key` (no key in plaintext).
    pub url: String,
    /// Where a translator or proxy under test must listen for its miners (`--role translator`,
    /// `--role proxy`): the suite's SV1 miners or SV2 devices connect to 127.0.0.1 on this port.
    pub downstream_port: Option<u16>,
}

impl Endpoint {
    pub fn new(address: SocketAddr, authority: Option<AuthorityPublicKey>) -> Self {
        let url = Sv2Url {
            host: address.ip().to_string(),
            port: address.port(),
            authority_key: authority,
        };
        Endpoint {
            host: address.ip().to_string(),
            port: address.port(),
            authority_key: authority.map(|k| k.to_string()).unwrap_or_default(),
            url: url.to_string(),
            downstream_port: None,
        }
    }

    /// `template` with `{host}`, `{port}`, `{url}`, `{authority_key}` and (for a translator or a
    /// proxy) `{downstream_port}` replaced.
    pub fn expand(&self, template: &str) -> String {
        let mut text = template
            .replace("{host}", &self.host)
            .replace("{port}", &self.port.to_string())
            .replace("{url}", &self.url)
            .replace("{authority_key}", &self.authority_key);
        if let Some(port) = self.downstream_port {
            text = text.replace("{downstream_port}", &port.to_string());
        }
        text
    }
}

/// `expect_alive` on the server's side of a client: the client's process still runs. A process
/// that ended cleanly (a client that stops when its connection is closed) is alive in this sense;
/// a crash (a signal, a Rust panic) or, for a process known only by `pid`, any exit is not.
#[derive(Clone, Default)]
pub struct LaunchedAlive {
    pub launched: Arc<Mutex<Option<Box<dyn Launched>>>>,
    pub pid: Option<u32>,
}

impl std::fmt::Debug for LaunchedAlive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaunchedAlive")
            .field("pid", &self.pid)
            .finish()
    }
}

impl crate::script::Alive for LaunchedAlive {
    fn check(
        &self,
        within: Duration,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>> {
        Box::pin(async move {
            // A crash takes a moment after the frame that caused it.
            tokio::time::sleep(within.min(Duration::from_millis(300))).await;
            let exited = self
                .launched
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_mut()
                .and_then(|l| l.exited());
            if let Some((true, how)) = exited {
                return Err(format!("the client crashed: {how}"));
            }
            match self.pid {
                Some(pid) if !std::path::Path::new(&format!("/proc/{pid}")).exists() => {
                    Err(format!("the client's process {pid} exited"))
                }
                _ => Ok(()),
            }
        })
    }
}
