//! The `port` property: arbitrary frames, both ways, through a configured VPC port (the
//! benchmarks' ULP port: dual stack, SNAT, ephemeral IPs, internet-gateway routes, a
//! firewall that admits everything inbound) with small tables, while time moves.
//!
//! For any input: processing never panics; after every packet each table (both UFTs, the
//! TCP table, every layer's flow tables) is within its limit; every packet the port
//! processed is counted exactly once in its direction's statistics, as the result it got;
//! a rewritten packet parses again on the side it leaves by, and a hairpin reply parses
//! as a frame for the guest; and once time has moved past every timeout, expiry empties
//! every table.
//!
//! Input layout: records of `[ctl, len_hi, len_lo, frame…]` until the bytes run out (a
//! short last frame takes what is left). `ctl` bit 0 is the direction (0 from the guest,
//! 1 from the underlay), bit 1 asks for an expiry pass after the packet, bits 2–7 (`k`)
//! move the clock by 2^(k/2) ms before it (0 for `k` = 0): up to about 25 days.

use crate::three_segments;
use opte::build::samples::{self, Side};
use opte::engine::port::ProcessResult;
use opte::engine::time::Moment;
use opte::engine::view::Parsed;
use opte::packet::parse::{parse_guest, parse_network};
use oxide_vpc::engine::{PortLimits, VpcPort};
use std::num::NonZeroU32;

/// The fixture's table limits: small, so a short input fills them.
pub fn limits() -> PortLimits {
    let n = |v| NonZeroU32::new(v).unwrap_or(NonZeroU32::MIN);
    PortLimits {
        uft: n(8),
        tcp: n(8),
        firewall: n(8),
        gateway: n(8),
        router: n(1),
        nat: n(8),
        overlay: n(1),
    }
}

fn layer_limit(l: &PortLimits, layer: &str) -> u32 {
    match layer {
        "firewall" => l.firewall.get(),
        "gateway" => l.gateway.get(),
        "router" => l.router.get(),
        "nat" => l.nat.get(),
        "overlay" => l.overlay.get(),
        other => panic!("a layer the fixture does not know: {other}"),
    }
}

/// The port the property runs against, fresh.
pub fn port() -> VpcPort {
    let port = opte_bench::vpc::ulp_port_with(true, limits());
    let names: Vec<String> = port
        .port()
        .list_layers()
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(names, LAYERS, "the fixture's layers");
    port
}

/// How far record control byte `ctl` moves the clock, in milliseconds.
fn advance_ms(ctl: u8) -> u64 {
    match ctl >> 2 {
        0 => 0,
        k => 1u64 << (k / 2),
    }
}

/// Results of one direction, as the port's statistics should show them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub modified: u64,
    pub hairpin: u64,
    pub drop: u64,
}

/// What one input did: the results each way, and the most flows the tables held at once
/// (UFT entries both ways plus TCP entries).
#[derive(Clone, Copy, Debug, Default)]
pub struct Run {
    pub r#in: Tally,
    pub out: Tally,
    pub peak_flows: u32,
}

/// The VPC port's layers (checked against the port when it is made).
const LAYERS: [&str; 5] = ["gateway", "firewall", "router", "nat", "overlay"];

/// Check every table against its limit (by count: a dump formats every entry, which
/// would cost more than the packets); the UFT and TCP entries held.
fn check_tables(port: &VpcPort, l: &PortLimits) -> u32 {
    use opte_api::Direction::{In, Out};
    let p = port.port();
    let (uft_in, uft_out) = (
        p.num_flows("uft", In).unwrap_or(0),
        p.num_flows("uft", Out).unwrap_or(0),
    );
    assert!(uft_in <= l.uft.get(), "inbound UFT over its limit");
    assert!(uft_out <= l.uft.get(), "outbound UFT over its limit");
    assert!(p.num_tcp_flows() <= l.tcp.get(), "TCP table over its limit");
    for name in LAYERS {
        let (n, limit) = (p.num_flows(name, In).unwrap_or(0), layer_limit(l, name));
        assert!(n <= limit, "{name} holds {n} flows, limit {limit}");
    }
    uft_in + uft_out + p.num_tcp_flows()
}

fn all_empty(port: &VpcPort) -> bool {
    use opte_api::Direction::{In, Out};
    let p = port.port();
    let uft = p.dump_uft().expect("the UFT dumps");
    uft.in_num_flows == 0
        && uft.out_num_flows == 0
        && p.num_tcp_flows() == 0
        && p.list_layers().iter().all(|d| {
            [In, Out]
                .iter()
                .all(|&dir| p.num_flows(&d.name, dir) == Some(0))
        })
}

/// The `port` property (see the module's documentation).
pub fn check_port(data: &[u8]) {
    run_port(data);
}

std::thread_local! {
    /// The port, made once a thread: building one costs more than most inputs' packets.
    /// Each input starts it from no flows ([`opte::engine::port::Port::reset`]) and
    /// counts its packets from the statistics it found.
    static PORT: core::cell::RefCell<Option<VpcPort>> = const { core::cell::RefCell::new(None) };
}

/// [`check_port`], saying what the input did.
pub fn run_port(data: &[u8]) -> Run {
    PORT.with(|p| {
        let mut p = p.borrow_mut();
        let port = p.get_or_insert_with(port);
        port.port_mut().reset();
        port.port_mut().start();
        run_on(port, data)
    })
}

fn run_on(port: &mut VpcPort, data: &[u8]) -> Run {
    use opte_api::Direction::{In, Out};
    let mut peak = 0;
    let l = limits();
    let base = port.port().stats();
    let mut now = Moment::ZERO;
    let (mut t_in, mut t_out) = (Tally::default(), Tally::default());
    let mut rest = data;
    while let [ctl, hi, lo, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        let (frame, next) = tail.split_at(len);
        rest = next;
        now = now.plus_millis(advance_ms(*ctl));
        let dir = if ctl & 1 == 0 { Out } else { In };
        let mut pkt = three_segments(frame);
        let parsed = match dir {
            Out => Parsed::from_guest(&mut pkt),
            In => Parsed::from_network(&mut pkt),
        };
        // A frame that does not parse never reaches a port (the host counts it).
        if let Ok(parsed) = parsed {
            let r = port.process(dir, &mut pkt, &parsed, now);
            let t = match dir {
                In => &mut t_in,
                Out => &mut t_out,
            };
            match r {
                ProcessResult::Modified => {
                    t.modified += 1;
                    match dir {
                        Out => parse_network(&mut pkt).map(|_| ()),
                        In => parse_guest(&mut pkt).map(|_| ()),
                    }
                    .unwrap_or_else(|e| panic!("a rewritten {dir:?} packet no longer parses: {e}"));
                }
                ProcessResult::Hairpin(reply) => {
                    t.hairpin += 1;
                    parse_guest(&mut opte::packet::Packet::copy_from(&reply))
                        .unwrap_or_else(|e| panic!("a hairpin reply does not parse: {e}"));
                }
                ProcessResult::Drop(reason) => {
                    t.drop += 1;
                    let _ = format!("{reason:?}");
                }
            }
        }
        if ctl & 2 != 0 {
            port.port_mut()
                .expire_flows(now)
                .expect("expiry of a running port");
        }
        peak = peak.max(check_tables(port, &l));
    }
    let st = port.port().stats();
    let seen = |d: &opte::engine::stats::DirStats, b: &opte::engine::stats::DirStats| Tally {
        modified: d.modified - b.modified,
        hairpin: d.hairpin - b.hairpin,
        drop: d.drop - b.drop,
    };
    assert_eq!(
        seen(&st.r#in, &base.r#in),
        t_in,
        "inbound packets miscounted"
    );
    assert_eq!(
        seen(&st.out, &base.out),
        t_out,
        "outbound packets miscounted"
    );
    // A day after the last packet every flow has timed out, whatever state it was in.
    port.port_mut()
        .expire_flows(now.plus_secs(86_400))
        .expect("expiry of a running port");
    assert!(all_empty(port), "flows outlived their timeouts");
    Run {
        r#in: t_in,
        out: t_out,
        peak_flows: peak,
    }
}

/// One record of the input layout.
fn record(out: &mut Vec<u8>, dir_in: bool, expire: bool, k: u8, frame: &[u8]) {
    out.push((k << 2) | (u8::from(expire) << 1) | u8::from(dir_in));
    let len = u16::try_from(frame.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&frame[..usize::from(len)]);
}

/// Seeds: each sample packet alone, each ULP case's outbound packet then its inbound
/// twin, and every sample in one input with the clock moving and expiry between them.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let all = samples::all();
    let mut out = Vec::new();
    for s in &all {
        let mut v = Vec::new();
        record(&mut v, s.side == Side::Network, false, 0, &s.frame());
        out.push((s.name.replace('/', "-"), v));
    }
    for s in all.iter().filter(|s| s.name.contains("-IN-")) {
        if let Some(twin) = samples::ulp(&s.name.replace("-IN-", "-OUT-")) {
            let mut v = Vec::new();
            record(&mut v, false, false, 0, &twin.frame());
            record(&mut v, true, false, 4, &s.frame());
            record(&mut v, false, true, 20, &twin.frame());
            out.push((format!("pair-{}", s.name.replace('/', "-")), v));
        }
    }
    // A flood of new TCP and UDP flows from the guest (the sample with its source port
    // changed; the engine does not check L4 checksums): more than every table holds.
    for name in ["V4-Tcp-OUT-0B", "V6-Udp-OUT-0B"] {
        let Some(s) = samples::ulp(name) else {
            continue;
        };
        let frame = s.frame();
        let sport_at = if name.contains("V4") {
            14 + 20
        } else {
            14 + 40
        };
        let mut v = Vec::new();
        for i in 0..3 * limits().uft.get() {
            let mut f = frame.clone();
            let port = 20_000 + u16::try_from(i).unwrap_or(0);
            f[sport_at..sport_at + 2].copy_from_slice(&port.to_be_bytes());
            record(&mut v, false, false, 1, &f);
        }
        out.push((format!("flood-{}", name.replace('/', "-")), v));
    }
    let mut v = Vec::new();
    for (i, s) in all.iter().enumerate() {
        let k = (i % 64) as u8;
        record(&mut v, s.side == Side::Network, i % 5 == 0, k, &s.frame());
    }
    out.push(("everything".into(), v));
    out
}
