//! The test network shared by the port tests: a port built from engine primitives only
//! (a stateful firewall, 1:1 NAT, Geneve encap) and packet makers for its traffic.
#![allow(dead_code)]

pub mod counting;

use opte::build::samples;
use opte::build::{Encap, Headers, L3Repr, UlpRepr};
use opte::engine::action::{
    Action, ActionMeta, AllowOrDeny, DefaultAction, GenHtError, GenPacketError, HairpinAction,
    StaticAction,
};
use opte::engine::layer::{Layer, LayerActions};
use opte::engine::nat::{AlwaysValid, OutboundNat};
use opte::engine::port::{NoNetwork, Port, PortBuilder, Pos, ProcessResult};
use opte::engine::predicate::{Ipv4AddrMatch, Predicate};
use opte::engine::probe::{NoProbes, Probes};
use opte::engine::rule::Rule;
use opte::engine::time::Moment;
use opte::engine::transform::{EncapAction, EncapPush, HdrTransform};
use opte::engine::view::{PacketView, Parsed};
use opte::packet::Packet;
use opte::packet::parse::{InnerMeta, parse_guest, parse_network};
use opte::wire::ether::{ETHER_TYPE_IPV4, EtherRepr};
use opte::wire::geneve::{GeneveOpt, GeneveRepr};
use opte::wire::ip4::Ipv4Repr;
use opte::wire::ip6::Ipv6Repr;
use opte::wire::tcp::TcpRepr;
use opte::wire::udp::UdpRepr;
use opte_api::{Direction, IpAddr, Ipv4Addr, Ipv4Cidr, MacAddr, OpteError, Vni};
use std::num::NonZeroU32;
use std::sync::Arc;

pub const VPC_SUBNET: [u8; 4] = [172, 30, 0, 0];

pub struct Overlay;

impl std::fmt::Display for Overlay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("geneve")
    }
}

impl StaticAction for Overlay {
    fn gen_ht(
        &self,
        dir: Direction,
        view: &PacketView,
        _meta: &mut ActionMeta,
    ) -> Result<AllowOrDeny<HdrTransform>, GenHtError> {
        Ok(AllowOrDeny::Allow(match dir {
            Direction::Out => HdrTransform {
                encap: EncapAction::Push(EncapPush {
                    eth_src: MacAddr::ZERO,
                    eth_dst: MacAddr::ZERO,
                    ip6_src: samples::SLED_IP6,
                    ip6_dst: samples::BOUNDARY_IP6,
                    hop_limit: 128,
                    entropy: (view.flow().crc32() & 0xffff) as u16,
                    vni: Vni::new(samples::BOUNDARY_VNI).unwrap(),
                    options: vec![],
                    internal: false,
                }),
                eth_dst: Some(samples::BOUNDARY_MAC),
                ..HdrTransform::identity("encap")
            },
            Direction::In => HdrTransform {
                encap: EncapAction::Pop,
                eth_src: Some(samples::GW_MAC),
                ..HdrTransform::identity("decap")
            },
        }))
    }
}

pub struct Echo;

impl std::fmt::Display for Echo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("echo")
    }
}

impl HairpinAction for Echo {
    fn gen_packet(
        &self,
        pkt: &Packet,
        _m: &InnerMeta,
    ) -> Result<AllowOrDeny<Vec<u8>>, GenPacketError> {
        Ok(AllowOrDeny::Allow(pkt.to_vec()))
    }
}

pub fn limit(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

/// firewall → nat → overlay, like a tiny VPC port.
pub fn port(uft_limit: u32, tcp_limit: u32, lft_limit: u32) -> Port<NoNetwork> {
    port_with_probes(uft_limit, tcp_limit, lft_limit, NoProbes)
}

/// [`port`] reporting to `probes`.
pub fn port_with_probes<P: Probes>(
    uft_limit: u32,
    tcp_limit: u32,
    lft_limit: u32,
    probes: P,
) -> Port<NoNetwork, P> {
    let mut b = PortBuilder::new("opte0", samples::GUEST_MAC);
    let fw = Layer::new(
        "firewall",
        LayerActions {
            actions: vec![],
            default_in: DefaultAction::Deny,
            default_out: DefaultAction::StatefulAllow,
        },
        limit(lft_limit),
        1,
    );
    let nat = Layer::new(
        "nat",
        LayerActions {
            actions: vec![],
            default_in: DefaultAction::Allow,
            default_out: DefaultAction::Allow,
        },
        limit(lft_limit),
        2,
    );
    let overlay = Layer::new(
        "overlay",
        LayerActions {
            actions: vec![],
            default_in: DefaultAction::Deny,
            default_out: DefaultAction::Deny,
        },
        limit(lft_limit),
        3,
    );
    b.add_layer(overlay, Pos::Last).unwrap();
    b.add_layer(fw, Pos::First).unwrap();
    b.add_layer(nat, Pos::Before("overlay")).unwrap();
    assert_eq!(b.layer_names(), ["firewall", "nat", "overlay"]);
    assert!(matches!(
        b.add_layer(
            Layer::new(
                "x",
                LayerActions {
                    actions: vec![],
                    default_in: DefaultAction::Allow,
                    default_out: DefaultAction::Allow
                },
                limit(1),
                4
            ),
            Pos::After("nope"),
        ),
        Err(OpteError::BadLayerPos { .. })
    ));
    let mut p = b.create_with_probes(
        NoNetwork,
        limit(uft_limit),
        limit(tcp_limit),
        0x1234,
        probes,
    );
    p.start();
    let subnet = Ipv4Cidr::new_checked(Ipv4Addr::from_const(VPC_SUBNET), 22).unwrap();
    let mut nat_out = Rule::new(
        10,
        Action::Stateful(Arc::new(OutboundNat::new(
            IpAddr::Ip4(samples::GUEST_IP4),
            vec![IpAddr::Ip4(samples::EPHEMERAL_IP4)],
            Arc::new(AlwaysValid),
        ))),
    );
    nat_out.add_predicate(Predicate::Not(Box::new(Predicate::InnerDstIp4(vec![
        Ipv4AddrMatch::Prefix(subnet),
    ]))));
    p.add_rule("nat", Direction::Out, nat_out).unwrap();
    p.add_rule(
        "overlay",
        Direction::Out,
        Rule::match_any(1, Action::Static(Arc::new(Overlay))),
    )
    .unwrap();
    p.add_rule(
        "overlay",
        Direction::In,
        Rule::match_any(1, Action::Static(Arc::new(Overlay))),
    )
    .unwrap();
    p
}

pub fn tcp4_out(sport: u16, fl: u8, seq: u32, ack: u32) -> Packet {
    let mut ip = Ipv4Repr::new(samples::GUEST_IP4, samples::REMOTE_IP4, 6);
    ip.ttl = 128;
    let mut t = TcpRepr::new(sport, 80, fl);
    t.seq = seq;
    t.ack = ack;
    t.window = 1024;
    let h = Headers::new(
        EtherRepr {
            dst: samples::GW_MAC,
            src: samples::GUEST_MAC,
            ether_type: ETHER_TYPE_IPV4,
            vlan: None,
        },
        L3Repr::Ipv4(ip),
        UlpRepr::Tcp(t),
    );
    Packet::copy_from(&h.build(&[]).unwrap())
}

/// A guest's UDP datagram from `sport` to the remote's DNS port.
pub fn udp4_out(sport: u16) -> Packet {
    let h = Headers::new(
        EtherRepr {
            dst: samples::GW_MAC,
            src: samples::GUEST_MAC,
            ether_type: ETHER_TYPE_IPV4,
            vlan: None,
        },
        L3Repr::Ipv4(Ipv4Repr::new(samples::GUEST_IP4, samples::REMOTE_IP4, 17)),
        UlpRepr::Udp(UdpRepr::new(sport, 53)),
    );
    Packet::copy_from(&h.build(b"q").unwrap())
}

/// The remote's reply to the NATed guest, from boundary services, as two segments.
pub fn tcp4_in(dport: u16, fl: u8, seq: u32, ack: u32) -> Packet {
    let mut ip = Ipv4Repr::new(samples::REMOTE_IP4, samples::EPHEMERAL_IP4, 6);
    ip.ttl = 128;
    let mut t = TcpRepr::new(80, dport, fl);
    t.seq = seq;
    t.ack = ack;
    t.window = 1024;
    let inner = Headers::new(
        EtherRepr {
            dst: samples::GUEST_MAC,
            src: samples::BOUNDARY_MAC,
            ether_type: ETHER_TYPE_IPV4,
            vlan: None,
        },
        L3Repr::Ipv4(ip),
        UlpRepr::Tcp(t),
    )
    .build(&[])
    .unwrap();
    let outer = Encap {
        eth: EtherRepr {
            dst: samples::GUEST_MAC,
            src: samples::BOUNDARY_MAC,
            ether_type: 0x86dd,
            vlan: None,
        },
        ip6: Ipv6Repr::new(samples::BOUNDARY_IP6, samples::SLED_IP6, 17),
        udp: UdpRepr::new(99, 6081),
        geneve: GeneveRepr::new(
            Vni::new(samples::GUEST_VNI).unwrap(),
            vec![GeneveOpt::oxide_external()],
        ),
    }
    .header_bytes(inner.len());
    Packet::from_segments(&[&outer, &inner])
}

pub fn out<P: Probes>(
    p: &mut Port<NoNetwork, P>,
    mut pkt: Packet,
    now: Moment,
) -> (ProcessResult, Packet) {
    let parsed = Parsed::Guest(parse_guest(&mut pkt).unwrap());
    let r = p.process(Direction::Out, &mut pkt, &parsed, now);
    (r, pkt)
}

pub fn inb<P: Probes>(
    p: &mut Port<NoNetwork, P>,
    mut pkt: Packet,
    now: Moment,
) -> (ProcessResult, Packet) {
    let parsed = Parsed::Network(parse_network(&mut pkt).unwrap());
    let r = p.process(Direction::In, &mut pkt, &parsed, now);
    (r, pkt)
}
