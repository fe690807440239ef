//! `make demo` as a newcomer runs it with its output going to a log or a pipe: it says what it
//! is doing before the build (the first one takes minutes), prints no terminal escapes, and
//! ends with the quickstart's "clean.".

// The test runs make, cargo and the quickstart.
#![allow(clippy::disallowed_methods)]

use std::process::Command;

#[test]
fn make_demo_announces_its_build_and_prints_no_escapes_into_a_pipe() {
    // The environment of the shell that ran the tests, not the one cargo gives a test: build
    // scripts that watch CARGO_PKG_NAME and the like (ring's) would rebuild for this make and
    // again for the next plain one; an outer `make test`'s jobserver is not this make's either.
    // What the shell set (CARGO_TARGET_DIR, RUSTFLAGS, ...) stays.
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "exec make --no-print-directory demo 2>&1"])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let set_for_tests = ["CARGO_PKG_", "CARGO_MANIFEST_", "CARGO_BIN_"]
            .iter()
            .any(|p| key.starts_with(p))
            || [
                "CARGO",
                "CARGO_CRATE_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
                "OUT_DIR",
                "LD_LIBRARY_PATH",
                "MAKEFLAGS",
                "MFLAGS",
                "MAKELEVEL",
                "CARGO_MAKEFLAGS",
            ]
            .contains(&key.as_ref());
        if set_for_tests {
            cmd.env_remove(key.as_ref());
        }
    }
    let out = cmd
        .output()
        .expect("run make demo (make and cargo are needed)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "make demo failed:\n{text}");
    let escapes: Vec<&str> = text.lines().filter(|l| l.contains('\x1b')).collect();
    assert!(
        escapes.is_empty(),
        "terminal escapes in output that is not a terminal: {escapes:?}"
    );
    let first_non_deps = text
        .lines()
        .find(|l| !l.starts_with("installing:"))
        .unwrap_or_default();
    assert!(
        first_non_deps.starts_with("make demo: building plexus and the quickstart"),
        "the build is announced before it starts:\n{text}"
    );
    let build = text.find("make demo: building").unwrap_or(usize::MAX);
    let cargo = text.find("build --bins --examples").unwrap_or(0);
    assert!(build < cargo, "announced before cargo runs:\n{text}");
    assert!(text.contains("\n== 7. Nothing left behind\n"), "{text}");
    assert!(text.trim_end().ends_with("clean."), "{text}");
}
