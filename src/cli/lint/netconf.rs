//! CNI network configs (`.conf`, `.conflist`, `.json`) and plexus's own config, checked with
//! the parsers ADD uses: [`ConfList::from_value`] (shape, cniVersion, plugin-name safety) and
//! [`Config::parse`] (plexus's keys).

use serde_json::{Map, Value};

use super::Index;
use super::load::Doc;
use super::report::{Report, Subject};
use crate::cni::conf::{ConfError, ConfList};
use crate::config::{Config, ConfigError};
use crate::resolve::Resolver;

/// The plugin type plexus itself has (its default `type`).
pub(crate) const PLEXUS_TYPE: &str = "plexus";

/// The message of a [`ConfError`], without its source name (the finding names the object).
pub(crate) fn conf_error_message(e: &ConfError) -> String {
    match e {
        ConfError::Decode { reason, .. } => format!("not valid JSON: {reason}"),
        ConfError::Invalid { reason, .. } => reason.clone(),
        ConfError::Version { version, .. } if version.is_empty() => {
            "cniVersion is missing (plexus speaks 0.1.0 to 1.1.0)".into()
        }
        ConfError::Version { version, .. } => {
            format!("unsupported cniVersion {version:?} (plexus speaks 0.1.0 to 1.1.0)")
        }
    }
}

/// The field a [`ConfigError`] is about, and its message.
fn config_error(e: &ConfigError) -> (&'static str, String) {
    match e {
        ConfigError::Decode(r) => ("", format!("not valid JSON: {r}")),
        ConfigError::Version(v) if v.is_empty() => ("cniVersion", "cniVersion is missing".into()),
        ConfigError::Version(v) => ("cniVersion", format!("unsupported cniVersion {v:?}")),
        ConfigError::Invalid(r) => ("", r.clone()),
    }
}

/// True when a document without `kind` looks like a CNI config (so it is checked as one).
pub(crate) fn looks_like_conf(v: &Value) -> bool {
    ["type", "plugins", "cniVersion"]
        .iter()
        .any(|k| v.get(k).is_some())
}

/// Index of the plexus plugin in a conf (`type: plexus`) or conflist, if it is plexus's config.
fn plexus_plugin(v: &Value) -> Option<Option<usize>> {
    if v.get("type").and_then(Value::as_str) == Some(PLEXUS_TYPE) {
        return Some(None);
    }
    let plugins = v.get("plugins")?.as_array()?;
    plugins
        .iter()
        .position(|p| p.get("type").and_then(Value::as_str) == Some(PLEXUS_TYPE))
        .map(Some)
}

/// Checks a CNI config document; valid delegate configs go into the index by network name (an
/// empty-config NAD may be backed by one of them), valid plexus configs too.
pub(crate) fn check(doc: &Doc, index: &mut Index, report: &mut Report) {
    let v = &doc.value;
    let name = v.get("name").and_then(Value::as_str).unwrap_or("");
    let list = v.get("plugins").is_some();
    let plexus = plexus_plugin(v);
    let kind = match (plexus.is_some(), list) {
        (true, true) => "plexus conflist",
        (true, false) => "plexus conf",
        (false, true) => "conflist",
        (false, false) => "conf",
    };
    let at = Subject::object(&doc.file, kind, None, name);
    report.objects += 1;
    match plexus {
        None => match ConfList::from_value(v.clone(), &doc.file, None) {
            Ok(c) => {
                index
                    .confs
                    .entry(c.name.clone())
                    .or_insert_with(|| (doc.file.clone(), c));
            }
            Err(e) => report.error(&at, "", conf_error_message(&e)),
        },
        Some(None) => check_plexus(v.clone(), &at, index, report),
        Some(Some(i)) => match ConfList::from_value(v.clone(), &doc.file, None) {
            // libcni gives the plugin its list's name and cniVersion: parse exactly that.
            Ok(c) => check_plexus(
                Value::Object(c.plugin_conf(i, &Map::new(), None)),
                &at,
                index,
                report,
            ),
            Err(e) => report.error(&at, "", conf_error_message(&e)),
        },
    }
}

/// plexus's config through [`Config::parse`], then what can be checked without the node: inline
/// `delegates` (through [`Config::networks`]) or that some cluster network is named at all.
/// `clusterNetwork` and `defaultNetworks` name files or NADs on the node and are not resolved.
fn check_plexus(v: Value, at: &Subject, index: &mut Index, report: &mut Report) {
    let bytes = v.to_string().into_bytes();
    let cfg = match Config::parse(&bytes) {
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
