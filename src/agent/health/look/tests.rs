//! The health look over a real journal in a temporary directory, the engine tests' pod
//! namespace and a delegate that plays a runtime DEL or hot-plug racing its CHECK. No root.

use std::sync::Mutex;

use super::*;
use crate::delegate::DelegateError;
use crate::delegate::Invocation;
use crate::engine::tests::fakes::FakeNet;
use crate::journal::JournalLock;
use crate::journal::tests::JournalDir;
use crate::testutil::TempDir;
use crate::txn::State;
use crate::txn::record::sample::{self, STATES};

const ID: &str = "c1";

/// A path beside the journal of `tmp`: a pod namespace the agent can reach (its directory
/// exists once the journal does).
fn netns(tmp: &TempDir) -> String {
    tmp.0.join("netns").to_string_lossy().into_owned()
}

fn put(journal: &Journal, rec: &Record) {
    journal
        .lock(ID)
        .unwrap()
        .write(&rec.encode().unwrap())
        .unwrap();
}

fn eyes<'a>(journal: &'a Journal, net: &'a FakeNet, exec: Option<&'a dyn Executor>) -> Eyes<'a> {
    Eyes {
        journal,
        net,
        exec,
        wanted: &|_| true,
        concurrency: 1,
        only: None,
    }
}

/// `(ifname, problem reason)` of each attachment checked.
fn found(l: Option<Looked>) -> Vec<(String, Option<Reason>)> {
    match l {
        Some(Looked::Checked(_, _, a, _)) => a
            .into_iter()
            .map(|a| (a.ifname, a.problem.map(|(r, _)| r)))
            .collect(),
        other => panic!("not checked: {other:?}"),
    }
}

#[test]
fn only_attached_steps_are_checked() {
    let dir = TempDir::new("health");
    let journal = dir.journal();
    // net1 is missing from the pod: a problem only if it is attached.
    let net = FakeNet {
        missing: vec!["net1".into()],
        ..FakeNet::default()
    };
    for state in STATES {
        put(&journal, &sample::record(ID, &netns(&dir), true, state));
        let mut want = vec![("eth0".to_string(), None)];
        if state == State::Added {
            want.push(("net1".into(), Some(Reason::InterfaceMissing)));
        }
        assert_eq!(
            found(look(&eyes(&journal, &net, None), ID)),
            want,
            "net1 {state:?}"
        );
    }
    put(
        &journal,
        &sample::record(ID, &netns(&dir), false, State::Added),
    );
    assert_eq!(
        look(&eyes(&journal, &net, None), ID),
        None,
        "an incomplete record"
    );
}

/// What the delegate's CHECK does besides failing.
enum Then {
    /// Passes.
    Pass,
    /// Fails; nothing else happens.
    Fail,
    /// A DEL of the pod runs meanwhile and is still running (holds the lock) when it fails.
    DelRunning(Mutex<Option<JournalLock>>),
    /// A DEL of the pod ran meanwhile: the record is gone.
    DelDone,
    /// A hot-plug pass changed the record meanwhile.
    Changed,
}

/// A delegate whose first CHECK notes whether the record was locked while it ran, then does
/// `then`; every CHECK passes with `Pass` and fails otherwise.
struct Racing<'a> {
    journal: &'a Journal,
    then: Then,
    locked_during_check: Mutex<Option<bool>>,
}

impl Executor for Racing<'_> {
    fn exec(&self, _: &str, inv: &Invocation<'_>, _: &[u8]) -> Result<Vec<u8>, DelegateError> {
        assert_eq!(inv.command, crate::cni::env::Command::Check);
        let mut first = self.locked_during_check.lock().unwrap();
        if first.is_none() {
            let lock = self.journal.try_lock(ID).unwrap();
            *first = Some(lock.is_none());
            match (&self.then, lock) {
                (Then::DelRunning(keep), Some(l)) => *keep.lock().unwrap() = Some(l),
                (Then::DelDone, Some(l)) => l.remove().unwrap(),
                (Then::Changed, Some(l)) => {
                    let Ok(Loaded::Record(mut rec)) = crate::txn::load(&l) else {
                        panic!("no record to change");
                    };
                    rec.steps[1].state = State::Released;
                    l.write(&rec.encode().unwrap()).unwrap();
                }
                _ => {}
            }
        }
        if matches!(self.then, Then::Pass) {
            return Ok(Vec::new());
        }
        Err(DelegateError::Plugin {
            code: 999,
            msg: format!("{} is not as ADD left it", inv.ifname),
            details: String::new(),
        })
    }
}

#[test]
fn a_delegate_check_runs_without_the_lock_and_a_raced_failure_is_not_reported() {
    use Then::*;
    let dir = TempDir::new("health");
    let journal = dir.journal();
    let net = FakeNet::default();
    let unhealthy = Some(Reason::CheckFailed);
    let checked = |a: Option<Reason>, b: Option<Reason>| {
        Some(vec![("eth0".to_string(), a), ("net1".to_string(), b)])
    };
    // What the delegates do -> the attachments reported (`None`: not reported this round).
    let rows: Vec<(&str, Then, Option<Vec<(String, Option<Reason>)>>)> = vec![
        ("healthy", Pass, checked(None, None)),
        ("broken", Fail, checked(unhealthy, unhealthy)),
        ("DEL still running", DelRunning(Mutex::new(None)), None),
        ("DEL done", DelDone, None),
        ("hot-plug changed it", Changed, None),
    ];
    for (name, then, want) in rows {
        put(
            &journal,
            &sample::record(ID, &netns(&dir), true, State::Added),
        );
        let exec = Racing {
            journal: &journal,
            then,
            locked_during_check: Mutex::new(None),
        };
        let got = look(&eyes(&journal, &net, Some(&exec)), ID);
        assert_eq!(
            *exec.locked_during_check.lock().unwrap(),
            Some(false),
            "{name}: the record was locked while the delegate CHECK ran (or none ran)"
        );
        match (want, &exec.then) {
            (Some(want), _) => assert_eq!(found(got), want, "{name}"),
            (None, DelRunning(keep)) => {
                assert!(matches!(got, Some(Looked::Busy(_))), "{name}: {got:?}");
                drop(keep.lock().unwrap().take());
            }
            (None, DelDone) => assert_eq!(got, None, "{name}"),
            (None, _) => assert!(matches!(got, Some(Looked::Busy(_))), "{name}: {got:?}"),
        }
        let gone = matches!(exec.then, DelDone);
        assert_eq!(journal.peek(ID).is_none(), gone, "{name}: the record");
    }
}
