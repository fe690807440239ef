//! host-local's ranges: a subnet with its first and last allocatable address and its gateway, a
//! range set (one address per set is handed out), and the round-robin walk the reference uses
//! (from the address after the last one reserved, skipping the gateway, once round the set).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An address as a number, with its family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Addr {
    /// IPv6 (else IPv4).
    pub v6: bool,
    /// The address's bits.
    pub n: u128,
}

impl Addr {
    /// `ip` as a number; an IPv4-mapped IPv6 address counts as IPv4 (as Go's `To4` does).
    pub fn of(ip: IpAddr) -> Addr {
        match ip.to_canonical() {
            IpAddr::V4(v) => Addr {
                v6: false,
                n: u128::from(u32::from(v)),
            },
            IpAddr::V6(v) => Addr {
                v6: true,
                n: u128::from(v),
            },
        }
    }

    /// Back to an address.
    pub fn ip(self) -> IpAddr {
        if self.v6 {
            IpAddr::V6(Ipv6Addr::from(self.n))
        } else {
            // In range by construction: an IPv4 Addr never holds more than 32 bits.
            IpAddr::V4(Ipv4Addr::from(u32::try_from(self.n).unwrap_or(u32::MAX)))
        }
    }

    fn bits(self) -> u32 {
        if self.v6 { 128 } else { 32 }
    }

    /// The next address, wrapping within the family.
    fn next(self) -> Addr {
        let max = if self.v6 {
            u128::MAX
        } else {
            u128::from(u32::MAX)
        };
        Addr {
            v6: self.v6,
            n: if self.n == max { 0 } else { self.n + 1 },
        }
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.ip().fmt(f)
    }
}

/// One range, canonical: every field set, all of one family, start ≤ end inside the subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// The subnet's network address.
    pub network: Addr,
    /// The subnet's prefix length.
    pub prefix: u8,
    /// The first address handed out (inclusive).
    pub start: Addr,
    /// The last address handed out (inclusive).
    pub end: Addr,
    /// The gateway (never handed out).
    pub gateway: Addr,
}

/// Why a range as written is one host-local itself would refuse or treat specially (the caller
/// then leaves the config to the reference binary, which says so in its own words).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The subnet has host bits set.
    HostBits,
    /// A /31, /32, /127 or /128: nothing to allocate from.
    TooSmall,
    /// An address of the other family than the subnet.
    Family,
    /// The gateway, start or end is outside the subnet, or end is before start.
    Outside,
}

impl Range {
    /// Canonicalises `subnet` with optional `start`, `end` and `gateway` the way host-local
    /// does: gateway defaults to the first address after the network, start likewise, end to
    /// the last address (before the broadcast address for IPv4).
    ///
    /// # Errors
    /// [`Refused`] for a range host-local would reject.
    pub fn new(
        subnet: (IpAddr, u8),
        start: Option<IpAddr>,
        end: Option<IpAddr>,
        gateway: Option<IpAddr>,
    ) -> Result<Range, Refused> {
        let (ip, prefix) = subnet;
        let addr = Addr::of(ip);
        let host_bits = addr.bits() - u32::from(prefix);
        let mask = u128::MAX.checked_shl(host_bits).unwrap_or(0);
        if addr.n & !mask != 0 {
            return Err(Refused::HostBits);
        }
        if host_bits < 2 {
            return Err(Refused::TooSmall);
        }
        let last = addr.n | (!mask & (u128::MAX >> (128 - addr.bits())));
        let network = addr;
        let first = network.next();
        let inside = |ip: IpAddr| -> Result<Addr, Refused> {
            let a = Addr::of(ip);
            if a.v6 != network.v6 {
                return Err(Refused::Family);
            }
            if a.n & mask != network.n {
                return Err(Refused::Outside);
            }
            Ok(a)
        };
        let gateway = gateway.map(inside).transpose()?.unwrap_or(first);
        let start = start.map(inside).transpose()?.unwrap_or(first);
        let end = match end {
            Some(e) => inside(e)?,
            None => Addr {
                v6: network.v6,
                n: if network.v6 { last } else { last - 1 },
            },
        };
        if end.n < start.n {
            return Err(Refused::Outside);
        }
        Ok(Range {
            network,
            prefix,
            start,
            end,
            gateway,
        })
    }

    /// True when `a` is one of the addresses this range hands out or skips (start to end).
    pub fn contains(&self, a: Addr) -> bool {
        a.v6 == self.start.v6 && self.start.n <= a.n && a.n <= self.end.n
    }

    fn overlaps(&self, o: &Range) -> bool {
        self.start.v6 == o.start.v6 && self.start.n <= o.end.n && o.start.n <= self.end.n
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

/// The ranges one address is taken from, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeSet(pub Vec<Range>);

impl RangeSet {
    /// The range holding `a`.
    pub fn range_for(&self, a: Addr) -> Option<&Range> {
        self.0.iter().find(|r| r.contains(a))
    }

    /// IPv6 (by the first range).
    pub fn v6(&self) -> bool {
        self.0.first().is_some_and(|r| r.start.v6)
    }

    /// True when any range of one set overlaps any of the other.
    pub fn overlaps(&self, o: &RangeSet) -> bool {
        self.0.iter().any(|r| o.0.iter().any(|x| r.overlaps(x)))
    }

    /// True when the set is non-empty, of one family, and no two of its ranges overlap.
    pub fn is_consistent(&self) -> bool {
        let Some(first) = self.0.first() else {
            return false;
        };
        self.0.iter().all(|r| r.start.v6 == first.start.v6)
            && self
                .0
                .iter()
                .enumerate()
                .all(|(i, r)| self.0[i + 1..].iter().all(|x| !r.overlaps(x)))
    }

    /// The walk for one allocation: from the address after `last` when the set holds it, else
    /// from the first range's start.
    pub fn walk(&self, last: Option<Addr>) -> Walk<'_> {
        let at = last.and_then(|l| Some((self.0.iter().position(|r| r.contains(l))?, l)));
        match at {
            Some((idx, cur)) => Walk {
                set: self,
                idx,
                cur: Some(cur),
                first: None,
            },
            None => Walk {
                set: self,
                idx: 0,
                cur: None,
                first: self.0.first().map(|r| r.start),
            },
        }
    }
}

impl fmt::Display for RangeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            r.fmt(f)?;
        }
        Ok(())
    }
}

/// The candidates of one allocation, in host-local's order: each address once, the gateway
/// never, wrapping from the last range to the first, ending where it began.
#[derive(Debug)]
pub struct Walk<'a> {
    set: &'a RangeSet,
    idx: usize,
    cur: Option<Addr>,
    /// Where the walk began (set by the first step when it starts mid-set).
    first: Option<Addr>,
}

impl Iterator for Walk<'_> {
    /// A candidate address and the range it is in.
    type Item = (Addr, Range);

    fn next(&mut self) -> Option<(Addr, Range)> {
        loop {
            let mut r = *self.set.0.get(self.idx)?;
            let cur = match self.cur {
                None => {
                    self.first = Some(r.start);
                    r.start
                }
                Some(c) => {
                    let n = if c == r.end {
                        self.idx = (self.idx + 1) % self.set.0.len();
                        r = self.set.0[self.idx];
                        r.start
                    } else {
                        c.next()
                    };
                    match self.first {
                        None => self.first = Some(n),
                        Some(f) if f == n => {
                            self.cur = Some(n);
                            return None;
                        }
                        Some(_) => {}
                    }
                    n
                }
            };
            self.cur = Some(cur);
            if cur != r.gateway {
                return Some((cur, r));
            }
        }
    }
}
