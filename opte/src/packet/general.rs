//! The general parser: every shape the parse module accepts, over any segmentation.
//!
//! It reads through the current segment's slice; a header that straddles a boundary asks
//! for a pullup and the parse runs again. Every length and field rule of the two parse
//! shapes is checked here, and every error is built here; the one-pass fast path
//! (`super::fast`) only ever hands its packets back to this parser.

use super::parse::{
    EtherInfo, FragInfo, GeneveInfo, InnerMeta, Ipv4Info, Ipv6Info, L3Info, NetworkMeta, OuterMeta,
    UlpInfo, UlpKind,
};
use super::{Expected, Loc, Mismatch, Packet, ParseError};
use crate::wire::arp::{ARP_HTYPE_ETHERNET, ArpEthIpv4Hdr};
use crate::wire::ether::{
    ETHER_TYPE_ARP, ETHER_TYPE_ETHER, ETHER_TYPE_IPV4, ETHER_TYPE_IPV6, ETHER_TYPE_VLAN, EtherHdr,
    VlanTag,
};
use crate::wire::geneve::{
    GENEVE_OPT_CLASS_OXIDE, GENEVE_OPT_CRITICAL, GENEVE_PORT, GeneveHdr, GeneveOpts, OxideOptType,
    Replication,
};
use crate::wire::icmp::{IcmpHdr, v4_type, v6_type};
use crate::wire::ip4::Ipv4Hdr;
use crate::wire::ip6::{ExtHdrPrefix, ExtKind, FragmentHdr, Ipv6Hdr, ext_kind};
use crate::wire::tcp::TcpHdr;
use crate::wire::udp::UdpHdr;
use crate::wire::{HeaderKind, proto};
use opte_api::{AddrPair, FLOW_ID_DEFAULT, InnerFlowId, Ipv4Addr, Ipv6Addr, MacAddr, Vni};
use zerocopy::{FromBytes, Immutable, KnownLayout, Unaligned};

/// Run a parse over the chain as it is; if a header straddles two segments, pull it up and
/// parse again. Each pullup joins one header, so the retries are bounded by the number of
/// headers; well-formed chains (every header within a segment) parse in one pass.
pub(super) fn with_pullups<T>(
    pkt: &mut Packet,
    parse: impl Fn(&mut Cursor<'_>) -> Result<T, Step>,
) -> Result<T, ParseError> {
    let mut tries = 0;
    loop {
        let r = parse(&mut Cursor::new(pkt));
        match r {
            Ok(v) => return Ok(v),
            Err(Step::Fail(e)) => return Err(e),
            Err(Step::Pullup { seg, off, n, hdr }) => {
                tries += 1;
                if tries > MAX_PULLUPS || !pkt.pullup(seg, off, n) {
                    return Err(ParseError::Truncated {
                        hdr,
                        need: n,
                        have: 0,
                    });
                }
            }
        }
    }
}

/// More pullups than any frame has headers means something is wrong: stop.
const MAX_PULLUPS: usize = 64;

/// Why a parse pass stopped.
pub(super) enum Step {
    Fail(ParseError),
    /// `n` bytes at `off` in segment `seg` must be made contiguous first.
    Pullup {
        seg: usize,
        off: usize,
        n: usize,
        hdr: HeaderKind,
    },
}

impl From<ParseError> for Step {
    fn from(e: ParseError) -> Self {
        Self::Fail(e)
    }
}

pub(super) fn parse_network_in(cur: &mut Cursor<'_>) -> Result<NetworkMeta, Step> {
    let eth = parse_ether(cur)?;
    if eth.ether_type != ETHER_TYPE_IPV6 {
        return Err(unwanted(HeaderKind::Ethernet, "ether_type", "IPv6", eth.ether_type).into());
    }
    let (ip6, src, dst, frag) = parse_ipv6(cur)?;
    if let Some(f) = frag {
        // A fragmented tunnel packet must be reassembled before it can be decapsulated.
        return Err(unwanted(
            HeaderKind::Ipv6Ext,
            "fragment_offset",
            "no fragment",
            f.offset,
        )
        .into());
    }
    if ip6.proto != proto::UDP {
        return Err(unwanted(HeaderKind::Ipv6, "next_header", "UDP", ip6.proto).into());
    }
    let udp_start = cur.pos;
    let (udp_loc, udp) = cur.read::<UdpHdr>(HeaderKind::Udp)?;
    let udp_len = usize::from(udp.len.get());
    check_udp_len(udp_len, cur.end - udp_start)?;
    if udp.dst_port.get() != GENEVE_PORT {
        return Err(ParseError::Unwanted(Mismatch {
            hdr: HeaderKind::Udp,
            field: "dst_port",
            expected: Expected::Exactly(u64::from(GENEVE_PORT)),
            actual: u64::from(udp.dst_port.get()),
        })
        .into());
    }
    cur.limit(udp_start + udp_len, HeaderKind::Udp, "len", udp_start);
    let geneve = parse_geneve(cur)?;
    let inner = parse_frame(cur, false)?;
    let outer = OuterMeta {
        eth,
        ip6,
        src,
        dst,
        udp: udp_loc,
        udp_src_port: udp.src_port.get(),
        geneve,
    };
    Ok(NetworkMeta { outer, inner })
}

/// Reading position in a packet chain, and the end of the region the innermost length field
/// so far allows. Reads go through the current segment's slice; a header that does not fit
/// in what is left of it asks for a pullup.
pub(super) struct Cursor<'p> {
    pkt: &'p Packet,
    seg: usize,
    /// The current segment's data.
    buf: &'p [u8],
    off: usize,
    pos: usize,
    end: usize,
    pkt_len: usize,
    /// The header and field that set `end`, and where that header's length counts from.
    end_by: Option<(HeaderKind, &'static str, usize)>,
}

impl<'p> Cursor<'p> {
    fn new(pkt: &'p Packet) -> Self {
        let len = pkt.len();
        let buf = pkt.segment(0).map_or(&[][..], super::Segment::data);
        Self {
            pkt,
            seg: 0,
            buf,
            off: 0,
            pos: 0,
            end: len,
            pkt_len: len,
            end_by: None,
        }
    }

    fn loc(&self) -> Loc {
        Loc {
            seg: self.seg as u16,
            off: self.off as u32,
        }
    }

    /// Limit what follows to `end`, as the length field `field` of the header starting at
    /// `base` says.
    fn limit(&mut self, end: usize, hdr: HeaderKind, field: &'static str, base: usize) {
        self.end_by = Some((hdr, field, base));
        self.end = end;
    }

    fn end_base(&self) -> usize {
        self.end_by.map_or(0, |(_, _, base)| base)
    }

    fn short(&self, n: usize, hdr: HeaderKind) -> ParseError {
        match self.end_by {
            // The bytes may be there, but the enclosing length field says they are not
            // part of this packet.
            Some((by, field, _)) if self.pos + n <= self.pkt_len => {
                ParseError::BadLength(Mismatch {
                    hdr: by,
                    field,
                    expected: Expected::AtLeast((self.pos + n - self.end_base()) as u64),
                    actual: (self.end - self.end_base()) as u64,
                })
            }
            _ => ParseError::Truncated {
                hdr,
                need: n,
                have: self.end - self.pos,
            },
        }
    }

    /// Claim the next `n` bytes as one contiguous header and advance past them.
    #[inline]
    fn take(&mut self, n: usize, hdr: HeaderKind) -> Result<(Loc, &'p [u8]), Step> {
        if self.pos + n > self.end {
            return Err(Step::Fail(self.short(n, hdr)));
        }
        if self.buf.len() - self.off < n {
            // Step over an exhausted segment (and empty ones) to the next with data.
            while self.off == self.buf.len() && n > 0 {
                let Some(next) = self.pkt.segment(self.seg + 1) else {
                    break;
                };
                self.seg += 1;
                self.buf = next.data();
                self.off = 0;
            }
            if self.buf.len() - self.off < n {
                return Err(Step::Pullup {
                    seg: self.seg,
                    off: self.off,
                    n,
                    hdr,
                });
            }
        }
        let bytes = self.buf.get(self.off..self.off + n).unwrap_or(&[]);
        let loc = self.loc();
        self.off += n;
        self.pos += n;
        Ok((loc, bytes))
    }

    /// Take a fixed-size header and copy its view out.
    #[inline]
    fn read<T>(&mut self, hdr: HeaderKind) -> Result<(Loc, T), Step>
    where
        T: FromBytes + KnownLayout + Immutable + Unaligned + Copy,
    {
        let n = core::mem::size_of::<T>();
        let (loc, bytes) = self.take(n, hdr)?;
        match T::read_from_bytes(bytes) {
            Ok(h) => Ok((loc, h)),
            Err(_) => Err(Step::Fail(ParseError::Truncated {
                hdr,
                need: n,
                have: bytes.len(),
            })),
        }
    }

    /// The bytes from `start` (at absolute position `start_pos`) up to the cursor must be one
    /// contiguous run, so that a header with variable parts (options, extension headers)
    /// can be viewed whole: ask for a pullup if they are not.
    fn join(&mut self, start: Loc, start_pos: usize, hdr: HeaderKind) -> Result<(), Step> {
        if usize::from(start.seg) == self.seg {
            return Ok(());
        }
        Err(Step::Pullup {
            seg: usize::from(start.seg),
            off: start.off as usize,
            n: self.pos - start_pos,
            hdr,
        })
    }
}

fn unwanted(
    hdr: HeaderKind,
    field: &'static str,
    expected: &'static str,
    actual: impl Into<u64>,
) -> ParseError {
    ParseError::Unwanted(Mismatch {
        hdr,
        field,
        expected: Expected::OneOf(expected),
        actual: actual.into(),
    })
}

fn illegal(
    hdr: HeaderKind,
    field: &'static str,
    expected: u64,
    actual: impl Into<u64>,
) -> ParseError {
    ParseError::IllegalValue(Mismatch {
        hdr,
        field,
        expected: Expected::Exactly(expected),
        actual: actual.into(),
    })
}

fn bad_len(hdr: HeaderKind, field: &'static str, expected: Expected, actual: usize) -> ParseError {
    ParseError::BadLength(Mismatch {
        hdr,
        field,
        expected,
        actual: actual as u64,
    })
}

fn check_udp_len(udp_len: usize, avail: usize) -> Result<(), Step> {
    if udp_len < UdpHdr::LEN {
        return Err(Step::Fail(bad_len(
            HeaderKind::Udp,
            "len",
            Expected::AtLeast(UdpHdr::LEN as u64),
            udp_len,
        )));
    }
    if udp_len > avail {
        return Err(Step::Fail(bad_len(
            HeaderKind::Udp,
            "len",
            Expected::AtMost(avail as u64),
            udp_len,
        )));
    }
    Ok(())
}

fn parse_ether(cur: &mut Cursor<'_>) -> Result<EtherInfo, Step> {
    let start_pos = cur.pos;
    let (loc, eth) = cur.read::<EtherHdr>(HeaderKind::Ethernet)?;
    let mut info = EtherInfo {
        loc,
        hdr_len: EtherHdr::LEN as u8,
        dst: MacAddr::from_const(eth.dst),
        src: MacAddr::from_const(eth.src),
        ether_type: eth.ether_type.get(),
        vlan: None,
    };
    if info.ether_type == ETHER_TYPE_VLAN {
        let (_, tag) = cur.read::<VlanTag>(HeaderKind::Vlan)?;
        cur.join(loc, start_pos, HeaderKind::Vlan)?;
        info.hdr_len += VlanTag::LEN as u8;
        info.vlan = Some(tag.tci.get());
        info.ether_type = tag.ether_type.get();
        if info.ether_type == ETHER_TYPE_VLAN {
            return Err(Step::Fail(unwanted(
                HeaderKind::Vlan,
                "ether_type",
                "a single 802.1Q tag",
                ETHER_TYPE_VLAN,
            )));
        }
    }
    Ok(info)
}

/// Ethernet, then ARP (if allowed) or IP, then the upper-layer header.
pub(super) fn parse_frame(cur: &mut Cursor<'_>, allow_arp: bool) -> Result<InnerMeta, Step> {
    let eth = parse_ether(cur)?;
    let (l3, frag, addrs, proto) = match eth.ether_type {
        ETHER_TYPE_ARP if allow_arp => {
            let (loc, arp) = cur.read::<ArpEthIpv4Hdr>(HeaderKind::Arp)?;
            check_arp(&arp)?;
            return Ok(InnerMeta {
                eth,
                arp: Some(loc),
                l3: None,
                frag: None,
                ulp: None,
                body: cur.loc(),
                body_len: 0,
                flow: FLOW_ID_DEFAULT,
            });
        }
        ETHER_TYPE_IPV4 => {
            let (info, h) = parse_ipv4(cur)?;
            let frag = h.is_fragment().then(|| FragInfo {
                offset: h.frag_offset(),
                more: h.more_frags(),
                ident: u32::from(h.ident.get()),
            });
            let addrs = AddrPair::V4 {
                src: Ipv4Addr::from_const(h.src),
                dst: Ipv4Addr::from_const(h.dst),
            };
            (L3Info::Ipv4(info), frag, addrs, h.proto)
        }
        ETHER_TYPE_IPV6 => {
            let (info, src, dst, frag) = parse_ipv6(cur)?;
            (
                L3Info::Ipv6(info),
                frag,
                AddrPair::V6 { src, dst },
                info.proto,
            )
        }
        other => {
            let want = if allow_arp {
                "IPv4|IPv6|ARP"
            } else {
                "IPv4|IPv6"
            };
            return Err(Step::Fail(unwanted(
                HeaderKind::Ethernet,
                "ether_type",
                want,
                other,
            )));
        }
    };

    if frag.is_some_and(|f| !f.is_first()) {
        // A later fragment: what follows the IP header is payload, not an L4 header.
        return Ok(InnerMeta {
            eth,
            arp: None,
            l3: Some(l3),
            frag,
            ulp: None,
            body: cur.loc(),
            body_len: (cur.end - cur.pos) as u32,
            flow: InnerFlowId::with_ports(proto, addrs, 0, 0),
        });
    }

    let is_v4 = matches!(l3, L3Info::Ipv4(_));
    let l4_start = cur.pos;
    let (ulp, flow) = match proto {
        proto::TCP => {
            let (loc, tcp) = cur.read::<TcpHdr>(HeaderKind::Tcp)?;
            let hl = tcp.hdr_len();
            if hl < TcpHdr::MIN_LEN {
                return Err(Step::Fail(bad_len(
                    HeaderKind::Tcp,
                    "data_offset",
                    Expected::AtLeast(5),
                    hl / 4,
                )));
            }
            cur.take(hl - TcpHdr::MIN_LEN, HeaderKind::Tcp)?;
            cur.join(loc, l4_start, HeaderKind::Tcp)?;
            let flow =
                InnerFlowId::with_ports(proto, addrs, tcp.src_port.get(), tcp.dst_port.get());
            (
                UlpInfo {
                    kind: UlpKind::Tcp,
                    loc,
                    hdr_len: hl as u16,
                },
                flow,
            )
        }
        proto::UDP => {
            let avail = cur.end - cur.pos;
            let (loc, udp) = cur.read::<UdpHdr>(HeaderKind::Udp)?;
            // A first fragment holds only part of the datagram the length describes.
            if frag.is_none() {
                check_udp_len(usize::from(udp.len.get()), avail)?;
            }
            let flow =
                InnerFlowId::with_ports(proto, addrs, udp.src_port.get(), udp.dst_port.get());
            (
                UlpInfo {
                    kind: UlpKind::Udp,
                    loc,
                    hdr_len: UdpHdr::LEN as u16,
                },
                flow,
            )
        }
        proto::ICMP if is_v4 => {
            let (loc, h) = cur.read::<IcmpHdr>(HeaderKind::Icmpv4)?;
            let is_echo = matches!(h.ty, v4_type::ECHO_REQUEST | v4_type::ECHO_REPLY);
            let id = if is_echo { h.echo_id() } else { 0 };
            let flow = InnerFlowId::with_icmp(proto, addrs, h.ty, h.code, id);
            (
                UlpInfo {
                    kind: UlpKind::Icmpv4,
                    loc,
                    hdr_len: IcmpHdr::LEN as u16,
                },
                flow,
            )
        }
        proto::ICMPV6 if !is_v4 => {
            let (loc, h) = cur.read::<IcmpHdr>(HeaderKind::Icmpv6)?;
            let is_echo = matches!(h.ty, v6_type::ECHO_REQUEST | v6_type::ECHO_REPLY);
            let id = if is_echo { h.echo_id() } else { 0 };
            let flow = InnerFlowId::with_icmp(proto, addrs, h.ty, h.code, id);
            (
                UlpInfo {
                    kind: UlpKind::Icmpv6,
                    loc,
                    hdr_len: IcmpHdr::LEN as u16,
                },
                flow,
            )
        }
        other => {
            let (hdr, field, want) = if is_v4 {
                (HeaderKind::Ipv4, "proto", "TCP|UDP|ICMP")
            } else {
                (HeaderKind::Ipv6, "next_header", "TCP|UDP|ICMPv6")
            };
            return Err(Step::Fail(unwanted(hdr, field, want, other)));
        }
    };
    Ok(InnerMeta {
        eth,
        arp: None,
        l3: Some(l3),
        frag,
        ulp: Some(ulp),
        body: cur.loc(),
        body_len: (cur.end - cur.pos) as u32,
        flow,
    })
}

fn check_arp(arp: &ArpEthIpv4Hdr) -> Result<(), Step> {
    if arp.htype.get() != ARP_HTYPE_ETHERNET {
        return Err(Step::Fail(illegal(
            HeaderKind::Arp,
            "htype",
            1,
            arp.htype.get(),
        )));
    }
    if arp.ptype.get() != ETHER_TYPE_IPV4 {
        return Err(Step::Fail(illegal(
            HeaderKind::Arp,
            "ptype",
            u64::from(ETHER_TYPE_IPV4),
            arp.ptype.get(),
        )));
    }
    if arp.hlen != 6 {
        return Err(Step::Fail(illegal(HeaderKind::Arp, "hlen", 6, arp.hlen)));
    }
    if arp.plen != 4 {
        return Err(Step::Fail(illegal(HeaderKind::Arp, "plen", 4, arp.plen)));
    }
    Ok(())
}

fn parse_ipv4(cur: &mut Cursor<'_>) -> Result<(Ipv4Info, Ipv4Hdr), Step> {
    let start = cur.pos;
    let (loc, h) = cur.read::<Ipv4Hdr>(HeaderKind::Ipv4)?;
    if h.version() != 4 {
        return Err(Step::Fail(illegal(
            HeaderKind::Ipv4,
            "version",
            4,
            h.version(),
        )));
    }
    let hl = h.hdr_len();
    if hl < Ipv4Hdr::MIN_LEN {
        return Err(Step::Fail(bad_len(
            HeaderKind::Ipv4,
            "ihl",
            Expected::AtLeast(5),
            hl / 4,
        )));
    }
    cur.take(hl - Ipv4Hdr::MIN_LEN, HeaderKind::Ipv4)?;
    cur.join(loc, start, HeaderKind::Ipv4)?;
    let total = usize::from(h.total_len.get());
    if total < hl {
        return Err(Step::Fail(bad_len(
            HeaderKind::Ipv4,
            "total_len",
            Expected::AtLeast(hl as u64),
            total,
        )));
    }
    let avail = cur.end - start;
    if total > avail {
        return Err(Step::Fail(bad_len(
            HeaderKind::Ipv4,
            "total_len",
            Expected::AtMost(avail as u64),
            total,
        )));
    }
    cur.end_by = Some((HeaderKind::Ipv4, "total_len", start));
    cur.end = start + total;
    Ok((
        Ipv4Info {
            loc,
            hdr_len: hl as u16,
            total_len: total as u16,
        },
        h,
    ))
}

/// The fixed header, then every extension header up to the upper-layer protocol.
fn parse_ipv6(
    cur: &mut Cursor<'_>,
) -> Result<(Ipv6Info, Ipv6Addr, Ipv6Addr, Option<FragInfo>), Step> {
    let start = cur.pos;
    let (loc, h) = cur.read::<Ipv6Hdr>(HeaderKind::Ipv6)?;
    if h.version() != 6 {
        return Err(Step::Fail(illegal(
            HeaderKind::Ipv6,
            "version",
            6,
            h.version(),
        )));
    }
    let payload = usize::from(h.payload_len.get());
    let avail = cur.end - cur.pos;
    if payload > avail {
        return Err(Step::Fail(bad_len(
            HeaderKind::Ipv6,
            "payload_len",
            Expected::AtMost(avail as u64),
            payload,
        )));
    }
    cur.end_by = Some((HeaderKind::Ipv6, "payload_len", cur.pos));
    cur.end = cur.pos + payload;

    let mut nh = h.next_header;
    let mut frag = None;
    loop {
        match ext_kind(nh) {
            ExtKind::NotExt => break,
            ExtKind::Uniform => {
                let ext_start = cur.pos;
                let (eloc, p) = cur.read::<ExtHdrPrefix>(HeaderKind::Ipv6Ext)?;
                cur.take(p.hdr_len() - 2, HeaderKind::Ipv6Ext)?;
                cur.join(eloc, ext_start, HeaderKind::Ipv6Ext)?;
                nh = p.next_header;
            }
            ExtKind::Fragment => {
                let (_, f) = cur.read::<FragmentHdr>(HeaderKind::Ipv6Ext)?;
                nh = f.next_header;
                let info = FragInfo {
                    offset: f.offset(),
                    more: f.more_frags(),
                    ident: f.ident.get(),
                };
                frag = Some(info);
                if !info.is_first() {
                    // What follows is the middle of the original payload.
                    break;
                }
            }
        }
    }
    let ext_len = cur.pos - start - Ipv6Hdr::LEN;
    cur.join(loc, start, HeaderKind::Ipv6Ext)?;
    // A fragment header whose offset is 0 and M clear is an atomic fragment (RFC 6946):
    // the packet is whole.
    let frag = frag.filter(|f| f.more || f.offset != 0);
    let info = Ipv6Info {
        loc,
        ext_len: ext_len as u16,
        payload_len: payload as u16,
        proto: nh,
    };
    Ok((
        info,
        Ipv6Addr::from_const(h.src),
        Ipv6Addr::from_const(h.dst),
        frag,
    ))
}

fn parse_geneve(cur: &mut Cursor<'_>) -> Result<GeneveInfo, Step> {
    let start = cur.pos;
    let (loc, h) = cur.read::<GeneveHdr>(HeaderKind::Geneve)?;
    if h.version() != 0 {
        return Err(Step::Fail(illegal(
            HeaderKind::Geneve,
            "version",
            0,
            h.version(),
        )));
    }
    if h.protocol.get() != ETHER_TYPE_ETHER {
        return Err(Step::Fail(ParseError::Unwanted(Mismatch {
            hdr: HeaderKind::Geneve,
            field: "protocol",
            expected: Expected::Exactly(u64::from(ETHER_TYPE_ETHER)),
            actual: u64::from(h.protocol.get()),
        })));
    }
    let opts_len = h.opts_len();
    cur.take(opts_len, HeaderKind::GeneveOpt)?;
    cur.join(loc, start, HeaderKind::GeneveOpt)?;
    let mut info = GeneveInfo {
        loc,
        hdr_len: (GeneveHdr::LEN + opts_len) as u16,
        vni: Vni::from_be_bytes(h.vni),
        flags: h.flags,
        external: false,
        replication: None,
        mss: None,
    };
    let opts = cur
        .pkt
        .bytes_at(loc, GeneveHdr::LEN + opts_len)
        .and_then(|b| b.get(GeneveHdr::LEN..))
        .unwrap_or(&[]);
    walk_geneve_opts(opts, &mut info)?;
    Ok(info)
}

/// Record the Oxide options of a Geneve header; refuse an overrun or an unknown critical
/// option (RFC 8926 §3.5).
pub(super) fn walk_geneve_opts(opts: &[u8], info: &mut GeneveInfo) -> Result<(), ParseError> {
    for opt in GeneveOpts::new(opts) {
        let (oh, body) = opt.map_err(|e| {
            bad_len(
                HeaderKind::GeneveOpt,
                "len",
                Expected::AtMost(e.have.saturating_sub(4) as u64),
                e.need.saturating_sub(4),
            )
        })?;
        let class = oh.class.get();
        let known = if class == GENEVE_OPT_CLASS_OXIDE {
            OxideOptType::from_type(oh.ty)
        } else {
            None
        };
        match known {
            Some(OxideOptType::External) => info.external = true,
            Some(OxideOptType::Multicast) => match body.first() {
                // The reserved mode asks for nothing: treated as no replication.
                Some(b) => {
                    info.replication = match Replication::from_bits(b >> 6) {
                        Replication::Reserved => None,
                        r => Some(r),
                    }
                }
                None => {
                    return Err(bad_len(
                        HeaderKind::GeneveOpt,
                        "len",
                        Expected::AtLeast(4),
                        0,
                    ));
                }
            },
            Some(OxideOptType::Mss) => match <[u8; 4]>::try_from(body) {
                Ok(b) => info.mss = Some(u32::from_be_bytes(b)),
                Err(_) => {
                    return Err(bad_len(
                        HeaderKind::GeneveOpt,
                        "len",
                        Expected::Exactly(4),
                        body.len(),
                    ));
                }
            },
            // RFC 8926 §3.5: an option we do not understand may be skipped unless critical.
            None if oh.ty & GENEVE_OPT_CRITICAL != 0 => {
                return Err(ParseError::UnrecognisedTunnelOpt { class, ty: oh.ty });
            }
            None => {}
        }
    }
    Ok(())
}
