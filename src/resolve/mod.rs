//! The one place a pod's networks are decided: plexus's config, the pod (its identity and
//! annotations), its NetworkAttachmentDefinitions and `confDir` in; a validated plan of
//! attachments out. ADD, DEL's rebuild, CHECK, GC, STATUS and `plexus lint` all call it.
//!
//! [`Resolver`] reads only the node's disk (config references, `confDir`); the API calls live in
//! [`fetch`], behind the [`cluster::Cluster`] seam.

pub mod cluster;
mod error;
pub mod fetch;
pub mod refs;

use std::collections::{BTreeMap, HashMap};

use crate::cni::conf::ConfList;
use crate::config::Config;
use crate::k8s::nad::NadObject;
use crate::k8s::pod::PodRef;
use crate::k8s::selection::{self, DEFAULT_NETWORK_ANNOTATION, NETWORKS_ANNOTATION, Selection};
use crate::plan::{self, Attachment, Network, PlanInput};
use cluster::NadKey;
pub use error::{DeviceProblem, NadProblem, ResolveError};
pub use refs::RefError;

/// A network reference of the config, resolved as far as the node's disk allows.
#[derive(Debug, Clone, PartialEq)]
pub enum Ref {
    /// A config on disk (or inline in `delegates`).
    Conf(ConfList),
    /// A NetworkAttachmentDefinition, resolved through the API.
    Nad(NadKey),
}

/// The networks plexus's config gives every pod.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigNetworks {
    /// The cluster network.
    pub cluster: Ref,
    /// The default networks (`delegates[1..]` or `defaultNetworks`), in order.
    pub defaults: Vec<Ref>,
}

/// What the pod's annotations ask for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PodRequest {
    /// `k8s.v1.cni.cncf.io/networks`, in order.
    pub selections: Vec<Selection>,
    /// `v1.multus-cni.io/default-network`.
    pub default_override: Option<Selection>,
}

/// A NAD resolved to its config.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedNad {
    /// The delegate config.
    pub conf: ConfList,
    /// Its `k8s.v1.cni.cncf.io/resourceName`, if any.
    pub resource: Option<String>,
}

/// Where NAD configs come from: the API's answers in ADD, the linted files in `plexus lint`.
pub trait NadSource {
    /// The NAD `key` as a network.
    ///
    /// # Errors
    /// [`ResolveError::Nad`] when it is missing or invalid.
    fn nad(&self, key: &NadKey) -> Result<ResolvedNad, ResolveError>;
}

/// Where the devices of a device-plugin resource allocated to a pod are found.
pub trait DeviceSource {
    /// The device ids of `resource` allocated to the pod `uid`, in a stable order.
    ///
    /// # Errors
    /// [`DeviceProblem`] when they cannot be read.
    fn devices(&self, uid: &str, resource: &str) -> Result<Vec<String>, DeviceProblem>;
}

/// Decides networks for one call.
#[derive(Debug, Clone, Copy)]
pub struct Resolver<'a> {
    cfg: &'a Config,
    runtime_ifname: &'a str,
    runtime_args: &'a [(String, String)],
}

impl<'a> Resolver<'a> {
    /// A resolver for plexus's config and the runtime's `CNI_IFNAME` and `CNI_ARGS`.
    pub fn new(
        cfg: &'a Config,
        runtime_ifname: &'a str,
        runtime_args: &'a [(String, String)],
    ) -> Resolver<'a> {
        Resolver {
            cfg,
            runtime_ifname,
            runtime_args,
        }
    }

    /// The config this resolver works from.
    pub fn config(&self) -> &'a Config {
        self.cfg
    }

    /// The refusal of a network that runs plexus itself: one rule for every network.
    fn not_self(&self, conf: ConfList) -> Result<ConfList, ResolveError> {
        if conf.runs(&self.cfg.self_type) {
            return Err(ResolveError::SelfReference {
                network: conf.name,
                own_type: self.cfg.self_type.clone(),
            });
        }
        Ok(conf)
    }

    fn reference(&self, r: &str) -> Result<Ref, ResolveError> {
        match refs::load(r, &self.cfg.conf_dir, &self.cfg.self_type)? {
            Some(conf) => Ok(Ref::Conf(self.not_self(conf)?)),
            None => Ok(Ref::Nad(self.nad_key(r))),
        }
    }

    fn delegate(&self, i: usize) -> Result<ConfList, ResolveError> {
        let v = self.cfg.delegates.get(i).cloned().unwrap_or_default();
        let conf = ConfList::from_value(v, &format!("delegates[{i}]"), None)
            .map_err(ResolveError::Delegate)?;
        self.not_self(conf)
    }

    /// The cluster network alone (STATUS needs nothing else).
    ///
    /// # Errors
    /// [`ResolveError`] when it is not configured or does not resolve.
    pub fn cluster_network(&self) -> Result<Ref, ResolveError> {
        match &self.cfg.cluster_network {
            Some(r) => self.reference(r),
            None if !self.cfg.delegates.is_empty() => Ok(Ref::Conf(self.delegate(0)?)),
            None => Err(ResolveError::NoClusterNetwork),
        }
    }

    /// The cluster network and the default networks every pod gets.
    ///
    /// # Errors
    /// [`ResolveError`] for the first that does not resolve or is invalid.
    pub fn config_networks(&self) -> Result<ConfigNetworks, ResolveError> {
        let cluster = self.cluster_network()?;
        let mut defaults = Vec::new();
        if self.cfg.cluster_network.is_none() {
            for i in 1..self.cfg.delegates.len() {
                defaults.push(Ref::Conf(self.delegate(i)?));
            }
        }
        for d in &self.cfg.default_networks {
            defaults.push(self.reference(d)?);
        }
        Ok(ConfigNetworks { cluster, defaults })
    }

    /// The plan the configuration alone gives a container (no pod, or the pod unknown): the
    /// cluster network and the default networks, all of them configs on disk.
    ///
    /// # Errors
    /// [`ResolveError::NoApiAccess`] when one of them names a NAD, else as
    /// [`Resolver::config_networks`] and [`plan::plan`].
    pub fn config_plan(&self) -> Result<Vec<Attachment>, ResolveError> {
        let nets = self.config_networks()?;
        let (mut confs, mut nads) = (Vec::new(), Vec::new());
        for r in std::iter::once(nets.cluster).chain(nets.defaults) {
            match r {
                Ref::Conf(c) => confs.push(Network::from_conf(c)),
                Ref::Nad((ns, n)) => nads.push(format!("{ns}/{n}")),
            }
        }
        if !nads.is_empty() {
            return Err(ResolveError::NoApiAccess {
                pod: None,
                wanted: nads,
            });
        }
        let mut it = confs.into_iter();
        let cluster = it.next().ok_or(ResolveError::NoClusterNetwork)?;
        self.plan(None, cluster, it.collect(), Vec::new())
    }

    /// The first attachment of every plan without a default-network override: the cluster
    /// network, when it is a config on disk (so it can start before the pod is read).
    ///
    /// # Errors
    /// As [`plan::plan`].
    pub fn cluster_attachment(&self, conf: &ConfList) -> Result<Attachment, ResolveError> {
        let mut p = self.plan(
            None,
            Network::from_conf(conf.clone()),
            Vec::new(),
            Vec::new(),
        )?;
        Ok(p.remove(0))
    }

    fn plan(
        &self,
        pod: Option<&PodRef>,
        cluster: Network,
        defaults: Vec<Network>,
        selected: Vec<Network>,
    ) -> Result<Vec<Attachment>, ResolveError> {
        plan::plan(PlanInput {
            cluster,
            defaults,
            selected,
            runtime_ifname: self.runtime_ifname,
            runtime_config: &self.cfg.runtime_config,
            runtime_args: self.runtime_args,
            strict_capabilities: self.cfg.strict_capabilities,
        })
        .map_err(|source| ResolveError::Plan {
            pod: pod.map(ToString::to_string),
            source: Box::new(source),
        })
    }

    /// What the pod's annotations ask for, each network checked against namespace isolation.
    ///
    /// # Errors
    /// [`ResolveError::Selection`] for invalid annotations, [`ResolveError::Nad`] for a network
    /// isolation forbids.
    pub fn pod_request(
        &self,
        pod: &PodRef,
        annotations: &BTreeMap<String, String>,
    ) -> Result<PodRequest, ResolveError> {
        let selections = match annotations.get(NETWORKS_ANNOTATION) {
            Some(v) => selection::parse_networks(v, &pod.namespace)?,
            None => Vec::new(),
        };
        let default_override = match annotations.get(DEFAULT_NETWORK_ANNOTATION) {
            Some(v) if !v.trim().is_empty() => {
                Some(selection::parse_default_network(v, &pod.namespace)?)
            }
            _ => None,
        };
        for s in selections.iter().chain(default_override.iter()) {
            self.check_isolation(pod, s)?;
        }
        Ok(PodRequest {
            selections,
            default_override,
        })
    }

    /// True when pods of `namespace` get no default networks (`systemNamespaces`).
    fn system(&self, namespace: &str) -> bool {
        self.cfg.system_namespaces.iter().any(|n| n == namespace)
    }

    /// Every NAD the pod's plan needs, sorted and without duplicates.
    pub fn wanted(&self, pod: &PodRef, req: &PodRequest, nets: &ConfigNetworks) -> Vec<NadKey> {
        let mut wanted: Vec<NadKey> = req
            .selections
            .iter()
            .chain(req.default_override.iter())
            .map(|s| (s.namespace.clone(), s.name.clone()))
            .collect();
        if req.default_override.is_none()
            && let Ref::Nad(k) = &nets.cluster
        {
            wanted.push(k.clone());
        }
        if !self.system(&pod.namespace) {
            wanted.extend(nets.defaults.iter().filter_map(|r| match r {
                Ref::Nad(k) => Some(k.clone()),
                Ref::Conf(_) => None,
            }));
        }
        wanted.sort();
        wanted.dedup();
        wanted
    }

    /// The pod's plan: the cluster network (or the pod's override), the default networks
    /// (not for pods of `systemNamespaces`), then the networks the pod selected, each NAD from
    /// `nads`; a NAD tied to a device-plugin resource gets the pod's next device from
    /// `devices` (not assigned without a source).
    ///
    /// # Errors
    /// [`ResolveError`] for a missing or invalid NAD, a device that cannot be assigned, or a
    /// plan that breaks a rule.
    pub fn pod_plan(
        &self,
        pod: &PodRef,
        req: &PodRequest,
        nets: &ConfigNetworks,
        nads: &dyn NadSource,
        devices: Option<&dyn DeviceSource>,
    ) -> Result<Vec<Attachment>, ResolveError> {
        let by_ref = |r: &Ref| -> Result<Network, ResolveError> {
            match r {
                Ref::Conf(c) => Ok(Network::from_conf(c.clone())),
                Ref::Nad(k) => Ok(nad_network(k, nads.nad(k)?, None)),
            }
        };
        let cluster = match &req.default_override {
            Some(s) => {
                let k = (s.namespace.clone(), s.name.clone());
                nad_network(&k, nads.nad(&k)?, Some(s.clone()))
            }
            None => by_ref(&nets.cluster)?,
        };
        let defaults = if self.system(&pod.namespace) {
            Vec::new()
        } else {
            nets.defaults.iter().map(by_ref).collect::<Result<_, _>>()?
        };
        let selected = self.selected_networks(pod, req, nads, devices)?;
        self.plan(Some(pod), cluster, defaults, selected)
    }

    /// The networks the pod's annotation selects, each resolved to its config, in order (a NAD
    /// tied to a device-plugin resource gets the pod's next device from `devices`).
    ///
    /// # Errors
    /// [`ResolveError`] for a missing or invalid NAD, or a device that cannot be assigned.
    pub fn selected_networks(
        &self,
        pod: &PodRef,
        req: &PodRequest,
        nads: &dyn NadSource,
        devices: Option<&dyn DeviceSource>,
    ) -> Result<Vec<Network>, ResolveError> {
        let mut used: HashMap<String, Vec<String>> = HashMap::new();
        let mut selected = Vec::new();
        for s in &req.selections {
            let k = (s.namespace.clone(), s.name.clone());
            let nad = nads.nad(&k)?;
            let resource = nad.resource.clone();
            let mut net = nad_network(&k, nad, Some(s.clone()));
            if let (Some(resource), Some(devices)) = (resource, devices) {
                assign_device(pod, &k, &mut net, &resource, devices, &mut used)?;
            }
            selected.push(net);
        }
        Ok(selected)
    }

    /// Plans networks whose interface names are already decided (every non-cluster network
    /// carries its name in its selection), for changes to a running pod: the same per-network
    /// rules and checks as [`Resolver::pod_plan`].
    ///
    /// # Errors
    /// [`ResolveError::Plan`] for a plan that breaks a rule.
    pub fn plan_named(
        &self,
        pod: &PodRef,
        cluster: Network,
        others: Vec<Network>,
    ) -> Result<Vec<Attachment>, ResolveError> {
        self.plan(Some(pod), cluster, Vec::new(), others)
    }

    /// A NAD object from the API as a network config: its `spec.config` (named after the NAD
    /// when it has no name), or when empty the config in confDir named like the NAD; never one
    /// that runs plexus itself.
    ///
    /// # Errors
    /// [`ResolveError::Nad`] saying what is wrong with it.
    pub fn nad_conf(&self, key: &NadKey, nad: &NadObject) -> Result<ResolvedNad, ResolveError> {
        self.nad_config(key, nad)
            .map_err(|reason| ResolveError::Nad {
                namespace: key.0.clone(),
                name: key.1.clone(),
                reason: Box::new(reason),
            })
    }

    /// [`Resolver::nad_conf`], with only what is wrong (the first problem).
    ///
    /// # Errors
    /// [`NadProblem`].
    pub fn nad_config(&self, key: &NadKey, nad: &NadObject) -> Result<ResolvedNad, NadProblem> {
        self.nad_problems(key, nad).map_err(|mut all| all.remove(0))
    }

    /// [`Resolver::nad_config`] with every problem of the config, in order (`plexus lint`
    /// reports them all; the NAD and the field are named by the caller).
    ///
    /// # Errors
    /// Every [`NadProblem`] found (never none).
    pub fn nad_problems(
        &self,
        key: &NadKey,
        nad: &NadObject,
    ) -> Result<ResolvedNad, Vec<NadProblem>> {
        let (ns, name) = key;
        let conf = match nad.config() {
            Some(text) => {
                let v: serde_json::Value = serde_json::from_str(text)
                    .map_err(|e| vec![NadProblem::Json(e.to_string())])?;
                ConfList::check_value(
                    v,
                    &format!("NetworkAttachmentDefinition {ns}/{name}"),
                    Some(name),
                )
                .map_err(|p| {
                    p.all()
                        .into_iter()
                        .map(NadProblem::Config)
                        .collect::<Vec<_>>()
                })?
            }
            None => refs::load_required(name, &self.cfg.conf_dir, &self.cfg.self_type)
                .map_err(|e| vec![NadProblem::NoFile(e)])?,
        };
        if conf.runs(&self.cfg.self_type) {
            return Err(vec![NadProblem::SelfReference(self.cfg.self_type.clone())]);
        }
        Ok(ResolvedNad {
            conf,
            resource: nad.resource_name().map(str::to_string),
        })
    }

    /// `ns/name` or `name` (in multusNamespace) of a config reference that names a NAD.
    fn nad_key(&self, r: &str) -> NadKey {
        match r.split_once('/') {
            Some((ns, name)) => (ns.to_string(), name.to_string()),
            None => (self.cfg.multus_namespace.clone(), r.to_string()),
        }
    }

    fn check_isolation(&self, pod: &PodRef, s: &Selection) -> Result<(), ResolveError> {
        if self.cfg.namespace_isolation
            && s.namespace != pod.namespace
            && !self.cfg.global_namespaces.contains(&s.namespace)
        {
            let global = if self.cfg.global_namespaces.is_empty() {
                "none".to_string()
            } else {
                self.cfg.global_namespaces.join(", ")
            };
            return Err(ResolveError::Nad {
                namespace: s.namespace.clone(),
                name: s.name.clone(),
                reason: Box::new(NadProblem::Isolated {
                    pod: pod.to_string(),
                    namespace: s.namespace.clone(),
                    global,
                }),
            });
        }
        Ok(())
    }
}

fn nad_network(key: &NadKey, nad: ResolvedNad, selection: Option<Selection>) -> Network {
    Network {
        status_name: format!("{}/{}", key.0, key.1),
        conf: nad.conf,
        selection,
    }
}

/// The pod's next device of `resource` (unless the selection names one): as `deviceID` in the
/// network's first plugin and in the selection (so in `runtimeConfig`), as Multus passes it.
fn assign_device(
    pod: &PodRef,
    key: &NadKey,
    net: &mut Network,
    resource: &str,
    devices: &dyn DeviceSource,
    used: &mut HashMap<String, Vec<String>>,
) -> Result<(), ResolveError> {
    let fail = |p: DeviceProblem| ResolveError::Nad {
        namespace: key.0.clone(),
        name: key.1.clone(),
        reason: Box::new(NadProblem::Device(p)),
    };
    let chosen = match net.selection.as_ref().and_then(|s| s.device_id.clone()) {
        Some(id) => id,
        None => {
            let uid = pod
                .uid
                .as_deref()
                .ok_or_else(|| fail(DeviceProblem::NoUid(resource.to_string())))?;
            let all = devices.devices(uid, resource).map_err(fail)?;
            let taken = used.entry(resource.to_string()).or_default();
            let id = all
                .into_iter()
                .find(|d| !taken.contains(d))
                .ok_or_else(|| fail(DeviceProblem::NoneFree(resource.to_string())))?;
            taken.push(id.clone());
            id
        }
    };
    if let Some(p) = net.conf.plugins.first_mut() {
        p.insert("deviceID".into(), serde_json::Value::String(chosen.clone()));
    }
    if let Some(s) = net.selection.as_mut() {
        s.device_id = Some(chosen);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
