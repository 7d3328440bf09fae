//! The active runner: every selected check on its own connections, each under a deadline, the passive
//! monitor over every connection made, and the verdicts gathered into a [`Report`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use sv2_wire::Transcript;

use crate::check::{Check, Kind, Level};
use crate::checks;
use crate::monitor::{self, Finding};
use crate::review;
use crate::session::{Ctx, Recorded, Target};
use crate::verdict::{Outcome, Verdict};

/// Which checks to run.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Check ids, group names, or prefixes ending in `*` (e.g. `setup`, `mining.share*`); empty:
    /// all.
    pub only: Vec<String>,
}

impl Selection {
    /// `setup.reply` selects that check; `setup`, `setup.` and `setup*` select the group.
    pub fn includes(&self, check: &Check) -> bool {
        self.only.is_empty()
            || self.only.iter().any(|p| {
                if let Some(prefix) = p.strip_suffix('*') {
                    check.id.starts_with(prefix)
                } else if p.ends_with('.') {
                    check.id.starts_with(p.as_str())
                } else {
                    check.id == p
                        || check
                            .id
                            .strip_prefix(p.as_str())
                            .is_some_and(|rest| rest.starts_with('.'))
                }
            })
    }
}

/// A monitor finding and the connection it came from.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Located {
    /// The active check whose connection it was.
    pub check: &'static str,
    /// The connection's label.
    pub connection: String,
    #[serde(flatten)]
    pub finding: Finding,
}

/// One check's result.
#[derive(Debug, Clone)]
pub struct CheckResult {
    pub check: Check,
    pub outcome: Outcome,
    pub duration: Duration,
    /// The connections it made (active checks), or those where its rule was broken (monitor rules).
    pub evidence: Vec<Recorded>,
    /// Monitor findings on this check's connections (active checks), or the rule's findings.
    pub findings: Vec<Located>,
}

/// A whole run.
#[derive(Debug, Clone)]
pub struct Report {
    pub target: String,
    pub encrypted: bool,
    /// The server's certificate in words (version, validity, certified key), as the run's first
    /// handshake saw it; whether its signature verifies is `noise.certificate`'s verdict.
    pub certificate: Option<String>,
    pub results: Vec<CheckResult>,
    pub duration: Duration,
}

impl Report {
    pub fn count(&self, verdict: Verdict) -> usize {
        self.results
            .iter()
            .filter(|r| r.outcome.verdict == verdict)
            .count()
    }

    /// Failures of MUST requirements.
    pub fn must_failures(&self) -> usize {
        self.results
            .iter()
            .filter(|r| r.outcome.verdict == Verdict::Fail && r.check.level == Level::Must)
            .count()
    }

    /// The process exit code: 1 on any MUST failure; 2 when nothing could be checked (every check
    /// errored, e.g. the target is down); 0 otherwise.
    pub fn exit_code(&self) -> i32 {
        if self.must_failures() > 0 {
            1
        } else if !self.results.is_empty()
            && self
                .results
                .iter()
                .all(|r| matches!(r.outcome.verdict, Verdict::Error | Verdict::Skip))
            && self.count(Verdict::Error) > 0
        {
            2
        } else {
            0
        }
    }
}

/// Where a run is, for a progress display: [`run_observed`] reports a check as it starts and as it
/// ends.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// The check `id` starts; it is number `index` (from 0) of `total` the run reports.
    Started {
        id: &'static str,
        index: usize,
        total: usize,
    },
    /// A check ended with this result.
    Finished(&'a CheckResult),
}

/// Runs the selected checks of the catalogue against `target`, in catalogue order, each check's
/// connections under the monitor. Each result goes to `progress` as its check ends.
pub async fn run(
    target: Target,
    selection: &Selection,
    mut progress: impl FnMut(&CheckResult),
) -> Report {
    run_observed(target, selection, |event| {
        if let Progress::Finished(result) = event {
            progress(result);
        }
    })
    .await
}

/// As [`run`], with every check's start reported too ([`Progress`]).
pub async fn run_observed(
    target: Target,
    selection: &Selection,
    mut progress: impl FnMut(Progress<'_>),
) -> Report {
    let started = Instant::now();
    let target = Arc::new(target);
    let certificate: crate::session::CertificateSlot = Arc::default();
    let catalogue = checks::catalogue();
    let selected: Vec<Check> = catalogue
        .into_iter()
        .filter(|c| selection.includes(c))
        .collect();
    let active: Vec<&Check> = selected.iter().filter(|c| !c.is_monitor()).collect();
    let rules: Vec<&Check> = selected.iter().filter(|c| c.is_monitor()).collect();
    let total = active.len() + rules.len();
    let mut started_checks = 0;

    let mut results = Vec::new();
    // Only the server's findings: the suite's own frames break client rules on purpose.
    let mut judge = RunJudge::new(monitor::MonitorReport::server);

    let mut workload: Vec<Check> = Vec::new();
    if active.is_empty() && !rules.is_empty() {
        // Monitor rules alone need traffic to judge.
        workload.push(checks::traffic_check());
    }
    for check in active.iter().copied().chain(workload.iter()) {
        let is_workload = workload.iter().any(|w| w.id == check.id);
        let Kind::Active(run_fn) = check.kind else {
            continue;
        };
        if !is_workload {
            progress(Progress::Started {
                id: check.id,
                index: started_checks,
                total,
            });
            started_checks += 1;
        }
        let ctx = Ctx::new(target.clone()).sharing_certificate(certificate.clone());
        let t = Instant::now();
        let limit = deadline(&target);
        let task = tokio::spawn(run_fn(ctx.clone()));
        let abort = task.abort_handle();
        let outcome = match tokio::time::timeout(limit, task).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(e)) => Outcome::error(format!("the check panicked: {e}")),
            Err(_) => {
                // Stop it: its sessions drop (and hand in their transcripts) with it.
                abort.abort();
                tokio::time::sleep(Duration::from_millis(50)).await;
                Outcome::error(format!("the check did not finish within {limit:?}"))
            }
        };
        let duration = t.elapsed();
        // Give dropped sessions a moment to hand in their transcripts.
        tokio::task::yield_now().await;
        let evidence = ctx.take_evidence();
        // What the evidence says about the verdict: a refusal of the user, or a server frame the
        // check could not read, turns it into an error saying so.
        let outcome = review::review(outcome, &evidence, &target.user_identity);
        let findings = judge.add(check.id, &evidence);
        if !is_workload {
            let result = CheckResult {
                check: *check,
                outcome,
                duration,
                evidence,
                findings,
            };
            progress(Progress::Finished(&result));
            results.push(result);
        }
    }

    results.extend(judge.rule_results(&rules, started_checks, total, &mut progress));

    let certificate = certificate.lock().ok().and_then(|c| c.clone());
    Report {
        target: target.address.to_string(),
        encrypted: target.is_encrypted(),
        certificate,
        results,
        duration: started.elapsed(),
    }
}

/// The monitor over every connection of a run, check by check: one side's findings, the
/// connections they were on, and the rules that had something to judge. Both runners use it: the
/// pool's with the server's findings, the clients' with the client's.
pub(crate) struct RunJudge {
    side: fn(&monitor::MonitorReport) -> monitor::MonitorReport,
    /// The transcripts where the monitor found something, with their check: the rules' evidence.
    flagged: Vec<(&'static str, Recorded)>,
    findings: Vec<Located>,
    exercised: std::collections::BTreeSet<&'static str>,
}

impl RunJudge {
    pub(crate) fn new(side: fn(&monitor::MonitorReport) -> monitor::MonitorReport) -> Self {
        RunJudge {
            side,
            flagged: Vec::new(),
            findings: Vec::new(),
            exercised: Default::default(),
        }
    }

    /// Judges the connections of `check` (byte-level exchanges aside): its findings.
    pub(crate) fn add(&mut self, check: &'static str, evidence: &[Recorded]) -> Vec<Located> {
        let mut findings = Vec::new();
        for recorded in evidence.iter().filter(|r| !r.raw) {
            let report = (self.side)(&monitor::check_transcript(&recorded.transcript));
            self.exercised.extend(report.exercised.iter().copied());
            if !report.findings.is_empty() {
                self.flagged.push((check, recorded.clone()));
            }
            for finding in report.findings {
                findings.push(Located {
                    check,
                    connection: recorded.label.clone(),
                    finding,
                });
            }
        }
        self.findings.extend(findings.iter().cloned());
        findings
    }

    /// Each rule's verdict over everything judged, reported as check `index` on of `total`.
    pub(crate) fn rule_results(
        &self,
        rules: &[&Check],
        mut index: usize,
        total: usize,
        progress: &mut impl FnMut(Progress<'_>),
    ) -> Vec<CheckResult> {
        let mut results = Vec::new();
        for rule in rules {
            progress(Progress::Started {
                id: rule.id,
                index,
                total,
            });
            index += 1;
            let findings: Vec<Located> = self
                .findings
                .iter()
                .filter(|f| f.finding.rule == rule.id)
                .cloned()
                .collect();
            let evidence: Vec<Recorded> = self
                .flagged
                .iter()
                .filter(|(check, r)| {
                    findings
                        .iter()
                        .any(|f| f.check == *check && f.connection == r.label)
                })
                .map(|(_, r)| r.clone())
                .collect();
            let result = rule_result(rule, findings, self.exercised.contains(rule.id), evidence);
            progress(Progress::Finished(&result));
            results.push(result);
        }
        results
    }
}

/// How long one check may take in all.
fn deadline(target: &Target) -> Duration {
    target.timeout * 6 + target.work_window * 2 + Duration::from_secs(30)
}

/// Applies the monitor to a transcript from elsewhere (a capture, a proxy): the verdict of every
/// server rule (the server's frames are `ServerToClient`).
pub fn monitor_transcript(transcript: &Transcript) -> Vec<CheckResult> {
    let report = monitor::check_transcript(transcript).server();
    monitor::RULES
        .iter()
        .map(|rule| {
            let findings: Vec<Located> = report
                .findings_for(rule.id)
                .map(|f| Located {
                    check: "transcript",
                    connection: "transcript".into(),
                    finding: f.clone(),
                })
                .collect();
            rule_result(
                rule,
                findings,
                report.exercised.contains(rule.id),
                Vec::new(),
            )
        })
        .collect()
}

/// The monitor over the connections a proxy relayed: the server rules judge what each server sent
/// (the upstream leg), the client rules what each client sent (the downstream leg). What the proxy
/// itself sent on either leg (relayed, perhaps broken on purpose by a scenario) is never judged.
/// `pairs`: a label for each pair, its downstream leg and its upstream leg.
pub fn monitor_relay(pairs: &[(String, &Transcript, &Transcript)]) -> Vec<CheckResult> {
    let mut judge = RelayJudge::default();
    for (label, downstream, upstream) in pairs {
        judge.add(label, downstream, upstream);
    }
    judge.results()
}

/// [`monitor_relay`] one pair at a time, keeping only the findings (at most
/// [`RelayJudge::MAX_PER_RULE`] per rule), so a long-running proxy does not keep every transcript.
#[derive(Debug, Default)]
pub struct RelayJudge {
    findings: std::collections::BTreeMap<&'static str, Vec<Located>>,
    exercised: std::collections::BTreeSet<&'static str>,
}

impl RelayJudge {
    pub const MAX_PER_RULE: usize = 1000;

    /// Judges one relayed pair.
    pub fn add(&mut self, label: &str, downstream: &Transcript, upstream: &Transcript) {
        let server = monitor::check_transcript(upstream).server();
        let client = monitor::check_transcript(downstream).client();
        for (report, leg) in [(&server, "upstream"), (&client, "downstream")] {
            self.exercised.extend(report.exercised.iter().copied());
            for f in &report.findings {
                let kept = self.findings.entry(f.rule).or_default();
                if kept.len() < Self::MAX_PER_RULE {
                    kept.push(Located {
                        check: leg,
                        connection: label.to_string(),
                        finding: f.clone(),
                    });
                }
            }
        }
    }

    /// Every server and client rule's verdict over the pairs judged so far.
    pub fn results(&self) -> Vec<CheckResult> {
        monitor::RULES
            .iter()
            .chain(monitor::CLIENT_RULES)
            .map(|rule| {
                rule_result(
                    rule,
                    self.findings.get(rule.id).cloned().unwrap_or_default(),
                    self.exercised.contains(rule.id),
                    Vec::new(),
                )
            })
            .collect()
    }
}

/// A monitor rule's verdict: fail with the first findings (where they were), pass when the rule
/// judged something and found nothing, skip when nothing gave it anything to judge.
fn rule_result(
    rule: &Check,
    findings: Vec<Located>,
    exercised: bool,
    evidence: Vec<Recorded>,
) -> CheckResult {
    let outcome = if !findings.is_empty() {
        let mut observed: Vec<String> = findings
            .iter()
            .take(5)
            .map(|f| {
                format!(
                    "{} (connection '{}' of {}, entry {})",
                    f.finding.detail, f.connection, f.check, f.finding.entry
                )
            })
            .collect();
        if findings.len() > 5 {
            observed.push(format!("and {} more", findings.len() - 5));
        }
        Outcome::fail(rule.title, observed.join("; "))
    } else if exercised {
        Outcome::pass(rule.title, "no violation in any connection judged")
    } else {
        Outcome::skip("nothing gave the rule anything to judge")
    };
    CheckResult {
        check: *rule,
        outcome,
        duration: Duration::ZERO,
        evidence,
        findings,
    }
}
