//! How an attachment runs: the [`Executor`] seam (a plugin binary per call) and libcni's
//! conflist semantics on top of it.

pub mod exec;
pub mod list;

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
    /// The process could not be started.
    #[error("starting plugin: {0}")]
    Spawn(String),
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
}
