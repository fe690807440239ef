//! Every example under examples/ (NADs, pods, configs) is clean under `plexus lint`, alone and
//! all together (where pods are cross-checked against the example NADs); `plexus crd` prints
//! the CRD the code generates.

// The tests run the plexus binary.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

fn plexus(args: &[&str], files: &[PathBuf]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_plexus"))
        .args(args)
        .args(files)
        .env_remove("CNI_COMMAND")
        .output()
        .expect("run plexus");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Every file under `dir`, recursively, except Rust sources (the quickstart, the bench) and
/// Markdown pages (the bench's documentation).
fn example_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read examples/") {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            out.extend(example_files(&p));
        } else if p.extension().is_none_or(|x| x != "rs" && x != "md") {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn examples() -> Vec<PathBuf> {
    let files = example_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples"));
    let has = |part: &str| files.iter().any(|f| f.display().to_string().contains(part));
    for part in [
        "nads/",
        "pods/",
        "net.d/00-plexus.conflist",
        "macvlan",
        "ipvlan",
        "vlan",
        "bridge",
    ] {
        assert!(has(part), "no example matching {part:?} in {files:?}");
    }
    files
}

#[test]
fn each_example_lints_without_errors() {
    for f in examples() {
        let (code, out) = plexus(&["lint"], std::slice::from_ref(&f));
        assert_eq!(code, 0, "{}:\n{out}", f.display());
        assert!(
            !out.contains(": error:"),
            "{}: errors reported:\n{out}",
            f.display()
        );
    }
}

#[test]
fn all_examples_together_are_clean_under_strict() {
    let files = examples();
    let (code, out) = plexus(&["lint", "--strict"], &files);
    assert_eq!(code, 0, "{out}");
    for line in out.lines() {
        assert!(
            !line.contains(": error:") && !line.contains(": warning:"),
            "every pod's networks are among the examples and every capability asked for is \
             declared: {line}"
        );
    }
    let summary = out.lines().last().unwrap_or_default();
    assert!(
        summary.starts_with("plexus lint: ok:")
            && summary.contains(&format!("{} file(s)", files.len()))
            && summary.contains("0 error(s), 0 warning(s)"),
        "{summary}"
    );
    assert!(
        out.contains(
            "NetworkAttachmentDefinition default/storage-net: spec.config: note: is empty"
        ) && out.contains("(checked: ")
            && out.contains("20-storage-net.conf)"),
        "the empty-config NAD is backed by the example file:\n{out}"
    );
}

#[test]
fn crd_prints_the_generated_crd() {
    let (code, out) = plexus(&["crd"], &[]);
    assert_eq!(code, 0, "{out}");
    let parsed: CustomResourceDefinition =
        serde_yaml_ng::from_str(&out).expect("plexus crd prints a CustomResourceDefinition");
    assert_eq!(parsed, plexus::k8s::nad::crd());
    assert_eq!(
        parsed.metadata.name.as_deref(),
        Some("network-attachment-definitions.k8s.cni.cncf.io")
    );
}

/// The readiness-gate example gates on the condition type the agent writes by default.
#[test]
fn the_readiness_gate_example_names_the_agents_condition() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/pods/readiness-gate.yaml");
    let pod: k8s_openapi::api::core::v1::Pod =
        serde_yaml_ng::from_str(&std::fs::read_to_string(&path).expect("read the example"))
            .expect("a pod");
    let gates: Vec<String> = pod
        .spec
        .and_then(|s| s.readiness_gates)
        .unwrap_or_default()
        .into_iter()
        .map(|g| g.condition_type)
        .collect();
    assert_eq!(
        gates,
        vec![plexus::agent::health::condition::DEFAULT_TYPE.to_string()]
    );
}
