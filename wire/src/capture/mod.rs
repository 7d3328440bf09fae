//! Captures: pcap and pcapng files read packet by packet ([`read`]), TCP segments reassembled into
//! each connection's byte streams ([`reassembly`]), and those streams read as conversations
//! ([`follow`]): the same stream decoder and transcript as live connections, with the capture's
//! timestamps, Noise decrypted with a key log. And the other way ([`write`]): transcripts as a pcapng
//! of synthesised TCP connections, to be opened in Wireshark or read back.

pub mod follow;
pub mod read;
pub mod reassembly;
pub mod write;

pub use follow::{Conversation, Decryption, Follower, Protocol, ReadEnd, Seen};
pub use read::{CaptureError, CaptureReader, Packet, Segment};
pub use reassembly::{ConnectionId, Delivery, Reassembler};
