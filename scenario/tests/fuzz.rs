//! Network fuzzing: a campaign against our mock pool (which must survive it, every state reached,
//! every family of mutation used), and each oracle shown firing on a server broken its way, with a
//! finding that replays from its scenario file.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sv2_codec::messages::common::SetupConnectionSuccess;
use sv2_codec::messages::mining::{NewMiningJob, OpenStandardMiningChannelSuccess, SetNewPrevHash};
use sv2_codec::noise::keys::Keypair;
use sv2_codec::types::{B0_32, U256};
use sv2_codec::Message;
use sv2_mock::pool::driver::{serve, PoolServerConfig};
use sv2_scenario::fuzz::{self, Class, Config, Report, Role, Target};
use sv2_scenario::launch::{BoxFuture, Endpoint, Launched, Launcher};
use sv2_scenario::script::{play_checked, Script, TargetAlive};
use sv2_wire::{Connection, NetError, Side};
use tokio::net::{TcpListener, TcpStream};

fn quiet() -> fuzz::campaign::Progress {
    Arc::new(|_: &Report| {})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mock_pool_survives_a_campaign_that_reaches_every_state() {
    let authority = Keypair::generate().unwrap();
    let public = authority.public;
    let pool = serve(
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        PoolServerConfig::new(authority).unwrap(),
    )
    .await
    .unwrap();
    let out = std::env::temp_dir().join(format!("sv2-fuzz-mock-{}", std::process::id()));
    let mut config = Config::new(Target {
        addr: pool.addr,
        noise: Some(Some(public)),
    });
    config.seed = 7;
    config.cases = Some(160);
    config.jobs = 2;
    config.wait = Duration::from_millis(1500);
    config.out = Some(out.clone());
    config.pid = Some(std::process::id());
    let report = fuzz::run(&config, quiet()).await;
    println!("{}", report.text());
    assert_eq!(report.cases, 160);
    assert!(report.findings.is_empty(), "{}", report.text());
    for state in Role::Mining.states() {
        let r = report.states.get(state.name()).copied().unwrap_or_default();
        assert!(
            r.tried > 0 && r.reached == r.tried,
            "{}: {r:?}",
            state.name()
        );
    }
    for family in fuzz::mutate::Family::ALL {
        assert!(report.families.get(family.name()).is_some_and(|n| *n > 0));
    }
    // The report on disk reads back, and merges with itself.
    let text = std::fs::read_to_string(out.join("report.json")).unwrap();
    let back: Report = serde_json::from_str(&text).unwrap();
    assert_eq!(back.cases, 160);
    assert_eq!(Report::merge(&[back.clone(), back]).cases, 320);
    let _ = std::fs::remove_dir_all(out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mock_template_provider_survives_a_campaign_that_reaches_every_state() {
    let authority = Keypair::generate().unwrap();
    let public = authority.public;
    let tp = sv2_mock::tp::driver::serve(
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        sv2_mock::tp::driver::TpServerConfig::new(authority).unwrap(),
    )
    .unwrap();
    let mut config = Config::new(Target {
        addr: tp.addr,
        noise: Some(Some(public)),
    });
    config.role = Role::TemplateProvider;
    config.seed = 9;
    config.cases = Some(120);
    config.jobs = 2;
    config.wait = Duration::from_millis(1500);
    let report = fuzz::run(&config, quiet()).await;
    println!("{}", report.text());
    assert!(report.findings.is_empty(), "{}", report.text());
    for state in Role::TemplateProvider.states() {
        let r = report.states.get(state.name()).copied().unwrap_or_default();
        assert!(
            r.tried > 0 && r.reached == r.tried,
            "{}: {r:?}",
            state.name()
        );
    }
}

/// How the scripted server below is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Broken {
    /// A frame it cannot decode stops it: no more connections are served.
    DiesOnGarbage,
    /// A frame it cannot decode stops it once this connection is done: the connection itself
    /// goes on answering.
    DiesAfterGarbage,
    /// A frame it cannot decode wedges that connection: no answer, no close.
    WedgesOnGarbage,
    /// An OpenStandardMiningChannel it cannot decode is answered with .Success anyway (the
    /// request id read from the first four bytes).
    AcceptsAnything,
}

/// A plaintext Mining server that sets up, opens channels (with a job and a prev hash), and is
/// broken as `broken` says.
async fn broken_server(broken: Broken) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve_broken(
        listener,
        broken,
        Arc::new(AtomicBool::new(false)),
    ));
    addr
}

/// Serves on `listener` until `dead` (set by a broken connection) says the server is gone.
async fn serve_broken(listener: TcpListener, broken: Broken, dead: Arc<AtomicBool>) {
    {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            if dead.load(Ordering::SeqCst) {
                // Gone: the listener is dropped, new connections are refused.
                return;
            }
            let dead = dead.clone();
            tokio::spawn(serve_one(stream, broken, dead));
        }
    }
}

async fn serve_one(stream: TcpStream, broken: Broken, dead: Arc<AtomicBool>) {
    let mut conn = Connection::plaintext(stream, Side::Server);
    let mut next_channel = 1;
    loop {
        let message = match conn.recv("read", Duration::from_secs(30)).await {
            Ok(d) => d.message,
            Err(NetError::Decode { frame, .. }) => match broken {
                Broken::DiesOnGarbage => {
                    dead.store(true, Ordering::SeqCst);
                    return;
                }
                Broken::DiesAfterGarbage => {
                    dead.store(true, Ordering::SeqCst);
                    continue;
                }
                Broken::WedgesOnGarbage => {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    return;
                }
                Broken::AcceptsAnything => {
                    if frame.len() >= 10 && frame[2] == 0x10 {
                        let request_id = u32::from_le_bytes(frame[6..10].try_into().unwrap());
                        let ok: Message<'static> = OpenStandardMiningChannelSuccess {
                            request_id,
                            channel_id: 99,
                            target: U256([0xff; 32]),
                            extranonce_prefix: B0_32::new(vec![0; 4]).unwrap(),
                            group_channel_id: 0,
                        }
                        .into();
                        let _ = conn.send(&ok).await;
                    }
                    continue;
                }
            },
            Err(_) => return,
        };
        let answers: Vec<Message<'static>> = match message {
            Message::SetupConnection(_) => vec![SetupConnectionSuccess {
                used_version: 2,
                flags: 0,
            }
            .into()],
            Message::OpenStandardMiningChannel(o) => {
                let channel_id = next_channel;
                next_channel += 1;
                vec![
                    OpenStandardMiningChannelSuccess {
                        request_id: o.request_id,
                        channel_id,
                        target: U256([0xff; 32]),
                        extranonce_prefix: B0_32::new(vec![0, 0, 0, channel_id as u8]).unwrap(),
                        group_channel_id: 0,
                    }
                    .into(),
                    NewMiningJob {
                        channel_id,
                        job_id: 1,
                        min_ntime: None,
                        version: 0x2000_0000,
                        merkle_root: U256([1; 32]),
                    }
                    .into(),
                    SetNewPrevHash {
                        channel_id,
                        job_id: 1,
                        prev_hash: U256([2; 32]),
                        min_ntime: 1_700_000_000,
                        nbits: 0x1d00_ffff,
                    }
                    .into(),
                ]
            }
            // Anything else is ignored.
            _ => Vec::new(),
        };
        for a in answers {
            if conn.send(&a).await.is_err() {
                return;
            }
        }
    }
}

/// Runs a campaign on the broken server until the first finding of `class`; returns it with the
/// report. Cases that reach only the states this server has (connected, set up, a standard
/// channel) and mutate so that a frame cannot be decoded are enough for each.
async fn finds(broken: Broken, class: Class) -> (Report, fuzz::campaign::Finding) {
    let addr = broken_server(broken).await;
    let out = std::env::temp_dir().join(format!("sv2-fuzz-{broken:?}-{}", std::process::id()));
    let mut config = Config::new(Target { addr, noise: None });
    config.seed = 3;
    config.cases = Some(300);
    config.wait = Duration::from_millis(400);
    config.out = Some(out);
    config.max_findings = Some(1);
    let report = fuzz::run(&config, quiet()).await;
    let finding = report
        .findings
        .iter()
        .find(|f| f.class == class)
        .cloned()
        .unwrap_or_else(|| panic!("no {class:?} finding: {}", report.text()));
    (report, finding)
}

/// The finding's file replays it: on the same broken server kind, played as `scenario run` does.
async fn replays(file: &str, broken: Broken) -> sv2_scenario::Ended {
    let script = Script::from_toml(&std::fs::read_to_string(file).unwrap()).unwrap();
    assert!(script.finding.contains_key("class"));
    let addr = broken_server(broken).await;
    let stream = TcpStream::connect(addr).await.unwrap();
    let mut conn = Connection::plaintext(stream, Side::Client);
    play_checked(&mut conn, &script, &TargetAlive { addr, noise: None }).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_dies_on_garbage_is_a_crash_and_the_campaign_stops() {
    let (report, finding) = finds(Broken::DiesOnGarbage, Class::Crash).await;
    assert!(report.stopped.contains("crash"), "{}", report.stopped);
    assert!(report.cases < 300);
    let file = finding.file.expect("written");
    assert!(matches!(
        replays(&file, Broken::DiesOnGarbage).await,
        sv2_scenario::Ended::Failed { .. }
    ));
    // The same file passes on a server that is not broken this way.
    assert_eq!(
        replays(&file, Broken::AcceptsAnything).await,
        sv2_scenario::Ended::Done
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_answers_then_dies_is_found_by_the_next_case() {
    let (report, finding) = finds(Broken::DiesAfterGarbage, Class::Crash).await;
    println!("{}", report.text());
    assert!(report.stopped.contains("crash"), "{}", report.stopped);
    assert!(
        finding.detail.starts_with("before the case"),
        "{}",
        finding.detail
    );
    // The file is the case before: it replays on a fresh server of the kind.
    let file = finding.file.expect("written");
    assert!(matches!(
        replays(&file, Broken::DiesAfterGarbage).await,
        sv2_scenario::Ended::Failed { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_wedged_by_garbage_is_a_hang_minimised_and_replayable() {
    let (_, finding) = finds(Broken::WedgesOnGarbage, Class::Hang).await;
    assert!(finding.reproduced, "{finding:?}");
    assert!(finding.minimized_steps <= finding.steps);
    let file = finding.file.expect("written");
    assert!(matches!(
        replays(&file, Broken::WedgesOnGarbage).await,
        sv2_scenario::Ended::Failed { .. }
    ));
    assert_eq!(
        replays(&file, Broken::DiesOnGarbage).await,
        sv2_scenario::Ended::Done,
        "a server that closes passes the hang oracle"
    );
    let dir = std::path::Path::new(&file).parent().unwrap();
    assert!(dir.join("transcript.json").exists());
    assert!(dir.join("case.pcapng").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_acting_on_an_unreadable_request_is_accepted_invalid() {
    let (_, finding) = finds(Broken::AcceptsAnything, Class::AcceptedInvalid).await;
    assert!(finding.reproduced, "{finding:?}");
    let file = finding.file.expect("written");
    assert!(matches!(
        replays(&file, Broken::AcceptsAnything).await,
        sv2_scenario::Ended::Failed { .. }
    ));
}

/// A broken server the campaign starts (as `--spawn` would), on the target's port.
struct Started {
    task: tokio::task::JoinHandle<()>,
    dead: Arc<AtomicBool>,
}

impl Launched for Started {
    fn exited(&mut self) -> Option<(bool, String)> {
        self.dead
            .load(Ordering::SeqCst)
            .then(|| (true, "killed by signal 11".to_string()))
    }

    fn stop(self: Box<Self>) -> BoxFuture<String> {
        self.task.abort();
        Box::pin(async { "stopped".to_string() })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_the_campaign_started_is_started_again_after_each_crash() {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let starts = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = starts.clone();
    let launcher = Launcher::InProcess(Arc::new(move |endpoint: &Endpoint| {
        assert_eq!(endpoint.port, addr.port());
        counted.fetch_add(1, Ordering::SeqCst);
        let listener = std::net::TcpListener::bind(addr).unwrap();
        listener.set_nonblocking(true).unwrap();
        let dead = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(serve_broken(
            TcpListener::from_std(listener).unwrap(),
            Broken::DiesOnGarbage,
            dead.clone(),
        ));
        Box::new(Started { task, dead }) as Box<dyn Launched>
    }));
    let mut config = Config::new(Target { addr, noise: None });
    config.seed = 3;
    config.cases = Some(400);
    config.jobs = 2;
    config.wait = Duration::from_millis(400);
    config.max_findings = Some(3);
    config.stop_on_crash = false;
    config.launcher = launcher;
    let report = fuzz::run(&config, quiet()).await;
    println!("{}", report.text());
    assert_eq!(
        report.by_class().get("crash"),
        Some(&3),
        "{}",
        report.text()
    );
    assert!(
        report
            .findings
            .iter()
            .all(|f| f.detail.contains("signal 11")
                || f.detail.contains("no answer")
                || f.detail.contains("fresh connection")),
        "{}",
        report.text()
    );
    // Once at the start, and after each of the first two crashes (the third ends the campaign).
    assert_eq!(starts.load(Ordering::SeqCst), 3, "{}", report.text());
}
