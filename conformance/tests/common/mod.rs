//! What the conformance tests share: a mock pool on loopback with the target that points at it, and
//! running a selection of checks.
#![allow(dead_code)] // each test binary uses its own part

pub mod device;
pub mod proxy;

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

/// A mock pool whose output goes through the fault scenario `file` (scenarios/faults/): the pool
/// serves plaintext on a loopback port of its own, and a relay with its own authority (the
/// target's) stands in front, applying the scenario. Keep the returned handles alive.
pub async fn mock_pool_behind(
    file: &str,
    configure: impl FnOnce(&mut PoolServerConfig),
) -> ((PoolHandle, sv2_scenario::relay::RelayHandle), Target) {
    let path = format!("{}/../scenarios/faults/{file}", env!("CARGO_MANIFEST_DIR"));
    let scenario =
        sv2_scenario::Scenario::from_toml(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut config = PoolServerConfig::new(Keypair::generate().unwrap()).unwrap();
    configure(&mut config);
    config.noise = None;
    let pool = serve(TcpListener::bind("127.0.0.1:0").await.unwrap(), config)
        .await
        .unwrap();
    let authority = Keypair::generate().unwrap();
    let now = sv2_wire::unix_now();
    let mut relay = sv2_scenario::relay::RelayConfig::new(pool.addr);
    relay.downstream_noise = Some(sv2_codec::noise::ResponderConfig::issue(
        &sv2_codec::noise::keys::SecretKey::generate().unwrap(),
        &authority,
        now - 60,
        now + 3600,
    ));
    relay.scenario = std::sync::Arc::new(scenario);
    let relay =
        sv2_scenario::relay::serve(TcpListener::bind("127.0.0.1:0").await.unwrap(), relay).unwrap();
    let mut target = Target::new(
        relay.addr,
        Security::Noise {
            authority: Some(authority.public),
        },
    );
    target.timeout = Duration::from_secs(2);
    target.work_window = Duration::from_secs(3);
    ((pool, relay), target)
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
