//! `plexus install` end to end: the real binary, temp directories standing in for
//! /opt/cni/bin and /etc/cni/net.d, no network.

// Tests run the binary under test and a stand-in for a running plugin.
#![allow(clippy::disallowed_methods)]

mod install_support;

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use install_support::*;
use serde_json::{Value, json};

#[test]
fn installs_over_a_running_binary_without_text_file_busy() {
    let node = Node::new("busy");
    let target = node.bin.join("plexus");
    // The "plugin" currently running: a copy of sleep installed as /opt/cni/bin/plexus.
    let sleep = ["/usr/bin/sleep", "/bin/sleep"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("sleep(1) is installed");
    fs::copy(sleep, &target).unwrap();
    let old = fs::read(&target).unwrap();
    // fs::copy's write descriptor may still be held for an instant by a child another test
    // thread forked before it execs (exec then fails with ETXTBSY): try again until it has.
    let mut spawned = None;
    wait_until("the copied binary to be free to exec", || {
        match Command::new(&target).arg("300").spawn() {
            Ok(c) => spawned = Some(c),
            Err(e) if e.raw_os_error() == Some(26) => {}
            Err(e) => panic!("running the stand-in plugin: {e}"),
        }
        spawned.is_some()
    });
    let mut running = spawned.expect("spawned once the wait ended");
    struct Kill<'a>(&'a mut Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let running = Kill(&mut running);
    wait_until("the old binary to be executing", || {
        fs::read_link(format!("/proc/{}/exe", running.0.id())).is_ok_and(|p| p == target)
    });
    // The setup really is the dangerous case: writing the file in place fails.
    let in_place = fs::OpenOptions::new().write(true).open(&target);
    assert_eq!(
        in_place.err().and_then(|e| e.raw_os_error()),
        Some(26),
        "expected ETXTBSY when writing a running binary in place"
    );

    // Default --bin-src: the running executable, i.e. the real plexus binary.
    node.write_conf("10-net.conf", &bridge("net"));
    let out = run_bounded(node.command(&["--once", "--skip-kubeconfig"]));
    assert_ok(&out);
    let new = fs::read(&target).unwrap();
    assert!(new != old, "the binary was replaced");
    assert_eq!(
        new,
        fs::read(plexus()).unwrap(),
        "installed bytes are plexus's"
    );
    assert_eq!(mode(&target), 0o755);
    assert!(hidden_files(&node.bin).is_empty(), "no temp file left");
    // The old process runs on, from the old (now unlinked) inode.
    assert!(running.0.try_wait().unwrap().is_none(), "old process died");
    let exe = fs::read_link(format!("/proc/{}/exe", running.0.id())).unwrap();
    assert!(exe.to_string_lossy().ends_with("(deleted)"), "{exe:?}");
    // And the new file is a complete, runnable plexus.
    let v = Command::new(&target)
        .arg("--version")
        .env_remove("CNI_COMMAND")
        .output()
        .unwrap();
    assert_ok(&v);
    assert!(String::from_utf8_lossy(&v.stdout).starts_with("plexus "));
    assert!(stderr(&out).contains("installed "), "{}", stderr(&out));
}

#[test]
#[allow(clippy::too_many_lines)] // one table
fn primary_detection_table() {
    // (row, files, --primary, Ok(expected clusterNetwork file) or Err(message fragment))
    type Row<'a> = (
        &'a str,
        Vec<(&'a str, Value)>,
        Option<&'a str>,
        Result<&'a str, &'a str>,
    );
    let rows: Vec<Row> = vec![
        (
            "alphabetical order",
            vec![
                ("30-c.json", bridge("c")),
                ("10-a.conflist", bridge("a")),
                ("20-b.conf", bridge("b")),
            ],
            None,
            Ok("10-a.conflist"),
        ),
        (
            "skips its own conflist, whatever it holds",
            vec![
                (CONFLIST, bridge("stale")),
                ("10-flannel.conflist", bridge("flannel")),
            ],
            None,
            Ok("10-flannel.conflist"),
        ),
        (
            "skips plexus-typed configs",
            vec![
                ("01-old-plexus.conflist", plexus_typed()),
                ("99-calico.conflist", bridge("calico")),
            ],
            None,
            Ok("99-calico.conflist"),
        ),
        (
            "ignores other extensions",
            vec![
                ("00-a.yaml", bridge("a")),
                ("01-b.conf.bak", bridge("b")),
                ("02-c.conflist.tmp", bridge("c")),
                ("50-d.conf", bridge("d")),
            ],
            None,
            Ok("50-d.conf"),
        ),
        (
            "explicit --primary wins over order",
            vec![("10-a.conf", bridge("a")), ("20-b.conf", bridge("b"))],
            Some("20-b.conf"),
            Ok("20-b.conf"),
        ),
        (
            "explicit plexus-typed --primary is refused",
            vec![("10-a.conflist", plexus_typed())],
            Some("10-a.conflist"),
            Err("runs plexus or Multus itself"),
        ),
        (
            "only plexus's own configs",
            vec![(CONFLIST, bridge("stale")), ("05-p.conf", plexus_typed())],
            None,
            Err("no network config"),
        ),
    ];
    for (row, files, explicit, want) in rows {
        let node = Node::new("detect");
        for (name, v) in &files {
            node.write_conf(name, v);
        }
        // A directory with a config-like name is not a config either.
        fs::create_dir(node.conf.join("00-dir.conf")).unwrap();
        let explicit_path = explicit.map(|e| node.conf.join(e));
        let mut flags = vec!["--once", "--skip-kubeconfig", "--wait-timeout-seconds", "0"];
        let explicit_str = explicit_path
            .as_ref()
            .map(|p| p.to_str().unwrap().to_string());
        if let Some(p) = &explicit_str {
            flags.extend(["--primary", p.as_str()]);
        }
        let out = node.run(&flags);
        match want {
            Ok(file) => {
                assert_ok(&out);
                let c = node.conflist().expect(row);
                assert_eq!(
                    c["plugins"][0]["clusterNetwork"],
                    json!(node.conf.join(file).to_str().unwrap()),
                    "{row}"
                );
                assert!(
                    stderr(&out).contains(&format!(
                        "primary network config: {}",
                        node.conf.join(file).display()
                    )),
                    "{row}: {}",
                    stderr(&out)
                );
            }
            Err(fragment) => {
                assert!(!out.status.success(), "{row}: should fail");
                assert!(stderr(&out).contains(fragment), "{row}: {}", stderr(&out));
                let left = fs::read(node.conflist_path()).ok();
                let stale = files
                    .iter()
                    .find(|(n, _)| *n == CONFLIST)
                    .map(|(_, v)| serde_json::to_vec(v).unwrap());
                assert_eq!(left, stale, "{row}: conflist untouched on failure");
            }
        }
    }
}

#[test]
fn generated_conflist_content() {
    let node = Node::new("content");
    let primary = node.write_conf(
        "10-flannel.conflist",
        &json!({
            "cniVersion": "0.4.0",
            "name": "cbr0",
            "plugins": [
                {"type": "flannel", "capabilities": {"bandwidth": true, "mac": false}},
                {"type": "portmap", "capabilities": {"portMappings": true}},
                {"type": "tuning"}
            ]
        }),
    );
    let out = node.run(&[
        "--skip-kubeconfig",
        "--log-file",
        "/var/log/plexus.log",
        "--log-level",
        "debug",
        "--namespace-isolation",
        "--global-namespaces",
        "default, shared",
        "--readiness-indicator-file",
        "/run/flannel/subnet.env",
    ]);
    assert_ok(&out);
    let want = json!({
        "cniVersion": "0.4.0",
        "name": "plexus-cni-network",
        "plugins": [{
            "type": "plexus",
            "clusterNetwork": primary.to_str().unwrap(),
            "confDir": node.conf.to_str().unwrap(),
            "binDir": node.bin.to_str().unwrap(),
            "cniDir": node.root.join("var/lib/plexus").to_str().unwrap(),
            "logFile": "/var/log/plexus.log",
            "logLevel": "debug",
            "namespaceIsolation": true,
            "globalNamespaces": ["default", "shared"],
            "readinessindicatorfile": "/run/flannel/subnet.env",
            "capabilities": {
                "bandwidth": true,
                "portMappings": true,
                "io.kubernetes.cri.pod-annotations": true
            }
        }]
    });
    assert_eq!(node.conflist().unwrap(), want);
    assert_eq!(mode(&node.conflist_path()), 0o644);
    assert!(hidden_files(&node.conf).is_empty(), "no temp file left");
    assert!(stderr(&out).contains("wrote "), "{}", stderr(&out));

    // Empty values (a ConfigMap key left blank) mean "not given".
    let out = node.run(&[
        "--skip-kubeconfig",
        "--log-file=",
        "--log-level=",
        "--namespace-isolation=",
        "--global-namespaces=",
        "--readiness-indicator-file=",
    ]);
    assert_ok(&out);
    let plugin = node.conflist().unwrap()["plugins"][0].clone();
    for k in [
        "logFile",
        "logLevel",
        "namespaceIsolation",
        "globalNamespaces",
        "readinessindicatorfile",
        "kubeconfig",
    ] {
        assert!(plugin.get(k).is_none(), "{k} should be absent: {plugin}");
    }

    // Mistyped values are refused before anything is touched.
    for bad in [
        &["--log-level", "loud"][..],
        &["--namespace-isolation=yes"][..],
        &["--once", "--watch"][..],
    ] {
        let out = node.run(bad);
        assert!(!out.status.success(), "{bad:?} accepted");
    }
}

#[test]
fn regenerates_when_the_primary_changes_and_keeps_it_on_sigint() {
    let node = Node::new("regen");
    node.write_conf("20-net.conflist", &bridge("net"));
    let mut w = node.spawn_watch(&[]);
    wait_until("the first conflist", || node.conflist().is_some());
    let first = node.conflist().unwrap();
    assert_eq!(first["cniVersion"], "1.0.0");

    // The primary changes in place: version and capabilities follow.
    node.write_conf(
        "20-net.conflist",
        &json!({"cniVersion": "0.3.1", "name": "net", "plugins": [
            {"type": "bridge"}, {"type": "portmap", "capabilities": {"portMappings": true}}]}),
    );
    wait_until("the conflist to follow the primary's change", || {
        node.conflist().is_some_and(|c| {
            c["cniVersion"] == "0.3.1"
                && c["plugins"][0]["capabilities"]["portMappings"] == json!(true)
        })
    });

    // A config that sorts earlier appears: it becomes the primary.
    let earlier = node.write_conf("10-earlier.conf", &bridge("earlier"));
    wait_until("clusterNetwork to switch to the earlier file", || {
        node.conflist()
            .is_some_and(|c| c["plugins"][0]["clusterNetwork"] == json!(earlier.to_str().unwrap()))
    });

    // Someone deletes plexus's conflist: it is put back.
    fs::remove_file(node.conflist_path()).unwrap();
    wait_until("the conflist to be restored", || node.conflist().is_some());

    w.signal(rustix::process::Signal::INT);
    let out = w.finish();
    assert_ok(&out);
    assert_eq!(
        node.conflist().unwrap()["plugins"][0]["clusterNetwork"],
        json!(earlier.to_str().unwrap()),
        "the conflist stays on SIGINT"
    );
    assert!(earlier.exists(), "the primary is never touched");
    let log = stderr(&out);
    for fragment in ["regenerated", "primary is now", "SIGINT: stopping"] {
        assert!(log.contains(fragment), "missing {fragment:?} in: {log}");
    }
}

/// README "Upgrading": a restart or rolling update of the DaemonSet never removes the conflist
/// (Multus #1527: pods created meanwhile silently got only the primary network).
#[test]
fn sigterm_leaves_the_conflist_in_place_for_restarts_and_updates() {
    let node = Node::new("sigterm");
    let primary = node.write_conf("10-net.conf", &bridge("net"));
    let mut w = node.spawn_watch(&[]);
    wait_until("the conflist", || node.conflist().is_some());
    let before = fs::read(node.conflist_path()).unwrap();
    w.signal(rustix::process::Signal::TERM);
    let out = w.finish();
    assert_ok(&out);
    assert_eq!(
        fs::read(node.conflist_path()).ok(),
        Some(before.clone()),
        "{}",
        stderr(&out)
    );
    assert!(primary.exists());
    assert!(
        stderr(&out).contains("stays, so pods keep getting their networks"),
        "{}",
        stderr(&out)
    );
    // The new pod's install (the update) finds it as it left it.
    let out = node.run(&["--once", "--skip-kubeconfig"]);
    assert_ok(&out);
    assert!(stderr(&out).contains("unchanged:"), "{}", stderr(&out));
    assert_eq!(fs::read(node.conflist_path()).unwrap(), before);

    // Stopped while still waiting for a primary: clean exit, nothing written.
    let empty = Node::new("sigterm-wait");
    let mut w = empty.spawn_watch(&[]);
    let plugin = empty.bin.join("plexus");
    wait_until("the binary to be installed", || plugin.exists());
    w.signal(rustix::process::Signal::TERM);
    let out = w.finish();
    assert_ok(&out);
    assert!(!empty.conflist_path().exists());
    assert!(
        stderr(&out).contains("stopped while waiting"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn waits_for_the_primary_within_the_timeout() {
    // Nothing appears: a clear failure after the timeout, nothing written.
    let node = Node::new("timeout");
    let out = node.run(&["--skip-kubeconfig", "--wait-timeout-seconds", "1"]);
    assert!(!out.status.success());
    let log = stderr(&out);
    assert!(
        log.contains("no usable primary network config after waiting 1s")
            && log.contains(node.conf.to_str().unwrap()),
        "{log}"
    );
    assert!(!node.conflist_path().exists());

    // The primary shows up during the wait: the install completes. The primary is written
    // only once install has said it is waiting (its own signal), so the wait is certain.
    let node = Node::new("appears");
    let src = node.fake_bin(b"bin");
    let child = node
        .command(&[
            "--skip-kubeconfig",
            "--wait-timeout-seconds",
            "30",
            "--poll-interval-ms",
            "20",
        ])
        .arg("--bin-src")
        .arg(&src)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut w = Watcher { child: Some(child) };
    let lines = w.stderr_lines();
    let waiting = lines
        .recv_timeout(DEADLINE)
        .into_iter()
        .chain(lines.iter())
        .find(|l| l.contains("waiting (at most"))
        .expect("install says it is waiting");
    assert!(waiting.contains("no network config"), "{waiting}");
    let primary = node.write_conf("10-late.conflist", &bridge("late"));
    let out = w.finish();
    assert_ok(&out);
    let rest: Vec<String> = lines.iter().collect();
    assert!(
        rest.iter().any(|l| l.contains("primary network config: ")),
        "{rest:?}"
    );
    assert_eq!(
        node.conflist().unwrap()["plugins"][0]["clusterNetwork"],
        json!(primary.to_str().unwrap())
    );
}

#[test]
fn kubeconfig_points_at_the_token_file_and_never_holds_the_token() {
    let node = Node::new("kubeconfig");
    node.write_conf("10-net.conf", &bridge("net"));
    let secrets = node.root.join("serviceaccount");
    fs::create_dir_all(&secrets).unwrap();
    let token = "eyJhbGciOiJSUzI1NiJ9.secret-token-value";
    fs::write(secrets.join("token"), token).unwrap();
    fs::write(secrets.join("ca.crt"), "-----BEGIN CERTIFICATE-----\n").unwrap();
    let kc_path = node.conf.join("plexus.d/plexus.kubeconfig");

    for (host, port, server) in [
        ("10.96.0.1", "443", "https://10.96.0.1:443"),
        ("fd00:10:96::1", "6443", "https://[fd00:10:96::1]:6443"),
    ] {
        let src = node.fake_bin(b"bin");
        let mut c = node.command(&["--once"]);
        c.arg("--bin-src")
            .arg(src)
            .arg("--kubeconfig-out")
            .arg(&kc_path)
            .arg("--token-file")
            .arg(secrets.join("token"))
            .arg("--ca-file")
            .arg(secrets.join("ca.crt"))
            .env("KUBERNETES_SERVICE_HOST", host)
            .env("KUBERNETES_SERVICE_PORT", port);
        let out = run_bounded(c);
        assert_ok(&out);

        let text = fs::read_to_string(&kc_path).unwrap();
        assert!(!text.contains("secret-token-value"), "token copied: {text}");
        assert_eq!(mode(&kc_path), 0o600);
        let kc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        let current = kc["current-context"].as_str().unwrap();
        let ctx = kc["contexts"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|c| c["name"].as_str() == Some(current))
            .unwrap();
        assert_eq!(kc["clusters"][0]["name"], ctx["context"]["cluster"]);
        assert_eq!(kc["users"][0]["name"], ctx["context"]["user"]);
        assert_eq!(
            kc["clusters"][0]["cluster"]["server"].as_str(),
            Some(server)
        );
        assert_eq!(
            kc["clusters"][0]["cluster"]["certificate-authority"].as_str(),
            secrets.join("ca.crt").to_str()
        );
        let user = &kc["users"][0]["user"];
        assert_eq!(user["tokenFile"].as_str(), secrets.join("token").to_str());
        assert!(user.get("token").is_none());

        let conflist = node.conflist().unwrap();
        assert_eq!(
            conflist["plugins"][0]["kubeconfig"],
            json!(kc_path.to_str().unwrap())
        );
        assert!(!conflist.to_string().contains("secret-token-value"));
    }
}

#[test]
fn outside_a_cluster_a_kubeconfig_is_a_clear_error_and_nothing_is_touched() {
    let node = Node::new("nocluster");
    node.write_conf("10-net.conf", &bridge("net"));
    let out = node.run(&["--once"]);
    assert!(!out.status.success());
    let log = stderr(&out);
    assert!(
        log.contains("KUBERNETES_SERVICE_HOST is not set") && log.contains("--skip-kubeconfig"),
        "{log}"
    );
    assert!(
        !node.bin.join("plexus").exists(),
        "binary copied before the error"
    );
    assert!(!node.conflist_path().exists());
}
