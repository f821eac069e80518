//! The datapath's two loops. [`run_guests`]: frames read from the ports' TAP devices go
//! through the core's `tx`. [`run_underlay`]: Geneve frames read from the underlay links go
//! through its `rx`. What the core emits is carried out by both alike: frames for guests
//! (hairpin replies, guest loopback, decapsulated traffic) are written to their TAPs, frames
//! for the underlay are sent on the link it chose.
//!
//! Each loop waits on all its descriptors at once with poll(2) and reads up to [`BATCH`]
//! frames of a ready one per wakeup, each straight into a pooled buffer behind
//! [`HEADROOM`] bytes of room, so a frame is read once and the engine rewrites it in place
//! (an encapsulation goes into the headroom). Buffers come back to the pool when a frame
//! has been written or dropped.

// A no_std crate: the daemon brings std's prelude in itself.
use super::host::LinuxHost;
use super::tap::{Tap, VNET_HDR_LEN};
use crate::{Emit, Link, Xde};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use opte::engine::time::Moment;
use opte::packet::{DEFAULT_HEADROOM, Packet, Segment};
use std::io::{self, IoSlice, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::prelude::rust_2024::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use std::vec;

/// Room in front of a frame read from a guest: an encapsulation (outer Ethernet, IPv6, UDP,
/// Geneve with options) fits without moving the frame.
pub const HEADROOM: usize = DEFAULT_HEADROOM;

/// The largest frame a TAP hands over without segmentation offloads: a 9,000-byte MTU
/// and its Ethernet header, with room to spare.
const FRAME_MAX: usize = 9216;

/// Frames read from one TAP per wakeup before the others get their turn.
pub const BATCH: usize = 64;

/// How often the loop looks for ports created or deleted since it last looked.
const RESCAN: Duration = Duration::from_millis(100);

/// Buffers kept for reuse, at most.
const POOL_MAX: usize = 1024;

/// Receive buffers, reused so that reading a frame allocates nothing.
#[derive(Default)]
struct Pool(Vec<Vec<u8>>);

impl Pool {
    fn take(&mut self) -> Vec<u8> {
        self.0
            .pop()
            .unwrap_or_else(|| vec![0u8; HEADROOM + FRAME_MAX])
    }

    fn give(&mut self, pkt: Packet) {
        for seg in pkt.into_segments() {
            let (buf, _, _) = seg.into_vec();
            if buf.len() == HEADROOM + FRAME_MAX && self.0.len() < POOL_MAX {
                self.0.push(buf);
            }
        }
    }
}

/// Run until `stop` is set: read every TAP, carry out what the core says.
pub fn run_guests(xde: Arc<Xde<LinuxHost>>, epoch: Instant, stop: Arc<AtomicBool>) {
    let mut pool = Pool::default();
    let mut out: Vec<Emit> = Vec::with_capacity(BATCH * 2);
    let mut sends = Vec::with_capacity(BATCH * 2);
    while !stop.load(Ordering::Acquire) {
        let taps = xde.host().taps();
        let Some(ready) = wait_ready(taps.iter().map(|t| t.file().as_fd())) else {
            continue;
        };
        for (tap, _) in taps.iter().zip(ready).filter(|(_, r)| *r) {
            let Some(port) = xde.port(tap.name()) else {
                continue;
            };
            let now = Moment::from_nanos(epoch.elapsed().as_nanos() as u64);
            for _ in 0..BATCH {
                let Some(pkt) = read_frame(tap, &mut pool) else {
                    break;
                };
                xde.tx(&port, pkt, now, &mut out);
            }
            carry_out(&xde, &mut out, &mut pool, &mut sends);
        }
    }
}

/// Wait up to [`RESCAN`] for any of `fds` to be readable: which are, or `None` if none is
/// (or the wait failed, which is logged).
fn wait_ready<'a>(fds: impl Iterator<Item = BorrowedFd<'a>>) -> Option<Vec<bool>> {
    let mut fds: Vec<PollFd> = fds.map(|fd| PollFd::new(fd, PollFlags::POLLIN)).collect();
    let timeout = PollTimeout::try_from(RESCAN).unwrap_or(PollTimeout::MAX);
    match poll(&mut fds, timeout) {
        Ok(0) | Err(nix::errno::Errno::EINTR) => return None,
        Ok(_) => {}
        Err(e) => {
            tracing::error!(error = %e, "datapath: poll failed");
            std::thread::sleep(RESCAN);
            return None;
        }
    }
    // An error or hang-up is reported too: the read that follows says what it is.
    Some(
        fds.iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect(),
    )
}

/// One frame from `tap`, its virtio-net header dropped, or `None` when the TAP has no more.
fn read_frame(tap: &Tap, pool: &mut Pool) -> Option<Packet> {
    let mut buf = pool.take();
    // The header lands just in front of the frame, which then starts at HEADROOM.
    let at = HEADROOM - tap.hdr_len();
    let n = loop {
        match tap.file().read(buf.get_mut(at..).unwrap_or(&mut [])) {
            Ok(n) => break n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                // Anything but "nothing to read" means the device is gone from under the
                // descriptor (its namespace was deleted): stop polling it, say so once.
                if e.kind() != io::ErrorKind::WouldBlock && tap.set_gone() {
                    tracing::warn!(
                        port = tap.name(),
                        error = %e,
                        "the port's TAP is gone (was its namespace deleted?); its frames are dropped until delete-xde"
                    );
                }
                pool.0.push(buf);
                return None;
            }
        }
    };
    if n <= tap.hdr_len() {
        pool.0.push(buf);
        return None;
    }
    match Segment::from_vec(buf, HEADROOM, at + n) {
        Ok(seg) => Some(Packet::from_segment(seg)),
        Err((buf, _)) => {
            pool.0.push(buf);
            None
        }
    }
}

/// Run until `stop` is set: read both underlay links (while attached), a batch of frames
/// per system call, and carry out what the core says.
pub fn run_underlay(xde: Arc<Xde<LinuxHost>>, epoch: Instant, stop: Arc<AtomicBool>) {
    let mut pool = Pool::default();
    let mut out: Vec<Emit> = Vec::with_capacity(BATCH * 2);
    let mut sends = Vec::with_capacity(BATCH * 2);
    let mut bufs: Vec<Vec<u8>> = Vec::with_capacity(BATCH);
    let mut lens = [0usize; BATCH];
    while !stop.load(Ordering::Acquire) {
        let Some(under) = xde.host().underlay() else {
            std::thread::sleep(RESCAN);
            continue;
        };
        let Some(ready) = wait_ready(under.links().iter().map(|l| l.socket().as_fd())) else {
            continue;
        };
        for ((link, l), _) in [Link::U1, Link::U2]
            .into_iter()
            .zip(under.links())
            .zip(ready)
            .filter(|(_, r)| *r)
        {
            while bufs.len() < BATCH {
                bufs.push(pool.take());
            }
            let n = match l.recv_batch(&mut bufs, HEADROOM, &mut lens) {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(link = l.name(), error = %e, "reading the underlay failed");
                    continue;
                }
            };
            let now = Moment::from_nanos(epoch.elapsed().as_nanos() as u64);
            for (buf, &len) in bufs.drain(..n).zip(&lens) {
                match Segment::from_vec(buf, HEADROOM, HEADROOM + len) {
                    Ok(seg) => xde.rx(link, Packet::from_segment(seg), now, &mut out),
                    Err((buf, _)) => pool.0.push(buf),
                }
            }
            carry_out(&xde, &mut out, &mut pool, &mut sends);
        }
    }
}

/// Do what the core asked: frames for guests are written to their TAPs, frames for the
/// underlay sent on the link it chose, a batch per link per system call; what is not ours
/// is dropped (the kernel has its own copy of anything that reached it). A guest's TAP is
/// looked up once a batch, not once a frame (a batch's frames mostly go one way).
fn carry_out(
    xde: &Xde<LinuxHost>,
    out: &mut Vec<Emit>,
    pool: &mut Pool,
    sends: &mut Vec<(Link, Packet)>,
) {
    let mut tap: Option<Arc<Tap>> = None;
    for e in out.drain(..) {
        match e {
            Emit::Guest { port, pkt } => {
                if tap.as_ref().is_none_or(|t| t.name() != port.name()) {
                    tap = xde.host().tap(port.name());
                }
                if let Some(tap) = &tap {
                    // A zeroed virtio-net header: nothing is left for the guest to finish.
                    let hdr = [0u8; VNET_HDR_LEN];
                    let hdr = hdr.get(..tap.hdr_len()).unwrap_or(&[]);
                    let res = with_iov(hdr, &pkt, |iov| tap.file().write_vectored(iov).map(|_| ()));
                    if let Err(e) = res {
                        // A TAP whose guest side is down refuses writes: the frame is lost,
                        // as on a wire.
                        tracing::debug!(port = tap.name(), error = %e, "writing the TAP failed");
                    }
                }
                pool.give(pkt);
            }
            Emit::Underlay { link, pkt } => sends.push((link, pkt)),
            Emit::NotOurs(pkt) => pool.give(pkt),
        }
    }
    send_underlay(xde, sends, pool);
}

/// Send the frames gathered for the underlay, one sendmmsg per link (and per 64 frames).
fn send_underlay(xde: &Xde<LinuxHost>, sends: &mut Vec<(Link, Packet)>, pool: &mut Pool) {
    if sends.is_empty() {
        return;
    }
    if let Some(u) = xde.host().underlay() {
        for link in [Link::U1, Link::U2] {
            let Some(l) = u.link(link) else {
                continue;
            };
            let mine = sends.iter().filter(|(k, _)| *k == link).map(|(_, p)| p);
            let (sent, total) = l.send_packets(mine);
            if sent < total {
                tracing::debug!(
                    link = l.name(),
                    lost = total - sent,
                    "the underlay refused frames"
                );
            }
        }
    }
    for (_, pkt) in sends.drain(..) {
        pool.give(pkt);
    }
}

/// `f` with `head` (if not empty) and `pkt`'s segments gathered for one vectored write;
/// nothing is allocated for the usual chains of up to three segments.
fn with_iov<R>(head: &[u8], pkt: &Packet, f: impl FnOnce(&[IoSlice<'_>]) -> R) -> R {
    const INLINE: usize = 4;
    let pieces = std::iter::once(head)
        .filter(|h| !h.is_empty())
        .chain(pkt.segments().map(|s| s.data()));
    if pkt.seg_count() < INLINE {
        let mut iov = [IoSlice::new(&[]); INLINE];
        let mut n = 0;
        for (slot, piece) in iov.iter_mut().zip(pieces) {
            *slot = IoSlice::new(piece);
            n += 1;
        }
        f(iov.get(..n).unwrap_or(&[]))
    } else {
        let iov: Vec<IoSlice<'_>> = pieces.map(IoSlice::new).collect();
        f(&iov)
    }
}
