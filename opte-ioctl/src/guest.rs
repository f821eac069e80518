//! A guest's port as the VPC's control plane makes it: the port, its system routes (the VPC
//! subnet through the VPC, everything else to the internet gateway, per configured family)
//! and the VPC's default firewall; and the V2P mappings that tell every sled where the
//! guest lives. The lab, the CNI plugin and the Docker driver all make ports this way.

use crate::{Error, OpteHdl};
use opte_api::{IpAddr, IpCidr, Ipv4Cidr, Ipv4PrefixLen, Ipv6Cidr, Ipv6PrefixLen};
use oxide_vpc::api::{
    AddRouterEntryReq, ClearVirt2PhysReq, FirewallRule, PhysNet, PortAttach, RouterClass,
    RouterTarget, SetFwRulesReq, SetVirt2PhysReq, VpcCfg,
};

/// The system routes of a port with `cfg`: per family, its VPC subnet through the VPC and
/// the rest of the world through the internet gateway.
pub fn system_routes(port: &str, cfg: &VpcCfg) -> Vec<AddRouterEntryReq> {
    let mut routes = Vec::new();
    let mut add = |dest: IpCidr, target: RouterTarget| {
        routes.push(AddRouterEntryReq {
            port_name: port.into(),
            dest,
            target,
            class: RouterClass::System,
        })
    };
    if let Some(c) = cfg.ipv4() {
        let subnet = IpCidr::Ip4(c.vpc_subnet);
        add(subnet, RouterTarget::VpcSubnet(subnet));
        let all = Ipv4Cidr::new(opte_api::Ipv4Addr::ANY_ADDR, Ipv4PrefixLen::NETMASK_NONE);
        add(IpCidr::Ip4(all), RouterTarget::InternetGateway(None));
    }
    if let Some(c) = cfg.ipv6() {
        let subnet = IpCidr::Ip6(c.vpc_subnet);
        add(subnet, RouterTarget::VpcSubnet(subnet));
        let all = Ipv6Cidr::new(opte_api::Ipv6Addr::ANY_ADDR, Ipv6PrefixLen::NETMASK_NONE);
        add(IpCidr::Ip6(all), RouterTarget::InternetGateway(None));
    }
    routes
}

/// The V2P mappings of a guest with `cfg`: each of its private addresses to its MAC, its
/// sled and its VNI.
pub fn v2p(cfg: &VpcCfg) -> Vec<SetVirt2PhysReq> {
    let phys = PhysNet {
        ether: cfg.guest_mac,
        ip: cfg.phys_ip,
        vni: cfg.vni,
    };
    let v4 = cfg.ipv4().map(|c| IpAddr::Ip4(c.private_ip));
    let v6 = cfg.ipv6().map(|c| IpAddr::Ip6(c.private_ip));
    [v4, v6]
        .into_iter()
        .flatten()
        .map(|vip| SetVirt2PhysReq { vip, phys })
        .collect()
}

impl OpteHdl {
    /// Create guest port `name` with `cfg`, attached as `attach`, with its system routes
    /// and the VPC's default firewall rules. If a later step fails, the port is deleted
    /// again: either all of it is made or none of it.
    pub fn create_guest_port(
        &self,
        name: &str,
        cfg: &VpcCfg,
        mtu: Option<u32>,
        attach: PortAttach,
    ) -> Result<(), Error> {
        self.create_xde_attached(name, cfg.clone(), mtu, attach)?;
        let rest = (|| {
            for r in system_routes(name, cfg) {
                self.add_router_entry(&r)?;
            }
            self.set_firewall_rules(&SetFwRulesReq {
                port_name: name.into(),
                rules: FirewallRule::vpc_defaults(cfg.vni),
            })
        })();
        if let Err(e) = rest {
            let _ = self.delete_xde(name);
            return Err(e);
        }
        Ok(())
    }

    /// Tell this host where the guest with `cfg` lives ([`v2p`]).
    pub fn publish_guest(&self, cfg: &VpcCfg) -> Result<(), Error> {
        for m in v2p(cfg) {
            self.set_v2p(&m)?;
        }
        Ok(())
    }

    /// Withdraw what [`Self::publish_guest`] told this host. A mapping already gone (or
    /// since pointed elsewhere, which the host refuses to clear) is not an error: the
    /// point is that this guest's mapping is not there.
    pub fn withdraw_guest(&self, cfg: &VpcCfg) -> Result<(), Error> {
        for m in v2p(cfg) {
            match self.clear_v2p(&ClearVirt2PhysReq {
                vip: m.vip,
                phys: m.phys,
            }) {
                Ok(_) | Err(Error::CommandError(..)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
