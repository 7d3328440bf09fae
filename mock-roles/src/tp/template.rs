//! Coherent block templates: a BIP34 height in the coinbase prefix, synthetic transactions (some of them
//! segwit) with fees, the value remaining, the witness commitment output, and the coinbase's merkle path.

use sv2_chain::script::{bip34_height, p2wpkh, witness_commitment_script};
use sv2_chain::tx::{serialize_outputs, Transaction, TxIn, TxOut};
use sv2_chain::{merkle, sha256d};

/// What a template needs from the chain tip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tip {
    /// Height of the block being built.
    pub height: u32,
    /// Hash of the previous block (internal byte order).
    pub prev_hash: [u8; 32],
    /// nBits of the block being built.
    pub nbits: u32,
    /// Earliest acceptable header time (the TP sends it as SetNewPrevHash.header_timestamp).
    pub min_ntime: u32,
}

/// Parameters of the templates a mock TP builds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateParams {
    /// Block version (BIP9 top bits 001 and no signalling: 0x20000000).
    pub version: u32,
    /// Coinbase transaction version.
    pub coinbase_tx_version: u32,
    /// Coinbase input nSequence.
    pub coinbase_input_sequence: u32,
    /// Coinbase nLockTime.
    pub coinbase_locktime: u32,
    /// Synthetic transactions per template.
    pub transactions: usize,
    /// Every `segwit_every`-th synthetic transaction carries a witness (0: none does).
    pub segwit_every: usize,
    /// Blocks per halving of the 50 BTC subsidy (regtest: 150, mainnet: 210,000).
    pub halving_interval: u32,
}

impl Default for TemplateParams {
    fn default() -> Self {
        Self {
            version: 0x2000_0000,
            coinbase_tx_version: 2,
            coinbase_input_sequence: u32::MAX,
            coinbase_locktime: 0,
            transactions: 3,
            segwit_every: 2,
            halving_interval: 150,
        }
    }
}

/// The block subsidy at `height`.
pub fn subsidy(height: u32, halving_interval: u32) -> u64 {
    let halvings = height / halving_interval.max(1);
    if halvings >= 64 {
        0
    } else {
        5_000_000_000u64 >> halvings
    }
}

/// A template, with everything the TP must remember to answer RequestTransactionData and to check a
/// SubmitSolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// Its id.
    pub id: u64,
    /// The tip it builds on.
    pub tip: Tip,
    /// Block version.
    pub version: u32,
    /// Coinbase transaction version.
    pub coinbase_tx_version: u32,
    /// The start of the coinbase scriptSig: the BIP34 height.
    pub coinbase_prefix: Vec<u8>,
    /// Coinbase input nSequence.
    pub coinbase_input_sequence: u32,
    /// Subsidy plus fees, less what the TP's own outputs take.
    pub coinbase_value_remaining: u64,
    /// Outputs the coinbase must carry (the witness commitment when there are segwit transactions).
    pub coinbase_outputs: Vec<TxOut>,
    /// Coinbase nLockTime.
    pub coinbase_locktime: u32,
    /// The transactions after the coinbase, in block order.
    pub transactions: Vec<Transaction>,
    /// Their fees (synthetic: the inputs are made up, so the fee is asserted, not computed).
    pub fees: u64,
    /// The coinbase's merkle path.
    pub merkle_path: Vec<[u8; 32]>,
    /// The witness reserved value (the coinbase's witness), sent as excess_data.
    pub witness_reserved_value: [u8; 32],
}

impl Template {
    /// Builds a template on `tip`. `seed` makes its synthetic transactions differ between templates.
    pub fn build(id: u64, tip: Tip, params: &TemplateParams, seed: u64) -> Self {
        let mut transactions = Vec::with_capacity(params.transactions);
        let mut fees = 0u64;
        for i in 0..params.transactions {
            let segwit = params.segwit_every != 0 && i % params.segwit_every == 0;
            let fee = 1_000 + 137 * i as u64;
            transactions.push(synthetic_transaction(seed, tip.height, i, segwit));
            fees += fee;
        }
        let txids: Vec<[u8; 32]> = transactions.iter().map(Transaction::txid).collect();
        let merkle_path = merkle::coinbase_path(&txids);
        let witness_reserved_value = [0u8; 32];
        let mut coinbase_outputs = Vec::new();
        if transactions.iter().any(Transaction::has_witness) {
            let wtxids: Vec<[u8; 32]> = transactions.iter().map(Transaction::wtxid).collect();
            let commitment = merkle::witness_commitment(&wtxids, &witness_reserved_value);
            coinbase_outputs.push(TxOut {
                value: 0,
                script_pubkey: witness_commitment_script(&commitment),
            });
        }
        let outputs_value: u64 = coinbase_outputs.iter().map(|o| o.value).sum();
        let value = subsidy(tip.height, params.halving_interval) + fees;
        Self {
            id,
            version: params.version,
            coinbase_tx_version: params.coinbase_tx_version,
            coinbase_prefix: bip34_height(tip.height),
            coinbase_input_sequence: params.coinbase_input_sequence,
            coinbase_value_remaining: value.saturating_sub(outputs_value),
            coinbase_outputs,
            coinbase_locktime: params.coinbase_locktime,
            transactions,
            fees,
            merkle_path,
            witness_reserved_value,
            tip,
        }
    }

    /// True when any transaction carries a witness (the coinbase then needs the commitment and its
    /// reserved value).
    pub fn is_segwit(&self) -> bool {
        self.transactions.iter().any(Transaction::has_witness)
    }

    /// The coinbase outputs in SV2's `coinbase_tx_outputs` form (back to back, no count).
    pub fn coinbase_outputs_bytes(&self) -> Vec<u8> {
        serialize_outputs(&self.coinbase_outputs)
    }

    /// The transactions as serialized in a block (with witness).
    pub fn transaction_bytes(&self) -> Vec<Vec<u8>> {
        self.transactions
            .iter()
            .map(|t| t.serialize(true))
            .collect()
    }
}

/// A well-formed transaction spending a made-up outpoint to a P2WPKH output; its witness (when
/// `segwit`) is a fake signature and key of realistic sizes.
fn synthetic_transaction(seed: u64, height: u32, index: usize, segwit: bool) -> Transaction {
    let mut material = Vec::with_capacity(20);
    material.extend_from_slice(&seed.to_le_bytes());
    material.extend_from_slice(&height.to_le_bytes());
    material.extend_from_slice(&(index as u64).to_le_bytes());
    let prev_txid = sha256d(&material);
    let mut hash160 = [0u8; 20];
    hash160.copy_from_slice(&sha256d(&prev_txid)[..20]);
    let witness = if segwit {
        let mut signature = vec![0x30; 71];
        signature.push(0x01);
        let mut key = vec![0x02];
        key.extend_from_slice(&prev_txid);
        vec![signature, key]
    } else {
        Vec::new()
    };
    Transaction {
        version: 2,
        inputs: vec![TxIn {
            prev_txid,
            prev_vout: index as u32,
            script_sig: if segwit { Vec::new() } else { vec![0x51; 20] },
            sequence: 0xffff_fffd,
            witness,
        }],
        outputs: vec![TxOut {
            value: 10_000 + index as u64,
            script_pubkey: p2wpkh(&hash160),
        }],
        lock_time: height.saturating_sub(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sv2_chain::script::read_bip34_height;

    fn tip() -> Tip {
        Tip {
            height: 200,
            prev_hash: [3; 32],
            nbits: 0x207f_ffff,
            min_ntime: 1_700_000_000,
        }
    }

    #[test]
    fn templates_are_coherent() {
        let t = Template::build(1, tip(), &TemplateParams::default(), 9);
        // 200 = 0xc8 has its top bit set: a sign byte follows (02 c8 00).
        assert_eq!(t.coinbase_prefix, [0x02, 0xc8, 0x00]);
        assert_eq!(read_bip34_height(&t.coinbase_prefix), Some((200, 3)));
        assert_eq!(t.transactions.len(), 3);
        assert!(t.is_segwit());
        assert_eq!(t.coinbase_outputs.len(), 1);
        // Subsidy at 200 with regtest halvings (150): 25 BTC, plus fees.
        assert_eq!(t.coinbase_value_remaining, 2_500_000_000 + t.fees);
        assert_eq!(t.merkle_path.len(), 2);
        // The path and the transactions give the same root whatever the coinbase.
        let coinbase = [7u8; 32];
        let mut leaves = vec![coinbase];
        leaves.extend(t.transactions.iter().map(Transaction::txid));
        assert_eq!(
            merkle::root_from_path(&coinbase, &t.merkle_path),
            merkle::root(&leaves)
        );
        // Every transaction serializes and parses back.
        for bytes in t.transaction_bytes() {
            Transaction::parse(&bytes).unwrap();
        }
    }

    #[test]
    fn without_segwit_there_is_no_commitment() {
        let params = TemplateParams {
            segwit_every: 0,
            ..TemplateParams::default()
        };
        let t = Template::build(1, tip(), &params, 9);
        assert!(!t.is_segwit());
        assert!(t.coinbase_outputs.is_empty());
        let empty = TemplateParams {
            transactions: 0,
            ..params
        };
        assert!(Template::build(2, tip(), &empty, 9).merkle_path.is_empty());
    }

    #[test]
    fn subsidy_halves() {
        assert_eq!(subsidy(0, 150), 5_000_000_000);
        assert_eq!(subsidy(150, 150), 2_500_000_000);
        assert_eq!(subsidy(840_000, 210_000), 312_500_000);
        assert_eq!(subsidy(u32::MAX, 1), 0);
    }
}
