//! Noise interop with the reference implementation (SRI: noise_sv2 2.0.0, codec_sv2 7.0.0):
//! both handshake directions, certificate checks on both sides, then encrypted frames both ways with
//! byte-for-byte comparison of the ciphertexts.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sv2_codec::noise::cert::{CertError, SignatureNoiseMessage};
use sv2_codec::noise::keys::{Keypair, SecretKey};
use sv2_codec::noise::transport::encrypted_frame_len;
use sv2_codec::noise::*;
use sv2_interop::noise::{test_authority, SriInitiator, SriNoiseError, SriResponder, SriTransport};

const SIZES: [usize; 5] = [0, 1, 65519, 65520, 200_000];

fn now() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as u32
}

fn plain_frame(len: usize, salt: u8) -> Vec<u8> {
    let l = (len as u32).to_le_bytes();
    let mut f = vec![0x00, 0x80, 0x15, l[0], l[1], l[2]];
    f.extend((0..len).map(|i| ((i * 7 + i / 251) as u8) ^ salt));
    f
}

fn static_key() -> SecretKey {
    SecretKey::from_bytes([0x5a; 32]).unwrap()
}

fn our_responder(cert: SignatureNoiseMessage) -> Responder {
    Responder::generate(ResponderConfig::new(&static_key(), cert)).unwrap()
}

fn cert_by(authority: &Keypair, version: u16, from: u32, until: u32) -> SignatureNoiseMessage {
    SignatureNoiseMessage::issue(
        version,
        from,
        until,
        &static_key().xonly_public(),
        authority,
        None,
    )
}

/// Sends every size both ways and checks plaintexts and, with an independent encryptor on the
/// peer's key, that the ciphertext bytes are identical to what SRI produced.
fn exchange(ours: Established, sri: &mut SriTransport, we_are_initiator: bool) {
    let keys = ours.traffic_keys.clone();
    let (mut enc, mut dec) = ours.transport.split();
    // Our copy of SRI's sending direction, to compare SRI's ciphertext with ours byte for byte.
    let sri_key = if we_are_initiator { keys.c2 } else { keys.c1 };
    let mut mirror = Encryptor::from_key(sri_key);
    let mut wire = Vec::new();
    for (n, &len) in SIZES.iter().enumerate() {
        let frame = plain_frame(len, n as u8);

        wire.clear();
        enc.encrypt_frame(&frame, &mut wire).unwrap();
        assert_eq!(wire.len(), encrypted_frame_len(len));
        let got = sri
            .decrypt(&wire)
            .unwrap_or_else(|e| panic!("SRI decrypt {len}: {e}"));
        assert_eq!(got, vec![frame.clone()], "ours -> SRI, {len} bytes");

        let theirs = sri
            .encrypt(&frame)
            .unwrap_or_else(|e| panic!("SRI encrypt {len}: {e}"));
        assert_eq!(
            theirs.len(),
            encrypted_frame_len(len),
            "SRI's wire size for {len}"
        );
        wire.clear();
        mirror.encrypt_frame(&frame, &mut wire).unwrap();
        assert_eq!(
            wire, theirs,
            "SRI's ciphertext differs from ours for {len} bytes"
        );
        let frames = dec.push_all(&theirs).unwrap();
        assert_eq!(frames.len(), 1, "SRI -> ours, {len} bytes");
        assert_eq!(frames[0].header.to_bytes(), frame[..6]);
        assert_eq!(frames[0].payload, frame[6..]);
    }

    // Several frames in one write, split at awkward places, in both directions.
    let frames: Vec<Vec<u8>> = [3usize, 0, 70_000, 24]
        .iter()
        .enumerate()
        .map(|(i, &l)| plain_frame(l, 100 + i as u8))
        .collect();
    wire.clear();
    for f in &frames {
        enc.encrypt_frame(f, &mut wire).unwrap();
    }
    let mut got = Vec::new();
    for piece in wire.chunks(4099) {
        got.extend(sri.decrypt(piece).unwrap());
    }
    assert_eq!(got, frames);
    let mut stream = Vec::new();
    for f in &frames {
        stream.extend(sri.encrypt(f).unwrap());
    }
    let mut ours_got = Vec::new();
    for piece in stream.chunks(7) {
        ours_got.extend(dec.push_all(piece).unwrap());
    }
    assert_eq!(ours_got.len(), frames.len());
    for (g, f) in ours_got.iter().zip(&frames) {
        assert_eq!(g.payload, f[6..]);
    }
}

#[test]
fn our_initiator_with_sri_responder() {
    let authority = test_authority();
    let mut ini = Initiator::generate(InitiatorConfig::new(authority.public)).unwrap();
    let act1 = ini.write_act1().unwrap();
    assert_eq!(act1.len(), 64);
    let sri = SriResponder::new(&authority, Duration::from_secs(3600)).unwrap();
    let (act2, mut sri_transport) = sri.respond(&act1).unwrap();
    assert_eq!(act2.len(), ACT2_LEN);
    let ours = ini.read_act2(&act2, now()).unwrap();
    assert!(ours.authenticated);
    // SRI issues version 0, valid from its clock for the configured duration.
    assert_eq!(ours.certificate.version, 0);
    assert_eq!(
        ours.certificate.not_valid_after - ours.certificate.valid_from,
        3600
    );
    exchange(ours, &mut sri_transport, true);
}

#[test]
fn sri_initiator_with_our_responder() {
    let authority = test_authority();
    let t = now();
    let mut resp = our_responder(cert_by(&authority, 0, t - 60, t + 3600));
    let (sri, act1) = SriInitiator::start(authority.public.xonly()).unwrap();
    assert_eq!(act1.len(), 64);
    let (act2, ours) = resp.read_act1(&act1).unwrap();
    let mut sri_transport = sri.finish(&act2, t).unwrap();
    exchange(ours, &mut sri_transport, false);
}

#[test]
fn our_initiator_refuses_sri_responder_under_another_authority() {
    let other = Keypair::from_secret(SecretKey::from_bytes([0x21; 32]).unwrap());
    let mut ini = Initiator::generate(InitiatorConfig::new(other.public)).unwrap();
    let act1 = ini.write_act1().unwrap();
    let sri = SriResponder::new(&test_authority(), Duration::from_secs(60)).unwrap();
    let (act2, _) = sri.respond(&act1).unwrap();
    assert_eq!(
        ini.read_act2(&act2, now()).unwrap_err(),
        NoiseError::Certificate(CertError::BadSignature)
    );
}

#[test]
fn sri_initiator_refuses_our_responder_under_another_authority() {
    let other = Keypair::from_secret(SecretKey::from_bytes([0x21; 32]).unwrap());
    let t = now();
    let mut resp = our_responder(cert_by(&other, 0, t - 60, t + 60));
    let (sri, act1) = SriInitiator::start(test_authority().public.xonly()).unwrap();
    let (act2, _) = resp.read_act1(&act1).unwrap();
    let err = sri.finish(&act2, t).unwrap_err();
    assert!(
        matches!(&err, SriNoiseError::Sri(e) if e.contains("InvalidCertificate")),
        "{err}"
    );
}

/// Both sides apply the same window: `valid_from - 10 <= now <= not_valid_after + 10`.
#[test]
fn validity_window_edges_agree_with_sri() {
    let authority = test_authority();
    let (from, until) = (1_800_000_000u32, 1_800_000_100u32);
    let cert = cert_by(&authority, 0, from, until);
    for (now, ok) in [
        (from - 11, false),
        (from - 10, true),
        (from, true),
        (until + 10, true),
        (until + 11, false),
    ] {
        let mut resp = our_responder(cert);
        let (sri, act1) = SriInitiator::start(authority.public.xonly()).unwrap();
        let (act2, _) = resp.read_act1(&act1).unwrap();
        let sri_ok = sri.finish(&act2, now).is_ok();

        let mut resp = our_responder(cert);
        let mut ini = Initiator::generate(InitiatorConfig::new(authority.public)).unwrap();
        let (act2, _) = resp.read_act1(&ini.write_act1().unwrap()).unwrap();
        let ours = ini.read_act2(&act2, now);
        assert_eq!(
            (sri_ok, ours.is_ok()),
            (ok, ok),
            "now = from {:+}",
            now as i64 - from as i64
        );
        if !ok {
            assert!(matches!(
                ours.unwrap_err(),
                NoiseError::Certificate(CertError::NotYetValid { .. } | CertError::Expired { .. })
            ));
        }
    }
}

/// Difference: SRI refuses any certificate whose version is not 0 (`CERTIFICATE_VERSION`), even with
/// a valid signature; our certificate check accepts any signed version (the spec defines no value).
#[test]
fn certificate_version_other_than_zero_sri_refuses_we_accept() {
    let authority = test_authority();
    let t = now();
    let cert = cert_by(&authority, 1, t - 60, t + 60);

    let mut resp = our_responder(cert);
    let (sri, act1) = SriInitiator::start(authority.public.xonly()).unwrap();
    let (act2, _) = resp.read_act1(&act1).unwrap();
    let err = sri.finish(&act2, t).unwrap_err();
    assert!(
        matches!(&err, SriNoiseError::Sri(e) if e.contains("InvalidCertificate")),
        "{err}"
    );

    let mut resp = our_responder(cert);
    let mut ini = Initiator::generate(InitiatorConfig::new(authority.public)).unwrap();
    let (act2, _) = resp.read_act1(&ini.write_act1().unwrap()).unwrap();
    let done = ini.read_act2(&act2, t).unwrap();
    assert_eq!(done.certificate.version, 1);
}

#[test]
fn tampered_act2_from_sri_is_refused_by_us() {
    let authority = test_authority();
    for pos in [0usize, 63, 64, 143, 144, 233] {
        let mut ini = Initiator::generate(InitiatorConfig::new(authority.public)).unwrap();
        let act1 = ini.write_act1().unwrap();
        let sri = SriResponder::new(&authority, Duration::from_secs(60)).unwrap();
        let (mut act2, _) = sri.respond(&act1).unwrap();
        act2[pos] ^= 0x01;
        assert!(
            matches!(ini.read_act2(&act2, now()), Err(NoiseError::Decrypt { .. })),
            "pos {pos}"
        );
    }
}

#[test]
fn tampered_frames_are_refused_by_both() {
    let authority = test_authority();
    let mut ini = Initiator::generate(InitiatorConfig::new(authority.public)).unwrap();
    let act1 = ini.write_act1().unwrap();
    let sri = SriResponder::new(&authority, Duration::from_secs(60)).unwrap();
    let (act2, mut sri_transport) = sri.respond(&act1).unwrap();
    let ours = ini.read_act2(&act2, now()).unwrap();
    let (mut enc, mut dec) = ours.transport.split();

    // Ours -> SRI, a bit flipped in the payload block: SRI refuses.
    let mut wire = Vec::new();
    enc.encrypt_frame(&plain_frame(100, 1), &mut wire).unwrap();
    wire[30] ^= 0x04;
    assert!(sri_transport.decrypt(&wire).is_err());

    // SRI -> ours, a bit flipped in the header: we refuse, terminally.
    let mut theirs = sri_transport.encrypt(&plain_frame(100, 2)).unwrap();
    theirs[3] ^= 0x80;
    assert_eq!(
        dec.push(&theirs).unwrap_err(),
        NoiseError::Decrypt {
            step: DecryptStep::FrameHeader
        }
    );
    assert!(dec.is_failed());
}

/// Surprise (SRI's side, not a spec matter): SRI's responder issues its certificate with
/// `valid_from` = its own clock, so an initiator whose clock is more than the 10-second leeway behind
/// refuses a brand-new certificate. Both implementations allow exactly 10 s.
#[test]
fn sri_certificates_start_at_the_responders_clock() {
    let authority = test_authority();
    let mut ini = Initiator::generate(InitiatorConfig::new(authority.public)).unwrap();
    let act1 = ini.write_act1().unwrap();
    let sri = SriResponder::new(&authority, Duration::from_secs(3600)).unwrap();
    let before = now();
    let (act2, _) = sri.respond(&act1).unwrap();
    let err = ini.read_act2(&act2, before - 12).unwrap_err();
    assert!(
        matches!(err, NoiseError::Certificate(CertError::NotYetValid { valid_from, .. }) if valid_from >= before),
        "{err:?}"
    );
}

/// API trap in codec_sv2 7.0.0: `NoiseDecoder::writable()` hands out a window of exactly the size it
/// expects and counts the whole window as received. A reader that copies fewer bytes (a short TCP
/// read) and polls `next_transport_frame` makes SRI decrypt the unwritten (zero) bytes: the valid
/// frame fails its MAC and the decrypt state is consumed. SRI's own test helper
/// (`codec_sv2::test_utils::decode_noise_frame`) copies `min(window, available)` and so has the
/// same hazard. Our glue (and our decryptor) accept any split.
#[test]
fn sri_decoder_counts_the_whole_writable_window_as_received() {
    use codec_sv2::{Decrypted, Handshake, NoiseDecoder, NoiseEncoder};
    use framing_sv2::framing::SerializedFrame;

    let authority = test_authority();
    let initiator = noise_sv2::Initiator::from_raw_k(authority.public.xonly()).unwrap();
    let responder = noise_sv2::Responder::from_authority_kp(
        &authority.public.xonly(),
        &authority.secret.to_bytes(),
        Duration::from_secs(60),
    )
    .unwrap();
    let (act1, initiator) = Handshake::initiator(initiator).step_0().unwrap();
    let (act2, r_transport) = Handshake::responder(responder)
        .step_1(act1.payload().try_into().unwrap())
        .unwrap();
    let i_transport = initiator
        .step_2_with_now(act2.payload().try_into().unwrap(), now())
        .unwrap();
    let (mut i_enc, _) = i_transport.split();
    let (_, r_dec) = r_transport.split();
    let frame = SerializedFrame::from_bytes(plain_frame(10, 0)).unwrap();
    let wire = NoiseEncoder::new()
        .encode_transport(frame, &mut i_enc)
        .unwrap();
    assert_eq!(wire.len(), 22 + 26);

    let mut decoder = NoiseDecoder::new();
    let window = decoder.writable();
    assert_eq!(window.len(), 22);
    // A short read: only 10 of the 22 header bytes arrived.
    window[..10].copy_from_slice(&wire[..10]);
    let result = decoder.next_transport_frame(r_dec);
    assert!(
        matches!(result, Err(_) | Ok(Decrypted::Frame(..))),
        "SRI waited for the rest instead of decrypting the partial window"
    );
    assert!(
        result.is_err(),
        "a header of 10 real and 12 zero bytes cannot authenticate"
    );

    // Ours: the same 10 bytes just wait for the rest.
    let mut ours = Decryptor::from_key([0; 32]);
    assert_eq!(ours.push(&wire[..10]).unwrap(), (10, None));
    assert_eq!(ours.needed(), 12);
}

/// Every byte position of an SRI act 2, one bit flipped: a typed decryption error naming the part of
/// act 2 that failed, and a terminated handshake (never a panic, never a certificate error: the
/// certificate is only looked at after both MACs verified).
#[test]
fn flipped_bit_at_every_position_of_sri_act2() {
    let authority = test_authority();
    let seed = KeySeed::new([0x31; 32], [0x32; 32]);
    let fresh = || Initiator::new(InitiatorConfig::new(authority.public), &seed).unwrap();
    let act1 = fresh().write_act1().unwrap();
    let sri = SriResponder::new(&authority, Duration::from_secs(3600)).unwrap();
    let (act2, _) = sri.respond(&act1).unwrap();
    let t = now();
    // The untouched act 2 completes (the same fixed seed gives the same act 1 every time).
    let mut ini = fresh();
    assert_eq!(ini.write_act1().unwrap(), act1);
    assert!(ini.read_act2(&act2, t).unwrap().authenticated);
    for pos in 0..ACT2_LEN {
        let mut bad = act2.clone();
        bad[pos] ^= 1 << (pos % 8);
        let mut ini = fresh();
        ini.write_act1().unwrap();
        let step = if pos < 144 {
            DecryptStep::Act2Static
        } else {
            DecryptStep::Act2Payload
        };
        assert_eq!(
            ini.read_act2(&bad, t).unwrap_err(),
            NoiseError::Decrypt { step },
            "pos {pos}"
        );
        assert_eq!(ini.state(), HandshakeState::Failed);
        assert_eq!(ini.read_act2(&act2, t).unwrap_err(), NoiseError::Terminated);
    }
    // Truncated at every length.
    for len in 0..ACT2_LEN {
        let mut ini = fresh();
        ini.write_act1().unwrap();
        assert!(
            matches!(
                ini.read_act2(&act2[..len], t),
                Err(NoiseError::WrongLength { expected: 234, got, .. }) if got == len
            ),
            "len {len}"
        );
    }
}

/// Every byte position of SRI-encrypted frames (payloads 0, 1 and 100 bytes), one bit flipped: our
/// decryptor names the header or the block, and refuses everything after.
#[test]
fn flipped_bit_at_every_position_of_sri_frames() {
    let authority = test_authority();
    let mut ini = Initiator::generate(InitiatorConfig::new(authority.public)).unwrap();
    let act1 = ini.write_act1().unwrap();
    let sri = SriResponder::new(&authority, Duration::from_secs(3600)).unwrap();
    let (act2, mut sri_transport) = sri.respond(&act1).unwrap();
    let ours = ini.read_act2(&act2, now()).unwrap();
    let (_, dec) = ours.transport.split();
    let mut dec = dec;
    for (n, len) in [0usize, 1, 100].into_iter().enumerate() {
        let frame = plain_frame(len, n as u8);
        let wire = sri_transport.encrypt(&frame).unwrap();
        assert_eq!(wire.len(), encrypted_frame_len(len));
        for pos in 0..wire.len() {
            let mut bad = wire.clone();
            bad[pos] ^= 1 << (pos % 8);
            let mut d = dec.clone();
            let step = if pos < 22 {
                DecryptStep::FrameHeader
            } else {
                DecryptStep::FrameBlock { index: 0 }
            };
            assert_eq!(
                d.push(&bad).unwrap_err(),
                NoiseError::Decrypt { step },
                "len {len} pos {pos}"
            );
            assert!(d.is_failed());
            assert_eq!(d.push(&wire).unwrap_err(), NoiseError::Terminated);
        }
        // The untouched frame still decrypts on the real decryptor.
        let (used, got) = dec.push(&wire).unwrap();
        assert_eq!((used, got), (wire.len(), Some(&frame[..])));
    }
}

/// Our frames with a bit flipped anywhere are refused by SRI (an error, not a panic).
#[test]
fn flipped_bit_at_every_position_of_our_frames_is_refused_by_sri() {
    let authority = test_authority();
    let frame = plain_frame(20, 9);
    for pos in 0..encrypted_frame_len(20) {
        // A fresh SRI session per position: its decrypt state is consumed by a failure.
        let mut ini = Initiator::generate(InitiatorConfig::new(authority.public)).unwrap();
        let act1 = ini.write_act1().unwrap();
        let sri = SriResponder::new(&authority, Duration::from_secs(3600)).unwrap();
        let (act2, mut sri_transport) = sri.respond(&act1).unwrap();
        let ours = ini.read_act2(&act2, now()).unwrap();
        let (mut enc, _) = ours.transport.split();
        let mut wire = Vec::new();
        enc.encrypt_frame(&frame, &mut wire).unwrap();
        wire[pos] ^= 1 << (pos % 8);
        match sri_transport.decrypt(&wire) {
            Err(SriNoiseError::Sri(_)) => {}
            other => panic!("pos {pos}: SRI gave {other:?}"),
        }
    }
}

/// The key log is enough to read a session with SRI: our responder's key log line decrypts what SRI's
/// initiator sent and what our side sent back, starting from the capture's act 1 alone.
#[test]
fn key_log_decrypts_a_session_with_sri() {
    let authority = test_authority();
    let t = now();
    let mut resp = our_responder(cert_by(&authority, 0, t - 60, t + 3600));
    let (sri, act1) = SriInitiator::start(authority.public.xonly()).unwrap();
    let (act2, ours) = resp.read_act1(&act1).unwrap();
    let mut sri_transport = sri.finish(&act2, t).unwrap();
    let log = format!("# capture\n{}", ours.key_log_entry().to_line());

    let client_frames = [plain_frame(0, 1), plain_frame(70_000, 2)];
    let mut client_wire = Vec::new();
    for f in &client_frames {
        client_wire.extend(sri_transport.encrypt(f).unwrap());
    }
    let (mut enc, _) = ours.transport.split();
    let server_frame = plain_frame(33, 3);
    let mut server_wire = Vec::new();
    enc.encrypt_frame(&server_frame, &mut server_wire).unwrap();

    // A capture reader: the first 64 client bytes find the line.
    let entries = sv2_codec::noise::keylog::parse(&log).unwrap();
    let entry = sv2_codec::noise::keylog::find(&entries, &act1).unwrap();
    let got = Decryptor::from_key(entry.c1)
        .push_all(&client_wire)
        .unwrap();
    assert_eq!(got.len(), 2);
    for (g, f) in got.iter().zip(&client_frames) {
        assert_eq!(g.payload, f[6..]);
    }
    let got = Decryptor::from_key(entry.c2)
        .push_all(&server_wire)
        .unwrap();
    assert_eq!(got[0].payload, server_frame[6..]);
}

/// SRI-encrypted frames of every size of the issue, fed to our decryptor one byte at a time.
#[test]
fn sri_frames_fed_one_byte_at_a_time() {
    let authority = test_authority();
    let mut ini = Initiator::generate(InitiatorConfig::new(authority.public)).unwrap();
    let act1 = ini.write_act1().unwrap();
    let sri = SriResponder::new(&authority, Duration::from_secs(3600)).unwrap();
    let (act2, mut sri_transport) = sri.respond(&act1).unwrap();
    let (_, mut dec) = ini.read_act2(&act2, now()).unwrap().transport.split();
    let mut stream = Vec::new();
    let frames: Vec<Vec<u8>> = [0usize, 1, 65519, 65520]
        .iter()
        .enumerate()
        .map(|(i, &l)| plain_frame(l, 40 + i as u8))
        .collect();
    for f in &frames {
        stream.extend(sri_transport.encrypt(f).unwrap());
    }
    let mut got = Vec::new();
    for byte in &stream {
        let (used, frame) = dec.push(std::slice::from_ref(byte)).unwrap();
        assert_eq!(used, 1);
        if let Some(frame) = frame {
            got.push(frame.to_vec());
        }
    }
    assert_eq!(got, frames);
}
