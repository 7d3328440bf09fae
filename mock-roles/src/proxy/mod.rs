//! The mock SV2 mining proxy: an aggregating proxy between SV2 devices below it and one pool above.
//!
//! Upstream it opens one extended channel, as soon as it is set up (with nominal_hash_rate 0.0 while
//! no device is connected, §5.3.2) and keeps its nominal hash rate the sum of its devices' (UpdateChannel
//! when a downstream channel opens, changes or closes: §5.3.7, §5.3.9). Downstream it serves standard
//! and extended channels, each in its own part of the upstream channel's extranonce space (§5.1): the
//! upstream extranonce_prefix followed by `prefix_bytes` bytes of the channel's index. An extended
//! job from above goes to an extended channel as it is, and to a standard channel as a NewMiningJob whose
//! merkle root is that of the channel's whole coinbase (§5.3.15). Shares go up as SubmitSharesExtended
//! (the channel's index and extranonce as the upstream extranonce) and the pool's answers come back to
//! the device that sent each share, by sequence number. A Reconnect is followed, never passed down
//! (§3.6.5). Aggregating its devices into one channel, it is that channel's endpoint (§3.4): messages
//! of extensions it does not know, channel messages included, stop at it.
//!
//! It sets REQUIRES_VERSION_ROLLING upstream: a standard job has no flag that forbids rolling, so its
//! devices may always roll, and no job that forbids it may come (§5.3.1); a fixed-version pool
//! refuses it, as it refuses the reference translator.
//!
//! A sans-IO core like the pool's: messages in, [`Output`]s out; the tokio driver is [`driver`].
//! [`ProxyFaults`] make it break one of those rules, for the conformance suite's proxy checks.

pub mod driver;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use sv2_codec::messages::common::{SetupConnection, SetupConnectionError, SetupConnectionSuccess};
use sv2_codec::messages::flags::{
    REQUIRES_EXTENDED_CHANNELS, REQUIRES_FIXED_VERSION, REQUIRES_STANDARD_JOBS,
    REQUIRES_VERSION_ROLLING,
};
use sv2_codec::messages::mining::{
    CloseChannel, NewExtendedMiningJob, NewMiningJob, OpenExtendedMiningChannel,
    OpenExtendedMiningChannelSuccess, OpenMiningChannelError, OpenStandardMiningChannel,
    OpenStandardMiningChannelSuccess, SetExtranoncePrefix, SetNewPrevHash, SetTarget,
    SubmitSharesError, SubmitSharesExtended, SubmitSharesStandard, SubmitSharesSuccess,
    UpdateChannel,
};
use sv2_codec::messages::protocol::MINING as PROTOCOL_MINING;
use sv2_codec::types::{Seq0_255, B0_32, B0_64K, U256};
use sv2_codec::Message;

use crate::pool::text;
use crate::pool::vardiff::harder;

/// A downstream connection, numbered by the core.
pub type DownstreamId = u64;

/// How the proxy breaks the rules, one at a time (all off: it keeps them).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyFaults {
    /// Every downstream channel gets the same extranonce prefix (§5.1).
    pub shared_extranonce: bool,
    /// A standard channel's merkle root is computed without its own extranonce bytes (§5.3.15).
    pub wrong_merkle_root: bool,
    /// A Reconnect from the pool is passed to every device (§3.6.5).
    pub propagate_reconnect: bool,
    /// No UpdateChannel when devices come and go (§5.3.7, §5.3.9).
    pub no_update_channel: bool,
    /// The first open request announces 1 Mh/s with no device connected (§5.3.2).
    pub idle_hashrate: bool,
}

/// The proxy's configuration.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyConfig {
    /// The user_identity of the upstream channel.
    pub user_identity: String,
    /// Bytes of the upstream extranonce that tell the downstream channels apart (1 to 4).
    pub prefix_bytes: usize,
    /// Bytes an extended downstream channel keeps for itself (the upstream channel asks for
    /// `prefix_bytes` more).
    pub downstream_extranonce: usize,
    /// At most this many downstream channels at once (and never more than `prefix_bytes` can
    /// number).
    pub max_channels: usize,
    /// Shares on their way up whose answer is still awaited (the oldest are forgotten).
    pub max_pending_shares: usize,
    /// Upstream jobs kept (shares name them).
    pub max_jobs: usize,
    pub faults: ProxyFaults,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            user_identity: "sv2-mock-proxy".into(),
            prefix_bytes: 2,
            downstream_extranonce: 6,
            max_channels: 4096,
            max_pending_shares: 65_536,
            max_jobs: 64,
            faults: ProxyFaults::default(),
        }
    }
}

impl ProxyConfig {
    /// The configuration's own contradictions.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=4).contains(&self.prefix_bytes) {
            return Err(format!(
                "prefix_bytes is {}: 1 to 4 bytes tell the channels apart",
                self.prefix_bytes
            ));
        }
        if self.prefix_bytes + self.downstream_extranonce > 32 {
            return Err(
                "prefix_bytes + downstream_extranonce exceed the 32 bytes of an extranonce".into(),
            );
        }
        Ok(())
    }

    /// How many channels the index bytes can tell apart.
    fn index_space(&self) -> u64 {
        1u64 << (8 * self.prefix_bytes.min(4))
    }
}

/// What the driver must do, and what happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send to the pool.
    Upstream(Message<'static>),
    /// Send to a device.
    Downstream {
        session: DownstreamId,
        message: Message<'static>,
    },
    /// Close a device's connection (after what came before).
    Close {
        session: DownstreamId,
        reason: String,
    },
    /// The upstream channel is open: devices may connect.
    Ready,
    /// The pool asked the proxy to move to another endpoint (an empty host: the same host).
    Reconnect { host: String, port: u16 },
    /// The pool refused the proxy (setup or channel): it cannot go on.
    Refused(String),
    /// A line for the log.
    Log(String),
}

/// One upstream job, kept for the channels that open later and for the shares that name it. The
/// devices know it by the proxy's own job id (unique across upstream connections); `up_id` is the
/// pool's.
#[derive(Debug, Clone, PartialEq)]
struct Job {
    up_id: u32,
    /// The upstream extranonce_prefix when it came (a SetExtranoncePrefix applies to later jobs).
    upstream_prefix: Vec<u8>,
    min_ntime: Option<u32>,
    version: u32,
    version_rolling_allowed: bool,
    path: Vec<[u8; 32]>,
    prefix: Vec<u8>,
    suffix: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct PrevHash {
    prev_hash: [u8; 32],
    min_ntime: u32,
    nbits: u32,
}

/// The upstream extended channel.
#[derive(Debug, Clone, PartialEq)]
struct Upstream {
    channel_id: u32,
    /// The group the pool put it in (0: none): jobs and prev hashes may come addressed to it.
    group_channel_id: u32,
    target: [u8; 32],
    extranonce_prefix: Vec<u8>,
    extranonce_size: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Standard,
    /// The device's own extranonce bytes.
    Extended(usize),
}

#[derive(Debug, Clone, PartialEq)]
struct Channel {
    session: DownstreamId,
    kind: Kind,
    /// Its part of the upstream extranonce space.
    index: u32,
    nominal_hash_rate: f32,
    max_target: [u8; 32],
    target: [u8; 32],
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum SessionState {
    AwaitingSetup,
    Ready,
}

/// A share on its way up.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Pending {
    session: DownstreamId,
    channel_id: u32,
    sequence_number: u32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum UpState {
    /// Not connected (or not yet set up).
    Down,
    SetupSent,
    ChannelRequested,
    Open,
}

/// The proxy's state.
#[derive(Debug)]
pub struct Proxy {
    config: ProxyConfig,
    state: UpState,
    upstream: Option<Upstream>,
    /// SetupConnection.Success flags from the pool.
    upstream_flags: u32,
    request_id: u32,
    /// Jobs by the proxy's job id, the oldest first in `job_order`.
    jobs: BTreeMap<u32, Job>,
    job_order: VecDeque<u32>,
    /// The pool's job ids on this upstream connection, to the proxy's.
    up_jobs: BTreeMap<u32, u32>,
    next_job_id: u32,
    /// The last SetNewPrevHash (its job id the proxy's).
    prev_hash: Option<PrevHash>,
    /// The job in force since it: the one it named, or a later one with min_ntime set.
    active: Option<u32>,
    /// Future jobs since the last prev hash, in order.
    future_jobs: VecDeque<u32>,
    sessions: BTreeMap<DownstreamId, SessionState>,
    next_session: DownstreamId,
    channels: BTreeMap<u32, Channel>,
    next_channel_id: u32,
    used_indices: BTreeSet<u32>,
    next_index: u32,
    /// Open requests that came before the upstream channel.
    waiting: Vec<(DownstreamId, Message<'static>)>,
    /// Shares sent up, by upstream sequence number.
    pending: BTreeMap<u32, Pending>,
    next_sequence: u32,
    /// The hash rate last announced upstream.
    announced: f32,
}

impl Proxy {
    pub fn new(config: ProxyConfig) -> Result<Self, String> {
        config.validate()?;
        Ok(Proxy {
            config,
            state: UpState::Down,
            upstream: None,
            upstream_flags: 0,
            request_id: 0,
            jobs: BTreeMap::new(),
            job_order: VecDeque::new(),
            up_jobs: BTreeMap::new(),
            next_job_id: 1,
            prev_hash: None,
            active: None,
            future_jobs: VecDeque::new(),
            sessions: BTreeMap::new(),
            next_session: 1,
            channels: BTreeMap::new(),
            next_channel_id: 1,
            used_indices: BTreeSet::new(),
            next_index: 0,
            waiting: Vec::new(),
            pending: BTreeMap::new(),
            next_sequence: 0,
            announced: 0.0,
        })
    }

    pub fn config(&self) -> &ProxyConfig {
        &self.config
    }

    /// Whether the upstream channel is open.
    pub fn is_ready(&self) -> bool {
        self.state == UpState::Open
    }

    /// How many downstream channels are open.
    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// The full extranonce prefix of every open downstream channel, by channel id.
    pub fn prefixes(&self) -> BTreeMap<u32, Vec<u8>> {
        self.channels
            .iter()
            .map(|(id, c)| (*id, self.prefix_of(c)))
            .collect()
    }

    /// A (new) upstream connection: the SetupConnection that begins it. Whatever the pool said
    /// before is forgotten; the devices keep their channels and get the new channel's work.
    pub fn upstream_connected(&mut self, endpoint_host: &str, endpoint_port: u16) -> Vec<Output> {
        self.state = UpState::SetupSent;
        self.upstream_flags = 0;
        self.pending.clear();
        // The proxy's job ids go on from where they were: a new pool's ids cannot collide with
        // the devices' jobs from the old one.
        self.jobs.clear();
        self.job_order.clear();
        self.up_jobs.clear();
        self.prev_hash = None;
        self.active = None;
        self.future_jobs.clear();
        let setup = SetupConnection {
            protocol: PROTOCOL_MINING,
            min_version: 2,
            max_version: 2,
            // Its standard channels' devices may roll the version (a standard job has no flag to
            // forbid it): no job that forbids it may come (§5.3.1). A fixed-version pool refuses.
            flags: REQUIRES_VERSION_ROLLING,
            endpoint_host: text(endpoint_host),
            endpoint_port,
            vendor: text("sv2-toolkit"),
            hardware_version: text("mock proxy"),
            firmware: text(env!("CARGO_PKG_VERSION")),
            device_id: text(&self.config.user_identity),
        };
        vec![Output::Upstream(setup.into())]
    }

    /// The upstream connection is gone: shares in flight will not be answered.
    pub fn upstream_lost(&mut self) {
        self.state = UpState::Down;
        self.pending.clear();
    }

    /// A device connected: its id.
    pub fn open_session(&mut self) -> DownstreamId {
        let id = self.next_session;
        self.next_session += 1;
        self.sessions.insert(id, SessionState::AwaitingSetup);
        id
    }

    /// A device's connection ended: its channels close, and the upstream channel's hash rate follows.
    pub fn close_session(&mut self, session: DownstreamId) -> Vec<Output> {
        self.sessions.remove(&session);
        self.waiting.retain(|(s, _)| *s != session);
        self.pending.retain(|_, p| p.session != session);
        let gone: Vec<u32> = self
            .channels
            .iter()
            .filter(|(_, c)| c.session == session)
            .map(|(id, _)| *id)
            .collect();
        for id in &gone {
            self.remove_channel(*id);
        }
        if gone.is_empty() {
            Vec::new()
        } else {
            self.update_upstream()
        }
    }

    fn remove_channel(&mut self, channel_id: u32) {
        if let Some(c) = self.channels.remove(&channel_id) {
            self.used_indices.remove(&c.index);
        }
    }

    /// The nominal hash rate of every downstream channel together.
    fn total_rate(&self) -> f32 {
        // Each is finite; their sum may not be.
        self.channels
            .values()
            .map(|c| c.nominal_hash_rate)
            .sum::<f32>()
            .min(f32::MAX)
    }

    /// UpdateChannel upstream with the devices' hash rate, when it changed.
    fn update_upstream(&mut self) -> Vec<Output> {
        let rate = self.total_rate();
        let Some(up) = &self.upstream else {
            return Vec::new();
        };
        if self.state != UpState::Open
            || self.config.faults.no_update_channel
            || rate == self.announced
        {
            return Vec::new();
        }
        self.announced = rate;
        vec![Output::Upstream(
            UpdateChannel {
                channel_id: up.channel_id,
                nominal_hash_rate: rate,
                maximum_target: U256([0xff; 32]),
            }
            .into(),
        )]
    }

    /// The upstream channel's extranonce_prefix now.
    fn upstream_prefix(&self) -> &[u8] {
        self.upstream
            .as_ref()
            .map_or(&[][..], |u| &u.extranonce_prefix[..])
    }

    /// The extranonce prefix of a downstream channel under the upstream prefix `upstream`: that,
    /// then the channel's index.
    fn prefix_under(&self, upstream: &[u8], channel: &Channel) -> Vec<u8> {
        let mut prefix = upstream.to_vec();
        let index = channel.index.to_be_bytes();
        prefix.extend_from_slice(&index[4 - self.config.prefix_bytes..]);
        prefix
    }

    /// The extranonce prefix of a downstream channel now.
    fn prefix_of(&self, channel: &Channel) -> Vec<u8> {
        self.prefix_under(self.upstream_prefix(), channel)
    }

    /// A standard channel's whole extranonce under the upstream prefix `upstream` (its prefix,
    /// zeros to the upstream size).
    fn standard_extranonce_under(&self, upstream: &[u8], channel: &Channel) -> Vec<u8> {
        let mut extranonce = self.prefix_under(upstream, channel);
        let size = self.upstream.as_ref().map_or(0, |u| u.extranonce_size);
        extranonce.resize(
            extranonce.len() + size.saturating_sub(self.config.prefix_bytes),
            0,
        );
        extranonce
    }

    /// A standard channel's whole extranonce now.
    fn standard_extranonce(&self, channel: &Channel) -> Vec<u8> {
        self.standard_extranonce_under(self.upstream_prefix(), channel)
    }

    /// A message from the pool.
    pub fn handle_upstream(&mut self, message: &Message<'_>) -> Vec<Output> {
        match message {
            Message::SetupConnectionSuccess(m) if self.state == UpState::SetupSent => {
                self.upstream_flags = m.flags;
                self.state = UpState::ChannelRequested;
                self.request_id = self.request_id.wrapping_add(1);
                let rate = if self.config.faults.idle_hashrate && self.channels.is_empty() {
                    1.0e6
                } else {
                    self.total_rate()
                };
                self.announced = rate;
                let min_extranonce_size =
                    (self.config.prefix_bytes + self.config.downstream_extranonce) as u16;
                vec![Output::Upstream(
                    OpenExtendedMiningChannel {
                        request_id: self.request_id,
                        user_identity: text(&self.config.user_identity),
                        nominal_hash_rate: rate,
                        max_target: U256([0xff; 32]),
                        min_extranonce_size,
                    }
                    .into(),
                )]
            }
            Message::SetupConnectionError(m) if self.state == UpState::SetupSent => {
                vec![Output::Refused(format!(
                    "the pool refused the setup: {} (flags {:#x})",
                    String::from_utf8_lossy(m.error_code.as_bytes()),
                    m.flags
                ))]
            }
            Message::OpenExtendedMiningChannelSuccess(m)
                if self.state == UpState::ChannelRequested && m.request_id == self.request_id =>
            {
                self.channel_opened(m)
            }
            Message::OpenMiningChannelError(m)
                if self.state == UpState::ChannelRequested && m.request_id == self.request_id =>
            {
                vec![Output::Refused(format!(
                    "the pool refused the channel: {}",
                    String::from_utf8_lossy(m.error_code.as_bytes())
                ))]
            }
            Message::NewExtendedMiningJob(m) if self.is_for_us(m.channel_id) => self.new_job(m),
            Message::SetNewPrevHash(m) if self.is_for_us(m.channel_id) => self.new_prev_hash(m),
            Message::SetTarget(m) if self.is_for_us(m.channel_id) => {
                self.set_target(m.maximum_target.0)
            }
            Message::SetGroupChannel(m) => {
                let ours = self.upstream.as_ref().map(|u| u.channel_id);
                match (ours, self.upstream.as_mut()) {
                    (Some(id), Some(up)) if m.channel_ids.iter().any(|c| *c == id) => {
                        up.group_channel_id = m.group_channel_id;
                        Vec::new()
                    }
                    _ => Vec::new(),
                }
            }
            Message::SetExtranoncePrefix(m) if self.is_ours(m.channel_id) => {
                self.set_prefix(m.extranonce_prefix.as_bytes())
            }
            Message::SubmitSharesSuccess(m) if self.is_ours(m.channel_id) => {
                self.shares_accepted(m)
            }
            Message::SubmitSharesError(m) if self.is_ours(m.channel_id) => self.share_refused(m),
            Message::CloseChannel(m) if self.is_ours(m.channel_id) => {
                let reason = String::from_utf8_lossy(m.reason_code.as_bytes()).into_owned();
                self.state = UpState::Down;
                let mut out: Vec<Output> = self
                    .channels
                    .iter()
                    .map(|(id, c)| Output::Downstream {
                        session: c.session,
                        message: CloseChannel {
                            channel_id: *id,
                            reason_code: text(&reason),
                        }
                        .into(),
                    })
                    .collect();
                self.channels.clear();
                self.used_indices.clear();
                out.push(Output::Refused(format!(
                    "the pool closed the upstream channel: {reason}"
                )));
                out
            }
            Message::Reconnect(m) => {
                let host = String::from_utf8_lossy(m.new_host.as_bytes()).into_owned();
                let mut out = Vec::new();
                if self.config.faults.propagate_reconnect {
                    for session in self.sessions.keys() {
                        out.push(Output::Downstream {
                            session: *session,
                            message: message.clone().into_static(),
                        });
                    }
                }
                out.push(Output::Reconnect {
                    host,
                    port: m.new_port,
                });
                out
            }
            other => vec![Output::Log(format!("upstream: {} ignored", other.name()))],
        }
    }

    /// Whether `channel_id` names the upstream channel.
    fn is_ours(&self, channel_id: u32) -> bool {
        self.upstream
            .as_ref()
            .is_some_and(|u| u.channel_id == channel_id)
    }

    /// Whether `channel_id` names the upstream channel or its group (work for a group is work for
    /// each of its channels).
    fn is_for_us(&self, channel_id: u32) -> bool {
        self.upstream.as_ref().is_some_and(|u| {
            u.channel_id == channel_id
                || (u.group_channel_id != 0 && u.group_channel_id == channel_id)
        })
    }

    fn channel_opened(&mut self, m: &OpenExtendedMiningChannelSuccess<'_>) -> Vec<Output> {
        let size = usize::from(m.extranonce_size);
        if size < self.config.prefix_bytes + 1 {
            return vec![Output::Refused(format!(
                "the pool's channel has {size} bytes of extranonce: the proxy needs at least {}",
                self.config.prefix_bytes + 1
            ))];
        }
        if m.extranonce_prefix.as_bytes().len() + self.config.prefix_bytes > 32 {
            return vec![Output::Refused(format!(
                "the pool's extranonce_prefix is {} bytes: no room for the proxy's {} bytes in 32",
                m.extranonce_prefix.as_bytes().len(),
                self.config.prefix_bytes
            ))];
        }
        let old_prefix = self.upstream.as_ref().map(|u| u.extranonce_prefix.clone());
        self.upstream = Some(Upstream {
            channel_id: m.channel_id,
            group_channel_id: m.group_channel_id,
            target: m.target.0,
            extranonce_prefix: m.extranonce_prefix.as_bytes().to_vec(),
            extranonce_size: size,
        });
        self.state = UpState::Open;
        let mut out = vec![Output::Ready];
        // After a reconnect: extended channels whose part of the extranonce changed size cannot
        // go on (their devices roll a size that no longer fits).
        let own = size - self.config.prefix_bytes;
        let resized: Vec<u32> = self
            .channels
            .iter()
            .filter(|(_, c)| matches!(c.kind, Kind::Extended(n) if n != own))
            .map(|(id, _)| *id)
            .collect();
        for id in resized {
            if let Some(c) = self.channels.get(&id) {
                out.push(Output::Downstream {
                    session: c.session,
                    message: CloseChannel {
                        channel_id: id,
                        reason_code: text("extranonce-size-changed"),
                    }
                    .into(),
                });
            }
            self.remove_channel(id);
        }
        // After a reconnect: the devices' channels stay, in the new channel's extranonce space.
        if old_prefix.is_some_and(|p| p != m.extranonce_prefix.as_bytes()) {
            out.extend(self.announce_prefixes());
        }
        out.extend(self.set_target(m.target.0));
        out.extend(self.update_upstream());
        for (session, request) in std::mem::take(&mut self.waiting) {
            out.extend(self.handle_downstream(session, &request));
        }
        out
    }

    /// SetExtranoncePrefix to every downstream channel whose prefix follows the upstream one.
    fn announce_prefixes(&self) -> Vec<Output> {
        self.channels
            .iter()
            .map(|(id, c)| {
                let prefix = match c.kind {
                    Kind::Standard => self.standard_extranonce(c),
                    Kind::Extended(_) => self.prefix_of(c),
                };
                Output::Downstream {
                    session: c.session,
                    message: SetExtranoncePrefix {
                        channel_id: *id,
                        extranonce_prefix: B0_32::new(prefix).unwrap_or_default(),
                    }
                    .into(),
                }
            })
            .collect()
    }

    fn set_prefix(&mut self, prefix: &[u8]) -> Vec<Output> {
        let Some(up) = self.upstream.as_mut() else {
            return Vec::new();
        };
        up.extranonce_prefix = prefix.to_vec();
        self.announce_prefixes()
    }

    fn set_target(&mut self, target: [u8; 32]) -> Vec<Output> {
        if let Some(up) = self.upstream.as_mut() {
            up.target = target;
        }
        let mut out = Vec::new();
        for (id, c) in self.channels.iter_mut() {
            let new = harder(target, c.max_target);
            if new != c.target {
                c.target = new;
                out.push(Output::Downstream {
                    session: c.session,
                    message: SetTarget {
                        channel_id: *id,
                        maximum_target: U256(new),
                    }
                    .into(),
                });
            }
        }
        out
    }

    fn new_job(&mut self, m: &NewExtendedMiningJob<'_>) -> Vec<Output> {
        let id = self.next_job_id;
        self.next_job_id = self.next_job_id.wrapping_add(1).max(1);
        let job = Job {
            up_id: m.job_id,
            upstream_prefix: self.upstream_prefix().to_vec(),
            min_ntime: m.min_ntime,
            version: m.version,
            version_rolling_allowed: m.version_rolling_allowed,
            path: m.merkle_path.iter().map(|h| h.0).collect(),
            prefix: m.coinbase_tx_prefix.as_bytes().to_vec(),
            suffix: m.coinbase_tx_suffix.as_bytes().to_vec(),
        };
        self.jobs.insert(id, job);
        self.job_order.push_back(id);
        self.up_jobs.insert(m.job_id, id);
        while self.job_order.len() > self.config.max_jobs.max(2) {
            if let Some(old) = self.job_order.pop_front() {
                if let Some(gone) = self.jobs.remove(&old) {
                    if self.up_jobs.get(&gone.up_id) == Some(&old) {
                        self.up_jobs.remove(&gone.up_id);
                    }
                }
                self.future_jobs.retain(|f| *f != old);
                if self.active == Some(old) {
                    self.active = None;
                }
            }
        }
        match m.min_ntime {
            None => self.future_jobs.push_back(id),
            // In force at once, on the last prev hash.
            Some(_) if self.prev_hash.is_some() => self.active = Some(id),
            Some(_) => {}
        }
        let ids: Vec<u32> = self.channels.keys().copied().collect();
        ids.into_iter()
            .filter_map(|channel| self.job_for(channel, id, m.min_ntime))
            .collect()
    }

    /// The job `job_id` for downstream channel `channel_id`, with `min_ntime`.
    fn job_for(&self, channel_id: u32, job_id: u32, min_ntime: Option<u32>) -> Option<Output> {
        let c = self.channels.get(&channel_id)?;
        let job = self.jobs.get(&job_id)?;
        let message: Message<'static> = match c.kind {
            Kind::Standard => {
                let extranonce = if self.config.faults.wrong_merkle_root {
                    job.upstream_prefix.clone()
                } else {
                    self.standard_extranonce_under(&job.upstream_prefix, c)
                };
                let merkle_root = sv2_chain::merkle::coinbase_merkle_root(
                    &job.prefix,
                    &extranonce,
                    &[],
                    &job.suffix,
                    &job.path,
                );
                NewMiningJob {
                    channel_id,
                    job_id,
                    min_ntime,
                    version: job.version,
                    merkle_root: U256(merkle_root),
                }
                .into()
            }
            // A job from before a SetExtranoncePrefix: the device, told the new prefix, would
            // build it wrong.
            Kind::Extended(_) if job.upstream_prefix != self.upstream_prefix() => return None,
            Kind::Extended(_) => NewExtendedMiningJob {
                channel_id,
                job_id,
                min_ntime,
                version: job.version,
                version_rolling_allowed: job.version_rolling_allowed,
                merkle_path: Seq0_255::new(job.path.iter().map(|h| U256(*h)).collect())
                    .unwrap_or_default(),
                coinbase_tx_prefix: B0_64K::new(job.prefix.clone()).unwrap_or_default(),
                coinbase_tx_suffix: B0_64K::new(job.suffix.clone()).unwrap_or_default(),
            }
            .into(),
        };
        Some(Output::Downstream {
            session: c.session,
            message,
        })
    }

    /// SetNewPrevHash for downstream channel `channel_id`, naming the proxy's job `job_id`.
    fn prev_hash_for(&self, channel_id: u32, job_id: u32) -> Option<Output> {
        let c = self.channels.get(&channel_id)?;
        let p = self.prev_hash?;
        // A job in force since the prev hash may have a later min_ntime.
        let min_ntime = self
            .jobs
            .get(&job_id)
            .and_then(|j| j.min_ntime)
            .map_or(p.min_ntime, |t| t.max(p.min_ntime));
        Some(Output::Downstream {
            session: c.session,
            message: SetNewPrevHash {
                channel_id,
                job_id,
                prev_hash: U256(p.prev_hash),
                min_ntime,
                nbits: p.nbits,
            }
            .into(),
        })
    }

    fn new_prev_hash(&mut self, m: &SetNewPrevHash) -> Vec<Output> {
        let Some(id) = self.up_jobs.get(&m.job_id).copied() else {
            return vec![Output::Log(format!(
                "upstream: SetNewPrevHash names job {}, which the pool never sent: ignored",
                m.job_id
            ))];
        };
        self.prev_hash = Some(PrevHash {
            prev_hash: m.prev_hash.0,
            min_ntime: m.min_ntime,
            nbits: m.nbits,
        });
        // Every other job is stale now, the future ones included (§5.3.17).
        self.active = Some(id);
        self.future_jobs.clear();
        let ids: Vec<u32> = self.channels.keys().copied().collect();
        ids.into_iter()
            .filter_map(|channel| self.prev_hash_for(channel, id))
            .collect()
    }

    /// The work a channel that just opened needs: the job in force (as a future job, then the prev
    /// hash that activates it), and the future jobs since.
    fn work_for(&self, channel_id: u32) -> Vec<Output> {
        let mut out = Vec::new();
        if let Some(active) = self.active {
            if let Some(job) = self.job_for(channel_id, active, None) {
                out.push(job);
                out.extend(self.prev_hash_for(channel_id, active));
            }
        }
        for id in &self.future_jobs {
            out.extend(self.job_for(channel_id, *id, None));
        }
        out
    }

    fn shares_accepted(&mut self, m: &SubmitSharesSuccess) -> Vec<Output> {
        let last = m.last_sequence_number;
        // Up to `last`, sequence numbers wrapping: those at most 2^31 behind it.
        let answered: Vec<u32> = self
            .pending
            .keys()
            .filter(|k| last.wrapping_sub(**k) < 1 << 31)
            .copied()
            .collect();
        // By downstream channel: how many, and the last sequence number.
        let mut by_channel: BTreeMap<u32, (DownstreamId, u32, u32)> = BTreeMap::new();
        for up in answered {
            if let Some(p) = self.pending.remove(&up) {
                let entry =
                    by_channel
                        .entry(p.channel_id)
                        .or_insert((p.session, p.sequence_number, 0));
                entry.1 = p.sequence_number;
                entry.2 += 1;
            }
        }
        by_channel
            .into_iter()
            .filter(|(id, _)| self.channels.contains_key(id))
            .map(|(channel_id, (session, last, count))| Output::Downstream {
                session,
                message: SubmitSharesSuccess {
                    channel_id,
                    last_sequence_number: last,
                    new_submits_accepted_count: count,
                    new_shares_sum: u64::from(count),
                }
                .into(),
            })
            .collect()
    }

    fn share_refused(&mut self, m: &SubmitSharesError<'_>) -> Vec<Output> {
        let Some(p) = self.pending.remove(&m.sequence_number) else {
            return vec![Output::Log(format!(
                "upstream: SubmitShares.Error for share {}, which no device sent",
                m.sequence_number
            ))];
        };
        vec![Output::Downstream {
            session: p.session,
            message: SubmitSharesError {
                channel_id: p.channel_id,
                sequence_number: p.sequence_number,
                error_code: sv2_codec::types::IntoStatic::into_static(m.error_code.clone()),
            }
            .into(),
        }]
    }

    /// A message from device `session`.
    pub fn handle_downstream(
        &mut self,
        session: DownstreamId,
        message: &Message<'_>,
    ) -> Vec<Output> {
        let Some(state) = self.sessions.get(&session).copied() else {
            return Vec::new();
        };
        match (state, message) {
            (SessionState::AwaitingSetup, Message::SetupConnection(m)) => self.setup(session, m),
            (SessionState::AwaitingSetup, other) => vec![Output::Close {
                session,
                reason: format!("{} before SetupConnection", other.name()),
            }],
            (SessionState::Ready, Message::OpenStandardMiningChannel(m)) => {
                if self.state != UpState::Open {
                    self.wait(session, message);
                    return Vec::new();
                }
                self.open_standard(session, m)
            }
            (SessionState::Ready, Message::OpenExtendedMiningChannel(m)) => {
                if self.state != UpState::Open {
                    self.wait(session, message);
                    return Vec::new();
                }
                self.open_extended(session, m)
            }
            (SessionState::Ready, Message::UpdateChannel(m)) => self.update_channel(session, m),
            (SessionState::Ready, Message::CloseChannel(m)) => {
                if self.owned(session, m.channel_id) {
                    self.remove_channel(m.channel_id);
                    self.update_upstream()
                } else {
                    Vec::new()
                }
            }
            (SessionState::Ready, Message::SubmitSharesStandard(m)) => {
                self.share_standard(session, m)
            }
            (SessionState::Ready, Message::SubmitSharesExtended(m)) => {
                self.share_extended(session, m)
            }
            (_, other) => vec![Output::Log(format!(
                "session {session}: {} ignored",
                other.name()
            ))],
        }
    }

    fn wait(&mut self, session: DownstreamId, message: &Message<'_>) {
        if self.waiting.len() < 1024 {
            self.waiting.push((session, message.clone().into_static()));
        }
    }

    fn owned(&self, session: DownstreamId, channel_id: u32) -> bool {
        self.channels
            .get(&channel_id)
            .is_some_and(|c| c.session == session)
    }

    fn setup(&mut self, session: DownstreamId, m: &SetupConnection<'_>) -> Vec<Output> {
        let refuse = |flags: u32, code: &str| {
            vec![
                Output::Downstream {
                    session,
                    message: SetupConnectionError {
                        flags,
                        error_code: text(code),
                    }
                    .into(),
                },
                Output::Close {
                    session,
                    reason: format!("SetupConnection refused: {code}"),
                },
            ]
        };
        if m.protocol != PROTOCOL_MINING {
            return refuse(0, "unsupported-protocol");
        }
        if !(m.min_version..=m.max_version).contains(&2) {
            return refuse(0, "protocol-version-mismatch");
        }
        let fixed = self.upstream_flags & REQUIRES_FIXED_VERSION != 0;
        let supported = REQUIRES_STANDARD_JOBS | REQUIRES_VERSION_ROLLING;
        let mut unsupported = m.flags & !supported;
        if fixed {
            unsupported |= m.flags & REQUIRES_VERSION_ROLLING;
        }
        if unsupported != 0 {
            return refuse(unsupported, "unsupported-feature-flags");
        }
        self.sessions.insert(session, SessionState::Ready);
        let mut flags = 0;
        if fixed {
            flags |= REQUIRES_FIXED_VERSION;
        }
        let _ = REQUIRES_EXTENDED_CHANNELS; // The proxy serves standard channels itself.
        vec![Output::Downstream {
            session,
            message: SetupConnectionSuccess {
                used_version: 2,
                flags,
            }
            .into(),
        }]
    }

    /// A free index in the extranonce space, or none left.
    fn allocate_index(&mut self) -> Option<u32> {
        if self.config.faults.shared_extranonce {
            return Some(0);
        }
        let space = self.config.index_space();
        if self.channels.len() >= self.config.max_channels
            || self.used_indices.len() as u64 >= space
        {
            return None;
        }
        loop {
            let index = self.next_index;
            self.next_index = ((u64::from(self.next_index) + 1) % space) as u32;
            if self.used_indices.insert(index) {
                return Some(index);
            }
        }
    }

    fn open_error(session: DownstreamId, request_id: u32, code: &str) -> Vec<Output> {
        vec![Output::Downstream {
            session,
            message: OpenMiningChannelError {
                request_id,
                error_code: text(code),
            }
            .into(),
        }]
    }

    /// Allocates a downstream channel; its id, or why not (an error code).
    fn add_channel(
        &mut self,
        session: DownstreamId,
        kind: Kind,
        nominal_hash_rate: f32,
        max_target: [u8; 32],
    ) -> Result<u32, &'static str> {
        let up_target = self.upstream.as_ref().map_or([0xff; 32], |u| u.target);
        let index = self.allocate_index().ok_or("too-many-channels")?;
        let channel_id = self.next_channel_id;
        self.next_channel_id = self.next_channel_id.wrapping_add(1).max(1);
        let rate = if nominal_hash_rate.is_finite() && nominal_hash_rate > 0.0 {
            nominal_hash_rate
        } else {
            0.0
        };
        self.channels.insert(
            channel_id,
            Channel {
                session,
                kind,
                index,
                nominal_hash_rate: rate,
                max_target,
                target: harder(up_target, max_target),
            },
        );
        Ok(channel_id)
    }

    fn open_standard(
        &mut self,
        session: DownstreamId,
        m: &OpenStandardMiningChannel<'_>,
    ) -> Vec<Output> {
        let size = self
            .upstream
            .as_ref()
            .map_or(0, |u| u.extranonce_prefix.len() + u.extranonce_size);
        if size > 32 {
            return Self::open_error(session, m.request_id, "standard-channels-unsupported");
        }
        let channel_id =
            match self.add_channel(session, Kind::Standard, m.nominal_hash_rate, m.max_target.0) {
                Ok(id) => id,
                Err(code) => return Self::open_error(session, m.request_id, code),
            };
        let c = &self.channels[&channel_id];
        let success = OpenStandardMiningChannelSuccess {
            request_id: m.request_id,
            channel_id,
            target: U256(c.target),
            extranonce_prefix: B0_32::new(self.standard_extranonce(c)).unwrap_or_default(),
            group_channel_id: 0,
        };
        self.opened(session, channel_id, success.into())
    }

    /// A channel's .Success, then its work, then the hash rate upstream.
    fn opened(
        &mut self,
        session: DownstreamId,
        channel_id: u32,
        success: Message<'static>,
    ) -> Vec<Output> {
        let mut out = vec![Output::Downstream {
            session,
            message: success,
        }];
        out.extend(self.work_for(channel_id));
        out.extend(self.update_upstream());
        out
    }

    fn open_extended(
        &mut self,
        session: DownstreamId,
        m: &OpenExtendedMiningChannel<'_>,
    ) -> Vec<Output> {
        let up_size = self.upstream.as_ref().map_or(0, |u| u.extranonce_size);
        let own = up_size.saturating_sub(self.config.prefix_bytes);
        if usize::from(m.min_extranonce_size) > own {
            return Self::open_error(session, m.request_id, "min-extranonce-size-too-large");
        }
        let channel_id = match self.add_channel(
            session,
            Kind::Extended(own),
            m.nominal_hash_rate,
            m.max_target.0,
        ) {
            Ok(id) => id,
            Err(code) => return Self::open_error(session, m.request_id, code),
        };
        let c = &self.channels[&channel_id];
        let success = OpenExtendedMiningChannelSuccess {
            request_id: m.request_id,
            channel_id,
            target: U256(c.target),
            extranonce_size: own as u16,
            extranonce_prefix: B0_32::new(self.prefix_of(c)).unwrap_or_default(),
            group_channel_id: 0,
        };
        self.opened(session, channel_id, success.into())
    }

    fn update_channel(&mut self, session: DownstreamId, m: &UpdateChannel) -> Vec<Output> {
        if !self.owned(session, m.channel_id) {
            return Vec::new();
        }
        let up_target = self.upstream.as_ref().map_or([0xff; 32], |u| u.target);
        let mut out = Vec::new();
        if let Some(c) = self.channels.get_mut(&m.channel_id) {
            c.nominal_hash_rate = if m.nominal_hash_rate.is_finite() && m.nominal_hash_rate > 0.0 {
                m.nominal_hash_rate
            } else {
                0.0
            };
            c.max_target = m.maximum_target.0;
            let new = harder(up_target, c.max_target);
            if new != c.target {
                c.target = new;
                out.push(Output::Downstream {
                    session,
                    message: SetTarget {
                        channel_id: m.channel_id,
                        maximum_target: U256(new),
                    }
                    .into(),
                });
            }
        }
        out.extend(self.update_upstream());
        out
    }

    fn share_error(
        session: DownstreamId,
        channel_id: u32,
        sequence_number: u32,
        code: &str,
    ) -> Vec<Output> {
        vec![Output::Downstream {
            session,
            message: SubmitSharesError {
                channel_id,
                sequence_number,
                error_code: text(code),
            }
            .into(),
        }]
    }

    /// Sends a device's share up (the upstream extranonce: the channel's index, then `own`).
    fn forward_share(
        &mut self,
        session: DownstreamId,
        channel_id: u32,
        sequence_number: u32,
        // The pool's job id, nonce, ntime and version.
        fields: (u32, u32, u32, u32),
        own: &[u8],
    ) -> Vec<Output> {
        let (job_id, nonce, ntime, version) = fields;
        let (Some(up), Some(c)) = (self.upstream.as_ref(), self.channels.get(&channel_id)) else {
            return Self::share_error(session, channel_id, sequence_number, "invalid-channel-id");
        };
        if self.state != UpState::Open {
            return Self::share_error(session, channel_id, sequence_number, "stale-share");
        }
        let index = c.index.to_be_bytes();
        let mut extranonce = index[4 - self.config.prefix_bytes..].to_vec();
        extranonce.extend_from_slice(own);
        let up_sequence = self.next_sequence;
        self.next_sequence = self.next_sequence.wrapping_add(1);
        let up_channel = up.channel_id;
        self.pending.insert(
            up_sequence,
            Pending {
                session,
                channel_id,
                sequence_number,
            },
        );
        while self.pending.len() > self.config.max_pending_shares.max(1) {
            self.pending.pop_first();
        }
        vec![Output::Upstream(
            SubmitSharesExtended {
                channel_id: up_channel,
                sequence_number: up_sequence,
                job_id,
                nonce,
                ntime,
                version,
                extranonce: B0_32::new(extranonce).unwrap_or_default(),
            }
            .into(),
        )]
    }

    /// The kind of `session`'s channel `channel_id`, or the share's error.
    fn share_channel(
        &self,
        session: DownstreamId,
        channel_id: u32,
        sequence_number: u32,
    ) -> Result<Kind, Vec<Output>> {
        self.channels
            .get(&channel_id)
            .filter(|c| c.session == session)
            .map(|c| c.kind)
            .ok_or_else(|| {
                Self::share_error(session, channel_id, sequence_number, "invalid-channel-id")
            })
    }

    fn share_standard(&mut self, session: DownstreamId, m: &SubmitSharesStandard) -> Vec<Output> {
        match self.share_channel(session, m.channel_id, m.sequence_number) {
            Ok(Kind::Standard) => {}
            Ok(_) => {
                return Self::share_error(
                    session,
                    m.channel_id,
                    m.sequence_number,
                    "invalid-channel-id",
                )
            }
            Err(out) => return out,
        }
        let Some(up_job) = self.jobs.get(&m.job_id).map(|j| j.up_id) else {
            return Self::share_error(session, m.channel_id, m.sequence_number, "invalid-job-id");
        };
        let zeros = vec![
            0u8;
            self.upstream
                .as_ref()
                .map_or(0, |u| u.extranonce_size)
                .saturating_sub(self.config.prefix_bytes)
        ];
        self.forward_share(
            session,
            m.channel_id,
            m.sequence_number,
            (up_job, m.nonce, m.ntime, m.version),
            &zeros,
        )
    }

    fn share_extended(
        &mut self,
        session: DownstreamId,
        m: &SubmitSharesExtended<'_>,
    ) -> Vec<Output> {
        let size = match self.share_channel(session, m.channel_id, m.sequence_number) {
            Ok(Kind::Extended(size)) => size,
            Ok(_) => {
                return Self::share_error(
                    session,
                    m.channel_id,
                    m.sequence_number,
                    "invalid-channel-id",
                )
            }
            Err(out) => return out,
        };
        if m.extranonce.as_bytes().len() != size {
            return Self::share_error(
                session,
                m.channel_id,
                m.sequence_number,
                "invalid-extranonce-size",
            );
        }
        let Some(up_job) = self.jobs.get(&m.job_id).map(|j| j.up_id) else {
            return Self::share_error(session, m.channel_id, m.sequence_number, "invalid-job-id");
        };
        let own = m.extranonce.as_bytes().to_vec();
        self.forward_share(
            session,
            m.channel_id,
            m.sequence_number,
            (up_job, m.nonce, m.ntime, m.version),
            &own,
        )
    }
}
