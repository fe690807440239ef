//! Network configurations as delegates receive them: single conf or conflist, normalised into
//! [`ConfList`], with the plugin-name safety rule and libcni's per-plugin stdin rules.

use serde_json::{Map, Value};

use super::version::Version;

/// What is wrong with a network configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfError {
    /// Not JSON at all.
    #[error("{source_name}: not valid JSON: {reason}")]
    Decode {
        /// Where the config came from (file path or network name).
        source_name: String,
        /// The parser's message.
        reason: String,
    },
    /// JSON, but breaks a rule of the config format.
    #[error("{source_name}: {reason}")]
    Invalid {
        /// Where the config came from.
        source_name: String,
        /// What is wrong.
        reason: String,
    },
    /// A cniVersion plexus cannot speak.
    #[error("{source_name}: unsupported cniVersion {version:?}")]
    Version {
        /// Where the config came from.
        source_name: String,
        /// The version given.
        version: String,
    },
}

/// Every problem of a network config ([`ConfList::check_value`]): the first, as
/// [`ConfList::from_value`] reports it, and the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfProblems {
    /// The first problem.
    pub first: ConfError,
    /// The others, in order.
    pub more: Vec<ConfError>,
}

impl ConfProblems {
    /// `found` so far followed by `last`, which ends the check.
    fn ending(mut found: Vec<ConfError>, last: ConfError) -> ConfProblems {
        if found.is_empty() {
            return ConfProblems {
                first: last,
                more: Vec::new(),
            };
        }
        let first = found.remove(0);
        found.push(last);
        ConfProblems { first, more: found }
    }

    /// Every problem, in order.
    pub fn all(self) -> Vec<ConfError> {
        std::iter::once(self.first).chain(self.more).collect()
    }
}

/// A network config normalised to a list of plugins (a single conf becomes a list of one).
#[derive(Debug, Clone, PartialEq)]
pub struct ConfList {
    /// The list's (or single conf's) `cniVersion`, spoken to every plugin of the list.
    pub cni_version: String,
    /// The network name.
    pub name: String,
    /// Plugin configs in order, as given (without injected keys).
    pub plugins: Vec<Map<String, Value>>,
    /// `disableCheck` of the list.
    pub disable_check: bool,
    /// `disableGC` of the list.
    pub disable_gc: bool,
    /// True when the source was a single conf, not a list.
    pub single: bool,
}

impl ConfList {
    /// Parses bytes that hold a conf or a conflist.
    ///
    /// # Errors
    /// [`ConfError::Decode`] for non-JSON, otherwise as [`ConfList::from_value`].
    pub fn from_slice(bytes: &[u8], source_name: &str) -> Result<ConfList, ConfError> {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| ConfError::Decode {
            source_name: source_name.to_string(),
            reason: e.to_string(),
        })?;
        ConfList::from_value(v, source_name, None)
    }

    /// Normalises a JSON conf or conflist. `default_name` fills in a missing `name`.
    ///
    /// # Errors
    /// [`ConfError::Invalid`] for a missing or unsafe `type`, a missing name, a missing
    /// `plugins` list; [`ConfError::Version`] for a cniVersion plexus does not speak. The first
    /// problem found, in the order [`ConfList::check_value`] lists them.
    pub fn from_value(
        v: Value,
        source_name: &str,
        default_name: Option<&str>,
    ) -> Result<ConfList, ConfError> {
        ConfList::check_value(v, source_name, default_name).map_err(|p| p.first)
    }

    /// As [`ConfList::from_value`], but collecting every problem instead of stopping at the
    /// first (for `plexus lint`): the cniVersion, the name, then each plugin's `type` and
    /// `ipam.type` in order. A config that is not an object or whose `plugins` is not a list of
    /// objects ends the check there.
    ///
    /// # Errors
    /// Every problem found.
    pub fn check_value(
        v: Value,
        source_name: &str,
        default_name: Option<&str>,
    ) -> Result<ConfList, ConfProblems> {
        let invalid = |reason: String| ConfError::Invalid {
            source_name: source_name.to_string(),
            reason,
        };
        let Value::Object(mut top) = v else {
            return Err(ConfProblems::ending(
                Vec::new(),
                invalid("a network config must be a JSON object".into()),
            ));
        };
        let mut problems = Vec::new();
        let cni_version = match top.get("cniVersion") {
            None => String::new(),
            Some(Value::String(s)) => {
                if Version::parse_supported(s).is_none() {
                    problems.push(ConfError::Version {
                        source_name: source_name.to_string(),
                        version: s.clone(),
                    });
                }
                s.clone()
            }
            Some(_) => {
                problems.push(invalid("cniVersion must be a string".into()));
                String::new()
            }
        };
        let name = match top.get("name") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            None | Some(Value::String(_)) => match default_name {
                Some(d) => d.to_string(),
                None => {
                    problems.push(invalid("the config has no \"name\"".into()));
                    String::new()
                }
            },
            Some(_) => {
                problems.push(invalid("name must be a string".into()));
                String::new()
            }
        };
        let flag =
            |m: &Map<String, Value>, k: &str| m.get(k).and_then(Value::as_bool).unwrap_or(false);
        let disable_check = flag(&top, "disableCheck");
        let disable_gc = flag(&top, "disableGC");
        let (plugins, single) = match top.remove("plugins") {
            Some(Value::Array(list)) => {
                if list.is_empty() {
                    let last = invalid("\"plugins\" is empty".into());
                    return Err(ConfProblems::ending(problems, last));
                }
                let mut out = Vec::with_capacity(list.len());
                for (i, p) in list.into_iter().enumerate() {
                    match p {
                        Value::Object(m) => out.push(m),
                        _ => {
                            let last = invalid(format!("plugins[{i}] is not an object"));
                            return Err(ConfProblems::ending(problems, last));
                        }
                    }
                }
                (out, false)
            }
            Some(_) => {
                let last = invalid("\"plugins\" must be a list".into());
                return Err(ConfProblems::ending(problems, last));
            }
            None => {
                if !top.contains_key("type") {
                    let last = invalid("the config has neither \"type\" nor \"plugins\"".into());
                    return Err(ConfProblems::ending(problems, last));
                }
                (vec![top], true)
            }
        };
        for (i, p) in plugins.iter().enumerate() {
            let at = if single {
                String::new()
            } else {
                format!("plugins[{i}].")
            };
            problems.extend(plugin_problems(p, &at).into_iter().map(invalid));
        }
        let mut problems = problems.into_iter();
        if let Some(first) = problems.next() {
            return Err(ConfProblems {
                first,
                more: problems.collect(),
            });
        }
        Ok(ConfList {
            cni_version,
            name,
            plugins,
            disable_check,
            disable_gc,
            single,
        })
    }

    /// A config as plexus stored it in a journal record, read back without judging it by
    /// today's rules (a record written by an older release must DEL with this one): any object
    /// with a `plugins` list of objects, or a single conf. `None` only when it has neither shape.
    pub fn from_stored(v: &Value, default_name: &str) -> Option<ConfList> {
        let top = v.as_object()?;
        let text = |k: &str| top.get(k).and_then(Value::as_str).map(str::to_string);
        let flag = |k: &str| top.get(k).and_then(Value::as_bool).unwrap_or(false);
        let (plugins, single) = match top.get("plugins") {
            Some(Value::Array(list)) => (
                list.iter()
                    .map(|p| p.as_object().cloned())
                    .collect::<Option<Vec<_>>>()?,
                false,
            ),
            Some(_) => return None,
            None => (vec![top.clone()], true),
        };
        if plugins.is_empty() {
            return None;
        }
        Some(ConfList {
            cni_version: text("cniVersion").unwrap_or_default(),
            name: text("name").unwrap_or_else(|| default_name.to_string()),
            plugins,
            disable_check: flag("disableCheck"),
            disable_gc: flag("disableGC"),
            single,
        })
    }

    /// True when some plugin of the list has `type` `ty` (a config that would run plexus itself).
    pub fn runs(&self, ty: &str) -> bool {
        (0..self.plugins.len()).any(|i| self.plugin_type(i) == ty)
    }

    /// The parsed version; one that does not parse (only possible in a stored config) counts as
    /// the newest plexus knows.
    pub fn version(&self) -> Version {
        Version::parse(&self.cni_version)
            .or_else(|| Version::parse(super::version::LATEST))
            .unwrap_or(Version::V1_1_0)
    }

    /// The `type` of plugin `i`.
    pub fn plugin_type(&self, i: usize) -> &str {
        self.plugins
            .get(i)
            .and_then(|p| p.get("type"))
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// Every plugin type of the list, joined with `,` (for messages).
    pub fn types(&self) -> String {
        (0..self.plugins.len())
            .map(|i| self.plugin_type(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The config back as JSON in its original shape (conf or conflist).
    pub fn to_value(&self) -> Value {
        if self.single {
            let mut p = self.plugins[0].clone();
            p.insert("name".into(), Value::String(self.name.clone()));
            p.insert("cniVersion".into(), Value::String(self.cni_version.clone()));
            return Value::Object(p);
        }
        let mut m = Map::new();
        m.insert("cniVersion".into(), Value::String(self.cni_version.clone()));
        m.insert("name".into(), Value::String(self.name.clone()));
        if self.disable_check {
            m.insert("disableCheck".into(), Value::Bool(true));
        }
        if self.disable_gc {
            m.insert("disableGC".into(), Value::Bool(true));
        }
        m.insert(
            "plugins".into(),
            Value::Array(self.plugins.iter().cloned().map(Value::Object).collect()),
        );
        Value::Object(m)
    }

    /// The config for plugin `i`, libcni style: `name` and `cniVersion` of the list injected,
    /// `runtimeConfig` holding only the capabilities the plugin declares (`capabilities: {k: true}`),
    /// and `prevResult` when given.
    pub fn plugin_conf(
        &self,
        i: usize,
        runtime_config: &Map<String, Value>,
        prev_result: Option<&Value>,
    ) -> Map<String, Value> {
        let mut p = self.plugins.get(i).cloned().unwrap_or_default();
        p.insert("name".into(), Value::String(self.name.clone()));
        p.insert("cniVersion".into(), Value::String(self.cni_version.clone()));
        let caps = p.get("capabilities").and_then(Value::as_object);
        let rc: Map<String, Value> = runtime_config
            .iter()
            .filter(|(k, _)| {
                caps.and_then(|c| c.get(k.as_str()))
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if rc.is_empty() {
            p.remove("runtimeConfig");
        } else {
            p.insert("runtimeConfig".into(), Value::Object(rc));
        }
        match prev_result {
            Some(r) => {
                p.insert("prevResult".into(), r.clone());
            }
            None => {
                p.remove("prevResult");
            }
        }
        p
    }
}

/// The problems of one plugin's `type` and `ipam.type` (`at` prefixes their field).
fn plugin_problems(p: &Map<String, Value>, at: &str) -> Vec<String> {
    let mut out = Vec::new();
    match p.get("type") {
        Some(Value::String(ty)) => {
            if let Err(r) = validate_plugin_name(ty) {
                out.push(format!("{at}type: {r}"));
            }
        }
        _ => out.push(format!("{at}type is missing or not a string")),
    }
    if let Some(ipam) = p.get("ipam") {
        match ipam.get("type") {
            Some(Value::String(s)) => {
                if let Err(r) = validate_plugin_name(s) {
                    out.push(format!("{at}ipam.type: {r}"));
                }
            }
            None if ipam.as_object().is_some_and(|m| m.is_empty()) => {}
            None => out.push(format!("{at}ipam has no type")),
            Some(_) => out.push(format!("{at}ipam.type must be a string")),
        }
    }
    out
}

/// Why a plugin `type` is not a plain file name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginNameError {
    /// Empty.
    #[error("plugin name is empty")]
    Empty,
    /// `.` or `..`.
    #[error("plugin name {0:?} is not a file name")]
    Dots(String),
    /// Longer than a file name can be.
    #[error("plugin name is longer than 255 bytes")]
    TooLong,
    /// A path or a name with control characters.
    #[error("plugin name {0:?} must be a plain file name (no '/', '\\' or control characters)")]
    NotPlain(String),
}

/// The plugin-name rule: a `type` is a plain file name looked up in the plugin directories.
/// Rejects empty names, `.`, `..`, and anything with `/`, `\`, NUL or other control characters.
///
/// # Errors
/// [`PluginNameError`] quoting the name.
pub fn validate_plugin_name(name: &str) -> Result<(), PluginNameError> {
    if name.is_empty() {
        return Err(PluginNameError::Empty);
    }
    if name == "." || name == ".." {
        return Err(PluginNameError::Dots(name.to_string()));
    }
    if name.len() > 255 {
        return Err(PluginNameError::TooLong);
    }
    if name
        .chars()
        .any(|c| c == '/' || c == '\\' || c == '\0' || c.is_control())
    {
        return Err(PluginNameError::NotPlain(super::env::truncate(name)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plugin_name_table() {
        let rows: &[(&str, &str, bool)] = &[
            ("plain", "bridge", true),
            ("dashes", "host-local", true),
            ("dotted file", "my.plugin", true),
            ("traversal", "../../../bin/true", false),
            ("absolute", "/bin/sh", false),
            ("subdir", "a/b", false),
            ("dotdot", "..", false),
            ("dot", ".", false),
            ("empty", "", false),
            ("backslash", "a\\b", false),
            ("nul", "a\0b", false),
            ("newline", "a\nb", false),
        ];
        for (name, input, ok) in rows {
            assert_eq!(validate_plugin_name(input).is_ok(), *ok, "{name}");
        }
    }

    #[test]
    fn conf_table() {
        let rows: &[(&str, Value, Result<(&str, usize), &str>)] = &[
            (
                "single",
                json!({"cniVersion":"1.0.0","name":"a","type":"bridge"}),
                Ok(("a", 1)),
            ),
            (
                "list",
                json!({"cniVersion":"0.4.0","name":"l","plugins":[{"type":"bridge"},{"type":"tuning"}]}),
                Ok(("l", 2)),
            ),
            (
                "no type",
                json!({"cniVersion":"1.0.0","name":"a"}),
                Err("neither"),
            ),
            (
                "empty list",
                json!({"cniVersion":"1.0.0","name":"a","plugins":[]}),
                Err("empty"),
            ),
            (
                "bad version",
                json!({"cniVersion":"9.9.9","name":"a","type":"x"}),
                Err("unsupported cniVersion"),
            ),
            (
                "hostile type",
                json!({"cniVersion":"1.0.0","name":"a","type":"../x"}),
                Err("type"),
            ),
            (
                "hostile ipam",
                json!({"cniVersion":"1.0.0","name":"a","type":"macvlan","ipam":{"type":"/bin/sh"}}),
                Err("ipam.type"),
            ),
            (
                "hostile in list",
                json!({"cniVersion":"1.0.0","name":"a","plugins":[{"type":"bridge"},{"type":".."}]}),
                Err("plugins[1].type"),
            ),
            ("not object", json!([1]), Err("JSON object")),
            (
                "no name",
                json!({"cniVersion":"1.0.0","type":"x"}),
                Err("no \"name\""),
            ),
        ];
        for (name, v, want) in rows {
            let got = ConfList::from_value(v.clone(), "t", None);
            match (got, want) {
                (Ok(c), Ok((n, len))) => {
                    assert_eq!(c.name, *n, "{name}");
                    assert_eq!(c.plugins.len(), *len, "{name}");
                }
                (Err(e), Err(frag)) => assert!(e.to_string().contains(frag), "{name}: {e}"),
                (got, _) => panic!("{name}: unexpected {got:?}"),
            }
        }
    }

    #[test]
    fn check_value_lists_every_problem_table() {
        let rows: &[(&str, Value, &[&str])] = &[
            (
                "version, name and both types",
                json!({"cniVersion":"9.9.9","type":"../x","ipam":{"type":"/bin/sh"}}),
                &[
                    "t: unsupported cniVersion \"9.9.9\"",
                    "t: the config has no \"name\"",
                    "t: type: plugin name \"../x\"",
                    "t: ipam.type: plugin name \"/bin/sh\"",
                ],
            ),
            (
                "each plugin of a list",
                json!({"cniVersion":"1.0.0","name":"l","plugins":[{"type":".."},{"type":"ok"},{}]}),
                &[
                    "t: plugins[0].type: plugin name \"..\"",
                    "t: plugins[2].type is missing",
                ],
            ),
            (
                "a bad list ends the check",
                json!({"cniVersion":true,"name":"l","plugins":{}}),
                &[
                    "t: cniVersion must be a string",
                    "t: \"plugins\" must be a list",
                ],
            ),
            (
                "alone",
                json!("x"),
                &["t: a network config must be a JSON object"],
            ),
        ];
        for (name, v, want) in rows {
            let p = ConfList::check_value(v.clone(), "t", None).expect_err(name);
            let first = ConfList::from_value(v.clone(), "t", None).expect_err(name);
            assert_eq!(first, p.first, "{name}: from_value reports the first");
            let got: Vec<String> = p.all().iter().map(ToString::to_string).collect();
            assert_eq!(got.len(), want.len(), "{name}: {got:#?}");
            for (g, w) in got.iter().zip(*want) {
                assert!(g.starts_with(w), "{name}: {g:?} does not start with {w:?}");
            }
        }
    }

    #[test]
    fn plugin_stdin_filters_capabilities() {
        let c = ConfList::from_value(
            json!({"cniVersion":"1.0.0","name":"n","plugins":[
                {"type":"bridge"},
                {"type":"portmap","capabilities":{"portMappings":true}}
            ]}),
            "t",
            None,
        )
        .unwrap();
        let rc = json!({"portMappings":[{"hostPort":80}],"bandwidth":{}});
        let rc = rc.as_object().unwrap();
        let prev = json!({"cniVersion":"1.0.0"});
        let p0 = c.plugin_conf(0, rc, None);
        assert_eq!(p0["name"], "n");
        assert_eq!(p0["cniVersion"], "1.0.0");
        assert!(p0.get("runtimeConfig").is_none());
        assert!(p0.get("prevResult").is_none());
        let p1 = c.plugin_conf(1, rc, Some(&prev));
        assert_eq!(
            p1["runtimeConfig"],
            json!({"portMappings":[{"hostPort":80}]})
        );
        assert_eq!(p1["prevResult"], prev);
    }
}
