//! The translator suite (`--role translator`: the device checks of its upstream side and the
//! translator's own) against the reference implementation's translator (translator_sv2 0.6.0). For
//! each check the suite starts a fresh translator pointed at the suite's listener (trusting the
//! suite's authority key) and listening for SV1 miners on the port the suite chose; the suite's SV1
//! miners connect below it. Its failures are findings about the translator, not failures of this
//! test: every verdict is compared with the reviewed file `conformance/expected/translator_sv2.txt`.
//!
//! The reports (text, JSON with every transcript, JUnit, and the verdicts in the expected-file
//! format) are kept in `target/conformance-reports/translator_sv2/` of the repository.

mod common;

use std::time::Duration;

use common::translator::launcher;
use common::{keep_reports, repo};
use sv2_conformance::runner::Progress;
use sv2_conformance::serve::{runner, Listener};
use sv2_conformance::{expected, Role, Selection};
use sv2_interop::peers::binary_or_skip;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_translator_verdicts_match_the_reviewed_file() {
    let Some(binary) = binary_or_skip("translator_sv2", "conformance_translator") else {
        return;
    };
    let mut listener = Listener::new(launcher(&binary, None)).unwrap();
    listener.timeout = Duration::from_secs(3);
    listener.connect_timeout = Duration::from_secs(30);
    listener.work_window = Duration::from_secs(10);
    let selection = Selection {
        only: std::env::var("SV2_ONLY")
            .map(|v| v.split(',').map(str::to_string).collect())
            .unwrap_or_default(),
    };
    let report = runner::run(listener, Role::Translator, &selection, |p| {
        if let Progress::Finished(r) = p {
            eprintln!("{:<5} {}", r.outcome.verdict.as_str(), r.check.id)
        }
    })
    .await
    .unwrap();

    let dir = keep_reports("translator_sv2", &report);

    let file = repo().join("conformance/expected/translator_sv2.txt");
    let reviewed = std::fs::read_to_string(&file).unwrap_or_default();
    let reviewed = expected::parse(&reviewed).unwrap();
    let differences: Vec<String> = expected::compare(&report, &reviewed, true)
        .iter()
        .map(|d| d.to_string())
        .collect();
    assert!(
        differences.is_empty(),
        "translator_sv2 differs from {}:\n{}\n(the verdicts of this run are in {})",
        file.display(),
        differences.join("\n"),
        dir.join("verdicts.txt").display()
    );
}
