//! A port's flow state moved to another port of the same configuration on another sled
//! (`Port::export_flows`, `Port::import_flows`): an established connection to the internet
//! keeps its SNAT port and passes the firewall inbound there, the SNAT port is the
//! importer's to keep, ages are relative, and a port that cannot own a flow refuses it all.

mod common;

use common::*;
use opte::engine::port::{PortFlowState, PortState, ProcessResult};
use opte::engine::stats::DropReason;
use opte::engine::time::Moment;
use opte::wire::tcp::flags;
use opte_api::{IpAddr, OpteError, TcpState};
use oxide_vpc::api::VpcCfg;
use oxide_vpc::engine::VpcPort;
use oxide_vpc::tables::VpcTables;
use std::sync::Arc;

fn snat_ip() -> IpAddr {
    p("10.77.77.13")
}

/// A data segment of the guest's connection from `sport` to the remote's 443.
fn seg_out(c: &VpcCfg, sport: u16, seq: u32, ack: u32) -> opte::packet::Packet {
    guest_pkt(
        c,
        IpAddr::Ip4(ip4(c)),
        p(REMOTE4),
        L4::tcp(sport, 443, flags::ACK, seq, ack),
    )
}

/// A segment from the remote to SNAT port `nat_port`.
fn seg_in(c: &VpcCfg, nat_port: u16, fl: u8, seq: u32, ack: u32) -> opte::packet::Packet {
    from_internet(
        c,
        p(REMOTE4),
        snat_ip(),
        L4::tcp(443, nat_port, fl, seq, ack),
    )
}

/// The guest's port on a sled: `setup` plus the internet-gateway routes.
fn port_on(c: &VpcCfg) -> (Arc<VpcTables>, VpcPort) {
    let tables = Arc::new(VpcTables::default());
    let mut port = setup(c.clone(), &tables);
    add_igw_routes(&mut port, None);
    (tables, port)
}

/// Open a connection from the guest's port 5555 to the remote's 443 on `port` at `t`: the
/// SNAT port it got.
fn open(port: &mut VpcPort, c: &VpcCfg, rec: &Recorder, t: Moment) -> u16 {
    let syn = guest_pkt(
        c,
        IpAddr::Ip4(ip4(c)),
        p(REMOTE4),
        L4::tcp(5555, 443, flags::SYN, 1000, 0),
    );
    let (r, mut pkt) = out(port, rec, syn, t);
    assert_eq!(r, ProcessResult::Modified);
    let nat_port = net(&mut pkt).inner.flow.src_port();
    let (r, _) = inb(
        port,
        rec,
        seg_in(c, nat_port, flags::SYN | flags::ACK, 5000, 1001),
        t,
    );
    assert_eq!(r, ProcessResult::Modified);
    let (r, _) = out(port, rec, seg_out(c, 5555, 1001, 5001), t);
    assert_eq!(r, ProcessResult::Modified);
    nat_port
}

#[test]
fn an_established_connection_moves_with_its_snat_port_and_firewall_state() {
    let rec = Recorder::new("migrate");
    let g1 = g1_cfg();
    let (_ta, mut a) = port_on(&g1);
    // Sled A's clock is far ahead of sled B's.
    let t_a = Moment::from_secs(100_000);
    let nat_port = open(&mut a, &g1, &rec, t_a);
    let key = {
        let mut pkt = seg_out(&g1, 5555, 1001, 5001);
        guest(&mut pkt).flow
    };
    assert_eq!(a.port().tcp_state(&key), Some(TcpState::Established));

    // Export 30 s after the last packet: the port pauses, and says what it holds.
    let st = a.port_mut().export_flows(t_a.plus_secs(30)).unwrap();
    assert_eq!(a.port().state(), PortState::Paused);
    let (r, _) = out(&mut a, &rec, seg_out(&g1, 5555, 1001, 5001), t_a);
    assert_eq!(r, ProcessResult::Drop(DropReason::PortNotRunning));
    assert_eq!(st.tcp.len(), 1);
    assert_eq!(st.tcp[0].idle_ms, 30_000);
    assert_eq!(st.left_behind, 0);
    // Firewall, NAT and overlay... pairs: at least the firewall's and the SNAT's.
    assert!(st.num_pairs() >= 2, "{st:?}");
    // It travels as bytes.
    let bytes = postcard::to_allocvec(&st).unwrap();
    let st: PortFlowState = postcard::from_bytes(&bytes).unwrap();

    // Sled B: the same guest configuration, another sled address, a young clock.
    let mut g1b = g1.clone();
    g1b.phys_ip = p("fd00:0:f7:102::1");
    let (_tb, mut b) = port_on(&g1b);
    let t_b = Moment::from_secs(100);
    b.port_mut().import_flows(&st, t_b).unwrap();
    assert_eq!(b.port().state(), PortState::Running);
    assert_eq!(b.port().tcp_state(&key), Some(TcpState::Established));
    assert_eq!(b.port().num_flows("uft", opte_api::Direction::Out), Some(0));

    // The connection goes on: the same SNAT port out, and the remote's segment to it is
    // admitted inbound (the firewall's default denies what it did not see go out).
    let (r, mut pkt) = out(&mut b, &rec, seg_out(&g1b, 5555, 1001, 5001), t_b);
    assert_eq!(r, ProcessResult::Modified);
    let n = net(&mut pkt);
    assert_eq!(
        (n.inner.flow.src_ip(), n.inner.flow.src_port()),
        (snat_ip(), nat_port)
    );
    assert_eq!(n.outer.src, g1b.phys_ip);
    let (r, _) = inb(
        &mut b,
        &rec,
        seg_in(&g1b, nat_port, flags::ACK, 5001, 1001),
        t_b,
    );
    assert_eq!(r, ProcessResult::Modified);
    // An unsolicited connection from the same remote is still refused.
    let (r, _) = inb(&mut b, &rec, seg_in(&g1b, 4000, flags::SYN, 9000, 0), t_b);
    assert!(matches!(r, ProcessResult::Drop(_)), "{r:?}");

    // The SNAT port is B's now: a new connection there gets another one.
    let syn = guest_pkt(
        &g1b,
        IpAddr::Ip4(ip4(&g1b)),
        p(REMOTE4),
        L4::tcp(6666, 443, flags::SYN, 1, 0),
    );
    let (r, mut pkt) = out(&mut b, &rec, syn, t_b);
    assert_eq!(r, ProcessResult::Modified);
    assert_ne!(net(&mut pkt).inner.flow.src_port(), nat_port);

    // Ages are relative: idle for a minute more than the established timeout since
    // its last segment on B (at t_b), the connection expires there.
    b.port_mut()
        .expire_flows(t_b.plus_secs(8_000 + 60))
        .unwrap();
    assert_eq!(b.port().tcp_state(&key), None);

    // An imported connection that stays idle keeps what it runs through: its flow
    // pairs (the SNAT translation with them) outlive their own 60 s timeout because
    // the connection depends on them, as it would on the sled that made them; the
    // connection itself goes 8000 s after its last segment on A, not after the import.
    let (_tb2, mut b2) = port_on(&g1b);
    b2.port_mut().import_flows(&st, t_b).unwrap();
    b2.port_mut().expire_flows(t_b.plus_secs(600)).unwrap();
    assert_eq!(b2.port().tcp_state(&key), Some(TcpState::Established));
    assert_eq!(flows(&b2, "nat"), 1);
    let (r, mut pkt) = out(
        &mut b2,
        &rec,
        seg_out(&g1b, 5555, 1001, 5001),
        t_b.plus_secs(600),
    );
    assert_eq!(r, ProcessResult::Modified);
    assert_eq!(net(&mut pkt).inner.flow.src_port(), nat_port);
    let (_tb3, mut b3) = port_on(&g1b);
    b3.port_mut().import_flows(&st, t_b).unwrap();
    b3.port_mut()
        .expire_flows(t_b.plus_secs(8_000 - 30 - 1))
        .unwrap();
    assert_eq!(b3.port().tcp_state(&key), Some(TcpState::Established));
    b3.port_mut()
        .expire_flows(t_b.plus_secs(8_000 - 30 + 1))
        .unwrap();
    assert_eq!(b3.port().tcp_state(&key), None);

    // A abandons the migration: it runs again, with its flows.
    a.port_mut().start();
    let (r, mut pkt) = out(&mut a, &rec, seg_out(&g1, 5555, 1002, 5001), t_a);
    assert_eq!(r, ProcessResult::Modified);
    assert_eq!(net(&mut pkt).inner.flow.src_port(), nat_port);
}

#[test]
fn a_port_that_cannot_own_a_flow_refuses_the_whole_import() {
    let rec = Recorder::new("migrate_refused");
    let g1 = g1_cfg();
    let (_ta, mut a) = port_on(&g1);
    let nat_port = open(&mut a, &g1, &rec, Moment::ZERO);
    let st = a.port_mut().export_flows(Moment::ZERO).unwrap();

    // Another SNAT address: the SNAT pair has no owner there.
    let mut other = g1.clone();
    if let oxide_vpc::api::IpCfg::DualStack { ipv4, .. } = &mut other.ip_cfg {
        ipv4.external_ips.snat.as_mut().unwrap().external_ip = p("10.77.77.99");
    }
    let (_tb, mut b) = port_on(&other);
    let e = b.port_mut().import_flows(&st, Moment::ZERO).unwrap_err();
    assert!(
        matches!(&e, OpteError::FlowStateRefused(m) if m.contains("nat")),
        "{e}"
    );
    // Refused whole: the firewall's pairs, imported before the SNAT one failed, are
    // gone again, and the port runs as before.
    assert_eq!(b.port().num_tcp_flows(), 0);
    for l in ["firewall", "nat"] {
        assert_eq!(flows(&b, l), 0, "{l}");
    }
    assert_eq!(b.port().state(), PortState::Running);

    // A port that holds flows takes no more: the second import is refused, and leaves
    // the first's alone.
    let (_tc, mut c) = port_on(&g1);
    c.port_mut().import_flows(&st, Moment::ZERO).unwrap();
    let e = c.port_mut().import_flows(&st, Moment::ZERO).unwrap_err();
    assert!(
        matches!(&e, OpteError::FlowStateRefused(m) if m.contains("already holds")),
        "{e}"
    );
    assert_eq!(c.port().num_tcp_flows(), 1);
    let syn = guest_pkt(
        &g1,
        IpAddr::Ip4(ip4(&g1)),
        p(REMOTE4),
        L4::tcp(7777, 443, flags::SYN, 1, 0),
    );
    let (r, mut pkt) = out(&mut c, &rec, syn, Moment::ZERO);
    assert_eq!(r, ProcessResult::Modified);
    assert_ne!(net(&mut pkt).inner.flow.src_port(), nat_port);
}
