//! `plexus lint` from the outside: run it on files in a temp dir and hold its output to the
//! format the README documents, every finding of a case, no more and no fewer.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A temp directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("plexus-lint-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    /// Writes `content` to `name` (directories created) and returns its path.
    pub fn write(&self, name: &str, content: &str) -> PathBuf {
        let p = self.0.join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, content).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Runs `plexus lint ARGS...` with `stdin`: exit code and stdout.
pub fn lint_stdin(args: &[String], stdin: &[u8]) -> (i32, String) {
    let mut child = Command::new(super::plexus_bin())
        .arg("lint")
        .args(args)
        .env_remove("CNI_COMMAND")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run plexus lint");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Runs `plexus lint ARGS... PATHS...`: exit code and stdout.
pub fn lint(args: &[&str], paths: &[PathBuf]) -> (i32, String) {
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    all.extend(paths.iter().map(|p| p.display().to_string()));
    lint_stdin(&all, b"")
}

/// A NAD in namespace `default` whose spec.config is `config` (JSON text).
pub fn nad(name: &str, config: &str) -> String {
    format!(
        "apiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  config: '{config}'\n"
    )
}

/// A pod in namespace `default` with the networks annotation `networks` (a YAML scalar).
pub fn pod(name: &str, networks: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: default\n  annotations:\n    k8s.v1.cni.cncf.io/networks: '{networks}'\nspec:\n  containers: [{{name: c, image: busybox}}]\n"
    )
}

/// The finding lines of an output (all but the summary), each checked against the documented
/// format `FILE: [KIND [NAMESPACE/]NAME: ][FIELD: ]SEVERITY: MESSAGE`: the file first, at most
/// an object and a field before the severity, and the message never repeating the object or
/// the field.
pub fn findings<'a>(out: &'a str, files: &[String]) -> Vec<&'a str> {
    let lines: Vec<&str> = out.lines().collect();
    let (summary, found) = lines.split_last().expect("lint printed nothing");
    assert!(
        summary.starts_with("plexus lint: ok: ") || summary.starts_with("plexus lint: FAILED: "),
        "summary line {summary:?}"
    );
    for line in found {
        let file = files
            .iter()
            .filter(|f| line.starts_with(&format!("{f}: ")))
            .max_by_key(|f| f.len())
            .unwrap_or_else(|| panic!("{line:?} does not start with a linted file {files:?}"));
        let rest = &line[file.len() + 2..];
        let (head, message) = ["error", "warning", "note"]
            .iter()
            .filter_map(|sev| {
                if let Some(m) = rest.strip_prefix(&format!("{sev}: ")) {
                    return Some(("", m));
                }
                rest.find(&format!(": {sev}: "))
                    .map(|i| (&rest[..i], &rest[i + sev.len() + 4..]))
            })
            .min_by_key(|(head, _)| head.len())
            .unwrap_or_else(|| panic!("{line:?}: no severity"));
        let parts: Vec<&str> = head.split(": ").filter(|p| !p.is_empty()).collect();
        assert!(
            parts.len() <= 2,
            "{line:?}: more than object and field before the severity"
        );
        for p in parts {
            assert!(
                !message.contains(&format!("{p}: ")),
                "{line:?}: the message repeats {p:?}"
            );
        }
    }
    found.to_vec()
}

/// Asserts that `found` holds exactly one line starting with each of `want` (`{f}` is
/// `first`), and nothing else.
pub fn assert_findings(case: &str, found: &[&str], want: &[&str], first: &Path, out: &str) {
    let want: Vec<String> = want
        .iter()
        .map(|w| w.replace("{f}", &first.display().to_string()))
        .collect();
    for w in &want {
        let n = found.iter().filter(|l| l.starts_with(w.as_str())).count();
        assert_eq!(n, 1, "{case}: {n} lines start with {w:?} in:\n{out}");
    }
    assert_eq!(
        found.len(),
        want.len(),
        "{case}: expected exactly these findings {want:#?} in:\n{out}"
    );
}
