//! plexus under a real container runtime (`make e2e`): containerd from Debian on a scratch node,
//! the image's install command run the way deploy/daemonset.yaml runs it, and pods created
//! through the CRI the way the kubelet creates them. Then migration's other half: the
//! uninstall DaemonSet's command, with pods that still need plexus.
#![allow(clippy::disallowed_methods)] // runs ctr, ip and nsenter

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use plexus_e2e::containerd::Containerd;
use plexus_e2e::cri::{Cri, PodSpec};
use plexus_e2e::node::{self, MASTER, Node};
use plexus_e2e::{manifest, repo_root, require_programs, required_env, wait_for};
use plexus_testapi::{TOKEN, TestApiServer};
use serde_json::{Value, json};

const NS: &str = "e2e";
const NETWORKS: &str = "k8s.v1.cni.cncf.io/networks";
const STATUS: &str = "k8s.v1.cni.cncf.io/network-status";
const CONFLIST: &str = "00-00-plexus.conflist";
/// The reference plugins a node's cluster CNI would have put in /opt/cni/bin.
const PLUGINS: &[&str] = &["bridge", "host-local", "macvlan", "loopback"];

/// The scratch node with containerd, the API server and a CRI client; field order is drop
/// order (containerd stops before the API server and the node's namespace and files go).
struct World {
    cri: Cri,
    containerd: Containerd,
    api: TestApiServer,
    image: String,
    pod_uid: String,
    node: Node,
}

impl World {
    fn new(tag: &str) -> World {
        require_programs(&["containerd", "ctr", "runc", "nsenter", "ip"]);
        let image_archive = PathBuf::from(required_env("PLEXUS_E2E_IMAGE_ARCHIVE"));
        let image = required_env("PLEXUS_E2E_IMAGE");
        let pause_archive = PathBuf::from(required_env("PLEXUS_E2E_PAUSE_ARCHIVE"));
        let pause_image = required_env("PLEXUS_E2E_PAUSE_IMAGE");
        let plugin_dir = std::env::var("CNI_PLUGIN_DIR").unwrap_or_else(|_| "/usr/lib/cni".into());

        let node = Node::new(tag);
        for p in PLUGINS {
            let src = Path::new(&plugin_dir).join(p);
            assert!(
                src.is_file(),
                "{} is missing: `make deps` installs containernetworking-plugins",
                src.display()
            );
            std::os::unix::fs::symlink(&src, node.host("opt/cni/bin").join(p))
                .expect("link a plugin");
        }
        let leases = node.host("var/lib/cni/networks");
        let primary = json!({"cniVersion": "1.0.0", "name": "cluster", "plugins": [{
            "type": "bridge", "bridge": "pxe2e0", "isGateway": true,
            "ipam": {"type": "host-local", "dataDir": leases,
                     "ranges": [[{"subnet": "10.248.0.0/24"}]]}}]});
        std::fs::write(
            node.host("etc/cni/net.d/10-cluster.conflist"),
            primary.to_string(),
        )
        .expect("write the primary conflist");

        let api = TestApiServer::start_https_in_netns(&node.netns_path()).expect("API server");
        let macvlan = |master: &str, subnet: &str| {
            json!({"cniVersion": "1.0.0", "type": "macvlan", "master": master, "mode": "bridge",
                   "ipam": {"type": "host-local", "dataDir": leases, "ranges": [[{"subnet": subnet}]]}})
            .to_string()
        };
        api.put_nad(json!({"metadata": {"name": "storage", "namespace": NS},
                           "spec": {"config": macvlan(MASTER, "10.249.0.0/24")}}));
        api.put_nad(json!({"metadata": {"name": "broken", "namespace": NS},
                           "spec": {"config": macvlan("e2e-nosuch", "10.250.0.0/24")}}));

        let containerd = Containerd::start(&node, &pause_image);
        containerd.import(&image_archive);
        containerd.import(&pause_archive);
        let cri = Cri::connect(&containerd.socket);
        let pod_uid = "0b5e1c7a-0000-4000-8000-0000000000e2".to_string();
        World {
            cri,
            containerd,
            api,
            image,
            pod_uid,
            node,
        }
    }

    /// A container of a DaemonSet in deploy/, run from the image with `ctr run` as the kubelet
    /// would run it on this node (host paths moved into the scratch tree); its output.
    fn run_daemonset_container(
        &self,
        ds_file: &str,
        container: &str,
        drop_args: &[&str],
    ) -> String {
        let root = repo_root();
        let (ds, cms) = manifest::load(&root.join(ds_file), &root.join("deploy/configmap.yaml"));
        let overrides = [
            (
                "PLEXUS_KUBELET_DIR",
                self.node.host("var/lib/kubelet").display().to_string(),
            ),
            (
                "PLEXUS_LOG_FILE",
                self.node.host("var/log/plexus.log").display().to_string(),
            ),
            ("PLEXUS_LOG_LEVEL", "debug".to_string()),
        ];
        let overrides: Vec<(&str, String)> = if ds_file.contains("uninstall") {
            Vec::new()
        } else {
            overrides.to_vec()
        };
        let extra_env = [
            ("KUBERNETES_SERVICE_HOST", "127.0.0.1".to_string()),
            (
                "KUBERNETES_SERVICE_PORT",
                self.api.addr().port().to_string(),
            ),
        ];
        let mut inv = manifest::invocation(
            &self.node,
            &ds,
            &cms,
            container,
            &overrides,
            &extra_env,
            &self.pod_uid,
        );
        inv.argv.retain(|a| !drop_args.contains(&a.as_str()));
        let id = format!("{}-{}", container, std::process::id());
        let (ok, out) = self
            .containerd
            .run_container(&id, &self.image, &inv.opts, &inv.argv);
        assert!(
            ok,
            "{ds_file} {container} failed: {out}\n{inv:?}\ncontainerd: {}",
            self.containerd.log_tail()
        );
        out
    }

    /// The projected token volume as the kubelet keeps it on the host.
    fn write_token(&self) {
        let dir = self
            .node
            .host("var/lib/kubelet/pods")
            .join(&self.pod_uid)
            .join("volumes/kubernetes.io~projected/plexus-token");
        std::fs::create_dir_all(&dir).expect("token dir");
        std::fs::write(dir.join("token"), TOKEN).expect("token");
        std::fs::write(dir.join("ca.crt"), self.api.ca_pem().expect("https")).expect("ca.crt");
    }

    /// Stores the pod in the API and returns it as the kubelet hands it to the runtime.
    fn pod(&self, name: &str, networks: Option<&str>) -> PodSpec {
        let mut annotations = HashMap::from([("e2e/owner".to_string(), "plexus".to_string())]);
        if let Some(n) = networks {
            annotations.insert(NETWORKS.to_string(), n.to_string());
        }
        self.api.put_pod(
            json!({"metadata": {"name": name, "namespace": NS, "annotations": annotations}}),
        );
        let uid = self
            .api
            .pod(NS, name)
            .and_then(|p| p["metadata"]["uid"].as_str().map(str::to_string))
            .expect("uid");
        PodSpec {
            namespace: NS.into(),
            name: name.into(),
            uid,
            annotations,
        }
    }

    fn run_pod(&mut self, pod: &PodSpec) -> Result<String, String> {
        let logs = self.node.host("var/log/pods").join(&pod.name);
        std::fs::create_dir_all(&logs).expect("log dir");
        self.cri.run_pod(pod, &logs)
    }

    fn delete_pod(&mut self, id: &str) {
        self.cri.stop_pod(id);
        self.cri.remove_pod(id);
    }

    /// Leases host-local holds (its lock and last-reserved markers are not leases).
    fn leases(&self) -> Vec<String> {
        self.node
            .files_under("var/lib/cni/networks")
            .into_iter()
            .filter(|p| {
                let n = p.file_name().unwrap_or_default().to_string_lossy();
                n != "lock" && !n.starts_with("last_reserved_ip")
            })
            .map(|p| {
                p.strip_prefix(self.node.host("var/lib/cni/networks"))
                    .unwrap_or(&p)
                    .display()
                    .to_string()
            })
            .collect()
    }

    /// Journal records (plexus's per-container lock files are not records).
    fn journal(&self) -> Vec<PathBuf> {
        self.node
            .files_under("var/lib/plexus")
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect()
    }

    /// The node's host-side veths (one per pod on the bridge).
    fn pod_veths(&self) -> Vec<String> {
        self.node
            .links()
            .into_iter()
            .filter(|l| l.starts_with("veth"))
            .collect()
    }

    fn wait_network_ready(&mut self) {
        let cri = &mut self.cri;
        wait_for("containerd's NetworkReady", || {
            let (ready, _) = cri.network_ready();
            ready.then_some(())
        });
    }

    /// Waits until containerd has loaded a CNI config for which `pred` holds.
    fn wait_loaded(&mut self, what: &str, pred: impl Fn(&str) -> bool) {
        let cri = &mut self.cri;
        wait_for(what, || pred(&cri.loaded_cni_config()).then_some(()));
    }
}

fn v4(ifs: &[(String, Vec<String>)], name: &str) -> Option<String> {
    ifs.iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, a)| a.first().cloned())
}

fn leases_for(leases: &[String], net: &str) -> usize {
    leases
        .iter()
        .filter(|l| l.starts_with(&format!("{net}/")))
        .count()
}

#[test]
fn install_from_the_image_then_pods_through_the_cri() {
    let mut w = World::new("cri");
    w.write_token();
    let out = w.run_daemonset_container("deploy/daemonset.yaml", "install", &[]);
    assert!(out.contains("wrote ") && out.contains(CONFLIST), "{out}");
    let conflist: Value = serde_json::from_slice(
        &std::fs::read(w.node.host("etc/cni/net.d").join(CONFLIST)).expect("the conflist"),
    )
    .expect("JSON");
    let plugin = &conflist["plugins"][0];
    assert_eq!(
        plugin["clusterNetwork"],
        json!(w.node.host("etc/cni/net.d/10-cluster.conflist"))
    );
    assert_eq!(
        plugin["capabilities"]["io.kubernetes.cri.pod-annotations"],
        json!(true)
    );
    assert!(
        w.node.host("opt/cni/bin/plexus").is_file(),
        "the binary was installed"
    );
    w.wait_network_ready();
    w.wait_loaded("containerd to load plexus's conflist", |c| {
        c.contains("plexus-cni-network")
    });

    // A pod with one extra network: eth0 and net1 in the sandbox, status in the API, and the
    // annotations came from containerd (runtimeConfig), so ADD never GETs the pod.
    let web = w.pod("web", Some("storage"));
    let id = w
        .run_pod(&web)
        .unwrap_or_else(|e| panic!("RunPodSandbox: {e}\n{}", w.containerd.log_tail()));
    let netns = w.cri.netns_path(&id);
    let ifs = node::interfaces(&netns);
    let eth0 = v4(&ifs, "eth0").unwrap_or_else(|| panic!("no eth0 address: {ifs:?}"));
    let net1 = v4(&ifs, "net1").unwrap_or_else(|| panic!("no net1 address: {ifs:?}"));
    assert!(
        eth0.starts_with("10.248.0.") && net1.starts_with("10.249.0."),
        "{ifs:?}"
    );
    let stored = w.api.pod(NS, "web").expect("pod");
    let status: Value = serde_json::from_str(
        stored["metadata"]["annotations"][STATUS]
            .as_str()
            .expect("network-status"),
    )
    .expect("JSON");
    let entries = status.as_array().expect("a list");
    assert_eq!(entries.len(), 2, "{status}");
    assert_eq!(entries[0]["interface"], "eth0");
    assert_eq!(entries[0]["default"], true);
    assert_eq!(entries[0]["ips"], json!([eth0]));
    assert_eq!(entries[1]["name"], "e2e/storage");
    assert_eq!(entries[1]["ips"], json!([net1]));
    assert_eq!(
        w.api.count("GET", &format!("/api/v1/namespaces/{NS}/pods")),
        0,
        "ADD made a pod GET: {:?}",
        w.api.requests()
    );
    assert!(
        w.api.count(
            "GET",
            &format!(
                "/apis/k8s.cni.cncf.io/v1/namespaces/{NS}/network-attachment-definitions/storage"
            )
        ) >= 1
    );
    assert_eq!(
        w.journal().len(),
        1,
        "one journal record: {:?}",
        w.journal()
    );
    assert_eq!(w.pod_veths().len(), 1);

    // A pod whose second network fails: RunPodSandbox fails and nothing of it is left.
    let half = w.pod("half", Some("storage,broken"));
    let err = w
        .run_pod(&half)
        .expect_err("a pod with a broken network must not start");
    assert!(err.contains("broken"), "the error names the network: {err}");
    assert!(
        w.cri.list_pods().iter().all(|(_, n)| n != "half"),
        "{:?}",
        w.cri.list_pods()
    );
    let leases = w.leases();
    assert_eq!(
        (
            leases_for(&leases, "cluster"),
            leases_for(&leases, "storage"),
            leases_for(&leases, "broken")
        ),
        (1, 1, 0),
        "only web's leases: {leases:?}"
    );
    assert_eq!(w.journal().len(), 1, "only web's record: {:?}", w.journal());
    assert_eq!(
        w.pod_veths().len(),
        1,
        "only web's veth: {:?}",
        w.node.links()
    );

    // Stop + remove: no link, lease or journal record left.
    w.delete_pod(&id);
    assert!(!netns.exists(), "the sandbox's netns is gone");
    assert_eq!(w.leases(), Vec::<String>::new());
    assert_eq!(w.journal(), Vec::<PathBuf>::new());
    assert_eq!(w.pod_veths(), Vec::<String>::new());
    assert!(w.cri.list_pods().is_empty());
}

/// The uninstall DaemonSet's command (run once per step here; the DaemonSet repeats it with
/// --wait): pods that need plexus are still DELeted cleanly, new pods get the cluster network.
#[test]
fn uninstall_drains_then_leaves_the_node_on_its_primary_network() {
    let mut w = World::new("uninst");
    w.write_token();
    w.run_daemonset_container("deploy/daemonset.yaml", "install", &[]);
    w.wait_network_ready();
    w.wait_loaded("containerd to load plexus's conflist", |c| {
        c.contains("plexus-cni-network")
    });
    let old = w.pod("old", Some("storage"));
    let old_id = w
        .run_pod(&old)
        .unwrap_or_else(|e| panic!("RunPodSandbox: {e}"));
    assert!(v4(&node::interfaces(&w.cri.netns_path(&old_id)), "net1").is_some());

    // Step 1: a pod still has another network, so plexus drains.
    let out =
        w.run_daemonset_container("deploy/uninstall/daemonset.yaml", "uninstall", &["--wait"]);
    assert!(out.contains("only the cluster network"), "{out}");
    assert!(
        w.node.host("opt/cni/bin/plexus").exists(),
        "DEL still needs plexus"
    );
    w.wait_loaded("containerd to load the draining conflist", |c| {
        c.contains("plexus-cni-network") && !c.contains("plexus.kubeconfig")
    });
    let fresh = w.pod("fresh", Some("storage"));
    let fresh_id = w
        .run_pod(&fresh)
        .unwrap_or_else(|e| panic!("RunPodSandbox: {e}"));
    let ifs = node::interfaces(&w.cri.netns_path(&fresh_id));
    assert!(
        v4(&ifs, "eth0").is_some() && v4(&ifs, "net1").is_none(),
        "a new pod gets the cluster network only: {ifs:?}"
    );

    // The old pod is deleted: plexus DELs every network from its journal.
    w.delete_pod(&old_id);
    assert_eq!(leases_for(&w.leases(), "storage"), 0, "{:?}", w.leases());

    // Step 2: nothing needs plexus any more: it is removed; the runtime runs the primary.
    let out =
        w.run_daemonset_container("deploy/uninstall/daemonset.yaml", "uninstall", &["--wait"]);
    assert!(out.contains("removed"), "{out}");
    assert!(!w.node.host("etc/cni/net.d").join(CONFLIST).exists());
    assert!(!w.node.host("opt/cni/bin/plexus").exists());
    w.wait_loaded("containerd to load the primary conflist", |c| {
        !c.contains("plexus-cni-network") && c.contains("pxe2e0")
    });
    let records = w.journal().len();
    let after = w.pod("after", Some("storage"));
    let after_id = w
        .run_pod(&after)
        .unwrap_or_else(|e| panic!("RunPodSandbox: {e}"));
    assert!(v4(&node::interfaces(&w.cri.netns_path(&after_id)), "eth0").is_some());
    assert_eq!(w.journal().len(), records, "plexus no longer runs");
    for id in [fresh_id, after_id] {
        w.delete_pod(&id);
    }
    assert_eq!(w.leases(), Vec::<String>::new());
    assert_eq!(w.pod_veths(), Vec::<String>::new());
}
