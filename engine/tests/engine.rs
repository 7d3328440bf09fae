//! The mining engine: every backend against `sha2` (random headers, real block headers, nonce
//! wrap-around, the target boundary), and the work iteration and threads.

use std::collections::BTreeSet;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use sv2_engine::{
    naive_sha256d, Backend, BlockHeader, Candidates, CoinbaseParts, Hasher, Job, JobCursor,
    MerkleSource, Miner, MinerConfig, PreparedHeader, Share, Target, BIP323_VERSION_MASK,
    MAX_GROUP,
};

/// splitmix64: a small deterministic generator, so every run tests the same headers.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn u32(&mut self) -> u32 {
        self.next() as u32
    }

    fn bytes32(&mut self) -> [u8; 32] {
        let mut b = [0u8; 32];
        for chunk in b.chunks_mut(8) {
            chunk.copy_from_slice(&self.next().to_le_bytes());
        }
        b
    }

    fn header(&mut self) -> BlockHeader {
        BlockHeader {
            version: self.u32(),
            prev_hash: self.bytes32(),
            merkle_root: self.bytes32(),
            ntime: self.u32(),
            nbits: self.u32(),
            nonce: 0,
        }
    }
}

fn hasher(backend: Backend) -> Hasher {
    backend.hasher().expect("listed as supported")
}

/// Hex in display order (as explorers show block hashes) to internal order.
fn internal(display: &str) -> [u8; 32] {
    let mut b: [u8; 32] = hex_bytes(display).try_into().unwrap();
    b.reverse();
    b
}

fn hex_bytes(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The top 32 bits of a hash read little-endian: what early rejection compares.
fn top_word(hash: &[u8; 32]) -> u32 {
    u32::from_le_bytes(hash[28..32].try_into().unwrap())
}

/// Nonces of `start..start + count` whose sha2 hash has top word <= the target's.
fn reference_candidates(header: &BlockHeader, target: &Target, start: u32, count: u32) -> Vec<u32> {
    (0..count)
        .map(|i| start.wrapping_add(i))
        .filter(|&nonce| {
            let hash = naive_sha256d(&BlockHeader { nonce, ..*header }.to_bytes());
            top_word(&hash) <= target.top_word()
        })
        .collect()
}

/// Everything `scan` reports over a range, draining the buffer whenever it fills up.
fn scan_all(hasher: Hasher, p: &PreparedHeader, start: u32, count: u32) -> Vec<u32> {
    let mut out = Candidates::new();
    let mut found = Vec::new();
    let mut done = 0u32;
    while done < count {
        let n = hasher.scan(p, start + done, count - done, &mut out);
        assert!(n > 0 || !out.is_empty(), "no progress");
        done += n;
        found.extend(out.as_slice().iter().map(|c| {
            assert_eq!(c.index, 0);
            c.nonce
        }));
        out.clear();
    }
    found
}

#[test]
fn every_listed_backend_name_parses_back() {
    for b in Backend::ALL {
        assert_eq!(b.name().parse::<Backend>().unwrap(), b);
    }
    assert!("sha-ni-x9".parse::<Backend>().is_err());
    assert!(Backend::supported().contains(&Backend::Scalar));
    assert!(Backend::detect().is_supported());
    assert!(Backend::by_features().is_supported());
    println!("supported here: {:?}", Backend::supported());
    // The backends this CPU lacks are not tested here: the test command's summary says so.
    let missing: Vec<&str> = Backend::ALL
        .iter()
        .filter(|b| !b.is_supported())
        .map(|b| b.name())
        .collect();
    if !missing.is_empty() {
        let list =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-skips.txt");
        let _ = std::fs::create_dir_all(list.parent().unwrap());
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&list)
        {
            use std::io::Write;
            let _ = writeln!(
                file,
                "sv2-engine: backends this CPU lacks, not tested here: {}",
                missing.join(", ")
            );
        }
    }
}

#[test]
fn the_calibrated_backend_is_supported_stable_and_not_slower_than_scalar() {
    let chosen = Backend::detect();
    assert_eq!(Backend::detect(), chosen, "measured once per process");
    let calibrated = Backend::calibrate(std::time::Duration::from_millis(1));
    assert!(calibrated.is_supported());
    // Every SIMD backend is several times faster than the portable one, so the calibration never
    // picks scalar when it has a choice, even on a busy machine.
    if Backend::supported().len() > 1 {
        assert_ne!(calibrated, Backend::Scalar);
        assert_ne!(chosen, Backend::Scalar);
    }
    println!(
        "calibrated here: {chosen} (by features: {})",
        Backend::by_features()
    );
}

#[test]
fn prepared_header_hash_matches_sha2_on_random_headers() {
    let mut rng = Rng(1);
    for _ in 0..200 {
        let header = rng.header();
        let p = PreparedHeader::new(&header, &Target::MAX);
        for _ in 0..5 {
            let nonce = rng.u32();
            let bytes = BlockHeader { nonce, ..header }.to_bytes();
            assert_eq!(p.hash(nonce), naive_sha256d(&bytes));
        }
    }
}

#[test]
fn every_backend_matches_sha2_on_random_headers() {
    let mut rng = Rng(2);
    for round in 0..12 {
        let header = rng.header();
        // About 1 nonce in 16 passes early rejection (top word <= 0x0fffffff); odd counts leave a
        // partial last batch of lanes.
        let target = Target::with_top_word(0x0fff_ffff);
        let start = rng.u32() >> 1;
        let count = 500 + round * 7;
        let expected = reference_candidates(&header, &target, start, count);
        assert!(expected.len() > 10, "the test needs candidates");
        let p = PreparedHeader::new(&header, &target);
        for backend in Backend::supported() {
            let found = scan_all(hasher(backend), &p, start, count);
            assert_eq!(found, expected, "{backend} on header {round}");
        }
    }
}

/// Everything `scan_group` reports over a range, as (header index, nonce), sorted.
fn scan_group_all(
    hasher: Hasher,
    group: &[PreparedHeader],
    start: u32,
    count: u32,
) -> Vec<(usize, u32)> {
    let mut out = Candidates::new();
    let mut found = Vec::new();
    let mut done = 0u32;
    while done < count {
        let n = hasher.scan_group(group, start + done, count - done, &mut out);
        assert!(n > 0 || !out.is_empty(), "no progress");
        done += n;
        found.extend(out.as_slice().iter().map(|c| (c.index, c.nonce)));
        out.clear();
    }
    found.sort_unstable();
    found
}

#[test]
fn every_backend_matches_sha2_on_groups_of_rolled_versions() {
    let mut rng = Rng(12);
    for size in [2, 3, MAX_GROUP] {
        let header = rng.header();
        let target = Target::with_top_word(0x0fff_ffff);
        let versions: Vec<u32> = (0..size).map(|_| rng.u32()).collect();
        let group: Vec<PreparedHeader> = versions
            .iter()
            .map(|&version| PreparedHeader::new(&BlockHeader { version, ..header }, &target))
            .collect();
        let start = rng.u32() >> 1;
        let count = 301;
        let mut expected: Vec<(usize, u32)> = versions
            .iter()
            .enumerate()
            .flat_map(|(i, &version)| {
                reference_candidates(&BlockHeader { version, ..header }, &target, start, count)
                    .into_iter()
                    .map(move |n| (i, n))
            })
            .collect();
        expected.sort_unstable();
        for backend in Backend::supported() {
            let found = scan_group_all(hasher(backend), &group, start, count);
            assert_eq!(found, expected, "{backend}, group of {size}");
        }
        // Every nonce passes: the buffer fills up and the scan resumes where it stopped.
        let all_pass: Vec<PreparedHeader> = versions
            .iter()
            .map(|&version| PreparedHeader::new(&BlockHeader { version, ..header }, &Target::MAX))
            .collect();
        for backend in Backend::supported() {
            let found = scan_group_all(hasher(backend), &all_pass, 7, 100);
            assert_eq!(found.len(), 100 * size, "{backend}");
        }
    }
}

#[test]
fn a_group_must_share_its_second_block() {
    let header = Rng(13).header();
    let a = PreparedHeader::new(&header, &Target::MAX);
    let b = PreparedHeader::new(
        &BlockHeader {
            ntime: header.ntime + 1,
            ..header
        },
        &Target::MAX,
    );
    let r = std::panic::catch_unwind(|| {
        Hasher::detect().scan_group(&[a, b], 0, 10, &mut Candidates::new());
    });
    assert!(r.is_err());
    let too_many = vec![a; MAX_GROUP + 1];
    let r = std::panic::catch_unwind(|| {
        Hasher::detect().scan_group(&too_many, 0, 10, &mut Candidates::new());
    });
    assert!(r.is_err());
}

#[test]
fn every_backend_reports_every_nonce_when_all_pass_and_stops_when_the_buffer_is_full() {
    let header = Rng(3).header();
    let p = PreparedHeader::new(&header, &Target::MAX);
    for backend in Backend::supported() {
        let mut out = Candidates::new();
        let n = hasher(backend).scan(&p, 1000, 1000, &mut out);
        assert!(n < 1000, "{backend}: stopped early");
        assert_eq!(
            n as usize,
            out.len(),
            "{backend}: every nonce is a candidate"
        );
        let nonces: Vec<u32> = out.as_slice().iter().map(|c| c.nonce).collect();
        assert_eq!(nonces, (1000..1000 + n).collect::<Vec<_>>());
        let all = scan_all(hasher(backend), &p, 0, 1000);
        assert_eq!(all, (0..1000).collect::<Vec<_>>(), "{backend}");
    }
}

/// Real mainnet headers (fields in display order, as explorers and the Bitcoin wiki show them) and
/// their public block hashes.
struct RealBlock {
    name: &'static str,
    version: u32,
    prev: &'static str,
    merkle: &'static str,
    ntime: u32,
    nbits: u32,
    nonce: u32,
    hash: &'static str,
}

const BLOCKS: [RealBlock; 4] = [
    RealBlock {
        name: "genesis",
        version: 1,
        prev: "0000000000000000000000000000000000000000000000000000000000000000",
        merkle: "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b",
        ntime: 1_231_006_505,
        nbits: 0x1d00ffff,
        nonce: 2_083_236_893,
        hash: "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f",
    },
    RealBlock {
        name: "block 1",
        version: 1,
        prev: "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f",
        merkle: "0e3e2357e806b6cdb1f70b54c3a3a17b6714ee1f0e68bebb44a74b1efd512098",
        ntime: 1_231_469_665,
        nbits: 0x1d00ffff,
        nonce: 2_573_394_689,
        hash: "00000000839a8e6886ab5951d76f411475428afc90947ee320161bbf18eb6048",
    },
    RealBlock {
        name: "block 100000",
        version: 1,
        prev: "000000000002d01c1fccc21636b607dfd930d31d01c3a62104612a1719011250",
        merkle: "f3e94742aca4b5ef85488dc37c06c3282295ffec960994b2c0d5ac2a25a95766",
        ntime: 1_293_623_863,
        nbits: 0x1b04864c,
        nonce: 274_148_111,
        hash: "000000000003ba27aa200b1cecaad478d2b00432346c3f1f3986da1afd33e506",
    },
    RealBlock {
        name: "block 125552 (the Bitcoin wiki's hashing example)",
        version: 1,
        prev: "00000000000008a3a41b85b8b29ad444def299fee21793cd8b9e567eab02cd81",
        merkle: "2b12fcf1b09288fcaff797d71e950e71ae42b91e8bdb2304758dfcffc2b620e3",
        ntime: 1_305_998_791,
        nbits: 0x1a44b9f2,
        nonce: 2_504_433_986,
        hash: "00000000000000001e8d6829a8a21adc5d38d0a473b144b6765798e61f98bd1d",
    },
];

impl RealBlock {
    fn header(&self) -> BlockHeader {
        BlockHeader {
            version: self.version,
            prev_hash: internal(self.prev),
            merkle_root: internal(self.merkle),
            ntime: self.ntime,
            nbits: self.nbits,
            nonce: self.nonce,
        }
    }
}

#[test]
fn real_block_headers_hash_to_their_public_hashes() {
    for block in &BLOCKS {
        let header = block.header();
        let expected = internal(block.hash);
        assert_eq!(
            naive_sha256d(&header.to_bytes()),
            expected,
            "sha2, {}",
            block.name
        );
        assert_eq!(
            header.hash(),
            expected,
            "engine's portable hash, {}",
            block.name
        );
        let target = Target::from_nbits(block.nbits).unwrap();
        assert!(
            target.is_met_by(&expected),
            "{} meets its own nbits",
            block.name
        );
    }
}

#[test]
fn every_backend_finds_real_blocks_at_their_difficulty() {
    for block in &BLOCKS {
        let header = block.header();
        let target = Target::from_nbits(block.nbits).unwrap();
        let p = PreparedHeader::new(&header, &target);
        let start = block.nonce - 200;
        let expected = reference_candidates(&header, &target, start, 401);
        assert!(expected.contains(&block.nonce), "{}", block.name);
        for backend in Backend::supported() {
            let found = scan_all(hasher(backend), &p, start, 401);
            assert_eq!(found, expected, "{backend}, {}", block.name);
            let shares: Vec<_> = found.iter().filter_map(|&n| p.check(n)).collect();
            assert_eq!(shares, [internal(block.hash)], "{backend}, {}", block.name);
        }
    }
}

#[test]
fn every_backend_scans_up_to_nonce_ffffffff() {
    let header = Rng(4).header();
    let target = Target::with_top_word(0x3fff_ffff);
    let p = PreparedHeader::new(&header, &target);
    for count in [1u32, 37, 64, 301] {
        let start = u32::MAX - (count - 1);
        let expected = reference_candidates(&header, &target, start, count);
        for backend in Backend::supported() {
            assert_eq!(
                scan_all(hasher(backend), &p, start, count),
                expected,
                "{backend}, {count}"
            );
        }
    }
}

#[test]
fn a_scan_past_nonce_ffffffff_panics() {
    let p = PreparedHeader::new(&Rng(5).header(), &Target::MAX);
    let r = std::panic::catch_unwind(|| {
        Hasher::detect().scan(&p, u32::MAX, 2, &mut Candidates::new());
    });
    assert!(r.is_err());
}

/// A target equal to a known hash: that nonce is a share (hash == target), and the same target
/// minus one is not.
#[test]
fn a_hash_equal_to_the_target_is_a_share_and_one_below_is_not() {
    let header = Rng(6).header();
    let nonce = 0x1234_5678;
    let hash = naive_sha256d(&BlockHeader { nonce, ..header }.to_bytes());
    let equal = Target(hash);
    let mut below = hash;
    // Subtract one from the little-endian number.
    for byte in below.iter_mut() {
        let (v, borrow) = byte.overflowing_sub(1);
        *byte = v;
        if !borrow {
            break;
        }
    }
    let below = Target(below);
    assert!(equal.is_met_by(&hash));
    assert!(!below.is_met_by(&hash));
    for backend in Backend::supported() {
        let p = PreparedHeader::new(&header, &equal);
        let found = scan_all(hasher(backend), &p, nonce - 20, 41);
        assert!(
            found.contains(&nonce),
            "{backend}: top word equal passes early rejection"
        );
        assert_eq!(p.check(nonce), Some(hash), "{backend}");
        let p = PreparedHeader::new(&header, &below);
        let found = scan_all(hasher(backend), &p, nonce - 20, 41);
        assert!(
            found.contains(&nonce),
            "{backend}: same top word, still a candidate"
        );
        assert_eq!(
            p.check(nonce),
            None,
            "{backend}: but the full compare rejects it"
        );
    }
}

/// The genesis coinbase (one transaction: its txid is the merkle root), split around four bytes of
/// its scriptSig that play extranonce_prefix (2 bytes) and extranonce (2 bytes).
const GENESIS_COINBASE: &str = "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff4d04ffff001d0104455468652054696d65732030332f4a616e2f32303039204368616e63656c6c6f72206f6e206272696e6b206f66207365636f6e64206261696c6f757420666f722062616e6b73ffffffff0100f2052a01000000434104678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5fac00000000";

fn genesis_extended_job() -> Job {
    let coinbase = hex_bytes(GENESIS_COINBASE);
    // 4 + 1 + 32 + 4 + 1 (script length) = 42: the scriptSig starts with 04 ffff001d ...
    let at = 42;
    let prefix = coinbase[..at].to_vec();
    let extranonce_prefix = coinbase[at..at + 2].to_vec();
    let extranonce = &coinbase[at + 2..at + 4];
    let suffix = coinbase[at + 4..].to_vec();
    let genesis = BLOCKS[0].header();
    let mut job = Job::new(
        7,
        genesis.version,
        genesis.prev_hash,
        MerkleSource::Coinbase(CoinbaseParts {
            prefix,
            extranonce_prefix,
            extranonce_len: 2,
            extranonce_start: u64::from(u16::from_be_bytes([extranonce[0], extranonce[1]])),
            suffix,
            merkle_path: vec![],
        }),
        genesis.ntime,
        genesis.nbits,
        Target::from_nbits(genesis.nbits).unwrap(),
    );
    job.version_mask = 0;
    job
}

#[test]
fn extended_job_builds_the_genesis_merkle_root_and_finds_the_genesis_nonce() {
    let job = genesis_extended_job();
    let mut cursor = JobCursor::new(&job, 0, 1);
    let first = cursor.next_template().unwrap();
    assert_eq!(first.merkle_root, internal(BLOCKS[0].merkle));
    let header = job.header(&first, BLOCKS[0].nonce);
    assert_eq!(naive_sha256d(&header.to_bytes()), internal(BLOCKS[0].hash));
    // The next template rolls the extranonce (version rolling is off), so the root changes.
    let second = cursor.next_template().unwrap();
    assert_eq!(second.version, first.version);
    assert_ne!(second.merkle_root, first.merkle_root);
    assert_ne!(second.extranonce, first.extranonce);

    // Mine it: the genesis nonce is in range, and it is the only share there.
    let mut job = job;
    job.nonce_start = BLOCKS[0].nonce - 3000;
    job.nonce_end = BLOCKS[0].nonce + 3000;
    job.ntime_roll = 0;
    for backend in Backend::supported() {
        let (miner, shares) = Miner::start(MinerConfig {
            threads: 2,
            backend,
            batch: 512,
            group: MAX_GROUP,
        })
        .unwrap();
        miner.replace_job(job.clone()).unwrap();
        let share = shares
            .recv_timeout(Duration::from_secs(60))
            .expect("the genesis share");
        assert_eq!(share.nonce, BLOCKS[0].nonce, "{backend}");
        assert_eq!(share.job_id, 7);
        assert_eq!(share.hash, internal(BLOCKS[0].hash));
        assert_eq!(
            share.extranonce.as_slice(),
            &hex_bytes(GENESIS_COINBASE)[44..46]
        );
        miner.stop();
    }
}

#[test]
fn version_rolling_stays_inside_the_mask_then_ntime_moves() {
    let mut job = Job::new(
        1,
        0x2000_0004,
        [3; 32],
        MerkleSource::Root([4; 32]),
        1000,
        0x1d00ffff,
        Target::MAX,
    );
    job.ntime_roll = 2;
    assert_eq!(job.version_mask, BIP323_VERSION_MASK);
    // Walk a 16-bit mask (BIP320's) exhaustively; BIP323's 2^24 versions would make a slow test.
    job.version_mask = 0x1fff_e000;
    let mut cursor = JobCursor::new(&job, 0, 1);
    let mut seen = BTreeSet::new();
    for i in 0..(1u32 << 16) {
        let t = cursor.next_template().unwrap();
        assert_eq!(
            (t.version ^ job.version) & !job.version_mask,
            0,
            "template {i}"
        );
        assert_eq!(t.ntime, 1000);
        assert!(t.extranonce.is_empty());
        seen.insert(t.version);
    }
    assert_eq!(seen.len(), 1 << 16, "every version of the mask, once");
    assert!(seen.contains(&job.version));
    let t = cursor.next_template().unwrap();
    assert_eq!(
        (t.version, t.ntime),
        (job.version, 1001),
        "versions exhausted: next ntime"
    );

    // A pool's narrower mask is honoured.
    job.version_mask = 0x0000_6000;
    let versions: BTreeSet<u32> = {
        let mut c = JobCursor::new(&job, 0, 1);
        (0..4).map(|_| c.next_template().unwrap().version).collect()
    };
    assert_eq!(
        versions,
        BTreeSet::from([0x2000_0004, 0x2000_2004, 0x2000_4004, 0x2000_6004])
    );

    // No rolling: ntime only, then the space is exhausted.
    job.version_mask = 0;
    let mut c = JobCursor::new(&job, 0, 1);
    let ntimes: Vec<u32> = std::iter::from_fn(|| c.next_template())
        .map(|t| t.ntime)
        .collect();
    assert_eq!(ntimes, [1000, 1001, 1002]);
}

/// Every (version, ntime, nonce) of a small search space whose sha2 hash meets the target.
fn reference_shares(job: &Job) -> BTreeSet<(u32, u32, u32)> {
    let mut out = BTreeSet::new();
    let mut cursor = JobCursor::new(job, 0, 1);
    while let Some(t) = cursor.next_template() {
        for nonce in job.nonce_start..=job.nonce_end {
            let hash = naive_sha256d(&job.header(&t, nonce).to_bytes());
            if job.target.is_met_by(&hash) {
                out.insert((t.version, t.ntime, nonce));
            }
        }
    }
    out
}

/// Runs the miner over the whole (small) space of `job` and returns what it found.
fn mine_all(job: &Job, backend: Backend, threads: usize, group: usize) -> Vec<Share> {
    let (miner, shares) = Miner::start(MinerConfig {
        threads,
        backend,
        batch: 256,
        group,
    })
    .unwrap();
    let space = job.version_count()
        * job.ntime_count()
        * job.extranonce_count()
        * (u64::from(job.nonce_end - job.nonce_start) + 1);
    miner.replace_job(job.clone()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while miner.hashes() < space {
        assert!(
            Instant::now() < deadline,
            "the miner did not finish its space"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        miner.hashes(),
        space,
        "each nonce of each template exactly once"
    );
    miner.stop();
    shares.try_iter().collect()
}

#[test]
fn the_miner_finds_exactly_the_shares_sha2_finds_across_nonce_wrap_and_threads() {
    let mut job = Job::new(
        9,
        0x2000_0000,
        Rng(7).bytes32(),
        MerkleSource::Root(Rng(8).bytes32()),
        1_700_000_000,
        0x1703_a30c,
        Target::with_top_word(0x0fff_ffff),
    );
    // The range ends at 0xffffffff, then the version rolls (2 bits), then ntime (+1).
    job.nonce_start = u32::MAX - 299;
    job.nonce_end = u32::MAX;
    job.version_mask = 0x0001_8000;
    job.ntime_roll = 1;
    let expected = reference_shares(&job);
    assert!(expected.len() > 50);
    assert!(
        expected.iter().any(|s| s.1 == 1_700_000_001),
        "shares after ntime rolled"
    );
    for backend in Backend::supported() {
        // Groups of 1 (no sharing), 3 (4 versions: a group of 3 then 1) and the default.
        for (threads, group) in [(1, 1), (3, 3), (2, MAX_GROUP)] {
            let shares = mine_all(&job, backend, threads, group);
            let found: BTreeSet<_> = shares
                .iter()
                .map(|s| (s.version, s.ntime, s.nonce))
                .collect();
            let run = format!("{backend} x{threads}, groups of {group}");
            assert_eq!(found.len(), shares.len(), "{run}: no duplicates");
            assert_eq!(found, expected, "{run}");
            for s in &shares {
                assert_eq!(s.job_id, 9);
                let header = BlockHeader {
                    version: s.version,
                    prev_hash: job.prev_hash,
                    merkle_root: s.merkle_root,
                    ntime: s.ntime,
                    nbits: job.nbits,
                    nonce: s.nonce,
                };
                assert_eq!(naive_sha256d(&header.to_bytes()), s.hash);
            }
        }
    }
}

#[test]
fn the_miner_rolls_extranonces_of_extended_jobs() {
    let mut rng = Rng(9);
    let mut job = Job::new(
        11,
        0x2000_0000,
        rng.bytes32(),
        MerkleSource::Coinbase(CoinbaseParts {
            prefix: hex_bytes("0200000001"),
            extranonce_prefix: vec![0xaa, 0xbb, 0xcc],
            extranonce_len: 1,
            extranonce_start: 250,
            suffix: hex_bytes("ffffffff0100f2052a0100000000000000"),
            merkle_path: vec![rng.bytes32(), rng.bytes32()],
        }),
        1_700_000_000,
        0x1703_a30c,
        Target::with_top_word(0x07ff_ffff),
    );
    job.version_mask = 0;
    job.nonce_start = 0;
    job.nonce_end = 99;
    let MerkleSource::Coinbase(cb) = &job.merkle else {
        unreachable!()
    };
    let cb = cb.clone();
    // The reference: build each coinbase by concatenation and climb the path with sha2.
    let mut expected = BTreeSet::new();
    for e in 0..256u32 {
        let extranonce = [(250 + e) as u8];
        let coinbase = [
            &cb.prefix[..],
            &cb.extranonce_prefix,
            &extranonce,
            &cb.suffix,
        ]
        .concat();
        let mut node = sv2_engine::sha256d(&coinbase);
        for sibling in &cb.merkle_path {
            node = sv2_engine::sha256d(&[node, *sibling].concat());
        }
        for nonce in 0..100 {
            let header = BlockHeader {
                version: job.version,
                prev_hash: job.prev_hash,
                merkle_root: node,
                ntime: job.ntime,
                nbits: job.nbits,
                nonce,
            };
            if job.target.is_met_by(&naive_sha256d(&header.to_bytes())) {
                expected.insert((extranonce[0], nonce));
            }
        }
    }
    assert!(expected.len() > 100);
    for backend in Backend::supported() {
        let shares = mine_all(&job, backend, 2, MAX_GROUP);
        let found: BTreeSet<_> = shares
            .iter()
            .map(|s| (s.extranonce.as_slice()[0], s.nonce))
            .collect();
        assert_eq!(found, expected, "{backend}");
        assert!(shares.iter().all(|s| s.extranonce.len() == 1));
    }
}

#[test]
fn replace_job_switches_every_thread_to_the_new_job_and_stop_returns() {
    for backend in Backend::supported() {
        let (miner, shares) = Miner::start(MinerConfig {
            threads: 2,
            backend,
            batch: 4096,
            group: MAX_GROUP,
        })
        .unwrap();
        let mut rng = Rng(10);
        // A job no hash meets: the threads hash it until told otherwise.
        let hopeless = Job::new(
            1,
            0x2000_0000,
            rng.bytes32(),
            MerkleSource::Root(rng.bytes32()),
            5,
            6,
            Target::ZERO,
        );
        miner.replace_job(hopeless).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while miner.hashes() == 0 {
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(1));
        }
        // Every hash meets the next job's target: each thread reports shares as soon as it switches.
        let easy = Job::new(
            2,
            0x2000_0000,
            rng.bytes32(),
            MerkleSource::Root(rng.bytes32()),
            5,
            6,
            Target::MAX,
        );
        miner.replace_job(easy).unwrap();
        let mut nonces_by_slice = [false; 2];
        while nonces_by_slice != [true, true] {
            let share = match shares.recv_timeout(Duration::from_secs(60)) {
                Ok(share) => share,
                Err(RecvTimeoutError::Timeout) => panic!("{backend}: no share of the new job"),
                Err(RecvTimeoutError::Disconnected) => unreachable!(),
            };
            assert_eq!(share.job_id, 2, "{backend}: the hopeless job has no shares");
            nonces_by_slice[(share.nonce >> 31) as usize] = true;
        }
        miner.clear_job();
        miner.stop();
    }
}

#[test]
fn an_invalid_job_is_refused() {
    let (miner, _shares) = Miner::start(MinerConfig::default()).unwrap();
    let mut job = Job::new(
        1,
        1,
        [0; 32],
        MerkleSource::Root([0; 32]),
        0,
        0,
        Target::MAX,
    );
    job.nonce_start = 10;
    job.nonce_end = 9;
    assert!(miner.replace_job(job).is_err());
}
