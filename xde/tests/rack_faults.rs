//! The rack when things change under a flow: an underlay link cut, a guest moving to
//! another sled, next hops expiring from the route cache, flows expiring.

mod common;

use common::*;
use opte::packet::Packet;
use opte::packet::parse::parse_network;
use opte_api::{DumpUftReq, IpAddr};
use oxide_vpc::api::cmd;
use oxide_vpc::api::{DeleteXdeReq, PhysNet, SetVirt2PhysReq, VpcCfg};
use std::sync::atomic::Ordering;
use xde::Link;

fn udp(c: &VpcCfg, s: IpAddr, d: IpAddr, n: u8) -> Vec<u8> {
    from_guest(
        c,
        s,
        d,
        L4::Udp {
            sport: 7000,
            dport: 7001,
        },
        &[n; 64],
    )
}

fn port_counter(rack: &Rack, sled: usize, port: &str, name: &str) -> u64 {
    let st = rack.sleds[sled].xde.xde_stats();
    let c = &st.ports.iter().find(|(n, _)| n == port).unwrap().1;
    c.iter().find(|(n, _)| n == name).unwrap().1
}

#[test]
fn a_cut_underlay_link_moves_traffic_to_the_other() {
    let mut rack = Rack::new("link_cut", 2);
    let g1 = guest(VNI_A, 5, 0);
    let g2 = guest(VNI_A, 6, 1);
    rack.add_guest(0, "g1", &g1);
    rack.add_guest(1, "g2", &g2);
    let (a, b) = (ip4(&g1), ip4(&g2));
    rack.send(0, "g1", udp(&g1, a, b, 1));
    assert_eq!(rack.take(1, "g2").len(), 1);
    let first = rack.wire.last().unwrap().link;
    rack.set_link(0, first, false);
    // Within the next hop's 100 ms of validity the cut link still gets the packet.
    rack.send(0, "g1", udp(&g1, a, b, 2));
    assert_eq!(rack.lost, 1);
    rack.advance_ms(150);
    for n in 3..10 {
        rack.send(0, "g1", udp(&g1, a, b, n));
    }
    let got = rack.take(1, "g2");
    assert_eq!(got.len(), 7, "every packet after revalidation arrives");
    let other = rack.wire.last().unwrap().link;
    assert_ne!(other, first);
    // Both links down: no next hop, counted, nothing sent with made-up addresses.
    rack.set_link(0, other, false);
    rack.advance_ms(150);
    let sent = rack.wire.len();
    rack.send(0, "g1", udp(&g1, a, b, 11));
    assert_eq!(rack.wire.len(), sent);
    assert_eq!(rack.counter(0, "tx_no_route"), 1);
}

#[test]
fn a_v2p_change_moves_a_busy_flow_to_the_new_sled() {
    let mut rack = Rack::new("v2p_move", 3);
    let g1 = guest(VNI_A, 5, 0);
    let g2 = guest(VNI_A, 6, 1);
    rack.add_guest(0, "g1", &g1);
    rack.add_guest(1, "g2", &g2);
    let (a, b) = (ip6(&g1), ip6(&g2));
    for n in 0..3 {
        rack.send(0, "g1", udp(&g1, a, b, n));
    }
    assert_eq!(rack.take(1, "g2").len(), 3);
    // g2 moves to sled 2: created there, removed from sled 1, and sled 0 told.
    let moved = VpcCfg {
        phys_ip: sled_ip(2),
        ..g2.clone()
    };
    rack.add_guest(2, "g2", &moved);
    rack.cmd::<cmd::DeleteXde>(
        1,
        &DeleteXdeReq {
            xde_devname: "g2".into(),
        },
    )
    .unwrap();
    // add_guest told sled 0 already; say it again as the control plane would, harmlessly.
    let phys = PhysNet {
        ether: moved.guest_mac,
        ip: sled_ip(2),
        vni: moved.vni,
    };
    rack.cmd::<cmd::SetVirt2Phys>(0, &SetVirt2PhysReq { vip: b, phys })
        .unwrap();
    let hits_before = port_counter(&rack, 0, "g1", "out_uft_hit");
    rack.send(0, "g1", udp(&g1, a, b, 9));
    let f = rack.wire.last().unwrap();
    let n = parse_network(&mut Packet::copy_from(&f.bytes)).unwrap();
    assert_eq!(
        n.outer.dst,
        sled_ip(2),
        "the flow now encapsulates to the new sled"
    );
    assert_eq!(rack.take(2, "g2").len(), 1);
    assert!(rack.take(1, "g2").is_empty());
    assert_eq!(
        port_counter(&rack, 0, "g1", "out_uft_hit"),
        hits_before,
        "the stale compiled flow was not replayed"
    );
    // Sled 1 no longer maps g2 to itself: deleting the port took its V2P entries.
    let v2p = rack.cmd::<cmd::DumpVirt2Phys>(1, &()).unwrap();
    let here = v2p
        .mappings
        .iter()
        .flat_map(|m| m.ip6.iter())
        .any(|(ip, g)| IpAddr::Ip6(*ip) == b && g.ip == sled_ip(1));
    assert!(!here);
}

#[test]
fn next_hops_are_cached_for_100ms_and_forgotten_after_a_second_unused() {
    let mut rack = Rack::new("route_cache", 2);
    let g1 = guest(VNI_A, 5, 0);
    let g2 = guest(VNI_A, 6, 1);
    rack.add_guest(0, "g1", &g1);
    rack.add_guest(1, "g2", &g2);
    let (a, b) = (ip4(&g1), ip4(&g2));
    let resolves = |r: &Rack| r.sleds[0].xde.host().resolves.load(Ordering::SeqCst);
    rack.send(0, "g1", udp(&g1, a, b, 1));
    assert_eq!(resolves(&rack), 1);
    rack.advance_ms(50);
    rack.send(0, "g1", udp(&g1, a, b, 2));
    assert_eq!(resolves(&rack), 1, "a hit within 100 ms");
    rack.advance_ms(60);
    rack.send(0, "g1", udp(&g1, a, b, 3));
    assert_eq!(resolves(&rack), 2, "refreshed after 100 ms");
    assert_eq!(port_counter(&rack, 0, "g1", "route_cache_hit"), 1);
    assert_eq!(port_counter(&rack, 0, "g1", "route_cache_miss"), 1);
    assert_eq!(port_counter(&rack, 0, "g1", "route_cache_refresh"), 1);
    rack.advance_ms(1500);
    rack.tick();
    assert_eq!(port_counter(&rack, 0, "g1", "route_cache_purged"), 1);
    rack.send(0, "g1", udp(&g1, a, b, 4));
    assert_eq!(port_counter(&rack, 0, "g1", "route_cache_miss"), 2);
    assert_eq!(rack.take(1, "g2").len(), 4);
}

#[test]
fn the_tick_expires_idle_flows() {
    let mut rack = Rack::new("flow_expiry", 2);
    let g1 = guest(VNI_A, 5, 0);
    let g2 = guest(VNI_A, 6, 1);
    rack.add_guest(0, "g1", &g1);
    rack.add_guest(1, "g2", &g2);
    rack.send(0, "g1", udp(&g1, ip4(&g1), ip4(&g2), 1));
    let uft = |r: &Rack| {
        r.cmd::<cmd::DumpUft>(
            0,
            &DumpUftReq {
                port_name: "g1".into(),
            },
        )
        .unwrap()
        .out_num_flows
    };
    assert_eq!(uft(&rack), 1);
    rack.advance_ms(10_000);
    rack.tick();
    assert_eq!(uft(&rack), 1, "not idle long enough");
    rack.advance_ms(61_000);
    rack.tick();
    assert_eq!(uft(&rack), 0, "expired by the tick");
    let _ = Link::U1;
}
