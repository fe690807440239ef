//! The `00-00-plexus.conflist` plexus installs: pure, from the primary config and the install
//! options to the JSON the runtime will read.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Map, Value, json};

use super::primary::Primary;

/// The network name of the installed conflist (Multus: `multus-cni-network`).
pub const NETWORK_NAME: &str = "plexus-cni-network";

/// The capability that makes containerd send the pod's annotations in `runtimeConfig`.
pub const POD_ANNOTATIONS_CAPABILITY: &str = "io.kubernetes.cri.pod-annotations";

/// plexus plugin keys set by the install, each written only when given.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PluginOptions {
    /// `kubeconfig`.
    pub kubeconfig: Option<PathBuf>,
    /// `confDir`.
    pub conf_dir: Option<PathBuf>,
    /// `binDir`.
    pub bin_dir: Option<PathBuf>,
    /// `cniDir` (the journal).
    pub cni_dir: Option<PathBuf>,
    /// `logFile`.
    pub log_file: Option<PathBuf>,
    /// `logLevel`.
    pub log_level: Option<String>,
    /// `namespaceIsolation`.
    pub namespace_isolation: Option<bool>,
    /// `globalNamespaces`.
    pub global_namespaces: Vec<String>,
    /// `readinessindicatorfile`.
    pub readiness_indicator_file: Option<PathBuf>,
}

/// The union of the capabilities the primary's plugins declare (`true` only), plus
/// [`POD_ANNOTATIONS_CAPABILITY`], sorted by name.
pub fn capabilities(primary: &Primary) -> BTreeMap<String, bool> {
    let mut caps: BTreeMap<String, bool> = primary
        .conf
        .plugins
        .iter()
        .filter_map(|p| p.get("capabilities")?.as_object())
        .flat_map(|m| m.iter())
        .filter(|(_, v)| v.as_bool() == Some(true))
        .map(|(k, _)| (k.clone(), true))
        .collect();
    caps.insert(POD_ANNOTATIONS_CAPABILITY.to_string(), true);
    caps
}

/// The conflist for `primary`: one plexus plugin whose `clusterNetwork` is the primary's
/// path, in the primary's cniVersion.
pub fn generate(primary: &Primary, opts: &PluginOptions) -> Value {
    let path = |p: &PathBuf| Value::String(p.display().to_string());
    let mut plugin = Map::new();
    plugin.insert("type".into(), json!(super::primary::SELF_TYPE));
    plugin.insert("clusterNetwork".into(), path(&primary.path));
    let optional: [(&str, Option<Value>); 8] = [
        ("kubeconfig", opts.kubeconfig.as_ref().map(path)),
        ("confDir", opts.conf_dir.as_ref().map(path)),
        ("binDir", opts.bin_dir.as_ref().map(path)),
        ("cniDir", opts.cni_dir.as_ref().map(path)),
        ("logFile", opts.log_file.as_ref().map(path)),
        ("logLevel", opts.log_level.clone().map(Value::String)),
        (
            "namespaceIsolation",
            opts.namespace_isolation.map(Value::Bool),
        ),
        (
            "readinessindicatorfile",
            opts.readiness_indicator_file.as_ref().map(path),
        ),
    ];
    for (k, v) in optional {
        if let Some(v) = v {
            plugin.insert(k.into(), v);
        }
    }
    if !opts.global_namespaces.is_empty() {
        plugin.insert("globalNamespaces".into(), json!(opts.global_namespaces));
    }
    plugin.insert("capabilities".into(), json!(capabilities(primary)));
    json!({
        "cniVersion": primary.conf.version().to_string(),
        "name": NETWORK_NAME,
        "plugins": [Value::Object(plugin)],
    })
}

/// [`generate`] as the bytes written to disk (pretty JSON, trailing newline).
pub fn render(primary: &Primary, opts: &PluginOptions) -> Vec<u8> {
    let mut v = serde_json::to_vec_pretty(&generate(primary, opts)).unwrap_or_default();
    v.push(b'\n');
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cni::conf::ConfList;
    use crate::config::Config;

    fn primary(json: &str) -> Primary {
        Primary {
            path: "/etc/cni/net.d/10-x.conflist".into(),
            bytes: json.as_bytes().to_vec(),
            conf: ConfList::from_slice(json.as_bytes(), "t").unwrap(),
        }
    }

    #[test]
    fn capabilities_table() {
        let rows: &[(&str, &str, &[&str])] = &[
            (
                "none declared",
                r#"{"cniVersion":"1.0.0","name":"a","type":"bridge"}"#,
                &[POD_ANNOTATIONS_CAPABILITY],
            ),
            (
                "union over plugins, false skipped",
                r#"{"cniVersion":"0.4.0","name":"a","plugins":[
                    {"type":"flannel","capabilities":{"bandwidth":true,"mac":false}},
                    {"type":"portmap","capabilities":{"portMappings":true}},
                    {"type":"tuning","capabilities":"oops"}]}"#,
                &["bandwidth", POD_ANNOTATIONS_CAPABILITY, "portMappings"],
            ),
            (
                "primary already declares pod annotations",
                r#"{"cniVersion":"1.0.0","name":"a","type":"x","capabilities":{"io.kubernetes.cri.pod-annotations":true}}"#,
                &[POD_ANNOTATIONS_CAPABILITY],
            ),
        ];
        for (row, json, want) in rows {
            let got: Vec<String> = capabilities(&primary(json)).into_keys().collect();
            assert_eq!(got, *want, "{row}");
        }
    }

    #[test]
    fn generated_plugin_is_a_valid_plexus_config() {
        let p = primary(r#"{"cniVersion":"0.3.1","name":"k","type":"bridge"}"#);
        let opts = PluginOptions {
            kubeconfig: Some("/k".into()),
            cni_dir: Some("/var/lib/plexus".into()),
            log_level: Some("debug".into()),
            namespace_isolation: Some(true),
            global_namespaces: vec!["default".into(), "shared".into()],
            readiness_indicator_file: Some("/r".into()),
            ..Default::default()
        };
        let v = generate(&p, &opts);
        assert_eq!(v["cniVersion"], "0.3.1");
        assert_eq!(v["name"], NETWORK_NAME);
        let mut plugin = v["plugins"][0].clone();
        assert!(plugin.get("logFile").is_none(), "unset keys are omitted");
        plugin["cniVersion"] = v["cniVersion"].clone();
        plugin["name"] = v["name"].clone();
        let cfg = Config::parse(plugin.to_string().as_bytes()).unwrap();
        assert_eq!(
            cfg.cluster_network.as_deref(),
            Some("/etc/cni/net.d/10-x.conflist")
        );
        assert_eq!(cfg.kubeconfig.as_deref(), Some(std::path::Path::new("/k")));
        assert!(cfg.namespace_isolation);
        assert_eq!(cfg.global_namespaces, ["default", "shared"]);
        assert_eq!(
            cfg.readiness_indicator_file.as_deref(),
            Some(std::path::Path::new("/r"))
        );
        assert_eq!(cfg.log_level, "debug");
    }
}
