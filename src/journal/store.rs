//! The journal seam: [`Store`] and [`Held`], what the engine needs of a journal, implemented by
//! the on-disk [`Journal`] (tests use `memory::MemoryStore`).

use std::path::PathBuf;

use super::{Journal, JournalError, JournalLock};

/// Where records are kept, one per container id: the seam the engine's tests substitute
/// ([`Journal`] on disk in the product).
pub trait Store: Send + Sync {
    /// Blocks until this process holds the exclusive lock on `container_id`'s record.
    ///
    /// # Errors
    /// As [`Journal::lock`].
    fn lock(&self, container_id: &str) -> Result<Box<dyn Held + '_>, JournalError>;

    /// Container ids that have a record, sorted.
    ///
    /// # Errors
    /// As [`Journal::list`].
    fn list(&self) -> Result<Vec<String>, JournalError>;
}

/// One container's record, locked: what [`JournalLock`] offers.
pub trait Held: Send + Sync {
    /// The container id.
    fn container_id(&self) -> &str;
    /// The newest version; `None` when there is no record.
    ///
    /// # Errors
    /// As [`JournalLock::read`].
    fn read(&self) -> Result<Option<Vec<u8>>, JournalError>;
    /// Records a new version.
    ///
    /// # Errors
    /// As [`JournalLock::write`].
    fn write(&self, line: &[u8]) -> Result<(), JournalError>;
    /// Makes the last version durable.
    ///
    /// # Errors
    /// As [`JournalLock::sync`].
    fn sync(&self) -> Result<(), JournalError>;
    /// Moves the record aside for the operator.
    ///
    /// # Errors
    /// As [`JournalLock::quarantine`].
    fn quarantine(&self, nanos: u128) -> Result<PathBuf, JournalError>;
    /// Deletes the record and releases the lock.
    ///
    /// # Errors
    /// As [`JournalLock::remove`].
    fn remove(self: Box<Self>) -> Result<(), JournalError>;
}

impl Store for Journal {
    fn lock(&self, container_id: &str) -> Result<Box<dyn Held + '_>, JournalError> {
        Ok(Box::new(Journal::lock(self, container_id)?))
    }
    fn list(&self) -> Result<Vec<String>, JournalError> {
        Journal::list(self)
    }
}

impl Held for JournalLock {
    fn container_id(&self) -> &str {
        JournalLock::container_id(self)
    }
    fn read(&self) -> Result<Option<Vec<u8>>, JournalError> {
        JournalLock::read(self)
    }
    fn write(&self, line: &[u8]) -> Result<(), JournalError> {
        JournalLock::write(self, line)
    }
    fn sync(&self) -> Result<(), JournalError> {
        JournalLock::sync(self)
    }
    fn quarantine(&self, nanos: u128) -> Result<PathBuf, JournalError> {
        JournalLock::quarantine(self, nanos)
    }
    fn remove(self: Box<Self>) -> Result<(), JournalError> {
        JournalLock::remove(*self)
    }
}
