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

/// `len` bytes that no compression or pattern makes cheap to carry (an LCG's high bytes).
fn blob(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 56) as u8
        })
        .collect()
}

#[test]
fn a_vm_leases_from_the_gateway_and_talks_across_sleds() {
    if !root_or_skip() {
        return;
    }
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("vm-kernel");
    std::fs::create_dir_all(&cache).unwrap();
    let kernel = vm::debian_kernel(&cache).unwrap();
    let mut lab = Lab::build(
        &bins(),
        &unique("xdevm"),
        2,
        &[GuestSpec::new("b1", VNI, 30, 6, 1)],
    )
    .unwrap();
    let cfg = lab
        .add_vm_port(&GuestSpec::new("vm1", VNI, 30, 5, 0))
        .unwrap();
    let vm_ip = cfg.ipv4().unwrap().private_ip.to_string();
    let peer = lab.guest("b1").ip4();
    let initrd = lab.dir.join("vm1.initrd");
    vm::initramfs(&kernel, &initrd).unwrap();

    // The file the VM fetches, served by the guest on the other sled.
    let www = lab.dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("blob"), blob(2 << 20)).unwrap();
    let want = try_ok("sha256sum", &[www.join("blob").to_str().unwrap()]).unwrap();
    let want = want.split_whitespace().next().unwrap().to_string();
    let listen = format!("{peer}:8080");
    let _httpd = lab
        .guest("b1")
        .ns
        .serve(
            "/bin/busybox",
            &["httpd", "-f", "-p", &listen, "-h", www.to_str().unwrap()],
            &listen,
        )
        .unwrap();

    let spec = VmSpec {
        kernel,
        initramfs: initrd,
        nic: Nic::Tap("vm1".into()),
        mac: cfg.guest_mac.to_string(),
        memory_mib: 256,
    };
    let mut vm = Vm::boot(&lab.sleds[0].ns, &spec, Duration::from_secs(60)).unwrap();
    let t = Duration::from_secs(30);

    // DHCPv4 from the OPTE gateway: the port's address as a /32, the gateway reached on
    // the link and the default route through it (classless static routes), its DNS server.
    let lease = vm.udhcpc(t).unwrap();
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
    let ping = vm.ok(&format!("ping -c 3 -W 5 {peer}"), t).unwrap();
    assert!(ping.contains("3 packets received"), "{ping}");

    // Data: the whole file, byte for byte.
    let got = vm
        .wget_sha256(&format!("http://{listen}/blob"), Duration::from_secs(60))
        .unwrap();
    assert_eq!(got, want);

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
