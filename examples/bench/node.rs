//! The bench's world: a "node" network namespace (macvlan master veth, the bridge the cluster
//! network makes, the API server's loopback), throwaway pod namespaces, the embedded API server
//! with NADs and annotated pods (over HTTPS with a CA in the kubeconfig, as a cluster serves it,
//! plus a plain-HTTP twin holding the same objects for the comparison row), and a work
//! directory for configs, leases and plexus's journal.
//! Dropping [`Node`] deletes every namespace and file it made, also when the bench fails.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use plexus_testapi::TestApiServer;
use serde_json::{Map, Value, json};

/// Where Debian's reference plugins live.
pub const PLUGINS: &str = "/usr/lib/cni";
/// The macvlan master inside the node namespace.
const MASTER: &str = "storage0";

/// One network as a runtime (or plexus) hands it to its plugins: the interface it gets and
/// each plugin's config with the list's `name` and `cniVersion` injected (libcni semantics).
#[derive(Debug, Clone)]
pub struct Net {
    pub ifname: String,
    pub plugins: Vec<Map<String, Value>>,
}

/// A pod in the API server and the networks it should end up with (cluster network first).
#[derive(Debug, Clone)]
pub struct Pod {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// The `k8s.v1.cni.cncf.io/networks` annotation.
    pub networks_annotation: String,
    pub nets: Vec<Net>,
}

struct Cleanup {
    netns: Mutex<Vec<String>>,
    work: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let names = std::mem::take(&mut *self.netns.lock().unwrap_or_else(|e| e.into_inner()));
        for n in names.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

/// A pod namespace, deleted when dropped.
pub struct PodNs<'a> {
    pub name: String,
    node: &'a Node,
}

impl PodNs<'_> {
    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }
}

impl Drop for PodNs<'_> {
    fn drop(&mut self) {
        self.node.netns_del(&self.name);
    }
}

/// Everything the bench runs in. Field order is drop order: the API server stops before the
/// namespaces and the work directory go.
pub struct Node {
    /// The API server plexus reaches in every row but one: HTTPS, its CA in the kubeconfig.
    pub api: TestApiServer,
    /// The same objects over plain HTTP, for the row that shows what TLS costs.
    pub api_http: TestApiServer,
    /// The kubeconfig of [`Node::api_http`].
    pub kubeconfig_http: PathBuf,
    /// `/run/netns/<node>`.
    pub path: PathBuf,
    pub work: PathBuf,
    pub kubeconfig: PathBuf,
    pub tag: String,
    /// Where every child's stderr goes (`<work>/stderr.log`).
    pub stderr: File,
    cluster: Net,
    cluster_path: PathBuf,
    leases: PathBuf,
    counter: AtomicU32,
    cleanup: Cleanup,
}

/// Runs a command, failing with its stderr.
pub fn sh(args: &[&str]) -> Result<String, String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args[0]))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn io(e: std::io::Error) -> String {
    e.to_string()
}

impl Node {
    /// Creates the node namespace with its macvlan master, the cluster network's conflist
    /// (bridge + host-local) and the API server bound inside the node namespace.
    pub fn new() -> Result<Node, String> {
        let tag = format!("pxb{}", std::process::id() % 100_000);
        let work = std::env::temp_dir().join(format!("plexus-bench-{tag}"));
        let cleanup = Cleanup {
            netns: Mutex::new(Vec::new()),
            work: work.clone(),
        };
        std::fs::create_dir_all(work.join("net.d")).map_err(io)?;
        let node = format!("{tag}-node");
        sh(&["ip", "netns", "add", &node])?;
        cleanup
            .netns
            .lock()
            .map_err(|e| e.to_string())?
            .push(node.clone());
        let ipn = |rest: &[&str]| {
            let mut a = vec!["ip", "-n", node.as_str()];
            a.extend_from_slice(rest);
            sh(&a)
        };
        ipn(&["link", "set", "lo", "up"])?;
        ipn(&[
            "link",
            "add",
            MASTER,
            "type",
            "veth",
            "peer",
            "name",
            "storage0p",
        ])?;
        ipn(&["link", "set", MASTER, "up"])?;
        ipn(&["link", "set", "storage0p", "up"])?;

        let leases = work.join("leases");
        let conflist = json!({"cniVersion":"1.0.0","name":"cluster","plugins":[{
            "type":"bridge","bridge":"bench0","isGateway":true,
            "ipam":{"type":"host-local","dataDir":leases,"ranges":[[{"subnet":"10.244.0.0/16"}]]}}]});
        let cluster_path = work.join("net.d/10-cluster.conflist");
        std::fs::write(&cluster_path, conflist.to_string()).map_err(io)?;
        let cluster = Net {
            ifname: "eth0".into(),
            plugins: list_plugins(&conflist),
        };

        let path = PathBuf::from(format!("/run/netns/{node}"));
        let api = TestApiServer::start_https_in_netns(&path).map_err(io)?;
        let kubeconfig = work.join("kubeconfig");
        api.write_kubeconfig(&kubeconfig).map_err(io)?;
        let api_http = TestApiServer::start_in_netns(&path).map_err(io)?;
        let kubeconfig_http = work.join("kubeconfig-http");
        api_http.write_kubeconfig(&kubeconfig_http).map_err(io)?;
        let stderr = File::create(work.join("stderr.log")).map_err(io)?;
        Ok(Node {
            api,
            api_http,
            kubeconfig_http,
            path,
            work,
            kubeconfig,
            tag,
            stderr,
            cluster,
            cluster_path,
            leases,
            counter: AtomicU32::new(0),
            cleanup,
        })
    }

    /// The macvlan NAD config for network number `subnet` (its own /24 under 10.56.0.0/16).
    fn macvlan(&self, subnet: u32) -> Value {
        json!({"cniVersion":"1.0.0","type":"macvlan","master":MASTER,"mode":"bridge",
            "ipam":{"type":"host-local","dataDir":self.leases,
                    "ranges":[[{"subnet":format!("10.56.{subnet}.0/24")}]]}})
    }

    /// Stores a macvlan NAD `namespace/name` and returns its config as a delegate gets it
    /// (the NAD's name injected, as plexus and Multus do for a config without one).
    pub fn put_nad(&self, namespace: &str, name: &str, subnet: u32) -> Map<String, Value> {
        let conf = self.macvlan(subnet);
        let nad = json!({
            "apiVersion":"k8s.cni.cncf.io/v1","kind":"NetworkAttachmentDefinition",
            "metadata":{"name":name,"namespace":namespace},
            "spec":{"config":conf.to_string()}});
        self.api.put_nad(nad.clone());
        self.api_http.put_nad(nad);
        let mut m = conf.as_object().cloned().unwrap_or_default();
        m.insert("name".into(), Value::String(name.into()));
        m
    }

    /// Stores a pod annotated with `nads` (each a name from [`put_nad`] with its delegate
    /// config), which it gets as `net1`, `net2`, ... after the cluster network's `eth0`.
    ///
    /// [`put_nad`]: Node::put_nad
    pub fn put_pod(
        &self,
        namespace: &str,
        name: &str,
        nads: &[(&str, &Map<String, Value>)],
    ) -> Pod {
        let annotation = nads.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(",");
        self.api
            .put_pod(json!({"metadata":{"name":name,"namespace":namespace,
            "annotations":{"k8s.v1.cni.cncf.io/networks":annotation}}}));
        let stored = self.api.pod(namespace, name).unwrap_or_default();
        // The same pod (same uid) on the plain-HTTP twin.
        self.api_http.put_pod(stored.clone());
        let uid = stored["metadata"]["uid"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_default();
        let mut nets = vec![self.cluster.clone()];
        nets.extend(nads.iter().enumerate().map(|(i, (_, conf))| Net {
            ifname: format!("net{}", i + 1),
            plugins: vec![(*conf).clone()],
        }));
        Pod {
            namespace: namespace.into(),
            name: name.into(),
            uid,
            networks_annotation: annotation,
            nets,
        }
    }

    /// Every request both API servers received since the last [`Node::clear_requests`].
    pub fn requests(&self) -> Vec<plexus_testapi::Recorded> {
        let mut r = self.api.requests();
        r.extend(self.api_http.requests());
        r
    }

    /// Forgets both API servers' recorded requests.
    pub fn clear_requests(&self) {
        self.api.clear_requests();
        self.api_http.clear_requests();
    }

    /// plexus's config as the runtime's conflist hands it over. `annotations_in_runtime_config`
    /// plays containerd with the `io.kubernetes.cri.pod-annotations` capability; `plain_http`
    /// points plexus at the plain-HTTP twin instead of the HTTPS server.
    #[allow(clippy::too_many_arguments)]
    pub fn plexus_conf(
        &self,
        pod: &Pod,
        plain_http: bool,
        annotations_in_runtime_config: bool,
        builtin: bool,
        parallel: bool,
        debug_log: Option<&Path>,
    ) -> Value {
        let kubeconfig = if plain_http {
            &self.kubeconfig_http
        } else {
            &self.kubeconfig
        };
        let mut c = json!({"cniVersion":"1.0.0","name":"plexus","type":"plexus",
            "kubeconfig":kubeconfig,"clusterNetwork":self.cluster_path,
            "confDir":self.work.join("net.d"),"cniDir":self.work.join("journal"),"binDir":PLUGINS,
            "logToStderr":false,"delegateTimeoutSeconds":20});
        if annotations_in_runtime_config {
            c["capabilities"] = json!({"io.kubernetes.cri.pod-annotations":true});
            c["runtimeConfig"] = json!({"io.kubernetes.cri.pod-annotations":
                {"k8s.v1.cni.cncf.io/networks":pod.networks_annotation}});
        }
        // (b) and (c) exec the reference plugins like the floor does; (d) runs macvlan in process.
        c["builtinDelegates"] = Value::Bool(builtin);
        // (e), (f) run self-contained NADs beside the cluster network and each other instead of
        // in Multus's strict order.
        if parallel {
            c["parallelAttach"] = Value::Bool(true);
        }
        if let Some(p) = debug_log {
            c["logFile"] = json!(p);
            c["logLevel"] = json!("debug");
        }
        c
    }

    /// A fresh container id.
    pub fn container_id(&self) -> String {
        format!(
            "{}c{}",
            self.tag,
            self.counter.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// A fresh, empty pod namespace.
    pub fn pod_netns(&self) -> Result<PodNs<'_>, String> {
        let name = format!(
            "{}-p{}",
            self.tag,
            self.counter.fetch_add(1, Ordering::Relaxed)
        );
        sh(&["ip", "netns", "add", &name])?;
        self.cleanup
            .netns
            .lock()
            .map_err(|e| e.to_string())?
            .push(name.clone());
        Ok(PodNs { name, node: self })
    }

    fn netns_del(&self, name: &str) {
        let _ = sh(&["ip", "netns", "del", name]);
        if let Ok(mut l) = self.cleanup.netns.lock() {
            l.retain(|n| n != name);
        }
    }

    /// After ADD: every interface of `pod` exists in `ns` with an IPv4 address. After DEL
    /// (`present` false): nothing but `lo` is left.
    pub fn verify(&self, ns: &PodNs<'_>, pod: &Pod, present: bool) -> Result<(), String> {
        let addrs: Vec<Value> = serde_json::from_str(&sh(&["ip", "-n", &ns.name, "-j", "addr"])?)
            .map_err(|e| e.to_string())?;
        let v4 = |ifname: &str| {
            addrs.iter().any(|a| {
                a["ifname"] == ifname
                    && a["addr_info"]
                        .as_array()
                        .is_some_and(|l| l.iter().any(|x| x["family"] == "inet"))
            })
        };
        if present {
            if let Some(n) = pod.nets.iter().find(|n| !v4(&n.ifname)) {
                return Err(format!(
                    "pod {}: {} has no IPv4 address after ADD",
                    pod.name, n.ifname
                ));
            }
        } else if let Some(a) = addrs.iter().find(|a| a["ifname"] != "lo") {
            return Err(format!(
                "pod {}: {} is left after DEL",
                pod.name, a["ifname"]
            ));
        }
        Ok(())
    }

    /// Files left in the lease and journal directories (host-local's lock and
    /// last-reserved markers are not leases).
    pub fn leftovers(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(&self.leases, &mut out);
        walk(&self.work.join("journal"), &mut out);
        out.retain(|p| {
            let n = Path::new(p)
                .file_name()
                .unwrap_or_default()
                .to_string_lossy();
            n != "lock" && !n.starts_with("last_reserved_ip")
        });
        out
    }
}

fn walk(dir: &Path, out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p.display().to_string());
        }
    }
}

/// libcni's view of a conflist: each plugin with the list's `name` and `cniVersion`.
fn list_plugins(conflist: &Value) -> Vec<Map<String, Value>> {
    conflist["plugins"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p.as_object().cloned())
                .map(|mut p| {
                    p.insert("name".into(), conflist["name"].clone());
                    p.insert("cniVersion".into(), conflist["cniVersion"].clone());
                    p
                })
                .collect()
        })
        .unwrap_or_default()
}
