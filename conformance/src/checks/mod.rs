//! The catalogue: every check, grouped by the part of the spec it tests. Active checks live in the
//! files below; the passive monitor's rules in [`crate::monitor::RULES`].
//!
//! Ids are `group.name`; groups: `noise` (§4), `setup` (§3.6, and framing §3.1-3.2 exercised through
//! it), `ext` (§3.4 and extensions 0x0001/0x0002), `mining` (§5: channels, jobs, targets), `shares`
//! (§5.3.11-5.3.21: share submission, each share mined valid but for the rule under test), `monitor`
//! (rules over every connection).

use crate::check::Check;
use crate::monitor;
use crate::session::Ctx;
use crate::verdict::Outcome;

pub mod device;
pub mod extensions;
pub mod mining;
pub mod noise;
pub mod proxy;
pub mod setup;
pub mod shares;
pub mod translator;

/// Every check, in report order.
pub fn catalogue() -> Vec<Check> {
    let mut all = Vec::new();
    all.extend_from_slice(noise::CHECKS);
    all.extend_from_slice(setup::CHECKS);
    all.extend_from_slice(extensions::CHECKS);
    all.extend_from_slice(mining::CHECKS);
    all.extend_from_slice(shares::CHECKS);
    all.extend_from_slice(monitor::RULES);
    all
}

/// The traffic the runner makes when only monitor rules are selected: a connection that opens a
/// standard and two extended channels, waits for their work and submits a share on each.
pub fn traffic_check() -> Check {
    crate::active!(
        "monitor.traffic",
        "5",
        May,
        None,
        "ordinary mining traffic for the monitor rules",
        traffic
    )
}

async fn traffic(ctx: Ctx) -> Outcome {
    let mut s = match ctx.setup("traffic", 0).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    let window = ctx.target().work_window;
    let budget = ctx.target().hash_budget;
    let mut channels = Vec::new();
    if let Ok(c) = s.open_standard().await {
        channels.push(c.channel_id);
    }
    // Two extended channels: a server that groups them shows its group rules too.
    for min_extranonce_size in [0, 4] {
        match s.open_extended(min_extranonce_size).await {
            Ok(c) => channels.push(c.channel_id),
            Err(o) => return o,
        }
    }
    for &id in &channels {
        let Ok(work) = s.wait_for_work(id, window).await else {
            continue;
        };
        if let Some(share) = sv2_mock::work::mine(&work, work.params(), None, budget).await {
            let seq = s.sequence_number();
            let _ = s.send(&work.submit(seq, &share)).await;
        }
    }
    let _ = s.collect(ctx.target().timeout).await;
    Outcome::pass("traffic", "done")
}
