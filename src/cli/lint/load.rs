//! Reading lint inputs: the command line's paths to files (directories walked, `-` for
//! stdin), a file's bytes to its documents (JSON, or YAML with `---` separated documents), and
//! Kubernetes `List`s flattened into their items.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use super::report::{Report, Subject};

/// The name findings give stdin (`-` on the command line).
pub(crate) const STDIN: &str = "<stdin>";

/// Extensions of the files taken from a directory.
const EXTENSIONS: &[&str] = &["yaml", "yml", "json", "conf", "conflist"];

/// The files the command line names: each file as given, every file under a directory (sorted,
/// recursively, hidden entries skipped) whose extension is one of [`EXTENSIONS`], and stdin
/// for `-` (read once).
pub(crate) fn sources(paths: &[PathBuf], report: &mut Report) -> Vec<Source> {
    let mut out = Vec::new();
    let mut stdin_read = false;
    for p in paths {
        if p.as_os_str() == "-" {
            if stdin_read {
                report.error(&Subject::file(STDIN), "", "`-` is given more than once");
                continue;
            }
            stdin_read = true;
            let mut bytes = Vec::new();
            out.push(Source {
                name: STDIN.to_string(),
                content: std::io::stdin().read_to_end(&mut bytes).map(|_| bytes),
            });
        } else if p.is_dir() {
            let before = out.len();
            walk(p, &mut out, report);
            if out.len() == before {
                report.warning(
                    &Subject::file(&p.display().to_string()),
                    "",
                    format!("the directory holds no .{} file", EXTENSIONS.join(", .")),
                );
            }
        } else {
            out.push(read(p));
        }
    }
    out
}

fn read(p: &Path) -> Source {
    Source {
        name: p.display().to_string(),
        content: std::fs::read(p),
    }
}

/// Pushes the files under `dir`, in name order, descending into subdirectories (not into
/// symbolic links to directories, so a loop cannot trap the walk).
fn walk(dir: &Path, out: &mut Vec<Source>, report: &mut Report) {
    let entries = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => {
            let at = Subject::file(&dir.display().to_string());
            report.error(&at, "", format!("cannot read the directory: {e}"));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .collect();
    paths.sort();
    for p in paths {
        let linked_dir = p.is_symlink() && p.is_dir();
        if p.is_dir() && !linked_dir {
            walk(&p, out, report);
        } else if p.is_file()
            && p.extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| EXTENSIONS.contains(&x))
        {
            out.push(read(&p));
        }
    }
}

/// A file named on the command line, with its bytes or why it could not be read.
pub(crate) struct Source {
    /// The path as given.
    pub name: String,
    /// The bytes, or why they could not be read.
    pub content: Result<Vec<u8>, std::io::Error>,
}

/// One document of a file.
pub(crate) struct Doc {
    /// The file it came from.
    pub file: String,
    /// The document itself.
    pub value: Value,
    /// True when the file is a CNI config file by its extension (`.conf`, `.conflist`), so a
    /// document without `kind` is checked as a network config whatever it holds.
    pub cni_file: bool,
}

/// True when the name ends like a CNI config file.
fn is_cni_file(name: &str) -> bool {
    name.ends_with(".conf") || name.ends_with(".conflist")
}

/// True when the content is parsed as JSON: by extension, or for names that are neither JSON
/// nor YAML by extension, because it starts with `{` or `[`.
fn is_json(name: &str, bytes: &[u8]) -> bool {
    if name.ends_with(".yaml") || name.ends_with(".yml") {
        return false;
    }
    is_cni_file(name)
        || name.ends_with(".json")
        || matches!(
            bytes.iter().find(|b| !b.is_ascii_whitespace()),
            Some(b'{' | b'[')
        )
}

/// The documents of a file. Unreadable files, invalid JSON or YAML and documents that are not
/// objects become errors naming the file (and the document's position).
pub(crate) fn documents(src: &Source, report: &mut Report) -> Vec<Doc> {
    let at = Subject::file(&src.name);
    let bytes = match &src.content {
        Ok(b) => b,
        Err(e) => {
            report.error(&at, "", format!("cannot read: {e}"));
            return Vec::new();
        }
    };
    let cni_file = is_cni_file(&src.name);
    let mut values = Vec::new();
    if is_json(&src.name, bytes) {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(v) => values.push(v),
            Err(e) => {
                report.error(&at, "", format!("invalid JSON: {e}"));
                return Vec::new();
            }
        }
    } else {
        let Ok(text) = std::str::from_utf8(bytes) else {
            report.error(&at, "", "not UTF-8 text");
            return Vec::new();
        };
        for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
            match Value::deserialize(doc) {
                Ok(Value::Null) => {}
                Ok(v) => values.push(v),
                Err(e) => {
                    report.error(&at, "", format!("document {}: invalid YAML: {e}", i + 1));
                    return Vec::new();
                }
            }
        }
    }
    let mut out = Vec::new();
    for (i, v) in values.into_iter().enumerate() {
        flatten(v, &src.name, i + 1, cni_file, report, &mut out);
    }
    if out.is_empty() && report.findings.iter().all(|f| f.subject != at) {
        report.warning(&at, "", "the file holds no documents");
    }
    out
}

/// Pushes `v`, or the items of a Kubernetes `List` (`kind: List`, `PodList`, ...).
fn flatten(
    v: Value,
    file: &str,
    position: usize,
    cni_file: bool,
    report: &mut Report,
    out: &mut Vec<Doc>,
) {
    let at = Subject::file(file);
    let Value::Object(mut m) = v else {
        report.error(
            &at,
            "",
            format!("document {position} is not an object (a mapping)"),
        );
        return;
    };
    let is_list = m
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k.ends_with("List"));
    if is_list && let Some(Value::Array(items)) = m.remove("items") {
        for item in items {
            flatten(item, file, position, false, report, out);
        }
        return;
    }
    out.push(Doc {
        file: file.to_string(),
        value: Value::Object(m),
        cni_file,
    });
}
