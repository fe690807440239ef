//! The real [`Executor`]: finds a plugin binary by name in the plugin directories and runs it
//! with an explicit environment, stdin written then closed, bounded stdout, stderr to the log,
//! and a timeout that kills the plugin's whole process group.
#![allow(clippy::disallowed_methods)] // the one place that spawns processes

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};

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

/// Spawns `cmd`, trying again for a moment while exec answers ETXTBSY: the binary is still
/// open for writing somewhere, e.g. an installer copying it in place, or a child forked by
/// another thread of this process that has not exec'd yet and holds the descriptor its file
/// was written through. Anything else, or ETXTBSY for longer, is the spawn's error.
fn spawn_past_text_busy(cmd: &mut Process) -> std::io::Result<std::process::Child> {
    let mut wait = std::time::Duration::from_millis(1);
    loop {
        match cmd.spawn() {
            Err(e)
                if e.raw_os_error() == Some(rustix::io::Errno::TXTBSY.raw_os_error())
                    && wait <= TEXT_BUSY_LAST_WAIT =>
            {
                std::thread::sleep(wait);
                wait *= 2;
            }
            other => return other,
        }
    }
}

/// The longest single wait of [`spawn_past_text_busy`] (1 + 2 + ... + 64 ms: about 0.13 s in all).
const TEXT_BUSY_LAST_WAIT: std::time::Duration = std::time::Duration::from_millis(64);

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

impl Executor for ProcessExecutor {
    fn timeout(&self) -> Option<Duration> {
        Some(self.timeout)
    }

    fn exec(
        &self,
        plugin: &str,
        inv: &Invocation<'_>,
        stdin: &[u8],
    ) -> Result<Vec<u8>, DelegateError> {
        // The name was validated when the config was parsed; check again here so that no
        // caller can ever turn a path into a lookup.
        crate::cni::conf::validate_plugin_name(plugin)?;
        let bin = self.find(plugin)?;
        let started = std::time::Instant::now();
        let mut cmd = Process::new(&bin);
        die_with_parent(&mut cmd);
        cmd.env_clear()
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
            .process_group(0);
        let mut child = spawn_past_text_busy(&mut cmd).map_err(|e| DelegateError::Spawn {
            binary: bin.clone(),
            reason: e.to_string(),
        })?;
        let Finished {
            out,
            overflow,
            stderr,
            status,
            stopped,
        } = supervise(&mut child, stdin, self.timeout, inv.cancel);
        let stderr = String::from_utf8_lossy(&stderr).trim().to_string();
        tracing::debug!(
            plugin,
            command = inv.command.as_str(),
            ifname = inv.ifname,
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            stderr = %stderr,
            "delegate finished"
        );
        match stopped {
            Some(Stopped::Timeout) => {
                return Err(DelegateError::Timeout {
                    secs: self.timeout.as_secs_f64(),
                });
            }
            Some(Stopped::Cancelled) => return Err(DelegateError::Cancelled),
            None => {}
        }
        let status = status.map_err(|e| DelegateError::Wait(e.to_string()))?;
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
            stderr: crate::text::tail(&stderr, 400),
        })
    }
}

/// A delegate dies with plexus: were plexus killed (a runtime's timeout, the OOM killer) while
/// a delegate is still adding, the orphan would go on creating links and leasing addresses
/// after the runtime's DEL has released them. Killed at once, it leaves only what that DEL
/// cleans. (The signal follows the spawning thread; every delegate is waited for by the thread
/// that started it.)
fn die_with_parent(cmd: &mut Process) {
    let parent = rustix::process::getpid();
    // SAFETY: runs in the child between fork and exec, where only async-signal-safe work is
    // allowed: two raw syscalls (prctl, getppid) and an error built from an errno, no allocation.
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(move || {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
            // plexus died before the prctl: the signal will never come.
            if rustix::process::getppid() != Some(parent) {
                return Err(rustix::io::Errno::SRCH.into());
            }
            Ok(())
        });
    }
}

/// Why plexus killed a delegate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stopped {
    /// It ran past the timeout.
    Timeout,
    /// Its call was cancelled.
    Cancelled,
}

/// What a delegate left when it finished or was killed.
struct Finished {
    out: Vec<u8>,
    overflow: bool,
    stderr: Vec<u8>,
    status: io::Result<ExitStatus>,
    stopped: Option<Stopped>,
}

/// How often a child's exit is polled for when the kernel has no pidfd to wait on.
const EXIT_POLL: Duration = Duration::from_millis(5);

/// Feeds `input` to the child's stdin and collects its stdout (at most [`MAX_OUTPUT`], the rest
/// discarded) and stderr (at most [`MAX_STDERR`]) until both close and it has exited, all from
/// this thread with one `poll` loop (no helper threads on the hot path). At `timeout` the whole
/// process group is killed and the child reaped; pipes a runaway grandchild keeps open are
/// abandoned then, never waited for. The same happens [`GRACE`](super::cancel::GRACE) after
/// `cancel` is thrown.
fn supervise(
    child: &mut Child,
    input: &[u8],
    timeout: Duration,
    cancel: Option<&super::Cancel>,
) -> Finished {
    let deadline = Instant::now() + timeout;
    let pidfd = i32::try_from(child.id())
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .and_then(|p| rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok());
    // Written without blocking, so a plugin that never reads cannot stall the loop.
    let mut stdin = child.stdin.take().filter(|_| !input.is_empty());
    if let Some(mut i) =
        stdin.take_if(|i| rustix::fs::fcntl_setfl(i, rustix::fs::OFlags::NONBLOCK).is_err())
    {
        // No non-blocking pipe: write it the plain way (the pipe buffer takes any sane config).
        let _ = i.write_all(input);
    }
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let (mut written, mut out, mut err) = (0, Vec::new(), Vec::new());
    let mut overflow = false;
    let mut status = None;
    let mut buf = [0u8; 16 << 10];
    loop {
        if status.is_none() && (pidfd.is_none() || (stdout.is_none() && stderr.is_none())) {
            status = child.try_wait().transpose();
        }
        if status.is_some() && stdout.is_none() && stderr.is_none() {
            break;
        }
        let now = Instant::now();
        let kill_at = cancel.and_then(super::Cancel::kill_at);
        let stop = if now >= deadline {
            Some(Stopped::Timeout)
        } else if kill_at.is_some_and(|k| now >= k) {
            Some(Stopped::Cancelled)
        } else {
            None
        };
        if let Some(why) = stop {
            kill_group(child.id());
            return Finished {
                out,
                overflow,
                stderr: err,
                status: status.unwrap_or_else(|| child.wait()),
                stopped: Some(why),
            };
        }
        let mut wait = kill_at.map_or(deadline, |k| k.min(deadline)) - now;
        if status.is_none() && pidfd.is_none() {
            wait = wait.min(EXIT_POLL);
        }
        let ready = poll_ready(
            [
                stdin.as_ref().map(AsFd::as_fd),
                stdout.as_ref().map(AsFd::as_fd),
                stderr.as_ref().map(AsFd::as_fd),
                pidfd.as_ref().filter(|_| status.is_none()).map(AsFd::as_fd),
            ],
            // Once thrown, the switch only sets the kill time: it is not polled again.
            cancel
                .filter(|c| !c.is_cancelled())
                .and_then(super::Cancel::fd),
            wait,
        );
        if ready[0]
            && let Some(i) = &mut stdin
        {
            match i.write(&input[written..]) {
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // A plugin that exits without reading its stdin gives EPIPE: not our failure.
                Err(_) => written = input.len(),
            }
            if written >= input.len() {
                stdin = None;
            }
        }
        if ready[1] && !drain(&mut stdout, &mut buf, &mut out, MAX_OUTPUT + 1) {
            stdout = None;
        }
        if out.len() > MAX_OUTPUT {
            overflow = true;
            out.truncate(MAX_OUTPUT);
        }
        if ready[2] && !drain(&mut stderr, &mut buf, &mut err, MAX_STDERR) {
            stderr = None;
        }
        if ready[3] {
            status = child.try_wait().transpose();
        }
    }
    Finished {
        out,
        overflow,
        stderr: err,
        status: status.unwrap_or_else(|| child.wait()),
        stopped: None,
    }
}

/// Waits up to `wait` for any of `fds` (stdin writable; stdout, stderr, the pidfd readable) or
/// `cancel`; returns which of `fds` are ready (whether `cancel` fired is the caller's check).
fn poll_ready(
    fds: [Option<std::os::fd::BorrowedFd<'_>>; 4],
    cancel: Option<std::os::fd::BorrowedFd<'_>>,
    wait: Duration,
) -> [bool; 4] {
    let mut polled = Vec::with_capacity(5);
    let mut slots = [None; 4];
    for (i, fd) in fds.iter().enumerate() {
        if let Some(fd) = fd {
            slots[i] = Some(polled.len());
            let flags = if i == 0 {
                PollFlags::OUT
            } else {
                PollFlags::IN
            };
            polled.push(PollFd::new(fd, flags));
        }
    }
    if let Some(c) = &cancel {
        polled.push(PollFd::new(c, PollFlags::IN));
    }
    let ts = Timespec::try_from(wait).unwrap_or(Timespec {
        tv_sec: 1,
        tv_nsec: 0,
    });
    match rustix::event::poll(&mut polled, Some(&ts)) {
        Ok(_) | Err(rustix::io::Errno::INTR) => {}
        Err(_) => std::thread::sleep(EXIT_POLL),
    }
    slots.map(|s| s.is_some_and(|i| !polled[i].revents().is_empty()))
}

/// One read from a readable pipe into `keep` (up to `cap` bytes kept, the rest discarded).
/// False at end of file or on an error: the pipe is done.
fn drain<R: Read + AsFd>(
    pipe: &mut Option<R>,
    buf: &mut [u8],
    keep: &mut Vec<u8>,
    cap: usize,
) -> bool {
    let Some(p) = pipe else { return false };
    match p.read(buf) {
        Ok(0) => false,
        Ok(n) => {
            let room = cap.saturating_sub(keep.len()).min(n);
            keep.extend_from_slice(&buf[..room]);
            true
        }
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
            ) =>
        {
            true
        }
        Err(_) => false,
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

#[cfg(test)]
mod tests;
