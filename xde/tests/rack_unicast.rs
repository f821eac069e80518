//! Unicast scenarios on the simulated rack: guests on different sleds and on one sled,
//! the gateway's hairpins, VPC isolation, and the firewall changed at run time.

mod common;

use common::tcpf::{ACK, FIN, PSH, SYN};
use common::*;
use opte::packet::Packet;
use opte::packet::parse::parse_network;
use opte_api::{DumpTcpFlowsReq, IpAddr, TcpState};
use oxide_vpc::api::cmd;
use oxide_vpc::api::{AddFwRuleReq, RemFwRuleReq};

fn two_sleds(name: &str) -> (Rack, oxide_vpc::api::VpcCfg, oxide_vpc::api::VpcCfg) {
    let rack = Rack::new(name, 2);
    let g1 = guest(VNI_A, 5, 0);
    let g2 = guest(VNI_A, 6, 1);
    rack.add_guest(0, "g1", &g1);
    rack.add_guest(1, "g2", &g2);
    (rack, g1, g2)
}

#[test]
fn icmp_echo_crosses_sleds_both_families() {
    let (mut rack, g1, g2) = two_sleds("icmp_echo_crosses_sleds");
    for (s, d) in [(ip4(&g1), ip4(&g2)), (ip6(&g1), ip6(&g2))] {
        rack.send(
            0,
            "g1",
            from_guest(&g1, s, d, L4::Echo { id: 7, seq: 1 }, b"ping"),
        );
        let got = rack.take(1, "g2");
        assert_eq!(got.len(), 1, "echo request reaches g2");
        let m = parsed(&got[0]);
        assert_eq!((m.eth.src, m.eth.dst), (g1.gateway_mac, g2.guest_mac));
        assert_eq!(m.flow.addrs.src(), s);
        assert_eq!(payload(&got[0]), b"ping");
        rack.send(
            1,
            "g2",
            from_guest(&g2, d, s, L4::Echo { id: 7, seq: 1 }, b"pong"),
        );
        let back = rack.take(0, "g1");
        assert_eq!(back.len(), 1, "echo reply reaches g1");
        assert_eq!(payload(&back[0]), b"pong");
    }
    // Every frame on the wire is Geneve from sled 0 to sled 1 or back, on the guests' VNI.
    assert_eq!(rack.wire.len(), 4);
    for f in &rack.wire {
        let n = parse_network(&mut Packet::copy_from(&f.bytes)).unwrap();
        assert_eq!(n.outer.geneve.vni, vni(VNI_A));
        assert_eq!(n.outer.src, sled_ip(f.from));
        assert_eq!(n.outer.dst, sled_ip(1 - f.from));
    }
    assert_eq!(rack.counter(0, "tx_underlay"), 2);
    assert_eq!(rack.counter(1, "rx_delivered"), 2);
}

#[test]
fn tcp_handshake_data_and_close_across_sleds() {
    let (mut rack, g1, g2) = two_sleds("tcp_across_sleds");
    let (a, b) = (ip4(&g1), ip4(&g2));
    let seg = |c: &oxide_vpc::api::VpcCfg,
               s: IpAddr,
               d: IpAddr,
               f: u8,
               seq: u32,
               ack: u32,
               body: &[u8]| {
        let (sp, dp) = if s == a { (40000, 22) } else { (22, 40000) };
        from_guest(c, s, d, tcp(sp, dp, f, seq, ack), body)
    };
    rack.send(0, "g1", seg(&g1, a, b, SYN, 100, 0, b""));
    assert_eq!(rack.take(1, "g2").len(), 1);
    rack.send(1, "g2", seg(&g2, b, a, SYN | ACK, 900, 101, b""));
    assert_eq!(rack.take(0, "g1").len(), 1);
    rack.send(0, "g1", seg(&g1, a, b, ACK, 101, 901, b""));
    rack.send(
        0,
        "g1",
        seg(&g1, a, b, ACK | PSH, 101, 901, b"hello over the rack"),
    );
    let got = rack.take(1, "g2");
    assert_eq!(got.len(), 2);
    assert_eq!(payload(&got[1]), b"hello over the rack");
    let flows = rack
        .cmd::<cmd::DumpTcpFlows>(
            0,
            &DumpTcpFlowsReq {
                port_name: "g1".into(),
            },
        )
        .unwrap();
    assert_eq!(flows.flows.len(), 1);
    assert_eq!(flows.flows[0].1.tcp_state.tcp_state, TcpState::Established);
    // Close from both ends.
    rack.send(0, "g1", seg(&g1, a, b, FIN | ACK, 120, 901, b""));
    rack.send(1, "g2", seg(&g2, b, a, FIN | ACK, 901, 121, b""));
    rack.send(0, "g1", seg(&g1, a, b, ACK, 121, 902, b""));
    assert_eq!(rack.take(1, "g2").len(), 2);
    assert_eq!(rack.take(0, "g1").len(), 1);
    let flows = rack
        .cmd::<cmd::DumpTcpFlows>(
            1,
            &DumpTcpFlowsReq {
                port_name: "g2".into(),
            },
        )
        .unwrap();
    let state = flows.flows.first().map(|f| f.1.tcp_state.tcp_state);
    assert!(
        matches!(
            state,
            None | Some(TcpState::TimeWait | TcpState::Closed | TcpState::LastAck)
        ),
        "{state:?}"
    );
}

#[test]
fn udp_both_ways_across_sleds() {
    let (mut rack, g1, g2) = two_sleds("udp_across_sleds");
    let (a, b) = (ip6(&g1), ip6(&g2));
    for i in 0..5u8 {
        rack.send(
            0,
            "g1",
            from_guest(
                &g1,
                a,
                b,
                L4::Udp {
                    sport: 5000,
                    dport: 53,
                },
                &[i; 100],
            ),
        );
    }
    let got = rack.take(1, "g2");
    assert_eq!(got.len(), 5);
    assert_eq!(payload(&got[4]), [4u8; 100]);
    rack.send(
        1,
        "g2",
        from_guest(
            &g2,
            b,
            a,
            L4::Udp {
                sport: 53,
                dport: 5000,
            },
            b"answer",
        ),
    );
    assert_eq!(payload(&rack.take(0, "g1")[0]), b"answer");
    // One slow path per direction per sled; the rest hit the flow cache.
    let st = rack.sleds[0].xde.xde_stats();
    let g1s = &st.ports.iter().find(|(n, _)| n == "g1").unwrap().1;
    let get = |k: &str| g1s.iter().find(|(n, _)| n == k).unwrap().1;
    assert_eq!((get("out_uft_hit"), get("out_uft_miss")), (4, 1));
}

#[test]
fn same_sled_guests_talk_without_touching_the_wire() {
    let mut rack = Rack::new("same_sled_loopback", 2);
    let g1 = guest(VNI_A, 5, 0);
    let g3 = guest(VNI_A, 7, 0);
    rack.add_guest(0, "g1", &g1);
    rack.add_guest(0, "g3", &g3);
    rack.send(
        0,
        "g1",
        from_guest(&g1, ip4(&g1), ip4(&g3), L4::Echo { id: 1, seq: 1 }, b"hi"),
    );
    rack.send(
        0,
        "g3",
        from_guest(
            &g3,
            ip6(&g3),
            ip6(&g1),
            L4::Udp { sport: 9, dport: 9 },
            b"yo",
        ),
    );
    assert_eq!(payload(&rack.take(0, "g3")[0]), b"hi");
    assert_eq!(payload(&rack.take(0, "g1")[0]), b"yo");
    assert!(rack.wire.is_empty(), "loopback never reaches the switch");
    assert_eq!(rack.counter(0, "tx_loopback"), 2);
    assert_eq!(rack.counter(0, "tx_underlay"), 0);
}

/// Two ports of one host sending to each other at once, on two threads, as the Linux
/// daemon's workers do: a packet for another local port is handed over only after the
/// sender's lock is let go, so neither thread ever holds its own port while waiting for
/// the other's. (Were it otherwise this would hang, so a watchdog ends the test binary.)
#[test]
fn two_local_ports_sending_to_each_other_on_two_threads_never_deadlock() {
    let rack = Rack::new("loopback_threads", 1);
    let g1 = guest(VNI_A, 5, 0);
    let g3 = guest(VNI_A, 7, 0);
    rack.add_guest(0, "g1", &g1);
    rack.add_guest(0, "g3", &g3);
    let udp = L4::Udp { sport: 9, dport: 9 };
    let f13 = from_guest(&g1, ip4(&g1), ip4(&g3), udp, b"to g3");
    let f31 = from_guest(&g3, ip4(&g3), ip4(&g1), udp, b"to g1");
    let xde = &rack.sleds[0].xde;
    let now = rack.now;
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for _ in 0..2 {
            if done_rx
                .recv_timeout(std::time::Duration::from_secs(60))
                .is_err()
            {
                eprintln!("two ports sending to each other deadlocked");
                std::process::exit(101);
            }
        }
    });
    std::thread::scope(|s| {
        for (from, to, f) in [("g1", "g3", &f13), ("g3", "g1", &f31)] {
            let done = done_tx.clone();
            s.spawn(move || {
                let port = xde.port(from).unwrap();
                let mut out = Vec::new();
                for _ in 0..20_000 {
                    xde.tx(&port, Packet::copy_from(f), now, &mut out);
                    match out.pop() {
                        Some(xde::Emit::Guest { port, .. }) => assert_eq!(port.name(), to),
                        _ => panic!("{from} to {to} was not delivered"),
                    }
                }
                done.send(()).unwrap();
            });
        }
    });
    assert_eq!(rack.counter(0, "tx_loopback"), 40_000);
}

#[test]
fn two_vpcs_cannot_reach_each_other() {
    let mut rack = Rack::new("vpc_isolation", 2);
    let a = guest(VNI_A, 5, 0);
    let b = guest(VNI_B, 6, 1);
    rack.add_guest(0, "a", &a);
    rack.add_guest(1, "b", &b);
    // The same private address space, another VPC: b's address is not in a's V2P.
    rack.send(
        0,
        "a",
        from_guest(&a, ip4(&a), ip4(&b), L4::Echo { id: 1, seq: 1 }, b""),
    );
    rack.send(
        1,
        "b",
        from_guest(&b, ip4(&b), ip4(&a), L4::Echo { id: 1, seq: 1 }, b""),
    );
    rack.send(
        1,
        "b",
        from_guest(&b, ip6(&b), ip6(&a), L4::Udp { sport: 1, dport: 2 }, b""),
    );
    assert!(rack.take(1, "b").is_empty());
    assert!(rack.take(0, "a").is_empty());
    assert!(rack.wire.is_empty());
    assert_eq!(
        rack.counter(0, "tx_port_drop") + rack.counter(1, "tx_port_drop"),
        3
    );
    // A frame forged onto the wire with a's MAC but b's VNI finds no port.
    let a2 = guest(VNI_A, 9, 1);
    rack.add_guest(1, "a2", &a2);
    rack.send(
        1,
        "a2",
        from_guest(&a2, ip4(&a2), ip4(&a), L4::Echo { id: 2, seq: 1 }, b""),
    );
    assert_eq!(
        rack.take(0, "a").len(),
        1,
        "same VPC on another sled still works"
    );
    let mut forged = rack.wire.last().unwrap().bytes.clone();
    forged[66..69].copy_from_slice(&vni(VNI_B).bytes());
    rack.inject(0, xde::Link::U1, forged);
    assert!(rack.take(0, "a").is_empty());
    assert_eq!(rack.counter(0, "rx_no_port"), 1);
    assert_eq!(rack.not_ours.len(), 1);
}

#[test]
fn firewall_rule_added_at_run_time_opens_inbound_tcp_and_removal_closes_new_connections() {
    let mut rack = Rack::new("firewall_at_run_time", 2);
    let g1 = guest(VNI_A, 5, 0);
    let g2 = guest(VNI_A, 6, 1);
    rack.add_guest(0, "g1", &g1);
    rack.add_guest(1, "g2", &g2);
    // g2 admits only ICMP: not even the rest of its VPC.
    rack.cmd::<cmd::SetFwRules>(
        1,
        &oxide_vpc::api::SetFwRulesReq {
            port_name: "g2".into(),
            rules: vec![p("dir=in action=allow priority=65534 protocol=icmp")],
        },
    )
    .unwrap();
    let syn = |sport| from_guest(&g1, ip4(&g1), ip4(&g2), tcp(sport, 8080, SYN, 1, 0), b"");
    rack.send(0, "g1", syn(40001));
    assert!(rack.take(1, "g2").is_empty(), "no rule allows TCP 8080 in");
    rack.cmd::<cmd::AddFwRule>(
        1,
        &AddFwRuleReq {
            port_name: "g2".into(),
            rule: p("dir=in action=allow priority=10 protocol=tcp port=8080"),
        },
    )
    .unwrap();
    rack.send(0, "g1", syn(40002));
    assert_eq!(rack.take(1, "g2").len(), 1, "the new rule admits it");
    let layer = rack
        .cmd::<cmd::DumpLayer>(
            1,
            &opte_api::DumpLayerReq {
                port_name: "g2".into(),
                name: "firewall".into(),
            },
        )
        .unwrap();
    let id = layer
        .rules_in
        .iter()
        .find(|r| r.rule.priority == 10)
        .map(|r| r.id)
        .unwrap();
    rack.cmd::<cmd::RemFwRule>(
        1,
        &RemFwRuleReq {
            port_name: "g2".into(),
            dir: opte_api::Direction::In,
            id,
        },
    )
    .unwrap();
    rack.send(0, "g1", syn(40003));
    assert!(
        rack.take(1, "g2").is_empty(),
        "removing the rule closes new connections"
    );
}

#[test]
fn the_gateway_answers_arp_dhcp_ndp_and_ping_without_the_wire() {
    use opte::build::samples;
    let mut rack = Rack::new("gateway_hairpins", 1);
    let mut g = guest(VNI_A, 5, 0);
    g.guest_mac = samples::GUEST_MAC;
    rack.add_guest(0, "g", &g);
    for (fam, case) in samples::HAIRPIN_CASES {
        let s = samples::hairpin(fam, case).unwrap();
        rack.send(0, "g", s.frame());
        let got = rack.take(0, "g");
        assert_eq!(got.len(), 1, "{fam}/{case} is answered");
        let m = parsed(&got[0]);
        assert!(
            m.eth.dst == g.guest_mac || m.eth.dst == opte_api::MacAddr::BROADCAST,
            "{fam}/{case} reply goes to the guest, not {}",
            m.eth.dst
        );
        assert_eq!(
            m.eth.src, g.gateway_mac,
            "{fam}/{case} comes from the gateway"
        );
    }
    assert!(rack.wire.is_empty());
    assert_eq!(
        rack.counter(0, "tx_hairpin"),
        samples::HAIRPIN_CASES.len() as u64
    );
}
