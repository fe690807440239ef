//! CNI Success results for every spec version, and conversion between them.
//!
//! One version-independent [`CniResult`] (the 1.1.0 shape, a superset of all versions) is parsed from
//! and rendered to the wire shape of any supported version, converting the way libcni does:
//! up-conversion is lossless, down-conversion drops optional fields the older version lacks, and a
//! conversion that would lose required data (a second address of a family in 0.2.0) is refused.

use std::net::IpAddr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::version::Version;

/// Version-independent result: a superset of every version's fields (1.1.0 shape).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CniResult {
    /// Interfaces the plugin created or touched (absent before 0.3.0).
    pub interfaces: Vec<Interface>,
    /// Assigned addresses, in the order the plugin reported them.
    pub ips: Vec<IpConfig>,
    /// Routes the plugin installed.
    pub routes: Vec<Route>,
    /// DNS settings the plugin suggests.
    pub dns: Dns,
}

/// One entry of a result's `interfaces` list.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Interface {
    /// Interface name (in the sandbox if `sandbox` is set).
    #[serde(default)]
    pub name: String,
    /// Hardware address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// MTU (1.1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// Network namespace path; set only for interfaces inside the pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
    /// vhost-user or similar socket path (1.1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket_path: Option<String>,
    /// PCI address of a device-backed interface (1.1.0).
    #[serde(default, rename = "pciID", skip_serializing_if = "Option::is_none")]
    pub pci_id: Option<String>,
}

/// One assigned address.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IpConfig {
    /// Address with prefix length, e.g. `10.1.2.3/24`.
    pub address: String,
    /// Default gateway for this address, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// Index into [`CniResult::interfaces`] of the interface holding the address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
}

/// One route.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Route {
    /// Destination in CIDR form.
    pub dst: String,
    /// Next hop; `None` means the address's gateway or on-link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<String>,
    /// Route MTU (1.1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// Advertised MSS (1.1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advmss: Option<u32>,
    /// Route priority / metric (1.1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    /// Routing table (1.1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<u32>,
    /// Route scope (1.1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<u8>,
}

/// DNS settings of a result.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Dns {
    /// Name server addresses, in priority order.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub nameservers: Vec<String>,
    /// Local domain used for short-name lookups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Search domains, in priority order.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub search: Vec<String>,
    /// Resolver options.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub options: Vec<String>,
}

impl Dns {
    /// True when no DNS field is set (the `dns` key is then omitted on output).
    pub fn is_empty(&self) -> bool {
        self.nameservers.is_empty()
            && self.domain.is_none()
            && self.search.is_empty()
            && self.options.is_empty()
    }
}

/// Why a result could not be parsed or rendered.
#[derive(Debug, thiserror::Error)]
pub enum ResultError {
    /// The version is malformed or not one plexus speaks.
    #[error("unsupported CNI result version {0:?}")]
    UnsupportedVersion(String),
    /// The result is malformed; the message names the offending field.
    #[error("failed to decode CNI result: {0}")]
    Decode(String),
    /// Rendering in the requested version would lose required data.
    #[error("cannot convert CNI result without losing data: {0}")]
    Lossy(String),
    /// There is no result to convert (the plugin's result was not kept).
    #[error("no result")]
    Missing,
}

/// The wire layout a version uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// 0.1.0 and 0.2.0: `ip4` / `ip6` objects.
    Legacy,
    /// 0.3.0 through 1.1.0: `interfaces` / `ips` / `routes` lists.
    Lists {
        /// `ips[].version` is written (before 1.0.0).
        ip_version: bool,
        /// 1.1.0 interface and route fields exist.
        v1_1: bool,
    },
}

impl Shape {
    fn of(v: Version) -> Shape {
        if v < Version::V0_3_0 {
            Shape::Legacy
        } else {
            Shape::Lists {
                ip_version: v < Version::V1_0_0,
                v1_1: v >= Version::V1_1_0,
            }
        }
    }

    fn has_v1_1(self) -> bool {
        matches!(self, Shape::Lists { v1_1: true, .. })
    }
}

/// The `ip4` / `ip6` object of a 0.1.0 / 0.2.0 result.
#[derive(Debug, Serialize, Deserialize)]
struct LegacyIp {
    ip: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gateway: Option<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    routes: Vec<Route>,
}

/// A 0.1.0 / 0.2.0 result on output.
#[derive(Serialize)]
struct LegacyOut {
    #[serde(rename = "cniVersion")]
    cni_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip4: Option<LegacyIp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip6: Option<LegacyIp>,
    #[serde(skip_serializing_if = "Dns::is_empty")]
    dns: Dns,
}

/// An `ips` entry on output, with the pre-1.0.0 `version` field when wanted.
#[derive(Serialize)]
struct IpOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'static str>,
    #[serde(flatten)]
    ip: IpConfig,
}

/// A 0.3.0 .. 1.1.0 result on output.
#[derive(Serialize)]
struct ListsOut {
    #[serde(rename = "cniVersion")]
    cni_version: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    interfaces: Vec<Interface>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ips: Vec<IpOut>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    routes: Vec<Route>,
    #[serde(skip_serializing_if = "Dns::is_empty")]
    dns: Dns,
}

impl CniResult {
    /// Parse a result JSON object. The version is the object's own "cniVersion" if present, else
    /// `fallback_version`. Fields the version does not define are ignored, as are unknown keys.
    ///
    /// # Errors
    /// [`ResultError::UnsupportedVersion`] for an unknown version; [`ResultError::Decode`] when `v`
    /// is not an object, a field has the wrong type, an address or destination is not a valid CIDR,
    /// a gateway is not an IP, or an `interface` index is out of range.
    pub fn from_value(v: &Value, fallback_version: &str) -> Result<CniResult, ResultError> {
        let obj = v
            .as_object()
            .ok_or_else(|| decode("result is not a JSON object"))?;
        let version = match obj.get("cniVersion") {
            None | Some(Value::Null) => fallback_version,
            Some(Value::String(s)) => s.as_str(),
            Some(_) => return Err(decode("cniVersion is not a string")),
        };
        let shape = Shape::of(parse_version(version)?);
        let mut result = match shape {
            Shape::Legacy => {
                let mut r = CniResult::default();
                for key in ["ip4", "ip6"] {
                    if let Some(ip) = field::<Option<LegacyIp>>(obj, key)? {
                        r.ips.push(IpConfig {
                            address: ip.ip,
                            gateway: ip.gateway,
                            interface: None,
                        });
                        r.routes.extend(ip.routes);
                    }
                }
                r.dns = field(obj, "dns")?;
                r
            }
            Shape::Lists { .. } => CniResult {
                interfaces: list(obj, "interfaces")?,
                ips: list(obj, "ips")?,
                routes: list(obj, "routes")?,
                dns: field(obj, "dns")?,
            },
        };
        result.normalize(shape);
        result.validate()?;
        Ok(result)
    }

    /// Parse a result from JSON bytes; see [`CniResult::from_value`].
    ///
    /// # Errors
    /// [`ResultError::Decode`] if `bytes` is not JSON, otherwise as [`CniResult::from_value`].
    pub fn from_slice(bytes: &[u8], fallback_version: &str) -> Result<CniResult, ResultError> {
        let v: Value =
            serde_json::from_slice(bytes).map_err(|e| decode(format!("invalid JSON: {e}")))?;
        CniResult::from_value(&v, fallback_version)
    }

    /// Serialize in the wire shape of `version` (including "cniVersion": version). Empty lists,
    /// empty `dns` and unset fields are omitted; fields `version` lacks are dropped.
    ///
    /// # Errors
    /// [`ResultError::UnsupportedVersion`] for an unknown or empty version; [`ResultError::Decode`]
    /// if the result itself is invalid (see [`CniResult::from_value`]); [`ResultError::Lossy`] for
    /// 0.1.0 / 0.2.0 when there is no address, more than one address of a family, or a route whose
    /// family has no address to hang it on.
    pub fn to_value(&self, version: &str) -> Result<Value, ResultError> {
        if version.is_empty() {
            return Err(ResultError::UnsupportedVersion(String::new()));
        }
        let parsed = parse_version(version)?;
        let shape = Shape::of(parsed);
        let mut r = self.clone();
        r.normalize(shape);
        r.validate()?;
        let out = match shape {
            Shape::Legacy => serde_json::to_value(r.into_legacy(parsed)?),
            Shape::Lists { ip_version, .. } => serde_json::to_value(ListsOut {
                cni_version: parsed.to_string(),
                interfaces: r.interfaces,
                ips: r
                    .ips
                    .into_iter()
                    .map(|ip| IpOut {
                        version: ip_version.then(|| if is_v4(&ip.address) { "4" } else { "6" }),
                        ip,
                    })
                    .collect(),
                routes: r.routes,
                dns: r.dns,
            }),
        };
        out.map_err(|e| decode(format!("cannot encode result: {e}")))
    }

    /// Addresses (without prefix length) of the IPs that belong to the interface with this name (by
    /// `interface` index), used for network-status. A result without any interfaces (0.1.0 / 0.2.0,
    /// or a plugin that reports none) has nothing to match by, so all of its addresses are returned.
    pub fn ips_of(&self, ifname: &str) -> Vec<String> {
        let belongs = |ip: &IpConfig| {
            self.interfaces.is_empty()
                || ip
                    .interface
                    .and_then(|i| self.interfaces.get(i))
                    .is_some_and(|iface| iface.name == ifname)
        };
        self.ips
            .iter()
            .filter(|ip| belongs(ip))
            .map(|ip| ip.address.split('/').next().unwrap_or_default().to_string())
            .collect()
    }

    /// Canonicalizes what libcni treats as absent (empty strings, zero MTU / advmss / priority) and
    /// drops the 1.1.0-only fields when `shape` lacks them.
    fn normalize(&mut self, shape: Shape) {
        let v1_1 = shape.has_v1_1();
        for i in &mut self.interfaces {
            for s in [
                &mut i.mac,
                &mut i.sandbox,
                &mut i.socket_path,
                &mut i.pci_id,
            ] {
                drop_empty(s);
            }
            drop_zero(&mut i.mtu);
            if !v1_1 {
                (i.mtu, i.socket_path, i.pci_id) = (None, None, None);
            }
        }
        for ip in &mut self.ips {
            drop_empty(&mut ip.gateway);
        }
        for r in &mut self.routes {
            drop_empty(&mut r.gw);
            for n in [&mut r.mtu, &mut r.advmss, &mut r.priority] {
                drop_zero(n);
            }
            if !v1_1 {
                (r.mtu, r.advmss, r.priority, r.table, r.scope) = (None, None, None, None, None);
            }
        }
        drop_empty(&mut self.dns.domain);
    }

    /// Checks every address, gateway, destination and interface index.
    fn validate(&self) -> Result<(), ResultError> {
        for (n, ip) in self.ips.iter().enumerate() {
            check_cidr(&ip.address, || format!("ips[{n}].address"))?;
            check_ip(ip.gateway.as_deref(), || format!("ips[{n}].gateway"))?;
            match ip.interface {
                Some(i) if !self.interfaces.is_empty() && i >= self.interfaces.len() => {
                    return Err(decode(format!(
                        "ips[{n}].interface: index {i} out of range ({} interfaces)",
                        self.interfaces.len()
                    )));
                }
                _ => {}
            }
        }
        for (n, r) in self.routes.iter().enumerate() {
            check_cidr(&r.dst, || format!("routes[{n}].dst"))?;
            check_ip(r.gw.as_deref(), || format!("routes[{n}].gw"))?;
        }
        Ok(())
    }

    /// Builds the 0.1.0 / 0.2.0 shape: first (only) IPv4 and IPv6 address, routes by family.
    fn into_legacy(self, version: Version) -> Result<LegacyOut, ResultError> {
        let (v4, v6): (Vec<IpConfig>, Vec<IpConfig>) =
            self.ips.into_iter().partition(|ip| is_v4(&ip.address));
        let mut slots = [("IPv4", v4, None::<LegacyIp>), ("IPv6", v6, None)];
        for (family, ips, slot) in &mut slots {
            if ips.len() > 1 {
                return Err(ResultError::Lossy(format!(
                    "{} {family} addresses ({}), but {version} holds only one",
                    ips.len(),
                    ips.iter()
                        .map(|ip| ip.address.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            *slot = ips.pop().map(|ip| LegacyIp {
                ip: ip.address,
                gateway: ip.gateway,
                routes: Vec::new(),
            });
        }
        if slots.iter().all(|(_, _, slot)| slot.is_none()) {
            return Err(ResultError::Lossy(format!(
                "no IP addresses, which {version} requires"
            )));
        }
        for route in self.routes {
            let (family, _, slot) = &mut slots[if is_v4(&route.dst) { 0 } else { 1 }];
            let slot = slot.as_mut().ok_or_else(|| {
                ResultError::Lossy(format!(
                    "route to {} has no {family} address to attach to in {version}",
                    route.dst
                ))
            })?;
            slot.routes.push(Route {
                dst: route.dst,
                gw: route.gw,
                ..Route::default()
            });
        }
        let [(_, _, ip4), (_, _, ip6)] = slots;
        Ok(LegacyOut {
            cni_version: version.to_string(),
            ip4,
            ip6,
            dns: self.dns,
        })
    }
}

/// Convenience: re-encode a result JSON given in one version into another version.
///
/// # Errors
/// As [`CniResult::from_value`] for the input and [`CniResult::to_value`] for the output.
pub fn convert(v: &Value, fallback_version: &str, to_version: &str) -> Result<Value, ResultError> {
    CniResult::from_value(v, fallback_version)?.to_value(to_version)
}

fn decode(msg: impl Into<String>) -> ResultError {
    ResultError::Decode(msg.into())
}

fn parse_version(s: &str) -> Result<Version, ResultError> {
    Version::parse_supported(s).ok_or_else(|| ResultError::UnsupportedVersion(s.to_string()))
}

/// Decodes `obj[key]` (absent or null gives the default), naming the key on failure.
fn field<T: DeserializeOwned + Default>(
    obj: &Map<String, Value>,
    key: &str,
) -> Result<T, ResultError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(T::default()),
        Some(v) => T::deserialize(v).map_err(|e| decode(format!("{key}: {e}"))),
    }
}

/// Decodes the list `obj[key]` element by element, naming the element on failure.
fn list<T: DeserializeOwned>(obj: &Map<String, Value>, key: &str) -> Result<Vec<T>, ResultError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| T::deserialize(v).map_err(|e| decode(format!("{key}[{i}]: {e}"))))
            .collect(),
        Some(_) => Err(decode(format!("{key}: not a list"))),
    }
}

/// serde helper: a `null` list decodes as empty, as Go's nil slice does.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn drop_empty(s: &mut Option<String>) {
    if s.as_deref() == Some("") {
        *s = None;
    }
}

fn drop_zero(n: &mut Option<u32>) {
    if *n == Some(0) {
        *n = None;
    }
}

/// Parses `addr/prefix` with the prefix in range for the family.
fn parse_cidr(s: &str) -> Option<IpAddr> {
    super::ip::parse_cidr(s).map(|(ip, _)| ip)
}

/// True for an IPv4 (or IPv4-mapped IPv6, as Go's `To4` sees it) CIDR.
fn is_v4(cidr: &str) -> bool {
    parse_cidr(cidr).is_some_and(|ip| !super::ip::is_v6(ip))
}

fn check_cidr(s: &str, what: impl FnOnce() -> String) -> Result<(), ResultError> {
    match parse_cidr(s) {
        Some(_) => Ok(()),
        None => Err(decode(format!("{}: invalid CIDR {s:?}", what()))),
    }
}

fn check_ip(s: Option<&str>, what: impl FnOnce() -> String) -> Result<(), ResultError> {
    match s.map(str::parse::<IpAddr>) {
        None | Some(Ok(_)) => Ok(()),
        Some(Err(_)) => Err(decode(format!(
            "{}: invalid IP address {:?}",
            what(),
            s.unwrap_or("")
        ))),
    }
}

#[cfg(test)]
mod tests;
