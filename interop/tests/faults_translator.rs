//! Every translator check shown failing: translator_sv2 behind a relay that applies a client fault
//! scenario (scenarios/faults/clients/) between it and the suite, so that the suite sees a
//! translator broken in that one way, and the check must fail on it.

mod common;

use std::time::Duration;

use common::translator::launcher;
use sv2_conformance::runner::Progress;
use sv2_conformance::serve::{runner, Listener};
use sv2_conformance::{Role, Selection, Verdict};
use sv2_interop::peers::binary_or_skip;

async fn fails(check: &str, fault: &str) {
    let Some(binary) = binary_or_skip("translator_sv2", "faults_translator") else {
        return;
    };
    let mut listener = Listener::new(launcher(&binary, Some(fault))).unwrap();
    listener.timeout = Duration::from_secs(3);
    listener.connect_timeout = Duration::from_secs(30);
    listener.work_window = Duration::from_secs(8);
    let selection = Selection {
        only: vec![check.to_string()],
    };
    let report = runner::run(listener, Role::Translator, &selection, |_: Progress<'_>| {})
        .await
        .unwrap();
    let result = report
        .results
        .iter()
        .find(|r| r.check.id == check)
        .unwrap_or_else(|| panic!("{check} ran"));
    assert_eq!(
        result.outcome.verdict,
        Verdict::Fail,
        "{check} behind {fault}: {:?}",
        result.outcome
    );
    eprintln!("{check} behind {fault}: {}", result.outcome.observed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_early_open_request() {
    fails("translator.mining.idle-hashrate", "open-before-miners.toml").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_about_its_miners() {
    fails("translator.mining.miner-joins", "silent-about-miners.toml").await;
    fails("translator.mining.miner-leaves", "silent-about-miners.toml").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_extranonce() {
    fails("translator.sv1.extranonce", "short-extranonce-size.toml").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prev_hash_it_never_hears_of() {
    fails("translator.sv1.clean-jobs", "ignore-new-prev-hash.toml").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shares_lost() {
    fails("translator.shares.forwarded", "drop-later-shares.toml").await;
}
