//! `cargo ubench`: criterion micro-benchmarks, named as the reference's so the tables line
//! up: `parse/<family>/wallclock/<case>`.
//!
//! Timed region, as upstream: parse the packet (guest side for OUT and hairpin packets,
//! network side for IN), then drop the parse result and free the packet. Building the packet
//! is untimed setup (`iter_batched`, `LargeInput`). IN packets are a 2-segment chain (74-byte
//! outer headers + inner frame); the ICMPv6 echo is 3 segments.
//!
//! Allocation counts (`parse/<family>/alloc_ct|alloc_sz/<case>`) are exact per-packet counts
//! from a counting allocator, printed before the timings: criterion cannot report a
//! measurement of zero, and zero is what every parse should cost.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use opte::build::samples::Side;
use opte::packet::Packet;
use opte::packet::parse::{parse_guest, parse_network};
use opte_bench::{CountingAlloc, cases, count_allocs};
use std::hint::black_box;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Parse, then free the result and the packet: the timed region.
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

fn report_allocations() {
    for c in cases() {
        let side = c.sample.side;
        let pkt = c.sample.packet();
        let ((), n, bytes) = count_allocs(|| parse_and_free(side, pkt));
        println!("parse/{}/alloc_ct/{}: {n}", c.family, c.instance);
        println!("parse/{}/alloc_sz/{}: {bytes}", c.family, c.instance);
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

criterion_group!(wall, parse);
criterion_main!(wall);
