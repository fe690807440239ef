//! The NetworkAttachmentDefinition CRD (`k8s.cni.cncf.io/v1`), as the NPWG standard and Multus
//! define it, and the CRD manifest generated from it.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResource;
use kube::core::ObjectMeta;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cni::conf::{ConfError, ConfList};

/// Annotation on a NAD naming the device-plugin resource whose device id goes to the delegate.
pub const RESOURCE_NAME_ANNOTATION: &str = "k8s.v1.cni.cncf.io/resourceName";

/// NetworkAttachmentDefinition spec: a CNI config (or conflist) as a JSON string. Empty means
/// "the config file in confDir whose `name` is this NAD's name".
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "k8s.cni.cncf.io",
    version = "v1",
    kind = "NetworkAttachmentDefinition",
    plural = "network-attachment-definitions",
    singular = "network-attachment-definition",
    shortname = "net-attach-def",
    shortname = "nad",
    namespaced,
    doc = "NetworkAttachmentDefinition is a CRD schema specified by the Network Plumbing Working Group to express the intent for attaching pods to one or more logical or physical networks."
)]
pub struct NetworkAttachmentDefinitionSpec {
    /// A JSON-formatted CNI configuration (a single conf or a conflist).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
}

/// A NAD as read from the API: `spec` may be absent (Multus accepts that; the config then
/// comes from confDir).
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq)]
pub struct NadObject {
    /// Object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The spec, if any.
    #[serde(default)]
    pub spec: Option<NetworkAttachmentDefinitionSpec>,
}

impl NadObject {
    /// The config string, if non-empty.
    pub fn config(&self) -> Option<&str> {
        self.spec
            .as_ref()
            .and_then(|s| s.config.as_deref())
            .filter(|c| !c.trim().is_empty())
    }

    /// The device-plugin resource name annotation, if set.
    pub fn resource_name(&self) -> Option<&str> {
        self.metadata
            .annotations
            .as_ref()?
            .get(RESOURCE_NAME_ANNOTATION)
            .map(String::as_str)
    }
}

/// What is wrong with a NAD's `spec.config`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NadConfigError {
    /// Not JSON.
    #[error("spec.config is not valid JSON: {0}")]
    Json(String),
    /// JSON, but not a valid network config.
    #[error("spec.config: {0}")]
    Conf(ConfError),
    /// The config runs plexus itself (the plugin type given as `self_type`).
    #[error("its config runs plexus itself (type {0:?}); that would recurse")]
    RunsSelf(String),
}

/// Parses a NAD's non-empty `spec.config` into a delegate config (named after the NAD when it
/// has no `name`), refusing one that runs plexus itself (`self_type`): ADD and `plexus lint`
/// use this same check.
///
/// # Errors
/// A sentence saying what is wrong (not JSON, an invalid config, recursion): the first of
/// [`check_config`]'s problems.
pub fn parse_config(
    text: &str,
    ns: &str,
    name: &str,
    self_type: &str,
) -> Result<crate::cni::conf::ConfList, String> {
    check_config(text, ns, name, self_type).map_err(|problems| {
        problems
            .first()
            .map(ToString::to_string)
            .unwrap_or_default()
    })
}

/// As [`parse_config`], with every problem of the config instead of the first.
///
/// # Errors
/// Every problem found, in the order [`ConfList::check_value`] finds them (never empty).
pub fn check_config(
    text: &str,
    ns: &str,
    name: &str,
    self_type: &str,
) -> Result<ConfList, Vec<NadConfigError>> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| vec![NadConfigError::Json(e.to_string())])?;
    let conf = ConfList::check_value(
        v,
        &format!("NetworkAttachmentDefinition {ns}/{name}"),
        Some(name),
    )
    .map_err(|p| {
        p.all()
            .into_iter()
            .map(NadConfigError::Conf)
            .collect::<Vec<_>>()
    })?;
    if (0..conf.plugins.len()).any(|i| conf.plugin_type(i) == self_type) {
        return Err(vec![NadConfigError::RunsSelf(self_type.to_string())]);
    }
    Ok(conf)
}

/// The CRD manifest, as Multus ships it: `spec` and `spec.config` optional, so every NAD that
/// Multus accepts is accepted.
pub fn crd() -> CustomResourceDefinition {
    use kube::CustomResourceExt;
    let mut crd = NetworkAttachmentDefinition::crd();
    for v in &mut crd.spec.versions {
        if let Some(schema) = v
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        {
            schema.required = None;
        }
    }
    crd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crd_shape() {
        let c = crd();
        assert_eq!(
            c.metadata.name.as_deref(),
            Some("network-attachment-definitions.k8s.cni.cncf.io")
        );
        assert_eq!(c.spec.scope, "Namespaced");
        let names = &c.spec.names;
        assert_eq!(names.kind, "NetworkAttachmentDefinition");
        assert_eq!(
            names.short_names.as_deref(),
            Some(&["net-attach-def".to_string(), "nad".to_string()][..])
        );
        let v = &c.spec.versions[0];
        assert_eq!(v.name, "v1");
        assert!(v.served && v.storage);
        let schema = v
            .schema
            .as_ref()
            .unwrap()
            .open_api_v3_schema
            .as_ref()
            .unwrap();
        assert!(schema.required.is_none(), "spec must be optional");
        let spec = &schema.properties.as_ref().unwrap()["spec"];
        assert!(
            spec.required.as_ref().is_none_or(|r| r.is_empty()),
            "config must be optional"
        );
        assert_eq!(
            spec.properties.as_ref().unwrap()["config"].type_.as_deref(),
            Some("string")
        );
    }

    #[test]
    fn nad_object_table() {
        let rows: &[(&str, &str, Option<&str>)] = &[
            (
                "with config",
                r#"{"metadata":{"name":"a"},"spec":{"config":"{\"type\":\"x\"}"}}"#,
                Some(r#"{"type":"x"}"#),
            ),
            ("no spec", r#"{"metadata":{"name":"a"}}"#, None),
            ("empty spec", r#"{"metadata":{"name":"a"},"spec":{}}"#, None),
            (
                "blank config",
                r#"{"metadata":{"name":"a"},"spec":{"config":"  "}}"#,
                None,
            ),
        ];
        for (name, json, want) in rows {
            let n: NadObject = serde_json::from_str(json).unwrap();
            assert_eq!(n.config(), *want, "{name}");
        }
    }
}
