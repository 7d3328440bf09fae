//! The SV1 client: its byte orders against a public block (block 1 as a stratum job), every message
//! path of the core without sockets, and the driver mining against a minimal SV1 server written here
//! (loopback) that validates every submitted share by rebuilding the header itself.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sv2_codec::sv1::json::{Id, Sv1Message};
use sv2_engine::{Backend, Extranonce, MinerConfig, Share};
use sv2_mock::miner::ShareProblem;
use sv2_mock::sv1::driver::{self, Sv1DriverConfig, Sv1DriverError, Sv1End, Sv1Timeouts};
use sv2_mock::sv1::{Output, Phase, Sv1Client, Sv1Config, Sv1Event, Sv1Work};
use sv2_wire::Direction;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

fn sha256d(data: &[u8]) -> [u8; 32] {
    Sha256::digest(Sha256::digest(data)).into()
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

/// Display order (explorers) to internal order.
fn internal(display: &str) -> [u8; 32] {
    let mut b: [u8; 32] = unhex(display).try_into().unwrap();
    b.reverse();
    b
}

fn sends(out: &[Output]) -> Vec<Sv1Message> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

fn events(out: &[Output]) -> Vec<Sv1Event> {
    out.iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

fn works(out: &[Output]) -> Vec<Sv1Work> {
    out.iter()
        .filter_map(|o| match o {
            Output::Work(w) => Some(w.clone()),
            _ => None,
        })
        .collect()
}

fn request_id(m: &Sv1Message) -> u64 {
    match m {
        Sv1Message::Request {
            id: Id::Number(n), ..
        } => *n,
        other => panic!("{other:?}"),
    }
}

fn params(m: &Sv1Message) -> Vec<Value> {
    match m {
        Sv1Message::Request { params, .. } => params.as_array().unwrap().clone(),
        other => panic!("{other:?}"),
    }
}

fn line(v: Value) -> String {
    v.to_string()
}

// ---------------------------------------------------------------------------------------------------
// Block 1 of the main chain as a stratum job: its coinbase split around the scriptSig's last two
// bytes (extranonce1 = 01, extranonce2 = 04), the SV1 strings written out by hand.

const BLOCK1_COINBASE: &str = "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff0704ffff001d0104ffffffff0100f2052a0100000043410496b538e853519c726a2c91e61ec11600ae1390813a627c66fb8be7947be63c52da7589379515d4e0a604f8141781e62294721166bf621e73a82cbf2342c858eeac00000000";
const BLOCK1_MERKLE: &str = "0e3e2357e806b6cdb1f70b54c3a3a17b6714ee1f0e68bebb44a74b1efd512098";
const BLOCK1_HASH: &str = "00000000839a8e6886ab5951d76f411475428afc90947ee320161bbf18eb6048";
/// The genesis hash (block 1's prevhash) as SV1 sends it: the display-order hash's eight words in
/// reverse order, i.e. the header bytes with each 4-byte word byte-swapped.
const BLOCK1_PREVHASH_SV1: &str =
    "0a8ce26f72b3f1b646a2a6c14ff763ae65831e939c085ae10019d66800000000";

fn block1_notify() -> Value {
    let coinbase = BLOCK1_COINBASE;
    // 4 version + 1 + 32 + 4 + 1 (script length 07) + 5 (04 ffff001d) = 47 bytes = 94 digits.
    let coinb1 = &coinbase[..94];
    assert_eq!(&coinbase[94..98], "0104");
    let coinb2 = &coinbase[98..];
    json!({"id": null, "method": "mining.notify", "params": [
        "b1", BLOCK1_PREVHASH_SV1, coinb1, coinb2, [], "00000001", "1d00ffff", "4966bc61", true
    ]})
}

#[test]
fn block_1_as_a_stratum_job_hashes_to_its_public_block_hash() {
    // The test's own coinbase is block 1's coinbase (its txid is the merkle root).
    assert_eq!(sha256d(&unhex(BLOCK1_COINBASE)), internal(BLOCK1_MERKLE));

    let now = Instant::now();
    let mut c = Sv1Client::new(Sv1Config {
        version_rolling: false,
        extranonce_subscribe: false,
        user: "miner1".into(),
        ..Sv1Config::default()
    });
    let out = c.start();
    let subscribe = &sends(&out)[0];
    let out = c.handle_line(
        &line(json!({"id": request_id(subscribe), "result": [[["mining.notify", "1"]], "01", 1], "error": null})),
        now,
    );
    let authorize = &sends(&out)[0];
    assert_eq!(params(authorize), vec![json!("miner1"), json!("x")]);
    c.handle_line(
        &line(json!({"id": request_id(authorize), "result": true, "error": null})),
        now,
    );
    c.handle_line(
        &line(json!({"id": null, "method": "mining.set_difficulty", "params": [1]})),
        now,
    );
    let out = c.handle_line(&line(block1_notify()), now);
    let work = works(&out).pop().expect("work");
    assert_eq!(work.job_id, "b1");
    let job = &work.job;
    assert_eq!(
        (job.version, job.nbits, job.ntime),
        (1, 0x1d00_ffff, 1_231_469_665)
    );
    assert_eq!(
        job.prev_hash,
        internal("000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f")
    );
    assert_eq!(job.version_mask, 0);

    // The engine's template for extranonce2 = 04 has block 1's merkle root, and with block 1's
    // nonce the header hashes to block 1's hash.
    let (first, _) = match &job.merkle {
        sv2_engine::MerkleSource::Coinbase(cb) => (cb.extranonce_start, cb),
        other => panic!("{other:?}"),
    };
    let t = job.template(0, 4u64.wrapping_sub(first), 0);
    assert_eq!(t.extranonce.as_slice(), &[4]);
    assert_eq!(t.merkle_root, internal(BLOCK1_MERKLE));
    let header = job.header(&t, 0x9962_e301);
    assert_eq!(sha256d(&header.to_bytes()), internal(BLOCK1_HASH));

    // Found by the engine, the share is submitted in SV1's encodings, and it is a block.
    let share = Share {
        job_id: job.id,
        nonce: 0x9962_e301,
        ntime: t.ntime,
        version: t.version,
        extranonce: t.extranonce,
        merkle_root: t.merkle_root,
        hash: internal(BLOCK1_HASH),
    };
    let out = c.share_found(&share, now);
    let submit = &sends(&out)[0];
    assert_eq!(
        params(submit),
        vec![
            json!("miner1"),
            json!("b1"),
            json!("04"),
            json!("4966bc61"),
            json!("9962e301")
        ]
    );
    assert!(events(&out).contains(&Sv1Event::BlockFound {
        job_id: "b1".into(),
        hash: internal(BLOCK1_HASH)
    }));
    let line = submit.to_line();
    assert!(
        line.starts_with(r#"{"id":"#) && line.contains(r#""method":"mining.submit""#),
        "{line}"
    );
}

// ---------------------------------------------------------------------------------------------------
// Sans-IO message paths

/// A coinbase split for extranonce1 (4 bytes) + extranonce2 (4 bytes) at the end of the scriptSig.
fn coinbase_parts(segwit: bool) -> (Vec<u8>, Vec<u8>) {
    let mut coinb1 = 2u32.to_le_bytes().to_vec();
    if segwit {
        coinb1.extend_from_slice(&[0, 1]);
    }
    coinb1.push(1);
    coinb1.extend_from_slice(&[0; 32]);
    coinb1.extend_from_slice(&[0xff; 4]);
    coinb1.push(4 + 8);
    coinb1.extend_from_slice(&[3, 0xc8, 0, 0]);
    let mut coinb2 = vec![0xff; 4];
    coinb2.push(1);
    coinb2.extend_from_slice(&50_0000_0000u64.to_le_bytes());
    coinb2.extend_from_slice(&[22, 0, 20]);
    coinb2.extend_from_slice(&[0xcd; 20]);
    if segwit {
        coinb2.extend_from_slice(&[1, 32]);
        coinb2.extend_from_slice(&[0; 32]);
    }
    coinb2.extend_from_slice(&[0; 4]);
    (coinb1, coinb2)
}

const PREV: [u8; 32] = [0x5a; 32];
const BRANCH: [[u8; 32]; 2] = [[0x31; 32], [0x32; 32]];
const EN1: [u8; 4] = [0xf0, 0, 0, 0x0d];
const VERSION: u32 = 0x2000_0000;
const NTIME: u32 = 1_700_000_000;
const NBITS: u32 = 0x1d00_ffff;

fn notify(job_id: &str, clean: bool, segwit: bool) -> String {
    let (coinb1, coinb2) = coinbase_parts(segwit);
    let mut swapped = PREV;
    for w in swapped.chunks_mut(4) {
        w.reverse();
    }
    line(json!({"id": null, "method": "mining.notify", "params": [
        job_id, hex::encode(swapped), hex::encode(coinb1), hex::encode(coinb2),
        BRANCH.iter().map(hex::encode).collect::<Vec<_>>(),
        format!("{VERSION:08x}"), format!("{NBITS:08x}"), format!("{NTIME:08x}"), clean
    ]}))
}

/// Difficulty whose target is exactly 2^255: half of all hashes meet it.
const HALF: f64 = 65535.0 / (1u64 << 47) as f64;

fn target_255() -> [u8; 32] {
    let mut t = [0u8; 32];
    t[31] = 0x80;
    t
}

fn le_le(hash: &[u8; 32], target: &[u8; 32]) -> bool {
    hash.iter().rev().cmp(target.iter().rev()) != std::cmp::Ordering::Greater
}

/// The header of a share of the test job, rebuilt here.
fn test_header(en2: &[u8], version: u32, ntime: u32, nonce: u32) -> [u8; 80] {
    let (coinb1, coinb2) = coinbase_parts(false);
    let mut coinbase = coinb1;
    coinbase.extend_from_slice(&EN1);
    coinbase.extend_from_slice(en2);
    coinbase.extend_from_slice(&coinb2);
    let mut root = sha256d(&coinbase);
    for b in &BRANCH {
        let mut pair = root.to_vec();
        pair.extend_from_slice(b);
        root = sha256d(&pair);
    }
    let mut h = Vec::new();
    h.extend_from_slice(&version.to_le_bytes());
    h.extend_from_slice(&PREV);
    h.extend_from_slice(&root);
    h.extend_from_slice(&ntime.to_le_bytes());
    h.extend_from_slice(&NBITS.to_le_bytes());
    h.extend_from_slice(&nonce.to_le_bytes());
    h.try_into().unwrap()
}

fn find_share(work: &Sv1Work, en2: &[u8], version: u32, target: &[u8; 32], meet: bool) -> Share {
    for nonce in 0u32.. {
        let h = test_header(en2, version, work.job.ntime, nonce);
        let hash = sha256d(&h);
        if le_le(&hash, target) == meet {
            return Share {
                job_id: work.job.id,
                nonce,
                ntime: work.job.ntime,
                version,
                extranonce: Extranonce::new(en2).unwrap(),
                merkle_root: h[36..68].try_into().unwrap(),
                hash,
            };
        }
    }
    unreachable!()
}

/// A client configured, subscribed, authorized, at difficulty HALF, mining job "j1".
fn mining(config: Sv1Config, granted_mask: &str, now: Instant) -> (Sv1Client, Sv1Work) {
    let mut c = Sv1Client::new(config);
    let out = c.start();
    let sent = sends(&out);
    for m in &sent {
        match m.method() {
            Some("mining.configure") => {
                c.handle_line(
                    &line(json!({"id": request_id(m), "result": {"version-rolling": true, "version-rolling.mask": granted_mask}, "error": null})),
                    now,
                );
            }
            Some("mining.subscribe") => {
                let out = c.handle_line(
                    &line(json!({"id": request_id(m), "result": [[["mining.set_difficulty", "s"], ["mining.notify", "s"]], hex::encode(EN1), 4], "error": null})),
                    now,
                );
                let authorize = sends(&out)
                    .into_iter()
                    .find(|m| m.method() == Some("mining.authorize"))
                    .unwrap();
                c.handle_line(
                    &line(json!({"id": request_id(&authorize), "result": true, "error": null})),
                    now,
                );
            }
            other => panic!("{other:?}"),
        }
    }
    c.handle_line(
        &line(json!({"id": null, "method": "mining.set_difficulty", "params": [HALF]})),
        now,
    );
    let out = c.handle_line(&notify("j1", true, false), now);
    (c, works(&out).pop().expect("work"))
}

#[test]
fn the_handshake_sends_configure_subscribe_authorize_in_bip310_form() {
    let now = Instant::now();
    let mut c = Sv1Client::new(Sv1Config {
        user: "alice.rig1".into(),
        password: "pw".into(),
        user_agent: "test-agent/1".into(),
        suggest_difficulty: Some(64.0),
        ..Sv1Config::default()
    });
    assert_eq!(c.phase(), Phase::NotStarted);
    let sent = sends(&c.start());
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].method(), Some("mining.configure"));
    assert_eq!(
        params(&sent[0]),
        vec![
            json!(["version-rolling"]),
            json!({"version-rolling.mask": "ffffffff", "version-rolling.min-bit-count": 2})
        ]
    );
    assert_eq!(sent[1].method(), Some("mining.subscribe"));
    assert_eq!(params(&sent[1]), vec![json!("test-agent/1")]);
    assert_eq!(c.phase(), Phase::Subscribing);
    assert!(c.start().is_empty());

    // The subscribe result may come first: configure's answer is not waited for.
    let out = c.handle_line(
        &line(json!({"id": request_id(&sent[1]), "result": [[["mining.notify", "ae6812eb4cd7735a302a8a9dd95cf71f"]], "08000002", 4], "error": null})),
        now,
    );
    assert!(events(&out).contains(&Sv1Event::Subscribed {
        extranonce1: vec![8, 0, 0, 2],
        extranonce2_size: 4
    }));
    let next = sends(&out);
    let methods: Vec<_> = next.iter().map(|m| m.method().unwrap()).collect();
    assert_eq!(
        methods,
        vec![
            "mining.authorize",
            "mining.extranonce.subscribe",
            "mining.suggest_difficulty"
        ]
    );
    assert_eq!(params(&next[0]), vec![json!("alice.rig1"), json!("pw")]);
    assert_eq!(params(&next[2]), vec![json!(64.0)]);
    assert_eq!(c.phase(), Phase::Authorizing);
    // Request ids are distinct numbers.
    let mut ids: Vec<u64> = sent.iter().chain(&next).map(request_id).collect();
    ids.dedup();
    assert_eq!(ids.len(), 5);

    let out = c.handle_line(
        &line(json!({"id": request_id(&sent[0]), "result": {"version-rolling": true, "version-rolling.mask": "1fffe000"}, "error": null})),
        now,
    );
    assert_eq!(
        events(&out),
        vec![Sv1Event::Configured {
            mask: Some(0x1fff_e000)
        }]
    );
    let out = c.handle_line(
        &line(json!({"id": request_id(&next[0]), "result": true, "error": null})),
        now,
    );
    assert_eq!(events(&out), vec![Sv1Event::Authorized]);
    assert_eq!(c.phase(), Phase::AwaitingJob);
    // Neither extranonce.subscribe nor suggest_difficulty answers are needed (SRI's translator
    // does not answer suggest_difficulty); late answers are absorbed silently.
    let out = c.handle_line(
        &line(json!({"id": request_id(&next[1]), "result": true, "error": null})),
        now,
    );
    assert!(out.is_empty());
}

#[test]
fn work_is_the_newest_job_with_the_granted_mask_and_target() {
    let now = Instant::now();
    let (c, w) = mining(Sv1Config::default(), "1fffe000", now);
    assert_eq!(c.phase(), Phase::Mining);
    assert_eq!(c.version_mask(), Some(0x1fff_e000));
    assert_eq!(w.job_id, "j1");
    assert_eq!(w.job.version_mask, 0x1fff_e000);
    assert_eq!(w.job.prev_hash, PREV);
    assert_eq!(
        (w.job.version, w.job.nbits, w.job.ntime),
        (VERSION, NBITS, NTIME)
    );
    assert_eq!(w.job.target.0, target_255());
    let sv2_engine::MerkleSource::Coinbase(cb) = &w.job.merkle else {
        panic!()
    };
    let (coinb1, coinb2) = coinbase_parts(false);
    assert_eq!((&cb.prefix, &cb.suffix), (&coinb1, &coinb2));
    assert_eq!(cb.extranonce_prefix, EN1.to_vec());
    assert_eq!(cb.extranonce_len, 4);
    assert_eq!(cb.merkle_path, BRANCH.to_vec());
}

#[test]
fn shares_are_submitted_with_version_bits_and_settled_by_responses() {
    let now = Instant::now();
    let (mut c, w) = mining(Sv1Config::default(), "1fffe000", now);
    let mut ids = Vec::new();
    for (i, version) in [VERSION, VERSION | 0x2000, VERSION | 0x1000_0000]
        .into_iter()
        .enumerate()
    {
        let s = find_share(&w, &[0, 0, 0, i as u8], version, &target_255(), true);
        let out = c.share_found(&s, now);
        let m = &sends(&out)[0];
        assert_eq!(m.method(), Some("mining.submit"));
        assert_eq!(
            params(m),
            vec![
                json!("sv2-mock.sv1"),
                json!("j1"),
                json!(format!("000000{i:02x}")),
                json!(format!("{NTIME:08x}")),
                json!(format!("{:08x}", s.nonce)),
                json!(format!("{:08x}", version & 0x1fff_e000)),
            ]
        );
        ids.push(request_id(m));
    }
    assert_eq!(c.outstanding(), 3);
    let out = c.handle_line(
        &line(json!({"id": ids[0], "result": true, "error": null})),
        now,
    );
    assert_eq!(
        events(&out),
        vec![Sv1Event::ShareAccepted {
            id: ids[0],
            job_id: "j1".into()
        }]
    );
    let out = c.handle_line(
        &line(json!({"id": ids[1], "result": null, "error": [23, "Low difficulty share", null]})),
        now,
    );
    assert!(matches!(
        &events(&out)[..],
        [Sv1Event::ShareRejected { error: Some(e), .. }] if e.code == 23
    ));
    let out = c.handle_line(
        &line(json!({"id": ids[2], "result": false, "error": null})),
        now,
    );
    assert!(matches!(
        &events(&out)[..],
        [Sv1Event::ShareRejected { error: None, .. }]
    ));
    let cnt = c.counters();
    assert_eq!((cnt.submitted, cnt.accepted, cnt.rejected), (3, 1, 2));
    assert_eq!(c.outstanding(), 0);
    // A response nobody waits for.
    let out = c.handle_line(
        &line(json!({"id": 999, "result": true, "error": null})),
        now,
    );
    assert_eq!(
        events(&out),
        vec![Sv1Event::UnexpectedResponse {
            id: Id::Number(999)
        }]
    );
}

#[test]
fn bad_shares_are_dropped_unless_faulty() {
    let now = Instant::now();
    let (mut c, w) = mining(Sv1Config::default(), "1fffe000", now);
    let dropped = |c: &mut Sv1Client, s: &Share| -> ShareProblem {
        let out = c.share_found(s, now);
        assert!(sends(&out).is_empty(), "{out:?}");
        match &events(&out)[..] {
            [Sv1Event::ShareDropped { problem, .. }] => problem.clone(),
            other => panic!("{other:?}"),
        }
    };
    let above = find_share(&w, &[0; 4], VERSION, &target_255(), false);
    assert_eq!(dropped(&mut c, &above), ShareProblem::AboveTarget);
    let good = find_share(&w, &[0; 4], VERSION, &target_255(), true);
    assert_eq!(sends(&c.share_found(&good, now)).len(), 1);
    assert_eq!(dropped(&mut c, &good), ShareProblem::Duplicate);
    // Bits outside the granted mask (0x1fffe000) although inside BIP323's.
    let outside = find_share(&w, &[0; 4], VERSION | 0x20, &[0xff; 32], true);
    assert!(matches!(
        dropped(&mut c, &outside),
        ShareProblem::VersionOutsideMask {
            mask: 0x1fff_e000,
            ..
        }
    ));
    let short = find_share(&w, &[0; 3], VERSION, &[0xff; 32], true);
    assert!(matches!(
        dropped(&mut c, &short),
        ShareProblem::ExtranonceLength {
            len: 3,
            expected: 4
        }
    ));
    let mut forged = find_share(&w, &[0, 0, 1, 0], VERSION, &target_255(), true);
    forged.nonce ^= 1;
    assert_eq!(dropped(&mut c, &forged), ShareProblem::HashMismatch);

    // clean_jobs = false keeps j1 valid; true makes it stale.
    c.handle_line(&notify("j2", false, false), now);
    let s = find_share(&w, &[0, 0, 2, 0], VERSION, &target_255(), true);
    assert_eq!(sends(&c.share_found(&s, now)).len(), 1);
    c.handle_line(&notify("j3", true, false), now);
    let s = find_share(&w, &[0, 0, 3, 0], VERSION, &target_255(), true);
    assert_eq!(dropped(&mut c, &s), ShareProblem::Stale);

    let (mut c, w) = mining(
        Sv1Config {
            faulty: true,
            ..Sv1Config::default()
        },
        "1fffe000",
        now,
    );
    let above = find_share(&w, &[0; 4], VERSION, &target_255(), false);
    let out = c.share_found(&above, now);
    assert_eq!(sends(&out).len(), 1);
    assert!(events(&out).iter().any(|e| matches!(
        e,
        Sv1Event::ShareSubmitted {
            problem: Some(ShareProblem::AboveTarget),
            ..
        }
    )));
}

#[test]
fn difficulty_mask_and_extranonce_changes() {
    let now = Instant::now();
    let (mut c, _) = mining(Sv1Config::default(), "1fffe000", now);
    // A harder difficulty: reissued work at the new target.
    let out = c.handle_line(
        &line(json!({"id": null, "method": "mining.set_difficulty", "params": [HALF * 2.0]})),
        now,
    );
    let w2 = works(&out).pop().unwrap();
    assert_eq!(w2.job.target.0[31], 0x40);
    // An easier one loosens the job only back to the target it was received at.
    let out = c.handle_line(
        &line(json!({"id": null, "method": "mining.set_difficulty", "params": [HALF / 2.0]})),
        now,
    );
    assert_eq!(c.target(), [0xff; 32]);
    assert_eq!(works(&out).pop().unwrap().job.target.0, target_255());

    let out = c.handle_line(
        &line(json!({"id": null, "method": "mining.set_version_mask", "params": ["00ff0000"]})),
        now,
    );
    assert!(events(&out).contains(&Sv1Event::VersionMaskChanged { mask: 0x00ff_0000 }));
    assert_eq!(works(&out).pop().unwrap().job.version_mask, 0x00ff_0000);

    // set_extranonce: the current job keeps its extranonce1, the next notify uses the new one.
    let out = c.handle_line(
        &line(json!({"id": null, "method": "mining.set_extranonce", "params": ["abcdef01", 4]})),
        now,
    );
    assert!(works(&out).is_empty());
    let out = c.handle_line(&notify("j2", true, false), now);
    let w = works(&out).pop().unwrap();
    let sv2_engine::MerkleSource::Coinbase(cb) = &w.job.merkle else {
        panic!()
    };
    assert_eq!(cb.extranonce_prefix, vec![0xab, 0xcd, 0xef, 0x01]);
}

#[test]
fn failures_and_refusals() {
    let now = Instant::now();
    // configure refused: no rolling, no version_bits in submits.
    let mut c = Sv1Client::new(Sv1Config::default());
    let sent = sends(&c.start());
    let out = c.handle_line(
        &line(json!({"id": request_id(&sent[0]), "result": null, "error": [-3, "Method 'mining.configure' not found for service 'mining'", null]})),
        now,
    );
    assert_eq!(events(&out), vec![Sv1Event::Configured { mask: None }]);
    assert_eq!(c.version_mask(), None);
    // Subscribe error: failed.
    let out = c.handle_line(
        &line(json!({"id": request_id(&sent[1]), "result": null, "error": [20, "busy", null]})),
        now,
    );
    assert!(matches!(
        &events(&out)[..],
        [Sv1Event::SubscribeFailed { error: Some(_), .. }]
    ));
    assert_eq!(c.phase(), Phase::Failed);

    // Authorize refused.
    let mut c = Sv1Client::new(Sv1Config {
        version_rolling: false,
        extranonce_subscribe: false,
        ..Sv1Config::default()
    });
    let sent = sends(&c.start());
    let out = c.handle_line(
        &line(json!({"id": request_id(&sent[0]), "result": [[], "00", 4], "error": null})),
        now,
    );
    let authorize = &sends(&out)[0];
    let out = c.handle_line(
        &line(json!({"id": request_id(authorize), "result": false, "error": null})),
        now,
    );
    assert!(matches!(
        &events(&out)[..],
        [Sv1Event::AuthorizeFailed { .. }]
    ));
    assert_eq!(c.phase(), Phase::Failed);
    // Jobs are not mined unauthorized.
    assert!(works(&c.handle_line(&notify("j", true, false), now)).is_empty());

    // A subscribe result of the wrong shape.
    let mut c = Sv1Client::new(Sv1Config::default());
    let sent = sends(&c.start());
    let out = c.handle_line(
        &line(json!({"id": request_id(&sent[1]), "result": {"a": 1}, "error": null})),
        now,
    );
    let e = events(&out);
    assert!(matches!(e[0], Sv1Event::Malformed { .. }));
    assert!(matches!(e[1], Sv1Event::SubscribeFailed { .. }));
}

#[test]
fn garbage_unknown_methods_and_server_requests() {
    let now = Instant::now();
    let (mut c, _) = mining(Sv1Config::default(), "1fffe000", now);
    for bad in [
        "not json",
        "[1,2,3]",
        r#"{"id":1}"#,
        r#"{"id":null,"method":"mining.notify","params":["j"]}"#,
        r#"{"id":null,"method":"mining.notify","params":{"a":1}}"#,
        r#"{"id":null,"method":"mining.set_difficulty","params":[-1]}"#,
        r#"{"id":null,"method":"mining.set_difficulty","params":["a lot"]}"#,
        r#"{"id":null,"method":"mining.set_version_mask","params":[12]}"#,
        r#"{"id":null,"method":"mining.set_extranonce","params":["zz",4]}"#,
        r#"{"id":null,"method":"mining.set_extranonce","params":["00",99]}"#,
    ] {
        let out = c.handle_line(bad, now);
        assert!(
            matches!(&events(&out)[..], [Sv1Event::Malformed { .. }]),
            "{bad}: {out:?}"
        );
        assert!(works(&out).is_empty());
    }
    assert!(c.handle_line("   ", now).is_empty());
    assert!(c.handle_line(&"\u{0}\u{ffff}".repeat(100), now).len() == 1);

    let out = c.handle_line(r#"{"id":null,"method":"mining.ping","params":[]}"#, now);
    assert_eq!(
        events(&out),
        vec![Sv1Event::UnknownMethod {
            method: "mining.ping".into()
        }]
    );
    assert!(sends(&out).is_empty());
    let out = c.handle_line(r#"{"id":"x7","method":"mining.ping","params":[]}"#, now);
    assert_eq!(
        sends(&out),
        vec![Sv1Message::error(
            Id::Text("x7".into()),
            -32601,
            "Method not found"
        )]
    );
    let out = c.handle_line(r#"{"id":5,"method":"client.get_version","params":[]}"#, now);
    assert_eq!(
        sends(&out),
        vec![Sv1Message::ok(Id::Number(5), json!(c.config().user_agent))]
    );
    let out = c.handle_line(
        r#"{"id":null,"method":"client.reconnect","params":["pool.example","3333",5]}"#,
        now,
    );
    assert_eq!(
        events(&out),
        vec![Sv1Event::Reconnect {
            host: Some("pool.example".into()),
            port: Some(3333),
            wait: Some(5)
        }]
    );
    let out = c.handle_line(
        r#"{"id":null,"method":"client.show_message","params":["hello"]}"#,
        now,
    );
    assert_eq!(
        events(&out),
        vec![Sv1Event::ShowMessage {
            text: "hello".into()
        }]
    );
    // A segwit coinbase is reported (and still mined).
    let out = c.handle_line(&notify("sw", true, true), now);
    assert!(events(&out)
        .iter()
        .any(|e| matches!(e, Sv1Event::SuspiciousCoinbase { job_id, .. } if job_id == "sw")));
    assert_eq!(works(&out).len(), 1);

    // A notify before the subscribe result.
    let mut fresh = Sv1Client::new(Sv1Config::default());
    fresh.start();
    let out = fresh.handle_line(&notify("early", true, false), now);
    assert!(matches!(&events(&out)[..], [Sv1Event::Malformed { .. }]));
}

#[test]
fn tick_moves_ntime_on() {
    let t0 = Instant::now();
    let (mut c, _) = mining(Sv1Config::default(), "1fffe000", t0);
    assert!(c.tick(t0 + Duration::from_secs(5)).is_empty());
    let out = c.tick(t0 + Duration::from_secs(40));
    let w = works(&out).pop().unwrap();
    assert_eq!(w.job.ntime, NTIME + 40);
    let s = find_share(&w, &[0; 4], VERSION, &target_255(), true);
    assert_eq!(
        sends(&c.share_found(&s, t0 + Duration::from_secs(40))).len(),
        1
    );
}

// ---------------------------------------------------------------------------------------------------
// The driver against a minimal SV1 server written here.

#[derive(Debug, Default)]
struct ServerLog {
    accepted: usize,
    rejected: Vec<String>,
    versions: Vec<u32>,
    methods: Vec<String>,
}

/// The server's own share check: its own prevhash/word decoding and header assembly.
fn server_check(p: &[Value], mask: u32) -> Result<u32, String> {
    let s = |i: usize| p.get(i).and_then(Value::as_str).ok_or(format!("param {i}"));
    if s(0)? != "rig.1" {
        return Err("unauthorized worker".into());
    }
    if s(1)? != "job-1" {
        return Err("job not found".into());
    }
    let en2 = hex::decode(s(2)?).map_err(|e| e.to_string())?;
    if en2.len() != 4 {
        return Err("extranonce2 size".into());
    }
    let ntime = u32::from_str_radix(s(3)?, 16).map_err(|e| e.to_string())?;
    let nonce = u32::from_str_radix(s(4)?, 16).map_err(|e| e.to_string())?;
    let bits = u32::from_str_radix(s(5)?, 16).map_err(|e| e.to_string())?;
    if bits & !mask != 0 {
        return Err("version bits outside the mask".into());
    }
    let version = (VERSION & !mask) | (bits & mask);
    if ntime != NTIME {
        return Err("ntime".into());
    }
    let hash = sha256d(&test_header(&en2, version, ntime, nonce));
    if hash[31] >= 0x80 && hash != target_255() {
        return Err("low difficulty".into());
    }
    Ok(version)
}

async fn sv1_server(listener: TcpListener, want: usize) -> ServerLog {
    let (stream, _) = listener.accept().await.unwrap();
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let mut log = ServerLog::default();
    let mask = 0x1fff_e000u32;
    while let Ok(Some(l)) = lines.next_line().await {
        let v: Value = serde_json::from_str(&l).unwrap();
        let id = v["id"].clone();
        let method = v["method"].as_str().unwrap_or_default().to_owned();
        log.methods.push(method.clone());
        let p = v["params"].as_array().cloned().unwrap_or_default();
        let mut replies = Vec::new();
        match method.as_str() {
            "mining.configure" => {
                assert_eq!(p[1]["version-rolling.mask"], json!("ffffffff"));
                replies.push(json!({"id": id, "result": {"version-rolling": true, "version-rolling.mask": format!("{mask:08x}")}, "error": null}));
            }
            "mining.subscribe" => replies.push(json!({"id": id, "result": [[["mining.set_difficulty", "1"], ["mining.notify", "1"]], hex::encode(EN1), 4], "error": null})),
            "mining.authorize" => {
                replies.push(json!({"id": id, "result": p[0] == json!("rig.1"), "error": null}));
                replies.push(json!({"id": null, "method": "mining.set_difficulty", "params": [HALF]}));
                let Value::Object(n) = serde_json::from_str::<Value>(&notify("job-1", true, false)).unwrap() else { unreachable!() };
                replies.push(Value::Object(n));
            }
            "mining.extranonce.subscribe" => replies.push(json!({"id": id, "result": true, "error": null})),
            "mining.submit" => match server_check(&p, mask) {
                Ok(version) => {
                    log.accepted += 1;
                    log.versions.push(version);
                    replies.push(json!({"id": id, "result": true, "error": null}));
                }
                Err(why) => {
                    log.rejected.push(why.clone());
                    replies.push(json!({"id": id, "result": null, "error": [20, why, null]}));
                }
            },
            other => panic!("unexpected {other}"),
        }
        for r in replies {
            let mut text = r.to_string();
            text.push('\n');
            if write.write_all(text.as_bytes()).await.is_err() {
                return log;
            }
        }
        if log.accepted >= want {
            // Keep reading until the client goes away, answering nothing more.
            while let Ok(Some(_)) = lines.next_line().await {}
            return log;
        }
    }
    log
}

// Assigned field by field: the engine's config may gain fields (they keep their defaults).
#[allow(clippy::field_reassign_with_default)]
fn engine() -> MinerConfig {
    // Small batches: at an easy target half the nonces are shares, each checked again (slowly in
    // a debug build), and hashes are counted per finished batch.
    let mut c = MinerConfig::default();
    c.threads = 2;
    c.backend = Backend::detect();
    c.batch = 64;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_driver_mines_shares_a_sv1_server_validates() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let want = 20;
    let server = tokio::spawn(sv1_server(listener, want));
    let mut config = Sv1DriverConfig::new(
        address,
        Sv1Config {
            user: "rig.1".into(),
            ..Sv1Config::default()
        },
    );
    config.engine = engine();
    config.max_shares_per_second = 1000;
    config.stats_interval = Duration::from_millis(50);
    let mut handle = driver::spawn(config);
    // Wait for the accepted shares through the live stats.
    let stats = tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            handle.stats.changed().await.unwrap();
            let s = handle.stats.borrow().clone();
            if s.accepted >= want as u64 {
                return s;
            }
        }
    })
    .await
    .expect("shares accepted");
    assert!(stats.connected);
    let report = handle.stop().await;
    assert!(report.stats.hashes > 0);
    assert_eq!(report.outcome.unwrap(), Sv1End::Shutdown);
    assert_eq!(report.stats.rejected, 0, "{:?}", report.events);
    assert!(report.stats.accepted >= want as u64);
    let log = server.await.unwrap();
    assert!(log.rejected.is_empty(), "{:?}", log.rejected);
    assert_eq!(log.accepted, want);
    assert!(log
        .versions
        .iter()
        .all(|v| (v ^ VERSION) & !0x1fff_e000 == 0));
    assert_eq!(
        &log.methods[..4],
        [
            "mining.configure",
            "mining.subscribe",
            "mining.authorize",
            "mining.extranonce.subscribe"
        ]
    );
    // The transcript has both directions.
    assert!(report
        .transcript
        .sv1_lines()
        .any(|(d, l)| d == Direction::ServerToClient && l.contains("mining.notify")));
    assert!(report
        .transcript
        .sv1_lines()
        .any(|(d, l)| d == Direction::ClientToServer && l.contains("mining.submit")));
    assert!(report
        .events
        .iter()
        .any(|(_, e)| matches!(e, Sv1Event::ShareAccepted { .. })));
}

#[tokio::test]
async fn driver_failures_name_their_step() {
    // Nobody listens.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    drop(listener);
    let mut config = Sv1DriverConfig::new(address, Sv1Config::default());
    config.engine = engine();
    let report = driver::spawn(config).join().await;
    assert!(
        matches!(report.outcome, Err(Sv1DriverError::Connect { .. })),
        "{:?}",
        report.outcome
    );

    // A server that never answers subscribe.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let silent = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut s, &mut buf).await;
        buf
    });
    let mut config = Sv1DriverConfig::new(address, Sv1Config::default());
    config.engine = engine();
    config.timeouts = Sv1Timeouts {
        subscribe: Duration::from_millis(300),
        ..Sv1Timeouts::default()
    };
    let report = driver::spawn(config).join().await;
    assert!(
        matches!(
            report.outcome,
            Err(Sv1DriverError::Timeout {
                step: "mining.subscribe",
                ..
            })
        ),
        "{:?}",
        report.outcome
    );
    let got = String::from_utf8(silent.await.unwrap()).unwrap();
    assert!(got.contains("mining.subscribe"));

    // A server that sends garbage, then refuses authorization, then closes.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            let v: Value = serde_json::from_str(&l).unwrap();
            let reply = match v["method"].as_str() {
                Some("mining.subscribe") => format!(
                    "\u{1}garbage\n{{\"id\":{},\"result\":[[],\"00\",4],\"error\":null}}\n",
                    v["id"]
                ),
                Some("mining.authorize") => format!(
                    "{{\"id\":{},\"result\":null,\"error\":[24,\"Unauthorized worker\",null]}}\n",
                    v["id"]
                ),
                _ => String::new(),
            };
            write.write_all(reply.as_bytes()).await.unwrap();
        }
    });
    let mut config = Sv1DriverConfig::new(
        address,
        Sv1Config {
            version_rolling: false,
            ..Sv1Config::default()
        },
    );
    config.engine = engine();
    let report = driver::spawn(config).join().await;
    assert!(
        matches!(&report.outcome, Err(Sv1DriverError::AuthorizeFailed(m)) if m.contains("Unauthorized")),
        "{:?}",
        report.outcome
    );
    assert!(report
        .events
        .iter()
        .any(|(_, e)| matches!(e, Sv1Event::Malformed { .. })));

    // A server whose line never ends.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let chunk = vec![b'a'; 64 * 1024];
        for _ in 0..40 {
            if stream.write_all(&chunk).await.is_err() {
                break;
            }
        }
        // Stay until the client leaves (closing first would reset its writes).
        let mut sink = Vec::new();
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut sink).await;
    });
    let mut config = Sv1DriverConfig::new(address, Sv1Config::default());
    config.engine = engine();
    let report = driver::spawn(config).join().await;
    assert!(
        matches!(report.outcome, Err(Sv1DriverError::LineTooLong { .. })),
        "{:?}",
        report.outcome
    );
}

// ---------------------------------------------------------------------------------------------------
// Hostile server: any lines, any shares, no panic.

mod hostile {
    use super::*;
    use proptest::prelude::*;

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            "[0-9a-f]{0,70}".prop_map(Value::from),
            ".{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..10).prop_map(Value::Array),
                proptest::collection::btree_map("[a-z.-]{1,20}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn method() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("mining.notify".to_owned()),
            Just("mining.set_difficulty".to_owned()),
            Just("mining.set_version_mask".to_owned()),
            Just("mining.set_extranonce".to_owned()),
            Just("client.reconnect".to_owned()),
            Just("client.show_message".to_owned()),
            Just("client.get_version".to_owned()),
            ".{0,20}",
        ]
    }

    fn line() -> impl Strategy<Value = String> {
        prop_oneof![
            // Notifications and requests with random params.
            3 => (method(), json_value(), prop::option::of(0u64..20)).prop_map(|(m, p, id)| {
                json!({"id": id, "method": m, "params": p}).to_string()
            }),
            // Responses to pending (or not) requests.
            3 => (0u64..12, json_value(), json_value()).prop_map(|(id, result, error)| {
                json!({"id": id, "result": result, "error": error}).to_string()
            }),
            // A valid job now and then.
            1 => (any::<bool>(), "[a-z0-9]{1,4}").prop_map(|(clean, id)| notify(&id, clean, false)),
            // Anything.
            1 => ".{0,200}",
        ]
    }

    #[derive(Debug, Clone)]
    enum Step {
        Line(String),
        Share {
            work: u64,
            nonce: u32,
            ntime: u32,
            version: u32,
            extranonce: Vec<u8>,
        },
        Tick(u64),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            6 => line().prop_map(Step::Line),
            2 => (0u64..8, any::<u32>(), any::<u32>(), any::<u32>(), proptest::collection::vec(any::<u8>(), 0..=32))
                .prop_map(|(work, nonce, ntime, version, extranonce)| Step::Share {
                    work,
                    nonce,
                    ntime,
                    version,
                    extranonce,
                }),
            1 => (0u64..100).prop_map(Step::Tick),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_server_lines_are_survived(
            mined_first in prop::bool::weighted(0.7),
            faulty in any::<bool>(),
            steps in proptest::collection::vec(step(), 0..40),
        ) {
            let t0 = Instant::now();
            let config = Sv1Config { faulty, ..Sv1Config::default() };
            let mut c = if mined_first {
                mining(config, "1fffe000", t0).0
            } else {
                let mut c = Sv1Client::new(config);
                c.start();
                c
            };
            for (i, s) in steps.into_iter().enumerate() {
                let now = t0 + Duration::from_millis(100 * i as u64);
                let out = match s {
                    Step::Line(l) => c.handle_line(&l, now),
                    Step::Share { work, nonce, ntime, version, extranonce } => c.share_found(
                        &Share {
                            job_id: work,
                            nonce,
                            ntime,
                            version,
                            extranonce: Extranonce::new(&extranonce).unwrap(),
                            merkle_root: [0; 32],
                            hash: [0; 32],
                        },
                        now,
                    ),
                    Step::Tick(secs) => c.tick(now + Duration::from_secs(secs)),
                };
                for o in &out {
                    match o {
                        Output::Work(w) => prop_assert!(w.job.validate().is_ok()),
                        Output::Send(m) => {
                            // Whatever the client sends is one line of valid JSON-RPC.
                            let line = m.to_line();
                            prop_assert!(!line.contains('\n'));
                            prop_assert!(Sv1Message::parse(&line).is_ok());
                        }
                        _ => {}
                    }
                }
            }
            let n = c.counters();
            prop_assert!(n.accepted + n.rejected <= n.submitted);
            if !faulty {
                prop_assert_eq!(n.submitted, 0);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Reconnects and hostile servers.

/// A server that answers the handshake like [`sv1_server`] (no job), then sends `extra` lines right
/// after the authorize result, and reads until the client goes away or answers the request "q1"
/// (what it read then ends the list).
async fn scripted_server(listener: TcpListener, extra: Vec<String>) -> Vec<String> {
    let (stream, _) = listener.accept().await.unwrap();
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let mut methods = Vec::new();
    while let Ok(Some(l)) = lines.next_line().await {
        let v: Value = serde_json::from_str(&l).unwrap();
        let id = v["id"].clone();
        if id == json!("q1") {
            methods.push(l);
            break;
        }
        let method = v["method"].as_str().unwrap_or_default().to_owned();
        methods.push(method.clone());
        let mut replies = match method.as_str() {
            "mining.configure" => vec![json!({"id": id, "result": {"version-rolling": true, "version-rolling.mask": "1fffe000"}, "error": null}).to_string()],
            "mining.subscribe" => vec![json!({"id": id, "result": [[], hex::encode(EN1), 4], "error": null}).to_string()],
            "mining.authorize" => vec![json!({"id": id, "result": true, "error": null}).to_string()],
            _ => vec![json!({"id": id, "result": true, "error": null}).to_string()],
        };
        if method == "mining.authorize" {
            replies.extend(extra.iter().cloned());
        }
        let mut text = replies.join("\n");
        text.push('\n');
        if write.write_all(text.as_bytes()).await.is_err() {
            break;
        }
    }
    methods
}

/// `client.reconnect` to another port of the same host is followed: a fresh session (configure,
/// subscribe, authorize) on the new server, which then gets valid shares; the counters go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_reconnect_to_the_same_host_is_followed() {
    let second = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let second_port = second.local_addr().unwrap().port();
    let want = 3;
    let second_server = tokio::spawn(sv1_server(second, want));
    let first = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = first.local_addr().unwrap().to_string();
    let reconnect =
        json!({"id": null, "method": "client.reconnect", "params": ["127.0.0.1", second_port, 0]});
    let first_server = tokio::spawn(scripted_server(first, vec![reconnect.to_string()]));

    let mut config = Sv1DriverConfig::new(
        address,
        Sv1Config {
            user: "rig.1".into(),
            ..Sv1Config::default()
        },
    );
    config.engine = engine();
    config.stats_interval = Duration::from_millis(50);
    let mut handle = driver::spawn(config);
    tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            handle.stats.changed().await.unwrap();
            if handle.stats.borrow().accepted >= want as u64 {
                return;
            }
        }
    })
    .await
    .expect("shares accepted by the second server");
    let report = handle.stop().await;
    assert_eq!(report.outcome.unwrap(), Sv1End::Shutdown);
    let first_methods = first_server.await.unwrap();
    assert!(first_methods.contains(&"mining.authorize".to_owned()));
    assert!(!first_methods.contains(&"mining.submit".to_owned()));
    let log = second_server.await.unwrap();
    assert_eq!(log.accepted, want);
    assert!(log.rejected.is_empty(), "{:?}", log.rejected);
    assert_eq!(
        &log.methods[..3],
        ["mining.configure", "mining.subscribe", "mining.authorize"]
    );
    assert!(report
        .events
        .iter()
        .any(|(_, e)| matches!(e, Sv1Event::Reconnect { port: Some(p), .. } if *p == second_port)));
}

/// Where a reconnect may go: the same host on any port; another host only when allowed; nowhere
/// once the allowance is used up.
#[tokio::test]
async fn client_reconnect_elsewhere_ends_the_run_unless_allowed() {
    use sv2_mock::sv1::driver::{reconnect_address, ReconnectPolicy};

    let policy = ReconnectPolicy::default();
    let here = "127.0.0.1:3333";
    assert_eq!(
        reconnect_address(here, None, None, policy).as_deref(),
        Some(here)
    );
    assert_eq!(
        reconnect_address(here, Some(""), Some(0), policy).as_deref(),
        Some(here)
    );
    assert_eq!(
        reconnect_address(here, Some("127.0.0.1"), Some(4444), policy).as_deref(),
        Some("127.0.0.1:4444")
    );
    assert_eq!(
        reconnect_address(here, Some("pool.example"), Some(1), policy),
        None
    );
    let anywhere = ReconnectPolicy {
        other_hosts: true,
        ..policy
    };
    assert_eq!(
        reconnect_address(here, Some("pool.example"), None, anywhere).as_deref(),
        Some("pool.example:3333")
    );
    assert_eq!(reconnect_address(here, Some("a b"), None, anywhere), None);

    // Over the network: a reconnect to another host ends the run, reported.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let elsewhere =
        json!({"id": null, "method": "client.reconnect", "params": ["pool.example", 3333, 1]});
    tokio::spawn(scripted_server(listener, vec![elsewhere.to_string()]));
    let mut config = Sv1DriverConfig::new(address, Sv1Config::default());
    config.engine = engine();
    let report = driver::spawn(config).join().await;
    assert_eq!(
        report.outcome.unwrap(),
        Sv1End::Reconnect {
            host: Some("pool.example".into()),
            port: Some(3333),
            wait: Some(1)
        }
    );
}

/// A server flooding notifications the client does not know, requests it must refuse, and a
/// malformed line, with nobody reading the live events: the session goes on (each unknown request
/// answered with an error), and the live event channel stays bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_flood_is_survived_with_bounded_live_events() {
    use sv2_mock::miner::runner::EVENT_CHANNEL_CAPACITY;

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let flood = 3 * EVENT_CHANNEL_CAPACITY;
    let mut extra: Vec<String> = (0..flood)
        .map(|i| {
            json!({"id": null, "method": format!("vendor.telemetry_{}", i % 7), "params": [i]})
                .to_string()
        })
        .collect();
    extra.push("{not json".into());
    extra.push(json!({"id": "q1", "method": "vendor.ask", "params": []}).to_string());
    let server = tokio::spawn(scripted_server(listener, extra));
    let mut config = Sv1DriverConfig::new(address, Sv1Config::default());
    config.engine = engine();
    config.event_limit = 100;
    let handle = driver::spawn(config);
    // The request after the flood is answered: the whole flood was read, and the session goes on.
    let read = tokio::time::timeout(Duration::from_secs(60), server)
        .await
        .expect("the flood was read and the request after it answered")
        .unwrap();
    let answer: Value = serde_json::from_str(read.last().unwrap()).unwrap();
    assert_eq!(answer["error"][0], json!(-32601), "{answer}");
    assert!(read.contains(&"mining.authorize".to_owned()));
    assert!(
        handle.events.len() <= EVENT_CHANNEL_CAPACITY,
        "{} live events held",
        handle.events.len()
    );
    assert!(handle.events.len() >= EVENT_CHANNEL_CAPACITY / 2);
    let report = handle.stop().await;
    assert!(
        matches!(
            report.outcome,
            Ok(Sv1End::Shutdown) | Err(Sv1DriverError::Closed { .. })
        ),
        "{:?}",
        report.outcome
    );
    assert!(report.events.len() <= 100);
    assert!(report
        .events
        .iter()
        .any(|(_, e)| matches!(e, Sv1Event::Malformed { .. })));
}
