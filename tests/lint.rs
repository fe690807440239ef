//! `plexus lint`: a table of bad files, each answered with exactly its findings (every one of
//! the object, on one line each, in the documented format: file, object, field, severity,
//! message); and the cases that only warn or note. The mistakes people make with plexus's own
//! config, plugin types and inputs are in `lint_mistakes.rs`.

// The tests run the plexus binary.
#![allow(clippy::disallowed_methods)]

mod common;

use common::lint::{TempDir, assert_findings, findings, lint, nad, pod};
use std::fs;

const MACVLAN: &str = r#"{"cniVersion":"1.0.0","type":"macvlan","master":"eth1","ipam":{"type":"host-local","subnet":"192.168.1.0/24"}}"#;

struct Row {
    name: &'static str,
    /// Files written to the temp dir, in order (the first is the one the findings are about).
    files: Vec<(&'static str, String)>,
    args: &'static [&'static str],
    code: i32,
    /// Every finding line, each by its start; `{f}` is the first file's path.
    lines: &'static [&'static str],
}

fn row(
    name: &'static str,
    files: Vec<(&'static str, String)>,
    code: i32,
    lines: &'static [&'static str],
) -> Row {
    Row {
        name,
        files,
        args: &[],
        code,
        lines,
    }
}

#[test]
#[allow(clippy::too_many_lines)] // one table
fn bad_files_table() {
    let rows = vec![
        row(
            "hostile plugin type in a NAD",
            vec![(
                "evil.yaml",
                nad("evil", r#"{"cniVersion":"1.0.0","type":"../../../bin/sh"}"#),
            )],
            1,
            &["{f}: NetworkAttachmentDefinition default/evil: spec.config: error: type: plugin name \"../../../bin/sh\" must be a plain file name"],
        ),
        row(
            "hostile ipam type in a NAD conflist",
            vec![(
                "ipam.yaml",
                nad(
                    "ipam",
                    r#"{"cniVersion":"1.0.0","name":"ipam","plugins":[{"type":"macvlan","ipam":{"type":"/tmp/x"}}]}"#,
                ),
            )],
            1,
            &["{f}: NetworkAttachmentDefinition default/ipam: spec.config: error: plugins[0].ipam.type: plugin name \"/tmp/x\""],
        ),
        row(
            "unsupported cniVersion",
            vec![(
                "ver.yaml",
                nad("ver", r#"{"cniVersion":"2.0.0","type":"macvlan"}"#),
            )],
            1,
            &["{f}: NetworkAttachmentDefinition default/ver: spec.config: error: unsupported cniVersion \"2.0.0\" (plexus speaks 0.1.0 to 1.1.0)"],
        ),
        row(
            "every problem of one NAD config, not only the first",
            vec![(
                "many.yaml",
                nad(
                    "many",
                    r#"{"cniVersion":"2.0.0","name":"many","plugins":[{"type":"../x","ipam":{"type":"/y"}},{"type":"tuning"},{"type":"a/b"}]}"#,
                ),
            )],
            1,
            &[
                "{f}: NetworkAttachmentDefinition default/many: spec.config: error: unsupported cniVersion \"2.0.0\"",
                "{f}: NetworkAttachmentDefinition default/many: spec.config: error: plugins[0].type: plugin name \"../x\"",
                "{f}: NetworkAttachmentDefinition default/many: spec.config: error: plugins[0].ipam.type: plugin name \"/y\"",
                "{f}: NetworkAttachmentDefinition default/many: spec.config: error: plugins[2].type: plugin name \"a/b\"",
            ],
        ),
        row(
            "invalid JSON in spec.config",
            vec![(
                "json.yaml",
                nad("json", r#"{"cniVersion":"1.0.0","type":"macvlan",}"#),
            )],
            1,
            &["{f}: NetworkAttachmentDefinition default/json: spec.config: error: not valid JSON: "],
        ),
        row(
            "spec.config given as a YAML map",
            vec![(
                "map.yaml",
                "apiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\nmetadata: {name: map}\nspec:\n  config: {cniVersion: 1.0.0, type: macvlan}\n".into(),
            )],
            1,
            &["{f}: NetworkAttachmentDefinition default/map: spec.config: error: must be a string"],
        ),
        row(
            "NAD config that runs plexus itself",
            vec![(
                "self.yaml",
                nad("self", r#"{"cniVersion":"1.0.0","type":"plexus"}"#),
            )],
            1,
            &["{f}: NetworkAttachmentDefinition default/self: spec.config: error: its config runs plexus itself (type \"plexus\"); that would recurse"],
        ),
        row(
            "bad NAD name",
            vec![("name.yaml", nad("Macvlan_Net", MACVLAN))],
            1,
            &["{f}: NetworkAttachmentDefinition default/Macvlan_Net: metadata.name: error: \"Macvlan_Net\" is not a DNS-1123 subdomain"],
        ),
        row(
            "wrong NAD apiVersion",
            vec![(
                "api.yaml",
                nad("api", MACVLAN).replace("k8s.cni.cncf.io/v1", "k8s.cni.cncf.io/v1beta1"),
            )],
            1,
            &["{f}: NetworkAttachmentDefinition default/api: apiVersion: error: is \"k8s.cni.cncf.io/v1beta1\", must be \"k8s.cni.cncf.io/v1\""],
        ),
        row(
            "pod with broken networks JSON",
            vec![("broken.yaml", pod("web", r#"[{"name": "a",]"#))],
            1,
            &["{f}: Pod default/web: metadata.annotations: error: k8s.v1.cni.cncf.io/networks: invalid JSON"],
        ),
        row(
            "pod with both network annotations broken",
            vec![(
                "both.yaml",
                pod("web", r#"[{"name": "a",]"#).replace(
                    "  annotations:\n",
                    "  annotations:\n    v1.multus-cni.io/default-network: a,b\n",
                ),
            )],
            1,
            &[
                "{f}: Pod default/web: metadata.annotations: error: k8s.v1.cni.cncf.io/networks: invalid JSON",
                "{f}: Pod default/web: metadata.annotations: error: v1.multus-cni.io/default-network: expected exactly one network, found 2",
            ],
        ),
        row(
            "duplicate interface",
            vec![(
                "dup.yaml",
                pod("web", r#"[{"name":"a","interface":"data0"},{"name":"b","interface":"data0"}]"#),
            )],
            1,
            &["{f}: Pod default/web: metadata.annotations: error: k8s.v1.cni.cncf.io/networks: element 1 {\"interface\":\"data0\",\"name\":\"b\"}: interface \"data0\" is already requested by element 0"],
        ),
        row(
            "requested interface clashes with a generated one (planner)",
            vec![("clash.yaml", pod("web", "a,b@net1"))],
            1,
            &[
                "{f}: Pod default/web: metadata.annotations: warning: network \"default/a\": its NetworkAttachmentDefinition is not among the linted files",
                "{f}: Pod default/web: metadata.annotations: warning: network \"default/b\": its NetworkAttachmentDefinition is not among the linted files",
                "{f}: Pod default/web: metadata.annotations: error: network \"default/b\" (net1): interface name \"net1\" is used twice in this pod",
            ],
        ),
        row(
            "two default routes of one family",
            vec![(
                "routes.yaml",
                pod(
                    "web",
                    r#"[{"name":"a","default-route":["10.0.0.1"]},{"name":"b","default-route":["10.1.0.1"]}]"#,
                ),
            )],
            1,
            &["{f}: Pod default/web: metadata.annotations: error: k8s.v1.cni.cncf.io/networks: element 1"],
        ),
        row(
            "bad MAC",
            vec![(
                "mac.yaml",
                pod("web", r#"[{"name":"a","mac":"02:00:00:00:00"}]"#),
            )],
            1,
            &["{f}: Pod default/web: metadata.annotations: error: k8s.v1.cni.cncf.io/networks: element 0 {\"mac\":\"02:00:00:00:00\",\"name\":\"a\"}: field \"mac\""],
        ),
        row(
            "interface name too long",
            vec![("long.yaml", pod("web", "a@averyveryverylongname"))],
            1,
            &["{f}: Pod default/web: metadata.annotations: error: k8s.v1.cni.cncf.io/networks: element 0 \"a@averyveryverylongname\": field \"interface\": interface name \"averyveryverylongname\" is longer than 15 bytes"],
        ),
        row(
            "bad annotation in a Deployment's pod template",
            vec![(
                "deploy.yaml",
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api, namespace: shop}\nspec:\n  template:\n    metadata:\n      annotations:\n        v1.multus-cni.io/default-network: a,b\n".into(),
            )],
            1,
            &["{f}: Deployment shop/api: spec.template.metadata.annotations: error: v1.multus-cni.io/default-network: expected exactly one network, found 2"],
        ),
        row(
            "invalid YAML",
            vec![("bad.yaml", "kind: Pod\nmetadata: {name: [\n".into())],
            1,
            &["{f}: error: document 1: invalid YAML"],
        ),
        row(
            "unreadable file",
            vec![],
            1,
            &["{f}: error: cannot read: No such file or directory"],
        ),
        row(
            "hostile plugin type in a .conflist",
            vec![(
                "10-net.conflist",
                r#"{"cniVersion":"1.0.0","name":"net","plugins":[{"type":"bridge"},{"type":"..\\evil"}]}"#.into(),
            )],
            1,
            &["{f}: conflist net: error: plugins[1].type: plugin name"],
        ),
        row(
            "plexus config with a hostile inline delegate",
            vec![(
                "00-plexus.conf",
                r#"{"cniVersion":"1.0.0","name":"plexus","type":"plexus","delegates":[{"cniVersion":"1.0.0","name":"c","type":"/bin/sh"}]}"#.into(),
            )],
            1,
            &["{f}: plexus conf plexus: error: delegates[0]: type: plugin name \"/bin/sh\""],
        ),
        row(
            "plexus conflist without a cluster network",
            vec![(
                "00-plexus.conflist",
                r#"{"cniVersion":"1.0.0","name":"plexus","plugins":[{"type":"plexus","logLevel":"debug"}]}"#.into(),
            )],
            1,
            &["{f}: plexus conflist plexus: clusterNetwork: error: neither clusterNetwork nor delegates is set"],
        ),
        row(
            "plexus config with an unsupported cniVersion",
            vec![(
                "00-plexus.json",
                r#"{"cniVersion":"0.9.9","name":"plexus","type":"plexus","clusterNetwork":"flannel"}"#.into(),
            )],
            1,
            &["{f}: plexus conf plexus: error: unsupported cniVersion \"0.9.9\""],
        ),
        row(
            "a document that is neither an object nor a config",
            vec![("what.yaml", "foo: bar\n".into())],
            1,
            &["{f}: error: a document is neither a Kubernetes object"],
        ),
        row(
            "mac requested without the capability warns",
            vec![
                ("cap.yaml", pod("web", r#"[{"name":"mv","mac":"02:00:00:00:00:01"}]"#)),
                ("mv.yaml", nad("mv", MACVLAN)),
            ],
            0,
            &["{f}: Pod default/web: metadata.annotations: warning: network \"default/mv\": the selection asks for \"mac\" but no plugin of this network declares the \"mac\" capability"],
        ),
        Row {
            args: &["--strict"],
            ..row(
                "mac requested without the capability fails with --strict",
                vec![
                    ("cap.yaml", pod("web", r#"[{"name":"mv","mac":"02:00:00:00:00:01"}]"#)),
                    ("mv.yaml", nad("mv", MACVLAN)),
                ],
                1,
                &["{f}: Pod default/web: metadata.annotations: error: network \"default/mv\": the selection asks for \"mac\""],
            )
        },
        row(
            "a selected NAD not among the linted files warns",
            vec![("alone.yaml", pod("web", "other-ns/storage"))],
            0,
            &["{f}: Pod default/web: metadata.annotations: warning: network \"other-ns/storage\": its NetworkAttachmentDefinition is not among the linted files"],
        ),
        row(
            "an unknown kind is ignored with a note",
            vec![(
                "svc.yaml",
                "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\nspec: {ports: [{port: 80}]}\n".into(),
            )],
            0,
            &["{f}: Service shop/web: note: this kind is not checked by plexus lint: ignored"],
        ),
    ];
    assert!(rows.iter().filter(|r| r.code == 1).count() >= 12);
    for r in rows {
        run_row(&r);
    }
}

/// Writes a row's files, lints them and checks the exit code, the summary and the findings.
fn run_row(r: &Row) {
    let dir = TempDir::new("t");
    let mut paths = Vec::new();
    for (name, content) in &r.files {
        paths.push(dir.write(name, content));
    }
    if paths.is_empty() {
        paths.push(dir.0.join("no-such-file.yaml"));
    }
    let (code, out) = lint(r.args, &paths);
    assert_eq!(code, r.code, "{}: exit code; output:\n{out}", r.name);
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    let found = findings(&out, &names);
    assert_findings(r.name, &found, r.lines, &paths[0], &out);
    let summary = out.lines().last().unwrap_or_default();
    assert!(
        summary.starts_with(if r.code == 0 {
            "plexus lint: ok:"
        } else {
            "plexus lint: FAILED:"
        }),
        "{}: summary {summary:?}",
        r.name
    );
}

/// NADs and the pods that use them in one multi-document file: clean when every capability
/// asked for is declared; the default-network NAD is cross-checked like the others.
#[test]
fn multi_document_file_is_cross_checked() {
    let dir = TempDir::new("multi");
    let p = dir.0.join("all.yaml");
    let static_nad = nad(
        "static",
        r#"{"cniVersion":"1.0.0","name":"static","type":"macvlan","master":"eth1","capabilities":{"ips":true,"mac":true},"ipam":{"type":"static"}}"#,
    );
    let alt = nad("alt", r#"{"cniVersion":"1.0.0","type":"bridge"}"#);
    let good = pod(
        "good",
        r#"[{"name":"static","ips":["192.168.20.10/24"],"mac":"02:42:c0:a8:14:0a","interface":"s0"}]"#,
    );
    let override_pod = format!(
        "{}    v1.multus-cni.io/default-network: '{{\"name\":\"alt\",\"ips\":[\"10.9.0.2/24\"]}}'\n",
        pod("ovr", "static").split("spec:\n").next().unwrap()
    );
    fs::write(
        &p,
        format!("{static_nad}---\n{alt}---\n{good}---\n{override_pod}---\n"),
    )
    .unwrap();
    let (code, out) = lint(&[], std::slice::from_ref(&p));
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "one warning and the summary:\n{out}");
    assert!(
        lines[0].contains("Pod default/ovr")
            && lines[0].contains("network \"default/alt\": the selection asks for \"ips\""),
        "the default-network override is capability-checked too:\n{out}"
    );
    assert!(
        lines[1].contains("1 file(s), 4 object(s): 0 error(s), 1 warning(s)"),
        "{out}"
    );
}

/// An empty-config NAD is checked against the config file of that name when it is linted too.
#[test]
fn empty_config_nad_uses_the_linted_file() {
    let dir = TempDir::new("empty");
    let n = dir.0.join("nad.yaml");
    fs::write(
        &n,
        "apiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\nmetadata: {name: fromfile}\n",
    )
    .unwrap();
    let c = dir.0.join("20-fromfile.conf");
    fs::write(
        &c,
        r#"{"cniVersion":"1.0.0","name":"fromfile","type":"macvlan","master":"eth1"}"#,
    )
    .unwrap();
    let p = dir.0.join("pod.yaml");
    fs::write(
        &p,
        pod("web", r#"[{"name":"fromfile","mac":"02:00:00:00:00:01"}]"#),
    )
    .unwrap();

    let (code, out) = lint(&[], &[n.clone(), p.clone()]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("default/fromfile: spec.config: note: is empty:")
            && out.contains("no such config among the linted files"),
        "{out}"
    );
    assert!(
        !out.contains(": warning:"),
        "without the backing file the capabilities cannot be checked:\n{out}"
    );

    let (code, out) = lint(&[], &[n, c.clone(), p]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("(checked: {})", c.display())),
        "{out}"
    );
    assert!(
        out.contains("network \"default/fromfile\": the selection asks for \"mac\""),
        "capabilities are checked against the backing file:\n{out}"
    );
}
