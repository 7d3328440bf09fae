//! The passive monitor: per-message rules of the spec applied to a Mining-protocol conversation, in
//! order, with the state a careful observer keeps (the client's requests and flags, channels, groups,
//! jobs, prev hashes, shares in flight). It judges both sides: the server's frames against every
//! server rule ([`RULES`]), the client's against the rules that bind a client ([`CLIENT_RULES`]).
//!
//! It reads [`Transcript`] entries, so it works on whatever produces them: over a whole transcript
//! ([`check_transcript`]: the active runner's connections, one read back from JSON, later a capture or
//! a proxy), or live, one entry at a time as a driver records it ([`Monitor::observe`] returns the
//! findings that entry brought: the mining device's driver hands it every entry, and `sv2-probe mine`
//! prints them as they happen). It never sends anything. Each rule is a catalogue entry of kind
//! [`Kind::Monitor`]; a finding names its rule, the side that broke it and the transcript entry.
//!
//! Directions are named by role: the server's frames are `ServerToClient`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Serialize, Serializer};
use sv2_chain::target::meets_target;
use sv2_chain::tx::Transaction;
use sv2_codec::messages::{flags, MESSAGE_TYPES};
use sv2_codec::{ErrorKind, Message};
use sv2_wire::{Direction, Entry, Event, FrameProblem, Side, Timestamp, Transcript};

use crate::check::{Check, Kind, Level, Role};

macro_rules! rule {
    ($role:ident, $id:expr, $section:expr, $level:ident, $catalog:expr, $title:expr) => {
        Check {
            id: $id,
            section: $section,
            level: Level::$level,
            role: Role::$role,
            catalog: $catalog,
            title: $title,
            kind: Kind::Monitor,
        }
    };
}

pub const STRICT_DECODING: &str = "monitor.strict-decoding";
pub const CHANNEL_MSG_BIT: &str = "monitor.channel-msg-bit";
pub const CHANNEL_ID_KNOWN: &str = "monitor.channel-id-known";
pub const SETUP_ANSWER_FIRST: &str = "monitor.setup-answer-first";
pub const USED_VERSION: &str = "monitor.used-version";
pub const PRINTABLE_CODES: &str = "monitor.printable-codes";
pub const REQUEST_ID_ECHO: &str = "monitor.request-id-echo";
pub const TARGET_WITHIN_MAX: &str = "monitor.target-within-max";
pub const EXTRANONCE_SIZE: &str = "monitor.extranonce-size";
pub const EXTRANONCE_FITS: &str = "monitor.extranonce-fits";
pub const UNIQUE_CHANNEL_IDS: &str = "monitor.unique-channel-ids";
pub const FIRST_JOB_FUTURE: &str = "monitor.first-job-future";
pub const PREV_HASH_NAMES_FUTURE_JOB: &str = "monitor.prev-hash-names-future-job";
pub const JOB_ID_UNIQUE: &str = "monitor.job-id-unique";
pub const JOB_KIND: &str = "monitor.job-kind";
pub const JOB_AFTER_PREV_HASH: &str = "monitor.job-after-prev-hash";
pub const JOB_MIN_NTIME: &str = "monitor.job-min-ntime";
pub const STANDARD_JOBS_FLAG: &str = "monitor.standard-jobs-flag";
pub const VERSION_ROLLING_FLAG: &str = "monitor.version-rolling-flag";
pub const FIXED_VERSION: &str = "monitor.fixed-version";
pub const COINBASE_STRIPPED: &str = "monitor.coinbase-stripped";
pub const COINBASE_IS_COINBASE: &str = "monitor.coinbase-is-coinbase";
pub const GROUP_EXTRANONCE_LENGTH: &str = "monitor.group-extranonce-length";
pub const SILENT_AFTER_CLOSE: &str = "monitor.silent-after-close";

/// How long after the client's CloseChannel a frame for the channel may still have been in flight
/// (sent before the server read the close): not a finding of [`SILENT_AFTER_CLOSE`].
pub const IN_FLIGHT: std::time::Duration = std::time::Duration::from_secs(1);
pub const NO_PREFIX_TO_GROUP: &str = "monitor.no-prefix-to-group";
pub const SHARE_ACKS: &str = "monitor.share-acks";
pub const SHARE_ERROR_ECHO: &str = "monitor.share-error-echo";
pub const SHARE_ERROR_AFTER_ACK: &str = "monitor.share-error-after-ack";

pub const CLIENT_STRICT_DECODING: &str = "monitor.client-strict-decoding";
pub const CLIENT_CHANNEL_MSG_BIT: &str = "monitor.client-channel-msg-bit";
pub const CLIENT_SETUP_FIRST: &str = "monitor.client-setup-first";
pub const CLIENT_VENDOR: &str = "monitor.client-vendor";
pub const CLIENT_REQUEST_ID_UNIQUE: &str = "monitor.client-request-id-unique";
pub const CLIENT_SEQUENCE_UNIQUE: &str = "monitor.client-sequence-unique";
pub const CLIENT_SHARE_NTIME: &str = "monitor.client-share-ntime";

/// The monitor's rules about the server, as catalogue entries (role pool).
pub const RULES: &[Check] = &[
    rule!(Pool, STRICT_DECODING, "3.1", Must, Some(2), "every frame the server sends decodes strictly: bounded lengths, OPTION prefixes 0/1, no stray bytes"),
    rule!(Pool, CHANNEL_MSG_BIT, "8", Must, Some(5), "the channel_msg bit of every frame the server sends is set exactly as the message table says"),
    rule!(Pool, CHANNEL_ID_KNOWN, "3.2.1", Should, Some(6), "every channel message the server sends starts with the id of a channel or group of the connection"),
    rule!(Pool, SETUP_ANSWER_FIRST, "3.6.1", Must, Some(24), "the server's first message answers the client's SetupConnection with .Success or .Error (and nothing comes before it)"),
    rule!(Pool, USED_VERSION, "3.6.2", Must, Some(26), "SetupConnection.Success.used_version lies in the client's [min_version, max_version]"),
    rule!(Pool, PRINTABLE_CODES, "3.5", Must, Some(30), "error_code and reason_code strings the server sends contain no control characters"),
    rule!(Pool, REQUEST_ID_ECHO, "5.3.3", Must, Some(42), "Open*Channel.Success/.Error echo the request_id of a request in flight, of the same channel kind"),
    rule!(Pool, TARGET_WITHIN_MAX, "5.3.2", Must, Some(40), "a channel's target (Open*.Success, SetTarget to it or its group) never exceeds the max_target the client allowed"),
    rule!(Pool, EXTRANONCE_SIZE, "5.3.5", Should, Some(43), "extranonce_size >= min_extranonce_size, and extranonce_prefix (also a SetExtranoncePrefix's) + extranonce_size fit in 32 bytes (the spec describes the minimum and gives no bound on the sum: the reference implementation's)"),
    rule!(Pool, EXTRANONCE_FITS, "5.3.12", Must, None, "extranonce_size <= 32: a share's extranonce is a B0_32 that MUST be extranonce_size bytes long"),
    rule!(Pool, UNIQUE_CHANNEL_IDS, "5.2", Must, Some(41), "channel ids are unique on a connection and group ids do not collide with channel ids"),
    rule!(Pool, FIRST_JOB_FUTURE, "5.3.15", Must, Some(44), "a standard channel's first job is a future NewMiningJob (min_ntime empty), activated by a SetNewPrevHash"),
    rule!(Pool, PREV_HASH_NAMES_FUTURE_JOB, "5.3.17", Must, Some(45), "SetNewPrevHash names a job sent before as a future job to that channel or its group, and not made invalid by a later SetNewPrevHash"),
    rule!(Pool, JOB_ID_UNIQUE, "5.3.16", Must, Some(46), "a job_id is not reused while the job it named is still valid on that channel or group"),
    rule!(Pool, JOB_KIND, "5.1.1", Must, Some(47), "NewMiningJob goes to standard channels only, NewExtendedMiningJob to extended or group channels only"),
    rule!(Pool, JOB_AFTER_PREV_HASH, "5.3.15", Should, None, "a job with min_ntime set (active at once) comes after a SetNewPrevHash for its channel or group: it uses the prev_hash of the last one (expected, not a MUST)"),
    rule!(Pool, JOB_MIN_NTIME, "5.3.15", Should, None, "a job's min_ntime is not below the min_ntime of the SetNewPrevHash it is mined on (expected, not a MUST)"),
    rule!(Pool, STANDARD_JOBS_FLAG, "5.3.1", Must, Some(48), "after REQUIRES_STANDARD_JOBS, no NewExtendedMiningJob and no SetGroupChannel on the connection"),
    rule!(Pool, VERSION_ROLLING_FLAG, "5.3.1", Must, Some(49), "after REQUIRES_VERSION_ROLLING, no REQUIRES_FIXED_VERSION in .Success and no job forbidding version rolling"),
    rule!(Pool, FIXED_VERSION, "5.3.1", Must, Some(50), "after .Success with REQUIRES_FIXED_VERSION, every NewExtendedMiningJob has version_rolling_allowed = false"),
    rule!(Pool, COINBASE_STRIPPED, "5.3.16", Must, Some(51), "prefix || extranonce || suffix of NewExtendedMiningJob parses as a legacy transaction without BIP141 marker, flag or witness"),
    rule!(Pool, COINBASE_IS_COINBASE, "5.3.16", Should, None, "prefix || extranonce || suffix of NewExtendedMiningJob is a coinbase: one input, null prevout (expected, not a MUST)"),
    rule!(Pool, GROUP_EXTRANONCE_LENGTH, "5.2.3", Must, Some(52), "all channels of a group have the same total extranonce length"),
    rule!(Pool, SILENT_AFTER_CLOSE, "5.3.9", Must, Some(54), "after the client's CloseChannel the server sends nothing more for that channel or a group of closed channels (answers to earlier shares aside; frames within 1 s of the close may have crossed it)"),
    rule!(Pool, NO_PREFIX_TO_GROUP, "5.3.10", Must, Some(63), "SetExtranoncePrefix is never addressed to a group channel"),
    rule!(Pool, SHARE_ACKS, "5.3.13", Must, Some(58), "SubmitShares.Success acknowledges only shares sent, and never counts more than were outstanding"),
    rule!(Pool, SHARE_ERROR_ECHO, "5.3.14", Must, Some(59), "SubmitShares.Error names the sequence_number of a share sent and not already rejected"),
    rule!(Pool, SHARE_ERROR_AFTER_ACK, "5.3.14", Should, None, "no SubmitShares.Error for a share a SubmitShares.Success already acknowledged (expected, not a MUST)"),
];

/// The monitor's rules about the client (role client). They are not part of a server's verdict: the
/// pool suite breaks them on purpose to see what the server does.
pub const CLIENT_RULES: &[Check] = &[
    rule!(Client, CLIENT_STRICT_DECODING, "3.1", Must, None, "every frame the client sends decodes strictly: bounded lengths, OPTION prefixes 0/1, no stray bytes"),
    rule!(Client, CLIENT_CHANNEL_MSG_BIT, "3.2", Must, Some(5), "the channel_msg bit of every frame the client sends is set exactly as the message table says"),
    rule!(Client, CLIENT_SETUP_FIRST, "3.6.1", Must, Some(23), "the client's first message after the handshake is SetupConnection"),
    rule!(Client, CLIENT_VENDOR, "3.6.1", Must, Some(27), "SetupConnection names the vendor (a non-empty vendor string)"),
    rule!(Client, CLIENT_REQUEST_ID_UNIQUE, "5.3.2", Must, Some(70), "the request_id of every Open*MiningChannel is unique on the connection"),
    rule!(Client, CLIENT_SHARE_NTIME, "5.3.11", Must, Some(67), "a share's ntime is at least the latest SetNewPrevHash's min_ntime and at most that plus the seconds since it arrived (a share within 1 s of a newer prev hash may be judged against the one before)"),
    rule!(Client, CLIENT_SEQUENCE_UNIQUE, "5.3.11", Should, None, "a share's sequence_number is not one already used on its channel (the spec describes it as a unique sequential identifier; not a MUST)"),
];

/// A rule of either list by its id.
pub fn rule(id: &str) -> Option<&'static Check> {
    RULES.iter().chain(CLIENT_RULES).find(|r| r.id == id)
}

/// The side a rule binds.
fn side_of(rule: &str) -> Side {
    if CLIENT_RULES.iter().any(|r| r.id == rule) {
        Side::Client
    } else {
        Side::Server
    }
}

fn side_name<S: Serializer>(side: &Side, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(match side {
        Side::Client => "client",
        Side::Server => "server",
    })
}

/// A rule broken, by whom, where, and how.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// The rule's id (an entry of [`RULES`] or [`CLIENT_RULES`]).
    pub rule: &'static str,
    /// The side that broke it.
    #[serde(serialize_with = "side_name")]
    pub by: Side,
    /// Index of the transcript entry that broke it.
    pub entry: usize,
    /// What was seen.
    pub detail: String,
}

/// Request ids of a client's channel requests remembered per connection (a client flooding requests
/// stays bounded; ids past this are not checked for reuse).
const MAX_REQUEST_IDS: usize = 1 << 16;

/// At most this many findings are kept in a report (a live monitor on a long run against a pool that
/// breaks a rule with every message stays bounded); [`MonitorReport::omitted`] counts the rest.
pub const MAX_FINDINGS: usize = 100_000;

/// What the monitor made of one transcript (or several, merged).
#[derive(Debug, Clone, Default, Serialize)]
pub struct MonitorReport {
    pub findings: Vec<Finding>,
    /// Rules that had something to judge (a rule never exercised cannot pass).
    pub exercised: BTreeSet<&'static str>,
    /// Findings beyond [`MAX_FINDINGS`], not kept.
    #[serde(skip_serializing_if = "is_zero")]
    pub omitted: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl MonitorReport {
    pub fn findings_for<'a>(&'a self, rule: &'a str) -> impl Iterator<Item = &'a Finding> + 'a {
        self.findings.iter().filter(move |f| f.rule == rule)
    }

    /// Only what concerns the server: its findings and its rules exercised. Every verdict about a
    /// server (a pool) is made from this, never from the client's findings (the pool suite sends
    /// malformed frames on purpose).
    pub fn server(&self) -> MonitorReport {
        MonitorReport {
            findings: self
                .findings
                .iter()
                .filter(|f| f.by == Side::Server)
                .cloned()
                .collect(),
            exercised: self
                .exercised
                .iter()
                .copied()
                .filter(|r| side_of(r) == Side::Server)
                .collect(),
            omitted: self.omitted,
        }
    }
}

impl MonitorReport {
    /// Only what concerns the client: its findings and its rules exercised (a proxy's downstream
    /// leg, where the proxy is the server).
    pub fn client(&self) -> MonitorReport {
        MonitorReport {
            findings: self
                .findings
                .iter()
                .filter(|f| f.by == Side::Client)
                .cloned()
                .collect(),
            exercised: self
                .exercised
                .iter()
                .copied()
                .filter(|r| side_of(r) == Side::Client)
                .collect(),
            omitted: self.omitted,
        }
    }
}

/// Runs every rule over `transcript`, both sides (the server's frames are `ServerToClient`); take
/// [`MonitorReport::server`] for a verdict about the server.
///
/// The rules follow the conversation from its start (setup, channels opened, jobs sent). A transcript
/// whose oldest entries were dropped to stay within its retention limits (a peer that flooded) has no
/// start, and judging its rest would blame the peer for state the monitor never saw: it is not judged
/// (an empty report, nothing exercised).
pub fn check_transcript(transcript: &Transcript) -> MonitorReport {
    if transcript.dropped() > 0 {
        return MonitorReport::default();
    }
    let mut monitor = Monitor::new();
    for (i, entry) in transcript.entries().iter().enumerate() {
        monitor.observe(i, entry);
    }
    monitor.finish()
}

/// Sequence numbers of one channel, bounded: past [`SeqSet::CAP`] the oldest are forgotten, and a
/// number not held is then "unknown" rather than "never sent".
#[derive(Debug, Default)]
struct SeqSet {
    set: BTreeSet<u32>,
    forgot: bool,
}

impl SeqSet {
    const CAP: usize = 1 << 16;

    fn insert(&mut self, seq: u32) -> bool {
        let new = self.set.insert(seq);
        while self.set.len() > Self::CAP {
            self.set.pop_first();
            self.forgot = true;
        }
        new
    }

    fn contains(&self, seq: u32) -> bool {
        self.set.contains(&seq)
    }

    /// Whether `seq` is certainly not held (never inserted, nothing forgotten).
    fn surely_absent(&self, seq: u32) -> bool {
        !self.forgot && !self.set.contains(&seq)
    }

    fn remove(&mut self, seq: u32) -> bool {
        self.set.remove(&seq)
    }
}

#[derive(Debug, Clone)]
struct OpenRequest {
    extended: bool,
    max_target: [u8; 32],
    min_extranonce_size: u16,
}

#[derive(Debug, Clone)]
struct ChannelInfo {
    extended: bool,
    max_target: [u8; 32],
    /// Bytes the client rolls (0 on standard channels).
    extranonce_size: usize,
    /// extranonce_prefix + extranonce_size.
    extranonce_len: usize,
    group: u32,
    first_job: FirstJob,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum FirstJob {
    /// Nothing addressed to the channel yet.
    Pending,
    /// Its first job was this future job; no SetNewPrevHash yet.
    Future(u32),
    Done,
}

#[derive(Debug, Default)]
struct Scope {
    /// Jobs in order: (job_id, future).
    jobs: Vec<(u32, bool)>,
    /// Ids valid now: the job the last SetNewPrevHash named, and jobs sent since.
    live: BTreeSet<u32>,
    /// Future jobs sent since the last SetNewPrevHash on this scope (the ones a SetNewPrevHash may
    /// name: "only the job referenced is valid; the remaining jobs have to be made invalid").
    pending: BTreeSet<u32>,
    /// The last SetNewPrevHash on this scope: (its order among all, min_ntime).
    prev_hash: Option<(u64, u32)>,
}

/// What a share's ntime is judged against on a channel or group (§5.3.11).
#[derive(Debug, Clone, Copy)]
struct NtimeBase {
    current: (u32, Timestamp),
    previous: Option<((u32, Timestamp), Timestamp)>,
}

/// Whether `ntime` is within [min_ntime, min_ntime + whole seconds since `at` (rounded up)] at
/// `now`.
fn ntime_fits(ntime: u32, (min_ntime, at): (u32, Timestamp), now: Timestamp) -> bool {
    let elapsed = now.0.saturating_sub(at.0).div_ceil(1_000_000_000);
    let top = u64::from(min_ntime) + elapsed;
    ntime >= min_ntime && u64::from(ntime) <= top
}

/// The monitor's state over one connection: feed it the entries in order ([`Monitor::observe`]).
#[derive(Debug, Default)]
pub struct Monitor {
    report: MonitorReport,
    /// Findings of the entry being observed.
    new_findings: Vec<Finding>,
    /// Every entry so far was a handshake act (nothing from the client yet).
    only_acts: bool,
    client_setup: Option<(u16, u16, u32)>,
    /// Whether the client's first message was SetupConnection (else the first-answer rule does not
    /// apply).
    client_started_with_setup: Option<bool>,
    client_spoke: bool,
    server_spoke: bool,
    success_flags: Option<u32>,
    opens: BTreeMap<u32, OpenRequest>,
    channels: BTreeMap<u32, ChannelInfo>,
    groups: BTreeMap<u32, BTreeSet<u32>>,
    /// Channel ids the client itself named (answers about them are not "unknown").
    named_by_client: BTreeSet<u32>,
    closed: BTreeSet<u32>,
    /// When the client's CloseChannel for each closed channel was recorded.
    closed_at: BTreeMap<u32, Timestamp>,
    /// The time of the entry being judged.
    now: Timestamp,
    scopes: BTreeMap<u32, Scope>,
    prev_hashes: u64,
    /// Shares per channel: sequence numbers sent and not yet settled; rejected; acknowledged by a
    /// SubmitShares.Success that counted every share it settled; sent.
    outstanding: BTreeMap<u32, SeqSet>,
    rejected: BTreeMap<u32, SeqSet>,
    acked: BTreeMap<u32, SeqSet>,
    sent_seqs: BTreeMap<u32, SeqSet>,
    /// Per channel or group id: the latest SetNewPrevHash (min_ntime, when it was recorded), and
    /// the one before with when it was replaced (a share in flight across a new prev hash).
    ntime_bases: BTreeMap<u32, NtimeBase>,
    /// The request_ids of the client's Open*MiningChannel requests (at most MAX_REQUEST_IDS).
    client_request_ids: BTreeSet<u32>,
    /// The entry being judged (findings about the client's messages name it).
    index: usize,
}

impl Monitor {
    pub fn new() -> Self {
        Monitor {
            only_acts: true,
            ..Monitor::default()
        }
    }

    /// What was found so far.
    pub fn report(&self) -> &MonitorReport {
        &self.report
    }

    pub fn finish(self) -> MonitorReport {
        self.report
    }

    fn exercise(&mut self, rule: &'static str) {
        self.report.exercised.insert(rule);
    }

    fn find(&mut self, rule: &'static str, entry: usize, detail: String) {
        self.report.exercised.insert(rule);
        let finding = Finding {
            rule,
            by: side_of(rule),
            entry,
            detail,
        };
        self.new_findings.push(finding);
    }

    /// Takes the next transcript entry (`index`: its position in the transcript) and returns the
    /// findings it brought, of either side (a live driver prints them as they happen). They are kept
    /// in the report too (up to [`MAX_FINDINGS`]).
    pub fn observe(&mut self, index: usize, entry: &Entry) -> Vec<Finding> {
        self.new_findings.clear();
        self.step(index, entry);
        let new = std::mem::take(&mut self.new_findings);
        for f in &new {
            if self.report.findings.len() < MAX_FINDINGS {
                self.report.findings.push(f.clone());
            } else {
                self.report.omitted += 1;
            }
        }
        new
    }

    fn step(&mut self, index: usize, entry: &Entry) {
        self.now = entry.at;
        self.index = index;
        let first = self.only_acts;
        self.only_acts = first && matches!(entry.event, Event::Handshake { .. });
        let Event::Frame {
            direction,
            plain: bytes,
            decoded,
            ..
        } = &entry.event
        else {
            return;
        };
        match direction {
            Direction::ServerToClient => self.server_frame(index, bytes, decoded, first),
            Direction::ClientToServer => self.client_frame(index, bytes, decoded),
        }
    }

    /// The header rules of either side: the channel_msg bit against the message table. Returns
    /// (channel_msg, ext_type, msg_type) when there is a header.
    fn header(&mut self, i: usize, bytes: &[u8], rule: &'static str) -> Option<(bool, u16, u8)> {
        if bytes.len() < 6 {
            return None;
        }
        let ext = u16::from_le_bytes([bytes[0], bytes[1]]);
        let channel_msg = ext & 0x8000 != 0;
        let ext_type = ext & 0x7fff;
        let msg_type = bytes[2];
        if let Some(info) = MESSAGE_TYPES
            .iter()
            .find(|i| i.extension_type == ext_type && i.msg_type == msg_type)
        {
            if info.channel_msg == channel_msg {
                self.exercise(rule);
            } else {
                self.find(
                    rule,
                    i,
                    format!(
                        "{} sent with channel_msg = {} (the table says {})",
                        info.name, channel_msg, info.channel_msg
                    ),
                );
            }
        }
        Some((channel_msg, ext_type, msg_type))
    }

    fn client_frame(
        &mut self,
        i: usize,
        bytes: &[u8],
        decoded: &Result<Box<sv2_codec::Decoded<'static>>, FrameProblem>,
    ) {
        let header = self.header(i, bytes, CLIENT_CHANNEL_MSG_BIT);
        if !self.client_spoke {
            self.client_spoke = true;
            if let Some((_, ext_type, msg_type)) = header {
                if ext_type == 0 && msg_type == 0x00 {
                    self.exercise(CLIENT_SETUP_FIRST);
                } else {
                    let name = MESSAGE_TYPES
                        .iter()
                        .find(|m| m.extension_type == ext_type && m.msg_type == msg_type)
                        .map_or_else(
                            || format!("a frame of type {ext_type:#06x}/{msg_type:#04x}"),
                            |m| m.name.to_string(),
                        );
                    self.find(
                        CLIENT_SETUP_FIRST,
                        i,
                        format!("first message {name} instead of SetupConnection"),
                    );
                }
            }
        }
        match decoded {
            Ok(d) => {
                self.exercise(CLIENT_STRICT_DECODING);
                self.client_message(&d.message);
            }
            Err(FrameProblem::Decode(e)) if matches!(e.kind, ErrorKind::ChannelMsgBit { .. }) => {
                self.undecodable_share(header, bytes);
            }
            Err(e) => {
                self.undecodable_share(header, bytes);
                self.find(
                    CLIENT_STRICT_DECODING,
                    i,
                    format!("frame {} does not decode: {e}", short_hex(bytes)),
                )
            }
        }
    }

    /// A client's share that does not decode strictly (a 33-byte extranonce, a TLV too long: a
    /// conformance suite sends such shares on purpose, a buggy device by accident) is still a share
    /// the server may answer: SubmitShares.Error echoing its sequence_number is right, not "a
    /// sequence number never sent". Its channel_id and sequence_number are the payload's first
    /// eight bytes in both share messages (§5.3.11, §5.3.12).
    fn undecodable_share(&mut self, header: Option<(bool, u16, u8)>, bytes: &[u8]) {
        let Some((_, 0, msg_type)) = header else {
            return;
        };
        if !matches!(msg_type, 0x1a | 0x1b) || bytes.len() < 6 + 8 {
            return;
        }
        let word = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        self.share_sent(word(6), word(10));
    }

    fn client_message(&mut self, message: &Message<'_>) {
        if self.client_started_with_setup.is_none() {
            self.client_started_with_setup = Some(matches!(message, Message::SetupConnection(_)));
        }
        if message.channel_msg() {
            let mut payload = Vec::new();
            message.encode_fields(&mut payload);
            if let Some(id) = payload.first_chunk::<4>() {
                self.named_by_client.insert(u32::from_le_bytes(*id));
            }
        }
        if let Message::SetupConnection(m) = message {
            self.exercise(CLIENT_VENDOR);
            if m.vendor.as_bytes().is_empty() {
                self.find(
                    CLIENT_VENDOR,
                    self.index,
                    "SetupConnection with an empty vendor".to_string(),
                );
            }
        }
        let request_id = match message {
            Message::OpenStandardMiningChannel(m) => Some(&m.request_id),
            Message::OpenExtendedMiningChannel(m) => Some(&m.request_id),
            _ => None,
        };
        if let Some(request_id) = request_id {
            self.exercise(CLIENT_REQUEST_ID_UNIQUE);
            if self.client_request_ids.contains(request_id) {
                self.find(
                    CLIENT_REQUEST_ID_UNIQUE,
                    self.index,
                    format!(
                        "{} with request_id {request_id}, already used on this connection",
                        message.name()
                    ),
                );
            } else if self.client_request_ids.len() < MAX_REQUEST_IDS {
                self.client_request_ids.insert(*request_id);
            }
        }
        match message {
            Message::SetupConnection(m) if m.protocol == 0 => {
                self.client_setup = Some((m.min_version, m.max_version, m.flags));
            }
            Message::OpenStandardMiningChannel(m) => {
                self.opens.insert(
                    m.request_id,
                    OpenRequest {
                        extended: false,
                        max_target: m.max_target.0,
                        min_extranonce_size: 0,
                    },
                );
            }
            Message::OpenExtendedMiningChannel(m) => {
                self.opens.insert(
                    m.request_id,
                    OpenRequest {
                        extended: true,
                        max_target: m.max_target.0,
                        min_extranonce_size: m.min_extranonce_size,
                    },
                );
            }
            Message::UpdateChannel(m) => {
                // The most the client ever allowed: a SetTarget may cross a lowering UpdateChannel
                // in flight (§5.3.7 allows a delay), so only a raise changes what is judged here;
                // that the server follows a lowering is mining.update-channel-target's business.
                if let Some(c) = self.channels.get_mut(&m.channel_id) {
                    if !meets_target(&m.maximum_target.0, &c.max_target) {
                        c.max_target = m.maximum_target.0;
                    }
                }
            }
            Message::CloseChannel(m) => {
                let mut ids = vec![m.channel_id];
                if let Some(members) = self.groups.get(&m.channel_id) {
                    ids.extend(members.iter().copied());
                }
                for id in ids {
                    self.closed.insert(id);
                    self.closed_at.insert(id, self.now);
                }
            }
            Message::SubmitSharesStandard(m) => {
                self.share_ntime(m.channel_id, m.sequence_number, m.ntime);
                self.share_sent(m.channel_id, m.sequence_number)
            }
            Message::SubmitSharesExtended(m) => {
                self.share_ntime(m.channel_id, m.sequence_number, m.ntime);
                self.share_sent(m.channel_id, m.sequence_number)
            }
            _ => {}
        }
    }

    /// §5.3.11: the share's ntime against the newest SetNewPrevHash of its channel or group; a
    /// share within IN_FLIGHT of a newer one may fit the one before (which may have come to the
    /// channel while the newer one came to its group, or the other way round). Not judged before any.
    fn share_ntime(&mut self, channel: u32, seq: u32, ntime: u32) {
        let group = self.channels.get(&channel).map(|c| c.group);
        // Every prev hash this channel has had, from its own id and its group's, oldest first.
        let mut bases: Vec<(u32, Timestamp)> = [Some(channel), group]
            .into_iter()
            .flatten()
            .filter_map(|id| self.ntime_bases.get(&id).copied())
            .flat_map(|b| [b.previous.map(|(before, _)| before), Some(b.current)])
            .flatten()
            .collect();
        bases.sort_by_key(|(_, at)| at.0);
        bases.dedup();
        let Some(&newest) = bases.last() else {
            return;
        };
        self.exercise(CLIENT_SHARE_NTIME);
        let now = self.now;
        let in_flight =
            std::time::Duration::from_nanos(now.0.saturating_sub(newest.1 .0)) <= IN_FLIGHT;
        let before = bases.len().checked_sub(2).map(|i| bases[i]);
        let fits = ntime_fits(ntime, newest, now)
            || (in_flight && before.is_some_and(|b| ntime_fits(ntime, b, now)));
        if !fits {
            let (min_ntime, at) = newest;
            let elapsed = now.0.saturating_sub(at.0).div_ceil(1_000_000_000);
            self.find(
                CLIENT_SHARE_NTIME,
                self.index,
                format!(
                    "share {seq} on channel {channel} has ntime {ntime}, outside [{min_ntime}, {}] (SetNewPrevHash min_ntime {min_ntime}, {elapsed} s before)",
                    u64::from(min_ntime) + elapsed
                ),
            );
        }
    }

    fn share_sent(&mut self, channel: u32, seq: u32) {
        self.exercise(CLIENT_SEQUENCE_UNIQUE);
        if self
            .sent_seqs
            .get(&channel)
            .is_some_and(|s| s.contains(seq))
        {
            self.find(
                CLIENT_SEQUENCE_UNIQUE,
                self.index,
                format!("a share with sequence_number {seq}, already used on channel {channel}"),
            );
        }
        self.outstanding.entry(channel).or_default().insert(seq);
        self.sent_seqs.entry(channel).or_default().insert(seq);
        if let Some(a) = self.acked.get_mut(&channel) {
            a.remove(seq);
        }
        if let Some(r) = self.rejected.get_mut(&channel) {
            r.remove(seq);
        }
    }

    fn client_flags(&self) -> u32 {
        self.client_setup.map(|s| s.2).unwrap_or(0)
    }

    fn server_frame(
        &mut self,
        i: usize,
        bytes: &[u8],
        decoded: &Result<Box<sv2_codec::Decoded<'static>>, FrameProblem>,
        first_traffic: bool,
    ) {
        // Header-level rules work on the bytes, whatever the payload.
        if let Some((true, ext_type, msg_type)) = self.header(i, bytes, CHANNEL_MSG_BIT) {
            if let Some(id) = bytes[6..].first_chunk::<4>() {
                let id = u32::from_le_bytes(*id);
                if self.channels.contains_key(&id)
                    || self.groups.contains_key(&id)
                    || self.closed.contains(&id)
                    || self.named_by_client.contains(&id)
                {
                    self.exercise(CHANNEL_ID_KNOWN);
                } else {
                    let name = MESSAGE_TYPES
                        .iter()
                        .find(|i| i.extension_type == ext_type && i.msg_type == msg_type)
                        .map_or("a channel message", |i| i.name);
                    let detail = if self.channels.is_empty() {
                        format!("{name} for channel id {id} before any channel is open")
                    } else {
                        format!("{name} for channel id {id}, never opened on this connection")
                    };
                    self.find(CHANNEL_ID_KNOWN, i, detail);
                }
            }
        }
        let decoded = match decoded {
            Ok(d) => {
                self.exercise(STRICT_DECODING);
                d
            }
            Err(FrameProblem::Decode(e)) if matches!(e.kind, ErrorKind::ChannelMsgBit { .. }) => {
                return; // judged above
            }
            Err(e) => {
                self.find(
                    STRICT_DECODING,
                    i,
                    format!("frame {} does not decode: {e}", short_hex(bytes)),
                );
                return;
            }
        };
        let message = &decoded.message;
        if !self.server_spoke {
            self.server_spoke = true;
            if first_traffic {
                // Nothing came from the client yet: an answer to no SetupConnection.
                self.find(
                    SETUP_ANSWER_FIRST,
                    i,
                    format!("{} before the client's SetupConnection", message.name()),
                );
            } else if self.client_started_with_setup == Some(true) {
                let ok = matches!(
                    message,
                    Message::SetupConnectionSuccess(_) | Message::SetupConnectionError(_)
                );
                if ok {
                    self.exercise(SETUP_ANSWER_FIRST);
                } else {
                    self.find(
                        SETUP_ANSWER_FIRST,
                        i,
                        format!(
                            "first message {} instead of SetupConnection.Success/.Error",
                            message.name()
                        ),
                    );
                }
            }
        }
        self.codes(i, message);
        self.silent_after_close(i, message);
        self.server_message(i, message);
    }

    fn codes(&mut self, i: usize, message: &Message<'_>) {
        let code = match message {
            Message::SetupConnectionError(m) => m.error_code.as_bytes(),
            Message::OpenMiningChannelError(m) => m.error_code.as_bytes(),
            Message::UpdateChannelError(m) => m.error_code.as_bytes(),
            Message::SubmitSharesError(m) => m.error_code.as_bytes(),
            Message::SetCustomMiningJobError(m) => m.error_code.as_bytes(),
            Message::CloseChannel(m) => m.reason_code.as_bytes(),
            _ => return,
        };
        if code.iter().any(|&b| b < 0x20 || b == 0x7f) {
            self.find(
                PRINTABLE_CODES,
                i,
                format!(
                    "{} code {:?} contains control characters",
                    message.name(),
                    String::from_utf8_lossy(code)
                ),
            );
        } else {
            self.exercise(PRINTABLE_CODES);
        }
    }

    fn silent_after_close(&mut self, i: usize, message: &Message<'_>) {
        if self.closed.is_empty() {
            return;
        }
        // Any frame after a close is something the rule judged.
        self.exercise(SILENT_AFTER_CLOSE);
        if !message.channel_msg() {
            return;
        }
        let mut payload = Vec::new();
        message.encode_fields(&mut payload);
        let Some(id) = payload.first_chunk::<4>().map(|b| u32::from_le_bytes(*b)) else {
            return;
        };
        // A group counts as closed once every channel in it is.
        let closed_group = !self.channels.contains_key(&id)
            && self
                .groups
                .get(&id)
                .is_some_and(|m| !m.is_empty() && m.iter().all(|c| self.closed.contains(c)));
        if !self.closed.contains(&id) && !closed_group {
            return;
        }
        // Frames that reach the client shortly after its CloseChannel left may have crossed it on
        // the way (the server sent them before it read the close): only what comes later is the
        // server's doing. The latest close that concerns this id counts.
        let closed_at = match self.closed_at.get(&id) {
            Some(at) => Some(*at),
            None => self.groups.get(&id).and_then(|members| {
                members
                    .iter()
                    .filter_map(|c| self.closed_at.get(c))
                    .max()
                    .copied()
            }),
        };
        if closed_at.is_some_and(|at| self.now.since(at) < IN_FLIGHT) {
            return;
        }
        match message {
            Message::SubmitSharesSuccess(_) | Message::SubmitSharesError(_) => {}
            // An error about a channel the client named after closing it is an answer, not traffic.
            Message::UpdateChannelError(_) | Message::SetCustomMiningJobError(_) => {}
            _ if closed_group && !self.closed.contains(&id) => self.find(
                SILENT_AFTER_CLOSE,
                i,
                format!(
                    "{} for group {id} after the client closed every channel in it",
                    message.name()
                ),
            ),
            _ => self.find(
                SILENT_AFTER_CLOSE,
                i,
                format!(
                    "{} for channel {id} after the client closed it",
                    message.name()
                ),
            ),
        }
    }

    fn server_message(&mut self, i: usize, message: &Message<'_>) {
        match message {
            Message::SetupConnectionSuccess(m) => {
                self.success_flags = Some(m.flags);
                if let Some((min, max, client_flags)) = self.client_setup {
                    if (min..=max).contains(&m.used_version) {
                        self.exercise(USED_VERSION);
                    } else {
                        self.find(
                            USED_VERSION,
                            i,
                            format!("used_version {} outside [{min}, {max}]", m.used_version),
                        );
                    }
                    if client_flags & flags::REQUIRES_VERSION_ROLLING != 0 {
                        if m.flags & flags::REQUIRES_FIXED_VERSION != 0 {
                            self.find(
                                VERSION_ROLLING_FLAG,
                                i,
                                format!("Success flags {:#x} set REQUIRES_FIXED_VERSION", m.flags),
                            );
                        } else {
                            self.exercise(VERSION_ROLLING_FLAG);
                        }
                    }
                }
            }
            Message::OpenStandardMiningChannelSuccess(m) => {
                let request = self.answer(i, m.request_id, Some(false), message.name());
                let max_target = request.as_ref().map_or([0xff; 32], |r| r.max_target);
                self.target_within(i, &m.target.0, &max_target, message.name());
                self.new_channel(
                    i,
                    m.channel_id,
                    m.group_channel_id,
                    false,
                    max_target,
                    0,
                    m.extranonce_prefix.len(),
                );
            }
            Message::OpenExtendedMiningChannelSuccess(m) => {
                let request = self.answer(i, m.request_id, Some(true), message.name());
                let max_target = request.as_ref().map_or([0xff; 32], |r| r.max_target);
                self.target_within(i, &m.target.0, &max_target, message.name());
                let total = m.extranonce_prefix.len() + usize::from(m.extranonce_size);
                let min = request.map_or(0, |r| r.min_extranonce_size);
                if m.extranonce_size > 32 {
                    self.find(
                        EXTRANONCE_FITS,
                        i,
                        format!(
                            "extranonce_size {}: no SubmitSharesExtended.extranonce (B0_32) can be that long",
                            m.extranonce_size
                        ),
                    );
                } else {
                    self.exercise(EXTRANONCE_FITS);
                }
                let mut fine = true;
                if m.extranonce_size < min {
                    fine = false;
                    self.find(
                        EXTRANONCE_SIZE,
                        i,
                        format!(
                            "extranonce_size {} below the requested minimum {min}",
                            m.extranonce_size
                        ),
                    );
                }
                if total > 32 {
                    fine = false;
                    self.find(
                        EXTRANONCE_SIZE,
                        i,
                        format!(
                            "extranonce_prefix ({} bytes) + extranonce_size ({}) = {total} > 32",
                            m.extranonce_prefix.len(),
                            m.extranonce_size
                        ),
                    );
                }
                if fine {
                    self.exercise(EXTRANONCE_SIZE);
                }
                let size = usize::from(m.extranonce_size);
                self.new_channel(
                    i,
                    m.channel_id,
                    m.group_channel_id,
                    true,
                    max_target,
                    size,
                    total,
                );
            }
            Message::OpenMiningChannelError(m) => {
                self.answer(i, m.request_id, None, message.name());
            }
            Message::SetTarget(m) => {
                if let Some(c) = self.channels.get(&m.channel_id) {
                    let max = c.max_target;
                    self.target_within(i, &m.maximum_target.0, &max, "SetTarget");
                } else if let Some(members) = self.groups.get(&m.channel_id) {
                    // To a group: it applies to every channel in it (§5.3.21); the lowest max_target
                    // of them bounds it.
                    let max = members
                        .iter()
                        .filter_map(|c| self.channels.get(c))
                        .map(|c| c.max_target)
                        .min_by(|a, b| a.iter().rev().cmp(b.iter().rev()));
                    if let Some(max) = max {
                        let name = format!("SetTarget to group {}", m.channel_id);
                        self.target_within(i, &m.maximum_target.0, &max, &name);
                    }
                }
            }
            Message::SetGroupChannel(m) => {
                if self.client_flags() & flags::REQUIRES_STANDARD_JOBS != 0 {
                    self.find(
                        STANDARD_JOBS_FLAG,
                        i,
                        format!(
                            "SetGroupChannel {} although REQUIRES_STANDARD_JOBS was set",
                            m.group_channel_id
                        ),
                    );
                }
                if self.channels.contains_key(&m.group_channel_id) {
                    self.find(
                        UNIQUE_CHANNEL_IDS,
                        i,
                        format!(
                            "group_channel_id {} is also a channel id",
                            m.group_channel_id
                        ),
                    );
                }
                for id in m.channel_ids.iter() {
                    if let Some(c) = self.channels.get_mut(id) {
                        let old = std::mem::replace(&mut c.group, m.group_channel_id);
                        if old != m.group_channel_id {
                            if let Some(members) = self.groups.get_mut(&old) {
                                members.remove(id);
                            }
                        }
                    }
                }
                self.groups
                    .entry(m.group_channel_id)
                    .or_default()
                    .extend(m.channel_ids.iter().copied());
                self.group_lengths(i, m.group_channel_id);
            }
            Message::SetExtranoncePrefix(m) => {
                if self.groups.contains_key(&m.channel_id)
                    && !self.channels.contains_key(&m.channel_id)
                {
                    self.find(
                        NO_PREFIX_TO_GROUP,
                        i,
                        format!("SetExtranoncePrefix to group channel {}", m.channel_id),
                    );
                } else {
                    self.exercise(NO_PREFIX_TO_GROUP);
                    if let Some(c) = self.channels.get_mut(&m.channel_id) {
                        // For the jobs sent after it (§5.3.10).
                        let prefix = m.extranonce_prefix.len();
                        let size = c.extranonce_size;
                        c.extranonce_len = prefix + size;
                        if prefix + size > 32 {
                            self.find(
                                EXTRANONCE_SIZE,
                                i,
                                format!(
                                    "SetExtranoncePrefix: extranonce_prefix ({prefix} bytes) + extranonce_size ({size}) = {} > 32",
                                    prefix + size
                                ),
                            );
                        } else {
                            self.exercise(EXTRANONCE_SIZE);
                        }
                    }
                }
            }
            Message::NewMiningJob(m) => {
                if self.job_kind(i, m.channel_id, false, m.job_id) == Some(false) {
                    // A standard job for an extended or group channel is no job of it: nothing
                    // there can mine it, and a SetNewPrevHash naming it names no job.
                    return;
                }
                self.first_job(i, m.channel_id, m.job_id, m.min_ntime.is_none(), true);
                self.job(i, m.channel_id, m.job_id, m.min_ntime);
                if self.client_flags() & flags::REQUIRES_STANDARD_JOBS != 0 {
                    self.exercise(STANDARD_JOBS_FLAG);
                }
            }
            Message::NewExtendedMiningJob(m) => {
                self.job_kind(i, m.channel_id, true, m.job_id);
                self.first_job(i, m.channel_id, m.job_id, m.min_ntime.is_none(), false);
                self.job(i, m.channel_id, m.job_id, m.min_ntime);
                let client_flags = self.client_flags();
                if client_flags & flags::REQUIRES_STANDARD_JOBS != 0 {
                    self.find(
                        STANDARD_JOBS_FLAG,
                        i,
                        format!(
                            "NewExtendedMiningJob {} although REQUIRES_STANDARD_JOBS was set",
                            m.job_id
                        ),
                    );
                }
                if client_flags & flags::REQUIRES_VERSION_ROLLING != 0 {
                    if m.version_rolling_allowed {
                        self.exercise(VERSION_ROLLING_FLAG);
                    } else {
                        self.find(VERSION_ROLLING_FLAG, i, format!("job {} forbids version rolling although REQUIRES_VERSION_ROLLING was set", m.job_id));
                    }
                }
                if self.success_flags.unwrap_or(0) & flags::REQUIRES_FIXED_VERSION != 0 {
                    if m.version_rolling_allowed {
                        self.find(FIXED_VERSION, i, format!("job {} allows version rolling although .Success set REQUIRES_FIXED_VERSION", m.job_id));
                    } else {
                        self.exercise(FIXED_VERSION);
                    }
                }
                self.coinbase(
                    i,
                    m.channel_id,
                    m.job_id,
                    m.coinbase_tx_prefix.as_bytes(),
                    m.coinbase_tx_suffix.as_bytes(),
                );
            }
            Message::SetNewPrevHash(m) => {
                let now = self.now;
                let base = self.ntime_bases.entry(m.channel_id).or_insert(NtimeBase {
                    current: (m.min_ntime, now),
                    previous: None,
                });
                if base.current.1 != now || base.current.0 != m.min_ntime {
                    base.previous = Some((base.current, now));
                    base.current = (m.min_ntime, now);
                }
                self.prev_hash(i, m.channel_id, m.job_id);
                if let Some(sc) = self.scopes.get_mut(&m.channel_id) {
                    sc.prev_hash = sc.prev_hash.map(|(order, _)| (order, m.min_ntime));
                }
            }
            Message::SubmitSharesSuccess(m) => {
                let (channel, last) = (m.channel_id, m.last_sequence_number);
                let unsent = self
                    .sent_seqs
                    .get(&channel)
                    .is_none_or(|s| s.surely_absent(last));
                if unsent {
                    self.find(SHARE_ACKS, i, format!("SubmitShares.Success names last_sequence_number {last}, never sent on channel {channel}"));
                    return;
                }
                let outstanding = self.outstanding.entry(channel).or_default();
                let settled: Vec<u32> = outstanding.set.range(..=last).copied().collect();
                let count = settled.len();
                let forgot = outstanding.forgot;
                for s in &settled {
                    outstanding.remove(*s);
                }
                let accepted = m.new_submits_accepted_count as usize;
                if accepted > count && !forgot {
                    self.find(SHARE_ACKS, i, format!("new_submits_accepted_count {accepted} but only {count} share(s) up to {last} were outstanding"));
                } else {
                    self.exercise(SHARE_ACKS);
                }
                if accepted == count {
                    // Every share it settled is acknowledged as accepted.
                    let acked = self.acked.entry(channel).or_default();
                    for s in settled {
                        acked.insert(s);
                    }
                }
            }
            Message::SubmitSharesError(m) => {
                let (channel, seq) = (m.channel_id, m.sequence_number);
                let sent = self.sent_seqs.get(&channel);
                let unsent = sent.is_none_or(|s| s.surely_absent(seq));
                let known = sent.is_some_and(|s| s.contains(seq));
                let acked = self.acked.get(&channel).is_some_and(|a| a.contains(seq));
                if unsent {
                    self.find(
                        SHARE_ERROR_ECHO,
                        i,
                        format!("SubmitShares.Error names sequence_number {seq}, never sent on channel {channel}"),
                    );
                } else if acked {
                    self.find(
                        SHARE_ERROR_AFTER_ACK,
                        i,
                        format!("SubmitShares.Error for sequence_number {seq}, already acknowledged by a SubmitShares.Success"),
                    );
                } else if known && !self.rejected.entry(channel).or_default().insert(seq) {
                    self.find(
                        SHARE_ERROR_ECHO,
                        i,
                        format!("SubmitShares.Error for sequence_number {seq} a second time"),
                    );
                } else {
                    self.exercise(SHARE_ERROR_ECHO);
                    self.exercise(SHARE_ERROR_AFTER_ACK);
                    if let Some(o) = self.outstanding.get_mut(&channel) {
                        o.remove(seq);
                    }
                }
            }
            _ => {}
        }
    }

    /// Judges an Open*.Success/.Error's request_id; returns the request it answers.
    fn answer(
        &mut self,
        i: usize,
        request_id: u32,
        extended: Option<bool>,
        name: &str,
    ) -> Option<OpenRequest> {
        match self.opens.remove(&request_id) {
            None => {
                self.find(
                    REQUEST_ID_ECHO,
                    i,
                    format!("{name} for request_id {request_id}, not a request in flight"),
                );
                None
            }
            Some(r) => {
                match extended {
                    Some(e) if e != r.extended => self.find(
                        REQUEST_ID_ECHO,
                        i,
                        format!(
                            "{name} answers request {request_id}, which asked for a{} channel",
                            if r.extended {
                                "n extended"
                            } else {
                                " standard"
                            }
                        ),
                    ),
                    _ => self.exercise(REQUEST_ID_ECHO),
                }
                Some(r)
            }
        }
    }

    fn target_within(&mut self, i: usize, target: &[u8; 32], max: &[u8; 32], name: &str) {
        if meets_target(target, max) {
            self.exercise(TARGET_WITHIN_MAX);
        } else {
            self.find(
                TARGET_WITHIN_MAX,
                i,
                format!(
                    "{name} target {} above max_target {}",
                    be_hex(target),
                    be_hex(max)
                ),
            );
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn new_channel(
        &mut self,
        i: usize,
        id: u32,
        group: u32,
        extended: bool,
        max_target: [u8; 32],
        extranonce_size: usize,
        extranonce_len: usize,
    ) {
        let collision = if self.channels.contains_key(&id) {
            Some(format!("channel_id {id} already names an open channel"))
        } else if self.groups.contains_key(&id) {
            Some(format!("channel_id {id} already names a group"))
        } else if group != 0 && (group == id || self.channels.contains_key(&group)) {
            Some(format!("group_channel_id {group} is also a channel id"))
        } else {
            None
        };
        match collision {
            Some(detail) => self.find(UNIQUE_CHANNEL_IDS, i, detail),
            None => self.exercise(UNIQUE_CHANNEL_IDS),
        }
        self.closed.remove(&id);
        self.channels.insert(
            id,
            ChannelInfo {
                extended,
                max_target,
                extranonce_size,
                extranonce_len,
                group,
                first_job: FirstJob::Pending,
            },
        );
        if group != 0 && group != id {
            self.groups.entry(group).or_default().insert(id);
            self.group_lengths(i, group);
        }
    }

    fn group_lengths(&mut self, i: usize, group: u32) {
        let Some(members) = self.groups.get(&group) else {
            return;
        };
        let lengths: BTreeSet<usize> = members
            .iter()
            .filter_map(|m| self.channels.get(m))
            .filter(|c| c.extended)
            .map(|c| c.extranonce_len)
            .collect();
        let count = members
            .iter()
            .filter(|m| self.channels.get(m).is_some_and(|c| c.extended))
            .count();
        if lengths.len() > 1 {
            self.find(
                GROUP_EXTRANONCE_LENGTH,
                i,
                format!("group {group} mixes total extranonce lengths {lengths:?}"),
            );
        } else if count >= 2 {
            self.exercise(GROUP_EXTRANONCE_LENGTH);
        }
    }

    /// Judges a job's kind against its channel; `Some(ok)`, or `None` for an unknown id
    /// (CHANNEL_ID_KNOWN's business).
    fn job_kind(&mut self, i: usize, id: u32, extended_job: bool, job_id: u32) -> Option<bool> {
        let channel = self.channels.get(&id).map(|c| c.extended);
        let is_group = self.groups.contains_key(&id) && channel.is_none();
        let ok = match (extended_job, channel, is_group) {
            (false, Some(extended), _) => !extended,
            (false, None, true) => false,
            (true, Some(extended), _) => extended,
            (true, None, true) => true,
            (_, None, false) => return None,
        };
        if ok {
            self.exercise(JOB_KIND);
        } else {
            let (name, to) = if extended_job {
                ("NewExtendedMiningJob", "a standard channel")
            } else if is_group {
                ("NewMiningJob", "a group channel")
            } else {
                ("NewMiningJob", "an extended channel")
            };
            self.find(JOB_KIND, i, format!("{name} {job_id} sent to {to} ({id})"));
        }
        Some(ok)
    }

    fn first_job(&mut self, i: usize, id: u32, job_id: u32, future: bool, standard_job: bool) {
        let Some(c) = self.channels.get_mut(&id) else {
            return;
        };
        if c.extended || c.first_job != FirstJob::Pending {
            return;
        }
        if standard_job && future {
            c.first_job = FirstJob::Future(job_id);
            self.exercise(FIRST_JOB_FUTURE);
        } else {
            c.first_job = FirstJob::Done;
            let what = if standard_job {
                "a NewMiningJob with min_ntime set"
            } else {
                "a NewExtendedMiningJob"
            };
            self.find(
                FIRST_JOB_FUTURE,
                i,
                format!("standard channel {id}'s first job {job_id} is {what}"),
            );
        }
    }

    /// The scopes whose SetNewPrevHash a job on `scope` is mined on: the scope, its group (for a
    /// channel), its members (for a group).
    fn related(&self, scope: u32) -> Vec<u32> {
        let mut scopes = vec![scope];
        if let Some(c) = self.channels.get(&scope) {
            if c.group != 0 {
                scopes.push(c.group);
            }
        } else if let Some(members) = self.groups.get(&scope) {
            scopes.extend(members.iter().copied());
        }
        scopes
    }

    fn job(&mut self, i: usize, scope: u32, job_id: u32, min_ntime: Option<u32>) {
        let future = min_ntime.is_none();
        let s = self.scopes.entry(scope).or_default();
        if s.live.contains(&job_id) || s.pending.contains(&job_id) {
            self.find(
                JOB_ID_UNIQUE,
                i,
                format!("job_id {job_id} reused on {scope} while the job it named is still valid"),
            );
        } else {
            self.exercise(JOB_ID_UNIQUE);
        }
        if let Some(t) = min_ntime {
            // Active at once, on the prev hash of the last SetNewPrevHash.
            let prev = self
                .related(scope)
                .iter()
                .filter_map(|s| self.scopes.get(s).and_then(|sc| sc.prev_hash))
                .max_by_key(|(order, _)| *order);
            match prev {
                None => self.find(
                    JOB_AFTER_PREV_HASH,
                    i,
                    format!(
                        "job {job_id} on {scope} has min_ntime set, but no SetNewPrevHash came yet"
                    ),
                ),
                Some((_, prev_min)) => {
                    self.exercise(JOB_AFTER_PREV_HASH);
                    if t < prev_min {
                        self.find(
                            JOB_MIN_NTIME,
                            i,
                            format!("job {job_id} min_ntime {t} below SetNewPrevHash min_ntime {prev_min}"),
                        );
                    } else {
                        self.exercise(JOB_MIN_NTIME);
                    }
                }
            }
        }
        let s = self.scopes.entry(scope).or_default();
        s.jobs.push((job_id, future));
        if future {
            s.pending.insert(job_id);
        } else {
            s.live.insert(job_id);
        }
        if s.jobs.len() > 256 {
            let (old, _) = s.jobs.remove(0);
            if !s.jobs.iter().any(|(id, _)| *id == old) {
                s.pending.remove(&old);
                s.live.remove(&old);
            }
        }
    }

    fn prev_hash(&mut self, i: usize, scope: u32, job_id: u32) {
        // Future jobs sent to the scope, or (for a channel) to its group.
        let mut scopes = vec![scope];
        if let Some(c) = self.channels.get(&scope) {
            if c.group != 0 {
                scopes.push(c.group);
            }
        }
        // To a group: also a future job sent to one of its channels (the message is shared by the
        // group's channels, §5.3.17).
        if let Some(members) = self.groups.get(&scope) {
            if !self.channels.contains_key(&scope) {
                scopes.extend(members.iter().copied());
            }
        }
        let sent_future = scopes.iter().any(|s| {
            self.scopes
                .get(s)
                .is_some_and(|sc| sc.jobs.iter().any(|(id, f)| *id == job_id && *f))
        });
        let pending_in: Vec<u32> = scopes
            .iter()
            .copied()
            .filter(|s| {
                self.scopes
                    .get(s)
                    .is_some_and(|sc| sc.pending.contains(&job_id))
            })
            .collect();
        let pending = !pending_in.is_empty();
        if pending {
            self.exercise(PREV_HASH_NAMES_FUTURE_JOB);
        } else if sent_future {
            self.find(PREV_HASH_NAMES_FUTURE_JOB, i, format!("SetNewPrevHash on {scope} names job {job_id}, a future job an earlier SetNewPrevHash made invalid (only the job it names stays valid)"));
        } else {
            self.find(PREV_HASH_NAMES_FUTURE_JOB, i, format!("SetNewPrevHash on {scope} names job {job_id}, never sent there as a future job"));
        }
        if let Some(c) = self.channels.get_mut(&scope) {
            if let FirstJob::Future(_) = c.first_job {
                c.first_job = FirstJob::Done;
            } else if c.first_job == FirstJob::Pending && !c.extended {
                c.first_job = FirstJob::Done;
                self.find(
                    FIRST_JOB_FUTURE,
                    i,
                    format!("SetNewPrevHash on standard channel {scope} before any job"),
                );
            }
        }
        // Only the named job remains valid (§5.3.17), on the scope and, for a group, its members.
        self.prev_hashes += 1;
        let order = self.prev_hashes;
        let mut invalidated = vec![scope];
        if let Some(members) = self.groups.get(&scope) {
            invalidated.extend(members.iter().copied());
        }
        for s in invalidated {
            let sc = self.scopes.entry(s).or_default();
            sc.live.clear();
            sc.pending.clear();
            if s == scope {
                sc.live.insert(job_id);
                sc.prev_hash = Some((order, 0));
            } else if pending_in.contains(&s) {
                sc.live.insert(job_id);
            }
        }
    }

    fn coinbase(&mut self, i: usize, scope: u32, job_id: u32, prefix: &[u8], suffix: &[u8]) {
        let extranonce_len = match self.channels.get(&scope) {
            Some(c) => Some(c.extranonce_len),
            None => self.groups.get(&scope).and_then(|members| {
                members
                    .iter()
                    .filter_map(|m| self.channels.get(m))
                    .find(|c| c.extended)
                    .map(|c| c.extranonce_len)
            }),
        };
        let Some(len) = extranonce_len else {
            return;
        };
        let mut tx = Vec::with_capacity(prefix.len() + len + suffix.len());
        tx.extend_from_slice(prefix);
        tx.resize(prefix.len() + len, 0);
        tx.extend_from_slice(suffix);
        let problem = if tx.len() >= 6 && tx[4] == 0 && tx[5] == 1 {
            Some("carries the BIP141 marker and flag after the version".to_string())
        } else {
            match Transaction::parse(&tx) {
                Err(e) => Some(format!("does not parse as a transaction: {e}")),
                Ok(t) if t.has_witness() => Some("carries witness data".into()),
                Ok(t) if !t.is_coinbase() => {
                    self.exercise(COINBASE_STRIPPED);
                    self.find(
                        COINBASE_IS_COINBASE,
                        i,
                        format!("job {job_id}: prefix || {len} zero bytes || suffix is not a coinbase (one input, null prevout)"),
                    );
                    return;
                }
                Ok(_) => {
                    self.exercise(COINBASE_IS_COINBASE);
                    None
                }
            }
        };
        match problem {
            Some(p) => self.find(
                COINBASE_STRIPPED,
                i,
                format!("job {job_id}: prefix || {len} zero bytes || suffix {p}"),
            ),
            None => self.exercise(COINBASE_STRIPPED),
        }
    }
}

/// A 256-bit little-endian number in the usual big-endian hex.
pub fn be_hex(le: &[u8; 32]) -> String {
    let mut be = *le;
    be.reverse();
    hex::encode(be)
}

fn short_hex(bytes: &[u8]) -> String {
    if bytes.len() <= 64 {
        hex::encode(bytes)
    } else {
        format!("{}... ({} bytes)", hex::encode(&bytes[..64]), bytes.len())
    }
}
