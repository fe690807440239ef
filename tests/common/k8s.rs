//! The Kubernetes side of the end-to-end harness: a [`Cluster`] is a [`TestEnv`] plus the
//! in-process test API server listening on the node netns's loopback (where plexus runs, as a
//! node reaches its API server), a kubeconfig pointing at it, pods and NADs, and checks of the
//! requests plexus made and of the network-status it wrote.

use super::conf::{cluster_conflist, host_local, plexus_base, write_conf};
use super::{Outcome, Running, TestEnv, link, plexus_bin};
use plexus_testapi::TestApiServer;
use serde_json::{Value, json};
use std::path::PathBuf;

/// The pod annotation selecting extra networks.
pub const NETWORKS: &str = "k8s.v1.cni.cncf.io/networks";
/// The pod annotation replacing the cluster network.
pub const DEFAULT_NETWORK: &str = "v1.multus-cni.io/default-network";
/// The pod annotation plexus writes.
pub const NETWORK_STATUS: &str = "k8s.v1.cni.cncf.io/network-status";
/// The runtimeConfig key under which containerd passes the pod's annotations.
pub const POD_ANNOTATIONS: &str = "io.kubernetes.cri.pod-annotations";

/// A pod as the runtime names it in `CNI_ARGS`.
#[derive(Debug, Clone)]
pub struct Pod {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

impl Pod {
    pub fn new(namespace: &str, name: &str) -> Pod {
        Pod {
            namespace: namespace.into(),
            name: name.into(),
            uid: format!("uid-{namespace}-{name}"),
        }
    }

    /// `GET` path of the pod.
    pub fn path(&self) -> String {
        format!("/api/v1/namespaces/{}/pods/{}", self.namespace, self.name)
    }

    /// `PATCH` path of the pod's status subresource.
    pub fn status_path(&self) -> String {
        format!("{}/status", self.path())
    }

    /// `CNI_ARGS` as containerd sends them for this pod's sandbox `id`.
    pub fn cni_args(&self, id: &str) -> String {
        format!(
            "IgnoreUnknown=1;K8S_POD_NAMESPACE={};K8S_POD_NAME={};K8S_POD_INFRA_CONTAINER_ID={id};K8S_POD_UID={}",
            self.namespace, self.name, self.uid
        )
    }
}

/// Path of a NAD.
pub fn nad_path(ns: &str, name: &str) -> String {
    format!("/apis/k8s.cni.cncf.io/v1/namespaces/{ns}/network-attachment-definitions/{name}")
}

/// A test env with an API server. The server is declared first so it stops before the
/// namespaces go.
pub struct Cluster {
    pub api: TestApiServer,
    pub env: TestEnv,
    pub kubeconfig: PathBuf,
    /// The cluster conflist (bridge, 10.<octet>.0.0/24) in confDir.
    pub cluster_path: PathBuf,
}

impl Cluster {
    /// A [`TestEnv`] whose node netns serves the test API server on its loopback.
    pub fn new(tag: &str, octet: u8) -> Cluster {
        let env = TestEnv::new(tag, octet);
        let netns = PathBuf::from(format!("/run/netns/{}", env.node));
        let api = TestApiServer::start_in_netns(&netns).expect("start the test API server");
        let kubeconfig = env.dir.join("kubeconfig");
        api.write_kubeconfig(&kubeconfig).expect("write kubeconfig");
        let cluster_path = write_conf(&env, "10-cluster.conflist", &cluster_conflist(&env));
        Cluster {
            api,
            env,
            kubeconfig,
            cluster_path,
        }
    }

    /// plexus's config: the bridge cluster network, the kubeconfig, no default networks, short
    /// API timeouts (every test server answers on loopback at once).
    pub fn conf(&self) -> Value {
        let mut conf = plexus_base(&self.env, "1.0.0");
        conf["clusterNetwork"] = json!(self.cluster_path);
        conf["kubeconfig"] = json!(self.kubeconfig);
        conf["apiTimeoutSeconds"] = json!(2);
        conf["apiRetryBudgetSeconds"] = json!(5);
        conf
    }

    /// Stores `pod` on the server with these annotations (replacing any earlier version).
    pub fn put_pod(&self, pod: &Pod, annotations: &[(&str, &str)]) {
        let ann: serde_json::Map<String, Value> = annotations
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        self.api.put_pod(json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": pod.name,
                "namespace": pod.namespace,
                "uid": pod.uid,
                "annotations": ann,
            },
            "spec": { "containers": [{ "name": "c", "image": "pause" }] },
        }));
    }

    /// Stores a NAD whose `spec.config` is `conf` as a JSON string (`None`: no config).
    pub fn put_nad(&self, ns: &str, name: &str, conf: Option<&Value>) {
        let spec = match conf {
            Some(c) => json!({ "config": c.to_string() }),
            None => json!({}),
        };
        self.api.put_nad(json!({
            "apiVersion": "k8s.cni.cncf.io/v1",
            "kind": "NetworkAttachmentDefinition",
            "metadata": { "name": name, "namespace": ns },
            "spec": spec,
        }));
    }

    /// A macvlan config on the test's master with host-local on 10.<octet>.<third>.0/24 and no
    /// `name` (a NAD's config gets the NAD's name).
    pub fn macvlan(&self, third: u8) -> Value {
        json!({
            "cniVersion": "1.0.0",
            "type": "macvlan",
            "master": self.env.master,
            "mode": "bridge",
            "ipam": host_local(&self.env, third, false),
        })
    }

    /// A macvlan config with static IPAM (addresses come from the pod's selection) and the given
    /// `capabilities` (`None`: none declared, so only the legacy `CNI_ARGS` carry ips/mac).
    pub fn macvlan_static(&self, capabilities: Option<Value>) -> Value {
        let mut c = json!({
            "cniVersion": "1.0.0",
            "type": "macvlan",
            "master": self.env.master,
            "mode": "bridge",
            "ipam": { "type": "static" },
        });
        if let Some(caps) = capabilities {
            c["capabilities"] = caps;
        }
        c
    }

    /// The env of a plexus call for `pod`'s sandbox `id` in `netns`.
    pub fn vars(&self, command: &str, id: &str, netns: &str, pod: &Pod) -> Vec<(String, String)> {
        let mut vars = self.env.vars(command, id, Some(netns));
        for (k, v) in vars.iter_mut() {
            if k == "CNI_ARGS" {
                *v = pod.cni_args(id);
            }
        }
        vars
    }

    /// Invokes plexus for `pod` as the runtime does.
    pub fn cni(&self, command: &str, id: &str, netns: &str, pod: &Pod, conf: &Value) -> Outcome {
        self.start_cni(command, id, netns, pod, conf).finish()
    }

    /// Starts plexus for `pod` as [`Cluster::cni`] does, without waiting for it.
    pub fn start_cni(
        &self,
        command: &str,
        id: &str,
        netns: &str,
        pod: &Pod,
        conf: &Value,
    ) -> Running {
        let vars = self.vars(command, id, netns, pod);
        self.env
            .start(&plexus_bin(), &vars, conf.to_string().as_bytes())
    }

    /// The pod's network-status annotation as a list; panics when it is missing or malformed.
    pub fn network_status(&self, pod: &Pod) -> Vec<Value> {
        let stored = self
            .api
            .pod(&pod.namespace, &pod.name)
            .unwrap_or_else(|| panic!("pod {}/{} is not on the server", pod.namespace, pod.name));
        let text = stored["metadata"]["annotations"][NETWORK_STATUS]
            .as_str()
            .unwrap_or_else(|| panic!("pod has no {NETWORK_STATUS} annotation: {stored}"));
        let v: Value = serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("{NETWORK_STATUS} is not JSON ({e}): {text}"));
        v.as_array()
            .unwrap_or_else(|| panic!("{NETWORK_STATUS} is not a list: {text}"))
            .clone()
    }

    /// Whether the pod carries a network-status annotation on the server.
    pub fn has_network_status(&self, pod: &Pod) -> bool {
        self.api
            .pod(&pod.namespace, &pod.name)
            .is_some_and(|p| p["metadata"]["annotations"].get(NETWORK_STATUS).is_some())
    }

    /// Requests with exactly this method and path (no prefix matching: `pods/p` is not
    /// `pods/p2` nor `pods/p/status`).
    pub fn count_exact(&self, method: &str, path: &str) -> usize {
        self.api
            .requests()
            .iter()
            .filter(|r| r.method.eq_ignore_ascii_case(method) && r.path == path)
            .count()
    }

    /// Every request as `METHOD path`, for failure messages.
    pub fn request_log(&self) -> Vec<String> {
        self.api
            .requests()
            .iter()
            .map(|r| {
                format!(
                    "{} {}{}",
                    r.method,
                    r.path,
                    if r.dropped { " (dropped)" } else { "" }
                )
            })
            .collect()
    }

    /// Asserts that no request other than a GET reached the server (no status write, no event).
    pub fn assert_no_writes(&self) {
        let writes: Vec<String> = self
            .request_log()
            .into_iter()
            .filter(|r| !r.starts_with("GET "))
            .collect();
        assert!(writes.is_empty(), "unexpected writes: {writes:?}");
    }

    /// Asserts the interface `ifname` exists in `netns` with exactly `addrs` and, when given,
    /// `mac`; returns its MAC.
    pub fn assert_iface(
        &self,
        netns: &str,
        ifname: &str,
        addrs: &[String],
        mac: Option<&str>,
    ) -> String {
        let l = link(netns, ifname).unwrap_or_else(|| {
            panic!(
                "no {ifname} in {netns}: {:?}\n--- plexus.log ---\n{}",
                self.env.links(netns),
                self.env.log()
            )
        });
        let got = self.env.addrs(netns, ifname);
        assert_eq!(got, addrs, "addresses of {ifname} in {netns}");
        let have = l.mac.clone().unwrap_or_default();
        if let Some(m) = mac {
            assert_eq!(have, m, "MAC of {ifname} in {netns}");
        }
        have
    }

    /// Links in `netns` other than lo, sorted by name.
    pub fn ifnames(&self, netns: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .env
            .links(netns)
            .into_iter()
            .map(|l| l.name)
            .filter(|n| n != "lo")
            .collect();
        v.sort();
        v
    }

    /// The first address of `ifname` in `netns` (`a.b.c.d/len`); panics if it has none.
    pub fn addr(&self, netns: &str, ifname: &str) -> String {
        self.env
            .addrs(netns, ifname)
            .first()
            .cloned()
            .unwrap_or_else(|| panic!("{ifname} in {netns} has no IPv4 address"))
    }
}

/// `a.b.c.d` of `a.b.c.d/len`.
pub fn bare(cidr: &str) -> String {
    cidr.split('/').next().unwrap_or(cidr).to_string()
}

/// The network-status entry for `ifname`; panics when there is not exactly one.
pub fn entry<'a>(status: &'a [Value], ifname: &str) -> &'a Value {
    let found: Vec<&Value> = status.iter().filter(|e| e["interface"] == ifname).collect();
    assert_eq!(
        found.len(),
        1,
        "network-status should have exactly one entry for {ifname}: {status:?}"
    );
    found[0]
}

/// Asserts that exactly one entry is `default: true` and that it is `ifname`'s.
pub fn assert_one_default(status: &[Value], ifname: &str) {
    let defaults: Vec<&Value> = status.iter().filter(|e| e["default"] == true).collect();
    assert_eq!(
        defaults.len(),
        1,
        "exactly one network-status entry must be default: {status:?}"
    );
    assert_eq!(
        defaults[0]["interface"], ifname,
        "the default entry must be {ifname}: {status:?}"
    );
}

/// Writes a config named `name` into confDir as `file`.
pub fn write_named(env: &TestEnv, file: &str, name: &str, mut conf: Value) -> PathBuf {
    conf["name"] = json!(name);
    write_conf(env, file, &conf)
}
