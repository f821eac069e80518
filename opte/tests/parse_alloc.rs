//! Parsing allocates nothing: every sample of both shapes, counted by a global allocator.

use opte::build::samples::{self, Side};
use opte::packet::parse::{parse_guest, parse_network};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to `System`; the counter is a const-initialised thread-local `Cell`.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static A: Counting = Counting;

#[test]
fn parsing_any_sample_allocates_nothing() {
    let all = samples::all();
    assert!(!all.is_empty());
    for s in all {
        let mut pkt = s.packet();
        let before = COUNT.with(Cell::get);
        let ok = match s.side {
            Side::Guest => parse_guest(&mut pkt).is_ok(),
            Side::Network => parse_network(&mut pkt).is_ok(),
        };
        let n = COUNT.with(Cell::get) - before;
        assert!(ok, "{}", s.name);
        assert_eq!(n, 0, "{}: parse made {n} allocations", s.name);
    }
}

#[test]
fn the_counter_sees_allocations() {
    // The check above is only worth something if the counter counts.
    let before = COUNT.with(Cell::get);
    let v = std::hint::black_box(vec![1u8; 64]);
    assert_eq!(COUNT.with(Cell::get) - before, 1);
    drop(v);
}
