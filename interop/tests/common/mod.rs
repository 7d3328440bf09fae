//! What the end-to-end tests share: our SV2 mining device on a reference server fed by our TP.

use std::time::Duration;

use sv2_conformance::monitor::check_transcript;
use sv2_interop::peers::PeerProcess;
use sv2_mock::miner::driver::{spawn, DeviceDriverConfig};
use sv2_mock::tp::driver::TpHandle;

/// Runs the device `config` describes until a share is accepted (60 s at most) and asserts: a share
/// accepted, no rule of the spec broken by the server (the conformance monitor over the device's
/// transcript), at least one block valid in our TP and every other block
/// stale only (a second block on one template loses the race to the first at regtest difficulty).
/// Returns (shares accepted, blocks at the TP, valid blocks).
pub async fn device_mines_and_blocks_validate(
    name: &str,
    mut config: DeviceDriverConfig,
    server: &PeerProcess,
    tp: &TpHandle,
) -> (u64, usize, usize) {
    // A low nominal hash rate: an easy channel target, reached quickly even by a debug build.
    config.device.nominal_hash_rate = 10_000.0;
    let device = spawn(config);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while device.stats.borrow().accepted < 1 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let report = device.stop().await;
    let judged = check_transcript(&report.transcript).server();
    let violations: Vec<String> = judged
        .findings
        .iter()
        .map(|f| format!("{} at entry {}: {}", f.rule, f.entry, f.detail))
        .collect();
    assert!(
        report.stats.accepted >= 1,
        "no share accepted: {:?}, outcome {:?}\n{}",
        report.stats,
        report.outcome,
        server.log_tail(40)
    );
    assert!(violations.is_empty(), "{name} broke rules: {violations:?}");
    let verdicts = tp.wait_for_verdicts(1, Duration::from_secs(20)).await;
    assert!(
        verdicts.iter().any(|v| v.valid) && verdicts.iter().all(|v| v.valid || v.is_stale_only()),
        "{verdicts:?}\nTP log:\n{}\n{name} log:\n{}",
        tp.log().join("\n"),
        server.log_tail(40)
    );
    let valid = verdicts.iter().filter(|v| v.valid).count();
    (report.stats.accepted, verdicts.len(), valid)
}
