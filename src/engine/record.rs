//! What the journal holds for one container: the plan, the runtime's parameters, and each
//! attachment's cached result.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::cni::conf::{ConfError, ConfList};
use crate::plan::Attachment;

/// Version of the record format.
pub const FORMAT: u32 = 1;

/// The journal record of one container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// Record format version.
    pub format: u32,
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// `CNI_NETNS` at ADD time.
    pub netns: String,
    /// The runtime's `CNI_IFNAME`.
    pub ifname: String,
    /// `CNI_ARGS` given to delegates.
    pub cni_args: String,
    /// True once ADD has succeeded as a whole.
    pub complete: bool,
    /// Attachments in ADD order.
    pub attachments: Vec<Entry>,
}

/// One attachment in the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// The network's name.
    pub network: String,
    /// The interface in the pod.
    pub ifname: String,
    /// True for the cluster network.
    #[serde(default)]
    pub cluster: bool,
    /// The delegate config, as run.
    pub conf: Value,
    /// `runtimeConfig` as given to the delegate.
    #[serde(default)]
    pub runtime_config: Map<String, Value>,
    /// `CNI_ARGS` given to this attachment's delegates.
    #[serde(default)]
    pub cni_args: String,
    /// Gateways this interface carries the default route for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub default_route: Vec<String>,
    /// The delegate's ADD result (in the delegate's version), once it returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
}

impl Record {
    /// A record for a plan, before anything ran.
    pub fn new(
        container_id: &str,
        netns: &str,
        ifname: &str,
        cni_args: &str,
        plan: &[Attachment],
    ) -> Record {
        Record {
            format: FORMAT,
            container_id: container_id.to_string(),
            netns: netns.to_string(),
            ifname: ifname.to_string(),
            cni_args: cni_args.to_string(),
            complete: false,
            attachments: plan
                .iter()
                .map(|a| Entry {
                    network: a.network.clone(),
                    ifname: a.ifname.clone(),
                    cluster: a.cluster,
                    conf: a.conf.to_value(),
                    runtime_config: a.runtime_config.clone(),
                    cni_args: a.cni_args.clone(),
                    default_route: a.default_route.clone(),
                    result: None,
                })
                .collect(),
        }
    }

    /// After a failed DEL or rollback of attachments `0..=upto`: keeps only those among them
    /// that were not removed cleanly (`cleaned` holds their indexes), for the runtime's retry.
    pub fn keep_for_retry(&mut self, upto: usize, cleaned: &[usize]) {
        self.complete = false;
        let mut i = 0;
        self.attachments.retain(|_| {
            let keep = i <= upto && !cleaned.contains(&i);
            i += 1;
            keep
        });
    }

    /// The attachments back as plan entries, with their cached results.
    ///
    /// # Errors
    /// A stored config that is no longer valid (the record is then treated as corrupt).
    pub fn attachments(&self) -> Result<Vec<(Attachment, Option<Value>)>, ConfError> {
        self.attachments
            .iter()
            .map(|e| {
                let conf = ConfList::from_value(
                    e.conf.clone(),
                    &format!("journal entry {}", e.ifname),
                    Some(&e.network),
                )?;
                Ok((
                    Attachment {
                        network: e.network.clone(),
                        ifname: e.ifname.clone(),
                        conf,
                        runtime_config: e.runtime_config.clone(),
                        cluster: e.cluster,
                        cni_args: if e.cni_args.is_empty() {
                            self.cni_args.clone()
                        } else {
                            e.cni_args.clone()
                        },
                        default_route: e.default_route.clone(),
                    },
                    e.result.clone(),
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keep_for_retry_table() {
        let entry = |n: &str| Entry {
            network: n.into(),
            ifname: n.into(),
            cluster: false,
            conf: json!({}),
            runtime_config: Map::new(),
            cni_args: String::new(),
            default_route: vec![],
            result: None,
        };
        let rows: &[(&str, usize, &[usize], &[&str])] = &[
            ("rollback at net1, eth0 cleaned", 1, &[0], &["net1"]),
            ("rollback at eth0, nothing cleaned", 0, &[], &["eth0"]),
            ("DEL, net2 and eth0 cleaned", usize::MAX, &[2, 0], &["net1"]),
            ("DEL, all cleaned", usize::MAX, &[0, 1, 2], &[]),
        ];
        for (name, upto, cleaned, want) in rows {
            let mut r = Record {
                format: FORMAT,
                container_id: "c".into(),
                netns: String::new(),
                ifname: "eth0".into(),
                cni_args: String::new(),
                complete: true,
                attachments: vec![entry("eth0"), entry("net1"), entry("net2")],
            };
            r.keep_for_retry(*upto, cleaned);
            let got: Vec<&str> = r.attachments.iter().map(|e| e.ifname.as_str()).collect();
            assert_eq!(&got, want, "{name}");
            assert!(!r.complete, "{name}");
        }
    }
}
