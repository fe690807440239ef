//! `alongsideClusterNetwork: true`: a NAD whose only plugin makes its own interface (macvlan,
//! ipvlan, vlan, host-device) with config-routed IPAM runs while the cluster network's delegate is
//! still running; anything else waits for it. A failure on either side rolls back everything that
//! started. Without the key, Multus's strict order holds.
//!
//! The cluster network here is a script that watches for the NAD network's host-local lease
//! while it runs: seeing it proves the two overlapped; not seeing it within a second proves the
//! NAD waited (a wrong overlap would make it appear).

mod common;

use common::conf::{ipvlan_conf, write_conf};
use common::k8s::{Cluster, NETWORKS, Pod};
use serde_json::{Value, json};

/// How the watching cluster plugin ends its ADD.
enum Ends {
    Ok,
    Fails,
}

/// Writes the watching cluster network `watcher` and returns plexus's config using it. The
/// plugin waits up to `polls` x 10 ms for a lease of network `nad`, records `saw` or `none`
/// in `<dir>/seen`, then answers (or fails) its ADD; any other command touches
/// `<dir>/cluster-del` and succeeds.
fn watching_cluster(c: &Cluster, nad: &str, polls: u32, ends: Ends) -> Value {
    let leases = c.env.ipam_dir().join(nad);
    let seen = c.env.dir.join("seen");
    let answer = match ends {
        Ends::Ok => {
            r#"printf '{"cniVersion":"1.0.0","interfaces":[{"name":"eth0"}],"ips":[]}'"#.to_string()
        }
        Ends::Fails => {
            r#"printf '{"cniVersion":"1.0.0","code":11,"msg":"cluster says no"}'; exit 1"#
                .to_string()
        }
    };
    c.env.write_plugin(
        "px-watcher",
        &format!(
            r#"[ "$CNI_COMMAND" = ADD ] || {{ touch '{dir}/cluster-del'; exit 0; }}
cat >/dev/null
i=0
while [ $i -lt {polls} ]; do
  if ls '{leases}' 2>/dev/null | grep -q '^10\.'; then echo saw > '{seen}'; break; fi
  sleep 0.01; i=$((i+1))
done
[ -e '{seen}' ] || echo none > '{seen}'
{answer}"#,
            leases = leases.display(),
            seen = seen.display(),
            dir = c.env.dir.display(),
        ),
    );
    let path = write_conf(
        &c.env,
        "05-watcher.conf",
        &json!({"cniVersion": "1.0.0", "name": "watcher", "type": "px-watcher"}),
    );
    let mut conf = c.conf();
    conf["clusterNetwork"] = json!(path);
    conf["binDir"] = json!(c.env.bin_dir());
    conf["alongsideClusterNetwork"] = json!(true);
    conf
}

fn seen(c: &Cluster) -> String {
    std::fs::read_to_string(c.env.dir.join("seen"))
        .unwrap_or_default()
        .trim()
        .to_string()
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
    let conf = watching_cluster(&c, "fast", 1000, Ends::Ok);

    c.cni("ADD", &id, &netns, &pod, &conf).ok();

    assert_eq!(
        seen(&c),
        "saw",
        "net1's lease appeared while the cluster network was still running\n{}",
        c.env.log()
    );
    let net1 = c.addr(&netns, "net1");
    assert!(net1.starts_with(&format!("10.{o}.1.")), "net1 {net1}");
    let status = c.network_status(&pod);
    assert_eq!(status.len(), 2, "{status:?}");

    c.cni("DEL", &id, &netns, &pod, &conf).ok();
    c.env.assert_nothing_left();
}

#[test]
fn a_chained_nad_waits_for_the_cluster_network() {
    let c = Cluster::new("alch", 151);
    let mut chain = c.macvlan(1);
    let macvlan = chain.as_object_mut().unwrap().clone();
    chain = json!({"cniVersion": "1.0.0", "plugins": [macvlan, {"type": "tuning"}]});
    c.put_nad("default", "chained", Some(&chain));
    let pod = Pod::new("default", "careful");
    c.put_pod(&pod, &[(NETWORKS, "chained")]);
    let netns = c.env.add_pod();
    let id = format!("c{}", c.env.uid);
    let conf = watching_cluster(&c, "chained", 100, Ends::Ok);

    c.cni("ADD", &id, &netns, &pod, &conf).ok();

    assert_eq!(
        seen(&c),
        "none",
        "a chain (macvlan + tuning) must not start before the cluster network is done"
    );
    assert!(c.ifnames(&netns).contains(&"net1".to_string()));
    c.cni("DEL", &id, &netns, &pod, &conf).ok();
    c.env.assert_nothing_left();
}

#[test]
fn a_failed_cluster_network_rolls_back_what_ran_alongside_it() {
    let c = Cluster::new("alcf", 152);
    c.put_nad("default", "fast", Some(&c.macvlan(1)));
    let pod = Pod::new("default", "doomed");
    c.put_pod(&pod, &[(NETWORKS, "fast")]);
    let netns = c.env.add_pod();
    let id = format!("c{}", c.env.uid);
    let conf = watching_cluster(&c, "fast", 1000, Ends::Fails);

    let out = c.cni("ADD", &id, &netns, &pod, &conf);

    let msg = out.err_code(11);
    assert_eq!(seen(&c), "saw", "net1 ran alongside: {msg}");
    assert!(
        msg.contains("watcher") && msg.contains("cluster says no"),
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
fn by_default_every_network_waits_for_the_one_before_it() {
    let c = Cluster::new("alsq", 154);
    c.put_nad("default", "fast", Some(&c.macvlan(1)));
    let pod = Pod::new("default", "strict");
    c.put_pod(&pod, &[(NETWORKS, "fast")]);
    let netns = c.env.add_pod();
    let id = format!("c{}", c.env.uid);
    let mut conf = watching_cluster(&c, "fast", 100, Ends::Ok);
    conf.as_object_mut()
        .unwrap()
        .remove("alongsideClusterNetwork");

    c.cni("ADD", &id, &netns, &pod, &conf).ok();

    assert_eq!(
        seen(&c),
        "none",
        "without alongsideClusterNetwork net1 starts after the cluster network (Multus order)"
    );
    assert!(c.ifnames(&netns).contains(&"net1".to_string()));
    c.cni("DEL", &id, &netns, &pod, &conf).ok();
    c.env.assert_nothing_left();
}

#[test]
fn del_runs_them_alongside_too() {
    // A stand-in "macvlan" (self-contained by type) whose DEL waits for the cluster network's
    // DEL to start: reverse order alone would make it wait in vain.
    let c = Cluster::new("alde", 155);
    let mark = c.env.dir.join("cluster-del");
    let seen_del = c.env.dir.join("seen-del");
    c.env.write_plugin(
        "macvlan",
        &format!(
            r#"cat >/dev/null
if [ "$CNI_COMMAND" = ADD ]; then
  printf '{{"cniVersion":"1.0.0","interfaces":[{{"name":"%s"}}],"ips":[]}}' "$CNI_IFNAME"
  exit 0
fi
i=0
while [ $i -lt 1000 ]; do
  if [ -e '{mark}' ]; then echo saw > '{seen}'; break; fi
  sleep 0.01; i=$((i+1))
done
[ -e '{seen}' ] || echo none > '{seen}'"#,
            mark = mark.display(),
            seen = seen_del.display(),
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
    let mut conf = watching_cluster(&c, "stand-in", 0, Ends::Ok);
    conf["builtinDelegates"] = json!(false);
    c.cni("ADD", &id, &netns, &pod, &conf).ok();

    c.cni("DEL", &id, &netns, &pod, &conf).ok();

    assert_eq!(
        std::fs::read_to_string(&seen_del)
            .unwrap_or_default()
            .trim(),
        "saw",
        "net1's DEL ran while the cluster network's DEL did\n{}",
        c.env.log()
    );
    c.env.assert_nothing_left();
}
