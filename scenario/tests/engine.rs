//! The scenario engine without any I/O: each action on real frames, matching by message, fields,
//! direction, order, time and other rules, and files that are refused with the rule named.

use std::sync::Arc;
use std::time::Duration;

use sv2_codec::messages::mining::{SetTarget, SubmitSharesSuccess};
use sv2_codec::types::U256;
use sv2_codec::{decode_frame, to_frame_bytes, Frame, Message};
use sv2_scenario::{Engine, From, Scenario, Step};

fn ack(channel_id: u32, seq: u32) -> Vec<u8> {
    to_frame_bytes(
        &SubmitSharesSuccess {
            channel_id,
            last_sequence_number: seq,
            new_submits_accepted_count: 1,
            new_shares_sum: 1,
        }
        .into(),
        &[],
    )
    .unwrap()
}

fn target(channel_id: u32) -> Vec<u8> {
    to_frame_bytes(
        &SetTarget {
            channel_id,
            maximum_target: U256([0xff; 32]),
        }
        .into(),
        &[],
    )
    .unwrap()
}

fn engine(toml: &str) -> Engine {
    Engine::new(Arc::new(Scenario::from_toml(toml).unwrap()))
}

fn sent(steps: &[Step]) -> Vec<Vec<u8>> {
    steps
        .iter()
        .filter_map(|s| match s {
            Step::Send { frame, .. } => Some(frame.clone()),
            _ => None,
        })
        .collect()
}

fn decoded(frame: &[u8]) -> Message<'static> {
    let (f, _) = Frame::parse(frame).unwrap();
    decode_frame(&f).unwrap().message.into_static()
}

#[test]
fn drop_matches_by_message_direction_and_fields() {
    let mut e = engine(
        r#"
        [[rule]]
        name = "drop acks on channel 2"
        from = "server"
        message = "SubmitShares.Success"
        where = { channel_id = 2 }
        action = "drop"
        "#,
    );
    let t = Duration::ZERO;
    assert!(sent(&e.on_frame(From::Server, &ack(2, 1), t).steps).is_empty());
    assert_eq!(
        sent(&e.on_frame(From::Server, &ack(1, 1), t).steps),
        [ack(1, 1)]
    );
    assert_eq!(
        sent(&e.on_frame(From::Client, &ack(2, 1), t).steps),
        [ack(2, 1)]
    );
    assert_eq!(
        sent(&e.on_frame(From::Server, &target(2), t).steps),
        [target(2)]
    );
    let applied = e.on_frame(From::Server, &ack(2, 9), t);
    assert_eq!(
        applied.fired.unwrap().0,
        "drop acks on channel 2",
        "the firing names its rule"
    );
    assert_eq!(e.fired(), [("drop acks on channel 2".to_string(), 2)]);
}

#[test]
fn nth_times_after_and_after_rule() {
    let mut e = engine(
        r#"
        [[rule]]
        name = "second"
        message = "SetTarget"
        nth = 2
        action = "drop"

        [[rule]]
        name = "late"
        message = "SubmitShares.Success"
        after_ms = 1000
        times = 1
        action = "drop"

        [[rule]]
        name = "after late"
        message = "SubmitShares.Success"
        after_rule = "late"
        action = "duplicate"
        copies = 3
        "#,
    );
    let now = Duration::ZERO;
    assert_eq!(
        sent(&e.on_frame(From::Server, &target(1), now).steps).len(),
        1
    );
    assert_eq!(
        sent(&e.on_frame(From::Server, &target(1), now).steps).len(),
        0
    );
    assert_eq!(
        sent(&e.on_frame(From::Server, &target(1), now).steps).len(),
        1
    );
    // Before 1 s the ack goes through; at 1 s it is dropped once; then "after late" triples acks.
    assert_eq!(
        sent(&e.on_frame(From::Server, &ack(1, 1), now).steps).len(),
        1
    );
    let later = Duration::from_secs(1);
    assert_eq!(
        sent(&e.on_frame(From::Server, &ack(1, 2), later).steps).len(),
        0
    );
    assert_eq!(
        sent(&e.on_frame(From::Server, &ack(1, 3), later).steps).len(),
        3
    );
}

#[test]
fn delay_reorder_replace_inject_and_close() {
    let mut e = engine(
        r#"
        [[rule]]
        message = "SetTarget"
        where = { channel_id = 1 }
        action = "delay"
        ms = 2000

        [[rule]]
        message = "SetTarget"
        where = { channel_id = 2 }
        action = "reorder"

        [[rule]]
        message = "SetTarget"
        where = { channel_id = 3 }
        action = "replace"
        set = { maximum_target = "0000000000000000000000000000000000000000000000000000000000000001" }

        [[rule]]
        message = "SetTarget"
        where = { channel_id = 4 }
        action = "inject-after"
        inject = { message = "SetTarget", channel_id = 44, maximum_target = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff" }

        [[rule]]
        message = "SetTarget"
        where = { channel_id = 5 }
        action = "close"
        "#,
    );
    let t = Duration::ZERO;
    let steps = e.on_frame(From::Server, &target(1), t).steps;
    assert!(matches!(&steps[..], [Step::Send { delay, .. }] if *delay == Duration::from_secs(2)));
    // Held, then sent behind the next frame that way.
    assert!(sent(&e.on_frame(From::Server, &target(2), t).steps).is_empty());
    assert_eq!(
        sent(&e.on_frame(From::Server, &ack(1, 1), t).steps),
        [ack(1, 1), target(2)]
    );
    let replaced = sent(&e.on_frame(From::Server, &target(3), t).steps);
    match decoded(&replaced[0]) {
        Message::SetTarget(s) => {
            assert_eq!(s.channel_id, 3);
            assert_eq!(s.maximum_target.0[31], 1, "U256 hex is in wire order");
        }
        other => panic!("{other:?}"),
    }
    let injected = sent(&e.on_frame(From::Server, &target(4), t).steps);
    assert_eq!(injected.len(), 2);
    assert_eq!(injected[0], target(4));
    assert!(matches!(decoded(&injected[1]), Message::SetTarget(s) if s.channel_id == 44));
    assert_eq!(e.on_frame(From::Server, &target(5), t).steps, [Step::Close]);
}

#[test]
fn corruptions_break_the_frame_as_named() {
    let cases = [
        ("flip-bit\"\nbit = 9", 0usize),
        ("truncate\"\nkeep = 4", 1),
        ("lie-length\"\nby = 3", 2),
        ("channel-bit\"", 3),
        ("break-mac\"", 4),
    ];
    for (corrupt, case) in cases {
        let mut e = engine(&format!(
            "[[rule]]\nmessage = \"SetTarget\"\naction = \"corrupt\"\ncorrupt = \"{corrupt}\n"
        ));
        let original = target(7);
        let steps = e.on_frame(From::Server, &original, Duration::ZERO).steps;
        let Step::Send { frame, shape, .. } = &steps[0] else {
            panic!("{steps:?}")
        };
        match case {
            0 => {
                assert_eq!(frame[1], original[1] ^ 0x02);
                assert_eq!(frame.len(), original.len());
            }
            1 => {
                assert_eq!(frame.len(), 6 + 4);
                assert_eq!(&frame[3..6], &[4, 0, 0]);
            }
            2 => {
                assert_eq!(frame.len(), original.len());
                assert_eq!(frame[3], original[3] + 3);
            }
            3 => assert_eq!(frame[1], original[1] ^ 0x80),
            _ => {
                assert_eq!(frame, &original);
                assert!(shape.flip_last_byte);
            }
        }
    }
}

#[test]
fn files_that_cannot_work_are_refused_naming_the_rule() {
    for (toml, wanted) in [
        ("[[rule]]\nname = \"x\"\nmessage = \"NoSuchMessage\"\naction = \"drop\"", "NoSuchMessage"),
        ("[[rule]]\nname = \"x\"\naction = \"explode\"", "unknown action"),
        ("[[rule]]\nname = \"x\"\naction = \"delay\"", "needs `ms`"),
        ("[[rule]]\nname = \"x\"\nmessage = \"SetTarget\"\naction = \"inject-before\"\ninject = { message = \"SetTarget\" }", "inject"),
        ("[[rule]]\nname = \"x\"\naction = \"drop\"\nafter_rule = \"y\"", "after_rule"),
        ("[[rule]]\nname = \"x\"\naction = \"drop\"\nwhere = { channel_id = 1 }", "needs `message`"),
        ("[[rule]]\naction = \"drop\"\nsurprise = 1", "unknown field"),
    ] {
        let error = Scenario::from_toml(toml).unwrap_err().to_string();
        assert!(error.contains(wanted), "{toml}: {error}");
    }
}

#[test]
fn field_values_compare_as_written() {
    use sv2_codec::messages::mining::OpenStandardMiningChannel;
    use sv2_codec::types::Str0_255;
    let open = |user: &str| {
        to_frame_bytes(
            &OpenStandardMiningChannel {
                request_id: 1,
                user_identity: Str0_255::new(user.as_bytes().to_vec()).unwrap(),
                nominal_hash_rate: 1.0,
                max_target: U256([0xff; 32]),
            }
            .into(),
            &[],
        )
        .unwrap()
    };
    let mut e = engine(
        "[[rule]]\nmessage = \"OpenStandardMiningChannel\"\nwhere = { user_identity = \"Alice\" }\naction = \"drop\"\n",
    );
    // Text is exact (only hex strings compare in either case).
    assert_eq!(
        sent(
            &e.on_frame(From::Client, &open("alice"), Duration::ZERO)
                .steps
        )
        .len(),
        1
    );
    assert_eq!(
        sent(
            &e.on_frame(From::Client, &open("Alice"), Duration::ZERO)
                .steps
        )
        .len(),
        0
    );
    // Hex in either case.
    let mut e = engine(&format!(
        "[[rule]]\nmessage = \"SetTarget\"\nwhere = {{ maximum_target = \"{}\" }}\naction = \"drop\"\n",
        "FF".repeat(32)
    ));
    assert_eq!(
        sent(&e.on_frame(From::Server, &target(1), Duration::ZERO).steps).len(),
        0
    );
}

#[test]
fn a_conversation_naming_a_value_never_saved_is_refused() {
    let error = sv2_scenario::Script::from_toml(
        "[[step]]\nexpect = \"SetTarget\"\nwhere = { channel_id = \"${chan}\" }\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("${chan} is not saved by an earlier step"),
        "{error}"
    );
    sv2_scenario::Script::from_toml(
        "[[step]]\nexpect = \"SetTarget\"\nsave = { chan = \"channel_id\" }\n[[step]]\nexpect = \"SetTarget\"\nwhere = { channel_id = \"${chan}\" }\n",
    )
    .unwrap();
}

#[test]
fn a_field_the_message_does_not_have_is_refused_and_merged_rules_keep_their_files_names() {
    let error = Scenario::from_toml(
        "[[rule]]\nname = \"x\"\nmessage = \"SetTarget\"\nwhere = { chanel_id = 1 }\naction = \"drop\"\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains(
            "SetTarget has no field \"chanel_id\" (its fields: channel_id, maximum_target)"
        ),
        "{error}"
    );
    let error = sv2_scenario::Script::from_toml(
        "[[step]]\nexpect = \"SetTarget\"\nsave = { t = \"target\" }\n",
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("no field \"target\""), "{error}");
    // Two files, each with an unnamed first rule and an after_rule naming it.
    let file = |name: &str| {
        Scenario::from_toml(&format!(
            "name = \"{name}\"\n[[rule]]\nmessage = \"SetTarget\"\nnth = 1\naction = \"pass\"\n[[rule]]\nmessage = \"SetTarget\"\nafter_rule = \"rule 1\"\naction = \"drop\"\n"
        ))
        .unwrap()
    };
    let merged = Scenario::merge(vec![file("a"), file("b")]);
    let names: Vec<&str> = merged.rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["a: rule 1", "a: rule 2", "b: rule 1", "b: rule 2"]);
    assert_eq!(merged.rules[3].after_rule.as_deref(), Some("b: rule 1"));
}

#[test]
fn extension_matches_frames_of_unknown_extensions_by_header() {
    let mut e = engine(
        r#"
[[rule]]
extension = 0x4abc
action = "drop"
"#,
    );
    // Extension 0x4abc, with and without the channel_msg bit: no message decodes them.
    let unknown = [0xbc, 0x4a, 0x01, 0x02, 0x00, 0x00, 0xaa, 0xbb];
    let channel = [0xbc, 0xca, 0x02, 0x04, 0x00, 0x00, 1, 0, 0, 0];
    for frame in [&unknown[..], &channel[..]] {
        let applied = e.on_frame(From::Server, frame, Duration::ZERO);
        assert!(sent(&applied.steps).is_empty(), "{frame:?} dropped");
    }
    // A core message (extension 0) and another extension pass.
    let other = [0x01, 0x00, 0x01, 0x00, 0x00, 0x00];
    for frame in [ack(1, 1), other.to_vec()] {
        let applied = e.on_frame(From::Server, &frame, Duration::ZERO);
        assert_eq!(sent(&applied.steps), vec![frame]);
    }
}

#[test]
fn msg_type_matches_frames_by_header_even_undefined_ones() {
    let mut e = engine(
        r#"
[[rule]]
extension = 0
msg_type = 0x7e
action = "drop"
"#,
    );
    // Mining message 0x7e: no message of the spec has it.
    let undefined = [0x00, 0x00, 0x7e, 0x02, 0x00, 0x00, 0xaa, 0xbb];
    let applied = e.on_frame(From::Server, &undefined, Duration::ZERO);
    assert!(sent(&applied.steps).is_empty());
    // Other core messages pass.
    let frame = ack(1, 1);
    let applied = e.on_frame(From::Server, &frame, Duration::ZERO);
    assert_eq!(sent(&applied.steps), vec![frame]);
}
