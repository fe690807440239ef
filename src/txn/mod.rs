//! The attach transaction: a journal record of steps ([`record`]), read back from any format
//! plexus wrote ([`legacy`]), and one [`runner`] that ADDs steps as their schedule allows and
//! releases (DELs) started steps backwards through the same schedule.

pub mod legacy;
pub mod observe;
pub mod record;
pub mod runner;

use crate::clock::Clock;
use crate::journal::{Held, JournalError};
pub use record::{PodId, Record, RecordError, State, Step};
pub use runner::Runner;

/// What a locked journal entry holds.
#[derive(Debug)]
pub enum Loaded {
    /// A usable record.
    Record(Record),
    /// No record.
    Missing,
    /// A record that cannot be used, and why: the caller rebuilds what the pod had from the
    /// configuration and, once that is released, moves it aside with [`Txn::quarantine`].
    Corrupt(String),
}

/// A container's record under its journal lock: what is on disk is what [`Txn::write`] last
/// wrote of `rec`.
pub struct Txn<'a> {
    /// The record in memory.
    pub rec: Record,
    held: Box<dyn Held + 'a>,
}

impl std::fmt::Debug for Txn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Txn").field("rec", &self.rec).finish()
    }
}

/// Reads the record under a lock.
///
/// # Errors
/// [`JournalError::Io`] when the file cannot be read (a corrupt one is [`Loaded::Corrupt`]).
pub fn load(held: &dyn Held) -> Result<Loaded, JournalError> {
    match held.read() {
        Ok(None) => Ok(Loaded::Missing),
        Ok(Some(line)) => Ok(match Record::decode(&line) {
            Ok(r) => Loaded::Record(r),
            Err(e) => Loaded::Corrupt(e.to_string()),
        }),
        Err(JournalError::Corrupt { reason, .. }) => Ok(Loaded::Corrupt(reason.to_string())),
        Err(e) => Err(e),
    }
}

impl<'a> Txn<'a> {
    /// A transaction over `rec`, held under `held`'s lock (nothing written yet).
    pub fn new(rec: Record, held: Box<dyn Held + 'a>) -> Txn<'a> {
        Txn { rec, held }
    }

    /// The lock, for the caller to read, sync or hand back.
    pub fn held(&self) -> &dyn Held {
        &*self.held
    }

    /// Writes the record as it is now.
    ///
    /// # Errors
    /// [`JournalError`] when it cannot be written (the previous version stays).
    pub fn write(&self) -> Result<(), JournalError> {
        write(&*self.held, &self.rec)
    }

    /// Makes the last write durable.
    ///
    /// # Errors
    /// [`JournalError`] when the fsync fails.
    pub fn sync(&self) -> Result<(), JournalError> {
        self.held.sync()
    }

    /// Ends the transaction: the record is removed (nothing is left to release) and the lock
    /// released.
    ///
    /// # Errors
    /// [`JournalError`] when the files cannot be removed.
    pub fn remove(self) -> Result<(), JournalError> {
        self.held.remove()
    }

    /// Ends the transaction keeping what is left to release for a later DEL: the record is
    /// written and made durable.
    ///
    /// # Errors
    /// [`JournalError`] when it cannot be written.
    pub fn keep(self) -> Result<(), JournalError> {
        self.write()?;
        self.held.sync()
    }

    /// Removes the record when every step is released, else keeps it (written and durable).
    ///
    /// # Errors
    /// [`JournalError`] as [`Txn::remove`] or [`Txn::keep`].
    pub fn finish(mut self) -> Result<(), JournalError> {
        if self.rec.all_released() {
            self.remove()
        } else {
            self.rec.complete = false;
            self.keep()
        }
    }

    /// Moves a corrupt record aside for the operator (its name carries the clock's time) and
    /// removes the lock.
    ///
    /// # Errors
    /// [`JournalError`] when the file cannot be moved or the lock removed.
    pub fn quarantine(self, clock: &dyn Clock, reason: &str) -> Result<(), JournalError> {
        let moved = self.held.quarantine(clock.unix_nanos())?;
        tracing::error!(
            container_id = self.held.container_id(),
            reason,
            moved_to = %moved.display(),
            "journal was corrupt; what it held was rebuilt from the configuration and released; file kept for inspection"
        );
        self.held.remove()
    }
}

/// Writes `rec` under `held`.
///
/// # Errors
/// [`JournalError`] when it cannot be serialised or written.
pub fn write(held: &dyn Held, rec: &Record) -> Result<(), JournalError> {
    let line = rec.encode().map_err(|e| JournalError::Io {
        path: std::path::PathBuf::from(held.container_id()),
        op: "serialize",
        source: e.into(),
    })?;
    held.write(&line)
}
