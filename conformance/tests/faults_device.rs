//! Every device check shown failing: our device made faulty in the way the check is about (a fault
//! scenario from scenarios/faults/clients/ on a relay in front of it, no certificate check, a run
//! that ends as a crash, or a client that never checks a MAC), and the check must fail on it.

mod common;

use common::device::{
    crashing_device_launcher, device_behind, device_launcher, mac_deaf_launcher, run_with,
    short_act2_launcher,
};
use sv2_conformance::serve::launch::Launcher;
use sv2_conformance::Verdict;
use sv2_mock::miner::driver::Security;
use sv2_mock::miner::ChannelKind;

/// Runs `check` against the client `launcher` starts and asserts it fails.
async fn fails(check: &str, launcher: Launcher) {
    let results = run_with(&[check], launcher).await;
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

fn extended(c: &mut sv2_mock::miner::driver::DeviceDriverConfig) {
    c.device.channel = ChannelKind::Extended;
}

/// A device that accepts any certificate: no authority key to check it against.
fn trusting() -> Launcher {
    device_launcher(|c| c.security = Security::Noise { authority: None })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_not_checked() {
    fails("device.noise.wrong-authority", trusting()).await;
    fails("device.noise.expired", trusting()).await;
    fails("device.noise.not-yet-valid", trusting()).await;
    fails("device.reconnect.wrong-authority", trusting()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn macs_not_checked() {
    fails("device.noise.act2-mac", mac_deaf_launcher()).await;
    fails("device.noise.frame-mac", mac_deaf_launcher()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_act2_taken_whole() {
    fails("device.noise.act2-length", short_act2_launcher()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_error_prefix_and_undefined_message_faults() {
    fails(
        "device.setup.error",
        device_behind("setup-error-ignored.toml", |_| {}),
    )
    .await;
    fails(
        "device.shares.extranonce-prefix",
        device_behind("ignore-extranonce-prefix.toml", extended),
    )
    .await;
    fails(
        "device.robust.unknown-message",
        device_behind("close-on-undefined-message.toml", |_| {}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_and_work_faults() {
    fails(
        "device.setup.versions",
        device_behind("setup-version-3.toml", |_| {}),
    )
    .await;
    fails(
        "device.mining.waits-for-work",
        device_behind("share-before-work.toml", |_| {}),
    )
    .await;
    fails(
        "device.shares.accepted",
        device_behind("shares-unknown-job.toml", |_| {}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_faults() {
    fails(
        "device.shares.extranonce-size",
        device_behind("extranonce-short.toml", extended),
    )
    .await;
    fails(
        "device.shares.version-not-rolled",
        device_behind("version-rolled.toml", |c| c.device.version_rolling = false),
    )
    .await;
    fails(
        "device.shares.set-target",
        device_behind("ignore-set-target.toml", |_| {}),
    )
    .await;
    fails(
        "device.shares.new-prev-hash",
        device_behind("ignore-new-prev-hash.toml", |_| {}),
    )
    .await;
    fails(
        "device.shares.new-job",
        device_behind("ignore-new-job.toml", |_| {}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn robustness_faults() {
    fails(
        "device.robust.unknown-extension",
        device_behind("close-on-unknown-extension.toml", |_| {}),
    )
    .await;
    fails(
        "device.robust.chunked-frame",
        device_behind("close-on-large-frame.toml", |_| {}),
    )
    .await;
    // Reads a BOOL by its whole byte: rolls on a job sent with 0xFE, not on one sent with 0x00.
    fails(
        "device.robust.bool-high-bits",
        device_launcher(|c| {
            extended(c);
            c.device.setup_flags = Some(0);
            c.device.bool_whole_byte = true;
        }),
    )
    .await;
    // Reads an OPTION prefix of 2 as present: mines the job a strict decoder refuses.
    fails(
        "device.robust.option-prefix",
        device_launcher(|c| c.device.option_any_prefix = true),
    )
    .await;
    fails(
        "device.robust.share-error-code",
        device_behind("close-on-share-error.toml", |_| {}),
    )
    .await;
    fails("device.robust.open-error-code", crashing_device_launcher()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_and_reconnect_faults() {
    fails(
        "device.mining.close-channel",
        device_behind("ignore-close-channel.toml", |_| {}),
    )
    .await;
    fails(
        "device.reconnect.follows",
        device_behind("ignore-reconnect.toml", |_| {}),
    )
    .await;
}
