//! The events hot-plug posts on a pod: `AddedInterface` and `RemovedInterface` for what
//! changed, `InterfaceAddRejected` (with the reason) for what the annotation asks and cannot be
//! had, `InterfaceChangeNotApplied` for a running attachment whose parameters changed, and
//! `InterfaceRemoveFailed`; warnings are remembered per pod so an annotation that stays
//! invalid gets one event per distinct value and reason, not one per pass.

use std::collections::HashSet;

use serde_json::Value;

use crate::agent::cache::Key;
use crate::k8s::event::on_pod;
use crate::k8s::pod::PodRef;
use crate::k8s::status::NetworkStatus;
use crate::text::truncate;

/// Most warnings remembered per pod; past that the memory starts again (a pod cycling through
/// that many invalid values gets them again, bounded).
const REMEMBERED: usize = 64;

/// `Normal` or `Warning`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Something changed as asked.
    Normal,
    /// Something asked could not be done.
    Warning,
}

/// One event about one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodEvent {
    /// The reason (`AddedInterface`...).
    pub reason: &'static str,
    /// Normal or warning.
    pub kind: Kind,
    /// The message.
    pub message: String,
}

impl PodEvent {
    /// A normal event.
    pub fn normal(reason: &'static str, message: String) -> PodEvent {
        PodEvent {
            reason,
            kind: Kind::Normal,
            message,
        }
    }

    /// A warning.
    pub fn warning(reason: &'static str, message: String) -> PodEvent {
        PodEvent {
            reason,
            kind: Kind::Warning,
            message,
        }
    }

    /// The core/v1 Event object on pod `key` (UID `uid`), from the agent on `node`.
    pub fn to_object(&self, key: &Key, uid: &str, node: &str) -> Value {
        let pod = PodRef {
            namespace: key.0.clone(),
            name: key.1.clone(),
            uid: Some(uid.to_string()),
        };
        let warning = self.kind == Kind::Warning;
        on_pod(
            &pod,
            self.reason,
            warning,
            &self.message,
            "plexus-agent",
            Some(node),
        )
    }
}

/// `AddedInterface`: `ifname [ips] from network`.
pub fn added(network: &str, ifname: &str, entries: &[NetworkStatus]) -> PodEvent {
    let ips = entries
        .iter()
        .find(|e| e.name == network && e.interface.as_deref() == Some(ifname))
        .map(|e| e.ips.join(","))
        .unwrap_or_default();
    PodEvent::normal(
        "AddedInterface",
        format!("Hot-plug: added interface {ifname} [{ips}] from {network}"),
    )
}

/// `RemovedInterface`.
pub fn removed(network: &str, ifname: &str) -> PodEvent {
    PodEvent::normal(
        "RemovedInterface",
        format!("Hot-plug: removed interface {ifname} of {network}"),
    )
}

/// Longest annotation value or DEL failure quoted in a message (an event's message is
/// bounded; plexus's own errors already shorten what they quote).
const QUOTED: usize = 400;

/// `InterfaceAddRejected`, for the annotation value `value`.
pub fn rejected(value: &str, why: &str) -> PodEvent {
    PodEvent::warning(
        "InterfaceAddRejected",
        format!(
            "Hot-plug of networks {:?} not done: {why}",
            truncate(value, QUOTED)
        ),
    )
}

/// The reason of [`not_applied`]'s event.
pub const NOT_APPLIED: &str = "InterfaceChangeNotApplied";

/// `InterfaceChangeNotApplied`: a kept attachment's parameters changed.
pub fn not_applied(network: &str, ifname: &str) -> PodEvent {
    PodEvent::warning(
        NOT_APPLIED,
        format!(
            "Interface {ifname} of {network}: its parameters changed (ips, mac, or the \
             NetworkAttachmentDefinition's config); a running interface is not changed: restart \
             the pod, or remove the network from the annotation and add it again"
        ),
    )
}

/// `InterfaceRemoveFailed`: a DEL failed; the next pass tries again.
pub fn remove_failed(why: &str) -> PodEvent {
    PodEvent::warning(
        "InterfaceRemoveFailed",
        format!(
            "Hot-plug could not remove an interface (retried): {}",
            truncate(why, QUOTED)
        ),
    )
}

/// The warnings already posted for one pod, by (reason, annotation value, what).
#[derive(Debug, Default)]
pub struct Posted(HashSet<(&'static str, String, String)>);

impl Posted {
    /// Whether `ev` for annotation `value` about `what` is new (and remembers it).
    pub fn first(&mut self, ev: &PodEvent, value: &str, what: &str) -> bool {
        if ev.kind == Kind::Normal {
            return true;
        }
        if self.0.len() >= REMEMBERED {
            self.0.clear();
        }
        self.0
            .insert((ev.reason, value.to_string(), what.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_warning_is_posted_once_per_value_and_reason() {
        let mut p = Posted::default();
        let bad = rejected("x@", "invalid");
        assert!(p.first(&bad, "x@", ""));
        assert!(!p.first(&bad, "x@", ""), "the same value again");
        assert!(p.first(&bad, "y@", ""), "another value");
        let na = not_applied("ns/a", "net1");
        assert!(p.first(&na, "x@", "ns/a@net1"), "another reason");
        let ok = removed("ns/a", "net1");
        assert!(
            p.first(&ok, "x@", "") && p.first(&ok, "x@", ""),
            "normal ones always"
        );
    }

    #[test]
    fn event_shape() {
        let st = NetworkStatus {
            name: "ns/a".into(),
            interface: Some("net2".into()),
            ips: vec!["10.0.0.2".into()],
            ..Default::default()
        };
        let ev = added("ns/a", "net2", &[st]);
        let o = ev.to_object(&("ns".into(), "p".into()), "u1", "node-a");
        assert_eq!(o["reason"], "AddedInterface");
        assert_eq!(o["type"], "Normal");
        assert_eq!(o["involvedObject"]["uid"], "u1");
        assert_eq!(
            o["message"],
            "Hot-plug: added interface net2 [10.0.0.2] from ns/a"
        );
        assert_eq!(
            rejected("b", "why").to_object(&("n".into(), "q".into()), "", "x")["type"],
            "Warning"
        );
    }
}
