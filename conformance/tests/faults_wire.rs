//! Every transport, setup, extension and monitor check shown able to fail: each runs against a pool
//! broken in exactly the way the check is about, and must fail there.
//!
//! Two kinds of broken pool: our mock pool with a faulty configuration (plaintext, a certificate from
//! another authority, an expired certificate), and `Broken`, a small scripted pool below: correct by
//! default (it passes the checks it is used for, which each test also shows), with one fault switched
//! on per test.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{mock_pool, run_only};
use sv2_codec::messages::common::{SetupConnectionError, SetupConnectionSuccess};
use sv2_codec::messages::extensions::{RequestExtensionsError, RequestExtensionsSuccess};
use sv2_codec::messages::mining::{
    NewExtendedMiningJob, NewMiningJob, OpenExtendedMiningChannelSuccess, OpenMiningChannelError,
    OpenStandardMiningChannelSuccess, SetCustomMiningJobError, SetCustomMiningJobSuccess,
    SetExtranoncePrefix, SetGroupChannel, SetNewPrevHash, SetTarget, SubmitSharesError,
    SubmitSharesSuccess,
};
use sv2_codec::noise::keys::{AuthorityPublicKey, Keypair, SecretKey};
use sv2_codec::noise::ResponderConfig;
use sv2_codec::types::{Seq0_255, Seq0_64K, Str0_255, B0_32, B0_64K, U256};
use sv2_codec::{decode_frame, to_frame_bytes, Frame, Message};
use sv2_conformance::runner::CheckResult;
use sv2_conformance::{Security, Target, Verdict};
use sv2_wire::{unix_now, Connection, KeyLog, NetError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One thing the scripted pool gets wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    /// A certificate that expired an hour ago.
    ExpiredCertificate,
    /// Act 2 of 170 bytes (the spec's old figure) instead of 234.
    ShortAct2,
    /// A frame that fails its MAC is ignored; the connection stays open.
    IgnoreMacFailure,
    /// Frames over 65519 bytes make it close.
    CloseOnLargeFrame,
    /// The first connection that sends fewer than 64 bytes stops the listener.
    DiesOnBrokenHandshake,
    /// SetupConnection is never answered.
    SilentSetup,
    /// SetupConnection.Error lists only the lowest unsupported flag, not the full set.
    PartialFlagList,
    /// Any SetupConnection (any protocol, version, flags, malformed or not) gets .Success with
    /// used_version = min_version; channels are served before setup too.
    Lenient,
    /// An unknown extension's message closes the connection.
    CloseOnUnknownExtension,
    /// RequestExtensions answered with the wrong request_id.
    WrongExtensionsRequestId,
    /// RequestExtensions.Success for extensions it does not support.
    ExtensionsAlwaysSuccess,
    /// RequestExtensions closes the connection.
    CloseOnRequestExtensions,
    /// No extension 0x0001: RequestExtensions is ignored (correct, §3.4.1).
    NoExtensions,
    /// Channel messages it sends have the channel_msg bit cleared.
    ChannelBitCleared,
    /// SetTarget for a channel that does not exist.
    UnknownChannelId,
    /// A SetTarget before SetupConnection.Success.
    SpeaksBeforeSetup,
    /// .Success with used_version 3 to a client offering [2, 2].
    UsedVersionOutOfRange,
    /// Error codes with control characters.
    ControlCharacterCodes,
    /// Open*.Success with request_id + 1.
    WrongRequestId,
    /// extranonce_size below the requested minimum.
    SmallExtranonce,
    /// extranonce_size 40: more than a share's B0_32 extranonce can carry.
    HugeExtranonce,
    /// A NewMiningJob to the extended channel.
    StandardJobToExtended,
    /// The coinbase keeps its BIP141 marker and flag.
    SegwitCoinbase,
    /// SetExtranoncePrefix to the group id.
    PrefixToGroup,
    /// Its extended channels in a group, and a SetExtranoncePrefix to the channel (correct).
    PrefixToChannel,
    /// SubmitShares.Success counting two shares for one.
    DoubleCount,
    /// Each SubmitShares.Error sent twice.
    DoubleError,
    /// Extended channels of one group with different extranonce lengths.
    GroupLengthMismatch,
    /// A SetTarget one byte short (msg_length says so too): a frame that does not decode.
    MalformedFrame,
    /// .Success sets REQUIRES_FIXED_VERSION, yet extended jobs allow version rolling.
    FixedVersionRollingJobs,
    /// .Success sets REQUIRES_FIXED_VERSION and extended jobs forbid rolling (correct).
    FixedVersion,
    /// SubmitSharesExtended frames that do not decode (a 33-byte extranonce, a 33-byte
    /// user_identity TLV) are accepted.
    LenientShares,
    /// A frame carrying TLVs closes the connection.
    CloseOnTlv,
    /// Its first frame is encrypted with nonce 1 instead of 0.
    NonceSkipped,
    /// RequestExtensions.Error lists extension 0x0003 as required, and the connection is closed when
    /// the client goes on without it (correct).
    RequiresExtension,
    /// The same list, but the client is served anyway.
    RequiresExtensionButServes,
    /// An act 1 whose first byte is below 0x20 gets no act 2 (a server sniffing the first byte to
    /// tell SV1, SV2 and HTTP apart: one real pool does this for a few percent of random keys).
    SniffsFirstByte,
    /// The first connection's act 1 gets no act 2; later ones are served.
    LosesFirstHandshake,
    /// Correct, but it closes every connection past the 40th at once (a connection limit).
    LimitsConnections,
    /// SetupConnection with undefined flags gets .Error with flags 0 (refused for another reason,
    /// 03:271): legal.
    RefusesAsideFromFlags,
    /// SetCustomMiningJob gets .Error with request_id 0: not committed, legal for the check.
    CustomJobErrorOtherId,
    /// Every channel whose user_identity is not [`KNOWN_USER`] is refused with "unknown-user" (a
    /// pool that wants a payout address as the user).
    RefusesUser,
    /// An unrequested SetCustomMiningJob gets .Success with its channel_msg bit cleared (a frame
    /// that does not decode strictly), instead of .Error.
    CustomJobSuccessBadBit,
    /// OpenStandardMiningChannel is never answered (extended channels are served).
    SilentStandardOpen,
    /// REQUIRES_STANDARD_JOBS is refused; standard channels are put in a group whose
    /// NewExtendedMiningJob and SetNewPrevHash are their work (legal without the flag).
    GroupJobsOnly,
}

const GROUP: u32 = 100;
/// The one user_identity a [`Fault::RefusesUser`] pool serves.
const KNOWN_USER: &str = "bc1qknownuser";

/// A scripted pool on loopback: Noise with a fresh authority (returned), Mining protocol only.
async fn broken(fault: Fault) -> (SocketAddr, AuthorityPublicKey) {
    let authority = Keypair::generate().unwrap();
    let public = authority.public;
    let static_key = SecretKey::generate().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut accepted = 0usize;
        while let Ok((stream, _)) = listener.accept().await {
            accepted += 1;
            if fault == Fault::LosesFirstHandshake && accepted == 1 {
                tokio::spawn(unanswered(stream));
                continue;
            }
            if fault == Fault::LimitsConnections && accepted > 40 {
                drop(stream);
                continue;
            }
            let now = unix_now();
            let (from, until) = if fault == Fault::ExpiredCertificate {
                (now - 7200, now - 3600)
            } else {
                (now - 60, now + 3600)
            };
            let config = ResponderConfig::issue(&static_key, &authority, from, until);
            let handle = tokio::spawn(connection(stream, config, fault));
            if fault == Fault::DiesOnBrokenHandshake && matches!(handle.await, Ok(true)) {
                return; // the listener goes with it
            }
        }
    });
    (addr, public)
}

/// Reads act 1, never answers, closes after a while.
async fn unanswered(mut stream: TcpStream) {
    let mut act1 = [0u8; 64];
    let _ = stream.read_exact(&mut act1).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
}

/// Serves one connection; true when the handshake was broken off.
async fn connection(mut stream: TcpStream, config: ResponderConfig, fault: Fault) -> bool {
    if fault == Fault::SniffsFirstByte {
        let mut first = [0u8; 1];
        if matches!(stream.peek(&mut first).await, Ok(1) if first[0] < 0x20) {
            unanswered(stream).await;
            return false;
        }
    }
    if fault == Fault::ShortAct2 {
        let mut act1 = [0u8; 64];
        if stream.read_exact(&mut act1).await.is_ok() {
            let _ = stream.write_all(&[0x5a; 170]).await;
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        return false;
    }
    let mut conn =
        match Connection::respond(stream, config, Duration::from_secs(5), &KeyLog::none()).await {
            Ok(c) => c,
            Err(_) => return true,
        };
    let mut state = State::default();
    // For NonceSkipped: an encryptor of the same session, one nonce ahead.
    let mut skipped = conn.handshake.as_ref().map(|h| {
        let (mut encryptor, _) = h.established.transport.clone().split();
        encryptor.set_nonce(1);
        encryptor
    });
    loop {
        let frame = match conn.recv_frame("read", Duration::from_secs(60)).await {
            Ok(f) => f,
            Err(NetError::Noise { .. }) if fault == Fault::IgnoreMacFailure => {
                tokio::time::sleep(Duration::from_secs(30)).await;
                return false;
            }
            Err(_) => return false,
        };
        if fault == Fault::CloseOnLargeFrame && frame.len() > 6 + 65519 {
            return false;
        }
        let Some(replies) = answer(&mut state, &frame, fault) else {
            return false;
        };
        for reply in replies {
            if fault == Fault::NonceSkipped {
                if let Some(mut encryptor) = skipped.take() {
                    let mut wire = Vec::new();
                    encryptor.encrypt_frame(&reply, &mut wire).unwrap();
                    let _ = conn.send_raw(&wire, "reply").await;
                    continue;
                }
            }
            if conn.send_frame(&reply, "reply").await.is_err() {
                return false;
            }
        }
    }
}

#[derive(Default)]
struct State {
    setup: bool,
    /// Required extensions were announced and not requested since.
    required_pending: bool,
    client_flags: u32,
    next_channel: u32,
    extended_channels: u32,
}

/// The one standard job the scripted pool sends on a channel.
fn standard_job(channel_id: u32) -> Message<'static> {
    NewMiningJob {
        channel_id,
        job_id: 1,
        min_ntime: None,
        version: 0x2000_0000,
        merkle_root: U256([7; 32]),
    }
    .into()
}

/// The one extended job the scripted pool sends on a channel or group: a coinbase around an
/// extranonce of `extranonce_len` bytes (with BIP141 fields when `segwit`, a fault).
fn extended_job(
    channel_id: u32,
    extranonce_len: usize,
    segwit: bool,
    fault: Fault,
) -> Message<'static> {
    let (prefix, suffix) = coinbase(extranonce_len, segwit);
    NewExtendedMiningJob {
        channel_id,
        job_id: 1,
        min_ntime: None,
        version: 0x2000_0000,
        version_rolling_allowed: fault != Fault::FixedVersion,
        merkle_path: Seq0_255::default(),
        coinbase_tx_prefix: B0_64K::new(prefix).unwrap(),
        coinbase_tx_suffix: B0_64K::new(suffix).unwrap(),
    }
    .into()
}

/// The prev hash that activates job 1 on a channel.
fn first_prev_hash(channel_id: u32) -> Message<'static> {
    SetNewPrevHash {
        channel_id,
        job_id: 1,
        prev_hash: U256([1; 32]),
        min_ntime: unix_now(),
        nbits: 0x1d00_ffff,
    }
    .into()
}

fn frame(message: Message<'_>, fault: Fault) -> Vec<u8> {
    let mut bytes = to_frame_bytes(&message, &[]).unwrap();
    if fault == Fault::ChannelBitCleared && message.channel_msg() {
        bytes[1] &= 0x7f;
    }
    bytes
}

fn str255(s: &[u8]) -> Str0_255<'static> {
    Str0_255::new(s.to_vec()).unwrap()
}

/// A legacy coinbase around an extranonce of `extranonce_len` bytes: (prefix, suffix).
fn coinbase(extranonce_len: usize, segwit: bool) -> (Vec<u8>, Vec<u8>) {
    let mut prefix = 2u32.to_le_bytes().to_vec();
    if segwit {
        prefix.extend_from_slice(&[0x00, 0x01]);
    }
    prefix.push(1);
    prefix.extend_from_slice(&[0; 32]);
    prefix.extend_from_slice(&[0xff; 4]);
    prefix.push(4 + extranonce_len as u8);
    prefix.extend_from_slice(&[0x03, 0x10, 0x27, 0x00]);
    let mut suffix = vec![0xff; 4];
    suffix.push(1);
    suffix.extend_from_slice(&50_0000_0000u64.to_le_bytes());
    suffix.extend_from_slice(&[0x01, 0x51]);
    if segwit {
        suffix.extend_from_slice(&[0x01, 0x20]);
        suffix.extend_from_slice(&[0; 32]);
    }
    suffix.extend_from_slice(&[0; 4]);
    (prefix, suffix)
}

/// The scripted pool's answers to one frame (None: close).
fn answer(state: &mut State, bytes: &[u8], fault: Fault) -> Option<Vec<Vec<u8>>> {
    let f = |m: Message<'_>| frame(m, fault);
    let msg_type = bytes.get(2).copied()?;
    let ext = u16::from_le_bytes([bytes[0], bytes[1]]) & 0x7fff;
    let decoded = Frame::parse(bytes)
        .ok()
        .and_then(|(fr, _)| decode_frame(&fr).ok());
    let mut out = Vec::new();
    if ext != 0 && ext != 1 {
        return (fault != Fault::CloseOnUnknownExtension).then_some(out);
    }
    if ext == 0 && msg_type == 0x00 {
        if fault == Fault::SilentSetup {
            return Some(out);
        }
        if fault == Fault::SpeaksBeforeSetup {
            out.push(f(SetTarget {
                channel_id: 1,
                maximum_target: U256([0xff; 32]),
            }
            .into()));
        }
        let setup = match decoded.as_ref().map(|d| &d.message) {
            Some(Message::SetupConnection(s)) => Some(s.clone()),
            _ => None,
        };
        if fault == Fault::Lenient {
            state.setup = true;
            let used = setup.map_or(2, |s| s.min_version);
            out.push(f(SetupConnectionSuccess {
                used_version: used,
                flags: 0,
            }
            .into()));
            return Some(out);
        }
        let setup = setup?;
        let supported = if fault == Fault::GroupJobsOnly {
            0b110
        } else {
            0b111
        };
        let mut unsupported = setup.flags & !supported;
        if fault == Fault::PartialFlagList {
            unsupported &= unsupported.wrapping_neg();
        }
        if fault == Fault::RefusesAsideFromFlags && unsupported != 0 {
            out.push(f(SetupConnectionError {
                flags: 0,
                error_code: str255(b"not-accepting-connections"),
            }
            .into()));
            return Some(out);
        }
        let code = if fault == Fault::ControlCharacterCodes {
            &b"bad\x01code"[..]
        } else {
            &b"unsupported"[..]
        };
        if setup.protocol != 0 || setup.min_version > 2 || setup.max_version < 2 || unsupported != 0
        {
            out.push(f(SetupConnectionError {
                flags: unsupported,
                error_code: str255(code),
            }
            .into()));
            return Some(out);
        }
        state.setup = true;
        state.client_flags = setup.flags;
        let used = if fault == Fault::UsedVersionOutOfRange {
            3
        } else {
            2
        };
        let flags = u32::from(matches!(
            fault,
            Fault::FixedVersionRollingJobs | Fault::FixedVersion
        ));
        out.push(f(SetupConnectionSuccess {
            used_version: used,
            flags,
        }
        .into()));
        return Some(out);
    }
    if !state.setup && fault != Fault::Lenient {
        return None;
    }
    if fault == Fault::LenientShares && ext == 0 && msg_type == 0x1b && decoded.is_none() {
        let channel_id = u32::from_le_bytes(bytes.get(6..10)?.try_into().ok()?);
        let sequence_number = u32::from_le_bytes(bytes.get(10..14)?.try_into().ok()?);
        let ok = SubmitSharesSuccess {
            channel_id,
            last_sequence_number: sequence_number,
            new_submits_accepted_count: 1,
            new_shares_sum: 1,
        };
        return Some(vec![f(ok.into())]);
    }
    let decoded = decoded?;
    if fault == Fault::CloseOnTlv && !decoded.tlvs.is_empty() {
        return None;
    }
    let message = decoded.message;
    if state.required_pending && fault == Fault::RequiresExtension {
        return None;
    }
    let request_id_shift = u32::from(fault == Fault::WrongRequestId);
    match message {
        Message::RequestExtensions(r) => match fault {
            Fault::CloseOnRequestExtensions => return None,
            Fault::NoExtensions => {}
            Fault::RequiresExtension | Fault::RequiresExtensionButServes
                if !r.requested_extensions.iter().any(|e| *e == 0x0003) =>
            {
                state.required_pending = true;
                out.push(f(RequestExtensionsError {
                    request_id: r.request_id,
                    unsupported_extensions: r.requested_extensions.clone(),
                    required_extensions: Seq0_64K::new(vec![0x0003]).unwrap(),
                }
                .into()))
            }
            Fault::WrongExtensionsRequestId => out.push(f(RequestExtensionsError {
                request_id: r.request_id.wrapping_add(1),
                unsupported_extensions: r.requested_extensions.clone(),
                required_extensions: Seq0_64K::default(),
            }
            .into())),
            Fault::ExtensionsAlwaysSuccess => out.push(f(RequestExtensionsSuccess {
                request_id: r.request_id,
                supported_extensions: r.requested_extensions.clone(),
            }
            .into())),
            // Extension 0x0002 is supported; anything else is not.
            _ if r.requested_extensions.iter().any(|e| *e == 0x0002) => {
                out.push(f(RequestExtensionsSuccess {
                    request_id: r.request_id,
                    supported_extensions: Seq0_64K::new(vec![0x0002]).unwrap(),
                }
                .into()))
            }
            _ => out.push(f(RequestExtensionsError {
                request_id: r.request_id,
                unsupported_extensions: r.requested_extensions.clone(),
                required_extensions: Seq0_64K::default(),
            }
            .into())),
        },
        Message::OpenStandardMiningChannel(o)
            if fault == Fault::RefusesUser
                && o.user_identity.as_bytes() != KNOWN_USER.as_bytes() =>
        {
            out.push(f(OpenMiningChannelError {
                request_id: o.request_id,
                error_code: str255(b"unknown-user"),
            }
            .into()));
        }
        Message::OpenExtendedMiningChannel(o)
            if fault == Fault::RefusesUser
                && o.user_identity.as_bytes() != KNOWN_USER.as_bytes() =>
        {
            out.push(f(OpenMiningChannelError {
                request_id: o.request_id,
                error_code: str255(b"unknown-user"),
            }
            .into()));
        }
        Message::OpenStandardMiningChannel(_) if fault == Fault::SilentStandardOpen => {}
        Message::OpenStandardMiningChannel(o) => {
            state.next_channel += 1;
            let id = state.next_channel;
            // GroupJobsOnly: the channel is in a group whose extended job is its work.
            let group = fault == Fault::GroupJobsOnly;
            out.push(f(OpenStandardMiningChannelSuccess {
                request_id: o.request_id + request_id_shift,
                channel_id: id,
                target: U256([0xff; 32]),
                extranonce_prefix: B0_32::new(vec![0, 0, 0, id as u8]).unwrap(),
                group_channel_id: if group { GROUP } else { 0 },
            }
            .into()));
            let work = if group { GROUP } else { id };
            out.push(f(if group {
                extended_job(GROUP, 8, false, fault)
            } else {
                standard_job(id)
            }));
            out.push(f(first_prev_hash(work)));
            if fault == Fault::MalformedFrame {
                let mut short = f(SetTarget {
                    channel_id: id,
                    maximum_target: U256([0xff; 32]),
                }
                .into());
                short.pop();
                short[3] -= 1;
                out.push(short);
            }
            if fault == Fault::UnknownChannelId {
                out.push(f(SetTarget {
                    channel_id: 999,
                    maximum_target: U256([0xff; 32]),
                }
                .into()));
            }
        }
        Message::OpenExtendedMiningChannel(o) => {
            state.next_channel += 1;
            state.extended_channels += 1;
            let id = state.next_channel;
            let mut size = o.min_extranonce_size.max(8);
            if fault == Fault::SmallExtranonce {
                size = o.min_extranonce_size.saturating_sub(1).min(4);
            }
            if fault == Fault::HugeExtranonce {
                size = 40;
            }
            if fault == Fault::GroupLengthMismatch && state.extended_channels == 2 {
                size += 1;
            }
            let in_group = matches!(
                fault,
                Fault::PrefixToGroup | Fault::PrefixToChannel | Fault::GroupLengthMismatch
            );
            out.push(f(OpenExtendedMiningChannelSuccess {
                request_id: o.request_id + request_id_shift,
                channel_id: id,
                target: U256([0xff; 32]),
                extranonce_size: size,
                extranonce_prefix: B0_32::new(vec![0, 0, 0, id as u8]).unwrap(),
                group_channel_id: if in_group { GROUP } else { 0 },
            }
            .into()));
            if matches!(fault, Fault::PrefixToGroup | Fault::PrefixToChannel) {
                out.push(f(SetGroupChannel {
                    group_channel_id: GROUP,
                    channel_ids: Seq0_64K::new(vec![id]).unwrap(),
                }
                .into()));
                out.push(f(SetExtranoncePrefix {
                    channel_id: if fault == Fault::PrefixToGroup {
                        GROUP
                    } else {
                        id
                    },
                    extranonce_prefix: B0_32::new(vec![9; 4]).unwrap(),
                }
                .into()));
            }
            if fault == Fault::StandardJobToExtended {
                out.push(f(standard_job(id)));
            } else {
                out.push(f(extended_job(
                    id,
                    4 + usize::from(size),
                    fault == Fault::SegwitCoinbase,
                    fault,
                )));
            }
            out.push(f(first_prev_hash(id)));
        }
        Message::SetCustomMiningJob(j) => {
            if fault == Fault::CustomJobSuccessBadBit {
                let mut bytes = to_frame_bytes(
                    &SetCustomMiningJobSuccess {
                        channel_id: j.channel_id,
                        request_id: j.request_id,
                        job_id: 9,
                    }
                    .into(),
                    &[],
                )
                .unwrap();
                bytes[1] &= 0x7f;
                out.push(bytes);
            } else {
                out.push(f(SetCustomMiningJobError {
                    channel_id: j.channel_id,
                    request_id: if fault == Fault::CustomJobErrorOtherId {
                        0
                    } else {
                        j.request_id
                    },
                    error_code: str255(b"work-selection-not-negotiated"),
                }
                .into()));
            }
        }
        Message::SubmitSharesStandard(s) => {
            out.extend(share_answer(s.channel_id, s.sequence_number, fault))
        }
        Message::SubmitSharesExtended(s) => {
            out.extend(share_answer(s.channel_id, s.sequence_number, fault))
        }
        _ => {}
    }
    Some(out)
}

/// Shares on the scripted pool: odd sequence numbers accepted, even ones rejected.
fn share_answer(channel_id: u32, sequence_number: u32, fault: Fault) -> Vec<Vec<u8>> {
    let code = if fault == Fault::ControlCharacterCodes {
        &b"stale\nshare"[..]
    } else {
        &b"invalid-job-id"[..]
    };
    if sequence_number.is_multiple_of(2) {
        let error = frame(
            SubmitSharesError {
                channel_id,
                sequence_number,
                error_code: str255(code),
            }
            .into(),
            fault,
        );
        let times = if fault == Fault::DoubleError { 2 } else { 1 };
        return vec![error; times];
    }
    let count = if fault == Fault::DoubleCount { 2 } else { 1 };
    vec![frame(
        SubmitSharesSuccess {
            channel_id,
            last_sequence_number: sequence_number,
            new_submits_accepted_count: count,
            new_shares_sum: 1,
        }
        .into(),
        fault,
    )]
}

fn target(addr: SocketAddr, authority: AuthorityPublicKey) -> Target {
    let mut t = Target::new(
        addr,
        Security::Noise {
            authority: Some(authority),
        },
    );
    t.timeout = Duration::from_millis(1500);
    t.work_window = Duration::from_secs(2);
    t
}

fn verdict_of(results: &[CheckResult], id: &str) -> (Verdict, String) {
    let r = results
        .iter()
        .find(|r| r.check.id == id)
        .unwrap_or_else(|| panic!("{id} did not run"));
    (r.outcome.verdict, r.outcome.observed.clone())
}

/// Check `id` fails on the scripted pool with `fault` and passes on the correct one. Each check
/// proven able to fail is the literal first argument of a call to this (or [`fails_beside`],
/// [`fails_on`]): every_check_can_fail.rs reads them.
async fn fails(id: &str, fault: Fault) {
    fails_beside(id, fault, Fault::None).await
}

/// Check `id` fails on the scripted pool with `fault` and passes on the one with `correct` (a
/// pool behaving in another legal way).
async fn fails_beside(id: &str, fault: Fault, correct: Fault) {
    let (addr, key) = broken(correct).await;
    let good = run_only(target(addr, key), &[id]).await;
    let (v, observed) = verdict_of(&good, id);
    assert_eq!(
        v,
        Verdict::Pass,
        "{id} on the correct scripted pool ({correct:?}): {observed}"
    );
    let (addr, key) = broken(fault).await;
    let bad = run_only(target(addr, key), &[id]).await;
    let (v, observed) = verdict_of(&bad, id);
    assert_eq!(v, Verdict::Fail, "{id} with {fault:?}: {observed}");
}

/// Check `id` fails on `target` (a broken peer other than the scripted pool); what it observed.
async fn fails_on(id: &str, target: Target) -> String {
    let results = run_only(target, &[id]).await;
    let (v, observed) = verdict_of(&results, id);
    assert_eq!(v, Verdict::Fail, "{id}: {observed}");
    observed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noise_checks_fail_on_broken_handshakes_and_transport() {
    fails("noise.act2-length", Fault::ShortAct2).await;
    fails("noise.certificate", Fault::ExpiredCertificate).await;
    fails("noise.mac-failure-closes", Fault::IgnoreMacFailure).await;
    fails("noise.chunked-frame", Fault::CloseOnLargeFrame).await;
    fails(
        "noise.survives-broken-handshakes",
        Fault::DiesOnBrokenHandshake,
    )
    .await;
    fails("noise.transport-frames", Fault::NonceSkipped).await;
    fails("noise.handshake-reliability", Fault::SniffsFirstByte).await;
}

/// A handshake lost once is retried with a new key: the check runs, and both attempts are its
/// evidence (the failure rate itself is `noise.handshake-reliability`'s business).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_handshake_is_retried_with_a_new_key_and_both_attempts_kept() {
    let (addr, key) = broken(Fault::LosesFirstHandshake).await;
    // The raw act 1 of noise.act2-length is tried again too.
    let (addr2, key2) = broken(Fault::LosesFirstHandshake).await;
    let act2 = run_only(target(addr2, key2), &["noise.act2-length"]).await;
    assert_eq!(
        act2[0].outcome.verdict,
        Verdict::Pass,
        "{}",
        act2[0].outcome.observed
    );
    assert!(act2[0]
        .evidence
        .iter()
        .any(|e| e.label.contains("attempt 2")));
    let results = run_only(target(addr, key), &["setup.reply"]).await;
    let r = &results[0];
    assert_eq!(r.outcome.verdict, Verdict::Pass, "{}", r.outcome.observed);
    let labels: Vec<&str> = r.evidence.iter().map(|e| e.label.as_str()).collect();
    assert!(
        labels
            .iter()
            .any(|l| l.contains("handshake attempt 1 (failed)")),
        "{labels:?}"
    );
    let failed = r
        .evidence
        .iter()
        .find(|e| e.label.contains("attempt 1"))
        .unwrap();
    assert!(
        failed
            .transcript
            .to_json()
            .to_string()
            .contains("handshake failed"),
        "the failed attempt says why"
    );
}

/// A frame the suite cannot decode is evidence, never "the server refused": an unrequested custom
/// job answered with a .Success whose channel_msg bit is wrong fails the check (it passed as "a
/// close" before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_that_cannot_be_decoded_is_not_a_refusal() {
    fails(
        "mining.custom-job-unrequested",
        Fault::CustomJobSuccessBadBit,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_checks_fail_on_a_lenient_or_silent_pool() {
    fails("setup.first-message", Fault::Lenient).await;
    fails("setup.version-unsupported", Fault::Lenient).await;
    fails("setup.version-range", Fault::Lenient).await;
    fails("setup.unknown-protocol", Fault::Lenient).await;
    fails("setup.truncated-message", Fault::Lenient).await;
    fails("setup.trailing-byte", Fault::Lenient).await;
    fails("setup.reply", Fault::SilentSetup).await;
    fails("setup.unsupported-flags", Fault::PartialFlagList).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extension_checks_fail_on_misbehaving_negotiation() {
    fails(
        "ext.unknown-extension-ignored",
        Fault::CloseOnUnknownExtension,
    )
    .await;
    fails(
        "ext.request-extensions-answered",
        Fault::WrongExtensionsRequestId,
    )
    .await;
    fails("ext.unsupported-only-error", Fault::ExtensionsAlwaysSuccess).await;
    // A server that requires an extension and disconnects a client going on without it passes; one
    // that serves it anyway fails; one that requires nothing gives the check nothing to judge.
    fails_beside(
        "ext.required-enforced",
        Fault::RequiresExtensionButServes,
        Fault::RequiresExtension,
    )
    .await;
    let (addr, key) = broken(Fault::None).await;
    let none = run_only(target(addr, key), &["ext.required-enforced"]).await;
    assert_eq!(verdict_of(&none, "ext.required-enforced").0, Verdict::Skip);
    // The rule for servers without extension 0x0001: a skip on the correct scripted pool, which
    // supports it; a pass on one that ignores RequestExtensions; a fail on one that closes.
    fails_beside(
        "ext.ignored-without-support",
        Fault::CloseOnRequestExtensions,
        Fault::NoExtensions,
    )
    .await;
    let (addr, key) = broken(Fault::None).await;
    let none = run_only(target(addr, key), &["ext.ignored-without-support"]).await;
    assert_eq!(
        verdict_of(&none, "ext.ignored-without-support").0,
        Verdict::Skip
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_rules_fail_on_the_traffic_that_breaks_them() {
    // Only the rule selected: the runner makes ordinary traffic for it to judge.
    fails("monitor.channel-msg-bit", Fault::ChannelBitCleared).await;
    fails("monitor.channel-id-known", Fault::UnknownChannelId).await;
    fails("monitor.setup-answer-first", Fault::SpeaksBeforeSetup).await;
    fails("monitor.used-version", Fault::UsedVersionOutOfRange).await;
    fails("monitor.request-id-echo", Fault::WrongRequestId).await;
    fails("monitor.extranonce-size", Fault::SmallExtranonce).await;
    fails("monitor.extranonce-fits", Fault::HugeExtranonce).await;
    fails("monitor.job-kind", Fault::StandardJobToExtended).await;
    fails("monitor.coinbase-stripped", Fault::SegwitCoinbase).await;
    fails_beside(
        "monitor.no-prefix-to-group",
        Fault::PrefixToGroup,
        Fault::PrefixToChannel,
    )
    .await;
    fails("monitor.share-acks", Fault::DoubleCount).await;
    fails("monitor.share-error-echo", Fault::DoubleError).await;
    fails("monitor.printable-codes", Fault::ControlCharacterCodes).await;
    fails_beside(
        "monitor.group-extranonce-length",
        Fault::GroupLengthMismatch,
        Fault::PrefixToChannel,
    )
    .await;
    fails("monitor.strict-decoding", Fault::MalformedFrame).await;
    fails_beside(
        "monitor.fixed-version",
        Fault::FixedVersionRollingJobs,
        Fault::FixedVersion,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_frames_that_cannot_decode_are_refused_and_unknown_tlvs_ignored() {
    // The mock pool's codec refuses the frame before its core sees it, so the fault lives here.
    fails("shares.extranonce-33", Fault::LenientShares).await;
    fails("ext.tlv-too-long-rejected", Fault::LenientShares).await;
    fails("ext.unnegotiated-tlv-ignored", Fault::CloseOnTlv).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_and_plaintext_faults_of_the_mock_pool() {
    // Another authority signed the certificate.
    let stranger = Keypair::generate().unwrap().public;
    let (_pool, target) = mock_pool(|_| {}).await;
    let target = Target {
        security: Security::Noise {
            authority: Some(stranger),
        },
        ..target
    };
    let observed = fails_on("noise.certificate", target).await;
    assert!(observed.contains("signature"), "{observed}");

    // A plaintext pool answers a plaintext SetupConnection: Noise is not required.
    let (_pool, target) = mock_pool(|c| c.noise = None).await;
    fails_on("noise.required", target).await;
}

/// A pool that refuses the suite's user_identity refuses every channel for a reason outside every
/// check: the checks that needed a channel say so and name `--user`, none fails; with an identity
/// it knows they run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_user_is_an_error_naming_the_option_never_a_failure() {
    let checks = [
        "mining.both-channel-kinds",
        "mining.request-id-echo",
        "mining.extranonce-size",
        "mining.max-target",
    ];
    let (addr, key) = broken(Fault::RefusesUser).await;
    for r in run_only(target(addr, key), &checks).await {
        assert_eq!(
            r.outcome.verdict,
            Verdict::Error,
            "{}: {}",
            r.check.id,
            r.outcome.observed
        );
        assert!(
            r.outcome.observed.contains("--user") && r.outcome.observed.contains("unknown-user"),
            "{}: {}",
            r.check.id,
            r.outcome.observed
        );
    }
    let mut known = target(addr, key);
    known.user_identity = KNOWN_USER.into();
    // (The scripted pool ignores max_target and min_extranonce_size: the last two checks have no
    // passing case here.)
    for r in run_only(known, &checks[..2]).await {
        assert_eq!(
            r.outcome.verdict,
            Verdict::Pass,
            "{}: {}",
            r.check.id,
            r.outcome.observed
        );
    }
}

/// A frame that cannot be read but is of a kind that answers nothing (a SetTarget one byte short)
/// is the monitor's business (strict decoding fails); a check waiting for answers to its opens reads
/// past it and still judges them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_broadcast_does_not_decide_a_check_waiting_for_answers() {
    let (addr, key) = broken(Fault::MalformedFrame).await;
    let results = run_only(
        target(addr, key),
        &["mining.request-id-echo", "monitor.strict-decoding"],
    )
    .await;
    let (v, observed) = verdict_of(&results, "mining.request-id-echo");
    assert_eq!(v, Verdict::Pass, "{observed}");
    let (v, observed) = verdict_of(&results, "monitor.strict-decoding");
    assert_eq!(v, Verdict::Fail, "{observed}");
}

/// A correct pool that limits connections closes the reliability check's later ones at once: that
/// is no handshake failure (it does not follow the act's bytes), so the check cannot judge, and
/// says why, rather than failing the pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_limit_is_not_a_handshake_failure() {
    let (addr, key) = broken(Fault::LimitsConnections).await;
    let results = run_only(target(addr, key), &["noise.handshake-reliability"]).await;
    let (v, observed) = verdict_of(&results, "noise.handshake-reliability");
    assert_eq!(v, Verdict::Error, "{observed}");
    assert!(observed.contains("limits connections"), "{observed}");
}

/// Legal answers the spec allows are no failures: .Error with flags 0 to all flags set (a refusal
/// aside from flags, 03:271) skips the flag-list check; a custom job refused with an .Error of
/// another request_id commits to nothing, which is what the check wants.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legal_refusals_are_not_failures() {
    let (addr, key) = broken(Fault::RefusesAsideFromFlags).await;
    let results = run_only(target(addr, key), &["setup.unsupported-flags"]).await;
    let (v, observed) = verdict_of(&results, "setup.unsupported-flags");
    assert_eq!(v, Verdict::Skip, "{observed}");
    let (addr, key) = broken(Fault::CustomJobErrorOtherId).await;
    let results = run_only(target(addr, key), &["mining.custom-job-unrequested"]).await;
    let (v, observed) = verdict_of(&results, "mining.custom-job-unrequested");
    assert_eq!(v, Verdict::Pass, "{observed}");
}

/// A channel that cannot be opened stops the checks that need one before their subject: an error
/// naming the step, never a failure of their own requirement (the check about opening fails).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_precondition_is_an_error_not_a_failure() {
    let (addr, key) = broken(Fault::SilentStandardOpen).await;
    let checks = [
        "mining.standard-first-job",
        "mining.close-channel",
        "mining.close-group",
    ];
    let results = run_only(target(addr, key), &checks).await;
    for id in checks {
        let (v, observed) = verdict_of(&results, id);
        assert!(
            v == Verdict::Error && observed.contains("precondition not met"),
            "{id}: {v:?} {observed}"
        );
    }
}

/// Without REQUIRES_STANDARD_JOBS (refused), a standard channel's work may come as its group's
/// NewExtendedMiningJob: the first-job check passes on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_jobs_are_a_standard_channels_work_without_the_flag() {
    let (addr, key) = broken(Fault::GroupJobsOnly).await;
    let results = run_only(target(addr, key), &["mining.standard-first-job"]).await;
    let (v, observed) = verdict_of(&results, "mining.standard-first-job");
    assert_eq!(v, Verdict::Pass, "{observed}");
}
