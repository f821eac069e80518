//! The fragment table of a port: how later IP fragments, which carry no L4 header, find the
//! flow their datagram belongs to.
//!
//! A first fragment (offset 0, more fragments set) carries the TCP/UDP/ICMP header, so it
//! is processed like any packet of its flow. When it passes, the port remembers its
//! datagram, keyed by what every fragment of it repeats — source, destination, protocol and
//! IP identification (RFC 791 §3.2; the Fragment header's identification for IPv6, RFC 8200
//! §4.5) — and the flow key with ports the first fragment was processed under. A later
//! fragment of that datagram is then processed as that flow: it hits the flow's UFT entry
//! and gets the flow's L3, Ethernet and encapsulation changes. Port rewrites do not apply
//! (there is no L4 header to rewrite), and neither does the L4 checksum delta: the first
//! fragment's checksum, fixed once, covers the whole datagram.
//!
//! # Why not reassemble
//!
//! The engine rewrites fragments one by one and never holds a packet. Reassembly would make
//! the port buffer up to 64 KiB per datagram of attacker-chosen traffic, time out partial
//! datagrams and re-fragment the result to the path MTU; here a datagram costs one small
//! entry. The price: a later fragment that arrives before its first fragment (reordered) has
//! no entry and is dropped, counted, like any fragment of a datagram whose first fragment was
//! dropped or never seen. So is every later fragment of an ICMP error: its transform rewrites
//! the quoted packet, which a later fragment does not start with.
//!
//! # Bounds
//!
//! At most [`FRAG_TABLE_LIMIT`] datagrams per direction, in a ring: a new datagram takes the
//! oldest one's slot. An entry serves its fragments for [`FRAG_TTL`] after its first
//! fragment, measured with the caller's `now`; fragments of a datagram arrive together, and
//! the IP identification wraps, so an older entry is more likely wrong than useful.

use super::flow_table::Ttl;
use super::time::Moment;
use crate::packet::parse::FragInfo;
use alloc::vec::Vec;
use core::hash::BuildHasher;
use foldhash::fast::FixedState;
use hashbrown::HashTable;
use opte_api::{AddrPair, InnerFlowId};

/// Datagrams a fragment table remembers per direction.
pub const FRAG_TABLE_LIMIT: usize = 1024;

/// How long after its first fragment a datagram's later fragments are recognised.
pub const FRAG_TTL: Ttl = Ttl::from_secs(5);

/// What identifies the datagram a fragment belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FragKey {
    pub addrs: AddrPair,
    pub proto: u8,
    pub ident: u32,
}

impl FragKey {
    /// The datagram of a fragment whose parsed flow key is `flow` (only its addresses and
    /// protocol count).
    pub fn new(flow: &InnerFlowId, frag: &FragInfo) -> Self {
        Self {
            addrs: flow.addrs,
            proto: flow.proto,
            ident: frag.ident,
        }
    }
}

/// Event counts of one fragment table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FragStats {
    /// First fragments remembered.
    pub remembered: u64,
    /// Live entries overwritten by a newer datagram because the table was full.
    pub evicted: u64,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    key: FragKey,
    flow: InnerFlowId,
    at: Moment,
}

/// A bounded map from datagram to flow key; see the module docs.
pub struct FragTable {
    limit: usize,
    ttl: Ttl,
    hasher: FixedState,
    /// The ring, grown up to `limit` slots; a slot is empty once its datagram's entry was
    /// replaced by a newer first fragment of the same datagram.
    slots: Vec<Option<Slot>>,
    /// The slot the next datagram takes once the ring is full: the oldest.
    next: usize,
    /// Slot indices by the hash of their key.
    index: HashTable<usize>,
    stats: FragStats,
}

impl core::fmt::Debug for FragTable {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FragTable")
            .field("limit", &self.limit)
            .field("entries", &self.index.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl FragTable {
    /// An empty table of at most `limit` datagrams (at least one), each recognised for
    /// `ttl`; `seed` keys its hash.
    pub fn new(limit: usize, ttl: Ttl, seed: u64) -> Self {
        Self {
            limit: limit.max(1),
            ttl,
            hasher: FixedState::with_seed(seed),
            slots: Vec::new(),
            next: 0,
            index: HashTable::new(),
            stats: FragStats::default(),
        }
    }

    /// Datagrams held, including expired ones not yet overwritten.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn stats(&self) -> FragStats {
        self.stats
    }

    /// Remember that datagram `key` belongs to `flow`, as of `now`. A datagram already
    /// held is replaced; a full table overwrites its oldest entry.
    pub fn insert(&mut self, key: FragKey, flow: InnerFlowId, now: Moment) {
        let hash = self.hasher.hash_one(key);
        let Self {
            slots,
            index,
            hasher,
            ..
        } = self;
        let holds = |slots: &[Option<Slot>], i: usize, k: &FragKey| {
            slots
                .get(i)
                .and_then(Option::as_ref)
                .is_some_and(|s| s.key == *k)
        };
        if let Ok(old) = index.find_entry(hash, |&i| holds(slots, i, &key)) {
            let (i, _) = old.remove();
            if let Some(s) = slots.get_mut(i) {
                *s = None;
            }
        }
        let at = if slots.len() < self.limit {
            slots.push(None);
            slots.len() - 1
        } else {
            let at = self.next;
            self.next = (at + 1) % self.limit;
            if let Some(old) = slots.get_mut(at).and_then(Option::take) {
                let h = hasher.hash_one(old.key);
                if let Ok(e) = index.find_entry(h, |&i| i == at) {
                    e.remove();
                }
                if !self.ttl.is_expired(old.at, now) {
                    self.stats.evicted = self.stats.evicted.saturating_add(1);
                }
            }
            at
        };
        if let Some(s) = slots.get_mut(at) {
            *s = Some(Slot { key, flow, at: now });
            index.insert_unique(hash, at, |&i| {
                slots
                    .get(i)
                    .and_then(Option::as_ref)
                    .map_or(0, |s| hasher.hash_one(s.key))
            });
            self.stats.remembered = self.stats.remembered.saturating_add(1);
        }
    }

    /// The flow of datagram `key`, unless unknown or older than the TTL at `now`.
    pub fn get(&self, key: &FragKey, now: Moment) -> Option<InnerFlowId> {
        let hash = self.hasher.hash_one(key);
        let i = *self.index.find(hash, |&i| {
            self.slots
                .get(i)
                .and_then(Option::as_ref)
                .is_some_and(|s| s.key == *key)
        })?;
        let s = self.slots.get(i)?.as_ref()?;
        (!self.ttl.is_expired(s.at, now)).then_some(s.flow)
    }

    pub fn clear(&mut self) {
        self.slots.clear();
        self.index.clear();
        self.next = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opte_api::Ipv4Addr;

    fn key(ident: u32) -> FragKey {
        FragKey {
            addrs: AddrPair::V4 {
                src: Ipv4Addr::from([172, 30, 0, 5]),
                dst: Ipv4Addr::from([93, 184, 216, 34]),
            },
            proto: 17,
            ident,
        }
    }

    fn flow(sport: u16) -> InnerFlowId {
        InnerFlowId::with_ports(17, key(0).addrs, sport, 53)
    }

    #[test]
    fn remembers_datagrams_until_the_ttl() {
        let mut t = FragTable::new(8, FRAG_TTL, 1);
        let t0 = Moment::from_secs(100);
        t.insert(key(7), flow(1000), t0);
        assert_eq!(t.get(&key(7), t0.plus_millis(4999)), Some(flow(1000)));
        assert_eq!(t.get(&key(7), t0.plus_secs(5)), None);
        assert_eq!(t.get(&key(8), t0), None);
        // Another protocol or address pair is another datagram.
        assert_eq!(t.get(&FragKey { proto: 6, ..key(7) }, t0), None);
        // A new first fragment of the same datagram replaces the entry.
        t.insert(key(7), flow(2000), t0.plus_secs(10));
        assert_eq!(t.get(&key(7), t0.plus_secs(10)), Some(flow(2000)));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn a_full_table_overwrites_its_oldest_datagram() {
        let mut t = FragTable::new(4, FRAG_TTL, 2);
        let now = Moment::from_secs(1);
        for i in 0..4 {
            t.insert(key(i), flow(i as u16), now);
        }
        t.insert(key(4), flow(4), now);
        assert_eq!(t.len(), 4);
        assert_eq!(t.get(&key(0), now), None, "the oldest went");
        for i in 1..5 {
            assert_eq!(t.get(&key(i), now), Some(flow(i as u16)));
        }
        assert_eq!(t.stats().evicted, 1);
        // A flood keeps it at its limit, always holding the newest.
        for i in 5..10_000 {
            t.insert(key(i), flow(1), now);
        }
        assert_eq!(t.len(), 4);
        assert!((9_996..10_000).all(|i| t.get(&key(i), now).is_some()));
        assert_eq!(t.stats().remembered, 10_000);
        t.clear();
        assert!(t.is_empty());
        assert_eq!(t.get(&key(9_999), now), None);
    }
}
