//! The real [`Executor`]: finds a plugin binary by name in the plugin directories and runs it
//! with an explicit environment, stdin written then closed, bounded stdout, stderr to the log,
//! and a timeout that kills the plugin's whole process group.
#![allow(clippy::disallowed_methods)] // the one place that spawns processes

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::{DelegateError, Executor, Invocation};
use crate::cni::error::ErrorObject;

/// Most a delegate may print on stdout.
pub const MAX_OUTPUT: usize = 1 << 20;
/// How much of a delegate's stderr is kept for messages and the log.
const MAX_STDERR: usize = 16 << 10;

/// Runs plugin binaries found in `dirs`.
#[derive(Debug, Clone)]
pub struct ProcessExecutor {
    dirs: Vec<PathBuf>,
    cni_path: String,
    host_path: String,
    timeout: Duration,
}

impl ProcessExecutor {
    /// An executor searching `dirs` in order; delegates get `CNI_PATH` = `dirs` (so they find
    /// their IPAM plugins), `PATH` = `host_path`, and are killed after `timeout`.
    pub fn new(dirs: Vec<PathBuf>, host_path: String, timeout: Duration) -> Self {
        let mut uniq: Vec<PathBuf> = Vec::with_capacity(dirs.len());
        for d in dirs {
            if !uniq.contains(&d) {
                uniq.push(d);
            }
        }
        let cni_path = uniq
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(":");
        ProcessExecutor {
            dirs: uniq,
            cni_path,
            host_path,
            timeout,
        }
    }

    /// The first executable regular file named `plugin` in the plugin directories.
    ///
    /// # Errors
    /// [`DelegateError::NotFound`] listing the directories searched.
    pub fn find(&self, plugin: &str) -> Result<PathBuf, DelegateError> {
        for d in &self.dirs {
            let p = d.join(plugin);
            if is_executable(&p) {
                return Ok(p);
            }
        }
        Err(DelegateError::NotFound {
            plugin: plugin.to_string(),
            searched: self.dirs.iter().map(|d| d.display().to_string()).collect(),
        })
    }
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

impl Executor for ProcessExecutor {
    fn exec(
        &self,
        plugin: &str,
        inv: &Invocation<'_>,
        stdin: &[u8],
    ) -> Result<Vec<u8>, DelegateError> {
        // The name was validated when the config was parsed; check again here so that no
        // caller can ever turn a path into a lookup.
        crate::cni::conf::validate_plugin_name(plugin).map_err(DelegateError::Spawn)?;
        let bin = self.find(plugin)?;
        let started = std::time::Instant::now();
        let mut child = Process::new(&bin)
            .env_clear()
            .env("CNI_COMMAND", inv.command.as_str())
            .env("CNI_CONTAINERID", inv.container_id)
            .env("CNI_NETNS", inv.netns)
            .env("CNI_IFNAME", inv.ifname)
            .env("CNI_ARGS", inv.args)
            .env("CNI_PATH", &self.cni_path)
            .env("PATH", &self.host_path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| DelegateError::Spawn(format!("{}: {e}", bin.display())))?;
        let pid = child.id();

        // The watchdog kills the process group at the deadline unless told the call is over.
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let timeout = self.timeout;
        let watchdog = std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = done_rx.recv_timeout(timeout) {
                kill_group(pid);
                return true;
            }
            false
        });
        let stderr_reader = child.stderr.take().map(|mut e| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = e.by_ref().take(MAX_STDERR as u64).read_to_end(&mut buf);
                let _ = std::io::copy(&mut e, &mut std::io::sink());
                buf
            })
        });
        if let Some(mut input) = child.stdin.take() {
            // A plugin that exits without reading its stdin gives EPIPE: not our failure.
            let _ = input.write_all(stdin);
        }
        let mut out = Vec::new();
        let mut overflow = false;
        if let Some(mut o) = child.stdout.take() {
            let _ = o.by_ref().take(MAX_OUTPUT as u64 + 1).read_to_end(&mut out);
            if out.len() > MAX_OUTPUT {
                overflow = true;
                let _ = std::io::copy(&mut o, &mut std::io::sink());
            }
        }
        let status = child.wait();
        drop(done_tx);
        let timed_out = watchdog.join().unwrap_or(false);
        let stderr = stderr_reader
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        let stderr = String::from_utf8_lossy(&stderr).trim().to_string();
        tracing::debug!(
            plugin,
            command = inv.command.as_str(),
            ifname = inv.ifname,
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            stderr = %stderr,
            "delegate finished"
        );
        if timed_out {
            return Err(DelegateError::Timeout {
                secs: self.timeout.as_secs_f64(),
            });
        }
        let status = status.map_err(|e| DelegateError::Spawn(format!("waiting: {e}")))?;
        if status.success() {
            if overflow {
                return Err(DelegateError::OutputTooLarge(MAX_OUTPUT));
            }
            return Ok(out);
        }
        if let Some(obj) = ErrorObject::parse_lenient(&out) {
            return Err(DelegateError::Plugin {
                code: obj.code,
                msg: obj.msg,
                details: obj.details,
            });
        }
        let status = match (status.code(), status.signal()) {
            (Some(c), _) => format!("exit code {c}"),
            (None, Some(s)) => format!("signal {s}"),
            _ => status.to_string(),
        };
        Err(DelegateError::Failed {
            status,
            stderr: tail(&stderr, 400),
        })
    }
}

fn kill_group(pid: u32) {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
}

fn tail(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("...{}", &s[start..])
}
