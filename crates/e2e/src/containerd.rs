//! containerd from Debian, started by the test inside the node's network namespace with its own
//! config, root, state dir and socket (never the machine's service or paths), and `ctr` against
//! it. Dropped, it stops every task it ran, SIGTERMs containerd by PID (SIGKILL if it lingers),
//! kills the shims it left, and unmounts what is still mounted under its directories.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::node::Node;
use crate::{run, wait_for};

/// The containerd namespace the CRI plugin uses (images for pods must be imported there).
pub const K8S_NAMESPACE: &str = "k8s.io";

/// Where containerd 1.6 puts its shims' sockets whatever its config says (and ctr's default
/// FIFO dir): entries the test leaves there are removed on drop.
const SHIM_SOCKET_DIR: &str = "/run/containerd/s";

/// A running containerd.
pub struct Containerd {
    child: Option<Child>,
    /// Entries of [`SHIM_SOCKET_DIR`] before the start (other containerds' shims).
    sockets_before: Vec<std::ffi::OsString>,
    /// Whether `/run/containerd` existed before the start.
    run_dir_existed: bool,
    /// `<node>/containerd`: config, root, state, socket, log.
    pub dir: PathBuf,
    /// The gRPC socket (CRI and containerd's own API).
    pub socket: PathBuf,
}

impl Containerd {
    /// Writes the config and starts containerd in `node`'s network namespace; returns once its
    /// socket answers. The CRI plugin's CNI directories are the node's scratch ones, its
    /// sandbox image is `pause_image` and its network namespaces live under its state dir.
    pub fn start(node: &Node, pause_image: &str) -> Containerd {
        let dir = node.root.join("containerd");
        std::fs::create_dir_all(&dir).expect("create containerd's dir");
        let socket = dir.join("containerd.sock");
        let config = format!(
            r#"version = 2
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "{socket}"
[ttrpc]
  address = "{socket}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{opt}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause_image}"
  netns_mounts_under_state_dir = true
  # The test may lack CAP_SYS_RESOURCE (a sandboxed CI): never ask for an oom_score_adj lower
  # than containerd's own.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{cni_bin}"
    conf_dir = "{cni_conf}"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        # runc's state, too, under this containerd's directory (not /run/containerd/runc).
        Root = "{runc_root}"
"#,
            runc_root = dir.join("runc").display(),
            root = dir.join("root").display(),
            state = dir.join("state").display(),
            socket = socket.display(),
            opt = dir.join("opt").display(),
            cni_bin = node.host("opt/cni/bin").display(),
            cni_conf = node.host("etc/cni/net.d").display(),
        );
        let config_path = dir.join("config.toml");
        std::fs::write(&config_path, config).expect("write containerd's config");
        let log = std::fs::File::create(dir.join("containerd.log")).expect("containerd's log");
        let run_dir_existed = Path::new("/run/containerd").exists();
        let sockets_before = socket_entries();
        // nsenter enters only the network namespace: containerd's mounts (rootfs, netns bind
        // mounts) stay visible to the test.
        let child = Command::new("nsenter")
            .arg(format!("--net={}", node.netns_path().display()))
            .arg("containerd")
            .arg("--config")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("start containerd (is it installed? `make e2e` installs it)");
        let mut c = Containerd {
            child: Some(child),
            sockets_before,
            run_dir_existed,
            dir,
            socket,
        };
        wait_for("containerd's socket to answer", || {
            if let Some(status) = c.child.as_mut().and_then(|ch| ch.try_wait().ok().flatten()) {
                panic!("containerd exited ({status}) at start: {}", c.log_tail());
            }
            let ok = Command::new("ctr")
                .arg("--address")
                .arg(&c.socket)
                .arg("version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            ok.then_some(())
        });
        c
    }

    /// The last lines of containerd's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// `ctr --address SOCK --namespace k8s.io ARGS...`.
    pub fn ctr(&self) -> Command {
        let mut c = Command::new("ctr");
        c.arg("--address")
            .arg(&self.socket)
            .arg("--namespace")
            .arg(K8S_NAMESPACE);
        c
    }

    /// Imports an OCI archive into the CRI's namespace (unpacked for the snapshotter).
    pub fn import(&self, archive: &Path) {
        assert!(
            archive.is_file(),
            "{} does not exist: run the e2e through `make e2e`",
            archive.display()
        );
        run(self.ctr().args(["images", "import"]).arg(archive));
    }

    /// Runs a container to completion with `ctr run --rm` (host network, as `hostNetwork: true`);
    /// its exit status and combined output.
    pub fn run_container(
        &self,
        id: &str,
        image: &str,
        opts: &[String],
        argv: &[String],
    ) -> (bool, String) {
        let out = self
            .ctr()
            .args(["run", "--rm", "--net-host"])
            .arg("--runc-root")
            .arg(self.dir.join("runc"))
            .arg("--fifo-dir")
            .arg(self.dir.join("fifo"))
            .args(opts)
            .arg(image)
            .arg(id)
            .args(argv)
            .output()
            .expect("run ctr");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // Tasks still running (a container of a failed test): kill them so their shims exit.
        if let Ok(out) = self.ctr().args(["tasks", "ls", "-q"]).output() {
            for id in String::from_utf8_lossy(&out.stdout).lines() {
                let _ = self
                    .ctr()
                    .args(["tasks", "kill", "-s", "SIGKILL", id])
                    .status();
            }
        }
        let pid = child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let start = Instant::now();
        while child.try_wait().ok().flatten().is_none() {
            if start.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Shims still running (their tasks were killed above, or containerd died): kill them
        // and wait until they are gone (or zombies), so their sockets are closed.
        let shims = shim_pids(&self.socket);
        for p in &shims {
            let _ = Command::new("kill")
                .args(["-KILL", &p.to_string()])
                .status();
        }
        let start = Instant::now();
        while shims.iter().any(|p| alive(*p)) && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
        unmount_under(&self.dir);
        // Sockets of this run's shims (new, and nobody listening any more).
        for name in socket_entries() {
            if self.sockets_before.contains(&name) {
                continue;
            }
            let path = Path::new(SHIM_SOCKET_DIR).join(&name);
            if std::os::unix::net::UnixStream::connect(&path).is_err() {
                let _ = std::fs::remove_file(&path);
            }
        }
        if !self.run_dir_existed {
            for d in [SHIM_SOCKET_DIR, "/run/containerd/fifo", "/run/containerd"] {
                let _ = std::fs::remove_dir(d);
            }
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether `pid` runs (exists and is not a zombie).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z'))
    })
}

fn socket_entries() -> Vec<std::ffi::OsString> {
    std::fs::read_dir(SHIM_SOCKET_DIR)
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default()
}

/// The PIDs of containerd-shim processes serving this containerd (their command line names
/// its socket).
fn shim_pids(socket: &Path) -> Vec<u32> {
    let needle = socket.display().to_string();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let c = String::from_utf8_lossy(&c);
                c.contains("containerd-shim") && c.contains(&needle)
            })
        })
        .collect()
}

/// Unmounts (lazily, deepest first) every mount point under `dir`.
fn unmount_under(dir: &Path) {
    let prefix = dir.display().to_string();
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let mut points: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split(' ').nth(1))
        .filter(|p| p.starts_with(&prefix))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = Command::new("umount").args(["-l", p]).status();
    }
}
