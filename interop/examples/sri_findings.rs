//! Writes reproducers of the reviewed disagreements with SRI's codec, `fuzz/findings/sri/<class>-<hash>.bin`:
//!
//! ```text
//! cargo run -p sv2-interop --example sri_findings -- [VECTORS_DIR [OUT_DIR]]
//! ```
//!
//! The differential target's check (`sv2_interop::differential::classify`) runs over the test
//! vectors' frames (and each SetupConnection with protocol 3, the removed Job Distribution
//! protocol); the smallest input of every class listed in `differential::REVIEWED` is kept.
//! `interop/tests/fuzz_regressions.rs` asserts every reviewed class has one and that each still
//! falls in its class. Files are named by content; nothing is deleted.

use std::collections::BTreeMap;
use std::path::PathBuf;

use sv2_fuzz_checks::corpus::{fnv64, vector_frames};
use sv2_interop::differential::{classify, REVIEWED};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let vectors = PathBuf::from(args.next().unwrap_or_else(|| "vectors/data".into()));
    let out = PathBuf::from(args.next().unwrap_or_else(|| "fuzz/findings/sri".into()));
    let mut inputs = vector_frames(&vectors);
    // SetupConnection (extension 0, type 0x00) with protocol 3: a U8 we accept, an enum SRI refuses.
    let protocol_3: Vec<Vec<u8>> = inputs
        .iter()
        .filter(|f| f.len() > 6 && f[0] == 0 && f[1] == 0 && f[2] == 0)
        .map(|f| {
            let mut f = f.clone();
            f[6] = 3;
            f
        })
        .collect();
    inputs.extend(protocol_3);
    inputs.sort_by_key(|f| (f.len(), f.clone()));
    inputs.dedup();
    let mut kept: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for input in &inputs {
        for class in classify(input).unwrap_or_default() {
            let name = class.name();
            if REVIEWED.contains(&name.as_str()) {
                kept.entry(name).or_insert_with(|| input.clone());
            }
        }
    }
    std::fs::create_dir_all(&out)?;
    for (class, input) in &kept {
        let path = out.join(format!("{class}-{:016x}.bin", fnv64(input)));
        if !path.exists() {
            std::fs::write(&path, input)?;
        }
    }
    let missing: Vec<&&str> = REVIEWED
        .iter()
        .filter(|c| !kept.contains_key(**c))
        .collect();
    eprintln!(
        "sri_findings: {} reviewed classes kept in {}; none found for {missing:?}",
        kept.len(),
        out.display()
    );
    Ok(())
}
