//! The yardstick: the demo's two sleds and two guests of one VPC built with the kernel
//! alone. Each sled bridges its guest's veth with a tunnel device over the IPv6 underlay,
//! VXLAN or, where the kernel has it, Geneve; the sleds are joined by the same kind of
//! rack-switch bridge, with the same MTUs as the OPTE lab. What OPTE's datapath is
//! measured against.

use crate::{Netns, wire};

/// The kernel's tunnel between the sleds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tunnel {
    Vxlan,
    Geneve,
}

impl Tunnel {
    pub fn name(self) -> &'static str {
        match self {
            Self::Vxlan => "VXLAN",
            Self::Geneve => "Geneve",
        }
    }
}

/// Whether this kernel can make Geneve devices (asked in a namespace of our own).
pub fn has_geneve() -> bool {
    let Ok(ns) = Netns::try_named(&crate::unique("xdgn")) else {
        return false;
    };
    ns.try_exec(&[
        "ip", "link", "add", "gn0", "type", "geneve", "id", "1", "remote", "fd00::1",
    ])
    .is_ok()
}

/// Two sleds, a guest on each (172.30.0.5 on sled 0, 172.30.0.6 on sled 1), a tunnel of
/// VNI 100 between them. Removed when dropped.
#[derive(Debug)]
pub struct KernelVpc {
    /// Dropped first.
    pub guests: Vec<Netns>,
    pub sleds: Vec<Netns>,
    pub switch: Netns,
}

impl KernelVpc {
    /// Build it with VXLAN; its namespaces are named `ID-ROLE`.
    pub fn build(id: &str) -> Result<Self, String> {
        Self::build_with(id, Tunnel::Vxlan)
    }

    /// Build it with `tunnel`.
    pub fn build_with(id: &str, tunnel: Tunnel) -> Result<Self, String> {
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
            match tunnel {
                Tunnel::Vxlan => sled.try_exec(&[
                    "ip", "link", "add", "vx0", "type", "vxlan", "id", "100", "local", &me,
                    "remote", &peer, "dstport", "4789", "dev", "u1",
                ])?,
                // Geneve takes no local address or device: the route to the peer decides.
                Tunnel::Geneve => sled.try_exec(&[
                    "ip", "link", "add", "vx0", "type", "geneve", "id", "100", "remote", &peer,
                ])?,
            };
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
