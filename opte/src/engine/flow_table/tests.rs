use super::*;
use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;
use opte_api::{AddrPair, InnerFlowId, Ipv4Addr};

const TCP: u8 = 6;
const UDP: u8 = 17;

fn key(proto: u8, n: u32) -> InnerFlowId {
    let [a, b, c, d] = n.to_be_bytes();
    InnerFlowId::with_ports(
        proto,
        AddrPair::V4 {
            src: Ipv4Addr::from([10, a, b, c]),
            dst: Ipv4Addr::from([192, 168, 0, d]),
        },
        10_000 + u16::from(d),
        80,
    )
}

fn limit(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

fn t(secs: u64) -> Moment {
    Moment::from_secs(secs)
}

/// A policy whose entries carry their own eviction priority as state, with a fixed TTL.
#[derive(Debug)]
struct StatePrio(Ttl);

impl<K> ExpiryPolicy<K, EvictionPriority> for StatePrio {
    fn is_expired(&self, _: &K, _: &EvictionPriority, last_hit: Moment, now: Moment) -> bool {
        self.0.is_expired(last_hit, now)
    }

    fn eviction_priority(
        &self,
        _: &K,
        prio: &EvictionPriority,
        _: Moment,
        _: Moment,
    ) -> EvictionPriority {
        *prio
    }
}

fn prio_table(name: &'static str, n: u32) -> FlowTable<u32, EvictionPriority, StatePrio> {
    FlowTable::new(name, limit(n), StatePrio(FLOW_DEF_TTL), 0x5eed)
}

fn expire_all<K: Copy + Eq + Hash, S, P: ExpiryPolicy<K, S>>(
    table: &mut FlowTable<K, S, P>,
    now: Moment,
) -> Vec<K> {
    let mut gone = Vec::new();
    table.expire_flows(now, |k, _| gone.push(k));
    gone
}

#[test]
fn flow_expired() {
    let mut ft: FlowTable<InnerFlowId, &str> =
        FlowTable::new("uft_out", limit(8), Ttl::default(), 1);
    let k = key(UDP, 1);
    assert_eq!(ft.add(k, "state", t(100)), Ok(None));
    ft.get(&k).unwrap().hit(t(130));

    // Idle 59.999 s since the hit at 130 s: kept.
    let mut removed = Vec::new();
    ft.expire_flows(t(189).plus_millis(999), |k, s| removed.push((k, s)));
    assert!(removed.is_empty());
    assert_eq!(ft.get(&k).unwrap().hits(), 1);

    // Idle 60 s: removed and handed back.
    ft.expire_flows(t(190), |k, s| removed.push((k, s)));
    assert_eq!(removed, vec![(k, "state")]);
    assert_eq!(ft.num_flows(), 0);
    assert_eq!(ft.stats().expired, 1);
}

#[test]
fn flow_clear() {
    let mut ft = prio_table("lft", 4);
    for n in 0..4 {
        ft.add(n, EvictionPriority::Protected, t(0)).unwrap();
    }
    assert!(ft.is_full());
    ft.clear();
    assert_eq!(ft.num_flows(), 0);
    assert!(ft.get(&0).is_none());
    // The whole capacity is usable again, without evicting anything.
    for n in 10..14 {
        assert_eq!(ft.add(n, EvictionPriority::Protected, t(1)), Ok(None));
    }
    assert_eq!(ft.num_flows(), 4);
    assert_eq!(ft.stats().evictions, 0);
}

#[test]
fn children_prevent_timer_expiry() {
    let mut lft = prio_table("fw_out", 8);
    let mut uft = prio_table("uft_out", 8);
    lft.add(1, EvictionPriority::Protected, t(0)).unwrap();
    let parent = Arc::clone(lft.get(&1).unwrap().lifetime());
    uft.add_linked(
        7,
        EvictionPriority::Protected,
        t(0),
        Lifetime::new(t(0)),
        &[parent],
    )
    .unwrap();
    assert_eq!(lft.get(&1).unwrap().lifetime().live_children(), 1);

    // The child keeps being hit; the parent, idle for 100 s, stays while the child lives.
    uft.get(&7).unwrap().hit(t(90));
    assert!(expire_all(&mut uft, t(100)).is_empty());
    assert!(expire_all(&mut lft, t(100)).is_empty());
    assert!(lft.get(&1).is_some());

    // Once the child is removed (for any reason) the parent is free to expire, from the
    // child's last hit: 90 s + 60 s.
    assert!(uft.remove(&7).is_some());
    assert_eq!(lft.get(&1).unwrap().lifetime().live_children(), 0);
    assert!(expire_all(&mut lft, t(149)).is_empty());
    assert_eq!(expire_all(&mut lft, t(150)), vec![1]);
}

#[test]
fn timer_expiry_propagation() {
    let mut lft = prio_table("fw_out", 8);
    let mut uft = prio_table("uft_out", 8);
    let mut tcp = prio_table("tcp_flows", 8);
    lft.add(1, EvictionPriority::Protected, t(0)).unwrap();
    let fw = Arc::clone(lft.get(&1).unwrap().lifetime());
    uft.add_linked(
        2,
        EvictionPriority::Protected,
        t(0),
        Lifetime::new(t(0)),
        &[Arc::clone(&fw)],
    )
    .unwrap();
    let uf = Arc::clone(uft.get(&2).unwrap().lifetime());
    tcp.add_linked(
        3,
        EvictionPriority::Protected,
        t(0),
        Lifetime::new(t(0)),
        &[fw, uf],
    )
    .unwrap();

    // Only the grandchild sees traffic.
    tcp.get(&3).unwrap().hit(t(50));
    assert_eq!(lft.get(&1).unwrap().last_hit(), t(0));

    // Children first, as the port does: at 100 s nothing goes.
    for now in [t(100), t(109)] {
        assert!(expire_all(&mut tcp, now).is_empty());
        assert!(expire_all(&mut uft, now).is_empty());
        assert!(expire_all(&mut lft, now).is_empty());
    }

    // At 110 s the TCP entry expires, pushing its 50 s hit up to both parents, which then
    // expire in the same pass (their own TTL, counted from 50 s, is also up).
    assert_eq!(expire_all(&mut tcp, t(110)), vec![3]);
    assert_eq!(uft.get(&2).unwrap().last_hit(), t(50));
    assert_eq!(lft.get(&1).unwrap().last_hit(), t(50));
    assert_eq!(expire_all(&mut uft, t(110)), vec![2]);
    assert_eq!(expire_all(&mut lft, t(110)), vec![1]);
}

#[test]
fn eviction_basics() {
    // Ttl: TCP flows are evictable (oldest first), others protected.
    let mut ft: FlowTable<InnerFlowId, u32> = FlowTable::new("uft_in", limit(2), Ttl::default(), 2);
    ft.add(key(TCP, 1), 1, t(1)).unwrap();
    ft.add(key(TCP, 2), 2, t(2)).unwrap();
    ft.get(&key(TCP, 1)).unwrap().hit(t(3));

    // Full: the least recently hit TCP flow (2) makes room and is handed back.
    assert_eq!(ft.add(key(TCP, 3), 3, t(4)), Ok(Some((key(TCP, 2), 2))));
    assert!(ft.get(&key(TCP, 2)).is_none());
    assert_eq!(ft.num_flows(), 2);
    assert_eq!(ft.stats().evictions, 1);

    // Replacing an existing key needs no room.
    assert_eq!(ft.add(key(TCP, 3), 33, t(5)), Ok(None));
    assert_eq!(*ft.get(&key(TCP, 3)).unwrap().state(), 33);
    assert_eq!(ft.stats().evictions, 1);

    // A table of protected (non-TCP) flows refuses, counts, and changes nothing.
    let mut udp: FlowTable<InnerFlowId, u32> =
        FlowTable::new("uft_out", limit(2), Ttl::default(), 3);
    udp.add(key(UDP, 1), 1, t(1)).unwrap();
    udp.add(key(UDP, 2), 2, t(1)).unwrap();
    let err = udp.add(key(UDP, 3), 3, t(2)).unwrap_err();
    assert_eq!(
        err,
        TableFull {
            table: "uft_out",
            limit: limit(2)
        }
    );
    assert_eq!(
        err.to_string(),
        "flow table uft_out is full (2 entries) and no entry can be evicted"
    );
    assert_eq!(udp.stats().refused, 1);
    assert_eq!(udp.num_flows(), 2);
    assert!(udp.get(&key(UDP, 3)).is_none());
}

#[test]
fn eviction_selects_highest_prio() {
    use EvictionPriority::{Evictable, Protected};
    let mut ft = prio_table("tcp_flows", 5);
    ft.add(1, Evictable(5), t(1)).unwrap();
    ft.add(2, Evictable(9), t(3)).unwrap();
    ft.add(3, Protected, t(0)).unwrap();
    ft.add(4, Evictable(9), t(2)).unwrap();
    ft.add(5, Evictable(1), t(0)).unwrap();

    assert_eq!(ft.find_evictable(t(10)), Some(4)); // highest priority, older of the two
    assert_eq!(ft.add(6, Protected, t(10)), Ok(Some((4, Evictable(9)))));
    assert_eq!(ft.add(7, Protected, t(10)), Ok(Some((2, Evictable(9)))));
    assert_eq!(ft.add(8, Protected, t(10)), Ok(Some((1, Evictable(5)))));
    assert_eq!(ft.add(9, Protected, t(10)), Ok(Some((5, Evictable(1)))));
    // Only protected entries are left.
    assert_eq!(ft.find_evictable(t(10)), None);
    assert!(ft.add(10, Evictable(1), t(10)).is_err());
    assert_eq!(
        ft.stats(),
        FlowTableStats {
            evictions: 4,
            refused: 1,
            expired: 0
        }
    );
}

#[test]
fn eviction_invalidates_descendents() {
    use EvictionPriority::{Evictable, Protected};
    // An LFT pair sharing one lifetime, a UFT entry child of the pair.
    let mut lft_out = prio_table("fw_out", 1);
    let mut lft_in = prio_table("fw_in", 4);
    let mut uft = prio_table("uft_out", 4);
    let pair = Lifetime::new(t(0));
    lft_out
        .add_linked(1, Evictable(1), t(0), Arc::clone(&pair), &[])
        .unwrap();
    lft_in
        .add_linked(101, Evictable(1), t(0), Arc::clone(&pair), &[])
        .unwrap();
    uft.add_linked(
        1,
        Protected,
        t(0),
        Lifetime::new(t(0)),
        &[Arc::clone(&pair)],
    )
    .unwrap();
    uft.add(2, Evictable(500), t(0)).unwrap();
    assert!(!uft.get(&1).unwrap().is_dead());

    // A new flow evicts the outbound LFT entry: its partner and its child die with it.
    assert_eq!(lft_out.add(9, Protected, t(1)), Ok(Some((1, Evictable(1)))));
    assert!(pair.is_killed());
    assert!(lft_in.get(&101).is_none());
    assert!(uft.get(&1).is_none());
    assert!(uft.get_mut(&1).is_none());
    assert_eq!(uft.iter().map(|(k, _)| *k).collect::<Vec<_>>(), vec![2]);
    // Dead entries still hold their slots until reaped, and are the first victims, ahead
    // of any evictable entry.
    assert_eq!(uft.num_flows(), 2);
    assert_eq!(uft.find_evictable(t(1)), Some(1));
    // The timer reaps them whatever their TTL.
    assert_eq!(expire_all(&mut lft_in, t(2)), vec![101]);
    assert_eq!(expire_all(&mut uft, t(2)), vec![1]);
    assert_eq!(uft.num_flows(), 1);
}

#[test]
fn eviction_priority_inheritance() {
    use crate::engine::tcp::{TcpExpiry, TcpFlowEntry};
    use crate::wire::tcp::flags::{ACK, SYN};
    use opte_api::{Direction, TcpState};

    // Two firewall LFT entries of TCP flows (Ttl: evictable at u16::MAX, oldest first).
    let mut lft: FlowTable<InnerFlowId, ()> = FlowTable::new("fw_out", limit(2), Ttl::default(), 4);
    let mut tcp = FlowTable::new("tcp_flows", limit(8), TcpExpiry, 5);
    let (a, b) = (key(TCP, 1), key(TCP, 2));
    lft.add(a, (), t(0)).unwrap();
    lft.add(b, (), t(1)).unwrap();

    // Flow `a` carries an established connection, tracked as a child of its LFT entry.
    let parent = Arc::clone(lft.get(&a).unwrap().lifetime());
    let mut conn = TcpFlowEntry::new(a, a.mirror());
    conn.process(Direction::Out, SYN, 100, 0, 60).unwrap();
    conn.process(Direction::In, SYN | ACK, 900, 101, 60)
        .unwrap();
    assert_eq!(
        conn.process(Direction::Out, ACK, 101, 901, 54),
        Ok(TcpState::Established)
    );
    tcp.add_linked(a, conn, t(2), Lifetime::new(t(2)), &[parent])
        .unwrap();
    let entry = tcp.get(&a).unwrap();
    let until = TcpExpiry::protected_until(entry.state().tcp_state(), entry.last_hit()).unwrap();
    assert_eq!(until, t(62));
    entry.protect_parents_until(until);

    // `a` is the older entry, but inherits its connection's protection: `b` goes.
    assert_eq!(lft.find_evictable(t(10)), Some(b));
    assert_eq!(lft.add(key(TCP, 3), (), t(10)), Ok(Some((b, ()))));

    // While shielded `a` is never chosen, even when it is the only candidate left.
    lft.evict(&key(TCP, 3)).unwrap();
    assert_eq!(lft.find_evictable(t(61)), None);

    // After 60 s without traffic the connection stops shielding it.
    assert_eq!(lft.find_evictable(t(62)), Some(a));
}

#[test]
fn priority_lerp() {
    assert_eq!(super::priority_lerp(0, 0, 100, 100, 50), Some(50));
    assert_eq!(super::priority_lerp(0, 0, 100, 100, 1), Some(1));
    assert_eq!(super::priority_lerp(100, 10, 200, 20, 130), Some(13));
    // The midpoint of the TCP opening window.
    assert_eq!(
        super::priority_lerp(2500, 2, 5000, 65534, 3750),
        Some(32768)
    );
    // Round half up: 0.5 → 1, 0.25 → 0, 2/3 → 1.
    assert_eq!(super::priority_lerp(0, 0, 4, 1, 2), Some(1));
    assert_eq!(super::priority_lerp(0, 0, 4, 1, 1), Some(0));
    assert_eq!(super::priority_lerp(0, 0, 3, 1, 2), Some(1));
    // Monotonic over a window.
    let mut last = 0;
    for d in 0..=1000 {
        let p = super::priority_lerp(0, 2, 1000, 65534, d).unwrap();
        assert!(p >= last);
        last = p;
    }
    assert_eq!(last, 65534);
}

#[test]
fn priority_lerp_clamps() {
    assert_eq!(super::priority_lerp(100, 10, 200, 20, 0), Some(10));
    assert_eq!(super::priority_lerp(100, 10, 200, 20, 100), Some(10));
    assert_eq!(super::priority_lerp(100, 10, 200, 20, 200), Some(20));
    assert_eq!(super::priority_lerp(100, 10, 200, 20, u64::MAX), Some(20));
    // An empty window is a step.
    assert_eq!(super::priority_lerp(100, 10, 100, 20, 100), Some(10));
    assert_eq!(super::priority_lerp(100, 10, 100, 20, 101), Some(20));
    // Huge times do not overflow.
    assert_eq!(
        super::priority_lerp(0, 0, u64::MAX - 1, 2, u64::MAX / 2),
        Some(1)
    );
}

#[test]
fn priority_lerp_rejects_bad_params() {
    assert_eq!(super::priority_lerp(200, 10, 100, 20, 150), None);
    assert_eq!(super::priority_lerp(100, 20, 200, 10, 150), None);
    assert_eq!(super::priority_lerp(100, 10, 200, 10, 150), Some(10));
}

#[test]
fn shared_lifetime_pair_is_hit_and_expires_together() {
    let mut out = prio_table("nat_out", 4);
    let mut inb = prio_table("nat_in", 4);
    let pair = Lifetime::new(t(0));
    out.add_linked(1, EvictionPriority::Protected, t(0), Arc::clone(&pair), &[])
        .unwrap();
    inb.add_linked(2, EvictionPriority::Protected, t(0), pair, &[])
        .unwrap();

    inb.get(&2).unwrap().hit(t(40));
    assert_eq!(out.get(&1).unwrap().last_hit(), t(40));
    assert_eq!(out.get(&1).unwrap().hits(), 0);
    assert_eq!(inb.get(&2).unwrap().hits(), 1);
    assert!(expire_all(&mut out, t(99)).is_empty());
    assert_eq!(expire_all(&mut out, t(100)), vec![1]);
    assert_eq!(expire_all(&mut inb, t(100)), vec![2]);
}

#[test]
fn duplicate_parents_count_once() {
    let mut lft = prio_table("fw_out", 4);
    let mut uft = prio_table("uft_out", 4);
    lft.add(1, EvictionPriority::Protected, t(0)).unwrap();
    let p = Arc::clone(lft.get(&1).unwrap().lifetime());
    let own = Lifetime::new(t(0));
    uft.add_linked(
        5,
        EvictionPriority::Protected,
        t(0),
        Arc::clone(&own),
        &[Arc::clone(&p), Arc::clone(&p), Arc::clone(&own)],
    )
    .unwrap();
    assert_eq!(uft.get(&5).unwrap().parents().len(), 1);
    assert_eq!(p.live_children(), 1);
    assert_eq!(own.live_children(), 0);
    // Replacing the child drops the old registration before counting the new one.
    uft.add_linked(
        5,
        EvictionPriority::Protected,
        t(1),
        Lifetime::new(t(1)),
        &[Arc::clone(&p)],
    )
    .unwrap();
    assert_eq!(p.live_children(), 1);
    uft.clear();
    assert_eq!(p.live_children(), 0);
}

#[test]
fn mark_dirty_flags_every_entry_until_cleared() {
    let mut ft = prio_table("router_out", 4);
    ft.add(1, EvictionPriority::Protected, t(0)).unwrap();
    ft.add(2, EvictionPriority::Protected, t(0)).unwrap();
    assert!(!ft.get(&1).unwrap().is_dirty());
    ft.mark_dirty();
    assert!(ft.get(&1).unwrap().is_dirty());
    ft.get(&2).unwrap().clear_dirty();
    assert!(ft.get(&1).unwrap().is_dirty());
    assert!(!ft.get(&2).unwrap().is_dirty());
    // A replacement entry starts clean.
    ft.add(1, EvictionPriority::Protected, t(1)).unwrap();
    assert!(!ft.get(&1).unwrap().is_dirty());
}

#[test]
fn million_entry_table_holds_a_million_flows() {
    let mut ft: FlowTable<InnerFlowId, u32> =
        FlowTable::new("uft_out", limit(1_000_000), Ttl::default(), 6);
    for n in 0..1_000_000 {
        assert_eq!(ft.add(key(UDP, n), n, t(0)), Ok(None));
    }
    assert_eq!(ft.num_flows(), 1_000_000);
    assert!(ft.is_full());
    assert_eq!(
        ft.get(&key(UDP, 999_999)).map(|e| *e.state()),
        Some(999_999)
    );
    // Full of protected flows: one more is refused, after a bounded scan.
    assert!(ft.add(key(UDP, 1_000_000), 0, t(1)).is_err());
    assert_eq!(ft.stats().refused, 1);
}

#[test]
fn flood_of_new_flows_keeps_table_at_limit_and_spares_protected() {
    const LIMIT: u32 = 65_536;
    const PROTECTED: u32 = 1_000;
    const FLOOD: u32 = 1_000_000;
    let mut ft: FlowTable<InnerFlowId, ()> =
        FlowTable::new("uft_out", limit(LIMIT), Ttl::default(), 7);
    // UDP flows are protected by the default policy; TCP flows are evictable.
    for n in 0..PROTECTED {
        ft.add(key(UDP, n), (), t(0)).unwrap();
    }
    let mut now = t(1);
    for n in 0..FLOOD {
        now = now.plus_millis(1);
        let _ = ft.add(key(TCP, n), (), now);
        assert!(ft.num_flows() <= LIMIT);
    }
    let stats = ft.stats();
    assert_eq!(ft.num_flows(), LIMIT);
    assert!((0..PROTECTED).all(|n| ft.get(&key(UDP, n)).is_some()));
    // Every flood flow was inserted or refused; every insert beyond the room evicted one.
    let room = u64::from(LIMIT - PROTECTED);
    // The clock samples the table in hash order, so the protected flows are spread out
    // and every scan finds an evictable one: no insert was refused.
    assert_eq!(
        stats,
        FlowTableStats {
            evictions: u64::from(FLOOD) - room,
            refused: 0,
            expired: 0
        }
    );
    // The newest flood flow is in; memory stayed bounded despite a million removals.
    assert!(ft.get(&key(TCP, FLOOD - 1)).is_some());
    assert!(
        ft.table.num_buckets() <= 5 * LIMIT as usize,
        "{}",
        ft.table.num_buckets()
    );
}

/// Counts policy consultations, i.e. entries an eviction scan examined.
struct CountingPolicy(core::cell::Cell<usize>);

impl ExpiryPolicy<u32, EvictionPriority> for CountingPolicy {
    fn is_expired(&self, _: &u32, _: &EvictionPriority, _: Moment, _: Moment) -> bool {
        false
    }

    fn eviction_priority(
        &self,
        _: &u32,
        prio: &EvictionPriority,
        _: Moment,
        _: Moment,
    ) -> EvictionPriority {
        self.0.set(self.0.get() + 1);
        *prio
    }
}

#[test]
fn eviction_scan_examines_a_bounded_number_of_entries() {
    const N: u32 = 20_000;
    let policy = CountingPolicy(core::cell::Cell::new(0));
    let mut ft = FlowTable::new("uft_out", limit(N), policy, 8);
    for n in 0..N {
        ft.add(n, EvictionPriority::Protected, t(0)).unwrap();
    }
    // All protected: the refusal costs at most the extended scan, not a table walk.
    assert!(ft.add(N, EvictionPriority::Protected, t(1)).is_err());
    let refused_cost = ft.policy().0.replace(0);
    assert!(
        (1..=EVICTION_SCAN_MAX).contains(&refused_cost),
        "{refused_cost}"
    );

    // All evictable: one eviction examines the standard sample.
    ft.clear();
    for n in 0..N {
        ft.add(n, EvictionPriority::Evictable(1), t(0)).unwrap();
    }
    ft.policy().0.set(0);
    assert!(
        ft.add(N, EvictionPriority::Protected, t(1))
            .unwrap()
            .is_some()
    );
    assert_eq!(ft.policy().0.get(), EVICTION_SCAN);
}

#[test]
fn bounded_sweeps_expire_every_stale_entry_a_budget_at_a_time() {
    let mut ft: FlowTable<InnerFlowId, ()> = FlowTable::new("ft", limit(4096), FLOW_DEF_TTL, 9);
    for n in 0..2000 {
        // Odd flows are hit again later and stay.
        ft.add(key(UDP, n), (), t(0)).unwrap();
    }
    for n in (1..2000).step_by(2) {
        ft.get(&key(UDP, n)).unwrap().hit(t(50));
    }
    let now = t(FLOW_DEF_EXPIRE_SECS + 1);
    let (budget, bucket_cap) = (64, 64 * SWEEP_BUCKETS_PER_ENTRY);
    let mut gone = Vec::new();
    let (mut from, mut calls, mut visited) = (0, 0, 0);
    loop {
        let s = ft.expire_some(now, from, budget, bucket_cap, |k, ()| gone.push(k));
        calls += 1;
        assert!(s.visited <= budget, "call {calls} examined {}", s.visited);
        assert!(s.buckets <= bucket_cap);
        assert!(s.removed <= s.visited);
        visited += s.visited;
        match s.next {
            Some(next) => {
                assert!(next > from, "a sweep always moves forward");
                from = next;
            }
            None => break,
        }
    }
    // One round examined every entry once and took several calls to do it.
    assert_eq!(visited, 2000);
    assert!(calls >= 2000 / budget, "{calls} calls");
    assert_eq!(gone.len(), 1000);
    assert!(
        gone.iter().all(|k| k.src_port() % 2 == 0),
        "only even flows went"
    );
    assert_eq!(ft.num_flows(), 1000);
    assert_eq!(ft.stats().expired, 1000);
    for n in 0..2000 {
        assert_eq!(ft.get(&key(UDP, n)).is_some(), n % 2 == 1, "flow {n}");
    }
    // A start past the end is the end.
    let s = ft.expire_some(now, ft.num_buckets(), budget, bucket_cap, |_, ()| {});
    assert_eq!((s.visited, s.next), (0, None));
}

#[test]
fn a_sweep_of_a_sparse_table_walks_a_bounded_number_of_buckets() {
    let mut ft = prio_table("ft", 8192);
    for n in 0..8000 {
        ft.add(n, EvictionPriority::Protected, t(0)).unwrap();
    }
    for n in 4..8000 {
        ft.remove(&n);
    }
    // Four entries among thousands of buckets: each call stops after its bucket allowance.
    let (mut from, mut seen) = (0, 0);
    loop {
        let s = ft.expire_some(t(1), from, 2, 2 * SWEEP_BUCKETS_PER_ENTRY, |_, _| {});
        assert!(s.buckets <= 2 * SWEEP_BUCKETS_PER_ENTRY);
        seen += s.visited;
        match s.next {
            Some(n) => from = n,
            None => break,
        }
    }
    assert_eq!(seen, 4);
    assert_eq!(ft.num_flows(), 4);
}

#[test]
fn paging_from_bucket_indices_lists_every_live_entry_once() {
    let mut ft: FlowTable<InnerFlowId, u32> = FlowTable::new("ft", limit(4096), FLOW_DEF_TTL, 5);
    for n in 0..3000 {
        ft.add(key(UDP, n), n, t(0)).unwrap();
    }
    let mut seen = Vec::new();
    let mut from = 0;
    loop {
        let page: Vec<_> = ft.iter_from(from).take(100).collect();
        for (_, k, e) in &page {
            assert_eq!(**k, key(UDP, *e.state()));
            seen.push(*e.state());
        }
        match page.last() {
            Some((i, _, _)) if page.len() == 100 => from = i + 1,
            _ => break,
        }
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..3000).collect::<Vec<_>>());
}
