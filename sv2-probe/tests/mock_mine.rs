//! `sv2-probe mock pool` and `sv2-probe mine`, both as the real binary: the miner mines on the mock pool
//! over Noise and its shares are accepted.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::Value;

#[test]
fn mine_on_the_mock_pool() {
    let bin = env!("CARGO_BIN_EXE_sv2-probe");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut pool = Command::new(bin)
        .args([
            "mock",
            "pool",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--duration",
            "60",
            "--json",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the mock pool");
    let mut lines = BufReader::new(pool.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["event"], "listening");
    let url = first["url"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with(&format!("stratum2+tcp://127.0.0.1:{port}/")),
        "{url}"
    );

    let output = Command::new(bin)
        .args([
            "mine",
            &url,
            "--seconds",
            "4",
            "--hashrate",
            "10000",
            "--json",
        ])
        .output()
        .expect("run the miner");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary: Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["kind"] == "summary")
        .unwrap_or_else(|| panic!("no summary in:\n{stdout}"));
    let _ = pool.kill();
    let _ = pool.wait();
    assert!(summary["accepted"].as_u64().unwrap() >= 1, "{stdout}");
    assert_eq!(summary["violations"], 0, "{stdout}");
}
