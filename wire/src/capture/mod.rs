//! Captures: pcap and pcapng files read packet by packet ([`read`]), TCP segments reassembled into
//! each connection's byte streams ([`reassembly`]), and those streams read as conversations
//! ([`follow`]): the same stream decoder and transcript as live connections, with the capture's
//! timestamps, Noise decrypted with a key log.

pub mod follow;
pub mod read;
pub mod reassembly;

pub use follow::{Conversation, Decryption, Follower, Protocol};
pub use read::{CaptureError, CaptureReader, Packet, Segment};
pub use reassembly::{ConnectionId, Delivery, Reassembler};
