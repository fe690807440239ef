//! The CNI invocation environment: `CNI_*` variables and stdin, validated into a [`Request`].

use std::io::Read;
use std::path::PathBuf;

/// Largest stdin plexus reads; a network config is a few KiB, so anything near this is hostile.
pub const MAX_STDIN: usize = 1 << 20;

/// The verb the runtime asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Attach the container to its networks.
    Add,
    /// Detach, best effort, idempotent.
    Del,
    /// Verify what ADD made.
    Check,
    /// Release everything not in the runtime's valid list.
    Gc,
    /// Report readiness.
    Status,
    /// Report the supported spec versions.
    Version,
}

impl Command {
    /// Parses the value of `CNI_COMMAND`.
    pub fn parse(s: &str) -> Option<Command> {
        Some(match s {
            "ADD" => Command::Add,
            "DEL" => Command::Del,
            "CHECK" => Command::Check,
            "GC" => Command::Gc,
            "STATUS" => Command::Status,
            "VERSION" => Command::Version,
            _ => return None,
        })
    }

    /// The wire spelling (`ADD`, `DEL`, ...).
    pub fn as_str(&self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
            Command::Gc => "GC",
            Command::Status => "STATUS",
            Command::Version => "VERSION",
        }
    }
}

/// Everything wrong with the environment, named variable by variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    /// Required variables that are unset or empty.
    #[error("required environment variables missing: {}", .0.join(", "))]
    Missing(Vec<&'static str>),
    /// A variable whose value breaks its rule.
    #[error("invalid {var}: {reason}")]
    Invalid {
        /// The variable's name.
        var: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
}

/// Errors reading stdin.
#[derive(Debug, thiserror::Error)]
pub enum StdinError {
    /// More than [`MAX_STDIN`] bytes.
    #[error("network configuration on stdin is larger than {MAX_STDIN} bytes")]
    TooLarge,
    /// The read itself failed.
    #[error("reading stdin: {0}")]
    Io(#[from] std::io::Error),
}

/// A validated CNI invocation (environment only; the config comes from stdin separately).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The verb.
    pub command: Command,
    /// `CNI_CONTAINERID` (empty for STATUS, VERSION and GC).
    pub container_id: String,
    /// `CNI_NETNS` (may be empty on DEL).
    pub netns: String,
    /// `CNI_IFNAME`.
    pub ifname: String,
    /// `CNI_ARGS` as given, parsed into pairs in order.
    pub args: Vec<(String, String)>,
    /// `CNI_PATH` directories in order.
    pub path: Vec<PathBuf>,
}

impl Request {
    /// Reads and validates the `CNI_*` variables through `get` (normally `std::env::var`).
    ///
    /// # Errors
    /// [`EnvError::Missing`] naming every required variable that is absent for this verb,
    /// [`EnvError::Invalid`] for a value that breaks its rule.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Request, EnvError> {
        let var = |k: &str| get(k).unwrap_or_default();
        let command_s = var("CNI_COMMAND");
        if command_s.is_empty() {
            return Err(EnvError::Missing(vec!["CNI_COMMAND"]));
        }
        let command = Command::parse(&command_s).ok_or_else(|| EnvError::Invalid {
            var: "CNI_COMMAND",
            reason: format!("unknown command {:?}", truncate(&command_s)),
        })?;
        let req = Request {
            command,
            container_id: var("CNI_CONTAINERID"),
            netns: var("CNI_NETNS"),
            ifname: var("CNI_IFNAME"),
            args: parse_args(&var("CNI_ARGS"))?,
            path: var("CNI_PATH")
                .split(':')
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .collect(),
        };
        let required: &[&'static str] = match command {
            Command::Add | Command::Check => &["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"],
            Command::Del => &["CNI_CONTAINERID", "CNI_IFNAME"],
            Command::Gc | Command::Status | Command::Version => &[],
        };
        let missing: Vec<&'static str> = required
            .iter()
            .copied()
            .filter(|k| match *k {
                "CNI_CONTAINERID" => req.container_id.is_empty(),
                "CNI_NETNS" => req.netns.is_empty(),
                _ => req.ifname.is_empty(),
            })
            .collect();
        if !missing.is_empty() {
            return Err(EnvError::Missing(missing));
        }
        if !req.container_id.is_empty() {
            validate_container_id(&req.container_id)?;
        }
        if !req.ifname.is_empty() {
            validate_ifname(&req.ifname).map_err(|e| EnvError::Invalid {
                var: "CNI_IFNAME",
                reason: e.to_string(),
            })?;
        }
        if !req.netns.is_empty() && !req.netns.starts_with('/') {
            return Err(EnvError::Invalid {
                var: "CNI_NETNS",
                reason: format!("{:?} is not an absolute path", truncate(&req.netns)),
            });
        }
        Ok(req)
    }

    /// The value of a `CNI_ARGS` key, if present.
    pub fn arg(&self, key: &str) -> Option<&str> {
        self.args
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `CNI_ARGS` re-encoded as `K=V;K=V`.
    pub fn args_string(&self) -> String {
        encode_args(&self.args)
    }
}

/// Encodes pairs as `K=V;K=V`.
pub fn encode_args(args: &[(String, String)]) -> String {
    args.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(";")
}

/// Parses `K=V;K=V` (empty segments are skipped, as libcni does).
///
/// # Errors
/// A segment without `=` or with an empty key.
pub fn parse_args(s: &str) -> Result<Vec<(String, String)>, EnvError> {
    let mut out = Vec::new();
    for seg in s.split(';').filter(|s| !s.is_empty()) {
        match seg.split_once('=') {
            Some((k, v)) if !k.is_empty() => out.push((k.to_string(), v.to_string())),
            _ => {
                return Err(EnvError::Invalid {
                    var: "CNI_ARGS",
                    reason: format!("{:?} is not a KEY=VALUE pair", truncate(seg)),
                });
            }
        }
    }
    Ok(out)
}

/// Checks a container id against `^[a-zA-Z0-9][a-zA-Z0-9_.-]*$` (and a sane length).
///
/// # Errors
/// [`EnvError::Invalid`] naming `CNI_CONTAINERID`.
pub fn validate_container_id(id: &str) -> Result<(), EnvError> {
    if is_valid_container_id(id) {
        Ok(())
    } else {
        Err(EnvError::Invalid {
            var: "CNI_CONTAINERID",
            reason: format!(
                "{:?} must match ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$ (at most 255 bytes)",
                truncate(id)
            ),
        })
    }
}

/// What is wrong with an interface name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IfnameError {
    /// Empty.
    #[error("interface name is empty")]
    Empty,
    /// More than 15 bytes.
    #[error("interface name {0:?} is longer than 15 bytes")]
    TooLong(String),
    /// `.` or `..`.
    #[error("interface name {0:?} is not allowed")]
    Dots(String),
    /// A character the kernel or the CNI spec refuses.
    #[error("interface name {0:?} contains '/', ':', whitespace or a control character")]
    BadChar(String),
}

/// Checks an interface name: 1..15 bytes, not `.` or `..`, no `/`, `:` or whitespace.
///
/// # Errors
/// [`IfnameError`] saying what is wrong.
pub fn validate_ifname(name: &str) -> Result<(), IfnameError> {
    if name.is_empty() {
        return Err(IfnameError::Empty);
    }
    if name.len() > 15 {
        return Err(IfnameError::TooLong(truncate(name)));
    }
    if name == "." || name == ".." {
        return Err(IfnameError::Dots(name.to_string()));
    }
    if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
    {
        return Err(IfnameError::BadChar(truncate(name)));
    }
    Ok(())
}

/// Reads all of stdin up to [`MAX_STDIN`].
///
/// # Errors
/// [`StdinError::TooLarge`] past the limit, [`StdinError::Io`] on a read error.
pub fn read_stdin(mut r: impl Read) -> Result<Vec<u8>, StdinError> {
    let mut buf = Vec::with_capacity(4096);
    r.by_ref()
        .take(MAX_STDIN as u64 + 1)
        .read_to_end(&mut buf)?;
    if buf.len() > MAX_STDIN {
        return Err(StdinError::TooLarge);
    }
    Ok(buf)
}

/// Shortens a value quoted in an error message.
pub fn truncate(s: &str) -> String {
    crate::text::truncate(s, 80)
}

/// True if `id` is a valid CNI container id: `^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`, at most 255 bytes.
///
/// Such an id contains no `/`, no NUL and does not start with `.`, so it can name a file.
pub fn is_valid_container_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    match bytes.split_first() {
        None => false,
        Some((first, rest)) => {
            bytes.len() <= 255
                && first.is_ascii_alphanumeric()
                && rest
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> Result<Request, EnvError> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Request::from_env(|k| m.get(k).cloned())
    }

    const FULL: &[(&str, &str)] = &[
        ("CNI_COMMAND", "ADD"),
        ("CNI_CONTAINERID", "abc123"),
        ("CNI_NETNS", "/run/netns/x"),
        ("CNI_IFNAME", "eth0"),
        ("CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAME=p"),
        ("CNI_PATH", "/opt/cni/bin::/usr/lib/cni"),
    ];

    fn with(over: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut v: Vec<_> = FULL
            .iter()
            .filter(|(k, _)| !over.iter().any(|(o, _)| o == k))
            .copied()
            .collect();
        v.extend(over.iter().filter(|(_, val)| *val != "<unset>").copied());
        v
    }

    #[test]
    fn full_add_parses() {
        let r = env(FULL).unwrap();
        assert_eq!(r.command, Command::Add);
        assert_eq!(r.arg("K8S_POD_NAME"), Some("p"));
        assert_eq!(r.path.len(), 2);
        assert_eq!(r.args_string(), "IgnoreUnknown=1;K8S_POD_NAME=p");
    }

    #[test]
    fn env_error_table() {
        let rows: &[(&str, Vec<(&str, &str)>, &str)] = &[
            (
                "no command",
                with(&[("CNI_COMMAND", "<unset>")]),
                "CNI_COMMAND",
            ),
            (
                "bad command",
                with(&[("CNI_COMMAND", "NUKE")]),
                "CNI_COMMAND",
            ),
            (
                "no id",
                with(&[("CNI_CONTAINERID", "<unset>")]),
                "CNI_CONTAINERID",
            ),
            ("no netns", with(&[("CNI_NETNS", "")]), "CNI_NETNS"),
            (
                "no ifname",
                with(&[("CNI_IFNAME", "<unset>")]),
                "CNI_IFNAME",
            ),
            (
                "id slash",
                with(&[("CNI_CONTAINERID", "../etc")]),
                "CNI_CONTAINERID",
            ),
            (
                "id dot first",
                with(&[("CNI_CONTAINERID", ".x")]),
                "CNI_CONTAINERID",
            ),
            (
                "ifname long",
                with(&[("CNI_IFNAME", "abcdefghijklmnop")]),
                "CNI_IFNAME",
            ),
            ("ifname dotdot", with(&[("CNI_IFNAME", "..")]), "CNI_IFNAME"),
            (
                "ifname colon",
                with(&[("CNI_IFNAME", "eth0:1")]),
                "CNI_IFNAME",
            ),
            (
                "ifname space",
                with(&[("CNI_IFNAME", "eth 0")]),
                "CNI_IFNAME",
            ),
            ("args no =", with(&[("CNI_ARGS", "A=1;broken")]), "CNI_ARGS"),
            (
                "netns relative",
                with(&[("CNI_NETNS", "run/x")]),
                "CNI_NETNS",
            ),
        ];
        for (name, vars, want) in rows {
            let err = env(vars).expect_err(name);
            assert!(err.to_string().contains(want), "{name}: {err}");
        }
    }

    #[test]
    fn missing_lists_every_variable() {
        let err = env(&[("CNI_COMMAND", "ADD")]).unwrap_err();
        assert_eq!(
            err,
            EnvError::Missing(vec!["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"])
        );
    }

    #[test]
    fn verbs_needing_less() {
        let rows: &[(&str, Vec<(&str, &str)>)] = &[
            (
                "del without netns",
                with(&[("CNI_COMMAND", "DEL"), ("CNI_NETNS", "")]),
            ),
            ("status bare", vec![("CNI_COMMAND", "STATUS")]),
            ("version bare", vec![("CNI_COMMAND", "VERSION")]),
            ("gc bare", vec![("CNI_COMMAND", "GC")]),
        ];
        for (name, vars) in rows {
            assert!(env(vars).is_ok(), "{name}");
        }
    }

    #[test]
    fn stdin_limit() {
        let big = vec![b' '; MAX_STDIN + 1];
        assert!(matches!(read_stdin(&big[..]), Err(StdinError::TooLarge)));
        let ok = vec![b' '; MAX_STDIN];
        assert_eq!(read_stdin(&ok[..]).unwrap().len(), MAX_STDIN);
    }
}
