//! The device suite against our own SV2 device: a correct client passes every check that applies
//! to it, in each configuration that makes a check apply.

mod common;

use common::device::run_device;
use sv2_conformance::runner::CheckResult;
use sv2_conformance::Verdict;
use sv2_mock::miner::ChannelKind;

fn show(results: &[CheckResult]) -> String {
    results
        .iter()
        .map(|r| {
            format!(
                "{:<40} {:<6} {}",
                r.check.id,
                r.outcome.verdict.as_str(),
                r.outcome.observed
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every check passes, but those in `skips`, which skip (each for the reason the configuration
/// gives: no other verdict, no other skip).
fn assert_passes(results: &[CheckResult], skips: &[&str]) {
    eprintln!("{}", show(results));
    assert!(results.len() >= 27, "{} results", results.len());
    for r in results {
        let expected = if skips.contains(&r.check.id) {
            Verdict::Skip
        } else {
            Verdict::Pass
        };
        assert_eq!(
            r.outcome.verdict, expected,
            "{}: {:?}",
            r.check.id, r.outcome
        );
    }
}

/// The default device: a standard channel, version rolling required.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standard_channel_device_passes() {
    let results = run_device(&[], |_| {}).await;
    assert_passes(
        &results,
        &[
            // No extranonce, no BOOL on a standard channel (its jobs carry the prefix).
            "device.shares.extranonce-size",
            "device.shares.extranonce-prefix",
            "device.robust.bool-high-bits",
            // REQUIRES_VERSION_ROLLING: a fixed-version pool refuses it.
            "device.shares.version-not-rolled",
        ],
    );
}

/// An extended channel that rolls the version where jobs allow it, without requiring it: the
/// checks the standard device skips apply.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extended_channel_device_passes() {
    let results = run_device(&[], |c| {
        c.device.channel = ChannelKind::Extended;
        c.device.setup_flags = Some(0);
    })
    .await;
    assert_passes(&results, &[]);
}
