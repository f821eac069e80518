//! Firewall scenarios (SPEC §11.2 firewall_tests): VNI host filters both ways, external
//! traffic not admitted by VNI rules, and rule replacement mid-flow.

mod common;

use common::*;
use opte::engine::port::ProcessResult;
use opte::engine::stats::{DenyReason, DropReason};
use opte::engine::time::Moment;
use opte::wire::tcp::flags;
use opte_api::{Direction, IpAddr};
use oxide_vpc::api::FirewallRule;
use oxide_vpc::tables::VpcTables;
use std::sync::Arc;

const T0: Moment = Moment::ZERO;

fn fw_drop() -> ProcessResult {
    ProcessResult::Drop(DropReason::Layer {
        layer: "firewall",
        reason: DenyReason::Default,
    })
}

#[test]
fn firewall_vni_inbound_admits_the_vpc_but_not_the_internet() {
    let rec = Recorder::new("firewall_vni_inbound");
    let tables = Arc::new(VpcTables::default());
    let (g1, g2) = (g1_cfg(), g2_cfg());
    let mut p1 = setup(g1.clone(), &tables);
    register(&tables, &g2);
    // From g2 (same VNI, no External option): TCP/80 is admitted by hosts=vni=VPC.
    let f = frame(
        g2.guest_mac,
        g1.guest_mac,
        IpAddr::Ip4(ip4(&g2)),
        IpAddr::Ip4(ip4(&g1)),
        tcp(999, 80, flags::SYN),
        &[],
    );
    let (r, _) = inb(
        &mut p1,
        &rec,
        encap(g2.phys_ip, g1.phys_ip, g1.vni, false, &f),
        T0,
    );
    assert_eq!(r, ProcessResult::Modified);
    // The same packet from outside the rack (External option) is not: external traffic
    // carries no VNI metadata.
    let fx = frame(
        p(TEP_MAC),
        g1.guest_mac,
        IpAddr::Ip4(ip4(&g2)),
        IpAddr::Ip4(ip4(&g1)),
        tcp(998, 80, flags::SYN),
        &[],
    );
    let (r, _) = inb(
        &mut p1,
        &rec,
        encap(p(BOUNDARY_IP), g1.phys_ip, g1.vni, true, &fx),
        T0,
    );
    assert_eq!(r, fw_drop());
    // Port 22 is admitted from anywhere.
    let f22 = frame(
        p(TEP_MAC),
        g1.guest_mac,
        p(REMOTE4),
        IpAddr::Ip4(ip4(&g1)),
        tcp(999, 22, flags::SYN),
        &[],
    );
    let (r, _) = inb(
        &mut p1,
        &rec,
        encap(p(BOUNDARY_IP), g1.phys_ip, g1.vni, true, &f22),
        T0,
    );
    assert_eq!(r, ProcessResult::Modified);
    assert_eq!(p1.port().num_flows("firewall", Direction::In), Some(2));
}

#[test]
fn firewall_vni_outbound_filters_by_destination_vpc() {
    let rec = Recorder::new("firewall_vni_outbound");
    let tables = Arc::new(VpcTables::default());
    let (g1, g2) = (g1_cfg(), g2_cfg());
    let mut p1 = setup(g1.clone(), &tables);
    register(&tables, &g2);
    let mut rules = default_fw_rules(g1.vni);
    rules.push(p(&format!(
        "dir=out action=deny priority=10 hosts=vni={VNI}"
    )));
    p1.set_fw_rules(&rules).unwrap();
    let pkt = guest_pkt(&g1, IpAddr::Ip4(ip4(&g1)), IpAddr::Ip4(ip4(&g2)), udp(1, 2));
    let (r, _) = out(&mut p1, &rec, pkt, T0);
    assert_eq!(
        r,
        ProcessResult::Drop(DropReason::Layer {
            layer: "firewall",
            reason: DenyReason::Rule
        })
    );
    // The internet is not in any VPC: not matched by the VNI rule.
    add_igw_routes(&mut p1, None);
    let pkt = guest_pkt(&g1, IpAddr::Ip4(ip4(&g1)), p(REMOTE4), udp(1, 2));
    let (r, _) = out(&mut p1, &rec, pkt, T0);
    assert_eq!(r, ProcessResult::Modified);
}

#[test]
fn firewall_replace_rules_invalidates_flows_and_add_remove_bump_the_epoch() {
    let rec = Recorder::new("firewall_replace_rules");
    let tables = Arc::new(VpcTables::default());
    let g1 = g1_cfg();
    let mut port = setup(g1.clone(), &tables);
    let e = port.port().epoch();
    let id = port
        .add_fw_rule(&p("dir=in action=allow priority=10 protocol=udp port=53"))
        .unwrap();
    assert_eq!(port.port().epoch(), e + 1);
    assert_eq!(port.port().num_rules("firewall", Direction::In), Some(4));
    port.rem_fw_rule(Direction::In, id).unwrap();
    assert_eq!(port.port().epoch(), e + 2);
    assert!(port.rem_fw_rule(Direction::In, id).is_err());
    assert_eq!(port.port().epoch(), e + 2);

    // An inbound ssh flow, then rules replaced by ones that no longer admit it.
    let syn = from_internet(
        &g1,
        p(REMOTE4),
        IpAddr::Ip4(ip4(&g1)),
        tcp(1234, 22, flags::SYN),
    );
    let (r, _) = inb(&mut port, &rec, syn, T0);
    assert_eq!(r, ProcessResult::Modified);
    assert_eq!(port.port().num_flows("firewall", Direction::In), Some(1));
    let only_icmp: Vec<FirewallRule> = vec![p("dir=in action=allow priority=1 protocol=icmp")];
    port.set_fw_rules(&only_icmp).unwrap();
    assert_eq!(port.port().num_flows("firewall", Direction::In), Some(0));
    let ack = from_internet(
        &g1,
        p(REMOTE4),
        IpAddr::Ip4(ip4(&g1)),
        tcp(1234, 22, flags::ACK),
    );
    let (r, _) = inb(&mut port, &rec, ack, T0);
    assert_eq!(r, fw_drop());
    assert_eq!(port.port().num_flows("uft", Direction::In), Some(0));
}

#[test]
fn api_types_round_trip_through_postcard_and_json() {
    let cfg = g1_cfg();
    let bytes = postcard::to_allocvec(&cfg).unwrap();
    assert_eq!(
        postcard::from_bytes::<oxide_vpc::api::VpcCfg>(&bytes).unwrap(),
        cfg
    );
    let rule: FirewallRule = p("dir=in action=allow priority=10 protocol=tcp port=22,80");
    let bytes = postcard::to_allocvec(&rule).unwrap();
    assert_eq!(postcard::from_bytes::<FirewallRule>(&bytes).unwrap(), rule);
    let json = serde_json::to_string(&cfg).unwrap();
    assert_eq!(
        serde_json::from_str::<oxide_vpc::api::VpcCfg>(&json).unwrap(),
        cfg
    );
    assert_eq!(cfg.required_nat_space(), 131_070);
}
