//! What the engine itself does in a pod's network namespace (the seam its tests substitute):
//! look at `CNI_NETNS`, move default routes, and read interfaces back for CHECK.

use std::net::IpAddr;
use std::path::Path;

use super::{LinkError, Side, session};
use crate::netns::{self, Probe};

/// An interface as CHECK and the agent's health rounds see it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Seen {
    /// The interface, `None` when it is not in the pod.
    pub link: Option<Iface>,
    /// Its master on the node, for the kinds that have one (asked for by [`Wanted::master`]).
    pub master: Option<Master>,
}

/// An interface that is in the pod.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Iface {
    /// Its addresses.
    pub addresses: Vec<IpAddr>,
    /// Administratively up.
    pub up: bool,
    /// Its hardware address.
    pub mac: Option<Vec<u8>>,
}

/// The node's link a macvlan, ipvlan or vlan interface sits on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Master {
    /// It exists and is up.
    Up(String),
    /// It exists and is down.
    Down(String),
    /// It is not on the node (named as configured, or `#index`).
    Missing(String),
}

/// What to look at for one interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted<'a> {
    /// The interface in the pod.
    pub ifname: &'a str,
    /// For a kind with a master: `Some` of its configured name (`""` when not configured: the
    /// interface's own parent is looked at).
    pub master: Option<&'a str>,
}

/// The engine's operations in a pod's namespace.
pub trait PodNet: Sync {
    /// What is at `path`.
    fn probe(&self, path: &Path) -> Probe;

    /// For each `(gateway, ifname)`: removes the namespace's default routes of the gateway's
    /// family and adds one via the gateway on the interface. One session for all of them.
    ///
    /// # Errors
    /// The index of the route that failed, and why.
    fn set_default_routes(
        &self,
        netns: &Path,
        routes: &[(IpAddr, &str)],
    ) -> Result<(), (usize, LinkError)>;

    /// Each wanted interface as it is in the pod, with its master on the node when asked for.
    /// One session for all of them.
    ///
    /// # Errors
    /// [`LinkError`] when the namespace cannot be read.
    fn inspect(&self, netns: &Path, wanted: &[Wanted<'_>]) -> Result<Vec<Seen>, LinkError>;
}

/// The kernel, through rtnetlink.
#[derive(Debug, Clone, Copy, Default)]
pub struct Kernel;

impl PodNet for Kernel {
    fn probe(&self, path: &Path) -> Probe {
        netns::probe(path)
    }

    fn set_default_routes(
        &self,
        netns: &Path,
        routes: &[(IpAddr, &str)],
    ) -> Result<(), (usize, LinkError)> {
        if routes.is_empty() {
            return Ok(());
        }
        let s = super::Session::open(Some(netns)).map_err(|e| (0, e))?;
        for (i, (gw, ifname)) in routes.iter().enumerate() {
            super::route::set_default_route_in(&s, *gw, ifname).map_err(|e| (i, e))?;
        }
        Ok(())
    }

    fn inspect(&self, netns: &Path, wanted: &[Wanted<'_>]) -> Result<Vec<Seen>, LinkError> {
        session(Some(netns), |s| wanted.iter().map(|w| look(s, w)).collect())
    }
}

/// One wanted interface, and its master, through `s`.
fn look(s: &super::Session, w: &Wanted<'_>) -> Result<Seen, LinkError> {
    let link = s.link_by_name(Side::Pod, w.ifname)?;
    let iface = match &link {
        None => None,
        Some(l) => Some(Iface {
            addresses: s
                .addresses(Side::Pod, l.index)?
                .into_iter()
                .map(|a| a.addr)
                .collect(),
            up: l.up,
            mac: l.mac.clone(),
        }),
    };
    let master = match w.master {
        None => None,
        Some(name) => {
            let found = match (name, link.as_ref().and_then(|l| l.parent)) {
                ("", None) => None,
                ("", Some(index)) => {
                    Some((s.link_by_index(Side::Host, index)?, format!("#{index}")))
                }
                (name, _) => Some((s.link_by_name(Side::Host, name)?, name.to_string())),
            };
            found.map(|(l, named)| match l {
                None => Master::Missing(named),
                Some(l) if l.up => Master::Up(l.name),
                Some(l) => Master::Down(l.name),
            })
        }
    };
    Ok(Seen {
        link: iface,
        master,
    })
}
