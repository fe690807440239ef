//! The command line (when `CNI_COMMAND` is not set): node install, offline lint, journal
//! inspection, CRD generation.

pub mod crd;
pub mod inspect;
pub mod install;
pub mod lint;
pub mod release;
pub mod uninstall;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// What `plexus --help` says after the commands: the binary's other two roles.
const PLUGIN_ROLE: &str = "\
With CNI_COMMAND set in its environment (ADD, DEL, CHECK, GC, STATUS, VERSION: how a container \
runtime runs it), plexus is the CNI plugin: it reads the network config on stdin and prints the \
result, or a CNI error object, on stdout. Run under the name macvlan, ipvlan or vlan (a symlink \
or a copy), it is that plugin. The commands above are for operators.";

/// plexus: a multi-network CNI meta-plugin for Kubernetes (a drop-in replacement for Multus).
#[derive(Debug, Parser)]
#[command(
    name = "plexus",
    version,
    about,
    long_about = None,
    after_help = PLUGIN_ROLE,
    disable_help_subcommand = true
)]
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
    /// Forget the record of a container whose DEL cannot finish (on purpose; never automatic).
    Release(release::ReleaseArgs),
    /// Print this help, or a command's (`plexus help lint` is `plexus lint --help`).
    Help(HelpArgs),
}

/// Arguments of `plexus help`.
#[derive(Debug, clap::Args)]
pub struct HelpArgs {
    /// The command whose help to print.
    #[arg(value_name = "COMMAND")]
    pub command: Option<String>,
}

/// Prints the help `plexus help [COMMAND]` asks for.
fn help(args: HelpArgs) -> ExitCode {
    let mut cli = Cli::command();
    match args.command {
        // Exactly what `plexus COMMAND --help` prints (clap prints it and exits; an unknown
        // command is clap's usage error).
        Some(command) => {
            cli.get_matches_from(["plexus", command.as_str(), "--help"]);
            ExitCode::SUCCESS
        }
        None => match cli.print_help() {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::FAILURE,
        },
    }
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
        Cmd::Release(a) => release::run(a),
        Cmd::Help(a) => help(a),
    }
}
