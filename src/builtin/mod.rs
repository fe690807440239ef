//! Built-in macvlan, ipvlan and vlan delegates: the reference plugins' behaviour, run in process
//! with rtnetlink. [`BuiltinExecutor`] plugs them in front of another [`Executor`]; [`standalone`]
//! is the same code as a plain CNI plugin (the multi-call binary).

mod cmd;
pub mod conf;
pub mod hostlocal;
pub mod ipam;
pub mod ipvlan;
pub mod macvlan;
pub mod vlan;

use crate::cni::env::Command;
use crate::delegate::{DelegateError, Executor, Invocation};
use crate::link::request::Kind;
use crate::link::{LinkError, Session, Side};
pub use conf::Plugin;
use conf::{NetConf, Parsed};

/// The code Go plugins give an error that is not a typed CNI error.
pub const INTERNAL: u32 = 999;

/// A plugin error with the reference plugins' generic code.
pub(crate) fn internal(msg: impl Into<String>) -> DelegateError {
    DelegateError::Plugin {
        code: INTERNAL,
        msg: msg.into(),
        details: String::new(),
    }
}

impl From<LinkError> for DelegateError {
    fn from(e: LinkError) -> Self {
        internal(e.to_string())
    }
}

/// A config resolved against the host: what link to make on which master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// Kind, mode / id.
    pub kind: Kind,
    /// Master interface name in the host namespace.
    pub master: String,
    /// MTU to set, if any.
    pub mtu: Option<u32>,
    /// MAC to set, if any.
    pub mac: Option<[u8; 6]>,
    /// Set `proxy_arp` on the new link (macvlan does).
    pub proxy_arp: bool,
}

/// `master`, or the interface of the host's IPv4 default route.
fn resolve_master(conf: &NetConf, s: &Session) -> Result<String, DelegateError> {
    if !conf.master.is_empty() {
        return Ok(conf.master.clone());
    }
    s.default_route_interface(Side::Host)?
        .ok_or_else(|| internal("no default route interface found"))
}

/// The MTU of host link `name`.
fn master_mtu(s: &Session, name: &str) -> Result<u32, DelegateError> {
    let l = s
        .link_by_name(Side::Host, name)?
        .ok_or_else(|| internal("Link not found"))?;
    Ok(l.mtu.unwrap_or(0))
}

/// Runs a built-in plugin for one CNI call, as the reference binary would: `stdin` is its config,
/// `inv` its environment, IPAM plugins are exec'd through `ipam_exec`. Returns what the plugin
/// prints on success (a result for ADD, nothing for DEL and CHECK), or `None` when the config has
/// a field the built-in does not understand.
///
/// # Errors
/// A [`DelegateError::Plugin`] with the reference plugin's code and message, or the IPAM
/// plugin's own error.
pub fn run(
    plugin: Plugin,
    inv: &Invocation<'_>,
    stdin: &[u8],
    ipam_exec: &dyn Executor,
) -> Result<Option<Vec<u8>>, DelegateError> {
    let conf = match conf::parse(plugin, stdin, inv.args).map_err(|e| internal(e.0))? {
        Parsed::Understood(c) => *c,
        Parsed::NotUnderstood(what) => {
            tracing::debug!(plugin = plugin.name(), %what, "config not understood by built-in");
            return Ok(None);
        }
    };
    let out = match inv.command {
        Command::Add => cmd::add(plugin, &conf, inv, stdin, ipam_exec)?,
        Command::Del => {
            cmd::del(&conf.ipam_type, inv, stdin, ipam_exec)?;
            Vec::new()
        }
        Command::Check => {
            cmd::check(plugin, &conf, inv, stdin, ipam_exec)?;
            Vec::new()
        }
        Command::Version => serde_json::to_vec(&crate::cni::version::version_info())
            .map_err(|e| internal(e.to_string()))?,
        Command::Gc | Command::Status => return Ok(None),
    };
    Ok(Some(out))
}

/// The multi-call entry: `argv0_name` is the basename plexus was invoked as. Returns `None` when
/// it is not a built-in plugin name; otherwise what to print and whether it is an error.
pub fn standalone_plugin(argv0_name: &str) -> Option<Plugin> {
    Plugin::from_type(argv0_name)
}

/// Runs `plugin` as a standalone CNI plugin for one call. A config the built-in does not
/// understand is an error here (there is no binary to fall back to).
///
/// # Errors
/// As [`run`], plus code 2 (unsupported field) for a config the built-in does not understand.
pub fn standalone(
    plugin: Plugin,
    inv: &Invocation<'_>,
    stdin: &[u8],
    ipam_exec: &dyn Executor,
) -> Result<Vec<u8>, DelegateError> {
    // A DEL needs nothing of the config but the IPAM type: whatever the built-in does not
    // understand (and so never added), DEL succeeds once the interface and its IPAM are gone.
    if inv.command == Command::Del
        && matches!(
            conf::parse(plugin, stdin, inv.args),
            Ok(Parsed::NotUnderstood(_))
        )
    {
        cmd::del(&conf::ipam_type_of(stdin), inv, stdin, ipam_exec)?;
        return Ok(Vec::new());
    }
    run(plugin, inv, stdin, ipam_exec)?.ok_or_else(|| {
        let what = match conf::parse(plugin, stdin, inv.args) {
            Ok(Parsed::NotUnderstood(w)) => w,
            _ => "command".into(),
        };
        DelegateError::Plugin {
            code: crate::cni::error::UNSUPPORTED_FIELD,
            msg: format!("plexus {}: unsupported {what}", plugin.name()),
            details: String::new(),
        }
    })
}

/// An [`Executor`] that runs macvlan, ipvlan and vlan in process when it understands the config
/// and is enabled (`builtinDelegates`), and hands every other call to the wrapped executor (which
/// also runs the built-ins' IPAM plugins).
#[derive(Debug, Clone)]
pub struct BuiltinExecutor<E> {
    inner: E,
    enabled: bool,
}

impl<E: Executor> BuiltinExecutor<E> {
    /// Wraps `inner`; with `enabled` false every call goes to `inner`.
    pub fn new(inner: E, enabled: bool) -> Self {
        BuiltinExecutor { inner, enabled }
    }

    /// The wrapped executor.
    pub fn inner(&self) -> &E {
        &self.inner
    }
}

impl<E: Executor> Executor for BuiltinExecutor<E> {
    fn timeout(&self) -> Option<std::time::Duration> {
        self.inner.timeout()
    }

    fn exec(
        &self,
        plugin: &str,
        inv: &Invocation<'_>,
        stdin: &[u8],
    ) -> Result<Vec<u8>, DelegateError> {
        let builtin = Plugin::from_type(plugin);
        if self.enabled
            && let Some(p) = builtin
        {
            let started = std::time::Instant::now();
            if let Some(out) = run(p, inv, stdin, &self.inner)? {
                tracing::debug!(
                    plugin,
                    command = inv.command.as_str(),
                    ifname = inv.ifname,
                    elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
                    "built-in delegate finished"
                );
                return Ok(out);
            }
        }
        let out = self.inner.exec(plugin, inv, stdin);
        match (&out, builtin, inv.command) {
            // The reference plugins need their master even on DEL; once it is gone they can never
            // release the pod's address. The built-in DEL needs only the IPAM type.
            (Err(e), Some(_), Command::Del) if e.plugin_ran() => {
                tracing::warn!(
                    plugin,
                    ifname = inv.ifname,
                    error = %e,
                    "the plugin's DEL failed; releasing with the built-in DEL, which needs no master"
                );
                match cmd::del(&conf::ipam_type_of(stdin), inv, stdin, &self.inner) {
                    Ok(()) => Ok(Vec::new()),
                    Err(fallback) => {
                        tracing::warn!(error = %fallback, "the built-in DEL failed too");
                        out
                    }
                }
            }
            _ => out,
        }
    }
}

#[cfg(test)]
mod tests;
