//! IP prefixes (CIDRs): an address and a prefix length, with the host bits always clear.
//!
//! Every constructor masks, so two CIDRs naming the same prefix compare equal and
//! `192.168.2.9/24` reads back as `192.168.2.0/24`.

use crate::ip::{IpAddr, Ipv4Addr, Ipv4PrefixLen, Ipv6Addr, Ipv6PrefixLen};
use crate::text::{ParseError, ParseReason};
use core::fmt;
use core::str::FromStr;
use serde::{Deserialize, Serialize};

/// An IPv4 prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(from = "Ipv4CidrFields")]
pub struct Ipv4Cidr {
    ip: Ipv4Addr,
    prefix_len: Ipv4PrefixLen,
}

/// The serialised fields of an [`Ipv4Cidr`]; deserialising goes through `Ipv4Cidr::new`
/// so the host bits are cleared whatever the sender sent.
#[derive(Deserialize)]
struct Ipv4CidrFields {
    ip: Ipv4Addr,
    prefix_len: Ipv4PrefixLen,
}

impl From<Ipv4CidrFields> for Ipv4Cidr {
    fn from(f: Ipv4CidrFields) -> Self {
        Self::new(f.ip, f.prefix_len)
    }
}

impl Ipv4Cidr {
    /// Multicast, `224.0.0.0/4`.
    pub const MCAST: Self = Self::new(Ipv4Addr::from_const([224, 0, 0, 0]), Ipv4PrefixLen(4));
    /// Link-local, `169.254.0.0/16`.
    pub const LINK_LOCAL: Self =
        Self::new(Ipv4Addr::from_const([169, 254, 0, 0]), Ipv4PrefixLen(16));

    /// The prefix of length `prefix_len` that holds `ip`.
    pub const fn new(ip: Ipv4Addr, prefix_len: Ipv4PrefixLen) -> Self {
        Self {
            ip: ip.mask(prefix_len),
            prefix_len,
        }
    }

    /// `new` from a raw prefix length, refused if it exceeds 32.
    pub fn new_checked(ip: Ipv4Addr, prefix_len: u8) -> Result<Self, ParseError> {
        Ok(Self::new(ip, Ipv4PrefixLen::new(prefix_len)?))
    }

    /// The network address (host bits clear).
    pub const fn ip(&self) -> Ipv4Addr {
        self.ip
    }

    /// The prefix length in bits.
    pub const fn prefix_len(&self) -> u8 {
        self.prefix_len.val()
    }

    /// The network address and prefix length.
    pub const fn parts(&self) -> (Ipv4Addr, Ipv4PrefixLen) {
        (self.ip, self.prefix_len)
    }

    /// True for `0.0.0.0/0`, the default route.
    pub const fn is_default(&self) -> bool {
        self.prefix_len.val() == 0
    }

    /// True if `ip` is inside this prefix.
    pub const fn is_member(&self, ip: Ipv4Addr) -> bool {
        ip.mask(self.prefix_len).to_bits() == self.ip.to_bits()
    }

    /// The netmask of this prefix: `/24` is `255.255.255.0`.
    pub const fn to_mask(&self) -> Ipv4Addr {
        self.prefix_len.to_mask()
    }

    /// The last address of the prefix (the subnet broadcast address).
    pub const fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from_bits(self.ip.to_bits() | !self.to_mask().to_bits())
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.ip, self.prefix_len)
    }
}

impl FromStr for Ipv4Cidr {
    type Err = ParseError;

    /// `ADDR/LEN`, e.g. `10.0.0.0/24`. Host bits in `ADDR` are cleared.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let what = "IPv4 CIDR";
        let (ip, len) = split_cidr(what, s)?;
        let ip: Ipv4Addr = ip.parse().map_err(|e: ParseError| e.within(what, s))?;
        let len: Ipv4PrefixLen = len.parse().map_err(|e: ParseError| e.within(what, s))?;
        Ok(Self::new(ip, len))
    }
}

/// An IPv6 prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(from = "Ipv6CidrFields")]
pub struct Ipv6Cidr {
    ip: Ipv6Addr,
    prefix_len: Ipv6PrefixLen,
}

/// The serialised fields of an [`Ipv6Cidr`]; see [`Ipv4CidrFields`].
#[derive(Deserialize)]
struct Ipv6CidrFields {
    ip: Ipv6Addr,
    prefix_len: Ipv6PrefixLen,
}

impl From<Ipv6CidrFields> for Ipv6Cidr {
    fn from(f: Ipv6CidrFields) -> Self {
        Self::new(f.ip, f.prefix_len)
    }
}

impl Ipv6Cidr {
    /// Link-local unicast as hosts configure it, `fe80::/64`.
    pub const LINK_LOCAL: Self = Self::new(
        Ipv6Addr::from_segments([0xfe80, 0, 0, 0, 0, 0, 0, 0]),
        Ipv6PrefixLen(64),
    );
    /// Multicast, `ff00::/8`.
    pub const MCAST: Self = Self::new(
        Ipv6Addr::from_segments([0xff00, 0, 0, 0, 0, 0, 0, 0]),
        Ipv6PrefixLen(8),
    );
    /// Admin-local multicast, `ff04::/16`: the underlay multicast scope.
    pub const MCAST_ADMIN_LOCAL: Self = Self::new(
        Ipv6Addr::from_segments([0xff04, 0, 0, 0, 0, 0, 0, 0]),
        Ipv6PrefixLen(16),
    );

    /// The prefix of length `prefix_len` that holds `ip`.
    pub const fn new(ip: Ipv6Addr, prefix_len: Ipv6PrefixLen) -> Self {
        Self {
            ip: ip.mask(prefix_len),
            prefix_len,
        }
    }

    /// `new` from a raw prefix length, refused if it exceeds 128.
    pub fn new_checked(ip: Ipv6Addr, prefix_len: u8) -> Result<Self, ParseError> {
        Ok(Self::new(ip, Ipv6PrefixLen::new(prefix_len)?))
    }

    /// The network address (host bits clear).
    pub const fn ip(&self) -> Ipv6Addr {
        self.ip
    }

    /// The prefix length in bits.
    pub const fn prefix_len(&self) -> u8 {
        self.prefix_len.val()
    }

    /// The network address and prefix length.
    pub const fn parts(&self) -> (Ipv6Addr, Ipv6PrefixLen) {
        (self.ip, self.prefix_len)
    }

    /// True for `::/0`, the default route.
    pub const fn is_default(&self) -> bool {
        self.prefix_len.val() == 0
    }

    /// True if `ip` is inside this prefix.
    pub const fn is_member(&self, ip: Ipv6Addr) -> bool {
        ip.has_prefix(self.ip, self.prefix_len)
    }

    /// The netmask of this prefix: `/16` is `ffff::`.
    pub const fn to_mask(&self) -> Ipv6Addr {
        self.prefix_len.to_mask()
    }
}

impl fmt::Display for Ipv6Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.ip, self.prefix_len)
    }
}

impl FromStr for Ipv6Cidr {
    type Err = ParseError;

    /// `ADDR/LEN`, e.g. `fd00::/64`. Host bits in `ADDR` are cleared.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let what = "IPv6 CIDR";
        let (ip, len) = split_cidr(what, s)?;
        let ip: Ipv6Addr = ip.parse().map_err(|e: ParseError| e.within(what, s))?;
        let len: Ipv6PrefixLen = len.parse().map_err(|e: ParseError| e.within(what, s))?;
        Ok(Self::new(ip, len))
    }
}

/// An IPv4 or IPv6 prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum IpCidr {
    /// An IPv4 prefix.
    Ip4(Ipv4Cidr),
    /// An IPv6 prefix.
    Ip6(Ipv6Cidr),
}

impl IpCidr {
    /// The network address.
    pub const fn ip(&self) -> IpAddr {
        match self {
            Self::Ip4(c) => IpAddr::Ip4(c.ip()),
            Self::Ip6(c) => IpAddr::Ip6(c.ip()),
        }
    }

    /// The prefix length in bits.
    pub const fn prefix_len(&self) -> u8 {
        match self {
            Self::Ip4(c) => c.prefix_len(),
            Self::Ip6(c) => c.prefix_len(),
        }
    }

    /// True for a default route of either family.
    pub const fn is_default(&self) -> bool {
        match self {
            Self::Ip4(c) => c.is_default(),
            Self::Ip6(c) => c.is_default(),
        }
    }

    /// True if `ip` is inside this prefix; an address of the other family never is.
    pub const fn is_member(&self, ip: IpAddr) -> bool {
        match (self, ip) {
            (Self::Ip4(c), IpAddr::Ip4(ip)) => c.is_member(ip),
            (Self::Ip6(c), IpAddr::Ip6(ip)) => c.is_member(ip),
            _ => false,
        }
    }
}

impl From<Ipv4Cidr> for IpCidr {
    fn from(c: Ipv4Cidr) -> Self {
        Self::Ip4(c)
    }
}

impl From<Ipv6Cidr> for IpCidr {
    fn from(c: Ipv6Cidr) -> Self {
        Self::Ip6(c)
    }
}

impl fmt::Display for IpCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip4(c) => fmt::Display::fmt(c, f),
            Self::Ip6(c) => fmt::Display::fmt(c, f),
        }
    }
}

impl FromStr for IpCidr {
    type Err = ParseError;

    /// An IPv6 CIDR if the text holds a ':', otherwise an IPv4 CIDR.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let what = "IP CIDR";
        if s.contains(':') {
            s.parse()
                .map(Self::Ip6)
                .map_err(|e: ParseError| e.within(what, s))
        } else {
            s.parse()
                .map(Self::Ip4)
                .map_err(|e: ParseError| e.within(what, s))
        }
    }
}

/// Split `ADDR/LEN`, naming what is missing.
fn split_cidr<'a>(what: &'static str, s: &'a str) -> Result<(&'a str, &'a str), ParseError> {
    if s.is_empty() {
        return Err(ParseError::new(what, s, ParseReason::Empty));
    }
    match s.split_once('/') {
        Some((ip, len)) if !len.is_empty() => Ok((ip, len)),
        Some(_) => Err(ParseError::new(
            what,
            s,
            ParseReason::Missing("prefix length after '/'"),
        )),
        None => Err(ParseError::new(
            what,
            s,
            ParseReason::Missing("'/' and prefix length"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn v4(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn v6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn bad_cidr() {
        let e = "192.168.2.9/33".parse::<Ipv4Cidr>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad IPv4 CIDR \"192.168.2.9/33\": prefix length 33 exceeds 32"
        );
        let e = Ipv6Cidr::new_checked(v6("fd01:dead:beef::1"), 129).unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad IPv6 prefix length \"129\": prefix length 129 exceeds 128"
        );
        let e = "fd01:dead:beef::1/129".parse::<Ipv6Cidr>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad IPv6 CIDR \"fd01:dead:beef::1/129\": prefix length 129 exceeds 128"
        );
        let e = "10.0.0.0".parse::<Ipv4Cidr>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad IPv4 CIDR \"10.0.0.0\": missing '/' and prefix length"
        );
        let e = "10.0.0.0/".parse::<Ipv4Cidr>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad IPv4 CIDR \"10.0.0.0/\": missing prefix length after '/'"
        );
        let e = "10.0.0.300/8".parse::<Ipv4Cidr>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad IPv4 CIDR \"10.0.0.300/8\": octet 300 exceeds 255"
        );
        let e = "10.0.0.0/8/8".parse::<Ipv4Cidr>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad IPv4 CIDR \"10.0.0.0/8/8\": prefix length \"8/8\" is not a decimal number"
        );
        assert!("fd00::/64".parse::<Ipv4Cidr>().is_err());
        assert!("10.0.0.0/8".parse::<Ipv6Cidr>().is_err());
    }

    #[test]
    fn good_cidr() {
        let pl = Ipv4PrefixLen::new(24).unwrap();
        let want = Ipv4Cidr::new(v4("192.168.2.0"), pl);
        assert_eq!(want.parts(), (v4("192.168.2.0"), pl));
        assert_eq!("192.168.2.0/24".parse(), Ok(want));
        assert_eq!("192.168.2.9/24".parse(), Ok(want));
        assert_eq!(
            "192.168.2.9/24".parse::<Ipv4Cidr>().unwrap().to_string(),
            "192.168.2.0/24"
        );

        for (text, net, len) in [
            ("fd01:dead:beef::1/64", "fd01:dead:beef::", 64),
            ("fe80::8:20ff:fe35:f794/10", "fe80::", 10),
            ("fe80::8:20ff:fe35:f794/128", "fe80::8:20ff:fe35:f794", 128),
            ("fd00:1122:3344:0201::/56", "fd00:1122:3344:200::", 56),
        ] {
            let cidr: Ipv6Cidr = text.parse().unwrap();
            assert_eq!(cidr.parts(), (v6(net), Ipv6PrefixLen::new(len).unwrap()));
            assert_eq!(cidr.to_string(), alloc::format!("{net}/{len}"));
        }
    }

    #[test]
    fn ipv4_cidr_membership_mask_broadcast() {
        let c: Ipv4Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(c.is_member(v4("10.1.255.3")));
        assert!(!c.is_member(v4("10.2.0.1")));
        assert_eq!(c.to_mask(), v4("255.255.0.0"));
        assert_eq!(c.broadcast(), v4("10.1.255.255"));
        assert!(Ipv4Cidr::MCAST.is_member(v4("239.1.1.1")));
        assert!(!Ipv4Cidr::MCAST.is_member(v4("240.1.1.1")));
        assert!(Ipv4Cidr::LINK_LOCAL.is_member(v4("169.254.3.4")));
        let default: Ipv4Cidr = "1.2.3.4/0".parse().unwrap();
        assert!(default.is_default());
        assert_eq!(default.to_string(), "0.0.0.0/0");
        assert!(default.is_member(v4("8.8.8.8")));
    }

    #[test]
    fn ipv6_is_default() {
        let ones = Ipv6Addr::from([1; 16]);
        assert!(!Ipv6Cidr::new_checked(ones, 1).unwrap().is_default());
        assert!(
            !Ipv6Cidr::new_checked(Ipv6Addr::ANY_ADDR, 1)
                .unwrap()
                .is_default()
        );
        assert!(Ipv6Cidr::new_checked(ones, 0).unwrap().is_default());
        assert!(
            Ipv6Cidr::new_checked(Ipv6Addr::ANY_ADDR, 0)
                .unwrap()
                .is_default()
        );
        assert_eq!(
            Ipv6Cidr::new_checked(ones, 0).unwrap().ip(),
            Ipv6Addr::ANY_ADDR
        );
    }

    #[test]
    fn ipv6_prefix_len() {
        for i in 0u8..=128 {
            let cidr = Ipv6Cidr::new_checked(Ipv6Addr::from([1; 16]), i).unwrap();
            assert_eq!(cidr.prefix_len(), i);
        }
        assert!(Ipv6Cidr::new_checked(Ipv6Addr::from([1; 16]), 129).is_err());
    }

    #[test]
    fn ipv6_cidr_is_member() {
        let cidr: Ipv6Cidr = "fd00:1::1/16".parse().unwrap();
        assert!(cidr.is_member(v6("fd00:1::1")));
        assert!(cidr.is_member(v6("fd00:1::10")));
        assert!(cidr.is_member(v6("fd00:2::1")));
        assert!(!cidr.is_member(v6("fd01:1::1")));
        assert!(!cidr.is_member(v6("fd01:1::10")));
        assert!(!cidr.is_member(v6("fd01:2::1")));
        assert!(Ipv6Cidr::MCAST_ADMIN_LOCAL.is_member(v6("ff04::9")));
        assert!(!Ipv6Cidr::MCAST_ADMIN_LOCAL.is_member(v6("ff05::9")));
        assert!(Ipv6Cidr::MCAST.is_member(v6("ff0e::1")));
        assert!(Ipv6Cidr::LINK_LOCAL.is_member(v6("fe80::aa40:25ff:feff:1")));
        assert_eq!(Ipv6Cidr::MCAST_ADMIN_LOCAL.to_mask(), v6("ffff::"));
        assert_eq!(Ipv6Cidr::LINK_LOCAL.to_string(), "fe80::/64");
    }

    #[test]
    fn test_ip_cidr_from_str() {
        assert_eq!(
            "10.0.0.0/24".parse(),
            Ok(IpCidr::Ip4(
                Ipv4Cidr::new_checked(v4("10.0.0.0"), 24).unwrap()
            ))
        );
        assert_eq!(
            "fd00::1/64".parse(),
            Ok(IpCidr::Ip6(
                Ipv6Cidr::new_checked(v6("fd00::1"), 64).unwrap()
            ))
        );
        let e = "fd00::1/200".parse::<IpCidr>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad IP CIDR \"fd00::1/200\": prefix length 200 exceeds 128"
        );
        for s in ["10.0.0.0/8", "fd00::/48", "0.0.0.0/0", "::/0"] {
            assert_eq!(s.parse::<IpCidr>().unwrap().to_string(), s);
        }
    }

    #[test]
    fn ip_cidr_membership_is_per_family() {
        let c4: IpCidr = "10.0.0.0/8".parse().unwrap();
        let c6: IpCidr = "::/0".parse().unwrap();
        let a4 = IpAddr::Ip4(v4("10.9.9.9"));
        assert!(c4.is_member(a4));
        assert!(!c6.is_member(a4));
        assert!(c6.is_default());
        assert_eq!(c4.ip(), IpAddr::Ip4(v4("10.0.0.0")));
        assert_eq!(c4.prefix_len(), 8);
    }

    #[test]
    fn cidr_serde_masks_host_bits_and_checks_length() {
        let c: Ipv4Cidr = "10.0.0.0/24".parse().unwrap();
        let bytes = postcard::to_allocvec(&c).unwrap();
        assert_eq!(bytes, [10, 0, 0, 0, 24]);
        assert_eq!(postcard::from_bytes::<Ipv4Cidr>(&bytes), Ok(c));
        // A sender that leaves host bits set still yields the canonical prefix.
        assert_eq!(postcard::from_bytes::<Ipv4Cidr>(&[10, 0, 0, 7, 24]), Ok(c));
        assert!(postcard::from_bytes::<Ipv4Cidr>(&[10, 0, 0, 0, 33]).is_err());

        let c: IpCidr = "fd00::/64".parse().unwrap();
        let bytes = postcard::to_allocvec(&c).unwrap();
        assert_eq!(postcard::from_bytes::<IpCidr>(&bytes), Ok(c));
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(json, r#"{"Ip6":{"ip":"fd00::","prefix_len":64}}"#);
        assert_eq!(serde_json::from_str::<IpCidr>(&json).unwrap(), c);
    }
}
