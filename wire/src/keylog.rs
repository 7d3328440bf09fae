//! Key logging, in the spirit of `SSLKEYLOGFILE`: each finished Noise handshake (initiator or
//! responder) hands its line, in the format of `sv2_codec::noise::keylog`, to a [`KeyLog`], so that a
//! capture of the session can be decrypted later. A connection writes to the sink it is given; it never
//! looks at the environment. The command-line tool builds its sink from [`ENV`] ([`KeyLog::from_env`])
//! and gives it to every role it runs, so `SV2KEYLOGFILE=keys.log sv2-probe ...` works for every command.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sv2_codec::noise::KeyLogEntry;

/// The environment variable naming the key log file.
pub const ENV: &str = "SV2KEYLOGFILE";

/// Where a key log line goes.
pub trait KeyLogSink: Send + Sync + fmt::Debug {
    /// Writes one session's line; the error text when it could not be written.
    fn write(&self, entry: &KeyLogEntry) -> Result<(), String>;

    /// The file written to, if the sink is a file (a file is not added twice to one [`KeyLog`]).
    fn file(&self) -> Option<&Path> {
        None
    }
}

/// A key log file, appended to ([`append`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSink(pub PathBuf);

impl KeyLogSink for FileSink {
    fn write(&self, entry: &KeyLogEntry) -> Result<(), String> {
        append(&self.0, entry)
            .map_err(|e| format!("cannot append to key log {}: {e}", self.0.display()))
    }

    fn file(&self) -> Option<&Path> {
        Some(&self.0)
    }
}

/// Key log entries kept in memory (a proxy or a test that decrypts what it recorded).
#[derive(Debug, Clone, Default)]
pub struct MemorySink(pub Arc<Mutex<Vec<KeyLogEntry>>>);

impl MemorySink {
    /// The entries written so far.
    pub fn entries(&self) -> Vec<KeyLogEntry> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

impl KeyLogSink for MemorySink {
    fn write(&self, entry: &KeyLogEntry) -> Result<(), String> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(entry.clone());
        Ok(())
    }
}

/// The sinks a connection writes its key log line to: none by default.
#[derive(Debug, Clone, Default)]
pub struct KeyLog {
    sinks: Vec<Arc<dyn KeyLogSink>>,
}

impl KeyLog {
    /// No key log.
    pub fn none() -> Self {
        Self::default()
    }

    /// Appends to the file at `path`.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self::none().and(FileSink(path.into()))
    }

    /// The file named by [`ENV`], if set and not empty; none otherwise.
    pub fn from_env() -> Self {
        match std::env::var_os(ENV).filter(|v| !v.is_empty()) {
            Some(path) => Self::file(PathBuf::from(path)),
            None => Self::none(),
        }
    }

    /// This key log and `sink` too. A file already written to is not added twice.
    pub fn and(mut self, sink: impl KeyLogSink + 'static) -> Self {
        let known = |s: &Arc<dyn KeyLogSink>| s.file().is_some() && s.file() == sink.file();
        if !self.sinks.iter().any(known) {
            self.sinks.push(Arc::new(sink));
        }
        self
    }

    /// True when `path` is one of the files written.
    pub fn writes_to(&self, path: &Path) -> bool {
        self.sinks.iter().any(|s| s.file() == Some(path))
    }

    /// True when nothing is written.
    pub fn is_none(&self) -> bool {
        self.sinks.is_empty()
    }

    /// Writes `entry` to every sink. Returns the errors' text (the session goes on: a key log is a
    /// debugging aid, not part of the protocol).
    pub fn record(&self, entry: &KeyLogEntry) -> Option<String> {
        let errors: Vec<String> = self
            .sinks
            .iter()
            .filter_map(|sink| sink.write(entry).err())
            .collect();
        (!errors.is_empty()).then(|| errors.join("; "))
    }
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
        let log = KeyLog::file(path);
        assert!(log.record(&entry(1)).unwrap().contains("cannot append"));
    }

    #[test]
    fn every_sink_gets_the_line_and_a_file_is_written_once() {
        let memory = MemorySink::default();
        let log = KeyLog::none().and(memory.clone()).and(memory.clone());
        assert!(!log.is_none());
        assert_eq!(log.record(&entry(3)), None);
        // Two handles on one memory: both are sinks (they are not files), so the entry is there twice.
        assert_eq!(memory.entries().len(), 2);
        let twice = KeyLog::file("/tmp/a.log").and(FileSink("/tmp/a.log".into()));
        assert_eq!(twice.sinks.len(), 1);
        assert!(KeyLog::none().is_none());
    }
}
