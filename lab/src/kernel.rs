//! The yardstick: the demo's two sleds and two guests of one VPC built with the kernel
//! alone. Each sled bridges its guest's veth with a VXLAN device over the IPv6 underlay
//! (the kernel here has no Geneve); the sleds are joined by the same kind of rack-switch
//! bridge, with the same MTUs as the OPTE lab. What OPTE's datapath is measured against.

use crate::{Netns, wire};

/// Two sleds, a guest on each (172.30.0.5 on sled 0, 172.30.0.6 on sled 1), VXLAN VNI 100
/// between them. Removed when dropped.
#[derive(Debug)]
pub struct KernelVpc {
    /// Dropped first.
    pub guests: Vec<Netns>,
    pub sleds: Vec<Netns>,
    pub switch: Netns,
}

impl KernelVpc {
    /// Build it; its namespaces are named `ID-ROLE`.
    pub fn build(id: &str) -> Result<Self, String> {
        let ns = |role: &str| Netns::try_named(&format!("{id}-{role}"));
        let switch = ns("kswitch")?;
        switch.try_exec(&["ip", "link", "add", "sw1", "type", "bridge"])?;
        switch.try_exec(&["ip", "link", "set", "sw1", "up"])?;
        let mut sleds = Vec::new();
        let mut guests = Vec::new();
        for i in 0..2usize {
            let sled = ns(&format!("ksled{i}"))?;
            let port = format!("h{i}u1");
            wire(&sled, "u1", &switch, &port, 9000)?;
            switch.try_exec(&["ip", "link", "set", &port, "master", "sw1"])?;
            let (me, peer) = (format!("fd00:1::{}", i + 1), format!("fd00:1::{}", 2 - i));
            sled.try_exec(&[
                "ip",
                "addr",
                "add",
                &format!("{me}/64"),
                "dev",
                "u1",
                "nodad",
            ])?;
            sled.try_exec(&[
                "ip", "link", "add", "vx0", "type", "vxlan", "id", "100", "local", &me, "remote",
                &peer, "dstport", "4789", "dev", "u1",
            ])?;
            sled.try_exec(&["ip", "link", "add", "br0", "type", "bridge"])?;
            sled.try_exec(&[
                "ip", "link", "set", "vx0", "master", "br0", "mtu", "1500", "up",
            ])?;
            sled.try_exec(&["ip", "link", "set", "br0", "up"])?;
            let guest = ns(&format!("kg{i}"))?;
            let gport = format!("g{i}");
            wire(&guest, "eth0", &sled, &gport, 1500)?;
            sled.try_exec(&["ip", "link", "set", &gport, "master", "br0"])?;
            guest.try_exec(&[
                "ip",
                "addr",
                "add",
                &format!("172.30.0.{}/22", 5 + i),
                "dev",
                "eth0",
            ])?;
            sleds.push(sled);
            guests.push(guest);
        }
        let k = Self {
            guests,
            sleds,
            switch,
        };
        // Neighbours (underlay and overlay) learnt before anything is measured.
        if let Some(g) = k.guests.first() {
            g.try_exec(&["ping", "-c", "2", "-i", "0.2", "-W", "2", "172.30.0.6"])?;
        }
        Ok(k)
    }
}
