//! The gateway's own services through a VPC port (SPEC §11.1 "Gateway hairpins"): ICMPv4
//! and ICMPv6 echo to the gateway, ARP for it, Router Solicitation → Router Advertisement,
//! the Neighbor Solicitation cases, NDP not aimed at the gateway dropped both ways, and the
//! DHCPv6 and DHCPv4 servers. Every reply is checked field by
//! field, checksums included, and counted as a hairpin; nothing leaves a flow behind.

mod common;

use common::*;
use opte::build::samples;
use opte::build::{Headers, L3Repr, UlpRepr};
use opte::engine::hairpin::dhcp4::{Dhcp4Message, opt as dopt};
use opte::engine::hairpin::dhcp6::{Message as Dhcp6Message, msg_type};
use opte::engine::port::ProcessResult;
use opte::engine::stats::{DenyReason, DropReason};
use opte::engine::time::Moment;
use opte::packet::Packet;
use opte::wire::ether::{ETHER_TYPE_IPV6, EtherRepr};
use opte::wire::icmp::{
    IcmpRepr, NA_FLAG_OVERRIDE, NA_FLAG_ROUTER, NA_FLAG_SOLICITED, NdpOptions, RA_FLAG_MANAGED,
    emit_lla_option, ndp_opt, ndp_options_offset, v6_type,
};
use opte::wire::ip6::Ipv6Repr;
use opte::wire::udp::UdpRepr;
use opte_api::{Direction, IpAddr, Ipv6Addr, MacAddr};
use oxide_vpc::api::VpcCfg;
use oxide_vpc::engine::VpcPort;
use oxide_vpc::tables::VpcTables;
use std::sync::Arc;

const T0: Moment = Moment::ZERO;

fn gw_ll(c: &VpcCfg) -> Ipv6Addr {
    Ipv6Addr::from_eui64(&c.gateway_mac)
}

fn guest_ll(c: &VpcCfg) -> Ipv6Addr {
    Ipv6Addr::from_eui64(&c.guest_mac)
}

/// The IPv6 header fields of a parsed one-segment frame: (src, dst, hop limit).
fn ip6_fields(frame: &[u8]) -> (Ipv6Addr, Ipv6Addr, u8) {
    let h = &frame[14..54];
    let a = |r: std::ops::Range<usize>| Ipv6Addr::from_const(h[r].try_into().unwrap());
    (a(8..24), a(24..40), h[7])
}

/// The ICMPv6 message of a frame (header and body).
fn icmp6(frame: &[u8]) -> &[u8] {
    &frame[54..]
}

fn assert_no_flow_state(port: &VpcPort) {
    for l in ["uft", "gateway", "firewall", "nat"] {
        assert_eq!(port.port().num_flows(l, Direction::Out), Some(0), "{l}");
    }
}

fn echo6(c: &VpcCfg, src: Ipv6Addr, dst: Ipv6Addr, body: &[u8]) -> Packet {
    Packet::copy_from(&frame(
        c.guest_mac,
        c.gateway_mac,
        IpAddr::Ip6(src),
        IpAddr::Ip6(dst),
        L4::Icmp6 {
            ty: v6_type::ECHO_REQUEST,
            id: 7,
            seq: 777,
        },
        body,
    ))
}

#[test]
fn gateway_icmpv6_ping_from_private_and_link_local_is_answered() {
    let rec = Recorder::new("gateway_icmpv6_ping");
    let tables = Arc::new(VpcTables::default());
    let g1 = g1_cfg();
    let mut port = setup(g1.clone(), &tables);
    for (i, src) in [ip6(&g1), guest_ll(&g1)].into_iter().enumerate() {
        let (r, _) = out(
            &mut port,
            &rec,
            echo6(&g1, src, gw_ll(&g1), b"reunion\0"),
            T0,
        );
        let reply = hairpin_frame(r);
        let m = assert_csums_valid(&reply);
        assert_eq!((m.eth.src, m.eth.dst), (g1.gateway_mac, g1.guest_mac));
        assert_eq!(ip6_fields(&reply), (gw_ll(&g1), src, 255));
        assert_eq!(m.flow.icmp_type(), v6_type::ECHO_REPLY);
        assert_eq!(m.flow.icmp_id(), 7);
        assert_eq!(&icmp6(&reply)[6..8], &777u16.to_be_bytes(), "sequence");
        assert_eq!(l4_body(&reply, &m), b"reunion\0");
        assert_eq!(port.port().stats().out.hairpin, i as u64 + 1);
    }
    // An echo to the gateway's link-local address from an address the guest does not own
    // is not answered (the anti-spoof rule drops it).
    let (r, _) = out(
        &mut port,
        &rec,
        echo6(&g1, p("fd00::77"), gw_ll(&g1), &[]),
        T0,
    );
    assert_eq!(
        r,
        ProcessResult::Drop(DropReason::Layer {
            layer: "gateway",
            reason: DenyReason::Default
        })
    );
    assert_no_flow_state(&port);
}

#[test]
fn gateway_router_advert_reply() {
    let rec = Recorder::new("gateway_router_advert_reply");
    let tables = Arc::new(VpcTables::default());
    let g1 = g1_cfg();
    let mut port = setup(g1.clone(), &tables);
    let rs = samples::hairpin("Hairpin-ICMPv6", "RouterSolicit")
        .unwrap()
        .packet();
    let (r, _) = out(&mut port, &rec, rs, T0);
    let ra = hairpin_frame(r);
    let m = assert_csums_valid(&ra);
    assert_eq!((m.eth.src, m.eth.dst), (g1.gateway_mac, g1.guest_mac));
    assert_eq!(ip6_fields(&ra), (gw_ll(&g1), guest_ll(&g1), 255));
    let icmp = icmp6(&ra);
    assert_eq!((icmp[0], icmp[1]), (v6_type::ROUTER_ADVERT, 0));
    assert_eq!(icmp[4], 255, "cur hop limit");
    assert_eq!(icmp[5] & RA_FLAG_MANAGED, RA_FLAG_MANAGED, "managed flag");
    assert_eq!(
        u16::from_be_bytes([icmp[6], icmp[7]]),
        9000,
        "router lifetime"
    );
    let off = ndp_options_offset(v6_type::ROUTER_ADVERT).unwrap();
    let opts: Vec<_> = NdpOptions::new(&icmp[off..]).map(Result::unwrap).collect();
    let slla = opts.iter().find(|o| o.ty == ndp_opt::SOURCE_LLA).unwrap();
    assert_eq!(slla.lla(), Some(g1.gateway_mac.bytes()));
    let mtu = opts.iter().find(|o| o.ty == ndp_opt::MTU).unwrap();
    assert_eq!(mtu.mtu(), Some(port.mtu()));
    assert_eq!(port.port().stats().out.hairpin, 1);
    assert_no_flow_state(&port);
}

/// A Neighbor Solicitation from the guest, built field by field.
struct Ns {
    eth_src: MacAddr,
    eth_dst: MacAddr,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    target: Ipv6Addr,
    slla: bool,
}

impl Ns {
    fn packet(&self) -> Packet {
        let mut body = vec![0u8; 16];
        body.copy_from_slice(&self.target.bytes());
        if self.slla {
            let mut o = [0u8; 8];
            emit_lla_option(&mut o, ndp_opt::SOURCE_LLA, self.eth_src.bytes()).unwrap();
            body.extend_from_slice(&o);
        }
        let mut ip = Ipv6Repr::new(self.src, self.dst, 58);
        ip.hop_limit = self.hop_limit;
        let h = Headers::new(
            EtherRepr {
                dst: self.eth_dst,
                src: self.eth_src,
                ether_type: ETHER_TYPE_IPV6,
                vlan: None,
            },
            L3Repr::Ipv6(ip),
            UlpRepr::Icmpv6(IcmpRepr {
                ty: v6_type::NEIGHBOR_SOLICIT,
                code: 0,
                csum: 0,
                rest: [0; 4],
            }),
        );
        Packet::copy_from(&h.build(&body).unwrap())
    }
}

/// What the port should make of a solicitation.
#[derive(Debug)]
enum Want {
    /// An advertisement to (IP, MAC) with these flags.
    Na(Ipv6Addr, MacAddr, u8),
    Drop(DropReason),
}

#[test]
fn gateway_neighbor_advert_reply_cases() {
    let rec = Recorder::new("gateway_neighbor_advert_reply");
    let tables = Arc::new(VpcTables::default());
    let g1 = g1_cfg();
    let mut port = setup(g1.clone(), &tables);
    let (gw, me) = (gw_ll(&g1), guest_ll(&g1));
    let sn = gw.solicited_node_multicast();
    let sn_mac = sn.multicast_mac().unwrap();
    let all_nodes_mac: MacAddr = p("33:33:00:00:00:01");
    let base = Ns {
        eth_src: g1.guest_mac,
        eth_dst: g1.gateway_mac,
        src: me,
        dst: gw,
        hop_limit: 255,
        target: gw,
        slla: true,
    };
    let rsvp = NA_FLAG_ROUTER | NA_FLAG_SOLICITED | NA_FLAG_OVERRIDE;
    let gw_rule = |reason| {
        Want::Drop(DropReason::Layer {
            layer: "gateway",
            reason,
        })
    };
    let failed = Want::Drop(DropReason::ActionFailed { layer: "gateway" });
    let cases: Vec<(&str, Ns, Want)> = vec![
        (
            "unicast to the gateway",
            Ns { ..base },
            Want::Na(me, g1.guest_mac, rsvp),
        ),
        (
            "to the solicited-node group",
            Ns {
                eth_dst: sn_mac,
                dst: sn,
                ..base
            },
            Want::Na(me, g1.guest_mac, rsvp),
        ),
        (
            "without a source link-layer option",
            Ns {
                slla: false,
                ..base
            },
            Want::Na(me, g1.guest_mac, rsvp),
        ),
        (
            "duplicate address detection from ::",
            Ns {
                eth_dst: sn_mac,
                src: Ipv6Addr::ANY_ADDR,
                dst: sn,
                slla: false,
                ..base
            },
            Want::Na(
                Ipv6Addr::ALL_NODES,
                all_nodes_mac,
                NA_FLAG_ROUTER | NA_FLAG_OVERRIDE,
            ),
        ),
        (
            "target is not the gateway",
            Ns {
                target: p("fe80::99"),
                ..base
            },
            gw_rule(DenyReason::Action),
        ),
        (
            "guest's own duplicate address detection",
            Ns {
                eth_dst: me.solicited_node_multicast().multicast_mac().unwrap(),
                src: Ipv6Addr::ANY_ADDR,
                dst: me.solicited_node_multicast(),
                target: me,
                slla: false,
                ..base
            },
            gw_rule(DenyReason::Rule),
        ),
        (
            "hop limit not 255 (forwarded)",
            Ns {
                hop_limit: 64,
                ..base
            },
            failed,
        ),
        (
            ":: with a source link-layer option",
            Ns {
                eth_dst: sn_mac,
                src: Ipv6Addr::ANY_ADDR,
                dst: sn,
                ..base
            },
            Want::Drop(DropReason::ActionFailed { layer: "gateway" }),
        ),
        (
            ":: not to the solicited-node group",
            Ns {
                src: Ipv6Addr::ANY_ADDR,
                slla: false,
                ..base
            },
            Want::Drop(DropReason::ActionFailed { layer: "gateway" }),
        ),
        (
            // RFC 4861 §7.2.2: Linux solicits from the address of the packet waiting
            // for the neighbour; the reference refused this (a quirk, fixed).
            "from the private (not link-local) address",
            Ns {
                src: ip6(&g1),
                ..base
            },
            Want::Na(ip6(&g1), g1.guest_mac, rsvp),
        ),
        (
            "from a foreign MAC",
            Ns {
                eth_src: p("a8:40:25:00:00:99"),
                ..base
            },
            gw_rule(DenyReason::Rule),
        ),
    ];
    let mut hairpins = 0;
    for (name, ns, want) in cases {
        let (r, _) = out(&mut port, &rec, ns.packet(), T0);
        match want {
            Want::Na(ip, mac, fl) => {
                let na = hairpin_frame(r);
                hairpins += 1;
                let m = assert_csums_valid(&na);
                assert_eq!((m.eth.src, m.eth.dst), (g1.gateway_mac, mac), "{name}");
                assert_eq!(ip6_fields(&na), (gw, ip, 255), "{name}");
                let icmp = icmp6(&na);
                assert_eq!(icmp[0], v6_type::NEIGHBOR_ADVERT, "{name}");
                assert_eq!(icmp[4], fl, "{name}: flags");
                assert_eq!(&icmp[8..24], &gw.bytes(), "{name}: target");
                let tlla = NdpOptions::new(&icmp[24..])
                    .map(Result::unwrap)
                    .find(|o| o.ty == ndp_opt::TARGET_LLA)
                    .unwrap();
                assert_eq!(tlla.lla(), Some(g1.gateway_mac.bytes()), "{name}");
            }
            Want::Drop(d) => assert_eq!(r, ProcessResult::Drop(d), "{name}"),
        }
    }
    let st = port.port().stats().out;
    assert_eq!(st.hairpin, hairpins);
    assert_eq!(st.drop, st.drop_layer + st.drop_action_failed);
    assert_eq!(st.results(), 11);
    assert_no_flow_state(&port);
}

/// A DHCPv6 client message as the samples send it, with extra options appended.
fn dhcp6_with(case: &str, extra: &[u8]) -> Packet {
    let f = samples::hairpin("Hairpin-DHCPv6", case).unwrap().frame();
    let m = assert_csums_valid(&f);
    let mut body = l4_body(&f, &m).to_vec();
    body.extend_from_slice(extra);
    let mut ip = Ipv6Repr::new(samples::GUEST_LL, p("ff02::1:2"), 17);
    ip.hop_limit = 64;
    let h = Headers::new(
        EtherRepr {
            dst: p("33:33:00:01:00:02"),
            src: samples::GUEST_MAC,
            ether_type: ETHER_TYPE_IPV6,
            vlan: None,
        },
        L3Repr::Ipv6(ip),
        UlpRepr::Udp(UdpRepr::new(546, 547)),
    );
    Packet::copy_from(&h.build(&body).unwrap())
}

#[test]
fn reply_to_dhcpv6_solicit_or_request() {
    let rec = Recorder::new("reply_to_dhcpv6_solicit_or_request");
    let tables = Arc::new(VpcTables::default());
    let g1 = g1_cfg();
    let mut port = setup(g1.clone(), &tables);
    const RAPID_COMMIT: [u8; 4] = [0, 14, 0, 0];
    for (case, extra, want) in [
        ("Solicit", &[][..], msg_type::ADVERTISE),
        ("Solicit", &RAPID_COMMIT[..], msg_type::REPLY),
        ("Request", &[][..], msg_type::REPLY),
    ] {
        let (r, _) = out(&mut port, &rec, dhcp6_with(case, extra), T0);
        let reply = hairpin_frame(r);
        let m = assert_csums_valid(&reply);
        assert_eq!((m.eth.src, m.eth.dst), (g1.gateway_mac, g1.guest_mac));
        let (src, dst, _) = ip6_fields(&reply);
        assert_eq!((src, dst), (gw_ll(&g1), guest_ll(&g1)), "{case}");
        assert_eq!((m.flow.src_port(), m.flow.dst_port()), (547, 546));
        let msg = Dhcp6Message::parse(l4_body(&reply, &m)).unwrap();
        assert_eq!(msg.msg_type, want, "{case} {extra:?}");
        assert_eq!(msg.xid, [0, 1, 2], "transaction id echoed");
        let addrs: Vec<Ipv6Addr> = msg.ia_addrs().collect();
        assert_eq!(addrs, [ip6(&g1)], "{case}: leases the private IP");
        assert_eq!(
            msg.server_id().unwrap().as_bytes(),
            &opte::engine::hairpin::dhcp6::options::duid_ll(g1.gateway_mac)
        );
        assert_eq!(
            msg.client_id().unwrap().as_bytes(),
            &opte::engine::hairpin::dhcp6::options::duid_ll(g1.guest_mac)
        );
        assert!(msg.options.contains(24), "{case}: requested domain list");
        assert_eq!(msg.options.contains(14), extra == RAPID_COMMIT, "{case}");
    }
    assert_eq!(port.port().stats().out.hairpin, 3);
    assert_no_flow_state(&port);
}

#[test]
fn reply_to_dhcpv4_discover_and_request() {
    let rec = Recorder::new("reply_to_dhcpv4_discover_and_request");
    let tables = Arc::new(VpcTables::default());
    let g1 = g1_cfg();
    let mut port = setup(g1.clone(), &tables);
    let gw4: opte_api::Ipv4Addr = p("172.30.0.1");
    for (case, want) in [("Discover", 2u8), ("Request", 5u8)] {
        let req = samples::hairpin("Hairpin-DHCPv4", case).unwrap().packet();
        let (r, _) = out(&mut port, &rec, req, T0);
        let reply = hairpin_frame(r);
        let m = assert_csums_valid(&reply);
        // The client asked for broadcast and has no address yet.
        assert_eq!((m.eth.src, m.eth.dst), (g1.gateway_mac, MacAddr::BROADCAST));
        assert_eq!(
            (m.flow.src_ip(), m.flow.dst_ip()),
            (IpAddr::Ip4(gw4), p("255.255.255.255"))
        );
        assert_eq!((m.flow.src_port(), m.flow.dst_port()), (67, 68));
        let msg = Dhcp4Message::parse(l4_body(&reply, &m)).unwrap();
        assert_eq!(msg.hdr.op, 2, "BOOTREPLY");
        assert_eq!(msg.hdr.xid, 1234u32.to_be_bytes());
        assert_eq!(msg.message_type(), Some(want), "{case}");
        assert_eq!(
            msg.hdr.yiaddr,
            ip4(&g1).bytes(),
            "{case}: leases the private IP"
        );
        assert_eq!(msg.option(dopt::SERVER_ID), Some(&gw4.bytes()[..]));
        assert_eq!(msg.option(dopt::SUBNET_MASK), Some(&[255u8; 4][..]));
        assert_eq!(msg.option(dopt::ROUTER), Some(&gw4.bytes()[..]));
        assert_eq!(msg.option(dopt::HOSTNAME), Some(&b"testbox"[..]));
        assert_eq!(
            msg.option(dopt::DOMAIN_NAME),
            Some(&b"test.oxide.computer"[..])
        );
        // RFC 3442: the gateway's /32 on-link, then the default route through it.
        assert_eq!(
            msg.option(dopt::CLASSLESS_ROUTES),
            Some(&[32, 172, 30, 0, 1, 0, 0, 0, 0, 0, 172, 30, 0, 1][..])
        );
        assert!(msg.option(dopt::LEASE_TIME).is_some());
    }
    assert_eq!(port.port().stats().out.hairpin, 2);
    assert_no_flow_state(&port);
}

/// An echo request whose headers and body are spread over several segments (split inside
/// the IPv4 header and inside the body) is answered with the body echoed intact.
#[test]
fn packet_body_pullup() {
    let rec = Recorder::new("packet_body_pullup");
    let tables = Arc::new(VpcTables::default());
    let g1 = g1_cfg();
    let mut port = setup(g1.clone(), &tables);
    let body: Vec<u8> = (0..600u32).map(|i| (i * 7 + 3) as u8).collect();
    let f = frame(
        g1.guest_mac,
        g1.gateway_mac,
        IpAddr::Ip4(ip4(&g1)),
        p("172.30.0.1"),
        L4::Icmp4 {
            ty: 8,
            id: 0x1234,
            seq: 42,
        },
        &body,
    );
    let pkt = Packet::from_segments(&[&f[..30], &f[30..45], &f[45..300], &f[300..]]);
    assert_eq!(pkt.seg_count(), 4);
    let (r, _) = out(&mut port, &rec, pkt, T0);
    let reply = hairpin_frame(r);
    let m = assert_csums_valid(&reply);
    assert_eq!((m.flow.icmp_type(), m.flow.icmp_id()), (0, 0x1234));
    assert_eq!(
        (m.flow.src_ip(), m.flow.dst_ip()),
        (p("172.30.0.1"), IpAddr::Ip4(ip4(&g1)))
    );
    assert_eq!(l4_body(&reply, &m), &body[..]);
    assert_eq!(reply.len(), f.len());
}

#[test]
fn gateway_icmp4_ping_and_arp() {
    let rec = Recorder::new("gateway_icmp4_ping_and_arp");
    let tables = Arc::new(VpcTables::default());
    let g1 = g1_cfg();
    let mut port = setup(g1.clone(), &tables);
    let gw: IpAddr = p("172.30.0.1");
    let ping = guest_pkt(
        &g1,
        IpAddr::Ip4(ip4(&g1)),
        gw,
        L4::Icmp4 {
            ty: 8,
            id: 7,
            seq: 1,
        },
    );
    let (r, _) = out(&mut port, &rec, ping, T0);
    let m = assert_csums_valid(&hairpin_frame(r));
    assert_eq!((m.eth.src, m.eth.dst), (g1.gateway_mac, g1.guest_mac));
    assert_eq!(
        (m.flow.src_ip(), m.flow.dst_ip()),
        (gw, IpAddr::Ip4(ip4(&g1)))
    );
    assert_eq!((m.flow.icmp_type(), m.flow.icmp_id()), (0, 7));
    assert_eq!(port.port().stats().out.hairpin, 1);
    assert_eq!(port.port().num_flows("uft", Direction::Out), Some(0));

    // ARP for the gateway is answered, and for the rest of the VPC subnet by proxy (with
    // the gateway's MAC); ARP for the guest's own address or outside the subnet is not.
    let arp_to = |dst: MacAddr, tpa: &str| {
        let h = opte::build::Headers {
            encap: None,
            eth: opte::wire::ether::EtherRepr {
                dst,
                src: g1.guest_mac,
                ether_type: opte::wire::ether::ETHER_TYPE_ARP,
                vlan: None,
            },
            arp: Some(opte::wire::arp::ArpRepr {
                op: opte::wire::arp::ARP_OP_REQUEST,
                sha: g1.guest_mac,
                spa: ip4(&g1),
                tha: MacAddr::ZERO,
                tpa: p(tpa),
            }),
            l3: None,
            ulp: None,
        };
        Packet::copy_from(&h.build(&[]).unwrap())
    };
    let arp = |tpa: &str| arp_to(MacAddr::BROADCAST, tpa);
    let mut answered = |pkt: Packet, tpa: &str| {
        let (r, _) = out(&mut port, &rec, pkt, T0);
        let ProcessResult::Hairpin(reply) = r else {
            panic!("{tpa}: {r:?}")
        };
        let mut reply = Packet::copy_from(&reply);
        let m = guest(&mut reply);
        assert_eq!((m.eth.src, m.eth.dst), (g1.gateway_mac, g1.guest_mac));
        let a = reply
            .view::<opte::wire::arp::ArpEthIpv4Hdr>(m.arp.unwrap())
            .unwrap();
        let a = opte::wire::arp::ArpRepr::from_hdr(a);
        assert_eq!(a.op, opte::wire::arp::ARP_OP_REPLY);
        assert_eq!((a.sha, a.spa), (g1.gateway_mac, p(tpa)), "{tpa}");
        assert_eq!((a.tha, a.tpa), (g1.guest_mac, ip4(&g1)), "{tpa}");
    };
    answered(arp("172.30.0.1"), "172.30.0.1");
    answered(arp("172.30.0.9"), "172.30.0.9");
    // A guest confirming a neighbour it knows asks the gateway's MAC directly.
    answered(arp_to(g1.gateway_mac, "172.30.0.1"), "172.30.0.1");
    answered(arp_to(g1.gateway_mac, "172.30.3.254"), "172.30.3.254");
    let own = ip4(&g1).to_string();
    for tpa in [own.as_str(), "172.30.4.1", "10.0.0.9"] {
        let (r, _) = out(&mut port, &rec, arp(tpa), T0);
        assert_eq!(r, ProcessResult::Drop(DropReason::HandlePkt), "{tpa}");
    }
}

#[test]
fn ndp_is_dropped_both_ways_except_to_the_gateway() {
    let rec = Recorder::new("ndp");
    let tables = Arc::new(VpcTables::default());
    let g1 = g1_cfg();
    let mut port = setup(g1.clone(), &tables);
    // A guest Neighbor Advertisement (type 136) leaving the guest.
    let na = guest_pkt(
        &g1,
        IpAddr::Ip6(ip6(&g1)),
        p("fd00::6"),
        L4::Icmp6 {
            ty: 136,
            id: 0,
            seq: 0,
        },
    );
    let (r, _) = out(&mut port, &rec, na, T0);
    assert_eq!(r, layer_drop("gateway", DenyReason::Rule));
    // An encapsulated Router Advertisement arriving from the network.
    let g2 = g2_cfg();
    let f = frame(
        g2.guest_mac,
        g1.guest_mac,
        IpAddr::Ip6(ip6(&g2)),
        IpAddr::Ip6(ip6(&g1)),
        L4::Icmp6 {
            ty: 134,
            id: 0,
            seq: 0,
        },
        &[],
    );
    let (r, _) = inb(
        &mut port,
        &rec,
        encap(g2.phys_ip, g1.phys_ip, g1.vni, false, &f),
        T0,
    );
    assert_eq!(r, layer_drop("gateway", DenyReason::Rule));
}
