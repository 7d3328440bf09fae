//! Keys of the SV2 secure channel (spec §4.7) and `stratum2+tcp://` URLs.
//!
//! - [`AuthorityPublicKey`]: the pool's (or TP's, or JDS's) authority key, a 32-byte x-only secp256k1
//!   key, written as `base58check([0x01, 0x00] || xonly)`: the prefix is the U16 LE version 1.
//! - [`SecretKey`]: a secp256k1 secret, written as `base58check(secret32)` with no prefix, the format the
//!   reference implementation's configuration files use.
//! - [`Keypair`]: a secret and its x-only public key; used for authority keys and server static keys.
//! - [`Sv2Url`]: `stratum2+tcp://host:port/<authority key>`.
//!
//! base58 here is Bitcoin's alphabet with leading zero bytes written as `1`; the checksum is the first 4
//! bytes of SHA256(SHA256(payload)). Decoding is bounded: strings longer than any key are refused before
//! any arithmetic.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use secp256k1::{All, Secp256k1};
use sha2::{Digest, Sha256};

/// The version prefix of an encoded authority public key: U16 LE 1.
pub const AUTHORITY_KEY_VERSION: [u8; 2] = [0x01, 0x00];

/// The URL scheme of an SV2 endpoint.
pub const URL_SCHEME: &str = "stratum2+tcp";

/// The longest base58 string this module decodes. A 38-byte payload (the longest here) is 52 characters.
const MAX_BASE58_LEN: usize = 64;

const ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// The process-wide secp256k1 context (creating one costs far more than a signature).
pub(crate) fn secp() -> &'static Secp256k1<All> {
    static CONTEXT: OnceLock<Secp256k1<All>> = OnceLock::new();
    CONTEXT.get_or_init(Secp256k1::new)
}

/// Why a key or URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// A character outside Bitcoin's base58 alphabet.
    #[error("invalid base58 character {character:?} at position {position}")]
    Base58Character { character: char, position: usize },
    /// Longer than any key this module knows.
    #[error("base58 string of {length} characters is too long (at most {MAX_BASE58_LEN})")]
    Base58TooLong { length: usize },
    /// The 4-byte checksum does not match the payload.
    #[error("base58check checksum mismatch (computed {computed}, found {found})")]
    Checksum { computed: String, found: String },
    /// The decoded payload has the wrong length for this kind of key.
    #[error("decoded {what} is {got} bytes, expected {expected}")]
    Length {
        what: &'static str,
        got: usize,
        expected: usize,
    },
    /// An authority public key whose version prefix is not `[0x01, 0x00]`.
    #[error("unknown authority key version prefix {found} (expected 0100)")]
    Version { found: String },
    /// 32 bytes that are not the x coordinate of a curve point.
    #[error("not a valid secp256k1 x-only public key")]
    InvalidPublicKey,
    /// 32 bytes that are zero or not below the curve order.
    #[error("not a valid secp256k1 secret key (zero or not below the curve order)")]
    InvalidSecretKey,
    /// Hex input that is not 64 hex digits.
    #[error("invalid hex key: {0}")]
    Hex(String),
    /// The operating system's random source failed.
    #[error("random source failed: {0}")]
    Random(String),
    /// A malformed `stratum2+tcp://` URL.
    #[error("invalid SV2 URL: {0}")]
    Url(String),
}

/// An authority public key: 32-byte x-only secp256k1 key (BIP340).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AuthorityPublicKey([u8; 32]);

impl AuthorityPublicKey {
    /// Checks that `xonly` is the x coordinate of a point on the curve.
    pub fn from_xonly(xonly: [u8; 32]) -> Result<Self, KeyError> {
        secp256k1::XOnlyPublicKey::from_byte_array(xonly)
            .map_err(|_| KeyError::InvalidPublicKey)?;
        Ok(Self(xonly))
    }

    /// The 32-byte x-only key.
    pub fn xonly(&self) -> [u8; 32] {
        self.0
    }

    /// As secp256k1's type (valid by construction).
    pub(crate) fn to_secp(self) -> secp256k1::XOnlyPublicKey {
        secp256k1::XOnlyPublicKey::from_byte_array(self.0)
            .expect("checked to be a valid x-only key when constructed")
    }

    /// `base58check([0x01, 0x00] || xonly)`.
    pub fn to_base58(&self) -> String {
        let mut payload = [0u8; 34];
        payload[..2].copy_from_slice(&AUTHORITY_KEY_VERSION);
        payload[2..].copy_from_slice(&self.0);
        base58check_encode(&payload)
    }

    /// Parses `base58check([0x01, 0x00] || xonly)` and checks the point.
    pub fn from_base58(s: &str) -> Result<Self, KeyError> {
        let payload = base58check_decode(s)?;
        if payload.len() != 34 {
            return Err(KeyError::Length {
                what: "authority public key",
                got: payload.len(),
                expected: 34,
            });
        }
        if payload[..2] != AUTHORITY_KEY_VERSION {
            return Err(KeyError::Version {
                found: hex::encode(&payload[..2]),
            });
        }
        let mut xonly = [0u8; 32];
        xonly.copy_from_slice(&payload[2..]);
        Self::from_xonly(xonly)
    }

    /// Parses 64 hex digits of an x-only key.
    pub fn from_hex(s: &str) -> Result<Self, KeyError> {
        Self::from_xonly(parse_hex32(s)?)
    }
}

impl fmt::Display for AuthorityPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base58())
    }
}

impl fmt::Debug for AuthorityPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuthorityPublicKey({})", self.to_base58())
    }
}

impl FromStr for AuthorityPublicKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        Self::from_base58(s)
    }
}

/// A secp256k1 secret key. `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey([u8; 32]);

impl SecretKey {
    /// Checks that `bytes` is a valid scalar (not zero, below the curve order).
    pub fn from_bytes(bytes: [u8; 32]) -> Result<Self, KeyError> {
        secp256k1::SecretKey::from_byte_array(bytes).map_err(|_| KeyError::InvalidSecretKey)?;
        Ok(Self(bytes))
    }

    /// A fresh key from the operating system's random source.
    pub fn generate() -> Result<Self, KeyError> {
        Self::generate_from(|bytes| {
            getrandom::fill(bytes).map_err(|e| KeyError::Random(e.to_string()))
        })
    }

    /// A key drawn from `source`. A uniformly random 32-byte string is not a valid scalar with
    /// probability about 2^-128, so an invalid draw is drawn again (rather than biasing the key), but
    /// only a few times: a broken source (all zeros, say) is an error, not an endless loop.
    pub fn generate_from(
        mut source: impl FnMut(&mut [u8; 32]) -> Result<(), KeyError>,
    ) -> Result<Self, KeyError> {
        for _ in 0..8 {
            let mut bytes = [0u8; 32];
            source(&mut bytes)?;
            if let Ok(key) = Self::from_bytes(bytes) {
                return Ok(key);
            }
        }
        Err(KeyError::Random(
            "the random source gave no valid secret key in 8 draws".into(),
        ))
    }

    /// The 32 secret bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }

    /// As secp256k1's type (valid by construction).
    pub(crate) fn to_secp(&self) -> secp256k1::SecretKey {
        secp256k1::SecretKey::from_byte_array(self.0)
            .expect("checked to be a valid secret key when constructed")
    }

    /// The x-only public key of this secret (BIP340: the x coordinate of d·G).
    pub fn xonly_public(&self) -> [u8; 32] {
        let keypair = secp256k1::Keypair::from_secret_key(secp(), &self.to_secp());
        keypair.x_only_public_key().0.serialize()
    }

    /// `base58check(secret32)`, no prefix (the reference implementation's configuration format).
    pub fn to_base58(&self) -> String {
        base58check_encode(&self.0)
    }

    /// Parses `base58check(secret32)`.
    pub fn from_base58(s: &str) -> Result<Self, KeyError> {
        let payload = base58check_decode(s)?;
        let bytes: [u8; 32] = payload
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::Length {
                what: "secret key",
                got: payload.len(),
                expected: 32,
            })?;
        Self::from_bytes(bytes)
    }

    /// Parses 64 hex digits.
    pub fn from_hex(s: &str) -> Result<Self, KeyError> {
        Self::from_bytes(parse_hex32(s)?)
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

impl FromStr for SecretKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        Self::from_base58(s)
    }
}

/// A secret key and its x-only public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keypair {
    /// The secret.
    pub secret: SecretKey,
    /// Its x-only public key.
    pub public: AuthorityPublicKey,
}

impl Keypair {
    /// The key pair of `secret`.
    pub fn from_secret(secret: SecretKey) -> Self {
        let public = AuthorityPublicKey(secret.xonly_public());
        Self { secret, public }
    }

    /// A fresh key pair from the operating system's random source.
    pub fn generate() -> Result<Self, KeyError> {
        Ok(Self::from_secret(SecretKey::generate()?))
    }

    /// As secp256k1's type.
    pub(crate) fn to_secp(&self) -> secp256k1::Keypair {
        secp256k1::Keypair::from_secret_key(secp(), &self.secret.to_secp())
    }
}

/// An SV2 endpoint: `stratum2+tcp://host:port/<authority key>`.
///
/// The host is a DNS name, an IPv4 address, or an IPv6 address in brackets. The port is required
/// (decimal, 1 to 65535). The authority key may be left out (`stratum2+tcp://host:port`), which means
/// the certificate cannot be checked; tools must say so. The scheme is matched without regard to case;
/// one trailing `/` after the key (or after the port) is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sv2Url {
    /// Host name or address, without brackets for IPv6.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// The authority key that must have signed the server's certificate.
    pub authority_key: Option<AuthorityPublicKey>,
}

impl Sv2Url {
    /// `host:port` as a socket address string (IPv6 in brackets).
    pub fn host_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for Sv2Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{URL_SCHEME}://{}", self.host_port())?;
        if let Some(key) = &self.authority_key {
            write!(f, "/{key}")?;
        }
        Ok(())
    }
}

impl FromStr for Sv2Url {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        let bad = |why: &str| KeyError::Url(format!("{why} in {s:?}"));
        let (scheme, rest) = s
            .split_once("://")
            .ok_or_else(|| bad("missing \"stratum2+tcp://\""))?;
        if !scheme.eq_ignore_ascii_case(URL_SCHEME) {
            return Err(bad(&format!("scheme {scheme:?} is not {URL_SCHEME:?}")));
        }
        let (authority, path) = match rest.split_once('/') {
            Some((authority, path)) => (authority, path),
            None => (rest, ""),
        };
        let (host, port) = if let Some(after) = authority.strip_prefix('[') {
            let (host, tail) = after
                .split_once(']')
                .ok_or_else(|| bad("unclosed '[' in host"))?;
            let port = tail.strip_prefix(':').ok_or_else(|| bad("missing port"))?;
            // Brackets are for IPv6 addresses only (RFC 3986 IP-literal); anything else in them would
            // be formatted back without brackets, as another URL.
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(bad(&format!("{host:?} in brackets is not an IPv6 address")));
            }
            (host, port)
        } else {
            authority
                .rsplit_once(':')
                .ok_or_else(|| bad("missing port"))?
        };
        if host.is_empty() {
            return Err(bad("empty host"));
        }
        if host.contains(':') && !authority.starts_with('[') {
            return Err(bad("IPv6 hosts must be in brackets"));
        }
        if !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'))
        {
            return Err(bad("invalid character in host"));
        }
        // Digits only (`u16::from_str` would also take a sign), and not 0: nothing listens there.
        let port: u16 = port
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| port.parse().ok())
            .flatten()
            .filter(|&p| p != 0)
            .ok_or_else(|| bad(&format!("invalid port {port:?} (1 to 65535)")))?;
        let key = path.strip_suffix('/').unwrap_or(path);
        let authority_key = if key.is_empty() {
            None
        } else {
            Some(AuthorityPublicKey::from_base58(key)?)
        };
        Ok(Self {
            host: host.to_owned(),
            port,
            authority_key,
        })
    }
}

fn parse_hex32(s: &str) -> Result<[u8; 32], KeyError> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s.trim(), &mut out).map_err(|e| KeyError::Hex(e.to_string()))?;
    Ok(out)
}

fn checksum(payload: &[u8]) -> [u8; 4] {
    let digest = Sha256::digest(Sha256::digest(payload));
    [digest[0], digest[1], digest[2], digest[3]]
}

/// base58check: `base58(payload || SHA256d(payload)[..4])`.
pub fn base58check_encode(payload: &[u8]) -> String {
    let mut data = Vec::with_capacity(payload.len() + 4);
    data.extend_from_slice(payload);
    data.extend_from_slice(&checksum(payload));
    base58_encode(&data)
}

/// Decodes base58check and returns the payload (without the checksum).
pub fn base58check_decode(s: &str) -> Result<Vec<u8>, KeyError> {
    let mut data = base58_decode(s)?;
    if data.len() < 4 {
        return Err(KeyError::Length {
            what: "base58check data",
            got: data.len(),
            expected: 4,
        });
    }
    let found = data.split_off(data.len() - 4);
    let computed = checksum(&data);
    if found != computed {
        return Err(KeyError::Checksum {
            computed: hex::encode(computed),
            found: hex::encode(found),
        });
    }
    Ok(data)
}

/// Bitcoin base58 (leading zero bytes as `1`).
pub fn base58_encode(data: &[u8]) -> String {
    let zeros = data.iter().take_while(|&&b| b == 0).count();
    // Digits in base 58, least significant first. log(256)/log(58) < 1.37.
    let mut digits: Vec<u8> = Vec::with_capacity(data.len() * 137 / 100 + 1);
    for &byte in &data[zeros..] {
        let mut carry = u32::from(byte);
        for digit in digits.iter_mut() {
            carry += u32::from(*digit) << 8;
            *digit = (carry % 58) as u8;
            carry /= 58;
        }
        while carry > 0 {
            digits.push((carry % 58) as u8);
            carry /= 58;
        }
    }
    let mut out = String::with_capacity(zeros + digits.len());
    out.extend(std::iter::repeat_n('1', zeros));
    out.extend(digits.iter().rev().map(|&d| ALPHABET[d as usize] as char));
    out
}

/// Bitcoin base58 decode; refuses strings longer than any key.
pub fn base58_decode(s: &str) -> Result<Vec<u8>, KeyError> {
    if s.len() > MAX_BASE58_LEN {
        return Err(KeyError::Base58TooLong { length: s.len() });
    }
    let mut zeros = 0;
    let mut counting_zeros = true;
    // Bytes, least significant first.
    let mut bytes: Vec<u8> = Vec::with_capacity(s.len());
    for (position, character) in s.chars().enumerate() {
        let value = ALPHABET
            .iter()
            .position(|&a| a as char == character)
            .ok_or(KeyError::Base58Character {
                character,
                position,
            })? as u32;
        if counting_zeros && value == 0 {
            zeros += 1;
            continue;
        }
        counting_zeros = false;
        let mut carry = value;
        for byte in bytes.iter_mut() {
            carry += u32::from(*byte) * 58;
            *byte = carry as u8;
            carry >>= 8;
        }
        while carry > 0 {
            bytes.push(carry as u8);
            carry >>= 8;
        }
    }
    let mut out = vec![0u8; zeros];
    out.extend(bytes.iter().rev());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spec §4.7.1 (CATALOG §G.1), the one official key vector.
    const SPEC_XONLY: &str = "76637000979c1c11af0c300bcd8c7fe48610fce9b9c11e3daee35ae0b08a7455";
    const SPEC_BASE58: &str = "9bXiEd8boQVhq7WddEcERUL5tyyJVFYdU8th3HfbNXK3Yw6GRXh";

    /// The test authority key pair of the reference implementation's example configurations.
    const SRI_PUBLIC: &str = "9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH72";
    const SRI_SECRET: &str = "mkDLTBBRxdBv998612qipDYoTK3YUrqLe8uWw7gu3iXbSrn2n";

    #[test]
    fn the_spec_authority_key_vector_encodes_and_decodes() {
        let key = AuthorityPublicKey::from_hex(SPEC_XONLY).unwrap();
        assert_eq!(key.to_base58(), SPEC_BASE58);
        assert_eq!(
            AuthorityPublicKey::from_base58(SPEC_BASE58)
                .unwrap()
                .xonly(),
            key.xonly()
        );
    }

    #[test]
    fn the_reference_test_secret_matches_its_public_key() {
        let secret = SecretKey::from_base58(SRI_SECRET).unwrap();
        let pair = Keypair::from_secret(secret.clone());
        assert_eq!(pair.public.to_base58(), SRI_PUBLIC);
        assert_eq!(secret.to_base58(), SRI_SECRET);
    }

    #[test]
    fn a_changed_character_fails_the_checksum() {
        let mut s = SPEC_BASE58.to_owned();
        s.replace_range(10..11, if &s[10..11] == "x" { "y" } else { "x" });
        assert!(matches!(
            AuthorityPublicKey::from_base58(&s),
            Err(KeyError::Checksum { .. })
        ));
    }

    #[test]
    fn keys_of_the_wrong_kind_or_shape_are_refused() {
        // A secret key is not a public key (no version prefix, 32 bytes).
        assert!(matches!(
            AuthorityPublicKey::from_base58(SRI_SECRET),
            Err(KeyError::Length { got: 32, .. })
        ));
        assert!(matches!(
            SecretKey::from_base58(SRI_PUBLIC),
            Err(KeyError::Length { got: 34, .. })
        ));
        // Version 2.
        let mut payload = vec![0x02, 0x00];
        payload.extend_from_slice(&hex::decode(SPEC_XONLY).unwrap());
        assert!(matches!(
            AuthorityPublicKey::from_base58(&base58check_encode(&payload)),
            Err(KeyError::Version { .. })
        ));
        assert!(matches!(
            AuthorityPublicKey::from_base58("0OIl"),
            Err(KeyError::Base58Character {
                character: '0',
                position: 0
            })
        ));
        assert!(matches!(
            AuthorityPublicKey::from_base58(&"1".repeat(1000)),
            Err(KeyError::Base58TooLong { length: 1000 })
        ));
        assert_eq!(
            SecretKey::from_bytes([0; 32]).unwrap_err(),
            KeyError::InvalidSecretKey
        );
        assert_eq!(
            SecretKey::from_bytes([0xff; 32]).unwrap_err(),
            KeyError::InvalidSecretKey
        );
        // x = 5 is not on secp256k1 (5^3 + 7 = 132 is not a square mod p); x = 1 is.
        let mut x = [0u8; 32];
        x[31] = 5;
        assert_eq!(
            AuthorityPublicKey::from_xonly(x).unwrap_err(),
            KeyError::InvalidPublicKey
        );
        x[31] = 1;
        assert!(AuthorityPublicKey::from_xonly(x).is_ok());
    }

    #[test]
    fn base58_keeps_leading_zero_bytes() {
        for data in [&[][..], &[0], &[0, 0, 1], &[0, 255, 0], &[57], &[58]] {
            let s = base58_encode(data);
            assert_eq!(base58_decode(&s).unwrap(), data, "{s}");
        }
        assert_eq!(base58_encode(&[0, 0, 1]), "112");
        assert_eq!(base58_encode(&[58]), "21");
    }

    #[test]
    fn a_broken_random_source_is_an_error_not_a_hang() {
        let mut draws = 0;
        let err = SecretKey::generate_from(|b| {
            draws += 1;
            *b = [0; 32];
            Ok(())
        })
        .unwrap_err();
        assert!(matches!(err, KeyError::Random(_)), "{err:?}");
        assert_eq!(draws, 8);
        // An invalid draw (above the order) is drawn again.
        let mut first = true;
        let key = SecretKey::generate_from(|b| {
            *b = if std::mem::take(&mut first) {
                [0xff; 32]
            } else {
                [7; 32]
            };
            Ok(())
        })
        .unwrap();
        assert_eq!(key.to_bytes(), [7; 32]);
        // A failing source is passed on.
        let failing = SecretKey::generate_from(|_| Err(KeyError::Random("no entropy".into())));
        assert_eq!(failing.unwrap_err(), KeyError::Random("no entropy".into()));
    }

    #[test]
    fn generated_key_pairs_round_trip() {
        let pair = Keypair::generate().unwrap();
        let again = SecretKey::from_base58(&pair.secret.to_base58()).unwrap();
        assert_eq!(Keypair::from_secret(again), pair);
        assert_eq!(
            AuthorityPublicKey::from_base58(&pair.public.to_base58()).unwrap(),
            pair.public
        );
        assert_eq!(format!("{:?}", pair.secret), "SecretKey(<redacted>)");
    }

    #[test]
    fn urls_parse_and_format() {
        let url: Sv2Url = format!("stratum2+tcp://thepool.com:34254/{SPEC_BASE58}")
            .parse()
            .unwrap();
        assert_eq!(url.host, "thepool.com");
        assert_eq!(url.port, 34254);
        assert_eq!(url.authority_key.unwrap().to_base58(), SPEC_BASE58);
        assert_eq!(
            url.to_string(),
            format!("stratum2+tcp://thepool.com:34254/{SPEC_BASE58}")
        );

        let v6: Sv2Url = "stratum2+tcp://[::1]:3333".parse().unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 3333));
        assert_eq!(v6.authority_key, None);
        assert_eq!(v6.to_string(), "stratum2+tcp://[::1]:3333");
        assert_eq!(v6.host_port(), "[::1]:3333");

        let trailing: Sv2Url = format!("stratum2+tcp://127.0.0.1:1/{SPEC_BASE58}/")
            .parse()
            .unwrap();
        assert!(trailing.authority_key.is_some());

        for bad in [
            "",
            "127.0.0.1:34254",
            "stratum+tcp://127.0.0.1:34254",
            "stratum2+tcp://127.0.0.1",
            "stratum2+tcp://:34254",
            "stratum2+tcp://127.0.0.1:99999",
            "stratum2+tcp://127.0.0.1:x",
            "stratum2+tcp://::1:34254",
            "stratum2+tcp://[::1:34254",
            "stratum2+tcp://a b:1",
            "stratum2+tcp://127.0.0.1:34254/notakey",
        ] {
            assert!(bad.parse::<Sv2Url>().is_err(), "{bad:?} should be refused");
        }
    }
}
