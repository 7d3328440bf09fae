//! Noise NX handshake and encrypted transport: our initiator against our responder, reproducibility,
//! the trace, the key log, and every failure path (certificates, tampering, lengths, states, hostile
//! bytes). SRI interop lives in `interop/tests/noise.rs`, the independent Noise oracle in
//! `interop/tests/snow.rs`.

use proptest::prelude::*;
use sv2_codec::noise::cert::{CertError, SignatureNoiseMessage, ValidityPolicy};
use sv2_codec::noise::handshake::{act2_len, protocol_name};
use sv2_codec::noise::keylog;
use sv2_codec::noise::keys::{AuthorityPublicKey, Keypair, SecretKey};
use sv2_codec::noise::transport::{encrypted_frame_len, ENCRYPTED_HEADER_LEN, MAX_BLOCK_LEN};
use sv2_codec::noise::*;

const AUTHORITY_PUBLIC: &str = "9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH72";
const AUTHORITY_SECRET: &str = "mkDLTBBRxdBv998612qipDYoTK3YUrqLe8uWw7gu3iXbSrn2n";
const NOW: u32 = 1_750_000_000;

fn authority() -> Keypair {
    let kp = Keypair::from_secret(SecretKey::from_base58(AUTHORITY_SECRET).unwrap());
    assert_eq!(
        kp.public,
        AuthorityPublicKey::from_base58(AUTHORITY_PUBLIC).unwrap()
    );
    kp
}

fn seed(byte: u8) -> KeySeed {
    KeySeed::new([byte; 32], [byte ^ 0x55; 32])
}

fn static_key() -> SecretKey {
    SecretKey::from_bytes([0x42; 32]).unwrap()
}

fn certificate(valid_from: u32, not_valid_after: u32) -> SignatureNoiseMessage {
    SignatureNoiseMessage::issue(
        0,
        valid_from,
        not_valid_after,
        &static_key().xonly_public(),
        &authority(),
        None,
    )
}

fn responder_with(cert: SignatureNoiseMessage) -> Responder {
    Responder::new(
        ResponderConfig::new(&static_key(), cert).with_trace(true),
        &seed(2),
    )
    .unwrap()
}

fn responder() -> Responder {
    responder_with(certificate(NOW - 60, NOW + 3600))
}

fn initiator() -> Initiator {
    Initiator::new(
        InitiatorConfig::new(authority().public).with_trace(true),
        &seed(1),
    )
    .unwrap()
}

/// A full handshake with fixed keys: (initiator side, responder side, act1, act2).
fn handshake() -> (Established, Established, Vec<u8>, Vec<u8>) {
    let mut ini = initiator();
    let mut resp = responder();
    let act1 = ini.write_act1().unwrap();
    let (act2, r) = resp.read_act1(&act1).unwrap();
    let i = ini.read_act2(&act2, NOW).unwrap();
    (i, r, act1, act2)
}

fn plain_frame(len: usize, salt: u8) -> Vec<u8> {
    let l = (len as u32).to_le_bytes();
    let mut f = vec![0x00, 0x80, 0x1a, l[0], l[1], l[2]];
    f.extend((0..len).map(|i| (i as u8).wrapping_mul(13) ^ salt));
    f
}

#[test]
fn sv2_handshake_completes_with_spec_sizes_and_agreeing_keys() {
    let (i, r, act1, act2) = handshake();
    assert_eq!(act1.len(), ACT1_LEN);
    assert_eq!(act2.len(), ACT2_LEN);
    assert_eq!(act2_len::<Secp256k1EllSwift>(), 234);
    assert_eq!(protocol_name::<Secp256k1EllSwift>(), SV2_PROTOCOL_NAME);
    assert_eq!(i.handshake_hash, r.handshake_hash);
    assert_eq!(i.traffic_keys, r.traffic_keys);
    assert_ne!(i.traffic_keys.c1, i.traffic_keys.c2);
    assert!(i.authenticated);
    assert!(!r.authenticated);
    assert_eq!(i.certificate, r.certificate);
    assert_eq!(i.certified_key, static_key().xonly_public());
    assert_eq!(r.certified_key, static_key().xonly_public());
    assert_eq!(i.responder_static, r.responder_static);
    assert_eq!(i.initiator_ephemeral, act1);
    assert_eq!(r.initiator_ephemeral, act1);
    // The transport directions are crossed.
    assert_eq!(i.transport.encryptor.key(), r.transport.decryptor.key());
    assert_eq!(r.transport.encryptor.key(), i.transport.decryptor.key());
    assert_eq!(i.transport.encryptor.key(), i.traffic_keys.c1);
}

#[test]
fn fixed_seeds_give_identical_transcripts_and_different_seeds_do_not() {
    let (i1, _, a1, b1) = handshake();
    let (i2, _, a2, b2) = handshake();
    assert_eq!((a1.clone(), b1.clone()), (a2, b2));
    assert_eq!(i1.handshake_hash, i2.handshake_hash);
    let mut other = Initiator::new(
        InitiatorConfig::new(authority().public),
        &KeySeed::new([1; 32], [0; 32]),
    )
    .unwrap();
    let a3 = other.write_act1().unwrap();
    assert_ne!(
        a1, a3,
        "the aux bytes randomize the ElligatorSwift encoding"
    );
}

#[test]
fn trace_records_every_step_and_starts_at_catalog_g2() {
    let (i, r, act1, act2) = handshake();
    let labels: Vec<&str> = i.trace.iter().map(|s| s.label).collect();
    assert_eq!(
        labels,
        [
            "init",
            "mix_hash(prologue)",
            "mix_hash(e)",
            "encrypt_and_hash(payload)",
            "act1",
            "act2",
            "mix_hash(re)",
            "mix_key(ee)",
            "decrypt_and_hash(s)",
            "mix_key(es)",
            "decrypt_and_hash(payload)",
            "split"
        ]
    );
    assert_eq!(
        hex::encode(i.trace[0].ck),
        "2eb47881208e9eee1f669f67c66ee70ea9ea88090d503fe830dc4bc83e29bf10"
    );
    assert_eq!(
        hex::encode(i.trace[1].h),
        "922fa32e4f487c0d59caa3bed7899ce3d98db7e13dbd3b7cf2d23dd433dc6104"
    );
    assert_eq!(i.trace[4].data, act1);
    assert_eq!(i.trace[5].data, act2);
    // Both sides go through the same sequence of (h, ck) values, whatever the labels.
    let states = |t: &[TraceStep]| -> Vec<([u8; 32], [u8; 32])> {
        let mut v: Vec<_> = t.iter().map(|s| (s.h, s.ck)).collect();
        v.dedup();
        v
    };
    assert_eq!(states(&i.trace), states(&r.trace));
    assert_eq!(i.trace.last().unwrap().h, i.handshake_hash);
    let split = &i.trace.last().unwrap().data;
    assert_eq!(split[..32], i.traffic_keys.c1);
    assert_eq!(split[32..], i.traffic_keys.c2);
    // Tracing is opt-in.
    let mut quiet = Initiator::new(InitiatorConfig::unauthenticated(), &seed(1)).unwrap();
    quiet.write_act1().unwrap();
    assert!(quiet.trace().is_empty());
}

#[test]
fn transport_both_ways_with_chunking() {
    let (i, r, _, _) = handshake();
    let (mut i_enc, mut i_dec) = i.transport.split();
    let (mut r_enc, mut r_dec) = r.transport.split();
    let mut wire = Vec::new();
    for (n, len) in [0usize, 1, 65519, 65520, 200_000].into_iter().enumerate() {
        let frame = plain_frame(len, n as u8);
        wire.clear();
        i_enc.encrypt_frame(&frame, &mut wire).unwrap();
        assert_eq!(wire.len(), encrypted_frame_len(len));
        let (used, got) = r_dec.push(&wire).unwrap();
        assert_eq!(used, wire.len());
        assert_eq!(got.unwrap(), &frame[..]);
        wire.clear();
        r_enc.encrypt_frame(&frame, &mut wire).unwrap();
        let frames = i_dec.push_all(&wire).unwrap();
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].payload, frame[6..]);
    }
}

#[test]
fn key_log_line_matches_both_sides_and_round_trips() {
    let (i, r, act1, _) = handshake();
    let entry = i.key_log_entry();
    assert_eq!(entry, r.key_log_entry());
    let text = format!("# test\n{}", entry.to_line());
    let parsed = keylog::parse(&text).unwrap();
    assert_eq!(parsed, vec![entry.clone()]);
    // A capture reader only has the wire bytes: act 1 finds the session.
    let found = keylog::find(&parsed, &act1).unwrap();
    let mut dec = Decryptor::from_key(found.c1);
    let (mut enc, _) = i.transport.split();
    let mut wire = Vec::new();
    enc.encrypt_frame(&plain_frame(10, 1), &mut wire).unwrap();
    assert_eq!(dec.push(&wire).unwrap().1.unwrap(), &plain_frame(10, 1)[..]);
}

#[test]
fn unauthenticated_initiator_accepts_any_certificate_and_reports_it() {
    let mut bad = certificate(NOW - 60, NOW - 30);
    bad.signature[0] ^= 1;
    let mut resp = responder_with(bad);
    let mut ini = Initiator::new(InitiatorConfig::unauthenticated(), &seed(1)).unwrap();
    let act1 = ini.write_act1().unwrap();
    let (act2, _) = resp.read_act1(&act1).unwrap();
    let done = ini.read_act2(&act2, NOW).unwrap();
    assert!(!done.authenticated);
    assert_eq!(done.certificate, bad);
}

fn expect_act2_failure(resp: &mut Responder, ini: &mut Initiator, now: u32, want: NoiseError) {
    let act1 = ini.write_act1().unwrap();
    let (act2, _) = resp.read_act1(&act1).unwrap();
    assert_eq!(ini.read_act2(&act2, now).unwrap_err(), want);
    assert_eq!(ini.state(), HandshakeState::Failed);
    assert_eq!(
        ini.read_act2(&act2, now).unwrap_err(),
        NoiseError::Terminated
    );
    assert_eq!(ini.write_act1().unwrap_err(), NoiseError::Terminated);
}

#[test]
fn wrong_authority_key_is_refused() {
    let other = Keypair::from_secret(SecretKey::from_bytes([7; 32]).unwrap());
    let mut ini = Initiator::new(InitiatorConfig::new(other.public), &seed(1)).unwrap();
    expect_act2_failure(
        &mut responder(),
        &mut ini,
        NOW,
        NoiseError::Certificate(CertError::BadSignature),
    );
}

#[test]
fn certificate_for_another_static_key_is_refused() {
    let cert = SignatureNoiseMessage::issue(
        0,
        NOW,
        NOW + 10,
        &SecretKey::from_bytes([9; 32]).unwrap().xonly_public(),
        &authority(),
        None,
    );
    expect_act2_failure(
        &mut responder_with(cert),
        &mut initiator(),
        NOW,
        NoiseError::Certificate(CertError::BadSignature),
    );
}

#[test]
fn bad_signature_is_refused() {
    for byte in [0usize, 31, 32, 63] {
        let mut cert = certificate(NOW - 60, NOW + 60);
        cert.signature[byte] ^= 0x80;
        expect_act2_failure(
            &mut responder_with(cert),
            &mut initiator(),
            NOW,
            NoiseError::Certificate(CertError::BadSignature),
        );
    }
    // The signed fields are covered too.
    let mut cert = certificate(NOW - 60, NOW + 60);
    cert.not_valid_after += 1;
    expect_act2_failure(
        &mut responder_with(cert),
        &mut initiator(),
        NOW,
        NoiseError::Certificate(CertError::BadSignature),
    );
}

#[test]
fn validity_window_with_default_skew() {
    let cert = certificate(NOW, NOW + 100);
    let skew = ValidityPolicy::default().skew_secs;
    assert_eq!(skew, 10);
    for now in [NOW - skew, NOW, NOW + 100, NOW + 100 + skew] {
        let mut ini = initiator();
        let act1 = ini.write_act1().unwrap();
        let (act2, _) = responder_with(cert).read_act1(&act1).unwrap();
        assert!(ini.read_act2(&act2, now).is_ok(), "now {now}");
    }
    expect_act2_failure(
        &mut responder_with(cert),
        &mut initiator(),
        NOW - skew - 1,
        NoiseError::Certificate(CertError::NotYetValid {
            valid_from: NOW,
            now: NOW - skew - 1,
        }),
    );
    expect_act2_failure(
        &mut responder_with(cert),
        &mut initiator(),
        NOW + 100 + skew + 1,
        NoiseError::Certificate(CertError::Expired {
            not_valid_after: NOW + 100,
            now: NOW + 100 + skew + 1,
        }),
    );
    // A strict policy.
    let mut ini = Initiator::new(
        InitiatorConfig::new(authority().public).with_policy(ValidityPolicy { skew_secs: 0 }),
        &seed(1),
    )
    .unwrap();
    expect_act2_failure(
        &mut responder_with(cert),
        &mut ini,
        NOW + 101,
        NoiseError::Certificate(CertError::Expired {
            not_valid_after: NOW + 100,
            now: NOW + 101,
        }),
    );
}

#[test]
fn flipped_bit_at_every_position_of_act2_is_caught() {
    let mut ini0 = initiator();
    let act1 = ini0.write_act1().unwrap();
    let (act2, _) = responder().read_act1(&act1).unwrap();
    for pos in 0..ACT2_LEN {
        let mut bad = act2.clone();
        bad[pos] ^= 1 << (pos % 8);
        let mut ini = initiator();
        assert_eq!(ini.write_act1().unwrap(), act1);
        let step = if pos < 144 {
            // Bytes 0..64 change `re`, hence ee and the key of the static-key ciphertext.
            DecryptStep::Act2Static
        } else {
            DecryptStep::Act2Payload
        };
        assert_eq!(
            ini.read_act2(&bad, NOW).unwrap_err(),
            NoiseError::Decrypt { step },
            "pos {pos}"
        );
        assert_eq!(ini.state(), HandshakeState::Failed);
        assert_eq!(
            ini.read_act2(&act2, NOW).unwrap_err(),
            NoiseError::Terminated
        );
    }
}

#[test]
fn act2_of_wrong_length_is_refused() {
    let mut ini0 = initiator();
    let act1 = ini0.write_act1().unwrap();
    let (act2, _) = responder().read_act1(&act1).unwrap();
    for len in [0, 1, 64, 170, 233] {
        let mut ini = initiator();
        ini.write_act1().unwrap();
        assert_eq!(
            ini.read_act2(&act2[..len], NOW).unwrap_err(),
            NoiseError::WrongLength {
                what: "act 2",
                expected: 234,
                got: len
            }
        );
        assert_eq!(
            ini.read_act2(&act2, NOW).unwrap_err(),
            NoiseError::Terminated
        );
    }
    let mut long = act2.clone();
    long.push(0);
    let mut ini = initiator();
    ini.write_act1().unwrap();
    assert!(matches!(
        ini.read_act2(&long, NOW),
        Err(NoiseError::WrongLength { got: 235, .. })
    ));
}

#[test]
fn act1_of_wrong_length_is_refused_and_any_64_bytes_are_a_point() {
    for len in [0, 1, 32, 63, 65, 128] {
        let mut resp = responder();
        assert_eq!(
            resp.read_act1(&vec![7; len]).unwrap_err(),
            NoiseError::WrongLength {
                what: "act 1",
                expected: 64,
                got: len
            }
        );
        assert_eq!(resp.state(), HandshakeState::Failed);
        assert_eq!(
            resp.read_act1(&[7; 64]).unwrap_err(),
            NoiseError::Terminated
        );
    }
    // BIP324: every 64-byte string decodes to a curve point, so no act 1 of the right size is
    // "invalid"; garbage just yields a session nobody else can use.
    for fill in [0u8, 0xff] {
        let (act2, _) = responder().read_act1(&[fill; 64]).unwrap();
        assert_eq!(act2.len(), 234);
    }
}

#[test]
fn calls_out_of_order_are_wrong_state_then_terminal() {
    let mut ini = initiator();
    assert_eq!(
        ini.read_act2(&[0; 234], NOW).unwrap_err(),
        NoiseError::WrongState {
            op: "read_act2",
            state: "start"
        }
    );
    assert_eq!(ini.write_act1().unwrap_err(), NoiseError::Terminated);

    let mut ini = initiator();
    ini.write_act1().unwrap();
    assert_eq!(
        ini.write_act1().unwrap_err(),
        NoiseError::WrongState {
            op: "write_act1",
            state: "waiting for act 2"
        }
    );

    let mut ini = initiator();
    let mut resp = responder();
    let act1 = ini.write_act1().unwrap();
    let (act2, _) = resp.read_act1(&act1).unwrap();
    assert_eq!(resp.state(), HandshakeState::Done);
    assert!(matches!(
        resp.read_act1(&act1),
        Err(NoiseError::WrongState {
            op: "read_act1",
            state: "done"
        })
    ));
    ini.read_act2(&act2, NOW).unwrap();
    assert_eq!(ini.state(), HandshakeState::Done);
    assert!(matches!(
        ini.read_act2(&act2, NOW),
        Err(NoiseError::WrongState { state: "done", .. })
    ));
}

#[test]
fn invalid_secret_keys_are_refused() {
    let zero = KeySeed::new([0; 32], [0; 32]);
    assert!(matches!(
        Initiator::new(InitiatorConfig::unauthenticated(), &zero),
        Err(NoiseError::InvalidKey(_))
    ));
    let mut config = ResponderConfig::new(&static_key(), certificate(NOW, NOW));
    assert!(matches!(
        Responder::new(config.clone(), &zero),
        Err(NoiseError::InvalidKey(_))
    ));
    config.static_key = KeySeed::new([0xff; 32], [0; 32]);
    assert!(matches!(
        Responder::new(config, &seed(3)),
        Err(NoiseError::InvalidKey(_))
    ));
}

#[test]
fn generated_keys_complete_a_handshake() {
    let config =
        ResponderConfig::issue(&SecretKey::generate().unwrap(), &authority(), NOW, NOW + 60);
    let mut resp = Responder::generate(config).unwrap();
    let mut ini = Initiator::generate(InitiatorConfig::new(authority().public)).unwrap();
    let act1 = ini.write_act1().unwrap();
    let (act2, r) = resp.read_act1(&act1).unwrap();
    let i = ini.read_act2(&act2, NOW).unwrap();
    assert_eq!(i.handshake_hash, r.handshake_hash);
    assert!(i.authenticated);
}

#[test]
fn flipped_bits_in_transport_frames_terminate_the_session() {
    let (i, r, _, _) = handshake();
    let (mut enc, _) = i.transport.split();
    let (_, dec) = r.transport.split();
    let mut wire = Vec::new();
    enc.encrypt_frame(&plain_frame(40, 0), &mut wire).unwrap();
    let first_len = wire.len();
    enc.encrypt_frame(&plain_frame(65519 + 100, 1), &mut wire)
        .unwrap();
    let second = first_len;
    // Every byte of the small frame and of the second frame's header; the tag and the edges of both
    // blocks of the big one.
    let block1 = second + ENCRYPTED_HEADER_LEN;
    let block2 = block1 + MAX_BLOCK_LEN;
    let mut positions: Vec<usize> = (0..block1 + 8).collect();
    positions.extend(block2 - 24..block2 + 8);
    positions.extend(wire.len() - 20..wire.len());
    for pos in positions {
        let mut bad = wire.clone();
        bad[pos] ^= 0x10;
        let mut d = dec.clone();
        let mut input = &bad[..];
        let err = loop {
            match d.push(input) {
                Ok((used, _)) => input = &input[used..],
                Err(e) => break e,
            }
            assert!(!input.is_empty(), "pos {pos}: corruption not detected");
        };
        let step = match pos {
            p if p < 22 => DecryptStep::FrameHeader,
            p if p < first_len => DecryptStep::FrameBlock { index: 0 },
            p if p < block1 => DecryptStep::FrameHeader,
            p if p < block2 => DecryptStep::FrameBlock { index: 0 },
            _ => DecryptStep::FrameBlock { index: 1 },
        };
        assert_eq!(err, NoiseError::Decrypt { step }, "pos {pos}");
        assert!(d.is_failed());
        assert_eq!(d.push(&wire), Err(NoiseError::Terminated));
    }
}

#[test]
fn oversized_claimed_lengths_are_refused_by_the_transport() {
    let (i, r, _, _) = handshake();
    let (mut enc, _) = i.transport.split();
    let (_, mut dec) = r.transport.split();
    dec.set_max_payload(1000);
    let mut wire = Vec::new();
    enc.encrypt_frame(&plain_frame(1000, 0), &mut wire).unwrap();
    enc.encrypt_frame(&plain_frame(1001, 0), &mut wire).unwrap();
    let (used, f) = dec.push(&wire).unwrap();
    assert_eq!(f.map(<[u8]>::len), Some(1006));
    assert_eq!(
        dec.push(&wire[used..]).unwrap_err(),
        NoiseError::FrameTooLarge {
            length: 1001,
            max: 1000
        }
    );
    assert_eq!(dec.push(&[]).unwrap_err(), NoiseError::Terminated);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_act1_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut resp = responder();
        match resp.read_act1(&bytes) {
            Ok((act2, _)) => prop_assert_eq!((bytes.len(), act2.len()), (64, 234)),
            Err(e) => {
                prop_assert!(matches!(e, NoiseError::WrongLength { .. }), "{:?}", e);
                prop_assert_eq!(resp.state(), HandshakeState::Failed);
            }
        }
    }

    #[test]
    fn random_act2_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        exact in any::<bool>(),
    ) {
        let mut bytes = bytes;
        if exact {
            bytes.resize(234, 0xa5);
        }
        let mut ini = initiator();
        ini.write_act1().unwrap();
        let err = ini.read_act2(&bytes, NOW).unwrap_err();
        prop_assert!(
            matches!(err, NoiseError::WrongLength { .. } | NoiseError::Decrypt { .. }),
            "{:?}", err
        );
        prop_assert_eq!(ini.state(), HandshakeState::Failed);
    }

    #[test]
    fn random_transport_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..2000),
        split in 1usize..64,
        max in 0usize..100_000,
    ) {
        let mut dec = Decryptor::with_max_payload(CipherState::new([1; 32]), max);
        let mut failed = false;
        for piece in bytes.chunks(split) {
            let mut input = piece;
            while !input.is_empty() {
                match dec.push(input) {
                    Ok((used, frame)) => {
                        // Random bytes never authenticate.
                        prop_assert!(frame.is_none());
                        prop_assert!(used > 0);
                        input = &input[used..];
                    }
                    Err(e) => {
                        prop_assert!(failed || matches!(e, NoiseError::Decrypt { .. }), "{:?}", e);
                        failed = true;
                        prop_assert!(dec.is_failed());
                        input = &[];
                    }
                }
            }
        }
        prop_assert_eq!(failed, bytes.len() >= 22);
    }

    #[test]
    fn valid_frames_with_random_splits_round_trip(
        lens in proptest::collection::vec(0usize..70_000, 1..4),
        split in 1usize..70_000,
    ) {
        let mut enc = Encryptor::from_key([3; 32]);
        let mut dec = Decryptor::from_key([3; 32]);
        let frames: Vec<Vec<u8>> = lens.iter().enumerate().map(|(i, &l)| plain_frame(l, i as u8)).collect();
        let mut wire = Vec::new();
        for f in &frames {
            enc.encrypt_frame(f, &mut wire).unwrap();
        }
        let mut got = Vec::new();
        for piece in wire.chunks(split) {
            got.extend(dec.push_all(piece).unwrap());
        }
        prop_assert_eq!(got.len(), frames.len());
        for (g, f) in got.iter().zip(&frames) {
            prop_assert_eq!(&g.payload[..], &f[6..]);
        }
        prop_assert_eq!(dec.nonce(), enc.nonce());
    }
}
