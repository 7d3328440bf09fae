//! Reading captures: classic pcap (microsecond or nanosecond timestamps, either byte order) and
//! pcapng (several interfaces, each with its link type and time resolution; enhanced and simple
//! packet blocks), streamed block by block with `pcap-parser`, and each packet's TCP segment taken
//! out of its link, IP and TCP headers with `etherparse`.
//!
//! Link types: Ethernet (with VLAN tags), Linux cooked capture v1 and v2, raw IPv4/IPv6, BSD
//! loopback (null and loop). A packet that is not TCP over IP is skipped; one whose headers do not
//! parse (cut by the snap length, corrupt) is counted with its reason, and reading goes on.

use std::io::Read;
use std::net::{IpAddr, SocketAddr};

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{Linktype, PcapBlockOwned, PcapError};

use crate::transcript::Timestamp;

/// The most bytes of one block the reader holds (a jumbo frame is 9 KB; pcapng blocks of a
/// 256 KiB snap length fit). A block claiming more is an error, not an allocation.
pub const MAX_BLOCK: usize = 4 << 20;

/// Why a capture cannot be read on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaptureError {
    #[error("not a pcap or pcapng file (or an empty one)")]
    NotACapture,
    #[error("block {block}: the file ends inside it (truncated capture)")]
    Truncated { block: u64 },
    #[error("block {block}: {what}")]
    Corrupt { block: u64, what: String },
    #[error("block {block}: larger than {MAX_BLOCK} bytes (a corrupt length?)")]
    TooLarge { block: u64 },
    #[error("reading the file: {0}")]
    Io(String),
}

/// A TCP segment of the capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// The packet's number in the capture, from 1 (as Wireshark counts).
    pub number: u64,
    pub at: Timestamp,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub syn: bool,
    /// The ACK flag: with SYN, the server's answer.
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
    pub payload: Vec<u8>,
}

/// What a packet turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    Tcp(Segment),
    /// Not TCP over IP (ARP, UDP, ICMP, an unsupported link type): nothing to follow.
    Other {
        number: u64,
    },
    /// Headers that do not parse: the reason, with the packet's number.
    Unreadable {
        number: u64,
        reason: String,
    },
}

/// One interface of a pcapng section (classic pcap has one).
#[derive(Debug, Clone, Copy)]
struct Interface {
    linktype: Linktype,
    /// Timestamp units per second.
    resolution: u64,
    offset: i64,
}

/// A capture file, streamed.
pub struct CaptureReader<'r> {
    inner: Box<dyn PcapReaderIterator + 'r>,
    state: State,
    /// Blocks read so far (for error messages).
    blocks: u64,
    /// The reader's buffer size: doubled for a block that does not fit, up to [`MAX_BLOCK`].
    capacity: usize,
    done: bool,
}

/// The reader's first buffer (most blocks are a packet of at most a few KB).
const FIRST_BUFFER: usize = 64 * 1024;

/// What the blocks read so far said.
#[derive(Debug, Default)]
struct State {
    interfaces: Vec<Interface>,
    /// Packets read so far.
    packets: u64,
}

impl std::fmt::Debug for CaptureReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureReader")
            .field("blocks", &self.blocks)
            .field("packets", &self.state.packets)
            .finish()
    }
}

impl<'r> CaptureReader<'r> {
    /// A reader of `input` (pcap or pcapng, told by the magic number).
    pub fn new<R: Read + 'r>(input: R) -> Result<CaptureReader<'r>, CaptureError> {
        let inner = pcap_parser::create_reader(FIRST_BUFFER, input).map_err(|e| match e {
            PcapError::Eof | PcapError::HeaderNotRecognized => CaptureError::NotACapture,
            PcapError::ReadError => CaptureError::Io("read error".into()),
            other => CaptureError::Corrupt {
                block: 0,
                what: format!("{other:?}"),
            },
        })?;
        Ok(CaptureReader {
            inner,
            state: State::default(),
            blocks: 0,
            capacity: FIRST_BUFFER,
            done: false,
        })
    }

    /// The next packet, or the error that ends the capture, or None at its end.
    pub fn next_packet(&mut self) -> Option<Result<Packet, CaptureError>> {
        while !self.done {
            match self.inner.next() {
                Ok((offset, block)) => {
                    self.blocks += 1;
                    let packet = self.state.block(block);
                    self.inner.consume(offset);
                    if let Some(packet) = packet {
                        return Some(Ok(packet));
                    }
                }
                Err(PcapError::Eof) => {
                    self.done = true;
                }
                Err(PcapError::Incomplete(_)) => {
                    let block = self.blocks + 1;
                    match self.inner.refill() {
                        Ok(()) => {}
                        Err(PcapError::BufferTooSmall) => {
                            // A block larger than the buffer: a bigger one, within the bound.
                            if self.capacity < MAX_BLOCK && self.inner.grow(self.capacity * 2) {
                                self.capacity *= 2;
                                continue;
                            }
                            self.done = true;
                            return Some(Err(CaptureError::TooLarge { block }));
                        }
                        Err(e) => {
                            self.done = true;
                            return Some(Err(match e {
                                PcapError::ReadError => CaptureError::Io("read error".into()),
                                PcapError::Eof => CaptureError::Truncated { block },
                                other => CaptureError::Corrupt {
                                    block,
                                    what: format!("{other:?}"),
                                },
                            }));
                        }
                    }
                    // The file ended: cleanly between blocks, or inside one (truncated).
                    if self.inner.reader_exhausted() && self.inner.data().is_empty() {
                        self.done = true;
                        continue;
                    }
                    if self.inner.reader_exhausted() {
                        match self.inner.next() {
                            Err(PcapError::Incomplete(_)) | Err(PcapError::Eof) => {
                                self.done = true;
                                return Some(Err(CaptureError::Truncated {
                                    block: self.blocks + 1,
                                }));
                            }
                            _ => continue,
                        }
                    }
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(CaptureError::Corrupt {
                        block: self.blocks + 1,
                        what: format!("{e:?}"),
                    }));
                }
            }
        }
        None
    }

    /// Packets read so far.
    pub fn packets(&self) -> u64 {
        self.state.packets
    }
}

impl State {
    /// The packet a block holds (None for blocks that hold none).
    fn block(&mut self, block: PcapBlockOwned<'_>) -> Option<Packet> {
        match block {
            PcapBlockOwned::LegacyHeader(header) => {
                self.interfaces = vec![Interface {
                    linktype: header.network,
                    resolution: if header.is_nanosecond_precision() {
                        1_000_000_000
                    } else {
                        1_000_000
                    },
                    offset: 0,
                }];
                None
            }
            PcapBlockOwned::Legacy(b) => {
                let interface = self.interfaces.first().copied()?;
                let units = u64::from(b.ts_sec) * interface.resolution + u64::from(b.ts_usec);
                let data = &b.data[..(b.caplen as usize).min(b.data.len())];
                Some(self.packet(interface, units, data))
            }
            PcapBlockOwned::NG(Block::SectionHeader(_)) => {
                // A new section: its interfaces are numbered afresh.
                self.interfaces.clear();
                None
            }
            PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                self.interfaces.push(Interface {
                    linktype: idb.linktype,
                    resolution: idb.ts_resolution().unwrap_or(1_000_000),
                    offset: idb.ts_offset(),
                });
                None
            }
            PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                let number = self.packets + 1;
                let Some(interface) = self.interfaces.get(epb.if_id as usize).copied() else {
                    self.packets += 1;
                    return Some(Packet::Unreadable {
                        number,
                        reason: format!("interface {} was never described", epb.if_id),
                    });
                };
                let units = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                let data = &epb.data[..(epb.caplen as usize).min(epb.data.len())];
                Some(self.packet(interface, units, data))
            }
            PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                // No timestamp, interface 0.
                let interface = self.interfaces.first().copied()?;
                let data = &spb.data[..(spb.origlen as usize).min(spb.data.len())];
                Some(self.packet(interface, 0, data))
            }
            PcapBlockOwned::NG(_) => None,
        }
    }

    fn packet(&mut self, interface: Interface, units: u64, data: &[u8]) -> Packet {
        self.packets += 1;
        let number = self.packets;
        let secs = (units / interface.resolution.max(1)) as i64 + interface.offset;
        let frac = units % interface.resolution.max(1);
        let nanos =
            (u128::from(frac) * 1_000_000_000 / u128::from(interface.resolution.max(1))) as u32;
        let at = Timestamp::from_parts(secs.max(0) as u64, nanos);
        match tcp_of(interface.linktype, data) {
            Ok(Some((src, dst, tcp))) => Packet::Tcp(Segment {
                number,
                at,
                src,
                dst,
                seq: tcp.seq,
                syn: tcp.syn,
                ack: tcp.ack,
                fin: tcp.fin,
                rst: tcp.rst,
                payload: tcp.payload,
            }),
            Ok(None) => Packet::Other { number },
            Err(reason) => Packet::Unreadable { number, reason },
        }
    }
}

impl Iterator for CaptureReader<'_> {
    type Item = Result<Packet, CaptureError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_packet()
    }
}

struct Tcp {
    seq: u32,
    syn: bool,
    ack: bool,
    fin: bool,
    rst: bool,
    payload: Vec<u8>,
}

/// The TCP segment in a link-layer packet: None when it holds none.
fn tcp_of(
    linktype: Linktype,
    data: &[u8],
) -> Result<Option<(SocketAddr, SocketAddr, Tcp)>, String> {
    let sliced = match linktype {
        Linktype::ETHERNET => SlicedPacket::from_ethernet(data),
        Linktype::LINUX_SLL => SlicedPacket::from_linux_sll(data),
        Linktype::LINUX_SLL2 => {
            // 20 bytes: the protocol type (an EtherType) first, then interface, ARPHRD, packet
            // type and the link-layer address.
            if data.len() < 20 {
                return Err(format!("a Linux cooked v2 header of {} bytes", data.len()));
            }
            let ether_type = u16::from_be_bytes([data[0], data[1]]);
            SlicedPacket::from_ether_type(etherparse::EtherType(ether_type), &data[20..])
        }
        Linktype::RAW | Linktype::IPV4 | Linktype::IPV6 => SlicedPacket::from_ip(data),
        Linktype::NULL | Linktype::LOOP => {
            // A 4-byte address family (host order for NULL, network order for LOOP); the IP
            // version in the next byte says the same, and is what is read.
            if data.len() < 4 {
                return Err(format!("a loopback header of {} bytes", data.len()));
            }
            SlicedPacket::from_ip(&data[4..])
        }
        _ => return Ok(None),
    };
    let sliced = sliced.map_err(|e| e.to_string())?;
    let (src_ip, dst_ip): (IpAddr, IpAddr) = match &sliced.net {
        Some(NetSlice::Ipv4(ip)) => (
            ip.header().source_addr().into(),
            ip.header().destination_addr().into(),
        ),
        Some(NetSlice::Ipv6(ip)) => (
            ip.header().source_addr().into(),
            ip.header().destination_addr().into(),
        ),
        _ => return Ok(None),
    };
    let Some(TransportSlice::Tcp(tcp)) = &sliced.transport else {
        return Ok(None);
    };
    Ok(Some((
        SocketAddr::new(src_ip, tcp.source_port()),
        SocketAddr::new(dst_ip, tcp.destination_port()),
        Tcp {
            seq: tcp.sequence_number(),
            syn: tcp.syn(),
            ack: tcp.ack(),
            fin: tcp.fin(),
            rst: tcp.rst(),
            payload: tcp.payload().to_vec(),
        },
    )))
}
