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

/// An inbound rule added by ID admits a new flow, bumps the epoch and the inbound rule
/// count; removed by the same ID, the count and the refusal of new flows come back.
#[test]
fn add_remove_fw_rule() {
    let rec = Recorder::new("add_remove_fw_rule");
    let tables = Arc::new(VpcTables::default());
    let g1 = g1_cfg();
    let mut port = setup(g1.clone(), &tables);
    let http = |sport| {
        from_internet(
            &g1,
            p(REMOTE4),
            IpAddr::Ip4(ip4(&g1)),
            tcp(sport, 80, flags::SYN),
        )
    };
    assert_eq!(inb(&mut port, &rec, http(1000), T0).0, fw_drop());

    let id = port
        .add_fw_rule(&p("dir=in action=allow priority=10 protocol=TCP"))
        .unwrap();
    assert_eq!(port.port().epoch(), 4);
    assert_rules(&port, &[("firewall", 4, 0)]);
    let d = port.port().dump_layer("firewall").unwrap();
    assert_eq!(d.rules_in[0].id, id, "the new rule sorts first");
    assert_eq!(d.rules_in[0].rule.priority, 10);
    assert_eq!(
        inb(&mut port, &rec, http(1001), T0).0,
        ProcessResult::Modified
    );

    port.rem_fw_rule(Direction::In, id).unwrap();
    assert_eq!(port.port().epoch(), 5);
    assert_rules(&port, &[("firewall", 3, 0)]);
    assert!(
        port.port()
            .dump_layer("firewall")
            .unwrap()
            .rules_in
            .iter()
            .all(|r| r.id != id)
    );
    assert_eq!(inb(&mut port, &rec, http(1002), T0).0, fw_drop());
    // An ID that is gone (or never was, or is in the other direction) changes nothing.
    assert!(port.rem_fw_rule(Direction::In, id).is_err());
    assert!(port.rem_fw_rule(Direction::Out, id).is_err());
    assert_eq!(port.port().epoch(), 5);
    assert_rules(&port, &[("firewall", 3, 0)]);
}

/// Traffic from outside the rack arrives in the guest's own VNI, but tagged External: the
/// default rules (which admit the VPC by VNI) do not admit it on a flow miss, whether it is
/// addressed to the private IP or arrives through the ephemeral IP.
#[test]
fn firewall_external_inbound() {
    let rec = Recorder::new("firewall_external_inbound");
    let tables = Arc::new(VpcTables::default());
    let g1 = g1_cfg();
    let mut port = setup(g1.clone(), &tables);
    set_ephemeral(&mut port, Some("10.77.78.9"), None);
    assert_rules(&port, &[("nat", 1, 4)]);
    let before = port.port().stats().r#in;
    for (i, dst) in [IpAddr::Ip4(ip4(&g1)), p("10.77.78.9")]
        .into_iter()
        .enumerate()
    {
        let syn = from_internet(&g1, p("1.1.1.1"), dst, tcp(4000 + i as u16, 80, flags::SYN));
        assert!(net(&mut syn.clone()).outer.geneve.external);
        assert_eq!(net(&mut syn.clone()).outer.geneve.vni, g1.vni);
        let (r, _) = inb(&mut port, &rec, syn, T0);
        assert_eq!(r, fw_drop(), "to {dst}");
    }
    let st = port.port().stats().r#in;
    assert_eq!(st.drop - before.drop, 2);
    assert_eq!(st.drop_layer - before.drop_layer, 2);
    assert_eq!(st.uft_miss - before.uft_miss, 2);
    assert_eq!(port.port().num_flows("firewall", Direction::In), Some(0));
    assert_eq!(port.port().num_flows("nat", Direction::In), Some(0));
    assert_eq!(port.port().num_flows("uft", Direction::In), Some(0));
    // The same segment from inside the VPC (no External option) is admitted.
    let g2 = g2_cfg();
    let f = frame(
        g2.guest_mac,
        g1.guest_mac,
        IpAddr::Ip4(ip4(&g2)),
        IpAddr::Ip4(ip4(&g1)),
        tcp(4000, 80, flags::SYN),
        &[],
    );
    let (r, _) = inb(
        &mut port,
        &rec,
        encap(g2.phys_ip, g1.phys_ip, g1.vni, false, &f),
        T0,
    );
    assert_eq!(r, ProcessResult::Modified);
}
