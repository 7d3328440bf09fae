//! From reassembled TCP streams to conversations: each connection is classified by its content (SV1
//! JSON lines, plain SV2 frames, or Noise: a 64-byte act 1 answered by a 234-byte act 2), read by
//! one [`StreamDecoder`] per direction, its Noise transport decrypted when a key-log line names its
//! act 1, and recorded in a [`Transcript`] with the capture's timestamps and both endpoints.

use std::collections::HashMap;
use std::net::SocketAddr;

use sv2_codec::noise::keylog::{self, KeyLogEntry};
use sv2_codec::noise::{Decryptor, ACT1_LEN};

use super::read::{CaptureError, CaptureReader, Packet};
use super::reassembly::{ConnectionId, Delivery, Reassembler};
use crate::decoder::{classify_client_start, Mode, StreamDecoder, StreamEvent};
use crate::transcript::{Direction, Endpoints, Event, Timestamp, Transcript};

/// Bytes held after a gap while looking for where a unit starts.
const RESYNC_HOLD: usize = 256 * 1024;

/// Where reading can start again after a gap in `buf`: for SV1 after the first newline; for plain
/// SV2 at the first offset whose 6 bytes are a known message's header (extension, type and
/// channel_msg bit as the message table says), whose frame is complete in `buf` and is followed by
/// another such header or by the end of `buf`. None: more bytes are needed.
fn resync_point(buf: &[u8], sv1: bool) -> Option<usize> {
    if sv1 {
        return buf.iter().position(|b| *b == b'\n').map(|i| i + 1);
    }
    let header_at = |i: usize| known_frame_len(buf, i);
    for i in 0..buf.len().saturating_sub(5) {
        let Some(size) = header_at(i) else {
            continue;
        };
        if size > RESYNC_HOLD {
            // A frame that large is no plausible start here: most likely bytes that only look
            // like a header.
            continue;
        }
        let end = i + size;
        if end > buf.len() {
            // Its frame is not complete yet: wait for more before deciding.
            return None;
        }
        if end == buf.len() || header_at(end).is_some() || buf.len() - end < 6 {
            return Some(i);
        }
    }
    None
}

/// The size of the frame whose header is at `buf[i..]` when those 6 bytes are a known message's
/// header (extension, type and channel_msg bit as the message table says).
fn known_frame_len(buf: &[u8], i: usize) -> Option<usize> {
    let h = buf.get(i..i + 6)?;
    let ext = u16::from_le_bytes([h[0], h[1]]);
    let len = u32::from_le_bytes([h[3], h[4], h[5], 0]) as usize;
    let known = sv2_codec::messages::MESSAGE_TYPES.iter().any(|m| {
        m.extension_type == ext & 0x7fff
            && m.msg_type == h[2]
            && m.channel_msg == (ext & 0x8000 != 0)
    });
    known.then_some(6 + len)
}

/// Client bytes held while a connection is classified; past this much, a connection that still
/// reads as nothing known is left unclassified.
const CLASSIFY_HOLD: usize = 4096;

/// What a connection carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Not known yet, or never: no client byte, or bytes that read as nothing known.
    Unknown,
    Sv1,
    Sv2,
    Noise,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Unknown => "unknown",
            Protocol::Sv1 => "sv1",
            Protocol::Sv2 => "sv2",
            Protocol::Noise => "sv2-noise",
        }
    }
}

/// Whether a Noise connection's transport could be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decryption {
    /// Not a Noise connection (or the handshake was not seen).
    NotNoise,
    /// A key-log line named its act 1: every frame is decrypted and checked.
    Keys,
    /// No key-log line names its act 1: frames are listed by their length only.
    NoKey,
}

/// What named the client and the server of a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Roles {
    /// The SYN: its sender is the client.
    Syn,
    /// The conversation's start is in the capture though its SYN is not: a Noise act 1, a
    /// SetupConnection, or an SV1 client's first request (mining.configure or mining.subscribe).
    Start,
    /// The capture began mid-conversation: the roles are those the messages' senders agree on
    /// (a share comes from the client, a job from the server).
    Messages,
    /// Nothing tells: the first sender is named the client, and may not be.
    FirstSender,
}

impl Roles {
    pub fn as_str(self) -> &'static str {
        match self {
            Roles::Syn => "syn",
            Roles::Start => "start",
            Roles::Messages => "messages",
            Roles::FirstSender => "first-sender",
        }
    }

    /// The capture holds the conversation from its start (what the rules that follow a
    /// conversation's state need).
    pub fn from_start(self) -> bool {
        matches!(self, Roles::Syn | Roles::Start)
    }
}

/// SV1 methods only a client sends, and only a server sends.
const SV1_CLIENT_METHODS: &[&str] = &[
    "mining.subscribe",
    "mining.authorize",
    "mining.submit",
    "mining.configure",
    "mining.extranonce.subscribe",
    "mining.suggest_difficulty",
    "mining.suggest_target",
    "mining.get_transactions",
];
const SV1_SERVER_METHODS: &[&str] = &[
    "mining.notify",
    "mining.set_difficulty",
    "mining.set_extranonce",
    "mining.set_version_mask",
    "mining.set_target",
    "client.reconnect",
    "client.show_message",
    "client.get_version",
];

/// One connection of the capture, followed.
#[derive(Debug)]
pub struct Conversation {
    pub id: ConnectionId,
    pub protocol: Protocol,
    pub decryption: Decryption,
    /// The client is who sent the SYN (`saw_syn`), else who sent first, until [`Conversation::roles`]
    /// says otherwise.
    pub saw_syn: bool,
    /// What named the client and the server.
    pub roles: Roles,
    pub transcript: Transcript,
    /// Bytes the capture missed, per direction [client to server, server to client].
    pub gaps: [u64; 2],
    /// Encrypted bytes that could not be read (no key, or after a gap), per direction.
    pub unread: [u64; 2],
    /// The connection ended (FIN from both, or RST) inside the capture.
    pub closed: bool,
}

#[derive(Debug)]
struct Followed {
    conv: Conversation,
    client: SocketAddr,
    /// Held client and server bytes until the connection is classified.
    held: [Vec<(Timestamp, Vec<u8>)>; 2],
    held_len: usize,
    decoders: Option<[StreamDecoder; 2]>,
    ended: [bool; 2],
    /// An encrypted direction past a gap: its bytes are counted, not read.
    lost: [bool; 2],
    /// A plain or SV1 direction past a gap, looking for where a unit starts: the bytes so far.
    resync: [Option<Vec<u8>>; 2],
    /// Traffic keys found for a session, each handed to its direction's decoder after its act.
    pending_keys: [Option<[u8; 32]>; 2],
    /// The time of the latest event.
    last: Timestamp,
}

/// What [`Follower::read_capture`] hands on as it reads.
#[derive(Debug)]
pub enum Seen {
    /// A conversation ended (FIN from both sides, or a reset).
    Ended(Conversation),
    /// A packet whose headers do not parse (skipped; reading goes on).
    Skipped { number: u64, reason: String },
}

/// How reading a capture file ended.
#[derive(Debug)]
pub struct ReadEnd {
    /// Packets read.
    pub packets: u64,
    /// The error that ended the file early (what came before it was read).
    pub error: Option<CaptureError>,
}

/// Follows every connection of a capture.
#[derive(Debug, Default)]
pub struct Follower {
    keys: Vec<KeyLogEntry>,
    conns: HashMap<ConnectionId, Followed>,
    /// Connections ended, in the order they ended.
    done: Vec<Conversation>,
    /// Forced classification by port (either end), instead of the content.
    ports: HashMap<u16, Protocol>,
}

impl Follower {
    /// A follower that decrypts the Noise sessions `keys` name.
    pub fn new(keys: Vec<KeyLogEntry>) -> Self {
        Follower {
            keys,
            ..Follower::default()
        }
    }

    /// Reads connections on `port` as `protocol`, whatever their content.
    pub fn force_port(&mut self, port: u16, protocol: Protocol) {
        self.ports.insert(port, protocol);
    }

    /// Takes one delivery of the reassembler.
    pub fn take(&mut self, delivery: Delivery) {
        match delivery {
            Delivery::Opened {
                id,
                client,
                server,
                saw_syn,
                ..
            } => {
                let mut transcript = Transcript::default();
                transcript.endpoints = Endpoints {
                    client: Some(client),
                    server: Some(server),
                };
                self.conns.insert(
                    id,
                    Followed {
                        conv: Conversation {
                            id,
                            protocol: Protocol::Unknown,
                            decryption: Decryption::NotNoise,
                            saw_syn,
                            roles: if saw_syn {
                                Roles::Syn
                            } else {
                                Roles::FirstSender
                            },
                            transcript,
                            gaps: [0; 2],
                            unread: [0; 2],
                            closed: false,
                        },
                        client,
                        held: [Vec::new(), Vec::new()],
                        held_len: 0,
                        decoders: None,
                        ended: [false; 2],
                        lost: [false; 2],
                        resync: [None, None],
                        pending_keys: [None, None],
                        last: Timestamp::default(),
                    },
                );
            }
            Delivery::Data {
                id,
                from,
                at,
                bytes,
            } => {
                let forced = self.forced(id);
                let keys = &self.keys;
                if let Some(f) = self.conns.get_mut(&id) {
                    let side = usize::from(from != f.client);
                    f.data(side, at, bytes, forced, keys);
                }
            }
            Delivery::Gap { id, from, at, len } => {
                if let Some(f) = self.conns.get_mut(&id) {
                    let side = usize::from(from != f.client);
                    f.conv.gaps[side] += len;
                    f.conv.transcript.note(
                        at,
                        format!(
                            "{}: {len} bytes missing from the capture",
                            direction(side).as_str()
                        ),
                    );
                    f.gap(side, at);
                }
            }
            Delivery::Closed {
                id,
                from,
                at,
                reset,
            } => {
                let Some(f) = self.conns.get_mut(&id) else {
                    return;
                };
                let side = usize::from(from != f.client);
                f.ended[side] = true;
                if reset || f.ended.iter().all(|e| *e) {
                    f.conv.transcript.note(
                        at,
                        if reset {
                            format!("{}: connection reset", direction(side).as_str())
                        } else {
                            "connection closed".to_string()
                        },
                    );
                    f.conv.closed = true;
                    if let Some(f) = self.conns.remove(&id) {
                        self.done.push(f.finish());
                    }
                }
            }
        }
    }

    fn forced(&self, id: ConnectionId) -> Option<Protocol> {
        let f = self.conns.get(&id)?;
        let ends = [
            f.conv.transcript.endpoints.client,
            f.conv.transcript.endpoints.server,
        ];
        ends.iter()
            .flatten()
            .find_map(|a| self.ports.get(&a.port()).copied())
    }

    /// Conversations that ended since the last call.
    pub fn take_done(&mut self) -> Vec<Conversation> {
        std::mem::take(&mut self.done)
    }

    /// Reads one capture file to its end (or to the error that ends it): its TCP segments
    /// reassembled per connection and followed. `seen` gets every conversation as it ends and every
    /// packet whose headers do not parse; conversations still open stay for [`Follower::finish`]
    /// (several files may be read in turn). An error of `seen` stops the reading.
    pub fn read_capture<E>(
        &mut self,
        reader: CaptureReader<'_>,
        mut seen: impl FnMut(Seen) -> Result<(), E>,
    ) -> Result<ReadEnd, E> {
        let mut reader = reader;
        let mut reassembler = Reassembler::new();
        let mut deliveries = Vec::new();
        let mut error = None;
        for packet in reader.by_ref() {
            match packet {
                Ok(Packet::Tcp(segment)) => reassembler.push(segment, &mut deliveries),
                Ok(Packet::Other { .. }) => {}
                Ok(Packet::Unreadable { number, reason }) => {
                    seen(Seen::Skipped { number, reason })?
                }
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
            for d in deliveries.drain(..) {
                self.take(d);
            }
            for conversation in self.take_done() {
                seen(Seen::Ended(conversation))?;
            }
        }
        reassembler.finish(&mut deliveries);
        for d in deliveries.drain(..) {
            self.take(d);
        }
        for conversation in self.take_done() {
            seen(Seen::Ended(conversation))?;
        }
        Ok(ReadEnd {
            packets: reader.packets(),
            error,
        })
    }

    /// The end of the capture: every conversation still open, in the order they began.
    pub fn finish(&mut self) -> Vec<Conversation> {
        let mut open: Vec<Followed> = self.conns.drain().map(|(_, f)| f).collect();
        open.sort_by_key(|f| f.conv.id.0);
        let mut out = std::mem::take(&mut self.done);
        out.extend(open.into_iter().map(Followed::finish));
        out
    }
}

fn direction(side: usize) -> Direction {
    if side == 0 {
        Direction::ClientToServer
    } else {
        Direction::ServerToClient
    }
}

impl Followed {
    fn data(
        &mut self,
        side: usize,
        at: Timestamp,
        bytes: Vec<u8>,
        forced: Option<Protocol>,
        keys: &[KeyLogEntry],
    ) {
        if self.decoders.is_none() {
            self.held_len += bytes.len();
            self.held[side].push((at, bytes));
            let first: Vec<u8> = self.held[0]
                .iter()
                .flat_map(|(_, b)| b.iter().copied())
                .take(64)
                .collect();
            let mode = match forced {
                Some(Protocol::Sv1) => Some((Mode::Sv1, true)),
                Some(Protocol::Sv2) => Some((Mode::Sv2, true)),
                Some(Protocol::Noise) => Some((Mode::Noise, true)),
                _ if !self.conv.saw_syn => self.classify_midway(),
                _ => classify_client_start(&first).map(|mode| (mode, true)),
            };
            match mode {
                Some((mode, true)) => self.start(mode, keys),
                Some((_, false)) => {
                    // Encrypted, and the handshake is not in the capture: nothing can be read.
                    self.conv.decryption = Decryption::NoKey;
                    self.lost = [true, true];
                    let at = self.held[0]
                        .first()
                        .or(self.held[1].first())
                        .map(|(at, _)| *at);
                    self.conv.transcript.note(
                        at.unwrap_or_default(),
                        "the capture began after the Noise handshake: the transport cannot be read",
                    );
                    self.start(Mode::Noise, keys);
                }
                None if self.held_len > CLASSIFY_HOLD => {
                    // Nothing known: the bytes are noted, the connection left unclassified.
                    let held = std::mem::take(&mut self.held);
                    for (side, chunks) in held.into_iter().enumerate() {
                        let n: usize = chunks.iter().map(|(_, b)| b.len()).sum();
                        if let Some((at, _)) = chunks.first() {
                            self.conv.transcript.note(
                                *at,
                                format!(
                                    "{}: {n} bytes of no protocol this tool knows",
                                    direction(side).as_str()
                                ),
                            );
                        }
                    }
                    self.held_len = 0;
                }
                None => {}
            }
            return;
        }
        self.push(side, at, &bytes, keys);
    }

    /// How to read a connection whose SYN is not in the capture, from what each side sent first:
    /// SV1 text, plain SV2 frames (a known header whose frame is complete), a Noise handshake (a
    /// 64-byte first segment: act 1), or an encrypted stream caught after its handshake (`false`:
    /// nothing of it can be read). `None`: more bytes are needed.
    fn classify_midway(&self) -> Option<(Mode, bool)> {
        let bytes = |side: usize| -> Vec<u8> {
            self.held[side]
                .iter()
                .flat_map(|(_, b)| b.iter().copied())
                .take(CLASSIFY_HOLD)
                .collect()
        };
        let sides = [bytes(0), bytes(1)];
        if sides
            .iter()
            .any(|b| classify_client_start(b) == Some(Mode::Sv1))
        {
            return Some((Mode::Sv1, true));
        }
        if sides.iter().any(|b| resync_point(b, false) == Some(0)) {
            return Some((Mode::Sv2, true));
        }
        if sides
            .iter()
            .any(|b| known_frame_len(b, 0).is_some_and(|len| len > b.len()))
        {
            // A known header whose frame has not all come yet.
            return None;
        }
        match self.held[0].first().map(|(_, b)| b.len()) {
            Some(ACT1_LEN) => Some((Mode::Noise, true)),
            _ if sides[0].len() >= ACT1_LEN => Some((Mode::Noise, false)),
            _ => None,
        }
    }

    /// The connection is classified: decoders for both directions, and what was held pushed.
    fn start(&mut self, mode: Mode, keys: &[KeyLogEntry]) {
        self.conv.protocol = match mode {
            Mode::Sv1 => Protocol::Sv1,
            Mode::Sv2 => Protocol::Sv2,
            Mode::Noise => Protocol::Noise,
        };
        self.decoders = Some([
            StreamDecoder::new(Direction::ClientToServer, mode),
            StreamDecoder::new(Direction::ServerToClient, mode),
        ]);
        let held = std::mem::take(&mut self.held);
        self.held_len = 0;
        // In capture order across both directions, as far as their times tell.
        let mut chunks: Vec<(Timestamp, usize, Vec<u8>)> = held
            .into_iter()
            .enumerate()
            .flat_map(|(side, chunks)| chunks.into_iter().map(move |(at, b)| (at, side, b)))
            .collect();
        chunks.sort_by_key(|(at, side, _)| (*at, *side));
        for (at, side, bytes) in chunks {
            self.push(side, at, &bytes, keys);
        }
    }

    fn push(&mut self, side: usize, at: Timestamp, bytes: &[u8], keys: &[KeyLogEntry]) {
        if self.lost[side] {
            self.conv.unread[side] += bytes.len() as u64;
            if self.conv.protocol == Protocol::Noise && !bytes.is_empty() {
                // Frame boundaries are encrypted too: each segment is listed with its size.
                self.conv.transcript.push(
                    at,
                    Event::Encrypted {
                        direction: direction(side),
                        len: bytes.len() as u64,
                    },
                );
            }
            return;
        }
        if let Some(mut buf) = self.resync[side].take() {
            buf.extend_from_slice(bytes);
            let sv1 = self.conv.protocol == Protocol::Sv1;
            match resync_point(&buf, sv1) {
                Some(start) => {
                    if start > 0 {
                        self.conv.transcript.note(
                            at,
                            format!(
                                "{}: resynchronised after the gap, {start} bytes skipped",
                                direction(side).as_str()
                            ),
                        );
                    }
                    self.conv.unread[side] += start as u64;
                    let rest = buf.split_off(start);
                    self.push(side, at, &rest, keys);
                }
                None if buf.len() > RESYNC_HOLD => {
                    // No boundary in all that: give up on this direction.
                    self.conv.unread[side] += buf.len() as u64;
                    self.lost[side] = true;
                    self.conv.transcript.note(
                        at,
                        format!(
                            "{}: no {} found within {RESYNC_HOLD} bytes after the gap: not read further",
                            direction(side).as_str(),
                            if sv1 { "line end" } else { "plausible frame" }
                        ),
                    );
                }
                None => self.resync[side] = Some(buf),
            }
            return;
        }
        let Some(decoders) = self.decoders.as_mut() else {
            return;
        };
        decoders[side].push(bytes, at);
        self.drain(keys);
    }

    /// Records every event of both decoders; a client act 1 looks its keys up, and each direction
    /// gets its key once its own act is read (a decoder takes keys only after its act).
    fn drain(&mut self, keys: &[KeyLogEntry]) {
        let Some(decoders) = self.decoders.as_mut() else {
            return;
        };
        loop {
            let mut progressed = false;
            for (side, decoder) in decoders.iter_mut().enumerate() {
                while let Some((at, event)) = decoder.next_event() {
                    progressed = true;
                    self.last = at;
                    if let StreamEvent::Act { act: 1, bytes } = &event {
                        match keylog::find(keys, bytes) {
                            Some(entry) => {
                                self.conv.decryption = Decryption::Keys;
                                self.pending_keys = [Some(entry.c1), Some(entry.c2)];
                            }
                            None => {
                                self.conv.decryption = Decryption::NoKey;
                                self.conv.transcript.note(
                                    at,
                                    "no key-log line names this act 1: the transport cannot be read",
                                );
                            }
                        }
                    }
                    if let StreamEvent::Error(crate::decoder::StreamError::NoKeys(n)) = &event {
                        self.conv.unread[side] += *n as u64;
                    }
                    event.record(direction(side), at, &mut self.conv.transcript);
                }
            }
            for (side, decoder) in decoders.iter_mut().enumerate() {
                if decoder.awaits_keys() {
                    if let Some(key) = self.pending_keys[side].take() {
                        decoder.set_decryptor(Decryptor::from_key(key), self.last);
                        progressed = true;
                    }
                }
            }
            if !progressed {
                break;
            }
        }
        // Without keys, what waits after the acts is counted, not held: those directions are
        // read no further.
        if self.conv.decryption == Decryption::NoKey {
            for (side, d) in decoders.iter_mut().enumerate() {
                if d.awaits_keys() {
                    let pending = d.pending() as u64;
                    self.conv.unread[side] += pending;
                    self.lost[side] = true;
                    if pending > 0 {
                        self.conv.transcript.push(
                            self.last,
                            Event::Encrypted {
                                direction: direction(side),
                                len: pending,
                            },
                        );
                    }
                }
            }
        }
    }

    /// Bytes are missing: a plain or SV1 stream is read again from after the gap by a fresh
    /// decoder (an SV1 line or a frame cut by the gap shows as one that does not parse); an
    /// encrypted one is lost from here on (its nonces cannot be recovered).
    fn gap(&mut self, side: usize, at: Timestamp) {
        let Some(decoders) = self.decoders.as_mut() else {
            // Before classification: what was held is no longer a stream's start.
            self.held[side].clear();
            return;
        };
        match self.conv.protocol {
            Protocol::Noise => {
                self.lost[side] = true;
                self.conv.transcript.note(
                    at,
                    format!(
                        "{}: the encrypted stream cannot be read after the gap (its nonces are lost)",
                        direction(side).as_str()
                    ),
                );
            }
            protocol => {
                let mode = if protocol == Protocol::Sv1 {
                    Mode::Sv1
                } else {
                    Mode::Sv2
                };
                // What the old decoder held was cut by the gap; reading starts again where a unit
                // plausibly starts.
                decoders[side] = StreamDecoder::new(direction(side), mode);
                self.resync[side] = Some(Vec::new());
                self.conv.transcript.note(
                    at,
                    format!(
                        "{}: looking for the next {} after the gap",
                        direction(side).as_str(),
                        if mode == Mode::Sv1 { "line" } else { "frame" }
                    ),
                );
            }
        }
    }

    fn finish(mut self) -> Conversation {
        if !self.conv.saw_syn {
            settle_roles(&mut self.conv);
        }
        self.conv
    }
}

/// Names the client and server of a conversation whose SYN the capture lacks, from its content:
/// its start when the capture holds it, else the senders of its messages (swapping the roles when
/// they contradict the first-sender guess).
fn settle_roles(conv: &mut Conversation) {
    let (roles, swap) = judge_roles(&conv.transcript);
    conv.roles = roles;
    if swap {
        conv.transcript.swap_roles();
        conv.gaps.swap(0, 1);
        conv.unread.swap(0, 1);
    }
}

/// The roles a transcript's content shows, and whether its directions are the wrong way round.
fn judge_roles(transcript: &Transcript) -> (Roles, bool) {
    use sv2_codec::messages::Sender;
    let mut agree = 0usize;
    let mut contradict = 0usize;
    let mut first = true;
    for entry in transcript.entries() {
        let (direction, from_client) = match &entry.event {
            // Act 1 is the initiator's: the decoders read it only from the first sender.
            Event::Handshake { act: 1, .. } if first => return (Roles::Start, false),
            Event::Frame {
                direction,
                decoded: Ok(decoded),
                ..
            } => {
                if first && decoded.message.name() == "SetupConnection" {
                    return (Roles::Start, *direction == Direction::ServerToClient);
                }
                let from_client = match decoded.message.sender() {
                    Some(Sender::Client) => Some(true),
                    Some(Sender::Server) => Some(false),
                    Some(Sender::Either) | None => None,
                };
                (*direction, from_client)
            }
            Event::Sv1 {
                direction,
                parsed: Ok(message),
                ..
            } => {
                let method = message.method().unwrap_or("");
                if first && matches!(method, "mining.subscribe" | "mining.configure") {
                    return (Roles::Start, *direction == Direction::ServerToClient);
                }
                let from_client = if SV1_CLIENT_METHODS.contains(&method) {
                    Some(true)
                } else if SV1_SERVER_METHODS.contains(&method) {
                    Some(false)
                } else {
                    None
                };
                (*direction, from_client)
            }
            _ => continue,
        };
        first = false;
        match from_client {
            Some(c) if c == (direction == Direction::ClientToServer) => agree += 1,
            Some(_) => contradict += 1,
            None => {}
        }
    }
    if agree + contradict == 0 {
        return (Roles::FirstSender, false);
    }
    (Roles::Messages, contradict > agree)
}
