//! A catalogue of real packets: the shapes the reference's benchmarks feed (BENCH.md §3.3)
//! and one of every other kind the parser handles. Benchmarks, fuzz seeds, the tshark
//! dissection check and parse tests all draw from here, so they agree on what a packet is.
//!
//! Not datapath code: it fills fixed-size buffers at literal offsets, which is clearest with
//! plain indexing.
#![allow(clippy::indexing_slicing)]

use super::{Encap, Headers, L3Repr, UlpRepr, fragment_ipv4, fragment_ipv6};
use crate::wire::arp::{ARP_OP_REQUEST, ArpRepr};
use crate::wire::ether::{ETHER_TYPE_ARP, ETHER_TYPE_IPV4, ETHER_TYPE_IPV6, EtherRepr};
use crate::wire::geneve::{GENEVE_PORT, GeneveOpt, GeneveRepr, Replication};
use crate::wire::icmp::{
    IcmpRepr, NA_FLAG_OVERRIDE, NA_FLAG_ROUTER, NA_FLAG_SOLICITED, RA_FLAG_MANAGED,
    emit_lla_option, emit_mtu_option, ndp_opt, v4_type, v6_type,
};
use crate::wire::ip4::Ipv4Repr;
use crate::wire::ip6::Ipv6Repr;
use crate::wire::proto;
use crate::wire::tcp::{TcpRepr, flags};
use crate::wire::udp::UdpRepr;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use opte_api::{Ipv4Addr, Ipv6Addr, MacAddr, Vni};

pub const GUEST_MAC: MacAddr = MacAddr::from_const([0xa8, 0x40, 0x25, 0xfa, 0xfa, 0x37]);
pub const GW_MAC: MacAddr = MacAddr::from_const([0xa8, 0x40, 0x25, 0xff, 0x77, 0x77]);
pub const BOUNDARY_MAC: MacAddr = MacAddr::from_const([0xa8, 0x40, 0x25, 0x77, 0x77, 0x77]);
pub const GUEST_IP4: Ipv4Addr = Ipv4Addr::from_const([172, 30, 0, 5]);
pub const GW_IP4: Ipv4Addr = Ipv4Addr::from_const([172, 30, 0, 1]);
pub const EPHEMERAL_IP4: Ipv4Addr = Ipv4Addr::from_const([10, 60, 1, 20]);
pub const REMOTE_IP4: Ipv4Addr = Ipv4Addr::from_const([93, 184, 216, 34]);
pub const GUEST_IP6: Ipv6Addr = v6([0xfd00, 0, 0, 0, 0, 0, 0, 5]);
pub const EPHEMERAL_IP6: Ipv6Addr = v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 2]);
pub const REMOTE_IP6: Ipv6Addr = v6([0x2606, 0x2800, 0x220, 1, 0x248, 0x1893, 0x25c8, 0x1946]);
pub const GUEST_LL: Ipv6Addr = v6([0xfe80, 0, 0, 0, 0xaa40, 0x25ff, 0xfefa, 0xfa37]);
pub const GW_LL: Ipv6Addr = v6([0xfe80, 0, 0, 0, 0xaa40, 0x25ff, 0xfeff, 0x7777]);
pub const SLED_IP6: Ipv6Addr = v6([0xfd00, 0, 0xf7, 0x101, 0, 0, 0, 1]);
pub const BOUNDARY_IP6: Ipv6Addr = v6([0xfd00, 0x99, 0, 0, 0, 0, 0, 1]);
pub const GUEST_VNI: u32 = 1_287_581;
pub const BOUNDARY_VNI: u32 = 99;
pub const GUEST_PORT: u16 = 10010;
pub const REMOTE_PORT: u16 = 80;

const fn v6(w: [u16; 8]) -> Ipv6Addr {
    let mut b = [0u8; 16];
    let mut i = 0;
    while i < 8 {
        let x = w[i].to_be_bytes();
        b[2 * i] = x[0];
        b[2 * i + 1] = x[1];
        i += 1;
    }
    Ipv6Addr::from_const(b)
}

fn vni(v: u32) -> Vni {
    Vni::new(v).unwrap_or_default()
}

/// Which parse shape a sample is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// From a guest: [`crate::packet::parse::parse_guest`].
    Guest,
    /// From the underlay: [`crate::packet::parse::parse_network`].
    Network,
}

/// One sample packet: its bytes, split into segments the way a host would deliver it.
#[derive(Clone, Debug)]
pub struct Sample {
    pub name: String,
    pub side: Side,
    pub segments: Vec<Vec<u8>>,
}

impl Sample {
    fn one(name: &str, side: Side, frame: Vec<u8>) -> Self {
        Self {
            name: name.into(),
            side,
            segments: vec![frame],
        }
    }

    /// The whole frame in one buffer.
    pub fn frame(&self) -> Vec<u8> {
        self.segments.concat()
    }

    /// A fresh packet chain with this sample's segmentation.
    pub fn packet(&self) -> crate::packet::Packet {
        let segs: Vec<&[u8]> = self.segments.iter().map(Vec::as_slice).collect();
        crate::packet::Packet::from_segments(&segs)
    }
}

fn eth(src: MacAddr, dst: MacAddr, ether_type: u16) -> EtherRepr {
    EtherRepr {
        dst,
        src,
        ether_type,
        vlan: None,
    }
}

fn ip4(src: Ipv4Addr, dst: Ipv4Addr, p: u8, ttl: u8) -> L3Repr {
    let mut r = Ipv4Repr::new(src, dst, p);
    r.ttl = ttl;
    L3Repr::Ipv4(r)
}

fn ip6(src: Ipv6Addr, dst: Ipv6Addr, p: u8, hop_limit: u8) -> L3Repr {
    let mut r = Ipv6Repr::new(src, dst, p);
    r.hop_limit = hop_limit;
    L3Repr::Ipv6(r)
}

fn tcp_ack(sport: u16, dport: u16) -> UlpRepr {
    let mut t = TcpRepr::new(sport, dport, flags::ACK);
    t.seq = 1234;
    t.ack = 3456;
    t.window = 1;
    UlpRepr::Tcp(t)
}

fn build(h: Headers, body: &[u8]) -> Vec<u8> {
    h.build(body).unwrap_or_default()
}

/// The benchmark families' instance names, in the reference's order.
pub const ULP_CASES: [&str; 16] = [
    "V4-Tcp-OUT-0B",
    "V4-Tcp-OUT-1400B",
    "V4-Tcp-IN-0B",
    "V4-Tcp-IN-1400B",
    "V4-Udp-OUT-0B",
    "V4-Udp-OUT-1400B",
    "V4-Udp-IN-0B",
    "V4-Udp-IN-1400B",
    "V6-Tcp-OUT-0B",
    "V6-Tcp-OUT-1400B",
    "V6-Tcp-IN-0B",
    "V6-Tcp-IN-1400B",
    "V6-Udp-OUT-0B",
    "V6-Udp-OUT-1400B",
    "V6-Udp-IN-0B",
    "V6-Udp-IN-1400B",
];

/// A ULP benchmark packet by instance name (`V4-Tcp-OUT-0B` …): guest → internet as one
/// segment, or internet → guest from boundary services as a 74-byte outer-header segment
/// plus the inner frame.
pub fn ulp(case: &str) -> Option<Sample> {
    let mut parts = case.split('-');
    let (fam, p, dir, len) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let v4 = match fam {
        "V4" => true,
        "V6" => false,
        _ => return None,
    };
    let is_tcp = match p {
        "Tcp" => true,
        "Udp" => false,
        _ => return None,
    };
    let out = match dir {
        "OUT" => true,
        "IN" => false,
        _ => return None,
    };
    let body = vec![0u8; len.strip_suffix('B')?.parse::<usize>().ok()?];
    let l4p = if is_tcp { proto::TCP } else { proto::UDP };
    let (sport, dport) = if out {
        (GUEST_PORT, REMOTE_PORT)
    } else {
        (REMOTE_PORT, GUEST_PORT)
    };
    let ulp = if is_tcp {
        tcp_ack(sport, dport)
    } else {
        UlpRepr::Udp(UdpRepr::new(sport, dport))
    };
    let (l3, et) = match (v4, out) {
        (true, true) => (ip4(GUEST_IP4, REMOTE_IP4, l4p, 128), ETHER_TYPE_IPV4),
        (true, false) => (ip4(REMOTE_IP4, EPHEMERAL_IP4, l4p, 128), ETHER_TYPE_IPV4),
        (false, true) => (ip6(GUEST_IP6, REMOTE_IP6, l4p, 128), ETHER_TYPE_IPV6),
        (false, false) => (ip6(REMOTE_IP6, EPHEMERAL_IP6, l4p, 128), ETHER_TYPE_IPV6),
    };
    if out {
        let frame = build(Headers::new(eth(GUEST_MAC, GW_MAC, et), l3, ulp), &body);
        return Some(Sample::one(case, Side::Guest, frame));
    }
    let inner = build(
        Headers::new(eth(BOUNDARY_MAC, GUEST_MAC, et), l3, ulp),
        &body,
    );
    let outer = boundary_encap(GUEST_VNI, vec![GeneveOpt::oxide_external()]);
    Some(Sample {
        name: case.into(),
        side: Side::Network,
        segments: vec![outer.header_bytes(inner.len()), inner],
    })
}

/// Geneve from boundary services to this sled, with a given VNI and options.
fn boundary_encap(v: u32, options: Vec<GeneveOpt>) -> Encap {
    let mut ip = Ipv6Repr::new(BOUNDARY_IP6, SLED_IP6, proto::UDP);
    ip.hop_limit = 128;
    Encap {
        eth: eth(BOUNDARY_MAC, GUEST_MAC, ETHER_TYPE_IPV6),
        ip6: ip,
        udp: UdpRepr::new(99, GENEVE_PORT),
        geneve: GeneveRepr::new(vni(v), options),
    }
}

/// The hairpin benchmark packets: `(family, instance)` pairs.
pub const HAIRPIN_CASES: [(&str, &str); 8] = [
    ("Hairpin-DHCPv4", "Discover"),
    ("Hairpin-DHCPv4", "Request"),
    ("Hairpin-DHCPv6", "Solicit"),
    ("Hairpin-DHCPv6", "Request"),
    ("Hairpin-ICMPv4", "EchoRequest"),
    ("Hairpin-ICMPv6", "EchoRequest"),
    ("Hairpin-ICMPv6", "NeighborSolicit"),
    ("Hairpin-ICMPv6", "RouterSolicit"),
];

/// A hairpin benchmark packet (all guest side).
pub fn hairpin(family: &str, case: &str) -> Option<Sample> {
    let name = alloc::format!("{family}/{case}");
    let s = match (family, case) {
        ("Hairpin-DHCPv4", "Discover") => Sample::one(&name, Side::Guest, dhcp4(1)),
        ("Hairpin-DHCPv4", "Request") => Sample::one(&name, Side::Guest, dhcp4(3)),
        ("Hairpin-DHCPv6", "Solicit") => Sample::one(&name, Side::Guest, dhcp6(1, false)),
        ("Hairpin-DHCPv6", "Request") => Sample::one(&name, Side::Guest, dhcp6(3, true)),
        ("Hairpin-ICMPv4", "EchoRequest") => {
            let h = Headers::new(
                eth(GUEST_MAC, GW_MAC, ETHER_TYPE_IPV4),
                ip4(GUEST_IP4, GW_IP4, proto::ICMP, 64),
                UlpRepr::Icmpv4(IcmpRepr::echo(v4_type::ECHO_REQUEST, 7, 777)),
            );
            Sample::one(&name, Side::Guest, build(h, b"reunion\0"))
        }
        ("Hairpin-ICMPv6", "EchoRequest") => {
            let h = Headers::new(
                eth(GUEST_MAC, GW_MAC, ETHER_TYPE_IPV6),
                ip6(GUEST_IP6, GW_LL, proto::ICMPV6, 64),
                UlpRepr::Icmpv6(IcmpRepr::echo(v6_type::ECHO_REQUEST, 7, 777)),
            );
            let f = build(h, b"reunion\0");
            let segs = vec![
                f.get(..14)?.to_vec(),
                f.get(14..54)?.to_vec(),
                f.get(54..)?.to_vec(),
            ];
            Sample {
                name,
                side: Side::Guest,
                segments: segs,
            }
        }
        ("Hairpin-ICMPv6", "NeighborSolicit") => {
            let mut body = [0u8; 28];
            body.get_mut(4..20)?.copy_from_slice(&GW_LL.bytes());
            emit_lla_option(body.get_mut(20..)?, ndp_opt::SOURCE_LLA, GUEST_MAC.bytes()).ok()?;
            // The ICMPv6 header's 4 "rest" bytes are the reserved word; the body after it.
            let h = Headers::new(
                eth(GUEST_MAC, GW_MAC, ETHER_TYPE_IPV6),
                ip6(GUEST_LL, GW_LL, proto::ICMPV6, 255),
                UlpRepr::Icmpv6(IcmpRepr {
                    ty: v6_type::NEIGHBOR_SOLICIT,
                    code: 0,
                    csum: 0,
                    rest: [0; 4],
                }),
            );
            Sample::one(&name, Side::Guest, build(h, body.get(4..)?))
        }
        ("Hairpin-ICMPv6", "RouterSolicit") => {
            let mut opt = [0u8; 8];
            emit_lla_option(&mut opt, ndp_opt::SOURCE_LLA, GUEST_MAC.bytes()).ok()?;
            let h = Headers::new(
                eth(
                    GUEST_MAC,
                    MacAddr::from_const([0x33, 0x33, 0, 0, 0, 2]),
                    ETHER_TYPE_IPV6,
                ),
                ip6(
                    GUEST_LL,
                    v6([0xff02, 0, 0, 0, 0, 0, 0, 2]),
                    proto::ICMPV6,
                    255,
                ),
                UlpRepr::Icmpv6(IcmpRepr {
                    ty: v6_type::ROUTER_SOLICIT,
                    code: 0,
                    csum: 0,
                    rest: [0; 4],
                }),
            );
            Sample::one(&name, Side::Guest, build(h, &opt))
        }
        _ => return None,
    };
    Some(s)
}

/// A DHCPv4 client message (BOOTREQUEST, xid 1234, broadcast flag) of the given DHCP type.
fn dhcp4(msg_type: u8) -> Vec<u8> {
    let mut b = vec![0u8; 244];
    b[0] = 1; // BOOTREQUEST
    b[1] = 1; // Ethernet
    b[2] = 6;
    b[4..8].copy_from_slice(&1234u32.to_be_bytes());
    b[10..12].copy_from_slice(&0x8000u16.to_be_bytes());
    b[28..34].copy_from_slice(&GUEST_MAC.bytes());
    b[236..240].copy_from_slice(&[99, 130, 83, 99]);
    b[240..244].copy_from_slice(&[53, 1, msg_type, 255]);
    let h = Headers::new(
        eth(GUEST_MAC, MacAddr::BROADCAST, ETHER_TYPE_IPV4),
        ip4(
            Ipv4Addr::ANY_ADDR,
            Ipv4Addr::from_const([255; 4]),
            proto::UDP,
            64,
        ),
        UlpRepr::Udp(UdpRepr::new(68, 67)),
    );
    build(h, &b)
}

/// A DHCPv6 client message: Solicit (1) or Request (3, with the gateway's server id).
fn dhcp6(msg_type: u8, server_id: bool) -> Vec<u8> {
    let duid = |mac: MacAddr| {
        let mut d = vec![0, 3, 0, 1];
        d.extend_from_slice(&mac.bytes());
        d
    };
    let opt = |b: &mut Vec<u8>, code: u16, data: &[u8]| {
        b.extend_from_slice(&code.to_be_bytes());
        b.extend_from_slice(&(data.len() as u16).to_be_bytes());
        b.extend_from_slice(data);
    };
    let mut b = vec![msg_type, 0, 1, 2];
    opt(&mut b, 1, &duid(GUEST_MAC));
    if server_id {
        opt(&mut b, 2, &duid(GW_MAC));
    }
    opt(&mut b, 8, &10u16.to_be_bytes());
    let mut iana = Vec::new();
    iana.extend_from_slice(&0xff7u32.to_be_bytes());
    iana.extend_from_slice(&3600u32.to_be_bytes());
    iana.extend_from_slice(&6200u32.to_be_bytes());
    opt(&mut b, 3, &iana);
    opt(&mut b, 6, &[0, 23, 0, 24]);
    let h = Headers::new(
        eth(
            GUEST_MAC,
            MacAddr::from_const([0x33, 0x33, 0, 1, 0, 2]),
            ETHER_TYPE_IPV6,
        ),
        ip6(GUEST_LL, v6([0xff02, 0, 0, 0, 0, 0, 1, 2]), proto::UDP, 64),
        UlpRepr::Udp(UdpRepr::new(546, 547)),
    );
    build(h, &b)
}

/// Every sample: the benchmark shapes and the other kinds the parser handles.
pub fn all() -> Vec<Sample> {
    let mut v: Vec<Sample> = ULP_CASES.iter().filter_map(|c| ulp(c)).collect();
    v.extend(HAIRPIN_CASES.iter().filter_map(|(f, c)| hairpin(f, c)));
    v.extend(others());
    v
}

fn others() -> Vec<Sample> {
    let mut v = Vec::new();
    let g = Side::Guest;

    let arp = ArpRepr {
        op: ARP_OP_REQUEST,
        sha: GUEST_MAC,
        spa: GUEST_IP4,
        tha: MacAddr::ZERO,
        tpa: GW_IP4,
    };
    let h = Headers {
        encap: None,
        eth: eth(GUEST_MAC, MacAddr::BROADCAST, ETHER_TYPE_ARP),
        arp: Some(arp),
        l3: None,
        ulp: None,
    };
    v.push(Sample::one("arp-request", g, build(h, &[])));

    let mut tagged = eth(GUEST_MAC, GW_MAC, ETHER_TYPE_IPV4);
    tagged.vlan = Some(100);
    let h = Headers::new(
        tagged,
        ip4(GUEST_IP4, REMOTE_IP4, proto::UDP, 64),
        UlpRepr::Udp(UdpRepr::new(40000, 40001)),
    );
    v.push(Sample::one("vlan-udp4", g, build(h, b"query")));

    // IPv4 with a Router Alert option (RFC 2113) and TCP SYN with MSS, SACK-permitted,
    // timestamps and window scale.
    let mut r4 = Ipv4Repr::new(GUEST_IP4, REMOTE_IP4, proto::TCP);
    r4.options = vec![0x94, 0x04, 0x00, 0x00];
    let mut syn = TcpRepr::new(GUEST_PORT, 443, flags::SYN);
    syn.seq = 0x1122_3344;
    syn.window = 64240;
    syn.options = vec![
        2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
    ];
    let h = Headers::new(
        eth(GUEST_MAC, GW_MAC, ETHER_TYPE_IPV4),
        L3Repr::Ipv4(r4),
        UlpRepr::Tcp(syn),
    );
    v.push(Sample::one("tcp4-syn-options", g, build(h, &[])));

    // IPv6 with Hop-by-Hop (PadN) and Destination Options (PadN) before TCP.
    let mut r6 = Ipv6Repr::new(GUEST_IP6, REMOTE_IP6, proto::HOP_BY_HOP);
    r6.ext = vec![
        proto::DEST_OPTS,
        0,
        1,
        4,
        0,
        0,
        0,
        0,
        proto::TCP,
        0,
        1,
        4,
        0,
        0,
        0,
        0,
    ];
    let h = Headers::new(
        eth(GUEST_MAC, GW_MAC, ETHER_TYPE_IPV6),
        L3Repr::Ipv6(r6),
        tcp_ack(GUEST_PORT, 22),
    );
    v.push(Sample::one(
        "tcp6-ext-headers",
        g,
        build(h, b"SSH-2.0-x\r\n"),
    ));

    let h = Headers::new(
        eth(GUEST_MAC, GW_MAC, ETHER_TYPE_IPV6),
        ip6(GUEST_IP6, REMOTE_IP6, proto::UDP, 64),
        UlpRepr::Udp(UdpRepr::new(GUEST_PORT, 40001)),
    );
    v.push(Sample::one("udp6", g, build(h, b"hello")));

    // NDP from the gateway's side: an RA with SLLA and MTU options, and a solicited NA.
    let mut ra = [0u8; 12 + 16];
    ra[0] = 255;
    ra[1] = RA_FLAG_MANAGED;
    ra[2..4].copy_from_slice(&9000u16.to_be_bytes());
    let _ = emit_lla_option(&mut ra[12..], ndp_opt::SOURCE_LLA, GW_MAC.bytes());
    let _ = emit_mtu_option(&mut ra[20..], 1500);
    let (ra_rest, ra_body) = ra.split_at(4);
    let h = Headers::new(
        eth(GW_MAC, GUEST_MAC, ETHER_TYPE_IPV6),
        ip6(GW_LL, GUEST_LL, proto::ICMPV6, 255),
        UlpRepr::Icmpv6(IcmpRepr {
            ty: v6_type::ROUTER_ADVERT,
            code: 0,
            csum: 0,
            rest: [ra_rest[0], ra_rest[1], ra_rest[2], ra_rest[3]],
        }),
    );
    v.push(Sample::one("ndp-ra", g, build(h, ra_body)));

    let mut na = vec![0u8; 16 + 8];
    na[..16].copy_from_slice(&GW_LL.bytes());
    let _ = emit_lla_option(&mut na[16..], ndp_opt::TARGET_LLA, GW_MAC.bytes());
    let h = Headers::new(
        eth(GW_MAC, GUEST_MAC, ETHER_TYPE_IPV6),
        ip6(GW_LL, GUEST_LL, proto::ICMPV6, 255),
        UlpRepr::Icmpv6(IcmpRepr {
            ty: v6_type::NEIGHBOR_ADVERT,
            code: 0,
            csum: 0,
            rest: [
                NA_FLAG_ROUTER | NA_FLAG_SOLICITED | NA_FLAG_OVERRIDE,
                0,
                0,
                0,
            ],
        }),
    );
    v.push(Sample::one("ndp-na", g, build(h, &na)));

    // A datagram too big for one frame, in IPv4 and IPv6 fragments.
    let big: Vec<u8> = (0..2000u32).map(|i| i as u8).collect();
    let h = Headers::new(
        eth(GUEST_MAC, GW_MAC, ETHER_TYPE_IPV4),
        ip4(GUEST_IP4, REMOTE_IP4, proto::UDP, 64),
        UlpRepr::Udp(UdpRepr::new(GUEST_PORT, 9000)),
    );
    for (i, f) in fragment_ipv4(&build(h, &big), 1480)
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        v.push(Sample::one(&alloc::format!("udp4-fragment-{i}"), g, f));
    }
    let h = Headers::new(
        eth(GUEST_MAC, GW_MAC, ETHER_TYPE_IPV6),
        ip6(GUEST_IP6, REMOTE_IP6, proto::UDP, 64),
        UlpRepr::Udp(UdpRepr::new(GUEST_PORT, 9000)),
    );
    for (i, f) in fragment_ipv6(&build(h, &big), 1448, 0x0bad_cafe)
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        v.push(Sample::one(&alloc::format!("udp6-fragment-{i}"), g, f));
    }

    // Sled-to-sled traffic: Geneve with the MSS option, a TCP inner frame, one segment.
    let inner = build(
        Headers::new(
            eth(
                GUEST_MAC,
                MacAddr::from_const([0xa8, 0x40, 0x25, 0xf0, 0, 1]),
                ETHER_TYPE_IPV4,
            ),
            ip4(
                GUEST_IP4,
                Ipv4Addr::from_const([172, 30, 0, 6]),
                proto::TCP,
                64,
            ),
            tcp_ack(GUEST_PORT, 5001),
        ),
        b"data",
    );
    let mut e = boundary_encap(GUEST_VNI, vec![GeneveOpt::oxide_mss(1448)]);
    e.ip6.src = SLED_IP6;
    e.ip6.dst = v6([0xfd00, 0, 0xf7, 0x102, 0, 0, 0, 1]);
    e.udp.src_port = 0xc0de;
    let mut frame = e.header_bytes(inner.len());
    frame.extend_from_slice(&inner);
    v.push(Sample::one("geneve-mss-tcp4", Side::Network, frame));

    // Multicast: the Multicast option (replication Underlay), VNI 77, an IPv6 UDP inner frame,
    // behind a Hop-by-Hop header on the outer IPv6.
    let inner = build(
        Headers::new(
            eth(
                GUEST_MAC,
                MacAddr::from_const([0x33, 0x33, 0, 0, 0, 0xfb]),
                ETHER_TYPE_IPV6,
            ),
            ip6(
                GUEST_IP6,
                v6([0xff04, 0, 0, 0, 0, 0, 0, 0xfb]),
                proto::UDP,
                1,
            ),
            UlpRepr::Udp(UdpRepr::new(40000, 40002)),
        ),
        b"mdns",
    );
    let mut e = boundary_encap(77, vec![GeneveOpt::oxide_multicast(Replication::Underlay)]);
    e.ip6.dst = v6([0xff04, 0, 0, 0, 0, 0, 0, 0x77]);
    e.ip6.next_header = proto::HOP_BY_HOP;
    e.ip6.ext = vec![proto::UDP, 0, 1, 4, 0, 0, 0, 0];
    let mut frame = e.header_bytes(inner.len());
    frame.extend_from_slice(&inner);
    v.push(Sample::one("geneve-multicast-udp6", Side::Network, frame));

    v
}

/// The upper layer of a frame made with [`frame`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L4 {
    Tcp {
        sport: u16,
        dport: u16,
        flags: u8,
        seq: u32,
        ack: u32,
    },
    Udp {
        sport: u16,
        dport: u16,
    },
    Icmp4 {
        ty: u8,
        id: u16,
        seq: u16,
    },
    Icmp6 {
        ty: u8,
        id: u16,
        seq: u16,
    },
    /// An echo request of the addresses' family.
    Echo {
        id: u16,
        seq: u16,
    },
}

impl L4 {
    pub const fn tcp(sport: u16, dport: u16, flags: u8, seq: u32, ack: u32) -> Self {
        Self::Tcp {
            sport,
            dport,
            flags,
            seq,
            ack,
        }
    }
}

/// An Ethernet frame from `src` to `dst` (IPv4 or IPv6 by their family, TTL or hop limit 64)
/// carrying `l4` and `body`, checksums correct: the one frame maker of the scenario tests.
/// Empty if the two addresses are of different families.
pub fn frame(
    eth_src: MacAddr,
    eth_dst: MacAddr,
    src: opte_api::IpAddr,
    dst: opte_api::IpAddr,
    l4: L4,
    body: &[u8],
) -> Vec<u8> {
    use opte_api::IpAddr;
    let v6 = matches!(src, IpAddr::Ip6(_));
    let p = match l4 {
        L4::Tcp { .. } => proto::TCP,
        L4::Udp { .. } => proto::UDP,
        L4::Icmp4 { .. } => proto::ICMP,
        L4::Icmp6 { .. } => proto::ICMPV6,
        L4::Echo { .. } if v6 => proto::ICMPV6,
        L4::Echo { .. } => proto::ICMP,
    };
    let (l3, ether_type) = match (src, dst) {
        (IpAddr::Ip4(s), IpAddr::Ip4(d)) => {
            let mut r = Ipv4Repr::new(s, d, p);
            r.ttl = 64;
            (L3Repr::Ipv4(r), ETHER_TYPE_IPV4)
        }
        (IpAddr::Ip6(s), IpAddr::Ip6(d)) => {
            let mut r = Ipv6Repr::new(s, d, p);
            r.hop_limit = 64;
            (L3Repr::Ipv6(r), ETHER_TYPE_IPV6)
        }
        _ => return Vec::new(),
    };
    let ulp = match l4 {
        L4::Tcp {
            sport,
            dport,
            flags,
            seq,
            ack,
        } => {
            let mut t = TcpRepr::new(sport, dport, flags);
            t.seq = seq;
            t.ack = ack;
            t.window = 65000;
            UlpRepr::Tcp(t)
        }
        L4::Udp { sport, dport } => UlpRepr::Udp(UdpRepr::new(sport, dport)),
        L4::Icmp4 { ty, id, seq } => UlpRepr::Icmpv4(IcmpRepr::echo(ty, id, seq)),
        L4::Icmp6 { ty, id, seq } => UlpRepr::Icmpv6(IcmpRepr::echo(ty, id, seq)),
        L4::Echo { id, seq } if v6 => {
            UlpRepr::Icmpv6(IcmpRepr::echo(v6_type::ECHO_REQUEST, id, seq))
        }
        L4::Echo { id, seq } => UlpRepr::Icmpv4(IcmpRepr::echo(v4_type::ECHO_REQUEST, id, seq)),
    };
    let eth = EtherRepr {
        dst: eth_dst,
        src: eth_src,
        ether_type,
        vlan: None,
    };
    Headers::new(eth, l3, ulp).build(body).unwrap_or_default()
}
