//! The mock proxy between our mock pool and our devices, Noise on both sides: a standard and an
//! extended device mine through one upstream extended channel, every share they find is accepted by
//! the pool (so the standard device's merkle roots were right for its part of the extranonce space),
//! and the proxy's core, driven message by message, keeps its other rules: one hash rate upstream that
//! follows the devices, a Reconnect followed and not passed down, frames of unknown extensions
//! forwarded with only the channel id changed, and hostile devices answered with errors.

use std::time::Duration;

use sv2_codec::messages::common::{Reconnect, SetupConnection, SetupConnectionSuccess};
use sv2_codec::messages::mining::{
    NewExtendedMiningJob, OpenExtendedMiningChannel, OpenExtendedMiningChannelSuccess,
    OpenStandardMiningChannel, SetNewPrevHash, SubmitSharesStandard, SubmitSharesSuccess,
};
use sv2_codec::noise::keys::Keypair;
use sv2_codec::types::{Seq0_255, Str0_255, B0_32, B0_64K, U256};
use sv2_codec::Message;
use sv2_mock::miner::driver::{spawn, DeviceDriverConfig};
use sv2_mock::miner::ChannelKind;
use sv2_mock::pool::driver::{serve as serve_pool, NoiseIdentity, PoolServerConfig};
use sv2_mock::pool::TemplateSource;
use sv2_mock::proxy::driver::{serve as serve_proxy, ProxyServerConfig};
use sv2_mock::proxy::{DownstreamId, Output, Proxy, ProxyConfig, ProxyFaults};
use tokio::net::TcpListener;

fn text(s: &str) -> Str0_255<'static> {
    Str0_255::new(s.as_bytes().to_vec()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_and_extended_devices_mine_through_one_upstream_channel() {
    let pool_authority = Keypair::generate().unwrap();
    let mut pool_config = PoolServerConfig::new(pool_authority.clone()).unwrap();
    // Blocks hard, so that the chain stays put and no share is stale.
    if let TemplateSource::InProcess(tp) = &mut pool_config.pool.template_source {
        tp.nbits = 0x1d00_ffff;
        tp.advance_on_block = false;
    }
    let pool = serve_pool(TcpListener::bind("127.0.0.1:0").await.unwrap(), pool_config)
        .await
        .unwrap();
    let authority = Keypair::generate().unwrap();
    let mut config = ProxyServerConfig::new(pool.addr, Some(pool_authority.public));
    config.noise = Some(NoiseIdentity::new(authority.clone()).unwrap());
    let proxy = serve_proxy(TcpListener::bind("127.0.0.1:0").await.unwrap(), config)
        .await
        .unwrap();

    let device = |kind: ChannelKind| {
        let mut config = DeviceDriverConfig::new(proxy.addr.to_string(), Some(authority.public));
        config.device.nominal_hash_rate = 10_000.0;
        config.device.channel = kind;
        spawn(config)
    };
    let standard = device(ChannelKind::Standard);
    let extended = device(ChannelKind::Extended);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while (standard.stats.borrow().accepted < 2 || extended.stats.borrow().accepted < 2)
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let prefixes = proxy.with_proxy(|p| p.prefixes());
    let standard = standard.stop().await;
    let extended = extended.stop().await;
    assert!(
        standard.stats.accepted >= 2,
        "standard: {:?}\n{:#?}",
        standard.stats,
        proxy.log()
    );
    assert!(
        extended.stats.accepted >= 2,
        "extended: {:?}\n{:#?}",
        extended.stats,
        proxy.log()
    );
    assert_eq!(
        standard.stats.rejected + extended.stats.rejected,
        0,
        "{:?}",
        pool.stats()
    );
    let stats = pool.stats();
    assert_eq!(stats.channels_opened, 1, "one upstream channel: {stats:?}");
    assert_eq!(stats.shares_rejected, 0, "{stats:?}");
    assert!(stats.shares_accepted >= 4);
    assert_eq!(prefixes.len(), 2);
    let all: Vec<&Vec<u8>> = prefixes.values().collect();
    assert!(
        !all[0].starts_with(all[1]) && !all[1].starts_with(all[0]),
        "{prefixes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_that_cannot_be_reached_ends_the_proxy() {
    let free = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gone = free.local_addr().unwrap();
    drop(free);
    let mut config = ProxyServerConfig::new(gone, None);
    config.reconnect_attempts = 1;
    config.retry_delay = Duration::from_millis(10);
    let proxy = serve_proxy(TcpListener::bind("127.0.0.1:0").await.unwrap(), config)
        .await
        .unwrap();
    let why = tokio::time::timeout(Duration::from_secs(10), proxy.ended())
        .await
        .unwrap();
    assert!(why.contains("could not be reached"), "{why}");
}

// The core, message by message.

const UP_CHANNEL: u32 = 7;

fn sends_up(out: &[Output]) -> Vec<&Message<'static>> {
    out.iter()
        .filter_map(|o| match o {
            Output::Upstream(m) => Some(m),
            _ => None,
        })
        .collect()
}

fn sends_down(out: &[Output], to: DownstreamId) -> Vec<&Message<'static>> {
    out.iter()
        .filter_map(|o| match o {
            Output::Downstream { session, message } if *session == to => Some(message),
            _ => None,
        })
        .collect()
}

/// A proxy set up with the pool: its upstream channel open (prefix [1, 2], 8 bytes of extranonce),
/// a job and a prev hash.
fn ready(faults: ProxyFaults) -> Proxy {
    let mut p = Proxy::new(ProxyConfig {
        faults,
        ..ProxyConfig::default()
    })
    .unwrap();
    let out = p.upstream_connected("127.0.0.1", 3333);
    assert!(matches!(sends_up(&out)[..], [Message::SetupConnection(_)]));
    let out = p.handle_upstream(
        &SetupConnectionSuccess {
            used_version: 2,
            flags: 0,
        }
        .into(),
    );
    let Message::OpenExtendedMiningChannel(open) = sends_up(&out)[0] else {
        panic!("{out:?}")
    };
    assert_eq!(open.nominal_hash_rate, 0.0, "no device yet: 0.0 (§5.3.2)");
    let out = p.handle_upstream(&channel_open(open.request_id, UP_CHANNEL, vec![1, 2]));
    assert!(out.contains(&Output::Ready));
    p.handle_upstream(&job(5, None));
    p.handle_upstream(
        &SetNewPrevHash {
            channel_id: UP_CHANNEL,
            job_id: 5,
            prev_hash: U256([3; 32]),
            min_ntime: 1_700_000_000,
            nbits: 0x207fffff,
        }
        .into(),
    );
    p
}

/// The pool's OpenExtendedMiningChannel.Success: 8 bytes of extranonce after `prefix`.
fn channel_open(request_id: u32, channel_id: u32, prefix: Vec<u8>) -> Message<'static> {
    OpenExtendedMiningChannelSuccess {
        request_id,
        channel_id,
        target: U256([0xff; 32]),
        extranonce_size: 8,
        extranonce_prefix: B0_32::new(prefix).unwrap(),
        group_channel_id: 0,
    }
    .into()
}

fn job(job_id: u32, min_ntime: Option<u32>) -> Message<'static> {
    NewExtendedMiningJob {
        channel_id: UP_CHANNEL,
        job_id,
        min_ntime,
        version: 0x2000_0000,
        version_rolling_allowed: true,
        merkle_path: Seq0_255::new(vec![U256([9; 32])]).unwrap(),
        coinbase_tx_prefix: B0_64K::new(vec![0xaa; 40]).unwrap(),
        coinbase_tx_suffix: B0_64K::new(vec![0xbb; 30]).unwrap(),
    }
    .into()
}

fn setup(p: &mut Proxy) -> DownstreamId {
    let id = p.open_session();
    let out = p.handle_downstream(
        id,
        &SetupConnection {
            protocol: 0,
            min_version: 2,
            max_version: 2,
            flags: 1,
            endpoint_host: text("127.0.0.1"),
            endpoint_port: 1,
            vendor: text("test"),
            hardware_version: text(""),
            firmware: text(""),
            device_id: text(""),
        }
        .into(),
    );
    assert!(matches!(
        sends_down(&out, id)[..],
        [Message::SetupConnectionSuccess(_)]
    ));
    id
}

/// A standard channel for session `id`: its channel id, extranonce prefix and the outputs.
fn open_standard(p: &mut Proxy, id: DownstreamId, rate: f32) -> (u32, Vec<u8>, Vec<Output>) {
    let out = p.handle_downstream(
        id,
        &OpenStandardMiningChannel {
            request_id: 1,
            user_identity: text("dev"),
            nominal_hash_rate: rate,
            max_target: U256([0xff; 32]),
        }
        .into(),
    );
    let Message::OpenStandardMiningChannelSuccess(s) = sends_down(&out, id)[0] else {
        panic!("{out:?}")
    };
    (
        s.channel_id,
        s.extranonce_prefix.as_bytes().to_vec(),
        out.clone(),
    )
}

#[test]
fn standard_channels_get_their_own_extranonce_and_its_merkle_root() {
    let mut p = ready(ProxyFaults::default());
    let a = setup(&mut p);
    let b = setup(&mut p);
    let (ca, prefix_a, out_a) = open_standard(&mut p, a, 100.0);
    let (_, prefix_b, _) = open_standard(&mut p, b, 50.0);
    assert_eq!(prefix_a.len(), 10, "the whole extranonce: 2 + 8 bytes");
    assert_eq!(&prefix_a[..2], &[1, 2]);
    assert_ne!(prefix_a, prefix_b);
    // The job in force, as a future job, then the prev hash that activates it.
    let down = sends_down(&out_a, a);
    let Message::NewMiningJob(j) = down[1] else {
        panic!("{down:?}")
    };
    // The proxy's own job id for the pool's job 5.
    let job_id = j.job_id;
    assert_eq!(j.min_ntime, None);
    let want = sv2_chain::merkle::coinbase_merkle_root(
        &[0xaa; 40],
        &prefix_a,
        &[],
        &[0xbb; 30],
        &[[9; 32]],
    );
    assert_eq!(j.merkle_root.0, want);
    assert!(
        matches!(down[2], Message::SetNewPrevHash(s) if s.job_id == job_id && s.channel_id == ca)
    );
    // The hash rate upstream follows: 100, then 150, then 50 when the first leaves.
    let out = p.close_session(a);
    let Message::UpdateChannel(u) = sends_up(&out)[0] else {
        panic!("{out:?}")
    };
    assert_eq!((u.channel_id, u.nominal_hash_rate), (UP_CHANNEL, 50.0));

    // With the fault: the root of the upstream prefix alone.
    let mut p = ready(ProxyFaults {
        wrong_merkle_root: true,
        ..ProxyFaults::default()
    });
    let a = setup(&mut p);
    let (_, prefix, out) = open_standard(&mut p, a, 1.0);
    let Message::NewMiningJob(j) = sends_down(&out, a)[1] else {
        panic!()
    };
    let right =
        sv2_chain::merkle::coinbase_merkle_root(&[0xaa; 40], &prefix, &[], &[0xbb; 30], &[[9; 32]]);
    assert_ne!(j.merkle_root.0, right);
}

#[test]
fn shares_go_up_with_the_channels_extranonce_and_answers_come_back() {
    let mut p = ready(ProxyFaults::default());
    let a = setup(&mut p);
    let (ca, prefix, out) = open_standard(&mut p, a, 1.0);
    let Message::NewMiningJob(job) = sends_down(&out, a)[1] else {
        panic!("{out:?}")
    };
    let job_id = job.job_id;
    let share = |seq| -> Message<'static> {
        SubmitSharesStandard {
            channel_id: ca,
            sequence_number: seq,
            job_id,
            nonce: 1,
            ntime: 1_700_000_001,
            version: 0x2000_0000,
        }
        .into()
    };
    let mut up_seqs = Vec::new();
    for seq in [10, 11] {
        let out = p.handle_downstream(a, &share(seq));
        let Message::SubmitSharesExtended(s) = sends_up(&out)[0] else {
            panic!("{out:?}")
        };
        assert_eq!(s.channel_id, UP_CHANNEL);
        assert_eq!(
            s.extranonce.as_bytes(),
            &prefix[2..],
            "the bytes after the pool's prefix"
        );
        up_seqs.push(s.sequence_number);
    }
    let out = p.handle_upstream(
        &SubmitSharesSuccess {
            channel_id: UP_CHANNEL,
            last_sequence_number: up_seqs[1],
            new_submits_accepted_count: 2,
            new_shares_sum: 2,
        }
        .into(),
    );
    let Message::SubmitSharesSuccess(s) = sends_down(&out, a)[0] else {
        panic!("{out:?}")
    };
    assert_eq!(
        (
            s.channel_id,
            s.last_sequence_number,
            s.new_submits_accepted_count
        ),
        (ca, 11, 2)
    );
    // A share on an unknown job or channel is answered by the proxy itself.
    let mut bad = share(12);
    if let Message::SubmitSharesStandard(s) = &mut bad {
        s.job_id = job_id + 999;
    }
    let out = p.handle_downstream(a, &bad);
    assert!(sends_up(&out).is_empty());
    assert!(
        matches!(sends_down(&out, a)[0], Message::SubmitSharesError(e) if e.error_code.as_bytes() == b"invalid-job-id")
    );
}

#[test]
fn reconnect_is_followed_and_not_passed_down() {
    let mut p = ready(ProxyFaults::default());
    let a = setup(&mut p);
    open_standard(&mut p, a, 1.0);
    let reconnect: Message<'static> = Reconnect {
        new_host: text("127.0.0.1"),
        new_port: 4444,
    }
    .into();
    let out = p.handle_upstream(&reconnect);
    assert!(sends_down(&out, a).is_empty(), "{out:?}");
    assert!(out.contains(&Output::Reconnect {
        host: "127.0.0.1".into(),
        port: 4444
    }));
    let mut faulty = ready(ProxyFaults {
        propagate_reconnect: true,
        ..ProxyFaults::default()
    });
    let b = setup(&mut faulty);
    assert!(!sends_down(&faulty.handle_upstream(&reconnect), b).is_empty());
}

#[test]
fn hostile_devices_get_errors_or_a_close() {
    let mut p = ready(ProxyFaults::default());
    // Anything before SetupConnection closes the connection.
    let id = p.open_session();
    let out = p.handle_downstream(id, &job(1, None));
    assert!(matches!(out[..], [Output::Close { .. }]));
    // Another protocol is refused.
    let id = p.open_session();
    let out = p.handle_downstream(
        id,
        &SetupConnection {
            protocol: 2,
            min_version: 2,
            max_version: 2,
            flags: 0,
            endpoint_host: text(""),
            endpoint_port: 0,
            vendor: text(""),
            hardware_version: text(""),
            firmware: text(""),
            device_id: text(""),
        }
        .into(),
    );
    assert!(matches!(
        sends_down(&out, id)[0],
        Message::SetupConnectionError(_)
    ));
    // An extended channel asking for more extranonce than there is; NaN hash rates count as 0.
    let id = setup(&mut p);
    let out = p.handle_downstream(
        id,
        &OpenExtendedMiningChannel {
            request_id: 3,
            user_identity: text("dev"),
            nominal_hash_rate: f32::NAN,
            max_target: U256([0xff; 32]),
            min_extranonce_size: 30,
        }
        .into(),
    );
    assert!(matches!(
        sends_down(&out, id)[0],
        Message::OpenMiningChannelError(_)
    ));
    let (_, _, out) = open_standard(&mut p, id, f32::NAN);
    assert!(sends_up(&out).is_empty(), "no change to announce: {out:?}");
    // One byte of index: 256 channels, then too-many-channels.
    let mut p = Proxy::new(ProxyConfig {
        prefix_bytes: 1,
        ..ProxyConfig::default()
    })
    .unwrap();
    p.upstream_connected("127.0.0.1", 1);
    p.handle_upstream(
        &SetupConnectionSuccess {
            used_version: 2,
            flags: 0,
        }
        .into(),
    );
    p.handle_upstream(&channel_open(1, 1, vec![]));
    let id = setup(&mut p);
    for _ in 0..256 {
        open_standard(&mut p, id, 1.0);
    }
    let prefixes = p.prefixes();
    let distinct: std::collections::BTreeSet<_> = prefixes.values().collect();
    assert_eq!(distinct.len(), 256);
    let out = p.handle_downstream(
        id,
        &OpenStandardMiningChannel {
            request_id: 9,
            user_identity: text("dev"),
            nominal_hash_rate: 1.0,
            max_target: U256([0xff; 32]),
        }
        .into(),
    );
    assert!(
        matches!(sends_down(&out, id)[0], Message::OpenMiningChannelError(e) if e.error_code.as_bytes() == b"too-many-channels")
    );
}

#[test]
fn a_new_channel_gets_only_the_work_in_force() {
    let mut p = ready(ProxyFaults::default());
    // Future jobs 6 and 7; the prev hash names 7: 6 is stale, and so is the old job 5.
    p.handle_upstream(&job(6, None));
    p.handle_upstream(&job(7, None));
    p.handle_upstream(
        &SetNewPrevHash {
            channel_id: UP_CHANNEL,
            job_id: 7,
            prev_hash: U256([4; 32]),
            min_ntime: 1_700_000_100,
            nbits: 0x207fffff,
        }
        .into(),
    );
    // A job with min_ntime on it: in force at once.
    p.handle_upstream(&job(8, Some(1_700_000_105)));
    let a = setup(&mut p);
    let (_, _, out) = open_standard(&mut p, a, 1.0);
    let down = sends_down(&out, a);
    assert_eq!(down.len(), 3, "{down:?}");
    let (Message::NewMiningJob(j), Message::SetNewPrevHash(h)) = (down[1], down[2]) else {
        panic!("{down:?}")
    };
    assert_eq!(j.min_ntime, None);
    assert_eq!(h.job_id, j.job_id);
    assert_eq!(h.min_ntime, 1_700_000_105, "the job's later min_ntime");
    assert_eq!(h.prev_hash.0, [4; 32]);
    // A SetNewPrevHash naming a job the pool never sent is not passed on.
    let out = p.handle_upstream(
        &SetNewPrevHash {
            channel_id: UP_CHANNEL,
            job_id: 99,
            prev_hash: U256([5; 32]),
            min_ntime: 1_700_000_200,
            nbits: 0x207fffff,
        }
        .into(),
    );
    assert!(sends_down(&out, a).is_empty(), "{out:?}");
}

#[test]
fn job_ids_stay_unique_across_upstream_connections() {
    let mut p = ready(ProxyFaults::default());
    let a = setup(&mut p);
    let (_, _, out) = open_standard(&mut p, a, 1.0);
    let Message::NewMiningJob(first) = sends_down(&out, a)[1] else {
        panic!("{out:?}")
    };
    let first = first.job_id;
    // The pool moves the proxy; the new pool numbers its jobs from 5 again.
    p.upstream_lost();
    p.upstream_connected("127.0.0.1", 3334);
    p.handle_upstream(
        &SetupConnectionSuccess {
            used_version: 2,
            flags: 0,
        }
        .into(),
    );
    p.handle_upstream(&channel_open(2, UP_CHANNEL, vec![1, 2]));
    let out = p.handle_upstream(&job(5, None));
    let Message::NewMiningJob(again) = sends_down(&out, a)[0] else {
        panic!("{out:?}")
    };
    assert_ne!(again.job_id, first);
}
