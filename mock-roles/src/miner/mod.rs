//! Mock SV2 mining device: the sans-IO core of a Mining Protocol client (spec §5) that opens one channel
//! (standard or extended) and mines real shares with the crate's engine.
//!
//! The driver ([`driver`]) calls [`Device::start`], feeds every decoded message to [`Device::handle`]
//! and every share the engine finds to [`Device::share_found`], and carries out the returned
//! [`Output`]s: messages to send, [`Work`] for the engine (a ready [`sv2_engine::Job`]), stopping
//! the engine, and [`Event`]s to report. [`Device::tick`] (about once a second) moves ntime on for long
//! jobs. Time is passed in; nothing here does I/O.
//!
//! The device acts; it does not judge. Whether what the pool sends breaks the spec is decided by the
//! conformance suite's monitor, which a driver's user can run over the device's transcript, live (the
//! driver hands each entry to [`driver::DeviceDriverConfig::observer`]) or afterwards. The device
//! carries on as sensibly as it can with whatever comes: it ignores what addresses no channel of its
//! own, caps a target above its max_target, and so on. Shares are checked again before they are sent (job still valid, version in
//! the mask, ntime in range, hash recomputed from the job with the chain module and at most the
//! target, not a duplicate); a share that fails is reported and dropped, unless
//! [`DeviceConfig::faulty`] asks for it to be sent anyway.
//!
//! Choices where the spec leaves room:
//! - Targets: SetTarget applies to future jobs and to jobs received without min_ntime, but not to
//!   jobs received with min_ntime set (§5.3.21). The device submits a share only when it meets both
//!   the channel's current target and the target in force when its job arrived, so that a share is
//!   never rejected under either reading. Targets above the requested max_target are reported and
//!   capped at it.
//! - SetExtranoncePrefix applies to jobs received after it (§5.3.10); a job keeps the prefix that was
//!   in force when it arrived.
//! - After SetNewPrevHash only the job it names is valid (§5.3.17); jobs that arrive later with
//!   min_ntime set join it, and shares of any valid job are submitted.
//! - ntime starts at the job's min_ntime (or the prevhash's) and, for work reissued by
//!   [`Device::tick`], moves on by the seconds elapsed since the job was activated (§5.3.11's bound).

pub mod check;
pub mod driver;
pub mod events;
pub mod runner;
pub mod stats;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::{Duration, Instant};

use sv2_codec::messages::common::{SetupConnection, SetupConnectionSuccess};
use sv2_codec::messages::mining::{
    CloseChannel, NewExtendedMiningJob, NewMiningJob, OpenExtendedMiningChannel,
    OpenStandardMiningChannel, SetNewPrevHash, SubmitSharesError, SubmitSharesExtended,
    SubmitSharesStandard, SubmitSharesSuccess, UpdateChannel,
};
use sv2_codec::types::{Str0_255, B0_32, U256};
use sv2_codec::Message;

use sv2_chain::sha256d;
use sv2_chain::target::{compact_to_target, meets_target};
use sv2_engine::{BlockHeader, Extranonce, Job, Share, Target};

use crate::work::JobBody;

pub use events::{Event, ShareProblem};

use sv2_codec::messages::flags::{
    REQUIRES_FIXED_VERSION, REQUIRES_STANDARD_JOBS, REQUIRES_VERSION_ROLLING,
};
use sv2_codec::messages::protocol::MINING as PROTOCOL_MINING;
/// BIP323's general-purpose version bits (5..=28), the bits §5.1 lets a miner roll.
pub use sv2_engine::BIP323_VERSION_MASK;

/// Shares sent and not yet acknowledged that the device remembers (oldest forgotten first).
const MAX_OUTSTANDING: usize = 1 << 16;
/// Shares remembered for duplicate detection (cleared with every new prevhash).
const MAX_SEEN: usize = 1 << 18;
/// Works remembered to map the engine's shares back to their job.
const MAX_WORKS: usize = 256;
/// Jobs kept per channel (future and valid).
const MAX_JOBS: usize = 64;

/// The kind of channel the device opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    /// Header-only mining: the pool sends merkle roots (NewMiningJob).
    Standard,
    /// The device rolls its own extranonce in the coinbase (NewExtendedMiningJob).
    Extended,
}

/// How the device presents itself and what it asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceConfig {
    /// OpenMiningChannel.user_identity (at most 255 bytes).
    pub user_identity: String,
    /// OpenMiningChannel.nominal_hash_rate, h/s.
    pub nominal_hash_rate: f32,
    pub channel: ChannelKind,
    /// OpenExtendedMiningChannel.min_extranonce_size (extended channels).
    pub min_extranonce_size: u16,
    /// Roll version bits (and set REQUIRES_VERSION_ROLLING unless `setup_flags` says otherwise).
    pub version_rolling: bool,
    /// The version bits rolled when allowed (default [`BIP323_VERSION_MASK`]).
    pub version_mask: u32,
    /// SetupConnection.flags as sent; `None` derives them: REQUIRES_STANDARD_JOBS for a standard
    /// channel, REQUIRES_VERSION_ROLLING when `version_rolling`.
    pub setup_flags: Option<u32>,
    /// OpenMiningChannel.max_target (little-endian).
    pub max_target: [u8; 32],
    /// OpenMiningChannel.request_id.
    pub request_id: u32,
    pub endpoint_host: String,
    pub endpoint_port: u16,
    pub vendor: String,
    pub hardware_version: String,
    pub firmware: String,
    pub device_id: String,
    /// Send every share the engine finds, even when the device's own checks fail (stale, above
    /// target, duplicate, ...). For testing how a pool rejects.
    pub faulty: bool,
    /// Faulty: read a BOOL by its whole byte (version_rolling_allowed sent as 0xFE is True), for
    /// testing conformance checks.
    pub bool_whole_byte: bool,
    /// Faulty: read a job's min_ntime OPTION whose prefix is above 1 as present (the codec
    /// refuses it), for testing conformance checks.
    pub option_any_prefix: bool,
    /// How often [`Device::tick`] reissues the current job's work with a later ntime.
    pub ntime_refresh: Duration,
}

impl Default for DeviceConfig {
    fn default() -> Self {
        DeviceConfig {
            user_identity: "sv2-mock.device".into(),
            nominal_hash_rate: 10_000_000.0,
            channel: ChannelKind::Standard,
            min_extranonce_size: 4,
            version_rolling: true,
            version_mask: BIP323_VERSION_MASK,
            setup_flags: None,
            max_target: [0xff; 32],
            request_id: 1,
            endpoint_host: "127.0.0.1".into(),
            endpoint_port: 34254,
            vendor: "sv2-toolkit".into(),
            hardware_version: "cpu".into(),
            firmware: concat!("sv2-mock ", env!("CARGO_PKG_VERSION")).into(),
            device_id: String::new(),
            faulty: false,
            bool_whole_byte: false,
            option_any_prefix: false,
            ntime_refresh: Duration::from_secs(30),
        }
    }
}

impl DeviceConfig {
    /// The SetupConnection.flags the device sends.
    pub fn flags(&self) -> u32 {
        self.setup_flags.unwrap_or_else(|| {
            let mut flags = 0;
            if self.channel == ChannelKind::Standard {
                flags |= REQUIRES_STANDARD_JOBS;
            }
            if self.version_rolling {
                flags |= REQUIRES_VERSION_ROLLING;
            }
            flags
        })
    }
}

/// A configuration that cannot be put on the wire.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("{field} is {len} bytes long (STR0_255 holds at most 255)")]
    TooLong { field: &'static str, len: usize },
    #[error("min_extranonce_size {0} is above 32 (SubmitSharesExtended.extranonce is B0_32)")]
    MinExtranonceSize(u16),
    #[error("nominal_hash_rate {0} is not a finite non-negative number")]
    HashRate(f32),
}

/// Work for the engine: `job` is ready for [`sv2_engine::Miner::replace_job`]; its `id` is the
/// work id that comes back in the engine's [`Share::job_id`].
#[derive(Debug, Clone, PartialEq)]
pub struct Work {
    pub channel_id: u32,
    /// The SV2 job_id.
    pub job_id: u32,
    pub job: Job,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send a message upstream.
    Send(Message<'static>),
    /// Mine this work (replacing any other).
    Work(Work),
    /// Stop mining (no valid job).
    StopWork,
    /// Report.
    Event(Event),
}

/// Where the device is in its conversation (drivers pick per-step deadlines from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// [`Device::start`] not called yet.
    NotStarted,
    /// SetupConnection sent.
    AwaitingSetup,
    /// Open*MiningChannel sent.
    AwaitingChannel,
    /// The channel is open; no job can be mined yet.
    AwaitingJob,
    /// A job is being mined.
    Mining,
    /// The channel was closed (by either side).
    Closed,
    /// Setup or the channel was refused.
    Failed,
}

/// Running totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Jobs received (standard and extended).
    pub jobs: u64,
    /// Shares the engine reported.
    pub found: u64,
    /// Shares sent.
    pub submitted: u64,
    /// Sum of SubmitShares.Success.new_submits_accepted_count.
    pub accepted: u64,
    /// SubmitShares.Error received.
    pub rejected: u64,
    /// Of those, shares whose job was replaced while they were in flight (stale through nobody's
    /// fault, whatever the error code).
    pub stale: u64,
    /// Found shares not sent (stale, above target, duplicate, ...).
    pub dropped: u64,
    /// Shares meeting the network target.
    pub blocks: u64,
    /// Sum of SubmitShares.Success.new_shares_sum.
    pub shares_sum: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Activation {
    prev_hash: [u8; 32],
    nbits: u32,
    /// The first ntime (min_ntime of the job or of the prevhash).
    ntime: u32,
    at: Instant,
}

#[derive(Debug, Clone)]
struct JobData {
    version: u32,
    /// Whether this device rolls this job's version.
    rolling: bool,
    body: JobBody,
    /// The channel's extranonce_prefix when the job arrived.
    extranonce_prefix: Vec<u8>,
    /// The channel target when the job arrived with min_ntime set (SetTarget does not apply to it).
    target_at_receipt: Option<[u8; 32]>,
    activation: Option<Activation>,
}

#[derive(Debug, Clone, Copy)]
struct PrevHash {
    prev_hash: [u8; 32],
    min_ntime: u32,
    nbits: u32,
}

/// The fields of either Open*.Success.
#[derive(Debug)]
struct Opened {
    kind: ChannelKind,
    request_id: u32,
    channel_id: u32,
    group_channel_id: u32,
    target: [u8; 32],
    extranonce_prefix: Vec<u8>,
    extranonce_size: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SeenShare {
    job_id: u32,
    extranonce: Extranonce,
    ntime: u32,
    version: u32,
    nonce: u32,
}

#[derive(Debug)]
struct Channel {
    id: u32,
    kind: ChannelKind,
    group_id: u32,
    /// Effective target: the pool's, capped at max_target.
    target: [u8; 32],
    extranonce_prefix: Vec<u8>,
    extranonce_size: usize,
    jobs: BTreeMap<u32, JobData>,
    /// Jobs valid on the current prevhash.
    valid: BTreeSet<u32>,
    active: Option<u32>,
    prev: Option<PrevHash>,
    next_sequence: u32,
    /// Sent and not yet settled: sequence number -> job_id.
    outstanding: BTreeMap<u32, u32>,
    seen: HashSet<SeenShare>,
    next_extranonce: u64,
    last_work_at: Option<Instant>,
    closed: bool,
}

impl Channel {
    fn effective_target(&self, job: &JobData) -> [u8; 32] {
        match &job.target_at_receipt {
            Some(t) => check::min_target(t, &self.target),
            None => self.target,
        }
    }
}

/// The device core.
#[derive(Debug)]
pub struct Device {
    config: DeviceConfig,
    flags: u32,
    phase: Phase,
    success_flags: u32,
    setup_at: Option<Instant>,
    awaiting_request: Option<u32>,
    channel: Option<Channel>,
    works: BTreeMap<u64, u32>,
    next_work: u64,
    counters: Counters,
}

fn str255(field: &'static str, s: &str) -> Result<Str0_255<'static>, ConfigError> {
    Str0_255::new(s.as_bytes().to_vec()).map_err(|_| ConfigError::TooLong {
        field,
        len: s.len(),
    })
}

/// Text of an error/reason code.
fn code_text(code: &Str0_255<'_>) -> String {
    String::from_utf8_lossy(code.as_bytes()).into_owned()
}

fn secs_since(at: Instant, now: Instant) -> u32 {
    u32::try_from(now.saturating_duration_since(at).as_secs()).unwrap_or(u32::MAX)
}

impl Device {
    /// A device; the configuration is checked against the wire limits.
    pub fn new(config: DeviceConfig) -> Result<Device, ConfigError> {
        for (field, value) in [
            ("user_identity", &config.user_identity),
            ("endpoint_host", &config.endpoint_host),
            ("vendor", &config.vendor),
            ("hardware_version", &config.hardware_version),
            ("firmware", &config.firmware),
            ("device_id", &config.device_id),
        ] {
            str255(field, value)?;
        }
        if config.min_extranonce_size > 32 {
            return Err(ConfigError::MinExtranonceSize(config.min_extranonce_size));
        }
        if !config.nominal_hash_rate.is_finite() || config.nominal_hash_rate < 0.0 {
            return Err(ConfigError::HashRate(config.nominal_hash_rate));
        }
        Ok(Device {
            flags: config.flags(),
            config,
            phase: Phase::NotStarted,
            success_flags: 0,
            setup_at: None,
            awaiting_request: None,
            channel: None,
            works: BTreeMap::new(),
            next_work: 1,
            counters: Counters::default(),
        })
    }

    pub fn config(&self) -> &DeviceConfig {
        &self.config
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Starts the counters from `counters` (a driver following `Reconnect` carries the previous
    /// connection's counts into the new session).
    pub fn carry_counters(&mut self, counters: Counters) {
        self.counters = counters;
    }

    /// The open channel's id.
    pub fn channel_id(&self) -> Option<u32> {
        self.channel.as_ref().map(|c| c.id)
    }

    /// The target the device mines at (the pool's, capped at max_target).
    pub fn target(&self) -> Option<[u8; 32]> {
        self.channel.as_ref().map(|c| c.target)
    }

    /// The job being mined.
    pub fn active_job(&self) -> Option<u32> {
        self.channel.as_ref().and_then(|c| c.active)
    }

    /// Shares sent and not yet acknowledged or rejected.
    pub fn outstanding(&self) -> usize {
        self.channel.as_ref().map_or(0, |c| c.outstanding.len())
    }

    /// SetupConnection (protocol 0, version 2, the configured flags and strings).
    pub fn start(&mut self) -> Vec<Output> {
        if self.phase != Phase::NotStarted {
            return Vec::new();
        }
        self.phase = Phase::AwaitingSetup;
        let c = &self.config;
        // Checked in `new`.
        let s = |field, v: &str| str255(field, v).unwrap_or_else(|_| Str0_255::default());
        let setup = SetupConnection {
            protocol: PROTOCOL_MINING,
            min_version: 2,
            max_version: 2,
            flags: self.flags,
            endpoint_host: s("endpoint_host", &c.endpoint_host),
            endpoint_port: c.endpoint_port,
            vendor: s("vendor", &c.vendor),
            hardware_version: s("hardware_version", &c.hardware_version),
            firmware: s("firmware", &c.firmware),
            device_id: s("device_id", &c.device_id),
        };
        vec![Output::Send(setup.into())]
    }

    /// Handles one message from upstream at `now`.
    pub fn handle(&mut self, message: &Message<'_>, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        let name = message.name();
        match self.phase {
            // Nothing is answered before SetupConnection.Success.
            Phase::NotStarted => return out,
            Phase::AwaitingSetup
                if !matches!(
                    message,
                    Message::SetupConnectionSuccess(_) | Message::SetupConnectionError(_)
                ) =>
            {
                return out;
            }
            _ => {}
        }
        match message {
            Message::SetupConnectionSuccess(m) => self.on_setup_success(m, now, &mut out),
            Message::SetupConnectionError(m) => {
                if self.phase != Phase::AwaitingSetup {
                    out.push(unexpected(name));
                } else {
                    let error_code = code_text(&m.error_code);
                    self.phase = Phase::Failed;
                    out.push(Output::Event(Event::SetupRefused {
                        flags: m.flags,
                        error_code,
                    }));
                }
            }
            Message::OpenStandardMiningChannelSuccess(m) => {
                let opened = Opened {
                    kind: ChannelKind::Standard,
                    request_id: m.request_id,
                    channel_id: m.channel_id,
                    group_channel_id: m.group_channel_id,
                    target: m.target.0,
                    extranonce_prefix: m.extranonce_prefix.as_bytes().to_vec(),
                    extranonce_size: 0,
                };
                self.on_open(opened, &mut out);
            }
            Message::OpenExtendedMiningChannelSuccess(m) => {
                let opened = Opened {
                    kind: ChannelKind::Extended,
                    request_id: m.request_id,
                    channel_id: m.channel_id,
                    group_channel_id: m.group_channel_id,
                    target: m.target.0,
                    extranonce_prefix: m.extranonce_prefix.as_bytes().to_vec(),
                    extranonce_size: m.extranonce_size,
                };
                self.on_open(opened, &mut out);
            }
            Message::OpenMiningChannelError(m) => {
                // An answer to no request of the device's is ignored.
                if self.awaiting_request == Some(m.request_id) {
                    let error_code = code_text(&m.error_code);
                    self.awaiting_request = None;
                    self.phase = Phase::Failed;
                    out.push(Output::Event(Event::ChannelRefused {
                        request_id: m.request_id,
                        error_code,
                    }));
                }
            }
            Message::NewMiningJob(m) => self.on_new_mining_job(m, now, &mut out),
            Message::NewExtendedMiningJob(m) => self.on_new_extended_job(m, now, &mut out),
            Message::SetNewPrevHash(m) => self.on_set_new_prev_hash(m, now, &mut out),
            Message::SetTarget(m) => {
                if self.channel_for(m.channel_id, true) {
                    self.on_set_target(m.maximum_target.0, now, &mut out);
                }
            }
            Message::SetExtranoncePrefix(m) => {
                let group = self
                    .channel
                    .as_ref()
                    .filter(|c| c.group_id == m.channel_id && c.id != m.channel_id)
                    .map(|c| c.group_id);
                // Not for a group (§5.3.10): ignored. A prefix too long for the extranonce leaves
                // jobs that cannot be mined (CannotMine).
                if group.is_none() && self.channel_for(m.channel_id, false) {
                    let prefix = m.extranonce_prefix.as_bytes().to_vec();
                    if let Some(ch) = self.channel.as_mut() {
                        ch.extranonce_prefix = prefix.clone();
                    }
                    out.push(Output::Event(Event::ExtranoncePrefixChanged {
                        extranonce_prefix: prefix,
                    }));
                }
            }
            Message::SetGroupChannel(m) => {
                let ids: Vec<u32> = m.channel_ids.iter().copied().collect();
                if let Some(ch_id) = self.channel_id() {
                    // A group id equal to the channel's own is not taken.
                    if m.group_channel_id != ch_id && ids.contains(&ch_id) {
                        if let Some(ch) = self.channel.as_mut() {
                            ch.group_id = m.group_channel_id;
                        }
                    }
                }
                out.push(Output::Event(Event::GroupChannel {
                    group_channel_id: m.group_channel_id,
                    channel_ids: ids,
                }));
            }
            Message::SubmitSharesSuccess(m) => {
                if self.channel_for_answer(m.channel_id) {
                    self.on_shares_success(m, &mut out);
                }
            }
            Message::SubmitSharesError(m) => {
                if self.channel_for_answer(m.channel_id) {
                    self.on_shares_error(m, &mut out);
                }
            }
            Message::CloseChannel(m) => {
                if self.channel_for(m.channel_id, true) {
                    let reason_code = code_text(&m.reason_code);
                    if let Some(ch) = self.channel.as_mut() {
                        ch.closed = true;
                        ch.active = None;
                        ch.valid.clear();
                    }
                    self.phase = Phase::Closed;
                    out.push(Output::StopWork);
                    out.push(Output::Event(Event::ChannelClosed { reason_code }));
                }
            }
            Message::UpdateChannelError(m) => {
                if self.channel_for(m.channel_id, false) {
                    let error_code = code_text(&m.error_code);
                    out.push(Output::Event(Event::UpdateRefused { error_code }));
                }
            }
            Message::Reconnect(m) => out.push(Output::Event(Event::Reconnect {
                new_host: String::from_utf8_lossy(m.new_host.as_bytes()).into_owned(),
                new_port: m.new_port,
            })),
            Message::ChannelEndpointChanged(m) => {
                if self.channel_for(m.channel_id, true) {
                    out.push(Output::Event(Event::ChannelEndpointChanged {
                        channel_id: m.channel_id,
                    }));
                }
            }
            _ => out.push(unexpected(name)),
        }
        out
    }

    /// Whether `channel_id` addresses the open channel (or, with `group_ok`, its group) and the
    /// channel is still open; what addresses no channel of the device's is ignored.
    fn channel_for(&self, channel_id: u32, group_ok: bool) -> bool {
        self.channel.as_ref().is_some_and(|ch| {
            !ch.closed && (ch.id == channel_id || (group_ok && ch.group_id == channel_id))
        })
    }

    /// As [`Device::channel_for`], for answers to shares: they settle shares sent before a close.
    fn channel_for_answer(&self, channel_id: u32) -> bool {
        self.channel.as_ref().is_some_and(|ch| ch.id == channel_id)
    }

    fn on_setup_success(
        &mut self,
        m: &SetupConnectionSuccess,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        if self.phase != Phase::AwaitingSetup {
            out.push(unexpected("SetupConnection.Success"));
            return;
        }
        self.success_flags = m.flags;
        self.setup_at = Some(now);
        out.push(Output::Event(Event::SetupDone {
            used_version: m.used_version,
            flags: m.flags,
        }));
        self.phase = Phase::AwaitingChannel;
        let c = &self.config;
        let request_id = c.request_id;
        self.awaiting_request = Some(request_id);
        let user_identity =
            str255("user_identity", &c.user_identity).unwrap_or_else(|_| Str0_255::default());
        let open: Message<'static> = match c.channel {
            ChannelKind::Standard => OpenStandardMiningChannel {
                request_id,
                user_identity,
                nominal_hash_rate: c.nominal_hash_rate,
                max_target: U256(c.max_target),
            }
            .into(),
            ChannelKind::Extended => OpenExtendedMiningChannel {
                request_id,
                user_identity,
                nominal_hash_rate: c.nominal_hash_rate,
                max_target: U256(c.max_target),
                min_extranonce_size: c.min_extranonce_size,
            }
            .into(),
        };
        out.push(Output::Send(open));
    }

    /// Open*.Success: an answer to the device's request opens the channel (its target capped at
    /// max_target); any other is ignored.
    fn on_open(&mut self, o: Opened, out: &mut Vec<Output>) {
        if self.phase != Phase::AwaitingChannel || self.awaiting_request != Some(o.request_id) {
            return;
        }
        self.awaiting_request = None;
        let max = self.config.max_target;
        let effective = check::min_target(&o.target, &max);
        self.channel = Some(Channel {
            id: o.channel_id,
            kind: o.kind,
            group_id: o.group_channel_id,
            target: effective,
            extranonce_prefix: o.extranonce_prefix.clone(),
            extranonce_size: usize::from(o.extranonce_size),
            jobs: BTreeMap::new(),
            valid: BTreeSet::new(),
            active: None,
            prev: None,
            next_sequence: 0,
            outstanding: BTreeMap::new(),
            seen: HashSet::new(),
            next_extranonce: 0,
            last_work_at: None,
            closed: false,
        });
        self.phase = Phase::AwaitingJob;
        out.push(Output::Event(Event::ChannelOpened {
            channel_id: o.channel_id,
            kind: o.kind,
            target: o.target,
            effective_target: effective,
            extranonce_prefix: o.extranonce_prefix,
            extranonce_size: o.extranonce_size,
            group_channel_id: o.group_channel_id,
        }));
    }

    fn on_new_mining_job(&mut self, m: &NewMiningJob, now: Instant, out: &mut Vec<Output>) {
        // Only for the device's own open standard channel (not its group: a group gets extended
        // jobs); anything else is ignored.
        let ours = self.channel.as_ref().is_some_and(|ch| {
            !ch.closed && ch.id == m.channel_id && ch.kind == ChannelKind::Standard
        });
        if !ours {
            return;
        }
        self.receive_job(m.channel_id, crate::work::JobData::standard(m), now, out);
    }

    fn on_new_extended_job(
        &mut self,
        m: &NewExtendedMiningJob<'_>,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        if !self.channel_for(m.channel_id, true) {
            return;
        }
        // Also on a standard channel (addressed to it, or to its group although standard jobs were
        // required): mined, the coinbase with the channel's extranonce_prefix giving the merkle root.
        self.receive_job(m.channel_id, crate::work::JobData::extended(m), now, out);
    }

    /// A job the channel (or its group) received, parsed by the shared client view.
    fn receive_job(
        &mut self,
        channel_id: u32,
        received: crate::work::JobData,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        let crate::work::JobData {
            id: job_id,
            version,
            min_ntime,
            body,
        } = received;
        self.counters.jobs += 1;
        let fixed = self.success_flags & REQUIRES_FIXED_VERSION != 0;
        let rolling = self.config.version_rolling && !fixed && body.version_rolling_allowed();
        let extended = matches!(body, JobBody::Extended { .. });
        let Some(ch) = self.channel.as_ref() else {
            return;
        };
        let prev = ch.prev;
        let data = JobData {
            version,
            rolling,
            body,
            extranonce_prefix: ch.extranonce_prefix.clone(),
            target_at_receipt: min_ntime.map(|_| ch.target),
            activation: None,
        };
        out.push(Output::Event(Event::JobReceived {
            channel_id,
            job_id,
            extended,
            future: min_ntime.is_none(),
            since_setup: self
                .setup_at
                .map_or(Duration::ZERO, |at| now.saturating_duration_since(at)),
        }));
        let mut activation = None;
        // Active at once on the last prev hash (none yet: not mined until a SetNewPrevHash names it,
        // which it cannot, not being a future job).
        if let (Some(t), Some(p)) = (min_ntime, prev) {
            activation = Some(Activation {
                prev_hash: p.prev_hash,
                nbits: p.nbits,
                ntime: t,
                at: now,
            });
        }
        let Some(ch) = self.channel.as_mut() else {
            return;
        };
        ch.jobs.insert(job_id, JobData { activation, ..data });
        // Keep the newest jobs (valid ones first).
        while ch.jobs.len() > MAX_JOBS {
            let victim = ch
                .jobs
                .keys()
                .copied()
                .find(|id| !ch.valid.contains(id) && *id != job_id)
                .or_else(|| ch.jobs.keys().copied().find(|id| *id != job_id));
            match victim {
                Some(v) => {
                    ch.jobs.remove(&v);
                    ch.valid.remove(&v);
                }
                None => break,
            }
        }
        if activation.is_some() {
            ch.valid.insert(job_id);
            ch.active = Some(job_id);
            self.activate(now, out);
        }
    }

    fn on_set_new_prev_hash(&mut self, m: &SetNewPrevHash, now: Instant, out: &mut Vec<Output>) {
        if !self.channel_for(m.channel_id, true) {
            return;
        }
        out.push(Output::Event(Event::NewPrevHash {
            job_id: m.job_id,
            prev_hash: m.prev_hash.0,
            min_ntime: m.min_ntime,
            nbits: m.nbits,
        }));
        let Some(ch) = self.channel.as_mut() else {
            return;
        };
        let prev = PrevHash {
            prev_hash: m.prev_hash.0,
            min_ntime: m.min_ntime,
            nbits: m.nbits,
        };
        ch.prev = Some(prev);
        // Only the named job stays valid; every other job (future ones too) is dropped.
        ch.jobs.retain(|id, _| *id == m.job_id);
        ch.valid.clear();
        ch.seen.clear();
        ch.active = None;
        // A job the device does not hold: nothing to mine. A job it holds is mined on the new
        // prevhash (also one that was not sent as a future job).
        let Some(job) = ch.jobs.get_mut(&m.job_id) else {
            if self.phase == Phase::Mining {
                self.phase = Phase::AwaitingJob;
            }
            out.push(Output::StopWork);
            return;
        };
        job.activation = Some(Activation {
            prev_hash: prev.prev_hash,
            nbits: prev.nbits,
            ntime: prev.min_ntime,
            at: now,
        });
        ch.valid.insert(m.job_id);
        ch.active = Some(m.job_id);
        self.activate(now, out);
    }

    /// Reports the active job and hands its work to the engine.
    fn activate(&mut self, now: Instant, out: &mut Vec<Output>) {
        let Some(ch) = &self.channel else { return };
        let Some(job_id) = ch.active else { return };
        if let Some(act) = ch.jobs.get(&job_id).and_then(|j| j.activation) {
            out.push(Output::Event(Event::JobActivated {
                job_id,
                prev_hash: act.prev_hash,
                ntime: act.ntime,
                nbits: act.nbits,
            }));
        }
        self.issue_work(now, out);
    }

    /// Builds the engine job for the active job (ntime moved on by the seconds since activation).
    fn issue_work(&mut self, now: Instant, out: &mut Vec<Output>) {
        let work_id = self.next_work;
        let mask = self.config.version_mask;
        let Some(ch) = self.channel.as_mut() else {
            return;
        };
        let Some(job_id) = ch.active else { return };
        let Some(job) = ch.jobs.get(&job_id) else {
            return;
        };
        let Some(act) = job.activation else { return };
        let len = match (&job.body, ch.kind) {
            (JobBody::Extended { .. }, ChannelKind::Extended) => ch.extranonce_size,
            _ => 0,
        };
        // Each work of an extended job starts its extranonce counter apart from the previous
        // one's, so that reissued work does not repeat the search.
        let start = ch.next_extranonce;
        if matches!(job.body, JobBody::Extended { .. }) {
            let step = match len {
                0 => 0,
                1..=3 => 1u64 << (4 * len),
                _ => 1 << 20,
            };
            ch.next_extranonce = ch.next_extranonce.wrapping_add(step);
        }
        let merkle = job.body.merkle_source(&job.extranonce_prefix, len, start);
        let engine_job = Job {
            id: work_id,
            version: job.version,
            version_mask: if job.rolling { mask } else { 0 },
            prev_hash: act.prev_hash,
            merkle,
            ntime: act.ntime.saturating_add(secs_since(act.at, now)),
            ntime_roll: 0,
            nbits: act.nbits,
            target: Target(ch.effective_target(job)),
            nonce_start: 0,
            nonce_end: u32::MAX,
        };
        ch.last_work_at = Some(now);
        if let Err(e) = engine_job.validate() {
            ch.active = None;
            self.phase = Phase::AwaitingJob;
            out.push(Output::StopWork);
            out.push(Output::Event(Event::CannotMine {
                job_id,
                reason: e.to_string(),
            }));
            return;
        }
        let channel_id = ch.id;
        self.next_work += 1;
        self.works.insert(work_id, job_id);
        while self.works.len() > MAX_WORKS {
            self.works.pop_first();
        }
        self.phase = Phase::Mining;
        out.push(Output::Work(Work {
            channel_id,
            job_id,
            job: engine_job,
        }));
    }

    fn on_set_target(&mut self, target: [u8; 32], now: Instant, out: &mut Vec<Output>) {
        let max = self.config.max_target;
        let effective = check::min_target(&target, &max);
        let Some(ch) = self.channel.as_mut() else {
            return;
        };
        let before = ch
            .active
            .and_then(|id| ch.jobs.get(&id))
            .map(|j| ch.effective_target(j));
        ch.target = effective;
        let after = ch
            .active
            .and_then(|id| ch.jobs.get(&id))
            .map(|j| ch.effective_target(j));
        out.push(Output::Event(Event::TargetChanged {
            target,
            effective_target: effective,
        }));
        if before != after {
            self.issue_work(now, out);
        }
    }

    fn on_shares_success(&mut self, m: &SubmitSharesSuccess, out: &mut Vec<Output>) {
        let Some(ch) = self.channel.as_mut() else {
            return;
        };
        let last = m.last_sequence_number;
        let settled: Vec<u32> = ch.outstanding.range(..=last).map(|(s, _)| *s).collect();
        for s in &settled {
            ch.outstanding.remove(s);
        }
        self.counters.accepted += u64::from(m.new_submits_accepted_count);
        self.counters.shares_sum = self.counters.shares_sum.saturating_add(m.new_shares_sum);
        out.push(Output::Event(Event::SharesAccepted {
            last_sequence_number: last,
            new_submits_accepted_count: m.new_submits_accepted_count,
            new_shares_sum: m.new_shares_sum,
        }));
    }

    fn on_shares_error(&mut self, m: &SubmitSharesError<'_>, out: &mut Vec<Output>) {
        let error_code = code_text(&m.error_code);
        let Some(ch) = self.channel.as_mut() else {
            return;
        };
        let seq = m.sequence_number;
        // Stale by protocol state, whatever the code says ("stale-share", "invalid-job-id", ...):
        // the share's job was replaced (a SetNewPrevHash, a closed channel) while it was in flight.
        let stale = ch
            .outstanding
            .remove(&seq)
            .is_some_and(|job_id| ch.closed || !ch.valid.contains(&job_id));
        self.counters.rejected += 1;
        if stale {
            self.counters.stale += 1;
        }
        out.push(Output::Event(Event::ShareRejected {
            sequence_number: seq,
            error_code,
            stale,
        }));
    }

    /// A share the engine found (its `job_id` is the work id of a [`Work`]): checked again, then
    /// submitted (SubmitSharesStandard or SubmitSharesExtended with the next sequence number) or
    /// dropped with the reason.
    pub fn share_found(&mut self, share: &Share, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        self.counters.found += 1;
        let faulty = self.config.faulty;
        let mask = self.config.version_mask;
        let Some(&job_id) = self.works.get(&share.job_id) else {
            self.counters.dropped += 1;
            out.push(Output::Event(Event::ShareDropped {
                job_id: 0,
                problem: ShareProblem::UnknownWork,
            }));
            return out;
        };
        let Some(ch) = self.channel.as_mut() else {
            return out;
        };
        let key = SeenShare {
            job_id,
            extranonce: share.extranonce,
            ntime: share.ntime,
            version: share.version,
            nonce: share.nonce,
        };
        let job = ch
            .jobs
            .get(&job_id)
            .filter(|_| ch.valid.contains(&job_id) && !ch.closed);
        let mut hash = share.hash;
        let mut block = false;
        let problem = match job {
            None => Some(ShareProblem::Stale),
            Some(job) => {
                let act = job.activation;
                let root = job
                    .body
                    .merkle_root(&job.extranonce_prefix, share.extranonce.as_slice());
                let expected_len = match (&job.body, ch.kind) {
                    (JobBody::Extended { .. }, ChannelKind::Extended) => ch.extranonce_size,
                    _ => 0,
                };
                let allowed = if job.rolling { mask } else { 0 };
                let act = act.unwrap_or(Activation {
                    prev_hash: [0; 32],
                    nbits: 0,
                    ntime: 0,
                    at: now,
                });
                let max_ntime = act.ntime.saturating_add(secs_since(act.at, now));
                hash = sha256d(
                    &BlockHeader {
                        version: share.version,
                        prev_hash: act.prev_hash,
                        merkle_root: root,
                        ntime: share.ntime,
                        nbits: act.nbits,
                        nonce: share.nonce,
                    }
                    .to_bytes(),
                );
                block = compact_to_target(act.nbits).is_ok_and(|t| meets_target(&hash, &t));
                if share.extranonce.len() != expected_len {
                    Some(ShareProblem::ExtranonceLength {
                        len: share.extranonce.len(),
                        expected: expected_len,
                    })
                } else if (share.version ^ job.version) & !allowed != 0 {
                    Some(ShareProblem::VersionOutsideMask {
                        version: share.version,
                        job_version: job.version,
                        mask: allowed,
                    })
                } else if share.ntime < act.ntime || share.ntime > max_ntime {
                    Some(ShareProblem::NtimeOutOfRange {
                        ntime: share.ntime,
                        min: act.ntime,
                        max: max_ntime,
                    })
                } else if hash != share.hash {
                    Some(ShareProblem::HashMismatch)
                } else if !meets_target(&hash, &ch.effective_target(job)) {
                    Some(ShareProblem::AboveTarget)
                } else if ch.seen.contains(&key) {
                    Some(ShareProblem::Duplicate)
                } else {
                    None
                }
            }
        };
        if problem.is_some() && !faulty {
            self.counters.dropped += 1;
            out.push(Output::Event(Event::ShareDropped {
                job_id,
                problem: problem.unwrap_or(ShareProblem::Stale),
            }));
            return out;
        }
        if ch.seen.len() >= MAX_SEEN {
            ch.seen.clear();
        }
        ch.seen.insert(key);
        let sequence_number = ch.next_sequence;
        ch.next_sequence = ch.next_sequence.wrapping_add(1);
        ch.outstanding.insert(sequence_number, job_id);
        while ch.outstanding.len() > MAX_OUTSTANDING {
            ch.outstanding.pop_first();
        }
        let message: Message<'static> = match ch.kind {
            ChannelKind::Standard => SubmitSharesStandard {
                channel_id: ch.id,
                sequence_number,
                job_id,
                nonce: share.nonce,
                ntime: share.ntime,
                version: share.version,
            }
            .into(),
            ChannelKind::Extended => SubmitSharesExtended {
                channel_id: ch.id,
                sequence_number,
                job_id,
                nonce: share.nonce,
                ntime: share.ntime,
                version: share.version,
                // An Extranonce holds at most 32 bytes.
                extranonce: B0_32::new(share.extranonce.as_slice().to_vec()).unwrap_or_default(),
            }
            .into(),
        };
        self.counters.submitted += 1;
        let clean = problem.is_none();
        out.push(Output::Send(message));
        out.push(Output::Event(Event::ShareSubmitted {
            sequence_number,
            job_id,
            nonce: share.nonce,
            ntime: share.ntime,
            version: share.version,
            extranonce: share.extranonce.as_slice().to_vec(),
            hash,
            problem,
        }));
        if block && clean {
            self.counters.blocks += 1;
            out.push(Output::Event(Event::BlockFound { job_id, hash }));
        }
        out
    }

    /// Call about once a second: reissues the current job's work with ntime moved on when
    /// [`DeviceConfig::ntime_refresh`] has passed since the last work (fresh search space for jobs
    /// whose version is fixed).
    pub fn tick(&mut self, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        let due = self.channel.as_ref().is_some_and(|ch| {
            ch.active.is_some()
                && !ch.closed
                && ch.last_work_at.is_some_and(|at| {
                    now.saturating_duration_since(at) >= self.config.ntime_refresh
                })
        });
        if due {
            self.issue_work(now, &mut out);
        }
        out
    }

    /// UpdateChannel with a new nominal hash rate and max_target (the pool answers with SetTarget
    /// when the target must go down, or UpdateChannel.Error).
    pub fn update_channel(&mut self, nominal_hash_rate: f32, max_target: [u8; 32]) -> Vec<Output> {
        let Some(ch) = &self.channel else {
            return Vec::new();
        };
        self.config.nominal_hash_rate = nominal_hash_rate;
        self.config.max_target = max_target;
        vec![Output::Send(
            UpdateChannel {
                channel_id: ch.id,
                nominal_hash_rate,
                maximum_target: U256(max_target),
            }
            .into(),
        )]
    }

    /// Ends the device's operation: CloseChannel (§5.3.9) and stop mining.
    pub fn close(&mut self, reason: &str) -> Vec<Output> {
        let mut out = vec![Output::StopWork];
        if let Some(ch) = self.channel.as_mut().filter(|c| !c.closed) {
            ch.closed = true;
            ch.active = None;
            let reason_code = Str0_255::new(
                reason
                    .as_bytes()
                    .iter()
                    .take(255)
                    .copied()
                    .collect::<Vec<u8>>(),
            )
            .unwrap_or_default();
            out.push(Output::Send(
                CloseChannel {
                    channel_id: ch.id,
                    reason_code,
                }
                .into(),
            ));
        }
        self.phase = Phase::Closed;
        out
    }
}

fn unexpected(name: &str) -> Output {
    Output::Event(Event::Unexpected {
        message: name.to_owned(),
    })
}
