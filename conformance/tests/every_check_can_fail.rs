//! A check that cannot fail is worthless: every check of the catalogue must be the checked id of a
//! fault test's helper call (faults_wire.rs, faults_mining.rs, faults_device.rs, faults_proxy.rs,
//! interop's faults_translator.rs), which runs it against a peer broken in the way it is about and
//! asserts that it fails; a few monitor rules are proven over transcripts by named tests. This test
//! keeps a new check from slipping in without one.

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

/// The fault tests and their helpers: each helper runs a check against a peer broken in the way
/// the check is about and asserts `Verdict::Fail`; the check is the literal first argument of the
/// call. A check counts as proven able to fail only through such a call, never by being named
/// (in a comment, a list of skips, a loop variable).
#[allow(clippy::type_complexity)]
const FAULT_TESTS: &[(&str, &str, &[&str])] = &[
    // The pool's checks against the scripted pool, one fault per call; the correct scripted pool
    // passes each (`fails`, `fails_beside`), or another broken peer (`fails_on`).
    (
        "faults_wire.rs",
        include_str!("faults_wire.rs"),
        &["fails", "fails_beside", "fails_on"],
    ),
    // The pool's checks against the mock pool with one fault, share rule or scenario; the faithful
    // pool passes each (`fails`, `fails_shaped`); monitor rules with the check that makes their
    // traffic (`rule_fails`).
    (
        "faults_mining.rs",
        include_str!("faults_mining.rs"),
        &["fails", "fails_shaped", "rule_fails"],
    ),
    // Device checks against our device made faulty one way at a time.
    (
        "faults_device.rs",
        include_str!("faults_device.rs"),
        &["fails"],
    ),
    // Translator checks against translator_sv2 behind a relay with a client fault scenario.
    (
        "faults_translator.rs",
        include_str!("../../interop/tests/faults_translator.rs"),
        &["fails"],
    ),
    // Proxy checks against our mock proxy made faulty one way at a time.
    (
        "faults_proxy.rs",
        include_str!("faults_proxy.rs"),
        &["fails"],
    ),
];

/// Monitor rules no live peer of ours breaks yet, proven failing over hand-written transcripts:
/// (rule, file, the test function, the rule's constant whose finding that test asserts).
const TRANSCRIPT_PROOFS: &[(&str, &str, &str, &str)] = &[
    (
        "monitor.job-after-prev-hash",
        "monitor_device_rules.rs",
        "unknown_prev_hash_job_reuse_first_job_and_an_active_job_without_prev_hash",
        "JOB_AFTER_PREV_HASH",
    ),
    (
        "monitor.job-min-ntime",
        "monitor_device_rules.rs",
        "a_job_with_min_ntime_below_the_prev_hash_min_ntime",
        "JOB_MIN_NTIME",
    ),
    (
        "monitor.coinbase-is-coinbase",
        "monitor_device_rules.rs",
        "extended_coinbase_must_be_a_stripped_legacy_coinbase",
        "COINBASE_IS_COINBASE",
    ),
    (
        "monitor.share-error-after-ack",
        "monitor_device_rules.rs",
        "share_answers_match_the_shares_sent",
        "SHARE_ERROR_AFTER_ACK",
    ),
    (
        "monitor.client-strict-decoding",
        "monitor_device_rules.rs",
        "the_clients_frames_are_judged_by_the_client_rules",
        "CLIENT_STRICT_DECODING",
    ),
    (
        "monitor.client-channel-msg-bit",
        "monitor_device_rules.rs",
        "the_clients_frames_are_judged_by_the_client_rules",
        "CLIENT_CHANNEL_MSG_BIT",
    ),
    (
        "monitor.client-setup-first",
        "monitor_device_rules.rs",
        "the_clients_frames_are_judged_by_the_client_rules",
        "CLIENT_SETUP_FIRST",
    ),
    (
        "monitor.client-vendor",
        "monitor.rs",
        "client_rules_fail_on_a_client_that_breaks_them",
        "CLIENT_VENDOR",
    ),
    (
        "monitor.client-request-id-unique",
        "monitor.rs",
        "client_rules_fail_on_a_client_that_breaks_them",
        "CLIENT_REQUEST_ID_UNIQUE",
    ),
    (
        "monitor.client-sequence-unique",
        "monitor.rs",
        "client_rules_fail_on_a_client_that_breaks_them",
        "CLIENT_SEQUENCE_UNIQUE",
    ),
    (
        "monitor.client-share-ntime",
        "monitor.rs",
        "share_ntime_outside_its_window_fails_the_client_rule",
        "CLIENT_SHARE_NTIME",
    ),
];

fn transcript_source(file: &str) -> &'static str {
    match file {
        "monitor_device_rules.rs" => include_str!("monitor_device_rules.rs"),
        "monitor.rs" => include_str!("monitor.rs"),
        other => panic!("no such transcript test file: {other}"),
    }
}

/// The value of a monitor rule constant, by its name.
fn constant_value(name: &str) -> &'static str {
    use sv2_conformance::monitor::*;
    match name {
        "JOB_AFTER_PREV_HASH" => JOB_AFTER_PREV_HASH,
        "JOB_MIN_NTIME" => JOB_MIN_NTIME,
        "COINBASE_IS_COINBASE" => COINBASE_IS_COINBASE,
        "SHARE_ERROR_AFTER_ACK" => SHARE_ERROR_AFTER_ACK,
        "CLIENT_STRICT_DECODING" => CLIENT_STRICT_DECODING,
        "CLIENT_CHANNEL_MSG_BIT" => CLIENT_CHANNEL_MSG_BIT,
        "CLIENT_SETUP_FIRST" => CLIENT_SETUP_FIRST,
        "CLIENT_VENDOR" => CLIENT_VENDOR,
        "CLIENT_REQUEST_ID_UNIQUE" => CLIENT_REQUEST_ID_UNIQUE,
        "CLIENT_SEQUENCE_UNIQUE" => CLIENT_SEQUENCE_UNIQUE,
        "CLIENT_SHARE_NTIME" => CLIENT_SHARE_NTIME,
        other => panic!("unknown constant {other}"),
    }
}

/// The ids `source` passes as the first argument of a call to `helper` (`helper(` not preceded by
/// an identifier character, then, after any whitespace, a string literal): what a fault test
/// asserts failing, not any mention of an id.
fn first_arguments<'a>(source: &'a str, helper: &str) -> Vec<&'a str> {
    let skip = helper.len() + 1;
    first_calls(source, helper)
        .into_iter()
        .filter_map(|at| {
            let literal = source[at + skip..].trim_start().strip_prefix('"')?;
            literal.find('"').map(|end| &literal[..end])
        })
        .collect()
}

/// Where `source` calls `helper` (not a longer name ending the same).
fn first_calls(source: &str, helper: &str) -> Vec<usize> {
    let call = format!("{helper}(");
    source
        .match_indices(&call)
        .map(|(at, _)| at)
        .filter(|&at| {
            !source[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
        })
        .collect()
}

/// The text of `fn name(` in `source`, to its closing brace at the start of a line.
fn function_body<'a>(source: &'a str, name: &str) -> Option<&'a str> {
    let start = source.find(&format!("fn {name}("))?;
    let end = source[start..].find("\n}\n")?;
    Some(&source[start..start + end])
}

/// Every check of every role is asserted failing by a fault test helper (or, for a few monitor
/// rules, by a named transcript test), and nothing else counts.
#[test]
fn every_check_is_asserted_failing_by_a_fault_test() {
    let mut proven: Vec<&str> = Vec::new();
    for (file, source, helpers) in FAULT_TESTS {
        for helper in *helpers {
            // The helper is what it must be: it asserts a Fail, or hands over to another helper
            // of the file that does.
            let body = function_body(source, helper)
                .unwrap_or_else(|| panic!("{file} has no fn {helper}"));
            let delegates = helpers
                .iter()
                .any(|other| other != helper && !first_calls(body, other).is_empty());
            assert!(
                body.contains("Verdict::Fail") || delegates,
                "{file}: {helper} asserts Verdict::Fail"
            );
            proven.extend(first_arguments(source, helper));
        }
    }
    for (rule, file, test, constant) in TRANSCRIPT_PROOFS {
        let body = function_body(transcript_source(file), test)
            .unwrap_or_else(|| panic!("{file} has no fn {test}"));
        assert!(
            body.contains(constant) && body.contains("assert"),
            "{file}: {test} asserts a finding of {constant}"
        );
        assert_eq!(constant_value(constant), *rule, "{constant} is {rule}");
        proven.push(rule);
    }
    let missing: Vec<&str> = catalogue()
        .iter()
        .map(|c| c.id)
        .filter(|id| !proven.contains(id))
        .collect();
    assert!(
        missing.is_empty(),
        "checks no fault test asserts failing: {missing:?}"
    );
    // Ids that prove nothing: a typo in a fault test would otherwise go unnoticed.
    let known: Vec<&str> = catalogue().iter().map(|c| c.id).collect();
    let unknown: Vec<&&str> = proven.iter().filter(|id| !known.contains(id)).collect();
    assert!(
        unknown.is_empty(),
        "not checks of the catalogue: {unknown:?}"
    );
}

#[test]
fn first_arguments_reads_only_literal_first_arguments() {
    assert_eq!(
        first_arguments("fails(\n  \"a.b\", x); fails(y); fails( \"c.d\")", "fails"),
        ["a.b", "c.d"]
    );
    // Another helper whose name ends the same is not this one.
    assert!(first_arguments("rule_fails(\"a.b\")", "fails").is_empty());
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
