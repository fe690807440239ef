//! Lint findings: one line per problem (file, object, field, severity, message) and the summary.

use std::fmt;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Severity {
    /// Information only (an ignored document, a config resolved on the node).
    Note,
    /// Works, but probably not as meant (an unknown key, a likely misspelled plugin, a missing
    /// cniVersion); fails the run under `--strict`.
    Warning,
    /// ADD would fail, the API server would reject the object, or a setting cannot take effect
    /// as written (a log level plexus does not know, a relative path).
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// The object a finding is about: `KIND NAMESPACE/NAME` (or `KIND NAME`), or a whole file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Subject {
    /// The file as given on the command line.
    pub file: String,
    /// `KIND NAMESPACE/NAME`, or empty for the file itself.
    pub object: String,
}

impl Subject {
    /// The file itself (read and parse errors).
    pub fn file(file: &str) -> Subject {
        Subject {
            file: file.to_string(),
            object: String::new(),
        }
    }

    /// An object in a file.
    pub fn object(file: &str, kind: &str, namespace: Option<&str>, name: &str) -> Subject {
        let name = if name.is_empty() { "<unnamed>" } else { name };
        let object = match namespace {
            Some(ns) => format!("{kind} {ns}/{name}"),
            None => format!("{kind} {name}"),
        };
        Subject {
            file: file.to_string(),
            object,
        }
    }
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finding {
    /// Where.
    pub subject: Subject,
    /// The field of the object (`spec.config`, `metadata.annotations`, ...), or empty.
    pub field: String,
    /// How bad.
    pub severity: Severity,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Finding {
    /// `FILE: KIND NAMESPACE/NAME: FIELD: SEVERITY: MESSAGE`, leaving out empty parts.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.subject.file)?;
        if !self.subject.object.is_empty() {
            write!(f, " {}:", self.subject.object)?;
        }
        if !self.field.is_empty() {
            write!(f, " {}:", self.field)?;
        }
        write!(f, " {}: {}", self.severity, self.message)
    }
}

/// Every finding of one run, in the order found, and what was looked at.
#[derive(Debug, Default)]
pub(crate) struct Report {
    /// The findings.
    pub findings: Vec<Finding>,
    /// Objects checked (NADs, pods and workloads, CNI configs).
    pub objects: usize,
    /// Files read.
    pub files: usize,
}

impl Report {
    /// Adds a finding.
    pub fn push(
        &mut self,
        subject: &Subject,
        field: &str,
        severity: Severity,
        message: impl Into<String>,
    ) {
        self.findings.push(Finding {
            subject: subject.clone(),
            field: field.to_string(),
            severity,
            message: message.into(),
        });
    }

    /// Adds an error.
    pub fn error(&mut self, subject: &Subject, field: &str, message: impl Into<String>) {
        self.push(subject, field, Severity::Error, message);
    }

    /// Adds a warning.
    pub fn warning(&mut self, subject: &Subject, field: &str, message: impl Into<String>) {
        self.push(subject, field, Severity::Warning, message);
    }

    /// Adds a note.
    pub fn note(&mut self, subject: &Subject, field: &str, message: impl Into<String>) {
        self.push(subject, field, Severity::Note, message);
    }

    /// How many findings have this severity.
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    /// True when the run fails: any error, or any warning under `--strict`.
    pub fn failed(&self, strict: bool) -> bool {
        self.count(Severity::Error) > 0 || (strict && self.count(Severity::Warning) > 0)
    }

    /// The last line: what was checked and how it went.
    pub fn summary(&self, strict: bool) -> String {
        let (e, w, n) = (
            self.count(Severity::Error),
            self.count(Severity::Warning),
            self.count(Severity::Note),
        );
        let verdict = if self.failed(strict) { "FAILED" } else { "ok" };
        format!(
            "plexus lint: {verdict}: {} file(s), {} object(s): {e} error(s), {w} warning(s), {n} note(s){}",
            self.files,
            self.objects,
            if strict { " (--strict)" } else { "" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_format_table() {
        let rows: &[(&str, Subject, &str, Severity, &str)] = &[
            (
                "object and field",
                Subject::object("a.yaml", "Pod", Some("ns"), "web"),
                "metadata.annotations",
                Severity::Error,
                "a.yaml: Pod ns/web: metadata.annotations: error: boom",
            ),
            (
                "file only",
                Subject::file("b.yaml"),
                "",
                Severity::Error,
                "b.yaml: error: boom",
            ),
            (
                "unnamed, no namespace",
                Subject::object("c.conf", "conf", None, ""),
                "",
                Severity::Warning,
                "c.conf: conf <unnamed>: warning: boom",
            ),
        ];
        for (name, subject, field, sev, want) in rows {
            let f = Finding {
                subject: subject.clone(),
                field: field.to_string(),
                severity: *sev,
                message: "boom".into(),
            };
            assert_eq!(f.to_string(), *want, "{name}");
        }
    }

    #[test]
    fn strict_fails_on_warnings() {
        let mut r = Report::default();
        r.warning(&Subject::file("x"), "", "w");
        r.note(&Subject::file("x"), "", "n");
        assert!(!r.failed(false));
        assert!(r.failed(true));
        r.error(&Subject::file("x"), "", "e");
        assert!(r.failed(false));
        assert!(
            r.summary(false)
                .contains("1 error(s), 1 warning(s), 1 note(s)")
        );
    }
}
