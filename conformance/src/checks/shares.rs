//! Share submission checks (spec §5.3.11-5.3.14, CATALOG §F 56-60).

use crate::check::Check;

pub const CHECKS: &[Check] = &[];
