//! The CNI wire protocol, pure: environment, network configs, results, error objects, versions.

pub mod result;
pub mod version;
