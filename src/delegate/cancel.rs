//! Stopping delegates in flight: when one attachment of a parallel ADD fails, the others still
//! running are killed (with their process groups) instead of being waited for.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::event::{EventfdFlags, eventfd};

/// A one-way switch that running delegates watch (its descriptor becomes readable when
/// cancelled, so the executor's `poll` loop wakes at once).
#[derive(Debug)]
pub struct Cancel {
    fired: AtomicBool,
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
            fd: eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK).ok(),
        }
    }

    /// Throws the switch (idempotent).
    pub fn cancel(&self) {
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
