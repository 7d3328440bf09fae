//! Mock Stratum V1 miner: the sans-IO core of an SV1 client that mines real shares with the crate's
//! engine, for pools, proxies and SV1-to-SV2 translators.
//!
//! The conversation ([`Sv1Client`]):
//! 1. [`Sv1Client::start`] sends `mining.configure` (BIP310 version rolling: the requested mask, by
//!    default `ffffffff`, and min-bit-count) when version rolling is wanted, and `mining.subscribe`
//!    (user agent) right behind it, as bmminer does: a server that ignores `mining.configure` cannot
//!    stall the session, and one that answers it does so before the subscribe result.
//! 2. On the subscribe result (`[subscriptions, extranonce1, extranonce2_size]`): `mining.authorize`
//!    (user, password), then, when configured, `mining.extranonce.subscribe` and
//!    `mining.suggest_difficulty` (neither answer is waited for).
//! 3. Notifications: `mining.set_difficulty`, `mining.notify`, `mining.set_version_mask`,
//!    `mining.set_extranonce` (applies to the jobs notified after it, as translators send it right
//!    before the job that needs it), `client.reconnect`, `client.show_message`; requests
//!    `client.get_version` (answered) and unknown ones (answered with error -32601).
//! 4. Once authorized, the newest job is mined: coinbase `coinb1 || extranonce1 || extranonce2 ||
//!    coinb2` (the engine rolls extranonce2), the merkle branch, the header; the version rolled
//!    inside the granted mask. Found shares ([`Sv1Client::share_found`]) are checked again like the
//!    SV2 device's and sent as `mining.submit`; responses settle them (`true`: accepted; `false` or
//!    an error: rejected).
//!
//! Encodings are documented in [`sv2_codec::sv1::encoding`]. Nothing here panics on what the server sends: lines that
//! do not parse and parameters that do not fit are [`Sv1Event::Malformed`] events.
//!
//! Targets: a job is mined at the harder of the difficulty in force when it arrived and the current
//! one, so a share is acceptable whichever of the two the server applies (translators such as SRI's
//! record the target per job).

pub mod driver;

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::miner::check;
use crate::miner::{Counters, ShareProblem};
use sv2_chain::sha256d;
use sv2_chain::target::target_from_difficulty;
use sv2_chain::target::{compact_to_target, meets_target};
use sv2_chain::tx::Transaction;
use sv2_codec::sv1::encoding::{
    configure_mask, difficulty_from_params, set_extranonce_from_params, version_mask_from_params,
    Notify, Submit, Subscribed,
};
use sv2_codec::sv1::json::{Id, RpcError, Sv1Error, Sv1Message};
use sv2_engine::{BlockHeader, CoinbaseParts, Extranonce, Job, MerkleSource, Share, Target};

/// Jobs kept (the oldest is forgotten first).
const MAX_JOBS: usize = 16;
/// Works remembered to map shares back to their job.
const MAX_WORKS: usize = 256;
/// Shares remembered for duplicate detection.
const MAX_SEEN: usize = 1 << 18;
/// Requests waiting for a response that are remembered.
const MAX_PENDING: usize = 1 << 16;

/// How the SV1 miner presents itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Sv1Config {
    /// `mining.authorize` user (also the worker name in `mining.submit`).
    pub user: String,
    pub password: String,
    /// `mining.subscribe` user agent (and the `client.get_version` answer).
    pub user_agent: String,
    /// Ask for BIP310 version rolling with `mining.configure`.
    pub version_rolling: bool,
    /// The mask requested (BIP310 suggests `ffffffff`: the server picks).
    pub version_mask: u32,
    /// `version-rolling.min-bit-count` requested.
    pub min_bit_count: u32,
    /// Send `mining.suggest_difficulty` with this value after authorizing.
    pub suggest_difficulty: Option<f64>,
    /// Send `mining.extranonce.subscribe` after authorizing (announces `mining.set_extranonce`
    /// support; SRI's translator disconnects miners that need it but did not announce it).
    pub extranonce_subscribe: bool,
    /// Send every share found, even those failing the client's checks.
    pub faulty: bool,
    /// How often [`Sv1Client::tick`] reissues work with a later ntime.
    pub ntime_refresh: Duration,
}

impl Default for Sv1Config {
    fn default() -> Self {
        Sv1Config {
            user: "sv2-mock.sv1".into(),
            password: "x".into(),
            user_agent: concat!("sv2-mock/", env!("CARGO_PKG_VERSION")).into(),
            version_rolling: true,
            version_mask: 0xffff_ffff,
            min_bit_count: 2,
            suggest_difficulty: None,
            extranonce_subscribe: true,
            faulty: false,
            ntime_refresh: Duration::from_secs(30),
        }
    }
}

/// Work for the engine (its `job.id` comes back in [`Share::job_id`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Sv1Work {
    pub job_id: String,
    pub job: Job,
}

/// What happened, for the driver's user.
#[derive(Debug, Clone, PartialEq)]
pub enum Sv1Event {
    /// The `mining.configure` answer: the granted mask (None: no version rolling).
    Configured {
        mask: Option<u32>,
    },
    Subscribed {
        extranonce1: Vec<u8>,
        extranonce2_size: usize,
    },
    SubscribeFailed {
        error: Option<RpcError>,
        result: Value,
    },
    Authorized,
    AuthorizeFailed {
        error: Option<RpcError>,
        result: Value,
    },
    DifficultyChanged {
        difficulty: f64,
        target: [u8; 32],
    },
    JobReceived {
        job_id: String,
        clean_jobs: bool,
        /// Time since the subscribe result.
        since_subscribe: Duration,
    },
    /// The job now mined.
    JobActivated {
        job_id: String,
    },
    VersionMaskChanged {
        mask: u32,
    },
    /// `mining.set_extranonce`: used for jobs notified after it.
    ExtranonceChanged {
        extranonce1: Vec<u8>,
        extranonce2_size: usize,
    },
    /// coinb1 || extranonce1 || zero extranonce2 || coinb2 is not a legacy coinbase.
    SuspiciousCoinbase {
        job_id: String,
        reason: String,
    },
    ShareSubmitted {
        id: u64,
        job_id: String,
        extranonce2: Vec<u8>,
        ntime: u32,
        nonce: u32,
        version: u32,
        hash: [u8; 32],
        problem: Option<ShareProblem>,
    },
    ShareDropped {
        job_id: String,
        problem: ShareProblem,
    },
    ShareAccepted {
        id: u64,
        job_id: String,
    },
    ShareRejected {
        id: u64,
        job_id: String,
        error: Option<RpcError>,
    },
    BlockFound {
        job_id: String,
        hash: [u8; 32],
    },
    Reconnect {
        host: Option<String>,
        port: Option<u16>,
        wait: Option<u64>,
    },
    ShowMessage {
        text: String,
    },
    /// A line or parameters that do not parse (at most 200 characters of the line are kept).
    Malformed {
        line: String,
        error: String,
    },
    /// A notification or request with a method the client does not know.
    UnknownMethod {
        method: String,
    },
    /// A response to no pending request.
    UnexpectedResponse {
        id: Id,
    },
    /// A job cannot be mined (extranonce too long).
    CannotMine {
        job_id: String,
        reason: String,
    },
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send this line (the driver adds the newline).
    Send(Sv1Message),
    Work(Sv1Work),
    StopWork,
    Event(Sv1Event),
}

/// Where the client is (drivers pick per-step deadlines from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    NotStarted,
    /// Waiting for the subscribe result.
    Subscribing,
    /// Waiting for the authorize result.
    Authorizing,
    /// Authorized, no job yet.
    AwaitingJob,
    Mining,
    /// Subscribe or authorize failed.
    Failed,
}

#[derive(Debug, Clone, PartialEq)]
enum Pending {
    Configure,
    Subscribe,
    Authorize,
    ExtranonceSubscribe,
    SuggestDifficulty,
    Submit { job_id: String },
}

#[derive(Debug, Clone)]
struct JobData {
    notify: Notify,
    extranonce1: Vec<u8>,
    extranonce2_size: usize,
    target_at_receipt: [u8; 32],
    received: Instant,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SeenShare {
    job_id: String,
    extranonce2: Extranonce,
    ntime: u32,
    version: u32,
    nonce: u32,
}

/// The SV1 client core.
#[derive(Debug)]
pub struct Sv1Client {
    config: Sv1Config,
    phase: Phase,
    next_id: u64,
    pending: BTreeMap<u64, Pending>,
    subscribed_at: Option<Instant>,
    /// extranonce1 and extranonce2_size for jobs notified from now on.
    extranonce: Option<(Vec<u8>, usize)>,
    /// The granted version-rolling mask.
    mask: Option<u32>,
    authorized: bool,
    target: [u8; 32],
    jobs: VecDeque<JobData>,
    active: Option<String>,
    works: BTreeMap<u64, String>,
    next_work: u64,
    next_extranonce: u64,
    last_work_at: Option<Instant>,
    seen: HashSet<SeenShare>,
    counters: Counters,
}

fn clip(line: &str) -> String {
    line.chars().take(200).collect()
}

impl Sv1Client {
    pub fn new(config: Sv1Config) -> Sv1Client {
        Sv1Client {
            config,
            phase: Phase::NotStarted,
            next_id: 1,
            pending: BTreeMap::new(),
            subscribed_at: None,
            extranonce: None,
            mask: None,
            authorized: false,
            // Difficulty 1 until the server says otherwise (the SV1 convention).
            target: target_from_difficulty(1.0).unwrap_or([0xff; 32]),
            jobs: VecDeque::new(),
            active: None,
            works: BTreeMap::new(),
            next_work: 1,
            next_extranonce: 0,
            last_work_at: None,
            seen: HashSet::new(),
            counters: Counters::default(),
        }
    }

    pub fn config(&self) -> &Sv1Config {
        &self.config
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Starts the counters from `counters` (a driver following `client.reconnect` carries the previous
    /// connection's counts into the new session).
    pub fn carry_counters(&mut self, counters: Counters) {
        self.counters = counters;
    }

    /// The granted version-rolling mask.
    pub fn version_mask(&self) -> Option<u32> {
        self.mask
    }

    /// The current share target.
    pub fn target(&self) -> [u8; 32] {
        self.target
    }

    /// The job being mined.
    pub fn active_job(&self) -> Option<&str> {
        self.active.as_deref()
    }

    /// Submits not yet answered.
    pub fn outstanding(&self) -> usize {
        self.pending
            .values()
            .filter(|p| matches!(p, Pending::Submit { .. }))
            .count()
    }

    fn request(&mut self, pending: Pending, method: &str, params: Vec<Value>) -> Output {
        let id = self.next_id;
        self.next_id += 1;
        self.pending.insert(id, pending);
        while self.pending.len() > MAX_PENDING {
            self.pending.pop_first();
        }
        Output::Send(Sv1Message::request(id, method, params))
    }

    /// `mining.configure` (when version rolling is wanted) and `mining.subscribe`.
    pub fn start(&mut self) -> Vec<Output> {
        if self.phase != Phase::NotStarted {
            return Vec::new();
        }
        let mut out = Vec::new();
        if self.config.version_rolling {
            let params = vec![
                json!(["version-rolling"]),
                json!({
                    "version-rolling.mask": sv2_codec::sv1::encoding::u32_to_hex(self.config.version_mask),
                    "version-rolling.min-bit-count": self.config.min_bit_count,
                }),
            ];
            out.push(self.request(Pending::Configure, "mining.configure", params));
        }
        let agent = json!(self.config.user_agent);
        out.push(self.request(Pending::Subscribe, "mining.subscribe", vec![agent]));
        self.phase = Phase::Subscribing;
        out
    }

    /// Parses and handles one line from the server.
    pub fn handle_line(&mut self, line: &str, now: Instant) -> Vec<Output> {
        if line.trim().is_empty() {
            return Vec::new();
        }
        match Sv1Message::parse(line) {
            Ok(m) => self.handle(&m, now),
            Err(e) => vec![malformed(line, &e)],
        }
    }

    /// Handles one message from the server.
    pub fn handle(&mut self, message: &Sv1Message, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        match message {
            Sv1Message::Response { id, result, error } => {
                self.on_response(id, result, error.as_ref(), now, &mut out)
            }
            Sv1Message::Notification { method, params } => {
                self.on_call(None, method, params, now, &mut out)
            }
            Sv1Message::Request { id, method, params } => {
                self.on_call(Some(id), method, params, now, &mut out)
            }
        }
        out
    }

    fn on_call(
        &mut self,
        id: Option<&Id>,
        method: &str,
        params: &Value,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        let bad = |e: Sv1Error| malformed(&format!("{method} {params}"), &e);
        match method {
            "mining.set_difficulty" => match difficulty_from_params(params) {
                Ok(difficulty) => {
                    let target = target_from_difficulty(difficulty).unwrap_or(self.target);
                    self.target = target;
                    out.push(Output::Event(Sv1Event::DifficultyChanged {
                        difficulty,
                        target,
                    }));
                    self.refresh_work(now, out);
                }
                Err(e) => out.push(bad(e)),
            },
            "mining.notify" => match Notify::from_params(params) {
                Ok(notify) => self.on_notify(notify, now, out),
                Err(e) => out.push(bad(e)),
            },
            "mining.set_version_mask" => match version_mask_from_params(params) {
                Ok(mask) => {
                    // The server may narrow or move the mask, never beyond what was requested.
                    let granted = mask & self.config.version_mask;
                    if self.config.version_rolling {
                        self.mask = Some(granted);
                    }
                    out.push(Output::Event(Sv1Event::VersionMaskChanged {
                        mask: granted,
                    }));
                    self.refresh_work(now, out);
                }
                Err(e) => out.push(bad(e)),
            },
            "mining.set_extranonce" => match set_extranonce_from_params(params) {
                Ok(s) => {
                    self.extranonce = Some((s.extranonce1.clone(), s.extranonce2_size));
                    out.push(Output::Event(Sv1Event::ExtranonceChanged {
                        extranonce1: s.extranonce1,
                        extranonce2_size: s.extranonce2_size,
                    }));
                }
                Err(e) => out.push(bad(e)),
            },
            "client.reconnect" => {
                let p = params.as_array().cloned().unwrap_or_default();
                let port = p.get(1).and_then(|v| match v {
                    Value::Number(n) => n.as_u64(),
                    Value::String(s) => s.parse().ok(),
                    _ => None,
                });
                out.push(Output::Event(Sv1Event::Reconnect {
                    host: p.first().and_then(Value::as_str).map(str::to_owned),
                    port: port.and_then(|p| u16::try_from(p).ok()),
                    wait: p.get(2).and_then(Value::as_u64),
                }));
            }
            "client.show_message" => out.push(Output::Event(Sv1Event::ShowMessage {
                text: params
                    .as_array()
                    .and_then(|p| p.first())
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                    .unwrap_or_default(),
            })),
            "client.get_version" => {
                if let Some(id) = id {
                    out.push(Output::Send(Sv1Message::ok(
                        id.clone(),
                        json!(self.config.user_agent),
                    )));
                }
            }
            other => {
                out.push(Output::Event(Sv1Event::UnknownMethod {
                    method: other.chars().take(200).collect(),
                }));
                if let Some(id) = id {
                    out.push(Output::Send(Sv1Message::error(
                        id.clone(),
                        -32601,
                        "Method not found",
                    )));
                }
            }
        }
    }

    fn on_response(
        &mut self,
        id: &Id,
        result: &Value,
        error: Option<&RpcError>,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        let pending = match id {
            Id::Number(n) => self.pending.remove(n).map(|p| (*n, p)),
            _ => None,
        };
        let Some((id, pending)) = pending else {
            out.push(Output::Event(Sv1Event::UnexpectedResponse {
                id: id.clone(),
            }));
            return;
        };
        let ok = error.is_none();
        match pending {
            Pending::Configure => {
                let mask = match (ok, configure_mask(result)) {
                    (true, Ok(mask)) => mask.map(|m| m & self.config.version_mask),
                    (true, Err(e)) => {
                        out.push(malformed(&result.to_string(), &e));
                        None
                    }
                    (false, _) => None,
                };
                self.mask = mask;
                out.push(Output::Event(Sv1Event::Configured { mask }));
                self.refresh_work(now, out);
            }
            Pending::Subscribe => match Subscribed::from_result(result) {
                Ok(s) if ok => {
                    self.subscribed_at = Some(now);
                    self.extranonce = Some((s.extranonce1.clone(), s.extranonce2_size));
                    out.push(Output::Event(Sv1Event::Subscribed {
                        extranonce1: s.extranonce1,
                        extranonce2_size: s.extranonce2_size,
                    }));
                    self.phase = Phase::Authorizing;
                    let params = vec![json!(self.config.user), json!(self.config.password)];
                    out.push(self.request(Pending::Authorize, "mining.authorize", params));
                    if self.config.extranonce_subscribe {
                        out.push(self.request(
                            Pending::ExtranonceSubscribe,
                            "mining.extranonce.subscribe",
                            Vec::new(),
                        ));
                    }
                    if let Some(d) = self.config.suggest_difficulty {
                        out.push(self.request(
                            Pending::SuggestDifficulty,
                            "mining.suggest_difficulty",
                            vec![json!(d)],
                        ));
                    }
                }
                parsed => {
                    if let Err(e) = parsed {
                        if ok {
                            out.push(malformed(&result.to_string(), &e));
                        }
                    }
                    self.phase = Phase::Failed;
                    out.push(Output::Event(Sv1Event::SubscribeFailed {
                        error: error.cloned(),
                        result: result.clone(),
                    }));
                }
            },
            Pending::Authorize => {
                if ok && result == &Value::Bool(true) {
                    self.authorized = true;
                    self.phase = Phase::AwaitingJob;
                    out.push(Output::Event(Sv1Event::Authorized));
                    self.refresh_work(now, out);
                } else {
                    self.phase = Phase::Failed;
                    out.push(Output::Event(Sv1Event::AuthorizeFailed {
                        error: error.cloned(),
                        result: result.clone(),
                    }));
                }
            }
            Pending::ExtranonceSubscribe | Pending::SuggestDifficulty => {}
            Pending::Submit { job_id } => {
                if ok && result == &Value::Bool(true) {
                    self.counters.accepted += 1;
                    out.push(Output::Event(Sv1Event::ShareAccepted { id, job_id }));
                } else {
                    self.counters.rejected += 1;
                    out.push(Output::Event(Sv1Event::ShareRejected {
                        id,
                        job_id,
                        error: error.cloned(),
                    }));
                }
            }
        }
    }

    fn on_notify(&mut self, notify: Notify, now: Instant, out: &mut Vec<Output>) {
        let Some((extranonce1, extranonce2_size)) = self.extranonce.clone() else {
            out.push(malformed(
                &notify.job_id,
                &Sv1Error::field("mining.notify", "before the subscribe result"),
            ));
            return;
        };
        self.counters.jobs += 1;
        out.push(Output::Event(Sv1Event::JobReceived {
            job_id: notify.job_id.clone(),
            clean_jobs: notify.clean_jobs,
            since_subscribe: self
                .subscribed_at
                .map_or(Duration::ZERO, |at| now.saturating_duration_since(at)),
        }));
        // The coinbase with a zero extranonce2 should be a legacy (non-segwit) coinbase.
        let mut tx = notify.coinb1.clone();
        tx.extend_from_slice(&extranonce1);
        tx.resize(tx.len() + extranonce2_size, 0);
        tx.extend_from_slice(&notify.coinb2);
        let suspicious = if tx.len() >= 6 && tx[4] == 0 && tx[5] == 1 {
            Some("carries the BIP141 marker and flag".to_owned())
        } else {
            match Transaction::parse(&tx) {
                Ok(t) if t.is_coinbase() => None,
                Ok(_) => Some("is not a coinbase".to_owned()),
                Err(e) => Some(format!("does not parse: {e}")),
            }
        };
        if let Some(reason) = suspicious {
            out.push(Output::Event(Sv1Event::SuspiciousCoinbase {
                job_id: notify.job_id.clone(),
                reason,
            }));
        }
        if notify.clean_jobs {
            self.jobs.clear();
            self.seen.clear();
        }
        self.jobs.retain(|j| j.notify.job_id != notify.job_id);
        self.jobs.push_back(JobData {
            notify,
            extranonce1,
            extranonce2_size,
            target_at_receipt: self.target,
            received: now,
        });
        while self.jobs.len() > MAX_JOBS {
            self.jobs.pop_front();
        }
        self.active = None;
        self.refresh_work(now, out);
    }

    /// Hands the newest job (at the current mask and target) to the engine, when authorized.
    fn refresh_work(&mut self, now: Instant, out: &mut Vec<Output>) {
        if !self.authorized {
            return;
        }
        let Some(job) = self.jobs.back() else {
            return;
        };
        let job_id = job.notify.job_id.clone();
        if self.active.as_deref() != Some(&job_id) {
            out.push(Output::Event(Sv1Event::JobActivated {
                job_id: job_id.clone(),
            }));
        }
        self.active = Some(job_id.clone());
        let len = job.extranonce2_size;
        let step = match len {
            0 => 0,
            1..=3 => 1u64 << (4 * len),
            _ => 1 << 20,
        };
        let start = self.next_extranonce;
        self.next_extranonce = self.next_extranonce.wrapping_add(step);
        let elapsed = now.saturating_duration_since(job.received).as_secs();
        let engine_job = Job {
            id: self.next_work,
            version: job.notify.version,
            version_mask: self.mask.unwrap_or(0),
            prev_hash: job.notify.prev_hash,
            merkle: MerkleSource::Coinbase(CoinbaseParts {
                prefix: job.notify.coinb1.clone(),
                extranonce_prefix: job.extranonce1.clone(),
                extranonce_len: len,
                extranonce_start: start,
                suffix: job.notify.coinb2.clone(),
                merkle_path: job.notify.merkle_branch.clone(),
            }),
            ntime: job
                .notify
                .ntime
                .saturating_add(u32::try_from(elapsed).unwrap_or(u32::MAX)),
            ntime_roll: 0,
            nbits: job.notify.nbits,
            target: Target(check::min_target(&job.target_at_receipt, &self.target)),
            nonce_start: 0,
            nonce_end: u32::MAX,
        };
        self.last_work_at = Some(now);
        if let Err(e) = engine_job.validate() {
            self.phase = Phase::AwaitingJob;
            out.push(Output::StopWork);
            out.push(Output::Event(Sv1Event::CannotMine {
                job_id,
                reason: e.to_string(),
            }));
            return;
        }
        self.works.insert(self.next_work, job_id.clone());
        self.next_work += 1;
        while self.works.len() > MAX_WORKS {
            self.works.pop_first();
        }
        self.phase = Phase::Mining;
        out.push(Output::Work(Sv1Work {
            job_id,
            job: engine_job,
        }));
    }

    /// A share the engine found: checked again, then `mining.submit` (or dropped with the reason).
    pub fn share_found(&mut self, share: &Share, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        self.counters.found += 1;
        let Some(job_id) = self.works.get(&share.job_id).cloned() else {
            self.counters.dropped += 1;
            out.push(Output::Event(Sv1Event::ShareDropped {
                job_id: String::new(),
                problem: ShareProblem::UnknownWork,
            }));
            return out;
        };
        let mask = self.mask.unwrap_or(0);
        let job = self.jobs.iter().find(|j| j.notify.job_id == job_id);
        let mut hash = share.hash;
        let mut block = false;
        let problem = match job {
            None => Some(ShareProblem::Stale),
            Some(job) => {
                let n = &job.notify;
                let root = sv2_chain::merkle::coinbase_merkle_root(
                    &n.coinb1,
                    &job.extranonce1,
                    share.extranonce.as_slice(),
                    &n.coinb2,
                    &n.merkle_branch,
                );
                hash = sha256d(
                    &BlockHeader {
                        version: share.version,
                        prev_hash: n.prev_hash,
                        merkle_root: root,
                        ntime: share.ntime,
                        nbits: n.nbits,
                        nonce: share.nonce,
                    }
                    .to_bytes(),
                );
                block = compact_to_target(n.nbits).is_ok_and(|t| meets_target(&hash, &t));
                let elapsed = now.saturating_duration_since(job.received).as_secs();
                let max_ntime = n
                    .ntime
                    .saturating_add(u32::try_from(elapsed).unwrap_or(u32::MAX));
                let target = check::min_target(&job.target_at_receipt, &self.target);
                if share.extranonce.len() != job.extranonce2_size {
                    Some(ShareProblem::ExtranonceLength {
                        len: share.extranonce.len(),
                        expected: job.extranonce2_size,
                    })
                } else if (share.version ^ n.version) & !mask != 0 {
                    Some(ShareProblem::VersionOutsideMask {
                        version: share.version,
                        job_version: n.version,
                        mask,
                    })
                } else if share.ntime < n.ntime || share.ntime > max_ntime {
                    Some(ShareProblem::NtimeOutOfRange {
                        ntime: share.ntime,
                        min: n.ntime,
                        max: max_ntime,
                    })
                } else if hash != share.hash {
                    Some(ShareProblem::HashMismatch)
                } else if !meets_target(&hash, &target) {
                    Some(ShareProblem::AboveTarget)
                } else if self.seen.contains(&SeenShare {
                    job_id: job_id.clone(),
                    extranonce2: share.extranonce,
                    ntime: share.ntime,
                    version: share.version,
                    nonce: share.nonce,
                }) {
                    Some(ShareProblem::Duplicate)
                } else {
                    None
                }
            }
        };
        let problem = match problem {
            None if !self.authorized => Some(ShareProblem::Stale),
            p => p,
        };
        if let Some(p) = problem.clone().filter(|_| !self.config.faulty) {
            self.counters.dropped += 1;
            out.push(Output::Event(Sv1Event::ShareDropped { job_id, problem: p }));
            return out;
        }
        if self.seen.len() >= MAX_SEEN {
            self.seen.clear();
        }
        self.seen.insert(SeenShare {
            job_id: job_id.clone(),
            extranonce2: share.extranonce,
            ntime: share.ntime,
            version: share.version,
            nonce: share.nonce,
        });
        let submit = Submit {
            worker: self.config.user.clone(),
            job_id: job_id.clone(),
            extranonce2: share.extranonce.as_slice().to_vec(),
            ntime: share.ntime,
            nonce: share.nonce,
            // BIP310: sent whenever rolling was negotiated (servers such as SRI's refuse a submit
            // without it then), as the rolled bits.
            version_bits: self.mask.map(|m| share.version & m),
        };
        let id = self.next_id;
        out.push(self.request(
            Pending::Submit {
                job_id: job_id.clone(),
            },
            "mining.submit",
            submit.to_params(),
        ));
        self.counters.submitted += 1;
        let clean = problem.is_none();
        out.push(Output::Event(Sv1Event::ShareSubmitted {
            id,
            job_id: job_id.clone(),
            extranonce2: submit.extranonce2,
            ntime: share.ntime,
            nonce: share.nonce,
            version: share.version,
            hash,
            problem,
        }));
        if block && clean {
            self.counters.blocks += 1;
            out.push(Output::Event(Sv1Event::BlockFound { job_id, hash }));
        }
        out
    }

    /// Call about once a second: reissues the current job's work with a later ntime when
    /// [`Sv1Config::ntime_refresh`] has passed since the last work.
    pub fn tick(&mut self, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        let due = self.active.is_some()
            && self
                .last_work_at
                .is_some_and(|at| now.saturating_duration_since(at) >= self.config.ntime_refresh);
        if due {
            self.refresh_work(now, &mut out);
        }
        out
    }
}

fn malformed(line: &str, e: &Sv1Error) -> Output {
    Output::Event(Sv1Event::Malformed {
        line: clip(line),
        error: e.to_string(),
    })
}
