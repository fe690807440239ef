//! plexus's own config: each key through [`Config::parse`] (ADD's parser) on its own, so every
//! bad value is found; keys plexus does not know (with the closest one it does); a `logLevel`
//! it does not know; relative paths; the inline `delegates`; and that some cluster network is
//! named. `clusterNetwork` and `defaultNetworks` name files or NADs on the node and are not
//! resolved.

use serde_json::{Map, Value, json};

use super::Index;
use super::plugins::PluginDirs;
use super::report::{Report, Subject};
use super::similar::closest;
use crate::cni::conf::ConfList;
use crate::cni::version::Version;
use crate::config::{Config, ConfigError, KNOWN_KEYS};
use crate::log::{LEVEL_NAMES, known_level};
use crate::resolve::Resolver;

/// Keys of the CNI specification a plugin config may carry besides the plugin's own.
const CNI_KEYS: &[&str] = &[
    "capabilities",
    "args",
    "ipMasq",
    "ipam",
    "dns",
    "prevResult",
    "cni.dev/valid-attachments",
    "cni.dev/attachments",
];

/// Keys of Multus's config that plexus does not read.
const MULTUS_ONLY: &[&str] = &[
    "retryDeleteOnError",
    "multusConfigFile",
    "multusAutoconfigDir",
    "multusMasterCNI",
    "socketDir",
    "daemonSocketDir",
    "logOptions",
    "auxiliaryCNIChainName",
];

/// Keys holding a path: relative ones depend on the runtime's working directory.
const PATH_KEYS: &[&str] = &[
    "confDir",
    "cniDir",
    "cniConfigDir",
    "binDir",
    "kubeconfig",
    "logFile",
    "readinessindicatorfile",
    "readinessIndicatorFile",
    "deviceCheckpointFile",
];

/// Checks plexus's plugin config `conf` and, when valid, adds it to the index.
pub(crate) fn check(
    conf: &Map<String, Value>,
    at: &Subject,
    index: &mut Index,
    plugins: &PluginDirs,
    report: &mut Report,
) {
    let mut values_ok = true;
    for (key, value) in conf {
        values_ok &= check_key(key, value, at, report);
    }
    for (i, d) in conf
        .get("delegates")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let prefix = format!("delegates[{i}].");
        if let Err(problems) = ConfList::check_value(d.clone(), &format!("delegates[{i}]"), None) {
            values_ok = false;
            for e in problems.all() {
                report.error(at, "", e.to_string());
            }
        }
        plugins.check(d, &prefix, at, "", report);
    }
    if !values_ok {
        return;
    }
    // The cniVersion (the list's, for a conflist) is the network config's own finding.
    let mut whole = conf.clone();
    let version = whole
        .get("cniVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    if Version::parse_supported(version).is_none() {
        whole.insert("cniVersion".into(), json!("1.0.0"));
    }
    let cfg = match Config::parse(Value::Object(whole).to_string().as_bytes()) {
        Ok(c) => c,
        Err(e) => {
            let (field, msg) = config_error(&e);
            report.error(at, field, msg);
            return;
        }
    };
    if cfg.cluster_network.is_none() {
        let mut offline = cfg.clone();
        offline.default_networks.clear();
        // ADD's own resolution of the inline `delegates` (their source names are
        // `delegates[i]`).
        if let Err(e) = Resolver::new(&offline, "eth0", &[]).config_networks() {
            let field = if cfg.delegates.is_empty() {
                "clusterNetwork"
            } else {
                ""
            };
            report.error(at, field, e.to_string());
        }
    }
    index.plexus.push(cfg);
}

/// Checks one key of plexus's config; false when its value is one ADD would refuse.
fn check_key(key: &str, value: &Value, at: &Subject, report: &mut Report) -> bool {
    if !KNOWN_KEYS.contains(&key) {
        if MULTUS_ONLY.contains(&key) {
            report.warning(at, key, "a Multus key plexus does not read: ignored");
        } else if !CNI_KEYS.contains(&key) {
            let hint = closest(key, KNOWN_KEYS)
                .map(|k| format!(": did you mean {k:?}?"))
                .unwrap_or_default();
            report.warning(at, key, format!("not a plexus key, ignored{hint}"));
        }
        return true;
    }
    if key == "cniVersion" {
        return true;
    }
    // ADD's own parser, on this key alone.
    let alone = json!({"cniVersion": "1.0.0", key: value});
    if let Err(e) = Config::parse(alone.to_string().as_bytes()) {
        let (_, msg) = config_error(&e);
        let msg = msg.strip_prefix(&format!("{key}: ")).unwrap_or(&msg);
        report.error(at, key, msg);
        return false;
    }
    match value.as_str() {
        Some(s) if key == "logLevel" && !s.is_empty() && known_level(s).is_none() => {
            report.error(
                at,
                key,
                format!(
                    "{s:?} is not a log level ({}): plexus would log at warning",
                    LEVEL_NAMES.join(", ")
                ),
            );
        }
        Some(s) if PATH_KEYS.contains(&key) && !s.is_empty() && !s.starts_with('/') => {
            report.error(
                at,
                key,
                format!(
                    "{s:?} is relative: it would depend on the working directory the runtime \
                     runs plexus in; write an absolute path"
                ),
            );
        }
        _ => {}
    }
    true
}

/// The field a [`ConfigError`] is about, and its message (without "plexus config:").
fn config_error(e: &ConfigError) -> (&'static str, String) {
    match e {
        ConfigError::Decode(r) => ("", format!("not valid JSON: {r}")),
        ConfigError::Version(v) => ("cniVersion", format!("unsupported cniVersion {v:?}")),
        ConfigError::Invalid(r) => ("", r.clone()),
    }
}
