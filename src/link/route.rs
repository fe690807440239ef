//! Route dumps and the `default-route` operation.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use futures_util::TryStreamExt;
use rtnetlink::RouteMessageBuilder;
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};

use super::request::{self, NewRoute};
use super::{LinkError, RouteState, Session, Side, from_rtnl, session};

const MAIN_TABLE: u32 = 254;

fn ip_of(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v) => Some(IpAddr::V4(*v)),
        RouteAddress::Inet6(v) => Some(IpAddr::V6(*v)),
        _ => None,
    }
}

fn table_of(m: &RouteMessage) -> u32 {
    m.attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(m.header.table))
}

pub(super) fn state_of(m: RouteMessage) -> RouteState {
    let mut dst = None;
    let mut gateway = None;
    let mut oif = None;
    for a in &m.attributes {
        match a {
            RouteAttribute::Destination(d) => {
                dst = ip_of(d).map(|ip| (ip, m.header.destination_prefix_length));
            }
            RouteAttribute::Gateway(g) => gateway = ip_of(g),
            RouteAttribute::Oif(i) => oif = Some(*i),
            _ => {}
        }
    }
    if m.header.destination_prefix_length == 0 {
        dst = None;
    }
    RouteState {
        dst,
        gateway,
        oif,
        message: m,
    }
}

pub(super) fn dump(s: &Session, side: Side, v6: bool) -> Result<Vec<RouteState>, LinkError> {
    let h = s.h(side)?;
    let filter = if v6 {
        RouteMessageBuilder::<Ipv6Addr>::new().build()
    } else {
        RouteMessageBuilder::<Ipv4Addr>::new().build()
    };
    let msgs: Vec<RouteMessage> =
        s.rt.block_on(h.route().get(filter).execute().try_collect())
            .map_err(from_rtnl)?;
    Ok(msgs
        .into_iter()
        .filter(|m| table_of(m) == MAIN_TABLE)
        .map(state_of)
        .collect())
}

/// Inside the namespace at `netns_path`: removes every default route of `gateway`'s family and
/// installs one via `gateway` on `ifname` (the multi-network `default-route` selection).
///
/// # Errors
/// [`LinkError::NotFound`] when `ifname` is not in the namespace; [`LinkError`] when the namespace
/// cannot be entered or the kernel refuses a change.
pub fn set_default_route(
    netns_path: &Path,
    gateway: IpAddr,
    ifname: &str,
) -> Result<(), LinkError> {
    session(Some(netns_path), |s| {
        set_default_route_in(s, gateway, ifname)
    })
}

/// [`set_default_route`] in an open session's pod namespace.
///
/// # Errors
/// As [`set_default_route`].
pub fn set_default_route_in(s: &Session, gateway: IpAddr, ifname: &str) -> Result<(), LinkError> {
    let link = s
        .link_by_name(Side::Pod, ifname)?
        .ok_or_else(|| LinkError::NotFound(ifname.to_string()))?;
    for r in s.routes(Side::Pod, crate::cni::ip::is_v6(gateway))? {
        if r.dst.is_none() {
            s.del_route(Side::Pod, r.message)?;
        }
    }
    let unspecified = match gateway {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    s.add_route(
        Side::Pod,
        request::new_route(&NewRoute {
            dst: unspecified,
            prefix: 0,
            gateway: Some(gateway),
            oif: link.index,
        }),
    )
}
