//! `sv2-wire`, the conversation layer: where a conversation lives, whatever its source.
//!
//! - [`transcript`]: ONE transcript type (handshake acts, SV2 frames with wire and plain bytes and their
//!   strict decoding, SV1 lines, notes; absolute times; directions named by role; both endpoints), its
//!   JSON form and its one retention policy.
//! - [`decoder`]: the sans-IO stream decoder for one TCP direction (plain SV2, Noise acts then
//!   encrypted frames with keys handed in, SV1 lines).
//! - [`keylog`]: key-log sinks (a file, memory, `SV2KEYLOGFILE`) given to connections.
//! - [`connection`]: the thin tokio driver: a handshake, then whole frames, over the decoder.
//! - [`capture`]: pcap/pcapng reading, TCP reassembly, and conversations followed from a capture;
//!   [`capture::write`] turns transcripts into a pcapng of synthesised TCP connections.
//! - [`tap`]: a stream's received bytes as they came, for showing what a peer sent when nothing
//!   could be decoded.
//!
//! Everything but [`connection`] and [`tap`] is free of I/O and clocks: time is passed in.

#![forbid(unsafe_code)]

pub mod capture;
pub mod connection;
pub mod decoder;
pub mod keylog;
pub mod tap;
pub mod transcript;

pub use connection::{
    unix_now, Connection, HandshakeFailure, HandshakeInfo, NetError, WireShape, ACT1_STEP,
    ACT2_STEP,
};
pub use decoder::{looks_like, Mode, StreamDecoder, StreamError, StreamEvent};
pub use keylog::KeyLog;
pub use tap::{Tap, Tapped};
pub use transcript::{
    Direction, Endpoints, Entry, Event, FrameProblem, Retention, Side, Timestamp, Transcript,
};
