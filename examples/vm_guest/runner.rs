//! A minimal test runner for the guest: each case runs in a child process of this binary (a
//! panic fails only that case, its guards still clean up, and a hung case is killed at its
//! deadline), output is shown for failures, and the last line is the summary the host reads:
//! `vm_guest: N passed, N failed`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{feed_and_collect, wait_deadline};

/// One named test.
#[derive(Clone, Copy)]
pub struct Case {
    /// Unique name, also the filter key.
    pub name: &'static str,
    /// Passes by returning, fails by panicking.
    pub run: fn(),
}

/// A case taking longer is killed and fails (the slowest takes ~20 s under emulation).
const CASE_TIMEOUT: Duration = Duration::from_secs(180);

/// Runs as the driver (no arguments, or a name filter) or as one case (`--case NAME`).
/// Exits 0 only when at least one case ran and none failed.
pub fn main(cases: &[Case]) -> ! {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, name] = args.as_slice()
        && flag == "--case"
    {
        let case = cases
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no case {name}"));
        (case.run)();
        std::process::exit(0);
    }
    let filter = args.first().map(String::as_str).unwrap_or("");
    let (mut passed, mut failed) = (0, 0);
    let started = Instant::now();
    for case in cases.iter().filter(|c| c.name.contains(filter)) {
        let t = Instant::now();
        match run_child(case.name) {
            Ok(()) => {
                passed += 1;
                println!(
                    "case {} ... ok ({:.1} s)",
                    case.name,
                    t.elapsed().as_secs_f64()
                );
            }
            Err(output) => {
                failed += 1;
                println!(
                    "case {} ... FAILED ({:.1} s)",
                    case.name,
                    t.elapsed().as_secs_f64()
                );
                for line in output.lines() {
                    println!("    {line}");
                }
            }
        }
    }
    println!(
        "vm_guest: all cases took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    println!("vm_guest: {passed} passed, {failed} failed");
    std::process::exit(if failed == 0 && passed > 0 { 0 } else { 1 });
}

/// Runs one case in a child; `Err` carries its output.
fn run_child(name: &str) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut child = Command::new(exe)
        .args(["--case", name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn: {e}"))?;
    let (out, err) = feed_and_collect(&mut child, b"");
    let status = wait_deadline(&mut child, CASE_TIMEOUT);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let output = format!(
        "{}{}",
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default()
    );
    match status {
        Some(s) if s.success() => Ok(()),
        Some(s) => Err(format!("exited {s}\n{output}")),
        None => Err(format!("killed after {CASE_TIMEOUT:?}\n{output}")),
    }
}
