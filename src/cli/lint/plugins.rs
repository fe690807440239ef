//! Plugin types that exist nowhere: each `type` and `ipam.type` of a network config is looked up
//! in the `--cni-bin-dir` directories when they are given (missing: an error, as ADD would
//! fail), else compared with the reference plugins' names (a likely misspelling: a warning).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::report::{Report, Subject};
use super::similar::closest;
use crate::cni::conf::validate_plugin_name;

/// The plugins of containernetworking/plugins: the names people mean most of the time.
const REFERENCE: &[&str] = &[
    "bridge",
    "dummy",
    "host-device",
    "ipvlan",
    "loopback",
    "macvlan",
    "ptp",
    "tap",
    "vlan",
    "dhcp",
    "host-local",
    "static",
    "bandwidth",
    "firewall",
    "portmap",
    "sbr",
    "tuning",
    "vrf",
];

/// Delegates plexus runs in process by default (`builtinDelegates`): no binary needed.
const BUILT_IN: &[&str] = &["macvlan", "ipvlan", "vlan"];

/// Where plugin binaries are looked for (`--cni-bin-dir`), and what they hold.
pub(crate) struct PluginDirs {
    dirs: Vec<PathBuf>,
    /// File names found in the directories (for suggestions).
    installed: Vec<String>,
}

impl PluginDirs {
    /// The directories given on the command line, in order (none: compare with the reference
    /// plugins only).
    pub fn new(dirs: Vec<PathBuf>) -> PluginDirs {
        let mut installed: Vec<String> = dirs
            .iter()
            .filter_map(|d| std::fs::read_dir(d).ok())
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        installed.sort();
        installed.dedup();
        PluginDirs { dirs, installed }
    }

    /// Directories given but not readable, each with the reason.
    pub fn unreadable(&self) -> Vec<(&Path, std::io::Error)> {
        self.dirs
            .iter()
            .filter_map(|d| std::fs::read_dir(d).err().map(|e| (d.as_path(), e)))
            .collect()
    }

    /// Checks every plugin type of the network config `v` (a conf or a conflist); each
    /// finding's message starts with `prefix` and the type's path (`plugins[1].ipam.type: `).
    pub fn check(&self, v: &Value, prefix: &str, at: &Subject, field: &str, report: &mut Report) {
        for (path, ty) in types(v) {
            // An unsafe name is the parser's finding; an empty one is not a name at all.
            if validate_plugin_name(ty).is_err() {
                continue;
            }
            let path = format!("{prefix}{path}");
            if self.dirs.is_empty() {
                if let Some(s) = closest(ty, REFERENCE) {
                    report.warning(
                        at,
                        field,
                        format!(
                            "{path}: {ty:?} is not a reference CNI plugin: did you mean {s:?}? \
                             (--cni-bin-dir DIR checks what is installed)"
                        ),
                    );
                }
                continue;
            }
            if BUILT_IN.contains(&ty) && !path.ends_with("ipam.type") {
                continue;
            }
            if let Some(msg) = self.missing(ty) {
                report.error(at, field, format!("{path}: {msg}"));
            }
        }
    }

    /// Why `ty` cannot be run from the directories, or `None` when it can.
    fn missing(&self, ty: &str) -> Option<String> {
        for dir in &self.dirs {
            match std::fs::metadata(dir.join(ty)) {
                Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => return None,
                Ok(_) => {
                    return Some(format!(
                        "{} is not an executable file",
                        dir.join(ty).display()
                    ));
                }
                Err(_) => {}
            }
        }
        let dirs: Vec<String> = self.dirs.iter().map(|d| d.display().to_string()).collect();
        let known: Vec<&str> = self
            .installed
            .iter()
            .map(String::as_str)
            .chain(REFERENCE.iter().copied())
            .collect();
        let hint = closest(ty, &known)
            .map(|s| format!(": did you mean {s:?}?"))
            .unwrap_or_default();
        Some(format!(
            "plugin {ty:?} is in none of {}{hint}",
            dirs.join(", ")
        ))
    }
}

/// Every `type` and `ipam.type` of a conf or conflist, with its path in the config.
fn types(v: &Value) -> Vec<(String, &str)> {
    let plugins: Vec<(String, &Value)> = match v.get("plugins").and_then(Value::as_array) {
        Some(list) => list
            .iter()
            .enumerate()
            .map(|(i, p)| (format!("plugins[{i}]."), p))
            .collect(),
        None => vec![(String::new(), v)],
    };
    let mut out = Vec::new();
    for (at, p) in plugins {
        if let Some(t) = p.get("type").and_then(Value::as_str) {
            out.push((format!("{at}type"), t));
        }
        if let Some(t) = p.pointer("/ipam/type").and_then(Value::as_str) {
            out.push((format!("{at}ipam.type"), t));
        }
    }
    out
}
