//! CNI network configs (`.conf`, `.conflist`, `.json`): every problem [`ConfList::check_value`]
//! (ADD's parser) finds, a missing cniVersion, plugin types that exist nowhere; a config whose
//! plugin is plexus (or still Multus) also goes through [`super::plexus`].

use serde_json::{Map, Value};

use super::load::Doc;
use super::plugins::PluginDirs;
use super::report::{Report, Subject};
use super::{Index, plexus};
use crate::cni::conf::{ConfError, ConfList};

/// The plugin type plexus itself has (its default `type`).
pub(crate) const PLEXUS_TYPE: &str = "plexus";
/// The type of the config plexus replaces.
const MULTUS_TYPE: &str = "multus";

/// The message of a [`ConfError`], without its source name (the finding names the object).
pub(crate) fn conf_error_message(e: &ConfError) -> String {
    match e {
        ConfError::Decode { reason, .. } => format!("not valid JSON: {reason}"),
        ConfError::Invalid { reason, .. } => reason.clone(),
        ConfError::Version { version, .. } => {
            format!("unsupported cniVersion {version:?} (plexus speaks 0.1.0 to 1.1.0)")
        }
    }
}

/// The warning for a network config without `cniVersion`, if it has none.
pub(crate) fn missing_version(v: &Value) -> Option<&'static str> {
    v.get("cniVersion").is_none().then_some(
        "cniVersion is missing: it then means 0.1.0, whose results carry no interfaces (and \
         no CHECK); write the version the plugins speak",
    )
}

/// True when a document without `kind` looks like a CNI config (so it is checked as one).
pub(crate) fn looks_like_conf(v: &Value) -> bool {
    ["type", "plugins", "cniVersion"]
        .iter()
        .any(|k| v.get(k).is_some())
}

/// Where plexus's own config is in a conf (`None`) or conflist (`Some(i)`: `plugins[i]`), and
/// the type found there (`plexus`, or `multus` for a config not yet moved over).
fn plexus_plugin(v: &Value) -> Option<(Option<usize>, &str)> {
    if let Some(t) = ours(v) {
        return Some((None, t));
    }
    let plugins = v.get("plugins")?.as_array()?;
    plugins
        .iter()
        .enumerate()
        .find_map(|(i, p)| ours(p).map(|t| (Some(i), t)))
}

/// The plugin's type when it is `plexus` or `multus`.
fn ours(p: &Value) -> Option<&str> {
    p.get("type")
        .and_then(Value::as_str)
        .filter(|t| *t == PLEXUS_TYPE || *t == MULTUS_TYPE)
}

/// Checks a CNI config document; valid delegate configs go into the index by network name (an
/// empty-config NAD may be backed by one of them), valid plexus configs too.
pub(crate) fn check(doc: &Doc, index: &mut Index, plugins: &PluginDirs, report: &mut Report) {
    let v = &doc.value;
    let name = v.get("name").and_then(Value::as_str).unwrap_or("");
    let list = v.get("plugins").is_some();
    let ours = plexus_plugin(v);
    let kind = match (ours.map(|(_, ty)| ty), list) {
        (Some(ty), true) => format!("{ty} conflist"),
        (Some(ty), false) => format!("{ty} conf"),
        (None, true) => "conflist".to_string(),
        (None, false) => "conf".to_string(),
    };
    let at = Subject::object(&doc.file, &kind, None, name);
    report.objects += 1;
    // plexus's own single conf needs no name (the runtime names the list it makes of it).
    let default_name = matches!(ours, Some((None, _))).then_some("");
    let conf = ConfList::check_value(v.clone(), &doc.file, default_name);
    if let Err(problems) = &conf {
        for e in problems.clone().all() {
            report.error(&at, "", conf_error_message(&e));
        }
    }
    if let Some(msg) = missing_version(v) {
        report.warning(&at, "", msg);
    }
    plugins.check(v, "", &at, "", report);
    match ours {
        None => {
            if let Ok(c) = conf {
                index
                    .confs
                    .entry(c.name.clone())
                    .or_insert_with(|| (doc.file.clone(), c));
            }
        }
        Some((i, ty)) => {
            let field = i.map_or("type".to_string(), |i| format!("plugins[{i}].type"));
            if ty == MULTUS_TYPE {
                report.error(
                    &at,
                    &field,
                    "is \"multus\": this is still Multus's config; plexus reads the same keys \
                     with the same meanings once \"type\" is \"plexus\"",
                );
            }
            plexus::check(&plugin_conf(v, i), &at, index, plugins, report);
        }
    }
}

/// plexus's plugin config as the runtime hands it over: the conf itself, or `plugins[i]` with
/// the list's `name` and `cniVersion` (libcni's rule).
fn plugin_conf(v: &Value, i: Option<usize>) -> Map<String, Value> {
    let Some(i) = i else {
        return v.as_object().cloned().unwrap_or_default();
    };
    let mut p = v
        .pointer(&format!("/plugins/{i}"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for key in ["name", "cniVersion"] {
        match v.get(key) {
            Some(x) => p.insert(key.to_string(), x.clone()),
            None => p.remove(key),
        };
    }
    p
}
