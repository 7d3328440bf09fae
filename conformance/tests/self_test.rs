//! The suite against our own mock pool: every MUST passes on the faithful pool, and each faulty mode
//! makes the check that names its fault fail.

mod common;

use common::{line, mock_pool};
use sv2_conformance::{run, Report, Security, Selection, Verdict};

/// Every check passed or skipped.
fn assert_no_fail_or_error(report: &Report) {
    let bad: Vec<String> = report
        .results
        .iter()
        .filter(|r| matches!(r.outcome.verdict, Verdict::Fail | Verdict::Error))
        .map(line)
        .collect();
    assert!(bad.is_empty(), "{bad:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mock_pool_passes_every_must() {
    let (_pool, target) = mock_pool(|_| {}).await;
    let report = run(target, &Selection::default(), |_| {}).await;
    println!("{}", sv2_conformance::report::text(&report, true));
    assert_no_fail_or_error(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plaintext_mock_pool_passes_every_must_and_skips_noise() {
    let (_pool, mut target) = mock_pool(|c| c.noise = None).await;
    target.security = Security::Plaintext;
    let report = run(target, &Selection::default(), |_| {}).await;
    assert_no_fail_or_error(&report);
    // The checks that need Noise say so; the large frame is checked in plain frames too.
    for r in report
        .results
        .iter()
        .filter(|r| r.check.id.starts_with("noise."))
    {
        let expected = if r.check.id == "noise.chunked-frame" {
            Verdict::Pass
        } else {
            Verdict::Skip
        };
        assert_eq!(
            r.outcome.verdict, expected,
            "{}: {}",
            r.check.id, r.outcome.observed
        );
    }
}
