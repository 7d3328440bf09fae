//! TCP reassembly: a capture's segments, in capture order, into each connection's two byte streams.
//!
//! Per direction the next expected sequence number is known from the SYN (or, in a capture that
//! starts mid-connection, from the first segment seen). A SYN with a new initial sequence number on
//! the addresses of a connection still followed is a new connection on reused ports (loopback
//! reuses TIME_WAIT ports at once): the old one ends there. Segments in order are delivered at once;
//! early ones wait (bounded); retransmissions and overlaps deliver only their new bytes. A hole that
//! the peer never fills (the capture missed it) becomes a [`Delivery::Gap`] with its size when the
//! waiting bytes pass [`MAX_WAITING`], when the direction ends, or at the end of the capture: the
//! stream's reader decides whether it can resynchronise. Memory is bounded: per direction by
//! [`MAX_WAITING`], in all by [`MAX_CONNECTIONS`] (the oldest idle connection is flushed first).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use super::read::Segment;
use crate::transcript::Timestamp;

/// Bytes a direction may hold waiting for a hole to fill.
pub const MAX_WAITING: usize = 4 << 20;
/// Segments a direction may hold waiting (a flood of tiny segments is bounded too).
pub const MAX_WAITING_SEGMENTS: usize = 8192;
/// Connections followed at once.
pub const MAX_CONNECTIONS: usize = 16_384;

/// A connection: its number (in order of first packet, from 1), and its two ends (`a` sent the first
/// packet seen, or the SYN).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnectionId(pub u64);

/// What the reassembler hands on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// A connection's first packet: `client` is who sent the SYN, or the first packet seen when the
    /// capture began mid-connection (`saw_syn` false: the roles may be wrong).
    Opened {
        id: ConnectionId,
        client: SocketAddr,
        server: SocketAddr,
        saw_syn: bool,
        at: Timestamp,
    },
    /// Bytes of one direction, in order.
    Data {
        id: ConnectionId,
        from: SocketAddr,
        at: Timestamp,
        bytes: Vec<u8>,
    },
    /// Bytes of one direction the capture does not hold (at least `len`).
    Gap {
        id: ConnectionId,
        from: SocketAddr,
        at: Timestamp,
        len: u64,
    },
    /// A direction ended (FIN) or the connection was reset (RST, `from` sent it).
    Closed {
        id: ConnectionId,
        from: SocketAddr,
        at: Timestamp,
        reset: bool,
    },
}

#[derive(Debug, Default)]
struct Direction {
    /// The next sequence number expected (None before the first segment).
    next: Option<u32>,
    /// The sequence number of this direction's SYN, when seen.
    isn: Option<u32>,
    /// Segments past `next`, by their offset from `next`'s base; at most MAX_WAITING bytes.
    waiting: BTreeMap<u64, (Timestamp, Vec<u8>)>,
    waiting_bytes: usize,
    /// `next` as an offset from the first sequence number, to order waiting segments across the
    /// 2^32 wrap.
    offset: u64,
    ended: bool,
}

#[derive(Debug)]
struct Connection {
    id: ConnectionId,
    /// [client to server, server to client]
    ends: [SocketAddr; 2],
    dirs: [Direction; 2],
    last: Timestamp,
}

/// The reassembler.
#[derive(Debug, Default)]
pub struct Reassembler {
    connections: HashMap<(SocketAddr, SocketAddr), Connection>,
    next_id: u64,
}

impl Reassembler {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one segment; what it completes goes to `out`.
    pub fn push(&mut self, segment: Segment, out: &mut Vec<Delivery>) {
        let key = ordered(segment.src, segment.dst);
        if segment.syn && self.is_new_syn(&key, &segment) {
            if let Some(mut old) = self.connections.remove(&key) {
                end(&mut old, segment.at, out);
            }
        }
        if !self.connections.contains_key(&key) && !segment.syn && segment.payload.is_empty() {
            // A bare ACK, FIN or RST of a connection not followed (or just ended): nothing to open.
            return;
        }
        if !self.connections.contains_key(&key) {
            if self.connections.len() >= MAX_CONNECTIONS {
                self.evict(out);
            }
            self.next_id += 1;
            let id = ConnectionId(self.next_id);
            // A SYN without ACK comes from the client, a SYN/ACK from the server (its SYN was not
            // captured); without either, who sent first.
            let (client, server) = if segment.syn && segment.ack {
                (segment.dst, segment.src)
            } else {
                (segment.src, segment.dst)
            };
            out.push(Delivery::Opened {
                id,
                client,
                server,
                saw_syn: segment.syn,
                at: segment.at,
            });
            self.connections.insert(
                key,
                Connection {
                    id,
                    ends: [client, server],
                    dirs: [Direction::default(), Direction::default()],
                    last: segment.at,
                },
            );
        }
        let Some(conn) = self.connections.get_mut(&key) else {
            return;
        };
        conn.last = segment.at;
        let side = usize::from(segment.src != conn.ends[0]);
        let id = conn.id;
        let dir = &mut conn.dirs[side];
        if segment.rst {
            flush(id, segment.src, segment.at, dir, out);
            out.push(Delivery::Closed {
                id,
                from: segment.src,
                at: segment.at,
                reset: true,
            });
            self.connections.remove(&key);
            return;
        }
        // The SYN takes one sequence number; data starts after it.
        let mut seq = segment.seq;
        if segment.syn {
            dir.isn = Some(segment.seq);
            seq = seq.wrapping_add(1);
            if dir.next.is_none() {
                dir.next = Some(seq);
            }
        }
        let next = *dir.next.get_or_insert(seq);
        let payload = segment.payload;
        if !payload.is_empty() {
            // Where the segment starts relative to `next`, in -2^31..2^31.
            let delta = seq.wrapping_sub(next) as i32 as i64;
            let end = delta + payload.len() as i64;
            if end > 0 {
                if delta <= 0 {
                    // In order (or overlapping what came): deliver the new part at once.
                    let fresh = &payload[(-delta) as usize..];
                    deliver(id, segment.src, segment.at, dir, fresh.to_vec(), out);
                } else if dir.waiting_bytes + payload.len() <= MAX_WAITING
                    && dir.waiting.len() < MAX_WAITING_SEGMENTS
                {
                    let at = dir.offset + delta as u64;
                    let len = payload.len();
                    let previous = dir.waiting.insert(at, (segment.at, payload));
                    dir.waiting_bytes += len;
                    if let Some((_, old)) = previous {
                        dir.waiting_bytes -= old.len();
                    }
                } else {
                    // Too much waits behind a hole the capture will not fill: give it up.
                    flush(id, segment.src, segment.at, dir, out);
                    deliver_after_gap(id, segment.src, segment.at, dir, seq, payload, out);
                }
            }
            // end <= 0: a retransmission of bytes already delivered.
        }
        if segment.fin && !dir.ended {
            flush(id, segment.src, segment.at, dir, out);
            dir.ended = true;
            out.push(Delivery::Closed {
                id,
                from: segment.src,
                at: segment.at,
                reset: false,
            });
            if conn.dirs.iter().all(|d| d.ended) {
                self.connections.remove(&key);
            }
        }
    }

    /// A SYN that starts another connection on the addresses of one still followed: its initial
    /// sequence number is not the one its direction already started from (a retransmitted SYN is).
    fn is_new_syn(&self, key: &(SocketAddr, SocketAddr), segment: &Segment) -> bool {
        let Some(conn) = self.connections.get(key) else {
            return false;
        };
        let dir = &conn.dirs[usize::from(segment.src != conn.ends[0])];
        match (dir.isn, dir.next) {
            (Some(isn), _) => isn != segment.seq,
            // Data seen before any SYN of this direction: a SYN now is a new connection.
            (None, Some(_)) => true,
            (None, None) => false,
        }
    }

    /// The end of the capture: what still waits behind holes is delivered after a gap.
    pub fn finish(&mut self, out: &mut Vec<Delivery>) {
        let mut conns: Vec<Connection> = self.connections.drain().map(|(_, c)| c).collect();
        conns.sort_by_key(|c| c.id.0);
        for mut conn in conns {
            for side in 0..2 {
                let from = conn.ends[side];
                let at = conn.last;
                flush(conn.id, from, at, &mut conn.dirs[side], out);
            }
        }
    }

    /// Makes room: the connection idle longest is flushed and forgotten.
    fn evict(&mut self, out: &mut Vec<Delivery>) {
        let Some(key) = self
            .connections
            .iter()
            .min_by_key(|(_, c)| c.last)
            .map(|(k, _)| *k)
        else {
            return;
        };
        if let Some(mut conn) = self.connections.remove(&key) {
            for side in 0..2 {
                let from = conn.ends[side];
                flush(conn.id, from, conn.last, &mut conn.dirs[side], out);
            }
        }
    }
}

/// A connection ended without FIN or RST (its ports were reused): what waits is flushed and each
/// direction still open is closed.
fn end(conn: &mut Connection, at: Timestamp, out: &mut Vec<Delivery>) {
    for side in 0..2 {
        let from = conn.ends[side];
        flush(conn.id, from, at, &mut conn.dirs[side], out);
        if !conn.dirs[side].ended {
            conn.dirs[side].ended = true;
            out.push(Delivery::Closed {
                id: conn.id,
                from,
                at,
                reset: false,
            });
        }
    }
}

fn ordered(a: SocketAddr, b: SocketAddr) -> (SocketAddr, SocketAddr) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

/// Delivers in-order bytes, then whatever waiting segments they make contiguous.
fn deliver(
    id: ConnectionId,
    from: SocketAddr,
    at: Timestamp,
    dir: &mut Direction,
    bytes: Vec<u8>,
    out: &mut Vec<Delivery>,
) {
    advance(dir, bytes.len());
    out.push(Delivery::Data {
        id,
        from,
        at,
        bytes,
    });
    drain_contiguous(id, from, dir, out);
}

fn advance(dir: &mut Direction, len: usize) {
    dir.next = dir.next.map(|n| n.wrapping_add(len as u32));
    dir.offset += len as u64;
}

/// Waiting segments that now start at or before `next`: their new bytes, in order.
fn drain_contiguous(
    id: ConnectionId,
    from: SocketAddr,
    dir: &mut Direction,
    out: &mut Vec<Delivery>,
) {
    while let Some((&start, _)) = dir.waiting.first_key_value() {
        if start > dir.offset {
            break;
        }
        let Some((_, (at, bytes))) = dir.waiting.pop_first() else {
            break;
        };
        dir.waiting_bytes -= bytes.len();
        let skip = (dir.offset - start) as usize;
        if skip < bytes.len() {
            let fresh = bytes[skip..].to_vec();
            advance(dir, fresh.len());
            out.push(Delivery::Data {
                id,
                from,
                at,
                bytes: fresh,
            });
        }
    }
}

/// Every waiting segment, each hole before one reported as a gap.
fn flush(
    id: ConnectionId,
    from: SocketAddr,
    at: Timestamp,
    dir: &mut Direction,
    out: &mut Vec<Delivery>,
) {
    while let Some((&start, _)) = dir.waiting.first_key_value() {
        if start > dir.offset {
            let len = start - dir.offset;
            out.push(Delivery::Gap { id, from, at, len });
            dir.next = dir.next.map(|n| n.wrapping_add(len as u32));
            dir.offset = start;
        }
        drain_contiguous(id, from, dir, out);
    }
}

/// A segment past a hole that will not be filled: the hole as a gap, then the segment (what of it
/// is still new: the waiting segments flushed before it may have gone past it).
fn deliver_after_gap(
    id: ConnectionId,
    from: SocketAddr,
    at: Timestamp,
    dir: &mut Direction,
    seq: u32,
    payload: Vec<u8>,
    out: &mut Vec<Delivery>,
) {
    let next = dir.next.unwrap_or(seq);
    let delta = seq.wrapping_sub(next) as i32 as i64;
    let end = delta + payload.len() as i64;
    if end <= 0 {
        return;
    }
    if delta > 0 {
        let hole = delta as u64;
        out.push(Delivery::Gap {
            id,
            from,
            at,
            len: hole,
        });
        dir.next = Some(seq);
        dir.offset += hole;
        deliver(id, from, at, dir, payload, out);
    } else {
        deliver(
            id,
            from,
            at,
            dir,
            payload[(-delta) as usize..].to_vec(),
            out,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(src: u16, dst: u16, seq: u32, payload: &[u8]) -> Segment {
        Segment {
            number: 0,
            at: Timestamp(u64::from(seq)),
            src: SocketAddr::from(([127, 0, 0, 1], src)),
            dst: SocketAddr::from(([127, 0, 0, 1], dst)),
            seq,
            syn: false,
            ack: false,
            fin: false,
            rst: false,
            payload: payload.to_vec(),
        }
    }

    /// The bytes and gaps delivered for the direction from `port`.
    fn stream(out: &[Delivery], port: u16) -> (Vec<u8>, Vec<u64>) {
        let mut bytes = Vec::new();
        let mut gaps = Vec::new();
        for d in out {
            match d {
                Delivery::Data { from, bytes: b, .. } if from.port() == port => {
                    bytes.extend_from_slice(b)
                }
                Delivery::Gap { from, len, .. } if from.port() == port => gaps.push(*len),
                _ => {}
            }
        }
        (bytes, gaps)
    }

    #[test]
    fn in_order_out_of_order_retransmitted_and_overlapping_segments_make_one_stream() {
        let mut r = Reassembler::new();
        let mut out = Vec::new();
        let mut syn = seg(1, 2, 999, b"");
        syn.syn = true;
        r.push(syn, &mut out);
        r.push(seg(1, 2, 1000, b"abc"), &mut out);
        r.push(seg(1, 2, 1006, b"ghi"), &mut out); // early
        r.push(seg(1, 2, 1000, b"abc"), &mut out); // retransmission
        r.push(seg(1, 2, 1002, b"cdef"), &mut out); // overlap, fills the hole
        r.push(seg(2, 1, 50, b"xy"), &mut out); // the other direction, mid-stream start
        r.finish(&mut out);
        assert!(matches!(out[0], Delivery::Opened { saw_syn: true, .. }));
        assert_eq!(stream(&out, 1), (b"abcdefghi".to_vec(), vec![]));
        assert_eq!(stream(&out, 2), (b"xy".to_vec(), vec![]));
    }

    #[test]
    fn a_hole_never_filled_is_a_gap_of_its_size() {
        let mut r = Reassembler::new();
        let mut out = Vec::new();
        r.push(seg(1, 2, 0, b"ab"), &mut out);
        r.push(seg(1, 2, 12, b"zz"), &mut out);
        let mut fin = seg(1, 2, 14, b"");
        fin.fin = true;
        r.push(fin, &mut out);
        assert_eq!(stream(&out, 1), (b"abzz".to_vec(), vec![10]));
        assert!(out
            .iter()
            .any(|d| matches!(d, Delivery::Closed { reset: false, .. })));
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut r = Reassembler::new();
        let mut out = Vec::new();
        r.push(seg(1, 2, u32::MAX - 1, b"ab"), &mut out);
        r.push(seg(1, 2, 2, b"ef"), &mut out); // early, past the wrap
        r.push(seg(1, 2, 0, b"cd"), &mut out);
        r.finish(&mut out);
        assert_eq!(stream(&out, 1), (b"abcdef".to_vec(), vec![]));
    }

    #[test]
    fn waiting_bytes_are_bounded() {
        let mut r = Reassembler::new();
        let mut out = Vec::new();
        r.push(seg(1, 2, 0, b"a"), &mut out);
        // A hole at 1, then more early data than may wait.
        let chunk = vec![7u8; 64 * 1024];
        let mut seq = 100u32;
        for _ in 0..(MAX_WAITING / chunk.len() + 2) {
            r.push(seg(1, 2, seq, &chunk), &mut out);
            seq += chunk.len() as u32;
        }
        r.finish(&mut out);
        let (bytes, gaps) = stream(&out, 1);
        assert_eq!(gaps, vec![99]);
        assert_eq!(bytes.len(), 1 + (seq as usize - 100));
    }

    #[test]
    fn a_million_tiny_segments_in_reverse_order_stay_bounded() {
        let mut r = Reassembler::new();
        let mut out = Vec::new();
        r.push(seg(1, 2, 0, b"a"), &mut out);
        // One byte each, the last first: everything but the first byte waits behind a hole.
        for seq in (2..1_000_000u32).rev() {
            r.push(seg(1, 2, seq, &[(seq % 251) as u8]), &mut out);
            // Delivered data is handed on; what is kept inside stays bounded.
            out.retain(|d| !matches!(d, Delivery::Data { .. }));
            let conn = r.connections.values().next().unwrap();
            assert!(conn.dirs[0].waiting.len() <= MAX_WAITING_SEGMENTS);
        }
        r.finish(&mut out);
        // Gaps are holes of this stream, never more than it spans.
        let gaps: u64 = out
            .iter()
            .map(|d| match d {
                Delivery::Gap { len, .. } => *len,
                _ => 0,
            })
            .sum();
        assert!(gaps > 0 && gaps < 1_000_000, "{gaps}");
    }

    #[test]
    fn a_reset_ends_the_connection() {
        let mut r = Reassembler::new();
        let mut out = Vec::new();
        r.push(seg(1, 2, 0, b"ab"), &mut out);
        let mut rst = seg(2, 1, 0, b"");
        rst.rst = true;
        r.push(rst, &mut out);
        assert!(out
            .iter()
            .any(|d| matches!(d, Delivery::Closed { reset: true, .. })));
        // A bare ACK after it opens nothing; a later packet with data is a new connection.
        r.push(seg(2, 1, 9, b""), &mut out);
        r.push(seg(1, 2, 500, b"cd"), &mut out);
        assert_eq!(
            out.iter()
                .filter(|d| matches!(d, Delivery::Opened { .. }))
                .count(),
            2
        );
    }

    #[test]
    fn a_new_syn_on_reused_ports_starts_a_new_connection() {
        let mut r = Reassembler::new();
        let mut out = Vec::new();
        let mut syn = seg(1, 2, 999, b"");
        syn.syn = true;
        r.push(syn.clone(), &mut out);
        r.push(seg(1, 2, 1000, b"first"), &mut out);
        let mut fin = seg(1, 2, 1005, b"");
        fin.fin = true;
        r.push(fin, &mut out);
        // A retransmitted SYN is the same connection.
        r.push(syn, &mut out);
        // The server never closed; the client's port is reused at once for another connection.
        let mut again = seg(1, 2, 7_000_000, b"");
        again.syn = true;
        r.push(again, &mut out);
        let mut syn_ack = seg(2, 1, 42, b"");
        syn_ack.syn = true;
        syn_ack.ack = true;
        r.push(syn_ack, &mut out);
        r.push(seg(1, 2, 7_000_001, b"second"), &mut out);
        r.finish(&mut out);
        let opened: Vec<_> = out
            .iter()
            .filter_map(|d| match d {
                Delivery::Opened { id, client, .. } => Some((id.0, client.port())),
                _ => None,
            })
            .collect();
        assert_eq!(opened, [(1, 1), (2, 1)]);
        let data: Vec<(u64, &[u8])> = out
            .iter()
            .filter_map(|d| match d {
                Delivery::Data { id, bytes, .. } => Some((id.0, bytes.as_slice())),
                _ => None,
            })
            .collect();
        assert_eq!(data, [(1, &b"first"[..]), (2, &b"second"[..])]);
        // The first connection's open direction was closed when the second began.
        let closed_first = out
            .iter()
            .filter(|d| matches!(d, Delivery::Closed { id, .. } if id.0 == 1))
            .count();
        assert_eq!(closed_first, 2);
        assert!(!out.iter().any(|d| matches!(d, Delivery::Gap { .. })));
    }

    #[test]
    fn a_syn_ack_seen_first_names_its_sender_the_server() {
        let mut r = Reassembler::new();
        let mut out = Vec::new();
        let mut syn_ack = seg(2, 1, 42, b"");
        syn_ack.syn = true;
        syn_ack.ack = true;
        r.push(syn_ack, &mut out);
        assert!(matches!(
            out[0],
            Delivery::Opened { client, server, .. } if client.port() == 1 && server.port() == 2
        ));
    }
}
