//! The only code that enters a network namespace: each entry gets a dedicated, never reused std
//! thread that `setns`es into the namespace, runs one closure and exits.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};

/// Why a namespace could not be entered.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// The namespace path does not exist (the pod is gone, or DEL came twice).
    #[error("network namespace {path:?} does not exist")]
    NotFound {
        /// The path given.
        path: PathBuf,
    },
    /// The path exists but could not be opened.
    #[error("opening network namespace {path:?}: {source}")]
    Open {
        /// The path given.
        path: PathBuf,
        /// The open error.
        source: io::Error,
    },
    /// `setns` refused the file (not a network namespace, or no permission).
    #[error("entering network namespace {path:?}: {source}")]
    Enter {
        /// The path given.
        path: PathBuf,
        /// The setns error.
        source: io::Error,
    },
}

/// What a `CNI_NETNS` path is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// A namespace file (on nsfs): usable.
    Namespace,
    /// Nothing at the path: the pod's namespace is gone.
    Missing,
    /// Something that is not a namespace (a plain file a runtime left behind when the bind mount
    /// went away, a directory...): no plugin can enter it.
    NotANamespace(String),
}

/// nsfs's magic number (`NSFS_MAGIC`).
const NSFS_MAGIC: i64 = 0x6e73_6673;

/// What is at `path`, without entering it.
pub fn probe(path: &Path) -> Probe {
    match rustix::fs::statfs(path) {
        Ok(st) if st.f_type == NSFS_MAGIC => Probe::Namespace,
        Ok(st) => Probe::NotANamespace(format!(
            "{} is not a namespace file (filesystem type {:#x})",
            path.display(),
            st.f_type
        )),
        Err(rustix::io::Errno::NOENT) => Probe::Missing,
        Err(e) => Probe::NotANamespace(format!("{}: {e}", path.display())),
    }
}

/// Opens a network namespace file (`/proc/<pid>/ns/net`, `/run/netns/<name>`, ...), e.g. to hand
/// its descriptor to the kernel as a link's target namespace.
///
/// # Errors
/// [`NetnsError::NotFound`] when the path does not exist, [`NetnsError::Open`] otherwise.
pub fn open(path: &Path) -> Result<File, NetnsError> {
    File::open(path).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            NetnsError::NotFound {
                path: path.to_path_buf(),
            }
        } else {
            NetnsError::Open {
                path: path.to_path_buf(),
                source,
            }
        }
    })
}

/// Runs `f` on a new thread that first moves into the network namespace at `path`; the thread
/// ends with `f`, so no other code ever runs in that namespace by accident. The calling thread
/// never changes namespace. `f` may borrow from the caller.
///
/// # Errors
/// [`NetnsError`] when the namespace cannot be opened or entered.
pub fn run_in<T, F>(path: &Path, f: F) -> Result<T, NetnsError>
where
    T: Send,
    F: FnOnce() -> T + Send,
{
    let file = open(path)?;
    std::thread::scope(|s| {
        let handle = std::thread::Builder::new()
            .name("plexus-netns".into())
            .spawn_scoped(s, move || {
                move_into_link_name_space(file.as_fd(), Some(LinkNameSpaceType::Network)).map_err(
                    |e| NetnsError::Enter {
                        path: path.to_path_buf(),
                        source: e.into(),
                    },
                )?;
                drop(file);
                Ok(f())
            })
            .map_err(|source| NetnsError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        // A panic inside is a bug: it goes on to the caller.
        handle
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_namespace_is_not_found() {
        let err = run_in(Path::new("/run/netns/plexus-no-such-ns"), || ()).unwrap_err();
        assert!(matches!(err, NetnsError::NotFound { .. }), "{err}");
    }

    #[test]
    fn a_file_that_is_not_a_namespace_is_refused() {
        let err = run_in(Path::new("/proc/self/status"), || ()).unwrap_err();
        assert!(matches!(err, NetnsError::Enter { .. }), "{err}");
    }

    #[test]
    fn probe_table() {
        let file = std::env::temp_dir().join(format!("plexus-probe-{}", std::process::id()));
        std::fs::write(&file, b"").unwrap();
        let rows: &[(&str, &Path, fn(&Probe) -> bool)] = &[
            ("own namespace", Path::new("/proc/self/ns/net"), |p| {
                *p == Probe::Namespace
            }),
            ("missing", Path::new("/run/netns/plexus-no-such-ns"), |p| {
                *p == Probe::Missing
            }),
            ("regular file", &file, |p| {
                matches!(p, Probe::NotANamespace(_))
            }),
            ("directory", Path::new("/proc"), |p| {
                matches!(p, Probe::NotANamespace(_))
            }),
        ];
        for (name, path, ok) in rows {
            let got = probe(path);
            assert!(ok(&got), "{name}: {got:?}");
        }
        let _ = std::fs::remove_file(&file);
    }

    #[test]
    fn own_namespace_runs_closure_and_returns_its_value() {
        let v = [1, 2, 3];
        let got = run_in(Path::new("/proc/self/ns/net"), || v.iter().sum::<i32>()).unwrap();
        assert_eq!(got, 6);
    }
}
