//! What a check (or a probe step) concludes: a [`Verdict`], and an [`Outcome`] that says in words what
//! the spec expects and what came.

use serde::Serialize;

/// The verdict of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The target did what the spec requires.
    Pass,
    /// The target broke the requirement; the evidence shows how.
    Fail,
    /// The check does not apply to this target (the reason says why).
    Skip,
    /// The check could not run (the target was unreachable, for instance).
    Error,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Skip => "skip",
            Verdict::Error => "error",
        }
    }
}

/// What a check concluded, in words: the verdict, what the spec expects, what came.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub verdict: Verdict,
    /// What a conforming target does.
    pub expected: String,
    /// What this one did (or why the check was skipped or could not run).
    pub observed: String,
}

impl Outcome {
    pub fn pass(expected: impl Into<String>, observed: impl Into<String>) -> Self {
        Self::new(Verdict::Pass, expected, observed)
    }

    pub fn fail(expected: impl Into<String>, observed: impl Into<String>) -> Self {
        Self::new(Verdict::Fail, expected, observed)
    }

    pub fn skip(reason: impl Into<String>) -> Self {
        Self::new(Verdict::Skip, "", reason)
    }

    pub fn error(reason: impl Into<String>) -> Self {
        Self::new(Verdict::Error, "", reason)
    }

    pub fn new(verdict: Verdict, expected: impl Into<String>, observed: impl Into<String>) -> Self {
        Self {
            verdict,
            expected: expected.into(),
            observed: observed.into(),
        }
    }

    /// Pass when `ok`, fail otherwise, with the same expectation.
    pub fn judge(ok: bool, expected: impl Into<String>, observed: impl Into<String>) -> Self {
        let verdict = if ok { Verdict::Pass } else { Verdict::Fail };
        Self::new(verdict, expected, observed)
    }
}
