//! The client's view of work, written once: channels, groups, jobs, prev hashes, targets and
//! extranonces as a Mining-protocol server hands them out, turned into the engine's job
//! ([`Work::engine_job`]), a header and its merkle root ([`JobBody::merkle_root`], assembled by
//! `sv2_chain::merkle::coinbase_merkle_root`), and the SubmitShares message of a share
//! ([`Work::submit`]).
//!
//! The SV2 device (`miner/`) keeps its jobs as [`JobData`]; the probe and the conformance suite follow
//! a whole connection with a [`Tracker`] and mine on its [`Work`], with the engine's threads
//! (`miner::runner::EngineRunner`) or a bounded search here ([`Work::find`]), valid or broken on
//! purpose.

use std::collections::BTreeMap;

use sv2_chain::merkle::coinbase_merkle_root;
use sv2_chain::target::{hashes_per_share, meets_target};
use sv2_codec::messages::mining::{
    NewExtendedMiningJob, NewMiningJob, SetNewPrevHash, SubmitSharesExtended, SubmitSharesStandard,
};
use sv2_codec::types::B0_32;
use sv2_codec::Message;
use sv2_engine::{
    BlockHeader, Candidates, CoinbaseParts, Hasher, Job, MerkleSource, PreparedHeader, Target,
};

/// An open channel, as the server described it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelState {
    pub id: u32,
    pub extended: bool,
    /// The current share target (little-endian).
    pub target: [u8; 32],
    pub extranonce_prefix: Vec<u8>,
    /// Bytes the client rolls (0 on standard channels).
    pub extranonce_size: usize,
    /// 0 when not in a group.
    pub group: u32,
}

/// How a job commits to its transactions.
#[derive(Debug, Clone, PartialEq)]
pub enum JobBody {
    /// NewMiningJob: the merkle root is given.
    Standard { merkle_root: [u8; 32] },
    /// NewExtendedMiningJob: the coinbase parts and the path.
    Extended {
        prefix: Vec<u8>,
        suffix: Vec<u8>,
        path: Vec<[u8; 32]>,
        version_rolling_allowed: bool,
    },
}

impl JobBody {
    /// Whether the job lets the version be rolled (always, for a standard job: §5.3.15 gives no
    /// flag, and BIP320 bits are the miner's).
    pub fn version_rolling_allowed(&self) -> bool {
        match self {
            JobBody::Standard { .. } => true,
            JobBody::Extended {
                version_rolling_allowed,
                ..
            } => *version_rolling_allowed,
        }
    }

    /// The merkle root for a channel's `extranonce_prefix` and a client `extranonce` (both ignored
    /// by a standard job, whose root is given).
    pub fn merkle_root(&self, extranonce_prefix: &[u8], extranonce: &[u8]) -> [u8; 32] {
        match self {
            JobBody::Standard { merkle_root } => *merkle_root,
            JobBody::Extended {
                prefix,
                suffix,
                path,
                ..
            } => coinbase_merkle_root(prefix, extranonce_prefix, extranonce, suffix, path),
        }
    }

    /// The serialized coinbase `prefix || extranonce_prefix || extranonce || suffix` of an extended
    /// job (as SV2 carries it: stripped of BIP141 data); None for a standard job.
    pub fn coinbase(&self, extranonce_prefix: &[u8], extranonce: &[u8]) -> Option<Vec<u8>> {
        let JobBody::Extended { prefix, suffix, .. } = self else {
            return None;
        };
        let mut coinbase = Vec::with_capacity(
            prefix.len() + extranonce_prefix.len() + extranonce.len() + suffix.len(),
        );
        coinbase.extend_from_slice(prefix);
        coinbase.extend_from_slice(extranonce_prefix);
        coinbase.extend_from_slice(extranonce);
        coinbase.extend_from_slice(suffix);
        Some(coinbase)
    }

    /// Where the engine takes the merkle root from: the given root, or the coinbase rebuilt for
    /// each extranonce (`extranonce_len` bytes, counting from `extranonce_start`).
    pub fn merkle_source(
        &self,
        extranonce_prefix: &[u8],
        extranonce_len: usize,
        extranonce_start: u64,
    ) -> MerkleSource {
        match self {
            JobBody::Standard { merkle_root } => MerkleSource::Root(*merkle_root),
            JobBody::Extended {
                prefix,
                suffix,
                path,
                ..
            } => MerkleSource::Coinbase(CoinbaseParts {
                prefix: prefix.clone(),
                extranonce_prefix: extranonce_prefix.to_vec(),
                extranonce_len,
                extranonce_start,
                suffix: suffix.clone(),
                merkle_path: path.clone(),
            }),
        }
    }
}

/// A job as received.
#[derive(Debug, Clone, PartialEq)]
pub struct JobData {
    pub id: u32,
    pub version: u32,
    /// None: a future job, mined once a SetNewPrevHash names it.
    pub min_ntime: Option<u32>,
    pub body: JobBody,
}

impl JobData {
    /// The job a NewMiningJob or NewExtendedMiningJob carries, with the channel (or group) id it is
    /// addressed to; None for any other message.
    pub fn from_message(message: &Message<'_>) -> Option<(u32, JobData)> {
        match message {
            Message::NewMiningJob(m) => Some((m.channel_id, JobData::standard(m))),
            Message::NewExtendedMiningJob(m) => Some((m.channel_id, JobData::extended(m))),
            _ => None,
        }
    }

    /// The job of a NewMiningJob.
    pub fn standard(m: &NewMiningJob) -> JobData {
        JobData {
            id: m.job_id,
            version: m.version,
            min_ntime: m.min_ntime,
            body: JobBody::Standard {
                merkle_root: m.merkle_root.0,
            },
        }
    }

    /// The job of a NewExtendedMiningJob.
    pub fn extended(m: &NewExtendedMiningJob<'_>) -> JobData {
        JobData {
            id: m.job_id,
            version: m.version,
            min_ntime: m.min_ntime,
            body: JobBody::Extended {
                prefix: m.coinbase_tx_prefix.as_bytes().to_vec(),
                suffix: m.coinbase_tx_suffix.as_bytes().to_vec(),
                path: m.merkle_path.iter().map(|h| h.0).collect(),
                version_rolling_allowed: m.version_rolling_allowed,
            },
        }
    }
}

/// The prev hash a job was activated with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrevHash {
    pub job_id: u32,
    pub prev_hash: [u8; 32],
    pub min_ntime: u32,
    pub nbits: u32,
}

impl From<&SetNewPrevHash> for PrevHash {
    fn from(m: &SetNewPrevHash) -> PrevHash {
        PrevHash {
            job_id: m.job_id,
            prev_hash: m.prev_hash.0,
            min_ntime: m.min_ntime,
            nbits: m.nbits,
        }
    }
}

/// What a client knows on one connection: fed every message it sent ([`Tracker::sent`]) and received
/// ([`Tracker::received`]).
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    pub channels: BTreeMap<u32, ChannelState>,
    /// Jobs per addressed id (a channel or a group), oldest first; cut back to the last 64.
    pub jobs: BTreeMap<u32, Vec<JobData>>,
    /// The current prev hash per addressed id.
    pub prev: BTreeMap<u32, PrevHash>,
    /// The job currently mined per addressed id, with the order it became so (the latest wins
    /// between a channel and its group).
    active: BTreeMap<u32, (u32, u64)>,
    activations: u64,
    /// Shares sent and their answers, per channel id.
    pub shares: BTreeMap<u32, ShareLedger>,
}

/// What became of a share, as far as the answers so far tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShareStatus {
    /// Not answered yet (or never sent).
    Pending,
    /// Covered by SubmitShares.Success counts.
    Accepted,
    /// SubmitShares.Error for its sequence_number, with the error code.
    Rejected(String),
}

/// The shares of one channel and their answers. A share counts as accepted once a Success with
/// `last_sequence_number` at or after it has come and the accepted counts so far cover every share up
/// to it that was not rejected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShareLedger {
    /// Sequence numbers sent, in order.
    pub sent: Vec<u32>,
    /// Errors by sequence_number (code, lossy text).
    pub rejected: BTreeMap<u32, String>,
    /// Sum of new_submits_accepted_count over the Successes.
    pub accepted_count: u64,
    /// Successes received.
    pub successes: u32,
    /// The highest last_sequence_number acknowledged.
    pub last_acknowledged: Option<u32>,
}

impl ShareLedger {
    /// The status of the share sent with `sequence_number`.
    pub fn status(&self, sequence_number: u32) -> ShareStatus {
        if let Some(code) = self.rejected.get(&sequence_number) {
            return ShareStatus::Rejected(code.clone());
        }
        let Some(pos) = self.sent.iter().position(|s| *s == sequence_number) else {
            return ShareStatus::Pending;
        };
        let covered = self.last_acknowledged.is_some_and(|l| l >= sequence_number);
        let needed = self.sent[..=pos]
            .iter()
            .filter(|s| !self.rejected.contains_key(s))
            .count() as u64;
        if covered && self.accepted_count >= needed {
            ShareStatus::Accepted
        } else {
            ShareStatus::Pending
        }
    }

    /// Shares sent and not rejected.
    pub fn not_rejected(&self) -> u64 {
        self.sent
            .iter()
            .filter(|s| !self.rejected.contains_key(s))
            .count() as u64
    }
}

impl Tracker {
    /// Notes a message this side sent.
    pub fn sent(&mut self, message: &Message<'_>) {
        match message {
            Message::CloseChannel(m) => {
                self.channels.remove(&m.channel_id);
            }
            Message::SubmitSharesStandard(m) => self.sent_share(m.channel_id, m.sequence_number),
            Message::SubmitSharesExtended(m) => self.sent_share(m.channel_id, m.sequence_number),
            _ => {}
        }
    }

    /// Notes a share sent (for frames built by hand; [`Tracker::sent`] does it for messages).
    pub fn sent_share(&mut self, channel_id: u32, sequence_number: u32) {
        self.shares
            .entry(channel_id)
            .or_default()
            .sent
            .push(sequence_number);
    }

    /// What became of a share so far.
    pub fn share_status(&self, channel_id: u32, sequence_number: u32) -> ShareStatus {
        self.shares
            .get(&channel_id)
            .map_or(ShareStatus::Pending, |l| l.status(sequence_number))
    }

    /// Notes a message the server sent.
    pub fn received(&mut self, message: &Message<'_>) {
        match message {
            Message::OpenStandardMiningChannelSuccess(m) => self.opened(ChannelState {
                id: m.channel_id,
                extended: false,
                target: m.target.0,
                extranonce_prefix: m.extranonce_prefix.as_bytes().to_vec(),
                extranonce_size: 0,
                group: m.group_channel_id,
            }),
            Message::OpenExtendedMiningChannelSuccess(m) => self.opened(ChannelState {
                id: m.channel_id,
                extended: true,
                target: m.target.0,
                extranonce_prefix: m.extranonce_prefix.as_bytes().to_vec(),
                extranonce_size: usize::from(m.extranonce_size),
                group: m.group_channel_id,
            }),
            Message::SetGroupChannel(m) => {
                for id in m.channel_ids.iter() {
                    if let Some(c) = self.channels.get_mut(id) {
                        c.group = m.group_channel_id;
                    }
                }
            }
            Message::SubmitSharesSuccess(m) => {
                let ledger = self.shares.entry(m.channel_id).or_default();
                ledger.successes += 1;
                ledger.accepted_count += u64::from(m.new_submits_accepted_count);
                ledger.last_acknowledged = Some(
                    ledger
                        .last_acknowledged
                        .map_or(m.last_sequence_number, |l| l.max(m.last_sequence_number)),
                );
            }
            Message::SubmitSharesError(m) => {
                self.shares
                    .entry(m.channel_id)
                    .or_default()
                    .rejected
                    .insert(
                        m.sequence_number,
                        String::from_utf8_lossy(m.error_code.as_bytes())
                            .escape_debug()
                            .to_string(),
                    );
            }
            Message::SetTarget(m) => {
                if let Some(c) = self.channels.get_mut(&m.channel_id) {
                    c.target = m.maximum_target.0;
                }
            }
            Message::SetExtranoncePrefix(m) => {
                if let Some(c) = self.channels.get_mut(&m.channel_id) {
                    c.extranonce_prefix = m.extranonce_prefix.as_bytes().to_vec();
                }
            }
            Message::NewMiningJob(_) | Message::NewExtendedMiningJob(_) => {
                if let Some((addressed, job)) = JobData::from_message(message) {
                    self.job(addressed, job);
                }
            }
            Message::SetNewPrevHash(m) => {
                self.prev.insert(m.channel_id, PrevHash::from(m));
                self.activate(m.channel_id, m.job_id);
            }
            _ => {}
        }
    }

    fn opened(&mut self, channel: ChannelState) {
        self.channels.insert(channel.id, channel);
    }

    fn job(&mut self, addressed: u32, job: JobData) {
        let active = job.min_ntime.is_some();
        let id = job.id;
        let jobs = self.jobs.entry(addressed).or_default();
        jobs.push(job);
        if jobs.len() > 64 {
            jobs.remove(0);
        }
        if active {
            self.activate(addressed, id);
        }
    }

    fn activate(&mut self, addressed: u32, job_id: u32) {
        self.activations += 1;
        self.active.insert(addressed, (job_id, self.activations));
    }

    /// The work a share on `channel_id` can be mined on now: the latest activated job addressed to the
    /// channel or its group, with the prev hash in force there.
    pub fn work(&self, channel_id: u32) -> Option<Work> {
        let channel = self.channels.get(&channel_id)?;
        let mut scopes = vec![channel_id];
        if channel.group != 0 && channel.group != channel_id {
            scopes.push(channel.group);
        }
        let (scope, (job_id, _)) = scopes
            .iter()
            .filter_map(|s| self.active.get(s).map(|a| (*s, *a)))
            .max_by_key(|(_, (_, order))| *order)?;
        let job = self
            .jobs
            .get(&scope)?
            .iter()
            .rev()
            .find(|j| j.id == job_id)?;
        let prev = self
            .prev
            .get(&scope)
            .or_else(|| scopes.iter().find_map(|s| self.prev.get(s)))?;
        Some(Work {
            channel: channel.clone(),
            job: job.clone(),
            prev: *prev,
        })
    }
}

/// Everything needed to mine a share on a channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Work {
    pub channel: ChannelState,
    pub job: JobData,
    pub prev: PrevHash,
}

/// The free parameters of a share. [`Work::params`] gives valid ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareParams {
    pub ntime: u32,
    pub version: u32,
    /// The client's part of the extranonce (empty on standard channels).
    pub extranonce: Vec<u8>,
    /// Where the nonce search starts (shares from different starts differ).
    pub start_nonce: u32,
}

/// A share found (or deliberately missed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub params: ShareParams,
    pub nonce: u32,
    /// sha256d of the header, internal byte order.
    pub hash: [u8; 32],
}

impl Work {
    /// Valid parameters: the earliest allowed ntime, the job's version, a zero extranonce of the
    /// channel's size.
    pub fn params(&self) -> ShareParams {
        ShareParams {
            ntime: self.prev.min_ntime.max(self.job.min_ntime.unwrap_or(0)),
            version: self.job.version,
            extranonce: vec![0; self.channel.extranonce_size],
            start_nonce: 0,
        }
    }

    /// Whether the job lets the version be rolled.
    pub fn version_rolling_allowed(&self) -> bool {
        self.job.body.version_rolling_allowed()
    }

    /// The merkle root for a client extranonce.
    pub fn merkle_root(&self, extranonce: &[u8]) -> [u8; 32] {
        self.job
            .body
            .merkle_root(&self.channel.extranonce_prefix, extranonce)
    }

    /// The coinbase with a client extranonce (None for a standard job).
    pub fn coinbase(&self, extranonce: &[u8]) -> Option<Vec<u8>> {
        self.job
            .body
            .coinbase(&self.channel.extranonce_prefix, extranonce)
    }

    /// The engine's job for this work at the channel's target: the earliest allowed ntime, the
    /// version rolled only where the job allows it, the extranonce counted from `extranonce_start`.
    /// `id` comes back in every share the engine finds.
    pub fn engine_job(&self, id: u64, extranonce_start: u64) -> Job {
        let params = self.params();
        let mut job = Job::new(
            id,
            params.version,
            self.prev.prev_hash,
            self.job.body.merkle_source(
                &self.channel.extranonce_prefix,
                self.channel.extranonce_size,
                extranonce_start,
            ),
            params.ntime,
            self.prev.nbits,
            Target(self.channel.target),
        );
        if !self.version_rolling_allowed() {
            job.version_mask = 0;
        }
        job
    }

    fn header(&self, params: &ShareParams) -> BlockHeader {
        BlockHeader {
            version: params.version,
            prev_hash: self.prev.prev_hash,
            merkle_root: self.merkle_root(&params.extranonce),
            ntime: params.ntime,
            nbits: self.prev.nbits,
            nonce: 0,
        }
    }

    /// Whether a header hash also meets the block target (the job's nbits): such a share is a block,
    /// which a server may take whatever its share rules, and after which the work moves on.
    pub fn is_block(&self, hash: &[u8; 32]) -> bool {
        sv2_chain::target::compact_to_target(self.prev.nbits).is_ok_and(|t| meets_target(hash, &t))
    }

    /// Expected hashes for one share at the channel's target.
    pub fn expected_hashes(&self) -> f64 {
        hashes_per_share(&self.channel.target)
    }

    /// Searches nonces from `params.start_nonce` for a hash meeting `target` (the channel's when
    /// None), spending at most `budget` hashes. Blocking: call from `spawn_blocking`.
    pub fn find(
        &self,
        params: &ShareParams,
        target: Option<[u8; 32]>,
        budget: u64,
    ) -> Option<Found> {
        let target = Target(target.unwrap_or(self.channel.target));
        let prepared = PreparedHeader::new(&self.header(params), &target);
        let hasher = Hasher::detect();
        let mut candidates = Candidates::new();
        let mut start = params.start_nonce;
        let mut spent = 0u64;
        // Small rounds first: easy targets are met within a few thousand nonces, and a scan only
        // returns at the end of its round.
        let mut round = 1u64 << 12;
        while spent < budget {
            let room = (1u64 << 32) - u64::from(start);
            let count = room.min(round).min(budget - spent) as u32;
            round = (round * 2).min(1 << 22);
            if count == 0 {
                return None;
            }
            candidates.clear();
            let done = hasher.scan(&prepared, start, count, &mut candidates);
            for c in candidates.as_slice() {
                if let Some(hash) = prepared.check(c.nonce) {
                    return Some(Found {
                        params: params.clone(),
                        nonce: c.nonce,
                        hash,
                    });
                }
            }
            spent += u64::from(done.max(1));
            match start.checked_add(done) {
                Some(next) if u64::from(start) + u64::from(done) < 1 << 32 => start = next,
                _ => return None,
            }
        }
        None
    }

    /// A nonce whose hash does NOT meet the channel's target (for "above target" checks). None when
    /// the target is so easy that a thousand nonces all meet it.
    pub fn miss(&self, params: &ShareParams) -> Option<Found> {
        let header = self.header(params);
        (params.start_nonce..params.start_nonce.saturating_add(1000)).find_map(|nonce| {
            let hash = BlockHeader { nonce, ..header }.hash();
            (!meets_target(&hash, &self.channel.target)).then(|| Found {
                params: params.clone(),
                nonce,
                hash,
            })
        })
    }

    /// The SubmitShares message for a share (standard or extended, as the channel is).
    pub fn submit(&self, sequence_number: u32, share: &Found) -> Message<'static> {
        let p = &share.params;
        self.submit_share(
            sequence_number,
            share.nonce,
            p.ntime,
            p.version,
            &p.extranonce,
        )
    }

    /// The SubmitShares message for a share the engine found (`sv2_engine::Share`'s fields).
    pub fn submit_share(
        &self,
        sequence_number: u32,
        nonce: u32,
        ntime: u32,
        version: u32,
        extranonce: &[u8],
    ) -> Message<'static> {
        if self.channel.extended {
            SubmitSharesExtended {
                channel_id: self.channel.id,
                sequence_number,
                job_id: self.job.id,
                nonce,
                ntime,
                version,
                // An extranonce longer than 32 bytes cannot be sent; the engine refuses such jobs
                // (JobError::ExtranonceTooLong) before one is mined.
                extranonce: B0_32::new(extranonce.to_vec()).unwrap_or_default(),
            }
            .into()
        } else {
            SubmitSharesStandard {
                channel_id: self.channel.id,
                sequence_number,
                job_id: self.job.id,
                nonce,
                ntime,
                version,
            }
            .into()
        }
    }
}

/// [`Work::find`] on a blocking thread.
pub async fn mine(
    work: &Work,
    params: ShareParams,
    target: Option<[u8; 32]>,
    budget: u64,
) -> Option<Found> {
    let work = work.clone();
    tokio::task::spawn_blocking(move || work.find(&params, target, budget))
        .await
        .ok()
        .flatten()
}
