//! The top error type and the one mapping from an error to a CNI error code.

use crate::cni::env::{EnvError, StdinError};
use crate::cni::error as code;
use crate::config::ConfigError;
use crate::delegate::DelegateError;
use crate::journal::JournalError;

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

/// Every error plexus reports to a runtime.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The `CNI_*` environment is missing or invalid.
    #[error(transparent)]
    Env(#[from] EnvError),
    /// stdin could not be read or is too large.
    #[error(transparent)]
    Stdin(#[from] StdinError),
    /// plexus's config or a delegate config is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The plan for this container is invalid (caught before anything ran).
    #[error("invalid attachment plan: {0}")]
    Plan(String),
    /// The journal could not be read or written.
    #[error("journal: {0}")]
    Journal(#[from] JournalError),
    /// ADD failed in a delegate; everything started was rolled back (or the rollback failed).
    #[error("{primary}; {rollback}")]
    Add {
        /// The delegate failure that stopped ADD.
        primary: Box<DelegateFailure>,
        /// The rollback outcome.
        rollback: Box<Rollback>,
    },
    /// One or more delegate calls failed (DEL, CHECK, GC, STATUS); the first is the primary.
    #[error("{}", .0.iter().map(|f| f.to_string()).collect::<Vec<_>>().join("; "))]
    Delegates(Vec<DelegateFailure>),
    /// ADD for a container that already has attachments.
    #[error("container {0:?} is already attached; DEL it before adding it again")]
    AlreadyAttached(String),
    /// CHECK for a container plexus knows nothing about.
    #[error("container {0:?} has no attachments recorded by plexus")]
    UnknownContainer(String),
    /// A result could not be converted to the runtime's version.
    #[error("result conversion: {0}")]
    Result(String),
    /// The pod's network annotations are invalid.
    #[error(transparent)]
    Selection(#[from] crate::k8s::selection::SelectionError),
    /// A NetworkAttachmentDefinition the pod needs is missing, forbidden or invalid.
    #[error("NetworkAttachmentDefinition {namespace}/{name}: {reason}")]
    Nad {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The API server failed or refused.
    #[error(transparent)]
    Api(#[from] crate::k8s::client::ApiError),
    /// ADD succeeded but its network-status could not be written; everything was rolled back.
    #[error("{source}; {rollback}")]
    Status {
        /// The API failure.
        source: crate::k8s::client::ApiError,
        /// The rollback outcome.
        rollback: Box<Rollback>,
    },
    /// A `default-route` request could not be applied (everything was rolled back).
    #[error("default-route via {gateway} on {ifname} (network {network:?}): {reason}")]
    DefaultRoute {
        /// The network.
        network: String,
        /// The interface.
        ifname: String,
        /// The requested gateway.
        gateway: String,
        /// What failed.
        reason: String,
    },
    /// CHECK found an attachment that is not as ADD left it.
    #[error("CHECK of network {network:?} (interface {ifname}) failed: {reason}")]
    Check {
        /// The network.
        network: String,
        /// The interface.
        ifname: String,
        /// What is wrong.
        reason: String,
    },
    /// The request cannot be served as given (pod replaced, no API access, a malformed GC list).
    #[error("{0}")]
    Rejected(String),
    /// An operation failed for a reason of plexus's own (corrupt journal, GC bookkeeping).
    #[error("{0}")]
    Failed(String),
    /// Another error, with what plexus was doing; keeps the inner error's code.
    #[error("{context}: {source}")]
    Context {
        /// What plexus was doing.
        context: String,
        /// The error.
        source: Box<Error>,
    },
    /// STATUS: not ready.
    #[error("not ready: {0}")]
    NotReady(String),
}

/// What happened to the attachments started before a failing ADD.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollback {
    /// Attachments DELeted cleanly.
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

/// Unavailable servers and server-side failures are worth retrying; the rest is an I/O failure.
fn api_code(e: &crate::k8s::client::ApiError) -> u32 {
    use crate::k8s::client::ApiError;
    match e {
        ApiError::Unavailable { .. } => code::TRY_AGAIN_LATER,
        ApiError::Status { code: c, .. } if *c >= 500 || *c == 429 => code::TRY_AGAIN_LATER,
        ApiError::Config(_) => code::INVALID_NETWORK_CONFIG,
        _ => code::IO_FAILURE,
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
            Error::Config(ConfigError::Delegate(c)) => match c {
                crate::cni::conf::ConfError::Decode { .. } => code::DECODING_FAILURE,
                crate::cni::conf::ConfError::Version { .. } => code::INCOMPATIBLE_VERSION,
                crate::cni::conf::ConfError::Invalid { .. } => code::INVALID_NETWORK_CONFIG,
            },
            Error::Config(_) | Error::Plan(_) => code::INVALID_NETWORK_CONFIG,
            Error::Journal(JournalError::InvalidId(_)) => code::INVALID_ENVIRONMENT,
            Error::Journal(_) => code::IO_FAILURE,
            Error::Add { primary, .. } => primary.source.code(),
            Error::Delegates(v) => v
                .first()
                .map(|f| f.source.code())
                .unwrap_or(code::DELEGATE_FAILED),
            Error::AlreadyAttached(_) => code::INVALID_ENVIRONMENT,
            Error::UnknownContainer(_) => code::UNKNOWN_CONTAINER,
            Error::Result(_) => code::INCOMPATIBLE_VERSION,
            Error::NotReady(_) => code::NOT_AVAILABLE,
            Error::Selection(_) | Error::Nad { .. } => code::INVALID_NETWORK_CONFIG,
            Error::DefaultRoute { .. } => code::IO_FAILURE,
            Error::Check { .. } => code::DELEGATE_FAILED,
            Error::Rejected(_) => code::INVALID_NETWORK_CONFIG,
            Error::Failed(_) => code::IO_FAILURE,
            Error::Context { source, .. } => source.code(),
            Error::Api(e) | Error::Status { source: e, .. } => api_code(e),
        }
    }

    /// The CNI error object for this error, in the runtime's version. `context` (e.g. the pod
    /// and container) prefixes the message so the runtime's log says which pod failed.
    pub fn to_object(&self, cni_version: &str, context: Option<&str>) -> code::ErrorObject {
        let details = match self {
            Error::Add { primary, rollback } => {
                let mut d = match &primary.source {
                    DelegateError::Plugin { details, .. } => details.clone(),
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
