//! Whole frames from header summaries.
//!
//! [`Headers`] is the owned form of everything a parse finds: an optional Geneve
//! encapsulation, then Ethernet, ARP or IP, and the upper-layer header. It can be taken from
//! a parsed packet ([`Headers::from_guest`], [`Headers::from_network`]), emitted verbatim
//! ([`Headers::emit`]) or built into a correct frame ([`Headers::build`]: every length and
//! checksum computed for the given body). Hairpin replies, test packets, benchmark inputs
//! and fuzz seeds are all made this way.

use crate::packet::parse::{InnerMeta, L3Info, NetworkMeta, UlpKind};
use crate::packet::{Loc, Packet};
use crate::wire::arp::{ArpEthIpv4Hdr, ArpRepr};
use crate::wire::csum::{Checksum, pseudo_v4, pseudo_v6};
use crate::wire::ether::{ETHER_TYPE_IPV6, EtherRepr};
use crate::wire::geneve::{GeneveHdr, GeneveOpt, GeneveOpts, GeneveRepr};
use crate::wire::icmp::{IcmpHdr, IcmpRepr};
use crate::wire::ip4::{IPV4_FLAG_MF, Ipv4Hdr, Ipv4Repr, fill_header_csum};
use crate::wire::ip6::{FragmentHdr, Ipv6Hdr, Ipv6Repr};
use crate::wire::tcp::{TcpHdr, TcpRepr};
use crate::wire::udp::{UdpHdr, UdpRepr};
use crate::wire::{EmitError, HeaderKind, proto};
use alloc::vec::Vec;
use zerocopy::IntoBytes;

#[cfg(any(test, feature = "samples"))]
pub mod samples;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum L3Repr {
    Ipv4(Ipv4Repr),
    Ipv6(Ipv6Repr),
}

impl L3Repr {
    pub fn emitted_len(&self) -> usize {
        match self {
            Self::Ipv4(r) => r.emitted_len(),
            Self::Ipv6(r) => r.emitted_len(),
        }
    }

    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EmitError> {
        match self {
            Self::Ipv4(r) => r.emit(buf),
            Self::Ipv6(r) => r.emit(buf),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UlpRepr {
    Tcp(TcpRepr),
    Udp(UdpRepr),
    Icmpv4(IcmpRepr),
    Icmpv6(IcmpRepr),
}

impl UlpRepr {
    pub fn emitted_len(&self) -> usize {
        match self {
            Self::Tcp(r) => r.emitted_len(),
            Self::Udp(r) => r.emitted_len(),
            Self::Icmpv4(r) | Self::Icmpv6(r) => r.emitted_len(),
        }
    }

    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EmitError> {
        match self {
            Self::Tcp(r) => r.emit(buf),
            Self::Udp(r) => r.emit(buf),
            Self::Icmpv4(r) => r.emit(buf, HeaderKind::Icmpv4),
            Self::Icmpv6(r) => r.emit(buf, HeaderKind::Icmpv6),
        }
    }

    /// Offset of the checksum field within the header.
    /// Where the checksum field lies in the emitted header.
    pub(crate) const fn csum_offset(&self) -> usize {
        match self {
            Self::Tcp(_) => 16,
            Self::Udp(_) => 6,
            Self::Icmpv4(_) | Self::Icmpv6(_) => 2,
        }
    }
}

/// A Geneve-over-IPv6 encapsulation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encap {
    pub eth: EtherRepr,
    pub ip6: Ipv6Repr,
    pub udp: UdpRepr,
    pub geneve: GeneveRepr,
}

impl Encap {
    pub fn emitted_len(&self) -> usize {
        self.eth.emitted_len() + self.ip6.emitted_len() + UdpHdr::LEN + self.geneve.emitted_len()
    }

    /// Emit the encapsulation headers verbatim into `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EmitError> {
        let mut n = self.eth.emit(buf)?;
        n += self.ip6.emit(buf.get_mut(n..).unwrap_or(&mut []))?;
        n += self.udp.emit(buf.get_mut(n..).unwrap_or(&mut []))?;
        n += self.geneve.emit(buf.get_mut(n..).unwrap_or(&mut []))?;
        Ok(n)
    }

    /// The encapsulation bytes for an inner frame of `inner_len` bytes: the UDP and IPv6
    /// lengths filled in, the UDP checksum zero (RFC 6935 allows it for tunnels).
    pub fn header_bytes(mut self, inner_len: usize) -> Vec<u8> {
        let udp_len = UdpHdr::LEN + self.geneve.emitted_len() + inner_len;
        self.udp.len = udp_len as u16;
        self.udp.csum = 0;
        self.ip6.payload_len = (self.ip6.ext.len() + udp_len) as u16;
        let mut out = alloc::vec![0u8; self.emitted_len()];
        // The buffer is exactly the headers' length: emitting cannot run out of room.
        let _ = self.emit(&mut out);
        out
    }
}

/// Every header of a frame, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Headers {
    pub encap: Option<Encap>,
    pub eth: EtherRepr,
    pub arp: Option<ArpRepr>,
    pub l3: Option<L3Repr>,
    pub ulp: Option<UlpRepr>,
}

fn bytes(pkt: &Packet, loc: Loc, len: usize) -> Option<&[u8]> {
    pkt.bytes_at(loc, len)
}

impl Headers {
    /// An Ethernet + L3 + L4 frame.
    pub fn new(eth: EtherRepr, l3: L3Repr, ulp: UlpRepr) -> Self {
        Self {
            encap: None,
            eth,
            arp: None,
            l3: Some(l3),
            ulp: Some(ulp),
        }
    }

    /// The headers of a parsed guest-side frame (or the inner frame of a network-side one).
    pub fn from_guest(pkt: &Packet, m: &InnerMeta) -> Option<Self> {
        let e = &m.eth;
        let eth = EtherRepr {
            dst: e.dst,
            src: e.src,
            ether_type: e.ether_type,
            vlan: e.vlan,
        };
        let arp = match m.arp {
            Some(loc) => Some(ArpRepr::from_hdr(pkt.view::<ArpEthIpv4Hdr>(loc)?)),
            None => None,
        };
        let l3 = match m.l3 {
            Some(L3Info::Ipv4(i)) => {
                let h = pkt.view::<Ipv4Hdr>(i.loc)?;
                let all = bytes(pkt, i.loc, usize::from(i.hdr_len))?;
                Some(L3Repr::Ipv4(Ipv4Repr::from_hdr(
                    h,
                    all.get(Ipv4Hdr::MIN_LEN..)?,
                )))
            }
            Some(L3Info::Ipv6(i)) => {
                let h = pkt.view::<Ipv6Hdr>(i.loc)?;
                let all = bytes(pkt, i.loc, Ipv6Hdr::LEN + usize::from(i.ext_len))?;
                Some(L3Repr::Ipv6(Ipv6Repr::from_hdr(
                    h,
                    all.get(Ipv6Hdr::LEN..)?,
                )))
            }
            None => None,
        };
        let ulp = match m.ulp {
            Some(u) => Some(match u.kind {
                UlpKind::Tcp => {
                    let h = pkt.view::<TcpHdr>(u.loc)?;
                    let all = bytes(pkt, u.loc, usize::from(u.hdr_len))?;
                    UlpRepr::Tcp(TcpRepr::from_hdr(h, all.get(TcpHdr::MIN_LEN..)?))
                }
                UlpKind::Udp => UlpRepr::Udp(UdpRepr::from_hdr(pkt.view::<UdpHdr>(u.loc)?)),
                UlpKind::Icmpv4 => UlpRepr::Icmpv4(IcmpRepr::from_hdr(pkt.view::<IcmpHdr>(u.loc)?)),
                UlpKind::Icmpv6 => UlpRepr::Icmpv6(IcmpRepr::from_hdr(pkt.view::<IcmpHdr>(u.loc)?)),
            }),
            None => None,
        };
        Some(Self {
            encap: None,
            eth,
            arp,
            l3,
            ulp,
        })
    }

    /// The headers of a parsed network-side packet, encapsulation included.
    pub fn from_network(pkt: &Packet, m: &NetworkMeta) -> Option<Self> {
        let mut inner = Self::from_guest(pkt, &m.inner)?;
        let o = &m.outer;
        let eth = EtherRepr {
            dst: o.eth.dst,
            src: o.eth.src,
            ether_type: o.eth.ether_type,
            vlan: o.eth.vlan,
        };
        let ip6_all = bytes(pkt, o.ip6.loc, Ipv6Hdr::LEN + usize::from(o.ip6.ext_len))?;
        let ip6 = Ipv6Repr::from_hdr(
            pkt.view::<Ipv6Hdr>(o.ip6.loc)?,
            ip6_all.get(Ipv6Hdr::LEN..)?,
        );
        let udp = UdpRepr::from_hdr(pkt.view::<UdpHdr>(o.udp)?);
        let gh = pkt.view::<GeneveHdr>(o.geneve.loc)?;
        let g_all = bytes(pkt, o.geneve.loc, usize::from(o.geneve.hdr_len))?;
        let mut options = Vec::new();
        for opt in GeneveOpts::new(g_all.get(GeneveHdr::LEN..)?) {
            let (oh, body) = opt.ok()?;
            options.push(GeneveOpt {
                class: oh.class.get(),
                ty: oh.ty,
                data: Vec::from(body),
            });
        }
        let geneve = GeneveRepr {
            version: gh.version(),
            flags: gh.flags,
            protocol: gh.protocol.get(),
            vni: o.geneve.vni,
            reserved: gh.reserved,
            options,
        };
        inner.encap = Some(Encap {
            eth,
            ip6,
            udp,
            geneve,
        });
        Some(inner)
    }

    /// Bytes of all headers (encapsulation included).
    pub fn emitted_len(&self) -> usize {
        self.encap.as_ref().map_or(0, Encap::emitted_len) + self.inner_len()
    }

    fn inner_len(&self) -> usize {
        self.eth.emitted_len()
            + self.arp.as_ref().map_or(0, ArpRepr::emitted_len)
            + self.l3.as_ref().map_or(0, L3Repr::emitted_len)
            + self.ulp.as_ref().map_or(0, UlpRepr::emitted_len)
    }

    /// Write every header as it is, field values untouched, into `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, EmitError> {
        let mut n = 0;
        if let Some(e) = &self.encap {
            n += e.emit(buf)?;
        }
        n += self.eth.emit(buf.get_mut(n..).unwrap_or(&mut []))?;
        if let Some(a) = &self.arp {
            n += a.emit(buf.get_mut(n..).unwrap_or(&mut []))?;
        }
        if let Some(l3) = &self.l3 {
            n += l3.emit(buf.get_mut(n..).unwrap_or(&mut []))?;
        }
        if let Some(u) = &self.ulp {
            n += u.emit(buf.get_mut(n..).unwrap_or(&mut []))?;
        }
        Ok(n)
    }

    /// The headers emitted verbatim, followed by `body`.
    pub fn to_bytes(&self, body: &[u8]) -> Result<Vec<u8>, EmitError> {
        let hl = self.emitted_len();
        let mut out = alloc::vec![0u8; hl + body.len()];
        self.emit(&mut out)?;
        if let Some(b) = out.get_mut(hl..) {
            b.copy_from_slice(body);
        }
        Ok(out)
    }

    /// Set every length field for `body`, compute every checksum (the outer UDP checksum is
    /// zero, as RFC 6935 allows for tunnels), and return the frame.
    pub fn build(mut self, body: &[u8]) -> Result<Vec<u8>, EmitError> {
        let ulp_len = self.ulp.as_ref().map_or(0, UlpRepr::emitted_len) + body.len();
        if let Some(UlpRepr::Udp(u)) = &mut self.ulp {
            u.len = ulp_len as u16;
            u.csum = 0;
        }
        let l3_len = match &mut self.l3 {
            Some(L3Repr::Ipv4(r)) => {
                r.total_len = (r.emitted_len() + ulp_len) as u16;
                r.csum = 0;
                usize::from(r.total_len)
            }
            Some(L3Repr::Ipv6(r)) => {
                r.payload_len = (r.ext.len() + ulp_len) as u16;
                Ipv6Hdr::LEN + usize::from(r.payload_len)
            }
            None => 0,
        };
        match &mut self.ulp {
            Some(UlpRepr::Tcp(t)) => t.csum = 0,
            Some(UlpRepr::Icmpv4(i) | UlpRepr::Icmpv6(i)) => i.csum = 0,
            _ => {}
        }
        let frame_len =
            self.eth.emitted_len() + self.arp.as_ref().map_or(0, ArpRepr::emitted_len) + l3_len;
        if let Some(e) = &mut self.encap {
            let udp_len = UdpHdr::LEN + e.geneve.emitted_len() + frame_len;
            e.udp.len = udp_len as u16;
            e.udp.csum = 0;
            e.ip6.payload_len = (e.ip6.ext.len() + udp_len) as u16;
        }
        let mut out = self.to_bytes(body)?;

        // Checksums, innermost first, over the emitted bytes.
        let l3_off = self.encap.as_ref().map_or(0, Encap::emitted_len) + self.eth.emitted_len();
        if let (Some(l3), Some(ulp)) = (&self.l3, &self.ulp) {
            let l4_off = l3_off + l3.emitted_len();
            let l4 = out.get(l4_off..l4_off + ulp_len).unwrap_or(&[]);
            let v = l4_checksum(l3, ulp, l4);
            let at = l4_off + ulp.csum_offset();
            if let Some(f) = out.get_mut(at..at + 2) {
                f.copy_from_slice(&v.to_be_bytes());
            }
        }
        if let Some(L3Repr::Ipv4(r)) = &self.l3
            && let Some(h) = out.get_mut(l3_off..l3_off + r.emitted_len())
        {
            fill_header_csum(h);
        }
        Ok(out)
    }
}

/// The checksum to write into the L4 header `ulp` of the emitted L4 bytes `l4` (its own
/// checksum field zero), carried in `l3`: the pseudo-header counts for every protocol but
/// ICMPv4, and UDP sends a computed zero as 0xffff.
pub fn l4_checksum(l3: &L3Repr, ulp: &UlpRepr, l4: &[u8]) -> u16 {
    let mut c = Checksum::of(l4);
    let p = match ulp {
        UlpRepr::Tcp(_) => proto::TCP,
        UlpRepr::Udp(_) => proto::UDP,
        UlpRepr::Icmpv4(_) => proto::ICMP,
        UlpRepr::Icmpv6(_) => proto::ICMPV6,
    };
    match (l3, ulp) {
        (_, UlpRepr::Icmpv4(_)) => {}
        (L3Repr::Ipv4(r), _) => c.add(pseudo_v4(r.src.bytes(), r.dst.bytes(), p, l4.len() as u16)),
        (L3Repr::Ipv6(r), _) => c.add(pseudo_v6(r.src.bytes(), r.dst.bytes(), p, l4.len() as u32)),
    }
    match ulp {
        UlpRepr::Udp(_) => c.finalize_udp(),
        _ => c.finalize(),
    }
}

/// Split a whole Ethernet + IPv4 frame into fragments carrying at most `chunk` bytes of IP
/// payload each (`chunk` is rounded down to a multiple of 8, as RFC 791 requires).
pub fn fragment_ipv4(frame: &[u8], chunk: usize) -> Option<Vec<Vec<u8>>> {
    let eth_len = 14;
    let ip = frame.get(eth_len..)?;
    let hl = usize::from(ip.first()? & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
    let payload = ip.get(hl..total)?;
    let chunk = (chunk / 8) * 8;
    if chunk == 0 {
        return None;
    }
    let mut out = Vec::new();
    for (i, piece) in payload.chunks(chunk).enumerate() {
        let off = i * chunk;
        let more = off + piece.len() < payload.len();
        let mut f = Vec::with_capacity(eth_len + hl + piece.len());
        f.extend_from_slice(frame.get(..eth_len + hl)?);
        f.extend_from_slice(piece);
        let h = f.get_mut(eth_len..eth_len + hl)?;
        h.get_mut(2..4)?
            .copy_from_slice(&((hl + piece.len()) as u16).to_be_bytes());
        let ff = (off / 8) as u16 | if more { IPV4_FLAG_MF } else { 0 };
        h.get_mut(6..8)?.copy_from_slice(&ff.to_be_bytes());
        fill_header_csum(h);
        out.push(f);
    }
    Some(out)
}

/// Split a whole Ethernet + IPv6 frame (no extension headers) into fragments, inserting a
/// Fragment header with identification `ident`; each carries at most `chunk` bytes of the
/// original payload (rounded down to a multiple of 8).
pub fn fragment_ipv6(frame: &[u8], chunk: usize, ident: u32) -> Option<Vec<Vec<u8>>> {
    let eth = frame.get(..14)?;
    if u16::from_be_bytes([*eth.get(12)?, *eth.get(13)?]) != ETHER_TYPE_IPV6 {
        return None;
    }
    let ip = frame.get(14..)?;
    let next = *ip.get(6)?;
    let plen = usize::from(u16::from_be_bytes([*ip.get(4)?, *ip.get(5)?]));
    let payload = ip.get(Ipv6Hdr::LEN..Ipv6Hdr::LEN + plen)?;
    let chunk = (chunk / 8) * 8;
    if chunk == 0 {
        return None;
    }
    let mut out = Vec::new();
    for (i, piece) in payload.chunks(chunk).enumerate() {
        let off = i * chunk;
        let more = off + piece.len() < payload.len();
        let mut f = Vec::new();
        f.extend_from_slice(eth);
        f.extend_from_slice(ip.get(..Ipv6Hdr::LEN)?);
        let fh = FragmentHdr {
            next_header: next,
            reserved: 0,
            offset_flags: zerocopy::network_endian::U16::new(off as u16 | u16::from(more)),
            ident: zerocopy::network_endian::U32::new(ident),
        };
        f.extend_from_slice(fh.as_bytes());
        f.extend_from_slice(piece);
        f.get_mut(14 + 4..14 + 6)?
            .copy_from_slice(&((FragmentHdr::LEN + piece.len()) as u16).to_be_bytes());
        *f.get_mut(14 + 6)? = proto::FRAGMENT;
        out.push(f);
    }
    Some(out)
}
