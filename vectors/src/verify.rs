//! The verifier: re-checks every vector of a file from its data alone, twice over.
//!
//! 1. Self-consistency through sv2-codec: each vector is re-derived with the codec that generated
//!    it and the generator's own helpers. This shows the files are reproducible and internally
//!    coherent, not that they are right: a codec bug would be in both.
//! 2. Independent checks ([`crate::independent`]): the parts that can be recomputed without
//!    sv2-codec and without the generator, from the spec and second implementations (RustCrypto
//!    `chacha20poly1305`, `k256`). Each file's report says which parts, with what, and what is left
//!    to the SRI-based tests of `interop/` or to nothing.

use std::collections::BTreeSet;

use serde::Serialize;
use sv2_codec::noise::cert::{SignatureNoiseMessage, ValidityPolicy};
use sv2_codec::noise::keys::{AuthorityPublicKey, SecretKey, Sv2Url};
use sv2_codec::noise::symmetric::sha256;
use sv2_codec::noise::{
    Decryptor, Encryptor, Initiator, InitiatorConfig, KeySeed, Responder, ResponderConfig,
};
use sv2_codec::Header;

use crate::classes::{cert_class, decrypt_step, key_class, noise_class};
use crate::frames::{decode_vector, encode_from_json};
use crate::gen_noise::{apply_mutation, trace};
use crate::gen_transport::{block_lengths, HEAD_TAIL};
use crate::gen_types::decode_type;
use crate::independent;
use crate::model::*;

/// What the first check is, in every report.
pub const SELF_CONSISTENCY: &str = "re-derived through sv2-codec and the generator's helpers \
     (self-consistency: reproducibility, not independent confirmation)";

/// The result of verifying a directory.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub files: Vec<FileReport>,
}

impl Report {
    pub fn total(&self) -> usize {
        self.files.iter().map(|f| f.tests).sum()
    }

    /// Tests that failed a check (self-consistency or independent).
    pub fn failed(&self) -> usize {
        self.files.iter().map(|f| f.tests - f.passed).sum()
    }

    /// Tests also checked independently of sv2-codec.
    pub fn independent_checked(&self) -> usize {
        self.files.iter().map(|f| f.independent_checked).sum()
    }

    pub fn ok(&self) -> bool {
        self.files
            .iter()
            .all(|f| f.failures.is_empty() && f.error.is_none())
    }
}

/// The result of verifying one file.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    pub file: String,
    pub algorithm: String,
    pub tests: usize,
    pub valid: usize,
    pub invalid: usize,
    pub acceptable: usize,
    /// Tests that passed every check that applies to them.
    pub passed: usize,
    /// What every test went through: [`SELF_CONSISTENCY`].
    pub self_consistency: &'static str,
    /// Tests also checked by [`crate::independent`] (without sv2-codec).
    pub independent_checked: usize,
    /// What the independent checks confirm in this file, and with which implementation.
    pub independent: Vec<&'static str>,
    /// What they leave out, and why.
    pub not_independent: Vec<&'static str>,
    /// What the SRI-based tests of `interop/` confirm in this file (they run separately).
    pub confirmed_by_sri: Vec<&'static str>,
    /// One entry per failed check; a test failing both checks has two.
    pub failures: Vec<Failure>,
    /// Set when the file could not be read or parsed at all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl FileReport {
    /// A report with nothing counted yet.
    fn empty(file: &str, algorithm: String) -> Self {
        FileReport {
            file: file.to_string(),
            algorithm,
            tests: 0,
            valid: 0,
            invalid: 0,
            acceptable: 0,
            passed: 0,
            self_consistency: SELF_CONSISTENCY,
            independent_checked: 0,
            independent: Vec::new(),
            not_independent: Vec::new(),
            confirmed_by_sri: Vec::new(),
            failures: Vec::new(),
            error: None,
        }
    }

    pub fn unreadable(file: &str, error: String) -> Self {
        FileReport {
            error: Some(error),
            ..FileReport::empty(file, String::new())
        }
    }
}

/// One vector that did not verify.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    #[serde(rename = "tcId")]
    pub tc_id: u32,
    pub comment: String,
    /// Which check failed: `self-consistency` (sv2-codec) or `independent`.
    pub check: &'static str,
    pub reason: String,
}

type Check = Result<(), String>;

fn eq<T: PartialEq + std::fmt::Debug>(what: &str, found: T, expected: T) -> Check {
    if found == expected {
        Ok(())
    } else {
        Err(format!("{what}: found {found:?}, expected {expected:?}"))
    }
}

/// JSON equality where numbers that are not integers compare as F32 (every float of the vectors is
/// an F32 written as the shortest f64 of its exact value; a parser may be one f64 ULP off).
pub fn json_eq(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value as V;
    match (a, b) {
        (V::Number(x), V::Number(y)) => match (x.as_u64(), y.as_u64(), x.as_i64(), y.as_i64()) {
            (Some(p), Some(q), _, _) => p == q,
            (_, _, Some(p), Some(q)) => p == q,
            _ => match (x.as_f64(), y.as_f64()) {
                (Some(p), Some(q)) => (p as f32).to_bits() == (q as f32).to_bits(),
                _ => false,
            },
        },
        (V::Array(x), V::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (V::Object(x), V::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((k1, v1), (k2, v2))| k1 == k2 && json_eq(v1, v2))
        }
        _ => a == b,
    }
}

fn json_check(
    what: &str,
    found: Option<&serde_json::Value>,
    expected: Option<&serde_json::Value>,
) -> Check {
    let same = match (found, expected) {
        (Some(f), Some(e)) => json_eq(f, e),
        (None, None) => true,
        _ => false,
    };
    if same {
        Ok(())
    } else {
        Err(format!("{what}: found {found:?}, expected {expected:?}"))
    }
}

fn json_list_check(
    what: &str,
    found: Option<&Vec<serde_json::Value>>,
    expected: Option<&Vec<serde_json::Value>>,
) -> Check {
    let f = found.map(|v| serde_json::Value::Array(v.clone()));
    let e = expected.map(|v| serde_json::Value::Array(v.clone()));
    json_check(what, f.as_ref(), e.as_ref())
}

fn unhex(what: &str, s: &str) -> Result<Vec<u8>, String> {
    hex::decode(s).map_err(|e| format!("{what}: bad hex: {e}"))
}

fn unhex32(what: &str, s: &str) -> Result<[u8; 32], String> {
    unhex(what, s)?
        .try_into()
        .map_err(|_| format!("{what}: not 32 bytes"))
}

/// Verifies one file's text.
pub fn verify_file(name: &str, text: &str) -> FileReport {
    let file: VectorFile = match serde_json::from_str(text) {
        Ok(f) => f,
        Err(e) => return FileReport::unreadable(name, format!("parse: {e}")),
    };
    let mut report = FileReport::empty(name, file.algorithm.clone());
    let mut ids = BTreeSet::new();
    for group in &file.test_groups {
        /// Every test's tcId, result, flags and comment, with its check, in order.
        fn each<T: Summary>(
            tests: &[T],
            check: impl Fn(&T) -> Check,
        ) -> Vec<(u32, Outcome, &[String], &str, Check)> {
            tests
                .iter()
                .map(|t| (t.tc_id(), t.result(), t.flags(), t.comment(), check(t)))
                .collect()
        }
        let results = match group {
            TestGroup::TypeTest(g) => each(&g.tests, |t| check_type(&g.data_type, t)),
            TestGroup::FrameTest(g) => each(&g.tests, check_frame),
            TestGroup::NoiseHandshakeTest(g) => each(&g.tests, check_noise),
            TestGroup::CertificateTest(g) => {
                each(&g.tests, |t| check_certificate(&g.authority_public_key, t))
            }
            TestGroup::AuthorityKeyTest(g) => each(&g.tests, check_authority_key),
            TestGroup::SecretKeyTest(g) => each(&g.tests, check_secret_key),
            TestGroup::UrlTest(g) => each(&g.tests, check_url),
            TestGroup::EncryptedFrameTest(g) => each(&g.tests, check_encrypted),
        };
        let independent = independent::check_group(group);
        let coverage = independent::coverage(group);
        for (list, text) in [
            (&mut report.independent, coverage.independent),
            (&mut report.not_independent, coverage.not_independent),
            (&mut report.confirmed_by_sri, coverage.sri),
        ] {
            if !text.is_empty() && !list.contains(&text) {
                list.push(text);
            }
        }
        for ((id, result, flags, comment, check), independent) in
            results.into_iter().zip(independent)
        {
            report.tests += 1;
            match result {
                Outcome::Valid => report.valid += 1,
                Outcome::Invalid => report.invalid += 1,
                Outcome::Acceptable => report.acceptable += 1,
            }
            let check = check.and_then(|()| {
                if ids.insert(id) {
                    Ok(())
                } else {
                    Err(format!("tcId {id} is not unique in the file"))
                }
            });
            let check =
                check.and_then(
                    |()| match flags.iter().find(|f| !file.notes.contains_key(*f)) {
                        Some(f) => Err(format!("flag {f} is not documented in notes")),
                        None => Ok(()),
                    },
                );
            if independent.is_some() {
                report.independent_checked += 1;
            }
            let mut ok = true;
            for (kind, outcome) in [
                ("self-consistency", Some(check)),
                ("independent", independent),
            ] {
                if let Some(Err(reason)) = outcome {
                    ok = false;
                    report.failures.push(Failure {
                        tc_id: id,
                        comment: comment.to_string(),
                        check: kind,
                        reason,
                    });
                }
            }
            if ok {
                report.passed += 1;
            }
        }
    }
    if report.tests != file.number_of_tests {
        report.error = Some(format!(
            "numberOfTests is {}, the groups hold {}",
            file.number_of_tests, report.tests
        ));
    }
    report
}

/// The outcome a test states must match the codec's: valid accepted, invalid refused with the class.
fn outcome_matches(
    result: Outcome,
    accepted: bool,
    error: &Option<String>,
    found_class: Option<&str>,
) -> Check {
    match (result, accepted) {
        (Outcome::Valid, false) => Err(format!(
            "valid, but refused with {}",
            found_class.unwrap_or("?")
        )),
        (Outcome::Invalid, true) => Err("invalid, but accepted".to_string()),
        (_, false) => eq("error class", found_class, error.as_deref()),
        (_, true) => match error {
            Some(e) => Err(format!("accepted, but the vector records error {e}")),
            None => Ok(()),
        },
    }
}

fn check_type(data_type: &str, t: &TypeTest) -> Check {
    let bytes = unhex("encoded", &t.encoded)?;
    match decode_type(data_type, &bytes) {
        Ok((value, canonical)) => {
            outcome_matches(t.result, true, &t.error, None)?;
            // A JSON null (OPTION None) reads back as an absent `value`.
            let expected = t.value.clone().unwrap_or(serde_json::Value::Null);
            json_check("value", Some(&value), Some(&expected))?;
            let expected = match &t.reencoded {
                Some(r) => unhex("reencoded", r)?,
                None => bytes,
            };
            eq("re-encoding", hex::encode(canonical), hex::encode(expected))
        }
        Err(class) => outcome_matches(t.result, false, &t.error, Some(&class)),
    }
}

fn check_frame(t: &FrameTest) -> Check {
    let bytes = unhex("frame", &t.frame)?;
    let verdict = decode_vector(&bytes);
    eq("message", verdict.message.as_deref(), t.message.as_deref())?;
    match verdict.outcome {
        Ok(a) => {
            outcome_matches(t.result, true, &t.error, None)?;
            json_check("decoded", Some(&a.decoded), t.decoded.as_ref())?;
            json_list_check("tlvs", a.tlvs.as_ref(), t.tlvs.as_ref())?;
            json_list_check("warnings", a.warnings.as_ref(), t.warnings.as_ref())?;
            let expected = match &t.reencoded {
                Some(r) => unhex("reencoded", r)?,
                None => bytes,
            };
            // Re-encode from the vector's JSON, not from our decode: the JSON must carry every bit.
            let decoded = t.decoded.as_ref().ok_or("no decoded")?;
            let encoded = encode_from_json(decoded, t.tlvs.as_deref())?;
            eq(
                "re-encoding of `decoded`",
                hex::encode(encoded),
                hex::encode(expected),
            )
        }
        Err(r) => {
            outcome_matches(t.result, false, &t.error, Some(&r.class))?;
            if t.error_field.is_some() {
                eq("errorField", r.field.as_deref(), t.error_field.as_deref())?;
            }
            if t.error_offset.is_some() {
                eq("errorOffset", r.offset, t.error_offset)?;
            }
            Ok(())
        }
    }
}

fn seed(k: &EllSwiftKey) -> Result<KeySeed, String> {
    Ok(KeySeed::new(
        unhex32("secret", &k.secret)?,
        unhex32("aux", &k.aux)?,
    ))
}

fn compare_trace(who: &str, found: &[TraceEntry], expected: &[TraceEntry]) -> Check {
    for (i, (f, e)) in found.iter().zip(expected).enumerate() {
        if f != e {
            return Err(format!(
                "{who} trace step {i} ({}): found {f:?}, expected {e:?}",
                e.step
            ));
        }
    }
    eq(&format!("{who} trace length"), found.len(), expected.len())
}

fn check_noise(t: &NoiseTest) -> Check {
    let cert_fields = &t.responder.certificate;
    let snm_bytes = unhex(
        "signatureNoiseMessage",
        &cert_fields.signature_noise_message,
    )?;
    let cert = SignatureNoiseMessage::from_bytes(&snm_bytes).map_err(|e| e.to_string())?;
    eq("certificate version", cert.version, cert_fields.version)?;
    eq(
        "certificate valid_from",
        cert.valid_from,
        cert_fields.valid_from,
    )?;
    eq(
        "certificate not_valid_after",
        cert.not_valid_after,
        cert_fields.not_valid_after,
    )?;
    eq(
        "certificate signature",
        hex::encode(cert.signature),
        cert_fields.signature.clone(),
    )?;
    let config = ResponderConfig {
        static_key: seed(&t.responder.static_key)?,
        certificate: cert,
        trace: true,
    };
    let mut responder =
        Responder::new(config, &seed(&t.responder.ephemeral)?).map_err(|e| e.to_string())?;
    eq(
        "responder static EllSwift",
        hex::encode(responder.static_public()),
        t.responder.static_key.ellswift.clone(),
    )?;
    let authority = AuthorityPublicKey::from_xonly(unhex32(
        "authorityPublicKey",
        &t.initiator.authority_public_key,
    )?)
    .map_err(|e| e.to_string())?;
    let policy = ValidityPolicy {
        skew_secs: t.skew_secs,
    };
    let mut initiator = Initiator::new(
        InitiatorConfig::new(authority)
            .with_trace(true)
            .with_policy(policy),
        &seed(&t.initiator.ephemeral)?,
    )
    .map_err(|e| e.to_string())?;
    eq(
        "initiator ephemeral EllSwift",
        hex::encode(initiator.ephemeral_public()),
        t.initiator.ephemeral.ellswift.clone(),
    )?;
    let act1 = initiator.write_act1().map_err(|e| e.to_string())?;
    eq("act1", hex::encode(&act1), t.act1.clone())?;
    let (act2, done) = responder.read_act1(&act1).map_err(|e| e.to_string())?;
    eq("act2", hex::encode(&act2), t.act2.clone())?;
    eq(
        "responder ephemeral EllSwift",
        hex::encode(&act2[..64]),
        t.responder.ephemeral.ellswift.clone(),
    )?;
    compare_trace("responder", &trace(&done.trace), &t.responder_trace)?;
    let received = match &t.mutation {
        Some(m) => {
            let r = apply_mutation(&act2, m);
            eq(
                "receivedAct2",
                Some(hex::encode(&r)),
                t.received_act2.clone(),
            )?;
            r
        }
        None => act2,
    };
    match initiator.read_act2(&received, t.now) {
        Ok(est) => {
            outcome_matches(t.result, true, &t.error, None)?;
            compare_trace("initiator", &trace(&est.trace), &t.initiator_trace)?;
            let out = t.output.as_ref().ok_or("no output")?;
            eq(
                "handshakeHash",
                hex::encode(est.handshake_hash),
                out.handshake_hash.clone(),
            )?;
            eq("c1", hex::encode(est.traffic_keys.c1), out.c1.clone())?;
            eq("c2", hex::encode(est.traffic_keys.c2), out.c2.clone())?;
            eq(
                "responderStaticXonly",
                hex::encode(est.certified_key),
                out.responder_static_xonly.clone(),
            )?;
            // Both sides agree on the keys and the final hash.
            eq("responder c1", done.traffic_keys.c1, est.traffic_keys.c1)?;
            eq("responder c2", done.traffic_keys.c2, est.traffic_keys.c2)?;
            eq(
                "responder handshake hash",
                done.handshake_hash,
                est.handshake_hash,
            )
        }
        Err(e) => {
            outcome_matches(t.result, false, &t.error, Some(noise_class(&e)))?;
            compare_trace("initiator", &trace(initiator.trace()), &t.initiator_trace)
        }
    }
}

fn check_certificate(authority: &str, t: &CertificateTest) -> Check {
    let authority = AuthorityPublicKey::from_xonly(unhex32("authorityPublicKey", authority)?)
        .map_err(|e| e.to_string())?;
    let server = unhex32("serverPublicKey", &t.server_public_key)?;
    let snm = SignatureNoiseMessage::from_bytes(&unhex(
        "signatureNoiseMessage",
        &t.signature_noise_message,
    )?)
    .map_err(|e| e.to_string())?;
    eq("version", snm.version, t.version)?;
    eq("valid_from", snm.valid_from, t.valid_from)?;
    eq("not_valid_after", snm.not_valid_after, t.not_valid_after)?;
    // The digest, computed independently of cert.rs.
    let digest = sha256(&[
        &t.version.to_le_bytes(),
        &t.valid_from.to_le_bytes(),
        &t.not_valid_after.to_le_bytes(),
        &server,
    ]);
    eq("signedDigest", hex::encode(digest), t.signed_digest.clone())?;
    let result = snm.verify(
        &server,
        &authority,
        t.now,
        &ValidityPolicy {
            skew_secs: t.skew_secs,
        },
    );
    match result {
        Ok(()) => outcome_matches(t.result, true, &t.error, None),
        Err(e) => outcome_matches(t.result, false, &t.error, Some(cert_class(&e))),
    }
}

fn check_authority_key(t: &AuthorityKeyTest) -> Check {
    match AuthorityPublicKey::from_base58(&t.base58) {
        Ok(key) => {
            outcome_matches(t.result, true, &t.error, None)?;
            eq(
                "publicKey",
                Some(hex::encode(key.xonly())),
                t.public_key.clone(),
            )?;
            eq(
                "payload",
                Some(format!("0100{}", hex::encode(key.xonly()))),
                t.payload.clone(),
            )?;
            eq("re-encoding", key.to_base58(), t.base58.clone())
        }
        Err(e) => outcome_matches(t.result, false, &t.error, Some(key_class(&e))),
    }
}

fn check_secret_key(t: &SecretKeyTest) -> Check {
    match SecretKey::from_base58(&t.base58) {
        Ok(s) => {
            outcome_matches(t.result, true, &t.error, None)?;
            eq("secret", Some(hex::encode(s.to_bytes())), t.secret.clone())?;
            let public =
                AuthorityPublicKey::from_xonly(s.xonly_public()).map_err(|e| e.to_string())?;
            eq(
                "publicKey",
                Some(hex::encode(public.xonly())),
                t.public_key.clone(),
            )?;
            eq(
                "publicKeyBase58",
                Some(public.to_base58()),
                t.public_key_base58.clone(),
            )?;
            eq("re-encoding", s.to_base58(), t.base58.clone())
        }
        Err(e) => outcome_matches(t.result, false, &t.error, Some(key_class(&e))),
    }
}

fn check_url(t: &UrlTest) -> Check {
    match t.url.parse::<Sv2Url>() {
        Ok(u) => {
            outcome_matches(t.result, true, &t.error, None)?;
            eq("host", Some(u.host.clone()), t.host.clone())?;
            eq("port", Some(u.port), t.port)?;
            eq(
                "publicKey",
                u.authority_key.map(|k| hex::encode(k.xonly())),
                t.public_key.clone(),
            )
        }
        Err(e) => outcome_matches(t.result, false, &t.error, Some(key_class(&e))),
    }
}

fn check_encrypted(t: &EncryptedTest) -> Check {
    let key = unhex32("key", &t.key)?;
    let header: [u8; 6] = unhex("header", &t.header)?
        .try_into()
        .map_err(|_| "header: not 6 bytes".to_string())?;
    let payload = match (&t.payload, &t.payload_rule) {
        (Some(p), None) => unhex("payload", p)?,
        (None, Some(rule)) => rule.bytes(),
        _ => return Err("exactly one of payload and payloadRule".into()),
    };
    eq(
        "header msg_length vs payload length",
        Header::from_bytes(header).msg_length as usize,
        payload.len(),
    )?;
    let mut enc = Encryptor::from_key(key);
    enc.set_nonce(t.nonce);
    let mut ct = Vec::new();
    if let Err(e) = enc.encrypt_parts(&header, &payload, &mut ct) {
        outcome_matches(t.result, false, &t.error, Some(noise_class(&e)))?;
        return eq("nextNonce", enc.nonce(), t.next_nonce);
    }
    eq("nextNonce", enc.nonce(), t.next_nonce)?;
    eq(
        "blockLengths",
        block_lengths(payload.len()),
        t.block_lengths.clone(),
    )?;
    eq(
        "sum of blockLengths",
        t.block_lengths.iter().sum::<usize>(),
        ct.len(),
    )?;
    if let Some(c) = &t.ciphertext {
        eq("ciphertext", hex::encode(&ct), c.clone())?;
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
    let mut dec = Decryptor::from_key(key);
    dec.set_nonce(t.nonce);
    match dec.push_all(&received) {
        Ok(frames) => {
            outcome_matches(t.result, true, &t.error, None)?;
            eq("frames decrypted", frames.len(), 1)?;
            let frame = &frames[0];
            eq("decrypted header", frame.header.to_bytes(), header)?;
            eq(
                "decrypted payload length",
                frame.payload.len(),
                payload.len(),
            )?;
            if frame.payload != payload {
                return Err("decrypted payload differs".into());
            }
            eq("decryptor nextNonce", dec.nonce(), t.next_nonce)
        }
        Err(e) => {
            outcome_matches(t.result, false, &t.error, Some(noise_class(&e)))?;
            eq("errorStep", decrypt_step(&e), t.error_step.clone())
        }
    }
}
