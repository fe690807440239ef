//! From the request, the config, the pod and its NADs to the plan: the only I/O before
//! anything runs (config files, pod GET, NAD GETs, all concurrent where they can be).

use std::collections::{BTreeMap, HashMap};

use super::Engine;
use crate::cni::conf::ConfList;
use crate::config::ConfigError;
use crate::error::Error;
use crate::k8s::client::ApiError;
use crate::k8s::nad::NadObject;
use crate::k8s::pod::{PodRef, runtime_annotations};
use crate::k8s::selection::{self, DEFAULT_NETWORK_ANNOTATION, NETWORKS_ANNOTATION, Selection};
use crate::k8s::session::Session;
use crate::plan::{self, Attachment, Network, PlanInput};

/// What ADD knows about the pod after resolution.
pub struct PodPlan {
    /// The attachments to run.
    pub plan: Vec<Attachment>,
    /// The pod, when the call is for one that exists.
    pub pod: Option<PodRef>,
    /// The API session, when there is one.
    pub session: Option<Session>,
}

impl Engine<'_> {
    /// The attachments the configuration alone gives this container (no API calls): the
    /// cluster network and the default networks.
    pub(super) fn plan_from_config(&self) -> Result<Vec<Attachment>, Error> {
        let nets = self.cfg.networks()?;
        let mut it = nets.into_iter().map(Network::from_conf);
        let cluster = it
            .next()
            .ok_or_else(|| Error::Plan("no cluster network".into()))?;
        plan::plan(PlanInput {
            cluster,
            extra: it.collect(),
            runtime_ifname: &self.req.ifname,
            runtime_config: &self.cfg.runtime_config,
            runtime_args: &self.req.args,
            strict_capabilities: self.cfg.strict_capabilities,
        })
        .map_err(Error::Plan)
    }

    /// Resolves everything ADD needs: pod annotations (from the runtime, else one GET), the
    /// selections, every NAD (fetched concurrently), and the plan.
    /// `known` is [`Engine::plan_from_config`]'s plan when the caller already built it: its
    /// configs are reused instead of reading confDir again.
    pub(super) fn resolve_for_add(&self, known: Option<&[Attachment]>) -> Result<PodPlan, Error> {
        let pod = PodRef::from_request(self.req).map_err(Error::Plan)?;
        let Some(pod) = pod else {
            return Ok(PodPlan {
                plan: self.plan_from_config()?,
                pod: None,
                session: None,
            });
        };
        let runtime_ann = runtime_annotations(&self.cfg.runtime_config);
        let session = Session::connect(
            self.cfg.kubeconfig.as_deref(),
            self.cfg.api_timeout,
            self.cfg.api_retry_budget,
        )
        .map_err(Error::Api)?;
        let mut pod_uid = pod.uid.clone();
        let annotations: Option<BTreeMap<String, String>> = match (runtime_ann, &session) {
            (Some(a), _) => Some(a),
            (None, Some(s)) => match s
                .block_on(s.api().get_pod(&pod.namespace, &pod.name))
                .map_err(Error::Api)?
            {
                Some(p) => {
                    let uid = p.metadata.uid.clone().unwrap_or_default();
                    if let Some(want) = &pod.uid
                        && !uid.is_empty()
                        && *want != uid
                    {
                        return Err(Error::Rejected(format!(
                            "pod {pod} has UID {uid}, the runtime asked for UID {want}: the pod was replaced"
                        )));
                    }
                    if !uid.is_empty() {
                        pod_uid = Some(uid);
                    }
                    Some(p.metadata.annotations.unwrap_or_default())
                }
                None => {
                    tracing::warn!(%pod, "pod not found: attaching only the cluster network and default networks");
                    None
                }
            },
            (None, None) => {
                tracing::warn!(%pod, "no kubeconfig and not in a cluster: pod annotations unavailable");
                None
            }
        };
        let ann = annotations.unwrap_or_default();
        let selections = match ann.get(NETWORKS_ANNOTATION) {
            Some(v) => selection::parse_networks(v, &pod.namespace).map_err(Error::Selection)?,
            None => Vec::new(),
        };
        let default_override = match ann.get(DEFAULT_NETWORK_ANNOTATION) {
            Some(v) if !v.trim().is_empty() => Some(
                selection::parse_default_network(v, &pod.namespace).map_err(Error::Selection)?,
            ),
            _ => None,
        };
        for s in selections.iter().chain(default_override.iter()) {
            self.check_isolation(&pod, s)?;
        }

        // Every NAD this pod needs, fetched concurrently.
        let mut wanted: Vec<(String, String)> = selections
            .iter()
            .chain(default_override.iter())
            .map(|s| (s.namespace.clone(), s.name.clone()))
            .collect();
        let system = self.cfg.system_namespaces.contains(&pod.namespace);
        let mut refs: Vec<&str> = Vec::new();
        if default_override.is_none()
            && let Some(c) = &self.cfg.cluster_network
        {
            refs.push(c);
        }
        if !system {
            refs.extend(self.cfg.default_networks.iter().map(String::as_str));
        }
        // Config references that are not files in confDir are NAD names (in multusNamespace).
        let mut from_files: HashMap<&str, ConfList> = HashMap::new();
        for r in &refs {
            if let Some(c) = known.and_then(|k| self.known_conf(k, r)) {
                from_files.insert(r, c.clone());
                continue;
            }
            match self.cfg.resolve(r) {
                Ok(c) => {
                    from_files.insert(r, c);
                }
                Err(ConfigError::Unresolved { .. }) if session.is_some() => {
                    wanted.push(self.nad_ref(r));
                }
                Err(e) => return Err(e.into()),
            }
        }
        wanted.sort();
        wanted.dedup();
        let nads = match (&session, wanted.is_empty()) {
            (_, true) => HashMap::new(),
            (Some(s), false) => fetch_nads(s, &wanted)?,
            (None, false) => {
                return Err(Error::Rejected(format!(
                    "pod {pod} asks for networks {} but plexus has no API access (set kubeconfig)",
                    wanted
                        .iter()
                        .map(|(n, m)| format!("{n}/{m}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        };
        let to_network = |ns: &str, name: &str, sel: Option<Selection>| -> Result<Network, Error> {
            let nad = nads
                .get(&(ns.to_string(), name.to_string()))
                .ok_or_else(|| Error::Nad {
                    namespace: ns.to_string(),
                    name: name.to_string(),
                    reason: "not found".into(),
                })?;
            Ok(Network {
                status_name: format!("{ns}/{name}"),
                conf: self.nad_conf(ns, name, nad)?,
                selection: sel,
            })
        };
        let by_ref = |r: &str| -> Result<Network, Error> {
            if let Some(c) = from_files.get(r) {
                return Ok(Network::from_conf(c.clone()));
            }
            let (ns, name) = self.nad_ref(r);
            to_network(&ns, &name, None)
        };

        let cluster = match default_override {
            Some(s) => {
                let (ns, name) = (s.namespace.clone(), s.name.clone());
                to_network(&ns, &name, Some(s))?
            }
            None => match &self.cfg.cluster_network {
                Some(c) => by_ref(c)?,
                None => {
                    let first = self.cfg.delegates.first().ok_or_else(|| {
                        Error::Plan("neither clusterNetwork nor delegates is set".into())
                    })?;
                    Network::from_conf(
                        ConfList::from_value(first.clone(), "delegates[0]", None)
                            .map_err(ConfigError::from)?,
                    )
                }
            },
        };
        let mut extra = Vec::new();
        if self.cfg.cluster_network.is_none() {
            for (i, d) in self.cfg.delegates.iter().enumerate().skip(1) {
                let c = ConfList::from_value(d.clone(), &format!("delegates[{i}]"), None)
                    .map_err(ConfigError::from)?;
                extra.push(Network::from_conf(c));
            }
        }
        if !system {
            for d in &self.cfg.default_networks {
                extra.push(by_ref(d)?);
            }
        }
        let mut devices = Devices::default();
        for s in selections {
            let (ns, name) = (s.namespace.clone(), s.name.clone());
            let mut net = to_network(&ns, &name, Some(s))?;
            if let Some(resource) = nads
                .get(&(ns.clone(), name.clone()))
                .and_then(NadObject::resource_name)
            {
                self.assign_device(&mut devices, &mut net, pod_uid.as_deref(), resource)?;
            }
            extra.push(net);
        }
        let plan = plan::plan(PlanInput {
            cluster,
            extra,
            runtime_ifname: &self.req.ifname,
            runtime_config: &self.cfg.runtime_config,
            runtime_args: &self.req.args,
            strict_capabilities: self.cfg.strict_capabilities,
        })
        .map_err(|e| Error::Plan(format!("pod {pod}: {e}")))?;
        Ok(PodPlan {
            plan,
            pod: Some(pod),
            session,
        })
    }

    /// The config `reference` resolved to in a plan built by [`Engine::plan_from_config`]
    /// (cluster network first, then the rest of `delegates`, then `defaultNetworks`).
    fn known_conf<'p>(&self, plan: &'p [Attachment], reference: &str) -> Option<&'p ConfList> {
        if self.cfg.cluster_network.as_deref() == Some(reference) {
            return plan.first().map(|a| &a.conf);
        }
        let offset = if self.cfg.cluster_network.is_some() {
            1
        } else {
            self.cfg.delegates.len()
        };
        let i = self
            .cfg
            .default_networks
            .iter()
            .position(|d| d == reference)?;
        plan.get(offset + i).map(|a| &a.conf)
    }

    /// A NAD tied to a device-plugin resource gets the next device of that resource allocated
    /// to the pod (unless the selection names one): as `deviceID` in its first plugin's config
    /// and in `runtimeConfig`, as Multus passes it.
    fn assign_device(
        &self,
        devices: &mut Devices,
        net: &mut Network,
        pod_uid: Option<&str>,
        resource: &str,
    ) -> Result<(), Error> {
        let fail = |reason: String| Error::Nad {
            namespace: net
                .status_name
                .split('/')
                .next()
                .unwrap_or_default()
                .to_string(),
            name: net.conf.name.clone(),
            reason,
        };
        let chosen = match net.selection.as_ref().and_then(|s| s.device_id.clone()) {
            Some(id) => id,
            None => {
                let uid = pod_uid.ok_or_else(|| {
                    fail(format!("resource {resource:?} needs the pod's UID (K8S_POD_UID) to find its devices"))
                })?;
                if devices.checkpoint.is_none() {
                    let path = &self.cfg.device_checkpoint_file;
                    let bytes = std::fs::read(path).map_err(|e| {
                        fail(format!(
                            "reading the kubelet checkpoint {}: {e}",
                            path.display()
                        ))
                    })?;
                    devices.checkpoint = Some(bytes);
                }
                let all = crate::k8s::devices::pod_devices(
                    devices.checkpoint.as_deref().unwrap_or_default(),
                    uid,
                    resource,
                )
                .map_err(|e| fail(format!("kubelet checkpoint: {e}")))?;
                let used = devices.used.entry(resource.to_string()).or_default();
                let id = all.into_iter().find(|d| !used.contains(d)).ok_or_else(|| {
                    fail(format!(
                        "no free device of resource {resource:?} is allocated to the pod"
                    ))
                })?;
                used.push(id.clone());
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

    /// `ns/name` or `name` (in multusNamespace) of a config reference that names a NAD.
    fn nad_ref(&self, r: &str) -> (String, String) {
        match r.split_once('/') {
            Some((ns, name)) => (ns.to_string(), name.to_string()),
            None => (self.cfg.multus_namespace.clone(), r.to_string()),
        }
    }

    fn check_isolation(&self, pod: &PodRef, s: &Selection) -> Result<(), Error> {
        if self.cfg.namespace_isolation
            && s.namespace != pod.namespace
            && !self.cfg.global_namespaces.contains(&s.namespace)
        {
            return Err(Error::Nad {
                namespace: s.namespace.clone(),
                name: s.name.clone(),
                reason: format!(
                    "pod {pod} may not use a network of namespace {:?}: namespaceIsolation is on \
                     (global namespaces: {})",
                    s.namespace,
                    if self.cfg.global_namespaces.is_empty() {
                        "none".to_string()
                    } else {
                        self.cfg.global_namespaces.join(", ")
                    }
                ),
            });
        }
        Ok(())
    }

    /// A NAD's delegate config: its `spec.config` (named after the NAD when it has no name), or
    /// when empty the config file in confDir whose `name` is the NAD's name.
    fn nad_conf(&self, ns: &str, name: &str, nad: &NadObject) -> Result<ConfList, Error> {
        let nad_err = |reason: String| Error::Nad {
            namespace: ns.to_string(),
            name: name.to_string(),
            reason,
        };
        match nad.config() {
            Some(text) => {
                crate::k8s::nad::parse_config(text, ns, name, &self.cfg.self_type).map_err(nad_err)
            }
            None => self
                .cfg
                .resolve(name)
                .map_err(|e| nad_err(format!("spec.config is empty and {e}"))),
        }
    }
}

/// Device ids handed out so far in this ADD, per resource, and the checkpoint once read.
#[derive(Default)]
struct Devices {
    checkpoint: Option<Vec<u8>>,
    used: HashMap<String, Vec<String>>,
}

/// GETs every wanted NAD concurrently; missing ones are simply absent from the map.
fn fetch_nads(
    s: &Session,
    wanted: &[(String, String)],
) -> Result<HashMap<(String, String), NadObject>, Error> {
    let api = s.api();
    let results: Vec<Result<Option<NadObject>, ApiError>> = s.block_on(async {
        let futs = wanted.iter().map(|(ns, name)| api.get_nad(ns, name));
        join_all(futs).await
    });
    let mut out = HashMap::new();
    for (key, r) in wanted.iter().zip(results) {
        if let Some(nad) = r.map_err(Error::Api)? {
            out.insert(key.clone(), nad);
        }
    }
    Ok(out)
}

/// Polls every future to completion concurrently on the current task (no spawning needed on
/// a current-thread runtime), preserving order.
async fn join_all<F: std::future::Future>(futs: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut pending: Vec<std::pin::Pin<Box<F>>> = futs.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = (0..pending.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (i, f) in pending.iter_mut().enumerate() {
            if done[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => done[i] = Some(v),
                    std::task::Poll::Pending => all = false,
                }
            }
        }
        if all {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    done.into_iter().flatten().collect()
}
