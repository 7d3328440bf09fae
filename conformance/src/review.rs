//! What a check's own evidence says about its verdict, whatever the check concluded. Two things
//! make a verdict about the server's behaviour untrustworthy, and both are visible in the
//! transcripts of the check's connections:
//!
//! - **A refusal for a reason outside the check.** A pool that does not know the channel's
//!   `user_identity` refuses every channel (OpenMiningChannel.Error naming the user): a check that
//!   needed a channel judged a pool that never served it. A fail becomes an error that names the
//!   refusal and the option that fixes it (`--user`); so does a pass that rested on the refusal (a
//!   check that passes on "a refusal" and names the code it saw). Other passes stand: the pool did
//!   what the check wanted, and refused something else (an open before setup, say).
//! - **A frame the suite could not read.** A server frame that does not decode strictly, of a type
//!   that answers a request (or of no known type), may have been the very answer the check waited
//!   for (a malformed .Success is not an .Error). The monitor's
//!   strict-decoding rule fails the frame itself; a check cannot pass on a conversation it could not
//!   read whole, so a pass becomes an error showing the frame.
//!
//! Byte-level exchanges ([`Recorded::raw`]) are left out: the check read the server's bytes in a
//! mode the server may not speak, and judged them itself.

use sv2_codec::Message;
use sv2_wire::{Direction, Event};

use crate::session::Recorded;
use crate::verdict::{Outcome, Verdict};

/// Words in an OpenMiningChannel.Error code that say the refusal is about who is asking (the
/// user_identity), not about the channel asked for. The spec's list of codes is gone from its
/// current text; `unknown-user` is the reference implementation's and older spec versions' code.
const USER_WORDS: &[&str] = &[
    "user",
    "identity",
    "worker",
    "account",
    "addr",
    "payout",
    "wallet",
    "auth",
    "login",
    "credential",
];

/// Whether an OpenMiningChannel.Error code refuses the user rather than the channel.
pub fn refuses_user(code: &str) -> bool {
    let code = code.to_ascii_lowercase();
    USER_WORDS.iter().any(|w| code.contains(w))
}

/// The first OpenMiningChannel.Error refusing the user in the check's framed connections.
fn user_refusal(evidence: &[Recorded]) -> Option<String> {
    evidence
        .iter()
        .filter(|r| !r.raw)
        .flat_map(|r| r.transcript.messages(Direction::ServerToClient))
        .find_map(|d| match &d.message {
            Message::OpenMiningChannelError(e) => {
                let code = String::from_utf8_lossy(e.error_code.as_bytes()).into_owned();
                refuses_user(&code).then_some(code)
            }
            _ => None,
        })
}

/// The first server frame of the check's framed connections that does not decode strictly, in
/// words, with its bytes.
fn unreadable_frame(evidence: &[Recorded]) -> Option<String> {
    evidence.iter().filter(|r| !r.raw).find_map(|r| {
        r.transcript.entries().iter().find_map(|e| match &e.event {
            Event::Frame {
                direction: Direction::ServerToClient,
                plain,
                decoded: Err(problem),
                ..
            } if could_be_an_answer(plain) => Some(format!(
                "{problem} (frame {}{})",
                hex::encode(&plain[..plain.len().min(64)]),
                if plain.len() > 64 { "..." } else { "" }
            )),
            _ => None,
        })
    })
}

/// Whether an undecodable frame may be an answer a check waited for: its header names no known
/// message, or a `.Success`/`.Error`. Broadcasts (jobs, targets, prev hashes) are no answer to a
/// request; the monitor's strict-decoding rule judges them.
fn could_be_an_answer(plain: &[u8]) -> bool {
    let Some(h) = plain.first_chunk::<3>() else {
        return true;
    };
    let ext = u16::from_le_bytes([h[0], h[1]]) & 0x7fff;
    sv2_codec::messages::MESSAGE_TYPES
        .iter()
        .find(|m| m.extension_type == ext && m.msg_type == h[2])
        .is_none_or(|m| m.name.ends_with(".Success") || m.name.ends_with(".Error"))
}

/// The verdict the evidence allows: `outcome` itself, or an error saying why it cannot stand.
/// `user_identity` is the one the check's channels asked with.
pub fn review(outcome: Outcome, evidence: &[Recorded], user_identity: &str) -> Outcome {
    if matches!(outcome.verdict, Verdict::Skip | Verdict::Error) {
        return outcome;
    }
    // A pass stands unless it rested on the refusal itself (a check that passes on "a refusal"
    // names the code it saw): a pool that also refused some other open (one sent before setup, or
    // to show it still serves) did what the check wanted.
    let refusal = user_refusal(evidence).filter(|code| {
        outcome.verdict == Verdict::Fail || outcome.observed.contains(code.as_str())
    });
    if let Some(code) = refusal {
        return Outcome::error(format!(
            "cannot judge: the pool refused the channel's user_identity {user_identity:?} \
             (OpenMiningChannel.Error {code:?}), a reason outside this check; run again with \
             --user and an identity the pool accepts (the check had concluded {}: {})",
            outcome.verdict.as_str(),
            outcome.observed
        ));
    }
    if outcome.verdict == Verdict::Pass {
        if let Some(frame) = unreadable_frame(evidence) {
            return Outcome::error(format!(
                "cannot judge: the server sent a frame that does not decode strictly, which may \
                 have been the answer this check waited for: {frame} (monitor.strict-decoding \
                 judges the frame; the check had seen: {})",
                outcome.observed
            ));
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use sv2_codec::messages::mining::OpenMiningChannelError;
    use sv2_codec::types::Str0_255;
    use sv2_codec::Frame;
    use sv2_wire::{Timestamp, Transcript};

    fn recorded(frames: &[Vec<u8>], raw: bool) -> Recorded {
        let mut transcript = Transcript::default();
        for f in frames {
            transcript.frame(Timestamp(1), Direction::ServerToClient, f, None);
        }
        Recorded {
            label: "test".into(),
            transcript,
            raw,
        }
    }

    fn refusal(code: &str) -> Vec<u8> {
        let m: Message<'static> = OpenMiningChannelError {
            request_id: 1,
            error_code: Str0_255::new(code.as_bytes().to_vec()).unwrap(),
        }
        .into();
        sv2_codec::to_frame_bytes(&m, &[]).unwrap()
    }

    #[test]
    fn user_codes_are_told_from_channel_codes() {
        for code in [
            "unknown-user",
            "invalid-bitcoin-address",
            "invalid-btc-addr",
            "invalid-payout-script",
            "Unauthorized",
            "bad worker",
        ] {
            assert!(refuses_user(code), "{code}");
        }
        for code in [
            "max-target-out-of-range",
            "min-extranonce-size-too-large",
            "standard-channels-not-supported",
            "channel-capacity-exhausted",
        ] {
            assert!(!refuses_user(code), "{code}");
        }
    }

    #[test]
    fn a_user_refusal_turns_pass_and_fail_into_an_error_naming_the_option() {
        let evidence = [recorded(&[refusal("unknown-user")], false)];
        for outcome in [
            Outcome::pass("e", "OpenMiningChannel.Error \"unknown-user\""),
            Outcome::fail("e", "closed"),
        ] {
            let reviewed = review(outcome, &evidence, "me");
            assert_eq!(reviewed.verdict, Verdict::Error);
            assert!(
                reviewed.observed.contains("--user"),
                "{}",
                reviewed.observed
            );
            assert!(reviewed.observed.contains("unknown-user"));
        }
        let skip = review(Outcome::skip("n/a"), &evidence, "me");
        assert_eq!(skip.verdict, Verdict::Skip);
        // A pass that did not rest on the refusal (the pool answered, and also refused some other
        // open) stands.
        let pass = review(
            Outcome::pass("e", "ignored; the next request was answered"),
            &evidence,
            "me",
        );
        assert_eq!(pass.verdict, Verdict::Pass);
        // A refusal about the channel itself is the check's business.
        let evidence = [recorded(&[refusal("max-target-out-of-range")], false)];
        assert_eq!(
            review(Outcome::pass("e", "refused"), &evidence, "me").verdict,
            Verdict::Pass
        );
    }

    #[test]
    fn an_unreadable_server_frame_stops_a_pass_but_not_a_fail() {
        // SetCustomMiningJob.Error (0x24, a channel message) with its channel_msg bit cleared.
        let mut frame = refusal("x");
        frame[2] = 0x24;
        frame[1] &= 0x7f;
        assert!(Frame::parse(&frame).is_ok());
        let evidence = [recorded(&[frame.clone()], false)];
        let reviewed = review(Outcome::pass("e", "a close"), &evidence, "me");
        assert_eq!(reviewed.verdict, Verdict::Error);
        assert!(reviewed.observed.contains("does not decode strictly"));
        assert_eq!(
            review(Outcome::fail("e", "o"), &evidence, "me").verdict,
            Verdict::Fail
        );
        // Raw exchanges are the check's own business.
        let raw = [recorded(&[frame], true)];
        assert_eq!(
            review(Outcome::pass("e", "o"), &raw, "me").verdict,
            Verdict::Pass
        );
    }
}
