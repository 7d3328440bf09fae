//! Dev-only bridge between `sv2-codec` and the reference implementation's crates (SRI), for
//! differential tests and benchmarks. Kept out of the toolkit's dependency tree.
//!
//! - [`to_sri`] / [`from_sri`]: our `Message` as SRI's `AnyMessage` and back, all 44 message types.
//!   Two things cannot cross: `SetupConnection.protocol > 2` (SRI's `Protocol` is an enum of 0..=2)
//!   and raw frames of unknown extensions ([`ConvertError`]).
//! - [`sri_encode`]: SRI's full frame bytes for our message.
//! - [`sri_decode`] (header via `Header::from_bytes` + `AnyMessage::try_from`) and
//!   [`sri_decode_stream`] (through `codec_sv2::Decoder`): SRI's parse of frame bytes. Every SRI call
//!   that parses bytes runs under `catch_unwind`; a panic is [`SriError::Panic`].
//!
//! - [`samples`]: SRI-native messages of all 44 types at minimal, typical and maximal extents.
//!
//! - [`noise`]: SRI's Noise handshake (noise_sv2) and encrypted transport (codec_sv2's
//!   `NoiseEncoder` / `NoiseDecoder`) as byte-in / byte-out calls.
//!
//! - [`peers`]: SRI's binaries (pool_sv2, translator_sv2) as real peers on loopback: find, configure,
//!   start, stop, logs.
//!
//! - [`differential`]: the differential fuzz target's check (our decode against SRI's), also replayed
//!   on stable by `tests/fuzz_regressions.rs`.
//!
//! `interop/DIFFERENCES.md` lists where the two codecs disagree, each pinned by a test.
#![forbid(unsafe_code)]

pub mod convert;
pub mod differential;
pub mod noise;
pub mod peers;
pub mod samples;
pub mod sri;

pub use convert::{from_sri, same_message, to_sri, ConvertError};
pub use sri::{
    catch_sri, class_ours, class_sri, sri_decode, sri_decode_owned, sri_decode_stream,
    sri_decode_with_tlvs, sri_encode, sri_encode_any, sri_encode_owned, sri_header, sri_parse,
    sri_size, ErrorClass, SriError, HEADER_LEN,
};
