//! Malformed and unusual packets at the edge of a VPC port (SPEC §11.1 "Parsing / Geneve"):
//! bad lengths are parse errors naming the field, never panics; a Geneve option we do not
//! know is refused only when critical; an outer Hop-by-Hop header before UDP is walked.

mod common;

use common::*;
use opte::build::{Encap, samples};
use opte::engine::port::ProcessResult;
use opte::engine::time::Moment;
use opte::engine::view::Parsed;
use opte::packet::parse::{parse_guest, parse_network};
use opte::packet::{Expected, Mismatch, Packet, ParseError};
use opte::wire::HeaderKind;
use opte::wire::ether::{ETHER_TYPE_IPV6, EtherRepr};
use opte::wire::geneve::{
    GENEVE_FLAG_CRITICAL, GENEVE_OPT_CLASS_OXIDE, GeneveOpt, GeneveRepr, Replication,
};
use opte::wire::ip6::Ipv6Repr;
use opte::wire::tcp::flags;
use opte::wire::udp::UdpRepr;
use opte_api::{Direction, IpAddr, MacAddr, MulticastUnderlay};
use oxide_vpc::tables::VpcTables;
use std::sync::Arc;

const T0: Moment = Moment::ZERO;

#[test]
fn bad_ip_len_is_a_parse_error_naming_the_field() {
    let g1 = g1_cfg();
    let mut f = frame(
        g1.guest_mac,
        g1.gateway_mac,
        IpAddr::Ip4(ip4(&g1)),
        p(REMOTE4),
        tcp(1, 80, flags::SYN),
        &[],
    );
    f[16..18].copy_from_slice(&4u16.to_be_bytes());
    let e = parse_guest(&mut Packet::copy_from(&f)).unwrap_err();
    assert_eq!(
        e,
        ParseError::BadLength(Mismatch {
            hdr: HeaderKind::Ipv4,
            field: "total_len",
            expected: Expected::AtLeast(20),
            actual: 4,
        })
    );
    assert_eq!(e.reason(), "bad_length");
    assert_eq!(
        e.to_string(),
        "bad length: Ipv4.total_len: expected at least 20, found 4"
    );
    // Longer than the frame: also refused, with the bound it broke.
    f[16..18].copy_from_slice(&9000u16.to_be_bytes());
    let e = parse_guest(&mut Packet::copy_from(&f)).unwrap_err();
    assert!(
        matches!(
            e,
            ParseError::BadLength(Mismatch {
                hdr: HeaderKind::Ipv4,
                field: "total_len",
                expected: Expected::AtMost(40),
                actual: 9000,
            })
        ),
        "{e:?}"
    );
}

/// Every truncation and every single-byte corruption of every sample packet either fails
/// to parse with an error value, or parses and goes through a running port to a counted
/// result. Nothing panics, and every processed packet lands in exactly one counter.
#[test]
fn malformed_packets_are_counted_errors_never_panics() {
    let tables = Arc::new(VpcTables::default());
    let mut port = setup(g1_cfg(), &tables);
    add_igw_routes(&mut port, None);
    set_ephemeral(&mut port, Some("10.60.1.20"), Some("2001:db8::2"));
    let (mut errors, mut processed) = (0u64, 0u64);
    let mut run = |bytes: &[u8], side: samples::Side| {
        let mut pkt = Packet::copy_from(bytes);
        let (parsed, dir) = match side {
            samples::Side::Guest => match parse_guest(&mut pkt) {
                Ok(m) => (Parsed::Guest(m), Direction::Out),
                Err(_) => {
                    errors += 1;
                    return;
                }
            },
            samples::Side::Network => match parse_network(&mut pkt) {
                Ok(m) => (Parsed::Network(m), Direction::In),
                Err(_) => {
                    errors += 1;
                    return;
                }
            },
        };
        port.process(dir, &mut pkt, &parsed, T0);
        processed += 1;
    };
    for s in samples::all() {
        let f = s.frame();
        for n in 0..f.len() {
            run(&f[..n], s.side);
        }
        for i in 0..f.len().min(160) {
            for x in [0x00, 0xff, 0x80, 0x01] {
                let mut g = f.clone();
                g[i] ^= x;
                run(&g, s.side);
            }
        }
    }
    let st = port.port().stats();
    assert_eq!(st.r#in.results() + st.out.results(), processed);
    assert!(errors > 1000, "{errors} parse errors");
    assert!(processed > 100, "{processed} processed");
}

/// A Geneve frame from g2's sled to g1 carrying `options`, with an inner UDP packet to g1.
fn geneve_with(options: Vec<GeneveOpt>, hop_by_hop: bool) -> Packet {
    let (g1, g2) = (g1_cfg(), g2_cfg());
    let inner = frame(
        g2.guest_mac,
        g1.guest_mac,
        IpAddr::Ip4(ip4(&g2)),
        IpAddr::Ip4(ip4(&g1)),
        udp(1, 2),
        &[],
    );
    geneve_outer(g2.phys_ip, g1.phys_ip, g1.vni, options, hop_by_hop, &inner)
}

fn geneve_outer(
    src: opte_api::Ipv6Addr,
    dst: opte_api::Ipv6Addr,
    v: opte_api::Vni,
    options: Vec<GeneveOpt>,
    hop_by_hop: bool,
    inner: &[u8],
) -> Packet {
    let mut ip6 = Ipv6Repr::new(src, dst, 17);
    if hop_by_hop {
        // Hop-by-Hop (next header 0) holding one PadN option, then UDP.
        ip6.next_header = 0;
        ip6.ext = vec![17, 0, 1, 4, 0, 0, 0, 0];
    }
    let outer = Encap {
        eth: EtherRepr {
            dst: MacAddr::ZERO,
            src: MacAddr::ZERO,
            ether_type: ETHER_TYPE_IPV6,
            vlan: None,
        },
        ip6,
        udp: UdpRepr::new(7777, 6081),
        geneve: GeneveRepr::new(v, options),
    }
    .header_bytes(inner.len());
    Packet::from_segments(&[&outer, inner])
}

#[test]
fn drop_on_unknown_critical_geneve_option() {
    let rec = Recorder::new("drop_on_unknown_critical_geneve_option");
    let tables = Arc::new(VpcTables::default());
    let mut port = setup(g1_cfg(), &tables);
    port.add_fw_rule(&p("dir=in action=allow priority=10 protocol=udp"))
        .unwrap();
    let unknown = |ty: u8| GeneveOpt {
        class: GENEVE_OPT_CLASS_OXIDE,
        ty,
        data: vec![0; 4],
    };
    let mut pkt = geneve_with(vec![unknown(0x80 | 0x7f)], false);
    assert_ne!(
        pkt.to_vec()[14 + 40 + 8 + 1] & GENEVE_FLAG_CRITICAL,
        0,
        "C flag"
    );
    assert_eq!(
        parse_network(&mut pkt).unwrap_err(),
        ParseError::UnrecognisedTunnelOpt {
            class: GENEVE_OPT_CLASS_OXIDE,
            ty: 0xff
        }
    );
    // The same option, not critical, is skipped; so is another class's critical-free one.
    let other_class = GeneveOpt {
        class: 0x0101,
        ty: 0x05,
        data: vec![1, 2, 3, 4],
    };
    let pkt = geneve_with(vec![unknown(0x7f), other_class], false);
    let (r, mut pkt) = inb(&mut port, &rec, pkt, T0);
    assert_eq!(r, ProcessResult::Modified);
    assert_eq!(guest(&mut pkt).flow.dst_ip(), IpAddr::Ip4(ip4(&g1_cfg())));
    assert_eq!(
        port.port().stats().r#in.results(),
        1,
        "the refused one never got here"
    );
}

#[test]
fn v6_ext_hdr_geneve_offset_ok() {
    let rec = Recorder::new("v6_ext_hdr_geneve_offset_ok");
    let tables = Arc::new(VpcTables::default());
    let g1 = g1_cfg();
    let mut port = setup(g1.clone(), &tables);
    port.add_fw_rule(&p("dir=in action=allow priority=10 protocol=udp"))
        .unwrap();
    // Unicast: Hop-by-Hop before UDP parses and the inner packet is delivered.
    let mut pkt = geneve_with(vec![], true);
    let n = net(&mut pkt);
    assert_eq!(n.outer.ip6.ext_len, 8);
    assert_eq!(n.outer.ip6.proto, 17);
    assert_eq!(n.outer.geneve.vni, g1.vni);
    let (r, mut pkt) = inb(&mut port, &rec, pkt, T0);
    assert_eq!(r, ProcessResult::Modified);
    let m = guest(&mut pkt);
    assert_eq!((m.eth.src, m.eth.dst), (g1.gateway_mac, g1.guest_mac));
    assert_eq!(m.flow.dst_port(), 2);

    // Multicast: the replication option behind the extension header is found.
    let group: IpAddr = p("ff04::1:3");
    tables
        .m2p
        .set(group, MulticastUnderlay::new(p("ff04::99")).unwrap())
        .unwrap();
    let g2 = g2_cfg();
    let inner = frame(
        g2.guest_mac,
        p("33:33:00:01:00:03"),
        IpAddr::Ip6(ip6(&g2)),
        group,
        udp(5000, 5001),
        &[],
    );
    let mut pkt = geneve_outer(
        g2.phys_ip,
        p("ff04::99"),
        vni(77),
        vec![GeneveOpt::oxide_multicast(Replication::Underlay)],
        true,
        &inner,
    );
    let n = net(&mut pkt);
    assert_eq!(n.outer.ip6.ext_len, 8);
    assert_eq!(n.outer.geneve.replication, Some(Replication::Underlay));
    let (r, mut pkt) = inb(&mut port, &rec, pkt, T0);
    assert_eq!(r, ProcessResult::Modified);
    let m = guest(&mut pkt);
    assert_eq!(m.flow.dst_ip(), group);
    assert_eq!(m.eth.src, g1.gateway_mac);
}
