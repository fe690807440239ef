//! Where plexus's conflist stands in the runtime's order: containerd and CRI-O use the
//! alphabetically first `.conf`/`.conflist`/`.json` of the conf dir. What Multus left (thin
//! `00-multus.conf`, `00-multus.conflist`, thick mode's `multus-shim`) is found and reported;
//! it is moved aside (renamed to a name runtimes ignore) only when the operator asks.

use std::path::{Path, PathBuf};

use crate::cni::conf::ConfList;
use crate::resolve::refs::config_files;

use super::primary::{CONFLIST_NAME, SELF_TYPE};

/// Suffix added to a Multus config moved aside: not a config extension, so runtimes skip it.
pub const MOVED_ASIDE_SUFFIX: &str = ".moved-aside-by-plexus";

/// Plugin types of Multus configs (thin plugin, thick mode's shim).
const MULTUS_TYPES: &[&str] = &["multus", "multus-shim"];

/// What a config file in the conf dir is, to the install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A Multus config (its plugin type).
    Multus(String),
    /// plexus's own config under another name (an older install).
    Plexus,
    /// Anything else (the primary network, or a config plexus does not know).
    Other,
}

/// One config file and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The file.
    pub path: PathBuf,
    /// What it is.
    pub kind: Kind,
}

/// Classifies a config file by its plugin types; a file that does not parse is `Other`.
pub fn classify(path: &Path) -> Kind {
    let Ok(bytes) = std::fs::read(path) else {
        return Kind::Other;
    };
    let Ok(conf) = ConfList::from_slice(&bytes, &path.display().to_string()) else {
        return Kind::Other;
    };
    for i in 0..conf.plugins.len() {
        let t = conf.plugin_type(i);
        if let Some(m) = MULTUS_TYPES.iter().find(|m| **m == t) {
            return Kind::Multus((*m).to_string());
        }
        if t == SELF_TYPE {
            return Kind::Plexus;
        }
    }
    Kind::Other
}

/// Every config of `conf_dir` in the runtime's order, except plexus's own [`CONFLIST_NAME`].
///
/// # Errors
/// The directory cannot be read.
pub fn others(conf_dir: &Path) -> std::io::Result<Vec<Found>> {
    Ok(config_files(conf_dir)?
        .into_iter()
        .filter(|p| p.file_name().is_none_or(|n| n != CONFLIST_NAME))
        .map(|path| Found {
            kind: classify(&path),
            path,
        })
        .collect())
}

/// The configs a runtime would pick before [`CONFLIST_NAME`].
pub fn ahead(found: &[Found]) -> Vec<&Found> {
    found
        .iter()
        .filter(|f| {
            f.path
                .file_name()
                .is_some_and(|n| n < std::ffi::OsStr::new(CONFLIST_NAME))
        })
        .collect()
}

/// Renames `path` to `<path>.moved-aside-by-plexus` (atomically, replacing an older one).
/// Returns the new path.
///
/// # Errors
/// The rename fails.
pub fn move_aside(path: &Path) -> std::io::Result<PathBuf> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(MOVED_ASIDE_SUFFIX);
    let to = path.with_file_name(name);
    std::fs::rename(path, &to)?;
    super::atomic::sync_dir(&to)?;
    Ok(to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plexus_sorts_before_what_multus_writes() {
        for multus in ["00-multus.conf", "00-multus.conflist", "01-multus.conf"] {
            assert!(CONFLIST_NAME < multus, "{CONFLIST_NAME} vs {multus}");
        }
    }

    #[test]
    fn classify_table() {
        let dir = std::env::temp_dir().join(format!("plexus-order-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let rows: &[(&str, &str, Kind)] = &[
            (
                "thin multus",
                r#"{"cniVersion":"0.3.1","name":"multus-cni-network","type":"multus","delegates":[]}"#,
                Kind::Multus("multus".into()),
            ),
            (
                "thick shim",
                r#"{"cniVersion":"0.3.1","name":"multus-cni-network","type":"multus-shim","socketDir":"/run/multus/"}"#,
                Kind::Multus("multus-shim".into()),
            ),
            (
                "multus in a list",
                r#"{"cniVersion":"0.3.1","name":"m","plugins":[{"type":"multus"}]}"#,
                Kind::Multus("multus".into()),
            ),
            (
                "plexus",
                r#"{"cniVersion":"1.0.0","name":"p","plugins":[{"type":"plexus"}]}"#,
                Kind::Plexus,
            ),
            (
                "bridge",
                r#"{"cniVersion":"1.0.0","name":"b","type":"bridge"}"#,
                Kind::Other,
            ),
            ("not json", "{", Kind::Other),
        ];
        for (i, (row, json, want)) in rows.iter().enumerate() {
            let p = dir.join(format!("{i}.conf"));
            std::fs::write(&p, json).unwrap();
            assert_eq!(classify(&p), *want, "{row}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
