//! `plexus uninstall`, the file side: draining (new pods get only the cluster network while
//! plexus stays in the runtime's path to DEL the pods it attached) and finishing (plexus's
//! conflist, kubeconfig and binary removed, so the runtime runs the primary network directly).
//! Which of the two is due is the caller's decision, from the journal.

use std::io;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::conflist::POD_ANNOTATIONS_CAPABILITY;
use super::primary::{CONFLIST_NAME, OLD_CONFLIST_NAME};
use super::{CONFLIST_MODE, InstallError, order, write_if_changed};

/// The node paths `plexus uninstall` works on.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The CNI conf dir holding plexus's conflist.
    pub conf_dir: PathBuf,
    /// The CNI bin dir holding the plexus binary.
    pub bin_dir: PathBuf,
    /// The kubeconfig `plexus install` wrote.
    pub kubeconfig: PathBuf,
}

impl Paths {
    /// Plexus's conflist.
    pub fn conflist(&self) -> PathBuf {
        self.conf_dir.join(CONFLIST_NAME)
    }
}

/// The draining form of plexus's conflist: no `kubeconfig`, no `defaultNetworks`, no
/// pod-annotations capability, so ADD knows no pod annotations and attaches only the cluster
/// network; DEL still releases every attachment a pod's journal names. `None` when `conflist`
/// is not a plexus conflist list.
pub fn draining(conflist: &Value) -> Option<Value> {
    let mut v = conflist.clone();
    let plugin = v.get_mut("plugins")?.get_mut(0)?.as_object_mut()?;
    if plugin.get("type")?.as_str()? != super::primary::SELF_TYPE {
        return None;
    }
    plugin.remove("kubeconfig");
    plugin.remove("defaultNetworks");
    if let Some(caps) = plugin
        .get_mut("capabilities")
        .and_then(Value::as_object_mut)
    {
        caps.remove(POD_ANNOTATIONS_CAPABILITY);
    }
    Some(v)
}

fn remove_if_exists(path: &Path) -> Result<bool, InstallError> {
    match std::fs::remove_file(path) {
        Ok(()) => {
            let _ = super::atomic::sync_dir(path);
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(InstallError::Remove {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Rewrites plexus's conflist in its [`draining`] form and removes the kubeconfig. Returns
/// whether the conflist changed; `Ok(false)` also when there is no plexus conflist.
///
/// # Errors
/// The conflist cannot be read or written, or the kubeconfig cannot be removed.
pub fn drain(paths: &Paths) -> Result<bool, InstallError> {
    let path = paths.conflist();
    let err = |source| InstallError::Write {
        path: path.clone(),
        source,
    };
    let Some(bytes) = super::atomic::read_if_exists(&path).map_err(err)? else {
        return Ok(false);
    };
    let current: Value = serde_json::from_slice(&bytes)
        .map_err(|e| err(io::Error::new(io::ErrorKind::InvalidData, e)))?;
    let Some(draining) = draining(&current) else {
        return Ok(false);
    };
    let mut out = serde_json::to_vec_pretty(&draining)
        .map_err(|e| err(io::Error::new(io::ErrorKind::InvalidData, e)))?;
    out.push(b'\n');
    let changed = write_if_changed(&path, &out, CONFLIST_MODE)?;
    remove_if_exists(&paths.kubeconfig)?;
    Ok(changed)
}

/// Removes plexus's conflist (and an older release's), its kubeconfig and its binary. Returns
/// what was removed.
///
/// # Errors
/// A file exists and cannot be removed.
pub fn finish(paths: &Paths) -> Result<Vec<PathBuf>, InstallError> {
    let mut removed = Vec::new();
    let old = paths.conf_dir.join(OLD_CONFLIST_NAME);
    let mut files = vec![paths.conflist(), paths.kubeconfig.clone()];
    if order::classify(&old) == order::Kind::Plexus {
        files.push(old);
    }
    // The binary last: while the conflist exists, the runtime may still run it.
    files.push(paths.bin_dir.join("plexus"));
    for f in files {
        if remove_if_exists(&f)? {
            removed.push(f);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn draining_keeps_the_cluster_network_and_drops_what_adds_networks() {
        let installed = json!({"cniVersion":"1.0.0","name":"plexus-cni-network","plugins":[{
            "type":"plexus","clusterNetwork":"/etc/cni/net.d/10-x.conflist",
            "kubeconfig":"/k","cniDir":"/var/lib/plexus","defaultNetworks":["a"],
            "capabilities":{"portMappings":true,"io.kubernetes.cri.pod-annotations":true}}]});
        let d = draining(&installed).unwrap();
        let plugin = &d["plugins"][0];
        assert_eq!(plugin["clusterNetwork"], "/etc/cni/net.d/10-x.conflist");
        assert_eq!(plugin["cniDir"], "/var/lib/plexus");
        assert!(plugin.get("kubeconfig").is_none());
        assert!(plugin.get("defaultNetworks").is_none());
        assert_eq!(plugin["capabilities"], json!({"portMappings": true}));
        let other = json!({"cniVersion":"1.0.0","name":"b","plugins":[{"type":"bridge"}]});
        assert_eq!(
            draining(&other),
            None,
            "only plexus's own conflist is rewritten"
        );
    }
}
