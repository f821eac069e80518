//! Traffic to and from the internet through the simulated boundary: SNAT, ephemeral and
//! floating IPs, in both directions.

mod common;

use common::tcpf::{ACK, SYN};
use common::*;
use opte::build::Encap;
use opte::packet::Packet;
use opte::packet::parse::parse_network;
use opte::wire::ether::{ETHER_TYPE_IPV6, EtherRepr};
use opte::wire::geneve::{GeneveOpt, GeneveRepr};
use opte::wire::ip6::Ipv6Repr;
use opte::wire::udp::UdpRepr;
use opte_api::{IpAddr, MacAddr};
use oxide_vpc::api::cmd;
use oxide_vpc::api::{ExternalIpCfg, SNatCfg, SetExternalIpsReq, VpcCfg};
use xde::Link;

const REMOTE: &str = "93.184.216.34";
const TEP_MAC: MacAddr = MacAddr::from_const([0xa8, 0x40, 0x25, 0x77, 0x77, 0x77]);

/// What the boundary saw of the last frame it received: VNI, inner source and port.
fn at_boundary(rack: &Rack) -> (u32, IpAddr, u16) {
    let f = rack.boundary.last().expect("the boundary got a frame");
    let n = parse_network(&mut Packet::copy_from(f)).unwrap();
    assert_eq!(n.outer.dst, BOUNDARY_IP);
    (
        n.outer.geneve.vni.as_u32(),
        n.inner.flow.addrs.src(),
        n.inner.flow.proto_info[0],
    )
}

/// The boundary sends `inner` (from the internet) to the sled `sled` on VNI `v`.
fn from_internet(rack: &mut Rack, sled: usize, v: u32, inner: Vec<u8>) {
    let outer = Encap {
        eth: EtherRepr {
            dst: MacAddr::ZERO,
            src: MacAddr::ZERO,
            ether_type: ETHER_TYPE_IPV6,
            vlan: None,
        },
        ip6: Ipv6Repr::new(BOUNDARY_IP, sled_ip(sled), 17),
        udp: UdpRepr::new(4242, 6081),
        geneve: GeneveRepr::new(vni(v), vec![GeneveOpt::oxide_external()]),
    }
    .header_bytes(inner.len());
    rack.inject(sled, Link::U1, [outer, inner].concat());
}

fn set_ext(rack: &Rack, c: &VpcCfg, ephemeral: Option<&str>, floating: &[&str]) {
    let ext = ExternalIpCfg {
        snat: Some(SNatCfg {
            external_ip: p("10.77.77.13"),
            ports: 1025..=4096,
        }),
        ephemeral_ip: ephemeral.map(p),
        floating_ips: floating.iter().map(|f| p(f)).collect(),
    };
    rack.cmd::<cmd::SetExternalIps>(
        0,
        &SetExternalIpsReq {
            port_name: "g1".into(),
            external_ips_v4: Some(ext),
            external_ips_v6: None,
            inet_gw_map: None,
        },
    )
    .unwrap();
    let _ = c;
}

#[test]
fn snat_egress_and_its_reply() {
    let mut rack = Rack::new("snat_egress", 1);
    let g1 = guest(VNI_A, 5, 0);
    rack.add_guest(0, "g1", &g1);
    let remote: IpAddr = p(REMOTE);
    rack.send(
        0,
        "g1",
        from_guest(&g1, ip4(&g1), remote, tcp(33000, 80, SYN, 5, 0), b""),
    );
    let (v, src, sport) = at_boundary(&rack);
    assert_eq!(v, BOUNDARY_VNI);
    assert_eq!(
        src,
        p::<IpAddr>("10.77.77.13"),
        "the internet sees the SNAT address"
    );
    assert!(
        (1025..=4096).contains(&sport),
        "from the guest's SNAT range: {sport}"
    );
    let reply = frame(
        TEP_MAC,
        g1.guest_mac,
        remote,
        src,
        tcp(80, sport, SYN | ACK, 70, 6),
        b"",
    );
    from_internet(&mut rack, 0, VNI_A, reply);
    let got = rack.take(0, "g1");
    assert_eq!(got.len(), 1, "the reply is un-NATed to the guest");
    let m = parsed(&got[0]);
    assert_eq!(m.flow.addrs.dst(), ip4(&g1));
    assert_eq!(m.flow.proto_info, [80, 33000]);
}

#[test]
fn ephemeral_then_floating_ip_become_the_source_the_internet_sees() {
    let mut rack = Rack::new("ephemeral_floating_egress", 1);
    let g1 = guest(VNI_A, 5, 0);
    rack.add_guest(0, "g1", &g1);
    let remote: IpAddr = p(REMOTE);
    set_ext(&rack, &g1, Some("10.60.1.20"), &[]);
    rack.send(
        0,
        "g1",
        from_guest(&g1, ip4(&g1), remote, tcp(33001, 443, SYN, 5, 0), b""),
    );
    let (_, src, sport) = at_boundary(&rack);
    assert_eq!(
        (src, sport),
        (p::<IpAddr>("10.60.1.20"), 33001),
        "1:1 NAT keeps the port"
    );
    set_ext(&rack, &g1, Some("10.60.1.20"), &["10.60.2.7"]);
    rack.send(
        0,
        "g1",
        from_guest(&g1, ip4(&g1), remote, tcp(33002, 443, SYN, 5, 0), b""),
    );
    let (_, src, _) = at_boundary(&rack);
    assert_eq!(src, p::<IpAddr>("10.60.2.7"), "a floating IP is preferred");
    // Inbound to the floating IP reaches the guest (port 22 is open by default).
    let syn = frame(
        TEP_MAC,
        g1.guest_mac,
        remote,
        p("10.60.2.7"),
        tcp(50000, 22, SYN, 1, 0),
        b"",
    );
    from_internet(&mut rack, 0, VNI_A, syn);
    let got = rack.take(0, "g1");
    assert_eq!(got.len(), 1);
    assert_eq!(parsed(&got[0]).flow.addrs.dst(), ip4(&g1));
    // And the guest's answer leaves from the floating IP, from port 22.
    let dst: IpAddr = remote;
    rack.send(
        0,
        "g1",
        from_guest(&g1, ip4(&g1), dst, tcp(22, 50000, SYN | ACK, 9, 2), b""),
    );
    let (_, src, sport) = at_boundary(&rack);
    assert_eq!((src, sport), (p::<IpAddr>("10.60.2.7"), 22));
    let _ = ACK;
}
