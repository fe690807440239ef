//! Harness for the end-to-end tests: per-test network namespaces, a runner that invokes a CNI
//! binary (plexus or a reference plugin) the way a runtime does, config writers and the
//! "nothing left behind" checks.
//!
//! Every test builds one [`TestEnv`]. It owns a "node" netns (plays the host: plexus, the bridge,
//! the macvlan master and every gateway address live there), any number of "pod" netns, and a
//! temp dir holding the configs, the host-local leases, the plexus journal and test plugins.
//! Dropping it kills every process left in those namespaces and deletes them, also on panic.

// Each test binary uses a different part of the harness.
#![allow(dead_code)]
// The engine's rule "only the delegate executor spawns processes" is about src/; the harness
// necessarily runs `ip` and the binary under test.
#![allow(clippy::disallowed_methods)]

pub mod conf;
pub mod k8s;
pub mod lint;
pub mod result;
pub mod signal;

use serde_json::Value;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Where the reference plugins of Debian's containernetworking-plugins live: `CNI_PLUGIN_DIR`
/// (as the Makefile takes it), else `/usr/lib/cni`.
pub fn ref_bin() -> &'static str {
    static DIR: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        std::env::var("CNI_PLUGIN_DIR")
            .ok()
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| "/usr/lib/cni".to_string())
    })
}

/// Upper bound for any single CNI invocation made by a test; past it the test fails.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(60);

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The plexus binary under test: cargo's for an integration test, `PLEXUS_BIN` for a driver built
/// as an example (the VM lane's guest driver; cargo names binaries only to integration tests).
pub fn plexus_bin() -> PathBuf {
    option_env!("CARGO_BIN_EXE_plexus")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("PLEXUS_BIN").map(PathBuf::from))
        .expect("PLEXUS_BIN names the plexus binary outside cargo's integration tests")
}

/// Runs a command to completion and panics with its output unless it succeeds.
pub fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command, ignoring failure (cleanup paths).
fn sh_quiet(args: &[&str]) -> Option<String> {
    let out = Command::new(args[0]).args(&args[1..]).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Fails loudly unless the tests can manage network namespaces.
fn require_root() {
    let uid = rustix::process::geteuid();
    assert!(
        uid.is_root(),
        "these end-to-end tests create network namespaces and must run as root (euid is {})",
        uid.as_raw()
    );
}

/// A link as `ip -j -d link` reports it.
#[derive(Debug, Clone)]
pub struct Link {
    pub name: String,
    /// `info_kind`: veth, bridge, macvlan...; None for lo and plain devices.
    pub kind: Option<String>,
    pub mac: Option<String>,
}

/// One per test: the node netns, pod netns, temp dir and the processes to reap.
pub struct TestEnv {
    /// Unique suffix of every name this test creates.
    pub uid: String,
    /// The node ("host") netns name.
    pub node: String,
    /// Per-test temp dir.
    pub dir: PathBuf,
    /// Second octet of every subnet this test uses: 10.<octet>.N.0/24.
    pub octet: u8,
    /// veth in the node netns that macvlan attaches to.
    pub master: String,
    /// Its peer, also in the node netns.
    pub master_peer: String,
    /// Bridge of the cluster network, in the node netns.
    pub bridge: String,
    pods: Mutex<Vec<String>>,
    pids: Mutex<Vec<u32>>,
    pod_deleted: std::sync::atomic::AtomicBool,
}

impl TestEnv {
    /// Creates the node netns (with lo up and a veth pair to be the macvlan master) and the
    /// temp dir layout. `tag` is a short (<= 4 chars) test name, `octet` the test's own 10.x.
    pub fn new(tag: &str, octet: u8) -> TestEnv {
        require_root();
        assert!(tag.len() <= 4, "tag {tag} too long");
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let uid = format!("{:x}{:x}", std::process::id(), n);
        let node = format!("px{tag}{uid}n");
        let dir = std::env::temp_dir()
            .join("plexus-it")
            .join(format!("{tag}-{uid}"));
        let _ = fs::remove_dir_all(&dir);
        for sub in ["net.d", "ipam", "bin"] {
            fs::create_dir_all(dir.join(sub)).expect("create temp dir");
        }
        let env = TestEnv {
            master: format!("pxm{uid}"),
            master_peer: format!("pxq{uid}"),
            bridge: format!("pxb{uid}"),
            uid,
            node,
            dir,
            octet,
            pods: Mutex::new(Vec::new()),
            pids: Mutex::new(Vec::new()),
            pod_deleted: std::sync::atomic::AtomicBool::new(false),
        };
        let out = Command::new("ip")
            .args(["netns", "add", &env.node])
            .output()
            .expect("cannot run `ip`: iproute2 is required");
        assert!(
            out.status.success(),
            "`ip netns add {}` failed, network namespaces are required: {}",
            env.node,
            String::from_utf8_lossy(&out.stderr)
        );
        sh(&["ip", "-n", &env.node, "link", "set", "lo", "up"]);
        env.add_master();
        env
    }

    /// Creates the macvlan master veth pair in the node netns, both ends up (again, after a
    /// test deleted it).
    pub fn add_master(&self) {
        sh(&[
            "ip",
            "-n",
            &self.node,
            "link",
            "add",
            &self.master,
            "type",
            "veth",
            "peer",
            "name",
            &self.master_peer,
        ]);
        sh(&["ip", "-n", &self.node, "link", "set", &self.master, "up"]);
        sh(&[
            "ip",
            "-n",
            &self.node,
            "link",
            "set",
            &self.master_peer,
            "up",
        ]);
    }

    /// Creates a pod netns (lo up) and returns its name; `/run/netns/<name>` is its CNI_NETNS.
    pub fn add_pod(&self) -> String {
        let name = {
            let mut pods = self.pods.lock().unwrap();
            let name = format!("px{}p{}", self.uid, pods.len());
            pods.push(name.clone());
            name
        };
        sh(&["ip", "netns", "add", &name]);
        sh(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        name
    }

    /// Deletes a pod netns now (the guard skips it later).
    pub fn del_pod(&self, pod: &str) {
        sh(&["ip", "netns", "del", pod]);
        self.pod_deleted.store(true, Ordering::SeqCst);
    }

    /// Remembers a pid to SIGKILL on drop.
    pub fn track_pid(&self, pid: u32) {
        self.pids.lock().unwrap().push(pid);
    }

    /// Path of the node's journal dir (plexus `cniDir`).
    /// Not created by the harness: plexus must create it (0700) itself.
    pub fn journal_dir(&self) -> PathBuf {
        self.dir.join("state").join("journal")
    }

    /// host-local `dataDir` shared by every network of this test.
    pub fn ipam_dir(&self) -> PathBuf {
        self.dir.join("ipam")
    }

    /// plexus `confDir`.
    pub fn conf_dir(&self) -> PathBuf {
        self.dir.join("net.d")
    }

    /// Where test plugins go (first in CNI_PATH).
    pub fn bin_dir(&self) -> PathBuf {
        self.dir.join("bin")
    }

    /// The plexus log file.
    pub fn log_file(&self) -> PathBuf {
        self.dir.join("plexus.log")
    }

    /// CNI_PATH for plexus: the test's plugin dir, then the reference plugins.
    pub fn cni_path(&self) -> String {
        format!("{}:{}", self.bin_dir().display(), ref_bin())
    }

    /// Writes an executable `#!/bin/sh` plugin named `name` into the test's bin dir.
    pub fn write_plugin(&self, name: &str, body: &str) -> PathBuf {
        let path = self.bin_dir().join(name);
        write_script(&path, body);
        path
    }

    /// The standard env of a plexus call; `pod` None means CNI_NETNS is left empty.
    pub fn vars(&self, command: &str, id: &str, pod: Option<&str>) -> Vec<(String, String)> {
        let netns = pod.map(|p| format!("/run/netns/{p}")).unwrap_or_default();
        vec![
            ("CNI_COMMAND".into(), command.into()),
            ("CNI_CONTAINERID".into(), id.into()),
            ("CNI_NETNS".into(), netns),
            ("CNI_IFNAME".into(), "eth0".into()),
            (
                "CNI_ARGS".into(),
                "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=p".into(),
            ),
            ("CNI_PATH".into(), self.cni_path()),
        ]
    }

    /// Invokes plexus in the node netns with the standard env and `conf` on stdin.
    pub fn plexus(&self, command: &str, id: &str, pod: Option<&str>, conf: &Value) -> Outcome {
        let vars = self.vars(command, id, pod);
        self.call(&plexus_bin(), &vars, conf.to_string().as_bytes())
    }

    /// Invokes `bin` in the node netns with exactly `vars` (plus PATH) and `stdin`.
    pub fn call(&self, bin: &Path, vars: &[(String, String)], stdin: &[u8]) -> Outcome {
        self.start(bin, vars, stdin).finish()
    }

    /// Starts plexus as [`TestEnv::plexus`] does, without waiting for it: the test acts while
    /// it runs, then [`Running::finish`]es it.
    pub fn start_plexus(
        &self,
        command: &str,
        id: &str,
        pod: Option<&str>,
        conf: &Value,
    ) -> Running {
        let vars = self.vars(command, id, pod);
        self.start(&plexus_bin(), &vars, conf.to_string().as_bytes())
    }

    /// Starts `bin` as [`TestEnv::call`] does, without waiting for it.
    pub fn start(&self, bin: &Path, vars: &[(String, String)], stdin: &[u8]) -> Running {
        let started = Instant::now();
        let mut child = self.spawn(bin, vars);
        let (out, err) = feed_and_collect(&mut child, stdin);
        Running {
            bin: bin.to_path_buf(),
            vars: vars.to_vec(),
            child,
            out,
            err,
            started,
        }
    }

    /// Starts `bin` in the node netns; the caller writes stdin and waits. The pid is reaped on drop.
    pub fn spawn(&self, bin: &Path, vars: &[(String, String)]) -> Child {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.node])
            .arg(bin)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        self.track_pid(child.id());
        child
    }

    /// Links in a netns.
    pub fn links(&self, ns: &str) -> Vec<Link> {
        links(ns)
    }

    /// IPv4 addresses (`a.b.c.d/len`) of `ifname` in `ns`; empty if the link does not exist.
    pub fn addrs(&self, ns: &str, ifname: &str) -> Vec<String> {
        addrs(ns, ifname)
    }

    /// host-local lease files (one per leased IP) under this test's dataDir, as `net/ip`.
    pub fn leases(&self) -> Vec<String> {
        let mut out = Vec::new();
        let Ok(nets) = fs::read_dir(self.ipam_dir()) else {
            return out;
        };
        for net in nets.flatten() {
            let Ok(files) = fs::read_dir(net.path()) else {
                continue;
            };
            for f in files.flatten() {
                let name = f.file_name().to_string_lossy().into_owned();
                if name == "lock" || name.starts_with("last_reserved_ip") {
                    continue;
                }
                out.push(format!("{}/{name}", net.file_name().to_string_lossy()));
            }
        }
        out.sort();
        out
    }

    /// Files in the journal dir (plexus `cniDir`), sorted.
    pub fn journal_files(&self) -> Vec<String> {
        let mut out: Vec<String> = fs::read_dir(self.journal_dir())
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    /// Journal entries of the kind that mean "this container still has attachments".
    pub fn journal_leftovers(&self) -> Vec<String> {
        self.journal_files()
            .into_iter()
            .filter(|n| n.ends_with(".json") || n.ends_with(".lock") || n.contains(".tmp"))
            .collect()
    }

    /// Links in the node netns beyond lo, the test's master pair and the cluster bridge.
    pub fn node_leftovers(&self) -> Vec<Link> {
        links(&self.node)
            .into_iter()
            .filter(|l| {
                l.name != "lo"
                    && l.name != self.master
                    && l.name != self.master_peer
                    && !(l.name == self.bridge && l.kind.as_deref() == Some("bridge"))
            })
            .collect()
    }

    /// Asserts that nothing an ADD could have made is left: pod netns hold only lo, the node
    /// holds only lo, the master pair and the bridge, no lease file, no journal or lock file.
    pub fn assert_nothing_left(&self) {
        let pods = self.pods.lock().unwrap().clone();
        for pod in pods {
            if !netns_exists(&pod) {
                continue;
            }
            let extra: Vec<Link> = links(&pod).into_iter().filter(|l| l.name != "lo").collect();
            assert!(extra.is_empty(), "links left in pod netns {pod}: {extra:?}");
        }
        // When a pod netns is deleted the kernel removes the host end of its veth
        // asynchronously; give that (and only that) a bounded moment.
        let mut extra = self.node_leftovers();
        if !extra.is_empty() && self.pod_deleted.load(Ordering::SeqCst) {
            wait_for(Duration::from_secs(5), || {
                extra = self.node_leftovers();
                extra.is_empty()
            });
        }
        assert!(extra.is_empty(), "links left in node netns: {extra:?}");
        let leases = self.leases();
        assert!(leases.is_empty(), "host-local leases left: {leases:?}");
        let journal = self.journal_leftovers();
        assert!(journal.is_empty(), "journal files left: {journal:?}");
    }

    /// The plexus log (for failure messages).
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_file()).unwrap_or_default()
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        for pid in self.pids.lock().map(|p| p.clone()).unwrap_or_default() {
            kill9(pid);
        }
        let mut all = self.pods.lock().map(|p| p.clone()).unwrap_or_default();
        all.push(self.node.clone());
        for ns in &all {
            // Processes still inside this test's own namespaces (orphaned plugins) are ours.
            if let Some(pids) = sh_quiet(&["ip", "netns", "pids", ns]) {
                for pid in pids.split_whitespace().filter_map(|p| p.parse().ok()) {
                    kill9(pid);
                }
            }
            if netns_exists(ns) {
                let _ = sh_quiet(&["ip", "netns", "del", ns]);
            }
        }
        if std::thread::panicking() {
            eprintln!(
                "test failed; its files (configs, plexus.log, journal) are kept in {}",
                self.dir.display()
            );
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// SIGKILL one pid, ignoring errors (it may be gone already).
pub fn kill9(pid: u32) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
}

/// True while `/proc/<pid>` exists and the process is not a zombie.
pub fn pid_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // state is the field after the ")" that ends comm
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        }
        Err(_) => false,
    }
}

/// Whether `/run/netns/<ns>` exists.
pub fn netns_exists(ns: &str) -> bool {
    Path::new("/run/netns").join(ns).exists()
}

/// Links in a netns.
pub fn links(ns: &str) -> Vec<Link> {
    let out = sh(&["ip", "-j", "-d", "-n", ns, "link", "show"]);
    let v: Value = serde_json::from_str(&out).expect("ip -j link output");
    v.as_array()
        .expect("array")
        .iter()
        .map(|l| Link {
            name: l["ifname"].as_str().unwrap_or_default().to_string(),
            kind: l["linkinfo"]["info_kind"].as_str().map(str::to_string),
            mac: l["address"].as_str().map(str::to_string),
        })
        .collect()
}

/// The link named `ifname` in `ns`, if any.
pub fn link(ns: &str, ifname: &str) -> Option<Link> {
    links(ns).into_iter().find(|l| l.name == ifname)
}

/// IPv4 addresses with prefix length of `ifname` in `ns`.
pub fn addrs(ns: &str, ifname: &str) -> Vec<String> {
    let out = sh(&["ip", "-j", "-4", "-n", ns, "addr", "show"]);
    let v: Value = serde_json::from_str(&out).expect("ip -j addr output");
    v.as_array()
        .expect("array")
        .iter()
        .filter(|l| l["ifname"] == ifname)
        .flat_map(|l| l["addr_info"].as_array().cloned().unwrap_or_default())
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap_or(""), a["prefixlen"]))
        .collect()
}

/// Writes an executable shell script.
pub fn write_script(path: &Path, body: &str) {
    let tmp = path.with_extension("partial");
    fs::write(&tmp, format!("#!/bin/sh\n{body}\n")).expect("write script");
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755)).expect("chmod");
    fs::rename(&tmp, path).expect("rename script");
}

/// Polls `cond` every 10 ms until it holds or `limit` passes; returns whether it held.
pub fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

type Reader = std::thread::JoinHandle<String>;

/// Writes `stdin` to the child (then closes it) and collects stdout and stderr on threads.
pub fn feed_and_collect(child: &mut Child, stdin: &[u8]) -> (Reader, Reader) {
    let mut out = child.stdout.take().expect("stdout piped");
    let mut err = child.stderr.take().expect("stderr piped");
    let out = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let err = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let mut input = child.stdin.take().expect("stdin piped");
    let data = stdin.to_vec();
    // The plugin may stop reading early (oversized input): a broken pipe is fine.
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let _ = writer.join();
    (out, err)
}

/// Waits for the child up to `limit`.
pub fn wait_deadline(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let mut status = None;
    wait_for(limit, || {
        status = child.try_wait().ok().flatten();
        status.is_some()
    });
    status
}

/// A CNI invocation in progress (from [`TestEnv::start`]).
pub struct Running {
    bin: PathBuf,
    vars: Vec<(String, String)>,
    child: Child,
    out: Reader,
    err: Reader,
    started: Instant,
}

impl Running {
    /// The process id (plexus itself: `ip netns exec` execs it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the invocation to end (at most [`CALL_TIMEOUT`], else the test fails).
    pub fn finish(mut self) -> Outcome {
        let status = wait_deadline(&mut self.child, CALL_TIMEOUT).unwrap_or_else(|| {
            let _ = self.child.kill();
            let _ = self.child.wait();
            panic!(
                "{} did not finish within {CALL_TIMEOUT:?}",
                self.bin.display()
            )
        });
        Outcome::new(
            &self.bin,
            &self.vars,
            status,
            self.out.join().unwrap(),
            self.err.join().unwrap(),
            self.started.elapsed(),
        )
    }
}

/// What one CNI invocation produced.
pub struct Outcome {
    pub what: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// stdout parsed as exactly one JSON value, if it is one.
    pub json: Option<Value>,
    pub elapsed: Duration,
}

impl Outcome {
    fn new(
        bin: &Path,
        vars: &[(String, String)],
        status: ExitStatus,
        stdout: String,
        stderr: String,
        elapsed: Duration,
    ) -> Outcome {
        let cmd = vars
            .iter()
            .find(|(k, _)| k == "CNI_COMMAND")
            .map(|(_, v)| v.as_str())
            .unwrap_or("?");
        let json = serde_json::from_str(&stdout).ok();
        Outcome {
            what: format!("{} {cmd}", bin.display()),
            status,
            stdout,
            stderr,
            json,
            elapsed,
        }
    }

    fn describe(&self) -> String {
        format!(
            "{} exited {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.what, self.status, self.stdout, self.stderr
        )
    }

    /// Asserts success (exit 0) and returns stdout as JSON (Null when stdout is empty).
    pub fn ok(&self) -> Value {
        assert!(
            self.status.success(),
            "expected success: {}",
            self.describe()
        );
        if self.stdout.trim().is_empty() {
            return Value::Null;
        }
        self.json
            .clone()
            .unwrap_or_else(|| panic!("stdout is not one JSON value: {}", self.describe()))
    }

    /// Asserts failure with a well-formed CNI error object on stdout; returns (code, msg + details).
    pub fn err(&self) -> (u64, String) {
        assert!(
            !self.status.success(),
            "expected failure: {}",
            self.describe()
        );
        let v = self
            .json
            .as_ref()
            .unwrap_or_else(|| panic!("stdout is not one JSON object: {}", self.describe()));
        let code = v["code"]
            .as_u64()
            .unwrap_or_else(|| panic!("error object has no numeric code: {}", self.describe()));
        let msg = v["msg"]
            .as_str()
            .unwrap_or_else(|| panic!("error object has no msg: {}", self.describe()));
        // The reference plugins omit it; plexus promises the full error object.
        assert!(
            !self.what.contains("/plexus ") || v.get("cniVersion").is_some(),
            "error object has no cniVersion: {}",
            self.describe()
        );
        let details = v["details"].as_str().unwrap_or("");
        (code, format!("{msg} {details}"))
    }

    /// Asserts a failure with CNI error `code`; returns msg + details.
    pub fn err_code(&self, code: u64) -> String {
        let (got, msg) = self.err();
        assert_eq!(got, code, "wrong error code: {}", self.describe());
        msg
    }
}

/// A scripted test plugin: logs `<CNI_COMMAND> <CNI_IFNAME>` to `calls.log` in the test dir,
/// reads its stdin, runs `on_add` for ADD and succeeds silently for every other command.
pub fn scripted_plugin(env: &TestEnv, name: &str, on_add: &str) -> PathBuf {
    let log = env.dir.join("calls.log");
    let body = format!(
        r#"echo "$CNI_COMMAND $CNI_IFNAME {name}" >> '{log}'
cat > /dev/null
case "$CNI_COMMAND" in
ADD) {on_add} ;;
VERSION) echo '{{"cniVersion":"1.0.0","supportedVersions":["0.3.1","0.4.0","1.0.0"]}}' ;;
*) exit 0 ;;
esac"#,
        log = log.display()
    );
    env.write_plugin(name, &body)
}

/// An ADD that succeeds with an empty 1.0.0 result.
pub const ADD_OK: &str = r#"echo '{"cniVersion":"1.0.0","interfaces":[],"ips":[]}'"#;

impl TestEnv {
    /// Lines of `calls.log` written by scripted plugins.
    pub fn calls(&self) -> Vec<String> {
        fs::read_to_string(self.dir.join("calls.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}
