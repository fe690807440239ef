//! Tests of `config`.

use super::*;
use serde_json::json;

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("plexus-cfg-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn parse_table() {
    let rows: &[(&str, &str, Result<(), &str>)] = &[
        (
            "minimal",
            r#"{"cniVersion":"1.0.0","name":"p","type":"plexus","clusterNetwork":"x"}"#,
            Ok(()),
        ),
        (
            "multus keys",
            r#"{"cniVersion":"0.3.1","name":"m","type":"plexus","confDir":"/x","cniDir":"/y","binDir":"/z","readinessindicatorfile":"/r","logFile":"/l","logLevel":"debug","logToStderr":false,"capabilities":{"portMappings":true},"unknownKey":1}"#,
            Ok(()),
        ),
        ("not json", "{", Err("not valid JSON")),
        ("not object", "[]", Err("JSON object")),
        (
            "bad version",
            r#"{"cniVersion":"0.9.0"}"#,
            Err("unsupported cniVersion"),
        ),
        (
            "bad timeout",
            r#"{"cniVersion":"1.0.0","delegateTimeoutSeconds":-1}"#,
            Err("delegateTimeoutSeconds"),
        ),
        (
            "bad api timeout",
            r#"{"cniVersion":"1.0.0","apiTimeoutSeconds":0}"#,
            Err("apiTimeoutSeconds"),
        ),
        (
            "namespace lists",
            r#"{"cniVersion":"1.0.0","globalNamespaces":"a, b","systemNamespaces":["kube-system","x"],"namespaceIsolation":true}"#,
            Ok(()),
        ),
        (
            "wrong shape names the key",
            r#"{"cniVersion":"1.0.0","defaultNetworks":"x"}"#,
            Err("defaultNetworks: invalid type"),
        ),
        (
            "wrong type names the key",
            r#"{"cniVersion":"1.0.0","name":"p","alongsideClusterNetwork":"yes"}"#,
            Err("alongsideClusterNetwork: invalid type: string \"yes\", expected a boolean"),
        ),
        (
            "wrong type under an alias names the alias",
            r#"{"cniVersion":"1.0.0","clusterNetworkNamespace":7}"#,
            Err("clusterNetworkNamespace: invalid type"),
        ),
    ];
    for (name, input, want) in rows {
        match (Config::parse(input.as_bytes()), want) {
            (Ok(_), Ok(())) => {}
            (Err(e), Err(frag)) => assert!(e.to_string().contains(frag), "{name}: {e}"),
            (got, _) => panic!("{name}: {:?}", got.map(|c| c.name)),
        }
    }
    let c = Config::parse(rows[1].1.as_bytes()).unwrap();
    assert_eq!(c.conf_dir, PathBuf::from("/x"));
    assert_eq!(c.cni_dir, PathBuf::from("/y"));
    assert!(!c.log_to_stderr);
    assert_eq!(c.readiness_indicator_file, Some(PathBuf::from("/r")));
    assert_eq!(c.multus_namespace, "kube-system");
    assert_eq!(c.system_namespaces, vec!["kube-system".to_string()]);
    let n = Config::parse(
        rows.iter()
            .find(|r| r.0 == "namespace lists")
            .unwrap()
            .1
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(n.global_namespaces, vec!["a".to_string(), "b".to_string()]);
    assert_eq!(
        n.system_namespaces,
        vec!["kube-system".to_string(), "x".to_string()]
    );
    assert!(n.namespace_isolation);
}

#[test]
fn resolve_table() {
    let d = tmpdir("resolve");
    let w = |f: &str, v: Value| std::fs::write(d.join(f), v.to_string()).unwrap();
    w(
        "00-plexus.conflist",
        json!({"cniVersion":"1.0.0","name":"plexus-net","plugins":[{"type":"plexus"}]}),
    );
    w(
        "10-bridge.conflist",
        json!({"cniVersion":"1.0.0","name":"cbr","plugins":[{"type":"bridge"}]}),
    );
    w(
        "20-mv.conf",
        json!({"cniVersion":"0.4.0","name":"mv","type":"macvlan"}),
    );
    w(
        "30-broken.conf",
        json!({"cniVersion":"1.0.0","name":"broken","type":"../x"}),
    );
    std::fs::write(d.join("99-notjson.conf"), "{").unwrap();
    let cfg = Config::parse(
        json!({"cniVersion":"1.0.0","confDir": d, "clusterNetwork": d, "defaultNetworks":["mv"]})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    let nets = cfg.networks().unwrap();
    assert_eq!(nets[0].name, "cbr", "directory skips plexus's own conflist");
    assert_eq!(nets[1].name, "mv");
    let f = d.join("20-mv.conf");
    assert_eq!(cfg.resolve(f.to_str().unwrap()).unwrap().name, "mv");
    let errs: &[(&str, String, &str)] = &[
        ("unknown name", "nope".into(), "no config named"),
        ("relative path", "a/b".into(), "absolute path"),
        (
            "missing file",
            d.join("missing.conf").display().to_string(),
            "no such file",
        ),
        (
            "self",
            d.join("00-plexus.conflist").display().to_string(),
            "recurse",
        ),
        (
            "hostile file",
            d.join("30-broken.conf").display().to_string(),
            "type",
        ),
        (
            "not json file",
            d.join("99-notjson.conf").display().to_string(),
            "not valid JSON",
        ),
    ];
    for (name, r, frag) in errs {
        let e = cfg.resolve(r).expect_err(name);
        assert!(e.to_string().contains(frag), "{name}: {e}");
    }
    std::fs::remove_dir_all(&d).unwrap();
}
