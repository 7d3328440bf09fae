//! `sv2-conformance`: the Stratum V2 conformance suite for Mining-protocol servers (pools, and
//! proxies acting as upstream).
//!
//! - [`check`]: what a check is (id, spec section, level, role); [`verdict`]: what it concludes.
//! - [`checks`]: the catalogue, by spec area; each active check drives the target on fresh
//!   connections.
//! - [`monitor`]: the passive monitor, per-message rules over any [`sv2_wire::Transcript`].
//! - [`probe`]: the probe, a scripted client walking a live pool through one session step by step.
//! - [`runner`]: runs a selection of checks against a target, the monitor over every connection.
//! - [`expected`]: reviewed expected verdicts, and the differences of a run from them.
//! - [`review`]: what a check's evidence says about its verdict (refusals outside the check,
//!   frames that could not be read).
//! - [`quotes`]: the spec sentence(s) each check and rule rests on, with file and line.
//! - [`report`]: text grouped by spec section, JSON with the evidence, JUnit XML.
//! - [`session`]: connections as checks use them, following the work handed out with
//!   `sv2_mock::work` and mining shares to order.
#![forbid(unsafe_code)]

pub mod check;
pub mod checks;
pub mod expected;
pub mod monitor;
pub mod probe;
pub mod quotes;
pub mod report;
pub mod review;
pub mod runner;
pub mod serve;
pub mod session;
pub mod verdict;

pub use check::{Check, Level, Role};
pub use runner::{run, run_observed, Progress, Report, Selection};
pub use session::{Security, Target};
pub use verdict::{Outcome, Verdict};
