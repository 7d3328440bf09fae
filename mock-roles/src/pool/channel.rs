//! Channels and group channels of one connection, and the pool-wide extranonce prefix allocator.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::Serialize;

use super::share::Batch;
use super::vardiff::VardiffState;

/// A channel's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// Header-only mining: the whole extranonce is the channel's prefix.
    Standard,
    /// The miner fills `extranonce_size` bytes after the prefix.
    Extended { extranonce_size: u16 },
}

impl ChannelKind {
    pub fn name(self) -> &'static str {
        match self {
            ChannelKind::Standard => "standard",
            ChannelKind::Extended { .. } => "extended",
        }
    }
}

/// What a channel remembers of a job it was sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ChannelJob {
    /// The target the job keeps (§5.3.21: a job received with min_ntime set keeps the target of its
    /// time; a future job follows SetTarget).
    pub pinned_target: Option<[u8; 32]>,
    /// A standard channel's merkle root for this job (computed once).
    pub merkle_root: Option<[u8; 32]>,
    /// Hashes of the shares accepted on it (duplicate detection).
    pub seen: HashSet<[u8; 32]>,
    /// The channel's extranonce_prefix when the job was sent: a SetExtranoncePrefix applies to
    /// the jobs sent after it (§5.3.10).
    pub extranonce_prefix: Vec<u8>,
}

/// An open standard or extended channel.
#[derive(Debug, Clone)]
pub(crate) struct Channel {
    pub id: u32,
    pub kind: ChannelKind,
    pub user_identity: String,
    pub extranonce_prefix: Vec<u8>,
    /// When `extranonce_prefix` was assigned (unix seconds).
    pub prefix_since: u32,
    pub target: [u8; 32],
    pub max_target: [u8; 32],
    pub nominal_hash_rate: f32,
    pub group: u32,
    pub jobs: BTreeMap<u32, ChannelJob>,
    pub batch: Batch,
    pub vardiff: VardiffState,
    pub accepted: u64,
    pub rejected: u64,
    pub blocks: u64,
}

impl Channel {
    pub fn info(&self) -> ChannelInfo {
        ChannelInfo {
            channel_id: self.id,
            kind: self.kind,
            group_channel_id: self.group,
            user_identity: self.user_identity.clone(),
            extranonce_prefix: hex::encode(&self.extranonce_prefix),
            target: hex::encode(self.target),
            max_target: hex::encode(self.max_target),
            nominal_hash_rate: self.nominal_hash_rate,
            jobs: self.jobs.keys().copied().collect(),
            shares_accepted: self.accepted,
            shares_rejected: self.rejected,
            blocks_found: self.blocks,
        }
    }
}

/// A group channel: the channels it addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Group {
    pub members: BTreeSet<u32>,
}

/// A snapshot of a channel, for reports and tests. Byte fields are hex (targets little-endian, as
/// SV2's U256).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChannelInfo {
    pub channel_id: u32,
    pub kind: ChannelKind,
    pub group_channel_id: u32,
    pub user_identity: String,
    pub extranonce_prefix: String,
    pub target: String,
    pub max_target: String,
    pub nominal_hash_rate: f32,
    /// Ids of the jobs it may submit to (current and recent).
    pub jobs: Vec<u32>,
    pub shares_accepted: u64,
    pub shares_rejected: u64,
    pub blocks_found: u64,
}

/// Hands out extranonce prefixes that are unique across the whole pool: a counter written big-endian
/// in `prefix_len` bytes, never reused. A standard channel's prefix is padded with zeros to the full
/// extranonce length (it mines with no extranonce of its own).
#[derive(Debug, Clone)]
pub(crate) struct ExtranonceAllocator {
    prefix_len: usize,
    next: u128,
}

impl ExtranonceAllocator {
    pub fn new(prefix_len: usize) -> Self {
        Self {
            prefix_len,
            next: 1,
        }
    }

    /// The next prefix, padded with zeros to `total_len`; None when the counter space is used up.
    pub fn allocate(&mut self, total_len: usize) -> Option<Vec<u8>> {
        let capacity = 1u128
            .checked_shl(8 * self.prefix_len as u32)
            .unwrap_or(u128::MAX);
        if self.next >= capacity {
            return None;
        }
        let value = self.next;
        self.next += 1;
        let be = value.to_be_bytes();
        let mut prefix = be[16 - self.prefix_len.min(16)..].to_vec();
        // Prefixes longer than 16 bytes: leading zeros.
        while prefix.len() < self.prefix_len {
            prefix.insert(0, 0);
        }
        prefix.resize(total_len.max(self.prefix_len), 0);
        Some(prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_unique_and_run_out() {
        let mut a = ExtranonceAllocator::new(1);
        let all: Vec<Vec<u8>> = std::iter::from_fn(|| a.allocate(3)).collect();
        assert_eq!(all.len(), 255);
        assert_eq!(all[0], [1, 0, 0]);
        assert_eq!(all[254], [255, 0, 0]);
        let mut b = ExtranonceAllocator::new(4);
        assert_eq!(b.allocate(4).unwrap(), [0, 0, 0, 1]);
        assert_eq!(b.allocate(6).unwrap(), [0, 0, 0, 2, 0, 0]);
        let mut c = ExtranonceAllocator::new(20);
        assert_eq!(c.allocate(20).unwrap().len(), 20);
    }
}
