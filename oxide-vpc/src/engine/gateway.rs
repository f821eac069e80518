//! The gateway layer: everything the guest's default gateway does without forwarding —
//! ARP, DHCPv4, DHCPv6, ICMP echo, Router and Neighbor Advertisements — and the anti-spoof
//! check: outbound traffic must come from the guest's MAC and private IP (or an attached
//! subnet / transit IP it may send from), inbound traffic must be for them (or for a
//! multicast group), and everything delivered to the guest appears to come from the
//! gateway's MAC. Default deny both ways.
//!
//! Not for routing or filtering: those are the router and firewall layers.

use super::meta::VpcMeta;
use crate::api::{IpCfg, VpcCfg};
use crate::tables::VpcTables;
use alloc::collections::BTreeSet;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use opte::engine::action::{Action, ActionMeta, AllowOrDeny, GenHtError, StaticAction};
use opte::engine::gateway::{
    DhcpAction, Dhcpv6Action, IcmpEchoAction, Icmpv6EchoAction, NeighborAdvertAction,
    RouterAdvertAction,
};
use opte::engine::hairpin::{Dhcp4Config, Dhcp6Config};
use opte::engine::predicate::{EtherAddrMatch, Ipv4AddrMatch, Ipv6AddrMatch, Match, Predicate};
use opte::engine::rule::Rule;
use opte::engine::transform::HdrTransform;
use opte::engine::view::PacketView;
use opte::wire::ether::{ETHER_TYPE_ARP, ETHER_TYPE_IPV4, ETHER_TYPE_IPV6};
use opte_api::{
    AddressInfo, DhcpReplyType, Direction, IcmpEchoReply, Icmpv6EchoReply, IpCidr, Ipv4Addr,
    Ipv4Cidr, Ipv4PrefixLen, Ipv6Addr, Ipv6Cidr, LeasedAddress, MacAddr, NeighborAdvertisement,
    Protocol, RouterAdvertisement, SubnetRouterPair,
};

pub const NAME: &str = "gateway";

/// ICMPv6 Router Solicitation ..= Redirect (RFC 4861).
const NDP_TYPES: core::ops::RangeInclusive<u8> = 133..=137;

/// Makes every frame delivered to the guest come from the gateway's MAC.
pub struct RewriteSrcMac {
    pub gateway_mac: MacAddr,
}

impl fmt::Display for RewriteSrcMac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ether.src={}", self.gateway_mac)
    }
}

impl StaticAction for RewriteSrcMac {
    fn gen_ht(
        &self,
        _dir: Direction,
        _view: &PacketView,
        _meta: &mut ActionMeta,
    ) -> Result<AllowOrDeny<HdrTransform>, GenHtError> {
        Ok(AllowOrDeny::Allow(HdrTransform {
            eth_src: Some(self.gateway_mac),
            ..HdrTransform::identity("rewrite_src_mac")
        }))
    }
}

fn eth_src(m: MacAddr) -> Predicate {
    Predicate::InnerEtherSrc(vec![EtherAddrMatch::Exact(m)])
}

fn eth_dst(m: MacAddr) -> Predicate {
    Predicate::InnerEtherDst(vec![EtherAddrMatch::Exact(m)])
}

fn with(mut r: Rule, preds: impl IntoIterator<Item = Predicate>) -> Rule {
    r.add_predicates(preds);
    r
}

fn src_prefix(c: IpCidr) -> Predicate {
    match c {
        IpCidr::Ip4(c) => Predicate::InnerSrcIp4(vec![Ipv4AddrMatch::Prefix(c)]),
        IpCidr::Ip6(c) => Predicate::InnerSrcIp6(vec![Ipv6AddrMatch::Prefix(c)]),
    }
}

fn dst_prefix(c: IpCidr) -> Predicate {
    match c {
        IpCidr::Ip4(c) => Predicate::InnerDstIp4(vec![Ipv4AddrMatch::Prefix(c)]),
        IpCidr::Ip6(c) => Predicate::InnerDstIp6(vec![Ipv6AddrMatch::Prefix(c)]),
    }
}

fn ndp_types() -> [Predicate; 2] {
    [
        Predicate::InnerIpProto(vec![Protocol::ICMPv6]),
        Predicate::Icmpv6MsgType(vec![Match::Range(NDP_TYPES)]),
    ]
}

/// The gateway's rules for `cfg`: (inbound, outbound).
pub fn rules(cfg: &VpcCfg, mtu: u32, tables: &Arc<VpcTables>) -> (Vec<Rule>, Vec<Rule>) {
    let (mut rin, mut rout) = (Vec::new(), Vec::new());
    let meta = Action::Meta(Arc::new(VpcMeta::new(cfg.vni, tables.clone())));
    let rewrite = Action::Static(Arc::new(RewriteSrcMac {
        gateway_mac: cfg.gateway_mac,
    }));
    let (guest, gw) = (cfg.guest_mac, cfg.gateway_mac);

    if let Some(c) = cfg.ipv4() {
        rout.push(with(
            Rule::new(1, Action::HandlePacket),
            [
                Predicate::InnerEtherType(vec![ETHER_TYPE_ARP]),
                // Broadcast requests, and the unicast ones a guest sends to confirm a
                // neighbour it already knows (RFC 1122 §2.3.2.1, Linux's probes).
                Predicate::InnerEtherDst(vec![
                    EtherAddrMatch::Exact(MacAddr::BROADCAST),
                    EtherAddrMatch::Exact(gw),
                ]),
                eth_src(guest),
            ],
        ));
        let host = Ipv4Cidr::new(c.gateway_ip, Ipv4PrefixLen::NETMASK_ALL);
        let dhcp = Dhcp4Config {
            client_mac: guest,
            client_ip: c.private_ip,
            gw_mac: gw,
            gw_ip: c.gateway_ip,
            prefix_len: Ipv4PrefixLen::NETMASK_ALL,
            // The guest's /32 reaches the gateway through an on-link host route, and
            // everything else through the gateway (RFC 3442).
            routes: vec![
                SubnetRouterPair::new(host, Ipv4Addr::ANY_ADDR),
                SubnetRouterPair::new(
                    Ipv4Cidr::new(Ipv4Addr::ANY_ADDR, Ipv4PrefixLen::NETMASK_NONE),
                    c.gateway_ip,
                ),
            ],
            cfg: cfg.dhcp.clone(),
        };
        for reply_type in [DhcpReplyType::Offer, DhcpReplyType::Ack] {
            rout.push(Rule::new(
                1,
                Action::Hairpin(Arc::new(DhcpAction {
                    cfg: dhcp.clone(),
                    reply_type,
                })),
            ));
        }
        rout.push(Rule::new(
            1,
            Action::Hairpin(Arc::new(IcmpEchoAction(IcmpEchoReply {
                echo_src_mac: guest,
                echo_src_ip: c.private_ip,
                echo_dst_mac: gw,
                echo_dst_ip: c.gateway_ip,
            }))),
        ));
        rout.push(with(
            Rule::new(1000, meta.clone()),
            [
                Predicate::InnerEtherType(vec![ETHER_TYPE_IPV4]),
                eth_src(guest),
                Predicate::InnerSrcIp4(vec![Ipv4AddrMatch::Exact(c.private_ip)]),
            ],
        ));
        rin.push(with(
            Rule::new(1000, rewrite.clone()),
            [
                Predicate::InnerEtherType(vec![ETHER_TYPE_IPV4]),
                eth_dst(guest),
                Predicate::InnerDstIp4(vec![Ipv4AddrMatch::Exact(c.private_ip)]),
            ],
        ));
        rin.push(with(
            Rule::new(1001, rewrite.clone()),
            [
                Predicate::InnerEtherType(vec![ETHER_TYPE_IPV4]),
                Predicate::InnerEtherDst(vec![EtherAddrMatch::Multicast]),
                Predicate::InnerDstIp4(vec![Ipv4AddrMatch::Prefix(Ipv4Cidr::MCAST)]),
            ],
        ));
    }

    if let Some(c) = cfg.ipv6() {
        let gw_ll = Ipv6Addr::from_eui64(&gw);
        let guest_ll = Ipv6Addr::from_eui64(&guest);
        for (prio, src) in [(1, c.private_ip), (2, guest_ll)] {
            rout.push(Rule::new(
                prio,
                Action::Hairpin(Arc::new(Icmpv6EchoAction(Icmpv6EchoReply {
                    src_mac: guest,
                    src_ip: src,
                    dst_mac: gw,
                    dst_ip: gw_ll,
                }))),
            ));
        }
        rout.push(Rule::new(
            3,
            Action::Hairpin(Arc::new(RouterAdvertAction(RouterAdvertisement::new(
                guest,
                gw,
                true,
                Some(mtu),
            )))),
        ));
        rout.push(Rule::new(
            4,
            Action::Hairpin(Arc::new(NeighborAdvertAction(NeighborAdvertisement::new(
                guest, gw, true, true,
            )))),
        ));
        rout.push(with(Rule::new(5, Action::Deny), ndp_types()));
        rout.push(Rule::new(
            1,
            Action::Hairpin(Arc::new(Dhcpv6Action {
                cfg: Dhcp6Config {
                    client_mac: guest,
                    server_mac: gw,
                    addrs: AddressInfo {
                        addrs: vec![LeasedAddress::infinite_lease(c.private_ip)],
                        renew: u32::MAX,
                    },
                    cfg: cfg.dhcp.clone(),
                },
            })),
        ));
        rout.push(with(
            Rule::new(1000, meta.clone()),
            [
                Predicate::InnerEtherType(vec![ETHER_TYPE_IPV6]),
                eth_src(guest),
                Predicate::InnerSrcIp6(vec![Ipv6AddrMatch::Exact(c.private_ip)]),
            ],
        ));
        rin.push(with(
            Rule::new(1000, rewrite.clone()),
            [
                Predicate::InnerEtherType(vec![ETHER_TYPE_IPV6]),
                eth_dst(guest),
                Predicate::InnerDstIp6(vec![Ipv6AddrMatch::Exact(c.private_ip)]),
            ],
        ));
        rin.push(with(
            Rule::new(1001, rewrite.clone()),
            [
                Predicate::InnerEtherType(vec![ETHER_TYPE_IPV6]),
                Predicate::InnerEtherDst(vec![EtherAddrMatch::Multicast]),
                Predicate::InnerDstIp6(vec![Ipv6AddrMatch::Prefix(Ipv6Cidr::MCAST)]),
            ],
        ));
        // Neighbor Discovery belongs to the link: none of it may arrive through the overlay.
        rin.push(with(Rule::new(1, Action::Deny), ndp_types()));
    }

    // Holes in the anti-spoof rules: attached subnets both ways, transit IPs as allowed.
    let (holes_in, holes_out) = exceptions(&cfg.ip_cfg);
    for c in holes_in {
        rin.push(with(
            Rule::new(1000, rewrite.clone()),
            [eth_dst(guest), dst_prefix(c)],
        ));
    }
    for c in holes_out {
        rout.push(with(
            Rule::new(1000, meta.clone()),
            [eth_src(guest), src_prefix(c)],
        ));
    }
    (rin, rout)
}

/// The prefixes the guest may receive for and send from beyond its private IPs.
fn exceptions(ip: &IpCfg) -> (BTreeSet<IpCidr>, BTreeSet<IpCidr>) {
    let (mut rin, mut rout) = (BTreeSet::new(), BTreeSet::new());
    let mut add =
        |attached: &alloc::collections::BTreeMap<IpCidr, crate::api::AttachedSubnetConfig>,
         transit: &alloc::collections::BTreeMap<IpCidr, crate::api::TransitIpConfig>| {
            for c in attached.keys() {
                rin.insert(*c);
                rout.insert(*c);
            }
            for (c, t) in transit {
                if t.allow_in {
                    rin.insert(*c);
                }
                if t.allow_out {
                    rout.insert(*c);
                }
            }
        };
    if let Some(c) = ip.ipv4() {
        add(&c.attached_subnets, &c.transit_ips);
    }
    if let Some(c) = ip.ipv6() {
        add(&c.attached_subnets, &c.transit_ips);
    }
    (rin, rout)
}
