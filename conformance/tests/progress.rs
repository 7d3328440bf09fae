//! The runner reports each check as it starts and as it ends, in order, with how many there are.

mod common;

use sv2_conformance::{run_observed, Progress, Selection};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_check_is_reported_when_it_starts_and_when_it_ends() {
    let (_pool, target) = common::mock_pool(|_| {}).await;
    let selection = Selection {
        only: vec!["setup.reply".into(), "monitor.*".into()],
    };
    let mut events = Vec::new();
    let report = run_observed(target, &selection, |event| {
        events.push(match event {
            Progress::Started { id, index, total } => format!("start {index}/{total} {id}"),
            Progress::Finished(r) => format!("end {}", r.check.id),
        })
    })
    .await;
    let total = report.results.len();
    assert!(total >= 2, "{events:?}");
    let expected: Vec<String> = report
        .results
        .iter()
        .enumerate()
        .flat_map(|(i, r)| {
            [
                format!("start {i}/{total} {}", r.check.id),
                format!("end {}", r.check.id),
            ]
        })
        .collect();
    assert_eq!(events, expected);
    assert_eq!(report.results[0].check.id, "setup.reply");
}
