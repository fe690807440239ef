//! The plugin ↔ agent wire protocol, both sides: questions and answers on the agent's unix
//! stream socket (one JSON object per line, several per connection), the best-effort report
//! datagrams the plugin sends after each call, and why a plugin falls back to the API server.
//!
//! Every message carries the protocol version `v`. A side that meets a version it does not
//! speak says so (the agent) or falls back (the plugin): plugin and agent differ during a
//! rolling update, and the plugin never depends on the agent.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The protocol version this release speaks.
pub const VERSION: u32 = 1;

/// The agent's default socket (`agentSocket`, `plexus-agent --socket`).
pub const DEFAULT_SOCKET: &str = "/run/plexus/agent.sock";

/// Largest report datagram the plugin sends (longer step lists are cut).
pub const MAX_REPORT: usize = 32 << 10;

/// The report datagram socket that goes with the agent's `socket`: `<socket>.report`.
pub fn report_socket(socket: &Path) -> PathBuf {
    let mut s = socket.as_os_str().to_os_string();
    s.push(".report");
    PathBuf::from(s)
}

/// A question from the plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ask {
    /// Protocol version.
    pub v: u32,
    /// How long the agent may wait for its caches to catch up (sync, a pod just created)
    /// before it answers that it does not know.
    #[serde(default, rename = "waitMs")]
    pub wait_ms: u64,
    /// The question.
    #[serde(flatten)]
    pub question: Question,
}

/// What the plugin asks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Question {
    /// The pod's uid and the annotations plexus reads. With `uid`, only that incarnation.
    Pod {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The UID the runtime gave, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        uid: Option<String>,
    },
    /// These NADs (`[namespace, name]`), all of them or none.
    Nads {
        /// The NADs wanted.
        keys: Vec<(String, String)>,
    },
    /// Send this merge PATCH of the pod's status (and the event, if any) over the agent's
    /// connection.
    Status {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The annotations to set.
        annotations: Map<String, Value>,
        /// An event to post beside it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event: Option<Value>,
    },
    /// The call's outcome, on the call's connection (nobody reads the answer); without one,
    /// the same [`Report`] goes in a datagram to [`report_socket`].
    Report {
        /// The report.
        report: Report,
    },
}

/// The agent's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    /// Protocol version.
    pub v: u32,
    /// The answer.
    #[serde(flatten)]
    pub body: Reply,
}

/// What the agent answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "kebab-case")]
pub enum Reply {
    /// The pod as cached.
    Pod {
        /// Its UID.
        uid: String,
        /// The annotations plexus reads (only those).
        annotations: BTreeMap<String, String>,
    },
    /// Every NAD asked for, as the API would return what plexus reads of it.
    Nads {
        /// The NAD objects.
        nads: Vec<Value>,
    },
    /// The PATCH was sent; `found` is false when the pod is gone (404).
    Patched {
        /// Whether the pod existed.
        found: bool,
    },
    /// A report was counted.
    Noted,
    /// The agent cannot answer from its caches.
    Unknown {
        /// Why.
        reason: Fallback,
    },
    /// The question could not be answered (an API error, a bad or unknown question).
    Error {
        /// What went wrong.
        message: String,
    },
}

/// Why the plugin did without the agent for a call: each leads to exactly what the plugin does
/// without an agent (it asks the API server itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fallback {
    /// No socket at `agentSocket` (the agent is not running, or was never installed).
    NoSocket,
    /// The socket refused the connection (the agent is gone or overloaded).
    Refused,
    /// No answer within the deadline.
    Deadline,
    /// The agent's caches have not synced with the API server yet.
    NotSynced,
    /// The pod or a NAD is not in the agent's cache (yet).
    NotCached,
    /// The cached pod is another incarnation (another UID).
    UidMismatch,
    /// Plugin and agent speak different protocol versions (a rolling update).
    Version,
    /// The agent answered with an error or nonsense.
    AgentError,
}

impl Fallback {
    /// Every reason, for metrics that show all of them.
    pub const ALL: [Fallback; 8] = [
        Fallback::NoSocket,
        Fallback::Refused,
        Fallback::Deadline,
        Fallback::NotSynced,
        Fallback::NotCached,
        Fallback::UidMismatch,
        Fallback::Version,
        Fallback::AgentError,
    ];

    /// The label value: `no-socket`, `refused`, `deadline`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Fallback::NoSocket => "no-socket",
            Fallback::Refused => "refused",
            Fallback::Deadline => "deadline",
            Fallback::NotSynced => "not-synced",
            Fallback::NotCached => "not-cached",
            Fallback::UidMismatch => "uid-mismatch",
            Fallback::Version => "version",
            Fallback::AgentError => "agent-error",
        }
    }
}

/// One CNI call's outcome, sent by the plugin after the call (best effort).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Protocol version.
    pub v: u32,
    /// `ADD`, `DEL`, `CHECK`, `GC`, `STATUS`.
    pub verb: String,
    /// The CNI error code; `None` on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u32>,
    /// How long the call took.
    pub seconds: f64,
    /// An ADD that failed and rolled back: `clean` or `incomplete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<String>,
    /// Why the plugin did without the agent, once per time it did.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallbacks: Vec<Fallback>,
    /// Each delegate call of an attachment, in the order they ended.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepReport>,
}

/// One attachment's delegate call within a CNI call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    /// `ADD` or `DEL` (a rollback's DELs are DELs).
    pub verb: String,
    /// The network: NAD `namespace/name`, or the cluster network's name.
    pub network: String,
    /// The plugin types of the attachment (`macvlan`, `bridge,portmap`...).
    pub plugin: String,
    /// How long it ran.
    pub seconds: f64,
    /// True when it succeeded.
    pub ok: bool,
}

impl Report {
    /// The datagram: JSON, with the step list cut so it fits in [`MAX_REPORT`].
    pub fn encode(&self) -> Vec<u8> {
        let mut r = self.clone();
        loop {
            let bytes = serde_json::to_vec(&r).unwrap_or_default();
            if bytes.len() <= MAX_REPORT || r.steps.is_empty() {
                return bytes;
            }
            r.steps.truncate(r.steps.len() / 2);
        }
    }
}

/// Reads a message's version without reading the rest (which may be of another version).
///
/// # Errors
/// When the bytes are not a JSON object with a numeric `v`.
pub fn version_of(bytes: &[u8]) -> Result<u32, serde_json::Error> {
    #[derive(Deserialize)]
    struct Probe {
        v: u32,
    }
    serde_json::from_slice::<Probe>(bytes).map(|p| p.v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wire_table() {
        let rows: Vec<(&str, Value, Value)> = vec![
            (
                "pod question",
                serde_json::to_value(Ask {
                    v: 1,
                    wait_ms: 40,
                    question: Question::Pod {
                        namespace: "ns".into(),
                        name: "p".into(),
                        uid: Some("u".into()),
                    },
                })
                .unwrap(),
                json!({"v":1,"waitMs":40,"op":"pod","namespace":"ns","name":"p","uid":"u"}),
            ),
            (
                "nads question",
                serde_json::to_value(Ask {
                    v: 1,
                    wait_ms: 0,
                    question: Question::Nads {
                        keys: vec![("ns".into(), "n".into())],
                    },
                })
                .unwrap(),
                json!({"v":1,"waitMs":0,"op":"nads","keys":[["ns","n"]]}),
            ),
            (
                "unknown answer",
                serde_json::to_value(Answer {
                    v: 1,
                    body: Reply::Unknown {
                        reason: Fallback::NotSynced,
                    },
                })
                .unwrap(),
                json!({"v":1,"answer":"unknown","reason":"not-synced"}),
            ),
        ];
        for (name, got, want) in rows {
            assert_eq!(got, want, "{name}");
        }
        for f in Fallback::ALL {
            assert_eq!(serde_json::to_value(f).unwrap(), json!(f.as_str()));
        }
    }

    #[test]
    fn reports_fit_in_a_datagram() {
        let step = StepReport {
            verb: "ADD".into(),
            network: "n".repeat(200),
            plugin: "macvlan".into(),
            seconds: 0.001,
            ok: true,
        };
        let r = Report {
            v: VERSION,
            verb: "ADD".into(),
            steps: vec![step; 1000],
            ..Report::default()
        };
        let bytes = r.encode();
        assert!(bytes.len() <= MAX_REPORT, "{}", bytes.len());
        let back: Report = serde_json::from_slice(&bytes).unwrap();
        assert!(!back.steps.is_empty() && back.steps.len() < 1000);
    }

    #[test]
    fn version_is_read_alone() {
        assert_eq!(version_of(br#"{"v":7,"op":"future"}"#).ok(), Some(7));
        assert!(version_of(b"nonsense").is_err());
        assert_eq!(
            report_socket(Path::new("/run/plexus/agent.sock")),
            PathBuf::from("/run/plexus/agent.sock.report")
        );
    }
}
