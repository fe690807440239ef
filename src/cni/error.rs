//! The CNI error object (`{"cniVersion","code","msg","details"}`) and its well-known codes.

use serde::{Deserialize, Serialize};

/// Incompatible CNI version.
pub const INCOMPATIBLE_VERSION: u32 = 1;
/// Unsupported field in the network configuration.
pub const UNSUPPORTED_FIELD: u32 = 2;
/// Container unknown or does not exist.
pub const UNKNOWN_CONTAINER: u32 = 3;
/// Invalid necessary environment variables.
pub const INVALID_ENVIRONMENT: u32 = 4;
/// I/O failure.
pub const IO_FAILURE: u32 = 5;
/// Failed to decode content.
pub const DECODING_FAILURE: u32 = 6;
/// Invalid network config.
pub const INVALID_NETWORK_CONFIG: u32 = 7;
/// Try again later.
pub const TRY_AGAIN_LATER: u32 = 11;
/// STATUS: the plugin is not available.
pub const NOT_AVAILABLE: u32 = 50;
/// STATUS: not available, and existing containers may have limited connectivity.
pub const LIMITED_CONNECTIVITY: u32 = 51;
/// plexus-specific: a delegate failed without an error object of its own.
pub const DELEGATE_FAILED: u32 = 100;

/// A CNI error object as printed on stdout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorObject {
    /// The spec version of the object.
    #[serde(rename = "cniVersion", default)]
    pub cni_version: String,
    /// The error code.
    pub code: u32,
    /// A short message.
    #[serde(default)]
    pub msg: String,
    /// Longer details (may be empty).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub details: String,
}

impl ErrorObject {
    /// Reads a delegate's error object leniently: `code` may be a number or a numeric string,
    /// `msg` and `details` may be missing. Returns `None` when `bytes` is not such an object.
    pub fn parse_lenient(bytes: &[u8]) -> Option<ErrorObject> {
        let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
        let obj = v.as_object()?;
        let code = match obj.get("code")? {
            serde_json::Value::Number(n) => u32::try_from(n.as_u64()?).ok()?,
            serde_json::Value::String(s) => s.trim().parse().ok()?,
            _ => return None,
        };
        let text = |k: &str| match obj.get(k) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        Some(ErrorObject {
            cni_version: text("cniVersion"),
            code,
            msg: text("msg"),
            details: text("details"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_table() {
        let rows: &[(&str, &str, Option<(u32, &str)>)] = &[
            (
                "go plugin",
                r#"{"code":999,"msg":"boom","details":""}"#,
                Some((999, "boom")),
            ),
            (
                "string code",
                r#"{"code":"11","msg":"later"}"#,
                Some((11, "later")),
            ),
            ("no msg", r#"{"code":7}"#, Some((7, ""))),
            ("no code", r#"{"msg":"x"}"#, None),
            ("negative", r#"{"code":-1}"#, None),
            ("garbage", "not json", None),
            ("array", "[1]", None),
        ];
        for (name, input, want) in rows {
            let got = ErrorObject::parse_lenient(input.as_bytes());
            assert_eq!(
                got.as_ref().map(|e| (e.code, e.msg.as_str())),
                *want,
                "{name}"
            );
        }
    }
}
