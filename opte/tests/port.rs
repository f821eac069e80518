//! A port built from engine primitives only (a stateful firewall, 1:1 NAT, Geneve encap),
//! driven with real packets: the slow path, the UFT fast path, TCP tracking, epochs, expiry,
//! table limits, hairpins and the port state machine.

mod common;

use common::{Echo, inb, out, port, tcp4_in, tcp4_out, udp4_out};
use opte::build::samples::{self, Side};
use opte::engine::action::Action;
use opte::engine::port::{PortState, ProcessResult};
use opte::engine::predicate::{Match, Predicate};
use opte::engine::rule::Rule;
use opte::engine::stats::{DenyReason, DropReason};
use opte::engine::time::Moment;
use opte::engine::view::Parsed;
use opte::packet::parse::{parse_guest, parse_network};
use opte::wire::tcp::flags;
use opte_api::{Direction, IpAddr, OpteError, Protocol};
use std::sync::Arc;

#[test]
fn outbound_flow_is_natted_and_encapsulated_then_hits_the_uft() {
    let mut p = port(64, 64, 64);
    let t0 = Moment::from_secs(1);
    let (r, mut pkt) = out(&mut p, tcp4_out(10010, flags::SYN, 100, 0), t0);
    assert_eq!(r, ProcessResult::Modified);
    let n = parse_network(&mut pkt).unwrap();
    assert_eq!(n.outer.geneve.vni.as_u32(), samples::BOUNDARY_VNI);
    assert_eq!(
        (n.outer.src, n.outer.dst),
        (samples::SLED_IP6, samples::BOUNDARY_IP6)
    );
    assert_eq!(n.inner.eth.dst, samples::BOUNDARY_MAC);
    assert_eq!(n.inner.flow.src_ip(), IpAddr::Ip4(samples::EPHEMERAL_IP4));
    assert_eq!(n.inner.flow.proto_info, [10010, 80]);
    assert_eq!(p.num_flows("uft", Direction::Out), Some(1));
    assert_eq!(p.num_flows("firewall", Direction::Out), Some(1));
    assert_eq!(p.num_flows("nat", Direction::Out), Some(1));
    let guest_flow = parse_guest(&mut tcp4_out(10010, flags::SYN, 100, 0))
        .unwrap()
        .flow;
    assert_eq!(p.tcp_state(&guest_flow), Some(opte_api::TcpState::SynSent));

    // The reply: allowed by the firewall's flow entry, un-NATed and decapsulated.
    let (r, mut reply) = inb(
        &mut p,
        tcp4_in(10010, flags::SYN | flags::ACK, 500, 101),
        t0,
    );
    assert_eq!(r, ProcessResult::Modified);
    assert_eq!(reply.seg_count(), 1);
    let g = parse_guest(&mut reply).unwrap();
    assert_eq!(g.flow.dst_ip(), IpAddr::Ip4(samples::GUEST_IP4));
    assert_eq!(g.eth.src, samples::GW_MAC);
    assert_eq!(
        p.tcp_state(&guest_flow),
        Some(opte_api::TcpState::Established)
    );

    // Later packets of both directions take the fast path.
    let before = p.stats();
    let (r, _) = out(&mut p, tcp4_out(10010, flags::ACK, 101, 501), t0);
    assert_eq!(r, ProcessResult::Modified);
    let (r, _) = inb(&mut p, tcp4_in(10010, flags::ACK, 501, 101), t0);
    assert_eq!(r, ProcessResult::Modified);
    let after = p.stats();
    assert_eq!(after.out.uft_hit, before.out.uft_hit + 1);
    assert_eq!(after.r#in.uft_hit, before.r#in.uft_hit + 1);
    assert_eq!(after.out.modified + after.r#in.modified, 4);
    let uft = p.dump_uft().unwrap();
    assert_eq!((uft.out_num_flows, uft.in_num_flows), (1, 1));
    assert_eq!(uft.out_flows[0].1.summary, "hdr: NAT, encap");
    assert_eq!(uft.in_flows[0].1.summary, "hdr: decap, NAT");
    assert_eq!(uft.out_flows[0].1.hits, 1);
    assert_eq!(p.dump_tcp_flows().unwrap().flows.len(), 1);
}

#[test]
fn unsolicited_inbound_is_denied_by_the_firewall_default() {
    let mut p = port(64, 64, 64);
    let (r, _) = inb(&mut p, tcp4_in(10010, flags::SYN, 1, 0), Moment::ZERO);
    assert_eq!(
        r,
        ProcessResult::Drop(DropReason::Layer {
            layer: "firewall",
            reason: DenyReason::Default
        })
    );
    let s = p.stats();
    assert_eq!((s.r#in.drop, s.r#in.drop_layer), (1, 1));
    assert_eq!(p.layer_stats("firewall").unwrap().r#in.deny, 1);
    // Nothing was kept for it.
    assert_eq!(p.num_flows("uft", Direction::In), Some(0));
    assert_eq!(p.num_tcp_flows(), 0);
}

#[test]
fn an_inbound_rule_admits_new_flows() {
    let mut p = port(64, 64, 64);
    let mut r = Rule::new(10, Action::StatefulAllow);
    r.add_predicate(Predicate::InnerIpProto(vec![Protocol::TCP]));
    r.add_predicate(Predicate::InnerSrcPort(vec![Match::Exact(80)]));
    p.add_rule("firewall", Direction::In, r).unwrap();
    let (res, _) = inb(&mut p, tcp4_in(10010, flags::SYN, 1, 0), Moment::ZERO);
    // The inbound packet passes the firewall but is not un-NATed: no NAT flow exists for it,
    // so it reaches the guest addressed to the external IP.
    assert_eq!(res, ProcessResult::Modified);
}

#[test]
fn rule_change_bumps_the_epoch_and_invalidates_uft_entries() {
    let mut p = port(64, 64, 64);
    let e0 = p.epoch();
    let t = Moment::ZERO;
    out(&mut p, tcp4_out(10010, flags::ACK, 1, 1), t);
    out(&mut p, tcp4_out(10010, flags::ACK, 1, 1), t);
    assert_eq!(p.stats().out.uft_hit, 1);
    let id = p
        .add_rule(
            "firewall",
            Direction::In,
            Rule::match_any(100, Action::Deny),
        )
        .unwrap();
    assert_eq!(p.epoch(), e0 + 1);
    out(&mut p, tcp4_out(10010, flags::ACK, 1, 1), t);
    assert_eq!(p.stats().out.uft_hit, 1, "the stale entry must not be used");
    assert_eq!(p.stats().out.uft_miss, 2);
    p.remove_rule("firewall", Direction::In, id).unwrap();
    assert_eq!(p.epoch(), e0 + 2);
    assert_eq!(
        p.remove_rule("firewall", Direction::In, id),
        Err(OpteError::RuleNotFound(id))
    );
    assert!(matches!(
        p.add_rule("nope", Direction::In, Rule::match_any(1, Action::Allow)),
        Err(OpteError::LayerNotFound(_))
    ));
}

#[test]
fn set_rules_clears_the_layer_flows_and_soft_keeps_valid_descriptors() {
    let mut p = port(64, 64, 64);
    out(&mut p, tcp4_out(10010, flags::ACK, 1, 1), Moment::ZERO);
    assert_eq!(p.num_flows("firewall", Direction::Out), Some(1));
    p.set_rules("firewall", vec![], vec![]).unwrap();
    assert_eq!(p.num_flows("firewall", Direction::Out), Some(0));
    // NAT descriptors say they stay valid: a soft refresh keeps them.
    let nat_rules = p.dump_layer("nat").unwrap().rules_out.len();
    assert_eq!(nat_rules, 1);
    out(&mut p, tcp4_out(10011, flags::ACK, 1, 1), Moment::ZERO);
    assert_eq!(p.num_flows("nat", Direction::Out), Some(2));
    p.set_rules_soft("nat", vec![], vec![]).unwrap();
    // Dirty, but the next packet of each flow finds its valid descriptor (no rule needed).
    let (r, mut pkt) = out(&mut p, tcp4_out(10011, flags::ACK, 2, 1), Moment::ZERO);
    assert_eq!(r, ProcessResult::Modified);
    let n = parse_network(&mut pkt).unwrap();
    assert_eq!(n.inner.flow.src_ip(), IpAddr::Ip4(samples::EPHEMERAL_IP4));
}

#[test]
fn flows_expire_with_the_clock_and_tcp_keeps_its_parents() {
    let mut p = port(64, 64, 64);
    let t0 = Moment::from_secs(10);
    out(&mut p, tcp4_out(10010, flags::SYN, 100, 0), t0);
    inb(
        &mut p,
        tcp4_in(10010, flags::SYN | flags::ACK, 500, 101),
        t0,
    );
    out(&mut p, tcp4_out(10010, flags::ACK, 101, 501), t0);
    // 61 s idle: UFT entries are gone, but the established TCP entry (8000 s) keeps the
    // firewall and NAT entries it depends on.
    p.expire_flows(t0.plus_secs(61)).unwrap();
    assert_eq!(p.num_flows("uft", Direction::Out), Some(0));
    assert_eq!(p.num_flows("uft", Direction::In), Some(0));
    assert_eq!(p.num_tcp_flows(), 1);
    assert_eq!(p.num_flows("firewall", Direction::Out), Some(1));
    // The next packet rebuilds the UFT from the LFTs.
    let (r, _) = out(
        &mut p,
        tcp4_out(10010, flags::ACK, 101, 501),
        t0.plus_secs(62),
    );
    assert_eq!(r, ProcessResult::Modified);
    let fw = p.layer_stats("firewall").unwrap();
    assert_eq!((fw.out.lft_hit, fw.r#in.lft_hit), (1, 1));
}

#[test]
fn closing_the_connection_removes_its_state() {
    let mut p = port(64, 64, 64);
    let t = Moment::ZERO;
    out(&mut p, tcp4_out(10010, flags::SYN, 100, 0), t);
    inb(&mut p, tcp4_in(10010, flags::SYN | flags::ACK, 500, 101), t);
    out(&mut p, tcp4_out(10010, flags::ACK, 101, 501), t);
    let (r, _) = inb(&mut p, tcp4_in(10010, flags::RST, 501, 0), t);
    assert_eq!(r, ProcessResult::Modified, "the RST itself is delivered");
    assert_eq!(p.num_tcp_flows(), 0);
    assert_eq!(p.num_flows("uft", Direction::In), Some(0));
}

#[test]
fn clearing_the_tcp_table_forgets_connections_and_a_new_syn_opens_one_again() {
    let mut p = port(64, 64, 64);
    let t = Moment::ZERO;
    out(&mut p, tcp4_out(10010, flags::SYN, 100, 0), t);
    assert_eq!(p.num_tcp_flows(), 1);
    p.clear_tcp_flows().unwrap();
    assert_eq!(p.num_tcp_flows(), 0);
    p.clear_uft().unwrap();
    let (r, _) = out(&mut p, tcp4_out(10011, flags::SYN, 100, 0), t);
    assert_eq!(r, ProcessResult::Modified);
    assert_eq!(p.num_tcp_flows(), 1);
}

#[test]
fn a_segment_that_cannot_open_a_connection_is_dropped() {
    let mut p = port(64, 64, 64);
    // A FIN from Closed is not a way to start a connection.
    let (r, _) = out(&mut p, tcp4_out(10010, flags::FIN, 1, 0), Moment::ZERO);
    assert_eq!(r, ProcessResult::Drop(DropReason::TcpErr));
    assert_eq!(p.stats().out.drop_tcp_err, 1);
    // And it left no LFT entries behind.
    assert_eq!(p.num_flows("firewall", Direction::Out), Some(0));
    assert_eq!(p.num_flows("nat", Direction::Out), Some(0));
}

#[test]
fn full_tables_drop_new_flows_with_a_reason_never_panic() {
    // UDP flows are protected under the default TTL policy, so a full UFT cannot evict.
    let mut p = port(2, 64, 64);
    for s in 0..5u16 {
        out(&mut p, udp4_out(2000 + s), Moment::ZERO);
    }
    let st = p.stats();
    assert_eq!(st.out.modified, 2);
    assert_eq!(st.out.drop_uft_full, 3);
    assert_eq!(st.out.results(), 5);
    // The refused flows left nothing in the layers either.
    assert_eq!(p.num_flows("firewall", Direction::Out), Some(2));
}

#[test]
fn tcp_table_full_refuses_new_connections() {
    let mut p = port(64, 1, 64);
    out(&mut p, tcp4_out(1, flags::SYN, 1, 0), Moment::ZERO);
    let (r, _) = out(&mut p, tcp4_out(2, flags::SYN, 1, 0), Moment::ZERO);
    assert_eq!(r, ProcessResult::Drop(DropReason::TcpFull));
    // After the opening connection ages past its protection (2.5 s), it can be evicted.
    let (r, _) = out(&mut p, tcp4_out(3, flags::SYN, 1, 0), Moment::from_secs(4));
    assert_eq!(r, ProcessResult::Modified);
    assert_eq!(p.stats().tcp_evictions, 1);
}

#[test]
fn hairpin_rules_answer_and_keep_no_state() {
    let mut p = port(64, 64, 64);
    let mut r = Rule::new(1, Action::Hairpin(Arc::new(Echo)));
    r.add_predicate(Predicate::InnerIpProto(vec![Protocol::ICMP]));
    p.add_rule("firewall", Direction::Out, r).unwrap();
    let s = samples::hairpin("Hairpin-ICMPv4", "EchoRequest").unwrap();
    assert_eq!(s.side, Side::Guest);
    let (res, _) = out(&mut p, s.packet(), Moment::ZERO);
    assert_eq!(res, ProcessResult::Hairpin(s.frame()));
    assert_eq!(p.stats().out.hairpin, 1);
    assert_eq!(p.num_flows("uft", Direction::Out), Some(0));
}

#[test]
fn port_state_matrix() {
    let mut p = port(64, 64, 64);
    p.pause().unwrap();
    assert_eq!(p.state(), PortState::Paused);
    let (r, _) = out(&mut p, tcp4_out(1, flags::ACK, 1, 1), Moment::ZERO);
    assert_eq!(r, ProcessResult::Drop(DropReason::PortNotRunning));
    assert_eq!(
        p.add_rule("firewall", Direction::In, Rule::match_any(1, Action::Allow)),
        Err(OpteError::BadState("paused".into()))
    );
    assert!(p.dump_uft().is_ok());
    assert_eq!(p.clear_uft(), Err(OpteError::BadState("paused".into())));
    assert_eq!(p.pause(), Err(OpteError::BadState("paused".into())));
    p.reset();
    assert_eq!(p.state(), PortState::Ready);
    assert!(p.dump_uft().is_err());
    assert!(
        p.add_rule("firewall", Direction::In, Rule::match_any(1, Action::Allow))
            .is_ok()
    );
    assert_eq!(
        p.expire_flows(Moment::ZERO),
        Err(OpteError::BadState("ready".into()))
    );
    p.start();
    assert!(p.clear_uft().is_ok());
    assert_eq!("running".parse::<PortState>(), Ok(PortState::Running));
    assert!("walking".parse::<PortState>().is_err());
    assert!(
        p.list_layers()
            .iter()
            .map(|l| l.name.as_str())
            .eq(["firewall", "nat", "overlay"])
    );
}

#[test]
fn random_traffic_keeps_tables_bounded_and_every_packet_counted() {
    // A seeded generator stands in for a property-test framework: a few thousand packets
    // of random shape, ports, flags and direction against tiny tables.
    let mut p = port(8, 4, 6);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let all = samples::all();
    let mut n_out = 0u64;
    let mut n_in = 0u64;
    for i in 0..4000u64 {
        let r = next();
        let now = Moment::from_millis(i * 37);
        let port_no = 1000 + (r >> 8) as u16 % 12;
        let fl = [
            flags::SYN,
            flags::ACK,
            flags::SYN | flags::ACK,
            flags::FIN | flags::ACK,
            flags::RST,
            flags::PSH | flags::ACK,
        ][(r >> 20) as usize % 6];
        match r % 4 {
            0 => {
                out(
                    &mut p,
                    tcp4_out(port_no, fl, r as u32, (r >> 32) as u32),
                    now,
                );
                n_out += 1;
            }
            1 => {
                inb(
                    &mut p,
                    tcp4_in(port_no, fl, r as u32, (r >> 32) as u32),
                    now,
                );
                n_in += 1;
            }
            _ => {
                let s = &all[(r >> 40) as usize % all.len()];
                let mut pkt = s.packet();
                let (dir, parsed) = match s.side {
                    Side::Guest => (
                        Direction::Out,
                        Parsed::Guest(parse_guest(&mut pkt).unwrap()),
                    ),
                    Side::Network => (
                        Direction::In,
                        Parsed::Network(parse_network(&mut pkt).unwrap()),
                    ),
                };
                p.process(dir, &mut pkt, &parsed, now);
                match dir {
                    Direction::Out => n_out += 1,
                    Direction::In => n_in += 1,
                }
            }
        }
        if i % 500 == 0 {
            p.expire_flows(now).unwrap();
        }
        assert!(p.num_flows("uft", Direction::Out).unwrap() <= 8);
        assert!(p.num_flows("uft", Direction::In).unwrap() <= 8);
        assert!(p.num_tcp_flows() <= 4);
        for l in ["firewall", "nat", "overlay"] {
            assert!(p.num_flows(l, Direction::Out).unwrap() <= 6);
        }
    }
    let s = p.stats();
    assert_eq!(s.out.results(), n_out);
    assert_eq!(s.r#in.results(), n_in);
}

#[test]
fn a_stale_entry_takes_its_pair_with_it() {
    let mut p = port(64, 64, 64);
    let t = Moment::ZERO;
    out(&mut p, tcp4_out(10010, flags::SYN, 100, 0), t);
    inb(&mut p, tcp4_in(10010, flags::SYN | flags::ACK, 500, 101), t);
    assert_eq!(p.num_flows("uft", Direction::Out), Some(1));
    assert_eq!(p.num_flows("uft", Direction::In), Some(1));
    // A rule change makes both entries stale; the next outbound packet invalidates its entry
    // and the inbound one paired with it, then installs a fresh outbound entry.
    p.add_rule(
        "firewall",
        Direction::In,
        Rule::match_any(100, Action::Deny),
    )
    .unwrap();
    let (r, _) = out(&mut p, tcp4_out(10010, flags::ACK, 101, 501), t);
    assert_eq!(r, ProcessResult::Modified);
    assert_eq!(p.num_flows("uft", Direction::In), Some(0));
    assert_eq!(p.num_flows("uft", Direction::Out), Some(1));
}
