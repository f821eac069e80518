//! The port's structure and traffic inside the VPC (SPEC §11.1 "Port lifecycle &
//! structure", "Guest-to-guest and routing", multicast): layers and rule counts, guest to
//! guest in one VPC and never across VPCs, routes to subnets and to instances, anti-spoof,
//! VNI checks on arrival, and multicast encapsulation. Real packets through ports built by
//! `VpcPort`, asserting headers, counters, flow counts and epochs.

mod common;

use common::*;
use opte::engine::port::ProcessResult;
use opte::engine::stats::DenyReason;
use opte::engine::time::Moment;
use opte::packet::Packet;
use opte::wire::geneve::Replication;
use opte::wire::tcp::flags;
use opte_api::{Direction, IpAddr, MacAddr, MulticastUnderlay};
use oxide_vpc::api::{
    DelRouterEntryResp, FirewallRule, IpCfg, PhysNet, RemoveCidrResp, RouterClass, RouterTarget,
    SetExternalIpsReq,
};
use oxide_vpc::tables::VpcTables;
use std::sync::Arc;

const T0: Moment = Moment::ZERO;

#[test]
fn check_layers_and_default_rule_counts() {
    let tables = Arc::new(VpcTables::default());
    let port = setup(g1_cfg(), &tables);
    let names: Vec<String> = port
        .port()
        .list_layers()
        .into_iter()
        .map(|l| l.name)
        .collect();
    assert_eq!(names, ["gateway", "firewall", "router", "nat", "overlay"]);
    assert_rules(
        &port,
        &[
            ("gateway", 5, 12),
            ("firewall", 3, 0),
            ("router", 0, 2),
            ("nat", 0, 3),
            ("overlay", 1, 1),
        ],
    );
}

#[test]
fn rejected_requests_change_nothing() {
    let tables = Arc::new(VpcTables::default());
    let mut c = g1_cfg();
    let v4 = c.ipv4().unwrap().clone();
    c.ip_cfg = IpCfg::Ipv4(v4);
    let mut port = setup(c, &tables);
    let e = port.port().epoch();
    let req = SetExternalIpsReq {
        port_name: "g".into(),
        external_ips_v4: None,
        external_ips_v6: Some(Default::default()),
        inet_gw_map: None,
    };
    assert_eq!(
        port.set_external_ips(&req),
        Err(opte_api::OpteError::InvalidIpCfg)
    );
    assert_eq!(
        port.allow_cidr(p("fd00:1::/64"), Direction::In),
        Err(opte_api::OpteError::InvalidIpCfg)
    );
    assert!(
        port.add_router_entry(
            p("10.0.0.0/8"),
            RouterTarget::Ip(p("fd00::9")),
            RouterClass::Custom
        )
        .is_err()
    );
    assert_eq!(port.port().epoch(), e);
    assert_rules(&port, &[("gateway", 2, 5), ("router", 0, 2), ("nat", 0, 2)]);
    port.port_mut().pause().unwrap();
    assert!(port.allow_cidr(p("10.9.0.0/16"), Direction::In).is_err());
    assert!(port.cfg().ipv4().unwrap().transit_ips.is_empty());
}

/// g1 → g2 over TCP: encapsulated toward g2's sled in the VPC's VNI with the MSS option,
/// inner destination MAC g2's; g2 receives it from the gateway MAC; the reply goes back.
#[test]
fn guest_to_guest() {
    let rec = Recorder::new("guest_to_guest");
    let tables = Arc::new(VpcTables::default());
    let (g1, g2) = (g1_cfg(), g2_cfg());
    let mut p1 = setup(g1.clone(), &tables);
    let mut p2 = setup(g2.clone(), &tables);
    let syn = guest_pkt(
        &g1,
        IpAddr::Ip4(ip4(&g1)),
        IpAddr::Ip4(ip4(&g2)),
        tcp(44490, 80, flags::SYN),
    );
    let (r, mut pkt) = out(&mut p1, &rec, syn, T0);
    assert_eq!(r, ProcessResult::Modified);
    let n = net(&mut pkt);
    assert_eq!((n.outer.src, n.outer.dst), (g1.phys_ip, g2.phys_ip));
    assert_eq!(n.outer.geneve.vni, g1.vni);
    assert_eq!(n.outer.geneve.mss, Some(0));
    assert!(!n.outer.geneve.external);
    assert_eq!(n.inner.eth.dst, g2.guest_mac);
    assert_eq!(n.inner.eth.src, g1.guest_mac);
    assert_eq!(n.inner.flow.src_ip(), IpAddr::Ip4(ip4(&g1)));
    assert_eq!(p1.port().num_flows("firewall", Direction::Out), Some(1));
    assert_eq!(p1.port().num_flows("uft", Direction::Out), Some(1));
    assert_eq!(p1.port().num_tcp_flows(), 1);

    // The inbound side: admitted by the vni=VPC default rule, delivered from the gateway.
    let (r, mut pkt) = inb(&mut p2, &rec, pkt, T0);
    assert_eq!(r, ProcessResult::Modified);
    let m = guest(&mut pkt);
    assert_eq!((m.eth.src, m.eth.dst), (g2.gateway_mac, g2.guest_mac));
    assert_eq!(m.flow.dst_port(), 80);
    assert_eq!(p2.port().num_flows("firewall", Direction::In), Some(1));
    assert_eq!(p2.port().epoch(), 3);

    // g2 answers; g1 takes it.
    let mut ack = tcp(80, 44490, flags::SYN | flags::ACK);
    if let L4::Tcp { ack: a, .. } = &mut ack {
        *a = 1001;
    }
    let synack = guest_pkt(&g2, IpAddr::Ip4(ip4(&g2)), IpAddr::Ip4(ip4(&g1)), ack);
    let (r, pkt) = out(&mut p2, &rec, synack, T0);
    assert_eq!(r, ProcessResult::Modified);
    let (r, _) = inb(&mut p1, &rec, pkt, T0);
    assert_eq!(r, ProcessResult::Modified);
    assert_eq!(p1.port().stats().r#in.modified, 1);
}

#[test]
fn guest_to_guest_no_route_is_dropped_by_the_router() {
    let rec = Recorder::new("guest_to_guest_no_route");
    let tables = Arc::new(VpcTables::default());
    let (g1, g2) = (g1_cfg(), g2_cfg());
    let mut p1 = setup(g1.clone(), &tables);
    register(&tables, &g2);
    let sub = IpCfg::ipv4(&g1.ip_cfg).unwrap().vpc_subnet.into();
    let resp = p1
        .del_router_entry(sub, RouterTarget::VpcSubnet(sub), RouterClass::System)
        .unwrap();
    assert_eq!(resp, DelRouterEntryResp::Ok);
    assert_eq!(p1.port().epoch(), 4);
    let pkt = guest_pkt(
        &g1,
        IpAddr::Ip4(ip4(&g1)),
        IpAddr::Ip4(ip4(&g2)),
        tcp(1, 80, flags::SYN),
    );
    let (r, _) = out(&mut p1, &rec, pkt, T0);
    assert_eq!(r, layer_drop("router", DenyReason::Default));
    // Nothing is kept for a dropped flow (unlike the reference, SPEC §13 quirk 10).
    assert_eq!(p1.port().num_flows("firewall", Direction::Out), Some(0));
    assert_eq!(p1.port().num_tcp_flows(), 0);
    let again = p1
        .del_router_entry(sub, RouterTarget::VpcSubnet(sub), RouterClass::System)
        .unwrap();
    assert_eq!(again, DelRouterEntryResp::NotFound);
}

/// Guests in different VPCs: each is mapped only in its own VPC, so the sender's overlay
/// finds no peer to encapsulate toward and refuses, in either direction, keeping nothing.
/// Once the peer really is in the sender's VPC, the same packet leaves.
#[test]
fn guest_to_guest_diff_vpc_no_peer() {
    let rec = Recorder::new("guest_to_guest_diff_vpc_no_peer");
    let tables = Arc::new(VpcTables::default());
    let g1 = g1_cfg();
    let mut g2 = g2_cfg();
    g2.vni = vni(VNI + 1);
    let mut p1 = setup(g1.clone(), &tables);
    let mut p2 = setup(g2.clone(), &tables);
    assert!(tables.v2p.get(g2.vni, IpAddr::Ip4(ip4(&g2))).is_some());
    assert!(tables.v2p.get(g1.vni, IpAddr::Ip4(ip4(&g2))).is_none());
    for (from, to, port) in [(&g1, &g2, &mut p1), (&g2, &g1, &mut p2)] {
        let syn = guest_pkt(
            from,
            IpAddr::Ip4(ip4(from)),
            IpAddr::Ip4(ip4(to)),
            tcp(44490, 80, flags::SYN),
        );
        let dns = guest_pkt(
            from,
            IpAddr::Ip4(ip4(from)),
            IpAddr::Ip4(ip4(to)),
            udp(5000, 53),
        );
        for pkt in [syn, dns] {
            let (r, _) = out(port, &rec, pkt, T0);
            assert_eq!(r, layer_drop("overlay", DenyReason::Action));
        }
        let st = port.port().stats().out;
        assert_eq!((st.drop, st.drop_layer, st.modified), (2, 2, 0));
        assert_eq!(port.port().num_flows("uft", Direction::Out), Some(0));
        assert_eq!(port.port().num_flows("firewall", Direction::Out), Some(0));
        assert_eq!(port.port().num_tcp_flows(), 0);
        assert_eq!(port.port().epoch(), 3);
    }
    // g2 moves into g1's VPC: g1's packet now leaves toward g2's sled in g1's VNI.
    let mut same = g2.clone();
    same.vni = g1.vni;
    register(&tables, &same);
    let pkt = guest_pkt(
        &g1,
        IpAddr::Ip4(ip4(&g1)),
        IpAddr::Ip4(ip4(&g2)),
        tcp(44491, 80, flags::SYN),
    );
    let (r, mut pkt) = out(&mut p1, &rec, pkt, T0);
    assert_eq!(r, ProcessResult::Modified);
    let n = net(&mut pkt);
    assert_eq!((n.outer.dst, n.outer.geneve.vni), (g2.phys_ip, g1.vni));
}

/// Random flows from a guest in VNI A never reach a port in VNI B, whatever the firewall
/// and routes of B say, in either direction.
#[test]
fn isolation_between_vpcs() {
    let rec = Recorder::new("isolation_between_vpcs");
    let tables = Arc::new(VpcTables::default());
    let a = g1_cfg();
    let mut b = g2_cfg();
    b.vni = vni(4242);
    let mut pa = setup(a.clone(), &tables);
    let mut pb = setup(b.clone(), &tables);
    let allow_all: Vec<FirewallRule> = vec![
        p("dir=in action=allow priority=0"),
        p("dir=out action=allow priority=0"),
    ];
    pa.set_fw_rules(&allow_all).unwrap();
    // A stale control plane maps each guest's address into the other VPC too, so packets
    // do leave the sender toward the other VPC's sled.
    for (x, y) in [(&a, &b), (&b, &a)] {
        let ph = PhysNet {
            ether: y.guest_mac,
            ip: y.phys_ip,
            vni: x.vni,
        };
        tables.v2p.add(IpAddr::Ip4(ip4(y)), ph).unwrap();
        tables.v2p.add(IpAddr::Ip6(ip6(y)), ph).unwrap();
    }
    pb.set_fw_rules(&allow_all).unwrap();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut rnd = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut reached = 0;
    for _ in 0..300 {
        let x = rnd();
        let (from, to, pf, pt) = if x & 1 == 0 {
            (&a, &b, &mut pa, &mut pb)
        } else {
            (&b, &a, &mut pb, &mut pa)
        };
        let v6 = x & 2 != 0;
        let (src, dst) = if v6 {
            (IpAddr::Ip6(ip6(from)), IpAddr::Ip6(ip6(to)))
        } else {
            (IpAddr::Ip4(ip4(from)), IpAddr::Ip4(ip4(to)))
        };
        let l4 = match (x >> 8) % 3 {
            0 => tcp((x >> 16) as u16 | 1, (x >> 32) as u16 | 1, flags::SYN),
            1 => udp((x >> 16) as u16 | 1, (x >> 32) as u16 | 1),
            _ if v6 => L4::Icmp6 {
                ty: 128,
                id: (x >> 16) as u16,
                seq: 1,
            },
            _ => L4::Icmp4 {
                ty: 8,
                id: (x >> 16) as u16,
                seq: 1,
            },
        };
        let (r, pkt) = out(pf, &rec, guest_pkt(from, src, dst, l4), T0);
        if r == ProcessResult::Modified {
            // Whatever left the sender carries the sender's VNI; the other VPC refuses it.
            let (r, _) = inb(pt, &rec, pkt, T0);
            assert_eq!(r, layer_drop("overlay", DenyReason::Action));
            reached += 1;
        }
        // Even a frame re-wrapped in the receiver's VNI by a confused underlay stays out
        // unless it is addressed to the receiver's guest MAC and IP.
        let inner = frame(
            from.guest_mac,
            to.guest_mac,
            src,
            p(if v6 { "fd00::99" } else { "172.30.0.99" }),
            udp(1, 2),
            &[],
        );
        let (r, _) = inb(
            pt,
            &rec,
            encap(from.phys_ip, to.phys_ip, to.vni, false, &inner),
            T0,
        );
        assert_ne!(r, ProcessResult::Modified);
    }
    assert!(reached > 0, "some flows must at least leave the sender");
    assert_eq!(
        pa.port().stats().r#in.modified + pb.port().stats().r#in.modified,
        0
    );
}

/// The inbound VNI check is effective (the reference's validator could never match, SPEC
/// §13 quirk 2): a unicast packet on another VNI, or a multicast one off the multicast VNI,
/// is refused by the overlay.
#[test]
fn inbound_vni_is_validated() {
    let rec = Recorder::new("inbound_vni_is_validated");
    let tables = Arc::new(VpcTables::default());
    let (g1, g2) = (g1_cfg(), g2_cfg());
    let mut port = setup(g1.clone(), &tables);
    port.add_fw_rule(&p("dir=in action=allow priority=10 protocol=udp"))
        .unwrap();
    let f = frame(
        g2.guest_mac,
        g1.guest_mac,
        IpAddr::Ip4(ip4(&g2)),
        IpAddr::Ip4(ip4(&g1)),
        udp(1, 2),
        &[],
    );
    let (r, _) = inb(
        &mut port,
        &rec,
        encap(g2.phys_ip, g1.phys_ip, vni(VNI + 1), false, &f),
        T0,
    );
    assert_eq!(r, layer_drop("overlay", DenyReason::Action));
    let (r, _) = inb(
        &mut port,
        &rec,
        encap(g2.phys_ip, g1.phys_ip, g1.vni, false, &f),
        T0,
    );
    assert_eq!(r, ProcessResult::Modified);
    let m: MacAddr = p("01:00:5e:01:02:03");
    let mf = frame(
        g2.guest_mac,
        m,
        IpAddr::Ip4(ip4(&g2)),
        p("239.1.2.3"),
        udp(1, 2),
        &[],
    );
    let (r, _) = inb(
        &mut port,
        &rec,
        encap(g2.phys_ip, g1.phys_ip, g1.vni, false, &mf),
        T0,
    );
    assert_eq!(r, layer_drop("overlay", DenyReason::Action));
    let (r, mut pkt) = inb(
        &mut port,
        &rec,
        encap(g2.phys_ip, g1.phys_ip, vni(77), false, &mf),
        T0,
    );
    assert_eq!(r, ProcessResult::Modified);
    assert_eq!(guest(&mut pkt).eth.src, g1.gateway_mac);
}

#[test]
fn anti_spoof_from_every_angle() {
    let rec = Recorder::new("anti_spoof");
    let tables = Arc::new(VpcTables::default());
    let (g1, g2) = (g1_cfg(), g2_cfg());
    let mut port = setup(g1.clone(), &tables);
    register(&tables, &g2);
    let foreign_mac: MacAddr = p("a8:40:25:00:00:99");
    let cases: Vec<(MacAddr, IpAddr, IpAddr)> = vec![
        (g1.guest_mac, p("172.30.0.77"), IpAddr::Ip4(ip4(&g2))),
        (foreign_mac, IpAddr::Ip4(ip4(&g1)), IpAddr::Ip4(ip4(&g2))),
        (foreign_mac, p("172.30.0.77"), IpAddr::Ip4(ip4(&g2))),
        (g1.guest_mac, p("fd00::77"), IpAddr::Ip6(ip6(&g2))),
        (foreign_mac, IpAddr::Ip6(ip6(&g1)), IpAddr::Ip6(ip6(&g2))),
        (g1.guest_mac, IpAddr::Ip6(ip6(&g2)), IpAddr::Ip6(ip6(&g2))),
    ];
    for (i, (mac, src, dst)) in cases.into_iter().enumerate() {
        let f = frame(
            mac,
            g1.gateway_mac,
            src,
            dst,
            tcp(1000 + i as u16, 80, flags::SYN),
            &[],
        );
        let (r, _) = out(&mut port, &rec, Packet::copy_from(&f), T0);
        assert_eq!(
            r,
            layer_drop("gateway", DenyReason::Default),
            "case {i}: {mac} {src}"
        );
    }
    assert_eq!(port.port().stats().out.drop_layer, 6);
    assert_eq!(port.port().num_flows("uft", Direction::Out), Some(0));
    // Inbound for an address that is not the guest's is refused too.
    let f = frame(
        p(TEP_MAC),
        g1.guest_mac,
        p(REMOTE4),
        p("172.30.0.77"),
        tcp(80, 22, flags::SYN),
        &[],
    );
    let (r, _) = inb(
        &mut port,
        &rec,
        encap(p(BOUNDARY_IP), g1.phys_ip, g1.vni, false, &f),
        T0,
    );
    assert_eq!(r, layer_drop("gateway", DenyReason::Default));
}

/// A custom route with an instance target plus allow-cidr on the receiver carries
/// 192.168.0.0/16 traffic to that port.
#[test]
fn port_as_router_target() {
    let rec = Recorder::new("port_as_router_target");
    let tables = Arc::new(VpcTables::default());
    let (g1, g2) = (g1_cfg(), g2_cfg());
    let mut p1 = setup(g1.clone(), &tables);
    let mut p2 = setup(g2.clone(), &tables);
    p1.add_router_entry(
        p("192.168.0.0/16"),
        RouterTarget::Ip(IpAddr::Ip4(ip4(&g2))),
        RouterClass::Custom,
    )
    .unwrap();
    let pkt = || {
        guest_pkt(
            &g1,
            IpAddr::Ip4(ip4(&g1)),
            p("192.168.1.1"),
            L4::Icmp4 {
                ty: 8,
                id: 1,
                seq: 1,
            },
        )
    };
    let (r, mut pkt1) = out(&mut p1, &rec, pkt(), T0);
    assert_eq!(r, ProcessResult::Modified);
    let n = net(&mut pkt1);
    assert_eq!(n.outer.dst, g2.phys_ip);
    assert_eq!(n.inner.eth.dst, g2.guest_mac);
    let (r, _) = inb(&mut p2, &rec, out(&mut p1, &rec, pkt(), T0).1, T0);
    assert_eq!(
        r,
        layer_drop("gateway", DenyReason::Default),
        "not yet allowed in"
    );
    p2.allow_cidr(p("192.168.0.0/16"), Direction::In).unwrap();
    let (r, mut pkt) = inb(&mut p2, &rec, out(&mut p1, &rec, pkt(), T0).1, T0);
    assert_eq!(r, ProcessResult::Modified);
    assert_eq!(guest(&mut pkt).flow.dst_ip(), p::<IpAddr>("192.168.1.1"));
    assert_eq!(
        p2.remove_cidr(p("192.168.0.0/16"), Direction::In).unwrap(),
        RemoveCidrResp::Ok(p("192.168.0.0/16"))
    );
    assert_eq!(
        p2.remove_cidr(p("192.168.0.0/16"), Direction::In).unwrap(),
        RemoveCidrResp::NotFound
    );
}

#[test]
fn router_replace_keeps_the_multicast_rule() {
    let tables = Arc::new(VpcTables::default());
    let mut port = setup(g1_cfg(), &tables);
    let e = port.port().epoch();
    port.set_router_entries(&[(
        p("0.0.0.0/0"),
        RouterTarget::InternetGateway(None),
        RouterClass::System,
    )])
    .unwrap();
    assert_eq!(port.port().epoch(), e + 1);
    assert_rules(&port, &[("router", 0, 2)]);
    let d = port.port().dump_layer("router").unwrap();
    assert_eq!(
        d.rules_out[0].rule.priority, 0,
        "multicast allow stays first"
    );
    assert_eq!(d.rules_out[1].rule.priority, 75);
    assert_eq!(port.routes().count(), 1);
    let r = port
        .del_router_entry(
            p("0.0.0.0/0"),
            RouterTarget::InternetGateway(None),
            RouterClass::System,
        )
        .unwrap();
    assert_eq!(r, DelRouterEntryResp::Ok);
    assert_rules(&port, &[("router", 0, 1)]);
}

#[test]
fn multicast_encapsulation_and_tcp_multicast_denied() {
    let rec = Recorder::new("multicast");
    let tables = Arc::new(VpcTables::default());
    let g1 = g1_cfg();
    let mut port = setup(g1.clone(), &tables);
    let group: IpAddr = p("ff04::1:3");
    let underlay = MulticastUnderlay::new(p("ff04::99")).unwrap();
    let pkt = || guest_pkt(&g1, IpAddr::Ip6(ip6(&g1)), group, udp(5000, 5001));
    let (r, _) = out(&mut port, &rec, pkt(), T0);
    assert_eq!(
        r,
        layer_drop("overlay", DenyReason::Action),
        "no M2P entry yet"
    );
    tables.m2p.set(group, underlay).unwrap();
    port.port_mut().clear_uft().unwrap();
    let (r, mut pkt) = out(&mut port, &rec, pkt(), T0);
    assert_eq!(r, ProcessResult::Modified);
    let n = net(&mut pkt);
    assert_eq!(n.outer.dst, underlay.addr());
    assert_eq!(n.outer.eth.dst, p::<MacAddr>("33:33:00:00:00:99"));
    assert_eq!(n.outer.geneve.vni, vni(77));
    assert_eq!(n.outer.geneve.replication, Some(Replication::External));
    assert_eq!(n.inner.eth.dst, p::<MacAddr>("33:33:00:01:00:03"));
    let t = guest_pkt(
        &g1,
        IpAddr::Ip6(ip6(&g1)),
        group,
        tcp(5000, 5001, flags::SYN),
    );
    let (r, _) = out(&mut port, &rec, t, T0);
    assert_eq!(r, layer_drop("overlay", DenyReason::Action));
}
