//! The SV2 secure channel (spec §4, CATALOG §B.2 and §C): `Noise_NX_Secp256k1+EllSwift_ChaChaPoly_SHA256`.
//!
//! Sans-IO: nothing here reads a socket or a clock. Time is passed in as unix seconds, and randomness can
//! be passed in as bytes so that transcripts are reproducible.
//!
//! - [`keys`]: authority keys (base58check, spec §4.7), secret keys, key pairs, `stratum2+tcp://` URLs.
//! - [`cert`]: the SIGNATURE_NOISE_MESSAGE and the certificate it stands for: issue and verify.

pub mod cert;
pub mod keys;
