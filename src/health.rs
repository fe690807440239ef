//! Attachment health, one implementation for plexus's CHECK verb and the node agent's health
//! rounds: whether an attachment is as ADD left it (its interface in the pod, up, with the MAC
//! and addresses of its result; the master of a macvlan, ipvlan or vlan on the node, up), what
//! kind of problem it has ([`Reason`]), and the delegate's own CHECK with its cached result.

use std::net::IpAddr;
use std::path::Path;

use crate::cni::env::Command;
use crate::delegate::{DelegateError, Executor, Invocation, list};
use crate::error::{CheckProblem, DelegateFailure};
use crate::link::{LinkError, Master, PodNet, Seen, Wanted};
use crate::txn::Step;
use crate::txn::runner::parsed_result;

/// The plugin types whose interface sits on a master link of the node.
const STACKED: &[&str] = &["macvlan", "ipvlan", "vlan"];

/// What kind of problem an attachment has: the `reason` of the pod condition and of the
/// agent's metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// The interface is not in the pod (or another one has its name).
    InterfaceMissing,
    /// The interface is administratively down.
    LinkDown,
    /// An address of the result is not on the interface.
    AddressMissing,
    /// The master of a macvlan, ipvlan or vlan interface is missing or down on the node.
    MasterDown,
    /// The delegate's own CHECK failed, or the pod's interfaces cannot be read.
    CheckFailed,
}

impl Reason {
    /// Every reason, in the order of the README.
    pub const ALL: [Reason; 5] = [
        Reason::InterfaceMissing,
        Reason::LinkDown,
        Reason::AddressMissing,
        Reason::MasterDown,
        Reason::CheckFailed,
    ];

    /// The condition's `reason`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::InterfaceMissing => "InterfaceMissing",
            Reason::LinkDown => "LinkDown",
            Reason::AddressMissing => "AddressMissing",
            Reason::MasterDown => "MasterDown",
            Reason::CheckFailed => "CheckFailed",
        }
    }
}

impl CheckProblem {
    /// The kind of problem.
    pub fn reason(&self) -> Reason {
        match self {
            CheckProblem::Missing | CheckProblem::Replaced { .. } => Reason::InterfaceMissing,
            CheckProblem::Down => Reason::LinkDown,
            CheckProblem::Address(_) => Reason::AddressMissing,
            CheckProblem::MasterMissing(_) | CheckProblem::MasterDown(_) => Reason::MasterDown,
            CheckProblem::Unreadable(_) => Reason::CheckFailed,
        }
    }
}

/// The configured master of a step whose first plugin is a macvlan, ipvlan or vlan: `Some("")`
/// when it names none (the interface's own parent is looked at), `None` for other kinds.
fn configured_master(step: &Step) -> Option<String> {
    let conf = step.conf_list()?;
    let first = conf.plugins.first()?;
    let kind = first.get("type")?.as_str()?;
    STACKED.contains(&kind).then(|| {
        first
            .get("master")
            .and_then(|m| m.as_str())
            .unwrap_or_default()
            .to_string()
    })
}

/// A MAC as results write it (`0a:58:...`, any case), as bytes.
fn parse_mac(text: &str) -> Option<Vec<u8>> {
    text.split(':')
        .map(|b| u8::from_str_radix(b, 16).ok())
        .collect()
}

/// `aa:bb:...`
fn show_mac(mac: &[u8]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Whether `step`'s attachment, as `seen`, is as ADD left it; the first problem otherwise
/// (the master first: a master that went takes its interfaces with it).
///
/// # Errors
/// The [`CheckProblem`] found.
pub fn judge(step: &Step, seen: &Seen) -> Result<(), CheckProblem> {
    match &seen.master {
        Some(Master::Missing(name)) => return Err(CheckProblem::MasterMissing(name.clone())),
        Some(Master::Down(name)) => return Err(CheckProblem::MasterDown(name.clone())),
        Some(Master::Up(_)) | None => {}
    }
    let link = seen.link.as_ref().ok_or(CheckProblem::Missing)?;
    let result = parsed_result(step);
    let want_mac = result.as_ref().and_then(|r| {
        r.interfaces
            .iter()
            .find(|i| i.name == step.ifname && i.sandbox.as_deref().is_some_and(|s| !s.is_empty()))
            .and_then(|i| i.mac.as_deref())
            .and_then(parse_mac)
    });
    if let (Some(want), Some(got)) = (&want_mac, &link.mac)
        && want != got
    {
        return Err(CheckProblem::Replaced {
            want: show_mac(want),
            got: show_mac(got),
        });
    }
    if !link.up {
        return Err(CheckProblem::Down);
    }
    let wanted: Vec<IpAddr> = result
        .map(|r| r.ips_of(&step.ifname))
        .unwrap_or_default()
        .iter()
        .filter_map(|ip| ip.parse().ok())
        .collect();
    match wanted.iter().find(|ip| !link.addresses.contains(ip)) {
        Some(ip) => Err(CheckProblem::Address(*ip)),
        None => Ok(()),
    }
}

/// Looks at every step's attachment in the pod at `netns` (one session) and judges each.
///
/// # Errors
/// [`LinkError`] when the pod's namespace cannot be read.
pub fn examine(
    net: &dyn PodNet,
    netns: &Path,
    steps: &[&Step],
) -> Result<Vec<Result<(), CheckProblem>>, LinkError> {
    let masters: Vec<Option<String>> = steps.iter().map(|s| configured_master(s)).collect();
    let wanted: Vec<Wanted<'_>> = steps
        .iter()
        .zip(&masters)
        .map(|(s, m)| Wanted {
            ifname: &s.ifname,
            master: m.as_deref(),
        })
        .collect();
    let seen = net.inspect(netns, &wanted)?;
    Ok(steps
        .iter()
        .zip(seen)
        .map(|(step, seen)| judge(step, &seen))
        .collect())
}

/// The delegate's own CHECK of `step` with its cached result as `prevResult` (skipped, as
/// libcni does, below cniVersion 0.4.0 or with `disableCheck`).
///
/// # Errors
/// The failing plugin, named with the step's network and interface.
pub fn delegate_check(
    exec: &dyn Executor,
    container_id: &str,
    netns: &str,
    step: &Step,
) -> Result<(), Box<DelegateFailure>> {
    let inv = Invocation {
        command: Command::Check,
        container_id,
        netns,
        ifname: &step.ifname,
        args: &step.cni_args,
        cancel: None,
    };
    let conf = step.conf_list().ok_or_else(|| {
        Box::new(DelegateFailure {
            verb: Command::Check,
            network: step.network.clone(),
            ifname: step.ifname.clone(),
            plugin: step.types(),
            source: DelegateError::Unusable,
        })
    })?;
    list::check(
        exec,
        &conf,
        &inv,
        &step.runtime_config,
        step.result.as_ref(),
    )
    .map_err(|f| Box::new(DelegateFailure::of_step(Command::Check, step, f)))
}

#[cfg(test)]
mod tests;
