//! One guest port of the host: the VPC port that processes its packets, the identity the
//! datapath finds it by (name; VNI and guest MAC), and its underlay route cache.

use crate::probes::HostProbes;
use crate::route::RouteCache;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use opte::sync::Mutex;
use opte_api::{Ipv6Addr, MacAddr, Vni};
use oxide_vpc::api::{PortInfo, VpcCfg};
use oxide_vpc::engine::VpcPort;

/// The key the receive path finds a port by: the Geneve VNI and the inner destination MAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VniMac {
    pub vni: Vni,
    pub mac: MacAddr,
}

impl VniMac {
    /// Which of `workers` datapath workers serves this port, when a host steers each port's
    /// traffic to one worker (the Linux daemon does, see `linux::underlay`): the port's
    /// flow state is then only ever touched by that worker. A hash of the VNI and the last
    /// four bytes of the MAC, computed the same way by the classic BPF program that steers
    /// what arrives on the underlay, reading them from the Geneve header and the inner
    /// Ethernet destination:
    /// `((vni ^ mac[2..6] as a big-endian u32) * 0x9e3779b1 mod 2^32) >> 16`, mod `workers`.
    pub fn owner(&self, workers: usize) -> usize {
        let [_, _, a, b, c, d] = self.mac.bytes();
        let h =
            (self.vni.as_u32() ^ u32::from_be_bytes([a, b, c, d])).wrapping_mul(0x9e37_79b1) >> 16;
        h as usize % workers.max(1)
    }
}

pub struct XdePort {
    name: String,
    key: VniMac,
    /// The sled's underlay address, as the port was configured: an encapsulation to it is
    /// guest loopback.
    phys_ip: Ipv6Addr,
    mtu: u32,
    linkid: u32,
    pub(crate) vpc: Mutex<VpcPort<HostProbes>>,
    pub(crate) routes: Mutex<RouteCache>,
}

impl XdePort {
    pub(crate) fn new(vpc: VpcPort<HostProbes>, linkid: u32) -> Self {
        let cfg = vpc.cfg();
        Self {
            name: vpc.port().name().to_string(),
            key: VniMac {
                vni: cfg.vni,
                mac: cfg.guest_mac,
            },
            phys_ip: cfg.phys_ip,
            mtu: vpc.mtu(),
            linkid,
            vpc: Mutex::new(vpc),
            routes: Mutex::new(RouteCache::new()),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key(&self) -> VniMac {
        self.key
    }

    pub fn phys_ip(&self) -> Ipv6Addr {
        self.phys_ip
    }

    pub fn mtu(&self) -> u32 {
        self.mtu
    }

    pub fn linkid(&self) -> u32 {
        self.linkid
    }

    /// Run `f` on the VPC port, under the port's lock.
    pub fn with_vpc<R>(&self, f: impl FnOnce(&mut VpcPort<HostProbes>) -> R) -> R {
        f(&mut self.vpc.lock())
    }

    /// The port's configuration as it is now (external IPs change at run time).
    pub fn cfg(&self) -> VpcCfg {
        self.vpc.lock().cfg().clone()
    }

    /// What `list-ports` shows of it.
    pub fn info(&self) -> PortInfo {
        let vpc = self.vpc.lock();
        let cfg = vpc.cfg();
        let v4 = cfg.ipv4();
        let v6 = cfg.ipv6();
        PortInfo {
            name: self.name.clone(),
            mac_addr: cfg.guest_mac,
            ip4_addr: v4.map(|c| c.private_ip),
            ephemeral_ip4_addr: v4.and_then(|c| c.external_ips.ephemeral_ip),
            floating_ip4_addrs: v4.and_then(|c| non_empty(&c.external_ips.floating_ips)),
            ip6_addr: v6.map(|c| c.private_ip),
            ephemeral_ip6_addr: v6.and_then(|c| c.external_ips.ephemeral_ip),
            floating_ip6_addrs: v6.and_then(|c| non_empty(&c.external_ips.floating_ips)),
            state: vpc.port().state().to_string(),
        }
    }
}

fn non_empty<T: Clone>(v: &[T]) -> Option<Vec<T>> {
    (!v.is_empty()).then(|| v.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(vni: u32, last: u8) -> VniMac {
        VniMac {
            vni: Vni::new(vni).unwrap(),
            mac: MacAddr::from_const([0xa8, 0x40, 0x25, 0xfa, (vni % 251) as u8, last]),
        }
    }

    /// The owner is the documented formula (which the underlay's fanout program computes
    /// from the wire), worked out by hand for one key, and spreads ports over workers.
    #[test]
    fn a_ports_owner_is_the_hash_of_its_vni_and_mac() {
        // 100 ^ 0x25fa_6405 = 0x25fa_6461; * 0x9e37_79b1 mod 2^32 = 0x0a68_4011 (worked
        // out apart from this code); >> 16 = 0x0a68 = 2,664: even, so worker 0 of 2.
        let k = key(100, 5);
        assert_eq!(
            (100u32 ^ 0x25fa_6405).wrapping_mul(0x9e37_79b1) >> 16,
            0x0a68
        );
        assert_eq!(k.owner(2), 0);
        assert_eq!(k.owner(1), 0);
        assert_eq!(k.owner(0), 0, "no workers is taken as one");
        assert_eq!(key(100, 6).owner(2), 1);
        let mut per = [0usize; 4];
        for last in 0..=255u8 {
            per[key(7777, last).owner(4)] += 1;
        }
        assert!(per.iter().all(|&n| n > 32), "{per:?}");
    }
}
