//! A pcapng writer: transcripts as synthesised TCP connections, so that what the toolkit did opens in
//! Wireshark (with the key log written beside the capture, the Noise traffic decrypts too).
//!
//! The capture has one section and one Ethernet interface with nanosecond timestamps
//! (`if_tsresol` 9). Each transcript becomes one TCP connection between its endpoints (made-up
//! loopback addresses and ports when they are unknown, or when the same pair was already used in this
//! capture): a three-way handshake just before the first entry, then every byte the transcript says
//! went on the wire, in its direction and order, at the entry's time (handshake acts; a frame's bytes
//! on the wire, its ciphertext under Noise, else the plain frame; SV1 lines with their newline), in
//! segments of at most [`MSS`] bytes with the sequence and acknowledgement numbers a real stack would
//! use, then FIN/ACK from both sides after the last entry. Notes carry no bytes: they become the
//! `opt_comment` of the next packet.
//!
//! The writer streams: each packet is written as it is built, and nothing but the set of endpoint
//! pairs already used is kept between transcripts.

use std::borrow::Cow;
use std::collections::HashSet;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use etherparse::PacketBuilder;
use pcap_parser::{
    EnhancedPacketBlock, InterfaceDescriptionBlock, Linktype, OptionCode, PcapNGOption,
    SectionHeaderBlock, ToVec,
};

use crate::transcript::{Direction, Entry, Event, Transcript};

/// The largest TCP payload of one synthesised segment (Ethernet's usual MSS).
pub const MSS: usize = 1460;

/// The server port used when a transcript does not name its server.
pub const DEFAULT_SERVER_PORT: u16 = 34254;

/// The first of the made-up client ports (the dynamic range).
const FIRST_CLIENT_PORT: u16 = 49152;

/// The TCP window advertised by every segment.
const WINDOW: u16 = 65535;

/// The longest comment kept on a packet (a pcapng option's length is 16 bits).
const MAX_COMMENT: usize = 65_000;

const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

/// Why a capture could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Writing to the output failed.
    #[error("writing the capture: {0}")]
    Io(#[from] io::Error),
    /// A packet could not be built (not expected: segments are bounded).
    #[error("building a packet: {0}")]
    Packet(String),
    /// A pcapng block could not be serialised.
    #[error("serialising a pcapng block: {0}")]
    Block(String),
}

/// The two ends of a synthesised TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcpEndpoints {
    pub client: SocketAddr,
    pub server: SocketAddr,
}

/// Writes transcripts to a pcapng stream, one TCP connection each.
pub struct PcapngWriter<W: Write> {
    out: W,
    /// Endpoint pairs already used in this capture (each transcript gets its own connection).
    used: HashSet<TcpEndpoints>,
    next_port: u16,
    connections: u32,
    packets: u64,
    /// Reused for each packet's bytes.
    packet: Vec<u8>,
}

impl<W: Write> std::fmt::Debug for PcapngWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcapngWriter")
            .field("connections", &self.connections)
            .field("packets", &self.packets)
            .finish_non_exhaustive()
    }
}

impl<W: Write> PcapngWriter<W> {
    /// Starts a capture on `out`: writes the section header and the interface description.
    pub fn new(mut out: W) -> Result<Self, WriteError> {
        let mut shb = SectionHeaderBlock {
            block_type: 0,
            block_len1: 0,
            bom: 0,
            major_version: 1,
            minor_version: 0,
            section_len: -1,
            options: vec![option(
                OptionCode::ShbUserAppl,
                concat!("sv2-probe ", env!("CARGO_PKG_VERSION")).as_bytes(),
            )],
            block_len2: 0,
        };
        out.write_all(&shb.to_vec().map_err(block_error)?)?;
        let mut idb = InterfaceDescriptionBlock {
            block_type: 0,
            block_len1: 0,
            linktype: Linktype::ETHERNET,
            reserved: 0,
            snaplen: 65_535,
            options: Vec::new(),
            block_len2: 0,
            if_tsresol: 9,
            if_tsoffset: 0,
        };
        out.write_all(&idb.to_vec().map_err(block_error)?)?;
        Ok(PcapngWriter {
            out,
            used: HashSet::new(),
            next_port: FIRST_CLIENT_PORT,
            connections: 0,
            packets: 0,
            packet: Vec::with_capacity(14 + 60 + 60 + MSS),
        })
    }

    /// How many packets were written so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// How many connections (transcripts with entries) were written so far.
    pub fn connections(&self) -> u32 {
        self.connections
    }

    /// Writes `transcript` as one TCP connection and says between which endpoints. A transcript
    /// without entries writes nothing (there is no time to put its packets at) and gives `None`.
    pub fn add_transcript(
        &mut self,
        transcript: &Transcript,
    ) -> Result<Option<TcpEndpoints>, WriteError> {
        let entries = transcript.entries();
        let Some(first) = entries.front() else {
            return Ok(None);
        };
        let endpoints = self.endpoints(transcript.endpoints.client, transcript.endpoints.server);
        self.connections += 1;
        let mut tcp = Tcp::new(endpoints, self.connections);

        // The three-way handshake, just before the first entry.
        let t0 = first.at.0;
        self.segment(
            &mut tcp,
            Direction::ClientToServer,
            Flags::SYN,
            &[],
            t0.saturating_sub(3_000),
            None,
        )?;
        self.segment(
            &mut tcp,
            Direction::ServerToClient,
            Flags::SYN_ACK,
            &[],
            t0.saturating_sub(2_000),
            None,
        )?;
        self.segment(
            &mut tcp,
            Direction::ClientToServer,
            Flags::ACK,
            &[],
            t0.saturating_sub(1_000),
            None,
        )?;

        let mut comment = String::new();
        let mut end = t0;
        for entry in entries {
            end = end.max(entry.at.0);
            self.entry(&mut tcp, entry, &mut comment)?;
        }

        // The close: FIN from the client, FIN from the server, the last ACK.
        let pending = take_comment(&mut comment);
        self.segment(
            &mut tcp,
            Direction::ClientToServer,
            Flags::FIN_ACK,
            &[],
            end.saturating_add(1_000),
            pending.as_deref(),
        )?;
        self.segment(
            &mut tcp,
            Direction::ServerToClient,
            Flags::FIN_ACK,
            &[],
            end.saturating_add(2_000),
            None,
        )?;
        self.segment(
            &mut tcp,
            Direction::ClientToServer,
            Flags::ACK,
            &[],
            end.saturating_add(3_000),
            None,
        )?;
        Ok(Some(endpoints))
    }

    /// Flushes the output and gives it back.
    pub fn finish(mut self) -> Result<W, WriteError> {
        self.out.flush()?;
        Ok(self.out)
    }

    fn entry(
        &mut self,
        tcp: &mut Tcp,
        entry: &Entry,
        comment: &mut String,
    ) -> Result<(), WriteError> {
        let at = entry.at.0;
        let (direction, bytes, newline): (Direction, &[u8], bool) = match &entry.event {
            Event::Note { text } => {
                if !comment.is_empty() {
                    comment.push('\n');
                }
                comment.push_str(text);
                return Ok(());
            }
            Event::Encrypted { direction, len } => {
                // The bytes themselves were not kept: said, not invented.
                if !comment.is_empty() {
                    comment.push('\n');
                }
                comment.push_str(&format!(
                    "{}: {len} encrypted bytes not recorded",
                    direction.as_str()
                ));
                return Ok(());
            }
            Event::Handshake {
                direction, bytes, ..
            } => (*direction, bytes, false),
            Event::Frame {
                direction,
                plain,
                wire,
                ..
            } => (*direction, wire.as_deref().unwrap_or(plain), false),
            Event::Sv1 {
                direction, line, ..
            } => (*direction, line, true),
        };
        if bytes.is_empty() && !newline {
            return Ok(());
        }
        // An SV1 line's newline goes with its last segment (or alone, when the line fills segments
        // exactly); no copy of the line is made.
        let mut chunks = bytes.chunks(MSS).peekable();
        let mut tail = [0u8; MSS + 1];
        while let Some(chunk) = chunks.next() {
            let last = chunks.peek().is_none();
            let pending = take_comment(comment);
            if last && newline && chunk.len() < MSS {
                tail[..chunk.len()].copy_from_slice(chunk);
                tail[chunk.len()] = b'\n';
                let payload = &tail[..=chunk.len()];
                self.segment(
                    tcp,
                    direction,
                    Flags::PSH_ACK,
                    payload,
                    at,
                    pending.as_deref(),
                )?;
                return Ok(());
            }
            let flags = if last && !newline {
                Flags::PSH_ACK
            } else {
                Flags::ACK
            };
            self.segment(tcp, direction, flags, chunk, at, pending.as_deref())?;
        }
        if newline {
            let pending = take_comment(comment);
            self.segment(
                tcp,
                direction,
                Flags::PSH_ACK,
                b"\n",
                at,
                pending.as_deref(),
            )?;
        }
        Ok(())
    }

    /// Builds one segment, advances the sender's sequence number and writes the packet.
    fn segment(
        &mut self,
        tcp: &mut Tcp,
        direction: Direction,
        flags: Flags,
        payload: &[u8],
        at: u64,
        comment: Option<&str>,
    ) -> Result<(), WriteError> {
        let (src, dst, src_mac, dst_mac) = match direction {
            Direction::ClientToServer => (tcp.ends.client, tcp.ends.server, CLIENT_MAC, SERVER_MAC),
            Direction::ServerToClient => (tcp.ends.server, tcp.ends.client, SERVER_MAC, CLIENT_MAC),
        };
        let (seq, ack) = tcp.numbers(direction);
        let eth = PacketBuilder::ethernet2(src_mac, dst_mac);
        let ip = match (src.ip(), dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => eth.ipv4(s.octets(), d.octets(), 64),
            (s, d) => eth.ipv6(v6(s).octets(), v6(d).octets(), 64),
        };
        let mut builder = ip.tcp(src.port(), dst.port(), seq, WINDOW);
        if flags.syn {
            builder = builder.syn();
        }
        if flags.fin {
            builder = builder.fin();
        }
        if flags.psh {
            builder = builder.psh();
        }
        if flags.ack {
            builder = builder.ack(ack);
        }
        self.packet.clear();
        builder
            .write(&mut self.packet, payload)
            .map_err(|e| WriteError::Packet(e.to_string()))?;
        tcp.advance(direction, payload.len(), flags);

        let len = u32::try_from(self.packet.len())
            .map_err(|_| WriteError::Packet("packet longer than 4 GiB".into()))?;
        let mut options = Vec::new();
        if let Some(text) = comment {
            options.push(option(
                OptionCode::Comment,
                truncate(text, MAX_COMMENT).as_bytes(),
            ));
        }
        let mut epb = EnhancedPacketBlock {
            block_type: 0,
            block_len1: 0,
            if_id: 0,
            ts_high: (at >> 32) as u32,
            ts_low: at as u32,
            caplen: len,
            origlen: len,
            data: &self.packet,
            options,
            block_len2: 0,
        };
        self.out.write_all(&epb.to_vec().map_err(block_error)?)?;
        self.packets += 1;
        Ok(())
    }

    /// The endpoints of the next connection: the transcript's, completed with made-up loopback
    /// ones, with a made-up client port when this pair was already used in the capture.
    fn endpoints(
        &mut self,
        client: Option<SocketAddr>,
        server: Option<SocketAddr>,
    ) -> TcpEndpoints {
        let server = server.unwrap_or_else(|| {
            let ip = match client {
                Some(SocketAddr::V6(_)) => IpAddr::V6(Ipv6Addr::LOCALHOST),
                _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
            };
            SocketAddr::new(ip, DEFAULT_SERVER_PORT)
        });
        let client_ip = match (client, server) {
            (Some(c), _) => c.ip(),
            (None, SocketAddr::V6(_)) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            (None, SocketAddr::V4(_)) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        };
        // A connection between an IPv4 and an IPv6 address cannot be: both as IPv6.
        let (client_ip, server_ip) = match (client_ip, server.ip()) {
            (IpAddr::V4(_), IpAddr::V6(_)) | (IpAddr::V6(_), IpAddr::V4(_)) => {
                (IpAddr::V6(v6(client_ip)), IpAddr::V6(v6(server.ip())))
            }
            pair => pair,
        };
        let server = SocketAddr::new(server_ip, server.port());
        let mut ends = TcpEndpoints {
            client: SocketAddr::new(client_ip, client.map_or(0, |c| c.port())),
            server,
        };
        if client.is_none() || self.used.contains(&ends) {
            // At most 16384 made-up ports; past them, pairs repeat (Wireshark tells the
            // connections apart by their SYNs).
            for _ in 0..=(u16::MAX - FIRST_CLIENT_PORT) {
                ends.client.set_port(self.next_port);
                self.next_port = self.next_port.checked_add(1).unwrap_or(FIRST_CLIENT_PORT);
                if !self.used.contains(&ends) {
                    break;
                }
            }
        }
        self.used.insert(ends);
        ends
    }
}

/// The state of one synthesised connection: each side's next sequence number.
struct Tcp {
    ends: TcpEndpoints,
    client_next: u32,
    server_next: u32,
}

impl Tcp {
    fn new(ends: TcpEndpoints, index: u32) -> Self {
        // Made-up initial sequence numbers, different for each connection.
        Tcp {
            ends,
            client_next: 0x1000_0000u32.wrapping_add(index.wrapping_mul(0x0101_0101)),
            server_next: 0x8000_0000u32.wrapping_add(index.wrapping_mul(0x0102_0304)),
        }
    }

    /// The sender's sequence number and its acknowledgement of what the other side sent.
    fn numbers(&self, direction: Direction) -> (u32, u32) {
        match direction {
            Direction::ClientToServer => (self.client_next, self.server_next),
            Direction::ServerToClient => (self.server_next, self.client_next),
        }
    }

    fn advance(&mut self, direction: Direction, len: usize, flags: Flags) {
        // SYN and FIN take one sequence number each; segments are at most MSS bytes.
        let step = (len as u32)
            .wrapping_add(u32::from(flags.syn))
            .wrapping_add(u32::from(flags.fin));
        let next = match direction {
            Direction::ClientToServer => &mut self.client_next,
            Direction::ServerToClient => &mut self.server_next,
        };
        *next = next.wrapping_add(step);
    }
}

/// A pcapng that a server's connections are added to as each ends, from any task: the `--pcap` of
/// a long-running role. Each connection is flushed once written, so the file is readable while the
/// role runs and after it is interrupted (pcapng is a sequence of blocks).
#[derive(Clone)]
pub struct SharedPcapng {
    writer: std::sync::Arc<std::sync::Mutex<Option<PcapngWriter<io::BufWriter<std::fs::File>>>>>,
    path: std::path::PathBuf,
}

impl std::fmt::Debug for SharedPcapng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedPcapng")
            .field("path", &self.path)
            .finish()
    }
}

impl SharedPcapng {
    /// Creates (or replaces) the file at `path` and writes its header.
    pub fn create(path: &std::path::Path) -> Result<Self, WriteError> {
        let file = std::fs::File::create(path)?;
        let mut writer = PcapngWriter::new(io::BufWriter::new(file))?;
        writer.out.flush()?;
        Ok(SharedPcapng {
            writer: std::sync::Arc::new(std::sync::Mutex::new(Some(writer))),
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Adds one finished connection. After [`SharedPcapng::finish`] nothing more is written.
    pub fn add(&self, transcript: &Transcript) -> Result<(), WriteError> {
        let mut guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(writer) = guard.as_mut() {
            writer.add_transcript(transcript)?;
            writer.out.flush()?;
        }
        Ok(())
    }

    /// Flushes and closes the file; returns how many connections it holds (0 when already closed).
    pub fn finish(&self) -> Result<u32, WriteError> {
        let taken = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        match taken {
            Some(writer) => {
                let connections = writer.connections();
                writer.finish()?;
                Ok(connections)
            }
            None => Ok(0),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Flags {
    syn: bool,
    fin: bool,
    psh: bool,
    ack: bool,
}

impl Flags {
    const SYN: Flags = Flags {
        syn: true,
        fin: false,
        psh: false,
        ack: false,
    };
    const SYN_ACK: Flags = Flags {
        syn: true,
        fin: false,
        psh: false,
        ack: true,
    };
    const ACK: Flags = Flags {
        syn: false,
        fin: false,
        psh: false,
        ack: true,
    };
    const PSH_ACK: Flags = Flags {
        syn: false,
        fin: false,
        psh: true,
        ack: true,
    };
    const FIN_ACK: Flags = Flags {
        syn: false,
        fin: true,
        psh: false,
        ack: true,
    };
}

fn v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

fn option<'a>(code: OptionCode, value: &'a [u8]) -> PcapNGOption<'a> {
    PcapNGOption {
        code,
        // Values are bounded by the callers (comments are truncated).
        len: u16::try_from(value.len()).unwrap_or(u16::MAX),
        value: Cow::Borrowed(value),
    }
}

fn take_comment(comment: &mut String) -> Option<String> {
    (!comment.is_empty()).then(|| std::mem::take(comment))
}

fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn block_error(e: impl std::fmt::Debug) -> WriteError {
    WriteError::Block(format!("{e:?}"))
}
