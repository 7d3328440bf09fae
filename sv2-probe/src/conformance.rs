//! `sv2-probe conformance --role pool --target ADDR`: the conformance suite against a Mining-protocol
//! server (sv2-conformance), with a readable report grouped by spec section, JSON and JUnit.

use std::collections::HashSet;
use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use anyhow::{bail, Context};
use sv2_codec::noise::keys::{AuthorityPublicKey, Keypair, SecretKey, Sv2Url};
use sv2_conformance::runner::monitor_transcript;
use sv2_conformance::serve::launch::Launcher;
use sv2_conformance::serve::{runner as serve_runner, Listener};
use sv2_conformance::Role;
use sv2_conformance::{
    checks, expected, report, run_observed, Progress, Report, Security, Selection, Target,
};

use crate::progress::Status;
use sv2_wire::keylog::MemorySink;
use sv2_wire::{Side, Transcript};

use crate::outcome::Outcome;

pub const LONG_ABOUT: &str = "\
Run the conformance suite against a Stratum V2 Mining-protocol server (a pool, or a proxy acting as \
upstream). Every check names its spec section and requirement level (MUST, SHOULD, MAY); each active \
check runs on fresh connections, and the passive monitor judges every frame the server sends on all \
of them. Verdicts: pass, fail, skip (not applicable, with the reason), error (could not run).

The target is host:port, or a stratum2+tcp://host:port/<authority key> URL. Without an authority key \
the certificate check is skipped; --plaintext talks to a server without Noise.

Exit code 1 on any MUST failure (or, with --expect, on any difference from the expected verdicts); 2 \
when nothing could be checked.";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The role of the implementation under test: `pool` (the suite connects to --target) or
    /// `device` (a mining client: the suite listens on --listen, plays the pool, and the client
    /// connects: started per check with --spawn, or running by itself and reconnecting).
    /// `translator` (SV1 below, SV2 above: the suite is its pool and its SV1 miners, which
    /// connect to 127.0.0.1:{downstream_port}; every device check runs too). `proxy` (SV2 on
    /// both sides: the suite is its pool and its devices, which connect to
    /// 127.0.0.1:{downstream_port}; every device check runs too, and the pool rules of the monitor
    /// judge its downstream side).
    #[arg(long, default_value = "pool", value_parser = ["pool", "device", "translator", "proxy"])]
    pub role: String,
    /// host:port or stratum2+tcp://host:port/<authority key> (role pool).
    #[arg(long, value_name = "ADDR")]
    pub target: Option<String>,
    /// Where the suite listens for the client under test (roles other than pool).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub listen: String,
    /// Start the client under test for each check with this shell command, and stop it after:
    /// `{url}` (stratum2+tcp://host:port/<authority key>), `{host}`, `{port}` and `{authority_key}`
    /// are replaced. Without it, the suite waits for a client that connects (and reconnects) by
    /// itself: point it at the URL printed at the start.
    #[arg(long, value_name = "CMD")]
    pub spawn: Option<String>,
    /// The secret key (base58check) of the authority that signs the suite's certificates, for a
    /// client configured with its public key beforehand (default: a fresh one, printed).
    #[arg(long, value_name = "KEY")]
    pub authority_secret: Option<String>,
    /// `--role translator` and `proxy`: the loopback port where it listens for its miners
    /// (default: a free one, given to --spawn as `{downstream_port}`).
    #[arg(long, value_name = "PORT")]
    pub downstream_port: Option<u16>,
    /// `--role proxy`: the authority public key (base58) the proxy's own certificate must be
    /// signed by (default: the suite's devices do not check it).
    #[arg(long, value_name = "KEY")]
    pub downstream_authority: Option<String>,
    /// `--role proxy`: the proxy speaks plain frames to its devices.
    #[arg(long)]
    pub downstream_plaintext: bool,
    /// Seconds the client has to connect (a started client needs time to come up).
    #[arg(long, default_value_t = 20.0)]
    pub connect_timeout: f64,
    /// The authority public key (base58) the server's certificate must be signed by.
    #[arg(long, value_name = "KEY")]
    pub authority_key: Option<String>,
    /// The target speaks plain frames (no Noise).
    #[arg(long)]
    pub plaintext: bool,
    /// Run only these checks: ids, groups (`setup`, `monitor`) or prefixes ending in `*`.
    #[arg(long, value_name = "ID", num_args = 1.., value_delimiter = ',')]
    pub only: Vec<String>,
    /// Write a JUnit XML report here.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<std::path::PathBuf>,
    /// Print the report as JSON (with every transcript) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON report here (the text report still goes to stdout).
    #[arg(long, value_name = "FILE")]
    pub json_file: Option<std::path::PathBuf>,
    /// Save every connection of the run (each check's evidence, one TCP connection each) as a pcapng
    /// capture at FILE, with the key log of its Noise sessions beside it as FILE.keylog: a failure
    /// opens in Wireshark, decrypted. With --transcript, the transcripts read (no keys).
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<std::path::PathBuf>,
    /// Compare the verdicts with a reviewed expected-verdicts file (`<id> <verdict>` per line).
    #[arg(long, value_name = "FILE")]
    pub expect: Option<std::path::PathBuf>,
    /// Write the verdicts in the expected-verdicts format here (to start a reviewed file).
    #[arg(long, value_name = "FILE")]
    pub write_expected: Option<std::path::PathBuf>,
    /// Seconds any single answer may take.
    #[arg(long, default_value_t = 5.0)]
    pub timeout: f64,
    /// Seconds checks wait for the server to move on (new jobs, new blocks).
    #[arg(long, default_value_t = 10.0)]
    pub work_window: f64,
    /// user_identity of the channels the checks open. A pool that refuses it (OpenMiningChannel.Error
    /// naming the user) makes every check that needed a channel an error saying so, not a failure.
    #[arg(long, default_value = "sv2-conformance")]
    pub user: String,
    /// nominal_hash_rate of the channels the checks open, in H/s (low: easy targets, quick shares).
    #[arg(long, default_value_t = 1000.0)]
    pub hashrate: f32,
    /// Print what passing checks observed too.
    #[arg(long, short)]
    pub verbose: bool,
    /// List the checks (id, section, level, title) and exit.
    #[arg(long)]
    pub list: bool,
    /// Passive mode: judge a recorded transcript with the monitor rules instead of connecting. The
    /// file is a transcript (as in the JSON report's evidence: an object with endpoints and entries,
    /// or the legacy bare array of events) or a whole JSON report (every transcript in it is judged).
    #[arg(long, value_name = "FILE", conflicts_with = "target")]
    pub transcript: Option<std::path::PathBuf>,
    /// For transcripts in the legacy form (a bare array of events with directions `sent` and
    /// `received`): the direction of the server's frames, `received` when it was recorded by a client
    /// (as this tool recorded), `sent` when recorded by the server. The current form names directions
    /// by role (client-to-server, server-to-client) and needs no help.
    #[arg(long, default_value = "received", value_parser = ["received", "sent"])]
    pub server_direction: String,
}

/// A transcript in the current form, or in the legacy form (a bare array) recorded at `recorder`.
fn read_transcript(value: &serde_json::Value, recorder: Side) -> anyhow::Result<Transcript> {
    let read = if value.is_array() {
        Transcript::from_legacy_json(value, recorder)
    } else {
        Transcript::from_json(value)
    };
    read.map_err(anyhow::Error::msg)
}

/// Every transcript in a file: a bare transcript, or each piece of evidence of a JSON report.
fn transcripts(
    value: &serde_json::Value,
    recorder: Side,
) -> anyhow::Result<Vec<(String, Transcript)>> {
    if value.is_array() || value.get("entries").is_some() {
        return Ok(vec![(
            "transcript".into(),
            read_transcript(value, recorder)?,
        )]);
    }
    let mut out = Vec::new();
    for result in value
        .get("results")
        .and_then(|r| r.as_array())
        .context("neither a transcript (array) nor a report (object with results)")?
    {
        let check = result.get("id").and_then(|v| v.as_str()).unwrap_or("?");
        for evidence in result
            .get("evidence")
            .and_then(|e| e.as_array())
            .into_iter()
            .flatten()
        {
            let label = evidence
                .get("connection")
                .and_then(|v| v.as_str())
                .unwrap_or("?");
            // Byte-level exchanges read the server's bytes in a mode it may not speak: their check
            // judged them, the monitor does not.
            if evidence.get("raw").and_then(|v| v.as_bool()) == Some(true) {
                continue;
            }
            if let Some(t) = evidence.get("transcript") {
                out.push((format!("{check}: {label}"), read_transcript(t, recorder)?));
            }
        }
    }
    Ok(out)
}

fn passive(args: &Args, path: &std::path::Path, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--transcript {}", path.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("--transcript {}: JSON", path.display()))?;
    // Only the legacy form (a bare array) needs this: the current form names directions by role.
    let recorder = if args.server_direction == "sent" {
        Side::Server
    } else {
        Side::Client
    };
    let mut failed = false;
    let all = transcripts(&value, recorder)?;
    if let Some(pcap) = &args.pcap {
        crate::capture::save(pcap, all.iter().map(|(_, t)| t), &[])?;
    }
    for (label, transcript) in all {
        let results = monitor_transcript(&transcript);
        let report = Report {
            target: format!("{} ({label})", path.display()),
            encrypted: true,
            certificate: None,
            results,
            duration: Duration::ZERO,
        };
        failed |= report.must_failures() > 0;
        if args.json {
            writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&report::json(&report))?
            )?;
        } else {
            writeln!(out, "{}", report::text(&report, args.verbose))?;
        }
    }
    Ok(if failed { Outcome::Fail } else { Outcome::Pass })
}

/// Every connection of a run once: each check's evidence (a monitor rule's evidence repeats
/// connections an active check made).
fn connections(report: &Report) -> impl Iterator<Item = &Transcript> {
    let mut seen = HashSet::new();
    report
        .results
        .iter()
        .flat_map(|r| r.evidence.iter())
        .map(|e| &e.transcript)
        .filter(move |t| {
            let first = t.entries().front().map(|e| e.at);
            seen.insert((t.endpoints.client, t.endpoints.server, first, t.len()))
        })
}

fn target(args: &Args) -> anyhow::Result<Target> {
    if args.spawn.is_some() {
        bail!("--spawn starts a client: it is for client roles (--role device)");
    }
    let text = args
        .target
        .as_deref()
        .context("--target is required for --role pool")?;
    let (host_port, url_key) = if text.contains("://") {
        let url: Sv2Url = text.parse().context("--target URL")?;
        (url.host_port(), url.authority_key)
    } else {
        (text.to_string(), None)
    };
    let address: SocketAddr = host_port
        .to_socket_addrs()
        .with_context(|| format!("--target {host_port}"))?
        .next()
        .with_context(|| format!("--target {host_port}: no address"))?;
    let key = match &args.authority_key {
        Some(k) => Some(
            AuthorityPublicKey::from_base58(k)
                .map_err(|e| anyhow::anyhow!("--authority-key: {e}"))?,
        ),
        None => url_key,
    };
    if args.plaintext && key.is_some() {
        bail!("--plaintext and an authority key exclude each other");
    }
    let security = if args.plaintext {
        Security::Plaintext
    } else {
        Security::Noise { authority: key }
    };
    let mut target = Target::new(address, security);
    target.key_log = sv2_wire::KeyLog::from_env();
    target.timeout = Duration::from_secs_f64(args.timeout.clamp(0.1, 600.0));
    target.work_window = Duration::from_secs_f64(args.work_window.clamp(0.1, 3600.0));
    target.nominal_hash_rate = args.hashrate;
    target.user_identity = args.user.clone();
    Ok(target)
}

/// The checks of the role asked for.
fn catalogue(args: &Args) -> Vec<sv2_conformance::Check> {
    match args.role.as_str() {
        "device" => serve_runner::catalogue(Role::Device),
        "translator" => serve_runner::catalogue(Role::Translator),
        "proxy" => serve_runner::catalogue(Role::Proxy),
        _ => checks::catalogue(),
    }
}

/// The listening side of a client role's run.
fn listener(args: &Args) -> anyhow::Result<Listener> {
    if args.target.is_some() {
        bail!("--target is for --role pool; a client connects to the suite (--listen, --spawn)");
    }
    let listen: SocketAddr = args
        .listen
        .to_socket_addrs()
        .with_context(|| format!("--listen {}", args.listen))?
        .next()
        .with_context(|| format!("--listen {}: no address", args.listen))?;
    let launcher = match &args.spawn {
        Some(command) => Launcher::Command(command.clone()),
        None => Launcher::External,
    };
    let mut listener = Listener::new(launcher)?;
    listener.listen = listen;
    if let Some(secret) = &args.authority_secret {
        listener.authority = Keypair::from_secret(
            SecretKey::from_base58(secret.trim()).context("--authority-secret")?,
        );
    }
    listener.plaintext = args.plaintext;
    listener.key_log = sv2_wire::KeyLog::from_env();
    listener.timeout = Duration::from_secs_f64(args.timeout.clamp(0.1, 600.0));
    listener.work_window = Duration::from_secs_f64(args.work_window.clamp(0.1, 3600.0));
    listener.connect_timeout = Duration::from_secs_f64(args.connect_timeout.clamp(0.1, 3600.0));
    listener.downstream_port = args.downstream_port;
    listener.downstream_authority = args
        .downstream_authority
        .as_deref()
        .map(|k| sv2_codec::noise::keys::AuthorityPublicKey::from_base58(k.trim()))
        .transpose()
        .context("--downstream-authority")?;
    listener.downstream_plaintext = args.downstream_plaintext;
    if args.role != "proxy"
        && (listener.downstream_authority.is_some() || listener.downstream_plaintext)
    {
        bail!("--downstream-authority and --downstream-plaintext are for --role proxy");
    }
    Ok(listener)
}

pub fn run_command(
    args: &Args,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<Outcome> {
    let catalogue = catalogue(args);
    let selection = Selection {
        only: args.only.clone(),
    };
    if args.list {
        let chosen: Vec<_> = catalogue
            .iter()
            .filter(|c| selection.includes(c))
            .copied()
            .collect();
        if args.json {
            writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&report::catalogue_json(&chosen))?
            )?;
        } else {
            for c in &chosen {
                writeln!(
                    out,
                    "{:<44} {:<12} {:<6} {:<7} {}",
                    c.id,
                    report::section_label(c.section),
                    c.level.as_str(),
                    if c.is_monitor() { "monitor" } else { "active" },
                    c.title
                )?;
            }
            writeln!(out, "{} checks", chosen.len())?;
        }
        return Ok(Outcome::Pass);
    }
    if let Some(path) = &args.transcript {
        return passive(args, path, out);
    }
    if let Some(unknown) = args.only.iter().find(|p| {
        !catalogue.iter().any(|c| {
            Selection {
                only: vec![(*p).clone()],
            }
            .includes(c)
        })
    }) {
        bail!("--only {unknown}: no such check or group (see --list)");
    }
    let expectations = match &args.expect {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("--expect {}", path.display()))?;
            Some(
                expected::parse(&text)
                    .map_err(|e| anyhow::anyhow!("--expect {}: {e}", path.display()))?,
            )
        }
        None => None,
    };
    // The run's key-log lines, for the key log beside --pcap.
    let keys = MemorySink::default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let quiet = args.json;
    // On a terminal, a bar on stderr: checks done/total and the one running.
    let status = if quiet {
        Status::none()
    } else {
        Status::bar(0)
    };
    let serving = if args.role == "pool" {
        None
    } else {
        let mut listener = listener(args)?;
        if args.pcap.is_some() {
            listener.key_log = listener.key_log.and(keys.clone());
        }
        let socket = runtime
            .block_on(tokio::net::TcpListener::bind(listener.listen))
            .with_context(|| format!("--listen {}", args.listen))?;
        listener.listen = socket.local_addr()?;
        let mut endpoint = sv2_conformance::serve::Endpoint::new(
            listener.listen,
            (!listener.plaintext).then(|| listener.authority_key()),
        );
        let mut sv1 = String::new();
        if args.role == "translator" || args.role == "proxy" {
            if listener.downstream_port.is_none() {
                let free = std::net::TcpListener::bind(("127.0.0.1", 0))?;
                listener.downstream_port = Some(free.local_addr()?.port());
            }
            endpoint.downstream_port = listener.downstream_port;
            if let Some(port) = listener.downstream_port {
                let miners = if args.role == "proxy" {
                    "devices"
                } else {
                    "SV1 miners"
                };
                sv1 = format!(" (its {miners} connect to 127.0.0.1:{port})");
            }
        }
        let how = match &args.spawn {
            Some(command) => format!("starting for each check: {}", endpoint.expand(command)),
            None => "point the client at this URL: it must reconnect after each check".to_string(),
        };
        if quiet {
            writeln!(err, "listening on {}{sv1}", endpoint.url)?;
        } else {
            writeln!(err, "listening on {}{sv1}; {how}", endpoint.url)?;
        }
        Some((socket, listener))
    };
    let progress = |event: Progress<'_>| match event {
        Progress::Started { id, index, total } => {
            status.set_length(total as u64);
            status.set_position(index as u64);
            status.set_message(id.to_owned());
        }
        Progress::Finished(r) => {
            if !quiet {
                let _ = status.write(&mut *err, |err| {
                    writeln!(err, "{:<5} {}", r.outcome.verdict.as_str(), r.check.id)
                });
            }
        }
    };
    let report = if args.role == "pool" {
        let mut target = target(args)?;
        if args.pcap.is_some() {
            target.key_log = target.key_log.and(keys.clone());
        }
        runtime.block_on(run_observed(target, &selection, progress))
    } else {
        let (socket, listener) = serving.context("a client role's listener")?;
        runtime
            .block_on(serve_runner::run_on(
                socket,
                listener,
                match args.role.as_str() {
                    "translator" => Role::Translator,
                    "proxy" => Role::Proxy,
                    _ => Role::Device,
                },
                &selection,
                progress,
            ))
            .with_context(|| format!("--listen {}", args.listen))?
    };
    status.finish();
    let json = report::json(&report);
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&json)?)?;
    } else {
        write!(out, "{}", report::text(&report, args.verbose))?;
    }
    if let Some(path) = &args.json_file {
        std::fs::write(path, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("--json-file {}", path.display()))?;
    }
    if let Some(path) = &args.pcap {
        crate::capture::save(path, connections(&report), &keys.entries())?;
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, report::junit(&report))
            .with_context(|| format!("--junit {}", path.display()))?;
    }
    if let Some(path) = &args.write_expected {
        std::fs::write(path, expected::render(&report))
            .with_context(|| format!("--write-expected {}", path.display()))?;
    }
    if let Some(expectations) = expectations {
        let differences = expected::compare(&report, &expectations, args.only.is_empty());
        if differences.is_empty() {
            if !args.json {
                writeln!(
                    out,
                    "verdicts as expected ({} checks)",
                    report.results.len()
                )?;
            }
            return Ok(Outcome::Pass);
        }
        for d in &differences {
            writeln!(err, "differs from the expected verdicts: {d}")?;
        }
        return Ok(Outcome::Fail);
    }
    match report.exit_code() {
        0 => Ok(Outcome::Pass),
        1 => Ok(Outcome::Fail),
        _ => {
            let first = report
                .results
                .iter()
                .find(|r| r.outcome.verdict == sv2_conformance::Verdict::Error)
                .map(|r| r.outcome.observed.clone())
                .unwrap_or_default();
            let hint = if first.contains("handshake") && !args.plaintext {
                " (does the target speak plain frames? try --plaintext)"
            } else if first.contains("SetupConnection") {
                " (the target refused a plain Mining SetupConnection)"
            } else {
                ""
            };
            bail!(
                "nothing could be checked: {}; first error: {first}{hint}",
                report::summary(&report)
            )
        }
    }
}
