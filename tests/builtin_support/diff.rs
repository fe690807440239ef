//! Differential runs: the same config through a reference plugin (`/usr/lib/cni/<plugin>`) and
//! through plexus's built-in (the multi-call binary), each with its own node and pod namespace.
//! Results (or error code and message) and pod contents must match, before and after DEL.

use super::*;

/// The reference plugins' directory.
pub const REFERENCE_DIR: &str = "/usr/lib/cni";

/// One side of a differential run: its own node (two macvlans with one MAC, two passthru
/// macvlans or two vlans with one id cannot share a master) and pod.
pub struct Side {
    pub node: Node,
    pub bin: PathBuf,
    pub pod: Netns,
    pub data: TempDir,
    pub add: Outcome,
}

/// Both sides after ADD.
pub struct Diff {
    pub reference: Side,
    pub plexus: Side,
    /// The config's cniVersion.
    pub version: String,
    /// The config's network name (host-local keeps its leases in a directory of that name).
    pub network: String,
}

/// A call for container `ctr1`, interface `net1`.
pub fn call<'a>(command: &'a str, pod: &'a str, args: &'a str) -> Call<'a> {
    Call {
        command,
        container_id: "ctr1",
        netns: pod,
        ifname: "net1",
        args,
    }
}

/// Runs ADD of `plugin` through the reference and the built-in and asserts they agree (results,
/// or error code and message; then what is in the pod). `conf` gets the side's data directory;
/// `setup` prepares each side's node and pod before its ADD.
pub fn differential(
    plugin: &str,
    conf: impl Fn(&str) -> Value,
    args: &str,
    setup: impl Fn(&Node, &Netns),
) -> Diff {
    let d = add_both(plugin, conf, args, setup);
    let (r, p) = (&d.reference.add, &d.plexus.add);
    assert_eq!(
        r.ok, p.ok,
        "ADD success differs\nreference: {r:?}\nplexus: {p:?}"
    );
    if r.ok {
        assert_eq!(
            normalized_result(&r.json, &d.version),
            normalized_result(&p.json, &d.version),
            "results differ"
        );
        assert_eq!(
            p.json["interfaces"][0]["sandbox"],
            json!(d.plexus.pod.path()),
            "sandbox"
        );
    } else {
        assert_eq!(r.json["code"], p.json["code"], "error codes\n{r:?}\n{p:?}");
        assert_eq!(r.json["msg"], p.json["msg"], "error messages");
    }
    assert_eq!(
        snapshot(&d.reference.node, &d.reference.pod),
        snapshot(&d.plexus.node, &d.plexus.pod),
        "pod contents after ADD differ"
    );
    d
}

/// Runs ADD of `plugin` through the reference and the built-in, each on its own side, without
/// comparing (for the documented differences).
pub fn add_both(
    plugin: &str,
    conf: impl Fn(&str) -> Value,
    args: &str,
    setup: impl Fn(&Node, &Netns),
) -> Diff {
    let mut sides = Vec::new();
    for plexus in [false, true] {
        let node = Node::new();
        let bin = if plexus {
            node.plexus(plugin)
        } else {
            Path::new(REFERENCE_DIR).join(plugin)
        };
        let pod = Netns::new("pxp");
        setup(&node, &pod);
        let data = TempDir::new("pxd");
        let c = conf(&data.path.display().to_string());
        let add = node.run(&bin, &call("ADD", &pod.path(), args), &c);
        sides.push(Side {
            node,
            bin,
            pod,
            data,
            add,
        });
    }
    let plexus = sides.pop().unwrap();
    let reference = sides.pop().unwrap();
    let probe = reference.conf(&conf);
    let version = probe["cniVersion"].as_str().unwrap_or("1.0.0").to_string();
    let network = probe["name"].as_str().unwrap_or_default().to_string();
    Diff {
        reference,
        plexus,
        version,
        network,
    }
}

impl Side {
    /// `conf` with this side's own host-local `dataDir` (never the host's default).
    pub fn conf(&self, conf: &impl Fn(&str) -> Value) -> Value {
        conf(&self.data.path.display().to_string())
    }
}

impl Diff {
    /// Both sides, reference first.
    pub fn sides(&self) -> [&Side; 2] {
        [&self.reference, &self.plexus]
    }

    /// Lease files host-local holds for this network on `side`.
    pub fn leases(&self, side: &Side) -> Vec<String> {
        leases(&side.data.path.join(&self.network))
    }

    /// CHECK with each side's own ADD result as `prevResult`; returns (reference, plexus).
    pub fn check(&self, conf: impl Fn(&str) -> Value) -> (Outcome, Outcome) {
        let run = |side: &Side| {
            let mut c = side.conf(&conf);
            c["prevResult"] = side.add.json.clone();
            side.node
                .run(&side.bin, &call("CHECK", &side.pod.path(), ""), &c)
        };
        (run(&self.reference), run(&self.plexus))
    }

    /// DEL through both (twice, and once more without a netns): all succeed, the pods match
    /// again, and no lease is left.
    pub fn del_and_compare(&self, conf: impl Fn(&str) -> Value) {
        for side in self.sides() {
            let bin = &side.bin;
            let c = side.conf(&conf);
            for netns in [side.pod.path(), side.pod.path(), String::new()] {
                let out = side.node.run(bin, &call("DEL", &netns, ""), &c);
                assert!(out.ok, "DEL {bin:?} netns={netns:?}: {out:?}");
                assert!(out.stdout.trim().is_empty(), "DEL prints nothing: {out:?}");
            }
            let leases = self.leases(side);
            assert!(leases.is_empty(), "{bin:?} leaked leases {leases:?}");
        }
        assert_eq!(
            snapshot(&self.reference.node, &self.reference.pod),
            snapshot(&self.plexus.node, &self.plexus.pod),
            "pod contents after DEL differ"
        );
        let links = self.plexus.pod.ip(&["-br", "link"]);
        assert!(!links.contains("net1"), "net1 left after DEL: {links}");
    }
}

/// A config of `plugin` named `name` on master `m0` with the keys of `fields` (a JSON object;
/// a `null` value removes the key) and `ipam` (`null`: none); host-local's `dataDir` is the
/// side's data directory.
pub fn netconf(
    plugin: &str,
    name: &str,
    fields: Value,
    ipam: Value,
) -> impl Fn(&str) -> Value + use<> {
    let (plugin, name) = (plugin.to_string(), name.to_string());
    move |data: &str| {
        let mut c = json!({"cniVersion": "1.0.0", "name": name, "type": plugin, "master": "m0"});
        for (k, v) in fields.as_object().expect("fields is an object") {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        let mut ipam = ipam.clone();
        if ipam["type"] == "host-local" {
            // An empty dataDir would be host-local's default, /var/lib/cni/networks: the host's.
            assert!(!data.is_empty(), "host-local needs the test's own dataDir");
            ipam["dataDir"] = json!(data);
        }
        if !ipam.is_null() {
            c["ipam"] = ipam;
        }
        c
    }
}

/// host-local on the node's segment (10.77.0.0/24) with a route and a gateway.
pub fn host_local() -> Value {
    json!({"type": "host-local", "subnet": "10.77.0.0/24", "rangeStart": "10.77.0.100",
           "routes": [{"dst": "10.88.0.0/16"}], "gateway": "10.77.0.1"})
}

/// static IPAM with an address, a gateway and two routes (one through its own gateway).
pub fn static_ipam() -> Value {
    json!({"type": "static",
           "addresses": [{"address": "10.77.0.9/24", "gateway": "10.77.0.1"}],
           "routes": [{"dst": "10.90.0.0/16"}, {"dst": "10.91.0.0/16", "gw": "10.77.0.2"}]})
}
