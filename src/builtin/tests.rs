use super::*;
use std::sync::Mutex;

/// Records calls and answers with a fixed output.
struct Recorder {
    calls: Mutex<Vec<String>>,
}

impl Executor for Recorder {
    fn exec(
        &self,
        plugin: &str,
        inv: &Invocation<'_>,
        _stdin: &[u8],
    ) -> Result<Vec<u8>, DelegateError> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("{plugin} {}", inv.command.as_str()));
        Ok(b"{}".to_vec())
    }
}

fn inv(command: Command) -> Invocation<'static> {
    Invocation {
        command,
        container_id: "c1",
        netns: "",
        ifname: "net1",
        args: "",
        cancel: None,
    }
}

#[test]
fn routing_table() {
    let rows: &[(&str, bool, &str, &str, Command, &[&str])] = &[
        (
            "disabled: macvlan goes to the binary",
            false,
            "macvlan",
            r#"{"cniVersion":"1.0.0","type":"macvlan"}"#,
            Command::Del,
            &["macvlan DEL"],
        ),
        (
            "unknown field: falls back to the binary",
            true,
            "macvlan",
            r#"{"cniVersion":"1.0.0","type":"macvlan","futureField":1}"#,
            Command::Del,
            &["macvlan DEL"],
        ),
        (
            "other plugin: the binary",
            true,
            "bridge",
            r#"{"cniVersion":"1.0.0","type":"bridge"}"#,
            Command::Add,
            &["bridge ADD"],
        ),
        (
            "built-in DEL without netns: only IPAM DEL is exec'd",
            true,
            "macvlan",
            r#"{"cniVersion":"1.0.0","type":"macvlan","ipam":{"type":"host-local"}}"#,
            Command::Del,
            &["host-local DEL"],
        ),
        (
            "built-in DEL without IPAM or netns: nothing exec'd",
            true,
            "vlan",
            r#"{"cniVersion":"1.0.0","type":"vlan","master":"x","vlanId":3}"#,
            Command::Del,
            &[],
        ),
        (
            "GC goes to the binary",
            true,
            "ipvlan",
            r#"{"cniVersion":"1.1.0","type":"ipvlan"}"#,
            Command::Gc,
            &["ipvlan GC"],
        ),
    ];
    for (name, enabled, plugin, stdin, command, want) in rows {
        let ex = BuiltinExecutor::new(
            Recorder {
                calls: Mutex::new(Vec::new()),
            },
            *enabled,
        );
        ex.exec(plugin, &inv(*command), stdin.as_bytes())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(ex.inner().calls.lock().unwrap().as_slice(), *want, "{name}");
    }
}

#[test]
fn standalone_refuses_unknown_fields_with_code_2() {
    let rec = Recorder {
        calls: Mutex::new(Vec::new()),
    };
    let err = standalone(
        Plugin::Macvlan,
        &inv(Command::Add),
        br#"{"cniVersion":"1.0.0","type":"macvlan","bogus":true}"#,
        &rec,
    )
    .unwrap_err();
    assert_eq!(err.code(), 2, "{err}");
    assert!(err.to_string().contains("bogus"), "{err}");
}

#[test]
fn invalid_config_is_an_error_not_a_fallback() {
    let ex = BuiltinExecutor::new(
        Recorder {
            calls: Mutex::new(Vec::new()),
        },
        true,
    );
    let err = ex
        .exec(
            "macvlan",
            &inv(Command::Add),
            br#"{"type":"macvlan","mtu":"big"}"#,
        )
        .unwrap_err();
    assert_eq!(err.code(), INTERNAL);
    assert!(ex.inner().calls.lock().unwrap().is_empty());
}

#[test]
fn standalone_dels_what_it_would_not_add() {
    // ADD of a config the built-in does not take is refused (code 2); its DEL still releases the
    // IPAM and the interface, so a runtime's DEL retries end.
    let rec = Recorder {
        calls: Mutex::new(Vec::new()),
    };
    let stdin = br#"{"cniVersion":"1.0.0","type":"vlan","vlanId":3,"linkInContainer":true,
        "ipam":{"type":"host-local"}}"#;
    standalone(Plugin::Vlan, &inv(Command::Del), stdin, &rec).unwrap();
    assert_eq!(rec.calls.lock().unwrap().as_slice(), ["host-local DEL"]);
}

/// A failing executor (the reference binary's DEL when its master is gone).
struct Failing;

impl Executor for Failing {
    fn exec(
        &self,
        plugin: &str,
        inv: &Invocation<'_>,
        _stdin: &[u8],
    ) -> Result<Vec<u8>, DelegateError> {
        match (plugin, inv.command) {
            ("host-local", _) => Ok(Vec::new()),
            _ => Err(internal("failed to lookup master \"m0\": Link not found")),
        }
    }
}

#[test]
fn a_failing_binary_del_falls_back_to_the_built_in_del() {
    for plugin in ["macvlan", "ipvlan", "vlan"] {
        let ex = BuiltinExecutor::new(Failing, false);
        let stdin = format!(
            r#"{{"cniVersion":"1.0.0","type":"{plugin}","master":"m0","ipam":{{"type":"host-local"}}}}"#
        );
        ex.exec(plugin, &inv(Command::Del), stdin.as_bytes())
            .unwrap_or_else(|e| panic!("{plugin}: {e}"));
        // ADD is never replaced: its failure stands.
        assert!(
            ex.exec(plugin, &inv(Command::Add), stdin.as_bytes())
                .is_err()
        );
    }
    // Another plugin's failure stands.
    let ex = BuiltinExecutor::new(Failing, false);
    assert!(ex.exec("bridge", &inv(Command::Del), b"{}").is_err());
}
