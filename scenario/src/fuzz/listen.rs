//! The campaign against a client (`sv2-probe fuzz --listen ADDR`): the fuzzer listens, the client
//! under test connects (started by the fuzzer with `--spawn`, or running by itself and
//! reconnecting), and each of its connections is one case ([`super::client`]).
//!
//! A control case comes first, with valid traffic only: it learns which channel the client opens,
//! whether it sends CoinbaseOutputConstraints, and whether it answers work (a share on a fresh
//! job, a request for a fresh template's transactions); the hang and accepted-invalid oracles are
//! used only where it does. A client that ends when its connection is closed (a device, most
//! proxies) is started again for the next case; one that crashes (a signal, a Rust panic) while
//! its connection is open is a crash; one that neither comes back nor ends is a hang. Findings are
//! replayed on a fresh connection of a fresh client, minimised, and written as scenario files.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use sv2_codec::noise::keys::{Keypair, SecretKey};
use sv2_codec::noise::ResponderConfig;
use sv2_wire::{unix_now, Connection, KeyLog, Side, Transcript};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::campaign::{class_of, finding_file, rss_kib, Class, Finding, Progress, Report};
use super::client::{self, Channel, ClientPlan, ClientRole, ClientState, Profile};
use super::mutate::Family;
use crate::engine::describe;
use crate::launch::{Endpoint, Launched, LaunchedAlive, Launcher};
use crate::script::{Ended, Player, Script, Step};

/// A campaign against a client.
#[derive(Debug, Clone)]
pub struct ListenConfig {
    pub role: ClientRole,
    pub seed: u64,
    pub first_case: u64,
    pub cases: Option<u64>,
    pub duration: Option<Duration>,
    /// How long a step waits for the client.
    pub wait: Duration,
    /// How long the fuzzer waits for the client's next connection (its start or reconnection).
    pub connect_wait: Duration,
    /// The authority that signs the fuzzer's certificates (None: plaintext).
    pub authority: Option<Keypair>,
    /// How the client comes: started by the fuzzer, or by itself.
    pub launcher: Launcher,
    /// The client's process when it runs by itself: its exit is a crash, its memory is watched.
    pub pid: Option<u32>,
    pub max_rss_growth_kib: u64,
    pub out: Option<PathBuf>,
    pub minimize: bool,
    pub stop_on_crash: bool,
    pub max_findings: Option<usize>,
    pub families: Vec<Family>,
}

impl ListenConfig {
    pub fn new(role: ClientRole, launcher: Launcher) -> Self {
        ListenConfig {
            role,
            seed: 1,
            first_case: 0,
            cases: None,
            duration: None,
            wait: super::case::DEFAULT_WAIT,
            connect_wait: Duration::from_secs(15),
            authority: None,
            launcher,
            pid: None,
            max_rss_growth_kib: 256 * 1024,
            out: None,
            minimize: true,
            stop_on_crash: true,
            max_findings: None,
            families: Vec::new(),
        }
    }
}

/// Why no connection came.
enum Gone {
    /// The client's process crashed (a signal, a panic): how.
    Crashed(String),
    /// The client's process, known only by `--pid`, exited (how, nobody knows).
    Exited(String),
    /// No connection came: why. Not the previous case's doing for certain (a client may back off,
    /// a fresh process may fail to start): the campaign stops and says so.
    Silent(String),
}

/// The client under test: its process (when the fuzzer started it) and its connections.
struct Client {
    launcher: Launcher,
    endpoint: Endpoint,
    launched: Arc<Mutex<Option<Box<dyn Launched>>>>,
    incoming: mpsc::Receiver<TcpStream>,
    pid: Option<u32>,
    starts: u64,
    /// The client crashes whenever its connection is closed (the control case showed it): such an
    /// end, between cases, is not a finding.
    crashes_on_close: bool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Client {
    /// `expect_alive`: the started client has not crashed. (A process known only by `--pid`
    /// may exit for good reasons, after a valid SetupConnection.Error or CloseChannel: its exit
    /// stops the campaign, it is not a crash.)
    fn alive(&self) -> LaunchedAlive {
        LaunchedAlive {
            launched: self.launched.clone(),
            pid: None,
        }
    }

    fn knows_process(&self) -> bool {
        self.launcher.starts_clients()
    }

    /// The process of the client the fuzzer started, when it is one.
    fn pid(&self) -> Option<u32> {
        lock(&self.launched).as_ref().and_then(|l| l.pid())
    }

    /// How the started client ended, if it did: (crashed, how).
    fn exited(&self) -> Option<(bool, String)> {
        lock(&self.launched).as_mut().and_then(|l| l.exited())
    }

    async fn stop(&mut self) {
        let launched = lock(&self.launched).take();
        if let Some(l) = launched {
            let _ = l.stop().await;
        }
    }

    async fn start(&mut self) -> Result<(), String> {
        self.stop().await;
        // Connections of the client just stopped are not the new one's.
        while self.incoming.try_recv().is_ok() {}
        let launched = self.launcher.start(&self.endpoint).await?;
        if launched.is_some() {
            self.starts += 1;
        }
        *lock(&self.launched) = launched;
        Ok(())
    }

    /// The client's next connection: a started client that ended cleanly is started again; one
    /// that crashed, or a client that does not come within `wait` (started again once), is gone.
    async fn next(&mut self, wait: Duration, fresh: bool) -> Result<TcpStream, Gone> {
        if fresh && self.launcher.starts_clients() {
            self.start().await.map_err(Gone::Silent)?;
        }
        let mut deadline = tokio::time::Instant::now() + wait;
        let mut restarted = false;
        let mut ended = 0;
        loop {
            if self.launcher.starts_clients() && lock(&self.launched).is_none() {
                self.start().await.map_err(Gone::Silent)?;
            }
            if let Some((crashed, how)) = self.exited() {
                // Stopped (its process group too), so that the next call starts a new one.
                self.stop().await;
                if crashed && !self.crashes_on_close {
                    return Err(Gone::Crashed(how));
                }
                // It ended by itself (when its connection closed): a new one for the next case,
                // unless it keeps ending before it connects.
                ended += 1;
                if ended >= 3 {
                    return Err(Gone::Silent(format!(
                        "the client ended {ended} times without connecting; last: {how}"
                    )));
                }
                continue;
            }
            if super::campaign::process_gone(self.pid) {
                return Err(Gone::Exited(format!(
                    "the client's process {} exited",
                    self.pid.unwrap_or_default()
                )));
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                if self.launcher.starts_clients() && !restarted {
                    restarted = true;
                    self.stop().await;
                    deadline = tokio::time::Instant::now() + wait;
                    continue;
                }
                return Err(Gone::Silent(format!(
                    "the client did not connect within {wait:?}{}",
                    if restarted { ", started again" } else { "" }
                )));
            }
            match tokio::time::timeout(left.min(Duration::from_millis(100)), self.incoming.recv())
                .await
            {
                Ok(Some(stream)) => {
                    let _ = stream.set_nodelay(true);
                    return Ok(stream);
                }
                Ok(None) => return Err(Gone::Silent("the listener stopped".into())),
                Err(_) => {}
            }
        }
    }
}

async fn handshake(
    stream: TcpStream,
    authority: &Option<Keypair>,
    wait: Duration,
) -> Result<Connection<TcpStream>, String> {
    let mut conn = match authority {
        None => Connection::plaintext(stream, Side::Server),
        Some(authority) => {
            let key = SecretKey::generate().map_err(|e| e.to_string())?;
            let now = unix_now();
            let config = ResponderConfig::issue(
                &key,
                authority,
                now.saturating_sub(60),
                now.saturating_add(24 * 3600),
            );
            Connection::respond(stream, config, wait, &KeyLog::none())
                .await
                .map_err(|e| format!("handshake: {}", e.brief()))?
        }
    };
    conn.record_endpoints();
    Ok(conn)
}

/// The control case: valid traffic to the deepest state, then the follow-up; what the client did.
async fn control(
    client: &mut Client,
    config: &ListenConfig,
    notes: &mut Vec<String>,
) -> Result<Profile, String> {
    let stream = client
        .next(config.connect_wait, false)
        .await
        .map_err(|g| match g {
            Gone::Crashed(s) | Gone::Exited(s) | Gone::Silent(s) => s,
        })?;
    let mut conn = handshake(stream, &config.authority, config.wait).await?;
    let mut profile = Profile::default();
    let wait = config.wait;
    let mut player = Player::default();
    let setup = client::prefix(config.role, ClientState::Setup, &profile, wait);
    if let Ended::Failed { observed, .. } = player.play(&mut conn, &setup, &NoProcess).await {
        return Err(format!("no SetupConnection: {observed}"));
    }
    // REQUIRES_STANDARD_JOBS (bit 0 of the Mining protocol's flags).
    profile.standard_jobs_only = config.role == ClientRole::Mining
        && player
            .saved
            .get("setup_flags")
            .and_then(Value::as_u64)
            .is_some_and(|f| f & 1 != 0);
    // The setup answer.
    let answer = client::prefix(config.role, ClientState::Open, &profile, wait);
    let _ = player
        .play(&mut conn, &answer[setup.len()..setup.len() + 1], &NoProcess)
        .await;
    match config.role {
        ClientRole::Mining => {
            let deadline = tokio::time::Instant::now() + wait * 2;
            while profile.channel.is_none() {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                let Ok(frame) = conn.recv_frame("fuzz control", left).await else {
                    break;
                };
                match describe(&frame) {
                    Some((name, value)) if name == Channel::Standard.request() => {
                        profile.channel = Some(Channel::Standard);
                        player.saved.insert("request".into(), request_id(&value));
                    }
                    Some((name, value)) if name == Channel::Extended.request() => {
                        profile.channel = Some(Channel::Extended);
                        player.saved.insert("request".into(), request_id(&value));
                    }
                    _ => {}
                }
            }
            let Some(channel) = profile.channel else {
                notes.push(format!(
                    "the client opened no channel within {:?} of its setup: only its setup is fuzzed",
                    wait * 2
                ));
                closed_cleanly(client, &mut conn, &mut profile, notes).await;
                return Ok(profile);
            };
            let jobs = client::prefix(config.role, ClientState::Jobs, &profile, wait);
            // The open's answer, the job and the prev hash: after the request the prefix awaits,
            // which was read above.
            let after = jobs
                .iter()
                .position(
                    |s| matches!(s, Step::Expect { message, .. } if message == channel.request()),
                )
                .map_or(jobs.len(), |i| i + 1);
            let rest = &jobs[after..];
            let follow = client::control_follow_up(config.role, Some(channel), wait);
            let mut steps = rest.to_vec();
            steps.extend(follow);
            profile.mines = player.play(&mut conn, &steps, &NoProcess).await == Ended::Done;
            notes.push(format!(
                "the client opens {} channel; it {} the follow-up job within {:?}{}",
                match channel {
                    Channel::Standard => "a standard",
                    Channel::Extended => "an extended",
                },
                if profile.mines {
                    "submitted a share on"
                } else {
                    "did not submit a share on"
                },
                wait * 2,
                if profile.mines {
                    ": the hang and accepted-invalid oracles are on"
                } else {
                    ": only the crash (and leak) oracles judge its cases"
                }
            ));
        }
        ClientRole::TemplateClient => {
            profile.sends_constraints = player
                .play(
                    &mut conn,
                    &[Step::Expect {
                        message: "CoinbaseOutputConstraints".into(),
                        fields: Default::default(),
                        within: wait,
                        next: false,
                        save: Default::default(),
                    }],
                    &NoProcess,
                )
                .await
                == Ended::Done;
            let templates = client::prefix(config.role, ClientState::Templates, &profile, wait);
            let sends: Vec<Step> = templates
                .iter()
                .skip(2)
                .filter(|s| matches!(s, Step::Send(_)))
                .cloned()
                .collect();
            let mut steps = sends;
            steps.extend(client::control_follow_up(config.role, None, wait));
            profile.requests_transactions =
                player.play(&mut conn, &steps, &NoProcess).await == Ended::Done;
            notes.push(format!(
                "the client {} CoinbaseOutputConstraints; it {} the transactions of a fresh template{}",
                if profile.sends_constraints { "sent" } else { "did not send" },
                if profile.requests_transactions { "asked for" } else { "did not ask for" },
                if profile.requests_transactions {
                    ": the hang and accepted-invalid oracles are on"
                } else {
                    ": only the crash (and leak) oracles judge its cases"
                }
            ));
        }
    }
    closed_cleanly(client, &mut conn, &mut profile, notes).await;
    Ok(profile)
}

/// Closes the control case's connection and sees whether the client crashes at a close after
/// valid traffic alone: then a crash at a case's close is not the case's doing.
async fn closed_cleanly(
    client: &mut Client,
    conn: &mut Connection<TcpStream>,
    profile: &mut Profile,
    notes: &mut Vec<String>,
) {
    conn.close(Duration::from_millis(100)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    if let Some((true, how)) = client.exited() {
        profile.crashes_on_close = true;
        notes.push(format!(
            "the client crashed when the fuzzer closed its connection after valid traffic alone \
             (the control case): {how}; a crash at a case's close is not counted, only one while \
             its connection is open"
        ));
    }
}

fn request_id(value: &Value) -> Value {
    value.get("request_id").cloned().unwrap_or(Value::Null)
}

/// `expect_alive` where the fuzzer does not know the client's process (never written then).
struct NoProcess;

impl crate::script::Alive for NoProcess {
    fn check(
        &self,
        _: Duration,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + '_>> {
        Box::pin(async { Ok(()) })
    }
}

/// What one case came to.
enum Outcome {
    NotReached(String),
    Clean,
    /// The campaign cannot go on: why.
    Stop(String),
    Found(Box<Found>),
}

struct Found {
    class: Class,
    detail: String,
    script: Script,
    transcript: Transcript,
}

fn case_script(config: &ListenConfig, plan: &ClientPlan, what: &str, steps: Vec<Step>) -> Script {
    Script {
        name: format!("fuzz-client-case-{}", plan.index),
        description: format!(
            "case {} of seed {} against a client: {} / {} mutation of {:?}: {what}",
            plan.index,
            config.seed,
            plan.state.name(),
            plan.family.name(),
            plan.base,
        ),
        steps,
        finding: [
            ("case".to_string(), plan.index.to_string()),
            ("campaign_seed".to_string(), config.seed.to_string()),
            ("state".to_string(), plan.state.name().to_string()),
            ("family".to_string(), plan.family.name().to_string()),
            ("mutation".to_string(), what.to_string()),
            (
                "side".to_string(),
                "server (sv2-probe scenario run FILE --listen ADDR)".into(),
            ),
        ]
        .into_iter()
        .collect(),
    }
}

/// Plays `steps` on the client's connection; the class of the oracle that failed, if any.
async fn judge(
    client: &Client,
    conn: &mut Connection<TcpStream>,
    steps: &[Step],
    player: &mut Player,
    close_counts: bool,
) -> Option<(Class, String, usize)> {
    let alive = client.alive();
    let ended = player.play(conn, steps, &alive).await;
    let crashed = || match client.exited() {
        Some((true, how)) => Some(how),
        _ => None,
    };
    let before = crashed();
    // A crash right after the case (the close is where some clients read their last frame),
    // unless the client crashes at any close (the control case showed it).
    conn.close(Duration::from_millis(50)).await;
    let exited = || match (&before, close_counts) {
        (Some(how), _) => Some(how.clone()),
        (None, true) => crashed(),
        (None, false) => None,
    };
    match ended {
        Ended::Done => exited().map(|how| (Class::Crash, how, steps.len())),
        Ended::Failed {
            step,
            expected,
            observed,
        } => {
            let failed = &steps[step - 1];
            match class_of(failed, &observed) {
                Some(Class::Crash) => Some((Class::Crash, observed, step)),
                Some(class) => match exited() {
                    Some(how) => Some((Class::Crash, how, steps.len())),
                    None => Some((class, format!("expected {expected}; {observed}"), step)),
                },
                None => exited().map(|how| (Class::Crash, how, steps.len())),
            }
        }
    }
}

async fn run_case(
    client: &mut Client,
    config: &ListenConfig,
    plan: &ClientPlan,
    profile: &Profile,
) -> (Outcome, Option<Script>) {
    let stream = match client.next(config.connect_wait, false).await {
        Ok(s) => s,
        Err(Gone::Crashed(how)) => {
            return (
                Outcome::Found(Box::new(Found {
                    class: Class::Crash,
                    detail: format!("before the case: {how}"),
                    script: Script::default(),
                    transcript: Transcript::default(),
                })),
                None,
            );
        }
        Err(Gone::Exited(why) | Gone::Silent(why)) => return (Outcome::Stop(why), None),
    };
    let mut conn = match handshake(stream, &config.authority, config.wait).await {
        Ok(c) => c,
        Err(e) => return (Outcome::NotReached(e), None),
    };
    let prefix = client::prefix(plan.role, plan.state, profile, config.wait);
    let mut player = Player::default();
    if let Ended::Failed { observed, .. } = player.play(&mut conn, &prefix, &NoProcess).await {
        conn.close(Duration::from_millis(50)).await;
        return (Outcome::NotReached(observed), None);
    }
    let Some(mutation) = client::mutation(plan, profile) else {
        return (
            Outcome::NotReached("the base message does not encode".into()),
            None,
        );
    };
    let mut steps = mutation.steps.clone();
    steps.extend(client::oracles(
        plan,
        profile,
        &mutation,
        config.wait,
        client.knows_process(),
    ));
    let mut whole = prefix.clone();
    whole.extend(steps.iter().cloned());
    let script = case_script(config, plan, &mutation.mutated.what, whole);
    let Some((class, detail, upto)) = judge(
        client,
        &mut conn,
        &steps,
        &mut player,
        !profile.crashes_on_close,
    )
    .await
    else {
        return (Outcome::Clean, Some(script));
    };
    let mut found = script.clone();
    found.steps.truncate(prefix.len() + upto);
    if class == Class::Crash
        && client.knows_process()
        && !matches!(found.steps.last(), Some(Step::ExpectAlive { .. }))
    {
        found.steps.push(Step::ExpectAlive {
            within: config.wait,
        });
    }
    (
        Outcome::Found(Box::new(Found {
            class,
            detail,
            script: named(found, class),
            transcript: conn.transcript.clone(),
        })),
        Some(script),
    )
}

fn named(mut script: Script, class: Class) -> Script {
    script.name = format!(
        "fuzz-client-{}-{}",
        class.name(),
        script.finding.get("case").map_or("", String::as_str)
    );
    script.description = format!(
        "{} found by sv2-probe fuzz --listen: {}",
        class.name(),
        script.description
    );
    script.finding.insert("class".into(), class.name().into());
    script
}

/// Plays `script` on the next connection of a fresh client: the class of the oracle that failed.
async fn replay(
    client: &mut Client,
    config: &ListenConfig,
    script: &Script,
    close_counts: bool,
) -> Option<(Class, Transcript)> {
    // No fresh client, no replay (a crash before anything was played is not this script's).
    let stream = client.next(config.connect_wait, true).await.ok()?;
    let mut conn = handshake(stream, &config.authority, config.wait)
        .await
        .ok()?;
    let mut player = Player::default();
    let (class, _, _) = judge(client, &mut conn, &script.steps, &mut player, close_counts).await?;
    Some((class, conn.transcript.clone()))
}

/// The finding with the fewest steps and bytes that a fresh client still shows
/// ([`super::minimize::minimize`]).
async fn minimize(
    client: &mut Client,
    config: &ListenConfig,
    script: &Script,
    class: Class,
    budget: usize,
    close_counts: bool,
) -> Script {
    struct OnClient<'a>(&'a mut Client, &'a ListenConfig, Class, bool);
    impl super::minimize::Replay for OnClient<'_> {
        async fn shows(&mut self, candidate: &Script) -> bool {
            matches!(replay(self.0, self.1, candidate, self.3).await, Some((c, _)) if c == self.2)
        }
    }
    super::minimize::minimize(
        script,
        budget,
        &mut OnClient(client, config, class, close_counts),
    )
    .await
}

/// Runs the campaign on `listener`: the client under test connects to it.
pub async fn run(listener: TcpListener, config: &ListenConfig, progress: Progress) -> Report {
    let started = Instant::now();
    let addr = listener.local_addr().ok();
    let (tx, incoming) = mpsc::channel(64);
    let accept = tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    if tx.send(stream).await.is_err() {
                        break;
                    }
                }
                // Out of file descriptors, a connection reset before it was accepted: go on.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    let endpoint = match addr {
        Some(a) => Endpoint::new(a, config.authority.as_ref().map(|k| k.public)),
        None => Endpoint::new(std::net::SocketAddr::from(([127, 0, 0, 1], 0)), None),
    };
    let mut client = Client {
        launcher: config.launcher.clone(),
        endpoint: endpoint.clone(),
        launched: Arc::default(),
        incoming,
        pid: config.pid,
        starts: 0,
        crashes_on_close: false,
    };
    let mut report = Report {
        target: format!("clients of {}", endpoint.url),
        seed: config.seed,
        shards: vec![super::Shard::default()],
        ..Report::default()
    };
    let report = campaign(&mut client, config, &mut report, progress, started).await;
    client.stop().await;
    accept.abort();
    let mut report = report;
    report.seconds = started.elapsed().as_secs_f64();
    if let Some(dir) = &config.out {
        let _ = std::fs::create_dir_all(dir);
        let _ = std::fs::write(
            dir.join("report.json"),
            serde_json::to_string_pretty(&report).unwrap_or_default(),
        );
        let _ = std::fs::write(dir.join("report.txt"), report.text());
    }
    report
}

async fn campaign(
    client: &mut Client,
    config: &ListenConfig,
    report: &mut Report,
    progress: Progress,
    started: Instant,
) -> Report {
    let mut notes = Vec::new();
    let profile = match control(client, config, &mut notes).await {
        Ok(p) => p,
        Err(why) => {
            report.stopped = format!("the control case failed: {why}");
            report.notes = notes;
            return report.clone();
        }
    };
    report.notes = notes;
    client.crashes_on_close = profile.crashes_on_close;
    // The process whose memory is watched, and its memory when first seen: a client started again
    // is a new process, measured from its own start.
    let mut watched: Option<(u32, u64)> = None;
    let limit = match (config.cases, config.duration) {
        (None, None) => Some(1_000),
        (cases, _) => cases,
    };
    let mut index = config.first_case;
    let mut previous: Option<Script> = None;
    let mut findings = 0usize;
    let mut unconfirmed = 0u64;
    loop {
        if limit.is_some_and(|l| report.cases >= l) {
            report.stopped = format!("{} cases done", report.cases);
            break;
        }
        if config.duration.is_some_and(|d| started.elapsed() >= d) {
            report.stopped = format!("{:?} spent", config.duration.unwrap_or_default());
            break;
        }
        let plan = client::plan(config.seed, index, config.role, &profile);
        index += 1;
        if !config.families.is_empty() && !config.families.contains(&plan.family) {
            continue;
        }
        let (outcome, played) = run_case(client, config, &plan, &profile).await;
        if let Outcome::Stop(why) = outcome {
            report.stopped = format!("before case {}: {why}", plan.index);
            break;
        }
        report.cases += 1;
        *report
            .families
            .entry(plan.family.name().to_string())
            .or_default() += 1;
        let state = report
            .states
            .entry(plan.state.name().to_string())
            .or_default();
        state.tried += 1;
        match &outcome {
            Outcome::NotReached(why) => {
                let why: String = why.chars().take(80).collect();
                *report.not_reached.entry(why).or_default() += 1;
            }
            _ => state.reached += 1,
        }
        let pid = config.pid.or_else(|| client.pid());
        if watched.is_none_or(|(p, _)| Some(p) != pid) {
            watched = pid.and_then(|p| rss_kib(p).map(|r| (p, r)));
        }
        if let Some((pid, start)) = watched {
            if let Some(now) = rss_kib(pid) {
                report.rss_kib = Some((start, now));
                if now > start + config.max_rss_growth_kib
                    && !report.findings.iter().any(|f| f.class == Class::Leak)
                {
                    report.findings.push(Finding::bare(
                        Class::Leak,
                        plan.index,
                        plan.state.name(),
                        format!(
                            "the client's resident memory grew from {start} KiB to {now} KiB (bound: +{} KiB)",
                            config.max_rss_growth_kib
                        ),
                    ));
                }
            }
        }
        let mut played_clean = true;
        if let Outcome::Found(found) = outcome {
            let Found {
                class,
                detail,
                script,
                transcript,
            } = *found;
            // Found before the case began: the previous case's doing.
            let script = match (script.steps.is_empty(), previous.take()) {
                (true, Some(mut before)) => {
                    before.finding.insert("detail".into(), detail.clone());
                    before.finding.insert(
                        "note".into(),
                        "the client was gone after this case, found when the next case waited for its connection".into(),
                    );
                    if client.knows_process() {
                        before.steps.push(Step::ExpectAlive {
                            within: config.wait,
                        });
                    }
                    named(before, class)
                }
                _ => script,
            };
            let mut script = script;
            script.finding.insert("detail".into(), detail.clone());
            let steps = script.steps.len();
            let replaying = config.minimize && !script.steps.is_empty();
            let (script, reproduced) = if replaying {
                let close_counts = !profile.crashes_on_close;
                let replayed = match replay(client, config, &script, close_counts).await {
                    Some((c, _)) if c == class => (
                        minimize(client, config, &script, class, 16, close_counts).await,
                        true,
                    ),
                    _ => (script, false),
                };
                // What the replays did to the client is nobody's case: a fresh one for the next.
                if client.launcher.starts_clients() {
                    client.stop().await;
                }
                replayed
            } else {
                (script, false)
            };
            if replaying || class == Class::Crash {
                played_clean = false;
            }
            // A hang is a client that stopped working, not a slow one: one that a fresh client
            // does not show again is not counted.
            if replaying && class == Class::Hang && !reproduced {
                unconfirmed += 1;
                previous = None;
                progress(report);
                continue;
            }
            findings += 1;
            let file = finding_file(config.out.as_deref(), findings, &script, &transcript);
            report.findings.push(Finding::of_script(
                class,
                &script,
                (plan.index, plan.state.name(), plan.family.name()),
                detail,
                file,
                reproduced,
                steps,
            ));
            if class == Class::Crash && config.stop_on_crash {
                report.stopped = format!("crash at case {}", plan.index);
                break;
            }
            if config
                .max_findings
                .is_some_and(|m| report.findings.len() >= m)
            {
                report.stopped = format!("{} finding(s)", report.findings.len());
                break;
            }
        }
        // A client gone at the next case's start is this case's doing, unless replays (or a
        // crash and a new process) came between.
        previous = if played_clean { played } else { None };
        progress(report);
    }
    if unconfirmed > 0 {
        report
            .notes
            .push(super::campaign::unconfirmed_note(unconfirmed));
    }
    if client.launcher.starts_clients() {
        report
            .notes
            .push(format!("the client was started {} time(s)", client.starts));
    }
    report.clone()
}
