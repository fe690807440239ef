//! `plexus uninstall`: take plexus out of a node without stranding a pod. While the journal
//! names a pod attachment other than the cluster network, plexus stays in the runtime's path in
//! a draining form (new pods get only the cluster network; those pods' DEL releases everything
//! from their journal); once none does, plexus's conflist, kubeconfig and binary are removed and
//! the runtime runs the primary network directly. `--wait` repeats until then.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::install::InstallError;
use crate::install::uninstall::{self, Paths};

use super::inspect;
use super::install::NodePaths;

/// Why an uninstall step failed.
#[derive(Debug, thiserror::Error)]
enum StepError {
    /// The journal directory cannot be read.
    #[error("reading the journal {dir}: {source}")]
    Journal {
        /// The journal directory.
        dir: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file could not be rewritten or removed.
    #[error(transparent)]
    Files(#[from] InstallError),
}

/// Arguments of `plexus uninstall`.
#[derive(Debug, clap::Args)]
pub struct UninstallArgs {
    /// Where `plexus install` put plexus (the same flags and defaults).
    #[command(flatten)]
    pub node: NodePaths,
    /// Repeat until plexus is removed, then stay until SIGTERM/SIGINT (a DaemonSet's container).
    #[arg(long)]
    pub wait: bool,
    /// How often the journal is looked at with --wait.
    #[arg(long, value_name = "MS", default_value_t = 5000, value_parser = clap::value_parser!(u64).range(10..=600_000))]
    pub poll_interval_ms: u64,
    /// Remove plexus now even while pods it attached other networks to are running: their DEL
    /// then runs the cluster network only, and their other networks' addresses leak.
    #[arg(long)]
    pub force: bool,
}

/// Journaled sandboxes whose DEL still needs plexus: a record naming an attachment other than
/// the cluster network, or a record that cannot be read.
fn pending(cni_dir: &std::path::Path) -> Result<Vec<String>, StepError> {
    let Some(listing) = inspect::scan(cni_dir).map_err(|source| StepError::Journal {
        dir: cni_dir.to_path_buf(),
        source,
    })?
    else {
        return Ok(Vec::new());
    };
    Ok(listing
        .records
        .iter()
        .filter(|j| match &j.record {
            Ok((_, rec)) => rec
                .steps
                .iter()
                .any(|s| !s.is_cluster() && s.needs_release()),
            Err(_) => true,
        })
        .map(|j| j.id.clone())
        .collect())
}

fn say(msg: impl std::fmt::Display) {
    eprintln!("plexus uninstall: {msg}");
}

/// One step: drain while something is pending, else finish. Returns whether plexus is gone.
fn step(paths: &Paths, cni_dir: &std::path::Path, force: bool) -> Result<bool, StepError> {
    let waiting = pending(cni_dir)?;
    if !waiting.is_empty() && !force {
        let changed = uninstall::drain(paths)?;
        if changed {
            say(format_args!(
                "{} now attaches only the cluster network to new pods; plexus stays in the \
                 runtime's path until the {} pod(s) with other networks are deleted ({})",
                paths.conflist().display(),
                waiting.len(),
                waiting.join(", ")
            ));
        }
        return Ok(false);
    }
    if force && !waiting.is_empty() {
        say(format_args!(
            "--force: removing plexus while {} pod(s) have other networks ({}); their DEL will \
             not release them",
            waiting.len(),
            waiting.join(", ")
        ));
    }
    let removed = uninstall::finish(paths)?;
    if removed.is_empty() {
        say("plexus is not installed here (nothing to remove)");
    } else {
        let names: Vec<String> = removed.iter().map(|p| p.display().to_string()).collect();
        say(format_args!(
            "removed {}; the runtime now runs the primary network directly",
            names.join(", ")
        ));
    }
    Ok(true)
}

/// Runs `plexus uninstall`.
pub fn run(args: UninstallArgs) -> ExitCode {
    let abs = |p: &PathBuf| std::path::absolute(p).unwrap_or_else(|_| p.clone());
    let paths = Paths {
        conf_dir: abs(&args.node.cni_conf_dir),
        bin_dir: abs(&args.node.cni_bin_dir),
        kubeconfig: abs(&args.node.kubeconfig_out),
    };
    let cni_dir = abs(&args.node.cni_dir);
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            say(format_args!("error: {e}"));
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let (mut term, mut int) = match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(t), Ok(i)) => (t, i),
            (Err(e), _) | (_, Err(e)) => {
                say(format_args!("error: cannot set up signal handling: {e}"));
                return ExitCode::FAILURE;
            }
        };
        let mut done = false;
        loop {
            if !done {
                match step(&paths, &cni_dir, args.force) {
                    Ok(d) => done = d,
                    Err(e) => {
                        say(format_args!("error: {e}"));
                        if !args.wait {
                            return ExitCode::FAILURE;
                        }
                    }
                }
            }
            if !args.wait {
                return ExitCode::SUCCESS;
            }
            let nap = if done {
                Duration::from_secs(3600)
            } else {
                Duration::from_millis(args.poll_interval_ms)
            };
            tokio::select! {
                _ = term.recv() => return ExitCode::SUCCESS,
                _ = int.recv() => return ExitCode::SUCCESS,
                _ = tokio::time::sleep(nap) => {}
            }
        }
    })
}
