//! Checking a SubmitSolution as a full block: the coinbase against its template, the block's merkle root
//! from all its transactions, the witness commitment, the header's version and time, proof of work.

use serde::Serialize;
use sv2_codec::messages::template_distribution::SubmitSolution;

use sv2_chain::script::{read_bip34_height, read_witness_commitment};
use sv2_chain::target::{compact_to_target, meets_target};
use sv2_chain::tx::{write_compact_size, Transaction};
use sv2_chain::{display_hex, merkle, sha256d};
use sv2_engine::BlockHeader;

use super::template::Template;

/// The version bits a miner may roll: the 24 general-purpose bits 5..=28 of BIP323, as the spec says
/// (§5 intro: "version header field (24 bits, as specified by BIP 323)"; §7.7 SubmitSolution), and as
/// SRI's translator grants them to SV1 miners ("1fffffe0"). BIP320's older 16-bit mask 0x1fffe000 is a
/// subset.
pub const VERSION_ROLLING_MASK: u32 = 0x1fff_ffe0;

/// How far in the future a header time may be (Bitcoin Core: two hours).
pub const MAX_FUTURE_SECS: u32 = 2 * 60 * 60;

/// What the TP concluded about one SubmitSolution.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SolutionVerdict {
    /// The template it names.
    pub template_id: u64,
    /// The template's height, when the template is known.
    pub height: Option<u32>,
    /// The block hash in display order, when the header could be built.
    pub block_hash: Option<String>,
    /// Proof of work meets the template's nBits.
    pub pow_ok: bool,
    /// The whole block is valid: no problem found.
    pub valid: bool,
    /// It built on the tip that was current when it arrived.
    pub current_tip: bool,
    /// Every problem found, in words.
    pub problems: Vec<String>,
    /// The assembled block (header, transaction count, coinbase, transactions), when it could be built.
    #[serde(skip)]
    pub block: Option<Vec<u8>>,
}

impl SolutionVerdict {
    /// A well-formed block that lost a race: everything checks out except that another block moved
    /// the tip first (two solutions for one template on regtest, for instance).
    pub fn is_stale_only(&self) -> bool {
        self.pow_ok && !self.current_tip && self.problems.len() == 1
    }
}

/// Checks a solution for `template`. `now` is unix seconds; `current_prev_hash` is the tip the TP
/// builds on now.
pub fn check(
    template: Option<&Template>,
    solution: &SubmitSolution<'_>,
    current_prev_hash: &[u8; 32],
    now: u32,
) -> SolutionVerdict {
    let template_id = solution.template_id;
    let version = solution.version;
    let header_timestamp = solution.header_timestamp;
    let header_nonce = solution.header_nonce;
    let coinbase_tx = solution.coinbase_tx.as_bytes();
    let mut verdict = SolutionVerdict {
        template_id,
        height: None,
        block_hash: None,
        pow_ok: false,
        valid: false,
        current_tip: false,
        problems: Vec::new(),
        block: None,
    };
    let Some(template) = template else {
        verdict
            .problems
            .push(format!("unknown template_id {template_id}"));
        return verdict;
    };
    verdict.height = Some(template.tip.height);
    verdict.current_tip = &template.tip.prev_hash == current_prev_hash;
    if !verdict.current_tip {
        verdict
            .problems
            .push("stale: the template's prev_hash is no longer the tip".into());
    }
    let coinbase = match Transaction::parse(coinbase_tx) {
        Ok(tx) => tx,
        Err(e) => {
            verdict
                .problems
                .push(format!("coinbase_tx does not parse: {e}"));
            return verdict;
        }
    };
    check_coinbase(template, &coinbase, &mut verdict.problems);

    // The block's merkle root from every transaction, and the path the template sent must agree.
    let coinbase_txid = coinbase.txid();
    let mut txids = Vec::with_capacity(template.transactions.len() + 1);
    txids.push(coinbase_txid);
    txids.extend(template.transactions.iter().map(Transaction::txid));
    let merkle_root = merkle::root(&txids);
    if merkle::root_from_path(&coinbase_txid, &template.merkle_path) != merkle_root {
        verdict
            .problems
            .push("the template's merkle path does not give the block's merkle root".into());
    }

    let header = BlockHeader {
        version,
        prev_hash: template.tip.prev_hash,
        merkle_root,
        ntime: header_timestamp,
        nbits: template.tip.nbits,
        nonce: header_nonce,
    }
    .to_bytes();
    let hash = sha256d(&header);
    verdict.block_hash = Some(display_hex(&hash));

    if (version ^ template.version) & !VERSION_ROLLING_MASK != 0 {
        verdict.problems.push(format!(
            "version {version:#010x} changes bits outside the rolling mask {VERSION_ROLLING_MASK:#010x} of the template's {:#010x}",
            template.version
        ));
    }
    if header_timestamp < template.tip.min_ntime {
        verdict.problems.push(format!(
            "header_timestamp {header_timestamp} is before the minimum {}",
            template.tip.min_ntime
        ));
    }
    if header_timestamp > now.saturating_add(MAX_FUTURE_SECS) {
        verdict.problems.push(format!(
            "header_timestamp {header_timestamp} is more than 2 hours ahead of {now}"
        ));
    }
    match compact_to_target(template.tip.nbits) {
        Ok(target) => {
            verdict.pow_ok = meets_target(&hash, &target);
            if !verdict.pow_ok {
                verdict.problems.push(format!(
                    "block hash {} does not meet nBits {:#010x}",
                    display_hex(&hash),
                    template.tip.nbits
                ));
            }
        }
        Err(e) => verdict.problems.push(format!("template nBits: {e}")),
    }

    let mut block = header.to_vec();
    write_compact_size(&mut block, txids.len() as u64);
    block.extend_from_slice(coinbase_tx);
    for tx in &template.transactions {
        block.extend_from_slice(&tx.serialize(true));
    }
    verdict.block = Some(block);
    verdict.valid = verdict.problems.is_empty();
    verdict
}

/// The coinbase against what the template asked for.
fn check_coinbase(template: &Template, coinbase: &Transaction, problems: &mut Vec<String>) {
    if !coinbase.is_coinbase() {
        problems.push("coinbase_tx does not spend the null outpoint with one input".into());
        return;
    }
    let input = &coinbase.inputs[0];
    if coinbase.version != template.coinbase_tx_version {
        problems.push(format!(
            "coinbase version {} is not the template's {}",
            coinbase.version, template.coinbase_tx_version
        ));
    }
    if input.sequence != template.coinbase_input_sequence {
        problems.push(format!(
            "coinbase input sequence {:#x} is not the template's {:#x}",
            input.sequence, template.coinbase_input_sequence
        ));
    }
    if coinbase.lock_time != template.coinbase_locktime {
        problems.push(format!(
            "coinbase lock time {} is not the template's {}",
            coinbase.lock_time, template.coinbase_locktime
        ));
    }
    if !input.script_sig.starts_with(&template.coinbase_prefix) {
        problems.push(format!(
            "coinbase scriptSig {} does not start with the template's coinbase_prefix {}",
            hex::encode(&input.script_sig),
            hex::encode(&template.coinbase_prefix)
        ));
    } else if read_bip34_height(&input.script_sig).map(|(h, _)| h) != Some(template.tip.height) {
        problems.push(format!(
            "coinbase scriptSig does not start with BIP34 height {}",
            template.tip.height
        ));
    }
    if !(2..=100).contains(&input.script_sig.len()) {
        problems.push(format!(
            "coinbase scriptSig is {} bytes (consensus: 2 to 100)",
            input.script_sig.len()
        ));
    }
    // Every output the template asked for must be there.
    let mut unmatched: Vec<&_> = coinbase.outputs.iter().collect();
    for required in &template.coinbase_outputs {
        match unmatched.iter().position(|o| *o == required) {
            Some(i) => {
                unmatched.remove(i);
            }
            None => problems.push(format!(
                "the template's output {} ({} sat) is missing from the coinbase",
                hex::encode(&required.script_pubkey),
                required.value
            )),
        }
    }
    let allowed = template.coinbase_value_remaining
        + template
            .coinbase_outputs
            .iter()
            .map(|o| o.value)
            .sum::<u64>();
    match coinbase.output_value() {
        Some(total) if total <= allowed => {}
        Some(total) => problems.push(format!(
            "coinbase pays {total} sat, more than the {allowed} sat available"
        )),
        None => problems.push("coinbase output values overflow".into()),
    }
    if template.is_segwit() {
        let commitment = template
            .coinbase_outputs
            .iter()
            .find_map(|o| read_witness_commitment(&o.script_pubkey));
        // BIP141: the last output with the commitment pattern is the one that counts.
        let found = coinbase
            .outputs
            .iter()
            .rev()
            .find_map(|o| read_witness_commitment(&o.script_pubkey));
        if found.is_none() || found != commitment {
            problems.push("coinbase lacks the template's witness commitment (BIP141)".into());
        }
        if input.witness != [template.witness_reserved_value.to_vec()] {
            problems.push(
                "coinbase witness is not the single 32-byte witness reserved value (BIP141)".into(),
            );
        }
    }
}
