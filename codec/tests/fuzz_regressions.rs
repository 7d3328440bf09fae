//! Replays the fuzz targets' saved inputs on stable, through the very checks the fuzz targets run
//! (the `sv2-fuzz-checks` crate, `fuzz-checks/src/lib.rs`): every file in `fuzz/regressions/<target>/` for the codec
//! targets (frame_splits, messages, noise_responder, noise_initiator, transport). `scripts/fuzz.sh`
//! puts minimized crash inputs there; each was a bug, fixed since.
//!
//! The checks also run on the targets' seed inputs, built from generated messages of every type, so
//! that a broken check (or a broken seed format) shows up here and not first in a fuzzing run.

use sv2_fuzz_checks as checks;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use arbitrary::{Arbitrary, Unstructured};
use sv2_codec::messages::{to_frame_bytes, Message, MESSAGE_TYPES};

fn regressions_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions")
}

/// Runs `check` on `data`; the panic message on failure.
fn run(check: fn(&[u8]), data: &[u8]) -> Result<(), String> {
    catch_unwind(AssertUnwindSafe(|| check(data))).map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default()
    })
}

/// The files of `fuzz/regressions/<target>/`, sorted.
fn inputs(target: &str) -> Vec<PathBuf> {
    checks::corpus::files(&regressions_dir().join(target))
}

/// Every committed input of every codec target replays through its target's check: each target has
/// some (the corpus of `cargo run -p sv2-codec --example regression_corpus`, plus minimised crashes),
/// and every one of them was replayed.
#[test]
fn saved_regression_inputs_pass_their_checks() {
    let mut failures = Vec::new();
    let mut replayed = 0;
    let mut files = 0;
    for (target, check) in checks::TARGETS {
        let paths = inputs(target);
        assert!(
            paths.len() >= 4,
            "fuzz/regressions/{target}/ holds {} inputs; the committed corpus has at least 4 per target",
            paths.len()
        );
        files += paths.len();
        for path in paths {
            let data = std::fs::read(&path).expect("readable regression input");
            replayed += 1;
            if let Err(why) = run(*check, &data) {
                failures.push(format!("{}: {why}", path.display()));
            }
        }
    }
    assert_eq!(replayed, files, "every input was replayed");
    assert!(replayed >= 60, "only {replayed} regression inputs");
    eprintln!("replayed {replayed} regression inputs");
    assert!(
        failures.is_empty(),
        "{} of {replayed} regression inputs fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The `messages` corpus holds each class of frame (one that decodes, each kind of decode error),
/// and each file is what its name says.
#[test]
fn the_messages_corpus_covers_every_decode_error_kind() {
    use checks::corpus::{message_class, MESSAGE_CLASSES};
    let mut seen = std::collections::BTreeSet::new();
    for path in inputs("messages") {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let data = std::fs::read(&path).expect("readable input");
        let class = message_class(&data).unwrap_or("not-a-frame");
        if let Some((named, _hash)) = name.rsplit_once('-') {
            if MESSAGE_CLASSES.contains(&named) {
                assert_eq!(class, named, "{name}");
            }
        }
        seen.insert(class);
    }
    let missing: Vec<&&str> = MESSAGE_CLASSES
        .iter()
        .filter(|c| !seen.contains(**c))
        .collect();
    assert!(
        missing.is_empty(),
        "no committed input of class {missing:?}"
    );
}

/// One frame of each message type, from a fixed byte pool.
fn sample_frames() -> Vec<Vec<u8>> {
    let pool: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut frames = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for start in 0..pool.len() - 256 {
        let mut u = Unstructured::new(&pool[start..start + 256]);
        let Ok(message) = Message::arbitrary(&mut u) else {
            continue;
        };
        if seen.insert(message.id()) {
            frames.push(to_frame_bytes(&message, &[]).expect("encodes"));
        }
    }
    frames
}

#[test]
fn checks_hold_on_the_seed_inputs() {
    let frames = sample_frames();
    // Every message type the codec knows is among them (Raw frames of unknown types too).
    let missing: Vec<&str> = MESSAGE_TYPES
        .iter()
        .filter(|m| {
            !frames.iter().any(|f| {
                u16::from_le_bytes([f[0], f[1]]) & 0x7fff == m.extension_type && f[2] == m.msg_type
            })
        })
        .map(|m| m.name)
        .collect();
    assert!(missing.is_empty(), "never sampled: {missing:?}");
    for (target, check) in checks::TARGETS {
        let seeds = checks::seeds(target, &frames, 1 << 20);
        assert!(!seeds.is_empty(), "{target}: no seeds");
        eprintln!("{target}: {} seeds", seeds.len());
        for seed in &seeds {
            if let Err(why) = run(*check, seed) {
                panic!("{target} fails on a seed ({} bytes): {why}", seed.len());
            }
        }
    }
}
