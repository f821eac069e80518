//! The Linux host of the core: the `xded` daemon's parts. Only this module (and the
//! binary) makes system calls.
//!
//! | module | what it is for |
//! |---|---|
//! | [`daemon`] | start, signals, clean shutdown |
//! | [`control`] | the control socket: peer credentials, framing, bounds, deadlines |
//! | [`host`] | [`host::LinuxHost`], the core's `Host`: TAP devices per port |
//! | [`tap`] | one TAP device with a virtio-net header |
//! | [`datapath`] | the two loops: TAPs in and underlay links in, through the core, out where it says |
//! | [`nexthop`] | next hops from the kernel's route and neighbour tables over rtnetlink |
//! | [`underlay`] | one underlay link: AF_PACKET with a Geneve filter |

pub mod control;
pub mod daemon;
pub mod datapath;
pub mod host;
pub mod nexthop;
pub mod tap;
pub mod underlay;
