//! One CNI call, the way the runtime makes it: the environment and stdin in, the result (or
//! nothing) out, through the product's seams (delegate binaries and the built-ins, the journal
//! in `cniDir`, the API server (for ADD, the node agent's caches first), the kernel, the system
//! clock), with the call's outcome reported to the node agent, best effort.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;

use crate::agent::client::{AgentConnect, Reporter};
use crate::builtin::BuiltinExecutor;
use crate::clock::SystemClock;
use crate::cni::env::{Command, Request, StdinError};
use crate::cni::version;
use crate::config::Config;
use crate::delegate::exec::ProcessExecutor;
use crate::engine::{Engine, Seams};
use crate::error::Error;
use crate::journal::Journal;
use crate::link::Kernel;
use crate::resolve::cluster::{ApiConnector, Connect};
use crate::txn::observe::Observer;

/// The `CNI_*` variables a runtime sets; any of them without `CNI_COMMAND` is still a CNI call
/// (answered with an error object), not a command line.
pub const CNI_VARIABLES: &[&str] = &[
    "CNI_COMMAND",
    "CNI_CONTAINERID",
    "CNI_NETNS",
    "CNI_IFNAME",
    "CNI_ARGS",
    "CNI_PATH",
];

/// `PATH` for delegates (they look up tools such as iptables): the runtime's, or the usual one.
pub fn host_path() -> String {
    std::env::var("PATH")
        .unwrap_or_else(|_| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into())
}

/// The product's seams for one configuration: delegates (`binDir`, then `cni_path`, with the
/// built-ins), the journal in `cniDir`, the API server as configured. The one place they are
/// built, for the plugin and for the node agent's DELs.
pub struct Product {
    exec: BuiltinExecutor<ProcessExecutor>,
    store: Journal,
    /// The API server, as the configuration reaches it.
    pub api: ApiConnector,
}

impl Product {
    /// The seams `cfg` gives, with `cni_path` (the runtime's `CNI_PATH`) after `binDir`.
    pub fn new(cfg: &Config, cni_path: &[PathBuf]) -> Product {
        let mut dirs: Vec<PathBuf> = vec![cfg.bin_dir.clone()];
        dirs.extend(cni_path.iter().cloned());
        let exec = ProcessExecutor::new(dirs, host_path(), cfg.delegate_timeout);
        Product {
            // macvlan/ipvlan/vlan run in process unless `builtinDelegates: false`.
            exec: BuiltinExecutor::new(exec, cfg.builtin_delegates),
            store: Journal::new(cfg.cni_dir.clone()),
            api: ApiConnector {
                kubeconfig: cfg.kubeconfig.clone(),
                timeout: cfg.api_timeout,
                budget: cfg.api_retry_budget,
            },
        }
    }

    /// The seams, reaching the cluster through `connect` and telling `observer` about each
    /// delegate call.
    pub fn seams<'a>(&'a self, connect: &'a dyn Connect, observer: &'a dyn Observer) -> Seams<'a> {
        Seams {
            exec: &self.exec,
            store: &self.store,
            connect,
            net: &Kernel,
            clock: &SystemClock,
            observer,
        }
    }
}

/// Runs one CNI call. `stdin` is what was read (empty, with `stdin_error`, when it could not be).
///
/// # Errors
/// Every [`Error`], for the caller to print as a CNI error object.
pub fn run(
    env: impl Fn(&str) -> Option<String>,
    stdin: &[u8],
    stdin_error: Option<StdinError>,
) -> Result<Option<Value>, Error> {
    let started = Instant::now();
    let req = Request::from_env(env)?;
    if req.command == Command::Version {
        return Ok(Some(version::version_info()));
    }
    if let Some(e) = stdin_error {
        return Err(e.into());
    }
    let cfg = Config::parse(stdin)?;
    crate::log::init(cfg.log_file.as_deref(), &cfg.log_level, cfg.log_to_stderr);
    tracing::debug!(
        command = req.command.as_str(),
        container_id = %req.container_id,
        netns = %req.netns,
        ifname = %req.ifname,
        "CNI call"
    );
    let product = Product::new(&cfg, &req.path);
    let reporter = Arc::new(Reporter::default());
    // Only ADD asks the agent; DEL, CHECK, GC and STATUS never do.
    let agent = match (&req.command, &cfg.agent_socket) {
        (Command::Add, Some(socket)) => Some(AgentConnect::new(
            socket.clone(),
            product.api.clone(),
            reporter.clone(),
        )),
        _ => None,
    };
    let connect: &dyn Connect = match &agent {
        Some(a) => a,
        None => &product.api,
    };
    let engine = Engine::new(&cfg, &req, product.seams(connect, &*reporter));
    let result = match req.command {
        Command::Add => engine.add().map(Some),
        Command::Del => engine.del().map(|()| None),
        Command::Check => engine.check().map(|()| None),
        Command::Gc => engine.gc().map(|()| None),
        Command::Status => engine.status().map(|()| None),
        Command::Version => Ok(Some(version::version_info())),
    };
    if let Some(socket) = &cfg.agent_socket {
        let (code, rollback) = match &result {
            Ok(_) => (None, None),
            Err(e) => (Some(e.code()), rollback_outcome(e)),
        };
        let report = reporter.report(req.command, code, rollback, started.elapsed());
        if !agent.as_ref().is_some_and(|a| a.report(&report)) {
            Reporter::send(socket, &report);
        }
    }
    result
}

/// `clean` or `incomplete` for an ADD that rolled back.
fn rollback_outcome(e: &Error) -> Option<&'static str> {
    match e {
        Error::RolledBack { rollback, .. } => Some(
            if rollback.failures.is_empty() && rollback.journal.is_none() {
                "clean"
            } else {
                "incomplete"
            },
        ),
        _ => None,
    }
}
