//! rtnetlink operations used by the built-in delegates, `default-route` and CHECK: a [`Session`]
//! holds one netlink socket opened in the host namespace and, optionally, one opened inside a
//! pod's namespace (through [`crate::netns`]), driven by the thread that uses it: one session
//! per namespace per call, not a thread and a runtime per operation.

pub mod pod;
pub mod request;
mod route;

use std::io;
use std::net::IpAddr;
use std::path::Path;

use futures_util::TryStreamExt;
use rtnetlink::Handle;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::link::{
    InfoData, InfoIpVlan, InfoMacVlan, InfoVlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use rtnetlink::packet_route::route::RouteMessage;
use tokio::runtime::Runtime;

pub use pod::{Iface, Kernel, Master, PodNet, Seen, Wanted};
pub use route::{set_default_route, set_default_route_in};

use crate::netns::{self, NetnsError};

/// Why a link operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The namespace could not be entered.
    #[error(transparent)]
    Netns(#[from] NetnsError),
    /// The netlink socket or its runtime could not be set up.
    #[error("netlink socket: {0}")]
    Socket(io::Error),
    /// The kernel refused a request; the text is the errno's, as the reference plugins print it.
    #[error("{}", errno_text(*.errno))]
    Kernel {
        /// The positive errno.
        errno: i32,
    },
    /// Any other netlink failure (bad reply, closed socket).
    #[error("netlink: {0}")]
    Protocol(String),
    /// A named link was expected but is not there.
    #[error("link {0:?} not found")]
    NotFound(String),
}

impl LinkError {
    /// The errno behind a kernel refusal.
    pub fn errno(&self) -> Option<i32> {
        match self {
            LinkError::Kernel { errno } => Some(*errno),
            _ => None,
        }
    }
}

/// errno as text in the reference plugins' spelling ("file exists", "operation not supported").
pub fn errno_text(errno: i32) -> String {
    let s = io::Error::from_raw_os_error(errno).to_string();
    let s = s.split(" (os error").next().unwrap_or(&s).to_string();
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_lowercase().chain(c).collect(),
        None => s,
    }
}

fn from_rtnl(e: rtnetlink::Error) -> LinkError {
    match e {
        rtnetlink::Error::NetlinkError(m) if m.raw_code() != 0 => LinkError::Kernel {
            errno: m.raw_code().abs(),
        },
        other => LinkError::Protocol(other.to_string()),
    }
}

/// Which namespace a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The namespace plexus runs in (the node).
    Host,
    /// The pod's namespace given to [`session`].
    Pod,
}

/// What plexus reads back about a link.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LinkState {
    /// Interface index.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// `IFLA_INFO_KIND` (`macvlan`, `veth`...).
    pub kind: Option<String>,
    /// MTU.
    pub mtu: Option<u32>,
    /// Hardware address.
    pub mac: Option<Vec<u8>>,
    /// Administratively up.
    pub up: bool,
    /// `IFLA_LINK`: the parent's index (in the parent's namespace).
    pub parent: Option<u32>,
    /// Kernel macvlan mode value.
    pub macvlan_mode: Option<u32>,
    /// Kernel ipvlan mode value.
    pub ipvlan_mode: Option<u16>,
    /// vlan id.
    pub vlan_id: Option<u16>,
}

impl LinkState {
    fn from_message(m: &LinkMessage) -> LinkState {
        let mut s = LinkState {
            index: m.header.index,
            up: m.header.flags.contains(LinkFlags::Up),
            ..LinkState::default()
        };
        for a in &m.attributes {
            match a {
                LinkAttribute::IfName(n) => s.name = n.clone(),
                LinkAttribute::Mtu(v) => s.mtu = Some(*v),
                LinkAttribute::Address(v) => s.mac = Some(v.clone()),
                LinkAttribute::Link(v) => s.parent = Some(*v),
                LinkAttribute::LinkInfo(infos) => {
                    for i in infos {
                        match i {
                            LinkInfo::Kind(k) => s.kind = Some(k.to_string()),
                            LinkInfo::Data(InfoData::MacVlan(d)) => {
                                for x in d {
                                    if let InfoMacVlan::Mode(m) = x {
                                        s.macvlan_mode = Some(u32::from(*m));
                                    }
                                }
                            }
                            LinkInfo::Data(InfoData::IpVlan(d)) => {
                                for x in d {
                                    if let InfoIpVlan::Mode(m) = x {
                                        s.ipvlan_mode = Some(u16::from(*m));
                                    }
                                }
                            }
                            LinkInfo::Data(InfoData::Vlan(d)) => {
                                for x in d {
                                    if let InfoVlan::Id(v) = x {
                                        s.vlan_id = Some(*v);
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        s
    }
}

/// One address of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Address {
    /// The address.
    pub addr: IpAddr,
    /// Its prefix length.
    pub prefix: u8,
}

/// One route of the main table, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteState {
    /// Destination and prefix length; `None` for a default route.
    pub dst: Option<(IpAddr, u8)>,
    /// Next hop.
    pub gateway: Option<IpAddr>,
    /// Output interface index.
    pub oif: Option<u32>,
    /// The raw message, for deleting it.
    pub message: RouteMessage,
}

/// Netlink sockets in the host namespace and (optionally) a pod namespace, with the
/// current-thread runtime that drives them. Requests block the calling thread, which drives the
/// sockets while it waits (so two sessions on two threads work in parallel: the kernel carries
/// out a netlink request inside the `sendmsg` of the thread that sends it). Never call from
/// inside an async runtime; the sockets close when the session drops.
pub struct Session {
    rt: Runtime,
    host: Handle,
    pod: Option<Handle>,
}

/// Opens a [`Session`] (host socket, and a socket inside `pod_netns` if given) and runs `f` with
/// it on the calling thread; the sockets close when `f` returns.
///
/// # Errors
/// `E` from [`LinkError`] when the sockets cannot be opened, otherwise whatever `f` returns.
pub fn session<T, E, F>(pod_netns: Option<&Path>, f: F) -> Result<T, E>
where
    E: From<LinkError>,
    F: FnOnce(&Session) -> Result<T, E>,
{
    let session = Session::open(pod_netns)?;
    f(&session)
}

impl Session {
    /// Opens the sockets (the pod's inside its namespace, from a thread of its own that enters
    /// it and ends).
    ///
    /// # Errors
    /// [`LinkError`] when the namespace cannot be entered or a socket cannot be opened.
    pub fn open(pod_netns: Option<&Path>) -> Result<Session, LinkError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(LinkError::Socket)?;
        let host = {
            let _g = rt.enter();
            let (conn, handle, _) = rtnetlink::new_connection().map_err(LinkError::Socket)?;
            rt.spawn(conn);
            handle
        };
        let pod = match pod_netns {
            None => None,
            Some(path) => {
                let rh = rt.handle().clone();
                let (conn, handle, _) = netns::run_in(path, move || {
                    let _g = rh.enter();
                    rtnetlink::new_connection()
                })?
                .map_err(LinkError::Socket)?;
                rt.spawn(conn);
                Some(handle)
            }
        };
        Ok(Session { rt, host, pod })
    }

    fn h(&self, side: Side) -> Result<&Handle, LinkError> {
        match side {
            Side::Host => Ok(&self.host),
            Side::Pod => self
                .pod
                .as_ref()
                .ok_or_else(|| LinkError::Protocol("no pod namespace in this session".into())),
        }
    }

    /// The link called `name`, or `None`.
    ///
    /// # Errors
    /// [`LinkError`] when the lookup itself fails.
    pub fn link_by_name(&self, side: Side, name: &str) -> Result<Option<LinkState>, LinkError> {
        let h = self.h(side)?;
        let r = self.rt.block_on(async {
            h.link()
                .get()
                .match_name(name.to_string())
                .execute()
                .try_next()
                .await
        });
        absent_is_none(r)
    }

    /// The link with index `index`, or `None`.
    ///
    /// # Errors
    /// [`LinkError`] when the lookup itself fails.
    pub fn link_by_index(&self, side: Side, index: u32) -> Result<Option<LinkState>, LinkError> {
        let h = self.h(side)?;
        let r = self
            .rt
            .block_on(async { h.link().get().match_index(index).execute().try_next().await });
        absent_is_none(r)
    }

    /// Sends `RTM_NEWLINK` with create + exclusive.
    ///
    /// # Errors
    /// [`LinkError::Kernel`] with the kernel's errno.
    pub fn add_link(&self, side: Side, msg: LinkMessage) -> Result<(), LinkError> {
        let h = self.h(side)?;
        self.rt
            .block_on(h.link().add(msg).execute())
            .map_err(from_rtnl)
    }

    /// Sends `RTM_NEWLINK` changing an existing link (rename, up, MTU...).
    ///
    /// # Errors
    /// [`LinkError::Kernel`] with the kernel's errno.
    pub fn set_link(&self, side: Side, msg: LinkMessage) -> Result<(), LinkError> {
        let h = self.h(side)?;
        self.rt
            .block_on(h.link().set(msg).execute())
            .map_err(from_rtnl)
    }

    /// Deletes link `index`.
    ///
    /// # Errors
    /// [`LinkError::Kernel`] with the kernel's errno.
    pub fn del_link(&self, side: Side, index: u32) -> Result<(), LinkError> {
        let h = self.h(side)?;
        self.rt
            .block_on(h.link().del(index).execute())
            .map_err(from_rtnl)
    }

    /// Adds an address built by [`request::new_address`].
    ///
    /// # Errors
    /// [`LinkError::Kernel`] with the kernel's errno.
    pub fn add_address(&self, side: Side, msg: AddressMessage) -> Result<(), LinkError> {
        let h = self.h(side)?;
        let (index, prefix) = (msg.header.index, msg.header.prefix_len);
        let addr = msg
            .attributes
            .iter()
            .find_map(|a| match a {
                AddressAttribute::Local(a) | AddressAttribute::Address(a) => Some(*a),
                _ => None,
            })
            .ok_or_else(|| LinkError::Protocol("address message without an address".into()))?;
        let mut req = h.address().add(index, addr, prefix);
        *req.message_mut() = msg;
        self.rt.block_on(req.execute()).map_err(from_rtnl)
    }

    /// Addresses of link `index` (every family).
    ///
    /// # Errors
    /// [`LinkError`] when the dump fails.
    pub fn addresses(&self, side: Side, index: u32) -> Result<Vec<Address>, LinkError> {
        let h = self.h(side)?;
        let msgs: Vec<AddressMessage> = self
            .rt
            .block_on(
                h.address()
                    .get()
                    .set_link_index_filter(index)
                    .execute()
                    .try_collect(),
            )
            .map_err(from_rtnl)?;
        Ok(msgs
            .iter()
            .filter(|m| m.header.index == index)
            .filter_map(|m| {
                let addr = m.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Address(a) => Some(*a),
                    _ => None,
                })?;
                Some(Address {
                    addr,
                    prefix: m.header.prefix_len,
                })
            })
            .collect())
    }

    /// Adds a route built by [`request::new_route`].
    ///
    /// # Errors
    /// [`LinkError::Kernel`] with the kernel's errno.
    pub fn add_route(&self, side: Side, msg: RouteMessage) -> Result<(), LinkError> {
        let h = self.h(side)?;
        self.rt
            .block_on(h.route().add(msg).execute())
            .map_err(from_rtnl)
    }

    /// Deletes a route (as read back by [`Session::routes`]).
    ///
    /// # Errors
    /// [`LinkError::Kernel`] with the kernel's errno.
    pub fn del_route(&self, side: Side, msg: RouteMessage) -> Result<(), LinkError> {
        let h = self.h(side)?;
        self.rt
            .block_on(h.route().del(msg).execute())
            .map_err(from_rtnl)
    }

    /// Routes of the main table of one family (`v6` false: IPv4).
    ///
    /// # Errors
    /// [`LinkError`] when the dump fails.
    pub fn routes(&self, side: Side, v6: bool) -> Result<Vec<RouteState>, LinkError> {
        route::dump(self, side, v6)
    }

    /// The name of the interface of the first IPv4 default route of the main table (the reference
    /// plugins' default `master`).
    ///
    /// # Errors
    /// [`LinkError`] when a dump fails.
    pub fn default_route_interface(&self, side: Side) -> Result<Option<String>, LinkError> {
        for r in self.routes(side, false)? {
            if r.dst.is_none()
                && let Some(oif) = r.oif
                && let Some(l) = self.link_by_index(side, oif)?
            {
                return Ok(Some(l.name));
            }
        }
        Ok(None)
    }
}

fn absent_is_none(
    r: Result<Option<LinkMessage>, rtnetlink::Error>,
) -> Result<Option<LinkState>, LinkError> {
    match r {
        Ok(m) => Ok(m.as_ref().map(LinkState::from_message)),
        Err(e) => match from_rtnl(e) {
            LinkError::Kernel { errno } if errno == ENODEV => Ok(None),
            other => Err(other),
        },
    }
}

/// "No such device": the kernel's answer for a link that is not there.
pub const ENODEV: i32 = rustix::io::Errno::NODEV.raw_os_error();

impl LinkError {
    /// True when the kernel said the link does not exist.
    pub fn is_no_device(&self) -> bool {
        self.errno() == Some(ENODEV)
    }
}
