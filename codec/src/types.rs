//! SV2 data types (spec §3.1, CATALOG §A): one `Codec` implementation per wire type.
//!
//! Decoding borrows from the input (`Cow::Borrowed`) and never allocates from a length or count before
//! checking it against the bytes actually present and the type's maximum. Every type with a bound can
//! only be constructed within its bound, so encoding is infallible.

use std::borrow::Cow;
use std::fmt;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{BoundsError, DecodeError, ErrorKind};

/// A cursor over a payload that knows which message and field it is decoding, so that every error
/// carries its location.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    message: &'static str,
    field: &'static str,
    field_start: usize,
    warnings: Vec<Warning>,
}

/// Something the spec allows but a careful peer would not send; reported, never rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub field: &'static str,
    pub offset: usize,
    #[serde(flatten)]
    pub kind: WarningKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum WarningKind {
    /// A BOOL byte with bits other than the LSB set (§3.1: receivers MUST ignore them).
    NonCanonicalBool { byte: u8 },
    /// A well-formed TLV this codec does not know (kept in `Decoded::tlvs`).
    UnknownTlv { extension_type: u16, field_type: u8 },
    /// A value the spec says is UTF-8 but is not (extension 0x0002's user_identity).
    NotUtf8,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            WarningKind::NonCanonicalBool { byte } => write!(
                f,
                "{} at offset {}: non-canonical BOOL byte {byte:#04x}",
                self.field, self.offset
            ),
            WarningKind::UnknownTlv {
                extension_type,
                field_type,
            } => write!(
                f,
                "unknown TLV {extension_type:#06x}/{field_type:#04x} at offset {}",
                self.offset
            ),
            WarningKind::NotUtf8 => write!(
                f,
                "{} at offset {}: not UTF-8 where the spec says UTF-8",
                self.field, self.offset
            ),
        }
    }
}

impl<'a> Reader<'a> {
    /// A reader over `buf` decoding the message named `message`.
    pub fn new(buf: &'a [u8], message: &'static str) -> Self {
        Reader {
            buf,
            pos: 0,
            message,
            field: "-",
            field_start: 0,
            warnings: Vec::new(),
        }
    }

    /// Names the message being decoded (for errors raised from here on).
    pub(crate) fn set_message(&mut self, message: &'static str) {
        self.message = message;
    }

    /// Marks the start of a field: later errors name it and its offset.
    #[inline]
    pub fn field(&mut self, name: &'static str) {
        self.field = name;
        self.field_start = self.pos;
    }

    /// Bytes not yet consumed.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Current offset in the payload.
    #[inline]
    pub fn position(&self) -> usize {
        self.pos
    }

    /// An error located at the current field.
    pub fn error(&self, kind: ErrorKind) -> DecodeError {
        DecodeError {
            message: self.message,
            field: self.field,
            offset: self.field_start,
            kind,
        }
    }

    /// Takes exactly `n` bytes or fails with `Truncated` (never reads past the buffer).
    #[inline]
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let available = self.remaining();
        if n > available {
            return Err(self.error(ErrorKind::Truncated {
                needed: n,
                available,
            }));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    #[inline]
    pub fn take_array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let bytes = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// The unconsumed rest of the buffer, consuming it.
    pub fn rest(&mut self) -> &'a [u8] {
        let out = &self.buf[self.pos..];
        self.pos = self.buf.len();
        out
    }

    pub(crate) fn warn(&mut self, kind: WarningKind) {
        self.warnings.push(Warning {
            field: self.field,
            offset: self.field_start,
            kind,
        });
    }

    pub(crate) fn take_warnings(&mut self) -> Vec<Warning> {
        std::mem::take(&mut self.warnings)
    }
}

/// A wire type: how it is written, read and measured.
pub trait Codec<'a>: Sized {
    /// The fewest bytes one value can occupy; bounds pre-allocation for sequences.
    const MIN_LEN: usize;
    fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError>;
    fn encode(&self, out: &mut Vec<u8>);
    fn encoded_len(&self) -> usize;

    /// Decodes `count` values into `out`; fixed-size types override it to take all their bytes at once.
    /// Callers have already checked `count * MIN_LEN` against the bytes present.
    #[inline]
    fn decode_many(
        r: &mut Reader<'a>,
        count: usize,
        out: &mut Vec<Self>,
    ) -> Result<(), DecodeError> {
        for _ in 0..count {
            out.push(Self::decode(r)?);
        }
        Ok(())
    }
}

/// Conversion of a possibly borrowing value into one that owns its bytes.
pub trait IntoStatic {
    type Static: 'static;
    fn into_static(self) -> Self::Static;
}

macro_rules! int_codec {
    ($($t:ty),*) => {$(
        impl<'a> Codec<'a> for $t {
            const MIN_LEN: usize = std::mem::size_of::<$t>();
            #[inline]
            fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
                Ok(<$t>::from_le_bytes(r.take_array()?))
            }
            #[inline]
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            #[inline]
            fn encoded_len(&self) -> usize {
                std::mem::size_of::<$t>()
            }
        }
        impl IntoStatic for $t {
            type Static = $t;
            #[inline]
            fn into_static(self) -> $t {
                self
            }
        }
    )*};
}
int_codec!(u8, u16, u32, u64, f32);

/// BOOL: the LSB counts; other set bits are accepted and reported as non-canonical.
impl<'a> Codec<'a> for bool {
    const MIN_LEN: usize = 1;
    fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let [byte] = r.take_array::<1>()?;
        if byte > 1 {
            r.warn(WarningKind::NonCanonicalBool { byte });
        }
        Ok(byte & 1 == 1)
    }
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
    fn encoded_len(&self) -> usize {
        1
    }
}

impl IntoStatic for bool {
    type Static = bool;
    fn into_static(self) -> bool {
        self
    }
}

/// U24: an unsigned 24-bit little-endian integer (only in frame headers and B0_16M prefixes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
#[serde(transparent)]
pub struct U24(u32);

impl U24 {
    pub const MAX: u32 = (1 << 24) - 1;

    pub fn new(value: u32) -> Result<Self, BoundsError> {
        if value > Self::MAX {
            return Err(BoundsError {
                type_name: "U24",
                unit: "as its value",
                length: value as usize,
                max: Self::MAX as usize,
            });
        }
        Ok(U24(value))
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl<'a> Codec<'a> for U24 {
    const MIN_LEN: usize = 3;
    fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let [a, b, c] = r.take_array()?;
        Ok(U24(u32::from_le_bytes([a, b, c, 0])))
    }
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0.to_le_bytes()[..3]);
    }
    fn encoded_len(&self) -> usize {
        3
    }
}

impl<'de> Deserialize<'de> for U24 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        U24::new(u32::deserialize(d)?).map_err(D::Error::custom)
    }
}

macro_rules! fixed_bytes {
    ($(#[$doc:meta])* $name:ident, $n:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub [u8; $n]);

        impl Default for $name {
            fn default() -> Self {
                $name([0; $n])
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), hex::encode(self.0))
            }
        }

        impl<'a> Codec<'a> for $name {
            const MIN_LEN: usize = $n;
            #[inline]
            fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
                Ok($name(r.take_array()?))
            }
            #[inline]
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.0);
            }
            #[inline]
            fn encoded_len(&self) -> usize {
                $n
            }
            #[inline]
            fn decode_many(r: &mut Reader<'a>, count: usize, out: &mut Vec<Self>) -> Result<(), DecodeError> {
                // count <= 65535 and $n <= 64: the product cannot overflow.
                let (chunks, _) = r.take(count * $n)?.as_chunks::<$n>();
                out.extend(chunks.iter().map(|c| $name(*c)));
                Ok(())
            }
        }

        impl IntoStatic for $name {
            type Static = $name;
            fn into_static(self) -> $name {
                self
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&hex::encode(self.0))
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = Cow::<str>::deserialize(d)?;
                let mut out = [0u8; $n];
                hex::decode_to_slice(text.as_bytes(), &mut out).map_err(|e| {
                    D::Error::custom(format!(
                        "{}: expected {} hex digits: {e}",
                        stringify!($name),
                        2 * $n
                    ))
                })?;
                Ok($name(out))
            }
        }

        #[cfg(feature = "arbitrary")]
        impl<'a> arbitrary::Arbitrary<'a> for $name {
            fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
                Ok($name(u.arbitrary()?))
            }
        }
    };
}

fixed_bytes!(
    /// U256: 32 bytes in wire (little-endian, i.e. internal hash) order. JSON: hex in wire order.
    U256,
    32
);
fixed_bytes!(
    /// PUBKEY: the 32-byte BIP340 x-only secp256k1 public key.
    Pubkey,
    32
);
fixed_bytes!(
    /// SIGNATURE: a 64-byte BIP340 Schnorr signature, no length prefix.
    Signature,
    64
);

/// Length-prefixed bytes with a `PREFIX`-byte little-endian length of at most `MAX`:
/// B0_32, B0_255, B0_64K and B0_16M. JSON: lowercase hex.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Bytes<'a, const PREFIX: usize, const MAX: usize>(Cow<'a, [u8]>);

pub type B0_32<'a> = Bytes<'a, 1, 32>;
pub type B0_255<'a> = Bytes<'a, 1, 255>;
pub type B0_64K<'a> = Bytes<'a, 2, 65535>;
pub type B0_16M<'a> = Bytes<'a, 3, 16_777_215>;

fn type_name(prefix: usize, max: usize) -> &'static str {
    match (prefix, max) {
        (1, 32) => "B0_32",
        (1, 255) => "B0_255",
        (2, 65535) => "B0_64K",
        (3, 16_777_215) => "B0_16M",
        _ => "bytes",
    }
}

#[inline]
fn read_prefix(r: &mut Reader<'_>, width: usize) -> Result<usize, DecodeError> {
    let raw = r.take(width)?;
    let mut le = [0u8; 8];
    le[..width].copy_from_slice(raw);
    Ok(u64::from_le_bytes(le) as usize)
}

#[inline]
fn write_prefix(out: &mut Vec<u8>, width: usize, value: usize) {
    out.extend_from_slice(&(value as u64).to_le_bytes()[..width]);
}

impl<'a, const PREFIX: usize, const MAX: usize> Bytes<'a, PREFIX, MAX> {
    /// Wraps bytes, failing when there are more than `MAX`.
    pub fn new(bytes: impl Into<Cow<'a, [u8]>>) -> Result<Self, BoundsError> {
        let bytes = bytes.into();
        if bytes.len() > MAX {
            return Err(BoundsError {
                type_name: type_name(PREFIX, MAX),
                unit: "bytes",
                length: bytes.len(),
                max: MAX,
            });
        }
        Ok(Bytes(bytes))
    }

    /// For values whose length the caller has just proven to be within `MAX`.
    pub(crate) fn borrowed_within_bound(bytes: &'a [u8]) -> Self {
        debug_assert!(bytes.len() <= MAX);
        Bytes(Cow::Borrowed(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_inner(self) -> Cow<'a, [u8]> {
        self.0
    }
}

impl<const PREFIX: usize, const MAX: usize> fmt::Debug for Bytes<'_, PREFIX, MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", type_name(PREFIX, MAX), hex::encode(&self.0))
    }
}

impl<'a, const PREFIX: usize, const MAX: usize> Codec<'a> for Bytes<'a, PREFIX, MAX> {
    const MIN_LEN: usize = PREFIX;
    #[inline]
    fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let length = read_prefix(r, PREFIX)?;
        if length > MAX {
            return Err(r.error(ErrorKind::LengthOutOfBounds { length, max: MAX }));
        }
        Ok(Bytes(Cow::Borrowed(r.take(length)?)))
    }
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        write_prefix(out, PREFIX, self.0.len());
        out.extend_from_slice(&self.0);
    }
    #[inline]
    fn encoded_len(&self) -> usize {
        PREFIX + self.0.len()
    }
}

impl<const PREFIX: usize, const MAX: usize> IntoStatic for Bytes<'_, PREFIX, MAX> {
    type Static = Bytes<'static, PREFIX, MAX>;
    fn into_static(self) -> Self::Static {
        Bytes(Cow::Owned(self.0.into_owned()))
    }
}

impl<const PREFIX: usize, const MAX: usize> Serialize for Bytes<'_, PREFIX, MAX> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(&self.0))
    }
}

impl<'de, const PREFIX: usize, const MAX: usize> Deserialize<'de> for Bytes<'_, PREFIX, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = Cow::<str>::deserialize(d)?;
        let bytes = hex::decode(text.as_bytes())
            .map_err(|e| D::Error::custom(format!("{}: bad hex: {e}", type_name(PREFIX, MAX))))?;
        Bytes::new(bytes).map_err(D::Error::custom)
    }
}

#[cfg(feature = "arbitrary")]
impl<'u: 'a, 'a, const PREFIX: usize, const MAX: usize> arbitrary::Arbitrary<'u>
    for Bytes<'a, PREFIX, MAX>
{
    fn arbitrary(u: &mut arbitrary::Unstructured<'u>) -> arbitrary::Result<Self> {
        // Small lengths are the interesting ones; the bound is sometimes hit exactly.
        let len = if u.ratio(1, 16)? {
            MAX.min(u.len())
        } else {
            u.int_in_range(0..=MAX.min(64))?
        };
        Ok(Bytes(Cow::Borrowed(u.bytes(len)?)))
    }
}

/// STR0_255: up to 255 bytes, no mandated encoding. JSON: a string when the bytes are UTF-8,
/// otherwise `{"hex": "..."}` so that no byte is lost.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Str0_255<'a>(B0_255<'a>);

impl<'a> Str0_255<'a> {
    pub fn new(bytes: impl Into<Cow<'a, [u8]>>) -> Result<Self, BoundsError> {
        Bytes::new(bytes).map(Str0_255).map_err(|e| BoundsError {
            type_name: "STR0_255",
            ..e
        })
    }

    /// Builds from text; fails beyond 255 bytes. (Not `FromStr`: that trait cannot borrow.)
    #[allow(clippy::should_implement_trait)]
    pub fn from_str(text: &'a str) -> Result<Self, BoundsError> {
        Self::new(text.as_bytes())
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The text, when it is UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(self.0.as_bytes()).ok()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Str0_255<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_str() {
            Some(text) => write!(f, "{text:?}"),
            None => write!(f, "STR0_255({})", hex::encode(self.as_bytes())),
        }
    }
}

impl<'a> Codec<'a> for Str0_255<'a> {
    const MIN_LEN: usize = 1;
    #[inline]
    fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        B0_255::decode(r).map(Str0_255)
    }
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.encode(out)
    }
    #[inline]
    fn encoded_len(&self) -> usize {
        self.0.encoded_len()
    }
}

impl IntoStatic for Str0_255<'_> {
    type Static = Str0_255<'static>;
    fn into_static(self) -> Self::Static {
        Str0_255(self.0.into_static())
    }
}

impl Serialize for Str0_255<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.as_str() {
            Some(text) => s.serialize_str(text),
            None => {
                use serde::ser::SerializeMap;
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry("hex", &hex::encode(self.as_bytes()))?;
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Str0_255<'_> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Text(String),
            Hex { hex: String },
        }
        let bytes = match Repr::deserialize(d)? {
            Repr::Text(text) => text.into_bytes(),
            Repr::Hex { hex } => hex::decode(hex).map_err(D::Error::custom)?,
        };
        Str0_255::new(bytes).map_err(D::Error::custom)
    }
}

#[cfg(feature = "arbitrary")]
impl<'u: 'a, 'a> arbitrary::Arbitrary<'u> for Str0_255<'a> {
    fn arbitrary(u: &mut arbitrary::Unstructured<'u>) -> arbitrary::Result<Self> {
        B0_255::arbitrary(u).map(Str0_255)
    }
}

/// A counted sequence with a `PREFIX`-byte element count of at most `MAX`: SEQ0_255[T] and SEQ0_64K[T].
/// The count is an element count, not a byte length. JSON: an array.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Seq<T, const PREFIX: usize, const MAX: usize>(Vec<T>);

pub type Seq0_255<T> = Seq<T, 1, 255>;
pub type Seq0_64K<T> = Seq<T, 2, 65535>;

impl<T, const PREFIX: usize, const MAX: usize> Seq<T, PREFIX, MAX> {
    pub fn new(items: Vec<T>) -> Result<Self, BoundsError> {
        if items.len() > MAX {
            return Err(BoundsError {
                type_name: if PREFIX == 1 { "SEQ0_255" } else { "SEQ0_64K" },
                unit: "elements",
                length: items.len(),
                max: MAX,
            });
        }
        Ok(Seq(items))
    }

    pub fn as_slice(&self) -> &[T] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<T> {
        self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.0.iter()
    }
}

impl<T: fmt::Debug, const PREFIX: usize, const MAX: usize> fmt::Debug for Seq<T, PREFIX, MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.0).finish()
    }
}

impl<'a, T: Codec<'a>, const PREFIX: usize, const MAX: usize> Codec<'a> for Seq<T, PREFIX, MAX> {
    const MIN_LEN: usize = PREFIX;
    fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let count = read_prefix(r, PREFIX)?;
        if count > MAX {
            return Err(r.error(ErrorKind::LengthOutOfBounds {
                length: count,
                max: MAX,
            }));
        }
        // Every element takes at least MIN_LEN bytes: a count the payload cannot hold fails here,
        // before any allocation is sized from it.
        let needed = count.saturating_mul(T::MIN_LEN);
        if needed > r.remaining() {
            return Err(r.error(ErrorKind::Truncated {
                needed,
                available: r.remaining(),
            }));
        }
        let mut items = Vec::with_capacity(count);
        T::decode_many(r, count, &mut items)?;
        Ok(Seq(items))
    }
    fn encode(&self, out: &mut Vec<u8>) {
        write_prefix(out, PREFIX, self.0.len());
        for item in &self.0 {
            item.encode(out);
        }
    }
    fn encoded_len(&self) -> usize {
        PREFIX + self.0.iter().map(Codec::encoded_len).sum::<usize>()
    }
}

impl<T: IntoStatic, const PREFIX: usize, const MAX: usize> IntoStatic for Seq<T, PREFIX, MAX> {
    type Static = Seq<T::Static, PREFIX, MAX>;
    fn into_static(self) -> Self::Static {
        Seq(self.0.into_iter().map(IntoStatic::into_static).collect())
    }
}

impl<T: Serialize, const PREFIX: usize, const MAX: usize> Serialize for Seq<T, PREFIX, MAX> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de, T: Deserialize<'de>, const PREFIX: usize, const MAX: usize> Deserialize<'de>
    for Seq<T, PREFIX, MAX>
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Seq::new(Vec::<T>::deserialize(d)?).map_err(D::Error::custom)
    }
}

#[cfg(feature = "arbitrary")]
impl<'u, T: arbitrary::Arbitrary<'u>, const PREFIX: usize, const MAX: usize>
    arbitrary::Arbitrary<'u> for Seq<T, PREFIX, MAX>
{
    fn arbitrary(u: &mut arbitrary::Unstructured<'u>) -> arbitrary::Result<Self> {
        let len = u.int_in_range(0..=MAX.min(16))?;
        let mut items = Vec::with_capacity(len);
        for _ in 0..len {
            items.push(T::arbitrary(u)?);
        }
        Ok(Seq(items))
    }
}

/// OPTION[T] (= SEQ0_1[T]): prefix 0x00 for None, 0x01 followed by T for Some; anything else is invalid.
impl<'a, T: Codec<'a>> Codec<'a> for Option<T> {
    const MIN_LEN: usize = 1;
    fn decode(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let [prefix] = r.take_array::<1>()?;
        match prefix {
            0 => Ok(None),
            1 => T::decode(r).map(Some),
            other => Err(r.error(ErrorKind::InvalidOptionPrefix(other))),
        }
    }
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            None => out.push(0),
            Some(value) => {
                out.push(1);
                value.encode(out);
            }
        }
    }
    fn encoded_len(&self) -> usize {
        1 + self.as_ref().map_or(0, Codec::encoded_len)
    }
}

impl<T: IntoStatic> IntoStatic for Option<T> {
    type Static = Option<T::Static>;
    fn into_static(self) -> Self::Static {
        self.map(IntoStatic::into_static)
    }
}

/// JSON for F32 fields: a number when finite; otherwise `{"bits": "7fc00000"}` (the IEEE-754 bits as a
/// big-endian hex u32), because JSON has no NaN or infinity and no bit may be lost.
pub mod f32_json {
    use super::*;

    pub fn serialize<S: Serializer>(value: &f32, s: S) -> Result<S::Ok, S::Error> {
        if value.is_finite() {
            s.serialize_f32(*value)
        } else {
            use serde::ser::SerializeMap;
            let mut map = s.serialize_map(Some(1))?;
            map.serialize_entry("bits", &format!("{:08x}", value.to_bits()))?;
            map.end()
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Number(f64),
            Bits { bits: String },
        }
        match Repr::deserialize(d)? {
            Repr::Number(n) => {
                let value = n as f32;
                if !value.is_finite() {
                    return Err(D::Error::custom(format!("{n} does not fit an F32")));
                }
                Ok(value)
            }
            Repr::Bits { bits } => u32::from_str_radix(&bits, 16)
                .map(f32::from_bits)
                .map_err(|e| D::Error::custom(format!("F32 bits {bits:?}: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode<'a, T: Codec<'a>>(bytes: &'a [u8]) -> Result<(T, usize), DecodeError> {
        let mut r = Reader::new(bytes, "test");
        r.field("value");
        let value = T::decode(&mut r)?;
        Ok((value, r.position()))
    }

    fn encode<'a, T: Codec<'a>>(value: &T) -> Vec<u8> {
        let mut out = Vec::new();
        value.encode(&mut out);
        assert_eq!(out.len(), value.encoded_len());
        out
    }

    #[test]
    fn integers_are_little_endian() {
        assert_eq!(encode(&0x0102u16), [2, 1]);
        assert_eq!(encode(&0x01020304u32), [4, 3, 2, 1]);
        assert_eq!(encode(&U24::new(0x010203).unwrap()), [3, 2, 1]);
        assert_eq!(
            decode::<U24>(&[0xff, 0xff, 0xff]).unwrap().0.get(),
            U24::MAX
        );
        assert!(U24::new(1 << 24).is_err());
        assert_eq!(encode(&1.5f32), 1.5f32.to_le_bytes());
        assert_eq!(
            decode::<u64>(&[1, 0, 0, 0, 0, 0, 0, 0x80]).unwrap().0,
            0x8000_0000_0000_0001
        );
    }

    #[test]
    fn bool_reads_only_the_low_bit_and_reports_the_rest() {
        for (byte, value, warns) in [
            (0u8, false, false),
            (1, true, false),
            (2, false, true),
            (0xff, true, true),
        ] {
            let buf = [byte];
            let mut r = Reader::new(&buf, "test");
            assert_eq!(bool::decode(&mut r).unwrap(), value);
            assert_eq!(
                r.take_warnings().len(),
                usize::from(warns),
                "byte {byte:#x}"
            );
        }
    }

    #[test]
    fn bounded_bytes_reject_lengths_past_their_bound() {
        let mut buf = vec![33u8];
        buf.extend([7u8; 33]);
        let err = decode::<B0_32>(&buf).unwrap_err();
        assert_eq!(
            err.kind,
            ErrorKind::LengthOutOfBounds {
                length: 33,
                max: 32
            }
        );
        let mut ok = vec![32u8];
        ok.extend([7u8; 32]);
        assert_eq!(decode::<B0_32>(&ok).unwrap().0.len(), 32);
        assert!(B0_32::new(vec![0; 33]).is_err());
        // A B0_16M claiming 16 MiB over 4 bytes fails as truncated without allocating.
        let err = decode::<B0_16M>(&[0xff, 0xff, 0xff, 1]).unwrap_err();
        assert_eq!(
            err.kind,
            ErrorKind::Truncated {
                needed: 16_777_215,
                available: 1
            }
        );
    }

    #[test]
    fn bytes_decode_borrows() {
        let buf = [3u8, 1, 2, 3];
        let (b, used) = decode::<B0_255>(&buf).unwrap();
        assert_eq!(used, 4);
        assert!(matches!(b.into_inner(), Cow::Borrowed(_)));
    }

    #[test]
    fn option_prefix_must_be_zero_or_one() {
        assert_eq!(decode::<Option<u32>>(&[0]).unwrap().0, None);
        assert_eq!(decode::<Option<u32>>(&[1, 5, 0, 0, 0]).unwrap().0, Some(5));
        let err = decode::<Option<u32>>(&[2, 5, 0, 0, 0]).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidOptionPrefix(2));
    }

    #[test]
    fn sequence_counts_are_checked_before_allocation() {
        // 65535 U256 claimed, 2 bytes present.
        let err = decode::<Seq0_64K<U256>>(&[0xff, 0xff, 0, 0]).unwrap_err();
        assert_eq!(
            err.kind,
            ErrorKind::Truncated {
                needed: 65535 * 32,
                available: 2
            }
        );
        let (seq, _) = decode::<Seq0_64K<u16>>(&[2, 0, 1, 0, 2, 0]).unwrap();
        assert_eq!(seq.as_slice(), &[1, 2]);
        assert!(Seq0_255::new(vec![0u8; 256]).is_err());
    }

    #[test]
    fn str_json_keeps_non_utf8_bytes() {
        let s = Str0_255::new(vec![0xff, 0x00]).unwrap();
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, r#"{"hex":"ff00"}"#);
        let back: Str0_255<'static> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
        let text: Str0_255<'static> = serde_json::from_str(r#""hello""#).unwrap();
        assert_eq!(text.as_str(), Some("hello"));
        assert!(
            serde_json::from_str::<Str0_255<'static>>(&format!("\"{}\"", "x".repeat(256))).is_err()
        );
    }

    #[test]
    fn f32_json_keeps_every_bit() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct W(#[serde(with = "f32_json")] f32);
        for value in [
            0.0f32,
            -0.0,
            1.5e12,
            f32::NAN,
            f32::INFINITY,
            f32::from_bits(0x7fc0_0001),
        ] {
            let json = serde_json::to_string(&W(value)).unwrap();
            let back: W = serde_json::from_str(&json).unwrap();
            assert_eq!(back.0.to_bits(), value.to_bits(), "{json}");
        }
    }
}
