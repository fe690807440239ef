//! `plexus inspect`.

use std::process::ExitCode;

/// Arguments of `plexus inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {}

/// Runs `plexus inspect`.
pub fn run(_args: InspectArgs) -> ExitCode {
    eprintln!("plexus inspect: not implemented yet");
    ExitCode::from(2)
}
