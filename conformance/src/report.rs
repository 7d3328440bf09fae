//! Reports of a run: a readable text grouped by spec section, JSON with the whole evidence, and
//! JUnit XML for CI systems.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::check::Check;
use crate::runner::{CheckResult, Report};
use crate::verdict::Verdict;

/// Sort key for spec sections: "3.6.1" before "3.10", numbers compared as numbers, "ext1 4.1" after
/// the core sections.
pub fn section_key(section: &str) -> (u8, Vec<u32>, String) {
    let (extension, rest) = match section.split_once(' ') {
        Some((_, rest)) => (1, rest),
        None => (0, section),
    };
    let numbers = rest
        .split('.')
        .map(|p| p.parse().unwrap_or(u32::MAX))
        .collect();
    (extension, numbers, section.to_string())
}

fn grouped(report: &Report) -> BTreeMap<(u8, Vec<u32>, String), Vec<&CheckResult>> {
    let mut groups: BTreeMap<_, Vec<&CheckResult>> = BTreeMap::new();
    for r in &report.results {
        groups
            .entry(section_key(r.check.section))
            .or_default()
            .push(r);
    }
    groups
}

fn tag(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Pass => "PASS ",
        Verdict::Fail => "FAIL ",
        Verdict::Skip => "SKIP ",
        Verdict::Error => "ERROR",
    }
}

/// "§3.6.1" or "ext1 §4.1".
pub fn section_label(section: &str) -> String {
    match section.split_once(' ') {
        Some((ext, rest)) => format!("{ext} §{rest}"),
        None => format!("§{section}"),
    }
}

/// The summary line.
pub fn summary(report: &Report) -> String {
    format!(
        "{} checks against {}: {} pass, {} fail ({} MUST), {} skip, {} error in {:.1} s",
        report.results.len(),
        report.target,
        report.count(Verdict::Pass),
        report.count(Verdict::Fail),
        report.must_failures(),
        report.count(Verdict::Skip),
        report.count(Verdict::Error),
        report.duration.as_secs_f64()
    )
}

/// The readable report: checks grouped by spec section, failures and errors with what was expected
/// and what came, skips with their reason; the summary line last.
pub fn text(report: &Report, verbose: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "SV2 conformance: role pool, target {} ({})\n",
        report.target,
        if report.encrypted {
            "Noise"
        } else {
            "plaintext"
        }
    );
    if let Some(certificate) = &report.certificate {
        let _ = writeln!(out, "server certificate: {certificate}\n");
    }
    for ((_, _, section), results) in grouped(report) {
        let _ = writeln!(out, "{}", section_label(&section));
        for r in results {
            let _ = writeln!(
                out,
                "  {}  {:<6}  {:<40} {}",
                tag(r.outcome.verdict),
                r.check.level.as_str(),
                r.check.id,
                r.check.title
            );
            match r.outcome.verdict {
                Verdict::Fail => {
                    let _ = writeln!(out, "           expected: {}", r.outcome.expected);
                    let _ = writeln!(out, "           observed: {}", r.outcome.observed);
                    if let Some(quote) = crate::quotes::quote(r.check.id) {
                        let _ = writeln!(out, "           spec:     {quote}");
                    }
                }
                Verdict::Skip | Verdict::Error => {
                    let _ = writeln!(out, "           {}", r.outcome.observed);
                }
                Verdict::Pass if verbose => {
                    let _ = writeln!(out, "           {}", r.outcome.observed);
                }
                Verdict::Pass => {}
            }
            if !r.check.is_monitor() && !r.findings.is_empty() {
                let _ = writeln!(
                    out,
                    "           (monitor: {} finding(s) on its connections, see the monitor rules)",
                    r.findings.len()
                );
            }
        }
        out.push('\n');
    }
    let _ = writeln!(out, "{}", summary(report));
    out
}

fn check_json(check: &Check) -> Value {
    json!({
        "id": check.id,
        "section": check.section,
        "level": check.level,
        "role": check.role,
        "catalog": check.catalog,
        "title": check.title,
        "kind": if check.is_monitor() { "monitor" } else { "active" },
        "spec": crate::quotes::quote(check.id),
    })
}

/// The whole run as JSON: every verdict with its evidence (transcripts as hex and decoded JSON, and
/// the monitor's findings).
pub fn json(report: &Report) -> Value {
    let results: Vec<Value> = report
        .results
        .iter()
        .map(|r| {
            let mut v = check_json(&r.check);
            v["verdict"] = json!(r.outcome.verdict);
            v["expected"] = json!(r.outcome.expected);
            v["observed"] = json!(r.outcome.observed);
            v["duration_ms"] = json!(r.duration.as_secs_f64() * 1000.0);
            v["findings"] = json!(r.findings);
            v["evidence"] = Value::Array(
                r.evidence
                    .iter()
                    .map(|e| json!({"connection": e.label, "raw": e.raw, "transcript": e.transcript.to_json()}))
                    .collect(),
            );
            v
        })
        .collect();
    json!({
        "tool": "sv2-conformance",
        "version": env!("CARGO_PKG_VERSION"),
        "role": "pool",
        "target": report.target,
        "encrypted": report.encrypted,
        "certificate": report.certificate,
        "summary": {
            "checks": report.results.len(),
            "pass": report.count(Verdict::Pass),
            "fail": report.count(Verdict::Fail),
            "must_failures": report.must_failures(),
            "skip": report.count(Verdict::Skip),
            "error": report.count(Verdict::Error),
            "duration_s": report.duration.as_secs_f64(),
        },
        "results": results,
    })
}

/// The catalogue as JSON (for `--list`).
pub fn catalogue_json(checks: &[Check]) -> Value {
    Value::Array(checks.iter().map(check_json).collect())
}

/// JUnit XML: one test suite per spec section, one test case per check (classname = section).
pub fn junit(report: &Report) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"sv2-conformance\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
        report.results.len(),
        report.count(Verdict::Fail),
        report.count(Verdict::Error),
        report.count(Verdict::Skip),
        report.duration.as_secs_f64()
    );
    for ((_, _, section), results) in grouped(report) {
        let count = |v| results.iter().filter(|r| r.outcome.verdict == v).count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\">",
            xml(&section_label(&section)),
            results.len(),
            count(Verdict::Fail),
            count(Verdict::Error),
            count(Verdict::Skip)
        );
        for r in results {
            let _ = write!(
                out,
                "    <testcase name=\"{}\" classname=\"{}\" time=\"{:.3}\"",
                xml(r.check.id),
                xml(&format!(
                    "{} {}",
                    section_label(r.check.section),
                    r.check.level.as_str()
                )),
                r.duration.as_secs_f64()
            );
            let body = format!(
                "{}\nexpected: {}\nobserved: {}",
                r.check.title, r.outcome.expected, r.outcome.observed
            );
            match r.outcome.verdict {
                Verdict::Pass => out.push_str("/>\n"),
                Verdict::Fail => {
                    let _ = writeln!(
                        out,
                        ">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>",
                        xml(&r.outcome.observed),
                        r.check.level.as_str(),
                        xml(&body)
                    );
                }
                Verdict::Error => {
                    let _ = writeln!(
                        out,
                        ">\n      <error message=\"{}\">{}</error>\n    </testcase>",
                        xml(&r.outcome.observed),
                        xml(&body)
                    );
                }
                Verdict::Skip => {
                    let _ = writeln!(
                        out,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                        xml(&r.outcome.observed)
                    );
                }
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// Escapes text for XML attributes and content; drops characters XML 1.0 cannot carry.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_sort_numerically() {
        let mut s = vec!["5.3.10", "3.6.1", "5.3.2", "ext1 4.1", "4", "3.10"];
        s.sort_by_key(|x| section_key(x));
        assert_eq!(s, ["3.6.1", "3.10", "4", "5.3.2", "5.3.10", "ext1 4.1"]);
    }

    #[test]
    fn xml_escapes_and_drops_control_characters() {
        assert_eq!(xml("a<b>&\"'\u{1}"), "a&lt;b&gt;&amp;&quot;&apos;\\x01");
    }
}
