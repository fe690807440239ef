//! Kubernetes, end to end: what a selection element hands to the delegates. `default-route` moves
//! the pod's default route to the chosen interface; `ips`, `mac`, `portMappings`, `bandwidth`
//! reach the `runtimeConfig` of plugins declaring the capability (and `ips`/`mac` the legacy `CNI_ARGS`);
//! `cni-args` merge into `args.cni`; every delegate gets the pod's `K8S_POD_*` values.

mod common;

use common::k8s::{Cluster, NETWORKS, Pod};
use serde_json::{Value, json};

/// Default routes in `netns` as (gateway, device).
fn default_routes(netns: &str) -> Vec<(String, String)> {
    let out = common::sh(&["ip", "-j", "-4", "-n", netns, "route", "show", "default"]);
    let v: Value = serde_json::from_str(&out).expect("ip -j route output");
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["gateway"].as_str().unwrap_or("").to_string(),
                r["dev"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn default_route_moves_to_the_chosen_interface() {
    let c = Cluster::new("kdrt", 140);
    let o = c.env.octet;
    c.put_nad("default", "macvlan-a", Some(&c.macvlan(1)));
    let netns = c.env.add_pod();
    let id = format!("c{}", c.env.uid);
    let conf = c.conf();

    // Without default-route the cluster network (host-local routes 0.0.0.0/0) has it.
    let plain = Pod::new("default", "plain");
    c.put_pod(&plain, &[(NETWORKS, "macvlan-a")]);
    c.cni("ADD", &id, &netns, &plain, &conf).ok();
    assert_eq!(
        default_routes(&netns),
        [(format!("10.{o}.0.1"), "eth0".to_string())]
    );
    c.cni("DEL", &id, &netns, &plain, &conf).ok();

    let gw = format!("10.{o}.1.1");
    let routed = Pod::new("default", "routed");
    let ann = json!([{ "name": "macvlan-a", "interface": "data0", "default-route": [gw] }]);
    c.put_pod(&routed, &[(NETWORKS, &ann.to_string())]);
    c.cni("ADD", &id, &netns, &routed, &conf).ok();
    assert_eq!(
        default_routes(&netns),
        [(gw.clone(), "data0".to_string())],
        "only data0 carries the IPv4 default route\n--- plexus.log ---\n{}",
        c.env.log()
    );
    c.cni("DEL", &id, &netns, &routed, &conf).ok();
    c.env.assert_nothing_left();
}

/// A plugin that saves its stdin and CNI_ARGS per interface and returns one interface.
fn dump_plugin(c: &Cluster) {
    let dir = c.env.dir.display();
    c.env.write_plugin(
        "dump",
        &format!(
            r#"case "$CNI_COMMAND" in
ADD)
  cat > '{dir}/stdin.'"$CNI_IFNAME"
  printf '%s' "$CNI_ARGS" > '{dir}/args.'"$CNI_IFNAME"
  printf '{{"cniVersion":"1.0.0","interfaces":[{{"name":"%s","sandbox":"%s"}}],"ips":[]}}' "$CNI_IFNAME" "$CNI_NETNS" ;;
VERSION) cat > /dev/null; echo '{{"cniVersion":"1.0.0","supportedVersions":["0.3.1","0.4.0","1.0.0"]}}' ;;
*) cat > /dev/null ;;
esac"#
        ),
    );
}

#[test]
fn selection_fields_reach_the_delegates() {
    let c = Cluster::new("kfld", 141);
    dump_plugin(&c);
    c.put_nad(
        "default",
        "capable",
        Some(&json!({
            "cniVersion": "1.0.0", "type": "dump",
            "capabilities": { "ips": true, "mac": true, "portMappings": true, "bandwidth": true },
        })),
    );
    c.put_nad(
        "default",
        "bare",
        Some(
            &json!({ "cniVersion": "1.0.0", "type": "dump", "args": { "cni": { "keep": "me" } } }),
        ),
    );
    let ports = json!([{ "hostPort": 8080, "containerPort": 80, "protocol": "tcp" }]);
    let bw = json!({ "ingressRate": 1000, "ingressBurst": 2000 });
    let ann = json!([
        { "name": "capable", "interface": "cap0", "ips": ["10.141.3.3/24"],
          "mac": "02:00:00:8d:00:01", "portMappings": ports, "bandwidth": bw,
          "cni-args": { "color": "blue" } },
        { "name": "bare", "interface": "bare0", "ips": ["10.141.4.4/24"],
          "mac": "02:00:00:8d:00:02", "cni-args": { "color": "red" } },
    ]);
    let pod = Pod::new("default", "fields");
    c.put_pod(&pod, &[(NETWORKS, &ann.to_string())]);
    let netns = c.env.add_pod();
    let id = format!("c{}", c.env.uid);
    let conf = c.conf();

    c.cni("ADD", &id, &netns, &pod, &conf).ok();

    let read = |what: &str, ifname: &str| {
        std::fs::read_to_string(c.env.dir.join(format!("{what}.{ifname}")))
            .unwrap_or_else(|e| panic!("{what} of {ifname}: {e}\n{}", c.env.log()))
    };
    let cap: Value = serde_json::from_str(&read("stdin", "cap0")).unwrap();
    let rc = &cap["runtimeConfig"];
    assert_eq!(rc["ips"], json!(["10.141.3.3/24"]), "{cap}");
    assert_eq!(rc["mac"], "02:00:00:8d:00:01", "{cap}");
    assert_eq!(rc["portMappings"], ports, "{cap}");
    assert_eq!(rc["bandwidth"], bw, "{cap}");
    assert_eq!(cap["args"]["cni"]["color"], "blue", "{cap}");

    let bare: Value = serde_json::from_str(&read("stdin", "bare0")).unwrap();
    for key in ["ips", "mac", "portMappings", "bandwidth"] {
        assert!(
            bare.get("runtimeConfig").and_then(|r| r.get(key)).is_none(),
            "no capability declared, no runtimeConfig {key}: {bare}"
        );
    }
    assert_eq!(bare["args"]["cni"]["color"], "red", "{bare}");
    assert_eq!(
        bare["args"]["cni"]["keep"], "me",
        "the NAD's own args stay: {bare}"
    );

    for (ifname, ip, mac) in [
        ("cap0", "10.141.3.3/24", "02:00:00:8d:00:01"),
        ("bare0", "10.141.4.4/24", "02:00:00:8d:00:02"),
    ] {
        let args = read("args", ifname);
        let pairs: Vec<&str> = args.split(';').collect();
        for want in [
            "IgnoreUnknown=1".to_string(),
            "K8S_POD_NAMESPACE=default".into(),
            "K8S_POD_NAME=fields".into(),
            format!("K8S_POD_UID={}", pod.uid),
            format!("K8S_POD_INFRA_CONTAINER_ID={id}"),
            format!("IP={ip}"),
            format!("MAC={mac}"),
        ] {
            assert!(
                pairs.contains(&want.as_str()),
                "{ifname}: CNI_ARGS should have {want}: {args}"
            );
        }
    }

    c.cni("DEL", &id, &netns, &pod, &conf).ok();
    c.env.assert_nothing_left();
}

/// A NAD tied to a device-plugin resource (`k8s.v1.cni.cncf.io/resourceName`) gets the pod's
/// devices of that resource from the kubelet checkpoint, one per attachment, as `deviceID`.
#[test]
fn resource_name_hands_out_the_pods_devices() {
    let c = Cluster::new("kdev", 143);
    dump_plugin(&c);
    let pod = Pod::new("default", "sriov");
    let checkpoint = c.env.dir.join("kubelet_internal_checkpoint");
    std::fs::write(
        &checkpoint,
        json!({"Data":{"PodDeviceEntries":[
            {"PodUID": pod.uid, "ContainerName":"c", "ResourceName":"example.com/vf",
             "DeviceIDs":{"0":["0000:03:02.1","0000:03:02.2"]}},
            {"PodUID":"someone-else", "ContainerName":"c", "ResourceName":"example.com/vf",
             "DeviceIDs":{"0":["0000:09:00.1"]}}]},"Checksum":0})
        .to_string(),
    )
    .unwrap();
    c.api.put_nad(json!({
        "apiVersion": "k8s.cni.cncf.io/v1",
        "kind": "NetworkAttachmentDefinition",
        "metadata": {"name": "vf", "namespace": "default",
                     "annotations": {"k8s.v1.cni.cncf.io/resourceName": "example.com/vf"}},
        "spec": {"config": json!({"cniVersion":"1.0.0","type":"dump"}).to_string()},
    }));
    let mut conf = c.conf();
    conf["deviceCheckpointFile"] = json!(checkpoint);
    let netns = c.env.add_pod();
    let id = format!("c{}", c.env.uid);

    c.put_pod(&pod, &[(NETWORKS, "vf@vf0,vf@vf1")]);
    c.cni("ADD", &id, &netns, &pod, &conf).ok();
    for (ifname, dev) in [("vf0", "0000:03:02.1"), ("vf1", "0000:03:02.2")] {
        let stdin: Value = serde_json::from_str(
            &std::fs::read_to_string(c.env.dir.join(format!("stdin.{ifname}"))).unwrap(),
        )
        .unwrap();
        assert_eq!(stdin["deviceID"], dev, "{ifname}: {stdin}");
    }
    c.cni("DEL", &id, &netns, &pod, &conf).ok();

    // A third attachment of the resource has no device left: ADD fails and leaves nothing.
    c.put_pod(&pod, &[(NETWORKS, "vf@vf0,vf@vf1,vf@vf2")]);
    let id2 = format!("d{}", c.env.uid);
    let (code, msg) = c.cni("ADD", &id2, &netns, &pod, &conf).err();
    assert_eq!(code, 7, "{msg}");
    assert!(
        msg.contains("no free device") && msg.contains("example.com/vf"),
        "{msg}"
    );
    c.env.assert_nothing_left();
}
