//! CNI Success results for every spec version, and conversion between them.
