//! `sv2-probe scenario run` as the real binary: a scripted client against the mock pool (passes, and
//! fails with the step named when an expectation is wrong), and a scripted server with a scripted
//! client talking to it; `scenario check` on the committed files.

mod common;

use common::{mock_pool, probe};

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use serde_json::Value;

const CONVERSATION: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../scenarios/conversations/open-standard-channel.toml"
);

#[test]
fn a_scripted_client_passes_on_the_mock_pool_and_a_wrong_expectation_fails_naming_its_step() {
    let (mut pool, url) = mock_pool(30);
    let run = probe()
        .args(["scenario", "run", CONVERSATION, "--target", &url, "--json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}");
    let last: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["ok"], true, "{stdout}");
    assert!(stdout.contains("\"SubmitShares.Error\""), "{stdout}");

    // The same pool does not refuse setup: a script that expects it to fails at that step.
    let dir = std::env::temp_dir().join(format!("sv2-probe-scenario-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wrong = dir.join("wrong.toml");
    std::fs::write(
        &wrong,
        r#"
[[step]]
send = { message = "SetupConnection", protocol = 0, min_version = 2, max_version = 2, flags = 0, endpoint_host = "", endpoint_port = 0, vendor = "", hardware_version = "", firmware = "", device_id = "" }
[[step]]
expect = "SetupConnection.Error"
within_ms = 1000
"#,
    )
    .unwrap();
    let run = probe()
        .args(["scenario", "run"])
        .arg(&wrong)
        .args(["--target", &url])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL at step 2: expected SetupConnection.Error"),
        "{stdout}"
    );
    let _ = pool.kill();
    let _ = pool.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_scripted_server_and_a_scripted_client() {
    let dir = std::env::temp_dir().join(format!("sv2-probe-scenario-srv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (server_file, client_file) = (dir.join("server.toml"), dir.join("client.toml"));
    std::fs::write(
        &server_file,
        r#"
[[step]]
expect = "SetupConnection"
where = { vendor = "bug-report" }
[[step]]
send = { message = "SetupConnection.Error", flags = 0, error_code = "unsupported-protocol" }
[[step]]
expect = "close"
"#,
    )
    .unwrap();
    std::fs::write(
        &client_file,
        r#"
[[step]]
send = { message = "SetupConnection", protocol = 0, min_version = 2, max_version = 2, flags = 0, endpoint_host = "", endpoint_port = 0, vendor = "bug-report", hardware_version = "", firmware = "", device_id = "" }
[[step]]
expect = "SetupConnection.Error"
where = { error_code = "unsupported-protocol" }
"#,
    )
    .unwrap();
    let mut server = probe()
        .args(["scenario", "run"])
        .arg(&server_file)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--json",
            "--accept-timeout",
            "20",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    let url = first["url"].as_str().unwrap().to_owned();
    let client = probe()
        .args(["scenario", "run"])
        .arg(&client_file)
        .args(["--target", &url])
        .output()
        .unwrap();
    assert!(
        client.status.success(),
        "{}",
        String::from_utf8_lossy(&client.stdout)
    );
    let rest: Vec<Value> = lines
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    assert!(server.wait().unwrap().success(), "{rest:?}");
    assert_eq!(rest.last().unwrap()["ok"], true, "{rest:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn check_reads_every_committed_scenario_file() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios");
    let mut files = Vec::new();
    for sub in ["examples", "conversations", "faults", "faults/clients"] {
        for entry in std::fs::read_dir(format!("{root}/{sub}")).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                files.push(path);
            }
        }
    }
    assert!(files.len() >= 30, "{}", files.len());
    let run = probe()
        .args(["scenario", "check"])
        .args(&files)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}");
    assert_eq!(stdout.matches(": ok").count(), files.len(), "{stdout}");
    // A broken one is refused, naming the rule.
    let bad = std::env::temp_dir().join(format!("sv2-probe-bad-{}.toml", std::process::id()));
    std::fs::write(&bad, "[[rule]]\nname = \"r\"\naction = \"teleport\"\n").unwrap();
    let run = probe()
        .args(["scenario", "check"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&run.stdout).contains("rule \"r\": unknown action"));
    let _ = std::fs::remove_file(&bad);
}
