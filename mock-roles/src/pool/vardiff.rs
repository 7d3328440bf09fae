//! Variable difficulty: a channel's target follows the rate of its accepted shares toward a configured
//! number of shares per minute, within `[hardest, min(client max_target, easiest)]`.

use sv2_chain::target::{hashes_per_share, meets_target, target_for_hashes};

/// How vardiff steers.
#[derive(Debug, Clone, PartialEq)]
pub struct VardiffConfig {
    /// Retarget at all.
    pub enabled: bool,
    /// The share rate aimed at.
    pub shares_per_minute: f64,
    /// Seconds between retargets of a channel.
    pub interval_secs: u32,
    /// No retarget while the observed rate is within this factor of the aim (e.g. 2.0: between half
    /// and twice).
    pub tolerance: f64,
}

impl Default for VardiffConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            shares_per_minute: 10.0,
            interval_secs: 60,
            tolerance: 2.0,
        }
    }
}

/// A channel's vardiff bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VardiffState {
    /// When the current window began.
    pub since: u32,
    /// Shares accepted in the window.
    pub accepted: u64,
}

impl VardiffState {
    pub fn new(now: u32) -> Self {
        Self {
            since: now,
            accepted: 0,
        }
    }
}

/// The smaller (harder) of two targets.
pub fn harder(a: [u8; 32], b: [u8; 32]) -> [u8; 32] {
    if meets_target(&a, &b) {
        a
    } else {
        b
    }
}

/// The larger (easier) of two targets.
pub fn easier(a: [u8; 32], b: [u8; 32]) -> [u8; 32] {
    if meets_target(&a, &b) {
        b
    } else {
        a
    }
}

/// `target` clamped to `[hardest, ceiling]` (the ceiling wins when they cross).
pub fn clamp(target: [u8; 32], hardest: [u8; 32], ceiling: [u8; 32]) -> [u8; 32] {
    harder(easier(target, hardest), ceiling)
}

/// A usable share rate: positive and finite.
fn aims(config: &VardiffConfig) -> bool {
    config.shares_per_minute.is_finite() && config.shares_per_minute > 0.0
}

/// The first target of a channel announcing `nominal_hash_rate` h/s: one share every
/// `60 / shares_per_minute` seconds, or `ceiling` when the rate is unknown (0).
pub fn initial_target(
    nominal_hash_rate: f32,
    config: &VardiffConfig,
    hardest: [u8; 32],
    ceiling: [u8; 32],
) -> [u8; 32] {
    let rate = f64::from(nominal_hash_rate);
    if rate.is_nan() || rate <= 0.0 || !rate.is_finite() || !aims(config) {
        return clamp(ceiling, hardest, ceiling);
    }
    let hashes = rate * 60.0 / config.shares_per_minute;
    clamp(target_for_hashes(hashes, &ceiling), hardest, ceiling)
}

/// A new target for a channel whose window ends at `now`, or None when it should not change. The
/// window restarts whenever the interval has passed.
pub fn retarget(
    state: &mut VardiffState,
    current: [u8; 32],
    now: u32,
    config: &VardiffConfig,
    hardest: [u8; 32],
    ceiling: [u8; 32],
) -> Option<[u8; 32]> {
    if !config.enabled || config.interval_secs == 0 || !aims(config) {
        return None;
    }
    let elapsed = now.saturating_sub(state.since);
    if elapsed < config.interval_secs {
        return None;
    }
    let accepted = state.accepted;
    *state = VardiffState::new(now);
    let expected = config.shares_per_minute * f64::from(elapsed) / 60.0;
    let ratio = accepted as f64 / expected;
    let tolerance = config.tolerance.max(1.0);
    if ratio <= tolerance && ratio >= 1.0 / tolerance {
        return None;
    }
    // Nothing at all: at most a quarter of the aim, so four times easier; otherwise scale the work
    // per share by the observed ratio.
    let ratio = if accepted == 0 { 0.25 } else { ratio };
    let hashes = hashes_per_share(&current) * ratio;
    let next = clamp(target_for_hashes(hashes, &ceiling), hardest, ceiling);
    (next != current).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sv2_chain::target::{difficulty, DIFFICULTY_1_TARGET};

    const CEILING: [u8; 32] = {
        let mut t = [0xff; 32];
        t[31] = 0x7f;
        t
    };
    const HARDEST: [u8; 32] = {
        let mut t = [0; 32];
        t[24] = 1;
        t
    };

    #[test]
    fn initial_targets_follow_the_hash_rate() {
        let config = VardiffConfig::default();
        // 10 shares per minute at 2^32 h/s: 6 * 2^32 hashes per share, which is difficulty 6 by the
        // 2^32-hashes rule of thumb, exactly 6 * 0xffff / 0x10000 against the difficulty-1 target.
        let t = initial_target(4_294_967_296.0, &config, HARDEST, CEILING);
        let d = difficulty(&t);
        assert!((d - 6.0 * 65_535.0 / 65_536.0).abs() < 1e-6, "{d}");
        assert_eq!(initial_target(0.0, &config, HARDEST, CEILING), CEILING);
        assert_eq!(initial_target(f32::NAN, &config, HARDEST, CEILING), CEILING);
        // A rate so high the target would pass the hardest is held at the hardest.
        assert_eq!(initial_target(1e38, &config, HARDEST, CEILING), HARDEST);
        // The ceiling wins.
        assert_eq!(
            initial_target(1.0, &config, HARDEST, DIFFICULTY_1_TARGET),
            DIFFICULTY_1_TARGET
        );
    }

    #[test]
    fn fast_channels_get_harder_and_idle_ones_easier() {
        let config = VardiffConfig::default();
        let start = DIFFICULTY_1_TARGET;
        let mut state = VardiffState::new(100);
        state.accepted = 100;
        // Too early: nothing, and the window stays.
        assert_eq!(
            retarget(&mut state, start, 130, &config, HARDEST, CEILING),
            None
        );
        assert_eq!(state.accepted, 100);
        // 100 shares in a minute at an aim of 10: ten times harder.
        let next = retarget(&mut state, start, 160, &config, HARDEST, CEILING).unwrap();
        assert!((difficulty(&next) / difficulty(&start) - 10.0).abs() < 1e-6);
        assert_eq!(state, VardiffState::new(160));
        // On aim: no change.
        state.accepted = 12;
        assert_eq!(
            retarget(&mut state, next, 220, &config, HARDEST, CEILING),
            None
        );
        // Idle: four times easier.
        let easier_one = retarget(&mut state, next, 280, &config, HARDEST, CEILING).unwrap();
        assert!((difficulty(&next) / difficulty(&easier_one) - 4.0).abs() < 1e-6);
        // Never past the ceiling.
        let mut idle = VardiffState::new(0);
        assert_eq!(
            retarget(&mut idle, CEILING, 600, &config, HARDEST, CEILING),
            None
        );
        // Disabled: never.
        let off = VardiffConfig {
            enabled: false,
            ..config
        };
        let mut s = VardiffState::new(0);
        s.accepted = 1000;
        assert_eq!(retarget(&mut s, start, 600, &off, HARDEST, CEILING), None);
    }

    #[test]
    fn clamping_orders_targets() {
        assert_eq!(harder(HARDEST, CEILING), HARDEST);
        assert_eq!(easier(HARDEST, CEILING), CEILING);
        assert_eq!(clamp([0; 32], HARDEST, CEILING), HARDEST);
        assert_eq!(clamp([0xff; 32], HARDEST, CEILING), CEILING);
    }
}
