//! Sandboxes attached by Multus before plexus replaced it: Multus (thin) keeps the delegates of
//! each container in `<cniDir>/<containerID>`, a JSON list of its `DelegateNetConf` (the raw
//! delegate config base64-encoded in `Bytes`, the interface in `ifnameRequest`). DEL reads it so
//! the NAD networks' addresses are released too, with the interface names Multus gave them.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::cni::conf::{ConfError, ConfList};
use crate::plan::Origin;
use crate::txn::{State, Step};

/// Why a Multus cache file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// It cannot be read.
    #[error("reading it: {0}")]
    Read(#[from] std::io::Error),
    /// Larger than any Multus writes.
    #[error("larger than {MAX_CACHE} bytes")]
    TooLarge,
    /// Not a list of Multus delegates.
    #[error("not a Multus delegate list: {0}")]
    NotAList(String),
    /// An empty list.
    #[error("an empty Multus delegate list")]
    Empty,
    /// A delegate's `Bytes` is not base64.
    #[error("delegate {0}: Bytes is not base64")]
    Base64(usize),
    /// A delegate's config is not JSON.
    #[error("delegate {index}: config is not JSON: {reason}")]
    Json {
        /// Which delegate.
        index: usize,
        /// The parser's message.
        reason: String,
    },
    /// A delegate's config is not one plexus will run.
    #[error(transparent)]
    Conf(#[from] ConfError),
}

/// Where Multus keeps its cache when its config does not say (`cniDir` unset).
pub const DEFAULT_MULTUS_DIR: &str = "/var/lib/cni/multus";

/// The fields of Multus's `DelegateNetConf` that DEL needs.
#[derive(Debug, Deserialize)]
struct Delegate {
    #[serde(rename = "Name", default)]
    name: String,
    #[serde(rename = "ifnameRequest", default)]
    ifname_request: String,
    /// The delegate's config as Multus ran it (Go `[]byte`: base64).
    #[serde(rename = "Bytes", default)]
    bytes: String,
}

/// The cache files that may hold `container_id`'s delegates: in plexus's `cniDir` (a Multus
/// config reused unchanged keeps Multus's directory there), then in Multus's default directory.
pub fn cache_paths(cni_dir: &Path, container_id: &str) -> Vec<PathBuf> {
    let mut paths = vec![cni_dir.join(container_id)];
    let default = Path::new(DEFAULT_MULTUS_DIR).join(container_id);
    if !paths.contains(&default) {
        paths.push(default);
    }
    paths
}

/// Multus's cache files are a few KiB; a larger one is not read.
const MAX_CACHE: u64 = 1 << 20;

/// The bytes of the cache file at `path`: `None` when there is none, an error when it cannot be
/// read or is larger than any Multus writes.
pub fn read_cache(path: &Path) -> Option<Result<Vec<u8>, CacheError>> {
    use std::io::Read;
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => return Some(Err(e.into())),
    };
    let mut bytes = Vec::new();
    Some(match file.take(MAX_CACHE + 1).read_to_end(&mut bytes) {
        Ok(_) if bytes.len() as u64 > MAX_CACHE => Err(CacheError::TooLarge),
        Ok(_) => Ok(bytes),
        Err(e) => Err(e.into()),
    })
}

/// The attachments in a Multus cache file as steps to release, in Multus's order (each after the
/// one before it): the first is the cluster network on `runtime_ifname`, the others on their
/// requested interface or `net<index>`, as Multus names them. Every step gets `cni_args` (the
/// runtime's, as on any DEL).
///
/// # Errors
/// Not a Multus delegate list, a `Bytes` that is not base64, or a delegate config plexus would
/// not run.
pub fn steps(bytes: &[u8], runtime_ifname: &str, cni_args: &str) -> Result<Vec<Step>, CacheError> {
    let delegates: Vec<Delegate> =
        serde_json::from_slice(bytes).map_err(|e| CacheError::NotAList(e.to_string()))?;
    if delegates.is_empty() {
        return Err(CacheError::Empty);
    }
    delegates
        .into_iter()
        .enumerate()
        .map(|(i, d)| {
            let raw = base64_decode(&d.bytes).ok_or(CacheError::Base64(i))?;
            let conf: Value = serde_json::from_slice(&raw).map_err(|e| CacheError::Json {
                index: i,
                reason: e.to_string(),
            })?;
            let conf = ConfList::from_value(conf, &format!("Multus delegate {i}"), None)?;
            let ifname = match (i, d.ifname_request.is_empty()) {
                (_, false) => d.ifname_request,
                (0, true) => runtime_ifname.to_string(),
                (_, true) => format!("net{i}"),
            };
            let network = if d.name.is_empty() {
                conf.name.clone()
            } else {
                d.name
            };
            Ok(Step {
                origin: if i == 0 {
                    Origin::Cluster
                } else {
                    Origin::Selected
                },
                network,
                ifname,
                conf: conf.to_value(),
                runtime_config: Default::default(),
                cni_args: cni_args.to_string(),
                default_route: Vec::new(),
                after: i.checked_sub(1).into_iter().collect(),
                state: State::Pending,
                result: None,
                error: None,
            })
        })
        .collect()
}

/// Standard base64 with padding (Go's `encoding/json` for `[]byte`); `None` for anything else.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let s = s.as_bytes();
    if !s.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    for (n, chunk) in s.chunks(4).enumerate() {
        let last = n == s.len() / 4 - 1;
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut acc = 0u32;
        for &c in &chunk[..4 - pad] {
            acc = (acc << 6) | u32::from(value(c)?);
        }
        acc <<= 6 * pad as u32;
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..4 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Known encodings (standard alphabet, padded) of the texts the tests use.
    const ENCODED: [(&str, &str); 10] = [
        ("", ""),
        ("ab", "YWI="),
        ("a", "YQ=="),
        ("abc", "YWJj"),
        (
            r#"{"cniVersion":"0.3.1","type":"macvlan"}"#,
            "eyJjbmlWZXJzaW9uIjoiMC4zLjEiLCJ0eXBlIjoibWFjdmxhbiJ9",
        ),
        (
            r#"{"cniVersion":"0.3.1","name":"cbr0","plugins":[{"type":"bridge"}]}"#,
            "eyJjbmlWZXJzaW9uIjoiMC4zLjEiLCJuYW1lIjoiY2JyMCIsInBsdWdpbnMiOlt7InR5cGUiOiJicmlkZ2UifV19",
        ),
        (
            r#"{"cniVersion":"0.3.1","name":"storage","type":"macvlan"}"#,
            "eyJjbmlWZXJzaW9uIjoiMC4zLjEiLCJuYW1lIjoic3RvcmFnZSIsInR5cGUiOiJtYWN2bGFuIn0=",
        ),
        ("nope", "bm9wZQ=="),
        (
            r#"{"cniVersion":"0.3.1","name":"x"}"#,
            "eyJjbmlWZXJzaW9uIjoiMC4zLjEiLCJuYW1lIjoieCJ9",
        ),
        (
            r#"{"cniVersion":"0.3.1","name":"x","type":"../../bin/sh"}"#,
            "eyJjbmlWZXJzaW9uIjoiMC4zLjEiLCJuYW1lIjoieCIsInR5cGUiOiIuLi8uLi9iaW4vc2gifQ==",
        ),
    ];

    fn b64(text: &str) -> &'static str {
        ENCODED
            .iter()
            .find(|(t, _)| *t == text)
            .map(|(_, e)| *e)
            .unwrap_or_else(|| panic!("no known encoding of {text:?}"))
    }

    #[test]
    fn base64_table() {
        for (name, text) in [
            ("empty", ""),
            ("one pad", "ab"),
            ("two pads", "a"),
            ("no pad", "abc"),
            ("json", r#"{"cniVersion":"0.3.1","type":"macvlan"}"#),
        ] {
            assert_eq!(
                base64_decode(b64(text)).as_deref(),
                Some(text.as_bytes()),
                "{name}"
            );
        }
        for (name, bad) in [
            ("length", "abc"),
            ("alphabet", "ab-_"),
            ("pad inside", "a=bcdefg"),
            ("three pads", "a==="),
        ] {
            assert_eq!(base64_decode(bad), None, "{name}");
        }
    }

    #[test]
    fn delegates_get_multus_interface_names() {
        let cluster = r#"{"cniVersion":"0.3.1","name":"cbr0","plugins":[{"type":"bridge"}]}"#;
        let nad = r#"{"cniVersion":"0.3.1","name":"storage","type":"macvlan"}"#;
        let cache = json!([
            {"Conf": {}, "ConfList": {}, "Name": "cbr0", "Bytes": b64(cluster),
             "IsFilterV4Gateway": false, "IsFilterV6Gateway": false},
            {"Conf": {}, "ConfList": {}, "Name": "default/storage", "Bytes": b64(nad)},
            {"Conf": {}, "ConfList": {}, "Name": "default/data", "ifnameRequest": "data0",
             "Bytes": b64(nad)},
        ]);
        let steps = steps(cache.to_string().as_bytes(), "eth0", "K8S_POD_NAME=p").unwrap();
        let got: Vec<(&str, &str, bool, String)> = steps
            .iter()
            .map(|s| {
                (
                    s.network.as_str(),
                    s.ifname.as_str(),
                    s.is_cluster(),
                    s.types(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("cbr0", "eth0", true, "bridge".to_string()),
                ("default/storage", "net1", false, "macvlan".to_string()),
                ("default/data", "data0", false, "macvlan".to_string()),
            ]
        );
        assert!(steps.iter().all(|s| s.cni_args == "K8S_POD_NAME=p"));
        let after: Vec<Vec<usize>> = steps.iter().map(|s| s.after.clone()).collect();
        assert_eq!(after, [vec![], vec![0], vec![1]], "Multus's order");
    }

    #[test]
    fn cache_files_are_read_within_a_bound() {
        let dir = std::env::temp_dir().join(format!("plexus-mcache-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(
            read_cache(&dir.join("none")).is_none(),
            "no file: nothing to read"
        );
        std::fs::write(dir.join("small"), b"[]").unwrap();
        assert_eq!(
            read_cache(&dir.join("small")).unwrap().unwrap(),
            b"[]".to_vec()
        );
        std::fs::write(dir.join("big"), vec![b' '; MAX_CACHE as usize + 1]).unwrap();
        assert!(matches!(
            read_cache(&dir.join("big")),
            Some(Err(CacheError::TooLarge))
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn what_is_not_a_multus_cache_is_an_error() {
        for (name, bytes) in [
            ("not json", "{".to_string()),
            ("not a list", "{}".to_string()),
            ("empty list", "[]".to_string()),
            ("bad base64", json!([{"Bytes": "***"}]).to_string()),
            (
                "config not json",
                json!([{"Bytes": b64("nope")}]).to_string(),
            ),
            (
                "config without type",
                json!([{"Bytes": b64(r#"{"cniVersion":"0.3.1","name":"x"}"#)}]).to_string(),
            ),
            (
                "hostile type",
                json!([{"Bytes": b64(r#"{"cniVersion":"0.3.1","name":"x","type":"../../bin/sh"}"#)}])
                    .to_string(),
            ),
        ] {
            assert!(steps(bytes.as_bytes(), "eth0", "").is_err(), "{name}");
        }
    }
}
