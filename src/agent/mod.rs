//! The node agent (`plexus-agent`), an accelerator and an observer the plugin never depends
//! on: watch caches of the node's pods and the cluster's NADs served to the plugin on a unix
//! socket, metrics and health, a leak collector, and (with `install ...`) the node install
//! kept in step with the primary network, as `plexus install --watch` does.
//!
//! [`proto`] and [`client`] are the plugin's side and all the plugin uses of this module.

pub mod api;
pub mod cache;
pub mod client;
pub mod health;
pub mod hotplug;
pub mod http;
pub mod leak;
pub mod metrics;
pub mod proto;
pub mod serve;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::cli::install::InstallArgs;
use crate::config::{Config, ConfigError};
use crate::k8s::client::{Api, ApiError};

/// How long the agent's own answers to the plugin's status question may take (the plugin
/// waits [`client::STATUS_DEADLINE`]).
const STATUS_BUDGET: Duration = Duration::from_millis(900);

/// `plexus-agent`'s command line.
#[derive(Debug, clap::Parser)]
#[command(
    name = "plexus-agent",
    version,
    about = "plexus's node agent: caches for the plugin, metrics, health, a leak collector; \
             the plugin works without it",
    after_help = "With `install ...` it also keeps plexus installed on the node, with the flags \
                  of `plexus install` (it always watches; stopping never removes the conflist)."
)]
pub struct Args {
    /// The kubeconfig to reach the API server with [default: in-cluster settings].
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// This node's name (its pods are cached) [default: $NODE_NAME].
    #[arg(long, value_name = "NAME")]
    pub node_name: Option<String>,
    /// The installed conflist whose plexus config (cniDir, binDir...) the leak collector's
    /// DELs use.
    #[arg(long, value_name = "FILE", default_value = default_conflist())]
    pub cni_conf: PathBuf,
    /// The socket the plugin asks (plexus's `agentSocket`); `<socket>.report` receives the
    /// plugin's reports.
    #[arg(long, value_name = "PATH", default_value = proto::DEFAULT_SOCKET)]
    pub socket: PathBuf,
    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:9402")]
    pub metrics_addr: SocketAddr,
    /// How often the leak collector looks at the journal (and once at start).
    #[arg(long, value_name = "N", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub gc_interval_seconds: u64,
    /// How old a record must be before the leak collector may DEL it.
    #[arg(long, value_name = "N", default_value_t = 600)]
    pub gc_grace_seconds: u64,
    /// The health rounds.
    #[command(flatten)]
    pub health: health::HealthArgs,
    /// How often hot-plug looks at every pod of the node again (it also acts at once on every
    /// change the pod cache sees).
    #[arg(long, value_name = "N", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub hotplug_resync_seconds: u64,
    /// Do not hot-plug: annotation edits of running pods are left alone.
    #[arg(long)]
    pub no_hotplug: bool,
    /// Keep the node installed, as `plexus install --watch` with these flags.
    #[command(subcommand)]
    pub keep: Option<Keep>,
}

/// What the agent does besides serving.
#[derive(Debug, clap::Subcommand)]
pub enum Keep {
    /// Keep plexus installed on this node with `plexus install`'s flags (always watching).
    Install(InstallArgs),
}

const fn default_conflist() -> &'static str {
    "/etc/cni/net.d/00-00-plexus.conflist"
}

/// Why the agent cannot run.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// No node name.
    #[error("no node name: pass --node-name or set NODE_NAME")]
    NoNodeName,
    /// The API server cannot be reached with these settings.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// A socket or listener cannot be set up.
    #[error("{what}: {source}")]
    Io {
        /// What was being set up.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The installed conflist cannot be read as plexus's config.
    #[error("{}: {reason}", path.display())]
    Conflist {
        /// The conflist.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// `--once` or `--check` given to the agent, which always watches.
    #[error("install: the agent always watches: --once and --check are `plexus install`'s")]
    InstallOnce,
    /// The install flags are not usable.
    #[error("install: {0}")]
    InstallFlags(#[from] crate::cli::install::FlagError),
    /// The install it keeps failed.
    #[error("install: {0}")]
    Install(#[from] crate::install::InstallError),
    /// The install thread ended without a result.
    #[error("install: the install thread died")]
    InstallThreadDied,
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> AgentError {
    let what = what.into();
    move |source| AgentError::Io { what, source }
}

/// The journal the plugin installed by `conflist` writes (the default directory when the
/// conflist cannot be read yet).
pub fn journal_of(conflist: &Path) -> crate::journal::Journal {
    crate::journal::Journal::new(
        plexus_config(conflist)
            .map(|c| c.cni_dir)
            .unwrap_or_else(|_| PathBuf::from(crate::config::DEFAULT_CNI_DIR)),
    )
}

/// plexus's config as the runtime gives it to the plugin: the conflist's plexus plugin with the
/// list's `cniVersion` and `name`, as libcni passes them.
///
/// # Errors
/// [`AgentError::Conflist`] when the file is unreadable, has no plexus plugin, or its config is
/// invalid.
pub fn plexus_config(conflist: &Path) -> Result<Config, AgentError> {
    let fail = |reason: String| AgentError::Conflist {
        path: conflist.to_path_buf(),
        reason,
    };
    let bytes = std::fs::read(conflist).map_err(|e| fail(e.to_string()))?;
    let list: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| fail(format!("not JSON: {e}")))?;
    let plugins = list["plugins"].as_array().cloned().unwrap_or_default();
    let mut plugin = plugins
        .into_iter()
        .find(|p| p["type"] == "plexus")
        .ok_or_else(|| fail("no plugin of type plexus".into()))?;
    if let Some(p) = plugin.as_object_mut() {
        for key in ["cniVersion", "name"] {
            if let Some(v) = list.get(key) {
                p.insert(key.into(), v.clone());
            }
        }
    }
    let bytes = serde_json::to_vec(&plugin).unwrap_or_default();
    Config::parse(&bytes).map_err(|e: ConfigError| fail(e.to_string()))
}

/// Runs the agent until SIGTERM or SIGINT.
///
/// # Errors
/// What keeps it from starting, or the install failing.
pub fn run(args: Args) -> Result<(), AgentError> {
    let node = args
        .node_name
        .clone()
        .filter(|n| !n.is_empty())
        .or_else(|| std::env::var("NODE_NAME").ok().filter(|n| !n.is_empty()))
        .ok_or(AgentError::NoNodeName)?;
    let install = match args.keep {
        Some(Keep::Install(i)) => {
            if i.flags.once || i.flags.check {
                return Err(AgentError::InstallOnce);
            }
            let mut opts = i.flags.into_options(|k| std::env::var(k).ok())?;
            opts.watch = true;
            Some(opts)
        }
        None => None,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io("tokio runtime"))?;
    rt.block_on(run_async(
        Settings {
            node,
            kubeconfig: args.kubeconfig,
            conflist: args.cni_conf,
            socket: args.socket,
            metrics_addr: args.metrics_addr,
            gc_interval: Duration::from_secs(args.gc_interval_seconds),
            gc_grace: Duration::from_secs(args.gc_grace_seconds),
            health: args.health,
            hotplug_resync: (!args.no_hotplug)
                .then(|| Duration::from_secs(args.hotplug_resync_seconds)),
        },
        install,
    ))
}

/// The agent's settings, resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    /// This node.
    pub node: String,
    /// The kubeconfig, or in-cluster.
    pub kubeconfig: Option<PathBuf>,
    /// The installed conflist.
    pub conflist: PathBuf,
    /// The plugin socket.
    pub socket: PathBuf,
    /// The HTTP endpoint.
    pub metrics_addr: SocketAddr,
    /// The leak collector's interval.
    pub gc_interval: Duration,
    /// The leak collector's grace period.
    pub gc_grace: Duration,
    /// The health rounds' flags.
    pub health: health::HealthArgs,
    /// Hot-plug's resync interval; `None`: no hot-plug.
    pub hotplug_resync: Option<Duration>,
}

fn say(msg: impl std::fmt::Display) {
    eprintln!("plexus-agent: {msg}");
}

async fn run_async(
    s: Settings,
    install: Option<crate::install::Options>,
) -> Result<(), AgentError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(io("signals"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(io("signals"))?;
    let (metrics, counts) = hotplug::counts::with_metrics();
    let kube = api::client(s.kubeconfig.as_deref(), metrics.clone()).await?;
    let caches = Arc::new(cache::Caches::default());
    let on_error: cache::OnError = {
        let metrics = metrics.clone();
        Arc::new(move |kind, e| {
            tracing::warn!(kind, error = %e, "watch failed; retrying");
            say(format_args!("watching {kind}: {e} (retrying)"));
            metrics.watch_error(kind);
        })
    };
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(cache::watch_pods(
        kube.clone(),
        s.node.clone(),
        caches.clone(),
        on_error.clone(),
    ));
    tasks.spawn(cache::watch_nads(kube.clone(), caches.clone(), on_error));
    let (listener, reports, bound) =
        serve::bind(&s.socket).map_err(io(format!("plugin socket {}", s.socket.display())))?;
    let served = Arc::new(serve::Served {
        caches: caches.clone(),
        api: Api::from_client(kube.clone(), STATUS_BUDGET, STATUS_BUDGET),
        metrics: metrics.clone(),
    });
    tasks.spawn(serve::serve(listener, served));
    let reports = Arc::new(reports);
    tasks.spawn(serve::reports(reports.clone(), metrics.clone()));
    let endpoint = Arc::new(http::Endpoint {
        caches: caches.clone(),
        metrics: metrics.clone(),
        conflist: s.conflist.clone(),
        socket_up: true.into(),
        install_conf_dir: install.as_ref().map(|o| o.conf_dir.clone()),
        reports,
    });
    let tcp = tokio::net::TcpListener::bind(s.metrics_addr)
        .await
        .map_err(io(format!("metrics address {}", s.metrics_addr)))?;
    tasks.spawn(http::serve(tcp, endpoint.clone()));
    let collector = leak::Collector {
        conflist: s.conflist.clone(),
        node: s.node.clone(),
        grace: s.gc_grace,
        caches: caches.clone(),
        api: Api::from_client(
            kube.clone(),
            crate::k8s::client::DEFAULT_REQUEST_TIMEOUT,
            crate::k8s::client::DEFAULT_RETRY_BUDGET,
        ),
        metrics: metrics.clone(),
    };
    tasks.spawn(collect(collector, s.gc_interval));
    tasks.spawn(health::Health::new(&s, &caches, &kube, &metrics).run());
    tasks.spawn(hotplug::task(&s, &caches, &kube, counts));
    say(format_args!(
        "node {}: serving {} and http://{} (/metrics, /healthz, /readyz)",
        s.node,
        s.socket.display(),
        s.metrics_addr
    ));
    let (installed_tx, installed) = tokio::sync::oneshot::channel();
    let installer = match install {
        Some(opts) => Some(
            std::thread::Builder::new()
                .name("plexus-install".into())
                .spawn(move || {
                    let _ = installed_tx.send(crate::install::run(&opts));
                })
                .map_err(io("install thread"))?,
        ),
        None => None,
    };
    let outcome = tokio::select! {
        _ = term.recv() => { say("SIGTERM: stopping"); Ok(()) }
        _ = int.recv() => { say("SIGINT: stopping"); Ok(()) }
        r = installed, if installer.is_some() => match r {
            // It stops cleanly only on a signal, which stops the agent too.
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(AgentError::Install(e)),
            Err(_) => Err(AgentError::InstallThreadDied),
        },
    };
    endpoint.socket_up.store(false, Ordering::Relaxed);
    tasks.abort_all();
    drop(bound);
    if let Some(t) = installer
        && outcome.is_ok()
    {
        // It stops on the same signal, leaving the conflist in place.
        let _ = t.join();
    }
    outcome
}

/// The leak collector: a pass once the pod cache has synced (or after one interval), then one
/// every interval.
async fn collect(collector: leak::Collector, interval: Duration) {
    collector
        .caches
        .wait_until(interval, |c| c.pod_state().synced)
        .await;
    loop {
        match collector.pass().await {
            Ok(outcomes) => {
                let released = outcomes
                    .iter()
                    .filter(|(_, o)| *o == leak::Outcome::Released)
                    .count();
                if released > 0 {
                    say(format_args!(
                        "leak collector: released {released} leaked record(s)"
                    ));
                }
            }
            Err(e) => tracing::warn!(error = %e, "leak collector: skipped a pass"),
        }
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_conflist_is_the_one_install_writes() {
        assert_eq!(
            Path::new(default_conflist()),
            Path::new(crate::config::DEFAULT_CONF_DIR).join(crate::install::primary::CONFLIST_NAME)
        );
    }
}
