//! Shared fixtures of the built-in delegate tests: uniquely named namespaces removed on drop, a
//! node namespace with a veth master and a default route, plugin runs the way a runtime makes
//! them, and normalized snapshots of what a plugin left in a pod. `diff` runs one config through
//! a reference plugin and the built-in side by side. Also compiled into the VM lane's guest
//! driver (examples/vm_guest), which names the plexus binary in `PLEXUS_BIN`.
#![allow(dead_code, clippy::disallowed_methods)]

pub mod diff;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The plexus binary under test: cargo's for an integration test, `PLEXUS_BIN` for a driver built
/// as an example (cargo names binaries only to integration tests).
pub fn plexus_bin() -> PathBuf {
    option_env!("CARGO_BIN_EXE_plexus")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("PLEXUS_BIN").map(PathBuf::from))
        .expect("PLEXUS_BIN names the plexus binary outside cargo's integration tests")
}

/// Fails loudly unless root (these tests need network namespaces).
pub fn require_root() {
    assert!(
        rustix::process::geteuid().is_root(),
        "this test needs root (network namespaces)"
    );
}

/// A name unique to this process and call, at most 15 bytes.
pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let s = format!("{prefix}{}x{n}", std::process::id() % 100_000);
    s.chars().take(15).collect()
}

/// Runs a command and asserts success; returns stdout.
pub fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A named network namespace, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(prefix: &str) -> Netns {
        let name = unique(prefix);
        sh(&["ip", "netns", "add", &name]);
        sh(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        Netns { name }
    }

    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    pub fn ip(&self, args: &[&str]) -> String {
        let mut v = vec!["ip", "-n", &self.name];
        v.extend_from_slice(args);
        sh(&v)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A temporary directory, removed on drop.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let path = std::env::temp_dir().join(unique(prefix));
        std::fs::create_dir_all(&path).unwrap();
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The host side: a node namespace whose `m0` (a veth, 10.77.0.1/24, default route via
/// 10.77.0.254) is the master for macvlan; plus a directory with `macvlan`/`ipvlan`/`vlan`
/// symlinks to the plexus binary.
pub struct Node {
    pub ns: Netns,
    pub bin: TempDir,
}

impl Node {
    pub fn new() -> Node {
        require_root();
        let ns = Netns::new("pxn");
        ns.ip(&["link", "add", "m0", "type", "veth", "peer", "name", "m0p"]);
        ns.ip(&["link", "set", "m0", "up"]);
        ns.ip(&["link", "set", "m0p", "up"]);
        ns.ip(&["addr", "add", "10.77.0.1/24", "dev", "m0"]);
        ns.ip(&["route", "add", "default", "via", "10.77.0.254", "dev", "m0"]);
        let bin = TempDir::new("pxbin");
        for name in ["macvlan", "ipvlan", "vlan"] {
            std::os::unix::fs::symlink(plexus_bin(), bin.path.join(name)).unwrap();
        }
        Node { ns, bin }
    }

    /// The plexus multi-call binary for `plugin`.
    pub fn plexus(&self, plugin: &str) -> PathBuf {
        self.bin.path.join(plugin)
    }

    /// Runs a plugin binary inside the node namespace with a runtime's environment.
    pub fn run(&self, bin: &Path, call: &Call<'_>, conf: &Value) -> Outcome {
        self.run_with_path(bin, call, conf, "/usr/lib/cni")
    }

    /// As [`Node::run`] with `CNI_PATH` = `cni_path`.
    pub fn run_with_path(
        &self,
        bin: &Path,
        call: &Call<'_>,
        conf: &Value,
        cni_path: &str,
    ) -> Outcome {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns.name, "env", "-i"])
            .arg(format!("CNI_COMMAND={}", call.command))
            .arg(format!("CNI_CONTAINERID={}", call.container_id))
            .arg(format!("CNI_NETNS={}", call.netns))
            .arg(format!("CNI_IFNAME={}", call.ifname))
            .arg(format!("CNI_ARGS={}", call.args))
            .arg(format!("CNI_PATH={cni_path}"))
            .arg("PATH=/usr/sbin:/usr/bin:/sbin:/bin")
            .arg(bin)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(&serde_json::to_vec(conf).unwrap())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        Outcome {
            ok: out.status.success(),
            json: serde_json::from_str(&stdout).unwrap_or(Value::Null),
            stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Index of a node link, to recognise the master relation from inside a pod.
    pub fn index_of(&self, name: &str) -> u64 {
        let v: Value = serde_json::from_str(&self.ns.ip(&["-j", "link", "show", name])).unwrap();
        v[0]["ifindex"].as_u64().unwrap()
    }
}

/// One CNI call's environment.
pub struct Call<'a> {
    pub command: &'a str,
    pub container_id: &'a str,
    pub netns: &'a str,
    pub ifname: &'a str,
    pub args: &'a str,
}

/// What a plugin run printed.
#[derive(Debug)]
pub struct Outcome {
    pub ok: bool,
    pub json: Value,
    pub stdout: String,
    pub stderr: String,
}

/// What a pod namespace holds, with the values that legitimately differ between two runs (MAC
/// addresses, link indexes, link-local addresses derived from the MAC) left out: the master
/// relation is written as the master's name, and a MAC as `node:m0` when it is the master's
/// (ipvlan and vlan links share it) or `own` otherwise. The whole kind-specific data is kept
/// (macvlan and ipvlan mode and flags, vlan protocol, id and flags).
pub fn snapshot(node: &Node, pod: &Netns) -> Value {
    settle_vlans(pod);
    let links: Value = serde_json::from_str(&pod.ip(&["-d", "-j", "link", "show"])).unwrap();
    // The master may be gone (a DEL after its removal).
    let node_links: Value = serde_json::from_str(&node.ns.ip(&["-j", "link", "show"])).unwrap();
    let m0 = node_links
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["ifname"] == "m0");
    let m0_index = m0.and_then(|l| l["ifindex"].as_u64());
    let m0_mac = m0.and_then(|l| l["address"].as_str());
    let links: Vec<Value> = links
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let master = match (l.get("link_netnsid"), l.get("link_index")) {
                (Some(_), Some(i)) if m0_index.is_some() && i.as_u64() == m0_index => {
                    json!("node:m0")
                }
                (Some(_), Some(i)) => json!(format!("node:{i}")),
                _ => Value::Null,
            };
            let mac = if m0_mac.is_some() && l["address"].as_str() == m0_mac {
                "node:m0"
            } else {
                "own"
            };
            json!({
                "ifname": l["ifname"],
                "kind": l["linkinfo"]["info_kind"],
                "info": l["linkinfo"]["info_data"],
                "mac": mac,
                "mtu": l["mtu"],
                "flags": l["flags"],
                "operstate": l["operstate"],
                "txqlen": l.get("txqlen"),
                "master": master,
            })
        })
        .collect();
    let addrs: Value = serde_json::from_str(&pod.ip(&["-j", "addr", "show"])).unwrap();
    let addrs: Vec<Value> = addrs
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| {
            let ifname = i["ifname"].clone();
            i["addr_info"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|a| a["scope"] != "link" || a["family"] == "inet")
                .map(move |a| {
                    json!({"dev": ifname, "family": a["family"], "local": a["local"],
                           "prefixlen": a["prefixlen"], "broadcast": a.get("broadcast"),
                           "scope": a["scope"]})
                })
        })
        .collect();
    let mut routes = Vec::new();
    for fam in ["-4", "-6"] {
        let r: Value =
            serde_json::from_str(&pod.ip(&[fam, "-j", "route", "show", "table", "all"])).unwrap();
        for x in r.as_array().unwrap() {
            if x["dst"]
                .as_str()
                .is_some_and(|d| d.starts_with("fe80") || d.starts_with("ff00"))
                || x["type"] == "multicast"
            {
                continue;
            }
            routes.push(x.clone());
        }
    }
    json!({"links": links, "addrs": addrs, "routes": routes})
}

/// Waits (up to 5 s) until no vlan link in `pod` is in operstate UNKNOWN. The kernel computes a
/// new vlan's operstate in its linkwatch work, asynchronously, up to a second after the link
/// came up (seen for the reference plugin's links and the built-in's alike); before that `ip`
/// shows UNKNOWN, after it UP (or LOWERLAYERDOWN). Snapshots compare the settled state.
fn settle_vlans(pod: &Netns) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let links: Value = serde_json::from_str(&pod.ip(&["-d", "-j", "link", "show"])).unwrap();
        let pending = links
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["linkinfo"]["info_kind"] == "vlan" && l["operstate"] == "UNKNOWN");
        if !pending || Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A result with MAC values and the sandbox path (which names each side's own namespace)
/// replaced by placeholders, parsed through plexus's result type so that formatting does not
/// matter (the Go plugins print `"dns":{}`).
pub fn normalized_result(v: &Value, version: &str) -> Value {
    let mut r = plexus::cni::result::CniResult::from_value(v, version)
        .unwrap_or_else(|e| panic!("not a result: {e}: {v}"));
    for i in &mut r.interfaces {
        if i.mac.is_some() {
            i.mac = Some("<mac>".into());
        }
        if i.sandbox.is_some() {
            i.sandbox = Some("<sandbox>".into());
        }
    }
    r.to_value(version).unwrap()
}

/// Lease files host-local keeps in `dir` (everything but its lock and bookkeeping).
pub fn leases(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != "lock" && !n.starts_with("last_reserved_ip"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}
