//! The scratch node: a network namespace standing in for the node's host network (containerd
//! and every CNI plugin it runs live in it), a veth whose one end is the macvlan master, and a
//! directory tree standing in for the node's `/etc/cni/net.d`, `/opt/cni/bin`, `/var/lib/...`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::run;

/// The macvlan master inside the node namespace.
pub const MASTER: &str = "e2e-m0";

/// The node; dropping it deletes the namespace and the directory tree.
pub struct Node {
    /// Name of the node's network namespace (`/run/netns/<netns>`).
    pub netns: String,
    /// The scratch root; host paths `/x/y` of the node are `<root>/x/y`.
    pub root: PathBuf,
}

impl Node {
    /// Creates the namespace (loopback up, a veth pair for the macvlan master) and the tree.
    pub fn new(tag: &str) -> Node {
        let netns = format!("pxe2e-{tag}-{}", std::process::id());
        let root = std::env::temp_dir().join(&netns);
        let _ = std::fs::remove_dir_all(&root);
        let _ = Command::new("ip").args(["netns", "del", &netns]).status();
        run(Command::new("ip").args(["netns", "add", &netns]));
        let node = Node { netns, root };
        for d in [
            "etc/cni/net.d",
            "opt/cni/bin",
            "var/lib/kubelet",
            "var/lib/cni",
            "var/log",
            "run/netns",
        ] {
            std::fs::create_dir_all(node.host(d)).expect("create the node's directories");
        }
        node.ip(&["link", "set", "lo", "up"]);
        node.ip(&[
            "link", "add", MASTER, "type", "veth", "peer", "name", "e2e-m0p",
        ]);
        node.ip(&["link", "set", MASTER, "up"]);
        node.ip(&["link", "set", "e2e-m0p", "up"]);
        node
    }

    /// The node's path `/<p>` (given without the leading slash or with it) in the scratch tree.
    pub fn host(&self, p: impl AsRef<Path>) -> PathBuf {
        let p = p.as_ref();
        self.root.join(p.strip_prefix("/").unwrap_or(p))
    }

    /// `/run/netns/<netns>`.
    pub fn netns_path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.netns)
    }

    /// `ip -n <netns> ARGS`, which must succeed; its stdout.
    pub fn ip(&self, args: &[&str]) -> String {
        run(Command::new("ip").args(["-n", &self.netns]).args(args))
    }

    /// The links of the node namespace (`ip -j link`).
    pub fn links(&self) -> Vec<String> {
        let v: Value = serde_json::from_str(&self.ip(&["-j", "link"])).expect("ip -j link");
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l["ifname"].as_str().map(str::to_string))
            .collect()
    }

    /// Every regular file under the node's path `dir`, recursively (empty when it is absent).
    pub fn files_under(&self, dir: &str) -> Vec<PathBuf> {
        let mut out = Vec::new();
        walk(&self.host(dir), &mut out);
        out.sort();
        out
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The interfaces of the network namespace at `path` (a bind mount or `/proc/PID/ns/net`):
/// name to IPv4 addresses (`nsenter --net=PATH ip -j addr`).
pub fn interfaces(path: &Path) -> Vec<(String, Vec<String>)> {
    let out = run(Command::new("nsenter")
        .arg(format!("--net={}", path.display()))
        .args(["ip", "-j", "addr"]));
    let v: Value = serde_json::from_str(&out).expect("ip -j addr");
    v.as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            let name = l["ifname"].as_str().unwrap_or_default().to_string();
            let v4 = l["addr_info"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|a| a["family"] == "inet")
                .filter_map(|a| a["local"].as_str().map(str::to_string))
                .collect();
            (name, v4)
        })
        .collect()
}
