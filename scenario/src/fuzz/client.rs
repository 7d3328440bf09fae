//! One fuzz case against a client (`sv2-probe fuzz --listen`): the fuzzer plays its server. A case
//! reaches a protocol state with valid traffic on the client's connection (its SetupConnection
//! received; its channel request received; a channel open with a job and a prev hash; for a
//! Template Distribution client, a template and its prev hash), then sends one valid server
//! message of that state mutated ([`super::mutate`]), then the oracles:
//!
//! - the connection still works, where the control case showed the client answers work: after a
//!   valid follow-up job (or template) the client submits a share on it (or asks for its
//!   transactions), or closes;
//! - expected error: a job (or template) whose bytes no reader could accept is not worked on (no
//!   share on it, no request for its transactions);
//! - the client's process is still running (when the fuzzer knows it: `--spawn` or `--pid`).
//!
//! As on the server side, a case is a conversation script ([`crate::script`]), here played by the
//! server: a finding replays with `sv2-probe scenario run FILE --listen ADDR --spawn CMD`.

use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};
use sv2_codec::messages::common::{SetupConnectionError, SetupConnectionSuccess};
use sv2_codec::messages::mining::{
    CloseChannel, NewExtendedMiningJob, NewMiningJob, OpenExtendedMiningChannelSuccess,
    OpenMiningChannelError, OpenStandardMiningChannelSuccess, SetExtranoncePrefix, SetGroupChannel,
    SetNewPrevHash, SetTarget, SubmitSharesError, SubmitSharesSuccess, UpdateChannelError,
};
use sv2_codec::messages::template_distribution::{
    NewTemplate, RequestTransactionDataError, RequestTransactionDataSuccess, SetNewPrevHashTdp,
};
use sv2_codec::types::{Seq0_255, Seq0_64K, B0_255, B0_32, B0_64K, U256};
use sv2_codec::Message;

use super::case::{expect, json_of, keeps_framing, steps_of, text};
use super::mutate::{mutate, Act, Family, Mutated, Rng};
use crate::script::Step;

/// What the client under test speaks to its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientRole {
    /// The Mining protocol: a device, a proxy's or a translator's upstream side.
    Mining,
    /// Template Distribution: a pool or a job declarator client as a template provider's client.
    TemplateClient,
}

/// Which channel the client asked for (learnt from the control case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Channel {
    Standard,
    Extended,
}

impl Channel {
    pub fn request(self) -> &'static str {
        match self {
            Channel::Standard => "OpenStandardMiningChannel",
            Channel::Extended => "OpenExtendedMiningChannel",
        }
    }

    pub fn share(self) -> &'static str {
        match self {
            Channel::Standard => "SubmitSharesStandard",
            Channel::Extended => "SubmitSharesExtended",
        }
    }
}

/// What the control case (valid traffic only, no mutation) showed about the client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Profile {
    /// The channel it opens (None: it opened none within the wait, so channel states are not
    /// tried).
    pub channel: Option<Channel>,
    /// It submits a share on a fresh job at the channel's target (so the follow-up job is an
    /// oracle).
    pub mines: bool,
    /// A Template Distribution client: it sends CoinbaseOutputConstraints after setup.
    pub sends_constraints: bool,
    /// It asks for the transactions of a fresh template (so the follow-up template is an oracle).
    pub requests_transactions: bool,
    /// Its SetupConnection set REQUIRES_STANDARD_JOBS: no group channel for it (§5.3.22).
    pub standard_jobs_only: bool,
    /// It crashed when the control case's connection was closed.
    pub crashes_on_close: bool,
}

/// The state a case reaches before its mutation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientState {
    /// The client's SetupConnection received, not answered.
    Setup,
    /// Set up; the client's channel request received, not answered.
    Open,
    /// A channel open, with a job and the prev hash that activates it.
    Jobs,
    /// Template Distribution: set up, a template and its prev hash sent.
    Templates,
}

impl ClientState {
    pub fn name(self) -> &'static str {
        match self {
            ClientState::Setup => "client-setup",
            ClientState::Open => "client-open",
            ClientState::Jobs => "client-jobs",
            ClientState::Templates => "client-templates",
        }
    }

    /// The states a case against `role` can reach, given what the control case showed.
    pub fn reachable(role: ClientRole, profile: &Profile) -> Vec<ClientState> {
        match role {
            ClientRole::TemplateClient => vec![ClientState::Setup, ClientState::Templates],
            ClientRole::Mining if profile.channel.is_some() => {
                vec![ClientState::Setup, ClientState::Open, ClientState::Jobs]
            }
            ClientRole::Mining => vec![ClientState::Setup],
        }
    }

    fn bases(self, profile: &Profile) -> Vec<ServerBase> {
        let channel = profile.channel;
        use ServerBase::*;
        match self {
            ClientState::Setup => vec![SetupSuccess, SetupError],
            ClientState::Open => vec![OpenSuccess, OpenError],
            ClientState::Jobs => {
                let mut b = vec![
                    Job,
                    PrevHash,
                    Target,
                    SharesSuccess,
                    SharesError,
                    CloseChannel,
                    UpdateChannelError,
                    SetupSuccess,
                ];
                if !profile.standard_jobs_only {
                    b.push(GroupChannel);
                }
                if channel == Some(Channel::Extended) {
                    b.push(ExtranoncePrefix);
                }
                b
            }
            ClientState::Templates => vec![
                Template,
                TemplatePrevHash,
                TransactionDataSuccess,
                TransactionDataError,
                SetupSuccess,
            ],
        }
    }
}

/// A valid server message to mutate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServerBase {
    SetupSuccess,
    SetupError,
    OpenSuccess,
    OpenError,
    Job,
    PrevHash,
    Target,
    ExtranoncePrefix,
    SharesSuccess,
    SharesError,
    CloseChannel,
    UpdateChannelError,
    GroupChannel,
    Template,
    TemplatePrevHash,
    TransactionDataSuccess,
    TransactionDataError,
}

impl ServerBase {
    /// After its valid form the client goes on working: the follow-up job or template must be
    /// answered. (A closed channel, a refused request, an extranonce prefix that may leave no
    /// room, a group channel whose jobs the channel may await instead, are rightly the end of the
    /// work on the channel's own jobs.)
    fn keeps_work(self) -> bool {
        use ServerBase::*;
        matches!(
            self,
            Job | Target
                | SharesSuccess
                | SharesError
                | Template
                | TransactionDataSuccess
                | TransactionDataError
        )
    }
}

/// The channel the fuzzer opens for the client.
pub const CHANNEL: u32 = 7;
/// The job the prefix sends (future, then activated by the prev hash).
const FIRST_JOB: u32 = 1;
/// The job a mutated job carries: a share on it after an unreadable job is an accepted invalid.
const MUTATED_JOB: u32 = 0x0046_555a;
/// The job after the case: a client that mines submits a share on it.
pub const FOLLOW_UP_JOB: u32 = 0x0046_5a5a;
const FIRST_TEMPLATE: u64 = 1;
const MUTATED_TEMPLATE: u64 = 0x4655_5a5a_4655_5a5a;
pub const FOLLOW_UP_TEMPLATE: u64 = 0x4655_5a5a_4655_0001;
/// Fixed so that a campaign's bytes depend on its seed alone.
const NTIME: u32 = 1_767_225_600;
/// Regtest's: any hash of a job meets the network target's neighbourhood quickly.
const NBITS: u32 = 0x207f_ffff;
const VERSION: u32 = 0x2000_0000;
/// The extranonce bytes an extended channel gets besides its 4-byte prefix.
const EXTRANONCE_SIZE: u16 = 16;

/// A send of `message` with `fields` replaced by saved values (`"${name}"`).
fn send_with(message: &Message<'_>, fields: &[(&str, &str)]) -> Step {
    let mut map = json_of(message);
    for (field, name) in fields {
        map.insert(field.to_string(), json!(format!("${{{name}}}")));
    }
    Step::Send(map)
}

fn setup_success() -> Message<'static> {
    SetupConnectionSuccess {
        used_version: 2,
        flags: 0,
    }
    .into()
}

fn max_target() -> U256 {
    U256([0xff; 32])
}

fn open_success(channel: Channel, request_id: u32) -> Message<'static> {
    let prefix = B0_32::new(vec![0x46, 0x55, 0x5a, 0x01]).unwrap_or_default();
    match channel {
        Channel::Standard => OpenStandardMiningChannelSuccess {
            request_id,
            channel_id: CHANNEL,
            target: max_target(),
            extranonce_prefix: prefix,
            group_channel_id: 0,
        }
        .into(),
        Channel::Extended => OpenExtendedMiningChannelSuccess {
            request_id,
            channel_id: CHANNEL,
            target: max_target(),
            extranonce_size: EXTRANONCE_SIZE,
            extranonce_prefix: prefix,
            group_channel_id: 0,
        }
        .into(),
    }
}

/// A coinbase cut around its extranonce: version, one input (null prevout, a script of the BIP34
/// height push, the prefix and the extranonce), one output of 50 BTC to OP_TRUE, no lock time.
fn coinbase_parts() -> (Vec<u8>, Vec<u8>) {
    let extranonce = 4 + usize::from(EXTRANONCE_SIZE);
    let mut prefix = vec![2, 0, 0, 0, 1];
    prefix.extend_from_slice(&[0; 32]);
    prefix.extend_from_slice(&[0xff; 4]);
    prefix.push((4 + extranonce) as u8);
    prefix.extend_from_slice(&[0x03, 0x01, 0x00, 0x00]);
    let mut suffix = vec![0xff, 0xff, 0xff, 0xff, 1];
    suffix.extend_from_slice(&5_000_000_000u64.to_le_bytes());
    suffix.extend_from_slice(&[1, 0x51, 0, 0, 0, 0]);
    (prefix, suffix)
}

fn job(channel: Channel, job_id: u32, future: bool) -> Message<'static> {
    let min_ntime = (!future).then_some(NTIME);
    match channel {
        Channel::Standard => NewMiningJob {
            channel_id: CHANNEL,
            job_id,
            min_ntime,
            version: VERSION,
            merkle_root: U256([0x4d; 32]),
        }
        .into(),
        Channel::Extended => {
            let (prefix, suffix) = coinbase_parts();
            NewExtendedMiningJob {
                channel_id: CHANNEL,
                job_id,
                min_ntime,
                version: VERSION,
                version_rolling_allowed: true,
                merkle_path: Seq0_255::default(),
                coinbase_tx_prefix: B0_64K::new(prefix).unwrap_or_default(),
                coinbase_tx_suffix: B0_64K::new(suffix).unwrap_or_default(),
            }
            .into()
        }
    }
}

fn prev_hash(job_id: u32) -> Message<'static> {
    SetNewPrevHash {
        channel_id: CHANNEL,
        job_id,
        prev_hash: U256([0x5a; 32]),
        min_ntime: NTIME,
        nbits: NBITS,
    }
    .into()
}

fn set_target() -> Message<'static> {
    SetTarget {
        channel_id: CHANNEL,
        maximum_target: max_target(),
    }
    .into()
}

fn template(template_id: u64, future: bool) -> Message<'static> {
    NewTemplate {
        template_id,
        future_template: future,
        version: VERSION,
        coinbase_tx_version: 2,
        coinbase_prefix: B0_255::new(vec![0x03, 0x01, 0x00, 0x00]).unwrap_or_default(),
        coinbase_tx_input_sequence: u32::MAX,
        coinbase_tx_value_remaining: 5_000_000_000,
        coinbase_tx_outputs_count: 0,
        coinbase_tx_outputs: B0_64K::default(),
        coinbase_tx_locktime: 0,
        merkle_path: Seq0_255::default(),
    }
    .into()
}

fn template_prev_hash(template_id: u64) -> Message<'static> {
    SetNewPrevHashTdp {
        template_id,
        prev_hash: U256([0x5a; 32]),
        header_timestamp: NTIME,
        n_bits: NBITS,
        target: max_target(),
    }
    .into()
}

/// The valid steps of the server that reach `state` on a client's fresh connection (after the
/// handshake): the client's channel request id is saved as `request`.
pub fn prefix(
    role: ClientRole,
    state: ClientState,
    profile: &Profile,
    wait: Duration,
) -> Vec<Step> {
    let mut steps = vec![expect("SetupConnection", &[("setup_flags", "flags")], wait)];
    if state == ClientState::Setup {
        return steps;
    }
    steps.push(Step::Send(json_of(&setup_success())));
    if role == ClientRole::TemplateClient {
        if profile.sends_constraints {
            steps.push(expect("CoinbaseOutputConstraints", &[], wait));
        }
        steps.push(Step::Send(json_of(&template(FIRST_TEMPLATE, true))));
        steps.push(Step::Send(json_of(&template_prev_hash(FIRST_TEMPLATE))));
        return steps;
    }
    let Some(channel) = profile.channel else {
        return steps;
    };
    steps.push(expect(
        channel.request(),
        &[("request", "request_id")],
        wait,
    ));
    if state == ClientState::Open {
        return steps;
    }
    steps.push(send_with(
        &open_success(channel, 0),
        &[("request_id", "request")],
    ));
    steps.push(Step::Send(json_of(&job(channel, FIRST_JOB, true))));
    steps.push(Step::Send(json_of(&prev_hash(FIRST_JOB))));
    steps
}

/// The valid follow-up after a case and the answer it is due: a fresh job at the easiest target
/// (a share on it), or a fresh template (a request for its transactions).
fn follow_up(
    role: ClientRole,
    profile: &Profile,
) -> Option<(Vec<Step>, String, &'static str, Value)> {
    match role {
        ClientRole::Mining => {
            let channel = profile.channel.filter(|_| profile.mines)?;
            Some((
                vec![
                    Step::Send(json_of(&set_target())),
                    Step::Send(json_of(&job(channel, FOLLOW_UP_JOB, false))),
                ],
                channel.share().to_string(),
                "job_id",
                json!(FOLLOW_UP_JOB),
            ))
        }
        ClientRole::TemplateClient if profile.requests_transactions => Some((
            vec![Step::Send(json_of(&template(FOLLOW_UP_TEMPLATE, false)))],
            "RequestTransactionData".to_string(),
            "template_id",
            json!(FOLLOW_UP_TEMPLATE),
        )),
        ClientRole::TemplateClient => None,
    }
}

/// The steps and answer of the control case: the deepest state, then the follow-up and its answer
/// awaited (the campaign reads from them whether the client answers work).
pub fn control_follow_up(role: ClientRole, channel: Option<Channel>, wait: Duration) -> Vec<Step> {
    let profile = Profile {
        channel,
        mines: true,
        sends_constraints: true,
        requests_transactions: true,
        standard_jobs_only: false,
        crashes_on_close: false,
    };
    let Some((mut steps, answer, field, value)) = follow_up(role, &profile) else {
        return Vec::new();
    };
    let mut fields = serde_json::Map::new();
    fields.insert(field.to_string(), value);
    steps.push(Step::Expect {
        message: answer,
        fields,
        within: wait * 2,
        next: false,
        save: Default::default(),
    });
    steps
}

/// A case against a client, before it runs: from the campaign seed and the case's index alone
/// (and the control case's profile, the same for every case of a campaign against one client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ClientPlan {
    pub index: u64,
    pub seed: u64,
    pub role: ClientRole,
    pub state: ClientState,
    pub base: ServerBase,
    pub family: Family,
}

pub fn plan(seed: u64, index: u64, role: ClientRole, profile: &Profile) -> ClientPlan {
    let case_seed = Rng::new(seed ^ index.wrapping_mul(0xe703_7ed1_a0b4_28db)).next_u64();
    let mut rng = Rng::new(case_seed);
    let states = ClientState::reachable(role, profile);
    let state = *rng.pick(&states);
    let base = *rng.pick(&state.bases(profile));
    let family = match rng.below(6) {
        0..=2 => Family::Field,
        3 => Family::Frame,
        4 => Family::Noise,
        _ => Family::Time,
    };
    ClientPlan {
        index,
        seed: case_seed,
        role,
        state,
        base,
        family,
    }
}

/// The base message, the fields that hold saved values (field, saved name, width) and, for a
/// job or a template, what the client would send if it worked on it (message, field, value).
struct Built {
    message: Message<'static>,
    placeholders: Vec<(&'static str, &'static str, usize)>,
    acted_on: Option<(String, &'static str, Value)>,
}

fn build(base: ServerBase, profile: &Profile) -> Built {
    let channel = profile.channel.unwrap_or(Channel::Standard);
    let plain = |message| Built {
        message,
        placeholders: Vec::new(),
        acted_on: None,
    };
    let on_request = vec![("request_id", "request", 4)];
    match base {
        ServerBase::SetupSuccess => plain(setup_success()),
        ServerBase::SetupError => plain(
            SetupConnectionError {
                flags: 0,
                error_code: text("unsupported-protocol"),
            }
            .into(),
        ),
        ServerBase::OpenSuccess => Built {
            message: open_success(channel, 0),
            placeholders: on_request,
            acted_on: None,
        },
        ServerBase::OpenError => Built {
            message: OpenMiningChannelError {
                request_id: 0,
                error_code: text("unknown-user"),
            }
            .into(),
            placeholders: on_request,
            acted_on: None,
        },
        ServerBase::Job => Built {
            message: job(channel, MUTATED_JOB, false),
            placeholders: Vec::new(),
            acted_on: Some((channel.share().into(), "job_id", json!(MUTATED_JOB))),
        },
        ServerBase::PrevHash => plain(prev_hash(MUTATED_JOB)),
        ServerBase::Target => plain(set_target()),
        ServerBase::ExtranoncePrefix => plain(
            SetExtranoncePrefix {
                channel_id: CHANNEL,
                extranonce_prefix: B0_32::new(vec![0x46, 0x55, 0x5a, 0x02]).unwrap_or_default(),
            }
            .into(),
        ),
        ServerBase::SharesSuccess => plain(
            SubmitSharesSuccess {
                channel_id: CHANNEL,
                last_sequence_number: 0,
                new_submits_accepted_count: 1,
                new_shares_sum: 1,
            }
            .into(),
        ),
        ServerBase::SharesError => plain(
            SubmitSharesError {
                channel_id: CHANNEL,
                sequence_number: 0,
                error_code: text("stale-share"),
            }
            .into(),
        ),
        ServerBase::CloseChannel => plain(
            CloseChannel {
                channel_id: CHANNEL,
                reason_code: text("fuzz"),
            }
            .into(),
        ),
        ServerBase::UpdateChannelError => plain(
            UpdateChannelError {
                channel_id: CHANNEL,
                error_code: text("max-target-out-of-range"),
            }
            .into(),
        ),
        ServerBase::GroupChannel => plain(
            SetGroupChannel {
                group_channel_id: 0x0046_0001,
                channel_ids: Seq0_64K::new(vec![CHANNEL]).unwrap_or_default(),
            }
            .into(),
        ),
        ServerBase::Template => Built {
            message: template(MUTATED_TEMPLATE, false),
            placeholders: Vec::new(),
            acted_on: Some((
                "RequestTransactionData".into(),
                "template_id",
                json!(MUTATED_TEMPLATE),
            )),
        },
        ServerBase::TemplatePrevHash => plain(template_prev_hash(MUTATED_TEMPLATE)),
        ServerBase::TransactionDataSuccess => plain(
            RequestTransactionDataSuccess {
                template_id: FIRST_TEMPLATE,
                excess_data: B0_64K::default(),
                transaction_list: Seq0_64K::default(),
            }
            .into(),
        ),
        ServerBase::TransactionDataError => plain(
            RequestTransactionDataError {
                template_id: FIRST_TEMPLATE,
                error_code: text("template-id-not-found"),
            }
            .into(),
        ),
    }
}

/// The mutation of a case against a client, as steps; with it, what it changed.
#[derive(Debug, Clone)]
pub struct ClientMutation {
    pub mutated: Mutated,
    pub steps: Vec<Step>,
    acted_on: Option<(String, &'static str, Value)>,
}

/// The mutation of `plan`'s base message. A server cannot crowd its client: a mutation that would
/// open more connections is drawn again.
pub fn mutation(plan: &ClientPlan, profile: &Profile) -> Option<ClientMutation> {
    let built = build(plan.base, profile);
    let original = sv2_codec::to_frame_bytes(&built.message, &[]).ok()?;
    let mut rng = Rng::new(plan.seed.rotate_left(23));
    let mutated = (0..8)
        .filter_map(|_| mutate(&built.message, plan.family, &mut rng))
        .find(|m| !m.acts.iter().any(|a| matches!(a, Act::Crowd(_))))?;
    let steps = steps_of(&mutated.acts, &original, &built.placeholders);
    Some(ClientMutation {
        mutated,
        steps,
        acted_on: built.acted_on,
    })
}

/// The oracle steps after a mutation: the follow-up answered (when the control case showed the
/// client answers it, the base leaves the work going and the framing is intact), with no work done
/// on an unreadable job or template before it; then, when the fuzzer knows the client's process,
/// that it still runs.
pub fn oracles(
    plan: &ClientPlan,
    profile: &Profile,
    mutation: &ClientMutation,
    wait: Duration,
    knows_process: bool,
) -> Vec<Step> {
    let mut steps = Vec::new();
    let working = matches!(plan.state, ClientState::Jobs | ClientState::Templates);
    if working && plan.base.keeps_work() && keeps_framing(&mutation.mutated) {
        if let Some((sends, answer, field, value)) = follow_up(plan.role, profile) {
            steps.extend(sends);
            let mut fields = serde_json::Map::new();
            fields.insert(field.to_string(), value);
            let forbid = match (mutation.mutated.invalid, &mutation.acted_on) {
                (Some(_), Some((name, field, value))) => {
                    let mut fields = serde_json::Map::new();
                    fields.insert(field.to_string(), value.clone());
                    Some((name.clone(), fields))
                }
                _ => None,
            };
            steps.push(Step::ExpectAny {
                messages: vec![answer],
                within: wait * 2,
                answer: fields,
                forbid,
            });
        }
    }
    if knows_process {
        steps.push(Step::ExpectAlive { within: wait });
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::HexPart;

    fn miner() -> Profile {
        Profile {
            channel: Some(Channel::Extended),
            mines: true,
            sends_constraints: false,
            requests_transactions: false,
            standard_jobs_only: false,
            crashes_on_close: false,
        }
    }

    #[test]
    fn plans_cover_every_reachable_state_and_base() {
        let profile = miner();
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..2000 {
            let p = plan(3, i, ClientRole::Mining, &profile);
            assert_eq!(p, plan(3, i, ClientRole::Mining, &profile));
            seen.insert((p.state, p.base));
            let m = mutation(&p, &profile).expect("every base mutates");
            assert!(!m.steps.is_empty());
        }
        let all: usize = ClientState::reachable(ClientRole::Mining, &profile)
            .iter()
            .map(|s| s.bases(&profile).len())
            .sum();
        assert_eq!(seen.len(), all);
    }

    #[test]
    fn every_valid_server_message_encodes_and_decodes() {
        for channel in [Channel::Standard, Channel::Extended] {
            for message in [
                open_success(channel, 9),
                job(channel, 3, true),
                job(channel, 3, false),
            ] {
                let frame = sv2_codec::to_frame_bytes(&message, &[]).unwrap();
                assert!(crate::engine::describe(&frame).is_some(), "{message:?}");
            }
        }
        for message in [
            template(1, true),
            template_prev_hash(1),
            prev_hash(1),
            set_target(),
        ] {
            let frame = sv2_codec::to_frame_bytes(&message, &[]).unwrap();
            assert!(crate::engine::describe(&frame).is_some(), "{message:?}");
        }
        let (prefix, suffix) = coinbase_parts();
        let mut tx = prefix;
        tx.extend(vec![0u8; 4 + usize::from(EXTRANONCE_SIZE)]);
        tx.extend(suffix);
        // version, 1 input of 36 + 1 + 24 + 4 bytes, 1 output of 8 + 2 bytes, lock time.
        assert_eq!(tx.len(), 4 + 1 + 36 + 1 + 24 + 4 + 1 + 10 + 4);
    }

    #[test]
    fn the_request_id_stays_a_placeholder_where_the_mutation_left_it() {
        let profile = miner();
        let mut found = false;
        for index in 0..300 {
            let mut p = plan(5, index, ClientRole::Mining, &profile);
            p.state = ClientState::Open;
            p.base = ServerBase::OpenSuccess;
            p.family = Family::Time;
            let m = mutation(&p, &profile).unwrap();
            found |= m.steps.iter().any(|s| {
                matches!(s, Step::SendHex { hex, .. }
                    if hex.iter().any(|h| matches!(h, HexPart::Saved { name, .. } if name == "request")))
            });
        }
        assert!(found);
    }
}
