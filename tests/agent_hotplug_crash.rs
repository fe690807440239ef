//! Hot-plug is crash-safe: the agent killed in the middle of an addition (the interface made,
//! the step not yet journaled as done) and restarted rolls the interrupted step back and
//! finishes the change: one interface, one lease, one status entry; killed in the middle of a
//! removal (the DEL done, the record not yet changed), the next agent finishes it; a status write that fails
//! is retried, by the same agent or by the next one after a kill, and never becomes a second
//! ADD; the runtime's DEL racing a hot-plug waits for its lock and then removes everything,
//! what hot-plug added included. Real agent, real plugin, real netns, real macvlan and
//! host-local behind a wrapper that can stop in the middle.

mod agent_support;
mod common;
mod hotplug_support;

use std::path::PathBuf;

use agent_support::Agent;
use common::k8s::Cluster;
use common::{kill9, ref_bin, sh, wait_for};
use hotplug_support::{Running, WAIT, changes, cluster, conf_with_own_bin_dir};
use plexus_testapi::{Fault, FaultKind};
use serde_json::json;

const CLUSTER: &str = "px-cluster@eth0";

/// The `slow` network: macvlan and host-local behind a wrapper that, on its first call of one
/// command (ADD or DEL), does it, writes its pid and waits for a line on a fifo before
/// answering.
struct Slow {
    dir: PathBuf,
}

impl Slow {
    fn install(c: &Cluster, command: &str) -> Slow {
        let dir = c.env.dir.join("slow");
        std::fs::create_dir_all(&dir).expect("slow dir");
        sh(&["mkfifo", &dir.join("fifo").to_string_lossy()]);
        let d = dir.display();
        let mv = format!("{}/macvlan", ref_bin());
        c.env.write_plugin(
            "slow-macvlan",
            &format!(
                r#"echo "$CNI_COMMAND $CNI_IFNAME" >> '{d}/calls.log'
if [ "$CNI_COMMAND" = {command} ] && [ ! -e '{d}/once' ]; then
  : > '{d}/once'
  out=$('{mv}') || {{ echo "$out"; exit 1; }}
  echo $$ > '{d}/pid.tmp' && mv '{d}/pid.tmp' '{d}/pid'
  read go < '{d}/fifo'
  echo "$CNI_COMMAND-done $CNI_IFNAME" >> '{d}/calls.log'
  echo "$out"
  exit 0
fi
exec '{mv}'"#
            ),
        );
        let mut nad = c.macvlan(4);
        nad["type"] = json!("slow-macvlan");
        c.put_nad("ns", "slow", Some(&nad));
        Slow { dir }
    }

    /// Waits until the wrapper is stopped in its first call of its command; its pid.
    fn wait_stopped(&self, r: &Running) -> u32 {
        let pid = self.dir.join("pid");
        assert!(
            wait_for(WAIT, || pid.exists()),
            "the slow call never started: {}",
            r.log()
        );
        let text = std::fs::read_to_string(&pid).expect("pid");
        let pid: u32 = text.trim().parse().expect("a pid");
        r.c.env.track_pid(pid);
        pid
    }

    /// Lets the stopped ADD answer.
    fn go_on(&self) {
        std::fs::write(self.dir.join("fifo"), "go\n").expect("write the fifo");
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("calls.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

#[test]
fn the_agent_killed_mid_change_and_restarted_rolls_back_and_finishes() {
    let c = cluster("hc1", 227);
    let conf = conf_with_own_bin_dir(&c);
    let slow = Slow::install(&c, "ADD");
    let mut r = Running::start(c, conf, Some("mv1"), &[]);
    r.annotate(Some("mv1,slow"));
    let pid = slow.wait_stopped(&r);
    // The interface exists, the step is journaled as started, the status says nothing yet.
    assert_eq!(r.ifnames(), ["eth0", "net1", "net2"]);
    assert_eq!(r.status(), [CLUSTER, "ns/mv1@net1"]);
    // Killed there (and its delegate with it, as a node reboot would).
    drop(r.agent.take());
    kill9(pid);
    r.agent = Some(Agent::start(&r.c, &r.conf, &[]));
    r.wait_status(&[CLUSTER, "ns/mv1@net1", "ns/slow@net2"]);
    // The interrupted step was DELeted, then the change made again: one interface, one lease.
    assert_eq!(slow.calls(), ["ADD net2", "DEL net2", "ADD net2"]);
    assert_eq!(r.ifnames(), ["eth0", "net1", "net2"]);
    assert!(r.c.addr(&r.netns, "net2").starts_with("10.227.4."));
    assert_eq!(r.leases_of("slow"), 1, "{:?}", r.c.env.leases());
    assert_eq!(r.wait_events("AddedInterface", 1).len(), 1);
    r.del_and_check_nothing_left();
}

#[test]
fn a_failed_status_write_is_retried_never_re_added() {
    let c = cluster("hc2", 228);
    let conf = c.conf();
    let mut r = Running::start(c, conf, Some("mv1"), &[]);
    let refuse = || {
        r.c.api.set_fault(Fault {
            method: Some("PATCH".into()),
            path_prefix: r.pod.status_path(),
            kind: FaultKind::Status(403),
            times: None,
        });
    };
    let failed = |r: &Running, n: f64| {
        let ok = wait_for(WAIT, || changes(r, "status-failed") >= n);
        assert!(ok, "no failed status write: {}", r.log());
    };
    // The same agent: the interface is added, the PATCH refused, then retried.
    refuse();
    r.annotate(Some("mv1,mv2"));
    failed(&r, 1.0);
    let mac =
        r.c.assert_iface(&r.netns, "net2", &[r.c.addr(&r.netns, "net2")], None);
    r.c.api.clear_faults();
    r.wait_status(&[CLUSTER, "ns/mv1@net1", "ns/mv2@net2"]);
    // A new agent after a kill between the journal and the PATCH.
    refuse();
    r.annotate(Some("mv1,mv2,mv3"));
    failed(&r, 2.0);
    let mac3 =
        r.c.assert_iface(&r.netns, "net3", &[r.c.addr(&r.netns, "net3")], None);
    drop(r.agent.take());
    r.c.api.clear_faults();
    r.agent = Some(Agent::start(&r.c, &r.conf, &[]));
    r.wait_status(&[CLUSTER, "ns/mv1@net1", "ns/mv2@net2", "ns/mv3@net3"]);
    // Never added again: the same interfaces, one lease each, no second event.
    r.c.assert_iface(&r.netns, "net2", &[r.c.addr(&r.netns, "net2")], Some(&mac));
    r.c.assert_iface(&r.netns, "net3", &[r.c.addr(&r.netns, "net3")], Some(&mac3));
    assert_eq!((r.leases_of("mv2"), r.leases_of("mv3")), (1, 1));
    assert_eq!(r.events("AddedInterface").len(), 2, "one per addition");
    assert_eq!(changes(&r, "added"), 0.0, "the new agent added nothing");
    r.del_and_check_nothing_left();
}

#[test]
fn a_runtime_del_racing_a_hotplug_waits_for_the_lock_and_removes_everything() {
    let c = cluster("hc3", 229);
    let conf = conf_with_own_bin_dir(&c);
    let slow = Slow::install(&c, "ADD");
    let r = Running::start(c, conf, Some("mv1"), &[]);
    r.annotate(Some("mv1,slow"));
    slow.wait_stopped(&r);
    // The runtime tears the sandbox down while hot-plug holds its lock.
    let del = r.c.start_cni("DEL", &r.id, &r.netns, &r.pod, &r.conf);
    slow.go_on();
    del.finish().ok();
    // The DEL ran after the hot-plug's ADD had answered, and released it too.
    assert_eq!(slow.calls(), ["ADD net2", "ADD-done net2", "DEL net2"]);
    // The agent, told of another edit, finds no record and touches nothing.
    r.annotate(Some("mv1,slow,mv2"));
    let ev = r.wait_events("InterfaceAddRejected", 1);
    assert!(ev[0].contains("no record"), "{ev:?}");
    r.c.env.assert_nothing_left();
}

#[test]
fn the_agent_killed_mid_removal_and_restarted_finishes_it() {
    let c = cluster("hc4", 231);
    let conf = conf_with_own_bin_dir(&c);
    let slow = Slow::install(&c, "DEL");
    let mut r = Running::start(c, conf, Some("mv1,slow"), &[]);
    r.wait_status(&[CLUSTER, "ns/mv1@net1", "ns/slow@net2"]);
    r.annotate(Some("mv1"));
    let pid = slow.wait_stopped(&r);
    // The DEL has released the interface and its lease; the record and the status still name it.
    assert_eq!(r.ifnames(), ["eth0", "net1"]);
    assert_eq!(r.status(), [CLUSTER, "ns/mv1@net1", "ns/slow@net2"]);
    drop(r.agent.take());
    kill9(pid);
    r.agent = Some(Agent::start(&r.c, &r.conf, &[]));
    r.wait_status(&[CLUSTER, "ns/mv1@net1"]);
    // The next agent DELs it again (a DEL of what is gone succeeds) and drops it: nothing left.
    assert_eq!(slow.calls(), ["ADD net2", "DEL net2", "DEL net2"]);
    assert_eq!(r.ifnames(), ["eth0", "net1"]);
    assert_eq!(r.leases_of("slow"), 0, "{:?}", r.c.env.leases());
    assert_eq!(r.wait_events("RemovedInterface", 1).len(), 1);
    r.del_and_check_nothing_left();
}
