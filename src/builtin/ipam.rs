//! IPAM by the CNI delegation rules: run the named IPAM plugin with the full config (host-local
//! in process when it understands the config, anything else exec'd through the wrapped
//! executor), then apply its addresses and routes inside the pod the way the reference plugins'
//! `ConfigureIface` does.

use std::net::IpAddr;
use std::time::Duration;

use super::hostlocal;
use crate::cni::env::Command;
use crate::cni::ip::{network, parse_cidr};
use crate::cni::result::CniResult;
use crate::delegate::{DelegateError, Executor, Invocation};
use crate::link::request::{self, NewRoute};
use crate::link::{Session, Side};
use crate::netns;

/// How long in-process IPAM waits for its store's lock: the executor's bound on one call, else
/// a minute.
fn lock_wait(inner: &dyn Executor) -> Duration {
    inner.timeout().unwrap_or(Duration::from_secs(60))
}

/// Runs the IPAM plugin `ipam_type` with the command of `inv` (DEL or CHECK; ADD is [`add`])
/// and the full config `stdin`.
///
/// # Errors
/// The plugin's own error, passed through unchanged (as the reference plugins do).
pub fn exec(
    inner: &dyn Executor,
    ipam_type: &str,
    inv: &Invocation<'_>,
    stdin: &[u8],
) -> Result<Vec<u8>, DelegateError> {
    if ipam_type == hostlocal::TYPE {
        let wait = lock_wait(inner);
        let done = match inv.command {
            Command::Del => hostlocal::del(inv, stdin, wait)?.map(|()| Vec::new()),
            Command::Check => hostlocal::check(inv, stdin, wait)?.map(|()| Vec::new()),
            _ => None,
        };
        if let Some(out) = done {
            return Ok(out);
        }
    }
    inner.exec(ipam_type, inv, stdin)
}

/// IPAM ADD: the plugin's result, which must hold at least one address.
///
/// # Errors
/// The plugin's error, or a plugin error when its output is not a result or has no address.
pub fn add(
    inner: &dyn Executor,
    ipam_type: &str,
    inv: &Invocation<'_>,
    stdin: &[u8],
    cni_version: &str,
) -> Result<CniResult, DelegateError> {
    let r = if ipam_type == hostlocal::TYPE
        && let Some(r) = hostlocal::add(inv, stdin, lock_wait(inner))?
    {
        r
    } else {
        let out = inner.exec(ipam_type, inv, stdin)?;
        CniResult::from_slice(&out, cni_version)
            .map_err(|e| super::internal(format!("IPAM plugin returned an invalid result: {e}")))?
    };
    if r.ips.is_empty() {
        return Err(super::internal("IPAM plugin returned missing IP config"));
    }
    Ok(r)
}

/// Inside the pod: brings `ifname` up, adds every address of `r` and then its routes (a route
/// without a gateway uses the first gateway of its family; an existing route is kept).
///
/// # Errors
/// The reference plugin's message naming what could not be applied.
pub fn apply(
    s: &Session,
    netns_path: &std::path::Path,
    ifname: &str,
    r: &CniResult,
) -> Result<(), DelegateError> {
    let fail = |m: String| super::internal(m);
    let link = s
        .link_by_name(Side::Pod, ifname)
        .map_err(|e| fail(format!("failed to lookup {ifname:?}: {e}")))?
        .ok_or_else(|| fail(format!("failed to lookup {ifname:?}: link not found")))?;
    s.set_link(Side::Pod, request::set_up(link.index))
        .map_err(|e| fail(format!("failed to set {ifname:?} UP: {e}")))?;
    let (mut v4gw, mut v6gw) = (None, None);
    let mut ipv6_enabled = false;
    for ip in &r.ips {
        let (addr, prefix) = parse_cidr(&ip.address)
            .ok_or_else(|| fail(format!("invalid IP address {:?}", ip.address)))?;
        if addr.is_ipv6() && !ipv6_enabled {
            enable_ipv6(netns_path, ifname)?;
            ipv6_enabled = true;
        }
        s.add_address(Side::Pod, request::new_address(link.index, addr, prefix))
            .map_err(|e| {
                fail(format!(
                    "failed to add IP addr {} to {ifname:?}: {e}",
                    ip.address
                ))
            })?;
        let gw: Option<IpAddr> = ip.gateway.as_deref().and_then(|g| g.parse().ok());
        match gw {
            Some(g @ IpAddr::V4(_)) if v4gw.is_none() => v4gw = Some(g),
            Some(g @ IpAddr::V6(_)) if v6gw.is_none() => v6gw = Some(g),
            _ => {}
        }
    }
    for route in &r.routes {
        let (dst, prefix) =
            parse_cidr(&route.dst).ok_or_else(|| fail(format!("invalid route {:?}", route.dst)))?;
        let gw = match route.gw.as_deref() {
            Some(g) => Some(
                g.parse()
                    .map_err(|_| fail(format!("invalid gateway {g:?}")))?,
            ),
            None if dst.is_ipv4() => v4gw,
            None => v6gw,
        };
        let msg = request::new_route(&NewRoute {
            dst: network(dst, prefix),
            prefix,
            gateway: gw,
            oif: link.index,
        });
        if let Err(e) = s.add_route(Side::Pod, msg)
            && e.errno() != Some(rustix::io::Errno::EXIST.raw_os_error())
        {
            let via = gw.map(|g| g.to_string()).unwrap_or_else(|| "<nil>".into());
            return Err(fail(format!(
                "failed to add route '{} via {via} dev {ifname}': {e}",
                route.dst
            )));
        }
    }
    Ok(())
}

/// Clears `disable_ipv6` on `lo` and `ifname` inside the pod, as the reference does before the
/// first IPv6 address.
fn enable_ipv6(netns_path: &std::path::Path, ifname: &str) -> Result<(), DelegateError> {
    netns::run_in(netns_path, || {
        for dev in ["lo", ifname] {
            let p = format!("/proc/sys/net/ipv6/conf/{dev}/disable_ipv6");
            match std::fs::read_to_string(&p) {
                Ok(v) if v.trim() == "0" => {}
                Ok(_) => std::fs::write(&p, "0").map_err(|e| {
                    super::internal(format!("failed to enable IPv6 for interface {dev:?}: {e}"))
                })?,
                Err(_) => {}
            }
        }
        Ok(())
    })
    .map_err(|e| super::internal(e.to_string()))?
}
