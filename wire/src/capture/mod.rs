//! Captures: conversations as packets, to be opened in Wireshark or read back.

pub mod write;
