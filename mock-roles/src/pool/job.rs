//! Jobs from templates: the coinbase the pool builds around a Template Distribution `NewTemplate`, split
//! around the extranonce for NewExtendedMiningJob, and rebuilt whole (with its witness) for
//! SubmitSolution.
//!
//! # Coinbase layout
//!
//! ```text
//! scriptSig = coinbase_prefix            the template's bytes (BIP34 height push), as given
//!           || 0x01..0x4b pool_tag        one push of the pool tag (left out when the tag is empty)
//!           || extranonce_len             the push opcode of the extranonce (1 byte, <= 32)
//!           || extranonce                 extranonce_len bytes: extranonce_prefix (per channel) ||
//!                                         the miner's part (extended channels only)
//! outputs   = pool payout (value = coinbase_tx_value_remaining, the configured script)
//!           || the template's coinbase_tx_outputs, in their order
//! witness   = one 32-byte zero item (the witness reserved value), only when the template's outputs
//!             carry a BIP141 witness commitment
//! ```
//!
//! The whole scriptSig is a sequence of pushes, so explorers decode it as height, tag, extranonce.
//! `coinbase_tx_prefix` is the legacy serialization (no marker, flag or witness: §5.3.16) up to the
//! extranonce, `coinbase_tx_suffix` the rest, so `prefix || extranonce || suffix` is the transaction
//! whose sha256d is the txid that enters the merkle root.

use std::sync::Arc;

use sv2_codec::messages::template_distribution::NewTemplate;

use sv2_chain::merkle;
use sv2_chain::script::read_witness_commitment;
use sv2_chain::tx::{parse_outputs, write_compact_size, Transaction, TxError, TxIn, TxOut};

/// The witness reserved value the pool puts in a segwit coinbase (TDP §7.2: assumed all zeros).
pub const WITNESS_RESERVED_VALUE: [u8; 32] = [0; 32];

/// The largest extranonce (SubmitSharesExtended.extranonce is a B0_32).
pub const MAX_EXTRANONCE_LEN: usize = 32;

/// The largest coinbase scriptSig consensus allows.
pub const MAX_SCRIPT_SIG_LEN: usize = 100;

/// The longest BIP34 height push (a height near `u32::MAX`); the prefix a template normally sends.
pub const MAX_BIP34_PUSH_LEN: usize = 6;

/// What the pool adds to every coinbase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoinbaseLayout {
    /// Bytes pushed after the height (at most 75; empty for none).
    pub pool_tag: Vec<u8>,
    /// The payout output's scriptPubKey.
    pub payout_script: Vec<u8>,
    /// The full extranonce: every channel's `extranonce_prefix` plus the miner's part (at most 32).
    pub extranonce_len: usize,
}

/// Why a pool configuration cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error("pool tag is {0} bytes; a single push holds at most 75")]
    TagTooLong(usize),
    #[error("extranonce length {0} is outside 1..=32")]
    ExtranonceLength(usize),
    #[error("extranonce prefix length {prefix} must be at least 1 and at most the extranonce length {total}")]
    PrefixLength { prefix: usize, total: usize },
    #[error("a coinbase scriptSig of up to {0} bytes (height push, tag, extranonce) exceeds 100")]
    ScriptSigTooLong(usize),
    #[error("the payout script is {0} bytes; keep it under 10,000")]
    PayoutScriptTooLong(usize),
}

impl CoinbaseLayout {
    /// Checks that every template with a normal height push yields a valid scriptSig.
    pub fn validate(&self) -> Result<(), LayoutError> {
        if self.pool_tag.len() > 75 {
            return Err(LayoutError::TagTooLong(self.pool_tag.len()));
        }
        if !(1..=MAX_EXTRANONCE_LEN).contains(&self.extranonce_len) {
            return Err(LayoutError::ExtranonceLength(self.extranonce_len));
        }
        let longest = MAX_BIP34_PUSH_LEN + self.middle().len() + self.extranonce_len;
        if longest > MAX_SCRIPT_SIG_LEN {
            return Err(LayoutError::ScriptSigTooLong(longest));
        }
        if self.payout_script.len() > 10_000 {
            return Err(LayoutError::PayoutScriptTooLong(self.payout_script.len()));
        }
        Ok(())
    }

    /// The scriptSig bytes between the template's coinbase_prefix and the extranonce.
    pub fn middle(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.pool_tag.len() + 2);
        if !self.pool_tag.is_empty() {
            out.push(self.pool_tag.len() as u8);
            out.extend_from_slice(&self.pool_tag);
        }
        out.push(self.extranonce_len as u8);
        out
    }

    /// The serialized size of the payout output (CoinbaseOutputConstraints).
    pub fn payout_output_size(&self) -> u32 {
        let mut out = Vec::new();
        TxOut {
            value: 0,
            script_pubkey: self.payout_script.clone(),
        }
        .write(&mut out);
        u32::try_from(out.len()).unwrap_or(u32::MAX)
    }

    /// The payout output's sigop cost (legacy sigops scaled by 4, as Bitcoin Core counts an output
    /// script), for CoinbaseOutputConstraints.
    pub fn payout_sigops(&self) -> u16 {
        u16::try_from(legacy_sigops(&self.payout_script).saturating_mul(4)).unwrap_or(u16::MAX)
    }
}

/// Legacy sigops of a script: CHECKSIG(VERIFY) count 1, CHECKMULTISIG(VERIFY) 20 (not accurate-mode,
/// as for output scripts). Stops at a truncated push.
pub fn legacy_sigops(script: &[u8]) -> u32 {
    let mut count = 0u32;
    let mut i = 0usize;
    while i < script.len() {
        let op = script[i];
        i += 1;
        let push = match op {
            0x01..=0x4b => usize::from(op),
            0x4c => {
                let Some(&n) = script.get(i) else { break };
                i += 1;
                usize::from(n)
            }
            0x4d => {
                let Some(b) = script.get(i..i + 2) else {
                    break;
                };
                i += 2;
                usize::from(u16::from_le_bytes([b[0], b[1]]))
            }
            0x4e => {
                let Some(b) = script.get(i..i + 4) else {
                    break;
                };
                i += 4;
                u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize
            }
            0xac | 0xad => {
                count += 1;
                0
            }
            0xae | 0xaf => {
                count += 20;
                0
            }
            _ => 0,
        };
        i = i.saturating_add(push);
    }
    count
}

/// Why a NewTemplate cannot become jobs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("coinbase_tx_outputs do not parse as {count} outputs: {source}")]
    Outputs {
        count: u32,
        #[source]
        source: TxError,
    },
    #[error("the coinbase scriptSig would be {0} bytes (consensus allows 2 to 100)")]
    ScriptSigLength(usize),
    #[error("the coinbase would be {0} bytes, more than a B0_64K field holds")]
    CoinbaseTooLarge(usize),
    #[error("the coinbase outputs would pay more than 2^64 satoshis")]
    ValueOverflow,
}

/// A template as the pool uses it: the coinbase it builds and the pieces of every job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolTemplate {
    pub template_id: u64,
    /// NewTemplate.future_template.
    pub future: bool,
    /// Block version.
    pub version: u32,
    /// The coinbase with an all-zero extranonce (the real one goes in its scriptSig's tail).
    pub coinbase: Transaction,
    /// Where the extranonce starts in the scriptSig.
    pub extranonce_at: usize,
    /// The full extranonce length.
    pub extranonce_len: usize,
    /// `coinbase_tx_prefix`: legacy serialization up to the extranonce.
    pub coinbase_tx_prefix: Vec<u8>,
    /// `coinbase_tx_suffix`: legacy serialization after the extranonce.
    pub coinbase_tx_suffix: Vec<u8>,
    /// Merkle path, internal byte order, bottom up.
    pub merkle_path: Vec<[u8; 32]>,
    /// The template's outputs carry a witness commitment: the coinbase gets a witness.
    pub segwit: bool,
}

impl PoolTemplate {
    /// Builds the pool's coinbase around a NewTemplate.
    pub fn build(t: &NewTemplate<'_>, layout: &CoinbaseLayout) -> Result<Arc<Self>, TemplateError> {
        let template_outputs = parse_outputs(
            t.coinbase_tx_outputs.as_bytes(),
            t.coinbase_tx_outputs_count,
        )
        .map_err(|source| TemplateError::Outputs {
            count: t.coinbase_tx_outputs_count,
            source,
        })?;
        let segwit = template_outputs
            .iter()
            .any(|o| read_witness_commitment(&o.script_pubkey).is_some());
        let total = template_outputs
            .iter()
            .try_fold(t.coinbase_tx_value_remaining, |acc, o| {
                acc.checked_add(o.value)
            });
        if total.is_none() {
            return Err(TemplateError::ValueOverflow);
        }
        let mut script_sig = t.coinbase_prefix.as_bytes().to_vec();
        script_sig.extend_from_slice(&layout.middle());
        let extranonce_at = script_sig.len();
        script_sig.resize(extranonce_at + layout.extranonce_len, 0);
        if !(2..=MAX_SCRIPT_SIG_LEN).contains(&script_sig.len()) {
            return Err(TemplateError::ScriptSigLength(script_sig.len()));
        }
        let mut outputs = Vec::with_capacity(template_outputs.len() + 1);
        outputs.push(TxOut {
            value: t.coinbase_tx_value_remaining,
            script_pubkey: layout.payout_script.clone(),
        });
        outputs.extend(template_outputs);
        let coinbase = Transaction {
            version: t.coinbase_tx_version,
            inputs: vec![TxIn {
                prev_txid: [0; 32],
                prev_vout: u32::MAX,
                script_sig,
                sequence: t.coinbase_tx_input_sequence,
                witness: if segwit {
                    vec![WITNESS_RESERVED_VALUE.to_vec()]
                } else {
                    Vec::new()
                },
            }],
            outputs,
            lock_time: t.coinbase_tx_locktime,
        };
        let full_len = coinbase.serialize(true).len();
        if full_len > 65_535 {
            return Err(TemplateError::CoinbaseTooLarge(full_len));
        }
        let legacy = coinbase.serialize(false);
        // version, input count, null outpoint, scriptSig length, then the scriptSig.
        let mut head = Vec::with_capacity(9);
        write_compact_size(&mut head, coinbase.inputs[0].script_sig.len() as u64);
        let split = 4 + 1 + 32 + 4 + head.len() + extranonce_at;
        let coinbase_tx_prefix = legacy[..split].to_vec();
        let coinbase_tx_suffix = legacy[split + layout.extranonce_len..].to_vec();
        Ok(Arc::new(Self {
            template_id: t.template_id,
            future: t.future_template,
            version: t.version,
            coinbase,
            extranonce_at,
            extranonce_len: layout.extranonce_len,
            coinbase_tx_prefix,
            coinbase_tx_suffix,
            merkle_path: t.merkle_path.iter().map(|h| h.0).collect(),
            segwit,
        }))
    }

    /// The coinbase txid with this full extranonce (`extranonce_len` bytes).
    pub fn coinbase_txid(&self, extranonce: &[u8]) -> [u8; 32] {
        merkle::coinbase_txid(
            &self.coinbase_tx_prefix,
            &[],
            extranonce,
            &self.coinbase_tx_suffix,
        )
    }

    /// The block's merkle root with this full extranonce.
    pub fn merkle_root(&self, extranonce: &[u8]) -> [u8; 32] {
        merkle::root_from_path(&self.coinbase_txid(extranonce), &self.merkle_path)
    }

    /// The whole coinbase with this full extranonce, witness included when segwit (SubmitSolution).
    pub fn full_coinbase(&self, extranonce: &[u8]) -> Transaction {
        let mut tx = self.coinbase.clone();
        let script = &mut tx.inputs[0].script_sig;
        script.truncate(self.extranonce_at);
        script.extend_from_slice(extranonce);
        tx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sv2_chain::script::{bip34_height, p2wpkh, witness_commitment_script};
    use sv2_chain::tx::serialize_outputs;
    use sv2_codec::types::{Seq0_255, B0_255, B0_64K, U256};

    fn layout() -> CoinbaseLayout {
        CoinbaseLayout {
            pool_tag: b"/tag/".to_vec(),
            payout_script: p2wpkh(&[9; 20]),
            extranonce_len: 12,
        }
    }

    fn template(outputs: &[TxOut], prefix: Vec<u8>) -> NewTemplate<'static> {
        NewTemplate {
            template_id: 7,
            future_template: true,
            version: 0x2000_0000,
            coinbase_tx_version: 2,
            coinbase_prefix: B0_255::new(prefix).unwrap(),
            coinbase_tx_input_sequence: 0xffff_fffe,
            coinbase_tx_value_remaining: 5_000_000_000,
            coinbase_tx_outputs_count: outputs.len() as u32,
            coinbase_tx_outputs: B0_64K::new(serialize_outputs(outputs)).unwrap(),
            coinbase_tx_locktime: 100,
            merkle_path: Seq0_255::new(vec![U256([1; 32]), U256([2; 32])]).unwrap(),
        }
    }

    #[test]
    fn prefix_extranonce_suffix_is_the_legacy_coinbase() {
        let commitment = TxOut {
            value: 0,
            script_pubkey: witness_commitment_script(&[5; 32]),
        };
        for outputs in [vec![], vec![commitment]] {
            let t =
                PoolTemplate::build(&template(&outputs, bip34_height(840_000)), &layout()).unwrap();
            assert_eq!(t.segwit, !outputs.is_empty());
            let extranonce: Vec<u8> = (0..12).collect();
            let full = t.full_coinbase(&extranonce);
            let mut joined = t.coinbase_tx_prefix.clone();
            joined.extend_from_slice(&extranonce);
            joined.extend_from_slice(&t.coinbase_tx_suffix);
            assert_eq!(joined, full.serialize(false));
            assert_eq!(t.coinbase_txid(&extranonce), full.txid());
            assert_eq!(
                t.merkle_root(&extranonce),
                merkle::root_from_path(&full.txid(), &t.merkle_path)
            );
            // The full form carries the witness reserved value exactly when segwit.
            let parsed = Transaction::parse(&full.serialize(true)).unwrap();
            assert_eq!(parsed.has_witness(), t.segwit);
            let script = &parsed.inputs[0].script_sig;
            assert_eq!(&script[..4], &bip34_height(840_000)[..]);
            assert_eq!(&script[4..10], b"\x05/tag/");
            assert_eq!(script[10], 12);
            assert_eq!(&script[11..], &extranonce[..]);
            assert_eq!(parsed.outputs[0].value, 5_000_000_000);
            assert_eq!(parsed.outputs[1..], outputs[..]);
        }
    }

    #[test]
    fn bad_templates_are_refused() {
        let mut t = template(&[], bip34_height(1));
        t.coinbase_tx_outputs_count = 1;
        assert!(matches!(
            PoolTemplate::build(&t, &layout()),
            Err(TemplateError::Outputs { count: 1, .. })
        ));
        let long = template(&[], vec![0x51; 90]);
        assert_eq!(
            PoolTemplate::build(&long, &layout()),
            Err(TemplateError::ScriptSigLength(90 + 7 + 12))
        );
        let overflow = template(
            &[TxOut {
                value: u64::MAX,
                script_pubkey: vec![0x51],
            }],
            bip34_height(1),
        );
        assert_eq!(
            PoolTemplate::build(&overflow, &layout()),
            Err(TemplateError::ValueOverflow)
        );
        // A coinbase too large for SubmitSolution's B0_64K.
        let big = TxOut {
            value: 0,
            script_pubkey: vec![0x6a; 65_500],
        };
        assert!(matches!(
            PoolTemplate::build(&template(&[big], bip34_height(1)), &layout()),
            Err(TemplateError::CoinbaseTooLarge(_))
        ));
    }

    #[test]
    fn layouts_are_checked_and_constraints_computed() {
        assert_eq!(layout().validate(), Ok(()));
        let tag = CoinbaseLayout {
            pool_tag: vec![0; 76],
            ..layout()
        };
        assert_eq!(tag.validate(), Err(LayoutError::TagTooLong(76)));
        let en = CoinbaseLayout {
            extranonce_len: 33,
            ..layout()
        };
        assert_eq!(en.validate(), Err(LayoutError::ExtranonceLength(33)));
        let full = CoinbaseLayout {
            pool_tag: vec![0; 75],
            extranonce_len: 32,
            ..layout()
        };
        assert_eq!(
            full.validate(),
            Err(LayoutError::ScriptSigTooLong(6 + 77 + 32))
        );
        assert_eq!(layout().payout_output_size(), 31);
        assert_eq!(layout().payout_sigops(), 0);
        // P2PKH: one CHECKSIG; bare 1-of-2 multisig: 20; a truncated push ends the count.
        let p2pkh = [&[0x76, 0xa9, 0x14][..], &[0; 20], &[0x88, 0xac]].concat();
        assert_eq!(legacy_sigops(&p2pkh), 1);
        assert_eq!(legacy_sigops(&[0x51, 0x52, 0xae]), 20);
        // A push hides what it pushes.
        assert_eq!(legacy_sigops(&[0x01, 0xac]), 0);
        assert_eq!(legacy_sigops(&[0x4c]), 0);
        assert_eq!(legacy_sigops(&[0x4d, 0xff]), 0);
        assert_eq!(legacy_sigops(&[0x4e, 0xff, 0xff, 0xff, 0xff, 0xac]), 0);
        let layout_p2pkh = CoinbaseLayout {
            payout_script: p2pkh,
            ..layout()
        };
        assert_eq!(layout_p2pkh.payout_sigops(), 4);
    }
}
