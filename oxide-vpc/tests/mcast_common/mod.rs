//! Helpers shared by the multicast table tests.
#![allow(dead_code)]

use opte_api::{IpAddr, Ipv6Addr, MulticastUnderlay, OpteError, Vni};
use oxide_vpc::api::{
    DEFAULT_MULTICAST_VNI, McastForwardingNextHop, NextHopV6, Replication, SourceFilter,
};
use oxide_vpc::mcast::{Fanout, McastForwarding, McastSubscriptions};

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn ul(s: &str) -> MulticastUnderlay {
    s.parse().unwrap()
}

pub fn include(srcs: &[&str]) -> SourceFilter {
    SourceFilter::Include(srcs.iter().map(|s| ip(s)).collect())
}

pub fn exclude(srcs: &[&str]) -> SourceFilter {
    SourceFilter::Exclude(srcs.iter().map(|s| ip(s)).collect())
}

pub fn hop_on(
    addr: &str,
    vni: u32,
    replication: Replication,
    f: SourceFilter,
) -> McastForwardingNextHop {
    McastForwardingNextHop {
        next_hop: NextHopV6 {
            addr: addr.parse().unwrap(),
            vni: Vni::new(vni).unwrap(),
        },
        replication,
        source_filter: f,
    }
}

pub fn hop(addr: &str, replication: Replication) -> McastForwardingNextHop {
    hop_on(
        addr,
        DEFAULT_MULTICAST_VNI,
        replication,
        SourceFilter::default(),
    )
}

/// The next hops `src` is forwarded to, with what the query reported.
pub fn fwd_to(
    t: &McastForwarding,
    u: &str,
    src: &str,
) -> Option<(Vec<(Ipv6Addr, Replication)>, Fanout)> {
    let mut v = Vec::new();
    let f = t.for_each_next_hop(ul(u), ip(src), |h, r| v.push((h.addr, r)))?;
    Some((v, f))
}

/// The local ports that receive a packet from `src`, sent by `sender`.
pub fn receivers(t: &McastSubscriptions, u: &str, src: &str, sender: Option<&str>) -> Vec<String> {
    let mut v = Vec::new();
    let f = t.for_each_receiver(ul(u), ip(src), sender, |p| v.push(p.to_string()));
    assert_eq!(f.delivered, v.len());
    v
}

pub fn is_bad_state(r: Result<impl std::fmt::Debug, OpteError>, needle: &str) {
    match r {
        Err(OpteError::BadState(m)) => assert!(m.contains(needle), "{m:?} lacks {needle:?}"),
        other => panic!("expected BadState containing {needle:?}, got {other:?}"),
    }
}

// ---- source filters and their aggregate ----
