//! Progress on stderr for the long commands (`conformance`, `mine`): a bar or a status line drawn by
//! `indicatif`, only when stderr is a terminal. Elsewhere (pipes, files, CI, tests) there is none and
//! the output is exactly what it would be without it.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress display, or nothing when stderr is not a terminal.
#[derive(Debug)]
pub struct Status(Option<ProgressBar>);

impl Status {
    /// Nothing is shown.
    pub fn none() -> Self {
        Status(None)
    }

    /// A bar of `total` steps (e.g. checks): done/total, elapsed, and the message (the running step).
    pub fn bar(total: u64) -> Self {
        Self::on_terminal(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed}] {bar:30} {pos}/{len} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        })
    }

    /// A status line with a spinner and the message (e.g. hash rate and shares).
    pub fn spinner() -> Self {
        Self::on_terminal(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar
        })
    }

    fn on_terminal(make: impl FnOnce() -> ProgressBar) -> Self {
        if !std::io::stderr().is_terminal() {
            return Status(None);
        }
        let bar = make();
        bar.enable_steady_tick(Duration::from_millis(120));
        Status(Some(bar))
    }

    /// Whether anything is shown.
    #[cfg(test)]
    pub fn is_shown(&self) -> bool {
        self.0.is_some()
    }

    pub fn set_message(&self, message: String) {
        if let Some(bar) = &self.0 {
            bar.set_message(message);
        }
    }

    pub fn set_length(&self, total: u64) {
        if let Some(bar) = &self.0 {
            bar.set_length(total);
        }
    }

    pub fn set_position(&self, done: u64) {
        if let Some(bar) = &self.0 {
            bar.set_position(done);
        }
    }

    /// Writes to `out` with the display out of the way (then flushes `out`, so that the lines come
    /// before the display is drawn again).
    pub fn write(
        &self,
        out: &mut dyn Write,
        write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        match &self.0 {
            Some(bar) => bar.suspend(|| {
                write(&mut *out)?;
                out.flush()
            }),
            None => write(out),
        }
    }

    /// Removes the display.
    pub fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Status {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_shown_when_stderr_is_not_a_terminal() {
        // Test runs capture stderr (a pipe or a file); on a terminal there is nothing to check here.
        if std::io::stderr().is_terminal() {
            return;
        }
        assert!(!Status::bar(10).is_shown());
        assert!(!Status::spinner().is_shown());
        let mut out = Vec::new();
        Status::bar(3)
            .write(&mut out, |w| writeln!(w, "line"))
            .unwrap();
        assert_eq!(out, b"line\n");
    }
}
