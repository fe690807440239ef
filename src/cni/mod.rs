//! The CNI wire protocol, pure: environment, network configs, results, error objects, versions.

pub mod conf;
pub mod env;
pub mod error;
pub mod ip;
pub mod result;
pub mod version;
