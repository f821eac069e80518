//! The NAT layer: which external address a guest's internet traffic leaves from, and the
//! way back in. Preference: an external attached subnet (no NAT at all) > a floating IP >
//! the ephemeral IP > source NAT; the choice is limited to addresses usable through the
//! internet gateway the router picked. Internet-bound traffic that finds no usable address
//! is dropped here rather than leaving with a private source.
//!
//! 1:1 NAT flows survive an external-IP change as long as their external IP is still
//! assigned (the [`ExternalIps`] verifier), so established connections keep their address.

use crate::api::{ExternalIpCfg, InternetGatewayMap, VpcCfg};
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::ToString;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use opte::engine::action::{Action, meta_keys};
use opte::engine::nat::{ExternalIpTagger, InboundNat, NatPool, NatVerifier, OutboundNat, SNat};
use opte::engine::predicate::{Ipv4AddrMatch, Ipv6AddrMatch, Predicate};
use opte::engine::rule::Rule;
use opte::sync::Mutex;
use opte::wire::ether::{ETHER_TYPE_IPV4, ETHER_TYPE_IPV6};
use opte_api::{IpAddr, IpCidr, Ipv4Addr, Ipv6Addr};

pub const NAME: &str = "nat";

/// The external IPs currently assigned, shared by every NAT descriptor of the port.
#[derive(Debug, Default)]
pub struct ExternalIps {
    inner: Mutex<(ExternalIpCfg<Ipv4Addr>, ExternalIpCfg<Ipv6Addr>)>,
}

impl ExternalIps {
    pub fn set(&self, v4: ExternalIpCfg<Ipv4Addr>, v6: ExternalIpCfg<Ipv6Addr>) {
        *self.inner.lock() = (v4, v6);
    }
}

impl NatVerifier for ExternalIps {
    fn is_valid(&self, external: IpAddr) -> bool {
        let g = self.inner.lock();
        match external {
            IpAddr::Ip4(a) => g.0.is_nat_ip(a),
            IpAddr::Ip6(a) => g.1.is_nat_ip(a),
        }
    }
}

/// The internet gateways an external IP may be used through; `[None]` if the map does not
/// mention it (usable through any).
fn igws(map: &InternetGatewayMap, ip: IpAddr) -> Vec<Option<crate::api::Uuid>> {
    match map.get(&ip) {
        Some(s) if !s.is_empty() => s.iter().copied().map(Some).collect(),
        _ => vec![None],
    }
}

/// The predicate "the router chose this internet gateway" (`None`: any internet gateway).
fn via(igw: Option<crate::api::Uuid>) -> Predicate {
    match igw {
        Some(u) => Predicate::Meta(
            meta_keys::ROUTER_TARGET.into(),
            crate::api::RouterTarget::InternetGateway(Some(u)).to_string(),
        ),
        None => Predicate::Meta(meta_keys::ROUTER_TARGET_CLASS.into(), "ig".into()),
    }
}

/// One family's view of the config, in generic form.
struct Family {
    ether_type: u16,
    private: IpAddr,
    ext: ExternalIpCfg<IpAddr>,
    external_subnets: Vec<IpCidr>,
}

fn families(cfg: &VpcCfg) -> Vec<Family> {
    let mut v = Vec::new();
    let ext_subnets = |m: &BTreeMap<IpCidr, crate::api::AttachedSubnetConfig>| {
        m.iter()
            .filter(|(_, c)| c.is_external)
            .map(|(k, _)| *k)
            .collect::<Vec<_>>()
    };
    if let Some(c) = cfg.ipv4() {
        let e = &c.external_ips;
        v.push(Family {
            ether_type: ETHER_TYPE_IPV4,
            private: IpAddr::Ip4(c.private_ip),
            ext: ExternalIpCfg {
                snat: e.snat.as_ref().map(|s| crate::api::SNatCfg {
                    external_ip: IpAddr::Ip4(s.external_ip),
                    ports: s.ports.clone(),
                }),
                ephemeral_ip: e.ephemeral_ip.map(IpAddr::Ip4),
                floating_ips: e.floating_ips.iter().copied().map(IpAddr::Ip4).collect(),
            },
            external_subnets: ext_subnets(&c.attached_subnets),
        });
    }
    if let Some(c) = cfg.ipv6() {
        let e = &c.external_ips;
        v.push(Family {
            ether_type: ETHER_TYPE_IPV6,
            private: IpAddr::Ip6(c.private_ip),
            ext: ExternalIpCfg {
                snat: e.snat.as_ref().map(|s| crate::api::SNatCfg {
                    external_ip: IpAddr::Ip6(s.external_ip),
                    ports: s.ports.clone(),
                }),
                ephemeral_ip: e.ephemeral_ip.map(IpAddr::Ip6),
                floating_ips: e.floating_ips.iter().copied().map(IpAddr::Ip6).collect(),
            },
            external_subnets: ext_subnets(&c.attached_subnets),
        });
    }
    v
}

fn src_exact(ip: IpAddr) -> Predicate {
    match ip {
        IpAddr::Ip4(a) => Predicate::InnerSrcIp4(vec![Ipv4AddrMatch::Exact(a)]),
        IpAddr::Ip6(a) => Predicate::InnerSrcIp6(vec![Ipv6AddrMatch::Exact(a)]),
    }
}

fn dst_any(ips: &[IpAddr]) -> Predicate {
    Predicate::Any(
        ips.iter()
            .map(|ip| match ip {
                IpAddr::Ip4(a) => Predicate::InnerDstIp4(vec![Ipv4AddrMatch::Exact(*a)]),
                IpAddr::Ip6(a) => Predicate::InnerDstIp6(vec![Ipv6AddrMatch::Exact(*a)]),
            })
            .collect(),
    )
}

fn prefixes(cs: &[IpCidr], src: bool) -> Predicate {
    Predicate::Any(
        cs.iter()
            .map(|c| match (c, src) {
                (IpCidr::Ip4(c), true) => Predicate::InnerSrcIp4(vec![Ipv4AddrMatch::Prefix(*c)]),
                (IpCidr::Ip4(c), false) => Predicate::InnerDstIp4(vec![Ipv4AddrMatch::Prefix(*c)]),
                (IpCidr::Ip6(c), true) => Predicate::InnerSrcIp6(vec![Ipv6AddrMatch::Prefix(*c)]),
                (IpCidr::Ip6(c), false) => Predicate::InnerDstIp6(vec![Ipv6AddrMatch::Prefix(*c)]),
            })
            .collect(),
    )
}

/// The NAT rules for `cfg` and `igw_map`: (inbound, outbound).
pub fn rules(
    cfg: &VpcCfg,
    igw_map: &InternetGatewayMap,
    verifier: &Arc<ExternalIps>,
) -> (Vec<Rule>, Vec<Rule>) {
    let (mut rin, mut rout) = (Vec::new(), Vec::new());
    let ver: Arc<dyn NatVerifier> = verifier.clone();
    let fams = families(cfg);
    for f in &fams {
        let base = |prio: u16, a: Action, igw: Option<crate::api::Uuid>| {
            let mut r = Rule::new(prio, a);
            r.add_predicate(Predicate::InnerEtherType(vec![f.ether_type]));
            r.add_predicate(src_exact(f.private));
            r.add_predicate(via(igw));
            r
        };
        if !f.external_subnets.is_empty() {
            let mut o = Rule::new(4, Action::Meta(Arc::new(ExternalIpTagger)));
            o.add_predicate(prefixes(&f.external_subnets, true));
            rout.push(o);
            let mut i = Rule::new(4, Action::Allow);
            i.add_predicate(prefixes(&f.external_subnets, false));
            rin.push(i);
        }
        if !f.ext.floating_ips.is_empty() {
            let mut groups: BTreeMap<Option<crate::api::Uuid>, BTreeSet<IpAddr>> = BTreeMap::new();
            for ip in &f.ext.floating_ips {
                for g in igws(igw_map, *ip) {
                    groups.entry(g).or_default().insert(*ip);
                }
            }
            for (g, ips) in groups {
                let nat = OutboundNat::new(f.private, ips.into_iter().collect(), ver.clone());
                rout.push(base(5, Action::Stateful(Arc::new(nat)), g));
            }
            let mut i = Rule::new(
                5,
                Action::Stateful(Arc::new(InboundNat::new(f.private, ver.clone()))),
            );
            i.add_predicate(dst_any(&f.ext.floating_ips));
            rin.push(i);
        }
        if let Some(eip) = f.ext.ephemeral_ip {
            for g in igws(igw_map, eip) {
                let nat = OutboundNat::new(f.private, vec![eip], ver.clone());
                rout.push(base(10, Action::Stateful(Arc::new(nat)), g));
            }
            let mut i = Rule::new(
                10,
                Action::Stateful(Arc::new(InboundNat::new(f.private, ver.clone()))),
            );
            i.add_predicate(dst_any(&[eip]));
            rin.push(i);
        }
        if let Some(s) = &f.ext.snat {
            // One set of pools whichever gateway the route names: a port is a port.
            let pool = || {
                let mut p = NatPool::new();
                p.add(f.private, s.external_ip, s.ports.clone());
                Arc::new(Mutex::new(p))
            };
            let (tcp, udp, icmp) = (pool(), pool(), pool());
            for g in igws(igw_map, s.external_ip) {
                let snat = SNat::new(f.private, tcp.clone(), udp.clone(), icmp.clone());
                rout.push(base(100, Action::Stateful(Arc::new(snat)), g));
            }
        }
    }
    if !fams.is_empty() {
        let mut deny = Rule::new(255, Action::Deny);
        deny.add_predicate(via(None));
        rout.push(deny);
    }
    (rin, rout)
}
