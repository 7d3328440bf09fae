//! Authority keys, secret keys and `stratum2+tcp://` URLs (spec §4.7): base58check written here
//! (Bitcoin's alphabet, checksum = first 4 bytes of SHA256(SHA256(payload))), key validity with k256.

use super::aead::sha256;
use super::curve::{lift_x, secret_scalar, xonly_public};
use super::{eq, Check};
use crate::model::{AuthorityKeyTest, Outcome, SecretKeyTest, UrlTest};

const ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

fn base58_decode(s: &str) -> Result<Vec<u8>, &'static str> {
    // A big-endian number, grown one digit at a time.
    let mut number: Vec<u8> = Vec::new();
    for c in s.bytes() {
        let digit = ALPHABET
            .iter()
            .position(|&a| a == c)
            .ok_or("BASE58_CHARACTER")?;
        let mut carry = digit as u32;
        for byte in number.iter_mut().rev() {
            carry += u32::from(*byte) * 58;
            *byte = carry as u8;
            carry >>= 8;
        }
        while carry > 0 {
            number.insert(0, carry as u8);
            carry >>= 8;
        }
    }
    let zeros = s.bytes().take_while(|&c| c == b'1').count();
    let mut out = vec![0u8; zeros];
    out.extend(number);
    Ok(out)
}

fn base58_encode(bytes: &[u8]) -> String {
    let zeros = bytes.iter().take_while(|&&b| b == 0).count();
    // Base-58 digits, least significant first.
    let mut digits: Vec<u8> = Vec::new();
    for &byte in bytes {
        let mut carry = u32::from(byte);
        for d in digits.iter_mut() {
            carry += u32::from(*d) << 8;
            *d = (carry % 58) as u8;
            carry /= 58;
        }
        while carry > 0 {
            digits.push((carry % 58) as u8);
            carry /= 58;
        }
    }
    let mut out = "1".repeat(zeros);
    out.extend(
        digits
            .iter()
            .rev()
            .map(|&d| ALPHABET[usize::from(d)] as char),
    );
    out
}

fn checksum(payload: &[u8]) -> [u8; 4] {
    let twice = sha256(&[&sha256(&[payload])]);
    [twice[0], twice[1], twice[2], twice[3]]
}

fn base58check_decode(s: &str) -> Result<Vec<u8>, &'static str> {
    let mut bytes = base58_decode(s)?;
    if bytes.len() < 4 {
        return Err("BASE58_CHECKSUM");
    }
    let found = bytes.split_off(bytes.len() - 4);
    if found != checksum(&bytes) {
        return Err("BASE58_CHECKSUM");
    }
    Ok(bytes)
}

fn base58check_encode(payload: &[u8]) -> String {
    base58_encode(&[payload, &checksum(payload)].concat())
}

/// An authority key string: its x-only key, or the error class. Payload length is checked before
/// the version prefix.
fn authority_key(s: &str) -> Result<[u8; 32], &'static str> {
    let payload = base58check_decode(s)?;
    if payload.len() != 34 {
        return Err("KEY_LENGTH");
    }
    if payload[..2] != [0x01, 0x00] {
        return Err("KEY_VERSION");
    }
    let key: [u8; 32] = payload[2..].try_into().expect("32 bytes");
    lift_x(&key).ok_or("INVALID_PUBLIC_KEY")?;
    Ok(key)
}

/// The refusal class a vector states, against the one found here. sv2-codec refuses strings longer
/// than 64 characters before decoding them (`BASE58_TOO_LONG`); that limit is its own, not the
/// spec's, so for it any refusal is agreement.
fn refusal(result: Outcome, found: &str, stated: Option<&str>) -> Check {
    if result == Outcome::Valid {
        return Err(format!("valid, but refused here with {found}"));
    }
    match stated {
        Some("BASE58_TOO_LONG") => Ok(()),
        _ => eq("error class", Some(found), stated),
    }
}

fn accepted(result: Outcome, error: Option<&str>) -> Check {
    if result == Outcome::Invalid {
        return Err("invalid, but accepted here".into());
    }
    eq("error", error, None)
}

pub fn check_authority(t: &AuthorityKeyTest) -> Check {
    match authority_key(&t.base58) {
        Ok(key) => {
            accepted(t.result, t.error.as_deref())?;
            eq("publicKey", Some(hex::encode(key)), t.public_key.clone())?;
            let payload = [&[0x01, 0x00][..], &key].concat();
            eq("payload", Some(hex::encode(&payload)), t.payload.clone())?;
            eq(
                "re-encoding",
                base58check_encode(&payload),
                t.base58.clone(),
            )
        }
        Err(class) => refusal(t.result, class, t.error.as_deref()),
    }
}

pub fn check_secret(t: &SecretKeyTest) -> Check {
    let decoded = base58check_decode(&t.base58).and_then(|payload| {
        let bytes: [u8; 32] = payload.try_into().map_err(|_| "KEY_LENGTH")?;
        let scalar = secret_scalar(&bytes).ok_or("INVALID_SECRET_KEY")?;
        Ok((bytes, scalar))
    });
    match decoded {
        Ok((bytes, scalar)) => {
            accepted(t.result, t.error.as_deref())?;
            eq("secret", Some(hex::encode(bytes)), t.secret.clone())?;
            let public = xonly_public(&scalar);
            eq("publicKey", Some(hex::encode(public)), t.public_key.clone())?;
            eq(
                "publicKeyBase58",
                Some(base58check_encode(&[&[0x01, 0x00][..], &public].concat())),
                t.public_key_base58.clone(),
            )?;
            eq("re-encoding", base58check_encode(&bytes), t.base58.clone())
        }
        Err(class) => refusal(t.result, class, t.error.as_deref()),
    }
}

/// `stratum2+tcp://host:port[/authority key]`; an IPv6 host is written in brackets.
fn parse_url(url: &str) -> Result<(String, u16, Option<[u8; 32]>), &'static str> {
    let rest = url.strip_prefix("stratum2+tcp://").ok_or("URL")?;
    let (authority, key) = match rest.split_once('/') {
        Some((a, k)) => (a, Some(k)),
        None => (rest, None),
    };
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']').ok_or("URL")?;
        (host, after.strip_prefix(':').ok_or("URL")?)
    } else {
        let (host, port) = authority.split_once(':').ok_or("URL")?;
        if host.contains(':') {
            return Err("URL");
        }
        (host, port)
    };
    if host.is_empty() || port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err("URL");
    }
    let port: u16 = port.parse().map_err(|_| "URL")?;
    let key = key.map(authority_key).transpose()?;
    Ok((host.to_string(), port, key))
}

pub fn check_url(t: &UrlTest) -> Check {
    match parse_url(&t.url) {
        Ok((host, port, key)) => {
            accepted(t.result, t.error.as_deref())?;
            eq("host", Some(host), t.host.clone())?;
            eq("port", Some(port), t.port)?;
            eq("publicKey", key.map(hex::encode), t.public_key.clone())
        }
        Err(class) => refusal(t.result, class, t.error.as_deref()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base58_round_trips_with_leading_zeros() {
        for bytes in [
            vec![],
            vec![0],
            vec![0, 0, 1],
            vec![0xff; 40],
            vec![1, 0, 2],
        ] {
            assert_eq!(base58_decode(&base58_encode(&bytes)).unwrap(), bytes);
        }
        assert_eq!(base58_encode(&[0, 0, 57]), "11z");
        assert_eq!(base58_decode("0"), Err("BASE58_CHARACTER"));
    }
}
