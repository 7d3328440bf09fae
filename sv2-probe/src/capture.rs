//! `--pcap FILE` of the network commands: what the command did, as a pcapng of synthesised TCP
//! connections (`sv2_wire::capture::write`), and the key log of its Noise sessions beside it as
//! `FILE.keylog`, so that Wireshark (or `sv2-probe pcap`) can decrypt it.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use sv2_codec::noise::KeyLogEntry;
use sv2_wire::capture::write::{PcapngWriter, SharedPcapng};
use sv2_wire::Transcript;

/// The key log written beside the capture at `pcap`: the same path with `.keylog` appended.
pub fn keylog_path(pcap: &Path) -> PathBuf {
    let mut name = pcap.as_os_str().to_owned();
    name.push(".keylog");
    PathBuf::from(name)
}

/// The `--pcap` of a long-running role: the capture, created now and written to as each connection
/// ends, and its key log beside it (emptied now, appended to by every handshake after).
pub fn live(path: &Path) -> anyhow::Result<(SharedPcapng, sv2_wire::keylog::FileSink)> {
    let recorder =
        SharedPcapng::create(path).with_context(|| format!("--pcap {}", path.display()))?;
    let keylog = keylog_path(path);
    match std::fs::remove_file(&keylog) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("--pcap key log {}", keylog.display())),
    }
    Ok((recorder, sv2_wire::keylog::FileSink(keylog)))
}

/// Writes `transcripts` to `path` (one TCP connection each) and `keys` to its key log (replacing
/// both files). Returns how many connections were written.
pub fn save<'a>(
    path: &Path,
    transcripts: impl IntoIterator<Item = &'a Transcript>,
    keys: &[KeyLogEntry],
) -> anyhow::Result<u32> {
    let file = std::fs::File::create(path).with_context(|| format!("--pcap {}", path.display()))?;
    let mut writer = PcapngWriter::new(BufWriter::new(file))
        .with_context(|| format!("--pcap {}", path.display()))?;
    for transcript in transcripts {
        writer
            .add_transcript(transcript)
            .with_context(|| format!("--pcap {}", path.display()))?;
    }
    let connections = writer.connections();
    writer
        .finish()
        .with_context(|| format!("--pcap {}", path.display()))?;

    let keylog = keylog_path(path);
    match std::fs::remove_file(&keylog) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("--pcap key log {}", keylog.display())),
    }
    // 0600: it holds secrets.
    let mut options = std::fs::OpenOptions::new();
    options.create_new(true).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(&keylog)
        .and_then(|mut file| {
            keys.iter()
                .try_for_each(|key| file.write_all(key.to_line().as_bytes()))
        })
        .with_context(|| format!("--pcap key log {}", keylog.display()))?;
    Ok(connections)
}
