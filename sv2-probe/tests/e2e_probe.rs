//! `sv2-probe probe` against the reference implementation's pool (pool_sv2 0.7.0) fed by our mock TP:
//! every step passes, the share mined by the built-in engine is accepted, and the block it makes
//! reaches our TP and validates. Then the probe against peers that misbehave: a closed port, a silent
//! listener, garbage instead of act 2, and a wrong authority key: each fails the right step with exit 1.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use sv2_codec::noise::keys::Keypair;
use sv2_interop::noise::TEST_AUTHORITY_PUBLIC;
use sv2_interop::peers::{binary_or_skip, free_port, scratch_dir, start_reference_pool};
use sv2_mock::tp::driver::{serve, TpServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Runs the probe binary (blocking, on a worker thread) and returns its exit code and JSON report.
async fn probe(args: Vec<String>) -> (Option<i32>, Value) {
    tokio::task::spawn_blocking(move || {
        let output = Command::new(env!("CARGO_BIN_EXE_sv2-probe"))
            .arg("probe")
            .args(&args)
            .arg("--json")
            .output()
            .expect("run sv2-probe");
        let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "probe output is not JSON ({e}):\n{}\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )
        });
        (output.status.code(), report)
    })
    .await
    .unwrap()
}

fn step<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {report:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_passes_every_step_on_the_reference_pool() {
    let Some(pool_bin) = binary_or_skip("pool_sv2", "e2e_probe") else {
        return;
    };
    let tp = serve(
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        TpServerConfig::new(Keypair::generate().unwrap()).unwrap(),
    )
    .unwrap();
    let tp_addr = tp.addr;
    let (pool, addr) = start_reference_pool(&pool_bin, "probe-pool", tp_addr, None)
        .await
        .unwrap();
    let pool_port = addr.port();

    // A low nominal hash rate makes the pool's target easy enough for a debug build to hit quickly.
    let url = format!("stratum2+tcp://127.0.0.1:{pool_port}/{TEST_AUTHORITY_PUBLIC}");
    let keylog = scratch_dir("probe-keylog").unwrap().join("keys.log");
    let (code, report) = probe(vec![
        url,
        "--keylog".into(),
        keylog.to_str().unwrap().into(),
        "--hashrate".into(),
        "10000".into(),
        "--share-timeout".into(),
        "60".into(),
    ])
    .await;
    assert_eq!(code, Some(0), "{report:#}\n{}", pool.log_tail(30));
    for name in [
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
        assert_eq!(step(&report, name)["status"], "pass", "{name}: {report:#}");
    }
    // The conformance monitor judged pool_sv2's frames of the session.
    assert!(
        step(&report, "monitor")["data"]["rules_judged"]
            .as_array()
            .unwrap()
            .len()
            >= 5
    );
    let coinbase = &step(&report, "coinbase")["data"];
    assert_eq!(
        coinbase["height"],
        tp.height() - 1,
        "the share's block moved the TP on"
    );
    assert!(coinbase["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o["kind"] == "witness commitment"));
    // The key log holds this session's line, and its handshake hash is the one the probe reported.
    let text = std::fs::read_to_string(&keylog).unwrap();
    assert!(
        text.ends_with('\n') && !text.contains("\n\n"),
        "one line per session: {text:?}"
    );
    let entries = sv2_codec::noise::keylog::parse(&text).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(
        hex::encode(entries[0].handshake_hash),
        step(&report, "noise")["data"]["handshake_hash"]
            .as_str()
            .unwrap()
    );
    let verdicts = tp.wait_for_verdicts(1, Duration::from_secs(20)).await;
    assert!(
        verdicts.first().is_some_and(|v| v.valid),
        "{verdicts:?}\n{}",
        tp.log().join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_peers_fail_the_right_step() {
    let key = TEST_AUTHORITY_PUBLIC;
    let short = || {
        vec![
            "--timeout".to_string(),
            "1".to_string(),
            "--no-share".to_string(),
        ]
    };

    // Nothing listens.
    let port = free_port().unwrap();
    let mut args = vec![format!("stratum2+tcp://127.0.0.1:{port}/{key}")];
    args.extend(short());
    let (code, report) = probe(args).await;
    assert_eq!(code, Some(1));
    assert_eq!(step(&report, "tcp")["status"], "fail");

    // A listener that never answers the handshake.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let keep = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let mut args = vec![format!("stratum2+tcp://{silent_addr}/{key}")];
    args.extend(short());
    let (code, report) = probe(args).await;
    assert_eq!(code, Some(1));
    let noise = step(&report, "noise");
    assert_eq!(noise["status"], "fail");
    assert!(
        noise["detail"]
            .as_str()
            .unwrap()
            .contains("handshake act 2"),
        "{noise}"
    );
    keep.abort();

    // Garbage instead of act 2.
    let garbage = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let garbage_addr = garbage.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = garbage.accept().await {
            let mut act1 = [0u8; 64];
            if s.read_exact(&mut act1).await.is_ok() {
                let _ = s.write_all(&[0x42; 234]).await;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    });
    let mut args = vec![format!("stratum2+tcp://{garbage_addr}/{key}")];
    args.extend(short());
    let (code, report) = probe(args).await;
    assert_eq!(code, Some(1));
    assert_eq!(step(&report, "noise")["status"], "fail");

    // A real TP signed by another authority than the URL names.
    let tp = serve(
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        TpServerConfig::new(Keypair::generate().unwrap()).unwrap(),
    )
    .unwrap();
    let mut args = vec![format!("stratum2+tcp://{}/{key}", tp.addr)];
    args.extend(short());
    let (code, report) = probe(args).await;
    assert_eq!(code, Some(1));
    let noise = step(&report, "noise");
    assert!(
        noise["detail"].as_str().unwrap().contains("certificate"),
        "{noise}"
    );
}
