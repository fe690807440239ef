//! Device-plugin devices allocated to a pod, read from the kubelet's checkpoint file, for NADs
//! annotated with `k8s.v1.cni.cncf.io/resourceName` (SR-IOV and the like), as Multus does.

use serde_json::Value;

/// Why the kubelet's checkpoint cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// Not JSON.
    #[error("not JSON: {0}")]
    Json(String),
    /// No `Data.PodDeviceEntries`.
    #[error("no Data.PodDeviceEntries")]
    NoEntries,
}

/// Where the kubelet keeps its device-plugin checkpoint.
pub const DEFAULT_CHECKPOINT: &str = "/var/lib/kubelet/device-plugins/kubelet_internal_checkpoint";

/// The device ids of `resource` allocated to the pod with `pod_uid`, in a stable order. Reads
/// both checkpoint shapes: `DeviceIDs` as a list (old kubelets) or as a map of NUMA node to list.
///
/// # Errors
/// [`CheckpointError`] when the checkpoint is not JSON or lacks `Data.PodDeviceEntries`.
pub fn pod_devices(
    checkpoint: &[u8],
    pod_uid: &str,
    resource: &str,
) -> Result<Vec<String>, CheckpointError> {
    let v: Value =
        serde_json::from_slice(checkpoint).map_err(|e| CheckpointError::Json(e.to_string()))?;
    let entries = v
        .get("Data")
        .and_then(|d| d.get("PodDeviceEntries"))
        .ok_or(CheckpointError::NoEntries)?;
    let mut out = Vec::new();
    for e in entries.as_array().map(Vec::as_slice).unwrap_or_default() {
        if e.get("PodUID").and_then(Value::as_str) != Some(pod_uid)
            || e.get("ResourceName").and_then(Value::as_str) != Some(resource)
        {
            continue;
        }
        let lists: Vec<&Value> = match e.get("DeviceIDs") {
            Some(Value::Array(_)) => e.get("DeviceIDs").into_iter().collect(),
            Some(Value::Object(m)) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                keys.into_iter().filter_map(|k| m.get(k)).collect()
            }
            _ => Vec::new(),
        };
        for id in lists.into_iter().filter_map(Value::as_array).flatten() {
            if let Some(id) = id.as_str()
                && !out.iter().any(|x| x == id)
            {
                out.push(id.to_string());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_table() {
        let map = br#"{"Data":{"PodDeviceEntries":[
            {"PodUID":"u1","ContainerName":"a","ResourceName":"intel.com/sriov","DeviceIDs":{"1":["0000:03:02.3"],"0":["0000:03:02.1","0000:03:02.2"]}},
            {"PodUID":"u1","ContainerName":"b","ResourceName":"intel.com/sriov","DeviceIDs":{"0":["0000:03:02.1"]}},
            {"PodUID":"u2","ContainerName":"a","ResourceName":"intel.com/sriov","DeviceIDs":{"0":["0000:04:00.1"]}},
            {"PodUID":"u1","ContainerName":"a","ResourceName":"other/res","DeviceIDs":{"0":["x"]}}
        ]},"Checksum":1}"#;
        let list = br#"{"Data":{"PodDeviceEntries":[
            {"PodUID":"u1","ContainerName":"a","ResourceName":"intel.com/sriov","DeviceIDs":["d1","d2"]}]}}"#;
        let rows: &[(&str, &[u8], &str, &str, Result<Vec<&str>, &str>)] = &[
            (
                "numa map, sorted, deduplicated",
                map,
                "u1",
                "intel.com/sriov",
                Ok(vec!["0000:03:02.1", "0000:03:02.2", "0000:03:02.3"]),
            ),
            (
                "other pod",
                map,
                "u2",
                "intel.com/sriov",
                Ok(vec!["0000:04:00.1"]),
            ),
            ("other resource", map, "u1", "other/res", Ok(vec!["x"])),
            (
                "nothing allocated",
                map,
                "u3",
                "intel.com/sriov",
                Ok(vec![]),
            ),
            (
                "old list shape",
                list,
                "u1",
                "intel.com/sriov",
                Ok(vec!["d1", "d2"]),
            ),
            ("not json", b"{", "u1", "r", Err("not JSON")),
            ("no entries", b"{}", "u1", "r", Err("PodDeviceEntries")),
        ];
        for (name, input, uid, res, want) in rows {
            match (pod_devices(input, uid, res), want) {
                (Ok(got), Ok(w)) => assert_eq!(got, *w, "{name}"),
                (Err(e), Err(frag)) => assert!(e.to_string().contains(frag), "{name}: {e}"),
                (got, _) => panic!("{name}: {got:?}"),
            }
        }
    }
}
