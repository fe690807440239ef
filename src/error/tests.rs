//! The one error → CNI code table, row by row: every failure class the README lists.

use super::*;
use crate::cni::env::Command;
use crate::resolve::NadProblem;

fn api_status(code: u16) -> ApiError {
    ApiError::Status {
        what: "PATCH pod ns/p status".into(),
        code,
        message: "x".into(),
    }
}

fn unavailable() -> ApiError {
    ApiError::Unavailable {
        what: "GET pod ns/p".into(),
        attempts: 3,
        elapsed_ms: 30_000,
        last: "connection refused".into(),
    }
}

fn delegate(source: DelegateError) -> Error {
    Error::Delegate(Box::new(DelegateFailure {
        verb: Command::Add,
        network: "ns/n".into(),
        ifname: "net1".into(),
        plugin: "macvlan".into(),
        source,
    }))
}

fn rolled_back(cause: Error, failed: bool) -> Error {
    let failures = if failed {
        vec![DelegateFailure {
            verb: Command::Del,
            network: "cluster".into(),
            ifname: "eth0".into(),
            plugin: "bridge".into(),
            source: DelegateError::Timeout { secs: 60.0 },
        }]
    } else {
        Vec::new()
    };
    Error::RolledBack {
        cause: Box::new(cause),
        rollback: Box::new(Rollback {
            cleaned: vec!["eth0".into()],
            failures,
            journal: None,
        }),
    }
}

#[test]
#[allow(clippy::too_many_lines)] // one table
fn code_table() {
    let rows: Vec<(&str, Error, u32)> = vec![
        (
            "env: missing variable",
            EnvError::Missing(vec!["CNI_NETNS"]).into(),
            4,
        ),
        (
            "env: CNI_NETNS not a namespace",
            EnvError::Invalid {
                var: "CNI_NETNS",
                reason: "not a namespace".into(),
            }
            .into(),
            4,
        ),
        ("stdin too large", StdinError::TooLarge.into(), 7),
        (
            "config: not JSON",
            ConfigError::Decode("x".into()).into(),
            6,
        ),
        (
            "config: version",
            ConfigError::Version("9.9.9".into()).into(),
            1,
        ),
        (
            "config: bad key",
            ConfigError::Invalid("x".into()).into(),
            7,
        ),
        (
            "resolve: NAD missing",
            ResolveError::Nad {
                namespace: "ns".into(),
                name: "n".into(),
                reason: Box::new(NadProblem::NotFound),
            }
            .into(),
            7,
        ),
        (
            "resolve: pod not found",
            ResolveError::PodNotFound(crate::k8s::pod::PodRef {
                namespace: "ns".into(),
                name: "p".into(),
                uid: None,
            })
            .into(),
            11,
        ),
        (
            "resolve: API unavailable",
            ResolveError::Api(unavailable()).into(),
            11,
        ),
        (
            "resolve: API 500",
            ResolveError::Api(api_status(500)).into(),
            11,
        ),
        (
            "resolve: API 403",
            ResolveError::Api(api_status(403)).into(),
            5,
        ),
        (
            "journal: I/O",
            JournalError::Io {
                path: "/x".into(),
                op: "append",
                source: std::io::Error::other("disk full"),
            }
            .into(),
            5,
        ),
        (
            "journal: invalid id",
            JournalError::InvalidId("../x".into()).into(),
            4,
        ),
        (
            "delegate: its own code",
            delegate(DelegateError::Plugin {
                code: 999,
                msg: "x".into(),
                details: String::new(),
            }),
            999,
        ),
        (
            "delegate: timeout",
            delegate(DelegateError::Timeout { secs: 1.0 }),
            100,
        ),
        (
            "rolled back cleanly: the cause's code",
            rolled_back(delegate(DelegateError::Timeout { secs: 1.0 }), false),
            100,
        ),
        (
            "rollback incomplete: the cause's code",
            rolled_back(delegate(DelegateError::Timeout { secs: 1.0 }), true),
            100,
        ),
        (
            "status write: 409",
            rolled_back(Error::StatusWrite(api_status(409)), false),
            11,
        ),
        (
            "status write: 500",
            rolled_back(Error::StatusWrite(api_status(500)), false),
            11,
        ),
        (
            "status write: unavailable",
            rolled_back(Error::StatusWrite(unavailable()), false),
            11,
        ),
        ("already attached", Error::AlreadyAttached("c".into()), 4),
        ("unknown container", Error::UnknownContainer("c".into()), 3),
        (
            "result conversion",
            Error::Result {
                network: "n".into(),
                source: crate::cni::result::ResultError::Lossy("x".into()),
            },
            1,
        ),
        (
            "not ready",
            Error::NotReady(NotReady::ReadinessFile("/run/x".into())),
            50,
        ),
        ("GC input", GcInputError::Missing.into(), 7),
    ];
    for (name, err, want) in rows {
        assert_eq!(err.code(), want, "{name}: {err}");
        let obj = err.to_object("1.0.0", Some("pod ns/p"));
        assert_eq!(obj.code, want, "{name}");
        assert!(
            obj.msg.starts_with("plexus: pod ns/p: "),
            "{name}: {}",
            obj.msg
        );
    }
}

#[test]
fn rollback_outcome_is_in_the_message() {
    let clean = rolled_back(delegate(DelegateError::Timeout { secs: 1.0 }), false);
    assert!(
        clean
            .to_string()
            .contains("rolled back cleanly (1 attachment(s) removed: eth0)"),
        "{clean}"
    );
    let kept = rolled_back(delegate(DelegateError::Timeout { secs: 1.0 }), true);
    let obj = kept.to_object("1.0.0", None);
    assert!(
        obj.msg
            .contains("ROLLBACK INCOMPLETE, journal kept for DEL"),
        "{}",
        obj.msg
    );
    assert!(obj.details.contains("rollback:"), "{}", obj.details);
}
