//! What the device core reports: events for the driver and its user, and why a found share was not
//! submitted. Whether the upstream broke the spec is not the device's to say: the conformance
//! monitor judges the device's transcript (see [`super::driver::DeviceDriverConfig::observer`]).

use std::time::Duration;

use super::ChannelKind;

/// Something that happened on the connection, for the driver's user.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// SetupConnection.Success arrived.
    SetupDone { used_version: u16, flags: u32 },
    /// SetupConnection.Error arrived: the connection is unusable.
    SetupRefused { flags: u32, error_code: String },
    /// The channel is open. `target` is the pool's; `effective_target` is what the device mines at
    /// (the pool's, capped at the requested `max_target`).
    ChannelOpened {
        channel_id: u32,
        kind: ChannelKind,
        target: [u8; 32],
        effective_target: [u8; 32],
        extranonce_prefix: Vec<u8>,
        /// Bytes the device rolls (0 on standard channels).
        extranonce_size: u16,
        group_channel_id: u32,
    },
    /// OpenMiningChannel.Error arrived.
    ChannelRefused { request_id: u32, error_code: String },
    /// A job arrived (`future`: no min_ntime, waits for its SetNewPrevHash).
    JobReceived {
        channel_id: u32,
        job_id: u32,
        extended: bool,
        future: bool,
        /// Time since SetupConnection.Success.
        since_setup: Duration,
    },
    /// A job became the one mined (immediately, or by SetNewPrevHash).
    JobActivated {
        job_id: u32,
        prev_hash: [u8; 32],
        ntime: u32,
        nbits: u32,
    },
    /// SetNewPrevHash arrived (whatever job it names).
    NewPrevHash {
        job_id: u32,
        prev_hash: [u8; 32],
        min_ntime: u32,
        nbits: u32,
    },
    /// The channel's target changed (SetTarget).
    TargetChanged {
        target: [u8; 32],
        effective_target: [u8; 32],
    },
    /// SetExtranoncePrefix arrived.
    ExtranoncePrefixChanged { extranonce_prefix: Vec<u8> },
    /// SetGroupChannel arrived.
    GroupChannel {
        group_channel_id: u32,
        channel_ids: Vec<u32>,
    },
    /// A share was sent.
    ShareSubmitted {
        sequence_number: u32,
        job_id: u32,
        nonce: u32,
        ntime: u32,
        version: u32,
        extranonce: Vec<u8>,
        hash: [u8; 32],
        /// The share did not pass the device's own checks and was sent anyway (faulty mode).
        problem: Option<ShareProblem>,
    },
    /// A found share was not sent.
    ShareDropped { job_id: u32, problem: ShareProblem },
    /// A share's hash also meets the network target (nbits): a block.
    BlockFound { job_id: u32, hash: [u8; 32] },
    /// SubmitShares.Success: `new_submits_accepted_count` shares up to `last_sequence_number`.
    SharesAccepted {
        last_sequence_number: u32,
        new_submits_accepted_count: u32,
        new_shares_sum: u64,
    },
    /// SubmitShares.Error.
    ShareRejected {
        sequence_number: u32,
        error_code: String,
        /// The share's job was replaced (a SetNewPrevHash, the channel closed) while it was in
        /// flight: stale by the protocol's state, whatever `error_code` says.
        stale: bool,
    },
    /// UpdateChannel.Error.
    UpdateRefused { error_code: String },
    /// The pool closed the channel (CloseChannel on the channel or its group).
    ChannelClosed { reason_code: String },
    /// The pool asks the device to reconnect elsewhere (empty host / port 0: the current one).
    Reconnect { new_host: String, new_port: u16 },
    /// ChannelEndpointChanged for the channel.
    ChannelEndpointChanged { channel_id: u32 },
    /// A job cannot be mined (e.g. its extranonce would not fit in 32 bytes).
    CannotMine { job_id: u32, reason: String },
    /// A message a mining device has no use for (named as in the spec), ignored.
    Unexpected { message: String },
}

/// Why a found share was not submitted (or, in faulty mode, what is wrong with a share sent anyway).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShareProblem {
    /// The work it was found on is not known (any more).
    UnknownWork,
    /// Its job is no longer valid (a SetNewPrevHash named another job) or the channel is closed.
    Stale,
    /// Its hash is above the channel's (or job's) target.
    AboveTarget,
    /// The same share was already found and sent.
    Duplicate,
    /// Its version changes bits the job does not allow to change.
    VersionOutsideMask {
        version: u32,
        job_version: u32,
        mask: u32,
    },
    /// Its ntime is outside `[min, max]` (min_ntime, plus the seconds since the prevhash).
    NtimeOutOfRange { ntime: u32, min: u32, max: u32 },
    /// Its extranonce length is not the channel's extranonce_size.
    ExtranonceLength { len: usize, expected: usize },
    /// Recomputing the header from the job gives another hash than the engine reported (an engine
    /// bug, or a job changed under the work).
    HashMismatch,
}

impl std::fmt::Display for ShareProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShareProblem::UnknownWork => write!(f, "unknown work"),
            ShareProblem::Stale => write!(f, "stale (job no longer valid)"),
            ShareProblem::AboveTarget => write!(f, "hash above target"),
            ShareProblem::Duplicate => write!(f, "duplicate share"),
            ShareProblem::VersionOutsideMask {
                version,
                job_version,
                mask,
            } => write!(
                f,
                "version {version:#010x} differs from the job's {job_version:#010x} outside mask {mask:#010x}"
            ),
            ShareProblem::NtimeOutOfRange { ntime, min, max } => {
                write!(f, "ntime {ntime} outside [{min}, {max}]")
            }
            ShareProblem::ExtranonceLength { len, expected } => {
                write!(f, "extranonce of {len} bytes, channel expects {expected}")
            }
            ShareProblem::HashMismatch => write!(f, "recomputed hash differs from the engine's"),
        }
    }
}
