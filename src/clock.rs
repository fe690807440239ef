//! The clock seam: record timestamps and quarantine names come from a [`Clock`], so tests can fix
//! time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where plexus reads the time.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> SystemTime;

    /// Now, as seconds since the Unix epoch (0 for a clock before 1970).
    fn unix_seconds(&self) -> u64 {
        self.since_epoch().as_secs()
    }

    /// Now, as nanoseconds since the Unix epoch (0 for a clock before 1970).
    fn unix_nanos(&self) -> u128 {
        self.since_epoch().as_nanos()
    }

    /// Time since the Unix epoch.
    fn since_epoch(&self) -> Duration {
        self.now().duration_since(UNIX_EPOCH).unwrap_or_default()
    }
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that always says the same time (tests).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub SystemTime);

impl Clock for FixedClock {
    fn now(&self) -> SystemTime {
        self.0
    }
}
