//! Encapsulation identifiers: the Geneve Virtual Network Identifier.

use crate::text::{ParseError, ParseReason, parse_decimal, serde_text_or_bytes};
use core::fmt;
use core::str::FromStr;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// A 24-bit Geneve Virtual Network Identifier, stored big-endian as on the wire.
///
/// Usable directly as a field of a zerocopy header view. Serialises as its 3 big-endian
/// bytes in postcard and as a decimal number's text in human-readable formats; displays and
/// parses as decimal.
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
pub struct Vni {
    inner: [u8; 3],
}

impl Vni {
    /// The largest VNI: 2^24 - 1.
    pub const MAX: u32 = 0x00ff_ffff;

    /// A VNI from its numeric value; `None` if it does not fit in 24 bits.
    pub const fn new(v: u32) -> Option<Self> {
        if v > Self::MAX {
            return None;
        }
        let [_, a, b, c] = v.to_be_bytes();
        Some(Self { inner: [a, b, c] })
    }

    /// A VNI from its three wire bytes (every value is valid).
    pub const fn from_be_bytes(bytes: [u8; 3]) -> Self {
        Self { inner: bytes }
    }

    /// The three wire bytes.
    pub const fn bytes(&self) -> [u8; 3] {
        self.inner
    }

    /// The numeric value.
    pub const fn as_u32(&self) -> u32 {
        let [a, b, c] = self.inner;
        u32::from_be_bytes([0, a, b, c])
    }
}

impl TryFrom<u32> for Vni {
    type Error = ParseError;

    fn try_from(v: u32) -> Result<Self, Self::Error> {
        Self::new(v).ok_or_else(|| {
            ParseError::new(
                "VNI",
                &alloc::format!("{v}"),
                ParseReason::OutOfRange {
                    field: "value",
                    value: u64::from(v),
                    max: u64::from(Self::MAX),
                },
            )
        })
    }
}

impl From<Vni> for u32 {
    fn from(vni: Vni) -> Self {
        vni.as_u32()
    }
}

impl fmt::Debug for Vni {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Vni({})", self.as_u32())
    }
}

impl fmt::Display for Vni {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_u32())
    }
}

impl FromStr for Vni {
    type Err = ParseError;

    /// A decimal number from 0 to 16777215.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let v = parse_decimal("value", s, u64::from(Self::MAX))
            .map_err(|reason| ParseError::new("VNI", s, reason))?;
        let [_, _, _, _, _, a, b, c] = v.to_be_bytes();
        Ok(Self { inner: [a, b, c] })
    }
}

serde_text_or_bytes!(Vni, 3, Vni::from_be_bytes);

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn good_vni() {
        assert_eq!(Vni::new(0).map(|v| v.as_u32()), Some(0));
        assert_eq!(Vni::new(Vni::MAX).map(|v| v.as_u32()), Some(16_777_215));
        assert_eq!(Vni::new(7777).map(|v| v.as_u32()), Some(7777));
        assert_eq!("0".parse::<Vni>().map(|v| v.as_u32()), Ok(0));
        assert_eq!("16777215".parse::<Vni>().map(|v| v.as_u32()), Ok(Vni::MAX));
        assert_eq!(Vni::try_from(99u32).map(u32::from), Ok(99));
    }

    #[test]
    fn bad_vni() {
        assert_eq!(Vni::new(Vni::MAX + 1), None);
        assert_eq!(Vni::new(u32::MAX), None);
        let e = "16777216".parse::<Vni>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad VNI \"16777216\": value 16777216 exceeds 16777215"
        );
        let e = "-1".parse::<Vni>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad VNI \"-1\": value \"-1\" is not a decimal number"
        );
        assert!("".parse::<Vni>().is_err());
        assert!("0x10".parse::<Vni>().is_err());
        assert!(Vni::try_from(1u32 << 24).is_err());
    }

    #[test]
    fn vni_round_trip() {
        let vni = Vni::new(7777).unwrap();
        assert_eq!(vni.bytes(), [0x00, 0x1e, 0x61]);
        assert_eq!(Vni::from_be_bytes([0x00, 0x1e, 0x61]), vni);
        assert_eq!(vni.to_string(), "7777");
        assert_eq!("7777".parse(), Ok(vni));
        // The wire form is exactly the three big-endian bytes.
        let bytes = postcard::to_allocvec(&vni).unwrap();
        assert_eq!(bytes, [0x00, 0x1e, 0x61]);
        assert_eq!(postcard::from_bytes::<Vni>(&bytes), Ok(vni));
        assert_eq!(serde_json::to_string(&vni).unwrap(), "\"7777\"");
        assert_eq!(serde_json::from_str::<Vni>("\"7777\"").unwrap(), vni);
        assert!(serde_json::from_str::<Vni>("\"16777216\"").is_err());
    }
}
