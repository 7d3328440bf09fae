//! What the probe says of a job's coinbase: height (BIP34), outputs by kind, the pool's tag.

use serde_json::{json, Value};
use sv2_chain::script::read_bip34_height;
use sv2_chain::tx::Transaction;

use crate::verdict::Verdict;

fn script_kind(script: &[u8]) -> &'static str {
    match script {
        [0x76, 0xa9, 0x14, .., 0x88, 0xac] if script.len() == 25 => "p2pkh",
        [0xa9, 0x14, .., 0x87] if script.len() == 23 => "p2sh",
        [0x00, 0x14, ..] if script.len() == 22 => "p2wpkh",
        [0x00, 0x20, ..] if script.len() == 34 => "p2wsh",
        [0x51, 0x20, ..] if script.len() == 34 => "p2tr",
        [0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed, ..] => "witness commitment",
        [0x6a, ..] => "op_return",
        _ => "other",
    }
}

/// Printable ASCII runs of at least 4 characters (pool tags live in the scriptSig this way).
fn ascii_runs(bytes: &[u8]) -> Vec<String> {
    bytes
        .split(|b| !(0x20..0x7f).contains(b))
        .map(|run| String::from_utf8_lossy(run).trim().to_owned())
        .filter(|run| run.len() >= 4)
        .collect()
}

pub(super) fn describe_coinbase(tx: &Transaction) -> (Verdict, String, Value) {
    let script_sig = tx
        .inputs
        .first()
        .map(|i| i.script_sig.as_slice())
        .unwrap_or(&[]);
    let height = read_bip34_height(script_sig).map(|(h, _)| h);
    let tags = ascii_runs(script_sig);
    let outputs: Vec<Value> = tx
        .outputs
        .iter()
        .map(|o| json!({"value_sat": o.value, "kind": script_kind(&o.script_pubkey), "script": hex::encode(&o.script_pubkey)}))
        .collect();
    let total: u64 = tx.outputs.iter().map(|o| o.value).sum();
    let mut detail = format!(
        "{} height {}, {} output(s) paying {} sat",
        if tx.is_coinbase() {
            "coinbase"
        } else {
            "NOT a coinbase"
        },
        height.map_or("missing (no BIP34 push)".into(), |h| h.to_string()),
        tx.outputs.len(),
        total
    );
    for o in &tx.outputs {
        detail.push_str(&format!(
            "\n    {} sat  {}  {}",
            o.value,
            script_kind(&o.script_pubkey),
            hex::encode(&o.script_pubkey)
        ));
    }
    if !tags.is_empty() {
        detail.push_str(&format!("\n    tag: {}", tags.join(" | ")));
    }
    let status = if tx.is_coinbase() && height.is_some() {
        Verdict::Pass
    } else {
        Verdict::Fail
    };
    (
        status,
        detail,
        json!({"height": height, "script_sig": hex::encode(script_sig), "tags": tags, "outputs": outputs, "version": tx.version, "lock_time": tx.lock_time}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_tags_are_trimmed_ascii_runs() {
        assert_eq!(
            ascii_runs(b"\x03\xc8\x00\x00 /pool/ \x00abc\x01Sv2/tag//"),
            vec!["/pool/".to_owned(), "Sv2/tag//".to_owned()]
        );
    }
}
