//! Network fuzzing of a live SV2 server (`sv2-probe fuzz --target URL`): a Mining protocol server
//! (a pool, a proxy's side that serves devices) or a template provider.
//!
//! Each case is stateful: it first reaches a protocol state with valid traffic (connected,
//! set up, a standard or an extended channel with its first job and prev hash; for a template
//! provider, its first template after CoinbaseOutputConstraints), then sends one
//! valid message of that state mutated ([`mutate`]: field-aware from the codec's field table,
//! frame-level, Noise-level, time-level), then asks the oracles ([`case::oracles`]):
//!
//! - expected error: a request whose bytes no reader could accept (a field past the payload's
//!   end, a length above its type's bound, an OPTION prefix of 2) must not get its success;
//! - the connection still answers a valid request, or is closed, when the framing is intact;
//! - the server still answers: a fresh connection completes the handshake and SetupConnection;
//! - with `--pid`: the process has not exited and its memory has not grown past a bound.
//!
//! A case is a conversation script ([`crate::script`]), so a finding is a scenario file that
//! `sv2-probe scenario run FILE --target URL` replays from a fresh connection; the campaign
//! replays it once, removes the steps it does not need ([`campaign::minimize`]), and writes it with
//! its transcript and a pcapng. Cases depend only on the campaign seed and their index, so a
//! campaign splits into shards (`--shard I/N`) whose reports merge ([`campaign::Report::merge`]).

pub mod campaign;
pub mod case;
pub mod client;
pub mod listen;
pub mod minimize;
pub mod mutate;
pub mod spans;

pub use campaign::{run, Class, Config, Report, Shard, Target};
pub use case::Role;
