//! `mblk_t` chains as the engine's packets, without copying: each message block of a
//! packet (its `b_cont` chain) becomes one [`Segment`] lent to the engine, its data
//! block's whole buffer with `b_rptr..b_wptr` as the data, so an encapsulation grows into
//! the headroom in place. A block whose data block is shared (`db_ref > 1`) is copied
//! instead: writing into it would change another message. Back to a chain, a lent segment
//! is its own block again (pointers moved to the engine's range); an engine-made segment is
//! copied into a new block. A segment the engine drops frees its block (`freeb`).
//! A guest's partial checksum is finished as its frame comes in; an LSO super-frame keeps
//! it, with its MSS, until it is cut (the port offers `HCKSUM_INET_PARTIAL` and LSO).

use crate::illumos::sys;
use alloc::vec::Vec;
use core::ptr::{self, NonNull};
use opte::packet::{CsumState, Gso, GsoKind, Offload, Packet};
use opte::packet::{Lender, Segment, SegmentParts};

unsafe fn release(handle: *mut ()) {
    // SAFETY: the handle is the block lent by `packet_of`, freed exactly once (the
    // engine calls this only for a segment it drops instead of giving back).
    unsafe { sys::freeb(handle.cast()) }
}

/// The packet of message `mp` (one packet: its `b_next` is ignored and cleared), or
/// `None` if a block is malformed (its pointers outside its data block), in which case the
/// whole message is freed.
///
/// # Safety
///
/// `mp` must be a valid message the caller owns; ownership passes to the packet.
pub unsafe fn packet_of(mp: *mut sys::mblk_t) -> Option<Packet> {
    let mut segs = Vec::new();
    let mut cur = mp;
    // SAFETY (whole loop): each block of a message the caller owns is valid, and is
    // unlinked from the chain before it is lent, so each is owned by one segment.
    unsafe {
        (*mp).b_next = ptr::null_mut();
        while !cur.is_null() {
            let next = (*cur).b_cont;
            (*cur).b_cont = ptr::null_mut();
            let db = (*cur).b_datap;
            let base = (*db).db_base;
            let len = (*db).db_lim as usize - base as usize;
            let start = (*cur).b_rptr as usize - base as usize;
            let end = (*cur).b_wptr as usize - base as usize;
            let seg = if (*db).db_ref > 1 {
                let data = core::slice::from_raw_parts((*cur).b_rptr, end.saturating_sub(start));
                let s = Segment::with_headroom(data, opte::packet::DEFAULT_HEADROOM);
                sys::freeb(cur);
                Some(s)
            } else {
                match NonNull::new(base) {
                    Some(p) => Segment::lend(
                        p,
                        len,
                        start,
                        end,
                        Lender {
                            handle: cur.cast(),
                            release,
                        },
                    )
                    .ok(),
                    None => None,
                }
            };
            match seg {
                Some(s) => segs.push(s),
                None => {
                    // Free this block and the rest; the segments made so far free theirs.
                    (*cur).b_cont = next;
                    sys::freemsg(cur);
                    return None;
                }
            }
            cur = next;
        }
    }
    let mut pkt = Packet::from_segment_list(segs);
    // A partial checksum (offsets from the IP header, after the guest's 14-byte Ethernet
    // header) is finished here, as the Linux host finishes a TAP's, so that everything
    // after (the engine, loopback to another guest, the wire) sees a complete frame. A
    // frame in several blocks is first made one.
    let (mut start, mut stuff, mut end, mut value, mut flags) = (0, 0, 0, 0, 0);
    let (mut mss, mut lso) = (0u32, 0u32);
    // SAFETY: `mp` is still the first block (lent, not freed).
    unsafe {
        sys::mac_hcksum_get(mp, &mut start, &mut stuff, &mut end, &mut value, &mut flags);
        sys::mac_lso_get(mp, &mut mss, &mut lso);
    }
    let partial = flags & sys::HCK_PARTIALCKSUM != 0;
    let (at, off) = (start as usize + 14, stuff.saturating_sub(start) as usize);
    if lso & sys::HW_LSO != 0 {
        // An LSO super-frame keeps its partial checksum: each segment's is computed whole
        // when it is cut (see `super::datapath`).
        let size = u16::try_from(mss).ok().filter(|&m| m > 0)?;
        let v6 = pkt
            .segment(0)
            .and_then(|s| s.data().get(14))
            .is_some_and(|b| b >> 4 == 6);
        let (Ok(cs), Ok(co)) = (u16::try_from(at), u16::try_from(off)) else {
            return None;
        };
        pkt.set_offload(Offload {
            csum: if partial {
                CsumState::Partial {
                    csum_start: cs,
                    csum_offset: co,
                }
            } else {
                CsumState::None
            },
            gso: Some(Gso {
                kind: if v6 { GsoKind::TcpV6 } else { GsoKind::TcpV4 },
                size,
            }),
        });
    } else if partial {
        if pkt.seg_count() > 1 {
            pkt = Packet::copy_from(&pkt.to_vec());
        }
        let done = pkt
            .segment_mut(0)
            .is_some_and(|s| crate::offload::finish_partial(s.data_mut(), at, off));
        if !done {
            return None;
        }
        pkt.set_offload(Offload {
            csum: CsumState::Complete,
            gso: None,
        });
    }
    Some(pkt)
}

/// The message of `pkt`: its segments as blocks linked by `b_cont`; null if a block could
/// not be allocated (the packet is then dropped, its blocks freed).
pub fn mblk_of(pkt: Packet) -> *mut sys::mblk_t {
    let mut head: *mut sys::mblk_t = ptr::null_mut();
    let mut tail: *mut sys::mblk_t = ptr::null_mut();
    let mut failed = false;
    for seg in pkt.into_segments() {
        let mp = if failed {
            drop(seg);
            continue;
        } else {
            match seg.into_parts() {
                SegmentParts::Lent { handle, start, end } => {
                    let mp: *mut sys::mblk_t = handle.cast();
                    // SAFETY: the block we lent, given back; the range lies in its buffer.
                    unsafe {
                        let base = (*(*mp).b_datap).db_base;
                        (*mp).b_rptr = base.add(start);
                        (*mp).b_wptr = base.add(end);
                    }
                    mp
                }
                SegmentParts::Owned { buf, start, end } => {
                    let data = buf.get(start..end).unwrap_or(&[]);
                    // SAFETY: allocb gives a block with room for `data.len()` bytes.
                    unsafe {
                        let mp = sys::allocb(data.len(), sys::BPRI_HI);
                        if mp.is_null() {
                            failed = true;
                            continue;
                        }
                        ptr::copy_nonoverlapping(data.as_ptr(), (*mp).b_wptr, data.len());
                        (*mp).b_wptr = (*mp).b_wptr.add(data.len());
                        mp
                    }
                }
            }
        };
        // SAFETY: `mp` and `tail` are blocks this function owns.
        unsafe {
            if tail.is_null() {
                head = mp;
            } else {
                (*tail).b_cont = mp;
            }
        }
        tail = mp;
    }
    if failed {
        if !head.is_null() {
            // SAFETY: the blocks linked so far are ours.
            unsafe { sys::freemsg(head) };
        }
        return ptr::null_mut();
    }
    head
}

/// Split chain `mp` (linked by `b_next`) into its messages.
///
/// # Safety
///
/// `mp` must be a valid chain the caller owns (or null).
pub unsafe fn split_chain(mut mp: *mut sys::mblk_t) -> Vec<*mut sys::mblk_t> {
    let mut v = Vec::new();
    while !mp.is_null() {
        // SAFETY: a block of the caller's chain.
        let next = unsafe { (*mp).b_next };
        unsafe { (*mp).b_next = ptr::null_mut() };
        v.push(mp);
        mp = next;
    }
    v
}

/// Link messages into a chain by `b_next`: its head, its tail and its length.
pub fn link_chain(msgs: &[*mut sys::mblk_t]) -> (*mut sys::mblk_t, *mut sys::mblk_t, usize) {
    let mut head = ptr::null_mut();
    let mut prev: *mut sys::mblk_t = ptr::null_mut();
    for &m in msgs {
        if prev.is_null() {
            head = m;
        } else {
            // SAFETY: messages the caller owns.
            unsafe { (*prev).b_next = m };
        }
        prev = m;
    }
    (head, prev, msgs.len())
}
