//! The quickstart behind `make demo`: an embedded Kubernetes API server holding two
//! NetworkAttachmentDefinitions and two annotated pods, a real "node" network namespace with a
//! bridge cluster network and a macvlan segment, two real pod namespaces, and the real `plexus`
//! binary called exactly as a container runtime calls it. It prints what a user would look at,
//! pings across the macvlan network, DELs both pods and shows that nothing is left.
#![allow(clippy::disallowed_methods)] // a demo driver runs `ip` and plexus itself

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use plexus_testapi::TestApiServer;
use serde_json::{Value, json};

/// Where the reference CNI plugins are: `CNI_PLUGIN_DIR` (as the Makefile takes it), else
/// Debian's `/usr/lib/cni`.
fn plugins() -> String {
    std::env::var("CNI_PLUGIN_DIR")
        .ok()
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "/usr/lib/cni".to_string())
}

struct Netns(Vec<String>, PathBuf);

impl Drop for Netns {
    fn drop(&mut self) {
        for n in self.0.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn sh(args: &[&str]) -> Result<String, String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args[0]))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A section title: bold on a terminal, plain text anywhere else (a log, a pipe, CI) or when
/// `NO_COLOR` is set.
fn title(s: &str) {
    use std::io::IsTerminal;
    if std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
        println!("\n\x1b[1m== {s}\x1b[0m");
    } else {
        println!("\n== {s}");
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("quickstart failed: {e}");
        std::process::exit(1);
    }
}

#[allow(clippy::too_many_lines)] // the quickstart reads top to bottom as a script
fn run() -> Result<(), String> {
    let plexus = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/debug/plexus"));
    let plexus =
        std::fs::canonicalize(&plexus).map_err(|e| format!("{}: {e}", plexus.display()))?;
    let tag = format!("pxq{}", std::process::id() % 100000);
    let work = std::env::temp_dir().join(format!("plexus-quickstart-{tag}"));
    std::fs::create_dir_all(work.join("net.d")).map_err(|e| e.to_string())?;
    let node = format!("{tag}-node");
    let pods = [("web", format!("{tag}-web")), ("db", format!("{tag}-db"))];
    let mut guard = Netns(vec![], work.clone());

    title("1. A node namespace (bridge cluster network, macvlan master) and two pod namespaces");
    for n in std::iter::once(&node).chain(pods.iter().map(|(_, n)| n)) {
        sh(&["ip", "netns", "add", n])?;
        guard.0.push(n.clone());
    }
    sh(&["ip", "-n", &node, "link", "set", "lo", "up"])?;
    sh(&[
        "ip",
        "-n",
        &node,
        "link",
        "add",
        "storage0",
        "type",
        "veth",
        "peer",
        "name",
        "storage0p",
    ])?;
    sh(&["ip", "-n", &node, "link", "set", "storage0", "up"])?;
    sh(&["ip", "-n", &node, "link", "set", "storage0p", "up"])?;
    println!(
        "node {node}: master interface storage0; pods: {}",
        pods.iter()
            .map(|p| p.1.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );

    let leases = work.join("leases");
    let cluster = json!({"cniVersion":"1.0.0","name":"cluster","plugins":[{
        "type":"bridge","bridge":"pxq0","isGateway":true,
        "ipam":{"type":"host-local","dataDir":leases,"ranges":[[{"subnet":"10.244.9.0/24"}]]}}]});
    let cluster_path = work.join("net.d/10-cluster.conflist");
    std::fs::write(&cluster_path, cluster.to_string()).map_err(|e| e.to_string())?;

    title("2. The embedded API server: NADs and annotated pods");
    let api = TestApiServer::start_in_netns(Path::new(&format!("/run/netns/{node}")))
        .map_err(|e| e.to_string())?;
    let kubeconfig = work.join("kubeconfig");
    api.write_kubeconfig(&kubeconfig)
        .map_err(|e| e.to_string())?;
    let storage = json!({"cniVersion":"0.4.0","type":"macvlan","master":"storage0","mode":"bridge",
        "ipam":{"type":"host-local","dataDir":leases,"ranges":[[{"subnet":"10.55.0.0/24"}]]}});
    let mgmt = json!({"cniVersion":"1.0.0","type":"macvlan","master":"storage0","mode":"bridge",
        "ipam":{"type":"static"}});
    for (name, conf) in [("storage", &storage), ("mgmt", &mgmt)] {
        api.put_nad(
            json!({"apiVersion":"k8s.cni.cncf.io/v1","kind":"NetworkAttachmentDefinition",
            "metadata":{"name":name,"namespace":"demo"},"spec":{"config":conf.to_string()}}),
        );
    }
    let annotations = [
        ("web", "storage@data0".to_string()),
        (
            "db",
            json!([{"name":"storage","interface":"data0"},
                   {"name":"mgmt","ips":["10.66.0.20/24"],"mac":"02:00:00:00:66:20"}])
            .to_string(),
        ),
    ];
    for (pod, ann) in &annotations {
        api.put_pod(json!({"metadata":{"name":pod,"namespace":"demo",
            "annotations":{"k8s.v1.cni.cncf.io/networks":ann}}}));
        println!("pod demo/{pod}: k8s.v1.cni.cncf.io/networks: {ann}");
    }

    let conf = json!({"cniVersion":"1.0.0","name":"plexus","type":"plexus",
        "kubeconfig":kubeconfig,"clusterNetwork":cluster_path,"confDir":work.join("net.d"),
        "cniDir":work.join("journal"),"binDir":plugins(),
        "logFile":work.join("plexus.log"),"logLevel":"debug","logToStderr":false});
    let cni = |verb: &str, pod: &str, netns: &str, id: &str| -> Result<Value, String> {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &node])
            .arg(&plexus)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("CNI_COMMAND", verb)
            .env("CNI_CONTAINERID", id)
            .env("CNI_NETNS", format!("/run/netns/{netns}"))
            .env("CNI_IFNAME", "eth0")
            .env("CNI_PATH", plugins())
            .env(
                "CNI_ARGS",
                format!("IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME={pod};K8S_POD_INFRA_CONTAINER_ID={id}"),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        if let Some(mut i) = child.stdin.take() {
            i.write_all(conf.to_string().as_bytes())
                .map_err(|e| e.to_string())?;
        }
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if !out.status.success() {
            return Err(format!("plexus {verb} for {pod} failed: {text}"));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    };

    title("3. plexus ADD for each pod, as the runtime calls it");
    for (pod, netns) in &pods {
        api.clear_requests();
        let started = std::time::Instant::now();
        cni("ADD", pod, netns, &format!("{tag}{pod}"))?;
        let reqs: Vec<String> = api
            .requests()
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect();
        println!(
            "demo/{pod}: ADD ok in {:.1} ms; API requests: {}",
            started.elapsed().as_secs_f64() * 1000.0,
            reqs.join(", ")
        );
    }

    title("4. What the pods have");
    println!("POD    INTERFACE  NETWORK        ADDRESS              MAC");
    for (pod, netns) in &pods {
        let status: Vec<Value> = api
            .pod("demo", pod)
            .and_then(|p| {
                p["metadata"]["annotations"]["k8s.v1.cni.cncf.io/network-status"]
                    .as_str()
                    .map(str::to_string)
            })
            .and_then(|s| serde_json::from_str(&s).ok())
            .ok_or_else(|| format!("pod {pod} has no network-status"))?;
        let addrs: Vec<Value> =
            serde_json::from_str(&sh(&["ip", "-n", netns, "-j", "addr", "show"])?)
                .map_err(|e| e.to_string())?;
        for a in addrs.iter().filter(|a| a["ifname"] != "lo") {
            let ifname = a["ifname"].as_str().unwrap_or("");
            let network = status
                .iter()
                .find(|s| s["interface"] == ifname)
                .and_then(|s| s["name"].as_str())
                .unwrap_or("?");
            let v4 = a["addr_info"]
                .as_array()
                .and_then(|l| l.iter().find(|x| x["family"] == "inet"))
                .map(|x| format!("{}/{}", x["local"].as_str().unwrap_or(""), x["prefixlen"]))
                .unwrap_or_default();
            println!(
                "{:<6} {:<10} {:<14} {:<20} {}",
                pod,
                ifname,
                network,
                v4,
                a["address"].as_str().unwrap_or("")
            );
        }
    }
    for (pod, _) in &pods {
        let p = api.pod("demo", pod).unwrap_or(Value::Null);
        let s = p["metadata"]["annotations"]["k8s.v1.cni.cncf.io/network-status"]
            .as_str()
            .unwrap_or("");
        let pretty = serde_json::from_str::<Value>(s)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or_default();
        println!("\ndemo/{pod} annotation k8s.v1.cni.cncf.io/network-status:\n{pretty}");
    }

    title("5. Traffic over the macvlan network: web -> db on data0");
    let db_addrs: Vec<Value> = serde_json::from_str(&sh(&[
        "ip", "-n", &pods[1].1, "-j", "addr", "show", "data0",
    ])?)
    .map_err(|e| e.to_string())?;
    let db_ip = db_addrs
        .first()
        .and_then(|a| a["addr_info"].as_array())
        .and_then(|l| l.iter().find(|x| x["family"] == "inet"))
        .and_then(|x| x["local"].as_str())
        .ok_or("db has no data0 address")?
        .to_string();
    let ping = sh(&[
        "ip", "netns", "exec", &pods[0].1, "ping", "-c", "2", "-W", "2", "-I", "data0", &db_ip,
    ])?;
    println!(
        "{}",
        ping.lines()
            .filter(|l| l.contains("transmitted") || l.contains("bytes from"))
            .collect::<Vec<_>>()
            .join("\n")
    );

    title("6. DEL both pods (no API server needed: plexus works from its journal)");
    api.set_down(true);
    for (pod, netns) in &pods {
        cni("DEL", pod, netns, &format!("{tag}{pod}"))?;
        println!("demo/{pod}: DEL ok");
    }
    api.set_down(false);

    title("7. Nothing left behind");
    let mut left = 0;
    for (pod, netns) in &pods {
        let links: Vec<Value> =
            serde_json::from_str(&sh(&["ip", "-n", netns, "-j", "link", "show"])?)
                .map_err(|e| e.to_string())?;
        let n = links.iter().filter(|l| l["ifname"] != "lo").count();
        left += n;
        println!("demo/{pod}: interfaces besides lo: {n}");
    }
    let lease_files = count_files(&leases, &|n| {
        n != "lock" && !n.starts_with("last_reserved_ip")
    });
    let journal_files = count_files(&work.join("journal"), &|_| true);
    println!("IP leases left: {lease_files}; journal files left: {journal_files}");
    if left + lease_files + journal_files != 0 {
        return Err("something was left behind".into());
    }
    println!("clean.");
    drop(guard);
    Ok(())
}

fn count_files(dir: &Path, keep: &dyn Fn(&str) -> bool) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.filter_map(|e| e.ok())
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                count_files(&p, keep)
            } else {
                usize::from(keep(&e.file_name().to_string_lossy()))
            }
        })
        .sum()
}
