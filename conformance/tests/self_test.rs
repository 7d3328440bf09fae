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

/// The checks the faithful mock pool skips, each for a feature it does not have. Any other skip,
/// and any of these passing or failing, is a difference to review (an empty report would not
/// pass: every check of the catalogue must be in it).
const REVIEWED_SKIPS: &[(&str, &str)] = &[
    ("ext.request-extensions-answered", "no extension 0x0001"),
    ("ext.unsupported-only-error", "no extension 0x0001"),
    ("ext.required-enforced", "no extension 0x0001"),
    ("ext.tlv-too-long-rejected", "no extension 0x0002"),
    (
        "mining.custom-job-standard",
        "no work selection (REQUIRES_WORK_SELECTION refused)",
    ),
    (
        "shares.version-fixed",
        "its jobs allow version rolling (passes on a fixed-version pool, below)",
    ),
    (
        "monitor.fixed-version",
        "no REQUIRES_FIXED_VERSION (passes on a fixed-version pool, below)",
    ),
    (
        "monitor.job-after-prev-hash",
        "it sends no job with min_ntime set to a channel",
    ),
    (
        "monitor.job-min-ntime",
        "it sends no job with min_ntime set to a channel",
    ),
    (
        "monitor.no-prefix-to-group",
        "it sends no SetExtranoncePrefix",
    ),
];

/// Every check of the catalogue ran; each passed but those in `skips`, which skipped.
fn assert_passes_but(report: &Report, skips: &[&str]) {
    let catalogue = sv2_conformance::checks::catalogue();
    assert_eq!(report.results.len(), catalogue.len(), "every check ran");
    let differences: Vec<String> = report
        .results
        .iter()
        .filter(|r| {
            let expected = if skips.contains(&r.check.id) {
                Verdict::Skip
            } else {
                Verdict::Pass
            };
            r.outcome.verdict != expected
        })
        .map(line)
        .collect();
    assert!(differences.is_empty(), "{differences:#?}");
}

/// A mock pool whose blocks are hard (difficulty 1, so a share is not also a block and the old
/// target can be told apart) and come every 4 s (checks that wait for new work see some).
async fn hard_block_pool(
    configure: impl FnOnce(&mut sv2_mock::pool::driver::PoolServerConfig),
) -> (sv2_mock::pool::driver::PoolHandle, sv2_conformance::Target) {
    mock_pool(|c| {
        if let sv2_mock::pool::TemplateSource::InProcess(tp) = &mut c.pool.template_source {
            tp.nbits = 0x1d00_ffff;
        }
        c.block_interval = Some(std::time::Duration::from_secs(4));
        configure(c);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mock_pool_passes_every_check_but_the_reviewed_skips() {
    let (_pool, target) = hard_block_pool(|_| {}).await;
    let report = run(target, &Selection::default(), |_| {}).await;
    println!("{}", sv2_conformance::report::text(&report, true));
    let skips: Vec<&str> = REVIEWED_SKIPS.iter().map(|(id, _)| *id).collect();
    assert_passes_but(&report, &skips);
}

/// REQUIRES_FIXED_VERSION: the two checks of fixed versions pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixed_version_mock_pool_passes_the_fixed_version_checks() {
    let (_pool, target) = hard_block_pool(|c| c.pool.fixed_version = true).await;
    let selection = Selection {
        only: vec![
            "shares.version-fixed".into(),
            "monitor.fixed-version".into(),
        ],
    };
    let report = run(target, &selection, |_| {}).await;
    assert_eq!(report.results.len(), 2);
    for r in &report.results {
        assert_eq!(r.outcome.verdict, Verdict::Pass, "{}", line(r));
    }
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
