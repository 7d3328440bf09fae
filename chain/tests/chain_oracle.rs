//! The chain module against rust-bitcoin, an independent implementation of the same consensus rules:
//! transaction serialization and ids, merkle roots, witness commitments, compact targets.

use bitcoin::consensus::{deserialize, serialize};
use bitcoin::hashes::Hash;
use proptest::prelude::*;
use sv2_chain::{merkle, target, tx::Transaction, tx::TxIn, tx::TxOut};

fn arb_tx() -> impl Strategy<Value = Transaction> {
    let input = (
        any::<[u8; 32]>(),
        any::<u32>(),
        prop::collection::vec(any::<u8>(), 0..300),
        any::<u32>(),
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..80), 0..4),
    )
        .prop_map(
            |(prev_txid, prev_vout, script_sig, sequence, witness)| TxIn {
                prev_txid,
                prev_vout,
                script_sig,
                sequence,
                witness,
            },
        );
    let output = (any::<u64>(), prop::collection::vec(any::<u8>(), 0..300)).prop_map(
        |(value, script_pubkey)| TxOut {
            value,
            script_pubkey,
        },
    );
    (
        any::<u32>(),
        prop::collection::vec(input, 1..5),
        prop::collection::vec(output, 0..5),
        any::<u32>(),
    )
        .prop_map(|(version, inputs, outputs, lock_time)| Transaction {
            version,
            inputs,
            outputs,
            lock_time,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn transactions_serialize_and_hash_as_rust_bitcoin(tx in arb_tx()) {
        let bytes = tx.serialize(true);
        let theirs: bitcoin::Transaction = deserialize(&bytes).expect("rust-bitcoin parses ours");
        prop_assert_eq!(serialize(&theirs), bytes.clone());
        prop_assert_eq!(theirs.compute_txid().to_byte_array(), tx.txid());
        prop_assert_eq!(theirs.compute_wtxid().to_byte_array(), tx.wtxid());
        prop_assert_eq!(Transaction::parse(&bytes).unwrap(), tx);
    }

    #[test]
    fn what_we_accept_rust_bitcoin_accepts_alike(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(ours) = Transaction::parse(&bytes) {
            let theirs: bitcoin::Transaction = deserialize(&bytes).expect("rust-bitcoin parses what we parse");
            prop_assert_eq!(theirs.compute_txid().to_byte_array(), ours.txid());
        }
    }

    #[test]
    fn merkle_roots_and_commitments_agree(leaves in prop::collection::vec(any::<[u8; 32]>(), 1..40), reserved in any::<[u8; 32]>()) {
        let nodes = leaves.iter().map(|l| bitcoin::TxMerkleNode::from_byte_array(*l));
        let theirs = bitcoin::merkle_tree::calculate_root(nodes).unwrap();
        prop_assert_eq!(theirs.to_byte_array(), merkle::root(&leaves));
        prop_assert_eq!(merkle::root_from_path(&leaves[0], &merkle::coinbase_path(&leaves[1..])), merkle::root(&leaves));

        let mut wleaves = vec![[0u8; 32]];
        wleaves.extend_from_slice(&leaves);
        let wnodes = wleaves.iter().map(|l| bitcoin::WitnessMerkleNode::from_byte_array(*l));
        let wroot = bitcoin::merkle_tree::calculate_root(wnodes).unwrap();
        let commitment = bitcoin::Block::compute_witness_commitment(&wroot, &reserved);
        prop_assert_eq!(commitment.to_byte_array(), merkle::witness_commitment(&leaves, &reserved));
    }

    #[test]
    fn compact_targets_agree(nbits in any::<u32>()) {
        if let Ok(ours) = target::compact_to_target(nbits) {
            let theirs = bitcoin::Target::from_compact(bitcoin::CompactTarget::from_consensus(nbits));
            prop_assert_eq!(theirs.to_le_bytes(), ours);
            prop_assert_eq!(
                bitcoin::Target::from_le_bytes(ours).to_compact_lossy().to_consensus(),
                target::target_to_compact(&ours)
            );
        }
    }

    #[test]
    fn targets_from_any_256_bit_value_compact_alike(value in any::<[u8; 32]>()) {
        prop_assert_eq!(
            bitcoin::Target::from_le_bytes(value).to_compact_lossy().to_consensus(),
            target::target_to_compact(&value)
        );
    }
}
