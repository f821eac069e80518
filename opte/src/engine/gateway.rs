//! The hairpin generators as rule actions: each carries its configuration and the implicit
//! predicates (SPEC §2.18) that keep every other packet away from it, so a rule made with
//! `Rule::new(prio, Action::Hairpin(..))` matches exactly the requests it answers.
//!
//! A rule's predicates are checked in order until one fails, and most packets a gateway sees
//! are not requests at all, so each list starts with the test that rejects the most: the
//! message type or the UDP ports, before addresses.

use super::action::{AllowOrDeny, GenPacketError, HairpinAction, ImplicitPreds};
use super::hairpin::{
    self, Dhcp4Config, Dhcp6Config, GenErr, HairpinReply, gen_dhcp4_reply, gen_dhcp6_reply,
    gen_icmp4_echo_reply, gen_icmp6_echo_reply, gen_neighbor_advert, gen_router_advert,
};
use super::predicate::{
    DataPredicate, EtherAddrMatch, Ipv4AddrMatch, Ipv6AddrMatch, Match, Predicate,
};
use crate::packet::Packet;
use crate::packet::parse::InnerMeta;
use crate::wire::ether::ETHER_TYPE_ARP;
use crate::wire::icmp::{v4_type, v6_type};
use alloc::format;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use opte_api::{
    DhcpReplyType, IcmpEchoReply, Icmpv6EchoReply, Ipv4Addr, Ipv6Addr, Ipv6Cidr, MacAddr,
    NeighborAdvertisement, Protocol, RouterAdvertisement,
};

/// DHCPv4 message types (RFC 2132 §9.6).
const DHCP_DISCOVER: u8 = 1;
const DHCP_REQUEST: u8 = 3;

fn reply(r: Result<HairpinReply, GenErr>) -> Result<AllowOrDeny<Vec<u8>>, GenPacketError> {
    match r {
        Ok(HairpinReply::Reply(f)) => Ok(AllowOrDeny::Allow(f)),
        Ok(HairpinReply::NoReply) => Ok(AllowOrDeny::Deny),
        Err(e) => Err(GenPacketError(format!("{e}"))),
    }
}

fn eth_src(m: MacAddr) -> Predicate {
    Predicate::InnerEtherSrc(vec![EtherAddrMatch::Exact(m)])
}

fn eth_dst(m: MacAddr) -> Predicate {
    Predicate::InnerEtherDst(vec![EtherAddrMatch::Exact(m)])
}

/// Answers ARP requests for the gateway's IPv4 address.
pub struct ArpReply {
    pub gw_mac: MacAddr,
    pub gw_ip: Ipv4Addr,
}

impl fmt::Display for ArpReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ARP {} is-at {}", self.gw_ip, self.gw_mac)
    }
}

impl HairpinAction for ArpReply {
    fn implicit_preds(&self) -> ImplicitPreds {
        (
            vec![Predicate::InnerEtherType(vec![ETHER_TYPE_ARP])],
            vec![],
        )
    }

    fn gen_packet(
        &self,
        pkt: &Packet,
        meta: &InnerMeta,
    ) -> Result<AllowOrDeny<Vec<u8>>, GenPacketError> {
        reply(hairpin::gen_arp_reply(pkt, meta, self.gw_mac, self.gw_ip))
    }
}

/// The DHCPv4 server: Offer for Discover, or Ack for Request.
pub struct DhcpAction {
    pub cfg: Dhcp4Config,
    pub reply_type: DhcpReplyType,
}

impl fmt::Display for DhcpAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DHCP {:?} {}/{}",
            self.reply_type,
            self.cfg.client_ip,
            self.cfg.prefix_len.val()
        )
    }
}

impl HairpinAction for DhcpAction {
    fn implicit_preds(&self) -> ImplicitPreds {
        let msg = match self.reply_type {
            DhcpReplyType::Offer => DHCP_DISCOVER,
            DhcpReplyType::Ack => DHCP_REQUEST,
        };
        (
            vec![
                Predicate::InnerDstPort(vec![Match::Exact(67)]),
                Predicate::InnerSrcPort(vec![Match::Exact(68)]),
                Predicate::InnerIpProto(vec![Protocol::UDP]),
                eth_dst(MacAddr::BROADCAST),
                eth_src(self.cfg.client_mac),
                Predicate::InnerSrcIp4(vec![Ipv4AddrMatch::Exact(Ipv4Addr::ANY_ADDR)]),
                Predicate::InnerDstIp4(vec![Ipv4AddrMatch::Exact(Ipv4Addr::from_const([255; 4]))]),
            ],
            vec![DataPredicate::DhcpMsgType(Match::Exact(msg))],
        )
    }

    fn gen_packet(
        &self,
        pkt: &Packet,
        meta: &InnerMeta,
    ) -> Result<AllowOrDeny<Vec<u8>>, GenPacketError> {
        reply(gen_dhcp4_reply(pkt, meta, &self.cfg))
    }
}

/// The DHCPv6 server.
pub struct Dhcpv6Action {
    pub cfg: Dhcp6Config,
}

impl fmt::Display for Dhcpv6Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DHCPv6 for {}", self.cfg.client_mac)
    }
}

/// ff02::1:2, All_DHCP_Relay_Agents_and_Servers; ff05::1:3, All_DHCP_Servers (RFC 8415 §7.1).
const DHCP6_AGENTS: Ipv6Addr = Ipv6Addr::from_segments([0xff02, 0, 0, 0, 0, 0, 1, 2]);
const DHCP6_SERVERS: Ipv6Addr = Ipv6Addr::from_segments([0xff05, 0, 0, 0, 0, 0, 1, 3]);

impl HairpinAction for Dhcpv6Action {
    fn implicit_preds(&self) -> ImplicitPreds {
        (
            vec![
                Predicate::InnerDstPort(vec![Match::Exact(547)]),
                Predicate::InnerSrcPort(vec![Match::Exact(546)]),
                Predicate::InnerIpProto(vec![Protocol::UDP]),
                eth_src(self.cfg.client_mac),
                Predicate::InnerSrcIp6(vec![Ipv6AddrMatch::Prefix(Ipv6Cidr::LINK_LOCAL)]),
                Predicate::InnerDstIp6(vec![
                    Ipv6AddrMatch::Exact(DHCP6_AGENTS),
                    Ipv6AddrMatch::Exact(DHCP6_SERVERS),
                ]),
            ],
            vec![],
        )
    }

    fn gen_packet(
        &self,
        pkt: &Packet,
        meta: &InnerMeta,
    ) -> Result<AllowOrDeny<Vec<u8>>, GenPacketError> {
        reply(gen_dhcp6_reply(pkt, meta, &self.cfg))
    }
}

/// Echo replies from the gateway's IPv4 address.
pub struct IcmpEchoAction(pub IcmpEchoReply);

impl fmt::Display for IcmpEchoAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ICMPv4 Echo Reply {} -> {}",
            self.0.echo_dst_ip, self.0.echo_src_ip
        )
    }
}

impl HairpinAction for IcmpEchoAction {
    fn implicit_preds(&self) -> ImplicitPreds {
        let c = &self.0;
        (
            vec![
                Predicate::IcmpMsgType(vec![Match::Exact(v4_type::ECHO_REQUEST)]),
                Predicate::InnerIpProto(vec![Protocol::ICMP]),
                Predicate::InnerDstIp4(vec![Ipv4AddrMatch::Exact(c.echo_dst_ip)]),
                Predicate::InnerSrcIp4(vec![Ipv4AddrMatch::Exact(c.echo_src_ip)]),
                eth_src(c.echo_src_mac),
                eth_dst(c.echo_dst_mac),
            ],
            vec![],
        )
    }

    fn gen_packet(
        &self,
        pkt: &Packet,
        meta: &InnerMeta,
    ) -> Result<AllowOrDeny<Vec<u8>>, GenPacketError> {
        reply(gen_icmp4_echo_reply(pkt, meta, &self.0))
    }
}

/// Echo replies from one of the gateway's IPv6 addresses.
pub struct Icmpv6EchoAction(pub Icmpv6EchoReply);

impl fmt::Display for Icmpv6EchoAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ICMPv6 Echo Reply {} -> {}",
            self.0.dst_ip, self.0.src_ip
        )
    }
}

impl HairpinAction for Icmpv6EchoAction {
    fn implicit_preds(&self) -> ImplicitPreds {
        let c = &self.0;
        (
            vec![
                Predicate::Icmpv6MsgType(vec![Match::Exact(v6_type::ECHO_REQUEST)]),
                Predicate::InnerIpProto(vec![Protocol::ICMPv6]),
                Predicate::InnerSrcIp6(vec![Ipv6AddrMatch::Exact(c.src_ip)]),
                Predicate::InnerDstIp6(vec![Ipv6AddrMatch::Exact(c.dst_ip)]),
                eth_src(c.src_mac),
                eth_dst(c.dst_mac),
            ],
            vec![],
        )
    }

    fn gen_packet(
        &self,
        pkt: &Packet,
        meta: &InnerMeta,
    ) -> Result<AllowOrDeny<Vec<u8>>, GenPacketError> {
        reply(gen_icmp6_echo_reply(pkt, meta, &self.0))
    }
}

/// Router Advertisements in answer to Router Solicitations.
pub struct RouterAdvertAction(pub RouterAdvertisement);

impl fmt::Display for RouterAdvertAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NDP RA from {}", self.0.ip())
    }
}

impl HairpinAction for RouterAdvertAction {
    fn implicit_preds(&self) -> ImplicitPreds {
        (
            vec![
                Predicate::Icmpv6MsgType(vec![Match::Exact(v6_type::ROUTER_SOLICIT)]),
                Predicate::InnerIpProto(vec![Protocol::ICMPv6]),
                eth_src(self.0.src_mac()),
                eth_dst(MacAddr::from_const([0x33, 0x33, 0, 0, 0, 2])),
                Predicate::InnerSrcIp6(vec![Ipv6AddrMatch::Prefix(Ipv6Cidr::LINK_LOCAL)]),
                Predicate::InnerDstIp6(vec![Ipv6AddrMatch::Exact(Ipv6Addr::ALL_ROUTERS)]),
            ],
            vec![],
        )
    }

    fn gen_packet(
        &self,
        pkt: &Packet,
        meta: &InnerMeta,
    ) -> Result<AllowOrDeny<Vec<u8>>, GenPacketError> {
        reply(gen_router_advert(pkt, meta, &self.0))
    }
}

/// Neighbor Advertisements for the gateway's link-local address.
pub struct NeighborAdvertAction(pub NeighborAdvertisement);

impl fmt::Display for NeighborAdvertAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NDP NA for {}", self.0.ip())
    }
}

impl HairpinAction for NeighborAdvertAction {
    fn implicit_preds(&self) -> ImplicitPreds {
        let na = &self.0;
        let sn = na.ip().solicited_node_multicast();
        let mut dst_mac = vec![EtherAddrMatch::Exact(na.mac())];
        if let Some(m) = sn.multicast_mac() {
            dst_mac.push(EtherAddrMatch::Exact(m));
        }
        // Any source: RFC 4861 §7.2.2 has a host solicit from the source of the packet
        // that needs the neighbour when it has that address, so a guest whose only
        // global address is its VPC address solicits from it (Linux does), not from its
        // link-local one (the reference answers only link-local sources: a quirk that
        // leaves such a guest without a gateway). `::` is refused in `gen_packet` unless
        // allowed.
        (
            vec![
                Predicate::Icmpv6MsgType(vec![Match::Exact(v6_type::NEIGHBOR_SOLICIT)]),
                Predicate::InnerIpProto(vec![Protocol::ICMPv6]),
                eth_src(na.src_mac()),
                Predicate::InnerEtherDst(dst_mac),
                Predicate::InnerDstIp6(vec![
                    Ipv6AddrMatch::Exact(na.ip()),
                    Ipv6AddrMatch::Exact(sn),
                ]),
            ],
            vec![],
        )
    }

    fn gen_packet(
        &self,
        pkt: &Packet,
        meta: &InnerMeta,
    ) -> Result<AllowOrDeny<Vec<u8>>, GenPacketError> {
        reply(gen_neighbor_advert(pkt, meta, &self.0))
    }
}
