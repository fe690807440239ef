//! Why a selection annotation was rejected: each variant names the annotation and, for an
//! element, its index, the element quoted and the field.

use super::{MAX_ANNOTATION_BYTES, MAX_ELEMENTS};

/// Why a selection annotation was rejected. Every message names the annotation; element-level
/// errors also give the element's index, quote the element and name the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SelectionError {
    /// The value is longer than [`MAX_ANNOTATION_BYTES`]; it was not parsed.
    #[error("{annotation}: value is {len} bytes, over the limit of {MAX_ANNOTATION_BYTES} bytes")]
    TooLarge {
        /// Annotation name.
        annotation: &'static str,
        /// Length of the value in bytes.
        len: usize,
    },
    /// More than [`MAX_ELEMENTS`] networks are selected.
    #[error("{annotation}: {count} networks selected, over the limit of {MAX_ELEMENTS}")]
    TooMany {
        /// Annotation name.
        annotation: &'static str,
        /// Number of elements found.
        count: usize,
    },
    /// The value is an empty string where one network is required.
    #[error("{annotation}: value is empty")]
    Empty {
        /// Annotation name.
        annotation: &'static str,
    },
    /// The value starts like JSON but is not valid JSON.
    #[error("{annotation}: invalid JSON {value}: {reason}")]
    Json {
        /// Annotation name.
        annotation: &'static str,
        /// The value, quoted and truncated.
        value: String,
        /// The JSON parser's message (with line and column).
        reason: String,
    },
    /// The JSON has the wrong shape (an object where a list is required, a list element that is
    /// not an object, ...).
    #[error("{annotation}: expected {expected}, found {found}: {value}")]
    Shape {
        /// Annotation name.
        annotation: &'static str,
        /// What the annotation must hold.
        expected: &'static str,
        /// What it held.
        found: &'static str,
        /// The offending value, quoted and truncated.
        value: String,
    },
    /// An element of the JSON list is not an object.
    #[error("{annotation}: element {index} {element}: expected a selection object, found {found}")]
    NotObject {
        /// Annotation name.
        annotation: &'static str,
        /// Position of the element.
        index: usize,
        /// The element as compact JSON, truncated.
        element: String,
        /// What it is instead.
        found: &'static str,
    },
    /// An item of the comma-separated form is empty (`a,,b`, a trailing comma).
    #[error("{annotation}: element {index} is empty in {value}")]
    EmptyItem {
        /// Annotation name.
        annotation: &'static str,
        /// Position of the empty item.
        index: usize,
        /// The whole value, quoted and truncated.
        value: String,
    },
    /// An item of the comma-separated form is not `[namespace/]name[@interface]`.
    #[error(
        "{annotation}: element {index} {element}: {reason} (expected [namespace/]name[@interface])"
    )]
    ShortForm {
        /// Annotation name.
        annotation: &'static str,
        /// Position of the item.
        index: usize,
        /// The item, quoted and truncated.
        element: String,
        /// What is wrong.
        reason: String,
    },
    /// One field of an element is missing, has the wrong type or an invalid value.
    #[error("{annotation}: element {index} {element}: field {field:?}: {reason}")]
    Field {
        /// Annotation name.
        annotation: &'static str,
        /// Position of the element.
        index: usize,
        /// The element, quoted (or as compact JSON) and truncated.
        element: String,
        /// The field, with a list index where it applies (`ips[1]`).
        field: String,
        /// What is wrong, quoting the value.
        reason: String,
    },
    /// Two elements request the same interface name.
    #[error(
        "{annotation}: element {index} {element}: interface {interface:?} is already requested by element {first}"
    )]
    DuplicateInterface {
        /// Annotation name.
        annotation: &'static str,
        /// Position of the second request.
        index: usize,
        /// The second element, quoted and truncated.
        element: String,
        /// The interface name.
        interface: String,
        /// Position of the first request.
        first: usize,
    },
    /// Two `default-route` gateways of one IP family.
    #[error(
        "{annotation}: element {index} {element}: field \"default-route\": second {family} default route {gateway:?} (element {first} already has one; at most one per IP family)"
    )]
    DuplicateDefaultRoute {
        /// Annotation name.
        annotation: &'static str,
        /// Position of the element with the second gateway.
        index: usize,
        /// That element, quoted and truncated.
        element: String,
        /// `IPv4` or `IPv6`.
        family: &'static str,
        /// The second gateway.
        gateway: String,
        /// Position of the element with the first gateway of that family.
        first: usize,
    },
    /// The default-network annotation selects zero or several networks.
    #[error("{annotation}: expected exactly one network, found {count}")]
    NotOne {
        /// Annotation name.
        annotation: &'static str,
        /// Number of networks found.
        count: usize,
    },
}
