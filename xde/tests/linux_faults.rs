//! Faults end to end, as root, on the lab's sleds: a guest that sends malformed frames as
//! fast as it can. Every frame is accounted for (by the daemon's parse and drop counters,
//! or by the kernel's own count of what the TAP's queue refused), and a neighbour on the
//! same sled moves its data to another sled meanwhile, every byte, with no error.

#![cfg(target_os = "linux")]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use xde_lab::stream::{Fnv, payload, receiver, sender};
use xde_lab::vpc::{Bins, GuestSpec, Lab};
use xde_lab::{Daemon, in_netns, root_or_skip, unique};

fn bins() -> Bins {
    Bins {
        xded: PathBuf::from(env!("CARGO_BIN_EXE_xded")),
        boundary: PathBuf::from(env!("CARGO_BIN_EXE_xde-boundary")),
    }
}

/// Frames no parser may accept, from `mac` to the gateway: truncated IPv4 and IPv6, an
/// IPv4 header length below the minimum, an IPv4 total length past the frame, an
/// unknown ether type, and a TCP header whose data offset is below the minimum.
fn malformed(mac: [u8; 6], src: [u8; 4], dst: [u8; 4]) -> Vec<Vec<u8>> {
    let gw = [0xa8, 0x40, 0x25, 0xff, 0x77, 0x77];
    let eth = |et: u16| {
        let mut f = gw.to_vec();
        f.extend_from_slice(&mac);
        f.extend_from_slice(&et.to_be_bytes());
        f
    };
    let ip4 = |ver_ihl: u8, total: u16, proto: u8| {
        let mut h = vec![ver_ihl, 0];
        h.extend_from_slice(&total.to_be_bytes());
        h.extend_from_slice(&[0, 0, 0x40, 0, 64, proto, 0, 0]);
        h.extend_from_slice(&src);
        h.extend_from_slice(&dst);
        h
    };
    let with = |mut f: Vec<u8>, rest: &[u8]| {
        f.extend_from_slice(rest);
        f
    };
    let mut tcp = vec![0x9c, 0x40, 0, 22, 0, 0, 0, 1, 0, 0, 0, 0, 0x20, 0x02];
    tcp.extend_from_slice(&[0xff; 6]);
    vec![
        with(eth(0x0800), &[0x45; 10]),
        with(eth(0x0800), &with(ip4(0x42, 40, 6), &[0; 20])),
        with(eth(0x0800), &with(ip4(0x45, 2000, 17), &[0; 20])),
        with(eth(0x88b5), &[0x5a; 50]),
        with(eth(0x86dd), &[0x60; 30]),
        with(eth(0x0800), &with(ip4(0x45, 40, 6), &tcp)),
    ]
}

/// Send each of `frames` `rounds` times out of link `dev` (in the calling thread's
/// namespace) as fast as the socket takes them: how many were sent.
fn blast(dev: &str, frames: &[Vec<u8>], rounds: usize) -> u64 {
    use nix::libc;
    let ifindex = nix::net::if_::if_nametoindex(dev).unwrap();
    let mut sent = 0u64;
    // SAFETY: socket(2), sendto(2) and close(2) on a socket this function alone uses, with
    // a `sockaddr_ll` and frame buffers alive across the calls.
    unsafe {
        let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
        assert!(fd >= 0, "{}", std::io::Error::last_os_error());
        let mut sll: libc::sockaddr_ll = std::mem::zeroed();
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_ifindex = ifindex as i32;
        sll.sll_halen = 6;
        for _ in 0..rounds {
            for f in frames {
                loop {
                    let n = libc::sendto(
                        fd,
                        f.as_ptr().cast(),
                        f.len(),
                        0,
                        std::ptr::addr_of!(sll).cast(),
                        std::mem::size_of::<libc::sockaddr_ll>() as u32,
                    );
                    if n == f.len() as isize {
                        sent += 1;
                        break;
                    }
                    let e = std::io::Error::last_os_error();
                    match e.raw_os_error() {
                        Some(libc::ENOBUFS) | Some(libc::EAGAIN) => {
                            std::thread::sleep(Duration::from_micros(50))
                        }
                        _ => panic!("sendto: {e}"),
                    }
                }
            }
        }
        libc::close(fd);
    }
    sent
}

/// Everything sled daemon `d` counted as dropped from guests: the host's parse failures
/// of outbound frames and every port's outbound drops.
fn guest_drops(d: &Daemon) -> u64 {
    let st = d.hdl().dump_xde_stats().unwrap();
    let host: u64 = st
        .counters
        .iter()
        .filter(|(n, _)| n.starts_with("out_drop_"))
        .map(|(_, v)| v)
        .sum();
    let ports: u64 = st
        .ports
        .iter()
        .flat_map(|(_, c)| c.iter().filter(|(n, _)| n == "out_drop").map(|(_, v)| v))
        .sum();
    host + ports
}

#[test]
fn a_guest_sending_malformed_frames_at_full_speed_harms_no_neighbour() {
    if !root_or_skip() {
        return;
    }
    let lab = Lab::build(
        &bins(),
        &unique("xflt"),
        2,
        &[
            GuestSpec::new("bad", 100, 30, 5, 0),
            GuestSpec::new("good", 100, 30, 6, 0),
            GuestSpec::new("far", 100, 30, 7, 1),
        ],
    )
    .unwrap();
    let (bad, good, far) = (lab.guest("bad"), lab.guest("good"), lab.guest("far"));
    let d0 = &lab.sleds[0].daemon;
    let tx_dropped = || -> u64 {
        bad.ns
            .exec(&["cat", "/sys/class/net/bad/statistics/tx_dropped"])
            .trim()
            .parse()
            .unwrap()
    };
    let (drops0, kernel0) = (guest_drops(d0), tx_dropped());

    // The neighbour's transfer: 16 MiB over about four seconds.
    let to: SocketAddr = format!("{}:7003", far.ip4()).parse().unwrap();
    let data = payload(16 << 20);
    let mut want = Fnv::new();
    want.add(&data);
    let rx = receiver(far.ns.name(), to);
    let tx = sender(good.ns.name(), to, data.clone(), Duration::from_millis(15));

    let mac = bad.cfg.guest_mac.bytes();
    let ip = |s: String| -> [u8; 4] { s.parse::<std::net::Ipv4Addr>().unwrap().octets() };
    let frames = malformed(mac, ip(bad.ip4()), ip(far.ip4()));
    let t0 = Instant::now();
    let sent = in_netns(bad.ns.name(), move || blast("bad", &frames, 20_000))
        .join()
        .unwrap();
    let secs = t0.elapsed().as_secs_f64();
    eprintln!(
        "{sent} malformed frames in {secs:.2} s ({:.0} frames/s)",
        sent as f64 / secs
    );

    assert_eq!(tx.join().unwrap(), Ok(()));
    assert_eq!(rx.join().unwrap(), Ok((data.len() as u64, want)));
    // The daemon has read what the TAP queued by now; wait for its counters to settle.
    let until = Instant::now() + Duration::from_secs(10);
    let counted = loop {
        let c = guest_drops(d0) - drops0 + (tx_dropped() - kernel0);
        if c >= sent || Instant::now() > until {
            break c;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!(
        "counted {counted}: daemon {}, TAP queue {}",
        guest_drops(d0) - drops0,
        tx_dropped() - kernel0
    );
    // Every frame, and at most a few of the guest kernel's own (router solicitations).
    assert!(
        (sent..sent + 64).contains(&counted),
        "sent {sent}, counted {counted}"
    );
    // The sender itself still works.
    let ping = bad
        .ns
        .exec(&["ping", "-c", "2", "-i", "0.2", "-W", "2", &far.ip4()]);
    assert!(ping.contains("2 received"), "{ping}");
}
