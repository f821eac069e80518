//! Every `OpteHdl` method against the real host core, in process: each request reaches
//! the command it names and each response comes back as the type it is (the paged dumps
//! also against a fake host, for pages with entries in them).

mod common;

use common::{cfg, hdl, hdl_with, xde};
use opte_api::{
    AddrPair, ControlRequest, ControlResponse, Direction, DumpTcpFlowsPageReq, DumpUftPageReq,
    FlowDumpPage, InnerFlowId, IpCidr, MAX_DUMP_PAGE, NoResp, OpteCmd, OpteError, UftEntryDump,
};
use opte_ioctl::{Error, InProcess, OpteHdl};
use oxide_vpc::api::{
    AddFwRuleReq, AddRouterEntryReq, AttachedSubnetConfig, ClearMcast2PhysReq,
    ClearMcastForwardingReq, ClearVirt2BoundaryReq, ClearVirt2PhysReq, DelRouterEntryReq,
    DelRouterEntryResp, DetachSubnetResp, ExternalIpCfg, FirewallRule, McastForwardingNextHop,
    McastSubscribeReq, McastUnsubscribeAllReq, McastUnsubscribeReq, NextHopV6, PhysNet,
    RemFwRuleReq, RemoveCidrResp, Replication, SetExternalIpsReq, SetFwRulesReq, SetMcast2PhysReq,
    SetMcastForwardingReq, SetVirt2BoundaryReq, SetVirt2PhysReq, SourceFilter, TunnelEndpoint,
};
use std::cell::RefCell;
use std::rc::Rc;

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
fn flow_tables_are_dumped_a_page_at_a_time() {
    let (_x, h) = two_ports();
    let whole = h.dump_uft("opte0").unwrap();
    // Empty tables: one empty page, and the end.
    for (dir, limit) in [
        (Direction::In, whole.in_limit),
        (Direction::Out, whole.out_limit),
    ] {
        let p = h.dump_uft_page("opte0", dir, 0, 16).unwrap();
        assert_eq!((p.limit, p.num_flows, p.next), (limit, 0, None));
        assert!(p.flows.is_empty());
    }
    let p = h.dump_tcp_flows_page("opte1", 0, MAX_DUMP_PAGE).unwrap();
    assert_eq!((p.num_flows, p.next), (0, None));
    assert!(p.limit > 0 && p.flows.is_empty());

    // A page size of none or over the limit is refused, with the limit in the message.
    let e = h.dump_uft_page("opte0", Direction::In, 0, 0).unwrap_err();
    assert_eq!(
        e.to_string(),
        "DumpUftPage failed: command not allowed in this state: page size 0 is outside \
         1..=4096"
    );
    assert!(matches!(
        h.dump_tcp_flows_page("opte0", 0, MAX_DUMP_PAGE + 1),
        Err(Error::CommandError(OpteCmd::DumpTcpFlowsPage, OpteError::BadState(m)))
            if m.contains("1..=4096")
    ));
    // An unknown port.
    assert!(matches!(
        h.dump_uft_page("opte9", Direction::Out, 0, 1),
        Err(Error::CommandError(OpteCmd::DumpUftPage, OpteError::PortNotFound(p))) if p == "opte9"
    ));
    assert!(matches!(
        h.dump_tcp_flows_page("opte9", 0, 1),
        Err(Error::CommandError(_, OpteError::PortNotFound(_)))
    ));
}

#[test]
fn page_requests_carry_the_port_direction_cursor_and_size() {
    let (x, _) = two_ports();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let log = seen.clone();
    let h = hdl_with(&x, move |r, dispatch| {
        log.borrow_mut().push((r.cmd, r.req.clone()));
        dispatch(r)
    });
    h.dump_uft_page("opte1", Direction::Out, 77, 9).unwrap();
    h.dump_tcp_flows_page("opte0", 5, 4096).unwrap();
    let seen = seen.borrow();
    assert_eq!(seen[0].0, OpteCmd::DumpUftPage);
    assert_eq!(
        postcard::from_bytes::<DumpUftPageReq>(&seen[0].1).unwrap(),
        DumpUftPageReq {
            port_name: "opte1".into(),
            dir: Direction::Out,
            start: 77,
            max: 9,
        }
    );
    assert_eq!(seen[1].0, OpteCmd::DumpTcpFlowsPage);
    assert_eq!(
        postcard::from_bytes::<DumpTcpFlowsPageReq>(&seen[1].1).unwrap(),
        DumpTcpFlowsPageReq {
            port_name: "opte0".into(),
            start: 5,
            max: 4096,
        }
    );
}

/// A UFT entry of a fake table: TCP from 10.0.0.1 port `sport`.
fn fake_entry(sport: u16) -> (InnerFlowId, UftEntryDump) {
    let addrs = AddrPair::V4 {
        src: "10.0.0.1".parse().unwrap(),
        dst: "10.0.0.2".parse().unwrap(),
    };
    let flow = InnerFlowId::with_ports(6, addrs, sport, 443);
    let hits = u64::from(sport);
    let summary = format!("hdr: encap, body: {sport}");
    (flow, UftEntryDump { hits, summary })
}

#[test]
fn pages_come_back_whole_until_the_last() {
    // A host whose UFT holds entries 0..7, one per cursor position, served as asked.
    let table: Vec<_> = (0..7).map(fake_entry).collect();
    let served = table.clone();
    let h = OpteHdl::new(InProcess::new(move |r: &ControlRequest| {
        assert_eq!(r.cmd, OpteCmd::DumpUftPage);
        let req: DumpUftPageReq = postcard::from_bytes(&r.req).unwrap();
        let start = req.start as usize;
        let end = (start + req.max as usize).min(served.len());
        let page = FlowDumpPage {
            limit: 64,
            num_flows: served.len() as u32,
            flows: served[start..end].to_vec(),
            next: (end < served.len()).then_some(end as u64),
        };
        ControlResponse::Ok(postcard::to_allocvec(&page).unwrap())
    }));
    let mut got = Vec::new();
    let mut start = 0;
    let mut pages = 0;
    loop {
        let p = h.dump_uft_page("opte0", Direction::In, start, 3).unwrap();
        assert_eq!((p.limit, p.num_flows), (64, 7));
        got.extend(p.flows);
        pages += 1;
        match p.next {
            Some(n) => start = n,
            None => break,
        }
    }
    assert_eq!((pages, got), (3, table));
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
