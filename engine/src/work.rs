//! Jobs, their search space, and the mining threads.
//!
//! The search space of a [`Job`] is, from the fastest-moving dimension outwards: the nonce (the
//! job's nonce range, split into one slice per thread), the version bits inside the rolling mask,
//! the extranonce (extended jobs), then ntime (within the job's allowance). A [`JobCursor`] walks one
//! thread's part of it in that order, one [`Template`] (everything but the nonce) at a time, or a
//! group of templates that differ only in their version (scanned together, see
//! [`super::Hasher::scan_group`]); threads never overlap because each owns its nonce slice of every
//! template.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use super::header::{BlockHeader, PreparedHeader, Target};
use super::{Backend, Candidates, Hasher, Unsupported, MAX_GROUP};
use sv2_chain::merkle::coinbase_merkle_root;

/// BIP323's general-purpose version bits (5..=28), the 24 bits the spec lets a miner roll (§5 intro;
/// SRI's translator grants the same mask, 1fffffe0): what a miner may roll when the job allows rolling
/// and does not say otherwise. BIP320's older 16-bit mask (0x1fffe000) is a subset.
pub const BIP323_VERSION_MASK: u32 = 0x1fff_ffe0;

/// An extranonce of up to 32 bytes (SV2's limit), stored inline so that shares are `Copy` and
/// reporting one does not allocate.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Extranonce {
    len: u8,
    bytes: [u8; Extranonce::MAX_LEN],
}

impl Extranonce {
    pub const MAX_LEN: usize = 32;

    /// The empty extranonce (standard jobs).
    pub const EMPTY: Extranonce = Extranonce {
        len: 0,
        bytes: [0; Extranonce::MAX_LEN],
    };

    /// `None` when longer than 32 bytes.
    pub fn new(bytes: &[u8]) -> Option<Extranonce> {
        let mut e = Extranonce::EMPTY;
        e.bytes.get_mut(..bytes.len())?.copy_from_slice(bytes);
        e.len = bytes.len() as u8;
        Some(e)
    }

    /// `len` bytes holding `counter` big-endian (its low bytes when `len < 8`, zero-padded on the
    /// left when `len > 8`); `len` is capped at 32 (a valid job never asks for more).
    fn from_counter(len: usize, counter: u64) -> Extranonce {
        let len = len.min(Extranonce::MAX_LEN);
        let mut e = Extranonce {
            len: len as u8,
            ..Extranonce::EMPTY
        };
        let be = counter.to_be_bytes();
        let n = len.min(8);
        e.bytes[len - n..len].copy_from_slice(&be[8 - n..]);
        e
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl std::fmt::Debug for Extranonce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Extranonce(")?;
        for b in self.as_slice() {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// The coinbase of an extended job: `prefix || extranonce_prefix || extranonce || suffix`, and the
/// merkle path from it to the root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoinbaseParts {
    /// `coinbase_tx_prefix` of NewExtendedMiningJob.
    pub prefix: Vec<u8>,
    /// The channel's `extranonce_prefix` (from OpenExtendedMiningChannel.Success or SetExtranonce).
    pub extranonce_prefix: Vec<u8>,
    /// How many extranonce bytes this miner fills (the channel's `extranonce_size`).
    pub extranonce_len: usize,
    /// The first extranonce counter value (the extranonce is the counter big-endian); lets several
    /// miners on one channel start apart.
    pub extranonce_start: u64,
    /// `coinbase_tx_suffix`.
    pub suffix: Vec<u8>,
    /// `merkle_path`, internal byte order, bottom up.
    pub merkle_path: Vec<[u8; 32]>,
}

impl CoinbaseParts {
    /// The merkle root with this miner's `extranonce` (its `extranonce_len` bytes).
    pub fn merkle_root(&self, extranonce: &[u8]) -> [u8; 32] {
        coinbase_merkle_root(
            &self.prefix,
            &self.extranonce_prefix,
            extranonce,
            &self.suffix,
            &self.merkle_path,
        )
    }
}

/// Where a job's merkle root comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MerkleSource {
    /// Given (standard jobs: NewMiningJob.merkle_root).
    Root([u8; 32]),
    /// Built per extranonce (extended jobs).
    Coinbase(CoinbaseParts),
}

/// A job as plain data: what SV2's NewMiningJob / NewExtendedMiningJob plus SetNewPrevHash and the
/// channel's target say, without the message types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    /// The caller's id, copied into every [`Share`] (e.g. the SV2 job_id).
    pub id: u64,
    pub version: u32,
    /// Version bits the miner may change (`0`: none). [`Job::new`] sets [`BIP323_VERSION_MASK`];
    /// set the pool's mask when it negotiated one, or `0` when the job forbids rolling.
    pub version_mask: u32,
    /// Header byte order (as SV2's U256 carries it).
    pub prev_hash: [u8; 32],
    pub merkle: MerkleSource,
    pub ntime: u32,
    /// How many seconds past `ntime` the miner may use (`0`: ntime is fixed).
    pub ntime_roll: u32,
    pub nbits: u32,
    /// Share target: a hash meets it when, read little-endian, it is at most the target.
    pub target: Target,
    /// First nonce to try.
    pub nonce_start: u32,
    /// Last nonce to try (inclusive); after it the next version/extranonce/ntime comes.
    pub nonce_end: u32,
}

/// Why a [`Job`] cannot be mined.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    #[error("nonce range is empty: start {start:#x} > end {end:#x}")]
    EmptyNonceRange { start: u32, end: u32 },
    #[error("extranonce_prefix ({prefix} bytes) + extranonce ({len} bytes) exceed 32 bytes")]
    ExtranonceTooLong { prefix: usize, len: usize },
}

impl Job {
    /// A job with a given merkle root, rolling BIP320 version bits, fixed ntime, all nonces.
    pub fn new(
        id: u64,
        version: u32,
        prev_hash: [u8; 32],
        merkle: MerkleSource,
        ntime: u32,
        nbits: u32,
        target: Target,
    ) -> Job {
        Job {
            id,
            version,
            version_mask: BIP323_VERSION_MASK,
            prev_hash,
            merkle,
            ntime,
            ntime_roll: 0,
            nbits,
            target,
            nonce_start: 0,
            nonce_end: u32::MAX,
        }
    }

    pub fn validate(&self) -> Result<(), JobError> {
        if self.nonce_start > self.nonce_end {
            return Err(JobError::EmptyNonceRange {
                start: self.nonce_start,
                end: self.nonce_end,
            });
        }
        if let MerkleSource::Coinbase(cb) = &self.merkle {
            if cb.extranonce_prefix.len() + cb.extranonce_len > Extranonce::MAX_LEN {
                return Err(JobError::ExtranonceTooLong {
                    prefix: cb.extranonce_prefix.len(),
                    len: cb.extranonce_len,
                });
            }
        }
        Ok(())
    }

    /// Number of distinct versions: `2^(bits in the mask)`.
    pub fn version_count(&self) -> u64 {
        1u64 << self.version_mask.count_ones()
    }

    /// The version for rolling index `i < version_count()`: the job's version with the mask bits
    /// flipped by the bits of `i` (index 0 is the job's own version; bits outside the mask never
    /// change).
    pub fn rolled_version(&self, i: u64) -> u32 {
        self.version ^ deposit(i, self.version_mask)
    }

    /// Number of distinct ntimes: `ntime..=ntime + ntime_roll`, capped at `u32::MAX`.
    pub fn ntime_count(&self) -> u64 {
        u64::from(self.ntime_roll.min(u32::MAX - self.ntime)) + 1
    }

    /// Number of distinct extranonces (`256^len`, capped at `2^64 - 1`); 1 for standard jobs.
    pub fn extranonce_count(&self) -> u64 {
        match &self.merkle {
            MerkleSource::Root(_) => 1,
            MerkleSource::Coinbase(cb) if cb.extranonce_len >= 8 => u64::MAX,
            MerkleSource::Coinbase(cb) => 1u64 << (8 * cb.extranonce_len),
        }
    }

    /// The template at the given indices (each below its count).
    pub fn template(
        &self,
        version_index: u64,
        extranonce_index: u64,
        ntime_index: u64,
    ) -> Template {
        let (extranonce, merkle_root) = match &self.merkle {
            MerkleSource::Root(root) => (Extranonce::EMPTY, *root),
            MerkleSource::Coinbase(cb) => {
                let e = Extranonce::from_counter(
                    cb.extranonce_len,
                    cb.extranonce_start.wrapping_add(extranonce_index),
                );
                let root = cb.merkle_root(e.as_slice());
                (e, root)
            }
        };
        Template {
            version: self.rolled_version(version_index),
            ntime: self.ntime + ntime_index as u32,
            extranonce,
            merkle_root,
        }
    }

    /// The header of `template` with `nonce`.
    pub fn header(&self, template: &Template, nonce: u32) -> BlockHeader {
        BlockHeader {
            version: template.version,
            prev_hash: self.prev_hash,
            merkle_root: template.merkle_root,
            ntime: template.ntime,
            nbits: self.nbits,
            nonce,
        }
    }
}

/// Scatters the low bits of `value` into the set bits of `mask`, lowest first (what BMI2's `pdep`
/// does).
fn deposit(mut value: u64, mask: u32) -> u32 {
    let mut out = 0u32;
    let mut m = mask;
    while m != 0 && value != 0 {
        let lowest = m & m.wrapping_neg();
        if value & 1 == 1 {
            out |= lowest;
        }
        value >>= 1;
        m &= m - 1;
    }
    out
}

/// Everything of a header but the nonce, for one point of a job's search space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Template {
    pub version: u32,
    pub ntime: u32,
    /// The miner's extranonce (empty for standard jobs).
    pub extranonce: Extranonce,
    pub merkle_root: [u8; 32],
}

/// Walks one slice of a job's search space: every template, in order (version fastest, then
/// extranonce, then ntime), each with the slice's nonce range.
#[derive(Debug, Clone)]
pub struct JobCursor<'j> {
    job: &'j Job,
    nonce_first: u32,
    nonce_last: u32,
    empty: bool,
    version: u64,
    extranonce: u64,
    ntime: u64,
    finished: bool,
}

impl<'j> JobCursor<'j> {
    /// Slice `slice` of `slices` (nonce range split evenly; a slice may be empty when there are more
    /// slices than nonces, and then yields nothing; so does every slice of a job that fails
    /// [`Job::validate`]).
    ///
    /// # Panics
    ///
    /// When `slice >= slices`.
    pub fn new(job: &'j Job, slice: usize, slices: usize) -> JobCursor<'j> {
        assert!(slices > 0 && slice < slices, "slice {slice} of {slices}");
        let first = u64::from(job.nonce_start);
        let len = u64::from(job.nonce_end.saturating_sub(job.nonce_start)) + 1;
        let lo = first + len * slice as u64 / slices as u64;
        let hi = first + len * (slice as u64 + 1) / slices as u64; // exclusive
        JobCursor {
            job,
            nonce_first: lo as u32,
            nonce_last: hi.saturating_sub(1) as u32,
            empty: hi == lo || job.validate().is_err(),
            version: 0,
            extranonce: 0,
            ntime: 0,
            finished: false,
        }
    }

    /// This slice's nonces (inclusive).
    pub fn nonce_range(&self) -> (u32, u32) {
        (self.nonce_first, self.nonce_last)
    }

    /// The next templates that differ only in their version, at most `max` of them (at least one),
    /// into `out` (cleared first; reuse it to avoid allocating). Returns how many; 0 when the slice's
    /// search space is exhausted. These can be scanned as one group ([`Hasher::scan_group`]).
    pub fn next_group(&mut self, max: usize, out: &mut Vec<Template>) -> usize {
        out.clear();
        let max = max.max(1) as u64;
        let same_root = self.job.version_count() - self.version;
        for _ in 0..max.min(same_root) {
            match self.next_template() {
                Some(t) => out.push(t),
                None => break,
            }
        }
        out.len()
    }

    /// The next template, or `None` when the slice's search space is exhausted.
    pub fn next_template(&mut self) -> Option<Template> {
        if self.finished || self.empty {
            return None;
        }
        let t = self.job.template(self.version, self.extranonce, self.ntime);
        // Advance the mixed-radix counter.
        self.version += 1;
        if self.version == self.job.version_count() {
            self.version = 0;
            self.extranonce += 1;
            if self.extranonce == self.job.extranonce_count() {
                self.extranonce = 0;
                self.ntime += 1;
                if self.ntime == self.job.ntime_count() {
                    self.finished = true;
                }
            }
        }
        Some(t)
    }
}

/// A share found by the [`Miner`]: its hash met the job's target (checked with the full 256-bit
/// compare after a portable re-hash).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Share {
    pub job_id: u64,
    pub nonce: u32,
    pub ntime: u32,
    pub version: u32,
    /// The miner's extranonce (not including the channel's extranonce_prefix); empty for standard jobs.
    pub extranonce: Extranonce,
    pub merkle_root: [u8; 32],
    /// sha256d of the header, internal byte order.
    pub hash: [u8; 32],
}

/// How to run a [`Miner`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MinerConfig {
    /// Worker threads (at least 1).
    pub threads: usize,
    pub backend: Backend,
    /// Hashes per batch (nonces times the group's versions): threads look for a new job (and
    /// publish their hash counts) after each.
    pub batch: u32,
    /// Rolled versions hashed together, sharing the first hash's message schedule (1 to
    /// [`MAX_GROUP`]; only matters for jobs that allow version rolling).
    pub group: usize,
}

impl Default for MinerConfig {
    fn default() -> Self {
        MinerConfig {
            threads: 1,
            backend: Backend::detect(),
            batch: 1 << 14,
            group: MAX_GROUP,
        }
    }
}

/// A per-thread hash counter on its own cache line.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Counter(AtomicU64);

#[derive(Debug)]
struct Shared {
    /// Bumped by every job change and by stop; workers compare it after each batch.
    epoch: AtomicU64,
    stop: AtomicBool,
    /// The current job and the epoch it was set at.
    job: Mutex<(u64, Option<Arc<Job>>)>,
    changed: Condvar,
    hashes: Vec<Counter>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, (u64, Option<Arc<Job>>)> {
        self.job.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Mining threads over the current job. Shares arrive on the receiver returned by [`Miner::start`].
///
/// [`Miner::replace_job`] and [`Miner::stop`] take effect within one batch per thread (the threads
/// check an atomic epoch between batches; the hot loop takes no lock and allocates nothing). A share
/// of the previous job may still arrive just after a replace (its job_id tells).
#[derive(Debug)]
pub struct Miner {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    backend: Backend,
}

impl Miner {
    /// Starts `config.threads` idle threads (they wait for a job).
    pub fn start(config: MinerConfig) -> Result<(Miner, Receiver<Share>), Unsupported> {
        let hasher = config.backend.hasher()?;
        let threads = config.threads.max(1);
        let shared = Arc::new(Shared {
            epoch: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            job: Mutex::new((0, None)),
            changed: Condvar::new(),
            hashes: (0..threads).map(|_| Counter::default()).collect(),
        });
        let (tx, rx) = mpsc::channel();
        let batch = config.batch.max(1);
        let group = config.group.clamp(1, MAX_GROUP);
        let handles = (0..threads)
            .map(|index| {
                let worker = Worker {
                    shared: Arc::clone(&shared),
                    shares: tx.clone(),
                    hasher,
                    index,
                    threads,
                    batch,
                    group,
                };
                std::thread::Builder::new()
                    .name(format!("sv2-miner-{index}"))
                    .spawn(move || worker.run())
                    .expect("spawn a mining thread")
            })
            .collect();
        Ok((
            Miner {
                shared,
                threads: handles,
                backend: config.backend,
            },
            rx,
        ))
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Switches every thread to `job` (threads drop the previous job after their current batch).
    pub fn replace_job(&self, job: Job) -> Result<(), JobError> {
        job.validate()?;
        self.set(Some(Arc::new(job)));
        Ok(())
    }

    /// Stops hashing until the next [`Miner::replace_job`].
    pub fn clear_job(&self) {
        self.set(None);
    }

    fn set(&self, job: Option<Arc<Job>>) {
        let mut slot = self.shared.lock();
        let epoch = self.shared.epoch.load(Ordering::Relaxed) + 1;
        *slot = (epoch, job);
        self.shared.epoch.store(epoch, Ordering::Release);
        self.shared.changed.notify_all();
    }

    /// Hashes computed so far, all threads (updated once per batch).
    pub fn hashes(&self) -> u64 {
        self.shared
            .hashes
            .iter()
            .map(|c| c.0.load(Ordering::Relaxed))
            .sum()
    }

    /// Stops and joins the threads.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        {
            let _slot = self.shared.lock();
            self.shared.stop.store(true, Ordering::Release);
            self.shared.epoch.fetch_add(1, Ordering::Release);
            self.shared.changed.notify_all();
        }
        for handle in self.threads.drain(..) {
            // A worker that panicked has nothing left to clean up.
            let _ = handle.join();
        }
    }
}

impl Drop for Miner {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct Worker {
    shared: Arc<Shared>,
    shares: Sender<Share>,
    hasher: Hasher,
    index: usize,
    threads: usize,
    batch: u32,
    group: usize,
}

impl Worker {
    fn run(self) {
        let mut seen = 0u64;
        loop {
            // Wait for a job newer than the one we finished (or dropped).
            let (epoch, job) = {
                let mut slot = self.shared.lock();
                loop {
                    if self.shared.stop.load(Ordering::Acquire) {
                        return;
                    }
                    match &slot.1 {
                        Some(job) if slot.0 != seen => break (slot.0, Arc::clone(job)),
                        _ => {
                            slot = self
                                .shared
                                .changed
                                .wait(slot)
                                .unwrap_or_else(PoisonError::into_inner)
                        }
                    }
                }
            };
            seen = epoch;
            self.mine(&job, epoch);
        }
    }

    /// Mines `job` until its slice is exhausted or the epoch moves on.
    fn mine(&self, job: &Job, epoch: u64) {
        let counter = &self.shared.hashes[self.index].0;
        let mut cursor = JobCursor::new(job, self.index, self.threads);
        let (first, last) = cursor.nonce_range();
        let mut candidates = Candidates::new();
        let mut templates = Vec::with_capacity(MAX_GROUP);
        let mut headers = Vec::with_capacity(MAX_GROUP);
        while cursor.next_group(self.group, &mut templates) > 0 {
            headers.clear();
            headers.extend(
                templates
                    .iter()
                    .map(|t| PreparedHeader::new(&job.header(t, 0), &job.target)),
            );
            let per_batch = (self.batch / headers.len() as u32).max(1);
            let mut next = u64::from(first);
            let end = u64::from(last) + 1;
            while next < end {
                let n = (end - next).min(u64::from(per_batch)) as u32;
                let mut done = 0u32;
                while done < n {
                    done += self.hasher.scan_group(
                        &headers,
                        next as u32 + done,
                        n - done,
                        &mut candidates,
                    );
                    for c in candidates.as_slice() {
                        let Some(hash) = headers[c.index].check(c.nonce) else {
                            continue;
                        };
                        if self.shared.epoch.load(Ordering::Acquire) != epoch {
                            return;
                        }
                        let template = &templates[c.index];
                        let share = Share {
                            job_id: job.id,
                            nonce: c.nonce,
                            ntime: template.ntime,
                            version: template.version,
                            extranonce: template.extranonce,
                            merkle_root: template.merkle_root,
                            hash,
                        };
                        // The receiver may be gone; the miner then just keeps counting hashes.
                        let _ = self.shares.send(share);
                    }
                    candidates.clear();
                }
                counter.fetch_add(u64::from(n) * headers.len() as u64, Ordering::Relaxed);
                if self.shared.epoch.load(Ordering::Acquire) != epoch {
                    return;
                }
                next += u64::from(n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deposit_scatters_into_the_mask() {
        assert_eq!(deposit(0, BIP323_VERSION_MASK), 0);
        assert_eq!(deposit(1, BIP323_VERSION_MASK), 1 << 5);
        assert_eq!(deposit(0xff_ffff, BIP323_VERSION_MASK), BIP323_VERSION_MASK);
        assert_eq!(deposit(0b101, 0b1011_0000), 0b1001_0000);
        assert_eq!(deposit(5, 0), 0);
    }

    #[test]
    fn extranonce_counter_is_big_endian_in_len_bytes() {
        assert_eq!(Extranonce::from_counter(4, 0x0102).as_slice(), [0, 0, 1, 2]);
        assert_eq!(Extranonce::from_counter(1, 0x0102).as_slice(), [2]);
        let long = Extranonce::from_counter(10, 0x0102);
        assert_eq!(long.as_slice(), [0, 0, 0, 0, 0, 0, 0, 0, 1, 2]);
        assert_eq!(Extranonce::from_counter(0, 7).as_slice(), [] as [u8; 0]);
        assert!(Extranonce::new(&[0; 33]).is_none());
        assert_eq!(Extranonce::new(&[1, 2]).unwrap().as_slice(), [1, 2]);
    }

    #[test]
    fn groups_hold_versions_of_one_merkle_root_and_ntime() {
        let mut job = Job::new(
            0,
            0x2000_0000,
            [0; 32],
            MerkleSource::Root([1; 32]),
            10,
            0,
            Target::MAX,
        );
        job.version_mask = 0b111 << 13; // 8 versions
        job.ntime_roll = 1;
        let mut cursor = JobCursor::new(&job, 0, 1);
        let mut group = Vec::new();
        let mut sizes = Vec::new();
        while cursor.next_group(3, &mut group) > 0 {
            assert!(group.iter().all(|t| t.ntime == group[0].ntime));
            let mut versions: Vec<u32> = group.iter().map(|t| t.version).collect();
            versions.dedup();
            assert_eq!(versions.len(), group.len());
            sizes.push((group[0].ntime, group.len()));
        }
        // 8 versions per ntime in groups of at most 3 that never straddle two ntimes.
        assert_eq!(
            sizes,
            [(10, 3), (10, 3), (10, 2), (11, 3), (11, 3), (11, 2)]
        );
    }

    #[test]
    fn an_invalid_job_has_an_empty_search_space() {
        let cb = CoinbaseParts {
            prefix: vec![1],
            extranonce_prefix: vec![0; 20],
            extranonce_len: 13,
            extranonce_start: 0,
            suffix: vec![2],
            merkle_path: vec![],
        };
        let job = Job::new(0, 1, [0; 32], MerkleSource::Coinbase(cb), 0, 0, Target::MAX);
        assert!(job.validate().is_err());
        assert_eq!(JobCursor::new(&job, 0, 1).next_template(), None);
    }

    #[test]
    fn slices_split_the_nonce_range_without_gaps() {
        let mut job = Job::new(
            0,
            1,
            [0; 32],
            MerkleSource::Root([0; 32]),
            0,
            0,
            Target::MAX,
        );
        for (start, end, slices) in [
            (0, u32::MAX, 3),
            (10, 20, 4),
            (5, 6, 3),
            (u32::MAX, u32::MAX, 1),
        ] {
            job.nonce_start = start;
            job.nonce_end = end;
            let mut expect = u64::from(start);
            for s in 0..slices {
                let c = JobCursor::new(&job, s, slices);
                if c.empty {
                    continue;
                }
                let (lo, hi) = c.nonce_range();
                assert_eq!(u64::from(lo), expect);
                expect = u64::from(hi) + 1;
            }
            assert_eq!(expect, u64::from(end) + 1);
        }
    }
}
