//! The common shapes, parsed in one straight pass over one segment's bytes.
//!
//! Nearly every packet is Ethernet + IPv4 (no options, not fragmented) or IPv6 (no extension
//! headers) + TCP/UDP/ICMP, with its headers in one segment (and, on the network side, the
//! outer headers in the first segment and the inner frame right after them or at the start
//! of the second). For those, [`guest`] and [`network`] produce exactly what the general
//! parser would, without its per-header bookkeeping. Anything else, including every error,
//! returns `None` and the general parser decides.

use super::Loc;
use super::Packet;
use super::parse::{
    EtherInfo, GeneveInfo, InnerMeta, Ipv4Info, Ipv6Info, L3Info, NetworkMeta, OuterMeta, UlpInfo,
    UlpKind, walk_geneve_opts,
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

/// A guest-side frame in the first segment.
#[inline(always)]
pub(super) fn guest(pkt: &Packet) -> Option<InnerMeta> {
    let buf = pkt.segment(0)?.data();
    frame(buf, 0, 0, pkt.len())
}

/// The upper-layer header at the front of `buf`, with `avail` bytes of L4 data per the IP
/// length; its header length and the flow key.
#[inline(always)]
fn l4(
    p: u8,
    buf: &[u8],
    avail: usize,
    addrs: AddrPair,
    v4: bool,
) -> Option<(UlpKind, u16, InnerFlowId)> {
    match p {
        proto::TCP => {
            let (t, _) = TcpHdr::ref_from_prefix(buf).ok()?;
            let hl = t.hdr_len();
            if hl < TcpHdr::MIN_LEN || hl > avail || hl > buf.len() {
                return None;
            }
            let f = InnerFlowId::with_ports(p, addrs, t.src_port.get(), t.dst_port.get());
            Some((UlpKind::Tcp, hl as u16, f))
        }
        proto::UDP => {
            let (u, _) = UdpHdr::ref_from_prefix(buf).ok()?;
            let len = usize::from(u.len.get());
            if avail < UdpHdr::LEN || len < UdpHdr::LEN || len > avail {
                return None;
            }
            let f = InnerFlowId::with_ports(p, addrs, u.src_port.get(), u.dst_port.get());
            Some((UlpKind::Udp, UdpHdr::LEN as u16, f))
        }
        proto::ICMP | proto::ICMPV6 if (p == proto::ICMP) == v4 => {
            let (h, _) = IcmpHdr::ref_from_prefix(buf).ok()?;
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
                IcmpHdr::LEN as u16,
                InnerFlowId::with_icmp(p, addrs, h.ty, h.code, id),
            ))
        }
        _ => None,
    }
}

/// A frame at the front of `buf` (which is segment `seg` from offset `base` on), with
/// `avail` bytes of packet from its start to the end its enclosing lengths allow.
#[inline(always)]
fn frame(buf: &[u8], seg: u16, base: u32, avail: usize) -> Option<InnerMeta> {
    let (e, rest) = EtherHdr::ref_from_prefix(buf).ok()?;
    let ether_type = e.ether_type.get();
    let eth = EtherInfo {
        loc: Loc { seg, off: base },
        hdr_len: EtherHdr::LEN as u8,
        dst: MacAddr::from_const(e.dst),
        src: MacAddr::from_const(e.src),
        ether_type,
        vlan: None,
    };
    let ip_avail = avail.checked_sub(EtherHdr::LEN)?;
    let l3_off = base + EtherHdr::LEN as u32;
    let (l3, l3_len, l4_avail, p, addrs, l4_buf) = match ether_type {
        ETHER_TYPE_IPV4 => {
            let (h, l4_buf) = Ipv4Hdr::ref_from_prefix(rest).ok()?;
            let total = usize::from(h.total_len.get());
            // Options, fragments, short or overlong lengths: the general parser's business.
            if h.ver_ihl != 0x45 || h.is_fragment() || total < Ipv4Hdr::MIN_LEN || total > ip_avail
            {
                return None;
            }
            let info = Ipv4Info {
                loc: Loc { seg, off: l3_off },
                hdr_len: 20,
                total_len: total as u16,
            };
            let addrs = AddrPair::V4 {
                src: Ipv4Addr::from_const(h.src),
                dst: Ipv4Addr::from_const(h.dst),
            };
            (
                L3Info::Ipv4(info),
                Ipv4Hdr::MIN_LEN,
                total - Ipv4Hdr::MIN_LEN,
                h.proto,
                addrs,
                l4_buf,
            )
        }
        ETHER_TYPE_IPV6 => {
            let (h, l4_buf) = Ipv6Hdr::ref_from_prefix(rest).ok()?;
            let payload = usize::from(h.payload_len.get());
            if h.version() != 6 || payload > ip_avail.checked_sub(Ipv6Hdr::LEN)? {
                return None;
            }
            let p = h.next_header;
            let info = Ipv6Info {
                loc: Loc { seg, off: l3_off },
                ext_len: 0,
                payload_len: payload as u16,
                proto: p,
            };
            let addrs = AddrPair::V6 {
                src: Ipv6Addr::from_const(h.src),
                dst: Ipv6Addr::from_const(h.dst),
            };
            (L3Info::Ipv6(info), Ipv6Hdr::LEN, payload, p, addrs, l4_buf)
        }
        _ => return None,
    };
    let v4 = ether_type == ETHER_TYPE_IPV4;
    let (kind, hl, flow) = l4(p, l4_buf, l4_avail, addrs, v4)?;
    let l4_off = l3_off + l3_len as u32;
    Some(InnerMeta {
        eth,
        arp: None,
        l3: Some(l3),
        frag: None,
        ulp: Some(UlpInfo {
            kind,
            loc: Loc { seg, off: l4_off },
            hdr_len: hl,
        }),
        body: Loc {
            seg,
            off: l4_off + u32::from(hl),
        },
        body_len: (l4_avail - usize::from(hl)) as u32,
        flow,
    })
}

/// A Geneve-over-IPv6 packet: outer headers in the first segment, the inner frame after
/// them in the same segment or at the start of the next.
#[inline]
pub(super) fn network(pkt: &Packet) -> Option<NetworkMeta> {
    let seg0 = pkt.segment(0)?.data();
    let pkt_len = pkt.len();
    let (e, rest) = EtherHdr::ref_from_prefix(seg0).ok()?;
    if e.ether_type.get() != ETHER_TYPE_IPV6 {
        return None;
    }
    let (ip, rest) = Ipv6Hdr::ref_from_prefix(rest).ok()?;
    let payload = usize::from(ip.payload_len.get());
    const UDP_AT: usize = EtherHdr::LEN + Ipv6Hdr::LEN;
    if ip.version() != 6 || ip.next_header != proto::UDP || payload > pkt_len.checked_sub(UDP_AT)? {
        return None;
    }
    let (u, rest) = UdpHdr::ref_from_prefix(rest).ok()?;
    let udp_len = usize::from(u.len.get());
    if u.dst_port.get() != GENEVE_PORT || udp_len < UdpHdr::LEN || udp_len > payload {
        return None;
    }
    let (g, rest) = GeneveHdr::ref_from_prefix(rest).ok()?;
    let opts_len = g.opts_len();
    if g.version() != 0 || g.protocol.get() != ETHER_TYPE_ETHER {
        return None;
    }
    const GENEVE_AT: usize = UDP_AT + UdpHdr::LEN;
    let mut geneve = GeneveInfo {
        loc: Loc {
            seg: 0,
            off: GENEVE_AT as u32,
        },
        hdr_len: (GeneveHdr::LEN + opts_len) as u16,
        vni: Vni::from_be_bytes(g.vni),
        flags: g.flags,
        external: false,
        replication: None,
        mss: None,
    };
    walk_geneve_opts(rest.get(..opts_len)?, &mut geneve).ok()?;
    let inner_at = GENEVE_AT + GeneveHdr::LEN + opts_len;
    let avail = (UDP_AT + udp_len).checked_sub(inner_at)?;
    let inner = if inner_at == seg0.len() {
        frame(pkt.segment(1)?.data(), 1, 0, avail)?
    } else {
        frame(seg0.get(inner_at..)?, 0, inner_at as u32, avail)?
    };
    let outer = OuterMeta {
        eth: EtherInfo {
            loc: Loc { seg: 0, off: 0 },
            hdr_len: EtherHdr::LEN as u8,
            dst: MacAddr::from_const(e.dst),
            src: MacAddr::from_const(e.src),
            ether_type: ETHER_TYPE_IPV6,
            vlan: None,
        },
        ip6: Ipv6Info {
            loc: Loc {
                seg: 0,
                off: EtherHdr::LEN as u32,
            },
            ext_len: 0,
            payload_len: payload as u16,
            proto: proto::UDP,
        },
        src: Ipv6Addr::from_const(ip.src),
        dst: Ipv6Addr::from_const(ip.dst),
        udp: Loc {
            seg: 0,
            off: UDP_AT as u32,
        },
        udp_src_port: u.src_port.get(),
        geneve,
    };
    Some(NetworkMeta { outer, inner })
}
