//! `plexus install`.

use std::process::ExitCode;

/// Arguments of `plexus install`.
#[derive(Debug, clap::Args)]
pub struct InstallArgs {}

/// Runs `plexus install`.
pub fn run(_args: InstallArgs) -> ExitCode {
    eprintln!("plexus install: not implemented yet");
    ExitCode::from(2)
}
