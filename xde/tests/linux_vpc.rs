//! The whole VPC of the demo, for real, as root: two sleds running `xded`, joined by a
//! rack switch of two bridges, boundary services (`xde-boundary`) in front of an
//! internet host with a web server, guests of two VPCs leasing their addresses with
//! `dhclient`. Unmodified clients (`ping`, `iperf3`, `curl`) do the talking; what the
//! internet host saw of a guest is its web server's answer. Everything is the lab's,
//! uniquely named, and removed when the test ends, also when it fails.

#![cfg(target_os = "linux")]

use oxide_vpc::api::{ExternalIpCfg, SNatCfg, SetExternalIpsReq};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use xde::port::VniMac;
use xde_lab::vpc::{BOUNDARY_IP, Bins, GuestSpec, INTERNET_IP, Lab};
use xde_lab::{Proc, http, in_netns, root_or_skip, unique};

fn bins() -> Bins {
    Bins {
        xded: PathBuf::from(env!("CARGO_BIN_EXE_xded")),
        boundary: PathBuf::from(env!("CARGO_BIN_EXE_xde-boundary")),
    }
}

const A: u32 = 100;
const B: u32 = 200;

#[test]
fn guests_reach_the_internet_by_snat_ephemeral_and_floating_ips() {
    if !root_or_skip() {
        return;
    }
    let lab = Lab::build(
        &bins(),
        &unique("xdet"),
        2,
        &[
            GuestSpec::new("a1", A, 30, 5, 0)
                .snat("198.51.100.13", 1025..=4096)
                .external("198.51.100.20")
                .external("198.51.100.30"),
            GuestSpec::new("b1", B, 31, 5, 1).snat("198.51.100.14", 1025..=4096),
        ],
    )
    .unwrap();
    let _web = http::Server::start(
        lab.internet.name(),
        format!("{INTERNET_IP}:80").parse().unwrap(),
    )
    .unwrap();
    // Every underlay frame, on both of the rack switch's bridges, is captured from here on.
    let pcap = lab.dir.join("underlay.pcapng");
    let mut capture = capture_underlay(&lab, &pcap);
    let url = format!("http://{INTERNET_IP}/");
    let curl = |g: &str| {
        lab.guest(g)
            .ns
            .try_exec(&["curl", "-sS", "--max-time", "5", &url])
            .unwrap_or_else(|e| panic!("{e}\nboundary: {}", lab.boundary_log()))
    };
    // SNAT: the internet sees the SNAT address, from a port of the guest's range.
    let seen = |g: &str| -> (String, u16) {
        let body = curl(g);
        let rest = body
            .trim()
            .strip_prefix("seen from ")
            .unwrap_or_else(|| panic!("the web server's answer: {body:?}"));
        let (ip, port) = rest.split_once(" port ").unwrap();
        (ip.to_string(), port.parse().unwrap())
    };
    let (ip, port) = seen("a1");
    assert_eq!(ip, "198.51.100.13");
    assert!((1025..=4096).contains(&port), "SNAT port {port}");
    let (ip, port) = seen("b1");
    assert_eq!(ip, "198.51.100.14", "the other VPC's guest has its own");
    assert!((1025..=4096).contains(&port), "SNAT port {port}");

    // An ephemeral IP: preferred over SNAT; then a floating IP, preferred over both.
    let set_ext = |ephemeral: Option<&str>, floating: &[&str]| {
        lab.sled_of("a1")
            .daemon
            .hdl()
            .set_external_ips(&SetExternalIpsReq {
                port_name: "a1".into(),
                external_ips_v4: Some(ExternalIpCfg {
                    snat: Some(SNatCfg {
                        external_ip: "198.51.100.13".parse().unwrap(),
                        ports: 1025..=4096,
                    }),
                    ephemeral_ip: ephemeral.map(|e| e.parse().unwrap()),
                    floating_ips: floating.iter().map(|f| f.parse().unwrap()).collect(),
                }),
                external_ips_v6: None,
                inet_gw_map: None,
            })
            .unwrap();
    };
    set_ext(Some("198.51.100.20"), &[]);
    assert_eq!(seen("a1").0, "198.51.100.20");
    set_ext(Some("198.51.100.20"), &["198.51.100.30"]);
    assert_eq!(seen("a1").0, "198.51.100.30");

    // Inbound from the internet to the floating IP reaches the guest (SSH is open by the
    // default rules); the guest sees the internet host's own address.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server = in_netns(lab.guest("a1").ns.name(), move || {
        let l = std::net::TcpListener::bind("0.0.0.0:22").unwrap();
        l.set_nonblocking(true).unwrap();
        ready_tx.send(()).unwrap();
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            if let Ok((_, peer)) = l.accept() {
                return Some(peer.ip().to_string());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    });
    ready_rx.recv().unwrap();
    let connected = in_netns(lab.internet.name(), || {
        std::net::TcpStream::connect_timeout(
            &"198.51.100.30:22".parse().unwrap(),
            Duration::from_secs(3),
        )
        .map(|s| s.local_addr().unwrap().ip().to_string())
    })
    .join()
    .unwrap();
    assert_eq!(connected.ok().as_deref(), Some(INTERNET_IP));
    assert_eq!(server.join().unwrap().as_deref(), Some(INTERNET_IP));

    std::thread::sleep(Duration::from_millis(300));
    capture.stop();
    check_underlay_capture(&pcap);
}

/// Capture every Geneve frame on both of the rack switch's bridges into `pcap`, from the
/// moment this returns until the capture is stopped.
fn capture_underlay(lab: &Lab, pcap: &std::path::Path) -> Proc {
    let capture = Proc::spawn(
        lab.switch
            .command(std::path::Path::new("tshark"))
            .args([
                "-q",
                "-i",
                "sw1",
                "-i",
                "sw2",
                "-f",
                "ip6 and udp port 6081",
                "-w",
            ])
            .arg(pcap)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null()),
    )
    .unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    while std::fs::metadata(pcap).map_or(0, |m| m.len()) == 0 {
        assert!(Instant::now() < until, "tshark never started capturing");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    capture
}

/// tshark reads every captured underlay frame as the rack's switch would, and finds
/// nothing wrong: each but the kernels' own neighbour discovery is IPv6 / UDP 6081 /
/// Geneve carrying IPv4, checksums good; to boundary services
/// on VNI 99 from an external address; from it on the guest's VNI with the Oxide
/// "external" option, to an external address.
fn check_underlay_capture(pcap: &std::path::Path) {
    let bad = xde_lab::tshark_problems(
        pcap,
        "!icmpv6 && !(eth.type == 0x86dd && udp.dstport == 6081 && geneve && ip)",
    );
    assert!(bad.trim().is_empty(), "frames tshark finds wrong: {bad}");
    let fields = xde_lab::tshark(
        pcap,
        &[
            "-Y",
            "geneve",
            "-T",
            "fields",
            "-E",
            "separator=|",
            "-e",
            "ipv6.src",
            "-e",
            "ipv6.dst",
            "-e",
            "udp.dstport",
            "-e",
            "geneve.vni",
            "-e",
            "geneve.option.class",
            "-e",
            "geneve.option.type",
            "-e",
            "ip.src",
            "-e",
            "ip.dst",
        ],
    );
    let (mut to_b, mut from_b) = (0, 0);
    for line in fields.lines() {
        let f: Vec<&str> = line.split('|').collect();
        let [src, dst, port, vni, class, ty, isrc, idst] = f[..] else {
            panic!("{line}");
        };
        assert_eq!(port, "6081", "{line}");
        if dst == BOUNDARY_IP {
            to_b += 1;
            assert_eq!(vni, "0x000063", "to the boundary on VNI 99: {line}");
            assert!(isrc.starts_with("198.51.100."), "{line}");
        } else if src == BOUNDARY_IP {
            from_b += 1;
            assert!(["0x000064", "0x0000c8"].contains(&vni), "{line}");
            assert_eq!(
                (class, ty),
                ("0x0129", "0x00"),
                "the Oxide external option: {line}"
            );
            assert!(idst.starts_with("198.51.100."), "{line}");
        } else {
            panic!("a frame neither to nor from the boundary: {line}");
        }
    }
    assert!(
        to_b >= 10 && from_b >= 10,
        "{to_b} frames to the boundary, {from_b} from it"
    );
}

/// Run `iperf3 -c` from guest `from` against an `iperf3 -s -1` in guest `to`, with
/// `extra` arguments; its JSON report.
fn iperf3(lab: &Lab, from: &str, to: &str, extra: &[&str]) -> serde_json::Value {
    let (src, dst) = (lab.guest(from), lab.guest(to));
    xde_lab::iperf3(&src.ns, &dst.ns, &dst.ip4(), extra).unwrap()
}

#[test]
fn iperf3_across_sleds_and_two_vpcs_apart() {
    if !root_or_skip() {
        return;
    }
    let lab = Lab::build(
        &bins(),
        &unique("xdet"),
        2,
        &[
            GuestSpec::new("a1", A, 30, 5, 0),
            GuestSpec::new("a2", A, 30, 6, 1),
            GuestSpec::new("b1", B, 31, 5, 1),
        ],
    )
    .unwrap();
    // What DHCPv4 gave a guest besides its address: the router, DNS servers, the domain
    // search list, the classless routes (its /32 on-link route to the gateway, then the
    // default route through it).
    let lease = std::fs::read_to_string(&lab.guest("a1").leases[0]).unwrap();
    for want in [
        "fixed-address 172.30.0.5;",
        "option routers 172.30.0.1;",
        "option domain-name-servers 203.0.113.53;",
        "option domain-search \"vpc.example.\";",
        "option rfc3442-classless-static-routes 32,172,30,0,1,0,0,0,0,0,172,30,0,1;",
        "option host-name \"a1\";",
    ] {
        assert!(lease.contains(want), "{want} in the lease:\n{lease}");
    }
    let lease6 = std::fs::read_to_string(&lab.guest("a1").leases[1]).unwrap();
    assert!(lease6.contains("iaaddr fd30::5 {"), "{lease6}");

    // Across sleds, both families.
    let a1 = &lab.guest("a1").ns;
    let ping = a1.exec(&["ping", "-c", "3", "-i", "0.2", "-W", "2", "172.30.0.6"]);
    assert!(ping.contains("3 received"), "{ping}");
    let ping = a1.exec(&["ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", "fd30::6"]);
    assert!(ping.contains("3 received"), "{ping}");

    // iperf3 TCP: it sends what it was asked to. Its receiver stops counting when the
    // sender says the test is over, while the last few megabytes are still in flight
    // (esnet/iperf#382), so its count is a lower bound here; the byte-exact TCP check is
    // the CRC-checked transfer of `linux_daemon`'s two-sled test.
    let tcp = tcp_transfer(&lab, "a1", "a2", 64);
    eprintln!(
        "iperf3 TCP across sleds: {:.0} Mbit/s",
        tcp["end"]["sum_received"]["bits_per_second"]
            .as_f64()
            .unwrap()
            / 1e6
    );
    // iperf3 UDP, paced: every datagram arrives; the byte counts match.
    let udp = iperf3(
        &lab,
        "a1",
        "a2",
        &["-u", "-b", "20M", "-l", "1200", "-t", "2"],
    );
    let end = &udp["end"];
    assert_eq!(end["sum"]["lost_packets"], 0, "{end}");
    assert_eq!(
        end["sum_sent"]["bytes"], end["sum_received"]["bytes"],
        "{end}"
    );
    assert!(
        end["sum_sent"]["bytes"].as_u64().unwrap() > 4_000_000,
        "{end}"
    );

    // Once a flow is established and the workers have warmed up, its packets allocate
    // nothing in either daemon's workers (xded's allocator counts what they allocate),
    // end to end: TAP and ring reads, the core, the cutter, the coalescer, the writes.
    // What does allocate is the slow path: a guest's ARP, NDP or DHCP answered (the idle
    // guests still solicit routers now and then), a frame dropped by a layer, a next-hop
    // refresh (every 100 ms per destination: an rtnetlink round trip, counted apart). So
    // the transfer is watched in one-second windows, and every window of a sled in which
    // nothing took the slow path must show no allocation at all.
    const SLOW: [&str; 4] = ["tx_hairpin", "rx_hairpin", "tx_port_drop", "rx_port_drop"];
    let counts = || {
        lab.sleds
            .iter()
            .map(|s| {
                let c = |n: &str| s.daemon.counter(n);
                let slow: u64 = SLOW.iter().map(|n| c(n)).sum();
                [
                    c("worker_allocs"),
                    c("tx_underlay") + c("rx_delivered"),
                    slow,
                ]
            })
            .collect::<Vec<_>>()
    };
    let samples = std::thread::scope(|sc| {
        let run = sc.spawn(|| iperf3(&lab, "a1", "a2", &["-t", "8"]));
        std::thread::sleep(Duration::from_millis(1500));
        let mut samples = vec![counts()];
        for _ in 0..5 {
            std::thread::sleep(Duration::from_secs(1));
            samples.push(counts());
        }
        let report = run.join().unwrap();
        assert!(xde_lab::iperf3_received_bps(&report).unwrap() > 0.0);
        samples
    });
    for sled in 0..lab.sleds.len() {
        let mut quiet = 0;
        for w in samples.windows(2) {
            let (b, a) = (w[0][sled], w[1][sled]);
            assert!(a[1] - b[1] > 1000, "sled {sled} moved traffic: {samples:?}");
            if a[2] == b[2] {
                quiet += 1;
                assert_eq!(
                    a[0] - b[0],
                    0,
                    "sled {sled}'s workers allocated for {} frames of an established flow \
                     (allocations, frames, slow-path events at each second: {samples:?})",
                    a[1] - b[1]
                );
            }
        }
        assert!(
            quiet > 0,
            "sled {sled} never went a second without the slow path: {samples:?}"
        );
    }
    for s in &lab.sleds {
        assert!(
            s.daemon.counter("worker_route_allocs") > 0,
            "next hops were looked up"
        );
    }

    // The daemons run two workers each and steer each port's traffic to the worker that
    // owns it: a1's (worker 0 of sled 0) and a2's (worker 1 of sled 1), so a fanout that
    // handed everything to one worker would be seen.
    let owner = |g: &str| {
        let cfg = &lab.guest(g).cfg;
        VniMac {
            vni: cfg.vni,
            mac: cfg.guest_mac,
        }
        .owner(2)
    };
    assert_eq!((owner("a1"), owner("a2")), (0, 1));
    for s in &lab.sleds {
        // ... and read the underlay through receive rings.
        let log = s.daemon.log();
        assert!(
            log.contains("steer=ByPort") && log.contains("rx_ring=true"),
            "{log}"
        );
        assert_eq!(s.daemon.counter("rx_off_worker"), 0);
        let delivered = s.daemon.counter("rx_delivered");
        assert!(delivered > 100, "{delivered} frames delivered");
    }

    // The two VPCs are apart: no ping, no TCP, either way, on one sled or across.
    for (from, to) in [
        ("a1", "172.31.0.5"),
        ("b1", "172.30.0.5"),
        ("b1", "172.30.0.6"),
    ] {
        let r = lab
            .guest(from)
            .ns
            .try_exec(&["ping", "-c", "2", "-i", "0.2", "-W", "1", to]);
        assert!(r.is_err(), "{from} reached {to}: {r:?}");
    }
    let b1 = lab.guest("b1").ns.name().to_string();
    let connected = in_netns(&b1, || {
        std::net::TcpStream::connect_timeout(
            &"172.30.0.6:22".parse().unwrap(),
            Duration::from_secs(1),
        )
        .is_ok()
    })
    .join()
    .unwrap();
    assert!(!connected, "b1 opened TCP to a2");
}

/// iperf3 TCP from `from` to `to`, `mib` MiB: everything was sent, and the receiver
/// counted at least all but the last 16 MiB (see `iperf3_across_sleds_and_two_vpcs_apart`).
/// The report.
fn tcp_transfer(lab: &Lab, from: &str, to: &str, mib: u64) -> serde_json::Value {
    let r = iperf3(lab, from, to, &["-n", &format!("{mib}M")]);
    let sent = r["end"]["sum_sent"]["bytes"].as_u64().unwrap();
    let got = r["end"]["sum_received"]["bytes"].as_u64().unwrap();
    assert!(sent >= mib << 20, "{from} to {to}: sent {sent}");
    assert!(
        got <= sent && got + (16 << 20) >= sent,
        "{from} to {to}: sent {sent}, received {got}"
    );
    r
}

/// Offloads end to end. A guest hands its TAP TCP super-frames (TSO) with the checksum
/// left partial; the sending daemon processes each once and cuts it into segments, the
/// receiving one hands its guest coalesced super-frames. Every path, with real guests:
/// - to another sled over a virtual underlay: a super-frame's segments cross as one UDP
///   datagram of Geneve chunks, which the receiver coalesces whole (the byte-exact check of
///   this path is the CRC-checked transfer of `linux_daemon`'s two-sled test);
/// - the same over links that can neither segment nor checksum (offloads off, a plain
///   NIC): the kernel cuts the datagrams and finishes each outer checksum, and tshark
///   finds on the switch Geneve packets as large as the underlay MTU allows (MSS
///   boosting), every inner and outer checksum good, the Oxide MSS option holding the
///   guest's MSS; the receiving daemon coalesces the separate packets again;
/// - to a guest on the same sled: the super-frame is handed over whole, never cut.
#[test]
fn tcp_super_frames_cross_every_path_with_good_checksums() {
    if !root_or_skip() {
        return;
    }
    let lab = Lab::build(
        &bins(),
        &unique("xdet"),
        2,
        &[
            GuestSpec::new("a1", A, 30, 5, 0),
            GuestSpec::new("a2", A, 30, 6, 1),
            GuestSpec::new("a3", A, 30, 7, 0),
        ],
    )
    .unwrap();
    let c = |sled: usize, name: &str| lab.sleds[sled].daemon.counter(name);

    // Across sleds, a virtual underlay.
    let (cut0, merged0) = (c(0, "tx_gso_frames"), c(1, "rx_dgrams_merged"));
    let _ = tcp_transfer(&lab, "a1", "a2", 64);
    assert!(
        c(0, "tx_gso_frames") > cut0 + 200,
        "sled 0 cut super-frames"
    );
    assert!(
        c(1, "rx_dgrams_merged") > merged0 + 200,
        "sled 1 took datagrams of chunks whole"
    );
    assert_eq!(c(1, "rx_dgrams_split"), 0);

    // Across sleds, links without offloads: what crosses the switch is what a wire carries.
    for l in ["u1", "u2"] {
        lab.sleds[0].ns.exec(&[
            "ethtool",
            "-K",
            l,
            "tx",
            "off",
            "tx-udp-segmentation",
            "off",
        ]);
    }
    let pcap = lab.dir.join("offloads.pcapng");
    let mut capture = capture_underlay(&lab, &pcap);
    let coalesced = c(1, "rx_coalesced_supers");
    let _ = tcp_transfer(&lab, "a1", "a2", 64);
    std::thread::sleep(Duration::from_millis(300));
    capture.stop();
    assert!(
        c(1, "rx_coalesced_supers") > coalesced + 200,
        "sled 1 coalesced the separate segments"
    );
    let bad = xde_lab::tshark_problems(&pcap, "");
    assert!(bad.trim().is_empty(), "frames tshark finds wrong: {bad}");
    let fields = xde_lab::tshark(
        &pcap,
        &[
            "-Y",
            "geneve && ip.src == 172.30.0.5 && tcp.len > 0",
            "-T",
            "fields",
            "-E",
            "separator=|",
            "-e",
            "frame.len",
            "-e",
            "udp.checksum.status",
            "-e",
            "ip.checksum.status",
            "-e",
            "tcp.checksum.status",
            "-e",
            "geneve.option.class",
            "-e",
            "geneve.option.type",
            "-e",
            "geneve.option.unknown.data",
        ],
    );
    let (mut cut, mut whole, mut largest) = (0, 0, 0);
    for line in fields.lines() {
        let f: Vec<&str> = line.split('|').collect();
        let [len, udp, ip, tcp, class, ty, data] = f[..] else {
            panic!("{line}");
        };
        assert_eq!((ip, tcp), ("1", "1"), "inner checksums good: {line}");
        assert_eq!((class, ty), ("0x0129", "0x02"), "the MSS option: {line}");
        if data == "00000000" {
            // A segment the guest sent as it is (no segmentation asked): the option left
            // empty, the outer checksum not computed (RFC 6935), as the engine makes them.
            assert_eq!(udp, "3", "no outer checksum: {line}");
            whole += 1;
        } else {
            // Cut from a super-frame: the guest's MSS (its 1,500-byte MTU less IPv4, TCP
            // and the timestamp option), the outer checksum finished by the kernel.
            assert_eq!(data, "000005a8", "the guest's MSS, 1448: {line}");
            assert_eq!(udp, "1", "outer checksum good: {line}");
            cut += 1;
            largest = largest.max(len.parse::<usize>().unwrap());
        }
    }
    assert!(
        cut > 2000,
        "{cut} segments cut from super-frames ({whole} sent whole)"
    );
    assert!(
        largest > 8000,
        "segments as large as the 9,000-byte underlay allows, not the guest's 1,500: {largest}"
    );

    // On one sled: handed over whole.
    let (cut, looped) = (c(0, "tx_gso_frames"), c(0, "tx_loopback"));
    let _ = tcp_transfer(&lab, "a1", "a3", 64);
    assert!(c(0, "tx_loopback") > looped + 200);
    assert_eq!(c(0, "tx_gso_frames"), cut, "nothing was cut on the way");

    // UDP super-frames (USO): one 12,000-byte send cut at 1,200 bytes is ten datagrams
    // at the other end: cut by the daemon across sleds, by the receiving guest's own stack
    // on one sled (the super-frame is handed to it whole).
    let cut = c(0, "tx_gso_frames");
    udp_super_frame(&lab, "a1", "a2");
    assert_eq!(c(0, "tx_gso_frames"), cut + 1, "the daemon cut it");
    udp_super_frame(&lab, "a1", "a3");
    assert_eq!(c(0, "tx_gso_frames"), cut + 1, "handed over whole");
    assert_eq!(c(0, "out_drop_bad_offload"), 0);
}

/// Guest `from` sends guest `to` 12,000 bytes in one UDP send with UDP_SEGMENT at 1,200
/// bytes; `to` must receive them as ten datagrams, in order, each its 1,200 bytes.
fn udp_super_frame(lab: &Lab, from: &str, to: &str) {
    use nix::sys::socket::{setsockopt, sockopt::UdpGsoSegment};
    let dst: std::net::SocketAddr = format!("{}:9999", lab.guest(to).ip4()).parse().unwrap();
    let data: Vec<u8> = (0..12_000usize).map(|i| (i % 251) as u8).collect();
    let want = data.clone();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server = in_netns(lab.guest(to).ns.name(), move || {
        let s = std::net::UdpSocket::bind(dst).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        ready_tx.send(()).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 65536];
        while got.len() < 10 {
            match s.recv(&mut buf) {
                Ok(n) => got.push(buf[..n].to_vec()),
                Err(_) => break,
            }
        }
        got
    });
    ready_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    // The first packet also makes the sender resolve its gateway.
    let ping = lab
        .guest(from)
        .ns
        .exec(&["ping", "-c", "1", "-W", "2", &dst.ip().to_string()]);
    assert!(ping.contains("1 received"), "{ping}");
    in_netns(lab.guest(from).ns.name(), move || {
        let s = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        setsockopt(&s, UdpGsoSegment, &1200).unwrap();
        assert_eq!(s.send_to(&data, dst).unwrap(), data.len());
    })
    .join()
    .unwrap();
    let got = server.join().unwrap();
    assert_eq!(got.len(), 10, "{from} to {to}: ten datagrams");
    for (i, d) in got.iter().enumerate() {
        assert_eq!(
            d[..],
            want[i * 1200..(i + 1) * 1200],
            "{from} to {to}: datagram {i}"
        );
    }
}
