//! `sv2-probe probe` against peers that misbehave at every step, run as the real binary: each failure
//! names its step, shows the bytes the peer sent during it, and exits 1 within the step's timeout.
//! None of these need the reference implementation; all listen on 127.0.0.1.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use sv2_codec::messages::common::{Reconnect, SetupConnectionSuccess};
use sv2_codec::messages::mining::{CloseChannel, OpenExtendedMiningChannelSuccess};
use sv2_codec::noise::keys::Keypair;
use sv2_codec::noise::ResponderConfig;
use sv2_codec::types::{Str0_255, B0_32, U256};
use sv2_wire::{unix_now, Connection, KeyLog};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `sv2-probe probe` with `args` (blocking, on a worker thread).
async fn probe(args: Vec<String>) -> Run {
    tokio::task::spawn_blocking(move || {
        let output = Command::new(env!("CARGO_BIN_EXE_sv2-probe"))
            .arg("probe")
            .args(&args)
            .output()
            .expect("run sv2-probe");
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}

/// The probe's JSON report, with a short step timeout and no share.
async fn probe_json(url: String) -> (Option<i32>, Value) {
    let run = probe(vec![
        url,
        "--timeout".into(),
        "1".into(),
        "--no-share".into(),
        "--json".into(),
    ])
    .await;
    let report = serde_json::from_str(&run.stdout).unwrap_or_else(|e| {
        panic!(
            "probe output is not JSON ({e}):\n{}\n{}",
            run.stdout, run.stderr
        )
    });
    (run.code, report)
}

/// The step that failed (the probe stops there; only the conformance monitor may follow it).
fn last_step(report: &Value) -> &Value {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["status"] == "fail")
        .unwrap_or_else(|| panic!("no failed step in {report:#}"))
}

/// A listener on 127.0.0.1 that runs `peer` for every connection.
async fn listen<F, Fut>(peer: F) -> std::net::SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(peer(stream));
        }
    });
    addr
}

/// A Noise responder signed by `authority`, then `after` on the encrypted connection.
async fn noise_peer<F, Fut>(authority: Keypair, after: F) -> std::net::SocketAddr
where
    F: Fn(Connection<TcpStream>) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let server = Keypair::generate().unwrap();
    listen(move |stream| {
        let config = ResponderConfig::issue(
            &server.secret,
            &authority,
            unix_now() - 60,
            unix_now() + 3600,
        );
        let after = after.clone();
        async move {
            if let Ok(conn) =
                Connection::respond(stream, config, Duration::from_secs(5), &KeyLog::none()).await
            {
                after(conn).await;
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_failures_show_what_came_back() {
    let key = Keypair::generate().unwrap().public;

    // Nothing comes back: the hint names the likeliest cause.
    let silent = listen(|mut s| async move {
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink).await;
    })
    .await;
    let (code, report) = probe_json(format!("stratum2+tcp://{silent}/{key}")).await;
    assert_eq!(code, Some(1));
    let noise = last_step(&report);
    assert_eq!(noise["step"], "noise");
    assert_eq!(noise["status"], "fail");
    let detail = noise["detail"].as_str().unwrap();
    assert!(
        detail.contains("handshake act 2: no answer within 1s"),
        "{detail}"
    );
    assert!(detail.contains("nothing received"), "{detail}");
    assert!(detail.contains("try --plaintext"), "{detail}");

    // A few bytes, then the peer closes: they are shown.
    let short = listen(|mut s| async move {
        let mut act1 = [0u8; 64];
        if s.read_exact(&mut act1).await.is_ok() {
            let _ = s.write_all(b"\x01\x02\x03hello").await;
        }
    })
    .await;
    let (code, report) = probe_json(format!("stratum2+tcp://{short}/{key}")).await;
    assert_eq!(code, Some(1));
    let noise = last_step(&report);
    assert_eq!(noise["step"], "noise");
    let detail = noise["detail"].as_str().unwrap();
    assert!(
        detail.contains("the peer closed the connection"),
        "{detail}"
    );
    assert!(
        detail.contains("received 8 B in this step: 01020368656c6c6f"),
        "{detail}"
    );
    assert_eq!(noise["data"]["received_hex"], "01020368656c6c6f");
    assert_eq!(noise["data"]["received_len"], 8);

    // 234 bytes of garbage in place of act 2: the first and last bytes are shown.
    let garbage = listen(|mut s| async move {
        let mut act1 = [0u8; 64];
        if s.read_exact(&mut act1).await.is_ok() {
            let mut act2 = [0x42u8; 234];
            act2[233] = 0x99;
            let _ = s.write_all(&act2).await;
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
    })
    .await;
    let (code, report) = probe_json(format!("stratum2+tcp://{garbage}/{key}")).await;
    assert_eq!(code, Some(1));
    let noise = last_step(&report);
    let detail = noise["detail"].as_str().unwrap();
    assert!(detail.starts_with("handshake act 2: "), "{detail}");
    assert!(
        detail.contains(&format!(
            "received 234 B in this step: {} ... {}99",
            "42".repeat(32),
            "42".repeat(31)
        )),
        "{detail}"
    );
    assert_eq!(
        noise["data"]["received_hex"].as_str().unwrap().len(),
        2 * 234
    );
}

/// The text report of a probe against an HTTP server, with the port and timings taken out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_server_is_named_as_such() {
    let http = listen(|mut s| async move {
        let mut act1 = [0u8; 64];
        if s.read_exact(&mut act1).await.is_ok() {
            let _ = s
                .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                .await;
        }
    })
    .await;
    let key = "9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH72";
    let run = probe(vec![
        format!("stratum2+tcp://{http}/{key}"),
        "--timeout".into(),
        "1".into(),
    ])
    .await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    insta::assert_snapshot!(normalize(&run.stdout, http.port()));
}

/// Replaces the port and the milliseconds column of a text report (they change from run to run).
fn normalize(text: &str, port: u16) -> String {
    text.replace(&port.to_string(), "PORT")
        .lines()
        .map(|line| match line.find(" ms  ") {
            Some(end) if end >= 9 && line.is_char_boundary(end - 9) => {
                format!("{}{:>9}{}", &line[..end - 9], "T", &line[end..])
            }
            _ => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_after_the_handshake_name_their_step_and_bytes() {
    let authority = Keypair::generate().unwrap();
    let key = authority.public;

    // Handshake, then silence: the setup step times out, nothing received.
    let stall = noise_peer(authority.clone(), |conn| async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(conn);
    })
    .await;
    let (code, report) = probe_json(format!("stratum2+tcp://{stall}/{key}")).await;
    assert_eq!(code, Some(1));
    for name in ["tcp", "noise", "certificate"] {
        let step = report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["step"] == name)
            .unwrap();
        assert_eq!(step["status"], "pass", "{name}: {report:#}");
    }
    let setup = last_step(&report);
    assert_eq!(setup["step"], "setup", "{report:#}");
    assert_eq!(setup["status"], "fail");
    let detail = setup["detail"].as_str().unwrap();
    assert!(
        detail.contains("SetupConnection reply: no answer within 1s; nothing received"),
        "{detail}"
    );

    // Handshake, then raw garbage on the encrypted channel: the setup step fails on it and shows it.
    let garbage = noise_peer(authority.clone(), |mut conn| async move {
        let mut junk = vec![0xee; 40];
        junk[0] = 0x17;
        let _ = conn.send_raw(&junk, "garbage").await;
        tokio::time::sleep(Duration::from_secs(3)).await;
    })
    .await;
    let (code, report) = probe_json(format!("stratum2+tcp://{garbage}/{key}")).await;
    assert_eq!(code, Some(1));
    let setup = last_step(&report);
    assert_eq!(setup["step"], "setup", "{report:#}");
    let detail = setup["detail"].as_str().unwrap();
    assert!(detail.starts_with("SetupConnection reply: "), "{detail}");
    assert!(
        detail.contains(&format!(
            "received 40 B in this step: 17{}",
            "ee".repeat(31)
        )),
        "{detail}"
    );

    // A well-encrypted frame that is not a message: its plaintext bytes are in the error.
    let undecodable = noise_peer(authority.clone(), |mut conn| async move {
        let _ = conn.recv("setup", Duration::from_secs(5)).await;
        // SetupConnection.Success with a payload 2 bytes short.
        let _ = conn
            .send_frame(&[0, 0, 1, 4, 0, 0, 2, 0, 0, 0], "bad")
            .await;
        tokio::time::sleep(Duration::from_secs(3)).await;
    })
    .await;
    let (code, report) = probe_json(format!("stratum2+tcp://{undecodable}/{key}")).await;
    assert_eq!(code, Some(1));
    let setup = last_step(&report);
    assert_eq!(setup["step"], "setup", "{report:#}");
    let detail = setup["detail"].as_str().unwrap();
    assert!(detail.contains("frame 00000104000002000000"), "{detail}");

    // Setup accepted, then the peer closes instead of answering the channel request.
    let closes = noise_peer(authority.clone(), |mut conn| async move {
        let _ = conn.recv("setup", Duration::from_secs(5)).await;
        let success = SetupConnectionSuccess {
            used_version: 2,
            flags: 0,
        };
        let _ = conn.send(&success.into()).await;
        let _ = conn.recv("open", Duration::from_secs(5)).await;
        conn.shutdown().await;
    })
    .await;
    let (code, report) = probe_json(format!("stratum2+tcp://{closes}/{key}")).await;
    assert_eq!(code, Some(1));
    let channel = last_step(&report);
    assert_eq!(channel["step"], "channel", "{report:#}");
    let detail = channel["detail"].as_str().unwrap();
    assert!(
        detail.contains("channel reply: the peer closed the connection; nothing received"),
        "{detail}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plaintext_pool_is_probed_with_plaintext() {
    let pool = sv2_mock::pool::driver::serve(TcpListener::bind("127.0.0.1:0").await.unwrap(), {
        let mut config =
            sv2_mock::pool::driver::PoolServerConfig::new(Keypair::generate().unwrap()).unwrap();
        config.noise = None;
        config
    })
    .await
    .unwrap();
    let url = format!("stratum2+tcp://{}", pool.addr);

    // Noise against it: the handshake waits out its timeout, and the hint says what to do.
    let (code, report) = probe_json(url.clone()).await;
    assert_eq!(code, Some(1));
    assert!(
        last_step(&report)["detail"]
            .as_str()
            .unwrap()
            .contains("try --plaintext"),
        "{report:#}"
    );

    // --plaintext: every step but the Noise ones passes, a share included.
    let run = probe(vec![
        url.clone(),
        "--plaintext".into(),
        "--hashrate".into(),
        "10000".into(),
        "--json".into(),
    ])
    .await;
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(run.code, Some(0), "{report:#}");
    let statuses: Vec<(String, String)> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["step"].as_str().unwrap().to_owned(),
                s["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("tcp", "pass"),
        ("noise", "skip"),
        ("certificate", "skip"),
        ("setup", "pass"),
        ("channel", "pass"),
        ("first job", "pass"),
        ("coinbase", "pass"),
        ("share", "pass"),
        ("monitor", "pass"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(statuses, expected);

    // --plaintext with a key in the URL is a usage error.
    let key = Keypair::generate().unwrap().public;
    let run = probe(vec![
        format!("stratum2+tcp://{}/{key}", pool.addr),
        "--plaintext".into(),
    ])
    .await;
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("exclude each other"), "{}", run.stderr);
    pool.shutdown();
}

/// A pool that accepts the setup and an extended channel (id 7), then sends `last` instead of a job.
async fn pool_then(authority: Keypair, last: sv2_codec::Message<'static>) -> std::net::SocketAddr {
    noise_peer(authority, move |mut conn| {
        let last = last.clone();
        async move {
            let _ = conn.recv("setup", Duration::from_secs(5)).await;
            let success = SetupConnectionSuccess {
                used_version: 2,
                flags: 0,
            };
            let _ = conn.send(&success.into()).await;
            let Ok(open) = conn.recv("open", Duration::from_secs(5)).await else {
                return;
            };
            let sv2_codec::Message::OpenExtendedMiningChannel(open) = open.message else {
                return;
            };
            let opened = OpenExtendedMiningChannelSuccess {
                request_id: open.request_id,
                channel_id: 7,
                target: U256([0xff; 32]),
                extranonce_size: 8,
                extranonce_prefix: B0_32::new(vec![1, 2, 3, 4]).unwrap(),
                group_channel_id: 0,
            };
            let _ = conn.send(&opened.into()).await;
            let _ = conn.send(&last).await;
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_or_a_reconnect_instead_of_a_job_fails_at_once_with_its_reason() {
    let authority = Keypair::generate().unwrap();
    let key = authority.public;
    let close = CloseChannel {
        channel_id: 7,
        reason_code: Str0_255::new(b"pool-maintenance".to_vec()).unwrap(),
    };
    let closes = pool_then(authority.clone(), close.into()).await;
    let (code, report) = probe_json(format!("stratum2+tcp://{closes}/{key}")).await;
    assert_eq!(code, Some(1));
    let step = last_step(&report);
    assert_eq!(step["step"], "first job", "{report:#}");
    let detail = step["detail"].as_str().unwrap();
    assert!(
        detail.contains(
            "closed the channel before a job: CloseChannel reason_code \"pool-maintenance\""
        ),
        "{detail}"
    );

    let reconnect = Reconnect {
        new_host: Str0_255::new(b"127.0.0.1".to_vec()).unwrap(),
        new_port: 0,
    };
    let redirects = pool_then(authority.clone(), reconnect.into()).await;
    let (code, report) = probe_json(format!("stratum2+tcp://{redirects}/{key}")).await;
    assert_eq!(code, Some(1));
    let step = last_step(&report);
    assert_eq!(step["step"], "first job", "{report:#}");
    let detail = step["detail"].as_str().unwrap();
    assert!(
        detail.contains("Reconnect to 127.0.0.1, current port (not followed)"),
        "{detail}"
    );
}

/// A pool that accepts the setup and refuses the channel with `code`.
async fn pool_refusing(authority: Keypair, code: &'static [u8]) -> std::net::SocketAddr {
    noise_peer(authority, move |mut conn| async move {
        let _ = conn.recv("setup", Duration::from_secs(5)).await;
        let success = SetupConnectionSuccess {
            used_version: 2,
            flags: 0,
        };
        let _ = conn.send(&success.into()).await;
        let Ok(open) = conn.recv("open", Duration::from_secs(5)).await else {
            return;
        };
        let sv2_codec::Message::OpenExtendedMiningChannel(open) = open.message else {
            return;
        };
        let refusal = sv2_codec::messages::mining::OpenMiningChannelError {
            request_id: open.request_id,
            error_code: Str0_255::new(code.to_vec()).unwrap(),
        };
        let _ = conn.send(&refusal.into()).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_refused_for_the_user_suggests_the_user_option() {
    let authority = Keypair::generate().unwrap();
    let key = authority.public;
    let addr = pool_refusing(authority.clone(), b"unknown-user").await;
    let (code, report) = probe_json(format!("stratum2+tcp://{addr}/{key}")).await;
    assert_eq!(code, Some(1));
    let step = last_step(&report);
    assert_eq!(step["step"], "channel", "{report:#}");
    assert_eq!(
        step["detail"].as_str().unwrap(),
        "OpenMiningChannel.Error \"unknown-user\" (the pool refuses the user_identity \"sv2-probe\": \
         give the one it expects with --user, e.g. an account or a payout address)"
    );

    // A refusal for another reason: no such hint.
    let addr = pool_refusing(authority, b"max-channels-reached").await;
    let (_, report) = probe_json(format!("stratum2+tcp://{addr}/{key}")).await;
    assert_eq!(
        last_step(&report)["detail"].as_str().unwrap(),
        "OpenMiningChannel.Error \"max-channels-reached\""
    );
}
