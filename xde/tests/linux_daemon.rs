//! The Linux daemon end to end, as root: `xded` started as a process, configured through
//! its control socket by the client library, a port's TAP moved into a network namespace
//! the test makes, and unmodified clients in it (`dhclient`, `ping`) talking to the OPTE
//! gateway. Every namespace, link and process is the test's own, uniquely named, and is
//! removed or ended by its guard, also when an assertion fails.

#![cfg(target_os = "linux")]

mod common;

use common::{L4, Rack, default_fw_rules, from_guest, guest, ip4, sled_ip};
use opte_api::IpCidr;
use opte_api::control::{FRAME_HEADER_LEN, frame_body_len};
use opte_api::{ControlResponse, OpteError};
use opte_ioctl::{OpteHdl, UnixTransport};
use oxide_vpc::api::{AddFwRuleReq, PhysNet, RemFwRuleReq, SetVirt2PhysReq};
use oxide_vpc::api::{AddRouterEntryReq, RouterClass, RouterTarget, SetFwRulesReq, VpcCfg};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use xde_lab::{Daemon, Netns, Proc, Veth, in_netns, ok, root_or_skip, unique};

/// `xded` started in namespace `ns`, or in this one.
fn daemon(ns: Option<&Netns>) -> Daemon {
    Daemon::start(Path::new(env!("CARGO_BIN_EXE_xded")), ns).unwrap()
}

fn run(cmd: &str, args: &[&str]) -> std::process::Output {
    xde_lab::run(cmd, args).unwrap()
}

/// Send one raw frame out of link `name`, as another host on the wire would.
fn inject(name: &str, frame: &[u8]) {
    xde_lab::RawLink::open(name).send(frame);
}

/// A daemon in this namespace with a veth pair for its two underlay links (the pair is
/// removed when the returned guard drops).
fn host_with_underlay() -> (Veth, Daemon) {
    let under = Veth::new();
    let d = daemon(None);
    d.hdl().set_xde_underlay(&under.0, &under.1).unwrap();
    (under, d)
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

#[test]
fn a_guest_in_a_namespace_gets_dhcp_and_pings_the_gateway_through_a_tap() {
    if !root_or_skip() {
        return;
    }
    let (_under, mut d) = host_with_underlay();
    let hdl = d.hdl();
    let cfg = guest(77, 5, 0);
    let port = unique("xp");
    hdl.create_xde(&port, cfg.clone(), None).unwrap();
    assert!(link_exists(&port), "the port's TAP exists");
    let mac = std::fs::read_to_string(format!("/sys/class/net/{port}/address")).unwrap();
    assert_eq!(mac.trim(), cfg.guest_mac.to_string().to_lowercase());

    // The TAP becomes the guest's NIC in its namespace; the daemon keeps its fd.
    let ns = Netns::new("xdet");
    ok("ip", &["link", "set", &port, "netns", ns.name()]);
    ns.exec(&["ip", "link", "set", &port, "up"]);
    let lease = ns.dhclient("-4", &port, &d.dir).unwrap();
    let addrs = ns.exec(&["ip", "-4", "-o", "addr", "show", "dev", &port]);
    assert!(
        addrs.contains("inet 172.30.0.5/"),
        "leased address: {addrs}"
    );
    let routes = ns.exec(&["ip", "-4", "route"]);
    assert!(
        routes.contains("default via 172.30.0.1"),
        "router from DHCP: {routes}"
    );
    let lease_text = std::fs::read_to_string(&lease).unwrap();
    assert!(
        lease_text.contains("option dhcp-server-identifier 172.30.0.1"),
        "{lease_text}"
    );
    let ping = ns.exec(&["ping", "-c", "3", "-i", "0.2", "-W", "2", "172.30.0.1"]);
    assert!(ping.contains("3 received"), "{ping}");

    // IPv6: the gateway's router advertisement, and an address by DHCPv6.
    let ra = ns.exec(&["rdisc6", "-1", "-w", "2000", &port]);
    assert!(ra.contains("from fe80::aa40:25ff:feff:7777"), "{ra}");
    assert!(
        ra.contains("Stateful address conf.    :          Yes"),
        "{ra}"
    );
    ns.dhclient("-6", &port, &d.dir).unwrap();
    let addrs6 = ns.exec(&["ip", "-6", "-o", "addr", "show", "dev", &port]);
    assert!(
        addrs6.contains("inet6 fd00::5/128"),
        "leased address: {addrs6}"
    );

    // The daemon lists the port.
    let ports = hdl.list_ports().unwrap();
    assert_eq!(ports.ports.len(), 1);
    assert_eq!(ports.ports[0].name, port);

    // delete-xde removes the TAP before it returns, even from inside the namespace.
    hdl.delete_xde(&port).unwrap();
    assert!(
        !ns.exec(&["ip", "-o", "link"]).contains(&port),
        "the TAP outlived delete-xde"
    );

    // SIGTERM: a clean exit, no socket file left.
    let status = d.stop();
    assert!(status.success(), "xded exited with {status}: {}", d.log());
    assert!(!d.sock().exists(), "the socket file is removed");
}

/// Make port `name` for `cfg` with the routes and firewall rules of a VPC guest, move its
/// TAP (made in namespace `sled`, where the daemon runs, or in this one) into a new
/// namespace and lease its address there with `dhclient`.
fn guest_in_netns(d: &Daemon, sled: Option<&Netns>, name: &str, cfg: &VpcCfg) -> Netns {
    let hdl = d.hdl();
    hdl.create_xde(name, cfg.clone(), None).unwrap();
    let sub = IpCidr::Ip4(cfg.ipv4().unwrap().vpc_subnet);
    hdl.add_router_entry(&AddRouterEntryReq {
        port_name: name.into(),
        dest: sub,
        target: RouterTarget::VpcSubnet(sub),
        class: RouterClass::System,
    })
    .unwrap();
    hdl.set_firewall_rules(&SetFwRulesReq {
        port_name: name.into(),
        rules: default_fw_rules(cfg.vni),
    })
    .unwrap();
    let ns = Netns::new("xdet");
    match sled {
        Some(sled) => sled.exec(&["ip", "link", "set", name, "netns", ns.name()]),
        None => ok("ip", &["link", "set", name, "netns", ns.name()]),
    };
    ns.exec(&["ip", "link", "set", name, "up"]);
    ns.dhclient("-4", name, &d.dir).unwrap();
    ns
}

/// Tell the daemon where guest `peer` lives (its IPv4 address).
fn map_peer(d: &Daemon, peer: &VpcCfg) {
    d.hdl()
        .set_v2p(&SetVirt2PhysReq {
            vip: ip4(peer),
            phys: PhysNet {
                ether: peer.guest_mac,
                ip: peer.phys_ip,
                vni: peer.vni,
            },
        })
        .unwrap();
}

#[test]
fn two_guests_on_one_host_talk_without_the_underlay() {
    if !root_or_skip() {
        return;
    }
    let (_under, d) = host_with_underlay();
    let (c1, c2) = (guest(78, 5, 0), guest(78, 6, 0));
    let (p1, p2) = (unique("xp"), unique("xp"));
    let n1 = guest_in_netns(&d, None, &p1, &c1);
    let _n2 = guest_in_netns(&d, None, &p2, &c2);
    let ping = n1.exec(&["ping", "-c", "3", "-i", "0.2", "-W", "2", "172.30.0.6"]);
    assert!(ping.contains("3 received"), "{ping}");
    // Three requests and three replies went from one TAP to the other, none to the wire.
    assert_eq!(d.counter("tx_loopback"), 6);
    assert_eq!(d.counter("tx_underlay"), 0);
}

#[test]
fn geneve_from_the_underlay_reaches_the_guest_and_nothing_else_is_taken() {
    if !root_or_skip() {
        return;
    }
    let (w1, w2) = (Veth::new(), Veth::new());
    let d = daemon(None);
    d.hdl().set_xde_underlay(&w1.0, &w2.0).unwrap();
    let here = guest(79, 5, 0);
    let peer = guest(79, 9, 1);
    let port = unique("xp");
    let _ns = guest_in_netns(&d, None, &port, &here);
    // Where the peer lives, so that the guest's reply can be encapsulated to it.
    map_peer(&d, &peer);
    // The peer's sled, simulated, makes the frame a real sled would send: an echo request
    // from 172.30.0.9 to 172.30.0.5, Geneve from sled 1 to sled 0.
    let mut rack = Rack::new("daemon_rx", 2);
    rack.add_guest(1, "peer", &peer);
    rack.map_guest(1, &here);
    let echo = L4::Echo { id: 0x77, seq: 1 };
    rack.send(
        1,
        "peer",
        from_guest(&peer, ip4(&peer), ip4(&here), echo, b"over the wire"),
    );
    let mut frame = rack
        .wire
        .iter()
        .find(|f| f.from == 1)
        .expect("sled 1 sent the request")
        .bytes
        .clone();
    assert_eq!(frame[38..54], sled_ip(0).bytes(), "to sled 0");
    let mac: opte_api::MacAddr =
        std::fs::read_to_string(format!("/sys/class/net/{}/address", w1.0))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
    frame[..6].copy_from_slice(&mac.bytes());

    // Noise the filter must keep away: IPv6/UDP to another port, and ARP.
    let mut not_geneve = frame.clone();
    not_geneve[56..58].copy_from_slice(&4789u16.to_be_bytes());
    inject(&w1.1, &not_geneve);
    let mut arp = frame[..60].to_vec();
    arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    inject(&w1.1, &arp);
    inject(&w1.1, &frame);

    // The guest's kernel got the request and answered: the answer is encapsulated to sled
    // 1, and there this daemon stops, having no next hop to reach it yet.
    let until = Instant::now() + Duration::from_secs(5);
    while d.counter("tx_no_route") == 0 {
        assert!(Instant::now() < until, "no reply came back: {}", d.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(d.counter("rx_delivered"), 1);
    let parse_drops: u64 = [
        "in_drop_unwanted_proto",
        "in_drop_truncated",
        "in_drop_misc",
    ]
    .iter()
    .map(|c| d.counter(c))
    .sum();
    assert_eq!(parse_drops, 0, "the filter let other traffic through");
    assert_eq!(d.counter("rx_no_port"), 0);
}

/// The first Geneve frame that arrives on link `name` of namespace `ns` within 10 s, read
/// by a thread that enters the namespace (the rest of the test stays where it is).
fn capture_geneve(ns: &str, name: &str) -> std::thread::JoinHandle<Option<Vec<u8>>> {
    use nix::libc;
    let name = name.to_string();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let h = in_netns(ns, move || {
        let ifindex = nix::net::if_::if_nametoindex(name.as_str()).unwrap();
        // SAFETY: socket(2), bind(2), setsockopt(2), recv(2) and close(2) on a socket this
        // thread alone uses, with buffers alive across each call.
        unsafe {
            let fd = libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW,
                i32::from((libc::ETH_P_ALL as u16).to_be()),
            );
            assert!(fd >= 0);
            let mut sll: libc::sockaddr_ll = std::mem::zeroed();
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
            sll.sll_ifindex = ifindex as i32;
            assert_eq!(
                libc::bind(
                    fd,
                    std::ptr::addr_of!(sll).cast(),
                    std::mem::size_of::<libc::sockaddr_ll>() as u32
                ),
                0
            );
            let tv = libc::timeval {
                tv_sec: 1,
                tv_usec: 0,
            };
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                std::ptr::addr_of!(tv).cast(),
                std::mem::size_of::<libc::timeval>() as u32,
            );
            ready_tx.send(()).unwrap();
            let until = Instant::now() + Duration::from_secs(10);
            let mut buf = vec![0u8; 9216];
            let mut got = None;
            while got.is_none() && Instant::now() < until {
                let n = libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0);
                if n >= 58 {
                    let f = &buf[..n as usize];
                    if f[12..14] == [0x86, 0xdd]
                        && f[20] == 17
                        && f[56..58] == 6081u16.to_be_bytes()
                    {
                        got = Some(f.to_vec());
                    }
                }
            }
            libc::close(fd);
            got
        }
    });
    ready_rx.recv().unwrap();
    h
}

#[test]
fn a_guest_reaches_another_sled_through_the_kernels_next_hop() {
    if !root_or_skip() {
        return;
    }
    let (w1, w2) = (Veth::new(), Veth::new());
    // The far end of underlay 1 is another host: a namespace holding the peer sled's
    // address, found by the kernel's neighbour discovery.
    let wire = Netns::new("xdet");
    ok("ip", &["link", "set", &w1.1, "netns", wire.name()]);
    wire.exec(&["ip", "link", "set", &w1.1, "up"]);
    wire.exec(&["ip", "addr", "add", "fd00:77::2/64", "dev", &w1.1, "nodad"]);
    ok(
        "ip",
        &["addr", "add", "fd00:77::1/64", "dev", &w1.0, "nodad"],
    );
    let d = daemon(None);
    d.hdl().set_xde_underlay(&w1.0, &w2.0).unwrap();
    let mut here = guest(80, 5, 0);
    let mut peer = guest(80, 9, 1);
    here.phys_ip = "fd00:77::1".parse().unwrap();
    peer.phys_ip = "fd00:77::2".parse().unwrap();
    let port = unique("xp");
    let ns = guest_in_netns(&d, None, &port, &here);
    map_peer(&d, &peer);

    let cap = capture_geneve(wire.name(), &w1.1);
    // Nobody answers on the far side; the echo requests are what is looked for.
    let _ = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns.name(),
            "ping",
            "-c",
            "10",
            "-i",
            "0.2",
            "-W",
            "1",
        ])
        .arg("172.30.0.9")
        .output();
    let frame = cap
        .join()
        .unwrap()
        .expect("a Geneve frame reached the other host");

    let w1_mac = std::fs::read_to_string(format!("/sys/class/net/{}/address", w1.0)).unwrap();
    let far_mac = wire.exec(&["cat", &format!("/sys/class/net/{}/address", w1.1)]);
    let mac = |b: &[u8]| {
        b.iter()
            .map(|x| format!("{x:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    assert_eq!(
        mac(&frame[6..12]),
        w1_mac.trim(),
        "source: the underlay link"
    );
    assert_eq!(
        mac(&frame[0..6]),
        far_mac.trim(),
        "destination: the neighbour's MAC"
    );
    let n =
        opte::packet::parse::parse_network(&mut opte::packet::Packet::copy_from(&frame)).unwrap();
    assert_eq!(n.outer.src, here.phys_ip);
    assert_eq!(n.outer.dst, peer.phys_ip);
    assert_eq!(n.outer.geneve.vni, here.vni);
    assert_eq!(n.inner.flow.addrs.src(), ip4(&here));
    assert_eq!(n.inner.flow.addrs.dst(), ip4(&peer));
    assert!(d.counter("tx_underlay") >= 1);

    // tshark reads the captured frame as the rack's switch would: Geneve over IPv6, the
    // VNI, the inner packet, and not a checksum or a field it finds wrong.
    let pcap = d.dir.join("underlay.pcap");
    {
        let mut w = opte::pcap::PcapWriter::new(std::fs::File::create(&pcap).unwrap()).unwrap();
        w.write_frame(0, &frame).unwrap();
        w.flush().unwrap();
    }
    let bad = xde_lab::tshark_problems(&pcap, "");
    assert!(bad.trim().is_empty(), "tshark: {bad}");
    let mut args = vec!["-T", "fields", "-E", "separator=|"];
    for f in [
        "ipv6.dst",
        "udp.dstport",
        "geneve.vni",
        "ip.src",
        "ip.dst",
        "icmp.type",
    ] {
        args.extend(["-e", f]);
    }
    let fields = xde_lab::tshark(&pcap, &args);
    assert_eq!(
        fields.trim(),
        "fd00:77::2|6081|0x000050|172.30.0.5|172.30.0.9|8",
        "tshark's reading of the frame"
    );
    drop(ns);
}

#[test]
fn guests_on_two_sleds_move_tcp_data_through_two_daemons() {
    if !root_or_skip() {
        return;
    }
    // Two sleds, each a namespace running its own daemon; underlay 1 of each joined by one
    // wire, underlay 2 by another.
    let (sled_a, sled_b) = (Netns::new("xdet"), Netns::new("xdet"));
    let (w1, w2) = (Veth::new(), Veth::new());
    for (w, a_addr, b_addr) in [
        (&w1, "fd00:1::a/64", "fd00:1::b/64"),
        (&w2, "fd00:2::a/64", "fd00:2::b/64"),
    ] {
        ok("ip", &["link", "set", &w.0, "netns", sled_a.name()]);
        ok("ip", &["link", "set", &w.1, "netns", sled_b.name()]);
        // A jumbo underlay, as the rack's: a full guest frame plus Geneve fits.
        sled_a.exec(&["ip", "link", "set", &w.0, "mtu", "9000", "up"]);
        sled_b.exec(&["ip", "link", "set", &w.1, "mtu", "9000", "up"]);
        sled_a.exec(&["ip", "addr", "add", a_addr, "dev", &w.0, "nodad"]);
        sled_b.exec(&["ip", "addr", "add", b_addr, "dev", &w.1, "nodad"]);
    }
    // Each sled's own address is on its loopback, reachable over both links (ECMP); a
    // link whose carrier is gone is no way there.
    for (ns, me, them, via, links) in [
        (
            &sled_a,
            "fd00:a::1/128",
            "fd00:b::1/128",
            ["fd00:1::b", "fd00:2::b"],
            [&w1.0, &w2.0],
        ),
        (
            &sled_b,
            "fd00:b::1/128",
            "fd00:a::1/128",
            ["fd00:1::a", "fd00:2::a"],
            [&w1.1, &w2.1],
        ),
    ] {
        ns.exec(&[
            "sysctl",
            "-q",
            "-w",
            "net.ipv6.conf.all.ignore_routes_with_linkdown=1",
        ]);
        ns.exec(&["ip", "addr", "add", me, "dev", "lo"]);
        ns.exec(&[
            "ip", "-6", "route", "add", them, "nexthop", "via", via[0], "dev", links[0], "nexthop",
            "via", via[1], "dev", links[1],
        ]);
    }
    // Sled A reads its underlay through receive rings, sled B with recvmmsg (the fallback
    // where the kernel makes no ring): both ways of reading carry the transfer below.
    let da = daemon(Some(&sled_a));
    let db = Daemon::start_with(
        Path::new(env!("CARGO_BIN_EXE_xded")),
        Some(&sled_b),
        &["--no-rx-rings"],
    )
    .unwrap();
    da.hdl().set_xde_underlay(&w1.0, &w2.0).unwrap();
    db.hdl().set_xde_underlay(&w1.1, &w2.1).unwrap();
    assert!(da.log().contains("rx_ring=true"), "{}", da.log());
    assert!(db.log().contains("rx_ring=false"), "{}", db.log());
    let (mut ga, mut gb) = (guest(81, 5, 0), guest(81, 6, 1));
    ga.phys_ip = "fd00:a::1".parse().unwrap();
    gb.phys_ip = "fd00:b::1".parse().unwrap();
    let (pa, pb) = (unique("xp"), unique("xp"));
    let na = guest_in_netns(&da, Some(&sled_a), &pa, &ga);
    let nb = guest_in_netns(&db, Some(&sled_b), &pb, &gb);
    map_peer(&da, &gb);
    map_peer(&db, &ga);

    // A packet whose next hop the kernel has not resolved yet is dropped while it resolves
    // it (a counted drop, never a frame to a zero MAC). Each sled's kernel learns its
    // neighbours on both links first, so that no ping below loses its first packet.
    for (ns, peers) in [
        (&sled_a, ["fd00:1::b", "fd00:2::b"]),
        (&sled_b, ["fd00:1::a", "fd00:2::a"]),
    ] {
        for p in peers {
            ns.exec(&["ping", "-c", "1", "-W", "2", p]);
        }
    }
    let ping = na.exec(&["ping", "-c", "3", "-i", "0.2", "-W", "2", "172.30.0.6"]);
    assert!(ping.contains("3 received"), "{ping}");

    // TCP: 32 MiB from guest A to guest B, sent by a thread in A's namespace (paced, so
    // that it lasts) and read to the end by one in B's. Midway, the underlay link the flow
    // is on goes down: the flow moves to the other and the same count and the same CRC-32
    // arrive at both ends.
    let data: Vec<u8> = (0..32usize << 20).map(|i| (i * 7 % 251) as u8).collect();
    let want = (data.len(), crc32fast::hash(&data));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server = in_netns(nb.name(), move || {
        let l = std::net::TcpListener::bind("172.30.0.6:7777").unwrap();
        ready_tx.send(()).unwrap();
        let (mut conn, _) = l.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let (mut n, mut crc, mut buf) = (0usize, crc32fast::Hasher::new(), vec![0u8; 65536]);
        loop {
            match conn.read(&mut buf).unwrap() {
                0 => break,
                k => {
                    n += k;
                    crc.update(&buf[..k]);
                }
            }
        }
        (n, crc.finalize())
    });
    ready_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let t0 = Instant::now();
    let client = in_netns(na.name(), move || {
        let mut conn = std::net::TcpStream::connect_timeout(
            &"172.30.0.6:7777".parse().unwrap(),
            Duration::from_secs(10),
        )
        .unwrap();
        conn.set_write_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        for chunk in data.chunks(64 << 10) {
            conn.write_all(chunk).unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
        conn.shutdown(std::net::Shutdown::Write).unwrap();
    });
    // Bytes, not packets: a link may carry a super-frame's segments as one datagram.
    let tx_bytes = |l: &str| -> u64 {
        sled_a
            .exec(&["cat", &format!("/sys/class/net/{l}/statistics/tx_bytes")])
            .trim()
            .parse()
            .unwrap()
    };
    std::thread::sleep(Duration::from_millis(300));
    let (busy, other) = if tx_bytes(&w1.0) >= tx_bytes(&w2.0) {
        (&w1.0, &w2.0)
    } else {
        (&w2.0, &w1.0)
    };
    let other_before = tx_bytes(other);
    sled_a.exec(&["ip", "link", "set", busy, "down"]);
    client.join().unwrap();
    let got = server.join().unwrap();
    let secs = t0.elapsed().as_secs_f64();
    assert_eq!(got, want, "bytes and CRC-32 received");
    assert!(
        tx_bytes(other) > other_before + (4 << 20),
        "the rest of the transfer (megabytes of it) left by the other link"
    );
    eprintln!(
        "32 MiB across two sleds in {secs:.2} s, a link lost midway ({:.0} Mbit/s)",
        32.0 * 8.0 * 1.048_576 / secs
    );
    assert!(da.counter("tx_underlay") > 100);
    assert!(db.counter("rx_delivered") > 100);

    // UDP: 1,000 numbered datagrams of 1,000 bytes, paced; every one arrives, intact.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server = in_netns(nb.name(), move || {
        let s = std::net::UdpSocket::bind("172.30.0.6:7778").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        ready_tx.send(()).unwrap();
        let (mut seen, mut buf) = (std::collections::BTreeSet::new(), [0u8; 2048]);
        while let Ok(n) = s.recv(&mut buf) {
            let i = u32::from_be_bytes(buf[..4].try_into().unwrap());
            if n == 1000 && buf[4..n].iter().all(|&b| b == i as u8) {
                seen.insert(i);
            }
            if seen.len() == 1000 {
                break;
            }
        }
        seen.len()
    });
    ready_rx.recv().unwrap();
    in_netns(na.name(), || {
        let s = std::net::UdpSocket::bind("172.30.0.5:0").unwrap();
        for i in 0u32..1000 {
            let mut d = vec![i as u8; 1000];
            d[..4].copy_from_slice(&i.to_be_bytes());
            s.send_to(&d, "172.30.0.6:7778").unwrap();
            std::thread::sleep(Duration::from_micros(200));
        }
    })
    .join()
    .unwrap();
    assert_eq!(
        server.join().unwrap(),
        1000,
        "UDP datagrams received intact"
    );
}

/// Whether a TCP connection from namespace `from` to `to:7777` opens within a second
/// (a listener in namespace `server_ns` accepts it).
fn tcp_opens(from: &Netns, server_ns: &Netns, to: &'static str) -> bool {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server = in_netns(server_ns.name(), move || {
        let l = std::net::TcpListener::bind(format!("{to}:7777")).unwrap();
        l.set_nonblocking(true).unwrap();
        ready_tx.send(()).unwrap();
        let until = Instant::now() + Duration::from_secs(2);
        while Instant::now() < until {
            if l.accept().is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    });
    ready_rx.recv().unwrap();
    let client = in_netns(from.name(), move || {
        std::net::TcpStream::connect_timeout(
            &format!("{to}:7777").parse().unwrap(),
            Duration::from_secs(1),
        )
        .is_ok()
    });
    let connected = client.join().unwrap();
    let accepted = server.join().unwrap();
    assert_eq!(connected, accepted);
    connected
}

#[test]
fn a_firewall_rule_opens_inbound_tcp_and_its_removal_closes_it() {
    if !root_or_skip() {
        return;
    }
    let (_under, d) = host_with_underlay();
    let (c1, c2) = (guest(82, 5, 0), guest(82, 6, 0));
    let (p1, p2) = (unique("xp"), unique("xp"));
    let n1 = guest_in_netns(&d, None, &p1, &c1);
    let n2 = guest_in_netns(&d, None, &p2, &c2);
    // Guest 2 admits ICMP only.
    d.hdl()
        .set_firewall_rules(&SetFwRulesReq {
            port_name: p2.clone(),
            rules: vec![
                "dir=in action=allow priority=65534 protocol=icmp"
                    .parse()
                    .unwrap(),
            ],
        })
        .unwrap();
    assert!(
        !tcp_opens(&n1, &n2, "172.30.0.6"),
        "no rule admits TCP 7777"
    );
    d.hdl()
        .add_firewall_rule(&AddFwRuleReq {
            port_name: p2.clone(),
            rule: "dir=in action=allow priority=10 protocol=tcp port=7777"
                .parse()
                .unwrap(),
        })
        .unwrap();
    assert!(tcp_opens(&n1, &n2, "172.30.0.6"), "the new rule admits it");
    let layer = d.hdl().dump_layer(&p2, "firewall").unwrap();
    let id = layer
        .rules_in
        .iter()
        .find(|r| r.rule.priority == 10)
        .map(|r| r.id)
        .unwrap();
    d.hdl()
        .remove_firewall_rule(&RemFwRuleReq {
            port_name: p2.clone(),
            dir: opte_api::Direction::In,
            id,
        })
        .unwrap();
    assert!(
        !tcp_opens(&n1, &n2, "172.30.0.6"),
        "removing the rule closes new connections"
    );
}

#[test]
fn guests_of_two_vpcs_on_one_host_cannot_reach_each_other() {
    if !root_or_skip() {
        return;
    }
    let (_under, d) = host_with_underlay();
    // The same subnet in two VPCs: only the VNI tells them apart.
    let (c1, c2) = (guest(84, 5, 0), guest(85, 6, 0));
    let (p1, p2) = (unique("xp"), unique("xp"));
    let n1 = guest_in_netns(&d, None, &p1, &c1);
    let n2 = guest_in_netns(&d, None, &p2, &c2);
    for (from, to) in [(&n1, "172.30.0.6"), (&n2, "172.30.0.5")] {
        let out = run(
            "ip",
            &[
                "netns",
                "exec",
                from.name(),
                "ping",
                "-c",
                "2",
                "-i",
                "0.2",
                "-W",
                "1",
                to,
            ],
        );
        assert!(!out.status.success(), "{to} answered across VPCs");
    }
    assert_eq!(d.counter("tx_loopback"), 0);
    assert_eq!(d.counter("tx_underlay"), 0);
    // Each still reaches its own gateway.
    let ping = n1.exec(&["ping", "-c", "1", "-W", "2", "172.30.0.1"]);
    assert!(ping.contains("1 received"), "{ping}");
}

#[test]
fn a_port_whose_namespace_is_deleted_is_left_alone_until_it_is_deleted() {
    if !root_or_skip() {
        return;
    }
    let (_under, d) = host_with_underlay();
    let port = unique("xp");
    let ns = guest_in_netns(&d, None, &port, &guest(86, 5, 0));
    // The container goes without telling anyone: its TAP goes with its namespace.
    drop(ns);
    std::thread::sleep(Duration::from_millis(500));
    let gone = "the port's TAP is gone";
    assert_eq!(d.log().matches(gone).count(), 1, "said once: {}", d.log());
    // The daemon still serves, and the port can be deleted.
    assert_eq!(d.hdl().list_ports().unwrap().ports.len(), 1);
    d.hdl().delete_xde(&port).unwrap();
    assert!(d.hdl().list_ports().unwrap().ports.is_empty());
}

/// The `opteadm` binary of this build, beside `xded` (`cargo test --workspace` builds
/// both); `None`, skipping, if only this crate was built, outside CI.
fn opteadm() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_BIN_EXE_xded")).with_file_name("opteadm");
    if p.exists() {
        return Some(p);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{} is missing: cargo xtask test builds it",
        p.display()
    );
    eprintln!("skipped: no opteadm beside xded (build the workspace)");
    None
}

/// `opteadm --socket SOCK args…` with `stdin`: exit success, stdout and stderr.
fn opteadm_run(adm: &Path, sock: &Path, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = Command::new(adm)
        .arg("--socket")
        .arg(sock)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn opteadm_configures_the_daemon() {
    if !root_or_skip() {
        return;
    }
    let Some(adm) = opteadm() else {
        return;
    };
    let under = Veth::new();
    let mut d = daemon(None);
    let sock = d.sock();
    let adm = |args: &[&str], stdin: &str| opteadm_run(&adm, &sock, args, stdin);
    let (okay, _, err) = adm(&["set-xde-underlay", &under.0, &under.1], "");
    assert!(okay, "{err}");
    let port = unique("xp");
    let create = [
        "create-xde",
        &port,
        "--guest-mac",
        "a8:40:25:00:00:05",
        "--private-ip",
        "172.30.0.5",
        "--vpc-subnet",
        "172.30.0.0/22",
        "--gateway-mac",
        "a8:40:25:ff:77:77",
        "--gateway-ip",
        "172.30.0.1",
        "--vpc-vni",
        "100",
        "--src-underlay-addr",
        "fd00::1",
    ];
    let (okay, _, err) = adm(&create, "");
    assert!(okay, "{err}");
    assert!(link_exists(&port));
    let (okay, out, err) = adm(&["list-ports"], "");
    assert!(
        okay && out.contains(&port) && out.contains("172.30.0.5"),
        "{out}{err}"
    );
    // Firewall rules from stdin, one a line, comments skipped; read back from the layer.
    let rules = "# ssh and ping only\ndir=in action=allow priority=10 protocol=tcp port=22\n\ndir=in action=allow priority=20 protocol=icmp\n";
    let (okay, _, err) = adm(&["set-fw-rules", "-p", &port], rules);
    assert!(okay, "{err}");
    let (okay, out, err) = adm(&["--json", "dump-layer", "-p", &port, "firewall"], "");
    assert!(okay, "{err}");
    let layer: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(layer["rules_in"].as_array().map(Vec::len), Some(2), "{out}");
    // A command the daemon refuses is an error, in words, with a non-zero exit.
    let (okay, _, err) = adm(&create, "");
    assert!(!okay && err.starts_with("opteadm: "), "{err}");
    let (okay, _, err) = adm(&["delete-xde", &port], "");
    assert!(okay, "{err}");
    assert!(!link_exists(&port));
    assert!(d.stop().success());
    let (okay, _, err) = adm(&["list-ports"], "");
    assert!(!okay && err.contains("not running"), "{err}");
}

#[test]
fn the_daemon_survives_bad_clients_and_refuses_a_second_instance() {
    if !root_or_skip() {
        return;
    }
    let mut d = daemon(None);
    let sock = d.sock();

    // A second daemon on the same socket says why it will not start.
    let second = Command::new(env!("CARGO_BIN_EXE_xded"))
        .arg("--socket")
        .arg(&sock)
        .output()
        .unwrap();
    assert!(!second.status.success());
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("already serving"),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );

    // A client that connects and says nothing does not hold up the others.
    let _stalled = UnixStream::connect(&sock).unwrap();
    let t = Instant::now();
    assert!(d.hdl().list_ports().unwrap().ports.is_empty());
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "a stalled client held up another"
    );

    // A frame announcing more than the limit is refused without being read.
    let mut s = UnixStream::connect(&sock).unwrap();
    s.write_all(&u32::MAX.to_be_bytes()).unwrap();
    match response(&mut s) {
        ControlResponse::Err(OpteError::DeserCmdReq(m)) => assert!(m.contains("exceeds"), "{m}"),
        other => panic!("expected a refusal of the size, got {other:?}"),
    }

    // Garbage of a plausible size is refused as undecodable.
    let mut s = UnixStream::connect(&sock).unwrap();
    s.write_all(&5u32.to_be_bytes()).unwrap();
    s.write_all(&[0xff; 5]).unwrap();
    match response(&mut s) {
        ControlResponse::Err(OpteError::DeserCmdReq(_)) => {}
        other => panic!("expected an undecodable request, got {other:?}"),
    }

    // A truncated request and a hang-up change nothing.
    let mut s = UnixStream::connect(&sock).unwrap();
    s.write_all(&100u32.to_be_bytes()).unwrap();
    s.write_all(&[1, 2, 3]).unwrap();
    drop(s);

    // Still serving, still empty.
    assert!(d.hdl().list_ports().unwrap().ports.is_empty());
    let status = d.stop();
    assert!(status.success(), "xded exited with {status}: {}", d.log());
    assert!(!sock.exists());
    // With the daemon gone, the client says so plainly.
    let e = d.hdl().list_ports().unwrap_err();
    assert!(e.to_string().contains("not running"), "{e}");
}

/// Read one response frame.
fn response(s: &mut UnixStream) -> ControlResponse {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut header = [0u8; FRAME_HEADER_LEN];
    s.read_exact(&mut header).unwrap();
    let mut body = vec![0u8; frame_body_len(header).unwrap()];
    s.read_exact(&mut body).unwrap();
    ControlResponse::from_frame_body(&body).unwrap()
}

#[test]
fn a_client_that_is_not_root_is_refused() {
    if !root_or_skip() {
        return;
    }
    let d = daemon(None);
    // Open the socket to everyone, so that only the daemon's own check stands in the way.
    std::fs::set_permissions(&d.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(d.sock(), std::fs::Permissions::from_mode(0o666)).unwrap();
    // A copy of this test binary that `nobody` may run wherever the checkout lives.
    let me = d.dir.join("client");
    std::fs::copy(std::env::current_exe().unwrap(), &me).unwrap();
    std::fs::set_permissions(&me, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new(&me)
        .args(["--exact", "client_as_nobody", "--nocapture"])
        .env(NOBODY_SOCKET, d.sock())
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "the client ran: {text}");
    assert!(d.log().contains("not root"), "{}", d.log());
    // Root is still served.
    assert!(d.hdl().list_ports().unwrap().ports.is_empty());
}

/// Where `client_as_nobody` finds the daemon.
const NOBODY_SOCKET: &str = "XDED_TEST_NOBODY_SOCKET";

/// The client half of `a_client_that_is_not_root_is_refused`, which runs this test binary
/// again as user `nobody` with [`NOBODY_SOCKET`] set; run on its own, it has nothing to do.
#[test]
fn client_as_nobody() {
    let Some(sock) = std::env::var_os(NOBODY_SOCKET) else {
        return;
    };
    assert!(!nix::unistd::geteuid().is_root());
    let e = OpteHdl::new(UnixTransport::new(PathBuf::from(sock)))
        .list_ports()
        .unwrap_err();
    assert!(e.to_string().contains("only root may configure"), "{e}");
}

#[test]
fn a_daemon_killed_outright_leaves_a_socket_the_next_one_replaces() {
    if !root_or_skip() {
        return;
    }
    let mut d = daemon(None);
    d.proc.kill();
    assert!(d.sock().exists(), "SIGKILL leaves the socket file");
    // A new daemon on the same path: the dead one's socket answers no one, so it is replaced.
    d.proc = Proc::spawn(
        Command::new(env!("CARGO_BIN_EXE_xded"))
            .arg("--socket")
            .arg(d.sock())
            .arg("--log")
            .arg("json")
            .arg("--no-state")
            .stderr(std::fs::File::create(d.dir.join("xded.log")).unwrap()),
    )
    .unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    while d.hdl().list_ports().is_err() {
        assert!(
            Instant::now() < until,
            "the new daemon never answered: {}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = d.stop();
    assert!(status.success());
    // Its log is one JSON object a line.
    let log = d.log();
    assert!(log.lines().count() >= 3, "{log}");
    for line in log.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v.get("level").is_some() && v.get("fields").is_some(),
            "{line}"
        );
    }
    assert!(
        log.contains("removing the socket of a daemon that is gone"),
        "{log}"
    );
}

/// Open TAP `name` as a VMM does (QEMU `-netdev tap,ifname=NAME`): TUNSETIFF by name with
/// a 12-byte virtio-net header.
fn open_tap_as_vmm(name: &str) -> std::io::Result<std::fs::File> {
    use nix::libc;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    nix::ioctl_write_ptr_bad!(tun_set_iff, libc::TUNSETIFF, libc::ifreq);
    nix::ioctl_write_ptr_bad!(tun_set_vnet_hdr_sz, libc::TUNSETVNETHDRSZ, libc::c_int);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/net/tun")?;
    // SAFETY: `ifreq` is plain old data; the ioctls get a valid tun fd and pointers to
    // values alive across each call.
    unsafe {
        let mut ifr: libc::ifreq = std::mem::zeroed();
        for (d, s) in ifr.ifr_name.iter_mut().zip(name.bytes()) {
            *d = s as libc::c_char;
        }
        ifr.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR) as i16;
        tun_set_iff(f.as_raw_fd(), &ifr)?;
        tun_set_vnet_hdr_sz(f.as_raw_fd(), &12)?;
    }
    Ok(f)
}

/// A VM's virtio-net device takes super-frames of 64 KiB, more than an encapsulation leaves
/// room for: the daemon splits such a frame at a segment boundary and both parts go on. A
/// VM (a VMM writing its TAP) sends one UDP super-frame (USO, its checksum left partial as
/// a guest leaves it) of 46 datagrams' worth to a guest of the same host, which receives
/// every datagram, in order, byte for byte.
#[test]
fn a_vms_64k_super_frame_is_split_and_every_datagram_arrives() {
    if !root_or_skip() {
        return;
    }
    let (_under, d) = host_with_underlay();
    let (vm_cfg, g_cfg) = (guest(89, 5, 0), guest(89, 6, 0));
    let vm_port = unique("xv");
    d.hdl()
        .create_xde_attached(
            &vm_port,
            vm_cfg.clone(),
            Some(1500),
            oxide_vpc::api::PortAttach::Vmm,
        )
        .unwrap();
    // The VM's port routes its subnet and lets its traffic out, as a guest's does.
    let sub = IpCidr::Ip4(vm_cfg.ipv4().unwrap().vpc_subnet);
    d.hdl()
        .add_router_entry(&AddRouterEntryReq {
            port_name: vm_port.clone(),
            dest: sub,
            target: RouterTarget::VpcSubnet(sub),
            class: RouterClass::System,
        })
        .unwrap();
    d.hdl()
        .set_firewall_rules(&SetFwRulesReq {
            port_name: vm_port.clone(),
            rules: default_fw_rules(vm_cfg.vni),
        })
        .unwrap();
    let gp = unique("xp");
    let ns = guest_in_netns(&d, None, &gp, &g_cfg);
    const SEG: usize = 1420;
    const SEGS: usize = 46;
    let data: Vec<u8> = (0..SEG * SEGS).map(|i| (i * 13 % 251) as u8).collect();
    let want = data.clone();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server = in_netns(ns.name(), move || {
        let s = std::net::UdpSocket::bind("172.30.0.6:9999").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        ready_tx.send(()).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 65536];
        while got.len() < SEGS {
            match s.recv(&mut buf) {
                Ok(n) => got.push(buf[..n].to_vec()),
                Err(_) => break,
            }
        }
        got
    });
    ready_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let udp = L4::Udp {
        sport: 7777,
        dport: 9999,
    };
    let mut frame = from_guest(&vm_cfg, ip4(&vm_cfg), ip4(&g_cfg), udp, &data);
    assert!(
        frame.len() > 65_300,
        "longer than an encapsulation leaves room for: {}",
        frame.len()
    );
    let m = opte::packet::parse::parse_guest(&mut opte::packet::Packet::copy_from(&frame)).unwrap();
    let lay = xde::offload::Layout::of_inner(&m).unwrap();
    // Partial, as the guest's stack leaves it: the pseudo-header's sum only.
    lay.merge_headers(&mut frame, data.len(), false).unwrap();
    let mut hdr = [0u8; 12];
    hdr[0] = 1; // NEEDS_CSUM
    hdr[1] = 5; // UDP_L4
    hdr[2..4].copy_from_slice(&(lay.payload as u16).to_le_bytes());
    hdr[4..6].copy_from_slice(&(SEG as u16).to_le_bytes());
    hdr[6..8].copy_from_slice(&(lay.l4 as u16).to_le_bytes());
    hdr[8..10].copy_from_slice(&6u16.to_le_bytes());
    let mut vm = open_tap_as_vmm(&vm_port).expect("a VMM opens the port's TAP by name");
    vm.write_all(&[&hdr[..], &frame].concat()).unwrap();
    let got = server.join().unwrap();
    let counters = [
        "tx_loopback",
        "out_drop_bad_offload",
        "tx_port_drop",
        "out_drop_bad_len",
    ]
    .map(|c| (c, d.counter(c)));
    assert_eq!(got.len(), SEGS, "every datagram; {counters:?}\n{}", d.log());
    for (i, g) in got.iter().enumerate() {
        assert!(g[..] == want[i * SEG..(i + 1) * SEG], "datagram {i}");
    }
    assert_eq!(
        d.counter("tx_loopback"),
        2,
        "two parts, each handed over whole"
    );
    assert_eq!(d.counter("out_drop_bad_offload"), 0);
    d.hdl().delete_xde(&vm_port).unwrap();
    drop(vm);
}

/// The next frame the VMM's side of a TAP reads within 3 s, its virtio-net header off.
fn vmm_read(f: &mut std::fs::File) -> Option<Vec<u8>> {
    let until = Instant::now() + Duration::from_secs(3);
    let mut buf = vec![0u8; 9216];
    while Instant::now() < until {
        match f.read(&mut buf) {
            Ok(n) if n > 12 => return Some(buf[12..n].to_vec()),
            _ => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    None
}

#[test]
fn a_vmm_opens_its_port_by_name_and_the_gateway_answers_it() {
    if !root_or_skip() {
        return;
    }
    let (_under, mut d) = host_with_underlay();
    let cfg = guest(87, 5, 0);
    let port = unique("xv");
    d.hdl()
        .create_xde_attached(
            &port,
            cfg.clone(),
            Some(1500),
            oxide_vpc::api::PortAttach::Vmm,
        )
        .unwrap();
    assert!(link_exists(&port));
    let v6 = std::fs::read_to_string(format!("/proc/sys/net/ipv6/conf/{port}/disable_ipv6"));
    assert_eq!(
        v6.unwrap().trim(),
        "1",
        "the host keeps quiet on the VM's TAP"
    );

    // The VMM opens the TAP by name (the daemon does not hold it) and the guest pings
    // the gateway through it: the gateway's answer comes back to the VMM.
    let mut vm = open_tap_as_vmm(&port).expect("a VMM opens the port's TAP by name");
    let echo = L4::Echo { id: 0x51, seq: 1 };
    let req = from_guest(&cfg, ip4(&cfg), "172.30.0.1".parse().unwrap(), echo, b"vm");
    vm.write_all(&[vec![0u8; 12], req].concat()).unwrap();
    let reply = vmm_read(&mut vm).expect("the gateway answered the VM");
    let m = opte::packet::parse::parse_guest(&mut opte::packet::Packet::copy_from(&reply)).unwrap();
    assert_eq!(m.eth.dst, cfg.guest_mac);
    assert_eq!(m.flow.addrs.src().to_string(), "172.30.0.1");
    assert_eq!(m.flow.proto_info[0] >> 8, 0, "an echo reply");
    assert_eq!(d.counter("tx_hairpin"), 1);

    // delete-xde removes the TAP although the VMM still has it open.
    d.hdl().delete_xde(&port).unwrap();
    assert!(!link_exists(&port), "the VMM's TAP outlived delete-xde");
    drop(vm);

    // And the daemon's exit removes a VMM's TAP too.
    let port2 = unique("xv");
    d.hdl()
        .create_xde_attached(&port2, cfg, None, oxide_vpc::api::PortAttach::Vmm)
        .unwrap();
    assert!(link_exists(&port2));
    assert!(d.stop().success(), "{}", d.log());
    assert!(
        !link_exists(&port2),
        "the daemon's exit deletes the VMM's TAP"
    );
}

/// A small deterministic generator for the fuzzing client (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// `s` with every hit counter (`hits: N`, `default_in_hits: N`, …) blanked: the host's own
/// stack may send from a port's TAP at any time, and that is traffic, not configuration.
fn without_hits(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("hits: ") {
        out += &rest[..i + "hits: ".len()];
        rest = rest[i + "hits: ".len()..].trim_start_matches(|c: char| c.is_ascii_digit());
        out.push('_');
    }
    out + rest
}

/// Everything the read commands show of daemon `d` but traffic counters: two equal
/// configurations print the same.
fn state_over_socket(d: &Daemon) -> String {
    let h = d.hdl();
    let mut s = format!(
        "{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n",
        h.list_ports().unwrap(),
        h.dump_v2p().unwrap(),
        h.dump_v2b().unwrap(),
        h.dump_m2p().unwrap(),
        h.dump_mcast_fwd().unwrap(),
        h.dump_mcast_subs().unwrap(),
    );
    for p in h.list_ports().unwrap().ports {
        for l in h.list_layers(&p.name).unwrap().layers {
            s += &format!("{:?}\n", h.dump_layer(&p.name, &l.name).unwrap());
        }
        s += &format!("{:?}\n", h.dump_uft(&p.name).unwrap());
        s += &format!("{:?}\n", h.dump_tcp_flows(&p.name).unwrap());
    }
    without_hits(&s)
}

/// Send `bytes` on a new connection, then read whatever answer comes (none, if the daemon
/// hangs up): the decoded response, if there is one.
fn send_raw(sock: &Path, bytes: &[u8], close_after: bool) -> Option<ControlResponse> {
    let mut s = UnixStream::connect(sock).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    // The daemon may answer (and close) before it has read everything: a failed write is
    // then the expected end of this client.
    let _ = s.write_all(bytes);
    if close_after {
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut header = [0u8; FRAME_HEADER_LEN];
    s.read_exact(&mut header).ok()?;
    let mut body = vec![0u8; frame_body_len(header).ok()?];
    s.read_exact(&mut body).ok()?;
    ControlResponse::from_frame_body(&body).ok()
}

#[test]
fn a_fuzzing_client_changes_nothing_it_is_refused_and_the_daemon_serves_on() {
    use opte_api::{ControlRequest, OpteCmd};
    if !root_or_skip() {
        return;
    }
    let (_under, d) = host_with_underlay();
    // Something in every table the commands could touch: a port with rules and routes,
    // V2P and V2B entries.
    let cfg = guest(79, 5, 0);
    let name = unique("xf");
    let hdl = d.hdl();
    hdl.create_xde(&name, cfg.clone(), None).unwrap();
    // Keep this host's own IPv6 stack (router solicitations, MLD) off the TAP: its flows
    // would change the state under the test.
    ok(
        "sysctl",
        &["-qw", &format!("net.ipv6.conf.{name}.disable_ipv6=1")],
    );
    let sub = IpCidr::Ip4(cfg.ipv4().unwrap().vpc_subnet);
    hdl.add_router_entry(&AddRouterEntryReq {
        port_name: name.clone(),
        dest: sub,
        target: RouterTarget::VpcSubnet(sub),
        class: RouterClass::System,
    })
    .unwrap();
    hdl.set_firewall_rules(&SetFwRulesReq {
        port_name: name.clone(),
        rules: default_fw_rules(cfg.vni),
    })
    .unwrap();
    map_peer(&d, &guest(79, 6, 1));
    let sock = d.sock();
    let mut baseline = state_over_socket(&d);

    // Slow writers and stallers run alongside: a valid request a byte at a time is
    // served; one that stops past the daemon's deadline is dropped.
    let list = ControlRequest::new(OpteCmd::ListPorts, Vec::new(), 1 << 16)
        .to_frame()
        .unwrap();
    let slow: Vec<_> = (0..4)
        .map(|_| {
            let (sock, list) = (sock.clone(), list.clone());
            std::thread::spawn(move || {
                let mut s = UnixStream::connect(&sock).unwrap();
                for b in &list {
                    s.write_all(&[*b]).unwrap();
                    std::thread::sleep(Duration::from_millis(3));
                }
                response(&mut s)
            })
        })
        .collect();
    let stalled: Vec<_> = (0..2)
        .map(|_| {
            let (sock, list) = (sock.clone(), list.clone());
            std::thread::spawn(move || {
                let mut s = UnixStream::connect(&sock).unwrap();
                s.write_all(&list[..FRAME_HEADER_LEN + 1]).unwrap();
                // Past the daemon's 5 s deadline: it gives up on this client and hangs up.
                s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
                let t = Instant::now();
                let mut buf = [0u8; 1];
                let n = s.read(&mut buf);
                (n.map_err(|e| e.kind()), t.elapsed())
            })
        })
        .collect();

    let mut rng = Rng(0x5eed_0fc0_ffee);
    let cmds: Vec<OpteCmd> = OpteCmd::ALL
        .iter()
        .copied()
        // A random body that happened to be a valid port would make a TAP; every other
        // command is fair game.
        .filter(|c| *c != OpteCmd::CreateXde)
        .collect();
    let (mut refused, mut accepted, mut unanswered) = (0, 0, 0);
    for i in 0..600u32 {
        let kind = i % 4;
        let bytes = match kind {
            // Random bytes, the length announced at random (often far too large).
            0 => {
                let n = rng.below(64) as usize;
                let mut v = rng.bytes(FRAME_HEADER_LEN + n);
                if rng.below(2) == 0 {
                    v[..FRAME_HEADER_LEN].copy_from_slice(&(n as u32).to_be_bytes());
                }
                v
            }
            // A well-formed frame whose request body is random.
            1 | 2 => {
                let cmd = cmds[rng.below(cmds.len() as u64) as usize];
                let n = rng.below(48) as usize;
                ControlRequest::new(cmd, rng.bytes(n), 1 << 16)
                    .to_frame()
                    .unwrap()
            }
            // A valid request cut short: the client hangs up mid-request.
            _ => {
                let v = list.clone();
                let cut = 1 + rng.below(v.len() as u64 - 1) as usize;
                v[..cut].to_vec()
            }
        };
        match send_raw(&sock, &bytes, true) {
            Some(ControlResponse::Err(_)) => refused += 1,
            Some(ControlResponse::Ok(_)) => {
                accepted += 1;
                // A random body that was a valid request may change the state: that is
                // the new state to hold against the refusals after it.
                baseline = state_over_socket(&d);
            }
            None => unanswered += 1,
        }
        if kind == 3 {
            assert!(
                send_raw(&sock, &bytes, true).is_none(),
                "a truncated request was answered"
            );
        }
    }
    eprintln!("refused {refused}, accepted {accepted}, unanswered {unanswered}");
    assert!(refused > 300, "refused {refused}, accepted {accepted}");
    assert!(unanswered >= 150, "unanswered {unanswered}");

    for t in slow {
        match t.join().unwrap() {
            ControlResponse::Ok(_) => {}
            other => panic!("a slow writer was not served: {other:?}"),
        }
    }
    for t in stalled {
        let (r, waited) = t.join().unwrap();
        assert!(
            matches!(r, Ok(0)),
            "a stalled client was not hung up on: {r:?}"
        );
        assert!(
            waited < Duration::from_secs(12),
            "the daemon held a stalled client {waited:?}"
        );
    }
    // Nothing refused changed anything, and every well-formed request is still served.
    assert_eq!(state_over_socket(&d), baseline);
    assert_eq!(hdl.list_ports().unwrap().ports.len(), 1, "{}", d.log());
    map_peer(&d, &guest(79, 7, 1));
    assert_ne!(state_over_socket(&d), baseline);
}
