//! What the end-to-end tests share: our SV2 mining device on a reference server fed by our TP, and
//! captures of real traffic decoded.
#![allow(dead_code)] // each test binary uses its own part

pub mod launched;
pub mod translator;

use std::time::Duration;

use sv2_conformance::monitor::check_transcript;
use sv2_interop::peers::PeerProcess;
use sv2_mock::miner::driver::{spawn, DeviceDriverConfig};
use sv2_mock::tp::driver::TpHandle;

/// Runs the device `config` describes until a share is accepted (60 s at most) and asserts: a share
/// accepted, no rule of the spec broken by the server (the conformance monitor over the device's
/// transcript), at least one block valid in our TP and every other block
/// stale only (a second block on one template loses the race to the first at regtest difficulty).
/// Returns (shares accepted, blocks at the TP, valid blocks).
pub async fn device_mines_and_blocks_validate(
    name: &str,
    mut config: DeviceDriverConfig,
    server: &PeerProcess,
    tp: &TpHandle,
) -> (u64, usize, usize) {
    // A low nominal hash rate: an easy channel target, reached quickly even by a debug build.
    config.device.nominal_hash_rate = 10_000.0;
    let device = spawn(config);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while device.stats.borrow().accepted < 1 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let report = device.stop().await;
    let judged = check_transcript(&report.transcript).server();
    let violations: Vec<String> = judged
        .findings
        .iter()
        .map(|f| format!("{} at entry {}: {}", f.rule, f.entry, f.detail))
        .collect();
    assert!(
        report.stats.accepted >= 1,
        "no share accepted: {:?}, outcome {:?}\n{}",
        report.stats,
        report.outcome,
        server.log_tail(40)
    );
    assert!(violations.is_empty(), "{name} broke rules: {violations:?}");
    let verdicts = tp.wait_for_verdicts(1, Duration::from_secs(20)).await;
    assert!(
        verdicts.iter().any(|v| v.valid) && verdicts.iter().all(|v| v.valid || v.is_stale_only()),
        "{verdicts:?}\nTP log:\n{}\n{name} log:\n{}",
        tp.log().join("\n"),
        server.log_tail(40)
    );
    let valid = verdicts.iter().filter(|v| v.valid).count();
    (report.stats.accepted, verdicts.len(), valid)
}

/// A capture read as `sv2-probe pcap` reads it, Noise decrypted with `keylogs`: every conversation.
pub fn decode_capture(
    file: &std::path::Path,
    keylogs: &[&std::path::Path],
) -> Vec<sv2_wire::capture::Conversation> {
    use sv2_wire::capture::{CaptureReader, Follower, Seen};

    let mut keys = Vec::new();
    for path in keylogs {
        let (entries, problems) = sv2_codec::noise::keylog::parse_lenient(
            &std::fs::read_to_string(path).unwrap_or_default(),
        );
        assert!(problems.is_empty(), "{}: {problems:?}", path.display());
        keys.extend(entries);
    }
    let reader = CaptureReader::new(std::fs::File::open(file).unwrap()).unwrap();
    let mut follower = Follower::new(keys);
    let mut ended = Vec::new();
    let end = follower
        .read_capture(reader, |seen| {
            if let Seen::Ended(conv) = seen {
                ended.push(conv);
            }
            Ok::<_, ()>(())
        })
        .unwrap();
    assert!(end.error.is_none(), "{}: {:?}", file.display(), end.error);
    ended.extend(follower.finish());
    ended
}

/// The busiest conversation of a capture with a server on `port` (connections refused while a test
/// waited for a listener are in captures too).
pub fn conversation_to(
    conversations: &[sv2_wire::capture::Conversation],
    port: u16,
) -> &sv2_wire::capture::Conversation {
    conversations
        .iter()
        .filter(|c| {
            c.transcript
                .endpoints
                .server
                .is_some_and(|a| a.port() == port)
        })
        .max_by_key(|c| c.transcript.len())
        .unwrap_or_else(|| panic!("no connection to port {port} in the capture"))
}

/// The SV2 message names of a decrypted conversation, in order; a frame that does not decode fails.
pub fn sv2_messages(conversation: &sv2_wire::capture::Conversation) -> Vec<&'static str> {
    assert_eq!(
        conversation.decryption,
        sv2_wire::capture::Decryption::Keys,
        "the key log decrypts {:?}",
        conversation.transcript.endpoints
    );
    conversation
        .transcript
        .entries()
        .iter()
        .filter_map(|e| match &e.event {
            sv2_wire::Event::Frame { decoded: Ok(d), .. } => Some(d.message.name()),
            sv2_wire::Event::Frame {
                decoded: Err(e), ..
            } => panic!("a captured frame does not decode: {e}"),
            _ => None,
        })
        .collect()
}

/// Every conversation of a capture in a few lines (endpoints, protocol, gaps, notes, the first
/// SV1 lines): what a failed capture assertion prints.
pub fn describe_conversations(conversations: &[sv2_wire::capture::Conversation]) -> String {
    let mut out = String::new();
    for c in conversations {
        out.push_str(&format!(
            "#{} {:?} -> {:?} {:?} syn={} closed={} gaps={:?} unread={:?} entries={}\n",
            c.id.0,
            c.transcript.endpoints.client,
            c.transcript.endpoints.server,
            c.protocol,
            c.saw_syn,
            c.closed,
            c.gaps,
            c.unread,
            c.transcript.len()
        ));
        for e in c.transcript.entries().iter().take(60) {
            match &e.event {
                sv2_wire::Event::Note { text } => out.push_str(&format!("    note: {text}\n")),
                sv2_wire::Event::Frame {
                    direction, decoded, ..
                } => out.push_str(&format!(
                    "    {direction:?} {}\n",
                    match decoded {
                        Ok(d) => d.message.name().to_string(),
                        Err(e) => format!("undecodable: {e}"),
                    }
                )),
                sv2_wire::Event::Sv1 {
                    direction, line, ..
                } => out.push_str(&format!(
                    "    {direction:?} {}\n",
                    String::from_utf8_lossy(&line[..line.len().min(100)])
                )),
                _ => {}
            }
        }
    }
    out
}

/// Asserts that each of `wanted` was read from `conversation` (`seen` tells), unless the capture is
/// incomplete by its own account: tcpdump counted packets the kernel dropped, or bytes of this
/// conversation are missing (the reader reports them as gaps, which is what it must do). Then what
/// could not be checked is said, not failed. A failure prints every conversation of the capture.
pub fn require_seen(
    captured: &sv2_interop::peers::Captured,
    conversations: &[sv2_wire::capture::Conversation],
    conversation: &sv2_wire::capture::Conversation,
    link: &str,
    wanted: &[&str],
    seen: impl Fn(&str) -> bool,
) {
    let missing: Vec<&str> = wanted.iter().copied().filter(|w| !seen(w)).collect();
    if missing.is_empty() {
        return;
    }
    let incomplete = captured.dropped.unwrap_or(0) > 0 || conversation.gaps.iter().any(|g| *g > 0);
    let description = describe_conversations(conversations);
    assert!(
        incomplete,
        "{link}: {missing:?} not read from the capture {} (tcpdump: {:?}):\n{description}",
        captured.file.display(),
        captured.statistics
    );
    eprintln!(
        "{link}: {missing:?} not checked: the capture {} is incomplete (tcpdump: {:?}; gaps {:?}):\n{description}",
        captured.file.display(),
        captured.statistics,
        conversation.gaps
    );
}

/// The repository's root.
pub fn repo() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Keeps a conformance run's reports in `target/conformance-reports/<name>/` of the repository
/// (text, JSON with every transcript, JUnit, and the verdicts in the expected-file format), prints
/// the text, and returns the folder.
pub fn keep_reports(name: &str, report: &sv2_conformance::Report) -> std::path::PathBuf {
    use sv2_conformance::{expected, report as render};
    let dir = repo().join("target/conformance-reports").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let text = render::text(report, true);
    std::fs::write(dir.join("report.txt"), &text).unwrap();
    std::fs::write(
        dir.join("report.json"),
        serde_json::to_string_pretty(&render::json(report)).unwrap(),
    )
    .unwrap();
    std::fs::write(dir.join("junit.xml"), render::junit(report)).unwrap();
    std::fs::write(dir.join("verdicts.txt"), expected::render(report)).unwrap();
    println!("{text}");
    dir
}
