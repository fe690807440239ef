//! CHECK: plexus itself verifies that every journaled interface and its addresses are in the
//! pod (whatever the delegate's cniVersion), then each delegate checks its own attachment with
//! the cached result as `prevResult`.

use std::net::IpAddr;
use std::path::Path;

use serde_json::Value;

use super::{Engine, Loaded, read_record};
use crate::cni::env::Command;
use crate::cni::result::CniResult;
use crate::delegate::list;
use crate::error::{DelegateFailure, Error};
use crate::link::{self, Side};

impl Engine<'_> {
    /// CHECK.
    ///
    /// # Errors
    /// The first attachment whose delegate reports a problem, named; an unknown container.
    pub fn check(&self) -> Result<(), Error> {
        let lock = self.journal.lock(&self.req.container_id)?;
        let atts = match read_record(&lock)? {
            Loaded::Record(r, atts) if r.complete => atts,
            Loaded::Corrupt(reason) => {
                return Err(Error::Failed(format!(
                    "journal of container {:?} is corrupt: {reason}",
                    self.req.container_id
                )));
            }
            Loaded::Missing => {
                // Taking the lock created a lock file for a container plexus never saw.
                lock.remove()?;
                return Err(Error::UnknownContainer(self.req.container_id.clone()));
            }
            Loaded::Record(..) => {
                return Err(Error::UnknownContainer(self.req.container_id.clone()));
            }
        };
        self.check_in_pod(&atts)?;
        for (a, cached) in &atts {
            let inv = self.invocation(Command::Check, &self.req.netns, &a.ifname, &a.cni_args);
            list::check(self.exec, &a.conf, &inv, &a.runtime_config, cached.as_ref()).map_err(
                |f| {
                    Error::Delegates(vec![DelegateFailure {
                        verb: Command::Check,
                        network: a.network.clone(),
                        ifname: a.ifname.clone(),
                        plugin: f.plugin,
                        source: f.source,
                    }])
                },
            )?;
        }
        Ok(())
    }

    /// Each attachment's interface exists in the pod with every address its result reported.
    fn check_in_pod(&self, atts: &[(crate::plan::Attachment, Option<Value>)]) -> Result<(), Error> {
        let wanted: Vec<(&str, &str, Vec<IpAddr>)> = atts
            .iter()
            .map(|(a, cached)| {
                let ips = cached
                    .as_ref()
                    .and_then(|r| CniResult::from_value(r, &a.conf.cni_version).ok())
                    .map(|r| r.ips_of(&a.ifname))
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|ip| ip.parse().ok())
                    .collect();
                (a.network.as_str(), a.ifname.as_str(), ips)
            })
            .collect();
        let problem = link::session(Some(Path::new(&self.req.netns)), |s| {
            for (network, ifname, ips) in &wanted {
                let Some(l) = s.link_by_name(Side::Pod, ifname)? else {
                    return Ok(Some((
                        *network,
                        *ifname,
                        "the interface is missing from the pod".to_string(),
                    )));
                };
                let have = s.addresses(Side::Pod, l.index)?;
                if let Some(ip) = ips.iter().find(|ip| !have.iter().any(|h| h.addr == **ip)) {
                    return Ok(Some((
                        *network,
                        *ifname,
                        format!("address {ip} is missing from the interface"),
                    )));
                }
            }
            Ok::<_, link::LinkError>(None)
        })
        .map_err(|e| Error::Check {
            network: String::new(),
            ifname: String::new(),
            reason: format!("cannot read the pod's interfaces: {e}"),
        })?;
        match problem {
            Some((network, ifname, reason)) => Err(Error::Check {
                network: network.to_string(),
                ifname: ifname.to_string(),
                reason,
            }),
            None => Ok(()),
        }
    }
}
