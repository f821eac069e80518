//! The control operations on a port, as the host calls them for each command: firewall
//! rules, routes, external IPs, transit-IP exceptions and attached subnets.
//!
//! Each operation validates the whole request (port state, address families, targets)
//! before changing anything, computes the new configuration and rules aside, and only then
//! installs them, so a rejected request leaves the port exactly as it was. Each accepted
//! change is one epoch bump per layer it rewrites.

use super::{RouteKey, VpcPort, firewall, gateway, nat, router};
use crate::api::{
    AttachedSubnetConfig, DelRouterEntryResp, DetachSubnetResp, FirewallRule, RemoveCidrResp,
    RouterClass, RouterTarget, SetExternalIpsReq, TransitIpConfig, VpcCfg,
};
use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;
use opte::engine::port::PortState;
use opte::engine::probe::Probes;
use opte_api::{Direction, IpCidr, OpteError, RuleId};

impl<P: Probes> VpcPort<P> {
    fn require_editable(&self) -> Result<(), OpteError> {
        match self.port.state() {
            PortState::Ready | PortState::Running => Ok(()),
            s => Err(OpteError::BadState(alloc::format!("{s}"))),
        }
    }

    pub fn add_fw_rule(&mut self, rule: &FirewallRule) -> Result<RuleId, OpteError> {
        self.port
            .add_rule(firewall::NAME, rule.direction, firewall::engine_rule(rule))
    }

    pub fn rem_fw_rule(&mut self, dir: Direction, id: RuleId) -> Result<(), OpteError> {
        self.port.remove_rule(firewall::NAME, dir, id)
    }

    /// Replace every firewall rule (both directions) and forget the firewall's flows.
    pub fn set_fw_rules(&mut self, rules: &[FirewallRule]) -> Result<(), OpteError> {
        let (i, o) = firewall::engine_rules(rules);
        self.port.set_rules(firewall::NAME, i, o)
    }

    /// Add a route; adding one that exists is a no-op.
    pub fn add_router_entry(
        &mut self,
        dest: IpCidr,
        target: RouterTarget,
        class: RouterClass,
    ) -> Result<(), OpteError> {
        let rule = router::make_rule(dest, target, class)?;
        let key = (dest, target, class);
        if self.routes.contains_key(&key) {
            return Ok(());
        }
        let id = self.port.add_rule(router::NAME, Direction::Out, rule)?;
        self.routes.insert(key, id);
        Ok(())
    }

    /// Remove the route with exactly this destination, target and class.
    pub fn del_router_entry(
        &mut self,
        dest: IpCidr,
        target: RouterTarget,
        class: RouterClass,
    ) -> Result<DelRouterEntryResp, OpteError> {
        router::make_rule(dest, target, class)?;
        self.require_editable()?;
        let Some(id) = self.routes.get(&(dest, target, class)).copied() else {
            return Ok(DelRouterEntryResp::NotFound);
        };
        self.port.remove_rule(router::NAME, Direction::Out, id)?;
        self.routes.remove(&(dest, target, class));
        Ok(DelRouterEntryResp::Ok)
    }

    /// Replace every route. The built-in multicast rule stays (the reference's replace
    /// dropped it, SPEC §13 quirk 3).
    pub fn set_router_entries(&mut self, entries: &[RouteKey]) -> Result<(), OpteError> {
        let mut rules = vec![router::multicast_rule()];
        for (d, t, c) in entries {
            rules.push(router::make_rule(*d, *t, *c)?);
        }
        self.port.set_rules(router::NAME, vec![], rules)?;
        // Ids were reassigned; find them again by position of the routes' rules.
        self.routes.clear();
        let dump = self.port.dump_layer(router::NAME)?;
        for key in entries {
            let Ok(r) = router::make_rule(key.0, key.1, key.2) else {
                continue;
            };
            let rd = r.dump();
            let taken: Vec<RuleId> = self.routes.values().copied().collect();
            if let Some(e) = dump
                .rules_out
                .iter()
                .find(|e| e.rule == rd && !taken.contains(&e.id))
            {
                self.routes.insert(*key, e.id);
            }
        }
        Ok(())
    }

    pub fn routes(&self) -> impl Iterator<Item = &RouteKey> {
        self.routes.keys()
    }

    /// Replace the external IP configuration. NAT flows whose external IP is still
    /// assigned keep it; the rest are re-evaluated on their next packet.
    pub fn set_external_ips(&mut self, req: &SetExternalIpsReq) -> Result<(), OpteError> {
        self.require_editable()?;
        if (req.external_ips_v4.is_some() && self.cfg.ipv4().is_none())
            || (req.external_ips_v6.is_some() && self.cfg.ipv6().is_none())
        {
            return Err(OpteError::InvalidIpCfg);
        }
        let mut cfg = self.cfg.clone();
        if let Some(c) = cfg.ip_cfg.ipv4_mut() {
            c.external_ips = req.external_ips_v4.clone().unwrap_or_default();
        }
        if let Some(c) = cfg.ip_cfg.ipv6_mut() {
            c.external_ips = req.external_ips_v6.clone().unwrap_or_default();
        }
        let igw = req.inet_gw_map.clone().unwrap_or_default();
        let (i, o) = nat::rules(&cfg, &igw, &self.ext_ips);
        self.ext_ips.set(
            cfg.ipv4()
                .map(|c| c.external_ips.clone())
                .unwrap_or_default(),
            cfg.ipv6()
                .map(|c| c.external_ips.clone())
                .unwrap_or_default(),
        );
        self.port.set_rules_soft(nat::NAME, i, o)?;
        self.cfg = cfg;
        self.igw_map = igw;
        Ok(())
    }

    /// Let the guest send from (`Out`) or receive for (`In`) a prefix it does not own.
    pub fn allow_cidr(&mut self, cidr: IpCidr, dir: Direction) -> Result<(), OpteError> {
        self.require_editable()?;
        let mut cfg = self.cfg.clone();
        let t = transit_ips(&mut cfg, cidr)?.entry(cidr).or_default();
        match dir {
            Direction::In => t.allow_in = true,
            Direction::Out => t.allow_out = true,
        }
        self.apply_gateway(cfg)
    }

    pub fn remove_cidr(
        &mut self,
        cidr: IpCidr,
        dir: Direction,
    ) -> Result<RemoveCidrResp, OpteError> {
        self.require_editable()?;
        let mut cfg = self.cfg.clone();
        let m = transit_ips(&mut cfg, cidr)?;
        let Some(t) = m.get_mut(&cidr) else {
            return Ok(RemoveCidrResp::NotFound);
        };
        match dir {
            Direction::In => t.allow_in = false,
            Direction::Out => t.allow_out = false,
        }
        if !t.allow_in && !t.allow_out {
            m.remove(&cidr);
        }
        self.apply_gateway(cfg)?;
        Ok(RemoveCidrResp::Ok(cidr))
    }

    /// Attach (or reconfigure) a subnet routed to this guest.
    pub fn attach_subnet(
        &mut self,
        cidr: IpCidr,
        sub: AttachedSubnetConfig,
    ) -> Result<(), OpteError> {
        self.require_editable()?;
        let mut cfg = self.cfg.clone();
        let m = attached_subnets(&mut cfg, cidr)?;
        if m.get(&cidr) == Some(&sub) {
            return Ok(());
        }
        m.insert(cidr, sub);
        self.apply_subnets(cfg)
    }

    pub fn detach_subnet(&mut self, cidr: IpCidr) -> Result<DetachSubnetResp, OpteError> {
        self.require_editable()?;
        let mut cfg = self.cfg.clone();
        if attached_subnets(&mut cfg, cidr)?.remove(&cidr).is_none() {
            return Ok(DetachSubnetResp::NotFound);
        }
        self.apply_subnets(cfg)?;
        Ok(DetachSubnetResp::Ok(cidr))
    }

    fn apply_gateway(&mut self, cfg: VpcCfg) -> Result<(), OpteError> {
        let (i, o) = gateway::rules(&cfg, self.mtu, &self.tables);
        self.port.set_rules(gateway::NAME, i, o)?;
        self.cfg = cfg;
        Ok(())
    }

    fn apply_subnets(&mut self, cfg: VpcCfg) -> Result<(), OpteError> {
        let (ni, no) = nat::rules(&cfg, &self.igw_map, &self.ext_ips);
        let (gi, go) = gateway::rules(&cfg, self.mtu, &self.tables);
        self.port.set_rules_soft(nat::NAME, ni, no)?;
        self.port.set_rules(gateway::NAME, gi, go)?;
        self.cfg = cfg;
        Ok(())
    }
}

fn transit_ips(
    cfg: &mut VpcCfg,
    cidr: IpCidr,
) -> Result<&mut BTreeMap<IpCidr, TransitIpConfig>, OpteError> {
    match cidr {
        IpCidr::Ip4(_) => cfg.ip_cfg.ipv4_mut().map(|c| &mut c.transit_ips),
        IpCidr::Ip6(_) => cfg.ip_cfg.ipv6_mut().map(|c| &mut c.transit_ips),
    }
    .ok_or(OpteError::InvalidIpCfg)
}

fn attached_subnets(
    cfg: &mut VpcCfg,
    cidr: IpCidr,
) -> Result<&mut BTreeMap<IpCidr, AttachedSubnetConfig>, OpteError> {
    match cidr {
        IpCidr::Ip4(_) => cfg.ip_cfg.ipv4_mut().map(|c| &mut c.attached_subnets),
        IpCidr::Ip6(_) => cfg.ip_cfg.ipv6_mut().map(|c| &mut c.attached_subnets),
    }
    .ok_or(OpteError::InvalidIpCfg)
}
