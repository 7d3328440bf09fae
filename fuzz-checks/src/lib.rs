//! The checks of the codec fuzz targets, one public function per target, and the seeds each target
//! starts from.
//!
//! One implementation for three drivers: the cargo-fuzz targets (`fuzz/fuzz_targets/<target>.rs`) call
//! these functions, `codec/tests/fuzz_regressions.rs` replays `fuzz/regressions/<target>/*` through
//! them on stable, and `codec/examples/fuzz_seeds.rs` writes the seed corpora with [`seeds`]. It
//! depends on `sv2_codec`, `sv2_wire` (the capture reader) and `serde_json` only.
//!
//! A check panics (an `assert!`) when a property fails; the fuzzer turns that into a crash file. Every
//! input is meaningful: the small [`Input`] reader yields zeros once the bytes run out.

#![forbid(unsafe_code)]

pub mod corpus;

use std::sync::OnceLock;

use sv2_codec::frame::{Frame, FrameDecoder, Header, OwnedFrame, HEADER_LEN, MAX_PAYLOAD_LEN};
use sv2_codec::messages::{decode_frame, to_frame_bytes, Message};
use sv2_codec::noise::cert::{SignatureNoiseMessage, ValidityPolicy, SIGNATURE_NOISE_MESSAGE_LEN};
use sv2_codec::noise::keys::{Keypair, SecretKey};
use sv2_codec::noise::transport::{
    block_count, ENCRYPTED_HEADER_LEN, MAX_BLOCK_LEN, MAX_CHUNK_LEN,
};
use sv2_codec::noise::{
    CipherState, DecryptStep, Decryptor, Encryptor, Established, Initiator, InitiatorConfig,
    KeySeed, NoiseError, Responder, ResponderConfig, ACT1_LEN, ACT2_LEN,
};
use sv2_codec::types::WarningKind;
use sv2_codec::{FrameError, Tlv};

/// A target's check: panics when a property fails.
pub type Check = fn(&[u8]);

/// The codec targets and their checks (the differential target lives in `differential.rs`).
pub const TARGETS: &[(&str, Check)] = &[
    ("frame_splits", frame_splits),
    ("messages", messages),
    ("noise_responder", noise_responder),
    ("noise_initiator", noise_initiator),
    ("transport", transport),
    ("capture", capture),
];

/// The check of the codec target `name`.
pub fn check_of(name: &str) -> Option<Check> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// Reads fuzz bytes front to back; past the end every read yields zeros (or an empty slice).
#[derive(Debug, Clone)]
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    pub fn u24(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), 0])
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    /// Up to `n` bytes (fewer when the input runs out).
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// Exactly `N` bytes, zero-padded.
    pub fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let got = self.take(N);
        out[..got.len()].copy_from_slice(got);
        out
    }

    pub fn rest(&mut self) -> &'a [u8] {
        self.take(self.data.len())
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// Chunk sizes for splitting a stream: `count` bytes, each a chunk length (0 counts as 1), cycled.
fn read_splits(input: &mut Input<'_>) -> Vec<usize> {
    let count = usize::from(input.byte() % 16);
    let splits: Vec<usize> = input
        .take(count)
        .iter()
        .map(|&b| usize::from(b).max(1))
        .collect();
    if splits.is_empty() {
        vec![usize::MAX]
    } else {
        splits
    }
}

/// Cuts `stream` into chunks of the given sizes, cycled.
fn chunks<'s>(stream: &'s [u8], splits: &[usize]) -> Vec<&'s [u8]> {
    let mut out = Vec::new();
    let mut rest = stream;
    for &size in splits.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (head, tail) = rest.split_at(size.min(rest.len()));
        out.push(head);
        rest = tail;
    }
    out
}

// ---------------------------------------------------------------------------------------------------
// frame_splits

/// What a stream decodes to: whole frames, then the error that stopped it, if any.
type FrameEvents = (Vec<OwnedFrame>, Option<FrameError>);

/// Feeds `input` to the decoder with `push`, checking its progress contract, until it is used up or
/// an error stops the stream.
fn feed_frames(dec: &mut FrameDecoder, mut input: &[u8], events: &mut FrameEvents) -> bool {
    while !input.is_empty() {
        match dec.push(input) {
            Ok((used, frame)) => {
                assert!(used > 0, "push made no progress on {} bytes", input.len());
                assert!(used <= input.len(), "push used more than it was given");
                if frame.is_none() {
                    assert_eq!(used, input.len(), "push kept bytes back without a frame");
                }
                input = &input[used..];
                events.0.extend(frame);
            }
            Err(e) => {
                events.1 = Some(e);
                return false;
            }
        }
    }
    true
}

/// `frame_splits`: the incremental frame decoder on one stream pushed whole and pushed in arbitrary
/// chunks.
///
/// Input: `max selector (1) | split count (1) | split sizes (count) | stream`.
///
/// Properties: both ways give the same frames and the same error as cutting the stream with
/// [`Frame::parse_with_max`]; `push` always makes progress and never keeps bytes back without
/// returning a frame; a claim above the maximum is refused as soon as its header is complete; after
/// the stream, `needed()` and `is_idle()` describe the partial frame left.
pub fn frame_splits(data: &[u8]) {
    let mut input = Input::new(data);
    let selector = input.byte();
    let max = match selector % 4 {
        0 => MAX_PAYLOAD_LEN,
        1 => 0,
        2 => usize::from(selector),
        _ => usize::from(selector) * 64,
    };
    let splits = read_splits(&mut input);
    let stream = input.rest();

    // The model: cut frames off the front of the whole stream.
    let mut expected: FrameEvents = (Vec::new(), None);
    let mut rest = stream;
    loop {
        match Frame::parse_with_max(rest, max) {
            Ok((frame, used)) => {
                expected.0.push(frame.to_owned_frame());
                rest = &rest[used..];
            }
            Err(FrameError::Incomplete { .. }) => break,
            Err(e) => {
                expected.1 = Some(e);
                break;
            }
        }
    }

    let mut whole_dec = FrameDecoder::new(max);
    let mut whole: FrameEvents = (Vec::new(), None);
    feed_frames(&mut whole_dec, stream, &mut whole);

    let mut split_dec = FrameDecoder::new(max);
    let mut split: FrameEvents = (Vec::new(), None);
    for chunk in chunks(stream, &splits) {
        if !feed_frames(&mut split_dec, chunk, &mut split) {
            break;
        }
    }

    assert_eq!(whole, expected, "pushed whole vs Frame::parse_with_max");
    assert_eq!(split, expected, "pushed in chunks {splits:?} vs whole");

    if expected.1.is_none() {
        // `rest` is the partial frame left over; the decoders hold exactly that.
        let needed = match Frame::parse_with_max(rest, max) {
            Err(FrameError::Incomplete { needed }) => needed,
            other => panic!("model left a non-partial rest: {other:?}"),
        };
        for dec in [&whole_dec, &split_dec] {
            assert_eq!(
                dec.needed(),
                needed,
                "needed() with {} bytes left",
                rest.len()
            );
            assert_eq!(dec.is_idle(), rest.is_empty());
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// messages

/// The input as one frame: its first six bytes are the header, the rest the payload, and the header's
/// msg_length is rewritten to the payload's length (so that fuzzing time goes to the payload rather
/// than to matching a length). `None` below six bytes or above the U24 maximum.
pub fn normalized_frame(data: &[u8]) -> Option<Vec<u8>> {
    let payload_len = data.len().checked_sub(HEADER_LEN)?;
    if payload_len > MAX_PAYLOAD_LEN {
        return None;
    }
    let mut frame = data.to_vec();
    let len = (payload_len as u32).to_le_bytes();
    frame[3..6].copy_from_slice(&len[..3]);
    Some(frame)
}

/// `messages`: strict decode of every message of every subprotocol (Common, Mining, Job Declaration,
/// Template Distribution, extension 0x0001, TLVs such as extension 0x0002's user_identity, and raw
/// frames of unknown extensions), then canonical re-encode and JSON.
///
/// Input: one frame (see [`normalized_frame`]).
///
/// Properties: a decode error names an offset inside the payload and displays; a decoded frame
/// re-encodes (message and TLVs) to the input bytes exactly, except non-canonical BOOL bytes, which
/// come back as their low bit, at the offsets the warnings name and nowhere else; the re-encoded frame
/// decodes to the same bytes again without warnings of that kind (a fixpoint); the message's JSON
/// parses back to a message that encodes to the same bytes; the TLVs' JSON parses back equal.
pub fn messages(data: &[u8]) {
    let Some(frame) = normalized_frame(data) else {
        return;
    };
    let (parsed, used) = Frame::parse(&frame).expect("a normalized frame parses");
    assert_eq!(used, frame.len());
    let decoded = match decode_frame(&parsed) {
        Ok(decoded) => decoded,
        Err(e) => {
            assert!(
                e.offset <= parsed.payload.len(),
                "error offset {} past the payload of {}: {e}",
                e.offset,
                parsed.payload.len()
            );
            assert!(!e.to_string().is_empty());
            return;
        }
    };

    let bytes =
        to_frame_bytes(&decoded.message, &decoded.tlvs).expect("a decoded frame re-encodes");
    let bool_offsets: Vec<usize> = decoded
        .warnings
        .iter()
        .filter(|w| matches!(w.kind, WarningKind::NonCanonicalBool { .. }))
        .map(|w| HEADER_LEN + w.offset)
        .collect();
    assert_eq!(
        bytes.len(),
        frame.len(),
        "re-encoded length differs: {:?}",
        decoded.message
    );
    for (i, (&ours, &input)) in bytes.iter().zip(&frame).enumerate() {
        if ours != input {
            assert!(
                bool_offsets.contains(&i) && ours == input & 1,
                "re-encoded byte {i} is {ours:#04x}, the input has {input:#04x} (BOOL offsets \
                 {bool_offsets:?}): {:?}",
                decoded.message
            );
        }
    }

    // The canonical form is a fixpoint.
    let (again, _) = Frame::parse(&bytes).expect("re-encoded frame parses");
    let again = decode_frame(&again).expect("the re-encoded frame decodes");
    assert!(
        !again
            .warnings
            .iter()
            .any(|w| matches!(w.kind, WarningKind::NonCanonicalBool { .. })),
        "the re-encoded frame still has a non-canonical BOOL"
    );
    assert_eq!(
        to_frame_bytes(&again.message, &again.tlvs).expect("re-encodes"),
        bytes,
        "second re-encode differs"
    );

    // JSON (codec/JSON.md): message, TLVs and warnings.
    let json = serde_json::to_string(&decoded.message).expect("message serializes");
    let back: Message<'static> = serde_json::from_str(&json)
        .unwrap_or_else(|e| panic!("JSON does not parse back: {e}\n  {json}"));
    assert_eq!(
        to_frame_bytes(&back, &decoded.tlvs).expect("JSON message encodes"),
        bytes,
        "JSON round trip changed the message: {json}"
    );
    let value = serde_json::to_value(&decoded.message).expect("message to a JSON value");
    let back: Message<'static> = serde_json::from_value(value).expect("JSON value parses back");
    assert_eq!(
        to_frame_bytes(&back, &decoded.tlvs).expect("JSON value message encodes"),
        bytes
    );
    let tlvs_json = serde_json::to_string(&decoded.tlvs).expect("TLVs serialize");
    let tlvs_back: Vec<Tlv<'static>> = serde_json::from_str(&tlvs_json).expect("TLVs parse back");
    assert_eq!(tlvs_back, decoded.tlvs, "TLV JSON round trip: {tlvs_json}");
    serde_json::to_string(&decoded.warnings).expect("warnings serialize");
}

// ---------------------------------------------------------------------------------------------------
// Noise fixtures: fixed keys, so every run is deterministic.

/// The clock the fixtures' certificate is valid at.
pub const FIXTURE_NOW: u32 = 1_750_000_000;
const CERT_FROM: u32 = 1_700_000_000;
const CERT_UNTIL: u32 = 1_800_000_000;

/// Fixed keys, the responder's certificate, and one complete handshake between the two fixed sides.
#[derive(Debug)]
pub struct NoiseFixture {
    pub authority: Keypair,
    pub responder_static: SecretKey,
    pub responder_ephemeral: KeySeed,
    pub initiator_ephemeral: KeySeed,
    pub certificate: SignatureNoiseMessage,
    /// Act 1 of the fixed initiator.
    pub act1: Vec<u8>,
    /// Act 2 of the fixed responder answering `act1`.
    pub act2: Vec<u8>,
    /// The responder's side of that handshake.
    pub established: Established,
}

fn secret(byte: u8) -> SecretKey {
    SecretKey::from_bytes([byte; 32]).expect("a small repeated byte is a valid scalar")
}

impl NoiseFixture {
    pub fn responder_config(&self, certificate: SignatureNoiseMessage) -> ResponderConfig {
        ResponderConfig::new(&self.responder_static, certificate)
    }

    pub fn responder(&self) -> Responder {
        Responder::new(
            self.responder_config(self.certificate),
            &self.responder_ephemeral,
        )
        .expect("fixed responder keys are valid")
    }

    pub fn initiator(&self, authenticated: bool) -> Initiator {
        let config = if authenticated {
            InitiatorConfig::new(self.authority.public)
        } else {
            InitiatorConfig::unauthenticated()
        };
        Initiator::new(config, &self.initiator_ephemeral).expect("fixed initiator key is valid")
    }
}

/// The Noise fixture (built once).
pub fn noise_fixture() -> &'static NoiseFixture {
    static FIXTURE: OnceLock<NoiseFixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let authority = Keypair::from_secret(secret(0x11));
        let responder_static = secret(0x22);
        let certificate = SignatureNoiseMessage::issue(
            0,
            CERT_FROM,
            CERT_UNTIL,
            &responder_static.xonly_public(),
            &authority,
            None,
        );
        let responder_ephemeral = KeySeed::new([0x33; 32], [0x44; 32]);
        let initiator_ephemeral = KeySeed::new([0x55; 32], [0x66; 32]);
        let act1 = Initiator::new(InitiatorConfig::new(authority.public), &initiator_ephemeral)
            .and_then(|mut initiator| initiator.write_act1())
            .expect("act 1 of fixed keys");
        let (act2, established) = Responder::new(
            ResponderConfig::new(&responder_static, certificate),
            &responder_ephemeral,
        )
        .and_then(|mut responder| responder.read_act1(&act1))
        .expect("act 2 of fixed keys");
        NoiseFixture {
            authority,
            responder_static,
            responder_ephemeral,
            initiator_ephemeral,
            certificate,
            act1,
            act2,
            established,
        }
    })
}

/// Pushes `wire` through `dec` in the given chunks; returns the frames and the first error. Checks
/// the decryptor's contract: progress on every call, no bytes kept back without a frame, frames whose
/// header agrees with their payload, and refusal of every call after an error.
fn feed_decryptor(
    dec: &mut Decryptor,
    wire: &[u8],
    splits: &[usize],
    max_payload: usize,
) -> (Vec<Vec<u8>>, Option<NoiseError>) {
    let mut frames = Vec::new();
    for chunk in chunks(wire, splits) {
        let mut input = chunk;
        while !input.is_empty() {
            assert!(dec.needed() > 0, "needed() is 0 while not failed");
            match dec.push(input) {
                Ok((used, frame)) => {
                    assert!(used > 0, "decryptor made no progress");
                    assert!(used <= input.len());
                    match frame {
                        Some(frame) => {
                            let (head, payload) = frame
                                .split_first_chunk::<HEADER_LEN>()
                                .expect("a whole header");
                            let header = Header::from_bytes(*head);
                            assert_eq!(header.msg_length as usize, payload.len());
                            assert!(payload.len() <= max_payload);
                            frames.push(frame.to_vec());
                        }
                        None => assert_eq!(used, input.len(), "bytes kept back without a frame"),
                    }
                    input = &input[used..];
                }
                Err(e) => {
                    assert_ne!(e, NoiseError::Terminated, "first error is Terminated");
                    assert!(dec.is_failed());
                    assert_eq!(dec.push(b"x"), Err(NoiseError::Terminated));
                    return (frames, Some(e));
                }
            }
        }
    }
    (frames, None)
}

// ---------------------------------------------------------------------------------------------------
// noise_responder

/// `noise_responder`: the fixed responder reading an adversarial act 1.
///
/// Input: `mode (1) | ...`
/// - mode % 3 == 0: act 1 = the next 64 bytes (zero-padded), the rest is ciphertext pushed into the
///   session's decryptor;
/// - mode % 3 == 1: act 1 = the whole rest, any length;
/// - mode % 3 == 2: an initiator with the ephemeral seed of the next 64 bytes runs a whole handshake
///   with the responder, then sends the rest as one frame's payload.
///
/// Properties: act 1 of the wrong length is `WrongLength`; every 64-byte act 1 is accepted (any 64
/// bytes are an ElligatorSwift encoding) and answered with 234 bytes starting with the fixed
/// ephemeral key; a second act 1 is refused; a real handshake agrees on keys and hash both sides and
/// carries a frame; arbitrary ciphertext after it fails with a typed error and no panic.
pub fn noise_responder(data: &[u8]) {
    let fx = noise_fixture();
    let mut input = Input::new(data);
    let mode = input.byte() % 3;
    let mut responder = fx.responder();
    match mode {
        0 | 1 => {
            let act1 = if mode == 0 {
                input.array::<ACT1_LEN>().to_vec()
            } else {
                input.rest().to_vec()
            };
            match responder.read_act1(&act1) {
                Err(e) => {
                    assert_ne!(act1.len(), ACT1_LEN, "64-byte act 1 refused: {e}");
                    assert_eq!(
                        e,
                        NoiseError::WrongLength {
                            what: "act 1",
                            expected: ACT1_LEN,
                            got: act1.len()
                        }
                    );
                    assert_eq!(
                        responder.read_act1(&act1).err(),
                        Some(NoiseError::Terminated)
                    );
                }
                Ok((act2, established)) => {
                    assert_eq!(act1.len(), ACT1_LEN);
                    assert_eq!(act2.len(), ACT2_LEN);
                    assert_eq!(
                        &act2[..64],
                        &fx.act2[..64],
                        "responder ephemeral key changed"
                    );
                    assert_eq!(established.initiator_ephemeral, act1);
                    assert!(matches!(
                        responder.read_act1(&act1),
                        Err(NoiseError::WrongState { .. })
                    ));
                    let mut dec = established.transport.decryptor;
                    let splits = read_splits(&mut input);
                    feed_decryptor(&mut dec, input.rest(), &splits, MAX_PAYLOAD_LEN);
                }
            }
        }
        _ => {
            let seed = KeySeed::new(input.array(), input.array());
            let mut initiator =
                match Initiator::new(InitiatorConfig::new(fx.authority.public), &seed) {
                    Ok(initiator) => initiator,
                    Err(e) => {
                        assert!(matches!(e, NoiseError::InvalidKey(_)), "{e}");
                        return;
                    }
                };
            let act1 = initiator.write_act1().expect("act 1");
            let (act2, resp) = responder
                .read_act1(&act1)
                .expect("responder answers a real act 1");
            let init = initiator
                .read_act2(&act2, FIXTURE_NOW)
                .expect("initiator accepts a real act 2");
            assert!(init.authenticated);
            assert_eq!(init.traffic_keys, resp.traffic_keys);
            assert_eq!(init.handshake_hash, resp.handshake_hash);
            assert_eq!(init.certificate, fx.certificate);
            let payload = input.take(MAX_CHUNK_LEN + 1);
            let mut frame = Header {
                extension_type: 0,
                channel_msg: false,
                msg_type: 0,
                msg_length: payload.len() as u32,
            }
            .to_bytes()
            .to_vec();
            frame.extend_from_slice(payload);
            let (mut enc, _) = init.transport.split();
            let mut wire = Vec::new();
            enc.encrypt_frame(&frame, &mut wire).expect("encrypts");
            let (_, mut dec) = resp.transport.split();
            let got = dec
                .push_all(&wire)
                .expect("the responder decrypts the initiator's frame");
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].payload, payload);
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// noise_initiator

/// `noise_initiator`: the fixed initiator (act 1 written) reading an adversarial act 2.
///
/// Input: `mode (1) | clock (4) | ...`. Mode bit 2 picks an initiator without an authority key
/// (unauthenticated); bit 3 uses the clock from the input instead of one inside the certificate's
/// window. Mode % 4:
/// - 0: act 2 = the rest, arbitrary bytes of any length;
/// - 1: the real act 2 of the fixed responder, then `(position U16, xor mask)` pairs from the rest;
/// - 2: the real act 2 cut or extended: `new length (U16 % 512) | fill`;
/// - 3: a real responder presenting a certificate built from the rest: `signed (1) | version (2) |
///   valid_from (4) | not_valid_after (4) | signature (64)`; when `signed` is odd the signature is
///   the authority's own over those fields, otherwise the 64 bytes given.
///
/// Properties: the outcome is exactly predicted. Wrong length: `WrongLength`. A change in the first
/// 144 bytes: `Decrypt(Act2Static)`; only after: `Decrypt(Act2Payload)`. The real act 2 (or a real
/// responder's) is accepted iff its certificate verifies (signature, then window at the clock) or no
/// authority key is set, and the session then has the responder's keys. After an error the
/// initiator is terminated.
pub fn noise_initiator(data: &[u8]) {
    let fx = noise_fixture();
    let mut input = Input::new(data);
    let mode = input.byte();
    let clock = input.u32();
    let authenticated = mode & 4 == 0;
    let now = if mode & 8 == 0 { FIXTURE_NOW } else { clock };
    let policy = ValidityPolicy::default();

    let mut initiator = fx.initiator(authenticated);
    let act1 = initiator.write_act1().expect("act 1");
    assert_eq!(act1, fx.act1, "fixed initiator's act 1 changed");

    // (act 2, the certificate a real responder put in it, the real act 2 it is compared to)
    let (act2, certificate, reference): (Vec<u8>, SignatureNoiseMessage, Vec<u8>) = match mode % 4 {
        0 => (input.rest().to_vec(), fx.certificate, fx.act2.clone()),
        1 => {
            let mut act2 = fx.act2.clone();
            while !input.is_empty() {
                let pos = usize::from(input.u16()) % ACT2_LEN;
                act2[pos] ^= input.byte();
            }
            (act2, fx.certificate, fx.act2.clone())
        }
        2 => {
            let len = usize::from(input.u16() % 512);
            let fill = input.byte();
            let mut act2 = fx.act2.clone();
            act2.resize(len, fill);
            (act2, fx.certificate, fx.act2.clone())
        }
        _ => {
            let signed = input.byte() & 1 == 1;
            let version = input.u16();
            let valid_from = input.u32();
            let not_valid_after = input.u32();
            let certificate = if signed {
                SignatureNoiseMessage::issue(
                    version,
                    valid_from,
                    not_valid_after,
                    &fx.responder_static.xonly_public(),
                    &fx.authority,
                    None,
                )
            } else {
                let mut bytes = [0u8; SIGNATURE_NOISE_MESSAGE_LEN];
                bytes[..2].copy_from_slice(&version.to_le_bytes());
                bytes[2..6].copy_from_slice(&valid_from.to_le_bytes());
                bytes[6..10].copy_from_slice(&not_valid_after.to_le_bytes());
                bytes[10..].copy_from_slice(&input.array::<64>());
                SignatureNoiseMessage::from_bytes(&bytes).expect("74 bytes")
            };
            let mut responder =
                Responder::new(fx.responder_config(certificate), &fx.responder_ephemeral)
                    .expect("fixed keys");
            let (act2, _) = responder.read_act1(&act1).expect("real act 1");
            (act2.clone(), certificate, act2)
        }
    };

    let result = initiator.read_act2(&act2, now);
    let expected: Result<(), NoiseError> = if act2.len() != ACT2_LEN {
        Err(NoiseError::WrongLength {
            what: "act 2",
            expected: ACT2_LEN,
            got: act2.len(),
        })
    } else if act2[..144] != reference[..144] {
        Err(NoiseError::Decrypt {
            step: DecryptStep::Act2Static,
        })
    } else if act2 != reference {
        Err(NoiseError::Decrypt {
            step: DecryptStep::Act2Payload,
        })
    } else if authenticated {
        certificate
            .verify(
                &fx.responder_static.xonly_public(),
                &fx.authority.public,
                now,
                &policy,
            )
            .map_err(NoiseError::Certificate)
    } else {
        Ok(())
    };
    match (result, expected) {
        (Ok(done), Ok(())) => {
            assert_eq!(done.authenticated, authenticated);
            assert_eq!(done.certificate, certificate);
            assert_eq!(done.traffic_keys, fx.established.traffic_keys);
            assert_eq!(done.handshake_hash.len(), 32);
            assert_eq!(
                done.certified_key,
                fx.responder_static.xonly_public(),
                "certified key"
            );
            assert!(matches!(
                initiator.read_act2(&act2, now),
                Err(NoiseError::WrongState { .. })
            ));
        }
        (Err(got), Err(want)) => {
            assert_eq!(got, want, "mode {mode:#04x}, act 2 of {} bytes", act2.len());
            assert_eq!(
                initiator.read_act2(&act2, now).err(),
                Some(NoiseError::Terminated)
            );
        }
        (got, want) => panic!(
            "mode {mode:#04x}: read_act2 gave {:?}, expected {want:?}",
            got.map(|d| d.authenticated)
        ),
    }
}

// ---------------------------------------------------------------------------------------------------
// transport

/// The traffic key of the transport target.
const TRANSPORT_KEY: [u8; 32] = [7; 32];
/// Largest total plaintext a transport input may ask for (two payload blocks and a bit).
const TRANSPORT_MAX_TOTAL: usize = 2 * MAX_CHUNK_LEN + 256;

/// Plain frames described by fuzz bytes. Each starts with a tag byte:
/// - top bits `11`: a pattern-filled payload next to a block boundary, `k * 65519 + delta` bytes with
///   `k = byte % 3` and `delta` a signed byte (to cross block boundaries without big inputs);
/// - top bits `10`: a pattern-filled payload of `U16 % 4096` bytes;
/// - otherwise `header (6) | payload`: the payload as long as the header says, or what is left.
///
/// Every header's msg_length is then fixed to match. At most 8 frames and `TRANSPORT_MAX_TOTAL`
/// payload bytes in all.
fn transport_frames(input: &mut Input<'_>) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    let mut total = 0usize;
    while !input.is_empty() && frames.len() < 8 {
        let tag = input.byte();
        let header: [u8; HEADER_LEN] = input.array();
        let budget = TRANSPORT_MAX_TOTAL.saturating_sub(total);
        let mut frame = header.to_vec();
        match tag >> 6 {
            3 | 2 => {
                let len = if tag >> 6 == 3 {
                    let k = usize::from(input.byte() % 3);
                    let delta = isize::from(input.byte() as i8);
                    (k * MAX_CHUNK_LEN).saturating_add_signed(delta)
                } else {
                    usize::from(input.u16() % 4096)
                };
                frame.extend((0..len.min(budget)).map(|i| (i as u8).wrapping_mul(31) ^ tag));
            }
            _ => {
                let claimed = Header::from_bytes(header).msg_length as usize;
                frame.extend_from_slice(input.take(claimed.min(budget)));
            }
        }
        let len = frame.len() - HEADER_LEN;
        frame[3..6].copy_from_slice(&(len as u32).to_le_bytes()[..3]);
        total += len;
        frames.push(frame);
    }
    frames
}

/// `transport`: the encrypted-frame decryptor with a fixed key.
///
/// Input: `mode (1) | max selector (1) | split count (1) | split sizes | ...`; the decryptor refuses
/// payloads above a maximum chosen by the selector.
/// - mode even: the rest is arbitrary ciphertext.
/// - mode odd: `flip position (U32) | flip mask (1) | frames` (see `transport_frames`): the frames are
///   encrypted with the same key, the byte at the flip position (modulo the wire length) is XORed
///   with the mask, and the wire is pushed in the chunks.
///
/// Properties: never a panic; every call makes progress; a failure is terminal; arbitrary bytes give
/// frames only with consistent headers under the maximum. For real ciphertext the outcome is exact:
/// the frames before the damaged unit (or the first frame over the maximum) come out intact, then the
/// error names the damaged unit (`FrameHeader` or `FrameBlock { index }`) or says `FrameTooLarge`;
/// undamaged ciphertext gives every frame back, whatever the split, and ends with the nonces used.
pub fn transport(data: &[u8]) {
    let mut input = Input::new(data);
    let mode = input.byte();
    let selector = input.byte();
    let splits = read_splits(&mut input);
    let max = match selector % 4 {
        0 => MAX_PAYLOAD_LEN,
        1 => usize::from(selector),
        2 => usize::from(selector) * 512,
        _ => MAX_CHUNK_LEN + usize::from(selector),
    };
    let mut dec = Decryptor::with_max_payload(CipherState::new(TRANSPORT_KEY), max);

    if mode & 1 == 0 {
        let (frames, error) = feed_decryptor(&mut dec, input.rest(), &splits, max);
        if let Some(e) = error {
            assert!(
                matches!(
                    e,
                    NoiseError::Decrypt { .. } | NoiseError::FrameTooLarge { .. }
                ),
                "unexpected error {e:?} after {} frames",
                frames.len()
            );
        }
        return;
    }

    let flip_at = input.u32() as usize;
    let mask = input.byte();
    let frames = transport_frames(&mut input);
    let mut enc = Encryptor::from_key(TRANSPORT_KEY);
    let mut wire = Vec::new();
    let mut starts = Vec::new();
    for frame in &frames {
        starts.push(wire.len());
        enc.encrypt_frame(frame, &mut wire)
            .expect("a consistent frame encrypts");
    }
    let flip = (!wire.is_empty() && mask != 0).then(|| flip_at % wire.len());
    if let Some(pos) = flip {
        wire[pos] ^= mask;
    }

    // The expected outcome, frame by frame.
    let mut expected_frames = Vec::new();
    let mut expected_error = None;
    for (i, frame) in frames.iter().enumerate() {
        let start = starts[i];
        let end = starts.get(i + 1).copied().unwrap_or(wire.len());
        let damaged = flip.filter(|&p| p >= start && p < end).map(|p| p - start);
        let payload_len = frame.len() - HEADER_LEN;
        if let Some(offset) = damaged.filter(|&o| o < ENCRYPTED_HEADER_LEN) {
            let _ = offset;
            expected_error = Some(NoiseError::Decrypt {
                step: DecryptStep::FrameHeader,
            });
            break;
        }
        if payload_len > max {
            expected_error = Some(NoiseError::FrameTooLarge {
                length: payload_len,
                max,
            });
            break;
        }
        if let Some(offset) = damaged {
            expected_error = Some(NoiseError::Decrypt {
                step: DecryptStep::FrameBlock {
                    index: (offset - ENCRYPTED_HEADER_LEN) / MAX_BLOCK_LEN,
                },
            });
            break;
        }
        expected_frames.push(frame.clone());
    }

    let (got, error) = feed_decryptor(&mut dec, &wire, &splits, max);
    assert_eq!(error, expected_error, "splits {splits:?}, flip {flip:?}");
    assert_eq!(got.len(), expected_frames.len(), "frame count");
    assert!(got == expected_frames, "decrypted frames differ");
    if expected_error.is_none() {
        assert!(dec.is_idle());
        let nonces: usize = frames
            .iter()
            .map(|f| 1 + block_count(f.len() - HEADER_LEN))
            .sum();
        assert_eq!(dec.nonce(), nonces as u64);
        assert_eq!(dec.nonce(), enc.nonce());
    }
}

// ---------------------------------------------------------------------------------------------------
// Seeds

/// Seed inputs for the codec target `target`, built from sample frames (vectors, samples); each
/// frame is a whole plain frame. Inputs are kept below `max_len` bytes.
pub fn seeds(target: &str, frames: &[Vec<u8>], max_len: usize) -> Vec<Vec<u8>> {
    let fx = noise_fixture();
    let mut out: Vec<Vec<u8>> = Vec::new();
    match target {
        "frame_splits" => {
            for (i, group) in frames.chunks(3).enumerate() {
                let stream: Vec<u8> = group.concat();
                let splits: &[u8] = match i % 4 {
                    0 => &[0],
                    1 => &[1, 1],
                    2 => &[3, 5, 7, 22],
                    _ => &[2, 6, 64],
                };
                for selector in [0u8, 3] {
                    let mut seed = vec![selector];
                    seed.extend_from_slice(splits);
                    seed.extend_from_slice(&stream);
                    out.push(seed);
                }
            }
        }
        "messages" => out.extend(frames.iter().cloned()),
        "noise_responder" => {
            let mut seed = vec![0];
            seed.extend_from_slice(&fx.act1);
            seed.push(0); // no splits
            let mut transport = fx.established.transport.clone();
            for frame in frames.iter().take(4) {
                transport
                    .encryptor
                    .encrypt_frame(frame, &mut seed)
                    .expect("sample frame encrypts");
            }
            out.push(seed);
            out.push([&[1u8][..], &fx.act1[..63]].concat());
            out.push([&[2u8][..], &[0x12; 64], b"hello"].concat());
        }
        "noise_initiator" => {
            out.push([&[0u8, 0, 0, 0, 0][..], &fx.act2].concat());
            out.push(vec![1, 0, 0, 0, 0]);
            out.push(vec![1, 0, 0, 0, 0, 150, 0, 1]);
            out.push(vec![2, 0, 0, 0, 0, 233, 0, 0]);
            let mut cert = vec![3, 0, 0, 0, 0, 1, 0, 0];
            cert.extend_from_slice(&CERT_FROM.to_le_bytes());
            cert.extend_from_slice(&CERT_UNTIL.to_le_bytes());
            out.push(cert.clone());
            cert[0] = 3 | 8;
            cert[1..5].copy_from_slice(&(CERT_UNTIL + 11).to_le_bytes());
            out.push(cert);
        }
        "transport" => {
            for (i, group) in frames.chunks(2).enumerate() {
                let mut seed = vec![1, 0, (i % 3) as u8];
                seed.extend(std::iter::repeat_n(7u8, i % 3));
                seed.extend_from_slice(&[0, 0, 0, 0, 0]);
                for frame in group {
                    seed.push(0);
                    seed.extend_from_slice(frame);
                }
                out.push(seed);
            }
            // Frames across block boundaries, and a damaged block.
            // mode 1, max selector 0, no splits, no flip; a frame of 65519 + 1 bytes, then one of
            // 2 * 65519 - 1 - 65520 (what is left of the budget).
            out.push(vec![
                1, 0, 0, 0, 0, 0, 0, 0, 0xc0, 0, 0, 0, 0, 0, 0, 1, 1, 0xc1, 0, 0, 0, 0, 0, 0, 2,
                0xff,
            ]);
            // The same first frame with byte 65552 (in its first block) flipped.
            out.push(vec![
                1, 0, 0, 0x10, 0x00, 0x01, 0x00, 0x01, 0xc0, 0, 0, 0x15, 0, 0, 0, 1, 1,
            ]);
            let mut enc = Encryptor::from_key(TRANSPORT_KEY);
            let mut wire = vec![0, 0, 0];
            for frame in frames.iter().take(4) {
                enc.encrypt_frame(frame, &mut wire)
                    .expect("sample frame encrypts");
            }
            out.push(wire);
        }
        "capture" => {
            // Records of Ethernet/IPv4/TCP packets carrying sample frames, after the pcap header the
            // check puts in front (first byte even); one out of order.
            let mut seed = vec![0u8];
            let mut seq = [1000u32, 5000];
            for (i, frame) in frames.iter().take(6).enumerate() {
                let side = i % 2;
                let (src, dst) = if side == 0 {
                    (([127, 0, 0, 1], 40_000), ([127, 0, 0, 2], 34_254))
                } else {
                    (([127, 0, 0, 2], 34_254), ([127, 0, 0, 1], 40_000))
                };
                let builder = etherparse::PacketBuilder::ethernet2([1; 6], [2; 6])
                    .ipv4(src.0, dst.0, 64)
                    .tcp(src.1, dst.1, seq[side], 65_535);
                seq[side] = seq[side].wrapping_add(frame.len() as u32);
                let mut packet = Vec::new();
                if builder.write(&mut packet, frame).is_err() {
                    continue;
                }
                seed.extend_from_slice(&(i as u32).to_le_bytes());
                seed.extend_from_slice(&0u32.to_le_bytes());
                seed.extend_from_slice(&(packet.len() as u32).to_le_bytes());
                seed.extend_from_slice(&(packet.len() as u32).to_le_bytes());
                seed.extend_from_slice(&packet);
            }
            out.push(seed);
            out.push(vec![1, 2, 3]);
        }
        _ => {}
    }
    out.retain(|seed| seed.len() <= max_len);
    out
}

/// A classic pcap header (little endian, microseconds, snap length 65535, Ethernet), so that most
/// inputs exercise the records, the headers inside them and the reassembly rather than the magic.
const PCAP_HEADER: [u8; 24] = [
    0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0,
];

/// `capture`: bytes read as a capture file (the input as it is when its first byte is odd, else
/// after a valid pcap header), every packet through the TCP reassembler and the conversation
/// follower. Properties: no panic, reading ends (every packet or a typed error), and no direction
/// delivers more bytes than its segments carried.
pub fn capture(data: &[u8]) {
    use sv2_wire::capture::{CaptureReader, Delivery, Follower, Packet, Reassembler};

    let file: Vec<u8> = match data.first() {
        Some(b) if b % 2 == 1 => data.to_vec(),
        _ => PCAP_HEADER
            .iter()
            .chain(data.iter().skip(1))
            .copied()
            .collect(),
    };
    let Ok(reader) = CaptureReader::new(&file[..]) else {
        return;
    };
    let mut reassembler = Reassembler::new();
    let mut follower = Follower::new(Vec::new());
    let mut out = Vec::new();
    let (mut carried, mut delivered) = (0u64, 0u64);
    for packet in reader {
        match packet {
            Ok(Packet::Tcp(segment)) => {
                carried += segment.payload.len() as u64;
                reassembler.push(segment, &mut out);
            }
            Ok(_) => {}
            Err(_) => break,
        }
        for d in out.drain(..) {
            if let Delivery::Data { bytes, .. } = &d {
                delivered += bytes.len() as u64;
            }
            follower.take(d);
        }
    }
    reassembler.finish(&mut out);
    for d in out.drain(..) {
        if let Delivery::Data { bytes, .. } = &d {
            delivered += bytes.len() as u64;
        }
        follower.take(d);
    }
    assert!(
        delivered <= carried,
        "{delivered} bytes delivered of {carried} carried"
    );
    let _ = follower.finish();
}
