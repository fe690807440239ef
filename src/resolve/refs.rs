//! Network references of plexus's config (`clusterNetwork`, `defaultNetworks`) resolved the way
//! Multus resolves them on disk: a path to a config file, a directory (its alphabetically first
//! config that is not plexus's own), or the `name` of a config in `confDir`. A reference that is
//! none of these names a NetworkAttachmentDefinition.

use std::path::{Path, PathBuf};

use crate::cni::conf::{ConfError, ConfList};

/// Why a reference does not resolve to a config on disk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    /// Nothing on disk matches.
    #[error("network {reference:?}: {reason}")]
    Unresolved {
        /// The reference as written.
        reference: String,
        /// What was looked for.
        reason: Unresolved,
    },
    /// The file found is not a valid config.
    #[error(transparent)]
    Conf(#[from] ConfError),
}

/// What was looked for and not found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unresolved {
    /// An absolute path that does not exist.
    #[error("no such file or directory")]
    Missing,
    /// A directory without a config that is not plexus's own.
    #[error("no network config in {}", .0.display())]
    EmptyDir(PathBuf),
    /// A name no config in confDir has.
    #[error("no config named {name:?} in {}", .dir.display())]
    NoName {
        /// The name.
        name: String,
        /// confDir.
        dir: PathBuf,
    },
    /// A relative path, or empty.
    #[error("must be an absolute path or the name of a network config")]
    NotAReference,
    /// A directory or file that cannot be read.
    #[error("reading {}: {reason}", .path.display())]
    Read {
        /// What was read.
        path: PathBuf,
        /// The system's error.
        reason: String,
    },
    /// A file larger than any network config.
    #[error("{} is larger than {MAX_CONF_FILE} bytes", .0.display())]
    TooLarge(PathBuf),
}

/// How a reference is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefKind {
    /// An absolute path (file or directory).
    Path,
    /// A bare name: a config in confDir, else a NAD in multusNamespace.
    Name,
    /// `namespace/name`: a NAD.
    Nad,
    /// Anything else.
    Invalid,
}

/// How `reference` is written.
pub fn kind(reference: &str) -> RefKind {
    if reference.starts_with('/') {
        RefKind::Path
    } else if reference.is_empty() {
        RefKind::Invalid
    } else if reference.matches('/').count() == 1 && !reference.ends_with('/') {
        RefKind::Nad
    } else if reference.contains('/') {
        RefKind::Invalid
    } else {
        RefKind::Name
    }
}

/// Resolves `reference` on disk. `None` when it is a bare name no config in `conf_dir` has, or
/// `namespace/name`: it then names a NAD. `own_type` is plexus's own plugin type: a directory's
/// configs that run it are skipped.
///
/// # Errors
/// [`RefError`] for a path that does not resolve, an unreadable confDir, an invalid reference,
/// or a file that is not a valid config.
pub fn load(
    reference: &str,
    conf_dir: &Path,
    own_type: &str,
) -> Result<Option<ConfList>, RefError> {
    let unresolved = |reason: Unresolved| RefError::Unresolved {
        reference: reference.to_string(),
        reason,
    };
    match kind(reference) {
        RefKind::Nad => Ok(None),
        RefKind::Invalid => Err(unresolved(Unresolved::NotAReference)),
        RefKind::Path => {
            let p = Path::new(reference);
            if p.is_dir() {
                let read = |e: std::io::Error| {
                    unresolved(Unresolved::Read {
                        path: p.to_path_buf(),
                        reason: e.to_string(),
                    })
                };
                for f in config_files(p).map_err(read)? {
                    let c = load_file(&f)?;
                    if !c.runs(own_type) {
                        return Ok(Some(c));
                    }
                }
                Err(unresolved(Unresolved::EmptyDir(p.to_path_buf())))
            } else if p.is_file() {
                Ok(Some(load_file(p)?))
            } else {
                Err(unresolved(Unresolved::Missing))
            }
        }
        RefKind::Name => {
            // A confDir that does not exist holds no config of that name: a NAD, then.
            let files = match config_files(conf_dir) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => {
                    return Err(unresolved(Unresolved::Read {
                        path: conf_dir.to_path_buf(),
                        reason: e.to_string(),
                    }));
                }
            };
            // A file that does not parse cannot be the one named; other networks' broken
            // files must not break this lookup.
            Ok(files
                .iter()
                .filter_map(|f| load_file(f).ok())
                .find(|c| c.name == reference))
        }
    }
}

/// Like [`load`], but a name that matches nothing is an error (no API to look a NAD up in).
///
/// # Errors
/// As [`load`], plus [`Unresolved::NoName`].
pub fn load_required(
    reference: &str,
    conf_dir: &Path,
    own_type: &str,
) -> Result<ConfList, RefError> {
    load(reference, conf_dir, own_type)?.ok_or_else(|| RefError::Unresolved {
        reference: reference.to_string(),
        reason: Unresolved::NoName {
            name: reference.to_string(),
            dir: conf_dir.to_path_buf(),
        },
    })
}

/// Config files in `dir` (`.conf`, `.conflist`, `.json`), sorted by name.
///
/// # Errors
/// The directory cannot be read.
pub fn config_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("conf" | "conflist" | "json")
                )
        })
        .collect();
    v.sort();
    Ok(v)
}

/// Largest network config file plexus reads.
const MAX_CONF_FILE: u64 = 1 << 20;

fn load_file(p: &Path) -> Result<ConfList, RefError> {
    let name = p.display().to_string();
    let unresolved = |reason: Unresolved| RefError::Unresolved {
        reference: name.clone(),
        reason,
    };
    let read = |e: std::io::Error| {
        unresolved(Unresolved::Read {
            path: p.to_path_buf(),
            reason: e.to_string(),
        })
    };
    let meta = std::fs::metadata(p).map_err(read)?;
    if meta.len() > MAX_CONF_FILE {
        return Err(unresolved(Unresolved::TooLarge(p.to_path_buf())));
    }
    let bytes = std::fs::read(p).map_err(read)?;
    Ok(ConfList::from_slice(&bytes, &name)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kind_table() {
        let rows = [
            ("absolute", "/etc/cni/net.d/10.conf", RefKind::Path),
            ("name", "flannel", RefKind::Name),
            ("nad", "kube-system/flannel", RefKind::Nad),
            ("empty", "", RefKind::Invalid),
            ("relative path", "a/b/c", RefKind::Invalid),
            ("trailing slash", "a/", RefKind::Invalid),
        ];
        for (name, r, want) in rows {
            assert_eq!(kind(r), want, "{name}");
        }
    }

    #[test]
    fn load_table() {
        let d = std::env::temp_dir().join(format!("plexus-refs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let w = |n: &str, v: serde_json::Value| std::fs::write(d.join(n), v.to_string()).unwrap();
        w(
            "00-plexus.conflist",
            json!({"cniVersion":"1.0.0","name":"plexus-net","plugins":[{"type":"plexus"}]}),
        );
        w(
            "10-bridge.conflist",
            json!({"cniVersion":"1.0.0","name":"cbr","plugins":[{"type":"bridge"}]}),
        );
        w(
            "20-mv.conf",
            json!({"cniVersion":"0.4.0","name":"mv","type":"macvlan"}),
        );
        w(
            "30-broken.conf",
            json!({"cniVersion":"1.0.0","name":"broken","type":"../x"}),
        );
        std::fs::write(d.join("99-notjson.conf"), "{").unwrap();
        let dir = d.display().to_string();
        let file = |n: &str| d.join(n).display().to_string();
        let ok: &[(&str, String, Option<&str>)] = &[
            (
                "directory skips plexus's own conflist",
                dir.clone(),
                Some("cbr"),
            ),
            ("file", file("20-mv.conf"), Some("mv")),
            ("name", "mv".into(), Some("mv")),
            ("unknown name: a NAD", "nope".into(), None),
            ("namespace/name: a NAD", "ns/nope".into(), None),
        ];
        for (name, r, want) in ok {
            let got = load(r, &d, "plexus").unwrap();
            assert_eq!(got.map(|c| c.name).as_deref(), *want, "{name}");
        }
        let errs: &[(&str, String, &str)] = &[
            ("relative path", "a/b/c".into(), "absolute path"),
            ("missing file", file("missing.conf"), "no such file"),
            ("hostile file", file("30-broken.conf"), "type"),
            ("not json file", file("99-notjson.conf"), "not valid JSON"),
        ];
        for (name, r, frag) in errs {
            let e = load(r, &d, "plexus").expect_err(name);
            assert!(e.to_string().contains(frag), "{name}: {e}");
        }
        let e = load_required("nope", &d, "plexus").unwrap_err();
        assert!(e.to_string().contains("no config named"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
