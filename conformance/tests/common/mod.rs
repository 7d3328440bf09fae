//! What the conformance tests share: a mock pool on loopback with the target that points at it, and
//! running a selection of checks.
#![allow(dead_code)] // each test binary uses its own part

use std::time::Duration;

use sv2_codec::noise::keys::Keypair;
use sv2_conformance::runner::CheckResult;
use sv2_conformance::{run, Security, Selection, Target};
use sv2_mock::pool::driver::{serve, PoolHandle, PoolServerConfig};
use tokio::net::TcpListener;

/// Our mock pool on 127.0.0.1 (Noise with a fresh authority unless `configure` says otherwise), and
/// a target for it with short timeouts.
pub async fn mock_pool(configure: impl FnOnce(&mut PoolServerConfig)) -> (PoolHandle, Target) {
    let authority = Keypair::generate().unwrap();
    let public = authority.public;
    let mut config = PoolServerConfig::new(authority).unwrap();
    configure(&mut config);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let handle = serve(listener, config).await.unwrap();
    let mut target = Target::new(
        handle.addr,
        Security::Noise {
            authority: Some(public),
        },
    );
    target.timeout = Duration::from_secs(2);
    target.work_window = Duration::from_secs(3);
    (handle, target)
}

/// The results of the checks `only` selects (ids, groups, prefixes).
pub async fn run_only(target: Target, only: &[&str]) -> Vec<CheckResult> {
    let selection = Selection {
        only: only.iter().map(|s| s.to_string()).collect(),
    };
    run(target, &selection, |_| {}).await.results
}

/// One result in a line, for assertion messages.
pub fn line(r: &CheckResult) -> String {
    format!(
        "{} {:?} ({:.1?}): {}",
        r.check.id, r.outcome.verdict, r.duration, r.outcome.observed
    )
}
