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
