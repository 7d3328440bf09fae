//! The reference implementation's binaries as real peers: find them, write loopback configurations, start
//! them, wait until they listen, stop them (on drop too), and keep their logs for failure reports.
//!
//! Binaries come from `cargo install` (`scripts/test.sh` installs them; see `../shared/peers/PEERS.md`).
//! A test that needs one and does not find it fails when `SV2_REQUIRE_PEERS=1` (the README's test
//! command sets it), and otherwise says it is skipped: a developer without the binaries can still run
//! `cargo test`, while CI cannot pass without the peers.
//!
//! Every address written into a configuration is 127.0.0.1, and no telemetry or network scan section is
//! ever written (SRI's own example configurations scan a private network).

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Looks for an installed binary: `$CARGO_HOME/bin`, `~/.cargo/bin`, then `PATH`.
pub fn find_binary(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        dirs.push(PathBuf::from(home).join("bin"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo/bin"));
    }
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// The versions of the reference binaries the tests are written against (`scripts/test.sh`
/// installs these): a test never runs against another one unknowingly.
pub const PINNED: &[(&str, &str)] = &[
    ("pool_sv2", "0.7.0"),
    ("translator_sv2", "0.6.0"),
    ("jd_client_sv2", "0.6.0"),
];

/// Whether `path --version` says `name <pinned version>`; why not, otherwise.
pub fn check_version(name: &str, path: &Path) -> Result<(), String> {
    let Some((_, version)) = PINNED.iter().find(|(n, _)| *n == name) else {
        return Ok(());
    };
    let output = Command::new(path)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{} --version: {e}", path.display()))?;
    let said = String::from_utf8_lossy(&output.stdout);
    let wanted = format!("{name} {version}");
    let words: Vec<&str> = said.split_whitespace().collect();
    if words.windows(2).any(|w| w[0] == name && w[1] == *version) {
        Ok(())
    } else {
        Err(format!(
            "{} --version says {:?}, not {wanted}",
            path.display(),
            said.trim()
        ))
    }
}

/// Where skipped tests are listed, one line each, for the test command's summary
/// (`target/test-skips.txt` of the repository; `scripts/test.sh` prints it at the end).
pub fn skip_list() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-skips.txt")
}

/// The binary at its pinned version, or `None` after saying the test is skipped (on stderr, and
/// in [`skip_list`]); panics when peers are required (`SV2_REQUIRE_PEERS=1`).
pub fn binary_or_skip(name: &str, test: &str) -> Option<PathBuf> {
    let problem = match find_binary(name) {
        Some(path) => match check_version(name, &path) {
            Ok(()) => return Some(path),
            Err(why) => why,
        },
        None => format!("{name} is not installed"),
    };
    if std::env::var("SV2_REQUIRE_PEERS").is_ok_and(|v| v == "1") {
        panic!("{test}: {problem} and SV2_REQUIRE_PEERS=1 (scripts/test.sh installs it)");
    }
    let line = format!("{test}: SKIPPED, {problem} (run scripts/test.sh to install it)");
    eprintln!("{line}");
    let list = skip_list();
    if let Some(dir) = list.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&list)
    {
        use std::io::Write;
        let _ = writeln!(file, "{line}");
    }
    None
}

/// A free TCP port on 127.0.0.1 (bound and released: another process could take it in between, which
/// on a test machine does not happen in practice).
pub fn free_port() -> io::Result<u16> {
    Ok(free_ports::<1>()?[0])
}

/// `N` distinct free TCP ports on 127.0.0.1. All are held until all are chosen: ports picked one
/// after another can be the same (seen: pool_sv2 given one port for its listener and its monitoring
/// server, which then failed with "Address already in use").
pub fn free_ports<const N: usize>() -> io::Result<[u16; N]> {
    let listeners = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<io::Result<Vec<_>>>()?;
    let mut ports = [0u16; N];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener.local_addr()?.port();
    }
    Ok(ports)
}

/// Waits until something accepts connections on `addr`.
pub fn wait_listening(addr: SocketAddr, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// A running peer process, killed on drop. Its stdout and stderr go to a log file.
#[derive(Debug)]
pub struct PeerProcess {
    child: Child,
    /// The log file (stdout and stderr).
    pub log_path: PathBuf,
    /// The directory holding its configuration and log.
    pub dir: PathBuf,
}

impl PeerProcess {
    /// Starts `binary -c <dir>/config.toml` with `config` written there, logging to `<dir>/log.txt`.
    pub fn start(binary: &Path, dir: &Path, config: &str) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let config_path = dir.join("config.toml");
        std::fs::write(&config_path, config)?;
        let log_path = dir.join("log.txt");
        let log = std::fs::File::create(&log_path)?;
        let child = Command::new(binary)
            .arg("-c")
            .arg(&config_path)
            .current_dir(dir)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        Ok(Self {
            child,
            log_path,
            dir: dir.to_owned(),
        })
    }

    /// The process id (for `sv2-probe fuzz --pid`: its exit and its memory).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The process's output so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The last `n` lines of its output.
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Whether it has exited (and how).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh scratch directory for one peer run.
pub fn scratch_dir(name: &str) -> io::Result<PathBuf> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("sv2-peers-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// SRI's pool_sv2 0.7.0 configuration on loopback (from `../shared/peers/configs/pool-loopback.toml`),
/// with our TP's address and, when given, the TP's authority key to check its certificate.
#[derive(Debug)]
pub struct PoolConfig<'a> {
    /// The pool's authority key pair (base58check public, base58check secret).
    pub authority_public: &'a str,
    pub authority_secret: &'a str,
    /// Where miners connect.
    pub listen_port: u16,
    /// The pool's monitoring HTTP port (on 127.0.0.1).
    pub monitoring_port: u16,
    /// The template provider's address.
    pub tp_addr: SocketAddr,
    /// The TP's authority key (base58check), checked by the pool when set.
    pub tp_authority: Option<String>,
    /// Shares per minute the pool's vardiff aims at.
    pub shares_per_minute: f32,
    /// Shares acknowledged per SubmitShares.Success.
    pub share_batch_size: u32,
}

impl PoolConfig<'_> {
    /// The TOML text.
    pub fn to_toml(&self) -> String {
        assert!(self.tp_addr.ip().is_loopback(), "loopback only");
        let tp_key = self
            .tp_authority
            .as_ref()
            .map(|k| format!("public_key = \"{k}\"\n"))
            .unwrap_or_default();
        format!(
            r#"authority_public_key = "{public}"
authority_secret_key = "{secret}"
cert_validity_sec = 3600
listen_address = "127.0.0.1:{listen}"
coinbase_reward_script = "addr(tb1qa0sm0hxzj0x25rh8gw5xlzwlsfvvyz8u96w3p8)"
server_id = 1
pool_signature = "SV2 toolkit e2e pool"
shares_per_minute = {spm:.1}
share_batch_size = {batch}
monitoring_address = "127.0.0.1:{monitoring}"
monitoring_cache_refresh_secs = 15

[template_provider_type.Sv2Tp]
address = "{tp}"
{tp_key}"#,
            public = self.authority_public,
            secret = self.authority_secret,
            listen = self.listen_port,
            spm = self.shares_per_minute,
            batch = self.share_batch_size,
            monitoring = self.monitoring_port,
            tp = self.tp_addr,
        )
    }
}

/// SRI's translator_sv2 0.6.0 configuration on loopback (from
/// `../shared/peers/configs/tproxy-loopback.toml`, which has no telemetry section: no network scan).
#[derive(Debug)]
pub struct TranslatorConfig<'a> {
    /// Where SV1 miners connect (on 127.0.0.1).
    pub downstream_port: u16,
    /// The upstream SV2 pool (on 127.0.0.1).
    pub upstream_port: u16,
    /// The pool's authority key (base58check).
    pub upstream_authority: &'a str,
    /// The translator's monitoring HTTP port (on 127.0.0.1).
    pub monitoring_port: u16,
    /// The hash rate the translator assumes per SV1 miner (sets the first SV1 difficulty).
    pub min_individual_miner_hashrate: f64,
    /// Shares per minute its SV1 vardiff aims at.
    pub shares_per_minute: f64,
}

impl TranslatorConfig<'_> {
    /// The TOML text.
    pub fn to_toml(&self) -> String {
        format!(
            r#"downstream_address = "127.0.0.1"
downstream_port = {down}
max_supported_version = 2
min_supported_version = 2
downstream_extranonce2_size = 4
verify_payout = false
aggregate_channels = true
supported_extensions = []
monitoring_address = "127.0.0.1:{monitoring}"
monitoring_cache_refresh_secs = 15

[downstream_difficulty_config]
min_individual_miner_hashrate = {hashrate:.1}
shares_per_minute = {spm:.1}
enable_vardiff = true
job_keepalive_interval_secs = 60

[[upstreams]]
address = "127.0.0.1"
port = {up}
authority_pubkey = "{key}"
user_identity = "sv2-toolkit.e2e"
"#,
            down = self.downstream_port,
            monitoring = self.monitoring_port,
            hashrate = self.min_individual_miner_hashrate,
            spm = self.shares_per_minute,
            up = self.upstream_port,
            key = self.upstream_authority,
        )
    }
}

/// SRI's jd_client_sv2 0.6.0 configuration in solo-mining mode on loopback (from
/// `../shared/peers/configs/jdc-solo-loopback.toml`: no upstream, no telemetry section, so no network
/// scan). It serves SV2 miners itself, with SRI's test authority key pair, and builds its jobs from the
/// TP at `tp_addr`.
#[derive(Debug)]
pub struct JdcConfig {
    /// Where miners connect (on 127.0.0.1).
    pub listen_port: u16,
    /// Its monitoring HTTP port (on 127.0.0.1).
    pub monitoring_port: u16,
    /// The template provider's address.
    pub tp_addr: SocketAddr,
    /// Shares per minute its vardiff aims at.
    pub shares_per_minute: f32,
    /// Shares acknowledged per SubmitShares.Success.
    pub share_batch_size: u32,
}

impl JdcConfig {
    /// The TOML text.
    pub fn to_toml(&self) -> String {
        assert!(self.tp_addr.ip().is_loopback(), "loopback only");
        format!(
            r#"listening_address = "127.0.0.1:{listen}"
max_supported_version = 2
min_supported_version = 2
authority_public_key = "{public}"
authority_secret_key = "{secret}"
cert_validity_sec = 3600
shares_per_minute = {spm:.1}
share_batch_size = {batch}
mode = "SOLOMINING"
jdc_signature = "Sv2ToolkitE2E"
coinbase_reward_script = "addr(tb1qa0sm0hxzj0x25rh8gw5xlzwlsfvvyz8u96w3p8)"
monitoring_address = "127.0.0.1:{monitoring}"
upstreams = []

[template_provider_type.Sv2Tp]
address = "{tp}"
"#,
            listen = self.listen_port,
            public = crate::noise::TEST_AUTHORITY_PUBLIC,
            secret = crate::noise::TEST_AUTHORITY_SECRET,
            spm = self.shares_per_minute,
            batch = self.share_batch_size,
            monitoring = self.monitoring_port,
            tp = self.tp_addr,
        )
    }
}

/// Starts SRI's jd_client_sv2 in solo-mining mode on a free loopback port, fed by the TP at `tp_addr`,
/// acknowledging every share, and waits (on a blocking thread, up to 60 s) until it listens. The
/// error carries its log.
pub async fn start_reference_jdc(
    binary: &Path,
    name: &str,
    tp_addr: SocketAddr,
) -> io::Result<(PeerProcess, SocketAddr)> {
    let [listen_port, monitoring_port] = free_ports()?;
    let config = JdcConfig {
        listen_port,
        monitoring_port,
        tp_addr,
        shares_per_minute: 6.0,
        share_batch_size: 1,
    };
    start_listening(binary, name, &config.to_toml(), listen_port).await
}

/// Starts SRI's pool_sv2 on a free loopback port with SRI's test authority key pair, fed by the TP at
/// `tp_addr` (whose certificate it checks against `tp_authority` when given), acknowledging every
/// share, and waits (on a blocking thread, up to 60 s) until it listens. The error carries the pool's
/// log.
pub async fn start_reference_pool(
    binary: &Path,
    name: &str,
    tp_addr: SocketAddr,
    tp_authority: Option<String>,
) -> io::Result<(PeerProcess, SocketAddr)> {
    let [listen_port, monitoring_port] = free_ports()?;
    let config = PoolConfig {
        authority_public: crate::noise::TEST_AUTHORITY_PUBLIC,
        authority_secret: crate::noise::TEST_AUTHORITY_SECRET,
        listen_port,
        monitoring_port,
        tp_addr,
        tp_authority,
        shares_per_minute: 6.0,
        share_batch_size: 1,
    };
    start_listening(binary, name, &config.to_toml(), listen_port).await
}

/// Starts `binary` with `config` in a fresh scratch directory named after `name`, and waits (on a
/// blocking thread, up to 60 s) until it listens on 127.0.0.1:`listen_port`. The error carries its
/// log.
async fn start_listening(
    binary: &Path,
    name: &str,
    config: &str,
    listen_port: u16,
) -> io::Result<(PeerProcess, SocketAddr)> {
    let mut peer = PeerProcess::start(binary, &scratch_dir(name)?, config)?;
    let addr = SocketAddr::from(([127, 0, 0, 1], listen_port));
    let listening =
        tokio::task::spawn_blocking(move || wait_listening(addr, Duration::from_secs(60)))
            .await
            .map_err(io::Error::other)?;
    if !listening {
        return Err(io::Error::other(format!(
            "{} did not listen on {addr} (exit {:?})\n{}",
            binary.display(),
            peer.exited(),
            peer.log_tail(40)
        )));
    }
    Ok((peer, addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct() {
        for _ in 0..50 {
            let ports = free_ports::<4>().unwrap();
            let distinct: std::collections::BTreeSet<u16> = ports.iter().copied().collect();
            assert_eq!(distinct.len(), 4, "{ports:?}");
            assert!(!distinct.contains(&0));
        }
    }
}

/// `tcpdump` capturing TCP on the loopback interface to a pcap file, for tests that decode what
/// real peers sent (`sv2_wire::capture`). Stopped with SIGINT, so that it writes its last packets.
#[derive(Debug)]
pub struct Tcpdump {
    child: Child,
    pub file: PathBuf,
    /// tcpdump's standard error so far (its statistics come at the end).
    stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// A finished capture: the file, and how many packets tcpdump says the kernel dropped (`None` when
/// it did not say). A capture with drops may lack any packet; what reads it must not demand one.
#[derive(Debug, Clone)]
pub struct Captured {
    pub file: PathBuf,
    pub dropped: Option<u64>,
    /// tcpdump's statistics lines, as it printed them.
    pub statistics: Vec<String>,
}

impl Tcpdump {
    /// Starts capturing `ports` (all TCP when empty) on `lo` into `file`. `None` when tcpdump is not installed or may not
    /// capture here (it needs CAP_NET_RAW): the caller says it did not capture; it fails instead
    /// when `SV2_REQUIRE_TCPDUMP=1` (scripts/test.sh installs tcpdump and runs as root in CI).
    pub fn start(ports: &[u16], file: &Path) -> Option<Tcpdump> {
        let required = std::env::var("SV2_REQUIRE_TCPDUMP").is_ok_and(|v| v == "1");
        let Some(bin) = find_binary("tcpdump").or_else(|| {
            let sbin = PathBuf::from("/usr/sbin/tcpdump");
            sbin.is_file().then_some(sbin)
        }) else {
            assert!(
                !required,
                "tcpdump is not installed and SV2_REQUIRE_TCPDUMP=1"
            );
            eprintln!("tcpdump not installed: no capture");
            return None;
        };
        // No ports: every TCP packet on the interface.
        let filter = if ports.is_empty() {
            "tcp".to_string()
        } else {
            let ports: Vec<String> = ports.iter().map(|p| format!("port {p}")).collect();
            format!("tcp and ({})", ports.join(" or "))
        };
        let mut child = Command::new(bin)
            .args(["-i", "lo", "-U", "--immediate-mode", "-s", "0", "-w"])
            .arg(file)
            .arg(filter)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .ok()?;
        // It captures once it says "listening on" (the filter is attached by then).
        let (tx, rx) = std::sync::mpsc::channel();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        if let Some(stderr) = child.stderr.take() {
            let lines = lines.clone();
            std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(stderr)
                    .lines()
                    .map_while(Result::ok)
                {
                    if line.contains("listening on") {
                        let _ = tx.send(());
                    }
                    if let Ok(mut lines) = lines.lock() {
                        lines.push(line);
                    }
                }
            });
        }
        if rx.recv_timeout(Duration::from_secs(5)).is_ok() {
            std::thread::sleep(Duration::from_millis(200));
            return Some(Tcpdump {
                child,
                file: file.to_path_buf(),
                stderr: lines,
            });
        }
        if let Ok(Some(status)) = child.try_wait() {
            assert!(
                !required,
                "tcpdump exited at once ({status}): no permission to capture?"
            );
            eprintln!("tcpdump exited at once ({status}): no capture");
            return None;
        }
        let _ = child.kill();
        assert!(!required, "tcpdump did not start capturing within 5 s");
        None
    }

    /// Stops the capture (SIGINT: tcpdump flushes, prints its statistics and exits).
    pub fn stop(mut self) -> Captured {
        std::thread::sleep(Duration::from_millis(300));
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut exited = false;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                exited = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if !exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // The reader thread ends with tcpdump's standard error.
        let until = Instant::now() + Duration::from_secs(1);
        let statistics = loop {
            let lines = self.stderr.lock().map(|l| l.clone()).unwrap_or_default();
            let done = lines.iter().any(|l| l.contains("dropped by kernel"));
            if done || Instant::now() > until {
                break lines
                    .into_iter()
                    .filter(|l| l.contains("packets"))
                    .collect::<Vec<_>>();
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let dropped = statistics
            .iter()
            .find(|l| l.contains("dropped by kernel"))
            .and_then(|l| l.split_whitespace().next()?.parse().ok());
        Captured {
            file: self.file.clone(),
            dropped,
            statistics,
        }
    }
}

impl Drop for Tcpdump {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
