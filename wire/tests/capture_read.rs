//! The capture reader on every container and link layer it supports: classic pcap in both byte
//! orders with microsecond and nanosecond timestamps, and the link types Ethernet (with a VLAN tag),
//! Linux cooked v1 and v2, raw IPv4/IPv6 and BSD loopback. Each file carries the same TCP segment;
//! the reader must find its addresses, flags, payload and time.

use std::net::SocketAddr;

use etherparse::PacketBuilder;
use sv2_wire::capture::{CaptureError, CaptureReader, Packet};
use sv2_wire::Timestamp;

const PAYLOAD: &[u8] = b"\x00\x00\x00\x05\x00\x00hello";
const SECS: u32 = 1_700_000_000;

/// The TCP/IP packet (no link layer), IPv4 or IPv6.
fn ip_packet(v6: bool) -> Vec<u8> {
    let builder = if v6 {
        PacketBuilder::ipv6(
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            64,
        )
    } else {
        PacketBuilder::ipv4([127, 0, 0, 1], [127, 0, 0, 2], 64)
    };
    let tcp = builder.tcp(40_000, 34_254, 77, 1024).syn().fin();
    let mut out = Vec::new();
    tcp.write(&mut out, PAYLOAD).unwrap();
    out
}

fn ethernet_vlan() -> Vec<u8> {
    let builder = PacketBuilder::ethernet2([1; 6], [2; 6])
        .single_vlan(etherparse::VlanId::try_new(42).unwrap())
        .ipv4([127, 0, 0, 1], [127, 0, 0, 2], 64)
        .tcp(40_000, 34_254, 77, 1024)
        .syn()
        .fin();
    let mut out = Vec::new();
    builder.write(&mut out, PAYLOAD).unwrap();
    out
}

/// Linux cooked v1: packet type, ARPHRD, address length, 8 address bytes, protocol (IPv4).
fn sll1() -> Vec<u8> {
    let mut out = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00];
    out.extend(ip_packet(false));
    out
}

/// Linux cooked v2: protocol (IPv6), reserved, interface index, ARPHRD, packet type, address
/// length, 8 address bytes.
fn sll2() -> Vec<u8> {
    let mut out = vec![
        0x86, 0xdd, 0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0,
    ];
    out.extend(ip_packet(true));
    out
}

/// BSD loopback (DLT_NULL): the address family in host order (2: IPv4).
fn null_loopback() -> Vec<u8> {
    let mut out = 2u32.to_le_bytes().to_vec();
    out.extend(ip_packet(false));
    out
}

/// A classic pcap of one packet: `big` endian or not, `nanos` timestamps or micros.
fn pcap(linktype: u32, packet: &[u8], big: bool, nanos: bool) -> Vec<u8> {
    let u32b = |v: u32| {
        if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let u16b = |v: u16| {
        if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let magic = if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
    let mut out = Vec::new();
    out.extend(u32b(magic));
    out.extend(u16b(2));
    out.extend(u16b(4));
    out.extend(u32b(0));
    out.extend(u32b(0));
    out.extend(u32b(65_535));
    out.extend(u32b(linktype));
    out.extend(u32b(SECS));
    out.extend(u32b(if nanos { 123_456_789 } else { 123_456 }));
    out.extend(u32b(packet.len() as u32));
    out.extend(u32b(packet.len() as u32));
    out.extend_from_slice(packet);
    out
}

fn only_segment(file: &[u8]) -> sv2_wire::capture::Segment {
    let packets: Vec<_> = CaptureReader::new(file)
        .unwrap()
        .collect::<Result<Vec<_>, CaptureError>>()
        .unwrap();
    assert_eq!(packets.len(), 1, "{packets:?}");
    match packets.into_iter().next().unwrap() {
        Packet::Tcp(s) => s,
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_link_type_gives_the_same_segment() {
    let cases: Vec<(&str, u32, Vec<u8>, bool)> = vec![
        ("ethernet with a VLAN tag", 1, ethernet_vlan(), false),
        ("linux cooked v1", 113, sll1(), false),
        ("linux cooked v2 (IPv6)", 276, sll2(), true),
        ("raw IPv4", 101, ip_packet(false), false),
        ("raw IPv6 (LINKTYPE_IPV6)", 229, ip_packet(true), true),
        ("BSD loopback", 0, null_loopback(), false),
    ];
    for (name, linktype, packet, v6) in cases {
        let s = only_segment(&pcap(linktype, &packet, false, false));
        let (src, dst): (SocketAddr, SocketAddr) = if v6 {
            (
                SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 40_000)),
                SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 34_254)),
            )
        } else {
            (
                SocketAddr::from(([127, 0, 0, 1], 40_000)),
                SocketAddr::from(([127, 0, 0, 2], 34_254)),
            )
        };
        assert_eq!((s.src, s.dst), (src, dst), "{name}");
        assert_eq!(s.seq, 77, "{name}");
        assert!(s.syn && s.fin && !s.rst, "{name}");
        assert_eq!(s.payload, PAYLOAD, "{name}");
        assert_eq!(s.number, 1, "{name}");
    }
}

#[test]
fn both_byte_orders_and_both_time_resolutions() {
    for big in [false, true] {
        for nanos in [false, true] {
            let s = only_segment(&pcap(1, &ethernet_vlan(), big, nanos));
            let expected = if nanos {
                Timestamp::from_parts(u64::from(SECS), 123_456_789)
            } else {
                Timestamp::from_parts(u64::from(SECS), 123_456_000)
            };
            assert_eq!(s.at, expected, "big {big} nanos {nanos}");
            assert_eq!(s.payload, PAYLOAD);
        }
    }
}

#[test]
fn packets_that_are_not_tcp_or_do_not_parse_are_said_so_and_reading_goes_on() {
    // An ARP-like Ethernet frame (not IP), a cut IPv4 header, then a good packet.
    let mut arp = vec![2u8; 12];
    arp.extend_from_slice(&[0x08, 0x06]);
    arp.extend_from_slice(&[0; 28]);
    let mut cut = ethernet_vlan();
    cut.truncate(25);
    let mut file = pcap(1, &arp, false, false);
    for packet in [&cut, &ethernet_vlan()] {
        file.extend_from_slice(&SECS.to_le_bytes());
        file.extend_from_slice(&0u32.to_le_bytes());
        file.extend_from_slice(&(packet.len() as u32).to_le_bytes());
        file.extend_from_slice(&(packet.len() as u32).to_le_bytes());
        file.extend_from_slice(packet);
    }
    let packets: Vec<Packet> = CaptureReader::new(&file[..])
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        matches!(packets[0], Packet::Other { number: 1 }),
        "{packets:?}"
    );
    assert!(
        matches!(&packets[1], Packet::Unreadable { number: 2, .. }),
        "{packets:?}"
    );
    assert!(matches!(&packets[2], Packet::Tcp(s) if s.number == 3));
}
