//! Explicit signals between a test and the processes it drives, in place of time windows: a
//! [`Gate`] that fake plugins block on until the test opens it (recording who got there and
//! whether it was open), a bounded wait for a condition whose timeout fails the test, and
//! whether a process is blocked waiting for a file lock.
//!
//! A test proves "B started while A was running" by holding A at a gate and waiting for B; it
//! proves "B waited for A" by holding A at a gate until plexus has everything it needs to start
//! B, then recording, when B starts, whether the gate had been opened. Neither needs a sleep or
//! an "absent for N ms" check.

use super::{TestEnv, ref_bin, write_script};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// How long a test waits for a signal before it fails: far longer than any signal takes on a
/// loaded machine, so reaching it means the signal never comes.
pub const SIGNAL_TIMEOUT: Duration = Duration::from_secs(30);

/// Waits until `cond` holds; fails the test, saying what did not happen and `context()`, when
/// [`SIGNAL_TIMEOUT`] passes first.
pub fn wait_until(what: &str, cond: impl FnMut() -> bool, context: impl FnOnce() -> String) {
    assert!(
        super::wait_for(SIGNAL_TIMEOUT, cond),
        "{what}: not within {SIGNAL_TIMEOUT:?}\n{}",
        context()
    );
}

/// A gate for the test's fake plugins: a plugin runs [`Gate::wait_sh`] and blocks there until
/// the test calls [`Gate::open`]; every arrival is recorded. Once open it stays open.
///
/// Built on a FIFO the gate itself holds open for reading and writing, so a plugin never
/// blocks in `open(2)`, only in `read` until the test writes. Dropping the gate closes it, which
/// also lets any plugin still waiting go (a failed test does not leave them blocked).
pub struct Gate {
    name: String,
    fifo: PathBuf,
    arrivals: PathBuf,
    opened: PathBuf,
    fifo_handle: File,
}

impl Gate {
    /// A closed gate named `name` (unique within the test) in the test's dir.
    pub fn new(env: &TestEnv, name: &str) -> Gate {
        let fifo = env.dir.join(format!("gate-{name}.fifo"));
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap_or_else(|e| panic!("mkfifo {}: {e}", fifo.display()));
        let fifo_handle = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fifo)
            .unwrap_or_else(|e| panic!("open {}: {e}", fifo.display()));
        Gate {
            name: name.to_string(),
            arrivals: env.dir.join(format!("gate-{name}.arrivals")),
            opened: env.dir.join(format!("gate-{name}.opened")),
            fifo,
            fifo_handle,
        }
    }

    /// Shell lines for a plugin: record the arrival as `$CNI_COMMAND $CNI_IFNAME`, then block
    /// until the gate is open.
    pub fn wait_sh(&self) -> String {
        format!(
            "echo \"$CNI_COMMAND $CNI_IFNAME\" >> '{arrivals}'\n\
             [ -e '{opened}' ] || read -r gate_line < '{fifo}'\n",
            arrivals = self.arrivals.display(),
            opened = self.opened.display(),
            fifo = self.fifo.display(),
        )
    }

    /// A shell word that expands to `open` or `closed`: the gate's state at that moment.
    pub fn state_sh(&self) -> String {
        format!(
            "$([ -e '{}' ] && echo open || echo closed)",
            self.opened.display()
        )
    }

    /// The arrivals so far (`COMMAND IFNAME`), in order.
    pub fn arrivals(&self) -> Vec<String> {
        fs::read_to_string(&self.arrivals)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Waits until `n` plugins have arrived at the gate (it stays closed); fails the test with
    /// `context()` if they do not. Returns the arrivals, sorted.
    pub fn wait_arrivals(&self, n: usize, context: impl FnOnce() -> String) -> Vec<String> {
        wait_until(
            &format!(
                "{n} arrival(s) at gate {:?} (so far: {:?})",
                self.name,
                self.arrivals()
            ),
            || self.arrivals().len() >= n,
            || format!("arrivals: {:?}\n{}", self.arrivals(), context()),
        );
        let mut all = self.arrivals();
        all.sort();
        all
    }

    /// Opens the gate: every plugin waiting goes on, and later arrivals pass straight through.
    pub fn open(&self) {
        File::create(&self.opened).expect("mark the gate open");
        // One line per waiting reader; more than any test has waiting at once.
        (&self.fifo_handle)
            .write_all("go\n".repeat(64).as_bytes())
            .expect("open the gate");
    }
}

/// Writes `<bin dir>/<plugin>`, a stand-in for the reference plugin of that name which records
/// `PLUGIN COMMAND IFNAME open|closed` (the state of `gate` when it started) in `probe.log`,
/// then runs the reference plugin. plexus finds it first when its `binDir` is the test's bin
/// dir (`builtinDelegates: false` for macvlan, ipvlan and vlan).
pub fn probe_plugin(env: &TestEnv, plugin: &str, gate: &Gate) {
    let body = format!(
        "echo \"{plugin} $CNI_COMMAND $CNI_IFNAME {state}\" >> '{log}'\nexec '{refs}/{plugin}'",
        refs = ref_bin(),
        state = gate.state_sh(),
        log = probe_log(env).display(),
    );
    write_script(&env.bin_dir().join(plugin), &body);
}

fn probe_log(env: &TestEnv) -> PathBuf {
    env.dir.join("probe.log")
}

/// The lines [`probe_plugin`]s recorded, in order.
pub fn probes(env: &TestEnv) -> Vec<String> {
    fs::read_to_string(probe_log(env))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// True while process `pid` is blocked waiting for a file lock (`flock` or POSIX), as the
/// kernel lists waiters in `/proc/locks` (`N: -> FLOCK ADVISORY WRITE PID ...`).
pub fn blocked_on_a_lock(pid: u32) -> bool {
    let locks = fs::read_to_string("/proc/locks").expect("read /proc/locks");
    locks.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.get(1) == Some(&"->") && f.get(5) == Some(&pid.to_string().as_str())
    })
}

/// When every thread of process `pid` is asleep (state `S`: waiting for a child, a pipe, a
/// socket), the pids of its children; `None` while any thread runs or is in uninterruptible
/// I/O (an fsync), or when the process is gone. A plexus asleep with only the plugins a test
/// holds at gates as children has nothing else in flight: anything it would start at that
/// point, it has started.
pub fn asleep_with_children(pid: u32) -> Option<Vec<u32>> {
    let state = |stat: &str| {
        // comm may hold spaces and parentheses: the fields that follow start after the last ')'.
        let rest = stat.rsplit_once(')')?.1;
        let mut f = rest.split_whitespace();
        Some((f.next()?.to_string(), f.next()?.parse::<u32>().ok()?))
    };
    for task in fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let stat = fs::read_to_string(task.ok()?.path().join("stat")).ok()?;
        if state(&stat)?.0 != "S" {
            return None;
        }
    }
    let mut children: Vec<u32> = fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| state(&s))
                .is_some_and(|(_, ppid)| ppid == pid)
        })
        .collect();
    children.sort_unstable();
    Some(children)
}
