//! The only code that enters a network namespace: a closure runs on a dedicated, short-lived
//! thread that moves into the namespace first (never a tokio worker or a pooled thread), so no
//! other code ever runs in a namespace it did not ask for.

use std::fs::File;
use std::path::Path;

/// Runs `f` on a new thread that has entered the network namespace at `path`
/// (e.g. `/run/netns/x` or `/proc/PID/ns/net`). Sockets created inside stay in that namespace
/// after the thread exits.
///
/// # Errors
/// The namespace cannot be opened or entered, or the thread cannot be started or panicked.
pub fn run_in<T: Send + 'static>(
    path: &Path,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<T> {
    let ns = File::open(path)?;
    let handle = std::thread::Builder::new()
        .name("plexus-netns".into())
        .spawn(move || -> std::io::Result<T> {
            rustix::thread::move_into_link_name_space(
                std::os::fd::AsFd::as_fd(&ns),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )?;
            Ok(f())
        })?;
    handle
        .join()
        .map_err(|_| std::io::Error::other("thread in network namespace panicked"))?
}
