//! One fuzz case against a server, as data: the protocol state reached first with valid traffic,
//! the valid message that is then mutated, the mutation, and the oracle steps after it. A case is
//! a conversation script ([`crate::script`]), so a finding is a file that replays it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};
use sv2_codec::frame::HEADER_LEN;
use sv2_codec::messages::common::SetupConnection;
use sv2_codec::messages::extensions::RequestExtensions;
use sv2_codec::messages::mining::{
    CloseChannel, OpenExtendedMiningChannel, OpenStandardMiningChannel, SetCustomMiningJob,
    SubmitSharesExtended, SubmitSharesStandard, UpdateChannel,
};
use sv2_codec::messages::template_distribution::{
    CoinbaseOutputConstraints, RequestTransactionData, SubmitSolution,
};
use sv2_codec::types::{Seq0_255, Seq0_64K, Str0_255, B0_255, B0_32, B0_64K, U256};
use sv2_codec::Message;

use super::mutate::{mutate, Act, Family, Mutated, Rng};
use super::spans::{info_of_frame, spans};
use crate::script::{HexPart, Step};

/// How long the prefix and the oracles wait for an answer, unless the campaign says otherwise.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(3);

/// What the target serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// The Mining protocol: a pool, or the side of a proxy that serves devices.
    Mining,
    /// Template Distribution: a template provider.
    TemplateProvider,
}

impl Role {
    /// The states a case against this role reaches.
    pub fn states(self) -> &'static [State] {
        match self {
            Role::Mining => &[
                State::Connected,
                State::SetUp,
                State::StandardChannel,
                State::ExtendedChannel,
            ],
            Role::TemplateProvider => &[State::Connected, State::SetUp, State::Templates],
        }
    }

    /// The SetupConnection.protocol of this role.
    pub fn protocol(self) -> u8 {
        match self {
            Role::Mining => 0,
            Role::TemplateProvider => 2,
        }
    }
}

/// The protocol state a case reaches with valid traffic before it mutates anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// The handshake done (or a plaintext connection open), nothing sent.
    Connected,
    /// SetupConnection answered with .Success.
    SetUp,
    /// A standard channel open, its first job and prev hash received.
    StandardChannel,
    /// An extended channel open, its first job and prev hash received.
    ExtendedChannel,
    /// Template Distribution: CoinbaseOutputConstraints sent, the first template and its prev
    /// hash received.
    Templates,
}

impl State {
    pub const ALL: [State; 5] = [
        State::Connected,
        State::SetUp,
        State::StandardChannel,
        State::ExtendedChannel,
        State::Templates,
    ];

    pub fn name(self) -> &'static str {
        match self {
            State::Connected => "connected",
            State::SetUp => "set-up",
            State::StandardChannel => "standard-channel",
            State::ExtendedChannel => "extended-channel",
            State::Templates => "templates",
        }
    }

    /// The valid messages a case in this state mutates.
    fn bases(self, role: Role) -> &'static [Base] {
        match (role, self) {
            (Role::TemplateProvider, State::Connected) => &[Base::Setup],
            (Role::TemplateProvider, _) => &[
                Base::CoinbaseOutputConstraints,
                Base::RequestTransactionData,
                Base::SubmitSolution,
                Base::Setup,
            ],
            (_, State::Connected) => &[Base::Setup],
            (_, State::SetUp) => &[
                Base::OpenStandard,
                Base::OpenExtended,
                Base::RequestExtensions,
                Base::Setup,
                Base::CloseChannel,
            ],
            (_, State::StandardChannel) => &[
                Base::ShareStandard,
                Base::UpdateChannel,
                Base::CloseChannel,
                Base::OpenStandard,
                Base::CustomJob,
            ],
            (_, State::ExtendedChannel | State::Templates) => &[
                Base::ShareExtended,
                Base::UpdateChannel,
                Base::CloseChannel,
                Base::CustomJob,
            ],
        }
    }
}

/// A valid message to mutate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Base {
    Setup,
    OpenStandard,
    OpenExtended,
    RequestExtensions,
    CloseChannel,
    ShareStandard,
    ShareExtended,
    UpdateChannel,
    CustomJob,
    CoinbaseOutputConstraints,
    RequestTransactionData,
    SubmitSolution,
}

/// The request id the mutated request carries: the expected-error oracle looks for a success that
/// echoes it.
const MUTATED_REQUEST: u32 = 0x0046_555a;
/// A template id no provider has made (the valid request after a Template Distribution case asks
/// for it: an answer, .Error, is due).
const UNKNOWN_TEMPLATE: u64 = 0x4655_5a5a_4655_5a5a;
/// The template the valid request after a Template Distribution case asks for (none has it).
const FOLLOW_UP_TEMPLATE: u64 = 0x4655_5a5a_4655_0001;
/// The request id of the valid request after the case.
const FOLLOW_UP_REQUEST: u32 = 0x0046_5a5a;
/// The sequence number of the mutated share.
const MUTATED_SEQUENCE: u32 = 0x4655;

pub(crate) fn text(s: &str) -> Str0_255<'static> {
    Str0_255::new(s.as_bytes().to_vec()).unwrap_or_default()
}

/// The SetupConnection of `role`'s protocol every case starts with.
pub fn setup(role: Role, host: &str, port: u16) -> Message<'static> {
    SetupConnection {
        protocol: role.protocol(),
        min_version: 2,
        max_version: 2,
        flags: 0,
        endpoint_host: text(host),
        endpoint_port: port,
        vendor: text("sv2-toolkit"),
        hardware_version: text("fuzz"),
        firmware: text(""),
        device_id: text("sv2-probe fuzz"),
    }
    .into()
}

fn open_standard(request_id: u32) -> Message<'static> {
    OpenStandardMiningChannel {
        request_id,
        user_identity: text("sv2-toolkit.fuzz"),
        nominal_hash_rate: 1e9,
        max_target: U256([0xff; 32]),
    }
    .into()
}

fn open_extended(request_id: u32) -> Message<'static> {
    OpenExtendedMiningChannel {
        request_id,
        user_identity: text("sv2-toolkit.fuzz"),
        nominal_hash_rate: 1e9,
        max_target: U256([0xff; 32]),
        min_extranonce_size: 4,
    }
    .into()
}

/// A message as the JSON map a `send` step holds.
pub(crate) fn json_of(message: &Message<'_>) -> serde_json::Map<String, Value> {
    match serde_json::to_value(message) {
        Ok(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    }
}

/// An `expect` step for `message` that saves `save` (saved name, field).
pub(crate) fn expect(message: &str, save: &[(&str, &str)], within: Duration) -> Step {
    Step::Expect {
        message: message.into(),
        fields: serde_json::Map::new(),
        within,
        next: false,
        save: save
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn constraints() -> Message<'static> {
    CoinbaseOutputConstraints {
        coinbase_output_max_additional_size: 100,
        coinbase_output_max_additional_sigops: 4,
    }
    .into()
}

/// The valid steps that reach `state`: the channel's id is saved as `channel`, its job's as `job`
/// (taken from the first SetNewPrevHash, which names the job in force); a template's id as
/// `template` (the one the first SetNewPrevHash names).
pub fn prefix(role: Role, state: State, host: &str, port: u16, wait: Duration) -> Vec<Step> {
    let mut steps = Vec::new();
    if state == State::Connected {
        return steps;
    }
    steps.push(Step::Send(json_of(&setup(role, host, port))));
    steps.push(expect("SetupConnection.Success", &[], wait));
    if state == State::Templates {
        steps.push(Step::Send(json_of(&constraints())));
        // Template Distribution's SetNewPrevHash (the spec's name is shared with Mining's).
        steps.push(expect(
            "SetNewPrevHash",
            &[("template", "template_id")],
            wait,
        ));
        return steps;
    }
    let (open, success) = match state {
        State::StandardChannel => (open_standard(1), "OpenStandardMiningChannel.Success"),
        State::ExtendedChannel => (open_extended(1), "OpenExtendedMiningChannel.Success"),
        _ => return steps,
    };
    steps.push(Step::Send(json_of(&open)));
    let mut saves = vec![("channel", "channel_id")];
    if state == State::ExtendedChannel {
        saves.push(("extranonce_size", "extranonce_size"));
    }
    steps.push(expect(success, &saves, wait));
    steps.push(expect("SetNewPrevHash", &[("job", "job_id")], wait));
    steps
}

/// What the prefix saved, as numbers.
pub type Saved = BTreeMap<String, Value>;

fn saved_u32(saved: &Saved, name: &str) -> u32 {
    saved.get(name).and_then(Value::as_u64).unwrap_or(0) as u32
}

/// The base message with the saved values in it, the fields that hold them (field name, saved
/// name, width), and the success the server would send if it acted on the request: its name and
/// the field that echoes the request.
struct Built {
    message: Message<'static>,
    placeholders: Vec<(&'static str, &'static str, usize)>,
    success: Option<(&'static str, &'static str, Value)>,
}

fn build(base: Base, role: Role, saved: &Saved, host: &str, port: u16) -> Built {
    let channel = saved_u32(saved, "channel");
    let job = saved_u32(saved, "job");
    let template = saved.get("template").and_then(Value::as_u64);
    let on_channel = vec![("channel_id", "channel", 4)];
    let on_job = vec![("channel_id", "channel", 4), ("job_id", "job", 4)];
    let on_template = match template {
        Some(_) => vec![("template_id", "template", 8)],
        None => Vec::new(),
    };
    let plain = |message| Built {
        message,
        placeholders: Vec::new(),
        success: None,
    };
    match base {
        Base::Setup => plain(setup(role, host, port)),
        Base::CoinbaseOutputConstraints => plain(constraints()),
        Base::RequestTransactionData => Built {
            message: RequestTransactionData {
                template_id: template.unwrap_or(UNKNOWN_TEMPLATE),
            }
            .into(),
            placeholders: on_template.clone(),
            // The template the replay's server gives, not this one's.
            success: Some((
                "RequestTransactionData.Success",
                "template_id",
                if template.is_some() {
                    json!("${template}")
                } else {
                    json!(UNKNOWN_TEMPLATE)
                },
            )),
        },
        Base::SubmitSolution => Built {
            message: SubmitSolution {
                template_id: template.unwrap_or(UNKNOWN_TEMPLATE),
                version: 0x2000_0000,
                header_timestamp: 0,
                header_nonce: 0x4655_5a5a,
                coinbase_tx: B0_64K::new(vec![0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap_or_default(),
            }
            .into(),
            placeholders: on_template.clone(),
            success: None,
        },
        Base::OpenStandard => Built {
            message: open_standard(MUTATED_REQUEST),
            placeholders: Vec::new(),
            success: Some((
                "OpenStandardMiningChannel.Success",
                "request_id",
                json!(MUTATED_REQUEST),
            )),
        },
        Base::OpenExtended => Built {
            message: open_extended(MUTATED_REQUEST),
            placeholders: Vec::new(),
            success: Some((
                "OpenExtendedMiningChannel.Success",
                "request_id",
                json!(MUTATED_REQUEST),
            )),
        },
        Base::RequestExtensions => Built {
            message: RequestExtensions {
                request_id: MUTATED_REQUEST as u16,
                requested_extensions: Seq0_64K::new(vec![0x0002]).unwrap_or_default(),
            }
            .into(),
            placeholders: Vec::new(),
            success: Some((
                "RequestExtensions.Success",
                "request_id",
                json!(MUTATED_REQUEST as u16),
            )),
        },
        Base::CloseChannel => Built {
            message: CloseChannel {
                channel_id: if channel == 0 { 4_000_000_000 } else { channel },
                reason_code: text("fuzz"),
            }
            .into(),
            placeholders: if channel == 0 {
                Vec::new()
            } else {
                on_channel.clone()
            },
            success: None,
        },
        Base::ShareStandard => Built {
            message: SubmitSharesStandard {
                channel_id: channel,
                sequence_number: MUTATED_SEQUENCE,
                job_id: job,
                nonce: 0x4655_5a5a,
                ntime: 0,
                version: 0x2000_0000,
            }
            .into(),
            placeholders: on_job.clone(),
            success: None,
        },
        Base::ShareExtended => {
            let size = saved_u32(saved, "extranonce_size").min(32) as usize;
            Built {
                message: SubmitSharesExtended {
                    channel_id: channel,
                    sequence_number: MUTATED_SEQUENCE,
                    job_id: job,
                    nonce: 0x4655_5a5a,
                    ntime: 0,
                    version: 0x2000_0000,
                    extranonce: B0_32::new(vec![0x5a; size]).unwrap_or_default(),
                }
                .into(),
                placeholders: on_job.clone(),
                success: None,
            }
        }
        Base::UpdateChannel => Built {
            message: UpdateChannel {
                channel_id: channel,
                nominal_hash_rate: 2e9,
                maximum_target: U256([0xff; 32]),
            }
            .into(),
            placeholders: on_channel,
            success: None,
        },
        Base::CustomJob => Built {
            message: SetCustomMiningJob {
                channel_id: channel,
                request_id: MUTATED_REQUEST,
                mining_job_token: B0_255::new(b"fuzz".to_vec()).unwrap_or_default(),
                version: 0x2000_0000,
                prev_hash: U256([0x5a; 32]),
                min_ntime: 0,
                nbits: 0x1d00_ffff,
                coinbase_tx_version: 2,
                coinbase_prefix: B0_255::new(vec![0x03, 0x01, 0x02, 0x03]).unwrap_or_default(),
                coinbase_tx_input_n_sequence: u32::MAX,
                coinbase_tx_outputs: B0_64K::default(),
                coinbase_tx_locktime: 0,
                merkle_path: Seq0_255::default(),
            }
            .into(),
            placeholders: on_channel,
            success: Some((
                "SetCustomMiningJob.Success",
                "request_id",
                json!(MUTATED_REQUEST),
            )),
        },
    }
}

/// What a case is, before it runs: derived from the campaign seed and the case's index alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub index: u64,
    pub seed: u64,
    pub role: Role,
    pub state: State,
    pub base: Base,
    pub family: Family,
}

/// The plan of case `index` of the campaign with `seed` against a `role` server.
pub fn plan(seed: u64, index: u64, role: Role) -> Plan {
    let case_seed = Rng::new(seed ^ index.wrapping_mul(0xa076_1d64_78bd_642f)).next_u64();
    let mut rng = Rng::new(case_seed);
    let state = *rng.pick(role.states());
    let base = *rng.pick(state.bases(role));
    // Field mutations are the richest: half the cases.
    let family = match rng.below(6) {
        0..=2 => Family::Field,
        3 => Family::Frame,
        4 => Family::Noise,
        _ => Family::Time,
    };
    Plan {
        index,
        seed: case_seed,
        role,
        state,
        base,
        family,
    }
}

/// The mutation of a case, once the prefix has saved its values, as script steps (the saved
/// values stay `${name}` in the frames where the mutation left them alone, so that a replay on a
/// fresh server uses that server's ids).
#[derive(Debug, Clone)]
pub struct Mutation {
    pub mutated: Mutated,
    pub steps: Vec<Step>,
    pub success: Option<(&'static str, &'static str, Value)>,
}

fn template(
    bytes: &[u8],
    original: &[u8],
    placeholders: &[(&'static str, &'static str, usize)],
) -> Vec<HexPart> {
    let Some(info) = info_of_frame(original) else {
        return vec![HexPart::Bytes(bytes.to_vec())];
    };
    let Some(spans) = spans(info, &original[HEADER_LEN..]) else {
        return vec![HexPart::Bytes(bytes.to_vec())];
    };
    // Saved values whose bytes are where they were, unchanged.
    let mut holes: Vec<(usize, usize, &'static str)> = placeholders
        .iter()
        .filter_map(|(field, name, width)| {
            let span = spans.iter().find(|s| s.field == *field)?;
            let at = HEADER_LEN + span.start;
            let same = bytes.get(at..at + width) == original.get(at..at + width);
            same.then_some((at, *width, *name))
        })
        .collect();
    holes.sort_unstable();
    let mut parts = Vec::new();
    let mut at = 0;
    for (start, width, name) in holes {
        if start < at {
            continue;
        }
        parts.push(HexPart::Bytes(bytes[at..start].to_vec()));
        parts.push(HexPart::Saved {
            name: name.to_string(),
            width,
        });
        at = start + width;
    }
    parts.push(HexPart::Bytes(bytes[at..].to_vec()));
    parts.retain(|p| !matches!(p, HexPart::Bytes(b) if b.is_empty()));
    parts
}

/// A mutation's acts as script steps: each frame as `send_hex` parts, with the saved values
/// (`placeholders`: field, saved name, width) where the mutation left their bytes as they were in
/// `original`, so that a replay uses its own server's (or client's) ids.
pub(crate) fn steps_of(
    acts: &[Act],
    original: &[u8],
    placeholders: &[(&'static str, &'static str, usize)],
) -> Vec<Step> {
    acts.iter()
        .map(|act| match act {
            Act::Frame { bytes, shape } => Step::SendHex {
                hex: template(bytes, original, placeholders),
                shape: shape.clone(),
            },
            Act::Raw(bytes) => Step::SendRaw(bytes.clone()),
            Act::Pause(d) => Step::Sleep(*d),
            Act::Crowd(n) => Step::Crowd(*n),
        })
        .collect()
}

/// The mutation of `plan`'s base message; None when it could not be built. It does not depend on
/// the target's address: the same seed, the same bytes.
pub fn mutation(plan: &Plan, saved: &Saved) -> Option<Mutation> {
    let built = build(plan.base, plan.role, saved, "127.0.0.1", 34254);
    let mut rng = Rng::new(plan.seed.rotate_left(17));
    let mutated = mutate(&built.message, plan.family, &mut rng)?;
    let original = sv2_codec::to_frame_bytes(&built.message, &[]).ok()?;
    let steps = steps_of(&mutated.acts, &original, &built.placeholders);
    Some(Mutation {
        mutated,
        steps,
        success: built.success,
    })
}

/// The oracle steps after a mutation:
/// 1. the connection still works: a valid request after the case is answered (or the connection
///    is closed), when the mutation left the framing of the stream intact;
/// 2. with it, the expected-error oracle: a request whose bytes break a rule no reader could
///    accept must not be answered with its success first;
/// 3. the server still works: where no answer to a valid request showed it (the framing broken,
///    or the connection closed: the campaign checks then), a fresh connection completes the
///    handshake and SetupConnection. A server that answered and died after is found by the next
///    case's fresh connection, or by the campaign's last check.
pub fn oracles(role: Role, state: State, mutation: &Mutation, wait: Duration) -> Vec<Step> {
    let mut steps = Vec::new();
    if keeps_framing(&mutation.mutated) {
        // The answer to the valid request, not to the mutated one: matched by its id (a
        // SetupConnection answer carries none: in the connected state either setup's answer
        // will do, a server may ignore a second SetupConnection).
        let mut answer = serde_json::Map::new();
        let (request, answers): (Message<'static>, Vec<String>) = if state == State::Connected {
            (
                setup(role, "127.0.0.1", 0),
                vec![
                    "SetupConnection.Success".into(),
                    "SetupConnection.Error".into(),
                ],
            )
        } else if role == Role::TemplateProvider {
            answer.insert("template_id".into(), json!(FOLLOW_UP_TEMPLATE));
            (
                RequestTransactionData {
                    template_id: FOLLOW_UP_TEMPLATE,
                }
                .into(),
                vec![
                    "RequestTransactionData.Success".into(),
                    "RequestTransactionData.Error".into(),
                ],
            )
        } else {
            answer.insert("request_id".into(), json!(FOLLOW_UP_REQUEST));
            (
                open_standard(FOLLOW_UP_REQUEST),
                vec![
                    "OpenStandardMiningChannel.Success".into(),
                    "OpenMiningChannel.Error".into(),
                ],
            )
        };
        // The server reads in order: a success for the unreadable request would come before the
        // answer to the valid one.
        let forbid = match (mutation.mutated.invalid, &mutation.success) {
            (Some(_), Some((name, field, value))) => {
                let mut fields = serde_json::Map::new();
                fields.insert(field.to_string(), value.clone());
                Some((name.to_string(), fields))
            }
            _ => None,
        };
        steps.push(Step::Send(json_of(&request)));
        steps.push(Step::ExpectAny {
            messages: answers,
            within: wait,
            answer,
            forbid,
        });
    } else {
        steps.push(Step::ExpectAlive { within: wait });
    }
    steps
}

/// Whether the stream is still made of whole frames after the mutation: then a later request must
/// be read as one. Lengths that lie, bytes that are not frames and broken MACs leave the reader
/// rightly lost (or waiting for bytes that never come).
pub fn keeps_framing(m: &Mutated) -> bool {
    match m.family {
        Family::Field | Family::Time => true,
        Family::Frame => !m.what.starts_with("msg_length"),
        Family::Noise => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_depend_on_the_seed_and_index_only_and_cover_every_state_and_family() {
        let mut states = std::collections::BTreeSet::new();
        let mut families = std::collections::BTreeSet::new();
        for role in [Role::Mining, Role::TemplateProvider] {
            states.clear();
            for i in 0..400 {
                assert_eq!(plan(7, i, role), plan(7, i, role));
                let p = plan(7, i, role);
                assert!(p.state.bases(role).contains(&p.base));
                states.insert(p.state);
                families.insert(p.family);
            }
            assert_eq!(states.len(), role.states().len());
        }
        assert_eq!(families.len(), Family::ALL.len());
        assert_ne!(plan(7, 1, Role::Mining), plan(8, 1, Role::Mining));
    }

    #[test]
    fn saved_values_stay_placeholders_where_the_mutation_left_them() {
        let mut saved = Saved::new();
        saved.insert("channel".into(), json!(0x0102_0304u32));
        saved.insert("job".into(), json!(9));
        let mut found = false;
        for index in 0..200 {
            let mut p = plan(1, index, Role::Mining);
            p.base = Base::ShareStandard;
            p.family = Family::Time;
            let m = mutation(&p, &saved).unwrap();
            let hex = m
                .steps
                .iter()
                .find_map(|s| match s {
                    Step::SendHex { hex, .. } => Some(hex),
                    _ => None,
                })
                .expect("a frame");
            found |= hex
                .iter()
                .any(|h| matches!(h, HexPart::Saved { name, .. } if name == "channel"));
            let wire = crate::script::fill(hex, &saved).unwrap();
            assert_eq!(&wire[HEADER_LEN..HEADER_LEN + 4], &[4, 3, 2, 1]);
        }
        assert!(found);
    }
}
