//! Bounded flow tables: the UFTs, the LFTs and the TCP table.
//!
//! A [`FlowTable`] maps a flow key to a [`FlowEntry`] holding the caller's state, a hit
//! counter, a dirty flag (for soft rule refreshes) and a shared [`Lifetime`]. It never holds
//! more than its limit, whatever keys arrive: a full table evicts one entry chosen by its
//! [`ExpiryPolicy`] or refuses the insert with [`TableFull`] (both counted). It is not for
//! locking, probes or kstats: the port that owns the tables does those.
//!
//! # Eviction
//!
//! The victim is chosen by a bounded scan, never a walk of the whole table, so a flood of
//! new flows against a full table costs a constant amount of work per flow. The scan is a
//! clock hand over the hash table's buckets: it resumes where the previous one stopped,
//! walks buckets in memory order (cheap, cache-friendly) and examines [`EVICTION_SCAN`] live
//! entries (extended up to [`EVICTION_SCAN_MAX`] while every entry seen was protected, and
//! never more than [`EVICTION_SCAN_BUCKETS`] buckets). Bucket order is hash order, i.e. a
//! keyed pseudo-random order unrelated to age, so each scan samples the table. Among the
//! entries examined it picks, in order:
//!
//! 1. the first dead entry (killed, or with a killed parent);
//! 2. else the highest [`EvictionPriority::Evictable`] priority, ties to the oldest last hit.
//!
//! Protected entries, and entries shielded by a child ([`Lifetime::protect_until`]), are
//! never chosen. With fewer entries than the scan length the choice is exact.
//!
//! # Memory
//!
//! The scan needs no side structure: a table is one hash table plus one [`Lifetime`]
//! allocation per entry (and a parent list for linked entries), whatever the key stream.
//! Inserts beyond the limit evict or fail, so the hash table only grows while it holds at
//! most `limit` entries; under churn (its removed slots become tombstones) it settles at
//! fewer than five buckets per allowed entry and never grows again.
//!
//! # Lifetimes
//!
//! See [`lifetime`]: entries can share one [`Lifetime`] (an LFT pair) and can name other
//! entries' lifetimes as parents. Timer expiry keeps an entry whose lifetime has live
//! children; eviction kills the victim's lifetime, which makes every sharer and child dead:
//! [`FlowTable::get`] no longer returns them and they are the first reaped.
//!
//! # Sweeps
//!
//! Timer expiry and dumps can walk a table a slice at a time: [`FlowTable::expire_some`]
//! and [`FlowTable::iter_from`] start at a bucket index and report where to resume, so a
//! host with a million flows never holds a port for a whole-table walk. Bucket order is
//! stable while the table is not resized or rehashed (only an insert does either): a sweep
//! resumed across such inserts may miss or repeat entries for that round, and the next
//! round covers them.

pub mod lifetime;
pub mod policy;

#[cfg(test)]
mod tests;

pub use lifetime::Lifetime;
pub use policy::{
    EvictionPriority, ExpiryPolicy, FLOW_DEF_EXPIRE_SECS, FLOW_DEF_TTL, Ttl, priority_lerp,
};

use crate::engine::time::Moment;
use alloc::sync::Arc;
use core::fmt;
use core::hash::{BuildHasher, Hash};
use core::num::NonZeroU32;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use foldhash::fast::FixedState;
use hashbrown::HashTable;
use hashbrown::hash_table::Entry;
use lifetime::Links;

/// Live entries examined by one eviction.
pub const EVICTION_SCAN: usize = 32;

/// Live entries one eviction may examine while it has seen only protected ones.
pub const EVICTION_SCAN_MAX: usize = 128;

/// Buckets one eviction may walk. A full table uses over a fifth of its buckets (see Memory
/// in the module docs), so this covers the extended scan.
pub const EVICTION_SCAN_BUCKETS: usize = 1024;

/// Buckets a sweep may walk per entry of its budget. A full table uses over a fifth of its
/// buckets (see Memory in the module docs), so a table down to an eighth full is swept at
/// the full entry rate; a sparser one takes more calls, each still bounded.
pub const SWEEP_BUCKETS_PER_ENTRY: usize = 8;

/// How far one bounded sweep ([`FlowTable::expire_some`]) got.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sweep {
    /// Entries examined, dead or alive.
    pub visited: usize,
    /// Buckets walked, occupied or not.
    pub buckets: usize,
    /// Entries removed.
    pub removed: usize,
    /// The bucket to resume at, or `None` once the sweep reached the end of the table.
    pub next: Option<usize>,
}

/// An insert was refused: the table is at its limit and nothing could be evicted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableFull {
    pub table: &'static str,
    pub limit: NonZeroU32,
}

impl fmt::Display for TableFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "flow table {} is full ({} entries) and no entry can be evicted",
            self.table, self.limit
        )
    }
}

impl core::error::Error for TableFull {}

/// Event counts of one table since it was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowTableStats {
    /// Entries removed to make room for a new one (by `add` or [`FlowTable::evict`]).
    pub evictions: u64,
    /// Inserts refused with [`TableFull`].
    pub refused: u64,
    /// Entries removed by [`FlowTable::expire_flows`] or [`FlowTable::expire`].
    pub expired: u64,
}

/// One flow's entry: the caller's state plus the bookkeeping the table needs.
///
/// Everything but the state can be updated through a shared reference, so a lookup under a
/// read lock can record a hit.
#[derive(Debug)]
pub struct FlowEntry<S> {
    state: S,
    hits: AtomicU64,
    dirty: AtomicBool,
    links: Links,
}

impl<S> FlowEntry<S> {
    pub fn state(&self) -> &S {
        &self.state
    }

    pub fn state_mut(&mut self) -> &mut S {
        &mut self.state
    }

    /// Packets counted by [`Self::hit`].
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Counts a packet and records `now` as the (shared) last-hit time.
    ///
    /// A load and a store rather than an atomic add: this runs for every packet, and a
    /// locked read-modify-write costs more than the rest of the bookkeeping. Two lookups
    /// racing under a shared lock may count one hit instead of two; the counter is a
    /// statistic, not an invariant.
    pub fn hit(&self, now: Moment) {
        self.hits.store(
            self.hits.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Relaxed,
        );
        self.links.lifetime.touch(now);
    }

    /// The last hit of this entry or of any entry sharing its lifetime.
    pub fn last_hit(&self) -> Moment {
        self.links.lifetime.last_hit()
    }

    /// This entry's lifetime: share it with a partner entry, or pass it as a parent of the
    /// entries that depend on this one.
    pub fn lifetime(&self) -> &Arc<Lifetime> {
        &self.links.lifetime
    }

    /// The lifetimes this entry depends on (duplicates removed).
    pub fn parents(&self) -> &[Arc<Lifetime>] {
        &self.links.parents
    }

    /// True if this entry, a sharer of its lifetime, or one of its parents was evicted.
    /// Costs one atomic load per parent.
    pub fn is_dead(&self) -> bool {
        self.links.is_dead()
    }

    /// Shields every parent from eviction until `until` (see [`Lifetime::protect_until`]).
    pub fn protect_parents_until(&self, until: Moment) {
        self.links.protect_parents_until(until);
    }

    /// Set by [`FlowTable::mark_dirty`]: the entry predates a rule change and must be
    /// revalidated before use.
    pub fn is_dirty(&self) -> bool {
        self.dirty.load(Ordering::Relaxed)
    }

    pub fn clear_dirty(&self) {
        self.dirty.store(false, Ordering::Relaxed);
    }
}

/// A bounded map from flow key to [`FlowEntry`] with timer expiry and eviction by policy.
/// See the module docs.
pub struct FlowTable<K, S, P = Ttl> {
    name: &'static str,
    limit: NonZeroU32,
    policy: P,
    hasher: FixedState,
    table: HashTable<(K, FlowEntry<S>)>,
    /// The eviction clock hand: the next bucket index to examine.
    hand: usize,
    stats: FlowTableStats,
}

impl<K, S, P> fmt::Debug for FlowTable<K, S, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlowTable")
            .field("name", &self.name)
            .field("limit", &self.limit)
            .field("flows", &self.table.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// How an eviction scan ranks a candidate; the greatest rank is evicted.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Rank {
    /// Higher priority first; at equal priority the older hit, i.e. the smaller time.
    Evictable(u16, core::cmp::Reverse<Moment>),
    Dead,
}

impl<K, S, P> FlowTable<K, S, P>
where
    K: Copy + Eq + Hash,
    P: ExpiryPolicy<K, S>,
{
    /// An empty table. `seed` keys the hash function (hash-flooding resistance): the host
    /// draws a random one per table; the engine has no randomness of its own.
    pub fn new(name: &'static str, limit: NonZeroU32, policy: P, seed: u64) -> Self {
        Self {
            name,
            limit,
            policy,
            hasher: FixedState::with_seed(seed),
            table: HashTable::new(),
            hand: 0,
            stats: FlowTableStats::default(),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn limit(&self) -> NonZeroU32 {
        self.limit
    }

    pub fn policy(&self) -> &P {
        &self.policy
    }

    /// Entries held, including dead ones not yet reaped (they occupy slots).
    pub fn num_flows(&self) -> u32 {
        u32::try_from(self.table.len()).unwrap_or(u32::MAX)
    }

    pub fn is_full(&self) -> bool {
        self.table.len() >= usize::try_from(self.limit.get()).unwrap_or(usize::MAX)
    }

    pub fn stats(&self) -> FlowTableStats {
        self.stats
    }

    /// Inserts `state` under `key` with a fresh lifetime and no parents.
    /// See [`Self::add_linked`].
    pub fn add(&mut self, key: K, state: S, now: Moment) -> Result<Option<(K, S)>, TableFull> {
        self.add_linked(key, state, now, Lifetime::new(now), &[])
    }

    /// Inserts `state` under `key`, sharing `lifetime` (which is touched at `now`) and
    /// registered as a child of each of `parents`.
    ///
    /// An existing entry under `key` is replaced (its state dropped) without eviction. If
    /// the table is full, one entry is evicted first and returned; if none can be, nothing
    /// changes and the insert is refused (and counted).
    pub fn add_linked(
        &mut self,
        key: K,
        state: S,
        now: Moment,
        lifetime: Arc<Lifetime>,
        parents: &[Arc<Lifetime>],
    ) -> Result<Option<(K, S)>, TableFull> {
        let hash = self.hasher.hash_one(key);
        let mut evicted = None;
        if self.is_full() && self.table.find(hash, |(k, _)| *k == key).is_none() {
            let Some(victim) = self.find_evictable(now) else {
                self.stats.refused = self.stats.refused.saturating_add(1);
                return Err(TableFull {
                    table: self.name,
                    limit: self.limit,
                });
            };
            evicted = self.evict(&victim).map(|s| (victim, s));
        }
        lifetime.touch(now);
        let entry = FlowEntry {
            state,
            hits: AtomicU64::new(0),
            dirty: AtomicBool::new(false),
            links: Links::new(lifetime, parents),
        };
        let hasher = &self.hasher;
        match self
            .table
            .entry(hash, |(k, _)| *k == key, |(k, _)| hasher.hash_one(k))
        {
            Entry::Occupied(mut old) => old.get_mut().1 = entry,
            Entry::Vacant(slot) => {
                slot.insert((key, entry));
            }
        }
        Ok(evicted)
    }

    /// The live entry under `key`: dead entries (see [`FlowEntry::is_dead`]) are invisible.
    pub fn get(&self, key: &K) -> Option<&FlowEntry<S>> {
        let hash = self.hasher.hash_one(key);
        self.table
            .find(hash, |(k, _)| k == key)
            .map(|(_, e)| e)
            .filter(|e| !e.is_dead())
    }

    /// Like [`Self::get`], for updating the state.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut FlowEntry<S>> {
        let hash = self.hasher.hash_one(key);
        self.table
            .find_mut(hash, |(k, _)| k == key)
            .map(|(_, e)| e)
            .filter(|e| !e.is_dead())
    }

    /// The hash `key` is stored under: keep it beside a key looked up on every packet and
    /// pass it to [`Self::get_mut_hashed`] to skip hashing the key again.
    #[inline]
    pub fn hash_key(&self, key: &K) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Like [`Self::get_mut`], with the key's hash from [`Self::hash_key`] of this table.
    #[inline]
    pub fn get_mut_hashed(&mut self, hash: u64, key: &K) -> Option<&mut FlowEntry<S>> {
        self.table
            .find_mut(hash, |(k, _)| k == key)
            .map(|(_, e)| e)
            .filter(|e| !e.is_dead())
    }

    /// Removes the entry under `key`, dead or alive, returning its state. Its lifetime is not
    /// killed: children and sharers live on.
    pub fn remove(&mut self, key: &K) -> Option<S> {
        self.take(key).map(|e| e.state)
    }

    /// Removes the entry under `key` as expired (counted), returning its state.
    pub fn expire(&mut self, key: &K) -> Option<S> {
        let state = self.remove(key)?;
        self.stats.expired = self.stats.expired.saturating_add(1);
        Some(state)
    }

    /// Evicts the entry under `key`: kills its lifetime (so its sharers and children are
    /// dead too), removes it and counts an eviction.
    pub fn evict(&mut self, key: &K) -> Option<S> {
        let entry = self.take(key)?;
        entry.links.lifetime.kill();
        self.stats.evictions = self.stats.evictions.saturating_add(1);
        Some(entry.state)
    }

    /// The entry the next eviction would take, or `None` if every entry examined is
    /// protected. Moves the clock hand (see the module docs), hence `&mut`.
    pub fn find_evictable(&mut self, now: Moment) -> Option<K> {
        let buckets = self.table.num_buckets();
        if self.table.is_empty() || buckets == 0 {
            return None;
        }
        let mut best: Option<(Rank, K)> = None;
        let mut examined = 0;
        for _ in 0..buckets.min(EVICTION_SCAN_BUCKETS) {
            let enough = if best.is_some() {
                EVICTION_SCAN
            } else {
                EVICTION_SCAN_MAX
            };
            if examined >= enough {
                break;
            }
            // The table may have been resized since the hand last moved.
            let at = if self.hand < buckets { self.hand } else { 0 };
            self.hand = at.saturating_add(1);
            let Some((key, entry)) = self.table.get_bucket(at) else {
                continue;
            };
            examined += 1;
            let Some(rank) = Self::rank(&self.policy, key, entry, now) else {
                continue;
            };
            if rank == Rank::Dead {
                return Some(*key);
            }
            if best.is_none_or(|(b, _)| rank > b) {
                best = Some((rank, *key));
            }
        }
        best.map(|(_, k)| k)
    }

    /// Removes every entry that is dead, or that has no live children and is expired by
    /// the policy at `now`, handing each key and state to `on_removed`. Returns how many
    /// were removed.
    ///
    /// Expire child tables before their parents' tables, so the parents see their children
    /// gone (and inherit their last hits) in the same pass.
    pub fn expire_flows<F: FnMut(K, S)>(&mut self, now: Moment, on_removed: F) -> usize {
        self.expire_some(now, 0, usize::MAX, usize::MAX, on_removed)
            .removed
    }

    /// [`Self::expire_flows`] over a slice of the table: starting at bucket `from`, examines
    /// at most `max_entries` entries and walks at most `max_buckets` buckets, and says where
    /// to resume (see Sweeps in the module docs). A `from` past the end is the end.
    pub fn expire_some<F: FnMut(K, S)>(
        &mut self,
        now: Moment,
        from: usize,
        max_entries: usize,
        max_buckets: usize,
        mut on_removed: F,
    ) -> Sweep {
        let buckets = self.table.num_buckets();
        let mut sweep = Sweep::default();
        let mut at = from;
        while at < buckets {
            if sweep.visited >= max_entries || sweep.buckets >= max_buckets {
                sweep.next = Some(at);
                break;
            }
            let i = at;
            at += 1;
            sweep.buckets += 1;
            let Ok(slot) = self.table.get_bucket_entry(i) else {
                continue;
            };
            sweep.visited += 1;
            let (key, entry) = slot.get();
            let expired = entry.is_dead()
                || (entry.links.lifetime.live_children() == 0
                    && self
                        .policy
                        .is_expired(key, &entry.state, entry.last_hit(), now));
            if expired {
                // Removal empties the bucket and moves no other entry.
                let ((key, entry), _) = slot.remove();
                sweep.removed += 1;
                on_removed(key, entry.state);
            }
        }
        self.stats.expired = self
            .stats
            .expired
            .saturating_add(u64::try_from(sweep.removed).unwrap_or(u64::MAX));
        sweep
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.table.clear();
        self.hand = 0;
    }

    /// Marks every entry dirty (a soft rule refresh: entries survive but must be
    /// revalidated).
    pub fn mark_dirty(&self) {
        for (_, e) in self.table.iter() {
            e.dirty.store(true, Ordering::Relaxed);
        }
    }

    /// Live entries, in no particular order (dumps sort them).
    pub fn iter(&self) -> impl Iterator<Item = (&K, &FlowEntry<S>)> {
        self.table
            .iter()
            .filter(|(_, e)| !e.is_dead())
            .map(|(k, e)| (k, e))
    }

    /// Live entries in bucket order from bucket `from`, each with its bucket index: a paged
    /// dump resumes at the index after the last entry it took (see Sweeps in the module
    /// docs).
    pub fn iter_from(&self, from: usize) -> impl Iterator<Item = (usize, &K, &FlowEntry<S>)> {
        (from..self.table.num_buckets()).filter_map(|i| {
            self.table
                .get_bucket(i)
                .filter(|(_, e)| !e.is_dead())
                .map(|(k, e)| (i, k, e))
        })
    }

    /// Buckets of the underlying hash table: the end of a sweep's index range.
    pub fn num_buckets(&self) -> usize {
        self.table.num_buckets()
    }

    fn take(&mut self, key: &K) -> Option<FlowEntry<S>> {
        let hash = self.hasher.hash_one(key);
        let found = self.table.find_entry(hash, |(k, _)| k == key).ok()?;
        Some(found.remove().0.1)
    }

    /// `None` for an entry that can't be evicted now.
    fn rank(policy: &P, key: &K, entry: &FlowEntry<S>, now: Moment) -> Option<Rank> {
        if entry.is_dead() {
            return Some(Rank::Dead);
        }
        let last_hit = entry.last_hit();
        if now < entry.links.lifetime.protected_until() {
            return None;
        }
        match policy.eviction_priority(key, &entry.state, last_hit, now) {
            EvictionPriority::Protected => None,
            EvictionPriority::Evictable(p) => {
                Some(Rank::Evictable(p, core::cmp::Reverse(last_hit)))
            }
        }
    }
}
