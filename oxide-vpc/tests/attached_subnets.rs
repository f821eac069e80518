//! Internal attached subnets (SPEC §4.8, §11.1 `internal_attached_subnets`): an attached
//! VPC subnet opens the anti-spoof rules both ways, is not NATed, and leaves a transit IP
//! on the same block alone when it is attached and detached.

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
