//! `sv2-probe conformance` from the command line: against our mock pool (text, JSON, JUnit and the
//! expected-verdicts file), with a wrong authority key (a MUST fails: exit 1), in passive mode over the
//! transcripts of its own JSON report, and `--list`.

use std::process::{Command, Output};

use serde_json::Value;
use sv2_codec::noise::keys::Keypair;
use sv2_mock::pool::driver::{serve, PoolServerConfig};
use tokio::net::TcpListener;

async fn sv2_probe(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_sv2-probe"))
            .arg("conformance")
            .args(&args)
            .output()
            .expect("run sv2-probe")
    })
    .await
    .unwrap()
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("sv2-conformance-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_exit_codes_expectations_and_passive_mode() {
    let authority = Keypair::generate().unwrap();
    let key = authority.public.to_base58();
    let pool = serve(
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        PoolServerConfig::new(authority).unwrap(),
    )
    .await
    .unwrap();
    let dir = scratch("run");
    let (junit, json, verdicts) = (
        dir.join("junit.xml"),
        dir.join("report.json"),
        dir.join("verdicts.txt"),
    );
    let target = format!("stratum2+tcp://{}/{key}", pool.addr);
    let out = sv2_probe(vec![
        "--role".into(),
        "pool".into(),
        "--target".into(),
        target.clone(),
        "--only".into(),
        "noise,setup,monitor.channel-msg-bit".into(),
        "--timeout".into(),
        "2".into(),
        "--junit".into(),
        junit.display().to_string(),
        "--json-file".into(),
        json.display().to_string(),
        "--write-expected".into(),
        verdicts.display().to_string(),
    ])
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("§4.5.2") && stdout.contains("noise.certificate"),
        "{stdout}"
    );
    assert!(stdout.contains(" 0 fail (0 MUST)"), "{stdout}");
    // What the server's certificate signs, in words, not only in the JSON.
    assert!(
        stdout.contains("server certificate: version 0, valid ")
            && stdout.contains("certifies server key "),
        "{stdout}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.starts_with("<?xml") && xml.contains("<testcase name=\"setup.reply\""),
        "{xml}"
    );
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["summary"]["must_failures"], 0);
    let results = report["results"].as_array().unwrap();
    assert!(results
        .iter()
        .any(|r| r["id"] == "monitor.channel-msg-bit" && r["verdict"] == "pass"));
    assert!(results
        .iter()
        .all(|r| r["section"].is_string() && r["level"].is_string()));

    // The verdicts file it wrote is what --expect reads: the same run agrees with it.
    let out = sv2_probe(vec![
        "--target".into(),
        target.clone(),
        "--only".into(),
        "noise,setup,monitor.channel-msg-bit".into(),
        "--timeout".into(),
        "2".into(),
        "--expect".into(),
        verdicts.display().to_string(),
    ])
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An edited expectation shows as a difference, exit 1.
    let edited = std::fs::read_to_string(&verdicts).unwrap().replace(
        "setup.reply                                  pass",
        "setup.reply fail",
    );
    std::fs::write(&verdicts, edited).unwrap();
    let out = sv2_probe(vec![
        "--target".into(),
        target.clone(),
        "--only".into(),
        "setup.reply".into(),
        "--expect".into(),
        verdicts.display().to_string(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("setup.reply: expected fail, got pass"));

    // Another authority key: the certificate check fails, a MUST: exit 1.
    let stranger = Keypair::generate().unwrap().public.to_base58();
    let out = sv2_probe(vec![
        "--target".into(),
        pool.addr.to_string(),
        "--authority-key".into(),
        stranger,
        "--only".into(),
        "noise.certificate".into(),
        "--json".into(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["results"][0]["verdict"], "fail");
    assert!(report["results"][0]["evidence"][0]["transcript"]["entries"].is_array());

    // Passive: the monitor over every transcript of the first report.
    let out = sv2_probe(vec!["--transcript".into(), json.display().to_string()]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("monitor.channel-msg-bit"), "{stdout}");

    // A target that is not there: nothing could be checked, exit 2.
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let out = sv2_probe(vec![
        "--target".into(),
        closed.to_string(),
        "--only".into(),
        "setup".into(),
    ])
    .await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn list_names_every_check_with_section_and_level() {
    let out = sv2_probe(vec!["--list".into(), "--json".into()]).await;
    assert_eq!(out.status.code(), Some(0));
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = list.as_array().unwrap();
    assert!(list.len() >= 40, "{} checks", list.len());
    let mut ids: Vec<&str> = list.iter().map(|c| c["id"].as_str().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), list.len(), "check ids are unique");
    assert!(list
        .iter()
        .all(|c| ["MUST", "SHOULD", "MAY"].contains(&c["level"].as_str().unwrap())));
    let out = sv2_probe(vec![
        "--target".into(),
        "127.0.0.1:1".into(),
        "--only".into(),
        "nope".into(),
    ])
    .await;
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such check"));
}

/// `sv2-probe probe` runs the conformance monitor over its session: a pool that answers with the wrong
/// request_id fails the probe's `monitor` step with that rule named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_reports_monitor_findings() {
    // A correct pool behind a relay whose scenario answers channel requests with request_id + 1.
    let mut config = PoolServerConfig::new(Keypair::generate().unwrap()).unwrap();
    config.noise = None;
    let pool = serve(TcpListener::bind("127.0.0.1:0").await.unwrap(), config)
        .await
        .unwrap();
    let authority = Keypair::generate().unwrap();
    let key = authority.public.to_base58();
    let now = sv2_wire::unix_now();
    let mut relay = sv2_scenario::relay::RelayConfig::new(pool.addr);
    relay.downstream_noise = Some(sv2_codec::noise::ResponderConfig::issue(
        &sv2_codec::noise::keys::SecretKey::generate().unwrap(),
        &authority,
        now - 60,
        now + 3600,
    ));
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scenarios/faults/wrong-request-id.toml"
    );
    relay.scenario = std::sync::Arc::new(
        sv2_scenario::Scenario::from_toml(&std::fs::read_to_string(file).unwrap()).unwrap(),
    );
    let relay =
        sv2_scenario::relay::serve(TcpListener::bind("127.0.0.1:0").await.unwrap(), relay).unwrap();
    let url = format!("stratum2+tcp://{}/{key}", relay.addr);
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_sv2-probe"))
            .args(["probe", &url, "--json", "--no-share", "--timeout", "1"])
            .output()
            .expect("run sv2-probe")
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let steps = report["steps"].as_array().unwrap();
    let monitor = steps
        .iter()
        .find(|s| s["step"] == "monitor")
        .expect("a monitor step");
    assert_eq!(monitor["status"], "fail", "{report:#}");
    let findings = monitor["data"]["findings"].as_array().unwrap();
    assert!(
        findings
            .iter()
            .any(|f| f["rule"] == "monitor.request-id-echo"),
        "{report:#}"
    );
}

/// `--role device --spawn`: the suite starts `sv2-probe mine` for each check, with the URL it
/// listens on, and reports by section; a check the started client cannot pass shows its output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_role_spawns_the_client_for_each_check() {
    let bin = env!("CARGO_BIN_EXE_sv2-probe");
    let json = scratch("device").join("report.json");
    let out = sv2_probe(vec![
        "--role".into(),
        "device".into(),
        "--spawn".into(),
        format!("{bin} mine {{url}} --threads 1"),
        "--only".into(),
        "device.noise.wrong-authority,device.setup.versions,device.shares.accepted,monitor.client-vendor"
            .into(),
        "--timeout".into(),
        "2".into(),
        "--work-window".into(),
        "4".into(),
        "--json-file".into(),
        json.display().to_string(),
    ])
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("listening on stratum2+tcp://127.0.0.1:"),
        "{stderr}"
    );
    assert!(stdout.contains("§4.5.3"), "{stdout}");
    assert!(stdout.contains("4 pass"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["results"].as_array().unwrap().len(), 4);

    // A command that cannot start a client: every check errors at once, with its output.
    let out = sv2_probe(vec![
        "--role".into(),
        "device".into(),
        "--spawn".into(),
        "echo no such miner; exit 3".into(),
        "--only".into(),
        "device.setup".into(),
    ])
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("no such miner") && stdout.contains("exit status 3"),
        "{stdout}"
    );

    // --target belongs to the pool role.
    let out = sv2_probe(vec![
        "--role".into(),
        "device".into(),
        "--target".into(),
        "127.0.0.1:1".into(),
    ])
    .await;
    assert!(!out.status.success());
}
