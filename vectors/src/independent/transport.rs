//! Encrypted framing (spec §4.6, CATALOG B): a plain frame's 6-byte header is one AEAD message
//! (22 bytes out), its payload follows in chunks of at most 65535 - 16 = 65519 bytes, each its own
//! AEAD message; every call takes the next nonce, with empty AD. Encrypted and decrypted here with
//! RustCrypto's `chacha20poly1305`.

use super::aead::{decrypt, encrypt, sha256};
use super::{apply_mutation, eq, hex32, unhex, Check};
use crate::model::{EncryptedTest, Outcome};

const MAC: usize = 16;
const CHUNK: usize = 65535 - MAC;
const HEADER: usize = 6;
/// The vectors give the first and last 64 bytes of every frame.
const HEAD_TAIL: usize = 64;

fn msg_length(header: &[u8]) -> usize {
    usize::from(header[3]) | usize::from(header[4]) << 8 | usize::from(header[5]) << 16
}

/// Where decryption stops, as the vectors name it: `header` or `block N`.
fn decrypt_frame(
    key: &[u8; 32],
    nonce: u64,
    bytes: &[u8],
) -> Result<(Vec<u8>, Vec<u8>, u64), String> {
    let mut n = nonce;
    let header = bytes
        .get(..HEADER + MAC)
        .and_then(|c| decrypt(key, n, &[], c))
        .ok_or("header")?;
    n += 1;
    let mut rest = &bytes[HEADER + MAC..];
    let mut payload = Vec::new();
    let mut left = msg_length(&header);
    let mut block = 0;
    while left > 0 {
        let chunk = left.min(CHUNK);
        let plain = rest
            .get(..chunk + MAC)
            .and_then(|c| decrypt(key, n, &[], c))
            .ok_or(format!("block {block}"))?;
        n += 1;
        payload.extend_from_slice(&plain);
        rest = &rest[chunk + MAC..];
        left -= chunk;
        block += 1;
    }
    if !rest.is_empty() {
        return Err(format!("{} bytes after the frame", rest.len()));
    }
    Ok((header, payload, n))
}

pub fn check(t: &EncryptedTest) -> Check {
    let key = hex32("key", &t.key)?;
    let header = unhex("header", &t.header)?;
    eq("header length", header.len(), HEADER)?;
    let payload = match (&t.payload, &t.payload_rule) {
        (Some(p), None) => unhex("payload", p)?,
        (None, Some(rule)) => rule.bytes(),
        _ => return Err("exactly one of payload and payloadRule".into()),
    };
    eq("header msg_length", msg_length(&header), payload.len())?;
    let chunks: Vec<&[u8]> = payload.chunks(CHUNK).collect();
    let calls = 1 + chunks.len() as u64;
    // Noise reserves the counter 2^64 - 1: a frame that would need it is refused before any call.
    if u128::from(t.nonce) + u128::from(calls) > u128::from(u64::MAX) {
        eq("result", t.result, Outcome::Invalid)?;
        eq("error", t.error.as_deref(), Some("NONCE_EXHAUSTED"))?;
        eq("blockLengths", t.block_lengths.len(), 0)?;
        return eq("nextNonce (unchanged)", t.next_nonce, t.nonce);
    }
    let mut ct = encrypt(&key, t.nonce, &[], &header);
    let mut lengths = vec![ct.len()];
    for (i, chunk) in chunks.iter().enumerate() {
        let block = encrypt(&key, t.nonce + 1 + i as u64, &[], chunk);
        lengths.push(block.len());
        ct.extend_from_slice(&block);
    }
    eq("blockLengths", &lengths, &t.block_lengths)?;
    eq("nextNonce", t.nonce + calls, t.next_nonce)?;
    if let Some(c) = &t.ciphertext {
        eq("ciphertext", &hex::encode(&ct), c)?;
    }
    eq(
        "ciphertextSha256",
        Some(hex::encode(sha256(&[&ct]))),
        t.ciphertext_sha256.clone(),
    )?;
    eq("ciphertextLength", Some(ct.len()), t.ciphertext_length)?;
    eq(
        "ciphertextHead",
        Some(hex::encode(&ct[..ct.len().min(HEAD_TAIL)])),
        t.ciphertext_head.clone(),
    )?;
    eq(
        "ciphertextTail",
        Some(hex::encode(&ct[ct.len().saturating_sub(HEAD_TAIL)..])),
        t.ciphertext_tail.clone(),
    )?;
    let received = match &t.mutation {
        Some(m) => apply_mutation(&ct, m),
        None => ct,
    };
    match decrypt_frame(&key, t.nonce, &received) {
        Ok((h, p, n)) => {
            if t.result == Outcome::Invalid {
                return Err("invalid, but the frame decrypts".into());
            }
            eq("error", t.error.as_deref(), None)?;
            eq("decrypted header", hex::encode(h), t.header.clone())?;
            if p != payload {
                return Err("the decrypted payload differs".into());
            }
            eq("nextNonce after decryption", n, t.next_nonce)
        }
        Err(step) => {
            if t.result == Outcome::Valid {
                return Err(format!("valid, but decryption fails at {step}"));
            }
            eq("error", t.error.as_deref(), Some("DECRYPT_FAILED"))?;
            eq("errorStep", t.error_step.as_deref(), Some(step.as_str()))
        }
    }
}
