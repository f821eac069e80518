//! A vhost-user port against front-ends that break the rules, as root: garbage and
//! oversized messages on its socket, a transmit descriptor pointing outside the memory the
//! front-end shared, a frame too short to be one. The daemon lives through all of it, the
//! offending queue is stopped and said so, the next front-end is served, and the port goes
//! cleanly even when its socket file was removed under it. (The well-behaved front-end is
//! QEMU itself, in `linux_vm.rs`.)

#![cfg(target_os = "linux")]

use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};
use vhost::vhost_user::Frontend;
use vhost::{VhostBackend, VhostUserMemoryRegionInfo, VringConfigData};
use vmm_sys_util::eventfd::EventFd;
use xde_lab::vpc::GuestSpec;
use xde_lab::{Daemon, Veth, root_or_skip, unique};

const MEM: usize = 1 << 20;
const QSIZE: u16 = 16;
/// Where each queue's rings are in the shared memory (guest physical = offset).
fn rings(q: usize) -> (u64, u64, u64) {
    let base = 0x1000 + q as u64 * 0x3000;
    (base, base + 0x1000, base + 0x2000)
}
const DATA: u64 = 0x10000;

/// A front-end with its memory: one 1 MiB memfd region at guest address 0, both queues
/// set up, their rings empty.
struct Front {
    /// The connection (closed when this drops).
    _fe: Frontend,
    mem: *mut u8,
    kicks: [EventFd; 2],
    _calls: [EventFd; 2],
}

impl Front {
    fn connect(sock: &Path) -> Self {
        use nix::sys::mman::{MapFlags, ProtFlags, mmap};
        let fe = Frontend::connect(sock, 2).unwrap();
        fe.set_owner().unwrap();
        let offered = fe.get_features().unwrap();
        // Version 1 and mergeable receive buffers, no protocol features: the rings start
        // enabled.
        let want = (1u64 << 32) | (1 << 15);
        assert_eq!(offered & want, want, "offered {offered:#x}");
        fe.set_features(want).unwrap();
        let fd = nix::sys::memfd::memfd_create(c"vhost-test", nix::sys::memfd::MFdFlags::empty())
            .unwrap();
        nix::unistd::ftruncate(&fd, MEM as i64).unwrap();
        // SAFETY: a fresh shared mapping of a memfd this test owns, never unmapped while
        // the test runs (the process ends it).
        let mem = unsafe {
            mmap(
                None,
                std::num::NonZeroUsize::new(MEM).unwrap(),
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                &fd,
                0,
            )
        }
        .unwrap()
        .as_ptr()
        .cast::<u8>();
        let region = VhostUserMemoryRegionInfo {
            guest_phys_addr: 0,
            memory_size: MEM as u64,
            userspace_addr: mem as u64,
            mmap_offset: 0,
            mmap_handle: fd.as_raw_fd(),
        };
        fe.set_mem_table(&[region]).unwrap();
        let kicks = [EventFd::new(0).unwrap(), EventFd::new(0).unwrap()];
        let calls = [EventFd::new(0).unwrap(), EventFd::new(0).unwrap()];
        for q in 0..2 {
            let (desc, avail, used) = rings(q);
            fe.set_vring_num(q, QSIZE).unwrap();
            fe.set_vring_addr(
                q,
                &VringConfigData {
                    queue_max_size: QSIZE,
                    queue_size: QSIZE,
                    flags: 0,
                    // Ring addresses are the front-end's own virtual addresses.
                    desc_table_addr: mem as u64 + desc,
                    used_ring_addr: mem as u64 + used,
                    avail_ring_addr: mem as u64 + avail,
                    log_addr: None,
                },
            )
            .unwrap();
            fe.set_vring_base(q, 0).unwrap();
            fe.set_vring_call(q, &calls[q]).unwrap();
            fe.set_vring_kick(q, &kicks[q]).unwrap();
        }
        // The memfd stays mapped; the daemon has its own mapping of it.
        drop(fd);
        Self {
            _fe: fe,
            mem,
            kicks,
            _calls: calls,
        }
    }

    fn write(&self, at: u64, bytes: &[u8]) {
        assert!(at as usize + bytes.len() <= MEM);
        // SAFETY: inside the mapping (checked above); the daemon only reads these bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.mem.add(at as usize), bytes.len())
        }
    }

    fn read_u16(&self, at: u64) -> u16 {
        let mut b = [0u8; 2];
        // SAFETY: inside the mapping.
        unsafe { std::ptr::copy_nonoverlapping(self.mem.add(at as usize), b.as_mut_ptr(), 2) };
        u16::from_le_bytes(b)
    }

    /// Offer one transmit buffer at `addr` of `len` bytes (descriptor 0) and kick.
    fn transmit(&self, addr: u64, len: u32) {
        let (desc, avail, _) = rings(1);
        let mut d = Vec::new();
        d.extend_from_slice(&addr.to_le_bytes());
        d.extend_from_slice(&len.to_le_bytes());
        d.extend_from_slice(&0u16.to_le_bytes()); // flags: readable, no next
        d.extend_from_slice(&0u16.to_le_bytes());
        self.write(desc, &d);
        self.write(avail + 4, &0u16.to_le_bytes()); // ring[0] = descriptor 0
        self.write(avail + 2, &1u16.to_le_bytes()); // idx = 1
        self.kicks[1].write(1).unwrap();
    }

    /// The transmit queue's used index: how many buffers the device gave back.
    fn tx_used(&self) -> u16 {
        self.read_u16(rings(1).2 + 2)
    }
}

/// Wait until `f` holds (up to 5 s).
fn eventually(f: impl Fn() -> bool) -> bool {
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

fn vhost_port(d: &Daemon, name: &str, sock: &Path) {
    let cfg = GuestSpec::new(name, 100, 30, 5, 0)
        .cfg("fd00::1".parse().unwrap())
        .unwrap();
    d.hdl()
        .create_xde_attached(
            name,
            cfg,
            None,
            oxide_vpc::api::PortAttach::VhostUser(sock.to_str().unwrap().into()),
        )
        .unwrap();
}

#[test]
fn a_front_end_that_breaks_the_rules_stops_its_queue_and_the_daemon_lives() {
    if !root_or_skip() {
        return;
    }
    let under = Veth::new();
    let mut d = Daemon::start(Path::new(env!("CARGO_BIN_EXE_xded")), None).unwrap();
    d.hdl().set_xde_underlay(&under.0, &under.1).unwrap();
    let port = unique("vu");
    let sock = d.sock().with_file_name(format!("{port}.vhost"));
    vhost_port(&d, &port, &sock);

    // Garbage: a message claiming a 1 MiB payload, then noise. Each connection is dropped.
    for junk in [
        [
            1u32.to_le_bytes(),
            1u32.to_le_bytes(),
            (1u32 << 20).to_le_bytes(),
        ]
        .concat(),
        (0..200u32).map(|i| (i * 37) as u8).collect(),
    ] {
        let mut s = UnixStream::connect(&sock).unwrap();
        let _ = s.write_all(&junk);
        drop(s);
    }

    // A transmit descriptor pointing outside the shared memory: the queue is stopped
    // (the buffer never comes back), and said so once.
    let f = Front::connect(&sock);
    f.transmit(0x4000_0000, 64);
    assert!(
        eventually(|| d.log().contains("broke the queue's rules")),
        "{}",
        d.log()
    );
    assert!(d.log().contains("queue=1"), "{}", d.log());
    assert_eq!(f.tx_used(), 0);
    assert!(d.hdl().list_ports().is_ok(), "the daemon lives");
    assert_eq!(d.counter("vhost_queues_broken"), 1);
    drop(f);

    // The next front-end is served afresh: a frame too short to be one is dropped, its
    // buffer given back.
    let f = Front::connect(&sock);
    f.write(DATA, &[0u8; 8]);
    f.transmit(DATA, 8);
    assert!(eventually(|| f.tx_used() == 1), "{}", d.log());
    assert_eq!(d.log().matches("broke the queue's rules").count(), 1);
    assert_eq!(d.counter("vhost_tx_dropped"), 1);
    assert_eq!(d.counter("vhost_tx_frames"), 0);
    assert_eq!(d.counter("vhost_connections"), 4);
    drop(f);
    assert!(
        eventually(|| d.log().matches("the VMM's connection ended").count() >= 4),
        "{}",
        d.log()
    );

    // The socket file removed under the port: delete-xde still returns promptly, and the
    // daemon stops cleanly.
    std::fs::remove_file(&sock).unwrap();
    let t = Instant::now();
    d.hdl().delete_xde(&port).unwrap();
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    let port2 = unique("vu");
    let sock2 = d.sock().with_file_name(format!("{port2}.vhost"));
    vhost_port(&d, &port2, &sock2);
    let _f = Front::connect(&sock2);
    assert!(d.stop().success(), "{}", d.log());
    assert!(!sock2.exists(), "the daemon's exit removes the socket");
}
