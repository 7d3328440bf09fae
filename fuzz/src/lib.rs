//! The checks behind the fuzz targets, kept apart from the nightly-only harness so that plain stable
//! tests replay saved inputs through the very same functions:
//!
//! - [`checks`]: the codec targets (framing, messages, Noise handshake, transport). Depends on
//!   sv2-codec and serde_json only; `codec/tests/fuzz_regressions.rs` includes it with `#[path]`.
//! - [`differential`]: our decode against the reference implementation's (SRI) crates.
//!   `interop/tests/fuzz_regressions.rs` includes it with `#[path]`.
#![forbid(unsafe_code)]

pub mod checks;
pub mod differential;
