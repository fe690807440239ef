//! Logging setup: structured `tracing` output to `logFile` and/or stderr, never stdout.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Mutex;

use tracing::Level;
use tracing_subscriber::fmt::writer::MakeWriterExt;

/// Maps Multus's `logLevel` spellings (panic, error, warning, info, debug, verbose) to a level.
pub fn level(s: &str) -> Level {
    match s.to_ascii_lowercase().as_str() {
        "panic" | "error" => Level::ERROR,
        "info" => Level::INFO,
        "debug" => Level::DEBUG,
        "verbose" | "trace" => Level::TRACE,
        _ => Level::WARN,
    }
}

/// Installs the global subscriber. A log file that cannot be opened is reported on stderr and
/// otherwise ignored: logging must never make a CNI call fail.
pub fn init(log_file: Option<&Path>, level_name: &str, to_stderr: bool) {
    let max = level(level_name);
    let file = log_file.and_then(|p| {
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(p)
            .map_err(|e| eprintln!("plexus: cannot open log file {}: {e}", p.display()))
            .ok()
    });
    let builder = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_target(false)
        .with_max_level(max);
    let _ = match (file, to_stderr) {
        (Some(f), true) => builder
            .with_writer(Mutex::new(f).and(std::io::stderr))
            .try_init(),
        (Some(f), false) => builder.with_writer(Mutex::new(f)).try_init(),
        (None, true) => builder.with_writer(std::io::stderr).try_init(),
        (None, false) => return,
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn level_table() {
        use tracing::Level;
        let rows = [
            ("panic", Level::ERROR),
            ("error", Level::ERROR),
            ("warning", Level::WARN),
            ("info", Level::INFO),
            ("debug", Level::DEBUG),
            ("verbose", Level::TRACE),
            ("nonsense", Level::WARN),
        ];
        for (s, want) in rows {
            assert_eq!(super::level(s), want, "{s}");
        }
    }
}
