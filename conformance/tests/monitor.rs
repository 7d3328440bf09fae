//! The passive monitor on transcripts made elsewhere: recorded from the server's side (as a
//! man-in-the-middle or a capture would see it), written to JSON and read back.

use sv2_codec::messages::common::SetupConnectionSuccess;
use sv2_codec::messages::mining::{
    OpenExtendedMiningChannel, OpenExtendedMiningChannelSuccess, SetTarget,
};
use sv2_codec::types::{B0_32, U256};
use sv2_codec::{to_frame_bytes, Message};
use sv2_conformance::monitor::{check_transcript, CHANNEL_MSG_BIT, TARGET_WITHIN_MAX};
use sv2_conformance::session::{setup_connection, str255};
use sv2_wire::{Direction, Retention, Side, Timestamp, Transcript};

fn frame(m: Message<'_>) -> Vec<u8> {
    to_frame_bytes(&m, &[]).unwrap()
}

/// A pool's view: the client's frames arrive (client to server), the pool's leave (server to client).
fn pool_side(target: [u8; 32], clear_channel_bit: bool) -> Transcript {
    let mut t = Transcript::default();
    let at = Timestamp(0);
    t.frame(
        at,
        Direction::ClientToServer,
        &frame(setup_connection(0, 2, 2, 0)),
        None,
    );
    t.frame(
        at,
        Direction::ServerToClient,
        &frame(
            SetupConnectionSuccess {
                used_version: 2,
                flags: 0,
            }
            .into(),
        ),
        None,
    );
    let mut max_target = [0xff; 32];
    max_target[31] = 0x00; // at most 2^248 - 1
    t.frame(
        at,
        Direction::ClientToServer,
        &frame(
            OpenExtendedMiningChannel {
                request_id: 5,
                user_identity: str255("m"),
                nominal_hash_rate: 1.0,
                max_target: U256(max_target),
                min_extranonce_size: 4,
            }
            .into(),
        ),
        None,
    );
    t.frame(
        at,
        Direction::ServerToClient,
        &frame(
            OpenExtendedMiningChannelSuccess {
                request_id: 5,
                channel_id: 1,
                target: U256(target),
                extranonce_size: 8,
                extranonce_prefix: B0_32::new(vec![1, 2, 3, 4]).unwrap(),
                group_channel_id: 0,
            }
            .into(),
        ),
        None,
    );
    let mut set_target = frame(
        SetTarget {
            channel_id: 1,
            maximum_target: U256([0; 32]),
        }
        .into(),
    );
    if clear_channel_bit {
        set_target[1] &= 0x7f;
    }
    t.frame(at, Direction::ServerToClient, &set_target, None);
    t
}

#[test]
fn a_clean_server_side_transcript_has_no_findings() {
    let mut target = [0u8; 32];
    target[30] = 0xff;
    let report = check_transcript(&pool_side(target, false));
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    assert!(report.exercised.contains(TARGET_WITHIN_MAX));
    assert!(report.exercised.contains(CHANNEL_MSG_BIT));
}

#[test]
fn findings_survive_a_json_round_trip_and_name_the_entry() {
    let transcript = pool_side([0xff; 32], true);
    let json = transcript.to_json();
    let back = Transcript::from_json(&json).unwrap();
    assert_eq!(back, transcript);
    let report = check_transcript(&back);
    let rules: Vec<(&str, usize)> = report.findings.iter().map(|f| (f.rule, f.entry)).collect();
    assert!(
        rules.contains(&(TARGET_WITHIN_MAX, 3)),
        "{:?}",
        report.findings
    );
    assert!(
        rules.contains(&(CHANNEL_MSG_BIT, 4)),
        "{:?}",
        report.findings
    );
    // Every finding is the server's.
    assert!(report.findings.iter().all(|f| f.by == Side::Server));
    // The same frames with the directions swapped are the client's: no server rule judges them
    // (only the client's rules do, and a pool's verdict takes none of those).
    let mut flipped = Transcript::default();
    for e in back.entries() {
        if let sv2_wire::Event::Frame {
            direction, plain, ..
        } = &e.event
        {
            flipped.frame(e.at, direction.reverse(), plain, None);
        }
    }
    let flipped = check_transcript(&flipped);
    assert!(flipped.findings.iter().all(|f| f.rule != TARGET_WITHIN_MAX));
    assert!(flipped
        .server()
        .findings
        .iter()
        .all(|f| f.rule != TARGET_WITHIN_MAX));
}

#[test]
fn malformed_transcript_json_is_an_error_not_a_panic() {
    for text in [
        "{}",
        "[{\"kind\": \"frame\"}]",
        "[{\"kind\": \"frame\", \"direction\": \"up\", \"frame\": \"00\"}]",
        "[{\"kind\": \"frame\", \"direction\": \"sent\", \"frame\": \"zz\"}]",
        "[{\"kind\": \"wat\"}]",
    ] {
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        assert!(Transcript::from_json(&v).is_err(), "{text}");
        assert!(
            Transcript::from_legacy_json(&v, Side::Client).is_err(),
            "{text}"
        );
    }
    // A frame that does not decode is kept (with its problem), and the monitor reports it.
    let v: serde_json::Value = serde_json::from_str(
        "[{\"kind\": \"frame\", \"direction\": \"sent\", \"frame\": \"000001030000aabbcc\"}]",
    )
    .unwrap();
    let t = Transcript::from_legacy_json(&v, Side::Server).unwrap();
    let report = check_transcript(&t);
    assert!(!report.findings.is_empty());
}

#[test]
fn a_transcript_without_its_start_is_not_judged() {
    // The same broken frames, but the oldest entry (the client's SetupConnection) dropped by the
    // retention limits: the monitor would judge a conversation it did not see from the start.
    let mut full = pool_side([0xff; 32], true);
    assert!(!check_transcript(&full).findings.is_empty());
    let mut cut = Transcript::new(Retention {
        max_entries: full.len() - 1,
        max_bytes: usize::MAX,
    });
    cut.append(&mut full);
    assert_eq!(cut.dropped(), 1);
    let report = check_transcript(&cut);
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    assert!(report.exercised.is_empty());
}

/// A share the client sent that does not decode strictly (here a 33-byte extranonce, as
/// `shares.extranonce-33` sends on purpose) is still a share: the server's SubmitShares.Error
/// echoing its sequence_number is right, not "a sequence number never sent".
#[test]
fn an_undecodable_share_is_still_a_share_the_server_may_answer() {
    use sv2_codec::messages::mining::{SubmitSharesError, SubmitSharesExtended};
    use sv2_conformance::monitor::{SHARE_ERROR_ECHO, STRICT_DECODING};

    let mut target = [0u8; 32];
    target[30] = 0xff;
    let mut t = pool_side(target, false);
    let at = Timestamp(1);
    // A valid 32-byte extranonce, then the B0_32 length byte raised to 33 with one byte more.
    let mut share = frame(
        SubmitSharesExtended {
            channel_id: 1,
            sequence_number: 7,
            job_id: 1,
            nonce: 0,
            ntime: 0,
            version: 0x2000_0000,
            extranonce: B0_32::new(vec![0xee; 32]).unwrap(),
        }
        .into(),
    );
    let len_at = share.len() - 33;
    assert_eq!(share[len_at], 32);
    share[len_at] = 33;
    share.push(0xee);
    let payload = (share.len() - 6) as u32;
    share[3..6].copy_from_slice(&payload.to_le_bytes()[..3]);
    t.frame(at, Direction::ClientToServer, &share, None);
    t.frame(
        at,
        Direction::ServerToClient,
        &frame(
            SubmitSharesError {
                channel_id: 1,
                sequence_number: 7,
                error_code: str255("invalid-share-encoding"),
            }
            .into(),
        ),
        None,
    );
    let report = check_transcript(&t);
    let server = report.server();
    assert!(
        server.findings.is_empty(),
        "the pool did right: {:?}",
        server.findings
    );
    assert!(server.exercised.contains(SHARE_ERROR_ECHO));
    // The client's frame itself breaks strict decoding, on the client's side only.
    assert!(report
        .findings
        .iter()
        .all(|f| f.rule != STRICT_DECODING && f.rule != SHARE_ERROR_ECHO));
    assert!(
        !report.findings.is_empty(),
        "the client's malformed share is a client finding"
    );

    // An Error echoing a sequence number that was never sent at all still fails.
    t.frame(
        at,
        Direction::ServerToClient,
        &frame(
            SubmitSharesError {
                channel_id: 1,
                sequence_number: 99,
                error_code: str255("invalid-share"),
            }
            .into(),
        ),
        None,
    );
    let server = check_transcript(&t).server();
    assert!(server.findings.iter().any(|f| f.rule == SHARE_ERROR_ECHO));
}

/// A frame for a channel that reaches the client just after its CloseChannel left may have crossed
/// it (the server sent it before it read the close): not a finding. One a second later is.
#[test]
fn a_frame_that_crossed_the_close_is_not_a_finding_but_a_later_one_is() {
    use sv2_codec::messages::mining::{CloseChannel, SetTarget as Target_};
    use sv2_conformance::monitor::SILENT_AFTER_CLOSE;

    let mut target = [0u8; 32];
    target[30] = 0xff;
    let mut t = pool_side(target, false);
    let secs = |s: u64, ms: u64| Timestamp(s * 1_000_000_000 + ms * 1_000_000);
    t.frame(
        secs(10, 0),
        Direction::ClientToServer,
        &frame(
            CloseChannel {
                channel_id: 1,
                reason_code: str255("bye"),
            }
            .into(),
        ),
        None,
    );
    let set_target = frame(
        Target_ {
            channel_id: 1,
            maximum_target: U256([0; 32]),
        }
        .into(),
    );
    t.frame(secs(10, 200), Direction::ServerToClient, &set_target, None);
    let report = check_transcript(&t).server();
    assert!(
        report.findings_for(SILENT_AFTER_CLOSE).next().is_none(),
        "in flight: {:?}",
        report.findings
    );
    t.frame(secs(11, 500), Direction::ServerToClient, &set_target, None);
    let report = check_transcript(&t).server();
    let found: Vec<_> = report.findings_for(SILENT_AFTER_CLOSE).collect();
    assert_eq!(found.len(), 1, "{:?}", report.findings);
    assert_eq!(found[0].entry, t.len() - 1);
}

/// The client rules about what a client sends, over a transcript: an empty vendor, a request_id
/// used twice, a sequence number used twice on a channel each fail their rule (by the client);
/// the same conversation without those faults breaks none, and every rule judged something.
#[test]
fn client_rules_fail_on_a_client_that_breaks_them() {
    use sv2_codec::messages::common::SetupConnection;
    use sv2_codec::messages::mining::{OpenStandardMiningChannel, SubmitSharesStandard};
    use sv2_conformance::monitor::{
        CLIENT_REQUEST_ID_UNIQUE, CLIENT_SEQUENCE_UNIQUE, CLIENT_VENDOR,
    };
    let conversation = |vendor: &str, second_request: u32, second_seq: u32| {
        let mut t = Transcript::default();
        let at = Timestamp(0);
        let client = |t: &mut Transcript, m: Message<'_>| {
            t.frame(at, Direction::ClientToServer, &frame(m), None)
        };
        client(
            &mut t,
            SetupConnection {
                protocol: 0,
                min_version: 2,
                max_version: 2,
                flags: 0,
                endpoint_host: str255("127.0.0.1"),
                endpoint_port: 0,
                vendor: str255(vendor),
                hardware_version: str255(""),
                firmware: str255(""),
                device_id: str255(""),
            }
            .into(),
        );
        for request_id in [1, second_request] {
            client(
                &mut t,
                OpenStandardMiningChannel {
                    request_id,
                    user_identity: str255("u"),
                    nominal_hash_rate: 1.0,
                    max_target: U256([0xff; 32]),
                }
                .into(),
            );
        }
        for sequence_number in [7, second_seq] {
            client(
                &mut t,
                SubmitSharesStandard {
                    channel_id: 1,
                    sequence_number,
                    job_id: 1,
                    nonce: 0,
                    ntime: 0,
                    version: 0x2000_0000,
                }
                .into(),
            );
        }
        check_transcript(&t).client()
    };
    let broken = conversation("", 1, 7);
    let rules: Vec<&str> = broken.findings.iter().map(|f| f.rule).collect();
    assert_eq!(
        rules,
        [
            CLIENT_VENDOR,
            CLIENT_REQUEST_ID_UNIQUE,
            CLIENT_SEQUENCE_UNIQUE
        ],
        "{:?}",
        broken.findings
    );
    assert!(broken.findings.iter().all(|f| f.by == Side::Client));
    assert_eq!(broken.findings[1].entry, 2, "the second request");
    let correct = conversation("sv2-toolkit", 2, 8);
    assert!(correct.findings.is_empty(), "{:?}", correct.findings);
    for rule in [
        CLIENT_VENDOR,
        CLIENT_REQUEST_ID_UNIQUE,
        CLIENT_SEQUENCE_UNIQUE,
    ] {
        assert!(correct.exercised.contains(rule), "{rule}");
    }
}

/// §5.3.11 (F67): a share's ntime lies in [min_ntime, min_ntime + seconds since the SetNewPrevHash];
/// a share just after a newer prev hash may still fit the one before (in flight).
#[test]
fn share_ntime_outside_its_window_fails_the_client_rule() {
    use sv2_codec::messages::mining::{SetNewPrevHash, SubmitSharesStandard};
    use sv2_conformance::monitor::CLIENT_SHARE_NTIME;
    let ms = |n: u64| Timestamp(1_700_000_000_000_000_000 + n * 1_000_000);
    let mut t = Transcript::default();
    let prev_hash = |min_ntime: u32| -> Message<'static> {
        SetNewPrevHash {
            channel_id: 1,
            job_id: 1,
            prev_hash: U256([1; 32]),
            min_ntime,
            nbits: 0x1d00_ffff,
        }
        .into()
    };
    let share = |seq: u32, ntime: u32| -> Message<'static> {
        SubmitSharesStandard {
            channel_id: 1,
            sequence_number: seq,
            job_id: 1,
            nonce: 0,
            ntime,
            version: 0x2000_0000,
        }
        .into()
    };
    t.frame(
        ms(0),
        Direction::ClientToServer,
        &frame(setup_connection(0, 2, 2, 0)),
        None,
    );
    t.frame(
        ms(0),
        Direction::ServerToClient,
        &frame(prev_hash(1000)),
        None,
    );
    for (at, seq, ntime) in [(5000, 1, 999), (5000, 2, 1003), (5000, 3, 1010)] {
        t.frame(
            ms(at),
            Direction::ClientToServer,
            &frame(share(seq, ntime)),
            None,
        );
    }
    t.frame(
        ms(10_000),
        Direction::ServerToClient,
        &frame(prev_hash(1020)),
        None,
    );
    // 0.5 s after the new prev hash: fits the one before (in flight); 2 s after: it no longer may.
    t.frame(
        ms(10_500),
        Direction::ClientToServer,
        &frame(share(4, 1008)),
        None,
    );
    t.frame(
        ms(12_000),
        Direction::ClientToServer,
        &frame(share(5, 1011)),
        None,
    );
    t.frame(
        ms(12_000),
        Direction::ClientToServer,
        &frame(share(6, 1021)),
        None,
    );
    let report = check_transcript(&t).client();
    let bad: Vec<&str> = report
        .findings
        .iter()
        .filter(|f| f.rule == CLIENT_SHARE_NTIME)
        .map(|f| f.detail.split(" on ").next().unwrap())
        .collect();
    assert_eq!(
        bad,
        ["share 1", "share 3", "share 5"],
        "{:?}",
        report.findings
    );
}

/// A prev hash to the channel, then a newer one to its group (as translator_sv2 was served): a share
/// on the channel's old job sent 1 ms after the group's prev hash is in flight, even when the new
/// min_ntime is one second above its ntime; 1.5 s after, it is not.
#[test]
fn a_share_in_flight_across_a_group_prev_hash_fits_the_channels_one() {
    use sv2_codec::messages::mining::{
        OpenExtendedMiningChannel, OpenExtendedMiningChannelSuccess, SetNewPrevHash,
        SubmitSharesExtended,
    };
    use sv2_conformance::monitor::CLIENT_SHARE_NTIME;
    let ms = |n: u64| Timestamp(1_700_000_000_999_000_000 + n * 1_000_000);
    let mut t = Transcript::default();
    let prev_hash = |channel_id: u32, min_ntime: u32| -> Message<'static> {
        SetNewPrevHash {
            channel_id,
            job_id: channel_id,
            prev_hash: U256([channel_id as u8; 32]),
            min_ntime,
            nbits: 0x1d00_ffff,
        }
        .into()
    };
    let share = |seq: u32, ntime: u32| -> Message<'static> {
        SubmitSharesExtended {
            channel_id: 1,
            sequence_number: seq,
            job_id: 1,
            nonce: 0,
            ntime,
            version: 0x2000_0000,
            extranonce: B0_32::new(vec![0; 28]).unwrap(),
        }
        .into()
    };
    let client = |t: &mut Transcript, at: u64, m: Message<'static>| {
        t.frame(ms(at), Direction::ClientToServer, &frame(m), None)
    };
    let server = |t: &mut Transcript, at: u64, m: Message<'static>| {
        t.frame(ms(at), Direction::ServerToClient, &frame(m), None)
    };
    client(&mut t, 0, setup_connection(0, 2, 2, 0));
    client(
        &mut t,
        0,
        OpenExtendedMiningChannel {
            request_id: 1,
            user_identity: str255("u"),
            nominal_hash_rate: 1.0,
            max_target: U256([0xff; 32]),
            min_extranonce_size: 0,
        }
        .into(),
    );
    server(
        &mut t,
        0,
        OpenExtendedMiningChannelSuccess {
            request_id: 1,
            channel_id: 1,
            target: U256([0xff; 32]),
            extranonce_size: 28,
            extranonce_prefix: B0_32::new(vec![0; 4]).unwrap(),
            group_channel_id: 2,
        }
        .into(),
    );
    server(&mut t, 0, prev_hash(1, 1000));
    client(&mut t, 1, share(1, 1000));
    server(&mut t, 2, prev_hash(2, 1001));
    client(&mut t, 3, share(2, 1000));
    client(&mut t, 1500, share(3, 1000));
    client(&mut t, 1500, share(4, 1001));
    let report = check_transcript(&t).client();
    let bad: Vec<&str> = report
        .findings
        .iter()
        .filter(|f| f.rule == CLIENT_SHARE_NTIME)
        .map(|f| f.detail.split(" on ").next().unwrap())
        .collect();
    assert_eq!(bad, ["share 3"], "{:?}", report.findings);
}

#[test]
fn the_client_rules_shown_failing_here_keep_their_ids() {
    // The catalogue test (every_check_can_fail.rs) finds each rule by its quoted id.
    use sv2_conformance::monitor::{
        CLIENT_REQUEST_ID_UNIQUE, CLIENT_SEQUENCE_UNIQUE, CLIENT_SHARE_NTIME, CLIENT_VENDOR,
    };
    let ids = [
        (CLIENT_VENDOR, "monitor.client-vendor"),
        (CLIENT_REQUEST_ID_UNIQUE, "monitor.client-request-id-unique"),
        (CLIENT_SHARE_NTIME, "monitor.client-share-ntime"),
        (CLIENT_SEQUENCE_UNIQUE, "monitor.client-sequence-unique"),
    ];
    for (constant, id) in ids {
        assert_eq!(constant, id);
    }
}
