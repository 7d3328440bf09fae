//! `sv2-probe hashrate`, run as the real binary for a fraction of a second: the shape of its JSON
//! and of its table. Speeds are not asserted (tests never assert timings), only that each backend
//! hashed at all.

use std::process::Command;

use serde_json::Value;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn probe(args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_sv2-probe"))
        .args(args)
        .output()
        .expect("run sv2-probe");
    Run {
        code: output.status.code().expect("exit code"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

fn positive(v: &Value) -> bool {
    v.as_f64().is_some_and(|x| x > 0.0)
}

#[test]
fn json_has_every_supported_backend_the_baseline_and_the_ratio() {
    let run = probe(&["hashrate", "--seconds", "0.2", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.lines().count(), 1, "one JSON document");
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["threads"], 1);
    assert_eq!(doc["seconds"], 0.2);
    assert_eq!(doc["version_rolling"], true);
    assert_eq!(doc["baseline"]["name"], "naive-sha2");
    assert!(positive(&doc["baseline"]["mhs"]), "{doc}");

    let backends = doc["backends"].as_array().unwrap();
    let names: Vec<&str> = backends
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    // The scalar backend runs everywhere; the others depend on the CPU.
    assert!(names.contains(&"scalar"), "{names:?}");
    let known = [
        "scalar",
        "avx2",
        "avx512",
        "sha-ni-x1",
        "sha-ni-x2",
        "sha-ni-x3",
        "sha-ni-x4",
    ];
    for b in backends {
        let name = b["name"].as_str().unwrap();
        assert!(known.contains(&name), "{name}");
        assert!(positive(&b["mhs"]), "{name} hashed: {b}");
        assert!(positive(&b["ratio"]), "{name}: {b}");
        assert!(b["lanes"].as_u64().unwrap() >= 1);
        let keys: Vec<&String> = b.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["name", "lanes", "mhs", "ratio"]);
    }
    assert!(names.contains(&doc["best"]["name"].as_str().unwrap()));
    assert!(names.contains(&doc["default_backend"].as_str().unwrap()));
    assert!(positive(&doc["ratio"]));
    let best = backends
        .iter()
        .find(|b| b["name"] == doc["best"]["name"])
        .unwrap();
    assert_eq!(best["mhs"], doc["best"]["mhs"]);
    assert_eq!(best["ratio"], doc["ratio"]);
}

#[test]
fn one_backend_on_two_threads_as_a_table() {
    let run = probe(&[
        "hashrate",
        "--backend",
        "scalar",
        "--threads",
        "2",
        "--seconds",
        "0.1",
        "--no-version-rolling",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{}", run.stdout);
    assert!(lines[0].contains("2 thread(s)"), "{}", lines[0]);
    assert!(lines[0].ends_with("version rolling off"), "{}", lines[0]);
    assert!(lines[2].starts_with("naive-sha2 "));
    assert!(lines[3].starts_with("scalar "));
    assert!(lines[4].starts_with("best: scalar at "));
}

#[test]
fn bad_arguments_are_usage_errors() {
    let run = probe(&["hashrate", "--backend", "quantum"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("unknown backend"), "{}", run.stderr);
    let run = probe(&["hashrate", "--seconds", "0"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("--seconds"), "{}", run.stderr);
}
