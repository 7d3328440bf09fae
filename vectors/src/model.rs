//! The vector file format (see `vectors/README.md` and `vectors/schema/`): serde types used both to
//! write the files and to read them back for verification. Unknown keys are refused on input, so a
//! typo in a hand-edited file is an error, not a silently skipped check.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One vector file: a family of test groups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VectorFile {
    /// What the file tests, e.g. "SV2 frames: Mining protocol".
    pub algorithm: String,
    /// The JSON Schema file (in `vectors/schema/`) the file follows.
    pub schema: String,
    /// Total number of tests in all groups.
    pub number_of_tests: usize,
    /// Free text: where the vectors come from, what they cover.
    pub header: Vec<String>,
    /// Every flag used by a test of this file, with its meaning.
    pub notes: BTreeMap<String, Note>,
    pub test_groups: Vec<TestGroup>,
}

/// The meaning of a flag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Note {
    /// BASIC, EDGE_CASE, MALFORMED, STRICTNESS, SPEC_ERRATUM, AMBIGUOUS, FUNCTIONALITY.
    pub bug_type: String,
    pub description: String,
}

/// What a correct implementation does with a test's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Must be accepted, with the stated result.
    Valid,
    /// Must be refused, with the stated error class.
    Invalid,
    /// The spec allows accepting or refusing; the test records what sv2-codec does.
    Acceptable,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Valid => "valid",
            Outcome::Invalid => "invalid",
            Outcome::Acceptable => "acceptable",
        }
    }
}

/// A group of tests of one kind, tagged by `"type"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum TestGroup {
    /// One SV2 data type decoded from bytes.
    TypeTest(TypeGroup),
    /// One whole plain frame decoded into a message.
    FrameTest(FrameGroup),
    /// A Noise NX handshake from fixed keys.
    NoiseHandshakeTest(NoiseGroup),
    /// A certificate (SIGNATURE_NOISE_MESSAGE) checked against an authority key at a time.
    CertificateTest(CertificateGroup),
    /// An authority public key's base58check encoding.
    AuthorityKeyTest(AuthorityKeyGroup),
    /// A secret key's base58check encoding (the reference implementation's configuration format).
    SecretKeyTest(SecretKeyGroup),
    /// A `stratum2+tcp://host:port/<authority key>` URL.
    UrlTest(UrlGroup),
    /// One plain frame encrypted for the transport.
    EncryptedFrameTest(EncryptedGroup),
}

/// `$body` with `$g` bound to the group, whatever its kind (every group has `tests`).
macro_rules! each_kind {
    ($group:expr, $g:ident => $body:expr) => {
        match $group {
            TestGroup::TypeTest($g) => $body,
            TestGroup::FrameTest($g) => $body,
            TestGroup::NoiseHandshakeTest($g) => $body,
            TestGroup::CertificateTest($g) => $body,
            TestGroup::AuthorityKeyTest($g) => $body,
            TestGroup::SecretKeyTest($g) => $body,
            TestGroup::UrlTest($g) => $body,
            TestGroup::EncryptedFrameTest($g) => $body,
        }
    };
}

impl TestGroup {
    pub fn len(&self) -> usize {
        each_kind!(self, g => g.tests.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `(tcId, result, flags)` of every test, in order.
    pub fn summaries(&self) -> Vec<(u32, Outcome, &[String])> {
        fn of<T: Summary>(tests: &[T]) -> Vec<(u32, Outcome, &[String])> {
            tests
                .iter()
                .map(|t| (t.tc_id(), t.result(), t.flags()))
                .collect()
        }
        each_kind!(self, g => of(&g.tests))
    }
}

/// The fields every test has.
pub trait Summary {
    fn tc_id(&self) -> u32;
    fn result(&self) -> Outcome;
    fn flags(&self) -> &[String];
    fn comment(&self) -> &str;
}

macro_rules! summary {
    ($($t:ty),*) => {$(
        impl Summary for $t {
            fn tc_id(&self) -> u32 { self.tc_id }
            fn result(&self) -> Outcome { self.result }
            fn flags(&self) -> &[String] { &self.flags }
            fn comment(&self) -> &str { &self.comment }
        }
    )*};
}
summary!(
    TypeTest,
    FrameTest,
    NoiseTest,
    CertificateTest,
    AuthorityKeyTest,
    SecretKeyTest,
    UrlTest,
    EncryptedTest
);

/// A group of tests that needs nothing but a description (frames, keys, URLs, encrypted frames).
/// Groups with more (`TypeGroup`, `NoiseGroup`, `CertificateGroup`) have their own struct.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Group<T> {
    /// What the group covers.
    pub description: String,
    pub tests: Vec<T>,
}

// ---------------------------------------------------------------------------------------------
// Data types

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TypeGroup {
    /// The SV2 type name as in spec §3.1, e.g. `B0_32`, `OPTION[U32]`, `SEQ0_64K[U16]`; or
    /// `FRAME_HEADER` for the 6-byte plain frame header (§3.2).
    pub data_type: String,
    pub tests: Vec<TypeTest>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TypeTest {
    pub tc_id: u32,
    pub comment: String,
    pub flags: Vec<String>,
    pub result: Outcome,
    /// The bytes to decode; a valid value uses all of them.
    pub encoded: String,
    /// The decoded value in the toolkit's JSON (codec/JSON.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    /// The canonical re-encoding, when it differs from `encoded` (a non-canonical BOOL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reencoded: Option<String>,
    /// The error class of an invalid test (see the file's header and vectors/README.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Frames

pub type FrameGroup = Group<FrameTest>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FrameTest {
    pub tc_id: u32,
    pub comment: String,
    pub flags: Vec<String>,
    pub result: Outcome,
    /// The spec name of the message the header's (extension_type, msg_type) identifies; null when it
    /// identifies none (unknown extension or msg_type).
    pub message: Option<String>,
    /// The whole frame in hex: 6-byte header, then the payload.
    pub frame: String,
    /// The decoded message (codec/JSON.md) of a valid or accepted test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoded: Option<Value>,
    /// TLVs after the message's last field, when there are any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tlvs: Option<Vec<Value>>,
    /// What was accepted but is worth reporting (non-canonical BOOL, unknown TLV, non-UTF-8 value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warnings: Option<Vec<Value>>,
    /// The canonical re-encoding of `decoded` when it differs from `frame`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reencoded: Option<String>,
    /// The error class of an invalid (or refused acceptable) test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The field the error is reported at (informative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_field: Option<String>,
    /// The payload offset where that field starts (informative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_offset: Option<usize>,
}

// ---------------------------------------------------------------------------------------------
// Noise handshake

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NoiseGroup {
    pub description: String,
    /// `Noise_NX_Secp256k1+EllSwift_ChaChaPoly_SHA256`.
    pub protocol_name: String,
    pub tests: Vec<NoiseTest>,
}

/// A key given by its secret and the 32 auxiliary bytes of its ElligatorSwift encoding
/// (libsecp256k1 `secp256k1_ellswift_create(ctx, ell64, seckey32, auxrnd32)`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EllSwiftKey {
    pub secret: String,
    pub aux: String,
    /// The 64-byte ElligatorSwift encoding (u || t) these give.
    pub ellswift: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InitiatorInput {
    pub ephemeral: EllSwiftKey,
    /// The x-only authority key the certificate must be signed by.
    pub authority_public_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResponderInput {
    pub ephemeral: EllSwiftKey,
    #[serde(rename = "static")]
    pub static_key: EllSwiftKey,
    /// The SIGNATURE_NOISE_MESSAGE the responder sends (encrypted) in act 2.
    pub certificate: CertificateFields,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CertificateFields {
    pub version: u16,
    pub valid_from: u32,
    pub not_valid_after: u32,
    /// BIP340 signature (64 bytes).
    pub signature: String,
    /// The 74-byte SIGNATURE_NOISE_MESSAGE.
    pub signature_noise_message: String,
}

/// One step of a handshake: the state after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TraceEntry {
    /// `init`, `mix_hash(prologue)`, `mix_hash(e)`, `encrypt_and_hash(payload)`, `mix_key(ee)`, ...
    pub step: String,
    /// The step's input: the bytes hashed, the DH output mixed, the plaintext; `k1 || k2` for `split`.
    pub input: String,
    pub h: String,
    pub ck: String,
    /// The handshake cipher key after the step (null before the first MixKey).
    pub k: Option<String>,
}

/// How the bytes handed to the initiator differ from the responder's act 2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Mutation {
    pub description: String,
    /// Byte offset in act 2 that is XORed with `xor` (absent for a truncation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xor: Option<u8>,
    /// Act 2 is cut to this many bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncate_to: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HandshakeOutput {
    /// The final h (channel binding).
    pub handshake_hash: String,
    /// Initiator -> responder traffic key.
    pub c1: String,
    /// Responder -> initiator traffic key.
    pub c2: String,
    /// The x-only key the certificate signs (the responder's static key, decoded from EllSwift).
    pub responder_static_xonly: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NoiseTest {
    pub tc_id: u32,
    pub comment: String,
    pub flags: Vec<String>,
    pub result: Outcome,
    pub initiator: InitiatorInput,
    pub responder: ResponderInput,
    /// The initiator's clock (unix seconds) when act 2 arrives.
    pub now: u32,
    /// Clock skew allowed on both ends of the validity window (sv2-codec and SRI: 10 s).
    pub skew_secs: u32,
    pub act1: String,
    /// The responder's act 2.
    pub act2: String,
    /// Present when the initiator receives other bytes than `act2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mutation: Option<Mutation>,
    /// The bytes the initiator receives (`act2` after the mutation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_act2: Option<String>,
    pub responder_trace: Vec<TraceEntry>,
    /// The initiator's steps, up to the failure for an invalid test.
    pub initiator_trace: Vec<TraceEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<HandshakeOutput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Certificates

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CertificateGroup {
    pub description: String,
    /// The x-only authority key certificates are checked against.
    pub authority_public_key: String,
    pub tests: Vec<CertificateTest>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CertificateTest {
    pub tc_id: u32,
    pub comment: String,
    pub flags: Vec<String>,
    pub result: Outcome,
    /// The x-only server static key the certificate is for.
    pub server_public_key: String,
    /// The 74 bytes: version U16, valid_from U32, not_valid_after U32, signature 64.
    pub signature_noise_message: String,
    pub version: u16,
    pub valid_from: u32,
    pub not_valid_after: u32,
    /// SHA256(version || valid_from || not_valid_after || server_public_key), the BIP340 message.
    pub signed_digest: String,
    pub now: u32,
    pub skew_secs: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Keys and URLs

pub type AuthorityKeyGroup = Group<AuthorityKeyTest>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthorityKeyTest {
    pub tc_id: u32,
    pub comment: String,
    pub flags: Vec<String>,
    pub result: Outcome,
    /// base58check([0x01, 0x00] || xonly).
    pub base58: String,
    /// The x-only key of a valid test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// The decoded base58check payload (version prefix and key) of a valid test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

pub type SecretKeyGroup = Group<SecretKeyTest>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretKeyTest {
    pub tc_id: u32,
    pub comment: String,
    pub flags: Vec<String>,
    pub result: Outcome,
    /// base58check(secret32), no prefix.
    pub base58: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Its x-only public key, as an authority key would be published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key_base58: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

pub type UrlGroup = Group<UrlTest>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UrlTest {
    pub tc_id: u32,
    pub comment: String,
    pub flags: Vec<String>,
    pub result: Outcome,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Encrypted framing

pub type EncryptedGroup = Group<EncryptedTest>;

/// A plaintext payload too large to print: byte `i` is `(i * multiplier + offset) % modulus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PayloadRule {
    pub length: usize,
    pub multiplier: u64,
    pub offset: u64,
    pub modulus: u64,
}

impl PayloadRule {
    /// The bytes the rule describes (`modulus` 0 is treated as 256).
    pub fn bytes(&self) -> Vec<u8> {
        let modulus = if self.modulus == 0 || self.modulus > 256 {
            256
        } else {
            self.modulus
        };
        (0..self.length as u64)
            .map(|i| (i.wrapping_mul(self.multiplier).wrapping_add(self.offset) % modulus) as u8)
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EncryptedTest {
    pub tc_id: u32,
    pub comment: String,
    pub flags: Vec<String>,
    pub result: Outcome,
    /// The ChaCha20-Poly1305 key of this direction.
    pub key: String,
    /// The nonce counter of the first AEAD call (header).
    pub nonce: u64,
    /// The 6-byte plain header; its msg_length is the plaintext payload length.
    pub header: String,
    /// The plaintext payload in hex, for payloads up to 1024 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    /// The plaintext payload by rule, for larger ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_rule: Option<PayloadRule>,
    /// Length of every AEAD output in order: 22 for the header, then each block (chunk + 16).
    pub block_lengths: Vec<usize>,
    /// The whole encrypted frame, for frames up to 2048 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ciphertext: Option<String>,
    /// SHA-256 of the whole encrypted frame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ciphertext_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ciphertext_length: Option<usize>,
    /// The first 64 bytes (22-byte encrypted header, then the start of block 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ciphertext_head: Option<String>,
    /// The last 64 bytes (ending with the last tag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ciphertext_tail: Option<String>,
    /// The nonce counter after the frame (unchanged when encryption is refused).
    pub next_nonce: u64,
    /// For an invalid test: how the received bytes differ from the encrypted frame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mutation: Option<Mutation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Which AEAD call fails: `header` or `block N` (0-based).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_step: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::TestGroup;

    /// `deny_unknown_fields` holds for the generic `Group<T>` and for the tests inside it.
    #[test]
    fn unknown_keys_are_refused() {
        let parse = |s: &str| serde_json::from_str::<TestGroup>(s);
        let test = r#"{"tcId":1,"comment":"","flags":[],"result":"valid","url":"u""#;
        assert!(parse(&format!(
            r#"{{"type":"UrlTest","description":"d","tests":[{test}}}]}}"#
        ))
        .is_ok());
        assert!(parse(r#"{"type":"UrlTest","description":"d","tests":[],"extra":1}"#).is_err());
        assert!(parse(&format!(
            r#"{{"type":"UrlTest","description":"d","tests":[{test},"extra":1}}]}}"#
        ))
        .is_err());
    }
}
