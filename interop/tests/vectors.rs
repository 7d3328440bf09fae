//! Every frame vector of `vectors/data` decoded with the reference implementation's codec (SRI):
//! `Header::from_bytes` on the first 6 bytes, then `AnyMessage::try_from` on the rest (SRI does not
//! compare msg_length with the payload).
//!
//! - valid and acceptable vectors SRI accepts: its value must equal ours (`same_message`);
//! - valid or acceptable vectors SRI refuses: a disagreement (`sri-refuses`);
//! - invalid vectors SRI accepts: a leniency (`sri-accepts`).
//!
//! Every disagreement must be listed in `tests/data/vectors_sri.txt` (reviewed; vectors/README.md
//! explains each kind). A new disagreement, or a listed one that went away, fails the test. After a
//! reviewed change: `SV2_UPDATE_EXPECTED=1 cargo test -p sv2-interop --test vectors`.

use std::collections::BTreeSet;
use std::path::PathBuf;

use sv2_codec::Message;
use sv2_interop::{class_sri, from_sri, same_message, sri_header, sri_parse, SriError};
use sv2_vectors::model::{Outcome, TestGroup, VectorFile};

fn expected_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/vectors_sri.txt")
}

/// SRI's parse of a frame vector, converted to our message type.
fn sri(bytes: &[u8]) -> Result<Message<'static>, SriError> {
    let head = bytes
        .get(..6)
        .ok_or_else(|| SriError::Framing("fewer than 6 bytes".into()))?;
    let header = sri_header(head)?;
    let mut payload = bytes[6..].to_vec();
    let message = sri_parse(header, &mut payload)?;
    Ok(from_sri(&message))
}

#[test]
fn every_frame_vector_against_sri() {
    let dir = sv2_vectors::default_data_dir();
    let mut found = BTreeSet::new();
    let mut compared = 0;
    let mut rows = Vec::new();
    // Every vector file; only its `FrameTest` groups are compared (frames_*.json, strictness.json).
    for name in sv2_vectors::FILES {
        let text = std::fs::read_to_string(dir.join(name)).expect("read vectors");
        let file: VectorFile = serde_json::from_str(&text).expect("parse vectors");
        for group in &file.test_groups {
            let TestGroup::FrameTest(g) = group else {
                continue;
            };
            for t in &g.tests {
                let bytes = hex::decode(&t.frame).expect("hex");
                let theirs = sri(&bytes);
                let kind = match (t.result, &t.decoded, &theirs) {
                    (Outcome::Invalid, _, Ok(_)) => {
                        Some(("sri-accepts", t.error.clone().unwrap_or_default()))
                    }
                    (Outcome::Invalid, _, Err(_)) => None,
                    (_, Some(decoded), Ok(sri_message)) => {
                        let ours: Message<'static> =
                            serde_json::from_value(decoded.clone()).expect("decoded JSON");
                        compared += 1;
                        if same_message(&ours, sri_message) {
                            None
                        } else {
                            Some(("value-differs", String::new()))
                        }
                    }
                    (_, _, Err(e)) => Some(("sri-refuses", format!("{:?}", class_sri(e)))),
                    (_, None, Ok(_)) => Some(("sri-accepts", t.error.clone().unwrap_or_default())),
                };
                if let Some((kind, class)) = kind {
                    let sri_said = match &theirs {
                        Ok(m) => format!("accepted as {}", m.name()),
                        Err(e) => e.to_string(),
                    };
                    rows.push(format!(
                        "| {name} | {} | {} | {kind} | {class} | {} | {} |",
                        t.tc_id,
                        t.result.as_str(),
                        t.comment,
                        sri_said.replace('|', "/")
                    ));
                    found.insert(format!("{name} {} {kind}", t.tc_id));
                }
            }
        }
    }
    println!("| file | tcId | result | disagreement | class | vector | SRI |");
    println!("|---|---|---|---|---|---|---|");
    for row in &rows {
        println!("{row}");
    }
    println!(
        "{compared} values compared equal or listed; {} disagreements",
        found.len()
    );

    let path = expected_path();
    if std::env::var_os("SV2_UPDATE_EXPECTED").is_some() {
        let mut text = String::from(
            "# Frame vectors where SRI disagrees with the vector (reviewed; see vectors/README.md).\n# file tcId kind\n",
        );
        for line in &found {
            text.push_str(line);
            text.push('\n');
        }
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
    }
    let expected: BTreeSet<String> = std::fs::read_to_string(&path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.trim().to_string())
        .collect();
    let new: Vec<_> = found.difference(&expected).collect();
    let gone: Vec<_> = expected.difference(&found).collect();
    assert!(
        new.is_empty() && gone.is_empty(),
        "SRI disagreements changed.\nnew (unlisted): {new:#?}\ngone (listed, no longer seen): {gone:#?}"
    );
    assert!(
        !found.iter().any(|l| l.ends_with("value-differs")),
        "SRI decodes a value differently"
    );
    assert!(compared > 150, "only {compared} values compared");
}
