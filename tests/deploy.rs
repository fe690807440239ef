//! The manifests in deploy/ and crds/: every document parses into its Kubernetes type with no
//! field lost (so a typo fails), each kustomization lists exactly its manifests, the CRD is on
//! its own (never on plexus's delete path) and no Namespace is declared, the image is named in
//! one place that matches `make image`, RBAC grants exactly what the plugin calls, the
//! DaemonSets are wired to the account, ConfigMap and volumes they name, run with least
//! privileges, and their command lines (probes included) parse with plexus's own CLI, and the
//! CRD files are the generated CRD.

mod deploy_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use clap::Parser;
use k8s_openapi::api::core::v1::ServiceAccount;

use deploy_support::*;

#[test]
fn every_manifest_parses_into_its_type() {
    for dir in ["deploy", "deploy/crd", "deploy/uninstall", "crds"] {
        let files = manifests(&root().join(dir));
        assert!(!files.is_empty(), "{dir}/ has no manifests");
        for f in files {
            parse_file(&root().join(dir).join(f));
        }
    }
    // The check itself catches a misspelt field.
    let typo = serde_json::json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "x", "namespce": "kube-system"}});
    let err = check_typed::<ServiceAccount>(&typo).unwrap_err();
    assert_eq!(err, ".metadata.namespce is not a field of the type (typo?)");
}

#[test]
fn kustomization_lists_exactly_the_manifests() {
    for (sub, components) in [
        ("", &["image"][..]),
        ("crd", &[][..]),
        ("uninstall", &["../image"][..]),
    ] {
        let dir = root().join("deploy").join(sub);
        let k = kustomization(&dir);
        assert_eq!(
            k.api_version, "kustomize.config.k8s.io/v1beta1",
            "deploy/{sub}"
        );
        assert_eq!(k.kind, "Kustomization");
        assert!(
            k.images.is_empty(),
            "deploy/{sub}: the image is named in deploy/image/ only"
        );
        assert_eq!(k.components, components, "deploy/{sub}");
        let listed: BTreeSet<String> = k.resources.iter().cloned().collect();
        assert_eq!(
            listed.len(),
            k.resources.len(),
            "a resource is listed twice"
        );
        for r in &k.resources {
            assert!(dir.join(r).is_file(), "deploy/{sub} lists missing {r}");
        }
        assert_eq!(
            listed,
            manifests(&dir),
            "deploy/{sub}: every manifest listed, nothing else"
        );
    }
}

/// The CRD is applied on its own and never deleted with plexus (deleting it deletes every NAD,
/// Multus's included); kube-system is never declared (so never part of a delete).
#[test]
fn crd_and_namespace_are_not_on_plexuss_delete_path() {
    for sub in ["", "uninstall"] {
        let d = deploy_dir(sub);
        assert!(d.crds.is_empty(), "deploy/{sub} holds a CRD");
        assert!(d.namespaces.is_empty(), "deploy/{sub} declares a Namespace");
    }
    let crd = deploy_dir("crd");
    assert_eq!(crd.crds.len(), 1);
    assert!(crd.namespaces.is_empty() && crd.daemon_sets.is_empty() && crd.roles.is_empty());
}

/// `make image` tags IMAGE_NAME:VERSION; deploy/image/ (the one place naming the image) maps
/// every container's `plexus` to exactly that.
#[test]
fn the_image_is_named_in_one_place_matching_make_image() {
    let k = kustomization(&root().join("deploy/image"));
    assert_eq!(k.api_version, "kustomize.config.k8s.io/v1alpha1");
    assert_eq!(k.kind, "Component");
    assert!(k.resources.is_empty() && k.components.is_empty());
    let [entry] = &k.images[..] else {
        panic!("deploy/image names one image");
    };
    let makefile = std::fs::read_to_string(root().join("Makefile")).unwrap();
    let image_name = makefile
        .lines()
        .find_map(|l| l.strip_prefix("IMAGE_NAME ?= "))
        .expect("IMAGE_NAME in the Makefile")
        .trim();
    assert_eq!(entry.name, IMAGE);
    assert_eq!(entry.new_name, image_name);
    assert_eq!(entry.new_tag, env!("CARGO_PKG_VERSION"));
    for sub in ["", "uninstall"] {
        for ds in &deploy_dir(sub).daemon_sets {
            for c in containers(ds) {
                assert_eq!(c.image.as_deref(), Some(IMAGE), "deploy/{sub}: {}", c.name);
            }
        }
    }
}

#[test]
fn every_namespaced_object_is_in_kube_system() {
    for sub in ["", "uninstall"] {
        let d = deploy_dir(sub);
        let mut namespaced = Vec::new();
        namespaced.extend(d.accounts.iter().map(|o| &o.metadata));
        namespaced.extend(d.config_maps.iter().map(|o| &o.metadata));
        namespaced.extend(d.daemon_sets.iter().map(|o| &o.metadata));
        assert!(!namespaced.is_empty());
        for m in namespaced {
            assert_eq!(m.namespace.as_deref(), Some(NAMESPACE), "{:?}", m.name);
        }
    }
}

#[test]
fn cluster_role_grants_no_more_than_the_plugin_and_the_agent_need() {
    let d = deploy();
    let role = one("ClusterRole", &d.roles);
    // What src/k8s/client.rs calls: GET pod, GET NAD, PATCH pods/status, POST core events; and
    // the agent's caches (src/agent/cache.rs): list and watch pods and NADs.
    let allowed: BTreeSet<(&str, &str, &str)> = [
        ("", "pods", "get"),
        ("", "pods", "list"),
        ("", "pods", "watch"),
        ("", "pods/status", "patch"),
        ("k8s.cni.cncf.io", "network-attachment-definitions", "get"),
        ("k8s.cni.cncf.io", "network-attachment-definitions", "list"),
        ("k8s.cni.cncf.io", "network-attachment-definitions", "watch"),
        ("", "events", "create"),
    ]
    .into();
    assert!(role.aggregation_rule.is_none(), "no aggregation");
    let mut granted = BTreeSet::new();
    for (i, rule) in role.rules.iter().flatten().enumerate() {
        assert!(
            rule.non_resource_urls.is_none(),
            "rule {i}: nonResourceURLs"
        );
        assert!(rule.resource_names.is_none(), "rule {i}: resourceNames");
        let groups = rule.api_groups.clone().unwrap_or_default();
        let resources = rule.resources.clone().unwrap_or_default();
        for g in &groups {
            for r in &resources {
                for v in &rule.verbs {
                    for x in [g, r, v] {
                        assert!(!x.contains('*'), "rule {i}: wildcard {x:?}");
                    }
                    granted.insert((g.clone(), r.clone(), v.clone()));
                }
            }
        }
    }
    let granted: BTreeSet<(&str, &str, &str)> = granted
        .iter()
        .map(|(g, r, v)| (g.as_str(), r.as_str(), v.as_str()))
        .collect();
    let extra: Vec<_> = granted.difference(&allowed).collect();
    assert!(extra.is_empty(), "grants more than needed: {extra:?}");
    let missing: Vec<_> = allowed.difference(&granted).collect();
    assert!(missing.is_empty(), "the plugin needs {missing:?}");
}

#[test]
fn binding_ties_the_role_to_the_daemon_sets_account() {
    let d = deploy();
    let (role, binding, sa) = (
        one("ClusterRole", &d.roles),
        one("ClusterRoleBinding", &d.bindings),
        one("ServiceAccount", &d.accounts),
    );
    assert_eq!(binding.role_ref.api_group, "rbac.authorization.k8s.io");
    assert_eq!(binding.role_ref.kind, "ClusterRole");
    assert_eq!(Some(&binding.role_ref.name), role.metadata.name.as_ref());
    let subjects = binding.subjects.as_deref().unwrap_or_default();
    assert_eq!(subjects.len(), 1, "only plexus's account is bound");
    let s = &subjects[0];
    assert_eq!(s.kind, "ServiceAccount");
    assert_eq!(Some(&s.name), sa.metadata.name.as_ref());
    assert_eq!(s.namespace, sa.metadata.namespace);
    let pod = pod_spec(the_daemon_set(&d));
    assert_eq!(pod.service_account_name, sa.metadata.name);
}

#[test]
fn daemon_sets_run_on_every_linux_node_with_least_privilege() {
    for sub in ["", "uninstall"] {
        let d = deploy_dir(sub);
        let ds = the_daemon_set(&d);
        let spec = ds.spec.as_ref().unwrap();
        let pod = spec.template.spec.as_ref().unwrap();
        assert_eq!(pod.host_network, Some(true));
        assert_eq!(
            pod.priority_class_name.as_deref(),
            Some("system-node-critical")
        );
        assert_eq!(
            pod.node_selector
                .as_ref()
                .and_then(|n| n.get("kubernetes.io/os"))
                .map(String::as_str),
            Some("linux"),
            "deploy/{sub}: plexus runs only on Linux nodes"
        );
        assert_eq!(pod.automount_service_account_token, Some(false));
        let tolerates_all = pod.tolerations.iter().flatten().any(|t| {
            t.operator.as_deref() == Some("Exists") && t.key.is_none() && t.effect.is_none()
        });
        assert!(
            tolerates_all,
            "a toleration with operator Exists and no key/effect"
        );
        let labels = spec.selector.match_labels.as_ref().unwrap();
        let pod_labels = spec
            .template
            .metadata
            .as_ref()
            .unwrap()
            .labels
            .as_ref()
            .unwrap();
        for (k, v) in labels {
            assert_eq!(
                pod_labels.get(k),
                Some(v),
                "selector matches the pod template"
            );
        }
        for c in containers(ds) {
            let r = c
                .resources
                .as_ref()
                .unwrap_or_else(|| panic!("{}: resources", c.name));
            let requests = r.requests.as_ref().expect("requests");
            assert!(
                requests.contains_key("cpu") && requests.contains_key("memory"),
                "{}",
                c.name
            );
            let limits = r.limits.as_ref().expect("limits");
            assert!(limits.contains_key("memory"), "{}: a memory limit", c.name);
            let sc = c.security_context.as_ref().unwrap();
            assert_ne!(sc.privileged, Some(true), "{}: privileged", c.name);
            assert_eq!(sc.allow_privilege_escalation, Some(false), "{}", c.name);
            assert_eq!(sc.read_only_root_filesystem, Some(true), "{}", c.name);
            assert_eq!(sc.run_as_user, Some(0), "{}: root-owned host dirs", c.name);
            let caps = sc.capabilities.as_ref().expect("capabilities");
            assert_eq!(
                caps.drop.as_deref(),
                Some(&["ALL".to_string()][..]),
                "{}",
                c.name
            );
            // Only the agent adds any back: attachment health and hot-plug enter pods' network
            // namespaces (SYS_ADMIN), hot-plug makes and removes links there (NET_ADMIN).
            let added = caps.add.clone().unwrap_or_default();
            let want: &[&str] = if c.name == "plexus" {
                &["NET_ADMIN", "SYS_ADMIN"]
            } else {
                &[]
            };
            assert_eq!(added, want, "{}: capabilities added", c.name);
        }
    }
    let d = deploy();
    assert_eq!(
        containers(the_daemon_set(&d)).len(),
        2,
        "an install init container and the agent"
    );
}

/// The agent's command line as the kubelet runs it, parsed by the agent's own parser.
fn agent_args(d: &Deploy) -> plexus::agent::Args {
    let pod = pod_spec(the_daemon_set(d));
    let main = one("container", &pod.containers);
    assert_eq!(
        main.command.as_deref(),
        Some(&["plexus-agent".to_string()][..])
    );
    let argv =
        std::iter::once("plexus-agent".to_string()).chain(expanded_args(main, &d.config_maps));
    plexus::agent::Args::try_parse_from(argv)
        .unwrap_or_else(|e| panic!("plexus-agent rejects its args: {e}"))
}

/// The probes ask the agent's own endpoint, where its flags say it listens.
#[test]
fn probes_ask_the_agents_health_endpoints() {
    let d = deploy();
    let args = agent_args(&d);
    let pod = pod_spec(the_daemon_set(&d));
    let main = one("container", &pod.containers);
    for (what, probe, path) in [
        ("readiness", &main.readiness_probe, "/readyz"),
        ("liveness", &main.liveness_probe, "/healthz"),
    ] {
        let get = probe
            .as_ref()
            .and_then(|p| p.http_get.as_ref())
            .unwrap_or_else(|| panic!("{what}: an httpGet probe"));
        assert_eq!(get.path.as_deref(), Some(path), "{what}");
        assert_eq!(
            get.host.as_deref(),
            Some(args.metrics_addr.ip().to_string().as_str()),
            "{what}"
        );
        assert_eq!(
            get.port,
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(i32::from(
                args.metrics_addr.port()
            )),
            "{what}"
        );
    }
    assert_eq!(
        args.socket,
        Path::new(plexus::agent::proto::DEFAULT_SOCKET),
        "where the plugin asks by default"
    );
    assert_eq!(
        args.cni_conf,
        Path::new("/etc/cni/net.d").join(plexus::install::primary::CONFLIST_NAME)
    );
}

#[test]
fn install_command_lines_parse_and_agree() {
    let d = deploy();
    let ds = the_daemon_set(&d);
    let pod = pod_spec(ds);
    let init = one("init container", pod.init_containers.as_deref().unwrap());
    let main = one("container", &pod.containers);
    assert_eq!(init.command.as_deref(), Some(&["plexus".to_string()][..]));
    let args = expanded_args(init, &d.config_maps);
    assert_eq!(args.first().map(String::as_str), Some("install"));
    assert!(args.iter().any(|a| a == "--once"));
    let argv = std::iter::once("plexus".to_string()).chain(args.iter().cloned());
    let cli = plexus::cli::Cli::try_parse_from(argv)
        .unwrap_or_else(|e| panic!("plexus rejects the init container's args: {e}"));
    assert!(matches!(cli.command, plexus::cli::Cmd::Install(_)));
    // The agent keeps the node installed with the same flags (it always watches), installing
    // the image's plexus, not itself.
    let Some(plexus::agent::Keep::Install(kept)) = agent_args(&d).keep else {
        panic!("the agent does not keep the node installed");
    };
    assert_eq!(
        kept.flags.bin_src.as_deref(),
        Some(Path::new("/usr/bin/plexus"))
    );
    assert!(!kept.flags.once && !kept.flags.check);
    let raw = |c: &k8s_openapi::api::core::v1::Container| -> Vec<String> {
        c.args.iter().flatten().cloned().collect()
    };
    let main_raw = raw(main);
    let after = main_raw
        .iter()
        .position(|a| a == "install")
        .expect("`install` in the agent's args");
    let kept_line: Vec<String> = main_raw[after + 1..]
        .iter()
        .filter(|a| !a.starts_with("--bin-src="))
        .cloned()
        .collect();
    let init_line: Vec<String> = raw(init)
        .into_iter()
        .filter(|a| a != "install" && a != "--once")
        .collect();
    assert_eq!(init_line, kept_line, "init and agent install the same way");
}

#[test]
fn host_paths_are_mounted_where_the_plugin_sees_them() {
    let d = deploy();
    let ds = the_daemon_set(&d);
    let pod = pod_spec(ds);
    let volumes = pod.volumes.as_deref().unwrap();
    let host_paths: BTreeMap<&str, &str> = volumes
        .iter()
        .filter_map(|v| Some((v.name.as_str(), v.host_path.as_ref()?.path.as_str())))
        .collect();
    let wanted = [
        "/etc/cni/net.d",
        "/opt/cni/bin",
        "/var/lib/plexus",
        "/var/lib/cni",
        "/run/plexus",
        "/run/netns",
        "/var/run/netns",
    ];
    let have: BTreeSet<&str> = host_paths.values().copied().collect();
    assert_eq!(have, wanted.into(), "host paths");
    for c in containers(ds) {
        for m in c.volume_mounts.iter().flatten() {
            let exists = volumes.iter().any(|v| v.name == m.name);
            assert!(exists, "{}: mounts undefined volume {}", c.name, m.name);
            // Paths written into the conflist must be valid on the host.
            if let Some(hp) = host_paths.get(m.name.as_str()) {
                assert_eq!(
                    m.mount_path, *hp,
                    "{}: {} mounted elsewhere",
                    c.name, m.name
                );
            }
        }
        let mounted: BTreeSet<&str> = c
            .volume_mounts
            .iter()
            .flatten()
            .map(|m| m.mount_path.as_str())
            .collect();
        for p in ["/etc/cni/net.d", "/opt/cni/bin"] {
            assert!(mounted.contains(p), "{}: {p} not mounted", c.name);
        }
    }

    // The kubeconfig names the token of a projected volume the pod really has, by its path
    // under the kubelet's pod directory.
    let token_arg = pod.containers[0]
        .args
        .iter()
        .flatten()
        .find_map(|a| a.strip_prefix("--token-file="))
        .expect("--token-file");
    let vol = token_arg
        .split("/volumes/kubernetes.io~projected/")
        .nth(1)
        .and_then(|rest| rest.strip_suffix("/token"))
        .expect("token under the kubelet's projected volume dir");
    assert!(token_arg.contains("/pods/$(POD_UID)/"), "{token_arg}");
    let projected = volumes
        .iter()
        .find(|v| v.name == vol)
        .and_then(|v| v.projected.as_ref())
        .unwrap_or_else(|| panic!("no projected volume {vol}"));
    let sources = projected.sources.as_deref().unwrap_or_default();
    assert!(sources.iter().any(|s| {
        s.service_account_token
            .as_ref()
            .is_some_and(|t| t.path == "token")
    }));
    assert!(
        sources.iter().any(|s| s
            .config_map
            .as_ref()
            .is_some_and(|c| c.name == "kube-root-ca.crt"
                && c.items
                    .iter()
                    .flatten()
                    .any(|i| i.key == "ca.crt" && i.path == "ca.crt")))
    );
    // The kubelet only maintains volumes a container mounts.
    assert!(
        pod.containers[0]
            .volume_mounts
            .iter()
            .flatten()
            .any(|m| m.name == vol)
    );
}

#[test]
fn crd_files_are_the_generated_crd() {
    let generated = serde_yaml_ng::to_string(&plexus::k8s::nad::crd()).unwrap();
    for dir in ["crds", "deploy/crd"] {
        let path = root().join(dir).join(CRD_FILE);
        if std::env::var_os(UPDATE_ENV).is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == generated,
            "{} differs from plexus::k8s::nad::crd(); regenerate with \
             `{UPDATE_ENV}=1 cargo test --test deploy`",
            path.display()
        );
        let objects = parse_file(&path);
        let [Object::Crd(crd)] = &objects[..] else {
            panic!("{}: one CRD expected", path.display());
        };
        assert_eq!(**crd, plexus::k8s::nad::crd());
    }
    assert_eq!(
        manifests(&root().join("crds")),
        BTreeSet::from([CRD_FILE.to_string()])
    );
}

/// deploy/uninstall/ runs `plexus uninstall --wait` with the install's node paths, and needs
/// no API access.
#[test]
fn uninstall_daemon_set_runs_plexus_uninstall_on_the_install_paths() {
    let d = deploy_dir("uninstall");
    let ds = the_daemon_set(&d);
    assert!(d.accounts.is_empty() && d.roles.is_empty() && d.bindings.is_empty());
    let pod = pod_spec(ds);
    assert!(pod.service_account_name.is_none());
    let c = one("container", &pod.containers);
    let argv: Vec<String> = c
        .command
        .iter()
        .flatten()
        .chain(c.args.iter().flatten())
        .cloned()
        .collect();
    let cli = plexus::cli::Cli::try_parse_from(&argv)
        .unwrap_or_else(|e| panic!("plexus rejects {argv:?}: {e}"));
    let plexus::cli::Cmd::Uninstall(u) = cli.command else {
        panic!("not `plexus uninstall`: {argv:?}");
    };
    assert!(
        u.wait,
        "--wait: the pod stays until the DaemonSet is deleted"
    );
    let install = deploy();
    let ipod = pod_spec(the_daemon_set(&install));
    let init = one("init container", ipod.init_containers.as_deref().unwrap());
    let Ok(plexus::cli::Cli {
        command: plexus::cli::Cmd::Install(i),
    }) = plexus::cli::Cli::try_parse_from(
        std::iter::once("plexus".to_string()).chain(expanded_args(init, &install.config_maps)),
    )
    else {
        panic!("the install init container's args");
    };
    let (u, i) = (&u.node, &i.flags.node);
    assert_eq!(u.cni_bin_dir, i.cni_bin_dir);
    assert_eq!(u.cni_conf_dir, i.cni_conf_dir);
    assert_eq!(u.cni_dir, i.cni_dir);
    assert_eq!(u.kubeconfig_out, i.kubeconfig_out);
    let volumes = pod.volumes.as_deref().unwrap();
    for m in c.volume_mounts.iter().flatten() {
        let v = volumes.iter().find(|v| v.name == m.name).expect("a volume");
        let hp = v.host_path.as_ref().expect("host paths only");
        assert_eq!(m.mount_path, hp.path, "{} mounted elsewhere", m.name);
    }
}
