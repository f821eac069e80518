//! Locks, mapped to what the host has: the illumos kernel's `kmutex_t` and `krwlock_t` under
//! feature `kernel`, std's locks in userland, spin locks in a `no_std` build without a kernel.
//! Every backend offers the same [`Mutex`] and [`RwLock`], so the engine, the VPC and the
//! host core are written once.
//!
//! The engine holds these only for short, non-blocking sections (a NAT pool's free list, a
//! shared table read when a flow is created, a port's state under its host's lock).

#[cfg(feature = "kernel")]
mod kernel;
#[cfg(not(feature = "kernel"))]
mod user;

#[cfg(feature = "kernel")]
pub use kernel::{Mutex, MutexGuard, RwLock};
#[cfg(not(feature = "kernel"))]
pub use user::{Mutex, MutexGuard, RwLock};
