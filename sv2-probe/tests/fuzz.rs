//! `sv2-probe fuzz` as the real binary: a short campaign against the mock pool (no findings, a JSON
//! report on disk), two shards merged, a remote target refused, and `scenario run` replaying an
//! `expect_alive` step against the same pool.

mod common;

use common::{mock_pool, probe};

use serde_json::Value;

#[test]
fn shards_of_a_campaign_against_the_mock_pool_merge_and_find_nothing() {
    let (mut pool, url) = mock_pool(60);
    let dir = std::env::temp_dir().join(format!("sv2-probe-fuzz-{}", std::process::id()));
    let mut reports = Vec::new();
    for shard in ["0/2", "1/2"] {
        let out = dir.join(shard.replace('/', "-of-"));
        let run = probe()
            .args(["fuzz", "--target", &url, "--cases", "12", "--seed", "5"])
            .args(["--shard", shard, "--wait-ms", "1500", "--pid"])
            .arg(pool.id().to_string())
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&run.stdout);
        assert!(
            run.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&run.stderr)
        );
        assert!(stdout.contains("12 cases in"), "{stdout}");
        assert!(stdout.contains("findings: 0"), "{stdout}");
        reports.push(out.join("report.json"));
    }
    let merged = probe()
        .args(["fuzz", "merge", "--json"])
        .args(&reports)
        .output()
        .unwrap();
    assert!(merged.status.success());
    let report: Value = serde_json::from_slice(&merged.stdout).unwrap();
    assert_eq!(report["cases"], 24);
    assert_eq!(report["shards"].as_array().unwrap().len(), 2);
    // A script that asks for a live server passes against it.
    let alive = dir.join("alive.toml");
    std::fs::write(&alive, "[[step]]\nexpect_alive = true\nwithin_ms = 3000\n").unwrap();
    let run = probe()
        .args(["scenario", "run"])
        .arg(&alive)
        .args(["--target", &url])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stdout)
    );
    let _ = pool.kill();
    let _ = pool.wait();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_target_off_this_machine_is_refused_without_allow_remote() {
    let run = probe()
        .args([
            "fuzz",
            "--target",
            "stratum2+tcp://192.0.2.1:34254",
            "--plaintext",
        ])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("not loopback"));
}
