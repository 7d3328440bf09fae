//! The few scripts a template needs: the BIP34 height push at the start of the coinbase scriptSig, the
//! BIP141 witness commitment output, and simple output scripts.

/// The minimal push of a block height, as Bitcoin Core writes `CScript() << height` (BIP34). Heights 1
/// to 16 are the opcodes OP_1..OP_16 and 0 is OP_0, as in Core.
pub fn bip34_height(height: u32) -> Vec<u8> {
    match height {
        0 => vec![0x00],
        1..=16 => vec![0x50 + height as u8],
        _ => {
            let mut number = Vec::with_capacity(5);
            let mut h = height;
            while h > 0 {
                number.push(h as u8);
                h >>= 8;
            }
            // A set top bit would make the number negative: add a sign byte.
            if number.last().is_some_and(|&b| b & 0x80 != 0) {
                number.push(0);
            }
            let mut out = vec![number.len() as u8];
            out.extend_from_slice(&number);
            out
        }
    }
}

/// Reads the BIP34 height at the start of a coinbase scriptSig (the inverse of [`bip34_height`]).
/// Returns the height and the number of bytes it took; None when the script does not start with a
/// minimal, non-negative push of at most 5 bytes.
pub fn read_bip34_height(script_sig: &[u8]) -> Option<(u32, usize)> {
    let first = *script_sig.first()?;
    match first {
        0x00 => Some((0, 1)),
        0x51..=0x60 => Some((u32::from(first - 0x50), 1)),
        1..=5 => {
            let n = usize::from(first);
            let number = script_sig.get(1..1 + n)?;
            let last = *number.last()?;
            if last & 0x80 != 0 {
                return None; // negative
            }
            let value = number
                .iter()
                .rev()
                .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
            let height = u32::try_from(value).ok()?;
            // Minimal: the same height must encode to the same bytes.
            (bip34_height(height) == script_sig[..1 + n]).then_some((height, 1 + n))
        }
        _ => None,
    }
}

/// The BIP141 witness commitment output script: OP_RETURN, push 36, aa21a9ed, commitment.
pub fn witness_commitment_script(commitment: &[u8; 32]) -> Vec<u8> {
    let mut script = Vec::with_capacity(38);
    script.extend_from_slice(&[0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed]);
    script.extend_from_slice(commitment);
    script
}

/// The commitment in a witness commitment output script, if it is one.
pub fn read_witness_commitment(script_pubkey: &[u8]) -> Option<[u8; 32]> {
    if script_pubkey.len() >= 38 && script_pubkey[..6] == [0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed] {
        script_pubkey[6..38].try_into().ok()
    } else {
        None
    }
}

/// A pay-to-witness-v0-keyhash script for a 20-byte hash.
pub fn p2wpkh(hash160: &[u8; 20]) -> Vec<u8> {
    let mut script = vec![0x00, 0x14];
    script.extend_from_slice(hash160);
    script
}

/// OP_RETURN followed by one push of `data` (at most 75 bytes).
pub fn op_return(data: &[u8]) -> Vec<u8> {
    let data = &data[..data.len().min(75)];
    let mut script = vec![0x6a, data.len() as u8];
    script.extend_from_slice(data);
    script
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heights_encode_as_bitcoin_core_does() {
        assert_eq!(bip34_height(0), [0x00]);
        assert_eq!(bip34_height(1), [0x51]);
        assert_eq!(bip34_height(16), [0x60]);
        assert_eq!(bip34_height(17), [0x01, 0x11]);
        assert_eq!(bip34_height(127), [0x01, 0x7f]);
        assert_eq!(bip34_height(128), [0x02, 0x80, 0x00]);
        assert_eq!(bip34_height(255), [0x02, 0xff, 0x00]);
        assert_eq!(bip34_height(256), [0x02, 0x00, 0x01]);
        // 227,836 = 0x0379fc: three bytes, little-endian.
        assert_eq!(bip34_height(227_836), [0x03, 0xfc, 0x79, 0x03]);
        assert_eq!(bip34_height(u32::MAX), [0x05, 0xff, 0xff, 0xff, 0xff, 0x00]);
    }

    #[test]
    fn heights_read_back_and_non_minimal_pushes_are_refused() {
        for h in [0, 1, 16, 17, 127, 128, 255, 256, 65_535, 840_000, u32::MAX] {
            let mut script = bip34_height(h);
            let len = script.len();
            script.extend_from_slice(b"/pool/");
            assert_eq!(read_bip34_height(&script), Some((h, len)), "{h}");
        }
        assert_eq!(read_bip34_height(&[]), None);
        assert_eq!(read_bip34_height(&[0x02, 0x11, 0x00]), None); // 17 with a needless byte
        assert_eq!(read_bip34_height(&[0x01, 0x05]), None); // 5 must be OP_5
        assert_eq!(read_bip34_height(&[0x01, 0x80]), None); // negative
        assert_eq!(read_bip34_height(&[0x03, 0x01]), None); // truncated
        assert_eq!(read_bip34_height(&[0x4c, 0x01, 0x11]), None); // PUSHDATA1
    }

    #[test]
    fn witness_commitment_scripts_round_trip() {
        let script = witness_commitment_script(&[7; 32]);
        assert_eq!(script.len(), 38);
        assert_eq!(read_witness_commitment(&script), Some([7; 32]));
        assert_eq!(read_witness_commitment(&script[..37]), None);
        assert_eq!(op_return(b"sv2"), [0x6a, 3, b's', b'v', b'2']);
    }
}
