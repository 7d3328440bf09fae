//! Noise NX as responder (spec §4, CATALOG §F 13-20).

use std::time::Duration;

use sv2_codec::noise::cert::ValidityPolicy;
use sv2_codec::noise::{Initiator, InitiatorConfig, KeySeed, ACT2_LEN};
use sv2_codec::Message;
use sv2_wire::{unix_now, Mode, Transcript};

use crate::active;
use crate::check::Check;
use crate::session::{frame_of, setup_connection, Ctx, Incoming, RawEnd, RawExchange, Security};
use crate::verdict::Outcome;

pub const CHECKS: &[Check] = &[
    active!("noise.required", "4", Must, Some(13), "a remote upstream requires the Noise handshake: plaintext SetupConnection gets no .Success", required),
    active!("noise.act2-length", "4.5.2", Must, Some(14), "after a valid 64-byte act 1 the responder sends exactly 234 bytes of act 2", act2_length),
    active!("noise.certificate", "4.5.3", Must, Some(15), "the certificate's BIP340 signature verifies with the authority key and now is inside its validity window", certificate),
    active!("noise.mac-failure-closes", "4.5", Must, Some(17), "a transport frame that fails its MAC terminates the session, with no reply", mac_failure_closes),
    active!("noise.chunked-frame", "4.6", Must, Some(20), "a message over 65519 bytes, sent as several AEAD blocks, is read whole (and, of an unknown extension, discarded)", chunked_frame),
    active!("noise.transport-frames", "4.6", Must, Some(18), "frames from the server decrypt in order: 22-byte encrypted header, msg_length = plaintext length, one nonce per header and per block", transport_frames),
    active!("noise.handshake-reliability", "4.5.2", Must, Some(14), "every valid act 1 gets its act 2: 256 handshakes with random ephemeral keys, act 1 in one write or split in two", handshake_reliability),
    active!("noise.survives-broken-handshakes", "4.5", Should, None, "half-sent and abandoned handshakes do not stop the server from serving the next client", survives_broken_handshakes),
];

fn noise_only(ctx: &Ctx) -> Option<Outcome> {
    matches!(ctx.target().security, Security::Plaintext)
        .then(|| Outcome::skip("the target is plaintext (--plaintext): no Noise to check"))
}

async fn required(ctx: Ctx) -> Outcome {
    if let Some(skip) = noise_only(&ctx) {
        return skip;
    }
    let stream = match ctx.tcp().await {
        Ok(s) => s,
        Err(o) => return o,
    };
    let frame = match frame_of(&setup_connection(0, 2, 2, 0)) {
        Ok(f) => f,
        Err(o) => return o,
    };
    // Both directions read as plain frames: a plaintext .Success among the answers shows as such.
    let mut raw = RawExchange::new(stream, Mode::Sv2);
    let (got, end) = raw.exchange(&frame, ctx.target().timeout, 4096).await;
    let plaintext_success = raw
        .server_messages()
        .any(|m| matches!(m, Message::SetupConnectionSuccess(_)));
    ctx.record("plaintext SetupConnection", raw.finish());
    let expected = "no plaintext SetupConnection.Success (a handshake answer, silence or a close)";
    if plaintext_success {
        return Outcome::fail(
            expected,
            "a plaintext SetupConnection.Success: the server speaks without Noise",
        );
    }
    Outcome::pass(
        expected,
        format!(
            "{} bytes back, then {end:?}; none of it a plaintext .Success",
            got.len()
        ),
    )
}

async fn act2_length(ctx: Ctx) -> Outcome {
    if let Some(skip) = noise_only(&ctx) {
        return skip;
    }
    let expected = "exactly 234 bytes of act 2 that complete the handshake";
    // An act 1 that gets nothing back at all is tried once more with a new key (some servers
    // fail on particular first bytes: noise.handshake-reliability's business); both attempts are
    // evidence, and the length is judged on the attempt that got an answer.
    let mut attempt = 1;
    loop {
        let stream = match ctx.tcp().await {
            Ok(s) => s,
            Err(o) => return o,
        };
        let mut initiator: Initiator = match Initiator::generate(InitiatorConfig::unauthenticated())
        {
            Ok(i) => i,
            Err(e) => return Outcome::error(format!("initiator: {e}")),
        };
        let act1 = match initiator.write_act1() {
            Ok(a) => a,
            Err(e) => return Outcome::error(format!("act 1: {e}")),
        };
        // Read until well past 234 bytes could have come: a responder that sends 170 bytes (the
        // spec's old figure) or more than 234 shows either way (the bytes are counted as they
        // came; the transcript shows the acts as the decoder delimits them).
        let mut raw = RawExchange::new(stream, Mode::Noise);
        let (got, end) = raw
            .exchange(&act1, ctx.target().timeout, ACT2_LEN + 1)
            .await;
        let (more, _) = if got.len() == ACT2_LEN {
            raw.exchange(&[], Duration::from_millis(300), 1).await
        } else {
            (Vec::new(), RawEnd::Timeout)
        };
        ctx.record(format!("act 1 and act 2 (attempt {attempt})"), raw.finish());
        if got.is_empty() && end == RawEnd::Timeout && attempt == 1 {
            attempt += 1;
            continue;
        }
        let total = got.len() + more.len();
        if total != ACT2_LEN {
            return Outcome::fail(
                expected,
                format!(
                    "{total} bytes (then {end:?}){}",
                    if attempt > 1 {
                        " on a second attempt with a new key, after a first act 1 got nothing"
                    } else {
                        ""
                    }
                ),
            );
        }
        return match initiator.read_act2(&got, unix_now()) {
            Ok(_) => Outcome::pass(
                expected,
                "234 bytes; act 2 decrypts and the handshake completes",
            ),
            Err(e) => Outcome::fail(
                expected,
                format!("234 bytes, but act 2 does not complete the handshake: {e}"),
            ),
        };
    }
}

async fn certificate(ctx: Ctx) -> Outcome {
    if let Some(skip) = noise_only(&ctx) {
        return skip;
    }
    let Security::Noise {
        authority: Some(authority),
    } = ctx.target().security.clone()
    else {
        return Outcome::skip(
            "no authority key given (--authority-key): the certificate cannot be checked",
        );
    };
    let session = match ctx.connect("handshake").await {
        Ok(s) => s,
        Err(o) => return o,
    };
    let Some(info) = session.handshake() else {
        return Outcome::error("no handshake on an encrypted session");
    };
    let cert = info.established.certificate;
    let key = info.established.certified_key;
    let now = unix_now();
    let expected = format!(
        "a certificate signed by {} valid at {now} (10 s skew)",
        authority.to_base58()
    );
    let window = cert.describe(&key, now);
    if let Err(e) = cert.verify_signature(&key, &authority) {
        return Outcome::fail(expected, format!("{e} ({window})"));
    }
    match cert.check_validity(now, &ValidityPolicy::default()) {
        Ok(()) => Outcome::pass(expected, format!("signature verifies; {window}")),
        Err(e) => Outcome::fail(expected, format!("{e} ({window})")),
    }
}

async fn mac_failure_closes(ctx: Ctx) -> Outcome {
    if let Some(skip) = noise_only(&ctx) {
        return skip;
    }
    let mut session = match ctx.connect("tampered frame").await {
        Ok(s) => s,
        Err(o) => return o,
    };
    let Some(info) = session.handshake() else {
        return Outcome::error("no handshake on an encrypted session");
    };
    // The session has sent nothing yet: a fresh encryptor from the same keys is at nonce 0 too.
    let (mut encryptor, _) = info.established.transport.clone().split();
    let frame = match frame_of(&setup_connection(0, 2, 2, 0)) {
        Ok(f) => f,
        Err(o) => return o,
    };
    let mut wire = Vec::new();
    if let Err(e) = encryptor.encrypt_frame(&frame, &mut wire) {
        return Outcome::error(format!("encrypting: {e}"));
    }
    // One bit of the encrypted header's tag.
    wire[21] ^= 0x01;
    if let Err(o) = session.send_raw(&wire, "tampered SetupConnection").await {
        return o;
    }
    let expected = "the session ends (close) with no reply to the tampered frame";
    match session.recv().await {
        Incoming::Closed => Outcome::pass(expected, "closed"),
        Incoming::Broken(e) => Outcome::pass(expected, format!("connection ended: {e}")),
        // Bytes came back that do not read as a frame: a reply, not a close.
        unreadable @ Incoming::Unreadable(_) => Outcome::fail(expected, unreadable.describe()),
        Incoming::Message(m) => Outcome::fail(
            expected,
            format!("replied {}", crate::session::describe(&m.message)),
        ),
        Incoming::Timeout => Outcome::fail(
            expected,
            format!(
                "the connection stayed open, silent, for {:?}",
                ctx.target().timeout
            ),
        ),
    }
}

async fn chunked_frame(ctx: Ctx) -> Outcome {
    let mut session = match ctx.setup("large frame", 0).await {
        Ok(s) => s,
        Err(o) => return o,
    };
    // An unknown extension's non-channel message (discarded by rule §3.4), 70000 bytes long: two AEAD
    // blocks of the payload when encrypted.
    let payload_len: usize = 70_000;
    let mut frame = Vec::with_capacity(6 + payload_len);
    frame.extend_from_slice(&0x4abcu16.to_le_bytes());
    frame.push(0x01);
    frame.extend_from_slice(&(payload_len as u32).to_le_bytes()[..3]);
    frame.extend((0..payload_len).map(|i| (i % 251) as u8));
    if let Err(o) = session.send_frame(&frame, "70000-byte frame").await {
        return o;
    }
    let expected = "the 70000-byte frame is read whole and the next request is answered";
    match session.still_serves().await {
        Ok(()) => Outcome::pass(expected, "the next OpenStandardMiningChannel was answered"),
        Err(e) => Outcome::fail(expected, e),
    }
}

async fn survives_broken_handshakes(ctx: Ctx) -> Outcome {
    if let Some(skip) = noise_only(&ctx) {
        return skip;
    }
    let mut transcript = Transcript::default();
    // Half an act 1, then gone; 64 zero bytes, then gone; a connection that never speaks.
    let expected = "a full session still works after three broken handshakes";
    for (i, bytes) in [&[0x42u8; 30][..], &[0u8; 64][..], &[][..]]
        .into_iter()
        .enumerate()
    {
        let stream = match ctx.tcp().await {
            Ok(s) => s,
            Err(o) if i == 0 => return o,
            Err(o) => {
                ctx.record("broken handshakes", transcript);
                return Outcome::fail(
                    expected,
                    format!("after {i} broken handshake(s): {}", o.observed),
                );
            }
        };
        let mut raw = RawExchange::new(stream, Mode::Noise);
        let _ = raw.exchange(bytes, Duration::from_millis(200), 1).await;
        transcript.append(&mut raw.finish());
    }
    ctx.record("broken handshakes", transcript);
    match ctx.setup("after broken handshakes", 0).await {
        Ok(mut s) => match s.still_serves().await {
            Ok(()) => Outcome::pass(expected, "set up and answered"),
            Err(e) => Outcome::fail(expected, e),
        },
        Err(o) => Outcome::fail(expected, o.observed),
    }
}

async fn transport_frames(ctx: Ctx) -> Outcome {
    if let Some(skip) = noise_only(&ctx) {
        return skip;
    }
    let mut s = match ctx.connect("transport frames").await {
        Ok(s) => s,
        Err(o) => return o,
    };
    // Setup and two opens in a row: the answers (and jobs) are several frames in a burst.
    for message in [
        setup_connection(0, 2, 2, 0),
        s.open_standard_message(1),
        s.open_extended_message(2, 0),
    ] {
        if let Err(o) = s.send(&message).await {
            return o;
        }
    }
    let expected =
        "every frame decrypts with the next nonce: header (22 bytes) then the payload's blocks";
    let mut frames = 0usize;
    let deadline = tokio::time::Instant::now() + ctx.target().timeout;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match s.recv_within(left).await {
            Incoming::Message(_) => frames += 1,
            Incoming::Unreadable(e) => {
                return Outcome::fail(expected, format!("after {frames} good frame(s): {e}"))
            }
            Incoming::Timeout | Incoming::Closed | Incoming::Broken(_) if frames >= 2 => {
                return Outcome::pass(expected, format!("{frames} frames decrypted in order"))
            }
            other => {
                return Outcome::error(format!(
                    "only {frames} frame(s) came before {}: too few to judge",
                    other.describe()
                ))
            }
        }
        if frames >= 16 {
            return Outcome::pass(expected, format!("{frames} frames decrypted in order"));
        }
    }
}

/// Handshakes `noise.handshake-reliability` makes, and how many at a time.
const RELIABILITY_HANDSHAKES: usize = 256;
const RELIABILITY_AT_ONCE: usize = 8;
/// Failing handshakes kept whole as evidence (the rest are counted).
const RELIABILITY_EVIDENCE: usize = 4;
/// Failures confirmed (replayed with the same act 1, next to a fresh-key control) at most, at once.
const RELIABILITY_CONFIRM: usize = 4;

/// How one handshake of the reliability check went.
enum Try {
    Completed,
    /// The pool would not take the connection (refused, or closed it without a byte): a
    /// connection limit, most likely, not the act's bytes.
    Turned(String),
    /// The act 1 got no good act 2: what happened, and the attempt's transcript.
    Failed(String, Box<Transcript>),
}

/// One handshake: act 1 from `seed`, whole (`split` 0) or as two writes split after `split` bytes.
async fn one_handshake(ctx: &Ctx, seed: &KeySeed, split: usize) -> Try {
    let stream = match ctx.tcp().await {
        Ok(s) => s,
        Err(o) => return Try::Turned(o.observed),
    };
    let (mut initiator, act1) = match Initiator::new(InitiatorConfig::unauthenticated(), seed)
        .and_then(|mut i| i.write_act1().map(|a| (i, a)))
    {
        Ok(x) => x,
        Err(e) => return Try::Turned(format!("act 1: {e}")),
    };
    let mut raw = RawExchange::new(stream, Mode::Noise);
    let timeout = ctx.target().timeout;
    let (got, end) = if split == 0 {
        raw.exchange(&act1, timeout, ACT2_LEN).await
    } else {
        let (mut early, _) = raw
            .exchange(&act1[..split], Duration::from_millis(5), 1)
            .await;
        let (rest, end) = raw.exchange(&act1[split..], timeout, ACT2_LEN).await;
        early.extend(rest);
        (early, end)
    };
    let how = if split == 0 {
        "in one write".to_string()
    } else {
        format!("split {split} + {}", act1.len() - split)
    };
    if got.is_empty() && matches!(end, RawEnd::Closed | RawEnd::Error(_)) {
        return Try::Turned(format!("closed without a byte ({end:?})"));
    }
    let failed = |what: String, raw: RawExchange| {
        Try::Failed(
            format!("act 1 {} ({how}): {what}", hex::encode(&act1)),
            Box::new(raw.finish()),
        )
    };
    if got.len() < ACT2_LEN {
        return failed(format!("{} bytes of act 2, then {end:?}", got.len()), raw);
    }
    match initiator.read_act2(&got[..ACT2_LEN], unix_now()) {
        Ok(_) => Try::Completed,
        Err(e) => failed(format!("act 2 does not complete the handshake: {e}"), raw),
    }
}

async fn handshake_reliability(ctx: Ctx) -> Outcome {
    if let Some(skip) = noise_only(&ctx) {
        return skip;
    }
    let expected = format!(
        "act 2 for each of {RELIABILITY_HANDSHAKES} valid act 1s with random keys (half in one write, half split), a failure that repeats with the same act 1"
    );
    let started = tokio::time::Instant::now();
    // New batches stop after this (a pool where every handshake waits out the timeout would take
    // minutes); the runner allows a check more than this plus the confirmations.
    let budget = ctx.target().timeout * 4 + ctx.target().work_window;
    // (failure text, seed, split) of the act 1s that got no good act 2.
    let mut failures: Vec<(String, KeySeed, usize)> = Vec::new();
    let mut turned: Vec<String> = Vec::new();
    let mut done = 0usize;
    let mut kept = 0usize;
    while done < RELIABILITY_HANDSHAKES && started.elapsed() < budget {
        let batch = RELIABILITY_AT_ONCE.min(RELIABILITY_HANDSHAKES - done);
        let mut tasks = tokio::task::JoinSet::new();
        for i in done..done + batch {
            let ctx = ctx.clone();
            // Odd handshakes split act 1 at every point from 1 to 63 in turn.
            let split = if i % 2 == 0 { 0 } else { 1 + (i / 2) % 63 };
            let Ok(seed) = KeySeed::random() else {
                return Outcome::error("no randomness for the ephemeral keys");
            };
            tasks.spawn(async move {
                let t = one_handshake(&ctx, &seed, split).await;
                (t, seed, split)
            });
        }
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((Try::Completed, _, _)) => {}
                Ok((Try::Turned(why), _, _)) => turned.push(why),
                Ok((Try::Failed(what, transcript), seed, split)) => {
                    if kept < RELIABILITY_EVIDENCE {
                        kept += 1;
                        ctx.record(
                            format!("failed handshake {}", failures.len() + 1),
                            *transcript,
                        );
                    }
                    failures.push((what, seed, split));
                }
                Err(e) => turned.push(format!("task: {e}")),
            }
        }
        done += batch;
    }
    // A failure counts when it depends on the act: the same act 1 fails again on a fresh
    // connection, while a fresh key's succeeds (otherwise the pool was busy or limiting).
    let mut confirmed: Vec<String> = Vec::new();
    let mut unconfirmed = 0usize;
    let mut checks = tokio::task::JoinSet::new();
    for (what, seed, split) in failures.iter().take(RELIABILITY_CONFIRM).cloned() {
        let ctx = ctx.clone();
        let Ok(fresh_seed) = KeySeed::random() else {
            return Outcome::error("no randomness for the ephemeral keys");
        };
        checks.spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let again = one_handshake(&ctx, &seed, split).await;
            let control = one_handshake(&ctx, &fresh_seed, split).await;
            (
                what,
                matches!((again, control), (Try::Failed(..), Try::Completed)),
            )
        });
    }
    while let Some(joined) = checks.join_next().await {
        match joined {
            Ok((what, true)) => confirmed.push(what),
            _ => unconfirmed += 1,
        }
    }
    let rate = |n: usize| 100.0 * n as f64 / done.max(1) as f64;
    if !confirmed.is_empty() {
        return Outcome::fail(
            expected,
            format!(
                "{} of {done} handshakes failed ({:.1}%); {} of the {} replayed failed again with the same act 1 while a fresh key succeeded: {}{}",
                failures.len(),
                rate(failures.len()),
                confirmed.len(),
                failures.len().min(RELIABILITY_CONFIRM),
                confirmed.iter().take(3).cloned().collect::<Vec<_>>().join("; "),
                if turned.is_empty() {
                    String::new()
                } else {
                    format!("; {} connection(s) refused or closed at once", turned.len())
                }
            ),
        );
    }
    if !failures.is_empty() || !turned.is_empty() {
        return Outcome::error(format!(
            "cannot judge: {} of {done} handshakes failed ({} not repeating with the same act 1) and {} connection(s) were refused or closed at once ({}): the pool limits connections or was busy, not a failure that follows the act's bytes",
            failures.len(),
            unconfirmed,
            turned.len(),
            turned.first().cloned().unwrap_or_default()
        ));
    }
    if done < RELIABILITY_HANDSHAKES {
        return Outcome::pass(
            expected,
            format!("{done} of {done} handshakes completed (the time budget ended the run early)"),
        );
    }
    Outcome::pass(expected, format!("{done} of {done} handshakes completed"))
}
