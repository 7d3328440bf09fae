//! Networking shared by every mock role and the probe: a connection driver (Noise or plaintext, whole
//! frames, deadlines, named failure steps), the transcript it records, and opt-in key logging
//! (`SV2KEYLOGFILE`).

pub mod connection;
pub mod keylog;
pub mod served;
pub mod transcript;

pub use connection::{unix_now, Connection, HandshakeInfo, NetError};
pub use transcript::{Direction, Entry, Event, FrameProblem, Transcript};
