//! macvlan: the reference plugin's config rules (default master, mode, MTU bound, MAC).

use super::conf::{NetConf, parse_mac};
use super::{Spec, internal, master_mtu, resolve_master};
use crate::delegate::DelegateError;
use crate::link::Session;
use crate::link::request::{Kind, MacvlanMode};

/// Resolves a macvlan config against the host's links.
///
/// # Errors
/// The reference plugin's message for an unknown mode, a missing master, an MTU above the
/// master's, or a malformed MAC.
pub fn resolve(conf: &NetConf, s: &Session) -> Result<Spec, DelegateError> {
    let master = resolve_master(conf, s)?;
    let max = master_mtu(s, &master)?;
    if conf.mtu < 0 || conf.mtu > i64::from(max) {
        return Err(internal(format!(
            "invalid MTU {}, must be [0, master MTU({max})]",
            conf.mtu
        )));
    }
    let mode = MacvlanMode::parse(&conf.mode)
        .ok_or_else(|| internal(format!("unknown macvlan mode: {:?}", conf.mode)))?;
    let mac = if conf.mac.is_empty() {
        None
    } else {
        Some(parse_mac(&conf.mac).ok_or_else(|| {
            internal(format!(
                "invalid args {} for MAC addr: address {}: invalid MAC address",
                conf.mac, conf.mac
            ))
        })?)
    };
    Ok(Spec {
        kind: Kind::Macvlan(mode),
        master,
        mtu: u32::try_from(conf.mtu).ok().filter(|m| *m > 0),
        mac,
        proxy_arp: true,
    })
}
