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
    let (mut pool, url) = start_pool(&format!("127.0.0.1:{port}"), &["--duration", "60"]);
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

/// Starts `sv2-probe mock pool` on `listen` with `args` and returns it with the URL it printed.
fn start_pool(listen: &str, args: &[&str]) -> (std::process::Child, String) {
    let mut pool = Command::new(env!("CARGO_BIN_EXE_sv2-probe"))
        .args(["mock", "pool", "--listen", listen, "--json"])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the mock pool");
    let mut lines = BufReader::new(pool.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["event"], "listening");
    // Keep reading so that the pool never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (pool, first["url"].as_str().unwrap().to_owned())
}

#[test]
fn mine_reports_events_as_json_and_fails_when_the_pool_goes_away() {
    // The pool stops after 3 s; the miner was asked for 60.
    let (mut pool, url) = start_pool("127.0.0.1:0", &["--duration", "3"]);
    let output = Command::new(env!("CARGO_BIN_EXE_sv2-probe"))
        .args([
            "mine",
            &url,
            "--seconds",
            "60",
            "--hashrate",
            "10000",
            "--json",
        ])
        .output()
        .expect("run the miner");
    let _ = pool.kill();
    let _ = pool.wait();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    let summary = lines.last().unwrap();
    assert_eq!(summary["kind"], "summary", "{stdout}");
    assert_eq!(summary["ok"], false);
    assert_eq!(summary["outcome"], "failed");
    // The pool going away is a close, or a reset when it exits with shares of ours still unread in
    // its socket (the kernel then answers with RST): either way the mining step names it.
    let error = summary["error"].as_str().unwrap();
    assert!(
        error.starts_with("mining: ")
            && (error.contains("the peer closed the connection")
                || error.contains("Connection reset by peer")),
        "{summary}"
    );
    assert!(summary["accepted"].as_u64().unwrap() >= 1, "{stdout}");
    // Events are objects with their fields, hashes as hex.
    let channel = lines
        .iter()
        .find(|l| l["event"] == "channel")
        .unwrap_or_else(|| panic!("no channel event in {stdout}"));
    assert_eq!(channel["target"].as_str().unwrap().len(), 64);
    assert!(channel["difficulty"].as_f64().unwrap() > 0.0);
    let share = lines
        .iter()
        .find(|l| l["event"] == "share")
        .unwrap_or_else(|| panic!("no share event in {stdout}"));
    // Both written most significant byte first, so the hex strings compare as the numbers do.
    let hash = share["hash"].as_str().unwrap();
    assert_eq!(hash.len(), 64, "{share}");
    assert!(
        hash <= channel["target"].as_str().unwrap(),
        "{share}\n{channel}"
    );
    assert!(lines.iter().any(|l| l["kind"] == "stats"), "{stdout}");
}

#[test]
fn mine_text_shows_readable_events_and_stats() {
    let (mut pool, url) = start_pool("127.0.0.1:0", &["--duration", "30"]);
    let output = Command::new(env!("CARGO_BIN_EXE_sv2-probe"))
        .args(["mine", &url, "--seconds", "2", "--hashrate", "10000"])
        .output()
        .expect("run the miner");
    let _ = pool.kill();
    let _ = pool.wait();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.starts_with("mining on stratum2+tcp://127.0.0.1:"),
        "{stdout}"
    );
    assert!(
        stdout.contains("\n  setup: SetupConnection.Success used_version 2, flags 0x0\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("\n  channel: extended channel "),
        "{stdout}"
    );
    assert!(
        stdout.contains("\n  accepted: SubmitShares.Success up to #"),
        "{stdout}"
    );
    // No Debug output of byte arrays.
    assert!(!stdout.contains("[0, 0"), "{stdout}");
    // A stats line each second.
    assert!(stdout.contains(" MH/s  jobs "), "{stdout}");
    assert!(
        stdout.contains("\nstopped: time is up (or interrupted)\n"),
        "{stdout}"
    );
}

#[test]
fn mine_fails_readably_when_nothing_listens() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let output = Command::new(env!("CARGO_BIN_EXE_sv2-probe"))
        .args([
            "mine",
            &format!("stratum2+tcp://127.0.0.1:{port}"),
            "--seconds",
            "30",
        ])
        .output()
        .expect("run the miner");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!("failed: connect to 127.0.0.1:{port}: ")),
        "{stdout}"
    );
}

#[test]
fn the_mock_pool_records_its_connections_as_a_pcap_with_its_key_log() {
    let dir = std::env::temp_dir().join(format!("sv2-probe-mock-pcap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("pool.pcapng");
    let (mut pool, url) = start_pool(
        "127.0.0.1:0",
        &["--duration", "4", "--pcap", pcap.to_str().unwrap()],
    );
    let mined = Command::new(env!("CARGO_BIN_EXE_sv2-probe"))
        .args(["mine", &url, "--seconds", "2", "--hashrate", "10000"])
        .output()
        .expect("run the miner");
    assert!(mined.status.success(), "{mined:?}");
    // The pool stops by itself and closes the capture.
    assert!(pool.wait().unwrap().success());

    let keylog = dir.join("pool.pcapng.keylog");
    let read = Command::new(env!("CARGO_BIN_EXE_sv2-probe"))
        .args(["pcap", pcap.to_str().unwrap(), "--keylog"])
        .arg(&keylog)
        .arg("--json")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&read.stdout);
    assert!(read.status.success(), "{stdout}\n{read:?}");
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<&str> = lines.iter().filter_map(|l| l["message"].as_str()).collect();
    for wanted in [
        "act 1",
        "act 2",
        "SetupConnection",
        "SetupConnection.Success",
        "SetNewPrevHash",
        "SubmitShares.Success",
    ] {
        assert!(names.contains(&wanted), "{wanted} not in {names:?}");
    }
    let summary = lines.iter().find(|l| l["kind"] == "connection").unwrap();
    assert_eq!(summary["decryption"], "decrypted", "{summary}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_scenario_on_the_mock_pool_drops_its_share_acknowledgements() {
    let scenario = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scenarios/examples/drop-share-acks.toml"
    );
    let mut pool = Command::new(env!("CARGO_BIN_EXE_sv2-probe"))
        .args([
            "mock",
            "pool",
            "--listen",
            "127.0.0.1:0",
            "--json",
            "--duration",
            "4",
        ])
        .args(["--scenario", scenario])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(pool.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    let url = first["url"].as_str().unwrap().to_owned();
    let mined = Command::new(env!("CARGO_BIN_EXE_sv2-probe"))
        .args([
            "mine",
            &url,
            "--seconds",
            "2",
            "--hashrate",
            "10000",
            "--json",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&mined.stdout);
    let summary: Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["kind"] == "summary")
        .unwrap_or_else(|| panic!("{stdout}"));
    assert_eq!(summary["accepted"], 0, "{summary}");
    let rest: Vec<Value> = lines
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    assert!(pool.wait().unwrap().success());
    let stopped = rest.iter().find(|v| v["event"] == "stopped").unwrap();
    assert!(
        stopped["stats"]["shares_accepted"].as_u64().unwrap() >= 1,
        "the pool accepted shares; the scenario kept the acks from the miner: {stopped}"
    );
    assert!(
        rest.iter().any(|v| v["event"] == "scenario"
            && v["text"]
                .as_str()
                .is_some_and(|t| t.contains("scenario rule \"no share acks\": dropped"))),
        "the rule's firings are events"
    );
}
