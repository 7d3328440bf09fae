//! `sv2-probe keys`: authority keys and certificates (spec §4.5.2, §4.7).
//!
//! - `generate`: a new key pair; the secret goes to a file created with mode 0600, the public key to stdout.
//! - `inspect`: decode a base58check authority key (or the key of a `stratum2+tcp://` URL, 64 hex digits of
//!   an x-only key, or the public key of a secret key file) and print its x-only and base58check forms.
//! - `certify`: issue a SIGNATURE_NOISE_MESSAGE (certificate) for a server's static key, signed by an
//!   authority secret.
//!
//! Secret files hold one line: the secret in base58check without prefix (the reference implementation's
//! configuration format) or as 64 hex digits.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use serde_json::json;
use sv2_codec::noise::cert::{SignatureNoiseMessage, ValidityPolicy, CERTIFICATE_VERSION};
use sv2_codec::noise::keys::{AuthorityPublicKey, KeyError, Keypair, SecretKey, Sv2Url};

use crate::outcome::Outcome;

pub const LONG_ABOUT: &str = "\
Authority keys and certificates of the SV2 secure channel (spec §4.5.2, §4.7).

Public keys are written base58check([0x01, 0x00] || x-only key), as in `stratum2+tcp://host:port/<key>` \
URLs. Secret files hold one line: base58check(secret) with no prefix (the reference implementation's \
configuration format) or 64 hex digits.";

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: KeysCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Generate an authority (or server) key pair. The secret is written to a new file with mode 0600.
    Generate(GenerateArgs),
    /// Decode an authority public key (base58check, a stratum2+tcp:// URL, or x-only hex) and print its
    /// x-only hex and base58check forms.
    Inspect(InspectArgs),
    /// Issue a certificate (SIGNATURE_NOISE_MESSAGE) for a server static key.
    Certify(CertifyArgs),
}

#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// Where to write the secret key (created with mode 0600; refused if it exists, unless --force).
    #[arg(long, value_name = "FILE", default_value = "sv2-authority.secret")]
    pub secret_file: PathBuf,
    /// Overwrite an existing secret file.
    #[arg(long)]
    pub force: bool,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// A base58check authority public key, a stratum2+tcp://host:port/<key> URL, or 64 hex digits of an
    /// x-only key.
    #[arg(value_name = "KEY", required_unless_present = "secret_file")]
    pub key: Option<String>,
    /// Instead of KEY: show the public key of the secret in this file.
    #[arg(long, value_name = "FILE", conflicts_with = "key")]
    pub secret_file: Option<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct CertifyArgs {
    /// The authority's secret key file.
    #[arg(long, value_name = "FILE")]
    pub authority_secret_file: PathBuf,
    /// The server's static public key: base58check (as authority keys are written) or 64 hex digits of
    /// the x-only key.
    #[arg(
        long,
        value_name = "KEY",
        required_unless_present = "server_secret_file"
    )]
    pub server_key: Option<String>,
    /// Instead of --server-key: the server's secret key file.
    #[arg(long, value_name = "FILE", conflicts_with = "server_key")]
    pub server_secret_file: Option<PathBuf>,
    /// Start of validity, unix seconds [default: now].
    #[arg(long, value_name = "UNIX")]
    pub valid_from: Option<u32>,
    /// Length of validity in seconds (ignored with --not-valid-after).
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    pub valid_for: u32,
    /// End of validity (inclusive), unix seconds.
    #[arg(long, value_name = "UNIX")]
    pub not_valid_after: Option<u32>,
    /// Certificate format version (the spec defines none; the reference implementation uses 0).
    #[arg(long, default_value_t = CERTIFICATE_VERSION)]
    pub version: u16,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &Args, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<Outcome> {
    match &args.command {
        KeysCommand::Generate(args) => generate(args, out),
        KeysCommand::Inspect(args) => inspect(args, out, err),
        KeysCommand::Certify(args) => certify(args, out),
    }
}

fn generate(args: &GenerateArgs, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    let pair = Keypair::generate()?;
    write_secret_file(&args.secret_file, &pair.secret, args.force)?;
    let public = pair.public;
    if args.json {
        let value = json!({
            "public_key": public.to_base58(),
            "xonly_hex": hex::encode(public.xonly()),
            "secret_file": args.secret_file.display().to_string(),
        });
        writeln!(out, "{value}")?;
    } else {
        writeln!(out, "public key:  {}", public.to_base58())?;
        writeln!(out, "x-only hex:  {}", hex::encode(public.xonly()))?;
        writeln!(
            out,
            "secret:      written to {} (mode 0600)",
            args.secret_file.display()
        )?;
    }
    Ok(Outcome::Pass)
}

/// Writes the secret to a new file created with mode 0600 (refused if `path` exists).
///
/// With `force`, the secret goes to a new 0600 file beside `path` that is then renamed over it: an
/// existing file is replaced, never written into, so its old mode, a reader holding it open, or a
/// symbolic link at `path` never sees the new secret.
fn write_secret_file(path: &Path, secret: &SecretKey, force: bool) -> anyhow::Result<()> {
    if !force {
        return create_secret_file(path, secret).with_context(|| {
            if path.symlink_metadata().is_ok() {
                format!("{} exists; pass --force to replace it", path.display())
            } else {
                format!("cannot create {}", path.display())
            }
        });
    }
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file name", path.display()))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".{}.tmp", std::process::id()));
    let temp = path.with_file_name(temp_name);
    let result = create_secret_file(&temp, secret)
        .with_context(|| format!("cannot create {}", temp.display()))
        .and_then(|()| {
            fs::rename(&temp, path).with_context(|| format!("cannot replace {}", path.display()))
        });
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Creates `path` (which must not exist) with mode 0600 and writes the secret's line.
fn create_secret_file(path: &Path, secret: &SecretKey) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    writeln!(file, "{}", secret.to_base58())?;
    file.sync_all()
}

/// Reads a secret key file: base58check or 64 hex digits, surrounding whitespace ignored.
pub fn read_secret_file(path: &Path) -> anyhow::Result<SecretKey> {
    let text = fs::read_to_string(path)
        .with_context(|| format!("cannot read secret file {}", path.display()))?;
    let text = text.trim();
    let key = if is_hex32(text) {
        SecretKey::from_hex(text)
    } else {
        SecretKey::from_base58(text)
    };
    key.with_context(|| format!("secret file {}", path.display()))
}

/// 64 hex digits (an x-only key or a secret). No base58check key of ours is 64 characters long (they
/// are 51 or 52; secrets 50 or 51), and base58 has no `0`, so the two forms never overlap in practice.
fn is_hex32(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A public key given as base58check or as 64 hex digits of the x-only key.
fn parse_public_key(text: &str) -> Result<AuthorityPublicKey, KeyError> {
    let text = text.trim();
    if is_hex32(text) {
        AuthorityPublicKey::from_hex(text)
    } else {
        AuthorityPublicKey::from_base58(text)
    }
}

fn inspect(
    args: &InspectArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<Outcome> {
    let (key, url, source) = if let Some(path) = &args.secret_file {
        let pair = Keypair::from_secret(read_secret_file(path)?);
        (pair.public, None, "secret file")
    } else {
        let text = args.key.as_deref().unwrap_or_default().trim();
        let parsed = if text.contains("://") {
            text.parse::<Sv2Url>()
                .and_then(|url| match url.authority_key {
                    Some(key) => Ok((key, Some(url), "url")),
                    None => Err(KeyError::Url(format!("{text:?} carries no authority key"))),
                })
        } else if is_hex32(text) {
            AuthorityPublicKey::from_hex(text).map(|key| (key, None, "hex"))
        } else {
            AuthorityPublicKey::from_base58(text).map(|key| (key, None, "base58check"))
        };
        match parsed {
            Ok(found) => found,
            Err(e) => {
                if args.json {
                    writeln!(out, "{}", json!({"valid": false, "error": e.to_string()}))?;
                }
                let hint = if SecretKey::from_base58(text).is_ok() {
                    " (this looks like a secret key: keep it out of command lines, use --secret-file)"
                } else {
                    ""
                };
                writeln!(err, "error: {e}{hint}")?;
                return Ok(Outcome::Fail);
            }
        }
    };
    if args.json {
        let mut value = json!({
            "valid": true,
            "source": source,
            "public_key": key.to_base58(),
            "version": 1,
            "xonly_hex": hex::encode(key.xonly()),
        });
        if let Some(url) = url {
            value["host"] = json!(url.host);
            value["port"] = json!(url.port);
        }
        writeln!(out, "{value}")?;
    } else {
        if let Some(url) = url {
            writeln!(out, "host:        {}", url.host)?;
            writeln!(out, "port:        {}", url.port)?;
        }
        writeln!(out, "public key:  {}", key.to_base58())?;
        if source == "hex" || source == "secret file" {
            writeln!(
                out,
                "version:     1 (prefix 0100) when written as base58check"
            )?;
        } else {
            writeln!(out, "version:     1 (prefix 0100), checksum ok")?;
        }
        writeln!(out, "x-only hex:  {}", hex::encode(key.xonly()))?;
    }
    Ok(Outcome::Pass)
}

fn now_unix() -> anyhow::Result<u32> {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("system clock is before 1970")?
        .as_secs();
    u32::try_from(secs).context("system clock is past 2106 (U32 unix time)")
}

fn certify(args: &CertifyArgs, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    let authority = Keypair::from_secret(read_secret_file(&args.authority_secret_file)?);
    let server = match (&args.server_key, &args.server_secret_file) {
        (_, Some(path)) => Keypair::from_secret(read_secret_file(path)?).public,
        (Some(text), None) => parse_public_key(text).context("--server-key")?,
        (None, None) => bail!("give --server-key or --server-secret-file"),
    };
    let now = now_unix()?;
    let valid_from = args.valid_from.unwrap_or(now);
    let not_valid_after = match args.not_valid_after {
        Some(t) => t,
        None => valid_from
            .checked_add(args.valid_for)
            .context("valid_from + valid_for is past U32 unix time")?,
    };
    if not_valid_after < valid_from {
        bail!("not_valid_after {not_valid_after} is before valid_from {valid_from}");
    }
    let mut aux = [0u8; 32];
    getrandom::fill(&mut aux).map_err(|e| anyhow::anyhow!("random source failed: {e}"))?;
    let cert = SignatureNoiseMessage::issue(
        args.version,
        valid_from,
        not_valid_after,
        &server.xonly(),
        &authority,
        Some(aux),
    );
    // Check what was issued with the same code an initiator runs.
    cert.verify_signature(&server.xonly(), &authority.public)
        .context("the issued certificate does not verify")?;
    let valid_now = cert.check_validity(now, &ValidityPolicy::default()).is_ok();
    let hex = hex::encode(cert.to_bytes());
    if args.json {
        let value = json!({
            "signature_noise_message": hex,
            "version": cert.version,
            "valid_from": cert.valid_from,
            "not_valid_after": cert.not_valid_after,
            "signature": hex::encode(cert.signature),
            "server_xonly_hex": hex::encode(server.xonly()),
            "authority_public_key": authority.public.to_base58(),
            "valid_now": valid_now,
        });
        writeln!(out, "{value}")?;
    } else {
        writeln!(out, "signature_noise_message: {hex}")?;
        writeln!(out, "version:                 {}", cert.version)?;
        writeln!(out, "valid_from:              {}", cert.valid_from)?;
        writeln!(out, "not_valid_after:         {}", cert.not_valid_after)?;
        writeln!(
            out,
            "server x-only key:       {}",
            hex::encode(server.xonly())
        )?;
        writeln!(out, "authority public key:    {}", authority.public)?;
        writeln!(
            out,
            "valid now ({now}):  {}",
            if valid_now { "yes" } else { "no" }
        )?;
    }
    Ok(Outcome::Pass)
}
