//! Pods and the pod templates of workloads: the network-selection annotations through ADD's
//! parsers, each selected network cross-checked against the NADs linted in the same run
//! (capabilities), and the interfaces planned with ADD's planner.

use serde_json::{Map, Value};

use super::load::Doc;
use super::nad::{name_of, namespace_of};
use super::report::{Report, Severity, Subject};
use super::{Index, NadConf};
use crate::cni::conf::ConfList;
use crate::k8s::selection::{
    DEFAULT_NETWORK_ANNOTATION, NETWORKS_ANNOTATION, Selection, parse_default_network,
    parse_networks,
};
use crate::plan::{Network, PlanInput, missing_capabilities, plan};

/// Kinds that are or hold a pod template, and the path to the template.
const TEMPLATES: &[(&str, &[&str])] = &[
    ("Pod", &[]),
    ("Deployment", &["spec", "template"]),
    ("StatefulSet", &["spec", "template"]),
    ("DaemonSet", &["spec", "template"]),
    ("ReplicaSet", &["spec", "template"]),
    ("ReplicationController", &["spec", "template"]),
    ("Job", &["spec", "template"]),
    ("CronJob", &["spec", "jobTemplate", "spec", "template"]),
    ("PodTemplate", &["template"]),
];

/// The interface name runtimes give the cluster network (`CNI_IFNAME`).
const RUNTIME_IFNAME: &str = "eth0";

/// True for a kind whose pod template is checked.
pub(crate) fn is_pod_kind(kind: &str) -> bool {
    TEMPLATES.iter().any(|(k, _)| *k == kind)
}

/// A network config standing in for one lint cannot see (the node's cluster network, a NAD
/// not among the linted files): enough for interface planning, declares no capability.
fn stand_in(name: &str) -> ConfList {
    let mut plugin = Map::new();
    plugin.insert("type".into(), Value::from("stand-in"));
    ConfList {
        cni_version: "1.0.0".into(),
        name: name.to_string(),
        plugins: vec![plugin],
        disable_check: false,
        disable_gc: false,
        single: true,
    }
}

/// Checks a pod (or workload's pod template) annotations.
pub(crate) fn check(doc: &Doc, kind: &str, index: &Index, strict: bool, report: &mut Report) {
    let v = &doc.value;
    let (ns, name) = (namespace_of(v), name_of(v));
    let at = Subject::object(&doc.file, kind, Some(&ns), &name);
    report.objects += 1;
    let path = TEMPLATES
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or(&[][..], |(_, p)| *p);
    let mut field = path.join(".");
    if !field.is_empty() {
        field.push('.');
    }
    field.push_str("metadata.annotations");
    let mut tmpl = Some(v);
    for key in path {
        tmpl = tmpl.and_then(|t| t.get(key));
    }
    // `annotations:` with nothing after it is YAML null: no annotations, as the API server reads it.
    let Some(ann) = tmpl
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("annotations"))
        .filter(|a| !a.is_null())
    else {
        return;
    };
    let Some(ann) = ann.as_object() else {
        report.error(&at, &field, "must be a map of strings");
        return;
    };
    let get = |key: &str, report: &mut Report| -> Option<String> {
        match ann.get(key)? {
            Value::String(s) => Some(s.clone()),
            other => {
                report.error(
                    &at,
                    &field,
                    format!("{key}: annotation values must be strings, found {other}"),
                );
                None
            }
        }
    };
    let networks = get(NETWORKS_ANNOTATION, report);
    let default_net = get(DEFAULT_NETWORK_ANNOTATION, report);
    // Both annotations are parsed before giving up, so both are reported when both are bad.
    let mut unparsed = false;
    let selections = match networks.as_deref().map(|s| parse_networks(s, &ns)) {
        None => Vec::new(),
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            report.error(&at, &field, e.to_string());
            unparsed = true;
            Vec::new()
        }
    };
    let override_sel = match default_net.as_deref() {
        Some(s) if s.trim().is_empty() => {
            report.note(
                &at,
                &field,
                format!(
                    "{DEFAULT_NETWORK_ANNOTATION}: empty, ignored (the cluster network is used)"
                ),
            );
            None
        }
        Some(s) => match parse_default_network(s, &ns) {
            Ok(sel) => Some(sel),
            Err(e) => {
                report.error(&at, &field, e.to_string());
                unparsed = true;
                None
            }
        },
        None => None,
    };
    if unparsed {
        return;
    }
    let strict = strict || index.plexus.iter().any(|c| c.strict_capabilities);
    let to_network = |s: &Selection, report: &mut Report| -> Network {
        let status_name = format!("{}/{}", s.namespace, s.name);
        let conf = lookup(index, s, &at, &field, strict, report);
        Network {
            conf: conf.unwrap_or_else(|| stand_in(&s.name)),
            status_name,
            selection: Some(s.clone()),
        }
    };
    let cluster = match &override_sel {
        Some(s) => to_network(s, report),
        None => Network::from_conf(stand_in("cluster network")),
    };
    // With exactly one plexus config in the run, its defaultNetworks come before the pod's.
    let mut extra: Vec<Network> = match index.plexus.as_slice() {
        [cfg] if !cfg.system_namespaces.contains(&ns) => cfg
            .default_networks
            .iter()
            .map(|d| Network::from_conf(stand_in(d)))
            .collect(),
        _ => Vec::new(),
    };
    extra.extend(selections.iter().map(|s| to_network(s, report)));
    let input = PlanInput {
        cluster,
        extra,
        runtime_ifname: RUNTIME_IFNAME,
        runtime_config: &Map::new(),
        runtime_args: &[],
        strict_capabilities: false,
    };
    if let Err(e) = plan(input) {
        report.error(&at, &field, e);
    }
}

/// The config of the NAD a selection names, when it is among the linted files (or an
/// empty-config NAD backed by a linted config file), with the capability check on it.
fn lookup(
    index: &Index,
    s: &Selection,
    at: &Subject,
    field: &str,
    strict: bool,
    report: &mut Report,
) -> Option<ConfList> {
    let key = (s.namespace.clone(), s.name.clone());
    let conf = match index.nads.get(&key) {
        None => {
            report.warning(
                at,
                field,
                format!(
                    "network \"{}/{}\": its NetworkAttachmentDefinition is not among the linted \
                     files, so it is not checked",
                    s.namespace, s.name
                ),
            );
            return None;
        }
        Some(NadConf::Invalid) => return None,
        Some(NadConf::Valid(c)) => c.clone(),
        Some(NadConf::Empty) => index.confs.get(&s.name)?.1.clone(),
    };
    let severity = if strict {
        Severity::Error
    } else {
        Severity::Warning
    };
    for (sel_field, cap) in missing_capabilities(&conf, s) {
        let consequence = if strict {
            "ADD fails (strict capabilities)"
        } else {
            "plexus passes it anyway, but the plugin may ignore it (an error with --strict \
                 or strictCapabilities)"
        };
        report.push(
            at,
            field,
            severity,
            format!(
                "network \"{}/{}\": the selection asks for {sel_field:?} but no plugin of this \
                     network declares the {cap:?} capability: {consequence}",
                s.namespace, s.name
            ),
        );
    }
    Some(conf)
}
