//! The host's datapath allocates nothing for a packet of an established flow, sent to the
//! underlay or delivered to a guest (a count, not a time): port lookup, the port's lock,
//! the flow cache, the route cache and the emitted action.

mod common;

#[path = "../../opte/tests/common/counting.rs"]
mod counting;

use common::tcpf::{ACK, SYN};
use common::*;
use counting::{Counting, allocs};
use opte::packet::Packet;
use xde::Emit;

#[global_allocator]
static A: Counting = Counting;

#[test]
fn established_flows_cross_the_host_without_allocating() {
    let mut rack = Rack::new("datapath_alloc", 2);
    let g1 = guest(VNI_A, 5, 0);
    let g2 = guest(VNI_A, 6, 1);
    rack.add_guest(0, "g1", &g1);
    rack.add_guest(1, "g2", &g2);
    let (a, b) = (ip4(&g1), ip4(&g2));
    // The handshake compiles the flows and fills the route caches.
    rack.send(
        0,
        "g1",
        from_guest(&g1, a, b, tcp(40000, 22, SYN, 100, 0), b""),
    );
    rack.send(
        1,
        "g2",
        from_guest(&g2, b, a, tcp(22, 40000, SYN | ACK, 900, 101), b""),
    );
    rack.send(
        0,
        "g1",
        from_guest(&g1, a, b, tcp(40000, 22, ACK, 101, 901), b""),
    );
    assert_eq!(rack.take(1, "g2").len(), 2);

    let (tx_port, now) = (rack.sleds[0].xde.port("g1").unwrap(), rack.now);
    let mut out = Vec::with_capacity(4);
    for i in 0..10u32 {
        let frame = from_guest(&g1, a, b, tcp(40000, 22, ACK, 101 + i, 901), b"data");
        let pkt = Packet::copy_from(&frame);
        let ((), n) = allocs(|| rack.sleds[0].xde.tx(&tx_port, pkt, now, &mut out));
        assert_eq!(n, 0, "tx of an established flow allocated {n} times");
        let Some(Emit::Underlay { link, pkt }) = out.pop() else {
            panic!("expected a frame for the underlay");
        };
        assert!(out.is_empty());

        let pkt = Packet::copy_from(&pkt.to_vec());
        let ((), n) = allocs(|| rack.sleds[1].xde.rx(link, pkt, now, &mut out));
        assert_eq!(n, 0, "rx of an established flow allocated {n} times");
        match out.pop() {
            Some(Emit::Guest { port, pkt }) => {
                assert_eq!(port.name(), "g2");
                assert_eq!(payload(&pkt.to_vec()), b"data");
            }
            _ => panic!("expected a frame for g2"),
        }
    }
    assert_eq!(rack.counter(0, "tx_underlay"), 12);
    assert_eq!(rack.counter(1, "rx_delivered"), 12);
}
