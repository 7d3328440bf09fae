//! The sha256d CPU mining engine: the one crate of the workspace where `unsafe` is allowed.
//!
//! # Hashing
//!
//! A block header is 80 bytes: two SHA-256 blocks for the first hash, one for the second. The first
//! 64 bytes do not change while the nonce does, so their compression (the *midstate*) is done once per
//! header ([`PreparedHeader`]). The second block holds the merkle root's last 4 bytes, ntime, nbits, the
//! nonce and fixed padding; only the nonce word changes. The second hash runs over a fixed padded
//! block (the first digest, `0x80`, zeros, length 256). A share's hash is read as a little-endian
//! 256-bit number, so its most significant 32 bits are the last state word of the second hash
//! byte-swapped: a backend computes just enough rounds to know that word and rejects the nonce early
//! when it is above the target's top word. Only the rare *candidates* that pass get a full hash and a
//! full 256-bit compare ([`PreparedHeader::check`], portable code), which is also what makes every
//! reported share independent of the SIMD code that found it.
//!
//! Headers that differ only in their version (rolled inside the job's mask) have different
//! midstates but the same second block, hence the same message schedule for the first hash: a group
//! of up to [`MAX_GROUP`] of them is scanned together ([`Hasher::scan_group`]) and that schedule is
//! computed once per nonce for the whole group (the idea of overt AsicBoost). The miner does this
//! whenever the job allows version rolling.
//!
//! # Backends
//!
//! [`Backend`] lists them; [`Backend::detect`] picks the fastest one the CPU supports at run time, and
//! any supported one can be forced (tests, benchmarks, `sv2-probe hashrate --backend`). A [`Hasher`] is a
//! backend proven supported; [`Hasher::scan_group`] is the hot loop.
//!
//! # Work
//!
//! [`Job`] is plain job data (what SV2's standard and extended jobs carry); [`JobCursor`] walks its
//! search space (nonce slice, rolled version, rolled ntime, extranonce); [`Miner`] runs threads over it
//! and reports [`Share`]s through a channel.
//!
//! # Unsafe
//!
//! The x86 backends are `#[target_feature]` functions; calling one is `unsafe` because the CPU must
//! have the features. [`Hasher`] is the only caller, and a `Hasher` is only built after
//! `is_x86_feature_detected!` said yes. The intrinsics themselves are safe inside those functions.

#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
pub mod bench;
mod header;
mod scalar;
pub mod sha256;
#[cfg(target_arch = "x86_64")]
mod shani;
#[cfg(target_arch = "x86_64")]
mod simd;
mod work;

use std::fmt;
use std::str::FromStr;

pub use header::{BlockHeader, PreparedHeader, Target};
pub use sv2_chain::sha256d;
pub use work::{
    CoinbaseParts, Extranonce, Job, JobCursor, JobError, MerkleSource, Miner, MinerConfig, Share,
    Template, BIP323_VERSION_MASK,
};

/// The most headers a group scan takes ([`Hasher::scan_group`]).
pub const MAX_GROUP: usize = 8;

/// How many candidates a [`Candidates`] buffer holds; a scan stops early when it is nearly full.
pub const CANDIDATE_CAPACITY: usize = 256;

/// A nonce of one header of a scanned group whose hash passed the early rejection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Candidate {
    /// Index of the header in the group (0 for [`Hasher::scan`]).
    pub index: usize,
    pub nonce: u32,
}

/// Nonces whose hash passed the early rejection (top 32 bits at most the target's), to be confirmed
/// with [`PreparedHeader::check`]. A fixed buffer: the hot loop never allocates.
#[derive(Clone, Debug)]
pub struct Candidates {
    entries: [Candidate; CANDIDATE_CAPACITY],
    len: usize,
}

impl Default for Candidates {
    fn default() -> Self {
        Candidates {
            entries: [Candidate::default(); CANDIDATE_CAPACITY],
            len: 0,
        }
    }
}

impl Candidates {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn as_slice(&self) -> &[Candidate] {
        &self.entries[..self.len]
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn remaining(&self) -> usize {
        CANDIDATE_CAPACITY - self.len
    }

    /// Callers check `remaining()` first; a push into a full buffer is a bug.
    #[inline]
    pub(crate) fn push(&mut self, index: usize, nonce: u32) {
        self.entries[self.len] = Candidate { index, nonce };
        self.len += 1;
    }
}

/// A hashing backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Backend {
    /// Portable Rust, one nonce at a time; works on every target.
    Scalar,
    /// SHA extensions, one nonce at a time.
    ShaNi1,
    /// SHA extensions, 2 nonces interleaved.
    ShaNi2,
    /// SHA extensions, 3 nonces interleaved.
    ShaNi3,
    /// SHA extensions, 4 nonces interleaved.
    ShaNi4,
    /// AVX2, 8 nonces per vector.
    Avx2,
    /// AVX-512 (F and BW), 16 nonces per vector.
    Avx512,
}

impl Backend {
    /// Every backend, supported here or not, in display order.
    pub const ALL: [Backend; 7] = [
        Backend::Scalar,
        Backend::Avx2,
        Backend::Avx512,
        Backend::ShaNi1,
        Backend::ShaNi2,
        Backend::ShaNi3,
        Backend::ShaNi4,
    ];

    /// Preference order of [`Backend::by_features`], fastest first. Measured on an Intel Xeon with SHA-NI
    /// and AVX-512, one thread, one header at a time (groups of 8 rolled versions in brackets):
    /// AVX-512 about 31 MH/s (36), every SHA-NI variant about 12-13 (13-15: the SHA unit's
    /// throughput is the limit there, about one `sha256rnds2` per 3 cycles, so interleaving barely
    /// helps; it does where the instruction's latency is the limit), AVX2 about 10 (12), scalar 1.6.
    const PREFERENCE: [Backend; 7] = [
        Backend::Avx512,
        Backend::ShaNi3,
        Backend::ShaNi4,
        Backend::ShaNi2,
        Backend::ShaNi1,
        Backend::Avx2,
        Backend::Scalar,
    ];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Scalar => "scalar",
            Backend::ShaNi1 => "sha-ni-x1",
            Backend::ShaNi2 => "sha-ni-x2",
            Backend::ShaNi3 => "sha-ni-x3",
            Backend::ShaNi4 => "sha-ni-x4",
            Backend::Avx2 => "avx2",
            Backend::Avx512 => "avx512",
        }
    }

    /// Nonces hashed side by side.
    pub fn lanes(self) -> usize {
        match self {
            Backend::Scalar | Backend::ShaNi1 => 1,
            Backend::ShaNi2 => 2,
            Backend::ShaNi3 => 3,
            Backend::ShaNi4 => 4,
            Backend::Avx2 => 8,
            Backend::Avx512 => 16,
        }
    }

    /// Whether this CPU can run the backend (checked at run time).
    pub fn is_supported(self) -> bool {
        match self {
            Backend::Scalar => true,
            Backend::ShaNi1 | Backend::ShaNi2 | Backend::ShaNi3 | Backend::ShaNi4 => has_sha_ni(),
            Backend::Avx2 => has_avx2(),
            Backend::Avx512 => has_avx512(),
        }
    }

    /// The backends this CPU supports, in [`Backend::ALL`] order.
    pub fn supported() -> Vec<Backend> {
        Self::ALL.into_iter().filter(|b| b.is_supported()).collect()
    }

    /// The fastest backend this CPU supports, measured once per process ([`Backend::calibrate`]):
    /// which one wins depends on the micro-architecture, not only on the features (SHA-NI's
    /// throughput differs several-fold between Intel and AMD cores, and AVX-512 is double-pumped on
    /// some), so a fixed order would pick a slow backend on some machines.
    pub fn detect() -> Backend {
        static FASTEST: std::sync::OnceLock<Backend> = std::sync::OnceLock::new();
        *FASTEST.get_or_init(|| Self::calibrate(std::time::Duration::from_millis(2)))
    }

    /// The first supported backend of a fixed preference order (measured on an Intel Xeon), without
    /// measuring anything.
    pub fn by_features() -> Backend {
        Self::PREFERENCE
            .into_iter()
            .find(|b| b.is_supported())
            .unwrap_or(Backend::Scalar)
    }

    /// Measures every supported backend on a group of [`MAX_GROUP`] rolled headers (what the miner
    /// scans when a job allows version rolling) for about `slice` each, three times in turn so that
    /// a burst of other work on the machine does not decide alone, and returns the one with the best
    /// of its three rates. Ties keep [`Backend::by_features`]'s order. The measured headers have an
    /// all-zero target, so no candidate is ever reported and the buffer never fills.
    pub fn calibrate(slice: std::time::Duration) -> Backend {
        let supported: Vec<Backend> = Self::PREFERENCE
            .into_iter()
            .filter(|b| b.is_supported())
            .collect();
        if supported.len() == 1 {
            return supported[0];
        }
        let base = BlockHeader {
            version: 0x2000_0000,
            prev_hash: [0x5a; 32],
            merkle_root: [0xa5; 32],
            ntime: 0x6500_0000,
            nbits: 0x1d00_ffff,
            nonce: 0,
        };
        let group: Vec<PreparedHeader> = (0..MAX_GROUP as u32)
            .map(|i| {
                let header = BlockHeader {
                    version: base.version | (i << 13),
                    ..base
                };
                PreparedHeader::new(&header, &Target::ZERO)
            })
            .collect();
        let mut best = vec![0f64; supported.len()];
        let mut out = Candidates::new();
        for _round in 0..3 {
            for (backend, best) in supported.iter().zip(best.iter_mut()) {
                let hasher = Hasher { backend: *backend };
                let started = std::time::Instant::now();
                let mut nonces = 0u64;
                while started.elapsed() < slice {
                    out.clear();
                    // 64 nonces at a time: a few microseconds even for the scalar backend.
                    let start = (nonces as u32) & 0x7fff_ffff;
                    nonces += u64::from(hasher.scan_group(&group, start, 64, &mut out));
                }
                let rate = nonces as f64 / started.elapsed().as_secs_f64();
                *best = best.max(rate);
            }
        }
        let mut fastest = 0;
        for (i, rate) in best.iter().enumerate() {
            if *rate > best[fastest] {
                fastest = i;
            }
        }
        supported[fastest]
    }

    /// A [`Hasher`] for this backend, or an error when the CPU lacks its features.
    pub fn hasher(self) -> Result<Hasher, Unsupported> {
        if self.is_supported() {
            Ok(Hasher { backend: self })
        } else {
            Err(Unsupported(self))
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Backend {
    type Err = UnknownBackend;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .ok_or_else(|| UnknownBackend(s.to_owned()))
    }
}

/// A backend name that is not one of [`Backend::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown backend {0:?} (known: scalar, avx2, avx512, sha-ni-x1, sha-ni-x2, sha-ni-x3, sha-ni-x4)")]
pub struct UnknownBackend(pub String);

/// The CPU lacks the features of a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("backend {0} is not supported by this CPU")]
pub struct Unsupported(pub Backend);

#[cfg(target_arch = "x86_64")]
fn has_sha_ni() -> bool {
    std::arch::is_x86_feature_detected!("sha")
        && std::arch::is_x86_feature_detected!("sse2")
        && std::arch::is_x86_feature_detected!("ssse3")
        && std::arch::is_x86_feature_detected!("sse4.1")
}

#[cfg(target_arch = "x86_64")]
fn has_avx2() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}

#[cfg(target_arch = "x86_64")]
fn has_avx512() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
}

#[cfg(not(target_arch = "x86_64"))]
fn has_sha_ni() -> bool {
    false
}

#[cfg(not(target_arch = "x86_64"))]
fn has_avx2() -> bool {
    false
}

#[cfg(not(target_arch = "x86_64"))]
fn has_avx512() -> bool {
    false
}

/// A backend this CPU supports (only [`Backend::hasher`] makes one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hasher {
    backend: Backend,
}

impl Hasher {
    /// The fastest supported backend.
    pub fn detect() -> Hasher {
        Hasher {
            backend: Backend::detect(),
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Hashes nonces `start..start + count` of `header` (`start + count` must not exceed `2^32`:
    /// a scan never wraps) and appends to `out` every nonce whose hash's top 32 bits are at most the
    /// target's top word. Returns how many nonces it hashed: `count`, or fewer when `out` got too full
    /// to take another round of lanes (drain it and call again from `start + returned`).
    ///
    /// # Panics
    ///
    /// When `start + count > 2^32`.
    pub fn scan(
        &self,
        header: &PreparedHeader,
        start: u32,
        count: u32,
        out: &mut Candidates,
    ) -> u32 {
        self.scan_group(std::slice::from_ref(header), start, count, out)
    }

    /// [`Hasher::scan`] over every header of `group` (1 to [`MAX_GROUP`] headers that share their
    /// second block and target, e.g. rolled versions of one template): each nonce of the range is
    /// hashed with each header. The backends compute the first hash's message schedule (which only
    /// depends on the second block) once per nonce for the whole group, as overt AsicBoost does.
    /// Candidates name the header by its index in `group`. Returns how many nonces were hashed
    /// with every header.
    ///
    /// # Panics
    ///
    /// When `start + count > 2^32`, when `group` is empty or longer than [`MAX_GROUP`], or when its
    /// headers do not share their second block and target.
    pub fn scan_group(
        &self,
        group: &[PreparedHeader],
        start: u32,
        count: u32,
        out: &mut Candidates,
    ) -> u32 {
        assert!(
            u64::from(start) + u64::from(count) <= 1 << 32,
            "a scan must not wrap past nonce 0xffffffff"
        );
        assert!(
            (1..=MAX_GROUP).contains(&group.len()),
            "a group has 1 to {MAX_GROUP} headers, not {}",
            group.len()
        );
        assert!(
            group.iter().all(|h| h.shares_second_block_with(&group[0])),
            "the headers of a group must share their second block and target"
        );
        match self.backend {
            Backend::Scalar => scalar::scan(group, start, count, out),
            #[cfg(target_arch = "x86_64")]
            _ => self.scan_x86(group, start, count, out),
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable!("only supported backends make a Hasher"),
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    fn scan_x86(
        &self,
        group: &[PreparedHeader],
        start: u32,
        count: u32,
        out: &mut Candidates,
    ) -> u32 {
        match self.backend {
            // SAFETY: a Hasher exists only for a backend whose `is_supported` returned true; for the
            // SHA-NI backends that is `has_sha_ni`: sha, sse2, ssse3 and sse4.1 were detected at run
            // time, the features `shani::scan` is compiled with.
            Backend::ShaNi1 => unsafe { shani::scan::<1>(group, start, count, out) },
            // SAFETY: as above (SHA-NI detected).
            Backend::ShaNi2 => unsafe { shani::scan::<2>(group, start, count, out) },
            // SAFETY: as above (SHA-NI detected).
            Backend::ShaNi3 => unsafe { shani::scan::<3>(group, start, count, out) },
            // SAFETY: as above (SHA-NI detected).
            Backend::ShaNi4 => unsafe { shani::scan::<4>(group, start, count, out) },
            // SAFETY: a Hasher for Avx2 exists only when `has_avx2` detected avx2 at run time, the
            // feature `avx2::scan` is compiled with.
            Backend::Avx2 => unsafe { avx2::scan(group, start, count, out) },
            // SAFETY: a Hasher for Avx512 exists only when `has_avx512` detected avx512f and avx512bw
            // at run time, the features `avx512::scan` is compiled with.
            Backend::Avx512 => unsafe { avx512::scan(group, start, count, out) },
            Backend::Scalar => scalar::scan(group, start, count, out),
        }
    }
}

/// The naive baseline: `sha2`'s SHA-256 twice over the 80 serialized bytes (what a straightforward
/// miner does). Also the reference the backends are tested against.
pub fn naive_sha256d(header: &[u8; 80]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(Sha256::digest(header)).into()
}
