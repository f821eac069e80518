//! The Oxide VPC's configuration and API types: what the control plane tells a port (its
//! addresses, external IPs, attached subnets, transit IPs, DHCP settings), what the shared
//! tables hold, and the request/response bodies of every VPC command. All serde (postcard on
//! the wire, JSON for `opteadm --json`).
//!
//! Not for behaviour: the layers that act on this configuration are in [`crate::engine`].

mod firewall;
mod mcast;
mod req;
mod router;

pub use firewall::{
    Address, Filters, FirewallAction, FirewallRule, FwRuleParseError, IcmpFilter, Ports,
    ProtoFilter,
};
pub use mcast::{FilterMode, McastForwardingNextHop, NextHopV6, Replication, SourceFilter};
pub use req::*;
pub use router::{InternetGatewayMap, RouterClass, RouterTarget, Uuid};

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::cmp::Ordering;
use core::ops::RangeInclusive;
use opte_api::{DhcpCfg, IpAddr, IpCidr, Ipv4Addr, Ipv4Cidr, Ipv6Addr, Ipv6Cidr, MacAddr, Vni};
use serde::{Deserialize, Serialize};

/// The MAC every boundary-services tunnel endpoint answers to in the inner frame.
pub const TUNNEL_ENDPOINT_MAC: MacAddr = MacAddr::from_const([0xa8, 0x40, 0x25, 0x77, 0x77, 0x77]);

/// The fleet-wide VNI of multicast traffic on the underlay.
pub const DEFAULT_MULTICAST_VNI: u32 = 77;

/// A source NAT allotment: an external IP shared with other guests, and the ports of it
/// this guest may use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SNatCfg<T> {
    pub external_ip: T,
    pub ports: RangeInclusive<u16>,
}

/// The external addresses of one IP family.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalIpCfg<T> {
    pub snat: Option<SNatCfg<T>>,
    pub ephemeral_ip: Option<T>,
    pub floating_ips: Vec<T>,
}

impl<T> Default for ExternalIpCfg<T> {
    fn default() -> Self {
        Self {
            snat: None,
            ephemeral_ip: None,
            floating_ips: Vec::new(),
        }
    }
}

impl<T: Copy + PartialEq> ExternalIpCfg<T> {
    /// True if `ip` may be the source of a 1:1 NAT flow: the ephemeral IP or a floating IP.
    pub fn is_nat_ip(&self, ip: T) -> bool {
        self.ephemeral_ip == Some(ip) || self.floating_ips.contains(&ip)
    }
}

/// An extra prefix routed to the guest by the control plane.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachedSubnetConfig {
    /// Reached from outside the rack: exempt from NAT, and only ever sent to boundary
    /// services.
    pub is_external: bool,
}

/// An address block the guest may send from (`allow_out`) or receive for (`allow_in`) on
/// behalf of others (the guest is a router or appliance).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransitIpConfig {
    pub allow_in: bool,
    pub allow_out: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ipv4Cfg {
    pub vpc_subnet: Ipv4Cidr,
    pub private_ip: Ipv4Addr,
    pub gateway_ip: Ipv4Addr,
    pub external_ips: ExternalIpCfg<Ipv4Addr>,
    pub attached_subnets: BTreeMap<IpCidr, AttachedSubnetConfig>,
    pub transit_ips: BTreeMap<IpCidr, TransitIpConfig>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ipv6Cfg {
    pub vpc_subnet: Ipv6Cidr,
    pub private_ip: Ipv6Addr,
    pub gateway_ip: Ipv6Addr,
    pub external_ips: ExternalIpCfg<Ipv6Addr>,
    pub attached_subnets: BTreeMap<IpCidr, AttachedSubnetConfig>,
    pub transit_ips: BTreeMap<IpCidr, TransitIpConfig>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum IpCfg {
    Ipv4(Ipv4Cfg),
    Ipv6(Ipv6Cfg),
    DualStack { ipv4: Ipv4Cfg, ipv6: Ipv6Cfg },
}

impl IpCfg {
    pub fn ipv4(&self) -> Option<&Ipv4Cfg> {
        match self {
            Self::Ipv4(c) | Self::DualStack { ipv4: c, .. } => Some(c),
            Self::Ipv6(_) => None,
        }
    }

    pub fn ipv6(&self) -> Option<&Ipv6Cfg> {
        match self {
            Self::Ipv6(c) | Self::DualStack { ipv6: c, .. } => Some(c),
            Self::Ipv4(_) => None,
        }
    }

    pub fn ipv4_mut(&mut self) -> Option<&mut Ipv4Cfg> {
        match self {
            Self::Ipv4(c) | Self::DualStack { ipv4: c, .. } => Some(c),
            Self::Ipv6(_) => None,
        }
    }

    pub fn ipv6_mut(&mut self) -> Option<&mut Ipv6Cfg> {
        match self {
            Self::Ipv6(c) | Self::DualStack { ipv6: c, .. } => Some(c),
            Self::Ipv4(_) => None,
        }
    }
}

/// A guest port's whole configuration, as the control plane gives it at creation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VpcCfg {
    pub ip_cfg: IpCfg,
    pub guest_mac: MacAddr,
    pub gateway_mac: MacAddr,
    pub vni: Vni,
    /// The underlay address of the sled hosting the port.
    pub phys_ip: Ipv6Addr,
    pub dhcp: DhcpCfg,
}

impl VpcCfg {
    pub fn ipv4(&self) -> Option<&Ipv4Cfg> {
        self.ip_cfg.ipv4()
    }

    pub fn ipv6(&self) -> Option<&Ipv6Cfg> {
        self.ip_cfg.ipv6()
    }

    /// NAT flows the port must be able to hold: one full port space per configured family.
    pub fn required_nat_space(&self) -> u32 {
        let fams = u32::from(self.ipv4().is_some()) + u32::from(self.ipv6().is_some());
        65_535 * fams
    }

    /// Whether `ip` is one of the guest's private addresses.
    pub fn is_private_ip(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::Ip4(a) => self.ipv4().is_some_and(|c| c.private_ip == a),
            IpAddr::Ip6(a) => self.ipv6().is_some_and(|c| c.private_ip == a),
        }
    }
}

/// Where a guest lives on the underlay.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PhysNet {
    pub ether: MacAddr,
    pub ip: Ipv6Addr,
    pub vni: Vni,
}

/// A V2P mapping's value: the guest's MAC and its sled's underlay address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GuestPhysAddr {
    pub ether: MacAddr,
    pub ip: Ipv6Addr,
}

/// A boundary-services tunnel endpoint. Two endpoints are the same endpoint if their
/// underlay addresses are equal, whatever their VNIs.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct TunnelEndpoint {
    pub ip: Ipv6Addr,
    pub vni: Vni,
}

impl PartialEq for TunnelEndpoint {
    fn eq(&self, o: &Self) -> bool {
        self.ip == o.ip
    }
}

impl Eq for TunnelEndpoint {}

impl PartialOrd for TunnelEndpoint {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl Ord for TunnelEndpoint {
    fn cmp(&self, o: &Self) -> Ordering {
        self.ip.cmp(&o.ip)
    }
}

/// Boundary services: where traffic for the outside world is tunnelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoundaryServices {
    pub ip: Ipv6Addr,
    pub vni: Vni,
    pub mac: MacAddr,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4() -> Ipv4Cfg {
        Ipv4Cfg {
            vpc_subnet: "172.30.0.0/22".parse().unwrap(),
            private_ip: "172.30.0.5".parse().unwrap(),
            gateway_ip: "172.30.0.1".parse().unwrap(),
            external_ips: ExternalIpCfg::default(),
            attached_subnets: BTreeMap::new(),
            transit_ips: BTreeMap::new(),
        }
    }

    fn v6() -> Ipv6Cfg {
        Ipv6Cfg {
            vpc_subnet: "fd00::/64".parse().unwrap(),
            private_ip: "fd00::5".parse().unwrap(),
            gateway_ip: "fd00::1".parse().unwrap(),
            external_ips: ExternalIpCfg::default(),
            attached_subnets: BTreeMap::new(),
            transit_ips: BTreeMap::new(),
        }
    }

    fn cfg(ip_cfg: IpCfg) -> VpcCfg {
        VpcCfg {
            ip_cfg,
            guest_mac: MacAddr::from_const([0xa8, 0x40, 0x25, 0xfa, 0xfa, 0x37]),
            gateway_mac: MacAddr::from_const([0xa8, 0x40, 0x25, 0xff, 0x77, 0x77]),
            vni: Vni::new(1_287_581).unwrap(),
            phys_ip: "fd00:0:f7:101::1".parse().unwrap(),
            dhcp: DhcpCfg::default(),
        }
    }

    #[test]
    fn test_required_nat_space() {
        let c = cfg(IpCfg::DualStack {
            ipv4: v4(),
            ipv6: v6(),
        });
        assert_eq!(c.required_nat_space(), 2 * 65_535);
    }

    #[test]
    fn test_required_nat_space_only_ipv6() {
        let c = cfg(IpCfg::Ipv6(v6()));
        assert_eq!(c.required_nat_space(), 65_535);
    }

    #[test]
    fn test_required_nat_space_only_ipv4() {
        let c = cfg(IpCfg::Ipv4(v4()));
        assert_eq!(c.required_nat_space(), 65_535);
    }

    /// The space is per family, whatever external addresses a family has.
    #[test]
    fn required_nat_space_ignores_the_external_ip_config() {
        let mut a = v4();
        a.external_ips.snat = Some(SNatCfg {
            external_ip: "10.77.77.13".parse().unwrap(),
            ports: 1025..=4096,
        });
        a.external_ips.floating_ips = alloc::vec!["10.60.1.99".parse().unwrap()];
        assert_eq!(cfg(IpCfg::Ipv4(a)).required_nat_space(), 65_535);
    }
}
