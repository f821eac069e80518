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

pub mod cmd;
pub use router::{InternetGatewayMap, RouterClass, RouterTarget, Uuid};

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::cmp::Ordering;
use core::fmt;
use core::ops::RangeInclusive;
use opte_api::{
    DhcpCfg, IpAddr, IpCidr, Ipv4Addr, Ipv4Cidr, Ipv6Addr, Ipv6Cidr, MacAddr, OpteError, Vni,
};
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

    /// Check the configuration is one a port can be built from, saying what is wrong: each
    /// family's private and gateway addresses inside its VPC subnet and different, usable
    /// (not multicast, broadcast or unspecified), unicast MACs, a non-empty SNAT port
    /// range without port 0, external addresses outside the VPC
    /// subnet, and an underlay address a sled can have.
    pub fn validate(&self) -> Result<(), OpteError> {
        let bad = |m: String| Err(OpteError::PortCreate(m));
        if self.guest_mac.is_group() || self.guest_mac == MacAddr::ZERO {
            return bad(format!(
                "guest MAC {} is not a unicast address",
                self.guest_mac
            ));
        }
        if self.gateway_mac.is_group() || self.gateway_mac == MacAddr::ZERO {
            return bad(format!(
                "gateway MAC {} is not a unicast address",
                self.gateway_mac
            ));
        }
        if self.guest_mac == self.gateway_mac {
            return bad(format!("guest and gateway share MAC {}", self.guest_mac));
        }
        let p = self.phys_ip;
        if p == Ipv6Addr::ANY_ADDR || p == Ipv6Addr::LOCALHOST || p.is_multicast() {
            return bad(format!("underlay address {p} cannot be a sled's"));
        }
        if let Some(c) = self.ipv4() {
            let sub = c.vpc_subnet;
            let usable = |a: Ipv4Addr| {
                sub.is_member(a)
                    && a != sub.ip()
                    && a != Ipv4Addr::LOCAL_BCAST
                    && !a.is_multicast()
                    && (sub.prefix_len() >= 31 || a != sub.broadcast())
            };
            check_family(
                "IPv4",
                c.private_ip,
                c.gateway_ip,
                &sub,
                usable,
                &c.external_ips,
                |a| sub.is_member(a),
            )?;
        }
        if let Some(c) = self.ipv6() {
            let sub = c.vpc_subnet;
            let usable = |a: Ipv6Addr| sub.is_member(a) && a != sub.ip() && !a.is_multicast();
            check_family(
                "IPv6",
                c.private_ip,
                c.gateway_ip,
                &sub,
                usable,
                &c.external_ips,
                |a| sub.is_member(a),
            )?;
        }
        Ok(())
    }

    /// Whether `ip` is one of the guest's private addresses.
    pub fn is_private_ip(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::Ip4(a) => self.ipv4().is_some_and(|c| c.private_ip == a),
            IpAddr::Ip6(a) => self.ipv6().is_some_and(|c| c.private_ip == a),
        }
    }
}

fn check_family<A: Copy + PartialEq + fmt::Display, S: fmt::Display>(
    fam: &str,
    private: A,
    gateway: A,
    subnet: &S,
    usable: impl Fn(A) -> bool,
    ext: &ExternalIpCfg<A>,
    in_subnet: impl Fn(A) -> bool,
) -> Result<(), OpteError> {
    let bad = |m: String| Err(OpteError::PortCreate(m));
    if !usable(private) {
        return bad(format!(
            "{fam} private address {private} is not a usable host address of {subnet}"
        ));
    }
    if !usable(gateway) {
        return bad(format!(
            "{fam} gateway address {gateway} is not a usable host address of {subnet}"
        ));
    }
    if private == gateway {
        return bad(format!(
            "{fam} private and gateway address are both {private}"
        ));
    }
    if let Some(sn) = &ext.snat {
        let (lo, hi) = (*sn.ports.start(), *sn.ports.end());
        if lo > hi || lo == 0 {
            return bad(format!(
                "{fam} SNAT port range {lo}-{hi} must be non-empty and exclude port 0"
            ));
        }
    }
    let externals = ext
        .snat
        .iter()
        .map(|s| s.external_ip)
        .chain(ext.ephemeral_ip)
        .chain(ext.floating_ips.iter().copied());
    for a in externals {
        if in_subnet(a) {
            return bad(format!(
                "{fam} external address {a} lies inside the VPC subnet {subnet}"
            ));
        }
    }
    Ok(())
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
    fn validate_accepts_a_sound_config_and_says_what_is_wrong_otherwise() {
        let good = cfg(IpCfg::DualStack {
            ipv4: v4(),
            ipv6: v6(),
        });
        assert_eq!(good.validate(), Ok(()));
        let msg = |c: VpcCfg| match c.validate() {
            Err(OpteError::PortCreate(m)) => m,
            other => panic!("expected PortCreate, got {other:?}"),
        };
        let with4 = |f: &dyn Fn(&mut Ipv4Cfg)| {
            let mut a = v4();
            f(&mut a);
            cfg(IpCfg::Ipv4(a))
        };
        assert_eq!(
            msg(with4(&|a| a.private_ip = "10.0.0.5".parse().unwrap())),
            "IPv4 private address 10.0.0.5 is not a usable host address of 172.30.0.0/22"
        );
        assert!(msg(with4(&|a| a.private_ip = "172.30.3.255".parse().unwrap())).contains("usable"));
        assert!(msg(with4(&|a| a.gateway_ip = "172.30.0.0".parse().unwrap())).contains("gateway"));
        assert_eq!(
            msg(with4(&|a| a.gateway_ip = a.private_ip)),
            "IPv4 private and gateway address are both 172.30.0.5"
        );
        assert_eq!(
            msg(with4(&|a| a.external_ips.snat = Some(SNatCfg {
                external_ip: "10.77.77.13".parse().unwrap(),
                #[allow(clippy::reversed_empty_ranges)]
                ports: 4096..=1025,
            }))),
            "IPv4 SNAT port range 4096-1025 must be non-empty and exclude port 0"
        );
        assert!(
            msg(with4(
                &|a| a.external_ips.ephemeral_ip = Some("172.30.0.9".parse().unwrap())
            ))
            .contains("inside the VPC subnet")
        );
        let mut v6bad = v6();
        v6bad.private_ip = "ff02::5".parse().unwrap();
        assert!(msg(cfg(IpCfg::Ipv6(v6bad))).starts_with("IPv6 private address ff02::5"));
        let mut c = good.clone();
        c.guest_mac = MacAddr::BROADCAST;
        assert!(msg(c).starts_with("guest MAC"));
        let mut c = good.clone();
        c.gateway_mac = c.guest_mac;
        assert_eq!(msg(c), "guest and gateway share MAC A8:40:25:FA:FA:37");
        let mut c = good;
        c.phys_ip = Ipv6Addr::ANY_ADDR;
        assert_eq!(msg(c), "underlay address :: cannot be a sled's");
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
