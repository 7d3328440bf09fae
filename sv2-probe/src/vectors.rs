//! `sv2-probe vectors`: generate and verify the language-neutral test vectors (vectors/).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::outcome::Outcome;

pub const LONG_ABOUT: &str = "\
Language-neutral JSON test vectors (Wycheproof style): data types, every message, strictness rules, \
Noise handshakes, certificates, authority keys and encrypted framing. See vectors/README.md.

`generate` writes the files deterministically; `verify` re-checks every vector twice and exits 1 if any \
check fails: (1) re-derived through sv2-codec, which generated them (self-consistency, not independent); \
(2) independently, without sv2-codec: Noise handshakes, certificates, keys, URLs and encrypted framing \
recomputed from the spec with RustCrypto chacha20poly1305 and k256, frame headers against the spec's \
message table. The `indep` column counts each file's tests checked independently; the lines after the \
table (`independent`, `not_independent`, `confirmed_by_sri` in --json) say what, with what, and what is \
left to the SRI-based interop tests (interop/tests/vectors.rs, vectors_noise.rs). DIR defaults to \
vectors/data of the source tree found from the current directory.";

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
            "self_consistency": sv2_vectors::SELF_CONSISTENCY,
            "independent_checked": report.independent_checked(),
            "files": report.files,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
    } else {
        writeln!(
            out,
            "{:<36} {:>6} {:>6} {:>8} {:>10} {:>6} {:>7} {:>7}",
            "file", "tests", "valid", "invalid", "acceptable", "indep", "passed", "failed"
        )?;
        for f in &report.files {
            writeln!(
                out,
                "{:<36} {:>6} {:>6} {:>8} {:>10} {:>6} {:>7} {:>7}",
                f.file,
                f.tests,
                f.valid,
                f.invalid,
                f.acceptable,
                f.independent_checked,
                f.passed,
                f.tests - f.passed
            )?;
        }
        writeln!(
            out,
            "{:<36} {:>6} {:>33} {:>15}",
            "total",
            report.total(),
            report.independent_checked(),
            report.failed()
        )?;
        writeln!(out)?;
        writeln!(out, "every test: {}", sv2_vectors::SELF_CONSISTENCY)?;
        writeln!(
            out,
            "indep: tests also checked without sv2-codec (vectors/src/independent/); by file:"
        )?;
        // Files with the same coverage are listed together (the frame files).
        let mut blocks: Vec<(Vec<&str>, &sv2_vectors::FileReport)> = Vec::new();
        for f in &report.files {
            let same = |b: &&mut (Vec<&str>, &sv2_vectors::FileReport)| {
                b.1.independent == f.independent
                    && b.1.not_independent == f.not_independent
                    && b.1.confirmed_by_sri == f.confirmed_by_sri
            };
            match blocks.iter_mut().find(same) {
                Some(block) => block.0.push(&f.file),
                None => blocks.push((vec![&f.file], f)),
            }
        }
        for (files, f) in blocks {
            writeln!(out, "  {}", files.join(", "))?;
            for (label, texts) in [
                ("independent", &f.independent),
                ("not independent", &f.not_independent),
                ("SRI", &f.confirmed_by_sri),
            ] {
                for text in texts {
                    writeln!(out, "    {label}: {text}")?;
                }
            }
        }
        for f in &report.files {
            if let Some(e) = &f.error {
                writeln!(err, "{}: {e}", f.file)?;
            }
            for failure in &f.failures {
                writeln!(
                    err,
                    "{} tcId {} ({}) [{}]: {}",
                    f.file, failure.tc_id, failure.comment, failure.check, failure.reason
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
