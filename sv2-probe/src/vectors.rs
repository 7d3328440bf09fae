//! `sv2-probe vectors`: generate and verify the language-neutral test vectors (vectors/).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::outcome::Outcome;

pub const LONG_ABOUT: &str = "\
Language-neutral JSON test vectors (Wycheproof style): data types, every message, strictness rules, \
Noise handshakes, certificates, authority keys and encrypted framing. See vectors/README.md.

`generate` writes the files deterministically; `verify` re-checks every vector with sv2-codec and exits 1 \
if any fails. DIR defaults to vectors/data of the source tree found from the current directory.";

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: VectorsCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum VectorsCommand {
    /// Write every vector file into DIR (deterministic: the same bytes every run).
    Generate(DirArgs),
    /// Verify every vector file in DIR; exit 1 if a vector fails.
    Verify(DirArgs),
}

#[derive(Debug, clap::Args)]
pub struct DirArgs {
    /// The vector directory [default: vectors/data of the repository].
    pub dir: Option<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &Args, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<Outcome> {
    match &args.command {
        VectorsCommand::Generate(a) => generate(a, out),
        VectorsCommand::Verify(a) => verify(a, out, err),
    }
}

/// `vectors/data` found by walking up from the current directory, else the one this binary was built
/// from.
fn default_dir() -> anyhow::Result<PathBuf> {
    if let Ok(cwd) = std::env::current_dir() {
        for dir in cwd.ancestors() {
            let candidate = dir.join("vectors").join("data");
            if dir.join("vectors").join("Cargo.toml").is_file() {
                return Ok(candidate);
            }
        }
    }
    let built = sv2_vectors::default_data_dir();
    if built.parent().is_some_and(Path::is_dir) {
        return Ok(built);
    }
    bail!("no vectors/ directory found from the current directory; give DIR")
}

fn dir_of(args: &DirArgs) -> anyhow::Result<PathBuf> {
    match &args.dir {
        Some(d) => Ok(d.clone()),
        None => default_dir(),
    }
}

fn generate(args: &DirArgs, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    let dir = dir_of(args)?;
    let written =
        sv2_vectors::generate(&dir).with_context(|| format!("generate into {}", dir.display()))?;
    let total: usize = written.iter().map(|g| g.tests).sum();
    if args.json {
        let value =
            serde_json::json!({"dir": dir.display().to_string(), "files": written, "tests": total});
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
    } else {
        writeln!(out, "{:<36} {:>6} {:>10}", "file", "tests", "bytes")?;
        for g in &written {
            writeln!(out, "{:<36} {:>6} {:>10}", g.file, g.tests, g.bytes)?;
        }
        writeln!(out, "{:<36} {:>6}", "total", total)?;
        writeln!(out, "written to {}", dir.display())?;
    }
    Ok(Outcome::Pass)
}

/// Whether `dir` holds at least one of the vector files.
fn has_vectors(dir: &Path) -> bool {
    sv2_vectors::FILES
        .iter()
        .any(|name| dir.join(name).is_file())
}

/// The directory to verify: `dir`, or `dir/data` when `dir` is the crate directory (it holds no vector
/// file and its `data/` does). No vector file in either is an error naming where it looked: a
/// verification of nothing is not a pass.
fn vectors_dir(dir: PathBuf) -> anyhow::Result<PathBuf> {
    if !dir.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    if has_vectors(&dir) {
        return Ok(dir);
    }
    let data = dir.join("data");
    if has_vectors(&data) {
        return Ok(data);
    }
    bail!(
        "no vector file ({}, ...) in {} nor in {}",
        sv2_vectors::FILES[0],
        dir.display(),
        data.display()
    )
}

fn verify(args: &DirArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<Outcome> {
    let dir = vectors_dir(dir_of(args)?)?;
    let report = sv2_vectors::verify(&dir);
    if args.json {
        let value = serde_json::json!({
            "dir": dir.display().to_string(),
            "ok": report.ok(),
            "tests": report.total(),
            "failed": report.failed(),
            "files": report.files,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
    } else {
        writeln!(
            out,
            "{:<36} {:>6} {:>6} {:>8} {:>10} {:>7} {:>7}",
            "file", "tests", "valid", "invalid", "acceptable", "passed", "failed"
        )?;
        for f in &report.files {
            writeln!(
                out,
                "{:<36} {:>6} {:>6} {:>8} {:>10} {:>7} {:>7}",
                f.file,
                f.tests,
                f.valid,
                f.invalid,
                f.acceptable,
                f.passed,
                f.failures.len()
            )?;
        }
        writeln!(
            out,
            "{:<36} {:>6} {:>40}",
            "total",
            report.total(),
            report.failed()
        )?;
        for f in &report.files {
            if let Some(e) = &f.error {
                writeln!(err, "{}: {e}", f.file)?;
            }
            for failure in &f.failures {
                writeln!(
                    err,
                    "{} tcId {} ({}): {}",
                    f.file, failure.tc_id, failure.comment, failure.reason
                )?;
            }
        }
    }
    Ok(if report.ok() {
        Outcome::Pass
    } else {
        Outcome::Fail
    })
}
