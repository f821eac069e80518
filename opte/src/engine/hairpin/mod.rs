//! Hairpin generators: the replies a port makes on the network's behalf, sent straight back
//! to the guest instead of being forwarded. ARP for the gateway ([`arp`]), the DHCPv4 and
//! DHCPv6 servers ([`dhcp4`], [`dhcp6`]), echo replies from the gateway ([`icmp`]) and IPv6
//! Neighbor Discovery for the gateway ([`ndp`]).
//!
//! Each generator is a pure function of the request (a parsed guest-side [`Packet`] and its
//! [`InnerMeta`]) and its configuration, returning a whole Ethernet frame, or
//! [`HairpinReply::NoReply`] for a well-formed request the gateway does not answer, or a
//! [`GenErr`] saying what was wrong with the request. Nothing here knows about ports, layers
//! or rules: the engine's hairpin action wraps these, and its implicit predicates decide
//! which packets reach them. Generators still check what they rely on, so a packet that
//! slips past a predicate is an error value, never a panic or a wrong reply.

pub mod arp;
pub mod dhcp4;
pub mod dhcp6;
pub mod icmp;
pub mod ndp;

pub use arp::{gen_arp_reply, gen_proxy_arp_reply};
pub use dhcp4::{Dhcp4Config, dhcp4_message_type, gen_dhcp4_reply};
pub use dhcp6::{Dhcp6Config, dhcp6_message_type, gen_dhcp6_reply};
pub use icmp::{gen_icmp4_echo_reply, gen_icmp6_echo_reply};
pub use ndp::{gen_neighbor_advert, gen_router_advert};

use crate::build::{L3Repr, UlpRepr, l4_checksum};
use crate::packet::parse::{InnerMeta, L3Info, UlpKind};
use crate::packet::{Loc, Packet};
use crate::wire::EmitError;
use crate::wire::ether::EtherRepr;
use crate::wire::ip4::fill_header_csum;
use crate::wire::udp::UdpHdr;
use alloc::borrow::Cow;
use alloc::vec::Vec;
use core::fmt;

/// What a generator made of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HairpinReply {
    /// A whole Ethernet frame to deliver to the guest.
    Reply(Vec<u8>),
    /// A well-formed request the gateway does not answer (a DHCP Release, an NS for another
    /// target): the engine treats it as Deny.
    NoReply,
}

/// Why a generator could not answer a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GenErr {
    /// The request breaks its protocol's rules (a truncated DHCP message, an NS with a hop
    /// limit below 255); the detail names the rule.
    Malformed(&'static str),
    /// The parse result lacks a header this generator needs (no UDP header for DHCP, say):
    /// the generator was handed a packet its predicates should have kept away.
    MissingMeta(&'static str),
    /// Something that should not happen given the parse result and configuration: a header
    /// the parse reported but cannot be viewed, a reply field that cannot be encoded.
    Unexpected(&'static str),
}

impl GenErr {
    /// A short stable name for drop counters and probes.
    pub const fn reason(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "hairpin_malformed",
            Self::MissingMeta(_) => "hairpin_missing_meta",
            Self::Unexpected(_) => "hairpin_unexpected",
        }
    }

    /// What exactly was wrong.
    pub const fn detail(&self) -> &'static str {
        match self {
            Self::Malformed(d) | Self::MissingMeta(d) | Self::Unexpected(d) => d,
        }
    }
}

impl fmt::Display for GenErr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(d) => write!(f, "malformed request: {d}"),
            Self::MissingMeta(d) => write!(f, "request lacks {d}"),
            Self::Unexpected(d) => write!(f, "unexpected: {d}"),
        }
    }
}

impl core::error::Error for GenErr {}

impl From<EmitError> for GenErr {
    fn from(_: EmitError) -> Self {
        // `Headers::build` sizes its own buffer; only an unencodable header gets here.
        Self::Unexpected("reply headers could not be emitted")
    }
}

/// A reply frame built in the one buffer that is returned: room for the headers is kept
/// at the front, the generator appends the L4 body behind it, and [`ReplyFrame::finish`]
/// writes the headers with their final lengths and checksums over the final bytes. The
/// result is what [`crate::build::Headers::build`] makes of the same headers and body, with
/// one allocation and no copy of the body.
pub(crate) struct ReplyFrame {
    buf: Vec<u8>,
    eth: EtherRepr,
    l3: L3Repr,
    ulp: UlpRepr,
    l4_off: usize,
}

impl ReplyFrame {
    /// Start a frame whose L4 body will be about `body_cap` bytes (only the allocation's
    /// size depends on it).
    pub fn new(eth: EtherRepr, l3: L3Repr, ulp: UlpRepr, body_cap: usize) -> Self {
        let l4_off = eth.emitted_len() + l3.emitted_len();
        let body_off = l4_off + ulp.emitted_len();
        let mut buf = Vec::with_capacity(body_off + body_cap);
        buf.resize(body_off, 0);
        Self {
            buf,
            eth,
            l3,
            ulp,
            l4_off,
        }
    }

    /// The frame so far, for appending the body; what lies before the body's start is
    /// overwritten by `finish`.
    pub fn body(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Where the body starts in [`Self::body`]'s buffer.
    pub fn body_start(&self) -> usize {
        self.l4_off + self.ulp.emitted_len()
    }

    /// Set every length for the body appended, compute the L4 and IPv4 header checksums,
    /// and return the frame.
    pub fn finish(self) -> Result<Vec<u8>, GenErr> {
        self.finish_inner(true)
    }

    /// As [`Self::finish`], but the L4 checksum is the one already in the L4 header
    /// summary (an echo reply's, updated from its request's).
    pub fn finish_with_l4_csum(self) -> Result<Vec<u8>, GenErr> {
        self.finish_inner(false)
    }

    fn finish_inner(mut self, l4_csum: bool) -> Result<Vec<u8>, GenErr> {
        const TOO_LONG: GenErr = GenErr::Unexpected("reply longer than an IP packet");
        let ulp_len = self.buf.len() - self.l4_off;
        let l4_len = u16::try_from(ulp_len).map_err(|_| TOO_LONG)?;
        match &mut self.ulp {
            UlpRepr::Udp(u) => {
                u.len = l4_len;
                u.csum = 0;
            }
            UlpRepr::Tcp(t) => t.csum = 0,
            UlpRepr::Icmpv4(i) | UlpRepr::Icmpv6(i) => {
                if l4_csum {
                    i.csum = 0;
                }
            }
        }
        match &mut self.l3 {
            L3Repr::Ipv4(r) => {
                r.total_len = u16::try_from(r.emitted_len() + ulp_len).map_err(|_| TOO_LONG)?;
                r.csum = 0;
            }
            L3Repr::Ipv6(r) => {
                r.payload_len = u16::try_from(r.ext.len() + ulp_len).map_err(|_| TOO_LONG)?;
            }
        }
        let (head, l4) = self.buf.split_at_mut(self.l4_off);
        let n = self.eth.emit(head)?;
        let ip = head.get_mut(n..).unwrap_or(&mut []);
        self.l3.emit(ip)?;
        self.ulp.emit(l4)?;
        if l4_csum {
            let v = l4_checksum(&self.l3, &self.ulp, l4);
            let at = self.ulp.csum_offset();
            if let Some(f) = l4.get_mut(at..at + 2) {
                f.copy_from_slice(&v.to_be_bytes());
            }
        }
        if let L3Repr::Ipv4(_) = self.l3 {
            fill_header_csum(ip);
        }
        Ok(self.buf)
    }
}

/// `len` bytes of packet data starting at `start`, borrowed when they lie in one segment
/// and copied when they span several (a body split across an mblk chain).
pub(crate) fn gather(pkt: &Packet, start: Loc, len: usize) -> Option<Cow<'_, [u8]>> {
    let mut seg = usize::from(start.seg);
    let mut off = start.off as usize;
    let first = pkt.segment(seg)?.data();
    if let Some(b) = first.get(off..).and_then(|d| d.get(..len)) {
        return Some(Cow::Borrowed(b));
    }
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let data = pkt.segment(seg)?.data().get(off..).unwrap_or(&[]);
        let k = (len - out.len()).min(data.len());
        out.extend_from_slice(data.get(..k)?);
        seg += 1;
        off = 0;
    }
    Some(Cow::Owned(out))
}

/// The bytes after the last parsed header, as far as the IP length fields allow.
pub(crate) fn body<'a>(pkt: &'a Packet, meta: &InnerMeta) -> Result<Cow<'a, [u8]>, GenErr> {
    gather(pkt, meta.body, meta.body_len as usize).ok_or(GenErr::Unexpected(
        "the parsed body runs past the packet's end",
    ))
}

/// A UDP request's ports and payload (bounded by the UDP length, which the parser checked
/// against the IP length).
pub(crate) struct UdpRequest<'a> {
    pub dst_port: u16,
    pub payload: Cow<'a, [u8]>,
}

pub(crate) fn udp_request<'a>(pkt: &'a Packet, meta: &InnerMeta) -> Result<UdpRequest<'a>, GenErr> {
    let ulp = meta.ulp.ok_or(GenErr::MissingMeta("a UDP header"))?;
    if ulp.kind != UlpKind::Udp {
        return Err(GenErr::MissingMeta("a UDP header"));
    }
    if meta.frag.is_some() {
        // Only the first fragment has a UDP header, and it does not hold the whole message.
        return Err(GenErr::Malformed(
            "a fragmented UDP request cannot be answered",
        ));
    }
    let udp = pkt
        .view::<UdpHdr>(ulp.loc)
        .ok_or(GenErr::Unexpected("the parsed UDP header cannot be viewed"))?;
    let len = usize::from(udp.len.get())
        .saturating_sub(UdpHdr::LEN)
        .min(meta.body_len as usize);
    let payload = gather(pkt, meta.body, len).ok_or(GenErr::Unexpected(
        "the parsed UDP payload runs past the packet's end",
    ))?;
    Ok(UdpRequest {
        dst_port: udp.dst_port.get(),
        payload,
    })
}

/// The IPv4 header info of a request, or `MissingMeta`.
pub(crate) fn ipv4_info(meta: &InnerMeta) -> Result<crate::packet::parse::Ipv4Info, GenErr> {
    match meta.l3 {
        Some(L3Info::Ipv4(i)) => Ok(i),
        _ => Err(GenErr::MissingMeta("an IPv4 header")),
    }
}

/// The IPv6 header info of a request, or `MissingMeta`.
pub(crate) fn ipv6_info(meta: &InnerMeta) -> Result<crate::packet::parse::Ipv6Info, GenErr> {
    match meta.l3 {
        Some(L3Info::Ipv6(i)) => Ok(i),
        _ => Err(GenErr::MissingMeta("an IPv6 header")),
    }
}

/// Helpers the generators' tests share: parse a reply and check its checksums.
#[cfg(test)]
pub(crate) mod test_util {
    use super::HairpinReply;
    use crate::build::samples;
    use crate::packet::Packet;
    use crate::packet::parse::{InnerMeta, L3Info, UlpKind, parse_guest};
    use crate::wire::csum::{Checksum, pseudo_v4, pseudo_v6};
    use crate::wire::proto;
    use alloc::vec::Vec;

    /// A benchmark hairpin request, parsed.
    pub fn sample(family: &str, case: &str) -> (Packet, InnerMeta) {
        let mut pkt = samples::hairpin(family, case).unwrap().packet();
        let meta = parse_guest(&mut pkt).unwrap();
        (pkt, meta)
    }

    /// A frame, parsed.
    pub fn parse(frame: &[u8]) -> (Packet, InnerMeta) {
        let mut pkt = Packet::copy_from(frame);
        let meta = parse_guest(&mut pkt).unwrap();
        (pkt, meta)
    }

    pub fn reply(r: HairpinReply) -> Vec<u8> {
        match r {
            HairpinReply::Reply(f) => f,
            HairpinReply::NoReply => panic!("expected a reply, got NoReply"),
        }
    }

    /// Assert that the IPv4 header checksum and the L4 checksum of a parsed one-segment
    /// frame verify (sum to 0xffff over the checksummed bytes).
    pub fn assert_checksums_valid(frame: &[u8], meta: &InnerMeta) {
        let ulp = meta.ulp.unwrap();
        let l4_off = ulp.loc.off as usize;
        let l4 = &frame[l4_off..l4_off + ulp.hdr_len as usize + meta.body_len as usize];
        let mut c = Checksum::of(l4);
        match meta.l3.unwrap() {
            L3Info::Ipv4(i) => {
                let off = i.loc.off as usize;
                let hdr = &frame[off..off + i.hdr_len as usize];
                assert_eq!(Checksum::of(hdr).fold(), 0xffff, "IPv4 header checksum");
                let p = match ulp.kind {
                    UlpKind::Icmpv4 => None,
                    UlpKind::Tcp => Some(proto::TCP),
                    _ => Some(proto::UDP),
                };
                if let Some(p) = p {
                    let src: [u8; 4] = hdr[12..16].try_into().unwrap();
                    let dst: [u8; 4] = hdr[16..20].try_into().unwrap();
                    c.add(pseudo_v4(src, dst, p, l4.len() as u16));
                }
            }
            L3Info::Ipv6(i) => {
                let off = i.loc.off as usize;
                let src: [u8; 16] = frame[off + 8..off + 24].try_into().unwrap();
                let dst: [u8; 16] = frame[off + 24..off + 40].try_into().unwrap();
                c.add(pseudo_v6(src, dst, i.proto, l4.len() as u32));
            }
        }
        assert_eq!(c.fold(), 0xffff, "L4 checksum of {:?}", ulp.kind);
    }

    /// A small deterministic generator for garbage inputs (xorshift64).
    pub struct Garbage(pub u64);

    impl Garbage {
        pub fn next_u64(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        pub fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next_u64() as u8).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gather_reads_across_segments() {
        let pkt = Packet::from_segments(&[&[1, 2, 3], &[], &[4, 5], &[6]]);
        let at = |seg, off| Loc { seg, off };
        assert!(matches!(
            gather(&pkt, at(0, 1), 2),
            Some(Cow::Borrowed([2, 3]))
        ));
        assert_eq!(
            gather(&pkt, at(0, 1), 5).unwrap().as_ref(),
            &[2, 3, 4, 5, 6]
        );
        // A location at the very end of a segment continues in the next one.
        assert_eq!(gather(&pkt, at(0, 3), 3).unwrap().as_ref(), &[4, 5, 6]);
        assert_eq!(gather(&pkt, at(0, 3), 0).unwrap().as_ref(), &[] as &[u8]);
        assert!(gather(&pkt, at(0, 1), 6).is_none());
        assert!(gather(&pkt, at(9, 0), 1).is_none());
    }

    #[test]
    fn errors_name_what_was_wrong() {
        let e = GenErr::Malformed("NS hop limit is not 255");
        assert_eq!(e.reason(), "hairpin_malformed");
        assert_eq!(
            alloc::string::ToString::to_string(&e),
            "malformed request: NS hop limit is not 255"
        );
        assert_eq!(
            alloc::string::ToString::to_string(&GenErr::MissingMeta("a UDP header")),
            "request lacks a UDP header"
        );
    }
}
