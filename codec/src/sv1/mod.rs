//! Stratum V1, the line-based JSON-RPC protocol that SV2 translators and proxies speak downstream:
//! [`json`] reads and writes its lines (requests, notifications, responses; never panicking, every
//! refusal an [`json::Sv1Error`]); [`encoding`] holds its field conventions (byte orders of prevhash,
//! coinbase parts, version, ntime, nonce) and the typed parameters of the methods a miner uses.

pub mod encoding;
pub mod json;
