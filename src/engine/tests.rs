//! Orchestration tests with a recording fake executor that can fail at a chosen call.

use std::sync::Mutex;

use serde_json::{Value, json};

use super::Engine;
use crate::cni::env::{Command, Request, parse_args};
use crate::config::Config;
use crate::delegate::{DelegateError, Executor, Invocation};

/// Records every call as "VERB ifname plugin"; fails the calls listed in `fail`.
#[derive(Default)]
struct Fake {
    calls: Mutex<Vec<String>>,
    fail: Vec<String>,
}

impl Fake {
    fn failing(calls: &[&str]) -> Fake {
        Fake {
            fail: calls.iter().map(|s| s.to_string()).collect(),
            ..Fake::default()
        }
    }
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

impl Executor for Fake {
    fn exec(
        &self,
        plugin: &str,
        inv: &Invocation<'_>,
        _stdin: &[u8],
    ) -> Result<Vec<u8>, DelegateError> {
        let call = format!("{} {} {plugin}", inv.command.as_str(), inv.ifname);
        self.calls.lock().unwrap().push(call.clone());
        if self.fail.contains(&call) {
            return Err(DelegateError::Plugin {
                code: 999,
                msg: format!("injected failure of {call}"),
                details: String::new(),
            });
        }
        if inv.command != Command::Add {
            return Ok(Vec::new());
        }
        let r = json!({"cniVersion":"1.0.0",
            "interfaces":[{"name":inv.ifname,"sandbox":inv.netns}],
            "ips":[{"address":"10.9.0.2/24","interface":0}]});
        Ok(r.to_string().into_bytes())
    }
}

struct Case {
    dir: std::path::PathBuf,
    cfg: Config,
}

impl Drop for Case {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// bridge (cluster), macvlan, ipvlan, in Multus's strict order (the default), so call orders
/// are exact.
fn case(tag: &str) -> Case {
    case_with(tag, &["bridge", "macvlan", "ipvlan"], false)
}

fn case_with(tag: &str, types: &[&str], alongside: bool) -> Case {
    let dir = std::env::temp_dir().join(format!("plexus-engine-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let delegates: Vec<Value> = types
        .iter()
        .enumerate()
        .map(|(i, ty)| json!({"cniVersion":"1.0.0","name":format!("n{i}"),"type":ty}))
        .collect();
    let cfg = Config::parse(
        json!({"cniVersion":"1.0.0","name":"plexus","type":"plexus","cniDir":dir.join("j"),
            "logToStderr":false,"alongsideClusterNetwork":alongside,"delegates":delegates})
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    Case { dir, cfg }
}

fn req(command: Command, args: &str) -> Request {
    Request {
        command,
        container_id: "c1".into(),
        netns: "/run/netns/x".into(),
        ifname: "eth0".into(),
        args: parse_args(args).unwrap(),
        path: vec![],
    }
}

fn journal_files(c: &Case) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(c.dir.join("j"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn add_runs_in_order_and_del_in_reverse() {
    for (name, args) in [
        ("no pod", "IgnoreUnknown=1"),
        ("pod, no API", "K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p"),
    ] {
        let c = case(&format!("order{}", name.len()));
        let fake = Fake::default();
        let add = req(Command::Add, args);
        let out = Engine::new(&c.cfg, &add, &fake).add().unwrap();
        assert_eq!(out["interfaces"][0]["name"], "eth0", "{name}");
        assert_eq!(
            fake.take(),
            ["ADD eth0 bridge", "ADD net1 macvlan", "ADD net2 ipvlan"],
            "{name}"
        );
        assert_eq!(journal_files(&c), ["c1.json", "c1.lock"], "{name}");
        let del = req(Command::Del, args);
        Engine::new(&c.cfg, &del, &fake).del().unwrap();
        assert_eq!(
            fake.take(),
            ["DEL net2 ipvlan", "DEL net1 macvlan", "DEL eth0 bridge"],
            "{name}"
        );
        assert!(journal_files(&c).is_empty(), "{name}");
    }
}

#[test]
fn self_contained_networks_are_deleted_alongside_the_cluster_network() {
    // net1 and net2 (macvlan, ipvlan: self-contained) follow the cluster network; net3 (ptp)
    // does not run alongside it, so it goes first and alone.
    let c = case_with("along", &["bridge", "macvlan", "ipvlan", "ptp"], true);
    let fake = Fake::default();
    Engine::new(&c.cfg, &req(Command::Add, "IgnoreUnknown=1"), &fake)
        .add()
        .unwrap();
    fake.take();
    Engine::new(&c.cfg, &req(Command::Del, "IgnoreUnknown=1"), &fake)
        .del()
        .unwrap();
    let calls = fake.take();
    assert_eq!(calls.len(), 4, "{calls:?}");
    assert_eq!(
        calls[0], "DEL net3 ptp",
        "the rest waits for net3: {calls:?}"
    );
    let at = |c: &str| calls.iter().position(|x| x == c).unwrap();
    assert!(
        at("DEL net2 ipvlan") < at("DEL net1 macvlan"),
        "reverse order among those alongside: {calls:?}"
    );
    assert!(calls.contains(&"DEL eth0 bridge".to_string()), "{calls:?}");
    assert!(journal_files(&c).is_empty());
}

#[test]
fn failure_at_each_step_rolls_back_everything_started() {
    let rows: &[(&str, &str, &[&str])] = &[
        (
            "first fails",
            "ADD eth0 bridge",
            &["ADD eth0 bridge", "DEL eth0 bridge"],
        ),
        (
            "middle fails",
            "ADD net1 macvlan",
            &[
                "ADD eth0 bridge",
                "ADD net1 macvlan",
                "DEL net1 macvlan",
                "DEL eth0 bridge",
            ],
        ),
        (
            "last fails",
            "ADD net2 ipvlan",
            &[
                "ADD eth0 bridge",
                "ADD net1 macvlan",
                "ADD net2 ipvlan",
                "DEL net2 ipvlan",
                "DEL net1 macvlan",
                "DEL eth0 bridge",
            ],
        ),
    ];
    for (name, fail, want) in rows {
        let c = case(&format!("fail{}", name.len()));
        let fake = Fake::failing(&[fail]);
        let add = req(Command::Add, "IgnoreUnknown=1");
        let err = Engine::new(&c.cfg, &add, &fake).add().unwrap_err();
        assert_eq!(err.code(), 999, "{name}: the delegate's code is kept");
        assert!(
            err.to_string().contains("injected failure"),
            "{name}: {err}"
        );
        assert!(
            err.to_string().contains("rolled back cleanly"),
            "{name}: {err}"
        );
        assert_eq!(&fake.take(), want, "{name}");
        assert!(
            journal_files(&c).is_empty(),
            "{name}: {:?}",
            journal_files(&c)
        );
    }
}

#[test]
fn failed_rollback_keeps_the_journal_for_del() {
    let c = case("keep");
    let fake = Fake::failing(&["ADD net2 ipvlan", "DEL net1 macvlan"]);
    let add = req(Command::Add, "IgnoreUnknown=1");
    let err = Engine::new(&c.cfg, &add, &fake).add().unwrap_err();
    assert!(err.to_string().contains("ROLLBACK INCOMPLETE"), "{err}");
    assert_eq!(journal_files(&c), ["c1.json", "c1.lock"]);
    fake.take();
    // The runtime's DEL retries only what is left, and fails again while the plugin does.
    let del = req(Command::Del, "IgnoreUnknown=1");
    assert!(Engine::new(&c.cfg, &del, &fake).del().is_err());
    assert_eq!(fake.take(), ["DEL net1 macvlan"]);
    // Once the plugin recovers, DEL finishes and removes the journal.
    let healed = Fake::default();
    Engine::new(&c.cfg, &del, &healed).del().unwrap();
    assert_eq!(healed.take(), ["DEL net1 macvlan"]);
    assert!(journal_files(&c).is_empty());
}

#[test]
fn add_twice_is_refused_without_touching_the_first() {
    let c = case("twice");
    let fake = Fake::default();
    let add = req(Command::Add, "IgnoreUnknown=1");
    Engine::new(&c.cfg, &add, &fake).add().unwrap();
    fake.take();
    let err = Engine::new(&c.cfg, &add, &fake).add().unwrap_err();
    assert!(err.to_string().contains("already attached"), "{err}");
    assert!(fake.take().is_empty(), "no delegate may run");
    assert_eq!(journal_files(&c), ["c1.json", "c1.lock"]);
}

#[test]
fn check_reads_the_pod_before_asking_delegates() {
    // The delegates' own CHECK (and plexus's interface/address check that passes) are proven
    // end to end in tests/check_gc.rs with real namespaces; here the pod's namespace does not
    // exist, so plexus's own check fails first and no delegate is asked.
    let c = case("check");
    let fake = Fake::default();
    let add = req(Command::Add, "IgnoreUnknown=1");
    Engine::new(&c.cfg, &add, &fake).add().unwrap();
    fake.take();
    let chk = req(Command::Check, "IgnoreUnknown=1");
    let err = Engine::new(&c.cfg, &chk, &fake).check().unwrap_err();
    assert!(
        err.to_string().contains("cannot read the pod's interfaces"),
        "{err}"
    );
    assert!(
        fake.take().is_empty(),
        "no delegate runs when the pod cannot be read"
    );
    let unknown = Request {
        container_id: "nope".into(),
        ..chk
    };
    let before = journal_files(&c);
    assert_eq!(
        Engine::new(&c.cfg, &unknown, &fake)
            .check()
            .unwrap_err()
            .code(),
        3
    );
    assert_eq!(
        journal_files(&c),
        before,
        "CHECK of an unknown container leaves no lock file"
    );
}

#[test]
fn gc_releases_only_containers_not_listed() {
    let c = case("gc");
    let fake = Fake::default();
    for id in ["keep", "drop"] {
        let add = Request {
            container_id: id.into(),
            ..req(Command::Add, "IgnoreUnknown=1")
        };
        Engine::new(&c.cfg, &add, &fake).add().unwrap();
    }
    fake.take();
    let mut cfg = c.cfg.clone();
    cfg.raw["cni.dev/valid-attachments"] = json!([{"containerID":"keep","ifname":"eth0"}]);
    let gc = Request {
        container_id: String::new(),
        ..req(Command::Gc, "")
    };
    Engine::new(&cfg, &gc, &fake).gc().unwrap();
    assert_eq!(
        fake.take(),
        ["DEL net2 ipvlan", "DEL net1 macvlan", "DEL eth0 bridge"]
    );
    assert_eq!(journal_files(&c), ["keep.json", "keep.lock"]);
    // Without a valid list nothing is released.
    let mut none = c.cfg.clone();
    none.raw = Value::Object(Default::default());
    assert!(Engine::new(&none, &gc, &fake).gc().is_err());
    assert!(fake.take().is_empty());
}
