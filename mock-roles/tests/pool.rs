//! The mock pool's core, driven without sockets: setup and flags, channels, jobs from templates (the
//! in-process TP or a hand-fed one), shares mined for real and every SubmitShares.Error code, batching,
//! vardiff, blocks checked by the TP and by rust-bitcoin, and each faulty mode.
//!
//! A small client model ([`Client`]) follows every message the pool sends to a session, as a miner
//! would (channels, jobs, prev hashes, to mine shares), and records the conversation: what it sent and
//! what the pool answered. The conformance monitor judges that conversation as it grows; the tests
//! assert the pool broke no rule (or, for the faulty modes, that the expected one shows up).

use std::collections::{BTreeMap, BTreeSet};

use bitcoin::consensus::deserialize;
use sv2_chain::script::read_bip34_height;
use sv2_chain::target::{compact_to_target, meets_target};
use sv2_chain::tx::Transaction;
use sv2_chain::{merkle, sha256d};
use sv2_codec::messages::common::SetupConnection;
use sv2_codec::messages::extensions::RequestExtensions;
use sv2_codec::messages::flags::{
    REQUIRES_EXTENDED_CHANNELS, REQUIRES_FIXED_VERSION, REQUIRES_STANDARD_JOBS,
    REQUIRES_VERSION_ROLLING, REQUIRES_WORK_SELECTION,
};
use sv2_codec::messages::mining::{
    CloseChannel, OpenExtendedMiningChannel, OpenStandardMiningChannel, SetCustomMiningJob,
    SubmitSharesExtended, SubmitSharesStandard, UpdateChannel,
};
use sv2_codec::messages::template_distribution::{NewTemplate, SetNewPrevHashTdp};
use sv2_codec::noise::keys::{Keypair, SecretKey};
use sv2_codec::noise::InitiatorConfig;
use sv2_codec::types::{Seq0_255, Seq0_64K, Str0_255, B0_255, B0_32, B0_64K, U256};
use sv2_codec::Message;
use sv2_codec::{decode_frame, DecodeError, Decoded, Frame, Tlv};
use sv2_conformance::monitor::{
    Finding, Monitor, CLIENT_SEQUENCE_UNIQUE, CLIENT_SHARE_NTIME, JOB_ID_UNIQUE,
    PREV_HASH_NAMES_FUTURE_JOB, SILENT_AFTER_CLOSE,
};
use sv2_engine::BlockHeader;
use sv2_mock::pool::driver::{serve, PoolServerConfig, UpstreamTp};
use sv2_mock::pool::{
    ExtensionSupport, Output, Pool, PoolConfig, PoolFaults, SessionId, ShareError, ShareRules,
    TemplateSource,
};
use sv2_mock::tp::driver::TpServerConfig;
use sv2_mock::tp::{self, TemplateProvider, TpConfig};
use sv2_mock::work::{JobBody, JobData};
use sv2_wire::{Connection, Direction, KeyLog, NetError, Side, Timestamp, Transcript};
use tokio::net::{TcpListener, TcpStream};

const NOW: u32 = 1_700_000_000;
/// nBits of difficulty 1: tests mine shares at the pool's regtest-easy target without finding blocks.
const HARD_NBITS: u32 = 0x1d00_ffff;

// ---------------------------------------------------------------------------------------------------
// Setup helpers

fn setup_message(protocol: u8, min: u16, max: u16, flags: u32) -> Message<'static> {
    SetupConnection {
        protocol,
        min_version: min,
        max_version: max,
        flags,
        endpoint_host: Str0_255::new(b"127.0.0.1".to_vec()).unwrap(),
        endpoint_port: 3333,
        vendor: Str0_255::new(b"test".to_vec()).unwrap(),
        hardware_version: Str0_255::default(),
        firmware: Str0_255::default(),
        device_id: Str0_255::default(),
    }
    .into()
}

/// A pool whose in-process TP builds blocks no test share will meet.
fn config() -> PoolConfig {
    PoolConfig {
        template_source: TemplateSource::InProcess(TpConfig {
            nbits: HARD_NBITS,
            ..TpConfig::default()
        }),
        ..PoolConfig::default()
    }
}

/// A pool whose in-process TP uses regtest nBits: about every other hash is a block.
fn regtest_config() -> PoolConfig {
    PoolConfig {
        template_source: TemplateSource::InProcess(TpConfig::default()),
        ..PoolConfig::default()
    }
}

fn messages(outputs: &[Output], session: SessionId) -> Vec<Message<'static>> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send {
                session: s,
                message,
            } if *s == session => Some(message.clone()),
            _ => None,
        })
        .collect()
}

fn open_standard(request_id: u32, max_target: [u8; 32]) -> Message<'static> {
    OpenStandardMiningChannel {
        request_id,
        user_identity: Str0_255::new(b"worker.1".to_vec()).unwrap(),
        nominal_hash_rate: 0.0,
        max_target: U256(max_target),
    }
    .into()
}

fn open_extended(
    request_id: u32,
    max_target: [u8; 32],
    min_extranonce_size: u16,
) -> Message<'static> {
    OpenExtendedMiningChannel {
        request_id,
        user_identity: Str0_255::new(b"proxy".to_vec()).unwrap(),
        nominal_hash_rate: 0.0,
        max_target: U256(max_target),
        min_extranonce_size,
    }
    .into()
}

fn close(channel_id: u32) -> Message<'static> {
    CloseChannel {
        channel_id,
        reason_code: Str0_255::new(b"bye".to_vec()).unwrap(),
    }
    .into()
}

// ---------------------------------------------------------------------------------------------------
// A client model: what a miner would know after each message; the conformance monitor judges the
// conversation.

#[derive(Debug, Clone)]
struct Job {
    version: u32,
    future: bool,
    rolling: bool,
    /// The job as the shared client view parses it: the merkle root, or the coinbase parts.
    body: JobBody,
    /// The channel's extranonce prefix when the job came (§5.3.10: a SetExtranoncePrefix applies
    /// to the jobs after it).
    prefix: Vec<u8>,
}

#[derive(Debug, Clone)]
struct Active {
    job_id: u32,
    prev_hash: [u8; 32],
    min_ntime: u32,
    nbits: u32,
}

#[derive(Debug, Clone)]
struct Chan {
    /// None: standard; Some(size): extended.
    extranonce_size: Option<u16>,
    prefix: Vec<u8>,
    target: [u8; 32],
    group: u32,
    jobs: BTreeMap<u32, Job>,
    active: Option<Active>,
    got_job: bool,
}

struct Client {
    session: SessionId,
    chans: BTreeMap<u32, Chan>,
    groups: BTreeMap<u32, BTreeSet<u32>>,
    closed: BTreeSet<u32>,
    /// What the client sent and the pool answered, in order.
    transcript: Transcript,
    /// The conformance monitor, following the transcript.
    monitor: Monitor,
    received: Vec<Message<'static>>,
    sequence: u32,
    /// Where the next search starts, so that no two shares are the same.
    next_nonce: u32,
}

impl Client {
    fn new(session: SessionId) -> Self {
        Self {
            session,
            chans: BTreeMap::new(),
            groups: BTreeMap::new(),
            closed: BTreeSet::new(),
            transcript: Transcript::default(),
            monitor: Monitor::new(),
            received: Vec::new(),
            sequence: 0,
            next_nonce: 0,
        }
    }

    /// Connects a client to `pool` with `flags`.
    fn connect(pool: &mut Pool, flags: u32) -> Self {
        let session = pool.open_session(NOW);
        let mut c = Self::new(session);
        let out = c.send(pool, &setup_message(0, 2, 2, flags), NOW);
        let msgs = c.follow(&out);
        assert!(
            matches!(&msgs[..], [Message::SetupConnectionSuccess(s)] if s.used_version == 2),
            "{out:?}"
        );
        c
    }

    /// Records a frame of the conversation and lets the monitor judge it.
    fn record(&mut self, direction: Direction, message: &Message<'_>) {
        let frame = sv2_codec::to_frame_bytes(message, &[]).expect("a message that encodes");
        // A simulated clock: each frame a second after the previous one (none crosses another).
        let at = Timestamp(self.transcript.len() as u64 * 1_000_000_000);
        self.transcript.frame(at, direction, &frame, None);
        let i = self.transcript.len() - 1;
        let entry = self.transcript.entries()[i].clone();
        self.monitor.observe(i, &entry);
    }

    /// `message` went to the pool by another way (a connection): recorded as sent.
    fn sent(&mut self, message: &Message<'static>) {
        self.record(Direction::ClientToServer, message);
    }

    /// Sends `message` to the pool on this client's session: the pool's outputs.
    fn send(&mut self, pool: &mut Pool, message: &Message<'static>, now: u32) -> Vec<Output> {
        self.record(Direction::ClientToServer, message);
        pool.handle(self.session, message, now)
    }

    /// Sends `message` and follows the answer.
    fn exchange(
        &mut self,
        pool: &mut Pool,
        message: &Message<'static>,
        now: u32,
    ) -> Vec<Message<'static>> {
        let out = self.send(pool, message, now);
        self.follow(&out)
    }

    /// The rules the pool broke so far (the client's own frames break none, but for its shares:
    /// the tests send variants of one share under its sequence number, and shares with ntimes out
    /// of bounds, on purpose).
    fn violations(&self) -> Vec<&Finding> {
        let findings = &self.monitor.report().findings;
        assert!(
            findings.iter().all(|f| f.by == Side::Server
                || f.rule == CLIENT_SEQUENCE_UNIQUE
                || f.rule == CLIENT_SHARE_NTIME),
            "the test client broke a rule: {findings:?}"
        );
        findings.iter().filter(|f| f.by == Side::Server).collect()
    }

    fn addressees(&self, id: u32) -> Vec<u32> {
        match self.groups.get(&id) {
            Some(members) => members.iter().copied().collect(),
            None => vec![id],
        }
    }

    /// Whether the pool broke `rule` so far.
    fn violated(&self, rule: &str) -> bool {
        self.violations().iter().any(|f| f.rule == rule)
    }

    fn observe(&mut self, outputs: &[Output]) -> Vec<Message<'static>> {
        let msgs = messages(outputs, self.session);
        for m in &msgs {
            self.record(Direction::ServerToClient, m);
            self.apply(m);
        }
        self.received.extend(msgs.iter().cloned());
        msgs
    }

    /// Observes and requires that no rule was broken.
    fn follow(&mut self, outputs: &[Output]) -> Vec<Message<'static>> {
        let msgs = self.observe(outputs);
        let violations = self.violations();
        assert!(violations.is_empty(), "{violations:?}");
        msgs
    }

    fn add_job(&mut self, channel_id: u32, job_id: u32, mut job: Job, min_ntime: Option<u32>) {
        let Some(chan) = self.chans.get_mut(&channel_id) else {
            return;
        };
        job.prefix = chan.prefix.clone();
        chan.got_job = true;
        chan.jobs.insert(job_id, job);
        if let Some(min_ntime) = min_ntime {
            if let Some(active) = chan.active.clone() {
                chan.active = Some(Active {
                    job_id,
                    min_ntime,
                    ..active
                });
            }
        }
    }

    fn apply(&mut self, message: &Message<'static>) {
        match message {
            Message::OpenStandardMiningChannelSuccess(s) => self.new_chan(
                s.channel_id,
                s.group_channel_id,
                None,
                s.extranonce_prefix.as_bytes(),
                s.target.0,
            ),
            Message::OpenExtendedMiningChannelSuccess(s) => self.new_chan(
                s.channel_id,
                s.group_channel_id,
                Some(s.extranonce_size),
                s.extranonce_prefix.as_bytes(),
                s.target.0,
            ),
            Message::NewMiningJob(j) => {
                let data = JobData::standard(j);
                let job = Job {
                    version: data.version,
                    future: data.min_ntime.is_none(),
                    rolling: true,
                    body: data.body,
                    prefix: Vec::new(),
                };
                self.add_job(j.channel_id, j.job_id, job, j.min_ntime);
            }
            Message::NewExtendedMiningJob(j) => {
                let data = JobData::extended(j);
                for member in self.addressees(j.channel_id) {
                    let job = Job {
                        version: data.version,
                        future: data.min_ntime.is_none(),
                        rolling: data.body.version_rolling_allowed(),
                        body: data.body.clone(),
                        prefix: Vec::new(),
                    };
                    self.add_job(member, j.job_id, job, j.min_ntime);
                }
            }
            Message::SetNewPrevHash(p) => {
                for member in self.addressees(p.channel_id) {
                    let Some(chan) = self.chans.get_mut(&member) else {
                        continue;
                    };
                    if !chan.jobs.get(&p.job_id).is_some_and(|job| job.future) {
                        continue;
                    }
                    // Only the named job stays valid.
                    chan.jobs.retain(|id, _| *id == p.job_id);
                    if let Some(job) = chan.jobs.get_mut(&p.job_id) {
                        job.future = false;
                    }
                    chan.active = Some(Active {
                        job_id: p.job_id,
                        prev_hash: p.prev_hash.0,
                        min_ntime: p.min_ntime,
                        nbits: p.nbits,
                    });
                }
            }
            Message::SetTarget(t) => {
                if let Some(chan) = self.chans.get_mut(&t.channel_id) {
                    chan.target = t.maximum_target.0;
                }
            }
            Message::SetExtranoncePrefix(p) => {
                if let Some(chan) = self.chans.get_mut(&p.channel_id) {
                    chan.prefix = p.extranonce_prefix.as_bytes().to_vec();
                }
            }
            Message::SetGroupChannel(g) => {
                self.groups
                    .insert(g.group_channel_id, g.channel_ids.iter().copied().collect());
            }
            _ => {}
        }
    }

    fn new_chan(
        &mut self,
        id: u32,
        group: u32,
        size: Option<u16>,
        prefix: &[u8],
        target: [u8; 32],
    ) {
        self.groups.entry(group).or_default().insert(id);
        self.chans.insert(
            id,
            Chan {
                extranonce_size: size,
                prefix: prefix.to_vec(),
                target,
                group,
                jobs: BTreeMap::new(),
                active: None,
                got_job: false,
            },
        );
    }

    fn chan(&self, id: u32) -> &Chan {
        &self.chans[&id]
    }

    /// The id of the channel a Success among `msgs` opened.
    fn opened(msgs: &[Message<'static>]) -> u32 {
        msgs.iter()
            .find_map(|m| match m {
                Message::OpenStandardMiningChannelSuccess(s) => Some(s.channel_id),
                Message::OpenExtendedMiningChannelSuccess(s) => Some(s.channel_id),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no channel opened: {msgs:?}"))
    }

    fn open(&mut self, pool: &mut Pool, message: Message<'static>) -> u32 {
        let msgs = self.exchange(pool, &message, NOW);
        Self::opened(&msgs)
    }

    /// Mines a share on the channel's active job: the first nonce whose hash satisfies `want`.
    fn mine(
        &mut self,
        channel_id: u32,
        extranonce: &[u8],
        want: impl Fn(&[u8; 32]) -> bool,
    ) -> Mined {
        let chan = self.chan(channel_id);
        let active = chan.active.clone().expect("an active job");
        let job = chan.jobs[&active.job_id].clone();
        // A standard channel's extended job (through its group): its extranonce_prefix completes
        // the coinbase, with no client extranonce.
        let extranonce = if chan.extranonce_size.is_none() {
            &[][..]
        } else {
            extranonce
        };
        let root = job.body.merkle_root(&job.prefix, extranonce);
        let version = if job.rolling {
            job.version ^ 0x0000_2000
        } else {
            job.version
        };
        let ntime = active.min_ntime;
        for nonce in self.next_nonce.. {
            let header = BlockHeader {
                version,
                prev_hash: active.prev_hash,
                merkle_root: root,
                ntime,
                nbits: active.nbits,
                nonce,
            };
            let hash = sha256d(&header.to_bytes());
            if want(&hash) {
                self.next_nonce = nonce.wrapping_add(1);
                self.sequence += 1;
                return Mined {
                    channel_id,
                    sequence_number: self.sequence,
                    job_id: active.job_id,
                    nonce,
                    ntime,
                    version,
                    extranonce: extranonce.to_vec(),
                    hash,
                };
            }
        }
        unreachable!()
    }

    /// A share that meets the channel's target.
    fn good(&mut self, channel_id: u32, extranonce: &[u8]) -> Mined {
        let target = self.chan(channel_id).target;
        self.mine(channel_id, extranonce, |h| meets_target(h, &target))
    }
}

#[derive(Debug, Clone)]
struct Mined {
    channel_id: u32,
    sequence_number: u32,
    job_id: u32,
    nonce: u32,
    ntime: u32,
    version: u32,
    extranonce: Vec<u8>,
    hash: [u8; 32],
}

impl Mined {
    fn standard(&self) -> Message<'static> {
        SubmitSharesStandard {
            channel_id: self.channel_id,
            sequence_number: self.sequence_number,
            job_id: self.job_id,
            nonce: self.nonce,
            ntime: self.ntime,
            version: self.version,
        }
        .into()
    }

    fn extended(&self) -> Message<'static> {
        SubmitSharesExtended {
            channel_id: self.channel_id,
            sequence_number: self.sequence_number,
            job_id: self.job_id,
            nonce: self.nonce,
            ntime: self.ntime,
            version: self.version,
            extranonce: B0_32::new(self.extranonce.clone()).unwrap(),
        }
        .into()
    }
}

fn error_code(msgs: &[Message<'static>]) -> Option<(u32, String)> {
    msgs.iter().find_map(|m| match m {
        Message::SubmitSharesError(e) => Some((
            e.sequence_number,
            String::from_utf8_lossy(e.error_code.as_bytes()).into_owned(),
        )),
        _ => None,
    })
}

const ANY: [u8; 32] = [0xff; 32];

// ---------------------------------------------------------------------------------------------------
// Connection setup

#[test]
fn setup_checks_protocol_version_and_flags() {
    let mut pool = Pool::new(config(), NOW).unwrap();
    let refused = |pool: &mut Pool, message: Message<'static>| {
        let s = pool.open_session(NOW);
        let out = pool.handle(s, &message, NOW);
        let msgs = messages(&out, s);
        let [Message::SetupConnectionError(e)] = &msgs[..] else {
            panic!("{out:?}");
        };
        assert!(matches!(out.last(), Some(Output::Close { .. })), "{out:?}");
        // A refused session answers nothing more.
        assert!(pool.handle(s, &setup_message(0, 2, 2, 0), NOW).is_empty());
        (
            e.flags,
            String::from_utf8_lossy(e.error_code.as_bytes()).into_owned(),
        )
    };
    assert_eq!(
        refused(&mut pool, setup_message(2, 2, 2, 0)),
        (0, "unsupported-protocol".into())
    );
    assert_eq!(
        refused(&mut pool, setup_message(0, 3, 4, 0)),
        (0, "protocol-version-mismatch".into())
    );
    assert_eq!(
        refused(&mut pool, setup_message(0, 2, 2, REQUIRES_WORK_SELECTION)),
        (REQUIRES_WORK_SELECTION, "unsupported-feature-flags".into())
    );
    // Every unsupported flag at once (§3.6.3): all but the two it honours.
    assert_eq!(
        refused(&mut pool, setup_message(0, 1, 3, u32::MAX)).0,
        !(REQUIRES_STANDARD_JOBS | REQUIRES_VERSION_ROLLING)
    );
    // The flags it honours.
    for flags in [
        0,
        REQUIRES_STANDARD_JOBS,
        REQUIRES_VERSION_ROLLING,
        REQUIRES_STANDARD_JOBS | REQUIRES_VERSION_ROLLING,
    ] {
        Client::connect(&mut pool, flags);
    }

    // A fixed-version pool refuses REQUIRES_VERSION_ROLLING; an extended-only pool refuses
    // REQUIRES_STANDARD_JOBS; both say so in Success.
    let mut strict = Pool::new(
        PoolConfig {
            fixed_version: true,
            requires_extended_channels: true,
            ..config()
        },
        NOW,
    )
    .unwrap();
    assert_eq!(
        refused(&mut strict, setup_message(0, 2, 2, u32::MAX)).0,
        u32::MAX // every flag: the two otherwise honoured ones are refused here too
    );
    assert_eq!(
        refused(
            &mut strict,
            setup_message(0, 2, 2, REQUIRES_VERSION_ROLLING)
        )
        .0,
        REQUIRES_VERSION_ROLLING
    );
    let s = strict.open_session(NOW);
    let msgs = messages(&strict.handle(s, &setup_message(0, 2, 2, 0), NOW), s);
    assert!(
        matches!(&msgs[..], [Message::SetupConnectionSuccess(ok)] if ok.flags == REQUIRES_FIXED_VERSION | REQUIRES_EXTENDED_CHANNELS),
        "{msgs:?}"
    );
}

#[test]
fn anything_before_setup_closes_the_session() {
    let mut pool = Pool::new(config(), NOW).unwrap();
    let s = pool.open_session(NOW);
    let out = pool.handle(s, &open_standard(1, ANY), NOW);
    assert!(
        matches!(&out[..], [Output::Close { reason, .. }] if reason.contains("SetupConnection")),
        "{out:?}"
    );
    assert!(pool.handle(s, &setup_message(0, 2, 2, 0), NOW).is_empty());
    // An unknown session is closed too.
    assert!(matches!(
        &pool.handle(999, &setup_message(0, 2, 2, 0), NOW)[..],
        [Output::Close { .. }]
    ));
}

// ---------------------------------------------------------------------------------------------------
// Channels

#[test]
fn a_standard_channel_starts_with_a_future_job_then_its_prev_hash() {
    for flags in [0, REQUIRES_STANDARD_JOBS] {
        let mut pool = Pool::new(config(), NOW).unwrap();
        let mut c = Client::connect(&mut pool, flags);
        let out = c.send(&mut pool, &open_standard(77, ANY), NOW);
        let msgs = c.follow(&out);
        let (
            Message::OpenStandardMiningChannelSuccess(ok),
            Message::NewMiningJob(job),
            Message::SetNewPrevHash(p),
        ) = (&msgs[0], &msgs[1], &msgs[2])
        else {
            panic!("{msgs:?}");
        };
        assert_eq!(ok.request_id, 77);
        assert_eq!(job.channel_id, ok.channel_id);
        assert_eq!(job.min_ntime, None);
        assert_eq!((p.channel_id, p.job_id), (ok.channel_id, job.job_id));
        // The root is the template's with this channel's prefix as the whole extranonce.
        let template = pool.current_template().unwrap();
        assert_eq!(
            job.merkle_root.0,
            template.merkle_root(ok.extranonce_prefix.as_bytes())
        );
        assert_eq!(ok.extranonce_prefix.len(), 32);
        let tp = pool.template_provider().unwrap();
        assert_eq!(p.prev_hash.0, tp.tip().prev_hash);
        assert_eq!(p.nbits, HARD_NBITS);
        // A group channel, announced unless the client wants standard jobs only.
        let announced = matches!(msgs.last(), Some(Message::SetGroupChannel(g)) if g.group_channel_id == ok.group_channel_id && g.channel_ids.as_slice() == [ok.channel_id]);
        assert_eq!(announced, flags == 0, "{msgs:?}");
        assert_eq!(msgs.len(), if flags == 0 { 4 } else { 3 });
        let t: [u8; 32] = ok.target.0;
        assert_eq!(t, PoolConfig::default().easiest_target);
    }
}

#[test]
fn channel_and_group_ids_never_collide_over_100_opens() {
    let mut pool = Pool::new(config(), NOW).unwrap();
    let mut a = Client::connect(&mut pool, 0);
    let mut b = Client::connect(&mut pool, REQUIRES_STANDARD_JOBS);
    let mut prefixes = BTreeSet::new();
    for i in 0..100u32 {
        let m = if i % 2 == 0 {
            open_standard(i, ANY)
        } else {
            open_extended(i, ANY, 8)
        };
        let out = a.send(&mut pool, &m, NOW);
        let msgs = a.follow(&out);
        let (request_id, prefix) = match &msgs[0] {
            Message::OpenStandardMiningChannelSuccess(s) => {
                (s.request_id, s.extranonce_prefix.as_bytes()[..4].to_vec())
            }
            Message::OpenExtendedMiningChannelSuccess(s) => {
                (s.request_id, s.extranonce_prefix.as_bytes().to_vec())
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(request_id, i);
        assert!(prefixes.insert(prefix), "extranonce prefix reused");
        let out = b.send(&mut pool, &open_standard(i, ANY), NOW);
        let msgs = b.follow(&out);
        let Message::OpenStandardMiningChannelSuccess(s) = &msgs[0] else {
            panic!()
        };
        // Unique across the pool, not only per connection.
        assert!(prefixes.insert(s.extranonce_prefix.as_bytes()[..4].to_vec()));
    }
    assert_eq!(a.chans.len(), 100);
    let ids: BTreeSet<u32> = a.chans.keys().copied().collect();
    let groups: BTreeSet<u32> = a.chans.values().map(|c| c.group).collect();
    assert!(ids.is_disjoint(&groups));
    assert_eq!(groups.len(), 1);
    // One group holds all 100, standard and extended alike (same full extranonce length).
    assert_eq!(pool.groups(a.session).values().next().unwrap().len(), 100);
    // The pool's own view agrees.
    assert_eq!(pool.channels(a.session).len(), 100);
    assert_eq!(pool.stats().channels_opened, 200);
}

#[test]
fn open_refusals_echo_the_request_id() {
    let mut pool = Pool::new(config(), NOW).unwrap();
    let mut c = Client::connect(&mut pool, 0);
    let refused = |pool: &mut Pool, c: &mut Client, m: Message<'static>| -> (u32, String) {
        let out = c.send(pool, &m, NOW);
        let msgs = c.follow(&out);
        let [Message::OpenMiningChannelError(e)] = &msgs[..] else {
            panic!("{msgs:?}")
        };
        (
            e.request_id,
            String::from_utf8_lossy(e.error_code.as_bytes()).into_owned(),
        )
    };
    let mut one = [0u8; 32];
    one[0] = 1;
    assert_eq!(
        refused(&mut pool, &mut c, open_standard(5, one)),
        (5, "max-target-out-of-range".into())
    );
    assert_eq!(
        refused(&mut pool, &mut c, open_extended(6, one, 0)),
        (6, "max-target-out-of-range".into())
    );
    // 32 - 4 bytes are the miner's: 29 is too many, and so is 33 (B0_32).
    assert_eq!(
        refused(&mut pool, &mut c, open_extended(7, ANY, 29)),
        (7, "min-extranonce-size-too-large".into())
    );
    assert_eq!(
        refused(&mut pool, &mut c, open_extended(8, ANY, 33)),
        (8, "min-extranonce-size-too-large".into())
    );
    let nan = OpenStandardMiningChannel {
        request_id: 9,
        user_identity: Str0_255::default(),
        nominal_hash_rate: f32::NAN,
        max_target: U256(ANY),
    };
    assert_eq!(
        refused(&mut pool, &mut c, nan.into()),
        (9, "invalid-nominal-hashrate".into())
    );
    assert!(c.chans.is_empty());

    // min 8: granted with 28 bytes, prefix 4; 28 exactly is fine too.
    let out = c.send(&mut pool, &open_extended(10, ANY, 8), NOW);
    let msgs = c.follow(&out);
    let Message::OpenExtendedMiningChannelSuccess(ok) = &msgs[0] else {
        panic!("{msgs:?}")
    };
    assert_eq!(
        (
            ok.request_id,
            ok.extranonce_size,
            ok.extranonce_prefix.len()
        ),
        (10, 28, 4)
    );
    c.open(&mut pool, open_extended(11, ANY, 28));

    // A max_target in range is honoured: the target is at most it.
    let mut low = [0u8; 32];
    low[28] = 0x01; // 2^224, about difficulty 2^-32... still harder than the pool's easiest
    let out = c.send(&mut pool, &open_standard(12, low), NOW);
    let msgs = c.follow(&out);
    let Message::OpenStandardMiningChannelSuccess(ok) = &msgs[0] else {
        panic!("{msgs:?}")
    };
    assert!(meets_target(&ok.target.0, &low));

    // Extended channels on a standard-jobs-only connection, and standard channels on an
    // extended-only pool.
    let mut std_only = Client::connect(&mut pool, REQUIRES_STANDARD_JOBS);
    assert_eq!(
        refused(&mut pool, &mut std_only, open_extended(1, ANY, 0)).1,
        "extended-channels-not-supported-for-standard-jobs"
    );
    let mut ext_pool = Pool::new(
        PoolConfig {
            requires_extended_channels: true,
            ..config()
        },
        NOW,
    )
    .unwrap();
    let mut e = Client::connect(&mut ext_pool, 0);
    assert_eq!(
        refused(&mut ext_pool, &mut e, open_standard(2, ANY)).1,
        "standard-channels-not-supported"
    );
    e.open(&mut ext_pool, open_extended(3, ANY, 0));
}

/// A client that opens channel after channel: past `max_channels_per_session` each open is refused
/// with `channel-capacity-exhausted` and its request_id, nothing else is sent and no state is kept;
/// closing a channel frees a slot; other connections are not affected.
#[test]
fn a_client_opening_too_many_channels_is_refused_per_request() {
    let mut pool = Pool::new(
        PoolConfig {
            max_channels_per_session: 5,
            ..config()
        },
        NOW,
    )
    .unwrap();
    let mut c = Client::connect(&mut pool, 0);
    let mut ids = Vec::new();
    for i in 0..5 {
        let m = if i % 2 == 0 {
            open_standard(i, ANY)
        } else {
            open_extended(i, ANY, 4)
        };
        ids.push(c.open(&mut pool, m));
    }
    for request_id in 100..150 {
        let out = c.send(&mut pool, &open_extended(request_id, ANY, 4), NOW);
        let msgs = c.follow(&out);
        assert!(
            matches!(&msgs[..], [Message::OpenMiningChannelError(e)]
                if e.request_id == request_id && e.error_code.as_bytes() == b"channel-capacity-exhausted"),
            "{msgs:?}"
        );
        assert!(
            !out.iter()
                .any(|o| matches!(o, Output::ChannelOpened { .. } | Output::Close { .. })),
            "{out:?}"
        );
    }
    assert_eq!(pool.channels(c.session).len(), 5);
    assert_eq!(pool.stats().channels_opened, 5);

    // A close frees a slot; the new channel's id is none of the old ones.
    c.send(&mut pool, &close(ids[1]), NOW);
    let again = c.open(&mut pool, open_standard(200, ANY));
    assert!(!ids.contains(&again));
    assert_eq!(pool.channels(c.session).len(), 5);

    // Another connection has its own allowance.
    let mut other = Client::connect(&mut pool, 0);
    other.open(&mut pool, open_standard(1, ANY));
}

#[test]
fn update_channel_lowers_the_target_or_errs() {
    let mut pool = Pool::new(config(), NOW).unwrap();
    let mut c = Client::connect(&mut pool, 0);
    let ch = c.open(&mut pool, open_standard(1, ANY));
    let t = c.chan(ch).target;
    let mut half = t;
    // t / 2 (little-endian shift right by one bit).
    let mut carry = 0u8;
    for b in half.iter_mut().rev() {
        let next = *b & 1;
        *b = (*b >> 1) | (carry << 7);
        carry = next;
    }
    let update = |max: [u8; 32], channel_id: u32| -> Message<'static> {
        UpdateChannel {
            channel_id,
            nominal_hash_rate: 1e6,
            maximum_target: U256(max),
        }
        .into()
    };
    let msgs = c.exchange(&mut pool, &update(half, ch), NOW);
    let [Message::SetTarget(st)] = &msgs[..] else {
        panic!("{msgs:?}")
    };
    assert_eq!(st.channel_id, ch);
    assert!(meets_target(&st.maximum_target.0, &half));
    // Above the current target: accepted silently.
    assert!(c.exchange(&mut pool, &update(ANY, ch), NOW).is_empty());
    // Unknown channel, a group id, absurd values.
    for (m, code) in [
        (update(ANY, 999), "invalid-channel-id"),
        (update(ANY, c.chan(ch).group), "invalid-channel-id"),
        (update([0; 32], ch), "max-target-out-of-range"),
        (
            UpdateChannel {
                channel_id: ch,
                nominal_hash_rate: -1.0,
                maximum_target: U256(ANY),
            }
            .into(),
            "invalid-nominal-hashrate",
        ),
    ] {
        let msgs = c.exchange(&mut pool, &m, NOW);
        assert!(
            matches!(&msgs[..], [Message::UpdateChannelError(e)] if e.error_code.as_bytes() == code.as_bytes()),
            "{code}: {msgs:?}"
        );
    }
}

#[test]
fn set_custom_mining_job_is_refused() {
    let mut pool = Pool::new(config(), NOW).unwrap();
    let mut c = Client::connect(&mut pool, 0);
    let std = c.open(&mut pool, open_standard(1, ANY));
    let ext = c.open(&mut pool, open_extended(2, ANY, 0));
    for (channel_id, code) in [
        (999, "invalid-channel-id"),
        (std, "standard-channels-not-supported-for-custom-work"),
        (ext, "jd-not-supported"),
    ] {
        let msgs = c.exchange(&mut pool, &custom_job(channel_id), NOW);
        assert!(
            matches!(&msgs[..], [Message::SetCustomMiningJobError(e)] if e.channel_id == channel_id && e.request_id == 41 && e.error_code.as_bytes() == code.as_bytes()),
            "{msgs:?}"
        );
    }
}

/// A SetCustomMiningJob on `channel_id` with no token.
fn custom_job(channel_id: u32) -> Message<'static> {
    SetCustomMiningJob {
        channel_id,
        request_id: 41,
        mining_job_token: B0_255::default(),
        version: 0x2000_0000,
        prev_hash: U256([0; 32]),
        min_ntime: NOW,
        nbits: HARD_NBITS,
        coinbase_tx_version: 2,
        coinbase_prefix: B0_255::default(),
        coinbase_tx_input_n_sequence: u32::MAX,
        coinbase_tx_outputs: B0_64K::default(),
        coinbase_tx_locktime: 0,
        merkle_path: Seq0_255::default(),
    }
    .into()
}

#[test]
fn work_selection_takes_the_flag_and_refuses_custom_jobs_without_a_token() {
    let mut pool = Pool::new(
        PoolConfig {
            work_selection: true,
            ..config()
        },
        NOW,
    )
    .unwrap();
    let mut c = Client::connect(&mut pool, REQUIRES_WORK_SELECTION);
    let std = c.open(&mut pool, open_standard(1, ANY));
    let ext = c.open(&mut pool, open_extended(2, ANY, 0));
    for (channel_id, code) in [
        (std, "standard-channels-not-supported-for-custom-work"),
        (ext, "invalid-mining-job-token"),
    ] {
        let msgs = c.exchange(&mut pool, &custom_job(channel_id), NOW);
        assert!(
            matches!(&msgs[..], [Message::SetCustomMiningJobError(e)] if e.channel_id == channel_id && e.error_code.as_bytes() == code.as_bytes()),
            "{msgs:?}"
        );
    }
    // Without the flag on this connection, custom work is not for it.
    let mut plain = Client::connect(&mut pool, 0);
    let ext = plain.open(&mut pool, open_extended(1, ANY, 0));
    let msgs = plain.exchange(&mut pool, &custom_job(ext), NOW);
    assert!(
        matches!(&msgs[..], [Message::SetCustomMiningJobError(e)] if e.error_code.as_bytes() == b"jd-not-supported"),
        "{msgs:?}"
    );
}

fn request_extensions(request_id: u16, extensions: &[u16]) -> Message<'static> {
    RequestExtensions {
        request_id,
        requested_extensions: Seq0_64K::new(extensions.to_vec()).unwrap(),
    }
    .into()
}

fn closed(out: &[Output]) -> bool {
    out.iter().any(|o| matches!(o, Output::Close { .. }))
}

#[test]
fn extensions_are_negotiated_and_a_client_without_a_required_one_is_disconnected() {
    let support = ExtensionSupport {
        supported: vec![0x0002],
        required: vec![0x0002],
    };
    let mut pool = Pool::new(
        PoolConfig {
            extensions: Some(support),
            ..config()
        },
        NOW,
    )
    .unwrap();
    // Asked for 0x0002 (and an unknown one): confirmed, and the channel opens.
    let mut c = Client::connect(&mut pool, 0);
    let msgs = c.exchange(&mut pool, &request_extensions(7, &[0x0002, 0x4fff]), NOW);
    assert!(
        matches!(&msgs[..], [Message::RequestExtensionsSuccess(s)] if s.request_id == 7 && s.supported_extensions.iter().copied().eq([0x0002])),
        "{msgs:?}"
    );
    c.open(&mut pool, open_extended(1, ANY, 0));
    // Only unknown ones: .Error with them and the required one; going on without it closes.
    let mut c = Client::connect(&mut pool, 0);
    let msgs = c.exchange(&mut pool, &request_extensions(8, &[0x4fff]), NOW);
    assert!(
        matches!(&msgs[..], [Message::RequestExtensionsError(e)] if e.request_id == 8
            && e.unsupported_extensions.iter().copied().eq([0x4fff])
            && e.required_extensions.iter().copied().eq([0x0002])),
        "{msgs:?}"
    );
    assert!(closed(&c.send(&mut pool, &open_standard(1, ANY), NOW)));
    // A retry with it is fine.
    let mut c = Client::connect(&mut pool, 0);
    c.exchange(&mut pool, &request_extensions(9, &[0x4fff]), NOW);
    let msgs = c.exchange(&mut pool, &request_extensions(10, &[0x0002]), NOW);
    assert!(
        matches!(&msgs[..], [Message::RequestExtensionsSuccess(_)]),
        "{msgs:?}"
    );
    c.open(&mut pool, open_standard(1, ANY));
    // No negotiation at all: the first message past setup closes.
    let mut c = Client::connect(&mut pool, 0);
    assert!(closed(&c.send(&mut pool, &open_standard(1, ANY), NOW)));
    // A pool without extension 0x0001 ignores RequestExtensions.
    let mut pool = Pool::new(config(), NOW).unwrap();
    let mut c = Client::connect(&mut pool, 0);
    let out = c.send(&mut pool, &request_extensions(7, &[0x0002]), NOW);
    assert!(
        out.iter().all(|o| matches!(o, Output::Unexpected { .. })),
        "{out:?}"
    );
    // Only extensions it implements can be configured.
    let unknown = ExtensionSupport {
        supported: vec![0x4fff],
        required: vec![],
    };
    assert!(Pool::new(
        PoolConfig {
            extensions: Some(unknown),
            ..config()
        },
        NOW
    )
    .is_err());
}

/// A share's frame with its TLVs, as a connection would decode it (`Err`: as it failed to).
fn share_frame(
    share: &Mined,
    tlvs: &[Tlv<'_>],
) -> (Vec<u8>, Result<Decoded<'static>, DecodeError>) {
    let bytes = sv2_codec::to_frame_bytes(&share.extended(), tlvs).unwrap();
    let (frame, _) = Frame::parse(&bytes).unwrap();
    let decoded = decode_frame(&frame).map(Decoded::into_static);
    (bytes, decoded)
}

#[test]
fn the_worker_tlv_counts_shares_and_one_over_32_bytes_is_refused_once_negotiated() {
    let support = ExtensionSupport {
        supported: vec![0x0002],
        required: vec![],
    };
    let mut pool = Pool::new(
        PoolConfig {
            extensions: Some(support),
            ..config()
        },
        NOW,
    )
    .unwrap();
    let worker = |name: &[u8]| Tlv {
        extension_type: 0x0002,
        field_type: 0x01,
        value: B0_64K::new(name.to_vec()).unwrap(),
    };
    let en = vec![7u8; 28];
    // Negotiated: the worker's shares are counted; a 33-byte name gets SubmitShares.Error.
    let mut c = Client::connect(&mut pool, 0);
    c.exchange(&mut pool, &request_extensions(1, &[0x0002]), NOW);
    let ext = c.open(&mut pool, open_extended(2, ANY, 0));
    let share = c.good(ext, &en);
    let (_, decoded) = share_frame(&share, &[worker(b"rig-7")]);
    c.sent(&share.extended());
    let out = pool.handle_frame(c.session, &decoded.unwrap(), NOW + 1);
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::ShareAccepted { .. })),
        "{out:?}"
    );
    assert_eq!(pool.stats().shares_by_worker.get("rig-7"), Some(&1));
    let share = c.good(ext, &en);
    let (bytes, decoded) = share_frame(&share, &[worker(&[b'x'; 33])]);
    let error = decoded.unwrap_err();
    c.sent(&share.extended());
    let out = pool.handle_undecodable(c.session, &bytes, &error, NOW + 1);
    let msgs = c.follow(&out);
    assert_eq!(
        error_code(&msgs),
        Some((share.sequence_number, "user-identity-too-long".into())),
        "{msgs:?}"
    );
    // Not negotiated: the TLV is ignored and the share judged on its own (extension 0x0002 §1.3).
    let mut c = Client::connect(&mut pool, 0);
    let ext = c.open(&mut pool, open_extended(1, ANY, 0));
    let share = c.good(ext, &en);
    let (bytes, decoded) = share_frame(&share, &[worker(&[b'x'; 33])]);
    c.sent(&share.extended());
    let out = pool.handle_undecodable(c.session, &bytes, &decoded.unwrap_err(), NOW + 1);
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::ShareAccepted { .. })),
        "{out:?}"
    );
    assert_eq!(pool.stats().shares_by_worker.len(), 1);
}

#[test]
fn extranonce_prefixes_are_replaced_on_schedule_and_later_jobs_use_the_new_one() {
    let mut pool = Pool::new(
        PoolConfig {
            extranonce_prefix_every_secs: Some(30),
            ..config()
        },
        NOW,
    )
    .unwrap();
    let mut c = Client::connect(&mut pool, 0);
    let ext = c.open(&mut pool, open_extended(1, ANY, 0));
    let std = c.open(&mut pool, open_standard(2, ANY));
    let before: Vec<Vec<u8>> = [ext, std]
        .iter()
        .map(|id| c.chan(*id).prefix.clone())
        .collect();
    assert!(c
        .follow(&pool.tick(NOW + 29))
        .iter()
        .all(|m| !matches!(m, Message::SetExtranoncePrefix(_))));
    let msgs = c.follow(&pool.tick(NOW + 30));
    let set: Vec<u32> = msgs
        .iter()
        .filter_map(|m| match m {
            Message::SetExtranoncePrefix(p) => Some(p.channel_id),
            _ => None,
        })
        .collect();
    assert_eq!(set, vec![ext, std], "{msgs:?}");
    // Then a job on the current prev hash (min_ntime set), for the new prefixes.
    assert!(
        msgs.iter()
            .any(|m| matches!(m, Message::NewExtendedMiningJob(j) if j.min_ntime.is_some())),
        "{msgs:?}"
    );
    let after: Vec<Vec<u8>> = [ext, std]
        .iter()
        .map(|id| c.chan(*id).prefix.clone())
        .collect();
    assert!(before
        .iter()
        .zip(&after)
        .all(|(b, a)| b != a && b.len() == a.len()));
    // Shares on the new job, with the new prefix, are accepted.
    for (id, en) in [(ext, vec![3u8; 28]), (std, Vec::new())] {
        let share = c.good(id, &en);
        let m = if en.is_empty() {
            share.standard()
        } else {
            share.extended()
        };
        let out = c.send(&mut pool, &m, NOW + 31);
        assert!(
            out.iter()
                .any(|o| matches!(o, Output::ShareAccepted { .. })),
            "{out:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------------
// Jobs

#[test]
fn extended_jobs_carry_a_stripped_coinbase_that_builds_the_template() {
    let mut pool = Pool::new(config(), NOW).unwrap();
    let mut c = Client::connect(&mut pool, 0);
    let ch = c.open(&mut pool, open_extended(1, ANY, 0));
    let job = c
        .received
        .iter()
        .find_map(|m| match m {
            Message::NewExtendedMiningJob(j) => Some(j.clone()),
            _ => None,
        })
        .unwrap();
    assert!(job.version_rolling_allowed);
    assert_eq!(job.min_ntime, None);
    let size = c.chan(ch).extranonce_size.unwrap() as usize;
    let mut raw = job.coinbase_tx_prefix.as_bytes().to_vec();
    raw.extend_from_slice(&c.chan(ch).prefix);
    raw.extend(std::iter::repeat_n(0u8, size));
    raw.extend_from_slice(job.coinbase_tx_suffix.as_bytes());
    // Check 51: a legacy transaction, no marker and flag after the version.
    assert_ne!(raw[4], 0x00);
    let tx = Transaction::parse(&raw).unwrap();
    assert!(tx.is_coinbase() && !tx.has_witness());
    // scriptSig: BIP34 height, the pool tag push, the extranonce push.
    let script = &tx.inputs[0].script_sig;
    let tp = pool.template_provider().unwrap();
    let (height, used) = read_bip34_height(script).unwrap();
    assert_eq!(height, tp.tip().height);
    let tag = b"/sv2-mock/";
    assert_eq!(script[used] as usize, tag.len());
    assert_eq!(&script[used + 1..used + 1 + tag.len()], tag);
    assert_eq!(script[used + 1 + tag.len()], 32);
    assert_eq!(script.len(), used + 1 + tag.len() + 1 + 32);
    // Outputs: the payout (all the value left), then the template's (the witness commitment).
    let template = tp.current_template();
    assert_eq!(tx.outputs[0].value, template.coinbase_value_remaining);
    assert_eq!(
        tx.outputs[0].script_pubkey,
        PoolConfig::default().payout_script
    );
    assert_eq!(tx.outputs[1..], template.coinbase_outputs[..]);
    // The merkle root from the txid and the path equals the block's.
    let path: Vec<[u8; 32]> = job.merkle_path.iter().map(|h| h.0).collect();
    let mut leaves = vec![tx.txid()];
    leaves.extend(template.transactions.iter().map(Transaction::txid));
    assert_eq!(
        merkle::root_from_path(&tx.txid(), &path),
        merkle::root(&leaves)
    );
}

#[test]
fn new_blocks_and_updates_reach_every_channel_without_reusing_job_ids() {
    for flags in [0, REQUIRES_STANDARD_JOBS] {
        let mut pool = Pool::new(config(), NOW).unwrap();
        let mut c = Client::connect(&mut pool, flags);
        let std = c.open(&mut pool, open_standard(1, ANY));
        let std2 = c.open(&mut pool, open_standard(2, ANY));
        let ext = (flags == 0).then(|| c.open(&mut pool, open_extended(3, ANY, 4)));
        let mut seen_jobs = BTreeSet::new();
        for round in 0..5u32 {
            let out = if round % 2 == 0 {
                pool.new_block(NOW + 10 * round)
            } else {
                pool.update_template(NOW + 10 * round)
            };
            let msgs = c.follow(&out);
            // Group broadcasting: one message per template; otherwise one per channel.
            let jobs: Vec<u32> = msgs
                .iter()
                .filter_map(|m| match m {
                    Message::NewMiningJob(j) => Some(j.job_id),
                    Message::NewExtendedMiningJob(j) => Some(j.job_id),
                    _ => None,
                })
                .collect();
            if flags == 0 {
                assert_eq!(jobs.len(), 1, "{msgs:?}");
                assert!(
                    msgs.iter().all(|m| match m {
                        Message::NewExtendedMiningJob(j) => j.channel_id == c.chan(std).group,
                        Message::SetNewPrevHash(p) => p.channel_id == c.chan(std).group,
                        _ => false,
                    }),
                    "{msgs:?}"
                );
            } else {
                assert_eq!(jobs.len(), 2, "{msgs:?}");
            }
            assert!(seen_jobs.insert(jobs[0]), "job id {} again", jobs[0]);
            // Every channel has an active job on the TP's tip, and can mine it.
            for ch in [Some(std), Some(std2), ext].into_iter().flatten() {
                let active = c.chan(ch).active.clone().unwrap();
                assert_eq!(
                    active.prev_hash,
                    pool.template_provider().unwrap().tip().prev_hash
                );
                assert_eq!(active.job_id, jobs[0]);
            }
        }
        // The block round sent future jobs then SetNewPrevHash; the update rounds sent active jobs.
        assert!(c.received.iter().any(
            |m| matches!(m, Message::NewMiningJob(j) if j.min_ntime.is_some())
                || matches!(m, Message::NewExtendedMiningJob(j) if j.min_ntime.is_some())
        ));
    }
}

#[test]
fn a_channel_opened_while_a_future_job_waits_gets_it_before_the_prev_hash() {
    // Hand-fed templates: a future template first, the channel opens, then its prev hash.
    let (_tp, mut pool, template, prev) = hand_fed(TpConfig {
        nbits: HARD_NBITS,
        ..TpConfig::default()
    });
    assert!(pool.handle_template(&template.into(), NOW).is_empty());
    let mut c = Client::connect(&mut pool, 0);
    let ch = c.open(&mut pool, open_extended(1, ANY, 0));
    // Only the future job so far.
    assert!(c.chan(ch).active.is_none());
    assert_eq!(c.chan(ch).jobs.len(), 1);
    let out = pool.handle_template(&prev.into(), NOW);
    c.follow(&out);
    assert!(c.chan(ch).active.is_some());
    // A later channel joins the group with its own future job and prev hash.
    let ch2 = c.open(&mut pool, open_standard(2, ANY));
    assert!(c.chan(ch2).active.is_some());
    let s = c.good(ch2, &[]);
    let msgs = c.exchange(&mut pool, &s.standard(), NOW);
    assert!(error_code(&msgs).is_none(), "{msgs:?}");
}

/// A TP with `tp_config` and a pool whose templates come from upstream, joined by hand ([`feed_tp`]);
/// returns both, and the first template and prev hash.
fn hand_fed(
    tp_config: TpConfig,
) -> (
    TemplateProvider,
    Pool,
    NewTemplate<'static>,
    SetNewPrevHashTdp,
) {
    let mut tp = TemplateProvider::new(tp_config, NOW);
    let mut pool = Pool::new(
        PoolConfig {
            template_source: TemplateSource::Upstream {
                endpoint_host: "tp".into(),
                endpoint_port: 1,
            },
            ..PoolConfig::default()
        },
        NOW,
    )
    .unwrap();
    let (template, prev) = feed_tp(&mut tp, &mut pool);
    (tp, pool, template, prev)
}

/// Sets up a hand-driven TP session and the pool's upstream; returns the first template and prev hash.
fn feed_tp(
    tp: &mut TemplateProvider,
    pool: &mut Pool,
) -> (NewTemplate<'static>, SetNewPrevHashTdp) {
    let s = tp.open_session();
    let up = pool.upstream_setup();
    let [Output::SendUpstream { message: setup }] = &up[..] else {
        panic!("{up:?}")
    };
    assert!(matches!(setup, Message::SetupConnection(m) if m.protocol == 2));
    let answers = tp.handle(s, setup, NOW);
    let [tp::Output::Send { message: ok, .. }] = &answers[..] else {
        panic!()
    };
    let up = pool.handle_template(ok, NOW);
    let [Output::SendUpstream {
        message: constraints,
    }] = &up[..]
    else {
        panic!("{up:?}")
    };
    let Message::CoinbaseOutputConstraints(cc) = constraints else {
        panic!()
    };
    // The payout output: 8 value bytes, a length byte, a 22-byte P2WPKH script; no legacy sigops.
    assert_eq!(
        (
            cc.coinbase_output_max_additional_size,
            cc.coinbase_output_max_additional_sigops
        ),
        (31, 0)
    );
    let answers = tp.handle(s, constraints, NOW);
    let [tp::Output::Send {
        message: Message::NewTemplate(t),
        ..
    }, tp::Output::Send {
        message: Message::SetNewPrevHashTdp(p),
        ..
    }] = &answers[..]
    else {
        panic!("{answers:?}")
    };
    (t.clone(), p.clone())
}

// ---------------------------------------------------------------------------------------------------
// Shares

#[test]
fn valid_shares_are_acknowledged_in_batches_that_sum_to_all_of_them() {
    let mut pool = Pool::new(
        PoolConfig {
            ack_every: 4,
            ..config()
        },
        NOW,
    )
    .unwrap();
    let mut c = Client::connect(&mut pool, 0);
    let std = c.open(&mut pool, open_standard(1, ANY));
    let ext = c.open(&mut pool, open_extended(2, ANY, 8));
    let mut acked: BTreeMap<u32, (u32, u32)> = BTreeMap::new(); // channel -> (count, last seq)
    let n = 11;
    for i in 0..n {
        for (ch, extended) in [(std, false), (ext, true)] {
            let extranonce = if extended {
                (i as u64).to_be_bytes().repeat(4)[..28].to_vec()
            } else {
                Vec::new()
            };
            let share = c.good(ch, &extranonce);
            let m = if extended {
                share.extended()
            } else {
                share.standard()
            };
            let out = c.send(&mut pool, &m, NOW + 1);
            assert!(out.iter().any(|o| matches!(o, Output::ShareAccepted { sequence_number, hash, .. } if *sequence_number == share.sequence_number && *hash == share.hash)), "{out:?}");
            for m in c.follow(&out) {
                match m {
                    Message::SubmitSharesSuccess(s) => {
                        let e = acked.entry(s.channel_id).or_default();
                        e.0 += s.new_submits_accepted_count;
                        e.1 = s.last_sequence_number;
                        assert_eq!(s.last_sequence_number, share.sequence_number);
                        assert_eq!(s.new_submits_accepted_count, 4);
                        // Difficulty below 1 at this easy target: the integer sum is 0.
                        assert_eq!(s.new_shares_sum, 0);
                    }
                    other => panic!("{other:?}"),
                }
            }
        }
    }
    // 11 = 4 + 4 + 3: the last 3 come with a tick once they are old enough.
    assert!(c.follow(&pool.tick(NOW + 2)).is_empty());
    let msgs = c.follow(&pool.tick(NOW + 3));
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    for m in msgs {
        let Message::SubmitSharesSuccess(s) = m else {
            panic!()
        };
        acked.entry(s.channel_id).or_default().0 += s.new_submits_accepted_count;
    }
    assert_eq!(acked[&std].0, n);
    assert_eq!(acked[&ext].0, n);
    assert_eq!(pool.stats().shares_accepted, 2 * u64::from(n));
    let info = pool.channels(c.session);
    assert!(info.iter().all(|i| i.shares_accepted == u64::from(n)));
}

#[test]
fn shares_remembered_per_job_are_bounded_and_a_new_job_starts_afresh() {
    let mut pool = Pool::new(
        PoolConfig {
            max_shares_per_job: 3,
            ..config()
        },
        NOW,
    )
    .unwrap();
    let mut c = Client::connect(&mut pool, 0);
    let std = c.open(&mut pool, open_standard(1, ANY));
    for _ in 0..3 {
        let m = c.good(std, &[]);
        let msgs = c.exchange(&mut pool, &m.standard(), NOW + 1);
        assert_eq!(error_code(&msgs), None, "{msgs:?}");
    }
    let m = c.good(std, &[]);
    let out = c.send(&mut pool, &m.standard(), NOW + 1);
    assert_eq!(
        error_code(&c.follow(&out)),
        Some((m.sequence_number, "too-many-shares".to_owned()))
    );
    assert!(out.iter().any(|o| matches!(
        o,
        Output::ShareRejected {
            error: ShareError::TooManyShares { limit: 3, .. },
            ..
        }
    )));
    // After a new block the channel mines a new job, with its own count.
    c.follow(&pool.new_block(NOW + 5));
    let m = c.good(std, &[]);
    let msgs = c.exchange(&mut pool, &m.standard(), NOW + 6);
    assert_eq!(error_code(&msgs), None, "{msgs:?}");
}

#[test]
fn every_invalid_share_gets_its_error_code_with_its_sequence_number() {
    let mut pool = Pool::new(config(), NOW).unwrap();
    let mut c = Client::connect(&mut pool, 0);
    let std = c.open(&mut pool, open_standard(1, ANY));
    let ext = c.open(&mut pool, open_extended(2, ANY, 0));
    let en = vec![7u8; 28];
    let check = |pool: &mut Pool, c: &mut Client, m: Message<'static>, seq: u32, code: &str| {
        let out = c.send(pool, &m, NOW + 1);
        let msgs = c.follow(&out);
        assert_eq!(error_code(&msgs), Some((seq, code.to_owned())), "{msgs:?}");
        assert!(out.iter().any(|o| matches!(o, Output::ShareRejected { error, sequence_number, .. } if error.code() == code && *sequence_number == seq)));
    };

    // invalid-channel-id: unknown, a group id, and the wrong kind of submit for the channel.
    let s = c.good(std, &[]);
    let mut m = s.clone();
    m.channel_id = 999;
    check(
        &mut pool,
        &mut c,
        m.standard(),
        s.sequence_number,
        "invalid-channel-id",
    );
    m.channel_id = c.chan(std).group;
    check(
        &mut pool,
        &mut c,
        m.standard(),
        s.sequence_number,
        "invalid-channel-id",
    );
    check(
        &mut pool,
        &mut c,
        s.extended(),
        s.sequence_number,
        "invalid-channel-id",
    );
    let e = c.good(ext, &en);
    check(
        &mut pool,
        &mut c,
        e.standard(),
        e.sequence_number,
        "invalid-channel-id",
    );

    // invalid-job-id.
    let mut m = c.good(std, &[]);
    m.job_id = 4242;
    check(
        &mut pool,
        &mut c,
        m.standard(),
        m.sequence_number,
        "invalid-job-id",
    );

    // bad-extranonce-size: one byte short, one too many.
    let m = c.good(ext, &en[..27]);
    check(
        &mut pool,
        &mut c,
        m.extended(),
        m.sequence_number,
        "bad-extranonce-size",
    );
    let mut long = en.clone();
    long.push(0);
    let m = c.good(ext, &long[..29]);
    check(
        &mut pool,
        &mut c,
        m.extended(),
        m.sequence_number,
        "bad-extranonce-size",
    );

    // invalid-ntime: before min_ntime; after min_ntime + elapsed (§5.3.11; the share rules' default
    // slack is 0).
    let min = c.chan(std).active.clone().unwrap().min_ntime;
    let target = c.chan(std).target;
    let m = mine_at(&mut c, std, min - 1, &target);
    check(
        &mut pool,
        &mut c,
        m.standard(),
        m.sequence_number,
        "invalid-ntime",
    );
    let m = mine_at(&mut c, std, min + 2, &target);
    check(
        &mut pool,
        &mut c,
        m.standard(),
        m.sequence_number,
        "invalid-ntime",
    );
    // At the edge it is fine (1 s elapsed).
    let m = mine_at(&mut c, std, min + 1, &target);
    let msgs = c.exchange(&mut pool, &m.standard(), NOW + 1);
    assert_eq!(error_code(&msgs), None);

    // invalid-non-rollable-version-bit: a bit outside 0x1fffe000.
    let version = c.chan(std).jobs.values().next().unwrap().version ^ 0x8000_0000;
    let m = mine_version(&mut c, std, version, &target);
    check(
        &mut pool,
        &mut c,
        m.standard(),
        m.sequence_number,
        "invalid-non-rollable-version-bit",
    );

    // difficulty-too-low: a hash above the target.
    let m = c.mine(std, &[], |h| !meets_target(h, &target));
    check(
        &mut pool,
        &mut c,
        m.standard(),
        m.sequence_number,
        "difficulty-too-low",
    );

    // duplicate-share: the same share twice (a new sequence number does not help).
    let mut m = c.good(ext, &en);
    let msgs = c.exchange(&mut pool, &m.extended(), NOW + 1);
    assert_eq!(error_code(&msgs), None);
    m.sequence_number += 1000;
    check(
        &mut pool,
        &mut c,
        m.extended(),
        m.sequence_number,
        "duplicate-share",
    );

    // stale-share: a share on the previous prev hash's job.
    let old = c.good(std, &[]);
    let old_ext = c.good(ext, &en);
    c.follow(&pool.new_block(NOW + 5));
    check(
        &mut pool,
        &mut c,
        old.standard(),
        old.sequence_number,
        "stale-share",
    );
    check(
        &mut pool,
        &mut c,
        old_ext.extended(),
        old_ext.sequence_number,
        "stale-share",
    );
    // After two more blocks the job is forgotten: invalid-job-id.
    c.follow(&pool.new_block(NOW + 6));
    c.follow(&pool.new_block(NOW + 7));
    check(
        &mut pool,
        &mut c,
        old.standard(),
        old.sequence_number,
        "invalid-job-id",
    );

    let stats = pool.stats();
    assert_eq!(stats.rejected_by_reason["invalid-channel-id"], 4);
    assert_eq!(stats.rejected_by_reason["stale-share"], 2);
    assert_eq!(
        stats.shares_rejected,
        stats.rejected_by_reason.values().sum::<u64>()
    );
}

fn mine_at(c: &mut Client, ch: u32, ntime: u32, target: &[u8; 32]) -> Mined {
    let active = c.chan(ch).active.clone().unwrap();
    c.chans.get_mut(&ch).unwrap().active = Some(Active {
        min_ntime: ntime,
        ..active.clone()
    });
    let m = c.mine(ch, &[], |h| meets_target(h, target));
    c.chans.get_mut(&ch).unwrap().active = Some(active);
    m
}

fn mine_version(c: &mut Client, ch: u32, version: u32, target: &[u8; 32]) -> Mined {
    let active = c.chan(ch).active.clone().unwrap();
    let saved = c.chan(ch).jobs[&active.job_id].clone();
    let job = c
        .chans
        .get_mut(&ch)
        .unwrap()
        .jobs
        .get_mut(&active.job_id)
        .unwrap();
    job.version = version;
    job.rolling = false;
    let m = c.mine(ch, &[], |h| meets_target(h, target));
    c.chans
        .get_mut(&ch)
        .unwrap()
        .jobs
        .insert(active.job_id, saved);
    m
}

#[test]
fn a_fixed_version_pool_refuses_any_version_change() {
    let mut pool = Pool::new(
        PoolConfig {
            fixed_version: true,
            ..config()
        },
        NOW,
    )
    .unwrap();
    let mut c = Client::connect(&mut pool, 0);
    let ext = c.open(&mut pool, open_extended(1, ANY, 0));
    let job = c
        .received
        .iter()
        .find_map(|m| match m {
            Message::NewExtendedMiningJob(j) => Some(j.clone()),
            _ => None,
        })
        .unwrap();
    assert!(!job.version_rolling_allowed);
    // The model does not roll when the job says no; a rolled one is refused.
    let target = c.chan(ext).target;
    let good = c.good(ext, &[1; 28]);
    assert_eq!(
        error_code(&c.exchange(&mut pool, &good.extended(), NOW)),
        None
    );
    let active = c.chan(ext).active.clone().unwrap();
    c.chans
        .get_mut(&ext)
        .unwrap()
        .jobs
        .get_mut(&active.job_id)
        .unwrap()
        .rolling = true;
    let rolled = c.mine(ext, &[2; 28], |h| meets_target(h, &target));
    let msgs = c.exchange(&mut pool, &rolled.extended(), NOW);
    assert_eq!(
        error_code(&msgs),
        Some((rolled.sequence_number, "version-rolling-not-allowed".into()))
    );
}

#[test]
fn set_target_applies_to_future_jobs_and_not_to_jobs_sent_active_before_it() {
    let mut pool = Pool::new(config(), NOW).unwrap();
    let mut c = Client::connect(&mut pool, REQUIRES_STANDARD_JOBS);
    let ch = c.open(&mut pool, open_standard(1, ANY));
    let old_target = c.chan(ch).target;
    let mut quarter = old_target;
    quarter[31] >>= 2;
    let update = UpdateChannel {
        channel_id: ch,
        nominal_hash_rate: 0.0,
        maximum_target: U256(quarter),
    };
    // The first job was received as a future job: SetTarget applies to it (check 60).
    c.exchange(&mut pool, &update.clone().into(), NOW);
    assert_eq!(c.chan(ch).target, quarter);
    let between = c.mine(ch, &[], |h| {
        meets_target(h, &old_target) && !meets_target(h, &quarter)
    });
    let msgs = c.exchange(&mut pool, &between.standard(), NOW);
    assert_eq!(
        error_code(&msgs),
        Some((between.sequence_number, "difficulty-too-low".into()))
    );
    let below = c.mine(ch, &[], |h| meets_target(h, &quarter));
    assert_eq!(
        error_code(&c.exchange(&mut pool, &below.standard(), NOW)),
        None
    );

    // A job sent active (min_ntime set) keeps the target of its time: after a harder SetTarget its
    // shares are still judged by the older one (§5.3.21).
    c.follow(&pool.update_template(NOW));
    let mut sixteenth = old_target;
    sixteenth[31] >>= 4;
    let harder = UpdateChannel {
        channel_id: ch,
        nominal_hash_rate: 0.0,
        maximum_target: U256(sixteenth),
    };
    c.exchange(&mut pool, &harder.into(), NOW);
    let between = c.mine(ch, &[], |h| {
        meets_target(h, &quarter) && !meets_target(h, &sixteenth)
    });
    assert_eq!(
        error_code(&c.exchange(&mut pool, &between.standard(), NOW)),
        None
    );
}

#[test]
fn vardiff_raises_the_difficulty_of_a_fast_miner_and_eases_an_idle_one() {
    let mut pool = Pool::new(config(), NOW).unwrap();
    let mut c = Client::connect(&mut pool, REQUIRES_STANDARD_JOBS);
    let fast = c.open(&mut pool, open_standard(1, ANY));
    let mut cap = ANY;
    cap[31] = 0x3f;
    let idle = c.open(&mut pool, open_standard(2, cap));
    let start = c.chan(fast).target;
    // 60 shares in the first minute where 10 are wanted: six times too many.
    for i in 0..60 {
        let s = c.good(fast, &[]);
        let msgs = c.exchange(&mut pool, &s.standard(), NOW + i / 2);
        assert_eq!(error_code(&msgs), None);
    }
    let msgs = c.follow(&pool.tick(NOW + 60));
    let targets: BTreeMap<u32, [u8; 32]> = msgs
        .iter()
        .filter_map(|m| match m {
            Message::SetTarget(t) => Some((t.channel_id, t.maximum_target.0)),
            _ => None,
        })
        .collect();
    let new = targets[&fast];
    assert!(meets_target(&new, &start) && new != start);
    let ratio = sv2_chain::target::difficulty(&new) / sv2_chain::target::difficulty(&start);
    assert!((ratio - 6.0).abs() < 0.01, "{ratio}");
    // The idle channel would get easier, but it is already at its max_target.
    assert!(!targets.contains_key(&idle));
    assert_eq!(c.chan(idle).target, cap);
    // Shares at the old target are now too easy.
    let easy = c.mine(fast, &[], |h| {
        meets_target(h, &start) && !meets_target(h, &new)
    });
    let msgs = c.exchange(&mut pool, &easy.standard(), NOW + 61);
    assert_eq!(
        error_code(&msgs).map(|e| e.1),
        Some("difficulty-too-low".into())
    );
}

#[test]
fn closed_channels_hear_nothing_more_and_a_group_close_closes_its_members() {
    let mut pool = Pool::new(config(), NOW).unwrap();
    let mut c = Client::connect(&mut pool, REQUIRES_STANDARD_JOBS);
    let a = c.open(&mut pool, open_standard(1, ANY));
    let b = c.open(&mut pool, open_standard(2, ANY));
    let pending = c.good(a, &[]);
    let out = c.send(&mut pool, &pending.standard(), NOW);
    assert!(c.follow(&out).is_empty(), "batched, not acknowledged yet");
    let out = c.send(&mut pool, &close(a), NOW);
    assert!(matches!(&out[..], [Output::ChannelClosed { channel_id, .. }] if *channel_id == a));
    c.closed.insert(a);
    // Neither the pending acknowledgement nor the next block reach it.
    c.follow(&pool.tick(NOW + 10));
    let msgs = c.follow(&pool.new_block(NOW + 11));
    assert!(!msgs.is_empty());
    assert!(c.chan(b).active.is_some());
    // A share on it is refused.
    let msgs = c.exchange(&mut pool, &pending.standard(), NOW + 11);
    assert_eq!(error_code(&msgs).unwrap().1, "invalid-channel-id");

    // Closing the group closes b too.
    let group = c.chan(b).group;
    let out = c.send(&mut pool, &close(group), NOW + 12);
    assert!(
        matches!(&out[..], [Output::ChannelClosed { channel_id, .. }] if *channel_id == b),
        "{out:?}"
    );
    c.closed.insert(b);
    let s = c.good(b, &[]);
    let msgs = c.exchange(&mut pool, &s.standard(), NOW + 12);
    assert_eq!(error_code(&msgs).unwrap().1, "invalid-channel-id");
    assert!(c.follow(&pool.new_block(NOW + 13)).is_empty());
    // Unknown ids are reported, not fatal.
    let out = c.send(&mut pool, &close(12345), NOW);
    assert!(matches!(&out[..], [Output::Unexpected { .. }]));
    // New channels still open, in a new group.
    let d = c.open(&mut pool, open_standard(3, ANY));
    assert_ne!(c.chan(d).group, group);
}

#[test]
fn idle_connections_are_closed() {
    let mut pool = Pool::new(config(), NOW).unwrap();
    let busy = Client::connect(&mut pool, 0);
    let quiet = Client::connect(&mut pool, 0);
    let silent = pool.open_session(NOW);
    let mut b = busy;
    b.open(&mut pool, open_standard(1, ANY));
    assert!(pool
        .tick(NOW + 119)
        .iter()
        .all(|o| !matches!(o, Output::Close { .. })));
    let out = pool.tick(NOW + 120);
    let closed: BTreeSet<SessionId> = out
        .iter()
        .filter_map(|o| match o {
            Output::Close { session, .. } => Some(*session),
            _ => None,
        })
        .collect();
    assert_eq!(closed, BTreeSet::from([quiet.session, silent]));
}

// ---------------------------------------------------------------------------------------------------
// Blocks

/// Mines until a share is a block; returns the pool's outputs.
fn find_block(pool: &mut Pool, c: &mut Client, ch: u32, extranonce: &[u8]) -> (Mined, Vec<Output>) {
    let nbits = c.chan(ch).active.clone().unwrap().nbits;
    let block_target = compact_to_target(nbits).unwrap();
    let share = c.mine(ch, extranonce, |h| meets_target(h, &block_target));
    let m = if c.chan(ch).extranonce_size.is_some() {
        share.extended()
    } else {
        share.standard()
    };
    let out = c.send(pool, &m, NOW + 1);
    (share, out)
}

fn check_block_with_rust_bitcoin(block: &[u8], height: u32, nbits: u32) -> bitcoin::Block {
    let block: bitcoin::Block = deserialize(block).unwrap();
    assert!(block.check_merkle_root());
    assert!(block.check_witness_commitment());
    assert_eq!(block.bip34_block_height().unwrap(), u64::from(height));
    let target = bitcoin::Target::from_compact(bitcoin::CompactTarget::from_consensus(nbits));
    block.header.validate_pow(target).unwrap();
    block
}

#[test]
fn blocks_through_standard_and_extended_channels_are_valid_for_the_tp_and_rust_bitcoin() {
    for (extended, group_jobs) in [(false, true), (false, false), (true, true)] {
        let mut pool = Pool::new(
            PoolConfig {
                group_jobs,
                request_transaction_data: true,
                ..regtest_config()
            },
            NOW,
        )
        .unwrap();
        let mut c = Client::connect(&mut pool, 0);
        let ch = if extended {
            c.open(&mut pool, open_extended(1, ANY, 8))
        } else {
            c.open(&mut pool, open_standard(1, ANY))
        };
        let tp = pool.template_provider().unwrap();
        let height = tp.tip().height;
        let template_id = tp.current_template().id;
        let (share, out) = find_block(&mut pool, &mut c, ch, &[0xab; 28]);
        // Accepted, found, acknowledged at once, checked by the TP, valid.
        let found = out
            .iter()
            .find_map(|o| match o {
                Output::BlockFound {
                    solution,
                    block,
                    block_hash,
                    template_id,
                    ..
                } => Some((
                    solution.clone(),
                    block.clone(),
                    block_hash.clone(),
                    *template_id,
                )),
                _ => None,
            })
            .expect("a block");
        assert_eq!(found.3, template_id);
        assert_eq!(found.2, sv2_chain::display_hex(&share.hash));
        let verdict = out
            .iter()
            .find_map(|o| match o {
                Output::SolutionChecked { verdict } => Some(verdict.clone()),
                _ => None,
            })
            .expect("a verdict");
        assert!(verdict.valid, "{:?}", verdict.problems);
        assert_eq!(verdict.block_hash.as_deref(), Some(found.2.as_str()));
        let tp_block = verdict.block.clone().unwrap();
        let block = check_block_with_rust_bitcoin(
            &tp_block,
            height,
            c.chan(ch).active.as_ref().unwrap().nbits,
        );
        assert_eq!(block.header.nonce, share.nonce);
        // The coinbase went with its witness (segwit template) and the pool built the same block.
        assert_eq!(found.1.as_deref(), Some(&tp_block[..]));
        let coinbase = Transaction::parse(found.0.coinbase_tx.as_bytes()).unwrap();
        assert!(coinbase.has_witness());
        assert_eq!(coinbase.inputs[0].witness, [vec![0u8; 32]]);
        let msgs = c.follow(&out);
        assert!(
            matches!(&msgs[0], Message::SubmitSharesSuccess(s) if s.new_submits_accepted_count == 1 && s.last_sequence_number == share.sequence_number),
            "{msgs:?}"
        );
        // The TP moved on: the channel got the next block's job, and the old share is stale.
        assert!(msgs.iter().any(|m| matches!(m, Message::SetNewPrevHash(_))));
        assert_eq!(pool.template_provider().unwrap().tip().height, height + 1);
        assert_eq!(
            c.chan(ch).active.as_ref().unwrap().prev_hash,
            sha256d(&tp_block[..80])
        );
        let m = if extended {
            share.extended()
        } else {
            share.standard()
        };
        assert_eq!(
            error_code(&c.exchange(&mut pool, &m, NOW + 2)).unwrap().1,
            "stale-share"
        );
        assert_eq!(pool.stats().blocks_found, 1);
        assert_eq!(pool.stats().solutions_valid, 1);
    }
}

#[test]
fn a_block_goes_upstream_and_a_separate_tp_accepts_it() {
    // A pool fed by hand from a TP it does not own: SubmitSolution is an upstream message, checked
    // here with tp::solution::check against the template the pool used.
    let (tp, mut pool, template, prev) = hand_fed(TpConfig {
        advance_on_block: false,
        ..TpConfig::default()
    });
    pool.handle_template(&template.into(), NOW);
    pool.handle_template(&prev.clone().into(), NOW);
    let mut c = Client::connect(&mut pool, REQUIRES_STANDARD_JOBS);
    let ch = c.open(&mut pool, open_standard(1, ANY));
    let (_, out) = find_block(&mut pool, &mut c, ch, &[]);
    let solution = out
        .iter()
        .find_map(|o| match o {
            Output::SendUpstream {
                message: Message::SubmitSolution(s),
            } => Some(s.clone()),
            _ => None,
        })
        .expect("SubmitSolution upstream");
    let verdict = tp::solution::check(
        Some(tp.current_template()),
        &solution,
        &prev.prev_hash.0,
        NOW + 1,
    );
    assert!(verdict.valid, "{:?}", verdict.problems);
    check_block_with_rust_bitcoin(
        verdict.block.as_ref().unwrap(),
        tp.tip().height,
        prev.n_bits,
    );
    // Without request_transaction_data the pool cannot assemble the block itself.
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::BlockFound { block: None, .. })));
}

// ---------------------------------------------------------------------------------------------------
// Templates from a hostile or odd source

#[test]
fn unusable_templates_and_unknown_prev_hashes_are_reported_not_fatal() {
    let (_tp, mut pool, template, prev) = hand_fed(TpConfig {
        nbits: HARD_NBITS,
        ..TpConfig::default()
    });
    let mut c = Client::connect(&mut pool, 0);
    let ch = c.open(&mut pool, open_standard(1, ANY));
    assert!(c.chan(ch).jobs.is_empty(), "no template yet");
    // Outputs that do not parse as the count says; a 200-byte coinbase prefix.
    let mut bad = template.clone();
    bad.coinbase_tx_outputs_count += 1;
    let out = pool.handle_template(&bad.into(), NOW);
    assert!(
        matches!(&out[..], [Output::TemplateRefused { .. }]),
        "{out:?}"
    );
    let mut bad = template.clone();
    bad.coinbase_prefix = B0_255::new(vec![0x51; 200]).unwrap();
    assert!(matches!(
        &pool.handle_template(&bad.into(), NOW)[..],
        [Output::TemplateRefused { .. }]
    ));
    // A prev hash for a template it never had.
    let mut unknown = prev.clone();
    unknown.template_id = 999;
    let out = pool.handle_template(&unknown.into(), NOW);
    assert!(matches!(&out[..], [Output::Upstream { .. }]), "{out:?}");
    // A non-future template before any usable prev hash... is fine now that a prev hash exists but
    // names no template; the real ones then work.
    c.follow(&pool.handle_template(&template.into(), NOW));
    c.follow(&pool.handle_template(&prev.into(), NOW));
    let s = c.good(ch, &[]);
    assert_eq!(error_code(&c.exchange(&mut pool, &s.standard(), NOW)), None);
    assert_eq!(pool.stats().templates_refused, 2);
}

// ---------------------------------------------------------------------------------------------------
// Faulty modes: each one shows

fn faulty(faults: PoolFaults) -> Pool {
    Pool::new(PoolConfig { faults, ..config() }, NOW).unwrap()
}

#[test]
fn fault_reuse_job_ids() {
    let mut pool = faulty(PoolFaults {
        reuse_job_ids: true,
        ..PoolFaults::default()
    });
    let mut c = Client::connect(&mut pool, REQUIRES_STANDARD_JOBS);
    c.open(&mut pool, open_standard(1, ANY));
    c.observe(&pool.update_template(NOW));
    assert!(c.violated(JOB_ID_UNIQUE), "{:?}", c.violations());
}

#[test]
fn fault_target_above_max() {
    let mut pool = faulty(PoolFaults {
        target_above_max: true,
        ..PoolFaults::default()
    });
    let mut c = Client::connect(&mut pool, 0);
    let mut max = [0u8; 32];
    max[30] = 0x10;
    let out = c.send(&mut pool, &open_standard(1, max), NOW);
    let msgs = c.observe(&out);
    let Message::OpenStandardMiningChannelSuccess(ok) = &msgs[0] else {
        panic!()
    };
    assert!(!meets_target(&ok.target.0, &max));
}

#[test]
fn fault_skip_future_job() {
    let mut pool = faulty(PoolFaults {
        skip_future_job: true,
        ..PoolFaults::default()
    });
    let mut c = Client::connect(&mut pool, 0);
    let out = c.send(&mut pool, &open_standard(1, ANY), NOW);
    let msgs = c.observe(&out);
    assert!(matches!(msgs[1], Message::SetNewPrevHash(_)), "{msgs:?}");
    assert!(c.violated(PREV_HASH_NAMES_FUTURE_JOB));
}

#[test]
fn fault_ignore_close_channel() {
    let mut pool = faulty(PoolFaults {
        ignore_close_channel: true,
        ..PoolFaults::default()
    });
    let mut c = Client::connect(&mut pool, REQUIRES_STANDARD_JOBS);
    let ch = c.open(&mut pool, open_standard(1, ANY));
    assert!(c.send(&mut pool, &close(ch), NOW).is_empty());
    c.closed.insert(ch);
    c.observe(&pool.new_block(NOW + 1));
    assert!(c.violated(SILENT_AFTER_CLOSE), "{:?}", c.violations());
}

#[test]
fn without_faults_the_same_scenarios_break_no_rule() {
    let mut pool = Pool::new(config(), NOW).unwrap();
    let mut c = Client::connect(&mut pool, 0);
    let ch = c.open(&mut pool, open_standard(1, ANY));
    c.open(&mut pool, open_standard(2, ANY));
    c.follow(&pool.update_template(NOW));
    c.send(&mut pool, &close(ch), NOW);
    c.closed.insert(ch);
    c.follow(&pool.new_block(NOW + 1));
    c.follow(&pool.update_template(NOW + 2));
}

// ---------------------------------------------------------------------------------------------------
// The tokio driver, on loopback

const LONG: std::time::Duration = std::time::Duration::from_secs(10);

fn authority(seed: u8) -> Keypair {
    Keypair::from_secret(SecretKey::from_bytes([seed; 32]).unwrap())
}

/// Sends `message` on `conn`, recorded in the client model's conversation.
async fn send_recorded(
    conn: &mut Connection<TcpStream>,
    c: &mut Client,
    message: Message<'static>,
) -> Result<(), NetError> {
    c.sent(&message);
    conn.send(&message).await
}

/// Receives `n` messages and lets the client model follow them.
async fn receive(
    conn: &mut Connection<TcpStream>,
    c: &mut Client,
    n: usize,
) -> Vec<Message<'static>> {
    let mut out = Vec::new();
    for _ in 0..n {
        let decoded = conn.recv("receive", LONG).await.unwrap();
        out.push(Output::Send {
            session: c.session,
            message: decoded.message,
        });
    }
    c.follow(&out)
}

#[tokio::test]
async fn a_miner_over_noise_opens_an_extended_channel_and_gets_its_share_acknowledged() {
    let authority = authority(0x31);
    let mut config = PoolServerConfig::new(authority.clone()).unwrap();
    config.pool = PoolConfig {
        ack_every: 1,
        ..self::config()
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let pool = serve(listener, config).await.unwrap();

    let stream = TcpStream::connect(pool.addr).await.unwrap();
    let mut conn = Connection::initiate_now(
        stream,
        InitiatorConfig::new(authority.public),
        LONG,
        &KeyLog::none(),
    )
    .await
    .unwrap();
    assert!(conn.handshake.as_ref().unwrap().established.authenticated);
    let mut c = Client::new(0);
    send_recorded(&mut conn, &mut c, setup_message(0, 2, 2, 0))
        .await
        .unwrap();
    let msgs = receive(&mut conn, &mut c, 1).await;
    assert!(
        matches!(&msgs[..], [Message::SetupConnectionSuccess(_)]),
        "{msgs:?}"
    );
    send_recorded(&mut conn, &mut c, open_extended(9, ANY, 8))
        .await
        .unwrap();
    let msgs = receive(&mut conn, &mut c, 4).await;
    assert!(
        matches!(
            &msgs[..],
            [
                Message::OpenExtendedMiningChannelSuccess(_),
                Message::NewExtendedMiningJob(_),
                Message::SetNewPrevHash(_),
                Message::SetGroupChannel(_)
            ]
        ),
        "{msgs:?}"
    );
    let ch = Client::opened(&msgs);

    let share = c.good(ch, &[5; 28]);
    send_recorded(&mut conn, &mut c, share.extended())
        .await
        .unwrap();
    let msgs = receive(&mut conn, &mut c, 1).await;
    assert!(
        matches!(&msgs[..], [Message::SubmitSharesSuccess(s)] if s.channel_id == ch && s.last_sequence_number == share.sequence_number && s.new_submits_accepted_count == 1),
        "{msgs:?}"
    );
    let mut bad = c.good(ch, &[6; 28]);
    bad.job_id += 100;
    send_recorded(&mut conn, &mut c, bad.extended())
        .await
        .unwrap();
    let msgs = receive(&mut conn, &mut c, 1).await;
    assert_eq!(
        error_code(&msgs),
        Some((bad.sequence_number, "invalid-job-id".into()))
    );
    let accepted = pool
        .wait_for(|e| matches!(e, Output::ShareAccepted { sequence_number, .. } if *sequence_number == share.sequence_number), LONG)
        .await;
    assert!(accepted.is_some());
    assert_eq!(pool.stats().shares_accepted, 1);
    assert_eq!(pool.stats().shares_rejected, 1);
    assert!(
        pool.log()
            .iter()
            .any(|l| l.contains("rejected: invalid-job-id")),
        "{:?}",
        pool.log()
    );

    // Shutting down closes the connection.
    pool.shutdown();
    assert!(matches!(
        conn.recv("after shutdown", LONG).await,
        Err(NetError::Closed { .. })
    ));
}

#[tokio::test]
async fn a_pool_fed_by_a_tp_over_noise_gets_its_block_validated_by_that_tp() {
    // Our mock TP on loopback (Noise), the pool as its client, a plaintext miner on a standard channel.
    let tp_authority = authority(0x41);
    let mut tp_config = TpServerConfig::new(tp_authority.clone()).unwrap();
    tp_config.tp.advance_on_block = true;
    let tp_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tp = sv2_mock::tp::driver::serve(tp_listener, tp_config).unwrap();

    let mut config = PoolServerConfig::new(authority(0x42)).unwrap();
    config.noise = None;
    config.upstream = Some(UpstreamTp {
        address: tp.addr,
        noise: Some(Some(tp_authority.public)),
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let pool = serve(listener, config).await.unwrap();
    // The first template and prev hash arrive over the network.
    let deadline = tokio::time::Instant::now() + LONG;
    while pool.with_pool(|p| p.current_template().is_none()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no template from the TP: {:?}",
            pool.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let height = tp.height();

    let stream = TcpStream::connect(pool.addr).await.unwrap();
    let mut conn = Connection::plaintext(stream, Side::Client);
    let mut c = Client::new(0);
    send_recorded(
        &mut conn,
        &mut c,
        setup_message(0, 2, 2, REQUIRES_STANDARD_JOBS),
    )
    .await
    .unwrap();
    receive(&mut conn, &mut c, 1).await;
    send_recorded(&mut conn, &mut c, open_standard(1, ANY))
        .await
        .unwrap();
    let msgs = receive(&mut conn, &mut c, 3).await;
    let ch = Client::opened(&msgs);
    let nbits = c.chan(ch).active.as_ref().unwrap().nbits;
    let block_target = compact_to_target(nbits).unwrap();
    let share = c.mine(ch, &[], |h| meets_target(h, &block_target));
    send_recorded(&mut conn, &mut c, share.standard())
        .await
        .unwrap();
    // Acknowledged at once (a block), then the next block's job and prev hash.
    let msgs = receive(&mut conn, &mut c, 3).await;
    assert!(
        matches!(&msgs[0], Message::SubmitSharesSuccess(s) if s.last_sequence_number == share.sequence_number),
        "{msgs:?}"
    );
    assert!(matches!(&msgs[2], Message::SetNewPrevHash(_)), "{msgs:?}");

    let verdicts = tp.wait_for_verdicts(1, LONG).await;
    assert_eq!(verdicts.len(), 1, "{:?}", tp.log());
    assert!(verdicts[0].valid, "{:?}", verdicts[0].problems);
    assert_eq!(verdicts[0].height, Some(height));
    check_block_with_rust_bitcoin(verdicts[0].block.as_ref().unwrap(), height, nbits);
    assert!(pool
        .wait_for(|e| matches!(e, Output::BlockFound { .. }), LONG)
        .await
        .is_some());
    assert_eq!(tp.height(), height + 1);
    assert_eq!(pool.stats().blocks_found, 1);
}

// ---------------------------------------------------------------------------------------------------
// Hostile input: any sequence of messages, from either side, in any order, never panics

mod hostile {
    use super::*;
    use proptest::prelude::*;
    use sv2_codec::messages::mining::NewMiningJob;

    #[derive(Debug, Clone)]
    enum Op {
        Setup(u8, u16, u16, u32),
        OpenStandard(u32, [u8; 32], f32),
        OpenExtended(u32, [u8; 32], u16),
        Update(u32, f32, [u8; 32]),
        Close(u32),
        Standard(u32, u32, u32, u32, u32),
        Extended(u32, u32, u32, u32, Vec<u8>),
        /// A message a pool should never receive.
        Stray(u32),
        Tick(u32),
        NewBlock,
        Update2,
        /// A template from a broken source.
        Template(u64, bool, Vec<u8>, u32, Vec<u8>, u8),
        PrevHash(u64, u32, [u8; 32]),
        Valid(u8),
    }

    fn target() -> impl Strategy<Value = [u8; 32]> {
        prop_oneof![
            Just([0xff; 32]),
            Just([0; 32]),
            any::<[u8; 32]>(),
            (0usize..32, any::<u8>()).prop_map(|(i, b)| {
                let mut t = [0u8; 32];
                t[i] = b;
                t
            }),
        ]
    }

    fn rate() -> impl Strategy<Value = f32> {
        prop_oneof![
            Just(0.0f32),
            Just(f32::NAN),
            Just(f32::INFINITY),
            Just(-1.0),
            any::<f32>(),
            Just(1e12)
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        let id = 0u32..12;
        prop_oneof![
            (0u8..4, 0u16..4, 0u16..4, any::<u32>()).prop_map(|(p, a, b, f)| Op::Setup(p, a, b, f)),
            (any::<u32>(), target(), rate()).prop_map(|(r, t, h)| Op::OpenStandard(r, t, h)),
            (any::<u32>(), target(), 0u16..40).prop_map(|(r, t, m)| Op::OpenExtended(r, t, m)),
            (id.clone(), rate(), target()).prop_map(|(c, h, t)| Op::Update(c, h, t)),
            id.clone().prop_map(Op::Close),
            (
                id.clone(),
                0u32..12,
                any::<u32>(),
                any::<u32>(),
                any::<u32>()
            )
                .prop_map(|(c, j, n, t, v)| Op::Standard(c, j, n, t, v)),
            (
                id.clone(),
                0u32..12,
                any::<u32>(),
                any::<u32>(),
                proptest::collection::vec(any::<u8>(), 0..=32)
            )
                .prop_map(|(c, j, n, v, e)| Op::Extended(c, j, n, v, e)),
            id.clone().prop_map(Op::Stray),
            (0u32..400).prop_map(Op::Tick),
            Just(Op::NewBlock),
            Just(Op::Update2),
            (
                0u64..6,
                any::<bool>(),
                proptest::collection::vec(any::<u8>(), 0..20),
                0u32..4,
                proptest::collection::vec(any::<u8>(), 0..80),
                0u8..4
            )
                .prop_map(|(i, f, p, c, o, m)| Op::Template(i, f, p, c, o, m)),
            (0u64..6, any::<u32>(), target()).prop_map(|(i, n, t)| Op::PrevHash(i, n, t)),
            any::<u8>().prop_map(Op::Valid),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn any_sequence_is_handled_without_panic(ops in proptest::collection::vec(op(), 1..60), faults in any::<u32>()) {
            let bit = |n: u32| faults & (1 << n) != 0;
            let faults = PoolFaults {
                reuse_job_ids: bit(0),
                target_above_max: bit(1),
                skip_future_job: bit(2),
                ignore_close_channel: bit(6),
                refuse_standard_channels: bit(7),
                ignore_min_extranonce_size: bit(9),
                extended_jobs_to_standard: bit(10),
                ignore_version_rolling_flag: bit(11),
                ignore_update_channel: bit(12),
                close_group_keeps_members: bit(13),
                accept_custom_jobs: bit(14),
                cumulative_accepted_count: bit(17),
                set_target_not_enforced: bit(19),
            };
            let shares = ShareRules {
                ntime_past_slack_secs: if bit(15) { u32::MAX } else { 0 },
                ntime_future_slack_secs: if bit(15) { u32::MAX } else { 0 },
                check_extranonce_size: !bit(16),
                check_target: !bit(20),
                check_duplicates: !bit(21),
                check_version: !bit(22),
            };
            let mut pool = Pool::new(PoolConfig { faults, shares, ..regtest_config() }, NOW).unwrap();
            let sessions = [pool.open_session(NOW), pool.open_session(NOW)];
            // A well-behaved client next to the hostile one.
            let mut good = Client::connect(&mut pool, 0);
            let out = good.send(&mut pool, &open_extended(1, ANY, 4), NOW);
            let gch = Client::opened(&good.observe(&out));
            let mut now = NOW;
            let mut strict = faults == PoolFaults::default() && shares == ShareRules::default();
            for (i, op) in ops.into_iter().enumerate() {
                if matches!(op, Op::PrevHash(..)) {
                    strict = false;
                }
                let s = sessions[i % 2];
                let out = match op {
                    Op::Setup(p, a, b, f) => pool.handle(s, &setup_message(p, a, b, f), now),
                    Op::OpenStandard(r, t, h) => pool.handle(s, &OpenStandardMiningChannel {
                        request_id: r, user_identity: Str0_255::default(), nominal_hash_rate: h, max_target: U256(t),
                    }.into(), now),
                    Op::OpenExtended(r, t, m) => pool.handle(s, &open_extended(r, t, m), now),
                    Op::Update(c, h, t) => pool.handle(s, &UpdateChannel { channel_id: c, nominal_hash_rate: h, maximum_target: U256(t) }.into(), now),
                    Op::Close(c) => pool.handle(s, &close(c), now),
                    Op::Standard(c, j, n, t, v) => pool.handle(s, &SubmitSharesStandard {
                        channel_id: c, sequence_number: i as u32, job_id: j, nonce: n, ntime: t, version: v,
                    }.into(), now),
                    Op::Extended(c, j, n, v, e) => pool.handle(s, &SubmitSharesExtended {
                        channel_id: c, sequence_number: i as u32, job_id: j, nonce: n, ntime: now, version: v,
                        extranonce: B0_32::new(e).unwrap(),
                    }.into(), now),
                    Op::Stray(c) => pool.handle(s, &NewMiningJob {
                        channel_id: c, job_id: 1, min_ntime: None, version: 0, merkle_root: U256([0; 32]),
                    }.into(), now),
                    Op::Tick(dt) => { now += dt; pool.tick(now) }
                    Op::NewBlock => pool.new_block(now),
                    Op::Update2 => pool.update_template(now),
                    Op::Template(id, future, prefix, count, outputs, path) => pool.handle_template(&NewTemplate {
                        template_id: 1_000 + id,
                        future_template: future,
                        version: 0x2000_0000,
                        coinbase_tx_version: 2,
                        coinbase_prefix: B0_255::new(prefix).unwrap(),
                        coinbase_tx_input_sequence: 0,
                        coinbase_tx_value_remaining: u64::MAX,
                        coinbase_tx_outputs_count: count,
                        coinbase_tx_outputs: B0_64K::new(outputs).unwrap(),
                        coinbase_tx_locktime: 0,
                        merkle_path: Seq0_255::new(vec![U256([7; 32]); usize::from(path)]).unwrap(),
                    }.into(), now),
                    Op::PrevHash(id, nbits, t) => pool.handle_template(&SetNewPrevHashTdp {
                        template_id: 1_000 + id, prev_hash: U256([9; 32]), header_timestamp: now, n_bits: nbits, target: U256(t),
                    }.into(), now),
                    Op::Valid(seed) => {
                        // The good client mines on whatever it has, when it has something.
                        if good.chans.get(&gch).and_then(|c| c.active.as_ref()).is_some() {
                            let m = good.good(gch, &[seed; 28]);
                            let out = good.send(&mut pool, &m.extended(), now);
                            // A share the model thinks good is accepted, unless a fault is on or the
                            // template source sent a prev hash of its own making (one for a template
                            // the pool never had moves the chain with no job to announce).
                            let accepted = out.iter().any(|o| matches!(o, Output::ShareAccepted { .. }));
                            prop_assert!(accepted || !strict, "{out:?}");
                            out
                        } else {
                            Vec::new()
                        }
                    }
                };
                good.observe(&out);
                // Nothing ever goes to a session that does not exist.
                for o in &out {
                    if let Output::Send { session, .. } = o {
                        prop_assert!(sessions.contains(session) || *session == good.session);
                    }
                }
            }
            let faulty = faults != PoolFaults::default();
            if !faulty {
                prop_assert!(good.violations().is_empty(), "{:?}", good.violations());
            }
        }
    }
}
