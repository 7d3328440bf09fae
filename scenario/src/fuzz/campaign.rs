//! The campaign against a live server: cases one after another (or `jobs` at a time), each on its
//! own connection, each judged by the oracles; findings replayed, minimised and written as
//! scenario files with their transcript and a pcapng; a report that merges across shards.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sv2_codec::noise::keys::AuthorityPublicKey;
use sv2_wire::{Connection, KeyLog, Transcript};

use crate::launch::{Endpoint, Launched, Launcher};
use tokio::net::TcpStream;

use super::case::{self, oracles, prefix, Plan, Role};
use super::mutate::Family;
use crate::script::{Alive, Ended, Player, Script, Step, TargetAlive, FORBIDDEN};

/// The most cases a campaign runs at once.
pub const MAX_JOBS: usize = 256;

/// A server to fuzz.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    /// Noise with the certificate checked against this key (`Some(Some)`), Noise unchecked
    /// (`Some(None)`), or plaintext (`None`).
    pub noise: Option<Option<AuthorityPublicKey>>,
}

impl Target {
    fn alive(&self) -> TargetAlive {
        TargetAlive {
            addr: self.addr,
            noise: self.noise,
        }
    }

    async fn connect(&self, wait: Duration) -> Result<Connection<TcpStream>, String> {
        let stream = tokio::time::timeout(wait, TcpStream::connect(self.addr))
            .await
            .map_err(|_| format!("no TCP connection to {} within {wait:?}", self.addr))?
            .map_err(|e| format!("TCP connect to {}: {e}", self.addr))?;
        let _ = stream.set_nodelay(true);
        Connection::initiate_or_plain(stream, self.noise, wait, &KeyLog::none())
            .await
            .map_err(|e| e.brief())
    }
}

/// Which share of the campaign's cases this run takes: case `i` when `i % count == index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Default for Shard {
    fn default() -> Self {
        Shard { index: 0, count: 1 }
    }
}

/// A campaign.
#[derive(Debug, Clone)]
pub struct Config {
    pub target: Target,
    /// What the target serves.
    pub role: Role,
    pub seed: u64,
    /// The number of the first case (to run again the cases of an earlier campaign from there).
    pub first_case: u64,
    /// Stop after this many cases (of this shard)...
    pub cases: Option<u64>,
    /// ...or after this long; with neither, after 1,000 cases.
    pub duration: Option<Duration>,
    /// Cases run at once, each on its own connection.
    pub jobs: usize,
    pub shard: Shard,
    /// How long the prefix and the oracles wait for an answer.
    pub wait: Duration,
    /// Where findings and the report go.
    pub out: Option<PathBuf>,
    /// The server's process: its exit is a crash, its memory is watched.
    pub pid: Option<u32>,
    /// A growth of the process's resident memory beyond this many KiB is a leak.
    pub max_rss_growth_kib: u64,
    /// At most this many new connections per second (each case makes two).
    pub max_connections_per_sec: u32,
    /// Findings are replayed and their steps minimised.
    pub minimize: bool,
    /// Stop at the first crash (the target is gone).
    pub stop_on_crash: bool,
    /// Stop after this many findings.
    pub max_findings: Option<usize>,
    /// Only cases of these families (all when empty); the others are passed over, so that the
    /// cases run keep their numbers.
    pub families: Vec<Family>,
    /// How the server comes: running by itself, or started by the campaign (`--spawn`), before
    /// the first case and again after each crash (any exit of its process is one).
    pub launcher: Launcher,
    /// How long a started server has to listen.
    pub start_wait: Duration,
}

impl Config {
    pub fn new(target: Target) -> Self {
        Config {
            target,
            role: Role::Mining,
            seed: 1,
            first_case: 0,
            cases: None,
            duration: None,
            jobs: 1,
            shard: Shard::default(),
            wait: case::DEFAULT_WAIT,
            out: None,
            pid: None,
            max_rss_growth_kib: 256 * 1024,
            max_connections_per_sec: 2_000,
            minimize: true,
            stop_on_crash: true,
            max_findings: None,
            families: Vec::new(),
            launcher: Launcher::External,
            start_wait: Duration::from_secs(30),
        }
    }
}

/// The server's process when the campaign starts it: cases wait at `gate` while it is started
/// again; `generation` counts its starts, so that what cases in flight saw of the old one is not
/// blamed on the new one.
struct Spawned {
    launcher: Launcher,
    endpoint: Endpoint,
    addr: SocketAddr,
    launched: Mutex<Option<Box<dyn Launched>>>,
    gate: tokio::sync::RwLock<()>,
    generation: AtomicU64,
}

impl Spawned {
    /// How it ended, if it did (any exit of a server is a crash).
    fn exited(&self) -> Option<String> {
        let mut launched = self.launched.lock().unwrap_or_else(|e| e.into_inner());
        launched
            .as_mut()
            .and_then(|l| l.exited())
            .map(|(_, how)| how)
    }

    /// Stops the old process, starts a new one and waits until it accepts connections.
    async fn restart(&self, wait: Duration) -> Result<(), String> {
        self.stop().await;
        let new = self.launcher.start(&self.endpoint).await?;
        *self.launched.lock().unwrap_or_else(|e| e.into_inner()) = new;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if TcpStream::connect(self.addr).await.is_ok() {
                // Ours, and still up a moment later (not an old process on the port, nor one that
                // dies as it starts).
                tokio::time::sleep(Duration::from_millis(200)).await;
                return match self.exited() {
                    Some(how) => Err(format!("the server ended as it started: {how}")),
                    None => Ok(()),
                };
            }
            if let Some(how) = self.exited() {
                return Err(format!("the server ended as it started: {how}"));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "the server did not listen on {} within {wait:?}",
                    self.addr
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn pid(&self) -> Option<u32> {
        let launched = self.launched.lock().unwrap_or_else(|e| e.into_inner());
        launched.as_ref().and_then(|l| l.pid())
    }

    async fn stop(&self) {
        let old = self
            .launched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(old) = old {
            let _ = old.stop().await;
        }
    }
}

/// What a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    /// The server stopped answering new connections, or its process exited.
    Crash,
    /// The case's connection stopped answering while new connections were served.
    Hang,
    /// The process's memory grew past the bound.
    Leak,
    /// A request whose bytes no reader could accept was answered with its success.
    AcceptedInvalid,
}

impl Class {
    pub fn name(self) -> &'static str {
        match self {
            Class::Crash => "crash",
            Class::Hang => "hang",
            Class::Leak => "leak",
            Class::AcceptedInvalid => "accepted-invalid",
        }
    }
}

/// One finding, as the report lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub class: Class,
    pub case: u64,
    pub state: String,
    pub mutation: String,
    pub family: String,
    /// What the oracle expected and what happened.
    pub detail: String,
    /// The scenario file that replays it, when written.
    pub file: Option<String>,
    /// A replay on a fresh connection showed it again.
    pub reproduced: bool,
    /// Steps of the case as found, and after minimising.
    pub steps: usize,
    pub minimized_steps: usize,
}

impl Finding {
    /// A finding with no script of its own (a leak, a server gone after the last case).
    pub(crate) fn bare(class: Class, case: u64, state: &str, detail: String) -> Finding {
        Finding {
            class,
            case,
            state: state.into(),
            mutation: "-".into(),
            family: "-".into(),
            detail,
            file: None,
            reproduced: false,
            steps: 0,
            minimized_steps: 0,
        }
    }

    /// The finding `script` stands for: its `[finding]` table names its case, state, mutation
    /// and family (a crash found at a case's start is the previous case's); else `plan`'s
    /// (case number, state, family).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn of_script(
        class: Class,
        script: &Script,
        plan: (u64, &str, &str),
        detail: String,
        file: Option<String>,
        reproduced: bool,
        steps: usize,
    ) -> Finding {
        let meta = |key: &str, or: &str| script.finding.get(key).cloned().unwrap_or(or.to_string());
        Finding {
            class,
            case: meta("case", "").parse().unwrap_or(plan.0),
            state: meta("state", plan.1),
            mutation: meta("mutation", ""),
            family: meta("family", plan.2),
            detail,
            file,
            reproduced,
            steps,
            minimized_steps: script.steps.len(),
        }
    }
}

/// How often each state was tried and reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reached {
    pub tried: u64,
    pub reached: u64,
}

/// A campaign's report; reports of shards merge into one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub target: String,
    pub seed: u64,
    pub shards: Vec<Shard>,
    pub cases: u64,
    pub seconds: f64,
    pub states: BTreeMap<String, Reached>,
    pub families: BTreeMap<String, u64>,
    pub findings: Vec<Finding>,
    /// Why states were not reached, with counts (the first words of what the server did).
    pub not_reached: BTreeMap<String, u64>,
    /// Resident memory of the server's process at the start and the end, KiB.
    pub rss_kib: Option<(u64, u64)>,
    /// Why the campaign stopped.
    pub stopped: String,
    /// What the campaign learnt about its target (a client's control case) and did to it.
    #[serde(default)]
    pub notes: Vec<String>,
}

impl Report {
    pub fn cases_per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.cases as f64 / self.seconds
        } else {
            0.0
        }
    }

    pub fn by_class(&self) -> BTreeMap<&'static str, u64> {
        let mut out = BTreeMap::new();
        for f in &self.findings {
            *out.entry(f.class.name()).or_default() += 1;
        }
        out
    }

    /// Reports of shards of one campaign (or of several runs) as one: counts added, findings
    /// joined, the longest duration kept (shards run side by side).
    pub fn merge(reports: &[Report]) -> Report {
        let mut out = Report::default();
        for r in reports {
            if out.target.is_empty() {
                out.target = r.target.clone();
                out.seed = r.seed;
            }
            out.shards.extend(r.shards.iter().copied());
            out.cases += r.cases;
            out.seconds = out.seconds.max(r.seconds);
            for (k, v) in &r.states {
                let e = out.states.entry(k.clone()).or_default();
                e.tried += v.tried;
                e.reached += v.reached;
            }
            for (k, v) in &r.families {
                *out.families.entry(k.clone()).or_default() += v;
            }
            for (k, v) in &r.not_reached {
                *out.not_reached.entry(k.clone()).or_default() += v;
            }
            out.findings.extend(r.findings.iter().cloned());
            for note in &r.notes {
                if !out.notes.contains(note) {
                    out.notes.push(note.clone());
                }
            }
            if !r.stopped.is_empty() && !out.stopped.contains(&r.stopped) {
                if !out.stopped.is_empty() {
                    out.stopped.push_str("; ");
                }
                out.stopped.push_str(&r.stopped);
            }
        }
        out.shards.sort_by_key(|s| (s.count, s.index));
        out.findings.sort_by_key(|f| f.case);
        out
    }

    /// The report in words.
    pub fn text(&self) -> String {
        let mut s = format!(
            "fuzz campaign against {} (seed {}, {} shard(s))\n{} cases in {:.1} s: {:.0} cases/s; stopped: {}\n",
            self.target,
            self.seed,
            self.shards.len().max(1),
            self.cases,
            self.seconds,
            self.cases_per_second(),
            if self.stopped.is_empty() { "-" } else { &self.stopped }
        );
        for note in &self.notes {
            s.push_str(&format!("note: {note}\n"));
        }
        s.push_str("states (reached / tried):\n");
        for (name, r) in &self.states {
            s.push_str(&format!("  {name:<18} {:>7} / {:<7}\n", r.reached, r.tried));
        }
        s.push_str("mutation families: ");
        s.push_str(
            &self
                .families
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", "),
        );
        s.push('\n');
        if !self.not_reached.is_empty() {
            s.push_str("not reached, why:\n");
            for (why, n) in &self.not_reached {
                s.push_str(&format!("  {n:>7}  {why}\n"));
            }
        }
        if let Some((start, end)) = self.rss_kib {
            s.push_str(&format!(
                "memory of the process under test (RSS): {start} KiB at the start, {end} KiB at the end\n"
            ));
        }
        let classes = self.by_class();
        s.push_str(&format!(
            "findings: {}{}\n",
            self.findings.len(),
            if classes.is_empty() {
                String::new()
            } else {
                format!(
                    " ({})",
                    classes
                        .iter()
                        .map(|(k, v)| format!("{k} {v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        ));
        for f in &self.findings {
            s.push_str(&format!(
                "  {} case {} [{} / {}: {}]{}\n      {}\n",
                f.class.name(),
                f.case,
                f.state,
                f.family,
                f.mutation,
                f.file
                    .as_ref()
                    .map(|p| format!(" -> {p}"))
                    .unwrap_or_default(),
                f.detail
            ));
        }
        s
    }
}

/// The resident memory of a process, KiB (Linux /proc).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

pub(crate) fn process_gone(pid: Option<u32>) -> bool {
    pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
}

/// What one case came to.
enum Outcome {
    /// The state was not reached (the server refused or said something else): why.
    NotReached(String),
    Clean,
    Found(Box<Found>),
}

/// A finding as a case made it.
struct Found {
    class: Class,
    detail: String,
    script: Script,
    transcript: Transcript,
}

/// The oracle a failed step stands for, from what it observed.
pub(crate) fn class_of(step: &Step, observed: &str) -> Option<Class> {
    match step {
        Step::ExpectAny { .. } if observed.starts_with(FORBIDDEN) => Some(Class::AcceptedInvalid),
        Step::ExpectAny { .. } => Some(Class::Hang),
        Step::ExpectAlive { .. } => Some(Class::Crash),
        _ => None,
    }
}

fn host_port(target: &Target) -> (String, u16) {
    (target.addr.ip().to_string(), target.addr.port())
}

/// Runs case `plan`; with it, the case as a script when it ran (its state reached), to blame it if
/// the server is found gone at the start of the next case.
async fn run_case(config: &Config, plan: &Plan, shared: &Shared) -> (Outcome, Option<Script>) {
    let mut played = None;
    // How the server's process ended, when it did.
    let gone = || {
        if process_gone(config.pid) {
            return Some("the process exited".to_string());
        }
        shared
            .spawned
            .as_ref()
            .and_then(|s| s.exited())
            .map(|how| format!("the server's process ended: {how}"))
    };
    let outcome = run_case_inner(config, plan, &mut played, &gone).await;
    (outcome, played)
}

async fn run_case_inner(
    config: &Config,
    plan: &Plan,
    played: &mut Option<Script>,
    gone: &(dyn Fn() -> Option<String> + Sync),
) -> Outcome {
    let target = &config.target;
    let alive = target.alive();
    let (host, port) = host_port(target);
    let mut conn = match target.connect(config.wait).await {
        Ok(c) => c,
        Err(e) => {
            // The target may have died with the previous case, or refuse for load: ask again,
            // with time to spare (a slow server is not a dead one).
            return match alive.check(config.wait * 2).await {
                Ok(()) => Outcome::NotReached(format!("connect: {e}")),
                Err(why) => Outcome::Found(Box::new(Found {
                    class: Class::Crash,
                    detail: format!("before the case: {why}"),
                    script: Script::default(),
                    transcript: Transcript::default(),
                })),
            };
        }
    };
    let prefix_steps = prefix(plan.role, plan.state, &host, port, config.wait);
    let mut player = Player::default();
    if let Ended::Failed { observed, .. } = player.play(&mut conn, &prefix_steps, &alive).await {
        conn.shutdown().await;
        // A server that refuses a state is not one that is gone (the previous case's doing).
        return match alive.check(config.wait * 2).await {
            Ok(()) => Outcome::NotReached(observed),
            Err(why) => Outcome::Found(Box::new(Found {
                class: Class::Crash,
                detail: format!("before the case: {why}"),
                script: Script::default(),
                transcript: Transcript::default(),
            })),
        };
    }
    let Some(mutation) = case::mutation(plan, &player.saved) else {
        return Outcome::NotReached("the base message does not encode".into());
    };
    let oracle_steps = oracles(plan.role, plan.state, &mutation, config.wait);
    let mut steps = mutation.steps.clone();
    steps.extend(oracle_steps.iter().cloned());
    let mut whole = prefix_steps.clone();
    whole.extend(steps.iter().cloned());
    *played = Some(Script {
        name: format!("fuzz-case-{}", plan.index),
        description: format!(
            "case {} of seed {}: {} / {} mutation of {:?}: {}",
            plan.index,
            config.seed,
            plan.state.name(),
            plan.family.name(),
            plan.base,
            mutation.mutated.what
        ),
        steps: whole,
        finding: [
            ("case".to_string(), plan.index.to_string()),
            ("campaign_seed".to_string(), config.seed.to_string()),
            ("state".to_string(), plan.state.name().to_string()),
            ("family".to_string(), plan.family.name().to_string()),
            ("mutation".to_string(), mutation.mutated.what.clone()),
        ]
        .into_iter()
        .collect(),
    });
    let ended = player.play(&mut conn, &steps, &alive).await;
    conn.shutdown().await;
    let (class, detail, upto) = match ended {
        Ended::Done => {
            if let Some(how) = gone() {
                (Class::Crash, how, steps.len())
            } else if player.closed && !matches!(steps.last(), Some(Step::ExpectAlive { .. })) {
                // The server closed instead of answering: is it still there?
                match alive.check(config.wait).await {
                    Ok(()) => return Outcome::Clean,
                    Err(why) => (Class::Crash, why, steps.len()),
                }
            } else {
                return Outcome::Clean;
            }
        }
        Ended::Failed {
            step,
            expected,
            observed,
        } => {
            let failed = &steps[step - 1];
            let detail = format!("expected {expected}; {observed}");
            match class_of(failed, &observed) {
                // A hang only while new connections are served; otherwise the server is gone.
                Some(Class::Hang) => match alive.check(config.wait).await {
                    Ok(()) => (Class::Hang, detail, step),
                    Err(why) => (Class::Crash, why, steps.len()),
                },
                Some(class) => (class, detail, step),
                // A send that failed (the server closed while we wrote): only liveness counts.
                None => match alive.check(config.wait).await {
                    Ok(()) => return Outcome::Clean,
                    Err(why) => (Class::Crash, why, steps.len()),
                },
            }
        }
    };
    // A crash is confirmed once the case's connections (its crowd too) are closed, with twice the
    // time: a server that caps connections, or is slow under load, is not dead. A process that
    // exited needs no second look.
    let (class, detail) = match (class, gone()) {
        // A process that ended says how: more than a connection that failed.
        (Class::Crash, Some(how)) => (class, how),
        (Class::Crash, None) if alive.check(config.wait * 2).await.is_ok() => {
            return Outcome::Clean
        }
        _ => (class, detail),
    };
    let played_steps = prefix_steps.len() + upto;
    let mut script = played.clone().unwrap_or_default();
    script.steps.truncate(played_steps);
    if class == Class::Crash && !matches!(script.steps.last(), Some(Step::ExpectAlive { .. })) {
        script.steps.push(Step::ExpectAlive {
            within: config.wait,
        });
    }
    script.name = format!("fuzz-{}-case-{}", class.name(), plan.index);
    script.description = format!(
        "{} found by sv2-probe fuzz: {}",
        class.name(),
        script.description
    );
    script
        .finding
        .insert("class".to_string(), class.name().to_string());
    script.finding.insert("detail".to_string(), detail.clone());
    Outcome::Found(Box::new(Found {
        class,
        detail,
        script,
        transcript: conn.transcript.clone(),
    }))
}

/// Plays `script` on a fresh connection: the class of the oracle step that failed, if any.
pub async fn replay(
    target: &Target,
    script: &Script,
    wait: Duration,
) -> Option<(Class, Transcript)> {
    let alive = target.alive();
    let mut conn = match target.connect(wait).await {
        Ok(c) => c,
        Err(_) => {
            return alive
                .check(wait)
                .await
                .err()
                .map(|_| (Class::Crash, Transcript::default()))
        }
    };
    let ended = Player::default()
        .play(&mut conn, &script.steps, &alive)
        .await;
    conn.shutdown().await;
    match ended {
        Ended::Done => None,
        Ended::Failed { step, observed, .. } => {
            let class = class_of(&script.steps[step - 1], &observed);
            let class = match class {
                Some(Class::Hang) if alive.check(wait).await.is_err() => Some(Class::Crash),
                Some(c) => Some(c),
                None => alive.check(wait).await.err().map(|_| Class::Crash),
            };
            class.map(|c| (c, conn.transcript.clone()))
        }
    }
}

/// The finding with the fewest steps and bytes that a replay on a fresh connection still shows
/// ([`super::minimize::minimize`]). At most `budget` replays for the steps, and as many for the
/// bytes.
pub async fn minimize(
    target: &Target,
    script: &Script,
    class: Class,
    wait: Duration,
    budget: usize,
) -> Script {
    struct OnTarget<'a>(&'a Target, Class, Duration);
    impl super::minimize::Replay for OnTarget<'_> {
        async fn shows(&mut self, candidate: &Script) -> bool {
            matches!(replay(self.0, candidate, self.2).await, Some((c, _)) if c == self.1)
        }
    }
    super::minimize::minimize(script, budget, &mut OnTarget(target, class, wait)).await
}

struct Shared {
    report: Mutex<Report>,
    /// When the next case may start: the connection rate is the campaign's, whatever the jobs.
    next_slot: Mutex<Instant>,
    /// The next case number (of this shard's sequence).
    next: AtomicU64,
    /// Cases started.
    run: AtomicU64,
    stop: AtomicBool,
    found: AtomicU64,
    spawned: Option<Spawned>,
    /// Starts of the server after a crash.
    restarts: AtomicU64,
    /// The highest case number run.
    last_case: AtomicU64,
    /// Hangs that a replay did not show again.
    unconfirmed: AtomicU64,
}

/// Writes finding `number` under `OUT/findings/` when there is an `out` and the finding has
/// steps; the path of its `case.toml`.
pub(crate) fn finding_file(
    out: Option<&Path>,
    number: usize,
    script: &Script,
    transcript: &Transcript,
) -> Option<String> {
    let dir = out.filter(|_| !script.steps.is_empty())?;
    write_finding(&dir.join("findings"), number, script, transcript)
        .ok()
        .map(|p| p.display().to_string())
}

fn write_finding(
    dir: &Path,
    index: usize,
    script: &Script,
    transcript: &Transcript,
) -> std::io::Result<PathBuf> {
    let case_dir = dir.join(format!(
        "{}-{:04}",
        script
            .finding
            .get("class")
            .map_or("finding", String::as_str),
        index
    ));
    std::fs::create_dir_all(&case_dir)?;
    let file = case_dir.join("case.toml");
    std::fs::write(&file, script.to_toml())?;
    std::fs::write(
        case_dir.join("transcript.json"),
        serde_json::to_string_pretty(&transcript.to_json()).unwrap_or_default(),
    )?;
    if !transcript.entries().is_empty() {
        if let Ok(pcap) =
            sv2_wire::capture::write::SharedPcapng::create(&case_dir.join("case.pcapng"))
        {
            let _ = pcap.add(transcript);
            let _ = pcap.finish();
        }
    }
    Ok(file)
}

/// What sees the report after every case (a progress line, a test).
pub type Progress = Arc<dyn Fn(&Report) + Send + Sync>;

/// Runs the campaign; `progress` sees the report after every case.
pub async fn run(config: &Config, progress: Progress) -> Report {
    let started = Instant::now();
    let limit = match (config.cases, config.duration) {
        (None, None) => Some(1_000),
        (cases, _) => cases,
    };
    let shared = Arc::new(Shared {
        report: Mutex::new(Report {
            target: config.target.addr.to_string(),
            seed: config.seed,
            shards: vec![config.shard],
            ..Report::default()
        }),
        next: AtomicU64::new(0),
        run: AtomicU64::new(0),
        next_slot: Mutex::new(Instant::now()),
        stop: AtomicBool::new(false),
        found: AtomicU64::new(0),
        spawned: config.launcher.starts_clients().then(|| Spawned {
            launcher: config.launcher.clone(),
            endpoint: Endpoint::new(config.target.addr, config.target.noise.flatten()),
            addr: config.target.addr,
            launched: Mutex::new(None),
            gate: tokio::sync::RwLock::new(()),
            generation: AtomicU64::new(0),
        }),
        restarts: AtomicU64::new(0),
        last_case: AtomicU64::new(0),
        unconfirmed: AtomicU64::new(0),
    });
    if let Some(spawned) = &shared.spawned {
        if let Err(why) = spawned.restart(config.start_wait).await {
            let mut report = shared.report.lock().map(|r| r.clone()).unwrap_or_default();
            report.stopped = format!("the server did not start: {why}");
            spawned.stop().await;
            return report;
        }
    }
    let rss_start = watched_pid(config, &shared).and_then(rss_kib);
    if let Ok(mut r) = shared.report.lock() {
        r.rss_kib = rss_start.map(|r| (r, r));
    }
    let min_gap = Duration::from_secs_f64(2.0 / f64::from(config.max_connections_per_sec.max(1)));
    let jobs = config.jobs.clamp(1, MAX_JOBS);
    let mut tasks = Vec::new();
    for _ in 0..jobs {
        let shared = shared.clone();
        let config = config.clone();
        let progress = progress.clone();
        tasks.push(tokio::spawn(async move {
            // This worker's previous case, blamed when the server is gone at the next one's start.
            let mut previous: Option<(Plan, Script, Option<u64>)> = None;
            loop {
                if shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                if config.duration.is_some_and(|d| started.elapsed() >= d) {
                    break;
                }
                let n = shared.next.fetch_add(1, Ordering::SeqCst);
                let Some(index) = n
                    .checked_mul(config.shard.count)
                    .and_then(|i| i.checked_add(config.shard.index))
                    .and_then(|i| i.checked_add(config.first_case))
                else {
                    break;
                };
                let plan = case::plan(config.seed, index, config.role);
                if !config.families.is_empty() && !config.families.contains(&plan.family) {
                    continue;
                }
                // A budget of cases counts the cases run.
                let run = shared.run.fetch_add(1, Ordering::SeqCst);
                if limit.is_some_and(|l| run >= l) {
                    break;
                }
                shared.last_case.fetch_max(index, Ordering::SeqCst);
                // Each case opens two connections (its own and the liveness check): one slot each
                // `min_gap` for the whole campaign.
                let slot = {
                    let Ok(mut next) = shared.next_slot.lock() else {
                        break;
                    };
                    let slot = (*next).max(Instant::now());
                    *next = slot + min_gap;
                    slot
                };
                tokio::time::sleep_until(slot.into()).await;
                // While the server is started again, cases wait.
                let (outcome, played, generation) = {
                    let _running = match &shared.spawned {
                        Some(s) => Some(s.gate.read().await),
                        None => None,
                    };
                    // A restart that failed while this case waited.
                    if shared.stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let generation = shared
                        .spawned
                        .as_ref()
                        .map(|s| s.generation.load(Ordering::SeqCst));
                    let (outcome, played) = run_case(&config, &plan, &shared).await;
                    (outcome, played, generation)
                };
                // The previous case ran against the same process, or is not to blame.
                let before = previous
                    .take()
                    .filter(|(_, _, seen)| *seen == generation)
                    .map(|(plan, script, _)| (plan, script));
                let outcome = blame_previous(outcome, before, config.jobs);
                let replayed = record(&shared, &config, &plan, outcome, generation).await;
                // After replays (which may have taken the server down themselves), the next
                // case's failure to connect is nobody's for certain.
                previous = match replayed {
                    true => None,
                    false => played.map(|script| (plan, script, generation)),
                };
                if let Ok(report) = shared.report.lock() {
                    progress(&report);
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    // The last cases were checked by no case after them.
    let stopped = shared.stop.load(Ordering::SeqCst);
    let last_check = match stopped {
        true => Ok(()),
        false => config.target.alive().check(config.wait * 2).await,
    };
    if let Some(spawned) = &shared.spawned {
        spawned.stop().await;
    }
    let mut report = shared.report.lock().map(|r| r.clone()).unwrap_or_default();
    if let Err(why) = last_check {
        report.findings.push(Finding::bare(
            Class::Crash,
            shared.last_case.load(Ordering::SeqCst),
            "-",
            format!("after the last case: {why} (the cases in flight last are suspects)"),
        ));
    }
    let restarts = shared.restarts.load(Ordering::SeqCst);
    let unconfirmed = shared.unconfirmed.load(Ordering::SeqCst);
    if unconfirmed > 0 {
        report.notes.push(unconfirmed_note(unconfirmed));
    }
    if shared.spawned.is_some() {
        report.notes.push(format!(
            "the server was started by the campaign, and again {restarts} time(s) after a crash"
        ));
    }
    report.seconds = started.elapsed().as_secs_f64();
    if report.stopped.is_empty() {
        report.stopped = match (limit, config.duration) {
            (Some(l), _) if report.cases >= l => format!("{l} cases done"),
            (_, Some(d)) => format!("{d:?} spent"),
            _ => "done".into(),
        };
    }
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

/// What the report says of hangs a replay did not show again.
pub(crate) fn unconfirmed_note(count: u64) -> String {
    format!(
        "{count} hang(s) not shown again when replayed on a fresh connection: not counted (a slow \
         answer, not a wedged connection; --no-minimize keeps every hang as found)"
    )
}

/// The server's process whose memory is watched: `--pid`, or the one the campaign started.
fn watched_pid(config: &Config, shared: &Shared) -> Option<u32> {
    config
        .pid
        .or_else(|| shared.spawned.as_ref().and_then(Spawned::pid))
}

/// A crash found at the start of a case (the server no longer answered) is the previous case's on
/// this worker: its script becomes the finding, with a note saying how it was found.
fn blame_previous(outcome: Outcome, previous: Option<(Plan, Script)>, jobs: usize) -> Outcome {
    let Outcome::Found(mut found) = outcome else {
        return outcome;
    };
    let (Some((plan, mut script)), true) = (previous, found.script.steps.is_empty()) else {
        return Outcome::Found(found);
    };
    script.name = format!("fuzz-crash-after-case-{}", plan.index);
    script.steps.push(Step::ExpectAlive {
        within: case::DEFAULT_WAIT,
    });
    let note = if jobs > 1 {
        "the server stopped answering after this case, found at the start of the next case on the \
         same worker; with several jobs another worker's case, or the sum of the cases so far, may \
         be the cause"
    } else {
        "the server stopped answering after this case, found at the start of the next one; the sum \
         of the cases so far may be the cause (replay the campaign with --from-case)"
    };
    script
        .finding
        .insert("class".into(), Class::Crash.name().into());
    script.finding.insert("detail".into(), found.detail.clone());
    script.finding.insert("note".into(), note.into());
    found.script = script;
    Outcome::Found(found)
}

async fn record(
    shared: &Shared,
    config: &Config,
    plan: &Plan,
    outcome: Outcome,
    generation: Option<u64>,
) -> bool {
    {
        let Ok(mut r) = shared.report.lock() else {
            return false;
        };
        r.cases += 1;
        *r.families
            .entry(plan.family.name().to_string())
            .or_default() += 1;
        let state = r.states.entry(plan.state.name().to_string()).or_default();
        state.tried += 1;
        match &outcome {
            Outcome::NotReached(why) => {
                let why: String = why.chars().take(80).collect();
                *r.not_reached.entry(why).or_default() += 1;
            }
            _ => state.reached += 1,
        }
        if let (Some(pid), Some((start, _))) = (watched_pid(config, shared), r.rss_kib) {
            if let Some(now) = rss_kib(pid) {
                r.rss_kib = Some((start, now));
                let leak_reported = r.findings.iter().any(|f| f.class == Class::Leak);
                if now > start + config.max_rss_growth_kib && !leak_reported {
                    r.findings.push(Finding::bare(
                        Class::Leak,
                        plan.index,
                        plan.state.name(),
                        format!(
                            "resident memory grew from {start} KiB to {now} KiB (bound: +{} KiB)",
                            config.max_rss_growth_kib
                        ),
                    ));
                }
            }
        }
    }
    let Outcome::Found(found) = outcome else {
        return false;
    };
    let Found {
        class,
        detail,
        script,
        transcript,
    } = *found;
    // What a case saw of a server since started again is not a finding; of the cases in flight
    // when a started server went down, the first to see it restarts it.
    let restart = match (&shared.spawned, generation) {
        (Some(spawned), Some(seen)) => {
            if spawned.generation.load(Ordering::SeqCst) != seen {
                return false;
            }
            class == Class::Crash
                && spawned
                    .generation
                    .compare_exchange(seen, seen + 1, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
        }
        _ => false,
    };
    // Cases in flight when the target went down all see it: the first crash is the finding.
    if class == Class::Crash && config.stop_on_crash && shared.stop.swap(true, Ordering::SeqCst) {
        return false;
    }
    let steps = script.steps.len();
    let mut script = script;
    if class == Class::Crash && config.jobs > 1 && !script.finding.contains_key("note") {
        script.finding.insert(
            "note".into(),
            "with several jobs, a case in flight on another worker may be the cause".into(),
        );
    }
    let replaying = class != Class::Crash && config.minimize;
    let (script, reproduced) = if replaying {
        match replay(&config.target, &script, config.wait).await {
            Some((c, _)) if c == class => (
                minimize(&config.target, &script, class, config.wait, 16).await,
                true,
            ),
            _ => (script, false),
        }
    } else {
        (script, false)
    };
    // A hang is a wedged connection, not a slow answer: one that a replay does not show again is
    // not counted (the report says how many).
    if replaying && class == Class::Hang && !reproduced {
        shared.unconfirmed.fetch_add(1, Ordering::SeqCst);
        return true;
    }
    // A replay that took the server down says more about the finding.
    let detail = match replaying {
        true => match config.target.alive().check(config.wait * 2).await {
            Ok(()) => detail,
            Err(why) => format!("{detail}; after its replays the server no longer answers: {why}"),
        },
        false => detail,
    };
    let number = shared.found.fetch_add(1, Ordering::SeqCst) as usize + 1;
    let file = finding_file(config.out.as_deref(), number, &script, &transcript);
    {
        let Ok(mut r) = shared.report.lock() else {
            return false;
        };
        r.findings.push(Finding::of_script(
            class,
            &script,
            (plan.index, plan.state.name(), plan.family.name()),
            detail,
            file,
            reproduced,
            steps,
        ));
        if class == Class::Crash && config.stop_on_crash {
            r.stopped = format!("crash at case {}", plan.index);
            shared.stop.store(true, Ordering::SeqCst);
        } else if config.max_findings.is_some_and(|m| r.findings.len() >= m) {
            r.stopped = format!("{} finding(s)", r.findings.len());
            shared.stop.store(true, Ordering::SeqCst);
        }
    }
    if restart && !shared.stop.load(Ordering::SeqCst) {
        if let Some(spawned) = &shared.spawned {
            // Once the cases in flight have ended.
            let _all = spawned.gate.write().await;
            shared.restarts.fetch_add(1, Ordering::SeqCst);
            if let Err(why) = spawned.restart(config.start_wait).await {
                if let Ok(mut r) = shared.report.lock() {
                    r.stopped = format!("the server did not start again: {why}");
                }
                shared.stop.store(true, Ordering::SeqCst);
            }
        }
    }
    replaying || restart
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_merge() {
        let mut a = Report {
            target: "127.0.0.1:1".into(),
            seed: 3,
            shards: vec![Shard { index: 0, count: 2 }],
            cases: 10,
            seconds: 2.0,
            ..Report::default()
        };
        a.states.insert(
            "set-up".into(),
            Reached {
                tried: 5,
                reached: 4,
            },
        );
        let mut b = a.clone();
        b.shards = vec![Shard { index: 1, count: 2 }];
        b.seconds = 3.0;
        b.findings.push(Finding {
            class: Class::Hang,
            case: 7,
            state: "set-up".into(),
            mutation: "x".into(),
            family: "field".into(),
            detail: "d".into(),
            file: None,
            reproduced: true,
            steps: 5,
            minimized_steps: 4,
        });
        let m = Report::merge(&[a, b]);
        assert_eq!(m.cases, 20);
        assert_eq!(m.seconds, 3.0);
        assert_eq!(
            m.states["set-up"],
            Reached {
                tried: 10,
                reached: 8
            }
        );
        assert_eq!(m.shards.len(), 2);
        assert_eq!(m.by_class()["hang"], 1);
        let json = serde_json::to_string(&m).unwrap();
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);
    }
}
