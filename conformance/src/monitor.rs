//! The passive monitor: per-message rules of the spec applied to any transcript of a Mining-protocol
//! conversation, in order, with the state a careful observer keeps (the client's requests and flags,
//! channels, groups, jobs, shares in flight). It judges only the server's side.
//!
//! It reads [`Transcript`]s, so it works on whatever produces them: the active runner's connections
//! (every one of them goes through it), and later a man-in-the-middle proxy or a pcap reader. It
//! never sends anything. Each rule is a catalogue entry of kind [`Kind::Monitor`] in [`RULES`]; a
//! finding names its rule and the transcript entry that broke it.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use sv2_chain::target::meets_target;
use sv2_chain::tx::Transaction;
use sv2_codec::messages::{flags, MESSAGE_TYPES};
use sv2_codec::{ErrorKind, Message};
use sv2_wire::{Direction, Entry, Event, FrameProblem, Transcript};

use crate::check::{Check, Kind, Level, Role};

macro_rules! rule {
    ($id:expr, $section:expr, $level:ident, $catalog:expr, $title:expr) => {
        Check {
            id: $id,
            section: $section,
            level: Level::$level,
            role: Role::Pool,
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
pub const UNIQUE_CHANNEL_IDS: &str = "monitor.unique-channel-ids";
pub const FIRST_JOB_FUTURE: &str = "monitor.first-job-future";
pub const PREV_HASH_NAMES_FUTURE_JOB: &str = "monitor.prev-hash-names-future-job";
pub const JOB_ID_UNIQUE: &str = "monitor.job-id-unique";
pub const JOB_KIND: &str = "monitor.job-kind";
pub const STANDARD_JOBS_FLAG: &str = "monitor.standard-jobs-flag";
pub const VERSION_ROLLING_FLAG: &str = "monitor.version-rolling-flag";
pub const FIXED_VERSION: &str = "monitor.fixed-version";
pub const COINBASE_STRIPPED: &str = "monitor.coinbase-stripped";
pub const GROUP_EXTRANONCE_LENGTH: &str = "monitor.group-extranonce-length";
pub const SILENT_AFTER_CLOSE: &str = "monitor.silent-after-close";
pub const NO_PREFIX_TO_GROUP: &str = "monitor.no-prefix-to-group";
pub const SHARE_ACKS: &str = "monitor.share-acks";
pub const SHARE_ERROR_ECHO: &str = "monitor.share-error-echo";

/// The monitor's rules, as catalogue entries.
pub const RULES: &[Check] = &[
    rule!(STRICT_DECODING, "3.1", Must, Some(2), "every frame the server sends decodes strictly: bounded lengths, OPTION prefixes 0/1, no stray bytes"),
    rule!(CHANNEL_MSG_BIT, "3.2", Must, Some(5), "the channel_msg bit of every frame the server sends is set exactly as the message table says"),
    rule!(CHANNEL_ID_KNOWN, "3.2", Must, Some(6), "every channel message the server sends starts with the id of a channel or group of the connection"),
    rule!(SETUP_ANSWER_FIRST, "3.6.1", Must, Some(24), "the server's first message answers SetupConnection with .Success or .Error"),
    rule!(USED_VERSION, "3.6.2", Must, Some(26), "SetupConnection.Success.used_version lies in the client's [min_version, max_version]"),
    rule!(PRINTABLE_CODES, "3.5", Must, Some(30), "error_code and reason_code strings the server sends contain no control characters"),
    rule!(REQUEST_ID_ECHO, "5.3.3", Must, Some(42), "Open*Channel.Success/.Error echo the request_id of a request in flight, of the same channel kind"),
    rule!(TARGET_WITHIN_MAX, "5.3.2", Must, Some(40), "a channel's target (Open*.Success, SetTarget) never exceeds the max_target the client allowed"),
    rule!(EXTRANONCE_SIZE, "5.3.5", Must, Some(43), "extranonce_size >= min_extranonce_size, and extranonce_prefix + extranonce_size fit in 32 bytes"),
    rule!(UNIQUE_CHANNEL_IDS, "5.2", Must, Some(41), "channel ids are unique on a connection and group ids do not collide with channel ids"),
    rule!(FIRST_JOB_FUTURE, "5.3.15", Must, Some(44), "a standard channel's first job is a future NewMiningJob (min_ntime empty), activated by a SetNewPrevHash"),
    rule!(PREV_HASH_NAMES_FUTURE_JOB, "5.3.17", Must, Some(45), "SetNewPrevHash names a job sent before as a future job to that channel or its group"),
    rule!(JOB_ID_UNIQUE, "5.3.16", Must, Some(46), "a job_id is not reused while the job it named is still valid on that channel or group"),
    rule!(JOB_KIND, "5.1.1", Must, Some(47), "NewMiningJob goes to standard channels only, NewExtendedMiningJob to extended or group channels only"),
    rule!(STANDARD_JOBS_FLAG, "5.3.1", Must, Some(48), "after REQUIRES_STANDARD_JOBS, no NewExtendedMiningJob and no SetGroupChannel on the connection"),
    rule!(VERSION_ROLLING_FLAG, "5.3.1", Must, Some(49), "after REQUIRES_VERSION_ROLLING, no REQUIRES_FIXED_VERSION in .Success and no job forbidding version rolling"),
    rule!(FIXED_VERSION, "5.3.1", Must, Some(50), "after .Success with REQUIRES_FIXED_VERSION, every NewExtendedMiningJob has version_rolling_allowed = false"),
    rule!(COINBASE_STRIPPED, "5.3.16", Must, Some(51), "prefix || extranonce || suffix of NewExtendedMiningJob is a coinbase without BIP141 marker, flag or witness"),
    rule!(GROUP_EXTRANONCE_LENGTH, "5.2.3", Must, Some(52), "all channels of a group have the same total extranonce length"),
    rule!(SILENT_AFTER_CLOSE, "5.3.9", Must, Some(54), "after the client's CloseChannel the server sends nothing more for that channel (answers to earlier shares aside)"),
    rule!(NO_PREFIX_TO_GROUP, "5.3.10", Must, Some(63), "SetExtranoncePrefix is never addressed to a group channel"),
    rule!(SHARE_ACKS, "5.3.13", Must, Some(58), "SubmitShares.Success acknowledges only shares sent, and never counts more than were outstanding"),
    rule!(SHARE_ERROR_ECHO, "5.3.14", Must, Some(59), "SubmitShares.Error names the sequence_number of a share sent and not already rejected"),
];

/// A rule broken, where, and how.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// The rule's id (an entry of [`RULES`]).
    pub rule: &'static str,
    /// Index of the transcript entry that broke it.
    pub entry: usize,
    /// What was seen.
    pub detail: String,
}

/// What the monitor made of one transcript (or several, merged).
#[derive(Debug, Clone, Default, Serialize)]
pub struct MonitorReport {
    pub findings: Vec<Finding>,
    /// Rules that had something to judge (a rule never exercised cannot pass).
    pub exercised: BTreeSet<&'static str>,
}

impl MonitorReport {
    pub fn findings_for<'a>(&'a self, rule: &'a str) -> impl Iterator<Item = &'a Finding> + 'a {
        self.findings.iter().filter(move |f| f.rule == rule)
    }
}

/// Runs every rule over `transcript`; `server` is the direction of the server's frames
/// (`ServerToClient`, unless a test judges the other side).
///
/// The rules follow the conversation from its start (setup, channels opened, jobs sent). A transcript
/// whose oldest entries were dropped to stay within its retention limits (a peer that flooded) has no
/// start, and judging its rest would blame the peer for state the monitor never saw: it is not judged
/// (an empty report, nothing exercised).
pub fn check_transcript(transcript: &Transcript, server: Direction) -> MonitorReport {
    if transcript.dropped() > 0 {
        return MonitorReport::default();
    }
    let mut monitor = Monitor::new(server);
    for (i, entry) in transcript.entries().iter().enumerate() {
        monitor.observe(i, entry);
    }
    monitor.finish()
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
    /// Ids valid now (since the last SetNewPrevHash).
    live: BTreeSet<u32>,
}

/// The monitor's state over one connection.
#[derive(Debug)]
pub struct Monitor {
    server: Direction,
    report: MonitorReport,
    client_setup: Option<(u16, u16, u32)>,
    /// Whether the client's first message was SetupConnection (else the first-answer rule does not
    /// apply).
    client_started_with_setup: Option<bool>,
    server_spoke: bool,
    success_flags: Option<u32>,
    opens: BTreeMap<u32, OpenRequest>,
    channels: BTreeMap<u32, ChannelInfo>,
    groups: BTreeMap<u32, BTreeSet<u32>>,
    /// Channel ids the client itself named (answers about them are not "unknown").
    named_by_client: BTreeSet<u32>,
    closed: BTreeSet<u32>,
    scopes: BTreeMap<u32, Scope>,
    /// Shares per channel: sequence numbers sent and not yet settled; and those rejected.
    outstanding: BTreeMap<u32, BTreeSet<u32>>,
    rejected: BTreeMap<u32, BTreeSet<u32>>,
    sent_seqs: BTreeMap<u32, BTreeSet<u32>>,
}

impl Monitor {
    pub fn new(server: Direction) -> Self {
        Self {
            server,
            report: MonitorReport::default(),
            client_setup: None,
            client_started_with_setup: None,
            server_spoke: false,
            success_flags: None,
            opens: BTreeMap::new(),
            channels: BTreeMap::new(),
            groups: BTreeMap::new(),
            named_by_client: BTreeSet::new(),
            closed: BTreeSet::new(),
            scopes: BTreeMap::new(),
            outstanding: BTreeMap::new(),
            rejected: BTreeMap::new(),
            sent_seqs: BTreeMap::new(),
        }
    }

    pub fn finish(self) -> MonitorReport {
        self.report
    }

    fn exercise(&mut self, rule: &'static str) {
        self.report.exercised.insert(rule);
    }

    fn find(&mut self, rule: &'static str, entry: usize, detail: String) {
        self.report.exercised.insert(rule);
        self.report.findings.push(Finding {
            rule,
            entry,
            detail,
        });
    }

    /// Takes the next transcript entry.
    pub fn observe(&mut self, index: usize, entry: &Entry) {
        let Event::Frame {
            direction,
            plain: bytes,
            decoded,
            ..
        } = &entry.event
        else {
            return;
        };
        if *direction == self.server {
            self.server_frame(index, bytes, decoded);
        } else if let Ok(decoded) = decoded {
            self.client_message(&decoded.message);
        }
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
                self.closed.insert(m.channel_id);
                if let Some(members) = self.groups.get(&m.channel_id) {
                    self.closed.extend(members.iter().copied());
                }
            }
            Message::SubmitSharesStandard(m) => self.share_sent(m.channel_id, m.sequence_number),
            Message::SubmitSharesExtended(m) => self.share_sent(m.channel_id, m.sequence_number),
            _ => {}
        }
    }

    fn share_sent(&mut self, channel: u32, seq: u32) {
        self.outstanding.entry(channel).or_default().insert(seq);
        self.sent_seqs.entry(channel).or_default().insert(seq);
    }

    fn client_flags(&self) -> u32 {
        self.client_setup.map(|s| s.2).unwrap_or(0)
    }

    fn server_frame(
        &mut self,
        i: usize,
        bytes: &[u8],
        decoded: &Result<Box<sv2_codec::Decoded<'static>>, FrameProblem>,
    ) {
        // Header-level rules work on the bytes, whatever the payload.
        if bytes.len() >= 6 {
            let ext = u16::from_le_bytes([bytes[0], bytes[1]]);
            let channel_msg = ext & 0x8000 != 0;
            let ext_type = ext & 0x7fff;
            let msg_type = bytes[2];
            if let Some(info) = MESSAGE_TYPES
                .iter()
                .find(|i| i.extension_type == ext_type && i.msg_type == msg_type)
            {
                if info.channel_msg == channel_msg {
                    self.exercise(CHANNEL_MSG_BIT);
                } else {
                    self.find(
                        CHANNEL_MSG_BIT,
                        i,
                        format!(
                            "{} sent with channel_msg = {} (the table says {})",
                            info.name, channel_msg, info.channel_msg
                        ),
                    );
                }
            }
            if channel_msg {
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
                        self.find(
                            CHANNEL_ID_KNOWN,
                            i,
                            format!("{name} for channel id {id}, never opened on this connection"),
                        );
                    }
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
            if self.client_started_with_setup == Some(true) {
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
        if !self.closed.contains(&id) {
            return;
        }
        match message {
            Message::SubmitSharesSuccess(_) | Message::SubmitSharesError(_) => {}
            // An error about a channel the client named after closing it is an answer, not traffic.
            Message::UpdateChannelError(_) | Message::SetCustomMiningJobError(_) => {}
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
                    m.extranonce_prefix.len(),
                );
            }
            Message::OpenExtendedMiningChannelSuccess(m) => {
                let request = self.answer(i, m.request_id, Some(true), message.name());
                let max_target = request.as_ref().map_or([0xff; 32], |r| r.max_target);
                self.target_within(i, &m.target.0, &max_target, message.name());
                let total = m.extranonce_prefix.len() + usize::from(m.extranonce_size);
                let min = request.map_or(0, |r| r.min_extranonce_size);
                if m.extranonce_size < min {
                    self.find(
                        EXTRANONCE_SIZE,
                        i,
                        format!(
                            "extranonce_size {} below the requested minimum {min}",
                            m.extranonce_size
                        ),
                    );
                } else if total > 32 {
                    self.find(
                        EXTRANONCE_SIZE,
                        i,
                        format!(
                            "extranonce_prefix ({} bytes) + extranonce_size ({}) = {total} > 32",
                            m.extranonce_prefix.len(),
                            m.extranonce_size
                        ),
                    );
                } else {
                    self.exercise(EXTRANONCE_SIZE);
                }
                self.new_channel(i, m.channel_id, m.group_channel_id, true, max_target, total);
            }
            Message::OpenMiningChannelError(m) => {
                self.answer(i, m.request_id, None, message.name());
            }
            Message::SetTarget(m) => {
                if let Some(c) = self.channels.get(&m.channel_id) {
                    let max = c.max_target;
                    self.target_within(i, &m.maximum_target.0, &max, "SetTarget");
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
                        c.group = m.group_channel_id;
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
                }
            }
            Message::NewMiningJob(m) => {
                self.job_kind(i, m.channel_id, false, m.job_id);
                self.first_job(i, m.channel_id, m.job_id, m.min_ntime.is_none(), true);
                self.job(i, m.channel_id, m.job_id, m.min_ntime.is_none());
                if self.client_flags() & flags::REQUIRES_STANDARD_JOBS != 0 {
                    self.exercise(STANDARD_JOBS_FLAG);
                }
            }
            Message::NewExtendedMiningJob(m) => {
                self.job_kind(i, m.channel_id, true, m.job_id);
                self.first_job(i, m.channel_id, m.job_id, m.min_ntime.is_none(), false);
                self.job(i, m.channel_id, m.job_id, m.min_ntime.is_none());
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
            Message::SetNewPrevHash(m) => self.prev_hash(i, m.channel_id, m.job_id),
            Message::SubmitSharesSuccess(m) => {
                let sent = self.sent_seqs.get(&m.channel_id);
                if !sent.is_some_and(|s| s.contains(&m.last_sequence_number)) {
                    self.find(SHARE_ACKS, i, format!("SubmitShares.Success names last_sequence_number {} never sent on channel {}", m.last_sequence_number, m.channel_id));
                    return;
                }
                let outstanding = self.outstanding.entry(m.channel_id).or_default();
                let settled: Vec<u32> = outstanding
                    .range(..=m.last_sequence_number)
                    .copied()
                    .collect();
                let count = settled.len();
                for s in &settled {
                    outstanding.remove(s);
                }
                if m.new_submits_accepted_count as usize > count {
                    self.find(SHARE_ACKS, i, format!("new_submits_accepted_count {} but only {count} share(s) up to {} were outstanding", m.new_submits_accepted_count, m.last_sequence_number));
                } else {
                    self.exercise(SHARE_ACKS);
                }
            }
            Message::SubmitSharesError(m) => {
                let sent = self
                    .sent_seqs
                    .get(&m.channel_id)
                    .is_some_and(|s| s.contains(&m.sequence_number));
                let rejected = self.rejected.entry(m.channel_id).or_default();
                if !sent {
                    self.find(
                        SHARE_ERROR_ECHO,
                        i,
                        format!(
                            "SubmitShares.Error names sequence_number {} never sent on channel {}",
                            m.sequence_number, m.channel_id
                        ),
                    );
                } else if !rejected.insert(m.sequence_number) {
                    self.find(
                        SHARE_ERROR_ECHO,
                        i,
                        format!(
                            "SubmitShares.Error for sequence_number {} a second time",
                            m.sequence_number
                        ),
                    );
                } else {
                    self.exercise(SHARE_ERROR_ECHO);
                    if let Some(o) = self.outstanding.get_mut(&m.channel_id) {
                        o.remove(&m.sequence_number);
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

    fn new_channel(
        &mut self,
        i: usize,
        id: u32,
        group: u32,
        extended: bool,
        max_target: [u8; 32],
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

    fn job_kind(&mut self, i: usize, id: u32, extended_job: bool, job_id: u32) {
        let channel = self.channels.get(&id).map(|c| c.extended);
        let is_group = self.groups.contains_key(&id) && channel.is_none();
        let ok = match (extended_job, channel, is_group) {
            (false, Some(extended), _) => !extended,
            (false, None, true) => false,
            (true, Some(extended), _) => extended,
            (true, None, true) => true,
            (_, None, false) => return, // unknown id: CHANNEL_ID_KNOWN's business
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

    fn job(&mut self, i: usize, scope: u32, job_id: u32, future: bool) {
        let s = self.scopes.entry(scope).or_default();
        if s.live.contains(&job_id) {
            self.find(
                JOB_ID_UNIQUE,
                i,
                format!("job_id {job_id} reused on {scope} while the job it named is still valid"),
            );
        } else {
            self.exercise(JOB_ID_UNIQUE);
        }
        let s = self.scopes.entry(scope).or_default();
        s.jobs.push((job_id, future));
        s.live.insert(job_id);
        if s.jobs.len() > 256 {
            s.jobs.remove(0);
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
        let known_future = scopes.iter().any(|s| {
            self.scopes
                .get(s)
                .is_some_and(|sc| sc.jobs.iter().any(|(id, future)| *id == job_id && *future))
        });
        if known_future {
            self.exercise(PREV_HASH_NAMES_FUTURE_JOB);
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
        // Only the named job (and future jobs after it) remain valid.
        if let Some(s) = self.scopes.get_mut(&scope) {
            let position = s.jobs.iter().rposition(|(id, _)| *id == job_id);
            let mut live = BTreeSet::new();
            live.insert(job_id);
            if let Some(p) = position {
                live.extend(
                    s.jobs[p + 1..]
                        .iter()
                        .filter(|(_, f)| *f)
                        .map(|(id, _)| *id),
                );
            }
            s.live = live;
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
                    Some("is not a coinbase (one input, null prevout)".into())
                }
                Ok(_) => None,
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
