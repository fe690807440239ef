//! A node's life after the first install, with the real binary on temp directories: moving
//! from Multus (README "Moving from Multus"), the probes' `install --check`, and `plexus
//! uninstall` (README "Uninstalling").
#![allow(clippy::disallowed_methods)] // tests run the binary under test

mod install_support;

use std::fs;
use std::process::Command;

use install_support::*;
use serde_json::{Value, json};

/// README "Moving from Multus": whatever Multus left, plexus's conflist is what the runtime
/// runs; Multus's config is reported loudly and left in place, or moved aside on request.
#[test]
fn migration_from_multus_puts_plexus_first_and_moves_multus_aside_only_when_asked() {
    type Row<'a> = (&'a str, Vec<(&'a str, Value)>);
    let rows: Vec<Row> = vec![
        (
            "thin 00-multus.conf",
            vec![("00-multus.conf", multus_thin())],
        ),
        (
            "00-multus.conflist",
            vec![(
                "00-multus.conflist",
                json!({"cniVersion": "0.3.1", "name": "multus-cni-network",
                       "plugins": [{"type": "multus", "delegates": []}]}),
            )],
        ),
        ("thick mode's shim", vec![("00-multus.conf", multus_shim())]),
        (
            "an older plexus conflist as well",
            vec![
                ("00-multus.conf", multus_thin()),
                ("00-plexus.conflist", plexus_typed()),
            ],
        ),
    ];
    for (row, files) in rows {
        for move_aside in [false, true] {
            let node = Node::new("multus");
            let primary = node.write_conf("10-calico.conflist", &bridge("calico"));
            for (name, v) in &files {
                node.write_conf(name, v);
            }
            let mut flags = vec!["--once", "--skip-kubeconfig"];
            if move_aside {
                flags.push("--move-multus-aside");
            }
            let out = node.run(&flags);
            assert_ok(&out);
            let log = stderr(&out);
            assert_eq!(runtime_pick(&node.conf), CONFLIST, "{row}: {log}");
            assert_eq!(
                node.conflist().unwrap()["plugins"][0]["clusterNetwork"],
                json!(primary.to_str().unwrap()),
                "{row}: Multus is never the cluster network"
            );
            let multus = node.conf.join(files[0].0);
            let aside = node
                .conf
                .join(format!("{}.moved-aside-by-plexus", files[0].0));
            assert!(
                log.contains("WARNING: found a Multus config")
                    && log.contains(multus.to_str().unwrap()),
                "{row}: {log}"
            );
            if move_aside {
                assert!(!multus.exists() && aside.exists(), "{row}: moved aside");
                assert!(log.contains("moved it aside"), "{row}: {log}");
            } else {
                assert!(multus.exists() && !aside.exists(), "{row}: left in place");
                assert!(log.contains("--move-multus-aside"), "{row}: {log}");
            }
            assert!(
                !node.conf.join("00-plexus.conflist").exists(),
                "{row}: an older plexus conflist is removed"
            );
        }
    }

    // A Multus config under a name that sorts before plexus's: refused, unless moved aside.
    let node = Node::new("multus-first");
    node.write_conf("10-calico.conflist", &bridge("calico"));
    node.write_conf("00-0-multus.conf", &multus_thin());
    let out = node.run(&["--once", "--skip-kubeconfig"]);
    assert!(!out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("00-0-multus.conf sorts before 00-00-plexus.conflist"),
        "{}",
        stderr(&out)
    );
    let out = node.run(&["--once", "--skip-kubeconfig", "--move-multus-aside"]);
    assert_ok(&out);
    assert_eq!(runtime_pick(&node.conf), CONFLIST);
}

#[test]
fn check_reports_whether_the_node_is_set_up() {
    let node = Node::new("check");
    let check = |node: &Node| {
        run_bounded({
            let mut c = Command::new(plexus());
            c.args(["install", "--check", "--cni-conf-dir"])
                .arg(&node.conf)
                .env_remove("CNI_COMMAND");
            c
        })
    };
    let out = check(&node);
    assert!(!out.status.success(), "nothing installed yet");
    let primary = node.write_conf("10-net.conf", &bridge("net"));
    assert_ok(&node.run(&["--once", "--skip-kubeconfig"]));
    let out = check(&node);
    assert_ok(&out);
    assert!(stderr(&out).contains("is first"), "{}", stderr(&out));
    // Something sorting first, or the cluster network gone: unhealthy, saying why.
    node.write_conf("00-0-other.conf", &bridge("other"));
    let out = check(&node);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("00-0-other.conf sorts before"),
        "{}",
        stderr(&out)
    );
    fs::remove_file(node.conf.join("00-0-other.conf")).unwrap();
    fs::remove_file(&primary).unwrap();
    let out = check(&node);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
}

/// README "Uninstalling": while pods with other networks exist, plexus drains (new pods get
/// the cluster network only, existing ones are DELeted from their journal); then it is removed.
#[test]
fn uninstall_drains_while_pods_need_plexus_then_removes_it() {
    let node = Node::new("uninstall");
    node.write_conf("10-net.conf", &bridge("net"));
    let secrets = node.root.join("sa");
    fs::create_dir_all(&secrets).unwrap();
    let kc = node.conf.join("plexus.d/plexus.kubeconfig");
    let src = node.fake_bin(b"bin");
    let mut c = node.command(&["--once"]);
    c.arg("--bin-src")
        .arg(src)
        .arg("--kubeconfig-out")
        .arg(&kc)
        .arg("--token-file")
        .arg(secrets.join("token"))
        .arg("--ca-file")
        .arg(secrets.join("ca.crt"))
        .env("KUBERNETES_SERVICE_HOST", "10.96.0.1")
        .env("KUBERNETES_SERVICE_PORT", "443");
    assert_ok(&run_bounded(c));
    let journal = node.root.join("var/lib/plexus");
    journal_record(&journal, "withnad", &["k", "storage"]);
    journal_record(&journal, "clusteronly", &["k"]);
    let uninstall = |node: &Node, extra: &[&str]| {
        let mut c = Command::new(plexus());
        c.arg("uninstall")
            .arg("--cni-bin-dir")
            .arg(&node.bin)
            .arg("--cni-conf-dir")
            .arg(&node.conf)
            .arg("--cni-dir")
            .arg(&journal)
            .arg("--kubeconfig-out")
            .arg(&kc)
            .args(extra)
            .env_remove("CNI_COMMAND");
        run_bounded(c)
    };

    let out = uninstall(&node, &[]);
    assert_ok(&out);
    assert!(stderr(&out).contains("withnad"), "{}", stderr(&out));
    let plugin = node.conflist().expect("still in the runtime's path")["plugins"][0].clone();
    assert!(plugin.get("kubeconfig").is_none(), "{plugin}");
    assert!(
        plugin["capabilities"]
            .get("io.kubernetes.cri.pod-annotations")
            .is_none()
    );
    assert!(!kc.exists(), "the kubeconfig goes at once");
    assert!(
        node.bin.join("plexus").exists(),
        "DEL still needs the binary"
    );
    // Still first: pods created now get the cluster network through the draining plexus.
    assert_eq!(runtime_pick(&node.conf), CONFLIST);

    // The pod with other networks is deleted (its record goes): plexus is removed.
    fs::remove_file(journal.join("withnad.json")).unwrap();
    let out = uninstall(&node, &[]);
    assert_ok(&out);
    assert!(stderr(&out).contains("removed"), "{}", stderr(&out));
    assert!(!node.conflist_path().exists());
    assert!(!node.bin.join("plexus").exists());
    assert_eq!(runtime_pick(&node.conf), "10-net.conf");
    // Again: nothing to do, still success.
    let out = uninstall(&node, &[]);
    assert_ok(&out);
    assert!(stderr(&out).contains("not installed"), "{}", stderr(&out));

    // --force removes at once, saying what it abandons.
    assert_ok(&node.run(&["--once", "--skip-kubeconfig"]));
    journal_record(&journal, "again", &["k", "storage"]);
    let out = uninstall(&node, &["--force"]);
    assert_ok(&out);
    assert!(stderr(&out).contains("--force") && stderr(&out).contains("again"));
    assert!(!node.conflist_path().exists());
}
