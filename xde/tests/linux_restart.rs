//! A daemon that restarts loses nothing (`--state-dir`): its configuration, its guests'
//! NICs, and (after a clean stop) its flows come back.
//!
//! One lab, two sleds, each daemon with a state directory of its own, through the whole
//! life of a sled's daemon:
//!
//! 1. SIGTERM and start under load: a byte-exact TCP stream to the other sled's guest
//!    (one connection throughout: the socket itself would see a reset) and an iperf3
//!    transfer to the internet host through SNAT both complete; the guest's NIC is the same
//!    device before and after; the daemon says it restored its configuration and flows.
//! 2. SIGKILL and start: the configuration is back (every table shows what it did before),
//!    new connections work, and a connection established before the kill carries on (the
//!    flows are rebuilt from its next packets: the firewall lets the guest's side out, and
//!    the reply in on the rebuilt state; the TCP table takes a connection it sees mid-way).
//! 3. A corrupt configuration file: refused, set aside, and the previous one used; with
//!    the previous one corrupt too, the daemon does not start, says why, and leaves the
//!    guests' NICs and the files in place; with a good file back it starts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use xde_lab::stream::{Fnv, payload, receiver, sender};
use xde_lab::vpc::{Bins, GuestSpec, INTERNET_IP, Lab, Stop};
use xde_lab::{root_or_skip, unique};

fn bins() -> Bins {
    Bins {
        xded: PathBuf::from(env!("CARGO_BIN_EXE_xded")),
        boundary: PathBuf::from(env!("CARGO_BIN_EXE_xde-boundary")),
    }
}

/// The interface index of the guest's NIC in its namespace.
fn nic_index(lab: &Lab, guest: &str) -> String {
    let out = lab
        .guest(guest)
        .ns
        .exec(&["ip", "-o", "link", "show", guest]);
    out.split(':').next().unwrap_or_default().trim().to_string()
}

/// Everything sled `s`'s daemon shows of its configuration, as text.
fn config_of(lab: &Lab, s: usize) -> String {
    let h = lab.sleds[s].daemon.hdl();
    let mut out = String::new();
    let ports = h.list_ports().unwrap();
    out += &format!("{ports:?}\n");
    out += &format!("{:?}\n", h.dump_v2p().unwrap());
    out += &format!("{:?}\n", h.dump_v2b().unwrap());
    for p in &ports.ports {
        for l in &h.list_layers(&p.name).unwrap().layers {
            let d = h.dump_layer(&p.name, &l.name).unwrap();
            // The rules, not their hit counts nor the flows: those change with traffic.
            let rules = |r: &[opte_api::RuleTableEntryDump]| {
                r.iter()
                    .map(|e| format!("{:?} {:?}", e.id, e.rule))
                    .collect::<Vec<_>>()
            };
            out += &format!(
                "{} {} {:?} {:?} {} {}\n",
                p.name,
                d.name,
                rules(&d.rules_in),
                rules(&d.rules_out),
                d.default_in,
                d.default_out
            );
        }
    }
    out
}

/// Two pings from guest ra to guest rb; ping's report.
fn ping_b(lab: &Lab) -> String {
    let b = lab.guest("rb").ip4();
    lab.guest("ra")
        .ns
        .exec(&["ping", "-c", "2", "-i", "0.2", "-W", "2", &b])
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < until, "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_restarted_daemon_keeps_its_guests_configuration_and_connections() {
    if !root_or_skip() {
        return;
    }
    let mut lab = Lab::build_with(
        &bins(),
        &unique("xrst"),
        2,
        &[
            GuestSpec::new("ra", 100, 30, 5, 0).snat("198.51.100.14", 1025..=4096),
            GuestSpec::new("rb", 100, 30, 6, 1),
        ],
        &["--state-dir", "{dir}/state"],
    )
    .unwrap();
    let state = lab.sleds[0].daemon.dir.join("state");
    let (a_ns, b_ns) = (
        lab.guest("ra").ns.name().to_string(),
        lab.guest("rb").ns.name().to_string(),
    );
    let b_addr: SocketAddr = format!("{}:7001", lab.guest("rb").ip4()).parse().unwrap();
    let nic = nic_index(&lab, "ra");
    let config = config_of(&lab, 0);
    assert!(state.join("config").is_file());
    // The tick records where the TAP is: in a's namespace, renamed or not.
    wait_for("the TAP's location recorded", || {
        std::fs::read_to_string(state.join("taps")).is_ok_and(|t| t.contains("\nra ra "))
    });

    // 1. SIGTERM and start again, two seconds into two transfers.
    let data = payload(16 << 20);
    let mut want = Fnv::new();
    want.add(&data);
    let want = (data.len() as u64, want);
    let to_b = receiver(&b_ns, b_addr);
    let mut iperf_server = lab
        .internet
        .serve(
            "iperf3",
            &["-s", "-1", "-B", INTERNET_IP],
            &format!("{INTERNET_IP}:5201"),
        )
        .unwrap();
    let t0 = Instant::now();
    let s1 = sender(&a_ns, b_addr, data, Duration::from_millis(25));
    let iperf_ns = a_ns.clone();
    let iperf = std::thread::spawn(move || {
        xde_lab::command("ip")
            .args([
                "netns",
                "exec",
                &iperf_ns,
                "iperf3",
                "-J",
                "-c",
                INTERNET_IP,
            ])
            .args(["-t", "7", "-b", "40M"])
            .output()
            .expect("iperf3 runs")
    });
    std::thread::sleep(Duration::from_secs(2));
    let down = Instant::now();
    let status = lab.stop_sled(0, Stop::Term).unwrap();
    assert!(status.success(), "{status}\n{}", lab.sleds[0].daemon.log());
    assert!(
        std::fs::read_dir(state.join("flows")).unwrap().count() == 1,
        "the stop saved port a's flows"
    );
    assert_eq!(
        nic_index(&lab, "ra"),
        nic,
        "the guest's NIC outlives the daemon"
    );
    lab.start_sled(0).unwrap();
    let downtime = down.elapsed();

    let r1 = s1.join().unwrap();
    let got = to_b.join().unwrap();
    let iperf = iperf.join().unwrap();
    iperf_server.stop();
    let log = lab.sleds[0].daemon.log();
    eprintln!(
        "restarted at {:.1} s, down {downtime:?}; transfers done at {:.1} s",
        (down - t0).as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
    assert_eq!(r1, Ok(()), "the stream to b\n{log}");
    assert_eq!(
        got,
        Ok(want),
        "b received every byte on the same connection"
    );
    let report: serde_json::Value = serde_json::from_slice(&iperf.stdout)
        .unwrap_or_else(|e| panic!("iperf3: {e}: {}", String::from_utf8_lossy(&iperf.stderr)));
    assert!(
        iperf.status.success() && report.get("error").is_none(),
        "iperf3 through SNAT: {}\nboundary: {}",
        report["error"],
        lab.boundary_log()
    );
    let (sent, received) = (
        report["end"]["sum_sent"]["bytes"].as_u64().unwrap(),
        report["end"]["sum_received"]["bytes"].as_u64().unwrap(),
    );
    assert!(received > 0 && received <= sent, "{sent} {received}");
    eprintln!("iperf3 through SNAT: {sent} bytes sent, {received} received");
    assert!(log.contains("configuration restored"), "{log}");
    assert!(log.contains("TAP opened again where it was"), "{log}");
    assert!(log.contains("flows restored"), "{log}");
    assert!(
        std::fs::read_dir(state.join("flows")).unwrap().count() == 0,
        "the flows are taken back once"
    );
    assert_eq!(nic_index(&lab, "ra"), nic);
    assert_eq!(config_of(&lab, 0), config);

    // 2. SIGKILL, with a connection established and idle; start again.
    let b2: SocketAddr = format!("{}:7002", lab.guest("rb").ip4()).parse().unwrap();
    let late = receiver(&b_ns, b2);
    // 2 MiB: a first half, the kill and start, the second half.
    let s2 = sender(&a_ns, b2, payload(2 << 20), Duration::from_millis(100));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(lab.stop_sled(0, Stop::Kill), None);
    assert_eq!(
        nic_index(&lab, "ra"),
        nic,
        "the NIC outlives a killed daemon"
    );
    lab.start_sled(0).unwrap();
    assert_eq!(config_of(&lab, 0), config, "the configuration is back");
    let log = lab.sleds[0].daemon.log();
    assert!(log.matches("configuration restored").count() == 2, "{log}");
    assert_eq!(
        s2.join().unwrap(),
        Ok(()),
        "the established connection carries on"
    );
    let mut w = Fnv::new();
    w.add(&payload(2 << 20));
    assert_eq!(late.join().unwrap(), Ok((2 << 20, w)));
    let ping = ping_b(&lab);
    assert!(ping.contains("2 received"), "new traffic works: {ping}");

    // 3. A corrupt configuration file. A change first, so the previous file differs.
    lab.sleds[0]
        .daemon
        .hdl()
        .set_v2p(&oxide_vpc::api::SetVirt2PhysReq {
            vip: "172.30.0.77".parse().unwrap(),
            phys: oxide_vpc::api::PhysNet {
                ether: "a8:40:25:00:00:77".parse().unwrap(),
                ip: "fd00:10::9".parse().unwrap(),
                vni: opte_api::Vni::new(100u32).unwrap(),
            },
        })
        .unwrap();
    let with_change = config_of(&lab, 0);
    assert!(lab.stop_sled(0, Stop::Term).unwrap().success());
    let good = std::fs::read(state.join("config")).unwrap();
    std::fs::write(state.join("config"), &good[..good.len() / 2]).unwrap();
    lab.start_sled(0).unwrap();
    let log = lab.sleds[0].daemon.log();
    assert!(
        log.contains("the configuration was refused; restoring the previous one"),
        "{log}"
    );
    assert_eq!(
        std::fs::read(state.join("config.refused")).unwrap(),
        &good[..good.len() / 2]
    );
    assert_eq!(config_of(&lab, 0), config, "the previous configuration");
    assert_ne!(config_of(&lab, 0), with_change);

    // Both files corrupt: no start, a clear error, the NIC and the files left as they are.
    assert!(lab.stop_sled(0, Stop::Term).unwrap().success());
    std::fs::write(
        state.join("config"),
        b"OPTECONF\0\0\0\x01 and then nonsense",
    )
    .unwrap();
    std::fs::write(state.join("config.prev"), b"nonsense").unwrap();
    let e = lab.start_sled(0).unwrap_err();
    assert!(
        e.contains("checksum mismatch") && e.contains("not an OPTE configuration file"),
        "{e}"
    );
    assert_eq!(nic_index(&lab, "ra"), nic);
    assert_eq!(
        std::fs::read(state.join("config.prev")).unwrap(),
        b"nonsense"
    );
    std::fs::write(state.join("config"), &good).unwrap();
    lab.start_sled(0).unwrap();
    assert_eq!(config_of(&lab, 0), with_change);
    let ping = ping_b(&lab);
    assert!(ping.contains("2 received"), "{ping}");
}

/// Hold TAP `name` open the way a VMM does (its one queue), from namespace `ns`.
fn hold_like_a_vmm(ns: &str, name: &str) -> std::fs::File {
    use nix::libc;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    nix::ioctl_write_ptr_bad!(tun_set_iff, libc::TUNSETIFF, libc::ifreq);
    let name = name.to_string();
    xde_lab::in_netns(ns, move || {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open("/dev/net/tun")
            .unwrap();
        // SAFETY: `ifreq` is plain old data; all zeroes is a valid value.
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        for (d, s) in ifr.ifr_name.iter_mut().zip(name.bytes()) {
            *d = s as libc::c_char;
        }
        ifr.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR) as i16;
        // SAFETY: a tun fd and an `ifreq` that lives across the call.
        unsafe { tun_set_iff(f.as_raw_fd(), &ifr) }.unwrap();
        f
    })
    .join()
    .unwrap()
}

/// A VMM's TAP (held open by the VMM across the restart) and a container's TAP left in
/// the daemon's own namespace are both there after a restart, their ports restored over
/// them; deleting the ports then removes them, and nothing is left.
#[test]
fn vmm_and_local_taps_outlive_a_restart_and_go_with_their_ports() {
    use xde_lab::vpc::GuestSpec;
    use xde_lab::{Daemon, Netns};
    if !root_or_skip() {
        return;
    }
    let ns = Netns::new("xrsv");
    ns.exec(&[
        "ip", "link", "add", "u1", "type", "veth", "peer", "name", "u2",
    ]);
    ns.exec(&["ip", "link", "set", "u1", "up"]);
    ns.exec(&["ip", "link", "set", "u2", "up"]);
    let dir = std::env::temp_dir().join(unique("xrsv-daemon-"));
    let state = dir.join("state");
    let args = ["--state-dir", state.to_str().unwrap()];
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_xded"));
    let mut d = Daemon::start_at_with(&bin, Some(&ns), dir.clone(), &args).unwrap();
    let h = d.hdl();
    h.set_xde_underlay("u1", "u2").unwrap();
    let phys = "fd00:10::1".parse().unwrap();
    let vm = GuestSpec::new("vm0", 100, 30, 5, 0).cfg(phys).unwrap();
    let ct = GuestSpec::new("ct0", 100, 30, 6, 0).cfg(phys).unwrap();
    h.create_xde_attached("vm0", vm, None, oxide_vpc::api::PortAttach::Vmm)
        .unwrap();
    h.create_xde("ct0", ct, None).unwrap();
    let index = |dev: &str| ns.try_exec(&["ip", "-o", "link", "show", dev]).ok();
    let (vm_idx, ct_idx) = (index("vm0").unwrap(), index("ct0").unwrap());
    let vmm = hold_like_a_vmm(ns.name(), "vm0");

    assert!(d.stop().success(), "{}", d.log());
    assert!(
        index("vm0").is_some() && index("ct0").is_some(),
        "the TAPs stay"
    );
    // Same directory, same state; the old guard leaves the directory to the new one.
    d.keep();
    let mut d = Daemon::start_at_with(&bin, Some(&ns), dir.clone(), &args).unwrap();
    let ports = d.hdl().list_ports().unwrap().ports;
    assert_eq!(ports.len(), 2, "{}", d.log());
    let same =
        |a: Option<String>, b: &str| a.is_some_and(|a| a.split(':').next() == b.split(':').next());
    assert!(same(index("vm0"), &vm_idx) && same(index("ct0"), &ct_idx));
    let log = d.log();
    assert!(log.contains("TAP opened again where it was"), "{log}");

    // A restore that cannot finish (an underlay link missing): no start, and the TAPs and
    // the record of where they are stay for the start after the link is back.
    assert!(d.stop().success());
    let taps = std::fs::read_to_string(state.join("taps")).unwrap();
    ns.exec(&["ip", "link", "set", "u1", "name", "u9"]);
    d.keep();
    let e = Daemon::start_at_with(&bin, Some(&ns), dir.clone(), &args).unwrap_err();
    assert!(e.contains("restoring the configuration"), "{e}");
    assert!(index("vm0").is_some() && index("ct0").is_some());
    assert_eq!(std::fs::read_to_string(state.join("taps")).unwrap(), taps);
    ns.exec(&["ip", "link", "set", "u9", "name", "u1"]);
    ns.exec(&["ip", "link", "set", "u1", "up"]);
    let mut d = Daemon::start_at_with(&bin, Some(&ns), dir.clone(), &args).unwrap();
    assert_eq!(d.hdl().list_ports().unwrap().ports.len(), 2, "{}", d.log());
    assert!(same(index("ct0"), &ct_idx));

    for p in ["vm0", "ct0"] {
        d.hdl().delete_xde(p).unwrap();
        assert_eq!(index(p), None, "deleting port {p} removes its TAP");
    }
    drop(vmm);
    assert!(d.stop().success());
    assert_eq!(
        std::fs::read_to_string(state.join("taps"))
            .unwrap()
            .lines()
            .count(),
        1,
        "no TAP is left to find again"
    );
}
