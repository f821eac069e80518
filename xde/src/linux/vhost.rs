//! vhost-user ports: the daemon as the backend of a VM's virtio-net device, sharing the
//! guest's memory instead of going through a TAP (`create-xde NAME --vhost-user PATH`).
//!
//! The protocol, the guest memory table and the virtqueues are the rust-vmm crates'
//! (`vhost`, `vhost-user-backend`, `virtio-queue`, `vm-memory`). Each port has a server
//! thread listening on PATH; each connection of a VMM gets a fresh device (its features,
//! memory and queues negotiated anew), so a VMM that restarts simply connects again. A
//! vring thread moves frames between the virtqueues and the port's datapath end, one end
//! of a `SOCK_SEQPACKET` socket pair that the port's worker reads and writes exactly as
//! it does a TAP: each message one frame behind the 12-byte virtio-net header, whose
//! checksum and segmentation offloads the datapath handles as the TAP path's.
//!
//! Guest → network (TX queue): each descriptor chain is one frame behind its header; it is
//! copied out of guest memory into one message. Network → guest (RX queue): each message
//! is copied into as many of the guest's receive buffers as it needs (mergeable receive
//! buffers, `num_buffers` set), or waits (a bounded backlog) until the guest posts more.
//!
//! A frontend that breaks the rules gets what it deserves, and the daemon lives on: a
//! descriptor outside its memory, or a chain the queue library refuses, marks that queue
//! broken (logged once, no longer processed until the VMM reconnects); a frame too short
//! or too long is dropped and its buffer given back; messages that are not the protocol's
//! (garbage, oversized) end the connection. Counted in `dump-xde-stats` (`vhost_*`).
//!
//! Between the VMM and the device sits a small relay (`relay` below): QEMU enables rings
//! before it acknowledges the protocol features that make enabling them legal, which the
//! `vhost` crate refuses by ending the connection; the relay holds such a request until
//! the features are set. Everything else passes through as it came, descriptors included.

// A no_std crate: the daemon brings std's prelude in itself.
use nix::libc;
use std::prelude::rust_2024::*;
use std::{format, vec};

use super::tap::{
    VNET_F_DATA_VALID, VNET_GSO_ECN, VNET_GSO_NONE, VNET_GSO_TCPV4, VNET_GSO_TCPV6, VNET_HDR_LEN,
};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use vhost::vhost_user::Listener;
use vhost::vhost_user::message::{VhostUserProtocolFeatures, VhostUserVirtioFeatures};
use vhost_user_backend::{VhostUserBackend, VhostUserDaemon, VringRwLock, VringState, VringT};
use virtio_bindings::virtio_config::VIRTIO_F_VERSION_1;
use virtio_bindings::virtio_net::{
    VIRTIO_NET_F_CSUM, VIRTIO_NET_F_GUEST_CSUM, VIRTIO_NET_F_GUEST_ECN, VIRTIO_NET_F_GUEST_TSO4,
    VIRTIO_NET_F_GUEST_TSO6, VIRTIO_NET_F_HOST_ECN, VIRTIO_NET_F_HOST_TSO4, VIRTIO_NET_F_HOST_TSO6,
    VIRTIO_NET_F_MRG_RXBUF,
};
use virtio_bindings::virtio_ring::VIRTIO_RING_F_INDIRECT_DESC;
use virtio_queue::{QueueOwnedT, QueueT, Reader, Writer};
use vm_memory::{GuestAddressSpace, GuestMemoryAtomic, GuestMemoryMmap};
use vmm_sys_util::epoll::EventSet;
use vmm_sys_util::event::{
    EventConsumer, EventFlag, EventNotifier, new_event_consumer_and_notifier,
};

/// The receive queue (network → guest) and the transmit queue.
const RX: usize = 0;
const TX: usize = 1;
const QUEUES: usize = 2;
/// The epoll event of the port's datapath end (event ids up to `QUEUES` are the
/// library's: the queues and its exit event).
const DATAPATH_EVENT: u16 = QUEUES as u16 + 1;
const QUEUE_SIZE: usize = 1024;
/// The largest frame a guest may send or be given (a 64 KiB super-frame and its
/// Ethernet header), not counting the virtio-net header.
const MAX_FRAME: usize = 65_536 + 14 + 4;
/// The smallest frame: an Ethernet header.
const MIN_FRAME: usize = 14;
/// Frames waiting for the guest's receive buffers; more are dropped (and counted).
const BACKLOG: usize = 512;
/// The socket buffers of the pair between the datapath and the device.
const PAIR_BUFFER: usize = 4 << 20;

/// The features offered to the driver: version 1 (12-byte header), mergeable receive
/// buffers, checksum offload both ways, TSO both ways, indirect descriptors, and the
/// vhost-user protocol features.
fn offered_features() -> u64 {
    [
        VIRTIO_F_VERSION_1,
        VIRTIO_NET_F_CSUM,
        VIRTIO_NET_F_GUEST_CSUM,
        VIRTIO_NET_F_GUEST_TSO4,
        VIRTIO_NET_F_GUEST_TSO6,
        VIRTIO_NET_F_GUEST_ECN,
        VIRTIO_NET_F_HOST_TSO4,
        VIRTIO_NET_F_HOST_TSO6,
        VIRTIO_NET_F_HOST_ECN,
        VIRTIO_NET_F_MRG_RXBUF,
        VIRTIO_RING_F_INDIRECT_DESC,
    ]
    .iter()
    .fold(VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits(), |f, b| {
        f | 1 << b
    })
}

/// Counters of a vhost-user port, for the log and the tests.
#[derive(Debug, Default)]
pub struct Counters {
    /// Frames the guest sent, passed to the datapath.
    pub tx_frames: AtomicU64,
    /// Frames given to the guest.
    pub rx_frames: AtomicU64,
    /// Frames for the guest dropped: no receive buffers (backlog full), no queue ready, or
    /// an offload the guest did not accept.
    pub rx_dropped: AtomicU64,
    /// Frames from the guest dropped: too short or too long, or the datapath's end full.
    pub tx_dropped: AtomicU64,
    /// Queues marked broken for a frontend's invalid descriptors.
    pub broken: AtomicU64,
    /// Connections of a VMM served.
    pub connections: AtomicU64,
}

impl Counters {
    /// The counters of `all`, added up, named as `dump-xde-stats` shows them.
    pub fn sum<'a>(all: impl Iterator<Item = &'a Counters>) -> Vec<(String, u64)> {
        let mut t = [0u64; 6];
        for c in all {
            let v = [
                &c.tx_frames,
                &c.rx_frames,
                &c.rx_dropped,
                &c.tx_dropped,
                &c.broken,
                &c.connections,
            ];
            for (s, x) in t.iter_mut().zip(v) {
                *s += x.load(Ordering::Relaxed);
            }
        }
        [
            "vhost_tx_frames",
            "vhost_rx_frames",
            "vhost_rx_dropped",
            "vhost_tx_dropped",
            "vhost_queues_broken",
            "vhost_connections",
        ]
        .iter()
        .zip(t)
        .map(|(n, v)| (n.to_string(), v))
        .collect()
    }
}

/// The device of one connection: what the vring thread needs.
struct Device {
    port: String,
    /// The device's end of the pair with the datapath.
    end: Arc<File>,
    mem: GuestMemoryAtomic<GuestMemoryMmap>,
    acked: AtomicU64,
    /// Queues found broken, by index.
    broken: [AtomicBool; QUEUES],
    rx: Mutex<Rx>,
    /// Where a frame from the guest is gathered before it goes to the datapath.
    tx_buf: Mutex<Vec<u8>>,
    counters: Arc<Counters>,
}

/// The receive side's state, kept by the vring thread between events.
struct Rx {
    /// Frames waiting for the guest's receive buffers.
    backlog: VecDeque<Vec<u8>>,
    /// Where a frame from the datapath is read (one of the largest size).
    buf: Vec<u8>,
}

impl Rx {
    fn new() -> Self {
        Self {
            backlog: VecDeque::new(),
            buf: vec![0u8; VNET_HDR_LEN + MAX_FRAME],
        }
    }
}

/// Tell the driver of `state`'s queue about the buffers given back, if it asked to be.
fn notify(state: &mut VringState, mem: &GuestMemoryMmap) {
    if state
        .get_queue_mut()
        .needs_notification(mem)
        .unwrap_or(true)
    {
        let _ = state.signal_used_queue();
    }
}

#[derive(Clone)]
struct Backend(Arc<Device>);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Device {
    fn acked(&self, bit: u32) -> bool {
        self.acked.load(Ordering::Relaxed) & (1 << bit) != 0
    }

    /// Mark queue `q` broken for `why`: said once, never processed again on this connection.
    fn break_queue(&self, q: usize, why: &dyn std::fmt::Display) {
        if let Some(b) = self.broken.get(q)
            && !b.swap(true, Ordering::Relaxed)
        {
            self.counters.broken.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(port = %self.port, queue = q, error = %why,
                "vhost-user: the frontend broke the queue's rules; the queue is stopped until it reconnects");
        }
    }

    fn is_broken(&self, q: usize) -> bool {
        self.broken.get(q).is_none_or(|b| b.load(Ordering::Relaxed))
    }

    /// Everything the guest queued for sending, to the datapath.
    fn transmit(&self, vring: &VringRwLock) {
        if self.is_broken(TX) {
            return;
        }
        let mem = self.mem.memory();
        let mut frame = lock(&self.tx_buf);
        let mut used = false;
        let mut state = vring.get_mut();
        while let Some(chain) = state.get_queue_mut().pop_descriptor_chain(&*mem) {
            let head = chain.head_index();
            let mut r = match Reader::new(&*mem, chain) {
                Ok(r) => r,
                Err(e) => {
                    self.break_queue(TX, &e);
                    break;
                }
            };
            let len = r.available_bytes();
            frame.clear();
            let ok = (VNET_HDR_LEN + MIN_FRAME..=VNET_HDR_LEN + MAX_FRAME).contains(&len) && {
                frame.resize(len, 0);
                r.read_exact(&mut frame).is_ok()
            };
            if ok {
                // The datapath reads `num_buffers` as nothing: zero it.
                if let Some(nb) = frame.get_mut(10..12) {
                    nb.fill(0);
                }
                match self.to_datapath(&frame) {
                    Ok(n) if n == frame.len() => {
                        self.counters.tx_frames.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        self.counters.tx_dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            } else {
                self.counters.tx_dropped.fetch_add(1, Ordering::Relaxed);
            }
            if let Err(e) = state.get_queue_mut().add_used(&*mem, head, 0) {
                self.break_queue(TX, &e);
                break;
            }
            used = true;
        }
        if used {
            notify(&mut state, &mem);
        }
    }

    /// Pass a frame to the datapath. A sequenced-packet socket takes it whole or not at
    /// all; when the datapath is behind (its 4 MiB full), wait for room a little (10 ms),
    /// then drop the frame rather than hold the thread that also serves the guest's kicks.
    fn to_datapath(&self, frame: &[u8]) -> nix::Result<usize> {
        use nix::sys::socket::{MsgFlags, send};
        let fd = self.end.as_raw_fd();
        match send(fd, frame, MsgFlags::MSG_DONTWAIT) {
            Err(nix::errno::Errno::EAGAIN) => {
                use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
                use std::os::fd::AsFd;
                let mut fds = [PollFd::new(self.end.as_fd(), PollFlags::POLLOUT)];
                poll(&mut fds, PollTimeout::from(10u8))?;
                send(fd, frame, MsgFlags::MSG_DONTWAIT)
            }
            r => r,
        }
    }

    /// Whether the guest takes `frame` (header first): its segmentation type was offered
    /// and accepted.
    fn guest_takes(&self, frame: &[u8]) -> bool {
        let gso = frame.get(1).copied().unwrap_or(0) & !VNET_GSO_ECN;
        let csum = frame.first().copied().unwrap_or(0) & 1 != 0;
        (!csum || self.acked(VIRTIO_NET_F_GUEST_CSUM))
            && match gso {
                VNET_GSO_NONE => true,
                VNET_GSO_TCPV4 => self.acked(VIRTIO_NET_F_GUEST_TSO4),
                VNET_GSO_TCPV6 => self.acked(VIRTIO_NET_F_GUEST_TSO6),
                _ => false,
            }
    }

    /// Copy `frame` (header first) into the guest's receive buffers: as many as it needs
    /// with mergeable buffers, else one. False (nothing taken) if the guest has posted too
    /// few.
    fn receive_one(&self, state: &mut VringState, mem: &GuestMemoryMmap, frame: &[u8]) -> bool {
        let mergeable = self.acked(VIRTIO_NET_F_MRG_RXBUF);
        let mut chains: Vec<(u16, Writer<'_>)> = Vec::new();
        let mut room = 0usize;
        while room < frame.len() && (mergeable || chains.is_empty()) {
            let Some(chain) = state.get_queue_mut().pop_descriptor_chain(mem) else {
                break;
            };
            let head = chain.head_index();
            match Writer::new(mem, chain) {
                Ok(w) => {
                    room += w.available_bytes();
                    chains.push((head, w));
                }
                Err(e) => {
                    self.break_queue(RX, &e);
                    return false;
                }
            }
        }
        if room < frame.len() || (!mergeable && chains.len() != 1) {
            // Not enough posted: give the buffers back for the next try.
            for _ in 0..chains.len() {
                state.get_queue_mut().go_to_previous_position();
            }
            return false;
        }
        let n = chains.len();
        let mut rest = frame;
        let mut hdr = [0u8; VNET_HDR_LEN];
        if let Some(h) = frame.get(..VNET_HDR_LEN) {
            hdr.copy_from_slice(h);
        }
        hdr[10..12].copy_from_slice(&(n as u16).to_le_bytes());
        if !self.acked(VIRTIO_NET_F_GUEST_CSUM) {
            // "Checksum valid" is a hint the driver may only be given with GUEST_CSUM.
            hdr[0] &= !VNET_F_DATA_VALID;
        }
        for (i, (head, mut w)) in chains.into_iter().enumerate() {
            let mut written = 0usize;
            if i == 0 {
                if w.write_all(&hdr).is_err() {
                    self.break_queue(RX, &"a receive buffer shorter than the header");
                    return false;
                }
                written = VNET_HDR_LEN;
                rest = rest.get(VNET_HDR_LEN..).unwrap_or(&[]);
            }
            let take = w.available_bytes().min(rest.len());
            if w.write_all(rest.get(..take).unwrap_or(&[])).is_err() {
                self.break_queue(RX, &"a receive buffer that cannot be written");
                return false;
            }
            rest = rest.get(take..).unwrap_or(&[]);
            written += take;
            if let Err(e) = state.get_queue_mut().add_used(mem, head, written as u32) {
                self.break_queue(RX, &e);
                return false;
            }
        }
        true
    }

    /// Give the guest what waits in the backlog, then what the datapath sent, as far as
    /// its receive buffers go; the rest waits (up to [`BACKLOG`] frames).
    fn receive(&self, vring: &VringRwLock) {
        let mut rx = lock(&self.rx);
        let Rx { backlog, buf } = &mut *rx;
        let mem = self.mem.memory();
        let ready = !self.is_broken(RX) && vring.get_ref().get_queue().ready();
        let mut state = vring.get_mut();
        let mut delivered = false;
        // What waited first, in order.
        while ready && let Some(f) = backlog.front() {
            if !self.receive_one(&mut state, &mem, f) {
                break;
            }
            backlog.pop_front();
            delivered = true;
            self.counters.rx_frames.fetch_add(1, Ordering::Relaxed);
        }
        loop {
            // Never waiting: the vring thread has the guest's kicks to see to as well.
            let n = match nix::sys::socket::recv(
                self.end.as_raw_fd(),
                buf,
                nix::sys::socket::MsgFlags::MSG_DONTWAIT,
            ) {
                // The datapath's end closed: the port is going.
                Ok(0) => break,
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => break,
            };
            let Some(frame) = buf.get(..n).filter(|f| f.len() > VNET_HDR_LEN) else {
                continue;
            };
            if !ready || !self.guest_takes(frame) {
                self.counters.rx_dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if backlog.is_empty() && self.receive_one(&mut state, &mem, frame) {
                delivered = true;
                self.counters.rx_frames.fetch_add(1, Ordering::Relaxed);
            } else if backlog.len() < BACKLOG {
                backlog.push_back(frame.to_vec());
            } else {
                self.counters.rx_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        if delivered {
            notify(&mut state, &mem);
        }
    }
}

impl VhostUserBackend for Backend {
    type Bitmap = ();
    type Vring = VringRwLock;

    fn num_queues(&self) -> usize {
        QUEUES
    }

    fn max_queue_size(&self) -> usize {
        QUEUE_SIZE
    }

    fn features(&self) -> u64 {
        offered_features()
    }

    fn acked_features(&self, features: u64) {
        self.0.acked.store(features, Ordering::Relaxed);
    }

    fn protocol_features(&self) -> VhostUserProtocolFeatures {
        VhostUserProtocolFeatures::REPLY_ACK
    }

    fn set_event_idx(&self, _enabled: bool) {}

    fn update_memory(&self, _mem: GuestMemoryAtomic<GuestMemoryMmap>) -> io::Result<()> {
        // The device reads memory through the same atomic handle the library updates.
        Ok(())
    }

    fn exit_event(&self, _thread_index: usize) -> Option<(EventConsumer, EventNotifier)> {
        new_event_consumer_and_notifier(EventFlag::NONBLOCK).ok()
    }

    fn handle_event(
        &self,
        device_event: u16,
        _evset: EventSet,
        vrings: &[VringRwLock],
        _thread_id: usize,
    ) -> io::Result<()> {
        match usize::from(device_event) {
            TX => {
                if let Some(v) = vrings.get(TX) {
                    self.0.transmit(v);
                }
            }
            // The guest posted receive buffers, or the datapath sent frames.
            _ => {
                if let Some(v) = vrings.get(RX) {
                    self.0.receive(v);
                }
            }
        }
        Ok(())
    }
}

/// A port's vhost-user server: the listening socket at its path and the thread that serves
/// one VMM connection after another. Dropping it closes the connection, ends the thread
/// and removes the socket file.
pub struct Server {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    /// The VMM's connection, to close it from here.
    conn: Arc<Mutex<Option<UnixStream>>>,
    /// Written to stop the server thread waiting for a connection.
    wake: Arc<nix::sys::eventfd::EventFd>,
    thread: Option<JoinHandle<()>>,
    pub counters: Arc<Counters>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("path", &self.path)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

/// The datapath's end of a new vhost-user port, and its server listening at `path`.
pub fn port(name: &str, path: &Path) -> io::Result<(File, Server)> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
    )
    .map_err(io::Error::from)?;
    for fd in [&ours, &theirs] {
        let size = PAIR_BUFFER as libc::c_int;
        for opt in [libc::SO_SNDBUF, libc::SO_RCVBUF] {
            super::underlay::setsockopt(fd, libc::SOL_SOCKET, opt, &size)?;
        }
    }
    let server = Server::start(name, path, theirs)?;
    Ok((File::from(ours), server))
}

impl Server {
    fn start(name: &str, path: &Path, end: OwnedFd) -> io::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.is_dir()
        {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} is not a directory", dir.display()),
            ));
        }
        // A socket left at the path by an earlier server is replaced; anything else there
        // is not ours to remove.
        if let Ok(m) = std::fs::symlink_metadata(path) {
            use std::os::unix::fs::FileTypeExt;
            if !m.file_type().is_socket() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a socket", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        let public = UnixListener::bind(path).map_err(|e| {
            io::Error::new(e.kind(), format!("listening at {}: {e}", path.display()))
        })?;
        // The device's side of the relay: a listener in the abstract namespace (no file).
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let inner_name = format!(
            "xded-vhost-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let inner_addr = {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(&inner_name)?
        };
        let inner = UnixListener::bind_addr(&inner_addr)?;
        let wake = Arc::new(nix::sys::eventfd::EventFd::from_flags(
            nix::sys::eventfd::EfdFlags::EFD_CLOEXEC,
        )?);
        let stop = Arc::new(AtomicBool::new(false));
        let conn = Arc::new(Mutex::new(None));
        let counters = Arc::new(Counters::default());
        let end = Arc::new(File::from(end));
        let thread = {
            let ctx = Serve {
                port: name.to_string(),
                public,
                inner: Listener::from(inner),
                inner_addr,
                end,
                wake: wake.clone(),
                stop: stop.clone(),
                conn: conn.clone(),
                counters: counters.clone(),
            };
            std::thread::Builder::new()
                .name(format!("vhost-{name}"))
                .spawn(move || ctx.serve())?
        };
        Ok(Self {
            path: path.to_path_buf(),
            stop,
            conn,
            wake,
            thread: Some(thread),
            counters,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// What the server thread holds.
struct Serve {
    port: String,
    /// Where VMMs connect.
    public: UnixListener,
    /// Where the relay connects to the device.
    inner: Listener,
    inner_addr: std::os::unix::net::SocketAddr,
    end: Arc<File>,
    wake: Arc<nix::sys::eventfd::EventFd>,
    stop: Arc<AtomicBool>,
    /// The VMM's connection, to close it from [`Server`]'s drop.
    conn: Arc<Mutex<Option<UnixStream>>>,
    counters: Arc<Counters>,
}

impl Serve {
    /// Serve connections until stopped: each gets a fresh device.
    fn serve(mut self) {
        let port = self.port.clone();
        while !self.stop.load(Ordering::Acquire) {
            // A connection, or the word to stop (even if the socket file was removed).
            let ready = {
                use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
                use std::os::fd::AsFd;
                let mut fds = [
                    PollFd::new(self.public.as_fd(), PollFlags::POLLIN),
                    PollFd::new(self.wake.as_fd(), PollFlags::POLLIN),
                ];
                poll(&mut fds, PollTimeout::NONE)
                    .map(|_| fds[0].any().unwrap_or(false) && !fds[1].any().unwrap_or(false))
            };
            if !matches!(ready, Ok(true)) {
                continue;
            }
            let front = match self.public.accept() {
                Ok((s, _)) => s,
                Err(e) => {
                    if !self.stop.load(Ordering::Acquire) {
                        tracing::warn!(port, error = %e, "vhost-user: accepting a connection");
                        std::thread::sleep(std::time::Duration::from_millis(100));
                    }
                    continue;
                }
            };
            if self.stop.load(Ordering::Acquire) {
                break;
            }
            match front.try_clone() {
                Ok(c) => *lock(&self.conn) = Some(c),
                Err(e) => {
                    tracing::warn!(port, error = %e, "vhost-user: the VMM's connection");
                    continue;
                }
            }
            self.counters.connections.fetch_add(1, Ordering::Relaxed);
            tracing::info!(port, "vhost-user: a VMM connected");
            let ended = self.connection(front);
            *lock(&self.conn) = None;
            tracing::info!(port, result = ?ended.err(), "vhost-user: the VMM's connection ended");
        }
    }

    /// One VMM connection: a fresh device behind the relay, until either side ends it.
    fn connection(&mut self, front: UnixStream) -> Result<(), String> {
        let mem = GuestMemoryAtomic::new(GuestMemoryMmap::new());
        let dev = Arc::new(Device {
            port: self.port.clone(),
            end: self.end.clone(),
            mem: mem.clone(),
            acked: AtomicU64::new(0),
            broken: [AtomicBool::new(false), AtomicBool::new(false)],
            rx: Mutex::new(Rx::new()),
            tx_buf: Mutex::new(Vec::with_capacity(VNET_HDR_LEN + MAX_FRAME)),
            counters: self.counters.clone(),
        });
        let mut daemon = VhostUserDaemon::new(format!("vhost-{}", self.port), Backend(dev), mem)
            .map_err(|e| format!("making the device: {e}"))?;
        // Frames from the datapath wake the vring thread.
        let registered = daemon.get_epoll_handlers().first().map(|h| {
            h.register_listener(
                self.end.as_raw_fd(),
                EventSet::IN,
                u64::from(DATAPATH_EVENT),
            )
        });
        if !matches!(registered, Some(Ok(()))) {
            return Err("cannot watch the datapath's end".into());
        }
        // The relay's connection waits in the listener's backlog for the device to take.
        let back = UnixStream::connect_addr(&self.inner_addr)
            .map_err(|e| format!("connecting the relay: {e}"))?;
        daemon
            .start(&mut self.inner)
            .map_err(|e| format!("starting the device: {e}"))?;
        let relay = relay(&self.port, front, back);
        let ended = daemon.wait();
        relay.join();
        ended.map_err(|e| e.to_string())
        // Dropping the daemon ends its vring thread.
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(c) = lock(&self.conn).take() {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
        // Wake the thread waiting for a connection.
        let _ = self.wake.write(1);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

// The relay between the VMM and the device.
//
// It passes every message through unchanged (with the file descriptors riding on it),
// but for two things front-ends such as QEMU do that the `vhost` crate refuses:
// `SET_VRING_ENABLE` sent as soon as the guest's driver negotiates features, before
// `SET_FEATURES` (the crate requires `VHOST_USER_F_PROTOCOL_FEATURES` acknowledged first
// and ends the connection), and `SET_FEATURES` without that bit although the front-end
// negotiated protocol features (QEMU before 8.0). An early `SET_VRING_ENABLE` is held (and
// acknowledged if the front-end asked for a reply) and passed on after `SET_FEATURES`;
// `SET_FEATURES` gets the bit when `SET_PROTOCOL_FEATURES` came first.

/// vhost-user message header: request, flags, payload size (little endian u32 each).
const HDR_LEN: usize = 12;
const REQ_SET_FEATURES: u32 = 2;
const REQ_SET_PROTOCOL_FEATURES: u32 = 16;
const REQ_SET_VRING_ENABLE: u32 = 18;
const FLAG_VERSION: u32 = 0x1;
const FLAG_REPLY: u32 = 0x4;
const FLAG_NEED_REPLY: u32 = 0x8;
/// The largest payload passed on (the protocol's messages are a few hundred bytes; a
/// memory table of the most regions QEMU sends is under 1 KiB).
const MAX_PAYLOAD: usize = 4096;
/// File descriptors that may ride on one message.
const MAX_FDS: usize = 32;

struct Relay {
    threads: [Option<JoinHandle<()>>; 2],
}

impl Relay {
    fn join(mut self) {
        for t in self.threads.iter_mut().filter_map(Option::take) {
            let _ = t.join();
        }
    }
}

/// Relay `front` (the VMM) and `back` (the device) both ways until either ends.
fn relay(port: &str, front: UnixStream, back: UnixStream) -> Relay {
    let spawn = |name: String, f: Box<dyn FnOnce() + Send>| {
        std::thread::Builder::new().name(name).spawn(f).ok()
    };
    let (f2, b2) = (front.try_clone().ok(), back.try_clone().ok());
    let front_w = Arc::new(Mutex::new(f2));
    let to_back = {
        let port = port.to_string();
        let front_w = front_w.clone();
        spawn(
            format!("vhost-{port}-f"),
            Box::new(move || {
                if let Err(e) = front_to_back(&front, &back, &front_w) {
                    tracing::debug!(port, error = %e, "vhost-user relay: front-end side ended");
                }
                let _ = front.shutdown(std::net::Shutdown::Both);
                let _ = back.shutdown(std::net::Shutdown::Both);
            }),
        )
    };
    let to_front = {
        let port = port.to_string();
        spawn(
            format!("vhost-{port}-b"),
            Box::new(move || {
                if let Some(back) = b2 {
                    let r = pass(&back, &front_w);
                    if let Some(f) = lock(&front_w).as_ref() {
                        let _ = f.shutdown(std::net::Shutdown::Both);
                    }
                    if let Err(e) = r {
                        tracing::debug!(port, error = %e, "vhost-user relay: device side ended");
                    }
                    let _ = back.shutdown(std::net::Shutdown::Both);
                }
            }),
        )
    };
    Relay {
        threads: [to_back, to_front],
    }
}

/// One message from `from`: its header and payload, and the descriptors that came with
/// it. None at the end of the stream.
fn recv_msg(from: &UnixStream) -> io::Result<Option<(Vec<u8>, Vec<OwnedFd>)>> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    use std::os::fd::FromRawFd;
    let mut hdr = [0u8; HDR_LEN];
    let mut got = 0;
    let mut fds = Vec::new();
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; MAX_FDS]);
    while got < HDR_LEN {
        let mut iov = [io::IoSliceMut::new(hdr.get_mut(got..).unwrap_or(&mut []))];
        let msg = recvmsg::<()>(
            from.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(io::Error::from)?;
        for c in msg.cmsgs().map_err(io::Error::from)? {
            if let ControlMessageOwned::ScmRights(r) = c {
                // SAFETY: descriptors the kernel just passed to us; nobody else owns them.
                fds.extend(r.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
            }
        }
        if msg.bytes == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        got += msg.bytes;
    }
    let size = u32::from_le_bytes([hdr[8], hdr[9], hdr[10], hdr[11]]) as usize;
    if size > MAX_PAYLOAD {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a message of {size} bytes"),
        ));
    }
    let mut msg = hdr.to_vec();
    msg.resize(HDR_LEN + size, 0);
    { from }.read_exact(msg.get_mut(HDR_LEN..).unwrap_or(&mut []))?;
    Ok(Some((msg, fds)))
}

/// Send `msg` on `to` with `fds` riding on it.
fn send_msg(to: &UnixStream, msg: &[u8], fds: &[OwnedFd]) -> io::Result<()> {
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    let raw: Vec<std::os::fd::RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
    let cmsg = [ControlMessage::ScmRights(&raw)];
    let cmsgs: &[ControlMessage<'_>] = if raw.is_empty() { &[] } else { &cmsg };
    let iov = [io::IoSlice::new(msg)];
    let sent = sendmsg::<()>(to.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None)
        .map_err(io::Error::from)?;
    if let Some(rest) = msg.get(sent..)
        && !rest.is_empty()
    {
        { to }.write_all(rest)?;
    }
    Ok(())
}

fn field(msg: &[u8], at: usize) -> u32 {
    msg.get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}

fn set_field(msg: &mut [u8], at: usize, v: u32) {
    if let Some(b) = msg.get_mut(at..at + 4) {
        b.copy_from_slice(&v.to_le_bytes());
    }
}

/// Front-end to device, fixing the two things above.
fn front_to_back(
    front: &UnixStream,
    back: &UnixStream,
    front_w: &Mutex<Option<UnixStream>>,
) -> io::Result<()> {
    let mut features_set = false;
    let mut protocol_negotiated = false;
    let mut held: Vec<Vec<u8>> = Vec::new();
    while let Some((mut msg, fds)) = recv_msg(front)? {
        let (req, flags) = (field(&msg, 0), field(&msg, 4));
        match req {
            REQ_SET_PROTOCOL_FEATURES => protocol_negotiated = true,
            REQ_SET_VRING_ENABLE if !features_set => {
                if flags & FLAG_NEED_REPLY != 0 {
                    // Acknowledged now, applied once the features are set.
                    let mut ack = Vec::with_capacity(HDR_LEN + 8);
                    ack.extend_from_slice(&req.to_le_bytes());
                    ack.extend_from_slice(&(FLAG_VERSION | FLAG_REPLY).to_le_bytes());
                    ack.extend_from_slice(&8u32.to_le_bytes());
                    ack.extend_from_slice(&0u64.to_le_bytes());
                    if let Some(f) = lock(front_w).as_ref() {
                        { f }.write_all(&ack)?;
                    }
                }
                set_field(&mut msg, 4, flags & !FLAG_NEED_REPLY);
                held.push(msg);
                continue;
            }
            REQ_SET_FEATURES => {
                let bit = VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits();
                if protocol_negotiated && let Some(v) = msg.get_mut(HDR_LEN..HDR_LEN + 8) {
                    let acked = u64::from_le_bytes(v.try_into().unwrap_or([0; 8])) | bit;
                    v.copy_from_slice(&acked.to_le_bytes());
                }
                send_msg(back, &msg, &fds)?;
                features_set = true;
                for h in held.drain(..) {
                    send_msg(back, &h, &[])?;
                }
                continue;
            }
            _ => {}
        }
        send_msg(back, &msg, &fds)?;
    }
    Ok(())
}

/// Device to front-end: replies, passed as they are (each whole, under the lock that the
/// relay's own early acknowledgements take too).
fn pass(back: &UnixStream, front: &Mutex<Option<UnixStream>>) -> io::Result<()> {
    while let Some((msg, fds)) = recv_msg(back)? {
        match lock(front).as_ref() {
            Some(f) => send_msg(f, &msg, &fds)?,
            None => return Err(io::Error::other("no front-end")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nonblocking(fd: i32) -> bool {
        nix::fcntl::fcntl(
            // SAFETY: a descriptor the caller keeps open across the call.
            unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
            nix::fcntl::FcntlArg::F_GETFL,
        )
        .is_ok_and(|f| f & libc::O_NONBLOCK != 0)
    }

    #[test]
    fn a_port_listens_at_its_path_until_dropped_and_its_end_never_blocks() {
        let dir = std::env::temp_dir().join(format!("xde-vhost-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.sock");
        // A stale socket is replaced; anything else at the path is refused.
        drop(UnixListener::bind(&path).unwrap());
        let (end, server) = port("p", &path).unwrap();
        assert!(
            nonblocking(end.as_raw_fd()),
            "the datapath's end would block a worker"
        );
        assert!(UnixStream::connect(&path).is_ok());
        assert_eq!(server.path(), path);
        drop(server);
        assert!(!path.exists(), "the socket goes with the server");
        std::fs::write(&path, b"not a socket").unwrap();
        let refused = port("p", &path).map(drop).unwrap_err();
        let missing = port("p", &dir.join("no/such/dir.sock"))
            .map(drop)
            .unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(refused.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn offered_features_are_what_the_device_handles() {
        let f = offered_features();
        for bit in [32, 15, 0, 1, 7, 8, 11, 12, 28, 30] {
            assert!(f & (1 << bit) != 0, "bit {bit}");
        }
        // Not offered: event index, UFO/USO, control queue, multiqueue.
        for bit in [29, 10, 14, 17, 22, 54, 55, 56] {
            assert!(f & (1 << bit) == 0, "bit {bit}");
        }
    }
}
