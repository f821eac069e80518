//! A `PACKET_MMAP` receive ring (`TPACKET_V2`) on an underlay socket: the kernel copies
//! each arriving frame straight into a slot of memory this process has mapped, and the
//! worker processes it there, no system call per frame or batch, no second copy. A slot is
//! lent to the engine as the packet's segment ([`Segment::lend`]) and given back to the
//! kernel when the segment is dropped (the frame written to its guest, or dropped).
//!
//! Why version 2 and not 3: a `TPACKET_V3` ring hands frames over a block at a time, and
//! a block that is not full is handed over only when its timer (at least a millisecond)
//! fires; request/response traffic would wait that millisecond. Version 2 hands each frame
//! over as soon as it is written. Its slots have one size, so each is as large as the
//! largest frame (a 64 KiB datagram of Geneve chunks): 15 to a MiB, 240 per socket with
//! two workers (a link's rings take 32 MiB, split among its workers' sockets, 2 MiB each
//! at least).
// A mapped ring is raw memory shared with the kernel.
#![allow(unsafe_code)]

use std::prelude::rust_2024::*;

use super::underlay::setsockopt;
use nix::libc;
use opte::packet::{Lender, Segment};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

/// One slot: the ring's header, the address, a virtio-net header and the largest frame
/// (64 KiB of IPv6 payload and its headers), in whole pages.
pub const SLOT: usize = 17 * 4096;

/// Slots per block: a block is 1 MiB.
const PER_BLOCK: usize = (1 << 20) / SLOT;

/// Blocks (MiB) of ring per link, shared among its workers' sockets: the kernel's memory,
/// never swapped out, so bounded whatever the number of workers.
const LINK_BLOCKS: usize = 32;

/// Blocks per ring, at least and at most: 30 slots (a burst the worker has not come to
/// yet waits in them) to 240.
const MIN_BLOCKS: usize = 2;
const MAX_BLOCKS: usize = 16;

/// A frame in a slot, as the kernel left it.
pub struct RingFrame {
    /// The virtio-net header in front of the frame (zeros if there is none).
    pub vnet: [u8; 10],
    /// The frame, lent: the slot goes back to the kernel when it is dropped.
    pub seg: Segment,
}

/// What taking the next slot gave.
pub enum Slot {
    Frame(RingFrame),
    /// A frame larger than a slot, cut short by the kernel: dropped (its slot given back).
    Truncated,
    /// Nothing waiting.
    Empty,
}

/// A receive ring mapped from one socket. Read by one worker only.
#[derive(Debug)]
pub struct RxRing {
    base: NonNull<u8>,
    len: usize,
    slots: usize,
    /// The slot to look at next.
    next: AtomicUsize,
    /// Bytes of virtio-net header in front of each frame.
    vnet: usize,
}

// SAFETY: the mapping is shared memory; slots are handed between the kernel and the one
// worker that reads the ring through their status words (atomics), and a slot lent as a
// segment is touched only by whoever holds the segment.
unsafe impl Send for RxRing {}
// SAFETY: as above; `take` is called by one worker only (its socket's).
unsafe impl Sync for RxRing {}

impl RxRing {
    /// Put a ring on `sock`, before it is bound (so no frame is ever queued outside the
    /// ring), and map it. `vnet`: the socket has `PACKET_VNET_HDR` on. `sockets`: how
    /// many sockets of the link share its ring memory.
    pub fn attach(sock: &OwnedFd, vnet: bool, sockets: usize) -> io::Result<Self> {
        let blocks = (LINK_BLOCKS / sockets.max(1)).clamp(MIN_BLOCKS, MAX_BLOCKS);
        let slots = blocks * PER_BLOCK;
        let version = libc::tpacket_versions::TPACKET_V2 as libc::c_int;
        setsockopt(sock, libc::SOL_PACKET, libc::PACKET_VERSION, &version)?;
        let req = libc::tpacket_req {
            tp_block_size: (1 << 20) as libc::c_uint,
            tp_block_nr: blocks as libc::c_uint,
            tp_frame_size: SLOT as libc::c_uint,
            tp_frame_nr: slots as libc::c_uint,
        };
        setsockopt(sock, libc::SOL_PACKET, libc::PACKET_RX_RING, &req)?;
        let len = blocks << 20;
        // SAFETY: maps the ring the kernel just made for this socket; checked below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                sock.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap gave 0"))?;
        Ok(Self {
            base,
            len,
            slots,
            next: AtomicUsize::new(0),
            vnet: if vnet { 10 } else { 0 },
        })
    }

    /// Slot `i`'s first byte (slots do not straddle blocks).
    fn slot(&self, i: usize) -> NonNull<u8> {
        let off = ((i / PER_BLOCK) << 20) + (i % PER_BLOCK) * SLOT;
        // SAFETY: `i < slots`, so `off + SLOT <= len`: inside the mapping.
        unsafe { self.base.add(off) }
    }

    /// Slot `slot`'s status word (the first field of `tpacket2_hdr`, 16-byte aligned).
    fn status<'a>(slot: NonNull<u8>) -> &'a AtomicU32 {
        // SAFETY: the slot is inside a live mapping, aligned, and its status word is only
        // ever accessed atomically (by the kernel with barriers around it).
        unsafe { AtomicU32::from_ptr(slot.as_ptr().cast()) }
    }

    /// The next frame the kernel has filled, in ring order.
    pub fn take(&self) -> Slot {
        let i = self.next.load(Ordering::Relaxed);
        let slot = self.slot(i);
        if Self::status(slot).load(Ordering::Acquire) & libc::TP_STATUS_USER == 0 {
            return Slot::Empty;
        }
        self.next.store((i + 1) % self.slots, Ordering::Relaxed);
        // SAFETY: the kernel wrote the header before it set the status we saw (acquire).
        let h: libc::tpacket2_hdr = unsafe { slot.cast().read() };
        let (mac, snap) = (usize::from(h.tp_mac), h.tp_snaplen as usize);
        if snap < h.tp_len as usize || mac < self.vnet || mac + snap > SLOT {
            give_back(slot);
            return Slot::Truncated;
        }
        let mut vnet = [0u8; 10];
        if self.vnet > 0 {
            // SAFETY: `mac - 10 .. mac` is inside the slot (checked above).
            let hdr = unsafe { std::slice::from_raw_parts(slot.add(mac - 10).as_ptr(), 10) };
            vnet.copy_from_slice(hdr);
        }
        let lender = Lender {
            handle: slot.as_ptr().cast(),
            release: release_slot,
        };
        // SAFETY: the frame's bytes are inside the slot, which is the holder's alone until
        // `release` hands it back to the kernel (the kernel does not touch a slot whose
        // status is not 0), and the ring outlives every segment lent from it: a worker
        // holds the underlay (and so the ring) until what it read has been carried out.
        match unsafe { Segment::lend(slot.add(mac), SLOT - mac, 0, snap, lender) } {
            Ok(seg) => Slot::Frame(RingFrame { vnet, seg }),
            Err(_) => {
                give_back(slot);
                Slot::Truncated
            }
        }
    }
}

/// Give a slot back to the kernel.
fn give_back(slot: NonNull<u8>) {
    RxRing::status(slot).store(libc::TP_STATUS_KERNEL, Ordering::Release);
}

/// [`give_back`], as a lender's release function.
///
/// # Safety
///
/// `slot` is the first byte of a slot of a live ring, taken by [`RxRing::take`].
unsafe fn release_slot(slot: *mut ()) {
    if let Some(s) = NonNull::new(slot.cast::<u8>()) {
        give_back(s);
    }
}

impl Drop for RxRing {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `attach`, no longer lent from (see `take`).
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
        }
    }
}
