//! authority_keys.json: authority public keys (spec §4.7), secret keys in the reference
//! implementation's configuration format, and stratum2+tcp:// URLs.

use sv2_codec::noise::keys::{base58check_encode, AuthorityPublicKey, SecretKey, Sv2Url};

use crate::classes::key_class;
use crate::gen_noise::{fixed, keypair};
use crate::model::{
    AuthorityKeyGroup, AuthorityKeyTest, Outcome, SecretKeyGroup, SecretKeyTest, TestGroup,
    UrlGroup, UrlTest,
};
use crate::{flags_of, gen_err, FileBuilder, GenerateError, VectorFile};

type R<T> = Result<T, GenerateError>;

/// Spec §4.7.1 (CATALOG §G.1).
pub(crate) const SPEC_XONLY: &str =
    "76637000979c1c11af0c300bcd8c7fe48610fce9b9c11e3daee35ae0b08a7455";
pub(crate) const SPEC_BASE58: &str = "9bXiEd8boQVhq7WddEcERUL5tyyJVFYdU8th3HfbNXK3Yw6GRXh";
/// The authority secret of the reference implementation's example configurations.
const SRI_EXAMPLE_SECRET: &str = "mkDLTBBRxdBv998612qipDYoTK3YUrqLe8uWw7gu3iXbSrn2n";

/// secp256k1's group order n.
const CURVE_ORDER: &str = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141";

fn authority_test(
    tc_id: u32,
    comment: &str,
    flags: &[&str],
    result: Outcome,
    base58: &str,
) -> R<AuthorityKeyTest> {
    let decoded = AuthorityPublicKey::from_base58(base58);
    let mut test = AuthorityKeyTest {
        tc_id,
        comment: comment.to_string(),
        flags: flags_of(flags),
        result,
        base58: base58.to_string(),
        public_key: None,
        payload: None,
        error: None,
    };
    match (result, decoded) {
        (Outcome::Valid, Ok(key)) => {
            test.public_key = Some(hex::encode(key.xonly()));
            test.payload = Some(format!("0100{}", hex::encode(key.xonly())));
        }
        (Outcome::Invalid, Err(e)) => test.error = Some(key_class(&e).to_string()),
        (_, other) => {
            return Err(gen_err(format!(
                "authority key tcId {tc_id} ({comment}): {other:?}"
            )))
        }
    }
    Ok(test)
}

pub(crate) fn build() -> R<VectorFile> {
    use Outcome::*;
    let mut b = FileBuilder::new(
        "SV2 authority keys, secret keys and URLs (spec §4.7)",
        "authority_keys.schema.json",
        &[
            "An authority public key is written base58check([0x01, 0x00] || x-only key): the prefix is the U16 LE version 1; the checksum is the first 4 bytes of SHA256(SHA256(payload)); Bitcoin's base58 alphabet.",
            "A secret key (the reference implementation's configuration format) is base58check(secret32), no prefix.",
            "A URL is stratum2+tcp://host:port/<authority key>; IPv6 hosts in brackets.",
        ],
    );

    let mut tests = Vec::new();
    tests.push(authority_test(
        b.id(),
        "the spec's vector (§4.7.1)",
        &["SpecVector"],
        Valid,
        SPEC_BASE58,
    )?);
    let spec_key = AuthorityPublicKey::from_hex(SPEC_XONLY).map_err(gen_err)?;
    if spec_key.to_base58() != SPEC_BASE58 {
        return Err(gen_err(
            "the spec's authority key does not encode to its base58",
        ));
    }
    for label in ["authority-1", "authority-2"] {
        let key = keypair(label)?.public;
        tests.push(authority_test(
            b.id(),
            &format!("fixed key {label} of noise_handshake.json"),
            &["Typical"],
            Valid,
            &key.to_base58(),
        )?);
    }
    let sri = SecretKey::from_base58(SRI_EXAMPLE_SECRET).map_err(gen_err)?;
    tests.push(authority_test(
        b.id(),
        "the public key of the reference implementation's example authority secret",
        &["Typical"],
        Valid,
        &AuthorityPublicKey::from_xonly(sri.xonly_public())
            .map_err(gen_err)?
            .to_base58(),
    )?);
    let mut last = SPEC_BASE58.to_string();
    let tail = if last.ends_with('h') { "i" } else { "h" };
    last.replace_range(last.len() - 1.., tail);
    tests.push(authority_test(
        b.id(),
        "the spec's key with its last character changed",
        &["BadChecksum"],
        Invalid,
        &last,
    )?);
    let mut swapped: Vec<char> = SPEC_BASE58.chars().collect();
    swapped.swap(10, 11);
    tests.push(authority_test(
        b.id(),
        "the spec's key with two characters swapped",
        &["BadChecksum"],
        Invalid,
        &swapped.into_iter().collect::<String>(),
    )?);
    for bad in ['0', 'O', 'I', 'l'] {
        let mut s = SPEC_BASE58.to_string();
        s.replace_range(5..6, &bad.to_string());
        tests.push(authority_test(
            b.id(),
            &format!("character {bad:?} (not in the base58 alphabet)"),
            &["BadCharacter"],
            Invalid,
            &s,
        )?);
    }
    let xonly = hex::decode(SPEC_XONLY).map_err(gen_err)?;
    let with_prefix = |prefix: &[u8], key: &[u8]| base58check_encode(&[prefix, key].concat());
    tests.push(authority_test(
        b.id(),
        "version prefix 02 00",
        &["BadVersion"],
        Invalid,
        &with_prefix(&[2, 0], &xonly),
    )?);
    tests.push(authority_test(
        b.id(),
        "version prefix 00 01 (the U16 1 written big-endian)",
        &["BadVersion"],
        Invalid,
        &with_prefix(&[0, 1], &xonly),
    )?);
    tests.push(authority_test(
        b.id(),
        "no version prefix: base58check of the 32-byte key",
        &["BadLength"],
        Invalid,
        &with_prefix(&[], &xonly),
    )?);
    tests.push(authority_test(
        b.id(),
        "31-byte key after the prefix",
        &["BadLength"],
        Invalid,
        &with_prefix(&[1, 0], &xonly[..31]),
    )?);
    tests.push(authority_test(
        b.id(),
        "33-byte key after the prefix (a compressed SEC1 key 02 || x)",
        &["BadLength"],
        Invalid,
        &with_prefix(&[1, 0], &[&[2u8][..], &xonly].concat()),
    )?);
    let mut not_on_curve = [0u8; 32];
    for x in 5u8..=255 {
        not_on_curve[31] = x;
        if AuthorityPublicKey::from_xonly(not_on_curve).is_err() {
            break;
        }
    }
    tests.push(authority_test(
        b.id(),
        &format!("x = {} is not on the curve", not_on_curve[31]),
        &["NotOnCurve"],
        Invalid,
        &with_prefix(&[1, 0], &not_on_curve),
    )?);
    tests.push(authority_test(
        b.id(),
        "65 characters: longer than any key",
        &["BadLength"],
        Invalid,
        &"2".repeat(65),
    )?);
    b.group(TestGroup::AuthorityKeyTest(AuthorityKeyGroup {
        description: "authority public keys: base58check([0x01, 0x00] || x-only key)".into(),
        tests,
    }));

    let mut tests = Vec::new();
    let mut secret_test =
        |comment: &str, flags: &[&str], result: Outcome, base58: String| -> R<()> {
            let tc_id = b.id();
            let mut test = SecretKeyTest {
                tc_id,
                comment: comment.to_string(),
                flags: flags_of(flags),
                result,
                base58,
                secret: None,
                public_key: None,
                public_key_base58: None,
                error: None,
            };
            match (result, SecretKey::from_base58(&test.base58)) {
                (Outcome::Valid, Ok(s)) => {
                    let public =
                        AuthorityPublicKey::from_xonly(s.xonly_public()).map_err(gen_err)?;
                    test.secret = Some(hex::encode(s.to_bytes()));
                    test.public_key = Some(hex::encode(public.xonly()));
                    test.public_key_base58 = Some(public.to_base58());
                }
                (Outcome::Invalid, Err(e)) => test.error = Some(key_class(&e).to_string()),
                (_, other) => return Err(gen_err(format!("secret key tcId {tc_id}: {other:?}"))),
            }
            tests.push(test);
            Ok(())
        };
    secret_test(
        "the reference implementation's example authority secret",
        &["Typical"],
        Valid,
        SRI_EXAMPLE_SECRET.to_string(),
    )?;
    secret_test(
        "fixed key authority-1 of noise_handshake.json",
        &["Typical"],
        Valid,
        base58check_encode(&fixed("authority-1")),
    )?;
    let mut one = [0u8; 32];
    one[31] = 1;
    secret_test(
        "secret 1: public key is the generator's x",
        &["EdgeValue"],
        Valid,
        base58check_encode(&one),
    )?;
    let order = hex::decode(CURVE_ORDER).map_err(gen_err)?;
    let mut n_minus_1 = order.clone();
    n_minus_1[31] -= 1;
    secret_test(
        "secret n - 1, the largest",
        &["EdgeValue"],
        Valid,
        base58check_encode(&n_minus_1),
    )?;
    secret_test(
        "secret 0",
        &["InvalidSecret"],
        Invalid,
        base58check_encode(&[0u8; 32]),
    )?;
    secret_test(
        "secret n, the curve order",
        &["InvalidSecret"],
        Invalid,
        base58check_encode(&order),
    )?;
    secret_test(
        "31-byte secret",
        &["BadLength"],
        Invalid,
        base58check_encode(&one[1..]),
    )?;
    let mut bad = SRI_EXAMPLE_SECRET.to_string();
    bad.replace_range(3..4, "E");
    secret_test(
        "the example secret with a character changed",
        &["BadChecksum"],
        Invalid,
        bad,
    )?;
    b.group(TestGroup::SecretKeyTest(SecretKeyGroup {
        description: "secret keys: base58check(secret32)".into(),
        tests,
    }));

    let mut tests = Vec::new();
    let mut url_test = |comment: &str, flags: &[&str], result: Outcome, url: String| -> R<()> {
        let tc_id = b.id();
        let mut test = UrlTest {
            tc_id,
            comment: comment.to_string(),
            flags: flags_of(flags),
            result,
            url,
            host: None,
            port: None,
            public_key: None,
            error: None,
        };
        match (result, test.url.parse::<Sv2Url>()) {
            (Outcome::Valid, Ok(u)) => {
                test.host = Some(u.host);
                test.port = Some(u.port);
                test.public_key = u.authority_key.map(|k| hex::encode(k.xonly()));
            }
            (Outcome::Invalid, Err(e)) => test.error = Some(key_class(&e).to_string()),
            (_, other) => return Err(gen_err(format!("url tcId {tc_id}: {other:?}"))),
        }
        tests.push(test);
        Ok(())
    };
    url_test(
        "the spec's example URL (§4.7.1)",
        &["Url", "SpecVector"],
        Valid,
        format!("stratum2+tcp://thepool.com:34254/{SPEC_BASE58}"),
    )?;
    url_test(
        "an IPv4 host",
        &["Url"],
        Valid,
        format!("stratum2+tcp://127.0.0.1:3333/{SPEC_BASE58}"),
    )?;
    url_test(
        "an IPv6 host in brackets",
        &["Url"],
        Valid,
        format!("stratum2+tcp://[::1]:34254/{SPEC_BASE58}"),
    )?;
    url_test(
        "no authority key: the certificate cannot be checked",
        &["Url"],
        Valid,
        "stratum2+tcp://thepool.com:34254".to_string(),
    )?;
    url_test(
        "no port",
        &["Url"],
        Invalid,
        format!("stratum2+tcp://thepool.com/{SPEC_BASE58}"),
    )?;
    url_test(
        "port 65536",
        &["Url"],
        Invalid,
        format!("stratum2+tcp://thepool.com:65536/{SPEC_BASE58}"),
    )?;
    url_test(
        "another scheme",
        &["Url"],
        Invalid,
        format!("stratum+tcp://thepool.com:3333/{SPEC_BASE58}"),
    )?;
    url_test(
        "an IPv6 host without brackets",
        &["Url"],
        Invalid,
        format!("stratum2+tcp://::1:34254/{SPEC_BASE58}"),
    )?;
    url_test(
        "a key with a bad checksum",
        &["Url", "BadChecksum"],
        Invalid,
        format!("stratum2+tcp://thepool.com:34254/{last}"),
    )?;
    b.group(TestGroup::UrlTest(UrlGroup {
        description: "stratum2+tcp://host:port/<authority key>".into(),
        tests,
    }));
    b.finish()
}
