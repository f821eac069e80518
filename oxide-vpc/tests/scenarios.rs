//! Scenario tests of the VPC port (counterparts of the reference's integration tests,
//! SPEC §11.1): real packets through a port built by `VpcPort`, asserting headers,
//! counters, flow counts and epochs.

mod common;

use common::*;
use opte::engine::port::ProcessResult;
use opte::engine::stats::{DenyReason, DropReason};
use opte::engine::time::Moment;
use opte::wire::geneve::GENEVE_OPT_CLASS_OXIDE;
use opte::wire::tcp::flags;
use opte_api::{Direction, IpAddr, MacAddr, MulticastUnderlay, Vni};
use oxide_vpc::api::{AttachedSubnetConfig, RouterClass, RouterTarget, SetExternalIpsReq};
use oxide_vpc::tables::VpcTables;
use std::sync::Arc;

const T0: Moment = Moment::ZERO;

fn layer_drop(layer: &'static str, reason: DenyReason) -> ProcessResult {
    ProcessResult::Drop(DropReason::Layer { layer, reason })
}

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
    let ProcessResult::Hairpin(reply) = r else {
        panic!("{r:?}")
    };
    let mut reply = opte::packet::Packet::copy_from(&reply);
    let m = guest(&mut reply);
    assert_eq!((m.eth.src, m.eth.dst), (g1.gateway_mac, g1.guest_mac));
    assert_eq!(
        (m.flow.src_ip(), m.flow.dst_ip()),
        (gw, IpAddr::Ip4(ip4(&g1)))
    );
    assert_eq!((m.flow.icmp_type(), m.flow.icmp_id()), (0, 7));
    assert_eq!(port.port().stats().out.hairpin, 1);
    assert_eq!(port.port().num_flows("uft", Direction::Out), Some(0));

    // ARP for the gateway is answered; ARP for anyone else is not.
    let arp = |tpa: &str| {
        let h = opte::build::Headers {
            encap: None,
            eth: opte::wire::ether::EtherRepr {
                dst: MacAddr::BROADCAST,
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
        opte::packet::Packet::copy_from(&h.build(&[]).unwrap())
    };
    let (r, _) = out(&mut port, &rec, arp("172.30.0.1"), T0);
    let ProcessResult::Hairpin(reply) = r else {
        panic!("{r:?}")
    };
    let mut reply = opte::packet::Packet::copy_from(&reply);
    let m = guest(&mut reply);
    assert_eq!((m.eth.src, m.eth.dst), (g1.gateway_mac, g1.guest_mac));
    let (r, _) = out(&mut port, &rec, arp("172.30.0.9"), T0);
    assert_eq!(r, ProcessResult::Drop(DropReason::HandlePkt));
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
    let sub = oxide_vpc::api::IpCfg::ipv4(&g1.ip_cfg)
        .unwrap()
        .vpc_subnet
        .into();
    let resp = p1
        .del_router_entry(sub, RouterTarget::VpcSubnet(sub), RouterClass::System)
        .unwrap();
    assert_eq!(resp, oxide_vpc::api::DelRouterEntryResp::Ok);
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
    assert_eq!(again, oxide_vpc::api::DelRouterEntryResp::NotFound);
}

#[test]
fn guest_to_internet_ipv4_uses_snat_and_boundary_services() {
    let rec = Recorder::new("guest_to_internet_ipv4");
    let tables = Arc::new(VpcTables::default());
    let g1 = g1_cfg();
    let mut port = setup(g1.clone(), &tables);
    add_igw_routes(&mut port, None);
    let pkt = guest_pkt(
        &g1,
        IpAddr::Ip4(ip4(&g1)),
        p(REMOTE4),
        tcp(5555, 443, flags::SYN),
    );
    let (r, mut pkt) = out(&mut port, &rec, pkt, T0);
    assert_eq!(r, ProcessResult::Modified);
    let n = net(&mut pkt);
    assert_eq!(n.outer.dst, p(BOUNDARY_IP));
    assert_eq!(n.outer.geneve.vni, vni(BOUNDARY_VNI));
    assert_eq!(n.outer.geneve.mss, None);
    assert_eq!(n.inner.eth.dst, p(TEP_MAC));
    assert_eq!(n.inner.flow.src_ip(), p::<IpAddr>("10.77.77.13"));
    let sport = n.inner.flow.src_port();
    assert!((1025..=4096).contains(&sport), "{sport}");
    assert_eq!(n.inner.flow.dst_port(), 443);
    assert_eq!(port.port().num_flows("nat", Direction::Out), Some(1));

    // The reply to the SNAT address and port comes back to the guest.
    let mut l4 = tcp(443, sport, flags::SYN | flags::ACK);
    if let L4::Tcp { ack, .. } = &mut l4 {
        *ack = 1001;
    }
    let reply = from_internet(&g1, p(REMOTE4), p("10.77.77.13"), l4);
    let (r, mut pkt) = inb(&mut port, &rec, reply, T0);
    assert_eq!(r, ProcessResult::Modified);
    let m = guest(&mut pkt);
    assert_eq!(m.flow.dst_ip(), IpAddr::Ip4(ip4(&g1)));
    assert_eq!(m.flow.dst_port(), 5555);
    assert_eq!(m.eth.src, g1.gateway_mac);
}

#[test]
fn guest_to_internet_ipv6_and_ephemeral_ip_preferred_over_snat() {
    let rec = Recorder::new("guest_to_internet_ipv6");
    let tables = Arc::new(VpcTables::default());
    let g1 = g1_cfg();
    let mut port = setup(g1.clone(), &tables);
    add_igw_routes(&mut port, None);
    let pkt = guest_pkt(&g1, IpAddr::Ip6(ip6(&g1)), p(REMOTE6), udp(5555, 53));
    let (r, mut pkt) = out(&mut port, &rec, pkt, T0);
    assert_eq!(r, ProcessResult::Modified);
    let n = net(&mut pkt);
    assert_eq!(n.inner.flow.src_ip(), p::<IpAddr>("2001:db8::1"));
    assert!((4097..=8192).contains(&n.inner.flow.src_port()));

    let e0 = port.port().epoch();
    set_ephemeral(&mut port, Some("10.60.1.20"), Some("2001:db8::2"));
    assert_eq!(port.port().epoch(), e0 + 1);
    assert_rules(&port, &[("nat", 2, 5)]);
    for (src, dst, want) in [
        (IpAddr::Ip4(ip4(&g1)), p::<IpAddr>(REMOTE4), "10.60.1.20"),
        (IpAddr::Ip6(ip6(&g1)), p::<IpAddr>(REMOTE6), "2001:db8::2"),
    ] {
        let pkt = guest_pkt(&g1, src, dst, tcp(6000, 80, flags::SYN));
        let (r, mut pkt) = out(&mut port, &rec, pkt, T0);
        assert_eq!(r, ProcessResult::Modified);
        let n = net(&mut pkt);
        assert_eq!(n.inner.flow.src_ip(), p::<IpAddr>(want));
        assert_eq!(n.inner.flow.src_port(), 6000, "1:1 NAT keeps the port");
    }
}

#[test]
fn external_ip_epoch_affinity_preserved() {
    let rec = Recorder::new("external_ip_epoch_affinity_preserved");
    let tables = Arc::new(VpcTables::default());
    let g1 = g1_cfg();
    let mut port = setup(g1.clone(), &tables);
    add_igw_routes(&mut port, None);
    set_ephemeral(&mut port, Some("10.60.1.20"), None);
    // An inbound connection to the ephemeral IP (admitted by the TCP/22 default rule).
    let syn = from_internet(&g1, p(REMOTE4), p("10.60.1.20"), tcp(40000, 22, flags::SYN));
    let (r, _) = inb(&mut port, &rec, syn, T0);
    assert_eq!(r, ProcessResult::Modified);
    // A floating IP appears: floating IPs are preferred for new flows...
    let mut e4 = port.cfg().ipv4().unwrap().external_ips.clone();
    e4.floating_ips = vec![p("10.60.1.99")];
    let e0 = port.port().epoch();
    port.set_external_ips(&SetExternalIpsReq {
        port_name: "g".into(),
        external_ips_v4: Some(e4),
        external_ips_v6: None,
        inet_gw_map: None,
    })
    .unwrap();
    assert_eq!(port.port().epoch(), e0 + 1);
    // ...but the established flow's reply still leaves from the ephemeral IP.
    let mut l4 = tcp(22, 40000, flags::SYN | flags::ACK);
    if let L4::Tcp { ack, .. } = &mut l4 {
        *ack = 1001;
    }
    let reply = guest_pkt(&g1, IpAddr::Ip4(ip4(&g1)), p(REMOTE4), l4);
    let (r, mut pkt) = out(&mut port, &rec, reply, T0);
    assert_eq!(r, ProcessResult::Modified);
    assert_eq!(net(&mut pkt).inner.flow.src_ip(), p::<IpAddr>("10.60.1.20"));
    // A new flow uses the floating IP.
    let new = guest_pkt(
        &g1,
        IpAddr::Ip4(ip4(&g1)),
        p(REMOTE4),
        tcp(7000, 80, flags::SYN),
    );
    let (r, mut pkt) = out(&mut port, &rec, new, T0);
    assert_eq!(r, ProcessResult::Modified);
    assert_eq!(net(&mut pkt).inner.flow.src_ip(), p::<IpAddr>("10.60.1.99"));
}

#[test]
fn select_eip_conditioned_on_igw() {
    let rec = Recorder::new("select_eip_conditioned_on_igw");
    let tables = Arc::new(VpcTables::default());
    let g1 = g1_cfg();
    let mut port = setup(g1.clone(), &tables);
    let igw1: oxide_vpc::api::Uuid = p("00000000-0000-4000-8000-000000000001");
    let igw2: oxide_vpc::api::Uuid = p("00000000-0000-4000-8000-000000000002");
    port.add_router_entry(
        p("1.1.1.0/24"),
        RouterTarget::InternetGateway(Some(igw1)),
        RouterClass::Custom,
    )
    .unwrap();
    port.add_router_entry(
        p("2.2.2.0/24"),
        RouterTarget::InternetGateway(Some(igw2)),
        RouterClass::Custom,
    )
    .unwrap();
    let mut e4 = port.cfg().ipv4().unwrap().external_ips.clone();
    e4.snat = None;
    e4.ephemeral_ip = Some(p("10.60.1.20"));
    e4.floating_ips = vec![p("10.60.1.99")];
    let mut map = oxide_vpc::api::InternetGatewayMap::new();
    map.insert(p("10.60.1.20"), [igw1].into_iter().collect());
    map.insert(p("10.60.1.99"), [igw2].into_iter().collect());
    port.set_external_ips(&SetExternalIpsReq {
        port_name: "g".into(),
        external_ips_v4: Some(e4),
        external_ips_v6: None,
        inet_gw_map: Some(map),
    })
    .unwrap();
    for (dst, want) in [("1.1.1.1", "10.60.1.20"), ("2.2.2.2", "10.60.1.99")] {
        let pkt = guest_pkt(&g1, IpAddr::Ip4(ip4(&g1)), p(dst), udp(1234, 53));
        let (r, mut pkt) = out(&mut port, &rec, pkt, T0);
        assert_eq!(r, ProcessResult::Modified, "to {dst}");
        assert_eq!(
            net(&mut pkt).inner.flow.src_ip(),
            p::<IpAddr>(want),
            "to {dst}"
        );
    }
    // An IGW route with no usable source address is dropped, not leaked.
    port.add_router_entry(
        p("3.3.3.0/24"),
        RouterTarget::InternetGateway(None),
        RouterClass::Custom,
    )
    .unwrap();
    let pkt = guest_pkt(&g1, IpAddr::Ip4(ip4(&g1)), p("3.3.3.3"), udp(1234, 53));
    let (r, _) = out(&mut port, &rec, pkt, T0);
    assert_eq!(r, layer_drop("nat", DenyReason::Rule));
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
        let (r, _) = out(&mut port, &rec, opte::packet::Packet::copy_from(&f), T0);
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
    let allow_all: Vec<oxide_vpc::api::FirewallRule> = vec![
        p("dir=in action=allow priority=0"),
        p("dir=out action=allow priority=0"),
    ];
    pa.set_fw_rules(&allow_all).unwrap();
    // A stale control plane maps each guest's address into the other VPC too, so packets
    // do leave the sender toward the other VPC's sled.
    for (x, y) in [(&a, &b), (&b, &a)] {
        let ph = oxide_vpc::api::PhysNet {
            ether: y.guest_mac,
            ip: y.phys_ip,
            vni: x.vni,
        };
        tables.v2p.add(IpAddr::Ip4(ip4(y)), ph);
        tables.v2p.add(IpAddr::Ip6(ip6(y)), ph);
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
    assert_eq!(
        n.outer.geneve.replication,
        Some(opte::wire::geneve::Replication::External)
    );
    assert_eq!(n.inner.eth.dst, p::<MacAddr>("33:33:00:01:00:03"));
    let t = guest_pkt(
        &g1,
        IpAddr::Ip6(ip6(&g1)),
        group,
        tcp(5000, 5001, flags::SYN),
    );
    let (r, _) = out(&mut port, &rec, t, T0);
    assert_eq!(r, layer_drop("overlay", DenyReason::Action));
    let _ = GENEVE_OPT_CLASS_OXIDE;
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
    assert_eq!(r, oxide_vpc::api::DelRouterEntryResp::Ok);
    assert_rules(&port, &[("router", 0, 1)]);
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

#[test]
fn external_attached_subnets_skip_nat_and_cannot_reach_internal() {
    let rec = Recorder::new("external_attached_subnets");
    let tables = Arc::new(VpcTables::default());
    let (g1, g2) = (g1_cfg(), g2_cfg());
    let mut port = setup(g1.clone(), &tables);
    register(&tables, &g2);
    add_igw_routes(&mut port, None);
    let e0 = port.port().epoch();
    port.attach_subnet(
        p("203.0.113.0/24"),
        AttachedSubnetConfig { is_external: true },
    )
    .unwrap();
    assert_eq!(port.port().epoch(), e0 + 2, "nat and gateway refreshed");
    // To the internet from the attached subnet: not NATed, to boundary services.
    let pkt = guest_pkt(&g1, p("203.0.113.7"), p(REMOTE4), udp(1, 53));
    let (r, mut pkt) = out(&mut port, &rec, pkt, T0);
    assert_eq!(r, ProcessResult::Modified);
    let n = net(&mut pkt);
    assert_eq!(n.inner.flow.src_ip(), p::<IpAddr>("203.0.113.7"));
    assert_eq!(n.outer.dst, p(BOUNDARY_IP));
    // To a VPC-private address: refused by the overlay.
    let pkt = guest_pkt(&g1, p("203.0.113.7"), IpAddr::Ip4(ip4(&g2)), udp(1, 53));
    let (r, _) = out(&mut port, &rec, pkt, T0);
    assert_eq!(r, layer_drop("overlay", DenyReason::Action));
    // Inbound to the subnet passes the gateway exception.
    let inb_pkt = from_internet(&g1, p(REMOTE4), p("203.0.113.7"), tcp(80, 22, flags::SYN));
    let (r, _) = inb(&mut port, &rec, inb_pkt, T0);
    assert_eq!(r, ProcessResult::Modified);
    assert_eq!(
        port.detach_subnet(p("203.0.113.0/24")).unwrap(),
        oxide_vpc::api::DetachSubnetResp::Ok(p("203.0.113.0/24"))
    );
    assert_eq!(
        port.detach_subnet(p("203.0.113.0/24")).unwrap(),
        oxide_vpc::api::DetachSubnetResp::NotFound
    );
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
        oxide_vpc::api::RemoveCidrResp::Ok(p("192.168.0.0/16"))
    );
    assert_eq!(
        p2.remove_cidr(p("192.168.0.0/16"), Direction::In).unwrap(),
        oxide_vpc::api::RemoveCidrResp::NotFound
    );
}

#[test]
fn rejected_requests_change_nothing() {
    let tables = Arc::new(VpcTables::default());
    let mut c = g1_cfg();
    let v4 = c.ipv4().unwrap().clone();
    c.ip_cfg = oxide_vpc::api::IpCfg::Ipv4(v4);
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
    let _ = Vni::new(1);
}
