//! Shares: why one is refused (each reason with its SubmitShares.Error code) and the batching of
//! SubmitShares.Success.

use serde::Serialize;

/// Why a share was refused. [`ShareError::code`] is the SubmitShares.Error `error_code`.
///
/// The current spec lists no codes (§3.5: free-form, a receiver must treat unknown ones as a logging
/// no-op). Earlier versions of the spec listed `invalid-channel-id`, `stale-share`,
/// `difficulty-too-low` and `invalid-job-id` for SubmitShares.Error; those are used for those cases.
/// The others are the reference implementation's (mining_sv2's `ERROR_CODE_SUBMIT_SHARES_*`:
/// `bad-extranonce-size`, `invalid-non-rollable-version-bit`, `version-rolling-not-allowed`,
/// `duplicate-share`), and two of this toolkit's own: `invalid-ntime` (where the reference
/// implementation says the generic `invalid-share`) and `too-many-shares`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum ShareError {
    /// No open channel of this kind has this id on the connection.
    #[error("no open {kind} channel {channel_id}")]
    InvalidChannelId { channel_id: u32, kind: &'static str },
    /// The job was never sent on this channel, was forgotten, or is a future job not yet activated.
    #[error("job {job_id} is not a job of this channel")]
    InvalidJobId { job_id: u32 },
    /// The job was for an earlier prev hash (or a future job another SetNewPrevHash superseded).
    #[error("job {job_id} is stale (an older prev hash)")]
    StaleShare { job_id: u32 },
    /// SubmitSharesExtended.extranonce is not the channel's extranonce_size long.
    #[error("extranonce is {got} bytes, the channel's extranonce_size is {expected} (§5.3.12; share rule check_extranonce_size)")]
    BadExtranonceSize { expected: usize, got: usize },
    /// ntime outside `[min_ntime, min_ntime + seconds since the prev hash]` (§5.3.11), widened by
    /// the share rules' slack.
    #[error("ntime {ntime} outside the allowed {min}..={max} (§5.3.11: from the SetNewPrevHash's min_ntime to it plus the seconds since it was sent; share rules ntime_past_slack_secs and ntime_future_slack_secs widen it)")]
    InvalidNtime { ntime: u32, min: u32, max: u32 },
    /// Version bits changed outside the rolling mask.
    #[error("version {version:#010x} changes bits outside {mask:#010x} of the job's {job_version:#010x} (share rule check_version)")]
    InvalidNonRollableVersionBit {
        version: u32,
        job_version: u32,
        mask: u32,
    },
    /// The version changed at all on a job that forbids rolling.
    #[error(
        "version {version:#010x} differs from the job's {job_version:#010x}, which forbids rolling (share rule check_version)"
    )]
    VersionRollingNotAllowed { version: u32, job_version: u32 },
    /// The header hash is above the channel's target (and not a block).
    #[error("hash above the channel's target (§5.3.21; share rule check_target)")]
    DifficultyTooLow,
    /// The same header was already accepted on this channel.
    #[error("the same share was already submitted (share rule check_duplicates)")]
    DuplicateShare,
    /// With extension 0x0002 negotiated, the user_identity TLV is longer than its 32 bytes (§3.4.3:
    /// "the recipient MUST reject the message"). A code of this pool's own.
    #[error("user_identity TLV of {length} bytes, at most 32 (§3.4.3, extension 0x0002 §1.1)")]
    UserIdentityTooLong { length: usize },
    /// The channel already has `limit` accepted shares on this job, all remembered for duplicate
    /// detection ([`super::PoolConfig::max_shares_per_job`]): the pool's memory stays bounded however
    /// cheap shares are at the channel's target. A code of this pool's own.
    #[error("{limit} shares already accepted on job {job_id} of this channel")]
    TooManyShares { job_id: u32, limit: usize },
}

impl ShareError {
    /// The SubmitShares.Error `error_code`.
    pub fn code(&self) -> &'static str {
        match self {
            ShareError::InvalidChannelId { .. } => "invalid-channel-id",
            ShareError::InvalidJobId { .. } => "invalid-job-id",
            ShareError::StaleShare { .. } => "stale-share",
            ShareError::BadExtranonceSize { .. } => "bad-extranonce-size",
            ShareError::InvalidNtime { .. } => "invalid-ntime",
            ShareError::InvalidNonRollableVersionBit { .. } => "invalid-non-rollable-version-bit",
            ShareError::VersionRollingNotAllowed { .. } => "version-rolling-not-allowed",
            ShareError::DifficultyTooLow => "difficulty-too-low",
            ShareError::DuplicateShare => "duplicate-share",
            ShareError::TooManyShares { .. } => "too-many-shares",
            ShareError::UserIdentityTooLong { .. } => "user-identity-too-long",
        }
    }
}

/// Every SubmitShares.Error code the pool sends.
pub const SHARE_ERROR_CODES: [&str; 11] = [
    "invalid-channel-id",
    "invalid-job-id",
    "stale-share",
    "bad-extranonce-size",
    "invalid-ntime",
    "invalid-non-rollable-version-bit",
    "version-rolling-not-allowed",
    "difficulty-too-low",
    "duplicate-share",
    "too-many-shares",
    "user-identity-too-long",
];

/// The accepted shares of a channel not yet acknowledged (§5.3.13: counters reset per batch).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    /// Shares accepted in the batch.
    pub count: u32,
    /// Sum of their difficulties.
    pub difficulty_sum: f64,
    /// The sequence number of the last one.
    pub last_sequence_number: u32,
    /// When the batch's first share came.
    pub started: u32,
}

/// What one SubmitShares.Success carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acknowledgement {
    pub last_sequence_number: u32,
    pub new_submits_accepted_count: u32,
    /// The batch's difficulty sum, truncated to an integer (the field is a U64).
    pub new_shares_sum: u64,
}

impl Batch {
    /// Adds an accepted share of `difficulty` at `now`.
    pub fn add(&mut self, sequence_number: u32, difficulty: f64, now: u32) {
        if self.count == 0 {
            self.started = now;
            self.difficulty_sum = 0.0;
        }
        self.count = self.count.saturating_add(1);
        if difficulty.is_finite() && difficulty > 0.0 {
            self.difficulty_sum += difficulty;
        }
        self.last_sequence_number = sequence_number;
    }

    /// Closes the batch when it holds `every` shares, or when it is `delay` seconds old at `now`
    /// (`force`: whenever it holds any).
    pub fn take(
        &mut self,
        every: u32,
        delay: u32,
        now: u32,
        force: bool,
    ) -> Option<Acknowledgement> {
        if self.count == 0 {
            return None;
        }
        let due = force || self.count >= every.max(1) || now.saturating_sub(self.started) >= delay;
        if !due {
            return None;
        }
        let ack = Acknowledgement {
            last_sequence_number: self.last_sequence_number,
            new_submits_accepted_count: self.count,
            // f64 -> u64 saturates and maps NaN to 0.
            new_shares_sum: self.difficulty_sum as u64,
        };
        *self = Batch::default();
        Some(ack)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_close_on_count_or_age_and_reset() {
        let mut b = Batch::default();
        assert_eq!(b.take(3, 5, 0, true), None);
        b.add(7, 1.5, 100);
        b.add(8, 2.0, 101);
        assert_eq!(b.take(3, 5, 102, false), None);
        b.add(9, 3.0, 102);
        assert_eq!(
            b.take(3, 5, 102, false),
            Some(Acknowledgement {
                last_sequence_number: 9,
                new_submits_accepted_count: 3,
                new_shares_sum: 6,
            })
        );
        assert_eq!(b, Batch::default());
        b.add(10, 0.4, 200);
        assert_eq!(b.take(3, 5, 204, false), None);
        let ack = b.take(3, 5, 205, false).unwrap();
        assert_eq!(ack.new_submits_accepted_count, 1);
        // Difficulties below 1 sum to 0 in the integer field; absurd ones are ignored.
        assert_eq!(ack.new_shares_sum, 0);
        b.add(11, f64::INFINITY, 300);
        b.add(12, 1e30, 300);
        assert_eq!(b.take(3, 5, 300, true).unwrap().new_shares_sum, u64::MAX);
    }

    #[test]
    fn codes_are_distinct_and_printable() {
        let mut codes = SHARE_ERROR_CODES.to_vec();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), SHARE_ERROR_CODES.len());
        assert!(SHARE_ERROR_CODES
            .iter()
            .all(|c| c.bytes().all(|b| b.is_ascii_graphic())));
        assert_eq!(ShareError::DuplicateShare.code(), "duplicate-share");
    }
}
