//! `plexus crd`: the NetworkAttachmentDefinition CRD manifest, generated from the Rust type,
//! as YAML on stdout (`plexus crd | kubectl apply -f -`).

use std::process::ExitCode;

/// Arguments of `plexus crd`.
#[derive(Debug, clap::Args)]
pub struct CrdArgs {}

/// Runs `plexus crd`: prints [`crate::k8s::nad::crd`] as YAML.
pub fn run(_args: CrdArgs) -> ExitCode {
    match serde_yaml_ng::to_string(&crate::k8s::nad::crd()) {
        Ok(yaml) => {
            print!("{yaml}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("plexus crd: cannot encode the CRD as YAML: {e}");
            ExitCode::FAILURE
        }
    }
}
