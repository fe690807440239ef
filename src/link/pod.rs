//! What the engine itself does in a pod's network namespace (the seam its tests substitute):
//! look at `CNI_NETNS`, move default routes, and read interfaces back for CHECK.

use std::net::IpAddr;
use std::path::Path;

use super::{LinkError, Side, session};
use crate::netns::{self, Probe};

/// An interface as CHECK sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// Its addresses.
    pub addresses: Vec<IpAddr>,
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

    /// Each of `ifnames` as it is in the pod (`None` when missing). One session for all of them.
    ///
    /// # Errors
    /// [`LinkError`] when the namespace cannot be read.
    fn inspect(&self, netns: &Path, ifnames: &[&str]) -> Result<Vec<Option<Seen>>, LinkError>;
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

    fn inspect(&self, netns: &Path, ifnames: &[&str]) -> Result<Vec<Option<Seen>>, LinkError> {
        session(Some(netns), |s| {
            ifnames
                .iter()
                .map(|ifname| {
                    let Some(l) = s.link_by_name(Side::Pod, ifname)? else {
                        return Ok(None);
                    };
                    let addresses = s
                        .addresses(Side::Pod, l.index)?
                        .into_iter()
                        .map(|a| a.addr)
                        .collect();
                    Ok(Some(Seen { addresses }))
                })
                .collect()
        })
    }
}
