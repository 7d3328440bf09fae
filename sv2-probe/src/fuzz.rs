//! `sv2-probe fuzz`: network fuzzing of a live SV2 server (sv2_scenario::fuzz), and `fuzz merge`
//! for the reports of a campaign's shards.

use std::io::{IsTerminal, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use sv2_codec::noise::keys::Sv2Url;
use sv2_scenario::fuzz::{self, Config, Report, Shard, Target};

use crate::outcome::Outcome;

pub const LONG_ABOUT: &str = "\
Network fuzzing of a live SV2 server: `sv2-probe fuzz --target URL [--role pool|proxy|tp]`.

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

Loopback targets only unless --allow-remote. The campaign stops by itself: after --cases, after \
--seconds, at the first crash (unless --keep-going), and never opens more than \
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
    /// A Mining protocol server: a pool.
    Pool,
    /// A mining proxy's side that serves devices as a pool does (a translator's SV2 side is a
    /// client: not a target here).
    Proxy,
    /// A template provider (Template Distribution).
    Tp,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The server: stratum2+tcp://HOST:PORT[/AUTHORITY_KEY].
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,
    /// What the target is.
    #[arg(long, value_enum, default_value_t = Role::Pool)]
    pub role: Role,
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
    /// The server's process id: its exit is a crash, its memory growth a leak.
    #[arg(long)]
    pub pid: Option<u32>,
    /// With --pid: the growth of resident memory that is a leak, MiB.
    #[arg(long, value_name = "MIB", default_value_t = 256)]
    pub max_rss_growth: u64,
    /// How long to wait for each answer, milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 3000)]
    pub wait_ms: u64,
    /// At most this many new connections a second.
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

fn campaign(args: &RunArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<Outcome> {
    let target = args.target.as_ref().context("--target URL is required")?;
    let url: Sv2Url = target.parse().context("--target")?;
    if url.authority_key.is_none() && !args.plaintext {
        bail!("--target has no authority key: give one, or pass --plaintext");
    }
    let addr = resolve(&url)?;
    if !addr.ip().is_loopback() && !args.allow_remote {
        bail!("target {addr} is not loopback (pass --allow-remote to fuzz another machine)");
    }
    if args.jobs == 0 || args.jobs > 64 {
        bail!("--jobs is 1 to 64");
    }
    let mut config = Config::new(Target {
        addr,
        noise: (!args.plaintext).then_some(url.authority_key),
    });
    // A pool and a proxy's downstream side serve the same Mining protocol.
    config.role = match args.role {
        Role::Pool | Role::Proxy => fuzz::Role::Mining,
        Role::Tp => fuzz::Role::TemplateProvider,
    };
    config.seed = args.seed;
    config.cases = args.cases;
    config.first_case = args.from_case;
    config.duration = args
        .seconds
        .map(|s| {
            Duration::try_from_secs_f64(s)
                .map_err(|_| anyhow::anyhow!("--seconds {s}: a number of seconds, at least 0"))
        })
        .transpose()?;
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
    config.stop_on_crash = !args.keep_going;
    config.max_findings = args.max_findings;
    config.families = args
        .family
        .iter()
        .map(|f| match f {
            FamilyArg::Field => fuzz::mutate::Family::Field,
            FamilyArg::Frame => fuzz::mutate::Family::Frame,
            FamilyArg::Noise => fuzz::mutate::Family::Noise,
            FamilyArg::Time => fuzz::mutate::Family::Time,
        })
        .collect();
    let terminal = std::io::stderr().is_terminal();
    let progress: fuzz::campaign::Progress = Arc::new(move |r: &Report| {
        if terminal && r.cases.is_multiple_of(25) {
            eprint!("\r{} cases, {} finding(s)   ", r.cases, r.findings.len());
        }
    });
    let report = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("tokio runtime")?
        .block_on(fuzz::run(&config, progress));
    if terminal {
        writeln!(err)?;
    }
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        write!(out, "{}", report.text())?;
    }
    Ok(if report.findings.is_empty() {
        Outcome::Pass
    } else {
        Outcome::Fail
    })
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
