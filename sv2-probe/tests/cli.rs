//! The `sv2-probe decode` and `encode` commands, run as the real binary.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

/// SubmitSharesStandard: channel 1, sequence 2, job 3, nonce 4, ntime 5, version 0x20000000.
const SHARE: &str = "00801a180000010000000200000003000000040000000500000000000020";

/// Frames without TLVs of several types, written out by hand (see each comment).
const FRAMES: &[(&str, &str)] = &[
    ("SubmitSharesStandard", SHARE),
    // SetupConnection: mining, versions 2-2, flags 1, "pool.example":3333, vendor "acme",
    // hardware_version "", firmware ff 00 c3 (not UTF-8), device_id "dev\n1".
    (
        "SetupConnection",
        "0000002800000002000200010000000c706f6f6c2e6578616d706c65050d0461636d650003ff00c3056465760a31",
    ),
    // SetupConnection.Error: flags 0, error_code ff fe (not UTF-8).
    ("SetupConnection.Error", "0000020700000000000002fffe"),
    // Mining's SetNewPrevHash: channel 1, job 2, prev_hash 11.., min_ntime 5, nbits 0x1d00ffff.
    (
        "SetNewPrevHash",
        "0080203000000100000002000000111111111111111111111111111111111111111111111111111111111111111105000000ffff001d",
    ),
    // Template Distribution's SetNewPrevHash: template 7, prev_hash 22.., timestamp 5, nBits, target ff...
    (
        "SetNewPrevHash",
        "0000725000000700000000000000222222222222222222222222222222222222222222222222222222222222222205000000ffff001dffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    ),
    // NewExtendedMiningJob: channel 1, job 2, min_ntime none, version 0x20000000, rolling allowed,
    // merkle_path [33.., 44..], coinbase prefix 020000000001, empty suffix.
    (
        "NewExtendedMiningJob",
        "00801f5900000100000002000000000000002001023333333333333333333333333333333333333333333333333333333333333333444444444444444444444444444444444444444444444444444444444444444406000200000000010000",
    ),
    // OpenStandardMiningChannel: request 1, "alice.w1", 1.5e12 H/s, max_target ff...
    (
        "OpenStandardMiningChannel",
        "0000103100000100000008616c6963652e77317c9fae53ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    ),
    // UpdateChannel: channel 1, nominal_hash_rate 0.1 (not exact in binary), maximum_target ff...
    (
        "UpdateChannel",
        "00801628000001000000cdcccc3dffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    ),
    // UpdateChannel: channel 1, nominal_hash_rate NaN, maximum_target ff...
    (
        "UpdateChannel",
        "008016280000010000000000c07fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    ),
    // RequestExtensions.Success (extension 0x0001): request 1, supported [2, 3].
    ("RequestExtensions.Success", "0100010800000100020002000300"),
    // An unknown extension 0x1234, channel message, msg_type 5, payload 01 02.
    ("raw", "3492050200000102"),
];

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// stdout as one JSON value per line.
    fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

fn probe(args: &[&str], stdin: Option<&str>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sv2-probe"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sv2-probe");
    let mut input = child.stdin.take().unwrap();
    input
        .write_all(stdin.unwrap_or_default().as_bytes())
        .unwrap();
    drop(input);
    let output = child.wait_with_output().unwrap();
    Run {
        code: output.status.code().expect("exit code"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

#[test]
fn decode_text_of_a_share() {
    let run = probe(&["decode", SHARE], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stderr, "");
    insta::assert_snapshot!(run.stdout);
}

#[test]
fn decode_json_of_a_share() {
    let run = probe(&["decode", "--json", SHARE], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.lines().count(), 1, "one line per frame");
    insta::assert_json_snapshot!(run.json_lines()[0]);
}

#[test]
fn decode_cuts_concatenated_frames_in_one_argument_and_across_arguments() {
    let set_target = format!("008021240000{}{}", "07000000", "ab".repeat(32));
    let run = probe(
        &[
            "decode",
            "--json",
            &format!("{SHARE}{set_target}"),
            FRAMES[9].1,
        ],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines = run.json_lines();
    let names: Vec<&str> = lines
        .iter()
        .map(|l| l["message"]["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "SubmitSharesStandard",
            "SetTarget",
            "RequestExtensions.Success"
        ]
    );
    assert_eq!(lines[1]["message"]["channel_id"], 7);
    assert_eq!(lines[1]["msg_length"], 36);
    assert_eq!(lines[2]["extension_type"], 1);

    // Text: one block per frame, separated by a blank line.
    let run = probe(&["decode", &format!("{SHARE}{set_target}")], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let blocks: Vec<&str> = run.stdout.split("\n\n").collect();
    assert_eq!(blocks.len(), 2, "{}", run.stdout);
    assert!(blocks[1].starts_with(
        "SetTarget (extension_type 0x0000, channel_msg true, msg_type 0x21, msg_length 36)\n"
    ));
    assert!(blocks[1].contains(&format!("  maximum_target: {}\n", "ab".repeat(32))));
}

#[test]
fn decode_reads_stdin_with_whitespace_and_prefixes() {
    let spaced: String = SHARE
        .as_bytes()
        .chunks(8)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(" \t");
    let stdin = format!("0x{spaced}\n\n0X{}\n", FRAMES[2].1);
    let run = probe(&["decode", "--json"], Some(&stdin));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines = run.json_lines();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["message"]["nonce"], 4);
    assert_eq!(lines[1]["message"]["error_code"], json!({"hex": "fffe"}));
}

#[test]
fn decode_text_quotes_strings_and_shows_bytes_as_hex() {
    let run = probe(&["decode", FRAMES[1].1], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for line in [
        "  endpoint_host: \"pool.example\"\n",
        "  hardware_version: \"\"\n",
        "  firmware: (non-UTF-8) ff00c3\n",
        "  device_id: \"dev\\n1\"\n",
    ] {
        assert!(run.stdout.contains(line), "{line:?} in\n{}", run.stdout);
    }
    let run = probe(&["decode", FRAMES[5].1, FRAMES[7].1], None);
    for line in [
        "  min_ntime: none\n",
        "  merkle_path: 2 items\n",
        &format!("    [1] {}\n", "44".repeat(32)),
        "  coinbase_tx_prefix: 020000000001\n",
        "  coinbase_tx_suffix: (empty)\n",
        "  nominal_hash_rate: 0.1\n",
    ] {
        assert!(run.stdout.contains(line), "{line:?} in\n{}", run.stdout);
    }
}

#[test]
fn an_oversized_b0_32_fails_naming_the_field_and_later_frames_still_decode() {
    // SetExtranoncePrefix, channel 1, extranonce_prefix of 33 bytes; then a valid share.
    let bad = format!("0080192600000100000021{}", "ab".repeat(33));
    let run = probe(&["decode", &format!("{bad}{SHARE}")], None);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains(
            "frame 0 (input 0, byte 0): SetExtranoncePrefix.extranonce_prefix at payload offset 4: \
             length 33 exceeds the maximum 32"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.starts_with("SubmitSharesStandard "),
        "{}",
        run.stdout
    );

    let run = probe(&["decode", "--json", &format!("{bad}{SHARE}")], None);
    assert_eq!(run.code, 1);
    let lines = run.json_lines();
    assert_eq!(lines.len(), 2);
    let error = &lines[0]["error"];
    assert_eq!(error["kind"], "decode");
    assert_eq!(error["frame"], 0);
    assert_eq!(error["offset"], 0);
    assert_eq!(error["message"], "SetExtranoncePrefix");
    assert_eq!(error["field"], "extranonce_prefix");
    assert_eq!(error["payload_offset"], 4);
    assert_eq!(lines[1]["message"]["message"], "SubmitSharesStandard");
    assert!(run.stderr.contains("extranonce_prefix"), "{}", run.stderr);
}

#[test]
fn a_truncated_frame_fails_after_the_frames_before_it() {
    let truncated = &SHARE[..SHARE.len() - 2];
    let run = probe(&["decode", "--json", &format!("{SHARE}{truncated}")], None);
    assert_eq!(run.code, 1);
    let lines = run.json_lines();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["message"]["message"], "SubmitSharesStandard");
    assert_eq!(
        lines[1],
        json!({"error": {
            "kind": "frame", "input": 0, "frame": 1, "offset": 30, "remaining": 29,
            "text": "incomplete frame: 1 more bytes needed",
        }})
    );
    assert!(
        run.stderr
            .contains("frame 1 (input 0, byte 30): incomplete frame: 1 more bytes needed"),
        "{}",
        run.stderr
    );

    // Stray bytes after the last frame (fewer than a header).
    let run = probe(&["decode", &format!("{SHARE}0000")], None);
    assert_eq!(run.code, 1);
    assert!(run.stdout.starts_with("SubmitSharesStandard "));
    assert!(
        run.stderr.contains("(2 bytes left in the input)"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_payload_that_disagrees_with_its_type_fails_with_exit_1() {
    // SubmitSharesStandard with a 20-byte payload: version is missing.
    let short = format!("00801a140000{}", &SHARE[12..SHARE.len() - 8]);
    let run = probe(&["decode", &short], None);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("SubmitSharesStandard.version at payload offset 20: truncated"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "");
}

#[test]
fn invalid_hex_fails_with_exit_1_and_other_arguments_still_decode() {
    let run = probe(&["decode", "--json", "00801g", SHARE], None);
    assert_eq!(run.code, 1);
    let lines = run.json_lines();
    assert_eq!(
        lines[0],
        json!({"error": {"kind": "hex", "input": 0, "offset": 5,
            "text": "invalid hex character 'g' at text offset 5"}})
    );
    assert_eq!(lines[1]["message"]["message"], "SubmitSharesStandard");
    assert!(
        run.stderr.contains("input 0: invalid hex character 'g'"),
        "{}",
        run.stderr
    );

    let run = probe(&["decode"], Some("abc"));
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("odd number of hex digits (3)"),
        "{}",
        run.stderr
    );
}

#[test]
fn usage_errors_exit_2() {
    let run = probe(&["decode", "--no-such-flag", SHARE], None);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let run = probe(&["no-such-command"], None);
    assert_eq!(run.code, 2, "{}", run.stderr);
}

#[test]
fn an_unknown_extension_decodes_as_raw() {
    let run = probe(&["decode", "3492050200000102"], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "raw (extension_type 0x1234, channel_msg true, msg_type 0x05, msg_length 2)\n  payload: 0102\n"
    );
    let run = probe(&["decode", "--json", "3492050200000102"], None);
    assert_eq!(
        run.json_lines()[0]["message"],
        json!({"message": "raw", "extension_type": 0x1234, "channel_msg": true,
            "msg_type": 5, "payload": "0102"})
    );
}

#[test]
fn decode_shows_tlvs_and_warnings() {
    // SubmitSharesExtended with extranonce aabbccdd, then user_identity "worker1" and an unknown TLV.
    let frame = "00801b30000001000000020000000300000004000000050000000000002004aabbccdd\
                 0200010700776f726b6572310900030200abcd";
    let run = probe(&["decode", frame], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.ends_with(
            "  extranonce: aabbccdd\n  tlvs:\n    0x0002/0x01 user_identity: \"worker1\"\n    \
             0x0009/0x03 (unknown): abcd\n  warnings:\n    unknown TLV 0x0009/0x03 at offset 41\n"
        ),
        "{}",
        run.stdout
    );
    let run = probe(&["decode", "--json", frame], None);
    let line = &run.json_lines()[0];
    assert_eq!(
        line["tlvs"],
        json!([
            {"extension_type": 2, "field_type": 1, "value": "776f726b657231"},
            {"extension_type": 9, "field_type": 3, "value": "abcd"},
        ])
    );
    // The warnings are the codec's own JSON of them.
    let bytes = hex::decode(frame).unwrap();
    let decoded = sv2_codec::decode_frame(&sv2_codec::Frame::parse(&bytes).unwrap().0).unwrap();
    assert_eq!(decoded.warnings.len(), 1);
    assert_eq!(
        line["warnings"],
        serde_json::to_value(&decoded.warnings).unwrap()
    );
    assert!(line["warnings"].to_string().contains("\"unknown_tlv\""));

    // A full `decode --json` line encodes back to the same frame, TLVs included.
    let run = probe(&["encode"], Some(&run.stdout));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, format!("{frame}\n"));
}

#[test]
fn encode_gives_the_exact_frame() {
    let message = r#"{"message": "SubmitSharesStandard", "channel_id": 1, "sequence_number": 2,
        "job_id": 3, "nonce": 4, "ntime": 5, "version": 536870912}"#;
    let run = probe(&["encode", message], None);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, format!("{SHARE}\n"));

    // A frame object with a TLV, JSON lines on stdin, and an array: three frames.
    let tlv_frame = r#"{"message": {"message": "SubmitSharesExtended", "channel_id": 1,
        "sequence_number": 2, "job_id": 3, "nonce": 4, "ntime": 5, "version": 536870912,
        "extranonce": "aabbccdd"},
        "tlvs": [{"extension_type": 2, "field_type": 1, "value": "776f726b657231"}]}"#
        .replace('\n', " ");
    let stdin = format!(
        "{}\n{tlv_frame}\n[{{\"message\": \"RequestExtensions.Success\", \"request_id\": 1, \
         \"supported_extensions\": [2, 3]}}]\n",
        message.replace('\n', " ")
    );
    let run = probe(&["encode", "--json"], Some(&stdin));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.json_lines(),
        [
            json!({"frame": SHARE}),
            json!({"frame": "00801b29000001000000020000000300000004000000050000000000002004aabbccdd0200010700776f726b657231"}),
            json!({"frame": FRAMES[9].1}),
        ]
    );
}

#[test]
fn encode_rejects_bad_input_with_exit_1() {
    let cases = [
        ("{\"message\": ", "invalid JSON"),
        (
            r#"{"message": "SubmitSharesSuccess"}"#,
            r#"no message named "SubmitSharesSuccess" (did you mean "SubmitShares.Success"?)"#,
        ),
        (
            r#"{"message": "SetExtranoncePrefix", "channel_id": 1, "extranonce_prefix":
               "000000000000000000000000000000000000000000000000000000000000000000"}"#,
            "B0_32 holds at most 32 bytes, got 33",
        ),
        (
            r#"{"message": "ChannelEndpointChanged", "channel_id": 4294967296}"#,
            "expected u32",
        ),
        (
            r#"{"message": "ChannelEndpointChanged", "channel_id": 1, "extra": 2}"#,
            "unknown field `extra`",
        ),
        (r#"{"channel_id": 1}"#, "expected a message"),
        (
            r#"{"message": {"message": "ChannelEndpointChanged", "channel_id": 1}, "msg_length": 5}"#,
            r#""msg_length" is 5 but the encoded frame's is 4"#,
        ),
    ];
    for (input, expected) in cases {
        let run = probe(&["encode", input], None);
        assert_eq!(run.code, 1, "{input}");
        assert!(run.stderr.contains(expected), "{input}: {}", run.stderr);
        assert_eq!(run.stdout, "", "{input}");
    }

    // With --json the error is also on stdout, in order, and good items are still encoded.
    let stdin =
        "{\"message\": \"Nope\"}\n{\"message\": \"ChannelEndpointChanged\", \"channel_id\": 1}\n";
    let run = probe(&["encode", "--json"], Some(stdin));
    assert_eq!(run.code, 1);
    let lines = run.json_lines();
    assert_eq!(lines[0]["error"]["item"], 0);
    assert_eq!(lines[0]["error"]["text"], "no message named \"Nope\"");
    assert_eq!(lines[1], json!({"frame": "00800304000001000000"}));
}

/// `decode --json X | jq .message | encode` gives X back (`jq .message` done here in Rust).
fn round_trip(frames: &[String]) {
    let decoded = probe(&["decode", "--json"], Some(&frames.join("\n")));
    assert_eq!(decoded.code, 0, "{}", decoded.stderr);
    let messages: Vec<String> = decoded
        .json_lines()
        .iter()
        .map(|line| line["message"].to_string())
        .collect();
    assert_eq!(messages.len(), frames.len());
    let encoded = probe(&["encode"], Some(&messages.join("\n")));
    assert_eq!(encoded.code, 0, "{}", encoded.stderr);
    let back: Vec<&str> = encoded.stdout.lines().collect();
    for (i, (frame, back)) in frames.iter().zip(&back).enumerate() {
        assert_eq!(back, frame, "frame {i}: {}", messages[i]);
    }
    assert_eq!(back.len(), frames.len());
}

#[test]
fn decode_then_encode_gives_the_frames_back() {
    let frames: Vec<String> = FRAMES.iter().map(|(_, f)| f.to_string()).collect();
    // Each frame decodes as the message its comment says.
    let run = probe(&["decode", "--json"], Some(&frames.join("\n")));
    let names: Vec<Value> = run
        .json_lines()
        .iter()
        .map(|l| l["message"]["message"].clone())
        .collect();
    let expected: Vec<Value> = FRAMES.iter().map(|(name, _)| json!(name)).collect();
    assert_eq!(names, expected);
    round_trip(&frames);
}

#[test]
fn decode_then_encode_gives_arbitrary_frames_back() {
    use arbitrary::{Arbitrary, Unstructured};
    use sv2_codec::{decode_frame, to_frame_bytes, Frame, Message};

    // splitmix64: a fixed, seedable stream of bytes for `arbitrary`.
    let mut state = 0x5eed_u64;
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut frames = Vec::new();
    let mut kinds = std::collections::BTreeSet::new();
    while frames.len() < 400 {
        let data: Vec<u8> = (0..512).flat_map(|_| next().to_le_bytes()).collect();
        let Ok(message) = Message::arbitrary(&mut Unstructured::new(&data)) else {
            continue;
        };
        let bytes = to_frame_bytes(&message, &[]).unwrap();
        // Only frames the codec itself decodes back to the same message are valid frames.
        let (frame, _) = Frame::parse(&bytes).unwrap();
        if decode_frame(&frame).map(|d| d.message) != Ok(message.clone()) {
            continue;
        }
        kinds.insert(message.name());
        frames.push(hex::encode(bytes));
    }
    assert!(
        kinds.len() > 30,
        "only {} message types: {kinds:?}",
        kinds.len()
    );
    round_trip(&frames);
}
