//! Crash-safe on-disk record of attachments per container id, with a file lock.
