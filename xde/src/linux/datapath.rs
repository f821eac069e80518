//! The datapath's workers ([`run_worker`], one thread each). Each port belongs to one
//! worker, [`crate::port::VniMac::owner`] of its VNI and guest MAC: that worker reads every
//! queue of the port's TAP (a multi-queue TAP, so a VMM or the guest's kernel may spread
//! its flows over the queues), and the kernel hands it what arrives on the underlay for
//! the port (each link has a socket per worker in a fanout group whose classic BPF program
//! computes the same owner from the Geneve header; see [`super::underlay::Steer`]). Frames
//! from a TAP go through the core's `tx`, Geneve frames from the underlay through its
//! `rx`. So a port's flow tables, its lock and its route cache are only ever touched by
//! one worker (and by the control path, which holds a port's lock for one command at
//! most), each worker looks ports up in its own snapshot of the port map, and nothing is
//! reordered. Only local delivery crosses over: a frame for another port of this host
//! (guest loopback, local multicast) goes through that port's inbound path on the
//! sending worker. Where the kernel refuses the program, flows are spread by hash instead
//! (one flow still on one worker, but a port's flows meet at its lock). What the core
//! emits is carried out alike: frames for guests (hairpin replies, guest loopback,
//! decapsulated traffic) are written to their TAPs, frames for the underlay sent on the
//! link it chose.
//!
//! A worker waits on all its descriptors at once with poll(2) (the set is rebuilt only when
//! a device or a port comes or goes) and reads up to [`BATCH`] frames of a ready one per
//! wakeup. A guest's frame is read straight into a pooled buffer behind [`HEADROOM`] bytes
//! of room, so it is read once and the engine rewrites it in place (an encapsulation goes
//! into the headroom); a frame from the underlay is processed in the slot of the receive
//! ring the kernel put it in ([`super::ring`]; or read into a pooled buffer with recvmmsg
//! where there is no ring). Buffers come back to the pool, and slots to the kernel, when a
//! frame has been written or dropped: once warmed up, a worker allocates nothing for a
//! packet of an established flow ([`super::allocs`] counts it).
//!
//! Offloads (see [`crate::offload`]): a guest's frame comes with a virtio-net header. A
//! checksum it left partial is finished at once, unless the frame is a super-frame (TSO or
//! USO): the engine processes that once, as one packet, and it is cut into segments only
//! when it leaves for the underlay, each with its own checksums; a super-frame for another
//! guest of this host is handed over whole. Towards a guest, in-order TCP segments of one
//! flow are coalesced into one super-frame with a GSO header (and a lone segment larger
//! than the guest's MSS, which the sending sled made so, is presented the same way).

// A no_std crate: the daemon brings std's prelude in itself.
use super::host::LinuxHost;
use super::ring::Slot;
use super::tap::{
    Tap, VNET_F_DATA_VALID, VNET_F_NEEDS_CSUM, VNET_GSO_ECN, VNET_GSO_NONE, VNET_GSO_TCPV4,
    VNET_GSO_TCPV6, VNET_GSO_UDP_L4, VnetHdr,
};
use super::underlay::{Cut, Frame, Steer, UnderlayLink, VNET_LEN};
use crate::core::PortMap;
use crate::offload::{
    DGRAM_OUTER, IP_LEN_MAX, Layout, MIN_SEG, finish_partial, merge_chunks, set_geneve_len,
};
use crate::port::XdePort;
use crate::stats::{add, bump};
use crate::{Emit, Link, Xde};
use nix::libc;
use opte::engine::time::Moment;
use opte::packet::parse::{parse_guest, parse_network};
use opte::packet::{CsumState, DEFAULT_HEADROOM, Gso, GsoKind, Offload, Packet, Segment};
use std::io::{self, IoSlice, Read, Write};
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::prelude::rust_2024::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use std::vec;

/// Room in front of a frame read from a guest: an encapsulation (outer Ethernet, IPv6, UDP,
/// Geneve with options) fits without moving the frame.
pub const HEADROOM: usize = DEFAULT_HEADROOM;

/// The largest frame read: a guest's super-frame of [`super::tap::GSO_MAX_SIZE`] and its
/// Ethernet header, or a datagram of Geneve chunks that arrived whole (up to 64 KiB of
/// UDP) and its outer headers; with room to spare.
const FRAME_MAX: usize = 65_536 + 64;

/// Frames read from one descriptor per wakeup before the others get their turn.
pub const BATCH: usize = 64;

/// At most this many segments are coalesced into one super-frame for a guest.
const RUN_MAX: usize = 64;

/// How often a worker looks at its devices even if nothing happens.
const RESCAN: Duration = Duration::from_millis(100);

/// Receive buffers, reused so that reading a frame allocates nothing.
struct Pool {
    bufs: Vec<Vec<u8>>,
    /// Each buffer's size: [`HEADROOM`] and the largest frame read.
    size: usize,
    /// Buffers kept for reuse, at most.
    max: usize,
}

impl Pool {
    fn new(frame_max: usize, max: usize) -> Self {
        Self {
            bufs: Vec::new(),
            size: HEADROOM + frame_max,
            max,
        }
    }

    /// With `n` buffers made ahead.
    fn filled(mut self, n: usize) -> Self {
        self.bufs = (0..n.min(self.max)).map(|_| vec![0u8; self.size]).collect();
        self
    }

    fn take(&mut self) -> Vec<u8> {
        self.bufs.pop().unwrap_or_else(|| vec![0u8; self.size])
    }

    fn put(&mut self, buf: Vec<u8>) {
        if buf.len() == self.size && self.bufs.len() < self.max {
            self.bufs.push(buf);
        }
    }

    /// Take back a packet's buffers; a buffer lent by a receive ring goes back to its
    /// ring as it is dropped.
    fn give(&mut self, pkt: Packet) {
        for seg in pkt.into_segments() {
            if !seg.is_lent() {
                self.put(seg.into_vec().0);
            }
        }
    }
}

/// What a worker keeps between batches, so that carrying out a batch allocates nothing
/// once it has warmed up.
struct Work {
    /// Which worker: its queue of each TAP, its socket on each link.
    w: usize,
    pool: Pool,
    /// Frames read from one TAP, for the core in one batch.
    read: Vec<Packet>,
    out: Vec<Emit>,
    sends: Vec<(Link, Packet)>,
    cutter: Cutter,
    guests: GuestWriter,
}

impl Work {
    fn new(w: usize) -> Self {
        Self {
            w,
            // 256 buffers of a super-frame's size: 16 MiB at most; two batches' worth
            // made at once, so that a worker's first full batches allocate nothing
            // either (the memory is the kernel's zero pages until a frame is read in).
            pool: Pool::new(FRAME_MAX, 256).filled(BATCH * 2),
            read: Vec::with_capacity(BATCH * 2),
            out: Vec::with_capacity(BATCH * 2),
            sends: Vec::with_capacity(BATCH * 2),
            cutter: Cutter::with_room(),
            guests: GuestWriter {
                w,
                run: Vec::with_capacity(RUN_MAX),
                ..GuestWriter::default()
            },
        }
    }
}

/// One TAP queue a worker reads, and the port it belongs to.
struct TapQueue {
    tap: Arc<Tap>,
    port: Arc<XdePort>,
    q: usize,
}

/// What a worker reads and where it looks ports up, rebuilt when a device or a port comes
/// or goes: the TAP queues it serves (every queue of the ports it owns, when the underlay
/// steers each port to one worker; else its own queue of every TAP), then its socket on
/// each underlay link, and its own snapshot of the port map.
struct PollSet {
    /// The host's device generation and the port map's, when last rebuilt.
    generation: Option<(u64, u64)>,
    queues: Vec<TapQueue>,
    under: Option<Arc<super::host::Underlay>>,
    ports: Arc<PortMap>,
    /// Each port's traffic is steered to its owning worker.
    by_port: bool,
    fds: Vec<libc::pollfd>,
}

impl PollSet {
    fn new(xde: &Xde<LinuxHost>) -> Self {
        Self {
            generation: None,
            queues: Vec::new(),
            under: None,
            ports: xde.ports_snapshot(),
            by_port: false,
            fds: Vec::new(),
        }
    }

    fn stale(&self, xde: &Xde<LinuxHost>) -> bool {
        self.generation != Some((xde.host().generation(), xde.ports_generation()))
    }

    fn rebuild(&mut self, xde: &Xde<LinuxHost>, w: usize) {
        self.generation = Some((xde.host().generation(), xde.ports_generation()));
        self.ports = xde.ports_snapshot();
        self.under = xde.host().underlay();
        let workers = xde.host().workers();
        self.by_port = workers > 1
            && self
                .under
                .as_ref()
                .is_some_and(|u| u.links().iter().all(|l| l.steer() == Steer::ByPort));
        self.queues.clear();
        for tap in xde.host().taps() {
            // A TAP whose port is not in the map yet is taken up when it is.
            let Some(port) = self.ports.by_name.get(tap.name()).cloned() else {
                continue;
            };
            let mine: Range<usize> = if !self.by_port {
                w..w + 1
            } else if port.key().owner(workers) == w {
                0..workers
            } else {
                0..0
            };
            for q in mine.filter(|&q| tap.queue(q).is_some()) {
                self.queues.push(TapQueue {
                    tap: tap.clone(),
                    port: port.clone(),
                    q,
                });
            }
        }
        let pollin = |fd: i32| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        self.fds.clear();
        for t in &self.queues {
            if let Some(q) = t.tap.queue(t.q) {
                self.fds.push(pollin(q.as_raw_fd()));
            }
        }
        if let Some(u) = &self.under {
            for l in u.links() {
                self.fds.push(pollin(l.socket_of(w).as_raw_fd()));
            }
        }
    }

    /// Wait up to [`RESCAN`] for a descriptor to be readable (an error or hang-up counts:
    /// the read that follows says what it is); false if none is. Until `busy_until`, the
    /// worker looks without sleeping (yielding the CPU between looks): while traffic flows,
    /// the next frame is taken without a wakeup's latency, and once it stops the worker
    /// sleeps again.
    fn wait(&mut self, busy_until: Instant) -> bool {
        if self.fds.is_empty() {
            std::thread::sleep(RESCAN);
            return false;
        }
        while Instant::now() < busy_until {
            if poll_fds(&mut self.fds, Duration::ZERO).is_ok_and(|n| n > 0) {
                return true;
            }
            std::thread::yield_now();
        }
        match poll_fds(&mut self.fds, RESCAN) {
            Ok(n) => n > 0,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => false,
            Err(e) => {
                tracing::error!(error = %e, "datapath: poll failed");
                std::thread::sleep(RESCAN);
                false
            }
        }
    }

    fn ready(&self, i: usize) -> bool {
        self.fds.get(i).is_some_and(|f| f.revents != 0)
    }
}

/// poll(2) on descriptors the caller keeps open.
#[allow(unsafe_code)]
fn poll_fds(fds: &mut [libc::pollfd], timeout: Duration) -> io::Result<usize> {
    let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: `fds` is a valid, exclusively borrowed array of `fds.len()` pollfds.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// Run worker `w` until `stop` is set: read its queue of every TAP and its socket on each
/// underlay link, and carry out what the core says.
pub fn run_worker(
    xde: Arc<Xde<LinuxHost>>,
    w: usize,
    epoch: Instant,
    spin: Duration,
    stop: Arc<AtomicBool>,
) {
    super::allocs::mark_worker();
    let mut work = Work::new(w);
    let mut busy_until = Instant::now();
    let mut set = PollSet::new(&xde);
    let mut bufs: Vec<Vec<u8>> = Vec::with_capacity(BATCH);
    let mut lens = [0usize; BATCH];
    let workers = xde.host().workers();
    while !stop.load(Ordering::Acquire) {
        if set.stale(&xde) {
            set.rebuild(&xde, w);
        }
        if !set.wait(busy_until) {
            continue;
        }
        busy_until = Instant::now() + spin;
        let mut gone = false;
        for (i, tq) in set.queues.iter().enumerate() {
            if !set.ready(i) {
                continue;
            }
            let Some(q) = tq.tap.queue(tq.q) else {
                continue;
            };
            let now = Moment::from_nanos(epoch.elapsed().as_nanos() as u64);
            // The batch goes through the port under one acquisition of its lock.
            for _ in 0..BATCH {
                match read_frame(&xde, &tq.tap, q, &mut work.pool) {
                    Got::Frame(mut pkt) => match split_oversized(&xde, &mut pkt, &mut work.pool) {
                        Split::Whole => work.read.push(pkt),
                        Split::Two(tail) => {
                            work.read.push(pkt);
                            work.read.push(tail);
                        }
                        Split::Dropped => work.pool.give(pkt),
                    },
                    Got::Dropped => {}
                    Got::Empty => break,
                    Got::Gone => {
                        gone = true;
                        break;
                    }
                }
            }
            xde.tx_batch(&tq.port, work.read.drain(..), now, &mut work.out);
            carry_out(&xde, &mut work);
        }
        if gone {
            // Stop polling a TAP whose device went from under it.
            set.generation = None;
        }
        let Some(under) = set.under.clone() else {
            continue;
        };
        for (k, (link, l)) in [Link::U1, Link::U2]
            .into_iter()
            .zip(under.links())
            .enumerate()
        {
            if !set.ready(set.queues.len() + k) {
                continue;
            }
            let now = Moment::from_nanos(epoch.elapsed().as_nanos() as u64);
            if let Some(ring) = l.ring_of(w) {
                // Each frame processed where the kernel put it, its slot given back when
                // it has been carried out.
                for _ in 0..BATCH {
                    match ring.take() {
                        Slot::Frame(f) => {
                            let hdr = VnetHdr::read(f.vnet.get(..l.hdr_len()).unwrap_or(&[]));
                            rx_frame(&xde, &set.ports, link, &hdr, f.seg, now, &mut work);
                        }
                        Slot::Truncated => bump(&xde.stats().rx_truncated),
                        Slot::Empty => break,
                    }
                }
            } else {
                while bufs.len() < BATCH {
                    bufs.push(work.pool.take());
                }
                let vnet = l.hdr_len();
                let n = match l.recv_batch(w, &mut bufs, HEADROOM - vnet, &mut lens) {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::warn!(link = l.name(), error = %e, "reading the underlay failed");
                        continue;
                    }
                };
                for (buf, &len) in bufs.drain(..n).zip(&lens) {
                    let hdr = VnetHdr::read(buf.get(HEADROOM - vnet..HEADROOM).unwrap_or(&[]));
                    let end = HEADROOM + len.saturating_sub(vnet);
                    match Segment::from_vec(buf, HEADROOM, end) {
                        Ok(seg) => rx_frame(&xde, &set.ports, link, &hdr, seg, now, &mut work),
                        Err((buf, _)) => work.pool.put(buf),
                    }
                }
            }
            if set.by_port {
                count_off_worker(&xde, &work.out, w, workers);
            }
            carry_out(&xde, &mut work);
        }
    }
}

/// Count the frames for guests in `out` that worker `w` received for a port it does not
/// own (the kernel steered them past the fanout program).
fn count_off_worker(xde: &Xde<LinuxHost>, out: &[Emit], w: usize, workers: usize) {
    for e in out {
        if let Emit::Guest { port, .. } = e
            && port.key().owner(workers) != w
        {
            bump(&xde.stats().rx_off_worker);
        }
    }
}

/// What a read from a TAP gave.
enum Got {
    Frame(Packet),
    /// A frame that was dropped (and counted).
    Dropped,
    /// Nothing more to read.
    Empty,
    /// The device is gone from under its descriptor.
    Gone,
}

/// One frame from `tap`, its virtio-net header taken into the packet's offload state.
fn read_frame(xde: &Xde<LinuxHost>, tap: &Tap, q: &std::fs::File, pool: &mut Pool) -> Got {
    let mut buf = pool.take();
    // The header lands just in front of the frame, which then starts at HEADROOM.
    let at = HEADROOM - tap.hdr_len();
    let n = loop {
        match { q }.read(buf.get_mut(at..).unwrap_or(&mut [])) {
            Ok(n) => break n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                // Anything but "nothing to read" means the device is gone from under the
                // descriptor (its namespace was deleted): stop polling it, say so once.
                pool.put(buf);
                if e.kind() == io::ErrorKind::WouldBlock {
                    return Got::Empty;
                }
                if tap.set_gone() {
                    tracing::warn!(
                        port = tap.name(),
                        error = %e,
                        "the port's TAP is gone (was its namespace deleted?); its frames are dropped until delete-xde"
                    );
                }
                return Got::Gone;
            }
        }
    };
    if n <= tap.hdr_len() {
        pool.put(buf);
        return Got::Empty;
    }
    let hdr = VnetHdr::read(buf.get(at..HEADROOM).unwrap_or(&[]));
    let offload = guest_offload(&hdr, buf.get_mut(HEADROOM..at + n).unwrap_or(&mut []));
    let Some(offload) = offload else {
        bump(&xde.stats().out_drop_bad_offload);
        pool.put(buf);
        return Got::Dropped;
    };
    match Segment::from_vec(buf, HEADROOM, at + n) {
        Ok(seg) => {
            let mut pkt = Packet::from_segment(seg);
            pkt.set_offload(offload);
            Got::Frame(pkt)
        }
        Err((buf, _)) => {
            pool.put(buf);
            Got::Dropped
        }
    }
}

/// The longest super-frame that can be encapsulated: the IPv6 payload (UDP, Geneve with
/// its options, the frame) must fit 16 bits. The daemon's own TAPs never hand over a longer
/// one (their `gso_max_size`); a VMM's guest may (its virtio-net device takes 64 KiB).
const SUPER_FRAME_MAX: usize = super::tap::GSO_MAX_SIZE as usize + 14;

/// What [`split_oversized`] did.
enum Split {
    /// Nothing: the frame fits.
    Whole,
    /// The frame keeps the first part; this is the second.
    Two(Packet),
    /// It could not be split: the frame is to be dropped (it was counted).
    Dropped,
}

/// Split a super-frame longer than [`SUPER_FRAME_MAX`] in two at a segment boundary, each
/// to go through the engine (they cut as the whole would have).
fn split_oversized(xde: &Xde<LinuxHost>, pkt: &mut Packet, pool: &mut Pool) -> Split {
    let off = pkt.offload();
    let Some(gso) = off.gso else {
        return Split::Whole;
    };
    if pkt.len() <= SUPER_FRAME_MAX {
        return Split::Whole;
    }
    let mss = usize::from(gso.size);
    let lay = parse_guest(pkt).ok().and_then(|m| Layout::of_inner(&m));
    let mut buf = pool.take();
    let split = lay.and_then(|lay| {
        let segs = SUPER_FRAME_MAX.checked_sub(lay.payload)? / mss;
        let tail = buf.get_mut(HEADROOM..)?;
        let seg = pkt.segment_mut(0)?;
        lay.split(seg.data_mut(), mss, segs, tail)
    });
    let Some((head, tail)) = split else {
        bump(&xde.stats().out_drop_bad_offload);
        pool.put(buf);
        return Split::Dropped;
    };
    pkt.truncate(head);
    match Segment::from_vec(buf, HEADROOM, HEADROOM + tail) {
        Ok(seg) => {
            let mut t = Packet::from_segment(seg);
            t.set_offload(off);
            Split::Two(t)
        }
        Err((buf, _)) => {
            bump(&xde.stats().out_drop_bad_offload);
            pool.put(buf);
            Split::Dropped
        }
    }
}

/// The offload state of a guest's `frame` from its virtio-net header. A partial checksum
/// on a frame that is not to be segmented is finished here, so that everything after
/// (the engine's gateway, loopback to another guest, the wire) sees a complete frame;
/// a super-frame keeps its partial checksum until it is cut. `None` for a request that
/// cannot be honoured (an unknown segmentation type, a size under [`MIN_SEG`], or a
/// super-frame whose checksum is not left to the device, as virtio-net requires).
fn guest_offload(hdr: &VnetHdr, frame: &mut [u8]) -> Option<Offload> {
    let partial = hdr.flags & VNET_F_NEEDS_CSUM != 0;
    let (start, offset) = (usize::from(hdr.csum_start), usize::from(hdr.csum_offset));
    let kind = match hdr.gso_type & !VNET_GSO_ECN {
        VNET_GSO_NONE => {
            if partial && !finish_partial(frame, start, offset) {
                return None;
            }
            return Some(Offload::default());
        }
        VNET_GSO_TCPV4 => GsoKind::TcpV4,
        VNET_GSO_TCPV6 => GsoKind::TcpV6,
        VNET_GSO_UDP_L4 => GsoKind::Udp,
        _ => return None,
    };
    // A super-frame's checksum is always left to the device (virtio-net requires it).
    if usize::from(hdr.gso_size) < MIN_SEG || !partial {
        return None;
    }
    Some(Offload {
        csum: CsumState::Partial {
            csum_start: hdr.csum_start,
            csum_offset: hdr.csum_offset,
        },
        gso: Some(Gso {
            kind,
            size: hdr.gso_size,
        }),
    })
}

/// A UDP datagram of Geneve chunks that arrived whole (the sending host had it segmented
/// by the kernel, and no real wire was in between): the coalesced super-frame it carries,
/// through the core once, if it is one flow's segments in order; otherwise each chunk
/// through the core on its own, copied out with the outer headers in front. Its checksums
/// are trusted only if the kernel vouches for them: the datagram was made on this machine
/// (its checksum still partial) or was verified when it arrived.
#[allow(clippy::too_many_arguments)]
fn rx_dgram(
    xde: &Xde<LinuxHost>,
    ports: &PortMap,
    link: Link,
    mut seg: Segment,
    hdr: &VnetHdr,
    now: Moment,
    w: &mut Work,
) {
    let chunk = usize::from(hdr.gso_size);
    let trusted = hdr.flags & (VNET_F_NEEDS_CSUM | VNET_F_DATA_VALID) != 0;
    let merged = if trusted {
        merge_chunks(seg.data_mut(), chunk)
    } else {
        None
    };
    if let Some(m) = merged {
        bump(&xde.stats().rx_dgrams_merged);
        let mut pkt = Packet::from_segment(seg);
        pkt.truncate(m.len);
        pkt.set_offload(Offload {
            csum: CsumState::Partial {
                csum_start: m.inner.l4 as u16,
                csum_offset: 16,
            },
            gso: Some(Gso {
                kind: if m.inner.v4 {
                    GsoKind::TcpV4
                } else {
                    GsoKind::TcpV6
                },
                size: u16::try_from(m.seg).unwrap_or(u16::MAX),
            }),
        });
        xde.rx_in(ports, link, pkt, now, &mut w.out);
        return;
    }
    bump(&xde.stats().rx_dgrams_split);
    let frame = seg.data();
    let (outer, chunks) = frame.split_at(DGRAM_OUTER.min(frame.len()));
    for c in chunks.chunks(chunk.max(1)) {
        let mut b = w.pool.take();
        let Some(dst) = b.get_mut(HEADROOM..HEADROOM + DGRAM_OUTER + c.len()) else {
            w.pool.put(b);
            continue;
        };
        if outer.len() != DGRAM_OUTER {
            w.pool.put(b);
            continue;
        }
        let (o, rest) = dst.split_at_mut(DGRAM_OUTER);
        o.copy_from_slice(outer);
        rest.copy_from_slice(c);
        // One Geneve packet: its own lengths, and no outer checksum (RFC 6935).
        let _ = set_geneve_len(dst, c.len());
        match Segment::from_vec(b, HEADROOM, HEADROOM + DGRAM_OUTER + c.len()) {
            Ok(seg) => xde.rx_in(ports, link, Packet::from_segment(seg), now, &mut w.out),
            Err((b, _)) => w.pool.put(b),
        }
    }
    w.pool.give(Packet::from_segment(seg));
}

/// One frame from underlay `link` (`hdr`: its virtio-net header, zeros if none) through
/// the core: a datagram of Geneve chunks as [`rx_dgram`] says, any other as it is.
#[allow(clippy::too_many_arguments)]
fn rx_frame(
    xde: &Xde<LinuxHost>,
    ports: &PortMap,
    link: Link,
    hdr: &VnetHdr,
    seg: Segment,
    now: Moment,
    w: &mut Work,
) {
    if hdr.gso_type & !VNET_GSO_ECN == VNET_GSO_UDP_L4 {
        rx_dgram(xde, ports, link, seg, hdr, now, w);
    } else {
        xde.rx_in(ports, link, Packet::from_segment(seg), now, &mut w.out);
    }
}

/// Do what the core asked: frames for guests are written to their TAPs (coalesced where
/// they can be), frames for the underlay sent on the link it chose, a batch per link per
/// system call; what is not ours is dropped (the kernel has its own copy of anything that
/// reached it).
fn carry_out(xde: &Xde<LinuxHost>, w: &mut Work) {
    for e in w.out.drain(..) {
        match e {
            Emit::Guest { port, pkt } => w.guests.push(xde, port.name(), pkt, &mut w.pool),
            Emit::Underlay { link, pkt } => w.sends.push((link, pkt)),
            Emit::NotOurs(pkt) | Emit::Spent(pkt) => w.pool.give(pkt),
        }
    }
    w.guests.finish(xde, &mut w.pool);
    send_underlay(xde, w.w, &mut w.sends, &mut w.cutter, &mut w.pool);
}

/// Segments cut from super-frames bound for the underlay: their headers in `scratch`, the
/// payload left where it is.
#[derive(Default)]
struct Cutter {
    scratch: Vec<u8>,
    cuts: Vec<Cut>,
    /// What is sent: one cut, or a datagram of several.
    units: Vec<Unit>,
    /// What becomes of each frame gathered for one link, in order.
    plan: Vec<Plan>,
}

impl Cutter {
    /// Room made ahead for a batch of super-frames of ordinary segment sizes (an MSS of
    /// 1,360 or more), so that cutting them allocates nothing; a smaller MSS grows it once.
    fn with_room() -> Self {
        /// Segments of a 64 KiB super-frame at an MSS of 1,360.
        const SEGS: usize = 48;
        /// Bytes of headers of one segment, at most: outer Ethernet, IPv6, UDP, Geneve
        /// with options, inner Ethernet, IP with options, TCP with options.
        const HDRS: usize = 192;
        Self {
            scratch: Vec::with_capacity(BATCH * SEGS * HDRS),
            cuts: Vec::with_capacity(BATCH * SEGS),
            units: Vec::with_capacity(BATCH * SEGS),
            plan: Vec::with_capacity(BATCH * 2),
        }
    }
}

/// One frame on the wire made of cuts.
enum Unit {
    /// A segment with its own outer headers.
    One(usize),
    /// A UDP datagram of the cuts' Geneve chunks, behind `head` (virtio-net header and
    /// outer headers) in the scratch buffer.
    Dgram {
        head: Range<usize>,
        cuts: Range<usize>,
    },
}

#[derive(Clone)]
enum Plan {
    /// Sent as it is.
    Whole,
    /// Sent as these units.
    Cut(Range<usize>),
    /// Not sent (counted).
    Dropped,
}

/// At most this many Geneve chunks go in one datagram for the kernel to segment.
const DGRAM_CHUNKS: usize = 64;

impl Cutter {
    /// Cut super-frame `pkt` for link `l`: its segments' headers written, their places
    /// noted. The segment size is the guest's, or, when the destination is another guest
    /// (the Geneve MSS option is there), as much as the underlay's MTU allows: the
    /// receiving sled presents the segments to its guest at the guest's MSS anyway (SPEC
    /// §7.5, "MSS boosting"). To another guest, on a link that takes virtio-net headers,
    /// the segments go as UDP datagrams of Geneve chunks, each for the kernel to segment
    /// where it meets a real wire: a virtual underlay carries them whole.
    fn cut(&mut self, pkt: &mut Packet, l: &UnderlayLink) -> Option<Range<usize>> {
        let gso = pkt.offload().gso?;
        if pkt.seg_count() != 1 {
            // Not what a TAP read makes: one contiguous copy to cut from.
            let mut flat = Packet::copy_from(&pkt.to_vec());
            flat.set_offload(pkt.offload());
            *pkt = flat;
        }
        let n = parse_network(pkt).ok()?;
        let lay = Layout::of_network(&n)?;
        let kind_ok = match gso.kind {
            GsoKind::TcpV4 => lay.tcp && lay.v4,
            GsoKind::TcpV6 => lay.tcp && !lay.v4,
            GsoKind::Udp => !lay.tcp,
        };
        if !kind_ok {
            return None;
        }
        let guest = usize::from(gso.size);
        let internal = lay.tcp && n.outer.geneve.mss.is_some_and(|m| m > 0);
        let mss = if internal {
            let outer_eth = usize::from(n.outer.eth.hdr_len);
            guest.max(l.mtu().saturating_sub(lay.payload - outer_eth))
        } else {
            guest
        };
        let frame = pkt.segment(0)?.data();
        let first_cut = self.cuts.len();
        for i in 0..lay.seg_count(mss) {
            let at = self.scratch.len();
            self.scratch.resize(at + lay.payload, 0);
            let hdr = self.scratch.get_mut(at..)?;
            let body = lay.write_segment(frame, mss, i, hdr)?;
            self.cuts.push(Cut {
                hdr: at..at + lay.payload,
                body,
            });
        }
        let first_unit = self.units.len();
        let dgrams = internal && l.hdr_len() == VNET_LEN && lay.outer.is_some();
        let chunk_hdr = lay.payload.saturating_sub(DGRAM_OUTER);
        let mut i = first_cut;
        while i < self.cuts.len() {
            // As many chunks as one datagram holds.
            let mut udp_len = 8;
            let mut j = i;
            while let Some(c) = self.cuts.get(j) {
                let more = chunk_hdr + c.body.len();
                if !dgrams || j - i == DGRAM_CHUNKS || udp_len + more > IP_LEN_MAX {
                    break;
                }
                udp_len += more;
                j += 1;
            }
            if j - i < 2 {
                self.units.push(Unit::One(i));
                i += 1;
                continue;
            }
            let at = self.scratch.len();
            self.scratch.resize(at + VNET_LEN + DGRAM_OUTER, 0);
            let hdr = VnetHdr {
                flags: VNET_F_NEEDS_CSUM,
                gso_type: VNET_GSO_UDP_L4,
                hdr_len: DGRAM_OUTER as u16,
                gso_size: u16::try_from(chunk_hdr + mss).ok()?,
                csum_start: (DGRAM_OUTER - 8) as u16,
                csum_offset: 6,
            };
            let head = self.scratch.get_mut(at..)?;
            let (v, outer) = head.split_at_mut(VNET_LEN);
            v.copy_from_slice(hdr.bytes().get(..VNET_LEN)?);
            lay.write_dgram_head(frame, udp_len, outer)?;
            self.units.push(Unit::Dgram {
                head: at..at + VNET_LEN + DGRAM_OUTER,
                cuts: i..j,
            });
            i = j;
        }
        Some(first_unit..self.units.len())
    }
}

/// Send the frames gathered for the underlay, in order, one sendmmsg per link (and per 64
/// frames); super-frames go as their segments.
fn send_underlay(
    xde: &Xde<LinuxHost>,
    w: usize,
    sends: &mut Vec<(Link, Packet)>,
    c: &mut Cutter,
    pool: &mut Pool,
) {
    if sends.is_empty() {
        return;
    }
    if let Some(u) = xde.host().underlay() {
        for link in [Link::U1, Link::U2] {
            let Some(l) = u.link(link) else {
                continue;
            };
            c.scratch.clear();
            c.cuts.clear();
            c.units.clear();
            c.plan.clear();
            for (k, pkt) in sends.iter_mut() {
                let plan = if *k != link {
                    Plan::Dropped
                } else if pkt.offload().gso.is_none() {
                    Plan::Whole
                } else if let Some(r) = c.cut(pkt, l) {
                    bump(&xde.stats().tx_gso_frames);
                    let segs = c
                        .units
                        .get(r.clone())
                        .unwrap_or(&[])
                        .iter()
                        .map(|u| match u {
                            Unit::One(_) => 1,
                            Unit::Dgram { cuts, .. } => cuts.len(),
                        });
                    add(&xde.stats().tx_gso_segments, segs.sum());
                    Plan::Cut(r)
                } else {
                    bump(&xde.stats().out_drop_bad_offload);
                    Plan::Dropped
                };
                c.plan.push(plan);
            }
            let (scratch, cuts, units) = (&c.scratch, &c.cuts, &c.units);
            let frames = sends.iter().zip(&c.plan).flat_map(|((_, pkt), plan)| {
                let whole = matches!(plan, Plan::Whole).then_some(Frame::Packet(pkt));
                let r = match plan {
                    Plan::Cut(r) => r.clone(),
                    Plan::Whole | Plan::Dropped => 0..0,
                };
                let data = pkt.segment(0).map_or(&[][..], |s| s.data());
                let pieces = units.get(r).unwrap_or(&[]).iter().map(move |u| match u {
                    Unit::One(i) => {
                        let cut = cuts.get(*i);
                        Frame::Pieces(
                            cut.and_then(|c| scratch.get(c.hdr.clone())).unwrap_or(&[]),
                            cut.and_then(|c| data.get(c.body.clone())).unwrap_or(&[]),
                        )
                    }
                    Unit::Dgram { head, cuts: r } => Frame::Dgram {
                        head: scratch.get(head.clone()).unwrap_or(&[]),
                        scratch,
                        data,
                        cuts: cuts.get(r.clone()).unwrap_or(&[]),
                        skip: DGRAM_OUTER,
                    },
                });
                whole.into_iter().chain(pieces)
            });
            let (sent, total) = l.send_frames(w, frames);
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

/// Frames for guests, written as they come, except that in-order TCP segments of one flow
/// for one guest are gathered into a run and written as one super-frame (GRO-like). A run
/// is bounded by one batch (nothing waits for more frames), by [`RUN_MAX`] segments and by
/// IP's 64 KiB; every segment of it but the last is full-sized, and each has had its
/// checksum verified (a segment that fails is dropped, as the guest would drop it).
#[derive(Default)]
struct GuestWriter {
    /// The worker's queue of each TAP is where it writes (the kernel then steers the
    /// guest's answers of that flow to the same queue).
    w: usize,
    /// The TAP of the run, and of the last frame written (looked up once per change).
    tap: Option<Arc<Tap>>,
    run: Vec<(Packet, Layout)>,
    /// The run's payload bytes.
    payload: usize,
    /// The MSS the sending guest asked its segments to be presented at, if known.
    mss: Option<u16>,
}

impl GuestWriter {
    fn push(&mut self, xde: &Xde<LinuxHost>, port: &str, mut pkt: Packet, pool: &mut Pool) {
        if self.tap.as_ref().is_none_or(|t| t.name() != port) {
            self.flush(xde, pool);
            self.tap = xde.host().tap(port);
        }
        let Some(tap) = self.tap.clone() else {
            pool.give(pkt);
            return;
        };
        let off = pkt.offload();
        if let CsumState::Partial {
            csum_start,
            csum_offset,
        } = off.csum
        {
            // A super-frame from a guest of this host: handed over as it came.
            self.flush(xde, pool);
            let gso_type = match off.gso.map(|g| g.kind) {
                None => VNET_GSO_NONE,
                Some(GsoKind::TcpV4) => VNET_GSO_TCPV4,
                Some(GsoKind::TcpV6) => VNET_GSO_TCPV6,
                Some(GsoKind::Udp) => VNET_GSO_UDP_L4,
            };
            let hdr = VnetHdr {
                flags: VNET_F_NEEDS_CSUM,
                gso_type,
                hdr_len: 0,
                gso_size: off.gso.map_or(0, |g| g.size),
                csum_start,
                csum_offset,
            };
            write_frame(&tap, self.w, &hdr, &pkt);
            pool.give(pkt);
            return;
        }
        let lay = match parse_guest(&mut pkt) {
            Ok(m) if pkt.seg_count() == 1 => Layout::of_inner(&m),
            _ => None,
        }
        .filter(|l| l.tcp && l.payload_len() > 0);
        let Some(lay) = lay else {
            self.flush(xde, pool);
            write_frame(&tap, self.w, &VnetHdr::default(), &pkt);
            pool.give(pkt);
            return;
        };
        let data = pkt.segment(0).map_or(&[][..], |s| s.data());
        if !lay.l4_csum_ok(data) {
            bump(&xde.stats().rx_bad_csum);
            pool.give(pkt);
            return;
        }
        let mss = off.gso.map(|g| g.size);
        if !self.joins(&lay, data, mss) {
            self.flush(xde, pool);
            self.mss = mss;
        }
        self.payload += lay.payload_len();
        self.run.push((pkt, lay));
    }

    /// Whether a segment of layout `lay` carries the run on.
    fn joins(&self, lay: &Layout, data: &[u8], mss: Option<u16>) -> bool {
        let (Some((_, fl)), Some((last, ll))) = (self.run.first(), self.run.last()) else {
            return false;
        };
        let size = fl.payload_len();
        let last_data = last.segment(0).map_or(&[][..], |s| s.data());
        self.run.len() < RUN_MAX
            && mss == self.mss
            && ll.payload_len() == size
            && lay.payload_len() <= size
            && fl.payload - fl.ip + self.payload + lay.payload_len() <= IP_LEN_MAX
            && ll.follows(last_data, lay, data)
    }

    /// Write what is pending and let go of the TAP (a port deleted meanwhile takes its
    /// device with it only once nobody holds it).
    fn finish(&mut self, xde: &Xde<LinuxHost>, pool: &mut Pool) {
        self.flush(xde, pool);
        self.tap = None;
    }

    /// Write the run: a lone segment no larger than its MSS as it is, anything else as one
    /// super-frame.
    fn flush(&mut self, xde: &Xde<LinuxHost>, pool: &mut Pool) {
        let Some(tap) = self.tap.clone() else {
            for (pkt, _) in self.run.drain(..) {
                pool.give(pkt);
            }
            return;
        };
        let total = std::mem::take(&mut self.payload);
        let n = self.run.len();
        let Some((first, fl)) = self.run.first_mut() else {
            return;
        };
        let fl = *fl;
        let size = usize::from(self.mss.unwrap_or(0));
        let size = if size == 0 { fl.payload_len() } else { size };
        if n == 1 && total <= size {
            let hdr = VnetHdr {
                flags: VNET_F_DATA_VALID,
                ..VnetHdr::default()
            };
            write_frame(&tap, self.w, &hdr, first);
        } else {
            let psh = self
                .run
                .last()
                .and_then(|(p, l)| p.segment(0)?.data().get(l.l4 + 13).copied())
                .is_some_and(|f| f & 0x08 != 0);
            let Some((first, _)) = self.run.first_mut() else {
                return;
            };
            let merged = first
                .segment_mut(0)
                .and_then(|s| fl.merge_headers(s.data_mut(), total, psh));
            let gso = total > size;
            let hdr = VnetHdr {
                flags: VNET_F_NEEDS_CSUM,
                gso_type: match (gso, fl.v4) {
                    (false, _) => VNET_GSO_NONE,
                    (true, true) => VNET_GSO_TCPV4,
                    (true, false) => VNET_GSO_TCPV6,
                },
                hdr_len: fl.payload as u16,
                gso_size: if gso { size as u16 } else { 0 },
                csum_start: fl.l4 as u16,
                csum_offset: 16,
            };
            if merged.is_some() {
                write_run(&tap, self.w, &hdr, &self.run);
                if n > 1 {
                    bump(&xde.stats().rx_coalesced_supers);
                    add(&xde.stats().rx_coalesced_frames, n);
                }
            }
        }
        for (pkt, _) in self.run.drain(..) {
            pool.give(pkt);
        }
    }
}

/// Write one frame to `tap` behind `hdr`.
fn write_frame(tap: &Tap, w: usize, hdr: &VnetHdr, pkt: &Packet) {
    let q = tap.queue(w).unwrap_or(tap.file());
    let bytes = hdr.bytes();
    let h = bytes.get(..tap.hdr_len()).unwrap_or(&[]);
    let res = with_iov(h, pkt, |iov| { q }.write_vectored(iov).map(|_| ()));
    if let Err(e) = res {
        // A TAP whose guest side is down refuses writes: the frame is lost, as on a wire.
        tracing::debug!(port = tap.name(), error = %e, "writing the TAP failed");
    }
}

/// Write a run of segments to `tap` as one frame behind `hdr`: the first's headers and
/// payload, then each other's payload, gathered (nothing is copied here).
fn write_run(tap: &Tap, w: usize, hdr: &VnetHdr, run: &[(Packet, Layout)]) {
    let q = tap.queue(w).unwrap_or(tap.file());
    let bytes = hdr.bytes();
    let mut iov = [IoSlice::new(&[]); RUN_MAX + 1];
    let mut n = 0;
    let pieces = std::iter::once(bytes.get(..tap.hdr_len()).unwrap_or(&[])).chain(
        run.iter().enumerate().map(|(i, (p, l))| {
            let from = if i == 0 { 0 } else { l.payload };
            p.segment(0)
                .and_then(|s| s.data().get(from..l.end))
                .unwrap_or(&[])
        }),
    );
    for (slot, piece) in iov.iter_mut().zip(pieces) {
        *slot = IoSlice::new(piece);
        n += 1;
    }
    if let Err(e) = { q }.write_vectored(iov.get(..n).unwrap_or(&[])) {
        tracing::debug!(port = tap.name(), error = %e, "writing the TAP failed");
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
