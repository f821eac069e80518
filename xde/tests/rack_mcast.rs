//! Multicast across the rack: local subscribers, forwarding to the switch with the
//! replication mode rewritten, source filters on both ends, and no re-forwarding.

mod common;

use common::*;
use opte::packet::Packet;
use opte::packet::parse::parse_network;
use opte_api::{IpAddr, MulticastUnderlay};
use oxide_vpc::api::cmd;
use oxide_vpc::api::{
    McastForwardingNextHop, McastSubscribeReq, NextHopV6, Replication, SetFwRulesReq,
    SetMcast2PhysReq, SetMcastForwardingReq, SourceFilter,
};

const GROUP: &str = "224.1.2.3";
const UNDERLAY: &str = "ff04::1:2:3";

fn subscribe(rack: &Rack, sled: usize, port: &str, filter: SourceFilter) {
    rack.cmd::<cmd::McastSubscribe>(
        sled,
        &McastSubscribeReq {
            port_name: port.into(),
            group: p(GROUP),
            filter,
        },
    )
    .unwrap();
    let mut rules = default_fw_rules(vni(VNI_A));
    rules.push(p("dir=in action=allow priority=100 protocol=udp"));
    rack.cmd::<cmd::SetFwRules>(
        sled,
        &SetFwRulesReq {
            port_name: port.into(),
            rules,
        },
    )
    .unwrap();
}

#[test]
fn multicast_reaches_local_and_remote_subscribers_through_the_switch() {
    let mut rack = Rack::new("multicast", 3);
    let g1 = guest(VNI_A, 5, 0);
    let g4 = guest(VNI_A, 8, 0);
    let g2 = guest(VNI_A, 6, 1);
    let g3 = guest(VNI_A, 7, 2);
    rack.add_guest(0, "g1", &g1);
    rack.add_guest(0, "g4", &g4);
    rack.add_guest(1, "g2", &g2);
    rack.add_guest(2, "g3", &g3);
    let underlay = MulticastUnderlay::new(p(UNDERLAY)).unwrap();
    for s in 0..3 {
        rack.cmd::<cmd::SetMcast2Phys>(
            s,
            &SetMcast2PhysReq {
                group: p(GROUP),
                underlay,
            },
        )
        .unwrap();
    }
    rack.cmd::<cmd::SetMcastForwarding>(
        0,
        &SetMcastForwardingReq {
            underlay,
            next_hops: vec![McastForwardingNextHop {
                next_hop: NextHopV6 {
                    addr: SWITCH_IP,
                    vni: vni(77),
                },
                replication: Replication::Underlay,
                source_filter: SourceFilter::default(),
            }],
        },
    )
    .unwrap();
    subscribe(&rack, 0, "g1", SourceFilter::default());
    subscribe(&rack, 0, "g4", SourceFilter::default());
    subscribe(&rack, 1, "g2", SourceFilter::default());
    // g3 only wants one other sender.
    let only: IpAddr = p("172.30.0.99");
    subscribe(&rack, 2, "g3", SourceFilter::Include([only].into()));

    let f = from_guest(
        &g1,
        ip4(&g1),
        p(GROUP),
        L4::Udp {
            sport: 5353,
            dport: 5353,
        },
        b"hello group",
    );
    rack.send(0, "g1", f);

    assert!(
        rack.take(0, "g1").is_empty(),
        "the sender does not hear itself"
    );
    let local = rack.take(0, "g4");
    assert_eq!(local.len(), 1, "a local subscriber, without the wire");
    assert_eq!(payload(&local[0]), b"hello group");
    let m = parsed(&local[0]);
    assert_eq!(m.eth.dst, p::<IpAddr>(GROUP).multicast_mac().unwrap());
    let remote = rack.take(1, "g2");
    assert_eq!(remote.len(), 1, "a remote subscriber, through the switch");
    assert_eq!(payload(&remote[0]), b"hello group");
    assert!(
        rack.take(2, "g3").is_empty(),
        "g3's source filter refuses g1"
    );
    assert_eq!(rack.counter(2, "mcast_rx_source_filtered"), 1);

    // One copy on the wire: to the group, via the switch, with Underlay replication.
    assert_eq!(rack.wire.len(), 1);
    let w = &rack.wire[0].bytes;
    assert_eq!(&w[0..6], &underlay.addr().multicast_mac().unwrap().bytes());
    let n = parse_network(&mut Packet::copy_from(w)).unwrap();
    assert_eq!(n.outer.dst, underlay.addr());
    assert_eq!(n.outer.geneve.vni.as_u32(), 77);
    assert_eq!(
        n.outer.geneve.replication,
        Some(opte::wire::geneve::Replication::Underlay)
    );
    assert_eq!(rack.counter(0, "mcast_tx_local"), 1);
    assert_eq!(rack.counter(0, "mcast_tx_underlay"), 1);
    // Receiving sleds never forward again.
    assert_eq!(rack.counter(1, "mcast_tx_underlay"), 0);
    assert_eq!(rack.counter(1, "mcast_rx_local"), 1);
}

#[test]
fn multicast_without_subscribers_or_forwarding_is_counted() {
    let mut rack = Rack::new("multicast_nobody", 2);
    let g1 = guest(VNI_A, 5, 0);
    rack.add_guest(0, "g1", &g1);
    let underlay = MulticastUnderlay::new(p(UNDERLAY)).unwrap();
    rack.cmd::<cmd::SetMcast2Phys>(
        0,
        &SetMcast2PhysReq {
            group: p(GROUP),
            underlay,
        },
    )
    .unwrap();
    let f = from_guest(
        &g1,
        ip4(&g1),
        p(GROUP),
        L4::Udp { sport: 1, dport: 2 },
        b"x",
    );
    rack.send(0, "g1", f);
    assert!(rack.wire.is_empty());
    assert_eq!(rack.counter(0, "mcast_tx_no_fwd_entry"), 1);
}
