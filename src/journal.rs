//! Crash-safe on-disk record of attachments per container id, with a file lock.
//!
//! Layout under the journal directory (mode 0700, files 0600):
//!
//! - `<id>.json`: the record's versions, one line each, each write appended (no new inode, no
//!   rename). The last line is the record. A file that does not end with a complete line (torn
//!   by a power loss, cut short) is corrupt: an older line may name fewer attachments than
//!   exist, so it is never used instead. Past [`COMPACT_AT`] bytes a write replaces the file with
//!   just the new version (temp file, fsync, rename, fsync of the directory).
//! - `<id>.lock`: holds the exclusive `flock` for that container id. Different ids never wait for
//!   each other.
//! - `.<id>.tmp-<pid>`: the temp file of a compacting write in progress.
//! - `<id>.corrupt-<unix-nanos>`: a record that did not parse, moved aside for the operator.
//!
//! [`JournalLock::remove`] deletes the lock file while still holding the lock. A waiter that then
//! gets the lock holds it on a file no longer at the path, so [`Journal::lock`] checks after
//! locking that the locked file is still the one at the path and retries otherwise.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::OFlags;
use std::sync::Mutex;

const DIR_MODE: u32 = 0o700;
const FILE_MODE: u32 = 0o600;
const JOURNAL_SUFFIX: &str = ".json";
/// A journal file this long is rewritten with only the newest record (a DEL that keeps failing
/// appends one per retry).
pub const COMPACT_AT: u64 = 256 << 10;
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
    /// A journal file exists but has no complete newest version.
    #[error("journal: {} is corrupt: {reason}", path.display())]
    Corrupt {
        /// The corrupt journal file.
        path: PathBuf,
        /// What is wrong with it.
        reason: Unreadable,
    },
    /// A record is there but cannot be used (it does not parse, or is from a newer plexus).
    #[error("journal: the record of container {container_id:?} cannot be used: {reason}")]
    Unusable {
        /// The container.
        container_id: String,
        /// Why.
        reason: String,
    },
    /// The container id is not a valid CNI container id, so it cannot name a file.
    #[error(
        "journal: invalid container id {0:?}: must match ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$ and be at most 255 bytes"
    )]
    InvalidId(String),
}

/// Why a journal file holds no usable newest version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unreadable {
    /// Nothing in it.
    #[error("empty journal file")]
    Empty,
    /// It does not end where a complete line ends.
    #[error("the file does not end with a complete line (a torn write or a file cut short)")]
    Torn,
}

fn io_err(path: &Path, op: &'static str) -> impl FnOnce(io::Error) -> JournalError {
    move |source| JournalError::Io {
        path: path.to_path_buf(),
        op,
        source,
    }
}

pub use crate::cni::env::is_valid_container_id;

fn validate_id(id: &str) -> Result<(), JournalError> {
    if is_valid_container_id(id) {
        Ok(())
    } else {
        Err(JournalError::InvalidId(id.to_owned()))
    }
}

/// `O_NOFOLLOW` for `OpenOptions::custom_flags`.
pub(crate) fn nofollow() -> i32 {
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
        // A blocking take waits until it has the lock: it never answers `None`.
        self.take(container_id, true)?
            .ok_or_else(|| JournalError::Io {
                path: self.dir.join(format!("{container_id}{LOCK_SUFFIX}")),
                op: "lock",
                source: io::ErrorKind::WouldBlock.into(),
            })
    }

    /// [`lock`](Self::lock) without waiting: `None` when an ADD, DEL or hot-plug holds it now.
    ///
    /// # Errors
    /// As [`lock`](Self::lock).
    pub fn try_lock(&self, container_id: &str) -> Result<Option<JournalLock>, JournalError> {
        self.take(container_id, false)
    }

    fn take(&self, container_id: &str, wait: bool) -> Result<Option<JournalLock>, JournalError> {
        validate_id(container_id)?;
        DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(&self.dir)
            .map_err(io_err(&self.dir, "create dir"))?;
        self.tighten_dir()?;

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
            if wait {
                file.lock().map_err(io_err(&lock_path, "lock"))?;
            } else {
                match file.try_lock() {
                    Ok(()) => {}
                    Err(fs::TryLockError::WouldBlock) => return Ok(None),
                    Err(fs::TryLockError::Error(e)) => return Err(io_err(&lock_path, "lock")(e)),
                }
            }

            // The holder before us may have removed the lock file (container gone) while we
            // waited; then we hold a lock nobody else will ever look at. Keep it only if it is
            // still the file at the path. `file` stays open during the check, so its inode
            // cannot be reused by a new file meanwhile.
            let held = file.metadata().map_err(io_err(&lock_path, "fstat"))?;
            match fs::symlink_metadata(&lock_path) {
                Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => {
                    return Ok(Some(JournalLock {
                        file,
                        container_id: container_id.to_owned(),
                        dir: self.dir.clone(),
                        path: self.file_of(container_id),
                        lock_path,
                        append: Mutex::new(None),
                    }));
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&lock_path, "stat")(e)),
            }
        }
    }

    /// A journal directory that existed before plexus (or was loosened since) gets the mode
    /// plexus gives one it creates: records hold delegate configs and results.
    fn tighten_dir(&self) -> Result<(), JournalError> {
        let meta = fs::metadata(&self.dir).map_err(io_err(&self.dir, "stat dir"))?;
        let mode = meta.permissions().mode() & 0o7777;
        if mode != DIR_MODE {
            fs::set_permissions(&self.dir, fs::Permissions::from_mode(DIR_MODE))
                .map_err(io_err(&self.dir, "chmod dir"))?;
            tracing::warn!(
                dir = %self.dir.display(),
                was = format!("{mode:o}"),
                "journal directory had a looser mode than 0700; tightened"
            );
        }
        Ok(())
    }

    /// The newest version of `container_id`'s record read WITHOUT its lock: a snapshot for a
    /// reader that only looks (the node agent's hot-plug finds a pod's record this way, then
    /// acts under the lock). `None` when there is no record or it cannot be read now (a write
    /// in progress, a corrupt file).
    pub fn peek(&self, container_id: &str) -> Option<Vec<u8>> {
        validate_id(container_id).ok()?;
        read_newest(&self.file_of(container_id)).ok().flatten()
    }

    /// The journal file of `container_id` (whether or not it exists).
    pub fn file_of(&self, container_id: &str) -> PathBuf {
        self.dir.join(format!("{container_id}{JOURNAL_SUFFIX}"))
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
/// Dropping it releases the lock. It may be shared between threads (the ADD that writes records
/// and the thread that makes them durable): writes, compaction and the choice of the file to
/// fsync are serialised by an internal mutex.
#[derive(Debug)]
pub struct JournalLock {
    file: File,
    container_id: String,
    dir: PathBuf,
    path: PathBuf,
    lock_path: PathBuf,
    /// The journal file opened for appending, once written to.
    append: Mutex<Option<File>>,
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

    fn appender(&self) -> std::sync::MutexGuard<'_, Option<File>> {
        // A poisoned mutex only means another thread panicked mid-write; the file's state is
        // what the kernel says it is, so go on with it.
        self.append
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The newest version of the record (its line, without the newline), or `None` if there is
    /// no journal file.
    ///
    /// # Errors
    ///
    /// [`JournalError::Corrupt`] if the file exists but does not end where a complete line ends
    /// (a torn write, a file cut short) or is empty; [`JournalError::Io`] if it cannot be opened
    /// or read. Whether the line is a valid record is the caller's judgement.
    pub fn read(&self) -> Result<Option<Vec<u8>>, JournalError> {
        read_newest(&self.path)
    }

    /// Records a new version, one line (a newline is added): appended (mode 0600 when the file
    /// is new), or, once the file has reached [`COMPACT_AT`] bytes, the file is replaced by one
    /// holding just this version (temp file, fsync, rename, fsync of the directory: a compaction
    /// is durable at once, so a concurrent [`sync`](Self::sync) of the old file loses nothing).
    ///
    /// An append that fails part-way is cut back off, so the file always ends with a complete
    /// version. No fsync otherwise: call [`sync`](Self::sync) when the record must survive a
    /// power loss.
    ///
    /// # Errors
    ///
    /// [`JournalError::Io`] if the file cannot be opened, appended to, written or renamed; the
    /// record read back is then the previous one.
    pub fn write(&self, line: &[u8]) -> Result<(), JournalError> {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line);
        bytes.push(b'\n');
        let mut guard = self.appender();
        if guard.is_none() {
            let file = OpenOptions::new()
                .append(true)
                .create(true)
                .mode(FILE_MODE)
                .custom_flags(nofollow())
                .open(&self.path)
                .map_err(io_err(&self.path, "open"))?;
            *guard = Some(file);
        }
        let Some(file) = guard.as_mut() else {
            return Err(io_err(&self.path, "open")(io::ErrorKind::NotFound.into()));
        };
        let len = file.metadata().map_err(io_err(&self.path, "stat"))?.len();
        if len < COMPACT_AT {
            if let Err(e) = file.write_all(&bytes) {
                if let Err(t) = file.set_len(len) {
                    tracing::warn!(path = %self.path.display(), error = %t, "journal: cannot cut a failed append back off");
                }
                return Err(io_err(&self.path, "append")(e));
            }
            return Ok(());
        }
        let tmp = self.temp_path();
        let result = write_new_file(&tmp, &bytes)
            .and_then(|()| fs::rename(&tmp, &self.path).map_err(io_err(&self.path, "rename")))
            .and_then(|()| sync_dir(&self.dir));
        if result.is_err()
            && let Err(e) = fs::remove_file(&tmp)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(path = %tmp.display(), error = %e, "journal: cannot remove temp file");
        }
        // Later appends go to the file now at the path.
        *guard = None;
        result
    }

    /// Makes the last change durable: fsyncs the journal file (if there is one) and the
    /// directory (which makes a new file's name, a rename or a removal durable too).
    ///
    /// Safe to call from another thread while [`write`](Self::write) runs: it fsyncs the file
    /// current when it starts; a compaction after that is durable on its own.
    ///
    /// # Errors
    ///
    /// [`JournalError::Io`] if the file or directory cannot be opened or synced.
    pub fn sync(&self) -> Result<(), JournalError> {
        let current = {
            let guard = self.appender();
            match guard.as_ref() {
                Some(f) => Some(f.try_clone().map_err(io_err(&self.path, "dup"))?),
                None => match File::open(&self.path) {
                    Ok(f) => Some(f),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                    Err(e) => return Err(io_err(&self.path, "open")(e)),
                },
            }
        };
        if let Some(file) = current {
            file.sync_all().map_err(io_err(&self.path, "fsync"))?;
        }
        sync_dir(&self.dir)
    }

    /// Moves the journal file aside to `<dir>/<id>.corrupt-<unix-nanos>` (`nanos` from the
    /// caller's clock), kept for the operator, and returns the new path. Afterwards
    /// [`read`](Self::read) returns `None` and [`Journal::list`] no longer shows this id.
    ///
    /// # Errors
    ///
    /// [`JournalError::Io`] if the rename fails, including when there is no journal file.
    pub fn quarantine(&self, nanos: u128) -> Result<PathBuf, JournalError> {
        self.set_aside("corrupt", nanos)
    }

    /// Moves the journal file aside to `<dir>/<id>.<label>-<nanos>` (kept for the operator) and
    /// returns the new path: [`quarantine`](Self::quarantine) with `corrupt`, `plexus release`
    /// with `released`.
    ///
    /// # Errors
    ///
    /// [`JournalError::Io`] if the rename fails, including when there is no journal file.
    pub fn set_aside(&self, label: &str, nanos: u128) -> Result<PathBuf, JournalError> {
        let target = self
            .dir
            .join(format!("{}.{label}-{nanos}", self.container_id));
        let mut guard = self.appender();
        *guard = None;
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
        *self.appender() = None;
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

/// The newest version in a journal file's bytes: its last line. The file must end where a
/// complete line ends: a file torn by a crash mid-write or cut short anywhere may have lost
/// versions naming attachments that exist, so it is corrupt, never read from an older line.
///
/// # Errors
/// Why the bytes hold no usable newest line.
pub fn newest_line(bytes: &[u8]) -> Result<&[u8], Unreadable> {
    if !bytes.is_empty() && !bytes.ends_with(b"\n") {
        return Err(Unreadable::Torn);
    }
    bytes
        .split(|&b| b == b'\n')
        .rev()
        .find(|line| !line.iter().all(u8::is_ascii_whitespace))
        .ok_or(Unreadable::Empty)
}

/// Creates `path` (mode 0600, never following a symlink), writes `bytes` and fsyncs it. A stale
/// file at `path` (left by a killed process with the same pid) is replaced.
fn write_new_file(path: &Path, bytes: &[u8]) -> Result<(), JournalError> {
    remove_if_exists(path)?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .custom_flags(nofollow())
        .open(path)
        .map_err(io_err(path, "create"))?;
    file.write_all(bytes).map_err(io_err(path, "write"))?;
    file.sync_all().map_err(io_err(path, "fsync"))
}

fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir, "fsync dir"))
}

#[cfg(test)]
pub(crate) mod memory;
mod store;
pub use store::{Held, Store};

/// The newest line of the journal file at `path` (not followed if a symlink); `None` when
/// there is no file. See [`JournalLock::read`] for the errors.
fn read_newest(path: &Path) -> Result<Option<Vec<u8>>, JournalError> {
    let mut file = match OpenOptions::new()
        .read(true)
        .custom_flags(nofollow())
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path, "open")(e)),
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(io_err(path, "read"))?;
    newest_line(&bytes)
        .map(|line| Some(line.to_vec()))
        .map_err(|reason| JournalError::Corrupt {
            path: path.to_path_buf(),
            reason,
        })
}

#[cfg(test)]
pub(crate) mod tests;
