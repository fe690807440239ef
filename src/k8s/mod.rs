//! Kubernetes: the NetworkAttachmentDefinition type, the pod annotations plexus reads and
//! writes, and access to the API server.

pub mod client;
pub mod devices;
pub mod event;
pub mod nad;
pub mod names;
pub mod pod;
pub mod selection;
pub mod session;
pub mod status;
