//! Encode and decode of a realistic mix of mining-session messages, our codec next to SRI's.
//!
//! The mix (one of each, see `sv2_benches::MIX_NAMES`): SubmitSharesStandard,
//! SubmitSharesExtended (8-byte extranonce), NewExtendedMiningJob (12-deep merkle path, 60 + 121
//! byte coinbase parts), SetNewPrevHash (mining) and SetupConnection. Both codecs get the same
//! messages, and `assert_identical` checks (before anything is timed) that their frames are
//! byte-identical and that each decodes the other's frames.
//!
//! Benchmark ids (`<op>/<message or mix>/<variant>`; throughput is in messages):
//! * `encode/*/ours`: `encode_frame` into a reused, cleared `Vec`.
//! * `encode/*/sri`: `MessageFrame::from_message(msg, ..)` + `encode_into` a reused buffer, SRI's
//!   fastest path, on messages cloned before the timing (`iter_batched`): every SRI encode path
//!   consumes its message, and ours encodes by reference, so the clone (for the job, an allocation
//!   and a copy of the merkle path) is left out of both. The same work as `ours`: this is the ratio.
//! * `encode/*/sri_with_clone`: the same with the clone timed, what encoding a message one still
//!   holds costs with SRI's API.
//! * `encode/*/sri_encoder`: through a reused `codec_sv2::Encoder` (returns a new `Vec`), the clone
//!   left out as for `sri`.
//! * `decode/*/ours`: copy the frame into a scratch buffer, `Frame::parse`, `decode_frame`.
//! * `decode/*/sri`: copy the frame into a scratch buffer, `Header::from_bytes`,
//!   `AnyMessage::try_from((header, &mut payload))`, SRI's fastest path. SRI needs `&mut [u8]`,
//!   hence the scratch buffer; ours does the same copy so that both pay for it.
//! * `decode/mix/ours_nocopy`, `decode/mix/sri_nocopy`: the same without the copy (SRI only needs
//!   the `&mut`, it does not write; a receiver owns its read buffer anyway).
//! * `decode/*/sri_decoder`: through `codec_sv2::Decoder` (`writable` + `next_frame`), for reference;
//!   `decode/*/ours_decoder`: through our incremental `FrameDecoder`, which also copies the payload
//!   into a new `Vec` per frame.

use std::hint::black_box;

use codec_sv2::{EncodableFrame, MessageFrame};
use criterion::{
    criterion_group, criterion_main, BatchSize, BenchmarkGroup, Criterion, Throughput,
};
use framing_sv2::header::Header as SriHeader;
use parsers_sv2::AnyMessage;
use sv2_benches::{assert_identical, ours_frame, sri_identity, sri_mix, Fixtures, MIX_NAMES};
use sv2_codec::{decode_frame, encode_frame, Frame, FrameDecoder, Message};

type Group<'a> = BenchmarkGroup<'a, criterion::measurement::WallTime>;

/// One message of the benchmark, in both codecs, with its frame bytes.
struct Case<'f> {
    ours: &'f Message<'f>,
    sri: AnyMessage<'f>,
    sri_id: (u8, u16, bool),
    frame: Vec<u8>,
}

fn cases<'f>(ours: &'f [Message<'f>]) -> Vec<Case<'f>> {
    ours.iter()
        .zip(sri_mix(ours))
        .map(|(ours, sri)| Case {
            frame: ours_frame(ours),
            sri_id: sri_identity(&sri),
            ours,
            sri,
        })
        .collect()
}

fn bench_encode(g: &mut Group<'_>, cases: &[Case<'_>]) {
    let max = cases.iter().map(|c| c.frame.len()).max().unwrap_or(0);
    g.bench_function("ours", |b| {
        let mut buf = Vec::with_capacity(max);
        b.iter(|| {
            for c in cases {
                buf.clear();
                encode_frame(black_box(c.ours), &[], &mut buf).expect("encodable");
                black_box(&buf);
            }
        })
    });
    g.bench_function("sri", |b| {
        let mut buf = vec![0u8; max];
        b.iter_batched(
            || cases.iter().map(|c| c.sri.clone()).collect::<Vec<_>>(),
            |messages| {
                for (c, message) in cases.iter().zip(messages) {
                    let (t, e, ch) = c.sri_id;
                    let frame = MessageFrame::from_message(black_box(message), t, e, ch)
                        .expect("fits a frame");
                    // encode_into wants a slice of exactly the frame's length.
                    let len = frame.encoded_length();
                    frame.encode_into(&mut buf[..len]).expect("encodable");
                    black_box(&buf[..len]);
                }
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("sri_with_clone", |b| {
        let mut buf = vec![0u8; max];
        b.iter(|| {
            for c in cases {
                let (t, e, ch) = c.sri_id;
                let frame = MessageFrame::from_message(black_box(&c.sri).clone(), t, e, ch)
                    .expect("fits a frame");
                let len = frame.encoded_length();
                frame.encode_into(&mut buf[..len]).expect("encodable");
                black_box(&buf[..len]);
            }
        })
    });
    g.bench_function("sri_encoder", |b| {
        let mut encoder = codec_sv2::Encoder::new();
        b.iter_batched(
            || cases.iter().map(|c| c.sri.clone()).collect::<Vec<_>>(),
            |messages| {
                for (c, message) in cases.iter().zip(messages) {
                    let (t, e, ch) = c.sri_id;
                    let frame = MessageFrame::from_message(black_box(message), t, e, ch)
                        .expect("fits a frame");
                    black_box(encoder.encode(frame).expect("encodable"));
                }
            },
            BatchSize::SmallInput,
        )
    });
}

fn bench_decode(g: &mut Group<'_>, cases: &[Case<'_>], nocopy: bool) {
    let max = cases.iter().map(|c| c.frame.len()).max().unwrap_or(0);
    g.bench_function("ours", |b| {
        let mut scratch = vec![0u8; max];
        b.iter(|| {
            for c in cases {
                let n = c.frame.len();
                scratch[..n].copy_from_slice(black_box(&c.frame));
                let (frame, _) = Frame::parse(&scratch[..n]).expect("whole frame");
                black_box(decode_frame(&frame).expect("valid"));
            }
        })
    });
    g.bench_function("sri", |b| {
        let mut scratch = vec![0u8; max];
        b.iter(|| {
            for c in cases {
                let n = c.frame.len();
                scratch[..n].copy_from_slice(black_box(&c.frame));
                let header = SriHeader::from_bytes(&scratch[..n]).expect("header");
                black_box(AnyMessage::try_from((header, &mut scratch[6..n])).expect("valid"));
            }
        })
    });
    if nocopy {
        g.bench_function("ours_nocopy", |b| {
            b.iter(|| {
                for c in cases {
                    let (frame, _) = Frame::parse(black_box(&c.frame)).expect("whole frame");
                    black_box(decode_frame(&frame).expect("valid"));
                }
            })
        });
        g.bench_function("sri_nocopy", |b| {
            // Filled once: SRI's decode takes `&mut` but leaves the bytes as they are (checked below).
            let mut frames: Vec<Vec<u8>> = cases.iter().map(|c| c.frame.clone()).collect();
            b.iter(|| {
                for f in frames.iter_mut() {
                    let f = black_box(f);
                    let header = SriHeader::from_bytes(f).expect("header");
                    black_box(AnyMessage::try_from((header, &mut f[6..])).expect("valid"));
                }
            });
            for (f, c) in frames.iter().zip(cases) {
                assert_eq!(f, &c.frame, "SRI's decode wrote into its input");
            }
        });
    }
    g.bench_function("sri_decoder", |b| {
        let mut decoder = codec_sv2::Decoder::new();
        b.iter(|| {
            for c in cases {
                let bytes = black_box(&c.frame[..]);
                let mut off = 0;
                loop {
                    let w = decoder.writable();
                    let k = w.len();
                    w.copy_from_slice(&bytes[off..off + k]);
                    off += k;
                    match decoder.next_frame().expect("valid frame") {
                        codec_sv2::Decoded::Frame(mut f) => {
                            let header = f.header();
                            black_box(AnyMessage::try_from((header, f.payload())).expect("valid"));
                            break;
                        }
                        codec_sv2::Decoded::Incomplete(_) => {}
                    }
                }
            }
        })
    });
    g.bench_function("ours_decoder", |b| {
        let mut decoder = FrameDecoder::default();
        b.iter(|| {
            for c in cases {
                let (used, frame) = decoder.push(black_box(&c.frame)).expect("valid frame");
                debug_assert_eq!(used, c.frame.len());
                let frame = frame.expect("whole frame");
                black_box(decode_frame(&frame.as_frame()).expect("valid"));
            }
        })
    });
}

fn codec(c: &mut Criterion) {
    let fx = Fixtures::new();
    assert_identical(&fx);
    let ours = fx.ours();
    let all = cases(&ours);

    for op in ["encode", "decode"] {
        let mut g = c.benchmark_group(format!("{op}/mix"));
        g.throughput(Throughput::Elements(all.len() as u64));
        match op {
            "encode" => bench_encode(&mut g, &all),
            _ => bench_decode(&mut g, &all, true),
        }
        g.finish();

        for (name, case) in MIX_NAMES.iter().zip(all.chunks(1)) {
            let mut g = c.benchmark_group(format!("{op}/{name}"));
            g.throughput(Throughput::Elements(1));
            match op {
                "encode" => bench_encode(&mut g, case),
                _ => bench_decode(&mut g, case, false),
            }
            g.finish();
        }
    }
}

criterion_group!(benches, codec);
criterion_main!(benches);
