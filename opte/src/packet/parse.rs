//! The two parse shapes of OPTE.
//!
//! - Guest side ([`parse_guest`]): Ethernet (one 802.1Q tag recognised), then ARP (which ends
//!   the parse) or IPv4 | IPv6 (extension headers walked), then TCP | UDP | ICMPv4 | ICMPv6.
//! - Network side ([`parse_network`]): outer Ethernet, IPv6 (extension headers walked), UDP to
//!   port 6081, Geneve with options, then an inner frame as above without ARP.
//!
//! One pass, no allocation (unless a header straddles two segments, which is pulled up), no
//! panic: the common shapes take a straight-line pass (`fast`), everything else, and every
//! error, the general parser (`general`). The result records where each header starts and copies out the few values the
//! flow key and port lookup need. IP fragments parse: a first fragment carries its L4
//! header; a later fragment has none and its flow key has zero ports.

use super::{Loc, Packet, ParseError};
use crate::wire::geneve::Replication;
use crate::wire::ip6::Ipv6Hdr;
use crate::wire::udp::UdpHdr;
use opte_api::{InnerFlowId, Ipv6Addr, MacAddr, Vni};

/// The Ethernet header of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EtherInfo {
    pub loc: Loc,
    /// 14, or 18 with an 802.1Q tag.
    pub hdr_len: u8,
    pub dst: MacAddr,
    pub src: MacAddr,
    /// The payload's type (after any tag).
    pub ether_type: u16,
    pub vlan: Option<u16>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Info {
    pub loc: Loc,
    /// IHL × 4: 20 plus options.
    pub hdr_len: u16,
    pub total_len: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv6Info {
    pub loc: Loc,
    /// Bytes of extension headers after the fixed 40.
    pub ext_len: u16,
    pub payload_len: u16,
    /// The upper-layer protocol: the last next-header value of the chain.
    pub proto: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L3Info {
    Ipv4(Ipv4Info),
    Ipv6(Ipv6Info),
}

impl L3Info {
    pub const fn loc(&self) -> Loc {
        match self {
            Self::Ipv4(i) => i.loc,
            Self::Ipv6(i) => i.loc,
        }
    }

    /// Header length including IPv4 options or IPv6 extension headers.
    pub const fn hdr_len(&self) -> usize {
        match self {
            Self::Ipv4(i) => i.hdr_len as usize,
            Self::Ipv6(i) => Ipv6Hdr::LEN + i.ext_len as usize,
        }
    }
}

/// The fragment fields of a fragmented IP packet (IPv4 header or IPv6 Fragment header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragInfo {
    /// Offset of this fragment's data in bytes.
    pub offset: u16,
    pub more: bool,
    pub ident: u32,
}

impl FragInfo {
    pub const fn is_first(&self) -> bool {
        self.offset == 0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UlpKind {
    Tcp,
    Udp,
    Icmpv4,
    Icmpv6,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UlpInfo {
    pub kind: UlpKind,
    pub loc: Loc,
    /// 8 for UDP and ICMP; the data offset × 4 for TCP.
    pub hdr_len: u16,
}

/// A parsed frame as a guest sees it: the guest-side shape, or the inner frame of the
/// network-side shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InnerMeta {
    pub eth: EtherInfo,
    /// Set for an ARP packet, which has no L3/L4.
    pub arp: Option<Loc>,
    pub l3: Option<L3Info>,
    pub frag: Option<FragInfo>,
    pub ulp: Option<UlpInfo>,
    /// Where the payload after the last parsed header starts.
    pub body: Loc,
    /// Payload length per the IP length fields (trailing link padding excluded).
    pub body_len: u32,
    pub flow: InnerFlowId,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GeneveInfo {
    pub loc: Loc,
    /// 8 plus options.
    pub hdr_len: u16,
    pub vni: Vni,
    pub flags: u8,
    /// The Oxide External option: the packet came from outside the rack.
    pub external: bool,
    /// The Oxide Multicast option's replication mode.
    pub replication: Option<Replication>,
    /// The Oxide Mss option.
    pub mss: Option<u32>,
}

/// The encapsulation of a network-side packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OuterMeta {
    pub eth: EtherInfo,
    pub ip6: Ipv6Info,
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub udp: Loc,
    pub udp_src_port: u16,
    pub geneve: GeneveInfo,
}

impl OuterMeta {
    /// Bytes from the outer Ethernet header to the inner one: what a decap removes.
    pub const fn encap_len(&self) -> usize {
        self.eth.hdr_len as usize
            + Ipv6Hdr::LEN
            + self.ip6.ext_len as usize
            + UdpHdr::LEN
            + self.geneve.hdr_len as usize
    }
}

/// A parsed network-side packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetworkMeta {
    pub outer: OuterMeta,
    pub inner: InnerMeta,
}

/// Parse a frame from a guest (no encapsulation).
#[inline]
pub fn parse_guest(pkt: &mut Packet) -> Result<InnerMeta, ParseError> {
    parse_guest_into(pkt, |m| m)
}

/// Parse a Geneve-over-IPv6 frame from the underlay.
#[inline]
pub fn parse_network(pkt: &mut Packet) -> Result<NetworkMeta, ParseError> {
    parse_network_into(pkt, |m| m)
}

/// [`parse_guest`], with the result wrapped by `wrap` where it is made (a host builds the
/// engine's `Parsed` this way): the common, fast-parsed packet's summary is written once,
/// not built and then moved into its wrapper.
#[inline(always)]
pub fn parse_guest_into<T>(
    pkt: &mut Packet,
    wrap: impl FnOnce(InnerMeta) -> T,
) -> Result<T, ParseError> {
    if let Some(m) = super::fast::guest(pkt) {
        return Ok(wrap(m));
    }
    super::general::with_pullups(pkt, |cur| super::general::parse_frame(cur, true)).map(wrap)
}

/// [`parse_network`], with the result wrapped where it is made (see [`parse_guest_into`]).
#[inline(always)]
pub fn parse_network_into<T>(
    pkt: &mut Packet,
    wrap: impl FnOnce(NetworkMeta) -> T,
) -> Result<T, ParseError> {
    if let Some(m) = super::fast::network(pkt) {
        return Ok(wrap(m));
    }
    super::general::with_pullups(pkt, super::general::parse_network_in).map(wrap)
}

/// The general parser alone, for checking the fast path against it.
#[doc(hidden)]
pub fn parse_guest_general(pkt: &mut Packet) -> Result<InnerMeta, ParseError> {
    super::general::with_pullups(pkt, |cur| super::general::parse_frame(cur, true))
}

/// The general parser alone, for checking the fast path against it.
#[doc(hidden)]
pub fn parse_network_general(pkt: &mut Packet) -> Result<NetworkMeta, ParseError> {
    super::general::with_pullups(pkt, super::general::parse_network_in)
}
