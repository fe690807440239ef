//! host-local's config as the built-in takes it: the common case (ranges or the legacy single
//! subnet, routes, dataDir) parsed and checked the way the reference checks it. Anything else
//! (requested addresses, `ipRanges`, `resolvConf`, a range the reference would refuse, a field
//! spelt in another case) is [`Parsed::NotUnderstood`]: the reference binary runs instead and
//! answers in its own words.

use std::net::IpAddr;
use std::path::PathBuf;

use serde_json::{Map, Value};

use super::range::{Range, RangeSet};
use crate::cni::ip::parse_cidr;
use crate::cni::result::Route;

/// host-local's data directory when the config names none.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/cni/networks";

/// A host-local config the built-in runs.
#[derive(Debug, Clone, PartialEq)]
pub struct HostLocal {
    /// The cniVersion allows CHECK (0.4.0 and later).
    pub check: bool,
    /// The network's name (its directory under `data_dir`).
    pub network: String,
    /// `ipam.dataDir`, or the default.
    pub data_dir: PathBuf,
    /// The range sets, legacy single range first: one address from each.
    pub sets: Vec<RangeSet>,
    /// `ipam.routes`, as the result carries them.
    pub routes: Vec<Route>,
}

/// What [`parse`] made of a config.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// Run in process.
    Understood(HostLocal),
    /// Left to the reference binary; the text says why (for the log).
    NotUnderstood(String),
}

type Step<T> = Result<T, String>;

/// Versions whose results may hold more than one address per family.
const MULTI_ADDRESS: [&str; 4] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0"];
/// Versions the built-in answers in: those the reference binary (containernetworking-plugins
/// 1.1.1) supports; it refuses any other before reading its store.
const VERSIONS: [&str; 6] = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0"];
/// Versions whose CHECK the reference refuses (CHECK came with 0.4.0).
const NO_CHECK: [&str; 4] = ["0.1.0", "0.2.0", "0.3.0", "0.3.1"];

/// True for a container id or network name the reference accepts: a letter or digit, then
/// letters, digits, `_`, `.` and `-`.
fn plain_name(s: &str) -> bool {
    s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// Why the reference refuses a call's container id or interface name before reading its store
/// (the built-in then leaves the call to it), if it does.
pub fn refused_call(container_id: &str, ifname: &str) -> Option<&'static str> {
    if !plain_name(container_id) {
        Some("container id with characters the reference refuses")
    } else if ifname.is_empty()
        || ifname.len() > 15
        || ifname == "."
        || ifname == ".."
        || ifname.contains(|c: char| c == '/' || c == ':' || c.is_whitespace())
    {
        Some("interface name the reference refuses")
    } else {
        None
    }
}

/// Refuses a key of `obj` that differs from one of `known` only by case (Go's JSON decoder
/// would take it for that field).
fn exact_keys(obj: &Map<String, Value>, known: &[&str], what: &str) -> Step<()> {
    for k in obj.keys() {
        if !known.contains(&k.as_str()) && known.iter().any(|n| n.eq_ignore_ascii_case(k)) {
            return Err(format!("{what} field {k:?} in another case"));
        }
    }
    Ok(())
}

fn opt_str<'a>(obj: &'a Map<String, Value>, key: &str, what: &str) -> Step<Option<&'a str>> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("{what}.{key} is not a string")),
    }
}

fn ip(obj: &Map<String, Value>, key: &str, what: &str) -> Step<Option<IpAddr>> {
    opt_str(obj, key, what)?
        .map(|s| {
            let a: IpAddr = s
                .parse()
                .map_err(|_| format!("{what}.{key} {s:?} is not an address"))?;
            if a.to_canonical() != a {
                return Err(format!("{what}.{key} is IPv4-mapped"));
            }
            Ok(a)
        })
        .transpose()
}

fn cidr(s: &str, what: &str) -> Step<(IpAddr, u8)> {
    let (a, p) = parse_cidr(s).ok_or_else(|| format!("{what} {s:?} is not a CIDR"))?;
    if a.to_canonical() != a {
        return Err(format!("{what} is IPv4-mapped"));
    }
    Ok((a, p))
}

const RANGE_KEYS: [&str; 4] = ["subnet", "rangeStart", "rangeEnd", "gateway"];

/// One range object (or the legacy fields of `ipam`), canonical.
fn range(obj: &Map<String, Value>, what: &str) -> Step<Range> {
    let subnet = opt_str(obj, "subnet", what)?.ok_or_else(|| format!("{what} has no subnet"))?;
    Range::new(
        cidr(subnet, &format!("{what}.subnet"))?,
        ip(obj, "rangeStart", what)?,
        ip(obj, "rangeEnd", what)?,
        ip(obj, "gateway", what)?,
    )
    .map_err(|r| format!("{what}: {r:?}"))
}

fn range_sets(ipam: &Map<String, Value>) -> Step<Vec<RangeSet>> {
    let mut sets = Vec::new();
    if RANGE_KEYS.iter().any(|k| ipam.contains_key(*k)) {
        sets.push(RangeSet(vec![range(ipam, "ipam")?]));
    }
    match ipam.get("ranges") {
        None => {}
        Some(Value::Array(list)) => {
            for (i, set) in list.iter().enumerate() {
                let Value::Array(set) = set else {
                    return Err(format!("ranges[{i}] is not a list"));
                };
                let mut rs = Vec::new();
                for (j, r) in set.iter().enumerate() {
                    let what = format!("ranges[{i}][{j}]");
                    let Value::Object(r) = r else {
                        return Err(format!("{what} is not an object"));
                    };
                    exact_keys(r, &RANGE_KEYS, &what)?;
                    rs.push(range(r, &what)?);
                }
                sets.push(RangeSet(rs));
            }
        }
        Some(_) => return Err("ranges is not a list".into()),
    }
    if sets.is_empty() {
        return Err("no ranges".into());
    }
    for (i, s) in sets.iter().enumerate() {
        if !s.is_consistent() {
            return Err(format!("range set {i} is empty, mixed or overlapping"));
        }
        if sets[i + 1..].iter().any(|o| s.overlaps(o)) {
            return Err(format!("range set {i} overlaps another"));
        }
    }
    Ok(sets)
}

fn routes(ipam: &Map<String, Value>) -> Step<Vec<Route>> {
    let list = match ipam.get("routes") {
        None => return Ok(Vec::new()),
        Some(Value::Array(l)) => l,
        Some(_) => return Err("routes is not a list".into()),
    };
    list.iter()
        .map(|r| {
            let Value::Object(r) = r else {
                return Err("a route is not an object".to_string());
            };
            if let Some(k) = r.keys().find(|k| *k != "dst" && *k != "gw") {
                return Err(format!("route field {k:?}"));
            }
            let dst = opt_str(r, "dst", "route")?.ok_or("a route has no dst")?;
            let (a, p) = cidr(dst, "route dst")?;
            Ok(Route {
                dst: format!("{a}/{p}"),
                gw: ip(r, "gw", "route")?.map(|g| g.to_string()),
                ..Route::default()
            })
        })
        .collect()
}

/// `CNI_ARGS` host-local accepts without acting on it: nothing, or only `IgnoreUnknown`, or
/// anything but `IP` once `IgnoreUnknown` is true.
fn args_ignorable(args: &str) -> Step<()> {
    let mut ignore = false;
    let mut others = false;
    for kv in args.split(';').filter(|s| !s.is_empty()) {
        let (k, v) = kv.split_once('=').ok_or("CNI_ARGS pair without =")?;
        match k {
            "IgnoreUnknown" => match v.to_ascii_lowercase().as_str() {
                "1" | "true" | "t" => ignore = true,
                "0" | "false" | "f" => {}
                _ => return Err("CNI_ARGS IgnoreUnknown is not a boolean".into()),
            },
            "IP" => return Err("CNI_ARGS IP".into()),
            _ => others = true,
        }
    }
    if others && !ignore {
        return Err("CNI_ARGS has keys host-local does not know".into());
    }
    Ok(())
}

/// True when `key` of `obj` (an object or absent) names something host-local acts on.
fn asks(obj: Option<&Value>, keys: &[&str]) -> Step<bool> {
    match obj {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Object(m)) => Ok(m
            .keys()
            .any(|k| keys.iter().any(|n| n.eq_ignore_ascii_case(k)))),
        Some(_) => Err("runtimeConfig or args is not an object".into()),
    }
}

fn understood(stdin: &[u8], args: &str) -> Step<HostLocal> {
    let v: Value = serde_json::from_slice(stdin).map_err(|e| e.to_string())?;
    let top = v.as_object().ok_or("not an object")?;
    exact_keys(
        top,
        &["name", "cniVersion", "ipam", "runtimeConfig", "args"],
        "top-level",
    )?;
    let version = opt_str(top, "cniVersion", "config")?.unwrap_or_default();
    if !VERSIONS.contains(&version) {
        return Err(format!("cniVersion {version:?}"));
    }
    let network = opt_str(top, "name", "config")?.unwrap_or_default();
    if !plain_name(network) {
        return Err(format!(
            "network name {network:?} has characters the reference refuses"
        ));
    }
    let ipam = top
        .get("ipam")
        .and_then(Value::as_object)
        .ok_or("ipam is not an object")?;
    exact_keys(
        ipam,
        &[
            "type",
            "subnet",
            "rangeStart",
            "rangeEnd",
            "gateway",
            "ranges",
            "routes",
            "dataDir",
            "resolvConf",
        ],
        "ipam",
    )?;
    if opt_str(ipam, "resolvConf", "ipam")?.is_some_and(|s| !s.is_empty()) {
        return Err("resolvConf".into());
    }
    if asks(top.get("runtimeConfig"), &["ips", "ipRanges"])? {
        return Err("runtimeConfig asks for addresses or ranges".into());
    }
    let cni = match top.get("args") {
        Some(Value::Object(a)) => a.iter().find(|(k, _)| k.eq_ignore_ascii_case("cni")),
        None | Some(Value::Null) => None,
        Some(_) => return Err("args is not an object".into()),
    };
    if asks(cni.map(|(_, v)| v), &["ips"])? {
        return Err("args.cni.ips".into());
    }
    args_ignorable(args)?;
    let sets = range_sets(ipam)?;
    let per_family = |v6: bool| sets.iter().filter(|s| s.v6() == v6).count();
    if (per_family(false) > 1 || per_family(true) > 1) && !MULTI_ADDRESS.contains(&version) {
        return Err(format!(
            "cniVersion {version} with several addresses per family"
        ));
    }
    let data_dir = match opt_str(ipam, "dataDir", "ipam")? {
        None | Some("") => PathBuf::from(DEFAULT_DATA_DIR),
        Some(d) if d.contains('\0') => return Err("dataDir with NUL".into()),
        Some(d) => PathBuf::from(d),
    };
    Ok(HostLocal {
        check: !NO_CHECK.contains(&version),
        network: network.to_string(),
        data_dir,
        sets,
        routes: routes(ipam)?,
    })
}

/// Parses a host-local call's config (`stdin`, the calling plugin's whole config) and
/// `CNI_ARGS`.
pub fn parse(stdin: &[u8], args: &str) -> Parsed {
    match understood(stdin, args) {
        Ok(h) => Parsed::Understood(h),
        Err(why) => Parsed::NotUnderstood(why),
    }
}
