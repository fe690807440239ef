//! `plexus install`: the DaemonSet's entry point. Parses flags into [`install::Options`] and
//! runs them; every path is a flag with the usual default.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::install::{self, conflist::PluginOptions, kubeconfig};

/// Arguments of `plexus install` (boxed: they are many, and the subcommand enum stays small).
#[derive(Debug, clap::Args)]
pub struct InstallArgs {
    /// The flags.
    #[command(flatten)]
    pub flags: Box<InstallFlags>,
}

/// The flags of `plexus install`.
///
/// Optional values given as an empty string count as not given, so a manifest can pass
/// `--log-file=$(PLEXUS_LOG_FILE)` from a ConfigMap whose value may be empty.
#[derive(Debug, clap::Args)]
pub struct InstallFlags {
    /// The plexus binary to install [default: this executable].
    #[arg(long, value_name = "FILE")]
    pub bin_src: Option<PathBuf>,
    /// Where plexus lives on the node.
    #[command(flatten)]
    pub node: NodePaths,
    /// The primary network config file [default: the alphabetically first .conf, .conflist or
    /// .json in --cni-conf-dir that is not plexus's own].
    #[arg(long, value_name = "FILE")]
    pub primary: Option<PathBuf>,
    /// How long to wait for the primary config to appear before failing.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub wait_timeout_seconds: u64,
    /// How often the conf dir is looked at while waiting and (with --watch) watching.
    #[arg(long, value_name = "MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub poll_interval_ms: u64,
    /// Write no kubeconfig (and no `kubeconfig` key): the plugin then never calls the API server.
    #[arg(long)]
    pub skip_kubeconfig: bool,
    /// The service-account token file the kubeconfig names (`tokenFile`), as the plugin on the
    /// host sees it; read at every call, so rotation works. Never copied.
    #[arg(long, value_name = "FILE", default_value = kubeconfig::DEFAULT_TOKEN_FILE)]
    pub token_file: PathBuf,
    /// The CA bundle the kubeconfig names (`certificate-authority`), as the plugin on the host
    /// sees it.
    #[arg(long, value_name = "FILE", default_value = kubeconfig::DEFAULT_CA_FILE)]
    pub ca_file: PathBuf,
    /// The plugin's log file (`logFile`).
    #[arg(long, value_name = "FILE")]
    pub log_file: Option<String>,
    /// The plugin's log level (`logLevel`): panic, error, warning, info, debug, verbose.
    #[arg(long, value_name = "LEVEL", value_parser = parse_log_level)]
    pub log_level: Option<String>,
    /// Only NADs in the pod's own namespace (and --global-namespaces) may be used
    /// (`namespaceIsolation`). `--namespace-isolation` alone means true.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true",
          value_parser = parse_switch)]
    pub namespace_isolation: Option<Switch>,
    /// Comma-separated namespaces whose NADs any pod may use under isolation (`globalNamespaces`).
    #[arg(long, value_name = "NS,...")]
    pub global_namespaces: Option<String>,
    /// ADD and STATUS fail while this file does not exist (`readinessindicatorfile`).
    #[arg(long, value_name = "FILE")]
    pub readiness_indicator_file: Option<String>,
    /// Keep running until SIGTERM/SIGINT: regenerate the conflist when the primary config
    /// changes and keep it first. Stopping never removes it (restarts and updates keep pods'
    /// networks); removing plexus is `plexus uninstall`.
    #[arg(long, conflicts_with_all = ["once", "check"])]
    pub watch: bool,
    /// Install and exit (the default without --watch).
    #[arg(long, conflicts_with = "check")]
    pub once: bool,
    /// Rename Multus configs found in --cni-conf-dir (`<name>.moved-aside-by-plexus`) so no
    /// runtime reads them again. Without it they are reported and left in place.
    /// `--move-multus-aside` alone means true.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true",
          value_parser = parse_switch)]
    pub move_multus_aside: Option<Switch>,
    /// Change nothing: exit 0 when plexus's conflist is in place, first in the runtime's order,
    /// and names an existing cluster network config; 1 saying what is wrong (the DaemonSet's
    /// probes).
    #[arg(long)]
    pub check: bool,
}

/// The node paths `plexus install` writes and `plexus uninstall` removes.
#[derive(Debug, clap::Args)]
pub struct NodePaths {
    /// CNI plugin directory, where the `plexus` binary goes.
    #[arg(long, value_name = "DIR", default_value = "/opt/cni/bin")]
    pub cni_bin_dir: PathBuf,
    /// CNI config directory: where the primary config is found and `00-00-plexus.conflist` goes.
    #[arg(long, value_name = "DIR", default_value = "/etc/cni/net.d")]
    pub cni_conf_dir: PathBuf,
    /// The journal directory (`cniDir`).
    #[arg(long, value_name = "DIR", default_value = crate::config::DEFAULT_CNI_DIR)]
    pub cni_dir: PathBuf,
    /// The plugin's kubeconfig (as the plugin on the host sees it).
    #[arg(
        long,
        value_name = "FILE",
        default_value = "/etc/cni/net.d/plexus.d/plexus.kubeconfig"
    )]
    pub kubeconfig_out: PathBuf,
}

/// A `true`/`false` flag value where an empty string means "not given".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switch(pub Option<bool>);

/// A flag value `plexus install` refuses.
#[derive(Debug, thiserror::Error)]
pub enum FlagError {
    /// Not `true`, `false` or empty.
    #[error("{0:?} is not true or false")]
    Switch(String),
    /// Not a log level plexus knows.
    #[error("{0:?} is not one of panic, error, warning, info, debug, verbose")]
    LogLevel(String),
    /// A path that cannot be made absolute.
    #[error("{}: {source}", .path.display())]
    Path {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The running executable cannot be found.
    #[error("cannot find the running executable ({0}); pass --bin-src")]
    Executable(std::io::Error),
    /// The kubeconfig's server cannot be worked out.
    #[error(transparent)]
    Kubeconfig(#[from] kubeconfig::KubeconfigError),
}

fn parse_switch(s: &str) -> Result<Switch, FlagError> {
    match s {
        "" => Ok(Switch(None)),
        "true" => Ok(Switch(Some(true))),
        "false" => Ok(Switch(Some(false))),
        _ => Err(FlagError::Switch(s.to_string())),
    }
}

fn parse_log_level(s: &str) -> Result<String, FlagError> {
    if s.is_empty() || crate::log::known_level(s).is_some() {
        Ok(s.to_string())
    } else {
        Err(FlagError::LogLevel(s.to_string()))
    }
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty())
}

impl InstallFlags {
    /// The options to run, with defaults resolved and the in-cluster environment read.
    ///
    /// # Errors
    /// [`FlagError`]: the running executable cannot be found, a path cannot be made absolute,
    /// or a kubeconfig is wanted outside a cluster.
    pub fn into_options(
        self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<install::Options, FlagError> {
        // Paths end up in files read from another working directory: make them absolute.
        let abs = |p: PathBuf| -> Result<PathBuf, FlagError> {
            std::path::absolute(&p).map_err(|source| FlagError::Path { path: p, source })
        };
        let opt_abs = |s: Option<String>| non_empty(s).map(|s| abs(PathBuf::from(s))).transpose();
        let cni_bin_dir = abs(self.node.cni_bin_dir)?;
        let cni_conf_dir = abs(self.node.cni_conf_dir)?;
        let bin_src = match self.bin_src {
            Some(p) => p,
            None => std::env::current_exe().map_err(FlagError::Executable)?,
        };
        let kubeconfig = if self.skip_kubeconfig {
            None
        } else {
            let server = kubeconfig::server_url(env)?;
            Some((
                abs(self.node.kubeconfig_out)?,
                kubeconfig::Kubeconfig {
                    server,
                    ca_file: abs(self.ca_file)?,
                    token_file: abs(self.token_file)?,
                },
            ))
        };
        let global_namespaces = non_empty(self.global_namespaces)
            .map(|s| {
                s.split(',')
                    .map(|n| n.trim().to_string())
                    .filter(|n| !n.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        Ok(install::Options {
            bin_src,
            bin_dir: cni_bin_dir.clone(),
            conf_dir: cni_conf_dir.clone(),
            primary: self.primary.map(abs).transpose()?,
            wait_timeout: Duration::from_secs(self.wait_timeout_seconds),
            poll_interval: Duration::from_millis(self.poll_interval_ms),
            kubeconfig,
            plugin: PluginOptions {
                kubeconfig: None,
                conf_dir: Some(cni_conf_dir),
                bin_dir: Some(cni_bin_dir),
                cni_dir: Some(abs(self.node.cni_dir)?),
                log_file: opt_abs(self.log_file)?,
                log_level: non_empty(self.log_level),
                namespace_isolation: self.namespace_isolation.and_then(|s| s.0),
                global_namespaces,
                readiness_indicator_file: opt_abs(self.readiness_indicator_file)?,
            },
            move_multus_aside: self.move_multus_aside.and_then(|s| s.0).unwrap_or(false),
            watch: self.watch,
        })
    }
}

/// Runs `plexus install`.
pub fn run(args: InstallArgs) -> ExitCode {
    if args.flags.check {
        let conf_dir = &args.flags.node.cni_conf_dir;
        let dir = std::path::absolute(conf_dir).unwrap_or_else(|_| conf_dir.clone());
        return match install::check(&dir) {
            Ok(state) => {
                eprintln!("plexus install --check: ok: {state}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("plexus install --check: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let result = args
        .flags
        .into_options(|k| std::env::var(k).ok())
        .map_err(|e| e.to_string())
        .and_then(|opts| install::run(&opts).map_err(|e| e.to_string()));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("plexus install: error: {e}");
            ExitCode::FAILURE
        }
    }
}
