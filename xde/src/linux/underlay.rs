//! The underlay links: an AF_PACKET socket on each, bound to the link, that receives only
//! Geneve (a classic BPF filter passes IPv6 / UDP to port 6081 and nothing else) and sends
//! the complete frames the core builds. A UDP socket bound to port 6081 keeps the kernel
//! from answering the same traffic with ICMPv6 port-unreachable; it is never read.
// AF_PACKET addresses and socket filters are raw `sockaddr_ll` and `sock_fprog`.
#![allow(unsafe_code)]

// A no_std crate: the daemon brings std's prelude in itself.
use std::format;
use std::prelude::rust_2024::*;

use super::ring::RxRing;
use nix::libc;
use opte::packet::Packet;
use opte_api::MacAddr;
use std::io;
use std::mem::size_of;
use std::net::{Ipv6Addr, SocketAddrV6, UdpSocket};
use std::ops::Range;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Receive buffer of each link's socket, in bytes.
const RCVBUF: i32 = 8 << 20;

/// The Geneve port (RFC 8926).
pub const GENEVE_PORT: u16 = 6081;

/// The classic-BPF load of a frame's packet type (`skb->pkt_type`), from the
/// ancillary data area (linux/filter.h: `SKF_AD_OFF + SKF_AD_PKTTYPE`).
const SKF_AD_PKTTYPE: u32 = (-0x1000i32) as u32 + 4;

/// Ethernet (14) + IPv6 next header at 6, UDP destination port at 14 + 40 + 2. A frame
/// the kernel found addressed to another host's MAC (`PACKET_OTHERHOST`: flooded by a
/// switch that has not learnt where the MAC is, or sent to a MAC this link no longer has)
/// is not this host's to take, as the kernel's own IP input does not take it either.
const BPF_PROGRAM: [libc::sock_filter; 10] = [
    // A <- packet type; another host's or drop.
    stmt(BPF_LD | BPF_B | BPF_ABS, SKF_AD_PKTTYPE),
    jump(
        BPF_JMP | BPF_JEQ | BPF_K,
        libc::PACKET_OTHERHOST as u32,
        7,
        0,
    ),
    // A <- ether type; IPv6 or drop.
    stmt(BPF_LD | BPF_H | BPF_ABS, 12),
    jump(BPF_JMP | BPF_JEQ | BPF_K, 0x86dd, 0, 5),
    // A <- IPv6 next header; UDP or drop.
    stmt(BPF_LD | BPF_B | BPF_ABS, 14 + 6),
    jump(BPF_JMP | BPF_JEQ | BPF_K, 17, 0, 3),
    // A <- UDP destination port; Geneve or drop.
    stmt(BPF_LD | BPF_H | BPF_ABS, 14 + 40 + 2),
    jump(BPF_JMP | BPF_JEQ | BPF_K, GENEVE_PORT as u32, 0, 1),
    // Accept the whole frame.
    stmt(BPF_RET | BPF_K, 0x0004_0000),
    stmt(BPF_RET | BPF_K, 0),
];

/// Which worker's socket a frame arriving on a link goes to (`PACKET_FANOUT_CBPF`): the
/// owner of the port it is for, [`crate::port::VniMac::owner`] of its Geneve VNI and inner
/// destination MAC, so that each port's flow state is only touched by one worker. The
/// kernel runs it with the frame's data starting at the IPv6 header, and takes what it
/// returns modulo the number of sockets; a frame that is not Geneve (or too short) goes to
/// the first.
const FANOUT_PROGRAM: [libc::sock_filter; 18] = [
    // IPv6 next header: UDP or the first socket.
    stmt(BPF_LD | BPF_B | BPF_ABS, 6),
    jump(BPF_JMP | BPF_JEQ | BPF_K, 17, 0, 15),
    // UDP destination port: Geneve or the first socket.
    stmt(BPF_LD | BPF_H | BPF_ABS, 40 + 2),
    jump(BPF_JMP | BPF_JEQ | BPF_K, GENEVE_PORT as u32, 0, 13),
    // X <- the Geneve options' length (bytes), so X + 56 is the inner Ethernet header.
    stmt(BPF_LD | BPF_B | BPF_ABS, 48),
    stmt(BPF_ALU | BPF_AND | BPF_K, 0x3f),
    stmt(BPF_ALU | BPF_LSH | BPF_K, 2),
    stmt(BPF_MISC | BPF_TAX, 0),
    // M[0] <- the VNI.
    stmt(BPF_LD | BPF_W | BPF_ABS, 48 + 4),
    stmt(BPF_ALU | BPF_RSH | BPF_K, 8),
    stmt(BPF_ST, 0),
    // A <- the inner destination MAC's last four bytes, xor the VNI; then the hash.
    stmt(BPF_LD | BPF_W | BPF_IND, 48 + 8 + 2),
    stmt(BPF_LDX | BPF_W | BPF_MEM, 0),
    stmt(BPF_ALU | BPF_XOR | BPF_X, 0),
    stmt(BPF_ALU | BPF_MUL | BPF_K, 0x9e37_79b1),
    stmt(BPF_ALU | BPF_RSH | BPF_K, 16),
    stmt(BPF_RET | BPF_A, 0),
    stmt(BPF_RET | BPF_K, 0),
];

// linux/bpf_common.h, linux/filter.h
const BPF_LD: u16 = 0x00;
const BPF_LDX: u16 = 0x01;
const BPF_ST: u16 = 0x02;
const BPF_ALU: u16 = 0x04;
const BPF_JMP: u16 = 0x05;
const BPF_RET: u16 = 0x06;
const BPF_MISC: u16 = 0x07;
const BPF_W: u16 = 0x00;
const BPF_H: u16 = 0x08;
const BPF_B: u16 = 0x10;
const BPF_ABS: u16 = 0x20;
const BPF_IND: u16 = 0x40;
const BPF_MEM: u16 = 0x60;
const BPF_MUL: u16 = 0x20;
const BPF_AND: u16 = 0x50;
const BPF_LSH: u16 = 0x60;
const BPF_RSH: u16 = 0x70;
const BPF_XOR: u16 = 0xa0;
const BPF_JEQ: u16 = 0x10;
const BPF_K: u16 = 0x00;
const BPF_X: u16 = 0x08;
const BPF_A: u16 = 0x10;
const BPF_TAX: u16 = 0x00;

/// How what arrives on a link is spread over the workers' sockets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Steer {
    /// One worker: one socket.
    One,
    /// To the worker that owns the destination port (a classic BPF fanout program).
    ByPort,
    /// By flow hash (`PACKET_FANOUT_HASH`): where the kernel refuses the program. Each
    /// flow still meets one worker, but a port's flows meet at its lock.
    ByFlow,
}

const fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

const fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// Where a segment cut from a super-frame is: its headers in the cutter's scratch buffer,
/// its payload in the super-frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cut {
    pub hdr: Range<usize>,
    pub body: Range<usize>,
}

/// A virtio-net header that asks for nothing.
const VNET_NONE: [u8; VNET_LEN] = [0; VNET_LEN];

/// The virtio-net header in front of each frame on a link opened with
/// [`UnderlayLink::open_vnet`] (`struct virtio_net_hdr`).
pub const VNET_LEN: usize = 10;

/// One frame to send.
#[derive(Clone, Copy, Debug)]
pub enum Frame<'a> {
    /// A packet's segments.
    Packet(&'a Packet),
    /// A segment cut from a super-frame: its headers and a slice of the super-frame.
    Pieces(&'a [u8], &'a [u8]),
    /// A UDP datagram of Geneve chunks for the kernel to segment: `head` (virtio-net
    /// header and outer headers), then for each cut its headers from `skip` on (the
    /// Geneve and inner headers) and its payload.
    Dgram {
        head: &'a [u8],
        scratch: &'a [u8],
        data: &'a [u8],
        cuts: &'a [Cut],
        skip: usize,
    },
}

impl<'a> Frame<'a> {
    /// The pieces it is gathered from, with a virtio-net header in front if `vnet`.
    fn pieces(&self, vnet: bool) -> usize {
        let hdr = usize::from(vnet);
        match self {
            Self::Packet(p) => hdr + p.seg_count(),
            Self::Pieces(..) => hdr + 2,
            Self::Dgram { cuts, .. } => 1 + 2 * cuts.len(),
        }
    }

    /// Point the front of `iov` at the frame's pieces; how many.
    fn fill(&self, vnet: bool, iov: &mut [std::io::IoSlice<'a>]) -> usize {
        let mut n = 0;
        let mut put = |b: &'a [u8]| {
            if let Some(slot) = iov.get_mut(n) {
                *slot = std::io::IoSlice::new(b);
                n += 1;
            }
        };
        if vnet && !matches!(self, Self::Dgram { .. }) {
            put(&VNET_NONE);
        }
        match *self {
            Self::Packet(p) => p.segments().for_each(|s| put(s.data())),
            Self::Pieces(h, b) => {
                put(h);
                put(b);
            }
            Self::Dgram {
                head,
                scratch,
                data,
                cuts,
                skip,
            } => {
                put(head);
                for c in cuts {
                    put(scratch.get(c.hdr.start + skip..c.hdr.end).unwrap_or(&[]));
                    put(data.get(c.body.clone()).unwrap_or(&[]));
                }
            }
        }
        n
    }
}

/// One underlay link, open for Geneve.
#[derive(Debug)]
pub struct UnderlayLink {
    name: String,
    ifindex: u32,
    mac: MacAddr,
    mtu: usize,
    /// Frames sent and received have a virtio-net header in front.
    vnet: bool,
    steer: Steer,
    sock: OwnedFd,
    /// Each worker's receive ring on its socket, where the kernel made one.
    rings: Vec<Option<RxRing>>,
    /// Further sockets on the link, one per datapath worker beyond the first, all in one
    /// fanout group with the first: the kernel hands what arrives to the socket of the
    /// worker that owns the destination port (see [`Steer`]).
    more: Vec<OwnedFd>,
    /// Frames the kernel dropped because a socket of ours was full, as read so far (the
    /// kernel resets its count at each read).
    kernel_drops: std::sync::atomic::AtomicU64,
}

impl UnderlayLink {
    /// Open link `name`: its AF_PACKET socket, filtered to Geneve, frames this host sends
    /// not looped back to it.
    pub fn open(name: &str) -> io::Result<Self> {
        Self::open_with(name, false, 1, false)
    }

    /// [`UnderlayLink::open`], with a virtio-net header in front of every frame sent and
    /// received (`PACKET_VNET_HDR`): so the kernel segments a UDP datagram of Geneve
    /// chunks ([`Frame::Dgram`]) and finishes its checksums where it meets a real wire,
    /// and one that arrives whole says so.
    /// With `workers` sockets (a fanout group, see [`Steer`], when more than one), each
    /// with a receive ring ([`RxRing`]) if `rings` and the kernel makes one.
    pub fn open_vnet(name: &str, workers: usize, rings: bool) -> io::Result<Self> {
        Self::open_with(name, true, workers.max(1), rings)
    }

    fn open_with(name: &str, vnet: bool, workers: usize, rings: bool) -> io::Result<Self> {
        let ifindex = nix::net::if_::if_nametoindex(name)
            .map_err(|e| io::Error::new(io::Error::from(e).kind(), format!("link {name}: {e}")))?;
        let mac = link_mac(name)?;
        let mtu = link_mtu(name)?;
        // The filter goes on before the bind, so no unfiltered frame is ever queued.
        let prog = libc::sock_fprog {
            len: BPF_PROGRAM.len() as u16,
            filter: BPF_PROGRAM.as_ptr().cast_mut(),
        };
        // With a ring where asked for and the kernel makes one; once it refuses one, the
        // link's further sockets are read with recvmmsg too.
        let want_ring = std::cell::Cell::new(rings);
        let open = || {
            let sock = unbound_packet_socket(Some(&prog))?;
            if vnet {
                let one: libc::c_int = 1;
                setsockopt(&sock, libc::SOL_PACKET, libc::PACKET_VNET_HDR, &one)?;
            }
            let ring = match want_ring
                .get()
                .then(|| RxRing::attach(&sock, vnet, workers))
            {
                Some(Ok(r)) => Some(r),
                Some(Err(e)) => {
                    tracing::warn!(link = name, error = %e,
                        "no receive ring on the link; reading it with recvmmsg");
                    want_ring.set(false);
                    None
                }
                None => None,
            };
            bind_packet_socket(&sock, ifindex)?;
            Ok::<_, io::Error>((sock, ring))
        };
        let (mut sock, first_ring) = open()?;
        let mut rings = vec![first_ring];
        let mut more = Vec::new();
        let mut steer = Steer::One;
        if workers > 1 {
            // A group of this daemon's own on this link: its id from the process and link.
            // Sockets join in worker order, which is the index the program's result picks.
            let id = (std::process::id() ^ ifindex.rotate_left(7)) & 0xffff;
            let fanout = |kind: u32| (id | (kind << 16)) as libc::c_int;
            let by_port = libc::sock_fprog {
                len: FANOUT_PROGRAM.len() as u16,
                filter: FANOUT_PROGRAM.as_ptr().cast_mut(),
            };
            let arg = match setsockopt(
                &sock,
                libc::SOL_PACKET,
                libc::PACKET_FANOUT,
                &fanout(libc::PACKET_FANOUT_CBPF),
            )
            .and_then(|()| setsockopt(&sock, libc::SOL_PACKET, libc::PACKET_FANOUT_DATA, &by_port))
            {
                Ok(()) => {
                    steer = Steer::ByPort;
                    fanout(libc::PACKET_FANOUT_CBPF)
                }
                Err(e) => {
                    tracing::warn!(link = name, error = %e,
                        "the kernel refused to steer by port; spreading flows by hash");
                    // Leaving a group takes closing the socket.
                    let ring;
                    (sock, ring) = open()?;
                    rings = vec![ring];
                    steer = Steer::ByFlow;
                    let arg = fanout(libc::PACKET_FANOUT_HASH);
                    setsockopt(&sock, libc::SOL_PACKET, libc::PACKET_FANOUT, &arg)?;
                    arg
                }
            };
            for _ in 1..workers {
                let (s, ring) = open()?;
                setsockopt(&s, libc::SOL_PACKET, libc::PACKET_FANOUT, &arg)?;
                more.push(s);
                rings.push(ring);
            }
        }
        Ok(Self {
            name: name.to_string(),
            ifindex,
            mac,
            mtu,
            vnet,
            steer,
            sock,
            more,
            rings,
            kernel_drops: std::sync::atomic::AtomicU64::new(0),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The link's own MAC: the source of every frame sent on it.
    pub fn mac(&self) -> MacAddr {
        self.mac
    }

    /// The link's MTU when it was opened: the largest IPv6 packet a segment may make.
    pub fn mtu(&self) -> usize {
        self.mtu
    }

    /// Worker `w`'s receive ring, if its socket has one.
    pub fn ring_of(&self, w: usize) -> Option<&RxRing> {
        self.rings.get(w).and_then(Option::as_ref)
    }

    /// How arriving frames are spread over the workers.
    pub fn steer(&self) -> Steer {
        self.steer
    }

    /// The bytes of virtio-net header in front of each frame sent and received.
    pub fn hdr_len(&self) -> usize {
        if self.vnet { VNET_LEN } else { 0 }
    }

    /// Frames the kernel dropped, since the link was opened, because one of its sockets
    /// (or receive rings) was full: the datapath did not keep up.
    pub fn kernel_drops(&self) -> u64 {
        use std::sync::atomic::Ordering;
        let mut new = 0u64;
        for fd in std::iter::once(&self.sock).chain(&self.more) {
            // The V3 statistics are the V1 ones and one more field; either layout's
            // first two are (packets, drops).
            let mut st = [0u32; 3];
            let mut len = std::mem::size_of_val(&st) as libc::socklen_t;
            // SAFETY: getsockopt(2) on our socket into a buffer of `len` bytes.
            let r = unsafe {
                libc::getsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_PACKET,
                    libc::PACKET_STATISTICS,
                    st.as_mut_ptr().cast(),
                    &mut len,
                )
            };
            if r == 0 {
                new += u64::from(st[1]);
            }
        }
        self.kernel_drops.fetch_add(new, Ordering::Relaxed) + new
    }

    pub fn socket(&self) -> &OwnedFd {
        &self.sock
    }

    /// Worker `w`'s socket on the link (the first for a worker beyond the count).
    pub fn socket_of(&self, w: usize) -> &OwnedFd {
        match w {
            0 => &self.sock,
            _ => self.more.get(w - 1).unwrap_or(&self.sock),
        }
    }

    /// Send one complete frame, its pieces gathered.
    pub fn send(&self, iov: &[std::io::IoSlice<'_>]) -> io::Result<()> {
        nix::sys::uio::writev(&self.sock, iov)
            .map(|_| ())
            .map_err(io::Error::from)
    }

    /// Send `frames`, as many per sendmmsg as fit (64 frames, 1,024 pieces, gathered on
    /// the stack: nothing is allocated). Returns how many were sent, and how many there
    /// were; the rest were refused by the kernel (a full queue, a link gone down) and are
    /// lost, as on a wire.
    pub fn send_frames<'a>(
        &self,
        w: usize,
        frames: impl Iterator<Item = Frame<'a>>,
    ) -> (usize, usize) {
        const FRAMES: usize = 64;
        const PIECES: usize = 1024;
        let mut iov = [std::io::IoSlice::new(&[]); PIECES];
        let mut counts = [0usize; FRAMES];
        let (mut sent, mut total, mut frames_in, mut used) = (0, 0, 0, 0);
        for f in frames {
            total += 1;
            let k = f.pieces(self.vnet);
            if k > PIECES {
                // More pieces than a batch holds (the engine makes nothing like it).
                continue;
            }
            if frames_in == FRAMES || used + k > PIECES {
                sent += self.send_batch(
                    w,
                    iov.get(..used).unwrap_or(&[]),
                    counts.get(..frames_in).unwrap_or(&[]),
                );
                (frames_in, used) = (0, 0);
            }
            let n = f.fill(self.vnet, iov.get_mut(used..).unwrap_or(&mut []));
            if let Some(c) = counts.get_mut(frames_in) {
                *c = n;
            }
            used += n;
            frames_in += 1;
        }
        if frames_in > 0 {
            sent += self.send_batch(
                w,
                iov.get(..used).unwrap_or(&[]),
                counts.get(..frames_in).unwrap_or(&[]),
            );
        }
        (sent, total)
    }

    /// Send frames at once (sendmmsg): frame `i` is the next `counts[i]` pieces of `iov`.
    /// Returns how many were sent.
    fn send_batch(&self, w: usize, iov: &[std::io::IoSlice<'_>], counts: &[usize]) -> usize {
        let sock = self.socket_of(w).as_raw_fd();
        const MAX: usize = 64;
        let (mut sent, mut at) = (0, 0);
        for chunk in counts.chunks(MAX) {
            // SAFETY: `mmsghdr` is plain old data; all zeroes is a valid value.
            let mut msgs: [libc::mmsghdr; MAX] = unsafe { std::mem::zeroed() };
            let mut n = 0;
            for (m, &k) in msgs.iter_mut().zip(chunk) {
                let Some(pieces) = iov.get(at..at + k) else {
                    break;
                };
                // `IoSlice` is ABI compatible with `iovec` on Unix; the kernel only reads.
                m.msg_hdr.msg_iov = pieces.as_ptr().cast_mut().cast();
                m.msg_hdr.msg_iovlen = k;
                at += k;
                n += 1;
            }
            let mut done = 0;
            while done < n {
                let Some(rest) = msgs.get_mut(done..n) else {
                    break;
                };
                // SAFETY: `rest` holds `rest.len()` headers whose iovecs point into `iov`,
                // borrowed for the whole call.
                let r = unsafe { libc::sendmmsg(sock, rest.as_mut_ptr(), rest.len() as u32, 0) };
                if r <= 0 {
                    // The first frame was refused: skip it, try the rest.
                    done += 1;
                } else {
                    done += r as usize;
                    sent += r as usize;
                }
            }
        }
        sent
    }

    /// Receive up to `bufs.len()` waiting frames at once (recvmmsg), frame `i` into
    /// `bufs[i][at..]`, its length into `lens[i]`; how many (0 when none is waiting).
    pub fn recv_batch(
        &self,
        w: usize,
        bufs: &mut [Vec<u8>],
        at: usize,
        lens: &mut [usize],
    ) -> io::Result<usize> {
        const MAX: usize = 64;
        // SAFETY: `iovec` and `mmsghdr` are plain old data; all zeroes is a valid value.
        let mut iov: [libc::iovec; MAX] = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut msgs: [libc::mmsghdr; MAX] = unsafe { std::mem::zeroed() };
        let mut n = 0;
        for ((v, m), b) in iov.iter_mut().zip(msgs.iter_mut()).zip(bufs.iter_mut()) {
            let Some(room) = b.get_mut(at..) else {
                break;
            };
            v.iov_base = room.as_mut_ptr().cast();
            v.iov_len = room.len();
            m.msg_hdr.msg_iov = std::ptr::from_mut(v);
            m.msg_hdr.msg_iovlen = 1;
            n += 1;
        }
        let n = n.min(lens.len());
        // SAFETY: `n` headers, each with one iovec into a buffer of `bufs`, all borrowed
        // mutably for the call.
        let r = unsafe {
            libc::recvmmsg(
                self.socket_of(w).as_raw_fd(),
                msgs.as_mut_ptr(),
                n as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock => Ok(0),
                _ => Err(e),
            };
        }
        let r = r as usize;
        for (len, m) in lens.iter_mut().zip(&msgs).take(r) {
            *len = m.msg_len as usize;
        }
        Ok(r)
    }

    /// Receive one frame into `buf`; `None` when nothing is waiting.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match nix::sys::socket::recv(
            self.sock.as_raw_fd(),
            buf,
            nix::sys::socket::MsgFlags::MSG_DONTWAIT,
        ) {
            Ok(n) => Ok(Some(n)),
            Err(nix::errno::Errno::EAGAIN) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// An AF_PACKET socket bound to interface `ifindex`, non-blocking, its frames filtered by
/// `filter`, the frames it sends not looped back to it, with a receive buffer of
/// [`RCVBUF`].
pub(super) fn packet_socket(
    ifindex: u32,
    filter: Option<&libc::sock_fprog>,
) -> io::Result<OwnedFd> {
    let sock = unbound_packet_socket(filter)?;
    bind_packet_socket(&sock, ifindex)?;
    Ok(sock)
}

/// [`packet_socket`] before its bind: it receives nothing until it is bound, so whatever
/// shapes its receive path (the filter, a ring) is in place before the first frame.
fn unbound_packet_socket(filter: Option<&libc::sock_fprog>) -> io::Result<OwnedFd> {
    // Protocol 0: the socket takes no frames until `bind_packet_socket` names them.
    // SAFETY: socket(2) with constant arguments; the fd is owned at once.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new socket nobody else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    if let Some(prog) = filter {
        setsockopt(&sock, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, prog)?;
    }
    let one: libc::c_int = 1;
    setsockopt(&sock, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, &one)?;
    // Room for a burst while the loop serves the other devices: the default holds fewer
    // than a hundred full frames. (Root may exceed rmem_max.)
    let rcvbuf: libc::c_int = RCVBUF;
    setsockopt(&sock, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &rcvbuf)
        .or_else(|_| setsockopt(&sock, libc::SOL_SOCKET, libc::SO_RCVBUF, &rcvbuf))?;
    Ok(sock)
}

/// Bind `sock` to every frame of interface `ifindex`.
fn bind_packet_socket(sock: &OwnedFd, ifindex: u32) -> io::Result<()> {
    // SAFETY: `sockaddr_ll` is plain old data; all zeroes is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: a valid socket and a `sockaddr_ll` of the length given.
    let r = unsafe {
        libc::bind(
            sock.as_raw_fd(),
            std::ptr::addr_of!(sll).cast(),
            size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A UDP socket on the Geneve port, on every address, that nothing reads: while it is
/// open the kernel does not answer Geneve it receives with port-unreachable. Several
/// daemons in one network namespace share the port.
pub fn hold_geneve_port() -> io::Result<UdpSocket> {
    let s = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet6,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::ReusePort, &true)?;
    nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::RcvBuf, &4096)?;
    // A datagram of Geneve chunks the kernel's stack sees too (it is addressed to this
    // host) is then dropped whole at the full socket, not first cut up to be dropped piece
    // by piece. A kernel without UDP GRO (before 5.0) refuses: harmless.
    let one: libc::c_int = 1;
    let _ = setsockopt(&s, libc::SOL_UDP, libc::UDP_GRO, &one);
    let addr = nix::sys::socket::SockaddrIn6::from(SocketAddrV6::new(
        Ipv6Addr::UNSPECIFIED,
        GENEVE_PORT,
        0,
        0,
    ));
    nix::sys::socket::bind(s.as_raw_fd(), &addr)?;
    Ok(UdpSocket::from(s))
}

pub(super) fn setsockopt<T>(sock: &OwnedFd, level: i32, name: i32, v: &T) -> io::Result<()> {
    // SAFETY: `v` points to a `T` of the size given, alive across the call.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            name,
            std::ptr::from_ref(v).cast(),
            size_of::<T>() as u32,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The link's MTU, from sysfs.
fn link_mtu(name: &str) -> io::Result<usize> {
    let text = std::fs::read_to_string(format!("/sys/class/net/{name}/mtu"))?;
    text.trim().parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("link {name}: no MTU ({})", text.trim()),
        )
    })
}

/// The link's MAC, from sysfs.
fn link_mac(name: &str) -> io::Result<MacAddr> {
    let text = std::fs::read_to_string(format!("/sys/class/net/{name}/address"))?;
    text.trim().parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("link {name} has no Ethernet address ({})", text.trim()),
        )
    })
}
