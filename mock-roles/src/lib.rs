//! Mock Stratum V2 roles. The Bitcoin primitives they use are `sv2-chain`; the mining engine is
//! `sv2-engine`.
//!
//! Every role is a sans-IO core (bytes and events in, bytes and actions out) with a thin tokio driver, so
//! that the same core runs behind a socket, inside a fuzz target and in a deterministic test. [`work`] is
//! the client's view of work, shared by the device, the probe and the conformance suite.

#![forbid(unsafe_code)]

pub mod miner;
pub mod pool;
pub mod proxy;
pub mod served;
pub mod sv1;
pub mod tp;
pub mod work;
