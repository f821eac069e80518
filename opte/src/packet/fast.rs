//! The common shapes, parsed in one straight pass over one segment's bytes.
//!
//! Nearly every packet is Ethernet + IPv4 (no options, not fragmented) or IPv6 (no extension
//! headers) + TCP/UDP/ICMP, with its headers in one segment (and, on the network side, the
//! outer headers in the first segment and the inner frame right after them or at the start
//! of the second; a header may start a new segment, as in an mblk chain split per header).
//! For those, [`guest`] and [`network`] produce exactly what the general
//! parser would, without its per-header bookkeeping. Anything else, including every error,
//! returns `None` and the general parser decides.

use super::Loc;
use super::Packet;
use super::general::walk_geneve_opts;
use super::parse::{
    EtherInfo, GeneveInfo, InnerMeta, Ipv4Info, Ipv6Info, L3Info, NetworkMeta, OuterMeta, UlpInfo,
    UlpKind,
};
use crate::wire::ether::{ETHER_TYPE_ETHER, ETHER_TYPE_IPV4, ETHER_TYPE_IPV6, EtherHdr};
use crate::wire::geneve::{GENEVE_PORT, GeneveHdr};
use crate::wire::icmp::{IcmpHdr, v4_type, v6_type};
use crate::wire::ip4::Ipv4Hdr;
use crate::wire::ip6::Ipv6Hdr;
use crate::wire::proto;
use crate::wire::tcp::TcpHdr;
use crate::wire::udp::UdpHdr;
use opte_api::{AddrPair, InnerFlowId, Ipv4Addr, Ipv6Addr, MacAddr, Vni};
use zerocopy::FromBytes;

/// A guest-side frame.
#[inline(always)]
pub(super) fn guest(pkt: &Packet) -> Option<InnerMeta> {
    let mut rd = Reader::new(pkt)?;
    frame(&mut rd, pkt.len())
}

/// Reads headers in order; a header that starts exactly where a segment ends is read from
/// the next segment. One that straddles a boundary is left to the general parser.
struct Reader<'p> {
    pkt: &'p Packet,
    seg: u16,
    buf: &'p [u8],
    off: usize,
}

impl<'p> Reader<'p> {
    #[inline(always)]
    fn new(pkt: &'p Packet) -> Option<Self> {
        Some(Self {
            pkt,
            seg: 0,
            buf: pkt.segment(0)?.data(),
            off: 0,
        })
    }

    #[inline(always)]
    fn loc(&self) -> Loc {
        Loc {
            seg: self.seg,
            off: self.off as u32,
        }
    }

    /// The next header, and the bytes of its segment that follow it.
    #[inline(always)]
    fn hdr<T: FromBytes + zerocopy::KnownLayout + zerocopy::Immutable + zerocopy::Unaligned>(
        &mut self,
    ) -> Option<(&'p T, Loc, &'p [u8])> {
        if self.off == self.buf.len() {
            let next = self.pkt.segment(usize::from(self.seg) + 1)?;
            self.seg += 1;
            self.buf = next.data();
            self.off = 0;
        }
        let (h, rest) = T::ref_from_prefix(self.buf.get(self.off..)?).ok()?;
        let loc = self.loc();
        self.off += core::mem::size_of::<T>();
        Some((h, loc, rest))
    }
}

/// The upper-layer header at the reader's position, with `avail` bytes of L4 data per the
/// IP length: its kind, location, header length and the flow key.
#[inline(always)]
fn l4(
    rd: &mut Reader<'_>,
    p: u8,
    avail: usize,
    addrs: AddrPair,
    v4: bool,
) -> Option<(UlpKind, Loc, u16, InnerFlowId)> {
    match p {
        proto::TCP => {
            let (t, loc, rest) = rd.hdr::<TcpHdr>()?;
            let hl = t.hdr_len();
            let opts = hl.checked_sub(TcpHdr::MIN_LEN)?;
            if hl > avail || opts > rest.len() {
                return None;
            }
            rd.off += opts;
            let f = InnerFlowId::with_ports(p, addrs, t.src_port.get(), t.dst_port.get());
            Some((UlpKind::Tcp, loc, hl as u16, f))
        }
        proto::UDP => {
            let (u, loc, _) = rd.hdr::<UdpHdr>()?;
            let len = usize::from(u.len.get());
            if avail < UdpHdr::LEN || len < UdpHdr::LEN || len > avail {
                return None;
            }
            let f = InnerFlowId::with_ports(p, addrs, u.src_port.get(), u.dst_port.get());
            Some((UlpKind::Udp, loc, UdpHdr::LEN as u16, f))
        }
        proto::ICMP | proto::ICMPV6 if (p == proto::ICMP) == v4 => {
            let (h, loc, _) = rd.hdr::<IcmpHdr>()?;
            if avail < IcmpHdr::LEN {
                return None;
            }
            let (kind, echo) = if v4 {
                (
                    UlpKind::Icmpv4,
                    matches!(h.ty, v4_type::ECHO_REQUEST | v4_type::ECHO_REPLY),
                )
            } else {
                (
                    UlpKind::Icmpv6,
                    matches!(h.ty, v6_type::ECHO_REQUEST | v6_type::ECHO_REPLY),
                )
            };
            let id = if echo { h.echo_id() } else { 0 };
            Some((
                kind,
                loc,
                IcmpHdr::LEN as u16,
                InnerFlowId::with_icmp(p, addrs, h.ty, h.code, id),
            ))
        }
        _ => None,
    }
}

/// A frame at the reader's position, with `avail` bytes of packet from its start to the
/// end its enclosing lengths allow.
#[inline(always)]
fn frame(rd: &mut Reader<'_>, avail: usize) -> Option<InnerMeta> {
    let (e, eloc, _) = rd.hdr::<EtherHdr>()?;
    let ether_type = e.ether_type.get();
    let eth = EtherInfo {
        loc: eloc,
        hdr_len: EtherHdr::LEN as u8,
        dst: MacAddr::from_const(e.dst),
        src: MacAddr::from_const(e.src),
        ether_type,
        vlan: None,
    };
    let ip_avail = avail.checked_sub(EtherHdr::LEN)?;
    let (l3, l4_avail, p, addrs) = match ether_type {
        ETHER_TYPE_IPV4 => {
            let (h, loc, _) = rd.hdr::<Ipv4Hdr>()?;
            let total = usize::from(h.total_len.get());
            // Options, fragments, short or overlong lengths: the general parser's business.
            if h.ver_ihl != 0x45 || h.is_fragment() || total < Ipv4Hdr::MIN_LEN || total > ip_avail
            {
                return None;
            }
            let info = Ipv4Info {
                loc,
                hdr_len: 20,
                total_len: total as u16,
            };
            let addrs = AddrPair::V4 {
                src: Ipv4Addr::from_const(h.src),
                dst: Ipv4Addr::from_const(h.dst),
            };
            (L3Info::Ipv4(info), total - Ipv4Hdr::MIN_LEN, h.proto, addrs)
        }
        ETHER_TYPE_IPV6 => {
            let (h, loc, _) = rd.hdr::<Ipv6Hdr>()?;
            let payload = usize::from(h.payload_len.get());
            if h.version() != 6 || payload > ip_avail.checked_sub(Ipv6Hdr::LEN)? {
                return None;
            }
            let p = h.next_header;
            let info = Ipv6Info {
                loc,
                ext_len: 0,
                payload_len: payload as u16,
                proto: p,
            };
            let addrs = AddrPair::V6 {
                src: Ipv6Addr::from_const(h.src),
                dst: Ipv6Addr::from_const(h.dst),
            };
            (L3Info::Ipv6(info), payload, p, addrs)
        }
        _ => return None,
    };
    let v4 = ether_type == ETHER_TYPE_IPV4;
    let (kind, loc, hl, flow) = l4(rd, p, l4_avail, addrs, v4)?;
    Some(InnerMeta {
        eth,
        arp: None,
        l3: Some(l3),
        frag: None,
        ulp: Some(UlpInfo {
            kind,
            loc,
            hdr_len: hl,
        }),
        body: rd.loc(),
        body_len: (l4_avail - usize::from(hl)) as u32,
        flow,
    })
}

/// A Geneve-over-IPv6 packet: outer headers in the first segment, the inner frame after
/// them in the same segment or at the start of the next.
#[inline(always)]
pub(super) fn network(pkt: &Packet) -> Option<NetworkMeta> {
    let pkt_len = pkt.len();
    let mut rd = Reader::new(pkt)?;
    let (e, e_loc, _) = rd.hdr::<EtherHdr>()?;
    if e.ether_type.get() != ETHER_TYPE_IPV6 {
        return None;
    }
    let (ip, ip_loc, _) = rd.hdr::<Ipv6Hdr>()?;
    let payload = usize::from(ip.payload_len.get());
    const UDP_AT: usize = EtherHdr::LEN + Ipv6Hdr::LEN;
    if ip.version() != 6 || ip.next_header != proto::UDP || payload > pkt_len.checked_sub(UDP_AT)? {
        return None;
    }
    let (u, udp_loc, _) = rd.hdr::<UdpHdr>()?;
    let udp_len = usize::from(u.len.get());
    if u.dst_port.get() != GENEVE_PORT || udp_len < UdpHdr::LEN || udp_len > payload {
        return None;
    }
    let (g, g_loc, rest) = rd.hdr::<GeneveHdr>()?;
    let opts_len = g.opts_len();
    if g.version() != 0 || g.protocol.get() != ETHER_TYPE_ETHER {
        return None;
    }
    let mut geneve = GeneveInfo {
        loc: g_loc,
        hdr_len: (GeneveHdr::LEN + opts_len) as u16,
        vni: Vni::from_be_bytes(g.vni),
        flags: g.flags,
        external: false,
        replication: None,
        mss: None,
    };
    walk_geneve_opts(rest.get(..opts_len)?, &mut geneve).ok()?;
    rd.off += opts_len;
    let inner_at = UDP_AT + UdpHdr::LEN + GeneveHdr::LEN + opts_len;
    let avail = (UDP_AT + udp_len).checked_sub(inner_at)?;
    let inner = frame(&mut rd, avail)?;
    let outer = OuterMeta {
        eth: EtherInfo {
            loc: e_loc,
            hdr_len: EtherHdr::LEN as u8,
            dst: MacAddr::from_const(e.dst),
            src: MacAddr::from_const(e.src),
            ether_type: ETHER_TYPE_IPV6,
            vlan: None,
        },
        ip6: Ipv6Info {
            loc: ip_loc,
            ext_len: 0,
            payload_len: payload as u16,
            proto: proto::UDP,
        },
        src: Ipv6Addr::from_const(ip.src),
        dst: Ipv6Addr::from_const(ip.dst),
        udp: udp_loc,
        udp_src_port: u.src_port.get(),
        geneve,
    };
    Some(NetworkMeta { outer, inner })
}
