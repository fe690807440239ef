//! `plexus-agent`: the node agent's entry point (see [`plexus::agent`]).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = plexus::agent::Args::parse();
    plexus::log::init(None, "info", true);
    match plexus::agent::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("plexus-agent: error: {e}");
            ExitCode::FAILURE
        }
    }
}
