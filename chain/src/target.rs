//! Targets: compact `nBits`, 256-bit little-endian targets (as SV2's U256 carries them), difficulty.

/// Why a compact target was refused (Bitcoin Core's `SetCompact` rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CompactError {
    /// The sign bit (0x00800000) is set with a non-zero mantissa.
    #[error("compact target {0:#010x} is negative")]
    Negative(u32),
    /// The value does not fit in 256 bits.
    #[error("compact target {0:#010x} overflows 256 bits")]
    Overflow(u32),
    /// The target is zero: no hash can meet it.
    #[error("compact target {0:#010x} is zero")]
    Zero(u32),
}

/// The difficulty-1 target, 0x00000000ffff0000...0000, little-endian.
pub const DIFFICULTY_1_TARGET: [u8; 32] = {
    let mut t = [0u8; 32];
    t[26] = 0xff;
    t[27] = 0xff;
    t
};

/// Regtest's `nBits` (the easiest target Bitcoin Core accepts there).
pub const REGTEST_NBITS: u32 = 0x207f_ffff;

/// Expands `nBits` into a little-endian 256-bit target.
pub fn compact_to_target(nbits: u32) -> Result<[u8; 32], CompactError> {
    let exponent = (nbits >> 24) as usize;
    let mantissa = nbits & 0x007f_ffff;
    if mantissa != 0 && nbits & 0x0080_0000 != 0 {
        return Err(CompactError::Negative(nbits));
    }
    if mantissa != 0
        && (exponent > 34
            || (mantissa > 0xff && exponent > 33)
            || (mantissa > 0xffff && exponent > 32))
    {
        return Err(CompactError::Overflow(nbits));
    }
    let mut target = [0u8; 32];
    let bytes = mantissa.to_le_bytes(); // [low, mid, high, 0]
    if exponent <= 3 {
        let value = mantissa >> (8 * (3 - exponent));
        target[..4].copy_from_slice(&value.to_le_bytes());
    } else {
        // mantissa * 256^(exponent - 3): byte i of the mantissa lands at exponent - 3 + i.
        for (i, &b) in bytes[..3].iter().enumerate() {
            let at = exponent - 3 + i;
            if at < 32 {
                target[at] = b;
            }
        }
    }
    if target == [0u8; 32] {
        return Err(CompactError::Zero(nbits));
    }
    Ok(target)
}

/// The compact form of a little-endian target (rounding down, as Bitcoin Core's `GetCompact`).
pub fn target_to_compact(target: &[u8; 32]) -> u32 {
    let Some(top) = target.iter().rposition(|&b| b != 0) else {
        return 0;
    };
    let mut size = top + 1;
    let byte = |i: isize| -> u32 {
        if i >= 0 {
            u32::from(target[i as usize])
        } else {
            0
        }
    };
    let t = top as isize;
    let mut mantissa = (byte(t) << 16) | (byte(t - 1) << 8) | byte(t - 2);
    if mantissa & 0x0080_0000 != 0 {
        mantissa >>= 8;
        size += 1;
    }
    ((size as u32) << 24) | mantissa
}

/// True when `hash` (SHA-256 output order, read as a little-endian number) is at most `target`.
pub fn meets_target(hash: &[u8; 32], target: &[u8; 32]) -> bool {
    hash.iter().rev().cmp(target.iter().rev()) != std::cmp::Ordering::Greater
}

/// A little-endian 256-bit number as an `f64` (rounded).
pub fn to_f64(value: &[u8; 32]) -> f64 {
    value
        .iter()
        .rev()
        .fold(0.0f64, |acc, &b| acc * 256.0 + f64::from(b))
}

/// Difficulty relative to the difficulty-1 target (bdiff): `DIFFICULTY_1_TARGET / target`.
pub fn difficulty(target: &[u8; 32]) -> f64 {
    let t = to_f64(target);
    if t == 0.0 {
        f64::INFINITY
    } else {
        to_f64(&DIFFICULTY_1_TARGET) / t
    }
}

/// Expected hashes per share at `target`: 2^256 / (target + 1).
pub fn hashes_per_share(target: &[u8; 32]) -> f64 {
    2f64.powi(256) / (to_f64(target) + 1.0)
}

/// The target at which `hashes` hashes find one share on average: 2^256 / hashes - 1, clamped to
/// `[1, max]`. Used by vardiff.
pub fn target_for_hashes(hashes: f64, max: &[u8; 32]) -> [u8; 32] {
    if !hashes.is_finite() || hashes <= 1.0 {
        return *max;
    }
    // 2^256 / hashes as a big number: take the f64 apart into mantissa and exponent exactly.
    let value = 2f64.powi(256) / hashes;
    let mut out = [0u8; 32];
    let mut remaining = value;
    for i in (0..32).rev() {
        let place = 2f64.powi(8 * i as i32);
        let digit = (remaining / place).floor().clamp(0.0, 255.0);
        out[i] = digit as u8;
        remaining -= digit * place;
    }
    if meets_target(max, &out) {
        *max
    } else if out == [0u8; 32] {
        let mut one = [0u8; 32];
        one[0] = 1;
        one
    } else {
        out
    }
}

/// The share target of a difficulty as SV1 carries it (`difficulty-1 target / difficulty`, capped at 2^256 - 1).
/// `None` for a difficulty that is not a finite positive number.
pub fn target_from_difficulty(difficulty: f64) -> Option<[u8; 32]> {
    if !difficulty.is_finite() || difficulty <= 0.0 {
        return None;
    }
    // target = 2^256 / hashes with hashes = difficulty * 2^256 / (0xffff * 2^208).
    Some(target_for_hashes(
        difficulty * 2f64.powi(48) / 65535.0,
        &[0xff; 32],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn difficulty_one_is_the_difficulty_one_target() {
        let t = target_from_difficulty(1.0).unwrap();
        // 0x00000000ffff0000..., within f64 rounding of the last bits.
        assert_eq!(&t[26..32], &[0xff, 0xff, 0, 0, 0, 0]);
        let half = target_from_difficulty(2.0).unwrap();
        // 0x7fff8000 00...: half of 0xffff * 2^208.
        assert_eq!(&half[25..32], &[0x80, 0xff, 0x7f, 0, 0, 0, 0]);
        assert_eq!(target_from_difficulty(1e-30), Some([0xff; 32]));
        assert_eq!(target_from_difficulty(0.0), None);
        assert_eq!(target_from_difficulty(-1.0), None);
        assert_eq!(target_from_difficulty(f64::NAN), None);
    }

    fn be(hex_be: &str) -> [u8; 32] {
        let mut t: [u8; 32] = hex::decode(hex_be).unwrap().try_into().unwrap();
        t.reverse();
        t
    }

    #[test]
    fn known_compact_values_expand() {
        assert_eq!(
            compact_to_target(0x1d00ffff).unwrap(),
            be("00000000ffff0000000000000000000000000000000000000000000000000000")
        );
        assert_eq!(compact_to_target(0x1d00ffff).unwrap(), DIFFICULTY_1_TARGET);
        assert_eq!(
            compact_to_target(REGTEST_NBITS).unwrap(),
            be("7fffff0000000000000000000000000000000000000000000000000000000000")
        );
        // Block 100000's bits.
        assert_eq!(
            compact_to_target(0x1b04864c).unwrap(),
            be("000000000004864c000000000000000000000000000000000000000000000000")
        );
        assert_eq!(
            compact_to_target(0x03123456).unwrap()[..4],
            [0x56, 0x34, 0x12, 0]
        );
        assert_eq!(
            compact_to_target(0x02123456).unwrap()[..4],
            [0x34, 0x12, 0, 0]
        );
        assert_eq!(compact_to_target(0x01123456).unwrap()[..4], [0x12, 0, 0, 0]);
    }

    #[test]
    fn bad_compact_values_are_refused() {
        assert_eq!(
            compact_to_target(0x04923456),
            Err(CompactError::Negative(0x04923456))
        );
        assert_eq!(
            compact_to_target(0x23000001),
            Err(CompactError::Overflow(0x23000001))
        );
        assert_eq!(
            compact_to_target(0x22000100),
            Err(CompactError::Overflow(0x22000100))
        );
        assert_eq!(
            compact_to_target(0x21010000),
            Err(CompactError::Overflow(0x21010000))
        );
        assert_eq!(
            compact_to_target(0x1d000000),
            Err(CompactError::Zero(0x1d000000))
        );
        assert_eq!(
            compact_to_target(0x01003456),
            Err(CompactError::Zero(0x01003456))
        );
        // The largest representable ones are fine.
        assert!(compact_to_target(0x2100ffff).is_ok());
        assert!(compact_to_target(0x207fffff).is_ok());
    }

    #[test]
    fn compact_round_trips() {
        for nbits in [
            0x1d00ffffu32,
            0x1b04864c,
            REGTEST_NBITS,
            0x1703a30c,
            0x04123456,
            0x2100ffff,
        ] {
            let target = compact_to_target(nbits).unwrap();
            assert_eq!(target_to_compact(&target), nbits, "{nbits:#x}");
        }
        // A mantissa with its top bit set moves up a byte.
        let mut t = [0u8; 32];
        t[28] = 0x80;
        assert_eq!(target_to_compact(&t), 0x1e008000);
    }

    #[test]
    fn the_target_boundary_is_inclusive() {
        let target = compact_to_target(0x1d00ffff).unwrap();
        assert!(meets_target(&target, &target));
        let mut above = target;
        above[0] = 1;
        assert!(!meets_target(&above, &target));
        let mut below = target;
        below[26] = 0xfe;
        assert!(meets_target(&below, &target));
        // The most significant byte is the last one.
        let mut high = [0u8; 32];
        high[31] = 1;
        assert!(!meets_target(&high, &target));
    }

    #[test]
    fn difficulty_and_share_rates() {
        assert_eq!(difficulty(&DIFFICULTY_1_TARGET), 1.0);
        let d = difficulty(&compact_to_target(0x1b04864c).unwrap());
        assert!((d - 14484.162361).abs() < 1e-3, "{d}");
        let h = hashes_per_share(&DIFFICULTY_1_TARGET);
        assert!((h / 2f64.powi(32) - 1.0).abs() < 1e-4, "{h}");
        let max = [0xff; 32];
        let t = target_for_hashes(2f64.powi(32), &max);
        assert!((difficulty(&t) - 1.0).abs() < 1e-4);
        assert_eq!(
            target_for_hashes(0.5, &DIFFICULTY_1_TARGET),
            DIFFICULTY_1_TARGET
        );
        assert_eq!(
            target_for_hashes(1e3, &DIFFICULTY_1_TARGET),
            DIFFICULTY_1_TARGET
        );
        assert_eq!(target_for_hashes(f64::NAN, &max), max);
        assert_eq!(target_for_hashes(1e300, &max)[0], 1);
    }
}
