//! libcni semantics for a conflist delegate (part of group 1): `name` and `cniVersion` injected
//! into each plugin, the previous result as `prevResult`, `runtimeConfig` only with the
//! capabilities a plugin declares, DEL in reverse with the cached result.

mod common;

use common::TestEnv;
use common::conf;
use serde_json::{Value, json};

/// A plugin that saves its stdin to `<name>.<COMMAND>.json` and logs the call.
fn recorder(env: &TestEnv, name: &str) {
    let dir = env.dir.display().to_string();
    env.write_plugin(
        name,
        &format!(
            r#"echo "$CNI_COMMAND $CNI_IFNAME {name}" >> '{dir}/calls.log'
cat > '{dir}/{name}.'"$CNI_COMMAND"'.json'
case "$CNI_COMMAND" in
ADD) echo '{{"cniVersion":"1.0.0","interfaces":[{{"name":"eth0","sandbox":"'"$CNI_NETNS"'"}}],"ips":[{{"address":"10.99.0.5/24","interface":0}}]}}' ;;
esac"#
        ),
    );
}

fn recorded(env: &TestEnv, name: &str, cmd: &str) -> Value {
    let path = env.dir.join(format!("{name}.{cmd}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{name} got no {cmd} ({e}); calls: {:?}", env.calls()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} stdin not JSON ({e}): {text}"))
}

#[test]
fn conflist_chains_prev_result_and_filters_capabilities() {
    let env = TestEnv::new("lsem", 17);
    let pod = env.add_pod();
    recorder(&env, "px-rec1");
    recorder(&env, "px-rec2");
    let mut list = conf::cluster_conflist(&env);
    list["plugins"] = json!([
        list["plugins"][0].clone(),
        { "type": "px-rec1", "capabilities": { "portMappings": true } },
        { "type": "px-rec2" },
    ]);
    let mut cfg = conf::plexus_base(&env, "1.0.0");
    cfg["clusterNetwork"] = json!(conf::write_conf(&env, "10-cluster.conflist", &list));
    cfg["capabilities"] = json!({ "portMappings": true });
    let ports = json!([{ "hostPort": 8080, "containerPort": 80, "protocol": "tcp" }]);
    cfg["runtimeConfig"] = json!({ "portMappings": ports });
    let id = format!("c{}", env.uid);

    let res = env.plexus("ADD", &id, Some(&pod), &cfg).ok();
    // The list's result is the last plugin's.
    assert_eq!(
        res["ips"][0]["address"], "10.99.0.5/24",
        "result of the list: {res}"
    );

    let add1 = recorded(&env, "px-rec1", "ADD");
    assert_eq!(add1["name"], conf::CLUSTER, "name injected: {add1}");
    assert_eq!(add1["cniVersion"], "1.0.0", "cniVersion injected: {add1}");
    let prev = &add1["prevResult"];
    let bridge_ip = prev["ips"][0]["address"].as_str().unwrap_or_default();
    assert!(
        bridge_ip.starts_with(&format!("10.{}.0.", env.octet)),
        "prevResult is the bridge's result: {add1}"
    );
    assert!(
        prev["interfaces"]
            .as_array()
            .is_some_and(|i| i.iter().any(|i| i["name"] == "eth0")),
        "prevResult has eth0: {add1}"
    );
    assert_eq!(
        add1["runtimeConfig"]["portMappings"], ports,
        "declared capability delivered: {add1}"
    );
    let add2 = recorded(&env, "px-rec2", "ADD");
    assert_eq!(
        add2["prevResult"]["ips"][0]["address"], "10.99.0.5/24",
        "{add2}"
    );
    assert!(
        add2.get("runtimeConfig")
            .is_none_or(|rc| rc.get("portMappings").is_none()),
        "undeclared capability must not be sent: {add2}"
    );

    env.plexus("DEL", &id, Some(&pod), &cfg).ok();
    let calls = env.calls();
    assert_eq!(
        calls,
        vec![
            "ADD eth0 px-rec1",
            "ADD eth0 px-rec2",
            "DEL eth0 px-rec2",
            "DEL eth0 px-rec1"
        ],
        "DEL runs the list in reverse"
    );
    let del2 = recorded(&env, "px-rec2", "DEL");
    assert_eq!(
        del2["prevResult"]["ips"][0]["address"], "10.99.0.5/24",
        "DEL gets the cached result: {del2}"
    );
    env.assert_nothing_left();
}
