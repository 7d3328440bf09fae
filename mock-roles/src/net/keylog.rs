//! Opt-in key logging for every Noise session of this process, in the spirit of `SSLKEYLOGFILE`: when
//! the environment variable [`ENV`] names a file, each finished handshake (initiator or responder:
//! the probe, the miners, the mock pool and TP, the conformance suite) appends its line in the key log
//! format of `sv2_codec::noise::keylog`, so that a capture of those sessions can be decrypted later.
//! Unset (the default), nothing is written.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use sv2_codec::noise::KeyLogEntry;

/// The environment variable naming the key log file.
pub const ENV: &str = "SV2KEYLOGFILE";

/// The key log file named by [`ENV`], read once per process (empty means unset).
pub fn env_path() -> Option<&'static Path> {
    static PATH: OnceLock<Option<PathBuf>> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::var_os(ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
    .as_deref()
}

/// Appends `entry` as one line to `path`, creating the file (mode 0600 on Unix: it holds secrets)
/// when missing. The line is written with one call under a process-wide lock, so concurrent
/// sessions never interleave their lines.
pub fn append(path: &Path, entry: &KeyLogEntry) -> std::io::Result<()> {
    static LOCK: Mutex<()> = Mutex::new(());
    let line = entry.to_line();
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let _guard = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    options.open(path)?.write_all(line.as_bytes())
}

/// Appends `entry` to the file named by [`ENV`], if any. Returns the error text when the file could
/// not be written (the session goes on: a key log is a debugging aid, not part of the protocol).
pub fn record(entry: &KeyLogEntry) -> Option<String> {
    let path = env_path()?;
    append(path, entry)
        .err()
        .map(|e| format!("cannot append to key log {} ({ENV}): {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(byte: u8) -> KeyLogEntry {
        KeyLogEntry {
            initiator_ephemeral: vec![byte; 64],
            handshake_hash: [byte; 32],
            c1: [byte.wrapping_add(1); 32],
            c2: [byte.wrapping_add(2); 32],
        }
    }

    #[test]
    fn lines_are_appended_whole_and_parse_back() {
        let dir = std::env::temp_dir().join(format!("sv2-keylog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("keys.log");
        let _ = std::fs::remove_file(&path);
        std::thread::scope(|s| {
            for t in 0..4u8 {
                let path = &path;
                s.spawn(move || {
                    for i in 0..25u8 {
                        append(path, &entry(t * 25 + i)).unwrap();
                    }
                });
            }
        });
        let text = std::fs::read_to_string(&path).unwrap();
        let mut seen: Vec<u8> = text
            .lines()
            .map(|l| {
                KeyLogEntry::parse_line(l)
                    .unwrap()
                    .unwrap()
                    .initiator_ephemeral[0]
            })
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..100).collect::<Vec<u8>>());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unwritable_path_is_an_error_not_a_panic() {
        let path = Path::new("/nonexistent-dir-for-sv2-keylog/keys.log");
        assert!(append(path, &entry(1)).is_err());
    }
}
