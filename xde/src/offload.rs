//! Segmentation and coalescing in software, for a host whose devices cannot do them on a
//! Geneve-tunnelled frame (the Linux daemon: a TAP hands over TCP super-frames of up to
//! 64 KiB, an AF_PACKET socket sends only what it is given).
//!
//! - [`Layout::write_segment`] cuts a super-frame (a guest's TSO/USO frame, encapsulated or
//!   not) into segments: each gets a copy of the headers with its own lengths, TCP sequence
//!   number and flags, IPv4 identification and every checksum (inner L4, IPv4 header, outer
//!   UDP) computed from scratch. The payload is summed once per segment and that sum serves
//!   both the inner and the outer checksum; the payload itself is never copied (the host
//!   sends each segment as its headers plus a slice of the super-frame).
//! - [`Layout::follows`] and [`Layout::merge_headers`] are the other direction (GRO-like):
//!   in-order TCP segments of one flow become one super-frame that the guest's stack takes
//!   in one piece, with a virtio-net GSO header saying how it was cut.
//! - Between two hosts that both speak it, the segments of one super-frame travel as one
//!   UDP datagram whose payload is their Geneve packets back to back, all but the last of
//!   one size ([`Layout::write_dgram_head`]): the kernel's UDP segmentation (USO) cuts it
//!   into one Geneve packet per segment where it meets a real wire, and a virtual one
//!   (veth, a bridge) carries it whole. [`merge_chunks`] turns such a datagram back into
//!   one Geneve frame carrying the coalesced super-frame.
//!
//! Offsets are from the frame's first byte; a frame is one contiguous buffer. Nothing here
//! allocates, and every access is bounds-checked: a frame that does not have the shape its
//! layout says makes a function return `None`/`false`, never panic.

use core::ops::Range;
use opte::packet::parse::{InnerMeta, L3Info, NetworkMeta, UlpKind};
use opte::wire::csum::{Checksum, pseudo_v4, pseudo_v6};
use opte::wire::ip4::fill_header_csum;

/// The most an IP length field can say (IPv4 total length, IPv6 payload length).
pub const IP_LEN_MAX: usize = 65_535;

/// The smallest segment size honoured. A smaller one would turn one frame into thousands
/// (a guest can ask for anything): such a frame is dropped. TCP's own floor is 88 bytes.
pub const MIN_SEG: usize = 64;

const TCP_FIN: u8 = 0x01;
#[cfg(test)]
const TCP_RST: u8 = 0x04;
const TCP_PSH: u8 = 0x08;
const TCP_ACK: u8 = 0x10;
#[cfg(test)]
const TCP_URG: u8 = 0x20;
const TCP_CWR: u8 = 0x80;

/// Where an encapsulated frame's outer IPv6 and UDP headers are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outer {
    pub ip6: usize,
    pub udp: usize,
}

/// Where a TCP or UDP frame's headers and payload are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The encapsulation's headers, for a frame bound for the underlay.
    pub outer: Option<Outer>,
    /// The (inner) IP header: IPv4, or IPv6 without extension headers.
    pub ip: usize,
    pub v4: bool,
    /// The TCP or UDP header.
    pub l4: usize,
    pub tcp: bool,
    /// Where the payload starts: everything before it is a segment's headers.
    pub payload: usize,
    /// Where it ends, per the IP length fields (link padding is not payload).
    pub end: usize,
}

impl Layout {
    /// The layout of a parsed guest-shaped frame, if it is TCP or UDP over IPv4 or IPv6
    /// (no extension headers), not a fragment, all in the first segment.
    pub fn of_inner(m: &InnerMeta) -> Option<Self> {
        if m.frag.is_some() {
            return None;
        }
        let (l3, u) = (m.l3?, m.ulp?);
        let tcp = match u.kind {
            UlpKind::Tcp => true,
            UlpKind::Udp => false,
            UlpKind::Icmpv4 | UlpKind::Icmpv6 => return None,
        };
        let v4 = match l3 {
            L3Info::Ipv4(_) => true,
            L3Info::Ipv6(i) if i.ext_len == 0 => false,
            L3Info::Ipv6(_) => return None,
        };
        if [m.eth.loc.seg, l3.loc().seg, u.loc.seg, m.body.seg]
            .iter()
            .any(|&s| s != 0)
        {
            return None;
        }
        let ip = l3.loc().off as usize;
        let l4 = u.loc.off as usize;
        let payload = l4 + usize::from(u.hdr_len);
        if l4 != ip + l3.hdr_len() || m.body.off as usize != payload {
            return None;
        }
        Some(Self {
            outer: None,
            ip,
            v4,
            l4,
            tcp,
            payload,
            end: payload + m.body_len as usize,
        })
    }

    /// The layout of a parsed encapsulated frame: its inner frame's, with the outer
    /// headers' places.
    pub fn of_network(n: &NetworkMeta) -> Option<Self> {
        if n.outer.ip6.ext_len != 0 || n.outer.ip6.loc.seg != 0 || n.outer.udp.seg != 0 {
            return None;
        }
        Some(Self {
            outer: Some(Outer {
                ip6: n.outer.ip6.loc.off as usize,
                udp: n.outer.udp.off as usize,
            }),
            ..Self::of_inner(&n.inner)?
        })
    }

    /// Payload bytes.
    pub const fn payload_len(&self) -> usize {
        self.end.saturating_sub(self.payload)
    }

    /// How many segments of `mss` payload bytes the payload makes (one if it is empty).
    pub const fn seg_count(&self, mss: usize) -> usize {
        if mss == 0 {
            return 0;
        }
        let n = self.payload_len().div_ceil(mss);
        if n == 0 { 1 } else { n }
    }

    /// Segment `i` of `frame` cut every `mss` payload bytes: its headers written into `hdr`
    /// (exactly [`Layout::payload`] bytes) with their lengths, TCP sequence number and
    /// flags (FIN and PSH only on the last segment, CWR only on the first), IPv4
    /// identification (the first segment's plus `i`), and the inner L4, IPv4 header and
    /// outer UDP checksums. Returns where its payload is in `frame`.
    pub fn write_segment(
        &self,
        frame: &[u8],
        mss: usize,
        i: usize,
        hdr: &mut [u8],
    ) -> Option<Range<usize>> {
        let n = self.seg_count(mss);
        if i >= n || hdr.len() != self.payload {
            return None;
        }
        hdr.copy_from_slice(frame.get(..self.payload)?);
        let start = self.payload + i * mss;
        let stop = (start + mss).min(self.end);
        let body = frame.get(start..stop)?;
        let len = stop - start;
        let l4_len = self.payload - self.l4 + len;
        self.set_ip_len(hdr, l4_len)?;
        if self.v4 {
            let id = get16(hdr, self.ip + 4)?.wrapping_add(i as u16);
            put16(hdr, self.ip + 4, id)?;
            fill_header_csum(hdr.get_mut(self.ip..self.l4)?);
        }
        if self.tcp {
            let seq = get32(hdr, self.l4 + 4)?.wrapping_add((i * mss) as u32);
            put32(hdr, self.l4 + 4, seq)?;
            let flags = hdr.get_mut(self.l4 + 13)?;
            if i + 1 < n {
                *flags &= !(TCP_FIN | TCP_PSH);
            }
            if i > 0 {
                *flags &= !TCP_CWR;
            }
        } else {
            put16(hdr, self.l4 + 4, u16::try_from(l4_len).ok()?)?;
        }
        let body_sum = Checksum::of(body);
        let at = self.csum_at();
        put16(hdr, at, 0)?;
        let mut c = self.pseudo(hdr, l4_len)?;
        c.add_bytes(hdr.get(self.l4..)?);
        c.add(body_sum);
        put16(hdr, at, self.finalize(c))?;
        if let Some(o) = self.outer {
            let udp_len = hdr.len() - o.udp + len;
            put16(
                hdr,
                o.ip6 + 4,
                u16::try_from(udp_len + o.udp - o.ip6 - 40).ok()?,
            )?;
            put16(hdr, o.udp + 4, u16::try_from(udp_len).ok()?)?;
            put16(hdr, o.udp + 6, 0)?;
            let mut c = pseudo_v6(addr16(hdr, o.ip6 + 8)?, addr16(hdr, o.ip6 + 24)?, 17, {
                udp_len as u32
            });
            c.add_bytes(hdr.get(o.udp..)?);
            c.add(body_sum);
            put16(hdr, o.udp + 6, c.finalize_udp())?;
        }
        Some(start..stop)
    }

    /// Whether `frame`'s L4 checksum verifies (a UDP checksum of zero over IPv4 means none
    /// was computed, which verifies).
    pub fn l4_csum_ok(&self, frame: &[u8]) -> bool {
        let check = || {
            let csum = get16(frame, self.csum_at())?;
            if !self.tcp && self.v4 && csum == 0 {
                return Some(true);
            }
            let mut c = self.pseudo(frame, self.end.checked_sub(self.l4)?)?;
            c.add_bytes(frame.get(self.l4..self.end)?);
            Some(c.fold() == 0xffff)
        };
        check().unwrap_or(false)
    }

    /// Whether TCP segment `b` (of layout `lb`) carries on where `a` (of this layout) ends,
    /// in one super-frame: the same flow and headers (options included), byte for byte,
    /// but for the lengths, checksums, IPv4 identification and sequence number, which must
    /// be `a`'s plus `a`'s payload; `a` a plain ACK with data, `b` an ACK with data and
    /// perhaps PSH. (The size rules, every segment but the last full, are the caller's.)
    pub fn follows(&self, a: &[u8], lb: &Self, b: &[u8]) -> bool {
        let shape = self.tcp
            && lb.tcp
            && self.outer.is_none()
            && lb.outer.is_none()
            && self.v4 == lb.v4
            && (self.ip, self.l4, self.payload) == (lb.ip, lb.l4, lb.payload)
            && self.payload_len() > 0
            && lb.payload_len() > 0;
        if !shape {
            return false;
        }
        let check = || {
            let (fa, fb) = (*a.get(self.l4 + 13)?, *b.get(self.l4 + 13)?);
            if fa != TCP_ACK || fb & !TCP_PSH != TCP_ACK {
                return Some(false);
            }
            let next = get32(a, self.l4 + 4)?.wrapping_add(self.payload_len() as u32);
            if get32(b, self.l4 + 4)? != next {
                return Some(false);
            }
            // The bytes that may differ, in order.
            let (ip, l4) = (self.ip, self.l4);
            let skip: [Range<usize>; 5] = if self.v4 {
                [
                    ip + 2..ip + 6,
                    ip + 10..ip + 12,
                    l4 + 4..l4 + 8,
                    l4 + 13..l4 + 14,
                    l4 + 16..l4 + 18,
                ]
            } else {
                [
                    ip + 4..ip + 6,
                    ip + 6..ip + 6,
                    l4 + 4..l4 + 8,
                    l4 + 13..l4 + 14,
                    l4 + 16..l4 + 18,
                ]
            };
            let mut at = 0;
            for r in skip
                .iter()
                .chain(core::iter::once(&(self.payload..self.payload)))
            {
                if a.get(at..r.start)? != b.get(at..r.start)? {
                    return Some(false);
                }
                at = r.end;
            }
            Some(true)
        };
        check().unwrap_or(false)
    }

    /// Turn `first`'s headers into those of a super-frame of `payload` bytes in all: its
    /// IP length and IPv4 header checksum, PSH if `psh`, and the L4 checksum field holding
    /// the pseudo-header sum only (virtio-net `NEEDS_CSUM`: the receiver's stack takes the
    /// checksums as verified, and whoever segments it again finishes each one).
    pub fn merge_headers(&self, first: &mut [u8], payload: usize, psh: bool) -> Option<()> {
        let l4_len = self.payload - self.l4 + payload;
        self.set_ip_len(first, l4_len)?;
        if self.v4 {
            fill_header_csum(first.get_mut(self.ip..self.l4)?);
        }
        if psh && self.tcp {
            *first.get_mut(self.l4 + 13)? |= TCP_PSH;
        }
        let pseudo = self.pseudo(first, l4_len)?.fold();
        put16(first, self.csum_at(), pseudo)
    }

    /// Split a super-frame in two at a segment boundary: the payload of its first `segs`
    /// segments of `mss` bytes stays in `frame`, whose headers are fixed for it (returns its
    /// new length), and the headers and the rest of the payload are written to `tail`
    /// (returns its length): its TCP sequence number and IPv4 identification moved on as
    /// its first segment's would have been, its flags the original's (FIN, PSH and the like
    /// belong to the end; CWR to the start), lengths set, and each partial checksum holding
    /// its own pseudo-header sum. The two cut as the whole would have.
    pub fn split(
        &self,
        frame: &mut [u8],
        mss: usize,
        segs: usize,
        tail: &mut [u8],
    ) -> Option<(usize, usize)> {
        let keep = mss.checked_mul(segs)?;
        let rest = self
            .payload_len()
            .checked_sub(keep)
            .filter(|r| *r > 0 && keep > 0)?;
        let t = tail.get_mut(..self.payload + rest)?;
        let (th, tb) = t.split_at_mut(self.payload);
        th.copy_from_slice(frame.get(..self.payload)?);
        tb.copy_from_slice(frame.get(self.payload + keep..self.end)?);
        if self.tcp {
            let seq = get32(th, self.l4 + 4)?.wrapping_add(keep as u32);
            put32(th, self.l4 + 4, seq)?;
            *th.get_mut(self.l4 + 13)? &= !TCP_CWR;
            *frame.get_mut(self.l4 + 13)? &= !(TCP_FIN | TCP_PSH);
        }
        if self.v4 {
            let id = get16(th, self.ip + 4)?.wrapping_add(segs as u16);
            put16(th, self.ip + 4, id)?;
        }
        for (f, n) in [(&mut *frame, keep), (&mut *t, rest)] {
            if !self.tcp {
                put16(f, self.l4 + 4, u16::try_from(8 + n).ok()?)?;
            }
            self.merge_headers(f, n, false)?;
        }
        Some((self.payload + keep, self.payload + rest))
    }

    /// Where the L4 checksum field is.
    pub const fn csum_at(&self) -> usize {
        self.l4 + if self.tcp { 16 } else { 6 }
    }

    fn set_ip_len(&self, hdr: &mut [u8], l4_len: usize) -> Option<()> {
        if self.v4 {
            put16(
                hdr,
                self.ip + 2,
                u16::try_from(self.l4 - self.ip + l4_len).ok()?,
            )
        } else {
            put16(hdr, self.ip + 4, u16::try_from(l4_len).ok()?)
        }
    }

    fn pseudo(&self, hdr: &[u8], l4_len: usize) -> Option<Checksum> {
        let proto = if self.tcp { 6 } else { 17 };
        Some(if self.v4 {
            let src: [u8; 4] = hdr.get(self.ip + 12..self.ip + 16)?.try_into().ok()?;
            let dst: [u8; 4] = hdr.get(self.ip + 16..self.ip + 20)?.try_into().ok()?;
            pseudo_v4(src, dst, proto, u16::try_from(l4_len).ok()?)
        } else {
            let src = addr16(hdr, self.ip + 8)?;
            let dst = addr16(hdr, self.ip + 24)?;
            pseudo_v6(src, dst, proto, u32::try_from(l4_len).ok()?)
        })
    }

    fn finalize(&self, c: Checksum) -> u16 {
        if self.tcp {
            c.finalize()
        } else {
            c.finalize_udp()
        }
    }
}

/// The outer headers of a UDP datagram of Geneve chunks: Ethernet, IPv6 (no extension
/// headers), UDP.
pub const DGRAM_OUTER: usize = 14 + 40 + 8;

impl Layout {
    /// The outer Ethernet, IPv6 and UDP headers of a datagram of `udp_len` bytes (UDP
    /// header included) carrying chunks of this encapsulated frame, written into `head`
    /// ([`DGRAM_OUTER`] bytes): lengths set, and the UDP checksum field holding the
    /// pseudo-header sum only, for the kernel or the NIC to finish per segment (its UDP
    /// segmentation takes it so).
    pub fn write_dgram_head(&self, frame: &[u8], udp_len: usize, head: &mut [u8]) -> Option<()> {
        let o = self.outer?;
        if o.udp + 8 != DGRAM_OUTER || head.len() != DGRAM_OUTER {
            return None;
        }
        head.copy_from_slice(frame.get(..DGRAM_OUTER)?);
        let len = u16::try_from(udp_len).ok()?;
        put16(head, o.ip6 + 4, len)?;
        put16(head, o.udp + 4, len)?;
        let sum = pseudo_v6(addr16(head, o.ip6 + 8)?, addr16(head, o.ip6 + 24)?, 17, {
            u32::from(len)
        });
        put16(head, o.udp + 6, sum.fold())
    }
}

/// A datagram of Geneve chunks turned back into one frame by [`merge_chunks`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Merged {
    /// The frame's new length.
    pub len: usize,
    /// How many chunks it was.
    pub chunks: usize,
    /// The first chunk's payload bytes: the size the segments were cut at.
    pub seg: usize,
    /// The inner frame's layout, from the inner Ethernet header.
    pub inner: Layout,
}

/// Rewrite in place a UDP datagram (`frame`: Ethernet, IPv6, UDP, then Geneve chunks of
/// `chunk` bytes each but the last) into one Geneve frame: the first chunk's Geneve and
/// inner headers, then every chunk's TCP payload, the inner headers made those of the
/// super-frame (its L4 checksum partial, see [`Layout::merge_headers`]), the outer
/// lengths fixed and the outer UDP checksum zero (RFC 6935). Only if every chunk is a TCP
/// segment of one flow following the one before, with the same Geneve header; otherwise
/// (`None`) nothing has been changed.
pub fn merge_chunks(frame: &mut [u8], chunk: usize) -> Option<Merged> {
    let len = frame.len();
    if chunk == 0 || len <= DGRAM_OUTER + chunk {
        return None;
    }
    let starts = (DGRAM_OUTER..len).step_by(chunk);
    let n = starts.len();
    let (first_lay, first_inner) =
        chunk_layout(frame, DGRAM_OUTER, (DGRAM_OUTER + chunk).min(len))?;
    let glen = first_inner - DGRAM_OUTER;
    let mut prev = (first_lay, first_inner);
    let mut total = first_lay.payload_len();
    let size = total;
    for (i, at) in starts.clone().enumerate().skip(1) {
        let stop = (at + chunk).min(len);
        let (lay, inner) = chunk_layout(frame, at, stop)?;
        let same_geneve = frame.get(at..at + glen)? == frame.get(DGRAM_OUTER..first_inner)?;
        let (pl, pi) = prev;
        let a = frame.get(pi..pi + pl.end)?;
        let b = frame.get(inner..stop)?;
        let full = lay.payload_len() == size || i + 1 == n;
        if !same_geneve || !full || lay.payload_len() > size || !pl.follows(a, &lay, b) {
            return None;
        }
        total += lay.payload_len();
        prev = (lay, inner);
    }
    if first_lay.payload - first_lay.ip + total > IP_LEN_MAX {
        return None;
    }
    let (last_lay, last_inner) = prev;
    let psh = frame
        .get(last_inner + last_lay.l4 + 13)
        .is_some_and(|f| f & TCP_PSH != 0);
    // Every check passed: move the payloads together. Each moves back over headers
    // already read; the next chunk's headers are never reached before they are read.
    let mut dst = first_inner + first_lay.end;
    for at in starts.skip(1) {
        let (lay, inner) = chunk_layout(frame, at, (at + chunk).min(len))?;
        let src = inner + lay.payload..inner + lay.end;
        let n = src.len();
        frame.copy_within(src, dst);
        dst += n;
    }
    first_lay.merge_headers(frame.get_mut(first_inner..dst)?, total, psh)?;
    set_geneve_len(frame, dst - DGRAM_OUTER)?;
    Some(Merged {
        len: dst,
        chunks: n,
        seg: size,
        inner: first_lay,
    })
}

/// Make `frame`'s outer headers (Ethernet, IPv6, UDP) those of one Geneve packet of
/// `chunk` bytes: the IPv6 and UDP lengths, and no UDP checksum (RFC 6935).
pub fn set_geneve_len(frame: &mut [u8], chunk: usize) -> Option<()> {
    let len = u16::try_from(8 + chunk).ok()?;
    put16(frame, 14 + 4, len)?;
    put16(frame, 14 + 40 + 4, len)?;
    put16(frame, 14 + 40 + 6, 0)
}

/// The layout of the TCP segment in the Geneve chunk `frame[start..stop]`, relative to its
/// inner Ethernet header, and where that header is; only a chunk that is exactly one
/// Geneve packet of Ethernet, IPv4 or IPv6 (no extension headers), TCP.
fn chunk_layout(frame: &[u8], start: usize, stop: usize) -> Option<(Layout, usize)> {
    let c = frame.get(start..stop)?;
    let g0 = *c.first()?;
    if g0 >> 6 != 0 || get16(c, 2)? != 0x6558 {
        return None;
    }
    let eth = 8 + usize::from(g0 & 0x3f) * 4;
    let f = c.get(eth..)?;
    let ip = 14;
    let (v4, l4, end) = match get16(f, 12)? {
        0x0800 => {
            let b = *f.get(ip)?;
            let ihl = usize::from(b & 0x0f) * 4;
            let frag = get16(f, ip + 6)? & 0x3fff;
            if b >> 4 != 4 || ihl < 20 || *f.get(ip + 9)? != 6 || frag != 0 {
                return None;
            }
            (true, ip + ihl, ip + usize::from(get16(f, ip + 2)?))
        }
        0x86dd => {
            if *f.get(ip)? >> 4 != 6 || *f.get(ip + 6)? != 6 {
                return None;
            }
            (false, ip + 40, ip + 40 + usize::from(get16(f, ip + 4)?))
        }
        _ => return None,
    };
    let payload = l4 + usize::from(*f.get(l4 + 12)? >> 4) * 4;
    if payload < l4 + 20 || payload > end || end != f.len() {
        return None;
    }
    Some((
        Layout {
            outer: None,
            ip,
            v4,
            l4,
            tcp: true,
            payload,
            end,
        },
        start + eth,
    ))
}

/// Finish a checksum the sender left partial (virtio-net `NEEDS_CSUM`): the one's
/// complement sum of `frame` from `start` (the field holding the pseudo-header's sum) is
/// stored at `start + offset`. False if the offsets are outside the frame.
pub fn finish_partial(frame: &mut [u8], start: usize, offset: usize) -> bool {
    let at = start + offset;
    let Some(rest) = frame.get(start..) else {
        return false;
    };
    if at + 2 > frame.len() || !offset.is_multiple_of(2) {
        return false;
    }
    let c = match Checksum::of(rest).finalize() {
        0 => 0xffff,
        c => c,
    };
    put16(frame, at, c).is_some()
}

fn get16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn get32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn put16(b: &mut [u8], at: usize, v: u16) -> Option<()> {
    b.get_mut(at..at + 2)?.copy_from_slice(&v.to_be_bytes());
    Some(())
}

fn put32(b: &mut [u8], at: usize, v: u32) -> Option<()> {
    b.get_mut(at..at + 4)?.copy_from_slice(&v.to_be_bytes());
    Some(())
}

fn addr16(b: &[u8], at: usize) -> Option<[u8; 16]> {
    b.get(at..at + 16)?.try_into().ok()
}

#[cfg(test)]
mod tests;
