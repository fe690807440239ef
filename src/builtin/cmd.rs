//! ADD, DEL and CHECK of a built-in link plugin, in the reference plugins' order: create the link
//! from the host with the pod's namespace attached under a temporary name, rename it inside the
//! pod, IPAM, addresses and routes; undo everything on failure.

use std::hash::{BuildHasher, Hasher};
use std::path::Path;

use super::conf::{NetConf, Plugin, format_mac};
use super::{Spec, internal, ipam, ipvlan, macvlan, vlan};
use crate::cni::env::Command;
use crate::cni::result::{CniResult, Interface};
use crate::delegate::{DelegateError, Executor, Invocation};
use crate::link::request::{self, Kind, NewLink};
use crate::link::{self, LinkError, Session, Side};
use crate::netns::{self, NetnsError};

fn resolve(plugin: Plugin, conf: &NetConf, s: &Session) -> Result<Spec, DelegateError> {
    match plugin {
        Plugin::Macvlan => macvlan::resolve(conf, s),
        Plugin::Ipvlan => ipvlan::resolve(conf, s),
        Plugin::Vlan => vlan::resolve(conf, s),
    }
}

/// A fresh temporary link name (`plx` + 8 hex digits).
fn temp_name() -> String {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    format!("plx{:08x}", h.finish() as u32)
}

/// A link made in the pod: its index there, its interface entry, and the addresses a chained
/// ipvlan takes from `prevResult`.
struct Created {
    index: u32,
    iface: Interface,
    preset: Option<CniResult>,
}

/// Creates the link and renames it inside the pod. The config, the master and where the
/// addresses come from are checked first, in the reference plugins' order; on failure nothing
/// is left behind.
fn create(
    plugin: Plugin,
    conf: &NetConf,
    inv: &Invocation<'_>,
    s: &Session,
    ns_fd: std::os::fd::RawFd,
) -> Result<Created, DelegateError> {
    let spec = resolve(plugin, conf, s)?;
    let what = plugin.name();
    let master = s.link_by_name(Side::Host, &spec.master)?.ok_or_else(|| {
        internal(format!(
            "failed to lookup master {:?}: Link not found",
            spec.master
        ))
    })?;
    let preset = if conf.ipam_type.is_empty() {
        without_ipam(plugin, conf)?
    } else {
        None
    };
    let tmp = temp_name();
    s.add_link(
        Side::Host,
        request::new_link(&NewLink {
            name: tmp.clone(),
            kind: spec.kind,
            master_index: master.index,
            mtu: spec.mtu,
            mac: spec.mac,
            netns_fd: Some(ns_fd),
        }),
    )
    .map_err(|e| internal(format!("failed to create {what}: {e}")))?;
    let created = s
        .link_by_name(Side::Pod, &tmp)?
        .ok_or_else(|| internal(format!("failed to find {what} {tmp:?} in the pod")))?;
    let undo = |e: DelegateError| {
        if let Err(d) = s.del_link(Side::Pod, created.index) {
            tracing::warn!(error = %d, link = %tmp, "deleting link after failed ADD");
        }
        e
    };
    if spec.proxy_arp {
        let path = format!("/proc/sys/net/ipv4/conf/{tmp}/proxy_arp");
        netns::run_in(Path::new(inv.netns), || std::fs::write(&path, "1"))
            .map_err(|e| undo(internal(e.to_string())))?
            .map_err(|e| {
                undo(internal(format!(
                    "failed to set proxy_arp on newly added interface {tmp:?}: {e}"
                )))
            })?;
    }
    s.set_link(Side::Pod, request::rename(created.index, inv.ifname))
        .map_err(|e| {
            undo(internal(format!(
                "failed to rename {what} to {:?}: {e}",
                inv.ifname
            )))
        })?;
    let now = s
        .link_by_index(Side::Pod, created.index)
        .map_err(|e| undo(e.into()))?
        .ok_or_else(|| undo(internal(format!("failed to find {:?}", inv.ifname))))?;
    Ok(Created {
        index: created.index,
        iface: Interface {
            name: inv.ifname.to_string(),
            mac: now.mac.as_deref().map(format_mac),
            sandbox: Some(inv.netns.to_string()),
            ..Interface::default()
        },
        preset,
    })
}

/// Where a link's addresses come from when the config has no `ipam`, decided before any link is
/// made (so a refusal leaves nothing): macvlan is L2-only without addresses; a chained ipvlan
/// (no `master`) takes `prevResult`'s addresses; otherwise ipvlan and vlan fail as the reference
/// plugins do (they exec an IPAM plugin named "").
fn without_ipam(plugin: Plugin, conf: &NetConf) -> Result<Option<CniResult>, DelegateError> {
    match plugin {
        Plugin::Macvlan => Ok(None),
        Plugin::Ipvlan => {
            let chained = conf
                .prev_result
                .as_ref()
                .filter(|_| conf.master.is_empty())
                .map(|p| CniResult::from_value(p, &conf.cni_version))
                .transpose()
                .map_err(|e| internal(format!("failed to parse prevResult: {e}")))?
                .filter(|r| !r.ips.is_empty());
            chained
                .map(Some)
                .ok_or_else(|| internal("no plugin name provided"))
        }
        Plugin::Vlan => Err(internal(
            "failed to execute IPAM delegate: no plugin name provided",
        )),
    }
}

/// ADD: the result JSON in the config's cniVersion.
pub(super) fn add(
    plugin: Plugin,
    conf: &NetConf,
    inv: &Invocation<'_>,
    stdin: &[u8],
    ipam_exec: &dyn Executor,
) -> Result<Vec<u8>, DelegateError> {
    let path = Path::new(inv.netns);
    let ns = netns::open(path)
        .map_err(|e| internal(format!("failed to open netns {:?}: {e}", inv.netns)))?;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&ns);
    // One pair of netlink sockets (host and pod) for the whole ADD.
    let s = Session::open(Some(path))?;
    let Created {
        index,
        iface,
        preset,
    } = create(plugin, conf, inv, &s, fd)?;
    drop(ns);
    let delete_link = || {
        if let Err(e) = s.del_link(Side::Pod, index) {
            tracing::warn!(error = %e, ifname = inv.ifname, "deleting link after failed ADD");
        }
    };
    let mut result = CniResult {
        interfaces: vec![iface],
        dns: conf.dns.clone(),
        ..CniResult::default()
    };
    if let Some(prev) = preset {
        // A chained ipvlan: the previous plugin's addresses, routes and DNS, on this link.
        result.ips = prev.ips;
        for ip in &mut result.ips {
            ip.interface = Some(0);
        }
        result.routes = prev.routes;
        result.dns = prev.dns;
        ipam::apply(&s, path, inv.ifname, &result).inspect_err(|_| delete_link())?;
    } else if conf.ipam_type.is_empty() {
        s.set_link(Side::Pod, request::set_up(index))
            .map_err(|e| internal(format!("failed to set {:?} UP: {e}", inv.ifname)))
            .inspect_err(|_| delete_link())?;
    } else {
        let r = ipam::add(ipam_exec, &conf.ipam_type, inv, stdin, &conf.cni_version)
            .inspect_err(|_| delete_link())?;
        result.ips = r.ips;
        for ip in &mut result.ips {
            ip.interface = Some(0);
        }
        result.routes = r.routes;
        if let Err(e) = ipam::apply(&s, path, inv.ifname, &result) {
            let del = Invocation {
                command: Command::Del,
                // The undo of this ADD runs even when the ADD was cancelled meanwhile.
                cancel: None,
                ..inv.clone()
            };
            if let Err(d) = ipam::exec(ipam_exec, &conf.ipam_type, &del, stdin) {
                tracing::warn!(error = %d, "IPAM DEL after failed ADD");
            }
            delete_link();
            return Err(e);
        }
    }
    let v = result
        .to_value(&conf.cni_version)
        .map_err(|e| internal(e.to_string()))?;
    serde_json::to_vec(&v).map_err(|e| internal(e.to_string()))
}

/// DEL: IPAM DEL first (by `ipam_type`, if any), then the link; a missing namespace or link is
/// success. It needs nothing of the config but the IPAM type: not the master.
pub(super) fn del(
    ipam_type: &str,
    inv: &Invocation<'_>,
    stdin: &[u8],
    ipam_exec: &dyn Executor,
) -> Result<(), DelegateError> {
    if !ipam_type.is_empty() {
        ipam::exec(ipam_exec, ipam_type, inv, stdin)?;
    }
    if inv.netns.is_empty() {
        return Ok(());
    }
    let r: Result<(), LinkError> = link::session(Some(Path::new(inv.netns)), |s| {
        if let Some(l) = s.link_by_name(Side::Pod, inv.ifname)? {
            match s.del_link(Side::Pod, l.index) {
                Err(e) if e.is_no_device() => {}
                other => other?,
            }
        }
        Ok(())
    });
    match r {
        Err(LinkError::Netns(NetnsError::NotFound { .. })) | Ok(()) => Ok(()),
        Err(e) => Err(internal(e.to_string())),
    }
}

/// CHECK: IPAM CHECK, then the link's kind, mode, master, MTU, MAC and addresses against
/// `prevResult`.
pub(super) fn check(
    plugin: Plugin,
    conf: &NetConf,
    inv: &Invocation<'_>,
    stdin: &[u8],
    ipam_exec: &dyn Executor,
) -> Result<(), DelegateError> {
    if !conf.ipam_type.is_empty() {
        ipam::exec(ipam_exec, &conf.ipam_type, inv, stdin)?;
    }
    let prev = conf
        .prev_result
        .as_ref()
        .ok_or_else(|| internal("Required prevResult missing"))?;
    let prev = CniResult::from_value(prev, &conf.cni_version)
        .map_err(|e| internal(format!("failed to parse prevResult: {e}")))?;
    let idx = prev
        .interfaces
        .iter()
        .position(|i| i.name == inv.ifname && i.sandbox.as_deref() == Some(inv.netns))
        .ok_or_else(|| internal(format!("Sandbox {} not found", inv.netns)))?;
    let want = &prev.interfaces[idx];
    let path = Path::new(inv.netns);
    // CHECK's prevResult is this plugin's own result, not the chained one ADD may have had: the
    // master is the configured one (or the default route's interface).
    let own = NetConf {
        prev_result: None,
        ..conf.clone()
    };
    link::session(Some(path), |s| {
        let spec = resolve(plugin, &own, s)?;
        let l = s.link_by_name(Side::Pod, inv.ifname)?.ok_or_else(|| {
            internal(format!("failed to lookup {:?}: Link not found", inv.ifname))
        })?;
        let kind = spec.kind.name();
        if l.kind.as_deref() != Some(kind) {
            return Err(internal(format!(
                "Error: Container interface {} not of type {kind}",
                inv.ifname
            )));
        }
        let mode_ok = match spec.kind {
            Kind::Macvlan(m) => l.macvlan_mode == Some(u32::from(m.to_kernel())),
            Kind::Ipvlan(m) => l.ipvlan_mode == Some(u16::from(m.to_kernel())),
            Kind::Vlan(id) => l.vlan_id == Some(id),
        };
        if !mode_ok {
            return Err(internal(format!(
                "Container {kind} mode or id does not match the configuration"
            )));
        }
        let master = s.link_by_name(Side::Host, &spec.master)?.ok_or_else(|| {
            internal(format!(
                "failed to lookup master {:?}: Link not found",
                spec.master
            ))
        })?;
        if l.parent != Some(master.index) {
            return Err(internal(format!(
                "Container interface {} is not a child of master {:?}",
                inv.ifname, spec.master
            )));
        }
        if let Some(mtu) = spec.mtu
            && l.mtu != Some(mtu)
        {
            return Err(internal(format!(
                "Container interface {} MTU {:?} does not match {mtu}",
                inv.ifname, l.mtu
            )));
        }
        if let Some(mac) = &want.mac {
            let have = l.mac.as_deref().map(format_mac).unwrap_or_default();
            if !have.eq_ignore_ascii_case(mac) {
                return Err(internal(format!(
                    "Interface {} Mac {have} doesn't match container Mac: {mac}",
                    inv.ifname
                )));
            }
        }
        let addrs = s.addresses(Side::Pod, l.index)?;
        for ip in prev.ips.iter().filter(|ip| ip.interface == Some(idx)) {
            let (a, p) = crate::cni::ip::parse_cidr(&ip.address)
                .ok_or_else(|| internal(format!("invalid address {:?}", ip.address)))?;
            if !addrs.iter().any(|x| x.addr == a && x.prefix == p) {
                return Err(internal(format!(
                    "Failed to match addr {} on interface {}",
                    ip.address, inv.ifname
                )));
            }
        }
        Ok(())
    })
}
