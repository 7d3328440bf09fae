//! SRI's Noise side for interop tests and benches: `noise_sv2` 2.0.0 handshakes and `codec_sv2` 7.0.0's
//! `NoiseEncoder` / `NoiseDecoder` transport, wrapped in byte-in / byte-out calls. Every SRI call runs
//! under `catch_unwind`: a panic is [`SriNoiseError::Panic`].

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use codec_sv2::{
    Decrypted, Handshake, InitiatorSent, NoiseDecoder, NoiseEncoder, Transport,
    TransportDecryptState, TransportEncryptState,
};
use framing_sv2::framing::SerializedFrame;
use noise_sv2::{Initiator, Responder, ELLSWIFT_ENCODING_SIZE};
use sv2_codec::noise::keys::{AuthorityPublicKey, Keypair, SecretKey};

/// SRI's test authority key pair (public, with the [0x01, 0x00] prefix in base58check).
pub const TEST_AUTHORITY_PUBLIC: &str = "9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH72";
/// SRI's test authority secret (base58check, no prefix).
pub const TEST_AUTHORITY_SECRET: &str = "mkDLTBBRxdBv998612qipDYoTK3YUrqLe8uWw7gu3iXbSrn2n";

/// The test authority key pair, parsed with our key module.
pub fn test_authority() -> Keypair {
    let secret = SecretKey::from_base58(TEST_AUTHORITY_SECRET).expect("valid test secret");
    let kp = Keypair::from_secret(secret);
    let public = AuthorityPublicKey::from_base58(TEST_AUTHORITY_PUBLIC).expect("valid test key");
    assert_eq!(kp.public, public, "the test key pair does not match");
    kp
}

/// What went wrong on SRI's side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SriNoiseError {
    /// SRI returned an error (its `Debug` text).
    Sri(String),
    /// A handshake message of the wrong size for SRI's fixed-size API.
    Length { expected: usize, got: usize },
    /// SRI panicked.
    Panic(String),
    /// The state was lost in an earlier error.
    Gone,
}

impl fmt::Display for SriNoiseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SriNoiseError::Sri(e) => write!(f, "SRI error: {e}"),
            SriNoiseError::Length { expected, got } => {
                write!(f, "SRI needs {expected} bytes, got {got}")
            }
            SriNoiseError::Panic(p) => write!(f, "SRI panicked: {p}"),
            SriNoiseError::Gone => f.write_str("SRI state lost in an earlier error"),
        }
    }
}

impl std::error::Error for SriNoiseError {}

fn catch<T>(f: impl FnOnce() -> Result<T, SriNoiseError>) -> Result<T, SriNoiseError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => Err(SriNoiseError::Panic(
            payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".into()),
        )),
    }
}

fn sri<E: fmt::Debug>(e: E) -> SriNoiseError {
    SriNoiseError::Sri(format!("{e:?}"))
}

fn fixed<const N: usize>(bytes: &[u8]) -> Result<[u8; N], SriNoiseError> {
    bytes.try_into().map_err(|_| SriNoiseError::Length {
        expected: N,
        got: bytes.len(),
    })
}

/// SRI's initiator after act 1.
#[derive(Debug)]
pub struct SriInitiator {
    state: Handshake<InitiatorSent>,
}

impl SriInitiator {
    /// `Initiator::from_raw_k(authority)` then `step_0`: returns the initiator and act 1 (64 bytes).
    pub fn start(authority_xonly: [u8; 32]) -> Result<(Self, Vec<u8>), SriNoiseError> {
        catch(|| {
            let role = Initiator::from_raw_k(authority_xonly).map_err(sri)?;
            let (msg, state) = Handshake::initiator(role).step_0().map_err(sri)?;
            Ok((SriInitiator { state }, msg.payload().to_vec()))
        })
    }

    /// `step_2_with_now(act2, now)`: verifies the certificate and yields the transport.
    pub fn finish(self, act2: &[u8], now: u32) -> Result<SriTransport, SriNoiseError> {
        catch(|| {
            let msg = fixed::<{ noise_sv2::INITIATOR_EXPECTED_HANDSHAKE_MESSAGE_SIZE }>(act2)?;
            let transport = self.state.step_2_with_now(msg, now).map_err(sri)?;
            Ok(SriTransport::new(transport))
        })
    }
}

/// SRI's responder, built from an authority key pair as its pool does.
#[derive(Debug)]
pub struct SriResponder {
    state: Handshake<Responder>,
}

impl SriResponder {
    /// `Responder::from_authority_kp(public, secret, validity)`. SRI draws the static and ephemeral keys
    /// itself and issues a certificate valid from the system time for `validity`.
    pub fn new(authority: &Keypair, validity: Duration) -> Result<Self, SriNoiseError> {
        catch(|| {
            let role = Responder::from_authority_kp(
                &authority.public.xonly(),
                &authority.secret.to_bytes(),
                validity,
            )
            .map_err(sri)?;
            Ok(SriResponder {
                state: Handshake::responder(role),
            })
        })
    }

    /// `step_1(act1)`: returns act 2 (234 bytes) and the transport.
    pub fn respond(self, act1: &[u8]) -> Result<(Vec<u8>, SriTransport), SriNoiseError> {
        catch(|| {
            let msg = fixed::<ELLSWIFT_ENCODING_SIZE>(act1)?;
            let (act2, transport) = self.state.step_1(msg).map_err(sri)?;
            Ok((act2.payload().to_vec(), SriTransport::new(transport)))
        })
    }
}

/// SRI's transport: encrypt plain frames with `NoiseEncoder`, decrypt wire bytes with `NoiseDecoder`.
pub struct SriTransport {
    encoder: NoiseEncoder,
    enc_state: TransportEncryptState,
    decoder: NoiseDecoder,
    dec_state: Option<TransportDecryptState>,
    pending: Vec<u8>,
}

impl fmt::Debug for SriTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SriTransport")
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl SriTransport {
    fn new(transport: Transport) -> Self {
        let (enc_state, dec_state) = transport.split();
        SriTransport {
            encoder: NoiseEncoder::new(),
            enc_state,
            decoder: NoiseDecoder::new(),
            dec_state: Some(dec_state),
            pending: Vec::new(),
        }
    }

    /// Encrypts one plain frame (`header || payload`) with `NoiseEncoder::encode_transport`.
    pub fn encrypt(&mut self, plain_frame: &[u8]) -> Result<Vec<u8>, SriNoiseError> {
        catch(|| {
            let frame = SerializedFrame::from_bytes(plain_frame.to_vec()).map_err(sri)?;
            let wire = self
                .encoder
                .encode_transport(frame, &mut self.enc_state)
                .map_err(sri)?;
            Ok(wire.as_slice().to_vec())
        })
    }

    /// Encrypts an owned plain frame and hands the wire bytes to `f` without copying them out of SRI's
    /// buffer (SRI's API takes the frame by value: the `Vec` is the caller's, as in SRI's roles). For
    /// benchmarks: the lean path, with no copy that SRI itself would not make.
    pub fn encrypt_with<R>(
        &mut self,
        plain_frame: Vec<u8>,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, SriNoiseError> {
        let frame = SerializedFrame::from_bytes(plain_frame).map_err(sri)?;
        let wire = self
            .encoder
            .encode_transport(frame, &mut self.enc_state)
            .map_err(sri)?;
        Ok(f(wire.as_slice()))
    }

    /// Decrypts wire bytes holding whole frames, copying each window SRI asks for straight into its
    /// `writable()` buffer (what a socket read does), and returns how many frames completed and their
    /// total plain length. For benchmarks: no `pending` staging, no copy of the plain frames.
    pub fn decrypt_whole(&mut self, mut wire: &[u8]) -> Result<(usize, usize), SriNoiseError> {
        let (mut frames, mut bytes) = (0, 0);
        while !wire.is_empty() {
            let need = self.decoder.writable_len();
            if need == 0 || need > wire.len() {
                return Err(SriNoiseError::Sri(format!(
                    "decoder asks for {need} bytes, {} left",
                    wire.len()
                )));
            }
            let state = self.dec_state.take().ok_or(SriNoiseError::Gone)?;
            self.decoder.writable().copy_from_slice(&wire[..need]);
            wire = &wire[need..];
            match self.decoder.next_transport_frame(state).map_err(sri)? {
                Decrypted::Frame(frame, next) => {
                    frames += 1;
                    bytes += frame.as_bytes().len();
                    self.dec_state = Some(next);
                }
                Decrypted::Incomplete(_, next) => self.dec_state = Some(next),
            }
        }
        Ok((frames, bytes))
    }

    /// Feeds `wire` to `NoiseDecoder` and returns every plain frame (`header || payload`) completed.
    ///
    /// SRI's `writable()` hands out a window of exactly the size it expects next and counts the whole
    /// window as received, so bytes are fed only in windows of that size; a shorter remainder waits in
    /// `pending` for the next call.
    pub fn decrypt(&mut self, wire: &[u8]) -> Result<Vec<Vec<u8>>, SriNoiseError> {
        self.pending.extend_from_slice(wire);
        let mut used = 0;
        let result = catch(|| {
            let mut frames = Vec::new();
            loop {
                let need = self.decoder.writable_len();
                if need == 0 {
                    return Err(SriNoiseError::Sri("decoder asks for 0 bytes".into()));
                }
                if self.pending.len() - used < need {
                    return Ok(frames);
                }
                let state = self.dec_state.take().ok_or(SriNoiseError::Gone)?;
                self.decoder
                    .writable()
                    .copy_from_slice(&self.pending[used..used + need]);
                used += need;
                match self.decoder.next_transport_frame(state).map_err(sri)? {
                    Decrypted::Frame(frame, next) => {
                        frames.push(frame.as_bytes().to_vec());
                        self.dec_state = Some(next);
                    }
                    Decrypted::Incomplete(_, next) => self.dec_state = Some(next),
                }
            }
        });
        self.pending.drain(..used);
        result
    }
}
