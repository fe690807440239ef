//! `plexus lint` against the mistakes people make: misspelled, Multus-only and mis-cased keys
//! of plexus's config, log levels and relative paths, configs without cniVersion or still
//! saying "multus", plugin types that exist nowhere (with `--cni-bin-dir`, repeatable, and
//! without); real manifests that must stay clean (a Pod whose `annotations:` is empty); and
//! the inputs it takes (directories, recursively, and `-` for stdin).

// The tests run the plexus binary.
#![allow(clippy::disallowed_methods)]

mod common;

use common::lint::{TempDir, assert_findings, findings, lint, lint_stdin, nad, pod};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// A plexus conf (`00-plexus.conf`) with a cluster network and `extra` keys (JSON members).
fn plexus_conf(extra: &str) -> String {
    format!(
        r#"{{"cniVersion":"1.0.0","name":"plexus","type":"plexus","clusterNetwork":"/etc/cni/net.d/10-flannel.conflist"{extra}}}"#
    )
}

struct Case {
    name: &'static str,
    file: (&'static str, String),
    /// Arguments; `{bin}` is a directory holding the executable `px-thing` and the
    /// non-executable `px-noexec`.
    args: &'static [&'static str],
    code: i32,
    /// Every finding line, each by its start; `{f}` is the file's path.
    lines: &'static [&'static str],
}

fn case(
    name: &'static str,
    file: (&'static str, String),
    code: i32,
    lines: &'static [&'static str],
) -> Case {
    Case {
        name,
        file,
        args: &[],
        code,
        lines,
    }
}

#[test]
#[allow(clippy::too_many_lines)] // one table
fn mistakes_table() {
    let cases = vec![
        case(
            "a misspelled plexus key, with the key meant",
            ("00-plexus.conf", plexus_conf(r#","namespaceIsolaton":true"#)),
            0,
            &["{f}: plexus conf plexus: namespaceIsolaton: warning: not a plexus key, ignored: did you mean \"namespaceIsolation\"?"],
        ),
        case(
            "a key in the wrong case",
            ("00-plexus.conf", plexus_conf(r#","cnidir":"/var/lib/plexus""#)),
            0,
            &["{f}: plexus conf plexus: cnidir: warning: not a plexus key, ignored: did you mean \"cniDir\"?"],
        ),
        case(
            "a key of nobody's",
            ("00-plexus.conf", plexus_conf(r#","colour":"blue""#)),
            0,
            &["{f}: plexus conf plexus: colour: warning: not a plexus key, ignored"],
        ),
        case(
            "a Multus key plexus does not read",
            ("00-plexus.conf", plexus_conf(r#","retryDeleteOnError":true"#)),
            0,
            &["{f}: plexus conf plexus: retryDeleteOnError: warning: a Multus key plexus does not read: ignored"],
        ),
        case(
            "an invalid logLevel",
            ("00-plexus.conf", plexus_conf(r#","logLevel":"loud""#)),
            1,
            &["{f}: plexus conf plexus: logLevel: error: \"loud\" is not a log level (panic, error, warning, info, debug, verbose): plexus would log at warning"],
        ),
        case(
            "relative cniDir, confDir and binDir: every one reported",
            (
                "00-plexus.conflist",
                r#"{"cniVersion":"1.0.0","name":"plexus","plugins":[{"type":"plexus","clusterNetwork":"flannel","cniDir":"var/lib/plexus","confDir":"net.d","binDir":"./bin"}]}"#.into(),
            ),
            1,
            &[
                "{f}: plexus conflist plexus: binDir: error: \"./bin\" is relative: it would depend on the working directory the runtime runs plexus in; write an absolute path",
                "{f}: plexus conflist plexus: cniDir: error: \"var/lib/plexus\" is relative",
                "{f}: plexus conflist plexus: confDir: error: \"net.d\" is relative",
            ],
        ),
        case(
            "a value ADD refuses, with every other problem of the object",
            (
                "00-plexus.conf",
                plexus_conf(r#","apiTimeoutSeconds":0,"namespaceIsolation":"yes","logLevel":"loud""#),
            ),
            1,
            &[
                "{f}: plexus conf plexus: apiTimeoutSeconds: error: apiTimeoutSeconds 0 must be more than 0",
                "{f}: plexus conf plexus: logLevel: error: \"loud\" is not a log level",
                "{f}: plexus conf plexus: namespaceIsolation: error: invalid type: string \"yes\", expected a boolean",
            ],
        ),
        case(
            "a plexus config without cniVersion",
            (
                "00-plexus.conf",
                r#"{"name":"plexus","type":"plexus","clusterNetwork":"flannel"}"#.into(),
            ),
            0,
            &["{f}: plexus conf plexus: warning: cniVersion is missing: it then means 0.1.0"],
        ),
        case(
            "a network config without cniVersion",
            ("10-br.conf", r#"{"name":"br","type":"bridge"}"#.into()),
            0,
            &["{f}: conf br: warning: cniVersion is missing: it then means 0.1.0"],
        ),
        case(
            "a NAD config without cniVersion",
            ("nad.yaml", nad("mv", r#"{"type":"macvlan","master":"eth1"}"#)),
            0,
            &["{f}: NetworkAttachmentDefinition default/mv: spec.config: warning: cniVersion is missing: it then means 0.1.0"],
        ),
        case(
            "a config still saying multus",
            (
                "00-multus.conf",
                r#"{"cniVersion":"0.3.1","name":"multus-cni-network","type":"multus","kubeconfig":"/etc/cni/net.d/multus.d/multus.kubeconfig","delegates":[{"cniVersion":"0.3.1","name":"flannel","type":"flannel"}]}"#.into(),
            ),
            1,
            &["{f}: multus conf multus-cni-network: type: error: is \"multus\": this is still Multus's config; plexus reads the same keys with the same meanings once \"type\" is \"plexus\""],
        ),
        case(
            "misspelled plugin types: a warning naming the reference plugin meant",
            (
                "typo.yaml",
                nad("typo", r#"{"cniVersion":"1.0.0","type":"macvlna","master":"eth1","ipam":{"type":"host-locl"}}"#),
            ),
            0,
            &[
                "{f}: NetworkAttachmentDefinition default/typo: spec.config: warning: type: \"macvlna\" is not a reference CNI plugin: did you mean \"macvlan\"?",
                "{f}: NetworkAttachmentDefinition default/typo: spec.config: warning: ipam.type: \"host-locl\" is not a reference CNI plugin: did you mean \"host-local\"?",
            ],
        ),
        case(
            "a plugin of its own name is not a misspelling",
            ("own.yaml", nad("own", r#"{"cniVersion":"1.0.0","type":"whereabouts-macvtap"}"#)),
            0,
            &[],
        ),
        Case {
            args: &["--cni-bin-dir", "/usr/lib/cni"],
            ..case(
                "with --cni-bin-dir, a type found nowhere is an error",
                (
                    "typo.yaml",
                    nad("typo", r#"{"cniVersion":"1.0.0","type":"macvlna","master":"eth1","ipam":{"type":"host-locl"}}"#),
                ),
                1,
                &[
                    "{f}: NetworkAttachmentDefinition default/typo: spec.config: error: type: plugin \"macvlna\" is in none of /usr/lib/cni: did you mean \"macvlan\"?",
                    "{f}: NetworkAttachmentDefinition default/typo: spec.config: error: ipam.type: plugin \"host-locl\" is in none of /usr/lib/cni: did you mean \"host-local\"?",
                ],
            )
        },
        Case {
            args: &["--cni-bin-dir", "{bin}", "--cni-bin-dir", "/usr/lib/cni"],
            ..case(
                "--cni-bin-dir is repeatable: each type is looked up in every directory",
                (
                    "10-chain.conflist",
                    r#"{"cniVersion":"1.0.0","name":"chain","plugins":[{"type":"px-thing","ipam":{"type":"host-local"}},{"type":"tuning"},{"type":"px-noexec"},{"type":"px-thign"}]}"#.into(),
                ),
                1,
                &[
                    "{f}: conflist chain: error: plugins[2].type: {bin}/px-noexec is not an executable file",
                    "{f}: conflist chain: error: plugins[3].type: plugin \"px-thign\" is in none of {bin}, /usr/lib/cni: did you mean \"px-thing\"?",
                ],
            )
        },
        Case {
            args: &["--cni-bin-dir", "{bin}"],
            ..case(
                "macvlan, ipvlan and vlan are built into plexus; their IPAM is not",
                (
                    "builtin.yaml",
                    nad("builtin", r#"{"cniVersion":"1.0.0","type":"ipvlan","master":"eth1","ipam":{"type":"static"}}"#),
                ),
                1,
                &["{f}: NetworkAttachmentDefinition default/builtin: spec.config: error: ipam.type: plugin \"static\" is in none of {bin}"],
            )
        },
        case(
            "a Pod whose annotations are empty (YAML null) is valid",
            (
                "null.yaml",
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  annotations:\nspec:\n  containers: [{name: c, image: busybox}]\n".into(),
            ),
            0,
            &[],
        ),
        case(
            "so is a Deployment's pod template whose annotations are empty",
            (
                "null-deploy.yaml",
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api}\nspec:\n  template:\n    metadata:\n      annotations:\n      labels: {app: api}\n".into(),
            ),
            0,
            &[],
        ),
    ];
    for c in cases {
        let dir = TempDir::new("m");
        let bin = dir.0.join("bin");
        let thing = dir.write("bin/px-thing", "#!/bin/sh\n");
        std::fs::set_permissions(&thing, std::fs::Permissions::from_mode(0o755)).unwrap();
        dir.write("bin/px-noexec", "#!/bin/sh\n");
        let file = dir.write(c.file.0, &c.file.1);
        let with_bin = |all: &[&str]| -> Vec<String> {
            all.iter()
                .map(|a| a.replace("{bin}", &bin.display().to_string()))
                .collect()
        };
        let (args, want) = (with_bin(c.args), with_bin(c.lines));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out) = lint(&args, std::slice::from_ref(&file));
        assert_eq!(code, c.code, "{}: exit code; output:\n{out}", c.name);
        let found = findings(&out, &[file.display().to_string()]);
        let want: Vec<&str> = want.iter().map(String::as_str).collect();
        assert_findings(c.name, &found, &want, &file, &out);
    }
}

/// A directory is linted recursively (its YAML, JSON and CNI config files, hidden entries
/// and other files left out), together with files named next to it.
#[test]
fn directories_are_read_recursively() {
    let dir = TempDir::new("dir");
    let nads = dir.write(
        "manifests/nads/mv.yaml",
        &nad("mv", r#"{"cniVersion":"1.0.0","type":"macvlna"}"#),
    );
    let conf = dir.write(
        "manifests/net.d/10-br.conflist",
        r#"{"cniVersion":"1.0.0","name":"br","plugins":[{"type":"brige"}]}"#,
    );
    dir.write("manifests/README.md", "not a manifest: {");
    dir.write("manifests/.git/config.yaml", "not: [yaml");
    let pods = dir.write(
        "pods.yaml",
        &pod("web", r#"[{"name":"mv","mac":"02:00:00:00:00:01"}]"#),
    );

    let (code, out) = lint(&[], &[dir.0.join("manifests"), pods.clone()]);

    assert_eq!(code, 0, "{out}");
    let files: Vec<String> = [&nads, &conf, &pods]
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let found = findings(&out, &files);
    assert_findings(
        "directory",
        &found,
        &[
            &format!(
                "{}: NetworkAttachmentDefinition default/mv: spec.config: warning: type: \"macvlna\"",
                files[0]
            ),
            &format!(
                "{}: conflist br: warning: plugins[0].type: \"brige\" is not a reference CNI plugin: did you mean \"bridge\"?",
                files[1]
            ),
            "{f}: Pod default/web: metadata.annotations: warning: network \"default/mv\": the selection asks for \"mac\"",
        ],
        &pods,
        &out,
    );
    assert!(
        out.ends_with(
            "plexus lint: ok: 3 file(s), 3 object(s): 0 error(s), 3 warning(s), 0 note(s)\n"
        ),
        "{out}"
    );
}

/// `-` reads stdin (named `<stdin>` in findings), cross-checked with the files beside it.
#[test]
fn stdin_is_read_for_a_dash() {
    let dir = TempDir::new("stdin");
    let nads = dir.write(
        "nads.yaml",
        &nad("mv", r#"{"cniVersion":"1.0.0","type":"macvlan"}"#),
    );
    let pods = pod(
        "web",
        r#"[{"name":"mv","mac":"02:00:00:00:00:01"},{"name":"nope"}]"#,
    );

    let (code, out) = lint_stdin(
        &["-".to_string(), nads.display().to_string()],
        pods.as_bytes(),
    );

    assert_eq!(code, 0, "{out}");
    let found = findings(&out, &["<stdin>".to_string(), nads.display().to_string()]);
    assert_findings(
        "stdin",
        &found,
        &[
            "<stdin>: Pod default/web: metadata.annotations: warning: network \"default/mv\": the selection asks for \"mac\"",
            "<stdin>: Pod default/web: metadata.annotations: warning: network \"default/nope\": its NetworkAttachmentDefinition is not among the linted files",
        ],
        &PathBuf::from("<stdin>"),
        &out,
    );
}

/// The example in the README's Debugging section is what `plexus lint` prints.
#[test]
fn the_readme_example_is_what_lint_prints() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let command = "  $ plexus lint manifests/ 00-plexus.conflist\n";
    let start = readme
        .find(command)
        .expect("the lint example in the README")
        + command.len();
    let block = &readme[start..];
    let want: Vec<&str> = block[..block.find("  ```").expect("end of the example")]
        .lines()
        .map(|l| l.strip_prefix("  ").unwrap_or(l))
        .collect();

    let dir = TempDir::new("readme");
    dir.write(
        "manifests/nads/storage.yaml",
        "apiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\nmetadata: {name: storage, namespace: demo}\nspec:\n  config: '{\"cniVersion\":\"1.0.0\",\"type\":\"macvlan\",\"master\":\"eth1\",\"ipam\":{\"type\":\"host-locl\",\"subnet\":\"10.55.0.0/24\"}}'\n",
    );
    dir.write(
        "manifests/pods/web.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: demo\n  annotations:\n    k8s.v1.cni.cncf.io/networks: '[{\"name\":\"storage\",\"interface\":\"data0\",\"mac\":\"02:00:00:00:00:09\"}]'\nspec:\n  containers: [{name: web, image: nginx}]\n",
    );
    dir.write(
        "00-plexus.conflist",
        r#"{"cniVersion":"1.0.0","name":"plexus-cni-network","plugins":[{"type":"plexus",
 "clusterNetwork":"/etc/cni/net.d/10-flannel.conflist","namespaceIsolaton":true,
 "cniDir":"var/lib/plexus","logLevel":"chatty"}]}"#,
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_plexus"))
        .args(["lint", "manifests/", "00-plexus.conflist"])
        .current_dir(&dir.0)
        .env_remove("CNI_COMMAND")
        .output()
        .expect("run plexus lint");
    assert_eq!(out.status.code(), Some(1));
    let got = String::from_utf8_lossy(&out.stdout);
    assert_eq!(got.lines().collect::<Vec<_>>(), want);
}
