//! `sv2-probe probe URL`: a one-shot report on a live SV2 pool.
//!
//! Steps, each timed and each with a verdict (pass, fail, skip): TCP connect; Noise handshake; the
//! certificate (signature against the URL's authority key, validity window); SetupConnection (versions,
//! flags); opening a channel (target and implied difficulty, extranonce); the first job and prev hash
//! (time to first job); the job's coinbase decoded (BIP34 height, pool tag, outputs and their scripts);
//! a share mined by the built-in engine at the channel's target, submitted, and the pool's answer.
//! Every failure says which step failed, why, and shows the bytes that came.

use std::io::{self, Write};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{json, Value};
use sv2_chain::display_hex;
use sv2_chain::script::read_bip34_height;
use sv2_chain::target::{difficulty, hashes_per_share};
use sv2_chain::tx::Transaction;
use sv2_codec::messages::common::{flags, protocol, SetupConnection};
use sv2_codec::messages::mining::{
    NewExtendedMiningJob, NewMiningJob, OpenExtendedMiningChannel, OpenStandardMiningChannel,
    SetNewPrevHash, SubmitSharesExtended, SubmitSharesStandard,
};
use sv2_codec::noise::keys::Sv2Url;
use sv2_codec::noise::InitiatorConfig;
use sv2_codec::types::{IntoStatic, Str0_255, B0_32, U256};
use sv2_codec::Message;
use sv2_conformance::monitor::check_transcript;
use sv2_engine::{Backend, CoinbaseParts, Job, MerkleSource, Miner, MinerConfig, Share, Target};
use sv2_wire::keylog::{FileSink, KeyLogSink};
use sv2_wire::{unix_now, Connection, KeyLog, NetError, Side, Transcript};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::Outcome;

pub const LONG_ABOUT: &str = "\
Probe a live SV2 pool and report, step by step: TCP connect, Noise handshake, certificate, \
SetupConnection, channel, first job, coinbase, and a share mined here and submitted.

URL: stratum2+tcp://host:port/<authority key>. Without a key the certificate cannot be checked: the \
handshake still runs and the report says so (a fail for the certificate step). A pool without Noise \
(plain frames, spec §4: local networks only) is probed with --plaintext and a URL without a key.

Every step has a deadline (--timeout; the share step --share-timeout). A failing step says what went \
wrong and shows the bytes the pool sent during that step (hex, and as text when they read as text).

Exit code: 0 when every step passed or was skipped, 1 when any step failed, 2 on a usage error.";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// stratum2+tcp://host:port/<authority key>
    #[arg(value_name = "URL")]
    pub url: String,
    /// Open a standard channel instead of an extended one.
    #[arg(long)]
    pub standard: bool,
    /// user_identity for the channel.
    #[arg(long, default_value = "sv2-probe")]
    pub user: String,
    /// Nominal hash rate announced for the channel, in H/s (the pool derives the target from it).
    #[arg(long, default_value_t = 1e6)]
    pub hashrate: f32,
    /// Seconds each protocol step may take.
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
    /// Seconds to mine and wait for the share round trip.
    #[arg(long, default_value_t = 60.0)]
    pub share_timeout: f64,
    /// Mining threads.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Do not mine or submit a share.
    #[arg(long)]
    pub no_share: bool,
    /// Speak plain frames, without Noise (the URL must carry no authority key).
    #[arg(long)]
    pub plaintext: bool,
    /// Append this session's traffic keys to FILE (key log format: codec/src/noise/keylog.rs), so that
    /// a capture of the session can be decrypted later.
    #[arg(long, value_name = "FILE")]
    pub keylog: Option<std::path::PathBuf>,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Pass,
    Fail,
    Skip,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Skip => "skip",
        }
    }
}

#[derive(Debug)]
struct Step {
    name: &'static str,
    status: Status,
    ms: f64,
    detail: String,
    data: Value,
}

#[derive(Debug, Default)]
pub struct Report {
    steps: Vec<Step>,
}

impl Report {
    fn add(
        &mut self,
        name: &'static str,
        status: Status,
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

    pub fn failed(&self) -> bool {
        self.steps.iter().any(|s| s.status == Status::Fail)
    }
}

pub fn run(args: &Args, out: &mut dyn Write, _err: &mut dyn Write) -> anyhow::Result<Outcome> {
    let url: Sv2Url = args.url.parse().context("URL")?;
    if args.plaintext && url.authority_key.is_some() {
        anyhow::bail!("--plaintext and an authority key in the URL exclude each other");
    }
    if args.plaintext && args.keylog.is_some() {
        anyhow::bail!("--keylog needs Noise: a plaintext session has no keys");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let report = runtime.block_on(probe(&url, args));
    print_report(&report, &url, args.json, out)?;
    Ok(if report.failed() {
        Outcome::Fail
    } else {
        Outcome::Pass
    })
}

/// The latest bytes received that are kept for error reports.
const WIRE_KEEP: usize = 64 * 1024;
/// Received bytes shown in a failing step's detail, half from the start of the step and half from
/// the end (its JSON data holds up to [`DATA_BYTES`] from the start).
const SHOWN_BYTES: usize = 64;
const DATA_BYTES: usize = 4096;

#[derive(Debug, Default)]
struct WireLog {
    /// The latest bytes received, at most [`WIRE_KEEP`].
    kept: Vec<u8>,
    /// Bytes received in all.
    total: u64,
}

/// Every byte the pool sent on the socket, as it came (ciphertext under Noise), so that a failing
/// step can show what arrived while it ran.
#[derive(Debug, Clone, Default)]
struct Wire(Arc<Mutex<WireLog>>);

impl Wire {
    /// The position in the received stream now.
    fn mark(&self) -> u64 {
        self.0.lock().map_or(0, |log| log.total)
    }

    /// How many bytes came since `mark`, and those of them still kept (the first ones when more
    /// came than are kept).
    fn since(&self, mark: u64) -> (u64, Vec<u8>) {
        let Ok(log) = self.0.lock() else {
            return (0, Vec::new());
        };
        let count = log.total.saturating_sub(mark);
        let kept = usize::try_from(count)
            .unwrap_or(usize::MAX)
            .min(log.kept.len());
        let start = log.kept.len() - kept;
        (count, log.kept[start..].to_vec())
    }

    fn record(&self, bytes: &[u8]) {
        if let Ok(mut log) = self.0.lock() {
            log.total += bytes.len() as u64;
            log.kept.extend_from_slice(bytes);
            if log.kept.len() > WIRE_KEEP {
                let cut = log.kept.len() - WIRE_KEEP;
                log.kept.drain(..cut);
            }
        }
    }
}

/// The TCP stream with every received byte copied to a [`Wire`].
struct Tapped {
    inner: TcpStream,
    wire: Wire,
}

impl AsyncRead for Tapped {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            this.wire.record(&buf.filled()[before..]);
        }
        polled
    }
}

impl AsyncWrite for Tapped {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// What `count` received bytes were, for a detail line: hex of the first ones, and the text when
/// they read as text (an HTTP server, a Stratum V1 pool, a banner).
fn received_text(count: u64, bytes: &[u8]) -> String {
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
fn failure(e: &NetError, wire: &Wire, mark: u64) -> (String, Value) {
    let (count, bytes) = wire.since(mark);
    let detail = format!("{}; {}", e.brief(), received_text(count, &bytes));
    let data = json!({
        "error": e.brief(),
        "received_len": count,
        "received_hex": hex::encode(&bytes[..bytes.len().min(DATA_BYTES)]),
    });
    (detail, data)
}

/// A hint for a handshake that failed on what came back (or did not).
fn handshake_hint(e: &NetError, wire: &Wire, mark: u64) -> Option<&'static str> {
    let (count, bytes) = wire.since(mark);
    if bytes.starts_with(b"{\"") && reads_as_text(&bytes) {
        Some("this looks like Stratum V1 (JSON), not SV2")
    } else if bytes.starts_with(b"HTTP/") && reads_as_text(&bytes) {
        Some("this is an HTTP server, not SV2")
    } else if count == 0 && matches!(e, NetError::Timeout { .. }) {
        Some("a pool without Noise waits silently for more of what it takes for a frame: try --plaintext")
    } else {
        None
    }
}

/// What the channel step learned.
struct Channel {
    id: u32,
    target: [u8; 32],
    extranonce_prefix: Vec<u8>,
    extranonce_size: usize,
}

/// A job of either kind, with its prev hash once known.
#[derive(Clone)]
enum AnyJob {
    Standard(NewMiningJob),
    Extended(NewExtendedMiningJob<'static>),
}

impl AnyJob {
    fn id(&self) -> u32 {
        match self {
            AnyJob::Standard(j) => j.job_id,
            AnyJob::Extended(j) => j.job_id,
        }
    }
}

/// Runs every step, then the conformance suite's passive monitor over the frames of the session: a
/// `monitor` step that fails when the pool broke a per-message rule of the spec (channel_msg bits,
/// request ids, targets against max_target, job ids, coinbase stripping, share acknowledgements...).
pub async fn probe(url: &Sv2Url, args: &Args) -> Report {
    let slot: TranscriptSlot = Arc::default();
    let mut report = steps(url, args, slot.clone()).await;
    let transcript = slot.lock().ok().and_then(|mut t| t.take());
    if let Some(transcript) = transcript {
        let t = Instant::now();
        // The pool's findings only (the probe's own steps send malformed frames on purpose).
        let monitor = check_transcript(&transcript).server();
        let judged: Vec<&str> = monitor.exercised.iter().copied().collect();
        let data = json!({"rules_judged": judged, "findings": monitor.findings});
        if monitor.findings.is_empty() {
            let detail = format!(
                "{} rules judged over {} frames, no violation",
                judged.len(),
                transcript.len()
            );
            report.add("monitor", Status::Pass, t, detail, data);
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
            report.add("monitor", Status::Fail, t, detail.join("; "), data);
        }
    }
    report
}

/// Where the session's transcript goes when its connection is dropped.
type TranscriptSlot = Arc<Mutex<Option<Transcript>>>;

/// The probe's connection: hands its transcript to the slot when dropped, whichever step ends the
/// probe.
struct Recorded {
    conn: Connection<Tapped>,
    slot: TranscriptSlot,
}

impl std::ops::Deref for Recorded {
    type Target = Connection<Tapped>;
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

async fn steps(url: &Sv2Url, args: &Args, slot: TranscriptSlot) -> Report {
    let mut report = Report::default();
    let step_timeout = Duration::from_secs_f64(args.timeout.max(0.1));

    // TCP.
    let t = Instant::now();
    let addr = url.host_port();
    let stream = match tokio::time::timeout(step_timeout, TcpStream::connect(&addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            report.add(
                "tcp",
                Status::Fail,
                t,
                format!("connect {addr}: {e}"),
                Value::Null,
            );
            return report;
        }
        Err(_) => {
            report.add(
                "tcp",
                Status::Fail,
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
        Status::Pass,
        t,
        format!("connected to {addr}"),
        json!({"address": addr}),
    );
    let wire = Wire::default();
    let stream = Tapped {
        inner: stream,
        wire: wire.clone(),
    };

    let mut conn = if args.plaintext {
        let t = Instant::now();
        report.add(
            "noise",
            Status::Skip,
            t,
            "--plaintext: no handshake, frames travel in the clear".into(),
            Value::Null,
        );
        report.add(
            "certificate",
            Status::Skip,
            t,
            "--plaintext: no certificate".into(),
            Value::Null,
        );
        Recorded {
            conn: Connection::plaintext(stream, Side::Client),
            slot,
        }
    } else {
        match handshake(stream, url, args, &wire, step_timeout, &mut report).await {
            Some(conn) => Recorded { conn, slot },
            None => return report,
        }
    };
    // SetupConnection.
    let t = Instant::now();
    let mark = wire.mark();
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
        let (detail, data) = failure(&e, &wire, mark);
        report.add("setup", Status::Fail, t, detail, data);
        return report;
    }
    match conn.recv("SetupConnection reply", step_timeout).await {
        Ok(d) => match d.message {
            Message::SetupConnectionSuccess(s) => report.add(
                "setup",
                Status::Pass,
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
                report.add("setup", Status::Fail, t, format!("SetupConnection.Error {:?}, flags {}", e.error_code.as_str().unwrap_or("<not UTF-8>"), flags::describe(e.flags, flags::MINING_SETUP)), json!({"flags": e.flags, "error_code": e.error_code.as_str().unwrap_or_default()}));
                return report;
            }
            other => {
                report.add("setup", Status::Fail, t, format!("expected SetupConnection.Success or .Error, got {}", other.name()), Value::Null);
                return report;
            }
        },
        Err(e) => {
            let (detail, data) = failure(&e, &wire, mark);
            report.add("setup", Status::Fail, t, detail, data);
            return report;
        }
    }

    // Channel.
    let t = Instant::now();
    let mark = wire.mark();
    let open: Message<'static> = if args.standard {
        OpenStandardMiningChannel {
            request_id: 1,
            user_identity: Str0_255::new(args.user.as_bytes().to_vec())
                .unwrap_or_else(|_| Str0_255::new(Vec::new()).expect("empty")),
            nominal_hash_rate: args.hashrate,
            max_target: U256([0xff; 32]),
        }
        .into()
    } else {
        OpenExtendedMiningChannel {
            request_id: 1,
            user_identity: Str0_255::new(args.user.as_bytes().to_vec())
                .unwrap_or_else(|_| Str0_255::new(Vec::new()).expect("empty")),
            nominal_hash_rate: args.hashrate,
            max_target: U256([0xff; 32]),
            min_extranonce_size: 4,
        }
        .into()
    };
    if let Err(e) = conn.send(&open).await {
        let (detail, data) = failure(&e, &wire, mark);
        report.add("channel", Status::Fail, t, detail, data);
        return report;
    }
    let mut jobs: Vec<AnyJob> = Vec::new();
    let mut prev: Option<SetNewPrevHash> = None;
    let mut channel = loop {
        match conn.recv("channel reply", step_timeout).await {
            Ok(d) => match d.message {
                Message::OpenStandardMiningChannelSuccess(s) => {
                    break Channel {
                        id: s.channel_id,
                        target: s.target.0,
                        extranonce_prefix: s.extranonce_prefix.as_bytes().to_vec(),
                        extranonce_size: 0,
                    }
                }
                Message::OpenExtendedMiningChannelSuccess(s) => {
                    break Channel {
                        id: s.channel_id,
                        target: s.target.0,
                        extranonce_prefix: s.extranonce_prefix.as_bytes().to_vec(),
                        extranonce_size: usize::from(s.extranonce_size),
                    }
                }
                Message::OpenMiningChannelError(e) => {
                    report.add(
                        "channel",
                        Status::Fail,
                        t,
                        format!(
                            "OpenMiningChannel.Error {:?}",
                            e.error_code.as_str().unwrap_or("<not UTF-8>")
                        ),
                        Value::Null,
                    );
                    return report;
                }
                Message::NewMiningJob(j) => jobs.push(AnyJob::Standard(j)),
                Message::NewExtendedMiningJob(j) => jobs.push(AnyJob::Extended(j.into_static())),
                Message::SetNewPrevHash(p) => prev = Some(p),
                _ => {}
            },
            Err(e) => {
                let (detail, data) = failure(&e, &wire, mark);
                report.add("channel", Status::Fail, t, detail, data);
                return report;
            }
        }
    };
    let diff = difficulty(&channel.target);
    report.add(
        "channel",
        Status::Pass,
        t,
        format!(
            "{} channel {}: target {}, difficulty {:.6}, extranonce_prefix {} ({} B), extranonce_size {}",
            if args.standard { "standard" } else { "extended" },
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
    let mark = wire.mark();
    let setup_done = t;
    let (job, prev) = loop {
        if let Some(p) = &prev {
            if let Some(job) = jobs.iter().rev().find(|j| j.id() == p.job_id).cloned() {
                break (job, p.clone());
            }
        }
        match conn.recv("first job", step_timeout).await {
            Ok(d) => match d.message {
                Message::NewMiningJob(j) => jobs.push(AnyJob::Standard(j)),
                Message::NewExtendedMiningJob(j) => jobs.push(AnyJob::Extended(j.into_static())),
                Message::SetNewPrevHash(p) => prev = Some(p),
                Message::SetTarget(s) if s.channel_id == channel.id => {
                    channel.target = s.maximum_target.0;
                }
                Message::CloseChannel(c) if c.channel_id == channel.id => {
                    let detail = format!(
                        "the pool closed the channel before a job: CloseChannel reason_code {:?}",
                        lossy(c.reason_code.as_bytes())
                    );
                    report.add(
                        "first job",
                        Status::Fail,
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
                        Status::Fail,
                        t_job,
                        detail,
                        json!({"reconnect": to}),
                    );
                    return report;
                }
                _ => {}
            },
            Err(e) => {
                let (mut detail, mut data) = failure(&e, &wire, mark);
                detail.push_str(&format!(
                    "; {} job(s) and {} prev hash before that",
                    jobs.len(),
                    if prev.is_some() { "a" } else { "no" }
                ));
                data["jobs"] = json!(jobs.len());
                data["prev_hash"] = json!(prev.is_some());
                report.add("first job", Status::Fail, t_job, detail, data);
                return report;
            }
        }
    };
    report.add(
        "first job",
        Status::Pass,
        t_job,
        format!(
            "job {} with prev hash {} after {:.1} ms from the channel request; nbits {:#010x}, min_ntime {}",
            job.id(),
            display_hex(&prev.prev_hash.0),
            setup_done.elapsed().as_secs_f64() * 1000.0,
            prev.nbits,
            prev.min_ntime
        ),
        json!({"job_id": job.id(), "prev_hash": hex::encode(prev.prev_hash.0), "nbits": prev.nbits, "min_ntime": prev.min_ntime}),
    );

    // Coinbase.
    let t = Instant::now();
    match &job {
        AnyJob::Standard(_) => report.add(
            "coinbase",
            Status::Skip,
            t,
            "standard jobs carry only the merkle root".into(),
            Value::Null,
        ),
        AnyJob::Extended(j) => {
            let mut coinbase = j.coinbase_tx_prefix.as_bytes().to_vec();
            coinbase.extend_from_slice(&channel.extranonce_prefix);
            coinbase.extend(std::iter::repeat_n(0u8, channel.extranonce_size));
            coinbase.extend_from_slice(j.coinbase_tx_suffix.as_bytes());
            match Transaction::parse(&coinbase) {
                Ok(tx) => {
                    let (status, detail, data) = describe_coinbase(&tx);
                    report.add("coinbase", status, t, detail, data);
                }
                Err(e) => report.add(
                    "coinbase",
                    Status::Fail,
                    t,
                    format!("prefix || extranonce || suffix does not parse as a transaction stripped of BIP141 data (§5.3.16): {e}; bytes {}", hex::encode(&coinbase)),
                    Value::Null,
                ),
            }
        }
    }

    // Share.
    if args.no_share {
        report.add(
            "share",
            Status::Skip,
            Instant::now(),
            "--no-share".into(),
            Value::Null,
        );
        return report;
    }
    share_round_trip(&mut conn, &wire, &mut report, channel, job, prev, args).await;
    report
}

/// The Noise handshake and the certificate check (steps `noise` and `certificate`); `None` when the
/// handshake failed.
async fn handshake(
    stream: Tapped,
    url: &Sv2Url,
    args: &Args,
    wire: &Wire,
    step_timeout: Duration,
    report: &mut Report,
) -> Option<Connection<Tapped>> {
    // Without an authority key the certificate is reported but cannot be checked.
    let t = Instant::now();
    let mark = wire.mark();
    let config = match url.authority_key {
        Some(key) => InitiatorConfig::new(key),
        None => InitiatorConfig::unauthenticated(),
    };
    // SV2KEYLOGFILE, as for every command; --keylog is written below, where a failure fails the step.
    let env_key_log = KeyLog::from_env();
    let conn = match Connection::initiate_now(stream, config, step_timeout, &env_key_log).await {
        Ok(conn) => conn,
        Err(e) => {
            let (mut detail, data) = failure(&e, wire, mark);
            if let Some(hint) = handshake_hint(&e, wire, mark) {
                detail.push_str(&format!(" ({hint})"));
            }
            report.add("noise", Status::Fail, t, detail, data);
            return None;
        }
    };
    let info = conn.handshake.clone()?;
    if let Some(path) = &args.keylog {
        // Skipped when SV2KEYLOGFILE names the same file: the connection has written it there.
        let written = if env_key_log.writes_to(path) {
            Ok(())
        } else {
            FileSink(path.clone()).write(&info.established.key_log_entry())
        };
        if let Err(e) = written {
            report.add("noise", Status::Fail, t, e, Value::Null);
            return None;
        }
    }
    report.add(
        "noise",
        Status::Pass,
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
    if info.established.authenticated {
        report.add(
            "certificate",
            Status::Pass,
            t,
            format!(
                "signed by the URL's authority key; valid {} .. {} (now {now}, {} s left)",
                cert.valid_from,
                cert.not_valid_after,
                i64::from(cert.not_valid_after) - i64::from(now)
            ),
            cert_data,
        );
    } else {
        report.add(
            "certificate",
            Status::Fail,
            t,
            "not checked: the URL carries no authority key".into(),
            cert_data,
        );
    }

    Some(conn)
}

fn script_kind(script: &[u8]) -> &'static str {
    match script {
        [0x76, 0xa9, 0x14, .., 0x88, 0xac] if script.len() == 25 => "p2pkh",
        [0xa9, 0x14, .., 0x87] if script.len() == 23 => "p2sh",
        [0x00, 0x14, ..] if script.len() == 22 => "p2wpkh",
        [0x00, 0x20, ..] if script.len() == 34 => "p2wsh",
        [0x51, 0x20, ..] if script.len() == 34 => "p2tr",
        [0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed, ..] => "witness commitment",
        [0x6a, ..] => "op_return",
        _ => "other",
    }
}

/// Printable ASCII runs of at least 4 characters (pool tags live in the scriptSig this way).
fn ascii_runs(bytes: &[u8]) -> Vec<String> {
    bytes
        .split(|b| !(0x20..0x7f).contains(b))
        .map(|run| String::from_utf8_lossy(run).trim().to_owned())
        .filter(|run| run.len() >= 4)
        .collect()
}

fn describe_coinbase(tx: &Transaction) -> (Status, String, Value) {
    let script_sig = tx
        .inputs
        .first()
        .map(|i| i.script_sig.as_slice())
        .unwrap_or(&[]);
    let height = read_bip34_height(script_sig).map(|(h, _)| h);
    let tags = ascii_runs(script_sig);
    let outputs: Vec<Value> = tx
        .outputs
        .iter()
        .map(|o| json!({"value_sat": o.value, "kind": script_kind(&o.script_pubkey), "script": hex::encode(&o.script_pubkey)}))
        .collect();
    let total: u64 = tx.outputs.iter().map(|o| o.value).sum();
    let mut detail = format!(
        "{} height {}, {} output(s) paying {} sat",
        if tx.is_coinbase() {
            "coinbase"
        } else {
            "NOT a coinbase"
        },
        height.map_or("missing (no BIP34 push)".into(), |h| h.to_string()),
        tx.outputs.len(),
        total
    );
    for o in &tx.outputs {
        detail.push_str(&format!(
            "\n    {} sat  {}  {}",
            o.value,
            script_kind(&o.script_pubkey),
            hex::encode(&o.script_pubkey)
        ));
    }
    if !tags.is_empty() {
        detail.push_str(&format!("\n    tag: {}", tags.join(" | ")));
    }
    let status = if tx.is_coinbase() && height.is_some() {
        Status::Pass
    } else {
        Status::Fail
    };
    (
        status,
        detail,
        json!({"height": height, "script_sig": hex::encode(script_sig), "tags": tags, "outputs": outputs, "version": tx.version, "lock_time": tx.lock_time}),
    )
}

fn engine_job(channel: &Channel, job: &AnyJob, prev: &SetNewPrevHash) -> Job {
    let (version, merkle, min_ntime, rolling) = match job {
        AnyJob::Standard(j) => (
            j.version,
            MerkleSource::Root(j.merkle_root.0),
            j.min_ntime,
            true,
        ),
        AnyJob::Extended(j) => (
            j.version,
            MerkleSource::Coinbase(CoinbaseParts {
                prefix: j.coinbase_tx_prefix.as_bytes().to_vec(),
                extranonce_prefix: channel.extranonce_prefix.clone(),
                extranonce_len: channel.extranonce_size,
                extranonce_start: 0,
                suffix: j.coinbase_tx_suffix.as_bytes().to_vec(),
                merkle_path: j.merkle_path.iter().map(|h| h.0).collect(),
            }),
            j.min_ntime,
            j.version_rolling_allowed,
        ),
    };
    let mut engine_job = Job::new(
        u64::from(job.id()),
        version,
        prev.prev_hash.0,
        merkle,
        prev.min_ntime.max(min_ntime.unwrap_or(0)),
        prev.nbits,
        Target(channel.target),
    );
    if !rolling {
        engine_job.version_mask = 0;
    }
    engine_job
}

async fn share_round_trip(
    conn: &mut Connection<Tapped>,
    wire: &Wire,
    report: &mut Report,
    mut channel: Channel,
    mut job: AnyJob,
    mut prev: SetNewPrevHash,
    args: &Args,
) {
    let t = Instant::now();
    let mark = wire.mark();
    let deadline = t + Duration::from_secs_f64(args.share_timeout.max(0.1));
    let config = MinerConfig {
        threads: args.threads.max(1),
        backend: Backend::detect(),
        ..MinerConfig::default()
    };
    let (miner, shares) = match Miner::start(config) {
        Ok(m) => m,
        Err(e) => {
            report.add(
                "share",
                Status::Fail,
                t,
                format!("engine: {e}"),
                Value::Null,
            );
            return;
        }
    };
    // Found shares cross from the engine's threads to this task.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Share>();
    std::thread::spawn(move || {
        while let Ok(share) = shares.recv() {
            if tx.send(share).is_err() {
                break;
            }
        }
    });
    if let Err(e) = miner.replace_job(engine_job(&channel, &job, &prev)) {
        report.add(
            "share",
            Status::Fail,
            t,
            format!("job cannot be mined: {e}"),
            Value::Null,
        );
        return;
    }
    let expected = hashes_per_share(&channel.target);
    let mut jobs: Vec<AnyJob> = vec![job.clone()];
    let mut sequence = 0u32;
    let (mut stale, mut switched_jobs) = (0u32, false);
    let mut submitted: Vec<Value> = Vec::new();
    let mut last_sent: Option<Instant> = None;
    let outcome: Result<(Status, String), NetError> = loop {
        let now = Instant::now();
        if now >= deadline {
            break Ok((
                if sequence == 0 {
                    Status::Skip
                } else {
                    Status::Fail
                },
                if sequence == 0 {
                    format!("no share found in {:.0} s (about {expected:.3e} hashes per share at this target)", args.share_timeout)
                } else {
                    format!("{sequence} share(s) submitted, no SubmitShares.Success or .Error within {:.0} s", args.share_timeout)
                },
            ));
        }
        tokio::select! {
            share = rx.recv() => {
                let Some(share) = share else {
                    break Ok((Status::Fail, "the mining engine stopped".into()));
                };
                if share.job_id != u64::from(job.id()) {
                    continue;
                }
                sequence += 1;
                let message: Message<'static> = match &job {
                    AnyJob::Standard(j) => SubmitSharesStandard {
                        channel_id: channel.id, sequence_number: sequence, job_id: j.job_id,
                        nonce: share.nonce, ntime: share.ntime, version: share.version,
                    }.into(),
                    AnyJob::Extended(j) => SubmitSharesExtended {
                        channel_id: channel.id, sequence_number: sequence, job_id: j.job_id,
                        nonce: share.nonce, ntime: share.ntime, version: share.version,
                        extranonce: B0_32::new(share.extranonce.as_slice().to_vec()).expect("at most 32 bytes"),
                    }.into(),
                };
                submitted.push(json!({"sequence_number": sequence, "job_id": job.id(), "nonce": share.nonce, "ntime": share.ntime, "version": share.version, "extranonce": hex::encode(share.extranonce.as_slice()), "hash": display_hex(&share.hash)}));
                if let Err(e) = conn.send(&message).await {
                    break Err(e);
                }
                last_sent = Some(Instant::now());
            }
            received = conn.recv("share answer", deadline.saturating_duration_since(now)) => match received {
                Ok(d) => match d.message {
                    Message::SubmitSharesSuccess(s) => break Ok((Status::Pass, format!(
                        "accepted: SubmitShares.Success last_sequence_number {}, new_submits_accepted_count {}, new_shares_sum {} ({} submitted in {:.1} s; answered {} after the last)",
                        s.last_sequence_number, s.new_submits_accepted_count, s.new_shares_sum, sequence, t.elapsed().as_secs_f64(), round_trip(last_sent)))),
                    // A share sent just before the pool moved to a new block is stale through no
                    // fault of either side (at regtest difficulty every share is a block): noted, and
                    // the probe waits for an answer to a current share.
                    Message::SubmitSharesError(e) if e.error_code.as_bytes() == b"stale-share" && switched_jobs => {
                        stale += 1;
                    }
                    Message::SubmitSharesError(e) => break Ok((Status::Fail, format!(
                        "rejected: SubmitShares.Error {:?} for sequence_number {} ({} submitted; answered {} after the last)",
                        e.error_code.as_str().unwrap_or("<not UTF-8>"), e.sequence_number, sequence, round_trip(last_sent)))),
                    Message::NewMiningJob(j) => jobs.push(AnyJob::Standard(j)),
                    Message::NewExtendedMiningJob(j) => jobs.push(AnyJob::Extended(j.into_static())),
                    Message::SetNewPrevHash(p) => {
                        if let Some(next) = jobs.iter().rev().find(|j| j.id() == p.job_id).cloned() {
                            prev = p;
                            job = next;
                            switched_jobs = true;
                            let _ = miner.replace_job(engine_job(&channel, &job, &prev));
                        }
                    }
                    // The target for shares from now on (§5.3.18): mine at it.
                    Message::SetTarget(s) if s.channel_id == channel.id => {
                        channel.target = s.maximum_target.0;
                        let _ = miner.replace_job(engine_job(&channel, &job, &prev));
                    }
                    Message::CloseChannel(c) if c.channel_id == channel.id => break Ok((Status::Fail, format!(
                        "the pool closed the channel: CloseChannel reason_code {:?} ({sequence} share(s) submitted before that)",
                        lossy(c.reason_code.as_bytes())))),
                    Message::Reconnect(r) => break Ok((Status::Fail, format!(
                        "the pool asked to reconnect: Reconnect to {} (not followed; {sequence} share(s) submitted before that)",
                        reconnect_target(r.new_host.as_bytes(), r.new_port)))),
                    _ => {}
                },
                Err(NetError::Timeout { .. }) => continue,
                Err(e) => break Err(e),
            },
        }
    };
    miner.clear_job();
    let mut data = json!({
        "submitted": submitted,
        "stale": stale,
        "expected_hashes_per_share": expected,
        "round_trip_ms": last_sent.map(|s| s.elapsed().as_secs_f64() * 1000.0),
    });
    match outcome {
        Ok((status, detail)) => report.add("share", status, t, detail, data),
        Err(e) => {
            let (mut detail, failed) = failure(&e, wire, mark);
            detail.push_str(&format!("; {sequence} share(s) submitted before that"));
            if let (Value::Object(data), Value::Object(failed)) = (&mut data, failed) {
                data.extend(failed);
            }
            report.add("share", Status::Fail, t, detail, data);
        }
    }
}

/// Text a peer sent, for a detail line (invalid UTF-8 shown lossily).
fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Where a Reconnect points: an empty host and port 0 mean the current ones (§3.6.5).
fn reconnect_target(host: &[u8], port: u16) -> String {
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
fn round_trip(last_sent: Option<Instant>) -> String {
    last_sent.map_or("(nothing sent)".into(), |s| {
        format!("{:.1} ms", s.elapsed().as_secs_f64() * 1000.0)
    })
}

/// The report as one JSON document.
pub fn report_json(report: &Report, url: &Sv2Url) -> Value {
    let count = |status| report.steps.iter().filter(|s| s.status == status).count();
    let (passed, failed, skipped) = (
        count(Status::Pass),
        count(Status::Fail),
        count(Status::Skip),
    );
    let steps: Vec<Value> = report
        .steps
        .iter()
        .map(|s| json!({"step": s.name, "status": s.status.as_str(), "ms": s.ms, "detail": s.detail, "data": s.data}))
        .collect();
    json!({"url": url.to_string(), "steps": steps, "passed": passed, "failed": failed, "skipped": skipped, "ok": failed == 0})
}

pub fn print_report(
    report: &Report,
    url: &Sv2Url,
    json_out: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    if json_out {
        writeln!(out, "{}", report_json(report, url))?;
        return Ok(());
    }
    let count = |status| report.steps.iter().filter(|s| s.status == status).count();
    writeln!(out, "probe {url}")?;
    for s in &report.steps {
        let mut lines = s.detail.lines();
        writeln!(
            out,
            "  {:<5} {:<12} {:>9.1} ms  {}",
            s.status.as_str().to_uppercase(),
            s.name,
            s.ms,
            lines.next().unwrap_or("")
        )?;
        for line in lines {
            writeln!(
                out,
                "  {:<5} {:<12} {:>12}  {}",
                "",
                "",
                "",
                line.trim_start()
            )?;
        }
    }
    writeln!(
        out,
        "{} passed, {} failed, {} skipped",
        count(Status::Pass),
        count(Status::Fail),
        count(Status::Skip)
    )?;
    Ok(())
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

    #[test]
    fn the_wire_keeps_the_latest_bytes_and_counts_all() {
        let wire = Wire::default();
        wire.record(&[1, 2, 3]);
        let mark = wire.mark();
        assert_eq!(wire.since(mark), (0, vec![]));
        wire.record(&[4, 5]);
        assert_eq!(wire.since(mark), (2, vec![4, 5]));
        wire.record(&vec![9; WIRE_KEEP]);
        let (count, kept) = wire.since(mark);
        assert_eq!(count, 2 + WIRE_KEEP as u64);
        assert_eq!(kept.len(), WIRE_KEEP);
    }

    #[test]
    fn pool_tags_are_trimmed_ascii_runs() {
        assert_eq!(
            ascii_runs(b"\x03\xc8\x00\x00 /pool/ \x00abc\x01Sv2/tag//"),
            vec!["/pool/".to_owned(), "Sv2/tag//".to_owned()]
        );
    }
}
