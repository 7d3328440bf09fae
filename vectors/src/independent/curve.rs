//! secp256k1 through RustCrypto's `k256` (pure Rust; sv2-codec uses libsecp256k1): x-only keys
//! (BIP340 `lift_x`), BIP340 verification, ElligatorSwift decoding (BIP324 `XSwiftEC`, written here
//! on k256's field arithmetic, which k256 lacks) and BIP324's x-only ECDH with its tagged hash.

use k256::elliptic_curve::point::{AffineCoordinates, DecompactPoint};
use k256::elliptic_curve::PrimeField;
use k256::schnorr::{Signature, VerifyingKey};
use k256::{AffinePoint, FieldBytes, FieldElement, NonZeroScalar, ProjectivePoint, Scalar};
use sha2::{Digest, Sha256};

/// p = 2^256 - 2^32 - 977, big-endian.
const P: [u8; 32] = {
    let mut p = [0xff; 32];
    p[27] = 0xfe;
    p[28] = 0xff;
    p[29] = 0xff;
    p[30] = 0xfc;
    p[31] = 0x2f;
    p
};

/// The point with x coordinate `x` and an even y (BIP340 `lift_x`), if `x` is a curve x below p.
pub fn lift_x(x: &[u8; 32]) -> Option<AffinePoint> {
    Option::from(AffinePoint::decompact(FieldBytes::from_slice(x)))
}

/// The secret scalar of 32 big-endian bytes, if it is in [1, n).
pub fn secret_scalar(secret: &[u8; 32]) -> Option<NonZeroScalar> {
    let scalar: Option<Scalar> = Scalar::from_repr(*FieldBytes::from_slice(secret)).into();
    Option::from(NonZeroScalar::new(scalar?))
}

/// x(secret · G), big-endian.
pub fn xonly_public(secret: &NonZeroScalar) -> [u8; 32] {
    let point = (ProjectivePoint::GENERATOR * secret.as_ref()).to_affine();
    point.x().into()
}

/// BIP340 verification of `signature` (R.x || s) over the 32-byte `message` by x-only `key`.
/// A key that is not a curve x, or an R or s out of range, is a failed verification.
pub fn bip340_verify(key: &[u8; 32], message: &[u8; 32], signature: &[u8; 64]) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(key) else {
        return false;
    };
    let Ok(signature) = Signature::try_from(signature.as_slice()) else {
        return false;
    };
    key.verify_raw(message, &signature).is_ok()
}

// ---------------------------------------------------------------------------------------------
// ElligatorSwift (BIP324)

/// Field arithmetic that keeps every value normalized (k256's lazy reduction tracks magnitudes; a
/// normalized value is always a valid operand).
fn fe(bytes: &[u8; 32]) -> FieldElement {
    // u and t are taken mod p; 2^256 < 2p, so one subtraction suffices.
    let mut value = *bytes;
    if value >= P {
        let mut borrow = 0i16;
        for i in (0..32).rev() {
            let d = i16::from(value[i]) - i16::from(P[i]) - borrow;
            borrow = i16::from(d < 0);
            value[i] = d.rem_euclid(256) as u8;
        }
    }
    Option::from(FieldElement::from_bytes(FieldBytes::from_slice(&value)))
        .expect("a value below p is a field element")
}

fn add(a: &FieldElement, b: &FieldElement) -> FieldElement {
    (*a + b).normalize()
}

fn neg(a: &FieldElement) -> FieldElement {
    a.normalize().negate(1).normalize()
}

fn sub(a: &FieldElement, b: &FieldElement) -> FieldElement {
    add(a, &neg(b))
}

fn mul(a: &FieldElement, b: &FieldElement) -> FieldElement {
    (a.normalize() * b.normalize()).normalize()
}

/// a / b, with b nonzero (every division of XSwiftEC is by a nonzero value).
fn div(a: &FieldElement, b: &FieldElement) -> FieldElement {
    let inverse = Option::<FieldElement>::from(b.normalize().invert())
        .expect("XSwiftEC divides by nonzero values only");
    mul(a, &inverse.normalize())
}

fn small(n: u64) -> FieldElement {
    FieldElement::from(n).normalize()
}

fn is_curve_x(x: &FieldElement) -> bool {
    let x3 = mul(&mul(x, x), x);
    Option::<FieldElement>::from(add(&x3, &small(7)).sqrt()).is_some()
}

/// BIP324 `XSwiftEC(u, t)`: the curve x coordinate a pair of field elements encodes.
fn xswiftec(u: FieldElement, t: FieldElement) -> FieldElement {
    let seven = small(7);
    let u = if bool::from(u.normalizes_to_zero()) {
        small(1)
    } else {
        u
    };
    let mut t = if bool::from(t.normalizes_to_zero()) {
        small(1)
    } else {
        t
    };
    let u3 = mul(&mul(&u, &u), &u);
    if bool::from(add(&add(&u3, &mul(&t, &t)), &seven).normalizes_to_zero()) {
        t = add(&t, &t);
    }
    // sqrt(-3) as BIP324's reference computes it: (-3)^((p+1)/4), which is what k256's sqrt returns.
    let minus3_sqrt = Option::<FieldElement>::from(neg(&small(3)).sqrt())
        .expect("-3 is a square mod p")
        .normalize();
    let x_big = div(&sub(&add(&u3, &seven), &mul(&t, &t)), &add(&t, &t));
    let y_big = div(&add(&x_big, &t), &mul(&minus3_sqrt, &u));
    let half = |v: FieldElement| div(&v, &small(2));
    let candidates = [
        add(&u, &mul(&small(4), &mul(&y_big, &y_big))),
        half(sub(&neg(&div(&x_big, &y_big)), &u)),
        half(sub(&div(&x_big, &y_big), &u)),
    ];
    candidates
        .into_iter()
        .find(is_curve_x)
        .expect("XSwiftEC always yields a curve x")
}

/// The x coordinate a 64-byte ElligatorSwift encoding (u || t) stands for.
pub fn ellswift_decode(encoding: &[u8; 64]) -> [u8; 32] {
    let u: [u8; 32] = encoding[..32].try_into().expect("32 bytes");
    let t: [u8; 32] = encoding[32..].try_into().expect("32 bytes");
    xswiftec(fe(&u), fe(&t)).to_bytes().into()
}

/// BIP324 `v2_ecdh`: x(secret · point(theirs)) hashed with the tag `bip324_ellswift_xonly_ecdh`
/// over (initiator's encoding || responder's encoding || x).
pub fn bip324_ecdh(
    secret: &NonZeroScalar,
    theirs: &[u8; 64],
    initiator: &[u8; 64],
    responder: &[u8; 64],
) -> [u8; 32] {
    let x = ellswift_decode(theirs);
    // x(d·P) does not depend on the sign of P's y, so the even-y lift is as good as any.
    let point = lift_x(&x).expect("ellswift_decode gives a curve x");
    let shared = k256::ecdh::diffie_hellman(secret, point);
    let tag = Sha256::digest(b"bip324_ellswift_xonly_ecdh");
    Sha256::new()
        .chain_update(tag)
        .chain_update(tag)
        .chain_update(initiator)
        .chain_update(responder)
        .chain_update(shared.raw_secret_bytes())
        .finalize()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_and_generator_are_the_published_values() {
        assert_eq!(
            hex::encode(Sha256::digest(b"bip324_ellswift_xonly_ecdh")),
            "98f15cda57c93e51b1aff022215ca652855bc791bad28d1ed7674c994004ae63"
        );
        let one = secret_scalar(&{
            let mut s = [0; 32];
            s[31] = 1;
            s
        })
        .unwrap();
        assert_eq!(
            hex::encode(xonly_public(&one)),
            "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
        );
        assert!(secret_scalar(&[0; 32]).is_none());
    }

    #[test]
    fn field_values_at_or_above_p_are_reduced() {
        assert_eq!(fe(&P).to_bytes(), small(0).to_bytes());
        assert_eq!(fe(&[0xff; 32]).to_bytes(), small(0x1_0000_03d0).to_bytes());
        // Every (u, t), even degenerate ones, decodes to some curve x.
        for encoding in [[0u8; 64], [0xff; 64]] {
            assert!(lift_x(&ellswift_decode(&encoding)).is_some());
        }
    }
}
