//! Shared by the `plexus install` / `plexus uninstall` tests: the real binary, temp
//! directories standing in for a node's /opt/cni/bin and /etc/cni/net.d, no network.
#![allow(dead_code)] // each test target uses a part
#![allow(clippy::disallowed_methods)] // tests run the binary under test

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Upper bound for anything a test waits for.
pub const DEADLINE: Duration = Duration::from_secs(30);
/// The conflist plexus installs (sorts before Multus's `00-multus.conf`).
pub const CONFLIST: &str = "00-00-plexus.conflist";

pub fn plexus() -> &'static str {
    env!("CARGO_BIN_EXE_plexus")
}

/// A node's directories under a unique temp dir, removed on drop (also on panic).
pub struct Node {
    pub root: PathBuf,
    pub bin: PathBuf,
    pub conf: PathBuf,
}

impl Node {
    pub fn new(tag: &str) -> Node {
        static N: AtomicU32 = AtomicU32::new(0);
        let root = std::env::temp_dir().join(format!(
            "plexus-install-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&root);
        let (bin, conf) = (root.join("opt/cni/bin"), root.join("etc/cni/net.d"));
        fs::create_dir_all(&bin).unwrap();
        fs::create_dir_all(&conf).unwrap();
        Node { root, bin, conf }
    }

    pub fn conflist_path(&self) -> PathBuf {
        self.conf.join(CONFLIST)
    }

    pub fn conflist(&self) -> Option<Value> {
        let bytes = fs::read(self.conflist_path()).ok()?;
        Some(serde_json::from_slice(&bytes).expect("00-plexus.conflist is JSON"))
    }

    pub fn write_conf(&self, name: &str, v: &Value) -> PathBuf {
        let p = self.conf.join(name);
        // As a well-behaved CNI installer does: temp file, then rename.
        let tmp = self.root.join(format!(".{name}.tmp"));
        fs::write(&tmp, serde_json::to_vec(v).unwrap()).unwrap();
        fs::rename(&tmp, &p).unwrap();
        p
    }

    /// A small stand-in for the plexus binary (copying the real one in every test is slow).
    pub fn fake_bin(&self, content: &[u8]) -> PathBuf {
        let p = self.root.join("plexus-src");
        fs::write(&p, content).unwrap();
        p
    }

    /// `plexus install` with this node's directories and `extra` flags; no in-cluster env.
    pub fn command(&self, extra: &[&str]) -> Command {
        let mut c = Command::new(plexus());
        c.arg("install")
            .arg("--cni-bin-dir")
            .arg(&self.bin)
            .arg("--cni-conf-dir")
            .arg(&self.conf)
            .arg("--cni-dir")
            .arg(self.root.join("var/lib/plexus"))
            .args(extra)
            .env_remove("CNI_COMMAND")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove("KUBERNETES_SERVICE_PORT")
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, extra: &[&str]) -> Output {
        let src = self.fake_bin(b"#!/bin/sh\nexit 0\n");
        let mut c = self.command(extra);
        if !extra.contains(&"--bin-src") {
            c.arg("--bin-src").arg(src);
        }
        run_bounded(c)
    }

    pub fn spawn_watch(&self, extra: &[&str]) -> Watcher {
        let src = self.fake_bin(b"#!/bin/sh\nexit 0\n");
        let child = self
            .command(&["--watch", "--skip-kubeconfig", "--poll-interval-ms", "20"])
            .arg("--bin-src")
            .arg(src)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Watcher { child: Some(child) }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// A `plexus install --watch` in the background, killed on drop.
pub struct Watcher {
    pub child: Option<Child>,
}

impl Watcher {
    /// The child's stderr, line by line, as it writes it (read on a thread; the channel closes
    /// at EOF).
    pub fn stderr_lines(&mut self) -> std::sync::mpsc::Receiver<String> {
        use std::io::BufRead;
        let pipe = self.child.as_mut().unwrap().stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        rx
    }

    pub fn signal(&self, sig: rustix::process::Signal) {
        let pid = self.child.as_ref().unwrap().id() as i32;
        rustix::process::kill_process(rustix::process::Pid::from_raw(pid).unwrap(), sig).unwrap();
    }

    /// Waits (bounded) for the process to exit; returns its output.
    pub fn finish(&mut self) -> Output {
        let mut child = self.child.take().unwrap();
        let start = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if start.elapsed() > DEADLINE {
                let _ = child.kill();
                let out = child.wait_with_output().unwrap();
                panic!("did not exit in time: {}", stderr(&out));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        child.wait_with_output().unwrap()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn run_bounded(mut c: Command) -> Output {
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            panic!("plexus install did not finish in {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn assert_ok(o: &Output) {
    assert!(o.status.success(), "exit {:?}: {}", o.status, stderr(o));
}

/// Polls `cond` until it holds; fails the test after [`DEADLINE`].
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn bridge(name: &str) -> Value {
    json!({"cniVersion": "1.0.0", "name": name, "type": "bridge"})
}

pub fn plexus_typed() -> Value {
    json!({"cniVersion": "1.0.0", "name": "old", "plugins": [{"type": "plexus"}]})
}

pub fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

pub fn hidden_files(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

pub fn multus_thin() -> Value {
    json!({"cniVersion": "0.3.1", "name": "multus-cni-network", "type": "multus",
           "kubeconfig": "/etc/cni/net.d/multus.d/multus.kubeconfig",
           "delegates": [{"cniVersion": "0.3.1", "name": "k", "type": "bridge"}]})
}

pub fn multus_shim() -> Value {
    json!({"cniVersion": "0.3.1", "name": "multus-cni-network", "type": "multus-shim",
           "socketDir": "/run/multus/"})
}

/// The file a runtime picks: the alphabetically first .conf/.conflist/.json (libcni's rule).
pub fn runtime_pick(dir: &Path) -> String {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".conf") || n.ends_with(".conflist") || n.ends_with(".json"))
        .collect();
    names.sort();
    names.first().cloned().unwrap_or_default()
}

/// A journal record as plexus writes it, with `networks` attachments (the first the cluster's).
pub fn journal_record(dir: &Path, id: &str, networks: &[&str]) {
    fs::create_dir_all(dir).unwrap();
    let attachments: Vec<Value> = networks
        .iter()
        .enumerate()
        .map(|(i, n)| {
            json!({"network": n, "ifname": if i == 0 { "eth0".to_string() } else { format!("net{i}") },
                   "cluster": i == 0, "conf": {"cniVersion": "1.0.0", "name": n, "type": "bridge"}})
        })
        .collect();
    let rec = json!({"format": 1, "containerId": id, "netns": "/run/netns/x", "ifname": "eth0", "cniArgs": "",
                     "complete": true, "attachments": attachments});
    fs::write(dir.join(format!("{id}.json")), format!("{rec}\n")).unwrap();
}
