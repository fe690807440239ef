//! `plexus crd`.

use std::process::ExitCode;

/// Arguments of `plexus crd`.
#[derive(Debug, clap::Args)]
pub struct CrdArgs {}

/// Runs `plexus crd`.
pub fn run(_args: CrdArgs) -> ExitCode {
    eprintln!("plexus crd: not implemented yet");
    ExitCode::from(2)
}
