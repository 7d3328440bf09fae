//! The suite against our own mock pool: every MUST passes on the faithful pool, and each faulty mode
//! makes the check that names its fault fail.

mod common;

use common::{line, mock_pool};
use std::time::Duration;

use sv2_conformance::{run, Report, Security, Selection, Verdict};
use sv2_mock::pool::driver::PoolServerConfig;
use sv2_mock::pool::ExtensionSupport;

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

/// The mock pool's optional features, each with the checks that need it: they skip on the default
/// pool (which lacks it), and must pass on a pool that has it. Every other check must pass on the
/// default pool; an empty or short report fails too (every check of the catalogue must be in it).
#[allow(clippy::type_complexity)]
const FEATURES: &[(&str, fn(&mut PoolServerConfig), &[&str])] = &[
    (
        "extensions 0x0001 and 0x0002, 0x0002 required",
        |c| {
            c.pool.extensions = Some(ExtensionSupport {
                supported: vec![0x0002],
                required: vec![0x0002],
            })
        },
        &[
            "ext.request-extensions-answered",
            "ext.unsupported-only-error",
            "ext.required-enforced",
            "ext.tlv-too-long-rejected",
        ],
    ),
    (
        "work selection (REQUIRES_WORK_SELECTION)",
        |c| c.pool.work_selection = true,
        &["mining.custom-job-standard"],
    ),
    (
        "a fixed version (REQUIRES_FIXED_VERSION)",
        |c| c.pool.fixed_version = true,
        &["shares.version-fixed", "monitor.fixed-version"],
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
/// target can be told apart) and come every 4 s (checks that wait for new work see some), with new
/// templates on the same prev hash (jobs with min_ntime set) and new extranonce prefixes for every
/// channel as a busy pool would send them.
async fn hard_block_pool(
    configure: impl FnOnce(&mut PoolServerConfig),
) -> (sv2_mock::pool::driver::PoolHandle, sv2_conformance::Target) {
    mock_pool(|c| {
        if let sv2_mock::pool::TemplateSource::InProcess(tp) = &mut c.pool.template_source {
            tp.nbits = 0x1d00_ffff;
        }
        c.block_interval = Some(Duration::from_secs(4));
        c.template_interval = Some(Duration::from_millis(1500));
        c.pool.extranonce_prefix_every_secs = Some(3);
        configure(c);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mock_pool_passes_every_check_but_those_of_features_it_lacks() {
    let (_pool, target) = hard_block_pool(|_| {}).await;
    let report = run(target, &Selection::default(), |_| {}).await;
    println!("{}", sv2_conformance::report::text(&report, true));
    let skips: Vec<&str> = FEATURES
        .iter()
        .flat_map(|(_, _, ids)| ids.iter().copied())
        .collect();
    assert_passes_but(&report, &skips);
}

/// Each feature's checks pass on a pool that has it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mock_pool_with_each_feature_passes_its_checks() {
    for (feature, configure, ids) in FEATURES {
        let (_pool, target) = hard_block_pool(configure).await;
        let selection = Selection {
            only: ids.iter().map(|id| id.to_string()).collect(),
        };
        let report = run(target, &selection, |_| {}).await;
        assert_eq!(report.results.len(), ids.len(), "{feature}");
        for r in &report.results {
            assert_eq!(r.outcome.verdict, Verdict::Pass, "{feature}: {}", line(r));
        }
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
