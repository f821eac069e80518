//! Attached subnets (SPEC §4.8, §11.1 "Attached subnets"). An internal one opens the
//! anti-spoof rules both ways, is not NATed, never reaches the internet, and leaves a
//! transit IP on the same block alone when it is attached and detached. An external one is
//! reached from outside without NAT and can only talk to boundary services.

mod common;

use common::*;
use opte::engine::port::ProcessResult;
use opte::engine::stats::{DenyReason, DropReason};
use opte::engine::time::Moment;
use opte::packet::Packet;
use opte::wire::tcp::flags;
use opte_api::{Direction, IpAddr};
use oxide_vpc::api::{AttachedSubnetConfig, DetachSubnetResp};
use oxide_vpc::tables::VpcTables;
use std::sync::Arc;

const T0: Moment = Moment::ZERO;

#[test]
fn internal_attached_subnets() {
    let rec = Recorder::new("internal_attached_subnets");
    let tables = Arc::new(VpcTables::default());
    let (g1, g2) = (g1_cfg(), g2_cfg());
    let mut port = setup(g1.clone(), &tables);
    register(&tables, &g2);
    let block = p("10.9.0.0/16");
    let inside: IpAddr = p("10.9.1.5");
    let peer = IpAddr::Ip4(ip4(&g2));
    let gw_default = ProcessResult::Drop(DropReason::Layer {
        layer: "gateway",
        reason: DenyReason::Default,
    });
    let from_inside = |sport| guest_pkt(&g1, inside, peer, tcp(sport, 80, flags::SYN));
    let to_inside = |sport| {
        let f = frame(
            g2.guest_mac,
            g1.guest_mac,
            peer,
            inside,
            tcp(sport, 80, flags::SYN),
            &[],
        );
        encap(g2.phys_ip, g1.phys_ip, g1.vni, false, &f)
    };
    let send = |port: &mut _, pkt: Packet, dir| match dir {
        Direction::Out => out(port, &rec, pkt, T0).0,
        Direction::In => inb(port, &rec, pkt, T0).0,
    };

    assert_eq!(send(&mut port, from_inside(1), Direction::Out), gw_default);
    assert_eq!(send(&mut port, to_inside(1), Direction::In), gw_default);

    // A transit IP block, inbound only.
    port.allow_cidr(block, Direction::In).unwrap();
    assert_rules(&port, &[("gateway", 6, 12)]);
    assert_eq!(
        send(&mut port, to_inside(2), Direction::In),
        ProcessResult::Modified
    );
    assert_eq!(send(&mut port, from_inside(2), Direction::Out), gw_default);

    // The same block attached: one inbound exception (shared), one outbound.
    let e = port.port().epoch();
    port.attach_subnet(block, AttachedSubnetConfig { is_external: false })
        .unwrap();
    assert!(port.port().epoch() > e);
    assert_rules(&port, &[("gateway", 6, 13), ("nat", 0, 3)]);
    assert_eq!(
        port.cfg()
            .ipv4()
            .unwrap()
            .attached_subnets
            .get(&p("10.9.0.0/16")),
        Some(&AttachedSubnetConfig { is_external: false })
    );
    let (r, mut pkt) = out(&mut port, &rec, from_inside(3), T0);
    assert_eq!(r, ProcessResult::Modified);
    let n = net(&mut pkt);
    assert_eq!(n.inner.flow.src_ip(), inside, "not NATed");
    assert_eq!(n.outer.dst, g2.phys_ip);
    assert_eq!(n.outer.geneve.vni, g1.vni);
    assert!(!n.outer.geneve.external);
    assert_eq!(
        send(&mut port, to_inside(3), Direction::In),
        ProcessResult::Modified
    );

    // Detached: outbound closes again, the transit IP still admits inbound.
    assert_eq!(
        port.detach_subnet(block).unwrap(),
        DetachSubnetResp::Ok(block)
    );
    assert_rules(&port, &[("gateway", 6, 12)]);
    assert!(port.cfg().ipv4().unwrap().attached_subnets.is_empty());
    assert_eq!(
        port.cfg()
            .ipv4()
            .unwrap()
            .transit_ips
            .get(&p("10.9.0.0/16"))
            .map(|t| (t.allow_in, t.allow_out)),
        Some((true, false))
    );
    assert_eq!(send(&mut port, from_inside(4), Direction::Out), gw_default);
    assert_eq!(
        send(&mut port, to_inside(4), Direction::In),
        ProcessResult::Modified
    );
    port.remove_cidr(block, Direction::In).unwrap();
    assert_rules(&port, &[("gateway", 5, 12)]);
    assert_eq!(send(&mut port, to_inside(5), Direction::In), gw_default);
}

/// An internal attached subnet is not one of the guest's NAT sources: its traffic routed to
/// the internet gateway finds no usable external address and is dropped by NAT rather than
/// leaving with a VPC-internal source, while the guest's own address still goes out SNATed.
#[test]
fn internal_attached_subnet_to_the_internet_is_dropped_by_nat() {
    let rec = Recorder::new("internal_attached_subnet_to_the_internet");
    let tables = Arc::new(VpcTables::default());
    let g1 = g1_cfg();
    let mut port = setup(g1.clone(), &tables);
    add_igw_routes(&mut port, None);
    port.attach_subnet(
        p("10.9.0.0/16"),
        AttachedSubnetConfig { is_external: false },
    )
    .unwrap();
    assert_rules(&port, &[("gateway", 6, 13), ("nat", 0, 3)]);
    let inside: IpAddr = p("10.9.1.5");
    let (r, _) = out(
        &mut port,
        &rec,
        guest_pkt(&g1, inside, p(REMOTE4), tcp(5555, 443, flags::SYN)),
        T0,
    );
    assert_eq!(r, layer_drop("nat", DenyReason::Rule));
    assert_eq!(port.port().num_flows("nat", Direction::Out), Some(0));
    assert_eq!(port.port().num_flows("uft", Direction::Out), Some(0));
    assert_eq!(port.port().num_tcp_flows(), 0);
    let (r, mut pkt) = out(
        &mut port,
        &rec,
        guest_pkt(
            &g1,
            IpAddr::Ip4(ip4(&g1)),
            p(REMOTE4),
            tcp(5555, 443, flags::SYN),
        ),
        T0,
    );
    assert_eq!(r, ProcessResult::Modified);
    let n = net(&mut pkt);
    assert_eq!(n.inner.flow.src_ip(), p::<IpAddr>("10.77.77.13"));
    assert_eq!(n.outer.dst, p(BOUNDARY_IP));
    let st = port.port().stats().out;
    assert_eq!((st.drop_layer, st.modified), (1, 1));
}

/// An external attached subnet is reached from outside without NAT: a connection from the
/// internet to an address in it is delivered untranslated, and the guest's reply leaves
/// from that address to boundary services, as does a flow the guest opens from it.
#[test]
fn external_attached_subnets_dont_apply_nat() {
    let rec = Recorder::new("external_attached_subnets_dont_apply_nat");
    let tables = Arc::new(VpcTables::default());
    let g1 = g1_cfg();
    let mut port = setup(g1.clone(), &tables);
    add_igw_routes(&mut port, None);
    let block = p("203.0.113.0/24");
    let e0 = port.port().epoch();
    port.attach_subnet(block, AttachedSubnetConfig { is_external: true })
        .unwrap();
    assert_eq!(port.port().epoch(), e0 + 2, "nat and gateway refreshed");
    assert_rules(&port, &[("gateway", 6, 13), ("nat", 1, 4)]);
    let addr: IpAddr = p("203.0.113.7");
    let remote: IpAddr = p(REMOTE4);

    let syn = from_internet(&g1, remote, addr, tcp(40000, 22, flags::SYN));
    let (r, mut pkt) = inb(&mut port, &rec, syn, T0);
    assert_eq!(r, ProcessResult::Modified);
    let m = guest(&mut pkt);
    assert_eq!((m.flow.src_ip(), m.flow.dst_ip()), (remote, addr));
    assert_eq!((m.flow.src_port(), m.flow.dst_port()), (40000, 22));
    assert_eq!((m.eth.src, m.eth.dst), (g1.gateway_mac, g1.guest_mac));
    assert_eq!(port.port().num_flows("nat", Direction::In), Some(0));

    let synack = guest_pkt(&g1, addr, remote, tcp(22, 40000, flags::SYN | flags::ACK));
    let (r, mut pkt) = out(&mut port, &rec, synack, T0);
    assert_eq!(r, ProcessResult::Modified);
    let n = net(&mut pkt);
    assert_eq!(
        (n.outer.dst, n.outer.geneve.vni),
        (p(BOUNDARY_IP), vni(BOUNDARY_VNI))
    );
    assert_eq!(n.inner.eth.dst, p(TEP_MAC));
    assert_eq!((n.inner.flow.src_ip(), n.inner.flow.src_port()), (addr, 22));
    assert_eq!(n.inner.flow.dst_ip(), remote);

    let q = guest_pkt(&g1, addr, remote, udp(1, 53));
    let (r, mut pkt) = out(&mut port, &rec, q, T0);
    assert_eq!(r, ProcessResult::Modified);
    let n = net(&mut pkt);
    assert_eq!((n.inner.flow.src_ip(), n.inner.flow.src_port()), (addr, 1));
    assert_eq!(n.outer.dst, p(BOUNDARY_IP));
    assert_eq!(
        port.port().num_flows("nat", Direction::Out),
        Some(0),
        "no NAT state"
    );

    assert_eq!(
        port.detach_subnet(block).unwrap(),
        DetachSubnetResp::Ok(block)
    );
    assert_eq!(
        port.detach_subnet(block).unwrap(),
        DetachSubnetResp::NotFound
    );
    assert_rules(&port, &[("gateway", 5, 12), ("nat", 0, 3)]);
    let q = guest_pkt(&g1, addr, remote, udp(2, 53));
    let (r, _) = out(&mut port, &rec, q, T0);
    assert_eq!(r, layer_drop("gateway", DenyReason::Default));
}

/// From an external attached subnet to a VPC-private address: the source is tagged as
/// external, and the overlay never sends external-sourced traffic into the VPC.
#[test]
fn external_attached_subnets_cannot_reach_internal() {
    let rec = Recorder::new("external_attached_subnets_cannot_reach_internal");
    let tables = Arc::new(VpcTables::default());
    let (g1, g2) = (g1_cfg(), g2_cfg());
    let mut port = setup(g1.clone(), &tables);
    register(&tables, &g2);
    port.attach_subnet(
        p("203.0.113.0/24"),
        AttachedSubnetConfig { is_external: true },
    )
    .unwrap();
    let peer = IpAddr::Ip4(ip4(&g2));
    let pkt = guest_pkt(&g1, p("203.0.113.7"), peer, udp(1, 53));
    let (r, _) = out(&mut port, &rec, pkt, T0);
    assert_eq!(r, layer_drop("overlay", DenyReason::Action));
    assert_eq!(port.port().num_flows("uft", Direction::Out), Some(0));
    assert_eq!(port.port().stats().out.drop_layer, 1);
    // The guest's own address reaches the same peer.
    let pkt = guest_pkt(&g1, IpAddr::Ip4(ip4(&g1)), peer, udp(1, 53));
    let (r, mut pkt) = out(&mut port, &rec, pkt, T0);
    assert_eq!(r, ProcessResult::Modified);
    assert_eq!(net(&mut pkt).outer.dst, g2.phys_ip);
}
