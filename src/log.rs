//! Logging setup: structured `tracing` output to `logFile` and/or stderr, never stdout.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Mutex;

use tracing::Level;
use tracing_subscriber::fmt::writer::MakeWriterExt;

/// The `logLevel` names plexus documents (Multus's spellings), least verbose first.
pub const LEVEL_NAMES: &[&str] = &["panic", "error", "warning", "info", "debug", "verbose"];

/// The level a `logLevel` name means (any case; `trace` is `verbose`), or `None` for a name
/// plexus does not know.
pub fn known_level(s: &str) -> Option<Level> {
    match s.to_ascii_lowercase().as_str() {
        "panic" | "error" => Some(Level::ERROR),
        "warning" => Some(Level::WARN),
        "info" => Some(Level::INFO),
        "debug" => Some(Level::DEBUG),
        "verbose" | "trace" => Some(Level::TRACE),
        _ => None,
    }
}

/// Maps Multus's `logLevel` spellings (panic, error, warning, info, debug, verbose) to a level;
/// an unknown name (`plexus lint` reports it) is `warning`, the default.
pub fn level(s: &str) -> Level {
    known_level(s).unwrap_or(Level::WARN)
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
        for name in super::LEVEL_NAMES {
            assert!(super::known_level(name).is_some(), "{name}");
        }
        assert_eq!(super::known_level("loud"), None);
    }
}
