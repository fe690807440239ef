//! How an attachment runs: the [`Executor`] seam (a plugin binary per call) and libcni's
//! conflist semantics on top of it.

pub mod cancel;
pub mod exec;
pub mod list;

pub use cancel::Cancel;

use crate::cni::env::Command;

/// The per-call CNI environment a delegate gets (plexus sets every variable explicitly).
#[derive(Debug, Clone)]
pub struct Invocation<'a> {
    /// `CNI_COMMAND`.
    pub command: Command,
    /// `CNI_CONTAINERID`.
    pub container_id: &'a str,
    /// `CNI_NETNS` (may be empty on DEL and GC).
    pub netns: &'a str,
    /// `CNI_IFNAME`.
    pub ifname: &'a str,
    /// `CNI_ARGS`, already encoded.
    pub args: &'a str,
    /// Thrown when the call is no longer wanted (another attachment failed): the delegate is
    /// killed.
    pub cancel: Option<&'a Cancel>,
}

/// Why one delegate call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DelegateError {
    /// No executable of that name in any plugin directory.
    #[error("plugin {plugin:?} not found in {}", .searched.join(":"))]
    NotFound {
        /// The plugin name.
        plugin: String,
        /// The directories searched, in order.
        searched: Vec<String>,
    },
    /// The plugin name is not a plain file name (never looked up).
    #[error(transparent)]
    BadName(#[from] crate::cni::conf::PluginNameError),
    /// The process could not be started.
    #[error("starting plugin {}: {reason}", .binary.display())]
    Spawn {
        /// The binary.
        binary: std::path::PathBuf,
        /// The system's error.
        reason: String,
    },
    /// Waiting for the process failed.
    #[error("waiting for the plugin: {0}")]
    Wait(String),
    /// The call was cancelled because another attachment of the same ADD failed; the plugin
    /// was killed.
    #[error("plugin was stopped because another attachment failed")]
    Cancelled,
    /// The stored config of a journaled attachment has no usable shape (not run).
    #[error("the journaled config has no usable shape")]
    Unusable,
    /// The process ran past the timeout and was killed.
    #[error("plugin did not finish within {secs:.1}s and was killed")]
    Timeout {
        /// The timeout in seconds.
        secs: f64,
    },
    /// The plugin failed and printed a CNI error object.
    #[error("{msg}{}", if .details.is_empty() { String::new() } else { format!(" ({})", .details) })]
    Plugin {
        /// The plugin's error code.
        code: u32,
        /// The plugin's message.
        msg: String,
        /// The plugin's details.
        details: String,
    },
    /// The plugin failed without an error object.
    #[error("plugin exited with {status} and no error object{}", if .stderr.is_empty() { String::new() } else { format!("; stderr: {}", .stderr) })]
    Failed {
        /// The exit status as text.
        status: String,
        /// The end of what it wrote to stderr.
        stderr: String,
    },
    /// The plugin succeeded but its output is not a valid result.
    #[error("plugin printed an invalid result: {0}")]
    BadOutput(String),
    /// The plugin printed more than plexus accepts.
    #[error("plugin printed more than {0} bytes")]
    OutputTooLarge(usize),
}

impl DelegateError {
    /// True when the plugin itself ran and reported a failure (not when it could not be found,
    /// started, or was stopped by plexus).
    pub fn plugin_ran(&self) -> bool {
        matches!(
            self,
            DelegateError::Plugin { .. }
                | DelegateError::Failed { .. }
                | DelegateError::BadOutput(_)
                | DelegateError::OutputTooLarge(_)
        )
    }

    /// The CNI code to report: the plugin's own when it gave one.
    pub fn code(&self) -> u32 {
        match self {
            DelegateError::Plugin { code, .. } => *code,
            _ => crate::cni::error::DELEGATE_FAILED,
        }
    }
}

/// Runs one plugin binary for one CNI call: the seam tests substitute.
pub trait Executor: Sync {
    /// Runs `plugin` with the environment of `inv` and `stdin`; returns its stdout on exit 0.
    ///
    /// # Errors
    /// [`DelegateError`] for every way the call can fail.
    fn exec(
        &self,
        plugin: &str,
        inv: &Invocation<'_>,
        stdin: &[u8],
    ) -> Result<Vec<u8>, DelegateError>;

    /// How long one call may take before it is stopped, when this executor bounds it (work
    /// done in process, such as waiting for a lock, keeps to the same bound).
    fn timeout(&self) -> Option<std::time::Duration> {
        None
    }
}
