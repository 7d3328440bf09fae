//! Mining-protocol server checks: channels, jobs, targets (spec §5, CATALOG §F 39-64).

use crate::check::Check;

pub const CHECKS: &[Check] = &[];
