//! End to end against the reference implementation's pool (pool_sv2 0.7.0): our mock Template Provider
//! feeds it over Noise (the pool checks our TP's certificate), a client of ours mines on it over Noise
//! (we check the pool's certificate), its shares are accepted, and the block the pool builds from a
//! share reaches our TP as SubmitSolution and validates as a full block.

mod common;

use std::time::Duration;

use sv2_chain::target::meets_target;
use sv2_chain::{merkle, sha256d};
use sv2_codec::messages::common::SetupConnection;
use sv2_codec::messages::mining::{OpenExtendedMiningChannel, SubmitSharesExtended};
use sv2_codec::noise::keys::{AuthorityPublicKey, Keypair};
use sv2_codec::noise::InitiatorConfig;
use sv2_codec::types::{IntoStatic, Str0_255, B0_32, U256};
use sv2_codec::Message;
use sv2_interop::noise::TEST_AUTHORITY_PUBLIC;
use sv2_interop::peers::{binary_or_skip, start_reference_pool};
use sv2_mock::tp::driver::{serve, TpServerConfig};
use sv2_wire::{Connection, KeyLog};
use tokio::net::{TcpListener, TcpStream};

const STEP: Duration = Duration::from_secs(20);

fn setup_connection(port: u16) -> Message<'static> {
    SetupConnection {
        protocol: 0,
        min_version: 2,
        max_version: 2,
        flags: 0,
        endpoint_host: Str0_255::new(b"127.0.0.1".to_vec()).unwrap(),
        endpoint_port: port,
        vendor: Str0_255::new(b"sv2-toolkit".to_vec()).unwrap(),
        hardware_version: Str0_255::new(b"e2e".to_vec()).unwrap(),
        firmware: Str0_255::new(b"0.1".to_vec()).unwrap(),
        device_id: Str0_255::new(b"e2e-1".to_vec()).unwrap(),
    }
    .into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_tp_feeds_the_reference_pool_and_its_blocks_validate() {
    let Some(pool_bin) = binary_or_skip("pool_sv2", "e2e_pool") else {
        return;
    };

    // Our TP, with its own authority key.
    let tp_authority = Keypair::generate().unwrap();
    let tp_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tp = serve(
        tp_listener,
        TpServerConfig::new(tp_authority.clone()).unwrap(),
    )
    .unwrap();

    // Their pool, told to check our TP's certificate, acknowledging every share.
    let (tp_addr, tp_key) = (tp.addr, tp_authority.public.to_base58());
    let started = start_reference_pool(&pool_bin, "pool", tp_addr, Some(tp_key)).await;
    let (mut pool, pool_addr) =
        started.unwrap_or_else(|e| panic!("{e}\nTP log:\n{}", tp.log().join("\n")));
    let pool_port = pool_addr.port();

    // A client of ours: Noise with the pool's authority key, setup, one extended channel.
    let authority = AuthorityPublicKey::from_base58(TEST_AUTHORITY_PUBLIC).unwrap();
    let stream = TcpStream::connect(pool_addr).await.unwrap();
    let mut conn = Connection::initiate_now(
        stream,
        InitiatorConfig::new(authority),
        STEP,
        &KeyLog::none(),
    )
    .await
    .unwrap_or_else(|e| panic!("handshake with pool_sv2: {e}\n{}", pool.log_tail(30)));
    assert!(conn.handshake.as_ref().unwrap().established.authenticated);
    conn.send(&setup_connection(pool_port)).await.unwrap();
    let reply = conn.recv("SetupConnection reply", STEP).await.unwrap();
    assert!(
        matches!(reply.message, Message::SetupConnectionSuccess(_)),
        "{:?}",
        reply.message
    );
    conn.send(
        &OpenExtendedMiningChannel {
            request_id: 7,
            user_identity: Str0_255::new(b"e2e.worker".to_vec()).unwrap(),
            nominal_hash_rate: 1000.0,
            max_target: U256([0xff; 32]),
            min_extranonce_size: 4,
        }
        .into(),
    )
    .await
    .unwrap();

    // Channel, job and prev hash, in whatever order the pool sends them after the channel.
    let (mut channel, mut job, mut prev) = (None, None, None);
    while channel.is_none() || job.is_none() || prev.is_none() {
        let got = conn
            .recv("channel, job and prev hash", STEP)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", pool.log_tail(30)));
        match got.message {
            Message::OpenExtendedMiningChannelSuccess(s) => {
                assert_eq!(s.request_id, 7);
                channel = Some(s.into_static());
            }
            Message::NewExtendedMiningJob(j) => job = Some(j.into_static()),
            Message::SetNewPrevHash(p) => prev = Some(p),
            Message::OpenMiningChannelError(e) => panic!("channel refused: {e:?}"),
            _ => {}
        }
    }
    let (channel, job, prev) = (channel.unwrap(), job.unwrap(), prev.unwrap());
    assert_eq!(prev.job_id, job.job_id);

    // Mine one share with plain sha2 at the channel's target (a 1 kH/s channel: ~1000 hashes).
    let extranonce = vec![0u8; usize::from(channel.extranonce_size)];
    let mut coinbase = job.coinbase_tx_prefix.as_bytes().to_vec();
    coinbase.extend_from_slice(channel.extranonce_prefix.as_bytes());
    coinbase.extend_from_slice(&extranonce);
    coinbase.extend_from_slice(job.coinbase_tx_suffix.as_bytes());
    let path: Vec<[u8; 32]> = job.merkle_path.iter().map(|h| h.0).collect();
    let root = merkle::root_from_path(&sha256d(&coinbase), &path);
    let ntime = prev.min_ntime.max(job.min_ntime.unwrap_or(0));
    let nonce = (0u32..)
        .find(|nonce| {
            let mut header = [0u8; 80];
            header[0..4].copy_from_slice(&job.version.to_le_bytes());
            header[4..36].copy_from_slice(&prev.prev_hash.0);
            header[36..68].copy_from_slice(&root);
            header[68..72].copy_from_slice(&ntime.to_le_bytes());
            header[72..76].copy_from_slice(&prev.nbits.to_le_bytes());
            header[76..80].copy_from_slice(&nonce.to_le_bytes());
            meets_target(&sha256d(&header), &channel.target.0)
        })
        .unwrap();
    let height = tp.height();
    conn.send(
        &SubmitSharesExtended {
            channel_id: channel.channel_id,
            sequence_number: 1,
            job_id: job.job_id,
            nonce,
            ntime,
            version: job.version,
            extranonce: B0_32::new(extranonce).unwrap(),
        }
        .into(),
    )
    .await
    .unwrap();
    loop {
        let got = conn
            .recv("SubmitShares reply", STEP)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", pool.log_tail(30)));
        match got.message {
            Message::SubmitSharesSuccess(s) => {
                assert_eq!(s.new_submits_accepted_count, 1);
                break;
            }
            Message::SubmitSharesError(e) => {
                panic!("share refused: {e:?}\n{}", pool.log_tail(30))
            }
            _ => {}
        }
    }

    // At regtest difficulty the share is a block: the pool sends it to our TP, which checks it whole.
    let verdicts = tp.wait_for_verdicts(1, STEP).await;
    assert!(
        !verdicts.is_empty(),
        "no SubmitSolution reached the TP\npool log:\n{}",
        pool.log_tail(30)
    );
    let verdict = &verdicts[0];
    assert!(
        verdict.valid,
        "the pool's block is invalid: {:?}\nTP log:\n{}",
        verdict.problems,
        tp.log().join("\n")
    );
    assert_eq!(verdict.height, Some(height));
    assert!(tp.height() > height, "the TP moved to the next block");
    assert!(
        pool.exited().is_none(),
        "pool_sv2 exited:\n{}",
        pool.log_tail(30)
    );
}

/// Our SV2 mining device (mock-roles' miner driver, the engine behind `sv2-probe mine`) on the same
/// reference pool: its shares are accepted, it sees no protocol violation, and its blocks validate in
/// our TP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_mining_device_mines_on_the_reference_pool() {
    use sv2_mock::miner::driver::DeviceDriverConfig;

    let Some(pool_bin) = binary_or_skip("pool_sv2", "e2e_pool_device") else {
        return;
    };
    // Our TP and our device write their key logs: the capture of the whole chain (pool_sv2's
    // Template Distribution link to our TP, our device's Mining link to pool_sv2) is decrypted
    // with them.
    let dir = sv2_interop::peers::scratch_dir("pool-device-capture").unwrap();
    let (tp_keys, device_keys) = (dir.join("tp.keylog"), dir.join("device.keylog"));
    let mut tp_config = TpServerConfig::new(Keypair::generate().unwrap()).unwrap();
    tp_config.key_log = sv2_wire::KeyLog::file(&tp_keys);
    let tp = serve(TcpListener::bind("127.0.0.1:0").await.unwrap(), tp_config).unwrap();
    let tp_addr = tp.addr;
    // From before pool_sv2 connects to the TP (every TCP packet on lo: the pool's port is not
    // known yet).
    let capture = sv2_interop::peers::Tcpdump::start(&[], &dir.join("chain.pcap"));
    let (pool, pool_addr) = start_reference_pool(&pool_bin, "pool-device", tp_addr, None)
        .await
        .unwrap();

    let authority = AuthorityPublicKey::from_base58(TEST_AUTHORITY_PUBLIC).unwrap();
    let mut config = DeviceDriverConfig::new(pool_addr.to_string(), Some(authority));
    config.key_log = sv2_wire::KeyLog::file(&device_keys);
    let (accepted, blocks, valid) =
        common::device_mines_and_blocks_validate("pool_sv2", config, &pool, &tp).await;
    if let Some(capture) = capture {
        let captured = tokio::task::spawn_blocking(move || capture.stop())
            .await
            .unwrap();
        let conversations = common::decode_capture(&captured.file, &[&tp_keys, &device_keys]);
        let tp_link = common::conversation_to(&conversations, tp_addr.port());
        let tdp = common::sv2_messages(tp_link);
        common::require_seen(
            &captured,
            &conversations,
            tp_link,
            "pool_sv2's link to our TP",
            &[
                "SetupConnection",
                "SetupConnection.Success",
                "NewTemplate",
                "SetNewPrevHash",
                "SubmitSolution",
            ],
            |wanted| tdp.contains(&wanted),
        );
        let device_link = common::conversation_to(&conversations, pool_addr.port());
        let mining = common::sv2_messages(device_link);
        common::require_seen(
            &captured,
            &conversations,
            device_link,
            "our device's link to pool_sv2",
            &[
                "SetupConnection",
                "SetupConnection.Success",
                "SetNewPrevHash",
                "SubmitShares.Success",
            ],
            |wanted| mining.contains(&wanted),
        );
        println!(
            "e2e pool (device) capture: {} Template Distribution frames and {} Mining frames of pool_sv2's links decrypted",
            tdp.len(),
            mining.len()
        );
    }
    println!(
        "e2e pool (device): {accepted} share(s) accepted by pool_sv2, {blocks} block(s) reached our TP, {valid} valid"
    );
}
