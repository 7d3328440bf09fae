//! The pcapng writer, read back with pcap-parser and etherparse: each direction's TCP payload,
//! reassembled by sequence number, is what the transcript says went on the wire.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use pcap_parser::{parse_pcapng, Block, OptionCode};
use sv2_wire::capture::write::{PcapngWriter, TcpEndpoints, MSS};
use sv2_wire::{Direction, Endpoints, Event, Timestamp, Transcript};

/// One packet read back.
#[derive(Debug, Clone)]
struct Packet {
    at: u64,
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: Option<u32>,
    syn: bool,
    fin: bool,
    payload: Vec<u8>,
    comment: Option<String>,
}

fn read_capture(bytes: &[u8]) -> Vec<Packet> {
    let (rest, capture) = parse_pcapng(bytes).expect("the capture parses as pcapng");
    assert!(rest.is_empty(), "{} bytes left over", rest.len());
    assert_eq!(capture.sections.len(), 1);
    let mut packets = Vec::new();
    let mut interfaces = 0;
    for block in &capture.sections[0].blocks {
        match block {
            Block::InterfaceDescription(idb) => {
                interfaces += 1;
                assert_eq!(idb.linktype, pcap_parser::Linktype::ETHERNET);
                assert_eq!(idb.if_tsresol, 9, "nanosecond timestamps");
            }
            Block::EnhancedPacket(epb) => {
                assert_eq!(epb.caplen, epb.origlen);
                let data = &epb.data[..epb.caplen as usize];
                let sliced = SlicedPacket::from_ethernet(data).expect("an Ethernet packet");
                let (src_ip, dst_ip) = match sliced.net.expect("an IP packet") {
                    NetSlice::Ipv4(ip) => (
                        ip.header().source_addr().into(),
                        ip.header().destination_addr().into(),
                    ),
                    NetSlice::Ipv6(ip) => (
                        ip.header().source_addr().into(),
                        ip.header().destination_addr().into(),
                    ),
                    NetSlice::Arp(_) => panic!("ARP"),
                };
                let Some(TransportSlice::Tcp(tcp)) = sliced.transport else {
                    panic!("not TCP");
                };
                let comment = epb
                    .options
                    .iter()
                    .find(|o| o.code == OptionCode::Comment)
                    .map(|o| String::from_utf8(o.value[..o.len as usize].to_vec()).unwrap());
                packets.push(Packet {
                    at: (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low),
                    src: SocketAddr::new(src_ip, tcp.source_port()),
                    dst: SocketAddr::new(dst_ip, tcp.destination_port()),
                    seq: tcp.sequence_number(),
                    ack: tcp.ack().then(|| tcp.acknowledgment_number()),
                    syn: tcp.syn(),
                    fin: tcp.fin(),
                    payload: tcp.payload().to_vec(),
                    comment,
                });
            }
            _ => {}
        }
    }
    assert_eq!(interfaces, 1);
    packets
}

/// What the transcript says went on the wire in `direction`.
fn expected_stream(transcript: &Transcript, direction: Direction) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in transcript.entries() {
        if entry.event.direction() != Some(direction) {
            continue;
        }
        match &entry.event {
            Event::Handshake { bytes, .. } => out.extend_from_slice(bytes),
            Event::Frame { plain, wire, .. } => {
                out.extend_from_slice(wire.as_ref().unwrap_or(plain))
            }
            Event::Sv1 { line, .. } => {
                out.extend_from_slice(line);
                out.push(b'\n');
            }
            Event::Note { .. } | Event::Encrypted { .. } => {}
        }
    }
    out
}

/// One connection's packets: checks the handshake, the numbers and the close, and gives each
/// direction's payload reassembled by sequence number.
fn check_connection(packets: &[Packet], ends: TcpEndpoints) -> (Vec<u8>, Vec<u8>) {
    let ours: Vec<&Packet> = packets
        .iter()
        .filter(|p| {
            (p.src == ends.client && p.dst == ends.server)
                || (p.src == ends.server && p.dst == ends.client)
        })
        .collect();
    assert!(ours.len() >= 6, "handshake and close: {ours:?}");
    // The three-way handshake.
    let (syn, syn_ack, ack) = (ours[0], ours[1], ours[2]);
    assert!(syn.syn && syn.ack.is_none() && syn.src == ends.client);
    assert!(
        syn_ack.syn && syn_ack.ack == Some(syn.seq.wrapping_add(1)) && syn_ack.src == ends.server
    );
    assert!(!ack.syn && ack.ack == Some(syn_ack.seq.wrapping_add(1)) && ack.src == ends.client);
    let client_isn = syn.seq.wrapping_add(1);
    let server_isn = syn_ack.seq.wrapping_add(1);
    // FIN from both sides, then the last ACK.
    let n = ours.len();
    assert!(ours[n - 3].fin && ours[n - 3].src == ends.client);
    assert!(ours[n - 2].fin && ours[n - 2].src == ends.server);
    assert!(!ours[n - 1].fin && ours[n - 1].src == ends.client);

    let mut client: BTreeMap<u32, &[u8]> = BTreeMap::new();
    let mut server: BTreeMap<u32, &[u8]> = BTreeMap::new();
    let (mut client_next, mut server_next) = (client_isn, server_isn);
    for p in &ours[3..n - 3] {
        assert!(!p.syn && !p.fin);
        assert!(
            p.payload.len() <= MSS,
            "segment of {} bytes",
            p.payload.len()
        );
        assert!(!p.payload.is_empty());
        if p.src == ends.client {
            // Acks reflect what the other side sent so far; sequence numbers are contiguous.
            assert_eq!(p.ack, Some(server_next));
            assert_eq!(p.seq, client_next);
            client_next = client_next.wrapping_add(p.payload.len() as u32);
            client.insert(p.seq.wrapping_sub(client_isn), &p.payload);
        } else {
            assert_eq!(p.ack, Some(client_next));
            assert_eq!(p.seq, server_next);
            server_next = server_next.wrapping_add(p.payload.len() as u32);
            server.insert(p.seq.wrapping_sub(server_isn), &p.payload);
        }
    }
    assert_eq!(ours[n - 3].seq, client_next);
    assert_eq!(ours[n - 2].seq, server_next);
    assert_eq!(ours[n - 2].ack, Some(client_next.wrapping_add(1)));
    let join = |m: BTreeMap<u32, &[u8]>| {
        let mut out = Vec::new();
        for (offset, bytes) in m {
            assert_eq!(offset as usize, out.len(), "no gap, no overlap");
            out.extend_from_slice(bytes);
        }
        out
    };
    (join(client), join(server))
}

fn write(transcripts: &[&Transcript]) -> (Vec<u8>, Vec<Option<TcpEndpoints>>) {
    let mut writer = PcapngWriter::new(Vec::new()).unwrap();
    let ends = transcripts
        .iter()
        .map(|t| writer.add_transcript(t).unwrap())
        .collect();
    (writer.finish().unwrap(), ends)
}

const T0: u64 = 1_765_091_234_123_456_789;

fn sample(endpoints: Endpoints) -> Transcript {
    let mut t = Transcript::default();
    t.endpoints = endpoints;
    let at = |i: u64| Timestamp(T0 + i * 1_000_003);
    t.note(at(0), "connecting");
    t.handshake(at(1), Direction::ClientToServer, 1, &[0x11; 64]);
    t.handshake(at(2), Direction::ServerToClient, 2, &[0x22; 234]);
    t.frame(
        at(3),
        Direction::ClientToServer,
        &[0, 0, 0, 2, 0, 0, 9, 9],
        Some(&[0xee; 40]),
    );
    t.frame(at(4), Direction::ServerToClient, &[0, 0, 1, 0, 0, 0], None);
    t.note(at(5), "a note");
    t.note(at(5), "another note");
    t.sv1(
        at(6),
        Direction::ClientToServer,
        br#"{"id":1,"method":"mining.subscribe","params":[]}"#,
    );
    t.sv1(
        at(7),
        Direction::ServerToClient,
        br#"{"id":1,"result":true,"error":null}"#,
    );
    t.note(at(8), "closed");
    t
}

#[test]
fn a_transcript_reads_back_byte_for_byte() {
    let client: SocketAddr = "127.0.0.7:50123".parse().unwrap();
    let server: SocketAddr = "127.0.0.1:3333".parse().unwrap();
    let t = sample(Endpoints {
        client: Some(client),
        server: Some(server),
    });
    let (bytes, ends) = write(&[&t]);
    let ends = ends[0].unwrap();
    assert_eq!(ends, TcpEndpoints { client, server });
    let packets = read_capture(&bytes);
    let (c2s, s2c) = check_connection(&packets, ends);
    assert_eq!(c2s, expected_stream(&t, Direction::ClientToServer));
    assert_eq!(s2c, expected_stream(&t, Direction::ServerToClient));

    // Each data packet is at its entry's time, in order; the handshake comes before the first
    // entry and the close after the last.
    let data: Vec<&Packet> = packets.iter().filter(|p| !p.payload.is_empty()).collect();
    let times: Vec<u64> = t
        .entries()
        .iter()
        .filter(|e| !matches!(e.event, Event::Note { .. }))
        .map(|e| e.at.0)
        .collect();
    assert_eq!(data.iter().map(|p| p.at).collect::<Vec<_>>(), times);
    let first = t.entries().front().unwrap().at.0;
    let last = t.entries().back().unwrap().at.0;
    assert!(packets[..3].iter().all(|p| p.at < first));
    assert!(packets[packets.len() - 3..].iter().all(|p| p.at > last));
    // The act bytes are the first payloads: 64 then 234.
    assert_eq!(data[0].payload.len(), 64);
    assert_eq!(data[1].payload.len(), 234);

    // Notes are comments on the next packet.
    assert_eq!(data[0].comment.as_deref(), Some("connecting"));
    assert_eq!(data[4].comment.as_deref(), Some("a note\nanother note"));
    assert_eq!(
        packets[packets.len() - 3].comment.as_deref(),
        Some("closed")
    );
    assert_eq!(packets.iter().filter(|p| p.comment.is_some()).count(), 3);
}

#[test]
fn ipv6_endpoints() {
    let client: SocketAddr = "[2001:db8::7]:50123".parse().unwrap();
    let server: SocketAddr = "[2001:db8::1]:34254".parse().unwrap();
    let t = sample(Endpoints {
        client: Some(client),
        server: Some(server),
    });
    let (bytes, ends) = write(&[&t]);
    assert_eq!(ends[0], Some(TcpEndpoints { client, server }));
    let packets = read_capture(&bytes);
    let (c2s, s2c) = check_connection(&packets, ends[0].unwrap());
    assert_eq!(c2s, expected_stream(&t, Direction::ClientToServer));
    assert_eq!(s2c, expected_stream(&t, Direction::ServerToClient));

    // Only the server known, as IPv6: the made-up client is IPv6 loopback.
    let t = sample(Endpoints {
        client: None,
        server: Some(server),
    });
    let (bytes, ends) = write(&[&t]);
    let ends = ends[0].unwrap();
    assert!(ends.client.is_ipv6() && ends.client.ip().is_loopback());
    check_connection(&read_capture(&bytes), ends);
}

#[test]
fn several_transcripts_without_endpoints_are_distinct_connections() {
    let a = sample(Endpoints::default());
    let b = sample(Endpoints::default());
    let mut empty = Transcript::default();
    empty.endpoints.client = Some("127.0.0.1:1".parse().unwrap());
    let known = sample(Endpoints {
        client: Some("127.0.0.1:50000".parse().unwrap()),
        server: Some("127.0.0.1:34254".parse().unwrap()),
    });
    // The same transcript twice: the second gets a made-up client port.
    let (bytes, ends) = write(&[&a, &empty, &b, &known, &known]);
    assert_eq!(ends[1], None, "an empty transcript writes nothing");
    let ends: Vec<TcpEndpoints> = ends.into_iter().flatten().collect();
    assert_eq!(ends.len(), 4);
    for (i, x) in ends.iter().enumerate() {
        assert!(x.client.ip().is_loopback() && x.server.ip().is_loopback());
        for y in &ends[i + 1..] {
            assert_ne!(x, y);
        }
    }
    let packets = read_capture(&bytes);
    for (t, e) in [&a, &b, &known, &known].into_iter().zip(ends) {
        let (c2s, s2c) = check_connection(&packets, e);
        assert_eq!(c2s, expected_stream(t, Direction::ClientToServer));
        assert_eq!(s2c, expected_stream(t, Direction::ServerToClient));
    }
}

#[test]
fn large_frames_and_lines_are_split_into_segments() {
    let mut t = Transcript::default();
    let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    t.frame(Timestamp(T0), Direction::ServerToClient, &big, None);
    t.frame(
        Timestamp(T0 + 1),
        Direction::ClientToServer,
        &[1; 10],
        Some(&big[..MSS * 3]),
    );
    // A line filling segments exactly: its newline goes alone.
    t.sv1(
        Timestamp(T0 + 2),
        Direction::ClientToServer,
        &[b'x'; MSS * 2],
    );
    t.sv1(
        Timestamp(T0 + 3),
        Direction::ServerToClient,
        &[b'y'; MSS + 7],
    );
    t.sv1(Timestamp(T0 + 4), Direction::ServerToClient, b"");
    let (bytes, ends) = write(&[&t]);
    let packets = read_capture(&bytes);
    let (c2s, s2c) = check_connection(&packets, ends[0].unwrap());
    assert_eq!(c2s, expected_stream(&t, Direction::ClientToServer));
    assert_eq!(s2c, expected_stream(&t, Direction::ServerToClient));
    let data = packets.iter().filter(|p| !p.payload.is_empty());
    assert!(data.clone().all(|p| p.payload.len() <= MSS));
    // 100,000 bytes in 69 segments, 3 full ones, 2 and the newline, 2 with the newline, the empty line.
    assert_eq!(data.count(), 69 + 3 + 3 + 2 + 1);
}

#[test]
fn odd_transcripts_do_not_panic() {
    // Notes only, time zero, no endpoints: a connection with nothing in it.
    let mut t = Transcript::default();
    t.note(Timestamp(0), "only a note");
    let (bytes, ends) = write(&[&t]);
    let packets = read_capture(&bytes);
    let (c2s, s2c) = check_connection(&packets, ends[0].unwrap());
    assert!(c2s.is_empty() && s2c.is_empty());
    assert_eq!(packets[0].at, 0);

    // The last representable time; an IPv4 client with an IPv6 server; empty acts and frames.
    let mut t = Transcript::default();
    t.endpoints = Endpoints {
        client: Some("127.0.0.1:5".parse().unwrap()),
        server: Some("[::1]:6".parse().unwrap()),
    };
    t.handshake(Timestamp(u64::MAX), Direction::ClientToServer, 1, &[]);
    t.frame(
        Timestamp(u64::MAX),
        Direction::ServerToClient,
        &[],
        Some(&[]),
    );
    t.note(Timestamp(u64::MAX), "x".repeat(100_000));
    let (bytes, ends) = write(&[&t]);
    let ends = ends[0].unwrap();
    assert!(ends.client.is_ipv6() && ends.server.is_ipv6());
    let packets = read_capture(&bytes);
    check_connection(&packets, ends);
    assert_eq!(packets[3].comment.as_ref().map(String::len), Some(65_000));

    // No transcript at all: a valid capture with no packets.
    let (bytes, _) = write(&[]);
    assert!(read_capture(&bytes).is_empty());
}
