//! The host's multicast tables (SPEC §3 commands 100–109, §7.3, §7.7, and the
//! `multicast_validation` / `multicast_source_filter` / `multicast_multi_sub` cases of §11.5
//! that do not need a wire): M2P, forwarding, subscriptions, and source-filter aggregation.

use opte_api::{IpAddr, Ipv6Addr, MulticastUnderlay, OpteError, Vni};
use oxide_vpc::api::{
    ClearMcastForwardingReq, DEFAULT_MULTICAST_VNI, DumpMcast2PhysResp, DumpMcastForwardingResp,
    DumpMcastSubscriptionsResp, McastForwardingEntry, McastForwardingNextHop, McastSubscriberEntry,
    McastSubscriptionEntry, NextHopV6, Replication, SetMcastForwardingReq, SourceFilter,
};
use oxide_vpc::mcast::{
    Fanout, Mcast2Phys, McastForwarding, McastLimits, McastSubscriptions, aggregate_filter,
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn ul(s: &str) -> MulticastUnderlay {
    s.parse().unwrap()
}

fn include(srcs: &[&str]) -> SourceFilter {
    SourceFilter::Include(srcs.iter().map(|s| ip(s)).collect())
}

fn exclude(srcs: &[&str]) -> SourceFilter {
    SourceFilter::Exclude(srcs.iter().map(|s| ip(s)).collect())
}

fn hop_on(
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

fn hop(addr: &str, replication: Replication) -> McastForwardingNextHop {
    hop_on(
        addr,
        DEFAULT_MULTICAST_VNI,
        replication,
        SourceFilter::default(),
    )
}

/// The next hops `src` is forwarded to, with what the query reported.
fn fwd_to(
    t: &McastForwarding,
    u: &str,
    src: &str,
) -> Option<(Vec<(Ipv6Addr, Replication)>, Fanout)> {
    let mut v = Vec::new();
    let f = t.for_each_next_hop(ul(u), ip(src), |h, r| v.push((h.addr, r)))?;
    Some((v, f))
}

/// The local ports that receive a packet from `src`, sent by `sender`.
fn receivers(t: &McastSubscriptions, u: &str, src: &str, sender: Option<&str>) -> Vec<String> {
    let mut v = Vec::new();
    let f = t.for_each_receiver(ul(u), ip(src), sender, |p| v.push(p.to_string()));
    assert_eq!(f.delivered, v.len());
    v
}

fn is_bad_state(r: Result<impl std::fmt::Debug, OpteError>, needle: &str) {
    match r {
        Err(OpteError::BadState(m)) => assert!(m.contains(needle), "{m:?} lacks {needle:?}"),
        other => panic!("expected BadState containing {needle:?}, got {other:?}"),
    }
}

// ---- source filters and their aggregate ----

#[test]
fn source_filter_allows_by_mode() {
    let any = SourceFilter::default();
    assert!(any.accepts_any() && any.allows(ip("10.0.0.1")) && any.allows(ip("fd00::1")));
    let inc = include(&["10.0.0.1"]);
    assert!(inc.allows(ip("10.0.0.1")) && !inc.allows(ip("10.0.0.2")) && !inc.accepts_any());
    let exc = exclude(&["10.0.0.1"]);
    assert!(!exc.allows(ip("10.0.0.1")) && exc.allows(ip("10.0.0.2")) && !exc.accepts_any());
    let none = include(&[]);
    assert!(!none.allows(ip("10.0.0.1")) && !none.accepts_any());
}

#[test]
fn aggregate_of_filters_allows_what_any_member_allows() {
    assert_eq!(aggregate_filter([]), include(&[]), "no listener, no source");
    assert_eq!(
        aggregate_filter(&[include(&["10.0.0.1"]), include(&["10.0.0.2"])]),
        include(&["10.0.0.1", "10.0.0.2"])
    );
    assert_eq!(
        aggregate_filter(&[include(&["10.0.0.1"]), exclude(&["10.0.0.1", "10.0.0.2"])]),
        exclude(&["10.0.0.2"])
    );
    assert_eq!(
        aggregate_filter(&[exclude(&["10.0.0.1", "10.0.0.3"]), include(&["10.0.0.1"])]),
        exclude(&["10.0.0.3"])
    );
    assert_eq!(
        aggregate_filter(&[
            exclude(&["10.0.0.1", "10.0.0.2"]),
            exclude(&["10.0.0.2", "10.0.0.3"])
        ]),
        exclude(&["10.0.0.2"])
    );
    assert!(aggregate_filter(&[include(&["10.0.0.1"]), SourceFilter::default()]).accepts_any());

    // Exhaustively over small filters: the aggregate allows a source exactly when some
    // member does.
    let pool = ["10.0.0.1", "10.0.0.2", "10.0.0.3"];
    let subsets: Vec<Vec<&str>> = (0..8u8)
        .map(|m| {
            pool.iter()
                .enumerate()
                .filter(|(i, _)| m & (1u8 << *i) != 0)
                .map(|(_, s)| *s)
                .collect()
        })
        .collect();
    let filters: Vec<SourceFilter> = subsets
        .iter()
        .flat_map(|s| [include(s), exclude(s)])
        .collect();
    for a in &filters {
        for b in &filters {
            for c in &filters {
                let agg = aggregate_filter([a, b, c]);
                for src in pool.iter().chain(&["10.0.0.9"]) {
                    let want = [a, b, c].iter().any(|f| f.allows(ip(src)));
                    assert_eq!(agg.allows(ip(src)), want, "{a:?} {b:?} {c:?} on {src}");
                }
            }
        }
    }
}

// ---- underlay addresses ----

#[test]
fn underlay_address_outside_ff04_is_refused() {
    for bad in ["ff02::1", "ff05::1", "ff0e::1", "ff01::1", "fd00::1", "::"] {
        let a: Ipv6Addr = bad.parse().unwrap();
        assert!(MulticastUnderlay::new(a).is_err(), "{bad}");
        assert!(bad.parse::<MulticastUnderlay>().is_err(), "{bad}");
        // On the wire an underlay is a plain IPv6 address; decoding refuses it.
        let bytes = postcard::to_allocvec(&a).unwrap();
        assert!(
            postcard::from_bytes::<ClearMcastForwardingReq>(&bytes).is_err(),
            "{bad}"
        );
    }
    let good = ClearMcastForwardingReq {
        underlay: ul("ff04::1:2"),
    };
    let bytes = postcard::to_allocvec(&good).unwrap();
    assert_eq!(
        postcard::from_bytes::<ClearMcastForwardingReq>(&bytes).unwrap(),
        good
    );
    let req = SetMcastForwardingReq {
        underlay: ul("ff04::1:2"),
        next_hops: vec![hop_on(
            "fd00::1",
            77,
            Replication::Both,
            include(&["10.0.0.1"]),
        )],
    };
    let bytes = postcard::to_allocvec(&req).unwrap();
    assert_eq!(
        postcard::from_bytes::<SetMcastForwardingReq>(&bytes).unwrap(),
        req
    );
}

// ---- M2P ----

#[test]
fn m2p_clear_must_name_the_underlay() {
    let m = Mcast2Phys::new();
    let g = ip("ff04::1:3");
    let (u1, u2) = (ul("ff04::99"), ul("ff04::98"));
    assert!(m.set(ip("10.0.0.1"), u1).is_err());
    m.set(g, u1).unwrap();
    assert!(m.clear(g, u2).is_err());
    assert_eq!(m.get(g), Some(u1));
    m.clear(g, u1).unwrap();
    assert_eq!(m.dump(), DumpMcast2PhysResp::default());
}

#[test]
fn m2p_is_bounded_but_remapping_a_group_is_not_a_new_entry() {
    let m = Mcast2Phys::with_limits(McastLimits {
        mappings: 2,
        ..McastLimits::default()
    });
    m.set(ip("224.1.1.1"), ul("ff04::1")).unwrap();
    m.set(ip("ff0e::1"), ul("ff04::2")).unwrap();
    assert_eq!(
        m.set(ip("224.1.1.2"), ul("ff04::3")),
        Err(OpteError::MaxCapacity(2))
    );
    m.set(ip("224.1.1.1"), ul("ff04::3")).unwrap();
    assert_eq!(
        m.dump(),
        DumpMcast2PhysResp {
            ip4: vec![("224.1.1.1".parse().unwrap(), ul("ff04::3"))],
            ip6: vec![("ff0e::1".parse().unwrap(), ul("ff04::2"))],
        }
    );
}

// ---- forwarding ----

#[test]
fn fwd_dump_lists_groups_and_next_hops_in_order() {
    let t = McastForwarding::new();
    t.set(
        ul("ff04::2"),
        &[
            hop("fd00::b", Replication::Underlay),
            hop("fd00::a", Replication::External),
        ],
    )
    .unwrap();
    t.set(
        ul("ff04::1"),
        &[hop_on(
            "fd00::c",
            77,
            Replication::Both,
            exclude(&["10.0.0.9"]),
        )],
    )
    .unwrap();
    assert_eq!(
        t.dump(),
        DumpMcastForwardingResp {
            entries: vec![
                McastForwardingEntry {
                    underlay: ul("ff04::1"),
                    next_hops: vec![hop_on(
                        "fd00::c",
                        77,
                        Replication::Both,
                        exclude(&["10.0.0.9"])
                    )],
                },
                McastForwardingEntry {
                    underlay: ul("ff04::2"),
                    next_hops: vec![
                        hop("fd00::a", Replication::External),
                        hop("fd00::b", Replication::Underlay),
                    ],
                },
            ],
        }
    );
    assert_eq!(t.get(ul("ff04::3")), None);
}

#[test]
fn fwd_set_merges_next_hops_and_updates_named_ones() {
    let t = McastForwarding::new();
    let u = ul("ff04::1:2");
    t.set(
        u,
        &[
            hop("fd00::1", Replication::External),
            hop("fd00::2", Replication::External),
        ],
    )
    .unwrap();
    t.set(
        u,
        &[
            hop_on("fd00::2", 77, Replication::Both, include(&["10.0.0.5"])),
            hop("fd00::3", Replication::Underlay),
        ],
    )
    .unwrap();
    assert_eq!(
        t.get(u).unwrap(),
        vec![
            hop("fd00::1", Replication::External),
            hop_on("fd00::2", 77, Replication::Both, include(&["10.0.0.5"])),
            hop("fd00::3", Replication::Underlay),
        ]
    );
    // Setting the same next hop again is idempotent.
    t.set(u, &[hop("fd00::1", Replication::External)]).unwrap();
    assert_eq!(t.get(u).unwrap().len(), 3);
}

#[test]
fn fwd_set_refuses_bad_next_hops_and_changes_nothing() {
    let t = McastForwarding::new();
    let u = ul("ff04::7");
    t.set(u, &[hop("fd00::1", Replication::External)]).unwrap();
    let before = t.dump();
    let good = hop("fd00::2", Replication::Underlay);
    let cases: Vec<(McastForwardingNextHop, &str)> = vec![
        (
            hop_on(
                "fd00::3",
                1_287_581,
                Replication::External,
                SourceFilter::default(),
            ),
            "VNI 1287581",
        ),
        (hop("ff04::5", Replication::External), "not a unicast"),
        (hop("::", Replication::External), "not a unicast"),
        (hop("::1", Replication::External), "not a unicast"),
        (hop("fd00::3", Replication::Reserved), "reserved"),
        (
            hop_on("fd00::3", 77, Replication::Both, include(&["224.0.0.1"])),
            "multicast address",
        ),
        (
            hop_on("fd00::3", 77, Replication::Both, exclude(&["127.0.0.1"])),
            "loopback",
        ),
        (
            hop_on("fd00::3", 77, Replication::Both, include(&["fe80::1"])),
            "link-local",
        ),
    ];
    for (bad, why) in cases {
        // The good next hop comes first: a batch is all or nothing.
        is_bad_state(t.set(u, &[good.clone(), bad]), why);
        assert_eq!(t.dump(), before);
    }
    is_bad_state(t.set(u, &[]), "no next hops");
    is_bad_state(t.set(u, &[good.clone(), good.clone()]), "named twice");
    assert_eq!(t.dump(), before);
}

#[test]
fn fwd_limits_refuse_new_groups_and_next_hops_but_not_updates() {
    let t = McastForwarding::with_limits(McastLimits {
        groups: 2,
        next_hops_per_group: 2,
        next_hops: 3,
        filter_sources: 2,
        ..McastLimits::default()
    });
    t.set(ul("ff04::1"), &[hop("fd00::1", Replication::External)])
        .unwrap();
    t.set(ul("ff04::2"), &[hop("fd00::1", Replication::External)])
        .unwrap();
    assert_eq!(
        t.set(ul("ff04::3"), &[hop("fd00::1", Replication::External)]),
        Err(OpteError::MaxCapacity(2)),
        "group limit"
    );
    // Per group: one existing plus two new is three.
    assert_eq!(
        t.set(
            ul("ff04::1"),
            &[
                hop("fd00::2", Replication::External),
                hop("fd00::3", Replication::External)
            ]
        ),
        Err(OpteError::MaxCapacity(2))
    );
    // Updating the existing one alongside one new fits.
    t.set(
        ul("ff04::1"),
        &[
            hop("fd00::1", Replication::Both),
            hop("fd00::2", Replication::External),
        ],
    )
    .unwrap();
    // Total: three next hops are stored now.
    assert_eq!(
        t.set(ul("ff04::2"), &[hop("fd00::2", Replication::External)]),
        Err(OpteError::MaxCapacity(3))
    );
    assert_eq!(
        t.set(
            ul("ff04::2"),
            &[hop_on(
                "fd00::1",
                77,
                Replication::External,
                include(&["10.0.0.1", "10.0.0.2", "10.0.0.3"])
            )]
        ),
        Err(OpteError::MaxCapacity(2)),
        "filter source limit"
    );
    // Clearing a group gives its next hops back.
    assert!(t.clear(ul("ff04::2")));
    t.set(ul("ff04::3"), &[hop("fd00::4", Replication::External)])
        .unwrap();
    assert_eq!(t.dump().entries.len(), 2);
}

#[test]
fn fwd_clear_removes_the_entry_and_clearing_nothing_is_a_noop() {
    let t = McastForwarding::new();
    let u = ul("ff04::1");
    assert!(!t.clear(u));
    t.set(
        u,
        &[
            hop("fd00::1", Replication::External),
            hop("fd00::2", Replication::Both),
        ],
    )
    .unwrap();
    assert!(fwd_to(&t, "ff04::1", "10.0.0.1").is_some());
    assert!(t.clear(u));
    assert_eq!(t.dump(), DumpMcastForwardingResp { entries: vec![] });
    assert_eq!(
        fwd_to(&t, "ff04::1", "10.0.0.1"),
        None,
        "clearing stops egress"
    );
    t.set(u, &[hop("fd00::1", Replication::External)]).unwrap();
    t.clear_all();
    assert!(t.dump().entries.is_empty());
}

#[test]
fn fwd_next_hops_for_a_source_respect_each_next_hops_filter() {
    let t = McastForwarding::new();
    t.set(
        ul("ff04::1"),
        &[
            hop("fd00::1", Replication::External),
            hop_on("fd00::2", 77, Replication::Underlay, include(&["10.0.0.5"])),
            hop_on("fd00::3", 77, Replication::Both, exclude(&["10.0.0.5"])),
            hop_on("fd00::4", 77, Replication::Both, include(&[])),
        ],
    )
    .unwrap();
    let a = |s: &str| s.parse::<Ipv6Addr>().unwrap();
    assert_eq!(
        fwd_to(&t, "ff04::1", "10.0.0.5").unwrap(),
        (
            vec![
                (a("fd00::1"), Replication::External),
                (a("fd00::2"), Replication::Underlay)
            ],
            Fanout {
                delivered: 2,
                filtered: 2
            }
        )
    );
    assert_eq!(
        fwd_to(&t, "ff04::1", "10.0.0.6").unwrap(),
        (
            vec![
                (a("fd00::1"), Replication::External),
                (a("fd00::3"), Replication::Both)
            ],
            Fanout {
                delivered: 2,
                filtered: 2
            }
        )
    );
    assert_eq!(fwd_to(&t, "ff04::2", "10.0.0.6"), None, "no entry");
}

// ---- subscriptions ----

/// M2P for 224.1.2.3 → ff04::1:3 and ff0e::1:3 → ff04::1:3 (both families, one underlay
/// group) and 224.9.9.9 → ff04::9.
fn m2p() -> Mcast2Phys {
    let m = Mcast2Phys::new();
    m.set(ip("224.1.2.3"), ul("ff04::1:3")).unwrap();
    m.set(ip("ff0e::1:3"), ul("ff04::1:3")).unwrap();
    m.set(ip("224.9.9.9"), ul("ff04::9")).unwrap();
    m
}

#[test]
fn subscribe_needs_a_multicast_group_with_an_m2p_mapping() {
    let (m, s) = (m2p(), McastSubscriptions::new());
    is_bad_state(
        s.subscribe(&m, "vnic0", ip("224.5.5.5"), SourceFilter::default()),
        "no M2P mapping",
    );
    is_bad_state(
        s.subscribe(&m, "vnic0", ip("ff0e::5"), SourceFilter::default()),
        "no M2P mapping",
    );
    is_bad_state(
        s.subscribe(&m, "vnic0", ip("10.0.0.1"), SourceFilter::default()),
        "not a multicast group",
    );
    is_bad_state(
        s.subscribe(&m, "vnic0", ip("fd00::1"), SourceFilter::default()),
        "not a multicast group",
    );
    assert!(s.is_empty());
    assert_eq!(
        s.subscribe(&m, "vnic0", ip("224.1.2.3"), SourceFilter::default()),
        Ok(ul("ff04::1:3"))
    );
}

#[test]
fn clearing_m2p_keeps_existing_subscriptions_until_the_port_goes() {
    let (m, s) = (m2p(), McastSubscriptions::new());
    let g = ip("224.9.9.9");
    s.subscribe(&m, "vnic0", g, SourceFilter::default())
        .unwrap();
    m.clear(g, ul("ff04::9")).unwrap();
    // Filed under the underlay group, the subscription still receives...
    assert_eq!(receivers(&s, "ff04::9", "10.0.0.1", None), ["vnic0"]);
    // ...but the group can no longer be named: new subscriptions are refused and an
    // unsubscribe finds nothing (as in the reference).
    is_bad_state(
        s.subscribe(&m, "vnic1", g, SourceFilter::default()),
        "no M2P mapping",
    );
    assert_eq!(s.unsubscribe(&m, "vnic0", g), Ok(false));
    assert_eq!(s.unsubscribe_all(&m, g), Ok(0));
    assert_eq!(s.unsubscribe_port("vnic0"), 1);
    assert!(s.is_empty());
}

#[test]
fn an_admin_local_ipv6_group_without_m2p_is_its_own_underlay() {
    let (m, s) = (m2p(), McastSubscriptions::new());
    assert_eq!(
        s.subscribe(&m, "vnic0", ip("ff04::42"), SourceFilter::default()),
        Ok(ul("ff04::42"))
    );
    assert_eq!(receivers(&s, "ff04::42", "fd00::5", None), ["vnic0"]);
    assert_eq!(s.unsubscribe(&m, "vnic0", ip("ff04::42")), Ok(true));
    assert!(s.is_empty());
}

#[test]
fn subscribe_refuses_bad_filter_sources() {
    let (m, s) = (m2p(), McastSubscriptions::new());
    let g4 = ip("224.1.2.3");
    for (f, why) in [
        (include(&["255.255.255.255"]), "broadcast"),
        (include(&["127.0.0.1"]), "loopback"),
        (exclude(&["169.254.1.1"]), "link-local"),
        (include(&["0.0.0.0"]), "unspecified"),
        (include(&["224.0.0.5"]), "multicast"),
        (include(&["10.0.0.1", "fd00::1"]), "not of the family"),
    ] {
        is_bad_state(s.subscribe(&m, "vnic0", g4, f), why);
    }
    for (f, why) in [
        (include(&["::1"]), "loopback"),
        (include(&["fe80::1"]), "link-local"),
        (include(&["::"]), "unspecified"),
        (exclude(&["ff02::1"]), "multicast"),
        (include(&["10.0.0.1"]), "not of the family"),
    ] {
        is_bad_state(s.subscribe(&m, "vnic0", ip("ff0e::1:3"), f), why);
    }
    assert!(s.is_empty());
    let too_many = SourceFilter::Include((1..=65).map(|i| ip(&format!("10.0.0.{i}"))).collect());
    assert_eq!(
        s.subscribe(&m, "vnic0", g4, too_many),
        Err(OpteError::MaxCapacity(64))
    );
    assert!(s.is_empty());
}

#[test]
fn resubscribing_is_idempotent_and_replaces_the_filter() {
    let (m, s) = (
        m2p(),
        McastSubscriptions::with_limits(McastLimits {
            subscriptions: 1,
            ..McastLimits::default()
        }),
    );
    let g = ip("224.1.2.3");
    s.subscribe(&m, "vnic0", g, SourceFilter::default())
        .unwrap();
    s.subscribe(&m, "vnic0", g, SourceFilter::default())
        .unwrap();
    assert_eq!(s.dump().entries.len(), 1);
    assert_eq!(s.dump().entries[0].subscribers.len(), 1);
    // Replacing the filter is not a new subscription, even at the limit.
    s.subscribe(&m, "vnic0", g, include(&["10.0.0.5"])).unwrap();
    assert_eq!(receivers(&s, "ff04::1:3", "10.0.0.5", None), ["vnic0"]);
    assert!(receivers(&s, "ff04::1:3", "10.0.0.6", None).is_empty());
    s.subscribe(&m, "vnic0", g, exclude(&["10.0.0.5"])).unwrap();
    assert!(receivers(&s, "ff04::1:3", "10.0.0.5", None).is_empty());
    assert_eq!(receivers(&s, "ff04::1:3", "10.0.0.6", None), ["vnic0"]);
    assert_eq!(
        s.groups_of("vnic0"),
        vec![(ul("ff04::1:3"), exclude(&["10.0.0.5"]))]
    );
}

#[test]
fn unsubscribing_a_non_member_or_an_unmapped_group_is_a_noop() {
    let (m, s) = (m2p(), McastSubscriptions::new());
    assert_eq!(
        s.unsubscribe(&m, "vnic0", ip("224.1.2.3")),
        Ok(false),
        "never subscribed"
    );
    assert_eq!(
        s.unsubscribe(&m, "vnic0", ip("224.5.5.5")),
        Ok(false),
        "no M2P"
    );
    is_bad_state(
        s.unsubscribe(&m, "vnic0", ip("10.0.0.1")),
        "not a multicast group",
    );
    s.subscribe(&m, "vnic0", ip("224.1.2.3"), SourceFilter::default())
        .unwrap();
    assert_eq!(
        s.unsubscribe(&m, "vnic1", ip("224.1.2.3")),
        Ok(false),
        "another port"
    );
    assert_eq!(
        s.unsubscribe(&m, "vnic0", ip("224.9.9.9")),
        Ok(false),
        "another group"
    );
    assert_eq!(receivers(&s, "ff04::1:3", "10.0.0.1", None), ["vnic0"]);
    assert_eq!(s.unsubscribe(&m, "vnic0", ip("224.1.2.3")), Ok(true));
    assert_eq!(
        s.unsubscribe(&m, "vnic0", ip("224.1.2.3")),
        Ok(false),
        "twice"
    );
    assert!(s.is_empty());
    assert_eq!(s.dump(), DumpMcastSubscriptionsResp { entries: vec![] });
}

#[test]
fn partial_unsubscribe_leaves_the_other_members() {
    let (m, s) = (m2p(), McastSubscriptions::new());
    let g = ip("224.1.2.3");
    for p in ["vnic0", "vnic1", "vnic2"] {
        s.subscribe(&m, p, g, SourceFilter::default()).unwrap();
    }
    assert_eq!(s.unsubscribe(&m, "vnic1", g), Ok(true));
    assert_eq!(
        receivers(&s, "ff04::1:3", "10.0.0.1", None),
        ["vnic0", "vnic2"]
    );
}

#[test]
fn unsubscribe_all_empties_the_group_and_is_a_noop_without_m2p() {
    let (m, s) = (m2p(), McastSubscriptions::new());
    for p in ["vnic0", "vnic1"] {
        s.subscribe(&m, p, ip("224.1.2.3"), SourceFilter::default())
            .unwrap();
    }
    s.subscribe(&m, "vnic0", ip("224.9.9.9"), SourceFilter::default())
        .unwrap();
    assert_eq!(s.unsubscribe_all(&m, ip("224.5.5.5")), Ok(0));
    is_bad_state(
        s.unsubscribe_all(&m, ip("10.1.1.1")),
        "not a multicast group",
    );
    // Through the IPv6 group that maps to the same underlay group.
    assert_eq!(s.unsubscribe_all(&m, ip("ff0e::1:3")), Ok(2));
    assert!(receivers(&s, "ff04::1:3", "10.0.0.1", None).is_empty());
    assert_eq!(
        s.groups_of("vnic0"),
        vec![(ul("ff04::9"), SourceFilter::default())]
    );
    assert_eq!(s.unsubscribe_all(&m, ip("224.1.2.3")), Ok(0));
}

#[test]
fn deleting_a_port_drops_all_its_subscriptions() {
    let (m, s) = (m2p(), McastSubscriptions::new());
    s.subscribe(&m, "vnic0", ip("224.1.2.3"), SourceFilter::default())
        .unwrap();
    s.subscribe(&m, "vnic0", ip("224.9.9.9"), SourceFilter::default())
        .unwrap();
    s.subscribe(&m, "vnic1", ip("224.9.9.9"), SourceFilter::default())
        .unwrap();
    assert_eq!(s.unsubscribe_port("vnic0"), 2);
    assert_eq!(s.unsubscribe_port("vnic0"), 0);
    assert_eq!(s.groups_of("vnic0"), vec![]);
    assert_eq!(receivers(&s, "ff04::9", "10.0.0.1", None), ["vnic1"]);
    assert!(receivers(&s, "ff04::1:3", "10.0.0.1", None).is_empty());
}

#[test]
fn receivers_respect_filters_and_never_include_the_sender() {
    let (m, s) = (m2p(), McastSubscriptions::new());
    let g = ip("224.1.2.3");
    s.subscribe(&m, "any", g, SourceFilter::default()).unwrap();
    s.subscribe(&m, "only5", g, include(&["10.0.0.5"])).unwrap();
    s.subscribe(&m, "not5", g, exclude(&["10.0.0.5"])).unwrap();
    s.subscribe(&m, "nobody", g, include(&[])).unwrap();
    assert_eq!(
        receivers(&s, "ff04::1:3", "10.0.0.5", None),
        ["any", "only5"]
    );
    assert_eq!(
        receivers(&s, "ff04::1:3", "10.0.0.6", None),
        ["any", "not5"]
    );
    // The sender is skipped whatever its filter, and is not counted as filtered.
    let mut got = Vec::new();
    let f = s.for_each_receiver(ul("ff04::1:3"), ip("10.0.0.5"), Some("any"), |p| {
        got.push(p.to_string())
    });
    assert_eq!(
        (got, f),
        (
            vec!["only5".to_string()],
            Fanout {
                delivered: 1,
                filtered: 2
            }
        )
    );
    // Only the sender subscribed: nobody receives.
    let s2 = McastSubscriptions::new();
    s2.subscribe(&m, "tx", g, SourceFilter::default()).unwrap();
    assert!(receivers(&s2, "ff04::1:3", "10.0.0.5", Some("tx")).is_empty());
    assert!(
        receivers(&s2, "ff04::9", "10.0.0.5", None).is_empty(),
        "unknown group"
    );
    // The aggregate says what the group as a whole accepts.
    assert!(s.aggregate(ul("ff04::1:3")).unwrap().accepts_any());
    s.unsubscribe(&m, "any", g).unwrap();
    assert_eq!(
        s.aggregate(ul("ff04::1:3")),
        Some(exclude(&[])),
        "only5 + not5 is any"
    );
    s.unsubscribe(&m, "not5", g).unwrap();
    assert_eq!(s.aggregate(ul("ff04::1:3")), Some(include(&["10.0.0.5"])));
    assert_eq!(s.aggregate(ul("ff04::9")), None);
}

#[test]
fn subscription_limits_refuse_new_members_only() {
    let m = m2p();
    let s = McastSubscriptions::with_limits(McastLimits {
        groups: 1,
        subscribers_per_group: 2,
        subscriptions: 3,
        ..McastLimits::default()
    });
    s.subscribe(&m, "vnic0", ip("224.1.2.3"), SourceFilter::default())
        .unwrap();
    s.subscribe(&m, "vnic1", ip("224.1.2.3"), SourceFilter::default())
        .unwrap();
    assert_eq!(
        s.subscribe(&m, "vnic2", ip("224.1.2.3"), SourceFilter::default()),
        Err(OpteError::MaxCapacity(2)),
        "per group"
    );
    assert_eq!(
        s.subscribe(&m, "vnic0", ip("224.9.9.9"), SourceFilter::default()),
        Err(OpteError::MaxCapacity(1)),
        "groups"
    );
    s.subscribe(&m, "vnic1", ip("ff0e::1:3"), include(&["fd00::1"]))
        .unwrap();
    assert_eq!(s.dump().entries[0].subscribers.len(), 2);

    let total = McastSubscriptions::with_limits(McastLimits {
        subscriptions: 1,
        ..McastLimits::default()
    });
    total
        .subscribe(&m, "vnic0", ip("224.1.2.3"), SourceFilter::default())
        .unwrap();
    assert_eq!(
        total.subscribe(&m, "vnic0", ip("224.9.9.9"), SourceFilter::default()),
        Err(OpteError::MaxCapacity(1)),
        "total"
    );
    // Freed capacity is usable again.
    total.unsubscribe_port("vnic0");
    total
        .subscribe(&m, "vnic0", ip("224.9.9.9"), SourceFilter::default())
        .unwrap();
}

#[test]
fn subscription_dump_is_exact() {
    let (m, s) = (m2p(), McastSubscriptions::new());
    s.subscribe(&m, "vnic1", ip("224.9.9.9"), include(&["10.0.0.1"]))
        .unwrap();
    s.subscribe(&m, "vnic1", ip("224.1.2.3"), SourceFilter::default())
        .unwrap();
    s.subscribe(&m, "vnic0", ip("ff0e::1:3"), exclude(&["fd00::7"]))
        .unwrap();
    // Groups in address order (ff04::9 before ff04::1:3), ports by name.
    assert_eq!(
        s.dump(),
        DumpMcastSubscriptionsResp {
            entries: vec![
                McastSubscriptionEntry {
                    underlay: ul("ff04::9"),
                    subscribers: vec![McastSubscriberEntry {
                        port: "vnic1".into(),
                        filter: include(&["10.0.0.1"]),
                    }],
                },
                McastSubscriptionEntry {
                    underlay: ul("ff04::1:3"),
                    subscribers: vec![
                        McastSubscriberEntry {
                            port: "vnic0".into(),
                            filter: exclude(&["fd00::7"]),
                        },
                        McastSubscriberEntry {
                            port: "vnic1".into(),
                            filter: SourceFilter::default(),
                        },
                    ],
                },
            ],
        }
    );
}

#[test]
fn the_shared_tables_carry_the_multicast_tables() {
    let t = oxide_vpc::tables::VpcTables::default();
    t.m2p.set(ip("224.1.2.3"), ul("ff04::1:3")).unwrap();
    t.mcast_subs
        .subscribe(&t.m2p, "vnic0", ip("224.1.2.3"), SourceFilter::default())
        .unwrap();
    t.mcast_fwd
        .set(ul("ff04::1:3"), &[hop("fd00::1", Replication::External)])
        .unwrap();
    assert_eq!(
        receivers(&t.mcast_subs, "ff04::1:3", "10.0.0.1", None),
        ["vnic0"]
    );
    assert_eq!(
        fwd_to(&t.mcast_fwd, "ff04::1:3", "10.0.0.1")
            .unwrap()
            .1
            .delivered,
        1
    );
}
