//! Allocations made by the datapath's workers, counted: `xded` installs [`Counting`] as
//! its global allocator, each worker marks its thread ([`mark_worker`]), and
//! `dump-xde-stats` reports the count as `worker_allocs`. Once traffic has warmed a
//! worker's pools and flow tables up, a packet of an established flow allocates nothing,
//! end to end through the daemon (TAP and ring reads, the core, the cutter, the writes);
//! a test holds it to that. The one thing a worker does that allocates is asking the
//! kernel for a next hop (rtnetlink), when a destination's cached route is older than
//! 100 ms: counted apart, as `worker_route_allocs`.
//!
//! Without the allocator installed (a test that links the library) the count stays 0.

// A global allocator is unsafe to implement.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

static WORKER_ALLOCS: AtomicU64 = AtomicU64::new(0);
static ROUTE_ALLOCS: AtomicU64 = AtomicU64::new(0);

/// Not a worker.
const OTHER: u8 = 0;
/// A worker, processing packets.
const WORKER: u8 = 1;
/// A worker asking the kernel for a next hop.
const ROUTING: u8 = 2;

std::thread_local! {
    /// What this thread is doing.
    static STATE: Cell<u8> = const { Cell::new(OTHER) };
}

/// Count this thread's allocations from now on.
pub fn mark_worker() {
    STATE.with(|s| s.set(WORKER));
}

/// Run `f`, a next-hop lookup (a route cache miss or its refresh, at most every 100 ms per
/// destination: an rtnetlink round trip, whose messages are allocated), its allocations
/// counted apart as `worker_route_allocs`.
pub fn route_lookup<R>(f: impl FnOnce() -> R) -> R {
    let was = STATE.try_with(Cell::get).unwrap_or(OTHER);
    if was == WORKER {
        STATE.with(|s| s.set(ROUTING));
    }
    let r = f();
    if was == WORKER {
        STATE.with(|s| s.set(WORKER));
    }
    r
}

/// Allocations made by worker threads so far, besides next-hop lookups.
pub fn worker_allocs() -> u64 {
    WORKER_ALLOCS.load(Ordering::Relaxed)
}

/// Allocations made by worker threads' next-hop lookups so far.
pub fn route_allocs() -> u64 {
    ROUTE_ALLOCS.load(Ordering::Relaxed)
}

#[inline]
fn count() {
    // A constant-initialised thread local without a destructor: reading it never
    // allocates, and works until the thread is gone.
    match STATE.try_with(Cell::get).unwrap_or(OTHER) {
        WORKER => WORKER_ALLOCS.fetch_add(1, Ordering::Relaxed),
        ROUTING => ROUTE_ALLOCS.fetch_add(1, Ordering::Relaxed),
        _ => 0,
    };
}

/// The system allocator, counting what worker threads allocate.
pub struct Counting;

// SAFETY: every call is handed to the system allocator unchanged; counting touches only an
// atomic and a thread local that never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}
