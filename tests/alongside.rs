//! `alongsideClusterNetwork: true`: a NAD whose only plugin makes its own interface (macvlan,
//! ipvlan, vlan, host-device) with config-routed IPAM runs while the cluster network's delegate is
//! still running; anything else waits for it. A failure on either side rolls back everything that
//! started. Without the key, Multus's strict order holds.
//!
//! Every overlap is proved with explicit signals (`common::signal`), never with a time window:
//! the cluster network is a plugin held at a gate the test controls. "Runs alongside" is
//! proved by the NAD network's interface appearing while the gate is still closed; "waits" by a
//! probe in front of the NAD network's plugin recording that the gate was already open when it
//! started (the test opens it only once plexus has journaled the plan and sleeps with the gated
//! plugin as its only child: a network it meant to start alongside would have started by then).

mod common;

use common::Outcome;
use common::conf::{ipvlan_conf, write_conf};
use common::k8s::{Cluster, NETWORKS, Pod};
use common::signal::{Gate, asleep_with_children, probe_plugin, probes, wait_until};
use serde_json::{Value, json};

/// How the gated cluster plugin ends its ADD.
enum Ends {
    Ok,
    Fails,
}

/// Writes the cluster network `gated` (plugin `px-gated`) and returns plexus's config using it,
/// with `alongsideClusterNetwork: true`, the test's bin dir first and a delegate timeout longer
/// than [`common::signal::SIGNAL_TIMEOUT`]. The plugin's ADD waits at
/// `add` (when given) and then answers or fails; its DEL waits at `del` (when given).
fn gated_cluster(c: &Cluster, add: Option<&Gate>, del: Option<&Gate>, ends: Ends) -> Value {
    let answer = match ends {
        Ends::Ok => r#"printf '{"cniVersion":"1.0.0","interfaces":[{"name":"eth0"}],"ips":[]}'"#,
        Ends::Fails => {
            r#"printf '{"cniVersion":"1.0.0","code":11,"msg":"cluster says no"}'; exit 1"#
        }
    };
    let wait = |g: Option<&Gate>| g.map(Gate::wait_sh).unwrap_or_default();
    c.env.write_plugin(
        "px-gated",
        &format!(
            "cat >/dev/null\ncase \"$CNI_COMMAND\" in\nADD)\n{add}{answer}\n;;\nDEL)\n{del}exit 0\n;;\nesac",
            add = wait(add),
            del = wait(del),
        ),
    );
    let path = write_conf(
        &c.env,
        "05-gated.conf",
        &json!({"cniVersion": "1.0.0", "name": "gated", "type": "px-gated"}),
    );
    let mut conf = c.conf();
    conf["clusterNetwork"] = json!(path);
    conf["binDir"] = json!(c.env.bin_dir());
    conf["alongsideClusterNetwork"] = json!(true);
    // Longer than a test waits for any signal: a plugin held at a gate is never killed first.
    conf["delegateTimeoutSeconds"] = json!(45);
    conf
}

/// Waits until plexus (`pid`) knows its plan naming `ifname` and is then asleep with one child,
/// the plugin held at the gate: it has started everything it was going to start before that
/// plugin ends.
fn wait_until_settled(c: &Cluster, pid: u32, id: &str, ifname: &str) {
    let journal = c.env.journal_dir().join(format!("{id}.json"));
    wait_until(
        &format!(
            "plexus knows the plan naming {ifname} (journaled, or its NAD read), then waits on \
             the gated plugin alone"
        ),
        || {
            // In Multus's order the cluster network's delegate runs on plexus's main thread and
            // the rest of the plan is journaled once it is done; the NAD's GET shows the plan is
            // known all the same.
            let known = std::fs::read_to_string(&journal)
                .is_ok_and(|j| j.contains(&format!("\"{ifname}\"")))
                || c.api.count("GET", "/apis/k8s.cni.cncf.io/") > 0;
            known && asleep_with_children(pid).is_some_and(|children| children.len() == 1)
        },
        || c.env.log(),
    );
}

/// Runs ADD with the cluster network held at `gate` until net1 has its address (so net1 ran
/// alongside), then lets the cluster network go; returns how the ADD ended.
fn add_with_net1_alongside(
    c: &Cluster,
    gate: &Gate,
    id: &str,
    netns: &str,
    pod: &Pod,
    conf: &Value,
) -> Outcome {
    let add = c.start_cni("ADD", id, netns, pod, conf);
    gate.wait_arrivals(1, || c.env.log());
    wait_until(
        "net1 gets its address while the cluster network is held at its gate",
        || !c.env.addrs(netns, "net1").is_empty(),
        || c.env.log(),
    );
    gate.open();
    add.finish()
}

/// A NAD `name` (macvlan, followed by `tuning` when `chained`) whose macvlan is a
/// [`probe_plugin`] recording the state of `gate` when it starts.
fn probed_macvlan_nad(c: &Cluster, name: &str, chained: bool, gate: &Gate) {
    probe_plugin(&c.env, "macvlan", gate);
    let macvlan = c.macvlan(1);
    let conf = if chained {
        json!({"cniVersion": "1.0.0", "plugins": [macvlan, {"type": "tuning"}]})
    } else {
        macvlan
    };
    c.put_nad("default", name, Some(&conf));
}

#[test]
fn a_macvlan_nad_runs_while_the_cluster_network_does() {
    let c = Cluster::new("alon", 150);
    let o = c.env.octet;
    c.put_nad("default", "fast", Some(&c.macvlan(1)));
    let pod = Pod::new("default", "quick");
    c.put_pod(&pod, &[(NETWORKS, "fast")]);
    let netns = c.env.add_pod();
    let id = format!("c{}", c.env.uid);
    let gate = Gate::new(&c.env, "cluster-add");
    let conf = gated_cluster(&c, Some(&gate), None, Ends::Ok);

    add_with_net1_alongside(&c, &gate, &id, &netns, &pod, &conf).ok();

    let net1 = c.addr(&netns, "net1");
    assert!(net1.starts_with(&format!("10.{o}.1.")), "net1 {net1}");
    let status = c.network_status(&pod);
    assert_eq!(status.len(), 2, "{status:?}");
    c.cni("DEL", &id, &netns, &pod, &conf).ok();
    c.env.assert_nothing_left();
}

/// The NAD `chained` (when `chained`, macvlan + tuning) or a plain macvlan with
/// `alongsideClusterNetwork` `alongside`: its macvlan starts only after the cluster network's
/// gate was opened.
fn nad_waits_for_the_cluster_network(tag: &str, octet: u8, chained: bool, alongside: bool) {
    let c = Cluster::new(tag, octet);
    let gate = Gate::new(&c.env, "cluster-add");
    probed_macvlan_nad(&c, "later", chained, &gate);
    let pod = Pod::new("default", "careful");
    c.put_pod(&pod, &[(NETWORKS, "later")]);
    let netns = c.env.add_pod();
    let id = format!("c{}", c.env.uid);
    let mut conf = gated_cluster(&c, Some(&gate), None, Ends::Ok);
    conf["builtinDelegates"] = json!(false);
    conf["alongsideClusterNetwork"] = json!(alongside);

    let add = c.start_cni("ADD", &id, &netns, &pod, &conf);
    gate.wait_arrivals(1, || c.env.log());
    wait_until_settled(&c, add.pid(), &id, "net1");
    gate.open();
    add.finish().ok();

    assert_eq!(
        probes(&c.env),
        ["macvlan ADD net1 open"],
        "net1 (chained: {chained}, alongsideClusterNetwork: {alongside}) must start only after \
         the cluster network is done"
    );
    assert!(c.ifnames(&netns).contains(&"net1".to_string()));
    c.cni("DEL", &id, &netns, &pod, &conf).ok();
    c.env.assert_nothing_left();
}

#[test]
fn a_chained_nad_waits_for_the_cluster_network() {
    nad_waits_for_the_cluster_network("alch", 151, true, true);
}

#[test]
fn by_default_every_network_waits_for_the_one_before_it() {
    nad_waits_for_the_cluster_network("alsq", 154, false, false);
}

#[test]
fn a_failed_cluster_network_rolls_back_what_ran_alongside_it() {
    let c = Cluster::new("alcf", 152);
    c.put_nad("default", "fast", Some(&c.macvlan(1)));
    let pod = Pod::new("default", "doomed");
    c.put_pod(&pod, &[(NETWORKS, "fast")]);
    let netns = c.env.add_pod();
    let id = format!("c{}", c.env.uid);
    let gate = Gate::new(&c.env, "cluster-add");
    let conf = gated_cluster(&c, Some(&gate), None, Ends::Fails);

    let out = add_with_net1_alongside(&c, &gate, &id, &netns, &pod, &conf);

    let msg = out.err_code(11);
    assert!(
        msg.contains("gated") && msg.contains("cluster says no"),
        "the error names the cluster network and its message: {msg}"
    );
    assert_eq!(
        c.ifnames(&netns),
        Vec::<String>::new(),
        "net1 is rolled back"
    );
    c.env.assert_nothing_left();
    assert!(!c.has_network_status(&pod), "no status for a failed ADD");
}

#[test]
fn a_failed_network_alongside_rolls_back_the_cluster_network() {
    // ipvlan runs alongside (one self-contained plugin) and fails on this kernel.
    let c = Cluster::new("alnf", 153);
    c.put_nad("default", "broken", Some(&ipvlan_conf(&c.env, "broken", 1)));
    let pod = Pod::new("default", "unlucky");
    c.put_pod(&pod, &[(NETWORKS, "broken")]);
    let netns = c.env.add_pod();
    let id = format!("c{}", c.env.uid);

    let mut conf = c.conf();
    conf["alongsideClusterNetwork"] = json!(true);
    let out = c.cni("ADD", &id, &netns, &pod, &conf);

    let (_, msg) = out.err();
    assert!(
        msg.contains("broken") && msg.contains("ipvlan") && msg.contains("net1"),
        "the error names the network, plugin and interface: {msg}"
    );
    assert_eq!(
        c.ifnames(&netns),
        Vec::<String>::new(),
        "eth0 is rolled back"
    );
    c.env.assert_nothing_left();
}

#[test]
fn del_runs_them_alongside_too() {
    // A stand-in "macvlan" (self-contained by type) and the cluster network both wait at one
    // gate in their DEL: both get there only if the two DELs run at the same time.
    let c = Cluster::new("alde", 155);
    let gate = Gate::new(&c.env, "del");
    c.env.write_plugin(
        "macvlan",
        &format!(
            "cat >/dev/null\ncase \"$CNI_COMMAND\" in\n\
             ADD) printf '{{\"cniVersion\":\"1.0.0\",\"interfaces\":[{{\"name\":\"%s\"}}],\"ips\":[]}}' \"$CNI_IFNAME\" ;;\n\
             DEL)\n{wait};;\nesac",
            wait = gate.wait_sh(),
        ),
    );
    c.put_nad(
        "default",
        "stand-in",
        Some(&json!({"cniVersion": "1.0.0", "type": "macvlan", "master": c.env.master})),
    );
    let pod = Pod::new("default", "twin");
    c.put_pod(&pod, &[(NETWORKS, "stand-in")]);
    let netns = c.env.add_pod();
    let id = format!("c{}", c.env.uid);
    let mut conf = gated_cluster(&c, None, Some(&gate), Ends::Ok);
    conf["builtinDelegates"] = json!(false);
    c.cni("ADD", &id, &netns, &pod, &conf).ok();

    let del = c.start_cni("DEL", &id, &netns, &pod, &conf);
    let arrived = gate.wait_arrivals(2, || {
        format!(
            "net1's DEL must run while the cluster network's does\n{}",
            c.env.log()
        )
    });
    gate.open();
    del.finish().ok();

    assert_eq!(arrived, ["DEL eth0", "DEL net1"]);
    c.env.assert_nothing_left();
}
