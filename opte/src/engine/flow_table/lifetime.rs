//! Shared lifetimes: how entries in different tables keep each other alive, protect each
//! other from eviction and die together, without any entry holding a list of its children.
//!
//! A [`Lifetime`] is a small cell of atomics behind an [`Arc`]. Entries that must live and
//! die as one (an LFT inbound/outbound pair) share a single cell. An entry that depends on
//! others (a UFT entry on the LFT entries that produced it, a TCP entry on its LFT and UFT
//! entries) holds the cells of those *parents*; the parents only keep a count of their live
//! children. Information flows through the cells:
//!
//! - down, by polling: a parent that is evicted is *killed*; a child tests its parents'
//!   killed flags ([`super::FlowEntry::is_dead`]) and is treated as gone.
//! - up, by pushing: a child that leaves its table decrements each parent's live-child count
//!   and raises the parent's last-hit time to its own; a child may also extend its parents'
//!   eviction protection ([`Lifetime::protect_until`]).
//!
//! All atomics use relaxed ordering: the values are advisory clocks and counters, read and
//! written under the port's lock discipline, never used to publish other memory.

use crate::engine::time::Moment;
use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// How far a protection deadline must move before it is raised again (1 s): eviction
/// priorities change over seconds, so a finer shield buys nothing.
pub const PROTECT_GRANULARITY_NS: u64 = 1_000_000_000;

/// The liveness state shared by one or more flow entries (see the module docs).
#[derive(Debug)]
pub struct Lifetime {
    /// Last time any sharer was hit (or a child that left pushed its own time up), in ns.
    last_hit_ns: AtomicU64,
    /// Until this moment (ns) eviction treats the sharers as protected, whatever their own
    /// policy says; raised by children that are themselves protected.
    protected_until_ns: AtomicU64,
    /// Number of entries, in any table, that hold this cell as a parent.
    live_children: AtomicU32,
    /// Set when a sharer is evicted: every sharer and every child is then dead.
    killed: AtomicBool,
}

impl Lifetime {
    /// A fresh cell, last hit at `now`, not killed, no children, no inherited protection.
    pub fn new(now: Moment) -> Arc<Self> {
        Arc::new(Self {
            last_hit_ns: AtomicU64::new(now.as_nanos()),
            protected_until_ns: AtomicU64::new(0),
            live_children: AtomicU32::new(0),
            killed: AtomicBool::new(false),
        })
    }

    /// The last time a sharer (or a departed child) was hit.
    pub fn last_hit(&self) -> Moment {
        Moment::from_nanos(self.last_hit_ns.load(Ordering::Relaxed))
    }

    /// Records a hit at `now` unless a later one is already recorded.
    ///
    /// This is the per-packet path, so it avoids a read-modify-write: a load, and a plain
    /// store only when the time moves forward. Two racing hits may leave the slightly older
    /// of the two times, which expiry (measured in seconds) cannot notice.
    pub fn touch(&self, now: Moment) {
        let now = now.as_nanos();
        if now > self.last_hit_ns.load(Ordering::Relaxed) {
            self.last_hit_ns.store(now, Ordering::Relaxed);
        }
    }

    /// Raises the last-hit time to `t` exactly (used when a child leaves its table).
    fn inherit_last_hit(&self, t: Moment) {
        self.last_hit_ns.fetch_max(t.as_nanos(), Ordering::Relaxed);
    }

    /// Whether a sharer has been evicted.
    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Relaxed)
    }

    /// Marks every sharer, and every child of this cell, dead.
    ///
    /// The kill generation moves only if some entry holds this cell as a parent: the
    /// generation is what children's cached "parents alive" answers are checked against,
    /// and sharers read the cell itself. A flood that evicts childless entries one after
    /// another (SYNs at full tables) then leaves every other entry's answer cached, rather
    /// than sending each liveness check on a walk over its parents.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Relaxed);
        if self.live_children() > 0 {
            KILLS.fetch_add(1, Ordering::Release);
        }
    }

    /// How many entries currently hold this cell as a parent. Timer expiry keeps the
    /// sharers while this is non-zero.
    pub fn live_children(&self) -> u32 {
        self.live_children.load(Ordering::Relaxed)
    }

    /// The moment until which eviction treats the sharers as protected.
    pub fn protected_until(&self) -> Moment {
        Moment::from_nanos(self.protected_until_ns.load(Ordering::Relaxed))
    }

    /// Extends eviction protection of the sharers up to `until` (never shortens it).
    ///
    /// This is how an entry's protection is inherited by the entries it depends on: an
    /// established TCP connection shields the firewall and NAT state it runs through.
    ///
    /// Every packet of a connection asks for this, with a deadline that moves with the
    /// clock; the shield is only raised once it would grow by more than
    /// [`PROTECT_GRANULARITY_NS`], so most packets cost a load and nothing more.
    pub fn protect_until(&self, until: Moment) {
        let until = until.as_nanos();
        let cur = self.protected_until_ns.load(Ordering::Relaxed);
        if until > cur.saturating_add(PROTECT_GRANULARITY_NS) || (until > cur && cur == 0) {
            self.protected_until_ns.fetch_max(until, Ordering::Relaxed);
        }
    }

    fn add_child(&self) {
        self.live_children.fetch_add(1, Ordering::Relaxed);
    }

    fn remove_child(&self) {
        // Saturating: a miscount must never wrap around into "many children", which would
        // pin the entry in its table for good.
        let _ = self
            .live_children
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }
}

/// An entry's own lifetime and the lifetimes of its parents.
///
/// Creating the links registers the entry as a child of each parent; dropping them (the
/// entry left its table, whatever the reason) deregisters it and pushes its last-hit time
/// up to each parent.
#[derive(Debug)]
pub(super) struct Links {
    pub(super) lifetime: Arc<Lifetime>,
    pub(super) parents: Box<[Arc<Lifetime>]>,
    /// The kill generation at which every parent was last seen alive.
    checked: AtomicU64,
    /// The last protection deadline pushed to the parents (ns; 0 for none).
    pushed: AtomicU64,
}

/// Bumped by every kill, in any table: an entry whose parents were all alive at generation
/// `g` need not look at them again while the generation is still `g`, so the per-packet
/// liveness check is one load instead of one per parent (each in its own cache line).
static KILLS: AtomicU64 = AtomicU64::new(0);

impl Links {
    /// Links `lifetime` under `parents`. A parent listed twice (e.g. both halves of an LFT
    /// pair, which share one cell) is registered once; a parent that is `lifetime` itself is
    /// ignored, since an entry cannot keep itself alive.
    pub(super) fn new(lifetime: Arc<Lifetime>, parents: &[Arc<Lifetime>]) -> Self {
        let mut unique: Vec<Arc<Lifetime>> = Vec::with_capacity(parents.len());
        for p in parents {
            if !Arc::ptr_eq(p, &lifetime) && !unique.iter().any(|u| Arc::ptr_eq(u, p)) {
                p.add_child();
                unique.push(Arc::clone(p));
            }
        }
        Self {
            lifetime,
            parents: unique.into_boxed_slice(),
            checked: AtomicU64::new(u64::MAX),
            pushed: AtomicU64::new(0),
        }
    }

    /// True if this entry's cell or any parent's cell has been killed. Inline: every
    /// lookup asks, and the usual answer takes three loads; the walk over the parents
    /// (after a kill somewhere) is out of line.
    #[inline]
    pub(super) fn is_dead(&self) -> bool {
        if self.lifetime.is_killed() {
            return true;
        }
        if self.parents.is_empty() {
            return false;
        }
        // A kill that races with this check is as if it came just after it.
        let generation = KILLS.load(Ordering::Acquire);
        if self.checked.load(Ordering::Relaxed) == generation {
            return false;
        }
        self.parent_killed(generation)
    }

    /// The rest of [`Self::is_dead`]: walk the parents, and remember a clean walk against
    /// the kill `generation` it was made at.
    #[inline(never)]
    fn parent_killed(&self, generation: u64) -> bool {
        if self.parents.iter().any(|p| p.is_killed()) {
            return true;
        }
        self.checked.store(generation, Ordering::Relaxed);
        false
    }

    /// Extend the parents' protection to `until` (see [`Lifetime::protect_until`]),
    /// skipping the walk over them when the last push already covers it to within the
    /// granularity.
    pub(super) fn protect_parents_until(&self, until: Moment) {
        let u = until.as_nanos();
        let pushed = self.pushed.load(Ordering::Relaxed);
        if pushed != 0 && u <= pushed.saturating_add(PROTECT_GRANULARITY_NS) {
            return;
        }
        self.pushed.store(u, Ordering::Relaxed);
        for p in self.parents.iter() {
            p.protect_until(until);
        }
    }
}

impl Drop for Links {
    fn drop(&mut self) {
        let last = self.lifetime.last_hit();
        for p in self.parents.iter() {
            p.inherit_last_hit(last);
            p.remove_child();
        }
    }
}
