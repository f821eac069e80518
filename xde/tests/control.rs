//! Control dispatch: every mutating command, refused, changes nothing; the envelope's
//! errors (API version, undecodable or missing bodies, responses too large, unknown codes)
//! in both the socket and the ioctl shape; the paged flow-table dumps.

mod common;

use common::*;
use opte_api::error::Os;
use opte_api::error::errno::{EBUSY, EEXIST, EINVAL, ENOENT, EPROTO};
use opte_api::{
    API_VERSION, ClearLftReq, ClearUftReq, ControlRequest, ControlResponse, Direction,
    DumpLayerReq, DumpTcpFlowsPageReq, DumpTcpFlowsReq, DumpUftPageReq, DumpUftReq, FlowDumpPage,
    ListLayersReq, MAX_DUMP_PAGE, MulticastUnderlay, OPTE_CMD_RESP_COPY_OUT, OpteCmd, OpteError,
    SetXdeUnderlayReq,
};
use oxide_vpc::api::cmd::{self, Command};
use oxide_vpc::api::*;

/// A sled with two ports and something in every table.
fn populated() -> Rack {
    let rack = Rack::new("control", 1);
    rack.add_guest(0, "g1", &guest(VNI_A, 5, 0));
    rack.add_guest(0, "g2", &guest(VNI_B, 6, 0));
    let remote = guest(VNI_A, 9, 0);
    let remote = VpcCfg {
        phys_ip: sled_ip(5),
        ..remote
    };
    rack.map_guest(0, &remote);
    let u = MulticastUnderlay::new(p("ff04::7")).unwrap();
    rack.cmd::<cmd::SetMcast2Phys>(
        0,
        &SetMcast2PhysReq {
            group: p("239.1.1.1"),
            underlay: u,
        },
    )
    .unwrap();
    rack.cmd::<cmd::SetMcastForwarding>(
        0,
        &SetMcastForwardingReq {
            underlay: u,
            next_hops: vec![McastForwardingNextHop {
                next_hop: NextHopV6 {
                    addr: SWITCH_IP,
                    vni: vni(77),
                },
                replication: Replication::Both,
                source_filter: SourceFilter::default(),
            }],
        },
    )
    .unwrap();
    rack.cmd::<cmd::McastSubscribe>(
        0,
        &McastSubscribeReq {
            port_name: "g1".into(),
            group: p("239.1.1.1"),
            filter: SourceFilter::default(),
        },
    )
    .unwrap();
    rack
}

/// Everything the read commands show, as text.
fn snapshot(rack: &Rack) -> String {
    let mut s = String::new();
    let mut add = |x: &dyn std::fmt::Debug| s.push_str(&format!("{x:?}\n"));
    add(&rack.cmd::<cmd::ListPorts>(0, &()).unwrap());
    add(&rack.cmd::<cmd::DumpVirt2Phys>(0, &()).unwrap());
    add(&rack.cmd::<cmd::DumpVirt2Boundary>(0, &()).unwrap());
    add(&rack.cmd::<cmd::DumpMcast2Phys>(0, &()).unwrap());
    add(&rack.cmd::<cmd::DumpMcastForwarding>(0, &()).unwrap());
    add(&rack.cmd::<cmd::DumpMcastSubscriptions>(0, &()).unwrap());
    add(&rack.sleds[0].xde.underlay());
    for port in ["g1", "g2"] {
        let pn = || port.to_string();
        let layers = rack
            .cmd::<cmd::ListLayers>(0, &ListLayersReq { port_name: pn() })
            .unwrap();
        for l in &layers.layers {
            add(&rack
                .cmd::<cmd::DumpLayer>(
                    0,
                    &DumpLayerReq {
                        port_name: pn(),
                        name: l.name.clone(),
                    },
                )
                .unwrap());
        }
        add(&layers);
        add(&rack
            .cmd::<cmd::DumpUft>(0, &DumpUftReq { port_name: pn() })
            .unwrap());
        add(&rack
            .cmd::<cmd::DumpTcpFlows>(0, &DumpTcpFlowsReq { port_name: pn() })
            .unwrap());
        add(&rack.sleds[0].xde.port(port).unwrap().cfg());
    }
    s
}

/// Send `req` as command `C`; it must fail, and leave every table as it was.
fn refused<C: Command>(rack: &Rack, req: C::Req) -> OpteError {
    let before = snapshot(rack);
    let e = rack
        .cmd::<C>(0, &req)
        .expect_err(&format!("{:?} {req:?} must fail", C::CMD));
    assert_eq!(
        snapshot(rack),
        before,
        "{:?} {req:?} changed something",
        C::CMD
    );
    e
}

/// Send `req`: it succeeds but has nothing to do, and changes nothing.
fn no_op<C: Command>(rack: &Rack, req: C::Req) -> C::Resp {
    let before = snapshot(rack);
    let r = rack.cmd::<C>(0, &req).unwrap();
    assert_eq!(
        snapshot(rack),
        before,
        "{:?} {req:?} changed something",
        C::CMD
    );
    r
}

#[test]
fn every_refused_mutating_command_changes_nothing() {
    let rack = populated();
    let nope = || "nope".to_string();
    let g1 = || "g1".to_string();
    let cfg = guest(VNI_A, 5, 0);
    let u = MulticastUnderlay::new(p("ff04::7")).unwrap();
    let tep = TunnelEndpoint {
        ip: BOUNDARY_IP,
        vni: vni(99),
    };

    let e = refused::<cmd::AddFwRule>(
        &rack,
        AddFwRuleReq {
            port_name: nope(),
            rule: p("dir=in action=allow priority=1 protocol=tcp"),
        },
    );
    assert_eq!(e, OpteError::PortNotFound(nope()));
    refused::<cmd::RemFwRule>(
        &rack,
        RemFwRuleReq {
            port_name: g1(),
            dir: Direction::In,
            id: 9999,
        },
    );
    refused::<cmd::SetFwRules>(
        &rack,
        SetFwRulesReq {
            port_name: nope(),
            rules: vec![],
        },
    );
    refused::<cmd::ClearUft>(&rack, ClearUftReq { port_name: nope() });
    let e = refused::<cmd::ClearLft>(
        &rack,
        ClearLftReq {
            port_name: g1(),
            layer_name: "nolayer".into(),
        },
    );
    assert!(matches!(e, OpteError::LayerNotFound(_)), "{e:?}");
    let phys = PhysNet {
        ether: cfg.guest_mac,
        ip: sled_ip(7),
        vni: cfg.vni,
    };
    refused::<cmd::ClearVirt2Phys>(
        &rack,
        ClearVirt2PhysReq {
            vip: ip4(&cfg),
            phys,
        },
    );
    refused::<cmd::SetVirt2Boundary>(
        &rack,
        SetVirt2BoundaryReq {
            vip: p("10.0.0.0/8"),
            tep: vec![],
        },
    );
    refused::<cmd::ClearVirt2Boundary>(
        &rack,
        ClearVirt2BoundaryReq {
            vip: p("10.0.0.0/8"),
            tep: vec![tep],
        },
    );
    let e = refused::<cmd::AddRouterEntry>(
        &rack,
        AddRouterEntryReq {
            port_name: g1(),
            dest: p("224.0.0.0/4"),
            target: RouterTarget::InternetGateway(None),
            class: RouterClass::System,
        },
    );
    assert!(matches!(e, OpteError::InvalidRouterEntry { .. }), "{e:?}");
    refused::<cmd::DelRouterEntry>(
        &rack,
        DelRouterEntryReq {
            port_name: nope(),
            dest: p("10.0.0.0/8"),
            target: RouterTarget::Drop,
            class: RouterClass::System,
        },
    );
    let create = |name: &str, cfg: VpcCfg, mtu| CreateXdeReq {
        linkid: 0,
        xde_devname: name.into(),
        cfg,
        mtu,
        attach: PortAttach::Netdev,
    };
    assert_eq!(
        refused::<cmd::CreateXde>(&rack, create("g1", guest(VNI_A, 77, 0), None)),
        OpteError::PortExists(g1())
    );
    assert!(matches!(
        refused::<cmd::CreateXde>(&rack, create("g9", cfg.clone(), None)),
        OpteError::MacExists { .. }
    ));
    let mut bad = guest(VNI_A, 78, 0);
    bad.ip_cfg.ipv4_mut().unwrap().private_ip = p("10.9.9.9");
    assert!(matches!(
        refused::<cmd::CreateXde>(&rack, create("g9", bad, None)),
        OpteError::PortCreate(_)
    ));
    assert!(matches!(
        refused::<cmd::CreateXde>(&rack, create("9bad name", guest(VNI_A, 79, 0), None)),
        OpteError::PortCreate(_)
    ));
    assert!(matches!(
        refused::<cmd::CreateXde>(&rack, create("g9", guest(VNI_A, 79, 0), Some(100))),
        OpteError::PortCreate(_)
    ));
    assert_eq!(
        refused::<cmd::DeleteXde>(
            &rack,
            DeleteXdeReq {
                xde_devname: nope()
            }
        ),
        OpteError::PortNotFound(nope())
    );
    let e = refused::<cmd::SetXdeUnderlay>(
        &rack,
        SetXdeUnderlayReq {
            u1: "a".into(),
            u2: "b".into(),
        },
    );
    assert_eq!(e.errno_for(Os::Linux), EEXIST);
    let e = refused::<cmd::ClearXdeUnderlay>(&rack, ());
    assert_eq!(e.errno_for(Os::Linux), EBUSY, "{e}");
    refused::<cmd::SetExternalIps>(
        &rack,
        SetExternalIpsReq {
            port_name: nope(),
            external_ips_v4: None,
            external_ips_v6: None,
            inet_gw_map: None,
        },
    );
    refused::<cmd::AllowCidr>(
        &rack,
        AllowCidrReq {
            port_name: nope(),
            cidr: p("10.1.0.0/16"),
            dir: Direction::In,
        },
    );
    assert_eq!(
        no_op::<cmd::RemoveCidr>(
            &rack,
            RemoveCidrReq {
                port_name: g1(),
                cidr: p("10.1.0.0/16"),
                dir: Direction::In
            }
        ),
        RemoveCidrResp::NotFound
    );
    refused::<cmd::AttachSubnet>(
        &rack,
        AttachSubnetReq {
            port_name: nope(),
            cidr: p("10.2.0.0/16"),
            cfg: AttachedSubnetConfig::default(),
        },
    );
    assert_eq!(
        no_op::<cmd::DetachSubnet>(
            &rack,
            DetachSubnetReq {
                port_name: g1(),
                cidr: p("10.2.0.0/16")
            }
        ),
        DetachSubnetResp::NotFound
    );
    refused::<cmd::SetMcastForwarding>(
        &rack,
        SetMcastForwardingReq {
            underlay: u,
            next_hops: vec![McastForwardingNextHop {
                next_hop: NextHopV6 {
                    addr: SWITCH_IP,
                    vni: vni(5),
                },
                replication: Replication::Underlay,
                source_filter: SourceFilter::default(),
            }],
        },
    );
    refused::<cmd::McastSubscribe>(
        &rack,
        McastSubscribeReq {
            port_name: g1(),
            group: p("239.9.9.9"),
            filter: SourceFilter::default(),
        },
    );
    assert_eq!(
        refused::<cmd::McastSubscribe>(
            &rack,
            McastSubscribeReq {
                port_name: nope(),
                group: p("239.1.1.1"),
                filter: SourceFilter::default()
            }
        ),
        OpteError::PortNotFound(nope())
    );
    refused::<cmd::McastUnsubscribe>(
        &rack,
        McastUnsubscribeReq {
            port_name: nope(),
            group: p("239.1.1.1"),
        },
    );
    refused::<cmd::SetMcast2Phys>(
        &rack,
        SetMcast2PhysReq {
            group: p("10.1.1.1"),
            underlay: u,
        },
    );
    refused::<cmd::ClearMcast2Phys>(
        &rack,
        ClearMcast2PhysReq {
            group: p("239.1.1.1"),
            underlay: MulticastUnderlay::new(p("ff04::8")).unwrap(),
        },
    );
}

#[test]
fn undecodable_and_missing_bodies_are_refused_and_change_nothing() {
    let rack = populated();
    let before = snapshot(&rack);
    for c in OpteCmd::ALL {
        let xde = &rack.sleds[0].xde;
        let garbage = ControlRequest::new(c, vec![0xff; 7], 1 << 20);
        let r = xde.dispatch(&garbage);
        assert!(
            matches!(r, ControlResponse::Err(OpteError::DeserCmdReq(_))),
            "{c:?} on garbage: {r:?}"
        );
        let empty = ControlRequest::new(c, vec![], 1 << 20);
        match xde.dispatch(&empty) {
            ControlResponse::Err(OpteError::NoRequestBody) => {}
            // The commands without a body run: only reads and ClearXdeUnderlay, which
            // refuses while ports exist.
            ControlResponse::Ok(_) => assert!(
                matches!(
                    c,
                    OpteCmd::ListPorts
                        | OpteCmd::DumpVirt2Phys
                        | OpteCmd::DumpVirt2Boundary
                        | OpteCmd::DumpMcastForwarding
                        | OpteCmd::DumpMcastSubscriptions
                        | OpteCmd::DumpMcast2Phys
                        | OpteCmd::DumpXdeStats
                ),
                "{c:?} ran without a body"
            ),
            ControlResponse::Err(e) => {
                assert_eq!(c, OpteCmd::ClearXdeUnderlay, "{c:?}: {e:?}");
                assert_eq!(e.errno_for(Os::Linux), EBUSY);
            }
        }
    }
    assert_eq!(snapshot(&rack), before);
}

#[test]
fn the_socket_shape_refuses_other_versions_and_oversized_responses() {
    let rack = populated();
    let xde = &rack.sleds[0].xde;
    let mut old = ControlRequest::new(OpteCmd::ListPorts, vec![], 1 << 20);
    old.api_version = 41;
    assert_eq!(
        xde.dispatch(&old),
        ControlResponse::Err(OpteError::BadApiVersion {
            user: 41,
            kernel: API_VERSION
        })
    );
    let small = ControlRequest::new(OpteCmd::ListPorts, vec![], 64);
    let ControlResponse::Err(OpteError::RespTooLarge { needed, given: 64 }) = xde.dispatch(&small)
    else {
        panic!("expected RespTooLarge");
    };
    // A buffer too small for any response: a mutating command does not even run.
    let before = xde.state_text();
    let req = postcard::to_allocvec(&DeleteXdeReq {
        xde_devname: "g1".into(),
    })
    .unwrap();
    let tiny = ControlRequest::new(OpteCmd::DeleteXde, req, 0);
    assert_eq!(
        xde.dispatch(&tiny),
        ControlResponse::Err(OpteError::RespTooLarge {
            needed: 64,
            given: 0
        })
    );
    assert_eq!(xde.state_text(), before);
    let enough = ControlRequest::new(OpteCmd::ListPorts, vec![], needed);
    let resp: ListPortsResp = xde.dispatch(&enough).into_result().unwrap();
    assert_eq!(resp.ports.len(), 2);
}

#[test]
fn the_ioctl_shape_reports_errno_flags_and_the_size_needed() {
    let rack = populated();
    let xde = &rack.sleds[0].xde;
    // Success: the body is the response.
    let r = xde.dispatch_ioctl(
        API_VERSION,
        OpteCmd::ListPorts.code(),
        &[],
        1 << 20,
        Os::Illumos,
    );
    assert_eq!((r.errno, r.flags), (0, 0));
    let ports: ListPortsResp = postcard::from_bytes(&r.body).unwrap();
    assert_eq!(ports.ports.len(), 2);
    assert_eq!(r.resp_len_actual, r.body.len());
    // Too small a buffer: ENOBUFS in each system's numbering, and the length needed.
    for (os, enobufs) in [(Os::Linux, 105), (Os::Illumos, 132)] {
        let r = xde.dispatch_ioctl(API_VERSION, OpteCmd::ListPorts.code(), &[], 64, os);
        assert_eq!(r.errno, enobufs);
        assert_eq!(r.resp_len_actual, ports_len(xde));
    }
    // A version mismatch: EPROTO with the error in the body.
    let r = xde.dispatch_ioctl(7, OpteCmd::ListPorts.code(), &[], 1024, Os::Illumos);
    assert_eq!((r.errno, r.flags), (EPROTO, OPTE_CMD_RESP_COPY_OUT));
    let e: OpteError = postcard::from_bytes(&r.body).unwrap();
    assert_eq!(
        e,
        OpteError::BadApiVersion {
            user: 7,
            kernel: API_VERSION
        }
    );
    // A port that is not there: ENOENT, and the error says which.
    let req = postcard::to_allocvec(&DeleteXdeReq {
        xde_devname: "zz".into(),
    })
    .unwrap();
    let r = xde.dispatch_ioctl(
        API_VERSION,
        OpteCmd::DeleteXde.code(),
        &req,
        1024,
        Os::Illumos,
    );
    assert_eq!(r.errno, ENOENT);
    let e: OpteError = postcard::from_bytes(&r.body).unwrap();
    assert_eq!(e, OpteError::PortNotFound("zz".into()));
    // A code that names no command.
    let r = xde.dispatch_ioctl(API_VERSION, 94, &[], 1024, Os::Illumos);
    assert_ne!(r.errno, 0);
    assert_eq!(r.flags, OPTE_CMD_RESP_COPY_OUT);
}

fn ports_len(xde: &xde::Xde<SimHost>) -> usize {
    match xde.dispatch(&ControlRequest::new(OpteCmd::ListPorts, vec![], 1 << 20)) {
        ControlResponse::Ok(b) => b.len(),
        ControlResponse::Err(e) => panic!("{e}"),
    }
}

#[test]
fn ports_are_deleted_and_the_underlay_cleared_in_order() {
    let rack = populated();
    for p in ["g1", "g2"] {
        rack.cmd::<cmd::DeleteXde>(
            0,
            &DeleteXdeReq {
                xde_devname: p.into(),
            },
        )
        .unwrap();
    }
    assert!(
        rack.sleds[0].xde.host().ports.read().unwrap().is_empty(),
        "the OS devices went too"
    );
    let subs = rack.cmd::<cmd::DumpMcastSubscriptions>(0, &()).unwrap();
    assert!(
        subs.entries.is_empty(),
        "a deleted port's subscriptions go with it"
    );
    rack.cmd::<cmd::ClearXdeUnderlay>(0, &()).unwrap();
    assert_eq!(rack.sleds[0].xde.underlay(), None);
    let fwd = rack.cmd::<cmd::DumpMcastForwarding>(0, &()).unwrap();
    assert!(fwd.entries.is_empty());
    let e = rack.cmd::<cmd::ClearXdeUnderlay>(0, &()).unwrap_err();
    assert_eq!(e.errno_for(Os::Linux), ENOENT);
    let e = rack
        .cmd::<cmd::CreateXde>(
            0,
            &CreateXdeReq {
                linkid: 0,
                xde_devname: "g1".into(),
                cfg: guest(VNI_A, 5, 0),
                mtu: None,
                attach: PortAttach::Netdev,
            },
        )
        .unwrap_err();
    assert_eq!(e.to_string(), "system error 22: underlay not initialized");
}

/// A sled with guests g1 and g3 of one VPC, g1 having opened `n` TCP connections to g3
/// (a SYN each, delivered on the sled): g1's outbound UFT, g3's inbound UFT and both TCP
/// tables hold `n` flows.
fn busy(n: u16) -> Rack {
    let mut rack = Rack::new("paged_dumps", 1);
    let g1 = guest(VNI_A, 5, 0);
    let g3 = guest(VNI_A, 7, 0);
    rack.add_guest(0, "g1", &g1);
    rack.add_guest(0, "g3", &g3);
    for i in 0..n {
        let syn = tcp(40000 + i, 22, common::tcpf::SYN, 1000, 0);
        rack.send(0, "g1", from_guest(&g1, ip4(&g1), ip4(&g3), syn, b""));
    }
    assert_eq!(
        rack.take(0, "g3").len(),
        usize::from(n),
        "every SYN delivered"
    );
    rack
}

/// Every page of a dump, from cursor 0 until `next` is `None`, each asked for with
/// `get(start)`. Each cursor must move forward.
fn all_pages<E>(
    mut get: impl FnMut(u64) -> Result<FlowDumpPage<E>, OpteError>,
) -> Vec<FlowDumpPage<E>> {
    let mut pages = Vec::new();
    let mut start = 0;
    loop {
        let page = get(start).unwrap();
        let next = page.next;
        pages.push(page);
        match next {
            Some(n) => {
                assert!(n > start, "cursor {start} -> {n} does not advance");
                start = n;
            }
            None => return pages,
        }
        assert!(pages.len() <= 10_000, "the dump does not end");
    }
}

/// The pages of a dump of `n` flows in pages of `max`: every page but the last full, the
/// last with `next` None, and their entries (sorted by key, as the whole dump sorts them).
fn check_pages<E: Clone>(
    pages: &[FlowDumpPage<E>],
    n: usize,
    max: u32,
    limit: u32,
) -> Vec<(opte_api::InnerFlowId, E)> {
    let max = max as usize;
    assert_eq!(
        pages.len(),
        n.div_ceil(max).max(1),
        "pages of {max} for {n} flows"
    );
    for (i, page) in pages.iter().enumerate() {
        let last = i + 1 == pages.len();
        assert_eq!(page.next.is_none(), last, "page {i} of {}", pages.len());
        if !last {
            assert_eq!(page.flows.len(), max, "page {i} is full");
        }
        assert!(page.flows.len() <= max);
        assert!(limit > 0);
        assert_eq!((page.limit, page.num_flows as usize), (limit, n));
    }
    let mut flows: Vec<_> = pages.iter().flat_map(|p| p.flows.clone()).collect();
    flows.sort_by_key(|e| e.0);
    flows
}

#[test]
fn paged_dumps_list_every_flow_exactly_once() {
    const N: u16 = 10;
    let rack = busy(N);
    let n = usize::from(N);
    let uft = |port: &str| {
        rack.cmd::<cmd::DumpUft>(
            0,
            &DumpUftReq {
                port_name: port.into(),
            },
        )
        .unwrap()
    };
    let tcp = |port: &str| {
        rack.cmd::<cmd::DumpTcpFlows>(
            0,
            &DumpTcpFlowsReq {
                port_name: port.into(),
            },
        )
        .unwrap()
    };
    let (g1, g3) = (uft("g1"), uft("g3"));
    assert_eq!((g1.out_flows.len(), g3.in_flows.len()), (n, n));
    let (g1_tcp, g3_tcp) = (tcp("g1"), tcp("g3"));
    assert_eq!((g1_tcp.flows.len(), g3_tcp.flows.len()), (n, n));
    for max in [1, 3, 5, N.into(), 11, MAX_DUMP_PAGE] {
        let uft_pages = |port: &str, dir| {
            all_pages(|start| {
                rack.cmd::<cmd::DumpUftPage>(
                    0,
                    &DumpUftPageReq {
                        port_name: port.into(),
                        dir,
                        start,
                        max,
                    },
                )
            })
        };
        let tcp_pages = |port: &str| {
            all_pages(|start| {
                rack.cmd::<cmd::DumpTcpFlowsPage>(
                    0,
                    &DumpTcpFlowsPageReq {
                        port_name: port.into(),
                        start,
                        max,
                    },
                )
            })
        };
        // Each direction of each port, and each TCP table: the same entries as the whole
        // dump, each exactly once (the whole dump's keys are unique and sorted).
        let out = check_pages(&uft_pages("g1", Direction::Out), n, max, g1.out_limit);
        assert_eq!(out, g1.out_flows, "g1 out, pages of {max}");
        let inb = check_pages(&uft_pages("g3", Direction::In), n, max, g3.in_limit);
        assert_eq!(inb, g3.in_flows, "g3 in, pages of {max}");
        // (The TCP table's limit is not in its whole dump: every page must agree on it.)
        let pages = tcp_pages("g1");
        let t = check_pages(&pages, n, max, pages[0].limit);
        assert_eq!(t, g1_tcp.flows, "g1 tcp, pages of {max}");
        let pages = tcp_pages("g3");
        let t = check_pages(&pages, n, max, pages[0].limit);
        assert_eq!(t, g3_tcp.flows, "g3 tcp, pages of {max}");
        // An empty table: one empty page, and the end.
        let empty = uft_pages("g1", Direction::In);
        assert!(check_pages(&empty, 0, max, g1.in_limit).is_empty());
    }
    // A cursor past the end of the table: an empty last page.
    let page = rack
        .cmd::<cmd::DumpUftPage>(
            0,
            &DumpUftPageReq {
                port_name: "g1".into(),
                dir: Direction::Out,
                start: u64::MAX,
                max: 1,
            },
        )
        .unwrap();
    assert_eq!((page.flows.len(), page.next), (0, None));
    assert_eq!(page.num_flows as usize, n);
}

#[test]
fn paged_dumps_refuse_bad_page_sizes_and_unknown_ports() {
    let rack = populated();
    let uft = |port: &str, max| DumpUftPageReq {
        port_name: port.into(),
        dir: Direction::Out,
        start: 0,
        max,
    };
    let tcp = |port: &str, max| DumpTcpFlowsPageReq {
        port_name: port.into(),
        start: 0,
        max,
    };
    for max in [0, MAX_DUMP_PAGE + 1, u32::MAX] {
        let expected = OpteError::BadState(format!("page size {max} is outside 1..=4096"));
        // The page size is checked first: the port is not even looked up.
        for port in ["g1", "nope"] {
            assert_eq!(refused::<cmd::DumpUftPage>(&rack, uft(port, max)), expected);
            assert_eq!(
                refused::<cmd::DumpTcpFlowsPage>(&rack, tcp(port, max)),
                expected
            );
        }
        assert!(expected.to_string().contains("1..=4096"), "{expected}");
        // In the ioctl shape: EINVAL, and the error in the body.
        let req = postcard::to_allocvec(&uft("g1", max)).unwrap();
        let r = rack.sleds[0].xde.dispatch_ioctl(
            API_VERSION,
            OpteCmd::DumpUftPage.code(),
            &req,
            1024,
            Os::Illumos,
        );
        assert_eq!((r.errno, r.flags), (EINVAL, OPTE_CMD_RESP_COPY_OUT));
        assert_eq!(
            postcard::from_bytes::<OpteError>(&r.body).unwrap(),
            expected
        );
    }
    let nope = OpteError::PortNotFound("nope".into());
    assert_eq!(refused::<cmd::DumpUftPage>(&rack, uft("nope", 1)), nope);
    assert_eq!(
        refused::<cmd::DumpTcpFlowsPage>(&rack, tcp("nope", MAX_DUMP_PAGE)),
        nope
    );
    let req = postcard::to_allocvec(&tcp("nope", 1)).unwrap();
    let r = rack.sleds[0].xde.dispatch_ioctl(
        API_VERSION,
        OpteCmd::DumpTcpFlowsPage.code(),
        &req,
        1024,
        Os::Illumos,
    );
    assert_eq!(r.errno, ENOENT);
    // The limits themselves are fine.
    for max in [1, MAX_DUMP_PAGE] {
        let p = no_op::<cmd::DumpUftPage>(&rack, uft("g1", max));
        assert_eq!((p.flows.len(), p.next), (0, None));
        let p = no_op::<cmd::DumpTcpFlowsPage>(&rack, tcp("g2", max));
        assert_eq!((p.flows.len(), p.next), (0, None));
    }
}

/// The configuration log, replayed into a host that has nothing, gives a host that shows
/// exactly what the first one does; the host was handed the log after every change, and
/// a refused or read-only command changes nothing in it.
#[test]
fn a_restored_host_shows_the_same_configuration() {
    use xde::persist::ConfigLog;
    let rack = populated();
    // Churn the log must not keep: a port made and deleted, a route added and removed.
    rack.add_guest(0, "g3", &guest(VNI_A, 7, 0));
    let route = AddRouterEntryReq {
        port_name: "g1".into(),
        dest: p("10.99.0.0/16"),
        target: RouterTarget::Drop,
        class: RouterClass::Custom,
    };
    rack.cmd::<cmd::AddRouterEntry>(0, &route).unwrap();
    rack.cmd::<cmd::DelRouterEntry>(
        0,
        &DelRouterEntryReq {
            port_name: route.port_name.clone(),
            dest: route.dest,
            target: route.target,
            class: route.class,
        },
    )
    .unwrap();
    rack.cmd::<cmd::DeleteXde>(
        0,
        &DeleteXdeReq {
            xde_devname: "g3".into(),
        },
    )
    .unwrap();
    let host = rack.sleds[0].xde.host();
    let saved = host.saved_config.read().unwrap().clone().expect("saved");
    let log = ConfigLog::decode(&saved).expect("the saved file reads back");
    assert_eq!(log, rack.sleds[0].xde.config_log());
    assert!(
        log.entries()
            .iter()
            .all(|e| !e.req.windows(2).any(|w| w == b"g3")),
        "the deleted port left nothing in the log"
    );
    // Refused and read-only commands leave the saved file as it was.
    let _ = rack.cmd::<cmd::DeleteXde>(
        0,
        &DeleteXdeReq {
            xde_devname: "nope".into(),
        },
    );
    let _ = rack.cmd::<cmd::DumpVirt2Phys>(0, &());
    assert_eq!(host.saved_config.read().unwrap().as_ref(), Some(&saved));

    let restored = Rack::unconfigured("control", 1);
    let done = restored.sleds[0].xde.restore(&log);
    assert_eq!(done.failed, vec![]);
    assert_eq!(done.applied, log.len());
    assert_eq!(snapshot(&restored), snapshot(&rack));
    assert_eq!(
        restored.sleds[0]
            .xde
            .host()
            .saved_config
            .read()
            .unwrap()
            .as_ref(),
        Some(&saved),
        "the restored host keeps the same file"
    );

    // A log that cannot be replayed whole is reported, and not saved over.
    let partial = Rack::new("control", 1);
    let before = partial.sleds[0]
        .xde
        .host()
        .saved_config
        .read()
        .unwrap()
        .clone();
    let done = partial.sleds[0].xde.restore(&log);
    assert_eq!(done.failed.len(), 1, "{:?}", done.failed);
    assert_eq!(done.failed[0].0, OpteCmd::SetXdeUnderlay);
    assert_eq!(
        *partial.sleds[0].xde.host().saved_config.read().unwrap(),
        before
    );
}
