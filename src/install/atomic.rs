//! Crash-safe file replacement for the node install: write a temp file in the target's
//! directory, fsync it, rename it over the target, fsync the directory. A reader (the runtime,
//! a running plugin) sees the old file or the new one, never half of one, and replacing a
//! binary that is executing cannot fail with "text file busy" (the old inode lives on).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The temp file used to replace `target`: `.<name>.tmp-<pid>` beside it. Its extension is
/// never `.conf`/`.conflist`/`.json`, so a runtime scanning the directory ignores it.
pub fn temp_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Replaces `target` with `bytes`, mode `mode`.
///
/// # Errors
/// Any I/O failure; the temp file is removed and `target` is left as it was.
pub fn write(target: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    replace(target, mode, |f| f.write_all(bytes))
}

/// Replaces `target` with a copy of the file at `src`, mode `mode`.
///
/// # Errors
/// `src` cannot be read or any write fails; `target` is left as it was.
pub fn copy(src: &Path, target: &Path, mode: u32) -> io::Result<()> {
    let mut input = File::open(src)?;
    replace(target, mode, |f| io::copy(&mut input, f).map(|_| ()))
}

/// Reads `path`, `None` if it does not exist.
///
/// # Errors
/// Any other read failure.
pub fn read_if_exists(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut v = Vec::new();
    f.read_to_end(&mut v)?;
    Ok(Some(v))
}

fn replace(
    target: &Path,
    mode: u32,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let tmp = temp_path(target);
    let result = (|| {
        // A temp file left by an earlier run with the same pid is stale: start afresh.
        let _ = fs::remove_file(&tmp);
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        fill(&mut f)?;
        // The umask may have narrowed the mode given at creation.
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, target)?;
        sync_dir(target)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// fsyncs the directory holding `path`, so a rename or unlink in it survives a crash.
///
/// # Errors
/// The directory cannot be opened or synced.
pub fn sync_dir(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("plexus-atomic-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn write_replaces_and_sets_mode() {
        let d = tmpdir("write");
        let t = d.join("f.conflist");
        fs::write(&t, b"old").unwrap();
        write(&t, b"new", 0o600).unwrap();
        assert_eq!(fs::read(&t).unwrap(), b"new");
        assert_eq!(
            fs::metadata(&t).unwrap().permissions().mode() & 0o777,
            0o600
        );
        write(&t, b"newer", 0o755).unwrap();
        assert_eq!(
            fs::metadata(&t).unwrap().permissions().mode() & 0o777,
            0o755
        );
        let left: Vec<_> = fs::read_dir(&d).unwrap().collect();
        assert_eq!(left.len(), 1, "no temp file left behind");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn failed_copy_leaves_target_and_no_temp() {
        let d = tmpdir("copyfail");
        let t = d.join("plexus");
        fs::write(&t, b"old").unwrap();
        assert!(copy(&d.join("missing"), &t, 0o755).is_err());
        assert_eq!(fs::read(&t).unwrap(), b"old");
        assert!(!temp_path(&t).exists());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn temp_name_is_hidden_and_not_a_config() {
        let t = temp_path(Path::new("/etc/cni/net.d/00-plexus.conflist"));
        let name = t.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with(".00-plexus.conflist.tmp-"), "{name}");
        assert_eq!(t.parent(), Some(Path::new("/etc/cni/net.d")));
    }
}
