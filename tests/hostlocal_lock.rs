//! host-local in process and the reference binary on one store at once: each waits for the
//! other's lock (flock on the store's `lock` file), and concurrent ADDs and DELs from both leave
//! distinct addresses, one lease per call, and an empty store after. No root needed.
#![allow(clippy::disallowed_methods)]

mod builtin_support;
mod common;
mod hostlocal_support;

use std::collections::BTreeSet;
use std::time::Duration;

use hostlocal_support::*;
use plexus::delegate::{DelegateError, Invocation};
use serde_json::{Value, json};

#[test]
fn concurrent_adds_and_dels_share_the_lock() {
    let dir = builtin_support::TempDir::new("hlconc");
    let conf = conf(
        "1.0.0",
        json!({"ranges": [[{"subnet": "10.10.0.0/24"}], [{"subnet": "fd00:10::/120"}]]}),
    )(&dir.path);
    let added = at_once(&conf, 16, add);
    let mut seen = BTreeSet::new();
    let held = leases(&dir.path);
    for (id, out) in &added {
        for a in out.addresses() {
            assert!(seen.insert(a.clone()), "{a} handed out twice: {added:?}");
            let ip = a.split('/').next().unwrap();
            assert_eq!(
                held.get(ip).map(String::as_str),
                Some(&*format!("{id}\r\neth0"))
            );
        }
    }
    assert_eq!((seen.len(), held.len()), (32, 32), "{held:?}");
    for set in ["0", "1"] {
        let last = std::fs::read_to_string(
            dir.path
                .join(NETWORK)
                .join(format!("last_reserved_ip.{set}")),
        )
        .unwrap();
        assert!(
            held.contains_key(&last),
            "last_reserved_ip.{set} {last} is no lease"
        );
    }
    let deleted = at_once(&conf, 16, del);
    assert!(
        deleted.iter().all(|(_, o)| *o == Out::Ok(Value::Null)),
        "{deleted:?}"
    );
    assert_eq!(leases(&dir.path), Default::default());
    // One container and interface from all at once: one address per set, the rest duplicates
    // (that each engine waits for the other's lock is shown by each_waits_for_the_others_lock).
    let same = at_once(&conf, 16, |_, ifname| add("same", ifname));
    let won: Vec<_> = same
        .iter()
        .filter(|(_, o)| matches!(o, Out::Ok(_)))
        .collect();
    assert_eq!(won.len(), 1, "{same:?}");
    let held = leases(&dir.path);
    assert_eq!(held.len(), 2, "one address per set: {held:?}");
    let dups = same
        .iter()
        .filter(|(_, o)| matches!(o, Out::Err(_, m, _) if m.contains("duplicate")));
    assert_eq!(dups.count(), 15, "{same:?}");
}

#[test]
fn each_waits_for_the_others_lock() {
    use plexus::builtin::hostlocal::{self, store::Store};
    let dir = builtin_support::TempDir::new("hllock");
    let c = conf("1.0.0", json!({"subnet": "10.17.0.0/24"}))(&dir.path);
    let lock = dir.path.join(NETWORK).join("lock");
    // plexus holds the store: the binary's ADD waits in flock on the same file until it is let go.
    let held = Store::open(&dir.path, NETWORK, Duration::from_secs(5), None).unwrap();
    let op = add("c1", "eth0");
    let mut child = start(&c, &op);
    let pid = child.id();
    let waits = common::wait_for(common::CALL_TIMEOUT, || waits_for_flock(pid, &lock));
    assert!(waits, "the binary never waited for plexus's lock");
    assert!(
        child.try_wait().unwrap().is_none(),
        "the binary ran past the lock"
    );
    assert!(leases(&dir.path).is_empty());
    drop(held);
    assert_eq!(finish(child, &op).addresses(), ["10.17.0.2/24"]);
    // The reference's lock (flock on the same file) held: plexus gives up when its wait ends.
    let f = std::fs::File::open(&lock).unwrap();
    rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive).unwrap();
    let stdin = serde_json::to_vec(&c).unwrap();
    let inv = Invocation {
        command: plexus::cni::env::Command::Add,
        container_id: "c2",
        netns: "/unused",
        ifname: "eth0",
        args: ARGS,
        cancel: None,
    };
    let busy = hostlocal::add(&inv, &stdin, Duration::from_millis(50));
    assert!(
        matches!(busy, Err(DelegateError::Timeout { .. })),
        "{busy:?}"
    );
    assert_eq!(leases(&dir.path).len(), 1);
    drop(f);
    assert!(matches!(
        hostlocal::add(&inv, &stdin, Duration::from_secs(5)),
        Ok(Some(_))
    ));
}
