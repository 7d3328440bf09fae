//! Replays the differential fuzz target's saved inputs on stable, through the very check the target
//! runs (`sv2_interop::differential`, `interop/src/differential.rs`):
//!
//! - `fuzz/regressions/differential/*`: inputs that once crashed the target (a panic in our codec or
//!   in the conversion of SRI's values); they must now classify without a panic.
//! - `fuzz/findings/sri/<class>-*.bin`: reproducers of findings about SRI (see the README there). Each
//!   must still fall in the class its name starts with; when SRI changes, this test says so.

use sv2_interop::differential;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn inputs(dir: &Path) -> Vec<PathBuf> {
    sv2_fuzz_checks::corpus::files(dir)
}

#[test]
fn differential_regression_inputs_classify_without_a_panic() {
    let mut failures = Vec::new();
    // Crash inputs of the differential target, and the codec corpus's frames at the edges (each
    // decode error kind; codec/tests/fuzz_regressions.rs).
    let mut paths = inputs(&fuzz_dir().join("regressions/differential"));
    paths.extend(inputs(&fuzz_dir().join("regressions/messages")));
    assert!(paths.len() >= 20, "only {} inputs", paths.len());
    for path in paths {
        let data = std::fs::read(&path).expect("readable input");
        if catch_unwind(AssertUnwindSafe(|| differential::classify(&data))).is_err() {
            failures.push(path.display().to_string());
        }
    }
    assert!(failures.is_empty(), "panics on:\n{}", failures.join("\n"));
}

#[test]
fn sri_findings_still_reproduce() {
    let mut failures = Vec::new();
    let paths = inputs(&fuzz_dir().join("findings/sri"));
    // A reproducer for every reviewed disagreement (`cargo run -p sv2-interop --example
    // sri_findings` writes them), each replayed below.
    let missing: Vec<&&str> = differential::REVIEWED
        .iter()
        .filter(|class| {
            !paths.iter().any(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.rsplit_once('-'))
                    .is_some_and(|(c, _)| c == **class)
            })
        })
        .collect();
    assert!(missing.is_empty(), "no reproducer of {missing:?}");
    let mut replayed = 0;
    for path in &paths {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let Some((class, _)) = name.rsplit_once('-') else {
            failures.push(format!("{name}: not named <class>-<hash>"));
            continue;
        };
        replayed += 1;
        let data = std::fs::read(path).expect("readable input");
        let got: Vec<String> = differential::classify(&data)
            .unwrap_or_default()
            .iter()
            .map(|c| c.name())
            .collect();
        if !got.iter().any(|c| c == class) {
            failures.push(format!("{name}: now {got:?}"));
        }
    }
    assert_eq!(replayed, paths.len(), "every reproducer replayed");
    assert!(
        failures.is_empty(),
        "findings changed:\n{}",
        failures.join("\n")
    );
}

#[test]
fn classes_of_known_differences() {
    use differential::Class;
    let classify = |data: &[u8]| differential::classify(data).map(|c| c[0].clone());
    // SubmitSharesStandard, then a stray byte: we refuse (trailing), SRI accepts (DIFFERENCES.md 1).
    let mut share = hex_frame("00801a180000010000000200000003000000040000000500000000000020");
    assert_eq!(classify(&share), Some(Class::BothAcceptEqual));
    share.push(0xff);
    assert_eq!(
        classify(&share).map(|c| c.name()).as_deref(),
        Some("ours_rejects_sri_accepts.Trailing")
    );
    // A frame of an unknown extension: we keep it raw, SRI refuses (row 6).
    let raw = hex_frame("bc4a01030000010203");
    assert_eq!(
        classify(&raw).map(|c| c.name()).as_deref(),
        Some("sri_rejects_ours_accepts.UnknownMessage.raw")
    );
    assert_eq!(classify(&[1, 2, 3]), None);
}

#[test]
fn a_disagreement_nobody_reviewed_fails_the_target() {
    use differential::{unexplained, Class};
    use sv2_interop::ErrorClass;
    // Each real disagreement fails the check; the reviewed ones and agreements do not.
    for class in [
        Class::BothAcceptValueDiffers,
        Class::BothAcceptSizeDiffers,
        Class::BothAcceptReencodeDiffers,
        Class::OursRejectsSriAccepts(ErrorClass::Truncated),
        Class::SriRejectsOursAccepts {
            sri: ErrorClass::Truncated,
            raw: false,
        },
    ] {
        let classes = [Class::BothAcceptEqual, class.clone()];
        assert_eq!(unexplained(&classes), Some(&class), "{}", class.name());
    }
    for class in [
        Class::BothAcceptEqual,
        Class::BothAcceptEqualSriIgnoresTlvs,
        Class::OursRejectsSriAccepts(ErrorClass::Trailing),
        Class::SriRejectsOursAccepts {
            sri: ErrorClass::UnknownMessage,
            raw: true,
        },
        Class::BothRejectSame(ErrorClass::Truncated),
        Class::BothRejectDifferent {
            ours: ErrorClass::ChannelBit,
            sri: ErrorClass::Truncated,
        },
        Class::SriPanic,
    ] {
        assert_eq!(
            unexplained(std::slice::from_ref(&class)),
            None,
            "{}",
            class.name()
        );
    }
    // Through the target's own entry point: a reviewed disagreement passes, as does an agreement.
    let mut share = hex_frame("00801a180000010000000200000003000000040000000500000000000020");
    assert!(differential::differential(&share).is_some());
    share.push(0xff);
    assert!(differential::differential(&share).is_some());
}

fn hex_frame(text: &str) -> Vec<u8> {
    hex::decode(text).expect("hex")
}
