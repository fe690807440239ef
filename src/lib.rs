//! plexus: a multi-network CNI meta-plugin for Kubernetes, a drop-in replacement for Multus.
//!
//! With `CNI_COMMAND` set the `plexus` binary is a CNI plugin ([`plugin`]); otherwise it is a CLI.

pub mod agent;
pub mod builtin;
pub mod cli;
pub mod clock;
pub mod cni;
pub mod config;
pub mod delegate;
pub mod engine;
pub mod error;
pub mod health;
pub mod install;
pub mod journal;
pub mod k8s;
pub mod link;
pub mod log;
pub mod netns;
pub mod plan;
pub mod plugin;
pub mod resolve;
#[cfg(test)]
mod testutil;
pub mod text;
pub mod txn;
