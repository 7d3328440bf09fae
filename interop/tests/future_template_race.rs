//! A bug in SRI's channel manager, shared by pool_sv2 0.7.0 and jd_client_sv2 0.6.0 (found by the
//! conformance suite, which brought jd_client_sv2 down mid-run).
//!
//! A Template Provider may announce the next block ahead (NewTemplate with future_template set,
//! §7.3) and send its SetNewPrevHash later. A miner that connects in between makes the server fail
//! to bootstrap the new group channel ("Failed to set new prevhash for group channel
//! error=TemplateIdNotFound"), and instead of dropping that miner the server shuts itself down
//! ("Graceful shutdown"), every other miner with it. Our TP holds the prev hash back for 3 s
//! (`TpHandle::new_block_announced`) so that the window is wide and the test deterministic; with the
//! two messages back to back the window is small but real: the conformance run hit it by chance.
//!
//! These tests pin the behaviour. They fail when a fixed version is installed, so that the finding can
//! be retired.

use std::sync::Arc;
use std::time::Duration;

use sv2_codec::noise::keys::{AuthorityPublicKey, Keypair};
use sv2_interop::noise::TEST_AUTHORITY_PUBLIC;
use sv2_interop::peers::{binary_or_skip, start_reference_jdc, start_reference_pool, PeerProcess};
use sv2_mock::miner::driver::{spawn, DeviceDriverConfig};
use sv2_mock::tp::driver::{serve, TpHandle, TpServerConfig};
use tokio::net::TcpListener;

async fn tp() -> Arc<TpHandle> {
    Arc::new(
        serve(
            TcpListener::bind("127.0.0.1:0").await.unwrap(),
            TpServerConfig::new(Keypair::generate().unwrap()).unwrap(),
        )
        .unwrap(),
    )
}

/// A first miner mines on `server`; the TP announces the next block and holds its prev hash for 3 s;
/// a second miner connects in the gap. Asserts that the server went down, its log naming the failed
/// group-channel bootstrap, and took the first miner with it.
async fn a_miner_joining_in_the_gap_brings_the_server_down(
    name: &str,
    tp: Arc<TpHandle>,
    server: &mut PeerProcess,
    addr: std::net::SocketAddr,
) {
    let authority = AuthorityPublicKey::from_base58(TEST_AUTHORITY_PUBLIC).unwrap();
    let device_config = || {
        let mut config = DeviceDriverConfig::new(addr.to_string(), Some(authority));
        // A claimed 1 PH/s: a hard channel target, so that the miners find no share and no block (a
        // block would move the TP on by itself).
        config.device.nominal_hash_rate = 1.0e15;
        config
    };
    let first = spawn(device_config());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while first.stats.borrow().jobs < 1 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(first.stats.borrow().jobs >= 1, "{}", server.log_tail(30));
    assert!(server.exited().is_none(), "{}", server.log_tail(30));

    let announcing = {
        let tp = tp.clone();
        tokio::spawn(async move { tp.new_block_announced(Duration::from_secs(3)).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = spawn(device_config());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while server.exited().is_none() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    announcing.await.unwrap();
    let log = server.log();
    let exited = server.exited();
    let (first, second) = (first.stop().await, second.stop().await);
    println!(
        "{name}: a miner joining between NewTemplate(future) and SetNewPrevHash: server exit {exited:?}; first miner {:?}; second {:?}",
        first.outcome, second.outcome
    );
    assert!(
        exited.is_some() && log.contains("TemplateIdNotFound"),
        "{name} survived (fixed?): exit {exited:?}\n{}",
        server.log_tail(30)
    );
    // The first miner, which did nothing wrong, lost its connection too.
    assert!(first.outcome.is_err(), "{:?}", first.outcome);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sri_bug_pool_sv2_shuts_down_when_a_miner_joins_between_a_future_template_and_its_prev_hash(
) {
    let Some(bin) = binary_or_skip("pool_sv2", "future_template_race") else {
        return;
    };
    let tp = tp().await;
    let (mut pool, addr) = start_reference_pool(&bin, "pool-future", tp.addr, None)
        .await
        .unwrap();
    a_miner_joining_in_the_gap_brings_the_server_down("pool_sv2 0.7.0", tp, &mut pool, addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sri_bug_jd_client_sv2_shuts_down_when_a_miner_joins_between_a_future_template_and_its_prev_hash(
) {
    let Some(bin) = binary_or_skip("jd_client_sv2", "future_template_race") else {
        return;
    };
    let tp = tp().await;
    let (mut jdc, addr) = start_reference_jdc(&bin, "jdc-future", tp.addr)
        .await
        .unwrap();
    a_miner_joining_in_the_gap_brings_the_server_down("jd_client_sv2 0.6.0", tp, &mut jdc, addr)
        .await;
}
