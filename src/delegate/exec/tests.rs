//! The executor against small shell-script plugins: stdin larger than a pipe buffer, the
//! output cap, stderr, plugins that ignore stdin, close stdout early, hang, or leave a
//! grandchild holding the pipe.

use super::*;
use crate::cni::env::Command;

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("plexus-exec-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }

    fn plugin(&self, name: &str, body: &str) {
        let p = self.0.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn run(&self, name: &str, stdin: &[u8], timeout: Duration) -> Result<Vec<u8>, DelegateError> {
        let exec = ProcessExecutor::new(
            vec![self.0.clone()],
            "/usr/sbin:/usr/bin:/sbin:/bin".into(),
            timeout,
        );
        let inv = Invocation {
            command: Command::Add,
            container_id: "c1",
            netns: "/nonexistent",
            ifname: "eth0",
            args: "",
            cancel: None,
        };
        exec.exec(name, &inv, stdin)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

const LONG: Duration = Duration::from_secs(20);

#[test]
fn stdin_larger_than_a_pipe_buffer_comes_back_whole() {
    let d = Dir::new("cat");
    d.plugin("echo", "exec cat");
    let input: Vec<u8> = (0..600_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    assert_eq!(d.run("echo", &input, LONG).unwrap(), input);
}

#[test]
fn output_over_the_cap_is_refused() {
    let d = Dir::new("big");
    d.plugin("big", &format!("head -c {} /dev/zero", MAX_OUTPUT + 10));
    assert!(matches!(
        d.run("big", b"{}", LONG),
        Err(DelegateError::OutputTooLarge(n)) if n == MAX_OUTPUT
    ));
}

#[test]
fn output_at_the_cap_is_kept() {
    let d = Dir::new("cap");
    d.plugin("cap", &format!("head -c {MAX_OUTPUT} /dev/zero"));
    assert_eq!(d.run("cap", b"{}", LONG).unwrap().len(), MAX_OUTPUT);
}

#[test]
fn a_plugin_that_never_reads_stdin_still_answers() {
    let d = Dir::new("deaf");
    d.plugin("deaf", "echo '{\"cniVersion\":\"1.0.0\"}'");
    let input = vec![b' '; 500_000];
    let out = d.run("deaf", &input, LONG).unwrap();
    assert_eq!(out, b"{\"cniVersion\":\"1.0.0\"}\n");
}

#[test]
fn failure_carries_exit_code_and_stderr() {
    let d = Dir::new("fail");
    d.plugin("fail", "cat >/dev/null; echo 'bridge exploded' >&2; exit 3");
    match d.run("fail", b"{}", LONG) {
        Err(DelegateError::Failed { status, stderr }) => {
            assert_eq!(status, "exit code 3");
            assert!(stderr.contains("bridge exploded"), "{stderr}");
        }
        other => panic!("want Failed, got {other:?}"),
    }
}

#[test]
fn closing_stdout_early_still_waits_for_exit() {
    let d = Dir::new("early");
    let marker = d.0.join("exited");
    d.plugin(
        "early",
        &format!("exec >&- 2>&-; sleep 0.2; touch '{}'", marker.display()),
    );
    assert_eq!(d.run("early", b"{}", LONG).unwrap(), b"");
    assert!(marker.exists(), "exec returned before the plugin exited");
}

#[test]
fn timeout_kills_the_whole_process_group() {
    let d = Dir::new("hang");
    let pids = d.0.join("pids");
    d.plugin(
        "hang",
        &format!("sleep 60 & echo $! > '{}'; exec sleep 60", pids.display()),
    );
    let err = d
        .run("hang", b"{}", Duration::from_millis(300))
        .unwrap_err();
    assert!(matches!(err, DelegateError::Timeout { .. }), "{err:?}");
    let bg: i32 = std::fs::read_to_string(&pids)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The kill is delivered; give the kernel a moment to finish the background sleep.
    let gone = (0..200).any(|_| {
        let g = !alive(bg);
        if !g {
            std::thread::sleep(Duration::from_millis(10));
        }
        g
    });
    assert!(
        gone,
        "background process {bg} of the plugin survived the timeout"
    );
}

#[test]
fn a_grandchild_holding_stdout_cannot_stall_past_the_timeout() {
    let d = Dir::new("escape");
    let pids = d.0.join("pids");
    // setsid puts the sleeper out of the plugin's process group, with stdout inherited.
    d.plugin(
        "escape",
        &format!(
            "setsid sh -c 'echo $$ > \"{}\"; exec sleep 600' & wait; echo '{{}}'",
            pids.display()
        ),
    );
    let r = d.run("escape", b"{}", Duration::from_millis(500));
    if let Some(pid) = std::fs::read_to_string(&pids)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
    {
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_raw(pid).unwrap(),
            rustix::process::Signal::KILL,
        );
    }
    assert!(matches!(r, Err(DelegateError::Timeout { .. })), "{r:?}");
}

#[test]
fn cancel_kills_the_plugin_in_flight_after_the_grace() {
    let d = Dir::new("cancel");
    let started = d.0.join("started");
    let pids = d.0.join("pids");
    d.plugin(
        "block",
        &format!(
            "sleep 60 & echo $! > '{}'; touch '{}'; exec sleep 60",
            pids.display(),
            started.display()
        ),
    );
    let exec = ProcessExecutor::new(vec![d.0.clone()], "/usr/bin:/bin".into(), LONG);
    let cancel = crate::delegate::Cancel::new();
    let err = std::thread::scope(|s| {
        let h = s.spawn(|| {
            let inv = Invocation {
                command: Command::Add,
                container_id: "c1",
                netns: "/nonexistent",
                ifname: "eth0",
                args: "",
                cancel: Some(&cancel),
            };
            exec.exec("block", &inv, b"{}")
        });
        // Cancel only once the plugin runs (bounded: a plugin that never starts fails here).
        let deadline = std::time::Instant::now() + LONG;
        while !started.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "the plugin never started"
            );
            std::thread::yield_now();
        }
        cancel.cancel();
        h.join().unwrap().unwrap_err()
    });
    assert!(matches!(err, DelegateError::Cancelled), "{err:?}");
    let kill_at = cancel.kill_at().unwrap();
    assert!(
        std::time::Instant::now() >= kill_at,
        "killed before the grace was over"
    );
    let bg: i32 = std::fs::read_to_string(&pids)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let deadline = std::time::Instant::now() + LONG;
    while alive(bg) {
        assert!(
            std::time::Instant::now() < deadline,
            "the plugin's process group outlived the cancel"
        );
        std::thread::yield_now();
    }
}

#[test]
fn a_plugin_that_finishes_within_the_grace_is_not_killed() {
    let d = Dir::new("grace");
    let go = d.0.join("go");
    // Finishes on its own once the test lets it (after the cancel).
    d.plugin(
        "finish",
        &format!(
            "while [ ! -e '{}' ]; do sleep 0.01; done; echo '{{\"cniVersion\":\"1.0.0\"}}'",
            go.display()
        ),
    );
    let exec = ProcessExecutor::new(vec![d.0.clone()], "/usr/bin:/bin".into(), LONG);
    let cancel = crate::delegate::Cancel::new();
    cancel.cancel();
    std::fs::write(&go, b"").unwrap();
    let inv = Invocation {
        command: Command::Add,
        container_id: "c1",
        netns: "/nonexistent",
        ifname: "eth0",
        args: "",
        cancel: Some(&cancel),
    };
    let out = exec.exec("finish", &inv, b"{}").unwrap();
    assert!(String::from_utf8_lossy(&out).contains("1.0.0"));
}
