//! A check that cannot fail is worthless: every check of the catalogue must be named by one of the
//! fault tests (faults_wire.rs, faults_mining.rs), which run it against a pool broken in the way it is
//! about and assert that it fails. This test keeps a new check from slipping in without one.

use sv2_conformance::check::Check;
use sv2_conformance::serve::runner::catalogue as client_catalogue;
use sv2_conformance::Role;

/// Every check of every role: the pool's, then the device's and the client rules.
fn catalogue() -> Vec<Check> {
    let mut all = sv2_conformance::checks::catalogue();
    for role in [Role::Translator, Role::Proxy] {
        for check in client_catalogue(role) {
            if !all.iter().any(|c| c.id == check.id) {
                all.push(check);
            }
        }
    }
    all
}

#[test]
fn every_check_is_exercised_by_a_fault_test() {
    let sources = [
        include_str!("faults_wire.rs"),
        include_str!("faults_mining.rs"),
        // Monitor rules broken by a scripted pool, over a transcript.
        include_str!("monitor_device_rules.rs"),
        // Device checks against our device made faulty one way at a time.
        include_str!("faults_device.rs"),
        // Client rules broken by a client, over a transcript.
        include_str!("monitor.rs"),
        // Translator checks against translator_sv2 behind a relay with a client fault scenario.
        include_str!("../../interop/tests/faults_translator.rs"),
        // Proxy checks against our mock proxy made faulty one way at a time.
        include_str!("faults_proxy.rs"),
    ];
    let missing: Vec<&str> = catalogue()
        .iter()
        .map(|c| c.id)
        .filter(|id| !sources.iter().any(|s| s.contains(&format!("\"{id}\""))))
        .collect();
    assert!(
        missing.is_empty(),
        "checks no fault test shows failing: {missing:?}"
    );
}

/// The ids `source` passes as the first argument of a call to `helper` (`helper(` then, after any
/// whitespace, a string literal): what a fault test asserts failing, not any mention of an id.
fn first_arguments<'a>(source: &'a str, helper: &str) -> Vec<&'a str> {
    let call = format!("{helper}(");
    let mut ids = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find(&call) {
        rest = &rest[at + call.len()..];
        let Some(literal) = rest.trim_start().strip_prefix('"') else {
            continue;
        };
        if let Some(end) = literal.find('"') {
            ids.push(&literal[..end]);
        }
    }
    ids
}

/// The client roles' checks, structurally: each must be the checked id of a `fails(...)` call in
/// the client fault tests (whose `fails` runs the check and asserts a fail), not merely named in
/// them (in a comment, a list of skips, a message).
#[test]
fn every_client_check_is_asserted_failing_by_a_fails_call() {
    let asserted: Vec<&str> = [
        include_str!("faults_device.rs"),
        include_str!("../../interop/tests/faults_translator.rs"),
        include_str!("faults_proxy.rs"),
    ]
    .iter()
    .flat_map(|source| first_arguments(source, "fails"))
    .collect();
    let missing: Vec<&str> = catalogue()
        .iter()
        .map(|c| c.id)
        .filter(|id| {
            id.starts_with("device.") || id.starts_with("translator.") || id.starts_with("proxy.")
        })
        .filter(|id| !asserted.contains(id))
        .collect();
    assert!(
        missing.is_empty(),
        "client checks no fails(...) call asserts failing: {missing:?}"
    );
    // And the helper is what it must be: a verdict other than Fail fails it.
    for source in [
        include_str!("faults_device.rs"),
        include_str!("../../interop/tests/faults_translator.rs"),
    ] {
        assert!(
            source.contains("result.outcome.verdict,\n        Verdict::Fail,"),
            "the fails helper asserts Verdict::Fail"
        );
    }
    assert_eq!(
        first_arguments("fails(\n  \"a.b\", x); fails(y); fails( \"c.d\")", "fails"),
        ["a.b", "c.d"]
    );
}

#[test]
fn ids_are_unique_and_well_formed() {
    let all = catalogue();
    let mut ids: Vec<&str> = all.iter().map(|c| c.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), all.len());
    for c in &all {
        // A device, translator or proxy check is `role.group.name`.
        let (id, groups): (&str, &[&str]) = if let Some(id) = c.id.strip_prefix("device.") {
            (
                id,
                &["noise", "setup", "mining", "shares", "robust", "reconnect"],
            )
        } else if let Some(id) = c.id.strip_prefix("translator.") {
            (id, &["mining", "sv1", "shares"])
        } else if let Some(id) = c.id.strip_prefix("proxy.") {
            (id, &["mining", "extranonce", "jobs", "reconnect"])
        } else {
            (
                c.id,
                &["noise", "setup", "ext", "mining", "shares", "monitor"],
            )
        };
        let (group, name) = id.split_once('.').expect("group.name");
        assert!(groups.contains(&group), "{}", c.id);
        assert!(
            name.chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-'),
            "{}",
            c.id
        );
        assert!(!c.section.is_empty() && !c.title.is_empty(), "{}", c.id);
    }
    assert!(all.len() >= 100, "{}", all.len());
}

#[test]
fn the_readme_lists_every_check() {
    let readme = include_str!("../README.md");
    // Each row as the catalogue has it: id, section and level (a level changed in the code and not
    // in the README would mislead whoever reads the README).
    let missing: Vec<String> = catalogue()
        .iter()
        .map(|c| format!("| `{}` | {} | {} |", c.id, c.section, c.level.as_str()))
        .filter(|row| !readme.contains(row.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "conformance/README.md lacks or differs on {missing:#?} (sv2-probe conformance --list)"
    );
}

#[test]
fn every_check_quotes_the_spec_sentence_it_rests_on() {
    let missing: Vec<&str> = catalogue()
        .iter()
        .map(|c| c.id)
        .filter(|id| sv2_conformance::quotes::quote(id).is_none())
        .collect();
    assert!(missing.is_empty(), "no spec quote for {missing:?}");
    for (id, quote) in sv2_conformance::quotes::QUOTES {
        assert!(
            quote.contains(".md:") || quote.starts_with("no spec sentence"),
            "{id}: a quote names its file and line, or says the spec is silent"
        );
    }
}
