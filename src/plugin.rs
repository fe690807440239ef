//! One CNI call, the way the runtime makes it: the environment and stdin in, the result (or
//! nothing) out, through the product's seams (delegate binaries and the built-ins, the journal
//! in `cniDir`, the API server, the kernel, the system clock).

use std::path::PathBuf;

use serde_json::Value;

use crate::clock::SystemClock;
use crate::cni::env::{Command, Request, StdinError};
use crate::cni::version;
use crate::config::Config;
use crate::delegate::exec::ProcessExecutor;
use crate::engine::{Engine, Seams};
use crate::error::Error;
use crate::journal::Journal;
use crate::link::Kernel;
use crate::resolve::cluster::ApiConnector;

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

/// Runs one CNI call. `stdin` is what was read (empty, with `stdin_error`, when it could not be).
///
/// # Errors
/// Every [`Error`], for the caller to print as a CNI error object.
pub fn run(
    env: impl Fn(&str) -> Option<String>,
    stdin: &[u8],
    stdin_error: Option<StdinError>,
) -> Result<Option<Value>, Error> {
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
    let mut dirs: Vec<PathBuf> = vec![cfg.bin_dir.clone()];
    dirs.extend(req.path.iter().cloned());
    let exec = ProcessExecutor::new(dirs, host_path(), cfg.delegate_timeout);
    // macvlan/ipvlan/vlan run in process unless `builtinDelegates: false`.
    let exec = crate::builtin::BuiltinExecutor::new(exec, cfg.builtin_delegates);
    let store = Journal::new(cfg.cni_dir.clone());
    let connect = ApiConnector {
        kubeconfig: cfg.kubeconfig.clone(),
        timeout: cfg.api_timeout,
        budget: cfg.api_retry_budget,
    };
    let seams = Seams {
        exec: &exec,
        store: &store,
        connect: &connect,
        net: &Kernel,
        clock: &SystemClock,
    };
    let engine = Engine::new(&cfg, &req, seams);
    match req.command {
        Command::Add => engine.add().map(Some),
        Command::Del => engine.del().map(|()| None),
        Command::Check => engine.check().map(|()| None),
        Command::Gc => engine.gc().map(|()| None),
        Command::Status => engine.status().map(|()| None),
        Command::Version => Ok(Some(version::version_info())),
    }
}
