//! Node install (`plexus install`): copy the binary into the CNI bin dir, find the node's
//! primary network config, write a kubeconfig and `00-00-plexus.conflist`, each atomically, and
//! make sure the runtime's order puts it first; in watch mode keep it so. Stopping never removes
//! the conflist (a restart or an update of the DaemonSet must not drop pods' networks):
//! removing plexus is `plexus uninstall`.

pub mod atomic;
pub mod conflist;
pub mod kubeconfig;
pub mod order;
pub mod primary;
pub mod uninstall;

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use conflist::PluginOptions;
use kubeconfig::{Kubeconfig, KubeconfigError};
use order::{Found, Kind};
use primary::{CONFLIST_NAME, OLD_CONFLIST_NAME, Primary, PrimaryError};

/// Mode of the installed binary.
const BINARY_MODE: u32 = 0o755;
/// Mode of the conflist (no secrets in it; runtimes read it).
pub(crate) const CONFLIST_MODE: u32 = 0o644;
/// Mode of the kubeconfig (no token in it, but it is nobody else's business).
const KUBECONFIG_MODE: u32 = 0o600;

/// What went wrong during the install.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The binary could not be copied.
    #[error("copying {src} to {dst}: {source}")]
    CopyBinary {
        /// Source binary.
        src: PathBuf,
        /// Destination.
        dst: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A file could not be written or a directory created.
    #[error("writing {path}: {source}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A file could not be removed.
    #[error("removing {path}: {source}")]
    Remove {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A Multus config could not be moved aside.
    #[error("moving {path} aside: {source}")]
    MoveAside {
        /// The Multus config.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// `plexus install --check`: the node is not as the install leaves it.
    #[error("{0}")]
    Unhealthy(String),
    /// Another config sorts before plexus's, so the runtime would not run plexus.
    #[error(
        "{} sorts before {CONFLIST_NAME}: the runtime would use it instead of plexus{hint}",
        path.display()
    )]
    NotFirst {
        /// The config the runtime would pick.
        path: PathBuf,
        /// What to do about it.
        hint: String,
    },
    /// No usable primary config appeared in time.
    #[error("no usable primary network config after waiting {}s: {last}", waited.as_secs())]
    Timeout {
        /// How long it waited.
        waited: Duration,
        /// Why the last look failed.
        last: PrimaryError,
    },
    /// A primary config problem that waiting cannot fix.
    #[error(transparent)]
    Primary(PrimaryError),
    /// No kubeconfig can be made.
    #[error(transparent)]
    Kubeconfig(#[from] KubeconfigError),
    /// The signal handlers or timers could not be set up.
    #[error("cannot set up signal handling: {0}")]
    Runtime(io::Error),
}

/// Everything `plexus install` does, decided up front.
#[derive(Debug, Clone)]
pub struct Options {
    /// The binary to install.
    pub bin_src: PathBuf,
    /// The CNI bin dir (`<dir>/plexus` is written).
    pub bin_dir: PathBuf,
    /// The CNI conf dir (searched for the primary; `00-plexus.conflist` is written there).
    pub conf_dir: PathBuf,
    /// An explicit primary config, instead of auto-detection.
    pub primary: Option<PathBuf>,
    /// How long to wait for the primary config to appear.
    pub wait_timeout: Duration,
    /// How often the conf dir is looked at while waiting and watching.
    pub poll_interval: Duration,
    /// The kubeconfig to write and where, unless skipped.
    pub kubeconfig: Option<(PathBuf, Kubeconfig)>,
    /// The plexus keys of the conflist (its `kubeconfig` is set from the field above).
    pub plugin: PluginOptions,
    /// Rename Multus configs left in the conf dir so runtimes ignore them.
    pub move_multus_aside: bool,
    /// Keep running until SIGTERM/SIGINT, regenerating the conflist when the primary changes
    /// and keeping it first; stopping leaves it in place.
    pub watch: bool,
}

impl Options {
    /// Path of the conflist plexus writes.
    pub fn conflist_path(&self) -> PathBuf {
        self.conf_dir.join(CONFLIST_NAME)
    }

    fn plugin_options(&self) -> PluginOptions {
        let mut p = self.plugin.clone();
        p.kubeconfig = self.kubeconfig.as_ref().map(|(path, _)| path.clone());
        p
    }
}

fn say(msg: impl std::fmt::Display) {
    eprintln!("plexus install: {msg}");
}

/// Runs the install: once, or (with [`Options::watch`]) until SIGTERM/SIGINT.
///
/// # Errors
/// The first failure, as [`InstallError`]; in watch mode only failures before the first
/// conflist is written and a failure to remove it on exit end the run.
pub fn run(opts: &Options) -> Result<(), InstallError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(InstallError::Runtime)?;
    rt.block_on(run_async(opts))
}

async fn run_async(opts: &Options) -> Result<(), InstallError> {
    let mut stop = if opts.watch {
        Stop::signals()?
    } else {
        Stop::never()
    };
    copy_binary(opts)?;
    let Some(first) = wait_primary(opts, &mut stop).await? else {
        say("stopped while waiting for the primary network config; nothing written");
        return Ok(());
    };
    say(format_args!(
        "primary network config: {} (network {:?}, cniVersion {})",
        first.path.display(),
        first.conf.name,
        first.conf.version()
    ));
    if let Some((path, kc)) = &opts.kubeconfig {
        ensure_dir(path)?;
        write_if_changed(path, &kc.render(), KUBECONFIG_MODE)?;
        say(format_args!(
            "wrote {} (server {}, tokenFile {}, certificate-authority {})",
            path.display(),
            kc.server,
            kc.token_file.display(),
            kc.ca_file.display()
        ));
    }
    let conflist = opts.conflist_path();
    let plugin = opts.plugin_options();
    let changed = write_if_changed(&conflist, &conflist::render(&first, &plugin), CONFLIST_MODE)?;
    say(format_args!(
        "{} {} (clusterNetwork {})",
        if changed { "wrote" } else { "unchanged:" },
        conflist.display(),
        first.path.display()
    ));
    let mut reported = Vec::new();
    ensure_first(opts, &mut reported)?;
    if !opts.watch {
        return Ok(());
    }
    say(format_args!(
        "watching {} every {}ms; stopping leaves {} in place (removing plexus is `plexus uninstall`)",
        opts.conf_dir.display(),
        opts.poll_interval.as_millis(),
        conflist.display()
    ));
    let signal = watch(opts, &plugin, first, &mut stop, reported).await;
    say(format_args!(
        "{signal}: stopping; {} stays, so pods keep getting their networks while plexus restarts",
        conflist.display()
    ));
    Ok(())
}

/// Makes plexus's conflist the one the runtime uses: removes a plexus config an older release
/// wrote under [`OLD_CONFLIST_NAME`], reports (once each, in `reported`) every Multus config,
/// moves Multus configs aside when asked, and fails when another config still sorts first.
fn ensure_first(opts: &Options, reported: &mut Vec<PathBuf>) -> Result<(), InstallError> {
    let old = opts.conf_dir.join(OLD_CONFLIST_NAME);
    if order::classify(&old) == Kind::Plexus {
        std::fs::remove_file(&old).map_err(|source| InstallError::Remove {
            path: old.clone(),
            source,
        })?;
        say(format_args!(
            "removed {} (an older plexus's conflist; {CONFLIST_NAME} replaces it)",
            old.display()
        ));
    }
    let found = order::others(&opts.conf_dir).map_err(|source| InstallError::Write {
        path: opts.conf_dir.clone(),
        source,
    })?;
    for f in &found {
        let Kind::Multus(t) = &f.kind else { continue };
        if opts.move_multus_aside {
            let to = order::move_aside(&f.path).map_err(|source| InstallError::MoveAside {
                path: f.path.clone(),
                source,
            })?;
            say(format_args!(
                "WARNING: found a Multus config ({t}) at {}: moved it aside to {} \
                 (--move-multus-aside); runtimes no longer read it",
                f.path.display(),
                to.display()
            ));
        } else if !reported.contains(&f.path) {
            say(format_args!(
                "WARNING: found a Multus config ({t}) at {}; left in place. {CONFLIST_NAME} sorts \
                 before it, so the runtime runs plexus; pass --move-multus-aside to rename it \
                 so nothing can pick it up again",
                f.path.display()
            ));
            reported.push(f.path.clone());
        }
    }
    let remaining: Vec<Found> = if opts.move_multus_aside {
        found
            .into_iter()
            .filter(|f| !matches!(f.kind, Kind::Multus(_)))
            .collect()
    } else {
        found
    };
    if let Some(f) = order::ahead(&remaining).first() {
        let hint = match f.kind {
            Kind::Multus(_) => "; pass --move-multus-aside to rename it".to_string(),
            _ => "; rename or remove it".to_string(),
        };
        return Err(InstallError::NotFirst {
            path: f.path.clone(),
            hint,
        });
    }
    Ok(())
}

/// `plexus install --check` (the DaemonSet's probes): plexus's conflist exists, is a plexus
/// config, is first in the runtime's order, and the cluster network it names exists. Returns
/// a one-line description of the healthy state.
///
/// # Errors
/// [`InstallError::Unhealthy`] saying what is wrong.
pub fn check(conf_dir: &Path) -> Result<String, InstallError> {
    let unhealthy = |m: String| InstallError::Unhealthy(m);
    let path = conf_dir.join(CONFLIST_NAME);
    let bytes = std::fs::read(&path).map_err(|e| unhealthy(format!("{}: {e}", path.display())))?;
    let v: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| unhealthy(format!("{}: not JSON: {e}", path.display())))?;
    if order::classify(&path) != Kind::Plexus {
        return Err(unhealthy(format!(
            "{} is not a plexus config",
            path.display()
        )));
    }
    let found =
        order::others(conf_dir).map_err(|e| unhealthy(format!("{}: {e}", conf_dir.display())))?;
    if let Some(f) = order::ahead(&found).first() {
        return Err(unhealthy(format!(
            "{} sorts before {CONFLIST_NAME}: the runtime uses it, not plexus",
            f.path.display()
        )));
    }
    let cluster = v["plugins"][0]["clusterNetwork"]
        .as_str()
        .unwrap_or_default();
    if cluster.starts_with('/') && !Path::new(cluster).is_file() {
        return Err(unhealthy(format!(
            "the cluster network {cluster} named by {} does not exist",
            path.display()
        )));
    }
    Ok(format!(
        "{} is first; clusterNetwork {cluster}",
        path.display()
    ))
}

fn copy_binary(opts: &Options) -> Result<(), InstallError> {
    let dst = opts.bin_dir.join("plexus");
    let err = |source| InstallError::CopyBinary {
        src: opts.bin_src.clone(),
        dst: dst.clone(),
        source,
    };
    std::fs::create_dir_all(&opts.bin_dir).map_err(err)?;
    atomic::copy(&opts.bin_src, &dst, BINARY_MODE).map_err(err)?;
    say(format_args!(
        "installed {} as {}",
        opts.bin_src.display(),
        dst.display()
    ));
    Ok(())
}

fn ensure_dir(file: &Path) -> Result<(), InstallError> {
    match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => {
            std::fs::create_dir_all(d).map_err(|source| InstallError::Write {
                path: d.to_path_buf(),
                source,
            })
        }
        _ => Ok(()),
    }
}

/// Writes `bytes` to `path` atomically unless it already holds exactly them. Returns whether
/// it wrote.
pub(crate) fn write_if_changed(path: &Path, bytes: &[u8], mode: u32) -> Result<bool, InstallError> {
    let err = |source| InstallError::Write {
        path: path.to_path_buf(),
        source,
    };
    if atomic::read_if_exists(path).map_err(err)?.as_deref() == Some(bytes) {
        return Ok(false);
    }
    atomic::write(path, bytes, mode).map_err(err)?;
    Ok(true)
}

/// Polls for the primary config until it is usable, the timeout passes, or a signal arrives
/// (`Ok(None)`).
async fn wait_primary(opts: &Options, stop: &mut Stop) -> Result<Option<Primary>, InstallError> {
    let start = Instant::now();
    let mut reported: Option<PrimaryError> = None;
    loop {
        let e = match primary::find(&opts.conf_dir, opts.primary.as_deref()) {
            Ok(p) => return Ok(Some(p)),
            Err(e @ PrimaryError::IsSelf(_)) => return Err(InstallError::Primary(e)),
            Err(e) => e,
        };
        let waited = start.elapsed();
        if waited >= opts.wait_timeout {
            return Err(InstallError::Timeout { waited, last: e });
        }
        if reported.as_ref() != Some(&e) {
            say(format_args!(
                "waiting (at most {}s more): {e}",
                opts.wait_timeout
                    .saturating_sub(waited)
                    .as_secs_f64()
                    .ceil()
            ));
            reported = Some(e);
        }
        let nap = opts.poll_interval.min(opts.wait_timeout - waited);
        tokio::select! {
            _ = stop.wait() => return Ok(None),
            _ = tokio::time::sleep(nap) => {}
        }
    }
}

/// Keeps the conflist (and kubeconfig) as they should be until a signal arrives; returns the
/// signal's name. Problems are reported once each and retried at the next poll.
async fn watch(
    opts: &Options,
    plugin: &PluginOptions,
    mut current: Primary,
    stop: &mut Stop,
    mut multus_reported: Vec<PathBuf>,
) -> &'static str {
    let conflist = opts.conflist_path();
    let mut reported: Option<String> = None;
    loop {
        tokio::select! {
            signal = stop.wait() => return signal,
            _ = tokio::time::sleep(opts.poll_interval) => {}
        }
        let outcome = (|| -> Result<Option<String>, InstallError> {
            let p = primary::find(&opts.conf_dir, opts.primary.as_deref())
                .map_err(InstallError::Primary)?;
            let mut notes = Vec::new();
            if let Some((path, kc)) = &opts.kubeconfig
                && write_if_changed(path, &kc.render(), KUBECONFIG_MODE)?
            {
                notes.push(format!("rewrote {}", path.display()));
            }
            if write_if_changed(&conflist, &conflist::render(&p, plugin), CONFLIST_MODE)? {
                let why = if p.path != current.path {
                    format!("primary is now {}", p.path.display())
                } else if p.bytes != current.bytes {
                    format!("{} changed", p.path.display())
                } else {
                    format!("{} was modified or removed", conflist.display())
                };
                notes.push(format!("regenerated {} ({why})", conflist.display()));
            }
            current = p;
            ensure_first(opts, &mut multus_reported)?;
            Ok((!notes.is_empty()).then(|| notes.join("; ")))
        })()
        .map_err(|e| match e {
            InstallError::Primary(e) => format!("keeping {} as it is: {e}", conflist.display()),
            other => other.to_string(),
        });
        match outcome {
            Ok(Some(note)) => {
                say(note);
                reported = None;
            }
            Ok(None) => reported = None,
            Err(problem) => {
                if reported.as_ref() != Some(&problem) {
                    say(&problem);
                    reported = Some(problem);
                }
            }
        }
    }
}

/// SIGTERM/SIGINT, in watch mode; in once mode nothing is caught (the default action applies).
struct Stop {
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Stop {
    fn never() -> Stop {
        Stop { signals: None }
    }

    fn signals() -> Result<Stop, InstallError> {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate()).map_err(InstallError::Runtime)?;
        let int = signal(SignalKind::interrupt()).map_err(InstallError::Runtime)?;
        Ok(Stop {
            signals: Some((term, int)),
        })
    }

    async fn wait(&mut self) -> &'static str {
        match &mut self.signals {
            None => std::future::pending().await,
            Some((term, int)) => tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            },
        }
    }
}
