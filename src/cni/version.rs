//! CNI spec versions: which ones plexus speaks, how they compare, and the VERSION answer.

use std::cmp::Ordering;
use std::fmt;

/// Every spec version plexus accepts from a runtime and can answer in, oldest first.
pub const SUPPORTED: &[&str] = &[
    "0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0",
];

/// The newest spec version plexus implements.
pub const LATEST: &str = "1.1.0";

/// A parsed `major.minor.patch` CNI version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Major number.
    pub major: u16,
    /// Minor number.
    pub minor: u16,
    /// Patch number.
    pub patch: u16,
}

impl Version {
    /// Spec 0.3.0: `interfaces` and `ips` lists appear.
    pub const V0_3_0: Version = Version::new(0, 3, 0);
    /// Spec 0.4.0: CHECK and `prevResult` on DEL.
    pub const V0_4_0: Version = Version::new(0, 4, 0);
    /// Spec 1.0.0: `version` dropped from `ips`.
    pub const V1_0_0: Version = Version::new(1, 0, 0);
    /// Spec 1.1.0: GC and STATUS.
    pub const V1_1_0: Version = Version::new(1, 1, 0);

    /// Builds a version from its three numbers.
    pub const fn new(major: u16, minor: u16, patch: u16) -> Self {
        Version {
            major,
            minor,
            patch,
        }
    }

    /// Parses `X.Y.Z` (an empty string means 0.1.0, as libcni treats a missing cniVersion).
    /// Returns `None` for anything else.
    pub fn parse(s: &str) -> Option<Version> {
        if s.is_empty() {
            return Some(Version::new(0, 1, 0));
        }
        let mut parts = s.split('.');
        let mut next = || -> Option<u16> {
            let p = parts.next()?;
            if p.is_empty() || p.len() > 4 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            p.parse().ok()
        };
        let v = Version::new(next()?, next()?, next()?);
        if parts.next().is_some() {
            return None;
        }
        Some(v)
    }

    /// Parses `s` and accepts it only if plexus supports that version.
    pub fn parse_supported(s: &str) -> Option<Version> {
        Version::parse(s).filter(|v| SUPPORTED.iter().any(|x| Version::parse(x) == Some(*v)))
    }

    /// Compares with another version.
    pub fn cmp_to(&self, other: &Version) -> Ordering {
        self.cmp(other)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The JSON plexus prints for `CNI_COMMAND=VERSION`.
pub fn version_info() -> serde_json::Value {
    serde_json::json!({ "cniVersion": LATEST, "supportedVersions": SUPPORTED })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let rows: &[(&str, &str, Option<Version>)] = &[
            ("plain", "1.0.0", Some(Version::new(1, 0, 0))),
            ("old", "0.3.1", Some(Version::new(0, 3, 1))),
            ("empty is 0.1.0", "", Some(Version::new(0, 1, 0))),
            ("two parts", "1.0", None),
            ("four parts", "1.0.0.0", None),
            ("letters", "1.a.0", None),
            ("sign", "+1.0.0", None),
            ("huge", "99999.0.0", None),
        ];
        for (name, input, want) in rows {
            assert_eq!(Version::parse(input), *want, "{name}");
        }
    }

    #[test]
    fn supported_table() {
        for v in SUPPORTED {
            assert!(Version::parse_supported(v).is_some(), "{v}");
        }
        assert!(Version::parse_supported("0.5.0").is_none());
        assert!(Version::parse_supported("2.0.0").is_none());
        assert!(Version::V0_4_0 < Version::V1_0_0);
    }
}
