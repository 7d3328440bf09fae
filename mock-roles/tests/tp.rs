//! The mock Template Provider's core, driven without sockets, with blocks checked again by rust-bitcoin.

use bitcoin::consensus::deserialize;
use sv2_chain::target::{compact_to_target, meets_target};
use sv2_chain::tx::{parse_outputs, Transaction, TxIn, TxOut};
use sv2_chain::{merkle, sha256d};
use sv2_codec::messages::common::SetupConnection;
use sv2_codec::messages::template_distribution::{
    CoinbaseOutputConstraints, NewTemplate, RequestTransactionData, SetNewPrevHashTdp,
    SubmitSolution,
};
use sv2_codec::types::{Str0_255, B0_64K};
use sv2_codec::Message;
use sv2_mock::tp::{Output, TemplateProvider, TpConfig};

const NOW: u32 = 1_700_000_000;

fn setup(protocol: u8, min: u16, max: u16) -> Message<'static> {
    SetupConnection {
        protocol,
        min_version: min,
        max_version: max,
        flags: 0,
        endpoint_host: Str0_255::new(b"127.0.0.1".to_vec()).unwrap(),
        endpoint_port: 8442,
        vendor: Str0_255::new(b"test".to_vec()).unwrap(),
        hardware_version: Str0_255::new(Vec::new()).unwrap(),
        firmware: Str0_255::new(Vec::new()).unwrap(),
        device_id: Str0_255::new(Vec::new()).unwrap(),
    }
    .into()
}

fn sent(outputs: &[Output]) -> Vec<Message<'static>> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send { message, .. } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

/// A TP with one session through setup and constraints; returns its template and prev hash messages.
fn ready(
    config: TpConfig,
) -> (
    TemplateProvider,
    u64,
    NewTemplate<'static>,
    SetNewPrevHashTdp,
) {
    let mut tp = TemplateProvider::new(config, NOW);
    let s = tp.open_session();
    let out = sent(&tp.handle(s, &setup(2, 2, 2), NOW));
    assert!(
        matches!(out[..], [Message::SetupConnectionSuccess(_)]),
        "{out:?}"
    );
    let constraints = CoinbaseOutputConstraints {
        coinbase_output_max_additional_size: 100,
        coinbase_output_max_additional_sigops: 4,
    };
    let out = sent(&tp.handle(s, &constraints.into(), NOW));
    let [Message::NewTemplate(t), Message::SetNewPrevHashTdp(p)] = &out[..] else {
        panic!("expected NewTemplate then SetNewPrevHash, got {out:?}");
    };
    assert!(t.future_template);
    assert_eq!(p.template_id, t.template_id);
    (tp, s, t.clone(), p.clone())
}

/// What a pool does with a template: its coinbase (prefix, extranonce, its payout first, then the
/// TP's outputs, the witness reserved value) and a nonce that meets the target.
struct Mined {
    coinbase: Transaction,
    version: u32,
    ntime: u32,
    nonce: u32,
}

fn mine(
    t: &NewTemplate<'_>,
    p: &SetNewPrevHashTdp,
    extranonce: &[u8],
    want_valid_pow: bool,
) -> Mined {
    let mut script_sig = t.coinbase_prefix.as_bytes().to_vec();
    script_sig.extend_from_slice(extranonce);
    let tp_outputs = parse_outputs(
        t.coinbase_tx_outputs.as_bytes(),
        t.coinbase_tx_outputs_count,
    )
    .unwrap();
    let mut outputs = vec![TxOut {
        value: t.coinbase_tx_value_remaining,
        script_pubkey: vec![0x51],
    }];
    outputs.extend(tp_outputs.iter().cloned());
    let segwit = !tp_outputs.is_empty();
    let coinbase = Transaction {
        version: t.coinbase_tx_version,
        inputs: vec![TxIn {
            prev_txid: [0; 32],
            prev_vout: u32::MAX,
            script_sig,
            sequence: t.coinbase_tx_input_sequence,
            witness: if segwit {
                vec![vec![0; 32]]
            } else {
                Vec::new()
            },
        }],
        outputs,
        lock_time: t.coinbase_tx_locktime,
    };
    let path: Vec<[u8; 32]> = t.merkle_path.iter().map(|h| h.0).collect();
    let root = merkle::root_from_path(&coinbase.txid(), &path);
    let target = compact_to_target(p.n_bits).unwrap();
    let version = t.version | 0x0000_4000; // a rolled bit inside BIP320's mask
    let ntime = p.header_timestamp + 1;
    for nonce in 0u32.. {
        let mut header = [0u8; 80];
        header[0..4].copy_from_slice(&version.to_le_bytes());
        header[4..36].copy_from_slice(&p.prev_hash.0);
        header[36..68].copy_from_slice(&root);
        header[68..72].copy_from_slice(&ntime.to_le_bytes());
        header[72..76].copy_from_slice(&p.n_bits.to_le_bytes());
        header[76..80].copy_from_slice(&nonce.to_le_bytes());
        if meets_target(&sha256d(&header), &target) == want_valid_pow {
            return Mined {
                coinbase,
                version,
                ntime,
                nonce,
            };
        }
    }
    unreachable!()
}

fn submit(template_id: u64, m: &Mined) -> Message<'static> {
    SubmitSolution {
        template_id,
        version: m.version,
        header_timestamp: m.ntime,
        header_nonce: m.nonce,
        coinbase_tx: B0_64K::new(m.coinbase.serialize(true)).unwrap(),
    }
    .into()
}

fn verdict(outputs: &[Output]) -> sv2_mock::tp::SolutionVerdict {
    outputs
        .iter()
        .find_map(|o| match o {
            Output::Solution { verdict, .. } => Some(verdict.clone()),
            _ => None,
        })
        .expect("a verdict")
}

#[test]
fn a_valid_solution_is_a_valid_block_for_rust_bitcoin_and_moves_the_tip() {
    let (mut tp, s, t, p) = ready(TpConfig::default());
    let height = tp.tip().height;
    let m = mine(&t, &p, b"\x00\x00\x00\x01extranonce", true);
    let out = tp.handle(s, &submit(t.template_id, &m), NOW + 5);
    let v = verdict(&out);
    assert!(v.valid, "{:?}", v.problems);
    assert!(v.pow_ok && v.current_tip);
    assert_eq!(v.height, Some(height));

    // The same block through rust-bitcoin: merkle root, witness commitment, BIP34 height, PoW.
    let block: bitcoin::Block = deserialize(v.block.as_ref().unwrap()).unwrap();
    assert!(block.check_merkle_root());
    assert!(block.check_witness_commitment());
    assert_eq!(block.bip34_block_height().unwrap(), u64::from(height));
    let target = bitcoin::Target::from_compact(bitcoin::CompactTarget::from_consensus(p.n_bits));
    block.header.validate_pow(target).unwrap();
    assert_eq!(
        block.block_hash().to_string(),
        v.block_hash.clone().unwrap()
    );
    assert_eq!(block.txdata.len(), 4);

    // The tip moved on that block, and the session got the next template and prev hash.
    assert_eq!(tp.tip().height, height + 1);
    let next = sent(&out);
    let [Message::NewTemplate(t2), Message::SetNewPrevHashTdp(p2)] = &next[..] else {
        panic!("{next:?}");
    };
    assert_eq!(p2.prev_hash.0, sha256d(&v.block.as_ref().unwrap()[..80]));
    assert!(t2.template_id > t.template_id);

    // The old template is now stale.
    let again = verdict(&tp.handle(s, &submit(t.template_id, &m), NOW + 6));
    assert!(!again.valid && !again.current_tip, "{again:?}");
    assert!(again.is_stale_only(), "{again:?}");
    assert!(!v.is_stale_only(), "a valid block is not stale");
}

#[test]
fn blocks_without_segwit_validate_too() {
    let mut config = TpConfig::default();
    config.params.segwit_every = 0;
    let (mut tp, s, t, p) = ready(config);
    assert_eq!(t.coinbase_tx_outputs_count, 0);
    let m = mine(&t, &p, b"xx", true);
    let v = verdict(&tp.handle(s, &submit(t.template_id, &m), NOW));
    assert!(v.valid, "{:?}", v.problems);
    let block: bitcoin::Block = deserialize(v.block.as_ref().unwrap()).unwrap();
    assert!(block.check_merkle_root());
}

#[test]
fn every_fault_in_a_solution_is_named() {
    let (mut tp, s, t, p) = ready(TpConfig {
        advance_on_block: false,
        ..TpConfig::default()
    });
    let good = mine(&t, &p, b"ab", true);
    let check = |tp: &mut TemplateProvider, template_id: u64, m: &Mined, expect: &str| {
        let v = verdict(&tp.handle(s, &submit(template_id, m), NOW));
        assert!(!v.valid, "expected a problem with {expect}");
        assert!(
            v.problems.iter().any(|p| p.contains(expect)),
            "{expect:?} not in {:?}",
            v.problems
        );
    };
    check(&mut tp, 999, &good, "unknown template_id");
    check(
        &mut tp,
        t.template_id,
        &mine(&t, &p, b"ab", false),
        "does not meet nBits",
    );

    let mut m = mine(&t, &p, b"ab", true);
    m.coinbase.inputs[0].script_sig[0] ^= 1;
    check(&mut tp, t.template_id, &m, "coinbase_prefix");

    let mut m = mine(&t, &p, b"ab", true);
    m.coinbase.outputs.pop();
    check(&mut tp, t.template_id, &m, "missing from the coinbase");

    let mut m = mine(&t, &p, b"ab", true);
    m.coinbase.outputs[0].value += 1;
    check(&mut tp, t.template_id, &m, "more than the");

    let mut m = mine(&t, &p, b"ab", true);
    m.coinbase.inputs[0].witness.clear();
    check(&mut tp, t.template_id, &m, "witness reserved value");

    let mut m = mine(&t, &p, b"ab", true);
    m.version ^= 0x8000_0000;
    check(&mut tp, t.template_id, &m, "outside the rolling mask");

    let mut m = mine(&t, &p, b"ab", true);
    m.ntime = p.header_timestamp - 1;
    check(&mut tp, t.template_id, &m, "before the minimum");

    let mut m = mine(&t, &p, b"ab", true);
    m.coinbase.inputs[0].sequence = 0;
    check(&mut tp, t.template_id, &m, "input sequence");

    let v = verdict(
        &tp.handle(
            s,
            &SubmitSolution {
                template_id: t.template_id,
                version: 0,
                header_timestamp: 0,
                header_nonce: 0,
                coinbase_tx: B0_64K::new(vec![1, 2, 3]).unwrap(),
            }
            .into(),
            NOW,
        ),
    );
    assert!(v.problems[0].contains("does not parse"), "{v:?}");
    // None of them moved the chain; the good one still validates.
    assert!(verdict(&tp.handle(s, &submit(t.template_id, &good), NOW)).valid);
    assert_eq!(tp.verdicts().len(), 11);
}

#[test]
fn transaction_data_is_served_for_current_templates_only() {
    let (mut tp, s, t, _) = ready(TpConfig::default());
    let ask = |tp: &mut TemplateProvider, id| {
        sent(&tp.handle(s, &RequestTransactionData { template_id: id }.into(), NOW))
    };
    let out = ask(&mut tp, t.template_id);
    let [Message::RequestTransactionDataSuccess(data)] = &out[..] else {
        panic!("{out:?}");
    };
    assert_eq!(data.excess_data.as_bytes(), [0u8; 32]);
    // The transactions rebuild the template's merkle path.
    let txids: Vec<[u8; 32]> = data
        .transaction_list
        .iter()
        .map(|b| Transaction::parse(b.as_bytes()).unwrap().txid())
        .collect();
    let path: Vec<[u8; 32]> = t.merkle_path.iter().map(|h| h.0).collect();
    assert_eq!(merkle::coinbase_path(&txids), path);

    let out = ask(&mut tp, 12345);
    assert!(
        matches!(&out[..], [Message::RequestTransactionDataError(e)] if e.error_code.as_bytes() == b"template-id-not-found"),
        "{out:?}"
    );
    tp.new_block(NOW + 600);
    let out = ask(&mut tp, t.template_id);
    assert!(
        matches!(&out[..], [Message::RequestTransactionDataError(e)] if e.error_code.as_bytes() == b"stale-template-id"),
        "{out:?}"
    );
}

#[test]
fn setup_is_checked_and_required_first() {
    let mut tp = TemplateProvider::new(TpConfig::default(), NOW);
    for (message, code) in [
        (setup(0, 2, 2), "unsupported-protocol"),
        (setup(2, 3, 4), "protocol-version-mismatch"),
    ] {
        let s = tp.open_session();
        let out = tp.handle(s, &message, NOW);
        assert!(
            matches!(&sent(&out)[..], [Message::SetupConnectionError(e)] if e.error_code.as_bytes() == code.as_bytes()),
            "{out:?}"
        );
        assert!(matches!(out.last(), Some(Output::Close { .. })));
        // A closed session answers nothing more.
        assert!(tp.handle(s, &setup(2, 2, 2), NOW).is_empty());
    }
    let s = tp.open_session();
    let out = tp.handle(s, &RequestTransactionData { template_id: 1 }.into(), NOW);
    assert!(
        matches!(&out[..], [Output::Close { reason, .. }] if reason.contains("SetupConnection"))
    );
}

#[test]
fn new_blocks_and_updates_reach_every_ready_session() {
    let (mut tp, s1, t, _) = ready(TpConfig::default());
    let s2 = tp.open_session();
    let out = tp.handle(s2, &setup(2, 2, 2), NOW);
    assert_eq!(sent(&out).len(), 1);
    // s2 has no template yet: only s1 hears of the new block.
    let out = tp.new_block(NOW + 1);
    assert!(out
        .iter()
        .all(|o| matches!(o, Output::Send { session, .. } if *session == s1)));
    assert_eq!(out.len(), 2);
    let update = tp.update_template();
    let msgs = sent(&update);
    let [Message::NewTemplate(u)] = &msgs[..] else {
        panic!("{msgs:?}");
    };
    assert!(!u.future_template);
    assert!(u.template_id > t.template_id + 1);
    assert_eq!(tp.blocks(), 1);
}

/// Hostile input: any sequence of arbitrary messages (every type of the codec, any field values), on
/// sessions set up or not, with blocks and template updates in between, never panics; solutions made of
/// random bytes are judged invalid, never valid.
#[test]
fn arbitrary_message_sequences_never_panic() {
    use arbitrary::{Arbitrary, Unstructured};
    use proptest::prelude::*;

    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(400));
    runner
        .run(&proptest::collection::vec(any::<u8>(), 64..4096), |bytes| {
            let mut u = Unstructured::new(&bytes);
            let mut tp = TemplateProvider::new(TpConfig::default(), NOW);
            let ready = tp.open_session();
            tp.handle(ready, &setup(2, 2, 2), NOW);
            let fresh = tp.open_session();
            let mut now = NOW;
            // Unstructured yields defaults once its bytes run out: stop there.
            while !u.is_empty() {
                let Ok(message) = Message::arbitrary(&mut u) else {
                    break;
                };
                let session = if u.arbitrary::<bool>().unwrap_or(false) {
                    ready
                } else {
                    fresh
                };
                now += u.int_in_range(0..=3).unwrap_or(0);
                for output in tp.handle(session, &message, now) {
                    if let Output::Solution { verdict, .. } = output {
                        // Random coinbase bytes cannot make a valid block for a real template.
                        prop_assert!(!verdict.valid, "{verdict:?}");
                    }
                }
                match u.int_in_range(0..=9).unwrap_or(0) {
                    0 => drop(tp.new_block(now)),
                    1 => drop(tp.update_template()),
                    _ => {}
                }
            }
            Ok(())
        })
        .unwrap();
}

/// RequestTransactionData for a template with segwit transactions: the list carries them with their
/// witnesses, and a block assembled from it alone (the pool's coinbase with the TP's outputs and the
/// excess_data as the coinbase witness, then the listed transactions) passes rust-bitcoin's merkle root
/// and BIP141 witness commitment checks.
#[test]
fn transaction_data_rebuilds_a_segwit_block_that_rust_bitcoin_accepts() {
    use bitcoin::hashes::Hash;

    let mut config = TpConfig::default();
    config.params.transactions = 7;
    config.params.segwit_every = 3;
    let (mut tp, s, t, p) = ready(config);
    let out = sent(
        &tp.handle(
            s,
            &RequestTransactionData {
                template_id: t.template_id,
            }
            .into(),
            NOW,
        ),
    );
    let [Message::RequestTransactionDataSuccess(data)] = &out[..] else {
        panic!("{out:?}");
    };
    assert_eq!(data.template_id, t.template_id);
    let listed: Vec<bitcoin::Transaction> = data
        .transaction_list
        .iter()
        .map(|b| deserialize(b.as_bytes()).expect("rust-bitcoin parses every listed transaction"))
        .collect();
    assert_eq!(listed.len(), 7);
    // Transactions 0, 3 and 6 carry witnesses, the others none.
    let with_witness: Vec<usize> = listed
        .iter()
        .enumerate()
        .filter(|(_, tx)| tx.input.iter().any(|i| !i.witness.is_empty()))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(with_witness, [0, 3, 6]);

    // The commitment in the TP's outputs is BIP141's over the listed wtxids and excess_data.
    let reserved: [u8; 32] = data.excess_data.as_bytes().try_into().expect("32 bytes");
    let mut wleaves = vec![bitcoin::WitnessMerkleNode::all_zeros()];
    wleaves.extend(
        listed.iter().map(|tx| {
            bitcoin::WitnessMerkleNode::from_byte_array(tx.compute_wtxid().to_byte_array())
        }),
    );
    let wroot = bitcoin::merkle_tree::calculate_root(wleaves.into_iter()).unwrap();
    let commitment = bitcoin::Block::compute_witness_commitment(&wroot, &reserved);
    let outputs = parse_outputs(
        t.coinbase_tx_outputs.as_bytes(),
        t.coinbase_tx_outputs_count,
    )
    .unwrap();
    let mut expected_script = vec![0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed];
    expected_script.extend_from_slice(&commitment.to_byte_array());
    assert!(
        outputs.iter().any(|o| o.script_pubkey == expected_script),
        "{outputs:?}"
    );

    // A block from the pool's side alone: header, coinbase, the listed transactions.
    let m = mine(&t, &p, b"pool", true);
    assert_eq!(m.coinbase.inputs[0].witness, [reserved.to_vec()]);
    let mut header = Vec::with_capacity(80);
    header.extend_from_slice(&m.version.to_le_bytes());
    header.extend_from_slice(&p.prev_hash.0);
    let mut txids = vec![m.coinbase.txid()];
    txids.extend(listed.iter().map(|tx| tx.compute_txid().to_byte_array()));
    header.extend_from_slice(&merkle::root(&txids));
    header.extend_from_slice(&m.ntime.to_le_bytes());
    header.extend_from_slice(&p.n_bits.to_le_bytes());
    header.extend_from_slice(&m.nonce.to_le_bytes());
    let mut block_bytes = header;
    block_bytes.push(1 + listed.len() as u8);
    block_bytes.extend_from_slice(&m.coinbase.serialize(true));
    for raw in data.transaction_list.iter() {
        block_bytes.extend_from_slice(raw.as_bytes());
    }
    let block: bitcoin::Block = deserialize(&block_bytes).unwrap();
    assert!(block.check_merkle_root());
    assert!(block.check_witness_commitment());
    // And it is the block the TP itself assembles from the same solution.
    let v = verdict(&tp.handle(s, &submit(t.template_id, &m), NOW));
    assert!(v.valid, "{:?}", v.problems);
    assert_eq!(v.block.as_deref(), Some(&block_bytes[..]));
}

/// A peer flooding SubmitSolution: every one is checked and counted, but the TP keeps only the most
/// recent verdicts (each holds a whole block), so its memory does not grow with the flood.
#[test]
fn a_flood_of_solutions_is_counted_but_not_all_kept() {
    use sv2_mock::tp::MAX_VERDICTS_KEPT;

    let (mut tp, s, t, _) = ready(TpConfig::default());
    let total = 3 * MAX_VERDICTS_KEPT + 7;
    for i in 0..total {
        let solution = SubmitSolution {
            template_id: t.template_id,
            version: 0,
            header_timestamp: NOW,
            header_nonce: i as u32,
            coinbase_tx: B0_64K::new(vec![0xab; 1000]).unwrap(),
        };
        tp.handle(s, &solution.into(), NOW);
    }
    assert_eq!(tp.solutions_checked(), total as u64);
    let kept = tp.verdicts();
    assert!(
        (MAX_VERDICTS_KEPT..=2 * MAX_VERDICTS_KEPT).contains(&kept.len()),
        "{} verdicts kept",
        kept.len()
    );
    // The latest are the ones kept: the flood's last solution is the last verdict.
    assert!(kept.iter().all(|v| !v.valid));
    assert_eq!(kept.last().unwrap().template_id, t.template_id);
}

/// The TP on the network: blocks come on its timer and on demand ([`TpHandle::new_block`]), each as a
/// future NewTemplate and a SetNewPrevHash on a new prev hash, one height up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_come_on_the_timer_and_on_demand_over_the_network() {
    use std::time::Duration;
    use sv2_codec::noise::keys::Keypair;
    use sv2_mock::tp::driver::{serve, TpServerConfig};
    use sv2_wire::{Connection, Side};
    use tokio::net::{TcpListener, TcpStream};

    const STEP: Duration = Duration::from_secs(10);
    let mut config = TpServerConfig::new(Keypair::generate().unwrap()).unwrap();
    config.authority = None;
    config.block_interval = Some(Duration::from_millis(400));
    let tp = serve(TcpListener::bind("127.0.0.1:0").await.unwrap(), config).unwrap();
    let mut conn = Connection::plaintext(TcpStream::connect(tp.addr).await.unwrap(), Side::Client);

    /// The next NewTemplate and SetNewPrevHash: (template, prev hash).
    async fn next_block(
        conn: &mut Connection<TcpStream>,
    ) -> (NewTemplate<'static>, SetNewPrevHashTdp) {
        use sv2_codec::types::IntoStatic;
        let got = conn.recv("NewTemplate", STEP).await.unwrap();
        let Message::NewTemplate(t) = got.message else {
            panic!("{:?}", got.message);
        };
        let t = t.into_static();
        let got = conn.recv("SetNewPrevHash", STEP).await.unwrap();
        let Message::SetNewPrevHashTdp(p) = got.message else {
            panic!("{:?}", got.message);
        };
        assert!(t.future_template);
        assert_eq!(p.template_id, t.template_id);
        (t, p)
    }

    conn.send(&setup(2, 2, 2)).await.unwrap();
    let got = conn.recv("SetupConnection.Success", STEP).await.unwrap();
    assert!(matches!(got.message, Message::SetupConnectionSuccess(_)));
    let constraints = CoinbaseOutputConstraints {
        coinbase_output_max_additional_size: 100,
        coinbase_output_max_additional_sigops: 4,
    };
    conn.send(&constraints.into()).await.unwrap();
    let (t0, p0) = next_block(&mut conn).await;
    let h0 = sv2_chain::script::read_bip34_height(t0.coinbase_prefix.as_bytes())
        .unwrap()
        .0;

    // Two timer blocks, each on a new prev hash, one height up.
    let (t1, p1) = next_block(&mut conn).await;
    let (t2, p2) = next_block(&mut conn).await;
    let heights: Vec<u32> = [&t1, &t2]
        .iter()
        .map(|t| {
            sv2_chain::script::read_bip34_height(t.coinbase_prefix.as_bytes())
                .unwrap()
                .0
        })
        .collect();
    assert_eq!(heights, [h0 + 1, h0 + 2]);
    assert!(p0.prev_hash != p1.prev_hash && p1.prev_hash != p2.prev_hash);

    // On demand: the height moves at once, and the session hears of a new block.
    let before = tp.height();
    tp.new_block();
    assert!(tp.height() > before);
    let (t3, _) = next_block(&mut conn).await;
    let h3 = sv2_chain::script::read_bip34_height(t3.coinbase_prefix.as_bytes())
        .unwrap()
        .0;
    assert!(h3 > h0 + 2, "{h3} after {h0}");
}

/// `new_block_announced`: the future template now, its SetNewPrevHash only after the gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_announced_block_sends_the_prev_hash_after_the_gap() {
    use std::time::Duration;
    use sv2_codec::noise::keys::Keypair;
    use sv2_mock::tp::driver::{serve, TpServerConfig};
    use sv2_wire::{Connection, NetError, Side};
    use tokio::net::{TcpListener, TcpStream};

    const STEP: Duration = Duration::from_secs(10);
    let mut config = TpServerConfig::new(Keypair::generate().unwrap()).unwrap();
    config.authority = None;
    let tp = serve(TcpListener::bind("127.0.0.1:0").await.unwrap(), config).unwrap();
    let mut conn = Connection::plaintext(TcpStream::connect(tp.addr).await.unwrap(), Side::Client);
    conn.send(&setup(2, 2, 2)).await.unwrap();
    conn.recv("SetupConnection.Success", STEP).await.unwrap();
    let constraints = CoinbaseOutputConstraints {
        coinbase_output_max_additional_size: 100,
        coinbase_output_max_additional_sigops: 4,
    };
    conn.send(&constraints.into()).await.unwrap();
    conn.recv("NewTemplate", STEP).await.unwrap();
    conn.recv("SetNewPrevHash", STEP).await.unwrap();

    let announce = {
        let tp = std::sync::Arc::new(tp);
        let handle = tp.clone();
        (
            tokio::spawn(
                async move { handle.new_block_announced(Duration::from_millis(800)).await },
            ),
            tp,
        )
    };
    let got = conn.recv("NewTemplate", STEP).await.unwrap();
    let Message::NewTemplate(t) = got.message else {
        panic!("{:?}", got.message);
    };
    assert!(t.future_template);
    // Nothing more during the gap...
    assert!(matches!(
        conn.recv("during the gap", Duration::from_millis(300))
            .await,
        Err(NetError::Timeout { .. })
    ));
    // ...then the prev hash that activates it.
    let got = conn.recv("SetNewPrevHash", STEP).await.unwrap();
    let Message::SetNewPrevHashTdp(p) = got.message else {
        panic!("{:?}", got.message);
    };
    assert_eq!(p.template_id, t.template_id);
    announce.0.await.unwrap();
}
