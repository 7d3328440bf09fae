//! Expected verdicts: a reviewed list of what a known implementation does, so that a run against it
//! in CI shows any change on either side (a fix, a regression, a new check) as a difference.
//!
//! The format is plain text, one check per line: `<check id> <pass|fail|skip|error>`, with `#`
//! starting a comment (the reason a verdict is what it is belongs there). Blank lines are ignored.

use std::collections::BTreeMap;

use crate::runner::Report;
use crate::verdict::Verdict;

/// Parses an expected-verdicts file. Errors name the line.
pub fn parse(text: &str) -> Result<BTreeMap<String, Verdict>, String> {
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(id), Some(verdict), None) = (words.next(), words.next(), words.next()) else {
            return Err(format!("line {}: expected `<check id> <verdict>`", n + 1));
        };
        let verdict = match verdict {
            "pass" => Verdict::Pass,
            "fail" => Verdict::Fail,
            "skip" => Verdict::Skip,
            "error" => Verdict::Error,
            other => return Err(format!("line {}: unknown verdict {other:?}", n + 1)),
        };
        if out.insert(id.to_string(), verdict).is_some() {
            return Err(format!("line {}: {id} listed twice", n + 1));
        }
    }
    Ok(out)
}

/// One way the run differs from the expectations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub id: String,
    /// None: the check is not in the file.
    pub expected: Option<Verdict>,
    /// None: the check did not run (not in the catalogue, or not selected).
    pub actual: Option<Verdict>,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = |v: Option<Verdict>| v.map_or("absent", Verdict::as_str);
        write!(
            f,
            "{}: expected {}, got {}",
            self.id,
            v(self.expected),
            v(self.actual)
        )
    }
}

/// Every check whose verdict differs from the file, every check run but not listed, and every listed
/// check that did not run (when `complete`, i.e. the whole catalogue was selected).
pub fn compare(
    report: &Report,
    expected: &BTreeMap<String, Verdict>,
    complete: bool,
) -> Vec<Difference> {
    let mut out = Vec::new();
    for r in &report.results {
        let want = expected.get(r.check.id).copied();
        if want != Some(r.outcome.verdict) {
            out.push(Difference {
                id: r.check.id.to_string(),
                expected: want,
                actual: Some(r.outcome.verdict),
            });
        }
    }
    if complete {
        for (id, verdict) in expected {
            if !report.results.iter().any(|r| r.check.id == id) {
                out.push(Difference {
                    id: id.clone(),
                    expected: Some(*verdict),
                    actual: None,
                });
            }
        }
    }
    out
}

/// The file for a report, for a first review: every verdict, with the observation as a comment.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    for r in &report.results {
        let note = r.outcome.observed.replace('\n', " ");
        let note: String = note.chars().take(160).collect();
        out.push_str(&format!(
            "{:<44} {:<5}  # {}\n",
            r.check.id,
            r.outcome.verdict.as_str(),
            note
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines_comments_and_rejects_junk() {
        let m = parse("# header\nsetup.reply pass # ok\n\n noise.required   fail\n").unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m["noise.required"], Verdict::Fail);
        assert!(parse("setup.reply maybe").unwrap_err().contains("line 1"));
        assert!(parse("a pass\na fail").unwrap_err().contains("twice"));
        assert!(parse("a pass extra").is_err());
    }
}
