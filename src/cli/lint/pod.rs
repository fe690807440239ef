//! Pods and the pod templates of workloads: the network-selection annotations through ADD's
//! resolver, each selected network cross-checked against the NADs linted in the same run
//! (capabilities), and the interfaces planned with ADD's planner.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

use super::load::Doc;
use super::nad::{name_of, namespace_of};
use super::report::{Report, Severity, Subject};
use super::{Index, NadConf};
use crate::cni::conf::ConfList;
use crate::config::Config;
use crate::k8s::pod::PodRef;
use crate::k8s::selection::{
    DEFAULT_NETWORK_ANNOTATION, NETWORKS_ANNOTATION, Selection, parse_default_network,
    parse_networks,
};
use crate::plan::missing_capabilities;
use crate::resolve::{ConfigNetworks, NadSource, Ref, ResolveError, ResolvedNad, Resolver};

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

/// Checks a pod (or workload's pod template) annotations: through ADD's resolver (annotation
/// syntax, namespace isolation, interface names, default routes), with the NADs and the plexus
/// config linted in the same run and stand-ins for what lint cannot see.
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
    let Some(annotations) = string_annotations(ann, &ns, &at, &field, report) else {
        return;
    };
    // With exactly one plexus config in the run, its rules (isolation, system namespaces,
    // default networks) apply; capability findings are lint's own (below).
    let cfg = match index.plexus.as_slice() {
        [cfg] => cfg.clone(),
        _ => stand_in_config(),
    };
    let strict = strict || cfg.strict_capabilities;
    let cfg = Config {
        strict_capabilities: false,
        ..cfg
    };
    let resolver = Resolver::new(&cfg, RUNTIME_IFNAME, &[]);
    let pod = PodRef {
        namespace: ns.clone(),
        name: name.clone(),
        uid: None,
    };
    let req = match resolver.pod_request(&pod, &annotations) {
        Ok(r) => r,
        Err(e) => {
            report.error(&at, &field, e.to_string());
            return;
        }
    };
    let nets = ConfigNetworks {
        cluster: Ref::Conf(stand_in("cluster network")),
        defaults: cfg
            .default_networks
            .iter()
            .map(|d| Ref::Conf(stand_in(d)))
            .collect(),
    };
    let mut known = HashMap::new();
    for s in req.selections.iter().chain(req.default_override.iter()) {
        let conf = lookup(index, s, &at, &field, strict, report);
        known.insert(
            (s.namespace.clone(), s.name.clone()),
            conf.unwrap_or_else(|| stand_in(&s.name)),
        );
    }
    match resolver.pod_plan(&pod, &req, &nets, &Linted(known), None) {
        Ok(_) => {}
        // The finding names the pod already.
        Err(ResolveError::Plan { source, .. }) => report.error(&at, &field, source.to_string()),
        Err(e) => report.error(&at, &field, e.to_string()),
    }
}

/// The annotations as strings, every problem of the two network annotations reported (both
/// when both are bad: each is parsed with ADD's parser); `None` when any is.
fn string_annotations(
    ann: &Map<String, Value>,
    ns: &str,
    at: &Subject,
    field: &str,
    report: &mut Report,
) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut bad = false;
    for (key, value) in ann {
        let ours = key == NETWORKS_ANNOTATION || key == DEFAULT_NETWORK_ANNOTATION;
        match value {
            Value::String(s) => {
                out.insert(key.clone(), s.clone());
            }
            other if ours => {
                report.error(
                    at,
                    field,
                    format!("{key}: annotation values must be strings, found {other}"),
                );
                bad = true;
            }
            _ => {}
        }
    }
    if let Some(v) = out.get(NETWORKS_ANNOTATION)
        && let Err(e) = parse_networks(v, ns)
    {
        report.error(at, field, e.to_string());
        bad = true;
    }
    match out.get(DEFAULT_NETWORK_ANNOTATION) {
        Some(v) if v.trim().is_empty() => report.note(
            at,
            field,
            format!("{DEFAULT_NETWORK_ANNOTATION}: empty, ignored (the cluster network is used)"),
        ),
        Some(v) => {
            if let Err(e) = parse_default_network(v, ns) {
                report.error(at, field, e.to_string());
                bad = true;
            }
        }
        None => {}
    }
    (!bad).then_some(out)
}

/// The plexus config lint assumes when the run holds none (or several): the defaults.
pub(crate) fn stand_in_config() -> Config {
    // A literal that always parses: the defaults of every key.
    Config::parse(br#"{"cniVersion":"1.0.0"}"#)
        .unwrap_or_else(|e| unreachable!("the default config always parses: {e}"))
}

/// NADs as lint sees them: the linted ones, and stand-ins for the rest.
struct Linted(HashMap<(String, String), ConfList>);

impl NadSource for Linted {
    fn nad(&self, key: &(String, String)) -> Result<ResolvedNad, ResolveError> {
        Ok(ResolvedNad {
            conf: self.0.get(key).cloned().unwrap_or_else(|| stand_in(&key.1)),
            resource: None,
        })
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
