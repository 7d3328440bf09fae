//! Live statistics of a mining driver (SV2 device or SV1 client), published through a
//! `tokio::sync::watch` channel.

use std::time::{Duration, Instant};

/// A snapshot of a running miner.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MinerStats {
    /// The session is established (handshake done, setup/subscribe answered).
    pub connected: bool,
    /// Time since the driver started.
    pub elapsed: Duration,
    /// Hashes computed by the engine so far.
    pub hashes: u64,
    /// MH/s over the last measurement interval.
    pub mhs: f64,
    /// MH/s since the engine started.
    pub mhs_average: f64,
    /// Jobs received.
    pub jobs: u64,
    /// Shares the engine found.
    pub found: u64,
    /// Shares sent.
    pub submitted: u64,
    /// Shares the pool accepted.
    pub accepted: u64,
    /// Shares the pool rejected.
    pub rejected: u64,
    /// Found shares not sent (stale, above target, duplicate, rate limit).
    pub dropped: u64,
    /// Shares meeting the network target.
    pub blocks: u64,
}

/// Turns a running hash count into MH/s.
#[derive(Debug, Clone, Copy)]
pub struct HashrateMeter {
    started: Instant,
    last: Instant,
    last_hashes: u64,
    recent: f64,
}

impl HashrateMeter {
    /// Samples closer together than this keep the previous recent rate (the engine counts hashes
    /// per finished batch, so a short interval says little).
    pub const MIN_INTERVAL: Duration = Duration::from_millis(200);

    pub fn new(now: Instant) -> Self {
        HashrateMeter {
            started: now,
            last: now,
            last_hashes: 0,
            recent: 0.0,
        }
    }

    /// `(MH/s since the last sample, MH/s since the start)` for the total `hashes` at `now`.
    pub fn sample(&mut self, hashes: u64, now: Instant) -> (f64, f64) {
        let mhs = |h: u64, d: Duration| {
            let s = d.as_secs_f64();
            if s > 0.0 {
                h as f64 / s / 1e6
            } else {
                0.0
            }
        };
        let average = mhs(hashes, now.saturating_duration_since(self.started));
        let interval = now.saturating_duration_since(self.last);
        if interval >= Self::MIN_INTERVAL {
            self.recent = mhs(hashes.saturating_sub(self.last_hashes), interval);
            self.last = now;
            self.last_hashes = hashes;
        }
        (self.recent, average)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_over_intervals() {
        let t0 = Instant::now();
        let mut m = HashrateMeter::new(t0);
        let (recent, average) = m.sample(2_000_000, t0 + Duration::from_secs(1));
        assert_eq!((recent, average), (2.0, 2.0));
        let (recent, average) = m.sample(8_000_000, t0 + Duration::from_secs(2));
        assert_eq!((recent, average), (6.0, 4.0));
        // Too close to the last sample: the recent rate stays.
        let (recent, _) = m.sample(8_000_000, t0 + Duration::from_millis(2010));
        assert_eq!(recent, 6.0);
    }
}
