//! The observer seam: who wants to know how long each attachment's delegate call took and how
//! it ended (the plugin reports it to the node agent). No-op by default.

use std::time::Duration;

use super::Step;
use crate::cni::env::Command;

/// Told about every delegate call of a step, after it ends.
pub trait Observer: Sync {
    /// `step`'s `command` (ADD, or DEL for DEL and rollback) ran for `elapsed`; `ok` when it
    /// succeeded.
    fn step(&self, command: Command, step: &Step, elapsed: Duration, ok: bool);
}

/// Observes nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoObserver;

impl Observer for NoObserver {
    fn step(&self, _: Command, _: &Step, _: Duration, _: bool) {}
}
