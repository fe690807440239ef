//! Records written by plexus 0.1.0 (`format` 1: a list of attachments with cached results), read
//! into today's [`Record`] so a node upgraded under running pods DELs them cleanly.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::record::{FORMAT, PodId, Record, RecordError, State, Step};
use crate::plan::Origin;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct V1 {
    container_id: String,
    #[serde(default)]
    netns: String,
    #[serde(default)]
    ifname: String,
    #[serde(default)]
    cni_args: String,
    #[serde(default)]
    complete: bool,
    #[serde(default)]
    attachments: Vec<V1Entry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct V1Entry {
    network: String,
    ifname: String,
    #[serde(default)]
    cluster: bool,
    conf: Value,
    #[serde(default)]
    runtime_config: Map<String, Value>,
    #[serde(default)]
    cni_args: String,
    #[serde(default)]
    default_route: Vec<String>,
    #[serde(default)]
    result: Option<Value>,
}

/// A format-1 record as today's record. 0.1.0 ran attachments strictly in order, so each step
/// waits for the one before it (DEL then runs strictly in reverse). Where a network came from
/// was not stored: the cluster network was marked, a `namespace/name` network is a NAD the pod
/// selected, anything else a default network.
///
/// # Errors
/// [`RecordError::Decode`] when the line is not a format-1 record.
pub fn decode_v1(line: &[u8]) -> Result<Record, RecordError> {
    let v1: V1 = serde_json::from_slice(line).map_err(|e| RecordError::Decode(e.to_string()))?;
    let pod = pod_from_args(&v1.cni_args);
    let steps = v1
        .attachments
        .into_iter()
        .enumerate()
        .map(|(i, e)| Step {
            origin: match (e.cluster, e.network.contains('/')) {
                (true, _) => Origin::Cluster,
                (false, true) => Origin::Selected,
                (false, false) => Origin::Default,
            },
            network: e.network,
            ifname: e.ifname,
            conf: e.conf,
            runtime_config: e.runtime_config,
            cni_args: if e.cni_args.is_empty() {
                v1.cni_args.clone()
            } else {
                e.cni_args
            },
            default_route: e.default_route,
            after: i.checked_sub(1).into_iter().collect(),
            state: if e.result.is_some() {
                State::Added
            } else {
                State::Pending
            },
            result: e.result,
            error: None,
        })
        .collect();
    Ok(Record {
        format: FORMAT,
        container_id: v1.container_id,
        netns: v1.netns,
        ifname: v1.ifname,
        cni_args: v1.cni_args,
        pod,
        created: 0,
        complete: v1.complete,
        steps,
    })
}

/// The pod named in a `CNI_ARGS` string.
fn pod_from_args(args: &str) -> Option<PodId> {
    let get = |k: &str| {
        args.split(';')
            .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='))
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    Some(PodId {
        namespace: get("K8S_POD_NAMESPACE")?,
        name: get("K8S_POD_NAME")?,
        uid: get("K8S_POD_UID"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The journal plexus 0.1.0 wrote for a real ADD (bridge + tuning cluster network, a macvlan
    /// with host-local), kept as it was written: every line of it, the last the complete record.
    const GOLDEN: &str = include_str!("../../tests/golden/journal-format1-plexus-0.1.0.json");

    #[test]
    fn the_golden_format1_record_reads_as_steps() {
        let line = crate::journal::newest_line(GOLDEN.as_bytes()).unwrap();
        let r = Record::decode(line).unwrap();
        assert!(r.complete);
        assert_eq!(r.container_id, "golden0123");
        assert_eq!(
            r.pod,
            Some(PodId {
                namespace: "demo".into(),
                name: "web".into(),
                uid: Some("7d1c2b7a-0000-4000-8000-000000000001".into()),
            })
        );
        let got: Vec<(&str, &str, Origin, State, Vec<usize>, String)> = r
            .steps
            .iter()
            .map(|s| {
                (
                    s.network.as_str(),
                    s.ifname.as_str(),
                    s.origin,
                    s.state,
                    s.after.clone(),
                    s.types(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "cluster",
                    "eth0",
                    Origin::Cluster,
                    State::Added,
                    vec![],
                    "bridge,tuning".to_string()
                ),
                (
                    "storage",
                    "net1",
                    Origin::Default,
                    State::Added,
                    vec![0],
                    "macvlan".to_string()
                ),
            ]
        );
        assert_eq!(
            r.steps[1].result.as_ref().unwrap()["ips"][0]["address"],
            "10.78.0.2/24"
        );
        // Every line of the file is a record of its own (the versions ADD wrote).
        for line in GOLDEN.lines().filter(|l| !l.trim().is_empty()) {
            Record::decode(line.as_bytes()).unwrap();
        }
    }
}
