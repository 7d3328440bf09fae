//! Network fuzzing of clients (`sv2-probe fuzz --listen`): our SV2 device, started afresh by the
//! fuzzer whenever its run ends, survives a campaign that reaches every state; and each oracle fires
//! on a client broken its way (one that panics on an unreadable frame, one that mines a job it
//! could not read, one that stops working after one), with a finding that replays.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sv2_codec::frame::Frame;
use sv2_codec::messages::common::SetupConnection;
use sv2_codec::messages::mining::{OpenStandardMiningChannel, SubmitSharesStandard};
use sv2_codec::noise::keys::{Keypair, Sv2Url};
use sv2_codec::types::{Str0_255, U256};
use sv2_codec::{decode_frame, Message};
use sv2_mock::miner::driver::{spawn, DeviceDriverConfig, DeviceHandle};
use sv2_scenario::fuzz::campaign::Finding;
use sv2_scenario::fuzz::client::{ClientRole, ClientState};
use sv2_scenario::fuzz::listen::{run, ListenConfig};
use sv2_scenario::fuzz::{Class, Report};
use sv2_scenario::launch::{BoxFuture, Endpoint, Launched, Launcher};
use sv2_wire::{Connection, KeyLog, NetError};
use tokio::net::{TcpListener, TcpStream};

fn quiet() -> sv2_scenario::fuzz::campaign::Progress {
    Arc::new(|_: &Report| {})
}

struct Device(DeviceHandle);

impl Launched for Device {
    fn exited(&mut self) -> Option<(bool, String)> {
        self.0
            .is_finished()
            .then(|| (false, "the device's run ended".to_string()))
    }

    fn stop(self: Box<Self>) -> BoxFuture<String> {
        Box::pin(async move { format!("{:?}", self.0.stop().await.outcome) })
    }
}

fn device() -> Launcher {
    Launcher::InProcess(Arc::new(|endpoint: &Endpoint| {
        let url: Sv2Url = endpoint.url.parse().expect("the fuzzer's URL");
        let mut config = DeviceDriverConfig::new(url.host_port(), url.authority_key);
        config.max_shares_per_second = 50;
        config.timeouts.connect = Duration::from_secs(3);
        Box::new(Device(spawn(config))) as Box<dyn Launched>
    }))
}

async fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.unwrap()
}

fn config(launcher: Launcher, seed: u64, cases: u64) -> ListenConfig {
    let mut config = ListenConfig::new(ClientRole::Mining, launcher);
    config.seed = seed;
    config.cases = Some(cases);
    config.wait = Duration::from_millis(1000);
    config.connect_wait = Duration::from_secs(5);
    config.authority = Some(Keypair::generate().unwrap());
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_device_survives_a_campaign_that_reaches_every_state() {
    let report = run(listener().await, &config(device(), 11, 60), quiet()).await;
    println!("{}", report.text());
    assert_eq!(report.cases, 60, "{}", report.text());
    assert!(report.findings.is_empty(), "{}", report.text());
    assert!(
        report.notes.iter().any(|n| n.contains("submitted a share")),
        "the control case saw the device mine: {:?}",
        report.notes
    );
    for state in [ClientState::Setup, ClientState::Open, ClientState::Jobs] {
        let r = report.states.get(state.name()).copied().unwrap_or_default();
        assert!(
            r.tried > 0 && r.reached == r.tried,
            "{}: {r:?}",
            state.name()
        );
    }
}

/// How a test client is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Broken {
    /// It dies (as a panic would) on the first frame it cannot decode.
    PanicsOnUnreadable,
    /// It reads a NewMiningJob's id from its bytes even when the frame does not decode, and mines
    /// it.
    MinesUnreadableJobs,
    /// After a frame it cannot decode it keeps its connection open and does nothing more.
    StallsOnUnreadable,
    /// It dies (as a panic would) whenever its connection is closed, and never otherwise.
    PanicsOnClose,
}

struct Fake {
    task: tokio::task::JoinHandle<()>,
    crashed: Arc<AtomicBool>,
}

impl Launched for Fake {
    fn exited(&mut self) -> Option<(bool, String)> {
        if self.crashed.load(Ordering::SeqCst) {
            return Some((true, "exit status 101 (a Rust panic)".into()));
        }
        self.task
            .is_finished()
            .then(|| (false, "exit status 0".to_string()))
    }

    fn stop(self: Box<Self>) -> BoxFuture<String> {
        self.task.abort();
        Box::pin(async { "stopped".to_string() })
    }
}

fn text(s: &str) -> Str0_255<'static> {
    Str0_255::new(s.as_bytes().to_vec()).unwrap()
}

/// A client that sets up, opens a standard channel, and submits a share on every job it is given
/// (a job whose frame does not decode is handled as `broken` says).
async fn fake_client(endpoint: Endpoint, broken: Broken, crashed: Arc<AtomicBool>) {
    let url: Sv2Url = endpoint.url.parse().unwrap();
    let Ok(stream) = TcpStream::connect(url.host_port()).await else {
        return;
    };
    let Ok(mut conn) = Connection::initiate_or_plain(
        stream,
        Some(url.authority_key),
        Duration::from_secs(2),
        &KeyLog::none(),
    )
    .await
    else {
        return;
    };
    let setup: Message = SetupConnection {
        protocol: 0,
        min_version: 2,
        max_version: 2,
        flags: 0,
        endpoint_host: text("127.0.0.1"),
        endpoint_port: 1,
        vendor: text("broken"),
        hardware_version: text(""),
        firmware: text(""),
        device_id: text(""),
    }
    .into();
    let _ = conn.send(&setup).await;
    let mut stalled = false;
    let mut sequence = 0;
    loop {
        let frame = match conn.recv_frame("fake", Duration::from_secs(30)).await {
            Ok(f) => f,
            Err(NetError::Timeout { .. }) => continue,
            Err(NetError::Closed { .. }) if broken == Broken::PanicsOnClose => {
                crashed.store(true, Ordering::SeqCst);
                return;
            }
            Err(_) => return,
        };
        if stalled {
            continue;
        }
        let decoded = Frame::parse(&frame)
            .ok()
            .and_then(|(f, _)| decode_frame(&f).ok().map(|d| d.message.into_static()));
        let job = match decoded {
            Some(Message::SetupConnectionSuccess(_)) => {
                let open: Message = OpenStandardMiningChannel {
                    request_id: 1,
                    user_identity: text("broken"),
                    nominal_hash_rate: 1e6,
                    max_target: U256([0xff; 32]),
                }
                .into();
                let _ = conn.send(&open).await;
                None
            }
            Some(Message::NewMiningJob(j)) => Some(j.job_id),
            Some(_) => None,
            None => match broken {
                Broken::PanicsOnUnreadable => {
                    crashed.store(true, Ordering::SeqCst);
                    return;
                }
                Broken::StallsOnUnreadable => {
                    stalled = true;
                    None
                }
                // NewMiningJob's type, and its job id after the channel id.
                Broken::MinesUnreadableJobs if frame.len() >= 14 && frame[2] == 0x15 => {
                    Some(u32::from_le_bytes(frame[10..14].try_into().unwrap()))
                }
                Broken::MinesUnreadableJobs | Broken::PanicsOnClose => None,
            },
        };
        if let Some(job_id) = job {
            sequence += 1;
            let share: Message = SubmitSharesStandard {
                channel_id: 7,
                sequence_number: sequence,
                job_id,
                nonce: 1,
                ntime: 1_767_225_600,
                version: 0x2000_0000,
            }
            .into();
            let _ = conn.send(&share).await;
        }
    }
}

fn fake(broken: Broken) -> Launcher {
    Launcher::InProcess(Arc::new(move |endpoint: &Endpoint| {
        let crashed = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(fake_client(endpoint.clone(), broken, crashed.clone()));
        Box::new(Fake { task, crashed }) as Box<dyn Launched>
    }))
}

async fn finds(broken: Broken, class: Class, seed: u64) -> (Report, Finding) {
    let out = std::env::temp_dir().join(format!(
        "sv2-fuzz-client-{:?}-{}",
        broken,
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&out);
    let mut config = config(fake(broken), seed, 300);
    config.out = Some(out);
    config.max_findings = Some(1);
    let report = run(listener().await, &config, quiet()).await;
    println!("{}", report.text());
    let finding = report
        .findings
        .iter()
        .find(|f| f.class == class)
        .unwrap_or_else(|| panic!("no {class:?} finding: {}", report.text()))
        .clone();
    (report, finding)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_panics_on_an_unreadable_frame_is_a_crash_that_replays() {
    let (report, finding) = finds(Broken::PanicsOnUnreadable, Class::Crash, 3).await;
    assert!(
        report.stopped.starts_with("crash at case"),
        "{}",
        report.stopped
    );
    assert!(finding.detail.contains("panic"), "{}", finding.detail);
    let file = finding.file.expect("a scenario file");
    let script =
        sv2_scenario::script::Script::from_toml(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert!(matches!(
        script.steps.last(),
        Some(sv2_scenario::script::Step::ExpectAlive { .. })
    ));
    assert!(std::path::Path::new(&file)
        .with_file_name("case.pcapng")
        .exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_mining_a_job_it_could_not_read_is_accepted_invalid() {
    let (_, finding) = finds(Broken::MinesUnreadableJobs, Class::AcceptedInvalid, 5).await;
    assert!(finding.reproduced, "{finding:?}");
    assert!(finding.detail.contains("forbidden"), "{}", finding.detail);
    assert_eq!(finding.state, ClientState::Jobs.name());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_working_after_an_unreadable_frame_is_a_hang() {
    let (_, finding) = finds(Broken::StallsOnUnreadable, Class::Hang, 9).await;
    assert!(finding.reproduced, "{finding:?}");
    assert!(finding.minimized_steps <= finding.steps);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_crash_the_campaign_goes_on_with_a_fresh_client() {
    let mut config = config(fake(Broken::PanicsOnUnreadable), 3, 300);
    config.stop_on_crash = false;
    config.minimize = false;
    config.max_findings = Some(2);
    let report = run(listener().await, &config, quiet()).await;
    println!("{}", report.text());
    let crashes: Vec<u64> = report
        .findings
        .iter()
        .filter(|f| f.class == Class::Crash)
        .map(|f| f.case)
        .collect();
    assert_eq!(crashes.len(), 2, "{}", report.text());
    assert_ne!(crashes[0], crashes[1], "the same crash reported twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_ends_before_connecting_stops_the_campaign() {
    let config = config(Launcher::Command("exit 3".into()), 3, 10);
    let report = tokio::time::timeout(
        Duration::from_secs(30),
        run(listener().await, &config, quiet()),
    )
    .await
    .expect("the campaign stops by itself");
    assert_eq!(report.cases, 0);
    assert!(
        report.stopped.contains("ended 3 times without connecting"),
        "{}",
        report.stopped
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_crashes_at_every_close_is_said_once_not_blamed_on_each_case() {
    let report = run(
        listener().await,
        &config(fake(Broken::PanicsOnClose), 4, 25),
        quiet(),
    )
    .await;
    println!("{}", report.text());
    assert_eq!(report.cases, 25, "{}", report.text());
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("crashed when the fuzzer closed")),
        "{:?}",
        report.notes
    );
    assert!(report.findings.is_empty(), "{}", report.text());
}
