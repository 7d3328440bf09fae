//! The Noise secure channel, ours next to SRI's (noise_sv2 2.0.0, codec_sv2 7.0.0), in the same run.
//!
//! Benchmark ids:
//! * `noise_handshake/ours`, `noise_handshake/sri`: one whole NX handshake, both sides in this thread:
//!   a fresh initiator and responder, act 1, act 2 (the responder signs a fresh certificate, as SRI's
//!   does in `step_1`), the initiator's certificate check. Throughput is in handshakes.
//! * `noise_transport/<payload>/ours|sri`: one frame of `payload` bytes encrypted by one side and
//!   decrypted by the other (a round trip through both directions' ciphers), payloads 64 B, 1 KiB and
//!   64 KiB. Throughput is in payload bytes. Both sides get the same input: an owned plain frame
//!   (`Vec<u8>`, built outside the timed part by `iter_batched`) that the timed part consumes and
//!   frees. Ours: `Encryptor::encrypt_frame` into a reused `Vec` and `Decryptor::push`. SRI:
//!   `NoiseEncoder::encode_transport` (which takes the frame by value) and `NoiseDecoder` fed window by
//!   window, as a socket would. Each side checks the plaintext length it got back.
//!
//! Before timing, both sides check that their ciphertexts for the same keys and frame are identical.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use sv2_codec::noise::keys::SecretKey;
use sv2_codec::noise::{
    Decryptor, Encryptor, Initiator, InitiatorConfig, Responder, ResponderConfig,
};
use sv2_interop::noise::{test_authority, SriInitiator, SriResponder, SriTransport};

const NOW: u32 = 1_800_000_000;

fn now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(NOW)
}

/// A plain frame of `len` payload bytes (extension 0, message type 0x77: not decoded, only carried).
fn plain_frame(len: usize) -> Vec<u8> {
    let mut frame = vec![0x00, 0x00, 0x77];
    frame.extend_from_slice(&(len as u32).to_le_bytes()[..3]);
    frame.extend((0..len).map(|i| i as u8));
    frame
}

fn ours_handshake(authority: &sv2_codec::noise::keys::Keypair, server: &SecretKey, now: u32) {
    let config = ResponderConfig::issue(server, authority, now - 10, now + 3600);
    let mut responder = Responder::generate(config).unwrap();
    let mut initiator = Initiator::generate(InitiatorConfig::new(authority.public)).unwrap();
    let act1 = initiator.write_act1().unwrap();
    let (act2, server_side) = responder.read_act1(&act1).unwrap();
    let client_side = initiator.read_act2(&act2, self::now()).unwrap();
    black_box((server_side, client_side));
}

fn sri_handshake(authority: &sv2_codec::noise::keys::Keypair) {
    let responder = SriResponder::new(authority, Duration::from_secs(3600)).unwrap();
    let (initiator, act1) = SriInitiator::start(authority.public.xonly()).unwrap();
    let (act2, server_side) = responder.respond(&act1).unwrap();
    let client_side = initiator.finish(&act2, self::now()).unwrap();
    black_box((server_side, client_side));
}

fn handshakes(c: &mut Criterion) {
    let authority = test_authority();
    let server = SecretKey::from_bytes([0x42; 32]).unwrap();
    // The initiators read the clock when act 2 has arrived, as a real client does: SRI's responder dates
    // its certificate from the system clock when it writes act 2, and this machine's wall clock has been
    // seen to step forward by about 11 s at once, more than the 10 s skew an initiator allows.
    let mut g = c.benchmark_group("noise_handshake");
    g.throughput(Throughput::Elements(1));
    g.bench_function("ours", |b| {
        b.iter(|| ours_handshake(&authority, &server, now()))
    });
    g.bench_function("sri", |b| b.iter(|| sri_handshake(&authority)));
    g.finish();
}

/// Our two directions and SRI's, keyed alike: SRI's initiator against SRI's responder, ours against
/// ours; then a check that both produce the same ciphertext for the same keys.
struct Pairs {
    ours: (Encryptor, Decryptor),
    sri: (SriTransport, SriTransport),
}

fn pairs() -> Pairs {
    let authority = test_authority();
    let t = now();
    let server = SecretKey::from_bytes([0x42; 32]).unwrap();
    let mut responder = Responder::generate(ResponderConfig::issue(
        &server,
        &authority,
        t - 10,
        t + 3600,
    ))
    .unwrap();
    let mut initiator = Initiator::generate(InitiatorConfig::new(authority.public)).unwrap();
    let act1 = initiator.write_act1().unwrap();
    let (act2, server_side) = responder.read_act1(&act1).unwrap();
    let client_side = initiator.read_act2(&act2, t).unwrap();
    let (client_enc, _) = client_side.transport.split();
    let (_, server_dec) = server_side.transport.split();

    // Identity check: SRI's initiator with OUR responder, so both encrypt under the same key.
    let mut responder = Responder::generate(ResponderConfig::issue(
        &server,
        &authority,
        t - 10,
        t + 3600,
    ))
    .unwrap();
    let (sri_initiator, act1) = SriInitiator::start(authority.public.xonly()).unwrap();
    let (act2, ours_server) = responder.read_act1(&act1).unwrap();
    let mut sri_client = sri_initiator.finish(&act2, t).unwrap();
    let mut check_enc = Encryptor::from_key(ours_server.traffic_keys.c1);
    for len in [0, 64, 1024, 65536, 200_000] {
        let frame = plain_frame(len);
        let theirs = sri_client
            .encrypt_with(frame.clone(), |w| w.to_vec())
            .unwrap();
        let mut mine = Vec::new();
        check_enc.encrypt_frame(&frame, &mut mine).unwrap();
        assert_eq!(theirs, mine, "ciphertexts differ at payload {len}");
    }

    let sri_responder = SriResponder::new(&authority, Duration::from_secs(3600)).unwrap();
    let (sri_initiator, act1) = SriInitiator::start(authority.public.xonly()).unwrap();
    let (act2, sri_server) = sri_responder.respond(&act1).unwrap();
    let sri_client = sri_initiator.finish(&act2, t).unwrap();
    Pairs {
        ours: (client_enc, server_dec),
        sri: (sri_client, sri_server),
    }
}

fn transport(c: &mut Criterion) {
    let Pairs {
        ours: (mut enc, mut dec),
        sri: (mut sri_client, mut sri_server),
    } = pairs();
    for (name, len) in [("64B", 64usize), ("1KiB", 1024), ("64KiB", 65536)] {
        let frame = plain_frame(len);
        let mut g = c.benchmark_group(format!("noise_transport/{name}"));
        g.throughput(Throughput::Bytes(len as u64));
        let mut wire = Vec::with_capacity(frame.len() + 64);
        g.bench_function("ours", |b| {
            b.iter_batched(
                || frame.clone(),
                |owned| {
                    wire.clear();
                    enc.encrypt_frame(black_box(&owned), &mut wire).unwrap();
                    drop(owned);
                    let mut input = &wire[..];
                    let mut got = 0;
                    while !input.is_empty() {
                        let (used, plain) = dec.push(input).unwrap();
                        got += plain.map_or(0, <[u8]>::len);
                        input = &input[used..];
                    }
                    assert_eq!(got, frame.len());
                },
                BatchSize::SmallInput,
            )
        });
        g.bench_function("sri", |b| {
            b.iter_batched(
                || frame.clone(),
                |owned| {
                    let (frames, got) = sri_client
                        .encrypt_with(black_box(owned), |w| sri_server.decrypt_whole(w))
                        .unwrap()
                        .unwrap();
                    assert_eq!((frames, got), (1, frame.len()));
                },
                BatchSize::SmallInput,
            )
        });
        g.finish();
    }
}

criterion_group!(benches, handshakes, transport);
criterion_main!(benches);
