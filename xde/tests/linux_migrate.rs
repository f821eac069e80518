//! Live migration end to end, as root: a guest moved between sleds of the lab (three
//! `xded`s, boundary services, an internet host) while it sends to another guest and to
//! the internet host through SNAT. The lab pauses its port, carries the port's flow
//! state to a port of the same configuration on the new sled, swaps the guest's
//! interface for the new port's, and repoints V2P and the boundary's NAT. Both transfers
//! are byte-counted and hashed at the receiver; a reset or a lost byte fails them.

#![cfg(target_os = "linux")]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use xde_lab::vpc::{Bins, GuestSpec, INTERNET_IP, Lab};
use xde_lab::{in_netns, root_or_skip, unique};

fn bins() -> Bins {
    Bins {
        xded: PathBuf::from(env!("CARGO_BIN_EXE_xded")),
        boundary: PathBuf::from(env!("CARGO_BIN_EXE_xde-boundary")),
    }
}

/// FNV-1a over a stream, byte by byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
    fn add(&mut self, data: &[u8]) {
        for b in data {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// The bytes the sender sends: `len` of them, a pattern no two chunks share.
fn payload(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u64 * 2_654_435_761) >> 13) as u8)
        .collect()
}

/// A server in namespace `ns` on `addr`: one connection, read to its end; the byte count
/// and hash, or the error that ended it.
fn receiver(ns: &str, addr: SocketAddr) -> std::thread::JoinHandle<Result<(u64, Fnv), String>> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let h = in_netns(ns, move || {
        let l = TcpListener::bind(addr).map_err(|e| format!("bind {addr}: {e}"))?;
        ready_tx.send(()).map_err(|e| e.to_string())?;
        let (mut c, _) = l.accept().map_err(|e| format!("accept: {e}"))?;
        c.set_read_timeout(Some(Duration::from_secs(60)))
            .map_err(|e| e.to_string())?;
        let (mut n, mut h, mut buf) = (0u64, Fnv::new(), vec![0u8; 1 << 16]);
        loop {
            match c.read(&mut buf) {
                Ok(0) => return Ok((n, h)),
                Ok(k) => {
                    n += k as u64;
                    h.add(&buf[..k]);
                }
                Err(e) => return Err(format!("after {n} bytes: {e}")),
            }
        }
    });
    ready_rx.recv().expect("the receiver listens");
    h
}

/// A sender in namespace `ns` to `to`: `data` in 64 KiB writes, one every `gap`, then
/// the end of the stream. Any error (a reset) is returned.
fn sender(
    ns: &str,
    to: SocketAddr,
    data: Vec<u8>,
    gap: Duration,
) -> std::thread::JoinHandle<Result<(), String>> {
    in_netns(ns, move || {
        let mut c = TcpStream::connect_timeout(&to, Duration::from_secs(10))
            .map_err(|e| format!("connect {to}: {e}"))?;
        c.set_write_timeout(Some(Duration::from_secs(60)))
            .map_err(|e| e.to_string())?;
        for (i, chunk) in data.chunks(64 << 10).enumerate() {
            c.write_all(chunk)
                .map_err(|e| format!("write {i} to {to}: {e}"))?;
            std::thread::sleep(gap);
        }
        c.shutdown(std::net::Shutdown::Write)
            .map_err(|e| format!("shutdown: {e}"))?;
        // Wait for the receiver's end: every byte was read before the connection closed.
        let mut rest = Vec::new();
        c.read_to_end(&mut rest)
            .map_err(|e| format!("the end of the stream: {e}"))?;
        Ok(())
    })
}

#[test]
fn a_guest_moves_to_another_sled_while_its_transfers_run() {
    if !root_or_skip() {
        return;
    }
    let mut lab = Lab::build(
        &bins(),
        &unique("xmig"),
        3,
        &[
            GuestSpec::new("mv", 100, 30, 5, 0).snat("198.51.100.13", 1025..=4096),
            GuestSpec::new("peer", 100, 30, 6, 2),
        ],
    )
    .unwrap();
    let (mv_ns, peer_ns) = (
        lab.guest("mv").ns.name().to_string(),
        lab.guest("peer").ns.name().to_string(),
    );
    let peer_addr: SocketAddr = format!("{}:7001", lab.guest("peer").ip4()).parse().unwrap();
    let inet_addr: SocketAddr = format!("{INTERNET_IP}:7002").parse().unwrap();

    // 24 MiB each way over about eight seconds; the move comes after two.
    let data = payload(24 << 20);
    let mut want = Fnv::new();
    want.add(&data);
    let want = (data.len() as u64, want);
    let gap = Duration::from_millis(20);
    let to_peer = receiver(&peer_ns, peer_addr);
    let to_inet = receiver(lab.internet.name(), inet_addr);
    let t0 = Instant::now();
    let s1 = sender(&mv_ns, peer_addr, data.clone(), gap);
    let s2 = sender(&mv_ns, inet_addr, data, gap);
    std::thread::sleep(Duration::from_secs(2));

    let moved = lab
        .move_guest("mv", 1)
        .unwrap_or_else(|e| panic!("{e}\nboundary: {}", lab.boundary_log()));
    eprintln!(
        "moved at {:.1} s: {} flow pairs, {} TCP connections; paused {:?}",
        t0.elapsed().as_secs_f64(),
        moved.pairs,
        moved.tcp,
        moved.paused
    );
    assert!(moved.tcp >= 2, "{moved:?}");

    let (r1, r2) = (s1.join().unwrap(), s2.join().unwrap());
    let (g1, g2) = (to_peer.join().unwrap(), to_inet.join().unwrap());
    let secs = t0.elapsed().as_secs_f64();
    assert_eq!(r1, Ok(()), "to the other guest");
    assert_eq!(r2, Ok(()), "to the internet");
    assert_eq!(g1, Ok(want), "the other guest received every byte");
    assert_eq!(
        g2,
        Ok(want),
        "the internet host received every byte\nboundary: {}",
        lab.boundary_log()
    );
    eprintln!("both transfers complete in {secs:.1} s");

    // The guest lives on sled 1 now: its old port is gone, and new connections work.
    let ports = |s: usize| lab.sleds[s].daemon.hdl().list_ports().unwrap().ports;
    assert!(ports(0).iter().all(|p| p.name != "mv"));
    assert!(ports(1).iter().any(|p| p.name == "mv"));
    let ping = lab.guest("mv").ns.exec(&[
        "ping",
        "-c",
        "2",
        "-i",
        "0.2",
        "-W",
        "2",
        &lab.guest("peer").ip4(),
    ]);
    assert!(ping.contains("2 received"), "{ping}");
    assert!(
        lab.boundary_log().contains("NAT table read"),
        "{}",
        lab.boundary_log()
    );
}
