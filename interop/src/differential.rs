//! The check of the `differential` fuzz target: our strict decode against the reference
//! implementation's (SRI: parsers_sv2 / binary_sv2 at the versions pinned in the root Cargo.toml),
//! through `sv2_interop`'s `sri_decode` and `from_sri`.
//!
//! One implementation for two drivers: `fuzz/fuzz_targets/differential.rs` calls [`differential`],
//! and `interop/tests/fuzz_regressions.rs` replays `fuzz/regressions/differential/*` and
//! `fuzz/findings/sri/*` through it on stable.
//!
//! Input: one frame, its msg_length rewritten to the payload's length (`checks::normalized_frame`,
//! duplicated here as [`frame_of`] so that this file stands alone).
//!
//! What fails the check (a crash): a panic in our codec or in the conversion of SRI's value to ours,
//! and a disagreement nobody reviewed ([`unexplained`]: anything but an agreement, a class listed in
//! [`REVIEWED`] from interop/DIFFERENCES.md, both refusing for different reasons, or a problem of
//! SRI's own). Every outcome is counted, by [`Class`]. A panic inside SRI is caught (`catch_unwind`,
//! with a panic hook that stays silent for SRI's panics so that libFuzzer's abort-on-panic hook does
//! not fire), counted as `sri_panic`, and its input saved.
//!
//! Counting: set `SV2_DIFF_STATS=<dir>`; each process rewrites `<dir>/diff-<pid>.tsv` (`class TAB
//! count` lines) every few seconds and every 4096 inputs. Set `SV2_DIFF_FINDINGS=<dir>` to keep the
//! first inputs of every class that is not an agreement (`<class>-<hash>.bin`, at most 8 per class;
//! up to 64 SRI panics).

use std::cell::Cell;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::{Mutex, Once};
use std::time::Instant;

use crate::{
    class_ours, class_sri, from_sri, same_message, sri_decode, sri_decode_owned, sri_decode_stream,
    sri_decode_with_tlvs, sri_encode_any, sri_encode_owned, sri_size, ErrorClass, SriError,
};
use sv2_codec::frame::{Frame, HEADER_LEN, MAX_PAYLOAD_LEN};
use sv2_codec::messages::{decode_frame, to_frame_bytes, Message};

/// The outcome of one input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    /// Both accept and the values are equal; SRI read the whole payload.
    BothAcceptEqual,
    /// Both accept, values equal; ours decoded TLVs after the last field, SRI left them unread
    /// (DIFFERENCES.md row 1/3: SRI ignores what follows the last field).
    BothAcceptEqualSriIgnoresTlvs,
    /// Both accept, values equal, no TLVs, but SRI says it read another number of bytes.
    BothAcceptSizeDiffers,
    /// Both accept, the values differ. A real disagreement.
    BothAcceptValueDiffers,
    /// Both accept, equal values, but SRI re-encodes them to other bytes than ours.
    BothAcceptReencodeDiffers,
    /// We refuse (with our error class), SRI accepts.
    OursRejectsSriAccepts(ErrorClass),
    /// SRI refuses (with its error class), we accept. `raw` when ours kept an unknown extension's
    /// frame whole (DIFFERENCES.md row 6).
    SriRejectsOursAccepts { sri: ErrorClass, raw: bool },
    /// Both refuse, for the same class of reason.
    BothRejectSame(ErrorClass),
    /// Both refuse, for different classes of reason.
    BothRejectDifferent { ours: ErrorClass, sri: ErrorClass },
    /// SRI panicked (caught). A finding about SRI.
    SriPanic,
    /// One of SRI's other entry points on the same bytes (`decoder`: `codec_sv2::Decoder`; `tlvs`:
    /// `parse_message_frame_with_tlvs` with extension 0x0002 negotiated; `owned`: `into_owned` and
    /// re-encode) disagrees with `AnyMessage::try_from`. Counted besides the main class.
    SriPathsDisagree(&'static str),
}

impl Class {
    /// A stable name, used in the stats files and the findings' file names.
    pub fn name(&self) -> String {
        match self {
            Class::BothAcceptEqual => "both_accept_equal".into(),
            Class::BothAcceptEqualSriIgnoresTlvs => "both_accept_equal_sri_ignores_tlvs".into(),
            Class::BothAcceptSizeDiffers => "both_accept_size_differs".into(),
            Class::BothAcceptValueDiffers => "both_accept_value_differs".into(),
            Class::BothAcceptReencodeDiffers => "both_accept_reencode_differs".into(),
            Class::OursRejectsSriAccepts(c) => format!("ours_rejects_sri_accepts.{c:?}"),
            Class::SriRejectsOursAccepts { sri, raw } => format!(
                "sri_rejects_ours_accepts.{sri:?}{}",
                if *raw { ".raw" } else { "" }
            ),
            Class::BothRejectSame(c) => format!("both_reject_same.{c:?}"),
            Class::BothRejectDifferent { ours, sri } => {
                format!("both_reject_different.{ours:?}_vs_{sri:?}")
            }
            Class::SriPanic => "sri_panic".into(),
            Class::SriPathsDisagree(path) => format!("sri_paths_disagree.{path}"),
        }
    }

    /// Agreements (nothing to look at).
    pub fn is_agreement(&self) -> bool {
        matches!(self, Class::BothAcceptEqual | Class::BothRejectSame(_))
    }
}

thread_local! {
    /// Set while SRI code runs: its panics are caught and must not reach libFuzzer's hook.
    static IN_SRI: Cell<bool> = const { Cell::new(false) };
}

/// Wraps the current panic hook (libFuzzer's aborts) so that panics while [`IN_SRI`] is set unwind
/// quietly to the `catch_unwind` around the SRI call.
fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_SRI.with(Cell::get) {
                if std::env::var_os("SV2_DIFF_VERBOSE").is_some() {
                    eprintln!("differential: SRI panicked (caught): {info}");
                }
                return;
            }
            previous(info)
        }));
    });
}

/// Runs SRI code with panics caught: `Err(SriError::Panic)` on a panic.
fn in_sri<T>(f: impl FnOnce() -> Result<T, SriError>) -> Result<T, SriError> {
    install_panic_hook();
    IN_SRI.with(|c| c.set(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    IN_SRI.with(|c| c.set(false));
    match result {
        Ok(r) => r,
        Err(payload) => Err(SriError::Panic(
            payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".into()),
        )),
    }
}

/// The input as one frame (msg_length rewritten to the payload's length); `None` below six bytes.
pub fn frame_of(data: &[u8]) -> Option<Vec<u8>> {
    let payload_len = data.len().checked_sub(HEADER_LEN)?;
    if payload_len > MAX_PAYLOAD_LEN {
        return None;
    }
    let mut frame = data.to_vec();
    frame[3..6].copy_from_slice(&(payload_len as u32).to_le_bytes()[..3]);
    Some(frame)
}

/// Classifies one input, without recording it: the main class first, then any disagreement between
/// SRI's own entry points ([`Class::SriPathsDisagree`], or [`Class::SriPanic`] for a panic in one of
/// them). `None` for inputs that are not a frame.
pub fn classify(data: &[u8]) -> Option<Vec<Class>> {
    let frame = frame_of(data)?;
    let mut classes = vec![main_class(&frame)];
    for path in sri_paths(&frame) {
        if !classes.contains(&path) {
            classes.push(path);
        }
    }
    Some(classes)
}

/// SRI's other entry points against `AnyMessage::try_from`.
fn sri_paths(frame: &[u8]) -> Vec<Class> {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    let reference = match in_sri(|| sri_decode(frame, &mut buf)) {
        Ok(any) => Some(from_sri(&any)),
        Err(SriError::Panic(_)) => return out,
        Err(_) => None,
    };
    let same = |got: Option<&Message<'_>>| match (got, &reference) {
        (Some(a), Some(b)) => same_message(a, b),
        (None, None) => true,
        _ => false,
    };

    let mut buf = Vec::new();
    match in_sri(|| sri_decode_stream(frame, &mut buf)) {
        Err(SriError::Panic(_)) => out.push(Class::SriPanic),
        Ok((any, used)) => {
            if used != frame.len() || !same(Some(&from_sri(&any))) {
                out.push(Class::SriPathsDisagree("decoder"));
            }
        }
        Err(_) => {
            if !same(None) {
                out.push(Class::SriPathsDisagree("decoder"));
            }
        }
    }

    let mut buf = Vec::new();
    match in_sri(|| sri_decode_with_tlvs(frame, &mut buf, &[0x0002])) {
        Err(SriError::Panic(_)) => out.push(Class::SriPanic),
        Ok((any, _tlvs)) => {
            if !same(Some(&from_sri(&any))) {
                out.push(Class::SriPathsDisagree("tlvs"));
            }
        }
        Err(_) => {
            if !same(None) {
                out.push(Class::SriPathsDisagree("tlvs"));
            }
        }
    }

    if reference.is_some() {
        let mut buf = Vec::new();
        let borrowed = in_sri(|| sri_decode(frame, &mut buf).and_then(sri_encode_any));
        let owned = in_sri(|| sri_decode_owned(frame).and_then(sri_encode_owned));
        match (borrowed, owned) {
            (Err(SriError::Panic(_)), _) | (_, Err(SriError::Panic(_))) => {
                out.push(Class::SriPanic)
            }
            (Ok(a), Ok(b)) if a == b => {}
            _ => out.push(Class::SriPathsDisagree("owned")),
        }
    }
    out
}

/// The main class: our decode against `AnyMessage::try_from`.
fn main_class(frame: &[u8]) -> Class {
    let (parsed, _) = Frame::parse(frame).expect("a normalized frame parses");
    let ours = decode_frame(&parsed);

    let mut buf = Vec::new();
    let theirs = in_sri(|| sri_decode(frame, &mut buf));

    match (ours, theirs) {
        (_, Err(SriError::Panic(_))) => Class::SriPanic,
        (Ok(ours), Ok(any)) => {
            let sri_read = in_sri(|| Ok(sri_size(&any)));
            let value = from_sri(&any);
            if !same_message(&ours.message, &value) {
                Class::BothAcceptValueDiffers
            } else {
                let ours_bytes = to_frame_bytes(&ours.message, &[]).expect("re-encodes");
                match (sri_read, in_sri(|| sri_encode_any(any))) {
                    (Err(SriError::Panic(_)), _) | (_, Err(SriError::Panic(_))) => Class::SriPanic,
                    (_, Ok(theirs_bytes)) if theirs_bytes != ours_bytes => {
                        Class::BothAcceptReencodeDiffers
                    }
                    (_, Err(_)) => Class::BothAcceptReencodeDiffers,
                    (Ok(read), _) if read != parsed.payload.len() && !ours.tlvs.is_empty() => {
                        Class::BothAcceptEqualSriIgnoresTlvs
                    }
                    (Ok(read), _) if read != parsed.payload.len() => Class::BothAcceptSizeDiffers,
                    _ => Class::BothAcceptEqual,
                }
            }
        }
        (Err(e), Ok(_)) => Class::OursRejectsSriAccepts(class_ours(&e.kind)),
        (Ok(ours), Err(e)) => Class::SriRejectsOursAccepts {
            sri: class_sri(&e),
            raw: matches!(ours.message, Message::Raw(_)),
        },
        (Err(ours), Err(theirs)) => {
            let (ours, sri) = (class_ours(&ours.kind), class_sri(&theirs));
            if ours == sri {
                Class::BothRejectSame(ours)
            } else {
                Class::BothRejectDifferent { ours, sri }
            }
        }
    }
}

/// Counts per class in this process, and where they are written.
struct Stats {
    counts: BTreeMap<String, u64>,
    saved: BTreeMap<String, usize>,
    inputs: u64,
    last_write: Instant,
    stats_file: Option<PathBuf>,
    findings_dir: Option<PathBuf>,
}

static STATS: Mutex<Option<Stats>> = Mutex::new(None);

/// Saved inputs per class in the findings directory (SRI panics: up to 64).
const SAVE_PER_CLASS: usize = 8;

fn fnv64(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn record(class: &Class, data: &[u8]) {
    let mut guard = STATS.lock().unwrap_or_else(|e| e.into_inner());
    let stats = guard.get_or_insert_with(|| Stats {
        counts: BTreeMap::new(),
        saved: BTreeMap::new(),
        inputs: 0,
        last_write: Instant::now(),
        stats_file: std::env::var_os("SV2_DIFF_STATS").map(|dir| {
            let dir = PathBuf::from(dir);
            let _ = std::fs::create_dir_all(&dir);
            dir.join(format!("diff-{}.tsv", std::process::id()))
        }),
        findings_dir: std::env::var_os("SV2_DIFF_FINDINGS").map(PathBuf::from),
    });
    let name = class.name();
    *stats.counts.entry(name.clone()).or_default() += 1;
    stats.inputs += 1;

    if let Some(dir) = &stats.findings_dir {
        let limit = if *class == Class::SriPanic {
            64
        } else {
            SAVE_PER_CLASS
        };
        // Workers of a -fork run share the directory: count what is there already, once.
        let saved = stats.saved.entry(name.clone()).or_insert_with(|| {
            std::fs::read_dir(dir)
                .map(|entries| {
                    entries
                        .flatten()
                        .filter(|e| {
                            e.file_name()
                                .to_str()
                                .and_then(|n| n.rsplit_once('-'))
                                .is_some_and(|(class, _)| class == name)
                        })
                        .count()
                })
                .unwrap_or(0)
        });
        if !class.is_agreement() && *saved < limit {
            *saved += 1;
            let _ = std::fs::create_dir_all(dir);
            let _ = std::fs::write(dir.join(format!("{name}-{:016x}.bin", fnv64(data))), data);
        }
    }

    if let Some(file) = &stats.stats_file {
        if stats.inputs % 4096 == 1 || stats.last_write.elapsed().as_secs() >= 2 {
            stats.last_write = Instant::now();
            let text: String = stats
                .counts
                .iter()
                .map(|(class, n)| format!("{class}\t{n}\n"))
                .collect();
            let tmp = file.with_extension("tmp");
            if std::fs::write(&tmp, text).is_ok() {
                let _ = std::fs::rename(&tmp, file);
            }
        }
    }
}

/// The differential check: classify, count, keep interesting inputs. Returns the classes.
pub fn differential(data: &[u8]) -> Option<Vec<Class>> {
    let classes = classify(data)?;
    for class in &classes {
        record(class, data);
    }
    if let Some(class) = unexplained(&classes) {
        panic!(
            "differential: a disagreement no review explains: {} on {} (see interop/DIFFERENCES.md)",
            class.name(),
            data[..data.len().min(512)]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
    }
    Some(classes)
}

/// The disagreements reviewed in interop/DIFFERENCES.md, by class name: SRI ignores what follows the
/// last field and a wrong channel_msg bit and accepts an over-long user_identity TLV (rows 1, 3, 4,
/// 9), refuses frames of unknown extensions that we keep raw (row 6) and SetupConnection.protocol
/// values we accept (row 7), and leaves TLVs unread that we decode (rows 1, 3).
pub const REVIEWED: &[&str] = &[
    "both_accept_equal_sri_ignores_tlvs",
    "ours_rejects_sri_accepts.Trailing",
    "ours_rejects_sri_accepts.ChannelBit",
    "ours_rejects_sri_accepts.TlvTooLong",
    "sri_rejects_ours_accepts.UnknownMessage.raw",
    "sri_rejects_ours_accepts.BadValue",
];

/// The first class among `classes` that nobody reviewed: not an agreement, not in [`REVIEWED`],
/// not both refusing (for whatever reasons: A7 in DIFFERENCES.md), not SRI's own problem (its panics
/// and its entry points disagreeing among themselves, counted and saved as findings about SRI).
pub fn unexplained(classes: &[Class]) -> Option<&Class> {
    classes.iter().find(|c| {
        let name = c.name();
        !(c.is_agreement()
            || REVIEWED.contains(&name.as_str())
            || matches!(
                c,
                Class::BothRejectDifferent { .. } | Class::SriPanic | Class::SriPathsDisagree(_)
            ))
    })
}
