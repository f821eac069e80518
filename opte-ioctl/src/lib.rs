//! The OPTE client: [`OpteHdl`], with one typed method per control command, over a
//! [`Transport`] that reaches the host.
//!
//! | module | what |
//! |---|---|
//! | [`error`] | [`Error`]: every way a command can fail to give a response |
//! | [`transport`] | the [`Transport`] trait and [`InProcess`], a host in this process (tests) |
//! | [`unix`] | [`UnixTransport`]: the Linux daemon's control socket |
//! | `ioctl` | `IoctlTransport`: `/dev/xde`, illumos only |
//! | [`hdl`] | [`OpteHdl`] and its one generic [`OpteHdl::run`] |
//! | [`guest`] | a guest's port as the control plane makes it: routes, firewall, V2P |
//!
//! Every transport carries the same envelope ([`opte_api::ControlRequest`] and
//! [`opte_api::ControlResponse`], the socket twin of the illumos ioctl envelope), so
//! version checks, the response-buffer growth and decoding are done once, in
//! [`OpteHdl::run`], whatever the host.
//!
//! Not for: printing (that is `oxide_vpc::print`, used by `opteadm`) or policy; this crate
//! only carries commands.
#![cfg_attr(not(target_os = "illumos"), forbid(unsafe_code))]
#![cfg_attr(target_os = "illumos", deny(unsafe_code))]
#![warn(missing_docs)]
// A client library: it reports every failure as an `Error`, never by panicking.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod error;
pub mod guest;
pub mod hdl;
#[cfg(target_os = "illumos")]
#[allow(unsafe_code)] // the ioctl(2) call itself, with its SAFETY argument
pub mod ioctl;
pub mod kata;
pub mod transport;
pub mod unix;

pub use error::Error;
pub use hdl::OpteHdl;
#[cfg(target_os = "illumos")]
pub use ioctl::IoctlTransport;
pub use transport::{InProcess, Transport};
pub use unix::UnixTransport;
