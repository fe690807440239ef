//! The agent keeps the node installed as `plexus install --watch` does (the same code, the same
//! flags after `install`): the binary and the conflist written, readiness saying the conflist
//! is first, and a stop (SIGTERM) leaving the conflist in place for the pods created while it
//! restarts.

mod agent_support;
mod common;

use agent_support::{Agent, NODE, put_pod_on};
use common::k8s::{Cluster, Pod};
use common::plexus_bin;
use serde_json::json;

#[test]
fn the_agent_keeps_the_node_installed_and_leaves_the_conflist_when_stopped() {
    let c = Cluster::new("ai1", 221);
    let pod = Pod::new("ns", "p");
    put_pod_on(&c, &pod, NODE, &[]);
    c.put_nad("ns", "n", None);
    let node = c.env.dir.join("node");
    let (conf_dir, bin_dir, journal) = (node.join("net.d"), node.join("bin"), node.join("journal"));
    std::fs::create_dir_all(&conf_dir).unwrap();
    std::fs::write(
        conf_dir.join("10-net.conflist"),
        json!({"cniVersion": "1.0.0", "name": "net", "plugins": [{"type": "bridge"}]}).to_string(),
    )
    .unwrap();
    let args = [
        "install".to_string(),
        format!("--bin-src={}", plexus_bin().display()),
        format!("--cni-bin-dir={}", bin_dir.display()),
        format!("--cni-conf-dir={}", conf_dir.display()),
        format!("--cni-dir={}", journal.display()),
        "--skip-kubeconfig".to_string(),
        "--poll-interval-ms=10".to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // Said once the binary and the conflist are written and checked first.
    let agent = Agent::start_until(&c, &c.conf(), &args, "stopping leaves");
    let conflist = conf_dir.join("00-00-plexus.conflist");
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&conflist).expect("the conflist")).unwrap();
    assert_eq!(written["plugins"][0]["type"], "plexus");
    assert_eq!(
        written["plugins"][0]["clusterNetwork"],
        json!(conf_dir.join("10-net.conflist"))
    );
    assert_eq!(
        std::fs::read(bin_dir.join("plexus")).unwrap(),
        std::fs::read(plexus_bin()).unwrap(),
        "the plugin is installed, not the agent"
    );
    agent.wait_for_pod(&pod);
    agent.wait_for_nad("ns", "n");
    let (code, ready) = agent.http("/readyz");
    assert_eq!(code, 200, "{ready}");
    assert!(ready.contains("00-00-plexus.conflist is first"), "{ready}");
    let before = std::fs::read(&conflist).unwrap();
    let log = c.env.dir.join("agent").join("agent.log");
    assert!(agent.stop().success());
    assert_eq!(
        std::fs::read(&conflist).ok(),
        Some(before),
        "the conflist stays"
    );
    let said = std::fs::read_to_string(log).unwrap_or_default();
    assert!(
        said.contains("stays, so pods keep getting their networks"),
        "{said}"
    );
}
