//! The Oxide VPC network, built on the OPTE engine.
//!
//! | module | what |
//! |---|---|
//! | [`api`] | configuration, firewall rule model, router targets, request/response types |
//! | [`tables`] | the shared V2P, V2B and M2P tables every port of a host consults |
//! | [`mcast`] | M2P and the host's multicast forwarding and subscription tables; source-filter aggregation |
//! | [`engine`] | the five layers (gateway, firewall, router, nat, overlay), the port that holds them and the control operations on it |
//!
//! This crate never performs I/O or reads a clock: the host owns the ports and tables and
//! passes time in. It never panics on a packet or a request: a bad request is an
//! [`opte_api::OpteError`] and changes nothing.
#![no_std]
// No panics outside tests: this code runs inside the kernel module and the daemon.
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

pub mod api;
pub mod engine;
pub mod mcast;
#[cfg(feature = "std")]
pub mod print;
pub mod tables;
