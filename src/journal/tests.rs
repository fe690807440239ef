//! Tests of `journal`.

use super::*;
use serde::{Deserialize, Serialize};
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use crate::testutil::TempDir;

pub(crate) trait JournalDir {
    /// The journal dir: a not-yet-existing subdirectory, so `lock` has to create it.
    fn journal(&self) -> Journal;
}

impl JournalDir for TempDir {
    fn journal(&self) -> Journal {
        Journal::new(self.0.join("journal"))
    }
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Rec {
    attachments: Vec<String>,
    done: u32,
}

fn rec(n: u32) -> Rec {
    Rec {
        attachments: vec!["net1".into(), "net2".into()],
        done: n,
    }
}

const ID: &str = "0123456789abcdef";

/// The test record through the byte-line API.
trait RecLines {
    fn w(&self, r: &Rec) -> Result<(), JournalError>;
    fn r(&self) -> Option<Rec>;
}

impl RecLines for JournalLock {
    fn w(&self, r: &Rec) -> Result<(), JournalError> {
        self.write(&serde_json::to_vec(r).unwrap())
    }
    fn r(&self) -> Option<Rec> {
        self.read()
            .unwrap()
            .map(|line| serde_json::from_slice(&line).unwrap())
    }
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn round_trip_and_overwrite() {
    let tmp = TempDir::new("journal");
    let j = tmp.journal();
    let l = j.lock(ID).unwrap();
    assert_eq!(l.container_id(), ID);
    assert_eq!(l.path(), j.dir().join(format!("{ID}.json")));
    l.w(&rec(1)).unwrap();
    assert_eq!(l.r(), Some(rec(1)));
    l.w(&rec(2)).unwrap();
    l.sync().unwrap();
    assert_eq!(l.r(), Some(rec(2)));
    drop(l);
    // Survives the lock being dropped and taken again; no temp file left behind.
    assert_eq!(j.lock(ID).unwrap().r(), Some(rec(2)));
    assert_eq!(names(j.dir()), [format!("{ID}.json"), format!("{ID}.lock")]);
}

#[test]
fn read_missing_is_none() {
    let tmp = TempDir::new("journal");
    let l = tmp.journal().lock(ID).unwrap();
    assert_eq!(l.r(), None);
    l.sync().unwrap();
}

#[test]
fn torn_or_empty_files_are_corrupt_and_quarantined() {
    let whole = format!(
        "{}\n{}\n",
        serde_json::to_string(&rec(1)).unwrap(),
        serde_json::to_string(&rec(2)).unwrap()
    );
    let cases: Vec<(&str, Vec<u8>, Unreadable)> = vec![
        ("empty", b"".to_vec(), Unreadable::Empty),
        ("blank lines", b"\n\n".to_vec(), Unreadable::Empty),
        (
            "last line torn",
            format!("{whole}{{\"attachments\":[\"net1\"],\"do").into_bytes(),
            Unreadable::Torn,
        ),
        (
            "cut to half its size",
            whole.as_bytes()[..whole.len() / 2 + 5].to_vec(),
            Unreadable::Torn,
        ),
        ("garbage", b"\x00\xff not json".to_vec(), Unreadable::Torn),
    ];
    for (name, content, want) in cases {
        let tmp = TempDir::new("journal");
        let j = tmp.journal();
        let l = j.lock(ID).unwrap();
        fs::write(l.path(), &content).unwrap();
        match l.read() {
            Err(JournalError::Corrupt { path, reason }) => {
                assert_eq!(path, l.path(), "{name}");
                assert_eq!(reason, want, "{name}");
            }
            other => panic!("{name}: expected Corrupt, got {other:?}"),
        }
        assert_eq!(j.list().unwrap(), [ID], "{name}");

        let moved = l.quarantine(42).unwrap();
        let moved_name = moved.file_name().unwrap().to_str().unwrap();
        assert_eq!(moved_name, format!("{ID}.corrupt-42"), "{name}");
        assert_eq!(moved.parent(), Some(j.dir()), "{name}");
        assert_eq!(fs::read(&moved).unwrap(), content, "{name}");
        assert!(j.list().unwrap().is_empty(), "{name}");
        assert_eq!(l.r(), None, "{name}");
        l.sync().unwrap();
    }
}

#[test]
fn the_newest_line_is_the_record_whatever_it_holds() {
    let tmp = TempDir::new("journal");
    let l = tmp.journal().lock(ID).unwrap();
    fs::write(l.path(), b"{\"old\":1}\nnot json but complete\n").unwrap();
    assert_eq!(l.read().unwrap().unwrap(), b"not json but complete");
}

#[test]
fn quarantine_without_journal_is_an_error() {
    let tmp = TempDir::new("journal");
    let l = tmp.journal().lock(ID).unwrap();
    assert!(matches!(
        l.quarantine(1),
        Err(JournalError::Io {
            op: "quarantine",
            ..
        })
    ));
}

#[test]
fn modes_are_private() {
    let tmp = TempDir::new("journal");
    let j = tmp.journal();
    let l = j.lock(ID).unwrap();
    l.w(&rec(1)).unwrap();
    assert_eq!(mode(j.dir()), 0o700);
    assert_eq!(mode(l.path()), 0o600);
    assert_eq!(mode(&j.dir().join(format!("{ID}.lock"))), 0o600);
}

#[test]
fn invalid_ids_are_rejected() {
    let long = "a".repeat(300);
    let max = "a".repeat(255);
    let cases: &[(&str, &str, bool)] = &[
        ("parent escape", "../x", false),
        ("slash", "a/b", false),
        ("empty", "", false),
        ("hidden", ".hidden", false),
        ("leading dash", "-x", false),
        ("300 bytes", &long, false),
        ("space", "a b", false),
        ("nul", "a\0b", false),
        ("non-ascii", "caf\u{e9}", false),
        ("hex id", "0123456789abcdef", true),
        ("all allowed chars", "A9_.-z", true),
        ("255 bytes", &max, true),
    ];
    let tmp = TempDir::new("journal");
    let j = tmp.journal();
    for (name, id, valid) in cases {
        assert_eq!(is_valid_container_id(id), *valid, "{name}");
        if !valid {
            match j.lock(id) {
                Err(JournalError::InvalidId(got)) => assert_eq!(got, *id, "{name}"),
                other => panic!("{name}: expected InvalidId, got {other:?}"),
            }
        }
    }
    // Rejected before any I/O: the directory was never created.
    assert!(!j.dir().exists());
}

#[test]
fn list_shows_only_journals() {
    let tmp = TempDir::new("journal");
    let j = tmp.journal();
    assert!(j.list().unwrap().is_empty(), "missing dir lists nothing");
    for id in ["b-id", "a.id"] {
        j.lock(id).unwrap().w(&rec(1)).unwrap();
    }
    j.lock("locked-only").unwrap();
    for noise in [
        ".c.tmp-123",
        ".c.json",
        "c.corrupt-1700000000000000000",
        "d.lock",
        "README",
        "bad id.json",
    ] {
        fs::write(j.dir().join(noise), b"{}").unwrap();
    }
    assert_eq!(j.list().unwrap(), ["a.id", "b-id"]);
}

#[test]
fn remove_deletes_journal_and_lock_file() {
    let tmp = TempDir::new("journal");
    let j = tmp.journal();
    let l = j.lock(ID).unwrap();
    l.w(&rec(1)).unwrap();
    l.remove().unwrap();
    assert!(names(j.dir()).is_empty());
    assert!(j.list().unwrap().is_empty());
    // Removing again (a second DEL) finds nothing and succeeds.
    let l = j.lock(ID).unwrap();
    assert_eq!(l.r(), None);
    l.remove().unwrap();
    assert!(names(j.dir()).is_empty());
}

#[test]
fn write_failure_is_an_error_and_leaves_no_temp_file() {
    let tmp = TempDir::new("journal");
    let j = tmp.journal();
    let l = j.lock(ID).unwrap();
    // Make the write fail: the journal path is a directory.
    fs::create_dir(l.path()).unwrap();
    fs::write(l.path().join("x"), b"").unwrap();
    assert!(matches!(
        l.w(&rec(2)),
        Err(JournalError::Io { op: "open", .. })
    ));
    assert!(!l.temp_path().exists());
}

#[test]
fn a_looser_journal_directory_is_tightened() {
    let tmp = TempDir::new("journal");
    let j = tmp.journal();
    fs::create_dir_all(j.dir()).unwrap();
    fs::set_permissions(j.dir(), fs::Permissions::from_mode(0o755)).unwrap();
    j.lock(ID).unwrap().w(&rec(1)).unwrap();
    assert_eq!(mode(j.dir()), 0o700);
}

#[test]
fn appends_until_the_file_is_large_then_compacts() {
    let tmp = TempDir::new("journal");
    let l = tmp.journal().lock(ID).unwrap();
    let mut n = 0;
    while fs::metadata(l.path()).map(|m| m.len()).unwrap_or(0) < COMPACT_AT {
        n += 1;
        l.w(&rec(n)).unwrap();
    }
    let lines = |p: &Path| {
        fs::read_to_string(p)
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count()
    };
    assert_eq!(lines(l.path()), n as usize, "one line per write");
    l.w(&rec(n + 1)).unwrap();
    assert_eq!(lines(l.path()), 1, "compacted to the newest version");
    assert_eq!(l.r(), Some(rec(n + 1)));
    assert_eq!(mode(l.path()), 0o600);
    assert!(!l.temp_path().exists());
}

/// Polls `/proc/locks` until some thread is blocked waiting for the flock on `lock_file`.
fn wait_until_blocked_on(lock_file: &Path) {
    let ino = fs::metadata(lock_file).unwrap().ino();
    let suffix = format!(":{ino}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let locks = fs::read_to_string("/proc/locks").unwrap();
        // Waiters are listed as "N: -> FLOCK ADVISORY WRITE PID MAJ:MIN:INODE 0 EOF".
        let blocked = locks.lines().any(|line| {
            line.contains("->")
                && line.contains("FLOCK")
                && line.split_whitespace().any(|f| f.ends_with(&suffix))
        });
        if blocked {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no waiter on {}",
            lock_file.display()
        );
        thread::yield_now();
    }
}

#[test]
fn same_id_waits_for_the_holder() {
    let tmp = TempDir::new("journal");
    let j = tmp.journal();
    let first = j.lock(ID).unwrap();
    let released = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let waiter = {
        let (j, released) = (j.clone(), Arc::clone(&released));
        thread::spawn(move || {
            let l = j.lock(ID).unwrap();
            // Records whether the first holder had already let go when we got the lock.
            tx.send(released.load(Ordering::SeqCst)).unwrap();
            l.w(&rec(2)).unwrap();
        })
    };
    wait_until_blocked_on(&j.dir().join(format!("{ID}.lock")));
    assert!(rx.try_recv().is_err(), "second locker got in while held");
    first.w(&rec(1)).unwrap();
    released.store(true, Ordering::SeqCst);
    drop(first);
    assert!(rx.recv_timeout(Duration::from_secs(10)).unwrap());
    waiter.join().unwrap();
    assert_eq!(j.lock(ID).unwrap().r(), Some(rec(2)));
}

#[test]
fn different_ids_do_not_wait() {
    let tmp = TempDir::new("journal");
    let j = tmp.journal();
    let _a = j.lock("a").unwrap();
    let (tx, rx) = mpsc::channel();
    let j2 = j.clone();
    let t = thread::spawn(move || {
        let b = j2.lock("b").unwrap();
        tx.send(()).unwrap();
        drop(b);
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("lock on another id blocked");
    t.join().unwrap();
}

#[test]
fn waiter_survives_remove_and_locks_a_fresh_file() {
    let tmp = TempDir::new("journal");
    let j = tmp.journal();
    let lock_path = j.dir().join(format!("{ID}.lock"));
    let a = j.lock(ID).unwrap();
    a.w(&rec(1)).unwrap();
    let (tx, rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let waiter = {
        let j = j.clone();
        thread::spawn(move || {
            let b = j.lock(ID).unwrap();
            tx.send(b).unwrap();
            // Keep the thread (not the lock) alive until the main thread is done checking.
            let _ = done_rx.recv();
        })
    };
    wait_until_blocked_on(&lock_path);
    a.remove().unwrap();

    let b = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    // B holds the file that is at the path now, and it is a live (linked) file.
    let held = b.file.metadata().unwrap();
    let at_path = fs::metadata(&lock_path).unwrap();
    assert_eq!((held.dev(), held.ino()), (at_path.dev(), at_path.ino()));
    assert_eq!(held.nlink(), 1);
    // The journal A removed stays removed.
    assert_eq!(b.r(), None);
    // And B's lock really excludes: a fresh open of the path cannot lock it.
    let other = File::open(&lock_path).unwrap();
    assert!(matches!(
        other.try_lock(),
        Err(fs::TryLockError::WouldBlock)
    ));
    drop(b);
    other.try_lock().unwrap();
    done_tx.send(()).unwrap();
    waiter.join().unwrap();
}

#[test]
fn try_lock_gives_nothing_while_held_and_the_lock_once_free() {
    let tmp = TempDir::new("journal");
    let j = tmp.journal();
    let first = j.lock(ID).unwrap();
    first.w(&rec(1)).unwrap();
    let other = j.clone();
    // flock locks belong to the open file: another open, even in this process, is refused.
    assert!(other.try_lock(ID).unwrap().is_none(), "held elsewhere");
    drop(first);
    let again = other.try_lock(ID).unwrap().expect("free now");
    assert_eq!(again.r(), Some(rec(1)));
}
