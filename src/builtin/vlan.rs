//! vlan: the reference plugin's config rules (master required, id 0..4094, MTU bound).

use super::conf::NetConf;
use super::{Spec, internal, master_mtu};
use crate::delegate::DelegateError;
use crate::link::Session;
use crate::link::request::Kind;

/// Resolves a vlan config against the host's links.
///
/// # Errors
/// The reference plugin's message for a missing master, an id out of range, or an MTU above the
/// master's.
pub fn resolve(conf: &NetConf, s: &Session) -> Result<Spec, DelegateError> {
    if conf.master.is_empty() {
        return Err(internal(
            "\"master\" field is required. It specifies the host interface name to create the VLAN for.",
        ));
    }
    let id = u16::try_from(conf.vlan_id)
        .ok()
        .filter(|id| *id <= 4094)
        .ok_or_else(|| {
            internal(format!(
                "invalid VLAN ID {} (must be between 0 and 4095 inclusive)",
                conf.vlan_id
            ))
        })?;
    let max = master_mtu(s, &conf.master)?;
    if conf.mtu < 0 || conf.mtu > i64::from(max) {
        return Err(internal(format!(
            "invalid MTU {}, must be [0, master MTU({max})]",
            conf.mtu
        )));
    }
    Ok(Spec {
        kind: Kind::Vlan(id),
        master: conf.master.clone(),
        mtu: u32::try_from(conf.mtu).ok().filter(|m| *m > 0),
        mac: None,
        proxy_arp: false,
    })
}
