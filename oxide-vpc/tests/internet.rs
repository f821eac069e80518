//! Traffic to and from the internet through a VPC port (SPEC §11.1 "Internet / NAT /
//! external IPs"): SNAT and boundary-services encapsulation both ways for each IP family,
//! the ephemeral IP preferred over SNAT, NAT affinity across an external-IP change, and the
//! source address chosen by the internet gateway the route names. NAT details (ICMP
//! identifiers, errors, floating IPs) are in `nat.rs`.

mod common;

use common::*;
use opte::engine::port::ProcessResult;
use opte::engine::stats::DenyReason;
use opte::engine::time::Moment;
use opte::wire::tcp::flags;
use opte_api::{Direction, IpAddr};
use oxide_vpc::api::{InternetGatewayMap, RouterClass, RouterTarget, SetExternalIpsReq, Uuid};
use oxide_vpc::tables::VpcTables;
use std::ops::RangeInclusive;
use std::sync::Arc;

const T0: Moment = Moment::ZERO;

/// A TCP SYN from the guest's private `src` to `remote` via the internet gateway: SNATed to
/// `snat` (a port from `ports`), tunnelled to boundary services in its VNI with no MSS
/// option; the SYN+ACK to the SNAT address and port comes back to the guest untranslated.
fn internet_round_trip(src: IpAddr, remote: IpAddr, snat: IpAddr, ports: RangeInclusive<u16>) {
    let rec = Recorder::new(&format!("guest_to_internet_{src}"));
    let tables = Arc::new(VpcTables::default());
    let g1 = g1_cfg();
    let mut port = setup(g1.clone(), &tables);
    add_igw_routes(&mut port, None);
    assert_eq!(port.port().epoch(), 5);
    let pkt = guest_pkt(&g1, src, remote, tcp(5555, 443, flags::SYN));
    let (r, mut pkt) = out(&mut port, &rec, pkt, T0);
    assert_eq!(r, ProcessResult::Modified);
    let n = net(&mut pkt);
    assert_eq!((n.outer.src, n.outer.dst), (g1.phys_ip, p(BOUNDARY_IP)));
    assert_eq!(n.outer.geneve.vni, vni(BOUNDARY_VNI));
    assert_eq!(
        n.outer.geneve.mss, None,
        "no MSS option toward boundary services"
    );
    assert_eq!(
        (n.inner.eth.src, n.inner.eth.dst),
        (g1.guest_mac, p(TEP_MAC))
    );
    assert_eq!(n.inner.flow.src_ip(), snat);
    assert_eq!(n.inner.flow.dst_ip(), remote);
    let sport = n.inner.flow.src_port();
    assert!(ports.contains(&sport), "{sport}");
    assert_eq!(n.inner.flow.dst_port(), 443);
    assert_csums_valid(&inner_frame(&mut pkt));
    assert_eq!(port.port().num_flows("nat", Direction::Out), Some(1));
    assert_eq!(port.port().num_flows("uft", Direction::Out), Some(1));
    assert_eq!(port.port().num_tcp_flows(), 1);

    let mut l4 = tcp(443, sport, flags::SYN | flags::ACK);
    if let L4::Tcp { ack, .. } = &mut l4 {
        *ack = 1001;
    }
    let reply = from_internet(&g1, remote, snat, l4);
    let (r, pkt) = inb(&mut port, &rec, reply, T0);
    assert_eq!(r, ProcessResult::Modified);
    let m = assert_csums_valid(&pkt.to_vec());
    assert_eq!((m.flow.src_ip(), m.flow.dst_ip()), (remote, src));
    assert_eq!((m.flow.src_port(), m.flow.dst_port()), (443, 5555));
    assert_eq!((m.eth.src, m.eth.dst), (g1.gateway_mac, g1.guest_mac));
    assert_eq!(port.port().num_flows("uft", Direction::In), Some(1));
    let st = port.port().stats();
    assert_eq!((st.out.modified, st.r#in.modified), (1, 1));
}

#[test]
fn guest_to_internet_ipv4_uses_snat_and_boundary_services() {
    let g1 = g1_cfg();
    internet_round_trip(
        IpAddr::Ip4(ip4(&g1)),
        p(REMOTE4),
        p("10.77.77.13"),
        1025..=4096,
    );
}

#[test]
fn guest_to_internet_ipv6_uses_snat_and_boundary_services() {
    let g1 = g1_cfg();
    internet_round_trip(
        IpAddr::Ip6(ip6(&g1)),
        p(REMOTE6),
        p("2001:db8::1"),
        4097..=8192,
    );
}

/// With an ephemeral IP and SNAT both configured, new outbound flows of either family leave
/// from the ephemeral IP, 1:1 (the guest's port kept).
#[test]
fn ephemeral_ip_preferred_over_snat_outbound() {
    let rec = Recorder::new("ephemeral_ip_preferred_over_snat_outbound");
    let tables = Arc::new(VpcTables::default());
    let g1 = g1_cfg();
    let mut port = setup(g1.clone(), &tables);
    add_igw_routes(&mut port, None);
    assert_rules(&port, &[("nat", 0, 3)]);
    let e0 = port.port().epoch();
    set_ephemeral(&mut port, Some("10.60.1.20"), Some("2001:db8::2"));
    assert_eq!(port.port().epoch(), e0 + 1);
    assert_rules(&port, &[("nat", 2, 5)]);
    for (src, dst, want) in [
        (IpAddr::Ip4(ip4(&g1)), p::<IpAddr>(REMOTE4), "10.60.1.20"),
        (IpAddr::Ip6(ip6(&g1)), p::<IpAddr>(REMOTE6), "2001:db8::2"),
    ] {
        let pkt = guest_pkt(&g1, src, dst, tcp(6000, 80, flags::SYN));
        let (r, mut pkt) = out(&mut port, &rec, pkt, T0);
        assert_eq!(r, ProcessResult::Modified);
        let n = net(&mut pkt);
        assert_eq!(n.inner.flow.src_ip(), p::<IpAddr>(want));
        assert_eq!(n.inner.flow.src_port(), 6000, "1:1 NAT keeps the port");
        assert_eq!(n.outer.dst, p(BOUNDARY_IP));
    }
    assert_eq!(port.port().num_flows("nat", Direction::Out), Some(2));
}

#[test]
fn external_ip_epoch_affinity_preserved() {
    let rec = Recorder::new("external_ip_epoch_affinity_preserved");
    let tables = Arc::new(VpcTables::default());
    let g1 = g1_cfg();
    let mut port = setup(g1.clone(), &tables);
    add_igw_routes(&mut port, None);
    set_ephemeral(&mut port, Some("10.60.1.20"), None);
    // An inbound connection to the ephemeral IP (admitted by the TCP/22 default rule).
    let syn = from_internet(&g1, p(REMOTE4), p("10.60.1.20"), tcp(40000, 22, flags::SYN));
    let (r, _) = inb(&mut port, &rec, syn, T0);
    assert_eq!(r, ProcessResult::Modified);
    // A floating IP appears: floating IPs are preferred for new flows...
    let mut e4 = port.cfg().ipv4().unwrap().external_ips.clone();
    e4.floating_ips = vec![p("10.60.1.99")];
    let e0 = port.port().epoch();
    port.set_external_ips(&SetExternalIpsReq {
        port_name: "g".into(),
        external_ips_v4: Some(e4),
        external_ips_v6: None,
        inet_gw_map: None,
    })
    .unwrap();
    assert_eq!(port.port().epoch(), e0 + 1);
    // ...but the established flow's reply still leaves from the ephemeral IP.
    let mut l4 = tcp(22, 40000, flags::SYN | flags::ACK);
    if let L4::Tcp { ack, .. } = &mut l4 {
        *ack = 1001;
    }
    let reply = guest_pkt(&g1, IpAddr::Ip4(ip4(&g1)), p(REMOTE4), l4);
    let (r, mut pkt) = out(&mut port, &rec, reply, T0);
    assert_eq!(r, ProcessResult::Modified);
    assert_eq!(net(&mut pkt).inner.flow.src_ip(), p::<IpAddr>("10.60.1.20"));
    // A new flow uses the floating IP.
    let new = guest_pkt(
        &g1,
        IpAddr::Ip4(ip4(&g1)),
        p(REMOTE4),
        tcp(7000, 80, flags::SYN),
    );
    let (r, mut pkt) = out(&mut port, &rec, new, T0);
    assert_eq!(r, ProcessResult::Modified);
    assert_eq!(net(&mut pkt).inner.flow.src_ip(), p::<IpAddr>("10.60.1.99"));
}

#[test]
fn select_eip_conditioned_on_igw() {
    let rec = Recorder::new("select_eip_conditioned_on_igw");
    let tables = Arc::new(VpcTables::default());
    let g1 = g1_cfg();
    let mut port = setup(g1.clone(), &tables);
    let igw1: Uuid = p("00000000-0000-4000-8000-000000000001");
    let igw2: Uuid = p("00000000-0000-4000-8000-000000000002");
    port.add_router_entry(
        p("1.1.1.0/24"),
        RouterTarget::InternetGateway(Some(igw1)),
        RouterClass::Custom,
    )
    .unwrap();
    port.add_router_entry(
        p("2.2.2.0/24"),
        RouterTarget::InternetGateway(Some(igw2)),
        RouterClass::Custom,
    )
    .unwrap();
    let mut e4 = port.cfg().ipv4().unwrap().external_ips.clone();
    e4.snat = None;
    e4.ephemeral_ip = Some(p("10.60.1.20"));
    e4.floating_ips = vec![p("10.60.1.99")];
    let mut map = InternetGatewayMap::new();
    map.insert(p("10.60.1.20"), [igw1].into_iter().collect());
    map.insert(p("10.60.1.99"), [igw2].into_iter().collect());
    port.set_external_ips(&SetExternalIpsReq {
        port_name: "g".into(),
        external_ips_v4: Some(e4),
        external_ips_v6: None,
        inet_gw_map: Some(map),
    })
    .unwrap();
    for (dst, want) in [("1.1.1.1", "10.60.1.20"), ("2.2.2.2", "10.60.1.99")] {
        let pkt = guest_pkt(&g1, IpAddr::Ip4(ip4(&g1)), p(dst), udp(1234, 53));
        let (r, mut pkt) = out(&mut port, &rec, pkt, T0);
        assert_eq!(r, ProcessResult::Modified, "to {dst}");
        assert_eq!(
            net(&mut pkt).inner.flow.src_ip(),
            p::<IpAddr>(want),
            "to {dst}"
        );
    }
    // An IGW route with no usable source address is dropped, not leaked.
    port.add_router_entry(
        p("3.3.3.0/24"),
        RouterTarget::InternetGateway(None),
        RouterClass::Custom,
    )
    .unwrap();
    let pkt = guest_pkt(&g1, IpAddr::Ip4(ip4(&g1)), p("3.3.3.3"), udp(1234, 53));
    let (r, _) = out(&mut port, &rec, pkt, T0);
    assert_eq!(r, layer_drop("nat", DenyReason::Rule));
}
