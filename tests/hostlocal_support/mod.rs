//! The differential harness of `tests/hostlocal.rs`: one host-local call made through the
//! reference binary (`<CNI_PLUGIN_DIR>/host-local`, exec'd as a runtime would) or through
//! plexus in process (`plexus::builtin::hostlocal`), both answers in one comparable form, and a
//! store's exact contents (names, modes, bytes).
// Shared by two test crates, each using part of it.
#![allow(dead_code, clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use plexus::builtin::hostlocal;
use plexus::cni::env::Command as Cmd;
use plexus::delegate::{DelegateError, Invocation};
use serde_json::{Value, json};

use crate::builtin_support::TempDir;

/// `CNI_ARGS` as the kubelet passes them.
pub const ARGS: &str = "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=pod";
/// host-local never enters the namespace: any path does.
const NETNS: &str = "/var/run/netns/hostlocal-test-unused";
/// The network name every config uses (the store's directory under dataDir).
pub const NETWORK: &str = "hl-net";

/// Who answers a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Binary,
    /// Plexus must answer itself.
    Plexus,
    /// Plexus, or the binary when plexus leaves the call to it (as `builtin::ipam` does).
    PlexusOrBinary,
}

/// One CNI call.
#[derive(Debug, Clone)]
pub struct Op {
    pub cmd: &'static str,
    pub id: String,
    pub ifname: String,
    pub args: String,
}

fn op(cmd: &'static str, id: &str, ifname: &str) -> Op {
    Op {
        cmd,
        id: id.into(),
        ifname: ifname.into(),
        args: ARGS.into(),
    }
}

pub fn add(id: &str, ifname: &str) -> Op {
    op("ADD", id, ifname)
}

pub fn del(id: &str, ifname: &str) -> Op {
    op("DEL", id, ifname)
}

pub fn check(id: &str, ifname: &str) -> Op {
    op("CHECK", id, ifname)
}

/// What a call answered: its output (an ADD's result in the config's cniVersion, `Null` for
/// DEL and CHECK) or its error's code, msg and details.
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    Ok(Value),
    Err(u64, String, String),
}

impl Out {
    /// The addresses of an ADD's result (`ip4`/`ip6` for 0.1.0/0.2.0, else `ips`).
    pub fn addresses(&self) -> Vec<String> {
        let Out::Ok(v) = self else {
            panic!("not a success: {self:?}")
        };
        let mut out: Vec<String> = v["ips"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|i| i["address"].as_str().unwrap().to_string())
            .collect();
        for f in ["ip4", "ip6"] {
            if let Some(a) = v[f]["ip"].as_str() {
                out.push(a.to_string());
            }
        }
        out
    }

    /// The error's message.
    pub fn msg(&self) -> &str {
        match self {
            Out::Err(_, m, _) => m,
            Out::Ok(v) => panic!("not an error: {v}"),
        }
    }
}

/// The reference binary, failing loudly when it is missing.
pub fn reference() -> PathBuf {
    let p = Path::new(crate::common::ref_bin()).join("host-local");
    assert!(
        p.is_file(),
        "the reference plugin {} is missing: `make deps` installs containernetworking-plugins",
        p.display()
    );
    p
}

/// `op` through the reference binary.
pub fn binary(conf: &Value, op: &Op) -> Out {
    finish(start(conf, op), op)
}

/// Starts `op` through the reference binary, its config written to its stdin.
pub fn start(conf: &Value, op: &Op) -> Child {
    let mut child = Command::new(reference())
        .env_clear()
        .env("CNI_COMMAND", op.cmd)
        .env("CNI_CONTAINERID", &op.id)
        .env("CNI_NETNS", NETNS)
        .env("CNI_IFNAME", &op.ifname)
        .env("CNI_ARGS", &op.args)
        .env("CNI_PATH", crate::common::ref_bin())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the reference host-local");
    let stdin = serde_json::to_vec(conf).unwrap();
    child.stdin.take().unwrap().write_all(&stdin).unwrap();
    child
}

/// What a started call answered.
pub fn finish(child: Child, op: &Op) -> Out {
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let fail = |why: &str| -> ! {
        panic!(
            "{op:?}: reference {why}: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    };
    if out.status.success() && stdout.trim().is_empty() {
        return Out::Ok(Value::Null);
    }
    let v: Value = serde_json::from_str(&stdout).unwrap_or_else(|_| fail("printed no JSON"));
    if out.status.success() {
        // Go prints an empty DNS object where plexus leaves the field out (the same result).
        let mut v = v;
        if v.get("dns").is_some_and(|d| *d == serde_json::json!({})) {
            v.as_object_mut().unwrap().remove("dns");
        }
        return Out::Ok(v);
    }
    let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    let code = v["code"]
        .as_u64()
        .unwrap_or_else(|| fail("error without code"));
    Out::Err(code, text("msg"), text("details"))
}

/// `op` through plexus in process; `None` when plexus leaves the config to the binary.
pub fn plexus(conf: &Value, op: &Op) -> Option<Out> {
    let stdin = serde_json::to_vec(conf).unwrap();
    let version = conf["cniVersion"].as_str().unwrap_or_default();
    let command = match op.cmd {
        "ADD" => Cmd::Add,
        "DEL" => Cmd::Del,
        "CHECK" => Cmd::Check,
        c => panic!("no such call {c}"),
    };
    let inv = Invocation {
        command,
        container_id: &op.id,
        netns: NETNS,
        ifname: &op.ifname,
        args: &op.args,
        cancel: None,
    };
    let wait = Duration::from_secs(60);
    let done = |r: Option<()>| r.map(|()| Value::Null);
    let answer = match command {
        Cmd::Add => hostlocal::add(&inv, &stdin, wait)
            .map(|r| r.map(|r| r.to_value(version).expect("result in the config's version"))),
        Cmd::Del => hostlocal::del(&inv, &stdin, wait).map(done),
        _ => hostlocal::check(&inv, &stdin, wait).map(done),
    };
    match answer {
        Ok(v) => v.map(Out::Ok),
        Err(DelegateError::Plugin { code, msg, details }) => {
            Some(Out::Err(code.into(), msg, details))
        }
        Err(e) => panic!("{op:?}: plexus failed without a plugin error: {e:?}"),
    }
}

/// Every entry under `dir` by relative path: its type, mode and bytes (the `lock` file's mode
/// left out: the reference and plexus create it differently, and nothing reads it).
pub fn store(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            let meta = fs::symlink_metadata(&p).unwrap();
            let mode = meta.permissions().mode() & 0o7777;
            let v = if meta.is_dir() {
                todo.push(p);
                format!("dir {mode:o}")
            } else if p.file_name().is_some_and(|n| n == "lock") {
                format!("lock {:?}", fs::read(&p).unwrap())
            } else {
                format!(
                    "file {mode:o} {:?}",
                    String::from_utf8_lossy(&fs::read(&p).unwrap())
                )
            };
            out.insert(rel, v);
        }
    }
    out
}

/// The lease files of `dir`'s network: address → content.
pub fn leases(dir: &Path) -> BTreeMap<String, String> {
    let net = dir.join(NETWORK);
    crate::builtin_support::leases(&net)
        .into_iter()
        .map(|n| {
            let c = fs::read_to_string(net.join(&n)).unwrap();
            (n, c)
        })
        .collect()
}

/// Runs `ops` through the binary on one store and, on a second store, through `engine(step)`;
/// both stores are first given to `prepare`. Every answer and both stores after every call
/// must be equal. Returns the reference's answers.
pub fn differential(
    conf: impl Fn(&Path) -> Value,
    prepare: impl Fn(&Path),
    ops: &[Op],
    engine: impl Fn(usize, &Op) -> Engine,
) -> Vec<Out> {
    let (a, b) = (TempDir::new("hlref"), TempDir::new("hlpx"));
    prepare(&a.path);
    prepare(&b.path);
    let mut answers = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let want = binary(&conf(&a.path), op);
        let who = engine(i, op);
        let c = conf(&b.path);
        let got = match who {
            Engine::Binary => binary(&c, op),
            Engine::Plexus => plexus(&c, op)
                .unwrap_or_else(|| panic!("call {i} {op:?}: plexus left it to the binary")),
            Engine::PlexusOrBinary => plexus(&c, op).unwrap_or_else(|| binary(&c, op)),
        };
        assert_eq!(want, got, "call {i} {op:?} answered by {who:?}");
        assert_eq!(
            store(&a.path),
            store(&b.path),
            "stores after call {i} {op:?} answered by {who:?}"
        );
        answers.push(want);
    }
    eprintln!("{} calls compared", ops.len());
    answers
}

/// Plexus for every call.
pub fn all_plexus(_: usize, _: &Op) -> Engine {
    Engine::Plexus
}

/// Writes the lease files `(address, content)` and `last_reserved_ip.<i>` files into a store.
pub fn seed(files: &[(&str, &str)]) -> impl Fn(&Path) + use<> {
    let files: Vec<(String, String)> = files
        .iter()
        .map(|(n, c)| (n.to_string(), c.to_string()))
        .collect();
    move |dir: &Path| {
        let net = dir.join(NETWORK);
        fs::create_dir_all(&net).unwrap();
        fs::set_permissions(&net, fs::Permissions::from_mode(0o755)).unwrap();
        for (n, c) in &files {
            fs::write(net.join(n), c).unwrap();
        }
    }
}

/// A macvlan config (the built-in's whole stdin) with `ipam` as host-local on `dir`.
pub fn conf(version: &str, ipam: Value) -> impl Fn(&Path) -> Value + use<> {
    let version = version.to_string();
    move |dir: &Path| {
        let mut ipam = ipam.clone();
        ipam["type"] = json!("host-local");
        ipam["dataDir"] = json!(dir);
        json!({"cniVersion": version, "name": NETWORK, "type": "macvlan", "master": "m0",
               "ipam": ipam})
    }
}

/// Merges the objects of `patch` into `c` (other values replace).
pub fn merge(c: &mut Value, patch: &Value) {
    match (c, patch) {
        (Value::Object(c), Value::Object(p)) => {
            for (k, v) in p {
                merge(c.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (c, p) => *c = p.clone(),
    }
}

/// `cmd` for containers `k0` to `k<n-1>` (interface `eth0`), all at once: the even ones through
/// the binary, the odd ones through plexus. Returns each container's answer.
pub fn at_once(conf: &Value, n: usize, cmd: fn(&str, &str) -> Op) -> Vec<(String, Out)> {
    let start = std::sync::Barrier::new(n);
    std::thread::scope(|s| {
        let threads: Vec<_> = (0..n)
            .map(|i| {
                let start = &start;
                s.spawn(move || {
                    let id = format!("k{i}");
                    let op = cmd(&id, "eth0");
                    start.wait();
                    let out = if i % 2 == 0 {
                        binary(conf, &op)
                    } else {
                        plexus(conf, &op).expect("plexus takes this config")
                    };
                    (id, out)
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    })
}

/// True when process `pid` waits for an flock on the file `lock` (a blocked request, `->` in
/// /proc/locks, on that inode).
pub fn waits_for_flock(pid: u32, lock: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let ino = format!(":{}", fs::metadata(lock).unwrap().ino());
    fs::read_to_string("/proc/locks").unwrap().lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.get(1) == Some(&"->")
            && f.get(2) == Some(&"FLOCK")
            && f.get(5) == Some(&&*pid.to_string())
            && f.get(6).is_some_and(|d| d.ends_with(&ino))
    })
}
