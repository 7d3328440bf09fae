//! Mock Stratum V2 roles and the CPU mining engine.
//!
//! Every role is a sans-IO core (bytes and events in, bytes and actions out) with a thin tokio driver, so
//! that the same core runs behind a socket, inside a fuzz target and in a deterministic test.

pub mod chain;

pub mod engine;
pub mod miner;
pub mod net;
pub mod pool;
pub mod sv1;
pub mod tp;
