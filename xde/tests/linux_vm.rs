//! A real virtual machine on an OPTE port, as root: QEMU (TCG) boots Debian's cloud
//! kernel with a busybox initramfs, its virtio-net NIC on a `--vmm` port's TAP on one
//! sled of the lab's VPC; through the serial console the guest leases its address from
//! the OPTE gateway with `udhcpc`, pings the gateway and a guest on the other sled, and
//! fetches a file from that guest's web server (`busybox httpd`), checksum compared. The
//! VM is killed and every file removed when the test ends, also when it fails.

#![cfg(target_os = "linux")]

use std::path::PathBuf;
use std::time::Duration;
use xde_lab::vm::{self, Nic, Vm, VmSpec};
use xde_lab::vpc::{Bins, GuestSpec, Lab};
use xde_lab::{root_or_skip, try_ok, unique};

fn bins() -> Bins {
    Bins {
        xded: PathBuf::from(env!("CARGO_BIN_EXE_xded")),
        boundary: PathBuf::from(env!("CARGO_BIN_EXE_xde-boundary")),
    }
}

const VNI: u32 = 100;

/// A VPC of two sleds with guest b1 (a namespace) on sled 1 serving a file over HTTP; the
/// VM's port on sled 0 is made by `port`. Returns the lab, the VM port's configuration,
/// the kernel, and the file's URL and SHA-256.
fn lab_for_a_vm(
    id: &str,
    port: impl FnOnce(&mut Lab) -> oxide_vpc::api::VpcCfg,
) -> (
    Lab,
    oxide_vpc::api::VpcCfg,
    vm::Kernel,
    String,
    String,
    xde_lab::Proc,
) {
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("vm-kernel");
    std::fs::create_dir_all(&cache).unwrap();
    let kernel = vm::debian_kernel(&cache).unwrap();
    let mut lab = Lab::build(&bins(), id, 2, &[GuestSpec::new("b1", VNI, 30, 6, 1)]).unwrap();
    let cfg = port(&mut lab);
    let peer = lab.guest("b1").ip4();
    // The file the VM fetches, served by the guest on the other sled.
    let www = lab.dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("blob"), xde_lab::blob(2 << 20)).unwrap();
    let want = try_ok("sha256sum", &[www.join("blob").to_str().unwrap()]).unwrap();
    let want = want.split_whitespace().next().unwrap().to_string();
    let listen = format!("{peer}:8080");
    let httpd = lab
        .guest("b1")
        .ns
        .serve(
            "/bin/busybox",
            &["httpd", "-f", "-p", &listen, "-h", www.to_str().unwrap()],
            &listen,
        )
        .unwrap();
    (
        lab,
        cfg,
        kernel,
        format!("http://{listen}/blob"),
        want,
        httpd,
    )
}

/// The VM `name`'s boot: `kernel`, an initramfs built in the lab's directory, its NIC
/// `nic` with `mac`, 256 MiB.
fn vm_spec(lab: &Lab, kernel: vm::Kernel, name: &str, nic: Nic, mac: String) -> VmSpec {
    let initramfs = lab.dir.join(format!("{name}.initrd"));
    vm::initramfs(&kernel, &initramfs).unwrap();
    VmSpec {
        kernel,
        initramfs,
        nic,
        mac,
        memory_mib: 256,
    }
}

/// What every VM must manage through its console: its lease from the OPTE gateway, its
/// address and default route, pings to the gateway and to b1 across sleds, and the file
/// from b1, whole.
fn vm_talks(vm: &mut Vm, lab: &Lab, vm_ip: &str, url: &str, want: &str) {
    let t = Duration::from_secs(30);
    // DHCPv4 from the OPTE gateway: the port's address as a /32, the gateway reached on
    // the link and the default route through it (classless static routes), its DNS server.
    let lease = vm
        .udhcpc(t)
        .unwrap_or_else(|e| panic!("{e}\nsled 0:\n{}", lab.sleds[0].daemon.log()));
    assert_eq!(lease.addr, format!("{vm_ip}/32"));
    assert_eq!(lease.router, "172.30.0.1");
    assert_eq!(lease.routes, "172.30.0.1/32 0.0.0.0 0.0.0.0/0 172.30.0.1");
    assert_eq!(lease.dns, "203.0.113.53");
    let addr = vm.ok("ip -4 addr show dev eth0", t).unwrap();
    assert!(addr.contains(&format!("inet {vm_ip}/32")), "{addr}");
    let route = vm.ok("ip -4 route show default", t).unwrap();
    assert!(route.contains("default via 172.30.0.1 dev eth0"), "{route}");
    // The gateway answers; the guest on the other sled answers across the underlay.
    let ping = vm.ok("ping -c 3 -W 5 172.30.0.1", t).unwrap();
    assert!(ping.contains("3 packets received"), "{ping}");
    let peer = lab.guest("b1").ip4();
    let ping = vm.ok(&format!("ping -c 3 -W 5 {peer}"), t).unwrap();
    assert!(ping.contains("3 packets received"), "{ping}");
    // Data: the whole file, byte for byte.
    let got = vm.wget_sha256(url, Duration::from_secs(60)).unwrap();
    assert_eq!(got, want);
}

#[test]
fn a_vm_on_a_vhost_user_port_leases_talks_and_comes_back_after_its_vmm_restarts() {
    if !root_or_skip() {
        return;
    }
    let id = unique("xdevu");
    let sock = std::env::temp_dir().join(&id).join("vm1.vhost");
    let (lab, cfg, kernel, url, want, _httpd) = lab_for_a_vm(&id, |lab| {
        lab.add_vhost_user_port(&GuestSpec::new("vm1", VNI, 30, 5, 0), &sock)
            .unwrap()
    });
    assert!(sock.exists(), "the daemon listens at {}", sock.display());
    let vm_ip = cfg.ipv4().unwrap().private_ip.to_string();
    let spec = vm_spec(
        &lab,
        kernel,
        "vm1",
        Nic::VhostUser(sock.clone()),
        cfg.guest_mac.to_string(),
    );
    let mut vm = Vm::boot(&lab.sleds[0].ns, &spec, Duration::from_secs(60)).unwrap();
    vm_talks(&mut vm, &lab, &vm_ip, &url, &want);
    // The VMM goes away (killed, as a crash would) and a new one connects to the same
    // socket: a new device, negotiated anew, and the guest talks again.
    drop(vm);
    let mut vm = Vm::boot(&lab.sleds[0].ns, &spec, Duration::from_secs(60)).unwrap();
    vm_talks(&mut vm, &lab, &vm_ip, &url, &want);
    drop(vm);
    let log = lab.sleds[0].daemon.log();
    assert_eq!(
        log.matches("vhost-user: a VMM connected").count(),
        2,
        "{log}"
    );
    // Both files came in through the guest's receive queue, in frames of at most 64 KiB;
    // no queue was found broken.
    let d = &lab.sleds[0].daemon;
    assert_eq!(d.counter("vhost_connections"), 2);
    assert!(d.counter("vhost_rx_frames") >= 2 * (2 << 20) / 65536);
    assert!(d.counter("vhost_tx_frames") > 10);
    assert_eq!(d.counter("vhost_queues_broken"), 0);
    // Deleting the port stops the server and removes its socket.
    lab.sleds[0].daemon.hdl().delete_xde("vm1").unwrap();
    assert!(!sock.exists(), "{} is left", sock.display());
}

#[test]
fn a_vm_leases_from_the_gateway_and_talks_across_sleds() {
    if !root_or_skip() {
        return;
    }
    let (lab, cfg, kernel, url, want, _httpd) = lab_for_a_vm(&unique("xdevm"), |lab| {
        lab.add_vm_port(&GuestSpec::new("vm1", VNI, 30, 5, 0))
            .unwrap()
    });
    let vm_ip = cfg.ipv4().unwrap().private_ip.to_string();
    let spec = vm_spec(
        &lab,
        kernel,
        "vm1",
        Nic::Tap("vm1".into()),
        cfg.guest_mac.to_string(),
    );
    let mut vm = Vm::boot(&lab.sleds[0].ns, &spec, Duration::from_secs(60)).unwrap();
    vm_talks(&mut vm, &lab, &vm_ip, &url, &want);

    // The frames really went through the sled's daemon, both ways across the underlay: the
    // file arrived in frames of at most 64 KiB (coalesced), and the VM sent its three
    // pings, its SYN and request, and ACKs.
    let sled = &lab.sleds[0].daemon;
    let (tx, rx) = (sled.counter("tx_underlay"), sled.counter("rx_delivered"));
    assert!(
        tx >= 5 && rx >= (2 << 20) / 65536,
        "tx_underlay {tx}, rx_delivered {rx}"
    );
    drop(vm);
}

/// Kata's Directly Attachable Network: the DAN file written for a `--vmm` port (what
/// `opteadm kata-dan` writes), read back against exactly the fields and types Kata's
/// runtime reads, then used as the runtime would: the VM gets the device the file names
/// with the MAC it names, and the guest is configured from the file alone (addresses,
/// routes, neighbours; no DHCP), and reaches the guest on the other sled.
#[test]
fn a_vm_configured_from_its_kata_dan_file_reaches_another_sled() {
    use opte_ioctl::kata::{self, DanConfig, DanDevice, Device, Gateway};
    if !root_or_skip() {
        return;
    }
    let (lab, _cfg, kernel, url, want, _httpd) = lab_for_a_vm(&unique("xdedan"), |lab| {
        lab.add_vm_port(&GuestSpec::new("vm2", VNI, 30, 7, 0))
            .unwrap()
    });
    let hdl = lab.sleds[0].daemon.hdl();
    let ports = hdl.list_ports().unwrap();
    let port = ports.ports.iter().find(|p| p.name == "vm2").unwrap();
    let gw = Gateway {
        mac: xde_lab::vpc::GW_MAC,
        ip4: Some("172.30.0.1".parse().unwrap()),
        ip6: None,
    };
    let dev = Device::HostTap {
        tap_name: "vm2".into(),
    };
    let written = DanConfig {
        netns: format!("/var/run/netns/{}", lab.sleds[0].ns.name()),
        devices: vec![DanDevice::for_port(port, "eth0", dev, &gw, 1500)],
    };
    let path = kata::write(&lab.dir.join("dans"), "sandbox-1", &written).unwrap();
    assert_eq!(path, lab.dir.join("dans/sandbox-1.json"));

    // The file, field by field: exactly these keys, of these types.
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let keys = |v: &serde_json::Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&v), ["devices", "netns"]);
    let d = &v["devices"][0];
    assert_eq!(keys(d), ["device", "guest_mac", "name", "network_info"]);
    assert_eq!(keys(&d["device"]), ["tap_name", "type"]);
    assert_eq!(d["device"]["type"], "host-tap");
    let ni = &d["network_info"];
    assert_eq!(keys(ni), ["interface", "neighbors", "routes"]);
    assert_eq!(
        keys(&ni["interface"]),
        ["flags", "ip_addresses", "mtu", "ntype"]
    );
    assert!(ni["interface"]["mtu"].is_u64() && ni["interface"]["flags"].is_u64());
    for r in ni["routes"].as_array().unwrap() {
        assert_eq!(keys(r), ["dest", "flags", "gateway", "scope", "source"]);
        assert!(r["dest"].is_string() && r["scope"].is_u64() && r["flags"].is_u64());
    }
    for n in ni["neighbors"].as_array().unwrap() {
        assert_eq!(keys(n), ["flags", "hardware_addr", "ip_address", "state"]);
        assert!(n["state"].is_u64());
    }
    let read: DanConfig = serde_json::from_value(v).unwrap();
    assert_eq!(read, written);

    // Boot what the file names, and configure the guest from it, as Kata's agent would.
    let dan = &read.devices[0];
    let Device::HostTap { tap_name } = &dan.device else {
        panic!("not a TAP: {:?}", dan.device);
    };
    let spec = vm_spec(
        &lab,
        kernel,
        "vm2",
        Nic::Tap(tap_name.clone()),
        dan.guest_mac.clone(),
    );
    let mut vm = Vm::boot(&lab.sleds[0].ns, &spec, Duration::from_secs(60)).unwrap();
    let t = Duration::from_secs(30);
    let info = &dan.network_info;
    let mut cmds = vec![format!("ip link set eth0 mtu {} up", info.interface.mtu)];
    for a in &info.interface.ip_addresses {
        cmds.push(format!("ip addr add {a} dev eth0"));
    }
    for r in &info.routes {
        let via = match r.gateway.as_str() {
            "" => String::new(),
            g => format!(" via {g}"),
        };
        let scope = if r.scope == kata::SCOPE_LINK {
            " scope link"
        } else {
            ""
        };
        cmds.push(format!(
            "ip route add {}{via} dev eth0{scope} src {}",
            r.dest, r.source
        ));
    }
    // (busybox's `ip neigh` only shows; its `arp -s` makes a permanent entry.)
    assert!(
        info.neighbors
            .iter()
            .all(|n| n.state == kata::NUD_PERMANENT)
    );
    for n in &info.neighbors {
        cmds.push(format!(
            "arp -i eth0 -s {} {}",
            n.ip_address, n.hardware_addr
        ));
    }
    for c in cmds {
        vm.ok(&c, t).unwrap();
    }
    let mac = vm.ok("cat /sys/class/net/eth0/address", t).unwrap();
    assert!(mac.contains(&dan.guest_mac), "{mac}");
    let neigh = vm.ok("ip neigh show dev eth0", t).unwrap();
    assert!(
        neigh.contains("172.30.0.1 lladdr a8:40:25:ff:77:77") && neigh.contains("PERMANENT"),
        "{neigh}"
    );
    let peer = lab.guest("b1").ip4();
    let ping = vm.ok(&format!("ping -c 3 -W 5 {peer}"), t).unwrap();
    assert!(ping.contains("3 packets received"), "{ping}");
    let got = vm.wget_sha256(&url, Duration::from_secs(60)).unwrap();
    assert_eq!(got, want);
}
