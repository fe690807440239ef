//! Group 5: DEL is idempotent and best effort: twice in a row, without ADD, with the netns
//! already deleted, with CNI_NETNS empty (containerd's second DEL).
// `plexus inspect` and `plexus release` are run as an operator would.
#![allow(clippy::disallowed_methods)]

mod common;

use common::TestEnv;
use common::conf;
use common::result::assert_macvlan;
use serde_json::Value;

fn add(env: &TestEnv, pod: &str, cfg: &Value) -> String {
    let id = format!("c{}", env.uid);
    env.plexus("ADD", &id, Some(pod), cfg).ok();
    assert_macvlan(env, pod, "net1", 1);
    assert_eq!(
        env.leases().len(),
        2,
        "leases after ADD: {:?}",
        env.leases()
    );
    id
}

#[test]
fn del_twice() {
    let env = TestEnv::new("dtwc", 51);
    let pod = env.add_pod();
    let cfg = conf::standard(&env, "1.0.0");
    let id = add(&env, &pod, &cfg);
    env.plexus("DEL", &id, Some(&pod), &cfg).ok();
    env.assert_nothing_left();
    env.plexus("DEL", &id, Some(&pod), &cfg).ok();
    env.assert_nothing_left();
}

#[test]
fn del_without_add() {
    let env = TestEnv::new("dnoa", 52);
    let pod = env.add_pod();
    let cfg = conf::standard(&env, "1.0.0");
    env.plexus("DEL", "never-added", Some(&pod), &cfg).ok();
    env.plexus("DEL", "never-added", None, &cfg).ok();
    assert!(
        env.journal_files().is_empty(),
        "DEL without ADD must not create files: {:?}",
        env.journal_files()
    );
    env.assert_nothing_left();
}

#[test]
fn del_after_netns_deleted() {
    let env = TestEnv::new("dgon", 53);
    let pod = env.add_pod();
    let cfg = conf::standard(&env, "1.0.0");
    let id = add(&env, &pod, &cfg);
    env.del_pod(&pod);
    // The runtime still passes the old path, which no longer exists.
    env.plexus("DEL", &id, Some(&pod), &cfg).ok();
    env.assert_nothing_left();
}

#[test]
fn del_with_empty_netns_releases_leases() {
    let env = TestEnv::new("demp", 54);
    let pod = env.add_pod();
    let cfg = conf::standard(&env, "1.0.0");
    let id = add(&env, &pod, &cfg);
    env.plexus("DEL", &id, None, &cfg).ok();
    // Without a netns the delegates cannot reach the pod's links, but IPAM and the journal go.
    assert!(
        env.leases().is_empty(),
        "leases after DEL: {:?}",
        env.leases()
    );
    assert!(
        env.journal_leftovers().is_empty(),
        "journal after DEL: {:?}",
        env.journal_files()
    );
    env.del_pod(&pod);
    env.assert_nothing_left();
}

/// containerd's sequence: DEL with the netns, then DEL with an empty netns and no prevResult.
#[test]
fn del_then_del_with_empty_netns() {
    let env = TestEnv::new("dctd", 55);
    let pod = env.add_pod();
    let cfg = conf::standard(&env, "0.4.0");
    let id = add(&env, &pod, &cfg);
    env.plexus("DEL", &id, Some(&pod), &cfg).ok();
    env.assert_nothing_left();
    env.plexus("DEL", &id, None, &cfg).ok();
    env.assert_nothing_left();
}

/// After a DEL the same container id can be ADDed again (runtime retry after a failure).
#[test]
fn add_again_after_del() {
    let env = TestEnv::new("dre", 56);
    let pod = env.add_pod();
    let cfg = conf::standard(&env, "1.0.0");
    let id = add(&env, &pod, &cfg);
    env.plexus("DEL", &id, Some(&pod), &cfg).ok();
    let id2 = add(&env, &pod, &cfg);
    assert_eq!(id, id2);
    env.plexus("DEL", &id, Some(&pod), &cfg).ok();
    env.assert_nothing_left();
}

/// A delegate whose DEL fails: DEL reports it, keeps the journal for what is left, still
/// releases the others; the runtime's retry finishes the job.
#[test]
fn failed_delegate_del_keeps_journal_and_retry_finishes() {
    let env = TestEnv::new("dflk", 57);
    let pod = env.add_pod();
    let flag = env.dir.join("del-fails");
    std::fs::write(&flag, "").unwrap();
    common::scripted_plugin(
        &env,
        "px-flaky",
        &format!(
            "echo '{{\"cniVersion\":\"1.0.0\",\"interfaces\":[],\"ips\":[]}}' ;;\nDEL) if [ -f '{}' ]; then echo '{{\"cniVersion\":\"1.0.0\",\"code\":11,\"msg\":\"device busy\"}}'; exit 1; fi",
            flag.display()
        ),
    );
    let mut cfg = conf::standard(&env, "1.0.0");
    conf::write_conf(
        &env,
        "30-flaky.conf",
        &conf::plugin_conf("flaky-c", "px-flaky"),
    );
    cfg["defaultNetworks"] = serde_json::json!([conf::MACVLAN, "flaky-c"]);
    let id = add(&env, &pod, &cfg);

    let (_, msg) = env.plexus("DEL", &id, Some(&pod), &cfg).err();
    assert!(
        msg.contains("flaky-c"),
        "DEL error names the network: {msg}"
    );
    assert!(
        msg.contains("device busy"),
        "DEL error carries the delegate's msg: {msg}"
    );
    assert!(
        env.journal_files().contains(&format!("{id}.json")),
        "journal kept for the retry: {:?}",
        env.journal_files()
    );
    assert!(
        env.leases().is_empty(),
        "the other networks were still released: {:?}",
        env.leases()
    );

    std::fs::remove_file(&flag).unwrap();
    env.plexus("DEL", &id, Some(&pod), &cfg).ok();
    env.assert_nothing_left();
    let dels = env
        .calls()
        .iter()
        .filter(|c| c.starts_with("DEL net2"))
        .count();
    assert_eq!(
        dels,
        2,
        "the retry DELs the failed attachment again: {:?}",
        env.calls()
    );
}

/// A journal that cannot be parsed is not skipped: DEL rebuilds the attachments from the
/// configuration and releases them.
#[test]
fn del_with_corrupt_journal_still_releases() {
    let env = TestEnv::new("dcor", 58);
    let pod = env.add_pod();
    let cfg = conf::standard(&env, "1.0.0");
    let id = add(&env, &pod, &cfg);
    let journal = env.journal_dir().join(format!("{id}.json"));
    std::fs::write(&journal, "{ this is not a journal").unwrap();
    env.plexus("DEL", &id, Some(&pod), &cfg).ok();
    assert!(env.leases().is_empty(), "leases leaked: {:?}", env.leases());
    let left: Vec<_> = env
        .links(&pod)
        .into_iter()
        .filter(|l| l.name != "lo")
        .collect();
    assert!(left.is_empty(), "links left in the pod: {left:?}");
    assert!(!journal.exists(), "the corrupt journal is moved aside");
    assert!(
        env.node_leftovers().is_empty(),
        "node: {:?}",
        env.node_leftovers()
    );
}

/// A CNI_NETNS that exists but is not a network namespace (the bind mount gone, its file left):
/// ADD refuses it before anything runs; DEL releases everything without it and drops the record.
#[test]
fn a_netns_path_that_is_not_a_namespace() {
    let env = TestEnv::new("dnfi", 59);
    let cfg = conf::standard(&env, "1.0.0");
    let file = env.dir.join("not-a-netns");
    std::fs::write(&file, b"").unwrap();
    let mut vars = env.vars("ADD", "cfile", None);
    vars.retain(|(k, _)| k != "CNI_NETNS");
    vars.push(("CNI_NETNS".into(), file.display().to_string()));
    let msg = env
        .call(&common::plexus_bin(), &vars, cfg.to_string().as_bytes())
        .err_code(4);
    assert!(msg.contains("CNI_NETNS"), "{msg}");
    // Nothing ran: no lease, no link on the node, no record.
    env.assert_nothing_left();

    // A pod attached for real whose namespace then becomes a plain file at the same path.
    let pod = env.add_pod();
    let id = add(&env, &pod, &cfg);
    env.del_pod(&pod);
    let path = std::path::PathBuf::from(format!("/run/netns/{pod}"));
    std::fs::write(&path, b"").unwrap();
    struct Remove(std::path::PathBuf);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let guard = Remove(path);
    env.plexus("DEL", &id, Some(&pod), &cfg).ok();
    // And again: nothing to do, still success.
    env.plexus("DEL", &id, Some(&pod), &cfg).ok();
    drop(guard);
    env.assert_nothing_left();
}

/// A journal cut in the middle (not only a torn last line) is corrupt: an older complete line
/// may name fewer attachments than exist, so DEL rebuilds what the pod had instead.
#[test]
fn a_journal_cut_in_the_middle_is_rebuilt_not_trusted() {
    let env = TestEnv::new("dcut", 60);
    let pod = env.add_pod();
    let cfg = conf::standard(&env, "1.0.0");
    let id = add(&env, &pod, &cfg);
    let journal = env.journal_dir().join(format!("{id}.json"));
    let bytes = std::fs::read(&journal).unwrap();
    // Cut inside the last line: every line before it is complete and names fewer attachments.
    let last_start = bytes[..bytes.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .expect("the journal has several versions");
    std::fs::write(&journal, &bytes[..last_start + 10]).unwrap();
    env.plexus("DEL", &id, Some(&pod), &cfg).ok();
    assert!(env.leases().is_empty(), "leases leaked: {:?}", env.leases());
    let left: Vec<_> = env
        .links(&pod)
        .into_iter()
        .filter(|l| l.name != "lo")
        .collect();
    assert!(left.is_empty(), "links left in the pod: {left:?}");
    assert!(!journal.exists(), "the cut journal is moved aside");
    assert!(
        env.journal_files().iter().any(|f| f.contains(".corrupt-")),
        "{:?}",
        env.journal_files()
    );
}

/// The reference macvlan needs its master even on DEL. Once the master is gone, plexus releases
/// the attachment with its built-in DEL (IPAM, then the link), so the record does not stay
/// forever.
#[test]
fn a_reference_macvlan_whose_master_is_gone_is_still_released() {
    let env = TestEnv::new("dmst", 61);
    let pod = env.add_pod();
    let mut cfg = conf::standard(&env, "1.0.0");
    cfg["builtinDelegates"] = serde_json::json!(false);
    let id = add(&env, &pod, &cfg);
    common::sh(&["ip", "-n", &env.node, "link", "del", &env.master]);
    env.plexus("DEL", &id, Some(&pod), &cfg).ok();
    assert!(env.leases().is_empty(), "leases leaked: {:?}", env.leases());
    assert!(
        env.journal_leftovers().is_empty(),
        "{:?}",
        env.journal_files()
    );
}

/// A record whose DEL can never finish (a plugin that always fails it): `plexus inspect` says
/// it is stuck and why; `plexus release` forgets it on purpose (never a running pod's without
/// --force), keeping the file; the runtime's next DEL then succeeds.
#[test]
fn a_stuck_record_is_shown_and_released_on_purpose() {
    let env = TestEnv::new("drel", 62);
    let pod = env.add_pod();
    common::scripted_plugin(
        &env,
        "px-stuck",
        r#"echo '{"cniVersion":"1.0.0","interfaces":[],"ips":[]}' ;;
DEL) echo '{"cniVersion":"1.0.0","code":11,"msg":"device busy"}'; exit 1"#,
    );
    let mut cfg = conf::standard(&env, "1.0.0");
    conf::write_conf(
        &env,
        "30-stuck.conf",
        &conf::plugin_conf("stuck-c", "px-stuck"),
    );
    cfg["defaultNetworks"] = serde_json::json!([conf::MACVLAN, "stuck-c"]);
    let id = add(&env, &pod, &cfg);
    let run = |args: &[&str]| {
        let out = std::process::Command::new(common::plexus_bin())
            .args(args)
            .env_clear()
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let dir = env.journal_dir().display().to_string();
    let (ok, _, err) = run(&["release", &id, "--cni-dir", &dir]);
    assert!(
        !ok,
        "a running pod's record is not released without --force"
    );
    assert!(err.contains("is attached"), "{err}");

    env.plexus("DEL", &id, Some(&pod), &cfg).err();
    let (ok, out, _) = run(&["inspect", &id, "--cni-dir", &dir]);
    assert!(ok);
    assert!(out.contains("stuck"), "{out}");
    assert!(out.contains("device busy"), "{out}");

    let (ok, _, err) = run(&["release", &id, "--cni-dir", &dir]);
    assert!(ok, "{err}");
    assert!(err.contains("net2") && err.contains("device busy"), "{err}");
    assert!(
        env.journal_files()
            .iter()
            .any(|f| f.starts_with(&format!("{id}.released-"))),
        "{:?}",
        env.journal_files()
    );
    // The runtime's retry: no record, a courtesy DEL of the configuration, success.
    env.plexus("DEL", &id, Some(&pod), &cfg).ok();
    assert!(
        env.journal_leftovers().is_empty(),
        "{:?}",
        env.journal_files()
    );
    assert!(env.leases().is_empty(), "{:?}", env.leases());
}
