//! What the benchmarks share: a global allocator that counts allocations per thread, and the
//! benchmark cases (packets from `opte::build::samples`, named as the reference names them).

pub mod host;
pub mod vpc;

use opte::build::samples::{self, Sample};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The system allocator, counting each thread's allocation calls and requested bytes.
pub struct CountingAlloc;

thread_local! {
    static ALLOCS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

fn note(bytes: usize) {
    // `try_with`: the thread-local may already be gone while a thread exits.
    let _ = ALLOCS.try_with(|c| {
        let (n, b) = c.get();
        c.set((n + 1, b + bytes as u64));
    });
}

// SAFETY: every call is forwarded unchanged to `System`; the counting touches only a
// const-initialised thread-local `Cell`, which never allocates.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Allocation calls and bytes made by this thread while `f` runs. Only meaningful in a
/// binary whose global allocator is [`CountingAlloc`].
pub fn count_allocs<R>(f: impl FnOnce() -> R) -> (R, u64, u64) {
    let before = ALLOCS.with(Cell::get);
    let r = f();
    let after = ALLOCS.with(Cell::get);
    (r, after.0 - before.0, after.1 - before.1)
}

/// A packet benchmark case: criterion group family, instance name, and the packet.
pub struct Case {
    pub family: &'static str,
    pub instance: String,
    pub sample: Sample,
}

/// Every packet case of the reference's `cargo ubench`, in its order. The ULP packets appear
/// under both FastPath and SlowPath, as upstream has them (for parse they are the same
/// benchmark).
pub fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    for (family, instance) in samples::HAIRPIN_CASES {
        if let Some(sample) = samples::hairpin(family, instance) {
            v.push(Case {
                family,
                instance: instance.into(),
                sample,
            });
        }
    }
    for family in ["ULP-FastPath", "ULP-SlowPath"] {
        for instance in samples::ULP_CASES {
            if let Some(sample) = samples::ulp(instance) {
                v.push(Case {
                    family,
                    instance: instance.into(),
                    sample,
                });
            }
        }
    }
    v
}
