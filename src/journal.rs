//! Crash-safe on-disk record of attachments per container id, with a file lock.
//!
//! Layout under the journal directory (mode 0700, files 0600):
//!
//! - `<id>.json`: the record, always replaced whole (temp file, then rename), so a process killed
//!   mid-write leaves the old record or the new one, never a partial one.
//! - `<id>.lock`: holds the exclusive `flock` for that container id. Different ids never wait for
//!   each other.
//! - `.<id>.tmp-<pid>`: the temp file of a write in progress.
//! - `<id>.corrupt-<unix-nanos>`: a record that did not parse, moved aside for the operator.
//!
//! [`JournalLock::remove`] deletes the lock file while still holding the lock. A waiter that then
//! gets the lock holds it on a file no longer at the path, so [`Journal::lock`] checks after
//! locking that the locked file is still the one at the path and retries otherwise.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rustix::fs::OFlags;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Longest container id accepted, in bytes.
const MAX_ID_LEN: usize = 255;
const DIR_MODE: u32 = 0o700;
const FILE_MODE: u32 = 0o600;
const JOURNAL_SUFFIX: &str = ".json";
const LOCK_SUFFIX: &str = ".lock";

/// Why a journal operation failed.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// A filesystem operation failed.
    #[error("journal: {op} {}: {source}", path.display())]
    Io {
        /// The file or directory operated on.
        path: PathBuf,
        /// What was being done (`"open"`, `"rename"`, ...).
        op: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A journal file exists but does not hold a valid record.
    #[error("journal: {} is corrupt: {reason}", path.display())]
    Corrupt {
        /// The corrupt journal file.
        path: PathBuf,
        /// Why it did not parse.
        reason: String,
    },
    /// The container id is not a valid CNI container id, so it cannot name a file.
    #[error(
        "journal: invalid container id {0:?}: must match ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$ and be at most 255 bytes"
    )]
    InvalidId(String),
}

fn io_err(path: &Path, op: &'static str) -> impl FnOnce(io::Error) -> JournalError {
    move |source| JournalError::Io {
        path: path.to_path_buf(),
        op,
        source,
    }
}

/// True if `id` is a valid CNI container id: `^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`, at most 255 bytes.
///
/// Such an id contains no `/`, no NUL and does not start with `.`, so `<dir>/<id><suffix>` always
/// names a file directly inside the journal directory.
pub fn is_valid_container_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    match bytes.split_first() {
        None => false,
        Some((first, rest)) => {
            bytes.len() <= MAX_ID_LEN
                && first.is_ascii_alphanumeric()
                && rest
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        }
    }
}

fn validate_id(id: &str) -> Result<(), JournalError> {
    if is_valid_container_id(id) {
        Ok(())
    } else {
        Err(JournalError::InvalidId(id.to_owned()))
    }
}

fn nofollow() -> i32 {
    // O_NOFOLLOW is a small positive flag on every Linux architecture.
    i32::try_from(OFlags::NOFOLLOW.bits()).unwrap_or(0)
}

/// Removes `path`, treating an already missing file as success.
fn remove_if_exists(path: &Path) -> Result<(), JournalError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(path, "remove")(e)),
        _ => Ok(()),
    }
}

/// The journal directory: one record and one lock file per container id.
#[derive(Debug, Clone)]
pub struct Journal {
    dir: PathBuf,
}

impl Journal {
    /// A journal rooted at `dir`. Does no I/O; the directory is created by the first [`lock`](Self::lock).
    pub fn new(dir: impl Into<PathBuf>) -> Journal {
        Journal { dir: dir.into() }
    }

    /// The journal directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Blocks until this process holds the exclusive lock for `container_id`.
    ///
    /// Creates the journal directory (mode 0700) if it is missing, and the lock file (mode 0600).
    /// Locks on different container ids are independent. The lock is released when the returned
    /// [`JournalLock`] is dropped.
    ///
    /// # Errors
    ///
    /// [`JournalError::InvalidId`] if `container_id` is not a valid CNI container id;
    /// [`JournalError::Io`] if the directory or lock file cannot be created, opened or locked.
    pub fn lock(&self, container_id: &str) -> Result<JournalLock, JournalError> {
        validate_id(container_id)?;
        DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(&self.dir)
            .map_err(io_err(&self.dir, "create dir"))?;

        let lock_path = self.dir.join(format!("{container_id}{LOCK_SUFFIX}"));
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(FILE_MODE)
                .custom_flags(nofollow())
                .open(&lock_path)
                .map_err(io_err(&lock_path, "open"))?;
            file.lock().map_err(io_err(&lock_path, "lock"))?;

            // The holder before us may have removed the lock file (container gone) while we
            // waited; then we hold a lock nobody else will ever look at. Keep it only if it is
            // still the file at the path. `file` stays open during the check, so its inode
            // cannot be reused by a new file meanwhile.
            let held = file.metadata().map_err(io_err(&lock_path, "fstat"))?;
            match fs::symlink_metadata(&lock_path) {
                Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => {
                    return Ok(JournalLock {
                        file,
                        container_id: container_id.to_owned(),
                        dir: self.dir.clone(),
                        path: self.dir.join(format!("{container_id}{JOURNAL_SUFFIX}")),
                        lock_path,
                    });
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&lock_path, "stat")(e)),
            }
        }
    }

    /// Container ids that currently have a journal file, sorted.
    ///
    /// Only `<id>.json` names with a valid id count: lock files, temp files and quarantined files
    /// are not listed. A missing directory means no journals. Takes no locks, so a listed journal
    /// may be gone by the time the caller locks it.
    ///
    /// # Errors
    ///
    /// [`JournalError::Io`] if the directory exists but cannot be read.
    pub fn list(&self) -> Result<Vec<String>, JournalError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&self.dir, "read dir")(e)),
        };
        let mut ids = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err(&self.dir, "read dir"))?;
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_suffix(JOURNAL_SUFFIX)) else {
                continue;
            };
            if is_valid_container_id(id) {
                ids.push(id.to_owned());
            }
        }
        ids.sort();
        Ok(ids)
    }
}

/// The exclusive lock on one container id's journal; every read and write goes through it.
///
/// Dropping it releases the lock.
#[derive(Debug)]
pub struct JournalLock {
    file: File,
    container_id: String,
    dir: PathBuf,
    path: PathBuf,
    lock_path: PathBuf,
}

impl JournalLock {
    /// The container id this lock is for.
    pub fn container_id(&self) -> &str {
        &self.container_id
    }

    /// The journal file path, `<dir>/<id>.json`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn temp_path(&self) -> PathBuf {
        self.dir
            .join(format!(".{}.tmp-{}", self.container_id, std::process::id()))
    }

    /// The record for this container, or `None` if there is no journal file.
    ///
    /// # Errors
    ///
    /// [`JournalError::Corrupt`] if the file exists but does not parse as `T` (empty, truncated,
    /// garbage); [`JournalError::Io`] if it cannot be opened or read.
    pub fn read<T: DeserializeOwned>(&self) -> Result<Option<T>, JournalError> {
        let mut file = match OpenOptions::new()
            .read(true)
            .custom_flags(nofollow())
            .open(&self.path)
        {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&self.path, "open")(e)),
        };
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(io_err(&self.path, "read"))?;
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| JournalError::Corrupt {
                path: self.path.clone(),
                reason: e.to_string(),
            })
    }

    /// Replaces the record atomically: writes a temp file (mode 0600) in the journal directory and
    /// renames it over the journal file.
    ///
    /// Readers, and a later run after this process is killed, see the old record or the new one,
    /// never a mix. The temp file is removed on any error. No fsync: call [`sync`](Self::sync) when
    /// the record must survive a power loss.
    ///
    /// # Errors
    ///
    /// [`JournalError::Io`] if the record cannot be serialized (op `"serialize"`) or the temp file
    /// cannot be written or renamed; the journal file is then unchanged.
    pub fn write<T: Serialize>(&self, rec: &T) -> Result<(), JournalError> {
        let bytes =
            serde_json::to_vec(rec).map_err(|e| io_err(&self.path, "serialize")(e.into()))?;
        let tmp = self.temp_path();
        let result = write_new_file(&tmp, &bytes)
            .and_then(|()| fs::rename(&tmp, &self.path).map_err(io_err(&self.path, "rename")));
        if result.is_err()
            && let Err(e) = fs::remove_file(&tmp)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(path = %tmp.display(), error = %e, "journal: cannot remove temp file");
        }
        result
    }

    /// Makes the last change durable: fsyncs the journal file (if there is one) and the directory.
    ///
    /// Without a journal file only the directory is synced, which makes a preceding
    /// [`quarantine`](Self::quarantine) durable.
    ///
    /// # Errors
    ///
    /// [`JournalError::Io`] if the file or directory cannot be opened or synced.
    pub fn sync(&self) -> Result<(), JournalError> {
        match File::open(&self.path) {
            Ok(file) => file.sync_all().map_err(io_err(&self.path, "fsync"))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&self.path, "open")(e)),
        }
        File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(io_err(&self.dir, "fsync dir"))
    }

    /// Moves the journal file aside to `<dir>/<id>.corrupt-<unix-nanos>`, kept for the operator,
    /// and returns the new path. Afterwards [`read`](Self::read) returns `None` and
    /// [`Journal::list`] no longer shows this id.
    ///
    /// # Errors
    ///
    /// [`JournalError::Io`] if the rename fails, including when there is no journal file.
    pub fn quarantine(&self) -> Result<PathBuf, JournalError> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let target = self
            .dir
            .join(format!("{}.corrupt-{nanos}", self.container_id));
        fs::rename(&self.path, &target).map_err(io_err(&self.path, "quarantine"))?;
        Ok(target)
    }

    /// Deletes the journal file and the lock file (the container is gone), then releases the lock.
    ///
    /// Missing files are not an error, so a repeated DEL succeeds. Both files are deleted while
    /// the lock is still held; processes waiting in [`Journal::lock`] then notice the lock file
    /// they waited on is gone and lock a fresh one.
    ///
    /// # Errors
    ///
    /// [`JournalError::Io`] if a file exists but cannot be deleted. The lock file is kept if the
    /// journal file could not be deleted.
    pub fn remove(self) -> Result<(), JournalError> {
        remove_if_exists(&self.path)?;
        remove_if_exists(&self.lock_path)
        // `self` drops here, releasing the lock after both files are gone.
    }
}

impl Drop for JournalLock {
    fn drop(&mut self) {
        // Closing the file would release the lock too, but only once every duplicate of the
        // descriptor (e.g. in a child between fork and exec) is closed; unlock explicitly.
        if let Err(e) = self.file.unlock() {
            tracing::warn!(path = %self.lock_path.display(), error = %e, "journal: cannot unlock");
        }
    }
}

/// Creates `path` (mode 0600, never following a symlink) and writes `bytes` to it. A stale file
/// at `path` (left by a killed process with the same pid) is replaced.
fn write_new_file(path: &Path, bytes: &[u8]) -> Result<(), JournalError> {
    remove_if_exists(path)?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
        .map_err(io_err(path, "create"))?;
    file.write_all(bytes).map_err(io_err(path, "write"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    use std::sync::{Arc, mpsc};
    use std::thread;
    use std::time::{Duration, Instant};

    /// A unique directory under the system temp dir, removed on drop (also when a test fails).
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            static COUNTER: AtomicU32 = AtomicU32::new(0);
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            TempDir(std::env::temp_dir().join(format!(
                "plexus-journal-test-{}-{}-{nanos}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            )))
        }

        /// The journal dir: a not-yet-existing subdirectory, so `lock` has to create it.
        fn journal(&self) -> Journal {
            Journal::new(self.0.join("journal"))
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
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
        let tmp = TempDir::new();
        let j = tmp.journal();
        let l = j.lock(ID).unwrap();
        assert_eq!(l.container_id(), ID);
        assert_eq!(l.path(), j.dir().join(format!("{ID}.json")));
        l.write(&rec(1)).unwrap();
        assert_eq!(l.read::<Rec>().unwrap(), Some(rec(1)));
        l.write(&rec(2)).unwrap();
        l.sync().unwrap();
        assert_eq!(l.read::<Rec>().unwrap(), Some(rec(2)));
        drop(l);
        // Survives the lock being dropped and taken again; no temp file left behind.
        assert_eq!(j.lock(ID).unwrap().read::<Rec>().unwrap(), Some(rec(2)));
        assert_eq!(names(j.dir()), [format!("{ID}.json"), format!("{ID}.lock")]);
    }

    #[test]
    fn read_missing_is_none() {
        let tmp = TempDir::new();
        let l = tmp.journal().lock(ID).unwrap();
        assert_eq!(l.read::<Rec>().unwrap(), None);
        l.sync().unwrap();
    }

    #[test]
    fn corrupt_files_are_reported_and_quarantined() {
        let cases: &[(&str, &[u8])] = &[
            ("empty", b""),
            ("truncated", br#"{"attachments":["net1"],"do"#),
            ("garbage", b"\x00\xff not json"),
            ("wrong shape", br#"{"attachments":"net1"}"#),
        ];
        for (name, content) in cases {
            let tmp = TempDir::new();
            let j = tmp.journal();
            let l = j.lock(ID).unwrap();
            fs::write(l.path(), content).unwrap();
            match l.read::<Rec>() {
                Err(JournalError::Corrupt { path, .. }) => assert_eq!(path, l.path(), "{name}"),
                other => panic!("{name}: expected Corrupt, got {other:?}"),
            }
            assert_eq!(j.list().unwrap(), [ID], "{name}");

            let moved = l.quarantine().unwrap();
            let moved_name = moved.file_name().unwrap().to_str().unwrap();
            assert!(
                moved_name.starts_with(&format!("{ID}.corrupt-")),
                "{name}: {moved_name}"
            );
            assert_eq!(moved.parent(), Some(j.dir()), "{name}");
            assert_eq!(fs::read(&moved).unwrap(), *content, "{name}");
            assert!(j.list().unwrap().is_empty(), "{name}");
            assert_eq!(l.read::<Rec>().unwrap(), None, "{name}");
            l.sync().unwrap();
        }
    }

    #[test]
    fn quarantine_without_journal_is_an_error() {
        let tmp = TempDir::new();
        let l = tmp.journal().lock(ID).unwrap();
        assert!(matches!(
            l.quarantine(),
            Err(JournalError::Io {
                op: "quarantine",
                ..
            })
        ));
    }

    #[test]
    fn modes_are_private() {
        let tmp = TempDir::new();
        let j = tmp.journal();
        let l = j.lock(ID).unwrap();
        l.write(&rec(1)).unwrap();
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
        let tmp = TempDir::new();
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
        let tmp = TempDir::new();
        let j = tmp.journal();
        assert!(j.list().unwrap().is_empty(), "missing dir lists nothing");
        for id in ["b-id", "a.id"] {
            j.lock(id).unwrap().write(&rec(1)).unwrap();
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
        let tmp = TempDir::new();
        let j = tmp.journal();
        let l = j.lock(ID).unwrap();
        l.write(&rec(1)).unwrap();
        l.remove().unwrap();
        assert!(names(j.dir()).is_empty());
        assert!(j.list().unwrap().is_empty());
        // Removing again (a second DEL) finds nothing and succeeds.
        let l = j.lock(ID).unwrap();
        assert_eq!(l.read::<Rec>().unwrap(), None);
        l.remove().unwrap();
        assert!(names(j.dir()).is_empty());
    }

    #[test]
    fn write_failure_leaves_old_journal_and_no_temp_file() {
        let tmp = TempDir::new();
        let j = tmp.journal();
        let l = j.lock(ID).unwrap();
        l.write(&rec(1)).unwrap();
        // Make the rename fail: a non-empty directory cannot be replaced by a file.
        fs::remove_file(l.path()).unwrap();
        fs::create_dir(l.path()).unwrap();
        fs::write(l.path().join("x"), b"").unwrap();
        assert!(matches!(
            l.write(&rec(2)),
            Err(JournalError::Io { op: "rename", .. })
        ));
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
        let tmp = TempDir::new();
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
                l.write(&rec(2)).unwrap();
            })
        };
        wait_until_blocked_on(&j.dir().join(format!("{ID}.lock")));
        assert!(rx.try_recv().is_err(), "second locker got in while held");
        first.write(&rec(1)).unwrap();
        released.store(true, Ordering::SeqCst);
        drop(first);
        assert!(rx.recv_timeout(Duration::from_secs(10)).unwrap());
        waiter.join().unwrap();
        assert_eq!(j.lock(ID).unwrap().read::<Rec>().unwrap(), Some(rec(2)));
    }

    #[test]
    fn different_ids_do_not_wait() {
        let tmp = TempDir::new();
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
        let tmp = TempDir::new();
        let j = tmp.journal();
        let lock_path = j.dir().join(format!("{ID}.lock"));
        let a = j.lock(ID).unwrap();
        a.write(&rec(1)).unwrap();
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
        assert_eq!(b.read::<Rec>().unwrap(), None);
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
}
