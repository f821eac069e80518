//! Live migration end to end, as root: a guest moved between sleds of the lab (three
//! `xded`s, boundary services, an internet host) while it sends to another guest and to
//! the internet host through SNAT. The lab pauses its port, carries the port's flow
//! state to a port of the same configuration on the new sled, swaps the guest's
//! interface for the new port's, and repoints V2P and the boundary's NAT. Both transfers
//! are byte-counted and hashed at the receiver; a reset or a lost byte fails them.

#![cfg(target_os = "linux")]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use xde_lab::stream::{Fnv, payload, receiver, sender};
use xde_lab::vpc::{Bins, GuestSpec, INTERNET_IP, Lab};
use xde_lab::{root_or_skip, unique};

fn bins() -> Bins {
    Bins {
        xded: PathBuf::from(env!("CARGO_BIN_EXE_xded")),
        boundary: PathBuf::from(env!("CARGO_BIN_EXE_xde-boundary")),
    }
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
