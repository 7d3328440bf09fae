//! `sv2-probe proxy` as the real binary, between `sv2-probe mine` and `sv2-probe mock pool`, Noise on
//! both legs, with a scenario that drops the pool's share acknowledgements: both legs printed live
//! (JSON lines with their leg), the rule's firings, the monitor's report over both legs, and a
//! pcapng of both legs that `sv2-probe pcap` decrypts with the key log written beside it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::Value;

fn probe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sv2-probe"))
}

/// Starts a command printing JSON lines and returns it with its first line.
fn start(
    cmd: &mut Command,
) -> (
    std::process::Child,
    Value,
    BufReader<std::process::ChildStdout>,
) {
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    let value = serde_json::from_str(&first).unwrap_or_else(|e| panic!("{e}: {first:?}"));
    (child, value, reader)
}

#[test]
fn the_proxy_relays_shows_judges_breaks_and_records_both_legs() {
    let dir = std::env::temp_dir().join(format!("sv2-probe-proxy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = dir.join("drop.toml");
    std::fs::write(
        &scenario,
        "name = \"drop-share-acks\"\n[[rule]]\nname = \"no acks\"\nfrom = \"server\"\nmessage = \"SubmitShares.Success\"\naction = \"drop\"\n",
    )
    .unwrap();
    let (pcap, report) = (dir.join("proxy.pcapng"), dir.join("report.json"));

    let (mut pool, listening, pool_out) = start(probe().args([
        "mock",
        "pool",
        "--listen",
        "127.0.0.1:0",
        "--duration",
        "20",
        "--json",
    ]));
    std::thread::spawn(move || for _ in pool_out.lines() {});
    let pool_url = listening["url"].as_str().unwrap().to_string();

    let (mut proxy, listening, proxy_out) = start(
        probe()
            .args([
                "proxy",
                "--listen",
                "127.0.0.1:0",
                "--upstream",
                &pool_url,
                "--json",
            ])
            .args(["--duration", "6", "--scenario"])
            .arg(&scenario)
            .arg("--pcap")
            .arg(&pcap)
            .arg("--json-file")
            .arg(&report),
    );
    assert_eq!(listening["event"], "listening");
    let proxy_url = listening["url"].as_str().unwrap().to_string();
    assert_ne!(proxy_url, pool_url, "the proxy's own key and port");

    let mined = probe()
        .args([
            "mine",
            &proxy_url,
            "--seconds",
            "2",
            "--hashrate",
            "10000",
            "--json",
        ])
        .output()
        .unwrap();
    let mined: Vec<Value> = String::from_utf8_lossy(&mined.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let summary = mined.iter().find(|v| v["kind"] == "summary").unwrap();
    assert_eq!(
        summary["accepted"], 0,
        "no ack reached the miner: {summary}"
    );

    let lines: Vec<Value> = proxy_out
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    assert!(proxy.wait().unwrap().success());
    let _ = pool.kill();
    let _ = pool.wait();

    let on = |leg: &str, message: &str| {
        lines
            .iter()
            .filter(|l| l["leg"] == leg && l["message"] == message)
            .count()
    };
    assert!(on("upstream", "SubmitShares.Success") >= 1);
    assert_eq!(on("downstream", "SubmitShares.Success"), 0);
    assert!(on("downstream", "SubmitSharesExtended") >= 1);
    assert_eq!(
        on("downstream", "SubmitSharesExtended"),
        on("upstream", "SubmitSharesExtended")
    );
    assert!(lines.iter().any(|l| l["note"]
        .as_str()
        .is_some_and(|n| n.contains("scenario rule \"no acks\": dropped SubmitShares.Success"))));
    let ended = lines
        .iter()
        .find(|l| l["event"] == "connection-ended")
        .unwrap();
    assert_eq!(ended["fired"][0]["rule"], "no acks");
    // The report: server rules over the pool's frames, client rules over the miner's.
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let verdict = |id: &str| {
        report["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .map(|r| r["verdict"].as_str().unwrap().to_string())
    };
    assert_eq!(
        verdict("monitor.share-acks").as_deref(),
        Some("pass"),
        "{report}"
    );
    assert_eq!(
        verdict("monitor.client-setup-first").as_deref(),
        Some("pass")
    );

    // Both legs in the capture, decrypted with the key log beside it.
    let read = probe()
        .args(["pcap", "--json", "--keylog"])
        .arg(dir.join("proxy.pcapng.keylog"))
        .arg(&pcap)
        .output()
        .unwrap();
    assert!(read.status.success(), "{read:?}");
    let summaries: Vec<Value> = String::from_utf8_lossy(&read.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l["kind"] == "connection")
        .collect();
    assert_eq!(summaries.len(), 2, "{summaries:?}");
    assert!(summaries.iter().all(|s| s["decryption"] == "decrypted"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A pool that breaks a rule (it answers channel requests with request_id + 1, a fault scenario of
/// `mock pool`): the proxy says so live, naming the rule and the side, and its report fails.
#[test]
fn the_proxy_reports_a_violation_live_and_fails() {
    let fault = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scenarios/faults/wrong-request-id.toml"
    );
    let (mut pool, listening, pool_out) = start(probe().args([
        "mock",
        "pool",
        "--listen",
        "127.0.0.1:0",
        "--duration",
        "20",
        "--json",
        "--scenario",
        fault,
    ]));
    std::thread::spawn(move || for _ in pool_out.lines() {});
    let pool_url = listening["url"].as_str().unwrap().to_string();
    let (mut proxy, listening, proxy_out) = start(probe().args([
        "proxy",
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        &pool_url,
        "--json",
        "--duration",
        "4",
    ]));
    let proxy_url = listening["url"].as_str().unwrap().to_string();
    // The miner gives up on a channel whose answer carries another request_id; that is enough.
    let _ = probe()
        .args(["mine", &proxy_url, "--seconds", "1", "--hashrate", "10000"])
        .output()
        .unwrap();
    let lines: Vec<Value> = proxy_out
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    let status = proxy.wait().unwrap();
    let _ = pool.kill();
    let _ = pool.wait();
    let violation = lines
        .iter()
        .find(|l| l["event"] == "violation")
        .unwrap_or_else(|| panic!("no violation event: {lines:?}"));
    assert_eq!(violation["rule"], "monitor.request-id-echo");
    assert_eq!(violation["by"], "server");
    assert_eq!(violation["leg"], "upstream");
    assert_eq!(status.code(), Some(1), "a MUST rule failed");
}
