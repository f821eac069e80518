//! The kernel-only yardstick topology (bridge + VXLAN over the IPv6 underlay) is what it
//! says: its guests reach each other across sleds through VXLAN, and it leaves nothing.

use xde_lab::kernel::KernelVpc;
use xde_lab::{root_or_skip, unique};

#[test]
fn the_kernel_vxlan_vpc_carries_tcp_between_its_guests_and_goes_away() {
    if !root_or_skip() {
        return;
    }
    let id = unique("xdtk");
    let k = KernelVpc::build(&id).unwrap();
    let report = xde_lab::iperf3(&k.guests[0], &k.guests[1], "172.30.0.6", &["-n", "8M"]).unwrap();
    assert!(xde_lab::iperf3_received_bps(&report).unwrap() > 0.0);
    // It went over VXLAN: sled 0's VXLAN device counted most of it by now (the last of it
    // may still be in flight when iperf3 reports: esnet/iperf#382).
    let tx: u64 = k.sleds[0]
        .exec(&["cat", "/sys/class/net/vx0/statistics/tx_bytes"])
        .trim()
        .parse()
        .unwrap();
    assert!(tx > 4_000_000, "vx0 sent {tx} bytes");
    drop(k);
    let left = xde_lab::ok("ip", &["netns", "list"]);
    assert!(!left.contains(&id), "{left}");
}
