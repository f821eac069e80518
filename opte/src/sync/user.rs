//! Userland locks: std's in a process, spin locks in a `no_std` build without a kernel.

use core::ops::{Deref, DerefMut};

/// A mutual-exclusion lock whose `lock` never fails: a poisoned std lock (a panic elsewhere
/// while held) still hands out the data, which stays consistent because every critical
/// section here is a few non-panicking statements.
#[derive(Debug, Default)]
pub struct Mutex<T> {
    #[cfg(feature = "std")]
    inner: std::sync::Mutex<T>,
    #[cfg(not(feature = "std"))]
    inner: spin::Mutex<T>,
}

pub struct MutexGuard<'a, T> {
    #[cfg(feature = "std")]
    inner: std::sync::MutexGuard<'a, T>,
    #[cfg(not(feature = "std"))]
    inner: spin::MutexGuard<'a, T>,
}

impl<T> Mutex<T> {
    pub const fn new(v: T) -> Self {
        #[cfg(feature = "std")]
        return Self {
            inner: std::sync::Mutex::new(v),
        };
        #[cfg(not(feature = "std"))]
        return Self {
            inner: spin::Mutex::new(v),
        };
    }

    pub fn lock(&self) -> MutexGuard<'_, T> {
        #[cfg(feature = "std")]
        return MutexGuard {
            inner: self.inner.lock().unwrap_or_else(|e| e.into_inner()),
        };
        #[cfg(not(feature = "std"))]
        return MutexGuard {
            inner: self.inner.lock(),
        };
    }
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

/// A reader-writer lock for tables read on every new flow and changed by control commands:
/// readers never wait for each other. Like [`Mutex`], `read` and `write` never fail.
#[derive(Debug, Default)]
pub struct RwLock<T> {
    #[cfg(feature = "std")]
    inner: std::sync::RwLock<T>,
    #[cfg(not(feature = "std"))]
    inner: spin::RwLock<T>,
}

impl<T> RwLock<T> {
    pub const fn new(v: T) -> Self {
        #[cfg(feature = "std")]
        return Self {
            inner: std::sync::RwLock::new(v),
        };
        #[cfg(not(feature = "std"))]
        return Self {
            inner: spin::RwLock::new(v),
        };
    }

    pub fn read(&self) -> impl Deref<Target = T> + '_ {
        #[cfg(feature = "std")]
        return self.inner.read().unwrap_or_else(|e| e.into_inner());
        #[cfg(not(feature = "std"))]
        return self.inner.read();
    }

    pub fn write(&self) -> impl DerefMut<Target = T> + '_ {
        #[cfg(feature = "std")]
        return self.inner.write().unwrap_or_else(|e| e.into_inner());
        #[cfg(not(feature = "std"))]
        return self.inner.write();
    }
}
