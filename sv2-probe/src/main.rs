//! `sv2-probe`: the command line of the SV2 test and fuzzing toolkit.
//!
//! Exit codes: 0 pass, 1 check failed (here: malformed input), 2 usage or setup error.
#![forbid(unsafe_code)]

use std::io::{self, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use outcome::Outcome;

mod capture;
mod conformance;
mod decode;
mod demo;
mod dissector;
mod encode;
mod fuzz;
mod hashrate;
mod input;
mod keys;
mod logging;
mod mine;
mod mock;
mod outcome;
mod pcap;
mod probe;
mod progress;
mod proxy;
mod render;
mod scenario;
mod vectors;

#[derive(Debug, Parser)]
#[command(
    name = "sv2-probe",
    version,
    about = "Stratum V2 test and fuzzing toolkit",
    after_help = "Exit codes: 0 pass, 1 check failed (e.g. malformed input), 2 usage or setup error."
)]
struct Cli {
    /// More log lines from the roles (debug; -vv: trace). RUST_LOG, when set, decides instead.
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only warnings in the log.
    #[arg(short = 'q', long = "quiet")]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

impl Cli {
    /// The log level: the command's default (`mock` shows its roles' log, unless it prints it as
    /// JSON on stdout; the others only warnings), `-v`/`-q` before or after the command.
    fn log_level(&self) -> tracing::Level {
        let mut verbosity = logging::Verbosity {
            verbose: self.verbose,
            quiet: self.quiet,
        };
        let default = match &self.command {
            Command::Mock(args) => {
                let role = args.role.args();
                verbosity.verbose = verbosity.verbose.max(role.verbose);
                verbosity.quiet |= role.quiet;
                if role.json {
                    tracing::Level::WARN
                } else {
                    tracing::Level::INFO
                }
            }
            _ => tracing::Level::WARN,
        };
        verbosity.level(default)
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the toolkit end to end on loopback: mock TP, mock pool, probe, a block validated.
    #[command(long_about = demo::LONG_ABOUT)]
    Demo(demo::Args),
    /// Decode SV2 frames given as hex into readable text or JSON.
    #[command(long_about = decode::LONG_ABOUT)]
    Decode(decode::Args),
    /// Print the Wireshark Lua dissector (SV2, Noise, SV1), generated from the codec's message table.
    #[command(long_about = dissector::LONG_ABOUT)]
    Dissector(dissector::Args),
    /// Encode SV2 messages given as JSON into frames in hex.
    #[command(long_about = encode::LONG_ABOUT)]
    Encode(encode::Args),
    /// Measure the mining engine's sha256d hash rate per backend against a naive baseline.
    #[command(long_about = hashrate::LONG_ABOUT)]
    Hashrate(hashrate::Args),
    /// Authority keys and certificates: generate, inspect, certify.
    #[command(long_about = keys::LONG_ABOUT)]
    Keys(keys::Args),
    /// Probe a live SV2 pool: handshake, certificate, setup, channel, job, coinbase, a share.
    #[command(long_about = probe::LONG_ABOUT)]
    Probe(probe::Args),
    /// Decode the SV1 and SV2 connections of packet captures, Noise decrypted with key logs.
    #[command(long_about = pcap::LONG_ABOUT)]
    Pcap(pcap::Args),
    /// Mine on an SV2 pool with the built-in engine, with live statistics.
    #[command(long_about = mine::LONG_ABOUT)]
    Mine(mine::Args),
    /// Run the conformance suite against a pool, device, translator or proxy: checks by spec
    /// section, JUnit and JSON reports.
    #[command(long_about = conformance::LONG_ABOUT)]
    Conformance(Box<conformance::Args>),
    /// Stand between SV2 clients and a server: both legs shown, judged, recorded, broken on purpose.
    #[command(long_about = proxy::LONG_ABOUT)]
    Proxy(proxy::Args),
    /// Network fuzzing of a live SV2 server; `fuzz merge` joins the reports of shards.
    #[command(long_about = fuzz::LONG_ABOUT)]
    Fuzz(fuzz::Args),
    /// Scenario files: play a scripted conversation (run), or check files (check).
    #[command(long_about = scenario::LONG_ABOUT)]
    Scenario(scenario::Args),
    /// Run a mock role (tp, pool) on the network until interrupted.
    #[command(long_about = mock::LONG_ABOUT)]
    Mock(mock::Args),
    /// Generate or verify the language-neutral test vectors (vectors/data).
    #[command(long_about = vectors::LONG_ABOUT)]
    Vectors(vectors::Args),
}

fn main() -> ExitCode {
    // Usage errors exit 2 (clap's default); --help and --version exit 0.
    let cli = Cli::parse();
    logging::init(cli.log_level());
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let mut err = io::stderr();
    let result = match &cli.command {
        Command::Demo(args) => demo::run(args, &mut out, &mut err),
        Command::Decode(args) => decode::run(args, &mut out, &mut err),
        Command::Dissector(args) => dissector::run(args, &mut out, &mut err),
        Command::Encode(args) => encode::run(args, &mut out, &mut err),
        Command::Hashrate(args) => hashrate::run(args, &mut out, &mut err),
        Command::Keys(args) => keys::run(args, &mut out, &mut err),
        Command::Probe(args) => probe::run(args, &mut out, &mut err),
        Command::Mock(args) => mock::run(args, &mut out, &mut err),
        Command::Proxy(args) => proxy::run(args, &mut out, &mut err),
        Command::Scenario(args) => scenario::run(args, &mut out, &mut err),
        Command::Fuzz(args) => fuzz::run(args, &mut out, &mut err),
        Command::Mine(args) => mine::run(args, &mut out, &mut err),
        Command::Pcap(args) => pcap::run(args, &mut out, &mut err),
        Command::Vectors(args) => vectors::run(args, &mut out, &mut err),
        Command::Conformance(args) => conformance::run_command(args, &mut out, &mut err),
    }
    .and_then(|outcome| {
        out.flush()?;
        Ok(outcome)
    });
    match result {
        Ok(Outcome::Pass) => ExitCode::SUCCESS,
        Ok(Outcome::Fail) => ExitCode::from(1),
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = out.flush();
            let _ = writeln!(err, "error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// The reader of stdout went away (e.g. `| head`): stop quietly, as other command-line tools do.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}
