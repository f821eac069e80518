//! The tables every port of a host shares: V2P (guest address → sled, per VPC), V2B
//! (external prefix → boundary-services tunnel endpoints, longest-prefix match) and M2P
//! (overlay multicast group → underlay group; it lives in [`crate::mcast`] with the host's
//! multicast forwarding and subscription tables, which [`VpcTables`] also carries).
//!
//! Each table validates a request completely before changing anything, and a clear must
//! name exactly what is there: clearing a V2P or M2P entry with a different value than the
//! one stored is refused, so a stale request from the control plane cannot remove a newer
//! mapping (the reference ignores the value, SPEC §13 quirk 7).

use crate::api::{
    DumpVirt2BoundaryResp, DumpVirt2PhysResp, GuestPhysAddr, PhysNet, TunnelEndpoint, V2bMapResp,
    VpcMapResp,
};
pub use crate::mcast::Mcast2Phys;
use crate::mcast::{McastForwarding, McastSubscriptions};
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicU64, Ordering};
use opte::sync::RwLock;
use opte_api::{IpAddr, IpCidr, Ipv4Addr, Ipv4Cidr, Ipv6Addr, Ipv6Cidr, OpteError, Vni};

/// A longest-prefix-match table: one exact-match map per prefix length, searched from the
/// longest length present to the shortest. A lookup costs one map probe per distinct length
/// in the table (at most 33 or 129), independent of the number of prefixes.
#[derive(Clone, Debug)]
pub struct PrefixTable<K: Ord + Copy, V> {
    by_len: BTreeMap<u8, BTreeMap<K, V>>,
}

impl<K: Ord + Copy, V> Default for PrefixTable<K, V> {
    fn default() -> Self {
        Self {
            by_len: BTreeMap::new(),
        }
    }
}

/// Address bits with a mask: u32 for IPv4, u128 for IPv6.
pub trait PrefixBits: Ord + Copy {
    const BITS: u8;
    fn masked(self, len: u8) -> Self;
}

impl PrefixBits for u32 {
    const BITS: u8 = 32;
    fn masked(self, len: u8) -> Self {
        match len {
            0 => 0,
            l if l >= 32 => self,
            l => self & (u32::MAX << (32 - l)),
        }
    }
}

impl PrefixBits for u128 {
    const BITS: u8 = 128;
    fn masked(self, len: u8) -> Self {
        match len {
            0 => 0,
            l if l >= 128 => self,
            l => self & (u128::MAX << (128 - l)),
        }
    }
}

impl<K: PrefixBits, V> PrefixTable<K, V> {
    pub fn get_mut_or_insert(&mut self, prefix: K, len: u8, v: impl FnOnce() -> V) -> &mut V {
        self.by_len
            .entry(len)
            .or_default()
            .entry(prefix.masked(len))
            .or_insert_with(v)
    }

    pub fn get(&self, prefix: K, len: u8) -> Option<&V> {
        self.by_len.get(&len)?.get(&prefix.masked(len))
    }

    pub fn remove(&mut self, prefix: K, len: u8) -> Option<V> {
        let m = self.by_len.get_mut(&len)?;
        let v = m.remove(&prefix.masked(len));
        if m.is_empty() {
            self.by_len.remove(&len);
        }
        v
    }

    /// The value of the longest prefix containing `addr`.
    pub fn lookup(&self, addr: K) -> Option<&V> {
        self.by_len
            .iter()
            .rev()
            .find_map(|(len, m)| m.get(&addr.masked(*len)))
    }

    pub fn iter(&self) -> impl Iterator<Item = (K, u8, &V)> {
        self.by_len
            .iter()
            .flat_map(|(len, m)| m.iter().map(move |(k, v)| (*k, *len, v)))
    }
}

/// One VPC's virtual-to-physical mappings.
#[derive(Clone, Debug, Default)]
pub struct Virt2Phys {
    pub ip4: BTreeMap<Ipv4Addr, GuestPhysAddr>,
    pub ip6: BTreeMap<Ipv6Addr, GuestPhysAddr>,
}

/// The most V2P mappings a host holds, over all VPCs.
pub const V2P_LIMIT: usize = 1 << 20;

/// The most V2B prefixes a host holds.
pub const V2B_LIMIT: usize = 1 << 16;

/// A generation counter bumped by every change a compiled flow may depend on. The tables
/// of one [`VpcTables`] share one, so a port reads a single counter per packet.
#[derive(Clone, Debug, Default)]
pub struct Generation(Arc<AtomicU64>);

impl Generation {
    pub fn bump(&self) {
        self.0.fetch_add(1, Ordering::Release);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

/// V2P for every VPC on the host.
#[derive(Debug, Default)]
pub struct VpcMappings {
    inner: RwLock<BTreeMap<Vni, Virt2Phys>>,
    len: AtomicU64,
    generation: Generation,
}

impl VpcMappings {
    pub fn new() -> Self {
        Self::default()
    }

    /// Mappings whose changes bump `generation`.
    pub fn with_generation(generation: Generation) -> Self {
        Self {
            generation,
            ..Self::default()
        }
    }

    /// Map `vip` in `phys.vni` to the guest at `phys` (replacing an older mapping). A new
    /// address past [`V2P_LIMIT`] is refused.
    pub fn add(&self, vip: IpAddr, phys: PhysNet) -> Result<(), OpteError> {
        let gpa = GuestPhysAddr {
            ether: phys.ether,
            ip: phys.ip,
        };
        let mut m = self.inner.write();
        let known = m.get(&phys.vni).and_then(|t| match vip {
            IpAddr::Ip4(a) => t.ip4.get(&a).copied(),
            IpAddr::Ip6(a) => t.ip6.get(&a).copied(),
        });
        match known {
            Some(g) if g == gpa => return Ok(()),
            Some(_) => {}
            None => {
                if self.len.load(Ordering::Relaxed) >= V2P_LIMIT as u64 {
                    return Err(OpteError::MaxCapacity(V2P_LIMIT as u64));
                }
                self.len.fetch_add(1, Ordering::Relaxed);
            }
        }
        let t = m.entry(phys.vni).or_default();
        match vip {
            IpAddr::Ip4(a) => {
                t.ip4.insert(a, gpa);
            }
            IpAddr::Ip6(a) => {
                t.ip6.insert(a, gpa);
            }
        }
        self.generation.bump();
        Ok(())
    }

    /// Bumped by every change of a mapping.
    pub fn generation(&self) -> u64 {
        self.generation.get()
    }

    /// Mappings held, over all VPCs.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Remove `vip` from `phys.vni`, but only if it still maps to `phys`.
    pub fn del(&self, vip: IpAddr, phys: PhysNet) -> Result<(), OpteError> {
        let want = GuestPhysAddr {
            ether: phys.ether,
            ip: phys.ip,
        };
        let mut m = self.inner.write();
        let t = m.get_mut(&phys.vni).ok_or_else(|| {
            OpteError::BadState(format!("no V2P mappings in VNI {}", phys.vni.as_u32()))
        })?;
        let found = match vip {
            IpAddr::Ip4(a) => t.ip4.get(&a).copied(),
            IpAddr::Ip6(a) => t.ip6.get(&a).copied(),
        };
        match found {
            Some(g) if g == want => {}
            Some(g) => {
                return Err(OpteError::BadState(format!(
                    "{vip} maps to {}/{}, not {}/{}",
                    g.ether, g.ip, want.ether, want.ip
                )));
            }
            None => {
                return Err(OpteError::BadState(format!(
                    "no V2P mapping for {vip} in VNI {}",
                    phys.vni.as_u32()
                )));
            }
        }
        match vip {
            IpAddr::Ip4(a) => {
                t.ip4.remove(&a);
            }
            IpAddr::Ip6(a) => {
                t.ip6.remove(&a);
            }
        }
        if t.ip4.is_empty() && t.ip6.is_empty() {
            m.remove(&phys.vni);
        }
        self.len.fetch_sub(1, Ordering::Relaxed);
        self.generation.bump();
        Ok(())
    }

    pub fn get(&self, vni: Vni, vip: IpAddr) -> Option<GuestPhysAddr> {
        let m = self.inner.read();
        let t = m.get(&vni)?;
        match vip {
            IpAddr::Ip4(a) => t.ip4.get(&a).copied(),
            IpAddr::Ip6(a) => t.ip6.get(&a).copied(),
        }
    }

    /// The first VNI (lowest) whose table holds `vip`.
    pub fn ip_to_vni(&self, vip: IpAddr) -> Option<Vni> {
        let m = self.inner.read();
        m.iter()
            .find(|(_, t)| match vip {
                IpAddr::Ip4(a) => t.ip4.contains_key(&a),
                IpAddr::Ip6(a) => t.ip6.contains_key(&a),
            })
            .map(|(v, _)| *v)
    }

    pub fn dump(&self) -> DumpVirt2PhysResp {
        let m = self.inner.read();
        DumpVirt2PhysResp {
            mappings: m
                .iter()
                .map(|(vni, t)| VpcMapResp {
                    vni: *vni,
                    ip4: t.ip4.iter().map(|(a, g)| (*a, *g)).collect(),
                    ip6: t.ip6.iter().map(|(a, g)| (*a, *g)).collect(),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Default)]
struct V2b {
    ip4: PrefixTable<u32, BTreeSet<TunnelEndpoint>>,
    ip6: PrefixTable<u128, BTreeSet<TunnelEndpoint>>,
}

/// External prefixes → the boundary-services endpoints that reach them.
#[derive(Debug, Default)]
pub struct Virt2Boundary {
    inner: RwLock<V2b>,
    generation: Generation,
}

impl Virt2Boundary {
    pub fn new() -> Self {
        Self::default()
    }

    /// A table whose changes bump `generation`.
    pub fn with_generation(generation: Generation) -> Self {
        Self {
            generation,
            ..Self::default()
        }
    }

    /// Add endpoints for a prefix (a union with those it has).
    pub fn set(&self, vip: IpCidr, teps: &[TunnelEndpoint]) -> Result<(), OpteError> {
        if teps.is_empty() {
            return Err(OpteError::BadState(format!(
                "no tunnel endpoints given for {vip}"
            )));
        }
        let mut t = self.inner.write();
        let known = match vip {
            IpCidr::Ip4(c) => t.ip4.get(c.ip().to_bits(), c.prefix_len()).is_some(),
            IpCidr::Ip6(c) => t.ip6.get(c.ip().to_bits(), c.prefix_len()).is_some(),
        };
        if !known && t.ip4.iter().count() + t.ip6.iter().count() >= V2B_LIMIT {
            return Err(OpteError::MaxCapacity(V2B_LIMIT as u64));
        }
        let set = match vip {
            IpCidr::Ip4(c) => {
                t.ip4
                    .get_mut_or_insert(c.ip().to_bits(), c.prefix_len(), BTreeSet::new)
            }
            IpCidr::Ip6(c) => {
                t.ip6
                    .get_mut_or_insert(c.ip().to_bits(), c.prefix_len(), BTreeSet::new)
            }
        };
        set.extend(teps.iter().copied());
        drop(t);
        self.generation.bump();
        Ok(())
    }

    /// Bumped by every change of an endpoint set.
    pub fn generation(&self) -> u64 {
        self.generation.get()
    }

    /// Remove endpoints from a prefix; the prefix goes when none are left. Every endpoint
    /// named must be there, or nothing changes.
    pub fn remove(&self, vip: IpCidr, teps: &[TunnelEndpoint]) -> Result<(), OpteError> {
        let mut t = self.inner.write();
        let missing = || OpteError::BadState(format!("no V2B entry for {vip}"));
        let set = match vip {
            IpCidr::Ip4(c) => t.ip4.get(c.ip().to_bits(), c.prefix_len()),
            IpCidr::Ip6(c) => t.ip6.get(c.ip().to_bits(), c.prefix_len()),
        }
        .ok_or_else(missing)?;
        if let Some(e) = teps.iter().find(|e| !set.contains(e)) {
            return Err(OpteError::BadState(format!(
                "{vip} has no tunnel endpoint {}",
                e.ip
            )));
        }
        let empty = set.iter().all(|e| teps.contains(e));
        match vip {
            IpCidr::Ip4(c) => {
                let (k, l) = (c.ip().to_bits(), c.prefix_len());
                if empty {
                    t.ip4.remove(k, l);
                } else {
                    let s = t.ip4.get_mut_or_insert(k, l, BTreeSet::new);
                    s.retain(|e| !teps.contains(e));
                }
            }
            IpCidr::Ip6(c) => {
                let (k, l) = (c.ip().to_bits(), c.prefix_len());
                if empty {
                    t.ip6.remove(k, l);
                } else {
                    let s = t.ip6.get_mut_or_insert(k, l, BTreeSet::new);
                    s.retain(|e| !teps.contains(e));
                }
            }
        }
        drop(t);
        self.generation.bump();
        Ok(())
    }

    /// The endpoint for a flow to `ip`: the longest prefix's endpoints, one picked by
    /// `hash` (so one flow always takes the same endpoint).
    pub fn select(&self, ip: IpAddr, hash: u32) -> Option<TunnelEndpoint> {
        let t = self.inner.read();
        let set = match ip {
            IpAddr::Ip4(a) => t.ip4.lookup(a.to_bits()),
            IpAddr::Ip6(a) => t.ip6.lookup(a.to_bits()),
        }?;
        let n = set.len();
        if n == 0 {
            return None;
        }
        set.iter().nth(hash as usize % n).copied()
    }

    pub fn dump(&self) -> DumpVirt2BoundaryResp {
        let t = self.inner.read();
        let mut m = V2bMapResp::default();
        for (k, l, s) in t.ip4.iter() {
            if let Ok(c) = Ipv4Cidr::new_checked(Ipv4Addr::from_bits(k), l) {
                m.ip4.push((c, s.clone()));
            }
        }
        for (k, l, s) in t.ip6.iter() {
            if let Ok(c) = Ipv6Cidr::new_checked(Ipv6Addr::from_bits(k), l) {
                m.ip6.push((c, s.clone()));
            }
        }
        DumpVirt2BoundaryResp { mappings: m }
    }
}

/// The shared tables, as one handle a port keeps.
#[derive(Debug)]
pub struct VpcTables {
    pub v2p: VpcMappings,
    pub v2b: Virt2Boundary,
    pub m2p: Mcast2Phys,
    /// Where the host replicates multicast sent by its ports (no port consults it).
    pub mcast_fwd: McastForwarding,
    /// Which of the host's ports receive each underlay group (no port consults it).
    pub mcast_subs: McastSubscriptions,
    /// Bumped by V2P, V2B and M2P alike.
    generation: Generation,
}

impl Default for VpcTables {
    fn default() -> Self {
        let g = Generation::default();
        Self {
            v2p: VpcMappings::with_generation(g.clone()),
            v2b: Virt2Boundary::with_generation(g.clone()),
            m2p: Mcast2Phys::with_generation(g.clone()),
            mcast_fwd: McastForwarding::default(),
            mcast_subs: McastSubscriptions::default(),
            generation: g,
        }
    }
}

impl VpcTables {
    /// The generation of everything a compiled flow depends on (V2P, V2B, M2P): grows with
    /// every change, so a port compares it against the one its flows were compiled at.
    #[inline]
    pub fn epoch(&self) -> u64 {
        self.generation.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tep(last: u16, vni: u32) -> TunnelEndpoint {
        TunnelEndpoint {
            ip: Ipv6Addr::from_segments([0xfd00, 0x99, 0, 0, 0, 0, 0, last]),
            vni: Vni::new(vni).unwrap(),
        }
    }

    #[test]
    fn v2b_longest_prefix_wins_and_removal_falls_back() {
        let t = Virt2Boundary::new();
        t.set("0.0.0.0/0".parse().unwrap(), &[tep(1, 99)]).unwrap();
        t.set("10.0.0.0/8".parse().unwrap(), &[tep(2, 99)]).unwrap();
        t.set("10.1.0.0/16".parse().unwrap(), &[tep(3, 99), tep(4, 99)])
            .unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(t.select(ip("8.8.8.8"), 0), Some(tep(1, 99)));
        assert_eq!(t.select(ip("10.9.9.9"), 0), Some(tep(2, 99)));
        let picks: BTreeSet<_> = (0..8)
            .map(|h| t.select(ip("10.1.2.3"), h).unwrap())
            .collect();
        assert_eq!(picks, [tep(3, 99), tep(4, 99)].into_iter().collect());
        assert_eq!(t.select(ip("fd00::1"), 0), None);
        // Removing an endpoint that is not there changes nothing.
        assert!(
            t.remove("10.1.0.0/16".parse().unwrap(), &[tep(3, 99), tep(9, 99)])
                .is_err()
        );
        assert_eq!(t.dump().mappings.ip4.len(), 3);
        t.remove("10.1.0.0/16".parse().unwrap(), &[tep(3, 99)])
            .unwrap();
        assert_eq!(t.select(ip("10.1.2.3"), 0), Some(tep(4, 99)));
        t.remove("10.1.0.0/16".parse().unwrap(), &[tep(4, 99)])
            .unwrap();
        assert_eq!(t.select(ip("10.1.2.3"), 0), Some(tep(2, 99)));
        assert_eq!(t.dump().mappings.ip4.len(), 2);
    }

    #[test]
    fn tables_epoch_moves_with_every_table_and_v2b_is_bounded() {
        let t = VpcTables::default();
        let e0 = t.epoch();
        t.v2b
            .set("0.0.0.0/0".parse().unwrap(), &[tep(1, 99)])
            .unwrap();
        let e1 = t.epoch();
        assert!(e1 > e0);
        let g: IpAddr = "ff04::1:2".parse().unwrap();
        let u = opte_api::MulticastUnderlay::new("ff04::9".parse().unwrap()).unwrap();
        t.m2p.set(g, u).unwrap();
        assert!(t.epoch() > e1);
        let v2b = Virt2Boundary::new();
        for i in 0..V2B_LIMIT as u32 {
            let c = Ipv4Cidr::new_checked(Ipv4Addr::from_bits(i << 8), 24).unwrap();
            v2b.set(IpCidr::Ip4(c), &[tep(1, 99)]).unwrap();
        }
        let one_more =
            IpCidr::Ip4(Ipv4Cidr::new_checked(Ipv4Addr::from_bits(0xff00_0000), 8).unwrap());
        assert_eq!(
            v2b.set(one_more, &[tep(1, 99)]),
            Err(OpteError::MaxCapacity(V2B_LIMIT as u64))
        );
        // An existing prefix may still gain endpoints.
        let first = IpCidr::Ip4(Ipv4Cidr::new_checked(Ipv4Addr::from_bits(0), 24).unwrap());
        v2b.set(first, &[tep(2, 99)]).unwrap();
    }

    #[test]
    fn v2p_clear_must_name_the_current_mapping() {
        let m = VpcMappings::new();
        let vni = Vni::new(7).unwrap();
        let ip: IpAddr = "172.30.0.6".parse().unwrap();
        let p1 = PhysNet {
            ether: "a8:40:25:00:00:01".parse().unwrap(),
            ip: "fd00::1".parse().unwrap(),
            vni,
        };
        let p2 = PhysNet {
            ip: "fd00::2".parse().unwrap(),
            ..p1
        };
        m.add(ip, p1).unwrap();
        let g0 = m.generation();
        m.add(ip, p1).unwrap();
        assert_eq!(
            m.generation(),
            g0,
            "re-adding the same mapping changes nothing"
        );
        m.add(ip, p2).unwrap();
        assert!(m.generation() > g0, "a moved guest bumps the generation");
        assert_eq!(m.len(), 1);
        assert!(
            m.del(ip, p1).is_err(),
            "a stale clear must not remove the new mapping"
        );
        assert_eq!(m.get(vni, ip).unwrap().ip, p2.ip);
        assert_eq!(m.ip_to_vni(ip), Some(vni));
        let g1 = m.generation();
        m.del(ip, p2).unwrap();
        assert!(m.generation() > g1);
        assert_eq!(m.get(vni, ip), None);
        assert!(m.is_empty());
        assert!(m.dump().mappings.is_empty());
    }
}
