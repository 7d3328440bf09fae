//! Bitcoin transactions: strict parsing (every byte consumed, counts checked against the bytes present
//! before anything is allocated), serialization with and without witness, txid and wtxid.

use super::sha256d;

/// Why bytes are not a transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// The bytes ended inside `field`.
    #[error("transaction truncated in {field} at offset {offset}")]
    Truncated { field: &'static str, offset: usize },
    /// A CompactSize that is not in its shortest form.
    #[error("non-canonical CompactSize at offset {offset}")]
    NonCanonicalSize { offset: usize },
    /// A count or length larger than the bytes that remain could hold.
    #[error("{field} count {count} at offset {offset} exceeds the remaining bytes")]
    CountTooLarge {
        field: &'static str,
        count: u64,
        offset: usize,
    },
    /// The segwit marker is followed by a flag other than 1.
    #[error("segwit flag {flag:#04x} (expected 0x01)")]
    BadSegwitFlag { flag: u8 },
    /// A segwit serialization whose witnesses are all empty (Bitcoin Core refuses it).
    #[error("segwit serialization with no witness data")]
    EmptyWitness,
    /// Bytes left after the lock time.
    #[error("{count} bytes after the end of the transaction")]
    TrailingBytes { count: usize },
}

/// An outpoint-spending input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxIn {
    /// Previous txid (internal byte order).
    pub prev_txid: [u8; 32],
    /// Previous output index.
    pub prev_vout: u32,
    /// scriptSig.
    pub script_sig: Vec<u8>,
    /// nSequence.
    pub sequence: u32,
    /// Witness stack (empty when none).
    pub witness: Vec<Vec<u8>>,
}

/// An output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxOut {
    /// Value in satoshis.
    pub value: u64,
    /// scriptPubKey.
    pub script_pubkey: Vec<u8>,
}

/// A transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// nVersion.
    pub version: u32,
    /// Inputs.
    pub inputs: Vec<TxIn>,
    /// Outputs.
    pub outputs: Vec<TxOut>,
    /// nLockTime.
    pub lock_time: u32,
}

/// A bounded reader over transaction bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], TxError> {
        let end = self
            .offset
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or(TxError::Truncated {
                field,
                offset: self.offset,
            })?;
        let out = &self.bytes[self.offset..end];
        self.offset = end;
        Ok(out)
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, TxError> {
        let b = self.take(4, field)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, TxError> {
        let b = self.take(8, field)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.offset
    }

    fn compact_size(&mut self, field: &'static str) -> Result<u64, TxError> {
        let at = self.offset;
        let first = self.take(1, field)?[0];
        let (value, min) = match first {
            0xfd => {
                let b = self.take(2, field)?;
                (u64::from(u16::from_le_bytes([b[0], b[1]])), 0xfd)
            }
            0xfe => (u64::from(self.u32(field)?), 0x1_0000),
            0xff => (self.u64(field)?, 0x1_0000_0000),
            n => return Ok(u64::from(n)),
        };
        if value < min {
            return Err(TxError::NonCanonicalSize { offset: at });
        }
        Ok(value)
    }

    /// A count of items each at least `min_item_len` bytes long, checked against the bytes left.
    fn count(&mut self, field: &'static str, min_item_len: usize) -> Result<usize, TxError> {
        let at = self.offset;
        let count = self.compact_size(field)?;
        let fits = usize::try_from(count)
            .ok()
            .and_then(|n| n.checked_mul(min_item_len.max(1)))
            .is_some_and(|need| need <= self.remaining());
        if !fits {
            return Err(TxError::CountTooLarge {
                field,
                count,
                offset: at,
            });
        }
        Ok(count as usize)
    }

    fn var_bytes(&mut self, field: &'static str) -> Result<Vec<u8>, TxError> {
        let n = self.count(field, 1)?;
        Ok(self.take(n, field)?.to_vec())
    }
}

/// Appends a CompactSize.
pub fn write_compact_size(out: &mut Vec<u8>, n: u64) {
    match n {
        0..=0xfc => out.push(n as u8),
        0xfd..=0xffff => {
            out.push(0xfd);
            out.extend_from_slice(&(n as u16).to_le_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xfe);
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
        _ => {
            out.push(0xff);
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
}

fn write_var_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_compact_size(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

impl TxOut {
    /// Appends `value || scriptPubKey`.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.value.to_le_bytes());
        write_var_bytes(out, &self.script_pubkey);
    }
}

/// Serializes outputs back to back, without a count (SV2's `coinbase_tx_outputs` form).
pub fn serialize_outputs(outputs: &[TxOut]) -> Vec<u8> {
    let mut out = Vec::new();
    for o in outputs {
        o.write(&mut out);
    }
    out
}

/// Parses exactly `count` outputs back to back filling all of `bytes` (SV2's `coinbase_tx_outputs`).
pub fn parse_outputs(bytes: &[u8], count: u32) -> Result<Vec<TxOut>, TxError> {
    let mut r = Reader { bytes, offset: 0 };
    // Each output is at least 9 bytes.
    if (count as usize).saturating_mul(9) > bytes.len() {
        return Err(TxError::CountTooLarge {
            field: "outputs",
            count: u64::from(count),
            offset: 0,
        });
    }
    let mut outputs = Vec::with_capacity(count as usize);
    for _ in 0..count {
        outputs.push(read_output(&mut r)?);
    }
    if r.remaining() != 0 {
        return Err(TxError::TrailingBytes {
            count: r.remaining(),
        });
    }
    Ok(outputs)
}

fn read_output(r: &mut Reader<'_>) -> Result<TxOut, TxError> {
    Ok(TxOut {
        value: r.u64("output value")?,
        script_pubkey: r.var_bytes("scriptPubKey")?,
    })
}

impl Transaction {
    /// Parses a whole transaction (BIP144 segwit serialization or legacy); every byte must be used.
    pub fn parse(bytes: &[u8]) -> Result<Self, TxError> {
        let mut r = Reader { bytes, offset: 0 };
        let version = r.u32("version")?;
        let mut segwit = false;
        if r.bytes.get(r.offset) == Some(&0) {
            r.take(1, "segwit marker")?;
            let flag = r.take(1, "segwit flag")?[0];
            if flag != 1 {
                return Err(TxError::BadSegwitFlag { flag });
            }
            segwit = true;
        }
        // An input is at least 41 bytes, an output at least 9.
        let n_in = r.count("inputs", 41)?;
        let mut inputs = Vec::with_capacity(n_in);
        for _ in 0..n_in {
            let mut prev_txid = [0u8; 32];
            prev_txid.copy_from_slice(r.take(32, "prevout txid")?);
            inputs.push(TxIn {
                prev_txid,
                prev_vout: r.u32("prevout index")?,
                script_sig: r.var_bytes("scriptSig")?,
                sequence: r.u32("sequence")?,
                witness: Vec::new(),
            });
        }
        let n_out = r.count("outputs", 9)?;
        let mut outputs = Vec::with_capacity(n_out);
        for _ in 0..n_out {
            outputs.push(read_output(&mut r)?);
        }
        if segwit {
            for input in &mut inputs {
                let n = r.count("witness items", 1)?;
                let mut stack = Vec::with_capacity(n);
                for _ in 0..n {
                    stack.push(r.var_bytes("witness item")?);
                }
                input.witness = stack;
            }
            if inputs.iter().all(|i| i.witness.is_empty()) {
                return Err(TxError::EmptyWitness);
            }
        }
        let lock_time = r.u32("lock time")?;
        if r.remaining() != 0 {
            return Err(TxError::TrailingBytes {
                count: r.remaining(),
            });
        }
        Ok(Self {
            version,
            inputs,
            outputs,
            lock_time,
        })
    }

    /// True when any input carries witness data.
    pub fn has_witness(&self) -> bool {
        self.inputs.iter().any(|i| !i.witness.is_empty())
    }

    /// True for a coinbase: one input spending the null outpoint.
    pub fn is_coinbase(&self) -> bool {
        self.inputs.len() == 1
            && self.inputs[0].prev_txid == [0; 32]
            && self.inputs[0].prev_vout == u32::MAX
    }

    /// Serializes; with `witness` and witness data present, in BIP144 form.
    pub fn serialize(&self, witness: bool) -> Vec<u8> {
        let segwit = witness && self.has_witness();
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(&self.version.to_le_bytes());
        if segwit {
            out.extend_from_slice(&[0, 1]);
        }
        write_compact_size(&mut out, self.inputs.len() as u64);
        for i in &self.inputs {
            out.extend_from_slice(&i.prev_txid);
            out.extend_from_slice(&i.prev_vout.to_le_bytes());
            write_var_bytes(&mut out, &i.script_sig);
            out.extend_from_slice(&i.sequence.to_le_bytes());
        }
        write_compact_size(&mut out, self.outputs.len() as u64);
        for o in &self.outputs {
            o.write(&mut out);
        }
        if segwit {
            for i in &self.inputs {
                write_compact_size(&mut out, i.witness.len() as u64);
                for item in &i.witness {
                    write_var_bytes(&mut out, item);
                }
            }
        }
        out.extend_from_slice(&self.lock_time.to_le_bytes());
        out
    }

    /// The txid: sha256d of the serialization without witness.
    pub fn txid(&self) -> [u8; 32] {
        sha256d(&self.serialize(false))
    }

    /// The wtxid: sha256d of the serialization with witness (equal to the txid without witness).
    pub fn wtxid(&self) -> [u8; 32] {
        sha256d(&self.serialize(true))
    }

    /// Sum of the output values (None on overflow).
    pub fn output_value(&self) -> Option<u64> {
        self.outputs
            .iter()
            .try_fold(0u64, |acc, o| acc.checked_add(o.value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::display_hex;

    /// The genesis block's coinbase transaction.
    const GENESIS_COINBASE: &str = "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff4d04ffff001d0104455468652054696d65732030332f4a616e2f32303039204368616e63656c6c6f72206f6e206272696e6b206f66207365636f6e64206261696c6f757420666f722062616e6b73ffffffff0100f2052a01000000434104678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5fac00000000";

    #[test]
    fn the_genesis_coinbase_parses_and_hashes() {
        let bytes = hex::decode(GENESIS_COINBASE).unwrap();
        let tx = Transaction::parse(&bytes).unwrap();
        assert!(tx.is_coinbase());
        assert_eq!(tx.outputs[0].value, 50 * 100_000_000);
        assert_eq!(
            display_hex(&tx.txid()),
            "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b"
        );
        assert_eq!(tx.serialize(true), bytes);
        assert_eq!(tx.wtxid(), tx.txid());
    }

    #[test]
    fn every_truncation_and_extension_is_refused() {
        let bytes = hex::decode(GENESIS_COINBASE).unwrap();
        for n in 0..bytes.len() {
            assert!(Transaction::parse(&bytes[..n]).is_err(), "prefix {n}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            Transaction::parse(&longer),
            Err(TxError::TrailingBytes { count: 1 })
        );
    }

    #[test]
    fn hostile_counts_do_not_allocate() {
        // version, then an input count of 2^64-1.
        let mut bytes = vec![1, 0, 0, 0, 0xff];
        bytes.extend_from_slice(&[0xff; 8]);
        assert!(matches!(
            Transaction::parse(&bytes),
            Err(TxError::CountTooLarge {
                field: "inputs",
                ..
            })
        ));
        // A non-canonical size.
        let bytes = [1, 0, 0, 0, 0xfd, 1, 0];
        assert_eq!(
            Transaction::parse(&bytes),
            Err(TxError::NonCanonicalSize { offset: 4 })
        );
        assert!(parse_outputs(&[0; 8], 1).is_err());
        assert!(parse_outputs(&[], 1_000_000).is_err());
    }

    #[test]
    fn segwit_round_trips_and_keeps_txid_without_witness() {
        let mut tx = Transaction::parse(&hex::decode(GENESIS_COINBASE).unwrap()).unwrap();
        tx.inputs[0].witness = vec![vec![0; 32]];
        let bytes = tx.serialize(true);
        assert_eq!(&bytes[4..6], &[0, 1]);
        let back = Transaction::parse(&bytes).unwrap();
        assert_eq!(back, tx);
        assert_ne!(tx.wtxid(), tx.txid());
        assert_eq!(
            display_hex(&tx.txid()),
            "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b"
        );
        // A marker with all-empty witnesses is refused, and so is a bad flag.
        let mut empty = bytes.clone();
        let witness_at = bytes.len() - 4 - 34;
        empty.splice(witness_at..bytes.len() - 4, [0u8]);
        assert_eq!(Transaction::parse(&empty), Err(TxError::EmptyWitness));
        let mut flag = bytes;
        flag[5] = 2;
        assert_eq!(
            Transaction::parse(&flag),
            Err(TxError::BadSegwitFlag { flag: 2 })
        );
    }

    #[test]
    fn outputs_round_trip_without_a_count() {
        let outputs = vec![
            TxOut {
                value: 1,
                script_pubkey: vec![0x51],
            },
            TxOut {
                value: u64::MAX,
                script_pubkey: vec![0x6a; 300],
            },
        ];
        let bytes = serialize_outputs(&outputs);
        assert_eq!(parse_outputs(&bytes, 2).unwrap(), outputs);
        assert!(parse_outputs(&bytes, 1).is_err());
        assert!(parse_outputs(&bytes, 3).is_err());
    }
}
