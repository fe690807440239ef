//! `plexus lint`.

use std::process::ExitCode;

/// Arguments of `plexus lint`.
#[derive(Debug, clap::Args)]
pub struct LintArgs {}

/// Runs `plexus lint`.
pub fn run(_args: LintArgs) -> ExitCode {
    eprintln!("plexus lint: not implemented yet");
    ExitCode::from(2)
}
