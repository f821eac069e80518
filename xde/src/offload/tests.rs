use super::*;
use alloc::vec;
use alloc::vec::Vec;
use core::ops::Range;
use opte::build::Encap;
use opte::build::samples::{L4, frame};
use opte::packet::Packet;
use opte::packet::parse::{parse_guest, parse_network};
use opte::wire::ether::{ETHER_TYPE_IPV6, EtherRepr};
use opte::wire::geneve::{GeneveOpt, GeneveRepr};
use opte::wire::ip6::Ipv6Repr;
use opte::wire::udp::UdpRepr;
use opte_api::{IpAddr, MacAddr, Vni};

const A: MacAddr = MacAddr::from_const([2, 8, 0x20, 1, 2, 3]);
const B: MacAddr = MacAddr::from_const([2, 8, 0x20, 4, 5, 6]);

fn addrs(v4: bool) -> (IpAddr, IpAddr) {
    if v4 {
        ("172.30.0.5".parse().unwrap(), "172.30.0.6".parse().unwrap())
    } else {
        ("fd00::5".parse().unwrap(), "fd00::6".parse().unwrap())
    }
}

/// A body whose bytes all differ in nearby positions, odd-length.
fn body(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

const SEQ: u32 = 0xffff_f000;

fn tcp_frame(v4: bool, flags: u8, seq: u32, body: &[u8]) -> Vec<u8> {
    let (s, d) = addrs(v4);
    frame(A, B, s, d, L4::tcp(40000, 5201, flags, seq, 77), body)
}

fn encap(inner: &[u8]) -> Vec<u8> {
    let e = Encap {
        eth: EtherRepr {
            dst: B,
            src: A,
            ether_type: ETHER_TYPE_IPV6,
            vlan: None,
        },
        ip6: Ipv6Repr::new(
            "fd00:1::1".parse().unwrap(),
            "fd00:2::1".parse().unwrap(),
            17,
        ),
        udp: UdpRepr::new(0xc123, 6081),
        geneve: GeneveRepr::new(Vni::new(99).unwrap(), vec![GeneveOpt::oxide_mss(1448)]),
    };
    let mut f = e.header_bytes(inner.len());
    f.extend_from_slice(inner);
    f
}

fn layout_of_network(f: &[u8]) -> Layout {
    let mut p = Packet::copy_from(f);
    Layout::of_network(&parse_network(&mut p).unwrap()).unwrap()
}

fn layout_of_inner(f: &[u8]) -> Layout {
    let mut p = Packet::copy_from(f);
    Layout::of_inner(&parse_guest(&mut p).unwrap()).unwrap()
}

fn segments(f: &[u8], lay: &Layout, mss: usize) -> Vec<Vec<u8>> {
    (0..lay.seg_count(mss))
        .map(|i| {
            let mut hdr = vec![0u8; lay.payload];
            let r = lay.write_segment(f, mss, i, &mut hdr).unwrap();
            hdr.extend_from_slice(&f[r]);
            hdr
        })
        .collect()
}

fn outer_udp_ok(seg: &[u8], o: Outer) -> bool {
    let src: [u8; 16] = seg[o.ip6 + 8..o.ip6 + 24].try_into().unwrap();
    let dst: [u8; 16] = seg[o.ip6 + 24..o.ip6 + 40].try_into().unwrap();
    let mut c = pseudo_v6(src, dst, 17, (seg.len() - o.udp) as u32);
    c.add_bytes(&seg[o.udp..]);
    c.fold() == 0xffff && seg[o.udp + 6..o.udp + 8] != [0, 0]
}

#[test]
fn an_encapsulated_tcp_super_frame_becomes_checksummed_segments() {
    for v4 in [true, false] {
        let data = body(10_001);
        let inner = tcp_frame(v4, TCP_ACK | TCP_PSH | TCP_CWR, SEQ, &data);
        let f = encap(&inner);
        let lay = layout_of_network(&f);
        assert_eq!(lay.payload_len(), data.len());
        let segs = segments(&f, &lay, 1448);
        assert_eq!(segs.len(), 7, "10,001 bytes in 1,448-byte segments");
        let mut joined = Vec::new();
        let mut ids = Vec::new();
        for (i, s) in segs.iter().enumerate() {
            // Every segment is a well-formed network frame on its own.
            let mut p = Packet::copy_from(s);
            let n = parse_network(&mut p).unwrap();
            assert_eq!(n.outer.geneve.mss, Some(1448));
            let sl = Layout::of_network(&n).unwrap();
            assert!(sl.l4_csum_ok(s), "v4={v4} segment {i}: inner checksum");
            assert!(outer_udp_ok(s, sl.outer.unwrap()), "segment {i}: outer UDP");
            let seq = u32::from_be_bytes(s[sl.l4 + 4..sl.l4 + 8].try_into().unwrap());
            assert_eq!(seq, SEQ.wrapping_add((i * 1448) as u32), "sequence wraps");
            let flags = s[sl.l4 + 13];
            assert_eq!(flags & TCP_PSH != 0, i == 6, "PSH on the last only");
            assert_eq!(flags & TCP_CWR != 0, i == 0, "CWR on the first only");
            assert_eq!(flags & TCP_ACK, TCP_ACK);
            if v4 {
                let ih = &s[sl.ip..sl.l4];
                assert_eq!(Checksum::of(ih).fold(), 0xffff, "IPv4 header checksum");
                ids.push(u16::from_be_bytes([ih[4], ih[5]]));
            }
            joined.extend_from_slice(&s[sl.payload..]);
        }
        assert_eq!(joined, data, "the payload, cut and nothing else");
        if v4 {
            assert!(ids.windows(2).all(|w| w[1] == w[0].wrapping_add(1)));
        }
    }
}

#[test]
fn a_udp_super_frame_becomes_datagrams() {
    for v4 in [true, false] {
        let (s, d) = addrs(v4);
        let data = body(3000);
        let f = frame(A, B, s, d, L4::Udp { sport: 5, dport: 6 }, &data);
        let lay = layout_of_inner(&f);
        let segs = segments(&f, &lay, 1200);
        assert_eq!(segs.len(), 3);
        for (i, s) in segs.iter().enumerate() {
            let sl = layout_of_inner(s);
            assert_eq!(sl.payload_len(), if i < 2 { 1200 } else { 600 });
            assert!(sl.l4_csum_ok(s), "v4={v4} datagram {i}");
            let ulen = u16::from_be_bytes([s[sl.l4 + 4], s[sl.l4 + 5]]);
            assert_eq!(usize::from(ulen), 8 + sl.payload_len());
        }
    }
}

#[test]
fn segments_of_one_flow_coalesce_back_into_the_super_frame() {
    for v4 in [true, false] {
        let data = body(20_000);
        let original = tcp_frame(v4, TCP_ACK | TCP_PSH, SEQ, &data);
        let lay = layout_of_inner(&original);
        let segs = segments(&original, &lay, 1448);
        let lays: Vec<Layout> = segs.iter().map(|s| layout_of_inner(s)).collect();
        for (i, w) in segs.windows(2).enumerate() {
            assert!(lays[i].follows(&w[0], &lays[i + 1], &w[1]), "v4={v4} {i}");
        }
        let mut merged = segs[0][..lays[0].payload].to_vec();
        let psh = segs.last().unwrap()[lay.l4 + 13] & TCP_PSH != 0;
        lays[0].merge_headers(&mut merged, data.len(), psh).unwrap();
        for (s, l) in segs.iter().zip(&lays) {
            merged.extend_from_slice(&s[l.payload..]);
        }
        // The checksum field holds the pseudo-header sum; finishing it gives the original.
        assert!(finish_partial(&mut merged, lay.l4, 16));
        assert_eq!(merged, original, "v4={v4}");
    }
}

#[test]
fn segments_that_do_not_follow_are_not_coalesced() {
    let data = body(1000);
    let a = tcp_frame(true, TCP_ACK, 1000, &data);
    let la = layout_of_inner(&a);
    let check = |b: &[u8]| la.follows(&a, &layout_of_inner(b), b);
    assert!(
        check(&tcp_frame(true, TCP_ACK, 2000, &data)),
        "the next one"
    );
    assert!(check(&tcp_frame(true, TCP_ACK | TCP_PSH, 2000, &data)));
    assert!(!check(&tcp_frame(true, TCP_ACK, 2001, &data)), "a gap");
    assert!(!check(&tcp_frame(true, TCP_ACK, 1000, &data)), "a repeat");
    assert!(!check(&tcp_frame(true, TCP_ACK | TCP_FIN, 2000, &data)));
    assert!(!check(&tcp_frame(true, TCP_ACK | TCP_RST, 2000, &data)));
    assert!(!check(&tcp_frame(true, TCP_ACK | TCP_URG, 2000, &data)));
    assert!(!check(&tcp_frame(true, TCP_ACK, 2000, &[])), "no data");
    assert!(
        !check(&tcp_frame(false, TCP_ACK, 2000, &data)),
        "another family"
    );
    let (s, d) = addrs(true);
    let other_port = frame(A, B, s, d, L4::tcp(40001, 5201, TCP_ACK, 2000, 77), &data);
    assert!(!check(&other_port), "another flow");
    let other_ack = frame(A, B, s, d, L4::tcp(40000, 5201, TCP_ACK, 2000, 78), &data);
    assert!(!check(&other_ack), "another ACK number");
    // After a PSH nothing follows.
    let p = tcp_frame(true, TCP_ACK | TCP_PSH, 1000, &data);
    let b = tcp_frame(true, TCP_ACK, 2000, &data);
    assert!(!layout_of_inner(&p).follows(&p, &layout_of_inner(&b), &b));
}

#[test]
fn a_partial_checksum_is_finished() {
    let (s, d) = addrs(false);
    let mut f = frame(A, B, s, d, L4::Udp { sport: 5, dport: 6 }, &body(333));
    let lay = layout_of_inner(&f);
    let at = lay.csum_at();
    let pseudo = lay.pseudo(&f, lay.end - lay.l4).unwrap().fold();
    f[at..at + 2].copy_from_slice(&pseudo.to_be_bytes());
    assert!(!lay.l4_csum_ok(&f));
    assert!(finish_partial(&mut f, lay.l4, 6));
    assert!(lay.l4_csum_ok(&f));
    assert!(!finish_partial(&mut f, lay.l4, 7), "an odd offset");
    assert!(!finish_partial(&mut f, 5000, 6), "outside the frame");
}

#[test]
fn bad_requests_are_refused_without_panic() {
    let data = body(5000);
    let f = tcp_frame(true, TCP_ACK, 1, &data);
    let lay = layout_of_inner(&f);
    let mut hdr = vec![0u8; lay.payload];
    assert!(
        lay.write_segment(&f, 1000, 5, &mut hdr).is_none(),
        "past the end"
    );
    assert!(lay.write_segment(&f, 0, 0, &mut hdr).is_none(), "no size");
    let mut short = vec![0u8; lay.payload - 1];
    assert!(lay.write_segment(&f, 1000, 0, &mut short).is_none());
    assert!(
        lay.write_segment(&f[..100], 1000, 0, &mut hdr).is_none(),
        "truncated"
    );
    assert!(!lay.l4_csum_ok(&f[..60]));
    assert_eq!(lay.seg_count(1000), 5);
    assert_eq!(lay.seg_count(0), 0);
}

/// A datagram of Geneve chunks, as the sending host builds it for the kernel's UDP
/// segmentation: the outer head, then each segment's Geneve and inner headers and payload.
fn dgram(f: &[u8], lay: &Layout, mss: usize, range: Range<usize>) -> Vec<u8> {
    let o = lay.outer.unwrap();
    let skip = o.udp + 8;
    let chunks: Vec<Vec<u8>> = range
        .map(|i| {
            let mut hdr = vec![0u8; lay.payload];
            let r = lay.write_segment(f, mss, i, &mut hdr).unwrap();
            let mut c = hdr[skip..].to_vec();
            c.extend_from_slice(&f[r]);
            c
        })
        .collect();
    let udp_len = 8 + chunks.iter().map(Vec::len).sum::<usize>();
    let mut d = vec![0u8; DGRAM_OUTER];
    lay.write_dgram_head(f, udp_len, &mut d).unwrap();
    for c in chunks {
        d.extend_from_slice(&c);
    }
    d
}

#[test]
fn a_datagram_of_chunks_merges_back_into_one_geneve_frame() {
    for v4 in [true, false] {
        let data = body(30_000);
        let f = encap(&tcp_frame(v4, TCP_ACK | TCP_PSH, SEQ, &data));
        let lay = layout_of_network(&f);
        let mss = 8000;
        let n = lay.seg_count(mss);
        let mut d = dgram(&f, &lay, mss, 0..n);
        // The head: lengths of the whole datagram, the checksum the pseudo-header's sum.
        let o = lay.outer.unwrap();
        let udp_len = d.len() - o.udp;
        assert_eq!(
            usize::from(u16::from_be_bytes([d[o.udp + 4], d[o.udp + 5]])),
            udp_len
        );
        let chunk = lay.payload - DGRAM_OUTER + mss;
        let m = merge_chunks(&mut d, chunk).unwrap();
        assert_eq!(m.chunks, n);
        d.truncate(m.len);
        // One Geneve frame again: the original, but for the outer UDP checksum (zero now)
        // and the inner one (the pseudo-header's sum, to be finished).
        let mut p = Packet::copy_from(&d);
        let net = parse_network(&mut p).unwrap();
        assert_eq!(net.outer.geneve.mss, Some(1448));
        let ml = Layout::of_network(&net).unwrap();
        assert_eq!(ml.payload_len(), data.len());
        assert_eq!(&d[ml.payload..], &data[..]);
        let inner_at = ml.l4 - m.inner.l4;
        assert!(finish_partial(&mut d, ml.l4, 16));
        assert_eq!(&d[inner_at..], &f[inner_at..], "v4={v4}: the inner frame");
        assert_eq!(
            &d[..o.udp + 6],
            &f[..o.udp + 6],
            "v4={v4}: the outer headers"
        );
        assert_eq!(&d[o.udp + 6..o.udp + 8], &[0, 0]);
    }
}

#[test]
fn chunks_that_do_not_follow_are_left_as_they_were() {
    let data = body(30_000);
    let f = encap(&tcp_frame(true, TCP_ACK, SEQ, &data));
    let lay = layout_of_network(&f);
    let mss = 8000;
    let chunk = lay.payload - DGRAM_OUTER + mss;
    // Chunks 0, 1 and 3: a gap.
    let mut d = dgram(&f, &lay, mss, 0..2);
    let tail = dgram(&f, &lay, mss, 3..4);
    d.extend_from_slice(&tail[DGRAM_OUTER..]);
    let before = d.clone();
    assert!(merge_chunks(&mut d, chunk).is_none());
    assert_eq!(d, before, "nothing changed");
    // A chunk size that does not cut at the chunks' boundaries.
    let mut d = dgram(&f, &lay, mss, 0..3);
    let before = d.clone();
    assert!(merge_chunks(&mut d, chunk - 1).is_none());
    assert!(merge_chunks(&mut d, 0).is_none());
    assert!(merge_chunks(&mut d[..100], chunk).is_none());
    assert_eq!(d, before);
}

#[test]
fn a_super_frame_splits_in_two_at_a_segment_boundary() {
    for (v4, tcp) in [(true, true), (false, true), (true, false)] {
        let data = body(10_000);
        let (s, d) = addrs(v4);
        let l4 = if tcp {
            L4::tcp(40000, 5201, TCP_ACK | TCP_PSH | TCP_CWR, SEQ, 77)
        } else {
            L4::Udp { sport: 5, dport: 6 }
        };
        let original = frame(A, B, s, d, l4, &data);
        let lay = layout_of_inner(&original);
        let mut head = original.clone();
        let mut tail = vec![0u8; original.len()];
        let keep = 4 * 1448;
        let (hn, tn) = lay.split(&mut head, 1448, 4, &mut tail).unwrap();
        head.truncate(hn);
        tail.truncate(tn);
        // Each half, its partial checksum finished, is a good frame of its payload; cut
        // again, the two give the original's segments.
        let (hl, tl) = (layout_of_inner(&head), layout_of_inner(&tail));
        assert_eq!(
            (hl.payload_len(), tl.payload_len()),
            (keep, data.len() - keep)
        );
        assert_eq!([&head[hl.payload..], &tail[tl.payload..]].concat(), data);
        let whole = segments(&original, &lay, 1448);
        let mut halves = segments(&head, &hl, 1448);
        halves.extend(segments(&tail, &tl, 1448));
        assert!(
            halves == whole,
            "v4={v4} tcp={tcp}: the halves cut as the whole"
        );
        for (mut f, l) in [(head, hl), (tail, tl)] {
            assert!(finish_partial(&mut f, l.l4, l.csum_at() - l.l4));
            assert!(l.l4_csum_ok(&f), "v4={v4} tcp={tcp}");
        }
    }
    let f = tcp_frame(true, TCP_ACK, 1, &body(3000));
    let lay = layout_of_inner(&f);
    let mut t = vec![0u8; f.len()];
    assert!(
        lay.split(&mut f.clone(), 1000, 3, &mut t).is_none(),
        "nothing left"
    );
    assert!(
        lay.split(&mut f.clone(), 1000, 0, &mut t).is_none(),
        "nothing kept"
    );
    assert!(
        lay.split(&mut f.clone(), 1000, 1, &mut t[..50]).is_none(),
        "no room"
    );
}
