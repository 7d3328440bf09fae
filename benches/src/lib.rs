//! Benchmarks live in `benches/`; this library holds shared fixtures.
//!
//! [`Fixtures`] owns the bytes of a realistic mix of mining-session messages and builds them as our
//! [`sv2_codec::Message`]; [`sri_mix`] gives the same messages as SRI's [`parsers_sv2::AnyMessage`].
//! Both borrow their byte fields, so neither side pays for owning them.

use parsers_sv2::{AnyMessage, IsSv2Message};
use sv2_codec::messages as ours;
use sv2_codec::types::{Seq0_255, Str0_255, B0_32, B0_64K, U256};
use sv2_codec::Message;

/// Names of the messages of the mix, in [`Fixtures::ours`] order.
pub const MIX_NAMES: [&str; 5] = [
    "SubmitSharesStandard",
    "SubmitSharesExtended",
    "NewExtendedMiningJob",
    "SetNewPrevHash",
    "SetupConnection",
];

/// Deterministic filler (xorshift64*), so every run benches the same bytes.
fn filler(seed: u64, out: &mut [u8]) {
    let mut x = seed | 1;
    for chunk in out.chunks_mut(8) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let v = x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

fn hash(seed: u64) -> [u8; 32] {
    let mut h = [0u8; 32];
    filler(seed, &mut h);
    h
}

/// The first part of a coinbase transaction, up to where the extranonce goes (60 bytes):
/// version, one input spending the null outpoint, and the start of its scriptSig (BIP34 height,
/// pool tag, the push opcode of a 16-byte extranonce).
fn coinbase_prefix() -> Vec<u8> {
    let mut p = Vec::with_capacity(60);
    p.extend_from_slice(&2u32.to_le_bytes()); // version
    p.push(1); // input count
    p.extend_from_slice(&[0; 32]); // null prevout txid
    p.extend_from_slice(&u32::MAX.to_le_bytes()); // prevout index
    p.push(4 + 13 + 1 + 16); // scriptSig length
    p.extend_from_slice(&[0x03, 0x5c, 0xd6, 0x0d]); // BIP34: push 3 bytes, height 906_844
    p.extend_from_slice(b"/sv2-toolkit/"); // pool tag
    p.push(0x10); // push the 16-byte extranonce
    assert_eq!(p.len(), 60);
    p
}

/// The rest of the coinbase after the extranonce (121 bytes): sequence, a P2WPKH and a P2PKH
/// payout and the segwit witness commitment, locktime.
fn coinbase_suffix() -> Vec<u8> {
    let mut s = Vec::with_capacity(121);
    s.extend_from_slice(&u32::MAX.to_le_bytes()); // sequence
    s.push(3); // output count
    s.extend_from_slice(&312_500_000u64.to_le_bytes()); // P2WPKH
    s.extend_from_slice(&[22, 0x00, 0x14]);
    s.extend_from_slice(&hash(11)[..20]);
    s.extend_from_slice(&1_234_567u64.to_le_bytes()); // P2PKH
    s.extend_from_slice(&[25, 0x76, 0xa9, 0x14]);
    s.extend_from_slice(&hash(12)[..20]);
    s.extend_from_slice(&[0x88, 0xac]);
    s.extend_from_slice(&0u64.to_le_bytes()); // witness commitment
    s.extend_from_slice(&[38, 0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed]);
    s.extend_from_slice(&hash(13));
    s.extend_from_slice(&0u32.to_le_bytes()); // locktime
    assert_eq!(s.len(), 121);
    s
}

/// The bytes the messages of the mix borrow.
#[derive(Debug, Clone)]
pub struct Fixtures {
    extranonce: [u8; 8],
    merkle_path: Vec<[u8; 32]>,
    coinbase_prefix: Vec<u8>,
    coinbase_suffix: Vec<u8>,
    prev_hash: [u8; 32],
}

impl Default for Fixtures {
    fn default() -> Self {
        Self::new()
    }
}

const CHANNEL_ID: u32 = 7;
const JOB_ID: u32 = 4711;
const VERSION: u32 = 0x2000_0000;
const NTIME: u32 = 1_754_000_000;
const NBITS: u32 = 0x1702_3a04;
const HOST: &str = "mining.sv2-pool.example.org";
const VENDOR: &str = "Bitmain";
const HARDWARE: &str = "Antminer S21 Pro";
const FIRMWARE: &str = "braiins-os-25.03.1-plus";
const DEVICE: &str = "rack07-slot12-a1b2c3d4";

impl Fixtures {
    pub fn new() -> Self {
        let mut prev_hash = hash(1);
        // A block hash in wire (little-endian) order ends in zero bytes.
        prev_hash[24..].fill(0);
        Fixtures {
            extranonce: [0x00, 0x00, 0x00, 0x01, 0x9a, 0x3f, 0x27, 0xc4],
            merkle_path: (0..12).map(|i| hash(100 + i)).collect(),
            coinbase_prefix: coinbase_prefix(),
            coinbase_suffix: coinbase_suffix(),
            prev_hash,
        }
    }

    /// The mix as our messages, in [`MIX_NAMES`] order.
    pub fn ours(&self) -> Vec<Message<'_>> {
        vec![
            Message::SubmitSharesStandard(ours::SubmitSharesStandard {
                channel_id: CHANNEL_ID,
                sequence_number: 1_337,
                job_id: JOB_ID,
                nonce: 0x8c1f_a27e,
                ntime: NTIME + 17,
                version: VERSION | 0x0a5e_2000,
            }),
            Message::SubmitSharesExtended(ours::SubmitSharesExtended {
                channel_id: CHANNEL_ID,
                sequence_number: 1_338,
                job_id: JOB_ID,
                nonce: 0x1b2c_3d4e,
                ntime: NTIME + 18,
                version: VERSION | 0x01fe_0000,
                extranonce: B0_32::new(&self.extranonce[..]).expect("8 bytes"),
            }),
            Message::NewExtendedMiningJob(ours::NewExtendedMiningJob {
                channel_id: CHANNEL_ID,
                job_id: JOB_ID,
                min_ntime: None,
                version: VERSION,
                version_rolling_allowed: true,
                merkle_path: Seq0_255::new(self.merkle_path.iter().map(|h| U256(*h)).collect())
                    .expect("12 hashes"),
                coinbase_tx_prefix: B0_64K::new(&self.coinbase_prefix[..]).expect("60 bytes"),
                coinbase_tx_suffix: B0_64K::new(&self.coinbase_suffix[..]).expect("121 bytes"),
            }),
            Message::SetNewPrevHash(ours::SetNewPrevHash {
                channel_id: CHANNEL_ID,
                job_id: JOB_ID,
                prev_hash: U256(self.prev_hash),
                min_ntime: NTIME,
                nbits: NBITS,
            }),
            Message::SetupConnection(ours::SetupConnection {
                protocol: 0,
                min_version: 2,
                max_version: 2,
                flags: 0b110,
                endpoint_host: Str0_255::from_str(HOST).expect("short"),
                endpoint_port: 34254,
                vendor: Str0_255::from_str(VENDOR).expect("short"),
                hardware_version: Str0_255::from_str(HARDWARE).expect("short"),
                firmware: Str0_255::from_str(FIRMWARE).expect("short"),
                device_id: Str0_255::from_str(DEVICE).expect("short"),
            }),
        ]
    }
}

/// The same messages in SRI's types, converted by [`sv2_interop::to_sri`] (whose conversions the
/// differential tests check message by message).
pub fn sri_mix<'a>(ours: &'a [Message<'_>]) -> Vec<AnyMessage<'a>> {
    ours.iter()
        .map(|m| sv2_interop::to_sri(m).expect("the mix converts to SRI's types"))
        .collect()
}

pub fn sri_identity(msg: &AnyMessage<'_>) -> (u8, u16, bool) {
    (msg.message_type(), msg.extension_type(), msg.channel_bit())
}

/// Full frame (header + payload) of our message.
pub fn ours_frame(msg: &Message<'_>) -> Vec<u8> {
    sv2_codec::to_frame_bytes(msg, &[]).expect("encodable")
}

/// Full frame (header + payload) of an SRI message, through its `Encoder`.
pub fn sri_frame(msg: &AnyMessage<'_>) -> Vec<u8> {
    sv2_interop::sri_encode_any(msg.clone()).expect("SRI encodes the mix")
}

pub fn assert_identical(fx: &Fixtures) {
    let ours = fx.ours();
    let sri = sri_mix(&ours);
    assert_eq!(ours.len(), sri.len());
    for ((name, o), s) in MIX_NAMES.iter().zip(&ours).zip(&sri) {
        assert_eq!(o.name(), *name);
        let a = ours_frame(o);
        let b = sri_frame(s);
        assert_eq!(a, b, "{name}: our frame and SRI's differ");
        let (frame, used) = sv2_codec::Frame::parse(&b).expect("SRI frame parses");
        assert_eq!(used, b.len());
        let decoded = sv2_codec::decode_frame(&frame).expect("SRI frame decodes");
        assert!(decoded.tlvs.is_empty() && decoded.warnings.is_empty());
        assert_eq!(
            &decoded.message, o,
            "{name}: ours decodes SRI's frame differently"
        );
        let mut buf = a.clone();
        let h = framing_sv2::header::Header::from_bytes(&buf[..6]).expect("header");
        let back = AnyMessage::try_from((h, &mut buf[6..])).expect("our frame decodes in SRI");
        assert_eq!(
            sri_frame(&back),
            a,
            "{name}: SRI decodes our frame differently"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_codecs_agree_on_the_mix() {
        assert_identical(&Fixtures::new());
    }

    #[test]
    fn frames_have_the_intended_sizes() {
        let fx = Fixtures::new();
        let sizes: Vec<usize> = fx.ours().iter().map(|m| ours_frame(m).len()).collect();
        // 6-byte header plus: 24; 24 + 1 + 8; 4+4+1+4+1 + 1+12*32 + 2+60 + 2+121; 4+4+32+4+4;
        // 1+2+2+4 + (1+27)+2 + (1+7)+(1+16)+(1+23)+(1+22).
        assert_eq!(sizes, [30, 39, 590, 54, 117]);
    }
}
