//! What the CLI tests share: the binary, and a mock pool run by it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::Value;

/// The sv2-probe binary under test.
pub fn probe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sv2-probe"))
}

/// `sv2-probe mock pool` on a free loopback port for `seconds` at most: the process and its URL.
pub fn mock_pool(seconds: u32) -> (std::process::Child, String) {
    let mut pool = probe()
        .args([
            "mock",
            "pool",
            "--listen",
            "127.0.0.1:0",
            "--json",
            "--duration",
        ])
        .arg(seconds.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(pool.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["event"], "listening");
    std::thread::spawn(move || for _ in lines {});
    (pool, first["url"].as_str().unwrap().to_owned())
}
