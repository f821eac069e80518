//! One contiguous buffer of a packet chain, owned by the engine or lent by the host.
//!
//! A segment is a pointer, the buffer's length and the data range inside it: `[..start]` is
//! headroom, `[start..end]` packet data, `[end..]` tailroom. Who frees the memory is said
//! by its [`Owner`]: a `Vec<u8>` the engine owns (made by the engine or adopted from a
//! daemon's buffer pool with [`Segment::from_vec`]), or memory a host lent with
//! [`Segment::lend`] (the illumos glue lends each `mblk_t`'s data block) and takes back
//! either by [`Segment::into_parts`] or, if the engine drops the segment, through the
//! lender's release function. Either way the bytes are never copied to be processed.
//!
//! Not for: deciding where headers are (that is [`super::parse`]) or how a chain grows
//! (that is [`super::Packet`]).
// The one place in the engine that handles raw memory: a buffer lent by the host cannot be
// described by a safe type, and a `Vec` is held as its raw parts so that both kinds of
// buffer are read by the same branch-free code on the datapath.
#![allow(unsafe_code)]

use alloc::vec;
use alloc::vec::Vec;
use core::mem::ManuallyDrop;
use core::ptr::NonNull;

/// How a host takes back a buffer it lent with [`Segment::lend`].
#[derive(Clone, Copy, Debug)]
pub struct Lender {
    /// The host's handle for the buffer (the illumos glue passes its `mblk_t *`).
    pub handle: *mut (),
    /// Called exactly once, with `handle`, if the engine drops the segment instead of giving
    /// it back through [`Segment::into_parts`] (a dropped packet, a segment emptied by a pop).
    pub release: unsafe fn(*mut ()),
}

#[derive(Debug)]
enum Owner {
    /// The raw parts of a `Vec<u8>` whose length is the segment's `len`.
    Vec {
        cap: usize,
    },
    Lent(Lender),
}

/// A host buffer offered as a segment whose data range lies outside the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadRange {
    pub start: usize,
    pub end: usize,
    pub len: usize,
}

/// What [`Segment::into_parts`] gives back: the buffer, and the data range it now holds (an
/// encapsulation pushed or popped moves `start`).
#[derive(Debug)]
pub enum SegmentParts {
    /// A buffer the engine owns: adopted from the host, or allocated by the engine (a new
    /// front segment when the headroom was short, a buffer grown by a pull-up).
    Owned {
        buf: Vec<u8>,
        start: usize,
        end: usize,
    },
    /// A buffer the host lent, handed back without its release function being called.
    Lent {
        handle: *mut (),
        start: usize,
        end: usize,
    },
}

/// One contiguous buffer of a packet chain.
///
/// Invariants: `ptr` is valid for reads and writes of `len` bytes for as long as the
/// segment lives and nobody else touches them; `start <= end <= len`; `len` fits in `u32`.
pub struct Segment {
    ptr: NonNull<u8>,
    len: u32,
    start: u32,
    end: u32,
    owner: Owner,
}

// SAFETY: a segment owns its bytes exclusively (a `Vec`, or a lent buffer whose lender
// promised exclusive access from any thread, see `Segment::lend`); shared references only
// read them.
unsafe impl Send for Segment {}
// SAFETY: as above; `&Segment` gives read-only access to the bytes.
unsafe impl Sync for Segment {}

impl Segment {
    /// Adopt a host buffer without copying: `buf[start..end]` is the packet data and
    /// `buf[..start]` the headroom an encapsulation may be written into. A daemon reads a
    /// frame at `start` of a pooled buffer and hands the buffer back with [`Self::into_vec`].
    pub fn from_vec(buf: Vec<u8>, start: usize, end: usize) -> Result<Self, (Vec<u8>, BadRange)> {
        let len = buf.len();
        if start > end || end > len || u32::try_from(len).is_err() {
            return Err((buf, BadRange { start, end, len }));
        }
        let mut buf = ManuallyDrop::new(buf);
        let cap = buf.capacity();
        Ok(Self {
            // A `Vec`'s pointer is never null (a dangling, aligned one when unallocated).
            ptr: NonNull::new(buf.as_mut_ptr()).unwrap_or(NonNull::dangling()),
            len: len as u32,
            start: start as u32,
            end: end as u32,
            owner: Owner::Vec { cap },
        })
    }

    /// Wrap a buffer the host lends, without copying: `len` bytes at `ptr`, of which
    /// `[start..end]` is packet data. The engine reads and writes those bytes, may move
    /// `start` into the headroom and back, and gives the buffer back through
    /// [`Self::into_parts`] or, if it drops the segment, by calling `lender.release` once.
    ///
    /// # Safety
    ///
    /// `ptr` must be valid for reads and writes of `len` bytes, from any thread, until the
    /// buffer is given back or released, and nothing else may access those bytes meanwhile.
    pub unsafe fn lend(
        ptr: NonNull<u8>,
        len: usize,
        start: usize,
        end: usize,
        lender: Lender,
    ) -> Result<Self, BadRange> {
        if start > end || end > len || u32::try_from(len).is_err() {
            return Err(BadRange { start, end, len });
        }
        Ok(Self {
            ptr,
            len: len as u32,
            start: start as u32,
            end: end as u32,
            owner: Owner::Lent(lender),
        })
    }

    /// A segment holding a copy of `data` with `headroom` free bytes in front of it.
    pub fn with_headroom(data: &[u8], headroom: usize) -> Self {
        let mut buf = vec![0u8; headroom + data.len()];
        if let Some(d) = buf.get_mut(headroom..) {
            d.copy_from_slice(data);
        }
        let end = buf.len();
        Self::from_vec(buf, headroom, end).unwrap_or_default()
    }

    /// An empty segment of `headroom` free bytes, for an encapsulation to be written into.
    pub(crate) fn empty_with_headroom(headroom: usize) -> Self {
        Self::from_vec(vec![0u8; headroom], headroom, headroom).unwrap_or_default()
    }

    /// Give the buffer back as a `Vec` with the data range it now holds. A lent buffer is
    /// copied (and released): a host that lends buffers takes them back with
    /// [`Self::into_parts`].
    pub fn into_vec(self) -> (Vec<u8>, usize, usize) {
        // A lent buffer is copied into one the engine owns; dropping the original releases it.
        let owned = if self.is_lent() { self.clone() } else { self };
        match owned.into_parts() {
            SegmentParts::Owned { buf, start, end } => (buf, start, end),
            SegmentParts::Lent { start, end, .. } => (Vec::new(), start, end),
        }
    }

    /// Give the buffer back as it came: the `Vec`, or the lender's handle.
    pub fn into_parts(self) -> SegmentParts {
        let this = ManuallyDrop::new(self);
        let (start, end) = (this.start as usize, this.end as usize);
        match this.owner {
            // SAFETY: the invariants say `ptr`, `len` and `cap` are a Vec's raw parts, and
            // `this` will not be dropped, so the Vec is rebuilt exactly once.
            Owner::Vec { cap } => SegmentParts::Owned {
                buf: unsafe { Vec::from_raw_parts(this.ptr.as_ptr(), this.len as usize, cap) },
                start,
                end,
            },
            Owner::Lent(l) => SegmentParts::Lent {
                handle: l.handle,
                start,
                end,
            },
        }
    }

    /// Whether the host lent this buffer.
    pub fn is_lent(&self) -> bool {
        matches!(self.owner, Owner::Lent(_))
    }

    /// The whole buffer: headroom, data and tailroom.
    #[inline]
    fn buf(&self) -> &[u8] {
        // SAFETY: the invariants: `ptr` is valid for `len` bytes, owned by this segment.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len as usize) }
    }

    #[inline]
    fn buf_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `buf`, and `&mut self` makes the access exclusive.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len as usize) }
    }

    #[inline]
    pub fn data(&self) -> &[u8] {
        // SAFETY: the invariants: `start <= end <= len` and `ptr` is valid for `len` bytes.
        unsafe {
            core::slice::from_raw_parts(
                self.ptr.as_ptr().add(self.start as usize),
                (self.end - self.start) as usize,
            )
        }
    }

    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `data`, and `&mut self` makes the access exclusive.
        unsafe {
            core::slice::from_raw_parts_mut(
                self.ptr.as_ptr().add(self.start as usize),
                (self.end - self.start) as usize,
            )
        }
    }

    #[inline]
    pub fn len(&self) -> usize {
        (self.end - self.start) as usize
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }

    #[inline]
    pub fn headroom(&self) -> usize {
        self.start as usize
    }

    pub fn tailroom(&self) -> usize {
        (self.len - self.end) as usize
    }

    /// Drop up to `n` bytes from the front; returns how many were dropped.
    pub(crate) fn trim_front(&mut self, n: usize) -> usize {
        let k = n.min(self.len());
        self.start += k as u32;
        k
    }

    /// Move the data's start `n` bytes into the headroom and return those bytes, or `None`
    /// (changing nothing) if the headroom is shorter.
    #[inline]
    pub(crate) fn grow_front(&mut self, n: usize) -> Option<&mut [u8]> {
        let n32 = u32::try_from(n).ok().filter(|&k| k <= self.start)?;
        self.start -= n32;
        let (s, e) = (self.start as usize, self.start as usize + n);
        self.buf_mut().get_mut(s..e)
    }

    /// Keep only the first `n` bytes of data.
    pub(crate) fn truncate(&mut self, n: usize) {
        if n < self.len() {
            self.end = self.start + n as u32;
        }
    }

    /// Append bytes at the end. When the tailroom is short the data moves to a larger buffer
    /// the engine owns (a lent one is released): only a pull-up of a header that straddles
    /// two segments appends.
    pub(crate) fn append(&mut self, bytes: &[u8]) {
        if bytes.len() > self.tailroom() {
            let (start, end) = (self.headroom(), self.headroom() + self.len());
            let mut grown = Vec::with_capacity(end + bytes.len());
            grown.extend_from_slice(self.buf().get(..end).unwrap_or(&[]));
            grown.extend_from_slice(bytes);
            let new_end = grown.len();
            // The old buffer is freed or released by the replaced segment's drop.
            *self = Self::from_vec(grown, start, new_end).unwrap_or_default();
            return;
        }
        let (s, e) = (self.end as usize, self.end as usize + bytes.len());
        if let Some(t) = self.buf_mut().get_mut(s..e) {
            t.copy_from_slice(bytes);
        }
        self.end += bytes.len() as u32;
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        match self.owner {
            // SAFETY: the invariants say these are a Vec's raw parts; drop runs once.
            Owner::Vec { cap } => unsafe {
                drop(Vec::from_raw_parts(
                    self.ptr.as_ptr(),
                    self.len as usize,
                    cap,
                ));
            },
            // SAFETY: the lender asked for this call, once, when the engine drops its buffer.
            Owner::Lent(l) => unsafe { (l.release)(l.handle) },
        }
    }
}

impl Default for Segment {
    fn default() -> Self {
        Self {
            ptr: NonNull::dangling(),
            len: 0,
            start: 0,
            end: 0,
            owner: Owner::Vec { cap: 0 },
        }
    }
}

/// A copy, always into a buffer the engine owns (a lent buffer is not the engine's to share).
impl Clone for Segment {
    fn clone(&self) -> Self {
        Self::from_vec(self.buf().to_vec(), self.headroom(), self.end as usize).unwrap_or_default()
    }
}

impl core::fmt::Debug for Segment {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Segment")
            .field("headroom", &self.headroom())
            .field("data", &self.data())
            .field("tailroom", &self.tailroom())
            .field("lent", &self.is_lent())
            .finish()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use alloc::boxed::Box;
    use alloc::sync::Arc;
    use core::sync::atomic::{AtomicUsize, Ordering};

    /// A stand-in for a host's buffer descriptor (an `mblk_t`): it owns the memory it lends
    /// and counts how often it is released.
    pub(crate) struct MockBlock {
        pub(crate) mem: Vec<u8>,
        pub(crate) released: Arc<AtomicUsize>,
    }

    unsafe fn release_block(handle: *mut ()) {
        // SAFETY: `lend_block` made `handle` from a leaked `Box<MockBlock>`.
        let block = unsafe { Box::from_raw(handle.cast::<MockBlock>()) };
        block.released.fetch_add(1, Ordering::SeqCst);
    }

    /// Lend `data` with `headroom` in front of it, as a host would lend an mblk's buffer.
    pub(crate) fn lend_block(
        data: &[u8],
        headroom: usize,
        released: &Arc<AtomicUsize>,
    ) -> (Segment, *const u8) {
        let mut mem = vec![0u8; headroom + data.len() + 16];
        mem[headroom..headroom + data.len()].copy_from_slice(data);
        let block = Box::into_raw(Box::new(MockBlock {
            mem,
            released: released.clone(),
        }));
        // SAFETY: the block lives until `release_block` or the test takes it back, and only
        // the segment touches its memory meanwhile.
        let (ptr, len) = unsafe { ((*block).mem.as_mut_ptr(), (*block).mem.len()) };
        let lender = Lender {
            handle: block.cast(),
            release: release_block,
        };
        let seg = unsafe {
            Segment::lend(
                NonNull::new(ptr).unwrap(),
                len,
                headroom,
                headroom + data.len(),
                lender,
            )
        }
        .unwrap();
        (seg, ptr)
    }

    /// Take a lent block back from its handle, as the host does after `into_parts`.
    pub(crate) fn take_block(handle: *mut ()) -> Box<MockBlock> {
        unsafe { Box::from_raw(handle.cast::<MockBlock>()) }
    }

    #[test]
    fn an_adopted_vec_comes_back_without_a_copy() {
        let mut buf = Vec::with_capacity(2048);
        buf.resize(1500, 7u8);
        let ptr = buf.as_ptr();
        let seg = Segment::from_vec(buf, 128, 1000).unwrap();
        assert_eq!(seg.headroom(), 128);
        assert_eq!(seg.len(), 872);
        assert_eq!(seg.tailroom(), 500);
        assert_eq!(seg.data().as_ptr(), ptr.wrapping_add(128));
        let (buf, start, end) = seg.into_vec();
        assert_eq!((buf.as_ptr(), buf.len(), buf.capacity()), (ptr, 1500, 2048));
        assert_eq!((start, end), (128, 1000));
    }

    #[test]
    fn a_range_outside_the_buffer_is_refused_and_the_buffer_returned() {
        let (buf, bad) = Segment::from_vec(vec![0; 10], 4, 11).unwrap_err();
        assert_eq!(buf.len(), 10);
        assert_eq!(
            bad,
            BadRange {
                start: 4,
                end: 11,
                len: 10
            }
        );
        assert!(Segment::from_vec(vec![0; 10], 5, 4).is_err());
    }

    #[test]
    fn a_lent_buffer_is_given_back_unreleased_with_its_new_range() {
        let released = Arc::new(AtomicUsize::new(0));
        let (mut seg, ptr) = lend_block(&[1, 2, 3, 4], 64, &released);
        assert!(seg.is_lent());
        assert_eq!(seg.data(), &[1, 2, 3, 4]);
        seg.grow_front(10).unwrap().fill(9);
        assert_eq!(seg.data().as_ptr(), ptr.wrapping_add(54));
        seg.data_mut()[10] = 42;
        match seg.into_parts() {
            SegmentParts::Lent { handle, start, end } => {
                assert_eq!((start, end), (54, 68));
                let block = take_block(handle);
                assert_eq!(block.mem[54..64], [9; 10]);
                assert_eq!(block.mem[64..68], [42, 2, 3, 4]);
            }
            other => panic!("expected the lent buffer back, got {other:?}"),
        }
        assert_eq!(released.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_dropped_lent_buffer_is_released_once() {
        let released = Arc::new(AtomicUsize::new(0));
        let (seg, _) = lend_block(&[1, 2, 3], 8, &released);
        let copy = seg.clone();
        assert!(!copy.is_lent());
        drop(seg);
        assert_eq!(released.load(Ordering::SeqCst), 1);
        assert_eq!(copy.data(), &[1, 2, 3]);
        assert_eq!(copy.headroom(), 8);
        drop(copy);
        assert_eq!(released.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn appending_past_a_lent_buffer_moves_the_data_and_releases_it() {
        let released = Arc::new(AtomicUsize::new(0));
        let (mut seg, _) = lend_block(&[1, 2, 3], 8, &released);
        seg.append(&[4; 16]);
        assert_eq!(
            released.load(Ordering::SeqCst),
            0,
            "16 bytes of tailroom sufficed"
        );
        seg.append(&[5]);
        assert_eq!(released.load(Ordering::SeqCst), 1);
        assert!(!seg.is_lent());
        assert_eq!(seg.headroom(), 8);
        assert_eq!(seg.len(), 20);
        assert_eq!(seg.data()[19], 5);
    }

    #[test]
    fn a_lent_buffer_copied_out_as_a_vec_is_released() {
        let released = Arc::new(AtomicUsize::new(0));
        let (seg, _) = lend_block(&[1, 2, 3], 8, &released);
        let (buf, start, end) = seg.into_vec();
        assert_eq!(&buf[start..end], &[1, 2, 3]);
        assert_eq!(released.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn headroom_cannot_be_overdrawn() {
        let mut seg = Segment::with_headroom(&[1], 4);
        assert!(seg.grow_front(5).is_none());
        assert_eq!(seg.headroom(), 4);
        assert_eq!(seg.grow_front(4).map(|b| b.len()), Some(4));
        assert_eq!(seg.headroom(), 0);
    }
}
