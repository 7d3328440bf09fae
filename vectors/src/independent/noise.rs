//! The Noise NX handshake of spec §4.3-4.5 (CATALOG C), straight from the spec: SHA-256, the
//! two-output HKDF, MixHash, MixKey, EncryptAndHash, DecryptAndHash and Split written out here;
//! ChaCha20-Poly1305 from RustCrypto; ElligatorSwift and the BIP324 ECDH on k256. Each side runs
//! from the vector's secrets and every step's state is compared with the vector's trace.
//!
//! `snow` cannot serve as the second Noise implementation: it has no secp256k1 DH and no
//! ElligatorSwift encoding of handshake keys.

use k256::NonZeroScalar;

use super::aead::{decrypt, encrypt, hkdf2, sha256};
use super::cert::{outcome, Certificate};
use super::curve::{bip324_ecdh, ellswift_decode, secret_scalar, xonly_public};
use super::{apply_mutation, eq, hex32, hex64, unhex, Check};
use crate::model::{EllSwiftKey, NoiseTest, TraceEntry};

pub const PROTOCOL_NAME: &[u8] = b"Noise_NX_Secp256k1+EllSwift_ChaChaPoly_SHA256";
/// e (64) || encrypted s (64 + 16) || encrypted SIGNATURE_NOISE_MESSAGE (74 + 16).
const ACT2_LEN: usize = 234;

/// The handshake state of one side and the trace of its steps.
struct State {
    h: [u8; 32],
    ck: [u8; 32],
    k: Option<[u8; 32]>,
    n: u64,
    trace: Vec<TraceEntry>,
}

impl State {
    /// h = SHA256(protocol name) (it is longer than 32 bytes), ck = h, then MixHash of the empty
    /// prologue.
    fn new() -> Self {
        let h = sha256(&[PROTOCOL_NAME]);
        let mut s = State {
            h,
            ck: h,
            k: None,
            n: 0,
            trace: Vec::new(),
        };
        s.record("init", PROTOCOL_NAME);
        s.mix_hash(&[]);
        s.record("mix_hash(prologue)", &[]);
        s
    }

    fn record(&mut self, step: &str, input: &[u8]) {
        self.trace.push(TraceEntry {
            step: step.to_string(),
            input: hex::encode(input),
            h: hex::encode(self.h),
            ck: hex::encode(self.ck),
            k: self.k.map(hex::encode),
        });
    }

    fn mix_hash(&mut self, data: &[u8]) {
        self.h = sha256(&[&self.h, data]);
    }

    fn mix_key(&mut self, ikm: &[u8]) {
        let (ck, k) = hkdf2(&self.ck, ikm);
        self.ck = ck;
        self.k = Some(k);
        self.n = 0;
    }

    fn encrypt_and_hash(&mut self, plaintext: &[u8]) -> Vec<u8> {
        let ciphertext = match self.k {
            Some(k) => {
                let c = encrypt(&k, self.n, &self.h, plaintext);
                self.n += 1;
                c
            }
            None => plaintext.to_vec(),
        };
        self.mix_hash(&ciphertext);
        ciphertext
    }

    fn decrypt_and_hash(&mut self, ciphertext: &[u8]) -> Option<Vec<u8>> {
        let plaintext = match self.k {
            Some(k) => {
                let p = decrypt(&k, self.n, &self.h, ciphertext)?;
                self.n += 1;
                p
            }
            None => ciphertext.to_vec(),
        };
        self.mix_hash(ciphertext);
        Some(plaintext)
    }

    /// (c1, c2) = HKDF(ck, empty): initiator -> responder, responder -> initiator.
    fn split(&mut self) -> ([u8; 32], [u8; 32]) {
        let (c1, c2) = hkdf2(&self.ck, &[]);
        self.record("split", &[c1, c2].concat());
        (c1, c2)
    }
}

/// A key of the vector: its secret, and a check that its ElligatorSwift encoding decodes (BIP324)
/// to the x coordinate of secret·G. The aux bytes are not checked: how `ellswift_create` turns
/// them into one of the many encodings of a point is libsecp256k1's choice, not BIP324's.
fn key(who: &str, k: &EllSwiftKey) -> Result<(NonZeroScalar, [u8; 64]), String> {
    let secret = secret_scalar(&hex32(&format!("{who} secret"), &k.secret)?)
        .ok_or_else(|| format!("{who} secret is not in [1, n)"))?;
    let encoding = hex64(&format!("{who} ellswift"), &k.ellswift)?;
    eq(
        &format!("{who} ellswift decodes to x(secret·G)"),
        hex::encode(ellswift_decode(&encoding)),
        hex::encode(xonly_public(&secret)),
    )?;
    Ok((secret, encoding))
}

fn compare_trace(who: &str, found: &[TraceEntry], expected: &[TraceEntry]) -> Check {
    for (i, (f, e)) in found.iter().zip(expected).enumerate() {
        if f != e {
            return Err(format!(
                "{who} trace step {i} ({}): recomputed {f:?}, the vector has {e:?}",
                e.step
            ));
        }
    }
    eq(&format!("{who} trace length"), found.len(), expected.len())
}

struct Established {
    h: [u8; 32],
    c1: [u8; 32],
    c2: [u8; 32],
    server_xonly: [u8; 32],
}

pub fn check(t: &NoiseTest) -> Check {
    let (init_e, init_e_pub) = key("initiator ephemeral", &t.initiator.ephemeral)?;
    let (resp_e, resp_e_pub) = key("responder ephemeral", &t.responder.ephemeral)?;
    let (resp_s, resp_s_pub) = key("responder static", &t.responder.static_key)?;
    let authority = hex32("authorityPublicKey", &t.initiator.authority_public_key)?;
    let snm = unhex(
        "signatureNoiseMessage",
        &t.responder.certificate.signature_noise_message,
    )?;
    let fields = Certificate::parse(&snm)?;
    let c = &t.responder.certificate;
    eq("certificate version", fields.version, c.version)?;
    eq("certificate validFrom", fields.valid_from, c.valid_from)?;
    eq(
        "certificate notValidAfter",
        fields.not_valid_after,
        c.not_valid_after,
    )?;
    eq(
        "certificate signature",
        hex::encode(fields.signature),
        c.signature.clone(),
    )?;

    // Act 1, initiator: -> e.
    let mut initiator = State::new();
    initiator.mix_hash(&init_e_pub);
    initiator.record("mix_hash(e)", &init_e_pub);
    let act1 = init_e_pub;
    let empty = initiator.encrypt_and_hash(&[]);
    initiator.record("encrypt_and_hash(payload)", &empty);
    eq("act1", hex::encode(act1), t.act1.clone())?;

    // Act 1 read and act 2 written, responder: <- e, ee, s, es, SIGNATURE_NOISE_MESSAGE.
    let mut responder = State::new();
    responder.mix_hash(&act1);
    responder.record("mix_hash(re)", &act1);
    let payload = responder
        .decrypt_and_hash(&[])
        .ok_or("no key yet: cannot fail")?;
    responder.record("decrypt_and_hash(payload)", &payload);
    responder.mix_hash(&resp_e_pub);
    responder.record("mix_hash(e)", &resp_e_pub);
    let ee = bip324_ecdh(&resp_e, &act1, &act1, &resp_e_pub);
    responder.mix_key(&ee);
    responder.record("mix_key(ee)", &ee);
    let encrypted_s = responder.encrypt_and_hash(&resp_s_pub);
    responder.record("encrypt_and_hash(s)", &resp_s_pub);
    let es = bip324_ecdh(&resp_s, &act1, &act1, &resp_s_pub);
    responder.mix_key(&es);
    responder.record("mix_key(es)", &es);
    let encrypted_cert = responder.encrypt_and_hash(&snm);
    responder.record("encrypt_and_hash(payload)", &snm);
    let (r_c1, r_c2) = responder.split();
    let act2 = [&resp_e_pub[..], &encrypted_s, &encrypted_cert].concat();
    compare_trace("responder", &responder.trace, &t.responder_trace)?;
    eq("act2", hex::encode(&act2), t.act2.clone())?;

    let received = match &t.mutation {
        Some(m) => apply_mutation(&act2, m),
        None => act2,
    };
    eq(
        "receivedAct2",
        t.mutation.as_ref().map(|_| hex::encode(&received)),
        t.received_act2.clone(),
    )?;

    // Act 2 read, initiator, then the certificate check.
    let verdict = (|| -> Result<Established, &'static str> {
        if received.len() != ACT2_LEN {
            return Err("WRONG_LENGTH");
        }
        let re: [u8; 64] = received[..64].try_into().expect("64 bytes");
        initiator.mix_hash(&re);
        initiator.record("mix_hash(re)", &re);
        let ee = bip324_ecdh(&init_e, &re, &init_e_pub, &re);
        initiator.mix_key(&ee);
        initiator.record("mix_key(ee)", &ee);
        let rs = initiator
            .decrypt_and_hash(&received[64..144])
            .ok_or("DECRYPT_FAILED")?;
        initiator.record("decrypt_and_hash(s)", &rs);
        let rs: [u8; 64] = rs.try_into().expect("80 - 16 bytes");
        let es = bip324_ecdh(&init_e, &rs, &init_e_pub, &rs);
        initiator.mix_key(&es);
        initiator.record("mix_key(es)", &es);
        let cert = initiator
            .decrypt_and_hash(&received[144..])
            .ok_or("DECRYPT_FAILED")?;
        initiator.record("decrypt_and_hash(payload)", &cert);
        let server_xonly = ellswift_decode(&rs);
        Certificate::parse(&cert)
            .map_err(|_| "WRONG_LENGTH")?
            .verdict(&server_xonly, &authority, t.now, t.skew_secs)?;
        let (c1, c2) = initiator.split();
        Ok(Established {
            h: initiator.h,
            c1,
            c2,
            server_xonly,
        })
    })();
    compare_trace("initiator", &initiator.trace, &t.initiator_trace)?;
    outcome(
        t.result,
        verdict.as_ref().map(|_| ()).map_err(|e| *e),
        t.error.as_deref(),
        t.output.is_some(),
    )?;
    if let Ok(est) = verdict {
        let out = t.output.as_ref().ok_or("no output")?;
        eq(
            "handshakeHash",
            hex::encode(est.h),
            out.handshake_hash.clone(),
        )?;
        eq("c1", hex::encode(est.c1), out.c1.clone())?;
        eq("c2", hex::encode(est.c2), out.c2.clone())?;
        eq(
            "responderStaticXonly",
            hex::encode(est.server_xonly),
            out.responder_static_xonly.clone(),
        )?;
        eq("responder c1", r_c1, est.c1)?;
        eq("responder c2", r_c2, est.c2)?;
        eq("responder handshake hash", responder.h, est.h)?;
    }
    Ok(())
}
