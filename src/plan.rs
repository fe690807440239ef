//! Pure planning: resolved networks + the runtime's request -> the ordered attachments to run
//! and their schedule, with every check that can be made before anything touches the kernel.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::cni::conf::ConfList;
use crate::cni::env::{IfnameError, encode_args, validate_ifname};
use crate::k8s::selection::Selection;

/// A network resolved to its config, with the pod's request for it (if it came from the pod).
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    /// Its name in network-status: `namespace/name` for a NAD, the config's name for a file.
    pub status_name: String,
    /// The delegate config.
    pub conf: ConfList,
    /// The pod's selection element, for networks the pod asked for.
    pub selection: Option<Selection>,
}

impl Network {
    /// A network from a config file (cluster network, default networks).
    pub fn from_conf(conf: ConfList) -> Network {
        Network {
            status_name: conf.name.clone(),
            conf,
            selection: None,
        }
    }
}

/// Where an attachment's network came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// The cluster network (`clusterNetwork`, `delegates[0]`, or the pod's default-network
    /// override): the runtime's `CNI_IFNAME`, the runtime's result.
    Cluster,
    /// A network of the configuration every pod gets (`defaultNetworks`, `delegates[1..]`).
    Default,
    /// A network the pod's annotation selected.
    Selected,
}

/// One network to attach to the pod: what to run and under which interface name.
#[derive(Debug, Clone, PartialEq)]
pub struct Attachment {
    /// The network's name as network-status shows it.
    pub network: String,
    /// The interface the delegate creates in the pod (`CNI_IFNAME` for the delegate).
    pub ifname: String,
    /// The delegate's config (with the selection's `cni-args` merged into `args.cni`).
    pub conf: ConfList,
    /// `runtimeConfig` for this attachment (filtered per plugin by its capabilities at run time).
    pub runtime_config: Map<String, Value>,
    /// Where the network came from (the first attachment is the cluster network).
    pub origin: Origin,
    /// `CNI_ARGS` for this attachment's delegates.
    pub cni_args: String,
    /// Gateways this interface must carry the default route for (one per family at most).
    pub default_route: Vec<String>,
}

/// What is wrong with a plan; nothing has run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// An invalid interface name.
    #[error("network {network:?} ({ifname}): {source}")]
    Ifname {
        /// The network.
        network: String,
        /// The interface name as requested.
        ifname: String,
        /// What is wrong with it.
        source: IfnameError,
    },
    /// Two attachments on one interface.
    #[error("network {network:?} ({ifname}): interface name {ifname:?} is used twice in this pod")]
    DuplicateIfname {
        /// The second network on it.
        network: String,
        /// The interface.
        ifname: String,
    },
    /// Two default routes of one IP family.
    #[error(
        "network {network:?} ({ifname}): default-route {gateway} conflicts with default-route on \
         {other}: at most one per IP family"
    )]
    DefaultRoute {
        /// The network asking for the second one.
        network: String,
        /// Its interface.
        ifname: String,
        /// The gateway asked for.
        gateway: String,
        /// The interface that already has the family's default route.
        other: String,
    },
    /// A capability the pod asks for that no plugin of the network declares (strict mode).
    #[error(
        "network {network:?} ({ifname}): the pod asks for {field:?} but no plugin of this \
         network declares the {capability:?} capability (strictCapabilities is on)"
    )]
    Capability {
        /// The network.
        network: String,
        /// Its interface.
        ifname: String,
        /// The selection field.
        field: &'static str,
        /// The capability (runtimeConfig key) it needs.
        capability: &'static str,
    },
}

/// Plugin types whose ADD and DEL touch only their own interface in the pod (and its IPAM).
const SELF_CONTAINED: [&str; 4] = ["macvlan", "ipvlan", "vlan", "host-device"];
/// IPAM types whose routes come only from their config (`dhcp` takes them from a server).
const CONFIGURED_ROUTES: [&str; 3] = ["host-local", "static", "whereabouts"];

impl Attachment {
    /// True for the cluster network.
    pub fn is_cluster(&self) -> bool {
        self.origin == Origin::Cluster
    }

    /// True when running this attachment at the same time as others cannot change the outcome:
    /// one plugin (no chain: `tuning`, `route-override` or `sbr` may act on other interfaces or
    /// on the pod's routes) of a type that only makes its own interface (its master, if any,
    /// is on the node, not in the pod), and IPAM that cannot hand out a default route (which
    /// would race another network's).
    pub fn self_contained(&self) -> bool {
        let [plugin] = self.conf.plugins.as_slice() else {
            return false;
        };
        let ty = plugin
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        // `linkInContainer`: the master is an interface in the pod, maybe one still being made.
        let in_pod = plugin.get("linkInContainer").and_then(Value::as_bool) == Some(true);
        if self.is_cluster() || in_pod || !SELF_CONTAINED.contains(&ty) {
            return false;
        }
        let Some(ipam) = plugin.get("ipam") else {
            return true;
        };
        let Some(ipam) = ipam.as_object() else {
            return false;
        };
        if ipam.is_empty() {
            return true;
        }
        let ipam_type = ipam.get("type").and_then(Value::as_str).unwrap_or_default();
        let default_route = |r: &Value| {
            matches!(
                r.get("dst").and_then(Value::as_str),
                Some("0.0.0.0/0" | "::/0" | "0.0.0.0/0.0.0.0")
            )
        };
        let routes = ipam.get("routes").map(|r| r.as_array());
        CONFIGURED_ROUTES.contains(&ipam_type)
            && match routes {
                None => true,
                Some(Some(list)) => !list.iter().any(default_route),
                Some(None) => false,
            }
    }
}

/// The schedule of a plan: for each attachment, the attachments whose ADD must be done before
/// it starts (DEL runs it backwards).
///
/// Without `parallel`, Multus's strict order: each waits for the one before it. With it, a
/// [self-contained](Attachment::self_contained) attachment waits only for the attachments
/// before it that are neither self-contained nor the cluster network (so it starts with the
/// cluster network and beside its self-contained neighbours), and any other attachment waits
/// for every attachment before it.
pub fn schedule(plan: &[Attachment], parallel: bool) -> Vec<Vec<usize>> {
    (0..plan.len())
        .map(|i| match (i, parallel) {
            (0, _) => Vec::new(),
            (_, false) => vec![i - 1],
            (_, true) if plan[i].self_contained() => {
                (1..i).filter(|&j| !plan[j].self_contained()).collect()
            }
            (_, true) => (0..i).collect(),
        })
        .collect()
}

/// What the plan is built from.
#[derive(Debug, Clone)]
pub struct PlanInput<'a> {
    /// The cluster network (possibly the pod's `default-network` override).
    pub cluster: Network,
    /// The configuration's default networks, in order.
    pub defaults: Vec<Network>,
    /// The pod's selections, in order.
    pub selected: Vec<Network>,
    /// The runtime's `CNI_IFNAME`.
    pub runtime_ifname: &'a str,
    /// The runtime's `runtimeConfig` (for the cluster network).
    pub runtime_config: &'a Map<String, Value>,
    /// The runtime's `CNI_ARGS`.
    pub runtime_args: &'a [(String, String)],
    /// Enforce the NPWG capability rule.
    pub strict_capabilities: bool,
}

/// Selection fields and the capability (runtimeConfig key) each one needs.
const CAPABILITY_FIELDS: &[(&str, &str)] = &[
    ("ips", "ips"),
    ("mac", "mac"),
    ("portMappings", "portMappings"),
    ("bandwidth", "bandwidth"),
    ("infiniband-guid", "infinibandGUID"),
    ("deviceID", "deviceID"),
];

/// Plans the attachments: the cluster network on the runtime's ifname, then each default and
/// selected network on its requested interface or `net<N>` where N is its position (Multus
/// numbering).
///
/// # Errors
/// [`PlanError`] naming the network and the problem: an invalid or duplicate interface name,
/// more than one default route per family, a capability no plugin declares (strict mode).
pub fn plan(input: PlanInput<'_>) -> Result<Vec<Attachment>, PlanError> {
    let mut seen = HashSet::new();
    let mut routes_v4 = None::<String>;
    let mut routes_v6 = None::<String>;
    let all = std::iter::once((Origin::Cluster, input.cluster))
        .chain(input.defaults.into_iter().map(|n| (Origin::Default, n)))
        .chain(input.selected.into_iter().map(|n| (Origin::Selected, n)));
    let mut out = Vec::new();
    for (i, (origin, net)) in all.enumerate() {
        let cluster = origin == Origin::Cluster;
        let sel = net.selection.as_ref();
        let ifname = match (cluster, sel.and_then(|s| s.interface.clone())) {
            (true, _) => input.runtime_ifname.to_string(),
            (false, Some(name)) => name,
            (false, None) => format!("net{i}"),
        };
        let network = net.status_name.clone();
        validate_ifname(&ifname).map_err(|source| PlanError::Ifname {
            network: network.clone(),
            ifname: ifname.clone(),
            source,
        })?;
        if !seen.insert(ifname.clone()) {
            return Err(PlanError::DuplicateIfname { network, ifname });
        }
        let mut runtime_config = if cluster {
            input.runtime_config.clone()
        } else {
            Map::new()
        };
        let mut conf = net.conf.clone();
        let mut args: Vec<(String, String)> = input.runtime_args.to_vec();
        let mut default_route = Vec::new();
        if let Some(s) = sel {
            let requested = selection_runtime_config(s);
            if input.strict_capabilities
                && let Some(&(field, capability)) = missing_capabilities(&conf, s).first()
            {
                return Err(PlanError::Capability {
                    network,
                    ifname,
                    field,
                    capability,
                });
            }
            runtime_config.extend(requested);
            if !s.ips.is_empty() {
                set_arg(&mut args, "IP", &s.ips.join(","));
            }
            if let Some(mac) = &s.mac {
                set_arg(&mut args, "MAC", mac);
            }
            if let Some(extra) = &s.cni_args {
                merge_cni_args(&mut conf, extra);
            }
            for gw in &s.default_route {
                let slot = if crate::cni::ip::text_is_v6(gw) {
                    &mut routes_v6
                } else {
                    &mut routes_v4
                };
                if let Some(other) = slot {
                    return Err(PlanError::DefaultRoute {
                        network,
                        ifname,
                        gateway: gw.clone(),
                        other: other.clone(),
                    });
                }
                *slot = Some(ifname.clone());
                default_route.push(gw.clone());
            }
        }
        if !args.iter().any(|(k, _)| k == "IgnoreUnknown") && (!cluster || sel.is_some()) {
            args.insert(0, ("IgnoreUnknown".into(), "1".into()));
        }
        out.push(Attachment {
            network,
            ifname,
            conf,
            runtime_config,
            origin,
            cni_args: encode_args(&args),
            default_route,
        });
    }
    Ok(out)
}

fn set_arg(args: &mut Vec<(String, String)>, key: &str, value: &str) {
    args.retain(|(k, _)| k != key);
    args.push((key.to_string(), value.to_string()));
}

/// The selection fields (annotation spelling) whose capability no plugin of `conf` declares,
/// each with that capability's runtimeConfig key: ADD (strict) and `plexus lint` use this.
pub fn missing_capabilities(conf: &ConfList, s: &Selection) -> Vec<(&'static str, &'static str)> {
    let requested = selection_runtime_config(s);
    CAPABILITY_FIELDS
        .iter()
        .filter(|(_, cap)| requested.contains_key(*cap) && !declares(conf, cap))
        .copied()
        .collect()
}

/// True when some plugin of `conf` declares `capabilities: {cap: true}`.
pub fn declares(conf: &ConfList, cap: &str) -> bool {
    conf.plugins.iter().any(|p| {
        p.get("capabilities")
            .and_then(|c| c.get(cap))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    })
}

/// The runtimeConfig keys a selection element asks for.
pub fn selection_runtime_config(s: &Selection) -> Map<String, Value> {
    let mut m = Map::new();
    if !s.ips.is_empty() {
        m.insert("ips".into(), Value::from(s.ips.clone()));
    }
    if let Some(mac) = &s.mac {
        m.insert("mac".into(), Value::from(mac.clone()));
    }
    if !s.port_mappings.is_empty() {
        m.insert("portMappings".into(), Value::Array(s.port_mappings.clone()));
    }
    if let Some(b) = &s.bandwidth {
        m.insert("bandwidth".into(), b.clone());
    }
    if let Some(g) = &s.infiniband_guid {
        m.insert("infinibandGUID".into(), Value::from(g.clone()));
    }
    if let Some(d) = &s.device_id {
        m.insert("deviceID".into(), Value::from(d.clone()));
    }
    m
}

/// Merges a selection's `cni-args` into every plugin's `args.cni`.
fn merge_cni_args(conf: &mut ConfList, extra: &Map<String, Value>) {
    for p in &mut conf.plugins {
        let args = p.entry("args").or_insert_with(|| Value::Object(Map::new()));
        if !args.is_object() {
            *args = Value::Object(Map::new());
        }
        if let Some(a) = args.as_object_mut() {
            let cni = a.entry("cni").or_insert_with(|| Value::Object(Map::new()));
            if !cni.is_object() {
                *cni = Value::Object(Map::new());
            }
            if let Some(c) = cni.as_object_mut() {
                for (k, v) in extra {
                    c.insert(k.clone(), v.clone());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
