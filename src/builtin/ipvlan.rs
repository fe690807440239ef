//! ipvlan: the reference plugin's config rules (default or chained master, mode).

use super::conf::NetConf;
use super::{Spec, internal, resolve_master};
use crate::cni::result::CniResult;
use crate::delegate::DelegateError;
use crate::link::Session;
use crate::link::request::{IpvlanMode, Kind};

/// Resolves an ipvlan config against the host's links. Without `master`, a chained config takes
/// the single interface of `prevResult`, otherwise the default route's interface.
///
/// # Errors
/// The reference plugin's message for an unknown mode or a missing master.
pub fn resolve(conf: &NetConf, s: &Session) -> Result<Spec, DelegateError> {
    let master = match (&conf.prev_result, conf.master.is_empty()) {
        (Some(prev), true) => {
            let r = CniResult::from_value(prev, &conf.cni_version)
                .map_err(|e| internal(format!("failed to parse prevResult: {e}")))?;
            match r.interfaces.as_slice() {
                [one] if !one.name.is_empty() => one.name.clone(),
                _ => {
                    return Err(internal(
                        "chained master failure. PrevResult lacks a single named interface",
                    ));
                }
            }
        }
        _ => resolve_master(conf, s)?,
    };
    let mode = IpvlanMode::parse(&conf.mode)
        .ok_or_else(|| internal(format!("unknown ipvlan mode: {:?}", conf.mode)))?;
    if conf.mtu < 0 {
        return Err(internal(format!("invalid MTU {}", conf.mtu)));
    }
    Ok(Spec {
        kind: Kind::Ipvlan(mode),
        master,
        mtu: u32::try_from(conf.mtu).ok().filter(|m| *m > 0),
        mac: None,
        proxy_arp: false,
    })
}
