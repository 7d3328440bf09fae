//! Writes the seed corpora of the fuzz targets (`fuzz/`), one directory per target:
//!
//! ```text
//! cargo run -p sv2-codec --example fuzz_seeds -- [CORPUS_DIR [VECTORS_DIR [REGRESSIONS_DIR]]]
//! ```
//!
//! Defaults: `fuzz/corpus`, `vectors/data`, `fuzz/regressions` (run from the repository root).
//! Frames come from the test vectors (every `"frame": "<hex>"` in `VECTORS_DIR/*.json`, if any) and
//! from messages of every type generated deterministically from our `arbitrary` implementations; the
//! per-target seed formats are in the `sv2-fuzz-checks` crate (`fuzz-checks/src/lib.rs`, one implementation). Saved
//! regression inputs are copied in too. File names are content hashes, so reruns add nothing twice.

use sv2_fuzz_checks as checks;

use std::path::PathBuf;

use arbitrary::{Arbitrary, Unstructured};
use sv2_codec::messages::{to_frame_bytes, Message};
use sv2_codec::Tlv;

/// Seeds longer than this are left out (libFuzzer runs with -max_len 8192 or so).
const MAX_SEED: usize = 8192;

/// Frames of arbitrary messages from a fixed pseudo-random stream (xorshift64*).
fn generated_frames(count: usize) -> Vec<Vec<u8>> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let mut out = Vec::new();
    for i in 0..count {
        // Short byte pools keep the variable-length fields small.
        let len = 16 + (i % 8) * 24;
        let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let mut u = Unstructured::new(&bytes);
        let Ok(message) = Message::arbitrary(&mut u) else {
            continue;
        };
        let mut tlvs = Vec::new();
        if let Message::SubmitSharesExtended(_) = message {
            tlvs.push(Tlv::user_identity("worker.01").expect("short identity"));
        }
        if i % 5 == 0 {
            tlvs.push(Tlv {
                extension_type: 0x4001,
                field_type: 7,
                value: sv2_codec::types::Bytes::new(std::borrow::Cow::Borrowed(&b"ext"[..]))
                    .expect("short value"),
            });
        }
        if let Ok(frame) = to_frame_bytes(&message, &tlvs) {
            out.push(frame);
        }
    }
    out
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let corpus = PathBuf::from(args.next().unwrap_or_else(|| "fuzz/corpus".into()));
    let vectors = PathBuf::from(args.next().unwrap_or_else(|| "vectors/data".into()));
    let regressions = PathBuf::from(args.next().unwrap_or_else(|| "fuzz/regressions".into()));

    let from_vectors = checks::corpus::vector_frames(&vectors);
    let mut frames = from_vectors.clone();
    frames.extend(generated_frames(600));
    frames.sort();
    frames.dedup();
    eprintln!(
        "fuzz_seeds: {} frames ({} from {})",
        frames.len(),
        from_vectors.len(),
        vectors.display()
    );

    let mut targets: Vec<(&str, Vec<Vec<u8>>)> = checks::TARGETS
        .iter()
        .map(|(name, _)| (*name, checks::seeds(name, &frames, MAX_SEED)))
        .collect();
    targets.push((
        "differential",
        frames
            .iter()
            .filter(|f| f.len() <= MAX_SEED)
            .cloned()
            .collect(),
    ));

    for (name, seeds) in targets {
        let dir = corpus.join(name);
        std::fs::create_dir_all(&dir)?;
        let mut written = 0;
        for seed in &seeds {
            written += usize::from(checks::corpus::write(&dir, "seed", seed)?);
        }
        if let Ok(entries) = std::fs::read_dir(regressions.join(name)) {
            for entry in entries.flatten() {
                if entry.path().is_file() {
                    written += usize::from(checks::corpus::write(
                        &dir,
                        "seed",
                        &std::fs::read(entry.path())?,
                    )?);
                }
            }
        }
        eprintln!(
            "fuzz_seeds: {name}: {written} new seeds in {}",
            dir.display()
        );
    }
    Ok(())
}
