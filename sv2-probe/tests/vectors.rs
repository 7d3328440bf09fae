//! `sv2-probe vectors`, run as the real binary.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn probe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sv2-probe"))
        .args(args)
        .output()
        .expect("run sv2-probe")
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sv2-probe-vectors-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn generate_then_verify_a_fresh_directory() {
    let dir = scratch_dir("fresh");
    let d = dir.to_str().unwrap();
    let gen = probe(&["vectors", "generate", d, "--json"]);
    assert!(
        gen.status.success(),
        "{}",
        String::from_utf8_lossy(&gen.stderr)
    );
    let value: Value = serde_json::from_slice(&gen.stdout).unwrap();
    assert!(value["tests"].as_u64().unwrap() >= 500);
    assert_eq!(
        value["files"].as_array().unwrap().len(),
        sv2_vectors::FILES.len()
    );

    // The same bytes as the committed files.
    for name in sv2_vectors::FILES {
        let fresh = std::fs::read(dir.join(name)).unwrap();
        let committed = std::fs::read(sv2_vectors::default_data_dir().join(name)).unwrap();
        assert!(fresh == committed, "{name} differs from the committed file");
    }

    let ver = probe(&["vectors", "verify", d]);
    assert!(
        ver.status.success(),
        "{}",
        String::from_utf8_lossy(&ver.stderr)
    );
    let text = String::from_utf8_lossy(&ver.stdout);
    assert!(
        text.contains("strictness.json") && text.contains("total"),
        "{text}"
    );

    // A broken vector: verify exits 1 and names it.
    let path = dir.join("types.json");
    let broken = std::fs::read_to_string(&path).unwrap().replacen(
        "\"encoded\":\"ff\"",
        "\"encoded\":\"fe\"",
        1,
    );
    std::fs::write(&path, broken).unwrap();
    let ver = probe(&["vectors", "verify", d, "--json"]);
    assert_eq!(ver.status.code(), Some(1));
    let value: Value = serde_json::from_slice(&ver.stdout).unwrap();
    assert_eq!(value["ok"], false);
    assert_eq!(value["failed"], 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn verify_defaults_to_the_repository_vectors() {
    let output = Command::new(env!("CARGO_BIN_EXE_sv2-probe"))
        .args(["vectors", "verify", "--json"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let value: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(value["ok"], true);
    assert!(value["dir"].as_str().unwrap().ends_with("vectors/data"));
}

#[test]
fn verify_of_a_missing_directory_is_a_usage_error() {
    let output = probe(&["vectors", "verify", "/nonexistent/sv2-vectors"]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn verify_finds_data_under_a_crate_directory_and_refuses_a_directory_without_vectors() {
    // The crate directory (vectors/): its data/ is verified, every file of it.
    let crate_dir = sv2_vectors::default_data_dir()
        .parent()
        .unwrap()
        .to_path_buf();
    let run = probe(&["vectors", "verify", crate_dir.to_str().unwrap(), "--json"]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let value: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert!(value["tests"].as_u64().unwrap() >= 500, "{value}");
    assert_eq!(
        value["dir"].as_str().unwrap(),
        crate_dir.join("data").display().to_string()
    );

    // A directory with no vector file, nor a data/ with one: an error (exit 2) naming both places.
    let empty = scratch_dir("empty");
    std::fs::create_dir_all(empty.join("data")).unwrap();
    let run = probe(&["vectors", "verify", empty.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(
        stderr.trim_end(),
        format!(
            "error: no vector file (types.json, ...) in {} nor in {}",
            empty.display(),
            empty.join("data").display()
        )
    );
    assert!(run.stdout.is_empty());
    let _ = std::fs::remove_dir_all(&empty);
}
