//! The host's multicast subscriptions (SPEC §3 commands 100–109, §7.7, and the
//! `multicast_validation` / `multicast_multi_sub` cases of §11.5 that do not need a wire):
//! who may subscribe, filters, unsubscribing, limits, dumps and receivers.

mod mcast_common;
use mcast_common::*;
use opte_api::OpteError;
use oxide_vpc::api::{
    DumpMcastSubscriptionsResp, McastSubscriberEntry, McastSubscriptionEntry, Replication,
    SourceFilter,
};
use oxide_vpc::mcast::{Fanout, Mcast2Phys, McastLimits, McastSubscriptions};

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
