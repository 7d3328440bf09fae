//! The probe: a scripted SV2 client that walks a live pool through one session, step by step (TCP,
//! Noise, certificate, SetupConnection, channel, first job, coinbase, a share mined here and
//! submitted), then runs the passive monitor over the session's transcript. Each step is a
//! [`Step`] with a [`Verdict`], a detail line and its data; `sv2-probe probe` renders the
//! [`Report`] as text or JSON.
//!
//! The work is followed with the shared client view (`sv2_mock::work::Tracker`) and mined with the
//! device's engine runner (`sv2_mock::miner::runner::EngineRunner`).

mod coinbase;
mod share;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sv2_chain::display_hex;
use sv2_chain::target::difficulty;
use sv2_chain::tx::Transaction;
use sv2_codec::messages::common::{flags, protocol, SetupConnection};
use sv2_codec::messages::mining::{OpenExtendedMiningChannel, OpenStandardMiningChannel};
use sv2_codec::noise::keys::Sv2Url;
use sv2_codec::noise::{InitiatorConfig, KeyLogEntry};
use sv2_codec::types::{Str0_255, U256};
use sv2_codec::Message;
use sv2_mock::work::Tracker;
use sv2_wire::keylog::{FileSink, KeyLogSink};
use sv2_wire::{unix_now, Connection, Endpoints, KeyLog, NetError, Side, Tap, Tapped, Transcript};
use tokio::net::TcpStream;

use crate::monitor::check_transcript;
use crate::verdict::Verdict;
use coinbase::describe_coinbase;

/// What the probe does (`sv2-probe probe`'s options).
#[derive(Debug, Clone)]
pub struct ProbeConfig {
    /// Open a standard channel instead of an extended one.
    pub standard: bool,
    /// user_identity for the channel.
    pub user: String,
    /// Nominal hash rate announced for the channel, in H/s.
    pub hashrate: f32,
    /// Seconds each protocol step may take.
    pub timeout: f64,
    /// Seconds to mine and wait for the share round trip.
    pub share_timeout: f64,
    /// Mining threads.
    pub threads: usize,
    /// Do not mine or submit a share.
    pub no_share: bool,
    /// Plain frames, without Noise.
    pub plaintext: bool,
    /// Append the session's traffic keys to this file (besides `SV2KEYLOGFILE`).
    pub keylog: Option<PathBuf>,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            standard: false,
            user: "sv2-probe".into(),
            hashrate: 1e6,
            timeout: 10.0,
            share_timeout: 60.0,
            threads: 1,
            no_share: false,
            plaintext: false,
            keylog: None,
        }
    }
}

/// One step of the probe.
#[derive(Debug, Clone)]
pub struct Step {
    pub name: &'static str,
    /// Pass, Fail or Skip (the probe never gives Error: a step that could not run fails).
    pub status: Verdict,
    pub ms: f64,
    pub detail: String,
    pub data: Value,
}

/// Every step, in order.
#[derive(Debug, Default)]
pub struct Report {
    pub steps: Vec<Step>,
    /// The session's conversation (what was recorded of a failed handshake too); `None` when no
    /// connection was made.
    pub transcript: Option<Transcript>,
    /// The session's key-log entry, once the Noise handshake completed.
    pub key_log: Option<KeyLogEntry>,
}

impl Report {
    fn add(
        &mut self,
        name: &'static str,
        status: Verdict,
        since: Instant,
        detail: String,
        data: Value,
    ) {
        self.steps.push(Step {
            name,
            status,
            ms: since.elapsed().as_secs_f64() * 1000.0,
            detail,
            data,
        });
    }

    /// Whether any step failed.
    pub fn failed(&self) -> bool {
        self.count(Verdict::Fail) > 0
    }

    /// Steps with this verdict.
    pub fn count(&self, status: Verdict) -> usize {
        self.steps.iter().filter(|s| s.status == status).count()
    }
}

/// Received bytes shown in a failing step's detail, half from the start of the step and half from
/// the end (its JSON data holds up to [`DATA_BYTES`] from the start).
const SHOWN_BYTES: usize = 64;
const DATA_BYTES: usize = 4096;

/// Runs every step, then the conformance suite's passive monitor over the frames of the session: a
/// `monitor` step that fails when the pool broke a per-message rule of the spec (channel_msg bits,
/// request ids, targets against max_target, job ids, coinbase stripping, share acknowledgements...).
pub async fn probe(url: &Sv2Url, config: &ProbeConfig) -> Report {
    let slot: TranscriptSlot = Arc::default();
    let mut report = steps(url, config, slot.clone()).await;
    let transcript = slot.lock().ok().and_then(|mut t| t.take());
    if let Some(transcript) = transcript {
        let t = Instant::now();
        // The pool's findings only (what the probe itself sends is not judged here).
        let monitor = check_transcript(&transcript).server();
        let judged: Vec<&str> = monitor.exercised.iter().copied().collect();
        let data = json!({"rules_judged": judged, "findings": monitor.findings});
        if monitor.findings.is_empty() {
            let detail = format!(
                "{} rules judged over {} frames, no violation",
                judged.len(),
                transcript.len()
            );
            report.add("monitor", Verdict::Pass, t, detail, data);
        } else {
            let mut detail: Vec<String> = monitor
                .findings
                .iter()
                .take(3)
                .map(|f| format!("{}: {}", f.rule, f.detail))
                .collect();
            if monitor.findings.len() > 3 {
                detail.push(format!("and {} more", monitor.findings.len() - 3));
            }
            report.add("monitor", Verdict::Fail, t, detail.join("; "), data);
        }
        report.transcript = Some(transcript);
    }
    report
}

/// Where the session's transcript goes when its connection is dropped.
type TranscriptSlot = Arc<Mutex<Option<Transcript>>>;

/// The probe's connection: hands its transcript to the slot when dropped, whichever step ends the
/// probe.
struct Recorded {
    conn: Connection<Tapped<TcpStream>>,
    slot: TranscriptSlot,
}

impl std::ops::Deref for Recorded {
    type Target = Connection<Tapped<TcpStream>>;
    fn deref(&self) -> &Self::Target {
        &self.conn
    }
}

impl std::ops::DerefMut for Recorded {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.conn
    }
}

impl Drop for Recorded {
    fn drop(&mut self) {
        if let Ok(mut slot) = self.slot.lock() {
            *slot = Some(std::mem::take(&mut self.conn.transcript));
        }
    }
}

async fn steps(url: &Sv2Url, config: &ProbeConfig, slot: TranscriptSlot) -> Report {
    let mut report = Report::default();
    let step_timeout = Duration::from_secs_f64(config.timeout.max(0.1));

    // TCP.
    let t = Instant::now();
    let addr = url.host_port();
    let stream = match tokio::time::timeout(step_timeout, TcpStream::connect(&addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            report.add(
                "tcp",
                Verdict::Fail,
                t,
                format!("connect {addr}: {e}"),
                Value::Null,
            );
            return report;
        }
        Err(_) => {
            report.add(
                "tcp",
                Verdict::Fail,
                t,
                format!("connect {addr}: no answer within {step_timeout:?}"),
                Value::Null,
            );
            return report;
        }
    };
    let _ = stream.set_nodelay(true);
    report.add(
        "tcp",
        Verdict::Pass,
        t,
        format!("connected to {addr}"),
        json!({"address": addr}),
    );
    let endpoints = Endpoints::seen_from(
        Side::Client,
        stream.local_addr().ok(),
        stream.peer_addr().ok(),
    );
    let (stream, tap) = Tapped::new(stream);

    let mut conn = if config.plaintext {
        let t = Instant::now();
        report.add(
            "noise",
            Verdict::Skip,
            t,
            "--plaintext: no handshake, frames travel in the clear".into(),
            Value::Null,
        );
        report.add(
            "certificate",
            Verdict::Skip,
            t,
            "--plaintext: no certificate".into(),
            Value::Null,
        );
        Recorded {
            conn: Connection::plaintext(stream, Side::Client),
            slot,
        }
    } else {
        match handshake(stream, url, config, &tap, step_timeout, &mut report).await {
            Some(conn) => Recorded { conn, slot },
            None => {
                if let Some(t) = report.transcript.as_mut() {
                    t.endpoints = endpoints;
                }
                return report;
            }
        }
    };
    conn.transcript.endpoints = endpoints;
    // SetupConnection.
    let t = Instant::now();
    let mark = tap.mark();
    let setup = SetupConnection {
        protocol: protocol::MINING,
        min_version: 2,
        max_version: 2,
        flags: flags::REQUIRES_VERSION_ROLLING,
        endpoint_host: Str0_255::new(url.host.as_bytes().to_vec())
            .unwrap_or_else(|_| Str0_255::new(Vec::new()).expect("empty")),
        endpoint_port: url.port,
        vendor: Str0_255::new(b"sv2-probe".to_vec()).expect("short"),
        hardware_version: Str0_255::new(b"cpu".to_vec()).expect("short"),
        firmware: Str0_255::new(env!("CARGO_PKG_VERSION").as_bytes().to_vec()).expect("short"),
        device_id: Str0_255::new(b"probe".to_vec()).expect("short"),
    };
    if let Err(e) = conn.send(&setup.into()).await {
        let (detail, data) = failure(&e, &tap, mark);
        report.add("setup", Verdict::Fail, t, detail, data);
        return report;
    }
    match conn.recv("SetupConnection reply", step_timeout).await {
        Ok(d) => match d.message {
            Message::SetupConnectionSuccess(s) => report.add(
                "setup",
                Verdict::Pass,
                t,
                format!(
                    "used_version {} (offered 2..2); pool flags {}; sent flags {}",
                    s.used_version,
                    flags::describe(s.flags, flags::MINING_SUCCESS),
                    flags::describe(flags::REQUIRES_VERSION_ROLLING, flags::MINING_SETUP)
                ),
                json!({"used_version": s.used_version, "flags": s.flags, "flag_names": flags::names(s.flags, flags::MINING_SUCCESS), "sent_flags": flags::REQUIRES_VERSION_ROLLING, "min_version": 2, "max_version": 2}),
            ),
            Message::SetupConnectionError(e) => {
                report.add("setup", Verdict::Fail, t, format!("SetupConnection.Error {:?}, flags {}", e.error_code.as_str().unwrap_or("<not UTF-8>"), flags::describe(e.flags, flags::MINING_SETUP)), json!({"flags": e.flags, "error_code": e.error_code.as_str().unwrap_or_default()}));
                return report;
            }
            other => {
                report.add("setup", Verdict::Fail, t, format!("expected SetupConnection.Success or .Error, got {}", other.name()), Value::Null);
                return report;
            }
        },
        Err(e) => {
            let (detail, data) = failure(&e, &tap, mark);
            report.add("setup", Verdict::Fail, t, detail, data);
            return report;
        }
    }

    // Channel.
    let t = Instant::now();
    let mark = tap.mark();
    let open: Message<'static> = if config.standard {
        OpenStandardMiningChannel {
            request_id: 1,
            user_identity: Str0_255::new(config.user.as_bytes().to_vec())
                .unwrap_or_else(|_| Str0_255::new(Vec::new()).expect("empty")),
            nominal_hash_rate: config.hashrate,
            max_target: U256([0xff; 32]),
        }
        .into()
    } else {
        OpenExtendedMiningChannel {
            request_id: 1,
            user_identity: Str0_255::new(config.user.as_bytes().to_vec())
                .unwrap_or_else(|_| Str0_255::new(Vec::new()).expect("empty")),
            nominal_hash_rate: config.hashrate,
            max_target: U256([0xff; 32]),
            min_extranonce_size: 4,
        }
        .into()
    };
    if let Err(e) = conn.send(&open).await {
        let (detail, data) = failure(&e, &tap, mark);
        report.add("channel", Verdict::Fail, t, detail, data);
        return report;
    }
    let mut tracker = Tracker::default();
    let channel_id = loop {
        match conn.recv("channel reply", step_timeout).await {
            Ok(d) => {
                tracker.received(&d.message);
                match d.message {
                    Message::OpenStandardMiningChannelSuccess(s) => break s.channel_id,
                    Message::OpenExtendedMiningChannelSuccess(s) => break s.channel_id,
                    Message::OpenMiningChannelError(e) => {
                        let code = e.error_code.as_str().unwrap_or("<not UTF-8>");
                        let hint = if crate::review::refuses_user(code) {
                            format!(
                                " (the pool refuses the user_identity {:?}: give the one it \
                                 expects with --user, e.g. an account or a payout address)",
                                config.user
                            )
                        } else {
                            String::new()
                        };
                        report.add(
                            "channel",
                            Verdict::Fail,
                            t,
                            format!("OpenMiningChannel.Error {code:?}{hint}"),
                            Value::Null,
                        );
                        return report;
                    }
                    _ => {}
                }
            }
            Err(e) => {
                let (detail, data) = failure(&e, &tap, mark);
                report.add("channel", Verdict::Fail, t, detail, data);
                return report;
            }
        }
    };
    let Some(channel) = tracker.channels.get(&channel_id).cloned() else {
        // The tracker records every Open*.Success it is given.
        return report;
    };
    let diff = difficulty(&channel.target);
    report.add(
        "channel",
        Verdict::Pass,
        t,
        format!(
            "{} channel {}: target {}, difficulty {:.6}, extranonce_prefix {} ({} B), extranonce_size {}",
            if config.standard { "standard" } else { "extended" },
            channel.id,
            display_hex(&channel.target),
            diff,
            hex::encode(&channel.extranonce_prefix),
            channel.extranonce_prefix.len(),
            channel.extranonce_size
        ),
        json!({"channel_id": channel.id, "target": hex::encode(channel.target), "difficulty": diff, "extranonce_prefix": hex::encode(&channel.extranonce_prefix), "extranonce_size": channel.extranonce_size}),
    );

    // First job and prev hash.
    let t_job = Instant::now();
    let mark = tap.mark();
    let setup_done = t;
    let work = loop {
        if let Some(work) = tracker.work(channel_id) {
            break work;
        }
        match conn.recv("first job", step_timeout).await {
            Ok(d) => {
                tracker.received(&d.message);
                match d.message {
                    Message::CloseChannel(c) if c.channel_id == channel_id => {
                        let detail = format!(
                            "the pool closed the channel before a job: CloseChannel reason_code {:?}",
                            lossy(c.reason_code.as_bytes())
                        );
                        report.add(
                            "first job",
                            Verdict::Fail,
                            t_job,
                            detail,
                            json!({"close_channel": lossy(c.reason_code.as_bytes())}),
                        );
                        return report;
                    }
                    Message::Reconnect(r) => {
                        let to = reconnect_target(r.new_host.as_bytes(), r.new_port);
                        let detail = format!("the pool asked to reconnect before a job: Reconnect to {to} (not followed)");
                        report.add(
                            "first job",
                            Verdict::Fail,
                            t_job,
                            detail,
                            json!({"reconnect": to}),
                        );
                        return report;
                    }
                    _ => {}
                }
            }
            Err(e) => {
                let (mut detail, mut data) = failure(&e, &tap, mark);
                let jobs: usize = tracker.jobs.values().map(Vec::len).sum();
                let prev = !tracker.prev.is_empty();
                detail.push_str(&format!(
                    "; {jobs} job(s) and {} prev hash before that",
                    if prev { "a" } else { "no" }
                ));
                data["jobs"] = json!(jobs);
                data["prev_hash"] = json!(prev);
                report.add("first job", Verdict::Fail, t_job, detail, data);
                return report;
            }
        }
    };
    report.add(
        "first job",
        Verdict::Pass,
        t_job,
        format!(
            "job {} with prev hash {} after {:.1} ms from the channel request; nbits {:#010x}, min_ntime {}",
            work.job.id,
            display_hex(&work.prev.prev_hash),
            setup_done.elapsed().as_secs_f64() * 1000.0,
            work.prev.nbits,
            work.prev.min_ntime
        ),
        json!({"job_id": work.job.id, "prev_hash": hex::encode(work.prev.prev_hash), "nbits": work.prev.nbits, "min_ntime": work.prev.min_ntime}),
    );

    // Coinbase.
    let t = Instant::now();
    match work.coinbase(&vec![0; channel.extranonce_size]) {
        None => report.add(
            "coinbase",
            Verdict::Skip,
            t,
            "standard jobs carry only the merkle root".into(),
            Value::Null,
        ),
        Some(coinbase) => match Transaction::parse(&coinbase) {
            Ok(tx) => {
                let (status, detail, data) = describe_coinbase(&tx);
                report.add("coinbase", status, t, detail, data);
            }
            Err(e) => report.add(
                "coinbase",
                Verdict::Fail,
                t,
                format!("prefix || extranonce || suffix does not parse as a transaction stripped of BIP141 data (§5.3.16): {e}; bytes {}", hex::encode(&coinbase)),
                Value::Null,
            ),
        },
    }

    // Share.
    if config.no_share {
        report.add(
            "share",
            Verdict::Skip,
            Instant::now(),
            "--no-share".into(),
            Value::Null,
        );
        return report;
    }
    share::share_step(&mut conn, &tap, &mut report, tracker, work, config).await;
    report
}

/// The Noise handshake and the certificate check (steps `noise` and `certificate`); `None` when the
/// handshake failed.
async fn handshake(
    stream: Tapped<TcpStream>,
    url: &Sv2Url,
    config: &ProbeConfig,
    tap: &Tap,
    step_timeout: Duration,
    report: &mut Report,
) -> Option<Connection<Tapped<TcpStream>>> {
    // Without an authority key the certificate is reported but cannot be checked.
    let t = Instant::now();
    let mark = tap.mark();
    let initiator = match url.authority_key {
        Some(key) => InitiatorConfig::new(key),
        None => InitiatorConfig::unauthenticated(),
    };
    // SV2KEYLOGFILE, as for every command; --keylog is written below, where a failure fails the step.
    let env_key_log = KeyLog::from_env();
    let conn = match Connection::initiate_now_recorded(
        stream,
        initiator,
        step_timeout,
        &env_key_log,
    )
    .await
    {
        Ok(conn) => conn,
        Err(failed) => {
            let e = failed.error;
            report.transcript = Some(failed.transcript);
            let (mut detail, data) = failure(&e, tap, mark);
            if let Some(hint) = handshake_hint(&e, tap, mark) {
                detail.push_str(&format!(" ({hint})"));
            }
            report.add("noise", Verdict::Fail, t, detail, data);
            return None;
        }
    };
    let info = conn.handshake.clone()?;
    report.key_log = Some(info.established.key_log_entry());
    if let Some(path) = &config.keylog {
        // Skipped when SV2KEYLOGFILE names the same file: the connection has written it there.
        let written = if env_key_log.writes_to(path) {
            Ok(())
        } else {
            FileSink(path.clone()).write(&info.established.key_log_entry())
        };
        if let Err(e) = written {
            report.add("noise", Verdict::Fail, t, e, Value::Null);
            return None;
        }
    }
    report.add(
        "noise",
        Verdict::Pass,
        t,
        "Noise_NX_Secp256k1+EllSwift_ChaChaPoly_SHA256, act 1 64 B, act 2 234 B".into(),
        json!({"handshake_hash": hex::encode(info.established.handshake_hash), "handshake_ms": info.duration.as_secs_f64() * 1000.0}),
    );
    let now = unix_now();
    let cert = info.established.certificate;
    let cert_data = json!({
        "version": cert.version,
        "valid_from": cert.valid_from,
        "not_valid_after": cert.not_valid_after,
        "server_key": hex::encode(info.established.certified_key),
        "authority_key": url.authority_key.map(|k| k.to_base58()),
        "authenticated": info.established.authenticated,
    });
    let t = Instant::now();
    let what = cert.describe(&info.established.certified_key, now);
    if info.established.authenticated {
        report.add(
            "certificate",
            Verdict::Pass,
            t,
            format!("signed by the URL's authority key; {what}"),
            cert_data,
        );
    } else {
        report.add(
            "certificate",
            Verdict::Fail,
            t,
            format!("not checked: the URL carries no authority key; {what}"),
            cert_data,
        );
    }

    Some(conn)
}

/// What `count` received bytes were, for a detail line: hex of the first ones, and the text when
/// they read as text (an HTTP server, a Stratum V1 pool, a banner).
pub fn received_text(count: u64, bytes: &[u8]) -> String {
    if count == 0 {
        return "nothing received".into();
    }
    let mut text = format!("received {count} B in this step: ");
    if bytes.len() <= SHOWN_BYTES {
        text.push_str(&hex::encode(bytes));
    } else {
        let half = SHOWN_BYTES / 2;
        text.push_str(&format!(
            "{} ... {}",
            hex::encode(&bytes[..half]),
            hex::encode(&bytes[bytes.len() - half..])
        ));
    }
    if reads_as_text(bytes) {
        let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(80)]);
        text.push_str(&format!(" (as text: {shown:?})"));
    }
    text
}

/// At least 90% printable ASCII (or whitespace).
fn reads_as_text(bytes: &[u8]) -> bool {
    let readable = bytes
        .iter()
        .filter(|b| b.is_ascii_graphic() || matches!(b, b' ' | b'\r' | b'\n' | b'\t'))
        .count();
    !bytes.is_empty() && readable * 10 >= bytes.len() * 9
}

/// A failed step's detail and data: the error, then what the pool sent while the step ran.
pub(crate) fn failure(e: &NetError, tap: &Tap, mark: u64) -> (String, Value) {
    let (count, bytes) = tap.since(mark);
    let detail = format!("{}; {}", e.brief(), received_text(count, &bytes));
    let data = json!({
        "error": e.brief(),
        "received_len": count,
        "received_hex": hex::encode(&bytes[..bytes.len().min(DATA_BYTES)]),
    });
    (detail, data)
}

/// A hint for a handshake that failed on what came back (or did not).
fn handshake_hint(e: &NetError, tap: &Tap, mark: u64) -> Option<&'static str> {
    let (count, bytes) = tap.since(mark);
    if bytes.starts_with(b"{\"") && reads_as_text(&bytes) {
        Some("this looks like Stratum V1 (JSON), not SV2")
    } else if bytes.starts_with(b"HTTP/") && reads_as_text(&bytes) {
        Some("this is an HTTP server, not SV2")
    } else if count == 0 && matches!(e, NetError::Timeout { .. }) {
        Some("a pool without Noise waits silently for more of what it takes for a frame: try --plaintext")
    } else if count == 0 && matches!(e, NetError::Closed { .. }) {
        Some(
            "the server closed without answering act 1, as a pool without Noise does on bytes that \
             are not a frame: if it is one, try --plaintext",
        )
    } else {
        None
    }
}

/// Text a peer sent, for a detail line (invalid UTF-8 shown lossily).
pub(crate) fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Where a Reconnect points: an empty host and port 0 mean the current ones (§3.6.5).
pub(crate) fn reconnect_target(host: &[u8], port: u16) -> String {
    let host = if host.is_empty() {
        "the current host".to_owned()
    } else {
        lossy(host)
    };
    if port == 0 {
        format!("{host}, current port")
    } else {
        format!("{host}:{port}")
    }
}

/// The time from the last share submitted to now, for a detail line.
pub(crate) fn since_last(last_sent: Option<Instant>) -> String {
    last_sent.map_or("(nothing sent)".into(), |s| {
        format!("{:.1} ms", s.elapsed().as_secs_f64() * 1000.0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_bytes_are_shown_whole_or_by_their_ends() {
        assert_eq!(received_text(0, &[]), "nothing received");
        assert_eq!(
            received_text(3, &[0, 1, 0xff]),
            "received 3 B in this step: 0001ff"
        );
        let mut long = vec![0xaa; 100];
        long[99] = 0xbb;
        assert_eq!(
            received_text(100, &long),
            format!(
                "received 100 B in this step: {} ... {}bb",
                "aa".repeat(32),
                "aa".repeat(31)
            )
        );
        assert_eq!(
            received_text(6, b"HELLO\n"),
            "received 6 B in this step: 48454c4c4f0a (as text: \"HELLO\\n\")"
        );
    }
}
