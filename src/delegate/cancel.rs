//! Stopping delegates in flight: when one attachment of an ADD fails, the others still running
//! get a short grace to finish on their own, then are killed (with their process groups)
//! instead of being waited for to their full timeout.
//!
//! The grace is there because a plugin killed at a random instant can leave state its own DEL
//! cannot find (the reference host-local creates a lease file, then writes the owner into it:
//! killed in between, the lease is anonymous and never released). Plugins finish in
//! milliseconds; only a stuck one is still running when the grace ends.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rustix::event::{EventfdFlags, eventfd};

/// How long a delegate still running when its ADD is cancelled may go on before it is killed.
pub const GRACE: Duration = Duration::from_secs(2);

/// A one-way switch that running delegates watch (its descriptor becomes readable when
/// cancelled, so the executor's `poll` loop wakes at once).
#[derive(Debug)]
pub struct Cancel {
    fired: AtomicBool,
    at: OnceLock<Instant>,
    fd: Option<OwnedFd>,
}

impl Default for Cancel {
    fn default() -> Self {
        Cancel::new()
    }
}

impl Cancel {
    /// A switch not yet thrown. Without an eventfd (never on Linux ≥ 2.6.27) it still works
    /// for everything that checks [`is_cancelled`](Self::is_cancelled).
    pub fn new() -> Cancel {
        Cancel {
            fired: AtomicBool::new(false),
            at: OnceLock::new(),
            fd: eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK).ok(),
        }
    }

    /// Throws the switch (idempotent).
    pub fn cancel(&self) {
        self.at.get_or_init(Instant::now);
        if !self.fired.swap(true, Ordering::SeqCst)
            && let Some(fd) = &self.fd
        {
            let _ = rustix::io::write(fd, &1u64.to_ne_bytes());
        }
    }

    /// True once thrown.
    pub fn is_cancelled(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }

    /// When a delegate still running must be killed: [`GRACE`] after the switch was thrown.
    pub fn kill_at(&self) -> Option<Instant> {
        self.at.get().map(|t| *t + GRACE)
    }

    /// The descriptor to poll for readability.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.fd.as_ref().map(AsFd::as_fd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_wakes_a_poll() {
        let c = Cancel::new();
        assert!(!c.is_cancelled());
        let ready = |c: &Cancel| {
            let fd = c.fd().unwrap();
            let mut fds = [rustix::event::PollFd::new(
                &fd,
                rustix::event::PollFlags::IN,
            )];
            let zero = rustix::event::Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            rustix::event::poll(&mut fds, Some(&zero)).unwrap() == 1
        };
        assert!(!ready(&c));
        c.cancel();
        c.cancel();
        assert!(c.is_cancelled());
        assert!(ready(&c));
    }
}
