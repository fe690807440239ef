//! Journal records as text: the table of containers and the detail of one (pure formatting).

use std::fmt::Write;
use std::path::Path;

use super::Listing;
use crate::cni::env::parse_args;
use crate::cni::result::CniResult;
use crate::txn::{Record, State, Step};

/// Container ids are shown this long in the table (as crictl does); any unique prefix works
/// as the argument of `plexus inspect`.
const SHORT_ID: usize = 13;

/// `namespace/name` of the pod from `CNI_ARGS`, or `-`.
fn pod_of(cni_args: &str) -> String {
    let args = parse_args(cni_args).unwrap_or_default();
    let get = |k: &str| {
        args.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    match (get("K8S_POD_NAMESPACE"), get("K8S_POD_NAME")) {
        (Some(ns), Some(name)) => format!("{ns}/{name}"),
        (None, Some(name)) => name.to_string(),
        _ => "-".into(),
    }
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

/// Rows padded into aligned columns (the last column is not padded).
fn columns(rows: &[Vec<String>]) -> String {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ", w = widths[i]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The table of every journaled container, then unreadable and quarantined files.
pub(crate) fn table(listing: &Listing) -> String {
    let mut out = String::new();
    if listing.records.is_empty() {
        out.push_str("no journaled containers\n");
    } else {
        let mut rows = vec![
            ["CONTAINER", "STATE", "POD", "NETNS", "ATTACHMENTS"]
                .map(String::from)
                .to_vec(),
        ];
        for j in &listing.records {
            let id: String = j.id.chars().take(SHORT_ID).collect();
            rows.push(match &j.record {
                Ok((_, r)) => vec![
                    id,
                    record_state(r).into(),
                    pod_of(&r.cni_args),
                    or_dash(&r.netns).into(),
                    format!(
                        "{} ({})",
                        r.steps.len(),
                        r.steps
                            .iter()
                            .map(|a| a.ifname.as_str())
                            .collect::<Vec<_>>()
                            .join(",")
                    ),
                ],
                Err(_) => vec![id, "unreadable".into(), "-".into(), "-".into(), "-".into()],
            });
        }
        out.push_str(&columns(&rows));
    }
    let unreadable: Vec<_> = listing
        .records
        .iter()
        .filter_map(|j| j.record.as_ref().err().map(|e| (j, e)))
        .collect();
    if !unreadable.is_empty() {
        out.push_str("\nunreadable records (plexus moves them aside on the next DEL or ADD):\n");
        for (j, e) in unreadable {
            let _ = writeln!(out, "  {}: {e}", j.path.display());
        }
    }
    if !listing.quarantined.is_empty() {
        out.push_str("\nquarantined records (did not parse; kept for the operator):\n");
        for q in &listing.quarantined {
            let _ = writeln!(out, "  {q}");
        }
    }
    out
}

/// A record's state in one word: `stuck` (a DEL of some attachment failed and the next DEL or
/// hot-plug pass retries it), `complete`, or `incomplete` (an ADD in progress or interrupted).
fn record_state(r: &Record) -> &'static str {
    if r.is_stuck() {
        "stuck"
    } else if r.complete {
        "complete"
    } else {
        "incomplete"
    }
}

/// One container's record: its parameters, then each attachment in ADD order.
pub(crate) fn detail(rec: &Record, path: &Path) -> String {
    let mut out = columns(&[
        vec!["container".into(), rec.container_id.clone()],
        vec![
            "state".into(),
            match record_state(rec) {
                "complete" => "complete (ADD succeeded)",
                "stuck" => {
                    "stuck (a DEL failed; each DEL retries; `plexus release` drops it on purpose)"
                }
                _ => "incomplete (ADD in progress, failed, or its rollback left work for DEL)",
            }
            .into(),
        ],
        vec!["pod".into(), pod_of(&rec.cni_args)],
        vec!["netns".into(), or_dash(&rec.netns).into()],
        vec!["ifname".into(), rec.ifname.clone()],
        vec!["cni args".into(), or_dash(&rec.cni_args).into()],
        vec!["journal".into(), path.display().to_string()],
    ]);
    let _ = writeln!(out, "\nattachments ({}):", rec.steps.len());
    for e in &rec.steps {
        out.push('\n');
        out.push_str(&attachment(e));
    }
    out
}

/// One attachment: interface and network, then its plugins, state and result.
fn attachment(e: &Step) -> String {
    let what = if e.is_cluster() {
        "cluster network"
    } else {
        "network"
    };
    let mut out = format!("{}  {what} {:?}\n", e.ifname, e.network);
    let mut rows: Vec<Vec<String>> = Vec::new();
    let version = match e.conf_list() {
        Some(c) => {
            rows.push(vec!["plugins".into(), c.types()]);
            rows.push(vec!["cniVersion".into(), c.cni_version.clone()]);
            c.cni_version
        }
        None => {
            rows.push(vec!["config".into(), "unusable (no plugin list)".into()]);
            String::new()
        }
    };
    let state = match e.state {
        State::Pending => "pending (named before it ran; DEL releases it)",
        State::Added => "added (result cached)",
        State::AddFailed => "ADD failed (DEL releases what it may have left)",
        State::Released => "released",
        State::ReleaseFailed => "DEL failed (retried by every DEL)",
    };
    rows.push(vec!["state".into(), state.into()]);
    if let Some(err) = &e.error {
        rows.push(vec!["error".into(), err.clone()]);
    }
    match &e.result {
        None => {}
        Some(r) => match CniResult::from_value(r, &version) {
            Ok(res) => {
                let (addrs, mac) = addresses(&res, &e.ifname);
                rows.push(vec!["addresses".into(), or_dash(&addrs.join(", ")).into()]);
                rows.push(vec!["mac".into(), or_dash(&mac).into()]);
            }
            Err(err) => rows.push(vec!["result".into(), format!("unreadable: {err}")]),
        },
    }
    rows.push(vec![
        "default-route".into(),
        or_dash(&e.default_route.join(", ")).into(),
    ]);
    if !e.runtime_config.is_empty() {
        let keys: Vec<&str> = e.runtime_config.keys().map(String::as_str).collect();
        rows.push(vec!["runtimeConfig".into(), keys.join(", ")]);
    }
    for line in columns(&rows).lines() {
        let _ = writeln!(out, "  {line}");
    }
    out
}

/// The addresses (`address via gateway`) and MAC of the pod interface `ifname` in a result.
/// A result that names no interfaces (old versions) has all its addresses on it.
fn addresses(res: &CniResult, ifname: &str) -> (Vec<String>, String) {
    let is_pod_iface = |i: &crate::cni::result::Interface| i.name == ifname;
    let idx = res
        .interfaces
        .iter()
        .position(|i| is_pod_iface(i) && i.sandbox.as_deref().is_some_and(|s| !s.is_empty()))
        .or_else(|| res.interfaces.iter().position(is_pod_iface));
    let addrs = res
        .ips
        .iter()
        .filter(|ip| res.interfaces.is_empty() || (ip.interface.is_some() && ip.interface == idx))
        .map(|ip| match &ip.gateway {
            Some(gw) => format!("{} via {gw}", ip.address),
            None => ip.address.clone(),
        })
        .collect();
    let mac = idx
        .and_then(|i| res.interfaces[i].mac.clone())
        .unwrap_or_default();
    (addrs, mac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn pod_of_table() {
        let rows: &[(&str, &str, &str)] = &[
            (
                "both",
                "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=web",
                "ns/web",
            ),
            ("name only", "K8S_POD_NAME=web", "web"),
            ("none", "", "-"),
            ("broken", "garbage", "-"),
        ];
        for (name, args, want) in rows {
            assert_eq!(pod_of(args), *want, "{name}");
        }
    }

    #[test]
    fn addresses_of_pod_interface() {
        let v: Value = json!({
            "cniVersion": "1.0.0",
            "interfaces": [
                {"name": "cni0", "mac": "aa:aa:aa:aa:aa:aa"},
                {"name": "eth0", "mac": "0a:58:0a:01:00:05", "sandbox": "/var/run/netns/x"}
            ],
            "ips": [
                {"address": "10.1.0.5/24", "gateway": "10.1.0.1", "interface": 1},
                {"address": "10.9.9.9/24", "interface": 0}
            ]
        });
        let res = CniResult::from_value(&v, "1.0.0").unwrap();
        let (addrs, mac) = addresses(&res, "eth0");
        assert_eq!(addrs, vec!["10.1.0.5/24 via 10.1.0.1".to_string()]);
        assert_eq!(mac, "0a:58:0a:01:00:05");
    }
}
