//! Flow expiry a budget at a time, and flow-table dumps a page at a time: what a host with
//! a million flows per port does instead of walking every table under the port's lock.

mod common;

use common::{out, port, tcp4_out, udp4_out};
use opte::engine::port::{NoNetwork, Port, ProcessResult};
use opte::engine::time::Moment;
use opte::wire::tcp::flags;
use opte_api::{Direction, InnerFlowId};
use std::collections::BTreeSet;

const UDP_FLOWS: u16 = 600;
const TCP_FLOWS: u16 = 4;

/// 600 UDP flows and 4 half-open TCP connections opened at 10 s; the odd UDP flows are used
/// again at 40 s. Every flow has a UFT entry and a firewall and a NAT pair; the TCP ones have
/// a TCP entry too.
fn busy_port() -> Port<NoNetwork> {
    let mut p = port(4096, 4096, 4096);
    let t0 = Moment::from_secs(10);
    for s in 0..UDP_FLOWS {
        assert_eq!(
            out(&mut p, udp4_out(2000 + s), t0).0,
            ProcessResult::Modified
        );
    }
    for s in 0..TCP_FLOWS {
        let (r, _) = out(&mut p, tcp4_out(30_000 + s, flags::SYN, 1, 0), t0);
        assert_eq!(r, ProcessResult::Modified);
    }
    for s in (1..UDP_FLOWS).step_by(2) {
        out(&mut p, udp4_out(2000 + s), Moment::from_secs(40));
    }
    p
}

/// Entries in every table of the harness port (its layers: firewall, nat, overlay).
fn entries(p: &Port<NoNetwork>) -> u32 {
    let pairs: u32 = ["firewall", "nat", "overlay"]
        .iter()
        .map(|l| 2 * p.num_flows(l, Direction::Out).unwrap())
        .sum();
    p.num_flows("uft", Direction::In).unwrap()
        + p.num_flows("uft", Direction::Out).unwrap()
        + p.num_tcp_flows()
        + pairs
}

#[test]
fn bounded_expiry_removes_every_stale_flow_over_several_calls() {
    let mut p = busy_port();
    let total = entries(&p);
    assert_eq!(
        total,
        u32::from(UDP_FLOWS) * 5 + u32::from(TCP_FLOWS) * 6,
        "a UFT entry and two LFT pairs per flow, a TCP entry per connection"
    );
    // 71 s: the even UDP flows and the half-open connections are stale, the odd flows'
    // UFT entries (used at 40 s) are not, and they hold their LFT parents.
    let now = Moment::from_secs(71);
    let budget = 64;
    let (mut calls, mut visited, mut expired) = (0, 0, 0);
    loop {
        let pr = p.expire_some(now, budget).unwrap();
        calls += 1;
        assert!(pr.visited <= budget, "call {calls} examined {}", pr.visited);
        visited += pr.visited;
        expired += pr.expired;
        if pr.round_complete {
            break;
        }
        assert_eq!(
            pr.visited, budget,
            "a call stops early only at a round's end"
        );
    }
    // One round examined every entry exactly once, a budget at a time.
    assert_eq!(visited, total as usize);
    assert!(calls > total as usize / budget, "{calls} calls");
    let stale = usize::from(UDP_FLOWS / 2) * 5 + usize::from(TCP_FLOWS) * 6;
    assert_eq!(expired, stale);
    assert_eq!(p.num_tcp_flows(), 0);
    assert_eq!(
        p.num_flows("uft", Direction::Out),
        Some(u32::from(UDP_FLOWS / 2))
    );
    for l in ["firewall", "nat"] {
        assert_eq!(
            p.num_flows(l, Direction::Out),
            Some(u32::from(UDP_FLOWS / 2))
        );
    }
    // The live flows are still served by their UFT entries.
    let hits = p.stats().out.uft_hit;
    for s in (1..UDP_FLOWS).step_by(2) {
        assert_eq!(
            out(&mut p, udp4_out(2000 + s), now).0,
            ProcessResult::Modified
        );
    }
    assert_eq!(p.stats().out.uft_hit, hits + u64::from(UDP_FLOWS / 2));

    // The next round starts at the first table again and finds nothing more to expire.
    let pr = p.expire_some(now, usize::MAX).unwrap();
    assert!(pr.round_complete);
    assert_eq!((pr.visited, pr.expired), (entries(&p) as usize, 0));
}

#[test]
fn a_call_resumes_where_the_previous_stopped_and_expire_flows_finishes_the_job() {
    let mut p = busy_port();
    let now = Moment::from_secs(71);
    // Two small calls take some of the stale entries.
    let a = p.expire_some(now, 100).unwrap();
    let b = p.expire_some(now, 100).unwrap();
    assert_eq!((a.visited, b.visited), (100, 100));
    assert!(!a.round_complete && !b.round_complete);
    assert!(a.expired + b.expired > 0);
    // The unbounded form finishes, whatever round was under way.
    p.expire_flows(now).unwrap();
    assert_eq!(p.num_tcp_flows(), 0);
    assert_eq!(
        p.num_flows("uft", Direction::Out),
        Some(u32::from(UDP_FLOWS / 2))
    );
    assert_eq!(
        p.num_flows("firewall", Direction::Out),
        Some(u32::from(UDP_FLOWS / 2))
    );
    // A budget of zero does nothing.
    let z = p.expire_some(now, 0).unwrap();
    assert_eq!((z.visited, z.expired, z.round_complete), (0, 0, false));
}

#[test]
fn paged_dumps_list_every_flow_once() {
    let p = busy_port();
    let whole: BTreeSet<InnerFlowId> = p
        .dump_uft()
        .unwrap()
        .out_flows
        .iter()
        .map(|e| e.0)
        .collect();
    let mut paged = Vec::new();
    let (mut cursor, mut pages) = (0, 0);
    loop {
        let page = p.dump_uft_page(Direction::Out, cursor, 50).unwrap();
        pages += 1;
        assert!(page.flows.len() <= 50);
        assert_eq!((page.limit, page.num_flows), (4096, whole.len() as u32));
        paged.extend(page.flows.iter().map(|e| e.0));
        match page.next {
            Some(next) => cursor = next,
            None => break,
        }
    }
    assert!(pages >= whole.len() / 50);
    assert_eq!(paged.len(), whole.len(), "no flow listed twice");
    assert_eq!(paged.into_iter().collect::<BTreeSet<_>>(), whole);

    // The TCP table, three at a time: two pages.
    let first = p.dump_tcp_flows_page(0, 3).unwrap();
    assert_eq!(first.flows.len(), 3);
    let second = p.dump_tcp_flows_page(first.next.unwrap(), 3).unwrap();
    assert_eq!((second.flows.len(), second.next), (1, None));
    let mut ports: Vec<u16> = first
        .flows
        .iter()
        .chain(&second.flows)
        .map(|(k, e)| {
            assert_eq!(e.tcp_state.tcp_state, opte_api::TcpState::SynSent);
            k.src_port()
        })
        .collect();
    ports.sort_unstable();
    assert_eq!(ports, [30_000, 30_001, 30_002, 30_003]);

    // An empty table is one empty page; a page always holds at least one entry.
    let empty = p.dump_uft_page(Direction::In, 0, 10).unwrap();
    assert_eq!((empty.flows.len(), empty.next), (0, None));
    assert_eq!(
        p.dump_uft_page(Direction::Out, 0, 0).unwrap().flows.len(),
        1
    );
}
