//! `sv2-probe fuzz`: network fuzzing of a live SV2 server (sv2_scenario::fuzz), and `fuzz merge`
//! for the reports of a campaign's shards.

use std::io::{IsTerminal, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use sv2_codec::noise::keys::Keypair;
use sv2_codec::noise::keys::Sv2Url;
use sv2_scenario::fuzz::listen::ListenConfig;
use sv2_scenario::fuzz::{self, Config, Report, Shard, Target};
use sv2_scenario::launch::{Endpoint, Launcher};

use crate::outcome::Outcome;

pub const LONG_ABOUT: &str = "\
Network fuzzing of a live SV2 server, `sv2-probe fuzz --target URL [--role pool|proxy|tp]`, or of \
SV2 clients, `sv2-probe fuzz --listen ADDR [--role device|proxy|translator|tp-client|jdc] [--spawn \
CMD]`.

Each case opens its own connection, reaches a protocol state with valid traffic (connected; set up; \
a standard or an extended channel with its first job and prev hash; for a template provider, its \
first template after CoinbaseOutputConstraints), sends one valid message of \
that state mutated (field-aware from the codec's field tables: boundary integers, NaN and negative \
floats, BOOL bytes, lengths and counts that lie or pass their type's bound, OPTION prefixes, empty \
and maximal byte fields, invalid UTF-8, fields cut short, TLVs; frame-level: msg_length that lies, \
the channel_msg bit, unknown message types and extensions, other subprotocols' messages, frames \
back to back; Noise-level: broken MACs, garbage between frames, flipped bits; time-level: a byte \
at a time, a stall mid-frame), then asks the oracles:

  accepted-invalid  a request whose bytes no reader could accept (a field past the end, a length \
above its type's bound, an OPTION prefix of 2) was answered with its success;
  hang              the case's connection neither answered a valid request nor closed, while new \
connections were served;
  crash             no new connection completes the handshake and SetupConnection (or, with \
--pid, the process exited);
  leak              with --pid, the process's resident memory grew past --max-rss-growth.

Cases depend only on --seed and their number: a campaign is the same every time, and splits into \
shards (--shard I/N) whose JSON reports `sv2-probe fuzz merge` joins. Every finding is written \
under --out DIR/findings/ as a scenario file that replays it from a fresh connection \
(`sv2-probe scenario run FILE --target URL`), minimised to the steps it needs, with its transcript \
and a pcapng; the report goes to DIR/report.txt and DIR/report.json.

With --listen the fuzzer plays the client's server (Noise with a fresh authority key, or \
--authority-secret FILE; the URL to give the client is printed, and --spawn CMD gets it as {url}, \
{host}, {port}, {authority_key}). Each connection of the client is a case: its SetupConnection \
received; its channel request received; a channel open with a job and a prev hash; for a Template \
Distribution client (a pool, a JDC), a template and its prev hash; then one server message \
mutated (SetupConnection.Success/.Error, Open*.Success/.Error, jobs, prev hashes, targets, \
extranonce prefixes, share acknowledgements, CloseChannel, SetGroupChannel, templates, transaction \
data). A control case with valid traffic only comes first and learns whether the client answers \
work (a share on a fresh job at the easiest target, a request for a fresh template's \
transactions); where it does, a valid follow-up after each case must be answered (hang) and a job \
or template whose bytes no reader could accept must not be worked on (accepted-invalid). A client \
started with --spawn is started again whenever it ends; its crash (a signal, a Rust panic) while \
its connection is open is a finding, as is, with --pid, its exit. Findings replay with `sv2-probe \
scenario run FILE --listen ADDR --spawn CMD`. One client at a time (no --jobs, no --shard).

Loopback targets only unless --allow-remote. The campaign stops by itself: after --cases, after \
--seconds, at the first crash (unless --keep-going, or --spawn CMD: the campaign starts the server \
and starts it again after each crash), and never opens more than \
--max-connection-rate connections a second (two per case: its own and the liveness check; a crowd \
case opens 32 more). Exit code 1 when there are findings.";

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Cmd>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, clap::Subcommand)]
pub enum Cmd {
    /// Join the JSON reports of a campaign's shards (or of several runs) into one.
    Merge(MergeArgs),
}

#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// report.json files.
    #[arg(required = true)]
    pub reports: Vec<PathBuf>,
    /// The merged report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FamilyArg {
    Field,
    Frame,
    Noise,
    Time,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// --target: a Mining protocol server, a pool.
    Pool,
    /// --target: a mining proxy's side that serves devices as a pool does; --listen: its upstream
    /// side, a Mining client.
    Proxy,
    /// --target: a template provider (Template Distribution).
    Tp,
    /// --listen: a mining device (a Mining client).
    Device,
    /// --listen: a translator's SV2 upstream side (a Mining client).
    Translator,
    /// --listen: a Template Distribution client (a pool, a job declarator client).
    TpClient,
    /// --listen: a job declarator client's template provider side (its pool and job declarator
    /// sides are not fuzzed yet).
    Jdc,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The server: stratum2+tcp://HOST:PORT[/AUTHORITY_KEY].
    #[arg(long, value_name = "URL", conflicts_with = "listen")]
    pub target: Option<String>,
    /// Fuzz clients instead: listen here (the URL to give the client is printed) and play their
    /// server.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Start the implementation under test with `sh -c CMD` ({url}, {host}, {port},
    /// {authority_key} replaced). With --listen: the client, again whenever it ends; its crash (a
    /// signal, a Rust panic) is a finding. With --target: the server, which must listen at the
    /// target's address, before the first case and again after each crash (any exit of it is
    /// one); the campaign goes on after crashes.
    #[arg(long, value_name = "CMD")]
    pub spawn: Option<String>,
    /// With --listen: the authority secret (a base58 file, as `sv2-probe keys` writes) whose
    /// public key the client trusts; else a fresh key, printed in the URL.
    #[arg(long, value_name = "FILE", requires = "listen")]
    pub authority_secret: Option<PathBuf>,
    /// With --listen: how long to wait for the client's next connection, milliseconds (a client
    /// the fuzzer started is started again once first); a client that does not come stops the
    /// campaign.
    #[arg(long, value_name = "MS", default_value_t = 15000)]
    pub connect_wait_ms: u64,
    /// What the target is (--target: pool, proxy, tp), or the client (--listen: device, proxy,
    /// translator, tp-client, jdc; default device).
    #[arg(long, value_enum)]
    pub role: Option<Role>,
    /// No Noise.
    #[arg(long)]
    pub plaintext: bool,
    /// The campaign's seed: the same seed, the same cases.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Stop after this many cases (of this shard).
    #[arg(long)]
    pub cases: Option<u64>,
    /// Start at this case number (with the same --seed: the cases of an earlier campaign again,
    /// e.g. `--from-case 264 --cases 1` for case 264 alone).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub from_case: u64,
    /// Stop after this many seconds (with neither --cases nor --seconds: 1,000 cases).
    #[arg(long)]
    pub seconds: Option<f64>,
    /// Cases at once, each on its own connection.
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Run only shard I of N (cases whose number is I modulo N).
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Write findings and the report here.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The process id of the implementation under test when it runs by itself: its memory growth
    /// is a leak; a server's exit is a crash (a client's exit stops the campaign: its exit status
    /// is unknown, use --spawn to tell a crash from an exit).
    #[arg(long, conflicts_with = "spawn")]
    pub pid: Option<u32>,
    /// With --pid: the growth of resident memory that is a leak, MiB.
    #[arg(long, value_name = "MIB", default_value_t = 256)]
    pub max_rss_growth: u64,
    /// How long to wait for each answer, milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 3000)]
    pub wait_ms: u64,
    /// At most this many new connections a second (with --target; with --listen the client
    /// decides when it connects, one case at a time).
    #[arg(long, value_name = "N", default_value_t = 2000)]
    pub max_connection_rate: u32,
    /// Keep findings as found (no replay, no minimising).
    #[arg(long)]
    pub no_minimize: bool,
    /// Go on after a crash (when the target comes back by itself).
    #[arg(long)]
    pub keep_going: bool,
    /// Stop after this many findings.
    #[arg(long, value_name = "N")]
    pub max_findings: Option<usize>,
    /// Only cases of these mutation families (comma-separated: field, frame, noise, time); the
    /// others are passed over, and the cases run keep their numbers.
    #[arg(long, value_delimiter = ',', value_enum)]
    pub family: Vec<FamilyArg>,
    /// The report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Allow a target that is not on this machine.
    #[arg(long)]
    pub allow_remote: bool,
}

pub fn run(args: &Args, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<Outcome> {
    match &args.command {
        Some(Cmd::Merge(m)) => merge(m, out),
        None => campaign(&args.run, out, err),
    }
}

fn parse_shard(text: &str) -> anyhow::Result<Shard> {
    let (i, n) = text.split_once('/').context("--shard is I/N, e.g. 0/4")?;
    let shard = Shard {
        index: i.trim().parse().context("--shard I")?,
        count: n.trim().parse().context("--shard N")?,
    };
    if shard.count == 0 || shard.index >= shard.count {
        bail!("--shard {text}: I must be below N, and N at least 1");
    }
    Ok(shard)
}

fn resolve(url: &Sv2Url) -> anyhow::Result<SocketAddr> {
    url.host_port()
        .to_socket_addrs()
        .with_context(|| format!("resolve {}", url.host_port()))?
        .next()
        .with_context(|| format!("{} names no address", url.host_port()))
}

fn families(args: &RunArgs) -> Vec<fuzz::mutate::Family> {
    args.family
        .iter()
        .map(|f| match f {
            FamilyArg::Field => fuzz::mutate::Family::Field,
            FamilyArg::Frame => fuzz::mutate::Family::Frame,
            FamilyArg::Noise => fuzz::mutate::Family::Noise,
            FamilyArg::Time => fuzz::mutate::Family::Time,
        })
        .collect()
}

fn seconds(args: &RunArgs) -> anyhow::Result<Option<Duration>> {
    args.seconds
        .map(|s| {
            Duration::try_from_secs_f64(s)
                .map_err(|_| anyhow::anyhow!("--seconds {s}: a number of seconds, at least 0"))
        })
        .transpose()
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("tokio runtime")
}

fn progress(err: &mut dyn Write) -> fuzz::campaign::Progress {
    let _ = err;
    let terminal = std::io::stderr().is_terminal();
    Arc::new(move |r: &Report| {
        if terminal && r.cases.is_multiple_of(25) {
            eprint!("\r{} cases, {} finding(s)   ", r.cases, r.findings.len());
        }
    })
}

fn render(
    report: &Report,
    args: &RunArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<Outcome> {
    if std::io::stderr().is_terminal() {
        writeln!(err)?;
    }
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(report)?)?;
    } else {
        write!(out, "{}", report.text())?;
    }
    Ok(if report.findings.is_empty() {
        Outcome::Pass
    } else {
        Outcome::Fail
    })
}

/// `--listen`: the fuzzer as the server of a client under test.
fn listen_campaign(
    args: &RunArgs,
    listen: SocketAddr,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<Outcome> {
    if !listen.ip().is_loopback() && !args.allow_remote {
        bail!("listen address {listen} is not loopback (pass --allow-remote to allow it)");
    }
    let role = match args.role.unwrap_or(Role::Device) {
        Role::Device | Role::Proxy | Role::Translator => fuzz::client::ClientRole::Mining,
        Role::TpClient | Role::Jdc => fuzz::client::ClientRole::TemplateClient,
        r @ (Role::Pool | Role::Tp) => {
            bail!("--role {r:?} is a server: fuzz it with --target (with --listen: device, proxy, translator, tp-client, jdc)")
        }
    };
    if args.jobs != 1 || args.shard.is_some() {
        bail!("--listen fuzzes one client at a time: no --jobs or --shard");
    }
    let launcher = match &args.spawn {
        Some(command) => Launcher::Command(command.clone()),
        None => Launcher::External,
    };
    let mut config = ListenConfig::new(role, launcher);
    config.seed = args.seed;
    config.cases = args.cases;
    config.first_case = args.from_case;
    config.duration = seconds(args)?;
    config.wait = Duration::from_millis(args.wait_ms.max(50));
    config.connect_wait = Duration::from_millis(args.connect_wait_ms.max(100));
    config.out = args.out.clone();
    config.pid = args.pid;
    config.max_rss_growth_kib = args.max_rss_growth.saturating_mul(1024);
    config.minimize = !args.no_minimize;
    config.stop_on_crash = !args.keep_going;
    config.max_findings = args.max_findings;
    config.families = families(args);
    config.authority = if args.plaintext {
        None
    } else {
        Some(match &args.authority_secret {
            Some(path) => Keypair::from_secret(crate::keys::read_secret_file(path)?),
            None => Keypair::generate()?,
        })
    };
    let progress = progress(err);
    let runtime = runtime()?;
    let report = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        let endpoint = Endpoint::new(addr, config.authority.as_ref().map(|k| k.public));
        writeln!(
            err,
            "fuzzing clients of {}{}",
            endpoint.url,
            match &args.spawn {
                Some(c) => format!(" (started with: {})", endpoint.expand(c)),
                None => " (start the client, pointed at this URL)".into(),
            }
        )?;
        anyhow::Ok(fuzz::listen::run(listener, &config, progress).await)
    })?;
    render(&report, args, out, err)
}

fn campaign(args: &RunArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<Outcome> {
    if let Some(listen) = args.listen {
        return listen_campaign(args, listen, out, err);
    }
    let target = args
        .target
        .as_ref()
        .context("--target URL (a server) or --listen ADDR (clients) is required")?;
    let url: Sv2Url = target.parse().context("--target")?;
    if url.authority_key.is_none() && !args.plaintext {
        bail!("--target has no authority key: give one, or pass --plaintext");
    }
    let addr = resolve(&url)?;
    if !addr.ip().is_loopback() && !args.allow_remote {
        bail!("target {addr} is not loopback (pass --allow-remote to fuzz another machine)");
    }
    if args.jobs == 0 || args.jobs > fuzz::campaign::MAX_JOBS {
        bail!("--jobs is 1 to {}", fuzz::campaign::MAX_JOBS);
    }
    let mut config = Config::new(Target {
        addr,
        noise: (!args.plaintext).then_some(url.authority_key),
    });
    // A pool and a proxy's downstream side serve the same Mining protocol.
    config.role = match args.role.unwrap_or(Role::Pool) {
        Role::Pool | Role::Proxy => fuzz::Role::Mining,
        Role::Tp => fuzz::Role::TemplateProvider,
        r => bail!(
            "--role {r:?} is a client: fuzz it with --listen ADDR (with --target: pool, proxy, tp)"
        ),
    };
    config.seed = args.seed;
    config.cases = args.cases;
    config.first_case = args.from_case;
    config.duration = seconds(args)?;
    config.jobs = args.jobs;
    config.shard = args
        .shard
        .as_deref()
        .map(parse_shard)
        .transpose()?
        .unwrap_or_default();
    config.wait = Duration::from_millis(args.wait_ms.max(50));
    config.out = args.out.clone();
    config.pid = args.pid;
    config.max_rss_growth_kib = args.max_rss_growth.saturating_mul(1024);
    config.max_connections_per_sec = args.max_connection_rate.max(1);
    config.minimize = !args.no_minimize;
    config.stop_on_crash = !args.keep_going && args.spawn.is_none();
    config.max_findings = args.max_findings;
    config.families = families(args);
    if let Some(command) = &args.spawn {
        config.launcher = Launcher::Command(command.clone());
    }
    let progress = progress(err);
    let report = runtime()?.block_on(fuzz::run(&config, progress));
    render(&report, args, out, err)
}

fn merge(args: &MergeArgs, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    let mut reports = Vec::new();
    for path in &args.reports {
        let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
        let report: Report =
            serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
        reports.push(report);
    }
    let merged = Report::merge(&reports);
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&merged)?)?;
    } else {
        write!(out, "{}", merged.text())?;
    }
    Ok(if merged.findings.is_empty() {
        Outcome::Pass
    } else {
        Outcome::Fail
    })
}
