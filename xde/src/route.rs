//! The underlay route cache (SPEC §7.6): next hops by (destination, flow hash), each valid
//! for [`VALID_MS`] after it was resolved and forgotten [`RETAIN_MS`] after it was last
//! used, at most [`ROUTE_CACHE_LIMIT`] of them. A port keeps one, so the OS's route lookup
//! runs once per destination and flow hash every 100 ms rather than once per packet.
//!
//! Unlike the reference, a next hop that cannot be resolved is an error: the packet is
//! dropped and counted, never sent with zero MACs (SPEC §13 quirk 8).

use crate::host::{Host, Link};
use alloc::collections::BTreeMap;
use core::fmt;
use opte::engine::time::Moment;
use opte_api::{Ipv6Addr, MacAddr};
use serde::{Deserialize, Serialize};

pub const VALID_MS: u64 = 100;
pub const RETAIN_MS: u64 = 1000;
pub const ROUTE_CACHE_LIMIT: usize = 8192;

/// Where to send an underlay packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    pub link: Link,
    pub src_mac: MacAddr,
    pub dst_mac: MacAddr,
}

/// Why no next hop could be had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteError {
    /// No underlay is attached.
    NoUnderlay,
    /// The route table has no route to the destination.
    NoRoute(Ipv6Addr),
    /// The gateway's link-layer address is not (yet) known; resolution was started.
    Unresolved(Ipv6Addr),
    /// The route leaves by a link that is not one of the two underlays.
    NotUnderlay(Ipv6Addr),
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoUnderlay => f.write_str("no underlay attached"),
            Self::NoRoute(d) => write!(f, "no route to {d}"),
            Self::Unresolved(g) => write!(f, "link-layer address of {g} not resolved"),
            Self::NotUnderlay(d) => write!(f, "route to {d} leaves by a non-underlay link"),
        }
    }
}

/// The cache's counters (the reference's `<port>_route_cache` kstat).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteCacheStats {
    pub hit: u64,
    pub miss: u64,
    pub refresh: u64,
    pub table_full: u64,
    pub error: u64,
    pub purged: u64,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    route: Route,
    resolved: Moment,
    used: Moment,
}

/// A bounded cache of next hops.
#[derive(Debug, Default)]
pub struct RouteCache {
    entries: BTreeMap<(Ipv6Addr, u16), Entry>,
    stats: RouteCacheStats,
}

impl RouteCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next hop to `dst` for flow hash `hash` at `now`: cached if resolved less than
    /// [`VALID_MS`] ago, else asked of `host` (and cached, room permitting).
    pub fn lookup<H: Host + ?Sized>(
        &mut self,
        host: &H,
        dst: Ipv6Addr,
        hash: u16,
        now: Moment,
    ) -> Result<Route, RouteError> {
        let key = (dst, hash);
        if let Some(e) = self.entries.get_mut(&key) {
            if now.millis_since(e.resolved) < VALID_MS {
                e.used = now;
                self.stats.hit += 1;
                return Ok(e.route);
            }
            let r = host.next_hop(dst, hash);
            crate::probes::host::next_hop(dst, &r);
            match r {
                Ok(route) => {
                    *e = Entry {
                        route,
                        resolved: now,
                        used: now,
                    };
                    self.stats.refresh += 1;
                    return Ok(route);
                }
                Err(err) => {
                    self.entries.remove(&key);
                    self.stats.error += 1;
                    return Err(err);
                }
            }
        }
        self.stats.miss += 1;
        let r = host.next_hop(dst, hash);
        crate::probes::host::next_hop(dst, &r);
        let route = r.inspect_err(|_| {
            self.stats.error += 1;
        })?;
        if self.entries.len() < ROUTE_CACHE_LIMIT {
            self.entries.insert(
                key,
                Entry {
                    route,
                    resolved: now,
                    used: now,
                },
            );
        } else {
            self.stats.table_full += 1;
        }
        Ok(route)
    }

    /// Forget entries unused for [`RETAIN_MS`].
    pub fn purge(&mut self, now: Moment) {
        let before = self.entries.len();
        self.entries
            .retain(|_, e| now.millis_since(e.used) < RETAIN_MS);
        self.stats.purged += (before - self.entries.len()) as u64;
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn stats(&self) -> RouteCacheStats {
        self.stats
    }
}
