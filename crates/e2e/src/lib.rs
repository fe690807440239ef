//! Support for plexus's end-to-end test (`make e2e`): a scratch node (its own network
//! namespace and directories), a containerd from Debian started on it with its own root, state
//! and socket, the DaemonSet's containers run from the image with `ctr`, and a CRI client that
//! creates pods the way the kubelet does. Everything started is stopped by PID and everything
//! made is removed on drop, also when a test fails; nothing of the machine's own containerd,
//! `/etc/cni/net.d`, `/opt/cni/bin`, `/var/lib/cni` or `/var/lib/plexus` is touched.
#![allow(clippy::disallowed_methods)] // a test driver runs ip, nsenter, containerd and ctr

pub mod containerd;
pub mod cri;
pub mod manifest;
pub mod node;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// Upper bound for anything the e2e waits for (containerd start, a sandbox, a config reload).
pub const DEADLINE: Duration = Duration::from_secs(120);

/// Runs a command to completion; its stdout, or a panic with its stderr.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `check` until it returns `Some`, failing the test after [`DEADLINE`] with `what`.
pub fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A required environment variable (set by `make e2e`); its absence fails the test loudly.
pub fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the e2e test through `make e2e`, which builds the images")
    })
}

/// The repository's root (where deploy/ is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Fails loudly when a program the e2e needs is missing (`make e2e-deps` installs them).
pub fn require_programs(names: &[&str]) {
    for n in names {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(n).is_file()))
            .unwrap_or(false);
        assert!(
            found,
            "{n} is not installed: `make e2e` installs containerd, runc and util-linux's nsenter"
        );
    }
}
