//! Ethernet MAC addresses: the value type, its group/broadcast tests, and its text form
//! (`aa:bb:cc:dd:ee:ff` in, upper-case hex out).
//!
//! Not for deriving MACs from IP multicast groups: that lives with the IP types
//! (`Ipv4Addr::multicast_mac`, `Ipv6Addr::multicast_mac`).

use crate::text::{ParseError, ParseReason, serde_text_or_bytes};
use core::fmt;
use core::str::FromStr;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// A 48-bit IEEE 802 MAC address, in wire order.
///
/// Usable directly as a field of a zerocopy header view. Serialises as its 6 bytes in
/// postcard and as its text form in human-readable formats.
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
pub struct MacAddr {
    inner: [u8; 6],
}

impl MacAddr {
    /// The broadcast address, `FF:FF:FF:FF:FF:FF`.
    pub const BROADCAST: Self = Self { inner: [0xff; 6] };
    /// The all-zero address.
    pub const ZERO: Self = Self { inner: [0; 6] };

    /// A MAC from its six bytes (usable in `const` context).
    pub const fn from_const(bytes: [u8; 6]) -> Self {
        Self { inner: bytes }
    }

    /// The six bytes of the address.
    pub const fn bytes(&self) -> [u8; 6] {
        self.inner
    }

    /// True for group (multicast or broadcast) addresses: the I/G bit of the first octet.
    pub const fn is_group(&self) -> bool {
        self.inner[0] & 0x01 != 0
    }

    /// True for the broadcast address.
    pub const fn is_broadcast(&self) -> bool {
        u64::from_be_bytes([
            0,
            0,
            self.inner[0],
            self.inner[1],
            self.inner[2],
            self.inner[3],
            self.inner[4],
            self.inner[5],
        ]) == 0xffff_ffff_ffff
    }

    /// True for group addresses other than broadcast.
    pub const fn is_multicast(&self) -> bool {
        self.is_group() && !self.is_broadcast()
    }

    /// True when the U/L bit says the address is locally administered.
    pub const fn is_local(&self) -> bool {
        self.inner[0] & 0x02 != 0
    }
}

impl From<[u8; 6]> for MacAddr {
    fn from(bytes: [u8; 6]) -> Self {
        Self::from_const(bytes)
    }
}

impl From<MacAddr> for [u8; 6] {
    fn from(mac: MacAddr) -> Self {
        mac.inner
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.inner;
        write!(f, "{a:02X}:{b:02X}:{c:02X}:{d:02X}:{e:02X}:{g:02X}")
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MacAddr({self})")
    }
}

impl FromStr for MacAddr {
    type Err = ParseError;

    /// Six colon-separated hex octets of one or two digits each, either case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ParseError::new("MAC address", s, reason);
        if s.is_empty() {
            return Err(err(ParseReason::Empty));
        }
        let seen = s.split(':').count();
        if seen != 6 {
            return Err(err(ParseReason::WrongCount {
                part: "octets",
                expected: 6,
                seen,
            }));
        }
        let mut inner = [0u8; 6];
        for (slot, part) in inner.iter_mut().zip(s.split(':')) {
            let well_formed =
                (1..=2).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_hexdigit());
            *slot = match u8::from_str_radix(part, 16) {
                Ok(v) if well_formed => v,
                _ => {
                    return Err(err(ParseReason::not_number(
                        "octet",
                        part,
                        "one or two hex digits",
                    )));
                }
            };
        }
        Ok(Self { inner })
    }
}

serde_text_or_bytes!(MacAddr, 6, MacAddr::from_const);

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn display_is_upper_case_and_round_trips() {
        let mac = MacAddr::from([0xa8, 0x40, 0x25, 0x0a, 0x00, 0x01]);
        assert_eq!(mac.to_string(), "A8:40:25:0A:00:01");
        assert_eq!("a8:40:25:0a:00:01".parse::<MacAddr>(), Ok(mac));
        assert_eq!(mac.to_string().parse::<MacAddr>(), Ok(mac));
        assert_eq!("a8:40:25:a:0:1".parse::<MacAddr>(), Ok(mac));
    }

    #[test]
    fn bad_macs_say_what_is_wrong() {
        let e = "a8:40:25:0a:00".parse::<MacAddr>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad MAC address \"a8:40:25:0a:00\": expected 6 octets, saw 5"
        );
        let e = "a8:40:25:0a:00:zz".parse::<MacAddr>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad MAC address \"a8:40:25:0a:00:zz\": octet \"zz\" is not one or two hex digits"
        );
        assert!("a8:40:25:0a:00:100".parse::<MacAddr>().is_err());
        assert!("a8:40:25:0a:00:+1".parse::<MacAddr>().is_err());
        assert!("a8:40:25:0a::01".parse::<MacAddr>().is_err());
        assert_eq!(
            "".parse::<MacAddr>().unwrap_err().reason(),
            &ParseReason::Empty
        );
    }

    #[test]
    fn group_broadcast_and_multicast() {
        assert!(MacAddr::BROADCAST.is_group());
        assert!(MacAddr::BROADCAST.is_broadcast());
        assert!(!MacAddr::BROADCAST.is_multicast());
        let mcast = MacAddr::from([0x01, 0x00, 0x5e, 0x00, 0x00, 0x01]);
        assert!(mcast.is_group() && mcast.is_multicast() && !mcast.is_broadcast());
        let unicast = MacAddr::from([0xa8, 0x40, 0x25, 0x00, 0x00, 0x01]);
        assert!(!unicast.is_group() && !unicast.is_multicast());
        assert!(!MacAddr::ZERO.is_group());
        assert!(MacAddr::from([0x02, 0, 0, 0, 0, 1]).is_local());
        assert!(!unicast.is_local());
    }

    #[test]
    fn serde_is_bytes_in_postcard_and_text_in_json() {
        let mac = MacAddr::from([0xa8, 0x40, 0x25, 0x0a, 0x00, 0x01]);
        let bytes = postcard::to_allocvec(&mac).unwrap();
        assert_eq!(bytes, [0xa8, 0x40, 0x25, 0x0a, 0x00, 0x01]);
        assert_eq!(postcard::from_bytes::<MacAddr>(&bytes).unwrap(), mac);
        let json = serde_json::to_string(&mac).unwrap();
        assert_eq!(json, "\"A8:40:25:0A:00:01\"");
        assert_eq!(serde_json::from_str::<MacAddr>(&json).unwrap(), mac);
        assert!(serde_json::from_str::<MacAddr>("\"A8:40\"").is_err());
    }
}
