//! A gateway layer made of the hairpin actions, as a VPC port has one: every request of the
//! reference's hairpin benchmarks is answered with a reply of the documented size, and
//! traffic that is not for the gateway passes by.

use opte::build::samples::{self, Side};
use opte::engine::action::{Action, DefaultAction};
use opte::engine::gateway::{
    ArpReply, DhcpAction, Dhcpv6Action, IcmpEchoAction, Icmpv6EchoAction, NeighborAdvertAction,
    RouterAdvertAction,
};
use opte::engine::hairpin::{Dhcp4Config, Dhcp6Config};
use opte::engine::layer::{Layer, LayerActions};
use opte::engine::port::{NoNetwork, Port, PortBuilder, Pos, ProcessResult};
use opte::engine::rule::Rule;
use opte::engine::stats::{DenyReason, DropReason};
use opte::engine::time::Moment;
use opte::engine::view::Parsed;
use opte::packet::Packet;
use opte::packet::parse::parse_guest;
use opte_api::{
    AddressInfo, DhcpCfg, DhcpReplyType, Direction, DomainName, IcmpEchoReply, Icmpv6EchoReply,
    Ipv4Addr, Ipv4PrefixLen, Ipv6Addr, LeasedAddress, NeighborAdvertisement, RouterAdvertisement,
    SubnetRouterPair,
};
use std::num::NonZeroU32;
use std::sync::Arc;

fn dhcp_cfg() -> DhcpCfg {
    DhcpCfg {
        hostname: Some("testbox".parse::<DomainName>().unwrap()),
        host_domain: Some("test.oxide.computer".parse().unwrap()),
        domain_search_list: vec!["oxide.computer".parse().unwrap()],
        dns4_servers: vec![
            Ipv4Addr::from_const([8, 8, 8, 8]),
            Ipv4Addr::from_const([1, 1, 1, 1]),
        ],
        dns6_servers: vec![
            "2001:4860:4860::8888".parse().unwrap(),
            "2001:4860:4860::8844".parse().unwrap(),
            "2606:4700:4700::1111".parse().unwrap(),
            "2606:4700:4700::1001".parse().unwrap(),
        ],
    }
}

/// The hairpin benchmark port of BENCH.md §3.2: a gateway layer whose default is deny.
fn gateway_port() -> Port<NoNetwork> {
    let gw_ll = Ipv6Addr::from_eui64(&samples::GW_MAC);
    let d4 = Dhcp4Config {
        client_mac: samples::GUEST_MAC,
        client_ip: samples::GUEST_IP4,
        gw_mac: samples::GW_MAC,
        gw_ip: samples::GW_IP4,
        // As the VPC gateway configures it: a /32 mask, the gateway on-link, and the
        // default route through it (RFC 3442 classless routes).
        prefix_len: Ipv4PrefixLen::new(32).unwrap(),
        routes: vec![
            SubnetRouterPair::new("172.30.0.1/32".parse().unwrap(), Ipv4Addr::ANY_ADDR),
            SubnetRouterPair::new("0.0.0.0/0".parse().unwrap(), samples::GW_IP4),
        ],
        cfg: dhcp_cfg(),
    };
    let d6 = Dhcp6Config {
        client_mac: samples::GUEST_MAC,
        server_mac: samples::GW_MAC,
        addrs: AddressInfo {
            addrs: vec![LeasedAddress::infinite_lease(samples::GUEST_IP6)],
            renew: 86400,
        },
        cfg: dhcp_cfg(),
    };
    let actions: Vec<Action> = vec![
        Action::Hairpin(Arc::new(ArpReply {
            gw_mac: samples::GW_MAC,
            gw_ip: samples::GW_IP4,
        })),
        Action::Hairpin(Arc::new(DhcpAction {
            cfg: d4.clone(),
            reply_type: DhcpReplyType::Offer,
        })),
        Action::Hairpin(Arc::new(DhcpAction {
            cfg: d4,
            reply_type: DhcpReplyType::Ack,
        })),
        Action::Hairpin(Arc::new(Dhcpv6Action { cfg: d6 })),
        Action::Hairpin(Arc::new(IcmpEchoAction(IcmpEchoReply {
            echo_src_mac: samples::GUEST_MAC,
            echo_src_ip: samples::GUEST_IP4,
            echo_dst_mac: samples::GW_MAC,
            echo_dst_ip: samples::GW_IP4,
        }))),
        Action::Hairpin(Arc::new(Icmpv6EchoAction(Icmpv6EchoReply {
            src_mac: samples::GUEST_MAC,
            src_ip: samples::GUEST_IP6,
            dst_mac: samples::GW_MAC,
            dst_ip: gw_ll,
        }))),
        Action::Hairpin(Arc::new(RouterAdvertAction(RouterAdvertisement::new(
            samples::GUEST_MAC,
            samples::GW_MAC,
            true,
            Some(1500),
        )))),
        Action::Hairpin(Arc::new(NeighborAdvertAction(NeighborAdvertisement::new(
            samples::GUEST_MAC,
            samples::GW_MAC,
            true,
            false,
        )))),
    ];
    let rules: Vec<Rule> = actions.iter().map(|a| Rule::new(1, a.clone())).collect();
    let gw = Layer::new(
        "gateway",
        LayerActions {
            actions,
            default_in: DefaultAction::Deny,
            default_out: DefaultAction::Deny,
        },
        NonZeroU32::new(64).unwrap(),
        7,
    );
    let mut b = PortBuilder::new("gw0", samples::GUEST_MAC);
    b.add_layer(gw, Pos::First).unwrap();
    let n = NonZeroU32::new(16).unwrap();
    let mut p = b.create(NoNetwork, n, n, 99);
    p.start();
    p.set_rules("gateway", vec![], rules).unwrap();
    p
}

fn run(p: &mut Port<NoNetwork>, mut pkt: Packet) -> ProcessResult {
    let parsed = Parsed::Guest(parse_guest(&mut pkt).unwrap());
    p.process(Direction::Out, &mut pkt, &parsed, Moment::ZERO)
}

#[test]
fn every_hairpin_request_gets_its_reply() {
    let mut p = gateway_port();
    let sizes = [384, 384, 226, 226, 50, 70, 86, 86];
    for ((family, case), size) in samples::HAIRPIN_CASES.iter().zip(sizes) {
        let s = samples::hairpin(family, case).unwrap();
        assert_eq!(s.side, Side::Guest);
        match run(&mut p, s.packet()) {
            ProcessResult::Hairpin(reply) => {
                assert_eq!(reply.len(), size, "{family}/{case}");
                // The reply is addressed to the guest and parses as a guest-side frame.
                let m = parse_guest(&mut Packet::copy_from(&reply)).unwrap();
                assert!(
                    m.eth.dst == samples::GUEST_MAC || m.eth.dst.is_group(),
                    "{family}/{case}"
                );
                assert_eq!(m.eth.src, samples::GW_MAC, "{family}/{case}");
            }
            other => panic!("{family}/{case}: {other:?}"),
        }
    }
    assert_eq!(p.stats().out.hairpin, 8);
    // Hairpins keep no flow state.
    assert_eq!(p.num_flows("uft", Direction::Out), Some(0));
}

#[test]
fn arp_for_the_gateway_is_answered() {
    let mut p = gateway_port();
    let arp = samples::all()
        .into_iter()
        .find(|s| s.name == "arp-request")
        .unwrap();
    let ProcessResult::Hairpin(reply) = run(&mut p, arp.packet()) else {
        panic!()
    };
    let m = parse_guest(&mut Packet::copy_from(&reply)).unwrap();
    assert!(m.arp.is_some());
    assert_eq!(m.eth.dst, samples::GUEST_MAC);
    assert_eq!(&reply[14 + 6..14 + 8], &[0, 2], "op reply");
    assert_eq!(&reply[14 + 8..14 + 14], &samples::GW_MAC.bytes());
}

#[test]
fn traffic_not_for_the_gateway_falls_to_the_default() {
    let mut p = gateway_port();
    let r = run(&mut p, samples::ulp("V4-Udp-OUT-0B").unwrap().packet());
    assert_eq!(
        r,
        ProcessResult::Drop(DropReason::Layer {
            layer: "gateway",
            reason: DenyReason::Default
        })
    );
    // An echo request from a spoofed source does not match the implicit predicates.
    let s = samples::hairpin("Hairpin-ICMPv4", "EchoRequest").unwrap();
    let mut f = s.frame();
    f[26] = 9;
    let r = run(&mut p, Packet::copy_from(&f));
    assert!(matches!(r, ProcessResult::Drop(_)), "{r:?}");
}
