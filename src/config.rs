//! plexus's own configuration (read from stdin like any CNI plugin's), with Multus's keys and
//! meanings, and resolution of network references to delegate configs on disk.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::cni::version::Version;

/// Default directory searched for network configs named by `clusterNetwork`/`defaultNetworks`.
pub const DEFAULT_CONF_DIR: &str = "/etc/cni/net.d";
/// Default journal directory.
pub const DEFAULT_CNI_DIR: &str = "/var/lib/plexus";
/// Default plugin directory (searched before `CNI_PATH`).
pub const DEFAULT_BIN_DIR: &str = "/opt/cni/bin";
/// Default bound on delegates running at once with `parallelAttach`.
pub const DEFAULT_MAX_PARALLEL: usize = 16;
/// Default delegate timeout.
pub const DEFAULT_DELEGATE_TIMEOUT: Duration = Duration::from_secs(60);

/// What is wrong with plexus's config.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// stdin is not JSON.
    #[error("plexus config on stdin is not valid JSON: {0}")]
    Decode(String),
    /// The runtime asked for a version plexus does not speak.
    #[error("plexus config: unsupported cniVersion {0:?}")]
    Version(String),
    /// A key has the wrong shape.
    #[error("plexus config: {0}")]
    Invalid(String),
}

/// Every key [`Config::parse`] reads, aliases included: plexus's own keys, as `plexus lint`
/// knows them. A unit test keeps it equal to the parser's fields.
pub const KNOWN_KEYS: &[&str] = &[
    "cniVersion",
    "name",
    "type",
    "confDir",
    "cniDir",
    "cniConfigDir",
    "binDir",
    "clusterNetwork",
    "defaultNetworks",
    "delegates",
    "readinessindicatorfile",
    "readinessIndicatorFile",
    "logFile",
    "logLevel",
    "logToStderr",
    "delegateTimeoutSeconds",
    "runtimeConfig",
    "kubeconfig",
    "namespaceIsolation",
    "globalNamespaces",
    "multusNamespace",
    "clusterNetworkNamespace",
    "systemNamespaces",
    "apiTimeoutSeconds",
    "apiRetryBudgetSeconds",
    "strictCapabilities",
    "addedInterfaceEvents",
    "builtinDelegates",
    "parallelAttach",
    "alongsideClusterNetwork",
    "maxParallelAttach",
    "deviceCheckpointFile",
    "agentSocket",
];

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Raw {
    #[serde(default)]
    cni_version: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default, rename = "type")]
    ty: Option<String>,
    conf_dir: Option<String>,
    #[serde(alias = "cniConfigDir")]
    cni_dir: Option<String>,
    bin_dir: Option<String>,
    cluster_network: Option<String>,
    #[serde(default)]
    default_networks: Option<Vec<String>>,
    #[serde(default)]
    delegates: Option<Vec<Value>>,
    #[serde(rename = "readinessindicatorfile", alias = "readinessIndicatorFile")]
    readiness_indicator_file: Option<String>,
    log_file: Option<String>,
    log_level: Option<String>,
    log_to_stderr: Option<bool>,
    delegate_timeout_seconds: Option<f64>,
    #[serde(default)]
    runtime_config: Option<Map<String, Value>>,
    kubeconfig: Option<String>,
    namespace_isolation: Option<bool>,
    global_namespaces: Option<StringOrList>,
    #[serde(alias = "clusterNetworkNamespace")]
    multus_namespace: Option<String>,
    system_namespaces: Option<StringOrList>,
    api_timeout_seconds: Option<f64>,
    api_retry_budget_seconds: Option<f64>,
    strict_capabilities: Option<bool>,
    added_interface_events: Option<bool>,
    builtin_delegates: Option<bool>,
    #[serde(alias = "alongsideClusterNetwork")]
    parallel_attach: Option<bool>,
    max_parallel_attach: Option<u32>,
    device_checkpoint_file: Option<String>,
    agent_socket: Option<String>,
}

/// Multus writes some namespace lists as `"a,b"` and others as `["a","b"]`: accept both.
#[derive(Deserialize)]
#[serde(untagged)]
enum StringOrList {
    One(String),
    Many(Vec<String>),
}

impl StringOrList {
    fn into_vec(self) -> Vec<String> {
        let items = match self {
            StringOrList::One(s) => s.split(',').map(str::to_string).collect(),
            StringOrList::Many(v) => v,
        };
        items
            .into_iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    }
}

fn seconds(key: &str, v: Option<f64>, default: Duration) -> Result<Duration, ConfigError> {
    match v {
        None => Ok(default),
        Some(s) if s.is_finite() && s > 0.0 && s <= 3600.0 => Ok(Duration::from_secs_f64(s)),
        Some(s) => Err(ConfigError::Invalid(format!(
            "{key} {s} must be more than 0 and at most 3600"
        ))),
    }
}

/// plexus's configuration for one invocation.
#[derive(Debug, Clone)]
pub struct Config {
    /// The runtime's cniVersion: results and errors are answered in it.
    pub cni_version: String,
    /// plexus's own network name.
    pub name: String,
    /// plexus's own plugin type (used to refuse delegating to itself).
    pub self_type: String,
    /// Where network names are looked up (`confDir`).
    pub conf_dir: PathBuf,
    /// The journal directory (`cniDir`).
    pub cni_dir: PathBuf,
    /// The first plugin directory (`binDir`); `CNI_PATH` follows.
    pub bin_dir: PathBuf,
    /// `clusterNetwork` reference, if given.
    pub cluster_network: Option<String>,
    /// `defaultNetworks` references, in order.
    pub default_networks: Vec<String>,
    /// Inline `delegates` (the first is the cluster network).
    pub delegates: Vec<Value>,
    /// `readinessindicatorfile`: STATUS and ADD fail while it does not exist.
    pub readiness_indicator_file: Option<PathBuf>,
    /// `logFile`.
    pub log_file: Option<PathBuf>,
    /// `logLevel` (Multus spellings: panic, error, warning, info, debug, verbose).
    pub log_level: String,
    /// `logToStderr` (default true, as Multus).
    pub log_to_stderr: bool,
    /// How long one delegate may run before it is killed.
    pub delegate_timeout: Duration,
    /// `runtimeConfig` the runtime sent (for the capabilities plexus's conflist declares).
    pub runtime_config: Map<String, Value>,
    /// The whole config as received (for verb-specific keys such as GC's valid attachments).
    pub raw: Value,
    /// `kubeconfig`: how the plugin reaches the API server (in-cluster settings when unset and
    /// running in a pod).
    pub kubeconfig: Option<PathBuf>,
    /// `namespaceIsolation`: pods may only use NADs of their own namespace (and the global ones).
    pub namespace_isolation: bool,
    /// `globalNamespaces`: NADs here are usable from every namespace under isolation.
    pub global_namespaces: Vec<String>,
    /// `multusNamespace`: where `clusterNetwork`/`defaultNetworks` NAD names live.
    pub multus_namespace: String,
    /// `systemNamespaces`: pods here get no `defaultNetworks`.
    pub system_namespaces: Vec<String>,
    /// Per-request API timeout (`apiTimeoutSeconds`).
    pub api_timeout: Duration,
    /// Total budget for one API call with its retries (`apiRetryBudgetSeconds`).
    pub api_retry_budget: Duration,
    /// `strictCapabilities`: a selection asking for ips/mac/... that no plugin of the network
    /// declares fails ADD (the NPWG rule); off, they are passed anyway (Multus).
    pub strict_capabilities: bool,
    /// `addedInterfaceEvents`: post one AddedInterface event per ADD.
    pub added_interface_events: bool,
    /// `builtinDelegates`: run macvlan, ipvlan and vlan in process (default true); a config
    /// with a field the built-in does not know still runs the plugin binary.
    pub builtin_delegates: bool,
    /// `parallelAttach` (older name `alongsideClusterNetwork`): attachments that make only their
    /// own interface run at the same time as the cluster network and each other, and are
    /// DELeted alike (default false: every network strictly after the one before it, as Multus
    /// does).
    pub parallel_attach: bool,
    /// `maxParallelAttach`: at most this many delegates run at once with `parallelAttach`
    /// (default 16).
    pub max_parallel_attach: usize,
    /// `deviceCheckpointFile`: the kubelet's device-plugin checkpoint, read for NADs with a
    /// `k8s.v1.cni.cncf.io/resourceName`.
    pub device_checkpoint_file: PathBuf,
    /// `agentSocket`: where ADD asks the node agent first (default
    /// [`crate::agent::proto::DEFAULT_SOCKET`]); `None` (`""`) never asks it.
    pub agent_socket: Option<PathBuf>,
}

impl Config {
    /// Parses plexus's config from stdin bytes.
    ///
    /// # Errors
    /// [`ConfigError::Decode`] for non-JSON, [`ConfigError::Version`] for an unsupported
    /// cniVersion, [`ConfigError::Invalid`] for a key of the wrong shape.
    pub fn parse(bytes: &[u8]) -> Result<Config, ConfigError> {
        let raw: Value =
            serde_json::from_slice(bytes).map_err(|e| ConfigError::Decode(e.to_string()))?;
        if !raw.is_object() {
            return Err(ConfigError::Invalid(
                "the config must be a JSON object".into(),
            ));
        }
        let r: Raw = serde_json::from_value(raw.clone()).map_err(|e| {
            // serde says what is wrong but not where: find the key that fails on its own.
            let bad = raw.as_object().and_then(|o| {
                o.iter().map(|(k, _)| k).find(|k| {
                    let one: serde_json::Map<String, Value> = o
                        .iter()
                        .filter(|(x, _)| x == k)
                        .map(|(x, v)| (x.clone(), v.clone()))
                        .collect();
                    serde_json::from_value::<Raw>(Value::Object(one)).is_err()
                })
            });
            match bad {
                Some(k) => ConfigError::Invalid(format!("{k}: {e}")),
                None => ConfigError::Invalid(e.to_string()),
            }
        })?;
        let cni_version = r.cni_version.unwrap_or_default();
        if Version::parse_supported(&cni_version).is_none() {
            return Err(ConfigError::Version(cni_version));
        }
        let delegate_timeout = seconds(
            "delegateTimeoutSeconds",
            r.delegate_timeout_seconds,
            DEFAULT_DELEGATE_TIMEOUT,
        )?;
        let api_timeout = seconds(
            "apiTimeoutSeconds",
            r.api_timeout_seconds,
            crate::k8s::client::DEFAULT_REQUEST_TIMEOUT,
        )?;
        let api_retry_budget = seconds(
            "apiRetryBudgetSeconds",
            r.api_retry_budget_seconds,
            crate::k8s::client::DEFAULT_RETRY_BUDGET,
        )?;
        let path = |o: Option<String>, d: &str| {
            PathBuf::from(o.filter(|s| !s.is_empty()).unwrap_or_else(|| d.to_string()))
        };
        let nonempty = |o: Option<String>| o.filter(|s| !s.is_empty());
        Ok(Config {
            cni_version,
            name: r.name.unwrap_or_default(),
            self_type: r.ty.unwrap_or_else(|| "plexus".into()),
            conf_dir: path(r.conf_dir, DEFAULT_CONF_DIR),
            cni_dir: path(r.cni_dir, DEFAULT_CNI_DIR),
            bin_dir: path(r.bin_dir, DEFAULT_BIN_DIR),
            cluster_network: nonempty(r.cluster_network),
            default_networks: r.default_networks.unwrap_or_default(),
            delegates: r.delegates.unwrap_or_default(),
            readiness_indicator_file: nonempty(r.readiness_indicator_file).map(PathBuf::from),
            log_file: nonempty(r.log_file).map(PathBuf::from),
            log_level: r.log_level.unwrap_or_else(|| "warning".into()),
            log_to_stderr: r.log_to_stderr.unwrap_or(true),
            delegate_timeout,
            runtime_config: r.runtime_config.unwrap_or_default(),
            raw,
            kubeconfig: nonempty(r.kubeconfig).map(PathBuf::from),
            namespace_isolation: r.namespace_isolation.unwrap_or(false),
            global_namespaces: r
                .global_namespaces
                .map(StringOrList::into_vec)
                .unwrap_or_default(),
            multus_namespace: nonempty(r.multus_namespace).unwrap_or_else(|| "kube-system".into()),
            system_namespaces: r
                .system_namespaces
                .map(StringOrList::into_vec)
                .unwrap_or_else(|| vec!["kube-system".into()]),
            api_timeout,
            api_retry_budget,
            strict_capabilities: r.strict_capabilities.unwrap_or(false),
            added_interface_events: r.added_interface_events.unwrap_or(false),
            builtin_delegates: r.builtin_delegates.unwrap_or(true),
            parallel_attach: r.parallel_attach.unwrap_or(false),
            max_parallel_attach: match r.max_parallel_attach {
                None => DEFAULT_MAX_PARALLEL,
                Some(n @ 1..=64) => n as usize,
                Some(n) => {
                    return Err(ConfigError::Invalid(format!(
                        "maxParallelAttach {n} must be between 1 and 64"
                    )));
                }
            },
            device_checkpoint_file: path(
                r.device_checkpoint_file,
                crate::k8s::devices::DEFAULT_CHECKPOINT,
            ),
            agent_socket: match r.agent_socket {
                None => Some(PathBuf::from(crate::agent::proto::DEFAULT_SOCKET)),
                Some(s) if s.is_empty() => None,
                Some(s) => Some(PathBuf::from(s)),
            },
        })
    }
}

#[cfg(test)]
mod known_keys_tests;
#[cfg(test)]
mod tests;
