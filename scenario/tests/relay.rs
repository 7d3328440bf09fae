//! The relay between our mock device and our mock pool, Noise on both legs: everything relayed and
//! recorded on both legs; a scenario that drops the pool's share acknowledgements keeps them from
//! the device while the pool goes on accepting; a broken MAC ends that pair only.

use std::sync::Arc;
use std::time::Duration;

use sv2_codec::noise::keys::{Keypair, SecretKey};
use sv2_codec::noise::ResponderConfig;
use sv2_mock::miner::driver::{spawn, DeviceDriverConfig};
use sv2_mock::pool::driver::{serve as serve_pool, PoolHandle, PoolServerConfig};
use sv2_scenario::relay::{serve, PairRecord, RelayConfig, RelayHandle};
use sv2_scenario::Scenario;
use sv2_wire::{unix_now, Direction, Event, Transcript};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

struct Setup {
    pool: PoolHandle,
    relay: RelayHandle,
    authority: Keypair,
    ended: mpsc::UnboundedReceiver<PairRecord>,
}

async fn setup(scenario: &str) -> Setup {
    let pool_authority = Keypair::generate().unwrap();
    let pool = serve_pool(
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        PoolServerConfig::new(pool_authority.clone()).unwrap(),
    )
    .await
    .unwrap();
    let authority = Keypair::generate().unwrap();
    let now = unix_now();
    let mut config = RelayConfig::new(pool.addr);
    config.upstream_noise = Some(Some(pool_authority.public));
    config.downstream_noise = Some(ResponderConfig::issue(
        &SecretKey::generate().unwrap(),
        &authority,
        now - 60,
        now + 3600,
    ));
    config.scenario = Arc::new(Scenario::from_toml(scenario).unwrap());
    let (tx, ended) = mpsc::unbounded_channel();
    config.ended = Some(tx);
    let relay = serve(TcpListener::bind("127.0.0.1:0").await.unwrap(), config).unwrap();
    Setup {
        pool,
        relay,
        authority,
        ended,
    }
}

/// Mines through the relay for up to `seconds` (until `enough` shares were accepted by the pool).
async fn mine(s: &Setup, seconds: u64, enough: u64) -> sv2_mock::miner::driver::DeviceReport {
    let mut config = DeviceDriverConfig::new(s.relay.addr.to_string(), Some(s.authority.public));
    config.device.nominal_hash_rate = 10_000.0;
    let device = spawn(config);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    while s.pool.stats().shares_accepted < enough && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    device.stop().await
}

fn names(t: &Transcript, direction: Direction) -> Vec<&'static str> {
    t.messages(direction).map(|d| d.message.name()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_mines_through_the_relay_and_both_legs_are_recorded() {
    let mut s = setup("").await;
    let report = mine(&s, 30, 2).await;
    assert!(report.stats.accepted >= 1, "{:?}", report.stats);
    assert!(s.pool.stats().shares_accepted >= 1);
    let record = tokio::time::timeout(Duration::from_secs(10), s.ended.recv())
        .await
        .unwrap()
        .unwrap();
    // What the device sent is what the pool got, and the other way round, frame for frame.
    let (down, up) = (&record.downstream, &record.upstream);
    let sent_down = names(down, Direction::ClientToServer);
    let sent_up = names(up, Direction::ClientToServer);
    assert!(sent_down.starts_with(&["SetupConnection"]), "{sent_down:?}");
    assert_eq!(
        sent_up[..sent_down.len().min(sent_up.len())],
        sent_down[..sent_down.len().min(sent_up.len())]
    );
    let from_pool = names(up, Direction::ServerToClient);
    let to_device = names(down, Direction::ServerToClient);
    assert!(from_pool.contains(&"SubmitShares.Success"), "{from_pool:?}");
    assert_eq!(
        to_device[..to_device.len().min(from_pool.len())],
        from_pool[..to_device.len().min(from_pool.len())]
    );
    // Both legs are encrypted: acts, and frames with their bytes on the wire.
    for t in [down, up] {
        assert!(t
            .entries()
            .iter()
            .any(|e| matches!(e.event, Event::Handshake { act: 2, .. })));
        assert!(t
            .entries()
            .iter()
            .any(|e| matches!(&e.event, Event::Frame { wire: Some(_), .. })));
    }
    s.relay.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_share_acknowledgements_never_reach_the_device() {
    let mut s = setup(
        r#"
        name = "drop-share-acks"
        [[rule]]
        name = "no acks"
        from = "server"
        message = "SubmitShares.Success"
        action = "drop"
        "#,
    )
    .await;
    let report = mine(&s, 30, 2).await;
    assert!(s.pool.stats().shares_accepted >= 2);
    assert_eq!(report.stats.accepted, 0, "{:?}", report.stats);
    let record = s.ended.recv().await.unwrap();
    let fired = record.fired.iter().find(|(n, _)| n == "no acks").unwrap().1;
    assert!(fired >= 1, "{:?}", record.fired);
    assert!(names(&record.upstream, Direction::ServerToClient).contains(&"SubmitShares.Success"));
    assert!(!names(&record.downstream, Direction::ServerToClient).contains(&"SubmitShares.Success"));
    assert!(record
        .downstream
        .entries()
        .iter()
        .any(|e| matches!(&e.event, Event::Note { text } if text.contains("scenario rule \"no acks\": dropped SubmitShares.Success"))));
    s.relay.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_mac_ends_that_pair_only() {
    let mut s = setup(
        r#"
        [[rule]]
        name = "break the channel's opening"
        from = "server"
        nth = 2
        action = "corrupt"
        corrupt = "break-mac"
        "#,
    )
    .await;
    // The first device gets a frame that fails its MAC: its connection fails; the pair ends.
    let first = mine(&s, 5, u64::MAX).await;
    assert_eq!(first.stats.accepted, 0);
    let record = s.ended.recv().await.unwrap();
    assert_eq!(record.fired[0].1, 1);
    // A second device on the same relay: a new pair, a new engine (nth = 1 fires again, on it)...
    let second = mine(&s, 5, u64::MAX).await;
    assert_eq!(second.stats.accepted, 0);
    let record = s.ended.recv().await.unwrap();
    assert_eq!(record.fired[0].1, 1);
    assert!(s.pool.stats().sessions >= 2);
    assert!(record.end.contains("downstream"), "{}", record.end);
    s.relay.shutdown();
}
