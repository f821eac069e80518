//! Expiry and eviction policies: when an idle entry is removed by the timer, and how
//! willingly a live entry gives up its slot to a new flow when its table is full.

use crate::engine::time::Moment;
use opte_api::InnerFlowId;
use opte_api::ip::Protocol;

/// Idle time after which the default policy expires an entry.
pub const FLOW_DEF_EXPIRE_SECS: u64 = 60;

/// The default policy: expire after [`FLOW_DEF_EXPIRE_SECS`] idle.
pub const FLOW_DEF_TTL: Ttl = Ttl::from_secs(FLOW_DEF_EXPIRE_SECS);

/// How willingly an entry gives up its slot when its table is full.
///
/// The derived order runs from most to least protected: `Protected < Evictable(0) <
/// Evictable(1) < ... < Evictable(u16::MAX)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EvictionPriority {
    /// Never evicted; the entry leaves only by expiry or explicit removal.
    #[default]
    Protected,
    /// May be evicted; a higher number is evicted sooner.
    Evictable(u16),
}

/// Decides, per entry, when the timer removes it and how evictable it is meanwhile.
///
/// Both methods are pure functions of their arguments: `last_hit` is the entry's (shared)
/// last-hit time and `now` is handed in by the caller, so tests drive them with any clock.
pub trait ExpiryPolicy<K, S> {
    /// Whether the timer should remove this entry (given that no live child holds it).
    fn is_expired(&self, key: &K, state: &S, last_hit: Moment, now: Moment) -> bool;

    /// How evictable the entry is at `now`. Protection inherited from children
    /// ([`super::Lifetime::protect_until`]) is applied by the table on top of this.
    fn eviction_priority(
        &self,
        key: &K,
        state: &S,
        last_hit: Moment,
        now: Moment,
    ) -> EvictionPriority;
}

/// A fixed idle timeout, the policy of the UFTs and the LFTs.
///
/// Eviction: TCP flows are `Evictable(u16::MAX)`, the least protected, because the state
/// that makes them worth keeping lives in the TCP table, whose entries are their children and
/// shield them while the connection is healthy. Every other flow is `Protected`: nothing
/// says it is stale before its timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ttl {
    ms: u64,
}

impl Ttl {
    pub const fn from_secs(secs: u64) -> Self {
        Self {
            ms: secs.saturating_mul(1000),
        }
    }

    pub const fn from_millis(ms: u64) -> Self {
        Self { ms }
    }

    pub const fn as_millis(self) -> u64 {
        self.ms
    }

    pub const fn as_secs(self) -> u64 {
        self.ms / 1000
    }

    /// True once `now` is at least the TTL past `last_hit`.
    pub const fn is_expired(self, last_hit: Moment, now: Moment) -> bool {
        now.millis_since(last_hit) >= self.ms
    }
}

impl Default for Ttl {
    fn default() -> Self {
        FLOW_DEF_TTL
    }
}

impl<S> ExpiryPolicy<InnerFlowId, S> for Ttl {
    fn is_expired(&self, _key: &InnerFlowId, _state: &S, last_hit: Moment, now: Moment) -> bool {
        Ttl::is_expired(*self, last_hit, now)
    }

    fn eviction_priority(
        &self,
        key: &InnerFlowId,
        _state: &S,
        _last_hit: Moment,
        _now: Moment,
    ) -> EvictionPriority {
        if key.protocol() == Protocol::TCP {
            EvictionPriority::Evictable(u16::MAX)
        } else {
            EvictionPriority::Protected
        }
    }
}

/// A priority between `start_prio` and `end_prio` in proportion to where `delta_ms` falls
/// between `start_ms` and `end_ms`.
///
/// Clamps: `start_prio` at or before `start_ms`, `end_prio` at or after `end_ms`. Inside
/// the window the position is a 16-bit binary fraction (truncated), the scaled step count is
/// rounded half up. `None` if `start_ms > end_ms` or `end_prio < start_prio`.
pub fn priority_lerp(
    start_ms: u64,
    start_prio: u16,
    end_ms: u64,
    end_prio: u16,
    delta_ms: u64,
) -> Option<u16> {
    const FRAC_BITS: u32 = 16;
    const HALF: u128 = 1 << (FRAC_BITS - 1);

    if start_ms > end_ms || end_prio < start_prio {
        return None;
    }
    if delta_ms <= start_ms {
        return Some(start_prio);
    }
    if delta_ms >= end_ms {
        return Some(end_prio);
    }
    // Here start_ms < delta_ms < end_ms, so the window is non-empty and the fraction is in
    // [0, 1). u128 keeps the shifted position from overflowing for any u64 times.
    let window = u128::from(end_ms - start_ms);
    let frac = (u128::from(delta_ms - start_ms) << FRAC_BITS) / window;
    let steps = (frac * u128::from(end_prio - start_prio) + HALF) >> FRAC_BITS;
    let steps = u16::try_from(steps).ok()?;
    Some(start_prio.saturating_add(steps).min(end_prio))
}
