//! OPTE proper: the generic packet transformation engine.
//!
//! The crate is layered the way its modules are listed: [`wire`] (header layouts, header
//! summaries and checksums; imports nothing else from the engine), [`packet`] (the segmented
//! packet buffer and the two parse shapes), [`build`] (assembling whole frames from header
//! summaries, for hairpins, tests, benchmarks and fuzz seeds) and, with `std`, [`pcap`].
//!
//! The engine never performs I/O, reads a clock or panics on a packet: every malformed packet
//! is a [`packet::ParseError`] naming the header and field at fault.
#![no_std]
// No panics on the datapath (DESIGN.md §3): every slice access goes through `get`, every
// fallible step returns an error. Tests may unwrap.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]
// Raw memory is handled in two places only, each allowing it with its reasons: lent
// packet buffers (`packet::segment`) and the kernel's locks (`sync`, feature `kernel`).
#![deny(unsafe_code)]

extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

pub mod build;
pub mod engine;
pub mod packet;
#[cfg(feature = "std")]
pub mod pcap;
pub mod sync;
pub mod wire;
