//! `sv2-probe scenario`: scripted conversations (`run`) and checking scenario files (`check`).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::json;
use sv2_codec::noise::keys::{Keypair, SecretKey, Sv2Url};
use sv2_codec::noise::InitiatorConfig;
use sv2_scenario::launch::{Endpoint, LaunchedAlive, Launcher};
use sv2_scenario::script::{Alive, NoAlive, TargetAlive};
use sv2_scenario::{play_checked, Ended, Scenario, Script};
use sv2_wire::{Connection, KeyLog, Side, Transcript};

use crate::outcome::Outcome;
use crate::pcap::{endpoint_strings, entry_text, entry_value};

pub const LONG_ABOUT: &str = "\
Scenario files (see scenarios/README.md).

`run FILE --target URL` plays a scripted conversation as the client against a server; `run FILE \
--listen ADDR` waits for one client and plays it as the server (Noise with a fresh authority key, \
printed as the URL to give the client, or --plaintext). The file's [[step]]s send messages (the \
codec's JSON, or frames in hex, shaped on the wire, or raw bytes) and expect messages within a time, \
with field predicates, a close, silence, or a live peer (with --target: a fresh connection still \
served; with --listen and --spawn CMD or --pid: the client's process still running, not crashed); \
values saved from one message can be used in later steps. The findings of `sv2-probe fuzz` are such files. The whole conversation is printed (as `pcap` \
prints messages; --json for JSON lines) with the verdict. Exit code 1 when an expectation fails.

`check FILE...` reads rule files (for `proxy --scenario`, `mock --scenario`) and conversation files \
and says what each holds, or why it is refused.";

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, clap::Subcommand)]
pub enum Cmd {
    /// Play a scripted conversation, as the client (--target) or the server (--listen).
    Run(RunArgs),
    /// Read scenario files and say what they hold, or why they are refused.
    Check(CheckArgs),
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The conversation file.
    pub file: PathBuf,
    /// The server to play the client against: stratum2+tcp://HOST:PORT[/AUTHORITY_KEY].
    #[arg(
        long,
        value_name = "URL",
        conflicts_with = "listen",
        required_unless_present = "listen"
    )]
    pub target: Option<String>,
    /// Play the server: wait for one client here.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// No Noise.
    #[arg(long)]
    pub plaintext: bool,
    /// As the server: the authority secret (base58 file); else a fresh key.
    #[arg(long, value_name = "FILE")]
    pub authority_secret: Option<PathBuf>,
    /// As the server: how long to wait for the client.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub accept_timeout: f64,
    /// As the server: start the client with `sh -c CMD` once listening ({url}, {host}, {port},
    /// {authority_key} replaced), and stop it at the end; `expect_alive` asks whether it still
    /// runs (a crash, a signal or a Rust panic, fails it).
    #[arg(long, value_name = "CMD", requires = "listen")]
    pub spawn: Option<String>,
    /// As the server: the client's process id; `expect_alive` asks whether it still runs.
    #[arg(long, requires = "listen", conflicts_with = "spawn")]
    pub pid: Option<u32>,
    /// JSON lines.
    #[arg(long)]
    pub json: bool,
    /// Allow a non-loopback listen address.
    #[arg(long)]
    pub allow_remote: bool,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

pub fn run(args: &Args, out: &mut dyn Write, _err: &mut dyn Write) -> anyhow::Result<Outcome> {
    match &args.command {
        Cmd::Check(c) => check(c, out),
        Cmd::Run(r) => {
            let text = std::fs::read_to_string(&r.file)
                .with_context(|| format!("{}", r.file.display()))?;
            let script =
                Script::from_toml(&text).with_context(|| format!("{}", r.file.display()))?;
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("tokio runtime")?
                .block_on(run_script(r, &script, out))
        }
    }
}

fn check(args: &CheckArgs, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    let mut bad = 0;
    for path in &args.files {
        let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
        let result = if text.contains("[[step]]") {
            Script::from_toml(&text).map(|s| format!("a conversation of {} step(s)", s.steps.len()))
        } else {
            Scenario::from_toml(&text).map(|s| format!("{} rule(s)", s.rules.len()))
        };
        match result {
            Ok(what) => writeln!(out, "{}: ok, {what}", path.display())?,
            Err(e) => {
                bad += 1;
                writeln!(out, "{}: refused: {e}", path.display())?;
            }
        }
    }
    Ok(if bad > 0 {
        Outcome::Fail
    } else {
        Outcome::Pass
    })
}

async fn run_script(
    args: &RunArgs,
    script: &Script,
    out: &mut dyn Write,
) -> anyhow::Result<Outcome> {
    let timeout = Duration::from_secs(10);
    let mut alive: Box<dyn Alive> = Box::new(NoAlive);
    let mut spawned: Option<LaunchedAlive> = None;
    let mut conn = if let Some(target) = &args.target {
        let url: Sv2Url = target.parse().context("--target")?;
        if url.authority_key.is_none() && !args.plaintext {
            bail!("--target has no authority key: give one, or pass --plaintext");
        }
        let stream = tokio::net::TcpStream::connect(url.host_port())
            .await
            .with_context(|| format!("connect {}", url.host_port()))?;
        let _ = stream.set_nodelay(true);
        // `expect_alive` steps connect again, as this connection did.
        alive = Box::new(TargetAlive {
            addr: stream.peer_addr().context("the target's address")?,
            noise: match (args.plaintext, url.authority_key) {
                (false, Some(key)) => Some(Some(key)),
                _ => None,
            },
        });
        let mut conn = match (args.plaintext, url.authority_key) {
            (false, Some(key)) => Connection::initiate_now(
                stream,
                InitiatorConfig::new(key),
                timeout,
                &KeyLog::from_env(),
            )
            .await
            .map_err(|e| anyhow::anyhow!("handshake: {}", e.brief()))?,
            _ => Connection::plaintext(stream, Side::Client),
        };
        conn.record_endpoints();
        conn
    } else {
        let listen = args.listen.context("--listen or --target")?;
        if !listen.ip().is_loopback() && !args.allow_remote {
            bail!("listen address {listen} is not loopback (pass --allow-remote to allow it)");
        }
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        let authority = match &args.authority_secret {
            Some(path) => Keypair::from_secret(crate::keys::read_secret_file(path)?),
            None => Keypair::generate()?,
        };
        let url = Sv2Url {
            host: addr.ip().to_string(),
            port: addr.port(),
            authority_key: (!args.plaintext).then_some(authority.public),
        };
        if args.json {
            writeln!(
                out,
                "{}",
                json!({"event": "listening", "url": url.to_string()})
            )?;
        } else {
            writeln!(out, "waiting for a client: {url}")?;
        }
        out.flush()?;
        // `expect_alive` on this side: the client's process still runs.
        let process = LaunchedAlive {
            launched: Default::default(),
            pid: args.pid,
        };
        if let Some(command) = &args.spawn {
            let endpoint = Endpoint::new(addr, url.authority_key);
            let started = Launcher::Command(command.clone())
                .start(&endpoint)
                .await
                .map_err(|e| anyhow::anyhow!("--spawn: {e}"))?;
            *process.launched.lock().unwrap_or_else(|e| e.into_inner()) = started;
        }
        if args.spawn.is_some() || args.pid.is_some() {
            alive = Box::new(process.clone());
            spawned = Some(process);
        }
        let (stream, _) = tokio::time::timeout(
            Duration::from_secs_f64(args.accept_timeout.max(0.1)),
            listener.accept(),
        )
        .await
        .context("no client came")?
        .context("accept")?;
        let _ = stream.set_nodelay(true);
        let mut conn = if args.plaintext {
            Connection::plaintext(stream, Side::Server)
        } else {
            let responder = sv2_mock::served::responder(
                &SecretKey::generate()?,
                &authority,
                Duration::from_secs(24 * 3600),
            );
            Connection::respond(stream, responder, timeout, &KeyLog::from_env())
                .await
                .map_err(|e| anyhow::anyhow!("handshake: {}", e.brief()))?
        };
        conn.record_endpoints();
        conn
    };
    let mut ended = play_checked(&mut conn, script, alive.as_ref()).await;
    conn.close(Duration::from_millis(200)).await;
    if let Some(process) = spawned {
        let launched = process
            .launched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(mut launched) = launched {
            // A crash as its connection closed is the conversation's too (the fuzzer counts it).
            tokio::time::sleep(Duration::from_millis(100)).await;
            if let (Ended::Done, Some((true, how))) = (&ended, launched.exited()) {
                ended = Ended::Failed {
                    step: script.steps.len(),
                    expected: "the client still running after the conversation".into(),
                    observed: format!("it crashed: {how}"),
                };
            }
            let how = launched.stop().await;
            if !args.json {
                writeln!(out, "the client: {how}")?;
            }
        }
    }
    print_transcript(&conn.transcript, args.json, out)?;
    let ok = ended == Ended::Done;
    match &ended {
        Ended::Done => {
            if args.json {
                writeln!(
                    out,
                    "{}",
                    json!({"kind": "result", "ok": true, "steps": script.steps.len()})
                )?;
            } else {
                writeln!(
                    out,
                    "PASS: all {} step(s) of {:?}",
                    script.steps.len(),
                    script.name
                )?;
            }
        }
        Ended::Failed {
            step,
            expected,
            observed,
        } => {
            if args.json {
                writeln!(
                    out,
                    "{}",
                    json!({"kind": "result", "ok": false, "step": step, "expected": expected, "observed": observed})
                )?;
            } else {
                writeln!(
                    out,
                    "FAIL at step {step}: expected {expected}; observed {observed}"
                )?;
            }
        }
    }
    Ok(if ok { Outcome::Pass } else { Outcome::Fail })
}

fn print_transcript(t: &Transcript, json: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    let (client, server) = endpoint_strings(t);
    for entry in t.entries() {
        let value = entry_value(1, entry, &client, &server);
        if json {
            writeln!(out, "{value}")?;
        } else {
            writeln!(out, "{}", entry_text(&value))?;
        }
    }
    Ok(())
}
