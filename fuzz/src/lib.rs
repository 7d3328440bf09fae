//! The fuzz targets' checks, kept apart from the nightly-only harness so that plain stable tests replay
//! saved inputs through the very same functions:
//!
//! - [`checks`]: the codec targets (framing, messages, Noise handshake, transport): the
//!   `sv2-fuzz-checks` crate (`fuzz-checks/`), which `codec/tests/fuzz_regressions.rs` uses too.
//! - [`differential`]: our decode against the reference implementation's (SRI) crates:
//!   `sv2_interop::differential` (`interop/src/differential.rs`), which `interop/tests/fuzz_regressions.rs`
//!   uses too.
#![forbid(unsafe_code)]

pub use sv2_fuzz_checks as checks;
pub use sv2_interop::differential;
