//! host-local's lease store, byte for byte the reference's: a directory per network under the
//! data directory, one file per address named by the address holding `<container id>\r\n<ifname>`
//! (older releases wrote only the id), `last_reserved_ip.<range set index>` holding the last
//! address handed out, and the file `lock` whose `flock` every ADD, DEL and CHECK holds. The
//! reference binary and plexus can take turns on the same store.

use std::fs::{self, DirBuilder, File, OpenOptions, TryLockError};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::range::Addr;
use crate::delegate::{Cancel, DelegateError};

const LAST_RESERVED: &str = "last_reserved_ip.";
const LINE_BREAK: &str = "\r\n";

/// One network's store, locked.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    _lock: File,
}

/// Why the store could not be used (always reported with code 999, as the reference does).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file system call failed.
    #[error("{what} {}: {source}", .path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// Another ADD or DEL held the lock past the delegate timeout.
    #[error("the lock {} was held by another call for {}s", .0.display(), .1.as_secs())]
    Busy(PathBuf, Duration),
    /// The call was cancelled while it waited for the lock.
    #[error("cancelled")]
    Cancelled,
}

impl From<StoreError> for DelegateError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Cancelled => DelegateError::Cancelled,
            StoreError::Busy(_, d) => DelegateError::Timeout {
                secs: d.as_secs_f64(),
            },
            e @ StoreError::Io { .. } => super::super::internal(e.to_string()),
        }
    }
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

impl Store {
    /// Makes `data_dir/network` (mode 0755, as the reference) and takes its lock, waiting at most
    /// `wait` and giving up when `cancel` is thrown.
    ///
    /// # Errors
    /// [`StoreError`] when the directory or lock file cannot be made, or the lock not taken.
    pub fn open(
        data_dir: &Path,
        network: &str,
        wait: Duration,
        cancel: Option<&Cancel>,
    ) -> Result<Store, StoreError> {
        let dir = data_dir.join(network);
        DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&dir)
            .map_err(io("mkdir", &dir))?;
        let path = dir.join("lock");
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .mode(0o750)
            .custom_flags(crate::journal::nofollow())
            .open(&path)
            .map_err(io("open", &path))?;
        let deadline = Instant::now() + wait;
        // A blocking flock could be neither cancelled nor bounded; holders keep the lock for
        // well under a millisecond, so waiters poll (1 ms, doubling to 4 ms).
        let mut pause = Duration::from_millis(1);
        loop {
            match lock.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => return Err(io("flock", &path)(e)),
            }
            if cancel.is_some_and(Cancel::is_cancelled) {
                return Err(StoreError::Cancelled);
            }
            if Instant::now() >= deadline {
                return Err(StoreError::Busy(path, wait));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(4));
        }
        Ok(Store { dir, _lock: lock })
    }

    /// Takes `a` for `id`/`ifname`: false when another holds it. Records it as the last
    /// address reserved in range set `set`.
    ///
    /// # Errors
    /// [`StoreError::Io`] when a file cannot be written (the lease is not left behind).
    pub fn reserve(&self, id: &str, ifname: &str, a: Addr, set: usize) -> Result<bool, StoreError> {
        let path = self.dir.join(a.to_string());
        let mut f = match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(io("create", &path)(e)),
        };
        let written = f
            .write_all(format!("{}{LINE_BREAK}{ifname}", id.trim()).as_bytes())
            .map_err(io("write", &path))
            .and_then(|()| {
                let last = self.dir.join(format!("{LAST_RESERVED}{set}"));
                fs::write(&last, a.to_string()).map_err(io("write", &last))
            });
        if let Err(e) = written {
            let _ = fs::remove_file(&path);
            return Err(e);
        }
        Ok(true)
    }

    /// The last address reserved in range set `set`, if it is recorded and readable.
    pub fn last_reserved(&self, set: usize) -> Option<Addr> {
        let path = self.dir.join(format!("{LAST_RESERVED}{set}"));
        match fs::read_to_string(&path) {
            Ok(s) => s.parse().ok().map(Addr::of),
            Err(e) => {
                if e.kind() != ErrorKind::NotFound {
                    tracing::warn!(path = %path.display(), error = %e, "reading the last reserved address");
                }
                None
            }
        }
    }

    /// Every lease file (anywhere under the network's directory) whose content, trimmed, is one
    /// of `keys`, with the address its name gives (if it is one).
    fn matching(&self, keys: &[&str]) -> Result<Vec<(PathBuf, Option<Addr>)>, StoreError> {
        let mut out = Vec::new();
        let mut dirs = vec![self.dir.clone()];
        let mut root = true;
        while let Some(d) = dirs.pop() {
            let entries = match fs::read_dir(&d) {
                Ok(e) => e,
                Err(e) if root => return Err(io("read", &d)(e)),
                Err(_) => continue,
            };
            root = false;
            for entry in entries.flatten() {
                let path = entry.path();
                match entry.file_type() {
                    Ok(t) if t.is_dir() => dirs.push(path),
                    Ok(_) => {
                        if fs::read(&path)
                            .is_ok_and(|b| keys.contains(&String::from_utf8_lossy(&b).trim()))
                        {
                            let ip = entry.file_name().to_str().and_then(|n| n.parse().ok());
                            out.push((path, ip.map(Addr::of)));
                        }
                    }
                    Err(_) => {}
                }
            }
        }
        Ok(out)
    }

    fn key(id: &str, ifname: &str) -> String {
        format!("{}{LINE_BREAK}{ifname}", id.trim())
    }

    /// The addresses `id`/`ifname` holds (and those an older release recorded for `id` alone).
    ///
    /// # Errors
    /// [`StoreError::Io`] when the directory cannot be read.
    pub fn held(&self, id: &str, ifname: &str) -> Result<Vec<Addr>, StoreError> {
        let key = Self::key(id, ifname);
        let found = self.matching(&[&key, id.trim()])?;
        Ok(found.into_iter().filter_map(|(_, a)| a).collect())
    }

    /// True when `id`/`ifname` holds an address (or, failing that, `id` in an older release's
    /// format).
    ///
    /// # Errors
    /// [`StoreError::Io`] when the directory cannot be read.
    pub fn holds(&self, id: &str, ifname: &str) -> Result<bool, StoreError> {
        Ok(!self
            .matching(&[&Self::key(id, ifname), id.trim()])?
            .is_empty())
    }

    /// Removes every lease of `id`/`ifname`; when there is none, those an older release wrote
    /// for `id` alone. A file that cannot be removed is skipped (released as far as possible).
    ///
    /// # Errors
    /// [`StoreError::Io`] when the directory cannot be read.
    pub fn release(&self, id: &str, ifname: &str) -> Result<(), StoreError> {
        let mut found = Self::remove_all(self.matching(&[&Self::key(id, ifname)])?);
        if !found {
            found = Self::remove_all(self.matching(&[id.trim()])?);
        }
        tracing::debug!(found, "host-local release");
        Ok(())
    }

    fn remove_all(files: Vec<(PathBuf, Option<Addr>)>) -> bool {
        let mut any = false;
        for (p, _) in files {
            any |= fs::remove_file(&p).is_ok();
        }
        any
    }
}
