//! `sv2-probe mock pool`: its log goes through `tracing` to stderr (levels, -v/-q, RUST_LOG), the
//! listening and stopped lines stay on stdout, and --json keeps the log as JSON events on stdout.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

/// Runs a plaintext `sv2-probe <before> mock pool <after>` for 2 s, sends it an SV1 line, and returns
/// its stdout and stderr.
fn pool_fed_sv1(before: &[&str], after: &[&str], rust_log: Option<&str>) -> (String, String) {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("sv2-probe-mock-log-{}-{run}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("pool.toml");
    std::fs::write(&config, "plaintext = true\nlisten = \"127.0.0.1:0\"\n").unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_sv2-probe"));
    command
        .args(before)
        .args(["mock", "pool", "--duration", "2", "--config"])
        .arg(&config)
        .args(after)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(directives) = rust_log {
        command.env("RUST_LOG", directives);
    }
    let mut child = command.spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let port = first
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("no port in {first:?}"));
    let mut sv1 = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    sv1.write_all(b"{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[]}\n")
        .unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (first + &rest, stderr)
}

#[test]
fn the_pool_log_goes_to_stderr_with_levels() {
    let (stdout, stderr) = pool_fed_sv1(&[], &[], None);
    assert!(
        stdout.starts_with("mock pool listening: stratum2+tcp://127.0.0.1:"),
        "{stdout}"
    );
    assert!(
        stdout.contains("\nstopped: 0 share(s) accepted"),
        "{stdout}"
    );
    assert!(!stdout.contains("session 1"), "{stdout}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0].starts_with("session 1: connection from 127.0.0.1:"),
        "{stderr}"
    );
    assert!(
        lines[1].starts_with(
            "warning: session 1: first frame: not an SV2 frame: its header names extension 0x227b"
        ),
        "{stderr}"
    );
    assert!(
        lines[1].ends_with("this looks like Stratum V1 (JSON-RPC text), not SV2; closed"),
        "{stderr}"
    );

    // -q: the warning only; so with RUST_LOG=warn.
    for (before, after, rust_log) in [
        (&[][..], &["-q"][..], None),
        (&["-q"][..], &[][..], None),
        (&[][..], &[][..], Some("warn")),
    ] {
        let (_, stderr) = pool_fed_sv1(before, after, rust_log);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("warning: session 1: first frame"),
            "{stderr}"
        );
    }
}

#[test]
fn with_json_the_log_stays_on_stdout_as_events() {
    let (stdout, stderr) = pool_fed_sv1(&[], &["--json"], None);
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(events[0]["event"], "listening");
    let texts: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "log")
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts.len(), 2, "{stdout}");
    assert!(
        texts[0].starts_with("session 1: connection from"),
        "{stdout}"
    );
    assert!(
        texts[1].starts_with("session 1: first frame: not an SV2 frame"),
        "{stdout}"
    );
    assert_eq!(events.last().unwrap()["event"], "stopped");
    // stderr: the warning only (the info lines are on stdout).
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}
