//! What a command concluded about its input, which sets the exit code.

/// What a command concluded about its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything checked out (exit 0).
    Pass,
    /// Something was malformed or failed a check (exit 1).
    Fail,
}
