//! Tests of `config`.

use super::*;

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
