//! The Oxide Geneve options as the network-side parser reads them (SPEC §4.7 "Oxide Geneve
//! options", §11.2 geneve): Geneve headers written out byte by byte, not by our emitter, so
//! these pin the wire format. External (type 0, no body), Multicast (type 1, replication in
//! the top two bits of a 4-byte body) and Mss (type 2, 4-byte big-endian) are known; other
//! options are skipped unless critical (RFC 8926 §3.5).

mod common;

use common::*;
use opte::engine::port::ProcessResult;
use opte::engine::time::Moment;
use opte::packet::{Packet, ParseError};
use opte::wire::ether::{ETHER_TYPE_IPV6, EtherRepr};
use opte::wire::geneve::{GENEVE_OPT_CLASS_OXIDE, GeneveOpts, GeneveRepr, Replication};
use opte::wire::ip6::Ipv6Repr;
use opte::wire::udp::UdpRepr;
use opte_api::{IpAddr, MacAddr};
use oxide_vpc::tables::VpcTables;
use std::sync::Arc;

/// g1's VNI, 1287581, as the three bytes of the Geneve VNI field.
const VNI_BYTES: [u8; 3] = [0x13, 0xa5, 0x9d];

/// A Geneve base header: version 0, `opt_words` 4-byte words of options, flags, Ethernet.
fn base(opt_words: u8, flags: u8) -> Vec<u8> {
    let [a, b, c] = VNI_BYTES;
    vec![opt_words, flags, 0x65, 0x58, a, b, c, 0x00]
}

/// The inner frame: UDP from g2 to g1.
fn inner() -> Vec<u8> {
    let (g1, g2) = (g1_cfg(), g2_cfg());
    frame(
        g2.guest_mac,
        g1.guest_mac,
        IpAddr::Ip4(ip4(&g2)),
        IpAddr::Ip4(ip4(&g1)),
        udp(1000, 53),
        b"abcd",
    )
}

/// A frame from the underlay whose Geneve header (base and options) is `geneve`, byte for
/// byte, around [`inner`].
fn with_geneve(geneve: &[u8]) -> Vec<u8> {
    let inner = inner();
    let g1 = g1_cfg();
    let outer = opte::build::Encap {
        eth: EtherRepr {
            dst: MacAddr::ZERO,
            src: MacAddr::ZERO,
            ether_type: ETHER_TYPE_IPV6,
            vlan: None,
        },
        ip6: Ipv6Repr::new(p(BOUNDARY_IP), g1.phys_ip, 17),
        udp: UdpRepr::new(7777, 6081),
        geneve: GeneveRepr::new(g1.vni, vec![]),
    }
    // The lengths above the Geneve header count our options as inner bytes.
    .header_bytes(inner.len() + geneve.len() - 8);
    let mut f = outer[..outer.len() - 8].to_vec();
    f.extend_from_slice(geneve);
    f.extend_from_slice(&inner);
    f
}

fn parse(geneve: &[u8]) -> Result<opte::packet::parse::NetworkMeta, ParseError> {
    opte::packet::parse::parse_network(&mut Packet::copy_from(&with_geneve(geneve)))
}

#[test]
fn parse_single_opt() {
    let mut g = base(1, 0x00);
    g.extend_from_slice(&[0x01, 0x29, 0x00, 0x00]);
    let m = parse(&g).unwrap();
    assert!(m.outer.geneve.external);
    assert_eq!(
        (m.outer.geneve.replication, m.outer.geneve.mss),
        (None, None)
    );
    assert_eq!(m.outer.geneve.hdr_len, 12);
    assert_eq!(m.outer.geneve.vni, g1_cfg().vni);
    let opts: Vec<_> = GeneveOpts::new(&g[8..]).map(Result::unwrap).collect();
    assert_eq!(opts.len(), 1);
    assert_eq!(
        (opts[0].0.class.get(), opts[0].0.ty, opts[0].1.len()),
        (GENEVE_OPT_CLASS_OXIDE, 0, 0)
    );
    // Without the option the packet is from inside the rack.
    assert!(!parse(&base(0, 0)).unwrap().outer.geneve.external);
}

#[test]
fn parse_multicast_replication_values() {
    for (bits, want) in [
        (0u8, Replication::External),
        (1, Replication::Underlay),
        (2, Replication::Both),
    ] {
        let mut g = base(2, 0x00);
        g.extend_from_slice(&[0x01, 0x29, 0x01, 0x01, bits << 6, 0x00, 0x00, 0x00]);
        let m = parse(&g).unwrap();
        assert_eq!(m.outer.geneve.replication, Some(want), "bits {bits}");
        assert!(!m.outer.geneve.external);
        // The low 30 bits are reserved and ignored.
        g[13..16].copy_from_slice(&[0xff, 0xff, 0xff]);
        g[12] |= 0x3f;
        assert_eq!(parse(&g).unwrap().outer.geneve.replication, Some(want));
    }
    // The reserved value parses and is treated as no replication (SPEC §4.7).
    let mut g = base(2, 0x00);
    g.extend_from_slice(&[0x01, 0x29, 0x01, 0x01, 3 << 6, 0x00, 0x00, 0x00]);
    assert_eq!(parse(&g).unwrap().outer.geneve.replication, None);
    // A multicast option without its body is malformed.
    let mut g = base(1, 0x00);
    g.extend_from_slice(&[0x01, 0x29, 0x01, 0x00]);
    assert!(matches!(parse(&g), Err(ParseError::BadLength(_))));
}

#[test]
fn unknown_crit_option_fails() {
    // An experimenter class's critical option, with the C flag set as RFC 8926 requires.
    let mut g = base(1, 0x40);
    g.extend_from_slice(&[0xff, 0xff, 0x80, 0x00]);
    assert_eq!(
        parse(&g).unwrap_err(),
        ParseError::UnrecognisedTunnelOpt {
            class: 0xffff,
            ty: 0x80
        }
    );
    // Our own class is no exception for a type we do not know. The critical bit is part of
    // the type: 0x80 is not External (type 0) but an unknown critical option, as the
    // reference's test has it.
    for ty in [0x80, 0x81, 0x82, 0x85] {
        let mut g = base(1, 0x40);
        g.extend_from_slice(&[0x01, 0x29, ty, 0x00]);
        assert_eq!(
            parse(&g).unwrap_err(),
            ParseError::UnrecognisedTunnelOpt {
                class: GENEVE_OPT_CLASS_OXIDE,
                ty
            }
        );
    }
    // The same unknown types without the critical bit are skipped.
    for opt in [[0xff, 0xff, 0x00, 0x00], [0x01, 0x29, 0x05, 0x00]] {
        let mut g = base(1, 0x00);
        g.extend_from_slice(&opt);
        let m = parse(&g).unwrap();
        assert!(!m.outer.geneve.external, "{opt:?}");
        assert_eq!(m.outer.geneve.hdr_len, 12);
    }
}

#[test]
fn parse_multi_opt() {
    // External, then two experimenter options with 4-byte bodies: none critical.
    let mut g = base(5, 0x00);
    g.extend_from_slice(&[0x01, 0x29, 0x00, 0x00]);
    g.extend_from_slice(&[0xff, 0xff, 0x05, 0x01, 0x00, 0x00, 0x00, 0x00]);
    g.extend_from_slice(&[0xff, 0xff, 0x06, 0x01, 0x00, 0x00, 0x00, 0x00]);
    let m = parse(&g).unwrap();
    assert!(m.outer.geneve.external);
    assert_eq!(m.outer.geneve.hdr_len, 28);
    assert_eq!(GeneveOpts::new(&g[8..]).count(), 3);
    assert!(GeneveOpts::new(&g[8..]).all(|o| o.is_ok()));
    // The known options are found wherever they sit among the unknown ones.
    let mut g = base(9, 0x00);
    g.extend_from_slice(&[0xff, 0xff, 0x05, 0x01, 0x00, 0x00, 0x00, 0x00]);
    g.extend_from_slice(&[0x01, 0x29, 0x02, 0x01, 0x00, 0x00, 0x05, 0xa8]);
    g.extend_from_slice(&[0xff, 0xff, 0x06, 0x01, 0x00, 0x00, 0x00, 0x00]);
    g.extend_from_slice(&[0x01, 0x29, 0x00, 0x00]);
    g.extend_from_slice(&[0x01, 0x29, 0x01, 0x01, 0x80, 0x00, 0x00, 0x00]);
    let m = parse(&g).unwrap();
    assert!(m.outer.geneve.external);
    assert_eq!(m.outer.geneve.mss, Some(1448));
    assert_eq!(m.outer.geneve.replication, Some(Replication::Both));
    assert_eq!(m.outer.geneve.hdr_len, 8 + 36);
}

/// With every known option present, the Geneve length covers them all, the inner frame
/// starts right after them, and a port's decap leaves exactly the inner frame.
#[test]
fn option_packet_length_with_known_options() {
    let mut g = base(5, 0x00);
    g.extend_from_slice(&[0x01, 0x29, 0x00, 0x00]);
    g.extend_from_slice(&[0x01, 0x29, 0x01, 0x01, 0x40, 0x00, 0x00, 0x00]);
    g.extend_from_slice(&[0x01, 0x29, 0x02, 0x01, 0x00, 0x00, 0x05, 0xdc]);
    let f = with_geneve(&g);
    let m = parse(&g).unwrap();
    let ge = m.outer.geneve;
    assert!(ge.external);
    assert_eq!(ge.replication, Some(Replication::Underlay));
    assert_eq!(ge.mss, Some(1500));
    assert_eq!(ge.hdr_len, 8 + 20);
    assert_eq!(m.outer.encap_len(), 14 + 40 + 8 + 28);
    assert_eq!(m.outer.encap_len() + inner().len(), f.len());
    let (g1, g2) = (g1_cfg(), g2_cfg());
    assert_eq!(
        (m.inner.eth.src, m.inner.eth.dst),
        (g2.guest_mac, g1.guest_mac)
    );
    assert_eq!(m.inner.body_len, 4);
    assert_eq!(&f[m.inner.body.off as usize..], b"abcd");

    let rec = Recorder::new("option_packet_length_with_known_options");
    let tables = Arc::new(VpcTables::default());
    let mut port = setup(g1.clone(), &tables);
    port.add_fw_rule(&p("dir=in action=allow priority=10 protocol=udp"))
        .unwrap();
    let (r, pkt) = inb(&mut port, &rec, Packet::copy_from(&f), Moment::ZERO);
    assert_eq!(r, ProcessResult::Modified);
    let got = pkt.to_vec();
    let want = inner();
    assert_eq!(got.len(), want.len());
    // Decapsulated; only the source MAC is rewritten to the gateway's.
    assert_eq!(&got[6..12], &g1.gateway_mac.bytes()[..]);
    assert_eq!(&got[12..], &want[12..]);
}
