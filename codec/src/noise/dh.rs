//! The DH function the handshake runs over.
//!
//! SV2 uses [`Secp256k1EllSwift`]: 64-byte BIP324 ElligatorSwift public keys, and ECDH = BIP324
//! `v2_ecdh`, whose output hashes both parties' encodings in initiator-then-responder order (so the
//! caller's [`Role`] matters). The [`Dh`] trait lets the very same symmetric-state and handshake code
//! run over another curve, e.g. Curve25519 against an independent Noise library in tests.

use secp256k1::ellswift::{ElligatorSwift, Party};
use secp256k1::{PublicKey, Secp256k1, SecretKey as SecpSecretKey};

use super::error::NoiseError;

/// Which side of the handshake calls DH.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Initiator,
    Responder,
}

/// The inputs that determine a key pair: a 32-byte secret and, for encodings that are randomized
/// (ElligatorSwift), 32 auxiliary random bytes. Fixing both makes a handshake reproducible.
#[derive(Clone, PartialEq, Eq)]
pub struct KeySeed {
    pub secret: [u8; 32],
    pub aux: [u8; 32],
}

impl std::fmt::Debug for KeySeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySeed").finish_non_exhaustive()
    }
}

impl KeySeed {
    pub fn new(secret: [u8; 32], aux: [u8; 32]) -> Self {
        KeySeed { secret, aux }
    }

    /// 64 bytes from the operating system's random source.
    pub fn random() -> Result<Self, NoiseError> {
        let mut bytes = [0u8; 64];
        getrandom::fill(&mut bytes).map_err(|_| NoiseError::Randomness)?;
        let mut secret = [0u8; 32];
        let mut aux = [0u8; 32];
        secret.copy_from_slice(&bytes[..32]);
        aux.copy_from_slice(&bytes[32..]);
        Ok(KeySeed { secret, aux })
    }
}

/// A Diffie-Hellman function for Noise, with its public key encoding.
pub trait Dh {
    /// The DH name inside the Noise protocol name (`Noise_NX_<NAME>_ChaChaPoly_SHA256`).
    const NAME: &'static str;
    /// The length of a public key on the wire.
    const PUBLIC_LEN: usize;
    /// A secret key together with its public encoding.
    type Keypair: Clone + std::fmt::Debug;

    /// Builds a key pair from a seed; fails with [`NoiseError::InvalidKey`] if the secret is not a
    /// valid private key.
    fn keypair(seed: &KeySeed) -> Result<Self::Keypair, NoiseError>;

    /// The public key as sent on the wire (`PUBLIC_LEN` bytes).
    fn public(keypair: &Self::Keypair) -> &[u8];

    /// `DH(ours, theirs)` for the given role. `theirs` is exactly `PUBLIC_LEN` bytes (the handshake
    /// checks lengths before calling).
    fn dh(ours: &Self::Keypair, theirs: &[u8], role: Role) -> Result<[u8; 32], NoiseError>;

    /// The 32 bytes a SV2 certificate signs for the static public key `public` (for secp256k1: the
    /// x-only key of the point the encoding stands for).
    fn certified_key(public: &[u8]) -> Result<[u8; 32], NoiseError>;

    /// A fresh random key pair.
    fn generate() -> Result<Self::Keypair, NoiseError> {
        // A uniformly random 32-byte string is an invalid secp256k1 scalar with probability about
        // 2^-128: a few attempts are plenty, and a bounded loop cannot hang on a broken source.
        let mut last = NoiseError::InvalidKey("no valid key from the random source");
        for _ in 0..8 {
            match Self::keypair(&KeySeed::random()?) {
                Ok(kp) => return Ok(kp),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

/// The SV2 DH: secp256k1 with 64-byte ElligatorSwift public keys and BIP324 `v2_ecdh`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Secp256k1EllSwift;

/// A secp256k1 secret key with the ElligatorSwift encoding of its public key.
#[derive(Clone)]
pub struct EllSwiftKeypair {
    secret: SecpSecretKey,
    encoding: [u8; 64],
}

impl std::fmt::Debug for EllSwiftKeypair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EllSwiftKeypair")
            .field("encoding", &hex::encode(self.encoding))
            .finish_non_exhaustive()
    }
}

impl EllSwiftKeypair {
    /// The 64-byte ElligatorSwift encoding `u || t`.
    pub fn encoding(&self) -> [u8; 64] {
        self.encoding
    }

    /// The x-only public key (what a certificate signs).
    pub fn xonly_public(&self) -> [u8; 32] {
        let secp = Secp256k1::signing_only();
        self.secret.x_only_public_key(&secp).0.serialize()
    }
}

impl Dh for Secp256k1EllSwift {
    const NAME: &'static str = "Secp256k1+EllSwift";
    const PUBLIC_LEN: usize = 64;
    type Keypair = EllSwiftKeypair;

    fn keypair(seed: &KeySeed) -> Result<EllSwiftKeypair, NoiseError> {
        let secret = SecpSecretKey::from_byte_array(seed.secret)
            .map_err(|_| NoiseError::InvalidKey("secret is not a valid secp256k1 scalar"))?;
        let secp = Secp256k1::new();
        let encoding = ElligatorSwift::from_seckey(&secp, secret, Some(seed.aux)).to_array();
        Ok(EllSwiftKeypair { secret, encoding })
    }

    fn public(keypair: &EllSwiftKeypair) -> &[u8] {
        &keypair.encoding
    }

    fn dh(ours: &EllSwiftKeypair, theirs: &[u8], role: Role) -> Result<[u8; 32], NoiseError> {
        let theirs: [u8; 64] = theirs.try_into().map_err(|_| NoiseError::WrongLength {
            what: "ElligatorSwift public key",
            expected: 64,
            got: theirs.len(),
        })?;
        // Every 64-byte string decodes to a curve point (BIP324), so there is no invalid input here.
        let ours_es = ElligatorSwift::from_array(ours.encoding);
        let theirs_es = ElligatorSwift::from_array(theirs);
        // secp256k1_ellswift_xdh hashes (A's encoding, B's encoding, x) where A is the initiator.
        let (a, b, party) = match role {
            Role::Initiator => (ours_es, theirs_es, Party::Initiator),
            Role::Responder => (theirs_es, ours_es, Party::Responder),
        };
        Ok(ElligatorSwift::shared_secret(a, b, ours.secret, party, None).to_secret_bytes())
    }

    fn certified_key(public: &[u8]) -> Result<[u8; 32], NoiseError> {
        let encoding: [u8; 64] = public.try_into().map_err(|_| NoiseError::WrongLength {
            what: "ElligatorSwift public key",
            expected: 64,
            got: public.len(),
        })?;
        let point = PublicKey::from_ellswift(ElligatorSwift::from_array(encoding));
        Ok(point.x_only_public_key().0.serialize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::symmetric::sha256;

    fn kp(secret: u8, aux: u8) -> EllSwiftKeypair {
        Secp256k1EllSwift::keypair(&KeySeed::new([secret; 32], [aux; 32])).unwrap()
    }

    #[test]
    fn invalid_scalars_are_refused() {
        assert!(matches!(
            Secp256k1EllSwift::keypair(&KeySeed::new([0; 32], [0; 32])),
            Err(NoiseError::InvalidKey(_))
        ));
        assert!(matches!(
            Secp256k1EllSwift::keypair(&KeySeed::new([0xff; 32], [0; 32])),
            Err(NoiseError::InvalidKey(_))
        ));
    }

    #[test]
    fn encoding_depends_on_aux_but_decodes_to_the_same_key() {
        let a = kp(1, 1);
        let b = kp(1, 2);
        assert_ne!(a.encoding(), b.encoding());
        assert_eq!(
            Secp256k1EllSwift::certified_key(&a.encoding()).unwrap(),
            Secp256k1EllSwift::certified_key(&b.encoding()).unwrap()
        );
        assert_eq!(
            Secp256k1EllSwift::certified_key(&a.encoding()).unwrap(),
            a.xonly_public()
        );
        // Secret 1 is the generator: x(G).
        let mut one = [0u8; 32];
        one[31] = 1;
        let g = Secp256k1EllSwift::keypair(&KeySeed::new(one, [0; 32])).unwrap();
        assert_eq!(
            hex::encode(Secp256k1EllSwift::certified_key(&g.encoding()).unwrap()),
            "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
        );
    }

    #[test]
    fn ecdh_agrees_and_is_bip324_v2_ecdh() {
        let i = kp(3, 4);
        let r = kp(5, 6);
        let from_i = Secp256k1EllSwift::dh(&i, &r.encoding(), Role::Initiator).unwrap();
        let from_r = Secp256k1EllSwift::dh(&r, &i.encoding(), Role::Responder).unwrap();
        assert_eq!(from_i, from_r);
        // Same role on both sides gives a different (wrong) secret: the role is part of the hash.
        let wrong = Secp256k1EllSwift::dh(&r, &i.encoding(), Role::Initiator).unwrap();
        assert_ne!(wrong, from_i);

        // Recompute by hand: tagged_hash(ell_i || ell_r || x) with the BIP324 tag.
        let tag = sha256(&[b"bip324_ellswift_xonly_ecdh"]);
        assert_eq!(
            hex::encode(tag),
            "98f15cda57c93e51b1aff022215ca652855bc791bad28d1ed7674c994004ae63"
        );
        let secp = Secp256k1::new();
        let r_point = PublicKey::from_ellswift(ElligatorSwift::from_array(r.encoding()));
        let shared = r_point.mul_tweak(&secp, &i.secret.into()).unwrap();
        let x = &shared.serialize()[1..];
        let expected = sha256(&[&tag, &tag, &i.encoding(), &r.encoding(), x]);
        assert_eq!(from_i, expected);
    }

    #[test]
    fn wrong_public_length_is_an_error() {
        let i = kp(3, 4);
        assert!(matches!(
            Secp256k1EllSwift::dh(&i, &[0; 63], Role::Initiator),
            Err(NoiseError::WrongLength {
                expected: 64,
                got: 63,
                ..
            })
        ));
        assert!(Secp256k1EllSwift::certified_key(&[0; 65]).is_err());
    }

    #[test]
    fn any_64_bytes_are_a_usable_encoding() {
        let i = kp(3, 4);
        for fill in [0x00u8, 0xff, 0x80] {
            assert!(Secp256k1EllSwift::dh(&i, &[fill; 64], Role::Initiator).is_ok());
            assert!(Secp256k1EllSwift::certified_key(&[fill; 64]).is_ok());
        }
    }
}
