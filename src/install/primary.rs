//! Finding the node's primary network config: the alphabetically first `.conf`/`.conflist`/
//! `.json` in the CNI conf dir that is not plexus's own, or the file the operator named.

use std::path::{Path, PathBuf};

use crate::cni::conf::ConfList;
use crate::resolve::refs::config_files;

/// The file name plexus writes in the conf dir. It sorts before every name Multus writes
/// (`00-multus.conf`, `00-multus.conflist`), so a leftover Multus config never wins.
pub const CONFLIST_NAME: &str = "00-00-plexus.conflist";

/// The name earlier plexus releases wrote; an install removes it when it holds a plexus config.
pub const OLD_CONFLIST_NAME: &str = "00-plexus.conflist";

/// The plugin type that marks a config as plexus's own.
pub const SELF_TYPE: &str = "plexus";

/// Largest config file read.
const MAX_CONF_FILE: u64 = 1 << 20;

/// The primary config, read and parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Primary {
    /// Absolute path of the file.
    pub path: PathBuf,
    /// Its bytes as read (compared to notice changes).
    pub bytes: Vec<u8>,
    /// The parsed config.
    pub conf: ConfList,
}

/// Why no primary config is usable right now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrimaryError {
    /// The conf dir has no candidate.
    #[error("no network config (.conf, .conflist, .json) other than plexus's own in {0}")]
    None(PathBuf),
    /// The conf dir cannot be read.
    #[error("cannot read {dir}: {reason}")]
    ReadDir {
        /// The directory.
        dir: PathBuf,
        /// The OS error.
        reason: String,
    },
    /// The file named by `--primary` does not exist.
    #[error("primary config {0} does not exist")]
    Missing(PathBuf),
    /// The candidate cannot be read or is not a valid network config.
    #[error("primary config {path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The file named by `--primary` is plexus's own config.
    #[error("primary config {0} runs plexus or Multus itself; it cannot be the cluster network")]
    IsSelf(PathBuf),
}

/// Meta-plugins that can never be the primary network: plexus itself, and Multus (its
/// `00-multus.conf` may still be in the conf dir while a node moves from Multus to plexus).
const META_TYPES: &[&str] = &[SELF_TYPE, "multus", "multus-shim"];

/// True when `conf` runs a meta-plugin (plexus, or Multus being replaced by it).
pub fn is_self(conf: &ConfList) -> bool {
    (0..conf.plugins.len()).any(|i| META_TYPES.contains(&conf.plugin_type(i)))
}

/// Reads and parses one config file.
///
/// # Errors
/// [`PrimaryError::Missing`] when it does not exist, [`PrimaryError::Invalid`] when it cannot
/// be read or is not a valid config.
pub fn load(path: &Path) -> Result<Primary, PrimaryError> {
    let invalid = |reason: String| PrimaryError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(PrimaryError::Missing(path.to_path_buf()));
        }
        Err(e) => return Err(invalid(e.to_string())),
    };
    if !meta.is_file() {
        return Err(invalid("not a regular file".into()));
    }
    if meta.len() > MAX_CONF_FILE {
        return Err(invalid(format!("larger than {MAX_CONF_FILE} bytes")));
    }
    let bytes = std::fs::read(path).map_err(|e| invalid(e.to_string()))?;
    let conf = ConfList::from_slice(&bytes, &path.display().to_string())
        .map_err(|e| invalid(e.to_string()))?;
    let path = std::path::absolute(path).map_err(|e| invalid(e.to_string()))?;
    Ok(Primary { path, bytes, conf })
}

/// Finds the primary config: `explicit` if given (it must exist, parse and not be plexus's),
/// else the alphabetically first config in `conf_dir` that is not [`CONFLIST_NAME`] and not
/// plexus-typed. A first candidate that does not parse is an error (it may still be being
/// written): the next file is never silently taken in its place.
///
/// # Errors
/// As [`PrimaryError`]; the caller decides whether to wait and retry.
pub fn find(conf_dir: &Path, explicit: Option<&Path>) -> Result<Primary, PrimaryError> {
    if let Some(p) = explicit {
        let primary = load(p)?;
        if is_self(&primary.conf) {
            return Err(PrimaryError::IsSelf(primary.path));
        }
        return Ok(primary);
    }
    let files = config_files(conf_dir).map_err(|e| PrimaryError::ReadDir {
        dir: conf_dir.to_path_buf(),
        reason: e.to_string(),
    })?;
    for f in files {
        if f.file_name().is_some_and(|n| n == CONFLIST_NAME) {
            continue;
        }
        let primary = match load(&f) {
            // Removed between listing and reading.
            Err(PrimaryError::Missing(_)) => continue,
            other => other?,
        };
        if !is_self(&primary.conf) {
            return Ok(primary);
        }
    }
    Err(PrimaryError::None(conf_dir.to_path_buf()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("plexus-primary-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    const BRIDGE: &str = r#"{"cniVersion":"1.0.0","name":"n","type":"bridge"}"#;
    const SELF: &str = r#"{"cniVersion":"1.0.0","name":"p","plugins":[{"type":"plexus"}]}"#;

    #[test]
    fn find_table() {
        // (row, files, explicit, want file name or error fragment)
        let rows: &[(&str, &[(&str, &str)], Option<&str>, Result<&str, &str>)] = &[
            ("empty dir", &[], None, Err("no network config")),
            (
                "alphabetical",
                &[("20-b.conf", BRIDGE), ("10-a.conflist", BRIDGE)],
                None,
                Ok("10-a.conflist"),
            ),
            (
                "skips own conflist",
                &[(CONFLIST_NAME, BRIDGE), ("50-x.json", BRIDGE)],
                None,
                Ok("50-x.json"),
            ),
            (
                "skips plexus typed",
                &[("01-other.conflist", SELF), ("99-z.conf", BRIDGE)],
                None,
                Ok("99-z.conf"),
            ),
            (
                "skips a Multus config left from a migration",
                &[
                    (
                        "00-multus.conf",
                        r#"{"cniVersion":"0.3.1","name":"multus-cni-network","type":"multus","kubeconfig":"/k"}"#,
                    ),
                    ("10-calico.conflist", BRIDGE),
                ],
                None,
                Ok("10-calico.conflist"),
            ),
            (
                "ignores other extensions",
                &[
                    ("00-a.yaml", BRIDGE),
                    ("01-b.conf.bak", BRIDGE),
                    ("02-c.conf", BRIDGE),
                ],
                None,
                Ok("02-c.conf"),
            ),
            (
                "first candidate broken",
                &[("10-a.conf", "{"), ("20-b.conf", BRIDGE)],
                None,
                Err("10-a.conf: "),
            ),
            (
                "explicit",
                &[("10-a.conf", BRIDGE), ("20-b.conf", BRIDGE)],
                Some("20-b.conf"),
                Ok("20-b.conf"),
            ),
            (
                "explicit missing",
                &[],
                Some("nope.conf"),
                Err("does not exist"),
            ),
            (
                "explicit is plexus",
                &[("05-p.conflist", SELF)],
                Some("05-p.conflist"),
                Err("runs plexus or Multus"),
            ),
        ];
        for (i, (row, files, explicit, want)) in rows.iter().enumerate() {
            let d = tmpdir(&i.to_string());
            for (n, c) in *files {
                std::fs::write(d.join(n), c).unwrap();
            }
            let got = find(&d, explicit.map(|e| d.join(e)).as_deref());
            match (want, got) {
                (Ok(name), Ok(p)) => assert_eq!(p.path, d.join(name), "{row}"),
                (Err(frag), Err(e)) => assert!(e.to_string().contains(frag), "{row}: {e}"),
                (w, g) => panic!("{row}: want {w:?}, got {g:?}"),
            }
            std::fs::remove_dir_all(&d).unwrap();
        }
    }
}
