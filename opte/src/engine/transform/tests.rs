//! Tests of header transforms: merging, compiling, applying (checksums stay valid),
//! encapsulation push/pop, and the ICMP-error quoted-header rewrite.

use super::*;
use crate::build::samples;
use crate::packet::parse::{parse_guest, parse_network};
use crate::wire::csum::{pseudo_v4, pseudo_v6};
use opte_api::Ipv4Addr;

fn guest(name: &str) -> (Packet, Parsed) {
    let s = samples::all().into_iter().find(|s| s.name == name).unwrap();
    let mut pkt = s.packet();
    let m = parse_guest(&mut pkt).unwrap();
    (pkt, Parsed::Guest(m))
}

/// The L4 checksum of a parsed frame verifies (sum over pseudo-header + segment = ffff).
fn l4_ok(pkt: &Packet, p: &Parsed) -> bool {
    let m = p.inner();
    let u = m.ulp.unwrap();
    let len = usize::from(u.hdr_len) + m.body_len as usize;
    let bytes = pkt.bytes_at(u.loc, len).unwrap();
    let mut c = Checksum::of(bytes);
    match m.flow.addrs {
        AddrPair::V4 { src, dst } if u.kind != UlpKind::Icmpv4 => c.add(pseudo_v4(
            src.bytes(),
            dst.bytes(),
            m.flow.proto,
            len as u16,
        )),
        AddrPair::V6 { src, dst } => c.add(pseudo_v6(
            src.bytes(),
            dst.bytes(),
            m.flow.proto,
            len as u32,
        )),
        _ => {}
    }
    c.fold() == 0xffff
}

fn ip4_ok(pkt: &Packet, p: &Parsed) -> bool {
    match p.inner().l3 {
        Some(L3Info::Ipv4(i)) => {
            Checksum::of(pkt.bytes_at(i.loc, usize::from(i.hdr_len)).unwrap()).fold() == 0xffff
        }
        _ => true,
    }
}

#[test]
fn merge_lets_the_later_layer_win() {
    let mut a = HdrTransform {
        src_port: Some(1),
        dst_port: Some(2),
        ..HdrTransform::identity("a")
    };
    let b = HdrTransform {
        src_port: Some(3),
        encap: EncapAction::Pop,
        ..HdrTransform::identity("b")
    };
    a.merge(&b);
    assert_eq!(
        (a.src_port, a.dst_port, &a.encap),
        (Some(3), Some(2), &EncapAction::Pop)
    );
    assert!(HdrTransform::identity("x").is_identity());
    assert!(!a.is_identity());
}

#[test]
fn nat_and_port_rewrite_keeps_checksums_valid() {
    for name in [
        "V4-Tcp-OUT-1400B",
        "V4-Udp-OUT-0B",
        "V6-Tcp-OUT-0B",
        "V6-Udp-OUT-1400B",
    ] {
        let (mut pkt, parsed) = guest(name);
        let before = PacketView::new(&pkt, &parsed);
        let new_src = match before.src_ip().unwrap() {
            IpAddr::Ip4(_) => IpAddr::Ip4(Ipv4Addr::from_const([10, 77, 77, 13])),
            IpAddr::Ip6(_) => IpAddr::Ip6(samples::EPHEMERAL_IP6),
        };
        let t = HdrTransform {
            ip_src: Some(new_src),
            src_port: Some(4096),
            eth_dst: Some(samples::BOUNDARY_MAC),
            ..HdrTransform::identity("snat")
        };
        let c = CompiledTransform::compile(&t, &before).unwrap();
        c.apply(&mut pkt, &parsed).unwrap();
        let mut again = Packet::copy_from(&pkt.to_vec());
        let p2 = Parsed::Guest(parse_guest(&mut again).unwrap());
        let f = p2.flow();
        assert_eq!(f.src_ip(), new_src, "{name}");
        assert_eq!((f.src_port(), f.dst_port()), (4096, 80), "{name}");
        assert_eq!(p2.inner().eth.dst, samples::BOUNDARY_MAC);
        assert!(l4_ok(&again, &p2), "{name}: L4 checksum");
        assert!(ip4_ok(&again, &p2), "{name}: IPv4 checksum");
    }
}

#[test]
fn icmp_echo_id_rewrite_keeps_checksum_valid() {
    for name in ["Hairpin-ICMPv4/EchoRequest", "Hairpin-ICMPv6/EchoRequest"] {
        let (mut pkt, parsed) = guest(name);
        let before = PacketView::new(&pkt, &parsed);
        let t = HdrTransform {
            icmp_id: Some(0xbeef),
            ..HdrTransform::identity("snat-icmp")
        };
        CompiledTransform::compile(&t, &before)
            .unwrap()
            .apply(&mut pkt, &parsed)
            .unwrap();
        let mut again = Packet::copy_from(&pkt.to_vec());
        let p2 = Parsed::Guest(parse_guest(&mut again).unwrap());
        assert_eq!(p2.flow().icmp_id(), 0xbeef, "{name}");
        assert!(l4_ok(&again, &p2), "{name}");
    }
}

#[test]
fn push_then_pop_encapsulation() {
    let (mut pkt, parsed) = guest("V4-Tcp-OUT-0B");
    let original = pkt.to_vec();
    let before = PacketView::new(&pkt, &parsed);
    let push = EncapPush {
        eth_src: MacAddr::ZERO,
        eth_dst: MacAddr::ZERO,
        ip6_src: samples::SLED_IP6,
        ip6_dst: samples::BOUNDARY_IP6,
        hop_limit: 128,
        entropy: 0x1234,
        vni: Vni::new(99).unwrap(),
        options: alloc::vec![GeneveOpt::oxide_mss(0)],
        internal: true,
    };
    let t = HdrTransform {
        encap: EncapAction::Push(push),
        ..HdrTransform::identity("encap")
    };
    let c = CompiledTransform::compile(&t, &before).unwrap();
    assert_eq!(pkt.encap(), None);
    c.apply(&mut pkt, &parsed).unwrap();
    assert_eq!(pkt.len(), 54 + 78);
    assert_eq!(pkt.seg_count(), 1);
    // The host learns where to send it without parsing it again, and where the MSS
    // option's body is (Ethernet 14, IPv6 40, UDP 8, Geneve 8, option header 4).
    let info = pkt.encap().unwrap();
    assert_eq!(info.dst, samples::BOUNDARY_IP6);
    assert_eq!((info.vni.as_u32(), info.flow_hash), (99, 0x1234));
    assert!(info.internal);
    assert_eq!((info.mss_at, info.repl_at), (Some(74), None));
    assert_eq!(pkt.to_vec()[70..74], [0x01, 0x29, 0x02, 0x01]);
    let n = parse_network(&mut pkt).unwrap();
    assert_eq!(n.outer.udp_src_port, 0x1234);
    assert_eq!(n.inner.flow, parsed.flow());
    let parsed_in = Parsed::Network(n);
    let pop = HdrTransform {
        encap: EncapAction::Pop,
        ..HdrTransform::identity("decap")
    };
    let view = PacketView::new(&pkt, &parsed_in);
    CompiledTransform::compile(&pop, &view)
        .unwrap()
        .apply(&mut pkt, &parsed_in)
        .unwrap();
    assert_eq!(pkt.to_vec(), original);
}

#[test]
fn an_encapsulation_past_65535_bytes_is_refused_not_wrapped() {
    let (_, parsed) = guest("V4-Udp-OUT-0B");
    let mut pkt = Packet::copy_from(&alloc::vec![0u8; 65_530]);
    let push = EncapPush {
        eth_src: MacAddr::ZERO,
        eth_dst: MacAddr::ZERO,
        ip6_src: samples::SLED_IP6,
        ip6_dst: samples::BOUNDARY_IP6,
        hop_limit: 64,
        entropy: 1,
        vni: Vni::new(99).unwrap(),
        options: Vec::new(),
        internal: false,
    };
    let t = HdrTransform {
        encap: EncapAction::Push(push),
        ..HdrTransform::identity("encap")
    };
    let (small, _) = guest("V4-Udp-OUT-0B");
    let c = CompiledTransform::compile(&t, &PacketView::new(&small, &parsed)).unwrap();
    let err = c.apply(&mut pkt, &parsed).unwrap_err();
    assert_eq!(err, HdrTransformError::TooLong { len: 65_600 });
    assert_eq!(pkt.len(), 65_530, "nothing was pushed");
    assert_eq!(pkt.encap(), None);
}

#[test]
fn wrong_family_and_missing_encap_are_errors() {
    let (mut pkt, parsed) = guest("V4-Udp-OUT-0B");
    let before = PacketView::new(&pkt, &parsed);
    let t = HdrTransform {
        ip_dst: Some(IpAddr::Ip6(samples::GUEST_IP6)),
        ..HdrTransform::identity("bad")
    };
    assert_eq!(
        CompiledTransform::compile(&t, &before),
        Err(HdrTransformError::FamilyMismatch)
    );
    let pop = HdrTransform {
        encap: EncapAction::Pop,
        ..HdrTransform::identity("pop")
    };
    let c = CompiledTransform::compile(&pop, &before).unwrap();
    assert_eq!(
        c.apply(&mut pkt, &parsed),
        Err(HdrTransformError::NothingToPop)
    );
}

mod icmp_errors {
    use super::*;
    use crate::build::{Headers, L3Repr, UlpRepr, samples};
    use crate::packet::parse::parse_guest;
    use crate::wire::icmp::IcmpRepr;
    use crate::wire::ip4::Ipv4Repr;
    use opte_api::Ipv4Addr;

    /// A port-unreachable from the remote, quoting the guest's NATed UDP datagram.
    fn unreachable(quoted_src: Ipv4Addr) -> alloc::vec::Vec<u8> {
        let quoted = Headers::new(
            EtherRepr {
                dst: MacAddr::ZERO,
                src: MacAddr::ZERO,
                ether_type: 0x0800,
                vlan: None,
            },
            L3Repr::Ipv4(Ipv4Repr::new(quoted_src, samples::REMOTE_IP4, 17)),
            UlpRepr::Udp(UdpRepr::new(10010, 53)),
        )
        .build(b"query")
        .unwrap();
        let h = Headers::new(
            EtherRepr {
                dst: samples::GUEST_MAC,
                src: samples::GW_MAC,
                ether_type: 0x0800,
                vlan: None,
            },
            L3Repr::Ipv4(Ipv4Repr::new(
                samples::REMOTE_IP4,
                samples::EPHEMERAL_IP4,
                1,
            )),
            UlpRepr::Icmpv4(IcmpRepr {
                ty: 3,
                code: 3,
                csum: 0,
                rest: [0; 4],
            }),
        );
        h.build(&quoted[14..]).unwrap()
    }

    #[test]
    fn inbound_icmp_error_quoting_the_external_ip_is_un_natted() {
        let mut pkt = Packet::copy_from(&unreachable(samples::EPHEMERAL_IP4));
        let parsed = Parsed::Guest(parse_guest(&mut pkt).unwrap());
        let view = PacketView::new(&pkt, &parsed);
        let t = HdrTransform {
            ip_dst: Some(IpAddr::Ip4(samples::GUEST_IP4)),
            embedded: Some(EmbeddedRewrite {
                field: EmbeddedField::Src,
                from: IpAddr::Ip4(samples::EPHEMERAL_IP4),
                to: IpAddr::Ip4(samples::GUEST_IP4),
            }),
            ..HdrTransform::identity("NAT")
        };
        CompiledTransform::compile(&t, &view)
            .unwrap()
            .apply(&mut pkt, &parsed)
            .unwrap();
        // The result equals the error the guest would get without NAT, byte for byte.
        let mut want = unreachable(samples::GUEST_IP4);
        want[30..34].copy_from_slice(&samples::GUEST_IP4.bytes());
        // Outer IPv4 checksum of the expected frame, recomputed after the dst change.
        crate::wire::ip4::fill_header_csum(&mut want[14..34]);
        let icmp = Checksum::of(&want[34..]).fold();
        assert_eq!(pkt.to_vec()[34..], want[34..], "ICMP body and checksum");
        assert_eq!(Checksum::of(&pkt.to_vec()[34..]).fold(), icmp);
        assert_eq!(Checksum::of(&pkt.to_vec()[34..]).fold(), 0xffff);
        assert_eq!(pkt.to_vec(), want);
    }

    #[test]
    fn a_quoted_packet_from_elsewhere_is_left_alone() {
        let other = Ipv4Addr::from_const([192, 0, 2, 9]);
        let mut pkt = Packet::copy_from(&unreachable(other));
        let parsed = Parsed::Guest(parse_guest(&mut pkt).unwrap());
        let view = PacketView::new(&pkt, &parsed);
        let t = HdrTransform {
            embedded: Some(EmbeddedRewrite {
                field: EmbeddedField::Src,
                from: IpAddr::Ip4(samples::EPHEMERAL_IP4),
                to: IpAddr::Ip4(samples::GUEST_IP4),
            }),
            ..HdrTransform::identity("NAT")
        };
        let before = pkt.to_vec();
        CompiledTransform::compile(&t, &view)
            .unwrap()
            .apply(&mut pkt, &parsed)
            .unwrap();
        assert_eq!(pkt.to_vec(), before);
    }
}

/// A guest that leaves its checksum to the device (virtio-net `NEEDS_CSUM`) has only the
/// pseudo-header's sum in the field. After SNAT (new source address and port) and the
/// device's finishing sum over the segment, the checksum must verify.
#[test]
fn a_partial_checksum_moves_with_the_pseudo_header_only() {
    use crate::packet::{CsumState, Offload};
    for case in [
        "V4-Tcp-OUT-0B",
        "V4-Udp-OUT-0B",
        "V6-Tcp-OUT-0B",
        "V6-Udp-OUT-0B",
    ] {
        let (mut pkt, parsed) = guest(case);
        let m = *parsed.inner();
        let u = m.ulp.unwrap();
        let len = usize::from(u.hdr_len) + m.body_len as usize;
        let pseudo = match m.flow.addrs {
            AddrPair::V4 { src, dst } => {
                pseudo_v4(src.bytes(), dst.bytes(), m.flow.proto, len as u16)
            }
            AddrPair::V6 { src, dst } => {
                pseudo_v6(src.bytes(), dst.bytes(), m.flow.proto, len as u32)
            }
        };
        let at = u.loc.off as usize + if u.kind == UlpKind::Tcp { 16 } else { 6 };
        let seg = pkt.segment_mut(0).unwrap().data_mut();
        seg[at..at + 2].copy_from_slice(&pseudo.fold().to_be_bytes());
        pkt.set_offload(Offload {
            csum: CsumState::Partial {
                csum_start: u.loc.off as u16,
                csum_offset: (at - u.loc.off as usize) as u16,
            },
            gso: None,
        });
        let new_src = match m.flow.addrs {
            AddrPair::V4 { .. } => IpAddr::Ip4(Ipv4Addr::from_const([10, 77, 77, 13])),
            AddrPair::V6 { .. } => IpAddr::Ip6("2001:db8::1".parse().unwrap()),
        };
        let t = HdrTransform {
            ip_src: Some(new_src),
            src_port: Some(2222),
            ..HdrTransform::identity("snat")
        };
        let c = CompiledTransform::compile(&t, &PacketView::new(&pkt, &parsed)).unwrap();
        c.apply(&mut pkt, &parsed).unwrap();
        // The device: sum the segment from csum_start with the field as it is, store the
        // complement.
        let seg = pkt.segment_mut(0).unwrap().data_mut();
        let start = u.loc.off as usize;
        let sum = Checksum::of(&seg[start..start + len]).fold();
        seg[at..at + 2].copy_from_slice(&(!sum).to_be_bytes());
        let mut again = Packet::copy_from(&pkt.to_vec());
        let reparsed = Parsed::Guest(parse_guest(&mut again).unwrap());
        assert_eq!(reparsed.inner().flow.addrs.src(), new_src, "{case}");
        assert_eq!(reparsed.inner().flow.proto_info[0], 2222, "{case}");
        assert!(
            l4_ok(&again, &reparsed),
            "{case}: the finished checksum verifies"
        );
        assert!(ip4_ok(&again, &reparsed), "{case}");
    }
}
