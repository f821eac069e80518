//! Header transformations: what a layer asks to change, and the compiled form the flow cache
//! replays on every later packet of the flow.
//!
//! A [`HdrTransform`] names new values for inner fields (MACs, addresses, ports, ICMP echo
//! id) and an encapsulation to push or pop. The transforms of all layers a packet crossed are
//! merged (the last layer to set a field wins, which is what applying them in order would do),
//! then [`CompiledTransform::compile`] turns the result into byte rewrites at known offsets,
//! pre-serialised outer headers, and checksum deltas. Every packet of a flow has the same
//! addresses and ports before the rewrite (they are the flow key), so the deltas are constants
//! and each checksum is fixed with one add (RFC 1624), not recomputed.

use super::view::{PacketView, Parsed};
use crate::build::Encap;
use crate::packet::parse::{InnerMeta, L3Info, UlpInfo, UlpKind};
use crate::packet::{CsumState, EncapMarks, Loc, Packet};
use crate::wire::csum::Checksum;
use crate::wire::ether::{ETHER_TYPE_IPV6, EtherHdr, EtherRepr};
use crate::wire::geneve::{
    GENEVE_OPT_CLASS_OXIDE, GENEVE_PORT, GeneveHdr, GeneveOpt, GeneveOptHdr, GeneveRepr,
    OxideOptType,
};
use crate::wire::icmp::{IcmpHdr, v4_type, v6_type};
use crate::wire::ip4::Ipv4Hdr;
use crate::wire::ip6::{Ipv6Hdr, Ipv6Repr};
use crate::wire::proto;
use crate::wire::tcp::TcpHdr;
use crate::wire::udp::{UdpHdr, UdpRepr};
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;
use opte_api::{AddrPair, IpAddr, Ipv6Addr, MacAddr, Vni};
use zerocopy::{FromBytes, IntoBytes, KnownLayout, Unaligned};

/// The outer headers of a Geneve-over-IPv6 encapsulation to push.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncapPush {
    pub eth_src: MacAddr,
    pub eth_dst: MacAddr,
    pub ip6_src: Ipv6Addr,
    pub ip6_dst: Ipv6Addr,
    pub hop_limit: u8,
    /// The UDP source port: flow entropy for ECMP in the underlay.
    pub entropy: u16,
    pub vni: Vni,
    pub options: Vec<GeneveOpt>,
    /// The destination is inside the rack (see [`crate::packet::EncapInfo::internal`]).
    pub internal: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum EncapAction {
    #[default]
    Ignore,
    Push(EncapPush),
    Pop,
}

/// The changes one layer (or a merge of several) makes to a packet's headers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HdrTransform {
    pub name: &'static str,
    pub encap: EncapAction,
    pub eth_src: Option<MacAddr>,
    pub eth_dst: Option<MacAddr>,
    pub ip_src: Option<IpAddr>,
    pub ip_dst: Option<IpAddr>,
    pub src_port: Option<u16>,
    pub dst_port: Option<u16>,
    /// Rewritten only on ICMP echo request/reply.
    pub icmp_id: Option<u16>,
    /// For an ICMP error, a rewrite of the packet it quotes (so NAT stays invisible to the
    /// guest and to the remote end).
    pub embedded: Option<EmbeddedRewrite>,
}

/// An address rewrite in the IP header quoted by an ICMP error (RFC 792, RFC 4443 §2.4):
/// replace `from` by `to` in the quoted source or destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EmbeddedRewrite {
    pub field: EmbeddedField,
    pub from: IpAddr,
    pub to: IpAddr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmbeddedField {
    Src,
    Dst,
}

/// True for ICMP messages that quote the packet that caused them.
pub fn is_icmp_error(kind: UlpKind, ty: u8) -> bool {
    match kind {
        UlpKind::Icmpv4 => matches!(ty, 3 | 4 | 5 | 11 | 12),
        UlpKind::Icmpv6 => matches!(ty, 1..=4),
        _ => false,
    }
}

/// A transform that cannot apply to this packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HdrTransformError {
    /// It modifies a header the packet lacks.
    MissingHeader(&'static str),
    /// It sets an address of the other IP family.
    FamilyMismatch,
    /// It pops an encapsulation from a packet that has none.
    NothingToPop,
    /// A header it writes could not be emitted (e.g. Geneve options too long).
    Emit,
    /// The encapsulated packet would exceed the 65,535 bytes the outer length fields hold.
    TooLong { len: usize },
}

impl fmt::Display for HdrTransformError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingHeader(h) => write!(f, "transform modifies missing header {h}"),
            Self::FamilyMismatch => f.write_str("transform sets an address of the other IP family"),
            Self::NothingToPop => f.write_str("transform pops an encapsulation that is not there"),
            Self::Emit => f.write_str("transform's outer headers cannot be emitted"),
            Self::TooLong { len } => write!(
                f,
                "encapsulated packet of {len} bytes exceeds the 65535 the outer lengths hold"
            ),
        }
    }
}

impl HdrTransform {
    pub fn identity(name: &'static str) -> Self {
        Self {
            name,
            ..Self::default()
        }
    }

    /// True if the transform changes nothing.
    pub fn is_identity(&self) -> bool {
        *self == Self::identity(self.name)
    }

    /// Fold a transform applied after this one into this one.
    pub fn merge(&mut self, later: &Self) {
        if later.encap != EncapAction::Ignore {
            self.encap = later.encap.clone();
        }
        macro_rules! over {
            ($($f:ident),*) => { $( if later.$f.is_some() { self.$f = later.$f; } )* };
        }
        over!(
            eth_src, eth_dst, ip_src, ip_dst, src_port, dst_port, icmp_id, embedded
        );
    }

    /// Update the view as if the packet had been rewritten.
    pub fn apply_view(&self, v: &mut PacketView) -> Result<(), HdrTransformError> {
        if let Some(m) = self.eth_src {
            v.eth_src = m;
        }
        if let Some(m) = self.eth_dst {
            v.eth_dst = m;
        }
        if self.ip_src.is_some() || self.ip_dst.is_some() {
            let (p, addrs) = v.ip.ok_or(HdrTransformError::MissingHeader("inner IP"))?;
            v.ip = Some((p, rewrite_addrs(addrs, self.ip_src, self.ip_dst)?));
        }
        if let Some(u) = &mut v.ulp {
            match u.kind {
                UlpKind::Tcp | UlpKind::Udp => {
                    if let Some(p) = self.src_port {
                        u.src_port = p;
                    }
                    if let Some(p) = self.dst_port {
                        u.dst_port = p;
                    }
                }
                UlpKind::Icmpv4 | UlpKind::Icmpv6 => {
                    if let (Some(id), true) = (self.icmp_id, is_echo(u.kind, u.icmp_type)) {
                        u.icmp_id = id;
                    }
                }
            }
        }
        match self.encap {
            EncapAction::Pop => v.vni = None,
            EncapAction::Push(ref p) => v.vni = Some(p.vni),
            EncapAction::Ignore => {}
        }
        Ok(())
    }
}

fn is_echo(kind: UlpKind, ty: u8) -> bool {
    match kind {
        UlpKind::Icmpv4 => matches!(ty, v4_type::ECHO_REQUEST | v4_type::ECHO_REPLY),
        UlpKind::Icmpv6 => matches!(ty, v6_type::ECHO_REQUEST | v6_type::ECHO_REPLY),
        _ => false,
    }
}

fn rewrite_addrs(
    a: AddrPair,
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
) -> Result<AddrPair, HdrTransformError> {
    match (a, src.unwrap_or(a.src()), dst.unwrap_or(a.dst())) {
        (AddrPair::V4 { .. }, IpAddr::Ip4(src), IpAddr::Ip4(dst)) => Ok(AddrPair::V4 { src, dst }),
        (AddrPair::V6 { .. }, IpAddr::Ip6(src), IpAddr::Ip6(dst)) => Ok(AddrPair::V6 { src, dst }),
        _ => Err(HdrTransformError::FamilyMismatch),
    }
}

/// Pre-serialised outer headers and where their length fields are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncapBytes {
    pub bytes: Box<[u8]>,
    ip6_payload_len_at: usize,
    udp_len_at: usize,
    /// Bytes of the encapsulation counted in the IPv6 payload length.
    ip6_payload_base: usize,
    /// Bytes of the encapsulation counted in the UDP length.
    udp_base: usize,
    /// What the packet tells the host once this is pushed, beyond the headers themselves.
    marks: EncapMarks,
}

impl EncapBytes {
    fn new(p: &EncapPush) -> Result<Self, HdrTransformError> {
        let mut ip6 = Ipv6Repr::new(p.ip6_src, p.ip6_dst, proto::UDP);
        ip6.hop_limit = p.hop_limit;
        let e = Encap {
            eth: EtherRepr {
                dst: p.eth_dst,
                src: p.eth_src,
                ether_type: ETHER_TYPE_IPV6,
                vlan: None,
            },
            ip6,
            udp: UdpRepr::new(p.entropy, GENEVE_PORT),
            geneve: GeneveRepr::new(p.vni, p.options.clone()),
        };
        let mut bytes = alloc::vec![0u8; e.emitted_len()];
        e.emit(&mut bytes).map_err(|_| HdrTransformError::Emit)?;
        let udp_base = UdpHdr::LEN + e.geneve.emitted_len();
        let geneve_at = EtherHdr::LEN + Ipv6Hdr::LEN + UdpHdr::LEN;
        let mut opt_at = geneve_at + GeneveHdr::LEN;
        let (mut mss_at, mut repl_at) = (None, None);
        for o in &p.options {
            let body = u16::try_from(opt_at + GeneveOptHdr::LEN).ok();
            if o.class == GENEVE_OPT_CLASS_OXIDE && o.ty == OxideOptType::Mss as u8 {
                mss_at = body;
            } else if o.class == GENEVE_OPT_CLASS_OXIDE && o.ty == OxideOptType::Multicast as u8 {
                repl_at = body;
            }
            opt_at += o.emitted_len();
        }
        Ok(Self {
            bytes: bytes.into_boxed_slice(),
            ip6_payload_len_at: EtherHdr::LEN + 4,
            udp_len_at: EtherHdr::LEN + Ipv6Hdr::LEN + 4,
            ip6_payload_base: udp_base,
            udp_base,
            marks: EncapMarks {
                internal: p.internal,
                mss_at,
                repl_at,
            },
        })
    }

    /// Write the encapsulation in front of an inner frame already in `pkt`, refusing one
    /// whose outer lengths would not fit their 16-bit fields (they would wrap silently).
    fn push(&self, pkt: &mut Packet) -> Result<(), HdrTransformError> {
        let inner = pkt.len();
        let too_long = || HdrTransformError::TooLong {
            len: self.bytes.len() + inner,
        };
        // The IPv6 payload holds the UDP datagram: if its length fits, so does UDP's.
        let plen = u16::try_from(self.ip6_payload_base + inner).map_err(|_| too_long())?;
        let udp_len = plen.saturating_sub((self.ip6_payload_base - self.udp_base) as u16);
        let front = pkt.prepend(self.bytes.len());
        front.copy_from_slice(&self.bytes);
        let (pa, ua) = (self.ip6_payload_len_at, self.udp_len_at);
        if let Some(f) = front.get_mut(pa..pa + 2) {
            f.copy_from_slice(&plen.to_be_bytes());
        }
        if let Some(f) = front.get_mut(ua..ua + 2) {
            f.copy_from_slice(&udp_len.to_be_bytes());
        }
        pkt.set_encap(Some(self.marks));
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompiledEncap {
    None,
    Push(EncapBytes),
    Pop,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum IpRewrite {
    None,
    V4 {
        src: Option<[u8; 4]>,
        dst: Option<[u8; 4]>,
    },
    V6 {
        src: Option<[u8; 16]>,
        dst: Option<[u8; 16]>,
    },
}

/// A merged transform reduced to byte writes and checksum deltas, valid for every packet
/// whose pre-transform flow key equals the one it was compiled for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompiledTransform {
    pub encap: CompiledEncap,
    eth_src: Option<[u8; 6]>,
    eth_dst: Option<[u8; 6]>,
    ip: IpRewrite,
    src_port: Option<u16>,
    dst_port: Option<u16>,
    icmp_id: Option<u16>,
    /// Added to the IPv4 header checksum (folded to 16 bits).
    ip_delta: Option<u16>,
    /// Added to the L4 checksum: pseudo-header, ports, echo id (folded to 16 bits).
    l4_delta: Option<u16>,
    /// The pseudo-header's part of `l4_delta` alone: what a partial checksum (one the
    /// device finishes over the L4 bytes, ports included) must be moved by.
    pseudo_delta: Option<u16>,
    embedded: Option<EmbeddedRewrite>,
}

/// The new source and destination addresses where they change, with the change added to
/// `sum`.
fn addr_rewrite<const N: usize>(
    old: [[u8; N]; 2],
    new: [[u8; N]; 2],
    sum: &mut Checksum,
) -> (Option<[u8; N]>, Option<[u8; N]>) {
    let [s0, d0] = old;
    let [s1, d1] = new;
    delta(sum, &s0, &s1);
    delta(sum, &d0, &d1);
    ((s0 != s1).then_some(s1), (d0 != d1).then_some(d1))
}

/// The checksum change from replacing `old` with `new`.
fn delta(sum: &mut Checksum, old: &[u8], new: &[u8]) {
    sum.add_bytes(new);
    sum.sub_bytes(old);
}

/// `csum` updated by the folded difference `d` (RFC 1624 eqn. 3): one's-complement add
/// to the complemented checksum, one end-around carry, complement.
#[inline]
fn fix(csum: [u8; 2], d: u16) -> [u8; 2] {
    let s = u32::from(!u16::from_be_bytes(csum)) + u32::from(d);
    let s = (s & 0xffff) + (s >> 16);
    (!(s as u16)).to_be_bytes()
}

impl CompiledTransform {
    /// Compile `t` for packets that look like `before`.
    pub fn compile(t: &HdrTransform, before: &PacketView) -> Result<Self, HdrTransformError> {
        let mut after = *before;
        t.apply_view(&mut after)?;
        let encap = match &t.encap {
            EncapAction::Ignore => CompiledEncap::None,
            EncapAction::Pop => CompiledEncap::Pop,
            EncapAction::Push(p) => CompiledEncap::Push(EncapBytes::new(p)?),
        };
        let mut ip_sum = Checksum::new();
        let mut l4_sum = Checksum::new();
        let mut l4_changed = false;
        let ip = match (before.ip, after.ip) {
            (
                Some((_, AddrPair::V4 { src: s0, dst: d0 })),
                Some((_, AddrPair::V4 { src: s1, dst: d1 })),
            ) => {
                let (src, dst) = addr_rewrite(
                    [s0.bytes(), d0.bytes()],
                    [s1.bytes(), d1.bytes()],
                    &mut ip_sum,
                );
                IpRewrite::V4 { src, dst }
            }
            (
                Some((_, AddrPair::V6 { src: s0, dst: d0 })),
                Some((_, AddrPair::V6 { src: s1, dst: d1 })),
            ) => {
                let (src, dst) = addr_rewrite(
                    [s0.bytes(), d0.bytes()],
                    [s1.bytes(), d1.bytes()],
                    &mut ip_sum,
                );
                IpRewrite::V6 { src, dst }
            }
            _ => IpRewrite::None,
        };
        let ip_changed = match ip {
            IpRewrite::V4 { src, dst } => src.is_some() || dst.is_some(),
            IpRewrite::V6 { src, dst } => src.is_some() || dst.is_some(),
            IpRewrite::None => false,
        };
        let (mut src_port, mut dst_port, mut icmp_id) = (None, None, None);
        let mut pseudo_delta = None;
        if let (Some(u0), Some(u1)) = (before.ulp, after.ulp) {
            // Pseudo-header addresses count in every L4 checksum but ICMPv4's.
            if ip_changed && u0.kind != UlpKind::Icmpv4 {
                l4_sum.add(ip_sum);
                l4_changed = true;
                pseudo_delta = Some(ip_sum.fold());
            }
            // A field that changes adds its own difference to the L4 checksum.
            let mut field = |old: u16, new: u16| {
                (old != new).then(|| {
                    delta(&mut l4_sum, &old.to_be_bytes(), &new.to_be_bytes());
                    l4_changed = true;
                    new
                })
            };
            src_port = field(u0.src_port, u1.src_port);
            dst_port = field(u0.dst_port, u1.dst_port);
            icmp_id = field(u0.icmp_id, u1.icmp_id);
        }
        let is_v4 = matches!(ip, IpRewrite::V4 { .. });
        let embedded = t.embedded.filter(|_| {
            before
                .ulp
                .is_some_and(|u| is_icmp_error(u.kind, u.icmp_type))
        });
        if embedded.is_some() && !l4_changed {
            l4_changed = true;
        }
        Ok(Self {
            embedded,
            encap,
            eth_src: (before.eth_src != after.eth_src).then(|| after.eth_src.bytes()),
            eth_dst: (before.eth_dst != after.eth_dst).then(|| after.eth_dst.bytes()),
            ip,
            src_port,
            dst_port,
            icmp_id,
            ip_delta: (ip_changed && is_v4).then(|| ip_sum.fold()),
            l4_delta: l4_changed.then(|| l4_sum.fold()),
            pseudo_delta,
        })
    }

    /// Rewrite the packet. Inner headers are patched in place first, then the encapsulation
    /// is popped (the read offset moves) or pushed (into the headroom).
    pub fn apply(&self, pkt: &mut Packet, parsed: &Parsed) -> Result<(), HdrTransformError> {
        let m = parsed.inner();
        let partial = matches!(pkt.offload().csum, CsumState::Partial { .. });
        // The usual packet has its inner headers in one segment: find it once and patch
        // through plain slice offsets. Anything else goes header by header.
        let one_seg = m.l3.is_none_or(|l| l.loc().seg == m.eth.loc.seg)
            && m.ulp.is_none_or(|u| u.loc.seg == m.eth.loc.seg);
        match pkt.segment_mut(usize::from(m.eth.loc.seg)) {
            Some(seg) if one_seg => self.rewrite_inner(&mut OneSeg(seg.data_mut()), m, partial)?,
            _ => self.rewrite_inner(&mut AnySeg(pkt), m, partial)?,
        }
        if self.embedded.is_some() {
            self.rewrite_embedded(pkt, m)?;
        }
        match &self.encap {
            CompiledEncap::None => {}
            CompiledEncap::Pop => {
                let n = parsed
                    .network()
                    .ok_or(HdrTransformError::NothingToPop)?
                    .outer
                    .encap_len();
                pkt.trim_front(n)
                    .map_err(|_| HdrTransformError::NothingToPop)?;
            }
            CompiledEncap::Push(e) => e.push(pkt)?,
        }
        Ok(())
    }

    /// The inner Ethernet, IP and L4 rewrites, with the checksum deltas of address, port
    /// and echo-id changes. (An ICMP error's quoted packet is [`Self::rewrite_embedded`]'s.)
    #[inline]
    fn rewrite_inner<H: Hdrs>(
        &self,
        hs: &mut H,
        m: &InnerMeta,
        partial: bool,
    ) -> Result<(), HdrTransformError> {
        if self.eth_src.is_some() || self.eth_dst.is_some() {
            let e = hs
                .hdr::<EtherHdr>(m.eth.loc)
                .ok_or(HdrTransformError::MissingHeader("inner Ethernet"))?;
            if let Some(s) = self.eth_src {
                e.src = s;
            }
            if let Some(d) = self.eth_dst {
                e.dst = d;
            }
        }
        match (self.ip, m.l3) {
            (IpRewrite::None, _) => {}
            (IpRewrite::V4 { src, dst }, Some(L3Info::Ipv4(i))) => {
                let h = hs
                    .hdr::<Ipv4Hdr>(i.loc)
                    .ok_or(HdrTransformError::MissingHeader("inner IPv4"))?;
                if let Some(s) = src {
                    h.src = s;
                }
                if let Some(d) = dst {
                    h.dst = d;
                }
                if let Some(d) = self.ip_delta {
                    h.csum = fix(h.csum, d);
                }
            }
            (IpRewrite::V6 { src, dst }, Some(L3Info::Ipv6(i))) => {
                let h = hs
                    .hdr::<Ipv6Hdr>(i.loc)
                    .ok_or(HdrTransformError::MissingHeader("inner IPv6"))?;
                if let Some(s) = src {
                    h.src = s;
                }
                if let Some(d) = dst {
                    h.dst = d;
                }
            }
            _ => return Err(HdrTransformError::FamilyMismatch),
        }
        // An ICMP error's checksum is fixed with its quoted packet's changes.
        if self.embedded.is_some() {
            return Ok(());
        }
        if partial {
            if let Some(u) = m.ulp {
                self.rewrite_partial_l4(hs, u)?;
            }
        } else if let (Some(u), Some(d)) = (m.ulp, self.l4_delta) {
            self.rewrite_l4(hs, u, d)?;
        }
        Ok(())
    }

    #[inline(always)]
    fn set_ports(
        &self,
        src: &mut zerocopy::network_endian::U16,
        dst: &mut zerocopy::network_endian::U16,
    ) {
        if let Some(p) = self.src_port {
            src.set(p);
        }
        if let Some(p) = self.dst_port {
            dst.set(p);
        }
    }

    #[inline(always)]
    fn set_icmp_id(&self, rest: &mut [u8; 4]) {
        if let Some(id) = self.icmp_id {
            let [a, b] = id.to_be_bytes();
            rest[0] = a;
            rest[1] = b;
        }
    }

    /// The L4 rewrite of a packet whose checksum the device will finish (virtio-net
    /// `NEEDS_CSUM`): the field holds the pseudo-header's sum, uncomplemented, so only
    /// the pseudo-header's change moves it (RFC 1624's update does not apply), and new
    /// ports are summed by the device with the rest of the segment.
    fn rewrite_partial_l4<H: Hdrs>(&self, hs: &mut H, u: UlpInfo) -> Result<(), HdrTransformError> {
        let add = |csum: [u8; 2], d: Option<u16>| match d {
            Some(d) => {
                let s = u32::from(u16::from_be_bytes(csum)) + u32::from(d);
                (((s & 0xffff) + (s >> 16)) as u16).to_be_bytes()
            }
            None => csum,
        };
        match u.kind {
            UlpKind::Tcp => {
                let h = hs
                    .hdr::<TcpHdr>(u.loc)
                    .ok_or(HdrTransformError::MissingHeader("TCP"))?;
                self.set_ports(&mut h.src_port, &mut h.dst_port);
                h.csum = add(h.csum, self.pseudo_delta);
            }
            UlpKind::Udp => {
                let h = hs
                    .hdr::<UdpHdr>(u.loc)
                    .ok_or(HdrTransformError::MissingHeader("UDP"))?;
                self.set_ports(&mut h.src_port, &mut h.dst_port);
                h.csum = add(h.csum, self.pseudo_delta);
            }
            UlpKind::Icmpv4 | UlpKind::Icmpv6 => {
                let h = hs
                    .hdr::<IcmpHdr>(u.loc)
                    .ok_or(HdrTransformError::MissingHeader("ICMP"))?;
                self.set_icmp_id(&mut h.rest);
                h.csum = add(h.csum, self.pseudo_delta);
            }
        }
        Ok(())
    }

    #[inline]
    fn rewrite_l4<H: Hdrs>(&self, hs: &mut H, u: UlpInfo, d: u16) -> Result<(), HdrTransformError> {
        match u.kind {
            UlpKind::Tcp => {
                let h = hs
                    .hdr::<TcpHdr>(u.loc)
                    .ok_or(HdrTransformError::MissingHeader("TCP"))?;
                self.set_ports(&mut h.src_port, &mut h.dst_port);
                h.csum = fix(h.csum, d);
            }
            UlpKind::Udp => {
                let h = hs
                    .hdr::<UdpHdr>(u.loc)
                    .ok_or(HdrTransformError::MissingHeader("UDP"))?;
                self.set_ports(&mut h.src_port, &mut h.dst_port);
                // Zero means "no checksum" and stays so; a computed zero is sent as ffff.
                if h.csum != [0, 0] {
                    let c = fix(h.csum, d);
                    h.csum = if c == [0, 0] { [0xff, 0xff] } else { c };
                }
            }
            UlpKind::Icmpv4 | UlpKind::Icmpv6 => {
                let h = hs
                    .hdr::<IcmpHdr>(u.loc)
                    .ok_or(HdrTransformError::MissingHeader("ICMP"))?;
                self.set_icmp_id(&mut h.rest);
                h.csum = fix(h.csum, d);
            }
        }
        Ok(())
    }

    /// An ICMP error: rewrite the packet it quotes, then its own header with the quote's
    /// changes added to the checksum delta.
    fn rewrite_embedded(&self, pkt: &mut Packet, m: &InnerMeta) -> Result<(), HdrTransformError> {
        let (Some(e), Some(d)) = (self.embedded, self.l4_delta) else {
            return Ok(());
        };
        let mut sum = Checksum::new();
        sum.add_u16(d);
        rewrite_embedded(pkt, m, e, &mut sum);
        match m.ulp {
            Some(u) => self.rewrite_l4(&mut AnySeg(pkt), u, sum.fold()),
            None => Ok(()),
        }
    }
}

/// Typed access to the headers of a packet being rewritten.
trait Hdrs {
    fn hdr<T>(&mut self, loc: Loc) -> Option<&mut T>
    where
        T: FromBytes + IntoBytes + KnownLayout + Unaligned;
}

/// Every header in one segment's data (the segment index was checked by the caller).
struct OneSeg<'a>(&'a mut [u8]);

impl Hdrs for OneSeg<'_> {
    #[inline]
    fn hdr<T>(&mut self, loc: Loc) -> Option<&mut T>
    where
        T: FromBytes + IntoBytes + KnownLayout + Unaligned,
    {
        let bytes = self.0.get_mut(loc.off as usize..)?;
        T::mut_from_prefix(bytes).ok().map(|(h, _)| h)
    }
}

/// Headers anywhere in the chain.
struct AnySeg<'a>(&'a mut Packet);

impl Hdrs for AnySeg<'_> {
    #[inline]
    fn hdr<T>(&mut self, loc: Loc) -> Option<&mut T>
    where
        T: FromBytes + IntoBytes + KnownLayout + Unaligned,
    {
        self.0.view_mut(loc)
    }
}

/// Rewrite the quoted header of an ICMP error in place and add the change of the quoted
/// bytes to `icmp_delta` (the ICMP checksum covers them). A quoted header that is absent,
/// truncated or of another family, or whose field does not hold `from`, is left alone.
fn rewrite_embedded(
    pkt: &mut Packet,
    m: &InnerMeta,
    e: EmbeddedRewrite,
    icmp_delta: &mut Checksum,
) {
    let Some(quoted) = pkt.bytes_at_mut(m.body, m.body_len as usize) else {
        return;
    };
    match (e.from, e.to) {
        (IpAddr::Ip4(from), IpAddr::Ip4(to)) => {
            let Ok((h, rest)) = Ipv4Hdr::mut_from_prefix(quoted) else {
                return;
            };
            if h.ver_ihl >> 4 != 4 {
                return;
            }
            let (proto, opts) = (h.proto, h.hdr_len().saturating_sub(Ipv4Hdr::MIN_LEN));
            let field = match e.field {
                EmbeddedField::Src => &mut h.src,
                EmbeddedField::Dst => &mut h.dst,
            };
            if *field != from.bytes() {
                return;
            }
            *field = to.bytes();
            let mut d = Checksum::new();
            delta(&mut d, &from.bytes(), &to.bytes());
            let old_csum = h.csum;
            h.csum = fix(h.csum, d.fold());
            icmp_delta.add(d);
            delta(icmp_delta, &old_csum, &h.csum);
            fix_quoted_l4(
                rest.get_mut(opts..).unwrap_or(&mut []),
                proto,
                d,
                icmp_delta,
            );
        }
        (IpAddr::Ip6(from), IpAddr::Ip6(to)) => {
            let Ok((h, rest)) = Ipv6Hdr::mut_from_prefix(quoted) else {
                return;
            };
            if h.version() != 6 {
                return;
            }
            let proto = h.next_header;
            let field = match e.field {
                EmbeddedField::Src => &mut h.src,
                EmbeddedField::Dst => &mut h.dst,
            };
            if *field != from.bytes() {
                return;
            }
            *field = to.bytes();
            let mut d = Checksum::new();
            delta(&mut d, &from.bytes(), &to.bytes());
            icmp_delta.add(d);
            fix_quoted_l4(rest, proto, d, icmp_delta);
        }
        _ => {}
    }
}

/// The quoted TCP/UDP checksum covers the rewritten address through its pseudo-header: fix
/// it when the quote holds it (the first 8 bytes of UDP, 18 of TCP), and account for the
/// change in the ICMP checksum.
fn fix_quoted_l4(l4: &mut [u8], proto: u8, addr_delta: Checksum, icmp_delta: &mut Checksum) {
    let at = match proto {
        proto::TCP => 16,
        proto::UDP => 6,
        _ => return,
    };
    let Some(c) = l4.get_mut(at..at + 2) else {
        return;
    };
    let Ok(old) = <[u8; 2]>::try_from(&*c) else {
        return;
    };
    if proto == proto::UDP && old == [0, 0] {
        return;
    }
    let new = fix(old, addr_delta.fold());
    c.copy_from_slice(&new);
    delta(icmp_delta, &old, &new);
}

#[cfg(test)]
mod tests;
