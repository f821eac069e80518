//! Packet buffers and parsing.
//!
//! A [`Packet`] is a chain of [`Segment`]s, as an illumos `mblk_t` chain is: each segment owns
//! a buffer with room in front (headroom) so that an encapsulation can be written before the
//! payload without moving it. Parsing ([`parse`]) walks the chain once and returns a small
//! struct of header locations and the fields the flow key needs; headers are then read and
//! written in place through zerocopy views ([`Packet::view`], [`Packet::view_mut`]).

mod error;
mod fast;
mod general;
pub mod parse;
mod segment;

pub use error::{Expected, Mismatch, ParseError};
pub use segment::{BadRange, Lender, Segment, SegmentParts};

use alloc::vec::Vec;
use smallvec::SmallVec;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Headroom given to packets built by this crate: enough for an outer Ethernet + IPv6 + UDP +
/// Geneve header with options, and then some.
pub const DEFAULT_HEADROOM: usize = 128;

/// Where a header starts: segment index and byte offset within that segment's data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Loc {
    pub seg: u16,
    pub off: u32,
}

/// A packet: one or more segments. The segment list keeps two segments inline (the common
/// chains: one buffer, or outer headers + inner frame), so a packet of one or two segments
/// allocates only their buffers.
#[derive(Clone, Debug)]
pub struct Packet {
    /// Never empty: an empty packet is one empty segment.
    segs: SmallVec<[Segment; 2]>,
    offload: Offload,
    /// Set by a transform that pushed an encapsulation; the rest of [`EncapInfo`] is read
    /// from the outer headers it wrote, so the packet stays small to move.
    encap: Option<EncapMarks>,
}

/// What a pushed encapsulation's bytes do not say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct EncapMarks {
    pub(crate) internal: bool,
    pub(crate) mss_at: Option<u16>,
    pub(crate) repl_at: Option<u16>,
}

/// Where the pushed outer headers keep what [`EncapInfo`] reports: Ethernet (14), IPv6
/// (40: destination at 24), UDP (8: source port first), Geneve (VNI at 4).
const OUTER_IP6_DST: usize = 14 + 24;
const OUTER_UDP_SRC: usize = 14 + 40;
const OUTER_VNI: usize = 14 + 40 + 8 + 4;

impl Default for Packet {
    fn default() -> Self {
        let mut segs = SmallVec::new();
        segs.push(Segment::default());
        Self::of(segs)
    }
}

/// The state of a packet's L4 checksum, as the host's device reported it or needs it done.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CsumState {
    /// Nothing is known: the checksum field is whatever the sender wrote (full software
    /// checksums; header transforms update it incrementally, RFC 1624).
    #[default]
    None,
    /// virtio-net `NEEDS_CSUM`: the field at `csum_start + csum_offset` holds only the
    /// pseudo-header sum, and whoever sends the packet on must finish it over the bytes from
    /// `csum_start`. Offsets count from the start of the frame as the guest sent it.
    Partial { csum_start: u16, csum_offset: u16 },
    /// The checksum was verified (on receive) or is known to be correct.
    Complete,
}

/// The segmentation a packet asks for (virtio-net GSO types).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GsoKind {
    TcpV4,
    TcpV6,
    Udp,
}

/// Segmentation offload: split the payload into segments of `size` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gso {
    pub kind: GsoKind,
    pub size: u16,
}

/// Offload state carried with a packet between the host's device and the engine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Offload {
    pub csum: CsumState,
    pub gso: Option<Gso>,
}

/// What the host needs to send an encapsulated packet, left on the packet by the transform
/// that pushed the encapsulation, so the host never parses the headers it was just given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncapInfo {
    /// The outer IPv6 destination: a sled, a boundary endpoint, or an underlay group.
    pub dst: opte_api::Ipv6Addr,
    pub vni: opte_api::Vni,
    /// The flow's hash (the outer UDP source port): picks the underlay link and next hop.
    pub flow_hash: u16,
    /// The destination is inside the rack (another guest), so the underlay MTU applies
    /// rather than the internet path's.
    pub internal: bool,
    /// Where the Oxide MSS option's 4-byte body is, from the start of the frame, when the
    /// encapsulation carries one for the host to fill.
    pub mss_at: Option<u16>,
    /// Where the Oxide Multicast option's body is (its first byte holds the replication
    /// mode in its top two bits), for a host replicating to next hops.
    pub repl_at: Option<u16>,
}

impl Packet {
    /// A one-segment packet holding a copy of `data`, with [`DEFAULT_HEADROOM`].
    pub fn copy_from(data: &[u8]) -> Self {
        let mut segs = SmallVec::new();
        segs.push(Segment::with_headroom(data, DEFAULT_HEADROOM));
        Self::of(segs)
    }

    fn of(segs: SmallVec<[Segment; 2]>) -> Self {
        Self {
            segs,
            offload: Offload::default(),
            encap: None,
        }
    }

    /// A one-segment packet over a host buffer (see [`Segment::from_vec`]).
    pub fn from_segment(seg: Segment) -> Self {
        let mut segs = SmallVec::new();
        segs.push(seg);
        Self::of(segs)
    }

    /// The segments back, for the host to return their buffers to its pool.
    pub fn into_segments(self) -> impl Iterator<Item = Segment> {
        self.segs.into_iter()
    }

    pub fn offload(&self) -> Offload {
        self.offload
    }

    pub fn set_offload(&mut self, o: Offload) {
        self.offload = o;
    }

    /// The encapsulation the last transform pushed, if it pushed one: read from the outer
    /// headers it wrote in front of the first segment, so no parse is needed.
    pub fn encap(&self) -> Option<EncapInfo> {
        let marks = self.encap?;
        let d = self.segs.first()?.data();
        let dst: [u8; 16] = d.get(OUTER_IP6_DST..OUTER_IP6_DST + 16)?.try_into().ok()?;
        let hash = d.get(OUTER_UDP_SRC..OUTER_UDP_SRC + 2)?;
        let vni = d.get(OUTER_VNI..OUTER_VNI + 3)?;
        let vni = u32::from_be_bytes([0, *vni.first()?, *vni.get(1)?, *vni.get(2)?]);
        Some(EncapInfo {
            dst: opte_api::Ipv6Addr::from_const(dst),
            vni: opte_api::Vni::new(vni)?,
            flow_hash: u16::from_be_bytes([*hash.first()?, *hash.get(1)?]),
            internal: marks.internal,
            mss_at: marks.mss_at,
            repl_at: marks.repl_at,
        })
    }

    pub(crate) fn set_encap(&mut self, e: Option<EncapMarks>) {
        self.encap = e;
    }

    /// A chain with one segment per slice. Every segment gets [`DEFAULT_HEADROOM`], like a
    /// freshly allocated mblk would have room to grow in front.
    pub fn from_segments(segs: &[&[u8]]) -> Self {
        Self::from_segment_list(
            segs.iter()
                .map(|s| Segment::with_headroom(s, DEFAULT_HEADROOM)),
        )
    }

    /// A chain from segments built elsewhere: the host's receive buffers, or the buffers of
    /// an `mblk_t` chain the illumos glue lent (see [`Segment::lend`]). A chain of one or two
    /// segments allocates nothing.
    pub fn from_segment_list(segs: impl IntoIterator<Item = Segment>) -> Self {
        let segs: SmallVec<[Segment; 2]> = segs.into_iter().collect();
        if segs.is_empty() {
            return Self::default();
        }
        Self::of(segs)
    }

    /// Total bytes of packet data across all segments.
    #[inline]
    pub fn len(&self) -> usize {
        // The usual chains, one buffer or outer headers + inner frame, without a loop.
        match self.segs.as_slice() {
            [one] => one.len(),
            [a, b] => a.len() + b.len(),
            segs => segs.iter().map(Segment::len).sum(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn seg_count(&self) -> usize {
        self.segs.len()
    }

    #[inline]
    pub fn segment(&self, i: usize) -> Option<&Segment> {
        self.segs.get(i)
    }

    #[inline]
    pub fn segment_mut(&mut self, i: usize) -> Option<&mut Segment> {
        self.segs.get_mut(i)
    }

    pub fn segments(&self) -> impl Iterator<Item = &Segment> {
        self.segs.iter()
    }

    /// All packet data, copied into one buffer.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len());
        for s in self.segments() {
            v.extend_from_slice(s.data());
        }
        v
    }

    /// `len` bytes of data at `loc`, if they lie within one segment.
    pub fn bytes_at(&self, loc: Loc, len: usize) -> Option<&[u8]> {
        let off = loc.off as usize;
        self.segment(usize::from(loc.seg))?
            .data()
            .get(off..off + len)
    }

    pub fn bytes_at_mut(&mut self, loc: Loc, len: usize) -> Option<&mut [u8]> {
        let off = loc.off as usize;
        self.segment_mut(usize::from(loc.seg))?
            .data_mut()
            .get_mut(off..off + len)
    }

    /// A typed view of the header at `loc`. Parsing guarantees every header it reports lies
    /// within one segment, so for a location from a parse result this is `Some`.
    #[inline]
    pub fn view<T>(&self, loc: Loc) -> Option<&T>
    where
        T: FromBytes + KnownLayout + Immutable + Unaligned,
    {
        let seg = self.segment(usize::from(loc.seg))?;
        let bytes = seg.data().get(loc.off as usize..)?;
        T::ref_from_prefix(bytes).ok().map(|(h, _)| h)
    }

    #[inline]
    pub fn view_mut<T>(&mut self, loc: Loc) -> Option<&mut T>
    where
        T: FromBytes + IntoBytes + KnownLayout + Unaligned,
    {
        let seg = self.segment_mut(usize::from(loc.seg))?;
        let bytes = seg.data_mut().get_mut(loc.off as usize..)?;
        T::mut_from_prefix(bytes).ok().map(|(h, _)| h)
    }

    /// Make room for `n` bytes in front of the packet and return them. Uses the first
    /// segment's headroom when it suffices (the payload does not move, nothing is allocated);
    /// otherwise a new front segment is allocated with fresh headroom.
    #[inline]
    pub fn prepend(&mut self, n: usize) -> &mut [u8] {
        let room = self.segs.first().map_or(0, Segment::headroom);
        if room < n {
            self.prepend_segment(n);
        }
        self.segs
            .first_mut()
            .and_then(|head| head.grow_front(n))
            .unwrap_or(&mut [])
    }

    /// A new front segment with room for `n` bytes, when the first one's headroom is short.
    #[cold]
    #[inline(never)]
    fn prepend_segment(&mut self, n: usize) {
        let seg = Segment::empty_with_headroom(DEFAULT_HEADROOM + n);
        if self.segs.len() == 1 && self.segs.first().is_some_and(Segment::is_empty) {
            self.segs.clear();
        }
        self.segs.insert(0, seg);
    }

    /// Drop `n` bytes from the front of the packet (an encapsulation being popped), freeing
    /// the segments this empties. Fails, changing nothing, if the packet is shorter than `n`.
    pub fn trim_front(&mut self, n: usize) -> Result<(), usize> {
        // The common pops take part of the first segment, or exactly the first segment
        // (outer headers in their own buffer) of a longer chain: no need to add up the chain.
        let first = self.segs.first().map_or(0, Segment::len);
        if n < first {
            if let Some(head) = self.segs.first_mut() {
                head.trim_front(n);
            }
            return Ok(());
        }
        if n == first && self.segs.len() > 1 {
            self.segs.remove(0);
            // Empty segments that followed go too: the data starts in the first segment.
            while self.segs.len() > 1 && self.segs.first().is_some_and(Segment::is_empty) {
                self.segs.remove(0);
            }
            return Ok(());
        }
        let len = self.len();
        if n > len {
            return Err(len);
        }
        let mut left = n;
        while let Some(head) = self.segs.first_mut() {
            left -= head.trim_front(left);
            if !head.is_empty() || self.segs.len() == 1 {
                break;
            }
            self.segs.remove(0);
        }
        Ok(())
    }

    /// Drop bytes at the end so that the packet is `len` bytes long (trailing padding).
    pub fn truncate(&mut self, len: usize) {
        let mut keep = len;
        let mut cut_at = None;
        for (i, s) in self.segs.iter_mut().enumerate() {
            if keep >= s.len() {
                keep -= s.len();
            } else {
                s.truncate(keep);
                keep = 0;
                if cut_at.is_none() {
                    cut_at = Some(i + 1);
                }
            }
        }
        if let Some(i) = cut_at {
            self.segs.truncate(i.max(1));
        }
    }

    /// Make the `n` bytes starting at offset `off` of segment `seg` contiguous, by moving
    /// bytes from the following segments onto the end of `seg` (growing its buffer if need
    /// be) and freeing segments this empties. Returns false, having moved what it could, if
    /// the chain ends first. Only a header that straddles a segment boundary needs this.
    pub(crate) fn pullup(&mut self, seg: usize, off: usize, n: usize) -> bool {
        loop {
            let Some(cur_len) = self.segment(seg).map(Segment::len) else {
                return false;
            };
            let avail = cur_len.saturating_sub(off);
            if avail >= n {
                return true;
            }
            let want = n - avail;
            let Some(next) = self.segs.get_mut(seg + 1) else {
                return false;
            };
            let k = want.min(next.len());
            let mut moved = [0u8; 64];
            let mut taken = Vec::new();
            let chunk: &[u8] = if k <= moved.len() {
                if let (Some(dst), Some(src)) = (moved.get_mut(..k), next.data().get(..k)) {
                    dst.copy_from_slice(src);
                }
                moved.get(..k).unwrap_or(&[])
            } else {
                taken.extend_from_slice(next.data().get(..k).unwrap_or(&[]));
                &taken
            };
            next.trim_front(k);
            if next.is_empty() {
                self.segs.remove(seg + 1);
            }
            if let Some(cur) = self.segment_mut(seg) {
                cur.append(chunk);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_segment_has_headroom_and_data() {
        let p = Packet::copy_from(&[1, 2, 3]);
        assert_eq!(p.len(), 3);
        assert_eq!(p.seg_count(), 1);
        assert_eq!(p.segment(0).unwrap().headroom(), DEFAULT_HEADROOM);
        assert_eq!(p.to_vec(), [1, 2, 3]);
    }

    #[test]
    fn prepend_uses_headroom_without_moving_payload() {
        let mut p = Packet::copy_from(&[9; 100]);
        let payload_ptr = p.segment(0).unwrap().data().as_ptr();
        p.prepend(70).copy_from_slice(&[7; 70]);
        assert_eq!(p.seg_count(), 1);
        assert_eq!(p.len(), 170);
        let seg = p.segment(0).unwrap();
        assert_eq!(seg.headroom(), DEFAULT_HEADROOM - 70);
        // The payload is where it was.
        assert_eq!(seg.data().as_ptr().wrapping_add(70), payload_ptr);
        assert_eq!(
            &p.to_vec()[..71],
            &[[7u8; 70].as_slice(), &[9]].concat()[..]
        );
    }

    #[test]
    fn prepend_without_room_adds_a_segment() {
        let mut p = Packet::from_segments(&[&[1, 2]]);
        p.prepend(DEFAULT_HEADROOM).fill(5);
        p.prepend(DEFAULT_HEADROOM + 1).fill(6);
        assert_eq!(p.seg_count(), 2);
        assert_eq!(p.len(), 2 * DEFAULT_HEADROOM + 3);
        let v = p.to_vec();
        assert_eq!(v[0], 6);
        assert_eq!(v[DEFAULT_HEADROOM + 1], 5);
        assert_eq!(&v[v.len() - 2..], &[1, 2]);
    }

    #[test]
    fn trim_front_of_a_whole_segment_drops_the_empty_ones_after_it() {
        let mut p = Packet::from_segments(&[&[1; 74], &[], &[], &[2; 10]]);
        p.trim_front(74).unwrap();
        assert_eq!(p.seg_count(), 1);
        assert_eq!(p.to_vec(), [2; 10]);
        // All but one empty segment: the packet keeps one (empty) segment.
        let mut p = Packet::from_segments(&[&[1; 4], &[]]);
        p.trim_front(4).unwrap();
        assert_eq!(p.seg_count(), 1);
        assert!(p.is_empty());
    }

    #[test]
    fn trim_front_frees_emptied_segments() {
        let mut p = Packet::from_segments(&[&[1; 74], &[2; 10], &[3; 5]]);
        p.trim_front(74).unwrap();
        assert_eq!(p.seg_count(), 2);
        assert_eq!(p.to_vec(), [[2u8; 10].as_slice(), &[3; 5]].concat());
        p.trim_front(12).unwrap();
        assert_eq!(p.seg_count(), 1);
        assert_eq!(p.to_vec(), [3; 3]);
        assert_eq!(p.trim_front(4), Err(3));
        assert_eq!(p.len(), 3);
    }

    #[test]
    fn a_lent_chain_is_processed_in_place_and_given_back() {
        use super::segment::tests::{lend_block, take_block};
        use alloc::sync::Arc;
        use core::sync::atomic::{AtomicUsize, Ordering};
        let released = Arc::new(AtomicUsize::new(0));
        let (outer, _) = lend_block(&[1; 20], 0, &released);
        let (inner, inner_ptr) = lend_block(&[2; 30], 64, &released);
        let mut p = Packet::from_segment_list([outer, inner]);
        assert_eq!(p.len(), 50);
        // Popping the whole first block releases it; the second is now the front.
        p.trim_front(20).unwrap();
        assert_eq!(released.load(Ordering::SeqCst), 1);
        // A push fits the second block's headroom: written in place, nothing copied.
        p.prepend(40).fill(3);
        assert_eq!(p.seg_count(), 1);
        let seg = p.segment(0).unwrap();
        assert_eq!(
            seg.data().as_ptr().wrapping_add(40),
            inner_ptr.wrapping_add(64)
        );
        let parts: Vec<SegmentParts> = p.into_segments().map(Segment::into_parts).collect();
        let [SegmentParts::Lent { handle, start, end }] = parts[..] else {
            panic!("expected the lent block back, got {parts:?}");
        };
        assert_eq!((start, end), (24, 94));
        let block = take_block(handle);
        assert_eq!(block.mem[24..64], [3; 40]);
        assert_eq!(released.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn truncate_drops_trailing_bytes_and_segments() {
        let mut p = Packet::from_segments(&[&[1; 4], &[2; 4], &[3; 4]]);
        p.truncate(6);
        assert_eq!(p.to_vec(), [1, 1, 1, 1, 2, 2]);
        assert_eq!(p.seg_count(), 2);
        p.truncate(100);
        assert_eq!(p.len(), 6);
    }

    #[test]
    fn pullup_joins_a_straddling_region() {
        let mut p = Packet::from_segments(&[&[1, 2, 3], &[4], &[5, 6, 7]]);
        assert!(p.pullup(0, 1, 5));
        assert_eq!(p.segment(0).unwrap().data(), &[1, 2, 3, 4, 5, 6]);
        assert_eq!(p.seg_count(), 2);
        assert_eq!(p.to_vec(), [1, 2, 3, 4, 5, 6, 7]);
        assert!(!p.pullup(0, 0, 8));
        assert_eq!(p.to_vec(), [1, 2, 3, 4, 5, 6, 7]);
    }
}
