//! Pure construction of the netlink messages the built-in delegates send: plain data in, a
//! `LinkMessage` / `AddressMessage` / `RouteMessage` out, so every field is unit-tested.

use std::net::IpAddr;
use std::os::fd::RawFd;

use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use rtnetlink::packet_route::link::{
    InfoData, InfoIpVlan, InfoKind, InfoMacVlan, InfoVlan, IpVlanFlags, IpVlanMode, LinkAttribute,
    LinkFlags, LinkInfo, LinkMessage, MacVlanMode,
};
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope, RouteType,
};

/// macvlan modes the reference plugin accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacvlanMode {
    /// `bridge` (the default).
    Bridge,
    /// `private`.
    Private,
    /// `vepa`.
    Vepa,
    /// `passthru`.
    Passthru,
}

impl MacvlanMode {
    /// Parses the config spelling; empty means `bridge`.
    pub fn parse(s: &str) -> Option<MacvlanMode> {
        Some(match s {
            "" | "bridge" => MacvlanMode::Bridge,
            "private" => MacvlanMode::Private,
            "vepa" => MacvlanMode::Vepa,
            "passthru" => MacvlanMode::Passthru,
            _ => return None,
        })
    }

    /// The kernel's `MACVLAN_MODE_*` value.
    pub fn to_kernel(self) -> MacVlanMode {
        match self {
            MacvlanMode::Bridge => MacVlanMode::Bridge,
            MacvlanMode::Private => MacVlanMode::Private,
            MacvlanMode::Vepa => MacVlanMode::Vepa,
            MacvlanMode::Passthru => MacVlanMode::Passthrough,
        }
    }
}

/// ipvlan modes the reference plugin accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpvlanMode {
    /// `l2` (the default).
    L2,
    /// `l3`.
    L3,
    /// `l3s`.
    L3s,
}

impl IpvlanMode {
    /// Parses the config spelling; empty means `l2`.
    pub fn parse(s: &str) -> Option<IpvlanMode> {
        Some(match s {
            "" | "l2" => IpvlanMode::L2,
            "l3" => IpvlanMode::L3,
            "l3s" => IpvlanMode::L3s,
            _ => return None,
        })
    }

    /// The kernel's `IPVLAN_MODE_*` value.
    pub fn to_kernel(self) -> IpVlanMode {
        match self {
            IpvlanMode::L2 => IpVlanMode::L2,
            IpvlanMode::L3 => IpVlanMode::L3,
            IpvlanMode::L3s => IpVlanMode::L3S,
        }
    }
}

/// The kind-specific part of a new link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A macvlan in this mode.
    Macvlan(MacvlanMode),
    /// An ipvlan in this mode (flags: bridge, as the reference sends).
    Ipvlan(IpvlanMode),
    /// An 802.1Q vlan with this id.
    Vlan(u16),
}

impl Kind {
    /// The `IFLA_INFO_KIND` string.
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Macvlan(_) => "macvlan",
            Kind::Ipvlan(_) => "ipvlan",
            Kind::Vlan(_) => "vlan",
        }
    }
}

/// Everything a new child link of a master is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLink {
    /// Name to create it under (a temporary name; it is renamed inside the pod).
    pub name: String,
    /// Kind and its mode / id.
    pub kind: Kind,
    /// Index of the master in the namespace the request is sent in.
    pub master_index: u32,
    /// MTU, if the config sets one (0 / unset: the kernel inherits the master's).
    pub mtu: Option<u32>,
    /// Hardware address, if the config sets one.
    pub mac: Option<[u8; 6]>,
    /// Descriptor of the namespace to create the link in (`IFLA_NET_NS_FD`).
    pub netns_fd: Option<RawFd>,
}

/// The `RTM_NEWLINK` message creating `req` (sent with `NLM_F_CREATE | NLM_F_EXCL`), with a
/// zero `txqlen` as the reference plugins create it.
pub fn new_link(req: &NewLink) -> LinkMessage {
    let mut msg = LinkMessage::default();
    let a = &mut msg.attributes;
    a.push(LinkAttribute::IfName(req.name.clone()));
    if let Some(mtu) = req.mtu.filter(|m| *m > 0) {
        a.push(LinkAttribute::Mtu(mtu));
    }
    if let Some(mac) = req.mac {
        a.push(LinkAttribute::Address(mac.to_vec()));
    }
    // The reference plugins' netlink library sends a zero queue length for these links.
    a.push(LinkAttribute::TxQueueLen(0));
    a.push(LinkAttribute::Link(req.master_index));
    if let Some(fd) = req.netns_fd {
        a.push(LinkAttribute::NetNsFd(fd));
    }
    let data = match req.kind {
        Kind::Macvlan(m) => InfoData::MacVlan(vec![InfoMacVlan::Mode(m.to_kernel())]),
        Kind::Ipvlan(m) => InfoData::IpVlan(vec![
            InfoIpVlan::Mode(m.to_kernel()),
            InfoIpVlan::Flags(IpVlanFlags::empty()),
        ]),
        Kind::Vlan(id) => InfoData::Vlan(vec![InfoVlan::Id(id)]),
    };
    let kind = match req.kind {
        Kind::Macvlan(_) => InfoKind::MacVlan,
        Kind::Ipvlan(_) => InfoKind::IpVlan,
        Kind::Vlan(_) => InfoKind::Vlan,
    };
    a.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(kind),
        LinkInfo::Data(data),
    ]));
    msg
}

/// The `RTM_NEWLINK` (set) message renaming link `index` to `name`.
pub fn rename(index: u32, name: &str) -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.header.index = index;
    msg.attributes.push(LinkAttribute::IfName(name.to_string()));
    msg
}

/// The `RTM_NEWLINK` (set) message bringing link `index` up.
pub fn set_up(index: u32) -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.header.index = index;
    msg.header.flags = LinkFlags::Up;
    msg.header.change_mask = LinkFlags::Up;
    msg
}

/// The `RTM_NEWADDR` message adding `addr/prefix` to link `index`, as the reference plugins do:
/// local = address, scope universe, and for IPv4 prefixes up to /30 the broadcast address.
pub fn new_address(index: u32, addr: IpAddr, prefix: u8) -> AddressMessage {
    let mut msg = AddressMessage::default();
    msg.header.index = index;
    msg.header.prefix_len = prefix;
    msg.header.scope = AddressScope::Universe;
    msg.header.family = match addr {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    msg.attributes.push(AddressAttribute::Local(addr));
    msg.attributes.push(AddressAttribute::Address(addr));
    if let IpAddr::V4(v4) = addr
        && prefix < 31
    {
        let host_mask = u32::MAX.checked_shr(u32::from(prefix)).unwrap_or(0);
        let brd = std::net::Ipv4Addr::from(u32::from(v4) | host_mask);
        msg.attributes.push(AddressAttribute::Broadcast(brd));
    }
    msg
}

/// A route to add: destination prefix, optional gateway, output link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRoute {
    /// Destination network address (host bits ignored by the kernel only if zero: pass it masked).
    pub dst: IpAddr,
    /// Destination prefix length.
    pub prefix: u8,
    /// Next hop, if any.
    pub gateway: Option<IpAddr>,
    /// Output interface index.
    pub oif: u32,
}

/// The `RTM_NEWROUTE` message for `r` in the main table, protocol boot, scope universe, unicast
/// (what the reference plugins' netlink library sends).
pub fn new_route(r: &NewRoute) -> RouteMessage {
    let mut msg = RouteMessage::default();
    msg.header.address_family = match r.dst {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    msg.header.destination_prefix_length = r.prefix;
    msg.header.table = 254;
    msg.header.protocol = RouteProtocol::Boot;
    msg.header.scope = RouteScope::Universe;
    msg.header.kind = RouteType::Unicast;
    msg.attributes.push(RouteAttribute::Table(254));
    if r.prefix > 0 {
        msg.attributes
            .push(RouteAttribute::Destination(route_address(r.dst)));
    }
    if let Some(gw) = r.gateway {
        msg.attributes
            .push(RouteAttribute::Gateway(route_address(gw)));
    }
    msg.attributes.push(RouteAttribute::Oif(r.oif));
    msg
}

fn route_address(a: IpAddr) -> RouteAddress {
    match a {
        IpAddr::V4(v) => RouteAddress::Inet(v),
        IpAddr::V6(v) => RouteAddress::Inet6(v),
    }
}

#[cfg(test)]
mod tests;
