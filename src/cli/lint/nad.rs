//! NetworkAttachmentDefinitions: names, and `spec.config` through the parser ADD uses for a
//! NAD's config (named after the NAD when it has no name; plugin-name safety; cniVersion), with
//! its plugin types looked up.

use serde_json::Value;

use super::load::Doc;
use super::netconf::{conf_error_message, missing_version};
use super::plugins::PluginDirs;
use super::report::{Report, Subject};
use super::{Index, NadConf};
use crate::k8s::nad::NadObject;
use crate::k8s::pod::{is_dns_label, is_dns_subdomain};
use crate::resolve::{NadProblem, Resolver};

/// The kind.
pub(crate) const KIND: &str = "NetworkAttachmentDefinition";
/// The only apiVersion of the CRD.
const API_VERSION: &str = "k8s.cni.cncf.io/v1";

/// Namespace of an object: `metadata.namespace`, else `default` (what `kubectl apply` uses
/// without `-n`).
pub(crate) fn namespace_of(v: &Value) -> String {
    v.pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or("default")
        .to_string()
}

/// `metadata.name`, or empty.
pub(crate) fn name_of(v: &Value) -> String {
    v.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// Checks a NAD and records it in the index under `(namespace, name)`.
pub(crate) fn check(doc: &Doc, index: &mut Index, plugins: &PluginDirs, report: &mut Report) {
    let v = &doc.value;
    let (ns, name) = (namespace_of(v), name_of(v));
    let at = Subject::object(&doc.file, KIND, Some(&ns), &name);
    report.objects += 1;
    match v.get("apiVersion").and_then(Value::as_str) {
        Some(API_VERSION) => {}
        other => report.error(
            &at,
            "apiVersion",
            format!(
                "is {}, must be {API_VERSION:?}",
                other.map_or("missing".to_string(), |s| format!("{s:?}"))
            ),
        ),
    }
    if name.is_empty() {
        report.error(&at, "metadata.name", "is missing");
    } else if !is_dns_subdomain(&name) {
        report.error(
            &at,
            "metadata.name",
            format!(
                "{name:?} is not a DNS-1123 subdomain (lowercase letters, digits, '-' and '.', \
                 starting and ending with a letter or digit): the API server rejects it and \
                 annotations cannot name it"
            ),
        );
    }
    if v.pointer("/metadata/namespace").is_some() && !is_dns_label(&ns) {
        report.error(
            &at,
            "metadata.namespace",
            format!("{ns:?} is not a DNS-1123 label"),
        );
    }
    if let Some(c) = v.pointer("/spec/config")
        && !c.is_string()
        && !c.is_null()
    {
        report.error(
            &at,
            "spec.config",
            "must be a string holding the CNI config as JSON (in YAML, a block scalar: `config: |`)",
        );
        index.nads.insert((ns, name), NadConf::Invalid);
        return;
    }
    let nad: NadObject = match serde_json::from_value(v.clone()) {
        Ok(n) => n,
        Err(e) => {
            report.error(&at, "", format!("not a valid {KIND}: {e}"));
            index.nads.insert((ns, name), NadConf::Invalid);
            return;
        }
    };
    let conf = match nad.config() {
        None => NadConf::Empty,
        Some(text) => check_config(text, &ns, &name, plugins, &at, report),
    };
    if index.nads.contains_key(&(ns.clone(), name.clone())) {
        report.warning(
            &at,
            "metadata.name",
            format!("{ns}/{name} is defined more than once in the linted files; the last one wins"),
        );
    }
    index.nads.insert((ns, name), conf);
}

/// A NAD's delegate config, as ADD reads it (JSON, named after the NAD when it has no name,
/// valid and safe plugin types, a cniVersion plexus speaks, not plexus itself), with every
/// problem reported; then a missing cniVersion and plugin types that exist nowhere.
fn check_config(
    text: &str,
    ns: &str,
    name: &str,
    plugins: &PluginDirs,
    at: &Subject,
    report: &mut Report,
) -> NadConf {
    const FIELD: &str = "spec.config";
    let cfg = super::pod::stand_in_config();
    let key = (ns.to_string(), name.to_string());
    let nad = NadObject {
        spec: Some(crate::k8s::nad::NetworkAttachmentDefinitionSpec {
            config: Some(text.to_string()),
        }),
        ..NadObject::default()
    };
    // ADD's resolver, with every problem instead of the first.
    let conf = match Resolver::new(&cfg, "eth0", &[]).nad_problems(&key, &nad) {
        Ok(r) => NadConf::Valid(r.conf),
        Err(problems) => {
            for p in problems {
                let msg = match p {
                    NadProblem::Json(r) => format!("not valid JSON: {r}"),
                    NadProblem::Config(e) => conf_error_message(&e),
                    other => other.to_string(),
                };
                report.error(at, FIELD, msg);
            }
            NadConf::Invalid
        }
    };
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        if let Some(msg) = missing_version(&v) {
            report.warning(at, FIELD, msg);
        }
        plugins.check(&v, "", at, FIELD, report);
    }
    conf
}

/// Notes for NADs with an empty `spec.config`: which config file backs them, and whether it
/// was among the linted files.
pub(crate) fn note_empty(docs: &[Doc], index: &Index, report: &mut Report) {
    for doc in docs {
        let v = &doc.value;
        if v.get("kind").and_then(Value::as_str) != Some(KIND) {
            continue;
        }
        let (ns, name) = (namespace_of(v), name_of(v));
        if !matches!(
            index.nads.get(&(ns.clone(), name.clone())),
            Some(NadConf::Empty)
        ) {
            continue;
        }
        let at = Subject::object(&doc.file, KIND, Some(&ns), &name);
        let msg = match index.confs.get(&name) {
            Some((file, _)) => format!(
                "is empty: plexus uses the config in confDir whose \"name\" is {name:?} \
                 (checked: {file})"
            ),
            None => format!(
                "is empty: plexus uses the config in confDir (default /etc/cni/net.d) whose \
                 \"name\" is {name:?}; no such config among the linted files, so it is not checked"
            ),
        };
        report.note(&at, "spec.config", msg);
    }
}
