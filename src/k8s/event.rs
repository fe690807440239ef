//! The events plexus posts: `AddedInterface` after an ADD (as Multus does), listing every
//! interface it attached; the node agent's, on a pod (hot-plug) or on its Node (a leak
//! released).

use serde_json::{Value, json};

use super::pod::PodRef;
use super::status::NetworkStatus;

/// A core/v1 Event on the pod, reason `AddedInterface`, one message listing the interfaces.
pub fn added_interface(pod: &PodRef, container_id: &str, statuses: &[NetworkStatus]) -> Value {
    let list: Vec<String> = statuses
        .iter()
        .map(|s| {
            format!(
                "{} [{}] from {}",
                s.interface.as_deref().unwrap_or("?"),
                s.ips.join(","),
                s.name
            )
        })
        .collect();
    let short = container_id.get(..12).unwrap_or(container_id);
    let message = format!("Add interfaces for sandbox {short}: {}", list.join("; "));
    on_pod(pod, "AddedInterface", false, &message, "plexus", None)
}

/// A core/v1 Event on `pod` (a warning or a normal one) from `component`, on node `host` when
/// it is the node agent.
pub fn on_pod(
    pod: &PodRef,
    reason: &str,
    warning: bool,
    message: &str,
    component: &str,
    host: Option<&str>,
) -> Value {
    let involved = json!({"apiVersion": "v1", "kind": "Pod", "namespace": pod.namespace,
        "name": pod.name, "uid": pod.uid.clone().unwrap_or_default()});
    let kind = if warning { "Warning" } else { "Normal" };
    event(
        &pod.namespace,
        &format!("{}.", pod.name),
        involved,
        [reason, kind, message],
        component,
        host,
    )
}

/// A core/v1 Event on the Node, reason `LeakedAttachmentReleased`: the node agent released
/// what a sandbox nobody will DEL had left (`pod` as `namespace/name`, `interfaces` the
/// interfaces it had).
pub fn leak_released(node: &str, container_id: &str, pod: &str, interfaces: &[String]) -> Value {
    let short = container_id.get(..12).unwrap_or(container_id);
    let message = format!(
        "Released the attachments of sandbox {short} of pod {pod} ({}): the pod is gone and nobody DELeted them",
        interfaces.join(", ")
    );
    let involved = json!({"apiVersion": "v1", "kind": "Node", "name": node});
    event(
        "default",
        &format!("{node}.plexus-leak."),
        involved,
        ["LeakedAttachmentReleased", "Normal", &message],
        "plexus-agent",
        Some(node),
    )
}

/// An Event in `namespace` about `involved`: `[reason, type, message]`, from `component` (on
/// node `host`, if given), counted once now.
fn event(
    namespace: &str,
    generate_name: &str,
    involved: Value,
    [reason, kind, message]: [&str; 3],
    component: &str,
    host: Option<&str>,
) -> Value {
    let now = now_rfc3339();
    let mut ev = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": generate_name, "namespace": namespace},
        "involvedObject": involved,
        "reason": reason,
        "message": message,
        "type": kind,
        "source": {"component": component},
        "reportingComponent": component,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    });
    if let Some(h) = host {
        ev["source"]["host"] = json!(h);
        ev["reportingInstance"] = json!(h);
    }
    ev
}

/// The current time as RFC 3339 (UTC, seconds), without a date crate.
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_table() {
        let rows = [
            ("epoch", 0, (1970, 1, 1)),
            ("leap day 2000", 11_016, (2000, 2, 29)),
            ("2026-11-23", 20_780, (2026, 11, 23)),
        ];
        for (name, days, want) in rows {
            assert_eq!(civil_from_days(days), want, "{name}");
        }
    }

    #[test]
    fn event_shape() {
        let pod = PodRef {
            namespace: "ns".into(),
            name: "p".into(),
            uid: Some("u".into()),
        };
        let st = NetworkStatus {
            name: "ns/a".into(),
            interface: Some("net1".into()),
            ips: vec!["10.0.0.2".into()],
            ..Default::default()
        };
        let e = added_interface(&pod, "0123456789abcdef", &[st]);
        assert_eq!(e["reason"], "AddedInterface");
        assert_eq!(e["involvedObject"]["name"], "p");
        assert_eq!(e["involvedObject"]["uid"], "u");
        assert_eq!(
            e["message"],
            "Add interfaces for sandbox 0123456789ab: net1 [10.0.0.2] from ns/a"
        );
    }
}
