//! Frame vectors: every message at minimal, typical and maximal values (frames_*.json), the
//! extension frames and TLVs (frames_extensions.json), and every strictness rule (strictness.json).

use serde_json::{json, Map, Value};
use sv2_codec::messages::{MessageInfo, Protocol, MESSAGE_TYPES};
use sv2_codec::{to_frame_bytes, Message, Tlv};

use crate::frames::decode_vector;
use crate::gen_types::pattern;
use crate::model::{FrameGroup, FrameTest, Outcome, TestGroup};
use crate::{flags_of, gen_err, FileBuilder, GenerateError, VectorFile};

type R<T> = Result<T, GenerateError>;

const DIFF1_TARGET: &str = "0000000000000000000000000000000000000000000000000000ffff00000000";
const HASH_A: &str = "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b";
const HASH_B: &str = "6fe28c0ab6f1b372c1a6a246ae63f74f931e8365e15a089c68d6190000000000";
const HASH_C: &str = "3ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a";
/// A P2WPKH output paying 0 (CompactSize count 1 in front when a field is CompactSize-prefixed).
const P2WPKH_OUTPUT: &str = "0000000000000000160014e8df018c7e326cc253faac7e46cdc51e68542c42";
/// A witness commitment output (OP_RETURN aa21a9ed + 32 bytes).
const COMMITMENT_OUTPUT: &str =
    "0000000000000000266a24aa21a9ede2f61c3f71d1defd3fa999dfa36953755c690689799962b48bebd836974e8cf9";
const COINBASE_PREFIX: &str =
    "02000000010000000000000000000000000000000000000000000000000000000000000000ffffffff2503a08601";
const COINBASE_SUFFIX: &str =
    "ffffffff0100f2052a010000001600144b7c7e4d0d3cde2d2f6b9a1f9b8e3c2f1a0d4e5f00000000";
const TX: &str = "0200000001aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa000000006a47304402200102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2002200102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f200121020102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20ffffffff0100e1f505000000001976a9140102030405060708090a0b0c0d0e0f101112131488ac00000000";

/// The spec's SetupConnection example (CATALOG §G.2), with its endpoint_host (the unspecified
/// address) replaced by 127.0.0.1: vectors and tests name loopback addresses only.
const SPEC_SETUP_CONNECTION: &str = "000000540000000200020006000000093132372e302e302e31050d074269746d61696e085339692031332e351c62726169696e732d6f732d323031382d30392d32322d312d6861736810736f6d652d6465766963652d75756964";
/// SubmitSharesStandard(1, 2, 3, 4, 5, 0x20000000). CATALOG §G.2 prints it with one extra `00`
/// byte before the version (31 bytes for a 30-byte frame): this is the corrected form.
const SPEC_SUBMIT_SHARES: &str = "00801a180000010000000200000003000000040000000500000000000020";

/// A typical instance of every message, in catalogue order.
fn typical(name: &str, protocol: Protocol) -> Option<Value> {
    let v = match (name, protocol) {
        ("SetupConnection", _) => {
            json!({"protocol": 0, "min_version": 2, "max_version": 2, "flags": 4,
            "endpoint_host": "pool.example.com", "endpoint_port": 34254, "vendor": "sv2-toolkit", "hardware_version": "cpu",
            "firmware": "0.1.0", "device_id": "rig-01"})
        }
        ("SetupConnection.Success", _) => json!({"used_version": 2, "flags": 2}),
        ("SetupConnection.Error", _) => {
            json!({"flags": 4, "error_code": "unsupported-feature-flags"})
        }
        ("ChannelEndpointChanged", _) => json!({"channel_id": 7}),
        ("Reconnect", _) => json!({"new_host": "pool2.example.com", "new_port": 34255}),
        ("OpenStandardMiningChannel", _) => {
            json!({"request_id": 1, "user_identity": "alice.worker1",
            "nominal_hash_rate": 1.4e13, "max_target": DIFF1_TARGET})
        }
        ("OpenStandardMiningChannel.Success", _) => json!({"request_id": 1, "channel_id": 1,
            "target": DIFF1_TARGET, "extranonce_prefix": "00000001", "group_channel_id": 100}),
        ("OpenMiningChannel.Error", _) => {
            json!({"request_id": 1, "error_code": "max-target-out-of-range"})
        }
        ("OpenExtendedMiningChannel", _) => json!({"request_id": 2, "user_identity": "alice.proxy",
            "nominal_hash_rate": 1.0e15, "max_target": DIFF1_TARGET, "min_extranonce_size": 8}),
        ("OpenExtendedMiningChannel.Success", _) => json!({"request_id": 2, "channel_id": 2,
            "target": DIFF1_TARGET, "extranonce_size": 8, "extranonce_prefix": "0000000200000000", "group_channel_id": 100}),
        ("NewMiningJob", _) => {
            json!({"channel_id": 1, "job_id": 1, "min_ntime": null, "version": 0x2000_0000u32, "merkle_root": HASH_A})
        }
        ("UpdateChannel", _) => {
            json!({"channel_id": 2, "nominal_hash_rate": 2.0e15, "maximum_target": DIFF1_TARGET})
        }
        ("UpdateChannel.Error", _) => json!({"channel_id": 2, "error_code": "invalid-channel-id"}),
        ("CloseChannel", _) => json!({"channel_id": 2, "reason_code": "shutting-down"}),
        ("SetExtranoncePrefix", _) => {
            json!({"channel_id": 2, "extranonce_prefix": "0000000300000000"})
        }
        ("SubmitSharesStandard", _) => {
            json!({"channel_id": 1, "sequence_number": 17, "job_id": 1, "nonce": 0x9abc_def0u32, "ntime": 1_700_000_001u32, "version": 0x2000_4000u32})
        }
        ("SubmitSharesExtended", _) => {
            json!({"channel_id": 2, "sequence_number": 10, "job_id": 4, "nonce": 0x1234_5678u32,
            "ntime": 1_700_000_000u32, "version": 0x2000_0000u32, "extranonce": "0102030405060708"})
        }
        ("SubmitShares.Success", _) => {
            json!({"channel_id": 2, "last_sequence_number": 10, "new_submits_accepted_count": 10, "new_shares_sum": 10240})
        }
        ("SubmitShares.Error", _) => {
            json!({"channel_id": 2, "sequence_number": 11, "error_code": "stale-share"})
        }
        ("NewExtendedMiningJob", _) => {
            json!({"channel_id": 2, "job_id": 4, "min_ntime": 1_700_000_000u32, "version": 0x2000_0000u32,
            "version_rolling_allowed": true, "merkle_path": [HASH_A, HASH_C], "coinbase_tx_prefix": COINBASE_PREFIX,
            "coinbase_tx_suffix": COINBASE_SUFFIX})
        }
        ("SetNewPrevHash", Protocol::Mining) => {
            json!({"channel_id": 2, "job_id": 4, "prev_hash": HASH_B, "min_ntime": 1_700_000_000u32, "nbits": 0x1703_a30cu32})
        }
        ("SetTarget", _) => json!({"channel_id": 2, "maximum_target": DIFF1_TARGET}),
        ("SetCustomMiningJob", _) => {
            json!({"channel_id": 2, "request_id": 3, "mining_job_token": "746f6b656e2d31",
            "version": 0x2000_0000u32, "prev_hash": HASH_B, "min_ntime": 1_700_000_000u32, "nbits": 0x1703_a30cu32,
            "coinbase_tx_version": 2, "coinbase_prefix": "03a08601", "coinbase_tx_input_nSequence": 0xffff_ffffu32,
            "coinbase_tx_outputs": format!("01{P2WPKH_OUTPUT}"), "coinbase_tx_locktime": 0, "merkle_path": [HASH_A]})
        }
        ("SetCustomMiningJob.Success", _) => json!({"channel_id": 2, "request_id": 3, "job_id": 5}),
        ("SetCustomMiningJob.Error", _) => {
            json!({"channel_id": 2, "request_id": 3, "error_code": "invalid-mining-job-token"})
        }
        ("SetGroupChannel", _) => json!({"group_channel_id": 100, "channel_ids": [1, 2, 3]}),
        ("AllocateMiningJobToken", _) => json!({"user_identifier": "alice", "request_id": 1}),
        ("AllocateMiningJobToken.Success", _) => {
            json!({"request_id": 1, "mining_job_token": "746f6b656e2d31",
            "coinbase_tx_outputs": format!("01{P2WPKH_OUTPUT}")})
        }
        ("ProvideMissingTransactions", _) => {
            json!({"request_id": 7, "unknown_tx_position_list": [2, 0]})
        }
        ("ProvideMissingTransactions.Success", _) => {
            json!({"request_id": 7, "transaction_list": [TX, TX]})
        }
        ("DeclareMiningJob", _) => {
            json!({"request_id": 7, "mining_job_token": "746f6b656e2d31", "version": 0x2000_0000u32,
            "coinbase_tx_prefix": COINBASE_PREFIX, "coinbase_tx_suffix": COINBASE_SUFFIX, "wtxid_list": [HASH_A, HASH_C], "excess_data": ""})
        }
        ("DeclareMiningJob.Success", _) => {
            json!({"request_id": 7, "new_mining_job_token": "746f6b656e2d32"})
        }
        ("DeclareMiningJob.Error", _) => {
            json!({"request_id": 7, "error_code": "invalid-job-param-value-coinbase", "error_details": ""})
        }
        ("PushSolution", _) => {
            json!({"extranonce": "000000020000000001020304050607", "prev_hash": HASH_B, "nonce": 0x1234_5678u32,
            "ntime": 1_700_000_000u32, "nbits": 0x1703_a30cu32, "version": 0x2000_0000u32})
        }
        ("CoinbaseOutputConstraints", _) => {
            json!({"coinbase_output_max_additional_size": 100, "coinbase_output_max_additional_sigops": 4})
        }
        ("NewTemplate", _) => {
            json!({"template_id": 1, "future_template": true, "version": 0x2000_0000u32, "coinbase_tx_version": 2,
            "coinbase_prefix": "03a08601", "coinbase_tx_input_sequence": 0xffff_ffffu32, "coinbase_tx_value_remaining": 312_500_000u64,
            "coinbase_tx_outputs_count": 1, "coinbase_tx_outputs": COMMITMENT_OUTPUT, "coinbase_tx_locktime": 0, "merkle_path": [HASH_A, HASH_C]})
        }
        ("SetNewPrevHash", Protocol::TemplateDistribution) => {
            json!({"template_id": 1, "prev_hash": HASH_B, "header_timestamp": 1_700_000_000u32,
            "nBits": 0x1703_a30cu32, "target": DIFF1_TARGET})
        }
        ("RequestTransactionData", _) => json!({"template_id": 1}),
        ("RequestTransactionData.Success", _) => {
            json!({"template_id": 1, "excess_data": "", "transaction_list": [TX]})
        }
        ("RequestTransactionData.Error", _) => {
            json!({"template_id": 1, "error_code": "template-id-not-found"})
        }
        ("SubmitSolution", _) => {
            json!({"template_id": 1, "version": 0x2000_0000u32, "header_timestamp": 1_700_000_000u32,
            "header_nonce": 0x1234_5678u32, "coinbase_tx": format!("{COINBASE_PREFIX}0000000000000000{COINBASE_SUFFIX}")})
        }
        ("RequestExtensions", _) => json!({"request_id": 1, "requested_extensions": [2]}),
        ("RequestExtensions.Success", _) => json!({"request_id": 1, "supported_extensions": [2]}),
        ("RequestExtensions.Error", _) => {
            json!({"request_id": 1, "unsupported_extensions": [0x4001], "required_extensions": [2]})
        }
        _ => return None,
    };
    Some(v)
}

/// The JSON name of a field (the spec's two camel-case names differ from the Rust names).
fn json_field(rust: &str) -> &str {
    match rust {
        "n_bits" => "nBits",
        "coinbase_tx_input_n_sequence" => "coinbase_tx_input_nSequence",
        other => other,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Extent {
    Min,
    Max,
}

fn hex_n(n: usize, seed: u8) -> Value {
    Value::String(hex::encode(pattern(n, seed)))
}

fn field_value(sv2_type: &str, extent: Extent, seed: u8) -> R<Value> {
    let min = extent == Extent::Min;
    let v = match sv2_type {
        "U8" => json!(if min { 0 } else { u8::MAX }),
        "U16" => json!(if min { 0 } else { u16::MAX }),
        "U32" => json!(if min { 0 } else { u32::MAX }),
        "U64" => json!(if min { 0 } else { u64::MAX }),
        "F32" => json!(if min { 0.0 } else { f64::from(f32::MAX) }),
        "BOOL" => json!(!min),
        "U256" => json!(if min {
            "00".repeat(32)
        } else {
            "ff".repeat(32)
        }),
        "STR0_255" => json!(if min {
            String::new()
        } else {
            (0..255)
                .map(|i| (b'a' + (i % 26) as u8) as char)
                .collect::<String>()
        }),
        "B0_32" => hex_n(if min { 0 } else { 32 }, seed),
        "B0_255" => hex_n(if min { 0 } else { 255 }, seed),
        "B0_64K" => hex_n(if min { 0 } else { 256 }, seed),
        "OPTION[U32]" => {
            if min {
                Value::Null
            } else {
                json!(u32::MAX)
            }
        }
        "SEQ0_255[U256]" => json!((0..if min { 0 } else { 255 })
            .map(|i| hex_n(32, i as u8))
            .collect::<Vec<_>>()),
        "SEQ0_64K[U16]" => json!((0..if min { 0u32 } else { 256 })
            .map(|i| i * 257)
            .collect::<Vec<_>>()),
        "SEQ0_64K[U32]" => json!((0..if min { 0u32 } else { 256 })
            .map(|i| i.wrapping_mul(16_777_619))
            .collect::<Vec<_>>()),
        "SEQ0_64K[U256]" => json!((0..if min { 0 } else { 256 })
            .map(|i| hex_n(32, i as u8))
            .collect::<Vec<_>>()),
        "SEQ0_64K[B0_16M]" => json!((0..if min { 0 } else { 256 })
            .map(|i| hex_n(if i == 0 { 256 } else { i % 3 }, i as u8))
            .collect::<Vec<_>>()),
        other => return Err(gen_err(format!("no extent rule for field type {other}"))),
    };
    Ok(v)
}

/// `{"message": name, ["protocol": p,] fields...}`.
fn tagged(info: &MessageInfo, fields: Value) -> R<Value> {
    let mut map = Map::new();
    map.insert("message".into(), json!(info.name));
    if MESSAGE_TYPES.iter().filter(|i| i.name == info.name).count() > 1 {
        map.insert(
            "protocol".into(),
            serde_json::to_value(info.protocol).map_err(gen_err)?,
        );
    }
    match fields {
        Value::Object(f) => map.extend(f),
        _ => return Err(gen_err("fields must be an object")),
    }
    Ok(Value::Object(map))
}

fn extent_json(info: &MessageInfo, extent: Extent) -> R<Value> {
    let mut fields = Map::new();
    for (i, f) in info.fields.iter().enumerate() {
        let mut v = field_value(&f.sv2_type(), extent, i as u8)?;
        // SetupConnection.protocol: 2 is the largest defined value; 3..=255 are tested apart.
        if info.name == "SetupConnection" && f.name == "protocol" && extent == Extent::Max {
            v = json!(2);
        }
        fields.insert(json_field(f.name).to_string(), v);
    }
    tagged(info, Value::Object(fields))
}

fn message_of(json: &Value) -> R<Message<'static>> {
    serde_json::from_value(json.clone()).map_err(|e| gen_err(format!("{json}: {e}")))
}

pub(crate) fn frame_of(json: &Value) -> R<Vec<u8>> {
    to_frame_bytes(&message_of(json)?, &[]).map_err(gen_err)
}

fn frame_with_tlvs(json: &Value, tlvs: &[Tlv<'_>]) -> R<Vec<u8>> {
    to_frame_bytes(&message_of(json)?, tlvs).map_err(gen_err)
}

/// A frame with `payload` and the header of `frame`, msg_length set to the payload's length.
fn with_payload(frame: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = frame[..6].to_vec();
    let len = (payload.len() as u32).to_le_bytes();
    out[3..6].copy_from_slice(&len[..3]);
    out.extend_from_slice(payload);
    out
}

/// `frame` with `extra` appended to its payload, msg_length grown to match.
fn with_appended(frame: &[u8], extra: &[u8]) -> Vec<u8> {
    with_payload(frame, &[&frame[6..], extra].concat())
}

fn raw_frame(wire_ext: u16, msg_type: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = wire_ext.to_le_bytes().to_vec();
    out.push(msg_type);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes()[..3]);
    out.extend_from_slice(payload);
    out
}

/// Collects the frame tests of one group.
pub(crate) struct Frames<'b> {
    b: &'b mut FileBuilder,
    description: String,
    tests: Vec<FrameTest>,
}

impl<'b> Frames<'b> {
    pub(crate) fn new(b: &'b mut FileBuilder, description: &str) -> Self {
        Frames {
            b,
            description: description.to_string(),
            tests: Vec::new(),
        }
    }

    pub(crate) fn add(
        &mut self,
        expect: Outcome,
        flags: &[&str],
        comment: &str,
        bytes: &[u8],
    ) -> R<()> {
        let verdict = decode_vector(bytes);
        let tc_id = self.b.id();
        let mut test = FrameTest {
            tc_id,
            comment: comment.to_string(),
            flags: flags_of(flags),
            result: expect,
            message: verdict.message.clone(),
            frame: hex::encode(bytes),
            decoded: None,
            tlvs: None,
            warnings: None,
            reencoded: None,
            error: None,
            error_field: None,
            error_offset: None,
        };
        match (expect, verdict.outcome) {
            (Outcome::Invalid, Ok(a)) => {
                return Err(gen_err(format!(
                    "{}: tcId {tc_id} ({comment}) expected invalid, decoded {}",
                    self.description, a.decoded
                )))
            }
            (Outcome::Valid, Err(r)) => {
                return Err(gen_err(format!(
                    "{}: tcId {tc_id} ({comment}) expected valid, got {} at {:?}",
                    self.description, r.class, r.field
                )))
            }
            (_, Ok(a)) => {
                if a.canonical != bytes {
                    test.reencoded = Some(hex::encode(&a.canonical));
                }
                test.decoded = Some(a.decoded);
                test.tlvs = a.tlvs;
                test.warnings = a.warnings;
            }
            (_, Err(r)) => {
                test.error = Some(r.class);
                test.error_field = r.field;
                test.error_offset = r.offset;
            }
        }
        self.tests.push(test);
        Ok(())
    }

    fn valid(&mut self, flags: &[&str], comment: &str, bytes: &[u8]) -> R<()> {
        self.add(Outcome::Valid, flags, comment, bytes)
    }

    fn invalid(&mut self, flags: &[&str], comment: &str, bytes: &[u8]) -> R<()> {
        self.add(Outcome::Invalid, flags, comment, bytes)
    }

    pub(crate) fn done(self) {
        let group = TestGroup::FrameTest(FrameGroup {
            description: self.description,
            tests: self.tests,
        });
        self.b.group(group);
    }
}

fn typical_of(info: &MessageInfo) -> R<Value> {
    let fields = typical(info.name, info.protocol)
        .ok_or_else(|| gen_err(format!("no typical value for {}", info.name)))?;
    tagged(info, fields)
}

fn find(name: &str, protocol: Option<Protocol>) -> R<&'static MessageInfo> {
    sv2_codec::messages::lookup(name, protocol).map_err(gen_err)
}

fn set(mut json: Value, field: &str, value: Value) -> Value {
    if let Value::Object(map) = &mut json {
        map.insert(field.to_string(), value);
    }
    json
}

/// The message's spec name, with its protocol for "SetNewPrevHash" (the name two protocols use).
fn title(info: &MessageInfo) -> String {
    match info.name {
        "SetNewPrevHash" => format!("{} ({:?})", info.name, info.protocol),
        _ => info.name.to_string(),
    }
}

/// The three extents of every message of `protocols`, then `extra` vectors.
fn message_file(
    algorithm: &str,
    header: &[&str],
    protocols: &[Protocol],
    extra: impl FnOnce(&mut FileBuilder) -> R<()>,
) -> R<VectorFile> {
    let mut b = FileBuilder::new(algorithm, "frame_tests.schema.json", header);
    for info in MESSAGE_TYPES
        .iter()
        .filter(|i| protocols.contains(&i.protocol))
    {
        let title = title(info);
        let mut g = Frames::new(
            &mut b,
            &format!(
                "{title}: extension_type {:#06x}, msg_type {:#04x}, channel_msg {}",
                info.extension_type, info.msg_type, info.channel_msg as u8
            ),
        );
        g.valid(
            &["Minimal"],
            &format!("{title}, every field minimal"),
            &frame_of(&extent_json(info, Extent::Min)?)?,
        )?;
        g.valid(
            &["Typical"],
            &format!("{title}, typical values"),
            &frame_of(&typical_of(info)?)?,
        )?;
        g.valid(
            &["Maximal"],
            &format!("{title}, every field maximal"),
            &frame_of(&extent_json(info, Extent::Max)?)?,
        )?;
        g.done();
    }
    extra(&mut b)?;
    b.finish()
}

const FRAME_HEADER_LINES: &[&str] = &[
    "Each test is ONE whole plain frame (spec §3.2): 6-byte header (extension_type U16 LE with channel_msg = bit 15, msg_type U8, msg_length U24 LE), then msg_length payload bytes.",
    "Valid tests give `decoded`, the message in the toolkit's JSON (codec/JSON.md), and `tlvs`/`warnings` when there are any; re-encoding `decoded` (and `tlvs`) gives `frame` back, or `reencoded` when the input was not canonical.",
    "Invalid tests give `error`, the class (vectors/README.md), and informatively the field and payload offset where sv2-codec reports it.",
];

pub(crate) fn build_message_files() -> R<Vec<(&'static str, VectorFile)>> {
    let common = message_file(
        "SV2 frames: Common messages (spec §3.6)",
        FRAME_HEADER_LINES,
        &[Protocol::Common],
        |b| {
            let mut g = Frames::new(b, "SetupConnection: spec example and sub-protocols");
            let spec = hex::decode(SPEC_SETUP_CONNECTION).map_err(gen_err)?;
            let ours = frame_of(
                &json!({"message": "SetupConnection", "protocol": 0, "min_version": 2, "max_version": 2, "flags": 6,
                "endpoint_host": "127.0.0.1", "endpoint_port": 3333, "vendor": "Bitmain", "hardware_version": "S9i 13.5",
                "firmware": "braiins-os-2018-09-22-1-hash", "device_id": "some-device-uuid"}),
            )?;
            if ours != spec {
                return Err(gen_err(
                    "SetupConnection does not encode to the spec's example",
                ));
            }
            g.valid(
                &["SpecExample"],
                "the SetupConnection example of CATALOG §G.2, its endpoint_host the unspecified address replaced by 127.0.0.1",
                &spec,
            )?;
            let base = typical_of(find("SetupConnection", None)?)?;
            g.valid(
                &["Typical"],
                "Job Declaration (protocol 1) with DECLARE_TX_DATA (flag bit 0)",
                &frame_of(&set(
                    set(base.clone(), "protocol", json!(1)),
                    "flags",
                    json!(1),
                ))?,
            )?;
            g.valid(
                &["Typical"],
                "Template Distribution (protocol 2), no flags",
                &frame_of(&set(
                    set(base.clone(), "protocol", json!(2)),
                    "flags",
                    json!(0),
                ))?,
            )?;
            g.valid(
                &["EdgeValue"],
                "all 32 flag bits set: feature probing (§3.6.1)",
                &frame_of(&set(base.clone(), "flags", json!(u32::MAX)))?,
            )?;
            g.add(
                Outcome::Acceptable,
                &["UndefinedProtocolValue"],
                "protocol 3 (the removed Job Distribution protocol)",
                &frame_of(&set(base.clone(), "protocol", json!(3)))?,
            )?;
            g.add(
                Outcome::Acceptable,
                &["UndefinedProtocolValue"],
                "protocol 255",
                &frame_of(&set(base.clone(), "protocol", json!(255)))?,
            )?;
            g.valid(
                &["NonUtf8String"],
                "vendor bytes ff fe: not UTF-8, kept",
                &frame_of(&set(base, "vendor", json!({"hex": "fffe"})))?,
            )?;
            g.done();
            Ok(())
        },
    )?;

    let mining = message_file(
        "SV2 frames: Mining protocol (spec §5.3)",
        FRAME_HEADER_LINES,
        &[Protocol::Mining],
        |b| {
            let mut g = Frames::new(b, "Mining: options, BOOLs, F32 and other edges");
            let spec = hex::decode(SPEC_SUBMIT_SHARES).map_err(gen_err)?;
            let ours = frame_of(
                &json!({"message": "SubmitSharesStandard", "channel_id": 1, "sequence_number": 2, "job_id": 3, "nonce": 4, "ntime": 5, "version": 0x2000_0000u32}),
            )?;
            if ours != spec {
                return Err(gen_err(
                    "SubmitSharesStandard does not encode to the spec's example",
                ));
            }
            g.valid(&["SpecExample"], "SubmitSharesStandard(1, 2, 3, 4, 5, 0x20000000) of CATALOG §G.2 (the digest prints one extra 00 byte; this is the 30-byte frame)", &spec)?;
            let job = typical_of(find("NewMiningJob", None)?)?;
            g.valid(
                &["OptionNone"],
                "NewMiningJob min_ntime None: a future job",
                &frame_of(&job)?,
            )?;
            g.valid(
                &["OptionSome"],
                "NewMiningJob min_ntime Some(1700000000): a job for the current prev hash",
                &frame_of(&set(job.clone(), "min_ntime", json!(1_700_000_000u32)))?,
            )?;
            g.valid(
                &["OptionSome", "EdgeValue"],
                "NewMiningJob min_ntime Some(0): prefix 01 then zeros, not None",
                &frame_of(&set(job, "min_ntime", json!(0)))?,
            )?;
            let ext = typical_of(find("NewExtendedMiningJob", None)?)?;
            g.valid(
                &["OptionNone"],
                "NewExtendedMiningJob future job, version rolling not allowed",
                &frame_of(&set(
                    set(ext.clone(), "min_ntime", Value::Null),
                    "version_rolling_allowed",
                    json!(false),
                ))?,
            )?;
            // version_rolling_allowed is the byte after channel_id, job_id, OPTION(Some u32), version.
            let frame = frame_of(&ext)?;
            let bool_at = 6 + 4 + 4 + 5 + 4;
            for (byte, comment) in [
                (
                    0x02u8,
                    "version_rolling_allowed byte 0x02: false (only the LSB counts)",
                ),
                (0xfe, "version_rolling_allowed byte 0xfe: false"),
                (0xff, "version_rolling_allowed byte 0xff: true"),
                (0x81, "version_rolling_allowed byte 0x81: true"),
            ] {
                let mut f = frame.clone();
                f[bool_at] = byte;
                g.valid(
                    &["NonCanonicalBool"],
                    &format!("NewExtendedMiningJob {comment}"),
                    &f,
                )?;
            }
            g.valid(&["EdgeValue"], "NewExtendedMiningJob with an empty merkle path (the coinbase is the only transaction)", &frame_of(&set(ext, "merkle_path", json!([])))?)?;
            let open = typical_of(find("OpenStandardMiningChannel", None)?)?;
            // nominal_hash_rate sits after request_id and user_identity.
            let frame = frame_of(&open)?;
            let uid = "alice.worker1".len();
            let rate_at = 6 + 4 + 1 + uid;
            for (bits, comment) in [
                (0x7fc0_0000u32, "quiet NaN"),
                (0x7f80_0000, "+infinity"),
                (0x8000_0000, "-0.0"),
                (0x0000_0001, "the smallest subnormal"),
                (0xff80_0000, "-infinity"),
            ] {
                let mut f = frame.clone();
                f[rate_at..rate_at + 4].copy_from_slice(&bits.to_le_bytes());
                g.valid(&["F32Special"], &format!("OpenStandardMiningChannel nominal_hash_rate {comment} ({bits:#010x}): every bit kept"), &f)?;
            }
            g.valid(
                &["EdgeValue"],
                "UpdateChannel nominal_hash_rate 0.0: a proxy with no devices (§5.3.2)",
                &frame_of(&set(
                    typical_of(find("UpdateChannel", None)?)?,
                    "nominal_hash_rate",
                    json!(0.0),
                ))?,
            )?;
            g.valid(
                &["EdgeValue"],
                "SubmitSharesExtended with a 32-byte extranonce, the B0_32 maximum",
                &frame_of(&set(
                    typical_of(find("SubmitSharesExtended", None)?)?,
                    "extranonce",
                    hex_n(32, 3),
                ))?,
            )?;
            g.valid(
                &["NonUtf8String"],
                "SubmitShares.Error error_code bytes c3 28: not UTF-8, kept",
                &frame_of(&set(
                    typical_of(find("SubmitShares.Error", None)?)?,
                    "error_code",
                    json!({"hex": "c328"}),
                ))?,
            )?;
            g.valid(
                &["EdgeValue"],
                "SetGroupChannel with no member channel",
                &frame_of(&set(
                    typical_of(find("SetGroupChannel", None)?)?,
                    "channel_ids",
                    json!([]),
                ))?,
            )?;
            g.done();
            Ok(())
        },
    )?;

    let jd = message_file(
        "SV2 frames: Job Declaration protocol (spec §6.4)",
        FRAME_HEADER_LINES,
        &[Protocol::JobDeclaration],
        |b| {
            let mut g = Frames::new(b, "Job Declaration: large fields");
            let pmt = typical_of(find("ProvideMissingTransactions", None)?)?;
            g.valid(&["LargeField"], "ProvideMissingTransactions with 65535 positions, the SEQ0_64K maximum: count ff ff", &frame_of(&set(pmt, "unknown_tx_position_list", json!((0..65535u32).collect::<Vec<_>>())))?)?;
            let pmts = typical_of(find("ProvideMissingTransactions.Success", None)?)?;
            g.valid(&["LargeField"], "ProvideMissingTransactions.Success with one 65536-byte transaction: B0_16M prefix 00 00 01", &frame_of(&set(pmts, "transaction_list", json!([hex_n(65536, 1)])))?)?;
            let dmj = typical_of(find("DeclareMiningJob", None)?)?;
            g.valid(
                &["EdgeValue"],
                "DeclareMiningJob with 300 wtxids (count 2c 01) and excess data",
                &frame_of(&set(
                    set(
                        dmj,
                        "wtxid_list",
                        json!((0..300).map(|i| hex_n(32, i as u8)).collect::<Vec<_>>()),
                    ),
                    "excess_data",
                    hex_n(3, 0),
                ))?,
            )?;
            g.done();
            Ok(())
        },
    )?;

    let tdp = message_file(
        "SV2 frames: Template Distribution protocol (spec §7)",
        FRAME_HEADER_LINES,
        &[Protocol::TemplateDistribution],
        |b| {
            let mut g = Frames::new(b, "Template Distribution: BOOLs and large fields");
            let nt = typical_of(find("NewTemplate", None)?)?;
            g.valid(
                &["Typical"],
                "NewTemplate for the current prev hash (future_template false)",
                &frame_of(&set(nt.clone(), "future_template", json!(false)))?,
            )?;
            let frame = frame_of(&nt)?;
            let bool_at = 6 + 8;
            let mut f = frame.clone();
            f[bool_at] = 0xfe;
            g.valid(
                &["NonCanonicalBool"],
                "NewTemplate future_template byte 0xfe: false",
                &f,
            )?;
            f[bool_at] = 0x03;
            g.valid(
                &["NonCanonicalBool"],
                "NewTemplate future_template byte 0x03: true",
                &f,
            )?;
            let ss = typical_of(find("SubmitSolution", None)?)?;
            g.valid(
                &["LargeField"],
                "SubmitSolution with a 65535-byte coinbase_tx, the B0_64K maximum: prefix ff ff",
                &frame_of(&set(ss, "coinbase_tx", hex_n(65535, 2)))?,
            )?;
            let rtds = typical_of(find("RequestTransactionData.Success", None)?)?;
            g.valid(
                &["EdgeValue"],
                "RequestTransactionData.Success with an empty transaction list (only the coinbase)",
                &frame_of(&set(rtds, "transaction_list", json!([])))?,
            )?;
            g.done();
            Ok(())
        },
    )?;

    let ext = message_file(
        "SV2 frames: extensions (Extensions Negotiation 0x0001, Worker-Specific Hashrate Tracking 0x0002, unknown extensions)",
        FRAME_HEADER_LINES,
        &[Protocol::ExtensionsNegotiation],
        extension_extras,
    )?;

    Ok(vec![
        ("frames_common.json", common),
        ("frames_mining.json", mining),
        ("frames_job_declaration.json", jd),
        ("frames_template_distribution.json", tdp),
        ("frames_extensions.json", ext),
    ])
}

fn tlv(extension_type: u16, field_type: u8, length: u16, value: &[u8]) -> Vec<u8> {
    let mut out = extension_type.to_le_bytes().to_vec();
    out.push(field_type);
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(value);
    out
}

fn extension_extras(b: &mut FileBuilder) -> R<()> {
    let mut g = Frames::new(b, "Frames of unknown extensions: valid frames, kept raw");
    g.valid(
        &["UnknownExtension"],
        "extension 0x0002 (defines a TLV, no messages), msg_type 0x00, empty payload",
        &raw_frame(0x0002, 0x00, &[]),
    )?;
    g.valid(
        &["UnknownExtension"],
        "experimental extension 0x4abc, channel_msg 0: discard",
        &raw_frame(0x4abc, 0x01, &[1, 2, 3, 4, 5]),
    )?;
    g.valid(
        &["UnknownExtension"],
        "extension 0x4abc with channel_msg (wire 0xcabc): forward to the owner of channel 7",
        &raw_frame(0xcabc, 0x01, &[7, 0, 0, 0, 0xde, 0xad]),
    )?;
    g.valid(
        &["UnknownExtension", "EdgeValue"],
        "extension 0x7fff, msg_type 0xff (the largest identifiers)",
        &raw_frame(0x7fff, 0xff, &[0]),
    )?;
    g.valid(&["UnknownExtension", "ChannelMsgBitErratum"], "bytes 80 00: extension 0x0080 without channel_msg, NOT a core channel message (the bit is 0x8000)", &raw_frame(0x0080, 0x1a, &hex::decode(&SPEC_SUBMIT_SHARES[12..]).map_err(gen_err)?))?;
    g.done();

    let share = typical_of(find("SubmitSharesExtended", None)?)?;
    let mut g = Frames::new(
        b,
        "Extension 0x0002 user_identity TLV on SubmitSharesExtended, and TLVs in general (§3.4.3)",
    );
    let worker = b"Worker_001";
    g.valid(
        &["UserIdentityTlv", "SpecExample"],
        "the spec's \"Worker_001\" TLV, little-endian: 02 00 01 0a 00 57 6f ...",
        &frame_with_tlvs(
            &share,
            &[Tlv::user_identity("Worker_001").map_err(gen_err)?],
        )?,
    )?;
    g.valid(
        &["UserIdentityTlv", "EdgeValue"],
        "user_identity of 0 bytes",
        &frame_with_tlvs(&share, &[Tlv::user_identity("").map_err(gen_err)?])?,
    )?;
    g.valid(
        &["UserIdentityTlv", "EdgeValue"],
        "user_identity of 32 bytes, the maximum",
        &frame_with_tlvs(
            &share,
            &[Tlv::user_identity("abcdefghijklmnopqrstuvwxyz012345").map_err(gen_err)?],
        )?,
    )?;
    let base = frame_of(&share)?;
    g.invalid(
        &["UserIdentityTlv", "TlvTooLong"],
        "user_identity of 33 bytes: the message MUST be rejected",
        &with_appended(&base, &tlv(2, 1, 33, &pattern(33, b'a'))),
    )?;
    g.invalid(
        &["UserIdentityTlv", "TlvTooLong"],
        "user_identity of 255 bytes (length ff 00)",
        &with_appended(&base, &tlv(2, 1, 255, &[b'w'; 255])),
    )?;
    g.invalid(&["UserIdentityTlv", "TlvEndiannessErratum"], "the spec's example as printed, big-endian 00 02 01 00 0a: read as U16 LE it is TLV 0x0200/0x01 of 2560 bytes, past the end", &with_appended(&base, &[&[0x00, 0x02, 0x01, 0x00, 0x0a][..], worker].concat()))?;
    g.add(
        Outcome::Acceptable,
        &["UserIdentityTlv", "NonUtf8Tlv"],
        "user_identity bytes ff fe: not UTF-8 (accepted, reported)",
        &with_appended(&base, &tlv(2, 1, 2, &[0xff, 0xfe])),
    )?;
    g.valid(
        &["UnknownTlv"],
        "an unknown TLV 0x4001/0x07 after the last field: ignored",
        &with_appended(&base, &tlv(0x4001, 7, 3, &[1, 2, 3])),
    )?;
    g.valid(
        &["UserIdentityTlv", "UnknownTlv"],
        "user_identity then an unknown TLV, sorted by extension_type",
        &with_appended(
            &base,
            &[tlv(2, 1, 10, worker), tlv(0x4001, 7, 0, &[])].concat(),
        ),
    )?;
    g.add(
        Outcome::Acceptable,
        &["UserIdentityTlv", "UnknownTlv", "TlvOrder"],
        "an unknown TLV of 0x4001 before user_identity (not sorted)",
        &with_appended(
            &base,
            &[tlv(0x4001, 7, 0, &[]), tlv(2, 1, 10, worker)].concat(),
        ),
    )?;
    g.valid(
        &["UnknownTlv"],
        "a 0x0002 field_type 0x02 (undefined field): unknown, ignored",
        &with_appended(&base, &tlv(2, 2, 40, &pattern(40, 0))),
    )?;
    let std_share = frame_of(&typical_of(find("SubmitSharesStandard", None)?)?)?;
    g.valid(&["UnknownTlv"], "user_identity TLV on SubmitSharesStandard: ext 0x0002 defines it for SubmitSharesExtended only, so it is unknown here (even at 40 bytes)", &with_appended(&std_share, &tlv(2, 1, 40, &pattern(40, b'a'))))?;
    let setup = frame_of(&typical_of(find("SetupConnection", None)?)?)?;
    g.valid(
        &["UnknownTlv"],
        "an unknown TLV on SetupConnection: any message may carry TLVs",
        &with_appended(&setup, &tlv(0x4002, 1, 1, &[9])),
    )?;
    g.invalid(
        &["MalformedTlv"],
        "a TLV whose length (10) runs past the payload (4 bytes)",
        &with_appended(&base, &tlv(0x4001, 7, 10, &[1, 2, 3, 4])),
    )?;
    g.invalid(
        &["MalformedTlv", "TrailingByte"],
        "a good user_identity TLV then 3 stray bytes",
        &with_appended(&base, &[tlv(2, 1, 10, worker), vec![1, 2, 3]].concat()),
    )?;
    g.done();
    Ok(())
}

pub(crate) fn build_strictness() -> R<VectorFile> {
    let mut b = FileBuilder::new(
        "SV2 frames: strictness rules",
        "frame_tests.schema.json",
        &[
            FRAME_HEADER_LINES[0],
            "Every test breaks one rule of spec §3.1/§3.2/§8 in an otherwise typical frame (frames_*.json) and must be refused with the stated class.",
            "Where a test is valid (the rule allows it), it says so.",
        ],
    );
    let typicals: Vec<(&MessageInfo, Vec<u8>)> = MESSAGE_TYPES
        .iter()
        .map(|i| Ok((i, frame_of(&typical_of(i)?)?)))
        .collect::<R<_>>()?;

    let mut g = Frames::new(
        &mut b,
        "channel_msg bit flipped (§3.2, §8): every message has exactly one correct bit",
    );
    for (info, frame) in &typicals {
        let mut f = frame.clone();
        f[1] ^= 0x80;
        let what = if info.channel_msg { "cleared" } else { "set" };
        g.invalid(
            &["ChannelMsgBit"],
            &format!("{} with channel_msg {what}", title(info)),
            &f,
        )?;
    }
    g.done();

    let mut g = Frames::new(
        &mut b,
        "one trailing byte after the last field (§3.4.3: a lone byte is not a TLV)",
    );
    for (info, frame) in &typicals {
        g.invalid(
            &["TrailingByte"],
            &format!("{} with one 00 byte appended (msg_length + 1)", title(info)),
            &with_appended(frame, &[0]),
        )?;
    }
    g.done();

    let mut g = Frames::new(
        &mut b,
        "payload cut by one byte, msg_length agreeing: the last field is truncated",
    );
    for (info, frame) in &typicals {
        g.invalid(
            &["Truncated"],
            &format!("{} without its last byte (msg_length - 1)", title(info)),
            &with_payload(frame, &frame[6..frame.len() - 1]),
        )?;
    }
    g.done();

    let mut g = Frames::new(&mut b, "msg_length disagreeing with the bytes present");
    let share = &typicals
        .iter()
        .find(|(i, _)| i.name == "SubmitSharesStandard")
        .ok_or_else(|| gen_err("share"))?
        .1;
    let setup = &typicals
        .iter()
        .find(|(i, _)| i.name == "SetupConnection")
        .ok_or_else(|| gen_err("setup"))?
        .1;
    let set_len = |frame: &[u8], len: u32| {
        let mut f = frame.to_vec();
        f[3..6].copy_from_slice(&len.to_le_bytes()[..3]);
        f
    };
    g.invalid(
        &["LengthMismatch"],
        "SubmitSharesStandard with msg_length 25, 24 bytes present",
        &set_len(share, 25),
    )?;
    g.invalid(
        &["LengthMismatch"],
        "SubmitSharesStandard with msg_length 23, 24 bytes present (one byte after the frame)",
        &set_len(share, 23),
    )?;
    g.invalid(
        &["LengthMismatch"],
        "SubmitSharesStandard with msg_length 0, 24 bytes present",
        &set_len(share, 0),
    )?;
    g.invalid(
        &["LengthMismatch", "U24Max"],
        "SubmitSharesStandard with msg_length 2^24 - 1, 24 bytes present",
        &set_len(share, 0xff_ffff),
    )?;
    g.invalid(
        &["LengthMismatch"],
        "SetupConnection with msg_length 81, 82 bytes present",
        &set_len(setup, 81),
    )?;
    g.invalid(
        &["LengthMismatch"],
        "SetupConnection header alone, msg_length 82",
        &setup[..6],
    )?;
    g.invalid(&["IncompleteHeader"], "no byte at all", &[])?;
    g.invalid(
        &["IncompleteHeader"],
        "5 of the 6 header bytes",
        &share[..5],
    )?;
    g.done();

    let mut g = Frames::new(&mut b, "B0_32 longer than 32 bytes (§3.1)");
    for (name, field) in [
        ("OpenStandardMiningChannel.Success", "extranonce_prefix"),
        ("OpenExtendedMiningChannel.Success", "extranonce_prefix"),
        ("SetExtranoncePrefix", "extranonce_prefix"),
        ("SubmitSharesExtended", "extranonce"),
        ("PushSolution", "extranonce"),
    ] {
        let marker = pattern(32, 77);
        let base = frame_of(&set(
            typical_of(find(name, None)?)?,
            field,
            json!(hex::encode(&marker)),
        ))?;
        let needle = [&[32u8][..], &marker].concat();
        let at = base
            .windows(needle.len())
            .position(|w| w == needle)
            .ok_or_else(|| gen_err(format!("{name}.{field}: marker not found")))?;
        let mut payload = base[6..at].to_vec();
        payload.push(33);
        payload.extend_from_slice(&marker);
        payload.push(0xee);
        payload.extend_from_slice(&base[at + needle.len()..]);
        g.invalid(
            &["B0_32Bound"],
            &format!("{name}.{field} of 33 bytes (all present)"),
            &with_payload(&base, &payload),
        )?;
        if name == "SubmitSharesExtended" {
            let mut payload = base[6..at].to_vec();
            payload.push(0xff);
            payload.extend(pattern(255, 1));
            g.invalid(
                &["B0_32Bound"],
                &format!("{name}.{field} with prefix 0xff (255 bytes present)"),
                &with_payload(&base, &payload),
            )?;
        }
    }
    g.done();

    let mut g = Frames::new(&mut b, "OPTION[U32] prefix other than 0 or 1 (§3.1)");
    for (name, prefix) in [
        ("NewMiningJob", 2u8),
        ("NewMiningJob", 0xff),
        ("NewExtendedMiningJob", 2),
    ] {
        let mut f = frame_of(&set(
            typical_of(find(name, None)?)?,
            "min_ntime",
            json!(1_700_000_000u32),
        ))?;
        // min_ntime follows channel_id and job_id.
        f[6 + 8] = prefix;
        g.invalid(
            &["OptionPrefix"],
            &format!("{name}.min_ntime with prefix {prefix:#04x}"),
            &f,
        )?;
    }
    g.done();

    let mut g = Frames::new(
        &mut b,
        "lengths and counts past the end of the payload (a decoder must not allocate from them)",
    );
    let nemj = frame_of(&typical_of(find("NewExtendedMiningJob", None)?)?)?;
    let path_at = 6 + 4 + 4 + 5 + 4 + 1;
    let mut f = nemj.clone();
    f[path_at] = 255;
    g.invalid(
        &["CountPastEnd"],
        "NewExtendedMiningJob.merkle_path count 255 over 2 hashes and the coinbase parts",
        &f,
    )?;
    let pmt = frame_of(&typical_of(find("ProvideMissingTransactions", None)?)?)?;
    let mut f = pmt.clone();
    f[6 + 4] = 0xff;
    f[6 + 5] = 0xff;
    g.invalid(
        &["CountPastEnd"],
        "ProvideMissingTransactions.unknown_tx_position_list count 65535 over 2 elements",
        &f,
    )?;
    let rtds = frame_of(&typical_of(find("RequestTransactionData.Success", None)?)?)?;
    // transaction_list: template_id (8), excess_data (2 + 0), count (2), first B0_16M length (3).
    let mut f = rtds.clone();
    f[6 + 12..6 + 15].copy_from_slice(&[0xff, 0xff, 0xff]);
    g.invalid(
        &["CountPastEnd", "U24Max"],
        "RequestTransactionData.Success transaction of 2^24 - 1 bytes claimed",
        &f,
    )?;
    let mut f = nemj.clone();
    let prefix_at = path_at + 1 + 64;
    f[prefix_at] = 0xff;
    f[prefix_at + 1] = 0xff;
    g.invalid(
        &["CountPastEnd"],
        "NewExtendedMiningJob.coinbase_tx_prefix of 65535 bytes claimed",
        &f,
    )?;
    let mut f = setup.clone();
    f[6 + 9] = 200;
    g.invalid(
        &["CountPastEnd"],
        "SetupConnection.endpoint_host of 200 bytes claimed",
        &f,
    )?;
    g.done();

    let mut g = Frames::new(
        &mut b,
        "msg_types no message has (CATALOG H.14: the spec does not say whether to drop or close)",
    );
    for (wire_ext, msg_type, comment) in [
        (0x0000u16, 0x05u8, "core 0x05, after Reconnect"),
        (0x0000, 0x0f, "core 0x0f, before the Mining range"),
        (
            0x8000,
            0x1e,
            "core 0x1e, reserved (NewMiningJob in 2022), with channel_msg",
        ),
        (0x0000, 0x26, "core 0x26, after SetGroupChannel"),
        (
            0x0000,
            0x52,
            "core 0x52 (AllocateMiningJobToken.Error in 2022, removed)",
        ),
        (0x0000, 0x61, "core 0x61, after PushSolution"),
        (0x0000, 0x77, "core 0x77, after SubmitSolution"),
        (0x0000, 0xff, "core 0xff"),
        (0x0001, 0x03, "extension 0x0001 msg_type 0x03"),
        (0x0001, 0xff, "extension 0x0001 msg_type 0xff"),
    ] {
        g.invalid(
            &["UnknownMessageType"],
            comment,
            &raw_frame(wire_ext, msg_type, &[0, 0, 0, 0]),
        )?;
    }
    g.done();

    b.finish()
}
