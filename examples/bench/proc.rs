//! Running one CNI binary the way a runtime does (explicit environment, config on stdin, result
//! on stdout) as a direct child of the calling thread, timed from spawn to reap, with the
//! child's `ru_maxrss` from `wait4`. A traced variant reads the process's own memory high-water
//! mark at its exit stop, which `ru_maxrss` cannot give: Linux folds the peak of every child the
//! process reaped (here: the delegates) into it.

use std::fs::File;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The longest any single call may take; past it the child is killed and the call fails.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// One invocation: binary, `CNI_*` environment, stdin.
#[derive(Debug, Clone)]
pub struct Call {
    pub bin: PathBuf,
    pub env: Vec<(String, String)>,
    pub stdin: Vec<u8>,
}

/// What one invocation did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Spawn to reap, in milliseconds.
    pub ms: f64,
    /// `ru_maxrss` from `wait4` (KiB): the larger of the process's own peak and its reaped children's.
    pub maxrss_kb: i64,
    /// The process's own `VmHWM` at exit (KiB), only from [`run_traced`].
    pub own_hwm_kb: Option<i64>,
    pub stdout: Vec<u8>,
}

impl Call {
    fn spawn(&self, stderr: &File) -> Result<std::process::Child, String> {
        Command::new(&self.bin)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr.try_clone().map_err(|e| e.to_string())?)
            .spawn()
            .map_err(|e| format!("{}: {e}", self.bin.display()))
    }

    fn name(&self) -> String {
        let cmd = self
            .env
            .iter()
            .find(|(k, _)| k == "CNI_COMMAND")
            .map_or("", |(_, v)| v.as_str());
        let bin = self.bin.file_name().unwrap_or_default().to_string_lossy();
        format!("{bin} {cmd}")
    }
}

/// Kills `pid` at the deadline unless the returned sender is dropped first. The pid cannot be
/// reused before the sender is dropped, because the caller only reaps after dropping it.
fn watchdog(pid: i32) -> (mpsc::Sender<()>, std::thread::JoinHandle<bool>) {
    let (tx, rx) = mpsc::channel::<()>();
    let h = std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(CALL_TIMEOUT) {
            // SAFETY: plain syscall; `pid` is our unreaped child (see above), so it names it.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            return true;
        }
        false
    });
    (tx, h)
}

/// Waits until `pid` has exited without reaping it.
fn wait_exited(pid: i32) -> Result<(), String> {
    loop {
        // SAFETY: `info` is a plain C struct the kernel fills; all-zero is a valid value.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid with a valid out-pointer; WNOWAIT leaves the child reapable.
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if r == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(format!("waitid: {e}"));
        }
    }
}

/// Reaps `pid`: (wait status, rusage).
fn reap(pid: i32, flags: libc::c_int) -> Result<(libc::c_int, libc::rusage), String> {
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: `rusage` is a plain C struct; all-zero is valid.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: wait4 on our own child with valid out-pointers.
        let r = unsafe { libc::wait4(pid, &mut status, flags, &mut ru) };
        if r == pid {
            return Ok((status, ru));
        }
        let e = std::io::Error::last_os_error();
        if r < 0 && e.kind() != std::io::ErrorKind::Interrupted {
            return Err(format!("wait4: {e}"));
        }
    }
}

fn check_status(call: &Call, status: libc::c_int, killed: bool, out: &[u8]) -> Result<(), String> {
    if killed {
        return Err(format!(
            "{} killed after {}s",
            call.name(),
            CALL_TIMEOUT.as_secs()
        ));
    }
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        return Ok(());
    }
    Err(format!(
        "{} failed (wait status {status:#x}): {}",
        call.name(),
        String::from_utf8_lossy(out).trim()
    ))
}

/// Runs `call` as a child of this thread (so it inherits this thread's network namespace) and
/// times it from spawn to reap. Fails unless it exits 0 within [`CALL_TIMEOUT`].
pub fn run(call: &Call, stderr: &File) -> Result<Outcome, String> {
    let started = Instant::now();
    let mut child = call.spawn(stderr)?;
    let pid = child.id() as i32;
    let (done, dog) = watchdog(pid);
    if let Some(mut i) = child.stdin.take() {
        let _ = i.write_all(&call.stdin);
    }
    let mut stdout = Vec::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_end(&mut stdout);
    }
    wait_exited(pid)?;
    drop(done);
    let killed = dog.join().unwrap_or(false);
    let (status, ru) = reap(pid, 0)?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    check_status(call, status, killed, &stdout)?;
    Ok(Outcome {
        ms,
        maxrss_kb: ru.ru_maxrss,
        own_hwm_kb: None,
        stdout,
    })
}

/// `VmHWM` of a live (exit-stopped) process, KiB.
fn vm_hwm(pid: i32) -> Option<i64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Like [`run`], but traced (not for timing): the child is stopped at its exit, while its memory
/// still exists, and its own `VmHWM` is read then. The child is seized before it has read its
/// stdin, so it cannot exit first. Its stdout must fit in a pipe buffer (CNI results do).
pub fn run_traced(call: &Call, stderr: &File) -> Result<Outcome, String> {
    let started = Instant::now();
    let mut child = call.spawn(stderr)?;
    let pid = child.id() as i32;
    let (done, dog) = watchdog(pid);
    // SAFETY: PTRACE_SEIZE of our own child with an options word; no pointers are passed.
    let seized = unsafe {
        libc::ptrace(
            libc::PTRACE_SEIZE,
            pid,
            std::ptr::null_mut::<libc::c_void>(),
            libc::PTRACE_O_TRACEEXIT as usize as *mut libc::c_void,
        )
    };
    if seized != 0 {
        let e = std::io::Error::last_os_error();
        // SAFETY: plain syscall on our unreaped child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let _ = reap(pid, 0);
        return Err(format!("ptrace: {e}"));
    }
    if let Some(mut i) = child.stdin.take() {
        let _ = i.write_all(&call.stdin);
    }
    let mut own = None;
    let mut done = Some(done);
    let (status, ru) = loop {
        let (st, ru) = reap(pid, libc::__WALL)?;
        if !libc::WIFSTOPPED(st) {
            break (st, ru);
        }
        let event = (st >> 16) & 0xff;
        let sig = if event == libc::PTRACE_EVENT_EXIT {
            own = vm_hwm(pid);
            done.take(); // it is exiting: the watchdog must not outlive the pid
            0
        } else if event != 0 {
            0
        } else {
            libc::WSTOPSIG(st) // a signal on its way to the child: deliver it
        };
        // SAFETY: resumes our stopped tracee; `data` is a signal number, no pointers.
        unsafe {
            libc::ptrace(
                libc::PTRACE_CONT,
                pid,
                std::ptr::null_mut::<libc::c_void>(),
                sig as usize as *mut libc::c_void,
            )
        };
    };
    drop(done);
    let killed = dog.join().unwrap_or(false);
    let mut stdout = Vec::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_end(&mut stdout);
    }
    check_status(call, status, killed, &stdout)?;
    Ok(Outcome {
        ms: started.elapsed().as_secs_f64() * 1000.0,
        maxrss_kb: ru.ru_maxrss,
        own_hwm_kb: own,
        stdout,
    })
}
