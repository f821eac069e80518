//! Routing between subnets of one VPC (SPEC §11.1 `intra_subnet_routes_with_custom`): a
//! system route for a second VPC subnet carries traffic to a guest there, and a custom
//! route of the same prefix length overrides it.

mod common;

use common::*;
use opte::engine::port::ProcessResult;
use opte::engine::stats::{DenyReason, DropReason};
use opte::engine::time::Moment;
use opte_api::{IpAddr, IpCidr};
use oxide_vpc::api::{DelRouterEntryResp, RouterClass, RouterTarget, VpcCfg};
use oxide_vpc::tables::VpcTables;
use std::sync::Arc;

const T0: Moment = Moment::ZERO;

/// A guest on a third sled in the VPC's second IPv4 subnet, 172.30.4.0/22.
fn g3_cfg() -> VpcCfg {
    let mut c = g2_cfg();
    c.guest_mac = p("a8:40:25:fa:fa:39");
    c.phys_ip = p("fd00:0:f7:103::1");
    c.ip_cfg.ipv6_mut().unwrap().private_ip = p("fd00::7");
    let v4 = c.ip_cfg.ipv4_mut().unwrap();
    v4.vpc_subnet = p("172.30.4.0/22");
    v4.private_ip = p("172.30.4.6");
    v4.gateway_ip = p("172.30.4.1");
    c
}

fn router_drop(reason: DenyReason) -> ProcessResult {
    ProcessResult::Drop(DropReason::Layer {
        layer: "router",
        reason,
    })
}

#[test]
fn intra_subnet_routes_with_custom() {
    let rec = Recorder::new("intra_subnet_routes_with_custom");
    let tables = Arc::new(VpcTables::default());
    let (g1, g3) = (g1_cfg(), g3_cfg());
    let mut p1 = setup(g1.clone(), &tables);
    let mut p3 = setup(g3.clone(), &tables);
    let (a, b) = (IpAddr::Ip4(ip4(&g1)), IpAddr::Ip4(ip4(&g3)));
    let ping = |seq| L4::Icmp4 { ty: 8, id: 9, seq };
    let (r, _) = out(&mut p1, &rec, guest_pkt(&g1, a, b, ping(1)), T0);
    assert_eq!(r, router_drop(DenyReason::Default), "no route yet");

    let sub3: IpCidr = p("172.30.4.0/22");
    p1.add_router_entry(sub3, RouterTarget::VpcSubnet(sub3), RouterClass::System)
        .unwrap();
    let (r, mut pkt) = out(&mut p1, &rec, guest_pkt(&g1, a, b, ping(2)), T0);
    assert_eq!(r, ProcessResult::Modified);
    let n = net(&mut pkt);
    assert_eq!((n.outer.dst, n.outer.geneve.vni), (g3.phys_ip, g1.vni));
    assert_eq!(n.inner.eth.dst, g3.guest_mac);
    let (r, mut got) = inb(&mut p3, &rec, pkt, T0);
    assert_eq!(r, ProcessResult::Modified);
    let m = guest(&mut got);
    assert_eq!((m.flow.src_ip(), m.flow.dst_ip()), (a, b));
    assert_eq!(m.eth.src, g3.gateway_mac);

    // g3 answers through its own route back to the first subnet.
    let sub1: IpCidr = p("172.30.0.0/22");
    p3.add_router_entry(sub1, RouterTarget::VpcSubnet(sub1), RouterClass::System)
        .unwrap();
    let pong = guest_pkt(
        &g3,
        b,
        a,
        L4::Icmp4 {
            ty: 0,
            id: 9,
            seq: 2,
        },
    );
    let (r, pkt) = out(&mut p3, &rec, pong, T0);
    assert_eq!(r, ProcessResult::Modified);
    let (r, mut got) = inb(&mut p1, &rec, pkt, T0);
    assert_eq!(r, ProcessResult::Modified);
    assert_eq!(guest(&mut got).flow.src_ip(), b);

    // A custom route of the same prefix wins over the system one, at once (epoch bump).
    let e = p1.port().epoch();
    p1.add_router_entry(sub3, RouterTarget::Drop, RouterClass::Custom)
        .unwrap();
    assert_eq!(p1.port().epoch(), e + 1);
    let (r, _) = out(&mut p1, &rec, guest_pkt(&g1, a, b, ping(3)), T0);
    assert_eq!(r, router_drop(DenyReason::Rule));
    assert_eq!(
        p1.del_router_entry(sub3, RouterTarget::Drop, RouterClass::Custom)
            .unwrap(),
        DelRouterEntryResp::Ok
    );
    let (r, _) = out(&mut p1, &rec, guest_pkt(&g1, a, b, ping(4)), T0);
    assert_eq!(r, ProcessResult::Modified);
    // A longer custom prefix pointing elsewhere in the VPC takes that one host.
    p1.add_router_entry(
        p("172.30.4.6/32"),
        RouterTarget::Ip(IpAddr::Ip4(ip4(&g2_cfg()))),
        RouterClass::Custom,
    )
    .unwrap();
    register(&tables, &g2_cfg());
    let (r, mut pkt) = out(&mut p1, &rec, guest_pkt(&g1, a, b, ping(5)), T0);
    assert_eq!(r, ProcessResult::Modified);
    let n = net(&mut pkt);
    assert_eq!(n.outer.dst, g2_cfg().phys_ip);
    assert_eq!(n.inner.eth.dst, g2_cfg().guest_mac);
    assert_eq!(
        n.inner.flow.dst_ip(),
        b,
        "the inner destination is unchanged"
    );
}
