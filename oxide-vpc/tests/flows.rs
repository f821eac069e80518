//! Flow state through a VPC port (SPEC §11.1 "Flow tables, invalidation, TCP" and "Port
//! lifecycle"): expiry on a fake clock, UFT/LFT invalidation by rule changes (epochs), TCP
//! connections opened and closed step by step, full tables, and port state transitions.

mod common;

use common::*;
use opte::engine::port::{PortState, ProcessResult};
use opte::engine::stats::{DenyReason, DropReason};
use opte::engine::time::Moment;
use opte::packet::Packet;
use opte::wire::tcp::flags::{ACK, FIN, SYN};
use opte_api::{Direction, IpAddr, OpteError, TcpState};
use oxide_vpc::api::{FirewallRule, RouterClass, RouterTarget};
use oxide_vpc::engine::{PortLimits, VpcPort};
use oxide_vpc::tables::VpcTables;
use std::num::NonZeroU32;
use std::sync::Arc;

const T0: Moment = Moment::from_secs(1000);

/// The state of the port's one tracked TCP connection (None when there is none).
fn tcp_state(port: &VpcPort) -> Option<TcpState> {
    let d = port.port().dump_tcp_flows().unwrap();
    assert!(d.flows.len() <= 1, "{:?}", d.flows);
    d.flows.first().map(|(_, e)| e.tcp_state.tcp_state)
}

fn seg(sport: u16, dport: u16, flags: u8, seq: u32, ack: u32) -> L4 {
    L4::tcp(sport, dport, flags, seq, ack)
}

/// g1's port, with g2 registered in the same VPC, and makers of the segments of one TCP
/// connection between g1's port `mine` and g2's port `theirs`: `(to_peer, from_peer)`, the
/// guest-side g1 → g2 and the network-side (encapsulated) g2 → g1 packets.
#[allow(clippy::type_complexity)] // two closure types: no alias can name them
fn tcp_pair(
    mine: u16,
    theirs: u16,
) -> (
    VpcPort,
    impl Fn(u8, u32, u32) -> Packet,
    impl Fn(u8, u32, u32) -> Packet,
) {
    let tables = Arc::new(VpcTables::default());
    let (g1, g2) = (g1_cfg(), g2_cfg());
    let port = setup(g1.clone(), &tables);
    register(&tables, &g2);
    let (me, peer) = (IpAddr::Ip4(ip4(&g1)), IpAddr::Ip4(ip4(&g2)));
    let g1_out = g1.clone();
    let to_peer = move |fl, seq, ack| guest_pkt(&g1_out, me, peer, seg(mine, theirs, fl, seq, ack));
    let from_peer = move |fl, seq, ack| {
        let f = frame(
            g2.guest_mac,
            g1.guest_mac,
            peer,
            me,
            seg(theirs, mine, fl, seq, ack),
            &[],
        );
        encap(g2.phys_ip, g1.phys_ip, g1.vni, false, &f)
    };
    (port, to_peer, from_peer)
}

fn uft(port: &VpcPort) -> (u32, u32) {
    (
        port.port().num_flows("uft", Direction::In).unwrap(),
        port.port().num_flows("uft", Direction::Out).unwrap(),
    )
}

#[test]
fn flow_expiration_after_60s_idle_on_the_fake_clock() {
    let rec = Recorder::new("flow_expiration");
    let tables = Arc::new(VpcTables::default());
    let g1 = g1_cfg();
    let mut port = setup(g1.clone(), &tables);
    add_igw_routes(&mut port, None);
    let q = guest_pkt(&g1, IpAddr::Ip4(ip4(&g1)), p(REMOTE4), udp(5555, 53));
    let (r, mut pkt) = out(&mut port, &rec, q, T0);
    assert_eq!(r, ProcessResult::Modified);
    let sport = net(&mut pkt).inner.flow.src_port();
    let a = from_internet(&g1, p(REMOTE4), p("10.77.77.13"), udp(53, sport));
    assert_eq!(inb(&mut port, &rec, a, T0).0, ProcessResult::Modified);
    let counts = |port: &VpcPort| {
        (
            uft(port),
            flows(port, "firewall"),
            flows(port, "nat"),
            flows(port, "router"),
        )
    };
    assert_eq!(counts(&port), ((1, 1), 1, 1, 0));

    port.port_mut()
        .expire_flows(T0.plus_millis(59_999))
        .unwrap();
    assert_eq!(counts(&port), ((1, 1), 1, 1, 0), "alive just under 60 s");
    port.port_mut().expire_flows(T0.plus_secs(61)).unwrap();
    assert_eq!(counts(&port), ((0, 0), 0, 0, 0), "gone after 61 s");

    // The SNAT port went back to the pool with the flow: the reply to it is now unknown
    // (and refused), and a new flow works.
    let a = from_internet(&g1, p(REMOTE4), p("10.77.77.13"), udp(53, sport));
    let (r, _) = inb(&mut port, &rec, a, T0.plus_secs(62));
    assert_eq!(r, layer_drop("firewall", DenyReason::Default));
    let q = guest_pkt(&g1, IpAddr::Ip4(ip4(&g1)), p(REMOTE4), udp(5555, 53));
    assert_eq!(
        out(&mut port, &rec, q, T0.plus_secs(62)).0,
        ProcessResult::Modified
    );
    assert_eq!(counts(&port), ((0, 1), 1, 1, 0));
}

/// g1 → g2 over UDP and g2's answer, leaving one UFT entry each way on g1.
fn udp_exchange(port: &mut VpcPort, rec: &Recorder) {
    let (g1, g2) = (g1_cfg(), g2_cfg());
    let q = guest_pkt(
        &g1,
        IpAddr::Ip4(ip4(&g1)),
        IpAddr::Ip4(ip4(&g2)),
        udp(7000, 53),
    );
    assert_eq!(out(port, rec, q, T0).0, ProcessResult::Modified);
    let f = frame(
        g2.guest_mac,
        g1.guest_mac,
        IpAddr::Ip4(ip4(&g2)),
        IpAddr::Ip4(ip4(&g1)),
        udp(53, 7000),
        &[],
    );
    let a = encap(g2.phys_ip, g1.phys_ip, g1.vni, false, &f);
    assert_eq!(inb(port, rec, a, T0).0, ProcessResult::Modified);
    assert_eq!(uft(port), (1, 1));
    assert_eq!(flows(port, "firewall"), 1);
}

#[test]
fn uft_lft_invalidation_out() {
    let rec = Recorder::new("uft_lft_invalidation_out");
    let tables = Arc::new(VpcTables::default());
    let g1 = g1_cfg();
    let mut port = setup(g1.clone(), &tables);
    register(&tables, &g2_cfg());
    udp_exchange(&mut port, &rec);
    let hits = port.port().stats().out.uft_hit;
    let mut rules = default_fw_rules(g1.vni);
    rules.push(p("dir=out action=deny priority=10 protocol=udp"));
    let e = port.port().epoch();
    port.set_fw_rules(&rules).unwrap();
    assert_eq!(port.port().epoch(), e + 1);
    // The rule change clears the firewall's LFT at once; the UFT entries go stale and wait.
    assert_eq!(flows(&port, "firewall"), 0);
    assert_eq!(uft(&port), (1, 1));
    let g2 = g2_cfg();
    let q = guest_pkt(
        &g1,
        IpAddr::Ip4(ip4(&g1)),
        IpAddr::Ip4(ip4(&g2)),
        udp(7000, 53),
    );
    let (r, _) = out(&mut port, &rec, q, T0);
    assert_eq!(r, layer_drop("firewall", DenyReason::Rule));
    // The stale outbound entry was thrown out on sight, with the inbound entry it pairs with.
    assert_eq!(uft(&port), (0, 0));
    let st = port.port().stats().out;
    assert_eq!(st.uft_hit, hits, "no hit on a stale entry");
    assert_eq!(st.drop_layer, 1);
}

#[test]
fn uft_lft_invalidation_in() {
    let rec = Recorder::new("uft_lft_invalidation_in");
    let tables = Arc::new(VpcTables::default());
    let (g1, g2) = (g1_cfg(), g2_cfg());
    let mut port = setup(g1.clone(), &tables);
    register(&tables, &g2);
    udp_exchange(&mut port, &rec);
    // Only ssh is admitted now: the VNI rule is gone.
    let only_ssh: Vec<FirewallRule> =
        vec![p("dir=in action=allow priority=1 protocol=tcp port=22")];
    let e = port.port().epoch();
    port.set_fw_rules(&only_ssh).unwrap();
    assert_eq!(port.port().epoch(), e + 1);
    assert_eq!(flows(&port, "firewall"), 0);
    assert_eq!(uft(&port), (1, 1));
    let miss = port.port().stats().r#in.uft_miss;
    let f = frame(
        g2.guest_mac,
        g1.guest_mac,
        IpAddr::Ip4(ip4(&g2)),
        IpAddr::Ip4(ip4(&g1)),
        udp(53, 7000),
        &[],
    );
    let a = encap(g2.phys_ip, g1.phys_ip, g1.vni, false, &f);
    let (r, _) = inb(&mut port, &rec, a, T0);
    assert_eq!(r, layer_drop("firewall", DenyReason::Default));
    // The stale inbound entry and the outbound entry it pairs with are both gone.
    assert_eq!(uft(&port), (0, 0));
    assert_eq!(port.port().stats().r#in.uft_miss, miss + 1);
}

#[test]
fn tcp_outbound_active_open_and_close() {
    let rec = Recorder::new("tcp_outbound");
    let tables = Arc::new(VpcTables::default());
    let g1 = g1_cfg();
    let mut port = setup(g1.clone(), &tables);
    add_igw_routes(&mut port, None);
    let me = IpAddr::Ip4(ip4(&g1));
    let remote: IpAddr = p(REMOTE4);
    let snat: IpAddr = p("10.77.77.13");
    let (r, mut pkt) = out(
        &mut port,
        &rec,
        guest_pkt(&g1, me, remote, seg(5555, 80, SYN, 1000, 0)),
        T0,
    );
    assert_eq!(r, ProcessResult::Modified);
    assert_eq!(tcp_state(&port), Some(TcpState::SynSent));
    let sport = net(&mut pkt).inner.flow.src_port();
    let from_remote = |fl, seq, ack| from_internet(&g1, remote, snat, seg(80, sport, fl, seq, ack));
    let to_remote = |fl, seq, ack| guest_pkt(&g1, me, remote, seg(5555, 80, fl, seq, ack));
    enum Step {
        In(u8, u32, u32),
        Out(u8, u32, u32),
    }
    use Step::*;
    let steps = [
        (In(SYN | ACK, 5000, 1001), TcpState::Established),
        (Out(ACK, 1001, 5001), TcpState::Established),
        (Out(ACK, 1001, 5001), TcpState::Established),
        (In(ACK, 5001, 1001), TcpState::Established),
        (Out(FIN | ACK, 1001, 5001), TcpState::FinWait1),
        (In(ACK, 5001, 1002), TcpState::FinWait2),
        (In(FIN | ACK, 5001, 1002), TcpState::TimeWait),
        (Out(ACK, 1002, 5002), TcpState::TimeWait),
    ];
    for (i, (step, want)) in steps.into_iter().enumerate() {
        let r = match step {
            In(fl, s, a) => inb(&mut port, &rec, from_remote(fl, s, a), T0).0,
            Out(fl, s, a) => out(&mut port, &rec, to_remote(fl, s, a), T0).0,
        };
        assert_eq!(r, ProcessResult::Modified, "step {i}");
        assert_eq!(tcp_state(&port), Some(want), "step {i}");
    }
    assert_eq!(uft(&port), (1, 1));
    assert_eq!(
        port.port().stats().out.uft_hit,
        4,
        "all but the SYN on the fast path"
    );

    // A SYN on the same 4-tuple in TIME_WAIT is a new connection.
    let (r, mut pkt) = out(&mut port, &rec, to_remote(SYN, 9000, 0), T0);
    assert_eq!(r, ProcessResult::Modified);
    assert_eq!(tcp_state(&port), Some(TcpState::SynSent));
    assert_eq!(
        net(&mut pkt).inner.flow.src_port(),
        sport,
        "same NAT mapping"
    );
    let d = port.port().dump_tcp_flows().unwrap();
    assert_eq!(d.flows[0].1.tcp_state.guest_seq, Some(9000));

    // An incipient connection expires after 5 s; the LFTs outlive it.
    port.port_mut().expire_flows(T0.plus_secs(6)).unwrap();
    assert_eq!(tcp_state(&port), None);
    assert_eq!(flows(&port, "nat"), 1);
}

#[test]
fn tcp_inbound_passive_open_and_close() {
    let rec = Recorder::new("tcp_inbound");
    let (mut port, to_peer, from_peer) = tcp_pair(80, 40000);
    enum Step {
        In(u8, u32, u32),
        Out(u8, u32, u32),
    }
    use Step::*;
    let steps = [
        (In(SYN, 100, 0), Some(TcpState::Listen)),
        (Out(SYN | ACK, 7000, 101), Some(TcpState::SynRcvd)),
        (In(ACK, 101, 7001), Some(TcpState::Established)),
        (In(ACK, 101, 7001), Some(TcpState::Established)),
        (Out(ACK, 7001, 101), Some(TcpState::Established)),
        (In(FIN | ACK, 101, 7001), Some(TcpState::CloseWait)),
        (Out(ACK, 7001, 102), Some(TcpState::CloseWait)),
        (Out(FIN | ACK, 7001, 102), Some(TcpState::LastAck)),
        (In(ACK, 102, 7002), None),
    ];
    for (i, (step, want)) in steps.into_iter().enumerate() {
        let r = match step {
            In(fl, s, a) => inb(&mut port, &rec, from_peer(fl, s, a), T0).0,
            Out(fl, s, a) => out(&mut port, &rec, to_peer(fl, s, a), T0).0,
        };
        assert_eq!(r, ProcessResult::Modified, "step {i}");
        assert_eq!(tcp_state(&port), want, "step {i}");
    }
    // Closed: the connection's UFT entries went with it; the firewall LFT stays.
    assert_eq!(uft(&port), (0, 0));
    assert_eq!(port.port().num_tcp_flows(), 0);
    assert_eq!(flows(&port, "firewall"), 1);
    // A SYN in ESTABLISHED of a reopened connection starts a new one.
    assert_eq!(
        inb(&mut port, &rec, from_peer(SYN, 500, 0), T0).0,
        ProcessResult::Modified
    );
    assert_eq!(tcp_state(&port), Some(TcpState::Listen));
    out(&mut port, &rec, to_peer(SYN | ACK, 800, 501), T0);
    inb(&mut port, &rec, from_peer(ACK, 501, 801), T0);
    assert_eq!(tcp_state(&port), Some(TcpState::Established));
    assert_eq!(
        inb(&mut port, &rec, from_peer(SYN, 900, 0), T0).0,
        ProcessResult::Modified
    );
    assert_eq!(
        tcp_state(&port),
        Some(TcpState::Listen),
        "new flow replaced it"
    );
}

/// A SYN on the 4-tuple of a connection in TIME_WAIT or ESTABLISHED is a new connection:
/// the old TCP entry and both its UFT entries go, the SYN takes the slow path and is
/// tracked afresh (from whichever side sent it); the layers' flows are reused.
#[test]
fn early_tcp_invalidation() {
    let rec = Recorder::new("early_tcp_invalidation");
    let (mut port, to_peer, from_peer) = tcp_pair(6000, 80);
    let guest_seq = |port: &VpcPort| {
        let d = port.port().dump_tcp_flows().unwrap();
        d.flows[0].1.tcp_state.guest_seq
    };
    let send_out = |port: &mut VpcPort, fl, seq, ack| {
        let r = out(port, &rec, to_peer(fl, seq, ack), T0).0;
        assert_eq!(r, ProcessResult::Modified, "out {fl:#x} {seq}");
    };
    let send_in = |port: &mut VpcPort, fl, seq, ack| {
        let r = inb(port, &rec, from_peer(fl, seq, ack), T0).0;
        assert_eq!(r, ProcessResult::Modified, "in {fl:#x} {seq}");
    };

    // Active open and close down to TIME_WAIT.
    send_out(&mut port, SYN, 1000, 0);
    send_in(&mut port, SYN | ACK, 5000, 1001);
    send_out(&mut port, ACK, 1001, 5001);
    send_out(&mut port, FIN | ACK, 1001, 5001);
    send_in(&mut port, FIN | ACK, 5001, 1002);
    send_out(&mut port, ACK, 1002, 5002);
    assert_eq!(tcp_state(&port), Some(TcpState::TimeWait));
    assert_eq!(uft(&port), (1, 1));

    // A SYN from the guest in TIME_WAIT: not a hit on the old entry but a new flow.
    let (hit, miss) = (
        port.port().stats().out.uft_hit,
        port.port().stats().out.uft_miss,
    );
    send_out(&mut port, SYN, 9000, 0);
    assert_eq!(tcp_state(&port), Some(TcpState::SynSent));
    assert_eq!(guest_seq(&port), Some(9000));
    assert_eq!(port.port().num_tcp_flows(), 1, "replaced, not added");
    assert_eq!(
        uft(&port),
        (0, 1),
        "the old pair went, the SYN made a new outbound entry"
    );
    let st = port.port().stats().out;
    assert_eq!((st.uft_hit, st.uft_miss), (hit, miss + 1));
    assert_eq!(flows(&port, "firewall"), 1, "the firewall flow is reused");
    send_in(&mut port, SYN | ACK, 7000, 9001);
    assert_eq!(tcp_state(&port), Some(TcpState::Established));
    assert_eq!(uft(&port), (1, 1));

    // A SYN from the guest in ESTABLISHED (its stack restarted on the same port).
    send_out(&mut port, SYN, 20_000, 0);
    assert_eq!(tcp_state(&port), Some(TcpState::SynSent));
    assert_eq!(guest_seq(&port), Some(20_000));
    assert_eq!(uft(&port), (0, 1));
    send_in(&mut port, SYN | ACK, 30_000, 20_001);
    assert_eq!(tcp_state(&port), Some(TcpState::Established));

    // A SYN from the peer in ESTABLISHED: tracked anew as a connection the peer opens.
    let miss_in = port.port().stats().r#in.uft_miss;
    send_in(&mut port, SYN, 40_000, 0);
    assert_eq!(tcp_state(&port), Some(TcpState::Listen));
    assert_eq!(guest_seq(&port), None);
    assert_eq!(port.port().num_tcp_flows(), 1);
    assert_eq!(uft(&port), (1, 0));
    assert_eq!(port.port().stats().r#in.uft_miss, miss_in + 1);
    send_out(&mut port, SYN | ACK, 50_000, 40_001);
    assert_eq!(tcp_state(&port), Some(TcpState::SynRcvd));
    assert_eq!(flows(&port, "firewall"), 1);
    let st = port.port().stats();
    assert_eq!(st.r#in.drop + st.out.drop, 0);
}

/// A handshake slower than the incipient timeout still completes: the TCP entry expires,
/// but the layers' flows carry the packets, and the peer's SYN+ACK revives tracking as an
/// established connection (not as a remote opening one, which would never leave LISTEN).
#[test]
fn tcp_invalidation_does_not_block_connection() {
    let rec = Recorder::new("tcp_invalidation_does_not_block_connection");
    let (mut port, to_peer, from_peer) = tcp_pair(5000, 80);
    assert_eq!(
        out(&mut port, &rec, to_peer(SYN, 1, 0), T0).0,
        ProcessResult::Modified
    );
    let later = T0.plus_secs(10);
    port.port_mut().expire_flows(later).unwrap();
    assert_eq!(port.port().num_tcp_flows(), 0, "incipient entry expired");
    assert_eq!(flows(&port, "firewall"), 1, "the firewall flow stays");
    let (r, _) = inb(&mut port, &rec, from_peer(SYN | ACK, 50, 2), later);
    assert_eq!(r, ProcessResult::Modified);
    assert_eq!(
        out(&mut port, &rec, to_peer(ACK, 2, 51), later).0,
        ProcessResult::Modified
    );
    assert_eq!(
        inb(&mut port, &rec, from_peer(ACK, 51, 2), later).0,
        ProcessResult::Modified
    );
    assert_eq!(port.port().num_tcp_flows(), 1);
    assert_eq!(tcp_state(&port), Some(TcpState::Established));
    assert_eq!(
        port.port().stats().r#in.drop + port.port().stats().out.drop,
        0
    );
}

fn tiny_port(tables: &Arc<VpcTables>, uft: u32, tcp: u32) -> VpcPort {
    let limits = PortLimits {
        uft: NonZeroU32::new(uft).unwrap(),
        tcp: NonZeroU32::new(tcp).unwrap(),
        ..PortLimits::for_tests()
    };
    let port = setup_with_limits(g1_cfg(), tables, limits);
    register(tables, &g2_cfg());
    port
}

#[test]
fn no_panic_on_flow_table_full() {
    let rec = Recorder::new("no_panic_on_flow_table_full");
    let tables = Arc::new(VpcTables::default());
    let mut port = tiny_port(&tables, 1, 1);
    let (g1, g2) = (g1_cfg(), g2_cfg());
    let syn = |sport| {
        guest_pkt(
            &g1,
            IpAddr::Ip4(ip4(&g1)),
            IpAddr::Ip4(ip4(&g2)),
            seg(sport, 80, SYN, 1, 0),
        )
    };
    assert_eq!(
        out(&mut port, &rec, syn(1000), T0).0,
        ProcessResult::Modified
    );
    let (r, _) = out(&mut port, &rec, syn(1001), T0);
    assert_eq!(r, ProcessResult::Drop(DropReason::TcpFull));
    let st = port.port().stats().out;
    assert_eq!((st.drop, st.drop_tcp_full), (1, 1));
    // Nothing of the refused connection was kept.
    assert_eq!(port.port().num_tcp_flows(), 1);
    assert_eq!(flows(&port, "firewall"), 1);
    assert_eq!(uft(&port), (0, 1));
}

#[test]
fn full_uft_drops_new_flows_until_expiry_frees_room() {
    let rec = Recorder::new("full_uft");
    let tables = Arc::new(VpcTables::default());
    let mut port = tiny_port(&tables, 4, 4);
    let (g1, g2) = (g1_cfg(), g2_cfg());
    let q = |sport| {
        guest_pkt(
            &g1,
            IpAddr::Ip4(ip4(&g1)),
            IpAddr::Ip4(ip4(&g2)),
            udp(sport, 53),
        )
    };
    for s in 0..4 {
        assert_eq!(
            out(&mut port, &rec, q(100 + s), T0).0,
            ProcessResult::Modified
        );
    }
    let (r, _) = out(&mut port, &rec, q(200), T0);
    assert_eq!(r, ProcessResult::Drop(DropReason::UftFull));
    assert_eq!(port.port().stats().out.drop_uft_full, 1);
    // The refused flow's layer state was undone; the admitted flows keep the fast path.
    assert_eq!(flows(&port, "firewall"), 4);
    assert_eq!(out(&mut port, &rec, q(100), T0).0, ProcessResult::Modified);
    assert_eq!(port.port().stats().out.uft_hit, 1);
    port.port_mut().expire_flows(T0.plus_secs(61)).unwrap();
    assert_eq!(uft(&port), (0, 0));
    assert_eq!(
        out(&mut port, &rec, q(200), T0.plus_secs(61)).0,
        ProcessResult::Modified
    );
}

/// A port as the host builds it, before `start`.
fn ready_port(tables: &Arc<VpcTables>) -> VpcPort {
    let cfg = g1_cfg();
    register(tables, &cfg);
    register(tables, &g2_cfg());
    let sub = opte_api::IpCidr::Ip4(cfg.ipv4().unwrap().vpc_subnet);
    let v = cfg.vni;
    let mut port =
        VpcPort::new("g", cfg, 1500, tables.clone(), PortLimits::for_tests(), 7).unwrap();
    port.add_router_entry(sub, RouterTarget::VpcSubnet(sub), RouterClass::System)
        .unwrap();
    port.set_fw_rules(&default_fw_rules(v)).unwrap();
    port
}

fn to_g2(sport: u16) -> opte::packet::Packet {
    let (g1, g2) = (g1_cfg(), g2_cfg());
    guest_pkt(
        &g1,
        IpAddr::Ip4(ip4(&g1)),
        IpAddr::Ip4(ip4(&g2)),
        seg(sport, 80, SYN, 1, 0),
    )
}

#[test]
fn port_transition_running() {
    let rec = Recorder::new("port_transition_running");
    let tables = Arc::new(VpcTables::default());
    let mut port = ready_port(&tables);
    assert_eq!(port.port().state(), PortState::Ready);
    let (r, _) = out(&mut port, &rec, to_g2(1), T0);
    assert_eq!(r, ProcessResult::Drop(DropReason::PortNotRunning));
    assert_eq!(port.port().stats().out.drop_not_running, 1);
    assert!(
        port.port_mut().pause().is_err(),
        "only a running port pauses"
    );
    port.port_mut().start();
    assert_eq!(port.port().state(), PortState::Running);
    assert_eq!(
        out(&mut port, &rec, to_g2(1), T0).0,
        ProcessResult::Modified
    );
}

#[test]
fn port_transition_reset_clears_every_flow() {
    let rec = Recorder::new("port_transition_reset");
    let tables = Arc::new(VpcTables::default());
    let mut port = ready_port(&tables);
    port.port_mut().start();
    for s in 1..4 {
        assert_eq!(
            out(&mut port, &rec, to_g2(s), T0).0,
            ProcessResult::Modified
        );
    }
    assert_eq!((uft(&port).1, port.port().num_tcp_flows()), (3, 3));
    assert_eq!(flows(&port, "firewall"), 3);
    let e = port.port().epoch();
    port.port_mut().reset();
    assert_eq!(port.port().state(), PortState::Ready);
    assert_eq!(uft(&port), (0, 0));
    assert_eq!(port.port().num_tcp_flows(), 0);
    for l in ["gateway", "firewall", "router", "nat", "overlay"] {
        assert_eq!(flows(&port, l), 0, "{l}");
    }
    assert_eq!(port.port().epoch(), e, "rules are kept");
    assert_rules(&port, &[("firewall", 3, 0), ("router", 0, 2)]);
    let (r, _) = out(&mut port, &rec, to_g2(1), T0);
    assert_eq!(r, ProcessResult::Drop(DropReason::PortNotRunning));
}

#[test]
fn port_transition_pause_refuses_traffic_and_edits_but_allows_dumps() {
    let rec = Recorder::new("port_transition_pause");
    let tables = Arc::new(VpcTables::default());
    let mut port = ready_port(&tables);
    port.port_mut().start();
    assert_eq!(
        out(&mut port, &rec, to_g2(1), T0).0,
        ProcessResult::Modified
    );
    port.port_mut().pause().unwrap();
    assert_eq!(port.port().state(), PortState::Paused);
    let (r, _) = out(&mut port, &rec, to_g2(2), T0);
    assert_eq!(r, ProcessResult::Drop(DropReason::PortNotRunning));
    let e = port.port().epoch();
    let rule: FirewallRule = p("dir=in action=allow priority=10 protocol=udp");
    assert!(matches!(
        port.add_fw_rule(&rule),
        Err(OpteError::BadState(_))
    ));
    assert!(matches!(
        port.set_fw_rules(&[rule]),
        Err(OpteError::BadState(_))
    ));
    assert!(port.port_mut().clear_uft().is_err());
    assert!(port.port_mut().expire_flows(T0.plus_secs(100)).is_err());
    assert_eq!(port.port().epoch(), e);
    // Dumps still work, and show the state kept across the pause.
    assert_eq!(port.port().dump_uft().unwrap().out_num_flows, 1);
    assert_eq!(port.port().dump_tcp_flows().unwrap().flows.len(), 1);
    assert_eq!(
        port.port().dump_layer("firewall").unwrap().rules_in.len(),
        3
    );
    port.port_mut().start();
    assert_eq!(
        out(&mut port, &rec, to_g2(1), T0).0,
        ProcessResult::Modified
    );
    assert_eq!(
        port.port().stats().out.uft_hit,
        1,
        "flows survived the pause"
    );
}
