//! The rules a careful mining device used to check itself, now the monitor's: each case feeds the
//! monitor the conversation the device's own tests had (the device core plays the client and its
//! frames are recorded, the pool's messages are scripted) and asserts the finding, entry by entry.
//! The device's behaviour on the same messages (what it ignores, caps or mines) stays tested in
//! mock-roles/tests/miner.rs.

use std::time::Instant;

use sv2_codec::messages::common::SetupConnectionSuccess;
use sv2_codec::messages::flags::{
    REQUIRES_FIXED_VERSION, REQUIRES_STANDARD_JOBS, REQUIRES_VERSION_ROLLING,
};
use sv2_codec::messages::mining::{
    CloseChannel, NewExtendedMiningJob, NewMiningJob, OpenExtendedMiningChannelSuccess,
    OpenMiningChannelError, OpenStandardMiningChannelSuccess, SetExtranoncePrefix, SetGroupChannel,
    SetNewPrevHash, SetTarget, SubmitSharesError, SubmitSharesStandard, SubmitSharesSuccess,
};
use sv2_codec::types::{Seq0_255, Seq0_64K, Str0_255, B0_32, B0_64K, U256};
use sv2_codec::{to_frame_bytes, Message};
use sv2_conformance::check::Level;
use sv2_conformance::monitor::{self, *};
use sv2_mock::miner::{ChannelKind, Device, DeviceConfig, Output};
use sv2_wire::{Direction, Side, Timestamp, Transcript};

const CHANNEL: u32 = 7;
const GROUP: u32 = 100;
const PREV: [u8; 32] = [0x42; 32];
const NBITS: u32 = 0x1d00_ffff;
const MIN_NTIME: u32 = 1_700_000_000;
const VERSION: u32 = 0x2000_0000;
const EASY: u32 = 0x7fff_ffff;

fn target_top(top: u32) -> [u8; 32] {
    let mut t = [0xff; 32];
    t[28..].copy_from_slice(&top.to_le_bytes());
    t
}

/// A coinbase split around `space` bytes of extranonce at the end of its scriptSig.
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

fn extended_coinbase() -> (Vec<u8>, Vec<u8>, Vec<[u8; 32]>) {
    let (prefix, suffix) = coinbase_parts(4 + 8, false);
    (prefix, suffix, vec![[0x33; 32], [0x44; 32]])
}

fn str255(s: &str) -> Str0_255<'static> {
    Str0_255::new(s.as_bytes().to_vec()).unwrap()
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

fn share(sequence_number: u32) -> Message<'static> {
    SubmitSharesStandard {
        channel_id: CHANNEL,
        sequence_number,
        job_id: 1,
        nonce: sequence_number,
        ntime: MIN_NTIME,
        version: VERSION,
    }
    .into()
}

fn shares_success(channel_id: u32, last: u32, count: u32) -> Message<'static> {
    SubmitSharesSuccess {
        channel_id,
        last_sequence_number: last,
        new_submits_accepted_count: count,
        new_shares_sum: 0,
    }
    .into()
}

fn shares_error(sequence_number: u32, code: &str) -> Message<'static> {
    SubmitSharesError {
        channel_id: CHANNEL,
        sequence_number,
        error_code: str255(code),
    }
    .into()
}

/// The device as the client, a scripted pool as the server, every frame recorded and followed by a
/// live monitor; the transcript is judged once more at the end (live and offline agree).
struct Rig {
    device: Device,
    transcript: Transcript,
    monitor: Monitor,
    now: Instant,
}

impl Rig {
    fn new(config: DeviceConfig) -> Rig {
        Rig {
            device: Device::new(config).unwrap(),
            transcript: Transcript::default(),
            monitor: Monitor::new(),
            now: Instant::now(),
        }
    }

    fn record(&mut self, direction: Direction, m: &Message<'_>) -> Vec<Finding> {
        let frame = to_frame_bytes(m, &[]).unwrap();
        // A simulated clock: each frame a second after the previous one (none crosses another).
        let at = Timestamp(self.transcript.len() as u64 * 1_000_000_000);
        self.transcript.frame(at, direction, &frame, None);
        let i = self.transcript.len() - 1;
        let entry = self.transcript.entries()[i].clone();
        self.monitor.observe(i, &entry)
    }

    /// The device's messages go up; the device never breaks a client rule.
    fn device_sends(&mut self, out: Vec<Output>) {
        for o in out {
            if let Output::Send(m) = o {
                let f = self.record(Direction::ClientToServer, &m);
                assert!(f.is_empty(), "the device broke a client rule: {f:?}");
            }
        }
    }

    fn start(&mut self) {
        let out = self.device.start();
        self.device_sends(out);
    }

    /// The pool sends `m`: the rules it broke (the device then answers).
    fn pool(&mut self, m: Message<'static>) -> Vec<&'static str> {
        let findings = self.record(Direction::ServerToClient, &m);
        assert!(
            findings.iter().all(|f| f.by == Side::Server),
            "{findings:?}"
        );
        let out = self.device.handle(&m, self.now);
        self.device_sends(out);
        findings.iter().map(|f| f.rule).collect()
    }

    /// As [`Rig::pool`], with the details.
    fn pool_detail(&mut self, m: Message<'static>) -> Vec<Finding> {
        let findings = self.record(Direction::ServerToClient, &m);
        let out = self.device.handle(&m, self.now);
        self.device_sends(out);
        findings
    }

    /// A client message the device would send (a share), recorded as sent.
    fn client(&mut self, m: Message<'static>) {
        let f = self.record(Direction::ClientToServer, &m);
        assert!(f.is_empty(), "{f:?}");
    }

    fn close(&mut self) {
        let out = self.device.close("done");
        self.device_sends(out);
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let offline = check_transcript(&self.transcript);
        assert_eq!(offline.findings, self.monitor.report().findings);
    }
}

/// A device through setup and channel opening, with no finding on the way.
fn opened(config: DeviceConfig, open: Message<'static>) -> Rig {
    let mut r = Rig::new(config);
    r.start();
    assert_eq!(r.pool(success(0)), Vec::<&str>::new());
    assert_eq!(r.pool(open), Vec::<&str>::new());
    r
}

fn mining_standard(config: DeviceConfig, target: [u8; 32]) -> Rig {
    let mut r = opened(config, standard_open(target));
    assert_eq!(
        r.pool(standard_job(1, None, [0x11; 32])),
        Vec::<&str>::new()
    );
    assert_eq!(r.pool(prev_hash(CHANNEL, 1)), Vec::<&str>::new());
    r
}

fn mining_extended(config: DeviceConfig, target: [u8; 32], rolling: bool) -> Rig {
    let mut r = opened(config, extended_open(target, vec![9, 9, 9, 9], 8));
    let (prefix, suffix, path) = extended_coinbase();
    let job = extended_job(CHANNEL, 1, None, rolling, &prefix, &suffix, &path);
    assert_eq!(r.pool(job), Vec::<&str>::new());
    assert_eq!(r.pool(prev_hash(CHANNEL, 1)), Vec::<&str>::new());
    r
}

fn none() -> Vec<&'static str> {
    Vec::new()
}

// ---------------------------------------------------------------------------------------------------
// Setup and channel opening

#[test]
fn open_errors_must_echo_a_request_in_flight() {
    let mut r = Rig::new(config(ChannelKind::Standard));
    r.start();
    r.pool(success(0));
    let wrong = OpenMiningChannelError {
        request_id: 99,
        error_code: str255("max-target-out-of-range"),
    };
    assert_eq!(r.pool(wrong.into()), [REQUEST_ID_ECHO]);
    let right = OpenMiningChannelError {
        request_id: 1,
        error_code: str255("max-target-out-of-range"),
    };
    assert_eq!(r.pool(right.into()), none());
}

#[test]
fn setup_success_outside_the_offered_versions_and_fixed_version_despite_rolling() {
    let mut r = Rig::new(config(ChannelKind::Standard));
    r.start();
    let v = r.pool(
        SetupConnectionSuccess {
            used_version: 3,
            flags: REQUIRES_FIXED_VERSION,
        }
        .into(),
    );
    assert!(v.contains(&USED_VERSION), "{v:?}");
    assert!(v.contains(&VERSION_ROLLING_FLAG), "{v:?}");
    assert_eq!(
        monitor::rule(VERSION_ROLLING_FLAG).unwrap().section,
        "5.3.1"
    );
    // Still carries on: the channel is opened.
    assert!(r.transcript.len() >= 3);
}

#[test]
fn nothing_but_the_setup_answer_comes_first() {
    // Before the client said anything.
    let mut r = Rig::new(config(ChannelKind::Standard));
    let f = r.pool_detail(success(0));
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].rule, SETUP_ANSWER_FIRST);
    assert!(
        f[0].detail.contains("before the client's SetupConnection"),
        "{f:?}"
    );
    // The same device later: a job before any channel.
    r.start();
    assert_eq!(r.pool(standard_job(1, None, [0; 32])), [CHANNEL_ID_KNOWN]);

    // After SetupConnection, a job instead of its answer.
    let mut r = Rig::new(config(ChannelKind::Standard));
    r.start();
    let f = r.pool_detail(standard_job(1, None, [0; 32]));
    let rules: Vec<&str> = f.iter().map(|f| f.rule).collect();
    assert!(rules.contains(&SETUP_ANSWER_FIRST), "{f:?}");
    assert!(f.iter().any(|f| f.detail.contains("NewMiningJob")), "{f:?}");
    // A clean start has no finding.
    let r = opened(
        config(ChannelKind::Standard),
        standard_open(target_top(EASY)),
    );
    assert!(r.monitor.report().exercised.contains(SETUP_ANSWER_FIRST));
}

#[test]
fn open_success_checks_request_kind_target_group_and_extranonce() {
    // Target above max_target.
    let mut c = config(ChannelKind::Standard);
    c.max_target = target_top(0x0000_ffff);
    let mut r = Rig::new(c);
    r.start();
    r.pool(success(0));
    assert_eq!(r.pool(standard_open(target_top(EASY))), [TARGET_WITHIN_MAX]);

    // Group id colliding, extranonce too small and too long.
    let mut r = Rig::new(config(ChannelKind::Extended));
    r.start();
    r.pool(success(0));
    let open: Message = OpenExtendedMiningChannelSuccess {
        request_id: 1,
        channel_id: CHANNEL,
        target: U256(target_top(EASY)),
        extranonce_size: 2,
        extranonce_prefix: B0_32::new(vec![0; 31]).unwrap(),
        group_channel_id: CHANNEL,
    }
    .into();
    let f = r.pool_detail(open);
    let has = |rule: &str, text: &str| f.iter().any(|x| x.rule == rule && x.detail.contains(text));
    assert!(has(UNIQUE_CHANNEL_IDS, "group_channel_id 7"), "{f:?}");
    assert!(
        has(
            EXTRANONCE_SIZE,
            "extranonce_size 2 below the requested minimum 4"
        ),
        "{f:?}"
    );
    assert!(
        has(
            EXTRANONCE_SIZE,
            "extranonce_prefix (31 bytes) + extranonce_size (2) = 33 > 32"
        ),
        "{f:?}"
    );

    // The wrong kind, then a second answer to no pending request.
    let mut r = Rig::new(config(ChannelKind::Extended));
    r.start();
    r.pool(success(0));
    let f = r.pool_detail(standard_open(target_top(EASY)));
    assert!(
        f.iter().any(
            |x| x.rule == REQUEST_ID_ECHO && x.detail.contains("asked for an extended channel")
        ),
        "{f:?}"
    );
    let f = r.pool_detail(standard_open(target_top(EASY)));
    assert!(
        f.iter()
            .any(|x| x.rule == REQUEST_ID_ECHO && x.detail.contains("not a request in flight")),
        "{f:?}"
    );
}

// ---------------------------------------------------------------------------------------------------
// Jobs and prevhash

#[test]
fn a_job_with_min_ntime_below_the_prev_hash_min_ntime() {
    let mut r = mining_standard(config(ChannelKind::Standard), target_top(EASY));
    assert_eq!(
        r.pool(standard_job(2, Some(MIN_NTIME + 5), [0x22; 32])),
        none()
    );
    assert_eq!(
        r.pool(standard_job(3, Some(MIN_NTIME - 1), [0x33; 32])),
        [JOB_MIN_NTIME]
    );
    assert!(r.monitor.report().exercised.contains(JOB_AFTER_PREV_HASH));
    assert_eq!(monitor::rule(JOB_MIN_NTIME).unwrap().level, Level::Should);
}

#[test]
fn unknown_prev_hash_job_reuse_first_job_and_an_active_job_without_prev_hash() {
    let mut r = opened(
        config(ChannelKind::Standard),
        standard_open(target_top(EASY)),
    );
    // First job with min_ntime set, and before any prevhash.
    let v = r.pool(standard_job(5, Some(MIN_NTIME), [1; 32]));
    assert!(v.contains(&FIRST_JOB_FUTURE), "{v:?}");
    assert!(v.contains(&JOB_AFTER_PREV_HASH), "{v:?}");
    assert_eq!(
        monitor::rule(JOB_AFTER_PREV_HASH).unwrap().level,
        Level::Should
    );
    // A prevhash naming a job never sent.
    assert!(r
        .pool(prev_hash(CHANNEL, 77))
        .contains(&PREV_HASH_NAMES_FUTURE_JOB));
    // Reuse of a pending future job id.
    assert_eq!(r.pool(standard_job(8, None, [2; 32])), none());
    assert_eq!(r.pool(standard_job(8, None, [3; 32])), [JOB_ID_UNIQUE]);
    assert_eq!(r.pool(prev_hash(CHANNEL, 8)), none());
}

#[test]
fn set_new_prev_hash_invalidates_every_other_job() {
    let mut r = mining_standard(config(ChannelKind::Standard), target_top(EASY));
    assert_eq!(r.pool(standard_job(2, None, [0x22; 32])), none());
    assert_eq!(r.pool(standard_job(3, None, [0x33; 32])), none());
    assert_eq!(r.pool(prev_hash(CHANNEL, 2)), none());
    // Future job 3 was made invalid by the prevhash for 2.
    let f = r.pool_detail(prev_hash(CHANNEL, 3));
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].rule, PREV_HASH_NAMES_FUTURE_JOB);
    assert!(f[0].detail.contains("made invalid"), "{f:?}");
    // Job 2 is no longer valid: its id may be used again; job 3's (named last) may not.
    assert_eq!(r.pool(standard_job(2, None, [0x22; 32])), none());
    assert_eq!(r.pool(standard_job(3, None, [0x33; 32])), [JOB_ID_UNIQUE]);
}

#[test]
fn a_prev_hash_to_a_group_may_name_a_future_job_sent_to_its_channel() {
    // A future job sent to the channel, then the channel put in a group and the prev hash sent to
    // the group (the mock pool does this for a channel opened while a future job waits).
    let mut r = opened(
        config(ChannelKind::Extended),
        extended_open(target_top(EASY), vec![9; 4], 8),
    );
    let (prefix, suffix, path) = extended_coinbase();
    assert_eq!(
        r.pool(extended_job(
            CHANNEL, 1, None, true, &prefix, &suffix, &path
        )),
        none()
    );
    let group: Message = SetGroupChannel {
        group_channel_id: 200,
        channel_ids: Seq0_64K::new(vec![CHANNEL]).unwrap(),
    }
    .into();
    assert_eq!(r.pool(group), none());
    assert_eq!(r.pool(prev_hash(200, 1)), none());
    // Named, it is valid on the channel: its id is not free.
    assert_eq!(
        r.pool(extended_job(
            CHANNEL, 1, None, true, &prefix, &suffix, &path
        )),
        [JOB_ID_UNIQUE]
    );
    // A job never sent anywhere in the group.
    assert_eq!(r.pool(prev_hash(200, 5)), [PREV_HASH_NAMES_FUTURE_JOB]);
}

#[test]
fn channel_kind_mismatches() {
    // NewMiningJob on an extended channel: no job of it, so a prevhash naming it names nothing.
    let mut r = opened(
        config(ChannelKind::Extended),
        extended_open(target_top(EASY), vec![1], 4),
    );
    assert_eq!(r.pool(standard_job(1, None, [1; 32])), [JOB_KIND]);
    assert!(r
        .pool(prev_hash(CHANNEL, 1))
        .contains(&PREV_HASH_NAMES_FUTURE_JOB));

    // NewExtendedMiningJob addressed to a standard channel of a REQUIRES_STANDARD_JOBS device.
    let mut r = opened(
        config(ChannelKind::Standard),
        standard_open(target_top(EASY)),
    );
    let (prefix, suffix) = coinbase_parts(4, false);
    let v = r.pool(extended_job(
        CHANNEL,
        1,
        None,
        true,
        &prefix,
        &suffix,
        &[[5; 32]],
    ));
    assert!(v.contains(&JOB_KIND), "{v:?}");
    assert!(v.contains(&STANDARD_JOBS_FLAG), "{v:?}");
}

#[test]
fn extended_coinbase_must_be_a_stripped_legacy_coinbase() {
    let mut r = opened(
        config(ChannelKind::Extended),
        extended_open(target_top(EASY), vec![9; 4], 8),
    );
    let (prefix, suffix) = coinbase_parts(12, true);
    let f = r.pool_detail(extended_job(CHANNEL, 1, None, true, &prefix, &suffix, &[]));
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].rule, COINBASE_STRIPPED);
    assert!(f[0].detail.contains("BIP141 marker"), "{f:?}");
    assert_eq!(monitor::rule(COINBASE_STRIPPED).unwrap().section, "5.3.16");

    // Extranonce space that does not match the scriptSig length: does not parse.
    let (prefix, suffix) = coinbase_parts(11, false);
    let f = r.pool_detail(extended_job(CHANNEL, 2, None, true, &prefix, &suffix, &[]));
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].rule, COINBASE_STRIPPED);
    assert!(f[0].detail.contains("does not parse"), "{f:?}");

    // A transaction that is not a coinbase (prevout not null): expected, not a MUST.
    let (mut prefix, suffix) = coinbase_parts(12, false);
    prefix[5] = 1;
    let v = r.pool(extended_job(CHANNEL, 3, None, true, &prefix, &suffix, &[]));
    assert_eq!(v, [COINBASE_IS_COINBASE]);
    assert_eq!(
        monitor::rule(COINBASE_IS_COINBASE).unwrap().level,
        Level::Should
    );

    let (prefix, suffix) = coinbase_parts(12, false);
    assert_eq!(
        r.pool(extended_job(CHANNEL, 4, None, true, &prefix, &suffix, &[])),
        none()
    );
}

#[test]
fn version_rolling_rules() {
    mining_extended(config(ChannelKind::Extended), target_top(EASY), true);
    // The job forbids rolling although the device required it.
    let mut r = opened(
        config(ChannelKind::Extended),
        extended_open(target_top(EASY), vec![9; 4], 8),
    );
    let (prefix, suffix, path) = extended_coinbase();
    let job = extended_job(CHANNEL, 1, None, false, &prefix, &suffix, &path);
    assert_eq!(r.pool(job), [VERSION_ROLLING_FLAG]);

    // REQUIRES_FIXED_VERSION: an extended job allowing rolling.
    let mut c = config(ChannelKind::Extended);
    c.version_rolling = false;
    let mut r = Rig::new(c);
    r.start();
    assert_eq!(r.pool(success(REQUIRES_FIXED_VERSION)), none());
    assert_eq!(
        r.pool(extended_open(target_top(EASY), vec![9; 4], 8)),
        none()
    );
    let job = extended_job(CHANNEL, 1, None, true, &prefix, &suffix, &path);
    assert_eq!(r.pool(job), [FIXED_VERSION]);
    // A standard device with REQUIRES_FIXED_VERSION: standard jobs are fine.
    let mut c = config(ChannelKind::Standard);
    c.setup_flags = Some(REQUIRES_STANDARD_JOBS);
    let mut r = Rig::new(c);
    r.start();
    r.pool(success(REQUIRES_FIXED_VERSION));
    r.pool(standard_open(target_top(EASY)));
    assert_eq!(r.pool(standard_job(1, None, [1; 32])), none());
    assert_eq!(r.pool(prev_hash(CHANNEL, 1)), none());
    let _ = REQUIRES_VERSION_ROLLING;
}

// ---------------------------------------------------------------------------------------------------
// Targets, extranonce prefix, groups

#[test]
fn set_target_within_max_target_also_to_the_group() {
    let mut c = config(ChannelKind::Standard);
    c.max_target = target_top(0x00ff_ffff);
    let mut r = mining_standard(c, target_top(0x000f_ffff));
    let set = |channel_id, top| -> Message<'static> {
        SetTarget {
            channel_id,
            maximum_target: U256(target_top(top)),
        }
        .into()
    };
    assert_eq!(r.pool(set(CHANNEL, 0x0000_ffff)), none());
    // To the group the channel is in: applies to the channel.
    assert_eq!(r.pool(set(GROUP, EASY)), [TARGET_WITHIN_MAX]);
    assert_eq!(r.pool(set(GROUP, 0x0000_ffff)), none());
    // For an unknown channel.
    assert_eq!(r.pool(set(999, 1)), [CHANNEL_ID_KNOWN]);
}

#[test]
fn set_extranonce_prefix_not_to_a_group_and_within_32_bytes() {
    let mut r = mining_extended(config(ChannelKind::Extended), target_top(EASY), true);
    let prefix = |channel_id, bytes: Vec<u8>| -> Message<'static> {
        SetExtranoncePrefix {
            channel_id,
            extranonce_prefix: B0_32::new(bytes).unwrap(),
        }
        .into()
    };
    assert_eq!(r.pool(prefix(CHANNEL, vec![7; 4])), none());
    let (p, s, path) = extended_coinbase();
    assert_eq!(
        r.pool(extended_job(
            CHANNEL,
            2,
            Some(MIN_NTIME),
            true,
            &p,
            &s,
            &path
        )),
        none()
    );
    assert_eq!(r.pool(prefix(GROUP, vec![1])), [NO_PREFIX_TO_GROUP]);
    let f = r.pool_detail(prefix(CHANNEL, vec![1; 25]));
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].rule, EXTRANONCE_SIZE);
    assert!(
        f[0].detail
            .contains("(25 bytes) + extranonce_size (8) = 33 > 32"),
        "{f:?}"
    );
}

#[test]
fn group_channels_move_collide_and_need_no_standard_jobs_flag() {
    let mut r = opened(
        config(ChannelKind::Extended),
        extended_open(target_top(EASY), vec![9; 4], 8),
    );
    let group = |group_channel_id, ids: Vec<u32>| -> Message<'static> {
        SetGroupChannel {
            group_channel_id,
            channel_ids: Seq0_64K::new(ids).unwrap(),
        }
        .into()
    };
    assert_eq!(r.pool(group(200, vec![CHANNEL, 8])), none());
    let (prefix, suffix, path) = extended_coinbase();
    assert_eq!(
        r.pool(extended_job(200, 1, None, true, &prefix, &suffix, &path)),
        none()
    );
    assert_eq!(r.pool(prev_hash(200, 1)), none());
    // The old group no longer holds the channel: job 1 was never sent there.
    assert_eq!(r.pool(prev_hash(GROUP, 1)), [PREV_HASH_NAMES_FUTURE_JOB]);
    // A group id equal to the channel id.
    assert_eq!(r.pool(group(CHANNEL, vec![])), [UNIQUE_CHANNEL_IDS]);

    // With REQUIRES_STANDARD_JOBS, SetGroupChannel and group extended jobs are forbidden.
    let mut r = opened(
        config(ChannelKind::Standard),
        standard_open(target_top(EASY)),
    );
    assert_eq!(r.pool(group(GROUP, vec![CHANNEL])), [STANDARD_JOBS_FLAG]);
    let (prefix, suffix) = coinbase_parts(4, false);
    let v = r.pool(extended_job(GROUP, 1, None, true, &prefix, &suffix, &[]));
    assert!(v.contains(&STANDARD_JOBS_FLAG), "{v:?}");
}

// ---------------------------------------------------------------------------------------------------
// Shares

#[test]
fn share_answers_match_the_shares_sent() {
    let mut r = mining_standard(config(ChannelKind::Standard), target_top(EASY));
    for seq in 0..4 {
        r.client(share(seq));
    }
    assert_eq!(r.pool(shares_error(1, "invalid-nonce")), none());
    assert_eq!(r.pool(shares_success(CHANNEL, 2, 2)), none());
    // An error for a share already acknowledged (expected, not a MUST).
    assert_eq!(r.pool(shares_error(0, "x")), [SHARE_ERROR_AFTER_ACK]);
    assert_eq!(
        monitor::rule(SHARE_ERROR_AFTER_ACK).unwrap().level,
        Level::Should
    );
    // A success beyond what was sent.
    let f = r.pool_detail(shares_success(CHANNEL, 9, 3));
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].rule, SHARE_ACKS);
    assert!(
        f[0].detail.contains("last_sequence_number 9, never sent"),
        "{f:?}"
    );
    // A count larger than what was outstanding (only share 3 is).
    let f = r.pool_detail(shares_success(CHANNEL, 3, 3));
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].rule, SHARE_ACKS);
    assert!(
        f[0].detail
            .contains("new_submits_accepted_count 3 but only 1"),
        "{f:?}"
    );
    // An error for a share never sent.
    let f = r.pool_detail(shares_error(50, "x"));
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].rule, SHARE_ERROR_ECHO);
    assert!(
        f[0].detail.contains("sequence_number 50, never sent"),
        "{f:?}"
    );
    // For another channel id (the group: no share was sent on it).
    assert_eq!(r.pool(shares_success(GROUP, 0, 0)), [SHARE_ACKS]);
}

#[test]
fn codes_without_control_characters() {
    let mut r = mining_standard(config(ChannelKind::Standard), target_top(EASY));
    r.client(share(0));
    assert_eq!(r.pool(shares_error(0, "bad\nshare")), [PRINTABLE_CODES]);
    let close: Message = CloseChannel {
        channel_id: GROUP,
        reason_code: str255("maintenance"),
    }
    .into();
    assert_eq!(r.pool(close), none());
}

#[test]
fn messages_for_a_closed_channel_but_late_answers_are_fine() {
    let mut r = mining_standard(config(ChannelKind::Standard), target_top(EASY));
    r.client(share(0));
    r.close();
    let f = r.pool_detail(standard_job(2, None, [2; 32]));
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].rule, SILENT_AFTER_CLOSE);
    assert!(f[0].detail.contains("NewMiningJob for channel 7"), "{f:?}");
    assert_eq!(monitor::rule(SILENT_AFTER_CLOSE).unwrap().section, "5.3.9");
    // The group of the closed channel.
    let f = r.pool_detail(prev_hash(GROUP, 2));
    assert!(
        f.iter()
            .any(|x| x.rule == SILENT_AFTER_CLOSE
                && x.detail.contains("SetNewPrevHash for group 100")),
        "{f:?}"
    );
    // The answer to the share sent before the close.
    assert_eq!(r.pool(shares_success(CHANNEL, 0, 1)), none());
}

// ---------------------------------------------------------------------------------------------------
// The client's side

fn frame(m: &Message<'_>) -> Vec<u8> {
    to_frame_bytes(m, &[]).unwrap()
}

#[test]
fn the_clients_frames_are_judged_by_the_client_rules() {
    let setup = sv2_conformance::session::setup_connection(0, 2, 2, 0);
    let open: Message = sv2_codec::messages::mining::OpenStandardMiningChannel {
        request_id: 1,
        user_identity: str255("m"),
        nominal_hash_rate: 1.0,
        max_target: U256([0xff; 32]),
    }
    .into();
    let at = Timestamp(0);
    // A clean client: every client rule exercised, no finding.
    let mut t = Transcript::default();
    t.frame(at, Direction::ClientToServer, &frame(&setup), None);
    t.frame(at, Direction::ServerToClient, &frame(&success(0)), None);
    t.frame(at, Direction::ClientToServer, &frame(&open), None);
    let report = check_transcript(&t);
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    for rule in [
        CLIENT_STRICT_DECODING,
        CLIENT_CHANNEL_MSG_BIT,
        CLIENT_SETUP_FIRST,
    ] {
        assert!(report.exercised.contains(rule), "{rule}");
        assert!(!report.server().exercised.contains(rule), "{rule}");
    }

    // Opening a channel first, a flipped channel_msg bit, a frame that does not decode.
    let mut t = Transcript::default();
    t.frame(at, Direction::ClientToServer, &frame(&open), None);
    let mut flipped = frame(&setup);
    flipped[1] |= 0x80;
    t.frame(at, Direction::ClientToServer, &flipped, None);
    let mut garbage = frame(&open);
    garbage.push(0);
    garbage[3] += 1; // msg_length covers the stray byte
    t.frame(at, Direction::ClientToServer, &garbage, None);
    let report = check_transcript(&t);
    let got: Vec<(&str, Side, usize)> = report
        .findings
        .iter()
        .map(|f| (f.rule, f.by, f.entry))
        .collect();
    assert_eq!(
        got,
        [
            (CLIENT_SETUP_FIRST, Side::Client, 0),
            (CLIENT_CHANNEL_MSG_BIT, Side::Client, 1),
            (CLIENT_STRICT_DECODING, Side::Client, 2),
        ],
        "{:?}",
        report.findings
    );
    // None of them counts against the server.
    assert!(report.server().findings.is_empty());
    for rule in CLIENT_RULES {
        assert_eq!(rule.role, sv2_conformance::check::Role::Client);
        assert!(monitor::rule(rule.id).is_some());
    }
}

#[test]
fn the_pool_suite_judges_only_the_servers_findings() {
    // A malformed client frame and a server answer that breaks a rule: a pool's verdict (the
    // runner's, over a transcript) names only the server's finding.
    let at = Timestamp(0);
    let mut t = Transcript::default();
    let mut flipped = frame(&sv2_conformance::session::setup_connection(0, 2, 2, 0));
    flipped[1] |= 0x80;
    t.frame(at, Direction::ClientToServer, &flipped, None);
    t.frame(
        at,
        Direction::ServerToClient,
        &frame(&standard_job(1, None, [0; 32])),
        None,
    );
    let results = sv2_conformance::runner::monitor_transcript(&t);
    let failed: Vec<&str> = results
        .iter()
        .filter(|r| r.outcome.verdict == sv2_conformance::Verdict::Fail)
        .map(|r| r.check.id)
        .collect();
    assert_eq!(failed, [CHANNEL_ID_KNOWN]);
    assert!(results
        .iter()
        .all(|r| r.check.role == sv2_conformance::check::Role::Pool));
}

#[test]
fn live_findings_are_those_of_the_whole_transcript() {
    let mut r = mining_standard(config(ChannelKind::Standard), target_top(EASY));
    r.pool(standard_job(1, None, [1; 32]));
    r.pool(prev_hash(CHANNEL, 99));
    // Rig's drop compares the live findings with check_transcript's.
    assert_eq!(r.monitor.report().findings.len(), 2);
    let _ = (Side::Client, NBITS);
}

#[test]
fn the_rules_shown_failing_here_keep_their_ids() {
    // The catalogue test (every_check_can_fail.rs) finds each rule by its quoted id.
    let ids = [
        (JOB_AFTER_PREV_HASH, "monitor.job-after-prev-hash"),
        (JOB_MIN_NTIME, "monitor.job-min-ntime"),
        (COINBASE_IS_COINBASE, "monitor.coinbase-is-coinbase"),
        (SHARE_ERROR_AFTER_ACK, "monitor.share-error-after-ack"),
        (CLIENT_STRICT_DECODING, "monitor.client-strict-decoding"),
        (CLIENT_CHANNEL_MSG_BIT, "monitor.client-channel-msg-bit"),
        (CLIENT_SETUP_FIRST, "monitor.client-setup-first"),
    ];
    for (constant, id) in ids {
        assert_eq!(constant, id);
    }
}
