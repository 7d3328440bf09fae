//! Runs the selected client checks: for each, the client is started (or awaited), the check serves
//! its connections, the client is stopped, and the monitor's client rules judge every connection
//! the client made. The client rules' verdicts come last, as in a pool run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::{Endpoint, Harness, Listener, ServeCtx};
use crate::check::{Check, Kind, Role};
use crate::checks;
use crate::monitor;
use crate::runner::{CheckResult, Progress, Report, RunJudge, Selection};
use crate::verdict::{Outcome, Verdict};

/// Every check of a client role, in report order: the device checks (a translator's or a proxy's
/// upstream side is a device), the role's own, then the monitor's client rules (and for a proxy,
/// the pool rules over its downstream side).
pub fn catalogue(role: Role) -> Vec<Check> {
    let mut all: Vec<Check> = checks::device::CHECKS.to_vec();
    match role {
        Role::Translator => all.extend_from_slice(checks::translator::CHECKS),
        Role::Proxy => all.extend_from_slice(checks::proxy::CHECKS),
        _ => {}
    }
    all.extend_from_slice(monitor::CLIENT_RULES);
    if role == Role::Proxy {
        all.extend_from_slice(monitor::RULES);
    }
    all
}

/// How long one client check may take in all.
fn deadline(listener: &Listener) -> Duration {
    listener.connect_timeout * 3 + listener.timeout * 6 + listener.work_window * 3
}

/// Runs the selected checks of `role` against the client that connects to `listener`. An error
/// (the address cannot be bound) comes before any check runs.
pub async fn run(
    listener: Listener,
    role: Role,
    selection: &Selection,
    progress: impl FnMut(Progress<'_>),
) -> std::io::Result<Report> {
    let socket = TcpListener::bind(listener.listen).await?;
    run_on(socket, listener, role, selection, progress).await
}

/// [`run`] on a socket already listening (its address replaces `listener.listen`): the caller
/// knows the port before the client must be told it.
pub async fn run_on(
    socket: TcpListener,
    listener: Listener,
    role: Role,
    selection: &Selection,
    mut progress: impl FnMut(Progress<'_>),
) -> std::io::Result<Report> {
    let started = Instant::now();
    let local = socket.local_addr()?;
    let mut endpoint = Endpoint::new(
        local,
        (!listener.plaintext).then(|| listener.authority_key()),
    );
    if matches!(role, Role::Translator | Role::Proxy) {
        // The side below ({downstream_port}): as given, or a free loopback port.
        endpoint.downstream_port = match listener.downstream_port {
            Some(port) => Some(port),
            None => Some(
                std::net::TcpListener::bind(("127.0.0.1", 0))?
                    .local_addr()?
                    .port(),
            ),
        };
    }
    let (streams, incoming) = mpsc::channel(64);
    let accept = tokio::spawn(async move {
        loop {
            match socket.accept().await {
                Ok((stream, _)) => {
                    // A full queue drops the connection: the checks take them one at a time.
                    let _ = streams.try_send(stream);
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    });
    let harness = Arc::new(Harness {
        role,
        config: listener,
        endpoint,
        incoming: tokio::sync::Mutex::new(incoming),
    });

    let selected: Vec<Check> = catalogue(role)
        .into_iter()
        .filter(|c| selection.includes(c))
        .collect();
    let active: Vec<&Check> = selected.iter().filter(|c| !c.is_monitor()).collect();
    let rules: Vec<&Check> = selected.iter().filter(|c| c.is_monitor()).collect();
    let total = active.len() + rules.len();
    let mut index = 0;
    let mut results = Vec::new();
    // Only the client's findings: the suite sends malformed frames on purpose.
    let mut judge = RunJudge::new(monitor::MonitorReport::client);
    // A proxy's downstream side is a pool: the server's findings there.
    let mut downstream = RunJudge::new(monitor::MonitorReport::server);

    for check in active {
        let Kind::Serve(run_fn) = check.kind else {
            continue;
        };
        progress(Progress::Started {
            id: check.id,
            index,
            total,
        });
        index += 1;
        let t = Instant::now();
        // Connections left over from a client the suite started before; a long-running client's
        // reconnect is the next check's connection and stays.
        if harness.config.launcher.starts_clients() {
            harness.drain().await;
        }
        let ctx = ServeCtx::new(harness.clone());
        let mut outcome = match ctx.launch().await {
            Err(o) => o,
            Ok(()) => {
                // Below a translator or a proxy, a device check needs a miner for shares to come;
                // the role's own checks start theirs.
                if matches!(role, Role::Translator | Role::Proxy) && check.role == Role::Device {
                    let miner = ctx.clone();
                    ctx.background(async move {
                        let _ = miner.miner_below("sv2-conformance.below").await;
                    });
                }
                let limit = deadline(&harness.config);
                let task = tokio::spawn(run_fn(ctx.clone()));
                let abort = task.abort_handle();
                match tokio::time::timeout(limit, task).await {
                    Ok(Ok(outcome)) => outcome,
                    Ok(Err(e)) => Outcome::error(format!("the check panicked: {e}")),
                    Err(_) => {
                        abort.abort();
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Outcome::error(format!("the check did not finish within {limit:?}"))
                    }
                }
            }
        };
        if let Some(stopped) = ctx.stop().await {
            // What the client printed explains an error; a verdict stands on the wire.
            if outcome.verdict == Verdict::Error && !outcome.observed.contains("it exited") {
                outcome.observed = format!("{}; the client: {stopped}", outcome.observed);
            }
        }
        let duration = t.elapsed();
        tokio::task::yield_now().await;
        let mut evidence = ctx.take_evidence();
        let mut findings = judge.add(check.id, &evidence);
        let below = ctx.take_downstream_evidence();
        findings.extend(downstream.add(check.id, &below));
        evidence.extend(below);
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

    let (client_rules, server_rules): (Vec<&Check>, Vec<&Check>) =
        rules.iter().partition(|r| r.role == Role::Client);
    results.extend(judge.rule_results(&client_rules, index, total, &mut progress));
    index += client_rules.len();
    results.extend(downstream.rule_results(&server_rules, index, total, &mut progress));
    accept.abort();
    Ok(Report {
        target: harness.endpoint.url.clone(),
        encrypted: !harness.config.plaintext,
        certificate: None,
        results,
        duration: started.elapsed(),
    })
}
