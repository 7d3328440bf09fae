//! Hostile and outside inputs for the Noise module: odd URLs and keys, certificates at the exact edges
//! of their window, the transport decryptor fed one byte at a time, and peers claiming the largest
//! length a header can carry.

use sv2_codec::noise::cert::{CertError, SignatureNoiseMessage, ValidityPolicy};
use sv2_codec::noise::keys::{
    base58_decode, base58check_encode, AuthorityPublicKey, KeyError, Keypair, SecretKey, Sv2Url,
};
use sv2_codec::noise::transport::{
    encrypted_frame_len, ENCRYPTED_HEADER_LEN, MAX_BLOCK_LEN, MAX_CHUNK_LEN,
};
use sv2_codec::noise::*;

const SPEC_BASE58: &str = "9bXiEd8boQVhq7WddEcERUL5tyyJVFYdU8th3HfbNXK3Yw6GRXh";
const SPEC_XONLY: &str = "76637000979c1c11af0c300bcd8c7fe48610fce9b9c11e3daee35ae0b08a7455";

fn plain_frame(len: usize, salt: u8) -> Vec<u8> {
    let l = (len as u32).to_le_bytes();
    let mut f = vec![0x00, 0x80, 0x1a, l[0], l[1], l[2]];
    f.extend((0..len).map(|i| (i as u8).wrapping_mul(29) ^ salt));
    f
}

// ---------------------------------------------------------------------------------------------------
// URLs

#[test]
fn url_scheme_is_case_insensitive_and_formats_lowercase() {
    for scheme in ["STRATUM2+TCP", "Stratum2+Tcp", "stratum2+tcp"] {
        let url: Sv2Url = format!("{scheme}://127.0.0.1:34254/{SPEC_BASE58}")
            .parse()
            .unwrap_or_else(|e| panic!("{scheme}: {e}"));
        assert_eq!(
            url.to_string(),
            format!("stratum2+tcp://127.0.0.1:34254/{SPEC_BASE58}")
        );
    }
}

#[test]
fn url_trailing_slashes_and_missing_key() {
    let with: Sv2Url = format!("stratum2+tcp://127.0.0.1:1/{SPEC_BASE58}/")
        .parse()
        .unwrap();
    assert_eq!(hex::encode(with.authority_key.unwrap().xonly()), SPEC_XONLY);
    let without: Sv2Url = "stratum2+tcp://127.0.0.1:1/".parse().unwrap();
    assert_eq!(without.authority_key, None);
    assert_eq!(without.to_string(), "stratum2+tcp://127.0.0.1:1");
}

#[test]
fn url_ports_at_and_past_the_edges() {
    let max: Sv2Url = "stratum2+tcp://127.0.0.1:65535".parse().unwrap();
    assert_eq!(max.port, 65535);
    let one: Sv2Url = "stratum2+tcp://127.0.0.1:1".parse().unwrap();
    assert_eq!(one.port, 1);
    for bad in [
        // Port 0 cannot be connected to.
        "stratum2+tcp://127.0.0.1:0",
        "stratum2+tcp://127.0.0.1:65536",
        // u16::from_str takes a sign: a URL port is digits only.
        "stratum2+tcp://127.0.0.1:+80",
        "stratum2+tcp://127.0.0.1:-1",
        "stratum2+tcp://127.0.0.1: 80",
        "stratum2+tcp://127.0.0.1:",
        "stratum2+tcp://127.0.0.1:0x50",
        "stratum2+tcp://127.0.0.1:٣٣",
    ] {
        assert!(
            matches!(bad.parse::<Sv2Url>(), Err(KeyError::Url(_))),
            "{bad:?} should be refused"
        );
    }
}

#[test]
fn url_ipv6_hosts() {
    for (text, host, host_port) in [
        ("stratum2+tcp://[::1]:3333", "::1", "[::1]:3333"),
        (
            "stratum2+tcp://[2001:db8::7]:34254",
            "2001:db8::7",
            "[2001:db8::7]:34254",
        ),
        (
            "stratum2+tcp://[::ffff:127.0.0.1]:1",
            "::ffff:127.0.0.1",
            "[::ffff:127.0.0.1]:1",
        ),
    ] {
        let url: Sv2Url = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(url.host, host);
        assert_eq!(url.host_port(), host_port);
        assert_eq!(url.to_string(), text);
        assert_eq!(url.to_string().parse::<Sv2Url>().unwrap(), url);
        assert!(url.host_port().parse::<std::net::SocketAddr>().is_ok());
    }
    let keyed: Sv2Url = format!("stratum2+tcp://[::1]:3333/{SPEC_BASE58}")
        .parse()
        .unwrap();
    assert!(keyed.authority_key.is_some());
    for bad in [
        // Brackets hold an IPv6 address and nothing else.
        "stratum2+tcp://[zzz]:1",
        "stratum2+tcp://[127.0.0.1]:1",
        "stratum2+tcp://[example.com]:1",
        "stratum2+tcp://[]:1",
        "stratum2+tcp://[::1]",
        "stratum2+tcp://[::1]3333",
        "stratum2+tcp://[::1]x:3333",
        "stratum2+tcp://::1:3333",
        "stratum2+tcp://[::1:3333",
        "stratum2+tcp://::1]:3333",
        "stratum2+tcp://[[::1]]:3333",
    ] {
        assert!(bad.parse::<Sv2Url>().is_err(), "{bad:?} should be refused");
    }
}

#[test]
fn url_odd_hosts_and_paths_are_refused() {
    for bad in [
        "stratum2+tcp://user@127.0.0.1:1",
        "stratum2+tcp://127.0.0.1:1?x=1",
        "stratum2+tcp://127.0.0.1:1#frag",
        "stratum2+tcp://bad host:1",
        "stratum2+tcp://h\u{e9}te:1",
        " stratum2+tcp://127.0.0.1:1",
        "stratum2+tcp:/127.0.0.1:1",
        "stratum2://127.0.0.1:1",
        "stratum2+tcp+tls://127.0.0.1:1",
    ] {
        assert!(bad.parse::<Sv2Url>().is_err(), "{bad:?} should be refused");
    }
    // A key followed by more path, or a query, is not a key.
    for bad in [
        format!("stratum2+tcp://127.0.0.1:1/{SPEC_BASE58}/extra"),
        format!("stratum2+tcp://127.0.0.1:1/{SPEC_BASE58}?x"),
        format!("stratum2+tcp://127.0.0.1:1//{SPEC_BASE58}"),
    ] {
        assert!(bad.parse::<Sv2Url>().is_err(), "{bad:?} should be refused");
    }
}

#[test]
fn url_format_parse_round_trip_for_names() {
    for text in [
        "stratum2+tcp://localhost:34254",
        "stratum2+tcp://pool.example.org:3336",
        "stratum2+tcp://127.0.0.1:34254",
    ] {
        let url: Sv2Url = text.parse().unwrap();
        assert_eq!(url.to_string(), text);
    }
    let url = Sv2Url {
        host: "127.0.0.1".into(),
        port: 34254,
        authority_key: Some(AuthorityPublicKey::from_base58(SPEC_BASE58).unwrap()),
    };
    assert_eq!(
        url.to_string(),
        format!("stratum2+tcp://127.0.0.1:34254/{SPEC_BASE58}")
    );
    assert_eq!(url.to_string().parse::<Sv2Url>().unwrap(), url);
}

// ---------------------------------------------------------------------------------------------------
// base58check keys

#[test]
fn bad_base58_is_a_typed_error() {
    // Characters outside the alphabet, including look-alikes and non-ASCII, at the right position.
    for (text, character, position) in [
        ("0", '0', 0),
        ("O", 'O', 0),
        ("I", 'I', 0),
        ("l", 'l', 0),
        ("9bX+", '+', 3),
        ("9bX ", ' ', 3),
        ("9\u{e9}X", '\u{e9}', 1),
    ] {
        assert_eq!(
            AuthorityPublicKey::from_base58(text).unwrap_err(),
            KeyError::Base58Character {
                character,
                position
            },
            "{text:?}"
        );
    }
    // Empty, too short for a checksum, wrong lengths with a good checksum.
    assert!(matches!(
        AuthorityPublicKey::from_base58(""),
        Err(KeyError::Length { got: 0, .. })
    ));
    assert!(matches!(
        AuthorityPublicKey::from_base58("111"),
        Err(KeyError::Length { got: 3, .. })
    ));
    for len in [0usize, 1, 33, 35] {
        let payload = vec![1u8; len];
        assert!(
            matches!(
                AuthorityPublicKey::from_base58(&base58check_encode(&payload)),
                Err(KeyError::Length { .. })
            ),
            "payload {len}"
        );
    }
    // A good checksum over [0x01, 0x00] || a point not on the curve.
    let mut payload = vec![0x01, 0x00];
    payload.extend_from_slice(&[0u8; 31]);
    payload.push(5);
    assert_eq!(
        AuthorityPublicKey::from_base58(&base58check_encode(&payload)).unwrap_err(),
        KeyError::InvalidPublicKey
    );
    // The spec key with a case change anywhere fails (base58 is case sensitive).
    for i in 0..SPEC_BASE58.len() {
        let mut chars: Vec<char> = SPEC_BASE58.chars().collect();
        let c = chars[i];
        let swapped = if c.is_ascii_lowercase() {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        };
        if swapped == c {
            continue;
        }
        chars[i] = swapped;
        let text: String = chars.into_iter().collect();
        assert!(AuthorityPublicKey::from_base58(&text).is_err(), "{text}");
    }
    // Long strings are refused before any arithmetic, whatever their characters.
    let long = "z".repeat(100_000);
    assert!(matches!(
        base58_decode(&long),
        Err(KeyError::Base58TooLong { .. })
    ));
    let multibyte = "\u{e9}".repeat(40);
    assert!(base58_decode(&multibyte).is_err());
}

#[test]
fn secret_keys_are_not_accepted_as_public_keys_and_vice_versa() {
    let pair = Keypair::from_secret(SecretKey::from_bytes([0x42; 32]).unwrap());
    assert!(AuthorityPublicKey::from_base58(&pair.secret.to_base58()).is_err());
    assert!(SecretKey::from_base58(&pair.public.to_base58()).is_err());
}

// ---------------------------------------------------------------------------------------------------
// Certificates at the exact edges of the window

fn authority() -> Keypair {
    Keypair::from_secret(SecretKey::from_bytes([0x11; 32]).unwrap())
}

fn server() -> [u8; 32] {
    SecretKey::from_bytes([0x22; 32]).unwrap().xonly_public()
}

#[test]
fn certificate_window_edges_for_every_skew() {
    let (from, until) = (1_000_000u32, 1_000_500u32);
    let cert = SignatureNoiseMessage::issue(0, from, until, &server(), &authority(), None);
    for skew in [0u32, 1, 10, 3600] {
        let policy = ValidityPolicy { skew_secs: skew };
        let check = |now: u32| cert.verify(&server(), &authority().public, now, &policy);
        assert_eq!(
            check(from - skew),
            Ok(()),
            "skew {skew}: first valid second"
        );
        assert_eq!(
            check(from - skew - 1),
            Err(CertError::NotYetValid {
                valid_from: from,
                now: from - skew - 1
            }),
            "skew {skew}"
        );
        assert_eq!(
            check(until + skew),
            Ok(()),
            "skew {skew}: last valid second"
        );
        assert_eq!(
            check(until + skew + 1),
            Err(CertError::Expired {
                not_valid_after: until,
                now: until + skew + 1
            }),
            "skew {skew}"
        );
    }
    // A one-second window.
    let point = SignatureNoiseMessage::issue(0, from, from, &server(), &authority(), None);
    let strict = ValidityPolicy { skew_secs: 0 };
    assert!(point.check_validity(from, &strict).is_ok());
    assert!(point.check_validity(from - 1, &strict).is_err());
    assert!(point.check_validity(from + 1, &strict).is_err());
    // An inverted window (not_valid_after < valid_from) is never valid without skew.
    let inverted = SignatureNoiseMessage::issue(0, from, from - 1, &server(), &authority(), None);
    for now in [from - 2, from - 1, from, from + 1] {
        assert!(inverted.check_validity(now, &strict).is_err(), "now {now}");
    }
}

#[test]
fn certificate_window_edges_at_the_ends_of_u32() {
    let policy = ValidityPolicy::default();
    let late =
        SignatureNoiseMessage::issue(0, u32::MAX - 5, u32::MAX, &server(), &authority(), None);
    assert!(late.check_validity(u32::MAX, &policy).is_ok());
    assert!(late.check_validity(u32::MAX - 15, &policy).is_ok());
    assert!(matches!(
        late.check_validity(u32::MAX - 16, &policy),
        Err(CertError::NotYetValid { .. })
    ));
    let early = SignatureNoiseMessage::issue(0, 0, 5, &server(), &authority(), None);
    assert!(early.check_validity(0, &policy).is_ok());
    assert!(early.check_validity(15, &policy).is_ok());
    assert!(matches!(
        early.check_validity(16, &policy),
        Err(CertError::Expired { .. })
    ));
}

#[test]
fn certificate_checks_signature_before_time() {
    // An expired certificate under the wrong authority reports the signature, the stronger failure.
    let cert = SignatureNoiseMessage::issue(0, 10, 20, &server(), &authority(), None);
    let other = Keypair::from_secret(SecretKey::from_bytes([0x33; 32]).unwrap());
    assert_eq!(
        cert.verify(
            &server(),
            &other.public,
            1_000_000,
            &ValidityPolicy::default()
        ),
        Err(CertError::BadSignature)
    );
}

// ---------------------------------------------------------------------------------------------------
// The transport decryptor

/// Feeds `wire` one byte per call and returns the frames; checks that no call uses more than it got
/// and that every byte but the last of each frame leaves the frame pending.
fn one_byte_at_a_time(dec: &mut Decryptor, wire: &[u8]) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    for (i, byte) in wire.iter().enumerate() {
        let before = dec.needed();
        assert!(before > 0, "at {i}");
        let (used, frame) = dec.push(std::slice::from_ref(byte)).unwrap();
        assert_eq!(used, 1, "at {i}");
        if let Some(frame) = frame {
            assert_eq!(
                before, 1,
                "a frame completes only on its last byte (at {i})"
            );
            frames.push(frame.to_vec());
        }
    }
    frames
}

#[test]
fn decryptor_fed_one_byte_at_a_time() {
    let sizes = [
        0usize,
        1,
        16,
        MAX_CHUNK_LEN,
        MAX_CHUNK_LEN + 1,
        0,
        2 * MAX_CHUNK_LEN + 3,
    ];
    let mut enc = Encryptor::from_key([0x5c; 32]);
    let mut wire = Vec::new();
    let frames: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &len)| plain_frame(len, i as u8))
        .collect();
    for f in &frames {
        enc.encrypt_frame(f, &mut wire).unwrap();
    }
    assert_eq!(
        wire.len(),
        sizes.iter().map(|&l| encrypted_frame_len(l)).sum::<usize>()
    );
    let mut dec = Decryptor::from_key([0x5c; 32]);
    let got = one_byte_at_a_time(&mut dec, &wire);
    assert_eq!(got, frames);
    assert_eq!(dec.nonce(), enc.nonce());
    assert!(dec.is_idle());
}

#[test]
fn decryptor_handles_empty_pushes_anywhere() {
    let mut enc = Encryptor::from_key([1; 32]);
    let mut wire = Vec::new();
    let frame = plain_frame(MAX_CHUNK_LEN + 10, 3);
    enc.encrypt_frame(&frame, &mut wire).unwrap();
    let mut dec = Decryptor::from_key([1; 32]);
    for cut in [0, 5, 22, 23, 22 + MAX_BLOCK_LEN, wire.len()] {
        let mut d = dec.clone();
        let (used, f) = d.push(&wire[..cut]).unwrap();
        assert_eq!(used, cut);
        let complete = f.is_some();
        assert_eq!(d.push(&[]).unwrap(), (0, None), "cut {cut}");
        if !complete {
            let (used, f) = d.push(&wire[cut..]).unwrap();
            assert_eq!(used, wire.len() - cut);
            assert_eq!(f.unwrap(), &frame[..]);
        }
    }
    let (_, f) = dec.push(&wire).unwrap();
    assert!(f.is_some());
}

/// The largest payload msg_length can claim, 2^24 - 1 bytes, goes through whole, and memory follows
/// the bytes received rather than the claim.
#[test]
fn largest_claimed_length_round_trips_with_bounded_memory() {
    const MAX: usize = (1 << 24) - 1;
    let frame = plain_frame(MAX, 9);
    let mut enc = Encryptor::from_key([7; 32]);
    let mut wire = Vec::new();
    enc.encrypt_frame(&frame, &mut wire).unwrap();
    assert_eq!(wire.len(), ENCRYPTED_HEADER_LEN + 16_781_327);
    assert_eq!(enc.nonce(), 1 + 257);

    let mut dec = Decryptor::from_key([7; 32]);
    // The header and a few bytes: nothing near 16 MiB is reserved.
    let (used, f) = dec.push(&wire[..ENCRYPTED_HEADER_LEN + 3]).unwrap();
    assert_eq!((used, f.is_none()), (ENCRYPTED_HEADER_LEN + 3, true));
    assert_eq!(dec.needed(), MAX_BLOCK_LEN - 3);
    // Then in awkward pieces.
    let mut input = &wire[ENCRYPTED_HEADER_LEN + 3..];
    let mut got = None;
    for piece in [1usize, MAX_BLOCK_LEN, 7, 1 << 20, usize::MAX] {
        let take = piece.min(input.len());
        let (used, f) = dec.push(&input[..take]).unwrap();
        input = &input[used..];
        if let Some(f) = f {
            got = Some(f.to_vec());
        }
    }
    assert!(input.is_empty());
    assert_eq!(got.as_deref(), Some(&frame[..]));
    assert_eq!(dec.nonce(), enc.nonce());

    // A configured limit one below the claim refuses it as soon as the header decrypts.
    let mut dec = Decryptor::with_max_payload(CipherState::new([7; 32]), MAX - 1);
    assert_eq!(
        dec.push(&wire[..ENCRYPTED_HEADER_LEN]).unwrap_err(),
        NoiseError::FrameTooLarge {
            length: MAX,
            max: MAX - 1
        }
    );
    assert_eq!(
        dec.push(&wire[ENCRYPTED_HEADER_LEN..]).unwrap_err(),
        NoiseError::Terminated
    );
}

/// A peer that claims 2^24 - 1 bytes and then trickles garbage: the first bad block is caught after
/// at most one block's worth of bytes, and memory never exceeds what was received.
#[test]
fn a_lying_peer_is_stopped_at_the_first_block() {
    let mut c = CipherState::new([8; 32]);
    let mut header = Vec::new();
    c.encrypt_append(&[], &[0, 0, 0x70, 0xff, 0xff, 0xff], &mut header)
        .unwrap();
    let mut dec = Decryptor::from_key([8; 32]);
    assert_eq!(dec.push(&header).unwrap(), (22, None));
    let garbage = vec![0xa5u8; MAX_BLOCK_LEN];
    let mut fed = 0;
    let err = loop {
        match dec.push(&garbage[fed..fed + 1]) {
            Ok((used, None)) => fed += used,
            Ok((_, Some(_))) => panic!("garbage authenticated"),
            Err(e) => break e,
        }
    };
    assert_eq!(fed, MAX_BLOCK_LEN - 1);
    assert_eq!(
        err,
        NoiseError::Decrypt {
            step: DecryptStep::FrameBlock { index: 0 }
        }
    );
    assert!(dec.is_failed());
}

#[test]
fn url_takes_one_trailing_slash_only() {
    assert!(format!("stratum2+tcp://127.0.0.1:1/{SPEC_BASE58}//")
        .parse::<Sv2Url>()
        .is_err());
}
