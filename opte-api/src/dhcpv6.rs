//! DHCPv6 lease descriptions: which addresses a port leases to its guest, and for how long.
//!
//! Not the DHCPv6 server: building replies is the engine's hairpin code.

use crate::ip::Ipv6Addr;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// The lifetime meaning "forever" (RFC 8415 §7.7).
pub const INFINITE_LIFETIME: u32 = u32::MAX;

/// One leased address and its lifetimes in seconds; the preferred lifetime never exceeds
/// the valid one (RFC 8415 §21.6: clients discard such addresses).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "LeasedAddressFields")]
pub struct LeasedAddress {
    addr: Ipv6Addr,
    preferred: u32,
    valid: u32,
}

/// The serialised fields of a [`LeasedAddress`]; deserialising checks the lifetimes.
#[derive(Deserialize)]
struct LeasedAddressFields {
    addr: Ipv6Addr,
    preferred: u32,
    valid: u32,
}

/// A preferred lifetime longer than the valid lifetime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bad DHCPv6 lease: preferred lifetime {preferred}s exceeds valid lifetime {valid}s")]
pub struct LifetimeError {
    /// The preferred lifetime given.
    pub preferred: u32,
    /// The valid lifetime given.
    pub valid: u32,
}

impl TryFrom<LeasedAddressFields> for LeasedAddress {
    type Error = LifetimeError;

    fn try_from(f: LeasedAddressFields) -> Result<Self, Self::Error> {
        Self::new(f.addr, f.preferred, f.valid)
    }
}

impl LeasedAddress {
    /// A lease of `addr`, refused if `preferred` exceeds `valid`.
    pub const fn new(addr: Ipv6Addr, preferred: u32, valid: u32) -> Result<Self, LifetimeError> {
        if preferred > valid {
            return Err(LifetimeError { preferred, valid });
        }
        Ok(Self {
            addr,
            preferred,
            valid,
        })
    }

    /// A lease of `addr` that never expires.
    pub const fn infinite_lease(addr: Ipv6Addr) -> Self {
        Self {
            addr,
            preferred: INFINITE_LIFETIME,
            valid: INFINITE_LIFETIME,
        }
    }

    /// The leased address.
    pub const fn addr(&self) -> Ipv6Addr {
        self.addr
    }

    /// Seconds the address stays preferred.
    pub const fn preferred(&self) -> u32 {
        self.preferred
    }

    /// Seconds the address stays valid.
    pub const fn valid(&self) -> u32 {
        self.valid
    }

    /// True if both lifetimes are infinite.
    pub const fn is_infinite(&self) -> bool {
        self.preferred == INFINITE_LIFETIME && self.valid == INFINITE_LIFETIME
    }
}

/// The addresses leased to a guest and when it should renew them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressInfo {
    /// The leased addresses.
    pub addrs: Vec<LeasedAddress>,
    /// Seconds until the guest should renew (T1); 0 lets the client choose.
    pub renew: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn lifetimes_are_checked() {
        let addr: Ipv6Addr = "fd00::5".parse().unwrap();
        let lease = LeasedAddress::new(addr, 100, 200).unwrap();
        assert_eq!(
            (lease.addr(), lease.preferred(), lease.valid()),
            (addr, 100, 200)
        );
        assert!(!lease.is_infinite());
        let e = LeasedAddress::new(addr, 201, 200).unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad DHCPv6 lease: preferred lifetime 201s exceeds valid lifetime 200s"
        );
        let forever = LeasedAddress::infinite_lease(addr);
        assert!(forever.is_infinite());
        assert_eq!(forever.valid(), u32::MAX);
    }

    #[test]
    fn deserialisation_refuses_inverted_lifetimes() {
        let addr: Ipv6Addr = "fd00::5".parse().unwrap();
        let info = AddressInfo {
            addrs: alloc::vec![LeasedAddress::infinite_lease(addr)],
            renew: 60,
        };
        let bytes = postcard::to_allocvec(&info).unwrap();
        assert_eq!(postcard::from_bytes::<AddressInfo>(&bytes), Ok(info));

        let mut bad = postcard::to_allocvec(&addr).unwrap();
        bad.extend_from_slice(&[10, 5]); // preferred 10, valid 5 (varints)
        assert!(postcard::from_bytes::<LeasedAddress>(&bad).is_err());
        bad.truncate(16);
        bad.extend_from_slice(&[5, 10]);
        assert_eq!(
            postcard::from_bytes::<LeasedAddress>(&bad),
            Ok(LeasedAddress::new(addr, 5, 10).unwrap())
        );
    }
}
