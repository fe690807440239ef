//! What the health rounds write: the pod condition for a pod's attachments (`True` when all
//! are healthy; `False` with the first problem's reason and every problem in the message), the
//! state last written, and the events of each attachment's transition.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::look::Attachment;
use crate::agent::cache::PodCondition;
use crate::health::Reason;

/// The condition type written unless `--health-condition-type` says otherwise.
pub const DEFAULT_TYPE: &str = "plexus.io/networks-ready";

/// The condition's `reason` when every attachment is healthy.
pub const HEALTHY: &str = "NetworksReady";

/// A pod condition as the agent writes it (its time aside).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// `True` or `False`.
    pub healthy: bool,
    /// [`HEALTHY`] or a [`Reason`].
    pub reason: String,
    /// The attachments, or what is wrong with them.
    pub message: String,
}

/// What the agent last wrote for a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The condition.
    pub condition: Condition,
    /// Its `lastTransitionTime`: when `healthy` last changed.
    pub since: String,
    /// Each attachment's reason then (`None`: healthy), by (network, interface).
    pub problems: BTreeMap<(String, String), Option<Reason>>,
}

/// The condition a pod with these attachments has.
pub fn of(attachments: &[Attachment]) -> Condition {
    let broken: Vec<(&Attachment, Reason, &str)> = attachments
        .iter()
        .filter_map(|a| a.problem.as_ref().map(|(r, m)| (a, *r, m.as_str())))
        .collect();
    match broken.first() {
        None => Condition {
            healthy: true,
            reason: HEALTHY.into(),
            message: format!(
                "every attachment is healthy: {}",
                attachments
                    .iter()
                    .map(|a| format!("{} ({})", a.ifname, a.network))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
        Some((_, reason, _)) => Condition {
            healthy: false,
            reason: reason.as_str().into(),
            message: broken
                .iter()
                .map(|(a, r, m)| {
                    format!(
                        "network {} interface {}: {}: {m}",
                        a.network,
                        a.ifname,
                        r.as_str()
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
        },
    }
}

/// The condition as the pod's `status.conditions` holds it.
pub fn to_value(kind: &str, c: &Condition, since: &str) -> Value {
    json!({
        "type": kind,
        "status": if c.healthy { "True" } else { "False" },
        "reason": c.reason,
        "message": c.message,
        "lastTransitionTime": since,
    })
}

/// What the agent has written once `now` is: `since` moves only when `healthy` changes.
pub fn next(prev: Option<&Written>, attachments: &[Attachment], now: &str) -> Written {
    let condition = of(attachments);
    let since = match prev {
        Some(p) if p.condition.healthy == condition.healthy => p.since.clone(),
        _ => now.to_string(),
    };
    Written {
        condition,
        since,
        problems: attachments
            .iter()
            .map(|a| {
                (
                    (a.network.clone(), a.ifname.clone()),
                    a.problem.as_ref().map(|(r, _)| *r),
                )
            })
            .collect(),
    }
}

/// The events of the attachments' transitions since `prev` (the first look: only the broken
/// ones): `(healthy, message)`, the message naming the network, interface and reason.
pub fn transitions(prev: Option<&Written>, attachments: &[Attachment]) -> Vec<(bool, String)> {
    attachments
        .iter()
        .filter_map(|a| {
            let before = prev
                .and_then(|p| p.problems.get(&(a.network.clone(), a.ifname.clone())))
                .copied()
                .flatten();
            match (&a.problem, before) {
                (Some((r, m)), b) if b != Some(*r) => Some((
                    false,
                    format!(
                        "network {} interface {}: {}: {m}",
                        a.network,
                        a.ifname,
                        r.as_str()
                    ),
                )),
                (None, Some(was)) => Some((
                    true,
                    format!(
                        "network {} interface {}: healthy again (was {})",
                        a.network,
                        a.ifname,
                        was.as_str()
                    ),
                )),
                _ => None,
            }
        })
        .collect()
}

/// What an earlier agent (before a restart) wrote, read back from the pod: when the pod
/// already carries condition `kind` saying exactly what `next` says, `next` with the pod's
/// transition time, so neither the condition nor its events are written again.
pub fn already_on_pod(kind: &str, on_pod: &[PodCondition], next: &Written) -> Option<Written> {
    let c = on_pod.iter().find(|c| c.kind == kind)?;
    let status = if next.condition.healthy {
        "True"
    } else {
        "False"
    };
    let same = c.status == status
        && c.reason.as_deref() == Some(next.condition.reason.as_str())
        && c.message.as_deref() == Some(next.condition.message.as_str());
    same.then(|| Written {
        since: c
            .last_transition_time
            .clone()
            .unwrap_or_else(|| next.since.clone()),
        ..next.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn att(ifname: &str, problem: Option<Reason>) -> Attachment {
        Attachment {
            network: format!("ns/{ifname}"),
            ifname: ifname.into(),
            problem: problem.map(|r| (r, "what".to_string())),
        }
    }

    #[test]
    fn condition_and_events_follow_each_transition() {
        let healthy = [att("eth0", None), att("net1", None)];
        let down = [att("eth0", None), att("net1", Some(Reason::LinkDown))];
        let flushed = [att("eth0", None), att("net1", Some(Reason::AddressMissing))];
        let first = next(None, &healthy, "t0");
        assert!(first.condition.healthy);
        assert_eq!(first.since, "t0");
        assert_eq!(transitions(None, &healthy), vec![]);
        assert_eq!(
            transitions(None, &down),
            vec![(
                false,
                "network ns/net1 interface net1: LinkDown: what".to_string()
            )]
        );
        // Nothing changed: the same condition, the same time.
        assert_eq!(next(Some(&first), &healthy, "t1"), first);
        let broken = next(Some(&first), &down, "t1");
        assert_eq!(
            (broken.condition.healthy, broken.condition.reason.as_str()),
            (false, "LinkDown")
        );
        assert_eq!(broken.since, "t1");
        assert!(broken.condition.message.contains("net1"));
        assert_eq!(transitions(Some(&broken), &down), vec![]);
        let other = next(Some(&broken), &flushed, "t2");
        assert_eq!(other.since, "t1", "still False: no transition time");
        assert_eq!(transitions(Some(&broken), &flushed).len(), 1);
        let healed = transitions(Some(&other), &healthy);
        assert_eq!(
            healed,
            vec![(
                true,
                "network ns/net1 interface net1: healthy again (was AddressMissing)".to_string()
            )]
        );
        assert_eq!(next(Some(&other), &healthy, "t3").since, "t3");
    }

    #[test]
    fn a_condition_an_earlier_agent_wrote_is_taken_as_written() {
        let down = [att("eth0", None), att("net1", Some(Reason::LinkDown))];
        let next = next(None, &down, "t9");
        let on_pod = |status: &str, reason: &str, message: &str| PodCondition {
            kind: DEFAULT_TYPE.into(),
            status: status.into(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            last_transition_time: Some("t1".into()),
        };
        let same = on_pod("False", "LinkDown", &next.condition.message);
        let taken = already_on_pod(DEFAULT_TYPE, std::slice::from_ref(&same), &next);
        assert_eq!(taken.as_ref().map(|w| w.since.as_str()), Some("t1"));
        assert_eq!(taken.map(|w| w.problems), Some(next.problems.clone()));
        // Anything else differing: written again.
        for (row, c) in [
            (
                "status",
                on_pod("True", "LinkDown", &next.condition.message),
            ),
            (
                "reason",
                on_pod("False", "AddressMissing", &next.condition.message),
            ),
            ("message", on_pod("False", "LinkDown", "other")),
        ] {
            assert_eq!(already_on_pod(DEFAULT_TYPE, &[c], &next), None, "{row}");
        }
        assert_eq!(already_on_pod("example.com/other", &[same], &next), None);
        assert_eq!(already_on_pod(DEFAULT_TYPE, &[], &next), None);
    }
}
