//! `plexus release CONTAINER_ID`: the operator's way out for a record DEL cannot finish (a
//! plugin whose DEL keeps failing for a reason only a human can judge). It never runs on its
//! own: it forgets the record on purpose, after saying what it held, and keeps the file.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::clock::{Clock, SystemClock};
use crate::config::DEFAULT_CNI_DIR;
use crate::journal::Journal;
use crate::txn::{Loaded, Record, State};

/// Arguments of `plexus release`.
#[derive(Debug, clap::Args)]
pub struct ReleaseArgs {
    /// The container id (exactly, as `plexus inspect` shows it in full).
    #[arg(value_name = "CONTAINER_ID")]
    pub container_id: String,
    /// The journal directory (`cniDir` of plexus's config).
    #[arg(long = "cni-dir", value_name = "DIR", default_value = DEFAULT_CNI_DIR)]
    pub cni_dir: PathBuf,
    /// Also release a record whose ADD succeeded (a pod that may still be running).
    #[arg(long)]
    pub force: bool,
}

/// Runs `plexus release`.
pub fn run(args: ReleaseArgs) -> ExitCode {
    let id = &args.container_id;
    let journal = Journal::new(&args.cni_dir);
    if !journal.list().unwrap_or_default().contains(id) {
        eprintln!(
            "plexus release: no record for container {id:?} in {}",
            args.cni_dir.display()
        );
        return ExitCode::FAILURE;
    }
    // The lock: a DEL of the same container waits, and never sees half a release.
    let lock = match journal.lock(id) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("plexus release: {e}");
            return ExitCode::FAILURE;
        }
    };
    match crate::txn::load(&lock) {
        Ok(Loaded::Record(rec)) if rec.complete && !args.force => {
            eprintln!(
                "plexus release: container {id:?} is attached (its ADD succeeded): release it by \
                 stopping the pod, or pass --force to forget its record anyway"
            );
            return ExitCode::FAILURE;
        }
        Ok(Loaded::Record(rec)) => describe(&rec),
        Ok(Loaded::Corrupt(reason)) => {
            eprintln!("plexus release: the record of {id:?} is unreadable ({reason})");
        }
        Ok(Loaded::Missing) => {
            eprintln!("plexus release: the record of {id:?} is gone (a DEL just finished)");
            let _ = lock.remove();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("plexus release: {e}");
            return ExitCode::FAILURE;
        }
    }
    let moved = match lock.set_aside("released", SystemClock.unix_nanos()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("plexus release: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = lock.remove() {
        eprintln!("plexus release: {e}");
        return ExitCode::FAILURE;
    }
    eprintln!(
        "plexus release: forgot the record of container {id:?}; plexus will not DEL it again. \
         The record is kept as {}",
        moved.display()
    );
    ExitCode::SUCCESS
}

/// What the record still held: what the operator takes responsibility for.
fn describe(rec: &Record) {
    for s in rec.steps.iter().filter(|s| s.needs_release()) {
        let why = match (s.state, &s.error) {
            (State::ReleaseFailed, Some(e)) => format!("its DEL failed: {e}"),
            (_, Some(e)) => e.clone(),
            _ => "never released".into(),
        };
        eprintln!(
            "plexus release: {} network {:?} (plugins {}): {why}",
            s.ifname,
            s.network,
            s.types()
        );
    }
}
