//! Pure planning: resolved networks + the runtime's request -> the ordered attachments to run,
//! with every check that can be made before anything touches the kernel.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::cni::conf::ConfList;
use crate::cni::env::validate_ifname;

/// One network to attach to the pod: what to run and under which interface name.
#[derive(Debug, Clone, PartialEq)]
pub struct Attachment {
    /// The network's name (its config's `name`).
    pub network: String,
    /// The interface the delegate creates in the pod (`CNI_IFNAME` for the delegate).
    pub ifname: String,
    /// The delegate's config.
    pub conf: ConfList,
    /// `runtimeConfig` for this attachment (filtered per plugin by its capabilities at run time).
    pub runtime_config: Map<String, Value>,
    /// True for the cluster network (the first attachment).
    pub cluster: bool,
}

/// Plans the attachments: the first network is the cluster network on `runtime_ifname` with the
/// runtime's `runtimeConfig`; the others get `net1`, `net2`, ... by position (Multus numbering).
///
/// # Errors
/// A sentence naming the problem: no networks, an invalid or duplicate interface name.
pub fn plan(
    networks: Vec<ConfList>,
    runtime_ifname: &str,
    runtime_config: &Map<String, Value>,
) -> Result<Vec<Attachment>, String> {
    if networks.is_empty() {
        return Err("no networks to attach".into());
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(networks.len());
    for (i, conf) in networks.into_iter().enumerate() {
        let cluster = i == 0;
        let ifname = if cluster {
            runtime_ifname.to_string()
        } else {
            format!("net{i}")
        };
        validate_ifname(&ifname).map_err(|e| format!("network {:?}: {e}", conf.name))?;
        if !seen.insert(ifname.clone()) {
            return Err(format!(
                "network {:?}: interface name {ifname:?} is used twice in this pod",
                conf.name
            ));
        }
        out.push(Attachment {
            network: conf.name.clone(),
            ifname,
            runtime_config: if cluster {
                runtime_config.clone()
            } else {
                Map::new()
            },
            conf,
            cluster,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn net(name: &str) -> ConfList {
        ConfList::from_value(
            json!({"cniVersion":"1.0.0","name":name,"type":"bridge"}),
            "t",
            None,
        )
        .unwrap()
    }

    #[test]
    fn plan_table() {
        let rc = json!({"portMappings":[]}).as_object().unwrap().clone();
        let rows: &[(&str, Vec<ConfList>, &str, Result<Vec<&str>, &str>)] = &[
            ("cluster only", vec![net("a")], "eth0", Ok(vec!["eth0"])),
            (
                "numbering",
                vec![net("a"), net("b"), net("c")],
                "eth0",
                Ok(vec!["eth0", "net1", "net2"]),
            ),
            (
                "same network twice",
                vec![net("a"), net("b"), net("b")],
                "eth0",
                Ok(vec!["eth0", "net1", "net2"]),
            ),
            (
                "clash with runtime ifname",
                vec![net("a"), net("b")],
                "net1",
                Err("used twice"),
            ),
            ("empty", vec![], "eth0", Err("no networks")),
        ];
        for (name, nets, ifname, want) in rows {
            let got = plan(nets.clone(), ifname, &rc);
            match (got, want) {
                (Ok(p), Ok(names)) => {
                    let got: Vec<&str> = p.iter().map(|a| a.ifname.as_str()).collect();
                    assert_eq!(&got, names, "{name}");
                    assert!(
                        p[0].cluster && p.iter().skip(1).all(|a| !a.cluster),
                        "{name}"
                    );
                    assert_eq!(p[0].runtime_config, rc, "{name}");
                    assert!(
                        p.iter().skip(1).all(|a| a.runtime_config.is_empty()),
                        "{name}"
                    );
                }
                (Err(e), Err(frag)) => assert!(e.contains(frag), "{name}: {e}"),
                (got, _) => panic!("{name}: {got:?}"),
            }
        }
    }
}
