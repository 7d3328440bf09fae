//! `sv2-probe mock tp`: run a mock role on the network until interrupted.
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

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;
use serde_json::json;
use sv2_codec::noise::keys::{Keypair, SecretKey, Sv2Url};
use sv2_mock::tp::driver::{serve, TpServerConfig};

use crate::Outcome;

pub const LONG_ABOUT: &str = "\
Run a mock role on the network until interrupted (Ctrl-C).

tp: a Template Provider speaking Template Distribution over Noise (or plaintext). Point a pool at the \
printed URL. Every SubmitSolution is checked as a full block and its verdict printed. The listen \
address must be a loopback address unless --allow-remote is given.";

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub role: Role,
}

#[derive(Debug, clap::Subcommand)]
pub enum Role {
    /// A mock Template Provider.
    Tp(TpArgs),
}

#[derive(Debug, clap::Args)]
pub struct TpArgs {
    /// TOML configuration file (see `sv2-probe mock --help`).
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
    /// Print events as JSON lines.
    #[arg(long)]
    pub json: bool,
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
    }
}

fn run_tp(args: &TpArgs, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    let file: TpFile = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            toml::from_str(&text).with_context(|| format!("{}", path.display()))?
        }
        None => toml::from_str("").context("empty configuration")?,
    };
    let listen = args
        .listen
        .or(file.listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8442)));
    if !listen.ip().is_loopback() && !args.allow_remote {
        bail!("listen address {listen} is not loopback (pass --allow-remote to allow it)");
    }
    let authority = match &file.authority_secret {
        Some(text) => {
            Keypair::from_secret(SecretKey::from_base58(text.trim()).context("authority_secret")?)
        }
        None => Keypair::generate()?,
    };
    let mut config = TpServerConfig::new(authority.clone())?;
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

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("tokio runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let tp = serve(listener, config.clone())?;
        let url = Sv2Url {
            host: tp.addr.ip().to_string(),
            port: tp.addr.port(),
            authority_key: config.authority.as_ref().map(|a| a.public),
        };
        if args.json {
            writeln!(out, "{}", json!({"event": "listening", "url": url.to_string(), "authority_public_key": authority.public.to_base58(), "plaintext": config.authority.is_none()}))?;
        } else {
            writeln!(out, "mock TP listening: {url}")?;
            writeln!(out, "authority public key: {}", authority.public)?;
        }
        out.flush()?;
        let deadline = args.duration.map(|s| tokio::time::Instant::now() + Duration::from_secs_f64(s.max(0.0)));
        let mut printed = 0;
        loop {
            let tick = tokio::time::sleep(Duration::from_millis(200));
            tokio::select! {
                _ = tick => {}
                _ = tokio::signal::ctrl_c() => break,
            }
            let log = tp.log();
            for line in &log[printed..] {
                if args.json {
                    writeln!(out, "{}", json!({"event": "log", "text": line}))?;
                } else {
                    writeln!(out, "{line}")?;
                }
            }
            printed = log.len();
            out.flush()?;
            if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                break;
            }
        }
        let verdicts = tp.verdicts();
        let valid = verdicts.iter().filter(|v| v.valid).count();
        if args.json {
            writeln!(out, "{}", json!({"event": "stopped", "solutions": verdicts.len(), "valid": valid, "height": tp.height()}))?;
        } else {
            writeln!(out, "stopped: {} solution(s), {valid} valid; building height {}", verdicts.len(), tp.height())?;
        }
        tp.shutdown();
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(Outcome::Pass)
}
