//! Every `OpteHdl` method against the real host core, in process: each request reaches
//! the command it names and each response comes back as the type it is.

mod common;

use common::{cfg, hdl, xde};
use opte_api::{Direction, IpCidr, NoResp, OpteError};
use opte_ioctl::{Error, OpteHdl};
use oxide_vpc::api::{
    AddFwRuleReq, AddRouterEntryReq, AttachedSubnetConfig, ClearMcast2PhysReq,
    ClearMcastForwardingReq, ClearVirt2BoundaryReq, ClearVirt2PhysReq, DelRouterEntryReq,
    DelRouterEntryResp, DetachSubnetResp, ExternalIpCfg, FirewallRule, McastForwardingNextHop,
    McastSubscribeReq, McastUnsubscribeAllReq, McastUnsubscribeReq, NextHopV6, PhysNet,
    RemFwRuleReq, RemoveCidrResp, Replication, SetExternalIpsReq, SetFwRulesReq, SetMcast2PhysReq,
    SetMcastForwardingReq, SetVirt2BoundaryReq, SetVirt2PhysReq, SourceFilter, TunnelEndpoint,
};

const OK: NoResp = NoResp { unused: 0 };

/// A host with an underlay and ports `opte0` (guest 1) and `opte1` (guest 2).
fn two_ports() -> (common::TestXde, OpteHdl) {
    let x = xde();
    let h = hdl(&x);
    h.set_xde_underlay("u1", "u2").unwrap();
    h.create_xde("opte0", cfg(1), None).unwrap();
    h.create_xde("opte1", cfg(2), Some(9000)).unwrap();
    (x, h)
}

fn rule(text: &str) -> FirewallRule {
    text.parse().unwrap()
}

#[test]
fn ports_are_created_listed_and_deleted() {
    let (x, h) = two_ports();
    let ports = h.list_ports().unwrap().ports;
    let names: Vec<&str> = ports.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["opte0", "opte1"]);
    assert_eq!(ports[0].ip4_addr, Some("172.30.0.5".parse().unwrap()));
    assert_eq!(ports[1].ip6_addr, Some("fd00::6".parse().unwrap()));
    assert_eq!(x.port("opte1").unwrap().mtu(), 9000);

    assert!(matches!(
        h.create_xde("opte0", cfg(3), None),
        Err(Error::CommandError(_, OpteError::PortExists(n))) if n == "opte0"
    ));
    // The underlay cannot go while ports use it.
    assert!(h.clear_xde_underlay().is_err());

    assert_eq!(h.delete_xde("opte0").unwrap(), OK);
    assert_eq!(h.list_ports().unwrap().ports.len(), 1);
    let e = h.delete_xde("opte0").unwrap_err();
    assert_eq!(e.to_string(), "DeleteXde failed: port not found: opte0");
    assert_eq!(
        e.opte_error(),
        Some(&OpteError::PortNotFound("opte0".into()))
    );
    h.delete_xde("opte1").unwrap();
    assert_eq!(h.clear_xde_underlay().unwrap(), OK);
    assert_eq!(x.underlay(), None);
}

#[test]
fn layers_and_flow_tables_are_dumped_and_cleared() {
    let (_x, h) = two_ports();
    let layers = h.list_layers("opte0").unwrap().layers;
    let names: Vec<&str> = layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["gateway", "firewall", "router", "nat", "overlay"]);

    let fw = h.dump_layer("opte0", "firewall").unwrap();
    assert_eq!(fw.name, "firewall");
    assert!(!fw.default_in.is_empty());
    assert!(matches!(
        h.dump_layer("opte0", "nope"),
        Err(Error::CommandError(_, OpteError::LayerNotFound(_)))
    ));

    let uft = h.dump_uft("opte0").unwrap();
    assert_eq!((uft.in_num_flows, uft.out_num_flows), (0, 0));
    assert!(uft.in_limit > 0);
    assert!(h.dump_tcp_flows("opte0").unwrap().flows.is_empty());
    assert_eq!(h.clear_uft("opte0").unwrap(), OK);
    assert_eq!(h.clear_lft("opte0", "firewall").unwrap(), OK);
    assert!(matches!(
        h.clear_uft("opte9"),
        Err(Error::CommandError(_, OpteError::PortNotFound(_)))
    ));
}

#[test]
fn firewall_rules_are_added_removed_and_replaced() {
    let (_x, h) = two_ports();
    let inbound = |h: &OpteHdl| h.dump_layer("opte0", "firewall").unwrap().rules_in;
    let before = inbound(&h).len();
    h.add_firewall_rule(&AddFwRuleReq {
        port_name: "opte0".into(),
        rule: rule("dir=in action=allow priority=10 protocol=tcp port=22"),
    })
    .unwrap();
    let rules = inbound(&h);
    assert_eq!(rules.len(), before + 1);
    let added = rules.iter().find(|r| r.rule.priority == 10).unwrap().id;

    h.remove_firewall_rule(&RemFwRuleReq {
        port_name: "opte0".into(),
        dir: Direction::In,
        id: added,
    })
    .unwrap();
    assert_eq!(inbound(&h).len(), before);
    assert!(matches!(
        h.remove_firewall_rule(&RemFwRuleReq {
            port_name: "opte0".into(),
            dir: Direction::In,
            id: added,
        }),
        Err(Error::CommandError(_, OpteError::RuleNotFound(id))) if id == added
    ));

    h.set_firewall_rules(&SetFwRulesReq {
        port_name: "opte0".into(),
        rules: vec![
            rule("dir=in action=allow priority=5 protocol=icmp"),
            rule("dir=out action=deny priority=7 hosts=subnet=10.0.0.0/8"),
        ],
    })
    .unwrap();
    let fw = h.dump_layer("opte0", "firewall").unwrap();
    assert_eq!((fw.rules_in.len(), fw.rules_out.len()), (1, 1));
}

#[test]
fn router_entries_are_added_and_deleted() {
    let (_x, h) = two_ports();
    let req = AddRouterEntryReq {
        port_name: "opte0".into(),
        dest: "10.1.0.0/16".parse().unwrap(),
        target: "ig".parse().unwrap(),
        class: "custom".parse().unwrap(),
    };
    let before = h.dump_layer("opte0", "router").unwrap().rules_out.len();
    assert_eq!(h.add_router_entry(&req).unwrap(), OK);
    let after = h.dump_layer("opte0", "router").unwrap().rules_out.len();
    assert_eq!(after, before + 1);
    let del = DelRouterEntryReq {
        port_name: req.port_name,
        dest: req.dest,
        target: req.target,
        class: req.class,
    };
    assert_eq!(h.del_router_entry(&del).unwrap(), DelRouterEntryResp::Ok);
    assert_eq!(
        h.del_router_entry(&del).unwrap(),
        DelRouterEntryResp::NotFound
    );
}

#[test]
fn external_ips_transit_cidrs_and_subnets_are_configured() {
    let (x, h) = two_ports();
    h.set_external_ips(&SetExternalIpsReq {
        port_name: "opte0".into(),
        external_ips_v4: Some(ExternalIpCfg {
            snat: None,
            ephemeral_ip: Some("10.60.0.5".parse().unwrap()),
            floating_ips: vec!["10.60.1.9".parse().unwrap()],
        }),
        external_ips_v6: None,
        inet_gw_map: None,
    })
    .unwrap();
    let p = &h.list_ports().unwrap().ports[0];
    assert_eq!(p.ephemeral_ip4_addr, Some("10.60.0.5".parse().unwrap()));
    assert_eq!(
        p.floating_ip4_addrs,
        Some(vec!["10.60.1.9".parse().unwrap()])
    );

    let cidr: IpCidr = "192.168.10.0/24".parse().unwrap();
    h.allow_cidr("opte0", cidr, Direction::In).unwrap();
    let v4 = |x: &common::TestXde| x.port("opte0").unwrap().cfg().ipv4().unwrap().clone();
    assert!(v4(&x).transit_ips[&cidr].allow_in);
    assert_eq!(
        h.remove_cidr("opte0", cidr, Direction::In).unwrap(),
        RemoveCidrResp::Ok(cidr)
    );
    assert_eq!(
        h.remove_cidr("opte0", cidr, Direction::In).unwrap(),
        RemoveCidrResp::NotFound
    );

    let sub: IpCidr = "10.200.0.0/24".parse().unwrap();
    h.attach_subnet("opte0", sub, AttachedSubnetConfig { is_external: true })
        .unwrap();
    assert!(v4(&x).attached_subnets[&sub].is_external);
    assert_eq!(
        h.detach_subnet("opte0", sub).unwrap(),
        DetachSubnetResp::Ok(sub)
    );
    assert_eq!(
        h.detach_subnet("opte0", sub).unwrap(),
        DetachSubnetResp::NotFound
    );
}

#[test]
fn v2p_and_v2b_mappings_are_set_dumped_and_cleared() {
    let (_x, h) = two_ports();
    let phys = PhysNet {
        ether: "a8:40:25:00:00:63".parse().unwrap(),
        ip: "fd00:0:f7:102::1".parse().unwrap(),
        vni: "1287581".parse().unwrap(),
    };
    let vip = "172.30.0.99".parse().unwrap();
    h.set_v2p(&SetVirt2PhysReq { vip, phys }).unwrap();
    let dump = h.dump_v2p().unwrap();
    let vpc = &dump.mappings[0];
    // The two ports' own addresses, and the new one.
    assert_eq!(vpc.ip4.len(), 3);
    assert!(
        vpc.ip4
            .iter()
            .any(|(ip, p)| ip.to_string() == "172.30.0.99" && p.ip == phys.ip)
    );
    h.clear_v2p(&ClearVirt2PhysReq { vip, phys }).unwrap();
    assert_eq!(h.dump_v2p().unwrap().mappings[0].ip4.len(), 2);

    let tep = TunnelEndpoint {
        ip: "fd00:99::1".parse().unwrap(),
        vni: "99".parse().unwrap(),
    };
    let prefix: IpCidr = "0.0.0.0/0".parse().unwrap();
    h.set_v2b(&SetVirt2BoundaryReq {
        vip: prefix,
        tep: vec![tep],
    })
    .unwrap();
    let v2b = h.dump_v2b().unwrap().mappings;
    assert_eq!(v2b.ip4.len(), 1);
    assert!(v2b.ip4[0].1.contains(&tep));
    h.clear_v2b(&ClearVirt2BoundaryReq {
        vip: prefix,
        tep: vec![tep],
    })
    .unwrap();
    assert!(h.dump_v2b().unwrap().mappings.ip4.is_empty());
}

#[test]
fn multicast_tables_are_set_dumped_and_cleared() {
    let (_x, h) = two_ports();
    let group = "239.1.1.1".parse().unwrap();
    let underlay = "ff04::e001:101".parse().unwrap();
    h.set_m2p(&SetMcast2PhysReq { group, underlay }).unwrap();
    assert_eq!(h.dump_m2p().unwrap().ip4.len(), 1);

    let hop = McastForwardingNextHop {
        next_hop: NextHopV6 {
            addr: "fd00:0:f7:102::1".parse().unwrap(),
            vni: "77".parse().unwrap(),
        },
        replication: Replication::Underlay,
        source_filter: SourceFilter::default(),
    };
    h.set_mcast_fwd(&SetMcastForwardingReq {
        underlay,
        next_hops: vec![hop.clone()],
    })
    .unwrap();
    let fwd = h.dump_mcast_fwd().unwrap().entries;
    assert_eq!(fwd.len(), 1);
    assert_eq!(fwd[0].next_hops, [hop]);

    for port in ["opte0", "opte1"] {
        h.mcast_subscribe(&McastSubscribeReq {
            port_name: port.into(),
            group,
            filter: SourceFilter::default(),
        })
        .unwrap();
    }
    let subs = h.dump_mcast_subs().unwrap().entries;
    assert_eq!(subs[0].subscribers.len(), 2);
    h.mcast_unsubscribe(&McastUnsubscribeReq {
        port_name: "opte0".into(),
        group,
    })
    .unwrap();
    assert_eq!(h.dump_mcast_subs().unwrap().entries[0].subscribers.len(), 1);
    h.mcast_unsubscribe_all(&McastUnsubscribeAllReq { group })
        .unwrap();
    assert!(
        h.dump_mcast_subs()
            .unwrap()
            .entries
            .iter()
            .all(|e| e.subscribers.is_empty())
    );

    h.clear_mcast_fwd(&ClearMcastForwardingReq { underlay })
        .unwrap();
    assert!(h.dump_mcast_fwd().unwrap().entries.is_empty());
    h.clear_m2p(&ClearMcast2PhysReq { group, underlay })
        .unwrap();
    assert!(h.dump_m2p().unwrap().ip4.is_empty());
}

#[test]
fn xde_stats_name_the_host_and_each_port() {
    let (_x, h) = two_ports();
    let stats = h.dump_xde_stats().unwrap();
    assert!(!stats.counters.is_empty());
    let ports: Vec<&str> = stats.ports.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(ports, ["opte0", "opte1"]);
    assert!(
        stats.ports[0]
            .1
            .iter()
            .any(|(n, v)| n == "route_cache_hit" && *v == 0)
    );
}

#[test]
fn a_port_needs_the_underlay() {
    let x = xde();
    let h = hdl(&x);
    let e = h.create_xde("opte0", cfg(1), None).unwrap_err();
    assert!(
        matches!(
            e.opte_error(),
            Some(OpteError::System { msg, .. }) if msg == "underlay not initialized"
        ),
        "{e}"
    );
}
