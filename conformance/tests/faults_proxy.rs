//! Each proxy check fails against our mock proxy broken in the one way it is about (a
//! `ProxyFaults` mode), and passes on the same proxy without the fault (`proxy_self_test.rs`).

mod common;

use common::proxy::run_proxy;
use sv2_conformance::Verdict;
use sv2_mock::proxy::ProxyFaults;

/// Runs `check` against the proxy with `faults` and asserts it fails.
async fn fails(check: &str, faults: ProxyFaults) {
    let results = run_proxy(&[check], faults).await;
    let result = results
        .iter()
        .find(|r| r.check.id == check)
        .unwrap_or_else(|| panic!("{check} ran"));
    assert_eq!(
        result.outcome.verdict,
        Verdict::Fail,
        "{check}: {:?}",
        result.outcome
    );
    eprintln!("{check}: {}", result.outcome.observed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hash_rate_announced_with_no_device() {
    fails(
        "proxy.mining.idle-hashrate",
        ProxyFaults {
            idle_hashrate: true,
            ..ProxyFaults::default()
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_update_channel_as_devices_come_and_go() {
    let faults = ProxyFaults {
        no_update_channel: true,
        ..ProxyFaults::default()
    };
    fails("proxy.mining.device-joins", faults.clone()).await;
    fails("proxy.mining.device-leaves", faults).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_extranonce_prefix_for_every_device() {
    fails(
        "proxy.extranonce.unique",
        ProxyFaults {
            shared_extranonce: true,
            ..ProxyFaults::default()
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_jobs_with_the_wrong_merkle_root() {
    fails(
        "proxy.jobs.standard",
        ProxyFaults {
            wrong_merkle_root: true,
            ..ProxyFaults::default()
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_passed_down() {
    fails(
        "proxy.reconnect.not-propagated",
        ProxyFaults {
            propagate_reconnect: true,
            ..ProxyFaults::default()
        },
    )
    .await;
}
