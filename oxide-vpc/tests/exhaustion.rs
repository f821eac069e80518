//! A flood of 1,000,000 distinct inbound SYNs against a port whose tables hold 65,536
//! flows: the tables stay at their limits, memory stops growing once they are full, a
//! connection established before the flood keeps working, and every refused SYN is counted.

mod common;

use common::*;
use opte::engine::port::ProcessResult;
use opte::engine::time::Moment;
use opte::engine::view::Parsed;
use opte::packet::Packet;
use opte::packet::parse::{parse_guest, parse_network};
use opte::wire::tcp::flags;
use opte_api::{Direction, IpAddr, IpCidr, Ipv4Addr, TcpState};
use oxide_vpc::api::{RouterClass, RouterTarget};
use oxide_vpc::engine::{PortLimits, VpcPort};
use oxide_vpc::tables::VpcTables;
use std::alloc::{GlobalAlloc, Layout, System};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Bytes currently allocated by the whole test binary.
static LIVE: AtomicI64 = AtomicI64::new(0);

struct Live;

// SAFETY: forwards to `System`; the counter is an atomic integer.
unsafe impl GlobalAlloc for Live {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as i64, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as i64, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        LIVE.fetch_add(n as i64 - l.size() as i64, Ordering::Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Live = Live;

const LIMIT: u32 = 65_536;
const FLOOD: u32 = 1_000_000;

fn port(tables: &Arc<VpcTables>) -> VpcPort {
    let cfg = g1_cfg();
    register(tables, &cfg);
    register(tables, &g2_cfg());
    let n = NonZeroU32::new(LIMIT).unwrap();
    let one = NonZeroU32::new(1).unwrap();
    let limits = PortLimits {
        uft: n,
        tcp: n,
        firewall: n,
        gateway: one,
        router: one,
        nat: n,
        overlay: one,
    };
    let sub = IpCidr::Ip4(cfg.ipv4().unwrap().vpc_subnet);
    let v = cfg.vni;
    let mut port = VpcPort::new("g1", cfg, 1500, tables.clone(), limits, 42).unwrap();
    port.add_router_entry(sub, RouterTarget::VpcSubnet(sub), RouterClass::System)
        .unwrap();
    port.set_fw_rules(&default_fw_rules(v)).unwrap();
    port.port_mut().start();
    port
}

fn run_out(port: &mut VpcPort, mut pkt: Packet, now: Moment) -> ProcessResult {
    let parsed = Parsed::Guest(parse_guest(&mut pkt).unwrap());
    port.process(Direction::Out, &mut pkt, &parsed, now)
}

fn run_in(port: &mut VpcPort, mut pkt: Packet, now: Moment) -> ProcessResult {
    let parsed = Parsed::Network(parse_network(&mut pkt).unwrap());
    port.process(Direction::In, &mut pkt, &parsed, now)
}

/// A segment from a VPC peer at `src` to g1's port 22, from g2's sled.
fn from_peer(src: Ipv4Addr, sport: u16, fl: u8, seq: u32, ack: u32) -> Packet {
    let g1 = g1_cfg();
    let g2 = g2_cfg();
    let l4 = L4::Tcp {
        sport,
        dport: 22,
        flags: fl,
        seq,
        ack,
    };
    let inner = frame(
        g2.guest_mac,
        g1.guest_mac,
        IpAddr::Ip4(src),
        IpAddr::Ip4(ip4(&g1)),
        l4,
        &[],
    );
    encap(g2.phys_ip, g1.phys_ip, g1.vni, false, &inner)
}

#[test]
fn syn_flood_is_bounded_and_established_connection_survives() {
    let tables = Arc::new(VpcTables::default());
    let mut p = port(&tables);
    let g1 = g1_cfg();
    let g2 = g2_cfg();
    let t0 = Moment::from_secs(100);

    // g1 opens a connection to g2:22 before the flood.
    let tcp_out = |fl, seq, ack| {
        guest_pkt(
            &g1,
            IpAddr::Ip4(ip4(&g1)),
            IpAddr::Ip4(ip4(&g2)),
            L4::Tcp {
                sport: 40000,
                dport: 22,
                flags: fl,
                seq,
                ack,
            },
        )
    };
    let tcp_in = |fl, seq, ack| {
        let l4 = L4::Tcp {
            sport: 22,
            dport: 40000,
            flags: fl,
            seq,
            ack,
        };
        let inner = frame(
            g2.guest_mac,
            g1.guest_mac,
            IpAddr::Ip4(ip4(&g2)),
            IpAddr::Ip4(ip4(&g1)),
            l4,
            &[],
        );
        encap(g2.phys_ip, g1.phys_ip, g1.vni, false, &inner)
    };
    assert_eq!(
        run_out(&mut p, tcp_out(flags::SYN, 100, 0), t0),
        ProcessResult::Modified
    );
    assert_eq!(
        run_in(&mut p, tcp_in(flags::SYN | flags::ACK, 900, 101), t0),
        ProcessResult::Modified
    );
    assert_eq!(
        run_out(&mut p, tcp_out(flags::ACK, 101, 901), t0),
        ProcessResult::Modified
    );
    let mut key_pkt = tcp_out(flags::ACK, 101, 901);
    let key = parse_guest(&mut key_pkt).unwrap().flow;
    assert_eq!(p.port().tcp_state(&key), Some(TcpState::Established));

    let before = p.port().stats().r#in;
    let mut live_at_fill = 0i64;
    for i in 0..FLOOD {
        // 1000 peers x 1000 source ports: every SYN a new flow. Time moves 1 µs a packet.
        let src = Ipv4Addr::from_const([
            172,
            30,
            1 + (i / 1000 % 2) as u8,
            (i / 2000 % 250) as u8 + 2,
        ]);
        let sport = 1024 + (i % 1000) as u16 + 1000 * (i / 500_000) as u16;
        let now = t0.plus_millis(u64::from(i) / 1000);
        run_in(&mut p, from_peer(src, sport, flags::SYN, i, 0), now);
        if i == 200_000 {
            live_at_fill = LIVE.load(Ordering::Relaxed);
        }
    }
    let live_after = LIVE.load(Ordering::Relaxed);
    let s = p.port().stats();
    let flood = s.r#in;

    // Every SYN reached exactly one result, and every one not admitted was counted.
    assert_eq!(flood.results() - before.results(), u64::from(FLOOD));
    let admitted = flood.modified - before.modified;
    let refused = flood.drop - before.drop;
    assert_eq!(admitted + refused, u64::from(FLOOD));
    assert!(refused > 0, "the flood never hit a limit");
    assert_eq!(
        refused,
        (flood.drop_lft_full + flood.drop_uft_full + flood.drop_tcp_full)
            - (before.drop_lft_full + before.drop_uft_full + before.drop_tcp_full),
        "every refusal is a table-full drop"
    );
    // Tables never exceed their limits.
    assert!(p.port().num_flows("uft", Direction::In).unwrap() <= LIMIT);
    assert!(p.port().num_flows("firewall", Direction::In).unwrap() <= LIMIT);
    assert!(p.port().num_tcp_flows() <= LIMIT);
    // Memory stopped growing once the tables were full (allow 4 MiB of slack for the
    // allocator's and tables' own rounding).
    assert!(
        live_after - live_at_fill < 4 << 20,
        "live heap grew by {} bytes after the tables filled",
        live_after - live_at_fill
    );

    // The connection opened before the flood still works, both ways.
    let later = t0.plus_secs(2);
    assert_eq!(
        run_out(&mut p, tcp_out(flags::ACK | flags::PSH, 101, 901), later),
        ProcessResult::Modified
    );
    assert_eq!(
        run_in(&mut p, tcp_in(flags::ACK, 901, 102), later),
        ProcessResult::Modified
    );
    assert_eq!(p.port().tcp_state(&key), Some(TcpState::Established));
}
