//! The Linux host of the core: the `xded` daemon's parts. Only this module (and the
//! binary) makes system calls.
//!
//! | module | what it is for |
//! |---|---|
//! | [`daemon`] | start, signals, clean shutdown |
//! | [`control`] | the control socket: peer credentials, framing, bounds, deadlines |
//! | [`host`] | [`host::LinuxHost`], the core's `Host`: TAP devices per port |
//! | [`tap`] | one TAP device with a virtio-net header |
//! | [`guest_io`] | the guest side of the datapath: TAPs in, the core, TAPs out |

pub mod control;
pub mod daemon;
pub mod guest_io;
pub mod host;
pub mod tap;
