//! Group 4: hostile or broken input gets the right CNI error code before any delegate process
//! starts, and leaves nothing behind. A canary plugin (first network) and canaries at every path
//! a traversal could reach would record any process start.

mod common;

use common::conf::{self, plugin_conf};
use common::{TestEnv, write_script};
use serde_json::{Value, json};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// The canary logs any invocation into `canary.touched`.
fn plant_canaries(env: &TestEnv) {
    let touched = env.dir.join("canary.touched");
    let body = format!(
        "echo \"$0 $CNI_COMMAND\" >> '{}'\ncat > /dev/null\necho '{{\"cniVersion\":\"1.0.0\"}}'",
        touched.display()
    );
    let bin = env.bin_dir();
    for p in [
        "px-canary",
        "bin/true",
        "a/b",
        "x/y/z/a/b",
        "x/y/z/px-canary",
    ] {
        let path = bin.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        write_script(&path, &body);
    }
}

/// plexus config: binDir deep in the test's bin dir so `../../../bin/true` reaches a canary.
fn base(env: &TestEnv) -> Value {
    let mut cfg = conf::plexus_base(env, "1.0.0");
    cfg["binDir"] = json!(env.bin_dir().join("x/y/z"));
    cfg
}

/// The canary first, `evil` second.
fn with_second(env: &TestEnv, evil: Value) -> Value {
    let mut cfg = base(env);
    cfg["delegates"] = json!([plugin_conf("canary-a", "px-canary"), evil]);
    cfg
}

struct Row {
    name: &'static str,
    vars: Vec<(String, String)>,
    stdin: Vec<u8>,
    /// Expected CNI error code; None: any code, but a clear size message.
    code: Option<u64>,
    /// Text the error (msg + details) must contain.
    mentions: &'static str,
}

#[allow(clippy::too_many_lines)] // one table
fn rows(env: &TestEnv, pod: &str) -> Vec<Row> {
    let id = format!("c{}", env.uid);
    let std_vars = env.vars("ADD", &id, Some(pod));
    let canary_only = {
        let mut cfg = base(env);
        cfg["delegates"] = json!([plugin_conf("canary-a", "px-canary")]);
        cfg
    };
    let stdin = |v: &Value| v.to_string().into_bytes();
    let evil_type = |name: &'static str, ty: &str| Row {
        name,
        vars: std_vars.clone(),
        stdin: stdin(&with_second(env, plugin_conf("evil-b", ty))),
        code: Some(7),
        mentions: "",
    };
    let without = |name: &'static str, var: &'static str| Row {
        name,
        vars: std_vars.iter().filter(|(k, _)| k != var).cloned().collect(),
        stdin: stdin(&canary_only),
        code: Some(4),
        mentions: var,
    };
    let with_var = |name: &'static str, var: &'static str, val: &str| Row {
        name,
        vars: std_vars
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    if k == var { val.to_string() } else { v.clone() },
                )
            })
            .collect(),
        stdin: stdin(&canary_only),
        code: Some(4),
        mentions: var,
    };
    let evil_list = {
        let mut list = conf::cluster_conflist(env);
        list["plugins"] = json!([{ "type": "px-canary" }, { "type": "/bin/sh" }]);
        let mut cfg = base(env);
        cfg["clusterNetwork"] = json!(conf::write_conf(env, "10-evil.conflist", &list));
        cfg
    };
    let mut unknown_version = canary_only.clone();
    unknown_version["cniVersion"] = json!("9.9.9");
    let mut huge = canary_only.clone();
    huge["padding"] = json!("x".repeat(10 * 1024 * 1024));

    vec![
        evil_type("type ../../../bin/true", "../../../bin/true"),
        evil_type("type /bin/sh", "/bin/sh"),
        evil_type("type a/b", "a/b"),
        evil_type("type ..", ".."),
        evil_type("type .", "."),
        evil_type("type empty", ""),
        evil_type("type with backslash", "a\\b"),
        evil_type("type with NUL", "px-canary\u{0}"),
        Row {
            name: "type missing",
            vars: std_vars.clone(),
            stdin: stdin(&with_second(
                env,
                json!({"cniVersion": "1.0.0", "name": "evil-b"}),
            )),
            code: Some(7),
            mentions: "",
        },
        Row {
            name: "ipam.type ../a/b",
            vars: std_vars.clone(),
            stdin: stdin(&with_second(
                env,
                json!({"cniVersion": "1.0.0", "name": "evil-b", "type": "px-canary",
                       "ipam": {"type": "../a/b"}}),
            )),
            code: Some(7),
            mentions: "",
        },
        Row {
            name: "type /bin/sh second in cluster conflist",
            vars: std_vars.clone(),
            stdin: stdin(&evil_list),
            code: Some(7),
            mentions: "",
        },
        // A runtime's call without CNI_COMMAND is still answered with a CNI error object.
        without("missing CNI_COMMAND", "CNI_COMMAND"),
        without("missing CNI_CONTAINERID", "CNI_CONTAINERID"),
        with_var("CNI_NETNS a regular file", "CNI_NETNS", "/etc/hostname"),
        with_var("CNI_NETNS a directory", "CNI_NETNS", "/run"),
        with_var(
            "CNI_NETNS missing",
            "CNI_NETNS",
            "/run/netns/plexus-no-such-netns",
        ),
        without("missing CNI_NETNS", "CNI_NETNS"),
        without("missing CNI_IFNAME", "CNI_IFNAME"),
        with_var("invalid CNI_CONTAINERID", "CNI_CONTAINERID", "../../etc"),
        with_var("CNI_IFNAME with slash", "CNI_IFNAME", "a/b"),
        with_var("CNI_IFNAME too long", "CNI_IFNAME", "abcdefghijklmnop"),
        with_var("unknown CNI_COMMAND", "CNI_COMMAND", "FROB"),
        Row {
            name: "stdin not JSON",
            vars: std_vars.clone(),
            stdin: b"cniVersion: 1.0.0 {".to_vec(),
            code: Some(6),
            mentions: "",
        },
        Row {
            name: "stdin empty",
            vars: std_vars.clone(),
            stdin: Vec::new(),
            code: Some(6),
            mentions: "",
        },
        Row {
            name: "unknown cniVersion",
            vars: std_vars.clone(),
            stdin: stdin(&unknown_version),
            code: Some(1),
            mentions: "9.9.9",
        },
        Row {
            name: "10 MB stdin",
            vars: std_vars.clone(),
            stdin: stdin(&huge),
            code: None,
            mentions: "",
        },
    ]
}

#[test]
fn hostile_input_is_rejected_before_any_process_starts() {
    let env = TestEnv::new("hstl", 41);
    let pod = env.add_pod();
    plant_canaries(&env);
    let touched = env.dir.join("canary.touched");
    let mut failures = Vec::new();
    for row in rows(&env, &pod) {
        let res = catch_unwind(AssertUnwindSafe(|| {
            let out = env.call(&common::plexus_bin(), &row.vars, &row.stdin);
            let (code, msg) = out.err();
            match row.code {
                Some(c) => assert_eq!(code, c, "code (msg: {msg})"),
                None => {
                    let m = msg.to_lowercase();
                    assert!(
                        ["limit", "large", "size", "mib", "bytes"]
                            .iter()
                            .any(|w| m.contains(w)),
                        "an oversized stdin needs a clear error, got code {code}: {msg}"
                    );
                }
            }
            assert!(
                msg.contains(row.mentions),
                "error must mention {:?}: {msg}",
                row.mentions
            );
            let canary = std::fs::read_to_string(&touched).unwrap_or_default();
            assert!(
                canary.is_empty(),
                "a delegate process was started: {canary}"
            );
            assert!(
                env.journal_files().is_empty(),
                "journal written for rejected input: {:?}",
                env.journal_files()
            );
            env.assert_nothing_left();
        }));
        if let Err(e) = res {
            let why = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("[{}] {why}", row.name));
            let _ = std::fs::remove_file(&touched);
        }
    }
    assert!(
        failures.is_empty(),
        "{} hostile-input rows failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn version_lists_runtime_versions() {
    let env = TestEnv::new("hver", 42);
    let vars = vec![
        ("CNI_COMMAND".to_string(), "VERSION".to_string()),
        ("CNI_PATH".to_string(), env.cni_path()),
    ];
    let v = env
        .call(&common::plexus_bin(), &vars, br#"{"cniVersion":"1.1.0"}"#)
        .ok();
    assert_eq!(v["cniVersion"], "1.1.0", "{v}");
    let supported: Vec<&str> = v["supportedVersions"]
        .as_array()
        .unwrap_or_else(|| panic!("no supportedVersions: {v}"))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for want in ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] {
        assert!(
            supported.contains(&want),
            "{want} missing from {supported:?}"
        );
    }
}

/// The canary really records a start: the same setup with valid input runs it.
#[test]
fn canary_records_a_valid_add() {
    let env = TestEnv::new("hcan", 43);
    let pod = env.add_pod();
    plant_canaries(&env);
    let mut cfg = base(&env);
    cfg["delegates"] = json!([plugin_conf("canary-a", "px-canary")]);
    let id = format!("c{}", env.uid);
    env.plexus("ADD", &id, Some(&pod), &cfg).ok();
    let canary = std::fs::read_to_string(env.dir.join("canary.touched")).unwrap_or_default();
    assert!(canary.contains("px-canary ADD"), "canary log: {canary:?}");
    env.plexus("DEL", &id, Some(&pod), &cfg).ok();
    env.assert_nothing_left();
}
