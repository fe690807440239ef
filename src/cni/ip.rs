//! Addresses as the CNI wire format writes them: the one CIDR parser and the one IP-family rule.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Parses `addr/prefix`: a prefix of 1 to 3 plain digits, in range for the family (no sign, no
/// spaces: Go's `net.ParseCIDR` refuses those too).
pub fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, prefix) = s.split_once('/')?;
    let ip: IpAddr = addr.parse().ok()?;
    let p = parse_prefix(prefix, ip)?;
    Some((ip, p))
}

/// A prefix length of 1 to 3 plain digits, at most 32 (IPv4) or 128 (IPv6).
pub fn parse_prefix(prefix: &str, ip: IpAddr) -> Option<u8> {
    if prefix.is_empty() || prefix.len() > 3 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let max = if ip.is_ipv4() { 32 } else { 128 };
    prefix.parse::<u8>().ok().filter(|p| *p <= max)
}

/// True for an IPv6 address that is not an IPv4-mapped one (Go's `To4` sees those as IPv4).
pub fn is_v6(ip: IpAddr) -> bool {
    ip.to_canonical().is_ipv6()
}

/// True for the IPv6 family of an address or CIDR text; anything unparsable counts as IPv4.
pub fn text_is_v6(s: &str) -> bool {
    let addr = s.split_once('/').map_or(s, |(a, _)| a);
    addr.parse::<IpAddr>().is_ok_and(is_v6)
}

/// The network address of `ip/prefix` (host bits cleared).
pub fn network(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v) & mask))
        }
        IpAddr::V6(v) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v) & mask))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_table() {
        let rows: &[(&str, Option<(&str, u8)>, &str)] = &[
            ("10.1.2.3/24", Some(("10.1.2.3", 24)), "10.1.2.0"),
            ("0.0.0.0/0", Some(("0.0.0.0", 0)), "0.0.0.0"),
            ("fd00::5/64", Some(("fd00::5", 64)), "fd00::"),
            ("10.1.2.3/33", None, ""),
            ("10.1.2.3/+24", None, ""),
            ("10.1.2.3/ 24", None, ""),
            ("10.1.2.3/0024", None, ""),
            ("10.1.2.3/", None, ""),
            ("10.1.2.3", None, ""),
        ];
        for (s, want, net) in rows {
            let got = parse_cidr(s);
            assert_eq!(got, want.map(|(a, p)| (a.parse().unwrap(), p)), "{s}");
            if let Some((a, p)) = got {
                assert_eq!(network(a, p).to_string(), *net, "{s}");
            }
        }
    }

    #[test]
    fn family_table() {
        let rows = [
            ("v4", "10.0.0.1", false),
            ("v4 cidr", "10.0.0.1/24", false),
            ("v6", "fd00::1", true),
            ("v6 cidr", "fd00::1/64", true),
            ("v4-mapped", "::ffff:10.0.0.1", false),
            ("garbage", "x", false),
        ];
        for (name, s, v6) in rows {
            assert_eq!(text_is_v6(s), v6, "{name}");
        }
    }
}
