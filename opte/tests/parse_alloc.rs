//! Parsing allocates nothing: every sample of both shapes, counted by a global allocator.

use opte::build::samples::{self, Side};
use opte::packet::parse::{parse_guest, parse_network};
mod common;

use common::counting::{Counting, allocs};

#[global_allocator]
static A: Counting = Counting;

#[test]
fn parsing_any_sample_allocates_nothing() {
    let all = samples::all();
    assert!(!all.is_empty());
    for s in all {
        let mut pkt = s.packet();
        let (ok, n) = allocs(|| match s.side {
            Side::Guest => parse_guest(&mut pkt).is_ok(),
            Side::Network => parse_network(&mut pkt).is_ok(),
        });
        assert!(ok, "{}", s.name);
        assert_eq!(n, 0, "{}: parse made {n} allocations", s.name);
    }
}

#[test]
fn the_counter_sees_allocations() {
    // The check above is only worth something if the counter counts.
    let (v, n) = allocs(|| std::hint::black_box(vec![1u8; 64]));
    assert_eq!(n, 1);
    drop(v);
}
