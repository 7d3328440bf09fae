//! The non-frame vector files of `vectors/data` confirmed with the reference implementation's crates
//! (SRI: noise_sv2 2.0.0, codec_sv2 7.0.0, key-utils 1.2.0, and the secp256k1 0.28.2 and
//! chacha20poly1305 0.10.1 that noise_sv2 itself is built on), not with sv2-codec, which generated them.
//!
//! What SRI's public API lets us reach, and so what each part confirms:
//!
//! - **encrypted_framing.json.** SRI's transport cipher (`noise_sv2`'s `Cipher`) is private and only a
//!   completed handshake builds one, with keys and nonce 0 it derives itself: a vector's key and nonce
//!   cannot be handed to it. So the vectors are checked against (1) the AEAD SRI's `Cipher` wraps,
//!   `chacha20poly1305` 0.10.1, called as SRI calls it (empty AD, nonce = 4 zero bytes || n LE, a
//!   refusal at n = 2^64 - 1 as in SRI's `cipher_state.rs`), chunked with codec_sv2's constants
//!   (`ENCRYPTED_SV2_FRAME_HEADER_SIZE`, `SV2_FRAME_PLAINTEXT_CHUNK_SIZE`): every valid frame is
//!   re-encrypted and compared byte for byte (frames over 2048 bytes, which the vectors give by hash:
//!   SHA-256, length, head and tail) and, where the vector gives the whole ciphertext, decrypted back
//!   to the plaintext; (2) codec_sv2's `encrypted_payload_length` for every header; (3) a live
//!   SRI-to-SRI session whose `NoiseEncoder` encrypts each valid plaintext to the vector's ciphertext
//!   length and whose `NoiseDecoder` returns the plaintext. Tampered frames (rebuilt from the key
//!   and plaintext when given by hash) must fail at the vector's `errorStep`. The 2^24 - 1 byte
//!   frame goes through all of it, in full: about 10 s of the test in a debug build.
//! - **certificates.json.** SRI's `SignatureNoiseMessage::verify_with_now` is private too; SRI runs
//!   it inside `Initiator::step_2_with_now`. So each certificate goes through SRI's initiator: its
//!   ephemeral key is fixed through the RNG it takes, and act 2 is built here (sv2-codec's symmetric
//!   state; both DH values computed from the initiator's side, since the certificate vectors give
//!   no server secret) carrying the vector's server key and certificate. `Ok` is acceptance,
//!   `InvalidCertificate` refusal; any other error is a bug of this harness. A server key that is
//!   not on the curve cannot be carried (ElligatorSwift encodes curve points only); SRI's key type
//!   (secp256k1 0.28 `XOnlyPublicKey::from_slice`, what `Initiator::from_raw_k` uses) must refuse it.
//! - **authority_keys.json.** key-utils 1.2.0 (`Secp256k1PublicKey`, `Secp256k1SecretKey`: what
//!   SRI's roles parse their configuration with): decoded keys, re-encoded strings, refusals. SRI has
//!   no `stratum2+tcp://` URL parser; of the URL vectors only the key after the last `/` is checked.
//! - **noise_handshake.json.** SRI encodes its own keys with `ElligatorSwift::from_pubkey` (the
//!   libsecp256k1 encoder with zero randomness), the vectors with `ellswift_create(secret, aux)`: with
//!   the same secret, SRI's act 1 is another encoding of the same point, so h, ck, k, act 2, the
//!   handshake hash and the split keys of a vector can never come out of SRI byte for byte. What is
//!   confirmed: each key's `ellswift` is `ellswift_create(secret, aux)` (secp256k1 0.28); SRI's
//!   initiator with the vector's ephemeral secret (through its RNG) sends the same point as `act1`;
//!   SRI's responder accepts `act1` and, with the vector's responder secrets, authority and time,
//!   signs exactly the vector's 74-byte certificate (where the certificate is an ordinary one by a
//!   secret published in authority_keys.json), for the vector's responder static key; and SRI's
//!   initiator, given act 2 built against its act 1 from the vector's responder encodings and
//!   certificate, with the vector's mutation applied, accepts or refuses as the vector says at `now`.
//!
//! Every disagreement must be listed in `tests/data/vectors_noise_sri.txt` (reviewed; vectors/README.md
//! explains each). A new one, or a listed one that went away, fails the test. After a reviewed change:
//! `SV2_UPDATE_EXPECTED=1 cargo test -p sv2-interop --test vectors_noise`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chacha20poly1305_sri::aead::AeadInPlace;
use chacha20poly1305_sri::{ChaCha20Poly1305, KeyInit, Tag};
use codec_sv2::{encrypted_payload_length, ENCRYPTED_SV2_FRAME_HEADER_SIZE};
use key_utils::{Secp256k1PublicKey, Secp256k1SecretKey};
use noise_sv2::{Initiator, Responder, INITIATOR_EXPECTED_HANDSHAKE_MESSAGE_SIZE};
use secp256k1_sri::ellswift::{ElligatorSwift, ElligatorSwiftParty};
use secp256k1_sri::rand::{CryptoRng, RngCore};
use secp256k1_sri::{Parity, PublicKey, Secp256k1, SecretKey, XOnlyPublicKey};
use sv2_codec::noise::symmetric::{sha256, SymmetricState};
use sv2_codec::noise::{InitiatorConfig, KeySeed, SV2_PROTOCOL_NAME};
use sv2_interop::noise::{test_authority, SriInitiator, SriResponder};
use sv2_interop::sri_header;
use sv2_vectors::model::{
    EllSwiftKey, EncryptedTest, Mutation, NoiseTest, Outcome, TestGroup, VectorFile,
};

// ---------------------------------------------------------------------------------------------
// Shared

fn load(name: &str) -> VectorFile {
    let path = sv2_vectors::default_data_dir().join(name);
    let text = std::fs::read_to_string(&path).expect("read vectors");
    serde_json::from_str(&text).expect("parse vectors")
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).expect("hex")
}

fn arr<const N: usize>(s: &str) -> [u8; N] {
    unhex(s).try_into().expect("length")
}

/// Counts and disagreements of one vector file.
#[derive(Debug, Default)]
struct Tally {
    file: &'static str,
    checked: usize,
    agreed: usize,
    /// `file tcId kind` lines, compared with the reviewed list.
    found: BTreeSet<String>,
    /// Human-readable rows for the disagreements.
    rows: Vec<String>,
    /// Vectors (or parts of them) SRI's API cannot confirm.
    unconfirmed: Vec<String>,
}

impl Tally {
    fn new(file: &'static str) -> Self {
        Tally {
            file,
            ..Tally::default()
        }
    }

    fn agree(&mut self) {
        self.checked += 1;
        self.agreed += 1;
    }

    fn disagree(&mut self, tc_id: u32, kind: &str, why: String) {
        self.outcome(tc_id, vec![(kind, why)]);
    }

    /// One vector checked: it agrees when there is no problem; each problem is a disagreement.
    fn outcome(&mut self, tc_id: u32, problems: Vec<(&str, String)>) {
        self.checked += 1;
        if problems.is_empty() {
            self.agreed += 1;
        }
        for (kind, why) in problems {
            self.found.insert(format!("{} {tc_id} {kind}", self.file));
            self.rows
                .push(format!("{} {tc_id} {kind}: {why}", self.file));
        }
    }

    fn disagreeing(&self) -> usize {
        self.checked - self.agreed
    }

    /// Prints the tally and compares the disagreements with the reviewed list.
    fn finish(self) {
        println!(
            "{}: {} checked, {} agree, {} disagree",
            self.file,
            self.checked,
            self.agreed,
            self.disagreeing()
        );
        for row in &self.rows {
            println!("  disagreement: {row}");
        }
        for row in &self.unconfirmed {
            println!("  not confirmed: {row}");
        }
        let path = expected_path();
        let all = read_expected(&path);
        let prefix = format!("{} ", self.file);
        let expected: BTreeSet<String> = all
            .iter()
            .filter(|l| l.starts_with(&prefix))
            .cloned()
            .collect();
        if std::env::var_os("SV2_UPDATE_EXPECTED").is_some() {
            let mut lines: BTreeSet<String> = all
                .into_iter()
                .filter(|l| !l.starts_with(&prefix))
                .collect();
            lines.extend(self.found.iter().cloned());
            let mut text = String::from(
                "# Non-frame vectors where SRI disagrees with the vector (reviewed; see vectors/README.md).\n# file tcId kind\n",
            );
            for line in &lines {
                text.push_str(line);
                text.push('\n');
            }
            std::fs::write(&path, text).expect("write the expected list");
            return;
        }
        let new: Vec<_> = self.found.difference(&expected).collect();
        let gone: Vec<_> = expected.difference(&self.found).collect();
        assert!(
            new.is_empty() && gone.is_empty(),
            "{}: SRI disagreements changed.\nnew (unlisted): {new:#?}\ngone (listed, no longer seen): {gone:#?}",
            self.file
        );
    }
}

fn expected_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/vectors_noise_sri.txt")
}

fn read_expected(path: &PathBuf) -> BTreeSet<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.trim().to_string())
        .collect()
}

/// Whether a correct implementation (per the vector) accepts: valid, or acceptable and recorded as
/// accepted (no `error`).
fn vector_accepts(result: Outcome, error: &Option<String>) -> bool {
    match result {
        Outcome::Valid => true,
        Outcome::Invalid => false,
        Outcome::Acceptable => error.is_none(),
    }
}

/// An RNG that hands out a fixed script of bytes: how SRI's `*_with_rng` constructors are given the
/// vector's secrets (`SecretKey::new` draws 32 bytes) and BIP340 auxiliary randomness (32 zero bytes
/// sign as libsecp256k1 does without aux, which is how the vectors are signed). Running out panics.
#[derive(Debug)]
struct Script {
    bytes: Vec<u8>,
    pos: usize,
}

impl Script {
    fn new(parts: &[&[u8]]) -> Self {
        Script {
            bytes: parts.concat(),
            pos: 0,
        }
    }
}

impl RngCore for Script {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        let end = self.pos + dest.len();
        assert!(end <= self.bytes.len(), "the scripted RNG ran out");
        dest.copy_from_slice(&self.bytes[self.pos..end]);
        self.pos = end;
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), secp256k1_sri::rand::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for Script {}

/// The x-only key an ElligatorSwift encoding decodes to (secp256k1 0.28, as SRI decodes).
fn ellswift_xonly(enc: &[u8; 64]) -> [u8; 32] {
    PublicKey::from_ellswift(ElligatorSwift::from_array(*enc))
        .x_only_public_key()
        .0
        .serialize()
}

/// libsecp256k1's `ellswift_create(secret, aux)` (secp256k1 0.28; its `ElligatorSwift::new` passes a
/// context without the signing tables, which libsecp256k1 refuses, so `from_seckey` is used).
fn ellswift_of(secret: &[u8; 32], aux: [u8; 32]) -> [u8; 64] {
    let sk = SecretKey::from_slice(secret).expect("valid secret");
    ElligatorSwift::from_seckey(&Secp256k1::new(), sk, Some(aux)).to_array()
}

/// BIP324 x-only ECDH from the initiator's side (party A), as SRI's initiator computes it.
fn xdh_initiator(initiator_secret: &[u8; 32], ours: &[u8; 64], theirs: &[u8; 64]) -> [u8; 32] {
    let sk = SecretKey::from_slice(initiator_secret).expect("valid secret");
    ElligatorSwift::shared_secret(
        ElligatorSwift::from_array(*ours),
        ElligatorSwift::from_array(*theirs),
        sk,
        ElligatorSwiftParty::A,
        None,
    )
    .to_secret_bytes()
}

/// Act 2 of an NX handshake answering `act1`, built from the initiator's ephemeral secret (both DH
/// values are symmetric, so no responder secret is needed): the responder ephemeral `re`, the
/// encrypted static key `rs` and the encrypted 74-byte certificate.
fn forge_act2(
    initiator_secret: &[u8; 32],
    act1: &[u8; 64],
    re: &[u8; 64],
    rs: &[u8; 64],
    cert: &[u8],
) -> Vec<u8> {
    let mut sym = SymmetricState::new(SV2_PROTOCOL_NAME.as_bytes(), &[], false);
    sym.mix_hash("mix_hash(re)", act1);
    let mut none = Vec::new();
    sym.decrypt_and_hash("decrypt_and_hash(payload)", &[], &mut none)
        .expect("empty payload");
    let mut out = re.to_vec();
    sym.mix_hash("mix_hash(e)", re);
    sym.mix_key("mix_key(ee)", &xdh_initiator(initiator_secret, act1, re));
    sym.encrypt_and_hash("encrypt_and_hash(s)", rs, &mut out)
        .expect("encrypt s");
    sym.mix_key("mix_key(es)", &xdh_initiator(initiator_secret, act1, rs));
    sym.encrypt_and_hash("encrypt_and_hash(payload)", cert, &mut out)
        .expect("encrypt the certificate");
    assert_eq!(out.len(), INITIATOR_EXPECTED_HANDSHAKE_MESSAGE_SIZE);
    out
}

fn apply_mutation(bytes: &[u8], m: &Mutation) -> Vec<u8> {
    let mut out = bytes.to_vec();
    if let (Some(offset), Some(xor)) = (m.offset, m.xor) {
        out[offset] ^= xor;
    }
    if let Some(len) = m.truncate_to {
        out.truncate(len);
    }
    out
}

/// How SRI's initiator ended a handshake.
#[derive(Debug, PartialEq, Eq)]
enum SriVerdict {
    Accepted,
    /// `Error::InvalidCertificate`.
    CertificateRefused,
    /// An AEAD failure (`Error::Aead`).
    DecryptFailed,
    /// Act 2 of the wrong size: SRI's `step_2` takes exactly 234 bytes.
    WrongLength,
}

/// SRI's initiator with the ephemeral secret `e` (through its RNG) trusting `authority`: returns it
/// and its act 1.
fn sri_initiator(e: &[u8; 32], authority: [u8; 32]) -> (Box<Initiator>, [u8; 64]) {
    let mut rng = Script::new(&[e]);
    let mut initiator =
        Initiator::from_raw_k_with_rng(authority, &mut rng).expect("valid authority key");
    let act1 = initiator.step_0().expect("step_0");
    (initiator, act1)
}

fn sri_finish(initiator: &mut Initiator, act2: &[u8], now: u32) -> SriVerdict {
    let Ok(msg) = <[u8; INITIATOR_EXPECTED_HANDSHAKE_MESSAGE_SIZE]>::try_from(act2) else {
        return SriVerdict::WrongLength;
    };
    match initiator.step_2_with_now(msg, now) {
        Ok(_) => SriVerdict::Accepted,
        Err(noise_sv2::Error::InvalidCertificate(_)) => SriVerdict::CertificateRefused,
        Err(noise_sv2::Error::Aead(_)) => SriVerdict::DecryptFailed,
        Err(e) => panic!("unexpected SRI error {e:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// encrypted_framing.json

/// SRI's `CipherState` rules on the AEAD SRI uses: nonce `4 zero bytes || n LE`, empty AD, and no
/// call at n = 2^64 - 1 (`cipher_state.rs`; SRI's own cipher cannot be given a key or a nonce).
struct SriRuleCipher {
    aead: ChaCha20Poly1305,
    n: u64,
}

impl SriRuleCipher {
    fn new(key: &[u8; 32], n: u64) -> Self {
        SriRuleCipher {
            aead: ChaCha20Poly1305::new(key.into()),
            n,
        }
    }

    fn nonce(&self) -> [u8; 12] {
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&self.n.to_le_bytes());
        nonce
    }

    fn encrypt(&mut self, plain: &[u8], out: &mut Vec<u8>) -> Result<(), &'static str> {
        if self.n == u64::MAX {
            return Err("nonce exhausted");
        }
        let start = out.len();
        out.extend_from_slice(plain);
        let tag = self
            .aead
            .encrypt_in_place_detached(&self.nonce().into(), b"", &mut out[start..])
            .map_err(|_| "aead")?;
        out.extend_from_slice(&tag);
        self.n += 1;
        Ok(())
    }

    fn decrypt(&mut self, block: &[u8]) -> Result<Vec<u8>, &'static str> {
        if self.n == u64::MAX {
            return Err("nonce exhausted");
        }
        let (ct, tag) = block.split_at(block.len().checked_sub(16).ok_or("short block")?);
        let mut plain = ct.to_vec();
        self.aead
            .decrypt_in_place_detached(&self.nonce().into(), b"", &mut plain, Tag::from_slice(tag))
            .map_err(|_| "tag")?;
        self.n += 1;
        Ok(plain)
    }
}

/// The plaintext chunks of a frame, as codec_sv2's `NoiseEncoder` cuts it: the 6-byte header, then
/// chunks of `SV2_FRAME_PLAINTEXT_CHUNK_SIZE`.
fn sri_chunks(frame: &[u8]) -> Vec<&[u8]> {
    let mut chunks = vec![&frame[..6]];
    chunks.extend(frame[6..].chunks(codec_sv2::SV2_FRAME_PLAINTEXT_CHUNK_SIZE));
    chunks
}

/// Encrypts a plain frame: the ciphertext, or the error and how many AEAD calls succeeded.
fn encrypt_frame(cipher: &mut SriRuleCipher, frame: &[u8]) -> Result<Vec<u8>, &'static str> {
    let mut out = Vec::with_capacity(frame.len() + 16 * (frame.len() / 65519 + 2));
    for chunk in sri_chunks(frame) {
        cipher.encrypt(chunk, &mut out)?;
    }
    Ok(out)
}

/// Decrypts an encrypted frame of the given block lengths; on failure, the step that failed.
fn decrypt_frame(
    cipher: &mut SriRuleCipher,
    wire: &[u8],
    block_lengths: &[usize],
) -> Result<Vec<u8>, String> {
    let mut plain = Vec::with_capacity(wire.len());
    let mut at = 0;
    for (i, len) in block_lengths.iter().enumerate() {
        let step = if i == 0 {
            "header".to_string()
        } else {
            format!("block {}", i - 1)
        };
        let block = wire.get(at..at + len).ok_or_else(|| step.clone())?;
        plain.extend(cipher.decrypt(block).map_err(|_| step)?);
        at += len;
    }
    Ok(plain)
}

fn plain_frame(t: &EncryptedTest) -> Vec<u8> {
    let mut frame = unhex(&t.header);
    match (&t.payload, &t.payload_rule) {
        (Some(hex), _) => frame.extend(unhex(hex)),
        (None, Some(rule)) => frame.extend(rule.bytes()),
        (None, None) => {}
    }
    frame
}

/// Whether `wire` is the frame the vector gives (in full, or by hash, length, head and tail).
fn matches_vector(t: &EncryptedTest, wire: &[u8]) -> Result<(), String> {
    if let Some(ct) = &t.ciphertext {
        return if hex::encode(wire) == *ct {
            Ok(())
        } else {
            Err("ciphertext differs".into())
        };
    }
    let len = t.ciphertext_length.ok_or("no ciphertext given")?;
    if wire.len() != len {
        return Err(format!("length {} != {len}", wire.len()));
    }
    if Some(hex::encode(sha256(&[wire]))) != t.ciphertext_sha256 {
        return Err("SHA-256 differs".into());
    }
    if Some(hex::encode(&wire[..64])) != t.ciphertext_head
        || Some(hex::encode(&wire[len - 64..])) != t.ciphertext_tail
    {
        return Err("head or tail differs".into());
    }
    Ok(())
}

/// One encrypted-frame vector against the AEAD and codec_sv2's chunking; `Err` says why not.
fn check_encrypted(t: &EncryptedTest) -> Result<(), String> {
    let key: [u8; 32] = arr(&t.key);
    let frame = plain_frame(t);
    // codec_sv2's own length rule, from the header alone.
    let header = sri_header(&frame[..6]).map_err(|e| format!("SRI header: {e}"))?;
    let sri_len = ENCRYPTED_SV2_FRAME_HEADER_SIZE + encrypted_payload_length(&header);
    let lengths: Vec<usize> = sri_chunks(&frame).iter().map(|c| c.len() + 16).collect();
    // A refused frame lists no blocks.
    if !t.block_lengths.is_empty() {
        let total: usize = t.block_lengths.iter().sum();
        if sri_len != total {
            return Err(format!("codec_sv2 length {sri_len} != blocks {total}"));
        }
        if lengths != t.block_lengths {
            return Err(format!("block lengths {lengths:?}"));
        }
    } else if t.error.is_none() {
        return Err("a valid frame without blocks".into());
    }

    let mut cipher = SriRuleCipher::new(&key, t.nonce);
    let encrypted = encrypt_frame(&mut cipher, &frame);
    if t.error.as_deref() == Some("NONCE_EXHAUSTED") {
        // SRI's `NoiseEncoder` encrypts the header before it meets the refused block: its counter is
        // then one past `nextNonce` (the vector's counter is untouched); either way the frame is
        // refused and the session can send nothing more.
        return match encrypted {
            Err(_) => Ok(()),
            Ok(_) => Err("encryption not refused".into()),
        };
    }
    let wire = encrypted.map_err(|e| format!("encryption refused: {e}"))?;
    matches_vector(t, &wire)?;
    if cipher.n != t.next_nonce {
        return Err(format!("next nonce {} != {}", cipher.n, t.next_nonce));
    }

    // Decrypt the vector's own bytes. A frame given by hash is the re-encryption, equal to it: its
    // decryption would only check the AEAD against itself, so only tampered ones are decrypted.
    let given = t.ciphertext.as_deref().map(unhex).unwrap_or(wire);
    let mut cipher = SriRuleCipher::new(&key, t.nonce);
    match &t.mutation {
        None if t.ciphertext.is_none() => {}
        None => {
            let plain = decrypt_frame(&mut cipher, &given, &t.block_lengths)
                .map_err(|step| format!("decryption failed at {step}"))?;
            if plain != frame {
                return Err("decrypted plaintext differs".into());
            }
        }
        Some(m) => {
            let tampered = apply_mutation(&given, m);
            match decrypt_frame(&mut cipher, &tampered, &t.block_lengths) {
                Ok(_) => return Err("tampered frame decrypted".into()),
                Err(step) if Some(&step) != t.error_step.as_ref() => {
                    return Err(format!("failed at {step}, vector says {:?}", t.error_step));
                }
                Err(_) => {}
            }
        }
    }
    Ok(())
}

#[test]
fn encrypted_framing_against_sri() {
    let started = Instant::now();
    let file = load("encrypted_framing.json");
    let mut tally = Tally::new("encrypted_framing.json");
    // A live SRI session: its encoder and decoder on every valid plaintext (keys are SRI's own).
    let (initiator, act1) =
        SriInitiator::start(test_authority().public.xonly()).expect("SRI act 1");
    let responder = SriResponder::new(&test_authority(), Duration::from_secs(3600)).expect("SRI");
    let (act2, mut responder_side) = responder.respond(&act1).expect("SRI act 2");
    let mut initiator_side = initiator
        .finish(&act2, now_secs())
        .expect("SRI accepts SRI");

    for group in &file.test_groups {
        let TestGroup::EncryptedFrameTest(g) = group else {
            continue;
        };
        for t in &g.tests {
            let mut outcome = check_encrypted(t);
            if outcome.is_ok() && t.result == Outcome::Valid {
                let frame = plain_frame(t);
                outcome = match initiator_side.encrypt(&frame) {
                    Err(e) => Err(format!("SRI NoiseEncoder: {e}")),
                    Ok(wire) if wire.len() != t.block_lengths.iter().sum::<usize>() => {
                        Err(format!("SRI NoiseEncoder wrote {} bytes", wire.len()))
                    }
                    Ok(wire) => match responder_side.decrypt(&wire) {
                        Ok(frames) if frames == [frame] => Ok(()),
                        Ok(_) => Err("SRI NoiseDecoder returned another frame".into()),
                        Err(e) => Err(format!("SRI NoiseDecoder: {e}")),
                    },
                };
            }
            match outcome {
                Ok(()) => tally.agree(),
                Err(why) => tally.disagree(t.tc_id, "differs", why),
            }
        }
    }
    tally.unconfirmed.push(
        "every tcId: SRI's Cipher takes no key or nonce from outside a handshake; the bytes are \
         confirmed with the AEAD it wraps (chacha20poly1305 0.10.1) under SRI's nonce rules, the \
         lengths with codec_sv2 and a live SRI session"
            .into(),
    );
    tally.unconfirmed.push(
        "17 (NONCE_EXHAUSTED): SRI's refusal at n = 2^64 - 1 is read from its source, not run \
         (its counter starts at 0)"
            .into(),
    );
    assert_eq!(tally.checked, file.number_of_tests);
    println!("encrypted_framing.json in {:?}", started.elapsed());
    tally.finish();
}

fn now_secs() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as u32
}

// ---------------------------------------------------------------------------------------------
// certificates.json

/// A fixed initiator ephemeral secret and a fixed responder ephemeral for the certificate handshakes
/// (any values do: only the certificate is under test).
const CERT_INITIATOR_E: [u8; 32] = [0x11; 32];
const CERT_RESPONDER_E: [u8; 32] = [0x22; 32];

#[test]
fn certificates_against_sri() {
    let file = load("certificates.json");
    let mut tally = Tally::new("certificates.json");
    let re = ellswift_of(&CERT_RESPONDER_E, [0x33; 32]);
    for group in &file.test_groups {
        let TestGroup::CertificateTest(g) = group else {
            continue;
        };
        let authority: [u8; 32] = arr(&g.authority_public_key);
        for t in &g.tests {
            let accepts = vector_accepts(t.result, &t.error);
            let server: [u8; 32] = arr(&t.server_public_key);
            let cert = unhex(&t.signature_noise_message);
            assert_eq!(cert.len(), 74, "tcId {}", t.tc_id);
            let Ok(xonly) = XOnlyPublicKey::from_slice(&server) else {
                // Not a curve point: SRI cannot hold it as a key, so it can never accept it.
                if accepts {
                    tally.disagree(
                        t.tc_id,
                        "sri-refuses",
                        "SRI's XOnlyPublicKey refuses the server key".into(),
                    );
                } else {
                    tally.agree();
                    tally.unconfirmed.push(format!(
                        "{} (server key not on the curve): refused by SRI's key type, not through \
                         a handshake (ElligatorSwift cannot carry it)",
                        t.tc_id
                    ));
                }
                continue;
            };
            let rs = ElligatorSwift::from_pubkey(xonly.public_key(Parity::Even)).to_array();
            assert_eq!(ellswift_xonly(&rs), server);
            let (mut initiator, act1) = sri_initiator(&CERT_INITIATOR_E, authority);
            let act2 = forge_act2(&CERT_INITIATOR_E, &act1, &re, &rs, &cert);
            let verdict = sri_finish(&mut initiator, &act2, t.now);
            match (accepts, &verdict) {
                (true, SriVerdict::Accepted) | (false, SriVerdict::CertificateRefused) => {
                    tally.agree()
                }
                (true, SriVerdict::CertificateRefused) => tally.disagree(
                    t.tc_id,
                    "sri-refuses",
                    format!(
                        "{} (version {}, now {} in [{}, {}])",
                        t.comment, t.version, t.now, t.valid_from, t.not_valid_after
                    ),
                ),
                (false, SriVerdict::Accepted) => {
                    tally.disagree(t.tc_id, "sri-accepts", t.comment.clone())
                }
                (_, other) => panic!("tcId {}: the harness's act 2 failed: {other:?}", t.tc_id),
            }
        }
    }
    assert_eq!(tally.checked, file.number_of_tests);
    tally.finish();
}

// ---------------------------------------------------------------------------------------------
// authority_keys.json

#[test]
fn authority_keys_against_sri() {
    let file = load("authority_keys.json");
    let mut tally = Tally::new("authority_keys.json");
    for group in &file.test_groups {
        match group {
            TestGroup::AuthorityKeyTest(g) => {
                for t in &g.tests {
                    let parsed = t.base58.parse::<Secp256k1PublicKey>();
                    let verdict = match (&parsed, t.result) {
                        (Ok(key), Outcome::Valid) => {
                            let want = t.public_key.as_deref().unwrap_or_default();
                            if hex::encode(key.into_bytes()) != want {
                                Err((
                                    "value-differs",
                                    format!("key {}", hex::encode(key.into_bytes())),
                                ))
                            } else if key.to_string() != t.base58 {
                                Err(("value-differs", format!("re-encoded {key}")))
                            } else {
                                Ok(())
                            }
                        }
                        (Err(e), Outcome::Valid) => Err(("sri-refuses", e.to_string())),
                        (Ok(key), _) => Err((
                            "sri-accepts",
                            format!("as {}", hex::encode(key.into_bytes())),
                        )),
                        (Err(_), _) => Ok(()),
                    };
                    match verdict {
                        Ok(()) => tally.agree(),
                        Err((kind, why)) => {
                            tally.disagree(t.tc_id, kind, format!("{}: {why}", t.comment))
                        }
                    }
                }
            }
            TestGroup::SecretKeyTest(g) => {
                for t in &g.tests {
                    let parsed = t.base58.parse::<Secp256k1SecretKey>();
                    let verdict = match (parsed, t.result) {
                        (Ok(secret), Outcome::Valid) => {
                            let public = Secp256k1PublicKey::from(secret);
                            if Some(hex::encode(secret.into_bytes())) != t.secret
                                || Some(hex::encode(public.into_bytes())) != t.public_key
                            {
                                Err(("value-differs", "secret or public key".to_string()))
                            } else if secret.to_string() != t.base58
                                || Some(public.to_string()) != t.public_key_base58
                            {
                                Err(("value-differs", "re-encoding".to_string()))
                            } else {
                                Ok(())
                            }
                        }
                        (Err(e), Outcome::Valid) => Err(("sri-refuses", e.to_string())),
                        (Ok(_), _) => Err(("sri-accepts", String::new())),
                        (Err(_), _) => Ok(()),
                    };
                    match verdict {
                        Ok(()) => tally.agree(),
                        Err((kind, why)) => {
                            tally.disagree(t.tc_id, kind, format!("{}: {why}", t.comment))
                        }
                    }
                }
            }
            TestGroup::UrlTest(g) => {
                for t in &g.tests {
                    // SRI has no URL parser: only the key after the last '/' can be checked.
                    let key_part = t
                        .url
                        .strip_prefix("stratum2+tcp://")
                        .and_then(|rest| rest.rsplit_once('/'))
                        .map(|(_, key)| key);
                    let checkable = match t.result {
                        Outcome::Valid => t.public_key.is_some(),
                        _ => t.error.as_deref().is_some_and(|e| e.starts_with("BASE58")),
                    };
                    let (true, Some(key_part)) = (checkable, key_part) else {
                        tally.unconfirmed.push(format!(
                            "{} ({}): URL syntax; SRI's crates have no URL parser",
                            t.tc_id, t.comment
                        ));
                        continue;
                    };
                    match (key_part.parse::<Secp256k1PublicKey>(), t.result) {
                        (Ok(key), Outcome::Valid)
                            if Some(hex::encode(key.into_bytes())) == t.public_key =>
                        {
                            tally.agree()
                        }
                        (Err(_), Outcome::Invalid) => tally.agree(),
                        (parsed, _) => tally.disagree(
                            t.tc_id,
                            "url-key-differs",
                            format!(
                                "{}: key-utils says {:?}",
                                t.comment,
                                parsed.map(|k| k.to_string())
                            ),
                        ),
                    }
                }
            }
            _ => {}
        }
    }
    tally.finish();
}

// ---------------------------------------------------------------------------------------------
// noise_handshake.json

fn ellswift_create(key: &EllSwiftKey) -> [u8; 64] {
    ellswift_of(&arr(&key.secret), arr(&key.aux))
}

/// The flags under which a certificate is not an ordinary one signed by the trusted authority.
const UNUSUAL_CERTIFICATE: &[&str] = &["WrongAuthority", "BadSignature", "CertificateVersion"];

/// SRI's responder with the vector's ephemeral and static secrets (through its RNG), the authority
/// secret and the certificate window, answering the vector's act 1 at `valid_from`: its act 2, read
/// by sv2-codec's initiator with the vector's ephemeral key, must carry exactly the vector's
/// certificate for the vector's static key.
fn sri_signs_the_vector_certificate(
    t: &NoiseTest,
    authority_secret: &[u8; 32],
) -> Result<(), String> {
    let cert = &t.responder.certificate;
    let authority: [u8; 32] = arr(&t.initiator.authority_public_key);
    let e: [u8; 32] = arr(&t.responder.ephemeral.secret);
    let s: [u8; 32] = arr(&t.responder.static_key.secret);
    let validity = Duration::from_secs(u64::from(cert.not_valid_after - cert.valid_from));
    let mut rng = Script::new(&[&e, &s]);
    let mut responder =
        Responder::from_authority_kp_with_rng(&authority, authority_secret, validity, &mut rng)
            .map_err(|e| format!("SRI responder: {e:?}"))?;
    let act1: [u8; 64] = arr(&t.act1);
    let mut aux = Script::new(&[&[0u8; 32]]);
    let (act2, _engine) = responder
        .step_1_with_now_rng(act1, cert.valid_from, &mut aux)
        .map_err(|e| format!("SRI refuses act 1: {e:?}"))?;

    let seed = KeySeed::new(
        arr(&t.initiator.ephemeral.secret),
        arr(&t.initiator.ephemeral.aux),
    );
    let mut ours = sv2_codec::noise::Initiator::new(InitiatorConfig::unauthenticated(), &seed)
        .map_err(|e| e.to_string())?;
    let our_act1 = ours.write_act1().map_err(|e| e.to_string())?;
    assert_eq!(hex::encode(our_act1), t.act1, "tcId {}", t.tc_id);
    let done = ours
        .read_act2(&act2, cert.valid_from)
        .map_err(|e| format!("SRI's act 2 unreadable: {e}"))?;
    if hex::encode(done.certificate.to_bytes()) != cert.signature_noise_message {
        return Err(format!(
            "SRI signs {}",
            hex::encode(done.certificate.to_bytes())
        ));
    }
    // The vector's static key (its `output`, when the handshake completes, says the same).
    let static_xonly = hex::encode(ellswift_xonly(&arr(&t.responder.static_key.ellswift)));
    if let Some(out) = &t.output {
        assert_eq!(out.responder_static_xonly, static_xonly, "tcId {}", t.tc_id);
    }
    if hex::encode(done.certified_key) != static_xonly {
        return Err("SRI's static key differs".into());
    }
    Ok(())
}

#[test]
fn noise_handshake_against_sri() {
    // Authority secrets the vectors publish (authority_keys.json), by x-only public key.
    let mut secrets: BTreeMap<String, [u8; 32]> = BTreeMap::new();
    for group in &load("authority_keys.json").test_groups {
        if let TestGroup::SecretKeyTest(g) = group {
            for t in g.tests.iter().filter(|t| t.result == Outcome::Valid) {
                if let (Some(s), Some(p)) = (&t.secret, &t.public_key) {
                    secrets.insert(p.clone(), arr(s));
                }
            }
        }
    }

    let file = load("noise_handshake.json");
    let mut tally = Tally::new("noise_handshake.json");
    let mut signed = 0;
    for group in &file.test_groups {
        let TestGroup::NoiseHandshakeTest(g) = group else {
            continue;
        };
        for t in &g.tests {
            // The keys: every encoding is ellswift_create(secret, aux).
            for key in [
                &t.initiator.ephemeral,
                &t.responder.ephemeral,
                &t.responder.static_key,
            ] {
                assert_eq!(
                    hex::encode(ellswift_create(key)),
                    key.ellswift,
                    "tcId {}: ellswift_create(secret, aux)",
                    t.tc_id
                );
            }
            assert_eq!(t.act1, t.initiator.ephemeral.ellswift, "tcId {}", t.tc_id);

            // SRI's initiator with the vector's ephemeral secret sends the same point.
            let e: [u8; 32] = arr(&t.initiator.ephemeral.secret);
            let authority: [u8; 32] = arr(&t.initiator.authority_public_key);
            let (mut initiator, sri_act1) = sri_initiator(&e, authority);
            assert_eq!(
                ellswift_xonly(&sri_act1),
                ellswift_xonly(&arr(&t.act1)),
                "tcId {}: SRI's act 1 is another point",
                t.tc_id
            );

            // SRI's responder on the vector's act 1; the certificate it signs.
            let ordinary = !t
                .flags
                .iter()
                .any(|f| UNUSUAL_CERTIFICATE.contains(&f.as_str()));
            let mut problems = Vec::new();
            match secrets.get(&t.initiator.authority_public_key) {
                Some(secret) if ordinary => match sri_signs_the_vector_certificate(t, secret) {
                    Ok(()) => {
                        signed += 1;
                        println!("  tcId {}: SRI signs the vector's certificate", t.tc_id);
                    }
                    Err(why) => problems.push(("sri-certificate-differs", why)),
                },
                _ => {
                    // Still: SRI's responder takes the vector's act 1.
                    let responder = SriResponder::new(&test_authority(), Duration::from_secs(60))
                        .expect("SRI responder");
                    if let Err(e) = responder.respond(&unhex(&t.act1)) {
                        problems.push(("sri-refuses-act1", e.to_string()));
                    }
                }
            }

            // SRI's initiator on act 2 built from the vector's responder side.
            let act2 = forge_act2(
                &e,
                &sri_act1,
                &arr(&t.responder.ephemeral.ellswift),
                &arr(&t.responder.static_key.ellswift),
                &unhex(&t.responder.certificate.signature_noise_message),
            );
            let received = match &t.mutation {
                Some(m) => apply_mutation(&act2, m),
                None => act2,
            };
            let verdict = sri_finish(&mut initiator, &received, t.now);
            let accepts = vector_accepts(t.result, &t.error);
            let expected = match t.error.as_deref() {
                _ if accepts => SriVerdict::Accepted,
                Some("DECRYPT_FAILED") => SriVerdict::DecryptFailed,
                Some("WRONG_LENGTH") => SriVerdict::WrongLength,
                _ => SriVerdict::CertificateRefused,
            };
            if verdict != expected {
                let kind = match (accepts, &verdict) {
                    (true, _) => "sri-refuses",
                    (false, SriVerdict::Accepted) => "sri-accepts",
                    (false, _) => "sri-refuses-otherwise",
                };
                problems.push((
                    kind,
                    format!("{}: SRI {verdict:?}, vector {expected:?}", t.comment),
                ));
            }
            tally.outcome(t.tc_id, problems);
        }
    }
    println!("SRI's responder signed the vector's certificate in {signed} vectors");
    tally.unconfirmed.push(
        "every tcId: act1/act2 bytes, every h/ck/k, the handshake hash and c1/c2: SRI encodes its \
         keys with zero ElligatorSwift randomness and takes no aux bytes, so no transcript of a \
         vector can come out of SRI"
            .into(),
    );
    tally.finish();
    assert!(signed >= 7, "only {signed} certificates reproduced by SRI");
}
