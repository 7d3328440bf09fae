//! Mock pool: the sans-IO core of a Mining protocol server (spec §5) that takes its work from a Template
//! Distribution source (§7).
//!
//! One [`Pool`] serves any number of sessions (connections after the Noise handshake). A driver opens a
//! session per connection ([`Pool::open_session`]), feeds it decoded messages ([`Pool::handle`]), feeds
//! the template source's messages ([`Pool::handle_template`]), calls [`Pool::tick`] about once a second
//! (share acknowledgements, vardiff, idle connections), and carries out the returned [`Output`]s:
//! frames to send downstream or upstream, sessions to close, and events to observe.
//!
//! The template source is either an upstream Template Provider (the pool sends SetupConnection
//! protocol 2, CoinbaseOutputConstraints, RequestTransactionData and SubmitSolution as
//! [`Output::SendUpstream`]), or an in-process [`crate::tp::TemplateProvider`] the pool talks to
//! directly ([`TemplateSource::InProcess`]): then it works standalone and the TP's verdict on every
//! solution comes back as [`Output::SolutionChecked`].
//!
//! Behaviour, by message (codes are those of the reference implementation where it has one; the spec
//! defines none, §3.5):
//! - SetupConnection: protocol 0 and a version range containing 2, else SetupConnection.Error
//!   `unsupported-protocol` / `protocol-version-mismatch` (flags 0) and close. Flags: REQUIRES_STANDARD_JOBS
//!   and REQUIRES_VERSION_ROLLING are honoured; REQUIRES_WORK_SELECTION (unless configured with
//!   `work_selection`) and every undefined bit are refused: SetupConnection.Error
//!   `unsupported-feature-flags` listing all of them (§3.6.3), then close. So are REQUIRES_VERSION_ROLLING
//!   when the pool is configured with a fixed version, and REQUIRES_STANDARD_JOBS when it requires extended
//!   channels. Success: used_version 2 and the server flags (REQUIRES_FIXED_VERSION,
//!   REQUIRES_EXTENDED_CHANNELS as configured). Anything before SetupConnection closes the session.
//! - OpenStandardMiningChannel / OpenExtendedMiningChannel: request_id echoed; channel and group ids
//!   from one counter per connection (never equal); initial target from the nominal hash rate and the
//!   vardiff aim, at most the client's max_target (OpenMiningChannel.Error `max-target-out-of-range`
//!   when max_target is below the pool's hardest target); extended channels get
//!   `extranonce_size = extranonce_len - extranonce_prefix_len` (`min-extranonce-size-too-large` when
//!   that is less than asked); prefixes unique across the pool. Then the first job as a future job and
//!   SetNewPrevHash for it, any pending future jobs, and SetGroupChannel (not with REQUIRES_STANDARD_JOBS).
//! - Jobs: with group broadcasting (no REQUIRES_STANDARD_JOBS), one NewExtendedMiningJob per template to
//!   the group channel; otherwise NewMiningJob (merkle root for the channel's prefix) or
//!   NewExtendedMiningJob per channel. Future templates become future jobs (min_ntime None) and the
//!   TDP SetNewPrevHash becomes a Mining SetNewPrevHash naming them; job ids come from one counter per
//!   connection and are never reused.
//! - UpdateChannel: SetTarget when the new maximum is below the current target; UpdateChannel.Error
//!   `invalid-channel-id`, `invalid-nominal-hashrate` or `max-target-out-of-range`.
//! - CloseChannel: the channel (or every member of a group) is forgotten; nothing more is sent for it.
//! - SubmitSharesStandard / SubmitSharesExtended: validated for real ([`ShareError`] lists the checks and
//!   codes); accepted shares are acknowledged in batches; a share that meets the block target becomes
//!   SubmitSolution upstream with the full coinbase.
//! - SetCustomMiningJob: SetCustomMiningJob.Error (`invalid-channel-id`,
//!   `standard-channels-not-supported-for-custom-work`, `invalid-mining-job-token` with work
//!   selection: the mock issues no tokens, or `jd-not-supported` without).
//! - RequestExtensions (with `extensions` configured; ignored otherwise, §3.4.1): .Success with the
//!   requested extensions it supports, or .Error with the unsupported and the missing required ones;
//!   a client that goes on without a required extension is disconnected. With 0x0002 negotiated,
//!   accepted shares are counted by their user_identity TLV and one over 32 bytes is refused
//!   (`user-identity-too-long`); without it the TLV is ignored.
//! - Optionally, new templates on the same prev hash (jobs with min_ntime set) and a new
//!   extranonce prefix for every channel at intervals (SetExtranoncePrefix).
//! - Anything else after setup is reported as [`Output::Unexpected`] and otherwise ignored.
//!
//! The coinbase and extranonce layout is described in [`job`].

pub mod channel;
pub mod driver;
pub mod job;
pub mod share;
pub mod vardiff;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde::Serialize;
use sv2_codec::frame::HEADER_LEN;
use sv2_codec::messages::common::{SetupConnection, SetupConnectionError, SetupConnectionSuccess};
use sv2_codec::messages::extensions::{
    RequestExtensions, RequestExtensionsError, RequestExtensionsSuccess,
};
use sv2_codec::messages::mining::{
    NewExtendedMiningJob, NewMiningJob, OpenExtendedMiningChannelSuccess, OpenMiningChannelError,
    OpenStandardMiningChannelSuccess, SetCustomMiningJobError, SetCustomMiningJobSuccess,
    SetExtranoncePrefix, SetGroupChannel, SetNewPrevHash, SetTarget, SubmitSharesError,
    SubmitSharesSuccess, UpdateChannelError,
};
use sv2_codec::messages::template_distribution::{
    CoinbaseOutputConstraints, NewTemplate, RequestTransactionData, SetNewPrevHashTdp,
    SubmitSolution,
};
use sv2_codec::types::{Seq0_255, Seq0_64K, Str0_255, B0_32, B0_64K, U256};
use sv2_codec::{decode_base, DecodeError, Decoded, ErrorKind, Header, Message, Tlv};

use crate::tp::{self, SolutionVerdict, TemplateProvider, TpConfig};
use sv2_chain::script::p2wpkh;
use sv2_chain::target::{compact_to_target, difficulty, meets_target, REGTEST_NBITS};
use sv2_chain::tx::write_compact_size;
use sv2_chain::{display_hex, sha256d};
use sv2_engine::BlockHeader;

use channel::{Channel, ChannelInfo, ChannelJob, ChannelKind, ExtranonceAllocator, Group};
use job::{CoinbaseLayout, LayoutError, PoolTemplate, TemplateError};
pub use share::ShareError;
use share::{Acknowledgement, Batch};
use vardiff::{harder, VardiffConfig, VardiffState};

use sv2_codec::messages::flags::{
    REQUIRES_EXTENDED_CHANNELS, REQUIRES_FIXED_VERSION, REQUIRES_STANDARD_JOBS,
    REQUIRES_VERSION_ROLLING, REQUIRES_WORK_SELECTION,
};
use sv2_codec::messages::protocol::MINING as PROTOCOL_MINING;

/// The client flags this pool can honour (others are refused at setup).
pub const SUPPORTED_FLAGS: u32 = REQUIRES_STANDARD_JOBS | REQUIRES_VERSION_ROLLING;

pub use crate::tp::solution::VERSION_ROLLING_MASK;

/// A session (one connection) of the pool.
pub type SessionId = u64;

/// Where templates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateSource {
    /// An upstream Template Provider: its messages go to [`Pool::handle_template`], the pool's to
    /// [`Output::SendUpstream`]. The endpoint is what SetupConnection names.
    Upstream {
        endpoint_host: String,
        endpoint_port: u16,
    },
    /// An in-process mock TP.
    InProcess(TpConfig),
}

/// Deliberate protocol violations, for testing conformance checkers. All off by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolFaults {
    /// Every job after the first of a connection takes the previous job's id (§5.3.15/16; check 46).
    pub reuse_job_ids: bool,
    /// Open*Channel.Success carries a target above the client's max_target, even when max_target is
    /// below the hardest target the pool would set (§5.3.2; check 40, `mining.max-target`).
    pub target_above_max: bool,
    /// Jobs that should be future jobs are not sent; SetNewPrevHash still names them (check 44/45).
    pub skip_future_job: bool,
    /// CloseChannel is ignored: jobs keep coming for the channel (§5.3.9; check 54).
    pub ignore_close_channel: bool,
    /// Standard channels are refused without REQUIRES_EXTENDED_CHANNELS in SetupConnection.Success
    /// (§5.2.2; conformance `mining.both-channel-kinds`).
    pub refuse_standard_channels: bool,
    /// Extended channels get the configured extranonce_size even when min_extranonce_size asks for
    /// more (§5.3.5; `mining.extranonce-size`).
    pub ignore_min_extranonce_size: bool,
    /// REQUIRES_STANDARD_JOBS is ignored: group broadcasting (SetGroupChannel, NewExtendedMiningJob)
    /// as for any connection (§5.3.1; `mining.standard-jobs-flag`).
    pub extended_jobs_to_standard: bool,
    /// REQUIRES_VERSION_ROLLING is accepted by a fixed-version pool, which still answers
    /// REQUIRES_FIXED_VERSION and forbids rolling in its jobs (§5.3.1; `mining.version-rolling-flag`).
    pub ignore_version_rolling_flag: bool,
    /// UpdateChannel is ignored: no SetTarget, no UpdateChannel.Error (§5.3.7;
    /// `mining.update-channel-target`, `mining.update-channel-unknown`).
    pub ignore_update_channel: bool,
    /// CloseChannel for a group id forgets the group but keeps its member channels serving shares
    /// (§5.3.9; `mining.close-group`).
    pub close_group_keeps_members: bool,
    /// REQUIRES_WORK_SELECTION is accepted and every SetCustomMiningJob answered with .Success
    /// (§5.3.18; `mining.custom-job-unrequested`, `mining.custom-job-standard`).
    pub accept_custom_jobs: bool,
    /// new_submits_accepted_count is not reset per batch: every Success carries the channel's total
    /// so far (§5.3.13; `shares.accepted-count`).
    pub cumulative_accepted_count: bool,
    /// SetTarget after UpdateChannel is sent, but shares are still judged by the old target
    /// (§5.3.21; `shares.old-target`).
    pub set_target_not_enforced: bool,
}

/// Configuration of the mock pool.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolConfig {
    /// Pushed in every coinbase scriptSig after the height (at most 75 bytes; empty for none).
    pub pool_tag: Vec<u8>,
    /// The payout output's scriptPubKey (it takes coinbase_tx_value_remaining).
    pub payout_script: Vec<u8>,
    /// The full extranonce (prefix + miner part) of every channel, at most 32.
    pub extranonce_len: usize,
    /// The pool-assigned part of an extended channel's extranonce (unique per channel).
    pub extranonce_prefix_len: usize,
    /// The easiest share target the pool sets (little-endian).
    pub easiest_target: [u8; 32],
    /// The hardest share target the pool is willing to set; a max_target below it is refused.
    pub hardest_target: [u8; 32],
    /// Vardiff.
    pub vardiff: VardiffConfig,
    /// Acknowledge accepted shares every this many...
    pub ack_every: u32,
    /// ...or when the oldest unacknowledged one is this old (on [`Pool::tick`]).
    pub ack_delay_secs: u32,
    /// How strictly shares are judged (the spec's rules by default).
    pub shares: ShareRules,
    /// The version may not be rolled (SetupConnection.Success REQUIRES_FIXED_VERSION).
    pub fixed_version: bool,
    /// Standard channels are refused (SetupConnection.Success REQUIRES_EXTENDED_CHANNELS).
    pub requires_extended_channels: bool,
    /// Send one NewExtendedMiningJob per group channel instead of one job per channel (not to
    /// connections that set REQUIRES_STANDARD_JOBS).
    pub group_jobs: bool,
    /// Close a connection that opened no channel within this many seconds of connecting (§5.3.2
    /// SHOULD).
    pub idle_timeout_secs: Option<u32>,
    /// Channels per connection.
    pub max_channels_per_session: usize,
    /// Templates kept (older ones' jobs are forgotten: shares on them get `invalid-job-id`).
    pub max_templates: usize,
    /// Accepted shares remembered per job and channel for duplicate detection; past this many,
    /// shares on that job get `too-many-shares`. Bounds the pool's memory: at an easy target a
    /// client finds shares almost for free (vardiff raises the target within a few periods).
    pub max_shares_per_job: usize,
    /// Ask the template source for every template's transactions, so that a found block can be
    /// assembled whole ([`Output::BlockFound`]'s `block`).
    pub request_transaction_data: bool,
    /// Where templates come from.
    pub template_source: TemplateSource,
    /// Extensions Negotiation (extension 0x0001); `None`: the pool does not implement it and
    /// ignores RequestExtensions, as §3.4.1 asks of a server without it.
    pub extensions: Option<ExtensionSupport>,
    /// REQUIRES_WORK_SELECTION is accepted (§5.2.2): SetCustomMiningJob is then answered on its
    /// merits. The mock issues no mining job tokens (it has no Job Declarator), so every custom job
    /// is refused with `invalid-mining-job-token`, and one on a standard channel with
    /// `standard-channels-not-supported-for-custom-work` (§5.3.18).
    pub work_selection: bool,
    /// Every channel gets a new extranonce prefix (SetExtranoncePrefix, §5.3.10) this many seconds
    /// after its last one; `None`: never.
    pub extranonce_prefix_every_secs: Option<u32>,
    /// Deliberate violations.
    pub faults: PoolFaults,
}

/// What the pool says about extensions when asked (extension 0x0001).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtensionSupport {
    /// Extensions the pool confirms when requested. Only those it implements may be listed:
    /// 0x0002 (worker-specific hash rate tracking: the user_identity TLV of SubmitSharesExtended).
    pub supported: Vec<u16>,
    /// Extensions a client must request: RequestExtensions.Error lists those missing from a
    /// request, and a client that goes on without them is disconnected (ext 0x0001 §4).
    pub required: Vec<u16>,
}

/// The extensions the mock pool implements beyond 0x0001 itself.
pub const IMPLEMENTED_EXTENSIONS: &[u16] = &[sv2_codec::tlv::EXT_WORKER_HASHRATE_TRACKING];

/// How strictly the pool judges shares: each rule it applies can be relaxed, so that a device that
/// breaks one can still mine here while the conformance suite (or the monitor) tells its user what
/// it does wrong. The default is the spec's rule for each; a relaxed rule accepts what breaks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ShareRules {
    /// Seconds a share's ntime may lie above §5.3.11's bound (the SetNewPrevHash's min_ntime plus
    /// the seconds since it was sent). 0: the spec. (The reference implementation's test device
    /// sets its header time to now + 60 s.)
    pub ntime_future_slack_secs: u32,
    /// Seconds a share's ntime may lie below the SetNewPrevHash's min_ntime. 0: the spec.
    pub ntime_past_slack_secs: u32,
    /// SubmitSharesExtended.extranonce must be the channel's extranonce_size long (§5.3.12).
    pub check_extranonce_size: bool,
    /// The version may change only in the rolling mask, and not at all on a fixed-version
    /// connection (§5.3.1, §5.3.16).
    pub check_version: bool,
    /// The header hash must meet the channel's target (§5.3.21: "will reject" above it).
    pub check_target: bool,
    /// The same share twice is refused the second time (§5.3.14's duplicate-share).
    pub check_duplicates: bool,
}

impl Default for ShareRules {
    fn default() -> Self {
        ShareRules {
            ntime_future_slack_secs: 0,
            ntime_past_slack_secs: 0,
            check_extranonce_size: true,
            check_version: true,
            check_target: true,
            check_duplicates: true,
        }
    }
}

/// 2^192: a share every 2^64 hashes, the hardest target the pool sets by default.
pub const DEFAULT_HARDEST_TARGET: [u8; 32] = {
    let mut t = [0u8; 32];
    t[24] = 1;
    t
};

impl Default for PoolConfig {
    fn default() -> Self {
        let mut hash160 = [0u8; 20];
        hash160.copy_from_slice(&sha256d(b"sv2-mock pool payout")[..20]);
        Self {
            pool_tag: b"/sv2-mock/".to_vec(),
            payout_script: p2wpkh(&hash160),
            extranonce_len: 32,
            extranonce_prefix_len: 4,
            easiest_target: compact_to_target(REGTEST_NBITS).unwrap_or([0xff; 32]),
            hardest_target: DEFAULT_HARDEST_TARGET,
            vardiff: VardiffConfig::default(),
            ack_every: 10,
            ack_delay_secs: 2,
            shares: ShareRules::default(),
            fixed_version: false,
            requires_extended_channels: false,
            group_jobs: true,
            idle_timeout_secs: Some(120),
            max_channels_per_session: 10_000,
            max_templates: 64,
            max_shares_per_job: 65_536,
            request_transaction_data: false,
            template_source: TemplateSource::InProcess(TpConfig::default()),
            extensions: None,
            work_selection: false,
            extranonce_prefix_every_secs: None,
            faults: PoolFaults::default(),
        }
    }
}

impl PoolConfig {
    fn layout(&self) -> CoinbaseLayout {
        CoinbaseLayout {
            pool_tag: self.pool_tag.clone(),
            payout_script: self.payout_script.clone(),
            extranonce_len: self.extranonce_len,
        }
    }

    /// The extranonce_size of every extended channel.
    pub fn miner_extranonce_size(&self) -> usize {
        self.extranonce_len
            .saturating_sub(self.extranonce_prefix_len)
    }
}

/// Why a configuration cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error("the hardest target is easier than the easiest target")]
    TargetsCrossed,
    #[error("max_templates must be at least 1")]
    NoTemplates,
    #[error("extension {0:#06x} is listed as supported or required, but the mock pool implements only {IMPLEMENTED_EXTENSIONS:04x?}")]
    UnknownExtension(u16),
    #[error("extension {0:#06x} is required but not supported")]
    RequiredNotSupported(u16),
}

/// What the driver must do, and what happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send a message on a session.
    Send {
        session: SessionId,
        message: Message<'static>,
    },
    /// Close a session (after sending what came before).
    Close { session: SessionId, reason: String },
    /// Send a message to the upstream template source.
    SendUpstream { message: Message<'static> },
    /// A channel was opened.
    ChannelOpened {
        session: SessionId,
        channel_id: u32,
        kind: ChannelKind,
        target: [u8; 32],
        extranonce_prefix: Vec<u8>,
    },
    /// A channel was closed (by CloseChannel, directly or through its group).
    ChannelClosed {
        session: SessionId,
        channel_id: u32,
        reason: String,
    },
    /// A share was accepted.
    ShareAccepted {
        session: SessionId,
        channel_id: u32,
        sequence_number: u32,
        job_id: u32,
        /// The difficulty of the target it met (what it adds to new_shares_sum).
        difficulty: f64,
        /// Its header hash (internal byte order).
        hash: [u8; 32],
    },
    /// A share was refused.
    ShareRejected {
        session: SessionId,
        channel_id: u32,
        sequence_number: u32,
        error: ShareError,
    },
    /// A share met the block target: the solution went upstream.
    BlockFound {
        session: SessionId,
        channel_id: u32,
        template_id: u64,
        /// Display order.
        block_hash: String,
        solution: SubmitSolution<'static>,
        /// The whole block, when the template's transactions are known.
        block: Option<Vec<u8>>,
    },
    /// The in-process TP checked a solution.
    SolutionChecked { verdict: SolutionVerdict },
    /// A template could not become jobs.
    TemplateRefused {
        template_id: u64,
        error: TemplateError,
    },
    /// Something about the template source.
    Upstream { note: String },
    /// A message that has no place here was received and ignored.
    Unexpected { session: SessionId, message: String },
}

/// Counters for reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PoolStats {
    pub sessions: u64,
    pub channels_opened: u64,
    pub shares_accepted: u64,
    pub shares_rejected: u64,
    /// Rejections by SubmitShares.Error code.
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// Sum of the difficulties of accepted shares.
    pub accepted_difficulty: f64,
    pub blocks_found: u64,
    /// In-process TP verdicts.
    pub solutions_valid: u64,
    pub solutions_invalid: u64,
    pub templates: u64,
    pub templates_refused: u64,
    pub prev_hashes: u64,
    /// Accepted shares by the user_identity TLV of extension 0x0002 (at most
    /// [`MAX_WORKERS`] names; later ones are counted under `""`).
    pub shares_by_worker: BTreeMap<String, u64>,
}

/// Worker names [`PoolStats::shares_by_worker`] keeps apart.
pub const MAX_WORKERS: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SessionState {
    AwaitingSetup,
    Ready,
    Closed,
}

#[derive(Debug)]
struct Session {
    state: SessionState,
    /// The client's SetupConnection.flags.
    flags: u32,
    opened_at: u32,
    had_channel: bool,
    channels: BTreeMap<u32, Channel>,
    groups: BTreeMap<u32, Group>,
    /// The group new channels join.
    current_group: Option<u32>,
    /// Job id -> its template.
    jobs: BTreeMap<u32, Arc<PoolTemplate>>,
    /// Template id -> the job made of it on this connection.
    template_jobs: BTreeMap<u64, u32>,
    next_id: u32,
    next_job_id: u32,
    last_job_id: Option<u32>,
    /// Extensions confirmed by RequestExtensions.Success.
    extensions: Vec<u16>,
}

impl Session {
    fn new(now: u32) -> Self {
        Self {
            state: SessionState::AwaitingSetup,
            flags: 0,
            opened_at: now,
            had_channel: false,
            channels: BTreeMap::new(),
            groups: BTreeMap::new(),
            current_group: None,
            jobs: BTreeMap::new(),
            template_jobs: BTreeMap::new(),
            next_id: 1,
            next_job_id: 1,
            last_job_id: None,
            extensions: Vec::new(),
        }
    }

    /// A fresh channel or group id: never one in use.
    fn alloc_id(&mut self) -> u32 {
        loop {
            let id = self.next_id;
            self.next_id = self.next_id.wrapping_add(1).max(1);
            if !self.channels.contains_key(&id) && !self.groups.contains_key(&id) {
                return id;
            }
        }
    }

    fn alloc_job_id(&mut self, faults: &PoolFaults) -> u32 {
        if faults.reuse_job_ids {
            if let Some(last) = self.last_job_id {
                return last;
            }
        }
        loop {
            let id = self.next_job_id;
            self.next_job_id = self.next_job_id.wrapping_add(1).max(1);
            if !self.jobs.contains_key(&id) {
                self.last_job_id = Some(id);
                return id;
            }
        }
    }

    /// A fresh job id for `template_id`, recorded with its template.
    fn new_job(
        &mut self,
        template_id: u64,
        template: &Arc<PoolTemplate>,
        faults: &PoolFaults,
    ) -> u32 {
        let job_id = self.alloc_job_id(faults);
        self.jobs.insert(job_id, template.clone());
        self.template_jobs.insert(template_id, job_id);
        job_id
    }

    /// The job id this session already has for `template_id`, or a fresh one ([`Session::new_job`]).
    fn job_for(
        &mut self,
        template_id: u64,
        template: &Arc<PoolTemplate>,
        faults: &PoolFaults,
    ) -> u32 {
        match self.template_jobs.get(&template_id) {
            Some(&job_id) => job_id,
            None => self.new_job(template_id, template, faults),
        }
    }

    fn broadcasts(&self, config: &PoolConfig) -> bool {
        config.group_jobs
            && (self.flags & REQUIRES_STANDARD_JOBS == 0 || config.faults.extended_jobs_to_standard)
    }

    /// Where a template's job goes: each group with members (broadcasting), or each channel.
    fn destinations(&self, config: &PoolConfig) -> Vec<Dest> {
        if self.broadcasts(config) {
            self.groups
                .iter()
                .filter(|(_, g)| !g.members.is_empty())
                .map(|(id, _)| Dest::Group(*id))
                .collect()
        } else {
            self.channels.keys().map(|id| Dest::Channel(*id)).collect()
        }
    }

    fn members(&self, dest: Dest) -> Vec<u32> {
        match dest {
            Dest::Channel(id) => vec![id],
            Dest::Group(id) => self
                .groups
                .get(&id)
                .map(|g| g.members.iter().copied().collect())
                .unwrap_or_default(),
        }
    }
}

/// A job's or SetNewPrevHash's addressee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dest {
    Group(u32),
    Channel(u32),
}

impl Dest {
    fn id(self) -> u32 {
        match self {
            Dest::Group(id) | Dest::Channel(id) => id,
        }
    }
}

/// A prev hash and what came with it.
#[derive(Debug, Clone)]
struct Epoch {
    prev_hash: [u8; 32],
    min_ntime: u32,
    nbits: u32,
    block_target: [u8; 32],
    received_at: u32,
}

#[derive(Debug)]
struct TemplateEntry {
    template: Arc<PoolTemplate>,
    /// The epoch in which it arrived.
    created_epoch: u64,
    /// The epoch it was mined in (at once for non-future templates; on SetNewPrevHash for future ones).
    activated: Option<u64>,
    /// Its transactions, from RequestTransactionData.Success.
    transactions: Option<Vec<Vec<u8>>>,
}

/// Where a job stands.
enum JobState<'a> {
    Active(&'a Epoch),
    /// A future job not yet activated.
    Pending,
    Stale,
    Unknown,
}

#[derive(Debug)]
struct InProcess {
    tp: TemplateProvider,
    session: tp::SessionId,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum UpstreamState {
    Idle,
    AwaitingSetup,
    Ready,
    Failed(String),
}

/// One share, as either submit message carries it.
struct Submit<'a> {
    channel_id: u32,
    sequence_number: u32,
    job_id: u32,
    nonce: u32,
    ntime: u32,
    version: u32,
    /// None for SubmitSharesStandard.
    extranonce: Option<&'a [u8]>,
    /// The user_identity TLV, when extension 0x0002 was negotiated.
    worker: Option<String>,
}

/// The mock pool.
#[derive(Debug)]
pub struct Pool {
    config: PoolConfig,
    layout: CoinbaseLayout,
    sessions: BTreeMap<SessionId, Session>,
    next_session: SessionId,
    templates: BTreeMap<u64, TemplateEntry>,
    /// The template mined now (the newest activated in the current epoch).
    current_template: Option<u64>,
    epoch: u64,
    epochs: BTreeMap<u64, Epoch>,
    extranonces: ExtranonceAllocator,
    stats: PoolStats,
    upstream: UpstreamState,
    in_process: Option<InProcess>,
}

pub(crate) fn text(s: &str) -> Str0_255<'static> {
    let bytes = s.as_bytes();
    Str0_255::new(bytes[..bytes.len().min(255)].to_vec()).unwrap_or_default()
}

fn send(session: SessionId, message: Message<'static>) -> Output {
    Output::Send { session, message }
}

/// A target strictly above `max` when one exists (for the fault): `2 * max + 1`, saturating.
fn above(max: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut carry = 1u8;
    for i in 0..32 {
        let doubled = (u16::from(max[i]) << 1) | u16::from(carry);
        out[i] = doubled as u8;
        carry = (doubled >> 8) as u8;
    }
    if carry != 0 {
        [0xff; 32]
    } else {
        out
    }
}

impl Pool {
    /// A pool at `now` (unix seconds). With an in-process template source, its TP is set up at once
    /// and the first template and prev hash are already there.
    pub fn new(config: PoolConfig, now: u32) -> Result<Self, ConfigError> {
        let layout = config.layout();
        layout.validate()?;
        if config.extranonce_prefix_len == 0 || config.extranonce_prefix_len > config.extranonce_len
        {
            return Err(LayoutError::PrefixLength {
                prefix: config.extranonce_prefix_len,
                total: config.extranonce_len,
            }
            .into());
        }
        if !meets_target(&config.hardest_target, &config.easiest_target) {
            return Err(ConfigError::TargetsCrossed);
        }
        if config.max_templates == 0 {
            return Err(ConfigError::NoTemplates);
        }
        if let Some(ext) = &config.extensions {
            for id in ext.supported.iter().chain(&ext.required) {
                if !IMPLEMENTED_EXTENSIONS.contains(id) {
                    return Err(ConfigError::UnknownExtension(*id));
                }
            }
            if let Some(id) = ext.required.iter().find(|id| !ext.supported.contains(id)) {
                return Err(ConfigError::RequiredNotSupported(*id));
            }
        }
        let in_process = match &config.template_source {
            TemplateSource::InProcess(tp_config) => {
                let mut tp = TemplateProvider::new(tp_config.clone(), now);
                let session = tp.open_session();
                Some(InProcess { tp, session })
            }
            TemplateSource::Upstream { .. } => None,
        };
        let mut pool = Self {
            extranonces: ExtranonceAllocator::new(config.extranonce_prefix_len),
            config,
            layout,
            sessions: BTreeMap::new(),
            next_session: 1,
            templates: BTreeMap::new(),
            current_template: None,
            epoch: 0,
            epochs: BTreeMap::new(),
            stats: PoolStats::default(),
            upstream: UpstreamState::Idle,
            in_process,
        };
        if pool.in_process.is_some() {
            let setup = pool.upstream_setup_messages();
            // Nothing can be sent to sessions yet: there are none.
            let _ = pool.route(setup, now);
        }
        Ok(pool)
    }

    /// The configuration.
    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// Counters so far.
    pub fn stats(&self) -> &PoolStats {
        &self.stats
    }

    /// The in-process TP, when that is the template source.
    pub fn template_provider(&self) -> Option<&TemplateProvider> {
        self.in_process.as_ref().map(|p| &p.tp)
    }

    /// A template the pool holds.
    pub fn template(&self, template_id: u64) -> Option<&Arc<PoolTemplate>> {
        self.templates.get(&template_id).map(|e| &e.template)
    }

    /// The template mined now.
    pub fn current_template(&self) -> Option<&Arc<PoolTemplate>> {
        self.current_template.and_then(|id| self.template(id))
    }

    /// The open channels of a session.
    pub fn channels(&self, session: SessionId) -> Vec<ChannelInfo> {
        self.sessions
            .get(&session)
            .map(|s| s.channels.values().map(Channel::info).collect())
            .unwrap_or_default()
    }

    /// The group channels of a session and their members.
    pub fn groups(&self, session: SessionId) -> BTreeMap<u32, Vec<u32>> {
        self.sessions
            .get(&session)
            .map(|s| {
                s.groups
                    .iter()
                    .map(|(id, g)| (*id, g.members.iter().copied().collect()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Opens a session for a new connection at `now`.
    pub fn open_session(&mut self, now: u32) -> SessionId {
        let id = self.reserve_session();
        self.open_session_as(id, now);
        id
    }

    /// A session number for a connection whose handshake has not run yet (its log lines name it by
    /// this number from the start); [`Pool::open_session_as`] opens it.
    pub fn reserve_session(&mut self) -> SessionId {
        let id = self.next_session;
        self.next_session += 1;
        id
    }

    /// Opens the session `id` ([`Pool::reserve_session`]) at `now`.
    pub fn open_session_as(&mut self, id: SessionId, now: u32) {
        self.sessions.insert(id, Session::new(now));
        self.stats.sessions += 1;
    }

    /// Forgets a session (the connection went away).
    pub fn close_session(&mut self, session: SessionId) {
        self.sessions.remove(&session);
    }

    /// The first messages to an upstream template source (SetupConnection, protocol 2). Empty with an
    /// in-process source (already set up).
    pub fn upstream_setup(&mut self) -> Vec<Output> {
        if self.in_process.is_some() || self.upstream != UpstreamState::Idle {
            return Vec::new();
        }
        self.upstream_setup_messages()
    }

    fn upstream_setup_messages(&mut self) -> Vec<Output> {
        self.upstream = UpstreamState::AwaitingSetup;
        let (host, port) = match &self.config.template_source {
            TemplateSource::Upstream {
                endpoint_host,
                endpoint_port,
            } => (endpoint_host.as_str(), *endpoint_port),
            TemplateSource::InProcess(_) => ("in-process", 0),
        };
        vec![Output::SendUpstream {
            message: SetupConnection {
                protocol: sv2_codec::messages::protocol::TEMPLATE_DISTRIBUTION,
                min_version: 2,
                max_version: 2,
                flags: 0,
                endpoint_host: text(host),
                endpoint_port: port,
                vendor: text("sv2-mock"),
                hardware_version: text("pool"),
                firmware: text(env!("CARGO_PKG_VERSION")),
                device_id: text(""),
            }
            .into(),
        }]
    }

    /// Sends the pool's upstream messages to the in-process TP (when there is one) and feeds its
    /// answers back, in causal order.
    fn route(&mut self, outputs: Vec<Output>, now: u32) -> Vec<Output> {
        if self.in_process.is_none() {
            return outputs;
        }
        let mut queue: VecDeque<Output> = outputs.into();
        let mut done = Vec::new();
        while let Some(output) = queue.pop_front() {
            let Output::SendUpstream { message } = output else {
                done.push(output);
                continue;
            };
            let Some(in_process) = self.in_process.as_mut() else {
                done.push(Output::SendUpstream { message });
                continue;
            };
            let answers = in_process.tp.handle(in_process.session, &message, now);
            let mut produced = Vec::new();
            for answer in answers {
                match answer {
                    tp::Output::Send { message, .. } => {
                        produced.extend(self.template_message(&message, now));
                    }
                    tp::Output::Solution { verdict, .. } => {
                        if verdict.valid {
                            self.stats.solutions_valid += 1;
                        } else {
                            self.stats.solutions_invalid += 1;
                        }
                        produced.push(Output::SolutionChecked { verdict });
                    }
                    tp::Output::Close { reason, .. } => produced.push(Output::Upstream {
                        note: format!("the in-process TP closed: {reason}"),
                    }),
                    tp::Output::Unexpected { message, .. } => produced.push(Output::Upstream {
                        note: format!("the in-process TP did not expect {message}"),
                    }),
                }
            }
            for o in produced.into_iter().rev() {
                queue.push_front(o);
            }
        }
        done
    }

    /// Feeds TP outputs produced outside a pool call (in-process mode: new blocks, updates).
    fn tp_answers(&mut self, answers: Vec<tp::Output>, now: u32) -> Vec<Output> {
        let mut out = Vec::new();
        for answer in answers {
            if let tp::Output::Send { message, .. } = answer {
                out.extend(self.template_message(&message, now));
            }
        }
        self.route(out, now)
    }

    /// Gives channel `channel_id` of `session` a new extranonce_prefix of the same length
    /// (SetExtranoncePrefix, §5.3.10): it applies to the jobs sent after it, so a new job follows
    /// on the current prev hash (min_ntime set: active at once). Jobs sent before keep the prefix
    /// they were sent with. Nothing for an unknown channel, or when the prefixes run out.
    pub fn set_extranonce_prefix(
        &mut self,
        session: SessionId,
        channel_id: u32,
        now: u32,
    ) -> Vec<Output> {
        let Some(set) = self.new_prefix(session, channel_id, now) else {
            return Vec::new();
        };
        let mut out = vec![set];
        out.extend(self.update_template(now));
        out
    }

    /// A fresh prefix for one channel, and the SetExtranoncePrefix that says so.
    fn new_prefix(&mut self, session: SessionId, channel_id: u32, now: u32) -> Option<Output> {
        let channel = self
            .sessions
            .get_mut(&session)
            .and_then(|s| s.channels.get_mut(&channel_id))?;
        let prefix = self.extranonces.allocate(channel.extranonce_prefix.len())?;
        channel.extranonce_prefix = prefix.clone();
        channel.prefix_since = now;
        Some(send(
            session,
            SetExtranoncePrefix {
                channel_id,
                extranonce_prefix: B0_32::new(prefix).unwrap_or_default(),
            }
            .into(),
        ))
    }

    /// [`PoolConfig::extranonce_prefix_every_secs`]: every channel whose prefix is that old gets a
    /// new one, and (in-process) a new template makes jobs for it at once.
    fn rotate_prefixes(&mut self, now: u32) -> Vec<Output> {
        let Some(every) = self.config.extranonce_prefix_every_secs else {
            return Vec::new();
        };
        let due: Vec<(SessionId, u32)> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.state == SessionState::Ready)
            .flat_map(|(sid, s)| {
                s.channels
                    .values()
                    .filter(|c| now.saturating_sub(c.prefix_since) >= every)
                    .map(|c| (*sid, c.id))
            })
            .collect();
        let mut out: Vec<Output> = due
            .into_iter()
            .filter_map(|(sid, channel_id)| self.new_prefix(sid, channel_id, now))
            .collect();
        if !out.is_empty() {
            out.extend(self.update_template(now));
        }
        out
    }

    /// In-process mode: a block found elsewhere; the chain moves on (new future template, prev hash).
    pub fn new_block(&mut self, now: u32) -> Vec<Output> {
        let Some(p) = self.in_process.as_mut() else {
            return Vec::new();
        };
        let answers = p.tp.new_block(now);
        self.tp_answers(answers, now)
    }

    /// In-process mode: a new non-future template on the same prev hash.
    pub fn update_template(&mut self, now: u32) -> Vec<Output> {
        let Some(p) = self.in_process.as_mut() else {
            return Vec::new();
        };
        let answers = p.tp.update_template();
        self.tp_answers(answers, now)
    }

    /// Handles one message from the template source.
    pub fn handle_template(&mut self, message: &Message<'_>, now: u32) -> Vec<Output> {
        let out = self.template_message(message, now);
        self.route(out, now)
    }

    fn template_message(&mut self, message: &Message<'_>, now: u32) -> Vec<Output> {
        match message {
            Message::SetupConnectionSuccess(_) => {
                self.upstream = UpstreamState::Ready;
                vec![Output::SendUpstream {
                    message: CoinbaseOutputConstraints {
                        coinbase_output_max_additional_size: self.layout.payout_output_size(),
                        coinbase_output_max_additional_sigops: self.layout.payout_sigops(),
                    }
                    .into(),
                }]
            }
            Message::SetupConnectionError(e) => {
                let note = format!(
                    "the template source refused SetupConnection: {} (flags {:#x})",
                    String::from_utf8_lossy(e.error_code.as_bytes()),
                    e.flags
                );
                self.upstream = UpstreamState::Failed(note.clone());
                vec![Output::Upstream { note }]
            }
            Message::NewTemplate(t) => self.new_template(t),
            Message::SetNewPrevHashTdp(p) => self.new_prev_hash(p, now),
            Message::RequestTransactionDataSuccess(d) => {
                if let Some(entry) = self.templates.get_mut(&d.template_id) {
                    entry.transactions = Some(
                        d.transaction_list
                            .iter()
                            .map(|t| t.as_bytes().to_vec())
                            .collect(),
                    );
                    Vec::new()
                } else {
                    vec![Output::Upstream {
                        note: format!("transaction data for unknown template {}", d.template_id),
                    }]
                }
            }
            Message::RequestTransactionDataError(e) => vec![Output::Upstream {
                note: format!(
                    "no transaction data for template {}: {}",
                    e.template_id,
                    String::from_utf8_lossy(e.error_code.as_bytes())
                ),
            }],
            other => vec![Output::Upstream {
                note: format!("unexpected {} from the template source", other.name()),
            }],
        }
    }

    fn job_state(&self, template_id: u64) -> JobState<'_> {
        let Some(entry) = self.templates.get(&template_id) else {
            return JobState::Unknown;
        };
        match entry.activated {
            Some(n) if n == self.epoch => match self.epochs.get(&n) {
                Some(epoch) => JobState::Active(epoch),
                None => JobState::Unknown,
            },
            Some(_) => JobState::Stale,
            None if entry.created_epoch < self.epoch => JobState::Stale,
            None => JobState::Pending,
        }
    }

    fn new_template(&mut self, t: &NewTemplate<'_>) -> Vec<Output> {
        let template = match PoolTemplate::build(t, &self.layout) {
            Ok(template) => template,
            Err(error) => {
                self.stats.templates_refused += 1;
                return vec![Output::TemplateRefused {
                    template_id: t.template_id,
                    error,
                }];
            }
        };
        if !t.future_template && !self.epochs.contains_key(&self.epoch) {
            self.stats.templates_refused += 1;
            return vec![Output::Upstream {
                note: format!(
                    "template {} is not a future template but no prev hash came yet; ignored",
                    t.template_id
                ),
            }];
        }
        self.stats.templates += 1;
        let id = t.template_id;
        self.templates.insert(
            id,
            TemplateEntry {
                template: template.clone(),
                created_epoch: self.epoch,
                activated: (!t.future_template).then_some(self.epoch),
                transactions: None,
            },
        );
        let min_ntime = if t.future_template {
            None
        } else {
            self.current_template = Some(id);
            self.epochs.get(&self.epoch).map(|e| e.min_ntime)
        };
        let mut out = Vec::new();
        if self.config.request_transaction_data {
            out.push(Output::SendUpstream {
                message: RequestTransactionData { template_id: id }.into(),
            });
        }
        let config = &self.config;
        for (sid, session) in &mut self.sessions {
            if session.state != SessionState::Ready || session.channels.is_empty() {
                continue;
            }
            let job_id = session.new_job(id, &template, &config.faults);
            for dest in session.destinations(config) {
                deliver(
                    session, *sid, dest, job_id, &template, min_ntime, config, &mut out,
                );
            }
        }
        self.prune();
        out
    }

    fn new_prev_hash(&mut self, p: &SetNewPrevHashTdp, now: u32) -> Vec<Output> {
        let nbits_target = compact_to_target(p.n_bits).ok();
        let block_target = match nbits_target {
            Some(t) => harder(t, p.target.0),
            None => p.target.0,
        };
        self.epoch += 1;
        self.stats.prev_hashes += 1;
        let epoch = Epoch {
            prev_hash: p.prev_hash.0,
            min_ntime: p.header_timestamp,
            nbits: p.n_bits,
            block_target,
            received_at: now,
        };
        self.epochs.insert(self.epoch, epoch.clone());
        let mut out = Vec::new();
        let template = match self.templates.get_mut(&p.template_id) {
            Some(entry) => {
                entry.activated = Some(self.epoch);
                self.current_template = Some(p.template_id);
                entry.template.clone()
            }
            None => {
                self.current_template = None;
                out.push(Output::Upstream {
                    note: format!(
                        "SetNewPrevHash for unknown template {}: no job until the next template",
                        p.template_id
                    ),
                });
                self.prune();
                return out;
            }
        };
        let config = &self.config;
        for (sid, session) in &mut self.sessions {
            if session.state != SessionState::Ready || session.channels.is_empty() {
                continue;
            }
            let job_id = session.job_for(p.template_id, &template, &config.faults);
            for dest in session.destinations(config) {
                // Every addressee must have been sent the job: deliver it (as a future job) to
                // whoever lacks it, individually.
                let lacking: Vec<u32> = session
                    .members(dest)
                    .into_iter()
                    .filter(|c| {
                        session
                            .channels
                            .get(c)
                            .is_some_and(|ch| !ch.jobs.contains_key(&job_id))
                    })
                    .collect();
                let whole = lacking.len() == session.members(dest).len();
                if whole {
                    deliver(
                        session, *sid, dest, job_id, &template, None, config, &mut out,
                    );
                } else {
                    for c in lacking {
                        deliver(
                            session,
                            *sid,
                            Dest::Channel(c),
                            job_id,
                            &template,
                            None,
                            config,
                            &mut out,
                        );
                    }
                }
                out.push(prev_hash_message(*sid, dest, job_id, &epoch));
            }
        }
        self.prune();
        out
    }

    /// Forgets templates (and the jobs made of them) older than the previous prev hash, and the
    /// oldest beyond `max_templates`; stale jobs keep no duplicate sets.
    fn prune(&mut self) {
        let keep_from = self.epoch.saturating_sub(1);
        self.templates.retain(|_, e| match e.activated {
            Some(n) => n >= keep_from,
            None => e.created_epoch >= keep_from,
        });
        while self.templates.len() > self.config.max_templates {
            let oldest = self
                .templates
                .keys()
                .copied()
                .find(|id| Some(*id) != self.current_template);
            match oldest {
                Some(id) => {
                    self.templates.remove(&id);
                }
                None => break,
            }
        }
        self.epochs.retain(|n, _| *n >= keep_from);
        let templates = &self.templates;
        let epoch = self.epoch;
        for session in self.sessions.values_mut() {
            session.jobs.retain(|_, t| {
                templates
                    .get(&t.template_id)
                    .is_some_and(|e| Arc::ptr_eq(&e.template, t))
            });
            session
                .template_jobs
                .retain(|tid, _| templates.contains_key(tid));
            let jobs = &session.jobs;
            for channel in session.channels.values_mut() {
                channel.jobs.retain(|job_id, _| jobs.contains_key(job_id));
                for (job_id, cj) in channel.jobs.iter_mut() {
                    let stale = jobs
                        .get(job_id)
                        .and_then(|t| templates.get(&t.template_id))
                        .is_some_and(|e| match e.activated {
                            Some(n) => n != epoch,
                            None => e.created_epoch < epoch,
                        });
                    if stale && !cj.seen.is_empty() {
                        cj.seen = Default::default();
                    }
                }
            }
        }
    }

    /// Handles one message of `session` at `now` (unix seconds), without TLVs.
    pub fn handle(&mut self, session: SessionId, message: &Message<'_>, now: u32) -> Vec<Output> {
        let out = self.session_message(session, message, &[], now);
        self.route(out, now)
    }

    /// Handles one decoded frame of `session`: the message and the TLVs after it (only those of
    /// negotiated extensions are read; others are ignored, extension 0x0002 §1.3).
    pub fn handle_frame(
        &mut self,
        session: SessionId,
        frame: &Decoded<'_>,
        now: u32,
    ) -> Vec<Output> {
        let out = self.session_message(session, &frame.message, &frame.tlvs, now);
        self.route(out, now)
    }

    /// A frame of `session` that did not decode strictly (`frame`: header and payload). One case is
    /// the pool's to answer: a SubmitSharesExtended whose user_identity TLV is over 32 bytes. With
    /// extension 0x0002 negotiated the share is rejected (§3.4.3: "the recipient MUST reject the
    /// message"); without it the TLV is ignored and the share judged on its own (extension 0x0002
    /// §1.3). Anything else is left to the driver (which logs it).
    pub fn handle_undecodable(
        &mut self,
        session: SessionId,
        frame: &[u8],
        error: &DecodeError,
        now: u32,
    ) -> Vec<Output> {
        let ErrorKind::TlvTooLong { length, .. } = error.kind else {
            return Vec::new();
        };
        let Some((header, payload)) = frame.split_first_chunk::<HEADER_LEN>() else {
            return Vec::new();
        };
        let Ok(message) = decode_base(&Header::from_bytes(*header), payload) else {
            return Vec::new();
        };
        let negotiated = self.sessions.get(&session).is_some_and(|s| {
            s.extensions
                .contains(&sv2_codec::tlv::EXT_WORKER_HASHRATE_TRACKING)
        });
        let out = match (&message, negotiated) {
            (Message::SubmitSharesExtended(m), true) => self.reject(
                session,
                m.channel_id,
                m.sequence_number,
                ShareError::UserIdentityTooLong { length },
            ),
            (_, _) => self.session_message(session, &message, &[], now),
        };
        self.route(out, now)
    }

    fn session_message(
        &mut self,
        sid: SessionId,
        message: &Message<'_>,
        tlvs: &[Tlv<'_>],
        now: u32,
    ) -> Vec<Output> {
        let Some(session) = self.sessions.get_mut(&sid) else {
            return vec![Output::Close {
                session: sid,
                reason: "unknown session".into(),
            }];
        };
        if let Some(reason) = self
            .config
            .extensions
            .as_ref()
            .and_then(|ext| required_missing(session, ext, message))
        {
            session.state = SessionState::Closed;
            return vec![Output::Close {
                session: sid,
                reason,
            }];
        }
        match (session.state, message) {
            (SessionState::Closed, _) => Vec::new(),
            (SessionState::AwaitingSetup, Message::SetupConnection(setup)) => {
                self.setup(sid, setup)
            }
            (SessionState::AwaitingSetup, other) => {
                session.state = SessionState::Closed;
                vec![Output::Close {
                    session: sid,
                    reason: format!("expected SetupConnection first, got {}", other.name()),
                }]
            }
            (SessionState::Ready, Message::OpenStandardMiningChannel(m)) => self.open_channel(
                sid,
                OpenRequest {
                    request_id: m.request_id,
                    user_identity: String::from_utf8_lossy(m.user_identity.as_bytes()).into(),
                    nominal_hash_rate: m.nominal_hash_rate,
                    max_target: m.max_target.0,
                    min_extranonce_size: None,
                },
                now,
            ),
            (SessionState::Ready, Message::OpenExtendedMiningChannel(m)) => self.open_channel(
                sid,
                OpenRequest {
                    request_id: m.request_id,
                    user_identity: String::from_utf8_lossy(m.user_identity.as_bytes()).into(),
                    nominal_hash_rate: m.nominal_hash_rate,
                    max_target: m.max_target.0,
                    min_extranonce_size: Some(m.min_extranonce_size),
                },
                now,
            ),
            (SessionState::Ready, Message::UpdateChannel(m)) => {
                self.update_channel(sid, m.channel_id, m.nominal_hash_rate, m.maximum_target.0)
            }
            (SessionState::Ready, Message::CloseChannel(m)) => {
                self.close_channel(sid, m.channel_id, m.reason_code.as_bytes())
            }
            (SessionState::Ready, Message::SubmitSharesStandard(m)) => self.submit(
                sid,
                Submit {
                    channel_id: m.channel_id,
                    sequence_number: m.sequence_number,
                    job_id: m.job_id,
                    nonce: m.nonce,
                    ntime: m.ntime,
                    version: m.version,
                    extranonce: None,
                    worker: None,
                },
                now,
            ),
            (SessionState::Ready, Message::SubmitSharesExtended(m)) => {
                let worker = session
                    .extensions
                    .contains(&sv2_codec::tlv::EXT_WORKER_HASHRATE_TRACKING)
                    .then(|| worker(tlvs))
                    .flatten();
                self.submit(
                    sid,
                    Submit {
                        channel_id: m.channel_id,
                        sequence_number: m.sequence_number,
                        job_id: m.job_id,
                        nonce: m.nonce,
                        ntime: m.ntime,
                        version: m.version,
                        extranonce: Some(m.extranonce.as_bytes()),
                        worker,
                    },
                    now,
                )
            }
            (SessionState::Ready, Message::RequestExtensions(m))
                if self.config.extensions.is_some() =>
            {
                let ext = self.config.extensions.as_ref().expect("checked");
                negotiate(sid, session, ext, m)
            }
            (SessionState::Ready, Message::SetCustomMiningJob(m))
                if self.config.faults.accept_custom_jobs =>
            {
                let job_id = session.alloc_job_id(&self.config.faults);
                vec![send(
                    sid,
                    SetCustomMiningJobSuccess {
                        channel_id: m.channel_id,
                        request_id: m.request_id,
                        job_id,
                    }
                    .into(),
                )]
            }
            (SessionState::Ready, Message::SetCustomMiningJob(m)) => {
                let code = match session.channels.get(&m.channel_id).map(|c| c.kind) {
                    None => "invalid-channel-id",
                    Some(ChannelKind::Standard) => {
                        "standard-channels-not-supported-for-custom-work"
                    }
                    // Work selection without a Job Declarator: no token was ever issued.
                    Some(ChannelKind::Extended { .. })
                        if session.flags & REQUIRES_WORK_SELECTION != 0 =>
                    {
                        "invalid-mining-job-token"
                    }
                    Some(ChannelKind::Extended { .. }) => "jd-not-supported",
                };
                vec![send(
                    sid,
                    SetCustomMiningJobError {
                        channel_id: m.channel_id,
                        request_id: m.request_id,
                        error_code: text(code),
                    }
                    .into(),
                )]
            }
            (SessionState::Ready, other) => vec![Output::Unexpected {
                session: sid,
                message: other.name().to_owned(),
            }],
        }
    }

    fn setup(&mut self, sid: SessionId, setup: &SetupConnection<'_>) -> Vec<Output> {
        let config = &self.config;
        let Some(session) = self.sessions.get_mut(&sid) else {
            return Vec::new();
        };
        let refuse = |session: &mut Session, flags: u32, code: &str| {
            session.state = SessionState::Closed;
            vec![
                send(
                    sid,
                    SetupConnectionError {
                        flags,
                        error_code: text(code),
                    }
                    .into(),
                ),
                Output::Close {
                    session: sid,
                    reason: format!("SetupConnection refused: {code} (flags {flags:#x})"),
                },
            ]
        };
        if setup.protocol != PROTOCOL_MINING {
            return refuse(session, 0, "unsupported-protocol");
        }
        if !(setup.min_version..=setup.max_version).contains(&2) {
            return refuse(session, 0, "protocol-version-mismatch");
        }
        let supported = if config.faults.accept_custom_jobs || config.work_selection {
            SUPPORTED_FLAGS | REQUIRES_WORK_SELECTION
        } else {
            SUPPORTED_FLAGS
        };
        let mut unsupported = setup.flags & !supported;
        if config.fixed_version && !config.faults.ignore_version_rolling_flag {
            unsupported |= setup.flags & REQUIRES_VERSION_ROLLING;
        }
        if config.requires_extended_channels {
            unsupported |= setup.flags & REQUIRES_STANDARD_JOBS;
        }
        if unsupported != 0 {
            return refuse(session, unsupported, "unsupported-feature-flags");
        }
        session.state = SessionState::Ready;
        session.flags = setup.flags;
        let mut flags = 0;
        if config.fixed_version {
            flags |= REQUIRES_FIXED_VERSION;
        }
        if config.requires_extended_channels {
            flags |= REQUIRES_EXTENDED_CHANNELS;
        }
        vec![send(
            sid,
            SetupConnectionSuccess {
                used_version: 2,
                flags,
            }
            .into(),
        )]
    }

    fn open_channel(&mut self, sid: SessionId, request: OpenRequest, now: u32) -> Vec<Output> {
        let config = &self.config;
        let request_id = request.request_id;
        let Some(session) = self.sessions.get_mut(&sid) else {
            return Vec::new();
        };
        let refuse = |code: &str| {
            vec![send(
                sid,
                OpenMiningChannelError {
                    request_id,
                    error_code: text(code),
                }
                .into(),
            )]
        };
        if session.channels.len() >= config.max_channels_per_session {
            return refuse("channel-capacity-exhausted");
        }
        let kind = match request.min_extranonce_size {
            None if config.requires_extended_channels || config.faults.refuse_standard_channels => {
                return refuse("standard-channels-not-supported")
            }
            None => ChannelKind::Standard,
            Some(_)
                if session.flags & REQUIRES_STANDARD_JOBS != 0
                    && !config.faults.extended_jobs_to_standard =>
            {
                return refuse("extended-channels-not-supported-for-standard-jobs")
            }
            Some(min) => {
                let size = config.miner_extranonce_size();
                if usize::from(min) > size && !config.faults.ignore_min_extranonce_size {
                    return refuse("min-extranonce-size-too-large");
                }
                ChannelKind::Extended {
                    extranonce_size: size as u16,
                }
            }
        };
        let rate = request.nominal_hash_rate;
        if !rate.is_finite() || rate < 0.0 {
            return refuse("invalid-nominal-hashrate");
        }
        if !meets_target(&config.hardest_target, &request.max_target)
            && !config.faults.target_above_max
        {
            return refuse("max-target-out-of-range");
        }
        let ceiling = harder(request.max_target, config.easiest_target);
        let mut target =
            vardiff::initial_target(rate, &config.vardiff, config.hardest_target, ceiling);
        if config.faults.target_above_max {
            target = above(&request.max_target);
        }
        let prefix_len = match kind {
            ChannelKind::Standard => config.extranonce_len,
            ChannelKind::Extended { .. } => config.extranonce_prefix_len,
        };
        let Some(extranonce_prefix) = self.extranonces.allocate(prefix_len) else {
            return refuse("channel-capacity-exhausted");
        };
        let channel_id = session.alloc_id();
        let group = match session.current_group {
            Some(g)
                if session
                    .groups
                    .get(&g)
                    .is_some_and(|g| g.members.len() < 65_535) =>
            {
                g
            }
            _ => {
                let g = session.alloc_id();
                session.groups.insert(g, Group::default());
                session.current_group = Some(g);
                g
            }
        };
        if let Some(g) = session.groups.get_mut(&group) {
            g.members.insert(channel_id);
        }
        session.channels.insert(
            channel_id,
            Channel {
                id: channel_id,
                kind,
                user_identity: request.user_identity,
                extranonce_prefix: extranonce_prefix.clone(),
                prefix_since: now,
                target,
                max_target: request.max_target,
                nominal_hash_rate: rate,
                group,
                jobs: BTreeMap::new(),
                batch: Batch::default(),
                vardiff: VardiffState::new(now),
                accepted: 0,
                rejected: 0,
                blocks: 0,
            },
        );
        session.had_channel = true;
        self.stats.channels_opened += 1;
        let prefix_field = B0_32::new(extranonce_prefix.clone()).unwrap_or_default();
        let success: Message<'static> = match kind {
            ChannelKind::Standard => OpenStandardMiningChannelSuccess {
                request_id,
                channel_id,
                target: U256(target),
                extranonce_prefix: prefix_field,
                group_channel_id: group,
            }
            .into(),
            ChannelKind::Extended { extranonce_size } => OpenExtendedMiningChannelSuccess {
                request_id,
                channel_id,
                target: U256(target),
                extranonce_size,
                extranonce_prefix: prefix_field,
                group_channel_id: group,
            }
            .into(),
        };
        let mut out = vec![
            send(sid, success),
            Output::ChannelOpened {
                session: sid,
                channel_id,
                kind,
                target,
                extranonce_prefix,
            },
        ];

        // The first job, as a future job, and the prev hash that activates it.
        let dest = Dest::Channel(channel_id);
        if let (Some(current), Some(epoch)) = (self.current_template, self.epochs.get(&self.epoch))
        {
            if let Some(entry) = self.templates.get(&current) {
                let template = entry.template.clone();
                let job_id = session.job_for(current, &template, &config.faults);
                deliver(
                    session, sid, dest, job_id, &template, None, config, &mut out,
                );
                out.push(prev_hash_message(sid, dest, job_id, epoch));
            }
        }
        // Future jobs waiting for their prev hash.
        let pending: Vec<(u64, Arc<PoolTemplate>)> = self
            .templates
            .iter()
            .filter(|(_, e)| e.activated.is_none() && e.created_epoch == self.epoch)
            .map(|(id, e)| (*id, e.template.clone()))
            .collect();
        for (template_id, template) in pending {
            let job_id = session.job_for(template_id, &template, &config.faults);
            deliver(
                session, sid, dest, job_id, &template, None, config, &mut out,
            );
        }
        if session.broadcasts(config) {
            let members: Vec<u32> = session
                .groups
                .get(&group)
                .map(|g| g.members.iter().copied().collect())
                .unwrap_or_default();
            out.push(send(
                sid,
                SetGroupChannel {
                    group_channel_id: group,
                    channel_ids: Seq0_64K::new(members).unwrap_or_default(),
                }
                .into(),
            ));
        }
        out
    }

    fn update_channel(
        &mut self,
        sid: SessionId,
        channel_id: u32,
        nominal_hash_rate: f32,
        maximum_target: [u8; 32],
    ) -> Vec<Output> {
        let config = &self.config;
        if config.faults.ignore_update_channel {
            return Vec::new();
        }
        let Some(session) = self.sessions.get_mut(&sid) else {
            return Vec::new();
        };
        let refuse = |code: &str| {
            vec![send(
                sid,
                UpdateChannelError {
                    channel_id,
                    error_code: text(code),
                }
                .into(),
            )]
        };
        let Some(channel) = session.channels.get_mut(&channel_id) else {
            return refuse("invalid-channel-id");
        };
        if !nominal_hash_rate.is_finite() || nominal_hash_rate < 0.0 {
            return refuse("invalid-nominal-hashrate");
        }
        if !meets_target(&config.hardest_target, &maximum_target) {
            return refuse("max-target-out-of-range");
        }
        channel.nominal_hash_rate = nominal_hash_rate;
        channel.max_target = maximum_target;
        if meets_target(&channel.target, &maximum_target) {
            return Vec::new();
        }
        if !config.faults.set_target_not_enforced {
            channel.target = maximum_target;
        }
        vec![send(
            sid,
            SetTarget {
                channel_id,
                maximum_target: U256(maximum_target),
            }
            .into(),
        )]
    }

    fn close_channel(&mut self, sid: SessionId, channel_id: u32, reason: &[u8]) -> Vec<Output> {
        if self.config.faults.ignore_close_channel {
            return Vec::new();
        }
        let Some(session) = self.sessions.get_mut(&sid) else {
            return Vec::new();
        };
        let reason = String::from_utf8_lossy(reason).into_owned();
        let closed: Vec<u32> = if let Some(channel) = session.channels.remove(&channel_id) {
            if let Some(g) = session.groups.get_mut(&channel.group) {
                g.members.remove(&channel_id);
            }
            vec![channel_id]
        } else if let Some(group) = session.groups.remove(&channel_id) {
            if session.current_group == Some(channel_id) {
                session.current_group = None;
            }
            if self.config.faults.close_group_keeps_members {
                return Vec::new();
            }
            for member in &group.members {
                session.channels.remove(member);
            }
            group.members.into_iter().collect()
        } else {
            return vec![Output::Unexpected {
                session: sid,
                message: format!("CloseChannel for unknown channel {channel_id}"),
            }];
        };
        closed
            .into_iter()
            .map(|c| Output::ChannelClosed {
                session: sid,
                channel_id: c,
                reason: reason.clone(),
            })
            .collect()
    }

    fn submit(&mut self, sid: SessionId, share: Submit<'_>, now: u32) -> Vec<Output> {
        let mut out = Vec::new();
        let result = self.validate(sid, &share, now, &mut out);
        let Some(session) = self.sessions.get_mut(&sid) else {
            return out;
        };
        match result {
            Err(error) => {
                let mut rejected = self.reject(sid, share.channel_id, share.sequence_number, error);
                rejected.append(&mut out);
                out = rejected;
            }
            Ok(block) => {
                if let Some(name) = share.worker {
                    let workers = &mut self.stats.shares_by_worker;
                    let key = if workers.len() < MAX_WORKERS || workers.contains_key(&name) {
                        name
                    } else {
                        String::new()
                    };
                    *workers.entry(key).or_default() += 1;
                }
                let Some(channel) = session.channels.get_mut(&share.channel_id) else {
                    return out;
                };
                let mut ack = channel.batch.take(
                    self.config.ack_every,
                    self.config.ack_delay_secs,
                    now,
                    block,
                );
                if let (Some(ack), true) =
                    (ack.as_mut(), self.config.faults.cumulative_accepted_count)
                {
                    ack.new_submits_accepted_count = channel.accepted as u32;
                }
                if let Some(ack) = ack {
                    // Before the solution goes upstream: the share's acknowledgement first.
                    let at = out
                        .iter()
                        .position(|o| matches!(o, Output::SendUpstream { .. }))
                        .unwrap_or(out.len());
                    out.insert(at, success(sid, share.channel_id, ack));
                }
            }
        }
        out
    }

    /// A refused share: counted, SubmitShares.Error sent, after [`Output::ShareRejected`].
    fn reject(
        &mut self,
        sid: SessionId,
        channel_id: u32,
        sequence_number: u32,
        error: ShareError,
    ) -> Vec<Output> {
        self.stats.shares_rejected += 1;
        *self
            .stats
            .rejected_by_reason
            .entry(error.code().to_owned())
            .or_default() += 1;
        if let Some(channel) = self
            .sessions
            .get_mut(&sid)
            .and_then(|s| s.channels.get_mut(&channel_id))
        {
            channel.rejected += 1;
        }
        let message = SubmitSharesError {
            channel_id,
            sequence_number,
            error_code: text(error.code()),
        };
        vec![
            Output::ShareRejected {
                session: sid,
                channel_id,
                sequence_number,
                error,
            },
            send(sid, message.into()),
        ]
    }

    /// Validates a share; on success records it and pushes the acceptance (and block) outputs.
    /// Returns whether it was a block.
    fn validate(
        &mut self,
        sid: SessionId,
        share: &Submit<'_>,
        now: u32,
        out: &mut Vec<Output>,
    ) -> Result<bool, ShareError> {
        let kind_name = if share.extranonce.is_some() {
            "extended"
        } else {
            "standard"
        };
        let invalid_channel = ShareError::InvalidChannelId {
            channel_id: share.channel_id,
            kind: kind_name,
        };
        let session = self.sessions.get(&sid).ok_or(invalid_channel.clone())?;
        let channel = session
            .channels
            .get(&share.channel_id)
            .ok_or(invalid_channel.clone())?;
        let miner_extranonce: &[u8] = match (channel.kind, share.extranonce) {
            (ChannelKind::Standard, None) => &[],
            (ChannelKind::Extended { .. }, Some(e)) => e,
            _ => return Err(invalid_channel),
        };
        let job_id = share.job_id;
        let invalid_job = ShareError::InvalidJobId { job_id };
        let channel_job = channel.jobs.get(&job_id).ok_or(invalid_job.clone())?;
        let template = session
            .jobs
            .get(&job_id)
            .ok_or(invalid_job.clone())?
            .clone();
        let epoch = match self.job_state(template.template_id) {
            JobState::Active(epoch) => epoch.clone(),
            JobState::Stale => return Err(ShareError::StaleShare { job_id }),
            JobState::Pending | JobState::Unknown => return Err(invalid_job),
        };
        if let ChannelKind::Extended { extranonce_size } = channel.kind {
            if miner_extranonce.len() != usize::from(extranonce_size)
                && self.config.shares.check_extranonce_size
            {
                return Err(ShareError::BadExtranonceSize {
                    expected: usize::from(extranonce_size),
                    got: miner_extranonce.len(),
                });
            }
        }
        let rules = self.config.shares;
        let min_ntime = epoch.min_ntime.saturating_sub(rules.ntime_past_slack_secs);
        let max_ntime = epoch
            .min_ntime
            .saturating_add(now.saturating_sub(epoch.received_at))
            .saturating_add(rules.ntime_future_slack_secs);
        if share.ntime < min_ntime || share.ntime > max_ntime {
            return Err(ShareError::InvalidNtime {
                ntime: share.ntime,
                min: min_ntime,
                max: max_ntime,
            });
        }
        let rolling = !self.config.fixed_version;
        let mask = if rolling { VERSION_ROLLING_MASK } else { 0 };
        if (share.version ^ template.version) & !mask != 0 && rules.check_version {
            return Err(if rolling {
                ShareError::InvalidNonRollableVersionBit {
                    version: share.version,
                    job_version: template.version,
                    mask,
                }
            } else {
                ShareError::VersionRollingNotAllowed {
                    version: share.version,
                    job_version: template.version,
                }
            });
        }
        let mut full_extranonce = channel_job.extranonce_prefix.clone();
        full_extranonce.extend_from_slice(miner_extranonce);
        let merkle_root = match channel_job.merkle_root {
            Some(root) => root,
            None => template.merkle_root(&full_extranonce),
        };
        let header = BlockHeader {
            version: share.version,
            prev_hash: epoch.prev_hash,
            merkle_root,
            ntime: share.ntime,
            nbits: epoch.nbits,
            nonce: share.nonce,
        };
        let header_bytes = header.to_bytes();
        let hash = sha256d(&header_bytes);
        let is_block = meets_target(&hash, &epoch.block_target);
        // A job received with min_ntime set keeps its target; a later SetTarget that makes shares
        // easier applies to it too (leniency the spec allows: the server "will reject" only above the
        // target it set).
        let required = match channel_job.pinned_target {
            Some(pinned) => vardiff::easier(pinned, channel.target),
            None => channel.target,
        };
        if !is_block && !meets_target(&hash, &required) && rules.check_target {
            return Err(ShareError::DifficultyTooLow);
        }
        if channel_job.seen.contains(&hash) && rules.check_duplicates {
            return Err(ShareError::DuplicateShare);
        }
        if channel_job.seen.len() >= self.config.max_shares_per_job {
            return Err(ShareError::TooManyShares {
                job_id,
                limit: self.config.max_shares_per_job,
            });
        }

        // Accepted.
        let share_difficulty = difficulty(&required);
        if let Some(channel) = self
            .sessions
            .get_mut(&sid)
            .and_then(|s| s.channels.get_mut(&share.channel_id))
        {
            if let Some(cj) = channel.jobs.get_mut(&job_id) {
                cj.seen.insert(hash);
            }
            channel.accepted += 1;
            channel.vardiff.accepted += 1;
            if is_block {
                channel.blocks += 1;
            }
            channel
                .batch
                .add(share.sequence_number, share_difficulty, now);
        }
        self.stats.shares_accepted += 1;
        self.stats.accepted_difficulty += share_difficulty;
        out.push(Output::ShareAccepted {
            session: sid,
            channel_id: share.channel_id,
            sequence_number: share.sequence_number,
            job_id,
            difficulty: share_difficulty,
            hash,
        });
        if !is_block {
            return Ok(false);
        }
        self.stats.blocks_found += 1;
        let coinbase = template.full_coinbase(&full_extranonce).serialize(true);
        let block = self
            .templates
            .get(&template.template_id)
            .and_then(|e| e.transactions.as_ref())
            .map(|txs| {
                let mut block = header_bytes.to_vec();
                write_compact_size(&mut block, txs.len() as u64 + 1);
                block.extend_from_slice(&coinbase);
                for tx in txs {
                    block.extend_from_slice(tx);
                }
                block
            });
        let solution = SubmitSolution {
            template_id: template.template_id,
            version: share.version,
            header_timestamp: share.ntime,
            header_nonce: share.nonce,
            coinbase_tx: B0_64K::new(coinbase).unwrap_or_default(),
        };
        out.push(Output::BlockFound {
            session: sid,
            channel_id: share.channel_id,
            template_id: template.template_id,
            block_hash: display_hex(&hash),
            solution: solution.clone(),
            block,
        });
        out.push(Output::SendUpstream {
            message: solution.into(),
        });
        Ok(true)
    }

    /// Time passes: batched acknowledgements come due, vardiff retargets, idle connections close.
    pub fn tick(&mut self, now: u32) -> Vec<Output> {
        let config = &self.config;
        let mut out = Vec::new();
        for (sid, session) in &mut self.sessions {
            if let Some(timeout) = config.idle_timeout_secs {
                let idle = match session.state {
                    SessionState::AwaitingSetup => true,
                    SessionState::Ready => !session.had_channel,
                    SessionState::Closed => false,
                };
                if idle && now.saturating_sub(session.opened_at) >= timeout {
                    session.state = SessionState::Closed;
                    session.channels.clear();
                    out.push(Output::Close {
                        session: *sid,
                        reason: format!("no channel opened within {timeout} s"),
                    });
                    continue;
                }
            }
            if session.state != SessionState::Ready {
                continue;
            }
            for channel in session.channels.values_mut() {
                if let Some(mut ack) =
                    channel
                        .batch
                        .take(config.ack_every, config.ack_delay_secs, now, false)
                {
                    if config.faults.cumulative_accepted_count {
                        ack.new_submits_accepted_count = channel.accepted as u32;
                    }
                    out.push(success(*sid, channel.id, ack));
                }
                let ceiling = harder(channel.max_target, config.easiest_target);
                if let Some(target) = vardiff::retarget(
                    &mut channel.vardiff,
                    channel.target,
                    now,
                    &config.vardiff,
                    config.hardest_target,
                    ceiling,
                ) {
                    channel.target = target;
                    out.push(send(
                        *sid,
                        SetTarget {
                            channel_id: channel.id,
                            maximum_target: U256(target),
                        }
                        .into(),
                    ));
                }
            }
        }
        out.extend(self.rotate_prefixes(now));
        self.route(out, now)
    }
}

/// What Open*MiningChannel asks.
struct OpenRequest {
    request_id: u32,
    user_identity: String,
    nominal_hash_rate: f32,
    max_target: [u8; 32],
    /// None for a standard channel.
    min_extranonce_size: Option<u16>,
}

fn success(session: SessionId, channel_id: u32, ack: Acknowledgement) -> Output {
    send(
        session,
        SubmitSharesSuccess {
            channel_id,
            last_sequence_number: ack.last_sequence_number,
            new_submits_accepted_count: ack.new_submits_accepted_count,
            new_shares_sum: ack.new_shares_sum,
        }
        .into(),
    )
}

/// Sends job `job_id` (of `template`) to `dest` and records it on every channel it reaches.
#[allow(clippy::too_many_arguments)]
fn deliver(
    session: &mut Session,
    sid: SessionId,
    dest: Dest,
    job_id: u32,
    template: &PoolTemplate,
    min_ntime: Option<u32>,
    config: &PoolConfig,
    out: &mut Vec<Output>,
) {
    let mut standard_root = None;
    for member in session.members(dest) {
        let Some(channel) = session.channels.get_mut(&member) else {
            continue;
        };
        let merkle_root = (channel.kind == ChannelKind::Standard)
            .then(|| template.merkle_root(&channel.extranonce_prefix));
        standard_root = merkle_root;
        channel.jobs.insert(
            job_id,
            ChannelJob {
                pinned_target: min_ntime.map(|_| channel.target),
                merkle_root,
                seen: Default::default(),
                extranonce_prefix: channel.extranonce_prefix.clone(),
            },
        );
    }
    let message: Message<'static> = match (dest, standard_root) {
        (Dest::Group(id), _) => extended_job(id, job_id, template, min_ntime, config),
        (Dest::Channel(id), Some(root)) => NewMiningJob {
            channel_id: id,
            job_id,
            min_ntime,
            version: template.version,
            merkle_root: U256(root),
        }
        .into(),
        (Dest::Channel(id), None) if session.channels.contains_key(&id) => {
            extended_job(id, job_id, template, min_ntime, config)
        }
        (Dest::Channel(_), None) => return,
    };
    if config.faults.skip_future_job && min_ntime.is_none() {
        return;
    }
    out.push(send(sid, message));
}

fn extended_job(
    channel_id: u32,
    job_id: u32,
    template: &PoolTemplate,
    min_ntime: Option<u32>,
    config: &PoolConfig,
) -> Message<'static> {
    NewExtendedMiningJob {
        channel_id,
        job_id,
        min_ntime,
        version: template.version,
        version_rolling_allowed: !config.fixed_version,
        merkle_path: Seq0_255::new(template.merkle_path.iter().map(|h| U256(*h)).collect())
            .unwrap_or_default(),
        coinbase_tx_prefix: B0_64K::new(template.coinbase_tx_prefix.clone()).unwrap_or_default(),
        coinbase_tx_suffix: B0_64K::new(template.coinbase_tx_suffix.clone()).unwrap_or_default(),
    }
    .into()
}

fn prev_hash_message(sid: SessionId, dest: Dest, job_id: u32, epoch: &Epoch) -> Output {
    send(
        sid,
        SetNewPrevHash {
            channel_id: dest.id(),
            job_id,
            prev_hash: U256(epoch.prev_hash),
            min_ntime: epoch.min_ntime,
            nbits: epoch.nbits,
        }
        .into(),
    )
}

/// RequestExtensions answered (extension 0x0001 §4): .Success with the requested extensions the
/// pool supports, unless none is supported or a required one was left out: then .Error with the
/// unsupported ones and the missing required ones (a session without them is closed by its next
/// message: [`required_missing`]).
fn negotiate(
    sid: SessionId,
    session: &mut Session,
    ext: &ExtensionSupport,
    m: &RequestExtensions,
) -> Vec<Output> {
    let mut requested: Vec<u16> = m.requested_extensions.iter().copied().collect();
    requested.dedup();
    let (supported, unsupported): (Vec<u16>, Vec<u16>) =
        requested.iter().partition(|id| ext.supported.contains(id));
    let missing: Vec<u16> = ext
        .required
        .iter()
        .copied()
        .filter(|id| !requested.contains(id))
        .collect();
    if !supported.is_empty() && missing.is_empty() {
        session.extensions = supported.clone();
        return vec![send(
            sid,
            RequestExtensionsSuccess {
                request_id: m.request_id,
                supported_extensions: Seq0_64K::new(supported).unwrap_or_default(),
            }
            .into(),
        )];
    }
    session.extensions.clear();
    vec![send(
        sid,
        RequestExtensionsError {
            request_id: m.request_id,
            unsupported_extensions: Seq0_64K::new(unsupported).unwrap_or_default(),
            required_extensions: Seq0_64K::new(missing).unwrap_or_default(),
        }
        .into(),
    )]
}

/// Why `message` ends a session that has not negotiated the pool's required extensions: after a
/// RequestExtensions.Error that listed them, anything but a new RequestExtensions; without any
/// negotiation, anything past SetupConnection (the client goes on without them, ext 0x0001 §4).
fn required_missing(
    session: &Session,
    ext: &ExtensionSupport,
    message: &Message<'_>,
) -> Option<String> {
    if session.state != SessionState::Ready || matches!(message, Message::RequestExtensions(_)) {
        return None;
    }
    let missing: Vec<u16> = ext
        .required
        .iter()
        .copied()
        .filter(|id| !session.extensions.contains(id))
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "{} without the required extension(s) {missing:04x?} (extension 0x0001 §4)",
            message.name()
        )
    })
}

/// The user_identity of extension 0x0002 among a share's TLVs.
fn worker(tlvs: &[Tlv<'_>]) -> Option<String> {
    tlvs.iter()
        .find(|t| {
            (t.extension_type, t.field_type)
                == (
                    sv2_codec::tlv::EXT_WORKER_HASHRATE_TRACKING,
                    sv2_codec::tlv::FIELD_USER_IDENTITY,
                )
        })
        .map(|t| String::from_utf8_lossy(t.value.as_bytes()).into_owned())
}
