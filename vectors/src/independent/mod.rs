//! Independent checks: the vectors re-checked without sv2-codec and without the generator's helpers,
//! from the spec (CATALOG B-D, spec §3.2, §4, §8) and second implementations of the primitives:
//!
//! - Noise NX: every step written here (SHA-256 and HMAC from `sha2`/`hmac`, the spec's HKDF,
//!   MixHash, MixKey, EncryptAndHash, DecryptAndHash, Split); AEAD from RustCrypto
//!   `chacha20poly1305` (sv2-codec builds its AEAD from raw `chacha20` and `poly1305`);
//!   ElligatorSwift decoding (BIP324 `XSwiftEC`, written here on `k256`'s field arithmetic) and the
//!   BIP324 x-only ECDH on `k256` (sv2-codec uses libsecp256k1). `snow` has no secp256k1 and no
//!   ElligatorSwift, so it cannot run this handshake.
//! - Certificates and keys: BIP340 verification, `lift_x` and public keys with `k256`;
//!   base58check written here.
//! - Encrypted framing: RustCrypto `chacha20poly1305`, chunking from the spec.
//! - Frames: the 6-byte header against the spec's message table (name, channel_msg bit, length).
//!
//! Only the serde model of the files (`crate::model`) is shared with the rest of the crate.

mod aead;
mod cert;
mod curve;
mod frames;
mod keys;
mod noise;
mod transport;

use crate::model::{Mutation, TestGroup};

pub(crate) type Check = Result<(), String>;

pub(crate) fn eq<T: PartialEq + std::fmt::Debug>(what: &str, found: T, expected: T) -> Check {
    if found == expected {
        Ok(())
    } else {
        Err(format!(
            "{what}: recomputed {found:?}, the vector has {expected:?}"
        ))
    }
}

fn unhex(what: &str, s: &str) -> Result<Vec<u8>, String> {
    hex::decode(s).map_err(|e| format!("{what}: bad hex: {e}"))
}

fn hex32(what: &str, s: &str) -> Result<[u8; 32], String> {
    unhex(what, s)?
        .try_into()
        .map_err(|_| format!("{what}: not 32 bytes"))
}

fn hex64(what: &str, s: &str) -> Result<[u8; 64], String> {
    unhex(what, s)?
        .try_into()
        .map_err(|_| format!("{what}: not 64 bytes"))
}

/// The bytes a mutation describes: byte `offset` XORed with `xor`, then a cut to `truncateTo`.
fn apply_mutation(bytes: &[u8], m: &Mutation) -> Vec<u8> {
    let mut out = bytes.to_vec();
    if let (Some(offset), Some(xor)) = (m.offset, m.xor) {
        if let Some(b) = out.get_mut(offset) {
            *b ^= xor;
        }
    }
    if let Some(len) = m.truncate_to {
        out.truncate(len);
    }
    out
}

/// The independent check of every test of a group, in order; `None` for a test no independent
/// check covers.
pub(crate) fn check_group(group: &TestGroup) -> Vec<Option<Check>> {
    fn all<T>(tests: &[T], check: impl Fn(&T) -> Check) -> Vec<Option<Check>> {
        tests.iter().map(|t| Some(check(t))).collect()
    }
    match group {
        TestGroup::TypeTest(g) if g.data_type == "FRAME_HEADER" => {
            all(&g.tests, frames::check_header_type)
        }
        TestGroup::TypeTest(g) => g.tests.iter().map(|_| None).collect(),
        TestGroup::FrameTest(g) => all(&g.tests, frames::check_frame),
        TestGroup::NoiseHandshakeTest(g) => all(&g.tests, noise::check),
        TestGroup::CertificateTest(g) => all(&g.tests, |t| cert::check(&g.authority_public_key, t)),
        TestGroup::AuthorityKeyTest(g) => all(&g.tests, keys::check_authority),
        TestGroup::SecretKeyTest(g) => all(&g.tests, keys::check_secret),
        TestGroup::UrlTest(g) => all(&g.tests, keys::check_url),
        TestGroup::EncryptedFrameTest(g) => all(&g.tests, transport::check),
    }
}

/// Who confirms what, for one kind of group.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Coverage {
    /// What the independent checks confirm, and with which implementation ("" for nothing).
    pub independent: &'static str,
    /// What they leave out, and why ("" for nothing).
    pub not_independent: &'static str,
    /// What the SRI-based tests of `interop/` confirm ("" for nothing).
    pub sri: &'static str,
}

const SRI_FRAMES: &str = "interop/tests/vectors.rs: every frame decoded by SRI's codec (codec_sv2 \
     7.0.0) and compared with `decoded`; disagreements listed in interop/tests/data/vectors_sri.txt";

pub(crate) fn coverage(group: &TestGroup) -> Coverage {
    let c = |independent, not_independent, sri| Coverage {
        independent,
        not_independent,
        sri,
    };
    match group {
        TestGroup::TypeTest(g) if g.data_type == "FRAME_HEADER" => c(
            "FRAME_HEADER: the 6 bytes decoded from the spec's layout (§3.2), written here",
            "",
            "",
        ),
        TestGroup::TypeTest(_) => c(
            "",
            "every data type but FRAME_HEADER: checked only through sv2-codec; no second \
             implementation confirms types.json",
            "",
        ),
        TestGroup::FrameTest(_) => c(
            "the header against the spec's message table (§8), written here: message name, \
             channel_msg bit, msg_length against the payload, unknown msg_type, and the error \
             class when the header decides it",
            "the payload: fields, values, TLVs, payload error classes",
            SRI_FRAMES,
        ),
        TestGroup::NoiseHandshakeTest(_) => c(
            "both sides re-run from the vector's secrets: every trace step (step, input, h, ck, \
             k), act 1, act 2, the received act 2, outcome and error class, handshake hash, c1, \
             c2, the responder's x-only key. Noise steps and HKDF written from the spec (sha2, \
             hmac); AEAD: RustCrypto chacha20poly1305; ElligatorSwift decoding (BIP324 XSwiftEC, \
             written here on k256 field arithmetic) and BIP324 x-only ECDH on k256; certificate: \
             k256 BIP340",
            "how each `ellswift` follows from its `aux` (libsecp256k1's ellswift_create; BIP324 \
             does not define it): only that it encodes x(secret·G). snow cannot run this \
             handshake (no secp256k1, no ElligatorSwift)",
            "interop/tests/vectors_noise.rs: `ellswift` = ellswift_create(secret, aux) with SRI's \
             secp256k1 0.28; SRI's initiator and responder on the vector's keys, certificate, \
             mutation and time (not h/ck/k: SRI encodes its own keys)",
        ),
        TestGroup::CertificateTest(_) => c(
            "fields read from the 74 bytes, signedDigest (sha2), the BIP340 signature with k256 \
             (libsecp256k1 made them), server key validity, the window at `now` with skew, the \
             error class",
            "",
            "interop/tests/vectors_noise.rs: each certificate through SRI's initiator",
        ),
        TestGroup::AuthorityKeyTest(_) => c(
            "authority keys: base58check written here, length, version prefix, x-only validity \
             (k256 lift_x), re-encoding, the error class",
            "BASE58_TOO_LONG is sv2-codec's 64-character limit, not the spec's: only the refusal \
             is confirmed",
            "interop/tests/vectors_noise.rs: SRI's key-utils 1.2.0",
        ),
        TestGroup::SecretKeyTest(_) => c(
            "secret keys: base58check written here, range [1, n) and x-only public key with k256, \
             both re-encodings",
            "",
            "interop/tests/vectors_noise.rs: SRI's key-utils 1.2.0",
        ),
        TestGroup::UrlTest(_) => c(
            "URLs: a stratum2+tcp:// reader written here (host, IPv6 in brackets, port, key)",
            "",
            "interop/tests/vectors_noise.rs: of a URL, the key only (SRI has no URL parser)",
        ),
        TestGroup::EncryptedFrameTest(_) => c(
            "every frame re-encrypted with RustCrypto chacha20poly1305 (header, then chunks of \
             65519 bytes, a nonce each) and compared: ciphertext or its SHA-256, length, head, \
             tail; block lengths, nonces, nonce exhaustion; decrypted back, tampered frames \
             failing at errorStep",
            "",
            "interop/tests/vectors_noise.rs: SRI's chacha20poly1305 0.10.1 (the same crate and \
             version as here) called as SRI calls it, codec_sv2's lengths, a live SRI session",
        ),
    }
}
