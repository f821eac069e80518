//! The host's multicast tables (SPEC §3 commands 100–109, §7.3, §7.7, and the
//! `multicast_validation` / `multicast_source_filter` / `multicast_multi_sub` cases of §11.5
//! that do not need a wire): M2P, forwarding and source-filter aggregation. Subscriptions
//! are in `multicast_subscriptions.rs`.

mod mcast_common;
use mcast_common::*;
use opte_api::{Ipv6Addr, MulticastUnderlay, OpteError};
use oxide_vpc::api::{
    ClearMcastForwardingReq, DumpMcast2PhysResp, DumpMcastForwardingResp, McastForwardingEntry,
    McastForwardingNextHop, Replication, SetMcastForwardingReq, SourceFilter,
};
use oxide_vpc::mcast::{Fanout, Mcast2Phys, McastForwarding, McastLimits, aggregate_filter};

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
