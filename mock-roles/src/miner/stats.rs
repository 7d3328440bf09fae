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
    /// Protocol violations of the pool reported.
    pub violations: u64,
}

/// Turns a running hash count into MH/s.
#[derive(Debug, Clone, Copy)]
pub struct HashrateMeter {
    started: Instant,
    last: Instant,
    last_hashes: u64,
}

impl HashrateMeter {
    pub fn new(now: Instant) -> Self {
        HashrateMeter {
            started: now,
            last: now,
            last_hashes: 0,
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
        let recent = mhs(
            hashes.saturating_sub(self.last_hashes),
            now.saturating_duration_since(self.last),
        );
        let average = mhs(hashes, now.saturating_duration_since(self.started));
        self.last = now;
        self.last_hashes = hashes;
        (recent, average)
    }
}
