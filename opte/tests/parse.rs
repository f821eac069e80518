//! Parsing of both shapes: every sample, every validation rule, segmentation and pullup,
//! fragments, and encapsulation push/pop in the headroom.

use opte::build::samples::{self, Side};
use opte::build::{Encap, Headers};
use opte::packet::parse::{L3Info, UlpKind, parse_guest, parse_network};
use opte::packet::{Expected, Mismatch, Packet, ParseError};
use opte::wire::HeaderKind;
use opte::wire::csum::Checksum;
use opte::wire::ether::{ETHER_TYPE_IPV4, EtherRepr};
use opte::wire::geneve::{GeneveOpt, GeneveRepr, Replication};
use opte::wire::ip6::Ipv6Repr;
use opte::wire::udp::UdpRepr;
use opte_api::{AddrPair, FLOW_ID_DEFAULT, Ipv4Addr, Vni};

fn guest(frame: &[u8]) -> Result<opte::packet::parse::InnerMeta, ParseError> {
    parse_guest(&mut Packet::copy_from(frame))
}

fn network(frame: &[u8]) -> Result<opte::packet::parse::NetworkMeta, ParseError> {
    parse_network(&mut Packet::copy_from(frame))
}

fn sample(name: &str) -> samples::Sample {
    samples::all()
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no sample {name}"))
}

#[test]
fn every_sample_parses_and_re_emits_byte_for_byte() {
    let all = samples::all();
    assert!(all.len() >= 35, "catalogue shrank to {}", all.len());
    for s in all {
        let mut pkt = s.packet();
        let headers = match s.side {
            Side::Guest => {
                let m = parse_guest(&mut pkt).unwrap_or_else(|e| panic!("{}: {e}", s.name));
                Headers::from_guest(&pkt, &m).unwrap()
            }
            Side::Network => {
                let m = parse_network(&mut pkt).unwrap_or_else(|e| panic!("{}: {e}", s.name));
                Headers::from_network(&pkt, &m).unwrap()
            }
        };
        let frame = s.frame();
        let hl = headers.emitted_len();
        assert_eq!(headers.to_bytes(&frame[hl..]).unwrap(), frame, "{}", s.name);
        // Well-formed segments need no pullup: the chain is untouched.
        assert_eq!(pkt.seg_count(), s.segments.len(), "{}", s.name);
    }
}

#[test]
fn read_single_segment_guest_tcp4() {
    let s = samples::ulp("V4-Tcp-OUT-0B").unwrap();
    assert_eq!(s.frame().len(), 54);
    let m = guest(&s.frame()).unwrap();
    assert_eq!(m.eth.src, samples::GUEST_MAC);
    assert_eq!(m.eth.dst, samples::GW_MAC);
    assert_eq!(m.eth.vlan, None);
    let Some(L3Info::Ipv4(ip)) = m.l3 else {
        panic!("not IPv4: {:?}", m.l3)
    };
    assert_eq!((ip.loc.off, ip.hdr_len, ip.total_len), (14, 20, 40));
    let ulp = m.ulp.unwrap();
    assert_eq!((ulp.kind, ulp.loc.off, ulp.hdr_len), (UlpKind::Tcp, 34, 20));
    assert_eq!((m.body.off, m.body_len), (54, 0));
    assert_eq!(m.flow.proto, 6);
    assert_eq!(
        m.flow.addrs,
        AddrPair::V4 {
            src: samples::GUEST_IP4,
            dst: samples::REMOTE_IP4
        }
    );
    assert_eq!(m.flow.proto_info, [10010, 80]);
}

#[test]
fn read_multi_segment_network_packet() {
    for case in samples::ULP_CASES.iter().filter(|c| c.contains("-IN-")) {
        let s = samples::ulp(case).unwrap();
        assert_eq!(s.segments[0].len(), 74, "{case}");
        let mut pkt = s.packet();
        let m = parse_network(&mut pkt).unwrap();
        assert_eq!(m.outer.geneve.vni, Vni::new(samples::GUEST_VNI).unwrap());
        assert!(m.outer.geneve.external);
        assert_eq!(m.outer.encap_len(), 74);
        assert_eq!(
            (m.outer.src, m.outer.dst),
            (samples::BOUNDARY_IP6, samples::SLED_IP6)
        );
        assert_eq!(m.outer.udp_src_port, 99);
        assert_eq!((m.inner.eth.loc.seg, m.inner.eth.loc.off), (1, 0));
        assert_eq!(m.inner.eth.dst, samples::GUEST_MAC);
        assert_eq!(m.inner.flow.proto_info, [80, 10010]);
        let body = if case.ends_with("1400B") { 1400 } else { 0 };
        assert_eq!(m.inner.body_len, body, "{case}");
        assert_eq!(pkt.seg_count(), 2);
    }
}

#[test]
fn straddled_headers_are_pulled_up() {
    // Cut every sample at every byte: whatever header the cut splits, the parse must agree
    // with the one-segment parse, and the bytes must come through unchanged.
    for s in samples::all() {
        let frame = s.frame();
        let whole = match s.side {
            Side::Guest => Headers::from_guest(&Packet::copy_from(&frame), &guest(&frame).unwrap()),
            Side::Network => {
                Headers::from_network(&Packet::copy_from(&frame), &network(&frame).unwrap())
            }
        }
        .unwrap();
        for cut in 1..frame.len().min(140) {
            let mut pkt = Packet::from_segments(&[&frame[..cut], &frame[cut..]]);
            let h = match s.side {
                Side::Guest => {
                    let m = parse_guest(&mut pkt).unwrap();
                    Headers::from_guest(&pkt, &m)
                }
                Side::Network => {
                    let m = parse_network(&mut pkt).unwrap();
                    Headers::from_network(&pkt, &m)
                }
            };
            assert_eq!(h.as_ref(), Some(&whole), "{} cut at {cut}", s.name);
            assert_eq!(pkt.to_vec(), frame, "{} cut at {cut}", s.name);
        }
    }
}

#[test]
fn straddled_tcp_header_specifically() {
    let f = samples::ulp("V4-Tcp-OUT-1400B").unwrap().frame();
    // 14 + 20 + 10: the cut falls inside the TCP header.
    let mut pkt = Packet::from_segments(&[&f[..44], &f[44..]]);
    let m = parse_guest(&mut pkt).unwrap();
    assert_eq!(m.ulp.unwrap().loc.seg, 0);
    assert_eq!(m.flow.proto_info, [10010, 80]);
    assert_eq!(m.body_len, 1400);
    assert_eq!(pkt.segment(0).unwrap().len(), 54);
    assert_eq!(pkt.len(), f.len());
}

#[test]
fn many_tiny_segments_parse() {
    let f = samples::ulp("V6-Udp-IN-0B").unwrap().frame();
    let segs: Vec<&[u8]> = f.chunks(3).collect();
    let mut pkt = Packet::from_segments(&segs);
    let m = parse_network(&mut pkt).unwrap();
    assert_eq!(m.inner.flow.proto_info, [80, 10010]);
    assert_eq!(pkt.to_vec(), f);
}

#[test]
fn ipv6_extension_headers_are_walked() {
    let m = guest(&sample("tcp6-ext-headers").frame()).unwrap();
    let Some(L3Info::Ipv6(ip)) = m.l3 else {
        panic!()
    };
    assert_eq!((ip.ext_len, ip.proto), (16, 6));
    assert_eq!(m.ulp.unwrap().loc.off, 14 + 40 + 16);
    assert_eq!(m.flow.proto, 6);
    assert_eq!(m.flow.proto_info[1], 22);
}

#[test]
fn ddm_and_experimental_extension_headers_are_walked() {
    // An outer IPv6 carrying the rack's DDM header (next header 0xFE) before UDP/Geneve.
    let inner = samples::ulp("V4-Udp-IN-0B").unwrap().segments[1].clone();
    let mut ip6 = Ipv6Repr::new(samples::BOUNDARY_IP6, samples::SLED_IP6, 0xfe);
    ip6.ext = vec![
        0xfd, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 17, 0, 0, 0, 0, 0, 0, 0,
    ];
    let e = Encap {
        eth: EtherRepr {
            src: samples::BOUNDARY_MAC,
            dst: samples::GUEST_MAC,
            ether_type: 0x86dd,
            vlan: None,
        },
        ip6,
        udp: UdpRepr::new(1, 6081),
        geneve: GeneveRepr::new(Vni::new(5).unwrap(), vec![]),
    };
    let mut f = e.header_bytes(inner.len());
    f.extend_from_slice(&inner);
    let m = network(&f).unwrap();
    assert_eq!((m.outer.ip6.ext_len, m.outer.ip6.proto), (24, 17));
    assert_eq!(m.outer.encap_len(), 14 + 40 + 24 + 8 + 8);
    assert_eq!(m.inner.flow.proto, 17);
}

#[test]
fn multicast_and_mss_options_are_extracted() {
    let m = network(&sample("geneve-multicast-udp6").frame()).unwrap();
    assert_eq!(m.outer.ip6.ext_len, 8);
    assert_eq!(m.outer.geneve.replication, Some(Replication::Underlay));
    assert!(!m.outer.geneve.external);
    assert_eq!(m.outer.geneve.vni.as_u32(), 77);
    let m = network(&sample("geneve-mss-tcp4").frame()).unwrap();
    assert_eq!(m.outer.geneve.mss, Some(1448));
    assert_eq!(m.inner.body_len, 4);
}

#[test]
fn small_packet_with_padding() {
    // A 42-byte UDP/IPv4 frame padded to the 60-byte Ethernet minimum.
    let mut f = samples::ulp("V4-Udp-OUT-0B").unwrap().frame();
    assert_eq!(f.len(), 42);
    f.resize(60, 0);
    let m = guest(&f).unwrap();
    assert_eq!(m.body_len, 0);
    let Some(L3Info::Ipv4(ip)) = m.l3 else {
        panic!()
    };
    assert_eq!(ip.total_len, 28);
}

#[test]
fn udp6_packet_with_padding() {
    let mut f = sample("udp6").frame();
    let len = f.len();
    f.extend_from_slice(&[0xee; 10]);
    let m = guest(&f).unwrap();
    assert_eq!(m.body_len, 5);
    assert_eq!(m.body.off as usize + 5, len);
}

#[test]
fn icmp4_checksum_covers_header_and_body() {
    let f = samples::hairpin("Hairpin-ICMPv4", "EchoRequest")
        .unwrap()
        .frame();
    let m = guest(&f).unwrap();
    let u = m.ulp.unwrap();
    assert_eq!(u.kind, UlpKind::Icmpv4);
    assert_eq!(m.flow.proto_info, [u16::from_be_bytes([8, 0]), 7]);
    let icmp = &f[u.loc.off as usize..];
    assert_eq!(icmp.len(), 16);
    assert_eq!(Checksum::of(icmp).fold(), 0xffff);
    // The body alone is what NAT code reuses when rewriting the header.
    let body = &f[m.body.off as usize..];
    assert_eq!(body, b"reunion\0");
}

#[test]
fn icmp6_echo_in_three_segments() {
    let s = samples::hairpin("Hairpin-ICMPv6", "EchoRequest").unwrap();
    assert_eq!(
        s.segments.iter().map(Vec::len).collect::<Vec<_>>(),
        [14, 40, 16]
    );
    let mut pkt = s.packet();
    let m = parse_guest(&mut pkt).unwrap();
    assert_eq!(
        (m.l3.unwrap().loc().seg, m.ulp.unwrap().loc.seg, m.body.seg),
        (1, 2, 2)
    );
    assert_eq!(m.flow.proto_info, [u16::from_be_bytes([128, 0]), 7]);
}

#[test]
fn vlan_tag_is_recognised() {
    let m = guest(&sample("vlan-udp4").frame()).unwrap();
    assert_eq!(
        (m.eth.vlan, m.eth.hdr_len, m.eth.ether_type),
        (Some(100), 18, ETHER_TYPE_IPV4)
    );
    assert_eq!(m.l3.unwrap().loc().off, 18);
    assert_eq!(m.flow.proto_info, [40000, 40001]);
}

#[test]
fn arp_is_accepted_and_checked() {
    let f = sample("arp-request").frame();
    let m = guest(&f).unwrap();
    assert!(m.arp.is_some() && m.l3.is_none() && m.ulp.is_none());
    assert_eq!(m.flow, FLOW_ID_DEFAULT);
    let mut bad = f.clone();
    bad[14 + 5] = 16; // plen
    assert_eq!(
        guest(&bad),
        Err(ParseError::IllegalValue(Mismatch {
            hdr: HeaderKind::Arp,
            field: "plen",
            expected: Expected::Exactly(4),
            actual: 16
        }))
    );
}

#[test]
fn ipv4_fragments_parse_with_and_without_ports() {
    let first = guest(&sample("udp4-fragment-0").frame()).unwrap();
    let f = first.frag.unwrap();
    assert!(f.more && f.is_first());
    assert_eq!(first.ulp.unwrap().kind, UlpKind::Udp);
    assert_eq!(first.flow.proto_info, [10010, 9000]);
    let later = guest(&sample("udp4-fragment-1").frame()).unwrap();
    let f = later.frag.unwrap();
    assert!(!f.more && f.offset == 1480);
    assert!(later.ulp.is_none());
    assert_eq!((later.flow.proto, later.flow.proto_info), (17, [0, 0]));
    assert_eq!(later.body_len as usize, 2008 - 1480);
}

#[test]
fn ipv6_fragments_parse_with_and_without_ports() {
    let first = guest(&sample("udp6-fragment-0").frame()).unwrap();
    let f = first.frag.unwrap();
    assert!(f.more && f.is_first() && f.ident == 0x0bad_cafe);
    assert_eq!(first.flow.proto_info, [10010, 9000]);
    let later = guest(&sample("udp6-fragment-1").frame()).unwrap();
    assert!(later.ulp.is_none());
    assert_eq!(later.frag.unwrap().offset, 1448);
    assert_eq!((later.flow.proto, later.flow.proto_info), (17, [0, 0]));
}

fn bad_len(hdr: HeaderKind, field: &'static str, expected: Expected, actual: u64) -> ParseError {
    ParseError::BadLength(Mismatch {
        hdr,
        field,
        expected,
        actual,
    })
}

#[test]
fn ipv4_validation() {
    let good = samples::ulp("V4-Tcp-OUT-0B").unwrap().frame();
    let mut f = good.clone();
    f[14] = 0x55;
    assert_eq!(
        guest(&f),
        Err(ParseError::IllegalValue(Mismatch {
            hdr: HeaderKind::Ipv4,
            field: "version",
            expected: Expected::Exactly(4),
            actual: 5
        }))
    );
    // IHL below 5.
    let mut f = good.clone();
    f[14] = 0x44;
    assert_eq!(
        guest(&f),
        Err(bad_len(HeaderKind::Ipv4, "ihl", Expected::AtLeast(5), 4))
    );
    // IHL longer than the packet (the reference's "overlong-ihl"): the options run off the end.
    let mut f = good.clone();
    f[14] = 0x4f;
    assert_eq!(
        guest(&f),
        Err(ParseError::Truncated {
            hdr: HeaderKind::Ipv4,
            need: 40,
            have: 20
        })
    );
    // IHL longer than total_len, with the bytes present.
    let mut f = samples::ulp("V4-Tcp-OUT-1400B").unwrap().frame();
    f[14] = 0x4f;
    f[16..18].copy_from_slice(&56u16.to_be_bytes());
    assert_eq!(
        guest(&f),
        Err(bad_len(
            HeaderKind::Ipv4,
            "total_len",
            Expected::AtLeast(60),
            56
        ))
    );
    // total_len below the header length.
    let mut f = good.clone();
    f[16..18].copy_from_slice(&12u16.to_be_bytes());
    assert_eq!(
        guest(&f),
        Err(bad_len(
            HeaderKind::Ipv4,
            "total_len",
            Expected::AtLeast(20),
            12
        ))
    );
    // total_len beyond the frame.
    let mut f = good.clone();
    f[16..18].copy_from_slice(&41u16.to_be_bytes());
    assert_eq!(
        guest(&f),
        Err(bad_len(
            HeaderKind::Ipv4,
            "total_len",
            Expected::AtMost(40),
            41
        ))
    );
    // total_len ending inside the TCP header (the reference's "underlong-pkt-len").
    let mut f = good.clone();
    f[16..18].copy_from_slice(&30u16.to_be_bytes());
    assert_eq!(
        guest(&f),
        Err(bad_len(
            HeaderKind::Ipv4,
            "total_len",
            Expected::AtLeast(40),
            30
        ))
    );
}

#[test]
fn ipv6_validation() {
    let good = sample("udp6").frame();
    let mut f = good.clone();
    f[14] = 0x40;
    assert!(matches!(
        guest(&f),
        Err(ParseError::IllegalValue(Mismatch {
            hdr: HeaderKind::Ipv6,
            field: "version",
            ..
        }))
    ));
    let mut f = good.clone();
    f[18..20].copy_from_slice(&100u16.to_be_bytes());
    assert_eq!(
        guest(&f),
        Err(bad_len(
            HeaderKind::Ipv6,
            "payload_len",
            Expected::AtMost(13),
            100
        ))
    );
    // A DDM-style header whose length runs past the payload ("ddm-small-len").
    let mut f = good.clone();
    f[20] = 0xfe;
    assert!(matches!(
        guest(&f),
        Err(ParseError::BadLength(_) | ParseError::Truncated { .. })
    ));
}

#[test]
fn l4_validation() {
    let mut f = samples::ulp("V4-Tcp-OUT-0B").unwrap().frame();
    f[46] = 0x40; // data offset 4
    assert_eq!(
        guest(&f),
        Err(bad_len(
            HeaderKind::Tcp,
            "data_offset",
            Expected::AtLeast(5),
            4
        ))
    );
    let mut f = samples::ulp("V4-Udp-OUT-0B").unwrap().frame();
    f[38..40].copy_from_slice(&9u16.to_be_bytes());
    assert_eq!(
        guest(&f),
        Err(bad_len(HeaderKind::Udp, "len", Expected::AtMost(8), 9))
    );
    f[38..40].copy_from_slice(&7u16.to_be_bytes());
    assert_eq!(
        guest(&f),
        Err(bad_len(HeaderKind::Udp, "len", Expected::AtLeast(8), 7))
    );
    // SCTP and ICMPv6-over-IPv4 are not flows OPTE handles.
    let mut f = samples::ulp("V4-Udp-OUT-0B").unwrap().frame();
    f[23] = 132;
    assert!(matches!(
        guest(&f),
        Err(ParseError::Unwanted(Mismatch {
            hdr: HeaderKind::Ipv4,
            field: "proto",
            actual: 132,
            ..
        }))
    ));
    f[23] = 58;
    assert!(matches!(guest(&f), Err(ParseError::Unwanted(_))));
}

#[test]
fn unknown_ethertype_is_unwanted() {
    let mut f = samples::ulp("V4-Udp-OUT-0B").unwrap().frame();
    f[12..14].copy_from_slice(&0x88ccu16.to_be_bytes());
    let e = guest(&f).unwrap_err();
    assert_eq!(
        e.to_string(),
        "unwanted: Ethernet.ether_type: expected one of IPv4|IPv6|ARP, found 35020"
    );
}

#[test]
fn network_side_validation() {
    let good = samples::ulp("V4-Tcp-IN-0B").unwrap().frame();
    // Outer IPv4 is refused.
    let mut f = good.clone();
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    assert!(matches!(
        network(&f),
        Err(ParseError::Unwanted(Mismatch {
            hdr: HeaderKind::Ethernet,
            ..
        }))
    ));
    // Not Geneve's port.
    let mut f = good.clone();
    f[56..58].copy_from_slice(&4789u16.to_be_bytes());
    assert_eq!(
        network(&f),
        Err(ParseError::Unwanted(Mismatch {
            hdr: HeaderKind::Udp,
            field: "dst_port",
            expected: Expected::Exactly(6081),
            actual: 4789
        }))
    );
    // Geneve version 1.
    let mut f = good.clone();
    f[62] |= 0x40;
    assert!(matches!(
        network(&f),
        Err(ParseError::IllegalValue(Mismatch {
            hdr: HeaderKind::Geneve,
            field: "version",
            ..
        }))
    ));
    // An inner ARP frame is not carried.
    let arp = sample("arp-request").frame();
    let e = samples::ulp("V4-Tcp-IN-0B").unwrap();
    let mut f = e.segments[0].clone();
    let inner_len = u16::from_be_bytes([f[58], f[59]]) as usize - 20;
    assert_eq!(inner_len, e.segments[1].len());
    f.extend_from_slice(&arp);
    let udp_len = (20 + arp.len()) as u16;
    f[58..60].copy_from_slice(&udp_len.to_be_bytes());
    f[18..20].copy_from_slice(&udp_len.to_be_bytes());
    assert!(matches!(
        network(&f),
        Err(ParseError::Unwanted(Mismatch {
            hdr: HeaderKind::Ethernet,
            field: "ether_type",
            ..
        }))
    ));
}

fn geneve_with(opts: Vec<GeneveOpt>) -> Vec<u8> {
    let inner = samples::ulp("V4-Udp-IN-0B").unwrap().segments[1].clone();
    let e = Encap {
        eth: EtherRepr {
            src: samples::BOUNDARY_MAC,
            dst: samples::GUEST_MAC,
            ether_type: 0x86dd,
            vlan: None,
        },
        ip6: Ipv6Repr::new(samples::BOUNDARY_IP6, samples::SLED_IP6, 17),
        udp: UdpRepr::new(1, 6081),
        geneve: GeneveRepr::new(Vni::new(7).unwrap(), opts),
    };
    let mut f = e.header_bytes(inner.len());
    f.extend_from_slice(&inner);
    f
}

#[test]
fn unknown_critical_geneve_option_is_refused() {
    let crit = GeneveOpt {
        class: 0xffff,
        ty: 0x81,
        data: vec![0; 4],
    };
    assert_eq!(
        network(&geneve_with(vec![GeneveOpt::oxide_external(), crit])),
        Err(ParseError::UnrecognisedTunnelOpt {
            class: 0xffff,
            ty: 0x81
        })
    );
    let oxide_unknown_crit = GeneveOpt {
        class: 0x0129,
        ty: 0x85,
        data: vec![],
    };
    assert!(network(&geneve_with(vec![oxide_unknown_crit])).is_err());
    // Unknown but not critical: skipped.
    let benign = GeneveOpt {
        class: 0xffff,
        ty: 0x01,
        data: vec![1, 2, 3, 4],
    };
    let m = network(&geneve_with(vec![benign, GeneveOpt::oxide_external()])).unwrap();
    assert!(m.outer.geneve.external);
    assert_eq!(m.outer.geneve.hdr_len, 8 + 8 + 4);
}

#[test]
fn every_truncation_of_every_sample_is_an_error_not_a_panic() {
    for s in samples::all() {
        let f = s.frame();
        for len in 0..f.len() {
            let r = match s.side {
                Side::Guest => guest(&f[..len]).map(|_| ()),
                Side::Network => network(&f[..len]).map(|_| ()),
            };
            // Cutting off the payload of a frame whose lengths no longer fit must fail; a cut
            // inside an L4 payload is always caught by the IP length.
            if len < f.len() {
                assert!(r.is_err(), "{} cut to {len} parsed", s.name);
            }
        }
    }
}

#[test]
fn encap_push_and_pop_in_headroom() {
    let s = samples::ulp("V4-Tcp-OUT-1400B").unwrap();
    let original = s.frame();
    let mut pkt = s.packet();
    let payload_ptr = pkt.segment(0).unwrap().data().as_ptr();
    let mut e = Encap {
        eth: EtherRepr {
            src: opte_api::MacAddr::ZERO,
            dst: opte_api::MacAddr::ZERO,
            ether_type: 0x86dd,
            vlan: None,
        },
        ip6: Ipv6Repr::new(samples::SLED_IP6, samples::BOUNDARY_IP6, 17),
        udp: UdpRepr::new(0x1234, 6081),
        geneve: GeneveRepr::new(Vni::new(99).unwrap(), vec![]),
    };
    e.ip6.hop_limit = 128;
    let bytes = e.header_bytes(original.len());
    assert_eq!(bytes.len(), 70);
    pkt.prepend(70).copy_from_slice(&bytes);
    assert_eq!(
        pkt.seg_count(),
        1,
        "the encapsulation went into the headroom"
    );
    assert_eq!(pkt.segment(0).unwrap().data()[70..].as_ptr(), payload_ptr);
    let m = parse_network(&mut pkt).unwrap();
    assert_eq!(m.outer.geneve.vni.as_u32(), 99);
    assert_eq!(m.inner.flow.proto_info, [10010, 80]);
    assert_eq!(m.inner.body_len, 1400);

    pkt.trim_front(m.outer.encap_len()).unwrap();
    assert_eq!(pkt.to_vec(), original);
    assert_eq!(pkt.segment(0).unwrap().data().as_ptr(), payload_ptr);
    let g = parse_guest(&mut pkt).unwrap();
    assert_eq!(
        g.flow.addrs,
        AddrPair::V4 {
            src: samples::GUEST_IP4,
            dst: Ipv4Addr::from_const([93, 184, 216, 34])
        }
    );
}

#[test]
fn built_frames_have_valid_checksums() {
    for s in samples::all() {
        let f = s.frame();
        let mut pkt = Packet::copy_from(&f);
        let inner = match s.side {
            Side::Guest => parse_guest(&mut pkt).unwrap(),
            Side::Network => parse_network(&mut pkt).unwrap().inner,
        };
        if let Some(L3Info::Ipv4(ip)) = inner.l3 {
            let h = pkt.bytes_at(ip.loc, usize::from(ip.hdr_len)).unwrap();
            assert_eq!(
                Checksum::of(h).fold(),
                0xffff,
                "{}: IPv4 header checksum",
                s.name
            );
        }
        // Later fragments carry no L4 header, and a first fragment's checksum covers the
        // whole datagram; the others must check out on their own.
        if let (Some(u), None) = (inner.ulp, inner.frag) {
            let l4_len = usize::from(u.hdr_len) + inner.body_len as usize;
            let l4 = pkt.bytes_at(u.loc, l4_len).unwrap();
            let mut c = Checksum::of(l4);
            match inner.flow.addrs {
                AddrPair::V4 { src, dst } if u.kind != UlpKind::Icmpv4 => {
                    c.add(opte::wire::csum::pseudo_v4(
                        src.bytes(),
                        dst.bytes(),
                        inner.flow.proto,
                        l4_len as u16,
                    ))
                }
                AddrPair::V6 { src, dst } => c.add(opte::wire::csum::pseudo_v6(
                    src.bytes(),
                    dst.bytes(),
                    inner.flow.proto,
                    l4_len as u32,
                )),
                _ => {}
            }
            assert_eq!(c.fold(), 0xffff, "{}: L4 checksum", s.name);
        }
    }
}

#[test]
fn fast_path_agrees_with_the_general_parser() {
    use opte::packet::parse::{parse_guest_general, parse_network_general};
    for s in samples::all() {
        // As delivered, and as one contiguous buffer.
        for mut pkt in [s.packet(), Packet::copy_from(&s.frame())] {
            let mut general = pkt.clone();
            match s.side {
                Side::Guest => assert_eq!(
                    parse_guest(&mut pkt),
                    parse_guest_general(&mut general),
                    "{}",
                    s.name
                ),
                Side::Network => assert_eq!(
                    parse_network(&mut pkt),
                    parse_network_general(&mut general),
                    "{}",
                    s.name
                ),
            }
        }
    }
}

#[test]
fn zero_byte_and_empty_segment_packets() {
    // A packet with no bytes is a truncated Ethernet header, not a panic.
    let mut empty = Packet::copy_from(&[]);
    assert!(empty.is_empty());
    assert!(matches!(
        parse_guest(&mut empty),
        Err(ParseError::Truncated {
            hdr: HeaderKind::Ethernet,
            need: 14,
            have: 0
        })
    ));
    assert!(parse_network(&mut Packet::from_segments(&[])).is_err());
    // Empty segments anywhere in a chain are stepped over.
    let f = samples::ulp("V6-Tcp-OUT-0B").unwrap().frame();
    let mut pkt = Packet::from_segments(&[&[], &f[..14], &[], &[], &f[14..54], &[], &f[54..]]);
    let m = parse_guest(&mut pkt).unwrap();
    assert_eq!(m.flow.proto_info, [10010, 80]);
    assert_eq!(pkt.to_vec(), f);
}

#[test]
fn long_chain_of_one_byte_segments() {
    let f = samples::ulp("V4-Udp-OUT-1400B").unwrap().frame();
    let segs: Vec<&[u8]> = f.chunks(1).collect();
    let mut pkt = Packet::from_segments(&segs);
    assert_eq!(pkt.seg_count(), f.len());
    let m = parse_guest(&mut pkt).unwrap();
    assert_eq!((m.flow.proto_info, m.body_len), ([10010, 80], 1400));
    // Only the headers were joined; the body stays in its segments.
    assert_eq!(pkt.len(), f.len());
    assert!(pkt.seg_count() > 1000);
    assert_eq!(pkt.to_vec(), f);
}
