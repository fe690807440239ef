//! The command line's help: `plexus --help` says what the binary is when a runtime runs it
//! (CNI_COMMAND set), and `plexus help` works like any other command, `--help` included.

// The tests run the plexus binary.
#![allow(clippy::disallowed_methods)]

use std::process::Command;

/// Runs plexus (not as a CNI plugin) with `args`: exit code, stdout, stderr.
fn plexus(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_plexus"))
        .args(args)
        .env_remove("CNI_COMMAND")
        .output()
        .expect("run plexus");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_says_the_binary_is_the_cni_plugin_under_cni_command() {
    for args in [&["--help"][..], &["-h"], &["help"]] {
        let (code, out, err) = plexus(args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(
            out.contains("With CNI_COMMAND set in its environment")
                && out.contains("plexus is the CNI plugin")
                && out.contains("macvlan, ipvlan or vlan"),
            "{args:?}:\n{out}"
        );
        for command in ["install", "lint", "inspect", "crd", "help"] {
            assert!(
                out.contains(&format!("\n  {command} ")),
                "{args:?}: {command}:\n{out}"
            );
        }
    }
}

#[test]
fn help_takes_help_and_commands() {
    let rows: &[(&[&str], i32, &str)] = &[
        (&["help", "--help"], 0, "Usage: plexus help [COMMAND]"),
        (&["help", "-h"], 0, "Usage: plexus help [COMMAND]"),
        (
            &["help", "lint"],
            0,
            "Usage: plexus lint [OPTIONS] <PATH>...",
        ),
        (
            &["help", "inspect"],
            0,
            "Usage: plexus inspect [OPTIONS] [CONTAINER_ID]",
        ),
    ];
    for (args, code, usage) in rows {
        let (got, out, err) = plexus(args);
        assert_eq!(got, *code, "{args:?}: {err}");
        assert!(out.contains(usage), "{args:?}:\n{out}");
    }
    // `plexus help lint` is `plexus lint --help`.
    assert_eq!(plexus(&["help", "lint"]).1, plexus(&["lint", "--help"]).1);
    let (code, _, err) = plexus(&["help", "frobnicate"]);
    assert_eq!(code, 2, "an unknown command is a usage error");
    assert!(
        err.contains("unrecognized subcommand 'frobnicate'"),
        "{err}"
    );
}
