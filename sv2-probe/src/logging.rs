//! The one `tracing` subscriber of the program: the mock roles' logs (and any other library event) on
//! stderr, one line each, the level named unless it is info. `RUST_LOG` (e.g. `sv2_mock=debug`)
//! decides when set; otherwise `-v` (debug; `-vv`: trace) and `-q` (warnings only) on the command
//! line, and the command's own default: `mock tp|pool` show their log (info), the other commands only
//! warnings (a `demo` runs a TP and a pool inside itself, and keeps its report clean).

use std::fmt;
use std::io::IsTerminal;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// How much to log, from the command line.
#[derive(Debug, Clone, Copy)]
pub struct Verbosity {
    /// `-v` given this many times.
    pub verbose: u8,
    /// `-q`.
    pub quiet: bool,
}

impl Verbosity {
    /// The level: `-q` warn, `-v` debug, `-vv` trace, else `default`.
    pub fn level(self, default: Level) -> Level {
        if self.quiet {
            Level::WARN
        } else {
            match self.verbose {
                0 => default,
                1 => Level::DEBUG,
                _ => Level::TRACE,
            }
        }
    }
}

/// Installs the subscriber (once, at start): stderr, `RUST_LOG` when set, else `level`.
pub fn init(level: Level) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => EnvFilter::new(directives),
        _ => EnvFilter::new(level.as_str().to_ascii_lowercase()),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .event_format(Plain)
        .try_init();
}

/// One line per event: the message and fields, after the level unless it is info.
struct Plain;

impl<S, N> FormatEvent<S, N> for Plain
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let level = *event.metadata().level();
        match level {
            Level::INFO => {}
            Level::WARN => write!(writer, "warning: ")?,
            other => write!(writer, "{}: ", other.as_str().to_ascii_lowercase())?,
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}
