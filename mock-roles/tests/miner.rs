//! The SV2 mining device core, driven without sockets: every message path (what it mines, ignores,
//! caps or refuses; whether the pool broke a rule is the conformance monitor's to say, tested in
//! conformance/tests/monitor_device_rules.rs), share checks and bookkeeping, and the engine mining real shares whose headers are rebuilt from what
//! the device sent and verified with plain sha2.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use sv2_codec::messages::common::{Reconnect, SetupConnectionError, SetupConnectionSuccess};
use sv2_codec::messages::flags::{
    REQUIRES_EXTENDED_CHANNELS, REQUIRES_FIXED_VERSION, REQUIRES_STANDARD_JOBS,
    REQUIRES_VERSION_ROLLING,
};
use sv2_codec::messages::mining::{
    CloseChannel, NewExtendedMiningJob, NewMiningJob, OpenExtendedMiningChannelSuccess,
    OpenMiningChannelError, OpenStandardMiningChannelSuccess, SetExtranoncePrefix, SetGroupChannel,
    SetNewPrevHash, SetTarget, SubmitSharesError, SubmitSharesSuccess, UpdateChannelError,
};
use sv2_codec::messages::template_distribution::CoinbaseOutputConstraints;
use sv2_codec::types::{Seq0_255, Seq0_64K, Str0_255, B0_32, B0_64K, U256};
use sv2_codec::Message;
use sv2_engine::{Backend, Extranonce, Miner, MinerConfig, Share};
use sv2_mock::miner::{
    ChannelKind, Device, DeviceConfig, Event, Output, Phase, ShareProblem, Work,
    BIP323_VERSION_MASK,
};

const CHANNEL: u32 = 7;
const GROUP: u32 = 100;
const PREV: [u8; 32] = [0x42; 32];
const NBITS: u32 = 0x1d00_ffff;
const MIN_NTIME: u32 = 1_700_000_000;
const VERSION: u32 = 0x2000_0000;

fn sha256d(data: &[u8]) -> [u8; 32] {
    Sha256::digest(Sha256::digest(data)).into()
}

/// A target whose top 32-bit word is `top` and the rest all ones.
fn target_top(top: u32) -> [u8; 32] {
    let mut t = [0xff; 32];
    t[28..].copy_from_slice(&top.to_le_bytes());
    t
}

/// Half of all hashes meet it.
const EASY: u32 = 0x7fff_ffff;

fn le_le(hash: &[u8; 32], target: &[u8; 32]) -> bool {
    hash.iter().rev().cmp(target.iter().rev()) != std::cmp::Ordering::Greater
}

fn header(
    version: u32,
    prev: &[u8; 32],
    root: &[u8; 32],
    ntime: u32,
    nbits: u32,
    nonce: u32,
) -> [u8; 80] {
    let mut h = Vec::with_capacity(80);
    h.extend_from_slice(&version.to_le_bytes());
    h.extend_from_slice(prev);
    h.extend_from_slice(root);
    h.extend_from_slice(&ntime.to_le_bytes());
    h.extend_from_slice(&nbits.to_le_bytes());
    h.extend_from_slice(&nonce.to_le_bytes());
    h.try_into().unwrap()
}

fn root_of(coinbase: &[u8], path: &[[u8; 32]]) -> [u8; 32] {
    let mut node = sha256d(coinbase);
    for sibling in path {
        let mut pair = node.to_vec();
        pair.extend_from_slice(sibling);
        node = sha256d(&pair);
    }
    node
}

/// A coinbase split around its extranonce area (`space` bytes at the end of the scriptSig, after a
/// BIP34 height push): (prefix, suffix). With `segwit`, the BIP141 marker, flag and witness stay in.
fn coinbase_parts(space: usize, segwit: bool) -> (Vec<u8>, Vec<u8>) {
    let mut prefix = 2u32.to_le_bytes().to_vec();
    if segwit {
        prefix.extend_from_slice(&[0, 1]);
    }
    prefix.push(1);
    prefix.extend_from_slice(&[0; 32]);
    prefix.extend_from_slice(&u32::MAX.to_le_bytes());
    prefix.push((4 + space) as u8);
    prefix.extend_from_slice(&[3, 0xc8, 0, 0]);
    let mut suffix = u32::MAX.to_le_bytes().to_vec();
    suffix.push(1);
    suffix.extend_from_slice(&5_000_000_000u64.to_le_bytes());
    suffix.push(22);
    suffix.extend_from_slice(&[0, 20]);
    suffix.extend_from_slice(&[0xab; 20]);
    if segwit {
        suffix.extend_from_slice(&[1, 32]);
        suffix.extend_from_slice(&[0; 32]);
    }
    suffix.extend_from_slice(&0u32.to_le_bytes());
    (prefix, suffix)
}

fn str255(s: &str) -> Str0_255<'static> {
    Str0_255::new(s.as_bytes().to_vec()).unwrap()
}

fn sends(out: &[Output]) -> Vec<Message<'static>> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

fn events(out: &[Output]) -> Vec<Event> {
    out.iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

fn works(out: &[Output]) -> Vec<Work> {
    out.iter()
        .filter_map(|o| match o {
            Output::Work(w) => Some(w.clone()),
            _ => None,
        })
        .collect()
}

fn last_work(out: &[Output]) -> Work {
    works(out).pop().expect("a work output")
}

fn config(kind: ChannelKind) -> DeviceConfig {
    DeviceConfig {
        channel: kind,
        user_identity: "tester.worker1".into(),
        nominal_hash_rate: 1.5e9,
        min_extranonce_size: 4,
        ..DeviceConfig::default()
    }
}

fn success(flags: u32) -> Message<'static> {
    SetupConnectionSuccess {
        used_version: 2,
        flags,
    }
    .into()
}

fn standard_open(target: [u8; 32]) -> Message<'static> {
    OpenStandardMiningChannelSuccess {
        request_id: 1,
        channel_id: CHANNEL,
        target: U256(target),
        extranonce_prefix: B0_32::new(vec![1, 2, 3, 4]).unwrap(),
        group_channel_id: GROUP,
    }
    .into()
}

fn extended_open(target: [u8; 32], prefix: Vec<u8>, size: u16) -> Message<'static> {
    OpenExtendedMiningChannelSuccess {
        request_id: 1,
        channel_id: CHANNEL,
        target: U256(target),
        extranonce_size: size,
        extranonce_prefix: B0_32::new(prefix).unwrap(),
        group_channel_id: GROUP,
    }
    .into()
}

fn standard_job(job_id: u32, min_ntime: Option<u32>, root: [u8; 32]) -> Message<'static> {
    NewMiningJob {
        channel_id: CHANNEL,
        job_id,
        min_ntime,
        version: VERSION,
        merkle_root: U256(root),
    }
    .into()
}

fn extended_job(
    channel_id: u32,
    job_id: u32,
    min_ntime: Option<u32>,
    rolling: bool,
    prefix: &[u8],
    suffix: &[u8],
    path: &[[u8; 32]],
) -> Message<'static> {
    NewExtendedMiningJob {
        channel_id,
        job_id,
        min_ntime,
        version: VERSION,
        version_rolling_allowed: rolling,
        merkle_path: Seq0_255::new(path.iter().map(|h| U256(*h)).collect()).unwrap(),
        coinbase_tx_prefix: B0_64K::new(prefix.to_vec()).unwrap(),
        coinbase_tx_suffix: B0_64K::new(suffix.to_vec()).unwrap(),
    }
    .into()
}

fn prev_hash(channel_id: u32, job_id: u32) -> Message<'static> {
    SetNewPrevHash {
        channel_id,
        job_id,
        prev_hash: U256(PREV),
        min_ntime: MIN_NTIME,
        nbits: NBITS,
    }
    .into()
}

/// A device through setup and channel opening.
fn opened(config: DeviceConfig, open: Message<'static>, now: Instant) -> Device {
    let mut d = Device::new(config).unwrap();
    d.start();
    d.handle(&success(0), now);
    let out = d.handle(&open, now);
    assert!(
        events(&out)
            .iter()
            .any(|e| matches!(e, Event::ChannelOpened { .. })),
        "{out:?}"
    );
    d
}

/// A standard device mining job 1 at `target`; returns it and the work.
fn mining_standard(config: DeviceConfig, target: [u8; 32], now: Instant) -> (Device, Work) {
    let mut d = opened(config, standard_open(target), now);
    d.handle(&standard_job(1, None, [0x11; 32]), now);
    let out = d.handle(&prev_hash(CHANNEL, 1), now);
    (d, last_work(&out))
}

fn extended_coinbase() -> (Vec<u8>, Vec<u8>, Vec<[u8; 32]>) {
    let (prefix, suffix) = coinbase_parts(4 + 8, false);
    (prefix, suffix, vec![[0x33; 32], [0x44; 32]])
}

/// An extended device (prefix 4 bytes, extranonce 8) mining job 1 at `target`.
fn mining_extended(
    config: DeviceConfig,
    target: [u8; 32],
    rolling: bool,
    now: Instant,
) -> (Device, Work) {
    let mut d = opened(config, extended_open(target, vec![9, 9, 9, 9], 8), now);
    let (prefix, suffix, path) = extended_coinbase();
    let out = d.handle(
        &extended_job(CHANNEL, 1, None, rolling, &prefix, &suffix, &path),
        now,
    );
    assert!(
        events(&out)
            .iter()
            .any(|e| matches!(e, Event::JobReceived { job_id: 1, .. })),
        "{out:?}"
    );
    let out = d.handle(&prev_hash(CHANNEL, 1), now);
    (d, last_work(&out))
}

/// The merkle root and header a share of `work` stands for, rebuilt here from the job's parts.
fn share_header(work: &Work, version: u32, extranonce: &[u8], ntime: u32, nonce: u32) -> [u8; 80] {
    let root = match &work.job.merkle {
        sv2_engine::MerkleSource::Root(r) => *r,
        sv2_engine::MerkleSource::Coinbase(cb) => {
            let mut coinbase = cb.prefix.clone();
            coinbase.extend_from_slice(&cb.extranonce_prefix);
            coinbase.extend_from_slice(extranonce);
            coinbase.extend_from_slice(&cb.suffix);
            root_of(&coinbase, &cb.merkle_path)
        }
    };
    header(
        version,
        &work.job.prev_hash,
        &root,
        ntime,
        work.job.nbits,
        nonce,
    )
}

/// Brute-forces a share of `work` meeting `target` (or, with `meet = false`, one that does not).
fn find_share(
    work: &Work,
    extranonce: &[u8],
    version: u32,
    target: &[u8; 32],
    meet: bool,
) -> Share {
    for nonce in 0u32.. {
        let h = share_header(work, version, extranonce, work.job.ntime, nonce);
        let hash = sha256d(&h);
        if le_le(&hash, target) == meet {
            let mut root = [0u8; 32];
            root.copy_from_slice(&h[36..68]);
            return Share {
                job_id: work.job.id,
                nonce,
                ntime: work.job.ntime,
                version,
                extranonce: Extranonce::new(extranonce).unwrap(),
                merkle_root: root,
                hash,
            };
        }
    }
    unreachable!()
}

// ---------------------------------------------------------------------------------------------------
// Setup and channel opening

#[test]
fn start_sends_setup_connection_with_derived_or_given_flags() {
    let mut d = Device::new(config(ChannelKind::Standard)).unwrap();
    assert_eq!(d.phase(), Phase::NotStarted);
    let out = sends(&d.start());
    let Message::SetupConnection(s) = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!((s.protocol, s.min_version, s.max_version), (0, 2, 2));
    assert_eq!(s.flags, REQUIRES_STANDARD_JOBS | REQUIRES_VERSION_ROLLING);
    assert_eq!(s.vendor.as_bytes(), b"sv2-toolkit");
    assert_eq!(d.phase(), Phase::AwaitingSetup);
    assert!(d.start().is_empty(), "start only once");

    let mut c = config(ChannelKind::Extended);
    c.version_rolling = false;
    let Message::SetupConnection(s) = &sends(&Device::new(c.clone()).unwrap().start())[0] else {
        panic!()
    };
    assert_eq!(s.flags, 0);
    c.setup_flags = Some(0b111);
    let Message::SetupConnection(s) = &sends(&Device::new(c).unwrap().start())[0] else {
        panic!()
    };
    assert_eq!(s.flags, 0b111);
}

#[test]
fn configuration_is_checked_against_wire_limits() {
    let mut c = config(ChannelKind::Standard);
    c.user_identity = "x".repeat(256);
    assert!(Device::new(c).is_err());
    let mut c = config(ChannelKind::Extended);
    c.min_extranonce_size = 33;
    assert!(Device::new(c).is_err());
    let mut c = config(ChannelKind::Extended);
    c.nominal_hash_rate = f32::NAN;
    assert!(Device::new(c).is_err());
}

#[test]
fn setup_success_opens_the_configured_channel() {
    let now = Instant::now();
    let mut d = Device::new(config(ChannelKind::Standard)).unwrap();
    d.start();
    let out = d.handle(&success(0), now);
    assert!(events(&out).contains(&Event::SetupDone {
        used_version: 2,
        flags: 0
    }));
    let Message::OpenStandardMiningChannel(o) = &sends(&out)[0] else {
        panic!("{out:?}")
    };
    assert_eq!(o.request_id, 1);
    assert_eq!(o.user_identity.as_bytes(), b"tester.worker1");
    assert_eq!(o.nominal_hash_rate, 1.5e9);
    assert_eq!(o.max_target.0, [0xff; 32]);
    assert_eq!(d.phase(), Phase::AwaitingChannel);

    let mut d = Device::new(config(ChannelKind::Extended)).unwrap();
    d.start();
    let out = d.handle(&success(REQUIRES_EXTENDED_CHANNELS), now);
    let Message::OpenExtendedMiningChannel(o) = &sends(&out)[0] else {
        panic!("{out:?}")
    };
    assert_eq!(o.min_extranonce_size, 4);
    let out = d.handle(&extended_open(target_top(EASY), vec![1, 2], 6), now);
    assert_eq!(
        events(&out),
        vec![Event::ChannelOpened {
            channel_id: CHANNEL,
            kind: ChannelKind::Extended,
            target: target_top(EASY),
            effective_target: target_top(EASY),
            extranonce_prefix: vec![1, 2],
            extranonce_size: 6,
            group_channel_id: GROUP,
        }]
    );
    assert_eq!(d.phase(), Phase::AwaitingJob);
    assert_eq!(d.channel_id(), Some(CHANNEL));
}

#[test]
fn setup_error_and_channel_error_are_reported_and_fail() {
    let now = Instant::now();
    let mut d = Device::new(config(ChannelKind::Standard)).unwrap();
    d.start();
    let out = d.handle(
        &SetupConnectionError {
            flags: REQUIRES_VERSION_ROLLING,
            error_code: str255("unsupported-feature-flags"),
        }
        .into(),
        now,
    );
    assert_eq!(
        events(&out),
        vec![Event::SetupRefused {
            flags: REQUIRES_VERSION_ROLLING,
            error_code: "unsupported-feature-flags".into()
        }]
    );
    assert_eq!(d.phase(), Phase::Failed);

    let mut d = Device::new(config(ChannelKind::Standard)).unwrap();
    d.start();
    d.handle(&success(0), now);
    let wrong: Message = OpenMiningChannelError {
        request_id: 99,
        error_code: str255("max-target-out-of-range"),
    }
    .into();
    // An answer to no request of the device's: ignored.
    let out = d.handle(&wrong, now);
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(d.phase(), Phase::AwaitingChannel);
    let right: Message = OpenMiningChannelError {
        request_id: 1,
        error_code: str255("max-target-out-of-range"),
    }
    .into();
    let out = d.handle(&right, now);
    assert!(matches!(
        &events(&out)[..],
        [Event::ChannelRefused { request_id: 1, error_code }] if error_code == "max-target-out-of-range"
    ));
    assert_eq!(d.phase(), Phase::Failed);
}

#[test]
fn setup_success_with_an_unoffered_version_and_fixed_version_still_opens_the_channel() {
    let now = Instant::now();
    let mut d = Device::new(config(ChannelKind::Standard)).unwrap();
    d.start();
    let out = d.handle(
        &SetupConnectionSuccess {
            used_version: 3,
            flags: REQUIRES_FIXED_VERSION,
        }
        .into(),
        now,
    );
    // Carries on: the channel is opened.
    assert_eq!(sends(&out).len(), 1);
    assert_eq!(d.phase(), Phase::AwaitingChannel);
}

#[test]
fn messages_before_setup_are_ignored() {
    let now = Instant::now();
    let mut d = Device::new(config(ChannelKind::Standard)).unwrap();
    let out = d.handle(&success(0), now);
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(d.phase(), Phase::NotStarted);
    d.start();
    let out = d.handle(&standard_job(1, None, [0; 32]), now);
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(d.phase(), Phase::AwaitingSetup);
}

#[test]
fn open_success_checks_request_kind_target_group_and_extranonce() {
    let now = Instant::now();
    // Target above max_target: capped.
    let mut c = config(ChannelKind::Standard);
    c.max_target = target_top(0x0000_ffff);
    let mut d = Device::new(c).unwrap();
    d.start();
    d.handle(&success(0), now);
    let out = d.handle(&standard_open(target_top(EASY)), now);
    assert!(events(&out).contains(&Event::ChannelOpened {
        channel_id: CHANNEL,
        kind: ChannelKind::Standard,
        target: target_top(EASY),
        effective_target: target_top(0x0000_ffff),
        extranonce_prefix: vec![1, 2, 3, 4],
        extranonce_size: 0,
        group_channel_id: GROUP,
    }));
    assert_eq!(d.target(), Some(target_top(0x0000_ffff)));

    // Group id colliding, extranonce too small and too long: the channel is opened as offered.
    let mut d = Device::new(config(ChannelKind::Extended)).unwrap();
    d.start();
    d.handle(&success(0), now);
    let open: Message = OpenExtendedMiningChannelSuccess {
        request_id: 1,
        channel_id: CHANNEL,
        target: U256(target_top(EASY)),
        extranonce_size: 2,
        extranonce_prefix: B0_32::new(vec![0; 31]).unwrap(),
        group_channel_id: CHANNEL,
    }
    .into();
    let out = d.handle(&open, now);
    assert!(events(&out).iter().any(|e| matches!(
        e,
        Event::ChannelOpened {
            extranonce_size: 2,
            group_channel_id: CHANNEL,
            ..
        }
    )));
    assert_eq!(d.phase(), Phase::AwaitingJob);

    let mut d = Device::new(config(ChannelKind::Extended)).unwrap();
    d.start();
    d.handle(&success(0), now);
    // The wrong kind: opened as the pool says.
    let out = d.handle(&standard_open(target_top(EASY)), now);
    assert!(events(&out).iter().any(|e| matches!(
        e,
        Event::ChannelOpened {
            kind: ChannelKind::Standard,
            ..
        }
    )));
    // A second success is for no pending request: ignored.
    let out = d.handle(&standard_open(target_top(EASY)), now);
    assert!(out.is_empty(), "{out:?}");
}

// ---------------------------------------------------------------------------------------------------
// Jobs and prevhash

#[test]
fn future_standard_job_is_mined_after_its_set_new_prev_hash() {
    let t0 = Instant::now();
    let mut d = opened(
        config(ChannelKind::Standard),
        standard_open(target_top(EASY)),
        t0,
    );
    let later = t0 + Duration::from_millis(1500);
    let out = d.handle(&standard_job(1, None, [0x11; 32]), later);
    assert!(works(&out).is_empty());
    assert_eq!(
        events(&out),
        vec![Event::JobReceived {
            channel_id: CHANNEL,
            job_id: 1,
            extended: false,
            future: true,
            since_setup: Duration::from_millis(1500),
        }]
    );
    assert_eq!(d.phase(), Phase::AwaitingJob);
    let out = d.handle(&prev_hash(CHANNEL, 1), later);
    let w = last_work(&out);
    assert_eq!((w.channel_id, w.job_id), (CHANNEL, 1));
    assert_eq!(w.job.prev_hash, PREV);
    assert_eq!(w.job.nbits, NBITS);
    assert_eq!(w.job.ntime, MIN_NTIME);
    assert_eq!(w.job.ntime_roll, 0);
    assert_eq!(w.job.version, VERSION);
    assert_eq!(w.job.version_mask, BIP323_VERSION_MASK);
    assert_eq!(w.job.target.0, target_top(EASY));
    assert_eq!(w.job.merkle, sv2_engine::MerkleSource::Root([0x11; 32]));
    assert!(events(&out).contains(&Event::JobActivated {
        job_id: 1,
        prev_hash: PREV,
        ntime: MIN_NTIME,
        nbits: NBITS
    }));
    assert_eq!(d.phase(), Phase::Mining);
    assert_eq!(d.active_job(), Some(1));
}

#[test]
fn job_with_min_ntime_is_mined_at_once_on_the_last_prev_hash() {
    let now = Instant::now();
    let (mut d, first) = mining_standard(config(ChannelKind::Standard), target_top(EASY), now);
    let out = d.handle(&standard_job(2, Some(MIN_NTIME + 5), [0x22; 32]), now);
    let w = last_work(&out);
    assert_eq!(w.job_id, 2);
    assert_eq!(w.job.ntime, MIN_NTIME + 5);
    assert_eq!(w.job.prev_hash, PREV);
    assert_ne!(w.job.id, first.job.id);
    // Shares of the first job stay valid under the same prevhash.
    let s = find_share(&first, &[], VERSION, &target_top(EASY), true);
    assert!(matches!(
        sends(&d.share_found(&s, now))[..],
        [Message::SubmitSharesStandard(_)]
    ));
    // Below the prevhash's min_ntime: mined from its min_ntime as given.
    let w = last_work(&d.handle(&standard_job(3, Some(MIN_NTIME - 1), [0x33; 32]), now));
    assert_eq!((w.job_id, w.job.ntime), (3, MIN_NTIME - 1));
}

#[test]
fn unknown_prevhash_reuse_first_job_and_no_prevhash() {
    let now = Instant::now();
    let mut d = opened(
        config(ChannelKind::Standard),
        standard_open(target_top(EASY)),
        now,
    );
    // First job with min_ntime set, and before any prevhash.
    // No prevhash to mine it on: received, not mined.
    let out = d.handle(&standard_job(5, Some(MIN_NTIME), [1; 32]), now);
    assert!(events(&out)
        .iter()
        .any(|e| matches!(e, Event::JobReceived { job_id: 5, .. })));
    assert!(works(&out).is_empty());
    // A prevhash naming a job never sent: nothing to mine.
    let out = d.handle(&prev_hash(CHANNEL, 77), now);
    assert!(out.contains(&Output::StopWork));
    assert!(works(&out).is_empty());
    // Reuse of a pending future job id: the latest job takes the id.
    d.handle(&standard_job(8, None, [2; 32]), now);
    let out = d.handle(&standard_job(8, None, [3; 32]), now);
    assert!(events(&out)
        .iter()
        .any(|e| matches!(e, Event::JobReceived { job_id: 8, .. })));
    // The reused id's latest job is the one mined.
    let w = last_work(&d.handle(&prev_hash(CHANNEL, 8), now));
    assert_eq!(w.job.merkle, sv2_engine::MerkleSource::Root([3; 32]));
}

#[test]
fn set_new_prev_hash_invalidates_every_other_job() {
    let now = Instant::now();
    let (mut d, first) = mining_standard(config(ChannelKind::Standard), target_top(EASY), now);
    let stale = find_share(&first, &[], VERSION, &target_top(EASY), true);
    d.handle(&standard_job(2, None, [0x22; 32]), now);
    d.handle(&standard_job(3, None, [0x33; 32]), now);
    let w = last_work(&d.handle(&prev_hash(CHANNEL, 2), now));
    assert_eq!(w.job_id, 2);
    let out = d.share_found(&stale, now);
    assert!(sends(&out).is_empty());
    assert_eq!(
        events(&out),
        vec![Event::ShareDropped {
            job_id: 1,
            problem: ShareProblem::Stale
        }]
    );
    // Future job 3 was made invalid by the prevhash for 2: nothing to mine.
    let out = d.handle(&prev_hash(CHANNEL, 3), now);
    assert!(works(&out).is_empty(), "{out:?}");
    assert!(out.contains(&Output::StopWork));
}

#[test]
fn channel_kind_mismatches() {
    let now = Instant::now();
    // NewMiningJob on an extended channel: ignored, never mined.
    let mut d = opened(
        config(ChannelKind::Extended),
        extended_open(target_top(EASY), vec![1], 4),
        now,
    );
    let out = d.handle(&standard_job(1, None, [1; 32]), now);
    assert!(out.is_empty(), "{out:?}");
    let out = d.handle(&prev_hash(CHANNEL, 1), now);
    assert!(works(&out).is_empty(), "{out:?}");

    // NewExtendedMiningJob addressed to a standard channel: mined as a standard job with the merkle
    // root of prefix || extranonce_prefix || suffix.
    let mut d = opened(
        config(ChannelKind::Standard),
        standard_open(target_top(EASY)),
        now,
    );
    let (prefix, suffix) = coinbase_parts(4, false);
    let out = d.handle(
        &extended_job(CHANNEL, 1, None, true, &prefix, &suffix, &[[5; 32]]),
        now,
    );
    assert!(events(&out).iter().any(|e| matches!(
        e,
        Event::JobReceived {
            job_id: 1,
            extended: true,
            ..
        }
    )));
    let w = last_work(&d.handle(&prev_hash(CHANNEL, 1), now));
    let sv2_engine::MerkleSource::Coinbase(cb) = &w.job.merkle else {
        panic!()
    };
    assert_eq!(cb.extranonce_prefix, vec![1, 2, 3, 4]);
    assert_eq!(cb.extranonce_len, 0);
    let s = find_share(&w, &[], VERSION, &target_top(EASY), true);
    let mut coinbase = prefix.clone();
    coinbase.extend_from_slice(&[1, 2, 3, 4]);
    coinbase.extend_from_slice(&suffix);
    assert_eq!(s.merkle_root, root_of(&coinbase, &[[5; 32]]));
    assert!(matches!(
        sends(&d.share_found(&s, now))[..],
        [Message::SubmitSharesStandard(_)]
    ));
}

#[test]
fn extended_jobs_are_received_whatever_their_coinbase() {
    // Whether the coinbase is stripped and a coinbase is the monitor's to judge; the device takes
    // each job (a bad one gives shares the pool rejects).
    let now = Instant::now();
    let mut d = opened(
        config(ChannelKind::Extended),
        extended_open(target_top(EASY), vec![9; 4], 8),
        now,
    );
    let (segwit_prefix, segwit_suffix) = coinbase_parts(12, true);
    let (short_prefix, short_suffix) = coinbase_parts(11, false);
    let (mut other_prefix, other_suffix) = coinbase_parts(12, false);
    other_prefix[5] = 1;
    let (prefix, suffix) = coinbase_parts(12, false);
    for (job_id, p, s) in [
        (1, &segwit_prefix, &segwit_suffix),
        (2, &short_prefix, &short_suffix),
        (3, &other_prefix, &other_suffix),
        (4, &prefix, &suffix),
    ] {
        let out = d.handle(&extended_job(CHANNEL, job_id, None, true, p, s, &[]), now);
        assert_eq!(
            events(&out),
            vec![Event::JobReceived {
                channel_id: CHANNEL,
                job_id,
                extended: true,
                future: true,
                since_setup: Duration::ZERO,
            }]
        );
    }
}

#[test]
fn extended_job_work_carries_the_coinbase_layout() {
    let now = Instant::now();
    let (_, w) = mining_extended(config(ChannelKind::Extended), target_top(EASY), true, now);
    let (prefix, suffix, path) = extended_coinbase();
    let sv2_engine::MerkleSource::Coinbase(cb) = &w.job.merkle else {
        panic!()
    };
    assert_eq!(cb.prefix, prefix);
    assert_eq!(cb.suffix, suffix);
    assert_eq!(cb.merkle_path, path);
    assert_eq!(cb.extranonce_prefix, vec![9; 4]);
    assert_eq!(cb.extranonce_len, 8);
    assert_eq!(w.job.version_mask, BIP323_VERSION_MASK);
}

#[test]
fn version_rolling_rules() {
    let now = Instant::now();
    // The job forbids rolling although the device required it: the version is fixed.
    let (_, w) = mining_extended(config(ChannelKind::Extended), target_top(EASY), true, now);
    assert_eq!(w.job.version_mask, BIP323_VERSION_MASK);
    let mut d = opened(
        config(ChannelKind::Extended),
        extended_open(target_top(EASY), vec![9; 4], 8),
        now,
    );
    let (prefix, suffix, path) = extended_coinbase();
    let out = d.handle(
        &extended_job(CHANNEL, 1, None, false, &prefix, &suffix, &path),
        now,
    );
    assert!(events(&out)
        .iter()
        .any(|e| matches!(e, Event::JobReceived { job_id: 1, .. })));
    assert_eq!(
        last_work(&d.handle(&prev_hash(CHANNEL, 1), now))
            .job
            .version_mask,
        0
    );

    // REQUIRES_FIXED_VERSION: standard jobs are mined with the version as given, and so is an
    // extended job allowing rolling.
    let mut c = config(ChannelKind::Standard);
    c.setup_flags = Some(REQUIRES_STANDARD_JOBS);
    let mut d = Device::new(c).unwrap();
    d.start();
    d.handle(&success(REQUIRES_FIXED_VERSION), now);
    d.handle(&standard_open(target_top(EASY)), now);
    d.handle(&standard_job(1, None, [1; 32]), now);
    assert_eq!(
        last_work(&d.handle(&prev_hash(CHANNEL, 1), now))
            .job
            .version_mask,
        0
    );

    let mut c = config(ChannelKind::Extended);
    c.version_rolling = false;
    let mut d = Device::new(c).unwrap();
    d.start();
    d.handle(&success(REQUIRES_FIXED_VERSION), now);
    d.handle(&extended_open(target_top(EASY), vec![9; 4], 8), now);
    let out = d.handle(
        &extended_job(CHANNEL, 1, None, true, &prefix, &suffix, &path),
        now,
    );
    assert!(events(&out)
        .iter()
        .any(|e| matches!(e, Event::JobReceived { job_id: 1, .. })));
    // Rolling not wanted: never rolled.
    assert_eq!(
        last_work(&d.handle(&prev_hash(CHANNEL, 1), now))
            .job
            .version_mask,
        0
    );
}

// ---------------------------------------------------------------------------------------------------
// Targets, extranonce prefix, groups

#[test]
fn set_target_reissues_work_and_caps_at_max_target() {
    let now = Instant::now();
    let mut c = config(ChannelKind::Standard);
    c.max_target = target_top(0x00ff_ffff);
    let (mut d, w1) = mining_standard(c, target_top(0x000f_ffff), now);
    assert_eq!(w1.job.target.0, target_top(0x000f_ffff));
    let out = d.handle(
        &SetTarget {
            channel_id: CHANNEL,
            maximum_target: U256(target_top(0x0000_ffff)),
        }
        .into(),
        now,
    );
    let w2 = last_work(&out);
    assert_eq!(w2.job.target.0, target_top(0x0000_ffff));
    assert_eq!(w2.job_id, 1);
    // Above max_target (to the group): capped.
    let out = d.handle(
        &SetTarget {
            channel_id: GROUP,
            maximum_target: U256(target_top(EASY)),
        }
        .into(),
        now,
    );
    assert!(events(&out).contains(&Event::TargetChanged {
        target: target_top(EASY),
        effective_target: target_top(0x00ff_ffff)
    }));
    assert_eq!(d.target(), Some(target_top(0x00ff_ffff)));
    assert_eq!(last_work(&out).job.target.0, target_top(0x00ff_ffff));
    // For an unknown channel: ignored, nothing changes.
    let out = d.handle(
        &SetTarget {
            channel_id: 999,
            maximum_target: U256(target_top(1)),
        }
        .into(),
        now,
    );
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(d.target(), Some(target_top(0x00ff_ffff)));
}

#[test]
fn a_job_received_with_min_ntime_keeps_its_target_as_a_bound() {
    let now = Instant::now();
    let (mut d, _) = mining_standard(config(ChannelKind::Standard), target_top(0x0fff_ffff), now);
    let w = last_work(&d.handle(&standard_job(2, Some(MIN_NTIME), [2; 32]), now));
    assert_eq!(w.job.target.0, target_top(0x0fff_ffff));
    // An easier channel target does not loosen job 2 (received with min_ntime set).
    let out = d.handle(
        &SetTarget {
            channel_id: CHANNEL,
            maximum_target: U256(target_top(EASY)),
        }
        .into(),
        now,
    );
    assert!(works(&out).is_empty(), "{out:?}");
    let between = find_share(&w, &[], VERSION, &target_top(0x0fff_ffff), false);
    assert!(le_le(&between.hash, &target_top(EASY)));
    let out = d.share_found(&between, now);
    assert_eq!(
        events(&out),
        vec![Event::ShareDropped {
            job_id: 2,
            problem: ShareProblem::AboveTarget
        }]
    );
}

#[test]
fn set_extranonce_prefix_applies_to_later_jobs_only() {
    let now = Instant::now();
    let (mut d, w1) = mining_extended(config(ChannelKind::Extended), target_top(EASY), true, now);
    let out = d.handle(
        &SetExtranoncePrefix {
            channel_id: CHANNEL,
            extranonce_prefix: B0_32::new(vec![7; 4]).unwrap(),
        }
        .into(),
        now,
    );
    assert_eq!(
        events(&out),
        vec![Event::ExtranoncePrefixChanged {
            extranonce_prefix: vec![7; 4]
        }]
    );
    // The current job keeps its prefix: its shares are still good.
    let s = find_share(&w1, &[0; 8], VERSION, &target_top(EASY), true);
    assert_eq!(sends(&d.share_found(&s, now)).len(), 1);
    let (prefix, suffix, path) = extended_coinbase();
    let w2 = last_work(&d.handle(
        &extended_job(CHANNEL, 2, Some(MIN_NTIME), true, &prefix, &suffix, &path),
        now,
    ));
    let sv2_engine::MerkleSource::Coinbase(cb) = &w2.job.merkle else {
        panic!()
    };
    assert_eq!(cb.extranonce_prefix, vec![7; 4]);

    // To the group: ignored. Too long for the extranonce size: taken (jobs then cannot be mined).
    let out = d.handle(
        &SetExtranoncePrefix {
            channel_id: GROUP,
            extranonce_prefix: B0_32::new(vec![1]).unwrap(),
        }
        .into(),
        now,
    );
    assert!(out.is_empty(), "{out:?}");
    let out = d.handle(
        &SetExtranoncePrefix {
            channel_id: CHANNEL,
            extranonce_prefix: B0_32::new(vec![1; 25]).unwrap(),
        }
        .into(),
        now,
    );
    assert_eq!(
        events(&out),
        vec![Event::ExtranoncePrefixChanged {
            extranonce_prefix: vec![1; 25]
        }]
    );
    // A job that cannot fit: reported, not mined.
    let out = d.handle(
        &extended_job(CHANNEL, 3, Some(MIN_NTIME), true, &prefix, &suffix, &path),
        now,
    );
    assert!(works(&out).is_empty());
    assert!(events(&out)
        .iter()
        .any(|e| matches!(e, Event::CannotMine { job_id: 3, .. })));
}

#[test]
fn set_group_channel_moves_the_channel_and_jobs_follow_the_group() {
    let now = Instant::now();
    let mut d = opened(
        config(ChannelKind::Extended),
        extended_open(target_top(EASY), vec![9; 4], 8),
        now,
    );
    let out = d.handle(
        &SetGroupChannel {
            group_channel_id: 200,
            channel_ids: Seq0_64K::new(vec![CHANNEL, 8]).unwrap(),
        }
        .into(),
        now,
    );
    assert_eq!(
        events(&out),
        vec![Event::GroupChannel {
            group_channel_id: 200,
            channel_ids: vec![CHANNEL, 8]
        }]
    );
    let (prefix, suffix, path) = extended_coinbase();
    let out = d.handle(
        &extended_job(200, 1, None, true, &prefix, &suffix, &path),
        now,
    );
    assert!(events(&out)
        .iter()
        .any(|e| matches!(e, Event::JobReceived { job_id: 1, .. })));
    assert_eq!(last_work(&d.handle(&prev_hash(200, 1), now)).job_id, 1);
    // The old group no longer addresses the channel: ignored.
    let out = d.handle(&prev_hash(GROUP, 1), now);
    assert!(out.is_empty(), "{out:?}");
    // A group id equal to the channel id: the channel stays where it is.
    d.handle(
        &SetGroupChannel {
            group_channel_id: CHANNEL,
            channel_ids: Seq0_64K::new(vec![CHANNEL]).unwrap(),
        }
        .into(),
        now,
    );
    assert_eq!(last_work(&d.handle(&prev_hash(200, 1), now)).job_id, 1);

    // With REQUIRES_STANDARD_JOBS, SetGroupChannel and group extended jobs are still followed.
    let mut d = opened(
        config(ChannelKind::Standard),
        standard_open(target_top(EASY)),
        now,
    );
    let out = d.handle(
        &SetGroupChannel {
            group_channel_id: GROUP,
            channel_ids: Seq0_64K::new(vec![CHANNEL]).unwrap(),
        }
        .into(),
        now,
    );
    assert_eq!(events(&out).len(), 1, "{out:?}");
    let (prefix, suffix) = coinbase_parts(4, false);
    let out = d.handle(
        &extended_job(GROUP, 1, None, true, &prefix, &suffix, &[]),
        now,
    );
    assert!(events(&out).iter().any(|e| matches!(
        e,
        Event::JobReceived {
            channel_id: GROUP,
            job_id: 1,
            ..
        }
    )));
}

// ---------------------------------------------------------------------------------------------------
// Shares

/// A share refused after its job was replaced while it was in flight is stale by the protocol's
/// state, whatever code the pool uses: "invalid-job-id" here, as pools answer a share that crossed a
/// SetNewPrevHash. One refused on a job still current is not, even with the code "stale-share".
#[test]
fn a_share_whose_job_was_replaced_in_flight_is_stale_whatever_the_code() {
    let now = Instant::now();
    let (mut d, w) = mining_standard(config(ChannelKind::Standard), target_top(EASY), now);
    let mut seqs = Vec::new();
    for i in 0..2u32 {
        let s = find_share(&w, &[], VERSION | (i << 5), &target_top(EASY), true);
        let out = d.share_found(&s, now);
        let Message::SubmitSharesStandard(m) = &sends(&out)[0] else {
            panic!("{out:?}")
        };
        seqs.push(m.sequence_number);
    }
    let rejected = |d: &mut Device, seq: u32, code: &str| {
        let out = d.handle(
            &SubmitSharesError {
                channel_id: CHANNEL,
                sequence_number: seq,
                error_code: str255(code),
            }
            .into(),
            now,
        );
        events(&out)
            .into_iter()
            .find_map(|e| match e {
                Event::ShareRejected { stale, .. } => Some(stale),
                _ => None,
            })
            .expect("a ShareRejected event")
    };
    // Job 1 is still current: a refusal is the share's own fault, whatever the code.
    assert!(!rejected(&mut d, seqs[0], "stale-share"));
    // A new block: job 2 replaces job 1 while the second share is in flight.
    d.handle(&standard_job(2, None, [0x22; 32]), now);
    d.handle(&prev_hash(CHANNEL, 2), now);
    assert!(rejected(&mut d, seqs[1], "invalid-job-id"));
    assert_eq!(d.counters().rejected, 2);
    assert_eq!(d.counters().stale, 1);
}

#[test]
fn shares_are_submitted_with_increasing_sequence_numbers_and_settled() {
    let now = Instant::now();
    let (mut d, w) = mining_standard(config(ChannelKind::Standard), target_top(EASY), now);
    let mut seqs = Vec::new();
    for i in 0..4u32 {
        // Distinct shares: different versions inside the mask.
        let version = VERSION | (i << 5);
        let s = find_share(&w, &[], version, &target_top(EASY), true);
        let out = d.share_found(&s, now);
        let Message::SubmitSharesStandard(m) = &sends(&out)[0] else {
            panic!("{out:?}")
        };
        assert_eq!((m.channel_id, m.job_id), (CHANNEL, 1));
        assert_eq!((m.nonce, m.ntime, m.version), (s.nonce, s.ntime, version));
        seqs.push(m.sequence_number);
    }
    assert_eq!(seqs, vec![0, 1, 2, 3]);
    assert_eq!(d.outstanding(), 4);

    let out = d.handle(
        &SubmitSharesError {
            channel_id: CHANNEL,
            sequence_number: 1,
            error_code: str255("invalid-nonce"),
        }
        .into(),
        now,
    );
    assert_eq!(
        events(&out),
        vec![Event::ShareRejected {
            sequence_number: 1,
            error_code: "invalid-nonce".into(),
            stale: false,
        }]
    );
    let out = d.handle(
        &SubmitSharesSuccess {
            channel_id: CHANNEL,
            last_sequence_number: 2,
            new_submits_accepted_count: 2,
            new_shares_sum: 20,
        }
        .into(),
        now,
    );
    assert_eq!(
        events(&out),
        vec![Event::SharesAccepted {
            last_sequence_number: 2,
            new_submits_accepted_count: 2,
            new_shares_sum: 20
        }]
    );
    assert_eq!(d.outstanding(), 1);
    let c = d.counters();
    assert_eq!(
        (c.submitted, c.accepted, c.rejected, c.shares_sum),
        (4, 2, 1, 20)
    );

    // Odd answers (an error for a settled share, a success beyond what was sent with a count larger
    // than what was outstanding, an error for a share never sent) are counted as they come.
    d.handle(
        &SubmitSharesError {
            channel_id: CHANNEL,
            sequence_number: 0,
            error_code: str255("x"),
        }
        .into(),
        now,
    );
    assert_eq!((d.counters().rejected, d.outstanding()), (2, 1));
    d.handle(
        &SubmitSharesSuccess {
            channel_id: CHANNEL,
            last_sequence_number: 9,
            new_submits_accepted_count: 3,
            new_shares_sum: 0,
        }
        .into(),
        now,
    );
    assert_eq!((d.counters().accepted, d.outstanding()), (5, 0));
    let out = d.handle(
        &SubmitSharesError {
            channel_id: CHANNEL,
            sequence_number: 50,
            error_code: str255("x"),
        }
        .into(),
        now,
    );
    assert_eq!(
        events(&out),
        vec![Event::ShareRejected {
            sequence_number: 50,
            error_code: "x".into(),
            stale: false,
        }]
    );
    // For another channel id: ignored.
    let out = d.handle(
        &SubmitSharesSuccess {
            channel_id: GROUP,
            last_sequence_number: 0,
            new_submits_accepted_count: 0,
            new_shares_sum: 0,
        }
        .into(),
        now,
    );
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(d.counters().rejected, 3);
}

#[test]
fn extended_shares_carry_the_extranonce() {
    let now = Instant::now();
    let (mut d, w) = mining_extended(config(ChannelKind::Extended), target_top(EASY), true, now);
    let s = find_share(
        &w,
        &[0, 0, 0, 0, 0, 0, 0, 5],
        VERSION,
        &target_top(EASY),
        true,
    );
    let out = d.share_found(&s, now);
    let Message::SubmitSharesExtended(m) = &sends(&out)[0] else {
        panic!("{out:?}")
    };
    assert_eq!(m.extranonce.as_bytes(), &[0, 0, 0, 0, 0, 0, 0, 5]);
    assert_eq!((m.nonce, m.sequence_number, m.job_id), (s.nonce, 0, 1));
    // Wrong extranonce length.
    let bad = find_share(&w, &[0; 7], VERSION, &target_top(EASY), true);
    assert_eq!(
        events(&d.share_found(&bad, now)),
        vec![Event::ShareDropped {
            job_id: 1,
            problem: ShareProblem::ExtranonceLength {
                len: 7,
                expected: 8
            }
        }]
    );
}

#[test]
fn bad_shares_are_dropped_and_sent_only_in_faulty_mode() {
    let now = Instant::now();
    let later = now + Duration::from_secs(10);
    let target = target_top(0x0fff_ffff);
    let (mut d, w) = mining_standard(config(ChannelKind::Standard), target, now);
    let drop = |d: &mut Device, s: &Share, at| {
        let out = d.share_found(s, at);
        assert!(sends(&out).is_empty(), "{out:?}");
        match &events(&out)[..] {
            [Event::ShareDropped { problem, .. }] => problem.clone(),
            other => panic!("{other:?}"),
        }
    };
    let above = find_share(&w, &[], VERSION, &target, false);
    assert_eq!(drop(&mut d, &above, now), ShareProblem::AboveTarget);

    let good = find_share(&w, &[], VERSION, &target, true);
    assert_eq!(sends(&d.share_found(&good, now)).len(), 1);
    assert_eq!(drop(&mut d, &good, now), ShareProblem::Duplicate);

    let outside = find_share(&w, &[], VERSION | 1, &target_top(EASY), true);
    assert!(matches!(
        drop(&mut d, &outside, now),
        ShareProblem::VersionOutsideMask { version, mask: BIP323_VERSION_MASK, .. } if version == VERSION | 1
    ));

    // ntime beyond min_ntime + elapsed seconds; fine once the seconds have passed.
    let mut late = good;
    late.ntime = MIN_NTIME + 5;
    assert!(matches!(
        drop(&mut d, &late, now),
        ShareProblem::NtimeOutOfRange { ntime, min: MIN_NTIME, max: MIN_NTIME } if ntime == MIN_NTIME + 5
    ));
    let mut early = good;
    early.ntime = MIN_NTIME - 1;
    assert!(matches!(
        drop(&mut d, &early, later),
        ShareProblem::NtimeOutOfRange { .. }
    ));
    // A share whose reported hash is not the header's.
    let mut forged = find_share(&w, &[], VERSION | 0x20, &target, true);
    forged.hash[0] ^= 1;
    assert_eq!(drop(&mut d, &forged, now), ShareProblem::HashMismatch);
    let mut unknown = good;
    unknown.job_id = 12345;
    assert_eq!(drop(&mut d, &unknown, now), ShareProblem::UnknownWork);
    assert_eq!(d.counters().dropped, 7);

    // Faulty: the same shares are sent, flagged.
    let mut c = config(ChannelKind::Standard);
    c.faulty = true;
    let (mut d, w) = mining_standard(c, target, now);
    let above = find_share(&w, &[], VERSION, &target, false);
    let out = d.share_found(&above, now);
    assert!(matches!(
        sends(&out)[..],
        [Message::SubmitSharesStandard(_)]
    ));
    assert!(events(&out).iter().any(|e| matches!(
        e,
        Event::ShareSubmitted {
            problem: Some(ShareProblem::AboveTarget),
            ..
        }
    )));
    d.handle(&standard_job(2, None, [2; 32]), now);
    d.handle(&prev_hash(CHANNEL, 2), now);
    let stale = find_share(&w, &[], VERSION | 0x40, &target, true);
    let out = d.share_found(&stale, now);
    assert!(matches!(&sends(&out)[..], [Message::SubmitSharesStandard(m)] if m.job_id == 1));
}

#[test]
fn a_share_meeting_nbits_is_a_block() {
    let now = Instant::now();
    let mut d = opened(
        config(ChannelKind::Standard),
        standard_open([0xff; 32]),
        now,
    );
    d.handle(&standard_job(1, None, [0x11; 32]), now);
    let regtest = SetNewPrevHash {
        channel_id: CHANNEL,
        job_id: 1,
        prev_hash: U256(PREV),
        min_ntime: MIN_NTIME,
        nbits: 0x207f_ffff,
    };
    let w = last_work(&d.handle(&regtest.into(), now));
    let mut regtest_target = [0u8; 32];
    regtest_target[31] = 0x7f;
    regtest_target[30] = 0xff;
    regtest_target[29] = 0xff;
    let s = find_share(&w, &[], VERSION, &regtest_target, true);
    let out = d.share_found(&s, now);
    assert!(events(&out).contains(&Event::BlockFound {
        job_id: 1,
        hash: s.hash
    }));
    assert_eq!(d.counters().blocks, 1);
}

// ---------------------------------------------------------------------------------------------------
// Other messages, ticks and closing

#[test]
fn close_reconnect_update_error_and_unexpected_messages() {
    let now = Instant::now();
    let (mut d, _) = mining_standard(config(ChannelKind::Standard), target_top(EASY), now);
    let out = d.handle(
        &UpdateChannelError {
            channel_id: CHANNEL,
            error_code: str255("invalid-channel-id"),
        }
        .into(),
        now,
    );
    assert_eq!(
        events(&out),
        vec![Event::UpdateRefused {
            error_code: "invalid-channel-id".into()
        }]
    );
    let out = d.handle(
        &Reconnect {
            new_host: str255("pool.example"),
            new_port: 3333,
        }
        .into(),
        now,
    );
    assert_eq!(
        events(&out),
        vec![Event::Reconnect {
            new_host: "pool.example".into(),
            new_port: 3333
        }]
    );
    let odd: Message = CoinbaseOutputConstraints {
        coinbase_output_max_additional_size: 1,
        coinbase_output_max_additional_sigops: 1,
    }
    .into();
    assert_eq!(
        events(&d.handle(&odd, now)),
        vec![Event::Unexpected {
            message: "CoinbaseOutputConstraints".into()
        }]
    );
    // Control characters in a code: reported as they came.
    let out = d.handle(
        &SubmitSharesError {
            channel_id: CHANNEL,
            sequence_number: 0,
            error_code: str255("bad\nshare"),
        }
        .into(),
        now,
    );
    assert_eq!(
        events(&out),
        vec![Event::ShareRejected {
            sequence_number: 0,
            error_code: "bad\nshare".into(),
            stale: false,
        }]
    );

    let out = d.handle(
        &CloseChannel {
            channel_id: GROUP,
            reason_code: str255("maintenance"),
        }
        .into(),
        now,
    );
    assert!(out.contains(&Output::StopWork));
    assert!(events(&out).contains(&Event::ChannelClosed {
        reason_code: "maintenance".into()
    }));
    assert_eq!(d.phase(), Phase::Closed);
}

#[test]
fn tick_reissues_work_with_a_later_ntime() {
    let t0 = Instant::now();
    let mut c = config(ChannelKind::Standard);
    c.ntime_refresh = Duration::from_secs(30);
    let (mut d, w1) = mining_standard(c, target_top(EASY), t0);
    assert!(d.tick(t0 + Duration::from_secs(29)).is_empty());
    let out = d.tick(t0 + Duration::from_secs(31));
    let w2 = last_work(&out);
    assert_eq!(w2.job.ntime, MIN_NTIME + 31);
    assert_eq!(w2.job_id, w1.job_id);
    // A share of the new work at its later ntime is in range.
    let s = find_share(&w2, &[], VERSION, &target_top(EASY), true);
    assert_eq!(
        sends(&d.share_found(&s, t0 + Duration::from_secs(31))).len(),
        1
    );
}

#[test]
fn close_and_update_channel_send_their_messages() {
    let now = Instant::now();
    let (mut d, _) = mining_standard(config(ChannelKind::Standard), target_top(EASY), now);
    let out = d.update_channel(2e9, target_top(0xffff));
    let Message::UpdateChannel(u) = &sends(&out)[0] else {
        panic!()
    };
    assert_eq!((u.channel_id, u.nominal_hash_rate), (CHANNEL, 2e9));
    let out = d.close("bye");
    assert!(out.contains(&Output::StopWork));
    let Message::CloseChannel(c) = &sends(&out)[0] else {
        panic!()
    };
    assert_eq!(
        (c.channel_id, c.reason_code.as_bytes()),
        (CHANNEL, &b"bye"[..])
    );
    assert_eq!(d.phase(), Phase::Closed);
    assert!(sends(&d.close("again")).is_empty());
}

#[test]
fn messages_for_a_closed_channel_are_ignored_but_late_answers_are_not() {
    let now = Instant::now();
    let (mut d, w) = mining_standard(config(ChannelKind::Standard), target_top(EASY), now);
    let s = find_share(&w, &[], VERSION, &target_top(EASY), true);
    assert_eq!(sends(&d.share_found(&s, now)).len(), 1);
    d.close("done");
    let out = d.handle(&standard_job(2, None, [2; 32]), now);
    assert!(out.is_empty(), "{out:?}");
    let out = d.handle(&prev_hash(GROUP, 2), now);
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(d.phase(), Phase::Closed);
    // The answer to the share sent before the close settles it.
    let out = d.handle(
        &SubmitSharesSuccess {
            channel_id: CHANNEL,
            last_sequence_number: 0,
            new_submits_accepted_count: 1,
            new_shares_sum: 1,
        }
        .into(),
        now,
    );
    assert_eq!(events(&out).len(), 1, "{out:?}");
    assert_eq!(d.counters().accepted, 1);
    // Shares found after the close are stale.
    let late = find_share(&w, &[], VERSION | 0x20, &target_top(EASY), true);
    assert!(matches!(
        &events(&d.share_found(&late, now))[..],
        [Event::ShareDropped {
            problem: ShareProblem::Stale,
            ..
        }]
    ));
}

// ---------------------------------------------------------------------------------------------------
// The engine mines real shares from the device's work.

/// Two threads with small batches: at an easy target half the nonces are shares, each checked again
/// (slowly in a debug build), and hashes are counted per finished batch.
// Assigned field by field: the engine's config may gain fields (they keep their defaults).
#[allow(clippy::field_reassign_with_default)]
fn small_batches(backend: Backend) -> MinerConfig {
    let mut c = MinerConfig::default();
    c.threads = 2;
    c.backend = backend;
    c.batch = 64;
    c
}

/// Runs the engine on `work` (its nonce range narrowed so that versions/extranonces move quickly)
/// until `n` shares came, feeds them to the device, and returns the messages it sent.
fn mine(d: &mut Device, work: &Work, n: usize) -> Vec<Message<'static>> {
    let mut job = work.job.clone();
    job.nonce_start = 1000;
    job.nonce_end = 1000 + 63;
    let backend = Backend::detect();
    let (miner, shares) = Miner::start(small_batches(backend)).unwrap();
    miner.replace_job(job).unwrap();
    let mut found = Vec::new();
    while found.len() < n {
        found.push(
            shares
                .recv_timeout(Duration::from_secs(60))
                .expect("a share"),
        );
    }
    miner.stop();
    let now = Instant::now();
    found
        .iter()
        .flat_map(|s| sends(&d.share_found(s, now)))
        .collect()
}

#[test]
fn the_engine_mines_standard_shares_that_verify_with_sha2() {
    let now = Instant::now();
    let (mut d, w) = mining_standard(config(ChannelKind::Standard), target_top(EASY), now);
    let sent = mine(&mut d, &w, 200);
    assert!(sent.len() >= 150, "{} of 200 sent", sent.len());
    let mut versions = BTreeSet::new();
    let mut seqs = Vec::new();
    for m in &sent {
        let Message::SubmitSharesStandard(m) = m else {
            panic!("{m:?}")
        };
        let h = header(m.version, &PREV, &[0x11; 32], m.ntime, NBITS, m.nonce);
        assert!(
            le_le(&sha256d(&h), &target_top(EASY)),
            "share {m:?} above target"
        );
        assert_eq!(
            (m.version ^ VERSION) & !BIP323_VERSION_MASK,
            0,
            "{:#x}",
            m.version
        );
        assert_eq!(m.ntime, MIN_NTIME);
        assert!((1000..1064).contains(&m.nonce));
        versions.insert(m.version);
        seqs.push(m.sequence_number);
    }
    assert!(versions.len() > 1, "version rolling moved: {versions:?}");
    assert_eq!(seqs, (0..sent.len() as u32).collect::<Vec<_>>());
}

#[test]
fn the_engine_mines_extended_shares_that_verify_with_sha2() {
    let now = Instant::now();
    let (prefix, suffix, path) = extended_coinbase();
    for rolling in [true, false] {
        let mut c = config(ChannelKind::Extended);
        c.version_rolling = rolling;
        let (mut d, w) = mining_extended(c, target_top(EASY), rolling, now);
        let sent = mine(&mut d, &w, 200);
        assert!(sent.len() >= 150, "{} of 200 sent", sent.len());
        let mut versions = BTreeSet::new();
        let mut extranonces = BTreeSet::new();
        for m in &sent {
            let Message::SubmitSharesExtended(m) = m else {
                panic!("{m:?}")
            };
            assert_eq!(m.extranonce.len(), 8);
            let mut coinbase = prefix.clone();
            coinbase.extend_from_slice(&[9; 4]);
            coinbase.extend_from_slice(m.extranonce.as_bytes());
            coinbase.extend_from_slice(&suffix);
            let root = root_of(&coinbase, &path);
            let h = header(m.version, &PREV, &root, m.ntime, NBITS, m.nonce);
            assert!(
                le_le(&sha256d(&h), &target_top(EASY)),
                "share {m:?} above target"
            );
            let mask = if rolling { BIP323_VERSION_MASK } else { 0 };
            assert_eq!((m.version ^ VERSION) & !mask, 0, "{:#x}", m.version);
            versions.insert(m.version);
            extranonces.insert(m.extranonce.as_bytes().to_vec());
        }
        if rolling {
            assert!(versions.len() > 1, "versions {versions:?}");
        } else {
            assert_eq!(versions.len(), 1);
            assert!(extranonces.len() > 1, "extranonces {extranonces:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// The driver against a minimal SV2 pool written here (loopback, Noise or plaintext).

mod pool {
    use super::*;
    use std::sync::{Arc, Mutex};
    use sv2_codec::messages::mining::{SubmitSharesExtended, SubmitSharesStandard};
    use sv2_codec::noise::keys::{Keypair, SecretKey};
    use sv2_codec::noise::ResponderConfig;
    use sv2_conformance::monitor::{check_transcript, Monitor};
    use sv2_mock::miner::driver::{self, DeviceDriverConfig, DriverError, End, Security, Timeouts};
    use sv2_wire::{unix_now, Connection, KeyLog, NetError, Side};
    use tokio::net::{TcpListener, TcpStream};

    const LONG: Duration = Duration::from_secs(30);

    pub fn authority() -> Keypair {
        Keypair::from_secret(SecretKey::from_bytes([0x11; 32]).unwrap())
    }

    fn responder() -> ResponderConfig {
        let now = unix_now();
        ResponderConfig::issue(
            &SecretKey::from_bytes([0x22; 32]).unwrap(),
            &authority(),
            now - 60,
            now + 3600,
        )
    }

    #[derive(Debug, Default)]
    pub struct PoolLog {
        pub setup_flags: u32,
        pub accepted: u32,
        pub rejected: Vec<String>,
        pub versions: BTreeSet<u32>,
        pub closed: bool,
    }

    /// What the test pool does after the channel opens.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Script {
        /// Jobs, then validate shares until CloseChannel.
        Mine,
        /// Refuse SetupConnection.
        RefuseSetup,
        /// Say nothing after the handshake.
        Silent,
        /// Close the channel after the first accepted share.
        CloseAfterFirstShare,
        /// Send Reconnect (host empty: the current one; this port) after the first accepted share.
        ReconnectAfterFirstShare(u16),
    }

    /// The pool's own check of a share: header rebuilt from its job and what the device sent.
    fn verify(
        kind: ChannelKind,
        version: u32,
        extranonce: &[u8],
        ntime: u32,
        nonce: u32,
    ) -> Result<(), String> {
        if (version ^ VERSION) & !BIP323_VERSION_MASK != 0 {
            return Err(format!("version {version:#x} outside the mask"));
        }
        if ntime != MIN_NTIME {
            return Err("ntime".into());
        }
        let root = match kind {
            ChannelKind::Standard => [0x11; 32],
            ChannelKind::Extended => {
                if extranonce.len() != 8 {
                    return Err("extranonce size".into());
                }
                let (prefix, suffix, path) = extended_coinbase();
                let mut coinbase = prefix;
                coinbase.extend_from_slice(&[9; 4]);
                coinbase.extend_from_slice(extranonce);
                coinbase.extend_from_slice(&suffix);
                root_of(&coinbase, &path)
            }
        };
        let hash = sha256d(&header(version, &PREV, &root, ntime, NBITS, nonce));
        if le_le(&hash, &target_top(EASY)) {
            Ok(())
        } else {
            Err("difficulty-too-low".into())
        }
    }

    pub async fn serve(listener: TcpListener, noise: bool, script: Script) -> PoolLog {
        let (stream, _) = listener.accept().await.unwrap();
        let mut conn = if noise {
            Connection::respond(stream, responder(), LONG, &KeyLog::none())
                .await
                .unwrap()
        } else {
            Connection::plaintext(stream, Side::Server)
        };
        let mut log = PoolLog::default();
        let setup = conn.recv("setup", LONG).await.unwrap();
        let Message::SetupConnection(s) = &setup.message else {
            panic!("{setup:?}")
        };
        assert_eq!(s.protocol, 0);
        log.setup_flags = s.flags;
        match script {
            Script::RefuseSetup => {
                conn.send(
                    &SetupConnectionError {
                        flags: 0,
                        error_code: str255("unsupported-protocol"),
                    }
                    .into(),
                )
                .await
                .unwrap();
                let _ = conn.recv("after refusal", Duration::from_secs(2)).await;
                return log;
            }
            Script::Silent => {
                let _ = conn.recv("silence", LONG).await;
                return log;
            }
            _ => {}
        }
        conn.send(&success(0)).await.unwrap();
        let open = conn.recv("open", LONG).await.unwrap();
        let kind = match &open.message {
            Message::OpenStandardMiningChannel(o) => {
                assert_eq!(o.request_id, 1);
                conn.send(&standard_open(target_top(EASY))).await.unwrap();
                conn.send(&standard_job(1, None, [0x11; 32])).await.unwrap();
                ChannelKind::Standard
            }
            Message::OpenExtendedMiningChannel(o) => {
                assert_eq!(o.min_extranonce_size, 4);
                conn.send(&extended_open(target_top(EASY), vec![9; 4], 8))
                    .await
                    .unwrap();
                let (prefix, suffix, path) = extended_coinbase();
                conn.send(&extended_job(
                    CHANNEL, 1, None, true, &prefix, &suffix, &path,
                ))
                .await
                .unwrap();
                ChannelKind::Extended
            }
            other => panic!("{other:?}"),
        };
        conn.send(&prev_hash(CHANNEL, 1)).await.unwrap();
        loop {
            let Ok(got) = conn.recv("shares", LONG).await else {
                return log;
            };
            let (seq, verdict) = match &got.message {
                Message::SubmitSharesStandard(SubmitSharesStandard {
                    sequence_number,
                    version,
                    ntime,
                    nonce,
                    ..
                }) => {
                    log.versions.insert(*version);
                    (
                        *sequence_number,
                        verify(kind, *version, &[], *ntime, *nonce),
                    )
                }
                Message::SubmitSharesExtended(SubmitSharesExtended {
                    sequence_number,
                    version,
                    ntime,
                    nonce,
                    extranonce,
                    ..
                }) => {
                    log.versions.insert(*version);
                    (
                        *sequence_number,
                        verify(kind, *version, extranonce.as_bytes(), *ntime, *nonce),
                    )
                }
                Message::CloseChannel(c) => {
                    assert_eq!(c.channel_id, CHANNEL);
                    log.closed = true;
                    return log;
                }
                other => panic!("{other:?}"),
            };
            let reply: Message = match verdict {
                Ok(()) => {
                    log.accepted += 1;
                    SubmitSharesSuccess {
                        channel_id: CHANNEL,
                        last_sequence_number: seq,
                        new_submits_accepted_count: 1,
                        new_shares_sum: 1,
                    }
                    .into()
                }
                Err(why) => {
                    log.rejected.push(why.clone());
                    SubmitSharesError {
                        channel_id: CHANNEL,
                        sequence_number: seq,
                        error_code: str255(&why),
                    }
                    .into()
                }
            };
            // The device may already be gone (after its CloseChannel, still in the buffer).
            let _ = conn.send(&reply).await;
            if script == Script::CloseAfterFirstShare && log.accepted == 1 {
                conn.send(
                    &CloseChannel {
                        channel_id: CHANNEL,
                        reason_code: str255("pool-shutting-down"),
                    }
                    .into(),
                )
                .await
                .unwrap();
                // Stay until the device leaves (closing first could reset its pending writes).
                while conn.recv("after close", LONG).await.is_ok() {}
                return log;
            }
            if let (Script::ReconnectAfterFirstShare(new_port), 1) = (script, log.accepted) {
                let reconnect = Reconnect {
                    new_host: str255(""),
                    new_port,
                };
                conn.send(&reconnect.into()).await.unwrap();
                while let Ok(d) = conn.recv("after reconnect", LONG).await {
                    log.closed |= matches!(d.message, Message::CloseChannel(_));
                }
                return log;
            }
        }
    }

    pub async fn bind() -> (TcpListener, String) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        (listener, address)
    }

    pub fn driver_config(address: String, kind: ChannelKind, noise: bool) -> DeviceDriverConfig {
        let mut c = DeviceDriverConfig::new(address, Some(authority().public));
        if !noise {
            c.security = Security::Plaintext;
        }
        c.device = config(kind);
        c.engine = small_batches(Backend::detect());
        c.max_shares_per_second = 1000;
        c.stats_interval = Duration::from_millis(50);
        c
    }

    async fn mine_until(kind: ChannelKind, noise: bool, want: u64) {
        let (listener, address) = bind().await;
        let pool = tokio::spawn(serve(listener, noise, Script::Mine));
        let mut config = driver_config(address, kind, noise);
        // The conformance monitor follows the conversation live, entry by entry.
        let live = Arc::new(Mutex::new((Monitor::new(), 0usize)));
        let judge = live.clone();
        config.observer = Some(driver::Observer::new(move |seen| {
            let mut judge = judge.lock().unwrap();
            assert_eq!((seen.connection, seen.index), (0, judge.1));
            judge.1 += 1;
            judge.0.observe(seen.index, seen.entry);
        }));
        let mut handle = driver::spawn(config);
        tokio::time::timeout(Duration::from_secs(120), async {
            loop {
                handle.stats.changed().await.unwrap();
                if handle.stats.borrow().accepted >= want {
                    break;
                }
            }
        })
        .await
        .expect("accepted shares");
        let mut opened = false;
        while let Ok(e) = handle.events.try_recv() {
            opened |= matches!(e, Event::ChannelOpened { .. });
        }
        assert!(opened);
        let report = handle.stop().await;
        assert_eq!(report.outcome.unwrap(), End::Shutdown);
        assert!(report.stats.accepted >= want);
        assert_eq!(report.stats.rejected, 0);
        assert!(report.stats.hashes > 0);
        // The pool broke no rule, live or judged afterwards, and the observer saw every entry.
        let offline = check_transcript(&report.transcript);
        assert!(
            offline.server().findings.is_empty(),
            "{:?}",
            offline.findings
        );
        assert!(offline.findings.is_empty(), "{:?}", offline.findings);
        {
            let live = live.lock().unwrap();
            assert_eq!(live.1, report.transcript.len());
            assert_eq!(live.0.report().findings, offline.findings);
        }
        let log = pool.await.unwrap();
        assert!(log.rejected.is_empty(), "{:?}", log.rejected);
        assert!(u64::from(log.accepted) >= want);
        assert!(log.closed, "CloseChannel on shutdown");
        let expected_flags = match kind {
            ChannelKind::Standard => REQUIRES_STANDARD_JOBS | REQUIRES_VERSION_ROLLING,
            ChannelKind::Extended => REQUIRES_VERSION_ROLLING,
        };
        assert_eq!(log.setup_flags, expected_flags);
        assert!(
            report
                .transcript
                .messages(sv2_wire::Direction::ClientToServer)
                .count()
                > 3
        );
        assert_eq!(
            report
                .transcript
                .messages(sv2_wire::Direction::ServerToClient)
                .next()
                .map(|d| d.message.name()),
            Some("SetupConnection.Success")
        ); // The run's transcript names the pool it talked to.
        assert!(report.transcript.endpoints.server.is_some());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_device_mines_on_a_noise_pool_standard_channel() {
        mine_until(ChannelKind::Standard, true, 20).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_device_mines_on_a_plaintext_pool_extended_channel() {
        mine_until(ChannelKind::Extended, false, 20).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn driver_failures_and_endings_name_their_step() {
        // SetupConnection.Error.
        let (listener, address) = bind().await;
        tokio::spawn(serve(listener, true, Script::RefuseSetup));
        let report = driver::spawn(driver_config(address, ChannelKind::Standard, true))
            .join()
            .await;
        assert!(
            matches!(&report.outcome, Err(DriverError::SetupRefused { error_code, .. }) if error_code == "unsupported-protocol"),
            "{:?}",
            report.outcome
        );

        // Silence after the handshake: the SetupConnection step times out.
        let (listener, address) = bind().await;
        tokio::spawn(serve(listener, false, Script::Silent));
        let mut c = driver_config(address, ChannelKind::Standard, false);
        c.timeouts = Timeouts {
            setup: Duration::from_millis(300),
            ..Timeouts::default()
        };
        let report = driver::spawn(c).join().await;
        assert!(
            matches!(
                report.outcome,
                Err(DriverError::Net(NetError::Timeout {
                    step: "SetupConnection",
                    ..
                }))
            ),
            "{:?}",
            report.outcome
        );

        // A certificate signed by another authority.
        let (listener, address) = bind().await;
        tokio::spawn(async move {
            let (stream, _): (TcpStream, _) = listener.accept().await.unwrap();
            let _ = Connection::respond(stream, responder(), LONG, &KeyLog::none()).await;
        });
        let mut c = driver_config(address, ChannelKind::Standard, true);
        let other = Keypair::from_secret(SecretKey::from_bytes([0x33; 32]).unwrap());
        c.security = Security::Noise {
            authority: Some(other.public),
        };
        let report = driver::spawn(c).join().await;
        assert!(
            matches!(
                report.outcome,
                Err(DriverError::Net(NetError::Noise {
                    step: "handshake act 2",
                    ..
                }))
            ),
            "{:?}",
            report.outcome
        );

        // The pool closes the channel.
        let (listener, address) = bind().await;
        let pool = tokio::spawn(serve(listener, true, Script::CloseAfterFirstShare));
        let report = driver::spawn(driver_config(address, ChannelKind::Extended, true))
            .join()
            .await;
        assert_eq!(
            report.outcome.unwrap(),
            End::ChannelClosed {
                reason_code: "pool-shutting-down".into()
            }
        );
        assert_eq!(pool.await.unwrap().accepted, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reconnect_to_the_same_host_is_followed_with_a_fresh_handshake() {
        // The first pool sends the device to the second (same host, another port) after a share;
        // the device closes its channel, redoes the handshake (checked against the same authority)
        // and mines there; the share counts carry over.
        let (second, second_address) = bind().await;
        let second_port: u16 = second_address.rsplit_once(':').unwrap().1.parse().unwrap();
        let (first, first_address) = bind().await;
        let first_pool = tokio::spawn(serve(
            first,
            true,
            Script::ReconnectAfterFirstShare(second_port),
        ));
        let second_pool = tokio::spawn(serve(second, true, Script::CloseAfterFirstShare));
        let report = driver::spawn(driver_config(first_address, ChannelKind::Extended, true))
            .join()
            .await;
        assert_eq!(
            report.outcome.unwrap(),
            End::ChannelClosed {
                reason_code: "pool-shutting-down".into()
            }
        );
        let first_log = first_pool.await.unwrap();
        assert_eq!(first_log.accepted, 1);
        assert!(first_log.closed, "CloseChannel before leaving");
        assert_eq!(second_pool.await.unwrap().accepted, 1);
        assert!(report.stats.accepted >= 2, "{:?}", report.stats);
        assert!(report.events.iter().any(|(_, e)| matches!(
            e,
            Event::Reconnect { new_host, new_port } if new_host.is_empty() && *new_port == second_port
        )));
        // Both connections are in the transcript, with the reconnect between them.
        let setups = report
            .transcript
            .messages(sv2_wire::Direction::ServerToClient)
            .filter(|d| d.message.name() == "SetupConnection.Success")
            .count();
        assert_eq!(setups, 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reconnect_elsewhere_or_past_the_limit_ends_the_run() {
        let (first, first_address) = bind().await;
        let pool = tokio::spawn(serve(first, true, Script::ReconnectAfterFirstShare(1)));
        let mut c = driver_config(first_address, ChannelKind::Standard, true);
        c.reconnect.max = 0;
        let report = driver::spawn(c).join().await;
        assert_eq!(
            report.outcome.unwrap(),
            End::Reconnect {
                new_host: String::new(),
                new_port: 1
            }
        );
        assert!(pool.await.unwrap().closed);
        // Another host is not followed by default.
        assert_eq!(
            driver::reconnect_address(
                "127.0.0.1:3333",
                Some("pool.example"),
                Some(1),
                driver::ReconnectPolicy::default()
            ),
            None
        );
    }
}

// ---------------------------------------------------------------------------------------------------
// Against the crate's mock pool core, in memory: a clean run breaks no rule and every share is
// accepted; each of the pool's deliberate faults shows up as the matching finding of the conformance
// monitor over the conversation.

mod against_the_mock_pool {
    use std::collections::VecDeque;

    use super::*;
    use sv2_conformance::monitor::{
        check_transcript, JOB_ID_UNIQUE, PREV_HASH_NAMES_FUTURE_JOB, SILENT_AFTER_CLOSE,
        TARGET_WITHIN_MAX,
    };
    use sv2_mock::pool::{Output as PoolOutput, Pool, PoolConfig, PoolFaults, TemplateSource};
    use sv2_mock::tp::TpConfig;
    use sv2_wire::{Direction, Timestamp, Transcript};

    const NOW: u32 = 1_700_000_000;

    struct Link {
        pool: Pool,
        session: u64,
        device: Device,
        works: Vec<Work>,
        events: Vec<Event>,
        accepted_by_pool: usize,
        rejected_by_pool: Vec<String>,
        /// Both directions, as a tap between them would record them.
        transcript: Transcript,
        /// A scenario applied to what the pool sends (faults as data).
        scenario: Option<sv2_scenario::Engine>,
    }

    impl Link {
        /// A correct pool whose output goes through the scenario in `file` (scenarios/faults/).
        fn with_scenario(file: &str, device: DeviceConfig) -> Link {
            let path = format!("{}/../scenarios/faults/{file}", env!("CARGO_MANIFEST_DIR"));
            let scenario =
                sv2_scenario::Scenario::from_toml(&std::fs::read_to_string(&path).unwrap())
                    .unwrap();
            let mut link = Link::build(PoolFaults::default(), device);
            link.scenario = Some(sv2_scenario::Engine::new(std::sync::Arc::new(scenario)));
            let out = link.device.start();
            link.deliver(out);
            link
        }

        fn new(faults: PoolFaults, device: DeviceConfig) -> Link {
            let mut link = Link::build(faults, device);
            let out = link.device.start();
            link.deliver(out);
            link
        }

        fn build(faults: PoolFaults, device: DeviceConfig) -> Link {
            let config = PoolConfig {
                // Blocks need difficulty 1: the test's shares are not blocks.
                template_source: TemplateSource::InProcess(TpConfig {
                    nbits: NBITS,
                    ..TpConfig::default()
                }),
                faults,
                ..PoolConfig::default()
            };
            let mut pool = Pool::new(config, NOW).unwrap();
            let session = pool.open_session(NOW);
            Link {
                pool,
                session,
                device: Device::new(device).unwrap(),
                works: Vec::new(),
                events: Vec::new(),
                accepted_by_pool: 0,
                rejected_by_pool: Vec::new(),
                transcript: Transcript::default(),
                scenario: None,
            }
        }

        /// Carries the device's messages to the pool and the pool's back, until both are quiet.
        fn deliver(&mut self, out: Vec<Output>) {
            let mut up: VecDeque<Message<'static>> = VecDeque::new();
            self.take(out, &mut up);
            while let Some(m) = up.pop_front() {
                self.record(Direction::ClientToServer, &m);
                let pool_out = self.pool.handle(self.session, &m, NOW);
                self.answer_pool(pool_out, &mut up);
            }
        }

        /// What the scenario (if any) makes of a message from the pool: the messages the device gets.
        fn through_scenario(&mut self, message: Message<'static>) -> Vec<Message<'static>> {
            let Some(engine) = self.scenario.as_mut() else {
                return vec![message];
            };
            let frame = sv2_codec::to_frame_bytes(&message, &[]).unwrap();
            let applied = engine.on_frame(
                sv2_scenario::From::Server,
                &frame,
                std::time::Duration::ZERO,
            );
            applied
                .steps
                .into_iter()
                .filter_map(|step| match step {
                    sv2_scenario::Step::Send { frame, .. } => {
                        let (parsed, _) = sv2_codec::Frame::parse(&frame).ok()?;
                        Some(sv2_codec::decode_frame(&parsed).ok()?.message.into_static())
                    }
                    _ => None,
                })
                .collect()
        }

        fn record(&mut self, direction: Direction, m: &Message<'_>) {
            let frame = sv2_codec::to_frame_bytes(m, &[]).unwrap();
            // A simulated clock: each frame a second after the previous one (none crosses another).
            let at = Timestamp(self.transcript.len() as u64 * 1_000_000_000);
            self.transcript.frame(at, direction, &frame, None);
        }

        fn answer_pool(&mut self, pool_out: Vec<PoolOutput>, up: &mut VecDeque<Message<'static>>) {
            for o in pool_out {
                match o {
                    PoolOutput::Send { session, message } if session == self.session => {
                        for message in self.through_scenario(message) {
                            self.record(Direction::ServerToClient, &message);
                            let out = self.device.handle(&message, Instant::now());
                            self.take(out, up);
                        }
                    }
                    PoolOutput::ShareAccepted { .. } => self.accepted_by_pool += 1,
                    PoolOutput::ShareRejected { error, .. } => {
                        self.rejected_by_pool.push(format!("{error:?}"))
                    }
                    _ => {}
                }
            }
        }

        fn take(&mut self, out: Vec<Output>, up: &mut VecDeque<Message<'static>>) {
            for o in out {
                match o {
                    Output::Send(m) => up.push_back(m),
                    Output::Work(w) => self.works.push(w),
                    Output::Event(e) => self.events.push(e),
                    Output::StopWork => {}
                }
            }
        }

        /// The pool acts on its own (tick, new template, ...).
        fn pool_acts(&mut self, act: impl FnOnce(&mut Pool) -> Vec<PoolOutput>) {
            let pool_out = act(&mut self.pool);
            let mut up = VecDeque::new();
            self.answer_pool(pool_out, &mut up);
            while let Some(m) = up.pop_front() {
                self.record(Direction::ClientToServer, &m);
                let pool_out = self.pool.handle(self.session, &m, NOW);
                self.answer_pool(pool_out, &mut up);
            }
        }

        /// The rules the pool broke so far (the monitor over the conversation; the device's own
        /// frames break none).
        fn violations(&self) -> Vec<&'static str> {
            let report = check_transcript(&self.transcript);
            let server = report.server();
            assert_eq!(report.findings, server.findings, "the device broke a rule");
            server.findings.iter().map(|f| f.rule).collect()
        }

        /// Mines `n` shares on the newest work and hands them to the pool.
        fn mine(&mut self, n: usize) {
            let work = self.works.last().expect("work").clone();
            let sent = mine(&mut self.device, &work, n);
            self.deliver(sent.into_iter().map(Output::Send).collect());
        }
    }

    fn device(kind: ChannelKind) -> DeviceConfig {
        DeviceConfig {
            // Slow enough for the pool's easiest target (regtest's): about every other hash is a
            // share.
            nominal_hash_rate: 1.0,
            ..config(kind)
        }
    }

    #[test]
    fn a_clean_run_has_no_violations_and_every_share_is_accepted() {
        // Both roll (and accept) BIP323's general-purpose bits, as §5.1 says.
        assert_eq!(sv2_mock::pool::VERSION_ROLLING_MASK, BIP323_VERSION_MASK);
        for kind in [ChannelKind::Standard, ChannelKind::Extended] {
            let mut link = Link::new(PoolFaults::default(), device(kind));
            assert_eq!(link.violations(), Vec::<&str>::new(), "{kind:?}");
            assert_eq!(
                link.device.phase(),
                Phase::Mining,
                "{kind:?}: {:?}",
                link.events
            );
            link.mine(40);
            link.pool_acts(|p| p.tick(NOW + 5));
            let c = link.device.counters();
            assert!(c.submitted >= 30, "{kind:?}: {c:?}");
            assert_eq!(link.rejected_by_pool, Vec::<String>::new(), "{kind:?}");
            assert_eq!(link.accepted_by_pool as u64, c.submitted, "{kind:?}");
            assert_eq!(c.accepted, c.submitted, "{kind:?}: {c:?}");
            assert_eq!(c.rejected, 0);
            assert_eq!(link.device.outstanding(), 0);
            // A new template: the device follows it and its shares are accepted too.
            link.pool_acts(|p| p.update_template(NOW));
            link.mine(10);
            link.pool_acts(|p| p.tick(NOW + 10));
            assert_eq!(link.violations(), Vec::<&str>::new(), "{kind:?}");
            assert!(
                link.rejected_by_pool.is_empty(),
                "{:?}",
                link.rejected_by_pool
            );
        }
    }

    #[test]
    fn the_pool_faults_are_found_by_the_monitor() {
        // A target above the requested max_target.
        let mut c = device(ChannelKind::Standard);
        c.max_target = [0; 32];
        c.max_target[25] = 1;
        let link = Link::new(
            PoolFaults {
                target_above_max: true,
                ..PoolFaults::default()
            },
            c,
        );
        assert!(
            matches!(link.violations()[..], [TARGET_WITHIN_MAX]),
            "{:?}",
            link.violations()
        );

        // SetNewPrevHash for a job never sent: skipped, or an unknown id (a scenario rewrites it).
        for link in [
            Link::new(
                PoolFaults {
                    skip_future_job: true,
                    ..PoolFaults::default()
                },
                device(ChannelKind::Standard),
            ),
            Link::with_scenario("unknown-prev-hash-job.toml", device(ChannelKind::Standard)),
        ] {
            assert!(
                link.violations().contains(&PREV_HASH_NAMES_FUTURE_JOB),
                "{:?}",
                link.violations()
            );
        }

        // Job ids reused.
        let mut link = Link::new(
            PoolFaults {
                reuse_job_ids: true,
                ..PoolFaults::default()
            },
            device(ChannelKind::Standard),
        );
        link.pool_acts(|p| p.update_template(NOW));
        assert!(
            link.violations().contains(&JOB_ID_UNIQUE),
            "{:?}",
            link.violations()
        );

        // Jobs keep coming after CloseChannel.
        let mut link = Link::new(
            PoolFaults {
                ignore_close_channel: true,
                ..PoolFaults::default()
            },
            device(ChannelKind::Extended),
        );
        let out = link.device.close("leaving");
        link.deliver(out);
        link.pool_acts(|p| p.update_template(NOW));
        assert!(
            link.violations().contains(&SILENT_AFTER_CLOSE),
            "{:?}",
            link.violations()
        );

        // Shares never answered (a scenario drops the answers): they stay outstanding.
        let mut link =
            Link::with_scenario("never-answer-shares.toml", device(ChannelKind::Extended));
        link.mine(20);
        link.pool_acts(|p| p.tick(NOW + 5));
        assert!(link.device.outstanding() > 0);
        assert_eq!(link.device.counters().accepted, 0);
    }
}

// ---------------------------------------------------------------------------------------------------
// Hostile upstream: any sequence of messages and shares, no panic, consistent bookkeeping.

mod hostile {
    use super::*;
    use proptest::prelude::*;
    use sv2_codec::messages::mining::SubmitSharesSuccess;
    use sv2_conformance::monitor::{check_transcript, Monitor};
    use sv2_wire::{Direction, Timestamp, Transcript};

    /// The conversation as a tap records it, and the monitor following it live.
    struct Judge {
        transcript: Transcript,
        monitor: Monitor,
        /// Findings the live monitor reported, entry by entry.
        live: u64,
    }

    impl Judge {
        fn record(&mut self, direction: Direction, m: &Message<'_>) {
            let Ok(frame) = sv2_codec::to_frame_bytes(m, &[]) else {
                return;
            };
            // A simulated clock: each frame a second after the previous one (none crosses another).
            let at = Timestamp(self.transcript.len() as u64 * 1_000_000_000);
            self.transcript.frame(at, direction, &frame, None);
            let i = self.transcript.len() - 1;
            let entry = self.transcript.entries()[i].clone();
            self.live += self.monitor.observe(i, &entry).len() as u64;
        }

        /// The pool's message, then what the device answers.
        fn handle(&mut self, d: &mut Device, m: &Message<'static>, now: Instant) -> Vec<Output> {
            self.record(Direction::ServerToClient, m);
            let out = d.handle(m, now);
            self.sent(&out);
            out
        }

        fn sent(&mut self, out: &[Output]) {
            for o in out {
                if let Output::Send(m) = o {
                    self.record(Direction::ClientToServer, m);
                }
            }
        }
    }

    fn channel_id() -> impl Strategy<Value = u32> {
        prop_oneof![Just(CHANNEL), Just(GROUP), Just(0u32), any::<u32>()]
    }

    fn target() -> impl Strategy<Value = [u8; 32]> {
        prop_oneof![
            Just([0xff; 32]),
            Just(target_top(EASY)),
            Just([0u8; 32]),
            any::<[u8; 32]>()
        ]
    }

    fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..=max)
    }

    fn message() -> impl Strategy<Value = Message<'static>> {
        prop_oneof![
            (any::<u16>(), any::<u32>()).prop_map(|(used_version, flags)| {
                SetupConnectionSuccess {
                    used_version,
                    flags,
                }
                .into()
            }),
            (0u32..3, channel_id(), target(), bytes(32), channel_id()).prop_map(
                |(request_id, channel_id, target, prefix, group_channel_id)| {
                    OpenStandardMiningChannelSuccess {
                        request_id,
                        channel_id,
                        target: U256(target),
                        extranonce_prefix: B0_32::new(prefix).unwrap(),
                        group_channel_id,
                    }
                    .into()
                }
            ),
            (
                0u32..3,
                channel_id(),
                target(),
                any::<u16>(),
                bytes(32),
                channel_id()
            )
                .prop_map(
                    |(
                        request_id,
                        channel_id,
                        target,
                        extranonce_size,
                        prefix,
                        group_channel_id,
                    )| {
                        OpenExtendedMiningChannelSuccess {
                            request_id,
                            channel_id,
                            target: U256(target),
                            extranonce_size,
                            extranonce_prefix: B0_32::new(prefix).unwrap(),
                            group_channel_id,
                        }
                        .into()
                    }
                ),
            (
                channel_id(),
                0u32..4,
                proptest::option::of(any::<u32>()),
                any::<u32>()
            )
                .prop_map(|(channel_id, job_id, min_ntime, version)| {
                    NewMiningJob {
                        channel_id,
                        job_id,
                        min_ntime,
                        version,
                        merkle_root: U256([7; 32]),
                    }
                    .into()
                }),
            (
                channel_id(),
                0u32..4,
                proptest::option::of(any::<u32>()),
                any::<bool>(),
                bytes(80),
                bytes(80),
                0usize..3
            )
                .prop_map(
                    |(channel_id, job_id, min_ntime, rolling, prefix, suffix, depth)| {
                        let path = vec![[3u8; 32]; depth];
                        extended_job(
                            channel_id, job_id, min_ntime, rolling, &prefix, &suffix, &path,
                        )
                    }
                ),
            (channel_id(), 0u32..4, any::<u32>(), any::<u32>()).prop_map(
                |(channel_id, job_id, min_ntime, nbits)| {
                    SetNewPrevHash {
                        channel_id,
                        job_id,
                        prev_hash: U256(PREV),
                        min_ntime,
                        nbits,
                    }
                    .into()
                }
            ),
            (channel_id(), target()).prop_map(|(channel_id, t)| SetTarget {
                channel_id,
                maximum_target: U256(t),
            }
            .into()),
            (channel_id(), bytes(32)).prop_map(|(channel_id, p)| SetExtranoncePrefix {
                channel_id,
                extranonce_prefix: B0_32::new(p).unwrap(),
            }
            .into()),
            (channel_id(), proptest::collection::vec(channel_id(), 0..4)).prop_map(
                |(group_channel_id, ids)| SetGroupChannel {
                    group_channel_id,
                    channel_ids: Seq0_64K::new(ids).unwrap(),
                }
                .into()
            ),
            (channel_id(), 0u32..8, any::<u32>(), any::<u64>()).prop_map(
                |(channel_id, last, count, sum)| SubmitSharesSuccess {
                    channel_id,
                    last_sequence_number: last,
                    new_submits_accepted_count: count,
                    new_shares_sum: sum,
                }
                .into()
            ),
            (channel_id(), 0u32..8, bytes(20)).prop_map(|(channel_id, seq, code)| {
                SubmitSharesError {
                    channel_id,
                    sequence_number: seq,
                    error_code: Str0_255::new(code).unwrap(),
                }
                .into()
            }),
            (channel_id(), bytes(10)).prop_map(|(channel_id, code)| CloseChannel {
                channel_id,
                reason_code: Str0_255::new(code).unwrap(),
            }
            .into()),
            (bytes(10), any::<u16>()).prop_map(|(host, new_port)| Reconnect {
                new_host: Str0_255::new(host).unwrap(),
                new_port,
            }
            .into()),
            Just(
                CoinbaseOutputConstraints {
                    coinbase_output_max_additional_size: 0,
                    coinbase_output_max_additional_sigops: 0,
                }
                .into()
            ),
        ]
    }

    #[derive(Debug, Clone)]
    enum Step {
        Message(Message<'static>),
        Share {
            work: u64,
            nonce: u32,
            ntime: u32,
            version: u32,
            extranonce: Vec<u8>,
        },
        Tick(u64),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            6 => message().prop_map(Step::Message),
            2 => (0u64..6, any::<u32>(), any::<u32>(), any::<u32>(), bytes(32)).prop_map(
                |(work, nonce, ntime, version, extranonce)| Step::Share {
                    work,
                    nonce,
                    ntime,
                    version,
                    extranonce
                }
            ),
            1 => (0u64..100).prop_map(Step::Tick),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_upstream_sequence_is_survived(
            extended in any::<bool>(),
            faulty in any::<bool>(),
            opened_first in prop::bool::weighted(0.8),
            steps in proptest::collection::vec(step(), 0..40),
        ) {
            let t0 = Instant::now();
            let kind = if extended { ChannelKind::Extended } else { ChannelKind::Standard };
            let mut c = config(kind);
            c.faulty = faulty;
            let mut d = Device::new(c).unwrap();
            let mut judge = Judge {
                transcript: Transcript::default(),
                monitor: Monitor::new(),
                live: 0,
            };
            let out = d.start();
            judge.sent(&out);
            if opened_first {
                // Most runs start from an open channel with a job, so that later steps hit the
                // mining paths.
                judge.handle(&mut d, &success(0), t0);
                let open = if extended {
                    extended_open(target_top(EASY), vec![9; 4], 8)
                } else {
                    standard_open(target_top(EASY))
                };
                judge.handle(&mut d, &open, t0);
                if extended {
                    let (prefix, suffix, path) = extended_coinbase();
                    judge.handle(&mut d, &extended_job(CHANNEL, 1, None, true, &prefix, &suffix, &path), t0);
                } else {
                    judge.handle(&mut d, &standard_job(1, None, [0x11; 32]), t0);
                }
                judge.handle(&mut d, &prev_hash(CHANNEL, 1), t0);
            }
            let mut sent = 0u64;
            let mut count = |out: &[Output]| {
                for o in out {
                    match o {
                        Output::Send(
                            Message::SubmitSharesStandard(_) | Message::SubmitSharesExtended(_),
                        ) => sent += 1,
                        Output::Work(w) => assert!(w.job.validate().is_ok()),
                        _ => {}
                    }
                }
            };
            for (i, s) in steps.into_iter().enumerate() {
                let now = t0 + Duration::from_millis(100 * i as u64);
                let out = match s {
                    Step::Message(m) => judge.handle(&mut d, &m, now),
                    Step::Share { work, nonce, ntime, version, extranonce } => {
                        let share = Share {
                            job_id: work,
                            nonce,
                            ntime,
                            version,
                            extranonce: Extranonce::new(&extranonce).unwrap(),
                            merkle_root: [0; 32],
                            hash: [0; 32],
                        };
                        d.share_found(&share, now)
                    }
                    Step::Tick(secs) => d.tick(now + Duration::from_secs(secs)),
                };
                judge.sent(&out);
                count(&out);
            }
            let c = d.counters();
            // The monitor survives the same sequence, and what it found live, entry by entry, is what
            // it finds over the whole transcript.
            let offline = check_transcript(&judge.transcript);
            prop_assert_eq!(offline.findings.len() as u64, judge.live);
            prop_assert_eq!(&offline.findings, &judge.monitor.report().findings);
            prop_assert_eq!(c.submitted, sent);
            prop_assert!(d.outstanding() as u64 <= c.submitted);
            if !faulty {
                // Random shares never meet the checks (their hash is zeros, not the header's).
                prop_assert_eq!(c.submitted, 0);
            }
        }
    }
}
