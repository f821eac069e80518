//! IP addresses of either family, prefix lengths, and IP protocol numbers.
//!
//! Not for prefixes with an address attached (CIDRs): those are in [`crate::cidr`].

mod v4;
mod v6;

pub use v4::{Ipv4Addr, Ipv4PrefixLen};
pub use v6::{Ipv6Addr, Ipv6PrefixLen, MulticastUnderlay};

use crate::mac::MacAddr;
use crate::text::{ParseError, ParseReason, parse_decimal};
use core::fmt;
use core::str::FromStr;
use serde::{Deserialize, Serialize};

/// An IPv4 or IPv6 address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum IpAddr {
    /// An IPv4 address.
    Ip4(Ipv4Addr),
    /// An IPv6 address.
    Ip6(Ipv6Addr),
}

impl IpAddr {
    /// True for multicast addresses of either family.
    pub const fn is_multicast(&self) -> bool {
        match self {
            Self::Ip4(ip) => ip.is_multicast(),
            Self::Ip6(ip) => ip.is_multicast(),
        }
    }

    /// True for the unspecified address of either family.
    pub const fn is_unspecified(&self) -> bool {
        match self {
            Self::Ip4(ip) => ip.is_unspecified(),
            Self::Ip6(ip) => ip.is_unspecified(),
        }
    }

    /// The Ethernet group address of a multicast address; `None` for other addresses.
    pub const fn multicast_mac(&self) -> Option<MacAddr> {
        match self {
            Self::Ip4(ip) => ip.multicast_mac(),
            Self::Ip6(ip) => ip.multicast_mac(),
        }
    }
}

impl From<Ipv4Addr> for IpAddr {
    fn from(ip: Ipv4Addr) -> Self {
        Self::Ip4(ip)
    }
}

impl From<Ipv6Addr> for IpAddr {
    fn from(ip: Ipv6Addr) -> Self {
        Self::Ip6(ip)
    }
}

impl From<core::net::IpAddr> for IpAddr {
    fn from(ip: core::net::IpAddr) -> Self {
        match ip {
            core::net::IpAddr::V4(ip) => Self::Ip4(ip.into()),
            core::net::IpAddr::V6(ip) => Self::Ip6(ip.into()),
        }
    }
}

impl From<IpAddr> for core::net::IpAddr {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::Ip4(ip) => Self::V4(ip.into()),
            IpAddr::Ip6(ip) => Self::V6(ip.into()),
        }
    }
}

impl fmt::Display for IpAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip4(ip) => fmt::Display::fmt(ip, f),
            Self::Ip6(ip) => fmt::Display::fmt(ip, f),
        }
    }
}

impl FromStr for IpAddr {
    type Err = ParseError;

    /// An IPv6 address if the text holds a ':', otherwise an IPv4 address.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let what = "IP address";
        if s.is_empty() {
            return Err(ParseError::new(what, s, ParseReason::Empty));
        }
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

/// An IP protocol number: the IPv4 protocol field, the IPv6 final next-header.
///
/// Displays as the protocol's name (`TCP`, `ICMPv6`, ...) or, for others, its number;
/// parses either form, names in any case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Protocol {
    /// ICMP for IPv4, 1.
    ICMP,
    /// IGMP, 2.
    IGMP,
    /// TCP, 6.
    TCP,
    /// UDP, 17.
    UDP,
    /// ICMP for IPv6, 58.
    ICMPv6,
    /// Any other protocol number.
    Unknown(u8),
}

impl Protocol {
    const NAMED: [(Protocol, &'static str); 5] = [
        (Self::ICMP, "ICMP"),
        (Self::IGMP, "IGMP"),
        (Self::TCP, "TCP"),
        (Self::UDP, "UDP"),
        (Self::ICMPv6, "ICMPv6"),
    ];
}

impl From<u8> for Protocol {
    fn from(v: u8) -> Self {
        match v {
            1 => Self::ICMP,
            2 => Self::IGMP,
            6 => Self::TCP,
            17 => Self::UDP,
            58 => Self::ICMPv6,
            x => Self::Unknown(x),
        }
    }
}

impl From<Protocol> for u8 {
    fn from(p: Protocol) -> u8 {
        match p {
            Protocol::ICMP => 1,
            Protocol::IGMP => 2,
            Protocol::TCP => 6,
            Protocol::UDP => 17,
            Protocol::ICMPv6 => 58,
            Protocol::Unknown(x) => x,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Self::NAMED.iter().find(|(p, _)| p == self) {
            Some((_, name)) => f.write_str(name),
            None => write!(f, "{}", u8::from(*self)),
        }
    }
}

impl FromStr for Protocol {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some((p, _)) = Self::NAMED
            .iter()
            .find(|(_, name)| name.eq_ignore_ascii_case(s))
        {
            return Ok(*p);
        }
        if s.bytes().next().is_some_and(|b| b.is_ascii_digit()) {
            let n = parse_decimal("protocol number", s, u64::from(u8::MAX))
                .map_err(|reason| ParseError::new("IP protocol", s, reason))?;
            return Ok(Self::from(u8::try_from(n).unwrap_or(u8::MAX)));
        }
        Err(ParseError::new(
            "IP protocol",
            s,
            ParseReason::Invalid("expected ICMP, IGMP, TCP, UDP, ICMPv6 or a number 0-255"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn test_ip_addr_from_str() {
        assert_eq!(
            "172.30.0.1".parse(),
            Ok(IpAddr::Ip4(Ipv4Addr::from([172, 30, 0, 1])))
        );
        assert_eq!(
            "fd00::1".parse(),
            Ok(IpAddr::Ip6(Ipv6Addr::from_segments([
                0xfd00, 0, 0, 0, 0, 0, 0, 1
            ])))
        );
        let e = "172.30.0".parse::<IpAddr>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad IP address \"172.30.0\": expected 4 octets, saw 3"
        );
        assert!("fd00:::1".parse::<IpAddr>().is_err());
        assert!("".parse::<IpAddr>().is_err());
    }

    #[test]
    fn ip_addr_display_round_trips() {
        for s in ["10.0.0.1", "fd00::1", "::ffff:10.0.0.1", "ff04::1"] {
            assert_eq!(s.parse::<IpAddr>().unwrap().to_string(), s);
        }
    }

    #[test]
    fn ip_addr_core_net_and_postcard() {
        let ip = IpAddr::Ip6("fd00::2".parse().unwrap());
        let core_ip = core::net::IpAddr::from(ip);
        assert_eq!(core_ip.to_string(), "fd00::2");
        assert_eq!(IpAddr::from(core_ip), ip);
        let v4 = IpAddr::Ip4(Ipv4Addr::from([10, 0, 0, 1]));
        let bytes = postcard::to_allocvec(&v4).unwrap();
        // Variant index, then the four address bytes.
        assert_eq!(bytes, [0, 10, 0, 0, 1]);
        assert_eq!(postcard::from_bytes::<IpAddr>(&bytes), Ok(v4));
        let bytes = postcard::to_allocvec(&ip).unwrap();
        assert_eq!(bytes.first(), Some(&1));
        assert_eq!(postcard::from_bytes::<IpAddr>(&bytes), Ok(ip));
    }

    #[test]
    fn ip_addr_multicast() {
        let v4: IpAddr = "224.0.0.5".parse().unwrap();
        assert!(v4.is_multicast());
        assert_eq!(
            v4.multicast_mac(),
            Some(MacAddr::from([1, 0, 0x5e, 0, 0, 5]))
        );
        let v6: IpAddr = "fd00::5".parse().unwrap();
        assert!(!v6.is_multicast());
        assert_eq!(v6.multicast_mac(), None);
    }

    #[test]
    fn protocol_numbers_names_and_round_trip() {
        for (n, p) in [
            (1, Protocol::ICMP),
            (2, Protocol::IGMP),
            (6, Protocol::TCP),
            (17, Protocol::UDP),
            (58, Protocol::ICMPv6),
            (99, Protocol::Unknown(99)),
        ] {
            assert_eq!(Protocol::from(n), p);
            assert_eq!(u8::from(p), n);
            assert_eq!(p.to_string().parse::<Protocol>(), Ok(p));
        }
        assert_eq!(Protocol::TCP.to_string(), "TCP");
        assert_eq!(Protocol::ICMPv6.to_string(), "ICMPv6");
        assert_eq!(Protocol::Unknown(99).to_string(), "99");
        assert_eq!("tcp".parse(), Ok(Protocol::TCP));
        assert_eq!("17".parse(), Ok(Protocol::UDP));
        let e = "256".parse::<Protocol>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad IP protocol \"256\": protocol number 256 exceeds 255"
        );
        assert!("sctp".parse::<Protocol>().is_err());
    }
}
