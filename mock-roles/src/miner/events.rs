//! What the device core reports: events for the driver and its user, protocol violations of the
//! upstream (each naming the spec section and requirement level, for conformance use), and why a found
//! share was not submitted.

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
    /// The upstream broke a rule of the spec; the device carried on as described in the variant.
    Violation(Violation),
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

/// A requirement level of the spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Must,
    Should,
}

/// A rule of the spec the upstream broke, as seen by a careful mining device. Each names its section
/// ([`Violation::section`]) and level ([`Violation::level`]); the text says what was seen.
#[derive(Debug, Clone, PartialEq)]
pub enum Violation {
    /// SetupConnection.Success.used_version is not 2 (the only version the device offered).
    UnofferedVersion { used_version: u16 },
    /// SetupConnection.Success set REQUIRES_FIXED_VERSION although the device set
    /// REQUIRES_VERSION_ROLLING.
    FixedVersionDespiteVersionRolling { flags: u32 },
    /// A response names a request_id the device did not use (or no longer waits for).
    UnknownRequestId {
        message: &'static str,
        request_id: u32,
    },
    /// Open*.Success of the other channel kind than the one requested.
    WrongChannelKind {
        requested: ChannelKind,
        message: &'static str,
    },
    /// The target is above the max_target the device asked for.
    TargetAboveMax {
        message: &'static str,
        target: [u8; 32],
        max_target: [u8; 32],
    },
    /// OpenExtendedMiningChannel.Success.extranonce_size is below the requested minimum.
    ExtranonceSizeBelowMinimum {
        extranonce_size: u16,
        min_extranonce_size: u16,
    },
    /// extranonce_prefix + extranonce_size exceed 32 bytes (SubmitSharesExtended.extranonce is
    /// B0_32, and the full extranonce must fit the coinbase).
    ExtranonceTooLong {
        prefix_len: usize,
        extranonce_size: usize,
    },
    /// The group id equals a channel id.
    GroupIdCollision { channel_id: u32 },
    /// A channel message for a channel id that is neither the device's channel nor its group.
    UnknownChannel {
        message: &'static str,
        channel_id: u32,
    },
    /// A channel message before any channel is open.
    NoChannel { message: &'static str },
    /// A message for the channel (or its group) after it was closed (other than answers to shares
    /// sent before).
    AfterClose {
        message: &'static str,
        channel_id: u32,
    },
    /// A message arrived before SetupConnection.Success.
    BeforeSetup { message: &'static str },
    /// NewMiningJob on an extended channel (or a group id).
    StandardJobOnExtendedChannel { channel_id: u32, job_id: u32 },
    /// NewExtendedMiningJob addressed to a standard channel, or to a group although the device set
    /// REQUIRES_STANDARD_JOBS.
    ExtendedJobForStandardJobs { channel_id: u32, job_id: u32 },
    /// SetGroupChannel although the device set REQUIRES_STANDARD_JOBS.
    GroupChannelForStandardJobs { group_channel_id: u32 },
    /// The first job after the channel opened is not a NewMiningJob with min_ntime unset.
    FirstJobNotFuture { job_id: u32 },
    /// A job_id already used by a currently valid (or pending future) job.
    JobIdReused { job_id: u32 },
    /// SetNewPrevHash names a job that was not sent as a future job.
    PrevHashForUnknownJob { job_id: u32 },
    /// A job with min_ntime set before any SetNewPrevHash (no prev_hash to mine it on).
    ActiveJobWithoutPrevHash { job_id: u32 },
    /// A job with min_ntime below the current SetNewPrevHash's min_ntime.
    JobMinNtimeBelowPrevHash {
        job_id: u32,
        min_ntime: u32,
        prev_hash_min_ntime: u32,
    },
    /// An extended job forbids version rolling although the device set REQUIRES_VERSION_ROLLING.
    VersionRollingForbidden { job_id: u32 },
    /// An extended job allows version rolling although Success set REQUIRES_FIXED_VERSION.
    VersionRollingWithFixedVersion { job_id: u32 },
    /// prefix || zero extranonce || suffix carries a BIP141 marker and flag.
    SegwitCoinbase { job_id: u32 },
    /// prefix || zero extranonce || suffix does not parse as a transaction.
    CoinbaseUnparsable { job_id: u32, error: String },
    /// prefix || zero extranonce || suffix parses, but is not a coinbase (one input, null prevout).
    NotCoinbase { job_id: u32 },
    /// SetExtranoncePrefix addressed to a group channel.
    ExtranoncePrefixForGroup { group_channel_id: u32 },
    /// SubmitShares.Success acknowledges a sequence number never sent.
    UnsentSequenceNumber {
        message: &'static str,
        sequence_number: u32,
    },
    /// SubmitShares.Error for a share that was already acknowledged or rejected.
    SequenceNumberAlreadySettled { sequence_number: u32 },
    /// SubmitShares.Success counts more new acceptances than shares were outstanding up to
    /// last_sequence_number.
    AcceptedCountTooLarge { count: u32, outstanding: usize },
    /// An error or reason code containing control characters.
    ControlCharacters {
        message: &'static str,
        code: Vec<u8>,
    },
}

impl Violation {
    /// The spec section the rule is in.
    pub fn section(&self) -> &'static str {
        use Violation::*;
        match self {
            UnofferedVersion { .. } => "3.6.1",
            FixedVersionDespiteVersionRolling { .. } => "5.3.1",
            UnknownRequestId { .. } => "5.3.3",
            WrongChannelKind { .. } => "5.3.5",
            TargetAboveMax { .. } => "5.3.2",
            ExtranonceSizeBelowMinimum { .. } | ExtranonceTooLong { .. } => "5.3.5",
            GroupIdCollision { .. } => "5.2.3",
            UnknownChannel { .. } | NoChannel { .. } => "5.2",
            AfterClose { .. } => "5.3.9",
            BeforeSetup { .. } => "3.6.1",
            StandardJobOnExtendedChannel { .. } => "5.3.15",
            ExtendedJobForStandardJobs { .. } => "5.3.16",
            GroupChannelForStandardJobs { .. } => "5.3.22",
            FirstJobNotFuture { .. } => "5.3.15",
            JobIdReused { .. } => "5.3.15",
            PrevHashForUnknownJob { .. } => "5.3.17",
            ActiveJobWithoutPrevHash { .. } | JobMinNtimeBelowPrevHash { .. } => "5.3.15",
            VersionRollingForbidden { .. } | VersionRollingWithFixedVersion { .. } => "5.3.1",
            SegwitCoinbase { .. } | CoinbaseUnparsable { .. } | NotCoinbase { .. } => "5.3.16",
            ExtranoncePrefixForGroup { .. } => "5.3.10",
            UnsentSequenceNumber { .. }
            | SequenceNumberAlreadySettled { .. }
            | AcceptedCountTooLarge { .. } => "5.3.13",
            ControlCharacters { .. } => "3.5",
        }
    }

    /// MUST or SHOULD.
    pub fn level(&self) -> Level {
        match self {
            // The spec words these as expectations rather than MUSTs.
            Violation::ActiveJobWithoutPrevHash { .. }
            | Violation::JobMinNtimeBelowPrevHash { .. }
            | Violation::UnsentSequenceNumber { .. }
            | Violation::SequenceNumberAlreadySettled { .. }
            | Violation::AcceptedCountTooLarge { .. }
            | Violation::NotCoinbase { .. }
            | Violation::CoinbaseUnparsable { .. } => Level::Should,
            _ => Level::Must,
        }
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use Violation::*;
        let hex = |t: &[u8; 32]| sv2_chain::display_hex(t);
        match self {
            UnofferedVersion { used_version } => {
                write!(f, "used_version {used_version}, but only 2 was offered")
            }
            FixedVersionDespiteVersionRolling { flags } => write!(
                f,
                "Success flags {flags:#x} set REQUIRES_FIXED_VERSION although REQUIRES_VERSION_ROLLING was requested"
            ),
            UnknownRequestId {
                message,
                request_id,
            } => write!(f, "{message} for unknown request_id {request_id}"),
            WrongChannelKind { requested, message } => {
                write!(f, "{message} answers a request for a {requested:?} channel")
            }
            TargetAboveMax {
                message,
                target,
                max_target,
            } => write!(
                f,
                "{message} target {} above max_target {}",
                hex(target),
                hex(max_target)
            ),
            ExtranonceSizeBelowMinimum {
                extranonce_size,
                min_extranonce_size,
            } => write!(
                f,
                "extranonce_size {extranonce_size} below the requested minimum {min_extranonce_size}"
            ),
            ExtranonceTooLong {
                prefix_len,
                extranonce_size,
            } => write!(
                f,
                "extranonce_prefix ({prefix_len} bytes) + extranonce_size ({extranonce_size}) exceed 32 bytes"
            ),
            GroupIdCollision { channel_id } => {
                write!(f, "group_channel_id equals channel_id {channel_id}")
            }
            UnknownChannel {
                message,
                channel_id,
            } => write!(f, "{message} for unknown channel_id {channel_id}"),
            NoChannel { message } => write!(f, "{message} before any channel is open"),
            AfterClose {
                message,
                channel_id,
            } => write!(f, "{message} for channel {channel_id} after it was closed"),
            BeforeSetup { message } => write!(f, "{message} before SetupConnection.Success"),
            StandardJobOnExtendedChannel { channel_id, job_id } => write!(
                f,
                "NewMiningJob {job_id} for channel {channel_id}, which is not a standard channel"
            ),
            ExtendedJobForStandardJobs { channel_id, job_id } => write!(
                f,
                "NewExtendedMiningJob {job_id} for channel {channel_id} although the device requires standard jobs"
            ),
            GroupChannelForStandardJobs { group_channel_id } => write!(
                f,
                "SetGroupChannel {group_channel_id} although REQUIRES_STANDARD_JOBS was set"
            ),
            FirstJobNotFuture { job_id } => write!(
                f,
                "first job {job_id} after the channel opened is not a future NewMiningJob"
            ),
            JobIdReused { job_id } => write!(f, "job_id {job_id} reused while still valid"),
            PrevHashForUnknownJob { job_id } => {
                write!(f, "SetNewPrevHash names job {job_id}, never sent as a future job")
            }
            ActiveJobWithoutPrevHash { job_id } => {
                write!(f, "job {job_id} has min_ntime set, but no SetNewPrevHash came yet")
            }
            JobMinNtimeBelowPrevHash {
                job_id,
                min_ntime,
                prev_hash_min_ntime,
            } => write!(
                f,
                "job {job_id} min_ntime {min_ntime} below SetNewPrevHash min_ntime {prev_hash_min_ntime}"
            ),
            VersionRollingForbidden { job_id } => write!(
                f,
                "job {job_id} forbids version rolling although REQUIRES_VERSION_ROLLING was set"
            ),
            VersionRollingWithFixedVersion { job_id } => write!(
                f,
                "job {job_id} allows version rolling although REQUIRES_FIXED_VERSION was set"
            ),
            SegwitCoinbase { job_id } => {
                write!(f, "job {job_id} coinbase carries the BIP141 marker and flag")
            }
            CoinbaseUnparsable { job_id, error } => {
                write!(f, "job {job_id} coinbase does not parse: {error}")
            }
            NotCoinbase { job_id } => write!(f, "job {job_id} coinbase is not a coinbase"),
            ExtranoncePrefixForGroup { group_channel_id } => write!(
                f,
                "SetExtranoncePrefix for group channel {group_channel_id}"
            ),
            UnsentSequenceNumber {
                message,
                sequence_number,
            } => write!(f, "{message} names sequence_number {sequence_number}, never sent"),
            SequenceNumberAlreadySettled { sequence_number } => write!(
                f,
                "SubmitShares.Error for sequence_number {sequence_number}, already settled"
            ),
            AcceptedCountTooLarge { count, outstanding } => write!(
                f,
                "new_submits_accepted_count {count} but only {outstanding} shares were outstanding"
            ),
            ControlCharacters { message, code } => {
                write!(f, "{message} code {} contains control characters", hex::encode(code))
            }
        }
    }
}
