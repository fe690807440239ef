//! Pure: what a running pod's selected networks become when its annotation changes. An
//! attachment's identity is its network (`namespace/name`) and its interface; the cluster
//! network and the default networks are never touched; a network without an explicit interface
//! keeps the one it has, or gets the lowest free `net<N>`; removing one never renames another.

use crate::plan::{Network, Origin};
use crate::txn::Step;

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diff {
    /// (step, desired): the attachment stays.
    pub keep: Vec<(usize, usize)>,
    /// (desired, interface): a new attachment.
    pub add: Vec<(usize, String)>,
    /// Steps to remove (in step order).
    pub remove: Vec<usize>,
    /// Desired networks that cannot be attached, and why.
    pub refused: Vec<(usize, Refusal)>,
}

/// Why a desired network is not attached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Its interface is the cluster network's or a default network's.
    #[error(
        "interface {0} belongs to the cluster network or a default network, which hot-plug never touches"
    )]
    Reserved(String),
    /// Another desired network asks for the same interface.
    #[error("interface {0} is asked for twice")]
    Twice(String),
}

/// Matches the pod's desired selected networks (`desired`, in annotation order) to the steps of
/// its record.
pub fn diff(steps: &[Step], desired: &[Network]) -> Diff {
    let mut out = Diff::default();
    let selected = |i: usize| steps[i].origin == Origin::Selected && steps[i].needs_release();
    let reserved: Vec<&str> = steps
        .iter()
        .filter(|s| s.origin != Origin::Selected && s.needs_release())
        .map(|s| s.ifname.as_str())
        .collect();
    let mut matched = vec![false; steps.len()];
    let mut taken: Vec<String> = Vec::new();
    // Explicit interfaces first: they decide which names are free.
    for (d, net) in desired.iter().enumerate() {
        let Some(ifname) = net.selection.as_ref().and_then(|s| s.interface.clone()) else {
            continue;
        };
        if reserved.contains(&ifname.as_str()) {
            out.refused.push((d, Refusal::Reserved(ifname)));
            continue;
        }
        if taken.contains(&ifname) {
            out.refused.push((d, Refusal::Twice(ifname)));
            continue;
        }
        taken.push(ifname.clone());
        let same = (0..steps.len()).find(|&i| selected(i) && steps[i].ifname == ifname);
        match same {
            Some(i) if steps[i].network == net.status_name => {
                matched[i] = true;
                out.keep.push((i, d));
            }
            // Another network behind this interface (or none): it is added; the old one, if
            // any, is not matched and so removed.
            _ => out.add.push((d, ifname)),
        }
    }
    // Then networks without an interface: the one they have, or the lowest free net<N>.
    for (d, net) in desired.iter().enumerate() {
        if net
            .selection
            .as_ref()
            .is_some_and(|s| s.interface.is_some())
        {
            continue;
        }
        let existing = (0..steps.len()).find(|&i| {
            selected(i)
                && !matched[i]
                && steps[i].network == net.status_name
                && !taken.contains(&steps[i].ifname)
        });
        match existing {
            Some(i) => {
                matched[i] = true;
                taken.push(steps[i].ifname.clone());
                out.keep.push((i, d));
            }
            None => {
                // Never a name some step has now: one being removed is only free once its DEL
                // has succeeded, which this pass cannot know yet.
                let used = |name: &str| {
                    reserved.contains(&name)
                        || taken.iter().any(|t| t == name)
                        || (0..steps.len()).any(|i| selected(i) && steps[i].ifname == name)
                };
                let ifname = (1..)
                    .map(|n| format!("net{n}"))
                    .find(|n| !used(n))
                    .unwrap_or_default();
                taken.push(ifname.clone());
                out.add.push((d, ifname));
            }
        }
    }
    out.remove = (0..steps.len())
        .filter(|&i| selected(i) && !matched[i])
        .collect();
    out.keep.sort_unstable();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cni::conf::ConfList;
    use crate::k8s::selection::Selection;
    use crate::txn::State;
    use serde_json::{Map, json};

    fn step(network: &str, ifname: &str, origin: Origin) -> Step {
        Step {
            network: network.into(),
            ifname: ifname.into(),
            origin,
            conf: json!({}),
            runtime_config: Map::new(),
            cni_args: String::new(),
            default_route: vec![],
            after: vec![],
            state: State::Added,
            result: None,
            error: None,
        }
    }

    fn want(network: &str, ifname: Option<&str>) -> Network {
        Network {
            status_name: network.into(),
            conf: ConfList::from_value(
                json!({"cniVersion":"1.0.0","name":"x","type":"macvlan"}),
                "t",
                None,
            )
            .unwrap(),
            selection: Some(Selection {
                interface: ifname.map(str::to_string),
                ..Selection::default()
            }),
        }
    }

    fn pod(selected: &[(&str, &str)]) -> Vec<Step> {
        let mut v = vec![
            step("cluster", "eth0", Origin::Cluster),
            step("default", "net1", Origin::Default),
        ];
        v.extend(selected.iter().map(|(n, i)| step(n, i, Origin::Selected)));
        v
    }

    #[test]
    fn diff_table() {
        type Row<'a> = (&'a str, Vec<Step>, Vec<Network>, Diff);
        let rows: Vec<Row> = vec![
            (
                "nothing changes",
                pod(&[("ns/a", "net2")]),
                vec![want("ns/a", None)],
                Diff {
                    keep: vec![(2, 0)],
                    ..Diff::default()
                },
            ),
            (
                "add one without a name: the lowest free netN",
                pod(&[("ns/a", "net2")]),
                vec![want("ns/a", None), want("ns/b", None)],
                Diff {
                    keep: vec![(2, 0)],
                    add: vec![(1, "net3".into())],
                    ..Diff::default()
                },
            ),
            (
                "remove one: the others keep their names",
                pod(&[("ns/a", "net2"), ("ns/b", "net3")]),
                vec![want("ns/b", None)],
                Diff {
                    keep: vec![(3, 0)],
                    remove: vec![2],
                    ..Diff::default()
                },
            ),
            (
                "add and remove in one pass; a name being freed is not reused yet",
                pod(&[("ns/a", "net2"), ("ns/b", "net3")]),
                vec![want("ns/b", None), want("ns/c", None)],
                Diff {
                    keep: vec![(3, 0)],
                    add: vec![(1, "net4".into())],
                    remove: vec![2],
                    ..Diff::default()
                },
            ),
            (
                "swap the network behind an interface",
                pod(&[("ns/a", "data0")]),
                vec![want("ns/b", Some("data0"))],
                Diff {
                    add: vec![(0, "data0".into())],
                    remove: vec![2],
                    ..Diff::default()
                },
            ),
            (
                "the same NAD twice",
                pod(&[("ns/a", "net2")]),
                vec![want("ns/a", None), want("ns/a", None)],
                Diff {
                    keep: vec![(2, 0)],
                    add: vec![(1, "net3".into())],
                    ..Diff::default()
                },
            ),
            (
                "an explicit name the cluster network has",
                pod(&[]),
                vec![want("ns/a", Some("eth0"))],
                Diff {
                    refused: vec![(0, Refusal::Reserved("eth0".into()))],
                    ..Diff::default()
                },
            ),
            (
                "a pod created without the annotation",
                pod(&[]),
                vec![want("ns/a", None)],
                Diff {
                    add: vec![(0, "net2".into())],
                    ..Diff::default()
                },
            ),
            (
                "an explicit name taken by an unnamed one that stays elsewhere",
                pod(&[("ns/a", "net2")]),
                vec![want("ns/b", Some("net2")), want("ns/a", None)],
                Diff {
                    add: vec![(0, "net2".into()), (1, "net3".into())],
                    remove: vec![2],
                    ..Diff::default()
                },
            ),
        ];
        for (name, steps, desired, want) in rows {
            assert_eq!(diff(&steps, &desired), want, "{name}");
        }
    }
}
