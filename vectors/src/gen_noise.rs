//! noise_handshake.json (NX handshakes from fixed keys, every h/ck/k) and certificates.json.

use sv2_codec::noise::cert::{SignatureNoiseMessage, ValidityPolicy};
use sv2_codec::noise::keys::{Keypair, SecretKey};
use sv2_codec::noise::symmetric::sha256;
use sv2_codec::noise::{
    Initiator, InitiatorConfig, KeySeed, Responder, ResponderConfig, TraceStep, SV2_PROTOCOL_NAME,
};

use crate::classes::{cert_class, noise_class};
use crate::model::{
    CertificateFields, CertificateGroup, CertificateTest, EllSwiftKey, HandshakeOutput,
    InitiatorInput, Mutation, NoiseGroup, NoiseTest, Outcome, ResponderInput, TestGroup,
    TraceEntry,
};
use crate::{flags_of, gen_err, FileBuilder, GenerateError, VectorFile};

type R<T> = Result<T, GenerateError>;

/// A fixed 32-byte value: SHA256("sv2-vectors/" || label). Valid as a secp256k1 secret unless
/// astronomically unlucky (checked where used).
pub(crate) fn fixed(label: &str) -> [u8; 32] {
    sha256(&[b"sv2-vectors/", label.as_bytes()])
}

pub(crate) fn secret(label: &str) -> R<SecretKey> {
    SecretKey::from_bytes(fixed(label)).map_err(|e| gen_err(format!("{label}: {e}")))
}

pub(crate) fn keypair(label: &str) -> R<Keypair> {
    Ok(Keypair::from_secret(secret(label)?))
}

/// The traffic keys of a generated session, for the encrypted framing vectors.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub tc_id: u32,
    pub c1: [u8; 32],
    pub c2: [u8; 32],
}

pub(crate) const T0: u32 = 1_700_000_000;
pub(crate) const DAY: u32 = 86_400;
pub(crate) const SKEW: u32 = 10;

/// One handshake scenario.
struct Scenario<'a> {
    label: &'a str,
    comment: &'a str,
    flags: &'a [&'a str],
    result: Outcome,
    /// Key labels: initiator ephemeral, responder ephemeral, responder static, its aux.
    keys: [&'a str; 4],
    authority: &'a str,
    /// Who signs the certificate (usually `authority`).
    signer: &'a str,
    version: u16,
    valid_from: u32,
    not_valid_after: u32,
    /// Certificate fields changed after signing: (valid_from, not_valid_after).
    altered: Option<(u32, u32)>,
    /// Signature byte flipped after signing.
    flip_signature: Option<usize>,
    /// Sign for another server key than the responder's.
    sign_other_key: bool,
    now: u32,
    mutation: Option<Mutation>,
}

impl<'a> Scenario<'a> {
    fn new(label: &'a str, comment: &'a str, flags: &'a [&'a str], result: Outcome) -> Self {
        Scenario {
            label,
            comment,
            flags,
            result,
            keys: ["init-e-1", "resp-e-1", "resp-s-1", "resp-s-aux-1"],
            authority: "authority-1",
            signer: "authority-1",
            version: 0,
            valid_from: T0,
            not_valid_after: T0 + DAY,
            altered: None,
            flip_signature: None,
            sign_other_key: false,
            now: T0 + 100,
            mutation: None,
        }
    }
}

/// The trace entries of `steps` (generated, and recomputed by the verifier).
pub(crate) fn trace(steps: &[TraceStep]) -> Vec<TraceEntry> {
    steps
        .iter()
        // The whole acts are given as act1/act2; their trace entries carry no new state.
        .filter(|s| s.label != "act1" && s.label != "act2")
        .map(|s| TraceEntry {
            step: s.label.to_string(),
            input: hex::encode(&s.data),
            h: hex::encode(s.h),
            ck: hex::encode(s.ck),
            k: s.k.map(hex::encode),
        })
        .collect()
}

pub(crate) fn apply_mutation(act2: &[u8], m: &Mutation) -> Vec<u8> {
    let mut out = act2.to_vec();
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

fn run(s: &Scenario<'_>, tc_id: u32) -> R<(NoiseTest, Option<Session>)> {
    let seed = |label: &str| KeySeed::new(fixed(label), fixed(&format!("{label}/aux")));
    let init_e = seed(s.keys[0]);
    let resp_e = seed(s.keys[1]);
    let static_seed = KeySeed::new(fixed(s.keys[2]), fixed(s.keys[3]));
    let static_secret = SecretKey::from_bytes(static_seed.secret).map_err(gen_err)?;
    let authority = keypair(s.authority)?;
    let signer = keypair(s.signer)?;
    let certified = if s.sign_other_key {
        secret("some-other-server")?.xonly_public()
    } else {
        static_secret.xonly_public()
    };
    let mut cert = SignatureNoiseMessage::issue(
        s.version,
        s.valid_from,
        s.not_valid_after,
        &certified,
        &signer,
        None,
    );
    if let Some((from, until)) = s.altered {
        cert.valid_from = from;
        cert.not_valid_after = until;
    }
    if let Some(i) = s.flip_signature {
        cert.signature[i] ^= 0x01;
    }
    let config = ResponderConfig {
        static_key: static_seed.clone(),
        certificate: cert,
        trace: true,
    };
    let mut responder = Responder::new(config, &resp_e).map_err(gen_err)?;
    let policy = ValidityPolicy { skew_secs: SKEW };
    let mut initiator = Initiator::new(
        InitiatorConfig::new(authority.public)
            .with_trace(true)
            .with_policy(policy),
        &init_e,
    )
    .map_err(gen_err)?;
    let act1 = initiator.write_act1().map_err(gen_err)?;
    let (act2, resp_done) = responder.read_act1(&act1).map_err(gen_err)?;
    let received = s.mutation.as_ref().map(|m| apply_mutation(&act2, m));
    let result = initiator.read_act2(received.as_deref().unwrap_or(&act2), s.now);
    let key = |seed: &KeySeed, ellswift: &[u8]| EllSwiftKey {
        secret: hex::encode(seed.secret),
        aux: hex::encode(seed.aux),
        ellswift: hex::encode(ellswift),
    };
    let mut test = NoiseTest {
        tc_id,
        comment: s.comment.to_string(),
        flags: flags_of(s.flags),
        result: s.result,
        initiator: InitiatorInput {
            ephemeral: key(&init_e, initiator.ephemeral_public()),
            authority_public_key: hex::encode(authority.public.xonly()),
        },
        responder: ResponderInput {
            ephemeral: key(&resp_e, &act2[..64]),
            static_key: key(&static_seed, responder.static_public()),
            certificate: CertificateFields {
                version: cert.version,
                valid_from: cert.valid_from,
                not_valid_after: cert.not_valid_after,
                signature: hex::encode(cert.signature),
                signature_noise_message: hex::encode(cert.to_bytes()),
            },
        },
        now: s.now,
        skew_secs: SKEW,
        act1: hex::encode(&act1),
        act2: hex::encode(&act2),
        mutation: s.mutation.clone(),
        received_act2: received.as_ref().map(hex::encode),
        responder_trace: trace(&resp_done.trace),
        initiator_trace: Vec::new(),
        output: None,
        error: None,
    };
    let mut session = None;
    match (s.result, result) {
        (Outcome::Invalid, Ok(_)) => {
            return Err(gen_err(format!(
                "noise {}: expected failure, handshake completed",
                s.label
            )))
        }
        (Outcome::Valid, Err(e)) => {
            return Err(gen_err(format!(
                "noise {}: expected success, got {e}",
                s.label
            )))
        }
        (_, Ok(done)) => {
            test.initiator_trace = trace(&done.trace);
            test.output = Some(HandshakeOutput {
                handshake_hash: hex::encode(done.handshake_hash),
                c1: hex::encode(done.traffic_keys.c1),
                c2: hex::encode(done.traffic_keys.c2),
                responder_static_xonly: hex::encode(done.certified_key),
            });
            session = Some(Session {
                tc_id,
                c1: done.traffic_keys.c1,
                c2: done.traffic_keys.c2,
            });
        }
        (_, Err(e)) => {
            test.initiator_trace = trace(initiator.trace());
            test.error = Some(noise_class(&e).to_string());
        }
    }
    Ok((test, session))
}

pub(crate) fn build_handshakes() -> R<(VectorFile, Vec<Session>)> {
    use Outcome::*;
    let mut b = FileBuilder::new(
        "Noise_NX_Secp256k1+EllSwift_ChaChaPoly_SHA256 handshake (spec §4.3-4.5)",
        "noise_handshake.schema.json",
        &[
            "Each test is one handshake from fixed keys: every secret and the aux bytes of every ElligatorSwift encoding are given, so the acts are reproducible (libsecp256k1 secp256k1_ellswift_create(ctx, out64, seckey32, auxrnd32)).",
            "ECDH is BIP324 v2_ecdh (secp256k1_ellswift_xdh with the BIP324 hash, initiator's encoding first). The certificate signature is BIP340 without aux randomness over SHA256(version || valid_from || not_valid_after || server x-only key).",
            "responderTrace and initiatorTrace give the state after every step: h, ck, k and the step's input (DH outputs included; test keys only). `split` has input k1 || k2 (c1 initiator->responder, c2 responder->initiator).",
            "The initiator checks the certificate at `now` with skewSecs of tolerance: valid_from - skew <= now <= not_valid_after + skew.",
            "An invalid test gives the error class and the initiator's trace up to the failure.",
        ],
    );
    let mut scenarios = Vec::new();
    let s = Scenario::new(
        "base",
        "a complete handshake, certificate valid for a day",
        &["FixedKeys"],
        Valid,
    );
    scenarios.push(s);
    let mut s = Scenario::new("keys-2", "other keys and authority", &["FixedKeys"], Valid);
    s.keys = ["init-e-2", "resp-e-2", "resp-s-2", "resp-s-aux-2"];
    s.authority = "authority-2";
    s.signer = "authority-2";
    scenarios.push(s);
    let mut s = Scenario::new("keys-3", "the static key of test 1 with other aux bytes: another EllSwift encoding of the same key, the same certificate", &["FixedKeys"], Valid);
    s.keys = ["init-e-3", "resp-e-3", "resp-s-1", "resp-s-aux-3"];
    scenarios.push(s);
    let mut s = Scenario::new(
        "keys-4",
        "a fourth key set, certificate never expiring (not_valid_after 2^32 - 1)",
        &["FixedKeys", "EdgeValue"],
        Valid,
    );
    s.keys = ["init-e-4", "resp-e-4", "resp-s-4", "resp-s-aux-4"];
    s.not_valid_after = u32::MAX;
    s.now = u32::MAX - 1;
    scenarios.push(s);
    let mut s = Scenario::new(
        "at-from",
        "now = valid_from",
        &["FixedKeys", "ValidityWindowEdge"],
        Valid,
    );
    s.now = T0;
    scenarios.push(s);
    let mut s = Scenario::new(
        "at-until",
        "now = not_valid_after",
        &["FixedKeys", "ValidityWindowEdge"],
        Valid,
    );
    s.now = T0 + DAY;
    scenarios.push(s);
    let mut s = Scenario::new(
        "skew-before",
        "now = valid_from - 10",
        &["FixedKeys", "ClockSkew"],
        Acceptable,
    );
    s.now = T0 - SKEW;
    scenarios.push(s);
    let mut s = Scenario::new(
        "skew-after",
        "now = not_valid_after + 10",
        &["FixedKeys", "ClockSkew"],
        Acceptable,
    );
    s.now = T0 + DAY + SKEW;
    scenarios.push(s);
    let mut s = Scenario::new(
        "early",
        "now = valid_from - 11",
        &["FixedKeys", "NotYetValid"],
        Invalid,
    );
    s.now = T0 - SKEW - 1;
    scenarios.push(s);
    let mut s = Scenario::new(
        "late",
        "now = not_valid_after + 11",
        &["FixedKeys", "Expired"],
        Invalid,
    );
    s.now = T0 + DAY + SKEW + 1;
    scenarios.push(s);
    let mut s = Scenario::new(
        "year-late",
        "a year after not_valid_after",
        &["FixedKeys", "Expired"],
        Invalid,
    );
    s.now = T0 + 366 * DAY;
    scenarios.push(s);
    let mut s = Scenario::new(
        "wrong-authority",
        "certificate validly signed by authority 2, initiator trusts authority 1",
        &["FixedKeys", "WrongAuthority"],
        Invalid,
    );
    s.signer = "authority-2";
    scenarios.push(s);
    let mut s = Scenario::new(
        "bad-sig",
        "a bit of the signature's R flipped",
        &["FixedKeys", "BadSignature"],
        Invalid,
    );
    s.flip_signature = Some(0);
    scenarios.push(s);
    let mut s = Scenario::new(
        "other-key",
        "certificate signed for another server key",
        &["FixedKeys", "BadSignature"],
        Invalid,
    );
    s.sign_other_key = true;
    scenarios.push(s);
    let mut s = Scenario::new(
        "altered",
        "not_valid_after extended by a year after signing",
        &["FixedKeys", "BadSignature"],
        Invalid,
    );
    s.altered = Some((T0, T0 + 366 * DAY));
    scenarios.push(s);
    let mut s = Scenario::new(
        "version-1",
        "certificate version 1, validly signed",
        &["FixedKeys", "CertificateVersion"],
        Acceptable,
    );
    s.version = 1;
    scenarios.push(s);
    for (label, comment, offset, xor) in [
        (
            "flip-e",
            "responder ephemeral key byte 0 flipped: another ee, the static key does not decrypt",
            0,
            0x01,
        ),
        ("flip-s", "encrypted static key byte 64 flipped", 64, 0x80),
        (
            "flip-s-mac",
            "MAC of the static key (byte 143) flipped",
            143,
            0x01,
        ),
        (
            "flip-cert",
            "encrypted certificate byte 150 flipped",
            150,
            0x01,
        ),
        ("flip-cert-mac", "last MAC byte (233) flipped", 233, 0x40),
    ] {
        let mut s = Scenario::new(label, comment, &["FixedKeys", "TamperedAct2"], Invalid);
        s.mutation = Some(Mutation {
            description: format!("act2[{offset}] ^= {xor:#04x}"),
            offset: Some(offset),
            xor: Some(xor),
            truncate_to: None,
        });
        scenarios.push(s);
    }
    let mut s = Scenario::new(
        "short",
        "act 2 cut to 170 bytes (the spec's erratum length)",
        &["FixedKeys", "WrongLength"],
        Invalid,
    );
    s.mutation = Some(Mutation {
        description: "act2 truncated to 170 bytes".into(),
        offset: None,
        xor: None,
        truncate_to: Some(170),
    });
    scenarios.push(s);
    let mut s = Scenario::new(
        "one-short",
        "act 2 one byte short (233)",
        &["FixedKeys", "WrongLength"],
        Invalid,
    );
    s.mutation = Some(Mutation {
        description: "act2 cut to 233 bytes".into(),
        offset: None,
        xor: None,
        truncate_to: Some(233),
    });
    scenarios.push(s);

    let mut tests = Vec::new();
    let mut sessions = Vec::new();
    for s in &scenarios {
        let (test, session) = run(s, b.id())?;
        tests.push(test);
        sessions.extend(session);
    }
    b.group(TestGroup::NoiseHandshakeTest(NoiseGroup {
        description: "initiator (client) and responder (server) from fixed keys".into(),
        protocol_name: SV2_PROTOCOL_NAME.into(),
        tests,
    }));
    Ok((b.finish()?, sessions))
}

/// One certificate check.
#[allow(clippy::too_many_arguments)]
fn cert_test(
    tc_id: u32,
    comment: &str,
    flags: &[&str],
    result: Outcome,
    server: [u8; 32],
    cert: SignatureNoiseMessage,
    authority: &Keypair,
    now: u32,
) -> R<CertificateTest> {
    let outcome = cert.verify(
        &server,
        &authority.public,
        now,
        &ValidityPolicy { skew_secs: SKEW },
    );
    let error = match (result, outcome) {
        (Outcome::Valid, Err(e)) => {
            return Err(gen_err(format!(
                "certificate tcId {tc_id} ({comment}): {e}"
            )))
        }
        (Outcome::Invalid, Ok(())) => {
            return Err(gen_err(format!(
                "certificate tcId {tc_id} ({comment}): accepted"
            )))
        }
        (_, Ok(())) => None,
        (_, Err(e)) => Some(cert_class(&e).to_string()),
    };
    Ok(CertificateTest {
        tc_id,
        comment: comment.to_string(),
        flags: flags_of(flags),
        result,
        server_public_key: hex::encode(server),
        signature_noise_message: hex::encode(cert.to_bytes()),
        version: cert.version,
        valid_from: cert.valid_from,
        not_valid_after: cert.not_valid_after,
        signed_digest: hex::encode(SignatureNoiseMessage::signed_digest(
            cert.version,
            cert.valid_from,
            cert.not_valid_after,
            &server,
        )),
        now,
        skew_secs: SKEW,
        error,
    })
}

pub(crate) fn build_certificates() -> R<VectorFile> {
    use Outcome::*;
    let mut b = FileBuilder::new(
        "SV2 certificates: SIGNATURE_NOISE_MESSAGE (spec §4.5.2-4.5.3)",
        "certificates.schema.json",
        &[
            "signatureNoiseMessage is the 74 bytes sent (encrypted) in act 2: version U16 LE, valid_from U32 LE, not_valid_after U32 LE, BIP340 signature (64).",
            "The signature is BIP340 by the group's authority key over signedDigest = SHA256(version || valid_from || not_valid_after || serverPublicKey) (42 bytes hashed).",
            "A test is valid when the signature verifies and valid_from - skew <= now <= not_valid_after + skew.",
            "Signatures were made without BIP340 aux randomness (deterministic); any valid BIP340 signature must be accepted.",
        ],
    );
    for (auth_label, server_label) in [("authority-1", "resp-s-1"), ("authority-2", "resp-s-2")] {
        let authority = keypair(auth_label)?;
        let other = keypair(if auth_label == "authority-1" {
            "authority-2"
        } else {
            "authority-1"
        })?;
        let server = secret(server_label)?.xonly_public();
        let issue = |version, from, until, by: &Keypair| {
            SignatureNoiseMessage::issue(version, from, until, &server, by, None)
        };
        let good = issue(0, T0, T0 + DAY, &authority);
        let mut tests = Vec::new();
        let mut add =
            |comment: &str, flags: &[&str], result, server: [u8; 32], cert, now| -> R<()> {
                let id = b.id();
                tests.push(cert_test(
                    id, comment, flags, result, server, cert, &authority, now,
                )?);
                Ok(())
            };
        add(
            "valid for a day, checked 100 s in",
            &["Typical"],
            Valid,
            server,
            good,
            T0 + 100,
        )?;
        add(
            "now = valid_from",
            &["ValidityWindowEdge"],
            Valid,
            server,
            good,
            T0,
        )?;
        add(
            "now = not_valid_after",
            &["ValidityWindowEdge"],
            Valid,
            server,
            good,
            T0 + DAY,
        )?;
        add(
            "now = valid_from - 10",
            &["ClockSkew"],
            Acceptable,
            server,
            good,
            T0 - SKEW,
        )?;
        add(
            "now = not_valid_after + 10",
            &["ClockSkew"],
            Acceptable,
            server,
            good,
            T0 + DAY + SKEW,
        )?;
        add(
            "now = valid_from - 11",
            &["NotYetValid"],
            Invalid,
            server,
            good,
            T0 - SKEW - 1,
        )?;
        add(
            "now = not_valid_after + 11",
            &["Expired"],
            Invalid,
            server,
            good,
            T0 + DAY + SKEW + 1,
        )?;
        add(
            "a day before valid_from",
            &["NotYetValid"],
            Invalid,
            server,
            good,
            T0 - DAY,
        )?;
        add(
            "an empty window: valid_from after not_valid_after, now between",
            &["NotYetValid", "EdgeValue"],
            Invalid,
            server,
            issue(0, T0 + DAY, T0, &authority),
            T0 + DAY / 2,
        )?;
        add(
            "never expiring: not_valid_after 2^32 - 1, now 2^32 - 1",
            &["EdgeValue"],
            Valid,
            server,
            issue(0, 0, u32::MAX, &authority),
            u32::MAX,
        )?;
        add(
            "certificate version 1, validly signed",
            &["CertificateVersion"],
            Acceptable,
            server,
            issue(1, T0, T0 + DAY, &authority),
            T0 + 100,
        )?;
        add(
            "certificate version 0xffff, validly signed",
            &["CertificateVersion"],
            Acceptable,
            server,
            issue(0xffff, T0, T0 + DAY, &authority),
            T0 + 100,
        )?;
        add(
            "signed by the other authority",
            &["WrongAuthority"],
            Invalid,
            server,
            issue(0, T0, T0 + DAY, &other),
            T0 + 100,
        )?;
        let mut bad = good;
        bad.signature[0] ^= 1;
        add(
            "signature byte 0 (R) flipped",
            &["BadSignature"],
            Invalid,
            server,
            bad,
            T0 + 100,
        )?;
        let mut bad = good;
        bad.signature[63] ^= 0x80;
        add(
            "signature byte 63 (s) flipped",
            &["BadSignature"],
            Invalid,
            server,
            bad,
            T0 + 100,
        )?;
        let mut bad = good;
        bad.signature = [0; 64];
        add(
            "all-zero signature",
            &["BadSignature"],
            Invalid,
            server,
            bad,
            T0 + 100,
        )?;
        let mut bad = good;
        bad.version = 1;
        add(
            "version changed to 1 after signing",
            &["BadSignature"],
            Invalid,
            server,
            bad,
            T0 + 100,
        )?;
        let mut bad = good;
        bad.not_valid_after = T0 + 2 * DAY;
        add(
            "not_valid_after extended after signing",
            &["BadSignature"],
            Invalid,
            server,
            bad,
            T0 + 100,
        )?;
        let other_server = secret("some-other-server")?.xonly_public();
        add(
            "checked against another server key",
            &["BadSignature"],
            Invalid,
            other_server,
            good,
            T0 + 100,
        )?;
        // 32 bytes that are no curve x coordinate: the first x = 5, 6, ... that is not one.
        let mut not_on_curve = [0u8; 32];
        for x in 5u8..=255 {
            not_on_curve[31] = x;
            if sv2_codec::noise::keys::AuthorityPublicKey::from_xonly(not_on_curve).is_err() {
                break;
            }
        }
        add(
            "server key not on the curve",
            &["NotOnCurve"],
            Invalid,
            not_on_curve,
            good,
            T0 + 100,
        )?;
        b.group(TestGroup::CertificateTest(CertificateGroup {
            description: format!("certificates checked against {auth_label}"),
            authority_public_key: hex::encode(authority.public.xonly()),
            tests,
        }));
    }
    b.finish()
}
