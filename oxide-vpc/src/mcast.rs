//! The host-wide multicast tables (SPEC §4.7, §7.3, §7.7): M2P (overlay group → underlay
//! group), forwarding (underlay group → the remote next hops a packet is replicated to) and
//! subscriptions (underlay group → the local ports that receive it), the last two with a
//! source filter per member.
//!
//! Forwarding and subscriptions are keyed by the underlay group (`ff04::/16`), because
//! that is what the data path sees in the outer IPv6 destination; an overlay group reaches
//! its key through M2P. The tables hold no packets and do no I/O: the host asks them, per
//! packet, which next hops and which local ports a packet from a given inner source goes
//! to, and does the copying and sending itself. They do not look ports up: ports are
//! named, and the host checks that a named port exists (`PortNotFound`) before it calls in.
//!
//! Like every table here, each is bounded ([`McastLimits`]), and each mutation validates
//! the whole request before changing anything.

use crate::api::{
    DEFAULT_MULTICAST_VNI, DumpMcast2PhysResp, DumpMcastForwardingResp, DumpMcastSubscriptionsResp,
    McastForwardingEntry, McastForwardingNextHop, McastSubscriberEntry, McastSubscriptionEntry,
    NextHopV6, Replication, SourceFilter,
};
use crate::tables::Generation;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use opte::sync::RwLock;
use opte_api::{IpAddr, MulticastUnderlay, OpteError};

/// Overlay multicast group → underlay multicast group.
#[derive(Debug, Default)]
pub struct Mcast2Phys {
    limits: McastLimits,
    inner: RwLock<BTreeMap<IpAddr, MulticastUnderlay>>,
    generation: Generation,
}

impl Mcast2Phys {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_limits(limits: McastLimits) -> Self {
        Self {
            limits,
            inner: RwLock::default(),
            generation: Generation::default(),
        }
    }

    /// A table whose changes bump `generation`.
    pub fn with_generation(generation: Generation) -> Self {
        Self {
            generation,
            ..Self::default()
        }
    }

    /// Bumped by every change of a mapping.
    pub fn generation(&self) -> u64 {
        self.generation.get()
    }

    /// Map `group` to `underlay`, replacing an older mapping of `group`.
    pub fn set(&self, group: IpAddr, underlay: MulticastUnderlay) -> Result<(), OpteError> {
        if !group.is_multicast() {
            return Err(OpteError::BadState(format!(
                "{group} is not a multicast group"
            )));
        }
        let mut m = self.inner.write();
        if !m.contains_key(&group) && m.len() >= self.limits.mappings {
            return Err(OpteError::MaxCapacity(self.limits.mappings as u64));
        }
        if m.insert(group, underlay) != Some(underlay) {
            self.generation.bump();
        }
        Ok(())
    }

    /// Remove `group`, only if it maps to `underlay`.
    pub fn clear(&self, group: IpAddr, underlay: MulticastUnderlay) -> Result<(), OpteError> {
        let mut m = self.inner.write();
        match m.get(&group) {
            Some(u) if *u == underlay => {
                m.remove(&group);
                self.generation.bump();
                Ok(())
            }
            Some(u) => Err(OpteError::BadState(format!(
                "{group} maps to {u}, not {underlay}"
            ))),
            None => Err(OpteError::BadState(format!("no M2P mapping for {group}"))),
        }
    }

    pub fn get(&self, group: IpAddr) -> Option<MulticastUnderlay> {
        self.inner.read().get(&group).copied()
    }

    pub fn dump(&self) -> DumpMcast2PhysResp {
        let m = self.inner.read();
        let mut r = DumpMcast2PhysResp::default();
        for (g, u) in m.iter() {
            match g {
                IpAddr::Ip4(a) => r.ip4.push((*a, *u)),
                IpAddr::Ip6(a) => r.ip6.push((*a, *u)),
            }
        }
        r
    }
}

/// The filter accepting exactly the sources that at least one of `filters` accepts: how a
/// router merges the IGMPv3/MLDv2 states of several listeners (RFC 3376 §6.4, RFC 3810
/// §7.4). No filters at all gives `Include ∅` (no listener, no source).
///
/// Pairwise: `Include A + Include B = Include (A ∪ B)`, `Include A + Exclude B =
/// Exclude (B − A)`, `Exclude A + Exclude B = Exclude (A ∩ B)`.
pub fn aggregate_filter<'a>(filters: impl IntoIterator<Item = &'a SourceFilter>) -> SourceFilter {
    let mut acc = SourceFilter::Include(BTreeSet::new());
    for f in filters {
        acc = match (acc, f) {
            (SourceFilter::Include(mut a), SourceFilter::Include(b)) => {
                a.extend(b.iter().copied());
                SourceFilter::Include(a)
            }
            (SourceFilter::Include(a), SourceFilter::Exclude(b)) => {
                SourceFilter::Exclude(b.iter().copied().filter(|s| !a.contains(s)).collect())
            }
            (SourceFilter::Exclude(mut b), SourceFilter::Include(a)) => {
                b.retain(|s| !a.contains(s));
                SourceFilter::Exclude(b)
            }
            (SourceFilter::Exclude(a), SourceFilter::Exclude(b)) => {
                SourceFilter::Exclude(a.intersection(b).copied().collect())
            }
        };
        // Nothing can widen "any source"; stop early.
        if acc.accepts_any() {
            break;
        }
    }
    acc
}

/// The bounds of the multicast tables. Every limit refuses the request that would pass it
/// with [`OpteError::MaxCapacity`] carrying the limit, and changes nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct McastLimits {
    /// Overlay groups mapped by M2P.
    pub mappings: usize,
    /// Underlay groups in the forwarding table and in the subscription table.
    pub groups: usize,
    /// Next hops of one forwarding entry.
    pub next_hops_per_group: usize,
    /// Next hops over all forwarding entries.
    pub next_hops: usize,
    /// Subscribed ports of one group.
    pub subscribers_per_group: usize,
    /// (port, group) subscriptions over all groups.
    pub subscriptions: usize,
    /// Sources one source filter may name.
    pub filter_sources: usize,
}

impl Default for McastLimits {
    /// Far above what a rack uses (a forwarding entry has at most one next hop per sled
    /// plus the switches), small enough that a full table stays a few tens of MB.
    fn default() -> Self {
        Self {
            mappings: 4096,
            groups: 4096,
            next_hops_per_group: 256,
            next_hops: 16384,
            subscribers_per_group: 1024,
            subscriptions: 16384,
            filter_sources: 64,
        }
    }
}

/// What a data-path query decided for the members of one group.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fanout {
    /// Members handed to the caller.
    pub delivered: usize,
    /// Members whose source filter refused the packet's inner source.
    pub filtered: usize,
}

/// Why `src` cannot be named in a source filter, if it cannot: a filter names the unicast
/// senders of a group, so special-purpose and multicast addresses are refused.
fn bad_source(src: IpAddr) -> Option<&'static str> {
    let why = match src {
        IpAddr::Ip4(a) if a.is_broadcast() => "broadcast",
        IpAddr::Ip4(a) if a.is_loopback() => "loopback",
        IpAddr::Ip4(a) if a.is_link_local() => "link-local",
        IpAddr::Ip6(a) if a.is_loopback() => "loopback",
        IpAddr::Ip6(a) if a.is_link_local() => "link-local",
        _ if src.is_unspecified() => "unspecified",
        _ if src.is_multicast() => "multicast",
        _ => return None,
    };
    Some(why)
}

fn sources(f: &SourceFilter) -> &BTreeSet<IpAddr> {
    match f {
        SourceFilter::Include(s) | SourceFilter::Exclude(s) => s,
    }
}

/// Check a source filter: at most `limit` sources, each a unicast host address and, when
/// `group` is given, of the group's family.
fn validate_filter(f: &SourceFilter, group: Option<IpAddr>, limit: usize) -> Result<(), OpteError> {
    let srcs = sources(f);
    if srcs.len() > limit {
        return Err(OpteError::MaxCapacity(limit as u64));
    }
    for &src in srcs {
        if let Some(why) = bad_source(src) {
            return Err(OpteError::BadState(format!(
                "source filter names {src}, a {why} address; expected a unicast host address"
            )));
        }
        if let Some(g) = group
            && matches!(g, IpAddr::Ip4(_)) != matches!(src, IpAddr::Ip4(_))
        {
            return Err(OpteError::BadState(format!(
                "source filter names {src}, which is not of the family of group {g}"
            )));
        }
    }
    Ok(())
}

type NextHops = BTreeMap<NextHopV6, (Replication, SourceFilter)>;

#[derive(Debug, Default)]
struct Forwarding {
    groups: BTreeMap<MulticastUnderlay, NextHops>,
    /// Next hops over all groups.
    next_hops: usize,
}

/// Underlay group → the remote next hops (other sleds, switches) a multicast packet sent
/// from this host is replicated to, each with its replication mode and the aggregate source
/// filter of the listeners behind it.
#[derive(Debug, Default)]
pub struct McastForwarding {
    limits: McastLimits,
    inner: RwLock<Forwarding>,
}

impl McastForwarding {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_limits(limits: McastLimits) -> Self {
        Self {
            limits,
            inner: RwLock::default(),
        }
    }

    /// Add next hops to `underlay`'s entry, or update the replication and filter of next
    /// hops it has (next hops not named stay). Each next hop must be a unicast underlay
    /// address on the multicast VNI, with `External`, `Underlay` or `Both` replication and
    /// a valid filter; the request must name at least one next hop, each once.
    pub fn set(
        &self,
        underlay: MulticastUnderlay,
        next_hops: &[McastForwardingNextHop],
    ) -> Result<(), OpteError> {
        if next_hops.is_empty() {
            return Err(OpteError::BadState(format!(
                "no next hops given for {underlay}"
            )));
        }
        let mut named = BTreeSet::new();
        for h in next_hops {
            let NextHopV6 { addr, vni } = h.next_hop;
            if vni.as_u32() != DEFAULT_MULTICAST_VNI {
                return Err(OpteError::BadState(format!(
                    "next hop {addr} has VNI {}; multicast is carried on VNI {DEFAULT_MULTICAST_VNI}",
                    vni.as_u32()
                )));
            }
            if addr.is_multicast() || addr.is_unspecified() || addr.is_loopback() {
                return Err(OpteError::BadState(format!(
                    "next hop {addr} is not a unicast underlay address"
                )));
            }
            if h.replication == Replication::Reserved {
                return Err(OpteError::BadState(format!(
                    "next hop {addr}: replication must be external, underlay or both, not reserved"
                )));
            }
            validate_filter(&h.source_filter, None, self.limits.filter_sources)?;
            if !named.insert(h.next_hop) {
                return Err(OpteError::BadState(format!(
                    "next hop {addr} (VNI {}) named twice",
                    vni.as_u32()
                )));
            }
        }

        let mut t = self.inner.write();
        let existing = t.groups.get(&underlay);
        if existing.is_none() && t.groups.len() >= self.limits.groups {
            return Err(OpteError::MaxCapacity(self.limits.groups as u64));
        }
        let have = existing.map_or(0, BTreeMap::len);
        let added = named
            .iter()
            .filter(|n| existing.is_none_or(|e| !e.contains_key(*n)))
            .count();
        if have + added > self.limits.next_hops_per_group {
            return Err(OpteError::MaxCapacity(
                self.limits.next_hops_per_group as u64,
            ));
        }
        if t.next_hops + added > self.limits.next_hops {
            return Err(OpteError::MaxCapacity(self.limits.next_hops as u64));
        }

        let entry = t.groups.entry(underlay).or_default();
        for h in next_hops {
            entry.insert(h.next_hop, (h.replication, h.source_filter.clone()));
        }
        t.next_hops += added;
        Ok(())
    }

    /// Remove `underlay`'s entry with all its next hops. Clearing a group with no entry is
    /// a no-op (`false`): the control plane converges by repeating clears.
    pub fn clear(&self, underlay: MulticastUnderlay) -> bool {
        let mut t = self.inner.write();
        match t.groups.remove(&underlay) {
            Some(e) => {
                t.next_hops = t.next_hops.saturating_sub(e.len());
                true
            }
            None => false,
        }
    }

    /// The data-path question: call `f` with each next hop of `underlay` whose filter
    /// allows `src` (the inner source), in next-hop order. `None` when the group has no
    /// entry. `f` runs with the table locked: collect, don't send.
    pub fn for_each_next_hop(
        &self,
        underlay: MulticastUnderlay,
        src: IpAddr,
        mut f: impl FnMut(NextHopV6, Replication),
    ) -> Option<Fanout> {
        let t = self.inner.read();
        let e = t.groups.get(&underlay)?;
        let mut out = Fanout::default();
        for (hop, (rep, filter)) in e {
            if filter.allows(src) {
                f(*hop, *rep);
                out.delivered += 1;
            } else {
                out.filtered += 1;
            }
        }
        Some(out)
    }

    /// `underlay`'s next hops, in next-hop order.
    pub fn get(&self, underlay: MulticastUnderlay) -> Option<Vec<McastForwardingNextHop>> {
        self.inner.read().groups.get(&underlay).map(to_next_hops)
    }

    /// Every entry, by underlay group, each with its next hops in next-hop order
    /// (address, then VNI).
    pub fn dump(&self) -> DumpMcastForwardingResp {
        let t = self.inner.read();
        DumpMcastForwardingResp {
            entries: t
                .groups
                .iter()
                .map(|(u, e)| McastForwardingEntry {
                    underlay: *u,
                    next_hops: to_next_hops(e),
                })
                .collect(),
        }
    }

    /// Forget every entry (the underlay is being unbound).
    pub fn clear_all(&self) {
        *self.inner.write() = Forwarding::default();
    }
}

fn to_next_hops(e: &NextHops) -> Vec<McastForwardingNextHop> {
    e.iter()
        .map(|(hop, (rep, filter))| McastForwardingNextHop {
            next_hop: *hop,
            replication: *rep,
            source_filter: filter.clone(),
        })
        .collect()
}

#[derive(Debug, Default)]
struct Subscriptions {
    groups: BTreeMap<MulticastUnderlay, BTreeMap<String, SourceFilter>>,
    /// (port, group) pairs over all groups.
    count: usize,
}

impl Subscriptions {
    fn remove_group(&mut self, u: MulticastUnderlay) -> usize {
        let n = self.groups.remove(&u).map_or(0, |m| m.len());
        self.count = self.count.saturating_sub(n);
        n
    }
}

/// Underlay group → the local ports subscribed to it, each with its source filter.
///
/// A port subscribes by overlay group; the group is translated once, at subscribe time,
/// through M2P (or, for an IPv6 group already in `ff04::/16` with no mapping, used as its
/// own underlay group), and the subscription is kept under the underlay group. So a later
/// change of the M2P mapping does not move existing subscriptions, and two overlay groups
/// mapped to one underlay group share one subscription per port (the latest filter wins).
#[derive(Debug, Default)]
pub struct McastSubscriptions {
    limits: McastLimits,
    inner: RwLock<Subscriptions>,
}

/// The underlay group of overlay `group`: its M2P mapping, else the group itself if it is
/// an admin-local IPv6 group, else `None`. Refuses a group that is not multicast.
fn resolve(m2p: &Mcast2Phys, group: IpAddr) -> Result<Option<MulticastUnderlay>, OpteError> {
    if !group.is_multicast() {
        return Err(OpteError::BadState(format!(
            "{group} is not a multicast group"
        )));
    }
    if let Some(u) = m2p.get(group) {
        return Ok(Some(u));
    }
    Ok(match group {
        IpAddr::Ip6(a) => MulticastUnderlay::of(a),
        IpAddr::Ip4(_) => None,
    })
}

impl McastSubscriptions {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_limits(limits: McastLimits) -> Self {
        Self {
            limits,
            inner: RwLock::default(),
        }
    }

    /// Subscribe `port` to overlay `group`, receiving the sources `filter` allows, and
    /// return the underlay group it was filed under. Subscribing again replaces the filter
    /// (same filter: nothing changes). The group must be multicast and have an M2P
    /// mapping (or be an `ff04::/16` IPv6 group); filter sources must be unicast host
    /// addresses of the group's family.
    pub fn subscribe(
        &self,
        m2p: &Mcast2Phys,
        port: &str,
        group: IpAddr,
        filter: SourceFilter,
    ) -> Result<MulticastUnderlay, OpteError> {
        let underlay = resolve(m2p, group)?.ok_or_else(|| {
            OpteError::BadState(format!(
                "no M2P mapping for {group}: map it to an underlay group before subscribing"
            ))
        })?;
        validate_filter(&filter, Some(group), self.limits.filter_sources)?;

        let mut t = self.inner.write();
        let members = t.groups.get(&underlay);
        let is_new = members.is_none_or(|m| !m.contains_key(port));
        if is_new {
            if members.is_none() && t.groups.len() >= self.limits.groups {
                return Err(OpteError::MaxCapacity(self.limits.groups as u64));
            }
            if members.map_or(0, BTreeMap::len) >= self.limits.subscribers_per_group {
                return Err(OpteError::MaxCapacity(
                    self.limits.subscribers_per_group as u64,
                ));
            }
            if t.count >= self.limits.subscriptions {
                return Err(OpteError::MaxCapacity(self.limits.subscriptions as u64));
            }
            t.count += 1;
        }
        t.groups
            .entry(underlay)
            .or_default()
            .insert(port.to_string(), filter);
        Ok(underlay)
    }

    /// Unsubscribe `port` from overlay `group`. A port that is not subscribed, or a group
    /// with no M2P mapping, is a no-op (`Ok(false)`), as in the reference: the control
    /// plane may repeat an unsubscribe. Only a group that is not multicast is refused.
    pub fn unsubscribe(
        &self,
        m2p: &Mcast2Phys,
        port: &str,
        group: IpAddr,
    ) -> Result<bool, OpteError> {
        let Some(underlay) = resolve(m2p, group)? else {
            return Ok(false);
        };
        let mut t = self.inner.write();
        let Some(members) = t.groups.get_mut(&underlay) else {
            return Ok(false);
        };
        if members.remove(port).is_none() {
            return Ok(false);
        }
        if members.is_empty() {
            t.groups.remove(&underlay);
        }
        t.count = t.count.saturating_sub(1);
        Ok(true)
    }

    /// Unsubscribe every port from overlay `group`; returns how many there were. A group
    /// with no M2P mapping is a no-op (`Ok(0)`).
    pub fn unsubscribe_all(&self, m2p: &Mcast2Phys, group: IpAddr) -> Result<usize, OpteError> {
        let Some(underlay) = resolve(m2p, group)? else {
            return Ok(0);
        };
        Ok(self.inner.write().remove_group(underlay))
    }

    /// Drop every subscription of `port` (it is being deleted); returns how many.
    pub fn unsubscribe_port(&self, port: &str) -> usize {
        let mut t = self.inner.write();
        let mut n = 0;
        t.groups.retain(|_, members| {
            n += usize::from(members.remove(port).is_some());
            !members.is_empty()
        });
        t.count = t.count.saturating_sub(n);
        n
    }

    /// The data-path question: call `f` with each port subscribed to `underlay` whose
    /// filter allows `src` (the inner source), in name order, skipping `sender` (a port
    /// never receives its own multicast). `f` runs with the table locked: collect, don't
    /// deliver.
    pub fn for_each_receiver(
        &self,
        underlay: MulticastUnderlay,
        src: IpAddr,
        sender: Option<&str>,
        mut f: impl FnMut(&str),
    ) -> Fanout {
        let t = self.inner.read();
        let mut out = Fanout::default();
        let Some(members) = t.groups.get(&underlay) else {
            return out;
        };
        for (port, filter) in members {
            if Some(port.as_str()) == sender {
                continue;
            }
            if filter.allows(src) {
                f(port);
                out.delivered += 1;
            } else {
                out.filtered += 1;
            }
        }
        out
    }

    /// Whether any port subscribes to anything (the receive path drops underlay multicast
    /// at once when none does).
    pub fn is_empty(&self) -> bool {
        self.inner.read().groups.is_empty()
    }

    /// The sources some subscriber of `underlay` accepts (see [`aggregate_filter`]);
    /// `None` if nobody subscribes.
    pub fn aggregate(&self, underlay: MulticastUnderlay) -> Option<SourceFilter> {
        let t = self.inner.read();
        t.groups
            .get(&underlay)
            .map(|m| aggregate_filter(m.values()))
    }

    /// The groups `port` subscribes to, with its filter in each, by underlay group.
    pub fn groups_of(&self, port: &str) -> Vec<(MulticastUnderlay, SourceFilter)> {
        let t = self.inner.read();
        t.groups
            .iter()
            .filter_map(|(u, m)| m.get(port).map(|f| (*u, f.clone())))
            .collect()
    }

    /// Every subscription, by underlay group, each group's ports in name order.
    pub fn dump(&self) -> DumpMcastSubscriptionsResp {
        let t = self.inner.read();
        DumpMcastSubscriptionsResp {
            entries: t
                .groups
                .iter()
                .map(|(u, m)| McastSubscriptionEntry {
                    underlay: *u,
                    subscribers: m
                        .iter()
                        .map(|(port, filter)| McastSubscriberEntry {
                            port: port.clone(),
                            filter: filter.clone(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}
