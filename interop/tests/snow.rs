//! Independent oracle for the generic Noise NX machinery: our `NxInitiator` / `NxResponder` run over
//! Curve25519 (snow's own X25519 as the DH function) against snow's `Noise_NX_25519_ChaChaPoly_SHA256`.
//! The MixHash / MixKey / EncryptAndHash / Split code is the same that runs SV2's secp256k1 handshake,
//! so agreement here checks it against a second implementation of the Noise spec.
//!
//! Message 2 carries our 74-byte certificate as its payload (act 2 is 32 + 48 + 90 = 170 bytes over
//! Curve25519). SV2 transport frames are sequences of Noise transport messages (header, then each
//! block), so snow's per-message transport reads and writes them too.

use snow::params::DHChoice;
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::{Builder, HandshakeState as SnowHandshake, TransportState};
use sv2_codec::noise::cert::{CertError, SignatureNoiseMessage, ValidityPolicy};
use sv2_codec::noise::handshake::{act2_len, protocol_name};
use sv2_codec::noise::keys::{AuthorityPublicKey, Keypair, SecretKey};
use sv2_codec::noise::transport::{MAX_BLOCK_LEN, MAX_CHUNK_LEN};
use sv2_codec::noise::*;

const NAME: &str = "Noise_NX_25519_ChaChaPoly_SHA256";
const NOW: u32 = 1_760_000_000;

/// Curve25519 through snow's default resolver: our handshake code, snow's curve arithmetic.
struct X25519;

#[derive(Clone, Debug)]
struct XKeypair {
    secret: [u8; 32],
    public: [u8; 32],
}

fn snow_dh() -> Box<dyn snow::types::Dh> {
    DefaultResolver
        .resolve_dh(&DHChoice::Curve25519)
        .expect("snow has Curve25519")
}

impl Dh for X25519 {
    const NAME: &'static str = "25519";
    const PUBLIC_LEN: usize = 32;
    type Keypair = XKeypair;

    fn keypair(seed: &KeySeed) -> Result<XKeypair, NoiseError> {
        let mut dh = snow_dh();
        dh.set(&seed.secret);
        let public = dh
            .pubkey()
            .try_into()
            .map_err(|_| NoiseError::InvalidKey("x25519 public key size"))?;
        Ok(XKeypair {
            secret: seed.secret,
            public,
        })
    }

    fn public(keypair: &XKeypair) -> &[u8] {
        &keypair.public
    }

    fn dh(ours: &XKeypair, theirs: &[u8], _role: Role) -> Result<[u8; 32], NoiseError> {
        let mut dh = snow_dh();
        dh.set(&ours.secret);
        let mut out = [0u8; 32];
        dh.dh(theirs, &mut out)
            .map_err(|_| NoiseError::InvalidKey("x25519 DH failed"))?;
        Ok(out)
    }

    fn certified_key(public: &[u8]) -> Result<[u8; 32], NoiseError> {
        public
            .try_into()
            .map_err(|_| NoiseError::InvalidKey("x25519 public key size"))
    }
}

fn authority() -> Keypair {
    Keypair::from_secret(SecretKey::from_bytes([0x33; 32]).unwrap())
}

/// A static x25519 key whose public key happens to be a valid secp256k1 x coordinate, so that the
/// real certificate check (BIP340 over that "x-only key") can run on it. About half of all keys are.
fn static_seed() -> KeySeed {
    (1u8..=255)
        .map(|b| KeySeed::new([b; 32], [0; 32]))
        .find(|seed| {
            let public = X25519::keypair(seed).unwrap().public;
            let cert = SignatureNoiseMessage::issue(0, 0, 1, &public, &authority(), None);
            cert.verify(&public, &authority().public, 0, &ValidityPolicy::default())
                != Err(CertError::InvalidKey)
        })
        .expect("some seed gives a usable key")
}

fn certificate() -> SignatureNoiseMessage {
    let public = X25519::keypair(&static_seed()).unwrap().public;
    SignatureNoiseMessage::issue(0, NOW - 10, NOW + 10, &public, &authority(), None)
}

fn e_init() -> KeySeed {
    KeySeed::new([0x11; 32], [0; 32])
}

fn e_resp() -> KeySeed {
    KeySeed::new([0x22; 32], [0; 32])
}

fn snow_initiator() -> SnowHandshake {
    Builder::new(NAME.parse().unwrap())
        .fixed_ephemeral_key_for_testing_only(&e_init().secret)
        .build_initiator()
        .unwrap()
}

fn snow_responder() -> SnowHandshake {
    let s = static_seed().secret;
    Builder::new(NAME.parse().unwrap())
        .local_private_key(&s)
        .unwrap()
        .fixed_ephemeral_key_for_testing_only(&e_resp().secret)
        .build_responder()
        .unwrap()
}

fn our_initiator(authority: Option<AuthorityPublicKey>) -> NxInitiator<X25519> {
    let config = InitiatorConfig {
        authority,
        trace: true,
        ..Default::default()
    };
    NxInitiator::new(config, &e_init()).unwrap()
}

fn our_responder() -> NxResponder<X25519> {
    let config = ResponderConfig {
        static_key: static_seed(),
        certificate: certificate(),
        trace: true,
    };
    NxResponder::new(config, &e_resp()).unwrap()
}

fn plain_frame(len: usize) -> Vec<u8> {
    let l = (len as u32).to_le_bytes();
    let mut f = vec![0x01, 0x00, 0x02, l[0], l[1], l[2]];
    f.extend((0..len).map(|i| (i % 253) as u8));
    f
}

/// Our encrypted frame, read by snow message by message: header (22), then each block.
fn snow_reads_our_frame(snow: &mut TransportState, wire: &[u8], frame: &[u8]) {
    let mut buf = vec![0u8; MAX_BLOCK_LEN];
    let n = snow.read_message(&wire[..22], &mut buf).unwrap();
    assert_eq!(&buf[..n], &frame[..6]);
    let mut plain = Vec::new();
    for block in wire[22..].chunks(MAX_BLOCK_LEN) {
        let n = snow.read_message(block, &mut buf).unwrap();
        plain.extend_from_slice(&buf[..n]);
    }
    assert_eq!(plain, frame[6..]);
}

/// A frame written by snow the SV2 way (header message, then one message per chunk).
fn snow_writes_frame(snow: &mut TransportState, frame: &[u8]) -> Vec<u8> {
    let mut wire = Vec::new();
    let mut buf = vec![0u8; MAX_BLOCK_LEN];
    let n = snow.write_message(&frame[..6], &mut buf).unwrap();
    wire.extend_from_slice(&buf[..n]);
    for chunk in frame[6..].chunks(MAX_CHUNK_LEN) {
        let n = snow.write_message(chunk, &mut buf).unwrap();
        wire.extend_from_slice(&buf[..n]);
    }
    wire
}

#[test]
fn protocol_name_and_sizes() {
    assert_eq!(protocol_name::<X25519>(), NAME);
    assert_eq!(NAME.len(), 32, "padded, not hashed, into the initial h");
    assert_eq!(act2_len::<X25519>(), 170);
    let ini = our_initiator(None);
    assert_eq!(
        ini.trace()[0].ck,
        <[u8; 32]>::try_from(NAME.as_bytes()).unwrap()
    );
}

#[test]
fn our_initiator_with_snow_responder() {
    let mut ours = our_initiator(Some(authority().public));
    let mut snow = snow_responder();
    let mut buf = vec![0u8; 1024];

    let act1 = ours.write_act1().unwrap();
    assert_eq!(act1.len(), 32);
    let n = snow.read_message(&act1, &mut buf).unwrap();
    assert_eq!(n, 0, "empty payload in message 1");

    let cert = certificate().to_bytes();
    let n = snow.write_message(&cert, &mut buf).unwrap();
    assert_eq!(n, 170);
    let act2 = buf[..n].to_vec();
    let done = ours.read_act2(&act2, NOW).unwrap();
    assert!(done.authenticated);
    assert_eq!(done.certificate.to_bytes(), cert);
    assert_eq!(
        done.responder_static,
        X25519::keypair(&static_seed()).unwrap().public
    );

    assert_eq!(&done.handshake_hash[..], snow.get_handshake_hash());
    let (k1, k2) = snow.dangerously_get_raw_split();
    assert_eq!((k1, k2), (done.traffic_keys.c1, done.traffic_keys.c2));

    let mut snow = snow.into_transport_mode().unwrap();
    let (mut enc, mut dec) = done.transport.split();
    for len in [
        0,
        1,
        100,
        MAX_CHUNK_LEN,
        MAX_CHUNK_LEN + 1,
        3 * MAX_CHUNK_LEN + 7,
    ] {
        let frame = plain_frame(len);
        let mut wire = Vec::new();
        enc.encrypt_frame(&frame, &mut wire).unwrap();
        snow_reads_our_frame(&mut snow, &wire, &frame);
        let theirs = snow_writes_frame(&mut snow, &frame);
        assert_eq!(dec.push(&theirs).unwrap().1.unwrap(), &frame[..]);
    }
}

#[test]
fn snow_initiator_with_our_responder() {
    let mut snow = snow_initiator();
    let mut ours = our_responder();
    let mut buf = vec![0u8; 1024];

    let n = snow.write_message(&[], &mut buf).unwrap();
    let (act2, done) = ours.read_act1(&buf[..n]).unwrap();
    assert_eq!(act2.len(), 170);
    let n = snow.read_message(&act2, &mut buf).unwrap();
    assert_eq!(
        &buf[..n],
        &certificate().to_bytes()[..],
        "snow reads our payload"
    );
    assert_eq!(
        snow.get_remote_static().unwrap(),
        &X25519::keypair(&static_seed()).unwrap().public[..]
    );
    assert_eq!(&done.handshake_hash[..], snow.get_handshake_hash());
    let (k1, k2) = snow.dangerously_get_raw_split();
    assert_eq!((k1, k2), (done.traffic_keys.c1, done.traffic_keys.c2));

    let mut snow = snow.into_transport_mode().unwrap();
    let (mut enc, mut dec) = done.transport.split();
    for len in [0, 5, MAX_CHUNK_LEN + 1] {
        let frame = plain_frame(len);
        let theirs = snow_writes_frame(&mut snow, &frame);
        assert_eq!(dec.push(&theirs).unwrap().1.unwrap(), &frame[..]);
        let mut wire = Vec::new();
        enc.encrypt_frame(&frame, &mut wire).unwrap();
        snow_reads_our_frame(&mut snow, &wire, &frame);
    }
}

/// With the same fixed keys, our machines and snow's produce the very same bytes.
#[test]
fn fixed_keys_give_byte_identical_transcripts() {
    let mut buf = vec![0u8; 1024];
    let mut si = snow_initiator();
    let mut sr = snow_responder();
    let n = si.write_message(&[], &mut buf).unwrap();
    let snow_act1 = buf[..n].to_vec();
    sr.read_message(&snow_act1, &mut buf).unwrap();
    let n = sr
        .write_message(&certificate().to_bytes(), &mut buf)
        .unwrap();
    let snow_act2 = buf[..n].to_vec();

    let mut oi = our_initiator(None);
    let mut or = our_responder();
    let our_act1 = oi.write_act1().unwrap();
    let (our_act2, r) = or.read_act1(&our_act1).unwrap();
    let i = oi.read_act2(&our_act2, NOW).unwrap();

    assert_eq!(our_act1, snow_act1);
    assert_eq!(our_act2, snow_act2);
    assert_eq!(&i.handshake_hash[..], sr.get_handshake_hash());
    assert_eq!(i.handshake_hash, r.handshake_hash);
    // The trace's final h is snow's.
    assert_eq!(&i.trace.last().unwrap().h[..], sr.get_handshake_hash());
}

#[test]
fn tampered_act2_is_caught_both_ways() {
    let mut ours = our_initiator(None);
    let mut snow = snow_responder();
    let mut buf = vec![0u8; 1024];
    let act1 = ours.write_act1().unwrap();
    snow.read_message(&act1, &mut buf).unwrap();
    let n = snow
        .write_message(&certificate().to_bytes(), &mut buf)
        .unwrap();
    let mut act2 = buf[..n].to_vec();
    act2[32 + 48 + 5] ^= 1;
    assert_eq!(
        ours.read_act2(&act2, NOW).unwrap_err(),
        NoiseError::Decrypt {
            step: DecryptStep::Act2Payload
        }
    );

    // And snow catches a flipped bit in our act 2.
    let mut snow = snow_initiator();
    let n = snow.write_message(&[], &mut buf).unwrap();
    let (mut our_act2, _) = our_responder().read_act1(&buf[..n]).unwrap();
    our_act2[40] ^= 0x20;
    assert!(snow.read_message(&our_act2, &mut buf).is_err());
}
