//! The Noise NX handshake as sans-IO state machines (spec §4.5, CATALOG §C).
//!
//! ```text
//! initiator                                        responder
//! Initiator::new(config, e) ─ write_act1() ─ 64 B ──▶ Responder::new(config, e)
//!                                                    read_act1(act1) ─▶ (act2, Established)
//! read_act2(act2, now) ◀──────────── 234 B ──────────
//!   └▶ Established (certificate checked: "act 3")
//! ```
//!
//! Message 1 (`-> e`): the initiator's ephemeral key, empty payload. Message 2
//! (`<- e, ee, s, es` + payload): the responder's ephemeral key, its encrypted static key and the
//! encrypted 74-byte SIGNATURE_NOISE_MESSAGE. Both end with `Split()`: c1 encrypts initiator ->
//! responder, c2 responder -> initiator.
//!
//! The machines are generic over the [`Dh`] function; SV2's [`Initiator`] and [`Responder`] are
//! [`NxInitiator`] and [`NxResponder`] over [`Secp256k1EllSwift`]. Randomness enters only through [`KeySeed`]s given to the constructors
//! (`generate` constructors draw them from the OS), and time only as the `now` argument (unix
//! seconds), so a transcript is reproducible. Any error moves the machine to a terminal failed state.

use super::cert::{SignatureNoiseMessage, ValidityPolicy, SIGNATURE_NOISE_MESSAGE_LEN};
use super::dh::{Dh, KeySeed, Role, Secp256k1EllSwift};
use super::error::{DecryptStep, NoiseError};
use super::keylog::KeyLogEntry;
use super::keys::{AuthorityPublicKey, Keypair, SecretKey};
use super::symmetric::{AuthFailed, SymmetricState, TraceStep, MAC_LEN};
use super::transport::{Decryptor, Encryptor, Transport};

/// The SV2 protocol name (45 bytes, hashed into the initial `h`).
pub const SV2_PROTOCOL_NAME: &str = "Noise_NX_Secp256k1+EllSwift_ChaChaPoly_SHA256";
/// Size of SV2 act 1: the initiator's ElligatorSwift ephemeral key.
pub const ACT1_LEN: usize = 64;
/// Size of SV2 act 2: `e (64) || enc(s) (64+16) || enc(SIGNATURE_NOISE_MESSAGE) (74+16)`.
pub const ACT2_LEN: usize = 234;

/// `Noise_NX_<DH>_ChaChaPoly_SHA256` for the DH function `D`.
pub fn protocol_name<D: Dh>() -> String {
    format!("Noise_NX_{}_ChaChaPoly_SHA256", D::NAME)
}

/// Size of act 1 for the DH function `D`.
pub const fn act1_len<D: Dh>() -> usize {
    D::PUBLIC_LEN
}

/// Size of act 2 for the DH function `D`.
pub const fn act2_len<D: Dh>() -> usize {
    2 * D::PUBLIC_LEN + MAC_LEN + SIGNATURE_NOISE_MESSAGE_LEN + MAC_LEN
}

/// Where a handshake state machine is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HandshakeState {
    /// Initiator: act 1 not written yet. Responder: waiting for act 1.
    Start,
    /// Initiator: act 1 written, waiting for act 2.
    WaitingAct2,
    /// The handshake completed and handed out its transport.
    Done,
    /// An error occurred; the machine refuses any further use.
    Failed,
}

impl HandshakeState {
    pub fn name(self) -> &'static str {
        match self {
            HandshakeState::Start => "start",
            HandshakeState::WaitingAct2 => "waiting for act 2",
            HandshakeState::Done => "done",
            HandshakeState::Failed => "failed",
        }
    }
}

/// The traffic keys of a session.
#[derive(Clone, PartialEq, Eq)]
pub struct TrafficKeys {
    /// Initiator -> responder.
    pub c1: [u8; 32],
    /// Responder -> initiator.
    pub c2: [u8; 32],
}

impl std::fmt::Debug for TrafficKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TrafficKeys(<redacted>)")
    }
}

/// What a completed handshake hands over.
#[derive(Debug, Clone)]
pub struct Established {
    /// This side's encryptor and decryptor.
    pub transport: Transport,
    /// The final handshake hash (channel binding).
    pub handshake_hash: [u8; 32],
    /// The initiator's ephemeral public key as sent in act 1 (the key log's lookup key).
    pub initiator_ephemeral: Vec<u8>,
    /// The responder's static public key as sent (encrypted) in act 2.
    pub responder_static: Vec<u8>,
    /// The certificate the responder sent.
    pub certificate: SignatureNoiseMessage,
    /// The 32 bytes the certificate signs for the responder's static key (x-only key for SV2).
    pub certified_key: [u8; 32],
    /// Initiator: true when the certificate was verified against a configured authority key (and
    /// its validity window); false when the initiator had no authority key and accepted it unchecked.
    /// Responder: always false (it does not verify its own certificate).
    pub authenticated: bool,
    /// Both traffic keys (for key logs).
    pub traffic_keys: TrafficKeys,
    /// The recorded trace (empty unless tracing was enabled).
    pub trace: Vec<TraceStep>,
}

impl Established {
    /// The key log line for this session (see [`super::keylog`]).
    pub fn key_log_entry(&self) -> KeyLogEntry {
        KeyLogEntry {
            initiator_ephemeral: self.initiator_ephemeral.clone(),
            handshake_hash: self.handshake_hash,
            c1: self.traffic_keys.c1,
            c2: self.traffic_keys.c2,
        }
    }
}

/// Initiator settings.
#[derive(Debug, Clone, Default)]
pub struct InitiatorConfig {
    /// The authority key the responder's certificate must be signed by. `None` accepts any
    /// certificate (it is still decrypted, parsed and reported) and yields an unauthenticated
    /// session.
    pub authority: Option<AuthorityPublicKey>,
    /// Clock skew allowed around the certificate's validity window.
    pub policy: ValidityPolicy,
    /// Record every intermediate `h` and `ck`.
    pub trace: bool,
}

impl InitiatorConfig {
    /// Verifies certificates against `authority` with the default policy.
    pub fn new(authority: AuthorityPublicKey) -> Self {
        InitiatorConfig {
            authority: Some(authority),
            ..Default::default()
        }
    }

    /// Accepts any certificate (unauthenticated session).
    pub fn unauthenticated() -> Self {
        InitiatorConfig::default()
    }

    pub fn with_trace(mut self, trace: bool) -> Self {
        self.trace = trace;
        self
    }

    pub fn with_policy(mut self, policy: ValidityPolicy) -> Self {
        self.policy = policy;
        self
    }
}

/// The SV2 initiator: [`NxInitiator`] over secp256k1 ElligatorSwift.
pub type Initiator = NxInitiator<Secp256k1EllSwift>;
/// The SV2 responder: [`NxResponder`] over secp256k1 ElligatorSwift.
pub type Responder = NxResponder<Secp256k1EllSwift>;

/// The initiator (client) side of the handshake, over the DH function `D`.
pub struct NxInitiator<D: Dh> {
    config: InitiatorConfig,
    sym: SymmetricState,
    e: D::Keypair,
    state: HandshakeState,
}

impl<D: Dh> std::fmt::Debug for NxInitiator<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Initiator")
            .field("state", &self.state)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<D: Dh> NxInitiator<D> {
    /// An initiator with the given ephemeral key seed (reproducible transcripts).
    pub fn new(config: InitiatorConfig, ephemeral: &KeySeed) -> Result<Self, NoiseError> {
        let e = D::keypair(ephemeral)?;
        Ok(Self::with_keypair(config, e))
    }

    /// An initiator with a fresh random ephemeral key.
    pub fn generate(config: InitiatorConfig) -> Result<Self, NoiseError> {
        Ok(Self::with_keypair(config, D::generate()?))
    }

    fn with_keypair(config: InitiatorConfig, e: D::Keypair) -> Self {
        let sym = SymmetricState::new(protocol_name::<D>().as_bytes(), &[], config.trace);
        NxInitiator {
            config,
            sym,
            e,
            state: HandshakeState::Start,
        }
    }

    pub fn state(&self) -> HandshakeState {
        self.state
    }

    /// The current handshake hash.
    pub fn handshake_hash(&self) -> [u8; 32] {
        self.sym.handshake_hash()
    }

    /// The trace so far (also available after a failure).
    pub fn trace(&self) -> &[TraceStep] {
        self.sym.trace()
    }

    /// The ephemeral public key act 1 carries.
    pub fn ephemeral_public(&self) -> &[u8] {
        D::public(&self.e)
    }

    /// Writes act 1: `MixHash(e)`, `EncryptAndHash(empty)`. Returns the bytes to send.
    pub fn write_act1(&mut self) -> Result<Vec<u8>, NoiseError> {
        self.guard("write_act1", HandshakeState::Start)?;
        let e_pub = D::public(&self.e).to_vec();
        self.sym.mix_hash("mix_hash(e)", &e_pub);
        let mut out = e_pub;
        if let Err(e) = self
            .sym
            .encrypt_and_hash("encrypt_and_hash(payload)", &[], &mut out)
        {
            self.state = HandshakeState::Failed;
            return Err(e);
        }
        self.sym.record("act1", &out);
        self.state = HandshakeState::WaitingAct2;
        Ok(out)
    }

    /// Reads act 2 and verifies the certificate at time `now` (unix seconds).
    pub fn read_act2(&mut self, act2: &[u8], now: u32) -> Result<Established, NoiseError> {
        self.guard("read_act2", HandshakeState::WaitingAct2)?;
        match self.read_act2_inner(act2, now) {
            Ok(done) => {
                self.state = HandshakeState::Done;
                Ok(done)
            }
            Err(e) => {
                self.state = HandshakeState::Failed;
                Err(e)
            }
        }
    }

    fn guard(&mut self, op: &'static str, want: HandshakeState) -> Result<(), NoiseError> {
        if self.state == want {
            return Ok(());
        }
        let err = if self.state == HandshakeState::Failed {
            NoiseError::Terminated
        } else {
            NoiseError::WrongState {
                op,
                state: self.state.name(),
            }
        };
        self.state = HandshakeState::Failed;
        Err(err)
    }

    fn read_act2_inner(&mut self, act2: &[u8], now: u32) -> Result<Established, NoiseError> {
        let expected = act2_len::<D>();
        if act2.len() != expected {
            return Err(NoiseError::WrongLength {
                what: "act 2",
                expected,
                got: act2.len(),
            });
        }
        self.sym.record("act2", act2);
        let (re, rest) = act2.split_at(D::PUBLIC_LEN);
        let (enc_s, enc_payload) = rest.split_at(D::PUBLIC_LEN + MAC_LEN);

        self.sym.mix_hash("mix_hash(re)", re);
        let ee = D::dh(&self.e, re, Role::Initiator)?;
        self.sym.mix_key("mix_key(ee)", &ee);

        let mut rs = Vec::with_capacity(D::PUBLIC_LEN);
        self.sym
            .decrypt_and_hash("decrypt_and_hash(s)", enc_s, &mut rs)
            .map_err(|e| handshake_auth_error(e, DecryptStep::Act2Static))?;
        let es = D::dh(&self.e, &rs, Role::Initiator)?;
        self.sym.mix_key("mix_key(es)", &es);

        let mut payload = Vec::with_capacity(SIGNATURE_NOISE_MESSAGE_LEN);
        self.sym
            .decrypt_and_hash("decrypt_and_hash(payload)", enc_payload, &mut payload)
            .map_err(|e| handshake_auth_error(e, DecryptStep::Act2Payload))?;

        // Act 3: the certificate, local only.
        let certificate = SignatureNoiseMessage::from_bytes(&payload)?;
        let certified_key = D::certified_key(&rs)?;
        let authenticated = match &self.config.authority {
            Some(authority) => {
                certificate.verify(&certified_key, authority, now, &self.config.policy)?;
                true
            }
            None => false,
        };

        let (c1, c2) = self.sym.split();
        let traffic_keys = TrafficKeys {
            c1: c1.key(),
            c2: c2.key(),
        };
        Ok(Established {
            transport: Transport {
                encryptor: Encryptor::new(c1),
                decryptor: Decryptor::new(c2),
            },
            handshake_hash: self.sym.handshake_hash(),
            initiator_ephemeral: D::public(&self.e).to_vec(),
            responder_static: rs,
            certificate,
            certified_key,
            authenticated,
            traffic_keys,
            trace: self.sym.take_trace(),
        })
    }
}

/// Responder settings.
#[derive(Debug, Clone)]
pub struct ResponderConfig {
    /// The static key: its secret and the aux bytes of its ElligatorSwift encoding.
    pub static_key: KeySeed,
    /// The certificate sent in act 2; it must sign this static key's x-only public key.
    pub certificate: SignatureNoiseMessage,
    /// Record every intermediate `h` and `ck`.
    pub trace: bool,
}

impl ResponderConfig {
    /// A responder with static key `static_key` presenting `certificate`. The static key's
    /// ElligatorSwift encoding uses all-zero aux bytes (it travels encrypted, so its randomization
    /// hides nothing); set `static_key.aux` to choose another.
    pub fn new(static_key: &SecretKey, certificate: SignatureNoiseMessage) -> Self {
        ResponderConfig {
            static_key: KeySeed::new(static_key.to_bytes(), [0; 32]),
            certificate,
            trace: false,
        }
    }

    /// A responder whose certificate is issued here by `authority` for `static_key` (version 0, as
    /// SRI), valid from `valid_from` to `not_valid_after`.
    pub fn issue(
        static_key: &SecretKey,
        authority: &Keypair,
        valid_from: u32,
        not_valid_after: u32,
    ) -> Self {
        let certificate = SignatureNoiseMessage::issue(
            0,
            valid_from,
            not_valid_after,
            &static_key.xonly_public(),
            authority,
            None,
        );
        Self::new(static_key, certificate)
    }

    pub fn with_trace(mut self, trace: bool) -> Self {
        self.trace = trace;
        self
    }
}

/// The responder (server) side of the handshake, over the DH function `D`.
pub struct NxResponder<D: Dh> {
    sym: SymmetricState,
    e: D::Keypair,
    s: D::Keypair,
    certificate: SignatureNoiseMessage,
    state: HandshakeState,
}

impl<D: Dh> std::fmt::Debug for NxResponder<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl<D: Dh> NxResponder<D> {
    /// A responder with the given ephemeral key seed (reproducible transcripts).
    pub fn new(config: ResponderConfig, ephemeral: &KeySeed) -> Result<Self, NoiseError> {
        let e = D::keypair(ephemeral)?;
        Self::with_keypair(config, e)
    }

    /// A responder with a fresh random ephemeral key.
    pub fn generate(config: ResponderConfig) -> Result<Self, NoiseError> {
        Self::with_keypair(config, D::generate()?)
    }

    fn with_keypair(config: ResponderConfig, e: D::Keypair) -> Result<Self, NoiseError> {
        let s = D::keypair(&config.static_key)?;
        Ok(NxResponder {
            sym: SymmetricState::new(protocol_name::<D>().as_bytes(), &[], config.trace),
            e,
            s,
            certificate: config.certificate,
            state: HandshakeState::Start,
        })
    }

    pub fn state(&self) -> HandshakeState {
        self.state
    }

    /// The current handshake hash.
    pub fn handshake_hash(&self) -> [u8; 32] {
        self.sym.handshake_hash()
    }

    /// The trace so far (also available after a failure).
    pub fn trace(&self) -> &[TraceStep] {
        self.sym.trace()
    }

    /// The static public key act 2 carries (encrypted).
    pub fn static_public(&self) -> &[u8] {
        D::public(&self.s)
    }

    /// Reads act 1 and writes act 2. Returns the act 2 bytes to send and the established session.
    pub fn read_act1(&mut self, act1: &[u8]) -> Result<(Vec<u8>, Established), NoiseError> {
        if self.state != HandshakeState::Start {
            let err = if self.state == HandshakeState::Failed {
                NoiseError::Terminated
            } else {
                NoiseError::WrongState {
                    op: "read_act1",
                    state: self.state.name(),
                }
            };
            self.state = HandshakeState::Failed;
            return Err(err);
        }
        match self.read_act1_inner(act1) {
            Ok(done) => {
                self.state = HandshakeState::Done;
                Ok(done)
            }
            Err(e) => {
                self.state = HandshakeState::Failed;
                Err(e)
            }
        }
    }

    fn read_act1_inner(&mut self, act1: &[u8]) -> Result<(Vec<u8>, Established), NoiseError> {
        if act1.len() != D::PUBLIC_LEN {
            return Err(NoiseError::WrongLength {
                what: "act 1",
                expected: D::PUBLIC_LEN,
                got: act1.len(),
            });
        }
        self.sym.record("act1", act1);
        self.sym.mix_hash("mix_hash(re)", act1);
        let mut empty = Vec::new();
        self.sym
            .decrypt_and_hash("decrypt_and_hash(payload)", &[], &mut empty)
            .map_err(|e| handshake_auth_error(e, DecryptStep::Act2Payload))?;

        let mut out = Vec::with_capacity(act2_len::<D>());
        let e_pub = D::public(&self.e);
        out.extend_from_slice(e_pub);
        self.sym.mix_hash("mix_hash(e)", e_pub);
        let ee = D::dh(&self.e, act1, Role::Responder)?;
        self.sym.mix_key("mix_key(ee)", &ee);
        let s_pub = D::public(&self.s).to_vec();
        self.sym
            .encrypt_and_hash("encrypt_and_hash(s)", &s_pub, &mut out)?;
        let es = D::dh(&self.s, act1, Role::Responder)?;
        self.sym.mix_key("mix_key(es)", &es);
        let cert = self.certificate.to_bytes();
        self.sym
            .encrypt_and_hash("encrypt_and_hash(payload)", &cert, &mut out)?;
        self.sym.record("act2", &out);

        let (c1, c2) = self.sym.split();
        let traffic_keys = TrafficKeys {
            c1: c1.key(),
            c2: c2.key(),
        };
        let established = Established {
            transport: Transport {
                encryptor: Encryptor::new(c2),
                decryptor: Decryptor::new(c1),
            },
            handshake_hash: self.sym.handshake_hash(),
            initiator_ephemeral: act1.to_vec(),
            responder_static: s_pub,
            certificate: self.certificate,
            certified_key: D::certified_key(D::public(&self.s))?,
            authenticated: false,
            traffic_keys,
            trace: self.sym.take_trace(),
        };
        Ok((out, established))
    }
}

fn handshake_auth_error(e: AuthFailed, step: DecryptStep) -> NoiseError {
    match e {
        AuthFailed::Tag => NoiseError::Decrypt { step },
        AuthFailed::NonceExhausted => NoiseError::NonceExhausted,
    }
}
