//! The stream decoder against real traffic (a Noise session made by the codec's initiator and
//! responder, plain frames, SV1 lines), fed in every split, and against hostile bytes: lying lengths,
//! corrupted ciphertext, missing keys, over-long lines. The answer is always events or a typed error,
//! never a panic, and memory follows what arrived.

use proptest::prelude::*;
use sv2_codec::messages::common::SetupConnectionSuccess;
use sv2_codec::messages::mining::SetTarget;
use sv2_codec::noise::keys::{Keypair, SecretKey};
use sv2_codec::noise::{
    Decryptor, Encryptor, Initiator, InitiatorConfig, Responder, ResponderConfig,
};
use sv2_codec::types::U256;
use sv2_codec::{to_frame_bytes, Message};
use sv2_wire::decoder::{classify_client_start, MAX_LINE, MAX_WAITING};
use sv2_wire::{
    Direction, Event, Mode, Side, StreamDecoder, StreamError, StreamEvent, Timestamp, Transcript,
};

fn frame(m: Message<'_>) -> Vec<u8> {
    to_frame_bytes(&m, &[]).unwrap()
}

fn plain_frames() -> Vec<Vec<u8>> {
    vec![
        frame(
            SetupConnectionSuccess {
                used_version: 2,
                flags: 1,
            }
            .into(),
        ),
        frame(
            SetTarget {
                channel_id: 3,
                maximum_target: U256([0x42; 32]),
            }
            .into(),
        ),
        // A frame larger than one 65535-byte Noise block (an unknown message: the decoder delimits
        // frames, it does not judge them).
        {
            let mut f = vec![0x00, 0x00, 0x77];
            let len = 70_000u32;
            f.extend_from_slice(&len.to_le_bytes()[..3]);
            f.extend(std::iter::repeat_n(0xab, len as usize));
            f
        },
    ]
}

/// A finished handshake: act 1, act 2, and the client's and server's traffic halves.
struct Session {
    act1: Vec<u8>,
    act2: Vec<u8>,
    client: (Encryptor, Decryptor),
    server: (Encryptor, Decryptor),
}

fn session() -> Session {
    let authority = Keypair::from_secret(SecretKey::from_bytes([0x11; 32]).unwrap());
    let responder_config = ResponderConfig::issue(
        &SecretKey::from_bytes([0x22; 32]).unwrap(),
        &authority,
        1_000,
        2_000_000_000,
    );
    let mut initiator = Initiator::generate(InitiatorConfig::new(authority.public)).unwrap();
    let mut responder = Responder::generate(responder_config).unwrap();
    let act1 = initiator.write_act1().unwrap();
    let (act2, server) = responder.read_act1(&act1).unwrap();
    let client = initiator.read_act2(&act2, 1_500_000_000).unwrap();
    Session {
        act1,
        act2,
        client: client.transport.split(),
        server: server.transport.split(),
    }
}

fn drain(decoder: &mut StreamDecoder) -> Vec<StreamEvent> {
    std::iter::from_fn(|| decoder.next_event().map(|(_, e)| e)).collect()
}

/// Feeds `bytes` in pieces cut at `cuts` (positions, any order, out of range ignored).
fn feed(decoder: &mut StreamDecoder, bytes: &[u8], cuts: &[usize]) -> Vec<StreamEvent> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    let mut events = Vec::new();
    let mut start = 0;
    for cut in cuts.into_iter().chain([bytes.len()]) {
        decoder.push(&bytes[start..cut.max(start)], Timestamp(cut as u64));
        start = cut.max(start);
        events.extend(drain(decoder));
    }
    events
}

#[test]
fn a_noise_session_is_read_both_ways_with_wire_bytes() {
    let mut s = session();
    let frames = plain_frames();
    // Client to server: act 1, then frames encrypted with the client's encryptor.
    let mut up = s.act1.clone();
    let mut wires = Vec::new();
    for f in &frames {
        let mut out = Vec::new();
        s.client.0.encrypt_frame(f, &mut out).unwrap();
        up.extend_from_slice(&out);
        wires.push(out);
    }
    let mut decoder = StreamDecoder::new(Direction::ClientToServer, Mode::Noise);
    // The act and everything after it in one push: the transport waits for the keys.
    decoder.push(&up, Timestamp(1));
    let events = drain(&mut decoder);
    assert_eq!(
        events,
        [StreamEvent::Act {
            act: 1,
            bytes: s.act1.clone()
        }]
    );
    assert!(decoder.awaits_keys());
    decoder.set_decryptor(s.server.1.clone(), Timestamp(2));
    let events = drain(&mut decoder);
    let expected: Vec<StreamEvent> = frames
        .iter()
        .zip(&wires)
        .map(|(plain, wire)| StreamEvent::Frame {
            plain: plain.clone(),
            wire: Some(wire.clone()),
        })
        .collect();
    assert_eq!(events, expected);
    assert!(decoder.is_idle());

    // Without wire bytes (a load generator's choice), the same plain frames.
    let mut lean =
        StreamDecoder::transport(Direction::ClientToServer, s.server.1.clone()).keep_wire(false);
    lean.push(&up[64..], Timestamp(4));
    let plain: Vec<StreamEvent> = frames
        .iter()
        .map(|f| StreamEvent::Frame {
            plain: f.clone(),
            wire: None,
        })
        .collect();
    assert_eq!(drain(&mut lean), plain);

    // Server to client: act 2 is 234 bytes.
    let mut decoder = StreamDecoder::new(Direction::ServerToClient, Mode::Noise);
    decoder.push(&s.act2, Timestamp(3));
    assert!(matches!(
        drain(&mut decoder).as_slice(),
        [StreamEvent::Act { act: 2, bytes }] if bytes.len() == 234
    ));
}

#[test]
fn recorded_events_make_one_transcript_that_round_trips_through_json() {
    let mut s = session();
    let mut transcript = Transcript::default();
    let mut up = StreamDecoder::new(Direction::ClientToServer, Mode::Noise);
    let mut down = StreamDecoder::new(Direction::ServerToClient, Mode::Noise);
    up.push(&s.act1, Timestamp(10));
    down.push(&s.act2, Timestamp(20));
    up.set_decryptor(s.server.1.clone(), Timestamp(20));
    down.set_decryptor(s.client.1.clone(), Timestamp(20));
    let mut out = Vec::new();
    s.server
        .0
        .encrypt_frame(&plain_frames()[1], &mut out)
        .unwrap();
    down.push(&out, Timestamp(30));
    for decoder in [&mut up, &mut down] {
        let direction = decoder.direction();
        while let Some((at, event)) = decoder.next_event() {
            event.record(direction, at, &mut transcript);
        }
    }
    assert_eq!(transcript.len(), 3);
    assert_eq!(transcript.messages(Direction::ServerToClient).count(), 1);
    let back = Transcript::from_json(&transcript.to_json()).unwrap();
    assert_eq!(back, transcript);
    assert!(matches!(
        &back.entries()[2].event,
        Event::Frame { wire: Some(w), direction: Direction::ServerToClient, .. } if *w == out
    ));
}

#[test]
fn plain_frames_and_sv1_lines() {
    let frames = plain_frames();
    let bytes: Vec<u8> = frames.concat();
    let mut decoder = StreamDecoder::new(Direction::ServerToClient, Mode::Sv2);
    let events = feed(&mut decoder, &bytes, &[1, 7, 100, 70_000]);
    let expected: Vec<StreamEvent> = frames
        .iter()
        .map(|f| StreamEvent::Frame {
            plain: f.clone(),
            wire: None,
        })
        .collect();
    assert_eq!(events, expected);

    let lines = b"{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[]}\r\n{\"id\":1,\"result\":true,\"error\":null}\n{\"id\":2";
    let mut decoder = StreamDecoder::new(Direction::ClientToServer, Mode::Sv1);
    let events = feed(&mut decoder, lines, &[3, 50]);
    assert_eq!(events.len(), 2);
    assert!(
        matches!(&events[0], StreamEvent::Sv1Line(l) if l.ends_with(b"[]}")),
        "the \\r is dropped"
    );
    assert_eq!(decoder.partial(), b"{\"id\":2");
    let mut transcript = Transcript::default();
    for e in events {
        e.record(Direction::ClientToServer, Timestamp(0), &mut transcript);
    }
    assert!(transcript
        .entries()
        .iter()
        .all(|e| matches!(&e.event, Event::Sv1 { parsed: Ok(_), .. })));
}

#[test]
fn hostile_input_ends_in_typed_errors() {
    // A plain header claiming 2^24 - 1 bytes is fine to wait for; only what arrives is kept.
    let mut decoder = StreamDecoder::new(Direction::ServerToClient, Mode::Sv2);
    decoder.push(&[0, 0, 0x01, 0xff, 0xff, 0xff, 1, 2, 3], Timestamp(0));
    assert!(drain(&mut decoder).is_empty());
    assert!(!decoder.is_idle());

    // A corrupted ciphertext byte: decryption fails, the direction is lost, later bytes are counted.
    let mut s = session();
    let mut out = Vec::new();
    s.client
        .0
        .encrypt_frame(&plain_frames()[0], &mut out)
        .unwrap();
    out[3] ^= 1;
    let mut decoder = StreamDecoder::transport(Direction::ClientToServer, s.server.1.clone());
    decoder.push(&out, Timestamp(0));
    decoder.push(b"more", Timestamp(1));
    assert!(matches!(
        drain(&mut decoder).as_slice(),
        [StreamEvent::Error(StreamError::Noise(_))]
    ));
    assert!(decoder.is_lost());
    // The frame that failed, and everything after it.
    assert_eq!(decoder.lost(), out.len() as u64 + 4);

    // No keys: the waiting bytes are bounded, then lost with a count.
    let mut decoder = StreamDecoder::new(Direction::ClientToServer, Mode::Noise);
    decoder.push(&[7u8; 64], Timestamp(0));
    decoder.push(&vec![0u8; MAX_WAITING], Timestamp(1));
    decoder.push(&[1], Timestamp(2));
    let events = drain(&mut decoder);
    assert!(matches!(events[0], StreamEvent::Act { act: 1, .. }));
    assert_eq!(
        events[1],
        StreamEvent::Error(StreamError::NoKeys(MAX_WAITING + 1))
    );
    let mut decoder = StreamDecoder::new(Direction::ClientToServer, Mode::Noise);
    decoder.push(&[7u8; 70], Timestamp(0));
    decoder.no_keys(Timestamp(1));
    assert_eq!(
        drain(&mut decoder)[1],
        StreamEvent::Error(StreamError::NoKeys(6))
    );

    // A short act stays partial (what a peer sent before it stopped).
    let mut decoder = StreamDecoder::new(Direction::ServerToClient, Mode::Noise);
    decoder.push(&[9u8; 170], Timestamp(0));
    assert!(decoder.in_handshake());
    assert_eq!(decoder.partial().len(), 170);

    // An SV1 line past the limit is skipped up to its newline, and reading goes on.
    let mut decoder = StreamDecoder::new(Direction::ServerToClient, Mode::Sv1);
    decoder.push(&vec![b'x'; MAX_LINE + 1], Timestamp(0));
    decoder.push(
        b"yyy\n{\"id\":1,\"result\":true,\"error\":null}\n",
        Timestamp(1),
    );
    let events = drain(&mut decoder);
    assert_eq!(events[0], StreamEvent::Error(StreamError::LineTooLong));
    assert!(matches!(&events[1], StreamEvent::Sv1Line(l) if l.starts_with(b"{")));
    assert_eq!(events.len(), 2);
}

#[test]
fn the_client_start_tells_sv1_plain_sv2_and_noise_apart() {
    assert_eq!(
        classify_client_start(b" {\"id\":1,\"method\":\"mining.subscribe\""),
        Some(Mode::Sv1)
    );
    let setup = frame(
        sv2_codec::messages::common::SetupConnection {
            protocol: 0,
            min_version: 2,
            max_version: 2,
            flags: 0,
            endpoint_host: Default::default(),
            endpoint_port: 0,
            vendor: Default::default(),
            hardware_version: Default::default(),
            firmware: Default::default(),
            device_id: Default::default(),
        }
        .into(),
    );
    assert_eq!(classify_client_start(&setup), Some(Mode::Sv2));
    assert_eq!(classify_client_start(&session().act1), Some(Mode::Noise));
    // A line shorter than a frame header (found by the capture fuzz target: it read past the end).
    assert_eq!(classify_client_start(b"\n"), Some(Mode::Noise));
    assert_eq!(classify_client_start(b"\0\0\n"), Some(Mode::Noise));
    assert_eq!(classify_client_start(b"{}\n"), Some(Mode::Sv1));
    // One act 1 in 256 starts with `{`, and whitespace then `{` happens too: still Noise.
    let mut act1 = session().act1;
    act1[0] = b'{';
    act1[1] = 0x9c;
    assert_eq!(classify_client_start(&act1), Some(Mode::Noise));
    act1[..2].copy_from_slice(b" {");
    act1[2] = 0x01;
    assert_eq!(classify_client_start(&act1), Some(Mode::Noise));
    // Too few bytes to tell, unless a short line has ended.
    assert_eq!(classify_client_start(b"\x00\x00"), None);
    assert_eq!(classify_client_start(b"{\"id\":1"), None);
    assert_eq!(classify_client_start(b"{}\n"), Some(Mode::Sv1));
}

#[test]
fn sides_name_directions() {
    assert_eq!(Side::Client.sending(), Direction::ClientToServer);
    assert_eq!(Side::Server.sending(), Direction::ServerToClient);
    assert_eq!(Side::Server.receiving(), Direction::ClientToServer);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any split of a Noise session's bytes gives the same events.
    #[test]
    fn any_split_gives_the_same_events(cuts in proptest::collection::vec(0usize..200_000, 0..12)) {
        let mut s = session();
        let mut up = s.act1.clone();
        for f in plain_frames() {
            s.client.0.encrypt_frame(&f, &mut up).unwrap();
        }
        let mut whole = StreamDecoder::new(Direction::ClientToServer, Mode::Noise);
        whole.push(&up, Timestamp(0));
        whole.set_decryptor(s.server.1.clone(), Timestamp(0));
        let expected = drain(&mut whole);
        let mut split = StreamDecoder::new(Direction::ClientToServer, Mode::Noise);
        let mut events = feed(&mut split, &up[..64], &[]);
        split.set_decryptor(s.server.1.clone(), Timestamp(0));
        events.extend(drain(&mut split));
        events.extend(feed(&mut split, &up[64..], &cuts));
        prop_assert_eq!(events, expected);
    }

    /// Random bytes in any mode never panic, and what is kept stays bounded by what arrived.
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096),
                                mode in prop_oneof![Just(Mode::Sv2), Just(Mode::Noise), Just(Mode::Sv1)],
                                cuts in proptest::collection::vec(0usize..4096, 0..8)) {
        for direction in [Direction::ClientToServer, Direction::ServerToClient] {
            let mut decoder = StreamDecoder::new(direction, mode);
            let events = feed(&mut decoder, &bytes, &cuts);
            prop_assert!(decoder.partial().len() <= bytes.len());
            let mut transcript = Transcript::default();
            for e in events {
                e.record(direction, Timestamp(0), &mut transcript);
            }
            let back = Transcript::from_json(&transcript.to_json()).unwrap();
            prop_assert_eq!(back, transcript);
        }
    }
}

#[test]
fn a_thousand_random_act_1s_are_all_noise() {
    // About 4 of them start with `{` (the byte a first-byte sniffer would take for SV1).
    for _ in 0..1000 {
        let mut initiator = Initiator::generate(InitiatorConfig::unauthenticated()).unwrap();
        let act1 = initiator.write_act1().unwrap();
        assert_eq!(
            classify_client_start(&act1),
            Some(Mode::Noise),
            "{}",
            hex::encode(&act1)
        );
    }
}
