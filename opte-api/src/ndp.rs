//! What a port answers on the guest's behalf in IPv6 Neighbor Discovery: its router
//! advertisement and neighbor advertisement parameters.
//!
//! Not the NDP messages themselves: building them is the engine's hairpin code.

use crate::ip::Ipv6Addr;
use crate::mac::MacAddr;

/// The Router Advertisement a port sends in answer to a guest's Router Solicitation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouterAdvertisement {
    src_mac: MacAddr,
    mac: MacAddr,
    ip: Ipv6Addr,
    managed_cfg: bool,
    mtu: Option<u32>,
}

impl RouterAdvertisement {
    /// An advertisement answering solicitations from `src_mac` (the guest), for the router
    /// at `mac`. The router's address is derived from `mac` by EUI-64. `managed_cfg` sets
    /// the M flag (addresses come from DHCPv6); `mtu`, if given, adds an MTU option.
    pub const fn new(src_mac: MacAddr, mac: MacAddr, managed_cfg: bool, mtu: Option<u32>) -> Self {
        Self {
            src_mac,
            mac,
            ip: Ipv6Addr::from_eui64(&mac),
            managed_cfg,
            mtu,
        }
    }

    /// The MAC solicitations are expected from.
    pub const fn src_mac(&self) -> MacAddr {
        self.src_mac
    }

    /// The router's MAC, which advertisements come from.
    pub const fn mac(&self) -> MacAddr {
        self.mac
    }

    /// The router's link-local address, derived from its MAC.
    pub const fn ip(&self) -> Ipv6Addr {
        self.ip
    }

    /// Whether the M (managed address configuration) flag is set.
    pub const fn managed_cfg(&self) -> bool {
        self.managed_cfg
    }

    /// The MTU to advertise, if any.
    pub const fn mtu(&self) -> Option<u32> {
        self.mtu
    }
}

/// The Neighbor Advertisement a port sends in answer to a guest's Neighbor Solicitation
/// for the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NeighborAdvertisement {
    src_mac: MacAddr,
    mac: MacAddr,
    ip: Ipv6Addr,
    is_router: bool,
    allow_unspec: bool,
}

impl NeighborAdvertisement {
    /// An advertisement answering solicitations from `src_mac` (the guest), for the
    /// neighbor at `mac`, whose address is derived from `mac` by EUI-64. `is_router` sets
    /// the R flag; `allow_unspec` also answers solicitations sent from `::` (duplicate
    /// address detection), not only those from link-local addresses.
    pub const fn new(src_mac: MacAddr, mac: MacAddr, is_router: bool, allow_unspec: bool) -> Self {
        Self {
            src_mac,
            mac,
            ip: Ipv6Addr::from_eui64(&mac),
            is_router,
            allow_unspec,
        }
    }

    /// The MAC solicitations are expected from.
    pub const fn src_mac(&self) -> MacAddr {
        self.src_mac
    }

    /// The neighbor's MAC, which advertisements come from.
    pub const fn mac(&self) -> MacAddr {
        self.mac
    }

    /// The neighbor's link-local address, derived from its MAC.
    pub const fn ip(&self) -> Ipv6Addr {
        self.ip
    }

    /// Whether the R (router) flag is set.
    pub const fn is_router(&self) -> bool {
        self.is_router
    }

    /// Whether solicitations from the unspecified address are answered.
    pub const fn allow_unspec(&self) -> bool {
        self.allow_unspec
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_derived_from_the_mac() {
        let guest = MacAddr::from([0xa8, 0x40, 0x25, 0xf0, 0x00, 0x01]);
        let gw = MacAddr::from([0xa8, 0x40, 0x25, 0xff, 0x77, 0x77]);
        let ra = RouterAdvertisement::new(guest, gw, true, Some(1500));
        assert_eq!(ra.ip(), "fe80::aa40:25ff:feff:7777".parse().unwrap());
        assert_eq!(
            (ra.src_mac(), ra.mac(), ra.managed_cfg(), ra.mtu()),
            (guest, gw, true, Some(1500))
        );
        let na = NeighborAdvertisement::new(guest, gw, true, false);
        assert_eq!(na.ip(), ra.ip());
        assert!(na.is_router() && !na.allow_unspec());
    }
}
