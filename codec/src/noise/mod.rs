//! The SV2 secure channel (spec §4, CATALOG §B.2 and §C): `Noise_NX_Secp256k1+EllSwift_ChaChaPoly_SHA256`.
//!
//! Sans-IO: nothing here reads a socket or a clock. Time is passed in as unix seconds, and randomness can
//! be passed in as bytes so that transcripts are reproducible.
//!
//! - [`keys`]: authority keys (base58check, spec §4.7), secret keys, key pairs, `stratum2+tcp://` URLs.
//! - [`cert`]: the SIGNATURE_NOISE_MESSAGE and the certificate it stands for: issue and verify.
//! - [`handshake`]: the NX handshake as sans-IO initiator and responder state machines, generic over
//!   the [`dh`] function (SV2: secp256k1 ElligatorSwift with BIP324 ECDH).
//! - [`aead`]: ChaCha20-Poly1305 tuned for short messages (RFC 8439 construction).
//! - [`symmetric`]: Noise CipherState / SymmetricState (MixHash, MixKey, EncryptAndHash, Split).
//! - [`transport`]: encrypted framing (22-byte header, 65535-byte blocks), in-place encryptor and
//!   incremental decryptor.
//! - [`keylog`]: the key log format (one line per session) and its parser.
//! - [`error`]: the error type, [`NoiseError`].

pub mod cert;
pub mod keys;

pub mod aead;
pub mod dh;
pub mod error;
pub mod handshake;
pub mod keylog;
pub mod symmetric;
pub mod transport;

pub use dh::{Dh, KeySeed, Role, Secp256k1EllSwift};
pub use error::{DecryptStep, NoiseError};
pub use handshake::{
    Established, HandshakeState, Initiator, InitiatorConfig, NxInitiator, NxResponder, Responder,
    ResponderConfig, TrafficKeys, ACT1_LEN, ACT2_LEN, SV2_PROTOCOL_NAME,
};
pub use keylog::KeyLogEntry;
pub use symmetric::{CipherState, SymmetricState, TraceStep};
pub use transport::{Decryptor, Encryptor, Transport};
