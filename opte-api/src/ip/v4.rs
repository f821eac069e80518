//! IPv4 addresses and prefix lengths.

use crate::mac::MacAddr;
use crate::text::{ParseError, ParseReason, parse_decimal, serde_text_or_bytes};
use core::fmt;
use core::str::FromStr;
use serde::{Deserialize, Serialize};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// An IPv4 address, in network order.
///
/// Usable directly as a field of a zerocopy header view. Serialises as its 4 bytes in
/// postcard and as dotted-quad text in human-readable formats.
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
pub struct Ipv4Addr {
    inner: [u8; 4],
}

impl Ipv4Addr {
    /// The unspecified address, `0.0.0.0`.
    pub const ANY_ADDR: Self = Self::from_const([0; 4]);
    /// The loopback address, `127.0.0.1`.
    pub const LOCALHOST: Self = Self::from_const([127, 0, 0, 1]);
    /// The limited-broadcast address, `255.255.255.255`.
    pub const LOCAL_BCAST: Self = Self::from_const([255; 4]);

    /// An address from its four bytes (usable in `const` context).
    pub const fn from_const(bytes: [u8; 4]) -> Self {
        Self { inner: bytes }
    }

    /// The four bytes of the address, in network order.
    pub const fn bytes(&self) -> [u8; 4] {
        self.inner
    }

    /// The address as a host-order integer (`10.0.0.1` is `0x0a00_0001`).
    pub const fn to_bits(self) -> u32 {
        u32::from_be_bytes(self.inner)
    }

    /// The address whose host-order integer value is `bits`.
    pub const fn from_bits(bits: u32) -> Self {
        Self {
            inner: bits.to_be_bytes(),
        }
    }

    /// This address with every bit past the first `prefix` bits cleared.
    pub const fn mask(self, prefix: Ipv4PrefixLen) -> Self {
        Self::from_bits(self.to_bits() & prefix.to_mask().to_bits())
    }

    /// True for `0.0.0.0`.
    pub const fn is_unspecified(&self) -> bool {
        self.to_bits() == 0
    }

    /// True for `127.0.0.0/8`.
    pub const fn is_loopback(&self) -> bool {
        self.inner[0] == 127
    }

    /// True for multicast addresses, `224.0.0.0/4`.
    pub const fn is_multicast(&self) -> bool {
        self.inner[0] & 0xf0 == 224
    }

    /// True for link-local addresses, `169.254.0.0/16`.
    pub const fn is_link_local(&self) -> bool {
        self.inner[0] == 169 && self.inner[1] == 254
    }

    /// True for the limited-broadcast address.
    pub const fn is_broadcast(&self) -> bool {
        self.to_bits() == u32::MAX
    }

    /// The Ethernet group address of a multicast IPv4 address (RFC 1112 §6.4):
    /// `01:00:5e` followed by the low 23 bits of the address. `None` for other addresses.
    pub const fn multicast_mac(&self) -> Option<MacAddr> {
        if !self.is_multicast() {
            return None;
        }
        let [_, b, c, d] = self.inner;
        Some(MacAddr::from_const([0x01, 0x00, 0x5e, b & 0x7f, c, d]))
    }
}

impl From<[u8; 4]> for Ipv4Addr {
    fn from(bytes: [u8; 4]) -> Self {
        Self::from_const(bytes)
    }
}

impl From<Ipv4Addr> for [u8; 4] {
    fn from(ip: Ipv4Addr) -> Self {
        ip.inner
    }
}

impl From<core::net::Ipv4Addr> for Ipv4Addr {
    fn from(ip: core::net::Ipv4Addr) -> Self {
        Self::from_const(ip.octets())
    }
}

impl From<Ipv4Addr> for core::net::Ipv4Addr {
    fn from(ip: Ipv4Addr) -> Self {
        Self::from(ip.inner)
    }
}

impl fmt::Display for Ipv4Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.inner;
        write!(f, "{a}.{b}.{c}.{d}")
    }
}

impl fmt::Debug for Ipv4Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ipv4Addr({self})")
    }
}

impl FromStr for Ipv4Addr {
    type Err = ParseError;

    /// Dotted-quad decimal. Octets with leading zeros are refused: some tools read them as
    /// octal, so accepting them would make the same text mean different addresses.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ParseError::new("IPv4 address", s, reason);
        if s.is_empty() {
            return Err(err(ParseReason::Empty));
        }
        let seen = s.split('.').count();
        if seen != 4 {
            return Err(err(ParseReason::WrongCount {
                part: "octets",
                expected: 4,
                seen,
            }));
        }
        let mut inner = [0u8; 4];
        for (slot, part) in inner.iter_mut().zip(s.split('.')) {
            let value = parse_decimal("octet", part, 255).map_err(err)?;
            if part.len() > 1 && part.starts_with('0') {
                return Err(err(ParseReason::Invalid(
                    "octets may not have leading zeros",
                )));
            }
            *slot = u8::try_from(value).unwrap_or(u8::MAX);
        }
        Ok(Self { inner })
    }
}

serde_text_or_bytes!(Ipv4Addr, 4, Ipv4Addr::from_const);

/// A valid IPv4 prefix length: 0 to 32.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(try_from = "u8")]
pub struct Ipv4PrefixLen(pub(crate) u8);

impl Ipv4PrefixLen {
    /// The longest prefix.
    pub const MAX: u8 = 32;
    /// `/0`: every address.
    pub const NETMASK_NONE: Self = Self(0);
    /// `/32`: one address.
    pub const NETMASK_ALL: Self = Self(32);

    /// A prefix length, if `len` is at most 32.
    pub fn new(len: u8) -> Result<Self, ParseError> {
        Self::new_const(len).ok_or_else(|| {
            ParseError::new(
                "IPv4 prefix length",
                &alloc::format!("{len}"),
                ParseReason::OutOfRange {
                    field: "prefix length",
                    value: u64::from(len),
                    max: u64::from(Self::MAX),
                },
            )
        })
    }

    /// `new` for `const` contexts: `None` if `len` exceeds 32.
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

    /// The netmask: `/24` is `255.255.255.0`.
    pub const fn to_mask(self) -> Ipv4Addr {
        // A shift by 32 (for `/0`) overflows; that mask is all zeros.
        let bits = match u32::MAX.checked_shl(32 - self.0 as u32) {
            Some(b) => b,
            None => 0,
        };
        Ipv4Addr::from_bits(bits)
    }
}

impl TryFrom<u8> for Ipv4PrefixLen {
    type Error = ParseError;

    fn try_from(len: u8) -> Result<Self, Self::Error> {
        Self::new(len)
    }
}

impl From<Ipv4PrefixLen> for u8 {
    fn from(len: Ipv4PrefixLen) -> Self {
        len.0
    }
}

impl fmt::Display for Ipv4PrefixLen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for Ipv4PrefixLen {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let len = parse_decimal("prefix length", s, u64::from(Self::MAX))
            .map_err(|reason| ParseError::new("IPv4 prefix length", s, reason))?;
        Ok(Self(u8::try_from(len).unwrap_or(Self::MAX)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn ipv4_addr_good() {
        assert_eq!(
            "192.168.33.10".parse(),
            Ok(Ipv4Addr::from([192, 168, 33, 10]))
        );
        assert_eq!("0.0.0.0".parse(), Ok(Ipv4Addr::ANY_ADDR));
        assert_eq!("255.255.255.255".parse(), Ok(Ipv4Addr::LOCAL_BCAST));
        assert_eq!(Ipv4Addr::from([10, 0, 0, 1]).to_string(), "10.0.0.1");
    }

    #[test]
    fn ipv4_addr_bad() {
        let e = "192.168.33.1O".parse::<Ipv4Addr>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad IPv4 address \"192.168.33.1O\": octet \"1O\" is not a decimal number"
        );
        let e = "192.168.33.256".parse::<Ipv4Addr>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad IPv4 address \"192.168.33.256\": octet 256 exceeds 255"
        );
        let e = "192.168.33".parse::<Ipv4Addr>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad IPv4 address \"192.168.33\": expected 4 octets, saw 3"
        );
        assert!("192.168.033.1".parse::<Ipv4Addr>().is_err());
        assert!("192.168..1".parse::<Ipv4Addr>().is_err());
        assert!("1.2.3.4 ".parse::<Ipv4Addr>().is_err());
        assert!("".parse::<Ipv4Addr>().is_err());
    }

    #[test]
    fn ipv4_mask() {
        let ip: Ipv4Addr = "192.168.2.77".parse().unwrap();
        let len = |n| Ipv4PrefixLen::new(n).unwrap();
        assert_eq!(ip.mask(len(24)), Ipv4Addr::from([192, 168, 2, 0]));
        assert_eq!(ip.mask(len(0)), Ipv4Addr::ANY_ADDR);
        assert_eq!(ip.mask(len(32)), ip);
        assert_eq!(ip.mask(len(20)), Ipv4Addr::from([192, 168, 0, 0]));
        assert_eq!(len(24).to_mask(), Ipv4Addr::from([255, 255, 255, 0]));
        assert_eq!(len(0).to_mask(), Ipv4Addr::ANY_ADDR);
        assert_eq!(len(32).to_mask(), Ipv4Addr::LOCAL_BCAST);
        assert_eq!(len(1).to_mask(), Ipv4Addr::from([128, 0, 0, 0]));
    }

    #[test]
    fn bad_prefix_len() {
        let e = Ipv4PrefixLen::new(33).unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad IPv4 prefix length \"33\": prefix length 33 exceeds 32"
        );
        assert_eq!(Ipv4PrefixLen::new(32).map(|p| p.val()), Ok(32));
        assert!("33".parse::<Ipv4PrefixLen>().is_err());
        assert_eq!("8".parse::<Ipv4PrefixLen>().map(|p| p.val()), Ok(8));
        // Deserialisation enforces the bound too.
        assert!(postcard::from_bytes::<Ipv4PrefixLen>(&[33]).is_err());
        assert_eq!(
            postcard::from_bytes::<Ipv4PrefixLen>(&[32]),
            Ok(Ipv4PrefixLen::NETMASK_ALL)
        );
    }

    #[test]
    fn ipv4_classes() {
        assert!(Ipv4Addr::from([224, 0, 0, 1]).is_multicast());
        assert!(Ipv4Addr::from([239, 255, 255, 255]).is_multicast());
        assert!(!Ipv4Addr::from([240, 0, 0, 1]).is_multicast());
        assert!(!Ipv4Addr::from([223, 255, 255, 255]).is_multicast());
        assert!(Ipv4Addr::from([169, 254, 1, 1]).is_link_local());
        assert!(!Ipv4Addr::from([169, 253, 1, 1]).is_link_local());
        assert!(Ipv4Addr::LOCALHOST.is_loopback());
        assert!(Ipv4Addr::ANY_ADDR.is_unspecified());
        assert!(Ipv4Addr::LOCAL_BCAST.is_broadcast());
    }

    #[test]
    fn test_ipv4_multicast_mac() {
        assert_eq!(Ipv4Addr::from([10, 0, 0, 1]).multicast_mac(), None);
        // The top bit of the second octet is dropped: 23 bits survive.
        assert_eq!(
            Ipv4Addr::from([239, 129, 2, 3]).multicast_mac(),
            Some(MacAddr::from([0x01, 0x00, 0x5e, 0x01, 0x02, 0x03]))
        );
        assert_eq!(
            Ipv4Addr::from([224, 0, 0, 251]).multicast_mac(),
            Some(MacAddr::from([0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb]))
        );
    }

    #[test]
    fn ipv4_bits_and_core_net() {
        let ip = Ipv4Addr::from([10, 0, 0, 1]);
        assert_eq!(ip.to_bits(), 0x0a00_0001);
        assert_eq!(Ipv4Addr::from_bits(0x0a00_0001), ip);
        let core_ip = core::net::Ipv4Addr::new(10, 0, 0, 1);
        assert_eq!(core::net::Ipv4Addr::from(ip), core_ip);
        assert_eq!(Ipv4Addr::from(core_ip), ip);
    }

    #[test]
    fn ipv4_serde() {
        let ip = Ipv4Addr::from([10, 0, 0, 1]);
        let bytes = postcard::to_allocvec(&ip).unwrap();
        assert_eq!(bytes, [10, 0, 0, 1]);
        assert_eq!(postcard::from_bytes::<Ipv4Addr>(&bytes), Ok(ip));
        assert_eq!(serde_json::to_string(&ip).unwrap(), "\"10.0.0.1\"");
        assert_eq!(
            serde_json::from_str::<Ipv4Addr>("\"10.0.0.1\"").unwrap(),
            ip
        );
    }
}
