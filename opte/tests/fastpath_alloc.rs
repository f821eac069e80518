//! The compiled UFT-hit path allocates nothing, in both directions (a count, not a time).

mod common;

use common::counting::{Counting, allocs};
use common::{port, tcp4_in, tcp4_out};
use opte::engine::port::ProcessResult;
use opte::engine::time::Moment;
use opte::engine::view::Parsed;
use opte::packet::parse::{parse_guest, parse_network};
use opte::wire::tcp::flags;
use opte_api::Direction;

#[global_allocator]
static A: Counting = Counting;

#[test]
fn uft_hits_allocate_nothing_in_either_direction() {
    let mut p = port(64, 64, 64);
    let t = Moment::ZERO;
    // Open the connection on the slow path.
    for (dir, mut pkt) in [
        (Direction::Out, tcp4_out(10010, flags::SYN, 100, 0)),
        (
            Direction::In,
            tcp4_in(10010, flags::SYN | flags::ACK, 500, 101),
        ),
    ] {
        let parsed = match dir {
            Direction::Out => Parsed::Guest(parse_guest(&mut pkt).unwrap()),
            Direction::In => Parsed::Network(parse_network(&mut pkt).unwrap()),
        };
        assert_eq!(
            p.process(dir, &mut pkt, &parsed, t),
            ProcessResult::Modified
        );
    }
    for i in 0..10u32 {
        // Outbound: the encapsulation goes into the packet's headroom.
        let mut pkt = tcp4_out(10010, flags::ACK, 101 + i, 501);
        let parsed = Parsed::Guest(parse_guest(&mut pkt).unwrap());
        let (r, n) = allocs(|| p.process(Direction::Out, &mut pkt, &parsed, t));
        assert_eq!(r, ProcessResult::Modified);
        assert_eq!(n, 0, "outbound UFT hit allocated {n} times");

        // Inbound: the decapsulation frees the outer segment, allocates nothing.
        let mut pkt = tcp4_in(10010, flags::ACK, 501 + i, 101);
        let (parsed, n_parse) = allocs(|| Parsed::Network(parse_network(&mut pkt).unwrap()));
        assert_eq!(n_parse, 0);
        let (r, n) = allocs(|| p.process(Direction::In, &mut pkt, &parsed, t));
        assert_eq!(r, ProcessResult::Modified);
        assert_eq!(n, 0, "inbound UFT hit allocated {n} times");
    }
    assert_eq!(p.stats().out.uft_hit, 10);
    assert_eq!(p.stats().r#in.uft_hit, 10);
}
