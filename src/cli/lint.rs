//! `plexus lint PATH...`: NADs, pods' network annotations and CNI/plexus configs checked offline
//! with the parsers and the planner ADD uses, each problem printed with file, object and field.
//!
//! Output: one line per finding, `FILE: KIND NAMESPACE/NAME: FIELD: SEVERITY: MESSAGE` (severity
//! `error`, `warning` or `note`; the object is left out for a finding about the file itself, the
//! field for one about the whole object), then a summary line. Every finding of an object is
//! reported, not only the first. Exit 1 on any error (and on any warning with `--strict`), 0
//! otherwise.

mod load;
mod nad;
mod netconf;
mod plexus;
mod plugins;
mod pod;
mod report;
mod similar;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::Value;

use self::load::{Doc, Source};
use self::plugins::PluginDirs;
use self::report::{Report, Subject};
use crate::cni::conf::ConfList;
use crate::config::Config;

/// Arguments of `plexus lint`.
#[derive(Debug, clap::Args)]
pub struct LintArgs {
    /// YAML (multi-document) or JSON files: NetworkAttachmentDefinitions, Pods and workloads
    /// (Deployment, StatefulSet, DaemonSet, Job, CronJob, ...), CNI `.conf`/`.conflist` files
    /// and plexus configs. A directory is read recursively (its .yaml, .yml, .json, .conf and
    /// .conflist files); `-` reads stdin. Pods are cross-checked against the NADs given in the
    /// same run.
    #[arg(required = true, value_name = "PATH")]
    pub files: Vec<PathBuf>,
    /// Fail on warnings too, and treat a selection asking for a capability (ips, mac,
    /// portMappings, bandwidth, infinibandGUID, deviceID) that no plugin of its network
    /// declares as an error, as ADD does with `strictCapabilities`.
    #[arg(long)]
    pub strict: bool,
    /// A directory holding the node's CNI plugins (repeatable, searched in order): every plugin
    /// type must be there (macvlan, ipvlan and vlan are built into plexus), else it is an
    /// error. Without it, a type that looks like a misspelled reference plugin is a warning.
    #[arg(long = "cni-bin-dir", value_name = "DIR")]
    pub cni_bin_dirs: Vec<PathBuf>,
}

/// What a NAD resolved to in this run.
#[derive(Debug, Clone)]
pub(crate) enum NadConf {
    /// A valid `spec.config`.
    Valid(ConfList),
    /// `spec.config` is empty: the config file in confDir named like the NAD is used.
    Empty,
    /// Broken (already reported).
    Invalid,
}

/// What the linted files define, for cross-checks.
#[derive(Debug, Default)]
pub(crate) struct Index {
    /// NADs by `(namespace, name)`.
    pub nads: HashMap<(String, String), NadConf>,
    /// Valid delegate config files by network name, with the file they came from.
    pub confs: HashMap<String, (String, ConfList)>,
    /// Valid plexus configs.
    pub plexus: Vec<Config>,
}

/// Runs `plexus lint`.
pub fn run(args: LintArgs) -> ExitCode {
    let mut report = Report::default();
    let sources = load::sources(&args.files, &mut report);
    let plugins = PluginDirs::new(args.cni_bin_dirs);
    for (dir, e) in plugins.unreadable() {
        let at = Subject::file(&dir.display().to_string());
        report.error(
            &at,
            "",
            format!("--cni-bin-dir: cannot read the directory: {e}"),
        );
    }
    lint(&sources, args.strict, &plugins, &mut report);
    for f in &report.findings {
        println!("{f}");
    }
    println!("{}", report.summary(args.strict));
    if report.failed(args.strict) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Lints the sources together into `report`: NADs and config files first, so pods can be
/// checked against them. Findings come out grouped by file, in command-line order.
fn lint(sources: &[Source], strict: bool, plugins: &PluginDirs, report: &mut Report) {
    report.files = sources.len();
    let docs: Vec<Doc> = sources
        .iter()
        .flat_map(|s| load::documents(s, report))
        .collect();
    let mut index = Index::default();
    let mut pods = Vec::new();
    for doc in &docs {
        match doc.value.get("kind") {
            None if doc.cni_file || netconf::looks_like_conf(&doc.value) => {
                netconf::check(doc, &mut index, plugins, report);
            }
            None => report.error(
                &Subject::file(&doc.file),
                "",
                "a document is neither a Kubernetes object (no \"kind\") nor a CNI network \
                 config (no \"type\", \"plugins\" or \"cniVersion\")",
            ),
            Some(Value::String(k)) if k == nad::KIND => {
                nad::check(doc, &mut index, plugins, report)
            }
            Some(Value::String(k)) if pod::is_pod_kind(k) => pods.push((doc, k.as_str())),
            Some(Value::String(k)) => {
                let ns = doc
                    .value
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str);
                let at = Subject::object(&doc.file, k, ns, &nad::name_of(&doc.value));
                report.note(&at, "", "this kind is not checked by plexus lint: ignored");
            }
            Some(_) => report.error(&Subject::file(&doc.file), "kind", "must be a string"),
        }
    }
    nad::note_empty(&docs, &index, report);
    for (doc, kind) in pods {
        pod::check(doc, kind, &index, strict, report);
    }
    let order: HashMap<&str, usize> = sources
        .iter()
        .enumerate()
        .rev()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    report
        .findings
        .sort_by_key(|f| order.get(f.subject.file.as_str()).copied());
}
