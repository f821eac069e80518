//! `xde`: the host of OPTE, without the operating system.
//!
//! Everything a host does that does not depend on an OS lives here, so that the illumos
//! kernel module and the Linux daemon are thin glue around one core:
//!
//! | module | what it is for |
//! |---|---|
//! | [`host`] | the [`host::Host`] trait: what the core asks of the OS (underlay links, a guest-side device per port, next hops) |
//! | [`route`] | the underlay route cache in front of the OS's next-hop lookup (SPEC §7.6) |
//! | [`stats`] | the host-wide counters (SPEC §7.9 and the datapath's own) |
//! | [`port`] | one guest port: its VPC port, identity and route cache |
//! | [`core`] | [`core::Xde`]: the port registry, the underlay, the shared tables, the tick |
//! | [`control`] | `dispatch`: one entry point for every control command |
//! | [`datapath`] | `tx` and `rx`: what the OS must do with each packet |
//! | [`offload`] | segmentation and coalescing in software (TSO/USO super-frames, GRO-like) |
//! | [`probes`] | the engine's probe points as USDT (Linux daemon) and SDT (illumos module) |
//!
//! Not for: system calls, devices, sockets or clocks; the glue passes time in and carries
//! out what the datapath returns.
//!
//! # Concurrency
//!
//! Each port has its own lock, taken once per packet (or once per batch with
//! [`core::Xde::tx_batch`]), so packets of different ports never contend. The port map is
//! behind a reader-writer lock that only port creation and deletion write (the map is
//! replaced whole, so a worker may keep a snapshot and take no lock at all); the shared VPC
//! tables are behind their own reader-writer locks, read on the slow path only. The
//! engine's fast path mutates per-flow state (hit counters, TCP state, expiry stamps), so a
//! port's packets are serialised under its lock rather than shared across threads; a host
//! spreads load over threads by port (the Linux daemon's workers each own ports, see
//! [`port::VniMac::owner`], so no port's lock is contended on the fast path), and
//! amortises the lock over a batch. A packet for another port of the same host is handed over only after the
//! sender's lock is let go, so two threads sending between two ports never wait on each
//! other's. Measured with the packet loop under callgrind (`bench/icount.sh`), a TCP packet
//! of an established flow costs 1,739 instructions through `tx` and 1,604 through
//! `tx_batch` with 32 packets a call: the lock and the per-call work are about 135
//! instructions a packet, which the batch all but removes. A shared-reference fast path
//! would have to make every per-flow update atomic, a cost paid on every packet to save
//! one uncontended lock a batch.
//!
//! The locks are `opte::sync`'s: std's in the daemon, the kernel's `kmutex_t` and
//! `krwlock_t` under feature `kernel`, so the core is the same code in both hosts.
#![no_std]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

pub mod control;
pub mod core;
pub mod datapath;
pub mod host;
#[cfg(feature = "kernel")]
pub mod illumos;
#[cfg(all(feature = "daemon", target_os = "linux"))]
pub mod linux;
pub mod migrate;
pub mod offload;
pub mod persist;
pub mod port;
pub mod probes;
pub mod route;
pub mod stats;

pub use crate::core::Xde;
pub use datapath::Emit;
pub use host::{Host, Link};
