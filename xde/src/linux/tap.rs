//! A port's guest-side device: a TAP (`IFF_TAP | IFF_NO_PI | IFF_VNET_HDR`) whose frames
//! are the guest's. A VM attaches to it by name (QEMU `-netdev tap,ifname=NAME`); a
//! container by moving it into its network namespace, where it is the container's NIC,
//! which is why the TAP carries the guest's MAC. The daemon keeps the file descriptor
//! wherever the device goes; closing it removes the device.
//!
//! Every frame read or written starts with a `virtio_net_hdr` (12 bytes, the size set with
//! `TUNSETVNETHDRSZ`; 10 on a VMM's TAP, read through AF_PACKET with `PACKET_VNET_HDR`):
//! the kernel and the guest say there what checksum and segmentation work is pending
//! ([`VnetHdr`]). The daemon takes every offload the kernel offers (`TUNSETOFFLOAD`:
//! checksum, TSO4, TSO6 with ECN, and USO4/USO6 where the kernel has them), so a guest
//! hands over TCP and UDP super-frames of up to [`GSO_MAX_SIZE`] bytes with their
//! checksums left partial, and the datapath finishes and segments them.
// Opening and configuring the device are ioctl(2)s on raw `ifreq` structures.
#![allow(unsafe_code)]

// A no_std crate: the daemon brings std's prelude in itself.
use nix::libc;
use opte_api::MacAddr;
use std::format;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::prelude::rust_2024::*;
use std::sync::atomic::{AtomicBool, Ordering};

/// The size of the `virtio_net_hdr_v1` that prefixes every frame (`num_buffers` included).
pub const VNET_HDR_LEN: usize = 12;

/// Interface names are at most this long (`IFNAMSIZ` less the NUL).
pub const NAME_MAX: usize = 15;

/// The largest super-frame a guest's stack makes on its TAP (`gso_max_size`): an
/// encapsulation in front must still fit the 16-bit IPv6 payload length.
pub const GSO_MAX_SIZE: u32 = 65_536 - 256;

// linux/virtio_net.h
pub const VNET_F_NEEDS_CSUM: u8 = 1;
pub const VNET_F_DATA_VALID: u8 = 2;
pub const VNET_GSO_NONE: u8 = 0;
pub const VNET_GSO_TCPV4: u8 = 1;
pub const VNET_GSO_TCPV6: u8 = 4;
pub const VNET_GSO_UDP_L4: u8 = 5;
pub const VNET_GSO_ECN: u8 = 0x80;

/// A `virtio_net_hdr`: the checksum and segmentation work pending on a frame (fields in
/// little-endian order, as virtio 1.0 and the TAP on a little-endian host have them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VnetHdr {
    pub flags: u8,
    pub gso_type: u8,
    pub hdr_len: u16,
    pub gso_size: u16,
    pub csum_start: u16,
    pub csum_offset: u16,
}

impl VnetHdr {
    /// The header at the front of `b` (at least 10 bytes), or all zeroes if it is short.
    pub fn read(b: &[u8]) -> Self {
        let w = |i: usize| {
            b.get(i..i + 2)
                .and_then(|x| x.try_into().ok())
                .map_or(0, u16::from_le_bytes)
        };
        Self {
            flags: b.first().copied().unwrap_or(0),
            gso_type: b.get(1).copied().unwrap_or(0),
            hdr_len: w(2),
            gso_size: w(4),
            csum_start: w(6),
            csum_offset: w(8),
        }
    }

    /// The 12 bytes of the header (`num_buffers` zero); a device takes the first
    /// [`Tap::hdr_len`] of them.
    pub fn bytes(&self) -> [u8; VNET_HDR_LEN] {
        let mut b = [0u8; VNET_HDR_LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_le_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_le_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_le_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_le_bytes());
        b
    }
}

nix::ioctl_write_ptr_bad!(tun_set_iff, libc::TUNSETIFF, libc::ifreq);
nix::ioctl_write_ptr_bad!(tun_set_vnet_hdr_sz, libc::TUNSETVNETHDRSZ, libc::c_int);
nix::ioctl_write_int_bad!(tun_set_persist, libc::TUNSETPERSIST);
nix::ioctl_read_bad!(tun_get_iff, libc::TUNGETIFF, libc::ifreq);
nix::ioctl_none_bad!(tun_get_devnetns, libc::TUNGETDEVNETNS);
nix::ioctl_write_int_bad!(tun_set_offload, libc::TUNSETOFFLOAD);
nix::ioctl_write_ptr_bad!(siocsifmtu, libc::SIOCSIFMTU, libc::ifreq);
nix::ioctl_write_ptr_bad!(siocsifhwaddr, libc::SIOCSIFHWADDR, libc::ifreq);
nix::ioctl_read_bad!(siocgifflags, libc::SIOCGIFFLAGS, libc::ifreq);
nix::ioctl_write_ptr_bad!(siocsifflags, libc::SIOCSIFFLAGS, libc::ifreq);

/// An open TAP device.
#[derive(Debug)]
pub struct Tap {
    name: String,
    /// Where the guest's frames are read and written: the TAP's own descriptors, one per
    /// queue (a multi-queue TAP spreads the guest's flows over them by hash, one flow
    /// always on one queue), or for a VMM's TAP an AF_PACKET socket on the network device.
    file: File,
    /// The device's further queues, if it is a multi-queue TAP.
    more: Vec<File>,
    /// The bytes of virtio-net header in front of every frame on `file`.
    hdr_len: usize,
    /// A VMM's TAP is persistent: it is deleted (by this interface index) with the port.
    persistent: Option<u32>,
    /// A vhost-user port has no device: `file` is the datapath's end of a socket pair whose
    /// other end this server's device moves to and from the guest's virtqueues.
    vhost: Option<super::vhost::Server>,
    /// The device is gone while the port is not (its network namespace was deleted, say).
    gone: AtomicBool,
    /// A container's TAP made persistent ([`Tap::create_persistent`]): it outlives the
    /// daemon, and is made ephemeral again (so closing removes it) when the port goes.
    netdev_persistent: bool,
    /// Leave the device in place when this is dropped: the daemon stops to restart.
    keep_device: AtomicBool,
}

/// Where a container's TAP is now, wherever the guest's side took it: what a restarted
/// daemon needs to open it again ([`Tap::adopt`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// Its name there (a container's interface is often renamed, `eth0`).
    pub ifname: String,
    /// The network namespace it is in: the device and inode numbers of its nsfs file.
    pub netns: (u64, u64),
    /// Whether it was made with several queues (`IFF_MULTI_QUEUE`); it must be opened
    /// again the same way.
    pub multi_queue: bool,
}

impl Location {
    /// `IFNAME DEV INO MULTI` (the text form of the daemon's TAP list).
    pub fn to_line(&self) -> String {
        format!(
            "{} {} {} {}",
            self.ifname,
            self.netns.0,
            self.netns.1,
            u8::from(self.multi_queue)
        )
    }

    pub fn from_line(l: &str) -> Option<Self> {
        let mut w = l.split_ascii_whitespace();
        let ifname = w.next()?.to_string();
        let dev = w.next()?.parse().ok()?;
        let ino = w.next()?.parse().ok()?;
        let multi_queue = match w.next()? {
            "0" => false,
            "1" => true,
            _ => return None,
        };
        (w.next().is_none() && ifreq(&ifname).is_ok()).then_some(Self {
            ifname,
            netns: (dev, ino),
            multi_queue,
        })
    }
}

/// The device and inode numbers of a namespace file.
fn ns_id(f: &impl std::os::fd::AsFd) -> io::Result<(u64, u64)> {
    let st = nix::sys::stat::fstat(f).map_err(io::Error::from)?;
    Ok((st.st_dev, st.st_ino))
}

/// Open the network namespace whose nsfs file has `id`: this process's own, a named one
/// (`ip netns`), Docker's, or any process's.
fn find_netns(id: (u64, u64)) -> io::Result<File> {
    let mut candidates: Vec<std::path::PathBuf> = vec!["/proc/self/ns/net".into()];
    for dir in ["/run/netns", "/var/run/netns", "/run/docker/netns"] {
        if let Ok(rd) = std::fs::read_dir(dir) {
            candidates.extend(rd.flatten().map(|e| e.path()));
        }
    }
    if let Ok(rd) = std::fs::read_dir("/proc") {
        candidates.extend(
            rd.flatten()
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .bytes()
                        .all(|b| b.is_ascii_digit())
                })
                .map(|e| e.path().join("ns/net")),
        );
    }
    for c in candidates {
        if let Ok(f) = File::open(&c)
            && ns_id(&f).ok() == Some(id)
        {
            return Ok(f);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!("no network namespace {}:{} is left", id.0, id.1),
    ))
}

/// What kind of device to make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A TAP whose descriptor the daemon keeps (a container's NIC), with the guest's MAC.
    Netdev(MacAddr),
    /// A persistent TAP left for a VMM to open by name.
    Vmm,
    /// A TUN (bare IP packets).
    Tun,
}

impl Tap {
    /// Create TAP `name` with the guest's `mac` and `mtu`, and bring it up. Fails, leaving
    /// nothing behind, if the name is taken or invalid.
    pub fn create(name: &str, mac: MacAddr, mtu: u32) -> io::Result<Self> {
        Self::open(name, Kind::Netdev(mac), mtu, 1)
    }

    /// [`Tap::create`] with `queues` queues (`IFF_MULTI_QUEUE` when more than one): a
    /// datapath worker reads each.
    pub fn create_multi(name: &str, mac: MacAddr, mtu: u32, queues: usize) -> io::Result<Self> {
        Self::open(name, Kind::Netdev(mac), mtu, queues.max(1))
    }

    /// [`Tap::create_multi`], persistent: the device outlives the daemon (a restarted one
    /// opens it again with [`Tap::adopt`]); deleting the port removes it.
    pub fn create_persistent(
        name: &str,
        mac: MacAddr,
        mtu: u32,
        queues: usize,
    ) -> io::Result<Self> {
        let mut tap = Self::open(name, Kind::Netdev(mac), mtu, queues.max(1))?;
        // SAFETY: a tun fd and an integer argument.
        unsafe { tun_set_persist(tap.file.as_raw_fd(), 1) }
            .map_err(|e| named(e, "TUNSETPERSIST", name))?;
        tap.netdev_persistent = true;
        Ok(tap)
    }

    /// Open again the persistent TAP of port `name` where [`Tap::location`] last found
    /// it, possibly in another network namespace, with `queues` queues if it has several.
    /// The device is left as the guest's side has it (its name, addresses, MTU, MAC, up
    /// or down); only the daemon's own settings on its descriptors are made again.
    pub fn adopt(name: &str, at: &Location, queues: usize) -> io::Result<Self> {
        let ns = find_netns(at.netns)?;
        let mut flags = libc::IFF_TAP | libc::IFF_VNET_HDR | libc::IFF_NO_PI;
        let queues = if at.multi_queue {
            flags |= libc::IFF_MULTI_QUEUE;
            queues.max(1)
        } else {
            1
        };
        let ifname = at.ifname.clone();
        // The tun device is looked up in the namespace /dev/net/tun was opened in: open it
        // from a thread that has entered the device's namespace (and ends there).
        let files = std::thread::scope(|sc| {
            sc.spawn(|| -> io::Result<Vec<File>> {
                nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|e| named(e, "setns", &ifname))?;
                let mut ifr = ifreq(&ifname)?;
                ifr.ifr_ifru.ifru_flags = flags as i16;
                open_queues(&ifr, queues, &ifname)
            })
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the namespace thread panicked")))
        })?;
        let mut files = files.into_iter();
        let file = files
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no queue"))?;
        let tap = Self {
            name: name.to_string(),
            file,
            more: files.collect(),
            hdr_len: VNET_HDR_LEN,
            persistent: None,
            vhost: None,
            gone: AtomicBool::new(false),
            netdev_persistent: true,
            keep_device: AtomicBool::new(false),
        };
        let hdr_len = VNET_HDR_LEN as libc::c_int;
        for q in std::iter::once(&tap.file).chain(&tap.more) {
            // SAFETY: a tun fd and a pointer to an int that outlives the call.
            unsafe { tun_set_vnet_hdr_sz(q.as_raw_fd(), &hdr_len) }
                .map_err(|e| named(e, "TUNSETVNETHDRSZ", name))?;
            set_offloads(q, name)?;
        }
        // SAFETY: a tun fd and an integer argument (it is persistent already; a device
        // made by an older daemon becomes so).
        unsafe { tun_set_persist(tap.file.as_raw_fd(), 1) }
            .map_err(|e| named(e, "TUNSETPERSIST", name))?;
        Ok(tap)
    }

    /// Where a persistent container TAP is now (`None` for any other kind of port).
    pub fn location(&self) -> io::Result<Option<Location>> {
        if !self.netdev_persistent {
            return Ok(None);
        }
        // SAFETY: `ifreq` is plain old data; all zeroes is a valid value.
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        // SAFETY: a tun fd and an `ifreq` the kernel fills in.
        unsafe { tun_get_iff(self.file.as_raw_fd(), &mut ifr) }
            .map_err(|e| named(e, "TUNGETIFF", &self.name))?;
        let ifname: String = ifr
            .ifr_name
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8 as char)
            .collect();
        // SAFETY: `ifru_flags` is what TUNGETIFF fills in.
        let flags = i32::from(unsafe { ifr.ifr_ifru.ifru_flags });
        // SAFETY: a tun fd; the kernel answers with a new descriptor of the namespace.
        let ns = unsafe { tun_get_devnetns(self.file.as_raw_fd()) }
            .map_err(|e| named(e, "TUNGETDEVNETNS", &self.name))?;
        // SAFETY: the kernel just gave us this descriptor; we own it from here.
        let ns = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(ns) };
        Ok(Some(Location {
            ifname,
            netns: ns_id(&ns)?,
            multi_queue: flags & libc::IFF_MULTI_QUEUE != 0,
        }))
    }

    /// Leave the device in place when this is dropped (the daemon stops to restart).
    pub fn keep_device(&self) {
        self.keep_device.store(true, Ordering::Relaxed);
    }

    /// Create TAP `name` for a virtual machine monitor to open by name (QEMU `-netdev
    /// tap,ifname=NAME`): persistent, up, with `mtu`, IPv6 off on it (the host itself
    /// has nothing to say to the guest), and not held open, since a TAP takes one opener.
    /// The guest's frames are read and written on the network device with an AF_PACKET
    /// socket: what the VMM writes arrives there, what is sent there reaches the VMM.
    pub fn create_for_vmm(name: &str, mtu: u32) -> io::Result<Self> {
        Self::open(name, Kind::Vmm, mtu, 1)
    }

    /// A vhost-user port `name`: no network device; the daemon serves the vhost-user
    /// protocol at `path` for a VMM's virtio-net device ([`super::vhost`]). Frames pass
    /// behind the same 12-byte header as on a container's TAP.
    pub fn create_vhost_user(name: &str, path: &std::path::Path) -> io::Result<Self> {
        let (file, server) = super::vhost::port(name, path)?;
        Ok(Self {
            name: name.to_string(),
            file,
            more: Vec::new(),
            hdr_len: VNET_HDR_LEN,
            persistent: None,
            vhost: Some(server),
            gone: AtomicBool::new(false),
            netdev_persistent: false,
            keep_device: AtomicBool::new(false),
        })
    }

    /// The vhost-user server of a vhost-user port.
    pub fn vhost_user(&self) -> Option<&super::vhost::Server> {
        self.vhost.as_ref()
    }

    /// Create TUN `name` (`IFF_TUN | IFF_NO_PI`: bare IPv4 and IPv6 packets, no virtio-net
    /// header) with `mtu`, and bring it up: an IP link between a process and the kernel's
    /// routing, as boundary services uses toward its "internet".
    pub fn create_tun(name: &str, mtu: u32) -> io::Result<Self> {
        Self::open(name, Kind::Tun, mtu, 1)
    }

    fn open(name: &str, kind: Kind, mtu: u32, queues: usize) -> io::Result<Self> {
        let mut ifr = ifreq(name)?;
        let mut flags = match kind {
            Kind::Netdev(_) | Kind::Vmm => libc::IFF_TAP | libc::IFF_VNET_HDR,
            Kind::Tun => libc::IFF_TUN,
        };
        if queues > 1 {
            flags |= libc::IFF_MULTI_QUEUE;
        }
        ifr.ifr_ifru.ifru_flags = (flags | libc::IFF_NO_PI) as i16;
        // The first open makes the device, each further one attaches a queue to it.
        let files = open_queues(&ifr, queues, name)?;
        let mut files = files.into_iter();
        let file = files
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no queue"))?;
        let mut tap = Self {
            name: name.to_string(),
            file,
            more: files.collect(),
            hdr_len: 0,
            persistent: None,
            vhost: None,
            gone: AtomicBool::new(false),
            netdev_persistent: false,
            keep_device: AtomicBool::new(false),
        };
        match kind {
            Kind::Netdev(_) => {
                let hdr_len = VNET_HDR_LEN as libc::c_int;
                for q in std::iter::once(&tap.file).chain(&tap.more) {
                    // SAFETY: a tun fd and a pointer to an int that outlives the call.
                    unsafe { tun_set_vnet_hdr_sz(q.as_raw_fd(), &hdr_len) }
                        .map_err(|e| named(e, "TUNSETVNETHDRSZ", name))?;
                    set_offloads(q, name)?;
                }
                tap.hdr_len = VNET_HDR_LEN;
                let ifindex = nix::net::if_::if_nametoindex(name)
                    .map_err(|e| named(e, "if_nametoindex", name))?;
                super::nexthop::Rtnl::open()
                    .and_then(|r| r.set_gso_max_size(ifindex, GSO_MAX_SIZE))
                    .map_err(|e| {
                        io::Error::new(e.kind(), format!("gso_max_size on {name}: {e}"))
                    })?;
            }
            Kind::Vmm => {
                // SAFETY: a tun fd and an integer argument.
                unsafe { tun_set_persist(tap.file().as_raw_fd(), 1) }
                    .map_err(|e| named(e, "TUNSETPERSIST", name))?;
                // From here on the device outlives the descriptor: dropping `tap` deletes it.
                let ifindex = nix::net::if_::if_nametoindex(name)
                    .map_err(|e| named(e, "if_nametoindex", name))?;
                tap.persistent = Some(ifindex);
            }
            Kind::Tun => {}
        }
        let ctl = control_socket()?;
        ifr.ifr_ifru.ifru_mtu = i32::try_from(mtu).unwrap_or(i32::MAX);
        // SAFETY: a socket fd and an `ifreq` naming the device, alive across the call.
        unsafe { siocsifmtu(ctl.as_raw_fd(), &ifr) }.map_err(|e| named(e, "SIOCSIFMTU", name))?;
        if let Kind::Netdev(mac) = kind {
            // SAFETY: `sockaddr` is plain old data; all zeroes is a valid value.
            let mut sa: libc::sockaddr = unsafe { std::mem::zeroed() };
            sa.sa_family = libc::ARPHRD_ETHER;
            for (d, s) in sa.sa_data.iter_mut().zip(mac.bytes()) {
                *d = s as libc::c_char;
            }
            ifr.ifr_ifru.ifru_hwaddr = sa;
            // SAFETY: as above.
            unsafe { siocsifhwaddr(ctl.as_raw_fd(), &ifr) }
                .map_err(|e| named(e, "SIOCSIFHWADDR", name))?;
        }
        if kind == Kind::Vmm {
            std::fs::write(format!("/proc/sys/net/ipv6/conf/{name}/disable_ipv6"), "1")
                .map_err(|e| io::Error::new(e.kind(), format!("IPv6 off on {name}: {e}")))?;
        }
        // SAFETY: as above; the kernel fills in the flags.
        unsafe { siocgifflags(ctl.as_raw_fd(), &mut ifr) }
            .map_err(|e| named(e, "SIOCGIFFLAGS", name))?;
        // SAFETY: the union member SIOCGIFFLAGS just filled.
        let flags = unsafe { ifr.ifr_ifru.ifru_flags };
        ifr.ifr_ifru.ifru_flags = flags | libc::IFF_UP as i16;
        // SAFETY: as above.
        unsafe { siocsifflags(ctl.as_raw_fd(), &ifr) }
            .map_err(|e| named(e, "SIOCSIFFLAGS", name))?;
        if let Some(ifindex) = tap.persistent {
            tap.file = vmm_socket(ifindex, name)?;
            tap.hdr_len = VNET_HDR_LEN - 2;
        }
        Ok(tap)
    }

    /// [`Tap::create_for_vmm`], or if a previous daemon left the VMM's TAP `name` (a
    /// restart: the VMM may hold it open still), that device as it is.
    pub fn adopt_for_vmm(name: &str, mtu: u32) -> io::Result<Self> {
        let Ok(ifindex) = nix::net::if_::if_nametoindex(name) else {
            return Self::create_for_vmm(name, mtu);
        };
        Ok(Self {
            name: name.to_string(),
            file: vmm_socket(ifindex, name)?,
            more: Vec::new(),
            hdr_len: VNET_HDR_LEN - 2,
            persistent: Some(ifindex),
            vhost: None,
            gone: AtomicBool::new(false),
            netdev_persistent: false,
            keep_device: AtomicBool::new(false),
        })
    }

    /// The bytes of virtio-net header in front of each frame read or written.
    pub fn hdr_len(&self) -> usize {
        self.hdr_len
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the device has gone from under its descriptor.
    pub fn is_gone(&self) -> bool {
        self.gone.load(Ordering::Relaxed)
    }

    /// Mark the device gone; true the first time.
    pub fn set_gone(&self) -> bool {
        !self.gone.swap(true, Ordering::Relaxed)
    }

    /// The device's (first) file: frames are read from and written to it, each behind a
    /// [`Tap::hdr_len`]-byte virtio-net header.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Queue `i`'s file, if the device has that many.
    pub fn queue(&self, i: usize) -> Option<&File> {
        match i {
            0 => Some(&self.file),
            _ => self.more.get(i - 1),
        }
    }
}

/// `queues` descriptors of the tun device `ifr` names (made by the first if it is not
/// there), in the calling thread's network namespace.
fn open_queues(ifr: &libc::ifreq, queues: usize, name: &str) -> io::Result<Vec<File>> {
    (0..queues)
        .map(|_| {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_CLOEXEC | libc::O_NONBLOCK)
                .open("/dev/net/tun")?;
            // SAFETY: a valid tun fd and an `ifreq` that lives across the call.
            unsafe { tun_set_iff(file.as_raw_fd(), ifr) }
                .map_err(|e| named(e, "TUNSETIFF", name))?;
            Ok(file)
        })
        .collect()
}

/// An `ifreq` naming `name`, refused if the name is empty, too long or has a NUL or '/'.
fn ifreq(name: &str) -> io::Result<libc::ifreq> {
    if name.is_empty() || name.len() > NAME_MAX || name.bytes().any(|b| b == 0 || b == b'/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not an interface name (1 to {NAME_MAX} bytes, no '/')"),
        ));
    }
    // SAFETY: `ifreq` is plain old data; all zeroes is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in ifr.ifr_name.iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    Ok(ifr)
}

impl Drop for Tap {
    fn drop(&mut self) {
        // A TAP the daemon holds goes with its descriptor; a VMM's is deleted, even while
        // the VMM still has it open.
        if self.keep_device.load(Ordering::Relaxed) {
            return;
        }
        if self.netdev_persistent {
            // SAFETY: a tun fd and an integer argument. Closing the last descriptor of a
            // TAP that is not persistent removes it.
            if let Err(e) = unsafe { tun_set_persist(self.file.as_raw_fd(), 0) } {
                tracing::warn!(port = %self.name, error = %e, "making the TAP ephemeral");
            }
        }
        if let Some(ifindex) = self.persistent {
            let deleted = super::nexthop::Rtnl::open().and_then(|r| r.delete_link(ifindex));
            if let Err(e) = deleted {
                tracing::warn!(port = %self.name, error = %e, "deleting the VMM's TAP");
            }
        }
    }
}

/// Take every offload: checksum, TSO4, TSO6 (with ECN), and USO4/USO6 if the kernel has
/// them (6.2 and later; an older one refuses the flags).
fn set_offloads(file: &File, name: &str) -> io::Result<()> {
    let base = libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6 | libc::TUN_F_TSO_ECN;
    let uso = libc::TUN_F_USO4 | libc::TUN_F_USO6;
    // SAFETY: a tun fd and an integer argument.
    unsafe { tun_set_offload(file.as_raw_fd(), (base | uso) as libc::c_ulong as _) }
        .or_else(|_| unsafe { tun_set_offload(file.as_raw_fd(), base as libc::c_ulong as _) })
        .map(|_| ())
        .map_err(|e| named(e, "TUNSETOFFLOAD", name))
}

/// The daemon's side of a VMM's TAP (interface `ifindex`): the VMM is the TAP's one
/// opener, so the daemon sends and receives on the device with an AF_PACKET socket. The
/// VMM's offloaded frames arrive whole, described by a virtio-net header, and ours go out
/// the same way.
fn vmm_socket(ifindex: u32, name: &str) -> io::Result<File> {
    let sock = super::underlay::packet_socket(ifindex, None)?;
    let one: libc::c_int = 1;
    super::underlay::setsockopt(&sock, libc::SOL_PACKET, libc::PACKET_VNET_HDR, &one)
        .map_err(|e| io::Error::new(e.kind(), format!("PACKET_VNET_HDR on {name}: {e}")))?;
    Ok(File::from(sock))
}

/// A datagram socket to address interface ioctls to.
fn control_socket() -> io::Result<OwnedFd> {
    nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(io::Error::from)
}

fn named(e: nix::Error, what: &str, name: &str) -> io::Error {
    io::Error::new(io::Error::from(e).kind(), format!("{what} on {name}: {e}"))
}
