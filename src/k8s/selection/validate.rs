//! The rules every selection element obeys, whichever form it came in: names, interface,
//! addresses, MAC, default routes, InfiniBand GUID, claim references.

use std::net::IpAddr;

use super::{Ctx, Selection, SelectionError, quote_raw};
use crate::cni::env::validate_ifname;
use crate::k8s::names::{check_label, check_subdomain};

/// The rules each element obeys, whichever form it came in.
pub(super) fn validate(ctx: &Ctx, sel: &Selection) -> Result<(), SelectionError> {
    if let Err(reason) = check_subdomain(&sel.name) {
        return Err(ctx.field("name", format!("{:?} {reason}", quote_raw(&sel.name))));
    }
    if let Err(reason) = check_label(&sel.namespace) {
        return Err(ctx.field(
            "namespace",
            format!("{:?} {reason}", quote_raw(&sel.namespace)),
        ));
    }
    if let Some(ifname) = &sel.interface {
        validate_ifname(ifname).map_err(|e| ctx.field("interface", e.to_string()))?;
    }
    for (i, ip) in sel.ips.iter().enumerate() {
        if let Some(problem) = ip_or_cidr_problem(ip) {
            return Err(ctx.field(
                format!("ips[{i}]"),
                format!("{:?} {problem}", quote_raw(ip)),
            ));
        }
    }
    if let Some(mac) = sel.mac.as_deref().filter(|m| mac_octets(m).is_none()) {
        return Err(ctx.field(
            "mac",
            format!(
                "{:?} is not a MAC address (6, 8 or 20 hex octets separated by ':' or '-', or groups of 4 hex digits separated by '.')",
                quote_raw(mac)
            ),
        ));
    }
    for (i, gw) in sel.default_route.iter().enumerate() {
        if gw.parse::<IpAddr>().is_err() {
            return Err(ctx.field(
                format!("default-route[{i}]"),
                format!("{:?} is not an IP address", quote_raw(gw)),
            ));
        }
    }
    let bad_guid = |g: &&str| mac_octets(g) != Some(8);
    if let Some(guid) = sel.infiniband_guid.as_deref().filter(bad_guid) {
        return Err(ctx.field(
            "infiniband-guid",
            format!(
                "{:?} is not an InfiniBand GUID (8 hex octets separated by ':' or '-')",
                quote_raw(guid)
            ),
        ));
    }
    if !sel.ips.is_empty() && sel.ipam_claim_reference.is_some() {
        return Err(ctx.field(
            "ipam-claim-reference",
            "cannot be combined with \"ips\" (the claim owns the addresses)",
        ));
    }
    Ok(())
}

/// What is wrong with something that should be a bare IPv4/IPv6 address or one with a prefix
/// length in range; `None` when nothing is.
fn ip_or_cidr_problem(s: &str) -> Option<&'static str> {
    let (addr, prefix) = match s.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (s, None),
    };
    let Ok(ip) = addr.parse::<IpAddr>() else {
        return Some("is not an IP address or CIDR");
    };
    match prefix {
        Some(p) if crate::cni::ip::parse_prefix(p, ip).is_none() => Some(if ip.is_ipv4() {
            "has an invalid prefix length (0 to 32)"
        } else {
            "has an invalid prefix length (0 to 128)"
        }),
        _ => None,
    }
}

/// Number of octets of a hardware address in one of Go's `net.ParseMAC` forms
/// (`aa:bb:..`, `aa-bb-..`, `aabb.ccdd...`) of 6, 8 or 20 octets; `None` if malformed.
fn mac_octets(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    if b.len() < 14 {
        return None;
    }
    let hex = |chunk: &[u8]| chunk.iter().all(u8::is_ascii_hexdigit);
    let octets = if b[2] == b':' || b[2] == b'-' {
        if !(b.len() + 1).is_multiple_of(3) {
            return None;
        }
        let n = (b.len() + 1) / 3;
        let ok = (0..n).all(|i| hex(&b[i * 3..i * 3 + 2]) && (i + 1 == n || b[i * 3 + 2] == b[2]));
        ok.then_some(n)?
    } else if b[4] == b'.' {
        if !(b.len() + 1).is_multiple_of(5) {
            return None;
        }
        let groups = (b.len() + 1) / 5;
        let ok = (0..groups)
            .all(|i| hex(&b[i * 5..i * 5 + 4]) && (i + 1 == groups || b[i * 5 + 4] == b'.'));
        ok.then_some(groups * 2)?
    } else {
        return None;
    };
    matches!(octets, 6 | 8 | 20).then_some(octets)
}
