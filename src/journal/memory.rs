//! A recording in-memory [`Store`] for the engine's unit tests: every write is kept in order, a
//! write can be made to fail, and the newest version is readable at any moment (a fake executor
//! checks against it that every started attachment is already named on "disk").

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{Held, JournalError, Store};

/// What the store holds for one id.
#[derive(Debug, Default, Clone)]
struct Slot {
    /// The newest version, when there is a record.
    current: Option<Vec<u8>>,
    /// Whether `current` was synced since it was written.
    durable: bool,
}

#[derive(Debug, Default)]
struct Inner {
    slots: BTreeMap<String, Slot>,
    /// Every write, in order: (id, line).
    writes: Vec<(String, Vec<u8>)>,
    /// Quarantined records: (id, line).
    quarantined: Vec<(String, Vec<u8>)>,
    /// The 1-based numbers of the writes that fail (counted over every id).
    fail_writes: Vec<usize>,
    attempts: usize,
}

/// The fake store. Cloning shares the state.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore(Arc<Mutex<Inner>>);

impl MemoryStore {
    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes the `n`th write attempt (1-based, over every id) fail.
    pub fn fail_write(&self, n: usize) {
        self.inner().fail_writes.push(n);
    }

    /// The newest version for `id`.
    pub fn current(&self, id: &str) -> Option<Vec<u8>> {
        self.inner().slots.get(id).and_then(|s| s.current.clone())
    }

    /// True when `id`'s newest version was synced after it was written.
    pub fn durable(&self, id: &str) -> bool {
        self.inner().slots.get(id).is_some_and(|s| s.durable)
    }

    /// Every successful write so far, in order.
    pub fn writes(&self) -> Vec<(String, Vec<u8>)> {
        self.inner().writes.clone()
    }

    /// Replaces `id`'s record with `line` (a record left by an earlier run, or garbage).
    pub fn put(&self, id: &str, line: &[u8]) {
        self.inner().slots.insert(
            id.to_string(),
            Slot {
                current: Some(line.to_vec()),
                durable: true,
            },
        );
    }

    /// Records moved aside as corrupt.
    pub fn quarantined(&self) -> Vec<(String, Vec<u8>)> {
        self.inner().quarantined.clone()
    }

    /// Ids with a record.
    pub fn ids(&self) -> Vec<String> {
        self.inner()
            .slots
            .iter()
            .filter(|(_, s)| s.current.is_some())
            .map(|(k, _)| k.clone())
            .collect()
    }
}

impl Store for MemoryStore {
    fn lock(&self, container_id: &str) -> Result<Box<dyn Held + '_>, JournalError> {
        if !super::is_valid_container_id(container_id) {
            return Err(JournalError::InvalidId(container_id.to_string()));
        }
        Ok(Box::new(MemoryHeld {
            store: self.clone(),
            id: container_id.to_string(),
        }))
    }

    fn list(&self) -> Result<Vec<String>, JournalError> {
        Ok(self.ids())
    }
}

struct MemoryHeld {
    store: MemoryStore,
    id: String,
}

impl MemoryHeld {
    fn path(&self) -> PathBuf {
        PathBuf::from(format!("memory:{}", self.id))
    }
}

impl Held for MemoryHeld {
    fn container_id(&self) -> &str {
        &self.id
    }

    fn read(&self) -> Result<Option<Vec<u8>>, JournalError> {
        Ok(self.store.current(&self.id))
    }

    fn write(&self, line: &[u8]) -> Result<(), JournalError> {
        let mut inner = self.store.inner();
        inner.attempts += 1;
        let n = inner.attempts;
        if inner.fail_writes.contains(&n) {
            return Err(JournalError::Io {
                path: self.path(),
                op: "append",
                source: io::Error::other(format!("injected failure of write {n}")),
            });
        }
        inner.writes.push((self.id.clone(), line.to_vec()));
        inner.slots.insert(
            self.id.clone(),
            Slot {
                current: Some(line.to_vec()),
                durable: false,
            },
        );
        Ok(())
    }

    fn sync(&self) -> Result<(), JournalError> {
        if let Some(s) = self.store.inner().slots.get_mut(&self.id) {
            s.durable = true;
        }
        Ok(())
    }

    fn quarantine(&self, nanos: u128) -> Result<PathBuf, JournalError> {
        let mut inner = self.store.inner();
        let line = inner
            .slots
            .get_mut(&self.id)
            .and_then(|s| s.current.take())
            .ok_or_else(|| JournalError::Io {
                path: self.path(),
                op: "quarantine",
                source: io::ErrorKind::NotFound.into(),
            })?;
        inner.quarantined.push((self.id.clone(), line));
        Ok(PathBuf::from(format!("memory:{}.corrupt-{nanos}", self.id)))
    }

    fn remove(self: Box<Self>) -> Result<(), JournalError> {
        self.store.inner().slots.remove(&self.id);
        Ok(())
    }
}
