//! Fragmented IP datagrams through a VPC port: every fragment of a datagram is processed as
//! the flow of its first fragment (SNAT and un-NAT of the addresses, the first fragment's
//! ports, encapsulation), and port-based firewall rules judge the whole datagram by its
//! first fragment. Checked on real fragment trains: each output fragment's IPv4 header
//! checksum, its untouched payload, and the UDP checksum of the datagram reassembled as the
//! receiver would.

mod common;

use common::*;
use opte::build::fragment_ipv4;
use opte::engine::port::ProcessResult;
use opte::engine::stats::{DenyReason, DropReason};
use opte::engine::time::Moment;
use opte::packet::parse::{L3Info, parse_guest};
use opte::wire::csum::Checksum;
use opte::wire::ip4::fill_header_csum;
use opte_api::{IpAddr, Ipv4Addr};
use oxide_vpc::api::FirewallRule;
use oxide_vpc::tables::VpcTables;
use std::sync::Arc;

const T0: Moment = Moment::from_secs(100);
const SNAT_IP: &str = "10.77.77.13";
const ETH: usize = 14;

/// A 3000-byte body that shows where every byte came from.
fn body() -> Vec<u8> {
    (0..3000u32).map(|i| (i * 7 % 251) as u8).collect()
}

/// `frame` with IPv4 identification `ident` (header checksum refreshed).
fn with_ident(mut frame: Vec<u8>, ident: u16) -> Vec<u8> {
    frame[ETH + 4..ETH + 6].copy_from_slice(&ident.to_be_bytes());
    let hl = usize::from(frame[ETH] & 0x0f) * 4;
    fill_header_csum(&mut frame[ETH..ETH + hl]);
    frame
}

/// The three fragments (1480 + 1480 + 48 bytes of the 3008-byte UDP datagram) of a frame.
fn fragments(frame: &[u8]) -> Vec<Vec<u8>> {
    let f = fragment_ipv4(frame, 1480).unwrap();
    assert_eq!(f.len(), 3);
    f
}

/// A fragment's IPv4 header fields and payload, after checking its header checksum.
struct Frag {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ident: u16,
    /// Offset in bytes, more-fragments flag.
    offset: usize,
    more: bool,
    payload: Vec<u8>,
}

fn frag(frame: &[u8]) -> Frag {
    let m = parse_guest(&mut opte::packet::Packet::copy_from(frame)).unwrap();
    let Some(L3Info::Ipv4(i)) = m.l3 else {
        panic!("not IPv4");
    };
    let off = i.loc.off as usize;
    let hdr = &frame[off..off + i.hdr_len as usize];
    assert_eq!(Checksum::of(hdr).fold(), 0xffff, "IPv4 header checksum");
    let ff = u16::from_be_bytes([hdr[6], hdr[7]]);
    Frag {
        src: Ipv4Addr::from([hdr[12], hdr[13], hdr[14], hdr[15]]),
        dst: Ipv4Addr::from([hdr[16], hdr[17], hdr[18], hdr[19]]),
        ident: u16::from_be_bytes([hdr[4], hdr[5]]),
        offset: usize::from(ff & 0x1fff) * 8,
        more: ff & 0x2000 != 0,
        payload: frame[off + i.hdr_len as usize..off + i.total_len as usize].to_vec(),
    }
}

/// The datagram the receiver reassembles from `frames` (Ethernet header of the first).
fn reassemble(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut data = Vec::new();
    for f in frames {
        let fr = frag(f);
        assert_eq!(fr.offset, data.len(), "fragments in order, no gaps");
        data.extend_from_slice(&fr.payload);
    }
    let first = &frames[0];
    let mut whole = first[..ETH + 20].to_vec();
    whole[ETH + 2..ETH + 4].copy_from_slice(&((20 + data.len()) as u16).to_be_bytes());
    whole[ETH + 6..ETH + 8].copy_from_slice(&[0, 0]);
    fill_header_csum(&mut whole[ETH..ETH + 20]);
    whole.extend_from_slice(&data);
    whole
}

/// A guest on the internet (IGW routes, SNAT to 10.77.77.13).
struct Guest {
    g1: oxide_vpc::api::VpcCfg,
    port: oxide_vpc::engine::VpcPort,
    _tables: Arc<VpcTables>,
}

/// A guest on the internet, and the fragments of its 3000-byte UDP datagram from port 7777
/// to a remote's 5353, with IPv4 identification `ident`.
fn outbound(ident: u16) -> (Guest, Vec<Vec<u8>>) {
    let tables = Arc::new(VpcTables::default());
    let g1 = g1_cfg();
    let mut port = setup(g1.clone(), &tables);
    add_igw_routes(&mut port, None);
    let f = frame(
        g1.guest_mac,
        g1.gateway_mac,
        IpAddr::Ip4(ip4(&g1)),
        p(REMOTE4),
        udp(7777, 5353),
        &body(),
    );
    (
        Guest {
            g1,
            port,
            _tables: tables,
        },
        fragments(&with_ident(f, ident)),
    )
}

#[test]
fn every_fragment_of_an_outbound_datagram_is_snatted_and_the_reply_un_natted() {
    let rec = Recorder::new("fragments_snat");
    let (mut c, frags) = outbound(0x1234);
    let g1 = c.g1.clone();
    let originals: Vec<Frag> = frags.iter().map(|f| frag(f)).collect();

    // Out: each fragment leaves encapsulated to boundary services, from the SNAT address.
    let mut inner = Vec::new();
    for f in &frags {
        let (r, mut pkt) = out(&mut c.port, &rec, opte::packet::Packet::copy_from(f), T0);
        assert_eq!(r, ProcessResult::Modified);
        let n = net(&mut pkt);
        assert_eq!((n.outer.src, n.outer.dst), (g1.phys_ip, p(BOUNDARY_IP)));
        assert_eq!(n.outer.geneve.vni, vni(BOUNDARY_VNI));
        inner.push(inner_frame(&mut pkt));
    }
    let st = c.port.port().stats();
    assert_eq!(
        (st.out.modified, st.out.uft_hit),
        (3, 2),
        "later fragments hit the UFT"
    );
    let mut sport = 0;
    for (i, (f, o)) in inner.iter().zip(&originals).enumerate() {
        let fr = frag(f);
        assert_eq!((fr.src, fr.dst), (p(SNAT_IP), p(REMOTE4)), "fragment {i}");
        assert_eq!((fr.ident, fr.offset, fr.more), (o.ident, o.offset, o.more));
        if i == 0 {
            // The UDP header: source port rewritten, checksum fixed; the data untouched.
            sport = u16::from_be_bytes([fr.payload[0], fr.payload[1]]);
            assert!((1025..=4096).contains(&sport), "{sport}");
            assert_eq!(fr.payload[2..4], 5353u16.to_be_bytes());
            assert_eq!(fr.payload[8..], o.payload[8..]);
        } else {
            assert_eq!(
                fr.payload, o.payload,
                "a later fragment's bytes are payload"
            );
        }
    }
    // What the remote reassembles is a valid datagram from the SNAT address and port.
    let whole = reassemble(&inner);
    let m = assert_csums_valid(&whole);
    assert_eq!(m.flow.src_ip(), p::<IpAddr>(SNAT_IP));
    assert_eq!((m.flow.src_port(), m.flow.dst_port()), (sport, 5353));
    assert_eq!(l4_body(&whole, &m), &body()[..]);

    // In: the reply, fragmented the same way, comes back to the guest's address and port.
    let reply = with_ident(
        frame(
            p(TEP_MAC),
            g1.guest_mac,
            p(REMOTE4),
            p(SNAT_IP),
            udp(5353, sport),
            &body(),
        ),
        0x4321,
    );
    let mut delivered = Vec::new();
    for f in fragments(&reply) {
        let pkt = encap(p(BOUNDARY_IP), g1.phys_ip, g1.vni, true, &f);
        let (r, pkt) = inb(&mut c.port, &rec, pkt, T0);
        assert_eq!(r, ProcessResult::Modified);
        delivered.push(pkt.to_vec());
    }
    for f in &delivered {
        let fr = frag(f);
        assert_eq!((fr.src, fr.dst), (p(REMOTE4), ip4(&g1)));
        assert_eq!(fr.ident, 0x4321);
    }
    let whole = reassemble(&delivered);
    let m = assert_csums_valid(&whole);
    assert_eq!(m.flow.dst_ip(), IpAddr::Ip4(ip4(&g1)));
    assert_eq!((m.flow.src_port(), m.flow.dst_port()), (5353, 7777));
    assert_eq!((m.eth.src, m.eth.dst), (g1.gateway_mac, g1.guest_mac));
    assert_eq!(l4_body(&whole, &m), &body()[..]);
    let st = c.port.port().stats();
    assert_eq!((st.r#in.modified, st.r#in.uft_hit), (3, 2));
}

#[test]
fn a_later_fragment_without_its_first_is_dropped_and_counted() {
    let rec = Recorder::new("fragments_unknown");
    let (mut c, frags) = outbound(0x1111);
    let unknown = ProcessResult::Drop(DropReason::UnknownFragment);
    // Reordered: the second fragment before the first has no datagram to belong to.
    let pkt = || opte::packet::Packet::copy_from(&frags[1]);
    assert_eq!(out(&mut c.port, &rec, pkt(), T0).0, unknown);
    let first = opte::packet::Packet::copy_from(&frags[0]);
    assert_eq!(out(&mut c.port, &rec, first, T0).0, ProcessResult::Modified);
    assert_eq!(out(&mut c.port, &rec, pkt(), T0).0, ProcessResult::Modified);
    // The datagram is remembered for a few seconds only.
    assert_eq!(out(&mut c.port, &rec, pkt(), T0.plus_secs(6)).0, unknown);
    // Another identification is another datagram.
    let (_, other) = outbound(0x2222);
    let o = opte::packet::Packet::copy_from(&other[2]);
    assert_eq!(out(&mut c.port, &rec, o, T0).0, unknown);
    let st = c.port.port().stats().out;
    assert_eq!(st.drop_unknown_fragment, 3);
    assert_eq!(st.results(), 5);
}

#[test]
fn a_udp_port_rule_admits_every_fragment_to_its_port_and_none_to_another() {
    let rec = Recorder::new("fragments_firewall");
    let tables = Arc::new(VpcTables::default());
    let (g1, g2) = (g1_cfg(), g2_cfg());
    let mut p1 = setup(g1.clone(), &tables);
    register(&tables, &g2);
    // Only UDP to port 5000 comes in, even from the VPC.
    let rule: FirewallRule = "dir=in action=allow priority=100 protocol=udp port=5000"
        .parse()
        .unwrap();
    p1.set_fw_rules(&[rule]).unwrap();
    let train = |dport: u16, ident: u16| {
        let f = frame(
            g2.guest_mac,
            g1.guest_mac,
            IpAddr::Ip4(ip4(&g2)),
            IpAddr::Ip4(ip4(&g1)),
            udp(6000, dport),
            &body(),
        );
        fragments(&with_ident(f, ident))
            .iter()
            .map(|f| encap(g2.phys_ip, g1.phys_ip, g1.vni, false, f))
            .collect::<Vec<_>>()
    };
    let mut delivered = Vec::new();
    for pkt in train(5000, 1) {
        let (r, pkt) = inb(&mut p1, &rec, pkt, T0);
        assert_eq!(r, ProcessResult::Modified);
        delivered.push(pkt.to_vec());
    }
    let whole = reassemble(&delivered);
    let m = assert_csums_valid(&whole);
    assert_eq!(m.flow.dst_port(), 5000);
    assert_eq!(l4_body(&whole, &m), &body()[..]);

    // To port 5001: the first fragment is denied by the firewall, so the others belong to
    // no datagram the port passed.
    let results: Vec<ProcessResult> = train(5001, 2)
        .into_iter()
        .map(|pkt| inb(&mut p1, &rec, pkt, T0).0)
        .collect();
    assert_eq!(
        results,
        [
            ProcessResult::Drop(DropReason::Layer {
                layer: "firewall",
                reason: DenyReason::Default,
            }),
            ProcessResult::Drop(DropReason::UnknownFragment),
            ProcessResult::Drop(DropReason::UnknownFragment),
        ]
    );
    let st = p1.port().stats().r#in;
    assert_eq!(
        (st.modified, st.drop_layer, st.drop_unknown_fragment),
        (3, 1, 2)
    );
}

/// An IPv6 fragment's source, destination, identification, offset and data, read at the
/// fixed positions `fragment_ipv6` puts them (Ethernet, IPv6, Fragment header, data).
fn frag6(frame: &[u8]) -> (IpAddr, IpAddr, u32, usize, Vec<u8>) {
    let ip = &frame[ETH..];
    assert_eq!(ip[6], 44, "a Fragment header follows");
    let plen = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
    let src: [u8; 16] = ip[8..24].try_into().unwrap();
    let dst: [u8; 16] = ip[24..40].try_into().unwrap();
    let fh = &ip[40..48];
    let offset = usize::from(u16::from_be_bytes([fh[2], fh[3]]) & 0xfff8);
    let ident = u32::from_be_bytes(fh[4..8].try_into().unwrap());
    (
        IpAddr::Ip6(src.into()),
        IpAddr::Ip6(dst.into()),
        ident,
        offset,
        ip[48..40 + plen].to_vec(),
    )
}

#[test]
fn ipv6_fragments_are_snatted_as_their_first_fragments_flow() {
    let rec = Recorder::new("fragments_snat_v6");
    let tables = Arc::new(VpcTables::default());
    let g1 = g1_cfg();
    let mut port = setup(g1.clone(), &tables);
    add_igw_routes(&mut port, None);
    let f = frame(
        g1.guest_mac,
        g1.gateway_mac,
        IpAddr::Ip6(ip6(&g1)),
        p(REMOTE6),
        udp(7777, 5353),
        &body(),
    );
    let frags = opte::build::fragment_ipv6(&f, 1232, 0xabcd_0001).unwrap();
    assert_eq!(frags.len(), 3);
    let mut data = Vec::new();
    let mut sport = 0;
    for (i, f) in frags.iter().enumerate() {
        let (r, mut pkt) = out(&mut port, &rec, opte::packet::Packet::copy_from(f), T0);
        assert_eq!(r, ProcessResult::Modified, "fragment {i}");
        let (src, dst, ident, offset, payload) = frag6(&inner_frame(&mut pkt));
        let (_, _, _, _, original) = frag6(f);
        assert_eq!((src, dst), (p("2001:db8::1"), p(REMOTE6)));
        assert_eq!((ident, offset), (0xabcd_0001, data.len()));
        if i == 0 {
            sport = u16::from_be_bytes([payload[0], payload[1]]);
            assert!((4097..=8192).contains(&sport), "{sport}");
            assert_eq!(payload[8..], original[8..]);
        } else {
            assert_eq!(payload, original);
        }
        data.extend_from_slice(&payload);
    }
    // Reassembled: a datagram whose UDP checksum holds for the SNAT address and port.
    let mut whole = f[..ETH + 40].to_vec();
    whole[ETH + 4..ETH + 6].copy_from_slice(&(data.len() as u16).to_be_bytes());
    whole[ETH + 8..ETH + 24].copy_from_slice(&p::<opte_api::Ipv6Addr>("2001:db8::1").bytes());
    whole.extend_from_slice(&data);
    let m = assert_csums_valid(&whole);
    assert_eq!((m.flow.src_port(), m.flow.dst_port()), (sport, 5353));
    assert_eq!(port.port().stats().out.uft_hit, 2);
}
