//! Locks of the illumos kernel build: [`Mutex`] is an adaptive `kmutex_t` and [`RwLock`] a
//! `krwlock_t`, entered and exited through the kernel's own `mutex_enter(9F)` and
//! `rw_enter(9F)`, so lockstat, deadlock detection and priority inheritance see them.
//!
//! Both are zero-filled when made: a zero-filled `kmutex_t` is an unheld adaptive mutex and a
//! zero-filled `krwlock_t` an unheld reader-writer lock, as the kernel's own statically
//! allocated locks are, so `new` stays `const` and no `mutex_init` is needed. Neither holds
//! resources when unheld, so they need no `mutex_destroy` when dropped either.
// The kernel's lock functions are foreign calls on raw pointers to the lock words.
#![allow(unsafe_code)]

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};

/// `kmutex_t` (`<sys/mutex.h>`): `struct mutex { void *_opaque[1]; }`.
#[repr(C)]
pub(crate) struct KMutex {
    _opaque: [usize; 1],
}

/// `krwlock_t` (`<sys/rwlock.h>`): `struct _krwlock { void *_opaque[1]; }`.
#[repr(C)]
pub(crate) struct KRwLock {
    _opaque: [usize; 1],
}

/// `krw_t` (`<sys/rwlock.h>`): `RW_WRITER`, `RW_READER`, `RW_READER_STARVEWRITER`.
pub(crate) const RW_WRITER: i32 = 0;
pub(crate) const RW_READER: i32 = 1;

unsafe extern "C" {
    fn mutex_enter(m: *mut KMutex);
    fn mutex_exit(m: *mut KMutex);
    fn rw_enter(rw: *mut KRwLock, how: i32);
    fn rw_exit(rw: *mut KRwLock);
}

/// A mutual-exclusion lock on an adaptive kernel mutex. `lock` never fails.
pub struct Mutex<T> {
    lock: UnsafeCell<KMutex>,
    data: UnsafeCell<T>,
}

// SAFETY: the data is reached only through a guard, made while the kernel mutex is held.
unsafe impl<T: Send> Send for Mutex<T> {}
// SAFETY: as above: the mutex makes access to the data exclusive across threads.
unsafe impl<T: Send> Sync for Mutex<T> {}

pub struct MutexGuard<'a, T> {
    mutex: &'a Mutex<T>,
}

impl<T> Mutex<T> {
    pub const fn new(v: T) -> Self {
        Self {
            lock: UnsafeCell::new(KMutex { _opaque: [0] }),
            data: UnsafeCell::new(v),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, T> {
        // SAFETY: the lock word is a valid (zero-filled or since used) kmutex_t that lives
        // as long as `self`; the guard exits it exactly once.
        unsafe { mutex_enter(self.lock.get()) };
        MutexGuard { mutex: self }
    }
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the mutex.
        unsafe { &*self.mutex.data.get() }
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the mutex, and `&mut self` makes this the only reference.
        unsafe { &mut *self.mutex.data.get() }
    }
}

impl<T> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: this guard entered the mutex in `Mutex::lock`.
        unsafe { mutex_exit(self.mutex.lock.get()) };
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T> core::fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Printing must not take a lock the printing thread may already hold.
        f.write_str("Mutex { .. }")
    }
}

/// A reader-writer lock on a kernel `krwlock_t`: readers never wait for each other.
pub struct RwLock<T> {
    lock: UnsafeCell<KRwLock>,
    data: UnsafeCell<T>,
}

// SAFETY: readers share `&T` (so `T: Sync`), a writer gets `&mut T` alone (so `T: Send`).
unsafe impl<T: Send> Send for RwLock<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Sync for RwLock<T> {}

pub struct ReadGuard<'a, T> {
    rw: &'a RwLock<T>,
}

pub struct WriteGuard<'a, T> {
    rw: &'a RwLock<T>,
}

impl<T> RwLock<T> {
    pub const fn new(v: T) -> Self {
        Self {
            lock: UnsafeCell::new(KRwLock { _opaque: [0] }),
            data: UnsafeCell::new(v),
        }
    }

    pub fn read(&self) -> impl Deref<Target = T> + '_ {
        // SAFETY: a valid krwlock_t living as long as `self`; the guard exits it once.
        unsafe { rw_enter(self.lock.get(), RW_READER) };
        ReadGuard { rw: self }
    }

    pub fn write(&self) -> impl DerefMut<Target = T> + '_ {
        // SAFETY: as in `read`.
        unsafe { rw_enter(self.lock.get(), RW_WRITER) };
        WriteGuard { rw: self }
    }
}

impl<T> Deref for ReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock as a reader: no writer exists.
        unsafe { &*self.rw.data.get() }
    }
}

impl<T> Drop for ReadGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: this guard entered the lock in `RwLock::read`.
        unsafe { rw_exit(self.rw.lock.get()) };
    }
}

impl<T> Deref for WriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock as its writer.
        unsafe { &*self.rw.data.get() }
    }
}

impl<T> DerefMut for WriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the lock as its only writer, and `&mut self` is unique.
        unsafe { &mut *self.rw.data.get() }
    }
}

impl<T> Drop for WriteGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: this guard entered the lock in `RwLock::write`.
        unsafe { rw_exit(self.rw.lock.get()) };
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T> core::fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("RwLock { .. }")
    }
}

/// The kernel's lock functions, played by atomics, so the engine's tests run on this backend
/// in an ordinary process (`cargo test -p opte --features kernel --lib`): the locks really
/// exclude, and each thread counts its own calls.
#[cfg(test)]
mod mock_kernel {
    use super::{KMutex, KRwLock, RW_READER, RW_WRITER};
    use core::cell::Cell;
    use core::sync::atomic::{AtomicUsize, Ordering};

    std::thread_local! {
        static CALLS: Cell<Calls> = const { Cell::new(Calls { mutex_enter: 0, mutex_exit: 0, rw_enter: 0, rw_exit: 0 }) };
    }

    /// The kernel lock calls this thread has made.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(super) struct Calls {
        pub(super) mutex_enter: usize,
        pub(super) mutex_exit: usize,
        pub(super) rw_enter: usize,
        pub(super) rw_exit: usize,
    }

    pub(super) fn calls() -> Calls {
        CALLS.with(Cell::get)
    }

    fn count(f: impl FnOnce(&mut Calls)) {
        CALLS.with(|c| {
            let mut v = c.get();
            f(&mut v);
            c.set(v);
        });
    }

    /// The lock word, as the atomic the mock keeps in it.
    fn word<L>(l: *mut L) -> &'static AtomicUsize {
        // SAFETY: both lock types are one aligned word, alive while the guard that called
        // in is; the mock touches it only through atomics.
        unsafe { AtomicUsize::from_ptr(l.cast::<usize>()) }
    }

    #[unsafe(no_mangle)]
    extern "C" fn mutex_enter(m: *mut KMutex) {
        let w = word(m);
        while w
            .compare_exchange_weak(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::thread::yield_now();
        }
        count(|c| c.mutex_enter += 1);
    }

    #[unsafe(no_mangle)]
    extern "C" fn mutex_exit(m: *mut KMutex) {
        count(|c| c.mutex_exit += 1);
        assert_eq!(
            word(m).swap(0, Ordering::Release),
            1,
            "exit of an unheld mutex"
        );
    }

    /// The word counts readers; a writer sets it to `WRITER`.
    const WRITER: usize = usize::MAX;

    #[unsafe(no_mangle)]
    extern "C" fn rw_enter(rw: *mut KRwLock, how: i32) {
        let w = word(rw);
        loop {
            let cur = w.load(Ordering::Relaxed);
            let next = match how {
                RW_WRITER if cur == 0 => WRITER,
                RW_READER if cur != WRITER => cur + 1,
                RW_WRITER | RW_READER => {
                    std::thread::yield_now();
                    continue;
                }
                other => panic!("rw_enter with krw_t {other}"),
            };
            if w.compare_exchange_weak(cur, next, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                break;
            }
        }
        count(|c| c.rw_enter += 1);
    }

    #[unsafe(no_mangle)]
    extern "C" fn rw_exit(rw: *mut KRwLock) {
        count(|c| c.rw_exit += 1);
        let w = word(rw);
        let cur = w.load(Ordering::Acquire);
        assert_ne!(cur, 0, "exit of an unheld rwlock");
        if cur == WRITER {
            w.store(0, Ordering::Release);
        } else {
            w.fetch_sub(1, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::mock_kernel::{Calls, calls};
    use super::*;
    use std::sync::Arc;

    #[test]
    fn each_lock_and_unlock_is_one_kernel_call() {
        let m = Mutex::new(1);
        let rw = RwLock::new(2);
        let c0 = calls();
        {
            let mut g = m.lock();
            *g += 1;
        }
        let r = *rw.read();
        *rw.write() += r;
        let c1 = calls();
        let delta = Calls {
            mutex_enter: c1.mutex_enter - c0.mutex_enter,
            mutex_exit: c1.mutex_exit - c0.mutex_exit,
            rw_enter: c1.rw_enter - c0.rw_enter,
            rw_exit: c1.rw_exit - c0.rw_exit,
        };
        assert_eq!(
            delta,
            Calls {
                mutex_enter: 1,
                mutex_exit: 1,
                rw_enter: 2,
                rw_exit: 2
            }
        );
        assert_eq!((*m.lock(), *rw.read()), (2, 4));
    }

    #[test]
    fn a_mutex_excludes_across_threads() {
        let m = Arc::new(Mutex::new(0u64));
        let threads: std::vec::Vec<_> = (0..4)
            .map(|_| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        // A read and a write apart: lost updates if the lock did not exclude.
                        let mut g = m.lock();
                        let v = std::hint::black_box(*g);
                        *g = v + 1;
                    }
                    calls().mutex_enter
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), 10_000);
        }
        assert_eq!(*m.lock(), 40_000);
    }

    #[test]
    fn readers_share_a_rwlock_and_a_writer_excludes_them() {
        let rw = Arc::new(RwLock::new(std::vec![0u32; 8]));
        {
            let a = rw.read();
            let b = rw.read();
            assert_eq!(a.len() + b.len(), 16);
        }
        let threads: std::vec::Vec<_> = (0..4)
            .map(|i| {
                let rw = rw.clone();
                std::thread::spawn(move || {
                    for _ in 0..5_000 {
                        if i % 2 == 0 {
                            let mut w = rw.write();
                            for x in w.iter_mut() {
                                *x += 1;
                            }
                        } else {
                            let r = rw.read();
                            // A writer never runs beside a reader: all cells agree.
                            assert!(r.iter().all(|&x| Some(&x) == r.first()));
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*rw.read(), std::vec![10_000u32; 8]);
    }
}
