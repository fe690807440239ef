//! A DaemonSet container from deploy/, turned into the `ctr run` a kubelet would amount to on
//! the scratch node: the same command and arguments (`$(VAR)` expanded from its ConfigMap and
//! env), the same mounts and security settings, with every host path moved under the node's
//! scratch root. Anything the translation cannot express fails the test instead of being dropped.

use std::collections::BTreeMap;
use std::path::Path;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, Container};
use serde::Deserialize;

use crate::node::Node;

/// The kubelet's view of one container: what `ctr run` gets.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// `ctr run` options: `--mount`, `--env`, `--read-only`, `--cap-drop`...
    pub opts: Vec<String>,
    /// The command and its arguments.
    pub argv: Vec<String>,
}

/// Every object of a manifest file, as JSON.
fn documents(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde_yaml_ng::Value::deserialize(d).expect("YAML"))
        .filter(|v| !v.is_null())
        .map(|v| serde_json::to_value(v).expect("YAML as JSON"))
        .collect()
}

/// The DaemonSet of `file` and the ConfigMaps of `configmap_file`.
pub fn load(file: &Path, configmap_file: &Path) -> (DaemonSet, Vec<ConfigMap>) {
    let ds = documents(file)
        .into_iter()
        .find(|d| d["kind"] == "DaemonSet")
        .map(|d| serde_json::from_value(d).expect("a DaemonSet"))
        .unwrap_or_else(|| panic!("{}: no DaemonSet", file.display()));
    let cms = documents(configmap_file)
        .into_iter()
        .filter(|d| d["kind"] == "ConfigMap")
        .map(|d| serde_json::from_value(d).expect("a ConfigMap"))
        .collect();
    (ds, cms)
}

/// The container (init or main) named `name`.
pub fn container<'a>(ds: &'a DaemonSet, name: &str) -> &'a Container {
    let pod = ds
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("a pod template");
    pod.init_containers
        .iter()
        .flatten()
        .chain(pod.containers.iter())
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no container {name} in the DaemonSet"))
}

/// Translates `container` of `ds` for `node`. `overrides` replace ConfigMap values that are
/// host paths (so they point into the scratch tree); `extra_env` is what the kubelet adds
/// (`KUBERNETES_SERVICE_HOST`/`PORT`); `pod_uid` is the downward API's `metadata.uid`.
pub fn invocation(
    node: &Node,
    ds: &DaemonSet,
    config_maps: &[ConfigMap],
    container_name: &str,
    overrides: &[(&str, String)],
    extra_env: &[(&str, String)],
    pod_uid: &str,
) -> Invocation {
    let c = container(ds, container_name);
    let pod = ds
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("a pod template");
    let volumes = pod.volumes.as_deref().unwrap_or_default();

    // Environment: envFrom ConfigMaps, then env, then the scratch overrides.
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
            .unwrap_or_else(|| panic!("ConfigMap {name} not found"));
        vars.extend(cm.data.clone().unwrap_or_default());
    }
    for e in c.env.iter().flatten() {
        let value = match (&e.value, &e.value_from) {
            (Some(v), _) => v.clone(),
            (None, Some(from)) => {
                let field = from.field_ref.as_ref().map(|f| f.field_path.as_str());
                assert_eq!(
                    field,
                    Some("metadata.uid"),
                    "{}: unsupported valueFrom",
                    e.name
                );
                pod_uid.to_string()
            }
            (None, None) => String::new(),
        };
        vars.insert(e.name.clone(), value);
    }
    for (k, v) in overrides {
        assert!(vars.contains_key(*k), "override of unknown variable {k}");
        vars.insert(k.to_string(), v.clone());
    }

    let expand = |s: &str| -> String {
        let mut out = s.to_string();
        while let Some(start) = out.find("$(") {
            let end = out[start..].find(')').expect("closed $(") + start;
            let var = out[start + 2..end].to_string();
            let value = vars
                .get(&var)
                .unwrap_or_else(|| panic!("$({var}) is not defined"))
                .clone();
            out.replace_range(start..=end, &value);
        }
        out
    };
    let host_paths: Vec<String> = volumes
        .iter()
        .filter_map(|v| Some(v.host_path.as_ref()?.path.clone()))
        .collect();
    // A flag's value that is (under) a host path volume's path moves into the scratch tree.
    let relocate = |arg: String| -> String {
        let Some((flag, value)) = arg.split_once('=') else {
            return arg;
        };
        let under = host_paths
            .iter()
            .any(|p| value == p || value.starts_with(&format!("{}/", p.trim_end_matches('/'))));
        if under {
            format!("{flag}={}", node.host(value).display())
        } else {
            arg
        }
    };
    let mut argv: Vec<String> = c.command.iter().flatten().map(|a| expand(a)).collect();
    argv.extend(c.args.iter().flatten().map(|a| relocate(expand(a))));
    let root = node.root.display().to_string();
    for a in &argv {
        let value = a.split_once('=').map_or(a.as_str(), |(_, v)| v);
        assert!(
            !value.starts_with('/') || value.starts_with(&root),
            "argument {a:?} would touch the machine's own {value}: map it into the scratch node"
        );
    }

    let mut opts = Vec::new();
    for m in c.volume_mounts.iter().flatten() {
        let v = volumes
            .iter()
            .find(|v| v.name == m.name)
            .unwrap_or_else(|| panic!("{}: no volume {}", c.name, m.name));
        let (src, dst) = if let Some(hp) = &v.host_path {
            (node.host(&hp.path), node.host(&m.mount_path))
        } else if v.projected.is_some() {
            // The kubelet keeps a projected volume here on the host.
            let kubelet = vars.get("PLEXUS_KUBELET_DIR").expect("PLEXUS_KUBELET_DIR");
            let src = Path::new(kubelet)
                .join("pods")
                .join(pod_uid)
                .join("volumes/kubernetes.io~projected")
                .join(&v.name);
            (src, m.mount_path.clone().into())
        } else {
            panic!(
                "{}: volume {} is of a kind the e2e cannot map",
                c.name, v.name
            );
        };
        std::fs::create_dir_all(&src).expect("create a mount source");
        let mode = if m.read_only == Some(true) {
            "ro"
        } else {
            "rw"
        };
        let propagation = match m.mount_propagation.as_deref() {
            None | Some("None") => "",
            Some("HostToContainer") => ":rslave",
            Some(other) => panic!("mountPropagation {other} is not mapped"),
        };
        opts.push("--mount".to_string());
        opts.push(format!(
            "type=bind,src={},dst={},options=rbind:{mode}{propagation}",
            src.display(),
            dst.display()
        ));
    }
    for (k, v) in vars
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .chain(extra_env.iter().map(|(k, v)| (*k, v)))
    {
        opts.push("--env".to_string());
        opts.push(format!("{k}={v}"));
    }
    if let Some(sc) = &c.security_context {
        if sc.privileged == Some(true) {
            opts.push("--privileged".into());
        }
        if sc.read_only_root_filesystem == Some(true) {
            opts.push("--read-only".into());
        }
        assert!(
            sc.run_as_user.is_none_or(|u| u == 0),
            "runAsUser other than 0 is not mapped (the image runs as 0)"
        );
        if let Some(caps) = &sc.capabilities {
            for d in caps.drop.iter().flatten() {
                opts.push("--cap-drop".into());
                opts.push(format!("CAP_{}", d.trim_start_matches("CAP_")));
            }
            for a in caps.add.iter().flatten() {
                opts.push("--cap-add".into());
                opts.push(format!("CAP_{}", a.trim_start_matches("CAP_")));
            }
        }
    }
    Invocation { opts, argv }
}
