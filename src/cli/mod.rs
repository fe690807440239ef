//! The command line (when `CNI_COMMAND` is not set): node install, offline lint, journal
//! inspection, CRD generation.

pub mod crd;
pub mod inspect;
pub mod install;
pub mod lint;
pub mod uninstall;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// plexus: a multi-network CNI meta-plugin for Kubernetes (a drop-in replacement for Multus).
///
/// Run by a container runtime with CNI_COMMAND set, it is the CNI plugin; these subcommands
/// are for operators.
#[derive(Debug, Parser)]
#[command(name = "plexus", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Cmd,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Install plexus on this node: copy the binary, write 00-00-plexus.conflist and a kubeconfig.
    Install(install::InstallArgs),
    /// Take plexus out of this node without stranding a pod (drain, then remove).
    Uninstall(uninstall::UninstallArgs),
    /// Check NADs, pod annotations and plexus configs offline, with ADD's own validation.
    Lint(lint::LintArgs),
    /// Show what plexus's journal holds for the containers on this node.
    Inspect(inspect::InspectArgs),
    /// Print the NetworkAttachmentDefinition CRD manifest (YAML).
    Crd(crd::CrdArgs),
}

/// Parses the command line and runs the subcommand.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Install(a) => install::run(a),
        Cmd::Uninstall(a) => uninstall::run(a),
        Cmd::Lint(a) => lint::run(a),
        Cmd::Inspect(a) => inspect::run(a),
        Cmd::Crd(a) => crd::run(a),
    }
}
