//! Reading deploy/ for tests/deploy.rs: every manifest typed by its kind with no field lost in
//! the round trip, the kustomizations, and a container's args as the kubelet expands them.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The image name every container uses; deploy/image/ maps it to what `make image` tags.
pub const IMAGE: &str = "plexus";
pub const NAMESPACE: &str = "kube-system";
pub const CRD_FILE: &str = "network-attachment-definitions.yaml";
/// Set to rewrite both CRD files from `plexus::k8s::nad::crd()`.
pub const UPDATE_ENV: &str = "PLEXUS_UPDATE_CRDS";

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One parsed object of a manifest file.
#[derive(Debug)]
pub enum Object {
    Namespace(Namespace),
    ServiceAccount(ServiceAccount),
    ClusterRole(ClusterRole),
    ClusterRoleBinding(ClusterRoleBinding),
    Crd(Box<CustomResourceDefinition>),
    ConfigMap(ConfigMap),
    DaemonSet(Box<DaemonSet>),
}

/// The first place where `a` (as written) and `b` (after the typed round trip) differ.
pub fn first_difference(path: &str, a: &Value, b: &Value) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                let p = format!("{path}.{k}");
                match y.get(k) {
                    None => return Some(format!("{p} is not a field of the type (typo?)")),
                    Some(vb) => {
                        if let Some(d) = first_difference(&p, va, vb) {
                            return Some(d);
                        }
                    }
                }
            }
            y.keys()
                .find(|k| !x.contains_key(*k))
                .map(|k| format!("{path}.{k} appeared in the round trip"))
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (va, vb))| first_difference(&format!("{path}[{i}]"), va, vb)),
        _ if a == b => None,
        _ => Some(format!("{path}: {a} became {b}")),
    }
}

/// Parses `v` as `T` and checks nothing was dropped or changed on the way.
pub fn check_typed<T: DeserializeOwned + serde::Serialize>(v: &Value) -> Result<T, String> {
    let t: T = serde_json::from_value(v.clone())
        .map_err(|e| format!("does not parse as {}: {e}", std::any::type_name::<T>()))?;
    let back = serde_json::to_value(&t).map_err(|e| e.to_string())?;
    match first_difference("", v, &back) {
        Some(d) => Err(d),
        None => Ok(t),
    }
}

pub fn typed<T: DeserializeOwned + serde::Serialize>(file: &str, v: &Value) -> T {
    check_typed(v).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// Every document of a YAML file, typed by its kind.
pub fn parse_file(path: &Path) -> Vec<Object> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut out = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(&text) {
        let y = serde_yaml_ng::Value::deserialize(doc).unwrap_or_else(|e| panic!("{name}: {e}"));
        if y.is_null() {
            continue;
        }
        let v: Value = serde_json::to_value(&y).unwrap_or_else(|e| panic!("{name}: {e}"));
        let kind = v["kind"].as_str().unwrap_or_default();
        let api = v["apiVersion"].as_str().unwrap_or_default();
        out.push(match (api, kind) {
            ("v1", "Namespace") => Object::Namespace(typed(&name, &v)),
            ("v1", "ServiceAccount") => Object::ServiceAccount(typed(&name, &v)),
            ("v1", "ConfigMap") => Object::ConfigMap(typed(&name, &v)),
            ("rbac.authorization.k8s.io/v1", "ClusterRole") => {
                Object::ClusterRole(typed(&name, &v))
            }
            ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
                Object::ClusterRoleBinding(typed(&name, &v))
            }
            ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => {
                Object::Crd(Box::new(typed(&name, &v)))
            }
            ("apps/v1", "DaemonSet") => Object::DaemonSet(Box::new(typed(&name, &v))),
            other => panic!("{name}: unexpected apiVersion/kind {other:?}"),
        });
    }
    assert!(!out.is_empty(), "{name}: no objects");
    out
}

/// The YAML files of a directory, except the kustomization.
pub fn manifests(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| (n.ends_with(".yaml") || n.ends_with(".yml")) && n != "kustomization.yaml")
        .collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kustomization {
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub resources: Vec<String>,
    #[serde(default)]
    pub components: Vec<String>,
    #[serde(default)]
    pub images: Vec<ImageEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImageEntry {
    pub name: String,
    pub new_name: String,
    pub new_tag: String,
}

pub fn kustomization(dir: &Path) -> Kustomization {
    let text = std::fs::read_to_string(dir.join("kustomization.yaml"))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

/// Every object of deploy/, grouped.
#[derive(Default)]
pub struct Deploy {
    pub namespaces: Vec<Namespace>,
    pub accounts: Vec<ServiceAccount>,
    pub roles: Vec<ClusterRole>,
    pub bindings: Vec<ClusterRoleBinding>,
    pub crds: Vec<CustomResourceDefinition>,
    pub config_maps: Vec<ConfigMap>,
    pub daemon_sets: Vec<DaemonSet>,
}

/// The objects of one kustomization directory under deploy/ ("" for deploy/ itself).
pub fn deploy_dir(sub: &str) -> Deploy {
    let dir = root().join("deploy").join(sub);
    let mut d = Deploy::default();
    for file in manifests(&dir) {
        for o in parse_file(&dir.join(&file)) {
            match o {
                Object::Namespace(x) => d.namespaces.push(x),
                Object::ServiceAccount(x) => d.accounts.push(x),
                Object::ClusterRole(x) => d.roles.push(x),
                Object::ClusterRoleBinding(x) => d.bindings.push(x),
                Object::Crd(x) => d.crds.push(*x),
                Object::ConfigMap(x) => d.config_maps.push(x),
                Object::DaemonSet(x) => d.daemon_sets.push(*x),
            }
        }
    }
    d
}

pub fn deploy() -> Deploy {
    deploy_dir("")
}

pub fn one<'a, T>(what: &str, v: &'a [T]) -> &'a T {
    assert_eq!(v.len(), 1, "deploy/ must have exactly one {what}");
    &v[0]
}

pub fn the_daemon_set(d: &Deploy) -> &DaemonSet {
    one("DaemonSet", &d.daemon_sets)
}

pub fn pod_spec(ds: &DaemonSet) -> &k8s_openapi::api::core::v1::PodSpec {
    ds.spec.as_ref().unwrap().template.spec.as_ref().unwrap()
}

pub fn containers(ds: &DaemonSet) -> Vec<&Container> {
    let pod = pod_spec(ds);
    pod.init_containers
        .iter()
        .flatten()
        .chain(pod.containers.iter())
        .collect()
}

/// A container's args with `$(VAR)` expanded the way the kubelet does, from its `env` (fake
/// values for downward-API fields) and the ConfigMaps of its `envFrom`.
pub fn expanded_args(c: &Container, config_maps: &[ConfigMap]) -> Vec<String> {
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    for from in c.env_from.iter().flatten() {
        let name = &from
            .config_map_ref
            .as_ref()
            .expect("envFrom a ConfigMap")
            .name;
        let cm = config_maps
            .iter()
            .find(|m| m.metadata.name.as_ref() == Some(name))
            .unwrap_or_else(|| panic!("{}: ConfigMap {name} is not in deploy/", c.name));
        vars.extend(cm.data.clone().unwrap_or_default());
    }
    for e in c.env.iter().flatten() {
        let value = match (&e.value, &e.value_from) {
            (Some(v), _) => v.clone(),
            (None, Some(_)) => "0b5e1c7a-0000-4000-8000-000000000000".to_string(),
            (None, None) => String::new(),
        };
        vars.insert(e.name.clone(), value);
    }
    c.args
        .iter()
        .flatten()
        .map(|a| {
            let mut out = a.clone();
            while let Some(start) = out.find("$(") {
                let end = out[start..].find(')').expect("closed $(") + start;
                let var = &out[start + 2..end];
                let value = vars
                    .get(var)
                    .unwrap_or_else(|| panic!("{}: $({var}) is not defined", c.name));
                out.replace_range(start..=end, value);
            }
            out
        })
        .collect()
}
