//! The top error type and the one mapping from an error to a CNI error code.

use std::net::IpAddr;
use std::path::PathBuf;

use crate::cni::conf::ConfError;
use crate::cni::env::{EnvError, StdinError};
use crate::cni::error as code;
use crate::cni::result::ResultError;
use crate::config::ConfigError;
use crate::delegate::DelegateError;
use crate::delegate::list::PluginFailure;
use crate::journal::JournalError;
use crate::k8s::client::ApiError;
use crate::link::LinkError;
use crate::resolve::{RefError, ResolveError};
use crate::txn::Step;

/// Which verb a delegate failed in.
pub type Verb = crate::cni::env::Command;

/// One failed delegate call, with everything an operator needs to find it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{verb} of network {network:?} (interface {ifname}, plugin {plugin}) failed: {source}", verb = .verb.as_str())]
pub struct DelegateFailure {
    /// The verb.
    pub verb: Verb,
    /// The network's name.
    pub network: String,
    /// The interface the attachment has in the pod.
    pub ifname: String,
    /// The plugin `type` that failed.
    pub plugin: String,
    /// What went wrong.
    pub source: DelegateError,
}

impl DelegateFailure {
    /// A plugin of the network `network` on `ifname` failed in `verb`.
    pub fn new(verb: Verb, network: &str, ifname: &str, f: PluginFailure) -> DelegateFailure {
        DelegateFailure {
            verb,
            network: network.to_string(),
            ifname: ifname.to_string(),
            plugin: f.plugin,
            source: f.source,
        }
    }

    /// A plugin of a journaled step failed in `verb`.
    pub fn of_step(verb: Verb, step: &Step, f: PluginFailure) -> DelegateFailure {
        DelegateFailure::new(verb, &step.network, &step.ifname, f)
    }
}

/// Why STATUS says plexus cannot ADD.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    /// `readinessindicatorfile` does not exist yet.
    #[error("readiness indicator file {} does not exist: the cluster network is not ready", .0.display())]
    ReadinessFile(PathBuf),
    /// The cluster network cannot be resolved.
    #[error("cluster network: {0}")]
    Unresolved(Box<Error>),
    /// The cluster network's plugin says it is not ready.
    #[error("cluster network {network:?}: {failure}")]
    Plugin {
        /// The network.
        network: String,
        /// Its plugin's answer.
        failure: PluginFailure,
    },
}

/// What CHECK found wrong in the pod.
#[derive(Debug, thiserror::Error)]
pub enum CheckProblem {
    /// The interface is not in the pod.
    #[error("the interface is missing from the pod")]
    Missing,
    /// Another interface has its name (its MAC is not the result's).
    #[error("the interface was replaced: its MAC is {got}, ADD left {want}")]
    Replaced {
        /// The result's MAC.
        want: String,
        /// The MAC in the pod.
        got: String,
    },
    /// The interface is administratively down.
    #[error("the interface is down")]
    Down,
    /// An address of the result is not on the interface.
    #[error("address {0} is missing from the interface")]
    Address(IpAddr),
    /// The master link of a macvlan, ipvlan or vlan interface is not on the node.
    #[error("its master {0} is missing from the node")]
    MasterMissing(String),
    /// The master link is down.
    #[error("its master {0} is down")]
    MasterDown(String),
    /// The pod's interfaces cannot be read.
    #[error("cannot read the pod's interfaces: {0}")]
    Unreadable(LinkError),
}

/// What is wrong with GC's list of valid attachments.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GcInputError {
    /// Neither key is in the config.
    #[error("GC needs cni.dev/valid-attachments in the config; nothing released")]
    Missing,
    /// Not a list.
    #[error("cni.dev/valid-attachments must be a list; nothing released")]
    NotAList,
    /// An element without its two keys.
    #[error("cni.dev/valid-attachments[{0}] needs containerID and ifname; nothing released")]
    Element(usize),
}

/// Every error plexus reports to a runtime.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The `CNI_*` environment is missing or invalid.
    #[error(transparent)]
    Env(#[from] EnvError),
    /// stdin could not be read or is too large.
    #[error(transparent)]
    Stdin(#[from] StdinError),
    /// plexus's own config is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The pod's networks cannot be decided (nothing ran).
    #[error(transparent)]
    Resolve(Box<ResolveError>),
    /// The journal could not be read or written.
    #[error("journal: {0}")]
    Journal(#[from] JournalError),
    /// A delegate failed.
    #[error(transparent)]
    Delegate(Box<DelegateFailure>),
    /// Delegate calls failed (DEL, CHECK, GC); the first is the primary.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Delegates(Vec<DelegateFailure>),
    /// ADD failed after attachments had started; they were rolled back (or the rollback
    /// failed and the journal keeps what is left).
    #[error("{cause}; {rollback}")]
    RolledBack {
        /// What stopped ADD.
        cause: Box<Error>,
        /// The rollback's outcome.
        rollback: Box<Rollback>,
    },
    /// ADD for a container that already has attachments.
    #[error("container {0:?} is already attached; DEL it before adding it again")]
    AlreadyAttached(String),
    /// CHECK for a container plexus knows nothing about.
    #[error("container {0:?} has no attachments recorded by plexus")]
    UnknownContainer(String),
    /// A corrupt journal whose attachments cannot be rebuilt now (kept for the next try).
    #[error(
        "journal of container {container_id:?} is corrupt ({reason}) and what it held cannot be rebuilt now: {source}"
    )]
    Corrupt {
        /// The container.
        container_id: String,
        /// What is wrong with the journal.
        reason: String,
        /// Why the rebuild failed.
        source: Box<Error>,
    },
    /// A result could not be converted to the runtime's version.
    #[error("result of network {network:?}: {source}")]
    Result {
        /// The network.
        network: String,
        /// Why.
        source: ResultError,
    },
    /// The network-status PATCH failed (ADD is rolled back; the runtime retries).
    #[error("writing network-status: {0}")]
    StatusWrite(ApiError),
    /// A `default-route` request could not be applied.
    #[error("default-route via {gateway} on {ifname} (network {network:?}): {source}")]
    DefaultRoute {
        /// The network.
        network: String,
        /// The interface.
        ifname: String,
        /// The requested gateway.
        gateway: IpAddr,
        /// What failed.
        source: LinkError,
    },
    /// CHECK found an attachment that is not as ADD left it.
    #[error("CHECK of network {network:?} (interface {ifname}) failed: {problem}")]
    Check {
        /// The network.
        network: String,
        /// The interface.
        ifname: String,
        /// What is wrong.
        problem: CheckProblem,
    },
    /// STATUS: not ready.
    #[error("not ready: {0}")]
    NotReady(NotReady),
    /// GC's list of valid attachments is unusable.
    #[error(transparent)]
    GcInput(#[from] GcInputError),
    /// GC went on past failures; every one of them.
    #[error("GC: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Gc(Vec<Error>),
}

impl From<ResolveError> for Error {
    fn from(e: ResolveError) -> Error {
        Error::Resolve(Box::new(e))
    }
}

/// What happened to the attachments started before a failing ADD.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollback {
    /// Interfaces of the attachments DELeted cleanly.
    pub cleaned: Vec<String>,
    /// DEL failures; non-empty means the journal was kept for a later DEL.
    pub failures: Vec<DelegateFailure>,
    /// A journal error met while recording the rollback.
    pub journal: Option<String>,
}

impl std::fmt::Display for Rollback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.failures.is_empty() && self.journal.is_none() {
            return write!(
                f,
                "rolled back cleanly ({} attachment(s) removed: {})",
                self.cleaned.len(),
                self.cleaned.join(", ")
            );
        }
        write!(f, "ROLLBACK INCOMPLETE, journal kept for DEL:")?;
        for fail in &self.failures {
            write!(f, " [{fail}]")?;
        }
        if let Some(j) = &self.journal {
            write!(f, " [journal: {j}]")?;
        }
        Ok(())
    }
}

/// Unavailable servers and server-side failures are worth retrying; a refused request is a
/// configuration problem (RBAC, a missing object); the rest is an I/O failure.
fn api_code(e: &ApiError) -> u32 {
    match e {
        ApiError::Unavailable { .. } => code::TRY_AGAIN_LATER,
        ApiError::Status { code: c, .. } if *c >= 500 || *c == 429 => code::TRY_AGAIN_LATER,
        ApiError::Config(_) => code::INVALID_NETWORK_CONFIG,
        _ => code::IO_FAILURE,
    }
}

fn conf_code(c: &ConfError) -> u32 {
    match c {
        ConfError::Decode { .. } => code::DECODING_FAILURE,
        ConfError::Version { .. } => code::INCOMPATIBLE_VERSION,
        ConfError::Invalid { .. } => code::INVALID_NETWORK_CONFIG,
    }
}

fn resolve_code(e: &ResolveError) -> u32 {
    match e {
        ResolveError::Api(a) => api_code(a),
        ResolveError::PodNotFound(_) => code::TRY_AGAIN_LATER,
        ResolveError::PodIdentity(_) => code::INVALID_ENVIRONMENT,
        ResolveError::Delegate(c) | ResolveError::Ref(RefError::Conf(c)) => conf_code(c),
        _ => code::INVALID_NETWORK_CONFIG,
    }
}

impl Error {
    /// The CNI error code for this error: the only place codes are chosen.
    pub fn code(&self) -> u32 {
        match self {
            Error::Env(_) => code::INVALID_ENVIRONMENT,
            Error::Stdin(StdinError::TooLarge) => code::INVALID_NETWORK_CONFIG,
            Error::Stdin(StdinError::Io(_)) => code::IO_FAILURE,
            Error::Config(ConfigError::Decode(_)) => code::DECODING_FAILURE,
            Error::Config(ConfigError::Version(_)) => code::INCOMPATIBLE_VERSION,
            Error::Config(_) => code::INVALID_NETWORK_CONFIG,
            Error::Resolve(e) => resolve_code(e),
            Error::Journal(JournalError::InvalidId(_)) => code::INVALID_ENVIRONMENT,
            Error::Journal(_) => code::IO_FAILURE,
            Error::Delegate(f) => f.source.code(),
            Error::Delegates(v) => v.first().map_or(code::DELEGATE_FAILED, |f| f.source.code()),
            Error::RolledBack { cause, .. } => cause.code(),
            Error::AlreadyAttached(_) => code::INVALID_ENVIRONMENT,
            Error::UnknownContainer(_) => code::UNKNOWN_CONTAINER,
            Error::Corrupt { source, .. } => source.code(),
            Error::Result { .. } => code::INCOMPATIBLE_VERSION,
            Error::StatusWrite(_) => code::TRY_AGAIN_LATER,
            Error::DefaultRoute { .. } => code::IO_FAILURE,
            Error::Check { .. } => code::DELEGATE_FAILED,
            Error::NotReady(_) => code::NOT_AVAILABLE,
            Error::GcInput(_) => code::INVALID_NETWORK_CONFIG,
            Error::Gc(v) => v.first().map_or(code::IO_FAILURE, Error::code),
        }
    }

    /// The CNI error object for this error, in the runtime's version. `context` (e.g. the pod
    /// and container) prefixes the message so the runtime's log says which pod failed.
    pub fn to_object(&self, cni_version: &str, context: Option<&str>) -> code::ErrorObject {
        let details = match self {
            Error::RolledBack { cause, rollback } => {
                let mut d = match &**cause {
                    Error::Delegate(f) => match &f.source {
                        DelegateError::Plugin { details, .. } => details.clone(),
                        _ => String::new(),
                    },
                    _ => String::new(),
                };
                if !rollback.failures.is_empty() {
                    d.push_str(&format!(" rollback: {rollback}"));
                }
                d.trim().to_string()
            }
            _ => String::new(),
        };
        code::ErrorObject {
            cni_version: cni_version.to_string(),
            code: self.code(),
            msg: match context {
                Some(c) => format!("plexus: {c}: {self}"),
                None => format!("plexus: {self}"),
            },
            details,
        }
    }
}

#[cfg(test)]
mod tests;
