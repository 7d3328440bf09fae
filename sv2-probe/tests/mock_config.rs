//! `sv2-probe mock tp|pool --config FILE`: configuration mistakes are usage errors (exit 2) that say
//! where the mistake is, and a listen address off loopback needs --allow-remote.

use std::process::Command;

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `sv2-probe mock <role> --config <file with text> --duration 0.5 <extra>`.
fn mock(role: &str, config: &str, extra: &[&str]) -> Run {
    let dir = std::env::temp_dir().join(format!(
        "sv2-probe-mock-config-{}-{role}-{}",
        std::process::id(),
        config.len()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("config.toml");
    std::fs::write(&path, config).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_sv2-probe"))
        .args(["mock", role, "--config"])
        .arg(&path)
        .args(["--duration", "0.5"])
        .args(extra)
        .output()
        .expect("run sv2-probe mock");
    let _ = std::fs::remove_dir_all(&dir);
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[test]
fn a_good_config_is_used() {
    let run = mock(
        "pool",
        "listen = \"127.0.0.1:0\"\npool_tag = \"/config-test/\"\nack_every = 1\nplaintext = true\n\
         ntime_future_slack_secs = 90\nntime_past_slack_secs = 2\ncheck_extranonce_size = false\n\
         check_version = false\ncheck_target = true\ncheck_duplicates = true\nfixed_version = false\n\
         requires_extended_channels = false\nidle_timeout_secs = 0\nmax_channels_per_session = 4\n",
        &[],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout
            .starts_with("mock pool listening: stratum2+tcp://127.0.0.1:"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("probe and mine it with --plaintext"),
        "{}",
        run.stdout
    );

    let run = mock(
        "tp",
        "listen = \"127.0.0.1:0\"\nnbits = 0x1d00ffff\nstart_height = 7\n",
        &[],
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout
            .starts_with("mock TP listening: stratum2+tcp://127.0.0.1:"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("building height 7"), "{}", run.stdout);
}

#[test]
fn config_mistakes_are_usage_errors_that_say_where() {
    let cases = [
        ("pool", "listen = \"127.0.0.1:0\n", "line 1, column"),
        ("pool", "pooltag = \"/x/\"\n", "unknown field `pooltag`"),
        (
            "pool",
            "ack_every = \"ten\"\n",
            "invalid type: string \"ten\", expected u32",
        ),
        ("pool", "listen = \"localhost:80\"\n", "listen"),
        ("tp", "nbits = -1\n", "nbits"),
        ("tp", "start_hieght = 5\n", "unknown field `start_hieght`"),
        ("pool", "authority_secret = \"nope\"\n", "authority_secret"),
    ];
    for (role, config, expected) in cases {
        let run = mock(role, config, &[]);
        assert_eq!(run.code, Some(2), "{role} {config:?}: {}", run.stderr);
        assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
        assert!(
            run.stderr.contains(expected),
            "{role} {config:?}: {}",
            run.stderr
        );
        assert_eq!(run.stdout, "", "{role} {config:?}");
    }
}

#[test]
fn a_listen_address_off_loopback_needs_allow_remote() {
    // The unspecified address, spelled at run time: nothing here ever binds off loopback (the
    // command refuses before binding), and the source names no such address.
    let off_loopback = format!("{}:0", std::net::Ipv4Addr::UNSPECIFIED);
    for role in ["pool", "tp"] {
        let run = mock(role, &format!("listen = \"{off_loopback}\"\n"), &[]);
        assert_eq!(run.code, Some(2), "{}", run.stderr);
        let expected =
            format!("listen address {off_loopback} is not loopback (pass --allow-remote");
        assert!(run.stderr.contains(&expected), "{}", run.stderr);
        // The command line overrides the file, and is checked the same way.
        let run = mock(
            role,
            "listen = \"127.0.0.1:0\"\n",
            &["--listen", &off_loopback],
        );
        assert_eq!(run.code, Some(2), "{}", run.stderr);
    }
}

#[test]
fn a_missing_config_file_is_named() {
    let output = Command::new(env!("CARGO_BIN_EXE_sv2-probe"))
        .args(["mock", "pool", "--config", "/nonexistent/sv2-probe.toml"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot read /nonexistent/sv2-probe.toml"),
        "{stderr}"
    );
}
