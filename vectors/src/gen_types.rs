//! types.json: every SV2 data type (spec §3.1) at its edges, and the frame header (§3.2).

use serde::Serialize;
use serde_json::Value;
use sv2_codec::frame::{Header, HEADER_LEN};
use sv2_codec::types::{
    f32_json, Codec, Pubkey, Reader, Seq0_255, Seq0_64K, Signature, Str0_255, B0_16M, B0_255,
    B0_32, B0_64K, U24, U256,
};

use crate::classes::kind_class;
use crate::model::{Outcome, TestGroup, TypeGroup, TypeTest};
use crate::{flags_of, gen_err, FileBuilder, GenerateError, VectorFile};

#[derive(Serialize)]
struct F32Json(#[serde(with = "f32_json")] f32);

/// Decodes one value of `data_type` from all of `bytes`: its JSON and canonical encoding, or the
/// error class. Bytes left over after the value are `TRAILING_BYTES`.
pub(crate) fn decode_type(data_type: &str, bytes: &[u8]) -> Result<(Value, Vec<u8>), String> {
    macro_rules! dec {
        ($t:ty) => {
            dec!($t, |v: &$t| serde_json::to_value(v))
        };
        ($t:ty, $json:expr) => {{
            let mut r = Reader::new(bytes, "vector");
            r.field("value");
            match <$t as Codec>::decode(&mut r) {
                Err(e) => Err(kind_class(&e.kind).to_string()),
                Ok(_) if r.remaining() != 0 => Err("TRAILING_BYTES".to_string()),
                Ok(v) => {
                    let mut out = Vec::new();
                    Codec::encode(&v, &mut out);
                    let json: Result<Value, serde_json::Error> = ($json)(&v);
                    json.map(|j| (j, out)).map_err(|e| format!("INTERNAL: {e}"))
                }
            }
        }};
    }
    match data_type {
        "U8" => dec!(u8),
        "U16" => dec!(u16),
        "U24" => dec!(U24),
        "U32" => dec!(u32),
        "U64" => dec!(u64),
        "U256" => dec!(U256),
        "F32" => dec!(f32, |v: &f32| serde_json::to_value(F32Json(*v))),
        "BOOL" => dec!(bool),
        "STR0_255" => dec!(Str0_255),
        "B0_32" => dec!(B0_32),
        "B0_255" => dec!(B0_255),
        "B0_64K" => dec!(B0_64K),
        "B0_16M" => dec!(B0_16M),
        "PUBKEY" => dec!(Pubkey),
        "SIGNATURE" => dec!(Signature),
        "OPTION[U32]" => dec!(Option<u32>),
        "SEQ0_255[U256]" => dec!(Seq0_255<U256>),
        "SEQ0_64K[U16]" => dec!(Seq0_64K<u16>),
        "SEQ0_64K[U32]" => dec!(Seq0_64K<u32>),
        "SEQ0_64K[U256]" => dec!(Seq0_64K<U256>),
        "SEQ0_64K[B0_16M]" => dec!(Seq0_64K<B0_16M>),
        "FRAME_HEADER" => match bytes.first_chunk::<HEADER_LEN>() {
            None => Err("TRUNCATED".to_string()),
            Some(_) if bytes.len() > HEADER_LEN => Err("TRAILING_BYTES".to_string()),
            Some(head) => {
                let header = Header::from_bytes(*head);
                serde_json::to_value(header)
                    .map(|v| (v, header.to_bytes().to_vec()))
                    .map_err(|e| format!("INTERNAL: {e}"))
            }
        },
        other => Err(format!("UNKNOWN_DATA_TYPE {other}")),
    }
}

struct Group<'b> {
    b: &'b mut FileBuilder,
    data_type: &'static str,
    tests: Vec<TypeTest>,
}

impl Group<'_> {
    fn t(
        &mut self,
        expect: Outcome,
        flags: &[&str],
        comment: &str,
        bytes: impl AsRef<[u8]>,
    ) -> Result<(), GenerateError> {
        let bytes = bytes.as_ref();
        let decoded = decode_type(self.data_type, bytes);
        let tc_id = self.b.id();
        let mut test = TypeTest {
            tc_id,
            comment: comment.to_string(),
            flags: flags_of(flags),
            result: expect,
            encoded: hex::encode(bytes),
            value: None,
            reencoded: None,
            error: None,
        };
        match (expect, decoded) {
            (Outcome::Invalid, Ok((v, _))) => {
                return Err(gen_err(format!(
                    "types {} tcId {tc_id} ({comment}): expected invalid, decoded {v}",
                    self.data_type
                )))
            }
            (Outcome::Valid, Err(class)) => {
                return Err(gen_err(format!(
                    "types {} tcId {tc_id} ({comment}): expected valid, got {class}",
                    self.data_type
                )))
            }
            (_, Ok((value, canonical))) => {
                test.value = Some(value);
                if canonical != bytes {
                    test.reencoded = Some(hex::encode(canonical));
                }
            }
            (_, Err(class)) => test.error = Some(class),
        }
        self.tests.push(test);
        Ok(())
    }

    fn valid(
        &mut self,
        flags: &[&str],
        comment: &str,
        bytes: impl AsRef<[u8]>,
    ) -> Result<(), GenerateError> {
        self.t(Outcome::Valid, flags, comment, bytes)
    }

    fn invalid(
        &mut self,
        flags: &[&str],
        comment: &str,
        bytes: impl AsRef<[u8]>,
    ) -> Result<(), GenerateError> {
        self.t(Outcome::Invalid, flags, comment, bytes)
    }

    fn done(self) {
        let group = TestGroup::TypeTest(TypeGroup {
            data_type: self.data_type.to_string(),
            tests: self.tests,
        });
        self.b.group(group);
    }
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// `n` bytes `i % 251` starting at `seed`: a recognizable, non-repeating-every-256 pattern.
pub(crate) fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| ((i + seed as usize) % 251) as u8).collect()
}

pub(crate) fn build() -> Result<VectorFile, GenerateError> {
    let mut b = FileBuilder::new(
        "SV2 data types",
        "type_tests.schema.json",
        &[
            "Each test decodes ONE value of the group's dataType from `encoded`; a valid value uses every byte.",
            "All integers are little-endian (spec §3.1). `value` is the toolkit's JSON (codec/JSON.md).",
            "Invalid tests name the error class: TRUNCATED, B0_32_TOO_LONG, OPTION_PREFIX.",
        ],
    );
    macro_rules! group {
        ($name:literal, |$g:ident| $body:block) => {{
            let mut $g = Group { b: &mut b, data_type: $name, tests: Vec::new() };
            $body
            $g.done();
        }};
    }

    group!("U8", |g| {
        g.valid(&["EdgeValue"], "0", [0u8])?;
        g.valid(&["Typical"], "0x7f", [0x7fu8])?;
        g.valid(&["EdgeValue"], "255", [0xffu8])?;
        g.invalid(&["Truncated"], "no byte", [])?;
    });
    group!("U16", |g| {
        g.valid(&["EdgeValue"], "0", [0u8, 0])?;
        g.valid(
            &["Typical"],
            "0x0102 is written 02 01 (little-endian)",
            [2u8, 1],
        )?;
        g.valid(&["EdgeValue"], "65535", [0xffu8, 0xff])?;
        g.invalid(&["Truncated"], "1 of 2 bytes", [1u8])?;
    });
    group!("U24", |g| {
        g.valid(&["EdgeValue"], "0", [0u8, 0, 0])?;
        g.valid(&["Typical"], "0x010203 is written 03 02 01", [3u8, 2, 1])?;
        g.valid(&["U24Max", "EdgeValue"], "2^24 - 1", [0xffu8, 0xff, 0xff])?;
        g.invalid(&["Truncated"], "2 of 3 bytes", [0xffu8, 0xff])?;
    });
    group!("U32", |g| {
        g.valid(&["EdgeValue"], "0", [0u8; 4])?;
        g.valid(
            &["Typical"],
            "0x20000000 (a block version) is written 00 00 00 20",
            [0u8, 0, 0, 0x20],
        )?;
        g.valid(
            &["Typical"],
            "0x01020304 is written 04 03 02 01",
            [4u8, 3, 2, 1],
        )?;
        g.valid(&["EdgeValue"], "2^32 - 1", [0xffu8; 4])?;
        g.invalid(&["Truncated"], "3 of 4 bytes", [0xffu8; 3])?;
    });
    group!("U64", |g| {
        g.valid(&["EdgeValue"], "0", [0u8; 8])?;
        g.valid(
            &["Typical"],
            "0x0102030405060708 is written 08 07 .. 01",
            [8u8, 7, 6, 5, 4, 3, 2, 1],
        )?;
        g.valid(
            &["EdgeValue"],
            "2^53 + 1: not exact as a JavaScript number",
            (9007199254740993u64).to_le_bytes(),
        )?;
        g.valid(&["EdgeValue"], "2^64 - 1", [0xffu8; 8])?;
        g.invalid(&["Truncated"], "7 of 8 bytes", [0u8; 7])?;
    });
    group!("U256", |g| {
        g.valid(&["EdgeValue"], "0", [0u8; 32])?;
        let mut one = [0u8; 32];
        one[0] = 1;
        g.valid(
            &["EdgeValue"],
            "1: the least significant byte comes first (wire order, JSON keeps wire order)",
            one,
        )?;
        let mut target = [0u8; 32];
        target[26] = 0xff;
        target[27] = 0xff;
        g.valid(
            &["Typical"],
            "the difficulty-1 target 0x00000000ffff0000...: bytes 26 and 27 are ff",
            target,
        )?;
        g.valid(&["EdgeValue"], "2^256 - 1", [0xffu8; 32])?;
        g.invalid(&["Truncated"], "31 of 32 bytes", [0u8; 31])?;
    });
    group!("F32", |g| {
        g.valid(&["EdgeValue"], "0.0", 0.0f32.to_le_bytes())?;
        g.valid(
            &["Typical"],
            "1.0 is 0x3f800000, written 00 00 80 3f",
            1.0f32.to_le_bytes(),
        )?;
        g.valid(
            &["Typical"],
            "100 TH/s as a nominal hash rate",
            1.0e14f32.to_le_bytes(),
        )?;
        g.valid(
            &["EdgeValue"],
            "the largest finite F32",
            f32::MAX.to_le_bytes(),
        )?;
        g.valid(&["F32Special"], "-0.0", (-0.0f32).to_le_bytes())?;
        g.valid(
            &["F32Special"],
            "the smallest subnormal",
            f32::from_bits(1).to_le_bytes(),
        )?;
        g.valid(&["F32Special"], "+infinity", f32::INFINITY.to_le_bytes())?;
        g.valid(
            &["F32Special"],
            "-infinity",
            f32::NEG_INFINITY.to_le_bytes(),
        )?;
        g.valid(
            &["F32Special"],
            "quiet NaN 0x7fc00000",
            f32::NAN.to_le_bytes(),
        )?;
        g.valid(
            &["F32Special"],
            "signalling NaN with payload 0x7f800001: every bit kept",
            0x7f80_0001u32.to_le_bytes(),
        )?;
        g.invalid(&["Truncated"], "3 of 4 bytes", [0u8, 0, 0x80])?;
    });
    group!("BOOL", |g| {
        g.valid(&["EdgeValue"], "false", [0u8])?;
        g.valid(&["EdgeValue"], "true", [1u8])?;
        g.valid(&["NonCanonicalBool"], "0x02 is false (LSB 0)", [2u8])?;
        g.valid(&["NonCanonicalBool"], "0x03 is true (LSB 1)", [3u8])?;
        g.valid(&["NonCanonicalBool"], "0x80 is false", [0x80u8])?;
        g.valid(&["NonCanonicalBool"], "0xfe is false", [0xfeu8])?;
        g.valid(&["NonCanonicalBool"], "0xff is true", [0xffu8])?;
        g.invalid(&["Truncated"], "no byte", [])?;
    });
    group!("STR0_255", |g| {
        g.valid(&["EdgeValue"], "empty", [0u8])?;
        g.valid(&["Typical"], "\"Bitmain\"", cat(&[&[7], b"Bitmain"]))?;
        g.valid(
            &["Typical"],
            "UTF-8 \"caf\\u00e9\" is 5 bytes: the prefix counts bytes, not characters",
            cat(&[&[5], "café".as_bytes()]),
        )?;
        g.valid(
            &["EdgeValue"],
            "255 bytes, the maximum",
            cat(&[&[255], &[b'x'; 255]]),
        )?;
        g.valid(
            &["NonUtf8String"],
            "ff fe: not UTF-8, kept as bytes",
            [2u8, 0xff, 0xfe],
        )?;
        g.valid(
            &["EdgeValue"],
            "a NUL byte inside: not a terminator",
            [3u8, b'a', 0, b'b'],
        )?;
        g.invalid(
            &["Truncated"],
            "length 5, 4 bytes present",
            cat(&[&[5], b"abcd"]),
        )?;
    });
    group!("B0_32", |g| {
        g.valid(&["EdgeValue"], "empty", [0u8])?;
        g.valid(&["Typical"], "8 bytes", cat(&[&[8], &pattern(8, 1)]))?;
        g.valid(
            &["EdgeValue"],
            "32 bytes, the maximum",
            cat(&[&[32], &pattern(32, 0)]),
        )?;
        g.invalid(
            &["B0_32Bound"],
            "33 bytes: one past the maximum (all 33 present)",
            cat(&[&[33], &pattern(33, 0)]),
        )?;
        g.invalid(
            &["B0_32Bound"],
            "prefix 0xff (255 bytes present)",
            cat(&[&[255], &pattern(255, 0)]),
        )?;
        g.invalid(
            &["Truncated"],
            "32 claimed, 31 present",
            cat(&[&[32], &pattern(31, 0)]),
        )?;
    });
    group!("B0_255", |g| {
        g.valid(&["EdgeValue"], "empty", [0u8])?;
        g.valid(
            &["EdgeValue"],
            "255 bytes, the maximum",
            cat(&[&[255], &pattern(255, 3)]),
        )?;
        g.invalid(
            &["Truncated"],
            "10 claimed, 9 present",
            cat(&[&[10], &pattern(9, 0)]),
        )?;
    });
    group!("B0_64K", |g| {
        g.valid(&["EdgeValue"], "empty: prefix 00 00", [0u8, 0])?;
        g.valid(&["Typical"], "1 byte", [1u8, 0, 0xaa])?;
        g.valid(
            &["EdgeValue"],
            "256 bytes: prefix 00 01",
            cat(&[&[0, 1], &pattern(256, 5)]),
        )?;
        g.valid(
            &["LargeField", "EdgeValue"],
            "65535 bytes, the maximum: prefix ff ff",
            cat(&[&[0xff, 0xff], &pattern(65535, 7)]),
        )?;
        g.invalid(
            &["CountPastEnd"],
            "65535 claimed, 2 present",
            [0xffu8, 0xff, 1, 2],
        )?;
    });
    group!("B0_16M", |g| {
        g.valid(&["EdgeValue"], "empty: prefix 00 00 00", [0u8, 0, 0])?;
        g.valid(&["Typical"], "3 bytes", [3u8, 0, 0, 1, 2, 3])?;
        g.valid(
            &["LargeField", "EdgeValue"],
            "65536 bytes: prefix 00 00 01 (the third prefix byte)",
            cat(&[&[0, 0, 1], &pattern(65536, 11)]),
        )?;
        g.invalid(
            &["U24Max", "CountPastEnd"],
            "2^24 - 1 claimed, 1 present: must fail without allocating 16 MiB",
            [0xffu8, 0xff, 0xff, 0],
        )?;
    });
    group!("PUBKEY", |g| {
        g.valid(
            &["Typical"],
            "32 bytes (x-only key), no prefix",
            pattern(32, 9),
        )?;
        g.invalid(&["Truncated"], "31 bytes", pattern(31, 9))?;
    });
    group!("SIGNATURE", |g| {
        g.valid(
            &["Typical"],
            "64 bytes (BIP340), no length prefix",
            pattern(64, 13),
        )?;
        g.invalid(&["Truncated"], "63 bytes", pattern(63, 13))?;
    });
    group!("OPTION[U32]", |g| {
        g.valid(&["OptionNone"], "None: 00", [0u8])?;
        g.valid(
            &["OptionSome"],
            "Some(0): 01 then 00 00 00 00 (not the same as None)",
            [1u8, 0, 0, 0, 0],
        )?;
        g.valid(
            &["OptionSome", "Typical"],
            "Some(1700000000)",
            cat(&[&[1], &1_700_000_000u32.to_le_bytes()]),
        )?;
        g.valid(
            &["OptionSome", "EdgeValue"],
            "Some(2^32 - 1)",
            [1u8, 0xff, 0xff, 0xff, 0xff],
        )?;
        g.invalid(
            &["OptionPrefix"],
            "prefix 02 (OPTION is SEQ0_1: at most one element)",
            [2u8, 1, 0, 0, 0, 2, 0, 0, 0],
        )?;
        g.invalid(&["OptionPrefix"], "prefix ff", [0xffu8, 1, 0, 0, 0])?;
        g.invalid(&["Truncated"], "Some with 3 of 4 bytes", [1u8, 0, 0, 0])?;
        g.invalid(&["Truncated"], "no prefix byte", [])?;
    });
    group!("SEQ0_255[U256]", |g| {
        g.valid(&["EdgeValue"], "empty", [0u8])?;
        g.valid(&["Typical"], "one hash", cat(&[&[1], &pattern(32, 17)]))?;
        let mut many = vec![255u8];
        for i in 0..255u8 {
            many.extend(pattern(32, i));
        }
        g.valid(&["EdgeValue", "Maximal"], "255 hashes, the maximum", many)?;
        g.invalid(
            &["CountPastEnd"],
            "count 2, one hash present",
            cat(&[&[2], &pattern(32, 0)]),
        )?;
    });
    group!("SEQ0_64K[U16]", |g| {
        g.valid(&["EdgeValue"], "empty: count 00 00", [0u8, 0])?;
        g.valid(
            &["Typical"],
            "[1, 2]: the count is of elements (2), not bytes (4)",
            [2u8, 0, 1, 0, 2, 0],
        )?;
        g.invalid(
            &["CountPastEnd"],
            "count 4 over 4 bytes: a byte count read as an element count",
            [4u8, 0, 1, 0, 2, 0],
        )?;
        g.invalid(
            &["CountPastEnd"],
            "count 65535 over no element",
            [0xffu8, 0xff],
        )?;
    });
    group!("SEQ0_64K[U32]", |g| {
        g.valid(
            &["Typical"],
            "[1, 2, 3]",
            [3u8, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0],
        )?;
        let mut many = vec![0u8, 1];
        for i in 0..256u32 {
            many.extend((i * 7).to_le_bytes());
        }
        g.valid(&["EdgeValue"], "256 elements: count 00 01", many)?;
    });
    group!("SEQ0_64K[U256]", |g| {
        g.valid(&["Typical"], "one hash", cat(&[&[1, 0], &pattern(32, 21)]))?;
        g.invalid(
            &["CountPastEnd"],
            "count 65535, one hash present: must fail before allocating 2 MiB",
            cat(&[&[0xff, 0xff], &pattern(32, 21)]),
        )?;
    });
    group!("SEQ0_64K[B0_16M]", |g| {
        g.valid(&["EdgeValue"], "empty", [0u8, 0])?;
        g.valid(
            &["Typical"],
            "two elements: empty, and 1 byte",
            [2u8, 0, 0, 0, 0, 1, 0, 0, 0xaa],
        )?;
        g.invalid(
            &["CountPastEnd"],
            "an element claiming 5 bytes with 4 present",
            [1u8, 0, 5, 0, 0, 1, 2, 3, 4],
        )?;
    });
    group!("FRAME_HEADER", |g| {
        g.valid(
            &["FrameHeader", "SpecExample"],
            "SetupConnection of 82 bytes (CATALOG G.2): 00 00 | 00 | 52 00 00",
            [0u8, 0, 0, 0x52, 0, 0],
        )?;
        g.valid(
            &["FrameHeader", "SpecExample"],
            "SubmitSharesStandard, channel_msg set: 00 80 | 1a | 18 00 00",
            [0u8, 0x80, 0x1a, 0x18, 0, 0],
        )?;
        g.valid(
            &["FrameHeader"],
            "extension 0x0001 (RequestExtensions), msg_type 0x00",
            [1u8, 0, 0, 4, 0, 0],
        )?;
        g.valid(
            &["FrameHeader", "U24Max"],
            "msg_length 2^24 - 1, the largest payload",
            [0u8, 0, 0x74, 0xff, 0xff, 0xff],
        )?;
        g.valid(&["FrameHeader", "ChannelMsgBitErratum"], "bytes 80 00: extension_type 0x0080 WITHOUT channel_msg (the bit is 0x8000, in the second byte)", [0x80u8, 0, 0x1a, 0x18, 0, 0])?;
        g.valid(
            &["FrameHeader", "EdgeValue"],
            "bytes ff ff: extension 0x7fff with channel_msg",
            [0xffu8, 0xff, 0xff, 0, 0, 0],
        )?;
        g.invalid(
            &["IncompleteHeader"],
            "5 of 6 header bytes",
            [0u8, 0x80, 0x1a, 0x18, 0],
        )?;
    });
    b.finish()
}
