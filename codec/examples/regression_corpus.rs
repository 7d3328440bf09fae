//! Writes the committed regression corpus of the codec fuzz targets, `fuzz/regressions/<target>/`:
//!
//! ```text
//! cargo run -p sv2-codec --example regression_corpus -- [VECTORS_DIR [REGRESSIONS_DIR]]
//! ```
//!
//! Inputs at the edges the targets' checks must hold on, chosen from the test vectors' frames (every
//! strictness rule and every message at its limits): for `messages`, the smallest frames of each
//! class (a frame that decodes, and each kind of decode error; the file is named
//! `<class>-<hash>`, which `codec/tests/fuzz_regressions.rs` checks), and for the other targets
//! their seed forms of those frames, whole and cut in half (a truncated act, frame or capture).
//! Minimised crashes from campaigns (`scripts/fuzz.sh campaign`) land in the same folders. Files
//! are named by content, so a rerun adds nothing twice; nothing is deleted.

use sv2_fuzz_checks as checks;

use std::collections::BTreeMap;
use std::path::PathBuf;

use checks::corpus::{message_class, vector_frames, write, MESSAGE_CLASSES};

/// Inputs of `messages` kept per class.
const PER_CLASS: usize = 3;
/// Seed inputs kept per other target, each also cut in half.
const PER_TARGET: usize = 6;
/// Inputs longer than this are left out.
const MAX_INPUT: usize = 4096;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let vectors = PathBuf::from(args.next().unwrap_or_else(|| "vectors/data".into()));
    let out = PathBuf::from(args.next().unwrap_or_else(|| "fuzz/regressions".into()));

    let mut frames = vector_frames(&vectors);
    frames.retain(|f| f.len() <= MAX_INPUT);
    frames.sort_by_key(|f| (f.len(), f.clone()));
    frames.dedup();
    let mut by_class: BTreeMap<&str, Vec<Vec<u8>>> = BTreeMap::new();
    for frame in &frames {
        if let Some(class) = message_class(frame) {
            let kept = by_class.entry(class).or_default();
            if kept.len() < PER_CLASS {
                kept.push(frame.clone());
            }
        }
    }
    let missing: Vec<&&str> = MESSAGE_CLASSES
        .iter()
        .filter(|c| !by_class.contains_key(**c))
        .collect();
    if !missing.is_empty() {
        eprintln!("regression_corpus: no vector frame of class {missing:?}");
    }
    let mut written = 0;
    for (class, kept) in &by_class {
        for frame in kept {
            written += usize::from(write(&out.join("messages"), class, frame)?);
        }
    }
    let chosen: Vec<Vec<u8>> = by_class.values().flatten().cloned().collect();
    for (target, _) in checks::TARGETS {
        if *target == "messages" {
            continue;
        }
        let dir = out.join(target);
        for seed in checks::seeds(target, &chosen, MAX_INPUT)
            .iter()
            .take(PER_TARGET)
        {
            written += usize::from(write(&dir, "seed", seed)?);
            written += usize::from(write(&dir, "truncated", &seed[..seed.len() / 2])?);
        }
    }
    eprintln!(
        "regression_corpus: {written} new inputs in {}",
        out.display()
    );
    Ok(())
}
