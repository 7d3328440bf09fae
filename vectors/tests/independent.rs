//! The independent checks (src/independent/, no sv2-codec): they run on every vector they claim to
//! cover, the committed files pass them, and a vector corrupted in one place fails them.

use sv2_vectors::model::{Outcome, TestGroup, VectorFile};
use sv2_vectors::{default_data_dir, verify, verify_file, FileReport};

fn load(name: &str) -> VectorFile {
    let text = std::fs::read_to_string(default_data_dir().join(name)).expect("read vectors");
    serde_json::from_str(&text).expect("parse vectors")
}

fn independent_failures(report: &FileReport) -> Vec<u32> {
    report
        .failures
        .iter()
        .filter(|f| f.check == "independent")
        .map(|f| f.tc_id)
        .collect()
}

#[test]
fn every_vector_of_the_covered_files_is_checked_independently_and_passes() {
    let report = verify(&default_data_dir());
    let count = |name: &str| {
        report
            .files
            .iter()
            .find(|f| f.file == name)
            .unwrap_or_else(|| panic!("{name} not in the report"))
    };
    // Wholly covered: every test, and the numbers the files hold today.
    for (name, tests) in [
        ("noise_handshake.json", 23),
        ("certificates.json", 40),
        ("authority_keys.json", 34),
        ("encrypted_framing.json", 27),
        ("frames_common.json", 22),
        ("frames_mining.json", 82),
        ("frames_job_declaration.json", 27),
        ("frames_template_distribution.json", 26),
        ("frames_extensions.json", 29),
        ("strictness.json", 164),
    ] {
        let f = count(name);
        assert_eq!(f.tests, tests, "{name}: test count");
        assert_eq!(
            f.independent_checked, tests,
            "{name}: independently checked"
        );
        assert!(!f.independent.is_empty(), "{name}: no coverage text");
    }
    // types.json: only the FRAME_HEADER group, and the report says the rest is not covered.
    let types = count("types.json");
    let frame_headers: usize = load("types.json")
        .test_groups
        .iter()
        .filter_map(|g| match g {
            TestGroup::TypeTest(t) if t.data_type == "FRAME_HEADER" => Some(t.tests.len()),
            _ => None,
        })
        .sum();
    assert_eq!(frame_headers, 7);
    assert_eq!(types.independent_checked, frame_headers);
    assert!(types
        .not_independent
        .iter()
        .any(|s| s.contains("checked only through sv2-codec")));
    let problems: Vec<String> = report
        .files
        .iter()
        .flat_map(|f| {
            f.failures
                .iter()
                .map(move |x| format!("{} tcId {} [{}]: {}", f.file, x.tc_id, x.check, x.reason))
        })
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(report.independent_checked(), 23 + 40 + 34 + 27 + 350 + 7);
}

/// Flips the lowest bit of the byte at `index` of a hex string.
fn flip(hex_string: &mut String, index: usize) {
    let mut bytes = hex::decode(&*hex_string).expect("hex");
    bytes[index] ^= 0x01;
    *hex_string = hex::encode(bytes);
}

/// Verifies `file` after `corrupt`, and returns the tcIds the independent checks fail.
fn corrupted(name: &str, corrupt: impl FnOnce(&mut VectorFile)) -> Vec<u32> {
    let mut file = load(name);
    let clean = verify_file(name, &serde_json::to_string(&file).expect("json"));
    assert!(
        independent_failures(&clean).is_empty(),
        "{name} fails clean"
    );
    corrupt(&mut file);
    let report = verify_file(name, &serde_json::to_string(&file).expect("json"));
    independent_failures(&report)
}

#[test]
fn a_flipped_intermediate_h_fails_the_handshake() {
    let failed = corrupted("noise_handshake.json", |f| {
        let TestGroup::NoiseHandshakeTest(g) = &mut f.test_groups[0] else {
            panic!("not a handshake group")
        };
        let t = &mut g.tests[0];
        assert_eq!(t.responder_trace[6].step, "encrypt_and_hash(s)");
        flip(&mut t.responder_trace[6].h, 31);
    });
    assert_eq!(failed, vec![1]);
}

#[test]
fn a_flipped_act2_ciphertext_or_initiator_key_fails_the_handshake() {
    let failed = corrupted("noise_handshake.json", |f| {
        let TestGroup::NoiseHandshakeTest(g) = &mut f.test_groups[0] else {
            panic!("not a handshake group")
        };
        flip(&mut g.tests[1].act2, 100);
        let k = g.tests[2].initiator_trace[7]
            .k
            .as_mut()
            .expect("k after mix_key(es)");
        flip(k, 0);
        flip(&mut g.tests[3].initiator.ephemeral.ellswift, 5);
    });
    assert_eq!(failed, vec![2, 3, 4]);
}

#[test]
fn a_flipped_certificate_signature_fails() {
    let failed = corrupted("certificates.json", |f| {
        let TestGroup::CertificateTest(g) = &mut f.test_groups[0] else {
            panic!("not a certificate group")
        };
        let t = &mut g.tests[0];
        assert_eq!(t.result, Outcome::Valid);
        // Byte 10 is the first byte of the signature's R.
        flip(&mut t.signature_noise_message, 10);
        // An invalid one made valid: the signature verifies, so CERT_BAD_SIGNATURE is false.
        let bad = g
            .tests
            .iter_mut()
            .find(|t| t.comment == "signature byte 0 (R) flipped")
            .expect("the R-flipped vector");
        flip(&mut bad.signature_noise_message, 10);
    });
    assert_eq!(failed, vec![1, 14]);
}

#[test]
fn a_flipped_encrypted_byte_or_wrong_nonce_fails_the_framing() {
    let failed = corrupted("encrypted_framing.json", |f| {
        let TestGroup::EncryptedFrameTest(g) = &mut f.test_groups[0] else {
            panic!("not an encrypted group")
        };
        flip(
            g.tests[2].ciphertext.as_mut().expect("whole ciphertext"),
            30,
        );
        flip(
            g.tests[4].ciphertext_sha256.as_mut().expect("hash given"),
            0,
        );
        g.tests[1].next_nonce += 1;
    });
    assert_eq!(failed, vec![2, 3, 5]);
}

#[test]
fn a_wrong_authority_key_or_frame_header_fails() {
    let failed = corrupted("authority_keys.json", |f| {
        let TestGroup::AuthorityKeyTest(g) = &mut f.test_groups[0] else {
            panic!("not an authority key group")
        };
        flip(g.tests[0].public_key.as_mut().expect("valid key"), 31);
        // x = 5 made valid: it is not on the curve.
        let t = g
            .tests
            .iter_mut()
            .find(|t| t.error.as_deref() == Some("INVALID_PUBLIC_KEY"))
            .expect("the off-curve vector");
        t.result = Outcome::Valid;
        t.error = None;
    });
    assert_eq!(failed, vec![1, 16]);
    let failed = corrupted("frames_mining.json", |f| {
        let TestGroup::FrameTest(g) = &mut f.test_groups[0] else {
            panic!("not a frame group")
        };
        // The channel_msg bit of a valid frame, and a message name.
        let t = &mut g.tests[0];
        let mut bytes = hex::decode(&t.frame).unwrap();
        bytes[1] ^= 0x80;
        t.frame = hex::encode(bytes);
        g.tests[1].message = Some("SetTarget".into());
    });
    assert_eq!(failed, vec![1, 2]);
}
