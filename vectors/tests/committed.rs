//! The committed vector files: each verifies, and the generator reproduces them byte for byte (so a
//! codec change that alters a vector shows up here). To refresh them after an intended change:
//! `cargo run -p sv2-probe -- vectors generate` (or `SV2_VECTORS_REGENERATE=1 cargo test -p sv2-vectors`).

use sv2_vectors::{build_all, default_data_dir, render, verify, FILES};

#[test]
fn generator_reproduces_the_committed_files() {
    let dir = default_data_dir();
    if std::env::var_os("SV2_VECTORS_REGENERATE").is_some() {
        sv2_vectors::generate(&dir).expect("generate");
    }
    let built = build_all().expect("build vectors");
    assert_eq!(
        built.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        FILES,
        "FILES and the generator disagree"
    );
    let mut stale = Vec::new();
    for (name, file) in &built {
        let text = render(file).expect("render");
        let committed = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        if committed != text {
            stale.push(*name);
        }
    }
    assert!(
        stale.is_empty(),
        "these committed vector files differ from what the generator writes now: {stale:?}. \
         If the change is intended, run `cargo run -p sv2-probe -- vectors generate` and review the diff."
    );
}

#[test]
fn every_committed_vector_verifies() {
    let report = verify(&default_data_dir());
    let mut problems = Vec::new();
    for file in &report.files {
        if let Some(e) = &file.error {
            problems.push(format!("{}: {e}", file.file));
        }
        for f in &file.failures {
            problems.push(format!(
                "{} tcId {} ({}): {}",
                file.file, f.tc_id, f.comment, f.reason
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(report.total() >= 500, "only {} vectors", report.total());
}

#[test]
fn every_file_names_a_draft_2020_12_schema_that_exists() {
    let root = default_data_dir();
    let schema_dir = root.parent().unwrap().join("schema");
    for name in FILES {
        let text = std::fs::read_to_string(root.join(name)).unwrap();
        let file: serde_json::Value = serde_json::from_str(&text).unwrap();
        let schema_name = file["schema"].as_str().unwrap();
        let schema: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(schema_dir.join(schema_name)).unwrap())
                .unwrap_or_else(|e| panic!("{schema_name}: {e}"));
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        assert_eq!(schema["$id"], schema_name);
    }
}
