//! Group 2: when a network fails during ADD, plexus tears down everything it made (reverse
//! order, including the failed attachment), returns a CNI error object naming the failed network
//! and leaves no link, no lease and no journal.

mod common;

use common::conf::{self, MACVLAN};
use common::{ADD_OK, Outcome, TestEnv, pid_alive, scripted_plugin};
use serde_json::{Value, json};

/// Cluster network + macvlan-a (net1) + `third` (net2); ADD must fail. Asserts the error names
/// the third network and nothing is left, then that the runtime's follow-up DEL succeeds.
/// Returns the outcome, its msg + details, and the test-plugin calls made by the ADD.
fn add_fails_on_third(
    env: &TestEnv,
    third: Value,
    timeout: Option<u64>,
) -> (Outcome, String, Vec<String>) {
    let pod = env.add_pod();
    let mut cfg = conf::standard(env, "1.0.0");
    let name = third["name"].as_str().unwrap().to_string();
    conf::write_conf(env, "30-third.conf", &third);
    cfg["defaultNetworks"] = json!([MACVLAN, name]);
    if let Some(t) = timeout {
        cfg["delegateTimeoutSeconds"] = json!(t);
    }
    let id = format!("c{}", env.uid);
    let out = env.plexus("ADD", &id, Some(&pod), &cfg);
    let (_, msg) = out.err();
    assert!(
        msg.contains(&name),
        "error must name the network {name}: {msg}"
    );
    let ty = third["type"].as_str().unwrap();
    assert!(
        msg.contains(ty),
        "error must name the plugin type {ty}: {msg}"
    );
    env.assert_nothing_left();
    assert!(
        !env.journal_files().iter().any(|f| f.starts_with(&id)),
        "journal of a fully rolled back ADD must be gone: {:?}",
        env.journal_files()
    );
    let calls = env.calls();
    // The runtime follows a failed ADD with DEL: it must succeed and leave nothing.
    env.plexus("DEL", &id, Some(&pod), &cfg).ok();
    env.assert_nothing_left();
    (out, msg, calls)
}

#[test]
fn ipvlan_third_network_fails_and_rolls_back() {
    let env = TestEnv::new("ripv", 21);
    let third = conf::ipvlan_conf(&env, "ipvlan-c", 2);
    let (_, msg, _) = add_fails_on_third(&env, third, None);
    assert!(
        msg.contains("not supported"),
        "the delegate's own message must surface: {msg}"
    );
}

#[test]
fn delegate_error_object_surfaces() {
    let env = TestEnv::new("rerr", 22);
    scripted_plugin(
        &env,
        "px-errobj",
        r#"echo '{"cniVersion":"1.0.0","code":111,"msg":"quota of widgets exhausted","details":"zone 7"}'; exit 1"#,
    );
    let (_, msg, calls) =
        add_fails_on_third(&env, conf::plugin_conf("errobj-c", "px-errobj"), None);
    assert!(
        msg.contains("quota of widgets exhausted"),
        "delegate msg: {msg}"
    );
    assert_eq!(
        calls,
        vec!["ADD net2 px-errobj", "DEL net2 px-errobj"],
        "the failed attachment itself is rolled back"
    );
}

#[test]
fn delegate_printing_garbage_rolls_back() {
    let env = TestEnv::new("rgrb", 23);
    scripted_plugin(&env, "px-garbage", "echo 'this is {not json'; exit 0");
    let (_, _, calls) =
        add_fails_on_third(&env, conf::plugin_conf("garbage-c", "px-garbage"), None);
    assert_eq!(calls, vec!["ADD net2 px-garbage", "DEL net2 px-garbage"]);
}

#[test]
fn delegate_exiting_nonzero_silently_rolls_back() {
    let env = TestEnv::new("rsil", 24);
    scripted_plugin(&env, "px-silent", "exit 3");
    let (_, _, calls) = add_fails_on_third(&env, conf::plugin_conf("silent-c", "px-silent"), None);
    assert_eq!(calls, vec!["ADD net2 px-silent", "DEL net2 px-silent"]);
}

#[test]
fn delegate_hanging_past_timeout_is_killed_and_rolled_back() {
    let env = TestEnv::new("rhng", 25);
    // The plugin never ends on its own (longer than the test's own limit on a call): the ADD
    // can only return because plexus killed it.
    let pidfile = env.dir.join("hang.pid");
    scripted_plugin(
        &env,
        "px-hang",
        &format!("echo $$ > '{}'; exec sleep 3600", pidfile.display()),
    );
    let (_, msg, _) = add_fails_on_third(&env, conf::plugin_conf("hang-c", "px-hang"), Some(1));
    assert!(
        msg.contains("did not finish within 1.0s and was killed"),
        "{msg}"
    );
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .expect("the hanging plugin ran")
        .trim()
        .parse()
        .unwrap();
    env.track_pid(pid);
    common::signal::wait_until(
        &format!("the timed-out delegate (pid {pid}) is gone"),
        || !pid_alive(pid),
        || env.log(),
    );
}

#[test]
fn delegate_binary_missing_rolls_back() {
    let env = TestEnv::new("rmis", 26);
    add_fails_on_third(
        &env,
        conf::plugin_conf("missing-c", "px-no-such-plugin"),
        None,
    );
}

/// A failure in the middle stops the ADD: later networks never run.
#[test]
fn failure_stops_before_later_networks() {
    let env = TestEnv::new("rmid", 27);
    let pod = env.add_pod();
    scripted_plugin(&env, "px-silent", "exit 3");
    scripted_plugin(&env, "px-rec", ADD_OK);
    let mut cfg = conf::standard(&env, "1.0.0");
    conf::write_conf(
        &env,
        "30-fail.conf",
        &conf::plugin_conf("fail-b", "px-silent"),
    );
    conf::write_conf(&env, "40-rec.conf", &conf::plugin_conf("rec-c", "px-rec"));
    cfg["defaultNetworks"] = json!([MACVLAN, "fail-b", "rec-c"]);
    let id = format!("c{}", env.uid);
    let (_, msg) = env.plexus("ADD", &id, Some(&pod), &cfg).err();
    assert!(msg.contains("fail-b"), "names the failed network: {msg}");
    assert_eq!(
        env.calls(),
        vec!["ADD net2 px-silent", "DEL net2 px-silent"]
    );
    env.assert_nothing_left();
}

/// Rollback runs in reverse order: net2 (the failed one), then net1, then eth0.
#[test]
fn rollback_is_in_reverse_order() {
    let env = TestEnv::new("rrev", 28);
    let pod = env.add_pod();
    scripted_plugin(&env, "px-rec", ADD_OK);
    scripted_plugin(&env, "px-silent", "exit 3");
    let mut cfg = conf::plexus_base(&env, "1.0.0");
    cfg["delegates"] = json!([
        conf::plugin_conf("rec-a", "px-rec"),
        conf::plugin_conf("rec-b", "px-rec"),
        conf::plugin_conf("fail-c", "px-silent"),
    ]);
    let id = format!("c{}", env.uid);
    env.plexus("ADD", &id, Some(&pod), &cfg).err();
    assert_eq!(
        env.calls(),
        vec![
            "ADD eth0 px-rec",
            "ADD net1 px-rec",
            "ADD net2 px-silent",
            "DEL net2 px-silent",
            "DEL net1 px-rec",
            "DEL eth0 px-rec",
        ]
    );
    env.assert_nothing_left();
}
