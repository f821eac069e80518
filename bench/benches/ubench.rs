//! `cargo ubench`: criterion micro-benchmarks, named as the reference's so the tables line
//! up: `parse/<family>/wallclock/<case>` and `process/<family>/wallclock/<case>`.
//!
//! Timed regions, as upstream:
//! - parse: parse the packet (guest side for OUT and hairpin packets, network side for IN),
//!   then drop the parse result and free the packet;
//! - process: parse, `Port::process` on a VPC port (BENCH.md §3.2), then free the packet
//!   and any reply.
//!
//! Building the packet and each case's pre-handle are untimed setup (`iter_batched`,
//! `LargeInput`). IN packets are a 2-segment chain (74-byte outer headers + inner frame);
//! the ICMPv6 echo is 3 segments. The fast path's pre-handle sends the flow's outbound
//! packet first; the slow path's clears the UFT, every LFT and the TCP table (upstream's
//! keeps the TCP table, so its TCP slow-path figures never pay for creating the
//! connection's entry; ours do). Because `LargeInput` runs all
//! of a batch's setups before timing its packets, the batched slow-path figure mixes one
//! miss with several hits (upstream's figure, for comparison); `ULP-SlowPath-PerIteration`
//! times each packet right after its own setup, the true first-packet cost.
//!
//! Allocation counts (`<group>/<family>/alloc_ct|alloc_sz/<case>`) are exact per-packet
//! counts of the timed region from a counting allocator, printed before the timings:
//! criterion cannot report a measurement of zero, and zero is what we aim for.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use opte::build::samples::{Sample, Side};
use opte::engine::port::ProcessResult;
use opte::packet::Packet;
use opte::packet::parse::{parse_guest, parse_network};
use opte_bench::vpc::{self, clear_flows};
use opte_bench::{CountingAlloc, cases, count_allocs};
use oxide_vpc::engine::VpcPort;
use std::cell::RefCell;
use std::hint::black_box;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Parse, then free the result and the packet: the timed region of `parse/`.
fn parse_and_free(side: Side, mut pkt: Packet) {
    match side {
        Side::Guest => {
            let r = parse_guest(&mut pkt);
            assert!(r.is_ok());
            black_box(&r);
        }
        Side::Network => {
            let r = parse_network(&mut pkt);
            assert!(r.is_ok());
            black_box(&r);
        }
    }
    drop(pkt);
}

/// Parse, process, free: the timed region of `process/`.
fn process_and_free(port: &mut VpcPort, side: Side, pkt: Packet) {
    let (r, out) = vpc::process(port, side, pkt);
    assert!(!matches!(r, ProcessResult::Drop(_)), "{r:?}");
    drop(black_box(r));
    drop(out);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Hairpin,
    Fast,
    Slow,
}

fn kind(family: &str) -> Kind {
    match family {
        "ULP-FastPath" => Kind::Fast,
        "ULP-SlowPath" => Kind::Slow,
        _ => Kind::Hairpin,
    }
}

fn port_for(k: Kind) -> VpcPort {
    match k {
        Kind::Hairpin => vpc::hairpin_port(),
        Kind::Fast => vpc::ulp_port(false),
        Kind::Slow => vpc::ulp_port(true),
    }
}

/// The untimed work before each timed packet.
fn pre_handle(k: Kind, port: &mut VpcPort, twin: Option<&Sample>) {
    match (k, twin) {
        (Kind::Fast, Some(t)) => {
            let (r, _) = vpc::process(port, t.side, t.packet());
            assert!(!matches!(r, ProcessResult::Drop(_)), "pre-handle: {r:?}");
        }
        (Kind::Slow, _) => clear_flows(port),
        _ => {}
    }
}

fn report_allocations() {
    for c in cases() {
        let side = c.sample.side;
        let pkt = c.sample.packet();
        let ((), n, bytes) = count_allocs(|| parse_and_free(side, pkt));
        println!("parse/{}/alloc_ct/{}: {n}", c.family, c.instance);
        println!("parse/{}/alloc_sz/{}: {bytes}", c.family, c.instance);
    }
    for c in cases() {
        let k = kind(c.family);
        let mut port = port_for(k);
        let twin = vpc::out_twin(&c.instance);
        // Twice: the second packet shows the steady state (a fast-path hit, or a slow-path
        // miss after the clear).
        let mut last = (0, 0);
        for _ in 0..2 {
            pre_handle(k, &mut port, twin.as_ref());
            let pkt = c.sample.packet();
            let ((), n, bytes) = count_allocs(|| process_and_free(&mut port, c.sample.side, pkt));
            last = (n, bytes);
        }
        println!("process/{}/alloc_ct/{}: {}", c.family, c.instance, last.0);
        println!("process/{}/alloc_sz/{}: {}", c.family, c.instance, last.1);
    }
}

fn parse(c: &mut Criterion) {
    report_allocations();
    for case in cases() {
        let side = case.sample.side;
        let mut g = c.benchmark_group(format!("parse/{}/wallclock", case.family));
        g.bench_function(&case.instance, |b| {
            b.iter_batched(
                || case.sample.packet(),
                |pkt| parse_and_free(side, pkt),
                BatchSize::LargeInput,
            )
        });
        g.finish();
    }
}

fn process(c: &mut Criterion) {
    for case in cases() {
        let k = kind(case.family);
        let side = case.sample.side;
        let twin = vpc::out_twin(&case.instance);
        let port = RefCell::new(port_for(k));
        let families: &[(&str, BatchSize)] = if k == Kind::Slow {
            &[
                ("ULP-SlowPath", BatchSize::LargeInput),
                ("ULP-SlowPath-PerIteration", BatchSize::PerIteration),
            ]
        } else {
            &[(case.family, BatchSize::LargeInput)]
        };
        for (family, batch) in families {
            let mut g = c.benchmark_group(format!("process/{family}/wallclock"));
            g.bench_function(&case.instance, |b| {
                b.iter_batched(
                    || {
                        pre_handle(k, &mut port.borrow_mut(), twin.as_ref());
                        case.sample.packet()
                    },
                    |pkt| process_and_free(&mut port.borrow_mut(), side, pkt),
                    *batch,
                )
            });
            g.finish();
        }
    }
}

criterion_group!(wall, parse, process);
criterion_main!(wall);
