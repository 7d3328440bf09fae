//! `sv2-probe demo`, run as the real binary: the README's main job must pass end to end.

use std::process::Command;

use serde_json::Value;

#[test]
fn the_demo_passes_end_to_end_with_a_validated_block() {
    let output = Command::new(env!("CARGO_BIN_EXE_sv2-probe"))
        .args(["demo", "--json"])
        .output()
        .expect("run sv2-probe demo");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "demo output is not JSON ({e}):\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert_eq!(output.status.code(), Some(0), "{report:#}");
    assert_eq!(report["ok"], true);
    let steps = report["probe"]["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 9, "{report:#}");
    assert!(steps.iter().all(|s| s["status"] == "pass"), "{report:#}");
    let verdicts = report["tp"]["verdicts"].as_array().unwrap();
    assert!(verdicts.iter().any(|v| v["valid"] == true), "{report:#}");
    assert!(report["pool"]["stats"]["shares_accepted"].as_u64().unwrap() >= 1);
    assert!(report["pool"]["stats"]["blocks_found"].as_u64().unwrap() >= 1);
}

#[test]
fn the_demo_text_report_reads_well() {
    let output = Command::new(env!("CARGO_BIN_EXE_sv2-probe"))
        .arg("demo")
        .output()
        .expect("run sv2-probe demo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("mock TP:   stratum2+tcp://127.0.0.1:"),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with("mock pool: stratum2+tcp://127.0.0.1:"),
        "{stdout}"
    );
    for step in [
        "tcp",
        "noise",
        "certificate",
        "setup",
        "channel",
        "first job",
        "coinbase",
        "share",
        "monitor",
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("  PASS  {step:<12} "))),
            "{step}: {stdout}"
        );
    }
    assert!(
        stdout.contains("\n9 passed, 0 failed, 0 skipped\n"),
        "{stdout}"
    );
    // The pool's line: rejections, if any, come with their reasons.
    let pool = lines
        .iter()
        .find(|l| l.starts_with("mock pool: ") && l.contains(" channel(s), "))
        .unwrap_or_else(|| panic!("no pool line in {stdout}"));
    if !pool.contains(", 0 rejected, ") {
        assert!(pool.contains(" rejected ("), "{pool}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("mock TP:   SubmitSolution for template ")
                && l.contains("VALID block")),
        "{stdout}"
    );
    assert_eq!(lines.last(), Some(&"demo: ok"), "{stdout}");
}
