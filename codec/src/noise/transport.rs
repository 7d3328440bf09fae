//! Encrypted SV2 framing after the handshake (spec §4.6, CATALOG §B.2).
//!
//! ```text
//! plain frame:  header(6) || payload(msg_length)          msg_length = plaintext payload length
//! on the wire:  EncryptWithAd([], header) (22 bytes)
//!               || EncryptWithAd([], chunk_1) || ... || EncryptWithAd([], chunk_k)
//! ```
//!
//! Chunks hold at most [`MAX_CHUNK_LEN`] = 65519 plaintext bytes, so a full block is 65535 bytes; an
//! empty payload has no block at all. Every AEAD call uses an empty AD and consumes one nonce of the
//! direction's CipherState (c1 initiator -> responder, c2 responder -> initiator).
//!
//! [`Encryptor`] appends whole encrypted frames to a caller's buffer. [`Decryptor`] is incremental:
//! push bytes split anywhere and get whole plaintext frames. Both work in place (no per-frame
//! allocation when the caller reuses its buffers). Memory stays bounded whatever a peer claims: the
//! claimed length is checked against a configured maximum as soon as the header decrypts, and the
//! buffer grows only with the bytes actually received.

use crate::frame::{Header, OwnedFrame, HEADER_LEN, MAX_PAYLOAD_LEN};

use super::error::{DecryptStep, NoiseError};
use super::symmetric::{AuthFailed, CipherState, MAC_LEN};

/// Size of an encrypted frame header: 6 bytes of ciphertext and a 16-byte tag.
pub const ENCRYPTED_HEADER_LEN: usize = HEADER_LEN + MAC_LEN;
/// Largest Noise transport message (one AEAD block including its tag).
pub const MAX_BLOCK_LEN: usize = 65535;
/// Largest plaintext chunk per block.
pub const MAX_CHUNK_LEN: usize = MAX_BLOCK_LEN - MAC_LEN;

/// Buffer capacity a [`Decryptor`] keeps between frames; a larger buffer (left by a frame of more than
/// about 128 KiB) is freed when the next frame starts.
const RETAINED_CAPACITY: usize = 4 * MAX_BLOCK_LEN;

/// Number of payload blocks for a plaintext payload of `payload_len` bytes.
pub const fn block_count(payload_len: usize) -> usize {
    payload_len.div_ceil(MAX_CHUNK_LEN)
}

/// Ciphertext length of a plaintext payload (CATALOG §B.2 `pt_len_to_ct_len`): the blocks without the
/// 22-byte header.
pub const fn encrypted_payload_len(payload_len: usize) -> usize {
    payload_len + block_count(payload_len) * MAC_LEN
}

/// Wire length of a whole encrypted frame with a `payload_len`-byte plaintext payload.
pub const fn encrypted_frame_len(payload_len: usize) -> usize {
    ENCRYPTED_HEADER_LEN + encrypted_payload_len(payload_len)
}

/// Both directions of an established session.
#[derive(Debug, Clone)]
pub struct Transport {
    /// Encrypts what this side sends.
    pub encryptor: Encryptor,
    /// Decrypts what this side receives.
    pub decryptor: Decryptor,
}

impl Transport {
    pub fn split(self) -> (Encryptor, Decryptor) {
        (self.encryptor, self.decryptor)
    }
}

/// Encrypts plain SV2 frames for the wire.
#[derive(Debug, Clone)]
pub struct Encryptor {
    cipher: CipherState,
}

impl Encryptor {
    pub fn new(cipher: CipherState) -> Self {
        Encryptor { cipher }
    }

    /// An encryptor for the direction keyed by `key`, starting at nonce 0.
    pub fn from_key(key: [u8; 32]) -> Self {
        Encryptor::new(CipherState::new(key))
    }

    /// The nonce the next AEAD call will use.
    pub fn nonce(&self) -> u64 {
        self.cipher.nonce()
    }

    /// Sets the next nonce (tests, resumed sessions).
    pub fn set_nonce(&mut self, n: u64) {
        self.cipher.set_nonce(n);
    }

    /// The traffic key of this direction.
    pub fn key(&self) -> [u8; 32] {
        self.cipher.key()
    }

    /// Encrypts one plain frame (`header(6) || payload`, as `encode_frame` produces it) and appends it to
    /// `out`. The header's msg_length must equal the payload length.
    pub fn encrypt_frame(&mut self, frame: &[u8], out: &mut Vec<u8>) -> Result<(), NoiseError> {
        let Some((header, payload)) = frame.split_first_chunk::<HEADER_LEN>() else {
            return Err(NoiseError::WrongLength {
                what: "plain frame",
                expected: HEADER_LEN,
                got: frame.len(),
            });
        };
        self.encrypt_parts(header, payload, out)
    }

    /// Encrypts a frame given as its six header bytes and its payload; appends to `out`.
    ///
    /// On error nothing is appended and no nonce is consumed.
    pub fn encrypt_parts(
        &mut self,
        header: &[u8; HEADER_LEN],
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), NoiseError> {
        let declared = Header::from_bytes(*header).msg_length as usize;
        if declared != payload.len() {
            return Err(NoiseError::FrameLength {
                declared,
                actual: payload.len(),
            });
        }
        let blocks = block_count(payload.len()) as u64;
        if self.cipher.remaining() < blocks + 1 {
            return Err(NoiseError::NonceExhausted);
        }
        let start = out.len();
        out.reserve(encrypted_frame_len(payload.len()));
        if let Err(e) = self.encrypt_unchecked(header, payload, out) {
            out.truncate(start);
            return Err(e);
        }
        Ok(())
    }

    /// Encrypts the six header bytes as given, whatever msg_length says, then the payload: for a
    /// peer that lies about the length on purpose (the receiver then waits for, or misreads, the
    /// payload). Appends to `out`; on error nothing is appended.
    pub fn encrypt_parts_unchecked(
        &mut self,
        header: &[u8; HEADER_LEN],
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), NoiseError> {
        let blocks = block_count(payload.len()) as u64;
        if self.cipher.remaining() < blocks + 1 {
            return Err(NoiseError::NonceExhausted);
        }
        let start = out.len();
        if let Err(e) = self.encrypt_unchecked(header, payload, out) {
            out.truncate(start);
            return Err(e);
        }
        Ok(())
    }

    #[inline]
    fn encrypt_unchecked(
        &mut self,
        header: &[u8; HEADER_LEN],
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), NoiseError> {
        let at = out.len();
        out.extend_from_slice(header);
        let tag = self.cipher.encrypt_in_place(&[], &mut out[at..])?;
        out.extend_from_slice(&tag);
        for chunk in payload.chunks(MAX_CHUNK_LEN) {
            let at = out.len();
            out.extend_from_slice(chunk);
            let tag = self.cipher.encrypt_in_place(&[], &mut out[at..])?;
            out.extend_from_slice(&tag);
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Collecting the 22-byte encrypted header.
    Header,
    /// Collecting payload blocks: `remaining` plaintext bytes after the block in progress, which
    /// starts at `block_start` in `buf` and has `block_pt` plaintext bytes.
    Payload {
        remaining: usize,
        block_index: usize,
        block_start: usize,
        block_pt: usize,
    },
    /// A whole frame is in `buf`; the next push starts a new one.
    Ready,
    Failed,
}

/// Incremental decryptor of encrypted SV2 frames.
///
/// ```text
/// loop { let (used, frame) = dec.push(input)?; input = &input[used..]; if let Some(f) = frame { .. } }
/// ```
///
/// Any decryption failure, and a claimed payload above the configured maximum, is terminal: every
/// later call returns [`NoiseError::Terminated`].
#[derive(Debug, Clone)]
pub struct Decryptor {
    cipher: CipherState,
    max_payload: usize,
    phase: Phase,
    head: [u8; ENCRYPTED_HEADER_LEN],
    head_len: usize,
    /// Plain header, plaintext payload so far, then the ciphertext of the block in progress.
    buf: Vec<u8>,
}

impl Decryptor {
    /// A decryptor accepting payloads up to 2^24 - 1 bytes (the most msg_length can say).
    pub fn new(cipher: CipherState) -> Self {
        Self::with_max_payload(cipher, MAX_PAYLOAD_LEN)
    }

    /// A decryptor refusing frames whose decrypted header claims more than `max_payload` bytes.
    pub fn with_max_payload(cipher: CipherState, max_payload: usize) -> Self {
        Decryptor {
            cipher,
            max_payload,
            phase: Phase::Header,
            head: [0; ENCRYPTED_HEADER_LEN],
            head_len: 0,
            buf: Vec::new(),
        }
    }

    /// A decryptor for the direction keyed by `key`, starting at nonce 0.
    pub fn from_key(key: [u8; 32]) -> Self {
        Self::new(CipherState::new(key))
    }

    /// Changes the payload limit (applies from the next header on).
    pub fn set_max_payload(&mut self, max_payload: usize) {
        self.max_payload = max_payload;
    }

    /// The nonce the next AEAD call will use.
    pub fn nonce(&self) -> u64 {
        self.cipher.nonce()
    }

    /// Sets the next nonce (tests, resumed sessions).
    pub fn set_nonce(&mut self, n: u64) {
        self.cipher.set_nonce(n);
    }

    /// The traffic key of this direction.
    pub fn key(&self) -> [u8; 32] {
        self.cipher.key()
    }

    /// True after an error: the session must be closed.
    pub fn is_failed(&self) -> bool {
        self.phase == Phase::Failed
    }

    /// True when no partial frame is buffered.
    pub fn is_idle(&self) -> bool {
        matches!(self.phase, Phase::Header | Phase::Ready) && self.head_len == 0
    }

    /// How many more bytes complete the unit being read: the encrypted header, or the payload block in
    /// progress (at most 65535). Never 0 except after a failure.
    pub fn needed(&self) -> usize {
        match self.phase {
            Phase::Header => ENCRYPTED_HEADER_LEN - self.head_len,
            Phase::Ready => ENCRYPTED_HEADER_LEN,
            Phase::Payload {
                block_start,
                block_pt,
                ..
            } => block_pt + MAC_LEN - (self.buf.len() - block_start),
            Phase::Failed => 0,
        }
    }

    /// Consumes bytes of `input` up to the end of the current frame. Returns how many bytes were used
    /// and, when a frame completed, the plain frame `header(6) || payload`, borrowed until the next
    /// call. Call again with the rest of `input`.
    pub fn push(&mut self, input: &[u8]) -> Result<(usize, Option<&[u8]>), NoiseError> {
        match self.advance(input) {
            Ok((used, true)) => Ok((used, Some(&self.buf[..]))),
            Ok((used, false)) => Ok((used, None)),
            Err(e) => {
                self.fail();
                Err(e)
            }
        }
    }

    /// As [`Decryptor::push`], returning the frame as an [`OwnedFrame`].
    pub fn push_frame(&mut self, input: &[u8]) -> Result<(usize, Option<OwnedFrame>), NoiseError> {
        let (used, frame) = self.push(input)?;
        let frame = frame.and_then(|bytes| {
            let (header, payload) = bytes.split_first_chunk::<HEADER_LEN>()?;
            Some(OwnedFrame {
                header: Header::from_bytes(*header),
                payload: payload.to_vec(),
            })
        });
        Ok((used, frame))
    }

    /// Feeds all of `input` and collects every completed frame.
    pub fn push_all(&mut self, mut input: &[u8]) -> Result<Vec<OwnedFrame>, NoiseError> {
        let mut frames = Vec::new();
        while !input.is_empty() {
            let (used, frame) = self.push_frame(input)?;
            input = &input[used..];
            frames.extend(frame);
        }
        Ok(frames)
    }

    fn fail(&mut self) {
        self.phase = Phase::Failed;
        self.buf = Vec::new();
        self.head_len = 0;
    }

    /// Returns (bytes used, frame complete).
    fn advance(&mut self, input: &[u8]) -> Result<(usize, bool), NoiseError> {
        let mut used = 0;
        if self.phase == Phase::Ready {
            self.buf.clear();
            // One large frame must not pin its memory for the rest of the session.
            if self.buf.capacity() > RETAINED_CAPACITY {
                self.buf = Vec::new();
            }
            self.phase = Phase::Header;
        }
        loop {
            match self.phase {
                Phase::Failed => return Err(NoiseError::Terminated),
                Phase::Ready => return Ok((used, true)),
                Phase::Header => {
                    let take = (ENCRYPTED_HEADER_LEN - self.head_len).min(input.len() - used);
                    self.head[self.head_len..self.head_len + take]
                        .copy_from_slice(&input[used..used + take]);
                    self.head_len += take;
                    used += take;
                    if self.head_len < ENCRYPTED_HEADER_LEN {
                        return Ok((used, false));
                    }
                    self.head_len = 0;
                    self.open_header()?;
                }
                Phase::Payload {
                    remaining,
                    block_index,
                    block_start,
                    block_pt,
                } => {
                    let block_len = block_pt + MAC_LEN;
                    let have = self.buf.len() - block_start;
                    let take = (block_len - have).min(input.len() - used);
                    self.grow(take, block_start + block_len);
                    self.buf.extend_from_slice(&input[used..used + take]);
                    used += take;
                    if have + take < block_len {
                        return Ok((used, false));
                    }
                    self.open_block(block_index, block_start, block_pt)?;
                    self.phase = if remaining == 0 {
                        Phase::Ready
                    } else {
                        let next_pt = remaining.min(MAX_CHUNK_LEN);
                        Phase::Payload {
                            remaining: remaining - next_pt,
                            block_index: block_index + 1,
                            block_start: self.buf.len(),
                            block_pt: next_pt,
                        }
                    };
                }
            }
        }
    }

    fn open_header(&mut self) -> Result<(), NoiseError> {
        let (body, tag) = self.head.split_at_mut(HEADER_LEN);
        let tag: &[u8; MAC_LEN] = (&*tag).try_into().map_err(|_| NoiseError::Decrypt {
            step: DecryptStep::FrameHeader,
        })?;
        self.cipher
            .decrypt_in_place(&[], body, tag)
            .map_err(|e| auth_error(e, DecryptStep::FrameHeader))?;
        let mut plain = [0u8; HEADER_LEN];
        plain.copy_from_slice(body);
        let length = Header::from_bytes(plain).msg_length as usize;
        if length > self.max_payload {
            return Err(NoiseError::FrameTooLarge {
                length,
                max: self.max_payload,
            });
        }
        self.buf.clear();
        self.buf.extend_from_slice(&plain);
        self.phase = if length == 0 {
            Phase::Ready
        } else {
            let block_pt = length.min(MAX_CHUNK_LEN);
            Phase::Payload {
                remaining: length - block_pt,
                block_index: 0,
                block_start: HEADER_LEN,
                block_pt,
            }
        };
        Ok(())
    }

    fn open_block(
        &mut self,
        index: usize,
        block_start: usize,
        block_pt: usize,
    ) -> Result<(), NoiseError> {
        let step = DecryptStep::FrameBlock { index };
        let body_end = block_start + block_pt;
        let Some((body, tag)) = self
            .buf
            .get_mut(block_start..body_end + MAC_LEN)
            .map(|b| b.split_at_mut(block_pt))
        else {
            return Err(NoiseError::Decrypt { step });
        };
        let tag: &[u8; MAC_LEN] = (&*tag)
            .try_into()
            .map_err(|_| NoiseError::Decrypt { step })?;
        let tag = *tag;
        self.cipher
            .decrypt_in_place(&[], body, &tag)
            .map_err(|e| auth_error(e, step))?;
        self.buf.truncate(body_end);
        Ok(())
    }

    /// Makes room for `additional` bytes without ever reserving past `limit` (the end of the block in
    /// progress) and without more than doubling what is held: capacity follows received data.
    fn grow(&mut self, additional: usize, limit: usize) {
        let len = self.buf.len();
        if self.buf.capacity() - len >= additional {
            return;
        }
        let target = (len + additional).max(self.buf.capacity().saturating_mul(2).min(limit));
        self.buf.reserve_exact(target - len);
    }
}

fn auth_error(e: AuthFailed, step: DecryptStep) -> NoiseError {
    match e {
        AuthFailed::Tag => NoiseError::Decrypt { step },
        AuthFailed::NonceExhausted => NoiseError::NonceExhausted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Encryptor, Decryptor) {
        (Encryptor::from_key([9; 32]), Decryptor::from_key([9; 32]))
    }

    fn plain_frame(payload_len: usize) -> Vec<u8> {
        let mut frame = Vec::with_capacity(HEADER_LEN + payload_len);
        let len = (payload_len as u32).to_le_bytes();
        frame.extend_from_slice(&[0x00, 0x80, 0x1a, len[0], len[1], len[2]]);
        frame.extend((0..payload_len).map(|i| (i * 31 % 251) as u8));
        frame
    }

    #[test]
    fn ciphertext_lengths_match_catalog_g2() {
        for (pt, ct) in [
            (0, 0),
            (1, 17),
            (24, 40),
            (65518, 65534),
            (65519, 65535),
            (65520, 65552),
            (131038, 131070),
            (131039, 131087),
            (16777215, 16781327),
        ] {
            assert_eq!(encrypted_payload_len(pt), ct, "pt {pt}");
        }
        assert_eq!(encrypted_frame_len(0), 22);
    }

    #[test]
    fn frames_round_trip_with_expected_sizes_and_nonces() {
        for len in [0, 1, 24, 65518, 65519, 65520, 131038, 131039, 200_000] {
            let (mut enc, mut dec) = pair();
            let frame = plain_frame(len);
            let mut wire = Vec::new();
            enc.encrypt_frame(&frame, &mut wire).unwrap();
            assert_eq!(wire.len(), encrypted_frame_len(len), "len {len}");
            assert_eq!(enc.nonce(), 1 + block_count(len) as u64);
            let (used, got) = dec.push(&wire).unwrap();
            assert_eq!(used, wire.len());
            assert_eq!(got.unwrap(), &frame[..]);
            assert_eq!(dec.nonce(), enc.nonce());
            assert!(dec.is_idle());
        }
    }

    #[test]
    fn any_split_works_and_frames_chain() {
        let (mut enc, _) = pair();
        let frames: Vec<Vec<u8>> = [0, 5, 40, 0, 70].iter().map(|&l| plain_frame(l)).collect();
        let mut wire = Vec::new();
        for f in &frames {
            enc.encrypt_frame(f, &mut wire).unwrap();
        }
        for split in [1, 2, 3, 7, 21, 22, 23, 64, 1000] {
            let (_, mut dec) = pair();
            let mut got = Vec::new();
            for piece in wire.chunks(split) {
                got.extend(dec.push_all(piece).unwrap());
            }
            assert_eq!(got.len(), frames.len(), "split {split}");
            for (g, f) in got.iter().zip(&frames) {
                assert_eq!(g.header.to_bytes(), f[..6]);
                assert_eq!(g.payload, f[6..]);
            }
        }
    }

    #[test]
    fn needed_reports_header_then_block_remainder() {
        let (mut enc, mut dec) = pair();
        let mut wire = Vec::new();
        enc.encrypt_frame(&plain_frame(70_000), &mut wire).unwrap();
        assert_eq!(dec.needed(), 22);
        dec.push(&wire[..10]).unwrap();
        assert_eq!(dec.needed(), 12);
        dec.push(&wire[10..22]).unwrap();
        assert_eq!(dec.needed(), 65535);
        dec.push(&wire[22..100]).unwrap();
        assert_eq!(dec.needed(), 65535 - 78);
        let (used, f) = dec.push(&wire[100..22 + 65535]).unwrap();
        assert_eq!((used, f), (65535 - 78, None));
        assert_eq!(dec.needed(), 70_000 - 65519 + 16);
        let (used, f) = dec.push(&wire[22 + 65535..]).unwrap();
        assert_eq!(used, 70_000 - 65519 + 16);
        assert_eq!(f.map(|f| f.len()), Some(70_006));
        assert_eq!(dec.needed(), 22);
    }

    #[test]
    fn mismatched_plain_frames_are_refused_without_side_effects() {
        let (mut enc, _) = pair();
        let mut frame = plain_frame(10);
        frame.pop();
        let mut out = vec![1, 2, 3];
        assert_eq!(
            enc.encrypt_frame(&frame, &mut out),
            Err(NoiseError::FrameLength {
                declared: 10,
                actual: 9
            })
        );
        assert!(matches!(
            enc.encrypt_frame(&[0, 0, 0], &mut out),
            Err(NoiseError::WrongLength { .. })
        ));
        assert_eq!(out, [1, 2, 3]);
        assert_eq!(enc.nonce(), 0);
    }

    #[test]
    fn nonce_exhaustion_is_an_error_not_a_wrap() {
        let (mut enc, _) = pair();
        enc.set_nonce(u64::MAX - 2);
        let mut out = Vec::new();
        // A 65520-byte payload needs header + 2 blocks = 3 nonces; only 2 are left.
        assert_eq!(
            enc.encrypt_frame(&plain_frame(65520), &mut out),
            Err(NoiseError::NonceExhausted)
        );
        assert!(out.is_empty());
        enc.encrypt_frame(&plain_frame(1), &mut out).unwrap();
        assert_eq!(enc.nonce(), u64::MAX);
        assert_eq!(
            enc.encrypt_frame(&plain_frame(0), &mut out),
            Err(NoiseError::NonceExhausted)
        );
        let mut dec = Decryptor::from_key([9; 32]);
        dec.set_nonce(u64::MAX);
        assert_eq!(dec.push(&[0; 22]), Err(NoiseError::NonceExhausted));
        assert_eq!(dec.push(&[0; 22]), Err(NoiseError::Terminated));
    }

    #[test]
    fn oversized_claims_are_refused_right_after_the_header() {
        let (mut enc, _) = pair();
        let mut wire = Vec::new();
        enc.encrypt_frame(&plain_frame(2000), &mut wire).unwrap();
        let mut dec = Decryptor::with_max_payload(CipherState::new([9; 32]), 1999);
        assert_eq!(dec.push(&wire[..21]).unwrap(), (21, None));
        assert_eq!(
            dec.push(&wire[21..]),
            Err(NoiseError::FrameTooLarge {
                length: 2000,
                max: 1999
            })
        );
        assert!(dec.is_failed());
        assert_eq!(dec.needed(), 0);
        assert_eq!(dec.push(&wire[22..]), Err(NoiseError::Terminated));
    }

    #[test]
    fn memory_follows_received_bytes() {
        // A header claiming 2^24 - 1 bytes and the first block, encrypted by hand (encrypting the
        // whole 16 MiB frame would only slow the test down).
        let mut c = CipherState::new([9; 32]);
        let mut wire = Vec::new();
        c.encrypt_append(&[], &[0, 0, 0x71, 0xff, 0xff, 0xff], &mut wire)
            .unwrap();
        c.encrypt_append(&[], &[5; MAX_CHUNK_LEN], &mut wire)
            .unwrap();
        let mut dec = Decryptor::from_key([9; 32]);
        // Header plus 100 bytes.
        dec.push(&wire[..122]).unwrap();
        assert!(dec.buf.capacity() <= 256, "{}", dec.buf.capacity());
        // Byte by byte for a while: capacity stays within 2x of what was received.
        for i in 122..5000 {
            assert_eq!(dec.push(&wire[i..i + 1]).unwrap(), (1, None));
            assert!(dec.buf.capacity() <= 2 * (i + 1 - 16), "at {i}");
        }
        // The first block completes; the decryptor then waits for the second one.
        assert_eq!(dec.push(&wire[5000..]).unwrap(), (wire.len() - 5000, None));
        assert_eq!(dec.needed(), MAX_BLOCK_LEN);
        assert!(dec.buf.capacity() <= 2 * wire.len());
    }

    #[test]
    fn a_large_frame_does_not_pin_its_buffer() {
        let (mut enc, mut dec) = pair();
        let mut wire = Vec::new();
        enc.encrypt_frame(&plain_frame(1 << 20), &mut wire).unwrap();
        let small_at = wire.len();
        enc.encrypt_frame(&plain_frame(64), &mut wire).unwrap();
        let (used, frame) = dec.push(&wire).unwrap();
        assert_eq!(
            (used, frame.map(<[u8]>::len)),
            (small_at, Some(6 + (1 << 20)))
        );
        assert!(dec.buf.capacity() > RETAINED_CAPACITY);
        let (_, frame) = dec.push(&wire[small_at..]).unwrap();
        assert_eq!(frame.map(<[u8]>::len), Some(70));
        assert!(
            dec.buf.capacity() <= RETAINED_CAPACITY,
            "{}",
            dec.buf.capacity()
        );
        // Frames that fit keep their buffer: no reallocation per frame in steady state.
        for _ in 0..3 {
            let mut w = Vec::new();
            enc.encrypt_frame(&plain_frame(65536), &mut w).unwrap();
            let (_, f) = dec.push(&w).unwrap();
            assert!(f.is_some());
        }
        let before = dec.buf.as_ptr();
        let mut w = Vec::new();
        enc.encrypt_frame(&plain_frame(65536), &mut w).unwrap();
        dec.push(&w).unwrap();
        assert_eq!(dec.buf.as_ptr(), before);
    }

    #[test]
    fn every_flipped_bit_position_is_caught_and_terminal() {
        let (mut enc, _) = pair();
        let mut wire = Vec::new();
        enc.encrypt_frame(&plain_frame(65530), &mut wire).unwrap();
        for pos in 0..wire.len() {
            // Full sweep of header and tags; sampled inside the big block to keep the test fast.
            if pos > 40 && pos < wire.len() - 40 && pos % 997 != 0 && !(65550..65600).contains(&pos)
            {
                continue;
            }
            let mut bad = wire.clone();
            bad[pos] ^= 1 << (pos % 8);
            let mut dec = Decryptor::from_key([9; 32]);
            let err = dec.push(&bad).unwrap_err();
            let step = if pos < 22 {
                DecryptStep::FrameHeader
            } else if pos < 22 + 65535 {
                DecryptStep::FrameBlock { index: 0 }
            } else {
                DecryptStep::FrameBlock { index: 1 }
            };
            assert_eq!(err, NoiseError::Decrypt { step }, "pos {pos}");
            assert_eq!(dec.push(&wire), Err(NoiseError::Terminated));
        }
    }
}
