//! Crash-safe on-disk record of attachments per container id, with a file lock.
//!
//! Layout under the journal directory (mode 0700, files 0600):
//!
//! - `<id>.json`: the record's versions, one JSON object per line, each write appended (no new
//!   inode, no rename: an ADD writes it two or three times). The last line that parses is the
//!   record, so a process killed mid-write leaves the old record or the new one, never a partial
//!   one. Past [`COMPACT_AT`] bytes a write replaces the file with just the new version (temp
//!   file, then rename).
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
/// A journal file this long is rewritten with only the newest record (a DEL that keeps failing
/// appends one per retry).
pub const COMPACT_AT: u64 = 64 << 10;
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

    /// The record for this container (the newest version that parses), or `None` if there is
    /// no journal file.
    ///
    /// # Errors
    ///
    /// [`JournalError::Corrupt`] if the file exists but no line of it parses as `T` (empty,
    /// truncated, garbage); [`JournalError::Io`] if it cannot be opened or read.
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
        newest(&bytes)
            .map(Some)
            .map_err(|reason| JournalError::Corrupt {
                path: self.path.clone(),
                reason,
            })
    }

    /// Records a new version: appends it as one line (mode 0600 when the file is new; a line
    /// torn by a crash is skipped by [`read`](Self::read)), or, once the file has reached
    /// [`COMPACT_AT`] bytes, replaces the file with just this version (temp file, then rename).
    ///
    /// Readers, and a later run after this process is killed, see the old record or the new one,
    /// never a mix. No fsync: call [`sync`](Self::sync) when the record must survive a power loss.
    ///
    /// # Errors
    ///
    /// [`JournalError::Io`] if the record cannot be serialized (op `"serialize"`) or the file
    /// cannot be opened, appended to, written or renamed; the record read back is then the old one.
    pub fn write<T: Serialize>(&self, rec: &T) -> Result<(), JournalError> {
        // A leading newline ends a line torn by an earlier crash, so this one stands alone.
        let mut bytes = vec![b'\n'];
        serde_json::to_writer(&mut bytes, rec)
            .map_err(|e| io_err(&self.path, "serialize")(e.into()))?;
        bytes.push(b'\n');
        let mut file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(FILE_MODE)
            .custom_flags(nofollow())
            .open(&self.path)
            .map_err(io_err(&self.path, "open"))?;
        let len = file.metadata().map_err(io_err(&self.path, "stat"))?.len();
        if len < COMPACT_AT {
            return file.write_all(&bytes).map_err(io_err(&self.path, "append"));
        }
        drop(file);
        let tmp = self.temp_path();
        let result = write_new_file(&tmp, &bytes[1..])
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

/// The newest version in a journal file's bytes: the last line that parses as `T` (lines a crash
/// tore are skipped). The error says why the last non-empty line did not parse, or that there
/// is none.
///
/// # Errors
/// No line parses.
pub fn newest<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    newest_line(bytes).map(|(_, rec)| rec)
}

/// [`newest`], with the line it was read from (for showing the record as written).
///
/// # Errors
/// No line parses.
pub fn newest_line<T: DeserializeOwned>(bytes: &[u8]) -> Result<(&[u8], T), String> {
    let mut first_error = None;
    for line in bytes.rsplit(|&b| b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice(line) {
            Ok(rec) => return Ok((line, rec)),
            Err(e) => {
                first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    Err(first_error.unwrap_or_else(|| "empty journal file".into()))
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
mod tests;
