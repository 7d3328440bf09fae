//! `sv2-probe proxy`: a man in the middle between SV2 clients and a server. Options, output and the
//! report; the relay is `sv2_scenario::relay`, the rules are the conformance monitor's.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::json;
use sv2_codec::noise::keys::{Keypair, SecretKey, Sv2Url};
use sv2_conformance::report;
use sv2_conformance::runner::{RelayJudge, Report};
use sv2_scenario::relay::{serve, Leg, PairRecord, RelayConfig};
use sv2_scenario::Scenario;
use sv2_wire::{KeyLog, Retention, Transcript};
use tokio::sync::mpsc;

use crate::outcome::Outcome;
use crate::pcap::{endpoint_strings, entry_text, entry_value};

pub const LONG_ABOUT: &str = "\
Stand between SV2 clients and a server: each client that connects to --listen gets its own \
connection to --upstream. Noise is terminated on both legs: towards clients with the proxy's own \
authority key (--authority-secret FILE, else a fresh one) and certificate, printed as the URL to give \
the client; towards the server with the URL's authority key checked (plaintext with \
--plaintext-upstream, or a URL without a key). Every frame is relayed, both directions, including \
frames that do not decode.

Output: every message of both legs as it happens, in the format of `sv2-probe pcap` (text, or with \
--json the same JSON objects plus \"leg\": \"downstream\" (client <-> proxy) or \"upstream\" (proxy <-> \
server)); \"connection\" numbers the client connections. The conformance monitor follows both legs \
live: the server rules over what the server sent (upstream leg), the client rules over what the \
client sent (downstream leg); what the proxy itself sent is never judged. A rule broken prints a \
VIOLATION line (JSON: {\"event\": \"violation\", \"connection\", \"leg\", \"rule\", \"by\", \"detail\"}). At the \
end (--duration, or Ctrl-C) the report by spec section (--junit FILE, --json-file FILE too). Exit \
code 1 when a MUST rule failed.

--scenario FILE (repeatable; TOML, see scenarios/README.md) breaks the conversation on purpose: drop, \
delay, duplicate, reorder, replace fields, inject, corrupt (flip a bit, truncate, lie in msg_length, \
wrong channel_msg bit, break the MAC), split or trickle writes, close, reset. Each application is \
printed as a note naming its rule.

--sv1 relays Stratum V1 instead (a translator's downstream side): JSON lines both ways over plain \
TCP, printed and recorded the same way (not judged: the rules are SV2's; scenarios do not apply); \
--upstream is then stratum+tcp://HOST:PORT.

--pcap FILE writes both legs of every connection (as each ends) as a pcapng, with the key log of \
both legs' Noise sessions beside it (FILE.keylog).";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where clients connect (loopback unless --allow-remote).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:34255")]
    pub listen: SocketAddr,
    /// The server: stratum2+tcp://HOST:PORT/AUTHORITY_KEY (or without a key, with --plaintext-upstream).
    #[arg(long, value_name = "URL")]
    pub upstream: String,
    /// The proxy's authority secret key (base58 file, as `keys generate` writes); else a fresh key.
    #[arg(long, value_name = "FILE")]
    pub authority_secret: Option<PathBuf>,
    /// No Noise towards clients.
    #[arg(long)]
    pub plaintext_downstream: bool,
    /// No Noise towards the server.
    #[arg(long)]
    pub plaintext_upstream: bool,
    /// A scenario file (repeatable; rules of all files, in order).
    #[arg(long, value_name = "FILE")]
    pub scenario: Vec<PathBuf>,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
    /// Write both legs of every connection to this pcapng (key log beside it as FILE.keylog).
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
    /// Also write the monitor's verdicts as JUnit XML here.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Also write the monitor's verdicts as JSON here.
    #[arg(long, value_name = "FILE")]
    pub json_file: Option<PathBuf>,
    /// Stop after this many seconds (default: run until interrupted).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// A connection whose two legs are both silent this long is closed.
    #[arg(long, value_name = "SECS", default_value_t = 300.0)]
    pub idle_timeout: f64,
    /// Allow a non-loopback listen address.
    #[arg(long)]
    pub allow_remote: bool,
    /// Relay Stratum V1 instead (a translator's downstream side): JSON lines both ways, plain TCP;
    /// --upstream is stratum+tcp://HOST:PORT or HOST:PORT. Scenarios are not applied to SV1.
    #[arg(long, conflicts_with = "scenario")]
    pub sv1: bool,
}

pub fn run(args: &Args, out: &mut dyn Write, _err: &mut dyn Write) -> anyhow::Result<Outcome> {
    if !args.listen.ip().is_loopback() && !args.allow_remote {
        bail!(
            "listen address {} is not loopback (pass --allow-remote to allow it)",
            args.listen
        );
    }
    let upstream_url: Sv2Url = if args.sv1 {
        let hostport = args
            .upstream
            .strip_prefix("stratum+tcp://")
            .unwrap_or(&args.upstream)
            .trim_end_matches('/');
        let (host, port) = hostport
            .rsplit_once(':')
            .with_context(|| format!("--upstream {}: expected HOST:PORT", args.upstream))?;
        Sv2Url {
            host: host.trim_matches(|c| c == '[' || c == ']').to_string(),
            port: port
                .parse()
                .with_context(|| format!("--upstream {}: not a port", args.upstream))?,
            authority_key: None,
        }
    } else {
        args.upstream.parse().context("--upstream")?
    };
    if upstream_url.authority_key.is_none() && !args.plaintext_upstream && !args.sv1 {
        bail!("--upstream has no authority key: give one, or pass --plaintext-upstream");
    }
    let mut scenarios = Vec::new();
    for path in &args.scenario {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--scenario {}", path.display()))?;
        scenarios.push(
            Scenario::from_toml(&text).with_context(|| format!("--scenario {}", path.display()))?,
        );
    }
    let scenario = Scenario::merge(scenarios);
    let authority = match &args.authority_secret {
        Some(path) => Keypair::from_secret(crate::keys::read_secret_file(path)?),
        None => Keypair::generate()?,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("tokio runtime")?;
    runtime.block_on(relay(args, upstream_url, scenario, authority, out))
}

async fn relay(
    args: &Args,
    upstream_url: Sv2Url,
    scenario: Scenario,
    authority: Keypair,
    out: &mut dyn Write,
) -> anyhow::Result<Outcome> {
    let upstream: SocketAddr = tokio::net::lookup_host(upstream_url.host_port())
        .await
        .with_context(|| format!("--upstream {}", upstream_url.host_port()))?
        .next()
        .with_context(|| format!("--upstream {}: no address", upstream_url.host_port()))?;
    let mut config = RelayConfig::new(upstream);
    config.sv1 = args.sv1;
    config.upstream_noise =
        (!args.plaintext_upstream && !args.sv1).then_some(upstream_url.authority_key);
    if !args.plaintext_downstream && !args.sv1 {
        // A certificate for a fresh static key, as the mock roles issue theirs.
        config.downstream_noise = Some(sv2_mock::served::responder(
            &SecretKey::generate()?,
            &authority,
            Duration::from_secs(24 * 3600),
        ));
    }
    let rules = scenario.rules.len();
    config.scenario = Arc::new(scenario);
    config.key_log = KeyLog::from_env();
    config.idle_timeout = Duration::try_from_secs_f64(args.idle_timeout.max(0.1))
        .map_err(|e| anyhow::anyhow!("--idle-timeout {}: {e}", args.idle_timeout))?;
    config.retention = Retention::DEFAULT;
    let recorder = match &args.pcap {
        Some(path) => {
            let (recorder, keys) = crate::capture::live(path)?;
            config.key_log = config.key_log.and(keys);
            Some(recorder)
        }
        None => None,
    };
    let (lines_tx, mut lines) = mpsc::unbounded_channel::<String>();
    let json_out = args.json;
    // The monitor follows each leg live: the server's frames on the upstream leg, the client's on
    // the downstream leg (what the proxy itself sends is not judged).
    let monitors: Monitors = Default::default();
    let live = monitors.clone();
    config.observer = Some(Arc::new(move |id, leg: Leg, t: &Transcript, entry| {
        let (client, server) = endpoint_strings(t);
        let mut value = entry_value(id, entry, &client, &server);
        value["leg"] = json!(leg.as_str());
        let line = if json_out {
            value.to_string()
        } else {
            format!("[{}] {}", leg.as_str(), entry_text(&value))
        };
        let _ = lines_tx.send(line);
        let judged = if leg == Leg::Upstream {
            sv2_wire::Side::Server
        } else {
            sv2_wire::Side::Client
        };
        let findings = {
            let mut monitors = live.lock().unwrap_or_else(|e| e.into_inner());
            let (monitor, index) = monitors
                .entry((id, leg))
                .or_insert_with(|| (sv2_conformance::monitor::Monitor::new(), 0));
            let found = monitor.observe(*index, entry);
            *index += 1;
            found
        };
        let by = if judged == sv2_wire::Side::Server {
            "server"
        } else {
            "client"
        };
        for f in findings.into_iter().filter(|f| f.by == judged) {
            let line = if json_out {
                json!({"event": "violation", "connection": id, "leg": leg.as_str(), "rule": f.rule, "by": by, "detail": f.detail})
                    .to_string()
            } else {
                format!(
                    "[{}] VIOLATION #{id} by the {by}: {}: {}",
                    leg.as_str(),
                    f.rule,
                    f.detail
                )
            };
            let _ = lines_tx.send(line);
        }
    }));
    let (ended_tx, mut ended) = mpsc::unbounded_channel::<PairRecord>();
    config.ended = Some(ended_tx);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let handle = serve(listener, config).context("relay")?;
    let url = Sv2Url {
        host: handle.addr.ip().to_string(),
        port: handle.addr.port(),
        authority_key: (!args.plaintext_downstream && !args.sv1).then_some(authority.public),
    };
    let url = if args.sv1 {
        format!("stratum+tcp://{}", url.host_port())
    } else {
        url.to_string()
    };
    if args.json {
        writeln!(
            out,
            "{}",
            json!({"event": "listening", "url": url, "upstream": args.upstream, "scenario_rules": rules, "sv1": args.sv1})
        )?;
    } else {
        writeln!(out, "proxy listening: {url} (give this URL to the client)")?;
        writeln!(out, "upstream: {}", args.upstream)?;
    }
    out.flush()?;

    let deadline = match args.duration {
        Some(s) => Some(
            Duration::try_from_secs_f64(s.max(0.0))
                .ok()
                .and_then(|d| tokio::time::Instant::now().checked_add(d))
                .ok_or_else(|| anyhow::anyhow!("--duration {s}: too long"))?,
        ),
        None => None,
    };
    // Each pair is judged when it ends and its transcripts let go.
    let mut judge = RelayJudge::default();
    let mut stopping: Option<tokio::time::Instant> = None;
    loop {
        let wake = stopping.or(deadline);
        tokio::select! {
            Some(line) = lines.recv() => {
                writeln!(out, "{line}")?;
            }
            Some(record) = ended.recv() => {
                ended_pair(&record, args.json, recorder.as_ref(), out)?;
                let mut live = monitors.lock().unwrap_or_else(|e| e.into_inner());
                live.remove(&(record.id, Leg::Downstream));
                live.remove(&(record.id, Leg::Upstream));
                drop(live);
                judge.add(&pair_label(&record), &record.downstream, &record.upstream);
            }
            _ = tokio::signal::ctrl_c(), if stopping.is_none() => {
                handle.shutdown();
                stopping = Some(tokio::time::Instant::now() + Duration::from_millis(700));
            }
            _ = tokio::time::sleep_until(wake.unwrap_or_else(tokio::time::Instant::now)), if wake.is_some() => {
                if stopping.is_some() {
                    break;
                }
                handle.shutdown();
                stopping = Some(tokio::time::Instant::now() + Duration::from_millis(700));
            }
        }
        out.flush()?;
    }
    while let Ok(line) = lines.try_recv() {
        writeln!(out, "{line}")?;
    }
    while let Ok(record) = ended.try_recv() {
        ended_pair(&record, args.json, recorder.as_ref(), out)?;
        judge.add(&pair_label(&record), &record.downstream, &record.upstream);
    }
    if let Some(recorder) = &recorder {
        let connections = recorder
            .finish()
            .with_context(|| format!("--pcap {}", recorder.path().display()))?;
        if !args.json {
            writeln!(
                out,
                "wrote {connections} leg(s) to {} (key log {})",
                recorder.path().display(),
                crate::capture::keylog_path(recorder.path()).display()
            )?;
        }
    }

    if args.sv1 {
        // The conformance rules are SV2's: an SV1 relay is shown and recorded, not judged.
        out.flush()?;
        return Ok(Outcome::Pass);
    }
    let report = Report {
        target: format!("proxy to {}", args.upstream),
        encrypted: !args.plaintext_upstream,
        certificate: None,
        results: judge.results(),
        duration: Duration::ZERO,
    };
    if args.json {
        writeln!(out, "{}", report::json(&report))?;
    } else {
        write!(out, "{}", report::text(&report, false))?;
    }
    if let Some(path) = &args.json_file {
        std::fs::write(path, report::json(&report).to_string())
            .with_context(|| format!("--json-file {}", path.display()))?;
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, report::junit(&report))
            .with_context(|| format!("--junit {}", path.display()))?;
    }
    out.flush()?;
    Ok(if report.must_failures() > 0 {
        Outcome::Fail
    } else {
        Outcome::Pass
    })
}

/// How a pair is named in the report.
fn pair_label(record: &PairRecord) -> String {
    let (client, _) = endpoint_strings(&record.downstream);
    format!("connection {} from {client}", record.id)
}

/// The live monitors, by connection and leg, with the index of the next entry.
type Monitors = Arc<
    std::sync::Mutex<
        std::collections::HashMap<(u64, Leg), (sv2_conformance::monitor::Monitor, usize)>,
    >,
>;

/// A client connection ended: what the scenario did, why it ended, and both legs into the capture.
fn ended_pair(
    record: &PairRecord,
    json: bool,
    recorder: Option<&sv2_wire::capture::write::SharedPcapng>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let fired: Vec<_> = record.fired.iter().filter(|(_, n)| *n > 0).collect();
    if json {
        writeln!(
            out,
            "{}",
            json!({"event": "connection-ended", "connection": record.id, "end": record.end,
                   "fired": fired.iter().map(|(r, n)| json!({"rule": r, "times": n})).collect::<Vec<_>>()})
        )?;
    } else {
        let fired: Vec<String> = fired.iter().map(|(r, n)| format!("{r:?} x{n}")).collect();
        writeln!(
            out,
            "# connection {} ended: {}{}",
            record.id,
            record.end,
            if fired.is_empty() {
                String::new()
            } else {
                format!("; scenario: {}", fired.join(", "))
            }
        )?;
    }
    if let Some(recorder) = recorder {
        for t in [&record.downstream, &record.upstream] {
            if !t.is_empty() {
                recorder
                    .add(t)
                    .with_context(|| format!("--pcap {}", recorder.path().display()))?;
            }
        }
    }
    Ok(())
}
