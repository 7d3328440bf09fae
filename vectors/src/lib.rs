//! `sv2-vectors`: language-neutral Stratum V2 test vectors, in the spirit of Wycheproof.
//!
//! - [`generate`] writes `vectors/data/*.json` deterministically (fixed keys, no clock, no
//!   randomness): running it twice gives identical bytes.
//! - [`verify`] re-checks every vector from its data, in two ways:
//!   - self-consistency through sv2-codec (the codec that generated them, and the generator's
//!     helpers): frames are decoded and compared with their JSON, re-encoded and compared with their
//!     bytes; invalid ones must fail with their error class; handshakes are re-run from their keys
//!     and every h, ck and act compared; certificates are checked at their `now`; encrypted frames
//!     are re-encrypted and decrypted. This proves reproducibility, not correctness;
//!   - independently (`independent`, no sv2-codec, no generator code): Noise handshakes,
//!     certificates, keys, URLs and encrypted framing recomputed from the spec with RustCrypto
//!     `chacha20poly1305` and `k256`; frame headers against the spec's message table. Each file's
//!     [`FileReport`] lists what was checked independently and what was not.
//!
//!   The SRI-based tests of `interop/` (`tests/vectors.rs`, `tests/vectors_noise.rs`) confirm the
//!   files with the reference implementation's crates; see vectors/README.md for who confirms what.
//!
//! The format is described in `vectors/README.md` and `vectors/schema/`.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

pub mod classes;
pub mod flags;
pub mod frames;
pub mod model;

mod gen_frames;
mod gen_keys;
mod gen_noise;
mod gen_transport;
mod gen_types;
mod independent;
mod verify;

pub use model::{Outcome, TestGroup, VectorFile};
pub use verify::{json_eq, verify_file, Failure, FileReport, Report, SELF_CONSISTENCY};

/// The vector files, in the order they are generated and reported.
pub const FILES: &[&str] = &[
    "types.json",
    "frames_common.json",
    "frames_mining.json",
    "frames_job_declaration.json",
    "frames_template_distribution.json",
    "frames_extensions.json",
    "strictness.json",
    "noise_handshake.json",
    "certificates.json",
    "authority_keys.json",
    "encrypted_framing.json",
];

/// `vectors/data` of this source tree (where the committed files live).
///
/// Under cargo (a test, `cargo run`, or a program they start), the tree is the one cargo runs
/// in: `CARGO_MANIFEST_DIR` at run time names the running crate, this one or a sibling in the
/// workspace. The path compiled in is used only without it: a library built once in a target
/// directory shared by two checkouts would otherwise read the other checkout's files.
pub fn default_data_dir() -> PathBuf {
    if let Some(crate_dir) = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from) {
        for dir in [crate_dir.join("data"), crate_dir.join("../vectors/data")] {
            if dir.join(FILES[0]).is_file() {
                return dir;
            }
        }
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data")
}

/// Why generation failed: a vector's expectation disagrees with the codec, or a write failed.
#[derive(Debug)]
pub struct GenerateError(pub String);

impl std::fmt::Display for GenerateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for GenerateError {}

/// Builds every vector file in memory: `(file name, file)`.
pub fn build_all() -> Result<Vec<(&'static str, VectorFile)>, GenerateError> {
    let mut out = Vec::new();
    out.push(("types.json", gen_types::build()?));
    for (name, file) in gen_frames::build_message_files()? {
        out.push((name, file));
    }
    out.push(("strictness.json", gen_frames::build_strictness()?));
    let (noise, sessions) = gen_noise::build_handshakes()?;
    out.push(("noise_handshake.json", noise));
    out.push(("certificates.json", gen_noise::build_certificates()?));
    out.push(("authority_keys.json", gen_keys::build()?));
    out.push(("encrypted_framing.json", gen_transport::build(&sessions)?));
    Ok(out)
}

/// The exact text of a file: pretty JSON, each test on one line, a final newline.
pub fn render(file: &VectorFile) -> Result<String, GenerateError> {
    let value = serde_json::to_value(file).map_err(|e| GenerateError(e.to_string()))?;
    let mut out = String::new();
    write_value(&mut out, &value, 0, false).map_err(|e| GenerateError(e.to_string()))?;
    out.push('\n');
    Ok(out)
}

/// Pretty printer: objects and arrays indented by two spaces, except the elements of a `tests` array,
/// which are written on one line each (one vector per line: small diffs, readable greps).
fn write_value(
    out: &mut String,
    value: &Value,
    indent: usize,
    compact_items: bool,
) -> std::fmt::Result {
    let pad = |n: usize| " ".repeat(n);
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push_str("{\n");
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(",\n");
                }
                write!(out, "{}{}: ", pad(indent + 2), Value::String(key.clone()))?;
                write_value(out, item, indent + 2, key == "tests")?;
            }
            write!(out, "\n{}}}", pad(indent))
        }
        // Lists of scalars (e.g. header lines) come out one per line too, for reading.
        Value::Array(items) if !items.is_empty() => {
            out.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(",\n");
                }
                out.push_str(&pad(indent + 2));
                if compact_items {
                    write!(out, "{item}")?;
                } else {
                    write_value(out, item, indent + 2, false)?;
                }
            }
            write!(out, "\n{}]", pad(indent))
        }
        other => write!(out, "{other}"),
    }
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, Serialize)]
pub struct Generated {
    pub file: String,
    pub tests: usize,
    pub bytes: usize,
}

/// Writes every vector file into `dir` (created if missing). Deterministic.
pub fn generate(dir: &Path) -> Result<Vec<Generated>, GenerateError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| GenerateError(format!("create {}: {e}", dir.display())))?;
    let mut written = Vec::new();
    for (name, file) in build_all()? {
        let text = render(&file)?;
        let path = dir.join(name);
        std::fs::write(&path, &text)
            .map_err(|e| GenerateError(format!("write {}: {e}", path.display())))?;
        written.push(Generated {
            file: name.to_string(),
            tests: file.number_of_tests,
            bytes: text.len(),
        });
    }
    Ok(written)
}

/// Verifies every file of [`FILES`] in `dir` (a missing file is a failure).
pub fn verify(dir: &Path) -> Report {
    let files = FILES
        .iter()
        .map(|name| {
            let path = dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(text) => verify_file(name, &text),
                Err(e) => FileReport::unreadable(name, format!("read {}: {e}", path.display())),
            }
        })
        .collect();
    Report { files }
}

/// Collects the groups of one file and numbers its tests.
pub(crate) struct FileBuilder {
    algorithm: String,
    schema: &'static str,
    header: Vec<String>,
    groups: Vec<TestGroup>,
    next_id: u32,
}

impl FileBuilder {
    pub(crate) fn new(algorithm: &str, schema: &'static str, header: &[&str]) -> Self {
        FileBuilder {
            algorithm: algorithm.to_string(),
            schema,
            header: header.iter().map(|s| s.to_string()).collect(),
            groups: Vec::new(),
            next_id: 1,
        }
    }

    pub(crate) fn id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    pub(crate) fn group(&mut self, group: TestGroup) {
        if !group.is_empty() {
            self.groups.push(group);
        }
    }

    pub(crate) fn finish(self) -> Result<VectorFile, GenerateError> {
        let mut notes = BTreeMap::new();
        let mut count = 0;
        for group in &self.groups {
            for (id, _, test_flags) in group.summaries() {
                count += 1;
                for flag in test_flags {
                    let (bug_type, description) = flags::lookup(flag).ok_or_else(|| {
                        GenerateError(format!(
                            "{}: tcId {id} uses undocumented flag {flag}",
                            self.algorithm
                        ))
                    })?;
                    notes.insert(
                        flag.clone(),
                        model::Note {
                            bug_type: bug_type.to_string(),
                            description: description.to_string(),
                        },
                    );
                }
            }
        }
        Ok(VectorFile {
            algorithm: self.algorithm,
            schema: self.schema.to_string(),
            number_of_tests: count,
            header: self.header,
            notes,
            test_groups: self.groups,
        })
    }
}

pub(crate) fn flags_of(flags: &[&str]) -> Vec<String> {
    flags.iter().map(|s| s.to_string()).collect()
}

pub(crate) fn gen_err(what: impl std::fmt::Display) -> GenerateError {
    GenerateError(what.to_string())
}
