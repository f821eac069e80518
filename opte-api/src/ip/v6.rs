//! IPv6 addresses, prefix lengths, and the admin-local multicast underlay address.

use crate::mac::MacAddr;
use crate::text::{ParseError, ParseReason, parse_decimal, serde_text_or_bytes};
use core::fmt;
use core::str::FromStr;
use serde::{Deserialize, Serialize};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// An IPv6 address, in network order.
///
/// Usable directly as a field of a zerocopy header view. Serialises as its 16 bytes in
/// postcard and as RFC 5952 text in human-readable formats.
#[derive(
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(transparent)]
pub struct Ipv6Addr {
    inner: [u8; 16],
}

impl Ipv6Addr {
    /// The unspecified address, `::`.
    pub const ANY_ADDR: Self = Self::from_const([0; 16]);
    /// The loopback address, `::1`.
    pub const LOCALHOST: Self = Self::from_segments([0, 0, 0, 0, 0, 0, 0, 1]);
    /// All nodes on the link, `ff02::1`.
    pub const ALL_NODES: Self = Self::from_segments([0xff02, 0, 0, 0, 0, 0, 0, 1]);
    /// All routers on the link, `ff02::2`.
    pub const ALL_ROUTERS: Self = Self::from_segments([0xff02, 0, 0, 0, 0, 0, 0, 2]);

    /// An address from its sixteen bytes (usable in `const` context).
    pub const fn from_const(bytes: [u8; 16]) -> Self {
        Self { inner: bytes }
    }

    /// An address from its eight 16-bit groups, as written: `fe80::1` is
    /// `[0xfe80, 0, 0, 0, 0, 0, 0, 1]`.
    pub const fn from_segments(segments: [u16; 8]) -> Self {
        let [a, b, c, d, e, f, g, h] = segments;
        let hi = (a as u64) << 48 | (b as u64) << 32 | (c as u64) << 16 | d as u64;
        let lo = (e as u64) << 48 | (f as u64) << 32 | (g as u64) << 16 | h as u64;
        Self::from_bits((hi as u128) << 64 | lo as u128)
    }

    /// The sixteen bytes of the address, in network order.
    pub const fn bytes(&self) -> [u8; 16] {
        self.inner
    }

    /// The eight 16-bit groups of the address.
    pub const fn segments(&self) -> [u16; 8] {
        let [
            a0,
            a1,
            b0,
            b1,
            c0,
            c1,
            d0,
            d1,
            e0,
            e1,
            f0,
            f1,
            g0,
            g1,
            h0,
            h1,
        ] = self.inner;
        [
            u16::from_be_bytes([a0, a1]),
            u16::from_be_bytes([b0, b1]),
            u16::from_be_bytes([c0, c1]),
            u16::from_be_bytes([d0, d1]),
            u16::from_be_bytes([e0, e1]),
            u16::from_be_bytes([f0, f1]),
            u16::from_be_bytes([g0, g1]),
            u16::from_be_bytes([h0, h1]),
        ]
    }

    /// The address as a host-order integer.
    pub const fn to_bits(self) -> u128 {
        u128::from_be_bytes(self.inner)
    }

    /// The address whose host-order integer value is `bits`.
    pub const fn from_bits(bits: u128) -> Self {
        Self {
            inner: bits.to_be_bytes(),
        }
    }

    /// This address with every bit past the first `prefix` bits cleared.
    pub const fn mask(self, prefix: Ipv6PrefixLen) -> Self {
        Self::from_bits(self.to_bits() & prefix.mask_bits())
    }

    /// True if the first `len` bits of this address equal those of `prefix`.
    pub const fn has_prefix(&self, prefix: Ipv6Addr, len: Ipv6PrefixLen) -> bool {
        self.mask(len).to_bits() == prefix.mask(len).to_bits()
    }

    /// True for `::`.
    pub const fn is_unspecified(&self) -> bool {
        self.to_bits() == 0
    }

    /// True for `::1`.
    pub const fn is_loopback(&self) -> bool {
        self.to_bits() == 1
    }

    /// True for multicast addresses, `ff00::/8`.
    pub const fn is_multicast(&self) -> bool {
        self.inner[0] == 0xff
    }

    /// True for link-local unicast addresses, `fe80::/10`.
    pub const fn is_link_local(&self) -> bool {
        self.inner[0] == 0xfe && self.inner[1] & 0xc0 == 0x80
    }

    /// True for admin-local multicast, `ff04::/16`: the only scope this project carries on
    /// the underlay (see [`MulticastUnderlay`]).
    pub const fn is_admin_scoped_multicast(&self) -> bool {
        self.inner[0] == 0xff && self.inner[1] == 0x04
    }

    /// The Ethernet group address of a multicast IPv6 address (RFC 2464 §7): `33:33`
    /// followed by the low 32 bits of the address. `None` for other addresses.
    pub const fn multicast_mac(&self) -> Option<MacAddr> {
        if !self.is_multicast() {
            return None;
        }
        let b = &self.inner;
        Some(MacAddr::from_const([
            0x33, 0x33, b[12], b[13], b[14], b[15],
        ]))
    }

    /// The solicited-node multicast group of this address (RFC 4291 §2.7.1):
    /// `ff02::1:ff00:0/104` followed by the low 24 bits of the address.
    pub const fn solicited_node_multicast(&self) -> Self {
        const PREFIX: u128 = 0xff02_0000_0000_0000_0000_0001_ff00_0000;
        Self::from_bits(PREFIX | (self.to_bits() & 0x00ff_ffff))
    }

    /// The link-local address a host derives from its MAC by modified EUI-64
    /// (RFC 4291 appendix A): `fe80::/64`, then the MAC with `ff:fe` inserted in the middle
    /// and the universal/local bit flipped.
    pub const fn from_eui64(mac: &MacAddr) -> Self {
        let m = mac.bytes();
        Self::from_const([
            0xfe,
            0x80,
            0,
            0,
            0,
            0,
            0,
            0,
            m[0] ^ 0x02,
            m[1],
            m[2],
            0xff,
            0xfe,
            m[3],
            m[4],
            m[5],
        ])
    }
}

impl From<[u8; 16]> for Ipv6Addr {
    fn from(bytes: [u8; 16]) -> Self {
        Self::from_const(bytes)
    }
}

impl From<Ipv6Addr> for [u8; 16] {
    fn from(ip: Ipv6Addr) -> Self {
        ip.inner
    }
}

impl From<core::net::Ipv6Addr> for Ipv6Addr {
    fn from(ip: core::net::Ipv6Addr) -> Self {
        Self::from_const(ip.octets())
    }
}

impl From<Ipv6Addr> for core::net::Ipv6Addr {
    fn from(ip: Ipv6Addr) -> Self {
        Self::from(ip.inner)
    }
}

impl fmt::Display for Ipv6Addr {
    /// RFC 5952 canonical text (lower case, longest zero run compressed).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&core::net::Ipv6Addr::from(*self), f)
    }
}

impl fmt::Debug for Ipv6Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ipv6Addr({self})")
    }
}

impl FromStr for Ipv6Addr {
    type Err = ParseError;

    /// Any RFC 4291 text form (including an embedded dotted quad); no zone suffix.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(ParseError::new("IPv6 address", s, ParseReason::Empty));
        }
        s.parse::<core::net::Ipv6Addr>()
            .map(Self::from)
            .map_err(|_| {
                ParseError::new(
                    "IPv6 address",
                    s,
                    ParseReason::Invalid(
                        "expected up to 8 colon-separated hex groups, '::' at most once",
                    ),
                )
            })
    }
}

serde_text_or_bytes!(Ipv6Addr, 16, Ipv6Addr::from_const);

/// A valid IPv6 prefix length: 0 to 128.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(try_from = "u8")]
pub struct Ipv6PrefixLen(pub(crate) u8);

impl Ipv6PrefixLen {
    /// The longest prefix.
    pub const MAX: u8 = 128;
    /// `/0`: every address.
    pub const NETMASK_NONE: Self = Self(0);
    /// `/128`: one address.
    pub const NETMASK_ALL: Self = Self(128);

    /// A prefix length, if `len` is at most 128.
    pub fn new(len: u8) -> Result<Self, ParseError> {
        Self::new_const(len).ok_or_else(|| {
            ParseError::new(
                "IPv6 prefix length",
                &alloc::format!("{len}"),
                ParseReason::OutOfRange {
                    field: "prefix length",
                    value: u64::from(len),
                    max: u64::from(Self::MAX),
                },
            )
        })
    }

    /// `new` for `const` contexts: `None` if `len` exceeds 128.
    pub const fn new_const(len: u8) -> Option<Self> {
        if len > Self::MAX {
            None
        } else {
            Some(Self(len))
        }
    }

    /// The length in bits.
    pub const fn val(&self) -> u8 {
        self.0
    }

    /// The netmask: `/16` is `ffff::`.
    pub const fn to_mask(self) -> Ipv6Addr {
        Ipv6Addr::from_bits(self.mask_bits())
    }

    const fn mask_bits(self) -> u128 {
        // A shift by 128 (for `/0`) overflows; that mask is all zeros.
        match u128::MAX.checked_shl(128 - self.0 as u32) {
            Some(b) => b,
            None => 0,
        }
    }
}

impl TryFrom<u8> for Ipv6PrefixLen {
    type Error = ParseError;

    fn try_from(len: u8) -> Result<Self, Self::Error> {
        Self::new(len)
    }
}

impl From<Ipv6PrefixLen> for u8 {
    fn from(len: Ipv6PrefixLen) -> Self {
        len.0
    }
}

impl fmt::Display for Ipv6PrefixLen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for Ipv6PrefixLen {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let len = parse_decimal("prefix length", s, u64::from(Self::MAX))
            .map_err(|reason| ParseError::new("IPv6 prefix length", s, reason))?;
        Ok(Self(u8::try_from(len).unwrap_or(Self::MAX)))
    }
}

/// An underlay multicast group: an IPv6 address in admin-local scope, `ff04::/16`.
///
/// Overlay multicast is carried to other sleds in this scope only, so the type admits
/// nothing else. Serialises exactly as a plain [`Ipv6Addr`]; deserialisation rejects
/// addresses outside `ff04::/16`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "Ipv6Addr", into = "Ipv6Addr")]
pub struct MulticastUnderlay(Ipv6Addr);

impl MulticastUnderlay {
    /// The group `addr`, if it is in `ff04::/16`; for the datapath, which asks of every
    /// packet's outer destination and must not build an error for each unicast one.
    #[inline]
    pub fn of(addr: Ipv6Addr) -> Option<Self> {
        addr.is_admin_scoped_multicast().then_some(Self(addr))
    }

    /// The group `addr`, if it is in `ff04::/16`, else an error that says why.
    pub fn new(addr: Ipv6Addr) -> Result<Self, ParseError> {
        if let Some(g) = Self::of(addr) {
            Ok(g)
        } else {
            Err(ParseError::new(
                "multicast underlay address",
                &alloc::format!("{addr}"),
                ParseReason::Invalid("must be admin-local multicast, in ff04::/16"),
            ))
        }
    }

    /// The group address.
    pub const fn addr(&self) -> Ipv6Addr {
        self.0
    }
}

impl TryFrom<Ipv6Addr> for MulticastUnderlay {
    type Error = ParseError;

    fn try_from(addr: Ipv6Addr) -> Result<Self, Self::Error> {
        Self::new(addr)
    }
}

impl From<MulticastUnderlay> for Ipv6Addr {
    fn from(m: MulticastUnderlay) -> Self {
        m.0
    }
}

impl fmt::Display for MulticastUnderlay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for MulticastUnderlay {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let what = "multicast underlay address";
        let addr = s.parse::<Ipv6Addr>().map_err(|e| e.within(what, s))?;
        Self::new(addr).map_err(|e| e.within(what, s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn v6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn len(n: u8) -> Ipv6PrefixLen {
        Ipv6PrefixLen::new(n).unwrap()
    }

    #[test]
    fn ipv6_text_round_trips_in_canonical_form() {
        for s in [
            "fd00::1",
            "::",
            "::1",
            "fe80::8:20ff:fe35:f794",
            "2001:db8:0:1:1:1:1:1",
        ] {
            assert_eq!(v6(s).to_string(), s);
        }
        assert_eq!(v6("FD00:0000:0000::0001").to_string(), "fd00::1");
        let e = "fd00::1::2".parse::<Ipv6Addr>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad IPv6 address \"fd00::1::2\": expected up to 8 colon-separated hex groups, \
             '::' at most once"
        );
        assert!("fe80::1%eth0".parse::<Ipv6Addr>().is_err());
        assert!("10.0.0.1".parse::<Ipv6Addr>().is_err());
    }

    #[test]
    fn ipv6_mask() {
        assert_eq!(
            v6("fd01:dead:beef::1").mask(len(64)),
            v6("fd01:dead:beef::")
        );
        assert_eq!(v6("fe80::8:20ff:fe35:f794").mask(len(10)), v6("fe80::"));
        assert_eq!(
            v6("fe80::8:20ff:fe35:f794").mask(len(128)),
            v6("fe80::8:20ff:fe35:f794")
        );
        assert_eq!(
            v6("fd00:1122:3344:0201::").mask(len(56)),
            v6("fd00:1122:3344:0200::")
        );
        assert_eq!(Ipv6Addr::from([1; 16]).mask(len(0)), Ipv6Addr::ANY_ADDR);
        assert_eq!(len(16).to_mask(), v6("ffff::"));
        assert_eq!(len(0).to_mask(), Ipv6Addr::ANY_ADDR);
        assert_eq!(len(128).to_mask().to_bits(), u128::MAX);
    }

    #[test]
    fn ipv6_has_prefix() {
        let fd00 = v6("fd00:1::");
        assert!(v6("fd00:1::5").has_prefix(fd00, len(32)));
        assert!(!v6("fd00:2::5").has_prefix(fd00, len(32)));
        assert!(v6("fd00:2::5").has_prefix(fd00, len(16)));
        assert!(v6("1234::").has_prefix(fd00, len(0)));
    }

    #[test]
    fn bad_ipv6_prefix_len() {
        let e = Ipv6PrefixLen::new(129).unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad IPv6 prefix length \"129\": prefix length 129 exceeds 128"
        );
        assert!(postcard::from_bytes::<Ipv6PrefixLen>(&[129]).is_err());
        assert_eq!(
            "128".parse::<Ipv6PrefixLen>(),
            Ok(Ipv6PrefixLen::NETMASK_ALL)
        );
    }

    #[test]
    fn test_ipv6_from_eui64() {
        let mac = MacAddr::from_const([0x01, 0x02, 0x03, 0x04, 0x05, 0x06]);
        // U/L bit flipped (0x01 -> 0x03), ff:fe inserted.
        assert_eq!(Ipv6Addr::from_eui64(&mac), v6("fe80::0302:03ff:fe04:0506"));
        let mac = MacAddr::from_const([0xa8, 0x40, 0x25, 0xff, 0x00, 0x01]);
        assert_eq!(Ipv6Addr::from_eui64(&mac), v6("fe80::aa40:25ff:feff:1"));
    }

    #[test]
    fn test_ipv6_from_const() {
        assert_eq!(
            Ipv6Addr::from_const([0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
            Ipv6Addr::from_segments([0xfe80, 0, 0, 0, 0, 0, 0, 1]),
        );
        assert_eq!(
            v6("fe80::1").bytes(),
            [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
        );
        assert_eq!(v6("1:2:3:4:5:6:7:8").segments(), [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(Ipv6Addr::ALL_NODES, v6("ff02::1"));
        assert_eq!(Ipv6Addr::ALL_ROUTERS, v6("ff02::2"));
        assert_eq!(Ipv6Addr::LOCALHOST, v6("::1"));
    }

    #[test]
    fn test_ipv6_is_multicast() {
        assert!(!v6("fd00::1").is_multicast());
        assert!(v6("ff00::1").is_multicast());
        assert!(v6("ff02::1").is_multicast());
        assert!(v6("fe80::1").is_link_local());
        assert!(v6("febf::1").is_link_local());
        assert!(!v6("fec0::1").is_link_local());
        assert!(Ipv6Addr::ANY_ADDR.is_unspecified());
        assert!(Ipv6Addr::LOCALHOST.is_loopback());
    }

    #[test]
    fn test_ipv6_multicast_mac() {
        assert_eq!(v6("fd00::1").multicast_mac(), None);
        assert_eq!(
            v6("ff00::0001:0203").multicast_mac(),
            Some(MacAddr::from([0x33, 0x33, 0, 1, 2, 3]))
        );
        assert_eq!(
            v6("ff02::1:ff00:1234").multicast_mac(),
            Some(MacAddr::from([0x33, 0x33, 0xff, 0x00, 0x12, 0x34]))
        );
    }

    #[test]
    fn test_ipv6_solicited_node_multicast() {
        let addr = v6("fd00:abcd:abcd:abcd:abcd:abcd:abcd:abcd");
        assert_eq!(addr.solicited_node_multicast(), v6("ff02::1:ffcd:abcd"));
        assert_eq!(
            v6("fe80::1").solicited_node_multicast(),
            v6("ff02::1:ff00:1")
        );
    }

    #[test]
    fn test_ipv6_admin_scoped_multicast() {
        assert!(v6("ff04::1").is_admin_scoped_multicast());
        assert!(v6("ff04:1234::ffff").is_admin_scoped_multicast());
        // Other multicast scopes, including the other "administratively configured" ones.
        for s in [
            "ff01::1", "ff02::1", "ff05::1", "ff08::1", "ff0e::1", "ff14::1",
        ] {
            assert!(!v6(s).is_admin_scoped_multicast(), "{s}");
        }
        for s in ["fd00::1", "fe80::1", "2001:db8::1", "::"] {
            assert!(!v6(s).is_admin_scoped_multicast(), "{s}");
        }
    }

    #[test]
    fn test_multicast_underlay_serde() {
        let group = MulticastUnderlay::new(v6("ff04::1:2")).unwrap();
        let bytes = postcard::to_allocvec(&group).unwrap();
        // Exactly a plain Ipv6Addr on the wire.
        assert_eq!(bytes, postcard::to_allocvec(&v6("ff04::1:2")).unwrap());
        assert_eq!(postcard::from_bytes::<MulticastUnderlay>(&bytes), Ok(group));

        let other = postcard::to_allocvec(&v6("ff02::1")).unwrap();
        assert!(postcard::from_bytes::<MulticastUnderlay>(&other).is_err());
        let unicast = postcard::to_allocvec(&v6("fd00::1")).unwrap();
        assert!(postcard::from_bytes::<MulticastUnderlay>(&unicast).is_err());

        assert_eq!(serde_json::to_string(&group).unwrap(), "\"ff04::1:2\"");
        let e = serde_json::from_str::<MulticastUnderlay>("\"ff05::1\"").unwrap_err();
        assert!(
            e.to_string()
                .contains("must be admin-local multicast, in ff04::/16"),
            "{e}"
        );
    }

    #[test]
    fn multicast_underlay_text() {
        let group: MulticastUnderlay = "ff04::7".parse().unwrap();
        assert_eq!(group.addr(), v6("ff04::7"));
        assert_eq!(group.to_string(), "ff04::7");
        let e = "ff0e::7".parse::<MulticastUnderlay>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad multicast underlay address \"ff0e::7\": must be admin-local multicast, in \
             ff04::/16"
        );
        assert!("nope".parse::<MulticastUnderlay>().is_err());
    }

    #[test]
    fn ipv6_core_net_and_serde() {
        let ip = v6("fd00::1");
        let core_ip: core::net::Ipv6Addr = "fd00::1".parse().unwrap();
        assert_eq!(core::net::Ipv6Addr::from(ip), core_ip);
        assert_eq!(Ipv6Addr::from(core_ip), ip);
        let bytes = postcard::to_allocvec(&ip).unwrap();
        assert_eq!(bytes, ip.bytes());
        assert_eq!(postcard::from_bytes::<Ipv6Addr>(&bytes), Ok(ip));
        assert_eq!(serde_json::from_str::<Ipv6Addr>("\"fd00::1\"").unwrap(), ip);
    }
}
