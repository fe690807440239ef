//! DEL of every record shape: today's, the golden one 0.1.0 wrote, none, torn, and with the
//! pod's namespace gone or not a namespace.

use serde_json::json;

use super::fakes::Fake;
use super::{POD, case, nad};

/// The journal plexus 0.1.0 wrote for a real ADD (bridge + tuning cluster network, a macvlan
/// with host-local), kept under tests/ as it was written.
const GOLDEN: &[u8] = include_bytes!("../../../tests/golden/journal-format1-plexus-0.1.0.json");

#[test]
fn a_record_written_by_plexus_0_1_0_is_released() {
    let c = case(&["bridge"], json!({}));
    let line = crate::journal::newest_line(GOLDEN).unwrap();
    c.store.put("golden0123", line);
    let fake = Fake::default();
    let req = crate::cni::env::Request {
        container_id: "golden0123".into(),
        netns: "/run/netns/gold-pod".into(),
        ..super::req(crate::cni::env::Command::Del, "IgnoreUnknown=1")
    };
    c.run(&fake, &req, |e| e.del()).unwrap();
    let calls = fake.take_calls();
    let what: Vec<&str> = calls.iter().map(|c| c.what.as_str()).collect();
    assert_eq!(
        what,
        ["DEL net1 macvlan", "DEL eth0 tuning", "DEL eth0 bridge"]
    );
    // Each plugin gets its cached result (0.4.0 and later) and its journaled config.
    assert_eq!(
        calls[0].stdin["prevResult"]["ips"][0]["address"],
        "10.78.0.2/24"
    );
    assert_eq!(calls[0].stdin["master"], "gm0");
    assert_eq!(
        calls[2].stdin["prevResult"]["ips"][0]["address"],
        "10.77.0.2/24"
    );
    assert!(c.store.ids().is_empty());
}

#[test]
fn del_twice_and_without_a_record_succeeds() {
    let c = case(&["bridge", "macvlan"], json!({}));
    let fake = Fake::default();
    c.add(&fake, "IgnoreUnknown=1").unwrap();
    c.del(&fake, "IgnoreUnknown=1").unwrap();
    fake.take();
    // The second DEL finds no record: it releases what the configuration gives the container.
    c.del(&fake, "IgnoreUnknown=1").unwrap();
    assert_eq!(fake.take(), ["DEL net1 macvlan", "DEL eth0 bridge"]);
    // ...and a failure there is logged, not a record invented for a container never attached.
    let failing = Fake::failing(&["DEL eth0 bridge"]);
    c.del(&failing, "IgnoreUnknown=1").unwrap();
    assert!(c.store.ids().is_empty());
}

#[test]
fn del_with_the_namespace_gone_or_not_a_namespace_releases_without_it() {
    for (name, netns) in [
        ("gone", "/gone/x"),
        ("a regular file", "/file/x"),
        ("empty", ""),
    ] {
        let c = case(&["bridge", "macvlan"], json!({}));
        c.add(&Fake::default(), "IgnoreUnknown=1").unwrap();
        let fake = Fake::default();
        let req = crate::cni::env::Request {
            netns: netns.into(),
            ..super::req(crate::cni::env::Command::Del, "IgnoreUnknown=1")
        };
        c.run(&fake, &req, |e| e.del()).unwrap();
        let calls = fake.take_calls();
        assert_eq!(calls.len(), 2, "{name}");
        assert!(
            calls.iter().all(|c| c.netns.is_empty()),
            "{name}: {calls:?}"
        );
        assert!(c.store.ids().is_empty(), "{name}");
    }
}

#[test]
fn a_torn_or_unreadable_record_is_rebuilt_released_and_moved_aside() {
    for (name, line) in [
        ("garbage", b"\x00garbage".as_slice()),
        ("a future format", br#"{"format":99}"#.as_slice()),
    ] {
        let c = case(&["bridge"], json!({})).with_pod(
            &[("k8s.v1.cni.cncf.io/networks", "a")],
            &[("a", nad("a", "macvlan"))],
        );
        c.store.put("c1", line);
        let fake = Fake::default();
        c.del(&fake, POD).unwrap();
        assert_eq!(
            fake.take(),
            ["DEL net1 macvlan", "DEL eth0 bridge"],
            "{name}"
        );
        assert_eq!(c.store.quarantined().len(), 1, "{name}");
        assert!(c.store.ids().is_empty(), "{name}");
    }
}

#[test]
fn a_corrupt_record_that_cannot_be_rebuilt_now_is_kept() {
    let c = case(&["bridge"], json!({})).with_pod(&[], &[]);
    c.api().state().down = Some(crate::k8s::client::ApiError::Unavailable {
        what: "GET pod ns/p".into(),
        attempts: 1,
        elapsed_ms: 1,
        last: "refused".into(),
    });
    c.store.put("c1", b"garbage");
    let fake = Fake::default();
    let err = c.del(&fake, POD).unwrap_err();
    assert_eq!(err.code(), 11, "{err}");
    assert!(err.to_string().contains("is corrupt"), "{err}");
    assert!(fake.take().is_empty());
    assert_eq!(
        c.store.current("c1").as_deref(),
        Some(b"garbage".as_slice())
    );
}

#[test]
fn a_kept_record_after_a_failed_del_is_retried_from_where_it_stopped() {
    let c = case(&["bridge", "macvlan", "ipvlan"], json!({}));
    c.add(&Fake::default(), "IgnoreUnknown=1").unwrap();
    let failing = Fake::failing(&["DEL net1 macvlan"]);
    let err = c.del(&failing, "IgnoreUnknown=1").unwrap_err();
    assert!(err.to_string().contains("DEL of network \"n1\""), "{err}");
    let rec = c.record().unwrap();
    assert!(!rec.complete);
    let stuck: Vec<(&str, Option<&str>)> = rec
        .steps
        .iter()
        .filter(|s| s.needs_release())
        .map(|s| (s.ifname.as_str(), s.error.as_deref()))
        .collect();
    assert_eq!(stuck.len(), 1);
    assert_eq!(stuck[0].0, "net1");
    assert!(stuck[0].1.unwrap().contains("injected failure"));
    let healed = Fake::default();
    c.del(&healed, "IgnoreUnknown=1").unwrap();
    assert_eq!(healed.take(), ["DEL net1 macvlan"]);
    assert!(c.store.ids().is_empty());
}
