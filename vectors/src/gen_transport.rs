//! encrypted_framing.json: plain frames encrypted for the transport (spec §4.6, CATALOG §B.2).

use serde_json::json;
use sv2_codec::noise::symmetric::{sha256, MAC_LEN};
use sv2_codec::noise::transport::{ENCRYPTED_HEADER_LEN, MAX_CHUNK_LEN};
use sv2_codec::noise::{Decryptor, Encryptor};
use sv2_codec::Header;

use crate::classes::{decrypt_step, noise_class};
use crate::gen_frames::frame_of;
use crate::gen_noise::{apply_mutation, fixed, Session};
use crate::model::{EncryptedGroup, EncryptedTest, Mutation, Outcome, PayloadRule, TestGroup};
use crate::{flags_of, gen_err, FileBuilder, GenerateError, VectorFile};

type R<T> = Result<T, GenerateError>;

/// Payloads up to this size are printed in hex; larger ones are given by rule.
pub(crate) const MAX_PRINTED_PAYLOAD: usize = 1024;
/// Encrypted frames up to this size are printed whole.
pub(crate) const MAX_PRINTED_CIPHERTEXT: usize = 2048;
/// Bytes of `ciphertextHead` and `ciphertextTail`.
pub(crate) const HEAD_TAIL: usize = 64;

/// The header of the synthetic frames: experimental extension 0x4001, msg_type 0x01, so that no
/// decoder mistakes the pattern payload for a message.
pub(crate) fn synthetic_header(len: usize) -> [u8; 6] {
    Header {
        extension_type: 0x4001,
        channel_msg: false,
        msg_type: 0x01,
        msg_length: len as u32,
    }
    .to_bytes()
}

/// The encrypted header, then each payload chunk with its MAC.
pub(crate) fn block_lengths(payload_len: usize) -> Vec<usize> {
    std::iter::once(ENCRYPTED_HEADER_LEN)
        .chain(
            (0..payload_len)
                .step_by(MAX_CHUNK_LEN)
                .map(|start| (payload_len - start).min(MAX_CHUNK_LEN) + MAC_LEN),
        )
        .collect()
}

/// Encrypts and fills a test; `expect` is checked against what the codec does.
#[allow(clippy::too_many_arguments)]
fn encrypted_test(
    tc_id: u32,
    comment: &str,
    flags: &[&str],
    result: Outcome,
    key: [u8; 32],
    nonce: u64,
    header: [u8; 6],
    payload: &[u8],
    rule: Option<PayloadRule>,
    mutation: Option<Mutation>,
) -> R<EncryptedTest> {
    let mut enc = Encryptor::from_key(key);
    enc.set_nonce(nonce);
    let mut ct = Vec::new();
    let encrypted = enc.encrypt_parts(&header, payload, &mut ct);
    let mut test = EncryptedTest {
        tc_id,
        comment: comment.to_string(),
        flags: flags_of(flags),
        result,
        key: hex::encode(key),
        nonce,
        header: hex::encode(header),
        payload: rule.is_none().then(|| hex::encode(payload)),
        payload_rule: rule,
        block_lengths: Vec::new(),
        ciphertext: None,
        ciphertext_sha256: None,
        ciphertext_length: None,
        ciphertext_head: None,
        ciphertext_tail: None,
        next_nonce: enc.nonce(),
        mutation: mutation.clone(),
        error: None,
        error_step: None,
    };
    match encrypted {
        Err(e) => {
            if result != Outcome::Invalid {
                return Err(gen_err(format!("encrypted tcId {tc_id} ({comment}): {e}")));
            }
            test.error = Some(noise_class(&e).to_string());
            return Ok(test);
        }
        Ok(()) => {
            test.block_lengths = block_lengths(payload.len());
            if ct.len() <= MAX_PRINTED_CIPHERTEXT {
                test.ciphertext = Some(hex::encode(&ct));
            }
            test.ciphertext_sha256 = Some(hex::encode(sha256(&[&ct])));
            test.ciphertext_length = Some(ct.len());
            test.ciphertext_head = Some(hex::encode(&ct[..ct.len().min(HEAD_TAIL)]));
            test.ciphertext_tail = Some(hex::encode(&ct[ct.len().saturating_sub(HEAD_TAIL)..]));
        }
    }
    let received = mutation
        .as_ref()
        .map(|m| apply_mutation(&ct, m))
        .unwrap_or(ct);
    let mut dec = Decryptor::from_key(key);
    dec.set_nonce(nonce);
    match (result, dec.push_all(&received)) {
        (Outcome::Valid, Ok(frames)) if frames.len() == 1 => {}
        (Outcome::Invalid, Err(e)) => {
            test.error = Some(noise_class(&e).to_string());
            test.error_step = decrypt_step(&e);
        }
        (_, other) => {
            return Err(gen_err(format!(
                "encrypted tcId {tc_id} ({comment}): unexpected decryption {:?}",
                other.map(|f| f.len())
            )))
        }
    }
    Ok(test)
}

fn rule(length: usize) -> PayloadRule {
    PayloadRule {
        length,
        multiplier: 1,
        offset: 0,
        modulus: 251,
    }
}

pub(crate) fn build(sessions: &[Session]) -> R<VectorFile> {
    use Outcome::*;
    let mut b = FileBuilder::new(
        "SV2 encrypted transport framing (spec §4.6)",
        "encrypted_framing.schema.json",
        &[
            "A plain frame header(6) || payload is sent as EncryptWithAd([], header) (22 bytes), then the payload in chunks of at most 65519 bytes, each EncryptWithAd([], chunk) (chunk + 16 bytes). An empty payload has no block. msg_length is the plaintext length.",
            "ChaCha20-Poly1305 (RFC 8439); nonce = 4 zero bytes || U64 LE counter; every AEAD call consumes one nonce, starting at `nonce`; `nextNonce` is the counter after the frame.",
            "Payloads up to 1024 bytes are given in hex (`payload`); larger ones by `payloadRule`: byte i is (i * multiplier + offset) % modulus.",
            "Frames up to 2048 encrypted bytes are given whole (`ciphertext`); every frame has its SHA-256, length, first and last 64 bytes, and the length of every AEAD output (`blockLengths`).",
            "Invalid tests: the bytes received differ from the encrypted frame by `mutation`, and decryption fails at `errorStep`; or encryption is refused (NONCE_EXHAUSTED).",
        ],
    );
    let key = fixed("transport-key-1");
    let mut tests = Vec::new();
    for (len, flags, comment) in [
        (
            0usize,
            &["EmptyPayload"][..],
            "empty payload: the 22-byte header only",
        ),
        (1, &["EdgeValue"][..], "1 byte: one 17-byte block"),
        (
            24,
            &["Typical"][..],
            "24 bytes (the size of SubmitSharesStandard)",
        ),
        (1024, &["Typical"][..], "1024 bytes"),
        (
            65518,
            &["ChunkBoundary"][..],
            "65518 bytes: one block of 65534",
        ),
        (
            65519,
            &["ChunkBoundary"][..],
            "65519 bytes: exactly one full block of 65535",
        ),
        (
            65520,
            &["ChunkBoundary"][..],
            "65520 bytes: a full block and a 17-byte block",
        ),
        (
            131038,
            &["ChunkBoundary"][..],
            "131038 bytes: exactly two full blocks",
        ),
        (
            131039,
            &["ChunkBoundary"][..],
            "131039 bytes: two full blocks and a 17-byte block",
        ),
        (
            196557,
            &["ChunkBoundary"][..],
            "196557 bytes: exactly three full blocks",
        ),
        (
            16_777_215,
            &["MaxPayload", "U24Max"][..],
            "2^24 - 1 bytes: 256 full blocks and one of 271 (16781327 bytes of blocks)",
        ),
    ] {
        let r = rule(len);
        let payload = r.bytes();
        let printed = (len > MAX_PRINTED_PAYLOAD).then_some(r);
        tests.push(encrypted_test(
            b.id(),
            comment,
            flags,
            Valid,
            key,
            0,
            synthetic_header(len),
            &payload,
            printed,
            None,
        )?);
    }
    b.group(TestGroup::EncryptedFrameTest(EncryptedGroup {
        description: "payload lengths around the 65519-byte chunk size, nonce 0, header of experimental extension 0x4001 msg_type 0x01".into(),
        tests,
    }));

    let mut tests = Vec::new();
    let payload24 = rule(24).bytes();
    for (nonce, flags, comment) in [
        (1u64, &["NonceStart"][..], "nonce 1"),
        (
            0xffff_ffff,
            &["NonceStart", "EdgeValue"][..],
            "nonce 2^32 - 1: the block uses 2^32 (the counter is 64 bits, little-endian)",
        ),
        (1 << 63, &["NonceStart", "EdgeValue"][..], "nonce 2^63"),
        (
            u64::MAX - 2,
            &["NonceStart", "EdgeValue"][..],
            "nonce 2^64 - 3: header and block use the last two usable nonces",
        ),
    ] {
        tests.push(encrypted_test(
            b.id(),
            comment,
            flags,
            Valid,
            key,
            nonce,
            synthetic_header(24),
            &payload24,
            None,
            None,
        )?);
    }
    tests.push(encrypted_test(
        b.id(),
        "nonce 2^64 - 2, empty payload: the header takes the last usable nonce",
        &["NonceStart", "EmptyPayload", "EdgeValue"],
        Valid,
        key,
        u64::MAX - 1,
        synthetic_header(0),
        &[],
        None,
        None,
    )?);
    tests.push(encrypted_test(
        b.id(),
        "nonce 2^64 - 2, 24 bytes: the block would need nonce 2^64 - 1",
        &["NonceExhausted"],
        Invalid,
        key,
        u64::MAX - 1,
        synthetic_header(24),
        &payload24,
        None,
        None,
    )?);
    b.group(TestGroup::EncryptedFrameTest(EncryptedGroup {
        description: "nonce counters other than 0".into(),
        tests,
    }));

    let mut tests = Vec::new();
    let session = sessions
        .first()
        .ok_or_else(|| gen_err("no handshake session"))?;
    let setup = frame_of(
        &json!({"message": "SetupConnection", "protocol": 0, "min_version": 2, "max_version": 2, "flags": 0,
        "endpoint_host": "pool.example.com", "endpoint_port": 34254, "vendor": "sv2-toolkit", "hardware_version": "", "firmware": "0.1.0", "device_id": ""}),
    )?;
    let success =
        frame_of(&json!({"message": "SetupConnection.Success", "used_version": 2, "flags": 0}))?;
    let open = frame_of(
        &json!({"message": "OpenStandardMiningChannel", "request_id": 1, "user_identity": "alice", "nominal_hash_rate": 1.0e12, "max_target": "ff".repeat(32)}),
    )?;
    let id = session.tc_id;
    for (frame, comment, flags, key, nonce) in [
        (
            setup,
            format!("SetupConnection, initiator -> responder with c1 of noise_handshake.json tcId {id}, the first frame (nonces 0 and 1)"),
            &["SessionFrame"][..],
            session.c1,
            0,
        ),
        (
            success,
            format!("SetupConnection.Success, responder -> initiator with c2 of tcId {id} (nonce 0)"),
            &["SessionFrame"][..],
            session.c2,
            0,
        ),
        (
            open,
            format!("OpenStandardMiningChannel, the second frame with c1 of tcId {id} (nonces 2 and 3)"),
            &["SessionFrame", "NonceStart"][..],
            session.c1,
            2,
        ),
    ] {
        let header: [u8; 6] = frame
            .get(..6)
            .and_then(|h| h.try_into().ok())
            .ok_or_else(|| gen_err("short frame"))?;
        tests.push(encrypted_test(
            b.id(),
            &comment,
            flags,
            Valid,
            key,
            nonce,
            header,
            &frame[6..],
            None,
            None,
        )?);
    }
    b.group(TestGroup::EncryptedFrameTest(EncryptedGroup {
        description: "messages of a session established by a handshake vector".into(),
        tests,
    }));

    let mut tests = Vec::new();
    let payload100 = rule(100).bytes();
    let flip = |offset: usize, xor: u8, what: &str| Mutation {
        description: format!("byte {offset} ^= {xor:#04x} ({what})"),
        offset: Some(offset),
        xor: Some(xor),
        truncate_to: None,
    };
    for (offset, what) in [
        (0usize, "the encrypted header"),
        (5, "the encrypted msg_length"),
        (21, "the header MAC"),
        (22, "the first payload byte"),
        (137, "the payload MAC"),
    ] {
        tests.push(encrypted_test(
            b.id(),
            &format!("100-byte payload, {what} tampered"),
            &["TamperedCiphertext"],
            Invalid,
            key,
            0,
            synthetic_header(100),
            &payload100,
            None,
            Some(flip(offset, 0x01, what)),
        )?);
    }
    let r = rule(65520);
    let payload65520 = r.bytes();
    for (comment, mutation) in [
        (
            "65520-byte payload, the second block's first byte tampered",
            flip(22 + 65535, 0x80, "block 1"),
        ),
        (
            "65520-byte payload, the first block's MAC tampered",
            flip(22 + 65534, 0x01, "block 0 MAC"),
        ),
    ] {
        tests.push(encrypted_test(
            b.id(),
            comment,
            &["TamperedCiphertext", "ChunkBoundary"],
            Invalid,
            key,
            0,
            synthetic_header(65520),
            &payload65520,
            Some(r),
            Some(mutation),
        )?);
    }
    b.group(TestGroup::EncryptedFrameTest(EncryptedGroup {
        description: "tampered ciphertext: the frame must be refused and the session terminated"
            .into(),
        tests,
    }));
    b.finish()
}
