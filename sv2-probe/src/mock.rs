//! `sv2-probe mock tp|pool|proxy`: run a mock role on the network until interrupted.
//!
//! The mock Template Provider serves Template Distribution over Noise (or plaintext): coherent regtest
//! templates, RequestTransactionData, and every SubmitSolution checked as a full block, with the verdict
//! printed as it arrives. Configuration is a TOML file (every key optional; loopback defaults):
//!
//! ```toml
//! listen = "127.0.0.1:8442"
//! authority_secret = "<base58check secret>"   # default: a fresh key, printed at start
//! plaintext = false
//! nbits = 0x207fffff                          # TOML integer (hex allowed)
//! start_height = 200
//! block_interval_secs = 0                     # 0: blocks only when found (or never)
//! transactions = 3                            # synthetic transactions per template
//! segwit_every = 2                            # every n-th carries a witness (0: none)
//! cert_validity_secs = 86400
//! ```
//!
//! The mock pool serves the Mining protocol over Noise (or plaintext) with real share validation; its
//! templates come from an upstream TP or from an in-process one:
//!
//! ```toml
//! listen = "127.0.0.1:34254"
//! authority_secret = "<base58check secret>"   # default: a fresh key, printed at start
//! plaintext = false
//! upstream_tp = "127.0.0.1:8442"              # default: the in-process TP
//! upstream_tp_authority = "<base58check key>" # check the TP's certificate (default: not checked)
//! upstream_plaintext = false
//! pool_tag = "/sv2-mock/"
//! ack_every = 10                              # SubmitShares.Success batch size
//! block_interval_secs = 0                     # in-process TP: a new block this often (0: when found)
//! ```
//!
//! The mock proxy is an aggregating SV2 proxy: devices below it (standard and extended channels, each
//! in its own part of the extranonce space), one extended channel to the pool above:
//!
//! ```toml
//! listen = "127.0.0.1:34255"
//! upstream = "stratum2+tcp://127.0.0.1:34254/<authority key>"   # or --upstream; no key: plaintext
//! authority_secret = "<base58check secret>"   # signs the proxy's own certificate (default: fresh)
//! plaintext = false                           # towards the devices
//! reconnect_attempts = 5                      # after the pool connection is lost, then it stops
//! [proxy]
//! user_identity = "sv2-mock-proxy"
//! prefix_bytes = 2                            # extranonce bytes that tell its channels apart
//! downstream_extranonce = 6                   # bytes an extended device rolls
//! [proxy.faults]                              # one rule broken, for conformance tests
//! shared_extranonce = false
//! ```

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use sv2_wire::capture::write::SharedPcapng;
use sv2_wire::KeyLog;

use anyhow::{bail, Context};
use serde::Deserialize;
use serde_json::json;
use sv2_codec::noise::keys::{Keypair, SecretKey, Sv2Url};
use sv2_mock::tp::driver::{serve, TpServerConfig};

use crate::outcome::Outcome;

pub const LONG_ABOUT: &str = "\
Run a mock role on the network until interrupted (Ctrl-C).

tp: a Template Provider speaking Template Distribution over Noise (or plaintext). Point a pool at the \
printed URL. Every SubmitSolution is checked as a full block and its verdict printed.

pool: a pool speaking the Mining protocol (standard, extended and group channels, real share \
validation, vardiff, blocks to its TP), fed by an upstream TP or an in-process one. Point miners or a \
translator at the printed URL.

The listen address must be a loopback address unless --allow-remote is given. Configuration: a TOML \
file, every key optional; `sv2-probe mock tp --help` and `sv2-probe mock pool --help` list the keys.";

pub const TP_ABOUT: &str = "\
A mock Template Provider: Template Distribution over Noise (or plaintext), coherent regtest templates, \
RequestTransactionData, and every SubmitSolution checked as a full block, its verdict printed. Runs \
until Ctrl-C or --duration.

--config FILE is TOML; every key is optional (an unknown key is an error):

  listen = \"127.0.0.1:8442\"                  # must be loopback unless --allow-remote
  authority_secret = \"<base58check secret>\"  # default: a fresh key; the URL printed names its public key
  plaintext = false                          # true: no Noise
  nbits = 0x207fffff                         # network target (regtest: every share is a block)
  start_height = 200
  block_interval_secs = 0                    # a new block this often (0: only when one is found)
  transactions = 3                           # synthetic transactions per template
  segwit_every = 2                           # every n-th transaction has a witness (0: none)
  cert_validity_secs = 86400";

pub const POOL_ABOUT: &str = "\
A mock pool: the Mining protocol over Noise (or plaintext), standard, extended and group channels, real \
share validation, vardiff, blocks sent to its TP. Templates come from an upstream TP (upstream_tp) or \
from one run in-process. Runs until Ctrl-C or --duration; prints the URL to give miners and `probe`.

--config FILE is TOML; every key is optional (an unknown key is an error):

  listen = \"127.0.0.1:34254\"                  # must be loopback unless --allow-remote
  authority_secret = \"<base58check secret>\"   # default: a fresh key; the URL printed names its public key
  plaintext = false                           # true: no Noise (probe and mine it with --plaintext)
  upstream_tp = \"127.0.0.1:8442\"              # default: an in-process TP
  upstream_tp_authority = \"<base58check key>\" # check the TP's certificate (default: not checked)
  upstream_plaintext = false
  pool_tag = \"/sv2-mock/\"                     # in every coinbase's scriptSig
  ack_every = 10                              # shares per SubmitShares.Success
  block_interval_secs = 0                     # in-process TP: a new block this often (0: when found)
  template_interval_secs = 0                  # in-process TP: a new template on the same prev hash this
                                              # often, sent as jobs with min_ntime set (0: never)
  extensions = []                             # extension 0x0001 negotiation, confirming these (0x0002:
                                              # the worker TLV); unset: RequestExtensions is ignored
  required_extensions = []                    # listed in RequestExtensions.Error; a client going on
                                              # without them is disconnected
  work_selection = false                      # accept REQUIRES_WORK_SELECTION (no JD tokens: every
                                              # SetCustomMiningJob is refused on its merits)
  extranonce_prefix_every_secs = 0            # SetExtranoncePrefix to every channel this often (0: never)
  fixed_version = false                       # Success sets REQUIRES_FIXED_VERSION, jobs forbid rolling
  requires_extended_channels = false          # standard channels refused (REQUIRES_EXTENDED_CHANNELS)
  idle_timeout_secs = 120                     # close a connection with no channel after this (0: never)
  max_channels_per_session = 10000

Share rules: each defaults to the spec's; relax one to let a device that breaks it mine here (the conformance suite and `mine`'s monitor still say what it does wrong):

  ntime_future_slack_secs = 0    # §5.3.11 allows up to the prev hash's min_ntime + seconds since it
                                 # was sent; this much more is accepted (SRI's test device: now + 60 s)
  ntime_past_slack_secs = 0      # this much below min_ntime is accepted
  check_extranonce_size = true   # §5.3.12: SubmitSharesExtended.extranonce = extranonce_size bytes
  check_version = true           # only the rolling mask may change (none on a fixed-version pool)
  check_target = true            # §5.3.21: the hash meets the channel's target
  check_duplicates = true        # the same share twice is refused (duplicate-share)

A refused share gets SubmitShares.Error with a code: invalid-channel-id, invalid-job-id, stale-share, difficulty-too-low (codes earlier versions of the spec listed; the current one lists none); bad-extranonce-size, invalid-non-rollable-version-bit, version-rolling-not-allowed, duplicate-share (the reference implementation's); invalid-ntime, too-many-shares and user-identity-too-long (this toolkit's own). The log line of each names the rule and the allowed range.";

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub role: Role,
}

#[derive(Debug, clap::Subcommand)]
pub enum Role {
    /// A mock Template Provider.
    #[command(long_about = TP_ABOUT)]
    Tp(TpArgs),
    /// A mock pool.
    #[command(long_about = POOL_ABOUT)]
    Pool(TpArgs),
    /// A mock SV2 proxy (aggregating): devices below, one extended channel to a pool above.
    Proxy(ProxyArgs),
}

#[derive(Debug, clap::Args)]
pub struct ProxyArgs {
    /// The pool: stratum2+tcp://HOST:PORT/AUTHORITY_KEY (no key: plaintext). Overrides the file.
    #[arg(long, value_name = "URL")]
    pub upstream: Option<String>,
    #[command(flatten)]
    pub common: TpArgs,
}

#[derive(Debug, clap::Args)]
pub struct TpArgs {
    /// TOML configuration file (keys: see --help).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Listen address (overrides the file).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Stop after this many seconds (default: run until interrupted).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// Allow a non-loopback listen address.
    #[arg(long)]
    pub allow_remote: bool,
    /// A scenario file (repeatable; see scenarios/README.md) applied to what the role sends and
    /// receives: the role serves on a loopback port of its own and a relay with the role's identity
    /// takes the listen address.
    #[arg(long, value_name = "FILE")]
    pub scenario: Vec<PathBuf>,
    /// Write every connection to this pcapng as it ends (the upstream one too), with the Noise
    /// sessions' key log beside it as FILE.keylog: the traffic opens, decrypted, in Wireshark or
    /// `sv2-probe pcap FILE --keylog FILE.keylog`.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
    /// Print events as JSON lines (the log too, on stdout; stderr then shows only warnings).
    #[arg(long)]
    pub json: bool,
    /// More log lines (debug; -vv: trace). RUST_LOG, when set, decides instead.
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only warnings in the log.
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

impl Role {
    pub fn args(&self) -> &TpArgs {
        match self {
            Role::Tp(args) | Role::Pool(args) => args,
            Role::Proxy(args) => &args.common,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PoolFile {
    listen: Option<SocketAddr>,
    authority_secret: Option<String>,
    plaintext: Option<bool>,
    upstream_tp: Option<SocketAddr>,
    upstream_tp_authority: Option<String>,
    upstream_plaintext: Option<bool>,
    pool_tag: Option<String>,
    ack_every: Option<u32>,
    block_interval_secs: Option<u64>,
    template_interval_secs: Option<u64>,
    fixed_version: Option<bool>,
    requires_extended_channels: Option<bool>,
    extensions: Option<Vec<u16>>,
    required_extensions: Option<Vec<u16>>,
    work_selection: Option<bool>,
    extranonce_prefix_every_secs: Option<u32>,
    idle_timeout_secs: Option<u32>,
    max_channels_per_session: Option<usize>,
    ntime_future_slack_secs: Option<u32>,
    ntime_past_slack_secs: Option<u32>,
    check_extranonce_size: Option<bool>,
    check_version: Option<bool>,
    check_target: Option<bool>,
    check_duplicates: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProxyFile {
    listen: Option<SocketAddr>,
    upstream: Option<String>,
    authority_secret: Option<String>,
    plaintext: Option<bool>,
    reconnect_attempts: Option<u32>,
    #[serde(default)]
    proxy: sv2_mock::proxy::ProxyConfig,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TpFile {
    listen: Option<SocketAddr>,
    authority_secret: Option<String>,
    plaintext: Option<bool>,
    nbits: Option<u32>,
    start_height: Option<u32>,
    block_interval_secs: Option<u64>,
    transactions: Option<usize>,
    segwit_every: Option<usize>,
    cert_validity_secs: Option<u64>,
}

pub fn run(args: &Args, out: &mut dyn Write, _err: &mut dyn Write) -> anyhow::Result<Outcome> {
    match &args.role {
        Role::Tp(tp) => run_tp(tp, out),
        Role::Pool(pool) => run_pool(pool, out),
        Role::Proxy(proxy) => run_proxy(proxy, out),
    }
}

fn read_config<T: serde::de::DeserializeOwned>(path: Option<&PathBuf>) -> anyhow::Result<T> {
    match path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            toml::from_str(&text).with_context(|| format!("{}", path.display()))
        }
        None => toml::from_str("").context("empty configuration"),
    }
}

fn listen_address(
    args: &TpArgs,
    from_file: Option<SocketAddr>,
    default_port: u16,
) -> anyhow::Result<SocketAddr> {
    let listen = args
        .listen
        .or(from_file)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], default_port)));
    if !listen.ip().is_loopback() && !args.allow_remote {
        bail!("listen address {listen} is not loopback (pass --allow-remote to allow it)");
    }
    Ok(listen)
}

fn authority_key(secret: Option<&String>) -> anyhow::Result<Keypair> {
    Ok(match secret {
        Some(text) => {
            Keypair::from_secret(SecretKey::from_base58(text.trim()).context("authority_secret")?)
        }
        None => Keypair::generate()?,
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("tokio runtime")
}

/// Waits for Ctrl-C or the deadline. The role's log goes to stderr through `tracing` as it happens
/// (the program's subscriber); with --json its lines are also printed on stdout as JSON events, every
/// 200 ms.
async fn follow_log(
    args: &TpArgs,
    log: impl Fn() -> Vec<String>,
    scenario_lines: Option<&Fired>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let deadline = args
        .duration
        .map(|s| tokio::time::Instant::now() + Duration::from_secs_f64(s.max(0.0)));
    let mut printed = 0;
    loop {
        let tick = tokio::time::sleep(Duration::from_millis(200));
        tokio::select! {
            _ = tick => {}
            _ = tokio::signal::ctrl_c() => break,
        }
        if args.json {
            let lines = log();
            for line in lines.iter().skip(printed) {
                writeln!(out, "{}", json!({"event": "log", "text": line}))?;
            }
            printed = lines.len();
            if let Some(fired) = scenario_lines {
                let taken = std::mem::take(&mut *fired.lock().unwrap_or_else(|e| e.into_inner()));
                for line in taken {
                    writeln!(out, "{}", json!({"event": "scenario", "text": line}))?;
                }
            }
            out.flush()?;
        }
        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            break;
        }
    }
    Ok(())
}

/// What the scenario's rules did, as log lines (bounded: the oldest go first).
type Fired = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// The scenario files of --scenario, merged (None without any).
fn read_scenarios(args: &TpArgs) -> anyhow::Result<Option<sv2_scenario::Scenario>> {
    if args.scenario.is_empty() {
        return Ok(None);
    }
    let mut scenarios = Vec::new();
    for path in &args.scenario {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--scenario {}", path.display()))?;
        scenarios.push(
            sv2_scenario::Scenario::from_toml(&text)
                .with_context(|| format!("--scenario {}", path.display()))?,
        );
    }
    Ok(Some(sv2_scenario::Scenario::merge(scenarios)))
}

/// Where the role serves. Without a scenario: `listen`. With one: a loopback port of its own, in
/// plaintext, and in front of it on `listen` a relay with the role's identity (`identity`: its
/// certificate, None for a plaintext role) applying the scenario; each rule that acts is logged.
async fn front(
    listen: SocketAddr,
    scenario: Option<sv2_scenario::Scenario>,
    identity: Option<sv2_codec::noise::ResponderConfig>,
    key_log: KeyLog,
) -> anyhow::Result<(
    tokio::net::TcpListener,
    Option<(sv2_scenario::relay::RelayHandle, Fired)>,
)> {
    let Some(scenario) = scenario else {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        return Ok((listener, None));
    };
    let inner = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("the role's own loopback port")?;
    let mut relay = sv2_scenario::relay::RelayConfig::new(inner.local_addr()?);
    relay.downstream_noise = identity;
    relay.scenario = std::sync::Arc::new(scenario);
    relay.key_log = key_log;
    relay.retention = sv2_wire::Retention::RECENT;
    let fired: Fired = Default::default();
    let lines = fired.clone();
    relay.observer = Some(std::sync::Arc::new(move |id, _, _, entry| {
        if let sv2_wire::Event::Note { text } = &entry.event {
            if text.starts_with("scenario rule") {
                tracing::info!("connection {id} (scenario relay): {text}");
                let mut lines = lines.lock().unwrap_or_else(|e| e.into_inner());
                if lines.len() >= 10_000 {
                    lines.remove(0);
                }
                lines.push(format!("connection {id}: {text}"));
            }
        }
    }));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let handle = sv2_scenario::relay::serve(listener, relay).context("relay")?;
    Ok((inner, Some((handle, fired))))
}

/// After the role was told to stop: its sessions end (each writes its connection), then the
/// capture is closed and said where it is.
async fn finish_recording(
    recorder: Option<&SharedPcapng>,
    args: &TpArgs,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let Some(recorder) = recorder else {
        return Ok(());
    };
    // Sessions end on the shutdown signal; their last writes take a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let connections = recorder
        .finish()
        .with_context(|| format!("--pcap {}", recorder.path().display()))?;
    let keylog = crate::capture::keylog_path(recorder.path());
    if args.json {
        writeln!(
            out,
            "{}",
            json!({"event": "pcap", "file": recorder.path(), "keylog": keylog, "connections": connections})
        )?;
    } else {
        writeln!(
            out,
            "wrote {connections} connection(s) to {} (key log {})",
            recorder.path().display(),
            keylog.display()
        )?;
    }
    Ok(())
}

fn run_pool(args: &TpArgs, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    use sv2_codec::noise::keys::AuthorityPublicKey;
    use sv2_mock::pool::driver::{serve as serve_pool, PoolServerConfig, UpstreamTp};

    let file: PoolFile = read_config(args.config.as_ref())?;
    let listen = listen_address(args, file.listen, 34254)?;
    let authority = authority_key(file.authority_secret.as_ref())?;
    let mut config = PoolServerConfig::new(authority.clone())?;
    config.key_log = KeyLog::from_env();
    if let Some(path) = &args.pcap {
        let (recorder, keys) = crate::capture::live(path)?;
        config.recorder = Some(recorder);
        config.key_log = config.key_log.and(keys);
    }
    if file.plaintext.unwrap_or(false) {
        config.noise = None;
    }
    if let Some(address) = file.upstream_tp {
        let key = file
            .upstream_tp_authority
            .as_deref()
            .map(AuthorityPublicKey::from_base58)
            .transpose()
            .context("upstream_tp_authority")?;
        config.upstream = Some(UpstreamTp {
            address,
            noise: if file.upstream_plaintext.unwrap_or(false) {
                None
            } else {
                Some(key)
            },
        });
    }
    if let Some(tag) = &file.pool_tag {
        config.pool.pool_tag = tag.as_bytes().to_vec();
    }
    if let Some(n) = file.ack_every {
        config.pool.ack_every = n;
    }
    let pool = &mut config.pool;
    pool.fixed_version = file.fixed_version.unwrap_or(pool.fixed_version);
    pool.requires_extended_channels = file
        .requires_extended_channels
        .unwrap_or(pool.requires_extended_channels);
    if let Some(secs) = file.idle_timeout_secs {
        pool.idle_timeout_secs = (secs > 0).then_some(secs);
    }
    if let Some(n) = file.max_channels_per_session {
        anyhow::ensure!(n > 0, "max_channels_per_session must be at least 1");
        pool.max_channels_per_session = n;
    }
    let rules = &mut pool.shares;
    rules.ntime_future_slack_secs = file
        .ntime_future_slack_secs
        .unwrap_or(rules.ntime_future_slack_secs);
    rules.ntime_past_slack_secs = file
        .ntime_past_slack_secs
        .unwrap_or(rules.ntime_past_slack_secs);
    rules.check_extranonce_size = file
        .check_extranonce_size
        .unwrap_or(rules.check_extranonce_size);
    rules.check_version = file.check_version.unwrap_or(rules.check_version);
    rules.check_target = file.check_target.unwrap_or(rules.check_target);
    rules.check_duplicates = file.check_duplicates.unwrap_or(rules.check_duplicates);
    config.block_interval = file
        .block_interval_secs
        .filter(|&s| s > 0)
        .map(Duration::from_secs);
    config.template_interval = file
        .template_interval_secs
        .filter(|&s| s > 0)
        .map(Duration::from_secs);
    let pool = &mut config.pool;
    if file.extensions.is_some() || file.required_extensions.is_some() {
        pool.extensions = Some(sv2_mock::pool::ExtensionSupport {
            supported: file.extensions.clone().unwrap_or_default(),
            required: file.required_extensions.clone().unwrap_or_default(),
        });
    }
    pool.work_selection = file.work_selection.unwrap_or(pool.work_selection);
    pool.extranonce_prefix_every_secs = file.extranonce_prefix_every_secs.filter(|&s| s > 0);
    let scenario = read_scenarios(args)?;
    runtime()?.block_on(async {
        let encrypted = config.noise.is_some();
        let identity = match &scenario {
            // Behind the relay the pool speaks plaintext; the relay has its identity.
            Some(_) => config.noise.take().map(|id| {
                sv2_mock::served::responder(&id.static_key, &id.authority, id.cert_validity)
            }),
            None => None,
        };
        let (listener, front) =
            front(listen, scenario, identity, config.key_log.clone()).await?;
        let recorder = config.recorder.clone();
        let pool = serve_pool(listener, config).await.context("mock pool")?;
        let addr = front.as_ref().map_or(pool.addr, |f| f.0.addr);
        let url = Sv2Url {
            host: addr.ip().to_string(),
            port: addr.port(),
            authority_key: encrypted.then_some(authority.public),
        };
        if args.json {
            writeln!(out, "{}", json!({"event": "listening", "url": url.to_string(), "authority_public_key": authority.public.to_base58(), "plaintext": !encrypted}))?;
        } else {
            writeln!(out, "mock pool listening: {url}")?;
            if !encrypted {
                writeln!(out, "plaintext, no Noise: probe and mine it with --plaintext")?;
            }
        }
        out.flush()?;
        follow_log(args, || pool.log(), front.as_ref().map(|f| &f.1), out).await?;
        let stats = pool.stats();
        if args.json {
            writeln!(out, "{}", json!({"event": "stopped", "stats": stats}))?;
        } else {
            writeln!(
                out,
                "stopped: {} share(s) accepted, {} rejected {:?}, {} block(s) found",
                stats.shares_accepted, stats.shares_rejected, stats.rejected_by_reason, stats.blocks_found
            )?;
        }
        pool.shutdown();
        if let Some((relay, _)) = &front {
            relay.shutdown();
        }
        finish_recording(recorder.as_ref(), args, out).await?;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(Outcome::Pass)
}

fn run_proxy(args: &ProxyArgs, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    use sv2_mock::pool::driver::NoiseIdentity;
    use sv2_mock::proxy::driver::{serve as serve_proxy, ProxyServerConfig};

    let common = &args.common;
    anyhow::ensure!(
        common.scenario.is_empty(),
        "--scenario is for the TP and the pool (put a relay in front of the proxy with `sv2-probe proxy`)"
    );
    let file: ProxyFile = read_config(common.config.as_ref())?;
    let listen = listen_address(common, file.listen, 34255)?;
    let upstream_text = args.upstream.clone().or(file.upstream).context(
        "no pool: give --upstream stratum2+tcp://HOST:PORT/KEY (or upstream in the file)",
    )?;
    let url: Sv2Url = upstream_text
        .parse()
        .with_context(|| format!("upstream {upstream_text}"))?;
    let upstream: SocketAddr = url
        .host_port()
        .parse()
        .with_context(|| format!("upstream {upstream_text}: the host must be an IP address"))?;
    if !upstream.ip().is_loopback() && !common.allow_remote {
        bail!("upstream {upstream} is not loopback (pass --allow-remote to allow it)");
    }
    let authority = authority_key(file.authority_secret.as_ref())?;
    file.proxy.validate().map_err(anyhow::Error::msg)?;
    let mut config = ProxyServerConfig::new(upstream, url.authority_key);
    if url.authority_key.is_none() {
        config.upstream_noise = None;
    }
    config.proxy = file.proxy;
    if !file.plaintext.unwrap_or(false) {
        config.noise = Some(NoiseIdentity::new(authority.clone())?);
    }
    if let Some(n) = file.reconnect_attempts {
        config.reconnect_attempts = n;
    }
    config.key_log = KeyLog::from_env();
    if let Some(path) = &common.pcap {
        let (recorder, keys) = crate::capture::live(path)?;
        config.recorder = Some(recorder);
        config.key_log = config.key_log.and(keys);
    }
    runtime()?.block_on(async {
        let encrypted = config.noise.is_some();
        let recorder = config.recorder.clone();
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listen on {listen}"))?;
        let proxy = serve_proxy(listener, config).await.context("mock proxy")?;
        let url = Sv2Url {
            host: proxy.addr.ip().to_string(),
            port: proxy.addr.port(),
            authority_key: encrypted.then_some(authority.public),
        };
        if common.json {
            writeln!(out, "{}", json!({"event": "listening", "url": url.to_string(), "upstream": upstream.to_string(), "authority_public_key": authority.public.to_base58(), "plaintext": !encrypted}))?;
        } else {
            writeln!(out, "mock proxy listening: {url} (devices are accepted once the pool's channel is open)")?;
        }
        out.flush()?;
        let stopped = tokio::select! {
            r = follow_log(common, || proxy.log(), None, out) => { r?; None }
            why = proxy.ended() => Some(why),
        };
        let channels = proxy.with_proxy(|p| p.channel_count());
        if common.json {
            writeln!(out, "{}", json!({"event": "stopped", "why": stopped, "channels": channels}))?;
        } else {
            writeln!(out, "stopped{}", stopped.as_ref().map(|w| format!(": {w}")).unwrap_or_default())?;
        }
        proxy.shutdown();
        finish_recording(recorder.as_ref(), common, out).await?;
        Ok::<_, anyhow::Error>(stopped)
    })
    .map(|stopped| match stopped {
        // Stopped by itself: the pool refused it or was lost.
        Some(_) => Outcome::Fail,
        None => Outcome::Pass,
    })
}

fn run_tp(args: &TpArgs, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    let file: TpFile = read_config(args.config.as_ref())?;
    let listen = listen_address(args, file.listen, 8442)?;
    let authority = authority_key(file.authority_secret.as_ref())?;
    let mut config = TpServerConfig::new(authority.clone())?;
    config.key_log = KeyLog::from_env();
    if let Some(path) = &args.pcap {
        let (recorder, keys) = crate::capture::live(path)?;
        config.recorder = Some(recorder);
        config.key_log = config.key_log.and(keys);
    }
    if file.plaintext.unwrap_or(false) {
        config.authority = None;
    }
    if let Some(nbits) = file.nbits {
        config.tp.nbits = nbits;
    }
    if let Some(h) = file.start_height {
        config.tp.start_height = h;
    }
    if let Some(n) = file.transactions {
        config.tp.params.transactions = n;
    }
    if let Some(n) = file.segwit_every {
        config.tp.params.segwit_every = n;
    }
    if let Some(secs) = file.cert_validity_secs {
        config.cert_validity = Duration::from_secs(secs);
    }
    config.block_interval = file
        .block_interval_secs
        .filter(|&s| s > 0)
        .map(Duration::from_secs);
    let scenario = read_scenarios(args)?;
    runtime()?.block_on(async {
        let mut served = config.clone();
        let identity = match &scenario {
            // Behind the relay the TP speaks plaintext; the relay has its identity.
            Some(_) => served.authority.take().map(|authority| {
                sv2_mock::served::responder(&config.static_key, &authority, config.cert_validity)
            }),
            None => None,
        };
        let (listener, front) =
            front(listen, scenario, identity, config.key_log.clone()).await?;
        let recorder = config.recorder.clone();
        let tp = serve(listener, served)?;
        let addr = front.as_ref().map_or(tp.addr, |f| f.0.addr);
        let url = Sv2Url {
            host: addr.ip().to_string(),
            port: addr.port(),
            authority_key: config.authority.as_ref().map(|a| a.public),
        };
        if args.json {
            writeln!(out, "{}", json!({"event": "listening", "url": url.to_string(), "authority_public_key": authority.public.to_base58(), "plaintext": config.authority.is_none()}))?;
        } else {
            writeln!(out, "mock TP listening: {url}")?;
        }
        out.flush()?;
        follow_log(args, || tp.log(), front.as_ref().map(|f| &f.1), out).await?;
        let verdicts = tp.verdicts();
        let valid = verdicts.iter().filter(|v| v.valid).count();
        if args.json {
            writeln!(out, "{}", json!({"event": "stopped", "solutions": verdicts.len(), "valid": valid, "height": tp.height()}))?;
        } else {
            writeln!(out, "stopped: {} solution(s), {valid} valid; building height {}", verdicts.len(), tp.height())?;
        }
        tp.shutdown();
        if let Some((relay, _)) = &front {
            relay.shutdown();
        }
        finish_recording(recorder.as_ref(), args, out).await?;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(Outcome::Pass)
}
