//! IP prefixes and interface addresses as the L3 resources take them: std::net addresses
//! with a prefix length, parsed strictly (`ADDRESS/LENGTH`, nothing else), ordered so that
//! the prefixes of one family form one range of a map.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::{ApiError, ApiResult};

/// An address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(a: &IpAddr) -> Family {
        match a {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// Bits in an address.
    pub fn bits(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }

    /// The lowest and highest address of the family.
    pub fn span(self) -> (IpAddr, IpAddr) {
        match self {
            Family::V4 => (Ipv4Addr::UNSPECIFIED.into(), Ipv4Addr::BROADCAST.into()),
            Family::V6 => (
                Ipv6Addr::UNSPECIFIED.into(),
                Ipv6Addr::from(u128::MAX).into(),
            ),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }
}

/// A route's destination: a network address (host bits zero) and a length. Ordered by
/// address, then length: a family's prefixes are one range, and the prefixes inside a
/// network follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Prefix {
    addr: IpAddr,
    len: u8,
}

/// An interface address: an address and the length of its subnet (host bits kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr {
    addr: IpAddr,
    len: u8,
}

/// The lowest and highest IP address in the `IpAddr` order (IPv4 before IPv6).
pub const IP_MIN: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
pub const IP_MAX: IpAddr = IpAddr::V6(Ipv6Addr::new(
    0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff,
));

/// `addr` with the bits past `len` cleared.
pub fn mask(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let m = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & m))
        }
        IpAddr::V6(a) => {
            let m = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & m))
        }
    }
}

/// `addr` with the bits past `len` set (the last address of its network).
fn last(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let m = u32::MAX.checked_shr(u32::from(len)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) | m))
        }
        IpAddr::V6(a) => {
            let m = u128::MAX.checked_shr(u32::from(len)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) | m))
        }
    }
}

/// Splits `ADDRESS/LENGTH` strictly: a std::net address, a decimal length without sign or
/// leading zero, within the family's bits.
fn split(field: &str, s: &str) -> ApiResult<(IpAddr, u8)> {
    let bad = || {
        ApiError::invalid(format!(
            "{field} {s:?} is not ADDRESS/LENGTH (e.g. 10.0.0.0/24 or 2001:db8::/64)"
        ))
    };
    let (a, l) = s.split_once('/').ok_or_else(bad)?;
    let addr: IpAddr = a.parse().map_err(|_| bad())?;
    let digits_ok = !l.is_empty()
        && l.len() <= 3
        && l.bytes().all(|b| b.is_ascii_digit())
        && (l == "0" || !l.starts_with('0'));
    let len: u8 = if digits_ok { l.parse().ok() } else { None }.ok_or_else(bad)?;
    let max = Family::of(&addr).bits();
    if len > max {
        return Err(ApiError::invalid(format!(
            "{field} {s}: the length of an {} prefix is 0 to {max}",
            Family::of(&addr).name()
        )));
    }
    Ok((addr, len))
}

/// Parses a plain IP address (no length).
pub fn parse_ip(field: &str, s: &str) -> ApiResult<IpAddr> {
    s.parse().map_err(|_| {
        ApiError::invalid(format!(
            "{field} {s:?} is not an IP address (e.g. 10.0.0.1 or 2001:db8::1)"
        ))
    })
}

/// Whether `a` is IPv6 link-local (fe80::/10): scoped to one link, so meaningful only with
/// the interface.
pub fn is_link_local_v6(a: &IpAddr) -> bool {
    matches!(a, IpAddr::V6(v) if v.segments()[0] & 0xffc0 == 0xfe80)
}

/// Refuses addresses that no host or gateway can have: unspecified, multicast, the IPv4
/// broadcast, loopback.
pub fn check_unicast(field: &str, a: &IpAddr) -> ApiResult<()> {
    let what = if a.is_unspecified() {
        "the unspecified address"
    } else if a.is_multicast() {
        "a multicast address"
    } else if a.is_loopback() {
        "a loopback address"
    } else if *a == IpAddr::V4(Ipv4Addr::BROADCAST) {
        "the broadcast address"
    } else {
        return Ok(());
    };
    Err(ApiError::invalid(format!(
        "{field} {a} is {what}; a unicast address is needed"
    )))
}

impl Prefix {
    /// The lowest and highest prefix in the [`Prefix`] order: bounds of ranges.
    pub const MIN: Prefix = Prefix {
        addr: IP_MIN,
        len: 0,
    };
    pub const MAX: Prefix = Prefix {
        addr: IP_MAX,
        len: 128,
    };

    /// Parses a route prefix: `ADDRESS/LENGTH` with no host bits set.
    pub fn parse(field: &str, s: &str) -> ApiResult<Prefix> {
        let (addr, len) = split(field, s)?;
        let net = mask(addr, len);
        if net != addr {
            return Err(ApiError::invalid(format!(
                "{field} {s} has host bits set: did you mean {net}/{len}?"
            )));
        }
        Ok(Prefix { addr, len })
    }

    /// The network of `addr`/`len`.
    pub fn of(addr: IpAddr, len: u8) -> Prefix {
        Prefix {
            addr: mask(addr, len),
            len,
        }
    }

    /// The host prefix of `addr` (/32 or /128).
    pub fn host(addr: IpAddr) -> Prefix {
        Prefix {
            addr,
            len: Family::of(&addr).bits(),
        }
    }

    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn length(&self) -> u8 {
        self.len
    }

    pub fn family(&self) -> Family {
        Family::of(&self.addr)
    }

    /// Whether `a` is in this network.
    pub fn contains(&self, a: &IpAddr) -> bool {
        Family::of(a) == self.family() && mask(*a, self.len) == self.addr
    }

    /// The first and last address of the network.
    pub fn span(&self) -> (IpAddr, IpAddr) {
        (self.addr, last(self.addr, self.len))
    }

    /// The smallest and largest prefix of a family in the [`Prefix`] order.
    pub fn family_span(f: Family) -> (Prefix, Prefix) {
        let (lo, hi) = f.span();
        (
            Prefix { addr: lo, len: 0 },
            Prefix {
                addr: hi,
                len: f.bits(),
            },
        )
    }
}

impl Cidr {
    /// The lowest and highest address in the [`Cidr`] order: bounds of ranges.
    pub const MIN: Cidr = Cidr {
        addr: IP_MIN,
        len: 0,
    };
    pub const MAX: Cidr = Cidr {
        addr: IP_MAX,
        len: 128,
    };

    /// Parses an interface address: `ADDRESS/LENGTH`, host bits kept; a unicast address
    /// and a length of at least 1.
    pub fn parse(field: &str, s: &str) -> ApiResult<Cidr> {
        let (addr, len) = split(field, s)?;
        check_unicast(field, &addr)?;
        if len == 0 {
            return Err(ApiError::invalid(format!(
                "{field} {s}: an interface address needs a length of 1 to {}",
                Family::of(&addr).bits()
            )));
        }
        Ok(Cidr { addr, len })
    }

    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn length(&self) -> u8 {
        self.len
    }

    /// The subnet it is in.
    pub fn subnet(&self) -> Prefix {
        Prefix::of(self.addr, self.len)
    }

    /// Whether it is alone in its subnet (/32, /128): it has a local route only.
    pub fn is_host(&self) -> bool {
        self.len == Family::of(&self.addr).bits()
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_parse_strictly() {
        for (s, ok) in [
            ("10.0.0.0/24", "10.0.0.0/24"),
            ("0.0.0.0/0", "0.0.0.0/0"),
            ("10.1.2.3/32", "10.1.2.3/32"),
            ("2001:DB8::/32", "2001:db8::/32"),
            ("::/0", "::/0"),
        ] {
            assert_eq!(Prefix::parse("prefix", s).unwrap().to_string(), ok);
        }
        for (s, text) in [
            (
                "10.0.0.1/24",
                "10.0.0.1/24 has host bits set: did you mean 10.0.0.0/24?",
            ),
            ("2001:db8::1/64", "did you mean 2001:db8::/64?"),
            ("10.0.0.0", "is not ADDRESS/LENGTH"),
            ("10.0.0.0/", "is not ADDRESS/LENGTH"),
            ("10.0.0.0/024", "is not ADDRESS/LENGTH"),
            ("10.0.0.0/+4", "is not ADDRESS/LENGTH"),
            ("10.0.0.0/ 4", "is not ADDRESS/LENGTH"),
            ("10.0.0/8", "is not ADDRESS/LENGTH"),
            ("010.0.0.0/8", "is not ADDRESS/LENGTH"),
            ("10.0.0.0/33", "the length of an IPv4 prefix is 0 to 32"),
            ("::/129", "the length of an IPv6 prefix is 0 to 128"),
            ("default", "is not ADDRESS/LENGTH"),
        ] {
            let e = Prefix::parse("prefix", s).unwrap_err();
            assert!(e.message.contains(text), "{s}: {e}");
            assert!(!e.message.contains('\n'));
        }
    }

    #[test]
    fn interface_addresses_keep_host_bits() {
        let c = Cidr::parse("address", "10.0.0.1/24").unwrap();
        assert_eq!(c.to_string(), "10.0.0.1/24");
        assert_eq!(c.subnet().to_string(), "10.0.0.0/24");
        assert!(!c.is_host());
        assert!(Cidr::parse("address", "10.0.0.1/32").unwrap().is_host());
        assert_eq!(
            Cidr::parse("address", "2001:db8::5/64")
                .unwrap()
                .subnet()
                .to_string(),
            "2001:db8::/64"
        );
        for (s, text) in [
            ("10.0.0.1/0", "needs a length of 1 to 32"),
            ("0.0.0.0/8", "unspecified"),
            ("224.0.0.1/4", "multicast"),
            ("127.0.0.1/8", "loopback"),
            ("ff02::1/64", "multicast"),
            ("10.0.0.1", "is not ADDRESS/LENGTH"),
        ] {
            let e = Cidr::parse("address", s).unwrap_err();
            assert!(e.message.contains(text), "{s}: {e}");
        }
    }

    #[test]
    fn containment_and_spans() {
        let p = Prefix::parse("p", "10.1.0.0/16").unwrap();
        assert!(p.contains(&"10.1.255.255".parse().unwrap()));
        assert!(!p.contains(&"10.2.0.0".parse().unwrap()));
        assert!(!p.contains(&"::1".parse().unwrap()));
        assert_eq!(
            p.span(),
            ("10.1.0.0".parse().unwrap(), "10.1.255.255".parse().unwrap())
        );
        let all = Prefix::parse("p", "0.0.0.0/0").unwrap();
        assert_eq!(all.span().1, "255.255.255.255".parse::<IpAddr>().unwrap());
        let (lo, hi) = Prefix::family_span(Family::V4);
        assert!(lo <= all && all <= hi && p <= hi);
        let (lo6, _) = Prefix::family_span(Family::V6);
        assert!(hi < lo6);
        assert!(is_link_local_v6(&"fe80::1".parse().unwrap()));
        assert!(is_link_local_v6(&"febf::1".parse().unwrap()));
        assert!(!is_link_local_v6(&"fec0::1".parse().unwrap()));
        assert!(!is_link_local_v6(&"169.254.1.1".parse().unwrap()));
    }
}
